/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

static int do_init(cli_env *e, const cli_args *a, json_t **out) {
    cit_identity_init_options o = {
        .name = a->pos[0],
        .usage = cli_get(a, "usage"),
        .algorithm = cli_get(a, "algorithm"),
        .policy = cli_get(a, "policy"),
        .pcr_bind = cli_get(a, "pcr-bind"),
        .bank = cli_get(a, "bank"),
        .authority = cli_flag(a, "authority"),
        .authorized_by = cli_get(a, "authorized-by"),
        .template_name = cli_get(a, "template"),
        .auth_file = cli_get(a, "auth-file"),
    };
    return cit_identity_init(out, e->ctx, &o);
}
static int do_show(cli_env *e, const cli_args *a, json_t **out) { return cit_identity_show(out, e->ctx, a->pos[0]); }
static int do_list(cli_env *e, const cli_args *a, json_t **out) { return cit_identity_list(out, e->ctx); }
static int do_rotate(cli_env *e, const cli_args *a, json_t **out) {
    return cit_identity_rotate(out, e->ctx, a->pos[0], cli_get(a, "auth-file"));
}
static int do_delete(cli_env *e, const cli_args *a, json_t **out) {
    return cit_identity_delete(out, e->ctx, a->pos[0], cli_flag(a, "force"));
}
static int do_csr(cli_env *e, const cli_args *a, json_t **out) {
    return cit_identity_csr(out, e->ctx, a->pos[0], cli_get(a, "subject"), cli_get(a, "san"), cli_get(a, "output"),
                            cli_get(a, "auth-file"));
}
static int do_cert_import(cli_env *e, const cli_args *a, json_t **out) {
    if (!cli_get(a, "input")) {
        cit_error_set(CIT_E_USAGE, "--input is required");
        cit_error_step("run `citadel tpm identity cert-import --help`");
        return CIT_E_USAGE;
    }
    return cit_identity_cert_import(out, e->ctx, a->pos[0], cli_get(a, "input"));
}

const cli_verb cli_verbs_identity[] = {
    {"init", do_init, "NAME", 1, 1, "create an identity: a TPM signing key with a usage, binding and certificate",
     "An identity is a key (every `key` command works on it) with a purpose and an optional\n"
     "binding the TPM enforces at every signature:\n"
     "  --pcr-bind N          signs only while PCR N has its value now\n"
     "  --authority           an approver key: it signs approvals (`policy approve`), nothing else\n"
     "  --authorized-by AUTH  with --pcr-bind N: signs in any state of PCR N that AUTH approved\n"
     "                        (TPM2_PolicyAuthorize), so an upgrade is an approval, not a re-key.\n"
     "See docs/identities.md.",
     "citadel tpm identity init anchor --authorized-by release --pcr-bind 14",
     {{"usage", "USAGE", "code-signing (default), tls-server, tls-client, attestation or audit"},
      {"algorithm", "ALG", "ecc-p256 (default), ecc-p384, rsa-2048, rsa-3072"},
      {"pcr-bind", "LIST", "bind signing to these PCRs (values now, or approved states)"},
      {"bank", "BANK", "the PCR bank of --pcr-bind (default sha256)"},
      {"authority", NULL, "make an approver (PolicyAuthorize) key"},
      {"authorized-by", "AUTH", "sign in the PCR states the authority AUTH approves"},
      {"policy", "NAME", "bind to a stored policy instead"},
      {"template", "NAME", "a recipe (`template list`), e.g. tls-server"},
      {"auth-file", "FILE", "also require the password in FILE at every use"}}},
    {"show", do_show, "NAME", 1, 1, "an identity: key, usage, binding, policy digest and certificate", NULL,
     "citadel tpm identity show anchor", {{0}}},
    {"list", do_list, NULL, 0, 0, "list identities", NULL, "citadel tpm identity list", {{0}}},
    {"rotate", do_rotate, "NAME", 1, 1, "a new key for the identity (same usage and binding; no certificate yet)",
     "An authority that authorizes other identities cannot be rotated: their policies name its key.",
     "citadel tpm identity rotate build-signer", {{"auth-file", "FILE", "the identity's password, if it has one"}}},
    {"delete", do_delete, "NAME", 1, 1, "delete an identity",
     "An authority that authorizes other identities is only deleted with --force; approvals\n"
     "already made keep working, but no new state can be approved.",
     "citadel tpm identity delete old-signer", {{"force", NULL, "delete even an authority in use"}}},
    {"csr", do_csr, "NAME", 1, 1, "a PKCS#10 certificate signing request, signed in the TPM",
     "The key usage and extended key usage follow the identity's usage (code-signing:\n"
     "codeSigning, tls-server: serverAuth, tls-client: clientAuth). `openssl req -verify` checks it.",
     "citadel tpm identity csr web --subject /CN=web.example.org --san DNS:web.example.org --output web.csr",
     {{"subject", "DN", "the subject, /CN=name/O=org or CN=name,O=org (required)"},
      {"san", "NAMES", "subject alternative names, e.g. DNS:a.example.org,IP:192.0.2.1"},
      {"output", "FILE", "write the PEM here (else it is printed)"},
      {"auth-file", "FILE", "the identity's password, if it has one"}}},
    {"cert-import", do_cert_import, "NAME", 1, 1, "store the certificate issued for the identity's key",
     "The certificate (PEM or DER) must certify the identity's current key; it is kept with that\n"
     "key version.",
     "citadel tpm identity cert-import web --input web.pem", {{"input", "FILE", "the certificate (required)"}}},
    {0}};
