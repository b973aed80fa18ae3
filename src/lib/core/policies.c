/* SPDX-License-Identifier: Apache-2.0 */
/* Named policies in the store: compile (from YAML), create (from flags), show, list, test, explain. */
#include <errno.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/keys.h"
#include "ctx.h"
#include "profiles.h"
#include "policy/policy.h"

static int bank_check(const char *bank);

/* The canonical policy of command-line flags: the PCRs in mask (values left to resolve), the
 * object's password, an authority. */
static json_t *policy_from_flags(const char *name, uint32_t mask, const char *bank, bool auth,
                                 const char *authorized_by) {
    json_t *req = json_object();
    if (mask) {
        json_t *a = json_array();
        for (int i = 0; i < 24; i++)
            if (mask & (1u << i))
                json_array_append_new(a, json_pack("{s:i,s:s}", "index", i, "bank", bank ? bank : "sha256"));
        json_object_set_new(req, "pcr", a);
    }
    if (auth)
        json_object_set_new(req, "auth_value", json_true());
    if (authorized_by)
        json_object_set_new(req, "authorized_by", json_pack("{s:s}", "authority", authorized_by));
    return json_pack("{s:s,s:o}", "name", name, "requires", req);
}

static int store_policy(cit_ctx *ctx, json_t *pol, const char *source, bool replace, json_t **out) {
    cit_store *s = ctx->store;
    const char *name = json_string_value(json_object_get(pol, "name"));
    cit_tpm *t;
    int r = cit__profile_check(ctx, name, NULL);
    if (r == 0)
        r = cit__ctx_tpm(ctx, &t);
    if (r == 0)
        r = cit__authority_resolve(ctx, json_object_get(json_object_get(pol, "requires"), "authorized_by"));
    if (r == 0)
        r = cit__policy_resolve(pol, t);
    TPM2B_DIGEST d;
    if (r == 0)
        r = cit__policy_digest(pol, &d);
    if (r < 0)
        return r;
    char *hex = cit_hex_encode(d.buffer, d.size);
    json_t *meta = json_pack("{s:s,s:O,s:s?}", "digest", hex, "policy", pol, "source", source);
    cit_object o = {0}, ex = {0};
    bool exists = cit__object_find(s, name, &ex) == 0;
    cit_error_clear();
    if (exists && (!replace || strcmp(ex.kind, "policy") != 0)) {
        r = cit_error_set(CIT_E_OBJECT_EXISTS, "object already exists: %s", name);
        cit_error_context("path", "%s", name);
        if (strcmp(ex.kind, "policy") == 0)
            cit_error_step("repeat with --replace to compile the new version of the policy");
        goto done;
    }
    r = cit__store_begin(s);
    if (r < 0)
        goto done;
    if (exists) {
        free(ex.metadata);
        ex.metadata = json_dumps(meta, JSON_COMPACT);
        ex.version++;
        r = cit__object_update(s, &ex);
        if (r == 0)
            r = cit__store_event(s, "policy.replace", name, ex.id, "ok", NULL);
    } else {
        snprintf(o.path, sizeof o.path, "%s", name);
        snprintf(o.kind, sizeof o.kind, "policy");
        snprintf(o.status, sizeof o.status, "active");
        snprintf(o.algorithm, sizeof o.algorithm, "sha256");
        o.version = 1;
        o.metadata = json_dumps(meta, JSON_COMPACT);
        r = cit__object_insert(s, &o);
        if (r == 0)
            r = cit__store_event(s, "policy.compile", name, o.id, "ok", NULL);
    }
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        goto done;
    }
    *out = json_pack("{s:s,s:s,s:O}", "policy", name, "digest", hex, "requires", json_object_get(pol, "requires"));
done:
    free(hex);
    json_decref(meta);
    cit__object_clear(&o);
    cit__object_clear(&ex);
    return r;
}

/* The YAML text of a policy, compiled and stored; label names it in errors (a file or "request"). */
static int compile_buf(json_t **out, cit_ctx *ctx, const uint8_t *buf, size_t len, bool replace, const char *label) {
    json_t *pol = NULL;
    int r = cit__policy_parse(&pol, (const char *)buf, len);
    if (r < 0) {
        cit_error_context("file", "%s", label);
        return r;
    }
    r = cit__policy_compile_parsed(out, ctx, pol, (const char *)buf, replace);
    json_decref(pol);
    return r;
}

int cit__policy_compile_parsed(json_t **out, cit_ctx *ctx, json_t *pol, const char *text, bool replace) {
    cit_store *s;
    static const char *const ops[] = {"TPM2_PCR_Read (values left out of the file)", NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "compile and store a policy", ops);
    if (r == 0)
        r = store_policy(ctx, pol, text, replace, out);
    return r < 0 ? r : 0;
}

_public_ int cit_policy_compile(json_t **out, cit_ctx *ctx, const char *file, bool replace) {
    cit_error_clear();
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = cit__read_input(file, CIT_POLICY_MAX, "the policy", true, &buf, &len);
    if (r < 0)
        return r;
    r = compile_buf(out, ctx, buf, len, replace, file);
    free(buf);
    return r;
}

_public_ int cit_policy_compile_text(json_t **out, cit_ctx *ctx, const char *yaml, size_t len, bool replace) {
    cit_error_clear();
    /* the stored source is text: no NUL inside (the file reader refuses those too) */
    if (memchr(yaml, 0, len)) {
        cit_error_set(CIT_E_INPUT_INVALID, "the policy text contains a NUL byte");
        return CIT_E_INPUT_INVALID;
    }
    char *buf = len <= CIT_POLICY_MAX ? strndup(yaml, len) : NULL;
    if (len <= CIT_POLICY_MAX && !buf)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    int r = compile_buf(out, ctx, (const uint8_t *)(buf ? buf : yaml), len, replace, "request");
    free(buf);
    return r;
}

_public_ int cit_policy_create(json_t **out, cit_ctx *ctx, const char *name, const char *pcrs, const char *bank,
                               bool password) {
    cit_error_clear();
    int r = cit__check_path(name);
    uint32_t mask = 0;
    if (r == 0 && pcrs)
        r = cit__pcr_parse_list(pcrs, &mask);
    if (r < 0)
        return r;
    if (!mask && !password) {
        cit_error_set(CIT_E_USAGE, "a policy needs --pcr LIST, --password or both");
        return CIT_E_USAGE;
    }
    if ((r = bank_check(bank)) < 0)
        return r;
    json_t *pol = policy_from_flags(name, mask, bank, password, NULL);
    cit_store *s;
    static const char *const ops[] = {"TPM2_PCR_Read", NULL};
    r = cit__ctx_store_or_plan(ctx, &s, out, "create and store a policy", ops);
    if (r == 0)
        r = store_policy(ctx, pol, NULL, false, out);
    json_decref(pol);
    return r < 0 ? r : 0;
}

int cit__policy_load(cit_ctx *ctx, const char *name, json_t **policy, char **digest_hex) {
    cit_object o = {0};
    int r = cit__ctx_find(ctx, name, &o);
    if (r == 0)
        r = cit__require_kind(&o, "policy");
    json_t *meta = r == 0 ? json_loads(o.metadata, 0, NULL) : NULL;
    if (r == 0 && (!meta || !json_is_object(json_object_get(meta, "policy"))))
        r = cit_error_set(CIT_E_STORE_IO, "the stored policy %s is damaged", name);
    if (r == 0) {
        *policy = json_incref(json_object_get(meta, "policy"));
        if (digest_hex)
            *digest_hex = strdup(json_string_value(json_object_get(meta, "digest")) ?: "");
    }
    json_decref(meta);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_policy_show(json_t **out, cit_ctx *ctx, const char *name) {
    cit_error_clear();
    json_t *pol = NULL;
    char *digest = NULL;
    int r = cit__policy_load(ctx, name, &pol, &digest);
    if (r < 0)
        return r;
    *out = json_pack("{s:s,s:s,s:O}", "policy", name, "digest", digest, "requires", json_object_get(pol, "requires"));
    json_decref(pol);
    free(digest);
    return 0;
}

_public_ int cit_policy_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "list policies (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    cit_object *list = NULL;
    size_t n = 0;
    r = cit__object_list(s, "policy", &list, &n);
    if (r < 0)
        return r;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *meta = json_loads(list[i].metadata, 0, NULL);
        const char *d = json_string_value(json_object_get(meta, "digest"));
        json_array_append_new(a, json_pack("{s:s,s:s,s:i}", "name", list[i].path, "digest", d ? d : "", "version",
                                           list[i].version));
        json_decref(meta);
    }
    cit__object_list_free(list, n);
    *out = json_pack("{s:o,s:I}", "policies", a, "count", (json_int_t)n);
    return 0;
}

_public_ int cit_policy_test(json_t **out, cit_ctx *ctx, const char *name, bool *satisfied) {
    cit_error_clear();
    json_t *pol = NULL;
    char *digest = NULL;
    int r = cit__policy_load(ctx, name, &pol, &digest);
    if (r < 0)
        return r;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_StartAuthSession (policy)", "TPM2_Policy* (each assertion)",
                                          "TPM2_PolicyGetDigest", "TPM2_FlushContext", NULL};
        *out = cit__plan("test a policy against the TPM now (changes nothing)", ops);
        goto done;
    }
    cit_tpm *t;
    r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        goto done;
    ESYS_TR sess = ESYS_TR_NONE;
    TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
    TSS2_RC rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &sess);
    if (rc != TSS2_RC_SUCCESS) {
        r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot start a policy session");
        goto done;
    }
    json_t *checks = json_array();
    int rr = cit__policy_run(t, pol, sess, checks, ctx);
    char *now_hex = NULL;
    if (rr == 0) {
        TPM2B_DIGEST *d = NULL;
        if (Esys_PolicyGetDigest(t->esys, sess, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &d) == TSS2_RC_SUCCESS)
            now_hex = cit_hex_encode(d->buffer, d->size);
        Esys_Free(d);
    }
    json_t *why = rr < 0 ? cit_error_to_json(cit_error_last()) : NULL;
    cit_error_clear();
    cit__tpm_flush(t, &sess);
    bool ok = rr == 0 && now_hex && strcmp(now_hex, digest) == 0;
    json_t *j = json_pack("{s:s,s:b,s:s,s:o}", "policy", name, "satisfied", ok, "digest", digest, "checks", checks);
    if (now_hex)
        json_object_set_new(j, "session_digest", json_string(now_hex));
    if (why) {
        json_object_set(j, "refusal", json_object_get(why, "causes"));
        json_decref(why);
    }
    free(now_hex);
    if (satisfied)
        *satisfied = ok;
    *out = j;
done:
    json_decref(pol);
    free(digest);
    return r;
}

_public_ int cit_policy_explain(json_t **out, cit_ctx *ctx, const char *name) {
    cit_error_clear();
    json_t *pol = NULL;
    char *digest = NULL;
    int r = cit__policy_load(ctx, name, &pol, &digest);
    if (r < 0)
        return r;
    char *text = cit__policy_explain(pol);
    *out = json_pack("{s:s,s:s,s:s,s:s}", "policy", name, "digest", digest, "explanation", text ? text : "", "_text",
                     text ? text : "");
    free(text);
    json_decref(pol);
    free(digest);
    return 0;
}

static int bank_check(const char *bank) {
    if (bank && strcmp(bank, "sha1") != 0 && strcmp(bank, "sha256") != 0 && strcmp(bank, "sha384") != 0 &&
        strcmp(bank, "sha512") != 0) {
        cit_error_set(CIT_E_BANK_UNSUPPORTED, "unknown PCR bank: %s", bank);
        cit_error_cause("banks are sha1, sha256, sha384 and sha512");
        return CIT_E_BANK_UNSUPPORTED;
    }
    return 0;
}

int cit__policy_for_object(cit_ctx *ctx, const char *path, const char *pcrs, const char *bank, const char *policy_name,
                           const char *authorized_by, bool auth, json_t **pol, char **digest_hex) {
    *pol = NULL;
    *digest_hex = NULL;
    if (policy_name && (pcrs || authorized_by)) {
        cit_error_set(CIT_E_USAGE, "give --policy, or --pcr / --authorized-by, not both");
        cit_error_cause("a named policy can list PCRs and an authority itself");
        return CIT_E_USAGE;
    }
    if (policy_name) {
        int r = cit__policy_load(ctx, policy_name, pol, digest_hex);
        if (r < 0)
            return r;
        bool needs = cit__policy_needs_auth(*pol);
        if (needs != auth) {
            r = needs ? cit_error_set(CIT_E_USAGE, "policy %s requires a password: give it with --auth-file", policy_name)
                      : cit_error_set(CIT_E_USAGE, "policy %s has no auth_value: a password would never be asked for",
                                      policy_name);
            json_decref(*pol);
            free(*digest_hex);
            *pol = NULL;
            *digest_hex = NULL;
        }
        return r;
    }
    if (!pcrs && !authorized_by)
        return 0;
    uint32_t mask = 0;
    int r = bank_check(bank);
    if (r == 0 && pcrs)
        r = cit__pcr_parse_list(pcrs, &mask);
    if (r < 0)
        return r;
    if (!mask) {
        cit_error_set(CIT_E_PCR_INVALID, authorized_by ? "--authorized-by needs --pcr-bind LIST: the PCRs whose states "
                                                         "the authority approves"
                                                       : "the PCR list names no PCR");
        return CIT_E_PCR_INVALID;
    }
    json_t *p = policy_from_flags(path, mask, bank, auth, authorized_by);
    json_t *req = json_object_get(p, "requires");
    cit_tpm *t;
    TPM2B_DIGEST d;
    r = cit__authority_resolve(ctx, json_object_get(req, "authorized_by"));
    if (r == 0)
        r = cit__ctx_tpm(ctx, &t);
    if (r == 0)
        r = cit__policy_resolve(p, t);
    if (r == 0)
        r = cit__policy_digest(p, &d);
    if (r < 0) {
        json_decref(p);
        return r;
    }
    *pol = p;
    *digest_hex = cit_hex_encode(d.buffer, d.size);
    return 0;
}
