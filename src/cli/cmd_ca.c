/* SPDX-License-Identifier: Apache-2.0 */
/* `citadel ca`: the certificate authority (docs/ca.md). Certificates, CSRs and CRLs print as
 * PEM on stdout (text format) unless --output is given. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/util.h"
#include "cli.h"

#define INPUT_MAX (64 * 1024)

static int read_input(const char *file, const char *what, uint8_t **buf, size_t *len) {
    int err = cit_read_file(file, INPUT_MAX, buf, len);
    if (err < 0) {
        int code = err == -EFBIG ? CIT_E_INPUT_TOO_LARGE : CIT_E_INPUT_READ;
        cit_error_set(code, err == -EFBIG ? "%s is larger than 64 KiB: not a %s" : "cannot read %s: %s", file,
                      err == -EFBIG ? what : strerror(-err));
        cit_error_context("file", "%s", file);
        return code;
    }
    if (*len == 0) {
        free(*buf);
        *buf = NULL;
        cit_error_set(CIT_E_INPUT_EMPTY, "%s is empty: no %s in it", file, what);
        cit_error_context("file", "%s", file);
        return CIT_E_INPUT_EMPTY;
    }
    return 0;
}

/* The PEM goes to --output (0644: certificates and CRLs are public), else it is the text output. */
static int emit_pem(const cli_args *a, json_t *out, const char *key, char *pem) {
    const char *output = cli_get(a, "output");
    int r = 0;
    if (output) {
        int w = cit_write_file_atomic(output, (const uint8_t *)pem, strlen(pem), 0644, 0);
        if (w < 0) {
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-w));
            cit_error_context("file", "%s", output);
        } else
            json_object_set_new(out, "output", json_string(output));
    } else {
        json_object_set_new(out, key, json_string(pem));
        json_object_set_new(out, "_text", json_string(pem));
    }
    free(pem);
    return r;
}

static int ca_init_common(cli_env *e, const cli_args *a, json_t **out, bool intermediate) {
    int days = 0, pathlen = -1;
    if (cli_get_int(a, "days", &days) < 0)
        return CIT_E_USAGE;
    if (intermediate && cli_get(a, "pathlen") && cli_get_int(a, "pathlen", &pathlen) < 0)
        return CIT_E_USAGE;
    cit_ca_init_options o = {
        .name = a->pos[0],
        .parent = intermediate ? cli_get(a, "parent") : NULL,
        .algorithm = cli_get(a, "algorithm"),
        .tpm = cli_flag(a, "tpm"),
        .subject = cli_get(a, "subject"),
        .days = days,
        .pathlen = pathlen,
    };
    char *pem = NULL;
    int r = intermediate ? cit_ca_intermediate(out, e->ctx, &o, &pem) : cit_ca_init(out, e->ctx, &o, &pem);
    if (r < 0 || !pem)
        return r;
    return emit_pem(a, *out, "certificate_pem", pem);
}

static int do_init(cli_env *e, const cli_args *a, json_t **out) { return ca_init_common(e, a, out, false); }
static int do_intermediate(cli_env *e, const cli_args *a, json_t **out) {
    if (!cli_get(a, "parent")) {
        cit_error_set(CIT_E_USAGE, "an intermediate CA needs its issuer: give it with --parent ROOT");
        return CIT_E_USAGE;
    }
    return ca_init_common(e, a, out, true);
}

static int do_issue(cli_env *e, const cli_args *a, json_t **out) {
    const char *ca_name = cli_get(a, "ca"), *csr = cli_get(a, "csr"), *pubkey = cli_get(a, "public-key");
    const char *hw = cli_get(a, "hw-serial");
    if (!ca_name) {
        cit_error_set(CIT_E_USAGE, "give the issuing CA with --ca NAME");
        return CIT_E_USAGE;
    }
    if (!csr == !pubkey) {
        cit_error_set(CIT_E_USAGE, "give the request with --csr FILE, or a public key with --public-key FILE");
        return CIT_E_USAGE;
    }
    int days = 0;
    if (cli_get_int(a, "days", &days) < 0)
        return CIT_E_USAGE;
    uint8_t *hwb = NULL, *buf = NULL;
    size_t hwl = 0, len = 0;
    if (hw && (cit_hex_decode(&hwb, &hwl, hw) < 0 || hwl == 0)) {
        free(hwb);
        cit_error_set(CIT_E_USAGE, "--hw-serial takes hex bytes (the TPM's identification, e.g. its EK name)");
        return CIT_E_USAGE;
    }
    cit_ca_issue_options o = {.profile = cli_get(a, "profile"),
                              .days = days,
                              .subject = cli_get(a, "subject"),
                              .san = cli_get(a, "san"),
                              .hw_serial = hwb,
                              .hw_serial_len = hwl};
    int r = read_input(csr ? csr : pubkey, csr ? "certificate signing request" : "public key", &buf, &len);
    cit_ca *ca = NULL;
    if (r == 0)
        r = cit_ca_open(&ca, e->ctx, ca_name);
    char *pem = NULL;
    if (r == 0)
        r = csr ? cit_ca_issue_csr(out, ca, buf, len, &o, &pem) : cit_ca_issue_key(out, ca, buf, len, &o, &pem);
    if (r == 0 && csr)
        json_object_set_new(*out, "csr", json_string(csr));
    cit_ca_close(ca);
    free(buf);
    free(hwb);
    if (r < 0 || !pem)
        return r;
    return emit_pem(a, *out, "certificate_pem", pem);
}

static int do_revoke(cli_env *e, const cli_args *a, json_t **out) {
    return cit_ca_revoke(out, e->ctx, a->pos[0], cli_get(a, "reason"));
}

static int do_crl(cli_env *e, const cli_args *a, json_t **out) {
    const char *ca_name = cli_get(a, "ca");
    int days = 0;
    if (!ca_name) {
        cit_error_set(CIT_E_USAGE, "give the CA with --ca NAME");
        return CIT_E_USAGE;
    }
    if (cli_get_int(a, "days", &days) < 0)
        return CIT_E_USAGE;
    cit_ca *ca = NULL;
    char *pem = NULL;
    int r = cit_ca_open(&ca, e->ctx, ca_name);
    if (r == 0)
        r = cit_ca_crl_days(out, ca, days, &pem);
    cit_ca_close(ca);
    if (r < 0 || !pem)
        return r;
    return emit_pem(a, *out, "crl_pem", pem);
}

static int do_list(cli_env *e, const cli_args *a, json_t **out) { return cit_ca_list(out, e->ctx); }

static int do_show(cli_env *e, const cli_args *a, json_t **out) {
    int r = cit_ca_show(out, e->ctx, a->pos[0]);
    if (r < 0 || json_object_get(*out, "plan"))
        return r;
    const char *pem = json_string_value(json_object_get(*out, "certificate_pem"));
    return pem ? emit_pem(a, *out, "certificate_pem", strdup(pem)) : 0;
}

static int do_status(cli_env *e, const cli_args *a, json_t **out) {
    const char *st = NULL;
    int r = cit_ca_cert_status(e->ctx, a->pos[0], &st);
    if (r == 0)
        *out = json_pack("{s:s,s:s}", "serial", a->pos[0], "status", st);
    return r;
}

static int do_trust(cli_env *e, const cli_args *a, json_t **out) {
    const char *sub = a->pos[0], *store = cli_get(a, "store");
    if (strcmp(sub, "list") == 0) {
        if (a->npos > 1) {
            cit_error_set(CIT_E_USAGE, "`ca trust list` takes no argument (filter with --store)");
            return CIT_E_USAGE;
        }
        return cit_ca_trust_list(out, e->ctx, store);
    }
    if (strcmp(sub, "add") == 0) {
        if (a->npos != 3) {
            cit_error_set(CIT_E_USAGE, "usage: ca trust add NAME --store manufacturers|peers FILE");
            return CIT_E_USAGE;
        }
        return cit_ca_trust_add(out, e->ctx, store, a->pos[1], a->pos[2]);
    }
    if (strcmp(sub, "remove") == 0) {
        if (a->npos != 2) {
            cit_error_set(CIT_E_USAGE, "usage: ca trust remove NAME --store manufacturers|peers");
            return CIT_E_USAGE;
        }
        return cit_ca_trust_remove(out, e->ctx, store, a->pos[1]);
    }
    if (strcmp(sub, "bundle") == 0) {
        char *pem = NULL;
        int r = cit_ca_trust_bundle(e->ctx, store, &pem);
        if (r < 0)
            return r;
        *out = json_pack("{s:s?}", "store", store);
        return emit_pem(a, *out, "bundle_pem", pem);
    }
    cit_error_set(CIT_E_USAGE, "unknown trust verb: %s", sub);
    cit_error_cause("`ca trust` takes add, list, remove or bundle");
    return CIT_E_USAGE;
}

const cli_verb cli_verbs_ca[] = {
    {"init", do_init, "NAME", 1, 1, "create a root CA (self-signed)",
     "The key is made in software and kept encrypted (XChaCha20-Poly1305) in the store under a\n"
     "32-byte key-encryption key sealed in the TPM; with --tpm it is a TPM key and never leaves\n"
     "the TPM. The certificate: basicConstraints CA:TRUE (critical), keyCertSign, cRLSign, SKI/AKI.\n"
     "It prints as PEM unless --output is given. See docs/ca.md.",
     "citadel ca init fleet-root --algorithm ecc-p384 --tpm --output root.pem",
     {{"algorithm", "ALG", "ecc-p256 (default), ecc-p384 or rsa-3072"},
      {"tpm", NULL, "keep the CA key in the TPM"},
      {"subject", "DN", "the subject (default CN=NAME), /CN=a/O=b or CN=a,O=b"},
      {"days", "N", "validity in days (default 3650)"},
      {"output", "FILE", "write the certificate here (else it is printed)"}}},
    {"intermediate", do_intermediate, "NAME", 1, 1, "create an intermediate CA signed by another CA",
     "The parent must be usable (not expired, not revoked). The validity never exceeds the\n"
     "parent's; pathLenConstraint is 0 unless --pathlen is given.",
     "citadel ca intermediate fleet-issuing --parent fleet-root --output issuing.pem",
     {{"parent", "CA", "the issuing CA (required)"},
      {"algorithm", "ALG", "ecc-p256 (default), ecc-p384 or rsa-3072"},
      {"tpm", NULL, "keep the CA key in the TPM"},
      {"subject", "DN", "the subject (default CN=NAME)"},
      {"days", "N", "validity in days (default 1825)"},
      {"pathlen", "N", "basicConstraints pathLenConstraint (default 0)"},
      {"output", "FILE", "write the certificate here (else it is printed)"}}},
    {"issue", do_issue, NULL, 0, 0, "issue a certificate from a CSR (or a public key) under a profile",
     "Profiles: tls-server (serverAuth, 90 days), tls-client (clientAuth, 90 days), devid (TCG\n"
     "DevID: clientAuth+serverAuth, 365 days), ak (tcg-kp-AIKCertificate 2.23.133.8.3, 365 days).\n"
     "The CSR's signature is checked first; its subject and SANs are used unless --subject is\n"
     "given (--san adds names). --hw-serial puts an RFC 4108 HardwareModuleName (hwType TCG\n"
     "2.23.133.1.2) into the SAN of devid/ak certificates. --public-key (a SubjectPublicKeyInfo,\n"
     "PEM or DER) with --subject is for keys that cannot sign a CSR (AKs).",
     "citadel ca issue --ca fleet-issuing --csr node.csr --profile devid --hw-serial 000b12ab...",
     {{"ca", "NAME", "the issuing CA (required)"},
      {"csr", "FILE", "a PKCS#10 request, PEM or DER"},
      {"public-key", "FILE", "or a public key (with --subject)"},
      {"profile", "P", "tls-server, tls-client, devid or ak (required)"},
      {"days", "N", "validity (default: the profile's; never past the CA's)"},
      {"subject", "DN", "override the CSR's subject"},
      {"san", "NAMES", "add names, e.g. DNS:a.example.org,IP:192.0.2.1"},
      {"hw-serial", "HEX", "devid/ak: the TPM's identification (HardwareModuleName)"},
      {"output", "FILE", "write the certificate here (else it is printed)"}}},
    {"revoke", do_revoke, "SERIAL", 1, 1, "revoke a certificate issued here (it goes on the next CRL)",
     "SERIAL is hex, as `openssl x509 -noout -serial` prints it. Reasons (RFC 5280): unspecified\n"
     "(default), keyCompromise, cACompromise, affiliationChanged, superseded,\n"
     "cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.",
     "citadel ca revoke 5F3A09... --reason keyCompromise", {{"reason", "R", "the revocation reason"}}},
    {"crl", do_crl, NULL, 0, 0, "a signed CRL of a CA (v2, crlNumber, AKI, nextUpdate)",
     "Each call makes a new CRL with the next crlNumber, listing every certificate the CA issued\n"
     "that was revoked, with its reason. It prints as PEM unless --output is given.",
     "citadel ca crl --ca fleet-issuing --output issuing.crl",
     {{"ca", "NAME", "the CA (required)"},
      {"days", "N", "nextUpdate this many days on (default 7)"},
      {"output", "FILE", "write the CRL here (else it is printed)"}}},
    {"list", do_list, NULL, 0, 0, "list the CAs", NULL, "citadel ca list", {{0}}},
    {"show", do_show, "NAME", 1, 1, "a CA's certificate (PEM; with --json: details and what it issued)", NULL,
     "citadel ca show fleet-root --output root.pem", {{"output", "FILE", "write the certificate here"}}},
    {"status", do_status, "SERIAL", 1, 1, "the status of a certificate issued here: valid, revoked, expired, unknown",
     NULL, "citadel ca status 5F3A09...", {{0}}},
    {"trust", do_trust, "add|list|remove|bundle [NAME] [FILE]", 1, 3,
     "trust stores: manufacturer roots (EK CAs) and peer CAs",
     "  ca trust add NAME --store manufacturers|peers FILE   one CA certificate, PEM or DER\n"
     "  ca trust list [--store S]\n"
     "  ca trust remove NAME --store S\n"
     "  ca trust bundle --store S [--output FILE]             the store as one PEM bundle",
     "citadel ca trust add infineon-root --store manufacturers ifx-root.pem",
     {{"store", "S", "manufacturers or peers"}, {"output", "FILE", "bundle: write the PEM here"}}},
    {0}};
