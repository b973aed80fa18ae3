/* SPDX-License-Identifier: Apache-2.0 */
/* enrolld's embedded store: one SQLite database (WAL) of nodes and configuration settings. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/util.h"
#include "citadel/citadel.h"
#include "enrolld/store.h"

typedef struct sq {
    sqlite3 *db;
    pthread_mutex_t lock; /* one connection, used by one thread at a time */
} sq;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES('schema','2');"
    "CREATE TABLE IF NOT EXISTS nodes("
    "  id TEXT PRIMARY KEY, host TEXT NOT NULL, status TEXT NOT NULL,"
    "  ak_serial TEXT, devid_serial TEXT,"
    "  created INTEGER NOT NULL, updated INTEGER NOT NULL, record TEXT NOT NULL,"
    "  version INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS nodes_host ON nodes(host, created);"
    "CREATE INDEX IF NOT EXISTS nodes_status ON nodes(status);"
    "CREATE INDEX IF NOT EXISTS nodes_devid ON nodes(devid_serial);"
    "CREATE INDEX IF NOT EXISTS nodes_ak ON nodes(ak_serial);"
    "CREATE TABLE IF NOT EXISTS config("
    "  scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated INTEGER NOT NULL,"
    "  PRIMARY KEY(scope, key));";

static int db_error(sq *q, const char *what) {
    cit_error_set(CIT_E_ENROLL_DB, "%s failed", what);
    cit_error_cause("SQLite: %s (%d)", sqlite3_errmsg(q->db), sqlite3_extended_errcode(q->db));
    return CIT_E_ENROLL_DB;
}

static const char *rec_str(const json_t *r, const char *k) {
    const char *v = json_string_value(json_object_get(r, k));
    return v && *v ? v : NULL;
}

static int sq_insert(enr_store *s, const char *id, const char *host, const char *status, const json_t *record) {
    sq *q = s->impl;
    char *text = json_dumps(record, JSON_COMPACT);
    if (!text)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    int64_t now = (int64_t)time(NULL);
    sqlite3_stmt *st = NULL;
    int r = 0;
    pthread_mutex_lock(&q->lock);
    if (sqlite3_prepare_v2(q->db,
                           "INSERT INTO nodes(id,host,status,ak_serial,devid_serial,created,updated,record) "
                           "VALUES(?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        r = db_error(q, "preparing the node insert");
    else {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, rec_str(record, "ak_serial"), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, rec_str(record, "devid_serial"), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, now);
        sqlite3_bind_int64(st, 7, now);
        sqlite3_bind_text(st, 8, text, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = db_error(q, "inserting the node");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->lock);
    free(text);
    return r;
}

static json_t *row_json(sqlite3_stmt *st, bool with_record) {
    char c[40], u[40];
    cit_time_rfc3339(c, sizeof c, sqlite3_column_int64(st, 3));
    cit_time_rfc3339(u, sizeof u, sqlite3_column_int64(st, 4));
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", (const char *)sqlite3_column_text(st, 0), "host",
                          (const char *)sqlite3_column_text(st, 1), "status", (const char *)sqlite3_column_text(st, 2),
                          "created", c, "updated", u);
    if (j)
        json_object_set_new(j, "version", json_integer(sqlite3_column_int64(st, 6)));
    if (with_record && j) {
        json_t *rec = json_loads((const char *)sqlite3_column_text(st, 5), 0, NULL);
        json_object_set_new(j, "record", rec ? rec : json_object());
    }
    return j;
}

static int get_where(enr_store *s, const char *sql, const char *a, const char *b, json_t **out) {
    sq *q = s->impl;
    sqlite3_stmt *st = NULL;
    int r = 0;
    pthread_mutex_lock(&q->lock);
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        r = db_error(q, "preparing the node query");
    else {
        sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
        if (b)
            sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
        int sr = sqlite3_step(st);
        if (sr == SQLITE_ROW)
            *out = row_json(st, true);
        else if (sr == SQLITE_DONE) {
            r = cit_error_set(CIT_E_ENROLL_NOT_FOUND, "no enrollment or node '%.80s'", a);
            cit_error_context("node", "%.80s", a);
        } else
            r = db_error(q, "reading the node");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->lock);
    return r;
}

#define COLS "id,host,status,created,updated,record,version"

static int sq_get(enr_store *s, const char *id_or_host, json_t **out) {
    return get_where(s,
                     "SELECT " COLS " FROM nodes WHERE id=?1 UNION ALL SELECT * FROM "
                     "(SELECT " COLS " FROM nodes WHERE host=?1 AND NOT EXISTS(SELECT 1 FROM nodes WHERE id=?1) "
                     "ORDER BY created DESC, rowid DESC LIMIT 1)",
                     id_or_host, NULL, out);
}

static int sq_get_by_serial(enr_store *s, const char *serial, json_t **out) {
    return get_where(s, "SELECT " COLS " FROM nodes WHERE devid_serial=?1 OR ak_serial=?1 LIMIT 1", serial, NULL,
                     out);
}

static int sq_update(enr_store *s, const char *id, const char *from, const char *to, const json_t *record,
                     const enr_cas *cas, bool *changed) {
    sq *q = s->impl;
    char *text = json_dumps(record, JSON_COMPACT);
    if (!text)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    sqlite3_stmt *st = NULL;
    int r = 0;
    *changed = false;
    pthread_mutex_lock(&q->lock);
    /* instr('|'||from||'|', '|'||status||'|'): status is one of the "|"-separated list; the
     * version and the host's sole approved EK are checked in the same statement */
    if (sqlite3_prepare_v2(q->db,
                           "UPDATE nodes SET status=?2, record=?3, updated=?4, ak_serial=?6, devid_serial=?7, "
                           "version=version+1 "
                           "WHERE id=?1 AND instr('|'||?5||'|', '|'||status||'|') > 0 AND (?8 < 0 OR version=?8) "
                           "AND (?9 IS NULL OR NOT EXISTS(SELECT 1 FROM nodes o WHERE o.host=nodes.host "
                           "AND o.status='approved' AND o.id<>nodes.id "
                           "AND ifnull(json_extract(o.record,'$.ek_fingerprint'),'')<>?9))",
                           -1, &st, NULL) != SQLITE_OK)
        r = db_error(q, "preparing the node update");
    else {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
        sqlite3_bind_text(st, 5, from, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, rec_str(record, "ak_serial"), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, rec_str(record, "devid_serial"), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, cas ? cas->version : -1);
        sqlite3_bind_text(st, 9, cas && cas->sole_host_ek ? cas->sole_host_ek : NULL, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = db_error(q, "updating the node");
        else
            *changed = sqlite3_changes(q->db) == 1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->lock);
    free(text);
    return r;
}

static int sq_transition(enr_store *s, const char *id, const char *from, const char *to, const json_t *record,
                         bool *changed) {
    return sq_update(s, id, from, to, record, NULL, changed);
}

static int sq_expire(enr_store *s, int64_t now, int64_t *open) {
    sq *q = s->impl;
    sqlite3_stmt *st = NULL, *ct = NULL;
    int r = 0;
    pthread_mutex_lock(&q->lock);
    if (sqlite3_prepare_v2(q->db,
                           "UPDATE nodes SET status='expired', updated=?1, version=version+1 WHERE status='started' "
                           "AND ifnull(json_extract(record,'$.nonce_expires'),0) < ?1",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(q->db, "SELECT count(*) FROM nodes WHERE status='started'", -1, &ct, NULL) != SQLITE_OK)
        r = db_error(q, "preparing the expiry of started enrollments");
    else {
        sqlite3_bind_int64(st, 1, now);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = db_error(q, "expiring the started enrollments");
        else if (sqlite3_step(ct) != SQLITE_ROW)
            r = db_error(q, "counting the started enrollments");
        else if (open)
            *open = sqlite3_column_int64(ct, 0);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(ct);
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int sq_host_ids(enr_store *s, const char *host, const char *statuses, json_t **out) {
    sq *q = s->impl;
    sqlite3_stmt *st = NULL;
    int r = 0;
    json_t *arr = json_array();
    pthread_mutex_lock(&q->lock);
    if (sqlite3_prepare_v2(q->db,
                           "SELECT id FROM nodes WHERE host=?1 AND instr('|'||?2||'|', '|'||status||'|') > 0 "
                           "ORDER BY created DESC, rowid DESC",
                           -1, &st, NULL) != SQLITE_OK)
        r = db_error(q, "preparing the host's enrollments query");
    else {
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, statuses, -1, SQLITE_STATIC);
        int sr;
        while ((sr = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(arr, json_string((const char *)sqlite3_column_text(st, 0)));
        if (sr != SQLITE_DONE)
            r = db_error(q, "reading the host's enrollments");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->lock);
    if (r < 0)
        json_decref(arr);
    else
        *out = arr;
    return r;
}

static int sq_list(enr_store *s, const char *status, json_t **out) {
    sq *q = s->impl;
    sqlite3_stmt *st = NULL;
    int r = 0;
    json_t *arr = json_array();
    pthread_mutex_lock(&q->lock);
    if (sqlite3_prepare_v2(q->db,
                           "SELECT " COLS " FROM nodes WHERE ?1 IS NULL OR status=?1 ORDER BY created DESC, rowid DESC",
                           -1, &st, NULL) != SQLITE_OK)
        r = db_error(q, "preparing the node list");
    else {
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        int sr;
        while ((sr = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *j = row_json(st, true);
            json_t *rec = json_object_get(j, "record");
            const char *keys[] = {"group", "ek_fingerprint", "ak_name", "devid_serial", "ak_serial", "not_after", NULL};
            for (int i = 0; keys[i]; i++) {
                json_t *v = json_object_get(rec, keys[i]);
                if (v)
                    json_object_set(j, keys[i], v);
            }
            json_object_del(j, "record");
            json_array_append_new(arr, j);
        }
        if (sr != SQLITE_DONE)
            r = db_error(q, "listing the nodes");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->lock);
    if (r < 0)
        json_decref(arr);
    else
        *out = arr;
    return r;
}

static int sq_config_set(enr_store *s, const char *scope, const char *key, const char *value) {
    sq *q = s->impl;
    sqlite3_stmt *st = NULL;
    int r = 0;
    pthread_mutex_lock(&q->lock);
    const char *sql = value ? "INSERT INTO config(scope,key,value,updated) VALUES(?1,?2,?3,?4) "
                              "ON CONFLICT(scope,key) DO UPDATE SET value=?3, updated=?4"
                            : "DELETE FROM config WHERE scope=?1 AND key=?2";
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        r = db_error(q, "preparing the configuration change");
    else {
        sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
        if (value) {
            sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
        }
        if (sqlite3_step(st) != SQLITE_DONE)
            r = db_error(q, "changing the configuration");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int sq_config_get(enr_store *s, const char *const *scopes, size_t n, json_t **out) {
    sq *q = s->impl;
    sqlite3_stmt *st = NULL;
    int r = 0;
    json_t *all = json_object();
    pthread_mutex_lock(&q->lock);
    if (sqlite3_prepare_v2(q->db, "SELECT key, value FROM config WHERE scope=? ORDER BY key", -1, &st, NULL) !=
        SQLITE_OK)
        r = db_error(q, "preparing the configuration query");
    for (size_t i = 0; i < n && r == 0; i++) {
        json_t *sc = json_object();
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, scopes[i], -1, SQLITE_STATIC);
        int sr;
        while ((sr = sqlite3_step(st)) == SQLITE_ROW)
            json_object_set_new(sc, (const char *)sqlite3_column_text(st, 0),
                                json_string((const char *)sqlite3_column_text(st, 1)));
        if (sr != SQLITE_DONE)
            r = db_error(q, "reading the configuration");
        json_object_set_new(all, scopes[i], sc);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->lock);
    if (r < 0)
        json_decref(all);
    else
        *out = all;
    return r;
}

static void sq_close(enr_store *s) {
    if (!s)
        return;
    sq *q = s->impl;
    if (q) {
        sqlite3_close(q->db);
        pthread_mutex_destroy(&q->lock);
        free(q);
    }
    free(s);
}

int enr_store_sqlite_open(enr_store **out, const char *path) {
    /* created 0600 before SQLite opens it: the records name every node's keys */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        cit_error_set(CIT_E_ENROLL_DB, "cannot open the enrollment database %s: %s", path, strerror(errno));
        return CIT_E_ENROLL_DB;
    }
    close(fd);
    sq *q = calloc(1, sizeof *q);
    enr_store *s = calloc(1, sizeof *s);
    if (!q || !s) {
        free(q);
        free(s);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    pthread_mutex_init(&q->lock, NULL);
    s->impl = q;
    s->insert = sq_insert;
    s->get = sq_get;
    s->get_by_serial = sq_get_by_serial;
    s->transition = sq_transition;
    s->update = sq_update;
    s->expire = sq_expire;
    s->host_ids = sq_host_ids;
    s->list = sq_list;
    s->config_set = sq_config_set;
    s->config_get = sq_config_get;
    s->close = sq_close;
    int r = 0;
    if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK)
        r = db_error(q, "opening the enrollment database");
    else if (sqlite3_busy_timeout(q->db, 10000) != SQLITE_OK ||
             sqlite3_exec(q->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL) != SQLITE_OK ||
             sqlite3_exec(q->db, schema, NULL, NULL, NULL) != SQLITE_OK)
        r = db_error(q, "preparing the enrollment database");
    else {
        /* schema 1 had no version column: add it (every node at version 0) */
        sqlite3_stmt *st = NULL;
        bool has = sqlite3_prepare_v2(q->db, "SELECT version FROM nodes LIMIT 0", -1, &st, NULL) == SQLITE_OK;
        sqlite3_finalize(st);
        if (!has && sqlite3_exec(q->db,
                                 "ALTER TABLE nodes ADD COLUMN version INTEGER NOT NULL DEFAULT 0;"
                                 "UPDATE meta SET value='2' WHERE key='schema';",
                                 NULL, NULL, NULL) != SQLITE_OK)
            r = db_error(q, "adding the version column to the enrollment database");
    }
    if (r < 0) {
        cit_error_context("file", "%s", path);
        sq_close(s);
        return r;
    }
    *out = s;
    return 0;
}
