/* SPDX-License-Identifier: Apache-2.0 */
/* The TCG EK Credential Profile's policies and templates, and the EK policy session that
 * credential activation uses, on the in-memory mock TPM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "basic/util.h"
#include "citadel/citadel.h"
#include "core/ctx.h"
#include "core/ek.h"

static void assert_digest_hex(const TPM2B_DIGEST *d, const char *hex) {
    char *h = cit_hex_encode(d->buffer, d->size);
    assert_non_null(h);
    assert_string_equal(h, hex);
    free(h);
}

/* The digests published in the profile (PolicyA: "Computing PolicyA"; PolicyB: the high-range
 * templates' authPolicy), computed here from their definitions. */
static void test_policy_digests(void **state) {
    TPM2B_DIGEST d;
    assert_int_equal(cit__ek_policy_a(TPM2_ALG_SHA256, &d), 0);
    assert_digest_hex(&d, "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa");
    assert_int_equal(cit__ek_policy_a(TPM2_ALG_SHA384, &d), 0);
    assert_digest_hex(&d, "8bbf2266537c171cb56e403c4dc1d4b64f432611dc386e6f532050c3278c930e"
                          "143e8bb1133824ccb431053871c6db53");
    assert_int_equal(cit__ek_policy_b(TPM2_ALG_SHA256, &d), 0);
    assert_digest_hex(&d, "ca3d0a99a2b93906f7a3342414efcfb3a385d44cd1fd459089d19b5071c0b7a0");
    assert_int_equal(cit__ek_policy_b(TPM2_ALG_SHA384, &d), 0);
    assert_digest_hex(&d, "b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419ca"
                          "cb47ba09699646150f9fc000f3f80e12");
    assert_int_equal(cit__ek_policy_a(TPM2_ALG_SHA1, &d), CIT_E_ALG_UNSUPPORTED);
}

static void test_templates(void **state) {
    TPM2B_PUBLIC t;
    cit__ek_default_template(cit__ek_profile("rsa-2048"), &t);
    assert_int_equal(t.publicArea.objectAttributes, 0x000300b2); /* L-1: no userWithAuth */
    assert_int_equal(t.publicArea.unique.rsa.size, 256);
    assert_int_equal(t.publicArea.parameters.rsaDetail.symmetric.keyBits.aes, 128);
    cit__ek_default_template(cit__ek_profile("ecc-p384"), &t);
    assert_int_equal(t.publicArea.objectAttributes, 0x000300f2); /* H-3: userWithAuth */
    assert_int_equal(t.publicArea.nameAlg, TPM2_ALG_SHA384);
    assert_int_equal(t.publicArea.unique.ecc.x.size, 0);
    assert_int_equal(t.publicArea.parameters.eccDetail.symmetric.keyBits.aes, 256);
    assert_null(cit__ek_profile("rsa-1024"));
    assert_int_equal(cit__ek_profile("rsa-3072")->cert_index, 0x01c0001c);
}

/* For each EK: the policy session cit__ek_policy_session builds reaches exactly the EK's
 * authPolicy in the TPM (what TPM2_ActivateCredential checks). */
static void test_policy_session_meets_ek_policy(void **state) {
    static const char *const algs[] = {"rsa-2048", "ecc-p256", "ecc-p384", "rsa-3072"};
    cit_ctx *ctx = NULL;
    cit_ctx_options o = {.backend = "mock"};
    assert_int_equal(cit_ctx_new(&ctx, &o), 0);
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        ESYS_TR ek = ESYS_TR_NONE, s = ESYS_TR_NONE;
        TPM2B_PUBLIC pub;
        assert_int_equal(cit__ek_load(ctx, algs[i], &ek, &pub), 0);
        assert_int_equal(cit__ek_policy_session(ctx, &pub, &s), 0);
        TPM2B_DIGEST *got = NULL;
        assert_int_equal(
            Esys_PolicyGetDigest(ctx->tpm->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &got),
            TSS2_RC_SUCCESS);
        assert_int_equal(got->size, pub.publicArea.authPolicy.size);
        assert_memory_equal(got->buffer, pub.publicArea.authPolicy.buffer, got->size);
        Esys_Free(got);
        cit__tpm_flush(ctx->tpm, &s);
        cit__tpm_flush(ctx->tpm, &ek);
    }
    /* the default with no certificate in NV (mock) is rsa-2048 */
    const cit_ek_profile *p = NULL;
    assert_int_equal(cit__ek_resolve(ctx, NULL, &p), 0);
    assert_string_equal(p->algorithm, "rsa-2048");
    assert_int_equal(cit_ctx_close(ctx), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_digests),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_policy_session_meets_ek_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
