/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcitadel: the TPM as a managed object store.
 *
 * Every operation takes a cit_ctx (store + TPM, opened lazily), returns 0 or a negative
 * CIT_E_* code (details in cit_error_last()), and on success hands back a result tree
 * (json_t object, the caller's reference) that the CLI and the daemons render. With
 * plan mode on, operations validate their arguments, describe the TPM operations they would
 * perform in {"plan": [...]} and change nothing.
 *
 * The library never prints and never exits.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "citadel/error.h"
#include "citadel/explain.h"
#include "citadel/output.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CIT_VERSION "0.1.0"

typedef struct cit_ctx cit_ctx;

typedef struct cit_ctx_options {
    const char *store_path; /* NULL: $TPM_STORE_PATH, else $XDG_DATA_HOME/citadel/store.db */
    const char *backend;    /* NULL: $TPM_BACKEND, else the workspace's, else "auto" */
    const char *tcti;       /* NULL: $TPM_TCTI */
    bool plan;              /* describe, change nothing */
    const char *vtpm_state; /* the vtpm state file; NULL: <store>.tpmstate */
} cit_ctx_options;

/* Creates a context; opens nothing yet. */
int cit_ctx_new(cit_ctx **out, const cit_ctx_options *o);
/* Ends the context: an open vTPM is shut down orderly and its state saved (the returned code
 * says whether that worked). Always frees ctx. */
int cit_ctx_close(cit_ctx *ctx);
/* Turns plan mode on or off for the following operations. */
void cit_ctx_set_plan(cit_ctx *ctx, bool plan);
/* Names who acts in the following operations (at most 63 bytes, else truncated): recorded in
 * the operation log, as an approval's requester or decider, and as audit entries' actor.
 * Default: $CITADEL_ACTOR, else the OS user. A daemon sets it per request to its caller. */
void cit_ctx_set_actor(cit_ctx *ctx, const char *actor);
/* The store path and backend name this context resolved (borrowed). */
const char *cit_ctx_store_path(cit_ctx *ctx);
const char *cit_ctx_backend(cit_ctx *ctx);

/* ---- workspace ---- */
int cit_workspace_init(json_t **out, cit_ctx *ctx, const char *profile);
int cit_workspace_status(json_t **out, cit_ctx *ctx);
int cit_workspace_doctor(json_t **out, cit_ctx *ctx, bool *healthy);
int cit_workspace_capabilities(json_t **out, cit_ctx *ctx);
int cit_workspace_info(json_t **out, cit_ctx *ctx);
int cit_workspace_export(json_t **out, cit_ctx *ctx, const char *output);
int cit_workspace_import(json_t **out, cit_ctx *ctx, const char *input);
int cit_debug_bundle(json_t **out, cit_ctx *ctx, const char *output);
int cit_log_show(json_t **out, cit_ctx *ctx, const char *object, const char *action, int limit);

/* ---- keys ---- */
typedef struct cit_key_create_options {
    const char *path;
    const char *algorithm; /* ecc-p256 (default), ecc-p384, rsa-2048, rsa-3072, or ed25519: a
                              software key whose seed the TPM seals (docs/ed25519.md) */
    const char *scheme;    /* ecdsa, rsassa (RSA default), rsapss; eddsa (ed25519) */
    const char *usage;     /* sign (default) or storage (a parent for other keys) */
    const char *parent;    /* NULL: the storage primary key */
    bool persist;          /* also make it a persistent TPM object */
    const char *auth_file; /* a password for the key (file, "-" = stdin); the key is then
                              dictionary-attack protected */
    const char *template_name; /* a recipe (cit_template_list) for what is not given */
    const char *pcrs;      /* bind use to these PCRs' values now ("0,7"); the TPM enforces it.
                              ed25519 keys without pcrs or policy are bound to PCRs 0,7 */
    const char *bank;      /* their bank (default sha256) */
    const char *policy;    /* or a stored policy by name */
} cit_key_create_options;

typedef struct cit_key_sign_options {
    const char *path;
    const char *input;     /* file or "-" (ed25519: the message itself, at most 64 MiB) */
    const char *output;    /* NULL: signature only in the result */
    const char *digest;    /* sha256 / sha384 / sha512; default by key (ed25519: must be NULL) */
    const char *encoding;  /* der (default) or raw (ECDSA r||s); ed25519 signatures are raw (64 bytes) */
    bool input_is_digest;  /* the input is already a digest of the given algorithm (not ed25519) */
    const char *auth_file; /* the key's password, when it has one */
    int64_t approval;      /* an approved request, under a profile that requires approval */
    const uint8_t *data;   /* the input in memory instead of a file (input must be NULL): the
                              message, or with input_is_digest the raw digest (daemons) */
    size_t data_len;
    bool tls_handshake;    /* a TLS handshake signature (daemons serving TLS from a TPM key): only
                              identities with usage tls-server or tls-client, and not gated by
                              sign approvals, which are for what people sign (the CLI never sets it) */
} cit_key_sign_options;

int cit_key_create(json_t **out, cit_ctx *ctx, const cit_key_create_options *o);
int cit_key_list(json_t **out, cit_ctx *ctx);
int cit_key_show(json_t **out, cit_ctx *ctx, const char *path);
int cit_key_sign(json_t **out, cit_ctx *ctx, const cit_key_sign_options *o);
/* Verifies in software against every version (or just version when > 0). */
int cit_key_verify(json_t **out, cit_ctx *ctx, const char *path, const char *input,
                   const char *signature, const char *digest, const char *encoding, int version);
int cit_key_delete(json_t **out, cit_ctx *ctx, const char *path, bool force);
/* format: pem (default), openssl, cosign, ssh, jwk. output NULL: in the result ("_text"). */
int cit_key_export_pub(json_t **out, cit_ctx *ctx, const char *path, const char *format,
                       const char *output, int version);
/* auth_file: the key's password when it has one (the new version gets the same). */
int cit_key_rotate(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file);

/* ---- Ed25519 keys sealed by the TPM (docs/ed25519.md) ---- */
/* `cit_key_create` with algorithm "ed25519" makes one: a 32-byte seed from the TPM's random
 * number generator mixed with libsodium's, sealed in the TPM under the key's policy (PCRs 0,7 by
 * default) and never stored in clear. cit_key_sign unseals it for each signature; a daemon
 * keeps it unsealed in a session cache (cit_keycache_*) instead. */

typedef struct cit_key_backup_options {
    const char *path;
    const char *output;          /* the recovery file, written 0600 */
    const char *passphrase_file; /* the passphrase ("-" = stdin; one trailing newline dropped);
                                    at least 12 bytes */
    const char *kdf;             /* Argon2id strength: interactive, moderate (default), sensitive */
    const char *auth_file;       /* the key's password, when it has one */
} cit_key_backup_options;

typedef struct cit_key_restore_options {
    const char *path;            /* the key to create (need not be the original path) */
    const char *input;           /* a file written by cit_key_backup */
    const char *passphrase_file;
    const char *pcrs;            /* the new sealing policy, as for cit_key_create (default 0,7) */
    const char *bank;
    const char *policy;
    const char *auth_file;       /* a password for the restored key (may differ from the old one) */
} cit_key_restore_options;

/* Writes a passphrase-encrypted recovery file of an ed25519 key's current seed: Argon2id
 * derives the key, XChaCha20-Poly1305 encrypts the seed, the header (algorithm, public key, KDF
 * parameters, salt, path) is authenticated. The key's policy must be satisfied now (the TPM
 * unseals the seed). Errors: CIT_E_OBJECT_KIND (not ed25519), CIT_E_POLICY_FAIL, CIT_E_AUTH_FAIL,
 * CIT_E_USAGE (short passphrase, unknown kdf), CIT_E_OUTPUT_WRITE, CIT_E_PROFILE_VIOLATION
 * (a profile that requires an approval for every signature). */
int cit_key_backup(json_t **out, cit_ctx *ctx, const cit_key_backup_options *o);
/* Creates the key o->path from a recovery file, its seed sealed by this TPM under the given (or
 * default) policy. Nothing is created on failure: CIT_E_BACKUP_FORMAT (not a backup, unknown
 * version), CIT_E_BACKUP_TRUNCATED, CIT_E_BACKUP_TAMPERED (checksum, header or public key do not
 * match), CIT_E_BACKUP_PASSPHRASE (wrong passphrase), CIT_E_OBJECT_EXISTS. */
int cit_key_restore(json_t **out, cit_ctx *ctx, const cit_key_restore_options *o);

/* The session cache: unsealed ed25519 keys held in locked memory (sodium_malloc: mlock, guard
 * pages, no access while not signing, excluded from core dumps) for fast signing without the TPM.
 * A key locks itself (is wiped) once it has not been used for the idle time. Every function is
 * thread-safe (one mutex per cache; signatures are made one at a time). */
typedef struct cit_keycache cit_keycache;

#define CIT_KEYCACHE_DEFAULT_IDLE 300 /* seconds */
#define CIT_ED25519_SIGNATURE_BYTES 64
#define CIT_ED25519_PUBLIC_BYTES 32

/* A new, empty cache; idle_seconds 0 means CIT_KEYCACHE_DEFAULT_IDLE. *out is the caller's
 * (cit_keycache_free). CIT_E_INTERNAL when libsodium cannot start or memory runs out. */
int cit_keycache_new(cit_keycache **out, unsigned idle_seconds);
/* Unseals the current version of the ed25519 key at path through ctx (the TPM checks its policy
 * and password, auth_file, as for cit_key_sign) and keeps it in the cache; unlocking a key that
 * is already unlocked unseals it again (and takes a newer version after a rotation). The
 * unsealed seed is checked against the stored public key. Errors: those of cit_key_sign
 * (CIT_E_OBJECT_NOT_FOUND, CIT_E_OBJECT_KIND, CIT_E_POLICY_FAIL, CIT_E_AUTH_FAIL, ...), and
 * CIT_E_PROFILE_VIOLATION under a profile that requires an approval for every signature. */
int cit_keycache_unlock(cit_keycache *c, cit_ctx *ctx, const char *path, const char *auth_file);
/* Signs msg (len bytes) with the unlocked key at path into sig (64 bytes), without the TPM.
 * CIT_E_KEY_LOCKED when the key is not unlocked, was locked, or was idle longer than the idle
 * time (it is wiped first). sig is untouched on failure. */
int cit_keycache_sign(cit_keycache *c, const char *path, const uint8_t *msg, size_t len,
                      uint8_t sig[CIT_ED25519_SIGNATURE_BYTES]);
/* Signs msg like cit_keycache_sign and answers the result tree cit_key_sign gives for an ed25519
 * key (path, version, algorithm, scheme, message_bytes, message_sha256, encoding,
 * signature_base64, signature_hex), *out the caller's. CIT_E_KEY_LOCKED as above. */
int cit_keycache_sign_result(json_t **out, cit_keycache *c, const char *path, const uint8_t *msg, size_t len);
/* The public key and version of the unlocked key at path (does not count as a use).
 * CIT_E_KEY_LOCKED as for cit_keycache_sign. */
int cit_keycache_public_key(cit_keycache *c, const char *path, uint8_t pk[CIT_ED25519_PUBLIC_BYTES],
                            int *version);
/* Wipes the key at path from the cache. CIT_E_KEY_LOCKED when it was not unlocked. */
int cit_keycache_lock(cit_keycache *c, const char *path);
/* Wipes every key; returns how many were unlocked. */
size_t cit_keycache_lock_all(cit_keycache *c);
/* Wipes the keys idle longer than the idle time (for a daemon's timer); returns how many. */
size_t cit_keycache_expire(cit_keycache *c);
/* How many keys are unlocked now (keys past their idle time included until expired). */
size_t cit_keycache_count(cit_keycache *c);
/* Wipes every key and frees the cache. Accepts NULL. */
void cit_keycache_free(cit_keycache *c);

/* ---- PCRs and baselines ---- */
/* bank: sha1|sha256 (default)|sha384|sha512; indices: "0,7,11", "0-7", NULL = all. */
int cit_pcr_show(json_t **out, cit_ctx *ctx, const char *bank, const char *indices);
/* Extends PCR index with the digest of data_file, or with digest_hex (exactly one). */
int cit_pcr_extend(json_t **out, cit_ctx *ctx, uint32_t index, const char *data_file, const char *digest_hex,
                   const char *bank);
/* Resets a resettable PCR (16-23). */
int cit_pcr_reset(json_t **out, cit_ctx *ctx, uint32_t index);
/* A baseline is a named set of PCR values (default PCRs 0-7 of sha256), kept in the store. */
int cit_baseline_save(json_t **out, cit_ctx *ctx, const char *name, const char *indices, const char *bank);
/* Compares a baseline with the PCRs now; *changed tells whether any differ. */
int cit_baseline_diff(json_t **out, cit_ctx *ctx, const char *name, bool *changed);
int cit_baseline_list(json_t **out, cit_ctx *ctx);
int cit_baseline_delete(json_t **out, cit_ctx *ctx, const char *name);

/* ---- sealed secrets ---- */
/* Seals the contents of input (at most 1 MiB; "-" = stdin) at path. pcrs (e.g. "0,7") binds it
 * to the PCR values now (bank default sha256): the TPM unseals only while they hold. policy
 * names a stored policy instead; auth_file gives the password (for policies with auth_value, or
 * alone for a password-protected secret). */
int cit_secret_seal(json_t **out, cit_ctx *ctx, const char *path, const char *input, const char *pcrs,
                    const char *bank, const char *policy, const char *auth_file, const char *template_name);
/* Unseals: *secret is the caller's and must be wiped (cit_memzero) and freed. A policy that
 * is not met is CIT_E_POLICY_FAIL, naming the PCRs that changed. */
int cit_secret_unseal(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file, uint8_t **secret,
                      size_t *secret_len);
int cit_secret_list(json_t **out, cit_ctx *ctx);

/* ---- policies (docs/policy.md) ---- */
/* Compiles a YAML policy file and stores it under its name (replace: a new version). */
int cit_policy_compile(json_t **out, cit_ctx *ctx, const char *file, bool replace);
/* The same from YAML text in memory (at most the same size as a file). */
int cit_policy_compile_text(json_t **out, cit_ctx *ctx, const char *yaml, size_t len, bool replace);
/* A policy from flags: the PCRs in pcrs at their values now, and/or the object's password. */
int cit_policy_create(json_t **out, cit_ctx *ctx, const char *name, const char *pcrs, const char *bank,
                      bool password);
int cit_policy_show(json_t **out, cit_ctx *ctx, const char *name);
int cit_policy_list(json_t **out, cit_ctx *ctx);
/* Runs the policy in a real policy session now; *satisfied says whether the TPM accepted it. */
int cit_policy_test(json_t **out, cit_ctx *ctx, const char *name, bool *satisfied);
int cit_policy_explain(json_t **out, cit_ctx *ctx, const char *name);

/* ---- NV indices ---- */
/* type: ordinary (size bytes, at most the TPM's TPM2_PT_NV_INDEX_MAX, else CIT_E_USAGE), counter,
 * bits (8 bytes), extend (32 bytes, sha256). A password (auth_file) makes the index
 * dictionary-attack protected. Indices are write-lockable. Write and read move data in chunks of
 * at most TPM2_PT_NV_BUFFER_MAX bytes; a write that does not fit is CIT_E_NV_RANGE before any
 * chunk is written. */
int cit_nv_define(json_t **out, cit_ctx *ctx, const char *path, uint32_t size, const char *type,
                  const char *auth_file);
int cit_nv_write(json_t **out, cit_ctx *ctx, const char *path, const char *input, uint32_t offset,
                 const char *auth_file);
/* *data is the caller's (free). */
int cit_nv_read(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file, uint8_t **data, size_t *len);
int cit_nv_increment(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file);
int cit_nv_extend(json_t **out, cit_ctx *ctx, const char *path, const char *input, const char *auth_file);
int cit_nv_lock(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file);
int cit_nv_list(json_t **out, cit_ctx *ctx);

/* ---- profiles and templates ---- */
/* Profiles: the workspace's defaults and constraints (allowed key algorithms, a path prefix),
 * enforced whenever an object is created; built-ins default, compat, high, ci-signer, fips-like. */
int cit_profile_list(json_t **out, cit_ctx *ctx);
int cit_profile_show(json_t **out, cit_ctx *ctx, const char *name /* NULL: the active one */);
int cit_profile_set(json_t **out, cit_ctx *ctx, const char *name);
/* Templates: recipes for key create / secret seal (ci-signer, tls-server, boot-sealed-secret,
 * attestation-ak). */
int cit_template_list(json_t **out, cit_ctx *ctx);
int cit_template_show(json_t **out, cit_ctx *ctx, const char *name);

/* ---- identities (docs/identities.md) ---- */
/* An identity is a signing key with a purpose (usage), an optional binding (PCR state, or the
 * approvals of an authority: PolicyAuthorize) and certificate metadata. */
typedef struct cit_identity_init_options {
    const char *name;
    const char *usage;         /* code-signing (default), tls-server, tls-client, attestation, audit */
    const char *algorithm;     /* as for keys (default: the profile's) */
    const char *policy;        /* a stored policy */
    const char *pcr_bind;      /* "14": signs only while these PCRs hold their values now, or, with
                                  authorized_by, states the authority approved */
    const char *bank;          /* of pcr_bind (default sha256) */
    bool authority;            /* an approver key for PolicyAuthorize (signs approvals only) */
    const char *authorized_by; /* the authority whose approvals unlock this identity */
    const char *template_name;
    const char *auth_file;     /* a password, required at every use */
} cit_identity_init_options;

int cit_identity_init(json_t **out, cit_ctx *ctx, const cit_identity_init_options *o);
int cit_identity_show(json_t **out, cit_ctx *ctx, const char *name);
int cit_identity_list(json_t **out, cit_ctx *ctx);
int cit_identity_rotate(json_t **out, cit_ctx *ctx, const char *name, const char *auth_file);
int cit_identity_delete(json_t **out, cit_ctx *ctx, const char *name, bool force);
/* A PKCS#10 CSR signed in the TPM. subject: "/CN=a/O=b" or "CN=a,O=b"; san: "DNS:x,IP:1.2.3.4"
 * (may be NULL). output NULL: the PEM in the result ("_text"). */
int cit_identity_csr(json_t **out, cit_ctx *ctx, const char *name, const char *subject, const char *san,
                     const char *output, const char *auth_file);
/* Stores a certificate (PEM or DER) for the identity's current key, after checking it matches. */
int cit_identity_cert_import(json_t **out, cit_ctx *ctx, const char *name, const char *input);
/* The authority signs (in the TPM) the policy digest of the PCRs in pcrs at their values now:
 * identities authorized by it then sign in that state. The approval is stored and logged. */
int cit_policy_approve(json_t **out, cit_ctx *ctx, const char *authority, const char *pcrs, const char *bank,
                       const char *auth_file);
int cit_policy_approvals(json_t **out, cit_ctx *ctx, const char *authority /* NULL: all */);

/* ---- sign approvals (profiles with approval_required, e.g. two-person) ---- */
/* status: pending, approved, denied, used, or NULL for all. */
int cit_approval_list(json_t **out, cit_ctx *ctx, const char *status);
int cit_approval_show(json_t **out, cit_ctx *ctx, int64_t id);
/* Decides a pending request (approve or deny) once; the decider is recorded. */
int cit_approval_decide(json_t **out, cit_ctx *ctx, int64_t id, bool approve, const char *reason);

/* ---- endorsement key (docs/attestation.md, "Endorsement key") ---- */
/* algorithm: rsa-2048 (TCG template L-1), ecc-p256 (L-2), ecc-p384 (H-3), rsa-3072 (H-6); NULL
 * picks the first with an EK certificate in NV, else rsa-2048. */
/* The EK the TPM derives from the TCG EK Credential Profile's template (the platform's template
 * from NV when it wrote one): its public key (PEM), TPM name, template and certificate index. */
int cit_ek_show(json_t **out, cit_ctx *ctx, const char *algorithm);
/* The EK certificate from its NV index (0x01c00002 rsa-2048, 0x01c0000a ecc-p256, 0x01c00016
 * ecc-p384, 0x01c0001c rsa-3072). format: pem (default) or der (needs output). output NULL: the
 * PEM in the result ("_text"). CIT_E_EK_CERT_MISSING, CIT_E_EK_CERT_INVALID. */
int cit_ek_cert(json_t **out, cit_ctx *ctx, const char *algorithm, const char *output, const char *format);
/* Stores a certificate (PEM or DER file) in the EK certificate NV index of its key's algorithm,
 * after checking that its key is this TPM's EK (CIT_E_EK_KEY_MISMATCH; force skips the check).
 * An index the platform created is refused (CIT_E_EK_NV_PLATFORM). */
int cit_ek_cert_import(json_t **out, cit_ctx *ctx, const char *algorithm, const char *input, bool force);
/* The vtpm workspace's own manufacturer CA certificate (made at init; its private key was
 * discarded there). CIT_E_BACKEND_UNSUPPORTED_OP for workspaces without one. output NULL: the
 * PEM in the result ("_text"). */
int cit_ek_ca(json_t **out, cit_ctx *ctx, const char *output);
/* Verifies the EK certificate: chain to the trust store (ca_path: a PEM bundle, a DER file or a
 * directory; NULL: the built-in manufacturer CAs plus a vtpm workspace's own CA), validity now,
 * key equal to the TPM's EK, TPM manufacturer/model/version, key usage. Returns 0 with the
 * per-check report in *out (the caller's) whenever the checks ran; *failed is then 0, or the
 * code of the first failed check (CIT_E_EK_CERT_UNTRUSTED, _EXPIRED, _KEY_MISMATCH,
 * _TPM_ATTRIBUTES, _KEY_USAGE), recorded in cit_error_last() naming the check. A negative return
 * means the checks could not run (CIT_E_EK_CERT_MISSING, CIT_E_CA_STORE_INVALID, ...). */
int cit_ek_verify(json_t **out, cit_ctx *ctx, const char *algorithm, const char *ca_path, int *failed);

/* ---- attestation keys and quotes (docs/attestation.md) ---- */
/* A restricted signing key (ecc-p256 default, or rsa-2048) under the EK of the same family. */
int cit_attest_ak_create(json_t **out, cit_ctx *ctx, const char *path, const char *algorithm);
/* persist: also keep it resident at a persistent handle, so quotes need no EK and no load. */
int cit_attest_ak_create_ex(json_t **out, cit_ctx *ctx, const char *path, const char *algorithm, bool persist);
int cit_attest_ak_show(json_t **out, cit_ctx *ctx, const char *path);
/* TPM2_Quote of pcrs ("0,7,11"; bank default sha256) over nonce_hex. The quote JSON is written
 * to output (else returned under "quote"); eventlog (a file, may be NULL) is embedded. */
int cit_attest_quote(json_t **out, cit_ctx *ctx, const char *ak, const char *pcrs, const char *bank,
                     const char *nonce_hex, const char *output, const char *eventlog);
/* Verifies a quote in software: format, signature (with ak_pub_pem, else the AK key in the file),
 * nonce, PCR digest, and optionally a baseline (from ctx's store) and an event log replay
 * (eventlog file, else the one in the quote). *valid tells whether every check passed; the
 * result lists each check with its code. ctx may have no workspace unless baseline is given. */
int cit_attest_verify(json_t **out, cit_ctx *ctx, const char *quote_file, const char *nonce_hex,
                      const char *ak_pub_pem, const char *baseline, const char *eventlog, bool *valid);

/* TPM2_MakeCredential in software (no TPM): the secret file (at most 64 bytes) protected for the
 * AK name under the EK public key (PEM; RSA 2048/3072, ECC P-256/P-384, TCG templates).
 * encoding: json (default) or tpm2-tools (the binary file tpm2_activatecredential reads). */
int cit_attest_credential_make(json_t **out, const char *ek_pub_pem, const char *ak_name_hex,
                               const char *secret_file, const char *output, const char *encoding);
/* TPM2_ActivateCredential with the AK and the EK (its policy session). output: the secret,
 * 0600; else its hex in the result. Input: citadel's JSON or tpm2-tools' binary file. */
int cit_attest_credential_activate(json_t **out, cit_ctx *ctx, const char *ak, const char *input,
                                   const char *output);

/* ---- recovery ---- */
/* Every PCR-bound object against the PCRs now: {"bound","locked","objects":[{path, kind, state
 * (opens|locked), changed:[{pcr,bank,bound,now}], next_step}]}. Reads only. */
int cit_recover_boot_change(json_t **out, cit_ctx *ctx);
/* The recovery playbooks: tpm-cleared, handle-mismatch, profile-drift, boot-change,
 * metadata-corruption, key-rotation. list: {"playbooks": [{name, summary, fires (true, false, or
 * null with "error" when its detection could not run)}], "firing"}. Reads only. */
int cit_recover_list(json_t **out, cit_ctx *ctx);
/* One playbook: {name, summary, fires, detection: {check, ...findings}, steps, commands}; for
 * boot-change the cit_recover_boot_change report. age_days: key-rotation's rotation age (negative: 365).
 * *fires (may be NULL) tells whether the detection fires. CIT_E_USAGE (naming the playbooks) for
 * an unknown name. */
int cit_recover_show(json_t **out, cit_ctx *ctx, const char *name, int age_days, bool *fires);

/* ---- repair: the store against the TPM ---- */
/* Finds where they disagree, without changing anything: {"clean", "needs_repair", "findings":
 * [{kind, object, detail, fix, operations, [needs]}]}. Kinds: tpm-cleared, tpm-replaced,
 * missing-handle, handle-mismatch, nv-missing, unloadable, orphan-handle, orphan-nv,
 * unfinished-command (a leftover intent), command-in-progress. *needs_repair (may be NULL): some
 * finding has operations that apply would perform, or needs a decision (tpm-replaced, a flag).
 * Handles and NV indices that nothing proves are citadel's are acted on only with
 * include_foreign. */
int cit_repair_scan(json_t **out, cit_ctx *ctx, bool include_foreign, bool *needs_repair);
/* The scan and the exact list of operations cit_repair_apply would perform ("operations", in
 * order). accept_cleared: treat a missing storage key as a clear even when the workspace recorded
 * no endorsement key to prove it. Reads only. */
int cit_repair_plan(json_t **out, cit_ctx *ctx, bool include_foreign, bool accept_cleared);
/* Performs the plan: TPM operations first (each checked against the TPM before it acts, made
 * durable), then every store change in one transaction. {"performed": [...]} equals the plan's
 * operations; running it again finds nothing more to do. In plan mode returns the plan and
 * changes nothing. CIT_E_TPM_REPLACED (another TPM: nothing changed), CIT_E_REPAIR_FAILED (a step
 * failed; the store unchanged, the causes say which TPM operations were done). */
int cit_repair_apply(json_t **out, cit_ctx *ctx, bool include_foreign, bool accept_cleared);

/* ---- garbage collection ---- */
/* What cit_gc_apply would remove: objects retired for longer than retention_days (negative: the
 * default, 30) that nothing kept depends on, their TPM parts, stored versions without an object,
 * leftover temporary files beside the store. Older versions of kept objects are never removed
 * (key verify needs them). Reads only. */
int cit_gc_plan(json_t **out, cit_ctx *ctx, int retention_days);
/* Removes them: the store in one transaction, then the TPM parts (journalled as in object
 * delete), then the files. {"freed": {objects, versions, orphaned_versions, files, tpm_handles,
 * bytes}, "operations": [...]}. In plan mode, the plan. */
int cit_gc_apply(json_t **out, cit_ctx *ctx, int retention_days);

/* ---- dictionary-attack protection ---- */
int cit_lockout_show(json_t **out, cit_ctx *ctx);
/* TPM2_DictionaryAttackLockReset with the lockout authorization (empty unless auth_file). */
int cit_lockout_reset(json_t **out, cit_ctx *ctx, const char *auth_file);

/* ---- objects ---- */
int cit_object_list(json_t **out, cit_ctx *ctx, const char *kind);
int cit_object_tree(json_t **out, cit_ctx *ctx);
int cit_object_dependents(json_t **out, cit_ctx *ctx, const char *path);
int cit_object_rename(json_t **out, cit_ctx *ctx, const char *from, const char *to);
int cit_object_set_status(json_t **out, cit_ctx *ctx, const char *path, bool active);
/* Deletes an object of the given kind (NULL: any), its dependents with force. */
int cit_object_delete(json_t **out, cit_ctx *ctx, const char *path, const char *kind, bool force);

/* ---- attestation: event logs and IMA (docs/attestation.md) ---- */
/* These read a file and need no TPM and no workspace. file: a binary TCG PC Client event log
 * (crypto-agile or SHA-1), at most 64 MiB. A log that does not parse is CIT_E_EVENTLOG_MALFORMED
 * (the event index, its offset and the reason in the error); too large is CIT_E_INPUT_TOO_LARGE. */
/* Every event (or those of the PCRs in pcrs, "0,7" / "0-7"; NULL = all) with its digests and
 * decoded data. */
int cit_eventlog_show(json_t **out, const char *file, const char *pcrs);
/* The PCR values the log produces, per bank: {"pcrs": {"sha256": {"0": hex, ...}, ...}}. */
int cit_eventlog_replay(json_t **out, const char *file);
/* Secure Boot state as the log records it: SecureBoot, PK/KEK/db/dbx, the authorities that
 * allowed images, shim and MOK events, and findings. */
int cit_eventlog_secureboot(json_t **out, const char *file);
/* IMA runtime measurement lists, binary or ASCII (ima-ng, ima-sig, ima-buf; the binary list
 * with any template), at most 64 MiB. Malformed: CIT_E_IMA_MALFORMED. pcrs filters show. */
int cit_ima_show(json_t **out, const char *file, const char *pcrs);
/* Replays the list into PCR values (PCR 10 usually): the list's own bank from the recorded
 * template hashes, and sha1/sha256 recomputed from the template data when every entry has it. */
int cit_ima_replay(json_t **out, const char *file);

/* ---- the audit log (docs/audit-format.md) ---- */
/* One entry to append: stream NULL = "default"; event a type name ([a-z0-9._/:-], 1..64);
 * payload at most 1 MiB (secret-tier streams encrypt it under the audit key). */
typedef struct cit_audit_record {
    const char *stream;
    const char *event;
    const uint8_t *payload;
    size_t payload_len;
} cit_audit_record;
/* Appends n entries in one transaction (the batched API daemons use): all or none. The first
 * new sequence number into *first_seqno (the rest follow in order). Refuses to append to a
 * store that was rolled back or has entries the log never wrote (CIT_E_AUDIT_ROLLBACK,
 * CIT_E_AUDIT_ENTRY_INSERTED). */
int cit_audit_append_batch(cit_ctx *ctx, const cit_audit_record *recs, size_t n, int64_t *first_seqno);
int cit_audit_append(json_t **out, cit_ctx *ctx, const char *stream, const char *event, const uint8_t *payload,
                     size_t len);
int cit_audit_head(json_t **out, cit_ctx *ctx, const char *stream);
/* decrypt: open secret-tier payloads (needs the TPM); otherwise they are shown as sealed. */
int cit_audit_show(json_t **out, cit_ctx *ctx, int64_t seqno, bool decrypt);
/* The hash chain from genesis and the anti-rollback records; the first failure's code (and
 * first_bad_seqno in the result and the error context) when it does not hold. */
int cit_audit_chain_verify(json_t **out, cit_ctx *ctx);
int cit_audit_segments_close(json_t **out, cit_ctx *ctx);
int cit_audit_segments_list(json_t **out, cit_ctx *ctx);
/* RFC 9162 inclusion proof of entry seqno in the tree of tree_size entries (0: the latest
 * sealed segment's), and consistency proof between two tree sizes (new_size 0: the log). */
int cit_audit_prove(json_t **out, cit_ctx *ctx, int64_t seqno, int64_t tree_size);
int cit_audit_prove_consistency(json_t **out, cit_ctx *ctx, int64_t old_size, int64_t new_size);
/* Verifies a proof file (the JSON of audit prove) without a store. */
int cit_audit_proof_check(json_t **out, const char *proof_file);
/* Anti-rollback: the store against the head file and the TPM NV counter. accept: make the
 * store's head the acknowledged one (after a deliberate restore), logged as an entry. */
int cit_audit_rollback(json_t **out, cit_ctx *ctx, bool accept);
int cit_audit_stream_create(json_t **out, cit_ctx *ctx, const char *name, const char *tier);
int cit_audit_stream_list(json_t **out, cit_ctx *ctx);
/* The master KEK for secret-tier payloads, sealed in the TPM. */
int cit_audit_key_create(json_t **out, cit_ctx *ctx);
int cit_audit_key_rotate(json_t **out, cit_ctx *ctx);
int cit_audit_key_show(json_t **out, cit_ctx *ctx);
/* A C2SP tlog-checkpoint for segment (0: the latest), signed in the TPM by the ECC P-256
 * identity (or key) at identity. */
int cit_audit_sign(json_t **out, cit_ctx *ctx, const char *identity, int64_t segment);
/* Everything from genesis: chain, segment roots, anti-rollback, every checkpoint's signature
 * and consistency with the one before; witnesses > 0 requires that many valid co-signatures
 * on the latest checkpoint. */
int cit_audit_verify(json_t **out, cit_ctx *ctx, int witnesses);
/* The same, with every checkpoint required to be signed by the key in log_key_pem (a PEM file
 * obtained out of band): without it, verify trusts the signer keys recorded in the store it
 * checks. */
int cit_audit_verify_pinned(json_t **out, cit_ctx *ctx, int witnesses, const char *log_key_pem);
/* The latest checkpoint with consistency proofs from the earlier ones (from > 0: only from
 * that tree size), for witnesses. output: file or NULL. */
int cit_audit_publish(json_t **out, cit_ctx *ctx, int64_t from, const char *output);
/* Witness side: checks a publish file against the log key pinned for its origin (log_key_pem
 * file the first time) and the tree it saw last, then co-signs with identity. */
int cit_audit_witness_cosign(json_t **out, cit_ctx *ctx, const char *identity, const char *input,
                             const char *log_key, const char *output);
/* Log side: register a witness's public key (name, key PEM file), or import a receipt. */
int cit_audit_witness_register(json_t **out, cit_ctx *ctx, const char *name, const char *key_file);
int cit_audit_witness_import(json_t **out, cit_ctx *ctx, const char *receipt_file);
int cit_audit_witness_list(json_t **out, cit_ctx *ctx);

/* ---- the Measured Merkle Anchor (docs/mma.md) ---- */
/* Measurements are entries of the audit log's `measure` stream; a measure checkpoint seals them
 * into a Merkle segment and may extend the segment's root into a PCR, so an identity bound to
 * that PCR through an authority (PolicyAuthorize) signs only in states the authority approved,
 * and every approval is itself an entry of the log. */

/* Measures files (SHA-256 of the contents, size, resolved path) into the `measure` stream as
 * `measure.file` entries, all in one append (n at most 1024; a file at most 4 GiB). kind: a label
 * such as binary, config or library (NULL: "file"). Every file is hashed before anything is
 * written. Errors: CIT_E_INPUT_READ (missing, unreadable, not a regular file), CIT_E_USAGE, and
 * those of cit_audit_append_batch. */
int cit_measure_file(json_t **out, cit_ctx *ctx, const char *const *paths, size_t n, const char *kind);

typedef struct cit_measure_enroll_options {
    int pcr;               /* the anchor PCR (8-15 but 10; 14 usually), or -1: its value now is
                              recorded as the base the checkpoint extends are replayed from */
    bool verify_ima;       /* cross-check with the kernel's IMA runtime measurement list */
    bool require_ima;      /* fail unless IMA measured this binary (CIT_E_MEASURE_IMA_NOT_FOUND) */
    const char *ima_log;   /* NULL: /sys/kernel/security/ima/{binary,ascii}_runtime_measurements */
    const char *binary;    /* NULL: the running binary (/proc/self/exe) */
} cit_measure_enroll_options;

/* Measures the running citadel binary into a `measure.enroll` entry (with the anchor PCR's value
 * now, when o->pcr >= 0). With verify_ima the IMA list is searched for the binary's digest: the
 * verdict (measured, not-measured, unavailable) is in the result and the entry; a list that
 * names the binary's path only with other digests is CIT_E_MEASURE_IMA_MISMATCH and nothing is
 * recorded. CIT_E_MEASURE_PCR_REFUSED for a PCR that cannot anchor (0-7, 10, 16-23). */
int cit_measure_enroll(json_t **out, cit_ctx *ctx, const cit_measure_enroll_options *o);
/* Seals the measurements since the last measure checkpoint into an audit segment (a new one, or
 * the latest when the log is sealed to its head) and records a `measure.checkpoint` entry (in the
 * next segment: it names the segment's root). pcr >= 0: then extends PCR pcr (sha256 bank) with
 * SHA-256("citadel.measure.checkpoint/v1" 0x00 origin 0x00 be64(tree_size) root), after the
 * entry is written. CIT_E_MEASURE_NOTHING_PENDING when nothing was measured since. */
int cit_measure_checkpoint(json_t **out, cit_ctx *ctx, int pcr);
/* cit_audit_sign with the anchor identity; segment 0: the latest segment, after sealing the log
 * when a measure.approval entry is not under a segment yet (the signature covers it). The TPM refuses
 * (CIT_E_POLICY_FAIL) while the PCR state is not one the identity's authority approved. */
int cit_measure_sign(json_t **out, cit_ctx *ctx, const char *identity, int64_t segment);
/* A measurement's verification: the latest signed checkpoint covering entry seqno (signature,
 * signer), the RFC 9162 inclusion proof to its root, and the PCR replay when its measure
 * checkpoint extended a PCR. The report is returned in *out also on failure (its first failing
 * code: CIT_E_AUDIT_NOT_SIGNED, CIT_E_AUDIT_CHECKPOINT_INVALID, CIT_E_MEASURE_PCR_MISMATCH ...).
 * CIT_E_MEASURE_NOT_MEASUREMENT for an entry that is not measure.file/measure.enroll. */
int cit_measure_verify(json_t **out, cit_ctx *ctx, int64_t seqno);
/* The audit anti-rollback check (cit_audit_rollback) and the replay of every anchor PCR against
 * the TPM; the report in *out also on failure (CIT_E_AUDIT_ROLLBACK ..., CIT_E_MEASURE_PCR_MISMATCH). */
int cit_measure_rollback_check(json_t **out, cit_ctx *ctx);
/* Measurements (the newest 100), those pending, the last measure checkpoint, approvals in the log,
 * and each anchor PCR's replay with the identities bound to it. Reads the PCRs. */
int cit_measure_status(json_t **out, cit_ctx *ctx);

/* ---- TPM2_Certify and AK checks (branch tpmnet; docs/attestation.md "Certify") ---- */
/* The marshalled TPM2B_PUBLIC of a key, identity or AK in the store (its current version), and
 * its TPM name (hex; name_hex may be NULL). *blob and *name_hex are the caller's (free()).
 * CIT_E_OBJECT_NOT_FOUND; CIT_E_OBJECT_KIND for objects that are not TPM keys (secrets, NV,
 * Ed25519 keys, whose TPM object is the sealed seed). */
int cit_key_public_blob(cit_ctx *ctx, const char *path, uint8_t **blob, size_t *len, char **name_hex);
/* TPM2_Certify: the AK (path) certifies that the object at key_path (a key, identity or AK) is
 * loaded in this TPM. qualifying: TPMS_ATTEST extraData (<= 64 bytes, may be NULL with qlen 0).
 * *out: {"attest","signature" (base64, the exact TPMS_ATTEST and TPMT_SIGNATURE bytes),
 * "key_public" (base64 TPM2B_PUBLIC), "key_name", "ak_name", "ak_public" (base64 TPM2B_PUBLIC),
 * "qualifying" (hex), "key", "ak"}. Keys with a password are refused (CIT_E_AUTH_FAIL); keys
 * with a PCR or authority policy and no password are certified (the policy guards signing, not
 * certification). CIT_E_OBJECT_KIND when ak is not an AK or key_path not a TPM key;
 * CIT_E_USAGE for qualifying data over 64 bytes; CIT_E_TPM_COMMAND when the TPM refuses. */
int cit_attest_certify(json_t **out, cit_ctx *ctx, const char *ak, const char *key_path,
                       const uint8_t *qualifying, size_t qlen);
/* In software, no TPM: the AK's TPM2B_PUBLIC must be a restricted signing key (not decrypt)
 * with fixedTPM, fixedParent and sensitiveDataOrigin, RSA or NIST ECC, its name algorithm and
 * signing scheme (ECDSA, RSASSA, RSAPSS) with SHA-256 or stronger, no reserved attribute bit. On success *spki_pem
 * (its SubjectPublicKeyInfo PEM) and *name_hex (its TPM name) are the caller's (either may be
 * NULL) and *out is {"valid":true,"ak_name","ak_public_pem","attributes"}. On refusal returns
 * CIT_E_AK_PUBLIC_INVALID and *out is still set (the caller's): {"valid":false,"detail",...}. */
int cit_attest_ak_public_check(json_t **out, const uint8_t *ak_public, size_t len, char **spki_pem, char **name_hex);
/* In software: checks a certification made by cit_attest_certify (or tpm2_certify -o -s):
 * checks[] in *out, each {"check","status","detail","code"?}: ak_public (as
 * cit_attest_ak_public_check: CIT_E_AK_PUBLIC_INVALID), format (TPM_GENERATED magic, type
 * TPM_ST_ATTEST_CERTIFY, a TPMT_SIGNATURE: CIT_E_CERTIFY_MALFORMED), signature (by the AK over
 * the attest bytes, in the AK's own scheme: CIT_E_CERTIFY_SIGNATURE), qualifying (extraData ==
 * qualifying: CIT_E_CERTIFY_QUALIFYING), name (the certified name == the name of key_public:
 * CIT_E_CERTIFY_NAME), key_attributes (fixedTPM, fixedParent, sensitiveDataOrigin, sign, not
 * decrypt: CIT_E_CERTIFY_KEY_ATTRIBUTES). Returns 0 with *valid false and "code" (the first
 * failed check's) in *out when a check fails; *spki_pem (the certified key's public key PEM,
 * the caller's, may be NULL) is set only when *valid. CIT_E_USAGE for qlen > 64. */
int cit_attest_certify_verify(json_t **out, const uint8_t *ak_public, size_t ak_len,
                              const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
                              const uint8_t *key_public, size_t kp_len, const uint8_t *qualifying, size_t qlen,
                              bool *valid, char **spki_pem);
/* ---- end of the tpmnet block ---- */
/* ==== ca: the certificate authority (issue 8; docs/ca.md) ==== */
typedef struct cit_ca cit_ca; /* an open CA: certificate + signing key ready */
typedef struct cit_ca_issue_options {
    const char *profile;      /* "tls-server" | "tls-client" | "devid" | "ak" */
    int days;                 /* <= 0: the profile's default; never past the CA's own notAfter */
    const char *subject;      /* "CN=a,O=b" or "/CN=a/O=b": overrides a CSR's subject; required by cit_ca_issue_key */
    const char *san;          /* "DNS:a,IP:1.2.3.4,URI:x" (may be NULL), added to a CSR's SANs */
    const uint8_t *hw_serial; /* devid/ak: the TPM's identification, put in a HardwareModuleName
                                 (RFC 4108 otherName in subjectAltName, hwType = TCG OID 2.23.133.1.2) */
    size_t hw_serial_len;
} cit_ca_issue_options;

/* Opens a CA of ctx's store: a file key is decrypted once (its key-encryption key unsealed from
 * the TPM) and kept as an EVP_PKEY until cit_ca_close (the decrypted PKCS#8 bytes are wiped at
 * once); a TPM-held key signs through ctx. In plan mode nothing is unsealed and the issuing
 * functions only check their input and return a plan. Not thread-safe: the caller serialises
 * use of one cit_ca (and of ctx). CIT_E_CA_NOT_FOUND, CIT_E_CA_KEY_DAMAGED, TPM errors. */
int cit_ca_open(cit_ca **out, cit_ctx *ctx, const char *name);
void cit_ca_close(cit_ca *ca);
/* From a PKCS#10 CSR (PEM or DER); the CSR's own signature is checked first. The certificate
 * is recorded in the store (serial, subject, not_after, status). *cert_pem is the caller's.
 * CIT_E_CA_CSR_INVALID, CIT_E_CA_CSR_SIGNATURE, CIT_E_CA_PROFILE_UNKNOWN, CIT_E_CA_UNUSABLE. */
int cit_ca_issue_csr(json_t **out, cit_ca *ca, const uint8_t *csr, size_t csr_len, const cit_ca_issue_options *o,
                     char **cert_pem);
/* From a public key (DER SubjectPublicKeyInfo) and o->subject: for AK certificates (a
 * restricted TPM key cannot sign a CSR). */
int cit_ca_issue_key(json_t **out, cit_ca *ca, const uint8_t *spki_der, size_t spki_len,
                     const cit_ca_issue_options *o, char **cert_pem);
/* Batches issues into one store transaction (enrolld: an enrollment's AK and DevID
 * certificates). After cit_ca_begin, cit_ca_issue_csr and cit_ca_issue_key build, sign and return
 * their certificates but do not record them; cit_ca_commit records all of them in one
 * transaction (one sync). All or nothing: if an issue of the batch failed, or the commit fails,
 * none is recorded, and cit_ca_rollback discards the batch: the caller must then discard the
 * certificates returned since cit_ca_begin and never hand them out (the store does not know
 * them, so they could not be revoked). cit_ca_close rolls back an open batch. CIT_E_USAGE: begin with a batch open,
 * commit without one, commit after a failed issue. */
int cit_ca_begin(cit_ca *ca);
int cit_ca_commit(cit_ca *ca);
void cit_ca_rollback(cit_ca *ca);
/* Revokes by serial (hex); reason: RFC 5280 name (unspecified (NULL), keyCompromise,
 * cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold,
 * privilegeWithdrawn, aACompromise). CIT_E_CA_SERIAL_UNKNOWN, CIT_E_CA_ALREADY_REVOKED. */
int cit_ca_revoke(json_t **out, cit_ctx *ctx, const char *serial_hex, const char *reason);
/* A signed v2 CRL of the CA (crlNumber one more than the last, AKI, nextUpdate 7 days on).
 * *crl_pem is the caller's. */
int cit_ca_crl(json_t **out, cit_ca *ca, char **crl_pem);
/* The same with nextUpdate `days` days on (<= 0: 7). */
int cit_ca_crl_days(json_t **out, cit_ca *ca, int days, char **crl_pem);
/* The status of a certificate issued by this store: "valid", "revoked", "expired" or "unknown"
 * (a static string). */
int cit_ca_cert_status(cit_ctx *ctx, const char *serial_hex, const char **status);
/* The CA certificate (PEM, the caller's) */
int cit_ca_cert_pem(cit_ca *ca, char **pem);

typedef struct cit_ca_init_options {
    const char *name;      /* [a-z0-9._-], at most 48 characters */
    const char *parent;    /* cit_ca_intermediate: the issuing CA (required) */
    const char *algorithm; /* ecc-p256 (default), ecc-p384, rsa-3072 */
    bool tpm;              /* the key in the TPM (a key object ca/NAME/key); else a software key
                              encrypted under a KEK sealed in the TPM (ca/NAME/kek) */
    const char *subject;   /* default "CN=NAME" */
    int days;              /* <= 0: root 3650, intermediate 1825; never past the parent's notAfter */
    int pathlen;           /* intermediate: basicConstraints pathLenConstraint (< 0: 0) */
} cit_ca_init_options;
/* A root CA (self-signed). *cert_pem (may be NULL) gets its certificate. CIT_E_CA_EXISTS. */
int cit_ca_init(json_t **out, cit_ctx *ctx, const cit_ca_init_options *o, char **cert_pem);
/* An intermediate CA signed by o->parent (recorded as a certificate the parent issued). */
int cit_ca_intermediate(json_t **out, cit_ctx *ctx, const cit_ca_init_options *o, char **cert_pem);
/* The CAs: name, parent, algorithm, key storage, subject, validity, issued/revoked counts. */
int cit_ca_list(json_t **out, cit_ctx *ctx);
/* One CA with its certificate ("certificate_pem") and the certificates it issued. */
int cit_ca_show(json_t **out, cit_ctx *ctx, const char *name);
/* Trust stores ("manufacturers": TPM vendors' EK roots; "peers": other CAs). add: one CA
 * certificate (PEM or DER) from file ("-" stdin). list: store NULL = both. */
int cit_ca_trust_add(json_t **out, cit_ctx *ctx, const char *store, const char *name, const char *file);
int cit_ca_trust_list(json_t **out, cit_ctx *ctx, const char *store);
int cit_ca_trust_remove(json_t **out, cit_ctx *ctx, const char *store, const char *name);
/* The PEM bundle of a trust store (empty string when it is empty). *pem is the caller's. */
int cit_ca_trust_bundle(cit_ctx *ctx, const char *store, char **pem);
/* ==== end ca ==== */

#ifdef __cplusplus
}
#endif
