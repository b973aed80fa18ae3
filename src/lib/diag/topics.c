/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The texts behind `citadel tpm explain <topic>`. Each text is written for an operator at a
 * terminal: what the thing is, what goes wrong and what to do, and which citadel commands
 * relate. Lines are wrapped at 78 columns and every line ends with '\n'; the unit test
 * tests/unit/test-topics.c enforces the layout, so keep the text plain ASCII.
 */
#include "citadel/explain.h"

#include <string.h>
#include <strings.h>

#include "basic/macro.h"

static const cit_topic topics[] = {
    {
        .name = "pcr",
        .title = "Platform Configuration Registers: hash chains that record what booted",
        .text = "A PCR is a hash register that can be extended but never written:\n"
                "  new = H(old || digest), H being the hash of the PCR's bank.\n"
                "The value depends on every measurement and their order, so it summarises\n"
                "what ran. PCRs are zero after a reboot; 17-22 start as all 0xFF.\n"
                "\n"
                "Each bank (sha1, sha256, sha384) is a separate set of 24 PCRs. Firmware\n"
                "must extend every active bank; a bank left all zeros was never extended\n"
                "and is useless for sealing or attestation.\n"
                "\n"
                "PC Client allocation:\n"
                "  0-7    firmware and boot: 0 firmware code, 1 firmware settings,\n"
                "         2 option ROMs, 4 boot loader, 5 GPT and boot variables,\n"
                "         7 Secure Boot state and the certificates that were used\n"
                "  8-15   operating system: e.g. 8-9 GRUB commands and files, 10 IMA,\n"
                "         11 unified kernel image, 12 kernel command line, 14 shim MOK\n"
                "  16     debug                 17-22  dynamic launch (DRTM)\n"
                "  23     application support\n"
                "16-23 are resettable, but only 16 and 23 from the OS (locality 0).\n"
                "\n"
                "What operators must know:\n"
                "- An extend cannot be undone before the next reboot. Extending 0-15 by\n"
                "  hand breaks sealed secrets and quotes until then; test with 16 or 23.\n"
                "- Firmware, boot loader, kernel and Secure Boot db/dbx updates change\n"
                "  PCRs; secrets sealed to them fail with TPM_RC_POLICY_FAIL. Save a\n"
                "  baseline before an update and diff it afterwards.\n"
                "- The event log (/sys/kernel/security/tpm0/binary_bios_measurements)\n"
                "  says what each value is made of; replay it to find what changed.\n"
                "Commands: citadel tpm pcr show|extend|reset,\n"
                "citadel tpm pcr baseline save|diff\n",
        .see_also = "policy seal attestation",
    },
    {
        .name = "policy",
        .title = "Policies: conditions the TPM checks before an object may be used",
        .text = "A policy is a list of conditions (assertions) that must hold before an\n"
                "object can be used. The TPM keeps only their digest, authPolicy, in the\n"
                "object's public area, never the conditions themselves.\n"
                "\n"
                "A policy session starts with an all-zero digest. Each assertion\n"
                "(TPM2_PolicyPCR, PolicySecret, PolicySigned, PolicyAuthValue,\n"
                "PolicyCommandCode, PolicyNV, PolicyOR, PolicyAuthorize, ...) folds into it,\n"
                "in essence:  policyDigest = H(policyDigest || TPM_CC_Policy... || args)\n"
                "The object may be used only when the session's digest equals authPolicy,\n"
                "so the same assertions in another order give another digest.\n"
                "\n"
                "What operators must know:\n"
                "- authPolicy is part of the object's Name and cannot be changed later.\n"
                "  Plan for change: PolicyOR (2 to 8 branches) or PolicyAuthorize (accepts\n"
                "  any policy signed by an authority key) instead of raw PCR values.\n"
                "- A failure is TPM_RC_POLICY_FAIL (0x99d for the first session) and does\n"
                "  not say which assertion failed. Recompute the digest offline or with a\n"
                "  trial session and compare it with the object's authPolicy.\n"
                "- TPM_RC_PCR_CHANGED: PCRs changed between TPM2_PolicyPCR and the\n"
                "  command; start a new session and retry.\n"
                "- With userWithAuth clear, the password alone is never enough.\n"
                "Commands:\n"
                "citadel tpm policy create|compile|test|explain\n",
        .see_also = "session pcr seal",
    },
    {
        .name = "hierarchy",
        .title = "Hierarchies: owner, endorsement, platform, null, and what Clear does",
        .text = "A hierarchy is a root with its own seed, authorization and enable flag.\n"
                "Primary keys are derived from the seed and a template (TPM2_CreatePrimary):\n"
                "the same template always gives the same key, so an SRK or EK can be\n"
                "recreated at any time instead of being backed up.\n"
                "\n"
                "  owner (storage)  ownerAuth, storage seed: user keys, NV and the SRK\n"
                "                   (persistent handle 0x81000001 by convention)\n"
                "  endorsement      endorsementAuth, endorsement seed: the EK and\n"
                "                   privacy-sensitive identity keys\n"
                "  platform         platformAuth, for firmware; normally given a random\n"
                "                   value or disabled before the OS runs\n"
                "  null             a new seed at every reboot: objects are ephemeral\n"
                "lockoutAuth is not a hierarchy; it guards TPM2_Clear and the DA reset.\n"
                "\n"
                "TPM2_Clear (with lockoutAuth or platformAuth, e.g. 'Clear TPM' in firmware\n"
                "setup; refused while disableClear is set) changes the storage seed, empties\n"
                "the owner, endorsement and lockout auth, evicts owner and endorsement\n"
                "persistent objects and deletes owner-defined NV indices. Every key and\n"
                "sealed secret under the old SRK is lost for good. The endorsement seed\n"
                "stays, so the EK is unchanged.\n"
                "\n"
                "Failures: TPM_RC_HIERARCHY, the hierarchy is disabled; TPM_RC_BAD_AUTH,\n"
                "a wrong hierarchy password. Owner, endorsement and platform auth are not\n"
                "dictionary-attack protected; lockoutAuth is.\n"
                "Commands: citadel tpm status, citadel tpm doctor\n",
        .see_also = "ek key handle dictionary-attack",
    },
    {
        .name = "key",
        .title = "Keys: TPM objects, their parents, attributes and blobs",
        .text = "A TPM key is an object with a public area (type, nameAlg, attributes,\n"
                "authPolicy, parameters, public key) and a sensitive area (private key,\n"
                "auth value). TPM2_Create returns the private part wrapped (encrypted and\n"
                "integrity-protected) by the parent, normally the SRK: the blob is safe on\n"
                "disk but works only under that parent in that TPM. TPM2_Load puts it in a\n"
                "transient slot; TPM2_EvictControl can make it persistent.\n"
                "\n"
                "Attributes that matter (fixed at creation, part of the key's Name):\n"
                "  fixedTPM, fixedParent  cannot be duplicated to another TPM or parent\n"
                "  sensitiveDataOrigin    the TPM generated the private key itself\n"
                "  userWithAuth           the password works; if clear, use the policy\n"
                "  noDA                   auth failures do not count towards lockout\n"
                "  restricted + sign      signs only TPM-made data (attestation keys)\n"
                "  restricted + decrypt   a storage (parent) key, like the SRK or EK\n"
                "\n"
                "Failures:\n"
                "- Load fails (TPM_RC_INTEGRITY; Citadel TPM0027 or TPM0028) after\n"
                "  TPM2_Clear or on another machine: the parent changed, the key is gone.\n"
                "- TPM_RC_OBJECT_MEMORY (0x902): transient slots are full; see `handle`.\n"
                "- TPM_RC_AUTH_FAIL: wrong password, counted towards lockout unless noDA.\n"
                "- Rotating creates a new version; keep the old public key to verify old\n"
                "  signatures.\n"
                "Commands: citadel tpm key create|sign|verify|show|rotate\n",
        .see_also = "hierarchy handle session",
    },
    {
        .name = "seal",
        .title = "Sealing: small secrets that only this TPM releases, under a policy",
        .text = "Sealing stores a small secret in a TPM object so that only this TPM, and\n"
                "only when its policy or password is satisfied, gives it back. The object\n"
                "is a keyedhash with neither sign nor decrypt set; the secret is its\n"
                "sensitive data. TPM2_Create wraps it under a parent (normally the SRK)\n"
                "and TPM2_Unseal returns it.\n"
                "\n"
                "Size: sealed data is limited by MAX_SYM_DATA, typically 128 bytes. For\n"
                "anything larger, seal a random key and encrypt the data with it outside\n"
                "the TPM.\n"
                "\n"
                "What operators must know:\n"
                "- The blob is bound to this TPM's storage seed: it is useless on another\n"
                "  machine and after TPM2_Clear. Keep a recovery copy of the secret\n"
                "  elsewhere (offline, escrowed) unless losing it is acceptable.\n"
                "- Sealed to PCRs, a firmware, boot loader, kernel or Secure Boot update\n"
                "  makes unseal fail with TPM_RC_POLICY_FAIL. Before updating, reseal to\n"
                "  the predicted values, or seal with PolicyAuthorize so that newly signed\n"
                "  PCR policies are accepted.\n"
                "- Unsealed data crosses the bus in the clear unless the session encrypts\n"
                "  parameters; a discrete TPM's bus can be sniffed.\n"
                "- A wrong password counts towards lockout unless the object has noDA.\n"
                "Commands: citadel tpm secret seal|unseal,\n"
                "citadel tpm policy test, citadel tpm pcr baseline diff\n",
        .see_also = "policy pcr key",
    },
    {
        .name = "attestation",
        .title = "Attestation: proving PCR values to a remote verifier with a quote",
        .text = "Remote attestation lets a verifier check what a machine booted, from\n"
                "evidence signed inside its TPM. TPM2_Quote signs a TPMS_ATTEST structure\n"
                "with an attestation key (AK). It holds TPM_GENERATED_VALUE, the\n"
                "verifier's nonce (extraData), clock and reset counters, the firmware\n"
                "version, the PCR selection and a digest of the selected PCR values.\n"
                "\n"
                "The verifier must:\n"
                "1. check the signature with the AK public key, and that the AK is\n"
                "   trusted (credential activation against a known EK, or a certificate);\n"
                "2. check that the nonce is the fresh one it sent (stops replay);\n"
                "3. replay the event log and check that it gives the quoted PCR digest;\n"
                "4. judge the logged measurements against a policy or known-good baseline.\n"
                "A quote proves only PCR values; the event log says what they mean.\n"
                "\n"
                "Common failures:\n"
                "- Digest mismatch: quote and verifier use different PCRs or banks, or the\n"
                "  log is incomplete (a bank never extended, an extend with no log entry).\n"
                "- resetCount or restartCount changed: the machine rebooted or resumed.\n"
                "- Bad signature: wrong AK, or the AK was recreated with another key.\n"
                "- A quote is only as trustworthy as the TPM: a software TPM's quote says\n"
                "  nothing about hardware.\n"
                "Commands: citadel tpm attest ak-create|quote|verify|credential,\n"
                "citadel tpm pcr show, citadel tpm ek verify\n",
        .see_also = "ak ek pcr",
    },
    {
        .name = "nv",
        .title = "NV indices: small non-volatile storage inside the TPM",
        .text = "NV indices are small areas of TPM non-volatile memory with handles\n"
                "0x01xxxxxx. TPM2_NV_DefineSpace creates one with a size, an auth value\n"
                "and/or policy, and attributes fixed for its life: who may read and write\n"
                "(authread/authwrite, ownerread/ownerwrite, policyread/policywrite) and its\n"
                "type: ordinary, counter, bit field, extend or PIN.\n"
                "\n"
                "Ranges: 0x01000000-0x013FFFFF belong to the owner; 0x01C00000 and up are\n"
                "reserved by TCG (EK certificates at 0x01C00002 RSA and 0x01C0000A ECC).\n"
                "\n"
                "What operators must know:\n"
                "- Space is small (a few KB in all). One index holds at most\n"
                "  TPM_PT_NV_INDEX_MAX bytes (libtpms: 2048) and one TPM2_NV_Read or\n"
                "  TPM2_NV_Write moves at most TPM_PT_NV_BUFFER_MAX (libtpms: 1024);\n"
                "  citadel splits larger reads and writes. See `citadel tpm capabilities`.\n"
                "- NV is flash with limited write endurance: keep data that changes often\n"
                "  out of it. The TPM may throttle writes with TPM_RC_NV_RATE (0x920).\n"
                "- A new index reads TPM_RC_NV_UNINITIALIZED until its first write.\n"
                "- TPM_RC_NV_DEFINED: the index exists. TPM_RC_NV_SPACE: NV is full.\n"
                "  TPM_RC_NV_LOCKED: read or write is locked, until reboot or for good.\n"
                "  TPM_RC_NV_AUTHORIZATION: the attributes do not allow this kind of auth.\n"
                "- TPM2_Clear deletes owner-defined indices; platform ones survive.\n"
                "- Wrong passwords count towards lockout unless the index has\n"
                "  TPMA_NV_NO_DA.\n"
                "Commands: citadel tpm capabilities; citadel tpm nv define|write|read|\n"
                "increment|extend|lock|list|delete\n",
        .see_also = "handle ek dictionary-attack",
    },
    {
        .name = "ek",
        .title = "Endorsement key: the TPM's certified, permanent identity",
        .text = "The endorsement key is a primary, restricted decryption key in the\n"
                "endorsement hierarchy. It is derived from the endorsement seed with a\n"
                "standard template from the TCG EK Credential Profile (RSA 2048 template\n"
                "L-1, ECC NIST P-256 template L-2, ...), so it can be recreated at any time\n"
                "and is always the same key. 0x81010001 is its usual persistent handle.\n"
                "\n"
                "The manufacturer certifies it: the EK certificate is in NV at 0x01C00002\n"
                "(RSA 2048) or 0x01C0000A (ECC P-256). Some firmware TPMs do not store it;\n"
                "the vendor serves it online instead.\n"
                "\n"
                "What operators must know:\n"
                "- The EK cannot sign, so it cannot sign a quote. It vouches for an AK\n"
                "  through credential activation (see `ak`).\n"
                "- The EK identifies one TPM for life: treat it and its certificate as\n"
                "  personal data and give them only to verifiers that need them.\n"
                "- TPM2_Clear keeps the endorsement seed, so the EK does not change, but\n"
                "  its persistent copy is evicted and must be recreated.\n"
                "- Verify that the certificate chains to the manufacturer's CA and that\n"
                "  its public key equals the EK the TPM derives; a mismatch means a wrong\n"
                "  template or another TPM.\n"
                "- Using the EK needs a policy session with PolicySecret(TPM_RH_ENDORSEMENT).\n"
                "- A software TPM has no manufacturer certificate; an EK certificate from\n"
                "  a local CA proves nothing about hardware.\n"
                "Commands: citadel tpm ek show|cert|verify|cert-import|ca (a vtpm\n"
                "workspace's `init` provisions EK certificates from a local CA).\n"
                "Attestation keys: citadel tpm attest ak-create|ak-show|quote|verify|credential\n",
        .see_also = "ak hierarchy attestation",
    },
    {
        .name = "ak",
        .title = "Attestation key: the restricted signing key behind quotes",
        .text = "An attestation key is a restricted signing key (restricted, sign,\n"
                "fixedTPM, fixedParent, sensitiveDataOrigin). Restricted means the TPM signs\n"
                "only structures it made itself (quotes, certifications, time) or digests\n"
                "it computed, and refuses data that starts with TPM_GENERATED_VALUE\n"
                "(0xff544347). An AK signature therefore shows the TPM made the statement.\n"
                "\n"
                "An AK is usually a child of the EK or the SRK. As the EK cannot sign,\n"
                "trust in an AK comes from credential activation:\n"
                "1. the verifier runs TPM2_MakeCredential with the EK public key and the\n"
                "   AK's Name, encrypting a random secret;\n"
                "2. TPM2_ActivateCredential releases the secret only if an object with\n"
                "   that Name is loaded in the same TPM as the EK;\n"
                "3. returning the secret proves the AK and the EK live in one TPM.\n"
                "A privacy CA can then certify the AK, so verifiers need not see the EK.\n"
                "\n"
                "A quote is TPMS_ATTEST over the digest of the selected PCRs plus the\n"
                "verifier's nonce, signed by the AK; see `attestation`.\n"
                "\n"
                "Failures: ActivateCredential fails (usually TPM_RC_INTEGRITY) when the\n"
                "credential was made for another AK Name or another EK. The EK needs a\n"
                "policy session with PolicySecret(TPM_RH_ENDORSEMENT); a password session\n"
                "gets TPM_RC_AUTH_UNAVAILABLE. If the AK is recreated, verifiers must\n"
                "enrol its new public key.\n"
                "Commands: citadel tpm attest ak-create|quote|verify|credential,\n"
                "citadel tpm ek verify\n",
        .see_also = "ek attestation key",
    },
    {
        .name = "handle",
        .title = "Handles: how PCRs, NV indices, sessions and objects are addressed",
        .text = "Every TPM entity has a 32-bit handle whose top byte is its type:\n"
                "  0x00xxxxxx  PCR                 0x01xxxxxx  NV index\n"
                "  0x02xxxxxx  HMAC session        0x03xxxxxx  policy session\n"
                "  0x80xxxxxx  transient object    0x81xxxxxx  persistent object\n"
                "  0x40xxxxxx  permanent: owner 0x40000001, null 0x40000007, password\n"
                "              session 0x40000009, lockout 0x4000000A, endorsement\n"
                "              0x4000000B, platform 0x4000000C\n"
                "\n"
                "Transient handles are assigned by the TPM at load and vanish on flush or\n"
                "reboot. Through a resource manager (/dev/tpmrm0, tpm2-abrmd) they are\n"
                "virtual and flushed when the program exits, so a handle printed by one\n"
                "command means nothing to the next. Tools load, use and flush.\n"
                "\n"
                "Transient slots are scarce (often 3, see TPM_PT_HR_TRANSIENT_MIN). A full\n"
                "TPM returns TPM_RC_OBJECT_MEMORY (0x902, Citadel TPM0026). On /dev/tpm0\n"
                "without a resource manager, a crashed program can leave objects loaded\n"
                "until reboot.\n"
                "\n"
                "Persistent handles (TPM2_EvictControl) survive reboot:\n"
                "  0x81000000-0x8100FFFF owner (SRK 0x81000001)\n"
                "  0x81010000-0x8101FFFF endorsement (EK 0x81010001)\n"
                "  0x81800000-0x81FFFFFF platform\n"
                "There is room for few (the PC Client minimum is 7); Citadel reports\n"
                "TPM0037 when none is free. TPM2_Clear evicts owner and endorsement ones.\n"
                "Commands: citadel tpm capabilities, citadel tpm status, citadel tpm doctor\n",
        .see_also = "session key nv",
    },
    {
        .name = "session",
        .title = "Sessions: password, HMAC and policy authorization",
        .text = "Commands that use an object, NV index or hierarchy carry an authorization\n"
                "session (at most three per command):\n"
                "  password  TPM_RS_PW (0x40000009): the secret is sent in the clear.\n"
                "  HMAC      proves knowledge of the auth value without sending it;\n"
                "            rolling nonces stop replay. Salting (a seed encrypted to a\n"
                "            TPM key) makes its parameter encryption strong, hiding\n"
                "            unsealed data and new passwords on the bus.\n"
                "  policy    authorizes by satisfying the object's policy: each\n"
                "            TPM2_Policy* command updates the session's policyDigest.\n"
                "A trial policy session computes a policyDigest without checking\n"
                "anything; it is how authPolicy is calculated before creating an object.\n"
                "HMAC sessions have handles 0x02xxxxxx, policy sessions 0x03xxxxxx.\n"
                "\n"
                "Failures and what to do:\n"
                "- TPM_RC_SESSION_MEMORY (0x903) or TPM_RC_SESSION_HANDLES (0x905): the\n"
                "  session slots are full because sessions were not flushed. Use the\n"
                "  resource manager (/dev/tpmrm0); make tools flush or clear\n"
                "  continueSession on the last use.\n"
                "- TPM_RC_CONTEXT_GAP (0x901): a saved session is too old and must be\n"
                "  flushed; usually a resource manager problem.\n"
                "- TPM_RC_POLICY_FAIL: the policy was not satisfied; see `policy`.\n"
                "- TPM_RC_AUTH_FAIL or TPM_RC_BAD_AUTH: wrong password or HMAC; AUTH_FAIL\n"
                "  counts towards dictionary-attack lockout, BAD_AUTH does not.\n"
                "Commands: citadel tpm doctor, citadel tpm policy test\n",
        .see_also = "policy handle dictionary-attack",
    },
    {
        .name = "dictionary-attack",
        .title = "Dictionary-attack protection and lockout",
        .text = "The TPM counts failed authorizations to slow down password guessing.\n"
                "Objects and NV indices are DA-protected unless they have noDA\n"
                "(TPMA_NV_NO_DA for NV). Owner, endorsement and platform hierarchy auth and\n"
                "PCRs are exempt; lockoutAuth has its own rule (lockoutRecovery).\n"
                "\n"
                "Parameters (TPM2_DictionaryAttackParameters, needs lockoutAuth):\n"
                "  maxTries         failures before lockout (TPM_PT_MAX_AUTH_FAIL)\n"
                "  recoveryTime     seconds until one failure is forgotten\n"
                "                   (TPM_PT_LOCKOUT_INTERVAL); 0 turns DA protection off\n"
                "  lockoutRecovery  wait after a wrong lockoutAuth; 0 means until reboot\n"
                "The failure count is TPM_PT_LOCKOUT_COUNTER. When it reaches maxTries,\n"
                "every use of a DA-protected entity fails with TPM_RC_LOCKOUT (0x921,\n"
                "Citadel TPM0025), even with the right password. Time counts only while\n"
                "the TPM is powered, and an unclean power-off may count as a failure.\n"
                "\n"
                "What to do:\n"
                "- Stop retrying: scripts that loop on a wrong password (TPM0024) cause\n"
                "  the lockout.\n"
                "- Wait: one failure is forgotten every recoveryTime seconds; or\n"
                "- reset the count with lockoutAuth: TPM2_DictionaryAttackLockReset\n"
                "  (citadel tpm lockout reset). A wrong lockoutAuth blocks\n"
                "  lockoutAuth itself for lockoutRecovery seconds.\n"
                "- TPM2_Clear from firmware setup ends it too, but destroys owner keys.\n"
                "- Set noDA only on objects whose auth value is long and random.\n"
                "Commands: citadel tpm lockout show|reset, citadel tpm status,\n"
                "citadel tpm doctor\n",
        .see_also = "session hierarchy",
    },
};

/* Other names operators type for a topic. */
static const struct {
    const char *alias;
    const char *name;
} aliases[] = {
    {"da", "dictionary-attack"},
    {"lockout", "dictionary-attack"},
};

static const cit_topic *find_by_name(const char *name) {
    for (size_t i = 0; i < ELEMENTSOF(topics); i++)
        if (strcasecmp(topics[i].name, name) == 0)
            return &topics[i];
    return NULL;
}

/*
 * Look up a topic by name or alias, case-insensitively. The result is borrowed from a static
 * table and lives for the whole program. Returns NULL for NULL or an unknown name; it sets no
 * error, so the caller decides whether that is CIT_E_UNKNOWN_TOPIC.
 */
_public_ const cit_topic *cit_topic_lookup(const char *name) {
    if (!name)
        return NULL;
    const cit_topic *t = find_by_name(name);
    if (t)
        return t;
    for (size_t i = 0; i < ELEMENTSOF(aliases); i++)
        if (strcasecmp(aliases[i].alias, name) == 0)
            return find_by_name(aliases[i].name);
    return NULL;
}

/*
 * The whole table, in display order, for listing topics. The array is borrowed and static;
 * its length goes to *n when n is not NULL. Aliases are not in it. Never fails.
 */
_public_ const cit_topic *cit_topic_table(size_t *n) {
    if (n)
        *n = ELEMENTSOF(topics);
    return topics;
}
