/* SPDX-License-Identifier: Apache-2.0 */
/* `ek show|cert|verify|ca|cert-import`: the endorsement key and its certificate. */
#include "cli.h"

static int do_show(cli_env *e, const cli_args *a, json_t **out) {
    return cit_ek_show(out, e->ctx, cli_get(a, "algorithm"));
}

static int do_cert(cli_env *e, const cli_args *a, json_t **out) {
    return cit_ek_cert(out, e->ctx, cli_get(a, "algorithm"), cli_get(a, "output"), cli_get(a, "encoding"));
}

static int do_verify(cli_env *e, const cli_args *a, json_t **out) {
    int failed = 0;
    int r = cit_ek_verify(out, e->ctx, cli_get(a, "algorithm"), cli_get(a, "ca"), &failed);
    if (r < 0 || failed == 0)
        return r;
    /* A failed check: every verdict on stdout, the error naming the check on stderr. */
    cit_render(stdout, *out, e->fmt);
    json_decref(*out);
    *out = NULL;
    return failed;
}

static int do_ca(cli_env *e, const cli_args *a, json_t **out) { return cit_ek_ca(out, e->ctx, cli_get(a, "output")); }

static int do_import(cli_env *e, const cli_args *a, json_t **out) {
    if (!cli_get(a, "input")) {
        cit_error_set(CIT_E_USAGE, "--input is required");
        return CIT_E_USAGE;
    }
    return cit_ek_cert_import(out, e->ctx, cli_get(a, "algorithm"), cli_get(a, "input"), cli_flag(a, "force"));
}

/* clang-format off */
#define ALG_OPT {"algorithm", "ALG", "rsa-2048 (L-1), ecc-p256 (L-2), ecc-p384 (H-3), rsa-3072 (H-6); " \
                                     "default: the first with a certificate, else rsa-2048"}

const cli_verb cli_verbs_ek[] = {
    {"show", do_show, NULL, 0, 0, "the endorsement key: public key (PEM), TPM name and template",
     "The EK is the primary key the TPM derives in the endorsement hierarchy from the TCG EK\n"
     "Credential Profile's template (L-1, L-2, or the high-range H-3, H-6; the platform's\n"
     "template from NV when it wrote one), so it is the key `tpm2_createek` and every other\n"
     "tool derive. It is derived again on each use; nothing is stored.",
     "citadel tpm ek show --algorithm ecc-p256", {ALG_OPT}},
    {"cert", do_cert, NULL, 0, 0, "the EK certificate from NV (0x01c00002 RSA, 0x01c0000a ECC, high range)",
     "Reads the certificate the manufacturer (or, for vtpm, `init`) wrote to the profile's NV\n"
     "index: rsa-2048 0x01c00002, ecc-p256 0x01c0000a, ecc-p384 0x01c00016, rsa-3072\n"
     "0x01c0001c. Without --output the PEM is printed.",
     "citadel tpm ek cert --output ek.der --encoding der",
     {ALG_OPT, {"output", "FILE", "write the certificate to FILE"},
      {"encoding", "ENC", "pem (default) or der (with --output)"}}},
    {"verify", do_verify, NULL, 0, 0, "check the EK certificate: chain, validity, key, TPM attributes, key usage",
     "Checks, in order: chain (to a manufacturer CA in the trust store; every certificate in it\n"
     "is an anchor), validity (now, of the certificate and each CA), ek-key (its key is this\n"
     "TPM's EK), tpm-attributes (the manufacturer must be the TPM's; another model or firmware\n"
     "version is a warning), key-usage (keyEncipherment or keyAgreement, not a CA, EKU\n"
     "2.23.133.8.1 when it has one). The trust store is --ca, else the built-in manufacturer CAs\n"
     "(data/ek-ca) plus, on vtpm, the workspace's own CA. A failed check prints every verdict,\n"
     "then exits 9 with its own code: TPM0082 untrusted, TPM0083 expired, TPM0084 another key,\n"
     "TPM0085 another manufacturer, TPM0086 key usage.",
     "citadel tpm ek verify --ca /etc/tpm-cas/",
     {ALG_OPT, {"ca", "BUNDLE|DIR", "trust only these CA certificates (PEM bundle, DER file or directory)"}}},
    {"ca", do_ca, NULL, 0, 0, "the vtpm workspace's own manufacturer CA certificate",
     "A vtpm workspace is its TPM's factory: `init` makes a manufacturer CA (ECC P-256), issues\n"
     "the EK certificates with it and discards its private key. This prints the CA certificate,\n"
     "for verifiers outside citadel (`openssl verify -CAfile ca.pem ek.pem`).",
     "citadel tpm ek ca --output vtpm-ca.pem", {{"output", "FILE", "write the PEM to FILE"}}},
    {"cert-import", do_import, NULL, 0, 0, "store an EK certificate in its NV index",
     "For TPMs whose vendor publishes EK certificates online (Intel PTT, AMD fTPM): stores the\n"
     "downloaded certificate (PEM or DER) in the profile's NV index for its key's algorithm, so\n"
     "every tool finds it. Its key must be this TPM's EK (TPM0084 otherwise); indices the\n"
     "platform created are left alone (TPM0088).",
     "citadel tpm ek cert-import --input ek.crt",
     {{"input", "FILE", "the certificate (PEM or DER; required)"}, ALG_OPT,
      {"force", NULL, "store it even when its key is not this TPM's EK"}}},
    {0}};
/* clang-format on */
