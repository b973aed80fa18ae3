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

const cli_verb cli_verbs_key[] = {
    {"create", do_create, "PATH", 1, 1, "create a key (create, load, persist and flush in one step)",
     "The key is made in the TPM under the storage primary key (or --parent) and its wrapped\n"
     "private part kept in the store; it is loaded on demand for each use, so TPM restarts\n"
     "never invalidate it. --persist also keeps it resident at a persistent handle.",
     "citadel tpm key create signing/release --algorithm ecc-p256",
     {{"algorithm", "ALG", "ecc-p256 (default), ecc-p384, rsa-2048, rsa-3072"},
      {"scheme", "SCHEME", "ecdsa (ECC), rsassa (RSA default) or rsapss"},
      {"usage", "USAGE", "sign (default) or storage (a parent for other keys)"},
      {"parent", "PATH", "create under this storage key instead of the storage primary key"},
      {"persist", NULL, "make it a persistent TPM object too"},
      {"auth-file", "FILE", "protect the key with the password in FILE ('-' = stdin)"},
      {"template", "NAME", "a recipe for what is not given: ci-signer, tls-server (`template list`)"},
      {"pcr", "LIST", "sign only while these PCRs keep their values now (the TPM enforces it)"},
      {"bank", "BANK", "the PCR bank of --pcr (default sha256)"},
      {"policy", "NAME", "sign only when this stored policy is satisfied"}}},
    {"list", do_list, NULL, 0, 0, "list keys", NULL, "citadel tpm key list", {{0}}},
    {"show", do_show, "PATH", 1, 1, "public key, TPM name and all versions of a key", NULL,
     "citadel tpm key show signing/release", {{0}}},
    {"sign", do_sign, "PATH", 1, 1, "sign a file (hashed in software, signed in the TPM)",
     "ECDSA signatures are DER (X9.62) by default, the form `openssl dgst -verify` takes;\n"
     "--encoding raw gives r||s. RSA keys sign with PKCS#1 v1.5 or PSS, as created.",
     "citadel tpm key sign signing/release --input release.tar.gz --output release.sig",
     {{"input", "FILE", "the file to sign ('-' for stdin; required)"},
      {"output", "FILE", "write the signature here (else it is shown in the result)"},
      {"digest", "ALG", "sha256, sha384 or sha512 (default: sha256, sha384 for P-384/RSA-3072)"},
      {"encoding", "ENC", "der (default) or raw (ECDSA r||s)"},
      {"input-is-digest", NULL, "the input is already the digest (raw bytes or hex)"},
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
     "takes it), ssh (an OpenSSH public key line), jwk (RFC 7517 with an RFC 7638 kid).",
     "citadel tpm key export-pub signing/release --export-for ssh",
     {{"export-for", "FMT", "openssl (default), pem, cosign, ssh or jwk"},
      {"output", "FILE", "write it to a file"},
      {"version", "N", "an older version of the key"}}},
    {"rotate", do_rotate, "PATH", 1, 1, "make a new version of a key; it signs from now on",
     "Older versions stay in the store: `key show` lists them and `key verify` accepts their\n"
     "signatures.",
     "citadel tpm key rotate signing/release",
     {{"auth-file", "FILE", "the key's password, for keys created with one (the new version keeps it)"}}},
    {0}};
