/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mutation fuzzing of the event log and IMA list parsers (outside input: files from another
 * machine). Seeds are the real firmware logs in tests/data/eventlog and the IMA lists in
 * tests/data/ima; each case applies random bit flips, interesting bytes, 32-bit length-field
 * overwrites, truncations, junk extensions and chunk duplications, then runs every entry point
 * (show, replay, secureboot, the PCR comparison; IMA show and replay) and checks each answers
 * either success or its malformed code (TPM0070 / TPM0071), never anything else, and never
 * crashes. Deterministic (fixed seed); CIT_FUZZ_ITERATIONS sets the count (make check: 3000,
 * check-long: more). Run under ASan+UBSan with `make SANITIZE=1` (B=build-san).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/eventlog.h"
#include "attest/ima.h"
#include "citadel/error.h"

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

typedef struct seed {
    char name[256];
    uint8_t *data;
    size_t len;
} seed;

static size_t load_dir(seed *seeds, size_t max, const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || strstr(e->d_name, ".py") || strstr(e->d_name, ".md"))
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(1 << 20);
        size_t len = fread(buf, 1, 1 << 20, f);
        fclose(f);
        snprintf(seeds[n].name, sizeof seeds[n].name, "%s", e->d_name);
        seeds[n].data = buf;
        seeds[n].len = len;
        n++;
    }
    closedir(d);
    return n;
}

/* One mutated copy of s into buf (capacity cap); returns its length. */
static size_t mutate(uint8_t *buf, size_t cap, const seed *s) {
    size_t n = s->len;
    memcpy(buf, s->data, n);
    int edits = 1 + (int)(next_rand() % 6);
    for (int k = 0; k < edits && n > 0; k++) {
        switch (next_rand() % 7) {
        case 0:
            buf[next_rand() % n] ^= (uint8_t)(1u << (next_rand() % 8));
            break;
        case 1:
            buf[next_rand() % n] = (uint8_t[]){0x00, 0xff, 0x7f, 0x80, 0x01, 0x20, 0x0a}[next_rand() % 7];
            break;
        case 2: { /* a 32-bit field: huge, zero, or off by a little */
            if (n < 4)
                break;
            size_t off = next_rand() % (n - 3);
            uint32_t v = (uint32_t[]){0xffffffffu, 0x7fffffffu, 0, 1, 0x01000000u, (uint32_t)n, 0x100000u}[next_rand() % 7];
            if (next_rand() % 3 == 0)
                v = (uint32_t)(buf[off] | buf[off + 1] << 8) + (next_rand() % 9) - 4;
            memcpy(buf + off, &v, 4);
            break;
        }
        case 3:
            n = next_rand() % (n + 1);
            break;
        case 4: /* extend with junk */
            if (n + 64 < cap) {
                for (int i = 0; i < 64; i++)
                    buf[n + (size_t)i] = (uint8_t)next_rand();
                n += 64;
            }
            break;
        case 5: { /* duplicate a chunk (events repeated) */
            size_t a = next_rand() % n, l = 1 + next_rand() % 256;
            if (a + l > n)
                l = n - a;
            if (n + l < cap) {
                memmove(buf + a + l, buf + a, n - a);
                n += l;
            }
            break;
        }
        case 6: /* a 16-bit field (algorithm ids, digest sizes) */
            if (n >= 2) {
                size_t off = next_rand() % (n - 1);
                uint16_t v = (uint16_t[]){0x0004, 0x000b, 0x000c, 0x000d, 0x0012, 0xffff, 0}[next_rand() % 7];
                memcpy(buf + off, &v, 2);
            }
            break;
        }
    }
    return n;
}

static long iterations(void) {
    const char *env = getenv("CIT_FUZZ_ITERATIONS");
    return env ? strtol(env, NULL, 10) : 3000;
}

static void expect_ok_or(int r, int code, const char *what, long it) {
    if (r == 0 || r == code || r == CIT_E_INPUT_EMPTY)
        return;
    fail_msg("case %ld: %s returned %d (%s)", it, what, r, cit_error_last()->message);
}

static void test_fuzz_eventlog(void **state) {
    seed seeds[32];
    size_t ns = load_dir(seeds, 32, "tests/data/eventlog", "");
    assert_true(ns >= 10);
    long its = iterations(), ok = 0, bad = 0;
    size_t cap = (1 << 20) + 4096;
    uint8_t *buf = malloc(cap);
    uint8_t expected[2][CIT_EVENTLOG_MAX_DIGEST] = {{0}};
    uint32_t idx[2] = {0, 7};
    for (long it = 0; it < its; it++) {
        const seed *s = &seeds[next_rand() % ns];
        size_t n = mutate(buf, cap, s);
        /* an exact-size heap copy, so ASan sees any read past the end */
        uint8_t *in = malloc(n ? n : 1);
        memcpy(in, buf, n);
        json_t *o = NULL;
        int r = cit__eventlog_show_buf(&o, in, n, (1u << 24) - 1, s->name);
        expect_ok_or(r, CIT_E_EVENTLOG_MALFORMED, "show", it);
        if (r == 0) {
            /* the result renders (valid UTF-8 everywhere, or jansson would have refused) */
            char *txt = json_dumps(o, 0);
            assert_non_null(txt);
            free(txt);
            json_decref(o);
            ok++;
        } else
            bad++;
        cit__evl_replay rp;
        int r2 = cit__eventlog_replay_buf(&rp, in, n);
        expect_ok_or(r2, CIT_E_EVENTLOG_MALFORMED, "replay", it);
        assert_int_equal(r == 0, r2 == 0); /* show and replay agree on what parses */
        o = NULL;
        r = cit__eventlog_secureboot_buf(&o, in, n, s->name);
        expect_ok_or(r, CIT_E_EVENTLOG_MALFORMED, "secureboot", it);
        json_decref(o);
        o = NULL;
        r = cit__eventlog_check_pcrs(&o, in, n, 0x000B, idx, (const uint8_t(*)[CIT_EVENTLOG_MAX_DIGEST])expected, 2);
        if (r != 0 && r != CIT_E_EVENTLOG_MALFORMED && r != CIT_E_EVENTLOG_PCR_MISMATCH && r != CIT_E_BANK_UNSUPPORTED &&
            r != CIT_E_INPUT_EMPTY)
            fail_msg("case %ld: check_pcrs returned %d", it, r);
        json_decref(o);
        free(in);
    }
    printf("fuzz eventlog: %ld cases, %ld parsed, %ld rejected as malformed\n", its, ok, bad);
    assert_true(ok > 0 && bad > 0);
    free(buf);
    for (size_t i = 0; i < ns; i++)
        free(seeds[i].data);
}

static void test_fuzz_ima(void **state) {
    seed seeds[32];
    size_t ns = load_dir(seeds, 32, "tests/data/ima", "ima-");
    assert_true(ns >= 8);
    long its = iterations(), ok = 0, bad = 0;
    size_t cap = (1 << 20) + 4096;
    uint8_t *buf = malloc(cap);
    for (long it = 0; it < its; it++) {
        const seed *s = &seeds[next_rand() % ns];
        size_t n = mutate(buf, cap, s);
        uint8_t *in = malloc(n ? n : 1);
        memcpy(in, buf, n);
        json_t *o = NULL;
        int r = cit__ima_show_buf(&o, in, n, (1u << 24) - 1, s->name);
        expect_ok_or(r, CIT_E_IMA_MALFORMED, "ima show", it);
        if (r == 0) {
            char *txt = json_dumps(o, 0);
            assert_non_null(txt);
            free(txt);
            ok++;
        } else
            bad++;
        json_decref(o);
        o = NULL;
        int r2 = cit__ima_replay_buf(&o, in, n, s->name);
        expect_ok_or(r2, CIT_E_IMA_MALFORMED, "ima replay", it);
        assert_int_equal(r == 0, r2 == 0);
        json_decref(o);
        free(in);
    }
    printf("fuzz ima: %ld cases, %ld parsed, %ld rejected as malformed\n", its, ok, bad);
    assert_true(ok > 0 && bad > 0);
    free(buf);
    for (size_t i = 0; i < ns; i++)
        free(seeds[i].data);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fuzz_eventlog), cmocka_unit_test(test_fuzz_ima)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
