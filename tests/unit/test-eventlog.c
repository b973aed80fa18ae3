/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the event log replay comparison that `attest verify --eventlog` will use
 * (cit__eventlog_check_pcrs) and for the parser's iterator. Expected PCR values are the ones
 * tpm2_eventlog (tpm2-tools 5.4) prints for tests/data/eventlog/event.bin and
 * event-postcode.bin; tests/interop/test-eventlog-tools.sh checks every log that way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/eventlog.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/error.h"

static uint8_t *load(const char *name, size_t *len) {
    char p[256];
    snprintf(p, sizeof p, "tests/data/eventlog/%s", name);
    uint8_t *buf = NULL;
    assert_int_equal(cit_read_file(p, 1 << 20, &buf, len), 0);
    return buf;
}

static void unhex(uint8_t *out, const char *hex) {
    uint8_t *b = NULL;
    size_t n = 0;
    assert_int_equal(cit_hex_decode(&b, &n, hex), 0);
    memcpy(out, b, n);
    free(b);
}

static bool any_cause(const char *needle) {
    const cit_error *e = cit_error_last();
    for (int i = 0; i < e->n_causes; i++)
        if (strstr(e->causes[i], needle))
            return true;
    return false;
}

static void test_check_pcrs_match_and_mismatch(void **state _unused_) {
    size_t len;
    uint8_t *log = load("event-postcode.bin", &len);
    uint32_t idx[3] = {0, 7, 12};
    uint8_t exp[3][CIT_EVENTLOG_MAX_DIGEST] = {{0}};
    unhex(exp[0], "d60c30777ea9cad0ac8868eda11a00608a26f0a2f9b5d5fbdd4a84d7884ea946");
    unhex(exp[1], "cea0b7475867ab2ced4f6a278530c0a57e0f826cfefdf747c0e670ca09140ea5");
    /* PCR 12 is never extended by this log: its value is the reset value, zero */
    json_t *out = NULL;
    assert_int_equal(cit__eventlog_check_pcrs(&out, log, len, 0x000B, idx, (const uint8_t(*)[64])exp, 3), 0);
    assert_non_null(out);
    assert_int_equal(json_integer_value(json_object_get(out, "pcrs_compared")), 3);
    assert_string_equal(json_string_value(json_object_get(out, "bank")), "sha256");
    json_decref(out);

    /* sha1 bank */
    uint32_t i1[1] = {7};
    uint8_t e1[1][CIT_EVENTLOG_MAX_DIGEST] = {{0}};
    unhex(e1[0], "e8145f6a55372158d87f55c33b17abe7c35987ef");
    out = NULL;
    assert_int_equal(cit__eventlog_check_pcrs(&out, log, len, 0x0004, i1, (const uint8_t(*)[64])e1, 1), 0);
    json_decref(out);

    /* one wrong value: the mismatch code, naming the PCR with both values; out untouched */
    exp[1][5] ^= 1;
    out = NULL;
    assert_int_equal(cit__eventlog_check_pcrs(&out, log, len, 0x000B, idx, (const uint8_t(*)[64])exp, 3),
                     CIT_E_EVENTLOG_PCR_MISMATCH);
    assert_null(out);
    assert_true(any_cause("PCR 7 (sha256): replayed cea0b7475867ab2ced4f6a278530c0a57e0f826cfefdf747c0e670ca09140ea5"));
    assert_false(any_cause("PCR 0 "));
    exp[1][5] ^= 1;
    exp[2][0] = 1; /* PCR 12 "reported" non-zero: the log never extends it */
    assert_int_equal(cit__eventlog_check_pcrs(&out, log, len, 0x000B, idx, (const uint8_t(*)[64])exp, 3),
                     CIT_E_EVENTLOG_PCR_MISMATCH);
    assert_true(any_cause("the log never extends it"));

    /* a bank the log does not have; a malformed log */
    assert_int_equal(cit__eventlog_check_pcrs(&out, log, len, 0x000C, idx, (const uint8_t(*)[64])exp, 3),
                     CIT_E_BANK_UNSUPPORTED);
    assert_int_equal(cit__eventlog_check_pcrs(&out, log, len - 3, 0x000B, idx, (const uint8_t(*)[64])exp, 3),
                     CIT_E_EVENTLOG_MALFORMED);
    assert_null(out);
    free(log);
}

static void test_replay_four_banks(void **state _unused_) {
    size_t len;
    uint8_t *log = load("event.bin", &len);
    cit__evl_replay r;
    assert_int_equal(cit__eventlog_replay_buf(&r, log, len), 0);
    assert_true(r.crypto_agile);
    assert_int_equal(r.nbanks, 4);
    assert_int_equal(r.nevents, 2);
    assert_int_equal(r.nextended, 1);
    assert_int_equal(r.startup_locality, -1);
    static const char *const want[4] = {
        "543c314066a9cd7a6b6aa53f56b38e814a76efe7",
        "118bdc4043596f8d6b7813438131959961f6abba29bab0075d16ca39664f5862",
        "8ce4f7fcd5eaae9df051f735b0e5a37f836d54352e2efafc930fa69a28cd7c8d07014fd54c477a5dc46a0ff8c4ecaf07",
        "2b39e8bfcb64133066c8939231a424cd0a2f3ceaf21b182e82b826916b5826fa3f98fcf1333a2948947ea52f03959e7737800e49722c972e5444f7be6aa9a431",
    };
    for (int b = 0; b < 4; b++) {
        char *h = cit_hex_encode(r.banks[b].pcr[0], r.banks[b].size);
        assert_string_equal(h, want[b]);
        free(h);
        assert_int_equal(r.banks[b].touched, 1);
    }
    /* PCRs 17-22 start at all ones */
    assert_int_equal(r.banks[1].pcr[17][0], 0xff);
    assert_int_equal(r.banks[1].pcr[16][0], 0x00);
    free(log);
}

static void test_iterator_bounds(void **state _unused_) {
    size_t len;
    uint8_t *log = load("event-uefi-sha1-log.bin", &len);
    cit__evl_parser p;
    assert_int_equal(cit__evl_open(&p, log, len), 0);
    assert_false(p.crypto_agile);
    cit__evl_event ev;
    size_t end = 0;
    uint32_t n = 0;
    int r;
    while ((r = cit__evl_next(&p, &ev)) > 0) {
        assert_int_equal(ev.offset, end); /* events are contiguous */
        assert_true(ev.data + ev.data_len <= log + len);
        end = ev.offset + ev.size;
        n++;
    }
    assert_int_equal(r, 0);
    assert_int_equal(end, len);
    assert_int_equal(n, 17);
    /* every cut inside the last event is malformed, at that event */
    for (size_t cut = end - 1; cut > end - 40; cut--) {
        assert_int_equal(cit__evl_open(&p, log, cut), 0);
        while ((r = cit__evl_next(&p, &ev)) > 0)
            ;
        assert_int_equal(r, CIT_E_EVENTLOG_MALFORMED);
        assert_string_equal(cit_error_last()->context_val[0], "16");
    }
    /* limits */
    assert_int_equal(cit__evl_open(&p, log, 0), CIT_E_INPUT_EMPTY);
    assert_int_equal(cit__evl_open(&p, log, (size_t)CIT_EVENTLOG_MAX + 1), CIT_E_INPUT_TOO_LARGE);
    free(log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_pcrs_match_and_mismatch),
        cmocka_unit_test(test_replay_four_banks),
        cmocka_unit_test(test_iterator_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
