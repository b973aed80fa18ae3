/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the certificate authority through the library on a vTPM workspace in a
 * temporary directory: the software CA key decrypts (by this test's own reading of the format
 * docs/ca.md documents) to the CA certificate's key, and neither its PKCS#8 encoding nor its
 * private scalar is in any file of the workspace; the API the enrollment server uses
 * (open/issue_key/issue_csr/revoke/cert_status/crl/trust_bundle). */
#define _GNU_SOURCE /* memmem */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "basic/util.h"
#include "citadel/citadel.h"
#include "core/ctx.h"
#include "core/sealed.h"

#include "vtpm_fixture.h"

static bool file_contains(const char *path, const void *needle, size_t n) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (cit_read_file(path, 256u << 20, &buf, &len) < 0)
        return false;
    bool found = memmem(buf, len, needle, n) != NULL;
    free(buf);
    return found;
}

static void make_ca(cit_ctx *ctx, const char *name, const char *parent, bool tpm, char **pem) {
    json_t *out = NULL;
    cit_ca_init_options o = {.name = name, .parent = parent, .tpm = tpm};
    int r = parent ? cit_ca_intermediate(&out, ctx, &o, pem) : cit_ca_init(&out, ctx, &o, pem);
    if (r < 0)
        fail_msg("%s: %s", name, cit_error_last()->message);
    json_decref(out);
}

/* The CA's key as the store keeps it: KEK unsealed from the TPM, blob decrypted here. */
static EVP_PKEY *decrypt_ca_key(cit_ctx *ctx, const char *name, uint8_t **p8, size_t *p8len) {
    cit_store *s;
    assert_int_equal(cit__ctx_store(ctx, &s), 0);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(s->db, "SELECT key_blob, key_object FROM ca WHERE name = ?", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    size_t bl = (size_t)sqlite3_column_bytes(st, 0);
    uint8_t *blob = malloc(bl);
    memcpy(blob, sqlite3_column_blob(st, 0), bl);
    cit_object kek_o = {0};
    assert_int_equal(cit__ctx_find(ctx, (const char *)sqlite3_column_text(st, 1), &kek_o), 0);
    sqlite3_finalize(st);
    uint8_t kek[CIT_KEK_BYTES];
    assert_int_equal(cit__kek_unseal(ctx, &kek_o, kek_o.version, kek), 0);
    cit__object_clear(&kek_o);
    /* KEY_MAGIC (8) || nonce (24) || ciphertext+tag; AD "citadel-ca-key/v1\0" || name */
    assert_memory_equal(blob, "CITCAK1", 8);
    uint8_t ad[64];
    memcpy(ad, "citadel-ca-key/v1", 18);
    memcpy(ad + 18, name, strlen(name));
    size_t n = 8 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    uint8_t *plain = malloc(bl);
    unsigned long long pl = 0;
    assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &pl, NULL, blob + n, bl - n, ad,
                                                                18 + strlen(name), blob + 8, kek),
                     0);
    sodium_memzero(kek, sizeof kek);
    free(blob);
    const uint8_t *p = plain;
    PKCS8_PRIV_KEY_INFO *pi = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)pl);
    assert_non_null(pi);
    EVP_PKEY *pk = EVP_PKCS82PKEY(pi);
    PKCS8_PRIV_KEY_INFO_free(pi);
    assert_non_null(pk);
    *p8 = plain;
    *p8len = (size_t)pl;
    return pk;
}

static X509 *parse_pem(const char *pem) {
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

static void test_file_key_never_in_clear(void **state) {
    cit_ctx *ctx = open_ctx();
    char *pem = NULL;
    make_ca(ctx, "root", NULL, false, &pem);
    X509 *cert = parse_pem(pem);
    free(pem);
    uint8_t *p8 = NULL;
    size_t p8len = 0;
    EVP_PKEY *pk = decrypt_ca_key(ctx, "root", &p8, &p8len);
    assert_int_equal(EVP_PKEY_eq(pk, X509_get0_pubkey(cert)), 1); /* the key of the certificate */
    BIGNUM *priv = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 1);
    uint8_t scalar[32];
    assert_int_equal(BN_bn2binpad(priv, scalar, sizeof scalar), 32);
    char *scalar_hex = cit_hex_encode(scalar, sizeof scalar);
    BN_clear_free(priv);
    EVP_PKEY_free(pk);
    X509_free(cert);
    /* an issue and a CRL with the key, then everything on disk */
    cit_ca *ca = NULL;
    char *crl = NULL;
    json_t *out = NULL;
    assert_int_equal(cit_ca_open(&ca, ctx, "root"), 0);
    assert_int_equal(cit_ca_crl(&out, ca, &crl), 0);
    json_decref(out);
    free(crl);
    cit_ca_close(ca);
    assert_int_equal(cit_ctx_close(ctx), 0);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        files++;
        if (file_contains(p, p8, p8len))
            fail_msg("the CA key's PKCS#8 is in clear in %s", p);
        if (file_contains(p, scalar, 32) || file_contains(p, scalar, 16) || file_contains(p, scalar + 16, 16))
            fail_msg("the CA's private scalar is in clear in %s", p);
        if (file_contains(p, scalar_hex, 64))
            fail_msg("the CA's private scalar is in %s as hex", p);
        if (strcmp(e->d_name, "store.db") == 0) {
            struct stat sb;
            assert_int_equal(stat(p, &sb), 0);
            assert_int_equal(sb.st_mode & 0777, 0600);
        }
    }
    closedir(d);
    assert_true(files >= 2);
    sodium_memzero(p8, p8len);
    free(p8);
    free(scalar_hex);
}

/* The API enrolld uses: an AK certificate from DER SPKI, a DevID from a CSR, status through
 * revocation, a CRL listing it, and the KEK refused by cit_secret_unseal. */
static void test_enrollment_api(void **state) {
    cit_ctx *ctx = open_ctx();
    char *root = NULL, *inter = NULL;
    make_ca(ctx, "root", NULL, true, &root);
    make_ca(ctx, "issuing", "root", false, &inter);
    cit_ca *ca = NULL;
    assert_int_equal(cit_ca_open(&ca, ctx, "issuing"), 0);
    char *cpem = NULL;
    assert_int_equal(cit_ca_cert_pem(ca, &cpem), 0);
    assert_string_equal(cpem, inter);
    free(cpem);

    EVP_PKEY *leaf = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    uint8_t *spki = NULL;
    int sl = i2d_PUBKEY(leaf, &spki);
    assert_true(sl > 0);
    const uint8_t hw[] = {0x00, 0x0b, 0xaa, 0xbb};
    cit_ca_issue_options o = {.profile = "ak", .subject = "CN=node-1", .hw_serial = hw, .hw_serial_len = sizeof hw};
    json_t *out = NULL;
    char *pem = NULL;
    assert_int_equal(cit_ca_issue_key(&out, ca, spki, (size_t)sl, &o, &pem), 0);
    char serial[80];
    snprintf(serial, sizeof serial, "%s", json_string_value(json_object_get(out, "serial")));
    json_decref(out);
    X509 *x = parse_pem(pem);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), leaf), 1);
    X509 *ix = parse_pem(inter);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(ix)), 1);
    assert_true(X509_cmp_time(X509_get0_notAfter(x), NULL) > 0);
    assert_true(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ix)) <= 0);
    X509_free(x);
    free(pem);

    /* a DevID from a CSR made here */
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"node-1", -1, -1, 0);
    X509_REQ_set_subject_name(req, n);
    X509_REQ_set_pubkey(req, leaf);
    assert_true(X509_REQ_sign(req, leaf, EVP_sha256()) > 0);
    uint8_t *csr = NULL;
    int cl = i2d_X509_REQ(req, &csr);
    cit_ca_issue_options od = {.profile = "devid", .hw_serial = hw, .hw_serial_len = sizeof hw};
    assert_int_equal(cit_ca_issue_csr(&out, ca, csr, (size_t)cl, &od, &pem), 0);
    json_decref(out);
    free(pem);
    /* a flipped byte in the CSR's signature */
    csr[cl - 5] ^= 0x01;
    assert_int_equal(cit_ca_issue_csr(&out, ca, csr, (size_t)cl, &od, &pem), CIT_E_CA_CSR_SIGNATURE);
    assert_int_equal(cit_ca_issue_csr(&out, ca, csr, (size_t)cl / 2, &od, &pem), CIT_E_CA_CSR_INVALID);
    cit_ca_issue_options bad = {.profile = "nope"};
    assert_int_equal(cit_ca_issue_csr(&out, ca, csr, (size_t)cl, &bad, &pem), CIT_E_CA_PROFILE_UNKNOWN);
    OPENSSL_free(csr);
    X509_REQ_free(req);
    X509_NAME_free(n);

    const char *st = NULL;
    assert_int_equal(cit_ca_cert_status(ctx, serial, &st), 0);
    assert_string_equal(st, "valid");
    assert_int_equal(cit_ca_revoke(&out, ctx, serial, "superseded"), 0);
    json_decref(out);
    assert_int_equal(cit_ca_cert_status(ctx, serial, &st), 0);
    assert_string_equal(st, "revoked");
    assert_int_equal(cit_ca_cert_status(ctx, "abcdef", &st), 0);
    assert_string_equal(st, "unknown");
    assert_int_equal(cit_ca_revoke(&out, ctx, "abcdef", NULL), CIT_E_CA_SERIAL_UNKNOWN);
    assert_int_equal(cit_ca_revoke(&out, ctx, serial, NULL), CIT_E_CA_ALREADY_REVOKED);

    char *crl = NULL;
    assert_int_equal(cit_ca_crl(&out, ca, &crl), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "revoked")), 1);
    json_decref(out);
    BIO *b = BIO_new_mem_buf(crl, -1);
    X509_CRL *c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(c);
    assert_int_equal(X509_CRL_verify(c, X509_get0_pubkey(ix)), 1);
    assert_non_null(X509_CRL_get0_nextUpdate(c));
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c)), 1);
    X509_CRL_free(c);
    free(crl);
    X509_free(ix);
    cit_ca_close(ca);

    /* the trust bundle, empty then with one root */
    char *bundle = NULL;
    assert_int_equal(cit_ca_trust_bundle(ctx, "manufacturers", &bundle), 0);
    assert_string_equal(bundle, "");
    free(bundle);
    char f[200];
    snprintf(f, sizeof f, "%s/root.pem", dir);
    assert_int_equal(cit_write_file_atomic(f, (const uint8_t *)root, strlen(root), 0644, 0), 0);
    assert_int_equal(cit_ca_trust_add(&out, ctx, "manufacturers", "r", f), 0);
    json_decref(out);
    assert_int_equal(cit_ca_trust_bundle(ctx, "manufacturers", &bundle), 0);
    assert_string_equal(bundle, root);
    free(bundle);
    assert_int_equal(cit_ca_trust_bundle(ctx, "nope", &bundle), CIT_E_USAGE);

    /* the KEK is internal */
    uint8_t *sec = NULL;
    size_t secl = 0;
    assert_int_equal(cit_secret_unseal(&out, ctx, "ca/issuing/kek", NULL, &sec, &secl), CIT_E_OBJECT_KIND);
    assert_int_equal(cit_ca_open(&ca, ctx, "missing"), CIT_E_CA_NOT_FOUND);
    EVP_PKEY_free(leaf);
    OPENSSL_free(spki);
    free(root);
    free(inter);
    assert_int_equal(cit_ctx_close(ctx), 0);
}

/* cit_ca_begin/commit: a batch is recorded in one transaction, all or nothing */
static int count_certs(cit_ctx *ctx) {
    cit_store *s;
    assert_int_equal(cit__ctx_store(ctx, &s), 0);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(s->db, "SELECT count(*) FROM ca_certs", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void test_batch(void **state) {
    cit_ctx *ctx = open_ctx();
    make_ca(ctx, "batch", NULL, false, NULL);
    cit_ca *ca = NULL;
    assert_int_equal(cit_ca_open(&ca, ctx, "batch"), 0);
    int base = count_certs(ctx);
    EVP_PKEY *leaf = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    uint8_t *spki = NULL;
    int sl = i2d_PUBKEY(leaf, &spki);
    cit_ca_issue_options o = {.profile = "ak", .subject = "CN=node-1 AK"};
    cit_ca_issue_options od = {.profile = "devid", .subject = "CN=node-1"};
    json_t *out = NULL;
    char *p1 = NULL, *p2 = NULL, s1[80], s2[80];
    const char *st = NULL;

    /* commit without begin, begin twice */
    assert_int_equal(cit_ca_commit(ca), CIT_E_USAGE);
    assert_int_equal(cit_ca_begin(ca), 0);
    assert_int_equal(cit_ca_begin(ca), CIT_E_USAGE);
    /* two issued: nothing recorded before the commit, both after */
    assert_int_equal(cit_ca_issue_key(&out, ca, spki, (size_t)sl, &o, &p1), 0);
    snprintf(s1, sizeof s1, "%s", json_string_value(json_object_get(out, "serial")));
    json_decref(out);
    assert_int_equal(cit_ca_issue_key(&out, ca, spki, (size_t)sl, &od, &p2), 0);
    snprintf(s2, sizeof s2, "%s", json_string_value(json_object_get(out, "serial")));
    json_decref(out);
    assert_int_equal(count_certs(ctx), base);
    assert_int_equal(cit_ca_cert_status(ctx, s1, &st), 0);
    assert_string_equal(st, "unknown");
    assert_int_equal(cit_ca_commit(ca), 0);
    assert_int_equal(count_certs(ctx), base + 2);
    assert_int_equal(cit_ca_cert_status(ctx, s1, &st), 0);
    assert_string_equal(st, "valid");
    assert_int_equal(cit_ca_cert_status(ctx, s2, &st), 0);
    assert_string_equal(st, "valid");
    free(p1);
    free(p2);
    p1 = p2 = NULL;

    /* the second issue fails: the commit records neither */
    assert_int_equal(cit_ca_begin(ca), 0);
    assert_int_equal(cit_ca_issue_key(&out, ca, spki, (size_t)sl, &o, &p1), 0);
    snprintf(s1, sizeof s1, "%s", json_string_value(json_object_get(out, "serial")));
    json_decref(out);
    assert_int_equal(cit_ca_issue_csr(&out, ca, (const uint8_t *)"not a csr", 9, &od, &p2), CIT_E_CA_CSR_INVALID);
    assert_int_equal(cit_ca_commit(ca), CIT_E_USAGE);
    assert_int_equal(count_certs(ctx), base + 2);
    assert_int_equal(cit_ca_cert_status(ctx, s1, &st), 0);
    assert_string_equal(st, "unknown");
    free(p1);
    p1 = NULL;

    /* rolled back: nothing; a batch left open at close is rolled back too */
    assert_int_equal(cit_ca_begin(ca), 0);
    assert_int_equal(cit_ca_issue_key(&out, ca, spki, (size_t)sl, &o, &p1), 0);
    json_decref(out);
    free(p1);
    p1 = NULL;
    cit_ca_rollback(ca);
    assert_int_equal(count_certs(ctx), base + 2);
    assert_int_equal(cit_ca_commit(ca), CIT_E_USAGE);
    assert_int_equal(cit_ca_begin(ca), 0);
    assert_int_equal(cit_ca_issue_key(&out, ca, spki, (size_t)sl, &o, &p1), 0);
    json_decref(out);
    free(p1);
    cit_ca_close(ca);
    assert_int_equal(count_certs(ctx), base + 2);
    /* without a batch, each issue is recorded at once, as before */
    assert_int_equal(cit_ca_open(&ca, ctx, "batch"), 0);
    assert_int_equal(cit_ca_issue_key(&out, ca, spki, (size_t)sl, &o, &p1), 0);
    json_decref(out);
    free(p1);
    assert_int_equal(count_certs(ctx), base + 3);
    cit_ca_close(ca);
    EVP_PKEY_free(leaf);
    OPENSSL_free(spki);
    assert_int_equal(cit_ctx_close(ctx), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_key_never_in_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enrollment_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
