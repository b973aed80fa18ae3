/* SPDX-License-Identifier: Apache-2.0 */
#include "intents.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "citadel/error.h"

int cit__intent_add(cit_store *s, const char *op, const char *path, int64_t object_id, uint32_t handle,
                    const uint8_t *name, size_t name_len, const json_t *details, int64_t *id) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st,
                               "INSERT INTO intents(op, object_id, object_path, handle, tpm_name, details, pid, "
                               "created_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
    if (r < 0)
        return r;
    char *d = details ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    sqlite3_bind_text(st, 1, op, -1, SQLITE_STATIC);
    if (object_id)
        sqlite3_bind_int64(st, 2, object_id);
    sqlite3_bind_text(st, 3, path ? path : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, handle);
    if (name && name_len)
        sqlite3_bind_blob(st, 5, name, (int)name_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, d ? d : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, getpid());
    sqlite3_bind_int64(st, 8, time(NULL));
    bool alone = sqlite3_get_autocommit(s->db) != 0;
    if (sqlite3_step(st) != SQLITE_DONE)
        r = cit__store_error(s, "cannot record the intent of this command");
    else {
        if (id)
            *id = sqlite3_last_insert_rowid(s->db);
        if (alone)
            s->wrote = true;
    }
    sqlite3_finalize(st);
    free(d);
    return r;
}

int cit__intent_clear(cit_store *s, int64_t id) {
    if (!id)
        return 0;
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, "DELETE FROM intents WHERE id = ?");
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = cit__store_error(s, "cannot clear the intent of this command");
    else if (sqlite3_get_autocommit(s->db))
        s->wrote = true;
    sqlite3_finalize(st);
    return r;
}

int cit__intent_list(cit_store *s, cit_intent **out, size_t *n) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st,
                               "SELECT id, op, coalesce(object_id, 0), object_path, handle, tpm_name, details, pid, "
                               "created_at FROM intents ORDER BY id");
    if (r < 0)
        return r;
    cit_intent *l = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 8;
            cit_intent *nl = realloc(l, nc * sizeof(*l));
            if (!nl) {
                r = cit_error_set(CIT_E_INTERNAL, "out of memory");
                break;
            }
            l = nl;
            cap = nc;
        }
        cit_intent *in = &l[cnt++];
        memset(in, 0, sizeof(*in));
        in->id = sqlite3_column_int64(st, 0);
        snprintf(in->op, sizeof in->op, "%s", (const char *)sqlite3_column_text(st, 1) ?: "");
        in->object_id = sqlite3_column_int64(st, 2);
        snprintf(in->path, sizeof in->path, "%s", (const char *)sqlite3_column_text(st, 3) ?: "");
        in->handle = (uint32_t)sqlite3_column_int64(st, 4);
        int nl = sqlite3_column_bytes(st, 5);
        if (nl > 0 && (size_t)nl <= sizeof in->name) {
            memcpy(in->name, sqlite3_column_blob(st, 5), (size_t)nl);
            in->name_len = (size_t)nl;
        }
        in->details = json_loads((const char *)sqlite3_column_text(st, 6) ?: "{}", 0, NULL);
        if (!json_is_object(in->details)) {
            json_decref(in->details);
            in->details = json_object();
        }
        in->pid = sqlite3_column_int64(st, 7);
        in->created_at = sqlite3_column_int64(st, 8);
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = cit__store_error(s, "cannot read the intent journal");
    sqlite3_finalize(st);
    if (r < 0) {
        cit__intent_list_free(l, cnt);
        return r;
    }
    *out = l;
    *n = cnt;
    return 0;
}

void cit__intent_list_free(cit_intent *l, size_t n) {
    for (size_t i = 0; i < n; i++)
        json_decref(l[i].details);
    free(l);
}

bool cit__intent_live(const cit_intent *in) {
    if (in->pid <= 0 || in->pid == getpid())
        return false;
    if (time(NULL) - in->created_at > 3600)
        return false;
    return kill((pid_t)in->pid, 0) == 0 || errno == EPERM;
}

void cit__fault_point(const char *name) {
    const char *want = getenv("CITADEL_FAULT_POINT");
    if (want && strcmp(want, name) == 0)
        raise(SIGKILL);
}
