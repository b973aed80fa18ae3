/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enrolld: the fleet enrollment server (docs/enrollment.md). Nodes prove their TPM (EK
 * certificate, credential activation bound to the AK, a quote over a fresh nonce, TPM2_Certify
 * of a DevID key), an operator approves them, and the server's CA (`citadel ca`) issues their AK
 * and DevID certificates. Its own SQLite database (store.h) keeps the nodes; its citadel
 * workspace keeps the CA, the manufacturer trust store and the audit log (stream "enroll").
 */
#pragma once
#include <microhttpd.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "citadel/citadel.h"
#include "enrolld/store.h"
#include "net/net.h"
#include "tpmd/tpmd.h" /* the API keys file (tpmd_keys_load / tpmd_keys_check) */

#define ENR_SECRET_BYTES 32
#define ENR_NONCE_BYTES 32

typedef struct enrolld_config {
    char host[64];
    uint16_t port;
    const char *backend, *store_path, *vtpm_state, *tcti;
    const char *db_path;
    const char *ca_name;
    const char *tls_cert, *tls_key;
    const char *tls_identity; /* the server's TLS key in the TPM (a tls-server identity) */
    const char *keys_file;
    const char *ek_ca;       /* extra manufacturer CAs (PEM bundle, DER file or directory) */
    const char *tokens_file; /* enrollment tokens, one per line: required when given */
    const char *admin_cn;    /* a client certificate of the CA with this CN is an admin */
    const char *pcr_policy;  /* a JSON file {"sha256": {"0": "hex", ...}}: required values */
    char pcrs[64];           /* the PCRs a node quotes, "0,2,4,7" */
    uint32_t pcr_mask;
    unsigned nonce_ttl;      /* seconds */
    int64_t max_pending;     /* open started enrollments at most (--max-pending) */
    size_t max_body;
    unsigned max_conns, timeout;
    int cert_days;           /* <= 0: the CA profiles' defaults */
    bool auto_approve;
    bool require_eventlog;
    bool insecure_http;      /* tests and demos on loopback only */
} enrolld_config;

typedef struct enrolld {
    enrolld_config cfg;
    cit_ctx *ctx; /* the server's workspace: CA, trust stores, audit log; used under ctx_lock */
    pthread_mutex_t ctx_lock;
    cit_ca *ca;   /* open once, used under ctx_lock */
    char *ca_pem;
    X509 *ca_cert;
    X509_STORE *ek_trust; /* manufacturer CAs; SIGHUP swaps it (and keys) under reload_lock */
    pthread_mutex_t reload_lock;
    json_t *pcr_policy;
    enr_store *db;
    tpmd_keyset *keys;
    char **tokens; /* SHA-256 hex of each token */
    size_t ntokens;
    char *tls_cert_pem, *tls_key_pem;
    cit_tls_creds *tls; /* --tls-identity: handshakes signed in the TPM (under ctx_lock) */
    char *crl_pem;  /* the last CRL signed, under ctx_lock: anyone may ask for it, so it is signed */
    int64_t crl_at; /* again only after a revocation here or a minute */
    struct MHD_Daemon *mhd;
    atomic_int inflight;
    atomic_bool draining;
} enrolld;

/* A request in progress. */
typedef struct enr_req {
    char *body;
    size_t len, cap;
    bool too_large;
    char remote[64];
    char actor[80]; /* "key:ID", "cert:SERIAL", "node:HOST" or "anonymous" */
} enr_req;

/* http.c */
enum MHD_Result enr_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls);
void enr_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe);

/* enroll.c: the routes' work. Each returns 0 with *out (the answer) or a negative code with
 * cit_error_last() filled; every rejection and decision is in the audit log. */
int enr_start(enrolld *d, enr_req *rq, json_t *body, json_t **out);
int enr_finish(enrolld *d, enr_req *rq, const char *id, json_t *body, json_t **out);
int enr_fetch(enrolld *d, enr_req *rq, const char *id, const char *token, json_t **out);
int enr_admin_list(enrolld *d, enr_req *rq, const char *status, json_t **out);
int enr_admin_show(enrolld *d, enr_req *rq, const char *node, json_t **out);
int enr_admin_decide(enrolld *d, enr_req *rq, const char *node, const char *verb, json_t *body, json_t **out);
int enr_admin_config_set(enrolld *d, enr_req *rq, json_t *body, json_t **out);
int enr_admin_config_get(enrolld *d, enr_req *rq, const char *node, json_t **out);
/* node routes: node is the record of the authenticated node (mutual TLS) */
int enr_node_config(enrolld *d, enr_req *rq, json_t *node, json_t **out);
int enr_node_renew_start(enrolld *d, enr_req *rq, json_t *node, json_t **out);
int enr_node_renew(enrolld *d, enr_req *rq, json_t *node, json_t *body, json_t **out);
int enr_crl(enrolld *d, char **pem);
/* Appends an audit entry (stream enroll) under the context lock; the error code (if any) and
 * message of cit_error_last() are recorded with payload's members. Keeps cit_error_last(). */
void enr_audit(enrolld *d, enr_req *rq, const char *event, json_t *payload /* stolen */, int code);
/* The client certificate of a mutual-TLS connection, checked: issued by the server's CA, valid
 * now, not revoked. *serial (hex) the certificate's. CIT_E_ENROLL_CLIENT_CERT, CIT_E_ENROLL_REVOKED. */
int enr_client_cert(enrolld *d, struct MHD_Connection *c, char serial[80], char cn[128]);

void enr_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
