/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: enrolld's SQLite store behind store.h (src/enrolld/store_sqlite.c, compiled in
 * here: it is not part of libcitadel): records, lookups by id, host and serial, the
 * compare-and-set that makes a replayed or concurrent step lose, settings, the file's mode. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/enrolld/store_sqlite.c"

static char dir[64], path[128];

static int setup(void **state) {
    snprintf(dir, sizeof dir, "/tmp/cit-enrstore-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/enrolld.db", dir);
    return 0;
}

static int teardown(void **state) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_records_and_lookups(void **state) {
    enr_store *s = NULL;
    assert_int_equal(enr_store_sqlite_open(&s, path), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_t *rec = json_pack("{s:s,s:s}", "host", "web-1", "nonce", "aa");
    assert_int_equal(s->insert(s, "id1", "web-1", "started", rec), 0);
    assert_int_equal(s->insert(s, "id2", "web-1", "started", rec), 0);
    json_t *n = NULL;
    assert_int_equal(s->get(s, "id1", &n), 0);
    assert_string_equal(json_string_value(json_object_get(n, "id")), "id1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(n, "record"), "nonce")), "aa");
    json_decref(n);
    /* a host name: its newest enrollment */
    assert_int_equal(s->get(s, "web-1", &n), 0);
    assert_string_equal(json_string_value(json_object_get(n, "id")), "id2");
    json_decref(n);
    assert_int_equal(s->get(s, "nosuch", &n), CIT_E_ENROLL_NOT_FOUND);
    /* serials are indexed from the record */
    json_object_set_new(rec, "devid_serial", json_string("0abc"));
    bool changed = false;
    assert_int_equal(s->transition(s, "id1", "started", "approved", rec, &changed), 0);
    assert_true(changed);
    assert_int_equal(s->get_by_serial(s, "0abc", &n), 0);
    assert_string_equal(json_string_value(json_object_get(n, "status")), "approved");
    json_decref(n);
    /* the same step again loses: the status is no longer the expected one */
    assert_int_equal(s->transition(s, "id1", "started", "pending", rec, &changed), 0);
    assert_false(changed);
    assert_int_equal(s->transition(s, "id1", "pending|approved", "revoked", rec, &changed), 0);
    assert_true(changed);
    json_t *l = NULL;
    assert_int_equal(s->list(s, "revoked", &l), 0);
    assert_int_equal(json_array_size(l), 1);
    assert_null(json_object_get(json_array_get(l, 0), "record"));
    json_decref(l);
    assert_int_equal(s->list(s, NULL, &l), 0);
    assert_int_equal(json_array_size(l), 2);
    json_decref(l);
    json_decref(rec);
    s->close(s);
}

static void test_settings(void **state) {
    enr_store *s = NULL;
    assert_int_equal(enr_store_sqlite_open(&s, path), 0);
    assert_int_equal(s->config_set(s, "global", "a", "1"), 0);
    assert_int_equal(s->config_set(s, "group:web", "a", "2"), 0);
    assert_int_equal(s->config_set(s, "global", "a", "3"), 0); /* replaces */
    const char *scopes[] = {"global", "group:web", "node:x"};
    json_t *all = NULL;
    assert_int_equal(s->config_get(s, scopes, 3, &all), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(all, "global"), "a")), "3");
    assert_string_equal(json_string_value(json_object_get(json_object_get(all, "group:web"), "a")), "2");
    assert_int_equal(json_object_size(json_object_get(all, "node:x")), 0);
    json_decref(all);
    assert_int_equal(s->config_set(s, "group:web", "a", NULL), 0); /* deletes */
    assert_int_equal(s->config_get(s, scopes, 3, &all), 0);
    assert_null(json_object_get(json_object_get(all, "group:web"), "a"));
    json_decref(all);
    s->close(s);
}

/* Many threads race to finish the same enrollment: exactly one wins. */
typedef struct race {
    enr_store *s;
    int won;
} race;

static void *racer(void *p) {
    race *r = p;
    json_t *rec = json_pack("{s:s}", "host", "race");
    bool changed = false;
    if (r->s->transition(r->s, "race1", "started", "pending", rec, &changed) == 0 && changed)
        r->won = 1;
    json_decref(rec);
    return NULL;
}

static void test_concurrent_transition_one_winner(void **state) {
    enr_store *s = NULL;
    assert_int_equal(enr_store_sqlite_open(&s, path), 0);
    json_t *rec = json_pack("{s:s}", "host", "race");
    assert_int_equal(s->insert(s, "race1", "race", "started", rec), 0);
    json_decref(rec);
    pthread_t t[16];
    race r[16];
    for (int i = 0; i < 16; i++) {
        r[i] = (race){.s = s};
        pthread_create(&t[i], NULL, racer, &r[i]);
    }
    int won = 0;
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        won += r[i].won;
    }
    assert_int_equal(won, 1);
    s->close(s);
}

static void test_refuses_unwritable(void **state) {
    enr_store *s = NULL;
    assert_int_equal(enr_store_sqlite_open(&s, "/nonexistent-dir/x.db"), CIT_E_ENROLL_DB);
    assert_null(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_and_lookups),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_concurrent_transition_one_winner),
        cmocka_unit_test(test_refuses_unwritable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
