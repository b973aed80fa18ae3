/* SPDX-License-Identifier: Apache-2.0 */
/* The certificate authority's tables in a workspace export (docs/ca.md, "Backup"): the CAs
 * (with a file CA's key still encrypted under its TPM-sealed KEK, whose object travels with the
 * export's objects), the certificates they issued with their revocations, and the trust stores.
 * An import adds rows and never overwrites: a CA, certificate or trust entry already in the
 * workspace refuses the whole import (a trust entry with the same certificate is skipped). */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/ca_backup.h"
#include "crypto/crypto.h"
#include "ctx.h"

/* Each column: its name and type: 't' text, 'i' integer, 'b' blob (base64 in the export);
 * a trailing '?' allows NULL (left out of the export). */
typedef struct {
    const char *table, *order, *cols[16];
} ca_table;

static const ca_table tables[] = {
    /* a parent CA is always made before its children: rowid order inserts parents first */
    {"ca", "rowid",
     {"name:t", "parent:t?", "algorithm:t", "key_kind:t", "key_object:t", "key_blob:b?", "serials:t", "serial:t",
      "subject:t", "not_before:i", "not_after:i", "cert_pem:t", "crl_number:i", "crl_pem:t?", "created_at:i", NULL}},
    {"ca_certs", "rowid",
     {"serial:t", "ca:t", "subject:t", "profile:t", "not_before:i", "not_after:i", "status:t", "revoked_at:i?",
      "reason:t?", "pem:t", "created_at:i", NULL}},
    {"ca_trust", "rowid",
     {"store:t", "name:t", "subject:t", "fingerprint:t", "not_after:i", "pem:t", "created_at:i", NULL}},
};

static void col_split(const char *spec, char *name, size_t n, char *type, bool *nullable) {
    const char *c = strchr(spec, ':');
    snprintf(name, n, "%.*s", (int)(c - spec), spec);
    *type = c[1];
    *nullable = c[2] == '?';
}

/* Every column of the table must be in t->cols: a column a later schema adds and this file does
 * not know would otherwise be left out of every backup without a word. */
static int table_known(cit_store *s, const ca_table *t) {
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT * FROM %s LIMIT 0", t->table);
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, sql);
    if (r < 0)
        return r;
    for (int i = 0; r == 0 && i < sqlite3_column_count(st); i++) {
        const char *col = sqlite3_column_name(st, i);
        bool known = false;
        for (size_t c = 0; t->cols[c] && !known; c++)
            known = strncmp(t->cols[c], col, strlen(col)) == 0 && t->cols[c][strlen(col)] == ':';
        if (!known)
            r = cit_error_set(CIT_E_INTERNAL, "the export does not know the column %s.%s", t->table, col);
    }
    sqlite3_finalize(st);
    return r;
}

/* Appends to the SQL text in sql (cap bytes) at off; returns the new length, which is >= cap
 * once it no longer fits (nothing is written past the buffer: the caller refuses that). */
static size_t sql_cat(char *sql, size_t cap, size_t off, const char *fmt, ...) {
    if (off >= cap)
        return off;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql + off, cap - off, fmt, ap);
    va_end(ap);
    return n < 0 ? cap : off + (size_t)n;
}

/* The table's columns, "a, b, c", or as many placeholders "?, ?, ?". */
static size_t sql_columns(char *sql, size_t cap, size_t off, const ca_table *t, bool placeholders) {
    for (size_t i = 0; t->cols[i]; i++) {
        char name[32], type;
        bool nullable;
        col_split(t->cols[i], name, sizeof name, &type, &nullable);
        off = sql_cat(sql, cap, off, "%s%s", i ? ", " : "", placeholders ? "?" : name);
    }
    return off;
}

static int table_export(cit_store *s, const ca_table *t, json_t **out) {
    int r0 = table_known(s, t);
    if (r0 < 0)
        return r0;
    char sql[512];
    size_t off = sql_cat(sql, sizeof sql, 0, "SELECT ");
    off = sql_columns(sql, sizeof sql, off, t, false);
    off = sql_cat(sql, sizeof sql, off, " FROM %s ORDER BY %s", t->table, t->order);
    if (off >= sizeof sql)
        return cit_error_set(CIT_E_INTERNAL, "the query on %s does not fit its buffer", t->table);
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, sql);
    if (r < 0)
        return r;
    json_t *rows = json_array();
    int rc;
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_object();
        for (int i = 0; t->cols[i]; i++) {
            char name[32], type;
            bool nullable;
            col_split(t->cols[i], name, sizeof name, &type, &nullable);
            if (sqlite3_column_type(st, i) == SQLITE_NULL)
                continue;
            if (type == 'i')
                json_object_set_new(row, name, json_integer(sqlite3_column_int64(st, i)));
            else if (type == 't') {
                json_t *v = json_string((const char *)sqlite3_column_text(st, i));
                if (!v) /* not UTF-8: refuse rather than leave a column out */
                    r = cit_error_set(CIT_E_STORE_IO, "the %s column of a row of %s is not UTF-8 text", name,
                                      t->table);
                else
                    json_object_set_new(row, name, v);
            } else {
                char *b64 = NULL;
                if (cit__base64_encode(&b64, sqlite3_column_blob(st, i), (size_t)sqlite3_column_bytes(st, i)) < 0)
                    r = cit_error_set(CIT_E_INTERNAL, "out of memory");
                else
                    json_object_set_new(row, name, json_string(b64));
                free(b64);
            }
        }
        json_array_append_new(rows, row);
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = cit__store_error(s, "read the CA tables");
    sqlite3_finalize(st);
    if (r < 0) {
        json_decref(rows);
        return r;
    }
    *out = rows;
    return 0;
}

int cit__ca_export(cit_store *s, json_t **out) {
    json_t *ca = json_object();
    for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
        json_t *rows = NULL;
        int r = table_export(s, &tables[i], &rows);
        if (r < 0) {
            json_decref(ca);
            return r;
        }
        json_object_set_new(ca, tables[i].table, rows);
    }
    *out = ca;
    return 0;
}

static int invalid(const char *input, const char *table, size_t row, const char *why) {
    char where[512];
    snprintf(where, sizeof where, "ca.%s[%zu]: %s", table, row, why);
    return cit__import_invalid(input, where);
}

/* 1 when the row's key is already in the workspace (a trust entry: its name or its certificate in
 * that store), 0 when not; *same: a trust entry of this name and this certificate. */
static int row_exists(cit_store *s, const char *table, const json_t *row, bool *same) {
    sqlite3_stmt *st;
    bool trust = strcmp(table, "ca_trust") == 0, ca = strcmp(table, "ca") == 0;
    const char *sql = ca      ? "SELECT name, NULL FROM ca WHERE name = ?"
                      : trust ? "SELECT name, fingerprint FROM ca_trust WHERE store = ? AND (name = ? OR fingerprint = ?)"
                              : "SELECT serial, NULL FROM ca_certs WHERE serial = ?";
    int r = cit__store_prepare(s, &st, sql);
    if (r < 0)
        return r;
    const char *name = json_string_value(json_object_get(row, "name")),
               *fp = json_string_value(json_object_get(row, "fingerprint"));
    sqlite3_bind_text(st, 1, json_string_value(json_object_get(row, ca ? "name" : trust ? "store" : "serial")), -1,
                      SQLITE_STATIC);
    if (trust) {
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, fp, -1, SQLITE_STATIC);
    }
    int rc = sqlite3_step(st);
    *same = trust && rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0) ?: "", name ?: "") == 0 &&
            strcmp((const char *)sqlite3_column_text(st, 1) ?: "", fp ?: "") == 0;
    r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : cit__store_error(s, "read the CA tables");
    sqlite3_finalize(st);
    return r;
}

static int exists_error(size_t t, const json_t *row, const char *input) {
    const char *what = t == 0 ? "a CA" : t == 1 ? "a certificate with serial" : "a trust entry of the name or certificate of";
    const char *key = json_string_value(json_object_get(row, t == 1 ? "serial" : "name"));
    cit_error_set(CIT_E_CA_EXISTS, "the workspace already has %s %s", what, key ? key : "?");
    cit_error_cause("import adds and never overwrites; nothing was imported");
    cit_error_context("file", "%s", input);
    cit_error_step("import into another workspace, or remove the CA from the export");
    return CIT_E_CA_EXISTS;
}

/* The subject of CA name: from the export's rows, else from the workspace (NULL: unknown). */
static char *ca_subject(cit_store *s, const json_t *ca, const char *name) {
    size_t i;
    const json_t *row;
    if (!name)
        return NULL;
    json_array_foreach(json_object_get(ca, "ca"), i, row) {
        const char *n = json_string_value(json_object_get(row, "name")), *subj = json_string_value(json_object_get(row, "subject"));
        if (n && subj && strcmp(n, name) == 0)
            return strdup(subj);
    }
    sqlite3_stmt *st;
    char *res = NULL;
    if (cit__store_prepare(s, &st, "SELECT subject FROM ca WHERE name = ?") < 0) {
        cit_error_clear();
        return NULL;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        res = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return res;
}

/* NULL when the row's certificate is what the row says it is, else why not. */
static const char *row_cert_problem(cit_store *s, const json_t *ca, size_t t, const json_t *row) {
    cit_ca_row_claims c = {.subject = json_string_value(json_object_get(row, "subject"))};
    const json_t *nb = json_object_get(row, "not_before"), *na = json_object_get(row, "not_after");
    c.has_not_before = nb != NULL;
    c.not_before = json_integer_value(nb);
    c.has_not_after = na != NULL;
    c.not_after = json_integer_value(na);
    const char *pem;
    bool must_be_ca = t != 1;
    char *issuer = NULL;
    if (t == 2) { /* trust entry */
        pem = json_string_value(json_object_get(row, "pem"));
        c.fingerprint = json_string_value(json_object_get(row, "fingerprint"));
    } else {
        pem = json_string_value(json_object_get(row, t == 0 ? "cert_pem" : "pem"));
        c.serial = json_string_value(json_object_get(row, "serial"));
        /* an intermediate's issuer is its parent, an issued certificate's its CA; a root's is itself */
        const char *by = json_string_value(json_object_get(row, t == 0 ? "parent" : "ca"));
        if (t == 0 && !by)
            c.issuer = c.subject;
        else if (!(c.issuer = issuer = ca_subject(s, ca, by)))
            return "its CA is neither in the workspace nor in the export";
    }
    const char *why = cit__ca_import_cert_problem(pem, must_be_ca, &c);
    free(issuer);
    return why;
}

int cit__ca_import_check(cit_store *s, const json_t *ca, const char *input) {
    if (!ca)
        return 0;
    if (!json_is_object(ca))
        return invalid(input, "", 0, "\"ca\" is not an object");
    for (size_t t = 0; t < ELEMENTSOF(tables); t++) {
        const json_t *rows = json_object_get(ca, tables[t].table);
        if (!rows)
            continue;
        if (!json_is_array(rows))
            return invalid(input, tables[t].table, 0, "not an array");
        size_t i;
        const json_t *row;
        json_array_foreach(rows, i, row) {
            if (!json_is_object(row))
                return invalid(input, tables[t].table, i, "not an object");
            for (size_t c = 0; tables[t].cols[c]; c++) {
                char name[32], type;
                bool nullable;
                col_split(tables[t].cols[c], name, sizeof name, &type, &nullable);
                const json_t *v = json_object_get(row, name);
                if (!v || json_is_null(v)) {
                    if (!nullable) {
                        char why[64];
                        snprintf(why, sizeof why, "%s is missing", name);
                        return invalid(input, tables[t].table, i, why);
                    }
                    continue;
                }
                if (type == 'i' ? !json_is_integer(v) : !json_is_string(v)) {
                    char why[64];
                    snprintf(why, sizeof why, "%s is not %s", name, type == 'i' ? "an integer" : "a string");
                    return invalid(input, tables[t].table, i, why);
                }
            }
            /* the certificates must be what the row says (a trust store decides whom enrollment
             * believes, and `ca trust list` shows the row, the bundle the certificate) */
            const char *why = row_cert_problem(s, ca, t, row);
            if (why)
                return invalid(input, tables[t].table, i, why);
            bool same = false;
            int r = row_exists(s, tables[t].table, row, &same);
            if (r < 0)
                return r;
            if (r == 1 && !same)
                return exists_error(t, row, input);
        }
    }
    return 0;
}

static int row_insert(cit_store *s, const ca_table *t, const json_t *row, const char *input, size_t idx) {
    char sql[640];
    size_t off = sql_cat(sql, sizeof sql, 0, "INSERT INTO %s (", t->table);
    off = sql_columns(sql, sizeof sql, off, t, false);
    off = sql_cat(sql, sizeof sql, off, ") VALUES (");
    off = sql_columns(sql, sizeof sql, off, t, true);
    off = sql_cat(sql, sizeof sql, off, ")");
    if (off >= sizeof sql)
        return cit_error_set(CIT_E_INTERNAL, "the insert into %s does not fit its buffer", t->table);
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, sql);
    if (r < 0)
        return r;
    for (int i = 0; r == 0 && t->cols[i]; i++) {
        char name[32], type;
        bool nullable;
        col_split(t->cols[i], name, sizeof name, &type, &nullable);
        const json_t *v = json_object_get(row, name);
        if (!v || json_is_null(v))
            sqlite3_bind_null(st, i + 1);
        else if (type == 'i')
            sqlite3_bind_int64(st, i + 1, json_integer_value(v));
        else if (type == 't')
            sqlite3_bind_text(st, i + 1, json_string_value(v), -1, SQLITE_STATIC);
        else {
            uint8_t *blob = NULL;
            size_t len = 0;
            if (cit__base64_decode(&blob, &len, json_string_value(v)) < 0)
                r = invalid(input, t->table, idx, "a blob is not valid base64");
            else
                sqlite3_bind_blob(st, i + 1, blob, (int)len, SQLITE_TRANSIENT);
            free(blob);
        }
    }
    if (r == 0 && sqlite3_step(st) != SQLITE_DONE) {
        /* a CHECK or foreign key the export breaks (a status that is not one, a parent missing) */
        r = invalid(input, t->table, idx, sqlite3_errmsg(s->db));
    }
    sqlite3_finalize(st);
    return r;
}

int cit__ca_import(cit_store *s, const json_t *ca, const char *input, size_t *imported) {
    *imported = 0;
    if (!ca)
        return 0;
    for (size_t t = 0; t < ELEMENTSOF(tables); t++) {
        size_t i;
        const json_t *row;
        json_array_foreach(json_object_get(ca, tables[t].table), i, row) {
            bool same = false;
            int r = row_exists(s, tables[t].table, row, &same);
            if (r < 0)
                return r;
            /* checked before, but the transaction decides: a row the export repeats, or one a writer
             * added since the check, refuses the import (the same trust entry is skipped) */
            if (r == 1 && same)
                continue;
            if (r == 1)
                return exists_error(t, row, input);
            if (t == 0) { /* the CA's key must be here: in the workspace or among the objects imported */
                cit_object o = {0};
                const char *ko = json_string_value(json_object_get(row, "key_object"));
                if (cit__object_find(s, ko, &o) < 0) {
                    char why[CIT_PATH_MAX + 64];
                    snprintf(why, sizeof why, "its key object %s is neither in the workspace nor in the export", ko);
                    return invalid(input, "ca", i, why);
                }
                cit__object_clear(&o);
            }
            if ((r = row_insert(s, &tables[t], row, input, i)) < 0)
                return r;
            (*imported)++;
        }
    }
    return 0;
}
