/* SPDX-License-Identifier: Apache-2.0 */
#include "ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/audit.h"

static char *default_store_path(void) {
    const char *env = getenv("TPM_STORE_PATH");
    if (env && *env)
        return strdup(env);
    const char *xdg = getenv("XDG_DATA_HOME");
    char buf[4096];
    if (xdg && *xdg)
        snprintf(buf, sizeof buf, "%s/citadel/store.db", xdg);
    else {
        const char *home = getenv("HOME");
        snprintf(buf, sizeof buf, "%s/.local/share/citadel/store.db", home && *home ? home : ".");
    }
    return strdup(buf);
}

_public_ int cit_ctx_new(cit_ctx **out, const cit_ctx_options *o) {
    cit_error_clear();
    /* tpm2-tss logs warnings to stderr by default; the library reports through cit_error_last(). */
    setenv("TSS2_LOG", "all+NONE", 0);
    cit_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    ctx->plan = o && o->plan;
    ctx->key_cache.h = ESYS_TR_NONE;
    const char *backend = o && o->backend ? o->backend : getenv("TPM_BACKEND");
    if (backend && *backend) {
        int r = cit__backend_parse(backend, &ctx->backend);
        if (r < 0) {
            free(ctx);
            return r;
        }
        ctx->backend_explicit = ctx->backend != CIT_BACKEND_AUTO;
    }
    const char *tcti = o && o->tcti ? o->tcti : getenv("TPM_TCTI");
    if (tcti && *tcti)
        ctx->tcti = strdup(tcti);
    if (ctx->backend == CIT_BACKEND_MOCK)
        ctx->store_path = strdup(":memory:");
    else
        ctx->store_path = o && o->store_path && *o->store_path ? strdup(o->store_path) : default_store_path();
    const char *state = o && o->vtpm_state && *o->vtpm_state ? o->vtpm_state : NULL;
    size_t n = ctx->store_path ? strlen(state ? state : ctx->store_path) + 16 : 0;
    ctx->state_path = n ? malloc(n) : NULL;
    if (!ctx->store_path || !ctx->state_path) {
        cit_ctx_close(ctx);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    if (state)
        snprintf(ctx->state_path, n, "%s", state);
    else
        snprintf(ctx->state_path, n, "%s.tpmstate", ctx->store_path);
    *out = ctx;
    return 0;
}

_public_ int cit_ctx_close(cit_ctx *ctx) {
    if (!ctx)
        return 0;
    int r = 0;
    cit__key_cache_drop(ctx);
    cit__audit_state_free(ctx);
    cit__audit_keys_drop(ctx);
    if (ctx->tpm)
        r = cit__tpm_close(ctx->tpm);
    cit__store_close(ctx->store);
    free(ctx->store_path);
    free(ctx->state_path);
    free(ctx->tcti);
    free(ctx);
    return r;
}

_public_ void cit_ctx_set_plan(cit_ctx *ctx, bool plan) { ctx->plan = plan; }

_public_ void cit_ctx_set_actor(cit_ctx *ctx, const char *actor) {
    snprintf(ctx->actor, sizeof ctx->actor, "%s", actor ? actor : "");
    if (ctx->store)
        snprintf(ctx->store->actor, sizeof ctx->store->actor, "%s", ctx->actor);
}

_public_ const char *cit_ctx_store_path(cit_ctx *ctx) { return ctx->store_path; }
_public_ const char *cit_ctx_backend(cit_ctx *ctx) { return cit__backend_name(ctx->backend); }

int cit__ctx_resolve_backend(cit_ctx *ctx, cit_store *s) {
    if (ctx->backend != CIT_BACKEND_AUTO)
        return 0;
    if (s) {
        _cleanup_free_ char *b = NULL;
        int r = cit__store_meta_get(s, "backend", &b);
        if (r < 0)
            return r;
        if (b && cit__backend_parse(b, &ctx->backend) == 0 && ctx->backend != CIT_BACKEND_AUTO) {
            if (!ctx->tcti) {
                _cleanup_free_ char *t = NULL;
                if (cit__store_meta_get(s, "tcti", &t) == 0 && t && *t)
                    ctx->tcti = TAKE_PTR(t);
            }
            return 0;
        }
    }
    ctx->backend = cit__device_usable() ? CIT_BACKEND_DEVICE : CIT_BACKEND_VTPM;
    return 0;
}

int cit__ctx_store(cit_ctx *ctx, cit_store **out) {
    if (ctx->store) {
        *out = ctx->store;
        return 0;
    }
    cit_store *s = NULL;
    int r;
    if (ctx->backend == CIT_BACKEND_MOCK) {
        r = cit__store_open(&s, ":memory:", true);
        if (r < 0)
            return r;
        ctx->store = s;
        if (ctx->actor[0])
            snprintf(s->actor, sizeof s->actor, "%s", ctx->actor);
        r = cit__workspace_init(ctx, s, NULL, NULL);
        if (r < 0) {
            cit__store_close(s);
            ctx->store = NULL;
            return r;
        }
        *out = s;
        return 0;
    }
    r = cit__store_open(&s, ctx->store_path, false);
    if (r < 0)
        return r;
    _cleanup_free_ char *init = NULL;
    r = cit__store_meta_get(s, "initialized_at", &init);
    if (r == 0 && !init) {
        r = cit_error_set(CIT_E_NOT_INITIALIZED, "the workspace at %s is not initialised", ctx->store_path);
        cit_error_cause("the store exists but `init` did not finish");
        cit_error_context("store", "%s", ctx->store_path);
    }
    if (r == 0)
        r = cit__ctx_resolve_backend(ctx, s);
    if (r < 0) {
        cit__store_close(s);
        return r;
    }
    ctx->store = s;
    if (ctx->actor[0])
        snprintf(s->actor, sizeof s->actor, "%s", ctx->actor);
    *out = s;
    return 0;
}

int cit__ctx_tpm(cit_ctx *ctx, cit_tpm **out) {
    if (ctx->tpm) {
        *out = ctx->tpm;
        return 0;
    }
    if (ctx->backend == CIT_BACKEND_AUTO) {
        int r = cit__ctx_resolve_backend(ctx, ctx->store);
        if (r < 0)
            return r;
    }
    cit_tpm_options o = {
        .backend = ctx->backend,
        .tcti = ctx->tcti,
        .state_path = ctx->state_path,
        .create = false,
    };
    int r = cit__tpm_open(&ctx->tpm, &o);
    if (r < 0) {
        ctx->tpm = NULL;
        return r;
    }
    *out = ctx->tpm;
    return 0;
}

static int meta_blob(cit_store *s, const char *key, uint8_t **out, size_t *len) {
    _cleanup_free_ char *hex = NULL;
    *out = NULL;
    *len = 0;
    int r = cit__store_meta_get(s, key, &hex);
    if (r == 0 && hex && cit_hex_decode(out, len, hex) < 0) {
        *out = NULL;
        *len = 0;
    }
    return r;
}

int cit__ctx_srk(cit_ctx *ctx, bool verify, ESYS_TR *out) {
    cit_store *s;
    cit_tpm *t;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    if (t->srk != ESYS_TR_NONE && !verify) {
        *out = t->srk;
        return 0;
    }
    if (verify && t->srk != ESYS_TR_NONE) /* re-read it from the TPM */
        Esys_TR_Close(t->esys, &t->srk);
    uint8_t *name = NULL, *ser = NULL;
    size_t name_len = 0, ser_len = 0;
    r = meta_blob(s, "srk_name", &name, &name_len);
    if (r == 0 && !verify)
        r = meta_blob(s, "srk_tr", &ser, &ser_len);
    TPM2B_NAME expected = {0};
    if (name && name_len <= sizeof(expected.name)) {
        memcpy(expected.name, name, name_len);
        expected.size = (UINT16)name_len;
    }
    if (r == 0)
        r = cit__tpm_srk(t, &expected, ser, ser_len, out);
    free(name);
    free(ser);
    return r;
}

int cit__ctx_tpm_sync(cit_ctx *ctx) {
    if (!ctx->tpm || ctx->tpm->backend != CIT_BACKEND_VTPM)
        return 0;
    cit__key_cache_drop(ctx);
    int r = cit__tpm_close(ctx->tpm);
    ctx->tpm = NULL;
    return r;
}

json_t *cit__plan(const char *summary, const char *const *ops) {
    json_t *j = json_object();
    json_object_set_new(j, "plan", json_true());
    json_object_set_new(j, "summary", json_string(summary));
    json_t *a = json_array();
    for (size_t i = 0; ops && ops[i]; i++)
        json_array_append_new(a, json_string(ops[i]));
    json_object_set_new(j, "tpm_operations", a);
    json_object_set_new(j, "changes", json_string("none (plan only)"));
    return j;
}

int cit__check_path(const char *path) {
    const char *why = cit_path_invalid_reason(path);
    if (!why)
        return 0;
    cit_error_set(CIT_E_INVALID_PATH, "invalid object path: %s", path ? path : "");
    cit_error_cause("%s", why);
    cit_error_context("path", "%s", path ? path : "");
    return CIT_E_INVALID_PATH;
}

int cit__ctx_store_or_plan(cit_ctx *ctx, cit_store **s, json_t **out, const char *summary,
                           const char *const *ops) {
    int r = cit__ctx_store(ctx, s);
    if (r < 0)
        return r;
    if (!ctx->plan)
        return 0;
    *out = cit__plan(summary, ops);
    return 1;
}

int cit__ctx_find(cit_ctx *ctx, const char *path, cit_object *o) {
    cit_store *s;
    int r = cit__check_path(path);
    if (r == 0)
        r = cit__ctx_store(ctx, &s);
    if (r == 0)
        r = cit__object_find(s, path, o);
    return r;
}
