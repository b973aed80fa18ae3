/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared network layer of citadel's programs (build/libcitadel-net.a, linked into
 * `citadel-net`, `tpmd` and `enrolld`, not `citadel`; GnuTLS): TLS credentials whose key is a PEM file or a TPM
 * identity (the handshake signature is made in the TPM), and a minimal HTTP/1.1 client over
 * TCP or TLS with server verification and optional mutual TLS. Uses libcitadel only through
 * include/citadel/. Errors go through cit_error_set like the library's: 0 or a negative CIT_E_*.
 * Docs: docs/net.md.
 */
#pragma once
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "citadel/citadel.h"

/* ---- TLS credentials ---- */

/* A certificate chain (PEM) with a key that is either a PEM file or a citadel identity whose
 * TPM key signs the handshake (a GnuTLS external private key). */
typedef struct cit_tls_creds cit_tls_creds;

/* From files: cert_pem_file (the chain, leaf first) and key_pem_file (unencrypted PEM, which
 * must not be readable by group or others: CIT_E_INSECURE_PERMISSIONS). The key file's bytes
 * are wiped after the import. CIT_E_INPUT_READ, CIT_E_INPUT_INVALID (not PEM, or the key does
 * not match the certificate: CIT_E_CERT_MISMATCH). *out is the caller's (cit_tls_creds_free). */
int cit_tls_creds_file(cit_tls_creds **out, const char *cert_pem_file, const char *key_pem_file);

/* From a TLS identity (usage tls-server or tls-client, ECC P-256 or P-384) of ctx's store:
 * every handshake signature is cit_key_sign in the TPM (tls_handshake: not gated by sign
 * approvals). cert_pem: the chain (PEM text), NULL for the identity's stored certificate. The
 * certificate's key must be the identity's (CIT_E_CERT_MISMATCH), and one signature made
 * through the GnuTLS path must verify with it before this returns. sign_lock: a mutex taken
 * around each use of ctx from the callback (NULL when the caller never uses ctx concurrently).
 * ctx and sign_lock are borrowed and must outlive the credentials. CIT_E_OBJECT_KIND (not a TLS
 * identity), CIT_E_ALG_UNSUPPORTED (not ECC), CIT_E_USAGE (no certificate). */
int cit_tls_creds_identity(cit_tls_creds **out, cit_ctx *ctx, pthread_mutex_t *sign_lock, const char *identity,
                           const char *cert_pem /* NULL: the identity's stored certificate */);

void cit_tls_creds_free(cit_tls_creds *c);

/* For TLS servers (a GnuTLS certificate retrieve callback, e.g. tpmd's): the chain and key,
 * borrowed from c. */
void cit_tls_creds_gnutls(const cit_tls_creds *c, gnutls_pcert_st **pcert, unsigned *npcert, gnutls_privkey_t *key);
/* How many handshake signatures the TPM made for c (0 for file keys). */
unsigned long long cit_tls_creds_tpm_signs(const cit_tls_creds *c);
/* Whether the key is in the TPM. */
bool cit_tls_creds_in_tpm(const cit_tls_creds *c);
/* The actor recorded in the operation log for the TPM signatures (default "tls"); copied. */
void cit_tls_creds_set_actor(cit_tls_creds *c, const char *actor);
/* Takes lock(arg)/unlock(arg) around each TPM signature instead of sign_lock (a daemon whose
 * TPM lock is more than a mutex, e.g. tpmd's, which lets waiters ahead of its TPM thread). */
void cit_tls_creds_set_lock_fns(cit_tls_creds *c, void (*lock)(void *), void (*unlock)(void *), void *arg);

/* ---- HTTP servers (tpmd, enrolld) ---- */

/* A --listen address: "ADDR:PORT" with an IPv4 address, "[IPv6]:PORT" or "localhost:PORT" (as
 * 127.0.0.1). Fills the socket address and its length, the address as text (host, hl bytes),
 * the port and whether the address is a loopback one. CIT_E_USAGE, with the reason. */
int cit_net_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *host, size_t hl,
                         uint16_t *port, bool *loopback);

/* Appends n bytes of a request body, keeping it NUL-terminated. Past max the rest is dropped and
 * *too_large set (the server reads the body to its end and answers 413). The buffer grows by
 * copying and wiping the old one, never realloc (a body may carry a secret). 0, or -1 when
 * memory ran out. */
int cit_http_body_append(char **body, size_t *len, size_t *cap, bool *too_large, const char *data, size_t n,
                         size_t max);

/* ---- HTTP/1.1 client ---- */

#define CIT_HTTP_RESPONSE_MAX (16u * 1024 * 1024) /* body cap */
#define CIT_HTTP_HEADER_MAX (64u * 1024)          /* status line and headers cap */

/* A response: the status code and the body (NUL-terminated, len bytes without the NUL). */
typedef struct cit_http_resp {
    int status;
    char *body;
    size_t len;
} cit_http_resp;

/* One request on a fresh connection (Connection: close), http:// or https://host[:port]/path
 * (IPv6 as [addr]). ca_file: the trust anchors for https (required; the server's certificate
 * chain must verify against them and name the URL's host, DNS or IP); creds: a client
 * certificate for mutual TLS (may be NULL; a TPM identity's signs the handshake in the TPM).
 * content_type/body: the request body (body may be NULL with body_len 0). headers: extra
 * "Name: value" lines, NULL-terminated, may be NULL. timeout_sec bounds the whole request
 * (0: 30 s). Responses with Content-Length, chunked, or delimited by the close are read, up to
 * CIT_HTTP_RESPONSE_MAX. Any HTTP status is a success here: look at resp->status.
 * Errors: CIT_E_USAGE (bad URL, method, header), CIT_E_NET_CONNECT (name resolution, connection
 * refused, unreachable), CIT_E_NET_TLS (the server's certificate did not verify: the reason is a
 * cause; or the handshake failed), CIT_E_NET_TIMEOUT, CIT_E_NET_RESPONSE (too large: over
 * CIT_HTTP_RESPONSE_MAX; or not HTTP/1.x), CIT_E_INPUT_READ (ca_file). *resp is filled only on
 * success; free it with cit_http_resp_free. */
int cit_http_request(cit_http_resp *resp, const char *method, const char *url, const char *ca_file,
                     cit_tls_creds *creds, const char *content_type, const char *body, size_t body_len,
                     const char *const *headers /* "Name: value", NULL-terminated, may be NULL */,
                     unsigned timeout_sec);
void cit_http_resp_free(cit_http_resp *r);

/* Internal (tests/fuzz/fuzz-http.c): parses a raw HTTP response held in memory as
 * cit_http_request parses one from the network, delivered step bytes per read (0: 1). */
int cit__http_parse_response(cit_http_resp *resp, const uint8_t *raw, size_t len, size_t step, bool head);

/* daemon.c: what the daemons' main()s share. A usage error (TPM0002) whose next step is
 * `PROG --help`; an environment setting, NULL when unset or empty; a failure to start reported
 * on stderr as "PROG: what" and the error. */
int cit_daemon_usage(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cit_daemon_env(const char *name);
void cit_daemon_fatal(const char *prog, const char *what);
