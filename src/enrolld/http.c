/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enrolld's requests: body limit, authentication (none for the enrollment steps, an admin API key
 * or admin client certificate for /v1/admin, the node's DevID certificate over mutual TLS for
 * /v1/node), routing, and answers in the CLI's JSON (errors with their stable codes).
 */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "basic/util.h"
#include "enrolld/enrolld.h"

void enr_log(const char *fmt, ...) {
    char ts[32];
    cit_time_rfc3339(ts, sizeof ts, (int64_t)time(NULL));
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s enrolld: %s\n", ts, msg);
}

static unsigned http_status(int code) {
    switch (code) {
    case CIT_E_API_UNAUTHENTICATED:
    case CIT_E_ENROLL_CLIENT_CERT:
    case CIT_E_ENROLL_TOKEN:
        return 401;
    case CIT_E_API_FORBIDDEN:
    case CIT_E_ENROLL_REVOKED:
        return 403;
    case CIT_E_API_NO_ROUTE:
    case CIT_E_ENROLL_NOT_FOUND:
        return 404;
    case CIT_E_API_METHOD:
        return 405;
    case CIT_E_ENROLL_REPLAY:
    case CIT_E_ENROLL_STATE:
    case CIT_E_ENROLL_AMBIGUOUS:
        return 409;
    case CIT_E_ENROLL_NONCE_EXPIRED:
        return 410;
    case CIT_E_INPUT_TOO_LARGE:
        return 413;
    case CIT_E_INPUT_INVALID:
    case CIT_E_USAGE:
        return 400;
    case CIT_E_API_UNAVAILABLE:
    case CIT_E_ENROLL_DB:
    case CIT_E_ENROLL_BUSY:
        return 503;
    }
    const cit_code_info *ci = cit_code_lookup(code < 0 ? -code : code);
    const char *cls = ci ? ci->cls : "internal";
    if (strcmp(cls, "attestation") == 0 || strcmp(cls, "enroll") == 0 || strcmp(cls, "usage") == 0)
        return 422;
    return 500;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *buf, size_t len, const char *ctype) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, const json_t *j) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return MHD_NO;
    cit_render(f, j, CIT_FORMAT_JSON);
    fclose(f);
    /* answers carry fetch tokens: wiped with the rest when freed is not possible through MHD's
     * MUST_FREE, so the buffer is short-lived and never logged */
    return send_text(c, status, buf, n, "application/json");
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return MHD_NO;
    cit_error_render(f, cit_error_last(), CIT_FORMAT_JSON);
    fclose(f);
    return send_text(c, status ? status : http_status(cit_error_last()->code), buf, n, "application/json");
}

/* ---- client certificates ---- */

static X509 *peer_cert(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return NULL;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n);
    if (!peers || n == 0)
        return NULL;
    const unsigned char *p = peers[0].data;
    return d2i_X509(NULL, &p, (long)peers[0].size);
}

int enr_client_cert(enrolld *d, struct MHD_Connection *c, char serial[80], char cn[128]) {
    X509 *x = peer_cert(c);
    if (!x)
        return cit_error_set(CIT_E_ENROLL_CLIENT_CERT, "the connection presented no client certificate");
    /* GnuTLS checked in the handshake that the client holds the certificate's key; here: issued
     * by this server's CA and valid now */
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    int r = 0;
    if (!st || !sc || X509_STORE_add_cert(st, d->ca_cert) != 1 || X509_STORE_CTX_init(sc, st, x, NULL) != 1)
        r = cit_error_set(CIT_E_INTERNAL, "cannot set up the certificate check");
    else {
        X509_STORE_CTX_set_flags(sc, X509_V_FLAG_PARTIAL_CHAIN);
        if (X509_verify_cert(sc) != 1) {
            r = cit_error_set(CIT_E_ENROLL_CLIENT_CERT, "the client certificate is not valid");
            cit_error_cause("%s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(sc)));
        }
    }
    X509_STORE_CTX_free(sc);
    X509_STORE_free(st);
    if (r == 0) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *h = bn ? BN_bn2hex(bn) : NULL;
        size_t i = 0;
        for (; h && h[i] && i + 1 < 80; i++)
            serial[i] = (char)(h[i] >= 'A' && h[i] <= 'F' ? h[i] + 32 : h[i]);
        serial[i] = 0;
        OPENSSL_free(h);
        BN_free(bn);
        cn[0] = 0;
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, 128);
        const char *status = NULL;
        pthread_mutex_lock(&d->ctx_lock);
        int sr = cit_ca_cert_status(d->ctx, serial, &status);
        pthread_mutex_unlock(&d->ctx_lock);
        if (sr < 0)
            r = sr;
        else if (status && strcmp(status, "revoked") == 0) {
            r = cit_error_set(CIT_E_ENROLL_REVOKED, "the client certificate %s is revoked", serial);
        } else if (!status || strcmp(status, "valid") != 0)
            r = cit_error_set(CIT_E_ENROLL_CLIENT_CERT, "the client certificate %s is %s", serial,
                              status ? status : "unknown to the CA");
    }
    X509_free(x);
    return r;
}

/* ---- routing ---- */

typedef enum { AUTH_NONE, AUTH_ADMIN, AUTH_NODE } auth_kind;

/* Splits "/v1/a/b/c" into at most 6 segments (each at most 127 bytes). */
static int split(const char *url, char seg[6][128]) {
    int n = 0;
    const char *p = url;
    while (*p == '/')
        p++;
    while (*p && n < 6) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 0 || l >= 128)
            return -1;
        memcpy(seg[n], p, l);
        seg[n][l] = 0;
        n++;
        p = e ? e + 1 : p + l;
    }
    return *p ? -1 : n;
}

static bool valid_segment(const char *s) {
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

static int admin_auth(enrolld *d, struct MHD_Connection *c, enr_req *rq) {
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    pthread_mutex_lock(&d->reload_lock);
    bool have_keys = d->keys != NULL;
    char id[64] = "";
    int role = key && have_keys ? tpmd_keys_check(d->keys, key, id) : ROLE_NONE;
    pthread_mutex_unlock(&d->reload_lock);
    if (key && have_keys) {
        if (role == ROLE_ADMIN) {
            snprintf(rq->actor, sizeof rq->actor, "key:%s", id);
            return 0;
        }
        return cit_error_set(CIT_E_API_UNAUTHENTICATED, "unknown admin API key");
    }
    if (!key && d->cfg.admin_cn) {
        char serial[80], cn[128];
        X509 *x = peer_cert(c);
        bool has = x != NULL;
        X509_free(x);
        if (has) {
            int r = enr_client_cert(d, c, serial, cn);
            if (r < 0)
                return r;
            /* a node's certificate is never an admin's, whatever host name (CN) it enrolled under */
            json_t *nd = NULL;
            if (d->db->get_by_serial(d->db, serial, &nd) == 0) {
                json_decref(nd);
                return cit_error_set(CIT_E_API_FORBIDDEN, "certificate %s is a node's, not an admin's", serial);
            }
            cit_error_clear();
            if (strcmp(cn, d->cfg.admin_cn) == 0) {
                snprintf(rq->actor, sizeof rq->actor, "cert:%s", serial);
                return 0;
            }
            return cit_error_set(CIT_E_API_FORBIDDEN, "the client certificate (CN=%s) is not the admin's", cn);
        }
    }
    cit_error_set(CIT_E_API_UNAUTHENTICATED, "admin routes need an admin API key (X-API-Key) or admin client certificate");
    return CIT_E_API_UNAUTHENTICATED;
}

static int node_auth(enrolld *d, struct MHD_Connection *c, enr_req *rq, json_t **node) {
    char serial[80], cn[128];
    int r = enr_client_cert(d, c, serial, cn);
    if (r == 0 && (r = d->db->get_by_serial(d->db, serial, node)) < 0) {
        cit_error_set(CIT_E_ENROLL_CLIENT_CERT, "the client certificate %s is not a node's DevID certificate", serial);
        r = CIT_E_ENROLL_CLIENT_CERT;
    }
    if (r == 0 && strcmp(json_string_value(json_object_get(*node, "status")), "approved") != 0) {
        r = strcmp(json_string_value(json_object_get(*node, "status")), "revoked") == 0
                ? cit_error_set(CIT_E_ENROLL_REVOKED, "node %s is revoked",
                                json_string_value(json_object_get(*node, "host")))
                : cit_error_set(CIT_E_ENROLL_STATE, "node %s is not approved",
                                json_string_value(json_object_get(*node, "host")));
        json_decref(*node);
        *node = NULL;
    }
    if (r == 0) {
        const char *devid = json_string_value(json_object_get(json_object_get(*node, "record"), "devid_serial"));
        if (!devid || strcmp(devid, serial) != 0) { /* an AK certificate is not a TLS credential */
            r = cit_error_set(CIT_E_ENROLL_CLIENT_CERT, "certificate %s is not the node's current DevID certificate", serial);
            json_decref(*node);
            *node = NULL;
        } else
            snprintf(rq->actor, sizeof rq->actor, "node:%s", json_string_value(json_object_get(*node, "host")));
    }
    return r;
}

static int parse_body(enr_req *rq, json_t **out) {
    if (rq->len == 0) {
        *out = json_object();
        return 0;
    }
    json_error_t err;
    json_t *j = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &err);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        cit_error_set(CIT_E_INPUT_INVALID, "the request body is not a JSON object%s%s", j ? "" : ": ", j ? "" : err.text);
        return CIT_E_INPUT_INVALID;
    }
    *out = j;
    return 0;
}

static enum MHD_Result route(enrolld *d, struct MHD_Connection *c, enr_req *rq, const char *url, const char *method) {
    char s[6][128];
    int n = split(url, s);
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0, put = strcmp(method, "PUT") == 0;
    json_t *body = NULL, *out = NULL, *node = NULL;
    int r = 0;
    if (n < 2 || strcmp(s[0], "v1") != 0) {
        cit_error_set(CIT_E_API_NO_ROUTE, "no route %s %.200s", method, url);
        return send_error(c, 404);
    }
    for (int i = 0; i < n; i++)
        if (!valid_segment(s[i])) {
            cit_error_set(CIT_E_API_NO_ROUTE, "no route %s %.200s", method, url);
            return send_error(c, 404);
        }
    if ((post || put) && (r = parse_body(rq, &body)) < 0) {
        enr_audit(d, rq, "enroll.reject", json_pack("{s:s,s:s}", "step", "request", "url", url), r);
        return send_error(c, 0);
    }
    if (n == 2 && get && strcmp(s[1], "health") == 0) {
        out = json_pack("{s:s}", "status", atomic_load(&d->draining) ? "draining" : "ok");
    } else if (n == 2 && get && strcmp(s[1], "ca") == 0) {
        char *pem = strdup(d->ca_pem);
        return pem ? send_text(c, 200, pem, strlen(pem), "application/x-pem-file") : MHD_NO;
    } else if (n == 2 && get && strcmp(s[1], "crl") == 0) {
        char *pem = NULL;
        if ((r = enr_crl(d, &pem)) == 0)
            return send_text(c, 200, pem, strlen(pem), "application/x-pem-file");
    } else if (strcmp(s[1], "enroll") == 0) {
        if (n == 3 && post && strcmp(s[2], "start") == 0)
            r = enr_start(d, rq, body, &out);
        else if (n == 4 && post && strcmp(s[3], "finish") == 0)
            r = enr_finish(d, rq, s[2], body, &out);
        else if (n == 3 && get)
            r = enr_fetch(d, rq, s[2], MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Enroll-Token"), &out);
        else
            r = cit_error_set(CIT_E_API_NO_ROUTE, "no route %s %.200s", method, url);
    } else if (strcmp(s[1], "admin") == 0) {
        if ((r = admin_auth(d, c, rq)) < 0) {
            enr_audit(d, rq, "enroll.auth-failed", json_pack("{s:s,s:s}", "method", method, "url", url), r);
        } else if (n == 3 && get && strcmp(s[2], "nodes") == 0)
            r = enr_admin_list(d, rq, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status"), &out);
        else if (n == 4 && get && strcmp(s[2], "nodes") == 0)
            r = enr_admin_show(d, rq, s[3], &out);
        else if (n == 5 && post && strcmp(s[2], "nodes") == 0 &&
                 (strcmp(s[4], "approve") == 0 || strcmp(s[4], "deny") == 0 || strcmp(s[4], "revoke") == 0))
            r = enr_admin_decide(d, rq, s[3], s[4], body, &out);
        else if (n == 3 && put && strcmp(s[2], "config") == 0)
            r = enr_admin_config_set(d, rq, body, &out);
        else if (n == 3 && get && strcmp(s[2], "config") == 0)
            r = enr_admin_config_get(d, rq, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "node"), &out);
        else
            r = cit_error_set(CIT_E_API_NO_ROUTE, "no route %s %.200s", method, url);
    } else if (strcmp(s[1], "node") == 0) {
        if ((r = node_auth(d, c, rq, &node)) < 0) {
            enr_audit(d, rq, "enroll.auth-failed", json_pack("{s:s,s:s}", "method", method, "url", url), r);
        } else if (n == 3 && get && strcmp(s[2], "config") == 0)
            r = enr_node_config(d, rq, node, &out);
        else if (n == 4 && post && strcmp(s[2], "renew") == 0 && strcmp(s[3], "start") == 0)
            r = enr_node_renew_start(d, rq, node, &out);
        else if (n == 3 && post && strcmp(s[2], "renew") == 0)
            r = enr_node_renew(d, rq, node, body, &out);
        else
            r = cit_error_set(CIT_E_API_NO_ROUTE, "no route %s %.200s", method, url);
    } else
        r = cit_error_set(CIT_E_API_NO_ROUTE, "no route %s %.200s", method, url);
    json_decref(body);
    json_decref(node);
    enum MHD_Result ret = r < 0 ? send_error(c, 0) : send_json(c, 200, out ? out : json_object());
    json_decref(out);
    return ret;
}

enum MHD_Result enr_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
    enrolld *d = cls;
    enr_req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        atomic_fetch_add(&d->inflight, 1);
        snprintf(rq->actor, sizeof rq->actor, "anonymous");
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            char h[64] = "";
            if (ci->client_addr->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, h, sizeof h);
            else if (ci->client_addr->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, h, sizeof h);
            snprintf(rq->remote, sizeof rq->remote, "%s", h);
        }
        cit_error_clear();
        if (atomic_load(&d->draining)) {
            cit_error_set(CIT_E_API_UNAVAILABLE, "the server is shutting down");
            return send_error(c, 503);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t n = 0;
        if (cl && cit_parse_u64(cl, &n) == 0 && n > d->cfg.max_body) {
            cit_error_set(CIT_E_INPUT_TOO_LARGE, "the request body is larger than %zu bytes", d->cfg.max_body);
            cit_error_context("limit_bytes", "%zu", d->cfg.max_body);
            enr_audit(d, rq, "enroll.reject", json_pack("{s:s,s:s}", "step", "request", "url", url), CIT_E_INPUT_TOO_LARGE);
            return send_error(c, 413);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        /* past the limit the rest is read and dropped; the answer is 413 */
        if (cit_http_body_append(&rq->body, &rq->len, &rq->cap, &rq->too_large, upload_data, n, d->cfg.max_body) < 0)
            return MHD_NO;
        return MHD_YES;
    }
    cit_error_clear();
    if (rq->too_large) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "the request body is larger than %zu bytes", d->cfg.max_body);
        cit_error_context("limit_bytes", "%zu", d->cfg.max_body);
        enr_audit(d, rq, "enroll.reject", json_pack("{s:s,s:s}", "step", "request", "url", url), CIT_E_INPUT_TOO_LARGE);
        return send_error(c, 413);
    }
    return route(d, c, rq, url, method);
}

void enr_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    enrolld *d = cls;
    enr_req *rq = *con_cls;
    if (!rq)
        return;
    atomic_fetch_sub(&d->inflight, 1);
    if (rq->body) {
        cit_memzero(rq->body, rq->cap);
        free(rq->body);
    }
    free(rq);
    *con_cls = NULL;
}
