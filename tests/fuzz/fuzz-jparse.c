/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Differential test of the fast JSON reader (src/lib/out/jparse.c) against jansson's
 * json_loadb(buf, len, 0): on a corpus of hand-made edge cases and on random mutations of it
 * (byte flips, JSON-significant bytes inserted, truncations, splices), both must accept or both
 * refuse, and what both accept must be json_equal. Deterministic (fixed seed);
 * CIT_FUZZ_ITERATIONS sets the mutation count (make check: 3000 per seed family).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out/jparse.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static const char *const corpus[] = {
    "{}", "[]", " \t\r\n{ } ", "{\"a\":1}", "[1,2,3]", "[1,]", "{,}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
    "[-0]", "[0]", "[01]", "[-]", "[1.]", "[.5]", "[1e5]", "[1E+5]", "[1e-5]", "[1e]", "[-1.25e-3]",
    "[9223372036854775807]", "[9223372036854775808]", "[-9223372036854775808]", "[-9223372036854775809]",
    "[1e400]", "[-1e400]", "[1e-400]", "[123456789012345678901234567890.5]",
    "[true,false,null]", "[tru]", "[nul]", "[truex]", "[true false]", "1", "\"s\"", "true", "null", "",
    " ", "[", "]", "{", "[[[]]]", "[\"\"]", "[\"a\\\"b\"]", "[\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"\\x\"]",
    "[\"\\u0041\"]", "[\"\\u00e9\"]", "[\"\\u20ac\"]", "[\"\\ud83d\\ude00\"]", "[\"\\ud83d\"]", "[\"\\ude00\"]",
    "[\"\\ud83dx\"]", "[\"\\ud83d\\u0041\"]", "[\"\\u0000\"]", "[\"\\u00\"]", "[\"\\uzzzz\"]",
    "[\"caf\xc3\xa9\"]", "[\"\xe2\x82\xac\"]", "[\"\xf0\x9f\x98\x80\"]", "[\"\xc3\"]", "[\"\xc0\xaf\"]",
    "[\"\xe0\x80\xaf\"]", "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]", "[\"\xff\"]", "[\"a\x01\"]",
    "[\"a\x7f\"]", "[\"unterminated]", "{\"a\":1,\"a\":2}", "{\"k\\u00e9y\":\"v\"}", "{\"\":0}",
    "{\"a\":{\"b\":[1,{\"c\":null}]}}", "[1] x", "[1]\n", "{\"version\":1,\"attest\":\"/1RDR4AYACIAC\"}",
    "{\"pcrs\":{\"sha256\":{\"0\":\"00\",\"7\":\"ab\"}},\"nonce\":\"0011\"}",
};

/* jansson drops a NUL byte right after a token it read one byte past (a number, true, false,
 * null): the input with those bytes removed, which the fast reader must read as jansson did. */
static size_t drop_jansson_nuls(char *out, const char *buf, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == 0 && i > 0 && ((buf[i - 1] >= '0' && buf[i - 1] <= '9') || (buf[i - 1] >= 'a' && buf[i - 1] <= 'z')))
            continue;
        out[o++] = buf[i];
    }
    return o;
}

static void disagree(const char *buf, size_t len, json_t *a, json_t *b) {
    fprintf(stderr, "disagree on %zu bytes (jansson %s, fast %s): ", len, a ? "accepts" : "refuses",
            b ? "accepts" : "refuses");
    for (size_t i = 0; i < len && i < 200; i++)
        fprintf(stderr, (unsigned char)buf[i] >= 0x20 && (unsigned char)buf[i] < 0x7f ? "%c" : "\\x%02x",
                (unsigned char)buf[i]);
    fprintf(stderr, "\n");
    fail();
}

static void compare(const char *src, size_t len) {
    /* an exact-size copy: a read past the end is a heap overflow ASan sees */
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, src, len);
    json_t *a = json_loadb(buf, len, 0, NULL);
    json_t *b = cit__json_parse(buf, len);
    if (a && !b && memchr(buf, 0, len)) {
        /* the fast reader refuses every NUL byte; jansson accepted one it drops */
        char *d = malloc(len ? len : 1);
        assert_non_null(d);
        size_t dl = drop_jansson_nuls(d, buf, len);
        char *e = malloc(dl ? dl : 1);
        assert_non_null(e);
        memcpy(e, d, dl);
        b = cit__json_parse(e, dl);
        if (!b || !json_equal(a, b))
            disagree(buf, len, a, b);
        free(d);
        free(e);
    } else if ((a == NULL) != (b == NULL) || (a && !json_equal(a, b)))
        disagree(buf, len, a, b);
    json_decref(a);
    json_decref(b);
    free(buf);
}

static void test_corpus(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof corpus / sizeof *corpus; i++)
        compare(corpus[i], strlen(corpus[i]));
    /* a NUL byte inside the buffer */
    compare("[\"a\0b\"]", 7);
    compare("[1]\0", 4);
}

static void test_depth(void **state) {
    (void)state;
    /* jansson counts every value's depth (2048 at most): containers alone and with a scalar */
    for (int depth = 2046; depth <= 2050; depth++) {
        for (int with_scalar = 0; with_scalar < 2; with_scalar++) {
            size_t n = (size_t)depth * 2 + 2;
            char *b = malloc(n);
            size_t o = 0;
            for (int i = 0; i < depth; i++)
                b[o++] = '[';
            if (with_scalar)
                b[o++] = '1';
            for (int i = 0; i < depth; i++)
                b[o++] = ']';
            compare(b, o);
            free(b);
        }
    }
}

static void test_mutations(void **state) {
    (void)state;
    const char *it = getenv("CIT_FUZZ_ITERATIONS");
    long iters = it ? atol(it) : 3000;
    static const char sig[] = "{}[]\",:\\u0123456789.eE+-tfn \x00\x80\xc3\xed\xf0\xff\x1f";
    size_t ncorp = sizeof corpus / sizeof *corpus;
    char buf[1024];
    for (long k = 0; k < iters; k++) {
        const char *s = corpus[next_rand() % ncorp];
        size_t len = strlen(s);
        if (len > 256)
            len = 256;
        memcpy(buf, s, len);
        int muts = 1 + (int)(next_rand() % 4);
        for (int m = 0; m < muts; m++) {
            uint32_t op = next_rand() % 5;
            if (op == 0 && len) /* flip a byte */
                buf[next_rand() % len] ^= (char)(1u << (next_rand() % 8));
            else if (op == 1 && len < sizeof buf - 1) { /* insert a significant byte */
                size_t at = len ? next_rand() % (len + 1) : 0;
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = sig[next_rand() % (sizeof sig - 1)];
                len++;
            } else if (op == 2 && len) /* truncate */
                len = next_rand() % len;
            else if (op == 3 && len) /* replace a byte */
                buf[next_rand() % len] = sig[next_rand() % (sizeof sig - 1)];
            else if (len < 512) { /* splice another corpus entry in */
                const char *t = corpus[next_rand() % ncorp];
                size_t tl = strlen(t), at = len ? next_rand() % (len + 1) : 0;
                if (tl > 200)
                    tl = 200;
                memmove(buf + at + tl, buf + at, len - at);
                memcpy(buf + at, t, tl);
                len += tl;
            }
        }
        compare(buf, len);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
