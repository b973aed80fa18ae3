/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The certify API in one process on the mock TPM: cit_key_public_blob gives the bytes and name
 * cit_attest_certify certifies (for an identity and an AK), refuses what has no TPM public key,
 * and a certification verifies (and its qualifying data is checked) with the blobs alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "citadel/citadel.h"

static char dir[64], store[128];
static cit_ctx *ctx;

static int setup(void **state) {
    snprintf(dir, sizeof dir, "/tmp/cit-cert-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(store, sizeof store, "%s/store.db", dir);
    cit_ctx_options o = {.store_path = store, .backend = "mock"};
    json_t *out = NULL;
    if (cit_ctx_new(&ctx, &o) < 0 || cit_workspace_init(&out, ctx, NULL) < 0)
        return -1;
    json_decref(out);
    return 0;
}

static int teardown(void **state) {
    cit_ctx_close(ctx);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static uint8_t *unb64(const char *s, size_t *n) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t *out = malloc(strlen(s));
    uint32_t acc = 0;
    int bits = 0;
    *n = 0;
    for (; *s && *s != '='; s++) {
        acc = (acc << 6) | (uint32_t)(strchr(tbl, *s) - tbl);
        if ((bits += 6) >= 8)
            out[(*n)++] = (uint8_t)(acc >> (bits -= 8));
    }
    return out;
}

static void test_public_blob_is_what_certify_certifies(void **state) {
    json_t *out = NULL;
    assert_int_equal(cit_attest_ak_create(&out, ctx, "ak", "ecc-p256"), 0);
    json_decref(out);
    cit_identity_init_options io = {.name = "devid", .usage = "tls-client", .algorithm = "ecc-p256"};
    assert_int_equal(cit_identity_init(&out, ctx, &io), 0);
    json_decref(out);

    uint8_t *kb = NULL, *ab = NULL;
    size_t kl = 0, al = 0;
    char *kn = NULL, *an = NULL;
    assert_int_equal(cit_key_public_blob(ctx, "devid", &kb, &kl, &kn), 0);
    assert_int_equal(cit_key_public_blob(ctx, "ak", &ab, &al, &an), 0);
    assert_int_equal(strlen(kn), 68); /* sha256 name: 2 + 32 bytes */

    uint8_t q[32];
    for (int i = 0; i < 32; i++)
        q[i] = (uint8_t)(i * 7);
    json_t *c = NULL;
    assert_int_equal(cit_attest_certify(&c, ctx, "ak", "devid", q, sizeof q), 0);
    assert_string_equal(json_string_value(json_object_get(c, "key_name")), kn);
    assert_string_equal(json_string_value(json_object_get(c, "ak_name")), an);
    size_t n = 0;
    uint8_t *kp = unb64(json_string_value(json_object_get(c, "key_public")), &n);
    assert_int_equal(n, kl);
    assert_memory_equal(kp, kb, kl);
    free(kp);
    uint8_t *ap = unb64(json_string_value(json_object_get(c, "ak_public")), &n);
    assert_int_equal(n, al);
    assert_memory_equal(ap, ab, al);
    free(ap);

    /* verify with the blobs alone */
    size_t attl = 0, sigl = 0;
    uint8_t *att = unb64(json_string_value(json_object_get(c, "attest")), &attl);
    uint8_t *sig = unb64(json_string_value(json_object_get(c, "signature")), &sigl);
    bool valid = false;
    char *pem = NULL;
    json_t *rep = NULL;
    assert_int_equal(cit_attest_certify_verify(&rep, ab, al, att, attl, sig, sigl, kb, kl, q, sizeof q, &valid, &pem), 0);
    assert_true(valid);
    assert_non_null(strstr(pem, "BEGIN PUBLIC KEY"));
    free(pem);
    json_decref(rep);
    /* another nonce: invalid, qualifying is the first failed check, no key handed out */
    q[0] ^= 1;
    pem = NULL;
    assert_int_equal(cit_attest_certify_verify(&rep, ab, al, att, attl, sig, sigl, kb, kl, q, sizeof q, &valid, &pem), 0);
    assert_false(valid);
    assert_null(pem);
    assert_string_equal(json_string_value(json_object_get(rep, "code")), "TPM0193");
    json_decref(rep);
    /* the AK public check hands out the same name */
    char *spki = NULL, *name = NULL;
    assert_int_equal(cit_attest_ak_public_check(&rep, ab, al, &spki, &name), 0);
    assert_string_equal(name, an);
    free(spki);
    free(name);
    json_decref(rep);
    /* a real AK's public with adminWithPolicy, or with an authPolicy: refused (its activation
     * could be authorised by a policy rather than by being in the TPM) */
    for (int variant = 0; variant < 2; variant++) {
        TPM2B_PUBLIC p = {0};
        size_t off = 0;
        assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(ab, al, &off, &p), TSS2_RC_SUCCESS);
        if (variant == 0)
            p.publicArea.objectAttributes |= TPMA_OBJECT_ADMINWITHPOLICY;
        else {
            p.publicArea.authPolicy.size = 32;
            memset(p.publicArea.authPolicy.buffer, 0x5a, 32);
        }
        uint8_t mb[sizeof(TPM2B_PUBLIC) + 8];
        size_t ml = 0;
        assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&p, mb, sizeof mb, &ml), TSS2_RC_SUCCESS);
        rep = NULL;
        assert_int_equal(cit_attest_ak_public_check(&rep, mb, ml, &spki, &name), CIT_E_AK_PUBLIC_INVALID);
        json_decref(rep);
    }
    /* the identity's public is not an AK's */
    rep = NULL;
    assert_int_equal(cit_attest_ak_public_check(&rep, kb, kl, &spki, &name), CIT_E_AK_PUBLIC_INVALID);
    assert_non_null(rep); /* the report of the refusal is the caller's */
    json_decref(rep);

    free(att);
    free(sig);
    free(kb);
    free(ab);
    free(kn);
    free(an);
    json_decref(c);
}

static void test_public_blob_refusals(void **state) {
    uint8_t *b = NULL;
    size_t l = 0;
    char *n = NULL;
    assert_int_equal(cit_key_public_blob(ctx, "missing", &b, &l, &n), CIT_E_OBJECT_NOT_FOUND);
    assert_null(b);
    json_t *out = NULL;
    cit_key_create_options ko = {.path = "ed", .algorithm = "ed25519"};
    assert_int_equal(cit_key_create(&out, ctx, &ko), 0);
    json_decref(out);
    assert_int_equal(cit_key_public_blob(ctx, "ed", &b, &l, &n), CIT_E_OBJECT_KIND);
    assert_null(b);
    /* name_hex may be NULL */
    cit_key_create_options k2 = {.path = "plain"};
    assert_int_equal(cit_key_create(&out, ctx, &k2), 0);
    json_decref(out);
    assert_int_equal(cit_key_public_blob(ctx, "plain", &b, &l, NULL), 0);
    assert_true(l > 2 && (size_t)((b[0] << 8) | b[1]) == l - 2);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_blob_is_what_certify_certifies),
        cmocka_unit_test(test_public_blob_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
