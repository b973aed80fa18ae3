/* SPDX-License-Identifier: Apache-2.0 */
/* `citadel enroll list|show|approve|deny|revoke|config-set|config-get|crl`: an operator's calls
 * to enrolld's admin API (docs/enrollment.md), authenticated by an admin API key (--api-key-file
 * or $ENROLL_API_KEY) or an admin client certificate (--cert/--key). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/util.h"
#include "cli.h"
#include "cli/enroll_client.h"

typedef struct admin {
    const char *server, *ca_file;
    char key_hdr[300];
    const char *hdrs[2];
    cit_tls_creds *creds;
} admin;

static const char *envv(const char *n) {
    const char *v = getenv(n);
    return v && *v ? v : NULL;
}

static int admin_open(const cli_args *a, admin *ad) {
    memset(ad, 0, sizeof *ad);
    ad->server = cli_get(a, "server") ?: envv("ENROLL_SERVER");
    ad->ca_file = cli_get(a, "ca-file") ?: envv("ENROLL_CA_FILE");
    if (!ad->server) {
        cit_error_set(CIT_E_USAGE, "give the server with --server URL or $ENROLL_SERVER");
        return CIT_E_USAGE;
    }
    const char *kf = cli_get(a, "api-key-file");
    char key[256] = "";
    if (kf) {
        uint8_t *b = NULL;
        size_t n = 0;
        if (cit_read_file(kf, sizeof key - 1, &b, &n) < 0) {
            cit_error_set(CIT_E_INPUT_READ, "cannot read the API key file %s", kf);
            return CIT_E_INPUT_READ;
        }
        while (n && (b[n - 1] == '\n' || b[n - 1] == '\r'))
            n--;
        memcpy(key, b, n);
        key[n] = 0;
        cit_memzero(b, n);
        free(b);
    } else if (envv("ENROLL_API_KEY"))
        snprintf(key, sizeof key, "%s", envv("ENROLL_API_KEY"));
    if (key[0]) {
        snprintf(ad->key_hdr, sizeof ad->key_hdr, "X-API-Key: %s", key);
        ad->hdrs[0] = ad->key_hdr;
    }
    cit_memzero(key, sizeof key);
    if (cli_get(a, "cert") || cli_get(a, "key")) {
        if (!cli_get(a, "cert") || !cli_get(a, "key")) {
            cit_error_set(CIT_E_USAGE, "--cert and --key go together (an admin client certificate)");
            return CIT_E_USAGE;
        }
        return cit_tls_creds_file(&ad->creds, cli_get(a, "cert"), cli_get(a, "key"));
    }
    return 0;
}

static void admin_close(admin *ad) {
    cit_memzero(ad->key_hdr, sizeof ad->key_hdr);
    cit_tls_creds_free(ad->creds);
}

static int call(const cli_args *a, const char *method, const char *path, json_t *body, json_t **out) {
    admin ad;
    int r = admin_open(a, &ad);
    if (r == 0)
        r = enroll_call(ad.server, method, path, ad.ca_file, ad.creds, body, ad.hdrs[0] ? ad.hdrs : NULL, out);
    admin_close(&ad);
    return r;
}

int cli_enroll_list(cli_env *e, const cli_args *a, json_t **out) {
    char path[128];
    snprintf(path, sizeof path, "/v1/admin/nodes%s%s", cli_get(a, "status") ? "?status=" : "",
             cli_get(a, "status") ?: "");
    return call(a, "GET", path, NULL, out);
}

static int node_path(const cli_args *a, const char *verb, char *path, size_t len) {
    const char *n = a->pos[0];
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == '_')) {
            cit_error_set(CIT_E_USAGE, "NODE is a host name or an enrollment id, not '%s'", n);
            return CIT_E_USAGE;
        }
    snprintf(path, len, "/v1/admin/nodes/%s%s%s", n, verb ? "/" : "", verb ? verb : "");
    return 0;
}

int cli_enroll_show(cli_env *e, const cli_args *a, json_t **out) {
    char path[400];
    int r = node_path(a, NULL, path, sizeof path);
    return r < 0 ? r : call(a, "GET", path, NULL, out);
}

static int decide(const cli_args *a, const char *verb, json_t **out) {
    char path[400];
    int r = node_path(a, verb, path, sizeof path);
    if (r < 0)
        return r;
    json_t *body = json_object();
    if (cli_get(a, "reason"))
        json_object_set_new(body, "reason", json_string(cli_get(a, "reason")));
    r = call(a, "POST", path, body, out);
    json_decref(body);
    return r;
}

int cli_enroll_approve(cli_env *e, const cli_args *a, json_t **out) { return decide(a, "approve", out); }
int cli_enroll_deny(cli_env *e, const cli_args *a, json_t **out) { return decide(a, "deny", out); }
int cli_enroll_revoke(cli_env *e, const cli_args *a, json_t **out) { return decide(a, "revoke", out); }

int cli_enroll_config_set(cli_env *e, const cli_args *a, json_t **out) {
    json_t *body = json_pack("{s:s,s:s}", "scope", cli_get(a, "scope") ?: "global", "key", a->pos[0]);
    json_object_set_new(body, "value", a->npos > 1 ? json_string(a->pos[1]) : json_null());
    int r = call(a, "PUT", "/v1/admin/config", body, out);
    json_decref(body);
    return r;
}

int cli_enroll_config_get(cli_env *e, const cli_args *a, json_t **out) {
    char path[400];
    if (a->npos > 0) {
        int r = node_path(a, NULL, path, sizeof path);
        if (r < 0)
            return r;
        snprintf(path, sizeof path, "/v1/admin/config?node=%s", a->pos[0]);
    } else
        snprintf(path, sizeof path, "/v1/admin/config");
    return call(a, "GET", path, NULL, out);
}

int cli_enroll_crl(cli_env *e, const cli_args *a, json_t **out) {
    const char *server = cli_get(a, "server") ?: envv("ENROLL_SERVER");
    char *pem = NULL;
    int r = enroll_call_text(server, "/v1/crl", cli_get(a, "ca-file") ?: envv("ENROLL_CA_FILE"), &pem);
    if (r < 0)
        return r;
    const char *o = cli_get(a, "output");
    if (o) {
        int w = cit_write_file_atomic(o, (const uint8_t *)pem, strlen(pem), 0644, 0);
        if (w < 0)
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s", o);
        else
            *out = json_pack("{s:s}", "output", o);
    } else
        *out = json_pack("{s:s}", "_text", pem);
    free(pem);
    return r;
}
