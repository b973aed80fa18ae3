/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/lib/crypto: keys made in software with OpenSSL stand in for TPM keys, so
 * every conversion can be checked against OpenSSL itself (EVP_PKEY_eq, EVP_PKEY_sign), against
 * ssh-keygen, and against the published RFC 7638 example.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "basic/util.h"
#include "citadel/error.h"
#include "crypto/crypto.h"

/* Keys are generated once per run: RSA key generation is slow. */
static EVP_PKEY *key_p256, *key_p384, *key_p521, *key_rsa;

static int group_setup(void **state) {
    key_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    key_p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    key_p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    key_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    return key_p256 && key_p384 && key_p521 && key_rsa ? 0 : -1;
}

static int group_teardown(void **state) {
    EVP_PKEY_free(key_p256);
    EVP_PKEY_free(key_p384);
    EVP_PKEY_free(key_p521);
    EVP_PKEY_free(key_rsa);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void bn_param_bytes(EVP_PKEY *pk, const char *name, uint8_t *out, size_t len) {
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, name, &bn), 1);
    assert_int_equal(BN_bn2binpad(bn, out, (int)len), (int)len);
    BN_free(bn);
}

/* What a TPM would return for this EC key: full-size x and y. */
static void tpm_from_ec(TPM2B_PUBLIC *pub, EVP_PKEY *pk, TPM2_ECC_CURVE curve, size_t bytes) {
    memset(pub, 0, sizeof(*pub));
    pub->publicArea.type = TPM2_ALG_ECC;
    pub->publicArea.nameAlg = TPM2_ALG_SHA256;
    pub->publicArea.parameters.eccDetail.curveID = curve;
    pub->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    pub->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    bn_param_bytes(pk, OSSL_PKEY_PARAM_EC_PUB_X, pub->publicArea.unique.ecc.x.buffer, bytes);
    bn_param_bytes(pk, OSSL_PKEY_PARAM_EC_PUB_Y, pub->publicArea.unique.ecc.y.buffer, bytes);
    pub->publicArea.unique.ecc.x.size = (UINT16)bytes;
    pub->publicArea.unique.ecc.y.size = (UINT16)bytes;
}

static void tpm_from_rsa(TPM2B_PUBLIC *pub, EVP_PKEY *pk, UINT32 exponent_field) {
    BIGNUM *n = NULL;
    memset(pub, 0, sizeof(*pub));
    pub->publicArea.type = TPM2_ALG_RSA;
    pub->publicArea.nameAlg = TPM2_ALG_SHA256;
    pub->publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub->publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    pub->publicArea.parameters.rsaDetail.keyBits = (TPMI_RSA_KEY_BITS)EVP_PKEY_get_bits(pk);
    pub->publicArea.parameters.rsaDetail.exponent = exponent_field;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    int len = BN_num_bytes(n);
    assert_true(len > 0 && (size_t)len <= sizeof(pub->publicArea.unique.rsa.buffer));
    assert_int_equal(BN_bn2bin(n, pub->publicArea.unique.rsa.buffer), len);
    pub->publicArea.unique.rsa.size = (UINT16)len;
    BN_free(n);
}

/* Signs a digest in software. padding is 0 for ECDSA. */
static void sign_digest(EVP_PKEY *pk, const EVP_MD *md, int padding, const uint8_t *dg,
                        size_t dg_len, uint8_t **sig, size_t *sig_len) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    size_t n = 0;
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_true(EVP_PKEY_CTX_set_signature_md(ctx, md) > 0);
    if (padding) {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, padding) > 0);
        if (padding == RSA_PKCS1_PSS_PADDING)
            /* What a TPM uses: salt as long as the digest. */
            assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0);
    }
    assert_int_equal(EVP_PKEY_sign(ctx, NULL, &n, dg, dg_len), 1);
    *sig = malloc(n);
    assert_non_null(*sig);
    assert_int_equal(EVP_PKEY_sign(ctx, *sig, &n, dg, dg_len), 1);
    *sig_len = n;
    EVP_PKEY_CTX_free(ctx);
}

/* A TPMT_SIGNATURE the way a TPM returns ECDSA: r and s each padded to the curve size. */
static void tpm_sig_from_der(TPMT_SIGNATURE *ts, const uint8_t *der, size_t der_len,
                             TPMI_ALG_HASH hash, size_t bytes) {
    const uint8_t *p = der;
    const BIGNUM *r, *s;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    assert_non_null(es);
    ECDSA_SIG_get0(es, &r, &s);
    memset(ts, 0, sizeof(*ts));
    ts->sigAlg = TPM2_ALG_ECDSA;
    ts->signature.ecdsa.hash = hash;
    assert_int_equal(BN_bn2binpad(r, ts->signature.ecdsa.signatureR.buffer, (int)bytes),
                     (int)bytes);
    assert_int_equal(BN_bn2binpad(s, ts->signature.ecdsa.signatureS.buffer, (int)bytes),
                     (int)bytes);
    ts->signature.ecdsa.signatureR.size = (UINT16)bytes;
    ts->signature.ecdsa.signatureS.size = (UINT16)bytes;
    ECDSA_SIG_free(es);
}

/* Runs a shell command and returns all of its standard output (NUL-terminated), and its
 * wait status in *status. */
static char *run(const char *cmd, int *status) {
    FILE *f = popen(cmd, "r");
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);
    assert_non_null(f);
    assert_non_null(out);
    for (;;) {
        size_t n = fread(out + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
    }
    out[len] = 0;
    *status = pclose(f);
    return out;
}

static bool have_ssh_keygen(void) { return system("command -v ssh-keygen >/dev/null 2>&1") == 0; }

/* ---- TPM2B_PUBLIC ------------------------------------------------------------------------- */

static void check_ec_from_tpm(EVP_PKEY *pk, TPM2_ECC_CURVE curve, size_t bytes) {
    TPM2B_PUBLIC pub;
    EVP_PKEY *got = NULL;
    tpm_from_ec(&pub, pk, curve, bytes);
    assert_int_equal(cit__pubkey_from_tpm(&got, &pub), 0);
    assert_non_null(got);
    assert_int_equal(EVP_PKEY_eq(got, pk), 1);
    EVP_PKEY_free(got);
}

static void test_ec_from_tpm(void **state) {
    check_ec_from_tpm(key_p256, TPM2_ECC_NIST_P256, 32);
    check_ec_from_tpm(key_p384, TPM2_ECC_NIST_P384, 48);
    check_ec_from_tpm(key_p521, TPM2_ECC_NIST_P521, 66);
}

static void test_ec_from_tpm_short_coordinates(void **state) {
    /* A TPM may return a coordinate without its leading zero bytes. */
    TPM2B_PUBLIC pub;
    TPM2B_ECC_PARAMETER *x = &pub.publicArea.unique.ecc.x;
    EVP_PKEY *got = NULL, *pk = NULL;
    uint8_t shifted[32];

    /* Find a key whose x starts with a zero byte (1 in 256) and drop that byte. */
    for (int i = 0; i < 2000; i++) {
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_non_null(pk);
        tpm_from_ec(&pub, pk, TPM2_ECC_NIST_P256, 32);
        if (x->buffer[0] == 0)
            break;
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    if (!pk)
        skip();
    memcpy(shifted, x->buffer + 1, 31);
    memcpy(x->buffer, shifted, 31);
    x->size = 31;
    assert_int_equal(cit__pubkey_from_tpm(&got, &pub), 0);
    assert_int_equal(EVP_PKEY_eq(got, pk), 1);
    EVP_PKEY_free(got);
    EVP_PKEY_free(pk);
}

static void test_ec_from_tpm_rejects(void **state) {
    TPM2B_PUBLIC pub;
    EVP_PKEY *got = NULL;

    tpm_from_ec(&pub, key_p256, TPM2_ECC_NIST_P256, 32);
    pub.publicArea.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
    assert_int_equal(cit__pubkey_from_tpm(&got, &pub), CIT_E_ALG_UNSUPPORTED);
    assert_int_equal(cit_error_last()->code, CIT_E_ALG_UNSUPPORTED);
    assert_null(got);

    tpm_from_ec(&pub, key_p256, TPM2_ECC_NIST_P256, 32);
    pub.publicArea.unique.ecc.y.buffer[31] ^= 1; /* off the curve */
    assert_int_equal(cit__pubkey_from_tpm(&got, &pub), CIT_E_INPUT_INVALID);
    assert_null(got);
    assert_int_equal(ERR_peek_error(), 0);

    tpm_from_ec(&pub, key_p256, TPM2_ECC_NIST_P256, 32);
    pub.publicArea.unique.ecc.x.size = 33;
    assert_int_equal(cit__pubkey_from_tpm(&got, &pub), CIT_E_INPUT_INVALID);
    assert_null(got);

    tpm_from_ec(&pub, key_p256, TPM2_ECC_NIST_P256, 32);
    pub.publicArea.type = TPM2_ALG_KEYEDHASH;
    assert_int_equal(cit__pubkey_from_tpm(&got, &pub), CIT_E_ALG_UNSUPPORTED);
    assert_null(got);
}

static void test_rsa_from_tpm(void **state) {
    TPM2B_PUBLIC pub;
    EVP_PKEY *got = NULL;
    BIGNUM *e = NULL;

    /* exponent 0 means the default, 65537 */
    tpm_from_rsa(&pub, key_rsa, 0);
    assert_int_equal(cit__pubkey_from_tpm(&got, &pub), 0);
    assert_int_equal(EVP_PKEY_eq(got, key_rsa), 1);
    assert_int_equal(EVP_PKEY_get_bits(got), 2048);
    EVP_PKEY_free(got);
    got = NULL;

    tpm_from_rsa(&pub, key_rsa, 65537);
    assert_int_equal(cit__pubkey_from_tpm(&got, &pub), 0);
    assert_int_equal(EVP_PKEY_eq(got, key_rsa), 1);
    EVP_PKEY_free(got);
    got = NULL;

    tpm_from_rsa(&pub, key_rsa, 3);
    assert_int_equal(cit__pubkey_from_tpm(&got, &pub), 0);
    assert_int_equal(EVP_PKEY_get_bn_param(got, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    assert_true(BN_is_word(e, 3));
    assert_int_not_equal(EVP_PKEY_eq(got, key_rsa), 1);
    BN_free(e);
    EVP_PKEY_free(got);
    got = NULL;

    tpm_from_rsa(&pub, key_rsa, 0);
    pub.publicArea.unique.rsa.size = 0;
    assert_int_equal(cit__pubkey_from_tpm(&got, &pub), CIT_E_INPUT_INVALID);
    assert_null(got);
}

/* ---- PEM / DER / fingerprints ------------------------------------------------------------- */

static void check_pem_der(EVP_PKEY *pk) {
    char *pem = NULL, *fp = NULL, *hex;
    uint8_t *der = NULL, md[EVP_MAX_MD_SIZE];
    size_t der_len = 0, md_len = 0;
    EVP_PKEY *back = NULL;
    const uint8_t *p;

    assert_int_equal(cit__pubkey_pem(&pem, pk), 0);
    assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----\n"));
    assert_non_null(strstr(pem, "-----END PUBLIC KEY-----\n"));
    assert_int_equal(cit__pubkey_from_pem(&back, pem, strlen(pem)), 0);
    assert_int_equal(EVP_PKEY_eq(back, pk), 1);
    EVP_PKEY_free(back);

    assert_int_equal(cit__pubkey_der(&der, &der_len, pk), 0);
    p = der;
    back = d2i_PUBKEY(NULL, &p, (long)der_len);
    assert_non_null(back);
    assert_ptr_equal(p, der + der_len);
    assert_int_equal(EVP_PKEY_eq(back, pk), 1);
    EVP_PKEY_free(back);

    assert_int_equal(cit__pubkey_fingerprint(&fp, pk), 0);
    assert_int_equal(EVP_Digest(der, der_len, md, NULL, EVP_sha256(), NULL), 1);
    md_len = 32;
    hex = cit_hex_encode(md, md_len);
    assert_string_equal(fp, hex);
    assert_int_equal(strlen(fp), 64);

    free(hex);
    free(fp);
    free(der);
    free(pem);
}

static void test_pem_der(void **state) {
    check_pem_der(key_p256);
    check_pem_der(key_p384);
    check_pem_der(key_p521);
    check_pem_der(key_rsa);
}

/* The P-256/P-384 shortcuts (no OpenSSL encoder/decoder) write exactly what OpenSSL writes, read
 * what OpenSSL reads, and refuse what OpenSSL refuses. */
static void check_fast_spki(EVP_PKEY *pk) {
    uint8_t *der = NULL, *ossl = NULL;
    size_t dl = 0;
    int ol = i2d_PUBKEY(pk, &ossl);
    assert_true(ol > 0);
    assert_int_equal(cit__pubkey_der(&der, &dl, pk), 0);
    assert_int_equal(dl, (size_t)ol);
    assert_memory_equal(der, ossl, dl);
    BIO *b = BIO_new(BIO_s_mem());
    char *bp = NULL, *pem = NULL;
    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    long bl = BIO_get_mem_data(b, &bp);
    assert_int_equal(cit__pubkey_pem(&pem, pk), 0);
    assert_int_equal(strlen(pem), (size_t)bl);
    assert_memory_equal(pem, bp, (size_t)bl);
    BIO_free(b);
    EVP_PKEY *back = NULL;
    assert_int_equal(cit__pubkey_from_der(&back, der, dl), 0);
    assert_int_equal(EVP_PKEY_eq(back, pk), 1);
    EVP_PKEY_free(back);
    back = NULL;
    /* trailing bytes: refused */
    uint8_t *longer = malloc(dl + 1);
    memcpy(longer, der, dl);
    longer[dl] = 0;
    assert_int_equal(cit__pubkey_from_der(&back, longer, dl + 1), CIT_E_INPUT_INVALID);
    assert_null(back);
    free(longer);
    /* a point off the curve: the shortcut refuses it, and so does OpenSSL */
    der[dl - 1] ^= 0x01;
    assert_int_equal(cit__pubkey_from_der(&back, der, dl), CIT_E_INPUT_INVALID);
    assert_null(back);
    char *b64 = NULL;
    assert_int_equal(cit__base64_encode(&b64, der, dl), 0);
    char bad[512];
    snprintf(bad, sizeof bad, "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", b64);
    assert_int_equal(cit__pubkey_from_pem(&back, bad, strlen(bad)), CIT_E_INPUT_INVALID);
    assert_null(back);
    ERR_clear_error();
    free(b64);
    free(der);
    free(pem);
    OPENSSL_free(ossl);
}

static void test_fast_spki(void **state) {
    check_fast_spki(key_p256);
    check_fast_spki(key_p384);
    /* not shortcut: the same answers through OpenSSL */
    uint8_t *der = NULL;
    size_t dl = 0;
    EVP_PKEY *back = NULL;
    assert_int_equal(cit__pubkey_der(&der, &dl, key_rsa), 0);
    assert_int_equal(cit__pubkey_from_der(&back, der, dl), 0);
    assert_int_equal(EVP_PKEY_eq(back, key_rsa), 1);
    EVP_PKEY_free(back);
    free(der);
    /* a PEM block after other text is still read (OpenSSL's reader) */
    char *pem = NULL, text[1024];
    assert_int_equal(cit__pubkey_pem(&pem, key_p256), 0);
    snprintf(text, sizeof text, "a comment line\n%s", pem);
    back = NULL;
    assert_int_equal(cit__pubkey_from_pem(&back, text, strlen(text)), 0);
    assert_int_equal(EVP_PKEY_eq(back, key_p256), 1);
    EVP_PKEY_free(back);
    free(pem);
}

static void test_pem_rejects(void **state) {
    static const char garbage[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    static const char text[] = "hello\n";
    EVP_PKEY *got = NULL;

    assert_int_equal(cit__pubkey_from_pem(&got, garbage, strlen(garbage)), CIT_E_INPUT_INVALID);
    assert_null(got);
    assert_int_equal(cit__pubkey_from_pem(&got, text, strlen(text)), CIT_E_INPUT_INVALID);
    assert_int_equal(cit__pubkey_from_pem(&got, text, 0), CIT_E_INPUT_INVALID);
    assert_null(got);
    /* The OpenSSL queue is drained into the error, not left behind. */
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---- OpenSSH ------------------------------------------------------------------------------ */

static void check_openssh(EVP_PKEY *pk, const char *type, int bits, const char *ssh_type) {
    char dir[] = "/tmp/test-crypto-XXXXXX", path[64], cmd[160], want[160];
    char *line = NULL, *fp = NULL, *pem = NULL, *listing, *exported;
    int st_list, st_export;
    FILE *f;

    assert_int_equal(cit__pubkey_openssh(&line, pk, "alice@example"), 0);
    assert_int_equal(strncmp(line, type, strlen(type)), 0);
    assert_int_equal(line[strlen(type)], ' ');
    assert_int_equal(line[strlen(line) - 1], '\n');
    assert_non_null(strstr(line, " alice@example\n"));
    assert_int_equal(cit__pubkey_ssh_fingerprint(&fp, pk), 0);
    assert_int_equal(strncmp(fp, "SHA256:", 7), 0);
    assert_int_equal(strlen(fp), 7 + 43);
    assert_null(strchr(fp, '='));

    if (!have_ssh_keygen()) {
        free(line);
        free(fp);
        skip();
    }
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/key.pub", dir);
    f = fopen(path, "we");
    assert_non_null(f);
    assert_true(fputs(line, f) >= 0);
    assert_int_equal(fclose(f), 0);

    /* `ssh-keygen -l` prints "BITS SHA256:... COMMENT (TYPE)". ssh-keygen also re-exports the
     * key it parsed from our line as SPKI, which must be the same key. */
    snprintf(cmd, sizeof(cmd), "ssh-keygen -l -f '%s'", path);
    listing = run(cmd, &st_list);
    snprintf(cmd, sizeof(cmd), "ssh-keygen -e -m PKCS8 -f '%s'", path);
    exported = run(cmd, &st_export);
    /* Clean up before asserting, so a failure leaves nothing behind. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);

    assert_int_equal(st_list, 0);
    snprintf(want, sizeof(want), "%d %s alice@example (%s)\n", bits, fp, ssh_type);
    assert_string_equal(listing, want);
    assert_int_equal(st_export, 0);
    assert_int_equal(cit__pubkey_pem(&pem, pk), 0);
    assert_string_equal(exported, pem);

    free(exported);
    free(listing);
    free(pem);
    free(fp);
    free(line);
}

static void test_openssh(void **state) {
    check_openssh(key_p256, "ecdsa-sha2-nistp256", 256, "ECDSA");
    check_openssh(key_p384, "ecdsa-sha2-nistp384", 384, "ECDSA");
    check_openssh(key_p521, "ecdsa-sha2-nistp521", 521, "ECDSA");
    check_openssh(key_rsa, "ssh-rsa", 2048, "RSA");
}

static void test_openssh_comment(void **state) {
    char *line = NULL;
    assert_int_equal(cit__pubkey_openssh(&line, key_p256, NULL), 0);
    assert_int_equal(strncmp(line, "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYA", 52), 0);
    assert_ptr_equal(strchr(line, ' '), strrchr(line, ' ')); /* no comment field */
    free(line);
    line = NULL;
    assert_int_equal(cit__pubkey_openssh(&line, key_p256, "a\nb"), CIT_E_INPUT_INVALID);
    assert_null(line);
}

static void test_export_unsupported(void **state) {
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED448"); /* Ed25519 is supported (RFC 8037/8709) */
    char *s = NULL;
    json_t *j = NULL;
    assert_non_null(k1);
    assert_non_null(ed);
    assert_int_equal(cit__pubkey_openssh(&s, k1, NULL), CIT_E_EXPORT_UNSUPPORTED);
    assert_int_equal(cit__pubkey_ssh_fingerprint(&s, ed), CIT_E_EXPORT_UNSUPPORTED);
    assert_int_equal(cit__pubkey_jwk(&j, k1), CIT_E_EXPORT_UNSUPPORTED);
    assert_int_equal(cit__pubkey_jwk(&j, ed), CIT_E_EXPORT_UNSUPPORTED);
    assert_null(s);
    assert_null(j);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(ed);
}

/* ---- JWK ---------------------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    assert_non_null(v);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* RFC 8037 A.1/A.3: the Ed25519 key's JWK and its RFC 7638 thumbprint; RFC 8709: the ssh-ed25519
 * blob (string "ssh-ed25519", string key). */
static void test_ed25519_jwk_rfc8037_and_ssh(void **state) {
    static const uint8_t pub[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
                                    0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
                                    0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof pub);
    assert_non_null(pk);
    json_t *j = NULL;
    assert_int_equal(cit__pubkey_jwk(&j, pk), 0);
    assert_string_equal(jstr(j, "kty"), "OKP");
    assert_string_equal(jstr(j, "crv"), "Ed25519");
    assert_string_equal(jstr(j, "x"), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    assert_string_equal(jstr(j, "kid"), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    assert_null(json_object_get(j, "y"));
    json_decref(j);
    char *line = NULL;
    assert_int_equal(cit__pubkey_openssh(&line, pk, "c"), 0);
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    assert_true(strncmp(line, "ssh-ed25519 ", 12) == 0);
    char *b64 = strdup(line + 12);
    *strchr(b64, ' ') = 0;
    assert_int_equal(cit__base64_decode(&blob, &blob_len, b64), 0);
    assert_int_equal(blob_len, 4 + 11 + 4 + 32);
    assert_memory_equal(blob, "\0\0\0\x0bssh-ed25519\0\0\0\x20", 19);
    assert_memory_equal(blob + 19, pub, 32);
    free(blob);
    free(b64);
    free(line);
    EVP_PKEY_free(pk);
}

static void test_jwk_ec(void **state) {
    json_t *j = NULL;
    uint8_t x[32], y[32], *dx = NULL, *dy = NULL, md[EVP_MAX_MD_SIZE];
    size_t dx_len = 0, dy_len = 0, md_len = 0;
    char canon[256], *kid = NULL;

    assert_int_equal(cit__pubkey_jwk(&j, key_p256), 0);
    assert_string_equal(jstr(j, "kty"), "EC");
    assert_string_equal(jstr(j, "crv"), "P-256");
    assert_int_equal(strlen(jstr(j, "x")), 43);
    assert_int_equal(strlen(jstr(j, "y")), 43);
    assert_null(json_object_get(j, "d"));

    bn_param_bytes(key_p256, OSSL_PKEY_PARAM_EC_PUB_X, x, 32);
    bn_param_bytes(key_p256, OSSL_PKEY_PARAM_EC_PUB_Y, y, 32);
    assert_int_equal(cit__base64_decode(&dx, &dx_len, jstr(j, "x")), 0);
    assert_int_equal(cit__base64_decode(&dy, &dy_len, jstr(j, "y")), 0);
    assert_int_equal(dx_len, 32);
    assert_int_equal(dy_len, 32);
    assert_memory_equal(dx, x, 32);
    assert_memory_equal(dy, y, 32);

    /* kid is the RFC 7638 thumbprint of the required members. */
    snprintf(canon, sizeof(canon), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
             jstr(j, "x"), jstr(j, "y"));
    assert_int_equal(cit__digest(TPM2_ALG_SHA256, (uint8_t *)canon, strlen(canon), md, &md_len), 0);
    assert_int_equal(cit__base64url_encode(&kid, md, md_len), 0);
    assert_string_equal(jstr(j, "kid"), kid);
    free(kid);
    free(dx);
    free(dy);
    json_decref(j);

    j = NULL;
    assert_int_equal(cit__pubkey_jwk(&j, key_p384), 0);
    assert_string_equal(jstr(j, "crv"), "P-384");
    assert_int_equal(strlen(jstr(j, "x")), 64);
    json_decref(j);
    j = NULL;
    assert_int_equal(cit__pubkey_jwk(&j, key_p521), 0);
    assert_string_equal(jstr(j, "crv"), "P-521");
    assert_int_equal(strlen(jstr(j, "y")), 88);
    json_decref(j);
}

static void test_jwk_ec_vector(void **state) {
    /* P-256 example with a known thumbprint (panva/jose documentation). */
    static const char *xs = "jJ6Flys3zK9jUhnOHf6G49Dyp5hah6CNP84-gY-n9eo";
    static const char *ys = "nhI6iD5eFXgBTLt_1p3aip-5VbZeMhxeFSpjfEAf7Ww";
    TPM2B_PUBLIC pub = {0};
    uint8_t *x = NULL, *y = NULL;
    size_t x_len = 0, y_len = 0;
    EVP_PKEY *pk = NULL;
    json_t *j = NULL;

    assert_int_equal(cit__base64_decode(&x, &x_len, xs), 0);
    assert_int_equal(cit__base64_decode(&y, &y_len, ys), 0);
    assert_int_equal(x_len, 32);
    assert_int_equal(y_len, 32);
    pub.publicArea.type = TPM2_ALG_ECC;
    pub.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    memcpy(pub.publicArea.unique.ecc.x.buffer, x, 32);
    memcpy(pub.publicArea.unique.ecc.y.buffer, y, 32);
    pub.publicArea.unique.ecc.x.size = 32;
    pub.publicArea.unique.ecc.y.size = 32;
    assert_int_equal(cit__pubkey_from_tpm(&pk, &pub), 0);
    assert_int_equal(cit__pubkey_jwk(&j, pk), 0);
    assert_string_equal(jstr(j, "x"), xs);
    assert_string_equal(jstr(j, "y"), ys);
    assert_string_equal(jstr(j, "kid"), "w9eYdC6_s_tLQ8lH6PUpc0mddazaqtPgeC2IgWDiqY8");
    json_decref(j);
    EVP_PKEY_free(pk);
    free(x);
    free(y);
}

static void test_jwk_rsa_rfc7638(void **state) {
    /* RFC 7638 section 3.1 */
    static const char *n64 =
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
        "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"
        "65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrd"
        "kt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-"
        "kEgU8awapJzKnqDKgw";
    uint8_t *n = NULL;
    size_t n_len = 0;
    BIGNUM *bn_n, *bn_e;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pk = NULL;
    json_t *j = NULL;

    assert_int_equal(cit__base64_decode(&n, &n_len, n64), 0);
    assert_int_equal(n_len, 256);
    bn_n = BN_bin2bn(n, (int)n_len, NULL);
    bn_e = BN_new();
    assert_non_null(bn_n);
    assert_non_null(bn_e);
    assert_int_equal(BN_set_word(bn_e, 65537), 1);
    assert_non_null(bld);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e), 1);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_non_null(params);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);

    assert_int_equal(cit__pubkey_jwk(&j, pk), 0);
    assert_string_equal(jstr(j, "kty"), "RSA");
    assert_string_equal(jstr(j, "n"), n64);
    assert_string_equal(jstr(j, "e"), "AQAB");
    assert_string_equal(jstr(j, "kid"), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    assert_null(json_object_get(j, "crv"));

    json_decref(j);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
}

static void test_jwk_rsa(void **state) {
    json_t *j = NULL;
    assert_int_equal(cit__pubkey_jwk(&j, key_rsa), 0);
    assert_string_equal(jstr(j, "kty"), "RSA");
    assert_string_equal(jstr(j, "e"), "AQAB");
    assert_int_equal(strlen(jstr(j, "n")), 342); /* 256 bytes, no padding */
    assert_int_equal(strlen(jstr(j, "kid")), 43);
    json_decref(j);
}

/* ---- hashes ------------------------------------------------------------------------------- */

static void test_hash(void **state) {
    TPMI_ALG_HASH alg = 0;
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;
    char *hex;

    assert_int_equal(cit__hash_from_name("sha256", &alg), 0);
    assert_int_equal(alg, TPM2_ALG_SHA256);
    assert_int_equal(cit__hash_from_name("SHA384", &alg), 0);
    assert_int_equal(alg, TPM2_ALG_SHA384);
    assert_int_equal(cit__hash_from_name("sha1", &alg), 0);
    assert_int_equal(alg, TPM2_ALG_SHA1);
    assert_int_equal(cit__hash_from_name("sha512", &alg), 0);
    assert_int_equal(alg, TPM2_ALG_SHA512);
    assert_int_equal(cit__hash_from_name("md5", &alg), CIT_E_ALG_UNSUPPORTED);
    assert_int_equal(alg, TPM2_ALG_SHA512);

    assert_string_equal(cit__hash_name(TPM2_ALG_SHA256), "sha256");
    assert_null(cit__hash_name(TPM2_ALG_SM3_256));
    assert_true(EVP_MD_is_a(cit__hash_md(TPM2_ALG_SHA384), "SHA2-384"));
    assert_ptr_equal(cit__hash_md(TPM2_ALG_SHA384), cit__hash_md(TPM2_ALG_SHA384)); /* fetched once */
    assert_null(cit__hash_md(TPM2_ALG_NULL));
    assert_int_equal(cit__hash_size(TPM2_ALG_SHA1), 20);
    assert_int_equal(cit__hash_size(TPM2_ALG_SHA512), 64);
    assert_int_equal(cit__hash_size(TPM2_ALG_NULL), 0);

    assert_int_equal(cit__digest(TPM2_ALG_SHA256, (const uint8_t *)"abc", 3, md, &md_len), 0);
    assert_int_equal(md_len, 32);
    hex = cit_hex_encode(md, md_len);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(hex);
    assert_int_equal(cit__digest(TPM2_ALG_SHA256, NULL, 0, md, &md_len), 0);
    hex = cit_hex_encode(md, md_len);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    free(hex);
    assert_int_equal(cit__digest(TPM2_ALG_NULL, (const uint8_t *)"abc", 3, md, &md_len),
                     CIT_E_ALG_UNSUPPORTED);
}

/* ---- signatures --------------------------------------------------------------------------- */

static void check_ecdsa(EVP_PKEY *pk, TPMI_ALG_HASH hash, size_t bytes) {
    uint8_t dg[EVP_MAX_MD_SIZE], *der = NULL, *enc = NULL, *raw = NULL, *bad;
    size_t dg_len = 0, der_len = 0, enc_len = 0, raw_len = 0;
    TPMT_SIGNATURE ts;

    assert_int_equal(cit__digest(hash, (const uint8_t *)"release.tar", 11, dg, &dg_len), 0);
    sign_digest(pk, cit__hash_md(hash), 0, dg, dg_len, &der, &der_len);
    tpm_sig_from_der(&ts, der, der_len, hash, bytes);

    /* DER round trip: the exact bytes OpenSSL produced. */
    assert_int_equal(cit__sig_encode(&enc, &enc_len, &ts, CIT_SIG_ENC_DER, bytes), 0);
    assert_int_equal(enc_len, der_len);
    assert_memory_equal(enc, der, der_len);

    /* Raw r||s, each exactly the curve size. */
    assert_int_equal(cit__sig_encode(&raw, &raw_len, &ts, CIT_SIG_ENC_RAW, bytes), 0);
    assert_int_equal(raw_len, 2 * bytes);
    assert_memory_equal(raw, ts.signature.ecdsa.signatureR.buffer, bytes);
    assert_memory_equal(raw + bytes, ts.signature.ecdsa.signatureS.buffer, bytes);

    assert_int_equal(
        cit__sig_verify(pk, CIT_SCHEME_ECDSA, hash, dg, dg_len, enc, enc_len, CIT_SIG_ENC_DER), 0);
    assert_int_equal(
        cit__sig_verify(pk, CIT_SCHEME_ECDSA, hash, dg, dg_len, raw, raw_len, CIT_SIG_ENC_RAW), 0);

    /* One flipped byte anywhere: signature, or the digest. */
    bad = malloc(enc_len);
    assert_non_null(bad);
    memcpy(bad, enc, enc_len);
    bad[enc_len - 1] ^= 0x01;
    assert_int_equal(
        cit__sig_verify(pk, CIT_SCHEME_ECDSA, hash, dg, dg_len, bad, enc_len, CIT_SIG_ENC_DER),
        CIT_E_SIGNATURE_INVALID);
    assert_int_equal(cit_error_last()->code, CIT_E_SIGNATURE_INVALID);
    bad[enc_len - 1] ^= 0x01;
    bad[1] ^= 0x40; /* breaks the DER length: unparsable */
    assert_int_equal(
        cit__sig_verify(pk, CIT_SCHEME_ECDSA, hash, dg, dg_len, bad, enc_len, CIT_SIG_ENC_DER),
        CIT_E_SIGNATURE_INVALID);
    free(bad);

    raw[bytes / 2] ^= 0x80;
    assert_int_equal(
        cit__sig_verify(pk, CIT_SCHEME_ECDSA, hash, dg, dg_len, raw, raw_len, CIT_SIG_ENC_RAW),
        CIT_E_SIGNATURE_INVALID);
    raw[bytes / 2] ^= 0x80;
    assert_int_equal(
        cit__sig_verify(pk, CIT_SCHEME_ECDSA, hash, dg, dg_len, raw, raw_len - 1, CIT_SIG_ENC_RAW),
        CIT_E_SIGNATURE_INVALID);
    dg[0] ^= 0x01;
    assert_int_equal(
        cit__sig_verify(pk, CIT_SCHEME_ECDSA, hash, dg, dg_len, enc, enc_len, CIT_SIG_ENC_DER),
        CIT_E_SIGNATURE_INVALID);
    assert_int_equal(ERR_peek_error(), 0);

    free(raw);
    free(enc);
    free(der);
}

static void test_ecdsa(void **state) {
    check_ecdsa(key_p256, TPM2_ALG_SHA256, 32);
    check_ecdsa(key_p384, TPM2_ALG_SHA384, 48);
    check_ecdsa(key_p521, TPM2_ALG_SHA512, 66);
}

/* The ECDSA DER encoder writes the bytes directly: it must equal i2d_ECDSA_SIG for r and s of
 * every shape (leading zeros, high bit set, one byte, P-521 lengths with long-form lengths). */
static void test_ecdsa_der_matches_openssl(void **state) {
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (int k = 0; k < 4000; k++) {
        TPMT_SIGNATURE ts = {0};
        ts.sigAlg = TPM2_ALG_ECDSA;
        ts.signature.ecdsa.hash = TPM2_ALG_SHA256;
        TPM2B_ECC_PARAMETER *parts[2] = {&ts.signature.ecdsa.signatureR, &ts.signature.ecdsa.signatureS};
        for (int p = 0; p < 2; p++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t n = 1 + (size_t)(x % 66);
            parts[p]->size = (UINT16)n;
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                parts[p]->buffer[i] = (uint8_t)x;
            }
            if (k % 5 == 1) /* leading zero bytes */
                memset(parts[p]->buffer, 0, n / 2);
            if (k % 7 == 2) /* the high bit */
                parts[p]->buffer[0] |= 0x80;
            if (k % 11 == 3 && n > 1) /* a zero with a set high bit after it */
                parts[p]->buffer[0] = 0, parts[p]->buffer[1] |= 0x80;
        }
        uint8_t *enc = NULL;
        size_t enc_len = 0;
        assert_int_equal(cit__sig_encode(&enc, &enc_len, &ts, CIT_SIG_ENC_DER, 66), 0);
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(parts[0]->buffer, parts[0]->size, NULL), *s = BN_bin2bn(parts[1]->buffer, parts[1]->size, NULL);
        assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
        uint8_t *want = NULL;
        int wl = i2d_ECDSA_SIG(es, &want);
        assert_true(wl > 0);
        assert_int_equal(enc_len, (size_t)wl);
        assert_memory_equal(enc, want, enc_len);
        OPENSSL_free(want);
        ECDSA_SIG_free(es);
        free(enc);
    }
}

/* The PEM written directly for P-256/P-384 TPM publics equals OpenSSL's, with coordinates the
 * TPM gave with their leading zero bytes stripped too; RSA goes through OpenSSL. */
static void test_tpm_public_pem_matches_openssl(void **state) {
    const char *curves[2] = {"P-256", "P-384"};
    TPM2_ECC_CURVE ids[2] = {TPM2_ECC_NIST_P256, TPM2_ECC_NIST_P384};
    for (int c = 0; c < 2; c++) {
        size_t cs = c ? 48 : 32;
        for (int k = 0; k < 40; k++) {
            EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[c]);
            assert_non_null(pk);
            BIGNUM *x = NULL, *y = NULL;
            assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
            assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
            TPM2B_PUBLIC pub = {0};
            pub.publicArea.type = TPM2_ALG_ECC;
            pub.publicArea.nameAlg = TPM2_ALG_SHA256;
            pub.publicArea.parameters.eccDetail.curveID = ids[c];
            pub.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
            pub.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
            pub.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
            /* full size, or (every other key) without leading zeros as BN_bn2bin gives them */
            if (k % 2) {
                pub.publicArea.unique.ecc.x.size = (UINT16)BN_bn2bin(x, pub.publicArea.unique.ecc.x.buffer);
                pub.publicArea.unique.ecc.y.size = (UINT16)BN_bn2bin(y, pub.publicArea.unique.ecc.y.buffer);
            } else {
                pub.publicArea.unique.ecc.x.size = (UINT16)cs;
                pub.publicArea.unique.ecc.y.size = (UINT16)cs;
                assert_int_equal(BN_bn2binpad(x, pub.publicArea.unique.ecc.x.buffer, (int)cs), (int)cs);
                assert_int_equal(BN_bn2binpad(y, pub.publicArea.unique.ecc.y.buffer, (int)cs), (int)cs);
            }
            char *mine = NULL, *theirs = NULL;
            assert_int_equal(cit__tpm_public_pem(&mine, &pub), 0);
            assert_int_equal(cit__pubkey_pem(&theirs, pk), 0);
            assert_string_equal(mine, theirs);
            free(mine);
            free(theirs);
            BN_free(x);
            BN_free(y);
            EVP_PKEY_free(pk);
        }
    }
    /* an RSA public goes through OpenSSL */
    TPM2B_PUBLIC rsa = {0};
    rsa.publicArea.type = TPM2_ALG_RSA;
    rsa.publicArea.parameters.rsaDetail.keyBits = 2048;
    rsa.publicArea.unique.rsa.size = 256;
    memset(rsa.publicArea.unique.rsa.buffer, 0xc5, 256);
    char *pem = NULL;
    assert_int_equal(cit__tpm_public_pem(&pem, &rsa), 0);
    assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
    free(pem);
}

static void test_ecdsa_short_components(void **state) {
    /* A TPM may return r or s without leading zeros; raw output must still be full size. */
    TPMT_SIGNATURE ts = {0};
    uint8_t *out = NULL;
    size_t len = 0;

    ts.sigAlg = TPM2_ALG_ECDSA;
    ts.signature.ecdsa.hash = TPM2_ALG_SHA256;
    ts.signature.ecdsa.signatureR.size = 2;
    ts.signature.ecdsa.signatureR.buffer[0] = 0x01;
    ts.signature.ecdsa.signatureR.buffer[1] = 0x02;
    ts.signature.ecdsa.signatureS.size = 33; /* with a leading zero */
    ts.signature.ecdsa.signatureS.buffer[1] = 0xff;
    ts.signature.ecdsa.signatureS.buffer[32] = 0x07;
    assert_int_equal(cit__sig_encode(&out, &len, &ts, CIT_SIG_ENC_RAW, 32), 0);
    assert_int_equal(len, 64);
    assert_int_equal(out[30], 0x01);
    assert_int_equal(out[31], 0x02);
    assert_int_equal(out[32], 0xff);
    assert_int_equal(out[63], 0x07);
    free(out);
    out = NULL;

    ts.signature.ecdsa.signatureS.buffer[0] = 0x01; /* now really 33 bytes */
    assert_int_equal(cit__sig_encode(&out, &len, &ts, CIT_SIG_ENC_RAW, 32), CIT_E_INPUT_INVALID);
    assert_null(out);

    ts.sigAlg = TPM2_ALG_SM2;
    assert_int_equal(cit__sig_encode(&out, &len, &ts, CIT_SIG_ENC_DER, 32), CIT_E_ALG_UNSUPPORTED);
    assert_null(out);
}

static void check_rsa(int padding, cit_sig_scheme scheme) {
    uint8_t dg[EVP_MAX_MD_SIZE], *sig = NULL, *enc = NULL;
    size_t dg_len = 0, sig_len = 0, enc_len = 0;
    TPMT_SIGNATURE ts = {0};

    assert_int_equal(cit__digest(TPM2_ALG_SHA256, (const uint8_t *)"hello", 5, dg, &dg_len), 0);
    sign_digest(key_rsa, EVP_sha256(), padding, dg, dg_len, &sig, &sig_len);
    assert_int_equal(sig_len, 256);

    if (scheme == CIT_SCHEME_RSASSA) {
        ts.sigAlg = TPM2_ALG_RSASSA;
        ts.signature.rsassa.hash = TPM2_ALG_SHA256;
        memcpy(ts.signature.rsassa.sig.buffer, sig, sig_len);
        ts.signature.rsassa.sig.size = (UINT16)sig_len;
    } else {
        ts.sigAlg = TPM2_ALG_RSAPSS;
        ts.signature.rsapss.hash = TPM2_ALG_SHA256;
        memcpy(ts.signature.rsapss.sig.buffer, sig, sig_len);
        ts.signature.rsapss.sig.size = (UINT16)sig_len;
    }
    assert_int_equal(cit__sig_encode(&enc, &enc_len, &ts, CIT_SIG_ENC_DER, 0), 0);
    assert_int_equal(enc_len, sig_len);
    assert_memory_equal(enc, sig, sig_len);

    assert_int_equal(cit__sig_verify(key_rsa, scheme, TPM2_ALG_SHA256, dg, dg_len, enc, enc_len,
                                     CIT_SIG_ENC_DER),
                     0);
    /* The other RSA scheme must not accept it. */
    assert_int_equal(
        cit__sig_verify(key_rsa,
                        scheme == CIT_SCHEME_RSASSA ? CIT_SCHEME_RSAPSS : CIT_SCHEME_RSASSA,
                        TPM2_ALG_SHA256, dg, dg_len, enc, enc_len, CIT_SIG_ENC_DER),
        CIT_E_SIGNATURE_INVALID);
    enc[100] ^= 0x04;
    assert_int_equal(cit__sig_verify(key_rsa, scheme, TPM2_ALG_SHA256, dg, dg_len, enc, enc_len,
                                     CIT_SIG_ENC_DER),
                     CIT_E_SIGNATURE_INVALID);
    enc[100] ^= 0x04;
    assert_int_equal(cit__sig_verify(key_rsa, scheme, TPM2_ALG_SHA256, dg, dg_len, enc, enc_len - 1,
                                     CIT_SIG_ENC_DER),
                     CIT_E_SIGNATURE_INVALID);
    assert_int_equal(ERR_peek_error(), 0);

    free(enc);
    free(sig);
}

static void test_rsa_pkcs1(void **state) { check_rsa(RSA_PKCS1_PADDING, CIT_SCHEME_RSASSA); }

static void test_rsa_pss(void **state) { check_rsa(RSA_PKCS1_PSS_PADDING, CIT_SCHEME_RSAPSS); }

static void test_rsa_pss_max_salt(void **state) {
    /* Salt length "auto" also accepts the maximum salt some signers use. */
    uint8_t dg[32], *sig = NULL;
    size_t sig_len = 0, dg_len = 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key_rsa, NULL);

    assert_int_equal(cit__digest(TPM2_ALG_SHA256, (const uint8_t *)"x", 1, dg, &dg_len), 0);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_true(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_MAX) > 0);
    assert_int_equal(EVP_PKEY_sign(ctx, NULL, &sig_len, dg, dg_len), 1);
    sig = malloc(sig_len);
    assert_non_null(sig);
    assert_int_equal(EVP_PKEY_sign(ctx, sig, &sig_len, dg, dg_len), 1);
    assert_int_equal(cit__sig_verify(key_rsa, CIT_SCHEME_RSAPSS, TPM2_ALG_SHA256, dg, dg_len, sig,
                                     sig_len, CIT_SIG_ENC_DER),
                     0);
    free(sig);
    EVP_PKEY_CTX_free(ctx);
}

static void test_verify_misuse(void **state) {
    uint8_t dg[32] = {0}, sig[64] = {0};

    assert_int_equal(cit__sig_verify(key_rsa, CIT_SCHEME_ECDSA, TPM2_ALG_SHA256, dg, 32, sig, 64,
                                     CIT_SIG_ENC_RAW),
                     CIT_E_ALG_UNSUPPORTED);
    assert_int_equal(cit__sig_verify(key_p256, CIT_SCHEME_RSASSA, TPM2_ALG_SHA256, dg, 32, sig, 64,
                                     CIT_SIG_ENC_DER),
                     CIT_E_ALG_UNSUPPORTED);
    assert_int_equal(cit__sig_verify(key_p256, CIT_SCHEME_ECDSA, TPM2_ALG_SHA256, dg, 20, sig, 64,
                                     CIT_SIG_ENC_RAW),
                     CIT_E_INPUT_INVALID);
    assert_int_equal(cit__sig_verify(key_p256, CIT_SCHEME_ECDSA, TPM2_ALG_NULL, dg, 32, sig, 64,
                                     CIT_SIG_ENC_RAW),
                     CIT_E_ALG_UNSUPPORTED);
    /* Zero r and s, and garbage DER, are invalid signatures rather than crashes. */
    assert_int_equal(cit__sig_verify(key_p256, CIT_SCHEME_ECDSA, TPM2_ALG_SHA256, dg, 32, sig, 64,
                                     CIT_SIG_ENC_RAW),
                     CIT_E_SIGNATURE_INVALID);
    assert_int_equal(cit__sig_verify(key_p256, CIT_SCHEME_ECDSA, TPM2_ALG_SHA256, dg, 32, sig, 64,
                                     CIT_SIG_ENC_DER),
                     CIT_E_SIGNATURE_INVALID);
    assert_int_equal(cit__sig_verify(key_p256, CIT_SCHEME_ECDSA, TPM2_ALG_SHA256, dg, 32, sig, 0,
                                     CIT_SIG_ENC_DER),
                     CIT_E_SIGNATURE_INVALID);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---- base64 ------------------------------------------------------------------------------- */

static void test_base64_vectors(void **state) {
    /* RFC 4648 section 10 */
    static const struct {
        const char *in, *b64, *url;
    } v[] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *s = NULL;
        uint8_t *b = NULL;
        size_t len = 0;
        assert_int_equal(cit__base64_encode(&s, (const uint8_t *)v[i].in, strlen(v[i].in)), 0);
        assert_string_equal(s, v[i].b64);
        free(s);
        assert_int_equal(cit__base64url_encode(&s, (const uint8_t *)v[i].in, strlen(v[i].in)), 0);
        assert_string_equal(s, v[i].url);
        free(s);
        assert_int_equal(cit__base64_decode(&b, &len, v[i].b64), 0);
        assert_int_equal(len, strlen(v[i].in));
        assert_memory_equal(b, v[i].in, len);
        free(b);
        assert_int_equal(cit__base64_decode(&b, &len, v[i].url), 0);
        assert_int_equal(len, strlen(v[i].in));
        assert_memory_equal(b, v[i].in, len);
        free(b);
    }
}

static void test_base64_alphabets(void **state) {
    static const uint8_t in[] = {0xfb, 0xff, 0xbf, 0xfe};
    char *s = NULL;
    uint8_t *b = NULL;
    size_t len = 0;

    assert_int_equal(cit__base64_encode(&s, in, sizeof(in)), 0);
    assert_string_equal(s, "+/+//g==");
    free(s);
    assert_int_equal(cit__base64url_encode(&s, in, sizeof(in)), 0);
    assert_string_equal(s, "-_-__g");
    free(s);
    assert_int_equal(cit__base64_decode(&b, &len, "+/+/\n/g==\r\n"), 0);
    assert_int_equal(len, sizeof(in));
    assert_memory_equal(b, in, sizeof(in));
    free(b);
    b = NULL;

    assert_int_equal(cit__base64_decode(&b, &len, "Zm9v!"), CIT_E_INPUT_INVALID);
    assert_int_equal(cit__base64_decode(&b, &len, "Zm9vY"), CIT_E_INPUT_INVALID);
    assert_int_equal(cit__base64_decode(&b, &len, "Zg=a"), CIT_E_INPUT_INVALID);
    assert_int_equal(cit__base64_decode(&b, &len, "Zg="), CIT_E_INPUT_INVALID);
    assert_int_equal(cit__base64_decode(&b, &len, "Zm9v===="), CIT_E_INPUT_INVALID);
    assert_null(b);
}

static void test_base64_round_trip(void **state) {
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(buf); n += (n < 70 ? 1 : 23)) {
        char *s = NULL, *u = NULL;
        uint8_t *b = NULL;
        size_t len = 0;
        assert_int_equal(cit__base64_encode(&s, buf, n), 0);
        assert_int_equal(strlen(s), (n + 2) / 3 * 4);
        assert_null(strchr(s, '\n'));
        assert_int_equal(cit__base64_decode(&b, &len, s), 0);
        assert_int_equal(len, n);
        assert_memory_equal(b, buf, n);
        free(b);
        assert_int_equal(cit__base64url_encode(&u, buf, n), 0);
        assert_null(strpbrk(u, "+/="));
        assert_int_equal(cit__base64_decode(&b, &len, u), 0);
        assert_int_equal(len, n);
        assert_memory_equal(b, buf, n);
        free(b);
        free(s);
        free(u);
    }
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_openssl_error(void **state) {
    const cit_error *e;
    int found = 0;

    /* Provoke a real OpenSSL error: a curve that does not exist. */
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "no-such-curve");
    assert_null(pk);
    assert_int_not_equal(ERR_peek_error(), 0);
    assert_int_equal(cit__openssl_error(CIT_E_CRYPTO, "key generation failed"), CIT_E_CRYPTO);
    assert_int_equal(ERR_peek_error(), 0);
    e = cit_error_last();
    assert_int_equal(e->code, CIT_E_CRYPTO);
    assert_string_equal(e->message, "key generation failed");
    for (int i = 0; i < e->n_context; i++)
        if (strcmp(e->context_key[i], "openssl") == 0 && strstr(e->context_val[i], "error:"))
            found = 1;
    assert_true(found);

    /* Nothing queued: no empty context. */
    assert_int_equal(cit__openssl_error(CIT_E_CRYPTO, "plain"), CIT_E_CRYPTO);
    assert_int_equal(cit_error_last()->n_context, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ec_from_tpm),
        cmocka_unit_test(test_ec_from_tpm_short_coordinates),
        cmocka_unit_test(test_ec_from_tpm_rejects),
        cmocka_unit_test(test_rsa_from_tpm),
        cmocka_unit_test(test_pem_der),
        cmocka_unit_test(test_pem_rejects),
        cmocka_unit_test(test_fast_spki),
        cmocka_unit_test(test_openssh),
        cmocka_unit_test(test_openssh_comment),
        cmocka_unit_test(test_export_unsupported),
        cmocka_unit_test(test_jwk_ec),
        cmocka_unit_test(test_ed25519_jwk_rfc8037_and_ssh),
        cmocka_unit_test(test_jwk_ec_vector),
        cmocka_unit_test(test_jwk_rsa_rfc7638),
        cmocka_unit_test(test_jwk_rsa),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_ecdsa),
        cmocka_unit_test(test_ecdsa_short_components),
        cmocka_unit_test(test_ecdsa_der_matches_openssl),
        cmocka_unit_test(test_tpm_public_pem_matches_openssl),
        cmocka_unit_test(test_rsa_pkcs1),
        cmocka_unit_test(test_rsa_pss),
        cmocka_unit_test(test_rsa_pss_max_salt),
        cmocka_unit_test(test_verify_misuse),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_alphabets),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_openssl_error),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
