/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EK certificates with OpenSSL 3. Only public material passes through here, except the vTPM
 * factory's CA key, which lives in an EVP_PKEY (freed, and so wiped, by the caller) and is
 * never serialised.
 */
#include "ekcert.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/error.h"
#include "crypto.h"

#define CA_FILE_MAX (1024u * 1024u)         /* one file of a --ca directory or bundle */
#define CA_DIR_FILES_MAX 1000u              /* files read from one --ca directory */
#define CERT_DER_MAX 16384u                 /* what we accept as one EK certificate */
#define NOT_AFTER_FOREVER "99991231235959Z" /* RFC 5280 4.1.2.5: no well-defined expiration */

static int oom(void) { return cit_error_set(CIT_E_INTERNAL, "out of memory"); }

/* ---- issuing (the vTPM factory) ----------------------------------------------------------- */

static int set_serial(X509 *x) {
    uint8_t b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot draw a certificate serial number");
    b[0] &= 0x7f; /* positive */
    b[0] |= 0x01; /* and never shorter than the others */
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int ok = ai && X509_set_serialNumber(x, ai);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok ? 0 : cit__openssl_error(CIT_E_CRYPTO, "cannot set the serial number");
}

static int set_validity(X509 *x) {
    ASN1_GENERALIZEDTIME *forever = ASN1_GENERALIZEDTIME_new();
    int ok = forever && ASN1_GENERALIZEDTIME_set_string(forever, NOT_AFTER_FOREVER) &&
             X509_gmtime_adj(X509_getm_notBefore(x), 0) && X509_set1_notAfter(x, forever);
    ASN1_GENERALIZEDTIME_free(forever);
    return ok ? 0 : cit__openssl_error(CIT_E_CRYPTO, "cannot set the validity");
}

static int add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value) {
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    int ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (!ok) {
        cit__openssl_error(CIT_E_CRYPTO, "cannot add a certificate extension");
        cit_error_context("extension", "%s = %s", OBJ_nid2sn(nid), value);
        return CIT_E_CRYPTO;
    }
    return 0;
}

int cit__ekcert_ca_new(EVP_PKEY **key, X509 **cert, const char *cn, const char *org) {
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    int r = 0;
    if (!k || !x || !n) {
        r = cit__openssl_error(CIT_E_CRYPTO, "cannot make the manufacturer CA key");
        goto done;
    }
    if (!X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
        !X509_set_version(x, X509_VERSION_3) || !X509_set_subject_name(x, n) ||
        !X509_set_issuer_name(x, n) || !X509_set_pubkey(x, k)) {
        r = cit__openssl_error(CIT_E_CRYPTO, "cannot build the manufacturer CA certificate");
        goto done;
    }
    if ((r = set_serial(x)) < 0 || (r = set_validity(x)) < 0)
        goto done;
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if ((r = add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")) < 0 ||
        (r = add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
        (r = add_ext(x, &v3, NID_subject_key_identifier, "hash")) < 0)
        goto done;
    if (X509_sign(x, k, EVP_sha256()) <= 0) {
        r = cit__openssl_error(CIT_E_CRYPTO, "cannot self-sign the manufacturer CA certificate");
        goto done;
    }
    *key = TAKE_PTR(k);
    *cert = TAKE_PTR(x);
done:
    X509_NAME_free(n);
    X509_free(x);
    EVP_PKEY_free(k);
    return r;
}

static int add_attr(X509_NAME *n, const char *oid, const char *value) {
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    int ok = o && X509_NAME_add_entry_by_OBJ(n, o, MBSTRING_UTF8, (const unsigned char *)value, -1,
                                             -1, 0);
    ASN1_OBJECT_free(o);
    return ok ? 0 : cit__openssl_error(CIT_E_CRYPTO, "cannot encode a TPM attribute");
}

/* subjectAltName (critical) with one directoryName holding the TPM's manufacturer, model and
 * version, as the profile asks when the subject is empty. */
static int add_tpm_san(X509 *x, const cit_tpm_attrs *a) {
    X509_NAME *dn = X509_NAME_new();
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *g = GENERAL_NAME_new();
    int r = 0;
    if (!dn || !gens || !g) {
        r = oom();
        goto done;
    }
    if ((r = add_attr(dn, CIT_OID_TPM_MANUFACTURER, a->manufacturer)) < 0 ||
        (r = add_attr(dn, CIT_OID_TPM_MODEL, a->model[0] ? a->model : "unknown")) < 0 ||
        (r = add_attr(dn, CIT_OID_TPM_VERSION, a->version)) < 0)
        goto done;
    GENERAL_NAME_set0_value(g, GEN_DIRNAME, TAKE_PTR(dn));
    if (!sk_GENERAL_NAME_push(gens, g)) {
        r = oom();
        goto done;
    }
    g = NULL;
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 1, X509V3_ADD_DEFAULT) != 1)
        r = cit__openssl_error(CIT_E_CRYPTO, "cannot add the subjectAltName");
done:
    GENERAL_NAME_free(g);
    GENERAL_NAMES_free(gens);
    X509_NAME_free(dn);
    return r;
}

int cit__ekcert_issue(X509 **out, EVP_PKEY *ek, const cit_tpm_attrs *attrs, X509 *ca_cert,
                      EVP_PKEY *ca_key) {
    X509 *x = X509_new();
    int r = 0;
    bool rsa = EVP_PKEY_get_base_id(ek) == EVP_PKEY_RSA;
    if (!x)
        return oom();
    if (!X509_set_version(x, X509_VERSION_3) ||
        !X509_set_issuer_name(x, X509_get_subject_name(ca_cert)) || !X509_set_pubkey(x, ek)) {
        r = cit__openssl_error(CIT_E_CRYPTO, "cannot build the EK certificate");
        goto done;
    }
    if ((r = set_serial(x)) < 0 || (r = set_validity(x)) < 0 || (r = add_tpm_san(x, attrs)) < 0)
        goto done;
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca_cert, x, NULL, NULL, 0);
    if ((r = add_ext(x, &v3, NID_key_usage,
                     rsa ? "critical,keyEncipherment" : "critical,keyAgreement")) < 0 ||
        (r = add_ext(x, &v3, NID_ext_key_usage, CIT_OID_EK_CERTIFICATE)) < 0 ||
        (r = add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
        (r = add_ext(x, &v3, NID_authority_key_identifier, "keyid:always")) < 0)
        goto done;
    if (X509_sign(x, ca_key, EVP_sha256()) <= 0) {
        r = cit__openssl_error(CIT_E_CRYPTO, "cannot sign the EK certificate");
        goto done;
    }
    *out = TAKE_PTR(x);
done:
    X509_free(x);
    return r;
}

/* ---- parsing and encoding ----------------------------------------------------------------- */

/* The length of the DER SEQUENCE at buf (header included), 0 when it is not one that fits. */
static size_t der_sequence_len(const uint8_t *buf, size_t len) {
    if (len < 2 || buf[0] != 0x30)
        return 0;
    size_t body, hdr;
    if (buf[1] < 0x80) {
        body = buf[1];
        hdr = 2;
    } else {
        size_t nb = buf[1] & 0x7f;
        if (nb == 0 || nb > 3 || len < 2 + nb)
            return 0;
        body = 0;
        for (size_t i = 0; i < nb; i++)
            body = body << 8 | buf[2 + i];
        hdr = 2 + nb;
    }
    return hdr + body <= len ? hdr + body : 0;
}

int cit__ekcert_parse_der(X509 **out, const uint8_t *buf, size_t len, size_t *der_len) {
    size_t n = der_sequence_len(buf, len);
    const uint8_t *p = buf;
    X509 *x = n && n <= CERT_DER_MAX ? d2i_X509(NULL, &p, (long)n) : NULL;
    if (!x || (size_t)(p - buf) != n) {
        X509_free(x);
        cit__openssl_error(CIT_E_EK_CERT_INVALID,
                           "the EK certificate is not a DER X.509 certificate");
        cit_error_cause(
            "%s", n ? "the DER SEQUENCE does not decode as a certificate"
                    : "the data does not start with a DER SEQUENCE (0x30) that fits in the index");
        cit_error_context("size", "%zu", len);
        return CIT_E_EK_CERT_INVALID;
    }
    *out = x;
    *der_len = n;
    return 0;
}

static bool looks_pem(const uint8_t *buf, size_t len) {
    static const char tag[] = "-----BEGIN";
    for (size_t i = 0; i + sizeof tag - 1 <= len; i++)
        if (memcmp(buf + i, tag, sizeof tag - 1) == 0)
            return true;
    return false;
}

int cit__ekcert_parse_any(X509 **out, const uint8_t *buf, size_t len) {
    X509 *x = NULL;
    if (looks_pem(buf, len)) {
        BIO *b = BIO_new_mem_buf(buf, (int)len);
        x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    } else {
        size_t n;
        if (cit__ekcert_parse_der(&x, buf, len, &n) == 0 && n != len) {
            X509_free(x);
            x = NULL;
        }
    }
    if (!x) {
        ERR_clear_error();
        return cit_error_set(CIT_E_INPUT_INVALID,
                             "the input is not an X.509 certificate (PEM or DER)");
    }
    *out = x;
    return 0;
}

int cit__ekcert_der(uint8_t **out, size_t *len, X509 *x) {
    unsigned char *d = NULL;
    int n = i2d_X509(x, &d);
    if (n <= 0)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot encode the certificate");
    uint8_t *b = malloc((size_t)n);
    if (b)
        memcpy(b, d, (size_t)n);
    OPENSSL_free(d);
    if (!b)
        return oom();
    *out = b;
    *len = (size_t)n;
    return 0;
}

int cit__ekcert_pem(char **out, X509 *x) {
    BIO *m = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n = 0;
    if (m && PEM_write_bio_X509(m, x))
        n = BIO_get_mem_data(m, &p);
    char *s = n > 0 ? strndup(p, (size_t)n) : NULL;
    BIO_free(m);
    if (!s)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot encode the certificate as PEM");
    *out = s;
    return 0;
}

static void time_text(const ASN1_TIME *t, char *buf, size_t len) {
    struct tm tm;
    buf[0] = 0;
    if (t && ASN1_TIME_to_tm(t, &tm) == 1)
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *name_text(const X509_NAME *n) {
    BIO *m = BIO_new(BIO_s_mem());
    char *p = NULL;
    long len = 0;
    if (m && X509_NAME_print_ex(m, n, 0, XN_FLAG_RFC2253) >= 0)
        len = BIO_get_mem_data(m, &p);
    char *s = strndup(len > 0 ? p : "", len > 0 ? (size_t)len : 0);
    BIO_free(m);
    return s;
}

/* The TCG attributes the certificate names: in a subjectAltName directoryName (the profile's
 * place) or, failing that, in the subject. */
static void cert_tpm_attrs(X509 *x, cit_tpm_attrs *a, bool *found) {
    memset(a, 0, sizeof(*a));
    *found = false;
    const X509_NAME *names[8];
    size_t nn = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && nn < ELEMENTSOF(names) - 1; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DIRNAME)
            names[nn++] = g->d.directoryName;
    }
    names[nn++] = X509_get_subject_name(x);
    for (size_t k = 0; k < nn; k++)
        for (int i = 0; i < X509_NAME_entry_count(names[k]); i++) {
            const X509_NAME_ENTRY *e = X509_NAME_get_entry(names[k], i);
            char oid[64];
            OBJ_obj2txt(oid, sizeof oid, X509_NAME_ENTRY_get_object(e), 1);
            char *dst = NULL;
            size_t cap = 0;
            if (strcmp(oid, CIT_OID_TPM_MANUFACTURER) == 0)
                dst = a->manufacturer, cap = sizeof a->manufacturer;
            else if (strcmp(oid, CIT_OID_TPM_MODEL) == 0)
                dst = a->model, cap = sizeof a->model;
            else if (strcmp(oid, CIT_OID_TPM_VERSION) == 0)
                dst = a->version, cap = sizeof a->version;
            if (!dst || dst[0])
                continue;
            unsigned char *u = NULL;
            int ul = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
            if (ul > 0)
                snprintf(dst, cap, "%.*s", ul, (const char *)u);
            OPENSSL_free(u);
            *found = true;
        }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
}

json_t *cit__ekcert_summary(X509 *x) {
    char nb[32], na[32];
    time_text(X509_get0_notBefore(x), nb, sizeof nb);
    time_text(X509_get0_notAfter(x), na, sizeof na);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    X509_digest(x, EVP_sha256(), md, &ml);
    _cleanup_free_ char *fp = cit_hex_encode(md, ml);
    _cleanup_free_ char *subj = name_text(X509_get_subject_name(x));
    _cleanup_free_ char *iss = name_text(X509_get_issuer_name(x));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *serial = bn ? BN_bn2hex(bn) : NULL;
    cit_tpm_attrs a;
    bool found;
    cert_tpm_attrs(x, &a, &found);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "subject", subj ? subj : "", "issuer",
                          iss ? iss : "", "serial", serial ? serial : "", "not_before", nb,
                          "not_after", na, "fingerprint_sha256", fp ? fp : "");
    if (found)
        json_object_set_new(j, "tpm",
                            json_pack("{s:s,s:s,s:s}", "manufacturer", a.manufacturer, "model",
                                      a.model, "version", a.version));
    OPENSSL_free(serial);
    BN_free(bn);
    ERR_clear_error();
    return j;
}

/* ---- trust stores ------------------------------------------------------------------------- */

int cit__ekcert_store_add_pem(X509_STORE *st, const char *pem, size_t len, size_t *added) {
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return oom();
    X509 *x;
    size_t n = 0;
    /* PEM_read_bio_X509 skips blocks of other types (keys) on its way to the next certificate. */
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        if (X509_STORE_add_cert(st, x) == 1)
            n++;
        X509_free(x);
    }
    BIO_free(b);
    ERR_clear_error(); /* the end of the input, or a duplicate certificate */
    *added += n;
    return 0;
}

static int add_file(X509_STORE *st, const char *path, size_t *added, bool quiet) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int e = cit_read_file(path, CA_FILE_MAX, &buf, &len);
    if (e < 0) {
        if (quiet)
            return 0;
        cit_error_set(e == -EFBIG ? CIT_E_INPUT_TOO_LARGE : CIT_E_INPUT_READ,
                      "cannot read the CA file %s: %s", path,
                      e == -EFBIG ? "larger than 1 MiB" : strerror(-e));
        cit_error_context("file", "%s", path);
        return e == -EFBIG ? CIT_E_INPUT_TOO_LARGE : CIT_E_INPUT_READ;
    }
    size_t before = *added;
    int r = cit__ekcert_store_add_pem(st, (const char *)buf, len, added);
    if (r == 0 && *added == before) { /* not PEM: one DER certificate? */
        X509 *x = NULL;
        size_t n;
        if (cit__ekcert_parse_der(&x, buf, len, &n) == 0) {
            if (X509_STORE_add_cert(st, x) == 1)
                (*added)++;
            X509_free(x);
        }
        cit_error_clear();
        ERR_clear_error();
    }
    free(buf);
    return r;
}

int cit__ekcert_store_add_path(X509_STORE *st, const char *path, size_t *added) {
    struct stat s;
    size_t before = *added;
    if (stat(path, &s) < 0) {
        cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", path, strerror(errno));
        cit_error_context("ca", "%s", path);
        return CIT_E_INPUT_READ;
    }
    int r = 0;
    if (S_ISDIR(s.st_mode)) {
        DIR *d = opendir(path);
        if (!d) {
            cit_error_set(CIT_E_INPUT_READ, "cannot read the directory %s: %s", path,
                          strerror(errno));
            cit_error_context("ca", "%s", path);
            return CIT_E_INPUT_READ;
        }
        struct dirent *e;
        size_t files = 0;
        while (r == 0 && (e = readdir(d)) && files < CA_DIR_FILES_MAX) {
            if (e->d_name[0] == '.')
                continue;
            char p[4096];
            if ((size_t)snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= sizeof p)
                continue;
            struct stat fs;
            if (stat(p, &fs) < 0 || !S_ISREG(fs.st_mode))
                continue;
            files++;
            r = add_file(st, p, added, true); /* unreadable files (a CA's 0600 key) are skipped */
        }
        closedir(d);
    } else
        r = add_file(st, path, added, false);
    if (r == 0 && *added == before) {
        cit_error_set(CIT_E_CA_STORE_INVALID, "%s holds no X.509 certificate", path);
        cit_error_cause("a CA bundle is PEM (one or more CERTIFICATE blocks) or one DER "
                        "certificate; a directory "
                        "is read file by file");
        cit_error_context("ca", "%s", path);
        return CIT_E_CA_STORE_INVALID;
    }
    return r;
}

/* ---- the checks of `ek verify` ------------------------------------------------------------ */

typedef struct verdicts {
    json_t *checks;
    int first_code;
    char first_check[32];
    char first_detail[400];
    int n_failed;
    char others[4][200];
} verdicts;

static void verdict(verdicts *v, const char *check, const char *verdict_s, int code,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void verdict(verdicts *v, const char *check, const char *verdict_s, int code,
                    const char *fmt, ...) {
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_array_append_new(v->checks, json_pack("{s:s,s:s,s:s}", "check", check, "verdict",
                                               verdict_s, "detail", detail));
    if (strcmp(verdict_s, "fail") != 0)
        return;
    if (!v->first_code) {
        v->first_code = code;
        snprintf(v->first_check, sizeof v->first_check, "%s", check);
        snprintf(v->first_detail, sizeof v->first_detail, "%s", detail);
    } else if (v->n_failed - 1 < (int)ELEMENTSOF(v->others))
        snprintf(v->others[v->n_failed - 1], sizeof v->others[0], "the %s check failed too: %s",
                 check, detail);
    v->n_failed++;
}

static char *subject_cn(X509 *x) {
    char buf[200] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
    if (!buf[0]) {
        char *s = name_text(X509_get_subject_name(x));
        if (s && s[0])
            return s;
        free(s);
        return strdup("the EK certificate");
    }
    return strdup(buf);
}

/* Chain: built from the trust store (any certificate in it is an anchor), signatures checked,
 * any purpose. Time is the validity check's business, so it is left out here. */
static STACK_OF(X509) * check_chain(verdicts *v, X509 *cert, X509_STORE *trust) {
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = NULL;
    if (!sc || !X509_STORE_CTX_init(sc, trust, cert, NULL)) {
        verdict(v, "chain", "fail", CIT_E_EK_CERT_UNTRUSTED, "cannot set up the verification");
        X509_STORE_CTX_free(sc);
        return NULL;
    }
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(sc);
    X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_NO_CHECK_TIME | X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_ANY);
    if (X509_verify_cert(sc) == 1) {
        chain = X509_STORE_CTX_get1_chain(sc);
        int n = sk_X509_num(chain);
        X509 *top = sk_X509_value(chain, n - 1);
        _cleanup_free_ char *cn = subject_cn(top);
        verdict(v, "chain", "pass", 0, "%d certificate%s up to the trusted \"%s\"", n,
                n == 1 ? "" : "s", cn ? cn : "");
    } else {
        int err = X509_STORE_CTX_get_error(sc);
        int depth = X509_STORE_CTX_get_error_depth(sc);
        _cleanup_free_ char *iss = name_text(X509_get_issuer_name(cert));
        if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
            err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
            verdict(v, "chain", "fail", CIT_E_EK_CERT_UNTRUSTED,
                    "no trusted CA issued it: the trust store has no certificate for its issuer "
                    "\"%s\"%s",
                    iss ? iss : "", depth ? " (or for a CA above it)" : "");
        else
            verdict(v, "chain", "fail", CIT_E_EK_CERT_UNTRUSTED, "%s (at depth %d; issuer \"%s\")",
                    X509_verify_cert_error_string(err), depth, iss ? iss : "");
    }
    X509_STORE_CTX_free(sc);
    ERR_clear_error();
    return chain;
}

/* Validity of the EK certificate and of each CA of the chain, now. */
static void check_validity(verdicts *v, X509 *cert, STACK_OF(X509) * chain) {
    int n = chain ? sk_X509_num(chain) : 1;
    for (int i = 0; i < n; i++) {
        X509 *x = chain ? sk_X509_value(chain, i) : cert;
        char when[32];
        _cleanup_free_ char *who = i == 0 ? strdup("the EK certificate") : subject_cn(x);
        if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
            time_text(X509_get0_notBefore(x), when, sizeof when);
            verdict(v, "validity", "fail", CIT_E_EK_CERT_EXPIRED, "%s%s%s is not valid before %s",
                    i ? "the CA \"" : "", who ? who : "", i ? "\"" : "", when);
            return;
        }
        if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
            time_text(X509_get0_notAfter(x), when, sizeof when);
            verdict(v, "validity", "fail", CIT_E_EK_CERT_EXPIRED, "%s%s%s expired on %s",
                    i ? "the CA \"" : "", who ? who : "", i ? "\"" : "", when);
            return;
        }
    }
    char until[32];
    time_text(X509_get0_notAfter(cert), until, sizeof until);
    verdict(v, "validity", "pass", 0, "valid now%s (the EK certificate until %s)",
            chain && n > 1 ? ", and so is every CA of the chain" : "", until);
}

static void check_key(verdicts *v, X509 *cert, EVP_PKEY *ek) {
    EVP_PKEY *ck = X509_get0_pubkey(cert);
    if (ck && EVP_PKEY_eq(ck, ek) == 1)
        verdict(v, "ek-key", "pass", 0,
                "the certificate's public key is the TPM's endorsement key");
    else
        verdict(v, "ek-key", "fail", CIT_E_EK_KEY_MISMATCH,
                "the certificate's public key (%s, %d bits) is not the TPM's endorsement key (%s, "
                "%d bits)",
                ck ? OBJ_nid2sn(EVP_PKEY_get_base_id(ck)) : "unreadable",
                ck ? EVP_PKEY_get_bits(ck) : 0, OBJ_nid2sn(EVP_PKEY_get_base_id(ek)),
                EVP_PKEY_get_bits(ek));
    ERR_clear_error();
}

/* Letters and digits only, case folded: "SW   TPM" and "swtpm" name the same model. */
static bool same_model(const char *a, const char *b) {
    for (;;) {
        while (*a &&
               !((*a >= '0' && *a <= '9') || (*a >= 'a' && *a <= 'z') || (*a >= 'A' && *a <= 'Z')))
            a++;
        while (*b &&
               !((*b >= '0' && *b <= '9') || (*b >= 'a' && *b <= 'z') || (*b >= 'A' && *b <= 'Z')))
            b++;
        if (!*a || !*b)
            return !*a && !*b;
        char ca = (char)(*a >= 'A' && *a <= 'Z' ? *a + 32 : *a),
             cb = (char)(*b >= 'A' && *b <= 'Z' ? *b + 32 : *b);
        if (ca != cb)
            return false;
        a++, b++;
    }
}

/* Known encodings of the same manufacturer: swtpm_setup writes IBM's PCI vendor id (1014) for
 * libtpms, whose TPM_PT_MANUFACTURER is the TCG vendor id "IBM" (49424D00). */
static const struct {
    const char *tpm, *cert, *why;
} manufacturer_aliases[] = {
    {"id:49424D00", "id:00001014", "swtpm_setup writes IBM's PCI vendor id for libtpms' \"IBM\""},
};

static void check_attrs(verdicts *v, X509 *cert, const cit_tpm_attrs *tpm) {
    cit_tpm_attrs c;
    bool found;
    cert_tpm_attrs(cert, &c, &found);
    if (!c.manufacturer[0]) {
        verdict(v, "tpm-attributes", "fail", CIT_E_EK_TPM_ATTRIBUTES,
                "the certificate names no TPM manufacturer (2.23.133.2.1 in its subjectAltName); "
                "the TPM is %s",
                tpm->manufacturer);
        return;
    }
    const char *alias = NULL;
    bool man_ok = strcasecmp(c.manufacturer, tpm->manufacturer) == 0;
    for (size_t i = 0; !man_ok && i < ELEMENTSOF(manufacturer_aliases); i++)
        if (strcasecmp(tpm->manufacturer, manufacturer_aliases[i].tpm) == 0 &&
            strcasecmp(c.manufacturer, manufacturer_aliases[i].cert) == 0) {
            man_ok = true;
            alias = manufacturer_aliases[i].why;
        }
    if (!man_ok) {
        verdict(v, "tpm-attributes", "fail", CIT_E_EK_TPM_ATTRIBUTES,
                "manufacturer: the certificate names %s, the TPM reports %s", c.manufacturer,
                tpm->manufacturer);
        return;
    }
    char notes[400] = "";
    size_t off = 0;
    if (alias)
        off += (size_t)snprintf(notes + off, sizeof notes - off, " (the certificate's %s: %s)",
                                c.manufacturer, alias);
    bool model_ok = c.model[0] && same_model(c.model, tpm->model);
    bool version_ok = c.version[0] && strcasecmp(c.version, tpm->version) == 0;
    if (!model_ok && off < sizeof notes)
        off += (size_t)snprintf(notes + off, sizeof notes - off,
                                "; model: the certificate names \"%s\", the TPM \"%s\"", c.model,
                                tpm->model);
    if (!version_ok && off < sizeof notes)
        snprintf(notes + off, sizeof notes - off,
                 "; version: the certificate names %s, the TPM reports %s (firmware updated since "
                 "it was issued?)",
                 c.version[0] ? c.version : "none", tpm->version);
    verdict(v, "tpm-attributes", model_ok && version_ok ? "pass" : "warn", 0,
            "manufacturer %s matches%s", tpm->manufacturer, notes);
}

static bool has_ek_eku(X509 *x, bool *present) {
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    bool found = false;
    *present = eku != NULL;
    for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++) {
        char oid[64];
        OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(eku, i), 1);
        if (strcmp(oid, CIT_OID_EK_CERTIFICATE) == 0)
            found = true;
    }
    EXTENDED_KEY_USAGE_free(eku);
    ERR_clear_error();
    return found;
}

static void check_usage(verdicts *v, X509 *cert, EVP_PKEY *ek) {
    bool rsa = EVP_PKEY_get_base_id(ek) == EVP_PKEY_RSA;
    uint32_t ku = X509_get_key_usage(cert); /* UINT32_MAX: no keyUsage extension */
    uint32_t want = rsa ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT;
    const char *want_s = rsa ? "keyEncipherment" : "keyAgreement";
    bool eku_present;
    bool eku_ok = has_ek_eku(cert, &eku_present);
    if (ku == UINT32_MAX)
        verdict(v, "key-usage", "fail", CIT_E_EK_KEY_USAGE,
                "the certificate has no keyUsage (an EK needs %s)", want_s);
    else if (!(ku & want))
        verdict(v, "key-usage", "fail", CIT_E_EK_KEY_USAGE,
                "keyUsage lacks %s, which an %s endorsement key needs", want_s,
                rsa ? "RSA" : "ECC");
    else if (ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN))
        verdict(v, "key-usage", "fail", CIT_E_EK_KEY_USAGE,
                "keyUsage allows signing certificates: not an EK certificate");
    else if (X509_check_ca(cert))
        verdict(v, "key-usage", "fail", CIT_E_EK_KEY_USAGE,
                "basicConstraints makes it a CA: not an EK certificate");
    else if (eku_present && !eku_ok)
        verdict(v, "key-usage", "fail", CIT_E_EK_KEY_USAGE,
                "extendedKeyUsage does not include tcg-kp-EKCertificate (2.23.133.8.1)");
    else
        verdict(v, "key-usage", "pass", 0, "keyUsage %s%s", want_s,
                eku_present ? ", extendedKeyUsage tcg-kp-EKCertificate" : " (no extendedKeyUsage)");
    ERR_clear_error();
}

int cit__ekcert_verify(json_t *checks, X509 *cert, X509_STORE *trust, EVP_PKEY *ek,
                       const cit_tpm_attrs *tpm) {
    verdicts v = {.checks = checks};
    STACK_OF(X509) *chain = check_chain(&v, cert, trust);
    check_validity(&v, cert, chain);
    check_key(&v, cert, ek);
    check_attrs(&v, cert, tpm);
    check_usage(&v, cert, ek);
    sk_X509_pop_free(chain, X509_free);
    if (!v.first_code)
        return 0;
    cit_error_set(v.first_code, "the EK certificate failed the %s check: %s", v.first_check,
                  v.first_detail);
    for (int i = 0; i < v.n_failed - 1 && i < (int)ELEMENTSOF(v.others); i++)
        cit_error_cause("%s", v.others[i]);
    cit_error_context("check", "%s", v.first_check);
    return v.first_code;
}
