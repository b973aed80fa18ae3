/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: the store (migrations, refusal of foreign/newer files), the vTPM state file, and
 * the library end to end on the in-memory mock TPM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/util.h"
#include "citadel/citadel.h"
#include "store/store.h"
#include "tpm/vtpm_state.h"

static char dir[64];

static int setup(void **state) {
    snprintf(dir, sizeof dir, "/tmp/cit-store-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", dir, name); }

static void test_store_create_and_reopen(void **state) {
    char p[128];
    path_in(p, sizeof p, "sub/dir/s.db");
    cit_store *s = NULL;
    assert_int_equal(cit__store_open(&s, p, false), CIT_E_NOT_INITIALIZED);
    assert_int_equal(cit__store_open(&s, p, true), 0);
    assert_int_equal(s->schema_version, cit__store_latest_schema());
    assert_int_equal(cit__store_meta_set(s, "k", "v"), 0);
    cit__store_close(s);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cit__store_open(&s, p, false), 0);
    char *v = NULL;
    assert_int_equal(cit__store_meta_get(s, "k", &v), 0);
    assert_string_equal(v, "v");
    free(v);
    cit_object o = {0};
    snprintf(o.path, sizeof o.path, "a/b");
    snprintf(o.kind, sizeof o.kind, "key");
    assert_int_equal(cit__object_insert(s, &o), 0);
    cit_object dup = o;
    dup.metadata = NULL;
    assert_int_equal(cit__object_insert(s, &dup), CIT_E_OBJECT_EXISTS);
    cit_object got = {0};
    assert_int_equal(cit__object_find(s, "a/b", &got), 0);
    assert_int_equal(got.id, o.id);
    cit__object_clear(&got);
    assert_int_equal(cit__object_find(s, "a/c", &got), CIT_E_OBJECT_NOT_FOUND);
    cit__store_close(s);
}

static void test_store_refuses_foreign_files(void **state) {
    char p[128];
    path_in(p, sizeof p, "text.db");
    FILE *f = fopen(p, "w");
    fputs("not a database at all\n", f);
    fclose(f);
    cit_store *s = NULL;
    assert_int_equal(cit__store_open(&s, p, true), CIT_E_STORE_NOT_CITADEL);
    path_in(p, sizeof p, "empty.db");
    fclose(fopen(p, "w"));
    assert_int_equal(cit__store_open(&s, p, true), CIT_E_STORE_NOT_CITADEL);
    /* a newer schema is refused and left as it is */
    path_in(p, sizeof p, "newer.db");
    assert_int_equal(cit__store_open(&s, p, true), 0);
    assert_int_equal(cit__store_exec(s, "PRAGMA user_version = 99"), 0);
    cit__store_close(s);
    assert_int_equal(cit__store_open(&s, p, false), CIT_E_STORE_SCHEMA_NEWER);
}

static void test_vtpm_state_roundtrip_and_corruption(void **state) {
    char p[128];
    path_in(p, sizeof p, "x.tpmstate");
    cit_vtpm_state st = {0};
    assert_int_equal(cit__vtpm_state_load(&st, p), CIT_E_VTPM_STATE_MISSING);
    st.n = 2;
    snprintf(st.blobs[0].name, sizeof st.blobs[0].name, "permall");
    st.blobs[0].data = (uint8_t *)strdup("0123456789");
    st.blobs[0].len = 10;
    snprintf(st.blobs[1].name, sizeof st.blobs[1].name, "savestate");
    st.blobs[1].data = (uint8_t *)strdup("abc");
    st.blobs[1].len = 3;
    assert_int_equal(cit__vtpm_state_save(&st, p), 0);
    cit__vtpm_state_clear(&st);
    assert_int_equal(cit__vtpm_state_load(&st, p), 0);
    assert_int_equal(st.n, 2);
    assert_memory_equal(st.blobs[0].data, "0123456789", 10);
    cit__vtpm_state_clear(&st);
    /* flip one byte: checksum mismatch */
    FILE *f = fopen(p, "r+");
    fseek(f, 20, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 20, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    assert_int_equal(cit__vtpm_state_load(&st, p), CIT_E_VTPM_STATE_CORRUPT);
    assert_int_equal(truncate(p, 10), 0);
    assert_int_equal(cit__vtpm_state_load(&st, p), CIT_E_VTPM_STATE_CORRUPT);
    assert_int_equal(truncate(p, 0), 0);
    assert_int_equal(cit__vtpm_state_load(&st, p), CIT_E_VTPM_STATE_CORRUPT);
}

/* The whole library on the mock TPM: create, sign, verify, rotate, delete. */
static void test_library_on_mock(void **state) {
    cit_ctx *ctx = NULL;
    cit_ctx_options o = {.backend = "mock"};
    assert_int_equal(cit_ctx_new(&ctx, &o), 0);
    json_t *out = NULL;
    cit_key_create_options co = {.path = "lib/k"};
    assert_int_equal(cit_key_create(&out, ctx, &co), 0);
    assert_string_equal(json_string_value(json_object_get(out, "algorithm")), "ecc-p256");
    json_decref(out);
    char msg[128], sig[128];
    path_in(msg, sizeof msg, "msg");
    path_in(sig, sizeof sig, "msg.sig");
    FILE *f = fopen(msg, "w");
    fputs("library test\n", f);
    fclose(f);
    cit_key_sign_options so = {.path = "lib/k", .input = msg, .output = sig};
    assert_int_equal(cit_key_sign(&out, ctx, &so), 0);
    json_decref(out);
    assert_int_equal(cit_key_verify(&out, ctx, "lib/k", msg, sig, NULL, NULL, 0), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 1);
    json_decref(out);
    assert_int_equal(cit_key_rotate(&out, ctx, "lib/k", NULL), 0);
    json_decref(out);
    /* the old signature still verifies, as version 1 */
    assert_int_equal(cit_key_verify(&out, ctx, "lib/k", msg, sig, NULL, NULL, 0), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 1);
    assert_false(json_is_true(json_object_get(out, "current_version")));
    json_decref(out);
    assert_int_equal(cit_key_verify(&out, ctx, "lib/k", msg, sig, NULL, NULL, 2), CIT_E_SIGNATURE_INVALID);
    assert_int_equal(cit_key_sign(&out, ctx, &so), CIT_OK);
    json_decref(out);
    assert_int_equal(cit_key_verify(&out, ctx, "lib/k", msg, sig, NULL, NULL, 2), 0);
    json_decref(out);
    assert_int_equal(cit_key_delete(&out, ctx, "lib/k", false), 0);
    json_decref(out);
    assert_int_equal(cit_key_show(&out, ctx, "lib/k"), CIT_E_OBJECT_NOT_FOUND);
    assert_int_equal(cit_ctx_close(ctx), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_create_and_reopen),
        cmocka_unit_test(test_store_refuses_foreign_files),
        cmocka_unit_test(test_vtpm_state_roundtrip_and_corruption),
        cmocka_unit_test(test_library_on_mock),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
