/* SPDX-License-Identifier: Apache-2.0 */
/* The context behind cit_ctx, shared by the operation modules of libcitadel. */
#pragma once
#include "citadel/citadel.h"
#include "store/store.h"
#include "tpm/tpm.h"

struct cit_ctx {
    char *store_path;
    char *state_path;
    char *tcti;
    cit_backend backend; /* AUTO until resolved */
    bool backend_explicit;
    bool plan;
    char actor[64]; /* cit_ctx_set_actor; empty: the store's default */
    cit_store *store;
    cit_tpm *tpm;
    /* The last key loaded stays loaded for the next operation on it (a long-lived context signs
     * with one TPM2_Sign); at most one, so a TPM without a resource manager keeps its slots. */
    struct {
        int64_t id;
        int version;
        bool persistent;
        ESYS_TR h;
        uint8_t name[sizeof(TPMU_NAME) + 2]; /* the TPM name of what is loaded */
        size_t name_len;
    } key_cache;
    /* The audit log writer's view of the head (audit.c) and unwrapped envelope keys
     * (audit_kek.c); both dropped at close, the keys wiped. */
    struct cit_audit_state *audit;
    struct cit_audit_keys *audit_keys;
};

/* The initialised workspace's store (opened on first use). For the mock backend an in-memory
 * workspace is created and initialised on first use. */
int cit__ctx_store(cit_ctx *ctx, cit_store **out);
/* The TPM (opened on first use, after the store, with the workspace's backend). */
int cit__ctx_tpm(cit_ctx *ctx, cit_tpm **out);
/* The storage primary key of this workspace. verify: read it from the TPM and check its name
 * against the one recorded at init (doctor, status); otherwise the handle recorded at init is
 * used without a TPM command (a missing key shows at the next load under it). */
int cit__ctx_srk(cit_ctx *ctx, bool verify, ESYS_TR *out);
/* Flushes the cached loaded key, if any. */
void cit__key_cache_drop(cit_ctx *ctx);
/* Makes the TPM's state durable now (vtpm: orderly shutdown and save; reopened on next use).
 * Called before committing store changes that depend on a TPM change. */
int cit__ctx_tpm_sync(cit_ctx *ctx);
/* Resolves the backend (explicit, then the workspace's, then auto). */
int cit__ctx_resolve_backend(cit_ctx *ctx, cit_store *store_or_null);

/* A plan result: {"plan": true, "summary": ..., "operations": [...], "changes": "none"}.
 * ops is NULL-terminated. */
json_t *cit__plan(const char *summary, const char *const *ops);
/* Opens the store; in plan mode also puts the plan into *out and returns 1 (the caller returns
 * 0 at once). 0 when the operation should go on, negative on failure. */
int cit__ctx_store_or_plan(cit_ctx *ctx, cit_store **s, json_t **out, const char *summary,
                           const char *const *ops);
/* Validates path, opens the store and finds the object (CIT_E_INVALID_PATH,
 * CIT_E_OBJECT_NOT_FOUND, ...). */
int cit__ctx_find(cit_ctx *ctx, const char *path, cit_object *o);
/* Validates an object path (CIT_E_INVALID_PATH with the reason). */
int cit__check_path(const char *path);
/* Internal init used by cit_workspace_init and the mock backend. */
int cit__workspace_init(cit_ctx *ctx, cit_store *s, const char *profile, json_t **out);
