/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Software cryptography on public keys with the OpenSSL 3 provider APIs only (no RSA_* or
 * EC_KEY_*). Nothing here is secret: keys are public and signatures are public, so buffers are
 * freed but not wiped.
 */
#include "crypto.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/error.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ECDSA_SIG *, ECDSA_SIG_free)

/* Largest ECC coordinate we handle (P-521: 66 bytes). */
#define COORD_MAX 66
/* Longest line of OpenSSL error text kept in the "openssl" context. */
#define OPENSSL_ERR_LINE 256

static const struct curve {
    TPM2_ECC_CURVE tpm;
    int nid;
    const char *ossl; /* OpenSSL group name */
    const char *nist; /* JWK "crv" (RFC 7518) */
    const char *ssh;  /* RFC 5656 identifier */
    size_t bytes;     /* field element size */
} curves[] = {
    {TPM2_ECC_NIST_P256, NID_X9_62_prime256v1, "prime256v1", "P-256", "nistp256", 32},
    {TPM2_ECC_NIST_P384, NID_secp384r1, "secp384r1", "P-384", "nistp384", 48},
    {TPM2_ECC_NIST_P521, NID_secp521r1, "secp521r1", "P-521", "nistp521", 66},
};

static const struct hash {
    TPMI_ALG_HASH alg;
    const char *name;
    const char *fetch_name; /* OpenSSL 3 provider name */
    size_t size;
} hashes[] = {
    {TPM2_ALG_SHA1, "sha1", "SHA1", 20},
    {TPM2_ALG_SHA256, "sha256", "SHA2-256", 32},
    {TPM2_ALG_SHA384, "sha384", "SHA2-384", 48},
    {TPM2_ALG_SHA512, "sha512", "SHA2-512", 64},
};

static int oom(void) { return cit_error_set(CIT_E_INTERNAL, "out of memory"); }

int cit__openssl_error(int code, const char *what) {
    char text[sizeof(((cit_error *)0)->context_val[0])] = "";
    size_t used = 0;
    unsigned long e;

    cit_error_set(code, "%s", what);
    /* Drain the whole queue so later failures do not report stale errors; keep what fits. */
    while ((e = ERR_get_error()) != 0) {
        char line[OPENSSL_ERR_LINE];
        ERR_error_string_n(e, line, sizeof(line));
        if (used < sizeof(text) - 1) {
            int n = snprintf(text + used, sizeof(text) - used, "%s%s", used ? "; " : "", line);
            if (n > 0)
                used += (size_t)n;
        }
    }
    if (text[0])
        cit_error_context("openssl", "%s", text);
    return code;
}

/* ---- key introspection -------------------------------------------------------------------- */

static const struct curve *curve_by_tpm(TPM2_ECC_CURVE id) {
    for (size_t i = 0; i < ELEMENTSOF(curves); i++)
        if (curves[i].tpm == id)
            return &curves[i];
    return NULL;
}

/* The curve of an EC key, NULL when the key is not EC or the curve is not one we support. */
static const struct curve *curve_of(EVP_PKEY *pk) {
    char name[80];
    size_t len = 0;
    int nid;

    if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC)
        return NULL;
    if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &len)) {
        ERR_clear_error();
        return NULL;
    }
    nid = OBJ_sn2nid(name);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(name);
    for (size_t i = 0; i < ELEMENTSOF(curves); i++)
        if (curves[i].nid == nid)
            return &curves[i];
    return NULL;
}

/* Big-endian unsigned bytes of a BIGNUM parameter, minimal length (at least one byte). */
static int get_bn_bytes(EVP_PKEY *pk, const char *param, uint8_t **out, size_t *out_len) {
    _cleanup_(BN_freep) BIGNUM *bn = NULL;
    uint8_t *b;
    int n;

    if (!EVP_PKEY_get_bn_param(pk, param, &bn))
        return cit__openssl_error(CIT_E_CRYPTO, "cannot read the public key");
    n = BN_num_bytes(bn);
    if (n <= 0)
        n = 1;
    b = malloc((size_t)n);
    if (!b)
        return oom();
    if (BN_bn2binpad(bn, b, n) != n) {
        free(b);
        return cit__openssl_error(CIT_E_CRYPTO, "cannot encode a public key number");
    }
    *out = b;
    *out_len = (size_t)n;
    return 0;
}

/* Affine x and y of an EC key on a supported curve, each left-padded to c->bytes. */
static int get_ec_xy(EVP_PKEY *pk, const struct curve *c, uint8_t x[COORD_MAX],
                     uint8_t y[COORD_MAX]) {
    _cleanup_(BN_freep) BIGNUM *bx = NULL;
    _cleanup_(BN_freep) BIGNUM *by = NULL;

    if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &bx) ||
        !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &by))
        return cit__openssl_error(CIT_E_CRYPTO, "cannot read the EC public point");
    if (BN_bn2binpad(bx, x, (int)c->bytes) < 0 || BN_bn2binpad(by, y, (int)c->bytes) < 0)
        return cit__openssl_error(CIT_E_CRYPTO, "EC coordinate larger than the curve");
    return 0;
}

/* ---- TPM2B_PUBLIC ------------------------------------------------------------------------- */

static int pkey_from_params(EVP_PKEY **out, const char *type, OSSL_PARAM_BLD *bld) {
    _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;

    params = OSSL_PARAM_BLD_to_param(bld);
    if (!params)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot build key parameters");
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot set up key import");
    if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0 || !pk)
        return cit__openssl_error(CIT_E_INPUT_INVALID, "the TPM public key is not a valid key");
    *out = pk;
    return 0;
}

static int rsa_from_tpm(EVP_PKEY **out, const TPMT_PUBLIC *p) {
    _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
    _cleanup_(BN_freep) BIGNUM *n = NULL;
    _cleanup_(BN_freep) BIGNUM *e = NULL;
    uint32_t exponent = p->parameters.rsaDetail.exponent ? p->parameters.rsaDetail.exponent : 65537;

    if (p->unique.rsa.size == 0 || p->unique.rsa.size > sizeof(p->unique.rsa.buffer)) {
        cit_error_set(CIT_E_INPUT_INVALID, "the TPM RSA modulus has an invalid size");
        cit_error_context("size", "%u", (unsigned)p->unique.rsa.size);
        return CIT_E_INPUT_INVALID;
    }
    n = BN_bin2bn(p->unique.rsa.buffer, p->unique.rsa.size, NULL);
    e = BN_new();
    bld = OSSL_PARAM_BLD_new();
    if (!n || !e || !bld || !BN_set_word(e, exponent))
        return cit__openssl_error(CIT_E_CRYPTO, "cannot build the RSA key");
    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        return cit__openssl_error(CIT_E_CRYPTO, "cannot build the RSA key");
    return pkey_from_params(out, "RSA", bld);
}

static int ecc_from_tpm(EVP_PKEY **out, const TPMT_PUBLIC *p) {
    _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
    const struct curve *c = curve_by_tpm(p->parameters.eccDetail.curveID);
    const TPM2B_ECC_PARAMETER *x = &p->unique.ecc.x, *y = &p->unique.ecc.y;
    uint8_t point[1 + 2 * COORD_MAX];

    if (!c) {
        cit_error_set(CIT_E_ALG_UNSUPPORTED, "unsupported ECC curve");
        cit_error_context("curve", "0x%04x", (unsigned)p->parameters.eccDetail.curveID);
        return CIT_E_ALG_UNSUPPORTED;
    }
    if (x->size > c->bytes || y->size > c->bytes) {
        cit_error_set(CIT_E_INPUT_INVALID, "the TPM ECC point is larger than the curve");
        cit_error_context("curve", "%s", c->nist);
        return CIT_E_INPUT_INVALID;
    }
    /* Uncompressed SEC1 point; the TPM may strip leading zero bytes, so pad them back. */
    memset(point, 0, sizeof(point));
    point[0] = 0x04;
    memcpy(point + 1 + (c->bytes - x->size), x->buffer, x->size);
    memcpy(point + 1 + c->bytes + (c->bytes - y->size), y->buffer, y->size);

    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->ossl, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * c->bytes))
        return cit__openssl_error(CIT_E_CRYPTO, "cannot build the ECC key");
    return pkey_from_params(out, "EC", bld);
}

int cit__pubkey_from_tpm(EVP_PKEY **out, const TPM2B_PUBLIC *pub) {
    if (!pub)
        return cit_error_set(CIT_E_INTERNAL, "no public area");
    switch (pub->publicArea.type) {
    case TPM2_ALG_RSA:
        return rsa_from_tpm(out, &pub->publicArea);
    case TPM2_ALG_ECC:
        return ecc_from_tpm(out, &pub->publicArea);
    default:
        cit_error_set(CIT_E_ALG_UNSUPPORTED, "unsupported public key type");
        cit_error_context("type", "0x%04x", (unsigned)pub->publicArea.type);
        return CIT_E_ALG_UNSUPPORTED;
    }
}

/* ---- PEM / DER ---------------------------------------------------------------------------- */

static size_t spki_ec_point_len(const uint8_t *der, size_t len, const char **group);
static int spki_der_pem(char **out, const uint8_t *der, size_t n);

int cit__pubkey_pem(char **out, EVP_PKEY *pk) {
    _cleanup_(BIO_freep) BIO *bio = NULL;
    char *data = NULL, *s;
    long n;

    if (!pk)
        return cit_error_set(CIT_E_INTERNAL, "no key");
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
        /* P-256/P-384 without OpenSSL's encoder set-up (cit__pubkey_der) */
        uint8_t *der = NULL;
        size_t dl = 0;
        const char *g = NULL;
        int r = cit__pubkey_der(&der, &dl, pk);
        if (r < 0)
            return r;
        r = spki_ec_point_len(der, dl, &g) ? spki_der_pem(out, der, dl) : 1;
        free(der);
        if (r <= 0)
            return r;
    }
    bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_PUBKEY(bio, pk))
        return cit__openssl_error(CIT_E_CRYPTO, "cannot encode the public key as PEM");
    n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || !data)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot encode the public key as PEM");
    s = malloc((size_t)n + 1);
    if (!s)
        return oom();
    memcpy(s, data, (size_t)n);
    s[n] = 0;
    *out = s;
    return 0;
}

/* SubjectPublicKeyInfo DER prefixes (RFC 5480) of uncompressed P-256 and P-384 points: the
 * AlgorithmIdentifier (id-ecPublicKey, the curve) and the BIT STRING header. */
static const uint8_t spki_p256[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
                                    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
                                    0x42, 0x00};
static const uint8_t spki_p384[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
                                    0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00};

static int spki_der_pem(char **out, const uint8_t *der, size_t n);

int cit__tpm_public_pem(char **out, const TPM2B_PUBLIC *pub) {
    const TPMT_PUBLIC *p = pub ? &pub->publicArea : NULL;
    size_t cs = 0;
    const uint8_t *prefix = NULL;
    size_t pl = 0;
    if (p && p->type == TPM2_ALG_ECC && p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256)
        cs = 32, prefix = spki_p256, pl = sizeof spki_p256;
    else if (p && p->type == TPM2_ALG_ECC && p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P384)
        cs = 48, prefix = spki_p384, pl = sizeof spki_p384;
    if (!cs || p->unique.ecc.x.size > cs || p->unique.ecc.y.size > cs || !p->unique.ecc.x.size ||
        !p->unique.ecc.y.size) {
        /* RSA, other curves, odd sizes: through OpenSSL (which also checks the point) */
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pk = NULL;
        int r = cit__pubkey_from_tpm(&pk, pub);
        return r < 0 ? r : cit__pubkey_pem(out, pk);
    }
    /* The encoding is fixed: writing it saves OpenSSL's encoder set-up (milliseconds on first
     * use, in every `attest quote` process). The point is not validated here: it comes from the
     * TPM, and whoever uses the key parses it. */
    uint8_t der[sizeof spki_p256 + 1 + 2 * 48];
    size_t n = 0;
    memcpy(der, prefix, pl);
    n = pl;
    der[n++] = 0x04;
    memset(der + n, 0, 2 * cs);
    memcpy(der + n + cs - p->unique.ecc.x.size, p->unique.ecc.x.buffer, p->unique.ecc.x.size);
    memcpy(der + n + 2 * cs - p->unique.ecc.y.size, p->unique.ecc.y.buffer, p->unique.ecc.y.size);
    n += 2 * cs;
    return spki_der_pem(out, der, n);
}

/* A DER SubjectPublicKeyInfo as PEM ("PUBLIC KEY", 64-character lines). */
static int spki_der_pem(char **out, const uint8_t *der, size_t n) {
    _cleanup_free_ char *b64 = NULL;
    int r = cit__base64_encode(&b64, der, n);
    if (r < 0)
        return r;
    size_t bl = strlen(b64), lines = (bl + 63) / 64;
    static const char head[] = "-----BEGIN PUBLIC KEY-----\n", tail[] = "-----END PUBLIC KEY-----\n";
    char *s = malloc(sizeof head + bl + lines + sizeof tail);
    if (!s)
        return oom();
    size_t o = 0;
    memcpy(s, head, sizeof head - 1);
    o = sizeof head - 1;
    for (size_t i = 0; i < bl; i += 64) {
        size_t k = bl - i < 64 ? bl - i : 64;
        memcpy(s + o, b64 + i, k);
        o += k;
        s[o++] = '\n';
    }
    memcpy(s + o, tail, sizeof tail); /* with its NUL */
    *out = s;
    return 0;
}

/* The fixed SubjectPublicKeyInfo of an uncompressed P-256 or P-384 point (spki_p256/p384):
 * the curve's point size, or 0 for any other DER. */
static size_t spki_ec_point_len(const uint8_t *der, size_t len, const char **group) {
    if (len == sizeof spki_p256 + 65 && memcmp(der, spki_p256, sizeof spki_p256) == 0 && der[sizeof spki_p256] == 4) {
        *group = "P-256";
        return 65;
    }
    if (len == sizeof spki_p384 + 97 && memcmp(der, spki_p384, sizeof spki_p384) == 0 && der[sizeof spki_p384] == 4) {
        *group = "P-384";
        return 97;
    }
    return 0;
}

/* A P-256/P-384 SubjectPublicKeyInfo imported from its point, without OpenSSL 3's decoder
 * set-up (most of the cost of d2i_PUBKEY / PEM_read_bio_PUBKEY: an enrollment server parses
 * several keys per request). The import checks the point is on the curve. 0 on success, 1
 * when the DER is not one of these (the caller falls back to OpenSSL's decoder); no error set. */
static int pubkey_from_spki_fast(EVP_PKEY **out, const uint8_t *der, size_t len) {
    const char *group = NULL;
    size_t pl = spki_ec_point_len(der, len, &group);
    if (!pl)
        return 1;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(der + len - pl), pl),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pk = NULL;
    int ok = ctx && EVP_PKEY_fromdata_init(ctx) > 0 && EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok || !pk) {
        EVP_PKEY_free(pk);
        ERR_clear_error();
        return 1;
    }
    *out = pk;
    return 0;
}

int cit__pubkey_from_der(EVP_PKEY **out, const uint8_t *der, size_t len) {
    if (pubkey_from_spki_fast(out, der, len) == 0)
        return 0;
    const uint8_t *p = der;
    EVP_PKEY *pk = len <= INT_MAX ? d2i_PUBKEY(NULL, &p, (long)len) : NULL;
    if (!pk || p != der + len) {
        EVP_PKEY_free(pk);
        return cit__openssl_error(CIT_E_INPUT_INVALID, "the input is not a DER public key (SubjectPublicKeyInfo)");
    }
    *out = pk;
    return 0;
}

int cit__pubkey_der(uint8_t **out, size_t *out_len, EVP_PKEY *pk) {
    uint8_t *buf, *p;
    int n;

    if (!pk)
        return cit_error_set(CIT_E_INTERNAL, "no key");
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
        /* P-256/P-384: the fixed prefix and the uncompressed point, without OpenSSL's encoder */
        char group[16];
        uint8_t pt[97];
        size_t pl = 0;
        const uint8_t *prefix = NULL;
        size_t prl = 0;
        if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) == 1 &&
            EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof pt, &pl) == 1 &&
            pt[0] == 4) {
            if (strcmp(group, "prime256v1") == 0 && pl == 65)
                prefix = spki_p256, prl = sizeof spki_p256;
            else if (strcmp(group, "secp384r1") == 0 && pl == 97)
                prefix = spki_p384, prl = sizeof spki_p384;
        }
        ERR_clear_error();
        if (prefix) {
            buf = malloc(prl + pl);
            if (!buf)
                return oom();
            memcpy(buf, prefix, prl);
            memcpy(buf + prl, pt, pl);
            *out = buf;
            *out_len = prl + pl;
            return 0;
        }
    }
    n = i2d_PUBKEY(pk, NULL);
    if (n <= 0)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot encode the public key as DER");
    buf = malloc((size_t)n);
    if (!buf)
        return oom();
    p = buf;
    if (i2d_PUBKEY(pk, &p) != n) {
        free(buf);
        return cit__openssl_error(CIT_E_CRYPTO, "cannot encode the public key as DER");
    }
    *out = buf;
    *out_len = (size_t)n;
    return 0;
}

int cit__pubkey_from_pem(EVP_PKEY **out, const char *pem, size_t len) {
    _cleanup_(BIO_freep) BIO *bio = NULL;
    EVP_PKEY *pk;

    if (!pem || len == 0)
        return cit_error_set(CIT_E_INPUT_INVALID, "the PEM input is empty");
    if (len > INT_MAX)
        return cit_error_set(CIT_E_INPUT_TOO_LARGE, "the PEM input is too large");
    {
        /* one "PUBLIC KEY" block and nothing else (what this library writes): a P-256/P-384 key
         * is imported from its point; anything else goes through OpenSSL's PEM reader */
        static const char head[] = "-----BEGIN PUBLIC KEY-----", tail[] = "-----END PUBLIC KEY-----";
        const char *b = pem, *e = pem + len;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        size_t hl = sizeof head - 1, tl = sizeof tail - 1;
        if ((size_t)(e - b) > hl + tl && (size_t)(e - b) < 1024 && memcmp(b, head, hl) == 0 &&
            memcmp(e - tl, tail, tl) == 0) {
            char body[1024];
            size_t bl = (size_t)(e - b) - hl - tl;
            memcpy(body, b + hl, bl);
            body[bl] = 0;
            bool plain = true; /* base64 and white space only: no PEM headers */
            for (size_t i = 0; i < bl && plain; i++)
                plain = isalnum((unsigned char)body[i]) || body[i] == '+' || body[i] == '/' || body[i] == '=' ||
                        isspace((unsigned char)body[i]);
            uint8_t *der = NULL;
            size_t dl = 0;
            int fast = 1;
            cit_error saved = *cit_error_last();
            if (plain && cit__base64_decode(&der, &dl, body) == 0)
                fast = pubkey_from_spki_fast(out, der, dl);
            free(der);
            cit_error_restore(&saved);
            if (fast == 0)
                return 0;
        }
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot read the PEM input");
    pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!pk)
        return cit__openssl_error(CIT_E_INPUT_INVALID,
                                  "the input is not a PEM public key (SubjectPublicKeyInfo)");
    *out = pk;
    return 0;
}

int cit__pubkey_fingerprint(char **out, EVP_PKEY *pk) {
    _cleanup_free_ uint8_t *der = NULL;
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t der_len = 0, md_len = 0;
    char *hex;
    int r;

    r = cit__pubkey_der(&der, &der_len, pk);
    if (r < 0)
        return r;
    r = cit__digest(TPM2_ALG_SHA256, der, der_len, md, &md_len);
    if (r < 0)
        return r;
    hex = cit_hex_encode(md, md_len);
    if (!hex)
        return oom();
    *out = hex;
    return 0;
}

/* ---- OpenSSH ------------------------------------------------------------------------------ */

/* A growable byte buffer for the SSH wire format; a failed allocation sticks in `failed`. */
typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
} wbuf;

static void wbuf_put(wbuf *w, const void *data, size_t n) {
    if (w->failed)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->failed = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    if (n)
        memcpy(w->p + w->len, data, n);
    w->len += n;
}

static void wbuf_u32(wbuf *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    wbuf_put(w, b, 4);
}

/* RFC 4251 "string". */
static void wbuf_string(wbuf *w, const void *data, size_t n) {
    wbuf_u32(w, (uint32_t)n);
    wbuf_put(w, data, n);
}

/* RFC 4251 "mpint" of a non-negative number given as big-endian bytes: minimal, with a zero
 * byte in front when the top bit is set so it is not read as negative; zero is empty. */
static void wbuf_mpint(wbuf *w, const uint8_t *b, size_t n) {
    while (n > 0 && b[0] == 0) {
        b++;
        n--;
    }
    if (n > 0 && (b[0] & 0x80)) {
        wbuf_u32(w, (uint32_t)n + 1);
        wbuf_put(w, "", 1);
        wbuf_put(w, b, n);
    } else
        wbuf_string(w, b, n);
}

/* The OpenSSH public key blob (RFC 4253 6.6 ssh-rsa, RFC 5656 3.1 ecdsa-sha2-*) and its type
 * name. */
static int ssh_blob(uint8_t **out, size_t *out_len, char type[32], EVP_PKEY *pk) {
    wbuf w = {0};

    if (!pk)
        return cit_error_set(CIT_E_INTERNAL, "no key");
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
        _cleanup_free_ uint8_t *n = NULL;
        _cleanup_free_ uint8_t *e = NULL;
        size_t n_len = 0, e_len = 0;
        int r = get_bn_bytes(pk, OSSL_PKEY_PARAM_RSA_N, &n, &n_len);
        if (r < 0)
            return r;
        r = get_bn_bytes(pk, OSSL_PKEY_PARAM_RSA_E, &e, &e_len);
        if (r < 0)
            return r;
        snprintf(type, 32, "ssh-rsa");
        wbuf_string(&w, type, strlen(type));
        wbuf_mpint(&w, e, e_len);
        wbuf_mpint(&w, n, n_len);
    } else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
        /* RFC 8709 4: string "ssh-ed25519", string key (32 bytes) */
        uint8_t raw[32];
        size_t raw_len = sizeof raw;
        if (EVP_PKEY_get_raw_public_key(pk, raw, &raw_len) != 1 || raw_len != sizeof raw)
            return cit__openssl_error(CIT_E_CRYPTO, "cannot read the Ed25519 public key");
        snprintf(type, 32, "ssh-ed25519");
        wbuf_string(&w, type, strlen(type));
        wbuf_string(&w, raw, raw_len);
    } else {
        const struct curve *c = curve_of(pk);
        uint8_t point[1 + 2 * COORD_MAX];
        if (!c)
            return cit_error_set(CIT_E_EXPORT_UNSUPPORTED,
                                 "OpenSSH export needs an RSA or NIST P-256/P-384/P-521 key");
        point[0] = 0x04;
        int r = get_ec_xy(pk, c, point + 1, point + 1 + c->bytes);
        if (r < 0)
            return r;
        snprintf(type, 32, "ecdsa-sha2-%s", c->ssh);
        wbuf_string(&w, type, strlen(type));
        wbuf_string(&w, c->ssh, strlen(c->ssh));
        wbuf_string(&w, point, 1 + 2 * c->bytes);
    }
    if (w.failed) {
        free(w.p);
        return oom();
    }
    *out = w.p;
    *out_len = w.len;
    return 0;
}

int cit__pubkey_openssh(char **out, EVP_PKEY *pk, const char *comment) {
    _cleanup_free_ uint8_t *blob = NULL;
    _cleanup_free_ char *b64 = NULL;
    char type[32];
    size_t blob_len = 0, len;
    char *line;
    int r;

    if (comment && strpbrk(comment, "\r\n"))
        return cit_error_set(CIT_E_INPUT_INVALID, "an OpenSSH key comment cannot span lines");
    r = ssh_blob(&blob, &blob_len, type, pk);
    if (r < 0)
        return r;
    r = cit__base64_encode(&b64, blob, blob_len);
    if (r < 0)
        return r;
    if (comment && !*comment)
        comment = NULL;
    len = strlen(type) + 1 + strlen(b64) + (comment ? 1 + strlen(comment) : 0) + 2;
    line = malloc(len);
    if (!line)
        return oom();
    snprintf(line, len, "%s %s%s%s\n", type, b64, comment ? " " : "", comment ? comment : "");
    *out = line;
    return 0;
}

int cit__pubkey_ssh_fingerprint(char **out, EVP_PKEY *pk) {
    _cleanup_free_ uint8_t *blob = NULL;
    _cleanup_free_ char *b64 = NULL;
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t blob_len = 0, md_len = 0, n;
    char type[32];
    char *s;
    int r;

    r = ssh_blob(&blob, &blob_len, type, pk);
    if (r < 0)
        return r;
    r = cit__digest(TPM2_ALG_SHA256, blob, blob_len, md, &md_len);
    if (r < 0)
        return r;
    r = cit__base64_encode(&b64, md, md_len);
    if (r < 0)
        return r;
    n = strlen(b64);
    while (n > 0 && b64[n - 1] == '=')
        b64[--n] = 0;
    n += sizeof("SHA256:");
    s = malloc(n);
    if (!s)
        return oom();
    snprintf(s, n, "SHA256:%s", b64);
    *out = s;
    return 0;
}

/* ---- JWK ---------------------------------------------------------------------------------- */

/* RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace. The
 * values are base64url and fixed names, so no JSON escaping is needed. */
static int jwk_thumbprint(char **out, const char *canonical) {
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;
    int r =
        cit__digest(TPM2_ALG_SHA256, (const uint8_t *)canonical, strlen(canonical), md, &md_len);
    if (r < 0)
        return r;
    return cit__base64url_encode(out, md, md_len);
}

static int jwk_set(json_t *o, const char *key, const char *value) {
    json_t *v = json_string(value);
    if (!v || json_object_set_new(o, key, v) < 0)
        return oom();
    return 0;
}

static int jwk_rsa(json_t *o, EVP_PKEY *pk) {
    _cleanup_free_ uint8_t *n = NULL;
    _cleanup_free_ uint8_t *e = NULL;
    _cleanup_free_ char *n64 = NULL;
    _cleanup_free_ char *e64 = NULL;
    _cleanup_free_ char *canon = NULL;
    _cleanup_free_ char *kid = NULL;
    size_t n_len = 0, e_len = 0, len;
    int r;

    /* RFC 7518 6.3.1: unsigned big-endian, minimal length (get_bn_bytes gives that). */
    if ((r = get_bn_bytes(pk, OSSL_PKEY_PARAM_RSA_N, &n, &n_len)) < 0 ||
        (r = get_bn_bytes(pk, OSSL_PKEY_PARAM_RSA_E, &e, &e_len)) < 0 ||
        (r = cit__base64url_encode(&n64, n, n_len)) < 0 ||
        (r = cit__base64url_encode(&e64, e, e_len)) < 0)
        return r;
    len = strlen(n64) + strlen(e64) + 64;
    canon = malloc(len);
    if (!canon)
        return oom();
    snprintf(canon, len, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e64, n64);
    if ((r = jwk_thumbprint(&kid, canon)) < 0)
        return r;
    if ((r = jwk_set(o, "kty", "RSA")) < 0 || (r = jwk_set(o, "n", n64)) < 0 ||
        (r = jwk_set(o, "e", e64)) < 0 || (r = jwk_set(o, "kid", kid)) < 0)
        return r;
    return 0;
}

static int jwk_ec(json_t *o, EVP_PKEY *pk, const struct curve *c) {
    _cleanup_free_ char *x64 = NULL;
    _cleanup_free_ char *y64 = NULL;
    _cleanup_free_ char *canon = NULL;
    _cleanup_free_ char *kid = NULL;
    uint8_t x[COORD_MAX], y[COORD_MAX];
    size_t len;
    int r;

    /* RFC 7518 6.2.1.2: coordinates are the full field size, leading zeros kept. */
    if ((r = get_ec_xy(pk, c, x, y)) < 0 || (r = cit__base64url_encode(&x64, x, c->bytes)) < 0 ||
        (r = cit__base64url_encode(&y64, y, c->bytes)) < 0)
        return r;
    len = strlen(x64) + strlen(y64) + 64;
    canon = malloc(len);
    if (!canon)
        return oom();
    snprintf(canon, len, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", c->nist, x64,
             y64);
    if ((r = jwk_thumbprint(&kid, canon)) < 0)
        return r;
    if ((r = jwk_set(o, "kty", "EC")) < 0 || (r = jwk_set(o, "crv", c->nist)) < 0 ||
        (r = jwk_set(o, "x", x64)) < 0 || (r = jwk_set(o, "y", y64)) < 0 ||
        (r = jwk_set(o, "kid", kid)) < 0)
        return r;
    return 0;
}

/* RFC 8037: {"kty":"OKP","crv":"Ed25519","x":..}; the thumbprint members are crv, kty, x. */
static int jwk_okp(json_t *o, EVP_PKEY *pk) {
    _cleanup_free_ char *x64 = NULL;
    _cleanup_free_ char *kid = NULL;
    char canon[128];
    uint8_t raw[32];
    size_t raw_len = sizeof raw;
    int r;

    if (EVP_PKEY_get_raw_public_key(pk, raw, &raw_len) != 1 || raw_len != sizeof raw)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot read the Ed25519 public key");
    if ((r = cit__base64url_encode(&x64, raw, raw_len)) < 0)
        return r;
    snprintf(canon, sizeof canon, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x64);
    if ((r = jwk_thumbprint(&kid, canon)) < 0)
        return r;
    if ((r = jwk_set(o, "kty", "OKP")) < 0 || (r = jwk_set(o, "crv", "Ed25519")) < 0 ||
        (r = jwk_set(o, "x", x64)) < 0 || (r = jwk_set(o, "kid", kid)) < 0)
        return r;
    return 0;
}

int cit__pubkey_jwk(json_t **out, EVP_PKEY *pk) {
    const struct curve *c = NULL;
    json_t *o;
    int r;

    if (!pk)
        return cit_error_set(CIT_E_INTERNAL, "no key");
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
        o = json_object();
        if (!o)
            return oom();
        r = jwk_okp(o, pk);
        if (r < 0) {
            json_decref(o);
            return r;
        }
        *out = o;
        return 0;
    }
    if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
        c = curve_of(pk);
        if (!c)
            return cit_error_set(CIT_E_EXPORT_UNSUPPORTED,
                                 "JWK export needs an RSA or NIST P-256/P-384/P-521 key");
    }
    o = json_object();
    if (!o)
        return oom();
    r = c ? jwk_ec(o, pk, c) : jwk_rsa(o, pk);
    if (r < 0) {
        json_decref(o);
        return r;
    }
    *out = o;
    return 0;
}

/* ---- hashes ------------------------------------------------------------------------------- */

static const struct hash *hash_by_alg(TPMI_ALG_HASH alg) {
    for (size_t i = 0; i < ELEMENTSOF(hashes); i++)
        if (hashes[i].alg == alg)
            return &hashes[i];
    return NULL;
}

int cit__hash_from_name(const char *name, TPMI_ALG_HASH *out) {
    for (size_t i = 0; name && i < ELEMENTSOF(hashes); i++)
        if (strcasecmp(hashes[i].name, name) == 0) {
            *out = hashes[i].alg;
            return 0;
        }
    cit_error_set(CIT_E_ALG_UNSUPPORTED, "unknown hash algorithm: %s", name ? name : "(none)");
    cit_error_step("use one of: sha1, sha256, sha384, sha512");
    return CIT_E_ALG_UNSUPPORTED;
}

const char *cit__hash_name(TPMI_ALG_HASH alg) {
    const struct hash *h = hash_by_alg(alg);
    return h ? h->name : NULL;
}

/* Explicitly fetched digests, kept for the life of the process: a fetched EVP_MD skips the
 * legacy ENGINE lookup that EVP_sha256() and friends go through on every init. */
static EVP_MD *fetched[ELEMENTSOF(hashes)];
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_all(void) {
    for (size_t i = 0; i < ELEMENTSOF(hashes); i++)
        fetched[i] = EVP_MD_fetch(NULL, hashes[i].fetch_name, NULL);
    ERR_clear_error(); /* SHA-1 may be unavailable under a strict policy */
}

const EVP_MD *cit__hash_md(TPMI_ALG_HASH alg) {
    const struct hash *h = hash_by_alg(alg);
    if (!h)
        return NULL;
    pthread_once(&fetch_once, fetch_all);
    return fetched[h - hashes];
}

size_t cit__hash_size(TPMI_ALG_HASH alg) {
    const struct hash *h = hash_by_alg(alg);
    return h ? h->size : 0;
}

int cit__digest(TPMI_ALG_HASH alg, const uint8_t *data, size_t len, uint8_t *out, size_t *out_len) {
    const EVP_MD *md = cit__hash_md(alg);
    unsigned n = 0;

    if (!md) {
        cit_error_set(CIT_E_ALG_UNSUPPORTED, "unsupported hash algorithm");
        cit_error_context("hash", "0x%04x", (unsigned)alg);
        return CIT_E_ALG_UNSUPPORTED;
    }
    if (!EVP_Digest(len ? data : (const uint8_t *)"", len, out, &n, md, NULL))
        return cit__openssl_error(CIT_E_CRYPTO, "cannot compute the digest");
    *out_len = n;
    return 0;
}

/* ---- signatures --------------------------------------------------------------------------- */

/* Skips leading zero bytes of a big-endian number. */
static const uint8_t *strip_zeros(const uint8_t *b, size_t *n) {
    while (*n > 0 && b[0] == 0) {
        b++;
        (*n)--;
    }
    return b;
}

/* DER Ecdsa-Sig-Value from big-endian r and s. */
/* One DER INTEGER (minimal: leading zeros stripped, 0x00 before a set high bit) at p; returns
 * its length. b is big-endian and unsigned. */
static size_t der_uint(uint8_t *p, const uint8_t *b, size_t n) {
    while (n > 0 && b[0] == 0) {
        b++;
        n--;
    }
    bool pad = n == 0 || (b[0] & 0x80); /* zero is the single byte 0x00 */
    size_t body = n + (pad ? 1 : 0), o = 0;
    p[o++] = 0x02;
    if (body >= 0x80)
        p[o++] = 0x81;
    p[o++] = (uint8_t)body;
    if (pad)
        p[o++] = 0;
    memcpy(p + o, b, n);
    return o + n;
}

/* ECDSA-Sig-Value (RFC 3279: SEQUENCE { r INTEGER, s INTEGER }) from r and s, written directly:
 * this runs for every quote and signature verified, and BIGNUMs cost more than the encoding. */
static int ecdsa_der(uint8_t **out, size_t *out_len, const uint8_t *r, size_t r_len,
                     const uint8_t *s, size_t s_len) {
    if (r_len > 128 || s_len > 128)
        return cit_error_set(CIT_E_INPUT_INVALID, "the ECDSA signature is too long");
    uint8_t ints[2 * (3 + 1 + 128)];
    size_t il = der_uint(ints, r, r_len);
    il += der_uint(ints + il, s, s_len);
    uint8_t *der = malloc(il + 4);
    if (!der)
        return oom();
    size_t o = 0;
    der[o++] = 0x30;
    if (il >= 0x100) {
        der[o++] = 0x82;
        der[o++] = (uint8_t)(il >> 8);
    } else if (il >= 0x80)
        der[o++] = 0x81;
    der[o++] = (uint8_t)il;
    memcpy(der + o, ints, il);
    *out = der;
    *out_len = o + il;
    return 0;
}

static int ecdsa_encode(uint8_t **out, size_t *out_len, const TPMS_SIGNATURE_ECC *ecc,
                        cit_sig_encoding enc, size_t curve_bytes) {
    size_t r_len = ecc->signatureR.size, s_len = ecc->signatureS.size;
    const uint8_t *r, *s;
    uint8_t *raw;

    if (r_len > sizeof(ecc->signatureR.buffer) || s_len > sizeof(ecc->signatureS.buffer) ||
        r_len == 0 || s_len == 0)
        return cit_error_set(CIT_E_INPUT_INVALID, "the TPM ECDSA signature has an invalid size");
    r = strip_zeros(ecc->signatureR.buffer, &r_len);
    s = strip_zeros(ecc->signatureS.buffer, &s_len);
    if (enc == CIT_SIG_ENC_DER)
        return ecdsa_der(out, out_len, r, r_len, s, s_len);

    if (curve_bytes == 0 || curve_bytes > COORD_MAX || r_len > curve_bytes || s_len > curve_bytes) {
        cit_error_set(CIT_E_INPUT_INVALID, "the ECDSA signature does not fit the curve size");
        cit_error_context("curve_bytes", "%zu", curve_bytes);
        return CIT_E_INPUT_INVALID;
    }
    raw = calloc(2, curve_bytes);
    if (!raw)
        return oom();
    memcpy(raw + curve_bytes - r_len, r, r_len);
    memcpy(raw + 2 * curve_bytes - s_len, s, s_len);
    *out = raw;
    *out_len = 2 * curve_bytes;
    return 0;
}

static int rsa_encode(uint8_t **out, size_t *out_len, const TPM2B_PUBLIC_KEY_RSA *sig) {
    uint8_t *b;

    if (sig->size == 0 || sig->size > sizeof(sig->buffer))
        return cit_error_set(CIT_E_INPUT_INVALID, "the TPM RSA signature has an invalid size");
    b = malloc(sig->size);
    if (!b)
        return oom();
    memcpy(b, sig->buffer, sig->size);
    *out = b;
    *out_len = sig->size;
    return 0;
}

int cit__sig_encode(uint8_t **out, size_t *out_len, const TPMT_SIGNATURE *sig, cit_sig_encoding enc,
                    size_t curve_bytes) {
    if (!sig)
        return cit_error_set(CIT_E_INTERNAL, "no signature");
    switch (sig->sigAlg) {
    case TPM2_ALG_ECDSA:
        return ecdsa_encode(out, out_len, &sig->signature.ecdsa, enc, curve_bytes);
    case TPM2_ALG_RSASSA:
        return rsa_encode(out, out_len, &sig->signature.rsassa.sig);
    case TPM2_ALG_RSAPSS:
        return rsa_encode(out, out_len, &sig->signature.rsapss.sig);
    default:
        cit_error_set(CIT_E_ALG_UNSUPPORTED, "unsupported signature scheme");
        cit_error_context("sig_alg", "0x%04x", (unsigned)sig->sigAlg);
        return CIT_E_ALG_UNSUPPORTED;
    }
}

static const char *scheme_name(cit_sig_scheme scheme) {
    switch (scheme) {
    case CIT_SCHEME_ECDSA:
        return "ecdsa";
    case CIT_SCHEME_RSASSA:
        return "rsassa";
    case CIT_SCHEME_RSAPSS:
        return "rsapss";
    }
    return "unknown";
}

static int sig_invalid(const char *why) {
    /* Keep OpenSSL's reason as context, but the outcome is a plain "does not verify". */
    return cit__openssl_error(CIT_E_SIGNATURE_INVALID, why);
}

int cit__sig_verify(EVP_PKEY *pk, cit_sig_scheme scheme, TPMI_ALG_HASH hash, const uint8_t *digest,
                    size_t digest_len, const uint8_t *sig, size_t sig_len, cit_sig_encoding enc) {
    _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
    _cleanup_free_ uint8_t *der = NULL;
    const EVP_MD *md = cit__hash_md(hash);
    int key_type, want_type, r;

    if (!pk || !digest || (!sig && sig_len))
        return cit_error_set(CIT_E_INTERNAL, "missing key, digest or signature");
    key_type = EVP_PKEY_get_base_id(pk);
    want_type = scheme == CIT_SCHEME_ECDSA ? EVP_PKEY_EC : EVP_PKEY_RSA;
    if (key_type != want_type) {
        cit_error_set(CIT_E_ALG_UNSUPPORTED, "the signature scheme does not match the key");
        cit_error_context("scheme", "%s", scheme_name(scheme));
        cit_error_context("key", "%s",
                          key_type == EVP_PKEY_EC    ? "ec"
                          : key_type == EVP_PKEY_RSA ? "rsa"
                                                     : "other");
        return CIT_E_ALG_UNSUPPORTED;
    }
    if (!md) {
        cit_error_set(CIT_E_ALG_UNSUPPORTED, "unsupported hash algorithm");
        cit_error_context("hash", "0x%04x", (unsigned)hash);
        return CIT_E_ALG_UNSUPPORTED;
    }
    if (digest_len != (size_t)EVP_MD_get_size(md)) {
        cit_error_set(CIT_E_INPUT_INVALID, "the digest length does not match the hash");
        cit_error_context("hash", "%s", cit__hash_name(hash));
        cit_error_context("digest_len", "%zu", digest_len);
        return CIT_E_INPUT_INVALID;
    }
    if (sig_len == 0)
        return cit_error_set(CIT_E_SIGNATURE_INVALID, "the signature is empty");

    if (scheme == CIT_SCHEME_ECDSA && enc == CIT_SIG_ENC_RAW) {
        /* r||s, each the size of the field (P-521: 521 bits, 66 bytes). */
        size_t half = ((size_t)EVP_PKEY_get_bits(pk) + 7) / 8;
        size_t der_len = 0;
        if (half == 0 || sig_len != 2 * half) {
            cit_error_set(CIT_E_SIGNATURE_INVALID,
                          "the raw ECDSA signature has the wrong length for the curve");
            cit_error_context("expected", "%zu", 2 * half);
            cit_error_context("actual", "%zu", sig_len);
            return CIT_E_SIGNATURE_INVALID;
        }
        r = ecdsa_der(&der, &der_len, sig, half, sig + half, half);
        if (r < 0)
            return r;
        sig = der;
        sig_len = der_len;
    }

    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    /* ECDSA verifies the digest as it is (its length was checked above): naming the hash would
     * only make OpenSSL fetch it by name again, on every quote a verifier checks */
    if (!ctx || EVP_PKEY_verify_init(ctx) <= 0 ||
        (scheme != CIT_SCHEME_ECDSA && EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0))
        return cit__openssl_error(CIT_E_CRYPTO, "cannot set up signature verification");
    if (scheme == CIT_SCHEME_RSASSA && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot set up RSA PKCS#1 v1.5 verification");
    if (scheme == CIT_SCHEME_RSAPSS &&
        (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_AUTO) <= 0))
        return cit__openssl_error(CIT_E_CRYPTO, "cannot set up RSA-PSS verification");

    /* 0 is a bad signature, negative is a signature OpenSSL could not even parse: both are
     * "does not verify" to the caller. */
    if (EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) != 1)
        return sig_invalid("the signature does not verify");
    ERR_clear_error();
    return 0;
}

/* ---- base64 ------------------------------------------------------------------------------- */

int cit__base64_encode(char **out, const uint8_t *buf, size_t len) {
    size_t n;
    char *s;

    /* EVP_EncodeBlock takes an int and writes 4 bytes per 3 plus a NUL. */
    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return cit_error_set(CIT_E_INPUT_TOO_LARGE, "too much data to base64-encode");
    n = (len + 2) / 3 * 4 + 1;
    s = malloc(n);
    if (!s)
        return oom();
    if (len == 0)
        s[0] = 0;
    else if (EVP_EncodeBlock((unsigned char *)s, buf, (int)len) != (int)n - 1) {
        free(s);
        return cit__openssl_error(CIT_E_CRYPTO, "base64 encoding failed");
    }
    *out = s;
    return 0;
}

int cit__base64url_encode(char **out, const uint8_t *buf, size_t len) {
    char *s;
    size_t n;
    int r;

    r = cit__base64_encode(&s, buf, len);
    if (r < 0)
        return r;
    for (n = 0; s[n]; n++) {
        if (s[n] == '+')
            s[n] = '-';
        else if (s[n] == '/')
            s[n] = '_';
        else if (s[n] == '=') {
            s[n] = 0;
            break;
        }
    }
    *out = s;
    return 0;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Accepts both alphabets, with or without padding, and ignores whitespace (PEM line breaks),
 * so it decodes what both encoders above produce. */
int cit__base64_decode(uint8_t **out, size_t *out_len, const char *s) {
    size_t n, len = 0, pad = 0, digits = 0;
    uint32_t acc = 0;
    uint8_t *b;

    if (!s)
        return cit_error_set(CIT_E_INTERNAL, "no base64 input");
    n = strlen(s);
    b = malloc(n / 4 * 3 + 3);
    if (!b)
        return oom();
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v;
        if (isspace((unsigned char)c))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        v = b64_value(c);
        if (v < 0 || pad > 0) {
            free(b);
            cit_error_set(CIT_E_INPUT_INVALID, "invalid base64 input");
            cit_error_context("offset", "%zu", i);
            return CIT_E_INPUT_INVALID;
        }
        acc = acc << 6 | (uint32_t)v;
        if (++digits % 4 == 0) {
            b[len++] = (uint8_t)(acc >> 16);
            b[len++] = (uint8_t)(acc >> 8);
            b[len++] = (uint8_t)acc;
            acc = 0;
        }
    }
    /* A lone trailing digit cannot encode a byte; padding, when present, must complete the
     * last group. */
    if (digits % 4 == 1 || pad > 2 || (pad && (digits + pad) % 4 != 0)) {
        free(b);
        return cit_error_set(CIT_E_INPUT_INVALID, "invalid base64 input: bad length or padding");
    }
    if (digits % 4 == 2)
        b[len++] = (uint8_t)(acc >> 4);
    else if (digits % 4 == 3) {
        b[len++] = (uint8_t)(acc >> 10);
        b[len++] = (uint8_t)(acc >> 2);
    }
    *out = b;
    *out_len = len;
    return 0;
}
