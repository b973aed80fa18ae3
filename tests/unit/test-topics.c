/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the `citadel tpm explain <topic>` table (src/lib/diag/topics.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "basic/macro.h"
#include "citadel/explain.h"

/* The interface promises text wrapped at 80 columns; the texts themselves aim for 78. */
#define MAX_COLUMNS 80
#define MIN_LINES 12
#define MAX_LINES 30

static const char *const required[] = {
    "pcr", "policy", "hierarchy", "key",    "seal",    "attestation",
    "nv",  "ek",     "ak",        "handle", "session", "dictionary-attack",
};

static void test_required_topics_exist(void **state _unused_) {
    for (size_t i = 0; i < ELEMENTSOF(required); i++) {
        const cit_topic *t = cit_topic_lookup(required[i]);
        if (!t)
            fail_msg("topic '%s' is missing", required[i]);
        assert_string_equal(t->name, required[i]);
        assert_non_null(t->title);
        assert_true(strlen(t->title) > 0);
        assert_null(strchr(t->title, '\n'));
        assert_true(strlen(t->title) <= MAX_COLUMNS);
        assert_non_null(t->text);
    }
}

static void test_lookup_is_case_insensitive(void **state _unused_) {
    assert_ptr_equal(cit_topic_lookup("PCR"), cit_topic_lookup("pcr"));
    assert_ptr_equal(cit_topic_lookup("Ek"), cit_topic_lookup("ek"));
    assert_ptr_equal(cit_topic_lookup("Dictionary-Attack"), cit_topic_lookup("dictionary-attack"));
    assert_non_null(cit_topic_lookup("PCR"));
}

static void test_aliases_resolve_to_dictionary_attack(void **state _unused_) {
    const cit_topic *da = cit_topic_lookup("dictionary-attack");
    assert_non_null(da);
    assert_string_equal(da->name, "dictionary-attack");
    assert_ptr_equal(cit_topic_lookup("da"), da);
    assert_ptr_equal(cit_topic_lookup("DA"), da);
    assert_ptr_equal(cit_topic_lookup("lockout"), da);
    assert_ptr_equal(cit_topic_lookup("LockOut"), da);
}

static void test_unknown_returns_null(void **state _unused_) {
    assert_null(cit_topic_lookup(NULL));
    assert_null(cit_topic_lookup(""));
    assert_null(cit_topic_lookup("no-such-topic"));
    assert_null(cit_topic_lookup("pc")); /* no prefix matching */
    assert_null(cit_topic_lookup("pcrs"));
    assert_null(cit_topic_lookup(" pcr"));
    assert_null(cit_topic_lookup("TPM0025")); /* error codes are resolved elsewhere */
}

static void test_table_matches_lookup(void **state _unused_) {
    size_t n = 0;
    const cit_topic *table = cit_topic_table(&n);
    assert_non_null(table);
    assert_int_equal(n, ELEMENTSOF(required));
    assert_ptr_equal(cit_topic_table(NULL), table);

    for (size_t i = 0; i < n; i++) {
        /* Every entry is reachable by its own name, and names are unique and lowercase. */
        assert_ptr_equal(cit_topic_lookup(table[i].name), &table[i]);
        for (const char *c = table[i].name; *c; c++)
            assert_false(isupper((unsigned char)*c));
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(table[i].name, table[j].name);
    }
}

static void test_text_layout(void **state _unused_) {
    size_t n = 0;
    const cit_topic *table = cit_topic_table(&n);

    for (size_t i = 0; i < n; i++) {
        const char *text = table[i].text;
        size_t len = strlen(text);
        assert_true(len > 0);
        if (text[len - 1] != '\n')
            fail_msg("topic '%s': text does not end with a newline", table[i].name);

        size_t lines = 0;
        for (const char *line = text; *line; lines++) {
            const char *end = strchr(line, '\n');
            assert_non_null(end); /* guaranteed by the check above */
            size_t cols = (size_t)(end - line);
            if (cols > MAX_COLUMNS)
                fail_msg("topic '%s' line %zu is %zu columns: %.*s", table[i].name, lines + 1, cols,
                         (int)cols, line);
            if (cols > 0 && line[cols - 1] == ' ')
                fail_msg("topic '%s' line %zu has trailing space", table[i].name, lines + 1);
            /* Plain printable ASCII keeps bytes equal to columns on any terminal. */
            for (const char *c = line; c < end; c++)
                if (*c < 0x20 || *c > 0x7e)
                    fail_msg("topic '%s' line %zu has a non-printable or non-ASCII byte",
                             table[i].name, lines + 1);
            line = end + 1;
        }
        if (lines < MIN_LINES || lines > MAX_LINES)
            fail_msg("topic '%s' has %zu lines, want %d-%d", table[i].name, lines, MIN_LINES,
                     MAX_LINES);
    }
}

static void test_see_also_resolves(void **state _unused_) {
    size_t n = 0;
    const cit_topic *table = cit_topic_table(&n);

    for (size_t i = 0; i < n; i++) {
        const char *p = table[i].see_also;
        if (!p)
            continue;
        while (*p) {
            size_t skip = strspn(p, " ");
            p += skip;
            size_t len = strcspn(p, " ");
            if (len == 0)
                break;
            char word[64];
            assert_true(len < sizeof(word));
            memcpy(word, p, len);
            word[len] = '\0';
            p += len;

            if (strncmp(word, "citadel", strlen("citadel")) == 0)
                continue;
            const cit_topic *t = cit_topic_lookup(word);
            if (!t)
                fail_msg("topic '%s': see_also '%s' is not a topic", table[i].name, word);
            if (t == &table[i])
                fail_msg("topic '%s' lists itself in see_also", table[i].name);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_required_topics_exist),
        cmocka_unit_test(test_lookup_is_case_insensitive),
        cmocka_unit_test(test_aliases_resolve_to_dictionary_attack),
        cmocka_unit_test(test_unknown_returns_null),
        cmocka_unit_test(test_table_matches_lookup),
        cmocka_unit_test(test_text_layout),
        cmocka_unit_test(test_see_also_resolves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
