/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The certificate authority (docs/ca.md): root and intermediate CAs whose keys are either
 *   - in the TPM (--tpm): a key object ca/NAME/key; the TBS bytes of certificates and CRLs are
 *     built with OpenSSL, hashed here and signed by TPM2_Sign, and the DER is assembled here
 *     (SEQUENCE { tbs, signatureAlgorithm, BIT STRING }), parsed back and verified; or
 *   - software keys (default): DER PKCS#8, encrypted with XChaCha20-Poly1305 (the additional
 *     data binds the CA name) under a 32-byte KEK sealed in the TPM (ca/NAME/kek, an internal
 *     KEK `secret unseal` refuses). The ciphertext is a blob in the store's ca table, so it is
 *     written in the same transaction as the CA and travels with the store's backups.
 * Issued certificates are recorded (ca_certs) for revocation, CRLs and status queries; trust
 * stores (ca_trust) hold manufacturer roots and peer CAs.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/ca_backup.h"
#include "core/ed25519.h"
#include "core/keys.h"
#include "core/sealed.h"
#include "crypto/crypto.h"
#include "ctx.h"

#define CA_NAME_MAX 48
#define CSR_MAX (64 * 1024)
#define CERT_MAX (64 * 1024)
#define HW_SERIAL_MAX 128
#define KEY_MAGIC "CITCAK1" /* 8 bytes with the NUL */
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define DAY 86400
#define OID_HW_MODULE_NAME "1.3.6.1.5.5.7.8.4" /* id-on-hardwareModuleName, RFC 4108 */
#define OID_TCG_TPM20 "2.23.133.1.2"          /* hwType: TCG TPM 2.0 (TCG DevID profile) */
#define OID_TCG_KP_AIK "2.23.133.8.3"         /* tcg-kp-AIKCertificate */

struct cit_ca {
    cit_ctx *ctx;
    char name[CA_NAME_MAX + 1];
    char algorithm[16];
    bool tpm;
    bool plan;        /* opened in plan mode: no key */
    cit_object key;   /* tpm: the key object */
    EVP_PKEY *pkey;   /* file: the private key */
    EVP_PKEY *pub;    /* the CA's public key */
    X509 *cert;       /* NULL only while a root signs itself */
    X509_NAME *subject_self; /* a root signing itself: its own name */
    EVP_PKEY *algo_key; /* tpm: a throwaway software key of the same type, see sign_tbs_alg */
    /* cit_ca_begin .. cit_ca_commit: the issued certificates waiting to be recorded together */
    bool batch;
    bool batch_failed; /* an issue of the batch failed: the commit records nothing */
    struct pending_cert *pending;
    size_t npending, cap_pending;
};

/* A certificate issued in a batch, recorded at cit_ca_commit */
struct pending_cert {
    char *serial, *subject, *profile, *pem;
    int64_t nb, na;
};

static const struct profile {
    const char *name;
    const char *ku, *ku_rsa;
    const char *eku;
    int days;
} profiles[] = {
    {"tls-server", "critical,digitalSignature", "critical,digitalSignature,keyEncipherment", "serverAuth", 90},
    {"tls-client", "critical,digitalSignature", NULL, "clientAuth", 90},
    /* a device identity authenticates the device to services: not a server name (a node could
     * otherwise be issued a certificate its fleet would accept for any server) */
    {"devid", "critical,digitalSignature", NULL, "clientAuth", 365},
    {"ak", "critical,digitalSignature", NULL, OID_TCG_KP_AIK, 365},
};

static const struct {
    const char *name;
    int code;
} reasons[] = {
    {"unspecified", CRL_REASON_UNSPECIFIED},
    {"keyCompromise", CRL_REASON_KEY_COMPROMISE},
    {"cACompromise", CRL_REASON_CA_COMPROMISE},
    {"affiliationChanged", CRL_REASON_AFFILIATION_CHANGED},
    {"superseded", CRL_REASON_SUPERSEDED},
    {"cessationOfOperation", CRL_REASON_CESSATION_OF_OPERATION},
    {"certificateHold", CRL_REASON_CERTIFICATE_HOLD},
    {"privilegeWithdrawn", CRL_REASON_PRIVILEGE_WITHDRAWN},
    {"aACompromise", CRL_REASON_AA_COMPROMISE},
};

/* ---- small helpers ---- */

static bool device_profile(const char *profile) {
    return profile && (strcmp(profile, "devid") == 0 || strcmp(profile, "ak") == 0);
}

static int check_name(const char *name, const char *what) {
    size_t n = name ? strlen(name) : 0;
    bool ok = n >= 1 && n <= CA_NAME_MAX && name[0] != '.' && name[0] != '-';
    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
             name[i] == '_' || name[i] == '-';
    if (ok)
        return 0;
    cit_error_set(CIT_E_USAGE, "invalid %s name: '%s'", what, name ? name : "");
    cit_error_cause("use 1-%d lowercase letters, digits, '.', '_' and '-' (not first)", CA_NAME_MAX);
    return CIT_E_USAGE;
}

static int check_algorithm(const char *alg) {
    if (strcmp(alg, "ecc-p256") == 0 || strcmp(alg, "ecc-p384") == 0 || strcmp(alg, "rsa-3072") == 0)
        return 0;
    cit_error_set(CIT_E_ALG_UNSUPPORTED, "a CA key cannot be %s", alg);
    cit_error_cause("CA keys: ecc-p256 (default), ecc-p384, rsa-3072");
    return CIT_E_ALG_UNSUPPORTED;
}

static TPMI_ALG_HASH ca_hash(const char *alg) { return strcmp(alg, "ecc-p384") == 0 ? TPM2_ALG_SHA384 : TPM2_ALG_SHA256; }

static const struct profile *find_profile(const char *name) {
    for (size_t i = 0; name && i < ELEMENTSOF(profiles); i++)
        if (strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    cit_error_set(CIT_E_CA_PROFILE_UNKNOWN, "unknown certificate profile: %s", name ? name : "(none)");
    cit_error_cause("profiles: tls-server, tls-client, devid, ak");
    if (!name)
        cit_error_step("give one with --profile");
    return NULL;
}

/* Lowercase hex without leading zeros, from "0A:1b", "0x0a1b" or "0A1B". */
static int normalize_serial(const char *in, char *out, size_t cap) {
    size_t o = 0;
    const char *p = in ? in : "";
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    bool lead = true;
    for (; *p; p++) {
        char c = *p;
        if (c == ':' || c == ' ')
            continue;
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) || o + 1 >= cap) {
            cit_error_set(CIT_E_USAGE, "invalid serial number: '%s'", in ? in : "");
            cit_error_cause("a serial is hex (at most %zu digits), as `openssl x509 -noout -serial` prints it", cap - 2);
            return CIT_E_USAGE;
        }
        if (lead && c == '0')
            continue;
        lead = false;
        out[o++] = c;
    }
    if (o == 0) {
        cit_error_set(CIT_E_USAGE, "invalid serial number: '%s'", in ? in : "");
        return CIT_E_USAGE;
    }
    out[o] = 0;
    return 0;
}

static char *serial_hex(const ASN1_INTEGER *ai) {
    BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
    char *h = bn ? BN_bn2hex(bn) : NULL, *res = NULL;
    BN_free(bn);
    if (h) {
        res = malloc(strlen(h) + 1);
        if (res && normalize_serial(h, res, strlen(h) + 1) < 0) {
            free(res);
            res = NULL;
        }
    }
    OPENSSL_free(h);
    return res;
}

static char *name_text(const X509_NAME *n) {
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *res = NULL;
    if (b && X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
        long l = BIO_get_mem_data(b, &p);
        res = strndup(p ? p : "", (size_t)(l > 0 ? l : 0));
    }
    BIO_free(b);
    return res;
}

static int64_t asn1_time_unix(const ASN1_TIME *t) {
    struct tm tm = {0};
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

static char *x509_pem(X509 *x) {
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *res = NULL;
    if (b && PEM_write_bio_X509(b, x)) {
        long l = BIO_get_mem_data(b, &p);
        res = strndup(p, (size_t)l);
    }
    BIO_free(b);
    return res;
}

static X509 *x509_from(const uint8_t *buf, size_t len) {
    BIO *b = BIO_new_mem_buf(buf, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x) {
        const uint8_t *p = buf;
        x = d2i_X509(NULL, &p, (long)len);
        if (x && p != buf + len) { /* trailing bytes: not one DER certificate */
            X509_free(x);
            x = NULL;
        }
    }
    ERR_clear_error();
    return x;
}

static void time_json(json_t *o, const char *key, int64_t t) {
    char when[40];
    cit_time_rfc3339(when, sizeof when, t);
    json_object_set_new(o, key, json_string(when));
}

/* ---- signing ---- */

/* A throwaway software key of the CA key's type. OpenSSL 3.0 has no setter for the signature
 * AlgorithmIdentifier inside a certificate's or CRL's TBS: signing once with this key fills
 * both AlgorithmIdentifiers; the TBS is then re-encoded, signed in the TPM, and the signature
 * replaced. The throwaway signature never leaves this file. */
static int algo_key(cit_ca *ca) {
    if (ca->algo_key)
        return 0;
    ca->algo_key = strncmp(ca->algorithm, "rsa", 3) == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024)
                                                         : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return ca->algo_key ? 0 : cit__openssl_error(CIT_E_CRYPTO, "making the algorithm placeholder key");
}

/* Signs tbs in the TPM with the CA's key: the signature in X.509 encoding (DER ECDSA-Sig-Value
 * or the RSA signature). */
static int tpm_sign(cit_ca *ca, const uint8_t *tbs, size_t tl, uint8_t **sig, size_t *sl) {
    TPMI_ALG_HASH halg = ca_hash(ca->algorithm);
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    TPMT_SIGNATURE *ts = NULL;
    int r = cit__digest(halg, tbs, tl, md, &mdlen);
    if (r == 0)
        r = cit__key_sign_digest(ca->ctx, &ca->key, halg, md, mdlen, NULL, &ts);
    if (r == 0)
        r = cit__sig_encode(sig, sl, ts, CIT_SIG_ENC_DER, strcmp(ca->algorithm, "ecc-p384") == 0 ? 48 : 32);
    Esys_Free(ts);
    return r;
}

/* DER SEQUENCE { tbs, alg, BIT STRING sig } */
static int assemble(const uint8_t *tbs, size_t tl, const X509_ALGOR *alg, const uint8_t *sig, size_t sl, uint8_t **der,
                    size_t *dl) {
    uint8_t *a = NULL, *b = NULL;
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    int al = i2d_X509_ALGOR(alg, &a);
    int bl = -1;
    if (bs && ASN1_BIT_STRING_set(bs, (unsigned char *)sig, (int)sl)) {
        bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07); /* no unused bits */
        bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
        bl = i2d_ASN1_BIT_STRING(bs, &b);
    }
    ASN1_BIT_STRING_free(bs);
    int r = 0;
    if (al <= 0 || bl <= 0) {
        r = cit__openssl_error(CIT_E_CRYPTO, "encoding the signature");
    } else {
        int content = (int)tl + al + bl;
        int total = ASN1_object_size(1, content, V_ASN1_SEQUENCE);
        uint8_t *out = total > 0 ? malloc((size_t)total) : NULL, *p = out;
        if (!out)
            r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        else {
            ASN1_put_object(&p, 1, content, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
            memcpy(p, tbs, tl);
            p += tl;
            memcpy(p, a, (size_t)al);
            p += al;
            memcpy(p, b, (size_t)bl);
            *der = out;
            *dl = (size_t)total;
        }
    }
    OPENSSL_free(a);
    OPENSSL_free(b);
    return r;
}

/* The DER of a TPM-signed certificate or CRL: its TBS bytes (OPENSSL_free'd here) signed in the
 * TPM, assembled with the algorithm the placeholder signature left in them. */
static int tpm_signed_der(cit_ca *ca, uint8_t *tbs, size_t tl, const X509_ALGOR *alg, uint8_t **der, size_t *dl) {
    uint8_t *sig = NULL;
    size_t sl = 0;
    int r = tpm_sign(ca, tbs, tl, &sig, &sl);
    if (r == 0)
        r = assemble(tbs, tl, alg, sig, sl, der, dl);
    OPENSSL_free(tbs);
    free(sig);
    return r;
}

static const EVP_MD *ca_md(const cit_ca *ca) { return cit__hash_md(ca_hash(ca->algorithm)); }

/* Signs the certificate *x with the CA's key (replacing *x by the parsed-back one for a TPM
 * key) and checks it verifies with the CA's public key. */
static int sign_cert(cit_ca *ca, X509 **x) {
    int r = 0;
    if (!ca->tpm) {
        if (X509_sign(*x, ca->pkey, ca_md(ca)) <= 0)
            return cit__openssl_error(CIT_E_CRYPTO, "signing the certificate");
    } else {
        uint8_t *tbs = NULL, *der = NULL;
        size_t dl = 0;
        int tl = -1;
        if ((r = algo_key(ca)) < 0)
            return r;
        if (X509_sign(*x, ca->algo_key, ca_md(ca)) <= 0 || (tl = i2d_re_X509_tbs(*x, &tbs)) <= 0)
            return cit__openssl_error(CIT_E_CRYPTO, "encoding the certificate");
        const X509_ALGOR *alg = NULL;
        X509_get0_signature(NULL, &alg, *x);
        r = tpm_signed_der(ca, tbs, (size_t)tl, alg, &der, &dl);
        if (r == 0) {
            const uint8_t *p = der;
            X509 *y = d2i_X509(NULL, &p, (long)dl);
            if (!y)
                r = cit__openssl_error(CIT_E_CRYPTO, "parsing the TPM-signed certificate");
            else {
                X509_free(*x);
                *x = y;
            }
        }
        free(der);
        if (r < 0)
            return r;
    }
    if (X509_verify(*x, ca->pub) != 1)
        return cit__openssl_error(CIT_E_SIGNATURE_INVALID, "the new certificate's signature does not verify");
    return 0;
}

static int sign_crl(cit_ca *ca, X509_CRL **c) {
    int r = 0;
    if (!ca->tpm) {
        if (X509_CRL_sign(*c, ca->pkey, ca_md(ca)) <= 0)
            return cit__openssl_error(CIT_E_CRYPTO, "signing the CRL");
    } else {
        uint8_t *tbs = NULL, *der = NULL;
        size_t dl = 0;
        int tl = -1;
        if ((r = algo_key(ca)) < 0)
            return r;
        if (X509_CRL_sign(*c, ca->algo_key, ca_md(ca)) <= 0 || (tl = i2d_re_X509_CRL_tbs(*c, &tbs)) <= 0)
            return cit__openssl_error(CIT_E_CRYPTO, "encoding the CRL");
        const X509_ALGOR *alg = NULL;
        X509_CRL_get0_signature(*c, NULL, &alg);
        r = tpm_signed_der(ca, tbs, (size_t)tl, alg, &der, &dl);
        if (r == 0) {
            const uint8_t *p = der;
            X509_CRL *y = d2i_X509_CRL(NULL, &p, (long)dl);
            if (!y)
                r = cit__openssl_error(CIT_E_CRYPTO, "parsing the TPM-signed CRL");
            else {
                X509_CRL_free(*c);
                *c = y;
            }
        }
        free(der);
        if (r < 0)
            return r;
    }
    if (X509_CRL_verify(*c, ca->pub) != 1)
        return cit__openssl_error(CIT_E_SIGNATURE_INVALID, "the new CRL's signature does not verify");
    return 0;
}

/* ---- the encrypted software key ---- */

static size_t key_ad(uint8_t *ad, const char *name) {
    static const char label[] = "citadel-ca-key/v1";
    size_t n = sizeof label; /* with the NUL */
    memcpy(ad, label, n);
    size_t l = strlen(name);
    memcpy(ad + n, name, l);
    return n + l;
}

/* blob = KEY_MAGIC (8) || nonce || XChaCha20-Poly1305(PKCS#8 DER) */
static int key_encrypt(const char *name, EVP_PKEY *pk, const uint8_t *kek, uint8_t **blob, size_t *blen) {
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
    int n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, NULL) : -1;
    if (n <= 0) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        return cit__openssl_error(CIT_E_CRYPTO, "encoding the CA key");
    }
    uint8_t *plain = sodium_malloc((size_t)n), *p = plain;
    size_t total = 8 + NONCE_BYTES + (size_t)n + TAG_BYTES;
    uint8_t *out = malloc(total);
    int r = 0;
    if (!plain || !out)
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    else if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != n)
        r = cit__openssl_error(CIT_E_CRYPTO, "encoding the CA key");
    if (r == 0) {
        uint8_t ad[32 + CA_NAME_MAX];
        size_t adl = key_ad(ad, name);
        memcpy(out, KEY_MAGIC, 8);
        randombytes_buf(out + 8, NONCE_BYTES);
        unsigned long long cl = 0;
        crypto_aead_xchacha20poly1305_ietf_encrypt(out + 8 + NONCE_BYTES, &cl, plain, (unsigned long long)n, ad, adl,
                                                   NULL, out + 8, kek);
        *blob = out;
        *blen = total;
        out = NULL;
    }
    if (plain)
        sodium_free(plain); /* wipes */
    free(out);
    PKCS8_PRIV_KEY_INFO_free(p8); /* OpenSSL cleanses the key octets */
    return r;
}

static int key_decrypt(const char *name, const uint8_t *blob, size_t blen, const uint8_t *kek, EVP_PKEY **out) {
    if (blen < 8 + NONCE_BYTES + TAG_BYTES + 1 || memcmp(blob, KEY_MAGIC, 8) != 0) {
        cit_error_set(CIT_E_CA_KEY_DAMAGED, "the encrypted key of CA %s is damaged", name);
        cit_error_cause("it is not in the format citadel writes (%zu bytes)", blen);
        return CIT_E_CA_KEY_DAMAGED;
    }
    size_t pl = blen - 8 - NONCE_BYTES - TAG_BYTES;
    uint8_t *plain = sodium_malloc(pl);
    if (!plain)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    uint8_t ad[32 + CA_NAME_MAX];
    size_t adl = key_ad(ad, name);
    unsigned long long got = 0;
    int r = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &got, NULL, blob + 8 + NONCE_BYTES, blen - 8 - NONCE_BYTES,
                                                   ad, adl, blob + 8, kek) != 0) {
        r = cit_error_set(CIT_E_CA_KEY_DAMAGED, "the encrypted key of CA %s does not decrypt", name);
        cit_error_cause("the ciphertext was changed, belongs to another CA, or its sealed key-encryption key was replaced");
    } else {
        const uint8_t *p = plain;
        PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)got);
        EVP_PKEY *pk = p8 ? EVP_PKCS82PKEY(p8) : NULL;
        PKCS8_PRIV_KEY_INFO_free(p8);
        if (!pk)
            r = cit__openssl_error(CIT_E_CA_KEY_DAMAGED, "the decrypted CA key does not parse");
        else
            *out = pk;
    }
    sodium_free(plain);
    return r;
}

/* ---- the store ---- */

typedef struct ca_row {
    char *parent, *algorithm, *key_kind, *key_object, *cert_pem, *serial, *subject;
    uint8_t *blob;
    size_t blob_len;
    int64_t not_before, not_after, crl_number;
} ca_row;

static void ca_row_clear(ca_row *c) {
    free(c->parent);
    free(c->algorithm);
    free(c->key_kind);
    free(c->key_object);
    free(c->cert_pem);
    free(c->serial);
    free(c->subject);
    free(c->blob);
    memset(c, 0, sizeof *c);
}

static char *col_text(sqlite3_stmt *st, int i) {
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? strdup(t) : NULL;
}

static int ca_get(cit_store *s, const char *name, ca_row *c) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st,
                               "SELECT parent, algorithm, key_kind, key_object, key_blob, cert_pem, serial, subject, "
                               "not_before, not_after, crl_number FROM ca WHERE name = ?");
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        cit_error_set(CIT_E_CA_NOT_FOUND, "no CA named %s", name);
        cit_error_context("ca", "%s", name);
        cit_error_step("run `citadel ca list` to see the CAs; create one with `citadel ca init %s`", name);
        return CIT_E_CA_NOT_FOUND;
    }
    memset(c, 0, sizeof *c);
    c->parent = col_text(st, 0);
    c->algorithm = col_text(st, 1);
    c->key_kind = col_text(st, 2);
    c->key_object = col_text(st, 3);
    c->blob_len = (size_t)sqlite3_column_bytes(st, 4);
    if (c->blob_len) {
        c->blob = malloc(c->blob_len);
        if (c->blob)
            memcpy(c->blob, sqlite3_column_blob(st, 4), c->blob_len);
    }
    c->cert_pem = col_text(st, 5);
    c->serial = col_text(st, 6);
    c->subject = col_text(st, 7);
    c->not_before = sqlite3_column_int64(st, 8);
    c->not_after = sqlite3_column_int64(st, 9);
    c->crl_number = sqlite3_column_int64(st, 10);
    sqlite3_finalize(st);
    if (!c->algorithm || !c->key_kind || !c->key_object || !c->cert_pem || (c->blob_len && !c->blob)) {
        ca_row_clear(c);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    return 0;
}

static bool ca_exists(cit_store *s, const char *name) {
    sqlite3_stmt *st = NULL;
    if (cit__store_prepare(s, &st, "SELECT 1 FROM ca WHERE name = ?") < 0)
        return false;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    bool b = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return b;
}

static int record_cert(cit_store *s, const char *serial, const char *ca, const char *subject, const char *profile,
                       int64_t nb, int64_t na, const char *pem) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st,
                               "INSERT INTO ca_certs (serial, ca, subject, profile, not_before, not_after, pem, "
                               "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ca, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, subject ? subject : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, profile, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, nb);
    sqlite3_bind_int64(st, 6, na);
    sqlite3_bind_text(st, 7, pem, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (int64_t)time(NULL));
    if (sqlite3_step(st) != SQLITE_DONE)
        r = cit__store_error(s, "cannot record the certificate");
    sqlite3_finalize(st);
    return r;
}

/* "valid" / "revoked" / NULL (unknown), with the CA's name */
static const char *cert_db_status(cit_store *s, const char *serial, char *ca, size_t cap, int64_t *not_after) {
    sqlite3_stmt *st = NULL;
    const char *res = NULL;
    if (cit__store_prepare(s, &st, "SELECT status, ca, not_after FROM ca_certs WHERE serial = ?") < 0)
        return NULL;
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        res = strcmp((const char *)sqlite3_column_text(st, 0), "revoked") == 0 ? "revoked" : "valid";
        if (ca)
            snprintf(ca, cap, "%s", (const char *)sqlite3_column_text(st, 1));
        if (not_after)
            *not_after = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    return res;
}

/* ---- open / close ---- */

static void pending_clear(cit_ca *ca) {
    for (size_t i = 0; i < ca->npending; i++) {
        struct pending_cert *p = &ca->pending[i];
        free(p->serial);
        free(p->subject);
        free(p->profile);
        free(p->pem);
    }
    free(ca->pending);
    ca->pending = NULL;
    ca->npending = ca->cap_pending = 0;
    ca->batch = ca->batch_failed = false;
}

_public_ void cit_ca_close(cit_ca *ca) {
    if (!ca)
        return;
    pending_clear(ca); /* an open batch is rolled back */
    EVP_PKEY_free(ca->pkey); /* OpenSSL clears private key material when freeing */
    EVP_PKEY_free(ca->pub);
    EVP_PKEY_free(ca->algo_key);
    X509_free(ca->cert);
    X509_NAME_free(ca->subject_self);
    cit__object_clear(&ca->key);
    free(ca);
}

/* The CA's usable key: a TPM key object's public key, or the decrypted software key. */
static int open_key(cit_ca *ca, const ca_row *c) {
    cit_ctx *ctx = ca->ctx;
    int r = 0;
    if (ca->tpm) {
        cit_object_version v = {0};
        TPM2B_PUBLIC pub;
        r = cit__object_find(ctx->store, c->key_object, &ca->key);
        if (r == 0)
            r = cit__require_active(&ca->key);
        if (r == 0)
            r = cit__version_get(ctx->store, ca->key.id, ca->key.version, &v);
        if (r == 0)
            r = cit__public_unmarshal(&v, &pub);
        if (r == 0)
            r = cit__pubkey_from_tpm(&ca->pub, &pub);
        cit__version_clear(&v);
        if (r < 0) {
            cit_error_cause("the TPM key of CA %s (%s) cannot be used", ca->name, c->key_object);
            return r;
        }
        return 0;
    }
    cit_object kek_o = {0};
    uint8_t *kek = NULL;
    if ((r = cit__sodium_init()) < 0)
        return r;
    r = cit__object_find(ctx->store, c->key_object, &kek_o);
    if (r == 0 && !cit__kek_is_internal(&kek_o))
        r = cit_error_set(CIT_E_CA_KEY_DAMAGED, "%s is not the key-encryption key of CA %s", c->key_object, ca->name);
    if (r == 0 && !(kek = sodium_malloc(CIT_KEK_BYTES)))
        r = cit_error_set(CIT_E_INTERNAL, "cannot allocate locked memory");
    if (r == 0)
        r = cit__kek_unseal(ctx, &kek_o, kek_o.version, kek);
    if (r == 0)
        r = key_decrypt(ca->name, c->blob, c->blob_len, kek, &ca->pkey);
    if (kek)
        sodium_free(kek);
    cit__object_clear(&kek_o);
    if (r < 0) {
        cit_error_cause("the key of CA %s is a software key encrypted under %s, sealed in the TPM", ca->name, c->key_object);
        return r;
    }
    ca->pub = ca->pkey;
    EVP_PKEY_up_ref(ca->pub);
    return 0;
}

_public_ int cit_ca_open(cit_ca **out, cit_ctx *ctx, const char *name) {
    cit_error_clear();
    cit_store *s;
    int r = check_name(name, "CA");
    if (r == 0)
        r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    ca_row c;
    if ((r = ca_get(s, name, &c)) < 0)
        return r;
    cit_ca *ca = calloc(1, sizeof *ca);
    if (!ca) {
        ca_row_clear(&c);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    ca->ctx = ctx;
    snprintf(ca->name, sizeof ca->name, "%s", name);
    snprintf(ca->algorithm, sizeof ca->algorithm, "%s", c.algorithm);
    ca->tpm = strcmp(c.key_kind, "tpm") == 0;
    ca->plan = ctx->plan;
    ca->cert = x509_from((const uint8_t *)c.cert_pem, strlen(c.cert_pem));
    if (!ca->cert)
        r = cit_error_set(CIT_E_STORE_INCONSISTENT, "the certificate of CA %s in the store is damaged", name);
    if (r == 0 && !ca->plan)
        r = open_key(ca, &c);
    if (r == 0 && !ca->plan && EVP_PKEY_eq(X509_get0_pubkey(ca->cert), ca->pub) != 1) {
        r = cit_error_set(CIT_E_CA_KEY_DAMAGED, "the key of CA %s does not match its certificate", name);
        cit_error_cause("the key object %s was replaced or rotated", c.key_object);
    }
    ca_row_clear(&c);
    if (r < 0) {
        cit_ca_close(ca);
        return r;
    }
    *out = ca;
    return 0;
}

_public_ int cit_ca_cert_pem(cit_ca *ca, char **pem) {
    char *p = x509_pem(ca->cert);
    if (!p)
        return cit__openssl_error(CIT_E_CRYPTO, "encoding the CA certificate");
    *pem = p;
    return 0;
}

/* The CA may issue now: its certificate is within its validity and not revoked. */
static int ca_usable(cit_ca *ca, int64_t now) {
    char *serial = serial_hex(X509_get0_serialNumber(ca->cert));
    const char *st = serial ? cert_db_status(ca->ctx->store, serial, NULL, 0, NULL) : NULL;
    int64_t nb = asn1_time_unix(X509_get0_notBefore(ca->cert)), na = asn1_time_unix(X509_get0_notAfter(ca->cert));
    int r = 0;
    if (st && strcmp(st, "revoked") == 0) {
        r = cit_error_set(CIT_E_CA_UNUSABLE, "CA %s is revoked", ca->name);
        cit_error_cause("its certificate (serial %s) was revoked by its issuer", serial);
    } else if (now >= na) {
        r = cit_error_set(CIT_E_CA_UNUSABLE, "the certificate of CA %s has expired", ca->name);
    } else if (now + 300 < nb) {
        r = cit_error_set(CIT_E_CA_UNUSABLE, "the certificate of CA %s is not valid yet", ca->name);
    }
    if (r < 0)
        cit_error_context("ca", "%s", ca->name);
    free(serial);
    return r;
}

/* ---- building certificates ---- */

static int add_ext_nid(X509 *x, X509V3_CTX *v3, int nid, const char *value) {
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    int ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (!ok)
        return cit__openssl_error(nid == NID_subject_alt_name ? CIT_E_USAGE : CIT_E_CRYPTO, "adding an extension");
    return 0;
}

static int random_serial(ASN1_INTEGER **out, char **hex) {
    uint8_t b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return cit__openssl_error(CIT_E_CRYPTO, "random serial number");
    b[0] &= 0x7f; /* positive */
    if (b[0] == 0)
        b[0] = 0x01;
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    BN_free(bn);
    char *h = ai ? serial_hex(ai) : NULL;
    if (!h) {
        ASN1_INTEGER_free(ai);
        return cit__openssl_error(CIT_E_CRYPTO, "random serial number");
    }
    *out = ai;
    *hex = h;
    return 0;
}

/* A HardwareModuleName otherName (RFC 4108): SEQUENCE { hwType OID, hwSerialNum OCTET STRING }. */
static GENERAL_NAME *hw_module_name(const uint8_t *serial, size_t len) {
    ASN1_OBJECT *hwtype = OBJ_txt2obj(OID_TCG_TPM20, 1), *on = OBJ_txt2obj(OID_HW_MODULE_NAME, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    uint8_t *a = NULL, *b = NULL, *der = NULL;
    int al = -1, bl = -1;
    GENERAL_NAME *g = NULL;
    ASN1_TYPE *val = NULL;
    ASN1_STRING *seq = NULL;
    if (hwtype && on && os && ASN1_OCTET_STRING_set(os, serial, (int)len)) {
        al = i2d_ASN1_OBJECT(hwtype, &a);
        bl = i2d_ASN1_OCTET_STRING(os, &b);
    }
    if (al > 0 && bl > 0) {
        int total = ASN1_object_size(1, al + bl, V_ASN1_SEQUENCE);
        der = malloc((size_t)total);
        uint8_t *p = der;
        if (der) {
            ASN1_put_object(&p, 1, al + bl, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
            memcpy(p, a, (size_t)al);
            memcpy(p + al, b, (size_t)bl);
            seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
            val = ASN1_TYPE_new();
            g = GENERAL_NAME_new();
            if (seq && val && g && ASN1_STRING_set(seq, der, total)) {
                ASN1_TYPE_set(val, V_ASN1_SEQUENCE, seq);
                seq = NULL;
                if (GENERAL_NAME_set0_othername(g, on, val)) {
                    on = NULL;
                    val = NULL;
                } else {
                    GENERAL_NAME_free(g);
                    g = NULL;
                }
            } else {
                GENERAL_NAME_free(g);
                g = NULL;
            }
        }
    }
    ASN1_STRING_free(seq);
    ASN1_TYPE_free(val);
    free(der);
    OPENSSL_free(a);
    OPENSSL_free(b);
    ASN1_OBJECT_free(hwtype);
    ASN1_OBJECT_free(on);
    ASN1_OCTET_STRING_free(os);
    return g;
}

typedef struct issue_req {
    EVP_PKEY *pub;          /* borrowed */
    const X509_NAME *subject; /* borrowed */
    GENERAL_NAMES *sans;    /* borrowed, may be NULL */
    const char *profile;    /* a profile name, or "ca" (intermediate / root) */
    int days;
    int pathlen;            /* CA certificates: -1 none */
} issue_req;

/* The certificate's SubjectPublicKeyInfo. A P-256/P-384 key is written from its point (the
 * AlgorithmIdentifier is fixed): X509_set_pubkey would run OpenSSL 3's encoder and then its
 * decoder on the key, most of the cost of building a certificate. Other keys: X509_set_pubkey. */
static int set_pubkey(X509 *x, EVP_PKEY *pub) {
    char group[16];
    uint8_t pt[97];
    size_t pl = 0;
    int curve = NID_undef;
    if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC &&
        EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) == 1 &&
        EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof pt, &pl) == 1 && pt[0] == 4) {
        if (strcmp(group, "prime256v1") == 0 && pl == 65)
            curve = NID_X9_62_prime256v1;
        else if (strcmp(group, "secp384r1") == 0 && pl == 97)
            curve = NID_secp384r1;
    }
    ERR_clear_error();
    X509_PUBKEY *xp = X509_get_X509_PUBKEY(x);
    if (curve == NID_undef || !xp)
        return X509_set_pubkey(x, pub);
    uint8_t *enc = OPENSSL_memdup(pt, pl);
    if (!enc || !X509_PUBKEY_set0_param(xp, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT, OBJ_nid2obj(curve),
                                        enc, (int)pl)) {
        OPENSSL_free(enc);
        return 0;
    }
    return 1;
}

/* Builds, signs and checks a certificate. signer issues it (a root: signer->cert NULL, its
 * own subject in signer->subject_self). *na_out the notAfter, *clamped when it was cut to the
 * issuer's. */
static int build_cert(cit_ca *signer, const issue_req *q, X509 **out, char **serial_out, bool *clamped) {
    const struct profile *pf = NULL;
    bool ca_cert = strcmp(q->profile, "ca") == 0;
    if (!ca_cert && !(pf = find_profile(q->profile)))
        return CIT_E_CA_PROFILE_UNKNOWN;
    int64_t now = (int64_t)time(NULL);
    int64_t na = now + (int64_t)(q->days > 0 ? q->days : pf ? pf->days : 365) * DAY;
    *clamped = false;
    if (signer->cert) {
        int64_t limit = asn1_time_unix(X509_get0_notAfter(signer->cert));
        if (na > limit) {
            na = limit;
            *clamped = true;
        }
    }
    X509 *x = X509_new();
    ASN1_INTEGER *serial = NULL;
    char *hex = NULL;
    int r = random_serial(&serial, &hex);
    if (r < 0) {
        X509_free(x);
        return r;
    }
    const X509_NAME *issuer = signer->cert ? X509_get_subject_name(signer->cert) : signer->subject_self;
    if (!x || !X509_set_version(x, 2) || !X509_set_serialNumber(x, serial) ||
        !X509_set_issuer_name(x, issuer) || !X509_set_subject_name(x, q->subject) || !set_pubkey(x, q->pub) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - 60)) || !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na)) {
        r = cit__openssl_error(CIT_E_CRYPTO, "building the certificate");
        goto done;
    }
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, signer->cert ? signer->cert : x, x, NULL, NULL, 0);
    bool rsa = EVP_PKEY_get_base_id(q->pub) == EVP_PKEY_RSA;
    if (ca_cert) {
        char bc[64];
        if (q->pathlen >= 0)
            snprintf(bc, sizeof bc, "critical,CA:TRUE,pathlen:%d", q->pathlen);
        else
            snprintf(bc, sizeof bc, "critical,CA:TRUE");
        if ((r = add_ext_nid(x, &v3, NID_basic_constraints, bc)) < 0 ||
            (r = add_ext_nid(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature")) < 0)
            goto done;
    } else {
        if ((r = add_ext_nid(x, &v3, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
            (r = add_ext_nid(x, &v3, NID_key_usage, rsa && pf->ku_rsa ? pf->ku_rsa : pf->ku)) < 0 ||
            (r = add_ext_nid(x, &v3, NID_ext_key_usage, pf->eku)) < 0)
            goto done;
    }
    if ((r = add_ext_nid(x, &v3, NID_subject_key_identifier, "hash")) < 0 ||
        (r = add_ext_nid(x, &v3, NID_authority_key_identifier, "keyid:always")) < 0)
        goto done;
    if (q->sans && sk_GENERAL_NAME_num(q->sans) > 0) {
        /* critical when the subject is empty (RFC 5280 4.2.1.6) */
        int crit = X509_NAME_entry_count(q->subject) == 0;
        if (!X509_add1_ext_i2d(x, NID_subject_alt_name, q->sans, crit, X509V3_ADD_DEFAULT)) {
            r = cit__openssl_error(CIT_E_CRYPTO, "adding the subject alternative names");
            goto done;
        }
    }
    if ((r = sign_cert(signer, &x)) < 0)
        goto done;
    *out = x;
    *serial_out = hex;
    x = NULL;
    hex = NULL;
done:
    X509_free(x);
    ASN1_INTEGER_free(serial);
    free(hex);
    return r;
}

/* SANs: the HardwareModuleName first (device profiles), then the CSR's names, then the given
 * text. A device certificate (devid, ak) takes no name from its CSR: the requester (a node, in
 * enrollment) would choose the names the CA vouches for. Other profiles take the CSR's DNS, IP,
 * URI and email names, never an otherName (a HardwareModuleName is the CA's to state). */
static int collect_sans(X509_REQ *req, const char *san, const uint8_t *hw, size_t hwl, bool device,
                        GENERAL_NAMES **out) {
    GENERAL_NAMES *all = sk_GENERAL_NAME_new_null();
    if (!all)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    int r = 0;
    if (hw && hwl) {
        GENERAL_NAME *g = hw_module_name(hw, hwl);
        if (!g)
            r = cit__openssl_error(CIT_E_CRYPTO, "encoding the HardwareModuleName");
        else
            sk_GENERAL_NAME_push(all, g);
    }
    if (r == 0 && req && !device) {
        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
        int i = exts ? X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1) : -1;
        GENERAL_NAMES *g = i >= 0 ? X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, i)) : NULL;
        while (g && sk_GENERAL_NAME_num(g) > 0) {
            GENERAL_NAME *n = sk_GENERAL_NAME_shift(g);
            if (n->type == GEN_DNS || n->type == GEN_IPADD || n->type == GEN_URI || n->type == GEN_EMAIL)
                sk_GENERAL_NAME_push(all, n);
            else
                GENERAL_NAME_free(n);
        }
        GENERAL_NAMES_free(g);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    if (r == 0 && san && *san) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
        GENERAL_NAMES *g = e ? X509V3_EXT_d2i(e) : NULL;
        X509_EXTENSION_free(e);
        if (!g) {
            ERR_clear_error();
            r = cit_error_set(CIT_E_USAGE, "invalid subject alternative names: %s", san);
            cit_error_cause("write names as DNS:example.org,IP:192.0.2.1,email:a@example.org,URI:spiffe://x/y");
        }
        while (g && sk_GENERAL_NAME_num(g) > 0)
            sk_GENERAL_NAME_push(all, sk_GENERAL_NAME_shift(g));
        GENERAL_NAMES_free(g);
    }
    if (r < 0) {
        GENERAL_NAMES_free(all);
        return r;
    }
    *out = all;
    return 0;
}

static json_t *cert_json(X509 *x, const char *serial, const char *profile, const char *ca, bool clamped) {
    char *subject = name_text(X509_get_subject_name(x)), *issuer = name_text(X509_get_issuer_name(x));
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "serial", serial, "ca", ca, "profile", profile, "subject",
                          subject ? subject : "", "issuer", issuer ? issuer : "");
    time_json(o, "not_before", asn1_time_unix(X509_get0_notBefore(x)));
    time_json(o, "not_after", asn1_time_unix(X509_get0_notAfter(x)));
    if (clamped)
        json_object_set_new(o, "note", json_string("the validity was cut to the issuing CA's notAfter"));
    free(subject);
    free(issuer);
    return o;
}

/* Issues to pub with subject and SANs under profile: built, signed, recorded. */
static int issue(json_t **out, cit_ca *ca, EVP_PKEY *pub, const X509_NAME *subject, GENERAL_NAMES *sans,
                 const cit_ca_issue_options *o, char **cert_pem) {
    int64_t now = (int64_t)time(NULL);
    if (o->days < 0 || o->days > 36500) {
        cit_error_set(CIT_E_USAGE, "--days must be between 1 and 36500");
        return CIT_E_USAGE;
    }
    if (X509_NAME_entry_count(subject) == 0 && (!sans || sk_GENERAL_NAME_num(sans) == 0)) {
        cit_error_set(CIT_E_USAGE, "the certificate would name nobody: its subject and its alternative names are empty");
        cit_error_step("give a subject with --subject, or names with --san");
        return CIT_E_USAGE;
    }
    int r = ca_usable(ca, now);
    if (r < 0)
        return r;
    if (ca->plan) {
        static const char *const ops_tpm[] = {"TPM2_Load (the CA key)", "TPM2_Sign (the certificate's TBS)", NULL};
        static const char *const ops_file[] = {"TPM2_Load + TPM2_Unseal (the CA's key-encryption key)", NULL};
        *out = cit__plan("issue a certificate (the CSR and profile were checked)", ca->tpm ? ops_tpm : ops_file);
        json_object_set_new(*out, "ca", json_string(ca->name));
        json_object_set_new(*out, "profile", json_string(o->profile));
        return 0;
    }
    X509 *x = NULL;
    char *serial = NULL, *pem = NULL, *subj = NULL;
    bool clamped = false;
    issue_req q = {.pub = pub, .subject = subject, .sans = sans, .profile = o->profile, .days = o->days, .pathlen = -1};
    r = build_cert(ca, &q, &x, &serial, &clamped);
    if (r == 0 && !(pem = x509_pem(x)))
        r = cit__openssl_error(CIT_E_CRYPTO, "encoding the certificate");
    if (r == 0)
        subj = name_text(subject);
    cit_store *s = ca->ctx->store;
    if (r == 0 && ca->batch) {
        /* recorded by cit_ca_commit, with the rest of the batch */
        if (ca->npending == ca->cap_pending) {
            size_t nc = ca->cap_pending ? 2 * ca->cap_pending : 4;
            struct pending_cert *np = realloc(ca->pending, nc * sizeof *np);
            if (!np)
                r = cit_error_set(CIT_E_INTERNAL, "out of memory");
            else {
                ca->pending = np;
                ca->cap_pending = nc;
            }
        }
        if (r == 0) {
            struct pending_cert *p = &ca->pending[ca->npending];
            *p = (struct pending_cert){.serial = strdup(serial), .subject = strdup(subj ? subj : ""),
                                       .profile = strdup(o->profile), .pem = strdup(pem),
                                       .nb = asn1_time_unix(X509_get0_notBefore(x)),
                                       .na = asn1_time_unix(X509_get0_notAfter(x))};
            ca->npending++;
            if (!p->serial || !p->subject || !p->profile || !p->pem)
                r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        }
    } else if (r == 0 && (r = cit__store_begin(s)) == 0) {
        r = record_cert(s, serial, ca->name, subj, o->profile, asn1_time_unix(X509_get0_notBefore(x)),
                        asn1_time_unix(X509_get0_notAfter(x)), pem);
        if (r == 0) {
            json_t *d = json_pack("{s:s,s:s,s:s}", "serial", serial, "profile", o->profile, "subject", subj ? subj : "");
            r = cit__store_event(s, "ca.issue", ca->name, 0, "ok", d);
            json_decref(d);
        }
        if (r == 0)
            r = cit__store_commit(s);
        else
            cit__store_rollback(s);
    }
    if (r == 0) {
        *out = cert_json(x, serial, o->profile, ca->name, clamped);
        if (o->hw_serial_len) {
            char *h = cit_hex_encode(o->hw_serial, o->hw_serial_len);
            json_object_set_new(*out, "hardware_module_name", json_pack("{s:s,s:s}", "hw_type", OID_TCG_TPM20, "hw_serial", h));
            free(h);
        }
        *cert_pem = pem;
        pem = NULL;
    }
    X509_free(x);
    free(serial);
    free(pem);
    free(subj);
    return r;
}

_public_ int cit_ca_begin(cit_ca *ca) {
    cit_error_clear();
    if (ca->batch) {
        cit_error_set(CIT_E_USAGE, "CA %s already has a batch of certificates open", ca->name);
        cit_error_step("finish it with cit_ca_commit or cit_ca_rollback first");
        return CIT_E_USAGE;
    }
    ca->batch = true;
    ca->batch_failed = false;
    return 0;
}

_public_ void cit_ca_rollback(cit_ca *ca) {
    if (ca)
        pending_clear(ca);
}

_public_ int cit_ca_commit(cit_ca *ca) {
    cit_error_clear();
    if (!ca->batch) {
        cit_error_set(CIT_E_USAGE, "CA %s has no batch of certificates open", ca->name);
        cit_error_step("start one with cit_ca_begin");
        return CIT_E_USAGE;
    }
    if (ca->batch_failed) {
        pending_clear(ca);
        cit_error_set(CIT_E_USAGE, "a certificate of this batch was not issued: none of the batch is recorded");
        cit_error_cause("all or nothing: the certificates issued in the batch before the failure are void");
        return CIT_E_USAGE;
    }
    int r = 0;
    cit_store *s = ca->ctx->store;
    if (ca->npending && !ca->plan && (r = cit__store_begin(s)) == 0) {
        for (size_t i = 0; r == 0 && i < ca->npending; i++) {
            struct pending_cert *p = &ca->pending[i];
            r = record_cert(s, p->serial, ca->name, p->subject, p->profile, p->nb, p->na, p->pem);
            if (r == 0) {
                json_t *d = json_pack("{s:s,s:s,s:s}", "serial", p->serial, "profile", p->profile, "subject", p->subject);
                r = cit__store_event(s, "ca.issue", ca->name, 0, "ok", d);
                json_decref(d);
            }
        }
        if (r == 0)
            r = cit__store_commit(s);
        else
            cit__store_rollback(s);
    }
    pending_clear(ca);
    return r;
}

static int check_issue_options(const cit_ca_issue_options *o) {
    if (!find_profile(o->profile))
        return CIT_E_CA_PROFILE_UNKNOWN;
    if (o->hw_serial_len > HW_SERIAL_MAX) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "the hardware serial is longer than %d bytes", HW_SERIAL_MAX);
        return CIT_E_INPUT_TOO_LARGE;
    }
    if (o->hw_serial_len && strcmp(o->profile, "devid") != 0 && strcmp(o->profile, "ak") != 0) {
        cit_error_set(CIT_E_USAGE, "a hardware module name goes into devid and ak certificates only");
        return CIT_E_USAGE;
    }
    return 0;
}

static int issue_csr(json_t **out, cit_ca *ca, const uint8_t *csr, size_t csr_len, const cit_ca_issue_options *o,
                     char **cert_pem) {
    int r = check_issue_options(o);
    if (r < 0)
        return r;
    if (csr_len > CSR_MAX) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "the CSR is larger than %d bytes", CSR_MAX);
        return CIT_E_INPUT_TOO_LARGE;
    }
    BIO *b = BIO_new_mem_buf(csr, (int)csr_len);
    X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!req) {
        const uint8_t *p = csr;
        req = d2i_X509_REQ(NULL, &p, (long)csr_len);
        if (req && p != csr + csr_len) {
            X509_REQ_free(req);
            req = NULL;
        }
    }
    ERR_clear_error();
    if (!req) {
        cit_error_set(CIT_E_CA_CSR_INVALID, "the CSR cannot be read (%zu bytes)", csr_len);
        cit_error_cause("it is not a complete PKCS#10 request in PEM or DER: truncated, damaged, or another kind of file");
        return CIT_E_CA_CSR_INVALID;
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (!pub || X509_REQ_verify(req, pub) != 1) {
        ERR_clear_error();
        X509_REQ_free(req);
        cit_error_set(CIT_E_CA_CSR_SIGNATURE, "the CSR's signature does not verify with the public key it names");
        cit_error_cause("the request was changed after it was signed, or it was not signed by its own key");
        return CIT_E_CA_CSR_SIGNATURE;
    }
    X509_NAME *subject = NULL;
    GENERAL_NAMES *sans = NULL;
    if (o->subject)
        r = cit__x509_name_parse(o->subject, &subject);
    else if (!(subject = X509_NAME_dup(X509_REQ_get_subject_name(req))))
        r = cit__openssl_error(CIT_E_CRYPTO, "the CSR's subject");
    if (r == 0)
        r = collect_sans(req, o->san, o->hw_serial, o->hw_serial_len, device_profile(o->profile), &sans);
    if (r == 0)
        r = issue(out, ca, pub, subject, sans, o, cert_pem);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(subject);
    X509_REQ_free(req);
    return r;
}

static int issue_key(json_t **out, cit_ca *ca, const uint8_t *spki_der, size_t spki_len, const cit_ca_issue_options *o,
                     char **cert_pem) {
    int r = check_issue_options(o);
    if (r < 0)
        return r;
    if (!o->subject) {
        cit_error_set(CIT_E_USAGE, "a certificate for a bare public key needs a subject");
        cit_error_step("give one with --subject, e.g. --subject CN=node-1");
        return CIT_E_USAGE;
    }
    const uint8_t *p = spki_der;
    EVP_PKEY *pub = NULL;
    cit_error saved = *cit_error_last();
    if (spki_len > CSR_MAX || cit__pubkey_from_der(&pub, spki_der, spki_len) < 0) { /* P-256/P-384: no decoder */
        cit_error_restore(&saved);
        pub = spki_len <= CSR_MAX ? d2i_PUBKEY(NULL, &p, (long)spki_len) : NULL;
    }
    if (!pub) {
        /* also PEM, for the CLI */
        BIO *b = spki_len <= CSR_MAX ? BIO_new_mem_buf(spki_der, (int)spki_len) : NULL;
        pub = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    }
    ERR_clear_error();
    if (!pub) {
        cit_error_set(CIT_E_INPUT_INVALID, "the public key cannot be read");
        cit_error_cause("give a SubjectPublicKeyInfo, DER or PEM (`citadel tpm key export-pub`, `openssl pkey -pubout`)");
        return CIT_E_INPUT_INVALID;
    }
    X509_NAME *subject = NULL;
    GENERAL_NAMES *sans = NULL;
    r = cit__x509_name_parse(o->subject, &subject);
    if (r == 0)
        r = collect_sans(NULL, o->san, o->hw_serial, o->hw_serial_len, device_profile(o->profile), &sans);
    if (r == 0)
        r = issue(out, ca, pub, subject, sans, o, cert_pem);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(subject);
    EVP_PKEY_free(pub);
    return r;
}

/* In a batch, a failed issue fails the whole batch (all or nothing). */
_public_ int cit_ca_issue_csr(json_t **out, cit_ca *ca, const uint8_t *csr, size_t csr_len,
                              const cit_ca_issue_options *o, char **cert_pem) {
    cit_error_clear();
    int r = issue_csr(out, ca, csr, csr_len, o, cert_pem);
    if (r < 0 && ca->batch)
        ca->batch_failed = true;
    return r;
}

_public_ int cit_ca_issue_key(json_t **out, cit_ca *ca, const uint8_t *spki_der, size_t spki_len,
                              const cit_ca_issue_options *o, char **cert_pem) {
    cit_error_clear();
    int r = issue_key(out, ca, spki_der, spki_len, o, cert_pem);
    if (r < 0 && ca->batch)
        ca->batch_failed = true;
    return r;
}

/* ---- init / intermediate ---- */

static int make_ca(json_t **out, cit_ctx *ctx, const cit_ca_init_options *io, bool intermediate, char **cert_pem) {
    cit_error_clear();
    const char *alg = io->algorithm ? io->algorithm : "ecc-p256";
    int r = check_name(io->name, "CA");
    if (r == 0 && intermediate && !io->parent) {
        r = cit_error_set(CIT_E_USAGE, "an intermediate CA needs its issuer: give it with --parent ROOT");
    }
    if (r == 0 && intermediate)
        r = check_name(io->parent, "CA");
    if (r == 0)
        r = check_algorithm(alg);
    if (r == 0 && (io->days < 0 || io->days > 36500))
        r = cit_error_set(CIT_E_USAGE, "--days must be between 1 and 36500");
    cit_store *s = NULL;
    if (r == 0)
        r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    if (ca_exists(s, io->name)) {
        cit_error_set(CIT_E_CA_EXISTS, "a CA named %s already exists", io->name);
        cit_error_context("ca", "%s", io->name);
        cit_error_step("choose another name; `citadel ca show %s` shows the existing one", io->name);
        return CIT_E_CA_EXISTS;
    }
    char key_path[96], kek_path[96];
    snprintf(key_path, sizeof key_path, "ca/%s/key", io->name);
    snprintf(kek_path, sizeof kek_path, "ca/%s/kek", io->name);
    cit_object tmp = {0};
    const char *taken = cit__object_find(s, key_path, &tmp) == 0 ? key_path : NULL;
    cit__object_clear(&tmp);
    if (!taken && cit__object_find(s, kek_path, &tmp) == 0)
        taken = kek_path;
    cit__object_clear(&tmp);
    cit_error_clear();
    if (taken) {
        cit_error_set(CIT_E_CA_EXISTS, "the object %s already exists", taken);
        cit_error_cause("a CA keeps its key as the store object %s", taken);
        cit_error_step("delete the object, or choose another CA name");
        return CIT_E_CA_EXISTS;
    }
    X509_NAME *subject = NULL;
    char dn[80];
    snprintf(dn, sizeof dn, "CN=%s", io->name);
    if ((r = cit__x509_name_parse(io->subject ? io->subject : dn, &subject)) < 0)
        return r;
    cit_ca *parent = NULL;
    if (intermediate) {
        r = cit_ca_open(&parent, ctx, io->parent);
        if (r == 0)
            r = ca_usable(parent, (int64_t)time(NULL));
        long plen = r == 0 ? X509_get_pathlen(parent->cert) : -1;
        if (r == 0 && plen == 0) {
            r = cit_error_set(CIT_E_CA_UNUSABLE, "CA %s may not sign CA certificates", io->parent);
            cit_error_cause("its basicConstraints pathLenConstraint is 0: it issues end-entity certificates only");
            cit_error_step("create the intermediate under %s's issuer, or make %s again with a larger --pathlen",
                           io->parent, io->parent);
        } else if (r == 0 && plen > 0 && io->pathlen >= plen) {
            r = cit_error_set(CIT_E_USAGE, "--pathlen %d is too large under %s (pathLenConstraint %ld)", io->pathlen,
                              io->parent, plen);
            cit_error_cause("an intermediate's pathLenConstraint is below its issuer's");
        }
        if (r < 0) {
            X509_NAME_free(subject);
            cit_ca_close(parent);
            return r;
        }
    }
    if (ctx->plan) {
        static const char *const ops_tpm[] = {"TPM2_Create (the CA signing key, in the TPM)", "TPM2_Load",
                                              "TPM2_Sign (the certificate's TBS)", NULL};
        static const char *const ops_file[] = {"TPM2_Create (a sealed 32-byte key-encryption key)",
                                               "(the CA key is made in software and stored encrypted)", NULL};
        *out = cit__plan(intermediate ? "create an intermediate CA" : "create a root CA", io->tpm ? ops_tpm : ops_file);
        json_object_set_new(*out, "ca", json_string(io->name));
        json_object_set_new(*out, "algorithm", json_string(alg));
        json_object_set_new(*out, "key", json_string(io->tpm ? "tpm" : "file"));
        X509_NAME_free(subject);
        cit_ca_close(parent);
        return 0;
    }
    cit_ca *self = calloc(1, sizeof *self);
    cit_object_version kv = {.version = 1};
    uint8_t *blob = NULL, *kek = NULL;
    size_t blen = 0;
    X509 *x = NULL;
    char *serial = NULL, *pem = NULL, *subj = NULL;
    bool key_created = false, clamped = false;
    if (!self) {
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        goto done;
    }
    self->ctx = ctx;
    snprintf(self->name, sizeof self->name, "%s", io->name);
    snprintf(self->algorithm, sizeof self->algorithm, "%s", alg);
    self->tpm = io->tpm;
    if (io->tpm) {
        cit_key_create_options ko = {.path = key_path, .algorithm = alg, .usage = "sign"};
        json_t *extra = json_pack("{s:{s:s}}", "ca", "name", io->name), *kout = NULL;
        r = cit__key_create_ex(&kout, ctx, &ko, NULL, NULL, extra);
        json_decref(extra);
        json_decref(kout);
        if (r < 0)
            goto done;
        key_created = true;
        ca_row c = {.key_object = key_path};
        r = open_key(self, &c);
    } else {
        if ((r = cit__sodium_init()) < 0)
            goto done;
        self->pkey = strncmp(alg, "rsa", 3) == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072)
                                                 : EVP_PKEY_Q_keygen(NULL, NULL, "EC",
                                                                     strcmp(alg, "ecc-p384") == 0 ? "P-384" : "P-256");
        if (!self->pkey) {
            r = cit__openssl_error(CIT_E_CRYPTO, "generating the CA key");
            goto done;
        }
        self->pub = self->pkey;
        EVP_PKEY_up_ref(self->pub);
        if (!(kek = sodium_malloc(CIT_KEK_BYTES))) {
            r = cit_error_set(CIT_E_INTERNAL, "cannot allocate locked memory");
            goto done;
        }
        /* a new random KEK, sealed in the TPM (the sealed object is recorded with the CA below) */
        r = cit__kek_seal_new(ctx, kek_path, kek, &kv);
        if (r == 0)
            r = key_encrypt(io->name, self->pkey, kek, &blob, &blen);
    }
    if (r < 0)
        goto done;
    issue_req q = {.pub = self->pub, .subject = subject, .profile = "ca", .days = io->days > 0 ? io->days : intermediate ? 1825 : 3650,
                   .pathlen = intermediate ? (io->pathlen >= 0 ? io->pathlen : 0) : -1};
    if (intermediate)
        r = build_cert(parent, &q, &x, &serial, &clamped);
    else {
        self->subject_self = X509_NAME_dup(subject);
        r = build_cert(self, &q, &x, &serial, &clamped);
    }
    if (r == 0 && !(pem = x509_pem(x)))
        r = cit__openssl_error(CIT_E_CRYPTO, "encoding the certificate");
    if (r < 0)
        goto done;
    subj = name_text(subject);
    if ((r = cit__store_begin(s)) < 0)
        goto done;
    if (!io->tpm) {
        cit_object ko = {0};
        snprintf(ko.path, sizeof ko.path, "%s", kek_path);
        snprintf(ko.kind, sizeof ko.kind, "secret");
        snprintf(ko.status, sizeof ko.status, "active");
        snprintf(ko.algorithm, sizeof ko.algorithm, "ca-kek");
        ko.version = 1;
        json_t *meta = json_pack("{s:b,s:s,s:s,s:i}", "auth", 0, "purpose", "ca-kek", "ca", io->name, "size",
                                 CIT_KEK_BYTES);
        ko.metadata = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(meta);
        r = cit__object_insert(s, &ko);
        if (r == 0)
            r = cit__version_insert(s, ko.id, &kv);
        cit__object_clear(&ko);
    }
    sqlite3_stmt *st = NULL;
    if (r == 0)
        r = cit__store_prepare(s, &st,
                               "INSERT INTO ca (name, parent, algorithm, key_kind, key_object, key_blob, serial, subject, "
                               "not_before, not_after, cert_pem, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (r == 0) {
        sqlite3_bind_text(st, 1, io->name, -1, SQLITE_STATIC);
        if (intermediate)
            sqlite3_bind_text(st, 2, io->parent, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, alg, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, io->tpm ? "tpm" : "file", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, io->tpm ? key_path : kek_path, -1, SQLITE_STATIC);
        if (blob)
            sqlite3_bind_blob(st, 6, blob, (int)blen, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, serial, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, subj ? subj : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, asn1_time_unix(X509_get0_notBefore(x)));
        sqlite3_bind_int64(st, 10, asn1_time_unix(X509_get0_notAfter(x)));
        sqlite3_bind_text(st, 11, pem, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 12, (int64_t)time(NULL));
        if (sqlite3_step(st) != SQLITE_DONE)
            r = cit__store_error(s, "cannot record the CA");
        sqlite3_finalize(st);
    }
    if (r == 0)
        r = record_cert(s, serial, intermediate ? io->parent : io->name, subj, intermediate ? "intermediate-ca" : "root-ca",
                        asn1_time_unix(X509_get0_notBefore(x)), asn1_time_unix(X509_get0_notAfter(x)), pem);
    if (r == 0) {
        json_t *d = json_pack("{s:s,s:s,s:s,s:s?}", "algorithm", alg, "key", io->tpm ? "tpm" : "file", "serial", serial,
                              "parent", intermediate ? io->parent : NULL);
        r = cit__store_event(s, intermediate ? "ca.intermediate" : "ca.init", io->name, 0, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    else
        cit__store_rollback(s);
    if (r < 0)
        goto done;
    *out = cert_json(x, serial, intermediate ? "intermediate-ca" : "root-ca", intermediate ? io->parent : io->name, clamped);
    json_object_set_new(*out, "name", json_string(io->name));
    json_object_set_new(*out, "algorithm", json_string(alg));
    json_object_set_new(*out, "key", json_string(io->tpm ? "tpm" : "file"));
    json_object_set_new(*out, "key_object", json_string(io->tpm ? key_path : kek_path));
    if (!io->tpm)
        json_object_set_new(*out, "key_storage",
                            json_string("software key, PKCS#8 encrypted (XChaCha20-Poly1305) in the store under a "
                                        "key-encryption key sealed in the TPM"));
    if (cert_pem) {
        *cert_pem = pem;
        pem = NULL;
    }
done:
    if (r < 0 && key_created) { /* the TPM key object made for a CA that was not recorded */
        cit_error saved = *cit_error_last();
        cit_object ko = {0};
        if (cit__object_find(s, key_path, &ko) == 0 && cit__store_begin(s) == 0) {
            if (cit__object_delete(s, ko.id) == 0)
                cit__store_commit(s);
            else
                cit__store_rollback(s);
        }
        cit__object_clear(&ko);
        cit_error_restore(&saved);
    }
    if (kek)
        sodium_free(kek);
    cit__version_clear(&kv);
    free(blob);
    X509_free(x);
    free(serial);
    free(pem);
    free(subj);
    X509_NAME_free(subject);
    cit_ca_close(self);
    cit_ca_close(parent);
    return r;
}

_public_ int cit_ca_init(json_t **out, cit_ctx *ctx, const cit_ca_init_options *o, char **cert_pem) {
    return make_ca(out, ctx, o, false, cert_pem);
}

_public_ int cit_ca_intermediate(json_t **out, cit_ctx *ctx, const cit_ca_init_options *o, char **cert_pem) {
    return make_ca(out, ctx, o, true, cert_pem);
}

/* ---- revocation, CRLs, status ---- */

_public_ int cit_ca_revoke(json_t **out, cit_ctx *ctx, const char *serial_hex_in, const char *reason) {
    cit_error_clear();
    char serial[72];
    int r = normalize_serial(serial_hex_in, serial, sizeof serial);
    if (r < 0)
        return r;
    const char *rname = reason ? reason : "unspecified";
    bool known = false;
    for (size_t i = 0; i < ELEMENTSOF(reasons); i++)
        if (strcmp(reasons[i].name, rname) == 0)
            known = true;
    if (!known) {
        cit_error_set(CIT_E_USAGE, "unknown revocation reason: %s", rname);
        cit_error_cause("reasons (RFC 5280): unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, "
                        "cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise");
        return CIT_E_USAGE;
    }
    cit_store *s;
    if ((r = cit__ctx_store(ctx, &s)) < 0)
        return r;
    char ca[CA_NAME_MAX + 1] = "";
    const char *st = cert_db_status(s, serial, ca, sizeof ca, NULL);
    if (!st) {
        cit_error_set(CIT_E_CA_SERIAL_UNKNOWN, "no certificate with serial %s was issued by this store's CAs", serial);
        cit_error_context("serial", "%s", serial);
        return CIT_E_CA_SERIAL_UNKNOWN;
    }
    if (strcmp(st, "revoked") == 0) {
        cit_error_set(CIT_E_CA_ALREADY_REVOKED, "the certificate %s (CA %s) is already revoked", serial, ca);
        cit_error_context("serial", "%s", serial);
        return CIT_E_CA_ALREADY_REVOKED;
    }
    if (ctx->plan) {
        *out = cit__plan("revoke a certificate (store only; it appears on the CA's next CRL)", NULL);
        json_object_set_new(*out, "serial", json_string(serial));
        return 0;
    }
    int64_t now = (int64_t)time(NULL);
    sqlite3_stmt *q = NULL;
    if ((r = cit__store_begin(s)) < 0)
        return r;
    r = cit__store_prepare(s, &q, "UPDATE ca_certs SET status = 'revoked', revoked_at = ?, reason = ? WHERE serial = ? "
                                  "AND status = 'valid'");
    if (r == 0) {
        sqlite3_bind_int64(q, 1, now);
        sqlite3_bind_text(q, 2, rname, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, serial, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            r = cit__store_error(s, "cannot record the revocation");
        sqlite3_finalize(q);
    }
    if (r == 0) {
        json_t *d = json_pack("{s:s,s:s}", "serial", serial, "reason", rname);
        r = cit__store_event(s, "ca.revoke", ca, 0, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    else
        cit__store_rollback(s);
    if (r < 0)
        return r;
    *out = json_pack("{s:s,s:s,s:s,s:s}", "serial", serial, "ca", ca, "status", "revoked", "reason", rname);
    time_json(*out, "revoked_at", now);
    json_object_set_new(*out, "next_step", json_sprintf("publish a new CRL: `citadel ca crl --ca %s`", ca));
    return 0;
}

_public_ int cit_ca_cert_status(cit_ctx *ctx, const char *serial_hex_in, const char **status) {
    cit_error_clear();
    char serial[72];
    cit_store *s;
    int r = normalize_serial(serial_hex_in, serial, sizeof serial);
    if (r == 0)
        r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    int64_t na = 0;
    const char *st = cert_db_status(s, serial, NULL, 0, &na);
    if (!st)
        *status = "unknown";
    else if (strcmp(st, "revoked") == 0)
        *status = "revoked";
    else
        *status = (int64_t)time(NULL) >= na ? "expired" : "valid";
    return 0;
}

static int reason_code(const char *name) {
    for (size_t i = 0; name && i < ELEMENTSOF(reasons); i++)
        if (strcmp(reasons[i].name, name) == 0)
            return reasons[i].code;
    return CRL_REASON_UNSPECIFIED;
}

static char *crl_pem_text(X509_CRL *c) {
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *res = NULL;
    if (b && PEM_write_bio_X509_CRL(b, c)) {
        long l = BIO_get_mem_data(b, &p);
        res = strndup(p, (size_t)l);
    }
    BIO_free(b);
    return res;
}

/* Adds the revoked certificates of ca to c; *n their count. */
static int crl_add_revoked(cit_store *s, const char *ca, X509_CRL *c, int *n) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "SELECT serial, revoked_at, reason FROM ca_certs WHERE ca = ? AND status = "
                                       "'revoked' ORDER BY revoked_at, serial");
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, ca, -1, SQLITE_STATIC);
    *n = 0;
    while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
        BIGNUM *bn = NULL;
        X509_REVOKED *rv = X509_REVOKED_new();
        ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)sqlite3_column_int64(st, 1));
        ASN1_INTEGER *ai = NULL;
        ASN1_ENUMERATED *e = NULL;
        int code = reason_code((const char *)sqlite3_column_text(st, 2));
        bool ok = rv && t && BN_hex2bn(&bn, (const char *)sqlite3_column_text(st, 0)) > 0 &&
                  (ai = BN_to_ASN1_INTEGER(bn, NULL)) && X509_REVOKED_set_serialNumber(rv, ai) &&
                  X509_REVOKED_set_revocationDate(rv, t);
        /* RFC 5280 5.3.1: the reasonCode extension is absent for "unspecified" */
        if (ok && code != CRL_REASON_UNSPECIFIED)
            ok = (e = ASN1_ENUMERATED_new()) && ASN1_ENUMERATED_set(e, code) &&
                 X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, e, 0, 0);
        if (ok && X509_CRL_add0_revoked(c, rv)) {
            rv = NULL;
            (*n)++;
        } else
            r = cit__openssl_error(CIT_E_CRYPTO, "adding a revoked certificate to the CRL");
        X509_REVOKED_free(rv);
        ASN1_TIME_free(t);
        ASN1_INTEGER_free(ai);
        ASN1_ENUMERATED_free(e);
        BN_free(bn);
    }
    sqlite3_finalize(st);
    return r;
}

_public_ int cit_ca_crl_days(json_t **out, cit_ca *ca, int days, char **crl_pem) {
    cit_error_clear();
    if (days < 0 || days > 3650) {
        cit_error_set(CIT_E_USAGE, "--days must be between 1 and 3650");
        return CIT_E_USAGE;
    }
    if (days == 0)
        days = 7;
    cit_store *s = ca->ctx->store;
    if (ca->plan) {
        static const char *const ops_tpm[] = {"TPM2_Load (the CA key)", "TPM2_Sign (the CRL's TBS)", NULL};
        static const char *const ops_file[] = {"TPM2_Load + TPM2_Unseal (the CA's key-encryption key)", NULL};
        *out = cit__plan("make a signed CRL of the CA", ca->tpm ? ops_tpm : ops_file);
        json_object_set_new(*out, "ca", json_string(ca->name));
        return 0;
    }
    int64_t now = (int64_t)time(NULL);
    X509_CRL *c = X509_CRL_new();
    ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)now), *next = ASN1_TIME_set(NULL, (time_t)(now + (int64_t)days * DAY));
    ASN1_INTEGER *num = NULL;
    char *pem = NULL;
    int n = 0;
    int64_t number = 0;
    sqlite3_stmt *st = NULL;
    /* the CRL number is taken in the transaction that records the CRL: numbers only go up. A
     * TPM key signs inside it, so the TPM is taken first (the store's lock order, ARCHITECTURE.md) */
    cit_tpm *t = NULL;
    int r = ca->tpm ? cit__ctx_tpm(ca->ctx, &t) : 0;
    if (r == 0)
        r = cit__store_begin(s);
    if (r < 0)
        goto done;
    r = cit__store_prepare(s, &st, "SELECT crl_number FROM ca WHERE name = ?");
    if (r == 0) {
        sqlite3_bind_text(st, 1, ca->name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            number = sqlite3_column_int64(st, 0) + 1;
        else
            r = cit_error_set(CIT_E_CA_NOT_FOUND, "no CA named %s", ca->name);
        sqlite3_finalize(st);
    }
    if (r == 0 && (!c || !last || !next || !X509_CRL_set_version(c, 1) ||
                   !X509_CRL_set_issuer_name(c, X509_get_subject_name(ca->cert)) || !X509_CRL_set1_lastUpdate(c, last) ||
                   !X509_CRL_set1_nextUpdate(c, next) || !(num = ASN1_INTEGER_new()) || !ASN1_INTEGER_set_int64(num, number) ||
                   !X509_CRL_add1_ext_i2d(c, NID_crl_number, num, 0, 0)))
        r = cit__openssl_error(CIT_E_CRYPTO, "building the CRL");
    if (r == 0) {
        X509V3_CTX v3;
        X509V3_set_ctx(&v3, ca->cert, NULL, NULL, c, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
        if (!e || !X509_CRL_add_ext(c, e, -1))
            r = cit__openssl_error(CIT_E_CRYPTO, "the CRL's authority key identifier");
        X509_EXTENSION_free(e);
    }
    if (r == 0)
        r = crl_add_revoked(s, ca->name, c, &n);
    if (r == 0 && !X509_CRL_sort(c))
        r = cit__openssl_error(CIT_E_CRYPTO, "sorting the CRL");
    if (r == 0)
        r = sign_crl(ca, &c);
    if (r == 0 && !(pem = crl_pem_text(c)))
        r = cit__openssl_error(CIT_E_CRYPTO, "encoding the CRL");
    if (r == 0)
        r = cit__store_prepare(s, &st, "UPDATE ca SET crl_number = ?, crl_pem = ? WHERE name = ?");
    if (r == 0) {
        sqlite3_bind_int64(st, 1, number);
        sqlite3_bind_text(st, 2, pem, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, ca->name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = cit__store_error(s, "cannot record the CRL");
        sqlite3_finalize(st);
    }
    if (r == 0) {
        json_t *d = json_pack("{s:I,s:i}", "crl_number", (json_int_t)number, "revoked", n);
        r = cit__store_event(s, "ca.crl", ca->name, 0, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    else
        cit__store_rollback(s);
    if (r == 0) {
        *out = json_pack("{s:s,s:I,s:i}", "ca", ca->name, "crl_number", (json_int_t)number, "revoked", n);
        time_json(*out, "this_update", now);
        time_json(*out, "next_update", now + (int64_t)days * DAY);
        *crl_pem = pem;
        pem = NULL;
    }
done:
    X509_CRL_free(c);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    ASN1_INTEGER_free(num);
    free(pem);
    return r;
}

_public_ int cit_ca_crl(json_t **out, cit_ca *ca, char **crl_pem) { return cit_ca_crl_days(out, ca, 0, crl_pem); }

/* ---- list / show ---- */

static json_t *ca_summary(sqlite3_stmt *st) {
    json_t *o = json_pack("{s:s,s:s?,s:s,s:s,s:s,s:s,s:s}", "name", (const char *)sqlite3_column_text(st, 0), "parent",
                          (const char *)sqlite3_column_text(st, 1), "algorithm", (const char *)sqlite3_column_text(st, 2),
                          "key", (const char *)sqlite3_column_text(st, 3), "key_object",
                          (const char *)sqlite3_column_text(st, 4), "subject", (const char *)sqlite3_column_text(st, 5),
                          "serial", (const char *)sqlite3_column_text(st, 6));
    time_json(o, "not_after", sqlite3_column_int64(st, 7));
    json_object_set_new(o, "issued", json_integer(sqlite3_column_int64(st, 8)));
    json_object_set_new(o, "revoked", json_integer(sqlite3_column_int64(st, 9)));
    json_object_set_new(o, "crl_number", json_integer(sqlite3_column_int64(st, 10)));
    return o;
}

#define CA_SUMMARY_SQL                                                                                                \
    "SELECT name, parent, algorithm, key_kind, key_object, subject, serial, not_after, "                              \
    "(SELECT count(*) FROM ca_certs c WHERE c.ca = ca.name AND c.serial != ca.serial), "                              \
    "(SELECT count(*) FROM ca_certs c WHERE c.ca = ca.name AND c.status = 'revoked'), crl_number, cert_pem FROM ca "

_public_ int cit_ca_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "list the CAs (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    sqlite3_stmt *st = NULL;
    if ((r = cit__store_prepare(s, &st, CA_SUMMARY_SQL "ORDER BY name")) < 0)
        return r;
    json_t *a = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *o = ca_summary(st);
        json_object_del(o, "key_object");
        json_object_del(o, "serial");
        json_object_del(o, "crl_number");
        json_array_append_new(a, o);
    }
    sqlite3_finalize(st);
    *out = json_pack("{s:o,s:I}", "cas", a, "count", (json_int_t)json_array_size(a));
    return 0;
}

_public_ int cit_ca_show(json_t **out, cit_ctx *ctx, const char *name) {
    cit_error_clear();
    cit_store *s;
    int r = check_name(name, "CA");
    if (r == 0)
        r = cit__ctx_store_or_plan(ctx, &s, out, "show a CA (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    sqlite3_stmt *st = NULL;
    if ((r = cit__store_prepare(s, &st, CA_SUMMARY_SQL "WHERE name = ?")) < 0)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        cit_error_set(CIT_E_CA_NOT_FOUND, "no CA named %s", name);
        cit_error_context("ca", "%s", name);
        return CIT_E_CA_NOT_FOUND;
    }
    json_t *o = ca_summary(st);
    json_object_set_new(o, "certificate_pem", json_string((const char *)sqlite3_column_text(st, 11)));
    sqlite3_finalize(st);
    json_t *certs = json_array();
    r = cit__store_prepare(s, &st, "SELECT serial, subject, profile, not_after, status, revoked_at, reason FROM ca_certs "
                                   "WHERE ca = ? ORDER BY created_at, rowid");
    if (r == 0) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int64_t now = (int64_t)time(NULL);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *status = (const char *)sqlite3_column_text(st, 4);
            if (strcmp(status, "valid") == 0 && now >= sqlite3_column_int64(st, 3))
                status = "expired";
            json_t *c = json_pack("{s:s,s:s,s:s,s:s}", "serial", (const char *)sqlite3_column_text(st, 0), "subject",
                                  (const char *)sqlite3_column_text(st, 1), "profile",
                                  (const char *)sqlite3_column_text(st, 2), "status", status);
            time_json(c, "not_after", sqlite3_column_int64(st, 3));
            if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
                time_json(c, "revoked_at", sqlite3_column_int64(st, 5));
                json_object_set_new(c, "reason", json_string((const char *)sqlite3_column_text(st, 6)));
            }
            json_array_append_new(certs, c);
        }
        sqlite3_finalize(st);
    }
    json_object_set_new(o, "certificates", certs);
    if (r < 0) {
        json_decref(o);
        return r;
    }
    *out = o;
    return 0;
}

/* ---- trust stores ---- */

static int check_store(const char *store) {
    if (store && (strcmp(store, "manufacturers") == 0 || strcmp(store, "peers") == 0))
        return 0;
    cit_error_set(CIT_E_USAGE, "unknown trust store: %s", store ? store : "(none)");
    cit_error_cause("trust stores: manufacturers (TPM vendors' EK roots), peers (other CAs)");
    if (!store)
        cit_error_step("give one with --store manufacturers|peers");
    return CIT_E_USAGE;
}

_public_ int cit_ca_trust_add(json_t **out, cit_ctx *ctx, const char *store, const char *name, const char *file) {
    cit_error_clear();
    int r = check_store(store);
    if (r == 0)
        r = check_name(name, "trust entry");
    if (r == 0 && !file)
        r = cit_error_set(CIT_E_USAGE, "give the certificate file (PEM or DER)");
    if (r < 0)
        return r;
    uint8_t *buf = NULL;
    size_t len = 0;
    if ((r = cit__read_input(file, CERT_MAX, "the certificate", false, &buf, &len)) < 0)
        return r;
    X509 *x = x509_from(buf, len);
    int count = 0;
    if (x) { /* one certificate per entry: count the PEM blocks */
        BIO *b = BIO_new_mem_buf(buf, (int)len);
        X509 *y;
        while (b && (y = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
            X509_free(y);
            count++;
        }
        BIO_free(b);
        ERR_clear_error();
    }
    free(buf);
    if (x && count > 1) {
        X509_free(x);
        cit_error_set(CIT_E_CA_TRUST_INVALID, "%s holds %d certificates: a trust entry is one", file, count);
        cit_error_step("add each CA certificate under its own name");
        return CIT_E_CA_TRUST_INVALID;
    }
    if (!x) {
        cit_error_set(CIT_E_CA_TRUST_INVALID, "%s is not an X.509 certificate (PEM or DER)", file);
        cit_error_context("file", "%s", file);
        return CIT_E_CA_TRUST_INVALID;
    }
    char *subject = NULL, *pem = NULL, *fp = NULL;
    cit_store *s = NULL;
    if (X509_check_ca(x) < 1) {
        r = cit_error_set(CIT_E_CA_TRUST_INVALID, "%s is not a CA certificate", file);
        cit_error_cause("a trust store holds issuers: the certificate needs basicConstraints CA:TRUE (and keyCertSign)");
        cit_error_context("file", "%s", file);
        goto done;
    }
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdl = 0;
    subject = name_text(X509_get_subject_name(x));
    pem = x509_pem(x);
    if (!subject || !pem || !X509_digest(x, EVP_sha256(), md, &mdl) || !(fp = cit_hex_encode(md, mdl))) {
        r = cit__openssl_error(CIT_E_CRYPTO, "reading the certificate");
        goto done;
    }
    if ((r = cit__ctx_store_or_plan(ctx, &s, out, "add a certificate to a trust store (store only)", NULL)) != 0) {
        r = r < 0 ? r : 0;
        goto done;
    }
    sqlite3_stmt *st = NULL;
    if ((r = cit__store_prepare(s, &st, "SELECT name FROM ca_trust WHERE store = ? AND (name = ? OR fingerprint = ?)")) < 0)
        goto done;
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, fp, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        r = cit_error_set(CIT_E_CA_EXISTS, "the trust store %s already has %s", store,
                          strcmp((const char *)sqlite3_column_text(st, 0), name) == 0 ? "an entry of this name"
                                                                                       : "this certificate");
        cit_error_context("entry", "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    if (r < 0)
        goto done;
    int64_t na = asn1_time_unix(X509_get0_notAfter(x));
    if ((r = cit__store_begin(s)) < 0)
        goto done;
    r = cit__store_prepare(s, &st, "INSERT INTO ca_trust (store, name, subject, fingerprint, not_after, pem, created_at) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (r == 0) {
        sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, fp, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, na);
        sqlite3_bind_text(st, 6, pem, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, (int64_t)time(NULL));
        if (sqlite3_step(st) != SQLITE_DONE)
            r = cit__store_error(s, "cannot record the trust entry");
        sqlite3_finalize(st);
    }
    if (r == 0) {
        json_t *d = json_pack("{s:s,s:s,s:s}", "store", store, "name", name, "fingerprint_sha256", fp);
        r = cit__store_event(s, "ca.trust.add", name, 0, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    else
        cit__store_rollback(s);
    if (r == 0) {
        *out = json_pack("{s:s,s:s,s:s,s:s}", "store", store, "name", name, "subject", subject, "fingerprint_sha256", fp);
        time_json(*out, "not_after", na);
        if (na <= (int64_t)time(NULL))
            json_object_set_new(*out, "warning", json_string("the certificate has expired"));
    }
done:
    X509_free(x);
    free(subject);
    free(pem);
    free(fp);
    return r;
}

_public_ int cit_ca_trust_list(json_t **out, cit_ctx *ctx, const char *store) {
    cit_error_clear();
    cit_store *s;
    int r = store ? check_store(store) : 0;
    if (r == 0)
        r = cit__ctx_store_or_plan(ctx, &s, out, "list trust stores (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    sqlite3_stmt *st = NULL;
    if ((r = cit__store_prepare(s, &st, "SELECT store, name, subject, fingerprint, not_after FROM ca_trust WHERE ?1 IS "
                                        "NULL OR store = ?1 ORDER BY store, name")) < 0)
        return r;
    if (store)
        sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    json_t *a = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "store", (const char *)sqlite3_column_text(st, 0), "name",
                              (const char *)sqlite3_column_text(st, 1), "subject", (const char *)sqlite3_column_text(st, 2),
                              "fingerprint_sha256", (const char *)sqlite3_column_text(st, 3));
        time_json(o, "not_after", sqlite3_column_int64(st, 4));
        json_array_append_new(a, o);
    }
    sqlite3_finalize(st);
    *out = json_pack("{s:o,s:I}", "trust", a, "count", (json_int_t)json_array_size(a));
    return 0;
}

_public_ int cit_ca_trust_remove(json_t **out, cit_ctx *ctx, const char *store, const char *name) {
    cit_error_clear();
    cit_store *s;
    int r = check_store(store);
    if (r == 0)
        r = check_name(name, "trust entry");
    if (r == 0)
        r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    sqlite3_stmt *st = NULL;
    if ((r = cit__store_prepare(s, &st, "SELECT fingerprint FROM ca_trust WHERE store = ? AND name = ?")) < 0)
        return r;
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    char *fp = sqlite3_step(st) == SQLITE_ROW ? col_text(st, 0) : NULL;
    sqlite3_finalize(st);
    if (!fp) {
        cit_error_set(CIT_E_CA_NOT_FOUND, "the trust store %s has no entry %s", store, name);
        cit_error_step("run `citadel ca trust list --store %s`", store);
        return CIT_E_CA_NOT_FOUND;
    }
    if (ctx->plan) {
        free(fp);
        *out = cit__plan("remove a certificate from a trust store (store only)", NULL);
        return 0;
    }
    if ((r = cit__store_begin(s)) == 0 && (r = cit__store_prepare(s, &st, "DELETE FROM ca_trust WHERE store = ? AND name = ?")) == 0) {
        sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = cit__store_error(s, "cannot remove the trust entry");
        sqlite3_finalize(st);
    }
    if (r == 0) {
        json_t *d = json_pack("{s:s,s:s,s:s}", "store", store, "name", name, "fingerprint_sha256", fp);
        r = cit__store_event(s, "ca.trust.remove", name, 0, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    else if (s)
        cit__store_rollback(s);
    if (r == 0)
        *out = json_pack("{s:s,s:s,s:s,s:b}", "store", store, "name", name, "fingerprint_sha256", fp, "removed", 1);
    free(fp);
    return r;
}

_public_ int cit_ca_trust_bundle(cit_ctx *ctx, const char *store, char **pem) {
    cit_error_clear();
    cit_store *s;
    int r = check_store(store);
    if (r == 0)
        r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    sqlite3_stmt *st = NULL;
    if ((r = cit__store_prepare(s, &st, "SELECT pem FROM ca_trust WHERE store = ? ORDER BY name")) < 0)
        return r;
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    size_t len = 0, cap = 1;
    char *buf = calloc(1, 1);
    while (buf && sqlite3_step(st) == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(st, 0);
        size_t l = strlen(p);
        if (len + l + 1 > cap) {
            cap = (len + l + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        memcpy(buf + len, p, l + 1);
        len += l;
    }
    sqlite3_finalize(st);
    if (!buf)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    *pem = buf;
    return 0;
}

/* ---- for other modules ---- */

bool cit__is_ca_key(const cit_object *o) {
    if (strcmp(o->kind, "key") != 0 || !o->metadata)
        return false;
    json_t *meta = json_loads(o->metadata, 0, NULL);
    bool b = json_object_get(meta, "ca") != NULL;
    json_decref(meta);
    return b;
}

int cit__ca_guard(cit_ctx *ctx, const cit_object *o, const char *what) {
    if (!ctx->store || strncmp(o->path, "ca/", 3) != 0)
        return 0;
    sqlite3_stmt *st = NULL;
    if (cit__store_prepare(ctx->store, &st, "SELECT name FROM ca WHERE key_object = ?") < 0)
        return 0; /* a store without the ca table (older schema) has no CA */
    sqlite3_bind_text(st, 1, o->path, -1, SQLITE_STATIC);
    int r = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        r = cit_error_set(CIT_E_HAS_DEPENDENTS, "%s is the key of CA %s: %s would strand the CA", o->path,
                          (const char *)sqlite3_column_text(st, 0), what);
        cit_error_cause("the CA's certificate names this key; certificates and CRLs are signed with it");
        cit_error_step("a CA is replaced by a new one (`citadel ca init NEW`), not by changing its key");
        cit_error_context("path", "%s", o->path);
    }
    sqlite3_finalize(st);
    return r;
}

/* An imported certificate row (ca_backup.c): exactly one PEM certificate, in the form this file
 * writes (so nothing rides along after it), a CA certificate when must_be_ca, and every field the
 * row states about it (NULL: not stated) must be the certificate's: its SHA-256 fingerprint
 * (hex), subject, serial, validity, and the subject of its issuer. NULL when all hold, else a
 * static reason. */
const char *cit__ca_import_cert_problem(const char *pem, bool must_be_ca, const cit_ca_row_claims *c) {
    X509 *x = pem ? x509_from((const uint8_t *)pem, strlen(pem)) : NULL;
    const char *why = NULL;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdl = 0;
    char *canon = x ? x509_pem(x) : NULL, *fp = NULL, *subject = NULL, *issuer = NULL, *serial = NULL;
    if (!x)
        why = "the certificate is not a PEM X.509 certificate";
    else if (!canon || strcmp(canon, pem) != 0)
        why = "the certificate is not exactly one PEM certificate";
    else if (must_be_ca && X509_check_ca(x) < 1)
        why = "the certificate is not a CA certificate";
    else if (c->fingerprint && (!X509_digest(x, EVP_sha256(), md, &mdl) || !(fp = cit_hex_encode(md, mdl)) ||
                                strcmp(fp, c->fingerprint) != 0))
        why = "the fingerprint is not the certificate's";
    else if (c->subject && (!(subject = name_text(X509_get_subject_name(x))) || strcmp(subject, c->subject) != 0))
        why = "the subject is not the certificate's";
    else if (c->issuer && (!(issuer = name_text(X509_get_issuer_name(x))) || strcmp(issuer, c->issuer) != 0))
        why = "the certificate was not issued by its CA";
    else if (c->serial && (!(serial = serial_hex(X509_get0_serialNumber(x))) || strcmp(serial, c->serial) != 0))
        why = "the serial is not the certificate's";
    else if ((c->has_not_before && asn1_time_unix(X509_get0_notBefore(x)) != c->not_before) ||
             (c->has_not_after && asn1_time_unix(X509_get0_notAfter(x)) != c->not_after))
        why = "the validity is not the certificate's";
    free(canon);
    free(fp);
    free(subject);
    free(issuer);
    free(serial);
    X509_free(x);
    ERR_clear_error();
    return why;
}
