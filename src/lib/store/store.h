/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The workspace store: one SQLite database (WAL, foreign keys, numbered migrations tracked in
 * PRAGMA user_version, application_id 'CITD'), created 0600. Internal to libcitadel.
 */
#pragma once
#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define CIT_STORE_APPLICATION_ID 0x43495444 /* "CITD" */

typedef struct cit_store {
    sqlite3 *db;
    char *path;
    int schema_version;
    char actor[64]; /* recorded in the operation log */
    bool wrote;     /* a write transaction committed: checkpoint the WAL at close */
} cit_store;

/* Opens an existing store (CIT_E_NOT_INITIALIZED when the file does not exist) or, with
 * create, makes a new one (directory 0700, file 0600). Refuses files that are not Citadel
 * stores (CIT_E_STORE_NOT_CITADEL) and newer schemas (CIT_E_STORE_SCHEMA_NEWER), leaving
 * them untouched; migrates older schemas in one transaction. */
int cit__store_open(cit_store **out, const char *path, bool create);
void cit__store_close(cit_store *s);
int cit__store_latest_schema(void);

/* Transactions (BEGIN IMMEDIATE so writers queue on the busy timeout). */
int cit__store_begin(cit_store *s);
int cit__store_commit(cit_store *s);
void cit__store_rollback(cit_store *s);

/* Records a SQLite failure as CIT_E_STORE_IO with the extended code and message. */
int cit__store_error(cit_store *s, const char *what);
/* Prepares sql; on failure records the error. */
int cit__store_prepare(cit_store *s, sqlite3_stmt **out, const char *sql);
/* Runs a statement without results. */
int cit__store_exec(cit_store *s, const char *sql);

/* Workspace metadata (key/value). get: *out NULL when absent (0 returned). */
int cit__store_meta_get(cit_store *s, const char *key, char **out);
int cit__store_meta_set(cit_store *s, const char *key, const char *value);

/* Appends to the operation log. object_id may be 0; details may be NULL (borrowed). */
/* Who is recorded as acting: $CITADEL_ACTOR, else the OS user name. */
const char *cit__store_actor(cit_store *s);
int cit__store_event(cit_store *s, const char *action, const char *path, int64_t object_id,
                     const char *outcome, json_t *details);

/* ---- objects ---- */
typedef struct cit_object {
    int64_t id;
    char path[256];
    char kind[16];      /* key, secret, nv, ak, ek, identity, policy, baseline */
    char status[16];    /* active, retired */
    char algorithm[16]; /* ecc-p256, ecc-p384, rsa-2048, rsa-3072 */
    char scheme[16];    /* ecdsa, rsassa, rsapss, or "" */
    char usage[16];     /* sign, storage */
    int64_t parent_id;  /* 0: under the storage primary key */
    int version;        /* current version */
    uint32_t persistent_handle; /* 0: loaded on demand */
    char *metadata;     /* JSON text, malloc'd */
    int64_t created_at, updated_at;
} cit_object;

typedef struct cit_object_version {
    int version;
    uint8_t *pub, *priv, *name; /* marshalled TPM2B_PUBLIC / TPM2B_PRIVATE, TPM name */
    size_t pub_len, priv_len, name_len;
    int64_t created_at;
    int parent_version; /* the parent's version it was created under; 0: the SRK / unknown */
    uint8_t *payload;   /* envelope ciphertext of a large sealed secret, or NULL */
    size_t payload_len;
} cit_object_version;

void cit__object_clear(cit_object *o);
void cit__version_clear(cit_object_version *v);

/* CIT_E_OBJECT_NOT_FOUND (with causes and next steps) when absent. */
int cit__object_find(cit_store *s, const char *path, cit_object *out);
int cit__object_get(cit_store *s, int64_t id, cit_object *out);
/* Inserts o (id set on return); CIT_E_OBJECT_EXISTS when the path is taken. */
int cit__object_insert(cit_store *s, cit_object *o);
/* Writes back the mutable fields (path, status, version, persistent_handle, metadata). */
int cit__object_update(cit_store *s, cit_object *o);
int cit__object_delete(cit_store *s, int64_t id);
int cit__version_get(cit_store *s, int64_t object_id, int version, cit_object_version *out);
int cit__version_insert(cit_store *s, int64_t object_id, const cit_object_version *v);
/* Replaces a version's payload (a certificate, for identities); buf NULL clears it. */
int cit__version_set_payload(cit_store *s, int64_t object_id, int version, const uint8_t *buf, size_t len);
/* Just the TPM name of a version (no error recorded; CIT_E_OBJECT_NOT_FOUND when absent). */
int cit__version_name(cit_store *s, int64_t object_id, int version, uint8_t *out, size_t cap, size_t *len);
/* All objects (ordered by path) matching kind (NULL = all). *out malloc'd array. */
int cit__object_list(cit_store *s, const char *kind, cit_object **out, size_t *n);
void cit__object_list_free(cit_object *list, size_t n);
/* The object as a result tree (no blobs). */
json_t *cit__object_json(const cit_object *o, cit_store *s);
