/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mutation fuzzing of the vTPM state file parser (outside input: a file on disk). Starts from a
 * real state file written by the parser's own writer, applies random bit flips, byte
 * overwrites, truncations, extensions and length-field edits, and checks the parser never
 * crashes and answers either success or TPM0019 (corrupt). Deterministic (fixed seed) so a
 * failure reproduces; CIT_FUZZ_ITERATIONS sets the count (make check: 3000, check-long: more).
 * Built as a cmocka test so the runner counts it; run it under ASan (make SANITIZE=1 check).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "citadel/error.h"
#include "tpm/vtpm_state.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static void write_bytes(const char *p, const uint8_t *b, size_t n) {
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void test_fuzz_state_parser(void **state) {
    char dir[] = "/tmp/cit-fuzz-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char seed_path[128], p[128];
    snprintf(seed_path, sizeof seed_path, "%s/seed", dir);
    snprintf(p, sizeof p, "%s/case", dir);

    /* a seed shaped like a real one: three named blobs */
    cit_vtpm_state st = {0};
    const char *names[] = {"permall", "savestate", "volatilestate"};
    for (int i = 0; i < 3; i++) {
        snprintf(st.blobs[i].name, sizeof st.blobs[i].name, "%s", names[i]);
        st.blobs[i].len = 64 + (size_t)i * 100;
        st.blobs[i].data = malloc(st.blobs[i].len);
        for (size_t k = 0; k < st.blobs[i].len; k++)
            st.blobs[i].data[k] = (uint8_t)(k * 7 + (size_t)i);
        st.n++;
    }
    assert_int_equal(cit__vtpm_state_save(&st, seed_path), 0);
    cit__vtpm_state_clear(&st);
    FILE *f = fopen(seed_path, "rb");
    assert_non_null(f);
    uint8_t seed[4096];
    size_t seed_len = fread(seed, 1, sizeof seed, f);
    fclose(f);
    assert_true(seed_len > 40);

    const char *env = getenv("CIT_FUZZ_ITERATIONS");
    long iterations = env ? strtol(env, NULL, 10) : 3000;
    uint8_t buf[8192];
    long ok = 0, corrupt = 0;
    for (long it = 0; it < iterations; it++) {
        size_t n = seed_len;
        memcpy(buf, seed, n);
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits; e++) {
            switch (next_rand() % 5) {
            case 0: /* bit flip */
                buf[next_rand() % n] ^= (uint8_t)(1u << (next_rand() % 8));
                break;
            case 1: /* byte overwrite with an interesting value */
                buf[next_rand() % n] = (uint8_t[]){0x00, 0xff, 0x7f, 0x80, 0x01}[next_rand() % 5];
                break;
            case 2: /* truncate */
                n = next_rand() % (n + 1);
                if (n == 0)
                    n = 1;
                break;
            case 3: /* extend with junk */
                if (n + 64 < sizeof buf) {
                    for (int k = 0; k < 64; k++)
                        buf[n + (size_t)k] = (uint8_t)next_rand();
                    n += 64;
                }
                break;
            case 4: /* a huge length field somewhere in the header area */
                if (n > 24) {
                    size_t off = 8 + next_rand() % 16;
                    buf[off] = 0xff;
                    buf[off + 1] = 0xff;
                }
                break;
            }
        }
        write_bytes(p, buf, n);
        cit_vtpm_state out = {0};
        int r = cit__vtpm_state_load(&out, p);
        if (r == 0)
            ok++; /* only when the checksum still matches, i.e. an identity edit */
        else {
            assert_int_equal(r, CIT_E_VTPM_STATE_CORRUPT);
            corrupt++;
        }
        cit__vtpm_state_clear(&out);
    }
    printf("fuzz: %ld cases, %ld accepted, %ld rejected as corrupt\n", iterations, ok, corrupt);
    assert_int_equal(ok + corrupt, iterations);
    unlink(p);
    unlink(seed_path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fuzz_state_parser)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
