/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

static int need(const cli_args *a, const char *opt) {
    if (cli_get(a, opt))
        return 0;
    cit_error_set(CIT_E_USAGE, "--%s is required", opt);
    cit_error_step("run `citadel tpm key %s --help`", a->verb->name);
    return CIT_E_USAGE;
}

static int do_create(cli_env *e, const cli_args *a, json_t **out) {
    cit_key_create_options o = {
        .path = a->pos[0],
        .algorithm = cli_get(a, "algorithm"),
        .scheme = cli_get(a, "scheme"),
        .usage = cli_get(a, "usage"),
        .parent = cli_get(a, "parent"),
        .persist = cli_flag(a, "persist"),
        .auth_file = cli_get(a, "auth-file"),
        .template_name = cli_get(a, "template"),
        .pcrs = cli_get(a, "pcr"),
        .bank = cli_get(a, "bank"),
        .policy = cli_get(a, "policy"),
    };
    return cit_key_create(out, e->ctx, &o);
}
static int do_list(cli_env *e, const cli_args *a, json_t **out) { return cit_key_list(out, e->ctx); }
static int do_show(cli_env *e, const cli_args *a, json_t **out) { return cit_key_show(out, e->ctx, a->pos[0]); }
static int do_sign(cli_env *e, const cli_args *a, json_t **out) {
    if (need(a, "input") < 0)
        return CIT_E_USAGE;
    cit_key_sign_options o = {
        .path = a->pos[0],
        .input = cli_get(a, "input"),
        .output = cli_get(a, "output"),
        .digest = cli_get(a, "digest"),
        .encoding = cli_get(a, "encoding"),
        .input_is_digest = cli_flag(a, "input-is-digest"),
        .auth_file = cli_get(a, "auth-file"),
    };
    int approval = 0;
    if (cli_get_int(a, "approval", &approval) < 0)
        return CIT_E_USAGE;
    o.approval = approval;
    return cit_key_sign(out, e->ctx, &o);
}
static int do_verify(cli_env *e, const cli_args *a, json_t **out) {
    if (need(a, "input") < 0 || need(a, "signature") < 0)
        return CIT_E_USAGE;
    int version;
    if (cli_get_int(a, "version", &version) < 0)
        return CIT_E_USAGE;
    return cit_key_verify(out, e->ctx, a->pos[0], cli_get(a, "input"), cli_get(a, "signature"),
                          cli_get(a, "digest"), cli_get(a, "encoding"), version);
}
static int do_delete(cli_env *e, const cli_args *a, json_t **out) {
    return cit_key_delete(out, e->ctx, a->pos[0], cli_flag(a, "force"));
}
static int do_export(cli_env *e, const cli_args *a, json_t **out) {
    int version;
    if (cli_get_int(a, "version", &version) < 0)
        return CIT_E_USAGE;
    return cit_key_export_pub(out, e->ctx, a->pos[0], cli_get(a, "export-for"), cli_get(a, "output"), version);
}
static int do_rotate(cli_env *e, const cli_args *a, json_t **out) {
    return cit_key_rotate(out, e->ctx, a->pos[0], cli_get(a, "auth-file"));
}
static int do_backup(cli_env *e, const cli_args *a, json_t **out) {
    if (need(a, "output") < 0 || need(a, "passphrase-file") < 0)
        return CIT_E_USAGE;
    cit_key_backup_options o = {
        .path = a->pos[0],
        .output = cli_get(a, "output"),
        .passphrase_file = cli_get(a, "passphrase-file"),
        .kdf = cli_get(a, "kdf"),
        .auth_file = cli_get(a, "auth-file"),
    };
    return cit_key_backup(out, e->ctx, &o);
}
static int do_restore(cli_env *e, const cli_args *a, json_t **out) {
    if (need(a, "input") < 0 || need(a, "passphrase-file") < 0)
        return CIT_E_USAGE;
    cit_key_restore_options o = {
        .path = a->pos[0],
        .input = cli_get(a, "input"),
        .passphrase_file = cli_get(a, "passphrase-file"),
        .pcrs = cli_get(a, "pcr"),
        .bank = cli_get(a, "bank"),
        .policy = cli_get(a, "policy"),
        .auth_file = cli_get(a, "auth-file"),
    };
    return cit_key_restore(out, e->ctx, &o);
}

const cli_verb cli_verbs_key[] = {
    {"create", do_create, "PATH", 1, 1, "create a key (create, load, persist and flush in one step)",
     "The key is made in the TPM under the storage primary key (or --parent) and its wrapped\n"
     "private part kept in the store; it is loaded on demand for each use, so TPM restarts\n"
     "never invalidate it. --persist also keeps it resident at a persistent handle.\n"
     "\n"
     "--algorithm ed25519 makes a software Ed25519 key (TPMs do not sign with Ed25519): its\n"
     "seed comes from the TPM's and libsodium's random generators and is sealed in the TPM\n"
     "under PCRs 0,7 (or --pcr LIST / --policy NAME; --auth-file adds a password); it is never\n"
     "stored in clear. Each signature unseals it into locked memory and wipes it afterwards.\n"
     "Keep a recovery file (`key backup`): a sealed seed is lost with the TPM or when the PCRs\n"
     "change for good. See docs/ed25519.md.",
     "citadel tpm key create signing/release --algorithm ecc-p256\n"
     "  citadel tpm key create ssh/deploy --algorithm ed25519 --pcr 0,7",
     {{"algorithm", "ALG", "ecc-p256 (default), ecc-p384, rsa-2048, rsa-3072, ed25519 (TPM-sealed seed)"},
      {"scheme", "SCHEME", "ecdsa (ECC), rsassa (RSA default) or rsapss; eddsa (ed25519)"},
      {"usage", "USAGE", "sign (default) or storage (a parent for other keys)"},
      {"parent", "PATH", "create under this storage key instead of the storage primary key"},
      {"persist", NULL, "make it a persistent TPM object too"},
      {"auth-file", "FILE", "protect the key with the password in FILE ('-' = stdin)"},
      {"template", "NAME", "a recipe for what is not given: ci-signer, tls-server (`template list`)"},
      {"pcr", "LIST", "sign only while these PCRs keep their values now (the TPM enforces it; ed25519 default 0,7)"},
      {"bank", "BANK", "the PCR bank of --pcr (default sha256)"},
      {"policy", "NAME", "sign only when this stored policy is satisfied"}}},
    {"list", do_list, NULL, 0, 0, "list keys", NULL, "citadel tpm key list", {{0}}},
    {"show", do_show, "PATH", 1, 1, "public key, TPM name and all versions of a key", NULL,
     "citadel tpm key show signing/release", {{0}}},
    {"sign", do_sign, "PATH", 1, 1, "sign a file (hashed in software, signed in the TPM)",
     "ECDSA signatures are DER (X9.62) by default, the form `openssl dgst -verify` takes;\n"
     "--encoding raw gives r||s. RSA keys sign with PKCS#1 v1.5 or PSS, as created.\n"
     "Ed25519 keys sign the message itself (read into memory, at most 64 MiB; no --digest):\n"
     "the TPM unseals the seed if the key's policy holds (else TPM0047, naming the PCRs that\n"
     "changed), libsodium signs, the seed is wiped; the signature is the raw 64 bytes.",
     "citadel tpm key sign signing/release --input release.tar.gz --output release.sig",
     {{"input", "FILE", "the file to sign ('-' for stdin; required; ed25519: at most 64 MiB)"},
      {"output", "FILE", "write the signature here (else it is shown in the result)"},
      {"digest", "ALG", "sha256, sha384 or sha512 (default: sha256, sha384 for P-384/RSA-3072; not ed25519)"},
      {"encoding", "ENC", "der (default) or raw (ECDSA r||s); ed25519 signatures are always raw"},
      {"input-is-digest", NULL, "the input is already the digest (raw bytes or hex; not ed25519)"},
      {"auth-file", "FILE", "the key's password, for keys created with one"},
      {"approval", "ID", "an approved sign request (profiles that require approval)"}}},
    {"verify", do_verify, "PATH", 1, 1, "verify a signature in software (works without the TPM)",
     "Checks the signature against every version of the key (or --version N) and says which\n"
     "version made it.",
     "citadel tpm key verify signing/release --input release.tar.gz --signature release.sig",
     {{"input", "FILE", "the signed file (required)"},
      {"signature", "FILE", "the signature (required)"},
      {"digest", "ALG", "the digest used when signing"},
      {"encoding", "ENC", "der (default) or raw"},
      {"version", "N", "only this version of the key"}}},
    {"delete", do_delete, "PATH", 1, 1, "delete a key (and evict it if persistent)",
     "A key with dependents (keys created under it) is only deleted with --force, which deletes\n"
     "the dependents too.",
     "citadel tpm key delete signing/old", {{"force", NULL, "also delete the objects that depend on it"}}},
    {"export-pub", do_export, "PATH", 1, 1, "export the public key for another tool",
     "Formats: openssl or pem (SubjectPublicKeyInfo PEM), cosign (PEM, as `cosign verify --key`\n"
     "takes it), ssh (an OpenSSH public key line), jwk (RFC 7517 with an RFC 7638 kid; ed25519\n"
     "keys as OKP/Ed25519, RFC 8037).",
     "citadel tpm key export-pub signing/release --export-for ssh",
     {{"export-for", "FMT", "openssl (default), pem, cosign, ssh or jwk"},
      {"output", "FILE", "write it to a file"},
      {"version", "N", "an older version of the key"}}},
    {"rotate", do_rotate, "PATH", 1, 1, "make a new version of a key; it signs from now on",
     "Older versions stay in the store: `key show` lists them and `key verify` accepts their\n"
     "signatures. An ed25519 key gets a new seed, sealed with the same policy (back it up again).",
     "citadel tpm key rotate signing/release",
     {{"auth-file", "FILE", "the key's password, for keys created with one (the new version keeps it)"}}},
    {"backup", do_backup, "PATH", 1, 1, "write a passphrase-encrypted recovery file of an ed25519 key",
     "The TPM unseals the seed (the key's policy must hold now); Argon2id derives a key from\n"
     "the passphrase and XChaCha20-Poly1305 encrypts the seed; the header (public key, KDF\n"
     "parameters, path) is authenticated. The file is written with mode 0600. The passphrase\n"
     "(at least 12 bytes) is read from a file, never from the command line. Only ed25519 keys:\n"
     "TPM keys never leave their TPM. Format and recovery procedure: docs/ed25519.md.",
     "citadel tpm key backup ssh/deploy --output deploy.citkey --passphrase-file pass.txt",
     {{"output", "FILE", "the recovery file (required)"},
      {"passphrase-file", "FILE", "the passphrase ('-' = stdin; one trailing newline ignored; required)"},
      {"kdf", "LEVEL", "Argon2id strength: interactive (64 MiB), moderate (256 MiB, default), sensitive (1 GiB)"},
      {"auth-file", "FILE", "the key's password, for keys created with one"}}},
    {"restore", do_restore, "PATH", 1, 1, "create an ed25519 key from a recovery file, sealed by this TPM",
     "Decrypts the file written by `key backup`, checks that the seed gives the public key in\n"
     "its header, and seals the seed in this workspace's TPM under --pcr / --policy (default\n"
     "PCRs 0,7 as they are now). A wrong passphrase (TPM0064), a damaged or modified file\n"
     "(TPM0063), a truncated one (TPM0062) or another kind of file (TPM0061) creates nothing.",
     "citadel tpm key restore ssh/deploy --input deploy.citkey --passphrase-file pass.txt",
     {{"input", "FILE", "the recovery file (required)"},
      {"passphrase-file", "FILE", "the passphrase ('-' = stdin; required)"},
      {"pcr", "LIST", "seal to these PCRs' values now (default 0,7)"},
      {"bank", "BANK", "the PCR bank of --pcr (default sha256)"},
      {"policy", "NAME", "seal to this stored policy instead"},
      {"auth-file", "FILE", "protect the restored key with the password in FILE"}}},
    {0}};
