/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tpmd: the TPM as a REST service. A thin layer over libcitadel: each route parses its JSON
 * body, calls the library function the matching CLI verb calls under one mutex (a cit_ctx is
 * not thread-safe and libtpms is one TPM per process), and answers the library's result tree
 * rendered exactly as `citadel --json` renders it.
 */
#pragma once
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "citadel/citadel.h"
#include "net/net.h"

enum { ROLE_NONE = 0, ROLE_READ = 1, ROLE_SIGN = 2, ROLE_ADMIN = 3 };

typedef struct tpmd_key {
    char id[64];
    int role;
    uint8_t hash[32]; /* SHA-256 of the key: compared in constant time, the key itself not kept */
} tpmd_key;

typedef struct tpmd_keyset {
    size_t n;
    tpmd_key *v;
} tpmd_keyset;

typedef struct tpmd_config {
    char host[64];
    uint16_t port;
    const char *backend, *store_path, *vtpm_state, *tcti;
    const char *keys_file;
    const char *tls_cert, *tls_key, *tls_identity;
    size_t max_body;
    unsigned max_conns, timeout, threads, idle_lock, url_max, header_max, drain_seconds, header_timeout;
    bool insecure_no_auth;
    bool loopback; /* the listen address is a loopback one */
} tpmd_config;

typedef struct auditq auditq;
typedef struct tpmq tpmq;

/* A client connection, watched for slow headers (socket context of MHD). */
typedef struct tpmd_conn {
    struct tpmd_conn *prev, *next;
    int fd;
    uint64_t waiting_since; /* when it started waiting for a request's headers; 0: in a request */
} tpmd_conn;

typedef struct tpmd {
    tpmd_config cfg;
    cit_ctx *ctx;               /* the one TPM context, used under tpm_lock */
    pthread_mutex_t tpm_lock;   /* taken through tpmd_tpm_lock, which counts the waiters */
    atomic_int tpm_waiters;     /* threads waiting for tpm_lock: the TPM thread lets them go first */
    cit_keycache *kc;           /* unsealed ed25519 keys (thread-safe on its own) */
    pthread_rwlock_t keys_lock; /* SIGHUP swaps the key set */
    tpmd_keyset *keys;          /* NULL: no keys configured (loopback or --insecure-no-auth) */
    auditq *aq;
    tpmq *tq;                   /* the TPM thread: signature requests run back to back */
    atomic_int tpm_jobs;        /* jobs queued on or running on the TPM thread (tpmq_run) */
    struct MHD_Daemon *mhd;
    pthread_mutex_t conns_lock;
    tpmd_conn *conns;
    atomic_int inflight;
    atomic_bool draining;
    cit_tls_creds *tls;         /* NULL: plain HTTP */
    /* metrics */
    uint64_t started_usec;
    atomic_ullong req_total, req_2xx, req_4xx, req_5xx, sign_total, sign_usec, auth_failures,
        audit_entries, audit_batches, audit_held, conns_open;
} tpmd;

/* A request in progress (MHD's per-request pointer). */
typedef struct tpmd_req {
    char *body;
    size_t len, cap;
    bool too_large;
    bool counted;
    int role;
    char key_id[64];
    bool auth_failed;
    int auth_code;
    const char *remote;
    char remote_buf[64];
} tpmd_req;

/* http.c */
enum MHD_Result tpmd_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                            const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls);
void tpmd_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe);
void tpmd_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* auth.c */
/* Loads the keys file (lines "ID ROLE KEY"; '#' comments), refusing one that group or others
 * can read. *out is the caller's (tpmd_keyset_free). */
int tpmd_keys_load(tpmd_keyset **out, const char *file, const char *env_key);
void tpmd_keyset_free(tpmd_keyset *k);
/* The role of the presented key (ROLE_NONE when unknown); id gets the key's id. Every key is
 * compared, in constant time. */
int tpmd_keys_check(const tpmd_keyset *k, const char *presented, char id[64]);
const char *tpmd_role_name(int role);
/* Ends connections that took longer than the header timeout to send a request's headers (a
 * client trickling bytes is never idle, so the idle timeout alone does not end it). */
size_t tpmd_conns_reap(tpmd *d);

/* auditq.c: group commit of audit entries (stream tpmd) by a writer thread on its own context */
int auditq_start(auditq **out, tpmd *d);
/* Appends one entry and waits until it is committed (0) or failed (negative code). */
int auditq_append(auditq *q, const char *event, json_t *payload);
/* Appends without waiting (authentication failures). */
void auditq_post(auditq *q, const char *event, json_t *payload);
/* Group commit: while more than AUDIT_HOLD_JOBS jobs are queued on the TPM thread (each one a
 * request that appends an entry when it is done), the writer keeps its batch open, at most
 * AUDIT_HOLD_USEC after the oldest entry; see auditq.c. */
#define AUDIT_HOLD_JOBS 3
#define AUDIT_HOLD_USEC 5000
/* Called by the TPM thread when its queue runs low: a writer holding a batch open for the
 * entries of queued signatures commits it now (cheap when it holds nothing). */
void auditq_kick(auditq *q);
void auditq_stop(auditq *q);

/* tpmq.c: the TPM thread */
/* The TPM lock for everything but the TPM thread: counted, so that thread, which would take
 * the lock again before a woken waiter is even scheduled, steps aside between its batches. */
void tpmd_tpm_lock(tpmd *d);
void tpmd_tpm_unlock(tpmd *d);
void tpmd_tpm_lock_cb(void *d);   /* the same, for src/net's TLS credentials */
void tpmd_tpm_unlock_cb(void *d);
int tpmq_start(tpmq **out, tpmd *d);
/* Runs fn(arg) on the TPM thread under the TPM lock, the context's actor set to actor; returns
 * its result with its error state (cit_error_last) carried over to the calling thread. */
int tpmq_run(tpmq *q, const char *actor, int (*fn)(void *arg), void *arg);
/* Runs what is queued, then stops the thread. */
void tpmq_stop(tpmq *q);

/* tls.c */
/* Loads TLS material for the configuration: files, or the TPM identity's key (its certificate
 * from the identity or tls_cert; refuses a certificate whose key is not the identity's). */
int tpmd_tls_setup(tpmd *d);
int tpmd_tls_cert_cb(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                     const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                     unsigned int *pcert_length, gnutls_privkey_t *privkey);
void tpmd_tls_free(tpmd *d);

extern tpmd *tpmd_global; /* for callbacks that carry no user pointer (GnuTLS retrieve) */

/* Renders a result tree as `citadel --json` does (schema_version first, '_' keys dropped). */
char *tpmd_render(const json_t *j, size_t *len);
void tpmd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
