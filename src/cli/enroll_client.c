/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/util.h"
#include "cli/enroll_client.h"
#include "citadel/citadel.h"

#define ENROLL_TIMEOUT 60

static int server_error(const char *server, const char *path, const cit_http_resp *resp) {
    json_t *j = resp->body ? json_loadb(resp->body, resp->len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    uint32_t n = 0;
    int c = CIT_E_ENROLL_SERVER;
    if (code && strncmp(code, "TPM", 3) == 0 && cit_parse_u32(code + 3, &n) == 0 && cit_code_lookup((int)n))
        c = -(int)n;
    cit_error_set(c, "%s", msg ? msg : "the enrollment server refused the request");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(e, "causes"), i, v) cit_error_cause("%s", json_string_value(v) ?: "");
    json_array_foreach(json_object_get(e, "next_steps"), i, v) cit_error_step("%s", json_string_value(v) ?: "");
    cit_error_context("server", "%s", server);
    cit_error_context("route", "%s", path);
    cit_error_context("http_status", "%d", resp->status);
    json_decref(j);
    return c;
}

static int request(const char *server, const char *method, const char *path, const char *ca_file,
                   cit_tls_creds *creds, const json_t *body, const char *const *headers, cit_http_resp *resp) {
    char url[2048];
    if (!server || snprintf(url, sizeof url, "%s%s", server, path) >= (int)sizeof url) {
        cit_error_set(CIT_E_USAGE, "give the enrollment server's URL with --server (https://HOST:7702)");
        return CIT_E_USAGE;
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int r = cit_http_request(resp, method, url, ca_file, creds, text ? "application/json" : NULL, text,
                             text ? strlen(text) : 0, headers, ENROLL_TIMEOUT);
    if (text) {
        cit_memzero(text, strlen(text));
        free(text);
    }
    if (r < 0) {
        cit_error saved = *cit_error_last();
        cit_error_set(CIT_E_ENROLL_SERVER, "cannot reach the enrollment server %s", server);
        cit_error_cause("%s", saved.message);
        cit_error_context("route", "%s", path);
        return CIT_E_ENROLL_SERVER;
    }
    if (resp->status < 200 || resp->status > 299) {
        r = server_error(server, path, resp);
        cit_http_resp_free(resp);
        return r;
    }
    return 0;
}

int enroll_call(const char *server, const char *method, const char *path, const char *ca_file, cit_tls_creds *creds,
                const json_t *body, const char *const *headers, json_t **out) {
    cit_http_resp resp = {0};
    int r = request(server, method, path, ca_file, creds, body, headers, &resp);
    if (r < 0)
        return r;
    json_error_t je;
    json_t *j = json_loadb(resp.body ? resp.body : "", resp.len, 0, &je);
    if (resp.body)
        cit_memzero(resp.body, resp.len);
    cit_http_resp_free(&resp);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        cit_error_set(CIT_E_ENROLL_SERVER, "the enrollment server's answer to %s is not JSON", path);
        return CIT_E_ENROLL_SERVER;
    }
    json_object_del(j, "schema_version");
    *out = j;
    return 0;
}

int enroll_call_text(const char *server, const char *path, const char *ca_file, char **out) {
    cit_http_resp resp = {0};
    int r = request(server, "GET", path, ca_file, NULL, NULL, NULL, &resp);
    if (r < 0)
        return r;
    char *t = malloc(resp.len + 1);
    if (!t) {
        cit_http_resp_free(&resp);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    memcpy(t, resp.body ? resp.body : "", resp.len);
    t[resp.len] = 0;
    cit_http_resp_free(&resp);
    *out = t;
    return 0;
}
