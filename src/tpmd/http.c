/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Requests: limits, authentication, routing, the JSON bodies, and answers. Every route calls
 * the libcitadel function its CLI verb calls (under the TPM lock) and answers its result tree;
 * errors are the CLI's error JSON with an HTTP status derived from the code's class.
 */
#define _GNU_SOURCE /* mkostemp */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "basic/util.h"
#include "policy/policy.h"
#include "tpmd.h"

/* ---- answers ---- */

char *tpmd_render(const json_t *j, size_t *len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    cit_render(f, j, CIT_FORMAT_JSON);
    fclose(f);
    *len = n;
    return buf;
}

/* The HTTP status of an error code: by class, with the exceptions the API documents. */
static unsigned http_status(int code) {
    switch (code) {
    case CIT_E_API_UNAUTHENTICATED:
        return 401;
    case CIT_E_API_FORBIDDEN:
        return 403;
    case CIT_E_API_NO_ROUTE:
    case CIT_E_OBJECT_NOT_FOUND:
    case CIT_E_AUDIT_ENTRY_NOT_FOUND:
    case CIT_E_AUDIT_SEGMENT_NOT_FOUND:
        return 404;
    case CIT_E_API_METHOD:
        return 405;
    case CIT_E_INPUT_TOO_LARGE:
        return 413;
    case CIT_E_API_UNAVAILABLE:
    case CIT_E_NOT_INITIALIZED:
    case CIT_E_LOCKOUT:
        return 503;
    case CIT_E_INVALID_PATH:
    case CIT_E_ALG_UNSUPPORTED:
    case CIT_E_AUDIT_STREAM_UNKNOWN:
        return 400;
    case CIT_E_OBJECT_KIND:
    case CIT_E_SIGNATURE_INVALID:
        return 422;
    }
    const cit_code_info *ci = cit_code_lookup(code < 0 ? -code : code);
    const char *cls = ci ? ci->cls : "internal";
    if (strcmp(cls, "usage") == 0)
        return 400;
    if (strcmp(cls, "object") == 0 || strcmp(cls, "nv") == 0)
        return 409; /* exists, retired, has dependents, ... */
    if (strcmp(cls, "policy") == 0 || strcmp(cls, "attestation") == 0)
        return 422;
    if (strcmp(cls, "backend") == 0 || strcmp(cls, "transport") == 0 || strcmp(cls, "repair") == 0)
        return 503;
    if (strcmp(cls, "audit") == 0)
        return 409;
    return 500; /* store, internal */
}

/* Answers can carry unsealed secrets (secret_hex): wiped when MHD is done with them. Every
 * answer buffer is NUL-terminated text (open_memstream). */
static void free_wiped(void *p) {
    if (p) {
        cit_memzero(p, strlen(p));
        free(p);
    }
}

static enum MHD_Result send_buf(tpmd *d, struct MHD_Connection *c, unsigned status, char *buf, size_t len,
                                const char *ctype) {
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, buf, free_wiped);
    if (!resp) {
        free_wiped(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (atomic_load(&d->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    atomic_fetch_add(&d->req_total, 1);
    atomic_fetch_add(status < 300 ? &d->req_2xx : status < 500 ? &d->req_4xx : &d->req_5xx, 1);
    return ret;
}

static enum MHD_Result send_json(tpmd *d, struct MHD_Connection *c, unsigned status, const json_t *j) {
    size_t len = 0;
    char *buf = tpmd_render(j, &len);
    if (!buf)
        return MHD_NO;
    return send_buf(d, c, status, buf, len, "application/json");
}

/* The thread's last error as the CLI's error JSON. */
static enum MHD_Result send_error(tpmd *d, struct MHD_Connection *c, unsigned status) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return MHD_NO;
    cit_error_render(f, cit_error_last(), CIT_FORMAT_JSON);
    fclose(f);
    return send_buf(d, c, status ? status : http_status(cit_error_last()->code), buf, n, "application/json");
}

static enum MHD_Result fail(tpmd *d, struct MHD_Connection *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result fail(tpmd *d, struct MHD_Connection *c, int code, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cit_error_set(code, "%s", msg);
    return send_error(d, c, 0);
}

/* ---- bodies ---- */

typedef struct field {
    const char *name;
    char type; /* s: string, i: integer, b: boolean */
} field;

/* Parses the body as a JSON object whose members are all among fields, of their types.
 * An empty body is an empty object. */
static int parse_body(tpmd_req *rq, const field *fields, json_t **out) {
    json_t *j;
    if (rq->len == 0)
        j = json_object();
    else {
        json_error_t err;
        j = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &err);
        if (!j) {
            cit_error_set(CIT_E_INPUT_INVALID, "the request body is not valid JSON: %s", err.text);
            cit_error_context("line", "%d", err.line);
            cit_error_context("column", "%d", err.column);
            return CIT_E_INPUT_INVALID;
        }
        if (!json_is_object(j)) {
            json_decref(j);
            return cit_error_set(CIT_E_INPUT_INVALID, "the request body must be a JSON object");
        }
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        const field *f = fields;
        while (f && f->name && strcmp(f->name, k) != 0)
            f++;
        if (!f || !f->name) {
            cit_error_set(CIT_E_INPUT_INVALID, "unknown field in the request body: %.64s", k);
            char known[256] = "";
            size_t off = 0;
            for (const field *g = fields; g && g->name && off < sizeof known; g++)
                off += (size_t)snprintf(known + off, sizeof known - off, "%s%s", off ? ", " : "", g->name);
            cit_error_cause("this route takes: %s", off ? known : "no fields");
            json_decref(j);
            return CIT_E_INPUT_INVALID;
        }
        bool ok = f->type == 's' ? json_is_string(v) : f->type == 'i' ? json_is_integer(v) : json_is_boolean(v);
        if (!ok) {
            cit_error_set(CIT_E_INPUT_INVALID, "field %s must be a %s", k,
                          f->type == 's' ? "string" : f->type == 'i' ? "integer" : "boolean");
            cit_error_context("field", "%s", k);
            json_decref(j);
            return CIT_E_INPUT_INVALID;
        }
    }
    *out = j;
    return 0;
}

static const char *str(json_t *j, const char *k) { return json_string_value(json_object_get(j, k)); }

static int need(json_t *j, const char *k) {
    if (str(j, k) && *str(j, k))
        return 0;
    cit_error_set(CIT_E_INPUT_INVALID, "the request body needs the field %s", k);
    cit_error_context("field", "%s", k);
    return CIT_E_INPUT_INVALID;
}

static int hex_field(json_t *j, const char *k, uint8_t **out, size_t *len) {
    if (cit_hex_decode(out, len, str(j, k)) < 0) {
        cit_error_set(CIT_E_INPUT_INVALID, "field %s is not hexadecimal", k);
        cit_error_context("field", "%s", k);
        return CIT_E_INPUT_INVALID;
    }
    return 0;
}

/* ---- handlers ---- */

typedef struct call {
    tpmd *d;
    tpmd_req *rq;
    struct MHD_Connection *c;
    const char *arg; /* the {path} or {id} of the route */
    json_t *body;
    json_t *out;     /* the result tree */
    unsigned status; /* 0: 200 */
    char object[256];
    bool raw_text;   /* /metrics */
    char *text;
    size_t text_len;
} call;

static void lock(call *k) {
    tpmd_tpm_lock(k->d);
    char actor[80];
    snprintf(actor, sizeof actor, "tpmd:%s", k->rq->key_id);
    cit_ctx_set_actor(k->d->ctx, actor);
}
static void unlock(call *k) { tpmd_tpm_unlock(k->d); }

#define LOCKED(k, expr) ({ lock(k); int _r = (expr); unlock(k); _r; })

static const char *query(call *k, const char *name) {
    return MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, name);
}

static int h_status(call *k) { return LOCKED(k, cit_workspace_status(&k->out, k->d->ctx)); }

static int h_health(call *k) {
    bool healthy = false;
    int r = LOCKED(k, cit_workspace_doctor(&k->out, k->d->ctx, &healthy));
    if (r == 0)
        json_object_set_new(k->out, "healthy", json_boolean(healthy));
    return r;
}

static int h_keys(call *k) { return LOCKED(k, cit_key_list(&k->out, k->d->ctx)); }

static int h_key_create(call *k) {
    static const field f[] = {{"path", 's'},   {"algorithm", 's'}, {"scheme", 's'}, {"usage", 's'},
                              {"parent", 's'}, {"persist", 'b'},   {"template", 's'}, {"pcrs", 's'},
                              {"bank", 's'},   {"policy", 's'},    {0}};
    int r = parse_body(k->rq, f, &k->body);
    if (r == 0)
        r = need(k->body, "path");
    if (r < 0)
        return r;
    snprintf(k->object, sizeof k->object, "%s", str(k->body, "path"));
    cit_key_create_options o = {
        .path = str(k->body, "path"),
        .algorithm = str(k->body, "algorithm"),
        .scheme = str(k->body, "scheme"),
        .usage = str(k->body, "usage"),
        .parent = str(k->body, "parent"),
        .persist = json_is_true(json_object_get(k->body, "persist")),
        .template_name = str(k->body, "template"),
        .pcrs = str(k->body, "pcrs"),
        .bank = str(k->body, "bank"),
        .policy = str(k->body, "policy"),
    };
    r = LOCKED(k, cit_key_create(&k->out, k->d->ctx, &o));
    if (r == 0)
        k->status = 201;
    return r;
}

static int h_key_show(call *k) {
    lock(k);
    int r = cit_key_show(&k->out, k->d->ctx, k->arg);
    json_t *pem = NULL;
    if (r == 0 && !json_object_get(k->out, "public_key_pem")) {
        if (cit_key_export_pub(&pem, k->d->ctx, k->arg, "pem", NULL, 0) == 0 &&
            json_is_string(json_object_get(pem, "_text")))
            json_object_set(k->out, "public_key_pem", json_object_get(pem, "_text"));
        cit_error_clear();
    }
    unlock(k);
    json_decref(pem);
    return r;
}

static int h_key_lock(call *k) {
    int r = parse_body(k->rq, (const field[]){{0}}, &k->body);
    if (r < 0)
        return r;
    int lr = cit_keycache_lock(k->d->kc, k->arg);
    cit_error_clear();
    k->out = json_pack("{s:s,s:b,s:I}", "path", k->arg, "was_unlocked", lr == 0, "unlocked_keys",
                       (json_int_t)cit_keycache_count(k->d->kc));
    return 0;
}

typedef struct sign_job {
    call *k;
    const cit_key_sign_options *o;
} sign_job;

/* On the TPM thread (tpmq.c), which holds the TPM lock. */
static int sign_on_tpm(void *arg) {
    sign_job *j = arg;
    call *k = j->k;
    int r = cit_key_sign(&k->out, k->d->ctx, j->o);
    if (r == 0 && !j->o->approval &&
        strcmp(json_string_value(json_object_get(k->out, "algorithm")) ?: "", "ed25519") == 0) {
        /* keep it unsealed for the next signatures; a profile that requires approvals refuses */
        if (cit_keycache_unlock(k->d->kc, k->d->ctx, j->o->path, NULL) < 0)
            cit_error_clear();
    }
    return r;
}

/* Signs body's data_hex (or digest_hex) with the key at path; ed25519 keys from the session cache. */
static int do_sign(call *k, const char *path) {
    static const field f[] = {{"data_hex", 's'}, {"digest_hex", 's'}, {"digest", 's'},
                              {"encoding", 's'}, {"approval", 'i'},   {0}};
    int r = parse_body(k->rq, f, &k->body);
    if (r < 0)
        return r;
    bool has_data = str(k->body, "data_hex") != NULL, has_digest = str(k->body, "digest_hex") != NULL;
    if (has_data == has_digest) {
        cit_error_set(CIT_E_INPUT_INVALID, "give exactly one of data_hex and digest_hex");
        cit_error_cause("data_hex is hashed by the daemon; digest_hex is signed as it is");
        return CIT_E_INPUT_INVALID;
    }
    json_int_t approval = json_integer_value(json_object_get(k->body, "approval"));
    if (approval < 0)
        return cit_error_set(CIT_E_INPUT_INVALID, "approval must be a positive request id");
    uint8_t *data = NULL;
    size_t len = 0;
    if ((r = hex_field(k->body, has_data ? "data_hex" : "digest_hex", &data, &len)) < 0)
        return r;
    uint64_t t0 = cit_now_usec();
    /* an unlocked ed25519 key signs from the cache, without the TPM */
    if (has_data && !approval && !str(k->body, "digest") && !str(k->body, "encoding") && len &&
        cit_keycache_sign_result(&k->out, k->d->kc, path, data, len) == 0) {
        free(data);
        atomic_fetch_add(&k->d->sign_total, 1);
        atomic_fetch_add(&k->d->sign_usec, cit_now_usec() - t0);
        return 0;
    }
    cit_error_clear();
    cit_key_sign_options o = {
        .path = path,
        .data = data ? data : (const uint8_t *)"",
        .data_len = len,
        .digest = str(k->body, "digest"),
        .encoding = str(k->body, "encoding"),
        .input_is_digest = has_digest,
        .approval = approval,
    };
    char actor[80];
    snprintf(actor, sizeof actor, "tpmd:%s", k->rq->key_id);
    sign_job j = {.k = k, .o = &o};
    r = tpmq_run(k->d->tq, actor, sign_on_tpm, &j);
    free(data);
    if (r == 0) {
        atomic_fetch_add(&k->d->sign_total, 1);
        atomic_fetch_add(&k->d->sign_usec, cit_now_usec() - t0);
    }
    return r;
}

/* A recorded approval request becomes 202 with its id. */
static int approval_pending(call *k, int r) {
    const cit_error *e = cit_error_last();
    if (r != CIT_E_APPROVAL_REQUIRED || json_integer_value(json_object_get(k->body, "approval")) > 0)
        return r;
    for (int i = 0; i < e->n_context; i++)
        if (strcmp(e->context_key[i], "approval") == 0) {
            uint64_t id = 0;
            if (cit_parse_u64(e->context_val[i], &id) < 0)
                break;
            json_t *steps = json_array();
            for (int s = 0; s < e->n_steps; s++)
                json_array_append_new(steps, json_string(e->steps[s]));
            k->out = json_pack("{s:I,s:s,s:s,s:s,s:o}", "approval", (json_int_t)id, "status", "pending", "path",
                               k->object, "message", e->message, "next_steps", steps);
            k->status = 202;
            cit_error_clear();
            return 0;
        }
    return r;
}

static int h_sign(call *k) {
    snprintf(k->object, sizeof k->object, "%s", k->arg);
    return approval_pending(k, do_sign(k, k->arg));
}

static int h_delete(call *k) {
    int r = parse_body(k->rq, (const field[]){{"force", 'b'}, {0}}, &k->body);
    if (r < 0)
        return r;
    snprintf(k->object, sizeof k->object, "%s", k->arg);
    r = LOCKED(k, cit_key_delete(&k->out, k->d->ctx, k->arg, json_is_true(json_object_get(k->body, "force"))));
    if (r == 0) {
        cit_keycache_lock(k->d->kc, k->arg);
        cit_error_clear();
    }
    return r;
}

static int h_objects(call *k) { return LOCKED(k, cit_object_list(&k->out, k->d->ctx, query(k, "kind"))); }
static int h_policies(call *k) { return LOCKED(k, cit_policy_list(&k->out, k->d->ctx)); }

/* {"yaml": TEXT, "replace"?}: a YAML policy (docs/policy.md), compiled and stored under its own
 * name; or {"name", "pcrs"?, "bank"?, "password"?}: a policy from flags, as `policy create`. */
static int h_policy_create(call *k) {
    static const field f[] = {{"name", 's'}, {"pcrs", 's'},    {"bank", 's'},
                              {"password", 'b'}, {"yaml", 's'}, {"replace", 'b'}, {0}};
    int r = parse_body(k->rq, f, &k->body);
    if (r < 0)
        return r;
    json_t *yaml = json_object_get(k->body, "yaml");
    if (yaml) {
        if (str(k->body, "name") || str(k->body, "pcrs") || str(k->body, "bank") ||
            json_object_get(k->body, "password")) {
            cit_error_set(CIT_E_INPUT_INVALID, "give either yaml or name with pcrs/password, not both");
            cit_error_cause("a YAML policy carries its own name and requirements");
            return CIT_E_INPUT_INVALID;
        }
        /* parsed once outside the TPM lock: a malformed document is the caller's error (400,
         * not the 422 of an unmet policy), and the audit entry names the policy either way */
        json_t *pol = NULL;
        r = cit__policy_parse(&pol, json_string_value(yaml), json_string_length(yaml));
        if (r < 0) {
            if (r == CIT_E_POLICY_INVALID)
                k->status = 400;
            return r;
        }
        snprintf(k->object, sizeof k->object, "%s", json_string_value(json_object_get(pol, "name")) ?: "");
        r = LOCKED(k, cit__policy_compile_parsed(&k->out, k->d->ctx, pol, json_string_value(yaml),
                                                 json_is_true(json_object_get(k->body, "replace"))));
        json_decref(pol);
        if (r == 0)
            k->status = 201;
        else if (r == CIT_E_POLICY_INVALID)
            k->status = 400;
        return r;
    }
    if (json_object_get(k->body, "replace")) {
        cit_error_set(CIT_E_INPUT_INVALID, "replace goes with yaml");
        return CIT_E_INPUT_INVALID;
    }
    if ((r = need(k->body, "name")) < 0)
        return r;
    snprintf(k->object, sizeof k->object, "%s", str(k->body, "name"));
    r = LOCKED(k, cit_policy_create(&k->out, k->d->ctx, str(k->body, "name"), str(k->body, "pcrs"),
                                    str(k->body, "bank"), json_is_true(json_object_get(k->body, "password"))));
    if (r == 0)
        k->status = 201;
    return r;
}

static int h_secrets(call *k) { return LOCKED(k, cit_secret_list(&k->out, k->d->ctx)); }

static int h_unseal(call *k) {
    int r = parse_body(k->rq, (const field[]){{0}}, &k->body);
    if (r < 0)
        return r;
    snprintf(k->object, sizeof k->object, "%s", k->arg);
    uint8_t *secret = NULL;
    size_t len = 0;
    r = LOCKED(k, cit_secret_unseal(&k->out, k->d->ctx, k->arg, NULL, &secret, &len));
    if (r == 0) {
        char *hex = cit_hex_encode(secret, len);
        json_object_set_new(k->out, "secret_hex", json_string(hex ? hex : ""));
        if (hex) {
            cit_memzero(hex, strlen(hex));
            free(hex);
        }
        json_object_set_new(k->out, "secret_bytes", json_integer((json_int_t)len));
    }
    if (secret) {
        cit_memzero(secret, len);
        free(secret);
    }
    return r;
}

static int h_audit(call *k) {
    const char *seq = query(k, "seqno");
    if (seq) {
        uint64_t n = 0;
        if (cit_parse_u64(seq, &n) < 0 || n == 0 || n > INT64_MAX)
            return cit_error_set(CIT_E_INPUT_INVALID, "seqno must be a positive number");
        return LOCKED(k, cit_audit_show(&k->out, k->d->ctx, (int64_t)n, false));
    }
    return LOCKED(k, cit_audit_head(&k->out, k->d->ctx, query(k, "stream")));
}

static int h_witness(call *k) {
    /* the receipt is a JSON document of its own: checked as JSON, then handed to the library as a
     * file (its only input form), in a private 0600 file removed at once */
    json_error_t err;
    json_t *j = k->rq->len ? json_loadb(k->rq->body, k->rq->len, JSON_REJECT_DUPLICATES, &err) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        return cit_error_set(CIT_E_INPUT_INVALID, "the body must be a witness receipt (a JSON object)");
    }
    json_decref(j);
    char tmpl[] = "/tmp/tpmd-receipt.XXXXXX";
    int fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0)
        return cit_error_set(CIT_E_INTERNAL, "cannot make a temporary file: %s", strerror(errno));
    size_t off = 0;
    while (off < k->rq->len) {
        ssize_t w = write(fd, k->rq->body + off, k->rq->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    int r = off == k->rq->len ? LOCKED(k, cit_audit_witness_import(&k->out, k->d->ctx, tmpl))
                              : cit_error_set(CIT_E_INTERNAL, "cannot write a temporary file");
    unlink(tmpl);
    return r;
}

static int h_approvals(call *k) { return LOCKED(k, cit_approval_list(&k->out, k->d->ctx, query(k, "status"))); }

/* An explicit request: like a sign request, but it only records the request (202). */
static int h_approval_request(call *k) {
    static const field f[] = {{"path", 's'}, {"data_hex", 's'}, {"digest_hex", 's'}, {"digest", 's'}, {0}};
    json_t *probe = NULL;
    int r = parse_body(k->rq, f, &probe);
    if (r == 0)
        r = need(probe, "path");
    if (r == 0)
        snprintf(k->object, sizeof k->object, "%s", str(probe, "path"));
    json_t *prof = NULL;
    if (r == 0 && (r = LOCKED(k, cit_profile_show(&prof, k->d->ctx, NULL))) == 0 &&
        !json_is_true(json_object_get(prof, "approval_required"))) {
        r = cit_error_set(CIT_E_USAGE, "the workspace's profile needs no approvals");
        cit_error_cause("approval requests are for profiles with approval_required (two-person)");
        cit_error_step("sign directly with POST /v1/sign/{path}");
    }
    json_decref(prof);
    if (r < 0) {
        json_decref(probe);
        return r;
    }
    /* the body without "path" is a sign body */
    json_object_del(probe, "path");
    char *sb = json_dumps(probe, JSON_COMPACT);
    json_decref(probe);
    if (!sb)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    char *saved = k->rq->body;
    size_t saved_len = k->rq->len;
    k->rq->body = sb;
    k->rq->len = strlen(sb);
    r = approval_pending(k, do_sign(k, k->object));
    k->rq->body = saved;
    k->rq->len = saved_len;
    free(sb);
    if (r == 0 && k->status != 202) /* cannot happen under approval_required; never hand out */
        r = cit_error_set(CIT_E_INTERNAL, "the request signed instead of waiting for approval");
    return r;
}

static int decide(call *k, bool approve) {
    int r = parse_body(k->rq, (const field[]){{"reason", 's'}, {0}}, &k->body);
    if (r < 0)
        return r;
    uint64_t id = 0;
    if (cit_parse_u64(k->arg, &id) < 0 || id == 0 || id > INT64_MAX)
        return cit_error_set(CIT_E_INVALID_PATH, "not an approval id: %.32s", k->arg);
    snprintf(k->object, sizeof k->object, "approval/%" PRIu64, id);
    return LOCKED(k, cit_approval_decide(&k->out, k->d->ctx, (int64_t)id, approve, str(k->body, "reason")));
}
static int h_approve(call *k) { return decide(k, true); }
static int h_deny(call *k) { return decide(k, false); }

static int h_metrics(call *k) {
    tpmd *d = k->d;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
#define M(name, type, help, val)                                                                                   \
    fprintf(f, "# HELP tpmd_" name " " help "\n# TYPE tpmd_" name " " type "\ntpmd_" name " %llu\n",           \
            (unsigned long long)(val))
    fprintf(f, "# HELP tpmd_requests_total HTTP requests answered, by status class.\n"
               "# TYPE tpmd_requests_total counter\n"
               "tpmd_requests_total{code=\"2xx\"} %llu\ntpmd_requests_total{code=\"4xx\"} %llu\n"
               "tpmd_requests_total{code=\"5xx\"} %llu\n",
            (unsigned long long)atomic_load(&d->req_2xx), (unsigned long long)atomic_load(&d->req_4xx),
            (unsigned long long)atomic_load(&d->req_5xx));
    M("signatures_total", "counter", "Signatures made.", atomic_load(&d->sign_total));
    fprintf(f, "# HELP tpmd_signature_seconds_sum Time spent signing.\n# TYPE tpmd_signature_seconds_sum counter\n"
               "tpmd_signature_seconds_sum %.6f\n",
            (double)atomic_load(&d->sign_usec) / 1e6);
    M("auth_failures_total", "counter", "Requests refused for a missing or unknown API key.",
      atomic_load(&d->auth_failures));
    M("tls_tpm_signatures_total", "counter", "TLS handshake signatures made in the TPM.", cit_tls_creds_tpm_signs(d->tls));
    M("audit_entries_total", "counter", "Audit entries appended (stream tpmd).", atomic_load(&d->audit_entries));
    M("audit_batches_total", "counter", "Audit append transactions (group commits).", atomic_load(&d->audit_batches));
    M("audit_held_batches_total", "counter", "Group commits held open for the entries of queued signatures.",
      atomic_load(&d->audit_held));
    M("requests_in_flight", "gauge", "Requests being processed.", (unsigned)atomic_load(&d->inflight));
    M("connections_open", "gauge", "Open client connections.", atomic_load(&d->conns_open));
    M("session_keys_unlocked", "gauge", "Ed25519 keys unsealed in the session cache.", cit_keycache_count(d->kc));
    M("uptime_seconds", "gauge", "Seconds since the daemon started.", (cit_now_usec() - d->started_usec) / 1000000);
#undef M
    fclose(f);
    k->text = buf;
    k->text_len = n;
    k->raw_text = true;
    return 0;
}

/* ---- routes ---- */

typedef struct route {
    const char *method;
    const char *prefix; /* exact path, or the part before {arg} */
    const char *suffix; /* after {arg}; NULL: exact route when has_arg is false */
    bool has_arg;
    int role;
    const char *event;  /* audit event for mutating routes; NULL for reads */
    int (*fn)(call *k);
} route;

static const route routes[] = {
    {"GET", "/v1/status", NULL, false, ROLE_READ, NULL, h_status},
    {"GET", "/v1/health", NULL, false, ROLE_READ, NULL, h_health},
    {"GET", "/v1/keys", NULL, false, ROLE_READ, NULL, h_keys},
    {"POST", "/v1/keys", NULL, false, ROLE_ADMIN, "key.create", h_key_create},
    {"POST", "/v1/keys/", "/lock", true, ROLE_ADMIN, "key.lock", h_key_lock},
    {"GET", "/v1/keys/", "", true, ROLE_READ, NULL, h_key_show},
    {"POST", "/v1/sign/", "", true, ROLE_SIGN, "key.sign", h_sign},
    {"POST", "/v1/delete/", "", true, ROLE_ADMIN, "key.delete", h_delete},
    {"GET", "/v1/objects", NULL, false, ROLE_READ, NULL, h_objects},
    {"GET", "/v1/policies", NULL, false, ROLE_READ, NULL, h_policies},
    {"POST", "/v1/policies", NULL, false, ROLE_ADMIN, "policy.create", h_policy_create},
    {"GET", "/v1/secrets", NULL, false, ROLE_READ, NULL, h_secrets},
    {"POST", "/v1/secrets/", "/unseal", true, ROLE_ADMIN, "secret.unseal", h_unseal},
    {"GET", "/v1/audit", NULL, false, ROLE_READ, NULL, h_audit},
    {"POST", "/v1/audit/witness", NULL, false, ROLE_ADMIN, "audit.witness", h_witness},
    {"GET", "/v1/approvals", NULL, false, ROLE_READ, NULL, h_approvals},
    {"POST", "/v1/approvals", NULL, false, ROLE_SIGN, "approval.request", h_approval_request},
    {"POST", "/v1/approvals/", "/approve", true, ROLE_ADMIN, "approval.approve", h_approve},
    {"POST", "/v1/approvals/", "/deny", true, ROLE_ADMIN, "approval.deny", h_deny},
    {"GET", "/metrics", NULL, false, ROLE_READ, NULL, h_metrics},
};

#define ARG_MAX 255

/* Whether url fits r's shape; arg gets the {arg} part. */
static bool match_shape(const route *r, const char *url, char *arg) {
    if (!r->has_arg)
        return strcmp(url, r->prefix) == 0;
    size_t pl = strlen(r->prefix), ul = strlen(url), sl = strlen(r->suffix);
    if (ul <= pl + sl || strncmp(url, r->prefix, pl) != 0 || strcmp(url + ul - sl, r->suffix) != 0)
        return false;
    size_t al = ul - pl - sl;
    if (al > ARG_MAX)
        al = ARG_MAX + 1; /* too long: the library refuses it as an invalid path */
    if (al > ARG_MAX) {
        memcpy(arg, url + pl, ARG_MAX);
        arg[ARG_MAX] = 0;
        arg[ARG_MAX - 1] = '~';
        return true;
    }
    memcpy(arg, url + pl, al);
    arg[al] = 0;
    return true;
}

/* The route for method+url: found, or NULL with *method_mismatch when the path exists. Suffixed
 * routes are tried first, so a key path ending in "/lock" is only reachable through GET. */
static const route *find_route(const char *method, const char *url, char *arg, bool *method_mismatch) {
    *method_mismatch = false;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
            const route *r = &routes[i];
            bool suffixed = r->has_arg && r->suffix[0];
            if ((pass == 0) != suffixed)
                continue;
            if (!match_shape(r, url, arg))
                continue;
            if (strcmp(r->method, method) == 0)
                return r;
            *method_mismatch = true;
        }
    return NULL;
}

/* ---- the request cycle ---- */

static const char *remote_of(struct MHD_Connection *c, char *buf, size_t len) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, len, "?");
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)len);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf, (socklen_t)len);
    }
    return buf;
}

static json_t *audit_payload(tpmd_req *rq, const char *method, const char *url, unsigned status, int code,
                             const char *object) {
    json_t *p = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "key_id", rq->key_id, "role", tpmd_role_name(rq->role),
                          "method", method, "route", url, "status", (int)status, "remote", rq->remote);
    if (object && *object)
        json_object_set_new(p, "object", json_string(object));
    if (code) {
        char cs[16];
        cit_code_format(cs, sizeof cs, code);
        json_object_set_new(p, "code", json_string(cs));
    }
    return p;
}

static enum MHD_Result auth_fail(tpmd *d, struct MHD_Connection *c, tpmd_req *rq, const char *method,
                                 const char *url, int code, const char *why) {
    atomic_fetch_add(&d->auth_failures, 1);
    json_t *p = audit_payload(rq, method, url, http_status(code), code, NULL);
    json_object_set_new(p, "reason", json_string(why)); /* never the presented key */
    auditq_post(d->aq, "auth.fail", p);
    json_decref(p);
    return fail(d, c, code, "%s", why);
}

static void conn_waiting(tpmd *d, struct MHD_Connection *c, bool waiting);

/* Frees a result tree, wiping an unsealed secret in it first. */
static void out_free(json_t *out) {
    const char *sh = json_string_value(json_object_get(out, "secret_hex"));
    if (sh)
        cit_memzero((char *)sh, strlen(sh));
    json_decref(out);
}

/* Whether a Host header names a loopback address (localhost, 127.0.0.0/8, ::1), port optional. */
static bool loopback_host(const char *host) {
    char h[64];
    const char *end;
    if (host[0] == '[') {
        host++;
        end = strchr(host, ']');
        if (!end || (end[1] && end[1] != ':'))
            return false;
    } else {
        end = strchr(host, ':');
        if (!end)
            end = host + strlen(host);
    }
    size_t n = (size_t)(end - host);
    if (n == 0 || n >= sizeof h)
        return false;
    memcpy(h, host, n);
    h[n] = 0;
    if (strcasecmp(h, "localhost") == 0)
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Without API keys every caller is admin, so a web browser on the host must not be one: a page
 * could post to the daemon (CSRF: browsers send cross-origin POSTs with a text/plain body without
 * asking), or rebind its own DNS name to 127.0.0.1 and read the answers (unsealed secrets). Browsers
 * send Origin on such requests and the page's name in Host; tpmd serves no pages, so a request with
 * Origin is refused, and on a loopback address so is a Host that is not a loopback name. */
static const char *anonymous_refusal(tpmd *d, struct MHD_Connection *c) {
    if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"))
        return "a request from a web page (Origin header) without API keys";
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (d->cfg.loopback && host && !loopback_host(host))
        return "a Host that is not a loopback name without API keys (DNS rebinding)";
    return NULL;
}

enum MHD_Result tpmd_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                            const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
    tpmd *d = cls;
    tpmd_req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        conn_waiting(d, c, false);
        atomic_fetch_add(&d->inflight, 1);
        rq->counted = true;
        rq->remote = remote_of(c, rq->remote_buf, sizeof rq->remote_buf);
        snprintf(rq->key_id, sizeof rq->key_id, "anonymous");
        cit_error_clear();
        if (atomic_load(&d->draining))
            return fail(d, c, CIT_E_API_UNAVAILABLE, "the daemon is shutting down");
        if (strlen(url) > d->cfg.url_max) {
            cit_error_set(CIT_E_INPUT_TOO_LARGE, "the URL is longer than %u bytes", d->cfg.url_max);
            return send_error(d, c, 414);
        }
        char arg[ARG_MAX + 1];
        bool mismatch;
        const route *r = find_route(method, url, arg, &mismatch);
        /* authentication comes before telling which routes exist */
        if (d->keys) {
            const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
            char id[64] = "";
            pthread_rwlock_rdlock(&d->keys_lock);
            int role = key ? tpmd_keys_check(d->keys, key, id) : ROLE_NONE;
            pthread_rwlock_unlock(&d->keys_lock);
            if (!key)
                return auth_fail(d, c, rq, method, url, CIT_E_API_UNAUTHENTICATED, "no X-API-Key header");
            if (role == ROLE_NONE)
                return auth_fail(d, c, rq, method, url, CIT_E_API_UNAUTHENTICATED, "unknown API key");
            rq->role = role;
            snprintf(rq->key_id, sizeof rq->key_id, "%s", id);
        } else {
            const char *why = anonymous_refusal(d, c);
            if (why) {
                atomic_fetch_add(&d->auth_failures, 1);
                json_t *p = audit_payload(rq, method, url, 403, CIT_E_API_FORBIDDEN, NULL);
                json_object_set_new(p, "reason", json_string(why));
                auditq_post(d->aq, "auth.forbidden", p);
                json_decref(p);
                cit_error_set(CIT_E_API_FORBIDDEN, "refused %s", why);
                cit_error_cause("without API keys every caller is admin; a browser page must not be one");
                cit_error_step("call the daemon from a program, or configure API keys (--keys-file)");
                return send_error(d, c, 403);
            }
            rq->role = ROLE_ADMIN;
        }
        if (!r) {
            if (mismatch) {
                cit_error_set(CIT_E_API_METHOD, "%s is not allowed on %s", method, url);
                return send_error(d, c, 405);
            }
            return fail(d, c, CIT_E_API_NO_ROUTE, "no route %s %s", method, url);
        }
        if (rq->role < r->role) {
            atomic_fetch_add(&d->auth_failures, 1);
            json_t *p = audit_payload(rq, method, url, 403, CIT_E_API_FORBIDDEN, NULL);
            json_object_set_new(p, "reason", json_string("role"));
            auditq_post(d->aq, "auth.forbidden", p);
            json_decref(p);
            cit_error_set(CIT_E_API_FORBIDDEN, "the key %s (role %s) may not %s %s", rq->key_id,
                          tpmd_role_name(rq->role), method, url);
            cit_error_cause("this route needs the role %s", tpmd_role_name(r->role));
            return send_error(d, c, 403);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t n = 0;
        if (cl && cit_parse_u64(cl, &n) == 0 && n > d->cfg.max_body) {
            cit_error_set(CIT_E_INPUT_TOO_LARGE, "the request body is larger than %zu bytes", d->cfg.max_body);
            cit_error_context("limit_bytes", "%zu", d->cfg.max_body);
            return send_error(d, c, 413);
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
        return send_error(d, c, 413);
    }
    call k = {.d = d, .rq = rq, .c = c};
    char arg[ARG_MAX + 1];
    bool mismatch;
    const route *r = find_route(method, url, arg, &mismatch);
    if (!r)
        return fail(d, c, CIT_E_API_NO_ROUTE, "no route %s %s", method, url);
    k.arg = arg;
    int code = r->fn(&k);
    /* a handler may pick the status of its failure (k.status), else the code's class does */
    unsigned status = k.status ? k.status : code < 0 ? http_status(code) : 200;
    if (r->event) {
        /* a changing request is answered only once its audit entry is committed */
        cit_error saved = *cit_error_last();
        json_t *p = audit_payload(rq, method, url, status, code, k.object);
        int ar = auditq_append(d->aq, r->event, p);
        json_decref(p);
        if (ar < 0) {
            out_free(k.out);
            json_decref(k.body);
            free(k.text);
            return send_error(d, c, 503);
        }
        cit_error_restore(&saved);
    }
    enum MHD_Result ret;
    if (code < 0)
        ret = send_error(d, c, status);
    else if (k.raw_text) {
        ret = send_buf(d, c, 200, k.text, k.text_len, "text/plain; version=0.0.4");
        k.text = NULL;
    } else {
        if (!k.out)
            k.out = json_object(); /* freed with the rest below */
        ret = send_json(d, c, status, k.out);
    }
    out_free(k.out);
    json_decref(k.body);
    free(k.text);
    return ret;
}

void tpmd_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    tpmd *d = cls;
    tpmd_req *rq = *con_cls;
    conn_waiting(d, c, true); /* the next request's headers are awaited from now */
    if (!rq)
        return;
    if (rq->counted)
        atomic_fetch_sub(&d->inflight, 1);
    if (rq->body) {
        cit_memzero(rq->body, rq->cap);
        free(rq->body);
    }
    free(rq);
    *con_cls = NULL;
}

static void conn_waiting(tpmd *d, struct MHD_Connection *c, bool waiting) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    tpmd_conn *x = ci ? ci->socket_context : NULL;
    if (!x)
        return;
    pthread_mutex_lock(&d->conns_lock);
    x->waiting_since = waiting ? cit_now_usec() : 0;
    pthread_mutex_unlock(&d->conns_lock);
}

void tpmd_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code) {
    tpmd *d = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&d->conns_open, 1);
        tpmd_conn *x = calloc(1, sizeof *x);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!x || !ci) {
            free(x);
            return;
        }
        x->fd = ci->connect_fd;
        x->waiting_since = cit_now_usec();
        pthread_mutex_lock(&d->conns_lock);
        x->next = d->conns;
        if (d->conns)
            d->conns->prev = x;
        d->conns = x;
        pthread_mutex_unlock(&d->conns_lock);
        *socket_context = x;
    } else {
        atomic_fetch_sub(&d->conns_open, 1);
        tpmd_conn *x = *socket_context;
        if (!x)
            return;
        /* unlinked before MHD closes the socket, so the reaper never touches a reused fd */
        pthread_mutex_lock(&d->conns_lock);
        if (x->prev)
            x->prev->next = x->next;
        else
            d->conns = x->next;
        if (x->next)
            x->next->prev = x->prev;
        pthread_mutex_unlock(&d->conns_lock);
        free(x);
        *socket_context = NULL;
    }
}

size_t tpmd_conns_reap(tpmd *d) {
    uint64_t now = cit_now_usec(), limit = (uint64_t)d->cfg.header_timeout * 1000000;
    size_t n = 0;
    pthread_mutex_lock(&d->conns_lock);
    for (tpmd_conn *x = d->conns; x; x = x->next)
        if (x->waiting_since && now - x->waiting_since > limit) {
            shutdown(x->fd, SHUT_RDWR); /* MHD sees the end of the connection and closes it */
            x->waiting_since = 0;
            n++;
        }
    pthread_mutex_unlock(&d->conns_lock);
    return n;
}
