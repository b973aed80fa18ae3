/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mutation fuzzing of the certification checks (outside input: what a node sends a verifier).
 * Seeds: real certifications made on the vTPM (an ECC and an RSA AK certifying an identity).
 * Each case mutates one or more of the four inputs (AK public, attest, signature, key public:
 * bit flips, interesting bytes, 16-bit size-field overwrites, truncations, extensions) and
 * checks that cit_attest_certify_verify returns 0 and reports valid only when the inputs are
 * the seed's own, with every failed check carrying a code in TPM0190-0195; and that
 * cit_attest_ak_public_check answers 0 or TPM0190 only. Deterministic (fixed seed);
 * CIT_FUZZ_ITERATIONS sets the count. Run under ASan+UBSan with `make SANITIZE=1`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "citadel/citadel.h"

static uint64_t rng = 0x13198a2e03707344ull;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

typedef struct blob {
    uint8_t b[2048];
    size_t n;
} blob;

typedef struct sample {
    blob part[4]; /* ak_public, attest, signature, key_public */
    uint8_t q[32];
} sample;

static void b64(blob *out, const char *s) {
    /* standard padded base64 from the library */
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t acc = 0;
    int bits = 0;
    out->n = 0;
    for (; *s && *s != '='; s++) {
        const char *p = strchr(tbl, *s);
        assert_non_null(p);
        acc = (acc << 6) | (uint32_t)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            assert_true(out->n < sizeof out->b);
            out->b[out->n++] = (uint8_t)(acc >> bits);
        }
    }
}

static void make_sample(cit_ctx *ctx, const char *ak, sample *s) {
    for (size_t i = 0; i < sizeof s->q; i++)
        s->q[i] = (uint8_t)next_rand();
    json_t *c = NULL;
    assert_int_equal(cit_attest_certify(&c, ctx, ak, "devid", s->q, sizeof s->q), 0);
    b64(&s->part[0], json_string_value(json_object_get(c, "ak_public")));
    b64(&s->part[1], json_string_value(json_object_get(c, "attest")));
    b64(&s->part[2], json_string_value(json_object_get(c, "signature")));
    b64(&s->part[3], json_string_value(json_object_get(c, "key_public")));
    json_decref(c);
}

static void mutate(blob *x) {
    int edits = 1 + (int)(next_rand() % 3);
    for (int e = 0; e < edits; e++) {
        if (x->n == 0)
            x->b[x->n++] = 0;
        switch (next_rand() % 5) {
        case 0:
            x->b[next_rand() % x->n] ^= (uint8_t)(1u << (next_rand() % 8));
            break;
        case 1: {
            static const uint8_t v[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x20, 0x40};
            x->b[next_rand() % x->n] = v[next_rand() % sizeof v];
            break;
        }
        case 2: /* a 16-bit size field: TPM2B sizes are everywhere */
            if (x->n >= 2) {
                size_t at = next_rand() % (x->n - 1);
                uint16_t v = (uint16_t)(next_rand() % 3 == 0 ? 0xffff : next_rand() % 600);
                x->b[at] = (uint8_t)(v >> 8);
                x->b[at + 1] = (uint8_t)v;
            }
            break;
        case 3:
            x->n = next_rand() % (x->n + 1);
            break;
        default: {
            size_t add = next_rand() % 64;
            for (size_t i = 0; i < add && x->n < sizeof x->b; i++)
                x->b[x->n++] = (uint8_t)next_rand();
        }
        }
    }
}

static void check_report(const json_t *r, bool valid) {
    json_t *c;
    size_t i;
    bool any_fail = false;
    json_array_foreach(json_object_get(r, "checks"), i, c) {
        const char *st = json_string_value(json_object_get(c, "status"));
        assert_non_null(st);
        if (strcmp(st, "fail") == 0) {
            any_fail = true;
            const char *code = json_string_value(json_object_get(c, "code"));
            assert_non_null(code);
            int n = atoi(code + 3);
            assert_true(n >= 190 && n <= 195);
        }
    }
    assert_int_equal(any_fail, !valid);
}

static void test_fuzz_certify_verify(void **state) {
    char dir[] = "/tmp/cit-fz-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char store[128];
    snprintf(store, sizeof store, "%s/store.db", dir);
    cit_ctx *ctx = NULL;
    cit_ctx_options o = {.store_path = store, .backend = "mock"};
    json_t *out = NULL;
    assert_int_equal(cit_ctx_new(&ctx, &o), 0);
    assert_int_equal(cit_workspace_init(&out, ctx, NULL), 0);
    json_decref(out);
    assert_int_equal(cit_attest_ak_create(&out, ctx, "ak", "ecc-p256"), 0);
    json_decref(out);
    assert_int_equal(cit_attest_ak_create(&out, ctx, "rak", "rsa-2048"), 0);
    json_decref(out);
    cit_identity_init_options io = {.name = "devid", .usage = "tls-client", .algorithm = "ecc-p256"};
    assert_int_equal(cit_identity_init(&out, ctx, &io), 0);
    json_decref(out);
    sample seeds[2];
    make_sample(ctx, "ak", &seeds[0]);
    make_sample(ctx, "rak", &seeds[1]);
    cit_ctx_close(ctx);

    /* the seeds themselves verify */
    for (int s = 0; s < 2; s++) {
        bool valid = false;
        char *pem = NULL;
        sample *x = &seeds[s];
        assert_int_equal(cit_attest_certify_verify(&out, x->part[0].b, x->part[0].n, x->part[1].b, x->part[1].n,
                                                   x->part[2].b, x->part[2].n, x->part[3].b, x->part[3].n, x->q,
                                                   sizeof x->q, &valid, &pem),
                         0);
        assert_true(valid);
        assert_non_null(pem);
        free(pem);
        check_report(out, true);
        json_decref(out);
    }

    const char *env = getenv("CIT_FUZZ_ITERATIONS");
    long iterations = env ? strtol(env, NULL, 10) : 3000;
    long passed = 0;
    for (long it = 0; it < iterations; it++) {
        sample x = seeds[next_rand() % 2];
        unsigned which = 1 + next_rand() % 15; /* a non-empty set of the four parts */
        for (int p = 0; p < 4; p++)
            if (which & (1u << p))
                mutate(&x.part[p]);
        if (next_rand() % 8 == 0) /* the other seed's part: valid bytes in the wrong place */
            x.part[next_rand() % 4] = seeds[0].part[next_rand() % 4];
        bool valid = true;
        char *pem = NULL;
        out = NULL;
        int r = cit_attest_certify_verify(&out, x.part[0].b, x.part[0].n, x.part[1].b, x.part[1].n, x.part[2].b,
                                          x.part[2].n, x.part[3].b, x.part[3].n, x.q, sizeof x.q, &valid, &pem);
        assert_int_equal(r, 0);
        check_report(out, valid);
        if (valid) {
            /* accepted: the certification and key are a seed's, byte for byte, and the AK public
             * (whose non-key fields the check does not pin) carries that seed's AK key */
            int s = -1;
            for (int k = 0; k < 2 && s < 0; k++) {
                bool same = true;
                for (int p = 1; p < 4; p++)
                    same = same && x.part[p].n == seeds[k].part[p].n &&
                           memcmp(x.part[p].b, seeds[k].part[p].b, x.part[p].n) == 0;
                if (same)
                    s = k;
            }
            assert_true(s >= 0);
            char *a = NULL, *b = NULL;
            json_t *j1 = NULL, *j2 = NULL;
            assert_int_equal(cit_attest_ak_public_check(&j1, x.part[0].b, x.part[0].n, &a, NULL), 0);
            assert_int_equal(cit_attest_ak_public_check(&j2, seeds[s].part[0].b, seeds[s].part[0].n, &b, NULL), 0);
            assert_string_equal(a, b);
            free(a);
            free(b);
            json_decref(j1);
            json_decref(j2);
            passed++;
        } else
            assert_null(pem);
        free(pem);
        json_decref(out);
        out = NULL;
        char *spki = NULL, *name = NULL;
        r = cit_attest_ak_public_check(&out, x.part[0].b, x.part[0].n, &spki, &name);
        assert_true(r == 0 || r == CIT_E_AK_PUBLIC_INVALID);
        json_decref(out);
        free(spki);
        free(name);
    }
    printf("# %ld cases, %ld were accepted (the seed, or AK fields outside its key)\n", iterations, passed);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fuzz_certify_verify)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
