/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enrolld's storage, behind a table of function pointers so another backend (PostgreSQL) can
 * follow the embedded SQLite one (store_sqlite.c). A node is an enrollment: a few indexed
 * columns (id, host, status, EK name, certificate serials) and its record, a JSON object with
 * everything else (docs/enrollment.md, "Server database"). Every function returns 0 or a
 * negative CIT_E_* code with cit_error_last() filled in; json_t outputs are the caller's.
 * A store is used by several threads at once: implementations serialise what they must.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct enr_store enr_store;

struct enr_store {
    void *impl;
    /* Inserts a new node (status and record given). CIT_E_ENROLL_DB on failure. */
    int (*insert)(enr_store *s, const char *id, const char *host, const char *status, const json_t *record);
    /* The node by id, or else by host name (the newest enrollment of that host):
     * {"id","host","status","created","updated","record"}. CIT_E_ENROLL_NOT_FOUND. */
    int (*get)(enr_store *s, const char *id_or_host, json_t **out);
    /* The node whose AK or DevID certificate has this serial (hex, lower case). */
    int (*get_by_serial)(enr_store *s, const char *serial, json_t **out);
    /* Compare-and-set: changes status from `from` to `to` and replaces the record, only when the
     * node's status is still `from` (one of a "|"-separated list). *changed false when it was
     * not (another request won: a replay), and nothing is written. */
    int (*transition)(enr_store *s, const char *id, const char *from, const char *to, const json_t *record,
                      bool *changed);
    /* Nodes (status NULL: all) newest first, without their records' large members. */
    int (*list)(enr_store *s, const char *status, json_t **out);
    /* Configuration: scope "global", "group:NAME" or "node:HOST"; value NULL deletes. */
    int (*config_set)(enr_store *s, const char *scope, const char *key, const char *value);
    /* Every setting of the given scopes: {"scope": {"key": "value"}} */
    int (*config_get)(enr_store *s, const char *const *scopes, size_t n, json_t **out);
    void (*close)(enr_store *s);
};

/* Opens (creating it 0600 when missing) the SQLite database at path: WAL, busy timeout. */
int enr_store_sqlite_open(enr_store **out, const char *path);
