/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Profiles (the workspace's defaults and constraints, enforced on every command that creates
 * something) and templates (ready recipes for `key create --template`, `secret seal --template`).
 */
#include <string.h>

#include "basic/macro.h"
#include "core/keys.h"
#include "ctx.h"
#include "profiles.h"

static const char *const all_algorithms[] = {"ecc-p256", "ecc-p384", "rsa-2048", "rsa-3072", "ed25519", NULL};
static const char *const ecc_only[] = {"ecc-p256", "ecc-p384", NULL};
static const char *const fips_like[] = {"ecc-p256", "ecc-p384", "rsa-3072", NULL};

static const cit_profile_def profiles[] = {
    {"default", "ECC P-256 keys, SHA-256; no constraints", "ecc-p256", all_algorithms, NULL, false},
    {"compat", "RSA-2048 keys by default, for tools that only speak RSA", "rsa-2048", all_algorithms, NULL, false},
    {"high", "ECC P-384 keys, SHA-384 by default", "ecc-p384", all_algorithms, NULL, false},
    {"ci-signer", "CI signing: ECC keys only, every object under ci/", "ecc-p256", ecc_only, "ci/", false},
    {"fips-like", "no SHA-1; P-256, P-384 or RSA-3072 keys only", "ecc-p256", fips_like, NULL, false},
    {"two-person", "every signature needs a request approved by an operator (`citadel tpm approval`)", "ecc-p256",
     all_algorithms, NULL, true},
};

const cit_profile_def *cit__profile_find(const char *name) {
    for (size_t i = 0; i < ELEMENTSOF(profiles); i++)
        if (strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    return NULL;
}

int cit__profile_unknown(const char *name) {
    cit_error_set(CIT_E_USAGE, "unknown profile: %s", name);
    cit_error_cause("profiles: default, compat, high, ci-signer, fips-like, two-person (`citadel tpm profile list`)");
    return CIT_E_USAGE;
}

static json_t *profile_json(const cit_profile_def *p, bool active) {
    json_t *algs = json_array();
    for (const char *const *a = p->algorithms; *a; a++)
        json_array_append_new(algs, json_string(*a));
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s,s:b}", "name", p->name, "description", p->description,
                     "default_algorithm", p->default_algorithm, "allowed_algorithms", algs, "path_prefix",
                     p->path_prefix ? p->path_prefix : "(any)", "signature_digests", "sha256, sha384, sha512", "active",
                     active);
    json_object_set_new(j, "approval_required", json_boolean(p->approval_required));
    return j;
}

static const cit_profile_def *active_profile(cit_store *s) {
    char *name = NULL;
    cit__store_meta_get(s, "profile", &name);
    const cit_profile_def *p = name ? cit__profile_find(name) : NULL;
    free(name);
    cit_error_clear();
    return p ? p : &profiles[0];
}

const cit_profile_def *cit__profile_active(cit_ctx *ctx) {
    cit_store *s;
    if (cit__ctx_store(ctx, &s) < 0) {
        cit_error_clear();
        return &profiles[0];
    }
    return active_profile(s);
}

int cit__profile_check(cit_ctx *ctx, const char *path, const char *algorithm) {
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    const cit_profile_def *p = active_profile(s);
    if (p->path_prefix && strncmp(path, p->path_prefix, strlen(p->path_prefix)) != 0) {
        cit_error_set(CIT_E_PROFILE_VIOLATION, "profile %s keeps every object under %s: %s is not", p->name,
                      p->path_prefix, path);
        cit_error_context("profile", "%s", p->name);
        cit_error_context("path", "%s", path);
        return CIT_E_PROFILE_VIOLATION;
    }
    if (algorithm) {
        bool ok = false;
        for (const char *const *a = p->algorithms; *a; a++)
            ok |= strcmp(*a, algorithm) == 0;
        if (!ok) {
            cit_error_set(CIT_E_PROFILE_VIOLATION, "profile %s does not allow %s keys", p->name, algorithm);
            char allowed[128] = "";
            size_t off = 0;
            for (const char *const *a = p->algorithms; *a; a++)
                off += (size_t)snprintf(allowed + off, sizeof allowed - off, "%s%s", off ? ", " : "", *a);
            cit_error_cause("allowed: %s", allowed);
            cit_error_context("profile", "%s", p->name);
            return CIT_E_PROFILE_VIOLATION;
        }
    }
    return 0;
}

_public_ int cit_profile_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "list profiles (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    const cit_profile_def *act = active_profile(s);
    json_t *a = json_array();
    for (size_t i = 0; i < ELEMENTSOF(profiles); i++)
        json_array_append_new(a, json_pack("{s:s,s:b,s:s}", "name", profiles[i].name, "active", &profiles[i] == act,
                                           "description", profiles[i].description));
    *out = json_pack("{s:o,s:s}", "profiles", a, "active", act->name);
    return 0;
}

_public_ int cit_profile_show(json_t **out, cit_ctx *ctx, const char *name) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    const cit_profile_def *act = active_profile(s);
    const cit_profile_def *p = name ? cit__profile_find(name) : act;
    if (!p)
        return cit__profile_unknown(name);
    *out = profile_json(p, p == act);
    return 0;
}

_public_ int cit_profile_set(json_t **out, cit_ctx *ctx, const char *name) {
    cit_error_clear();
    const cit_profile_def *p = cit__profile_find(name);
    if (!p)
        return cit__profile_unknown(name);
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "set the workspace profile (store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    const cit_profile_def *was = active_profile(s);
    r = cit__store_begin(s);
    if (r == 0)
        r = cit__store_meta_set(s, "profile", p->name);
    if (r == 0)
        r = cit__store_meta_set(s, "default_algorithm", p->default_algorithm);
    if (r == 0) {
        json_t *d = json_pack("{s:s}", "profile", p->name);
        r = cit__store_event(s, "profile.set", NULL, 0, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        return r;
    }
    *out = profile_json(p, true);
    if (was->approval_required && !p->approval_required)
        json_object_set_new(*out, "warning",
                            json_string("signatures no longer need approvals; the change is in the operation log "
                                        "(profiles are enforced by citadel, not by the TPM)"));
    return 0;
}

/* ---- templates ---- */

static const cit_template_def templates[] = {
    {"ci-signer", "a CI release-signing key: ECC P-256, loaded on demand", "key", "ecc-p256", "sign", false, NULL,
     true},
    {"tls-server", "a TLS server key: ECC P-256, persistent for fast handshakes", "key", "ecc-p256", "sign", true, NULL,
     true},
    {"boot-sealed-secret", "a secret the TPM releases only while PCRs 0 and 7 (firmware, Secure Boot) hold",
     "secret", NULL, NULL, false, "0,7", true},
    {"attestation-ak", "an attestation key (restricted signing key under the endorsement hierarchy)", "key",
     "ecc-p256", "sign", false, NULL, true},
};

const cit_template_def *cit__template_find(const char *name) {
    for (size_t i = 0; i < ELEMENTSOF(templates); i++)
        if (strcmp(templates[i].name, name) == 0)
            return &templates[i];
    cit_error_set(CIT_E_USAGE, "unknown template: %s", name);
    cit_error_cause("templates: ci-signer, tls-server, boot-sealed-secret, attestation-ak (`citadel tpm template list`)");
    return NULL;
}

int cit__template_for(const char *name, const char *kind, const cit_template_def **out) {
    const cit_template_def *t = cit__template_find(name);
    if (!t)
        return CIT_E_USAGE;
    if (!t->available) {
        cit_error_set(CIT_E_BACKEND_UNSUPPORTED_OP, "template %s needs attestation support, which is not built yet",
                      name);
        return CIT_E_BACKEND_UNSUPPORTED_OP;
    }
    if (strcmp(t->kind, kind) != 0) {
        cit_error_set(CIT_E_USAGE, "template %s makes a %s, not a %s", name, t->kind, kind);
        cit_error_step(strcmp(t->kind, "secret") == 0 ? "use it with `citadel tpm secret seal PATH --template %s`"
                                                      : "use it with `citadel tpm key create PATH --template %s`",
                       name);
        return CIT_E_USAGE;
    }
    *out = t;
    return 0;
}

static json_t *template_json(const cit_template_def *t) {
    json_t *j = json_pack("{s:s,s:s,s:s,s:b}", "name", t->name, "description", t->description, "makes", t->kind,
                          "available", t->available);
    if (t->algorithm)
        json_object_set_new(j, "algorithm", json_string(t->algorithm));
    if (t->usage)
        json_object_set_new(j, "usage", json_string(t->usage));
    if (strcmp(t->kind, "key") == 0)
        json_object_set_new(j, "persist", json_boolean(t->persist));
    if (t->pcrs)
        json_object_set_new(j, "pcrs", json_string(t->pcrs));
    json_object_set_new(j, "use", json_string(strcmp(t->kind, "secret") == 0 ? "citadel tpm secret seal PATH --input F --template NAME"
                                                                             : "citadel tpm key create PATH --template NAME"));
    if (!t->available)
        json_object_set_new(j, "note", json_string("needs attestation support (not built yet)"));
    return j;
}

_public_ int cit_template_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    json_t *a = json_array();
    for (size_t i = 0; i < ELEMENTSOF(templates); i++)
        json_array_append_new(a, json_pack("{s:s,s:s,s:b,s:s}", "name", templates[i].name, "makes", templates[i].kind,
                                           "available", templates[i].available, "description", templates[i].description));
    *out = json_pack("{s:o}", "templates", a);
    return 0;
}

_public_ int cit_template_show(json_t **out, cit_ctx *ctx, const char *name) {
    cit_error_clear();
    const cit_template_def *t = cit__template_find(name);
    if (!t)
        return CIT_E_USAGE;
    *out = template_json(t);
    return 0;
}
