/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/error.h"
#include "store.h"

#define OBJECT_COLUMNS                                                                           \
    "id, path, kind, status, algorithm, scheme, usage, parent_id, version, persistent_handle, " \
    "metadata, created_at, updated_at"

void cit__object_clear(cit_object *o) {
    if (!o)
        return;
    free(o->metadata);
    memset(o, 0, sizeof(*o));
}

void cit__version_clear(cit_object_version *v) {
    if (!v)
        return;
    free(v->pub);
    free(v->priv);
    free(v->name);
    free(v->payload);
    memset(v, 0, sizeof(*v));
}

static void copy_col(char *dst, size_t n, sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

static int row_to_object(sqlite3_stmt *st, cit_object *o) {
    memset(o, 0, sizeof(*o));
    o->id = sqlite3_column_int64(st, 0);
    copy_col(o->path, sizeof o->path, st, 1);
    copy_col(o->kind, sizeof o->kind, st, 2);
    copy_col(o->status, sizeof o->status, st, 3);
    copy_col(o->algorithm, sizeof o->algorithm, st, 4);
    copy_col(o->scheme, sizeof o->scheme, st, 5);
    copy_col(o->usage, sizeof o->usage, st, 6);
    o->parent_id = sqlite3_column_int64(st, 7);
    o->version = sqlite3_column_int(st, 8);
    o->persistent_handle = (uint32_t)sqlite3_column_int64(st, 9);
    const unsigned char *m = sqlite3_column_text(st, 10);
    o->metadata = strdup(m ? (const char *)m : "{}");
    o->created_at = sqlite3_column_int64(st, 11);
    o->updated_at = sqlite3_column_int64(st, 12);
    return o->metadata ? 0 : cit_error_set(CIT_E_INTERNAL, "out of memory");
}

static int find_one(cit_store *s, const char *sql, const char *path, int64_t id, cit_object *out) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, sql);
    if (r < 0)
        return r;
    if (path)
        sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        r = row_to_object(st, out);
    else if (rc == SQLITE_DONE) {
        if (path) {
            r = cit_error_set(CIT_E_OBJECT_NOT_FOUND, "object not found: %s", path);
            cit_error_cause("no object with path '%s' exists in the workspace", path);
            cit_error_context("path", "%s", path);
        } else
            r = cit_error_set(CIT_E_OBJECT_NOT_FOUND, "object not found: id %lld", (long long)id);
    } else
        r = cit__store_error(s, "cannot read an object");
    sqlite3_finalize(st);
    return r;
}

int cit__object_find(cit_store *s, const char *path, cit_object *out) {
    return find_one(s, "SELECT " OBJECT_COLUMNS " FROM objects WHERE path = ?", path, 0, out);
}

int cit__object_get(cit_store *s, int64_t id, cit_object *out) {
    return find_one(s, "SELECT " OBJECT_COLUMNS " FROM objects WHERE id = ?", NULL, id, out);
}

static void bind_mutable(sqlite3_stmt *st, const cit_object *o, int64_t now) {
    sqlite3_bind_text(st, 1, o->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o->status[0] ? o->status : "active", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, o->version ? o->version : 1);
    if (o->persistent_handle)
        sqlite3_bind_int64(st, 4, o->persistent_handle);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_text(st, 5, o->metadata ? o->metadata : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
}

int cit__object_insert(cit_store *s, cit_object *o) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(
        s, &st,
        "INSERT INTO objects(path, status, version, persistent_handle, metadata, updated_at, kind, "
        "algorithm, scheme, usage, parent_id, created_at, id) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        /* never reuse the id of a deleted object: the operation log still names it */
        "max(coalesce((SELECT max(id) FROM objects), 0), coalesce((SELECT max(object_id) FROM events), 0)) + 1)");
    if (r < 0)
        return r;
    int64_t now = time(NULL);
    bind_mutable(st, o, now);
    sqlite3_bind_text(st, 7, o->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, o->algorithm, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, o->scheme, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, o->usage, -1, SQLITE_STATIC);
    if (o->parent_id)
        sqlite3_bind_int64(st, 11, o->parent_id);
    else
        sqlite3_bind_null(st, 11);
    sqlite3_bind_int64(st, 12, o->created_at ? o->created_at : now); /* kept on import */
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        o->id = sqlite3_last_insert_rowid(s->db);
        if (!o->created_at)
            o->created_at = now;
        o->updated_at = now;
    } else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE &&
               strstr(sqlite3_errmsg(s->db), "objects.path")) {
        r = cit_error_set(CIT_E_OBJECT_EXISTS, "object already exists: %s", o->path);
        cit_error_cause("the path '%s' is taken", o->path);
        cit_error_context("path", "%s", o->path);
    } else
        r = cit__store_error(s, "cannot insert the object");
    sqlite3_finalize(st);
    return r;
}

int cit__object_update(cit_store *s, cit_object *o) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st,
                               "UPDATE objects SET path = ?, status = ?, version = ?, "
                               "persistent_handle = ?, metadata = ?, updated_at = ? WHERE id = ?");
    if (r < 0)
        return r;
    int64_t now = time(NULL);
    bind_mutable(st, o, now);
    sqlite3_bind_int64(st, 7, o->id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        o->updated_at = now;
    else if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE &&
             strstr(sqlite3_errmsg(s->db), "objects.path")) {
        r = cit_error_set(CIT_E_OBJECT_EXISTS, "object already exists: %s", o->path);
        cit_error_context("path", "%s", o->path);
    } else
        r = cit__store_error(s, "cannot update the object");
    sqlite3_finalize(st);
    return r;
}

int cit__object_delete(cit_store *s, int64_t id) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, "DELETE FROM objects WHERE id = ?");
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = cit__store_error(s, "cannot delete the object");
    sqlite3_finalize(st);
    return r;
}

static int dup_blob(sqlite3_stmt *st, int col, uint8_t **out, size_t *len) {
    int n = sqlite3_column_bytes(st, col);
    const void *b = sqlite3_column_blob(st, col);
    *out = malloc(n ? (size_t)n : 1);
    if (!*out)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    if (n)
        memcpy(*out, b, (size_t)n);
    *len = (size_t)n;
    return 0;
}

int cit__version_get(cit_store *s, int64_t object_id, int version, cit_object_version *out) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st,
                               "SELECT version, tpm_public, tpm_private, tpm_name, created_at, parent_version, payload FROM "
                               "object_versions WHERE object_id = ? AND version = ?");
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, object_id);
    sqlite3_bind_int(st, 2, version);
    int rc = sqlite3_step(st);
    cit_object_version v = {0};
    if (rc == SQLITE_ROW) {
        v.version = sqlite3_column_int(st, 0);
        v.created_at = sqlite3_column_int64(st, 4);
        v.parent_version = sqlite3_column_int(st, 5);
        if (sqlite3_column_type(st, 6) == SQLITE_BLOB && (r = dup_blob(st, 6, &v.payload, &v.payload_len)) < 0) {
            sqlite3_finalize(st);
            cit__version_clear(&v);
            return r;
        }
        if ((r = dup_blob(st, 1, &v.pub, &v.pub_len)) == 0 && (r = dup_blob(st, 2, &v.priv, &v.priv_len)) == 0)
            r = dup_blob(st, 3, &v.name, &v.name_len);
        if (r == 0) {
            *out = v;
            memset(&v, 0, sizeof v);
        }
    } else if (rc == SQLITE_DONE) {
        r = cit_error_set(CIT_E_OBJECT_NOT_FOUND, "object version %d not found", version);
        cit_error_context("version", "%d", version);
    } else
        r = cit__store_error(s, "cannot read an object version");
    cit__version_clear(&v);
    sqlite3_finalize(st);
    return r;
}

int cit__version_name(cit_store *s, int64_t object_id, int version, uint8_t *out, size_t cap, size_t *len) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, "SELECT tpm_name FROM object_versions WHERE object_id = ? AND version = ?");
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, object_id);
    sqlite3_bind_int(st, 2, version);
    r = CIT_E_OBJECT_NOT_FOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        if (n >= 0 && (size_t)n <= cap) {
            memcpy(out, sqlite3_column_blob(st, 0), (size_t)n);
            *len = (size_t)n;
            r = 0;
        }
    }
    sqlite3_finalize(st);
    return r;
}

int cit__version_insert(cit_store *s, int64_t object_id, const cit_object_version *v) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st,
                               "INSERT INTO object_versions(object_id, version, tpm_public, "
                               "tpm_private, tpm_name, created_at, parent_version, payload) "
                               "VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, object_id);
    sqlite3_bind_int(st, 2, v->version);
    sqlite3_bind_blob(st, 3, v->pub, (int)v->pub_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, v->priv, (int)v->priv_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, v->name, (int)v->name_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, v->created_at ? v->created_at : time(NULL));
    if (v->parent_version)
        sqlite3_bind_int(st, 7, v->parent_version);
    else
        sqlite3_bind_null(st, 7);
    if (v->payload)
        sqlite3_bind_blob(st, 8, v->payload, (int)v->payload_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 8);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = cit__store_error(s, "cannot store the object version");
    sqlite3_finalize(st);
    return r;
}

void cit__object_list_free(cit_object *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        cit__object_clear(&list[i]);
    free(list);
}

int cit__object_list(cit_store *s, const char *kind, cit_object **out, size_t *n) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st,
                               kind ? "SELECT " OBJECT_COLUMNS " FROM objects WHERE kind = ? ORDER BY path"
                                    : "SELECT " OBJECT_COLUMNS " FROM objects ORDER BY path");
    if (r < 0)
        return r;
    if (kind)
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    cit_object *list = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            cit_object *nl = realloc(list, cap * sizeof(*nl));
            if (!nl) {
                r = cit_error_set(CIT_E_INTERNAL, "out of memory");
                break;
            }
            list = nl;
        }
        r = row_to_object(st, &list[len]);
        if (r < 0)
            break;
        len++;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = cit__store_error(s, "cannot list objects");
    sqlite3_finalize(st);
    if (r < 0) {
        cit__object_list_free(list, len);
        return r;
    }
    *out = list;
    *n = len;
    return 0;
}

json_t *cit__object_json(const cit_object *o, cit_store *s) {
    char created[32], updated[32];
    cit_time_rfc3339(created, sizeof created, o->created_at);
    cit_time_rfc3339(updated, sizeof updated, o->updated_at);
    json_t *j = json_object();
    json_object_set_new(j, "path", json_string(o->path));
    json_object_set_new(j, "kind", json_string(o->kind));
    json_object_set_new(j, "status", json_string(o->status));
    json_object_set_new(j, "algorithm", json_string(o->algorithm));
    if (o->scheme[0])
        json_object_set_new(j, "scheme", json_string(o->scheme));
    if (o->usage[0])
        json_object_set_new(j, "usage", json_string(o->usage));
    json_object_set_new(j, "version", json_integer(o->version));
    if (o->parent_id && s) {
        cit_object p = {0};
        if (cit__object_get(s, o->parent_id, &p) == 0)
            json_object_set_new(j, "parent", json_string(p.path));
        cit__object_clear(&p);
    }
    if (o->persistent_handle) {
        char h[16];
        snprintf(h, sizeof h, "0x%08x", o->persistent_handle);
        json_object_set_new(j, "persistent_handle", json_string(h));
    }
    json_object_set_new(j, "created", json_string(created));
    json_object_set_new(j, "updated", json_string(updated));
    json_t *meta = json_loads(o->metadata ? o->metadata : "{}", 0, NULL);
    if (meta && json_object_size(meta))
        json_object_set_new(j, "metadata", meta);
    else
        json_decref(meta);
    return j;
}

int cit__version_set_payload(cit_store *s, int64_t object_id, int version, const uint8_t *buf, size_t len) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, "UPDATE object_versions SET payload = ? WHERE object_id = ? AND version = ?");
    if (r < 0)
        return r;
    if (buf)
        sqlite3_bind_blob(st, 1, buf, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_int64(st, 2, object_id);
    sqlite3_bind_int(st, 3, version);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = cit__store_error(s, "cannot store the version's payload");
    else if (sqlite3_changes(s->db) != 1)
        r = cit_error_set(CIT_E_STORE_INCONSISTENT, "version %d of object %lld is missing", version, (long long)object_id);
    sqlite3_finalize(st);
    return r;
}
