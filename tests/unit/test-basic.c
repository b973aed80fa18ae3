/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: src/basic (hex, parse, paths, files), the error table and the renderers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/util.h"
#include "citadel/error.h"
#include "citadel/output.h"

static void test_hex(void **state) {
    uint8_t in[] = {0x00, 0x01, 0xab, 0xff};
    char *h = cit_hex_encode(in, sizeof in);
    assert_string_equal(h, "0001abff");
    uint8_t *out;
    size_t n;
    assert_int_equal(cit_hex_decode(&out, &n, "0001ABff"), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, in, 4);
    free(out);
    assert_int_equal(cit_hex_decode(&out, &n, "0x0001abff"), 0);
    free(out);
    assert_int_equal(cit_hex_decode(&out, &n, "abc"), -EINVAL);
    assert_int_equal(cit_hex_decode(&out, &n, "zz"), -EINVAL);
    free(h);
}

static void test_parse(void **state) {
    uint32_t v;
    assert_int_equal(cit_parse_u32("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(cit_parse_u32("0x81000002", &v), 0);
    assert_int_equal(v, 0x81000002u);
    assert_int_equal(cit_parse_u32("4294967296", &v), -ERANGE);
    assert_int_equal(cit_parse_u32("-1", &v), -EINVAL);
    assert_int_equal(cit_parse_u32("12a", &v), -EINVAL);
    assert_int_equal(cit_parse_u32("", &v), -EINVAL);
}

static void test_paths(void **state) {
    assert_null(cit_path_invalid_reason("signing/release"));
    assert_null(cit_path_invalid_reason("a.b_c-d/e9"));
    assert_non_null(cit_path_invalid_reason(""));
    assert_non_null(cit_path_invalid_reason("Signing"));
    assert_non_null(cit_path_invalid_reason("/abs"));
    assert_non_null(cit_path_invalid_reason("trail/"));
    assert_non_null(cit_path_invalid_reason("a//b"));
    assert_non_null(cit_path_invalid_reason("a/../b"));
    assert_non_null(cit_path_invalid_reason("."));
    assert_non_null(cit_path_invalid_reason("sp ace"));
    char longp[300];
    memset(longp, 'a', sizeof longp);
    longp[255] = 0;
    assert_null(cit_path_invalid_reason(longp));
    longp[255] = 'a';
    longp[256] = 0;
    assert_non_null(cit_path_invalid_reason(longp));
}

/* p holds exactly want. */
static void assert_contents(const char *p, const char *want) {
    uint8_t *b;
    size_t n;
    assert_int_equal(cit_read_file(p, 100, &b, &n), 0);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(b, want, n);
    free(b);
}

static void test_files(void **state) {
    char dir[] = "/tmp/cit-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof p, "%s/f", dir);
    assert_int_equal(cit_write_file_atomic(p, (const uint8_t *)"hello", 5, 0600, CIT_WRITE_DURABLE), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_contents(p, "hello");
    uint8_t *b;
    size_t n;
    assert_int_equal(cit_read_file(p, 4, &b, &n), -EFBIG);
    assert_int_equal(cit_read_file(dir, 100, &b, &n), -EISDIR);
    snprintf(p, sizeof p, "%s/missing", dir);
    assert_int_equal(cit_read_file(p, 100, &b, &n), -ENOENT);
    snprintf(p, sizeof p, "rm -rf %s", dir);
    assert_int_equal(system(p), 0);
}

static void assert_file(const char *p, const char *want) {
    assert_contents(p, want);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
}

/* cit_write_file_swap: the kept <path>.swap holds the previous version; whatever else is found at
 * its name is replaced, never written through. */
static void test_file_swap(void **state) {
    char dir[] = "/tmp/cit-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[256], sw[300], victim[300], cmd[300];
    snprintf(p, sizeof p, "%s/f", dir);
    snprintf(sw, sizeof sw, "%s.swap", p);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    assert_int_equal(cit_write_file_swap(p, (const uint8_t *)"one", 3, 0600, CIT_WRITE_DURABLE), 0);
    assert_file(p, "one");
    assert_int_equal(access(sw, F_OK), -1); /* the first write renames */
    assert_int_equal(cit_write_file_swap(p, (const uint8_t *)"second", 6, 0600, CIT_WRITE_DURABLE | CIT_WRITE_SYNC_NAME), 0);
    assert_file(p, "second");
    assert_file(sw, "one");
    assert_int_equal(cit_write_file_swap(p, (const uint8_t *)"3", 1, 0600, 0), 0); /* shorter: truncated */
    assert_file(p, "3");
    assert_file(sw, "second");
    /* a symlink at the swap name: the target is left alone */
    FILE *f = fopen(victim, "w");
    assert_non_null(f);
    fputs("victim", f);
    fclose(f);
    chmod(victim, 0644);
    assert_int_equal(unlink(sw), 0);
    assert_int_equal(symlink(victim, sw), 0);
    assert_int_equal(cit_write_file_swap(p, (const uint8_t *)"four", 4, 0600, 0), 0);
    assert_file(p, "four");
    assert_file(sw, "3");
    /* a hard link to another file */
    assert_int_equal(unlink(sw), 0);
    assert_int_equal(link(victim, sw), 0);
    assert_int_equal(cit_write_file_swap(p, (const uint8_t *)"five", 4, 0600, 0), 0);
    assert_file(p, "five");
    assert_file(sw, "four");
    /* a FIFO (an open for writing would wait for a reader) */
    assert_int_equal(unlink(sw), 0);
    assert_int_equal(mkfifo(sw, 0600), 0);
    assert_int_equal(cit_write_file_swap(p, (const uint8_t *)"six", 3, 0600, 0), 0);
    assert_file(p, "six");
    assert_file(sw, "five");
    struct stat st;
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(st.st_nlink, 1);
    assert_contents(victim, "victim");
    /* the file itself a symlink (kept elsewhere): the exchange moves the link to the swap name,
     * and the writes after it still work */
    char elsewhere[300];
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", dir);
    assert_int_equal(rename(p, elsewhere), 0);
    assert_int_equal(symlink(elsewhere, p), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cit_write_file_swap(p, (const uint8_t *)"seven", 5, 0600, CIT_WRITE_DURABLE), 0);
    assert_file(p, "seven");
    assert_file(sw, "seven");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_error_table(void **state) {
    size_t n;
    const cit_code_info *t = cit_code_table(&n);
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        /* append-only; features get ranges of numbers (80-89: the endorsement key), so there are
         * gaps, but a number is never used twice */
        assert_true(t[i].num > 0 && t[i].num < 10000);
        for (size_t k = 0; k < i; k++)
            assert_int_not_equal(t[k].num, t[i].num);
        assert_non_null(t[i].steps);
        assert_true(strlen(t[i].message) > 0);
    }
    assert_int_equal(CIT_E_OBJECT_NOT_FOUND, -4);
    assert_ptr_equal(cit_code_lookup_name("TPM0004"), cit_code_lookup(4));
    assert_ptr_equal(cit_code_lookup_name("object_not_found"), cit_code_lookup(4));
    assert_null(cit_code_lookup_name("TPM9999"));
    assert_int_equal(cit_code_exit_status(CIT_E_OBJECT_NOT_FOUND), 3);
    assert_int_equal(cit_code_exit_status(CIT_E_USAGE), 2);
    assert_int_equal(cit_code_exit_status(CIT_E_INTERNAL), 1);
}

static char *render_to_string(const json_t *j, cit_format fmt, bool error) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (error)
        cit_error_render(f, cit_error_last(), fmt);
    else
        cit_render(f, j, fmt);
    fclose(f);
    return buf;
}

static void test_error_render(void **state) {
    cit_error_set(CIT_E_OBJECT_NOT_FOUND, "object not found: %s", "signing/missing");
    cit_error_cause("no object with path '%s' exists in the workspace", "signing/missing");
    cit_error_context("path", "%s", "signing/missing");
    char *s = render_to_string(NULL, CIT_FORMAT_TEXT, true);
    assert_string_equal(s, "error[TPM0004]: object not found: signing/missing\n"
                           "causes:\n"
                           "  - no object with path 'signing/missing' exists in the workspace\n"
                           "  path signing/missing\n"
                           "next steps:\n"
                           "  1. run `citadel tpm object list` to see all objects\n"
                           "  2. run `citadel tpm key list` to see available keys\n");
    free(s);
    s = render_to_string(NULL, CIT_FORMAT_JSON, true);
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "TPM0004");
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "error"), "next_steps")), 2);
    json_decref(j);
    free(s);
    cit_error_clear();
    assert_int_equal(cit_error_last()->code, 0);
}

static void test_render_formats(void **state) {
    json_t *j = json_pack("{s:s,s:i,s:b,s:s,s:[{s:s,s:i},{s:s,s:i}]}", "path", "a/b", "version", 2, "ok", 1, "_text",
                          "hidden", "rows", "name", "x", "n", 1, "name", "yy", "n", 22);
    char *s = render_to_string(j, CIT_FORMAT_JSON, false);
    json_t *back = json_loads(s, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(back, "schema_version")), 1);
    assert_null(json_object_get(back, "_text"));
    assert_string_equal(json_string_value(json_object_get(back, "path")), "a/b");
    json_decref(back);
    free(s);
    s = render_to_string(j, CIT_FORMAT_YAML, false);
    assert_non_null(strstr(s, "schema_version: 1"));
    assert_non_null(strstr(s, "path: \"a/b\""));
    assert_null(strstr(s, "hidden"));
    free(s);
    s = render_to_string(j, CIT_FORMAT_TEXT, false);
    assert_string_equal(s, "hidden\n");
    free(s);
    json_object_del(j, "_text");
    s = render_to_string(j, CIT_FORMAT_TEXT, false);
    assert_non_null(strstr(s, "NAME  N"));
    assert_non_null(strstr(s, "yy    22"));
    free(s);
    json_decref(j);
    cit_format f;
    assert_int_equal(cit_format_parse("yaml", &f), 0);
    assert_int_equal(f, CIT_FORMAT_YAML);
    assert_int_equal(cit_format_parse("xml", &f), CIT_E_FORMAT_UNKNOWN);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),          cmocka_unit_test(test_parse),         cmocka_unit_test(test_paths),
        cmocka_unit_test(test_files),        cmocka_unit_test(test_error_table),   cmocka_unit_test(test_error_render),
        cmocka_unit_test(test_render_formats), cmocka_unit_test(test_file_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
