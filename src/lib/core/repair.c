/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `repair scan|plan|apply`: finds where the store and the TPM disagree and fixes it.
 *
 * One scan produces findings; each finding carries the operations that fix it. `plan` is the
 * scan's operation list; `apply` runs the scan again and performs exactly that list: first the
 * TPM operations (evictions and undefines of things the store does not name, re-persisting keys
 * from their blobs, a new storage key after a clear), made durable, then every store change in
 * one transaction. Each operation checks the TPM before it acts, so running apply again after
 * a partial run (or a crash) is safe and converges; a clean scan plans nothing.
 *
 * Nothing is ever removed from the TPM unless the store proves it is citadel's: a handle that
 * holds the TPM name of a stored key version, or one an intent (store/intents.h) names. Other
 * handles in citadel's ranges are reported and touched only with include_foreign.
 */
#include <signal.h>
#include <string.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/attest.h"
#include "core/ek.h"
#include "core/keys.h"
#include "core/repair.h"
#include "ctx.h"
#include "store/intents.h"

/* ---- small TPM helpers ---- */

static bool tpm_name_at(cit_tpm *t, uint32_t handle, uint8_t *name, size_t cap, size_t *len) {
    ESYS_TR h = ESYS_TR_NONE;
    if (Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &h) != TSS2_RC_SUCCESS)
        return false;
    TPM2B_NAME *nm = NULL;
    bool ok = cit__tpm_object_name(t, h, &nm) == TSS2_RC_SUCCESS && nm->size <= cap;
    if (ok) {
        memcpy(name, nm->name, nm->size);
        *len = nm->size;
    } else
        *len = 0;
    Esys_Free(nm);
    Esys_TR_Close(t->esys, &h);
    return true; /* present (name may be unreadable: *len 0) */
}

static bool tpm_present(cit_tpm *t, uint32_t handle) {
    uint8_t n[sizeof(TPMU_NAME) + 2];
    size_t l;
    return tpm_name_at(t, handle, n, sizeof n, &l);
}

static char *hex(const uint8_t *b, size_t n) { return cit_hex_encode(b, n); }

int cit__ek_fingerprint(cit_ctx *ctx, char **out) {
    ESYS_TR h = ESYS_TR_NONE;
    TPM2B_PUBLIC pub;
    int r = cit__ek_load(ctx, "ecc-p256", &h, &pub);
    if (h != ESYS_TR_NONE)
        cit__tpm_flush(ctx->tpm, &h);
    if (r < 0)
        return r;
    uint8_t name[sizeof(TPMU_NAME) + 2];
    size_t nl = 0;
    if ((r = cit__name_from_public(&pub, name, &nl)) < 0)
        return r;
    *out = hex(name, nl);
    return *out ? 0 : cit_error_set(CIT_E_INTERNAL, "out of memory");
}

int cit__repair_srk_state(cit_ctx *ctx, const char **state) {
    ESYS_TR srk;
    int r = cit__ctx_srk(ctx, true, &srk);
    if (r == 0)
        return 0;
    if (r != CIT_E_SRK_MISSING)
        return r;
    cit_error saved = *cit_error_last();
    _cleanup_free_ char *recorded = NULL, *now = NULL;
    if (cit__store_meta_get(ctx->store, "ek_name", &recorded) < 0 || !recorded || !*recorded)
        *state = "unproven";
    else if (cit__ek_fingerprint(ctx, &now) < 0)
        *state = "unproven";
    else
        *state = strcmp(now, recorded) == 0 ? "tpm-cleared" : "tpm-replaced";
    cit_error_restore(&saved);
    return 1;
}

/* ---- the scan ---- */

typedef struct scan {
    cit_ctx *ctx;
    cit_store *s;
    cit_tpm *t;
    bool include_foreign, accept_cleared;
    json_t *findings;
    json_t *notes;
    int actionable;
    uint32_t *ph; /* persistent handles present in citadel's range */
    size_t nph;
    uint32_t nv[256]; /* NV indices present in citadel's range */
    size_t nnv;
    uint32_t reserved[64]; /* handles planned for re-persisting at a new place */
    size_t nres;
    cit_object *objs;
    size_t nobj;
    cit_intent *intents;
    size_t nint;
} scan;

static json_t *op_new(const char *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *op_new(const char *op, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char buf[600];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return json_pack("{s:s,s:s}", "op", op, "text", buf);
}

static void set_handle(json_t *op, const char *key, uint32_t h) {
    char b[16];
    snprintf(b, sizeof b, "0x%08x", h);
    json_object_set_new(op, key, json_string(b));
    json_object_set_new(op, "_handle", json_integer(h));
}

/* A finding; ops (stolen) may be empty. actionable: apply has something to do for it. */
static json_t *finding(scan *c, const char *kind, const char *object, const char *detail, const char *fix,
                       json_t *ops) {
    json_t *f = json_pack("{s:s,s:s,s:s,s:s}", "kind", kind, "object", object, "detail", detail, "fix", fix);
    json_object_set_new(f, "operations", ops ? ops : json_array());
    json_array_append_new(c->findings, f);
    if (json_array_size(json_object_get(f, "operations")))
        c->actionable++;
    return f;
}

static bool name_is_stored_version(cit_store *s, const uint8_t *name, size_t len) {
    if (!len)
        return false;
    sqlite3_stmt *st;
    if (cit__store_prepare(s, &st, "SELECT 1 FROM object_versions WHERE tpm_name = ? LIMIT 1") < 0) {
        cit_error_clear();
        return false;
    }
    sqlite3_bind_blob(st, 1, name, (int)len, SQLITE_STATIC);
    bool yes = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return yes;
}

static bool handle_in_intents(scan *c, uint32_t h) {
    for (size_t i = 0; i < c->nint; i++)
        if (c->intents[i].handle == h)
            return true;
    return false;
}

static const cit_object *object_claiming(scan *c, uint32_t h) {
    for (size_t i = 0; i < c->nobj; i++)
        if (c->objs[i].persistent_handle == h || (h >> 24 == TPM2_HT_NV_INDEX && cit__nv_handle_of(&c->objs[i]) == h))
            return &c->objs[i];
    return NULL;
}

/* Loads the current version from its blob (never from its handle): 1 loads, 0 the TPM refuses
 * it (CIT_E_KEY_LOAD, the reason in why), negative for any other failure. */
static int loads_from_blob(scan *c, const cit_object *o, char *why, size_t wl) {
    cit_object tmp = *o;
    tmp.persistent_handle = 0;
    ESYS_TR h = ESYS_TR_NONE;
    bool pers = false;
    int r = strcmp(o->kind, "ak") == 0 ? cit__ak_load_transient(c->ctx, &tmp, true, &h)
                                       : cit__key_load(c->ctx, &tmp, tmp.version, &h, &pers);
    if (r == 0) {
        if (strcmp(o->kind, "ak") == 0)
            cit__tpm_flush(c->ctx->tpm, &h);
        else
            cit__key_unload(c->ctx, &h, pers);
        cit__key_cache_drop(c->ctx);
        return 1;
    }
    cit__key_cache_drop(c->ctx);
    if (r == CIT_E_KEY_LOAD) {
        snprintf(why, wl, "%s", cit_error_last()->message);
        cit_error_clear();
        return 0;
    }
    return r;
}

static bool reserved(scan *c, uint32_t h) {
    for (size_t i = 0; i < c->nres; i++)
        if (c->reserved[i] == h)
            return true;
    return false;
}

static int free_handle(scan *c, uint32_t *out) {
    for (uint32_t h = CIT_PERSISTENT_FIRST; h <= CIT_PERSISTENT_LAST; h++) {
        bool used = reserved(c, h) || object_claiming(c, h) || handle_in_intents(c, h);
        for (size_t i = 0; i < c->nph && !used; i++)
            used = c->ph[i] == h;
        if (!used && c->nres < ELEMENTSOF(c->reserved)) {
            c->reserved[c->nres++] = h;
            *out = h;
            return 0;
        }
    }
    cit_error_set(CIT_E_NO_FREE_HANDLE, "all citadel persistent handles are in use");
    return CIT_E_NO_FREE_HANDLE;
}

static json_t *op_retire(const cit_object *o, const char *reason, bool clear_handle) {
    json_t *op = op_new("retire", "retire %s in the store (reason: %s)%s", o->path, reason,
                        clear_handle && o->persistent_handle ? "; forget its persistent handle" : "");
    json_object_set_new(op, "object", json_string(o->path));
    json_object_set_new(op, "_id", json_integer(o->id));
    json_object_set_new(op, "_reason", json_string(reason));
    json_object_set_new(op, "_clear_handle", json_boolean(clear_handle));
    return op;
}

static json_t *op_persist(const cit_object *o, uint32_t handle) {
    json_t *op = op_new("persist", "make version %d of %s persistent again at 0x%08x, from its stored blob%s", o->version,
                        o->path, handle,
                        handle != o->persistent_handle ? " (and record the new handle in the store)" : "");
    json_object_set_new(op, "object", json_string(o->path));
    set_handle(op, "handle", handle);
    json_object_set_new(op, "_id", json_integer(o->id));
    return op;
}

static json_t *op_evict(uint32_t handle, const uint8_t *name, size_t nl, const char *why) {
    json_t *op = op_new("evict", "evict persistent handle 0x%08x (%s)", handle, why);
    set_handle(op, "handle", handle);
    if (nl) {
        char *n = hex(name, nl);
        json_object_set_new(op, "_name", json_string(n ? n : ""));
        free(n);
    }
    return op;
}

static json_t *op_undefine(uint32_t handle, const char *why) {
    json_t *op = op_new("undefine", "undefine NV index 0x%08x (%s)", handle, why);
    set_handle(op, "handle", handle);
    return op;
}

static json_t *op_drop_intent(const cit_intent *in) {
    json_t *op = op_new("drop-intent", "remove intent #%lld (%s %s) from the journal", (long long)in->id, in->op,
                        in->path);
    json_object_set_new(op, "_intent", json_integer(in->id));
    return op;
}

/* A persistent object whose handle is missing or holds something else. */
static int check_persistent(scan *c, const cit_object *o) {
    uint8_t want[sizeof(TPMU_NAME) + 2], got[sizeof(TPMU_NAME) + 2];
    size_t wl = 0, gl = 0;
    int r = cit__version_name(c->s, o->id, o->version, want, sizeof want, &wl);
    if (r < 0)
        return r;
    bool present = tpm_name_at(c->t, o->persistent_handle, got, sizeof got, &gl);
    if (present && gl == wl && memcmp(got, want, wl) == 0)
        return 0;
    char why[400] = "", detail[700], hs[16];
    snprintf(hs, sizeof hs, "0x%08x", o->persistent_handle);
    int loads = loads_from_blob(c, o, why, sizeof why);
    if (loads < 0)
        return loads;
    json_t *ops = json_array();
    if (!present) {
        snprintf(detail, sizeof detail, "the store says %s is persisted at %s, but the TPM has no object there",
                 o->path, hs);
        if (loads)
            json_array_append_new(ops, op_persist(o, o->persistent_handle));
        else
            json_array_append_new(ops, op_retire(o, "its persistent handle is gone and its blob no longer loads", true));
        finding(c, "missing-handle", o->path, detail,
                loads ? "re-persist it from its stored blob at the same handle (nothing is lost)"
                      : "retire it (its public key stays for verification)",
                ops);
        return 0;
    }
    bool ours = name_is_stored_version(c->s, got, gl);
    snprintf(detail, sizeof detail, "persistent handle %s of %s holds %s", hs, o->path,
             ours ? "another key citadel made (an older version or another object)" : "a key the store does not know");
    uint32_t nh = o->persistent_handle;
    if (ours)
        json_array_append_new(ops, op_evict(o->persistent_handle, got, gl, "a stale citadel key in the way"));
    else if (loads && (r = free_handle(c, &nh)) < 0) {
        json_decref(ops);
        return r;
    }
    if (loads)
        json_array_append_new(ops, op_persist(o, nh));
    else
        json_array_append_new(ops, op_retire(o, "its persistent handle holds another key and its blob no longer loads", true));
    finding(c, "handle-mismatch", o->path, detail,
            ours ? "evict the stale key and re-persist this one at its handle"
                 : loads ? "re-persist it at a free handle; the unknown key at its old handle is left alone"
                         : "retire it; the unknown key at its handle is left alone",
            ops);
    return 0;
}

static bool intent_covers(scan *c, const cit_object *o) {
    for (size_t i = 0; i < c->nint; i++)
        if ((c->intents[i].object_id && c->intents[i].object_id == o->id) || strcmp(c->intents[i].path, o->path) == 0)
            return true;
    return false;
}

static const char *intent_command(const char *op) {
    if (strcmp(op, "key.create") == 0)
        return "key create --persist";
    if (strcmp(op, "ak.create") == 0)
        return "attest ak-create --persist";
    if (strcmp(op, "key.rotate") == 0)
        return "key rotate";
    if (strcmp(op, "nv.define") == 0)
        return "nv define";
    if (strcmp(op, "object.delete") == 0)
        return "delete";
    return op;
}

static int resolve_intent(scan *c, const cit_intent *in) {
    char detail[700], when[32], hs[16], obj[300];
    cit_time_rfc3339(when, sizeof when, in->created_at);
    snprintf(hs, sizeof hs, "0x%08x", in->handle);
    snprintf(obj, sizeof obj, "%s", in->path[0] ? in->path : hs);
    snprintf(detail, sizeof detail, "`%s` of %s (process %lld, %s) did not finish: intent #%lld names %s",
             intent_command(in->op), in->path, (long long)in->pid, when, (long long)in->id, hs);
    if (cit__intent_live(in)) {
        json_t *f = finding(c, "command-in-progress", obj, detail, "none: the process is still running; scan again later",
                            NULL);
        json_object_set_new(f, "actionable", json_false());
        return 0;
    }
    uint8_t got[sizeof(TPMU_NAME) + 2];
    size_t gl = 0;
    bool nv = in->handle >> 24 == TPM2_HT_NV_INDEX;
    bool present = in->handle && tpm_name_at(c->t, in->handle, got, sizeof got, &gl);
    bool holds_intended = present && !nv && in->name_len && gl == in->name_len && memcmp(got, in->name, gl) == 0;
    const cit_object *claim = in->handle ? object_claiming(c, in->handle) : NULL;
    json_t *ops = json_array();
    const char *fix = "nothing reached the TPM: drop the journal entry";
    if (strcmp(in->op, "key.create") == 0 || strcmp(in->op, "ak.create") == 0) {
        if (claim && strcmp(claim->path, in->path) == 0)
            fix = "the command had finished: drop the journal entry";
        else if (holds_intended && !claim) {
            json_array_append_new(ops, op_evict(in->handle, got, gl, "the key of the unfinished create, never recorded in the store"));
            fix = "roll back: evict the key the store never recorded";
        }
    } else if (strcmp(in->op, "nv.define") == 0) {
        if (claim)
            fix = strcmp(claim->path, in->path) == 0 ? "the command had finished: drop the journal entry"
                                                     : "the index belongs to another object now: drop the journal entry";
        else if (present) {
            cit_object ex = {0};
            bool taken = cit__object_find(c->s, in->path, &ex) == 0;
            cit__object_clear(&ex);
            cit_error_clear();
            if (!taken) {
                json_t *op = op_new("record-nv", "record NV index %s as %s in the store", hs, in->path);
                json_object_set_new(op, "object", json_string(in->path));
                set_handle(op, "handle", in->handle);
                json_object_set(op, "_details", in->details);
                json_array_append_new(ops, op);
                fix = "roll forward: the index was defined as asked; record it in the store";
            } else {
                json_array_append_new(ops, op_undefine(in->handle, "defined by the unfinished command; its path is taken now"));
                fix = "roll back: undefine the index (its path was taken since)";
            }
        }
    } else if (strcmp(in->op, "key.rotate") == 0) {
        cit_object o = {0};
        int to = (int)json_integer_value(json_object_get(in->details, "to_version"));
        if (cit__object_get(c->s, in->object_id, &o) < 0) {
            cit_error_clear();
            if (holds_intended && !claim) {
                json_array_append_new(ops, op_evict(in->handle, got, gl, "the new version of a rotated key that was deleted since"));
                fix = "roll back: evict the unrecorded version";
            }
        } else if (o.version >= to)
            fix = "the command had finished: drop the journal entry";
        else {
            uint8_t cur[sizeof(TPMU_NAME) + 2];
            size_t cl = 0;
            bool holds_current = present && cit__version_name(c->s, o.id, o.version, cur, sizeof cur, &cl) == 0 &&
                                 cl == gl && memcmp(cur, got, gl) == 0;
            cit_error_clear();
            if (holds_current)
                fix = "the old version is back at its handle: drop the journal entry";
            else if (!present || holds_intended) {
                char why[400];
                int loads = loads_from_blob(c, &o, why, sizeof why);
                if (loads < 0) {
                    cit__object_clear(&o);
                    json_decref(ops);
                    return loads;
                }
                if (holds_intended)
                    json_array_append_new(ops, op_evict(in->handle, got, gl, "the unrecorded new version"));
                json_array_append_new(ops, loads ? op_persist(&o, in->handle)
                                                 : op_retire(&o, "an unfinished rotation left its handle empty and its blob no longer loads", true));
                fix = "roll back: put the recorded version back at its handle";
            } else
                fix = "the handle holds something else now (see the other findings): drop the journal entry";
        }
        cit__object_clear(&o);
    } else if (strcmp(in->op, "object.delete") == 0) {
        if (claim)
            fix = "the handle belongs to another object now: drop the journal entry";
        else if (nv && present) {
            json_array_append_new(ops, op_undefine(in->handle, "its object was deleted from the store"));
            fix = "roll forward: undefine the index of the deleted object";
        } else if (holds_intended) {
            json_array_append_new(ops, op_evict(in->handle, got, gl, "its object was deleted from the store"));
            fix = "roll forward: evict the key of the deleted object";
        } else if (present)
            fix = "the handle holds something else now: drop the journal entry";
        else
            fix = "the TPM part is already gone: drop the journal entry";
    } else
        fix = "unknown kind of intent: drop the journal entry";
    json_array_append_new(ops, op_drop_intent(in));
    finding(c, "unfinished-command", obj, detail, fix, ops);
    return 0;
}

static bool tpm_bound(const cit_object *o) {
    return strcmp(o->kind, "key") == 0 || strcmp(o->kind, "secret") == 0 || strcmp(o->kind, "nv") == 0 ||
           strcmp(o->kind, "ak") == 0;
}

/* The TPM was cleared (or replaced): one finding, with the fix only when it is provable. */
static int cleared_finding(scan *c, const char *state) {
    char detail[600];
    json_t *ops = json_array();
    int lost = 0;
    if (strcmp(state, "tpm-replaced") == 0) {
        finding(c, "tpm-replaced", "storage primary key",
                "the storage primary key at 0x81000002 is missing or not the one recorded at init, and the "
                "endorsement key differs from the recorded one: this is another TPM",
                "none: point the workspace at its own TPM (--tcti / TPM_TCTI, or its .tpmstate file); run `citadel "
                "tpm recover show tpm-cleared`",
                NULL);
        c->actionable++; /* needs attention, but apply refuses */
        json_decref(ops);
        return 0;
    }
    bool provable = strcmp(state, "tpm-cleared") == 0 || c->accept_cleared;
    json_t *op = op_new("provision-srk", "create and persist a new storage primary key at 0x%08x and record its name",
                        CIT_SRK_HANDLE);
    json_array_append_new(ops, op);
    for (size_t i = 0; i < c->nobj; i++) {
        const cit_object *o = &c->objs[i];
        if (strcmp(o->status, "active") != 0 || !tpm_bound(o))
            continue;
        if (strcmp(o->kind, "ak") == 0)
            continue; /* under the endorsement key, which a clear keeps: checked like any object */
        if (strcmp(o->kind, "nv") == 0 && tpm_present(c->t, cit__nv_handle_of(o)))
            continue;
        json_array_append_new(ops, op_retire(o, "tpm-cleared: the TPM was cleared, so its TPM part is lost", true));
        lost++;
    }
    if (strcmp(state, "unproven") == 0 && !c->accept_cleared) {
        snprintf(detail, sizeof detail,
                 "the storage primary key at 0x81000002 is missing or not the one recorded at init; the workspace "
                 "recorded no endorsement key, so a cleared TPM cannot be told from another TPM (%d object(s) "
                 "would be lost)",
                 lost);
    } else
        snprintf(detail, sizeof detail,
                 "the storage primary key at 0x81000002 is missing or not the one recorded at init, and the "
                 "endorsement key is the recorded one: the TPM was cleared; %d object(s) wrapped by the old storage "
                 "key are lost",
                 lost);
    json_t *f = finding(c, "tpm-cleared", "storage primary key", detail,
                        provable ? "mark the lost objects retired (the rows and public keys stay), make a new storage "
                                   "key; then see `citadel tpm recover show tpm-cleared`"
                                 : "none without --accept-cleared; see `citadel tpm recover show tpm-cleared`",
                        provable ? ops : NULL);
    if (!provable) {
        json_decref(ops);
        json_object_set_new(f, "needs", json_string("--accept-cleared"));
        c->actionable++;
    }
    return 0;
}

static void scan_free(scan *c) {
    free(c->ph);
    cit__object_list_free(c->objs, c->nobj);
    cit__intent_list_free(c->intents, c->nint);
}

static int nv_handles(scan *c) {
    TPMS_CAPABILITY_DATA *cap = NULL;
    TSS2_RC rc = Esys_GetCapability(c->t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, CIT_NV_FIRST,
                                    CIT_NV_LAST - CIT_NV_FIRST + 1, NULL, &cap);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(c->t, CIT_E_TPM_COMMAND, rc, "cannot list NV indices");
    for (uint32_t i = 0; i < cap->data.handles.count && c->nnv < ELEMENTSOF(c->nv); i++)
        if (cap->data.handles.handle[i] >= CIT_NV_FIRST && cap->data.handles.handle[i] <= CIT_NV_LAST)
            c->nv[c->nnv++] = cap->data.handles.handle[i];
    Esys_Free(cap);
    return 0;
}

static int run_scan(scan *c) {
    int r = cit__ctx_store(c->ctx, &c->s);
    if (r == 0)
        r = cit__ctx_tpm(c->ctx, &c->t);
    if (r == 0)
        r = cit__object_list(c->s, NULL, &c->objs, &c->nobj);
    if (r == 0)
        r = cit__intent_list(c->s, &c->intents, &c->nint);
    if (r < 0)
        return r;
    const char *state = NULL;
    r = cit__repair_srk_state(c->ctx, &state);
    if (r < 0)
        return r;
    c->t = c->ctx->tpm; /* deriving the EK may have reopened nothing, but stay current */
    if (r == 1 && (r = cleared_finding(c, state)) < 0)
        return r;
    bool cleared = state != NULL;
    if (strcmp(state ? state : "", "tpm-replaced") == 0)
        return 0; /* nothing else can be judged on another TPM */
    if ((r = cit__tpm_persistent_handles(c->t, CIT_PERSISTENT_FIRST, CIT_PERSISTENT_LAST, &c->ph, &c->nph)) < 0 ||
        (r = nv_handles(c)) < 0)
        return r;
    for (size_t i = 0; i < c->nint; i++)
        if ((r = resolve_intent(c, &c->intents[i])) < 0)
            return r;
    for (size_t i = 0; i < c->nobj; i++) {
        const cit_object *o = &c->objs[i];
        if (strcmp(o->status, "active") != 0 || !tpm_bound(o) || intent_covers(c, o))
            continue;
        if (cleared && strcmp(o->kind, "ak") != 0)
            continue; /* the cleared finding covers it */
        char why[400] = "", detail[600];
        uint32_t nvh = cit__nv_handle_of(o);
        if (strcmp(o->kind, "nv") == 0) {
            if (nvh && !tpm_present(c->t, nvh)) {
                snprintf(detail, sizeof detail, "NV index 0x%08x of %s is no longer defined in the TPM", nvh, o->path);
                json_t *ops = json_array();
                json_array_append_new(ops, op_retire(o, "its NV index is no longer defined in the TPM", false));
                finding(c, "nv-missing", o->path, detail,
                        "retire it; `citadel tpm gc` removes it after the retention period", ops);
            }
        } else if (o->persistent_handle) {
            if ((r = check_persistent(c, o)) < 0)
                return r;
        } else if (strcmp(o->kind, "key") == 0 || strcmp(o->kind, "secret") == 0) {
            int loads = loads_from_blob(c, o, why, sizeof why);
            if (loads < 0) {
                json_array_append_new(c->notes, json_sprintf("%s was not checked: %s", o->path, cit_error_last()->message));
                cit_error_clear();
            } else if (!loads) {
                snprintf(detail, sizeof detail, "the TPM no longer loads %s: %s", o->path, why);
                json_t *ops = json_array();
                json_array_append_new(ops, op_retire(o, "the TPM no longer loads its wrapped blob", false));
                finding(c, "unloadable", o->path, detail, "retire it (its public key stays for verification)", ops);
            }
        }
    }
    /* handles and indices in citadel's ranges that nothing in the store names */
    for (size_t k = 0; k < c->nph; k++) {
        uint32_t h = c->ph[k];
        if (object_claiming(c, h) || handle_in_intents(c, h))
            continue;
        uint8_t got[sizeof(TPMU_NAME) + 2];
        size_t gl = 0;
        tpm_name_at(c->t, h, got, sizeof got, &gl);
        bool ours = name_is_stored_version(c->s, got, gl);
        char hs[16], detail[400];
        snprintf(hs, sizeof hs, "0x%08x", h);
        snprintf(detail, sizeof detail, "persistent handle %s is in citadel's range but no object names it; %s", hs,
                 ours ? "it holds a key version the store knows (citadel's)"
                      : "it holds a key the store does not know (not provably citadel's)");
        json_t *ops = json_array();
        if (ours || c->include_foreign)
            json_array_append_new(ops, op_evict(h, got, gl, ours ? "orphaned citadel key" : "foreign: --include-foreign"));
        json_t *f = finding(c, "orphan-handle", hs, detail,
                            ours ? "evict it" : c->include_foreign ? "evict it (--include-foreign)"
                                                                   : "none unless --include-foreign: it may belong to another program",
                            ops);
        json_object_set_new(f, "provably_citadel", json_boolean(ours));
        if (!ours && !c->include_foreign)
            json_object_set_new(f, "needs", json_string("--include-foreign"));
    }
    for (size_t k = 0; k < c->nnv; k++) {
        uint32_t h = c->nv[k];
        if (object_claiming(c, h) || handle_in_intents(c, h))
            continue;
        char hs[16], detail[300];
        snprintf(hs, sizeof hs, "0x%08x", h);
        snprintf(detail, sizeof detail,
                 "NV index %s is in citadel's range but no object names it (nothing in the store proves it is citadel's)", hs);
        json_t *ops = json_array();
        if (c->include_foreign)
            json_array_append_new(ops, op_undefine(h, "foreign: --include-foreign"));
        json_t *f = finding(c, "orphan-nv", hs, detail,
                            c->include_foreign ? "undefine it (--include-foreign)"
                                               : "none unless --include-foreign: it may belong to another program",
                            ops);
        json_object_set_new(f, "provably_citadel", json_false());
        if (!c->include_foreign)
            json_object_set_new(f, "needs", json_string("--include-foreign"));
    }
    return 0;
}

/* The order apply performs operations in: TPM removals, then additions, then store changes. */
static int phase_of(const char *op) {
    if (strcmp(op, "evict") == 0 || strcmp(op, "undefine") == 0)
        return 0;
    if (strcmp(op, "provision-srk") == 0)
        return 1;
    if (strcmp(op, "persist") == 0)
        return 2;
    return 3;
}

static json_t *ordered_ops(const json_t *findings) {
    json_t *all = json_array();
    for (int p = 0; p < 4; p++) {
        size_t i, j;
        json_t *f, *op;
        json_array_foreach(findings, i, f) json_array_foreach(json_object_get(f, "operations"), j, op) if (
            phase_of(json_string_value(json_object_get(op, "op"))) == p) json_array_append(all, op);
    }
    return all;
}

static char *report_text(const json_t *findings, const json_t *ops, const char *head, bool list_ops) {
    char *text = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&text, &tl);
    if (!f)
        return NULL;
    fprintf(f, "%s\n", head);
    size_t i;
    json_t *x;
    json_array_foreach(findings, i, x) {
        fprintf(f, "\n%s: %s\n  %s\n  fix: %s\n", json_string_value(json_object_get(x, "kind")),
                json_string_value(json_object_get(x, "object")), json_string_value(json_object_get(x, "detail")),
                json_string_value(json_object_get(x, "fix")));
    }
    if (list_ops) {
        fprintf(f, "\n%zu operation(s):\n", json_array_size(ops));
        json_array_foreach(ops, i, x) fprintf(f, "  %zu. %s\n", i + 1, json_string_value(json_object_get(x, "text")));
    }
    fclose(f);
    return text;
}

int cit__repair_scan(cit_ctx *ctx, bool include_foreign, bool accept_cleared, json_t **out) {
    scan c = {.ctx = ctx, .include_foreign = include_foreign, .accept_cleared = accept_cleared,
              .findings = json_array(), .notes = json_array()};
    int r = run_scan(&c);
    cit__key_cache_drop(ctx);
    scan_free(&c);
    if (r < 0) {
        json_decref(c.findings);
        json_decref(c.notes);
        return r;
    }
    json_t *ops = ordered_ops(c.findings);
    json_t *j = json_object();
    json_object_set_new(j, "clean", json_boolean(json_array_size(c.findings) == 0));
    json_object_set_new(j, "needs_repair", json_integer(c.actionable));
    json_object_set_new(j, "findings", c.findings);
    json_object_set_new(j, "operations", ops);
    if (json_array_size(c.notes))
        json_object_set_new(j, "notes", c.notes);
    else
        json_decref(c.notes);
    *out = j;
    return 0;
}

/* The public result: no internal ("_") fields in operations, texts only where asked. */
static json_t *op_texts(const json_t *ops) {
    json_t *a = json_array();
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op) json_array_append(a, json_object_get(op, "text"));
    return a;
}

_public_ int cit_repair_scan(json_t **out, cit_ctx *ctx, bool include_foreign, bool *needs_repair) {
    cit_error_clear();
    json_t *j = NULL;
    int r = cit__repair_scan(ctx, include_foreign, false, &j);
    if (r < 0)
        return r;
    int n = (int)json_integer_value(json_object_get(j, "needs_repair"));
    char head[200];
    if (json_array_size(json_object_get(j, "findings")) == 0)
        snprintf(head, sizeof head, "The store and the TPM agree: nothing to repair.");
    else
        snprintf(head, sizeof head, "%zu finding(s), %d needing repair. Run `citadel tpm repair plan` for the operations.",
                 json_array_size(json_object_get(j, "findings")), n);
    char *text = report_text(json_object_get(j, "findings"), NULL, head, false);
    json_object_del(j, "operations");
    json_object_set_new(j, "_text", json_string(text ? text : head));
    free(text);
    if (needs_repair)
        *needs_repair = n > 0;
    *out = j;
    return 0;
}

static json_t *plan_result(json_t *scanj, bool plan_flag) {
    json_t *ops = json_object_get(scanj, "operations");
    json_t *j = json_object();
    if (plan_flag)
        json_object_set_new(j, "plan", json_true());
    json_object_set(j, "findings", json_object_get(scanj, "findings"));
    json_object_set_new(j, "operations", op_texts(ops));
    json_object_set(j, "needs_repair", json_object_get(scanj, "needs_repair"));
    if (json_object_get(scanj, "notes"))
        json_object_set(j, "notes", json_object_get(scanj, "notes"));
    json_object_set_new(j, "changes", json_string("none (plan only)"));
    char head[200];
    if (json_array_size(ops) == 0)
        snprintf(head, sizeof head, "Nothing to do: `repair apply` would change nothing.");
    else
        snprintf(head, sizeof head, "`citadel tpm repair apply` would perform these operations, in this order:");
    char *text = report_text(json_object_get(scanj, "findings"), ops, head, json_array_size(ops) > 0);
    json_object_set_new(j, "_text", json_string(text ? text : head));
    free(text);
    return j;
}

_public_ int cit_repair_plan(json_t **out, cit_ctx *ctx, bool include_foreign, bool accept_cleared) {
    cit_error_clear();
    json_t *j = NULL;
    int r = cit__repair_scan(ctx, include_foreign, accept_cleared, &j);
    if (r < 0)
        return r;
    *out = plan_result(j, false);
    json_decref(j);
    return 0;
}

/* ---- apply ---- */

static const cit_object *find_obj(cit_object *list, size_t n, int64_t id) {
    for (size_t i = 0; i < n; i++)
        if (list[i].id == id)
            return &list[i];
    return NULL;
}

static uint32_t op_handle(const json_t *op) { return (uint32_t)json_integer_value(json_object_get(op, "_handle")); }

static int do_evict(cit_ctx *ctx, const json_t *op) {
    uint32_t h = op_handle(op);
    uint8_t got[sizeof(TPMU_NAME) + 2];
    size_t gl = 0;
    if (!tpm_name_at(ctx->tpm, h, got, sizeof got, &gl))
        return 0; /* already gone */
    const char *want = json_string_value(json_object_get(op, "_name"));
    if (want) {
        _cleanup_free_ char *gh = hex(got, gl);
        if (!gh || strcmp(gh, want) != 0) {
            cit_error_set(CIT_E_REPAIR_FAILED, "persistent handle 0x%08x changed since the scan", h);
            cit_error_cause("it holds another key now; nothing was evicted");
            return CIT_E_REPAIR_FAILED;
        }
    }
    return cit__evict_handle(ctx, h);
}

static int do_persist(cit_ctx *ctx, const cit_object *o, uint32_t handle) {
    uint8_t want[sizeof(TPMU_NAME) + 2], got[sizeof(TPMU_NAME) + 2];
    size_t wl = 0, gl = 0;
    int r = cit__version_name(ctx->store, o->id, o->version, want, sizeof want, &wl);
    if (r < 0)
        return r;
    if (tpm_name_at(ctx->tpm, handle, got, sizeof got, &gl)) {
        if (gl == wl && memcmp(got, want, wl) == 0)
            return 0; /* already there */
        cit_error_set(CIT_E_REPAIR_FAILED, "persistent handle 0x%08x is taken", handle);
        cit_error_cause("it holds another key now; %s was not re-persisted", o->path);
        return CIT_E_REPAIR_FAILED;
    }
    cit_object tmp = *o;
    tmp.persistent_handle = 0;
    ESYS_TR h = ESYS_TR_NONE, ph = ESYS_TR_NONE;
    bool pers = false, ak = strcmp(o->kind, "ak") == 0;
    r = ak ? cit__ak_load_transient(ctx, &tmp, true, &h) : cit__key_load(ctx, &tmp, tmp.version, &h, &pers);
    if (r < 0)
        return r;
    TSS2_RC rc = Esys_EvictControl(ctx->tpm->esys, ESYS_TR_RH_OWNER, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                   handle, &ph);
    if (rc != TSS2_RC_SUCCESS)
        r = cit__tss_error(ctx->tpm, CIT_E_TPM_COMMAND, rc, "cannot make %s persistent at 0x%08x", o->path, handle);
    else
        Esys_TR_Close(ctx->tpm->esys, &ph);
    if (ak)
        cit__tpm_flush(ctx->tpm, &h);
    else
        cit__key_unload(ctx, &h, pers);
    cit__key_cache_drop(ctx);
    return r;
}

static int store_op(cit_ctx *ctx, cit_store *s, const json_t *op, cit_object *objs, size_t nobj, json_t *srk) {
    const char *kind = json_string_value(json_object_get(op, "op"));
    int64_t id = json_integer_value(json_object_get(op, "_id"));
    if (strcmp(kind, "drop-intent") == 0)
        return cit__intent_clear(s, json_integer_value(json_object_get(op, "_intent")));
    if (strcmp(kind, "provision-srk") == 0) {
        int r = cit__store_meta_set(s, "srk_name", json_string_value(json_object_get(srk, "name")));
        if (r == 0)
            r = cit__store_meta_set(s, "srk_tr", json_string_value(json_object_get(srk, "tr")));
        if (r == 0 && json_object_get(srk, "ek"))
            r = cit__store_meta_set(s, "ek_name", json_string_value(json_object_get(srk, "ek")));
        if (r == 0)
            r = cit__store_event(s, "repair.provision-srk", NULL, 0, "ok", srk);
        return r;
    }
    if (strcmp(kind, "record-nv") == 0) {
        json_t *d = json_object_get(op, "_details");
        cit_object o = {0};
        snprintf(o.path, sizeof o.path, "%s", json_string_value(json_object_get(op, "object")));
        snprintf(o.kind, sizeof o.kind, "nv");
        snprintf(o.status, sizeof o.status, "active");
        snprintf(o.algorithm, sizeof o.algorithm, "%s", json_string_value(json_object_get(d, "type")) ?: "ordinary");
        o.version = 1;
        json_t *m = json_pack("{s:I,s:I,s:s,s:b}", "handle", (json_int_t)op_handle(op), "size",
                              json_integer_value(json_object_get(d, "size")), "type", o.algorithm, "auth",
                              json_is_true(json_object_get(d, "auth")));
        o.metadata = json_dumps(m, JSON_COMPACT);
        json_decref(m);
        int r = cit__object_insert(s, &o);
        if (r == 0) {
            json_t *det = json_pack("{s:s}", "by", "repair (an unfinished nv define, rolled forward)");
            r = cit__store_event(s, "nv.define", o.path, o.id, "ok", det);
            json_decref(det);
        }
        cit__object_clear(&o);
        return r;
    }
    const cit_object *lo = find_obj(objs, nobj, id);
    if (!lo)
        return cit_error_set(CIT_E_REPAIR_FAILED, "object #%lld changed since the scan", (long long)id);
    cit_object o = {0};
    int r = cit__object_get(s, id, &o);
    if (r < 0)
        return r;
    json_t *det = NULL;
    if (strcmp(kind, "persist") == 0) {
        uint32_t h = op_handle(op);
        if (o.persistent_handle != h) {
            det = json_pack("{s:s,s:I,s:I}", "fix", "re-persisted at a new handle", "from", (json_int_t)o.persistent_handle,
                            "to", (json_int_t)h);
            o.persistent_handle = h;
            r = cit__object_update(s, &o);
        } else
            det = json_pack("{s:s,s:I}", "fix", "re-persisted from its blob", "handle", (json_int_t)h);
        if (r == 0)
            r = cit__store_event(s, "repair.persist", o.path, o.id, "ok", det);
    } else if (strcmp(kind, "retire") == 0) {
        json_t *m = json_loads(o.metadata ? o.metadata : "{}", 0, NULL);
        if (!json_is_object(m)) {
            json_decref(m);
            m = json_object();
        }
        json_t *ret = json_pack("{s:s,s:I,s:s}", "reason", json_string_value(json_object_get(op, "_reason")), "at",
                                (json_int_t)time(NULL), "by", "repair");
        if (o.persistent_handle && json_is_true(json_object_get(op, "_clear_handle"))) {
            json_object_set_new(ret, "previous_handle", json_sprintf("0x%08x", o.persistent_handle));
            o.persistent_handle = 0;
        }
        json_object_set_new(m, "retired", ret);
        free(o.metadata);
        o.metadata = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(m);
        snprintf(o.status, sizeof o.status, "retired");
        r = cit__object_update(s, &o);
        det = json_pack("{s:s}", "reason", json_string_value(json_object_get(op, "_reason")));
        if (r == 0)
            r = cit__store_event(s, "repair.retire", o.path, o.id, "ok", det);
    }
    json_decref(det);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_repair_apply(json_t **out, cit_ctx *ctx, bool include_foreign, bool accept_cleared) {
    cit_error_clear();
    json_t *scanj = NULL;
    int r = cit__repair_scan(ctx, include_foreign, accept_cleared, &scanj);
    if (r < 0)
        return r;
    if (ctx->plan) { /* --plan: the same list, nothing changed */
        *out = plan_result(scanj, true);
        json_decref(scanj);
        return 0;
    }
    json_t *findings = json_object_get(scanj, "findings");
    size_t i;
    json_t *f;
    json_array_foreach(findings, i, f) if (strcmp(json_string_value(json_object_get(f, "kind")), "tpm-replaced") == 0) {
        cit_error_set(CIT_E_TPM_REPLACED, "repair refuses: this is not the TPM the workspace was made on");
        cit_error_cause("%s", json_string_value(json_object_get(f, "detail")));
        json_decref(scanj);
        return CIT_E_TPM_REPLACED;
    }
    json_t *ops = json_object_get(scanj, "operations");
    json_t *done = json_array();
    cit_store *s = ctx->store;
    cit_object *objs = NULL;
    size_t nobj = 0;
    json_t *srk = NULL;
    uint32_t moved[64]; /* persisted at a new handle: undone if the store cannot record it */
    size_t nmoved = 0;
    bool tpm_changed = false;
    size_t tpm_done = 0;
    if ((r = cit__object_list(s, NULL, &objs, &nobj)) < 0)
        goto done;
    /* 1. the TPM: removals, a new storage key, re-persisting (each checks first) */
    json_t *op;
    const char *failed_op = NULL;
    json_array_foreach(ops, i, op) {
        const char *kind = json_string_value(json_object_get(op, "op"));
        if (phase_of(kind) == 3)
            continue;
        if (strcmp(kind, "evict") == 0)
            r = do_evict(ctx, op);
        else if (strcmp(kind, "undefine") == 0)
            r = cit__nv_undefine(ctx, op_handle(op));
        else if (strcmp(kind, "provision-srk") == 0) {
            TPM2B_NAME name = {0};
            uint8_t *ser = NULL;
            size_t sl = 0;
            cit__key_cache_drop(ctx);
            r = cit__tpm_srk_provision(ctx->tpm, &name);
            if (r == 0)
                r = cit__tpm_srk_serialize(ctx->tpm, &ser, &sl);
            if (r == 0) {
                char *nh = hex(name.name, name.size), *th = hex(ser, sl);
                srk = json_pack("{s:s,s:s}", "name", nh ? nh : "", "tr", th ? th : "");
                free(nh);
                free(th);
                _cleanup_free_ char *ek = NULL, *rec = NULL;
                cit__store_meta_get(s, "ek_name", &rec);
                if ((!rec || !*rec) && cit__ek_fingerprint(ctx, &ek) == 0)
                    json_object_set_new(srk, "ek", json_string(ek));
                cit_error_clear();
            }
            free(ser);
        } else if (strcmp(kind, "persist") == 0) {
            const cit_object *o = find_obj(objs, nobj, json_integer_value(json_object_get(op, "_id")));
            uint32_t h = op_handle(op);
            if (!o)
                r = cit_error_set(CIT_E_REPAIR_FAILED, "an object changed since the scan");
            else if ((r = do_persist(ctx, o, h)) == 0 && h != o->persistent_handle && nmoved < ELEMENTSOF(moved))
                moved[nmoved++] = h;
        }
        if (r < 0) {
            failed_op = json_string_value(json_object_get(op, "text"));
            break;
        }
        tpm_changed = true;
        tpm_done++;
        json_array_append(done, json_object_get(op, "text"));
    }
    if (r == 0 && tpm_changed)
        r = cit__ctx_tpm_sync(ctx); /* durable before the store records it */
    if (r == 0)
        cit__fault_point("repair.tpm-done");
    /* 2. the store, in one transaction */
    if (r == 0 && (r = cit__store_begin(s)) == 0) {
        json_array_foreach(ops, i, op) {
            if (strcmp(json_string_value(json_object_get(op, "op")), "evict") == 0 ||
                strcmp(json_string_value(json_object_get(op, "op")), "undefine") == 0)
                continue;
            if ((r = store_op(ctx, s, op, objs, nobj, srk)) < 0) {
                failed_op = json_string_value(json_object_get(op, "text"));
                break;
            }
            if (phase_of(json_string_value(json_object_get(op, "op"))) == 3)
                json_array_append(done, json_object_get(op, "text"));
        }
        if (r == 0 && json_array_size(ops)) {
            json_t *d = json_pack("{s:O}", "operations", done);
            r = cit__store_event(s, "repair.apply", NULL, 0, "ok", d);
            json_decref(d);
        }
        if (r == 0)
            r = cit__store_commit(s);
        if (r < 0) {
            cit__store_rollback(s);
            cit_error saved = *cit_error_last();
            for (size_t k = 0; k < nmoved; k++) /* the store does not name them: take them back */
                cit__evict_handle(ctx, moved[k]);
            cit__ctx_tpm_sync(ctx);
            cit_error_restore(&saved);
        }
    }
    if (r < 0) {
        cit_error e = *cit_error_last();
        char code[16];
        cit_code_format(code, sizeof code, e.code);
        r = cit_error_set(CIT_E_REPAIR_FAILED, "repair stopped: %s", e.message);
        if (e.code != CIT_E_REPAIR_FAILED)
            cit_error_cause("%s: %s", code, e.message);
        for (int k = 0; k < e.n_causes; k++)
            cit_error_cause("%s", e.causes[k]);
        if (failed_op)
            cit_error_cause("the operation that failed: %s", failed_op);
        cit_error_cause("%zu TPM operation(s) were done before it stopped; the store was not changed",
                        tpm_done);
        goto done;
    }
    char *text = NULL;
    size_t tl = 0;
    FILE *fp = open_memstream(&text, &tl);
    if (fp) {
        if (json_array_size(done) == 0)
            fprintf(fp, "Nothing to repair.\n");
        else {
            fprintf(fp, "Performed %zu operation(s):\n", json_array_size(done));
            json_array_foreach(done, i, op) fprintf(fp, "  %zu. %s\n", i + 1, json_string_value(op));
        }
        size_t skipped = 0;
        json_array_foreach(findings, i, f) if (json_object_get(f, "needs")) skipped++;
        if (skipped)
            fprintf(fp, "%zu finding(s) left alone (they need --include-foreign or --accept-cleared).\n", skipped);
        fclose(fp);
    }
    *out = json_pack("{s:O,s:I}", "performed", done, "findings", (json_int_t)json_array_size(findings));
    json_object_set_new(*out, "_text", json_string(text ? text : ""));
    free(text);
done:
    json_decref(done);
    json_decref(srk);
    json_decref(scanj);
    cit__object_list_free(objs, nobj);
    return r;
}
