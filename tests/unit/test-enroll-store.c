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

/* Threads holding the same (stale or current) version race: exactly one wins, and each update
 * bumps the version, so a step working on a snapshot read before another's commit loses. */
typedef struct vrace {
    enr_store *s;
    int64_t version;
    const char *to;
    int won;
} vrace;

static void *vracer(void *p) {
    vrace *r = p;
    json_t *rec = json_pack("{s:s,s:s}", "host", "v", "devid_serial", r->to);
    bool changed = false;
    enr_cas cas = {.version = r->version};
    if (r->s->update(r->s, "v1", "approved", "approved", rec, &cas, &changed) == 0 && changed)
        r->won = 1;
    json_decref(rec);
    return NULL;
}

static void test_version_compare_and_set(void **state) {
    enr_store *s = NULL;
    assert_int_equal(enr_store_sqlite_open(&s, path), 0);
    json_t *rec = json_pack("{s:s,s:s}", "host", "v", "devid_serial", "01");
    assert_int_equal(s->insert(s, "v1", "v", "approved", rec), 0);
    json_t *n = NULL;
    assert_int_equal(s->get(s, "v1", &n), 0);
    int64_t v0 = json_integer_value(json_object_get(n, "version"));
    json_decref(n);
    /* a renewal and a revoke read the same version: the first commit wins, the other loses */
    bool changed = false;
    enr_cas cas = {.version = v0};
    json_object_set_new(rec, "devid_serial", json_string("02"));
    assert_int_equal(s->update(s, "v1", "approved", "approved", rec, &cas, &changed), 0);
    assert_true(changed);
    assert_int_equal(s->update(s, "v1", "approved|pending", "revoked", rec, &cas, &changed), 0);
    assert_false(changed);
    assert_int_equal(s->get(s, "v1", &n), 0);
    assert_int_equal(json_integer_value(json_object_get(n, "version")), v0 + 1);
    assert_string_equal(json_string_value(json_object_get(n, "status")), "approved");
    json_decref(n);
    /* 16 threads with the current version and 16 with stale ones: exactly one wins */
    pthread_t t[32];
    vrace r[32];
    char serials[32][8];
    for (int i = 0; i < 32; i++) {
        snprintf(serials[i], sizeof serials[i], "%02x", 0x10 + i);
        r[i] = (vrace){.s = s, .version = i % 2 ? v0 + 1 : v0, .to = serials[i]};
        pthread_create(&t[i], NULL, vracer, &r[i]);
    }
    int won = 0, winner = -1;
    for (int i = 0; i < 32; i++) {
        pthread_join(t[i], NULL);
        won += r[i].won;
        if (r[i].won)
            winner = i;
    }
    assert_int_equal(won, 1);
    assert_true(winner % 2 == 1);
    /* the serial column is the winner's */
    assert_int_equal(s->get_by_serial(s, serials[winner], &n), 0);
    assert_int_equal(json_integer_value(json_object_get(n, "version")), v0 + 2);
    json_decref(n);
    json_decref(rec);
    s->close(s);
}

/* Two TPMs finishing under one host name: with sole_host_ek only one is approved. */
static void test_one_approved_tpm_per_host(void **state) {
    enr_store *s = NULL;
    assert_int_equal(enr_store_sqlite_open(&s, path), 0);
    json_t *a = json_pack("{s:s,s:s}", "host", "h", "ek_fingerprint", "aaaa");
    json_t *b = json_pack("{s:s,s:s}", "host", "h", "ek_fingerprint", "bbbb");
    assert_int_equal(s->insert(s, "a1", "h", "started", a), 0);
    assert_int_equal(s->insert(s, "b1", "h", "started", b), 0);
    assert_int_equal(s->insert(s, "a2", "h", "started", a), 0);
    bool changed = false;
    enr_cas ca = {.version = -1, .sole_host_ek = "aaaa"}, cb = {.version = -1, .sole_host_ek = "bbbb"};
    assert_int_equal(s->update(s, "a1", "started", "approved", a, &ca, &changed), 0);
    assert_true(changed);
    assert_int_equal(s->update(s, "b1", "started", "approved", b, &cb, &changed), 0);
    assert_false(changed); /* another TPM holds the host */
    assert_int_equal(s->update(s, "a2", "started", "approved", a, &ca, &changed), 0);
    assert_true(changed); /* the same TPM again (re-enrollment; the older one is superseded) */
    /* the operator's explicit decision is not constrained */
    assert_int_equal(s->update(s, "b1", "started", "pending", b, NULL, &changed), 0);
    assert_true(changed);
    json_t *ids = NULL;
    assert_int_equal(s->host_ids(s, "h", "started|pending|approved", &ids), 0);
    assert_int_equal(json_array_size(ids), 3);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "a2");
    json_decref(ids);
    json_decref(a);
    json_decref(b);
    s->close(s);
}

/* Started enrollments whose nonce expired are marked expired and no longer count as open. */
static void test_expire_started(void **state) {
    enr_store *s = NULL;
    assert_int_equal(enr_store_sqlite_open(&s, path), 0);
    json_t *old = json_pack("{s:s,s:I}", "host", "e", "nonce_expires", (json_int_t)1000);
    json_t *fresh = json_pack("{s:s,s:I}", "host", "e", "nonce_expires", (json_int_t)3000);
    assert_int_equal(s->insert(s, "e1", "e", "started", old), 0);
    assert_int_equal(s->insert(s, "e2", "e", "started", fresh), 0);
    assert_int_equal(s->insert(s, "e3", "e", "pending", old), 0);
    int64_t open = -1;
    assert_int_equal(s->expire(s, 2000, &open), 0);
    assert_int_equal(open, 1);
    json_t *n = NULL;
    assert_int_equal(s->get(s, "e1", &n), 0);
    assert_string_equal(json_string_value(json_object_get(n, "status")), "expired");
    json_decref(n);
    assert_int_equal(s->get(s, "e3", &n), 0);
    assert_string_equal(json_string_value(json_object_get(n, "status")), "pending");
    json_decref(n);
    json_t *ids = NULL;
    assert_int_equal(s->host_ids(s, "e", "started|pending|approved", &ids), 0);
    assert_int_equal(json_array_size(ids), 2);
    json_decref(ids);
    json_decref(old);
    json_decref(fresh);
    s->close(s);
}

/* A schema-1 database (no version column) opens: the column is added. */
static void test_schema1_upgrade(void **state) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE nodes(id TEXT PRIMARY KEY, host TEXT NOT NULL, status TEXT NOT NULL,"
                                  " ak_serial TEXT, devid_serial TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL,"
                                  " record TEXT NOT NULL);"
                                  "INSERT INTO nodes VALUES('o1','old','approved',NULL,'aa',1,1,'{\"host\":\"old\"}');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    enr_store *s = NULL;
    assert_int_equal(enr_store_sqlite_open(&s, path), 0);
    json_t *n = NULL;
    assert_int_equal(s->get(s, "o1", &n), 0);
    assert_int_equal(json_integer_value(json_object_get(n, "version")), 0);
    json_decref(n);
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
        cmocka_unit_test_setup_teardown(test_version_compare_and_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_approved_tpm_per_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_started, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema1_upgrade, setup, teardown),
        cmocka_unit_test(test_refuses_unwritable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
