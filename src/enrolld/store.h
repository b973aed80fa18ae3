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

/* What a compare-and-set checks besides the status (update). */
typedef struct enr_cas {
    /* The node's version as read ("version" of get/get_by_serial); every update bumps it, so a
     * step working on an older snapshot loses. < 0: not checked. */
    int64_t version;
    /* To "approved" only when no other approved enrollment of the same host belongs to another
     * EK (this EK fingerprint): two TPMs are never both approved under one host name. */
    const char *sole_host_ek;
} enr_cas;

struct enr_store {
    void *impl;
    /* Inserts a new node (status and record given). CIT_E_ENROLL_DB on failure. */
    int (*insert)(enr_store *s, const char *id, const char *host, const char *status, const json_t *record);
    /* The node by id, or else by host name (the newest enrollment of that host):
     * {"id","host","status","created","updated","version","record"}. CIT_E_ENROLL_NOT_FOUND. */
    int (*get)(enr_store *s, const char *id_or_host, json_t **out);
    /* The node whose AK or DevID certificate has this serial (hex, lower case). */
    int (*get_by_serial)(enr_store *s, const char *serial, json_t **out);
    /* Compare-and-set: changes status from `from` to `to` and replaces the record, only when the
     * node's status is still `from` (one of a "|"-separated list). *changed false when it was
     * not (another request won: a replay), and nothing is written. */
    int (*transition)(enr_store *s, const char *id, const char *from, const char *to, const json_t *record,
                      bool *changed);
    /* transition with more checks (cas may be NULL): the version read, the host's sole approved EK. */
    int (*update)(enr_store *s, const char *id, const char *from, const char *to, const json_t *record,
                  const enr_cas *cas, bool *changed);
    /* Marks "started" enrollments whose nonce expired before now as "expired"; *open: how many
     * stay started. */
    int (*expire)(enr_store *s, int64_t now, int64_t *open);
    /* The ids (newest first) of the host's enrollments with one of these statuses ("|"-separated). */
    int (*host_ids)(enr_store *s, const char *host, const char *statuses, json_t **out);
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
