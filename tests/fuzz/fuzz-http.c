/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP response parser of src/net (outside input: whatever a server sends). Known answers
 * first (Content-Length, chunked, close-delimited, interim 1xx, HEAD, 204, oversized sizes),
 * then mutations of them (bit flips, interesting bytes, truncations, junk, duplicated chunks)
 * read in random-sized pieces: the parser answers a response or TPM0199 (NET_RESPONSE), never
 * anything else, never a body over the cap, always NUL-terminated. Deterministic (fixed seed);
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

#include "net/net.h"

static uint64_t rng = 0xa4093822299f31d0ull;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static const char *const seeds[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\": true}",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n",
    "HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nclose-delimited body",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
    "HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: Chunked\r\n\r\n1\r\nx\r\n0\r\nTrailer: y\r\n\r\n",
};

static int parse(const char *raw, size_t len, size_t step, bool head, cit_http_resp *resp) {
    memset(resp, 0, sizeof *resp);
    return cit__http_parse_response(resp, (const uint8_t *)raw, len, step, head);
}

static void expect_body(const char *raw, int status, const char *body) {
    for (size_t step = 1; step < 64; step += 7) {
        cit_http_resp r;
        assert_int_equal(parse(raw, strlen(raw), step, false, &r), 0);
        assert_int_equal(r.status, status);
        assert_int_equal(r.len, strlen(body));
        assert_string_equal(r.body, body);
        cit_http_resp_free(&r);
    }
}

static void expect_refused(const char *raw) {
    cit_http_resp r;
    assert_int_equal(parse(raw, strlen(raw), 4096, false, &r), CIT_E_NET_RESPONSE);
    assert_null(r.body);
}

static void test_known_answers(void **state) {
    expect_body(seeds[0], 200, "{\"a\": true}");
    expect_body(seeds[1], 200, "hello, world");
    expect_body(seeds[2], 404, "close-delimited body");
    expect_body(seeds[3], 201, "ok");
    expect_body(seeds[4], 204, "");
    expect_body(seeds[5], 200, "x");
    /* HEAD: no body whatever Content-Length says */
    cit_http_resp r;
    const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    assert_int_equal(parse(h, strlen(h), 3, true, &r), 0);
    assert_int_equal(r.len, 0);
    cit_http_resp_free(&r);
    /* refusals */
    expect_refused("");
    expect_refused("SSH-2.0-OpenSSH_9.6\r\n\r\n");
    expect_refused("HTTP/2 200\r\n\r\n");
    expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n");
    expect_refused("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
    expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
    expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n");
    expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000001\r\nx");
    expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n");
    expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n");
    /* headers over the cap */
    size_t big = CIT_HTTP_HEADER_MAX + 100;
    char *b = malloc(big + 1);
    memcpy(b, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(b + 20, 'a', big - 20);
    b[big] = 0;
    expect_refused(b);
    free(b);
}

static void test_fuzz_responses(void **state) {
    const char *env = getenv("CIT_FUZZ_ITERATIONS");
    long iterations = env ? strtol(env, NULL, 10) : 3000;
    size_t cap = 4096;
    char *buf = malloc(cap);
    long ok = 0, refused = 0;
    for (long it = 0; it < iterations; it++) {
        const char *s = seeds[next_rand() % (sizeof seeds / sizeof *seeds)];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits && n; e++) {
            switch (next_rand() % 6) {
            case 0:
                buf[next_rand() % n] ^= (char)(1u << (next_rand() % 8));
                break;
            case 1: {
                static const char v[] = {'\r', '\n', '0', 'f', ':', ' ', ';', '\0', '9', 'F'};
                buf[next_rand() % n] = v[next_rand() % sizeof v];
                break;
            }
            case 2:
                n = next_rand() % (n + 1);
                break;
            case 3: { /* junk at the end */
                size_t add = next_rand() % 200;
                for (size_t i = 0; i < add && n < cap; i++)
                    buf[n++] = (char)next_rand();
                break;
            }
            case 4: { /* duplicate a slice */
                size_t from = next_rand() % n, l = next_rand() % (n - from + 1);
                if (n + l <= cap) {
                    memmove(buf + from + l, buf + from, n - from);
                    n += l;
                }
                break;
            }
            default: { /* a big number somewhere */
                static const char *const nums[] = {"4294967296", "18446744073709551616", "7fffffff", "10000000"};
                const char *x = nums[next_rand() % 4];
                size_t at = next_rand() % n, l = strlen(x);
                if (at + l <= cap) {
                    memcpy(buf + at, x, l);
                    if (at + l > n)
                        n = at + l;
                }
            }
            }
        }
        cit_http_resp r;
        int rc = parse(buf, n, 1 + next_rand() % 300, next_rand() % 10 == 0, &r);
        if (rc == 0) {
            assert_non_null(r.body);
            assert_true(r.len <= CIT_HTTP_RESPONSE_MAX);
            assert_int_equal(r.body[r.len], 0);
            assert_true(r.status >= 100 && r.status <= 999);
            ok++;
        } else {
            assert_int_equal(rc, CIT_E_NET_RESPONSE);
            assert_null(r.body);
            refused++;
        }
        cit_http_resp_free(&r);
    }
    free(buf);
    printf("# %ld responses: %ld parsed, %ld refused\n", iterations, ok, refused);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_known_answers), cmocka_unit_test(test_fuzz_responses)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
