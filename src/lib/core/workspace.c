/* SPDX-License-Identifier: Apache-2.0 */
/* Workspace commands: init, status, doctor, capabilities, info, export/import, debug, log. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <libtpms/tpm_library.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/ek.h"
#include "core/keys.h"
#include "core/repair.h"
#include "core/ca_backup.h"
#include "crypto/crypto.h"
#include "ctx.h"
#include "profiles.h"

#define IMPORT_MAX (64u * 1024 * 1024)

int cit__workspace_init(cit_ctx *ctx, cit_store *s, const char *profile, json_t **out) {
    const char *prof = profile ? profile : "default";
    const cit_profile_def *pd = cit__profile_find(prof);
    cit_tpm *t = NULL;
    int r;
    if (!pd)
        return cit__profile_unknown(prof);
    cit_tpm_options o = {.backend = ctx->backend, .tcti = ctx->tcti, .state_path = ctx->state_path, .create = true};
    r = cit__tpm_open(&t, &o);
    if (r < 0)
        return r;
    ctx->tpm = t;
    bool manufactured = t->manufactured;
    TPM2B_NAME name = {0};
    r = cit__tpm_srk_provision(t, &name);
    if (r < 0)
        return r;
    /* The SRK's ESYS handle, recorded so later commands need no TPM2_ReadPublic for it. */
    uint8_t *ser = NULL;
    size_t ser_len = 0;
    r = cit__tpm_srk_serialize(t, &ser, &ser_len);
    if (r < 0)
        return r;
    _cleanup_free_ char *ser_hex = cit_hex_encode(ser, ser_len);
    free(ser);
    uint8_t id[16];
    RAND_bytes(id, sizeof id);
    _cleanup_free_ char *id_hex = cit_hex_encode(id, sizeof id);
    /* The embedded TPM's factory: EK certificates from a workspace-local manufacturer CA, so
     * that ek verify and attestation work end to end without hardware. */
    _cleanup_free_ char *ek_ca_pem = NULL;
    json_t *ek_summary = NULL;
    if (ctx->backend == CIT_BACKEND_VTPM) {
        r = cit__ek_factory(ctx, id_hex ? id_hex : "", &ek_ca_pem, &ek_summary);
        if (r < 0)
            return r;
    }
    /* The endorsement key's name: a clear keeps it, another TPM does not (repair tells the two
     * apart by it when the storage key is gone). Not for mock, which ends with the process. */
    _cleanup_free_ char *ek_name = NULL;
    if (ctx->backend != CIT_BACKEND_MOCK && cit__ek_fingerprint(ctx, &ek_name) < 0) {
        json_decref(ek_summary);
        return cit_error_last()->code;
    }
    /* The TPM's state is durable before the store records the workspace. */
    r = cit__ctx_tpm_sync(ctx);
    if (r < 0) {
        json_decref(ek_summary);
        return r;
    }
    _cleanup_free_ char *name_hex = cit_hex_encode(name.name, name.size);
    char now[32], handle[16];
    cit_time_rfc3339(now, sizeof now, time(NULL));
    snprintf(handle, sizeof handle, "0x%08x", CIT_SRK_HANDLE);
    const char *backend = cit__backend_name(ctx->backend);
    r = cit__store_begin(s);
    if (r < 0)
        return r;
    if ((r = cit__store_meta_set(s, "workspace_id", id_hex)) == 0 &&
        (r = cit__store_meta_set(s, "backend", backend)) == 0 &&
        (r = cit__store_meta_set(s, "tcti", ctx->tcti && ctx->backend != CIT_BACKEND_VTPM ? ctx->tcti : "")) == 0 &&
        (r = cit__store_meta_set(s, "profile", prof)) == 0 &&
        (r = cit__store_meta_set(s, "default_algorithm", pd->default_algorithm)) == 0 &&
        (r = cit__store_meta_set(s, "srk_handle", handle)) == 0 &&
        (r = cit__store_meta_set(s, "srk_name", name_hex)) == 0 &&
        (r = cit__store_meta_set(s, "srk_tr", ser_hex ? ser_hex : "")) == 0 &&
        (r = cit__store_meta_set(s, "ek_ca_cert", ek_ca_pem ? ek_ca_pem : "")) == 0 &&
        (r = cit__store_meta_set(s, "ek_name", ek_name ? ek_name : "")) == 0 &&
        (r = cit__store_meta_set(s, "initialized_at", now)) == 0) {
        json_t *d = json_pack("{s:s,s:s,s:b}", "backend", backend, "profile", prof, "manufactured", manufactured);
        r = cit__store_event(s, "workspace.init", NULL, 0, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        json_decref(ek_summary);
        return r;
    }
    if (out) {
        json_t *j = json_object();
        json_object_set_new(j, "workspace", json_string(ctx->store_path));
        json_object_set_new(j, "workspace_id", json_string(id_hex));
        json_object_set_new(j, "backend", json_string(backend));
        if (ctx->backend == CIT_BACKEND_VTPM) {
            json_object_set_new(j, "tpm_state", json_string(ctx->state_path));
            json_object_set_new(j, "tpm_manufactured", json_boolean(manufactured));
        }
        json_object_set_new(j, "profile", json_string(prof));
        json_object_set_new(j, "default_algorithm", json_string(pd->default_algorithm));
        json_object_set_new(j, "storage_key_handle", json_string(handle));
        json_object_set_new(j, "storage_key_name", json_string(name_hex));
        if (ek_summary)
            json_object_set(j, "ek_certificates", ek_summary);
        *out = j;
    }
    json_decref(ek_summary);
    return 0;
}

_public_ int cit_workspace_init(json_t **out, cit_ctx *ctx, const char *profile) {
    cit_error_clear();
    if (profile && !cit__profile_find(profile))
        return cit__profile_unknown(profile);
    if (ctx->backend == CIT_BACKEND_MOCK) {
        cit_store *s;
        int r = cit__ctx_store(ctx, &s); /* the mock workspace initialises itself */
        if (r < 0)
            return r;
        *out = json_pack("{s:s,s:s,s:s}", "workspace", "(in memory)", "backend", "mock", "note",
                         "the mock backend keeps the TPM and the store in memory; they end with this process");
        return 0;
    }
    /* Refuse an existing workspace before touching anything. */
    if (access(ctx->store_path, F_OK) == 0) {
        cit_store *s = NULL;
        int r = cit__store_open(&s, ctx->store_path, false);
        if (r < 0)
            return r;
        _cleanup_free_ char *init = NULL;
        r = cit__store_meta_get(s, "initialized_at", &init);
        cit__store_close(s);
        if (r < 0)
            return r;
        if (init) {
            cit_error_set(CIT_E_ALREADY_INITIALIZED, "a workspace already exists at %s", ctx->store_path);
            cit_error_cause("it was initialised at %s", init);
            cit_error_context("store", "%s", ctx->store_path);
            return CIT_E_ALREADY_INITIALIZED;
        }
    }
    int r = cit__ctx_resolve_backend(ctx, NULL);
    if (r < 0)
        return r;
    if (ctx->plan) {
        static const char *const vtpm_ops[] = {"manufacture the embedded TPM (libtpms) if no state exists",
                                               "TPM2_Startup", "TPM2_CreatePrimary (storage primary key, ECC P-256)",
                                               "TPM2_EvictControl (persist it at 0x81000002)", "TPM2_FlushContext",
                                               "TPM2_CreatePrimary (endorsement keys rsa-2048, ecc-p256, ecc-p384; "
                                               "TCG EK templates L-1, L-2, H-3)",
                                               "TPM2_NV_DefineSpace + TPM2_NV_Write (EK certificates at 0x01c00002, "
                                               "0x01c0000a, 0x01c00016, issued by a workspace-local manufacturer CA)",
                                               "TPM2_Shutdown(STATE)", NULL};
        static const char *const ops[] = {"TPM2_CreatePrimary (storage primary key, ECC P-256)",
                                          "TPM2_EvictControl (persist it at 0x81000002)", "TPM2_FlushContext", NULL};
        *out = cit__plan("initialise the workspace", ctx->backend == CIT_BACKEND_VTPM ? vtpm_ops : ops);
        json_object_set_new(*out, "workspace", json_string(ctx->store_path));
        json_object_set_new(*out, "backend", json_string(cit__backend_name(ctx->backend)));
        return 0;
    }
    bool state_existed = access(ctx->state_path, F_OK) == 0;
    bool store_existed = access(ctx->store_path, F_OK) == 0;
    cit_store *s = NULL;
    r = cit__store_open(&s, ctx->store_path, true);
    if (r < 0)
        return r;
    ctx->store = s;
    r = cit__workspace_init(ctx, s, profile, out);
    if (r < 0) {
        /* Leave nothing half-made behind: a new store and a new TPM state are removed. */
        if (ctx->tpm) {
            cit__tpm_free(ctx->tpm);
            ctx->tpm = NULL;
        }
        cit__store_close(s);
        ctx->store = NULL;
        if (!store_existed) {
            char p[4096];
            unlink(ctx->store_path);
            snprintf(p, sizeof p, "%s-wal", ctx->store_path);
            unlink(p);
            snprintf(p, sizeof p, "%s-shm", ctx->store_path);
            unlink(p);
        }
        if (!state_existed && ctx->backend == CIT_BACKEND_VTPM)
            unlink(ctx->state_path);
    }
    return r;
}

/* ---- TPM facts ---- */

static void prop_string(cit_tpm *t, TPM2_PT first, int count, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < count; i++) {
        uint32_t v;
        if (cit__tpm_prop(t, first + (TPM2_PT)i, &v) < 0)
            break;
        for (int b = 3; b >= 0 && off + 1 < len; b--) {
            char c = (char)(v >> (8 * b));
            if (c >= 0x20 && c < 0x7f)
                buf[off++] = c;
        }
    }
    buf[off] = 0;
    while (off && buf[off - 1] == ' ')
        buf[--off] = 0;
    cit_error_clear();
}

static json_t *tpm_identity(cit_tpm *t) {
    json_t *j = json_object();
    char buf[64];
    prop_string(t, TPM2_PT_MANUFACTURER, 1, buf, sizeof buf);
    json_object_set_new(j, "manufacturer", json_string(buf));
    prop_string(t, TPM2_PT_VENDOR_STRING_1, 4, buf, sizeof buf);
    json_object_set_new(j, "vendor", json_string(buf));
    uint32_t f1 = 0, f2 = 0, rev = 0, year = 0, day = 0;
    cit__tpm_prop(t, TPM2_PT_FIRMWARE_VERSION_1, &f1);
    cit__tpm_prop(t, TPM2_PT_FIRMWARE_VERSION_2, &f2);
    cit__tpm_prop(t, TPM2_PT_REVISION, &rev);
    cit__tpm_prop(t, TPM2_PT_YEAR, &year);
    cit__tpm_prop(t, TPM2_PT_DAY_OF_YEAR, &day);
    cit_error_clear();
    snprintf(buf, sizeof buf, "%u.%u.%u.%u", f1 >> 16, f1 & 0xffff, f2 >> 16, f2 & 0xffff);
    json_object_set_new(j, "firmware", json_string(buf));
    snprintf(buf, sizeof buf, "0x%08x 0x%08x", f1, f2);
    json_object_set_new(j, "firmware_raw", json_string(buf));
    snprintf(buf, sizeof buf, "2.0 revision %u.%02u (%u, day %u)", rev / 100, rev % 100, year, day);
    json_object_set_new(j, "specification", json_string(buf));
    return j;
}

typedef struct da_state {
    uint32_t counter, max_tries, interval, recovery;
    bool in_lockout;
    bool ok;
} da_state;

static da_state read_da(cit_tpm *t) {
    da_state d = {0};
    uint32_t perm = 0;
    d.ok = cit__tpm_prop(t, TPM2_PT_LOCKOUT_COUNTER, &d.counter) == 0 &&
           cit__tpm_prop(t, TPM2_PT_MAX_AUTH_FAIL, &d.max_tries) == 0 &&
           cit__tpm_prop(t, TPM2_PT_LOCKOUT_INTERVAL, &d.interval) == 0 &&
           cit__tpm_prop(t, TPM2_PT_LOCKOUT_RECOVERY, &d.recovery) == 0 &&
           cit__tpm_prop(t, TPM2_PT_PERMANENT, &perm) == 0;
    d.in_lockout = (perm & TPMA_PERMANENT_INLOCKOUT) != 0;
    cit_error_clear();
    return d;
}

static json_t *count_objects(cit_store *s) {
    json_t *j = json_object();
    sqlite3_stmt *st;
    if (cit__store_prepare(s, &st, "SELECT kind, status, count(*) FROM objects GROUP BY kind, status ORDER BY kind") < 0)
        return j;
    json_int_t total = 0, retired = 0;
    json_t *by_kind = json_object();
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(st, 0);
        json_int_t n = sqlite3_column_int64(st, 2);
        json_t *cur = json_object_get(by_kind, kind);
        json_object_set_new(by_kind, kind, json_integer((cur ? json_integer_value(cur) : 0) + n));
        total += n;
        if (strcmp((const char *)sqlite3_column_text(st, 1), "retired") == 0)
            retired += n;
    }
    sqlite3_finalize(st);
    json_object_set_new(j, "total", json_integer(total));
    json_object_set_new(j, "retired", json_integer(retired));
    json_object_set_new(j, "by_kind", by_kind);
    return j;
}

static bool file_private(const char *path, unsigned *mode) {
    struct stat st;
    if (stat(path, &st) < 0)
        return true;
    *mode = st.st_mode & 0777;
    return (st.st_mode & 077) == 0;
}

/* ---- doctor ---- */

typedef struct doctor {
    json_t *checks;
    int pass, warn, fail;
    bool consistent;
} doctor;

static void check(doctor *d, const char *name, const char *status, const char *detail, const char *next) {
    json_t *c = json_pack("{s:s,s:s,s:s}", "check", name, "status", status, "detail", detail);
    if (next && *next)
        json_object_set_new(c, "next_step", json_string(next));
    json_array_append_new(d->checks, c);
    if (strcmp(status, "pass") == 0)
        d->pass++;
    else if (strcmp(status, "warn") == 0)
        d->warn++;
    else
        d->fail++;
}

static void check_errf(doctor *d, const char *name, const char *next) {
    const cit_error *e = cit_error_last();
    char code[16], buf[640];
    cit_code_format(code, sizeof code, e->code);
    snprintf(buf, sizeof buf, "%s: %s%s%s", code, e->message, e->n_causes ? " (" : "", e->n_causes ? e->causes[0] : "");
    if (e->n_causes)
        strncat(buf, ")", sizeof buf - strlen(buf) - 1);
    check(d, name, "fail", buf, next);
    cit_error_clear();
}

/* Store versus TPM: the SRK, every object loads, persistent handles exist and match, no
 * orphaned handles in citadel's range. */
static void doctor_consistency(doctor *d, cit_ctx *ctx, cit_store *s, cit_tpm *t) {
    ESYS_TR srk;
    if (cit__ctx_srk(ctx, true, &srk) < 0) {
        check_errf(d, "storage primary key", "restore the TPM state, or re-initialise the workspace");
        d->consistent = false;
        return;
    }
    check(d, "storage primary key", "pass", "present at 0x81000002 and matches the workspace", NULL);
    cit_object *list = NULL;
    size_t n = 0;
    if (cit__object_list(s, NULL, &list, &n) < 0) {
        check_errf(d, "objects load", NULL);
        d->consistent = false;
        return;
    }
    size_t loaded = 0, bad = 0, checked = 0;
    char first_bad[300] = "";
    uint32_t *handles = NULL;
    size_t nh = 0;
    cit__tpm_persistent_handles(t, CIT_PERSISTENT_FIRST, CIT_PERSISTENT_LAST, &handles, &nh);
    cit_error_clear();
    for (size_t i = 0; i < n && checked < 1000; i++) {
        if (strcmp(list[i].status, "retired") == 0)
            continue; /* refuses to be used anyway; repair retires what the TPM lost */
        uint32_t nvh = cit__nv_handle_of(&list[i]);
        if (nvh) { /* an NV object: its index must still be defined in the TPM */
            checked++;
            ESYS_TR h = ESYS_TR_NONE;
            if (Esys_TR_FromTPMPublic(t->esys, nvh, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &h) == TSS2_RC_SUCCESS) {
                loaded++;
                Esys_TR_Close(t->esys, &h);
            } else {
                bad++;
                if (!first_bad[0])
                    snprintf(first_bad, sizeof first_bad, "%s: NV index 0x%08x is not defined", list[i].path, nvh);
            }
            continue;
        }
        /* keys and sealed secrets: their wrapped blobs must load */
        if (strcmp(list[i].kind, "key") != 0 && strcmp(list[i].kind, "secret") != 0)
            continue;
        checked++;
        cit_object tmp = list[i];
        tmp.persistent_handle = 0;
        ESYS_TR h = ESYS_TR_NONE;
        bool pers = false;
        int r = cit__key_load(ctx, &tmp, list[i].version, &h, &pers);
        if (r == 0) {
            loaded++;
            cit__key_unload(ctx, &h, pers);
        } else {
            bad++;
            if (!first_bad[0])
                snprintf(first_bad, sizeof first_bad, "%s: %s", list[i].path, cit_error_last()->message);
            cit_error_clear();
        }
        if (list[i].persistent_handle) {
            bool found = false;
            for (size_t k = 0; k < nh; k++)
                if (handles[k] == list[i].persistent_handle)
                    found = true;
            ESYS_TR ph = ESYS_TR_NONE;
            cit_object_version v = {0};
            bool match = false;
            if (found &&
                Esys_TR_FromTPMPublic(t->esys, list[i].persistent_handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                      &ph) == TSS2_RC_SUCCESS &&
                cit__version_get(s, list[i].id, list[i].version, &v) == 0)
                match = cit__tpm_name_is(t, ph, v.name, v.name_len);
            if (ph != ESYS_TR_NONE)
                Esys_TR_Close(t->esys, &ph);
            cit__version_clear(&v);
            cit_error_clear();
            if (!match) {
                bad++;
                if (!first_bad[0])
                    snprintf(first_bad, sizeof first_bad, "%s: persistent handle 0x%08x %s", list[i].path,
                             list[i].persistent_handle, found ? "holds another key" : "is missing");
            }
        }
    }
    cit__key_cache_drop(ctx); /* nothing checked stays loaded */
    char buf[512];
    if (bad) {
        snprintf(buf, sizeof buf, "%zu of %zu TPM objects cannot be used: %s", bad, checked, first_bad);
        check(d, "objects load", "fail", buf, "the TPM no longer holds what the store describes; restore the TPM state");
        d->consistent = false;
    } else {
        snprintf(buf, sizeof buf, "%zu of %zu TPM objects (keys, secrets, NV) are usable", loaded, checked);
        check(d, "objects load", "pass", buf, NULL);
    }
    /* orphaned persistent handles in citadel's range */
    size_t orphans = 0;
    uint32_t first_orphan = 0;
    for (size_t k = 0; k < nh; k++) {
        bool known = false;
        for (size_t i = 0; i < n; i++)
            if (list[i].persistent_handle == handles[k])
                known = true;
        if (!known && !orphans++)
            first_orphan = handles[k];
    }
    if (orphans) {
        snprintf(buf, sizeof buf, "%zu persistent handle(s) in citadel's range belong to no object (first: 0x%08x)",
                 orphans, first_orphan);
        check(d, "orphaned handles", "warn", buf, "evict them with `tpm2_evictcontrol -C o -c HANDLE` if unused");
    } else
        check(d, "orphaned handles", "pass", "none", NULL);
    free(handles);
    cit__object_list_free(list, n);
}

static void doctor_store(doctor *d, cit_store *s) {
    sqlite3_stmt *st;
    char buf[256];
    bool ok = false;
    if (cit__store_prepare(s, &st, "PRAGMA quick_check") == 0) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            const char *res = (const char *)sqlite3_column_text(st, 0);
            ok = res && strcmp(res, "ok") == 0;
            snprintf(buf, sizeof buf, "SQLite quick_check: %s", res ? res : "?");
        }
        sqlite3_finalize(st);
    }
    if (ok && cit__store_prepare(s, &st, "PRAGMA foreign_key_check") == 0) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            ok = false;
            snprintf(buf, sizeof buf, "dangling references between objects");
        }
        sqlite3_finalize(st);
    }
    cit_error_clear();
    if (ok) {
        snprintf(buf, sizeof buf, "SQLite integrity ok, schema version %d", s->schema_version);
        check(d, "store integrity", "pass", buf, NULL);
    } else {
        check(d, "store integrity", "fail", buf, "restore the store from a backup (`citadel tpm workspace export`)");
        d->consistent = false;
    }
}

static void doctor_permissions(doctor *d, cit_ctx *ctx) {
    unsigned m1 = 0600, m2 = 0600;
    bool a = file_private(ctx->store_path, &m1);
    bool b = ctx->backend != CIT_BACKEND_VTPM || file_private(ctx->state_path, &m2);
    char buf[600];
    if (a && b)
        check(d, "file permissions", "pass",
              ctx->backend == CIT_BACKEND_VTPM ? "store and TPM state are readable by the owner only"
                                               : "the store is readable by the owner only",
              NULL);
    else {
        snprintf(buf, sizeof buf, "%s is mode %04o", !a ? ctx->store_path : ctx->state_path, !a ? m1 : m2);
        char next[700];
        snprintf(next, sizeof next, "run `chmod 600 %s`", !a ? ctx->store_path : ctx->state_path);
        check(d, "file permissions", "warn", buf, next);
    }
}

static void doctor_tpm(doctor *d, cit_tpm *t) {
    TSS2_RC rc = Esys_SelfTest(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_NO);
    TPM2B_MAX_BUFFER *data = NULL;
    TPM2_RC result = 0;
    if (rc == TSS2_RC_SUCCESS)
        rc = Esys_GetTestResult(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &data, &result);
    Esys_Free(data);
    char buf[256];
    if (rc != TSS2_RC_SUCCESS || result != TPM2_RC_SUCCESS) {
        snprintf(buf, sizeof buf, "self-test failed (rc 0x%08x, result 0x%08x)", rc, result);
        check(d, "self-test", "fail", buf, "the TPM may be in failure mode; reboot, or restore the vTPM state");
    } else
        check(d, "self-test", "pass", "TPM2_SelfTest and TPM2_GetTestResult succeeded", NULL);
    da_state da = read_da(t);
    if (!da.ok)
        check(d, "dictionary-attack state", "warn", "cannot read the lockout properties", NULL);
    else if (da.in_lockout) {
        snprintf(buf, sizeof buf, "in lockout: %u of %u failures; recovers one failure every %u s", da.counter,
                 da.max_tries, da.interval);
        check(d, "dictionary-attack state", "fail", buf, "wait, or clear lockout: `tpm2_dictionarylockout --clear-lockout`");
    } else if (da.counter > 0) {
        snprintf(buf, sizeof buf, "%u of %u authorization failures counted (lockout at %u)", da.counter, da.max_tries,
                 da.max_tries);
        check(d, "dictionary-attack state", "warn", buf, "run `citadel tpm explain dictionary-attack`");
    } else {
        snprintf(buf, sizeof buf, "no failures counted (lockout after %u)", da.max_tries);
        check(d, "dictionary-attack state", "pass", buf, NULL);
    }
    uint32_t pavail = 0, tavail = 0, tmin = 0, nvdef = 0, nvmax = 0;
    bool ok = cit__tpm_prop(t, TPM2_PT_HR_PERSISTENT_AVAIL, &pavail) == 0;
    cit__tpm_prop(t, TPM2_PT_HR_TRANSIENT_AVAIL, &tavail);
    cit__tpm_prop(t, TPM2_PT_HR_TRANSIENT_MIN, &tmin);
    cit__tpm_prop(t, TPM2_PT_HR_NV_INDEX, &nvdef);
    cit__tpm_prop(t, TPM2_PT_NV_INDEX_MAX, &nvmax);
    cit_error_clear();
    snprintf(buf, sizeof buf, "about %u more persistent objects fit; %u transient slots free (minimum %u); %u NV indices defined",
             pavail, tavail, tmin, nvdef);
    if (!ok)
        check(d, "free handles and NV", "warn", "cannot read handle properties", NULL);
    else if (pavail < 2 || tavail < 2)
        check(d, "free handles and NV", "warn", buf,
              tavail < 2 ? "another program holds transient objects; use a resource manager"
                         : "delete persistent objects you no longer need");
    else
        check(d, "free handles and NV", "pass", buf, NULL);
}

_public_ int cit_workspace_doctor(json_t **out, cit_ctx *ctx, bool *healthy) {
    cit_error_clear();
    cit_store *s;
    static const char *const ops[] = {"TPM2_SelfTest", "TPM2_GetTestResult", "TPM2_GetCapability (properties, handles)",
                                          "TPM2_ReadPublic (storage key, persistent objects)",
                                          "TPM2_Load and TPM2_FlushContext (each key)", NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "check the workspace (reads only)", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    doctor d = {.checks = json_array(), .consistent = true};
    check(&d, "store", "pass", ctx->store_path, NULL);
    doctor_store(&d, s);
    doctor_permissions(&d, ctx);
    cit_tpm *t = NULL;
    if (cit__ctx_tpm(ctx, &t) < 0) {
        check_errf(&d, "backend reachable", "run `citadel tpm status` for the backend in use");
        d.consistent = false;
    } else {
        char buf[128];
        snprintf(buf, sizeof buf, "%s backend answers", cit__backend_name(ctx->backend));
        check(&d, "backend reachable", "pass", buf, NULL);
        doctor_tpm(&d, t);
        doctor_consistency(&d, ctx, s, t);
    }
    json_t *j = json_object();
    json_object_set_new(j, "workspace", json_string(ctx->store_path));
    json_object_set_new(j, "backend", json_string(cit__backend_name(ctx->backend)));
    json_object_set_new(j, "checks", d.checks);
    json_object_set_new(j, "passed", json_integer(d.pass));
    json_object_set_new(j, "warnings", json_integer(d.warn));
    json_object_set_new(j, "failed", json_integer(d.fail));
    json_object_set_new(j, "consistent", json_boolean(d.consistent));
    json_object_set_new(j, "healthy", json_boolean(d.fail == 0));
    if (healthy)
        *healthy = d.fail == 0;
    *out = j;
    return 0;
}

_public_ int cit_workspace_status(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    static const char *const ops[] = {"TPM2_GetCapability (properties)", "TPM2_ReadPublic (storage key)", NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "show workspace status (reads only)", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    json_t *j = json_object();
    json_object_set_new(j, "backend", json_string(cit__backend_name(ctx->backend)));
    cit_tpm *t = NULL;
    int score = 100;
    json_t *ded = json_array();
    if (cit__ctx_tpm(ctx, &t) < 0) {
        json_object_set_new(j, "tpm", json_pack("{s:s}", "error", cit_error_last()->message));
        json_array_append_new(ded, json_pack("{s:i,s:s}", "points", 60, "reason", "the TPM cannot be reached"));
        score -= 60;
        cit_error_clear();
    } else {
        json_object_set_new(j, "tpm", tpm_identity(t));
        da_state da = read_da(t);
        json_object_set_new(j, "dictionary_attack",
                            json_pack("{s:i,s:i,s:b,s:i}", "failures", da.counter, "max_tries", da.max_tries,
                                      "in_lockout", da.in_lockout, "recovery_seconds", da.interval));
        if (da.in_lockout) {
            score -= 40;
            json_array_append_new(ded, json_pack("{s:i,s:s}", "points", 40, "reason", "the TPM is in dictionary-attack lockout"));
        } else if (da.counter) {
            score -= 10;
            json_array_append_new(ded, json_pack("{s:i,s:s}", "points", 10, "reason", "authorization failures are counted"));
        }
        ESYS_TR srk;
        if (cit__ctx_srk(ctx, true, &srk) < 0) {
            score -= 40;
            json_array_append_new(ded, json_pack("{s:i,s:s}", "points", 40, "reason", cit_error_last()->message));
            cit_error_clear();
        }
        if (ctx->backend == CIT_BACKEND_VTPM || ctx->backend == CIT_BACKEND_MOCK || ctx->backend == CIT_BACKEND_SWTPM) {
            score -= 10;
            json_array_append_new(ded, json_pack("{s:i,s:s}", "points", 10, "reason",
                                                 "software TPM: keys are not protected by hardware"));
        }
    }
    unsigned m = 0;
    if (ctx->backend != CIT_BACKEND_MOCK &&
        (!file_private(ctx->store_path, &m) || (ctx->backend == CIT_BACKEND_VTPM && !file_private(ctx->state_path, &m)))) {
        score -= 20;
        json_array_append_new(ded, json_pack("{s:i,s:s}", "points", 20, "reason", "store or TPM state readable by others"));
    }
    _cleanup_free_ char *created = NULL, *profile = NULL, *wid = NULL;
    cit__store_meta_get(s, "initialized_at", &created);
    cit__store_meta_get(s, "profile", &profile);
    cit__store_meta_get(s, "workspace_id", &wid);
    json_t *ws = json_pack("{s:s,s:s,s:s,s:s,s:i}", "path", ctx->store_path, "id", wid ? wid : "", "created",
                           created ? created : "", "profile", profile ? profile : "default", "store_schema_version",
                           s->schema_version);
    json_object_set_new(j, "workspace", ws);
    json_object_set_new(j, "objects", count_objects(s));
    if (score < 0)
        score = 0;
    json_object_set_new(j, "health_score", json_integer(score));
    json_object_set_new(j, "deductions", ded);
    *out = j;
    return 0;
}

static const char *alg_name(TPM2_ALG_ID a) {
    switch (a) {
    case TPM2_ALG_RSA: return "rsa";
    case TPM2_ALG_TDES: return "tdes";
    case TPM2_ALG_SHA1: return "sha1";
    case TPM2_ALG_HMAC: return "hmac";
    case TPM2_ALG_AES: return "aes";
    case TPM2_ALG_MGF1: return "mgf1";
    case TPM2_ALG_KEYEDHASH: return "keyedhash";
    case TPM2_ALG_XOR: return "xor";
    case TPM2_ALG_SHA256: return "sha256";
    case TPM2_ALG_SHA384: return "sha384";
    case TPM2_ALG_SHA512: return "sha512";
    case TPM2_ALG_NULL: return "null";
    case TPM2_ALG_SM3_256: return "sm3_256";
    case TPM2_ALG_SM4: return "sm4";
    case TPM2_ALG_RSASSA: return "rsassa";
    case TPM2_ALG_RSAES: return "rsaes";
    case TPM2_ALG_RSAPSS: return "rsapss";
    case TPM2_ALG_OAEP: return "oaep";
    case TPM2_ALG_ECDSA: return "ecdsa";
    case TPM2_ALG_ECDH: return "ecdh";
    case TPM2_ALG_ECDAA: return "ecdaa";
    case TPM2_ALG_SM2: return "sm2";
    case TPM2_ALG_ECSCHNORR: return "ecschnorr";
    case TPM2_ALG_ECMQV: return "ecmqv";
    case TPM2_ALG_KDF1_SP800_56A: return "kdf1_sp800_56a";
    case TPM2_ALG_KDF2: return "kdf2";
    case TPM2_ALG_KDF1_SP800_108: return "kdf1_sp800_108";
    case TPM2_ALG_ECC: return "ecc";
    case TPM2_ALG_SYMCIPHER: return "symcipher";
    case TPM2_ALG_CAMELLIA: return "camellia";
    case TPM2_ALG_SHA3_256: return "sha3_256";
    case TPM2_ALG_SHA3_384: return "sha3_384";
    case TPM2_ALG_SHA3_512: return "sha3_512";
    case TPM2_ALG_CTR: return "ctr";
    case TPM2_ALG_OFB: return "ofb";
    case TPM2_ALG_CBC: return "cbc";
    case TPM2_ALG_CFB: return "cfb";
    case TPM2_ALG_ECB: return "ecb";
    default: return NULL;
    }
}

static const char *curve_name(TPM2_ECC_CURVE c) {
    switch (c) {
    case TPM2_ECC_NIST_P192: return "nist-p192";
    case TPM2_ECC_NIST_P224: return "nist-p224";
    case TPM2_ECC_NIST_P256: return "nist-p256";
    case TPM2_ECC_NIST_P384: return "nist-p384";
    case TPM2_ECC_NIST_P521: return "nist-p521";
    case TPM2_ECC_BN_P256: return "bn-p256";
    case TPM2_ECC_BN_P638: return "bn-p638";
    case TPM2_ECC_SM2_P256: return "sm2-p256";
    default: return NULL;
    }
}

_public_ int cit_workspace_capabilities(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    cit_tpm *t;
    static const char *const ops[] = {"TPM2_GetCapability (algorithms, curves, PCRs, properties)",
                                      "TPM2_TestParms (each key algorithm)", NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "read the TPM's capabilities (reads only)", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    json_t *j = json_object();
    json_object_set_new(j, "backend", json_string(cit__backend_name(ctx->backend)));
    json_object_set_new(j, "tpm", tpm_identity(t));
    TPMS_CAPABILITY_DATA *cap = NULL;
    json_t *algs = json_array();
    if (Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_ALGS, TPM2_ALG_FIRST,
                           TPM2_MAX_CAP_ALGS, NULL, &cap) == TSS2_RC_SUCCESS) {
        for (uint32_t i = 0; i < cap->data.algorithms.count; i++) {
            const char *n = alg_name(cap->data.algorithms.algProperties[i].alg);
            if (n)
                json_array_append_new(algs, json_string(n));
        }
        Esys_Free(cap);
        cap = NULL;
    }
    json_object_set_new(j, "algorithms", algs);
    json_t *curves = json_array();
    if (Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_ECC_CURVES, 0,
                           TPM2_MAX_ECC_CURVES, NULL, &cap) == TSS2_RC_SUCCESS) {
        for (uint32_t i = 0; i < cap->data.eccCurves.count; i++) {
            const char *n = curve_name(cap->data.eccCurves.eccCurves[i]);
            if (n)
                json_array_append_new(curves, json_string(n));
        }
        Esys_Free(cap);
        cap = NULL;
    }
    json_object_set_new(j, "ecc_curves", curves);
    json_t *banks = json_array();
    if (Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1, NULL, &cap) ==
        TSS2_RC_SUCCESS) {
        for (uint32_t i = 0; i < cap->data.assignedPCR.count; i++) {
            TPMS_PCR_SELECTION *sel = &cap->data.assignedPCR.pcrSelections[i];
            int active = 0;
            for (int b = 0; b < sel->sizeofSelect; b++)
                active += __builtin_popcount(sel->pcrSelect[b]);
            const char *n = alg_name(sel->hash);
            json_array_append_new(banks, json_pack("{s:s,s:i}", "bank", n ? n : "unknown", "active_pcrs", active));
        }
        Esys_Free(cap);
        cap = NULL;
    }
    json_object_set_new(j, "pcr_banks", banks);
    /* What citadel can create here, asked of the TPM itself (TPM2_TestParms). */
    static const char *const key_algs[] = {"ecc-p256", "ecc-p384", "rsa-2048", "rsa-3072"};
    json_t *kas = json_array();
    for (size_t i = 0; i < ELEMENTSOF(key_algs); i++) {
        TPM2B_PUBLIC tmpl;
        if (cit__key_template(&tmpl, key_algs[i], "sign") < 0)
            continue;
        TPMT_PUBLIC_PARMS parms = {.type = tmpl.publicArea.type};
        if (parms.type == TPM2_ALG_ECC)
            parms.parameters.eccDetail = tmpl.publicArea.parameters.eccDetail;
        else
            parms.parameters.rsaDetail = tmpl.publicArea.parameters.rsaDetail;
        TSS2_RC rc = Esys_TestParms(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &parms);
        json_array_append_new(kas, json_pack("{s:s,s:b}", "algorithm", key_algs[i], "supported", rc == TSS2_RC_SUCCESS));
    }
    /* not a TPM algorithm: a software key whose seed the TPM seals, wherever sealing works */
    json_array_append_new(kas, json_pack("{s:s,s:b,s:s}", "algorithm", "ed25519", "supported", true, "how",
                                         "software signing, seed sealed by the TPM"));
    json_object_set_new(j, "key_algorithms", kas);
    static const struct {
        const char *name;
        TPM2_PT pt;
    } limits[] = {
        {"input_buffer", TPM2_PT_INPUT_BUFFER},
        {"max_command_size", TPM2_PT_MAX_COMMAND_SIZE},
        {"max_response_size", TPM2_PT_MAX_RESPONSE_SIZE},
        {"max_digest", TPM2_PT_MAX_DIGEST},
        {"transient_objects_min", TPM2_PT_HR_TRANSIENT_MIN},
        {"persistent_objects_min", TPM2_PT_HR_PERSISTENT_MIN},
        {"loaded_sessions_min", TPM2_PT_HR_LOADED_MIN},
        {"active_sessions_max", TPM2_PT_ACTIVE_SESSIONS_MAX},
        {"pcr_count", TPM2_PT_PCR_COUNT},
        {"nv_index_max_size", TPM2_PT_NV_INDEX_MAX},
        {"nv_buffer_max", TPM2_PT_NV_BUFFER_MAX},
        {"nv_counters_max", TPM2_PT_NV_COUNTERS_MAX},
    };
    json_t *lim = json_object();
    for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
        uint32_t v;
        if (cit__tpm_prop(t, limits[i].pt, &v) == 0)
            json_object_set_new(lim, limits[i].name, json_integer(v));
    }
    cit_error_clear();
    json_object_set_new(j, "limits", lim);
    *out = j;
    return 0;
}

_public_ int cit_workspace_info(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "show workspace information (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    static const char *const keys[] = {"workspace_id", "backend", "tcti", "profile", "default_algorithm",
                                       "srk_handle", "srk_name", "initialized_at"};
    json_t *j = json_object();
    json_object_set_new(j, "store", json_string(ctx->store_path));
    if (ctx->backend == CIT_BACKEND_VTPM)
        json_object_set_new(j, "tpm_state", json_string(ctx->state_path));
    for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
        char *v = NULL;
        if (cit__store_meta_get(s, keys[i], &v) == 0 && v && *v)
            json_object_set_new(j, keys[i], json_string(v));
        free(v);
    }
    json_object_set_new(j, "store_schema_version", json_integer(s->schema_version));
    json_object_set_new(j, "objects", count_objects(s));
    struct stat st;
    if (strcmp(ctx->store_path, ":memory:") != 0 && stat(ctx->store_path, &st) == 0)
        json_object_set_new(j, "store_bytes", json_integer(st.st_size));
    *out = j;
    return 0;
}

static json_t *events_json(cit_store *s, int64_t object_id, const char *path, const char *action, int limit) {
    json_t *a = json_array();
    sqlite3_stmt *st;
    if (cit__store_prepare(s, &st,
                           "SELECT at, actor, action, object_path, outcome, details FROM events "
                           "WHERE (?1 = 0 OR object_id = ?1 OR (?2 IS NOT NULL AND object_path = ?2)) "
                           "AND (?3 IS NULL OR action = ?3 OR action LIKE ?3 || '.%') "
                           "ORDER BY id DESC LIMIT ?4") < 0)
        return a;
    sqlite3_bind_int64(st, 1, object_id);
    if (path)
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    if (action)
        sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, limit);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char when[32];
        cit_time_rfc3339(when, sizeof when, sqlite3_column_int64(st, 0));
        const char *op = (const char *)sqlite3_column_text(st, 3);
        json_t *row = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "time", when, "actor",
                                (const char *)sqlite3_column_text(st, 1), "action",
                                (const char *)sqlite3_column_text(st, 2), "object", op ? op : "-", "outcome",
                                (const char *)sqlite3_column_text(st, 4), "details",
                                (const char *)sqlite3_column_text(st, 5));
        json_array_append_new(a, row);
    }
    sqlite3_finalize(st);
    return a;
}

_public_ int cit_log_show(json_t **out, cit_ctx *ctx, const char *object, const char *action, int limit) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    int64_t id = 0;
    if (object) {
        cit_object o = {0};
        r = cit__check_path(object);
        if (r < 0)
            return r;
        if (cit__object_find(s, object, &o) == 0)
            id = o.id;
        cit__object_clear(&o);
        cit_error_clear();
        if (!id) {
            /* a deleted object has no row any more: its last event under this path names it */
            sqlite3_stmt *st;
            if (cit__store_prepare(s, &st, "SELECT object_id FROM events WHERE object_path = ? AND object_id IS "
                                           "NOT NULL ORDER BY id DESC LIMIT 1") == 0) {
                sqlite3_bind_text(st, 1, object, -1, SQLITE_STATIC);
                if (sqlite3_step(st) == SQLITE_ROW)
                    id = sqlite3_column_int64(st, 0);
                sqlite3_finalize(st);
            }
            cit_error_clear();
        }
        if (!id)
            id = -1;
    }
    if (limit <= 0)
        limit = 50;
    json_t *ev = events_json(s, id, object, action, limit);
    *out = json_pack("{s:o,s:I}", "events", ev, "count", (json_int_t)json_array_size(ev));
    return 0;
}

_public_ int cit_workspace_export(json_t **out, cit_ctx *ctx, const char *output) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "export the workspace (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    json_t *doc = json_object();
    json_object_set_new(doc, "format", json_string("citadel-workspace-export"));
    /* 2: the "ca" member (the CA tables). A citadel that knows only 1 refuses a 2 instead of
     * restoring a CA's key object without the CA. */
    json_object_set_new(doc, "format_version", json_integer(2));
    char now[32];
    cit_time_rfc3339(now, sizeof now, time(NULL));
    json_object_set_new(doc, "exported_at", json_string(now));
    json_t *ws = json_object();
    static const char *const keys[] = {"workspace_id", "backend", "profile", "default_algorithm", "srk_handle",
                                       "srk_name", "initialized_at"};
    for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
        char *v = NULL;
        if (cit__store_meta_get(s, keys[i], &v) == 0 && v)
            json_object_set_new(ws, keys[i], json_string(v));
        free(v);
    }
    json_object_set_new(doc, "workspace", ws);
    json_t *objs = json_array();
    sqlite3_stmt *st;
    /* parents before children: a child always has a larger id than its parent */
    r = cit__store_prepare(s, &st, "SELECT o.path, o.kind, o.status, o.algorithm, o.scheme, o.usage, p.path, o.version, "
                                   "o.metadata, o.created_at, o.id FROM objects o LEFT JOIN objects p ON o.parent_id = p.id "
                                   "ORDER BY o.id");
    if (r < 0) {
        json_decref(doc);
        json_decref(objs);
        return r;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *parent = (const char *)sqlite3_column_text(st, 6);
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s?,s:i,s:s,s:I}", "path", sqlite3_column_text(st, 0), "kind",
                              sqlite3_column_text(st, 1), "status", sqlite3_column_text(st, 2), "algorithm",
                              sqlite3_column_text(st, 3), "scheme", sqlite3_column_text(st, 4), "usage",
                              sqlite3_column_text(st, 5), "parent", parent, "version", sqlite3_column_int(st, 7),
                              "metadata", sqlite3_column_text(st, 8), "created_at",
                              (json_int_t)sqlite3_column_int64(st, 9));
        int64_t id = sqlite3_column_int64(st, 10);
        json_t *vers = json_array();
        for (int v = 1; v <= sqlite3_column_int(st, 7); v++) {
            cit_object_version ov = {0};
            if (cit__version_get(s, id, v, &ov) < 0) {
                cit_error_clear();
                continue;
            }
            char *pub = NULL, *priv = NULL, *name = cit_hex_encode(ov.name, ov.name_len);
            cit__base64_encode(&pub, ov.pub, ov.pub_len);
            cit__base64_encode(&priv, ov.priv, ov.priv_len);
            json_t *vj = json_pack("{s:i,s:s,s:s,s:s,s:I}", "version", v, "tpm_public", pub, "tpm_private", priv,
                                   "tpm_name", name, "created_at", (json_int_t)ov.created_at);
            if (ov.parent_version)
                json_object_set_new(vj, "parent_version", json_integer(ov.parent_version));
            /* the envelope ciphertext of a large secret, an identity's certificate, an ed25519
             * key's public key: without it those objects cannot be used after an import */
            char *payload = NULL;
            if (ov.payload && cit__base64_encode(&payload, ov.payload, ov.payload_len) == 0)
                json_object_set_new(vj, "payload", json_string(payload));
            free(payload);
            json_array_append_new(vers, vj);
            free(pub);
            free(priv);
            free(name);
            cit__version_clear(&ov);
        }
        json_object_set_new(o, "versions", vers);
        json_array_append_new(objs, o);
    }
    sqlite3_finalize(st);
    size_t n = json_array_size(objs);
    json_object_set_new(doc, "objects", objs);
    /* the certificate authority's tables (docs/ca.md): a CA whose store is lost comes back */
    json_t *ca = NULL;
    if ((r = cit__ca_export(s, &ca)) < 0) {
        json_decref(doc);
        return r;
    }
    size_t n_ca = json_array_size(json_object_get(ca, "ca")), n_certs = json_array_size(json_object_get(ca, "ca_certs"));
    json_object_set_new(doc, "ca", ca);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!text)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    /* wrapped private parts are not plaintext secrets, but the file stays private anyway */
    int w = cit_write_file_atomic(output, (const uint8_t *)text, strlen(text), 0600, CIT_WRITE_DURABLE);
    free(text);
    if (w < 0) {
        cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-w));
        cit_error_context("file", "%s", output);
        return CIT_E_OUTPUT_WRITE;
    }
    *out = json_pack("{s:s,s:I,s:I,s:I}", "output", output, "objects", (json_int_t)n, "cas", (json_int_t)n_ca,
                     "ca_certificates", (json_int_t)n_certs);
    return 0;
}

int cit__import_invalid(const char *input, const char *why) {
    cit_error_set(CIT_E_IMPORT_INVALID, "not a valid workspace export: %s", input);
    cit_error_cause("%s", why);
    cit_error_context("file", "%s", input);
    return CIT_E_IMPORT_INVALID;
}

static int blob_from_b64(const char *b64, uint8_t **out, size_t *len) {
    if (!b64)
        return -1;
    return cit__base64_decode(out, len, b64);
}

_public_ int cit_workspace_import(json_t **out, cit_ctx *ctx, const char *input) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    uint8_t *buf = NULL;
    size_t len = 0;
    r = cit__read_input(input, IMPORT_MAX, "the export", false, &buf, &len);
    if (r < 0)
        return r;
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)buf, len, 0, &jerr);
    free(buf);
    if (!doc) {
        r = cit__import_invalid(input, jerr.text);
        cit_error_context("line", "%d", jerr.line);
        return r;
    }
    json_t *objs = json_object_get(doc, "objects");
    const char *fmt = json_string_value(json_object_get(doc, "format"));
    if (!fmt || strcmp(fmt, "citadel-workspace-export") != 0 || !json_is_array(objs)) {
        json_decref(doc);
        return cit__import_invalid(input, "the file is not a citadel workspace export");
    }
    json_int_t fv = json_integer_value(json_object_get(doc, "format_version"));
    if (fv != 1 && fv != 2) {
        json_decref(doc);
        return cit__import_invalid(input, "unknown export format version");
    }
    _cleanup_free_ char *srk = NULL;
    cit__store_meta_get(s, "srk_name", &srk);
    const char *their = json_string_value(json_object_get(json_object_get(doc, "workspace"), "srk_name"));
    if (!their || !srk || strcmp(their, srk) != 0) {
        cit_error_set(CIT_E_STORE_INCONSISTENT, "the export belongs to another TPM's storage key");
        cit_error_cause("its keys are wrapped under a storage primary key this TPM does not have, so they could "
                        "never load here");
        cit_error_context("export_srk_name", "%s", their ? their : "(none)");
        cit_error_context("workspace_srk_name", "%s", srk ? srk : "(none)");
        cit_error_step("import the export into the workspace of the TPM that made it");
        json_decref(doc); /* their points into doc */
        return CIT_E_STORE_INCONSISTENT;
    }
    /* validate everything before writing anything */
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o) {
        const char *path = json_string_value(json_object_get(o, "path"));
        if (!path || !json_is_string(json_object_get(o, "kind")) || !json_is_array(json_object_get(o, "versions"))) {
            json_decref(doc);
            return cit__import_invalid(input, "an object lacks path, kind or versions");
        }
        if ((r = cit__check_path(path)) < 0) {
            json_decref(doc);
            return r;
        }
        cit_object ex = {0};
        if (cit__object_find(s, path, &ex) == 0) {
            cit__object_clear(&ex);
            cit_error_set(CIT_E_OBJECT_EXISTS, "the workspace already has %s", path);
            cit_error_cause("import adds objects and never overwrites; nothing was imported");
            cit_error_context("path", "%s", path);
            cit_error_step("delete or rename %s first, or import into another workspace", path);
            json_decref(doc); /* path points into doc */
            return CIT_E_OBJECT_EXISTS;
        }
    }
    const json_t *ca = json_object_get(doc, "ca");
    if ((r = cit__ca_import_check(s, ca, input)) < 0) {
        json_decref(doc);
        return r;
    }
    cit_error_clear();
    if (ctx->plan) {
        json_decref(doc);
        *out = cit__plan("import objects into the store (no TPM operations)", NULL);
        return 0;
    }
    r = cit__store_begin(s);
    size_t imported = 0;
    json_array_foreach(objs, i, o) {
        if (r < 0)
            break;
        cit_object ob = {0};
        snprintf(ob.path, sizeof ob.path, "%s", json_string_value(json_object_get(o, "path")));
        snprintf(ob.kind, sizeof ob.kind, "%s", json_string_value(json_object_get(o, "kind")));
        const char *st = json_string_value(json_object_get(o, "status"));
        snprintf(ob.status, sizeof ob.status, "%s", st && strcmp(st, "retired") == 0 ? "retired" : "active");
        snprintf(ob.algorithm, sizeof ob.algorithm, "%s", json_string_value(json_object_get(o, "algorithm")) ?: "");
        snprintf(ob.scheme, sizeof ob.scheme, "%s", json_string_value(json_object_get(o, "scheme")) ?: "");
        snprintf(ob.usage, sizeof ob.usage, "%s", json_string_value(json_object_get(o, "usage")) ?: "");
        ob.version = (int)json_integer_value(json_object_get(o, "version"));
        ob.created_at = json_integer_value(json_object_get(o, "created_at"));
        const char *meta = json_string_value(json_object_get(o, "metadata"));
        ob.metadata = strdup(meta ? meta : "{}");
        const char *parent = json_string_value(json_object_get(o, "parent"));
        if (parent) {
            cit_object p = {0};
            r = cit__object_find(s, parent, &p);
            ob.parent_id = p.id;
            cit__object_clear(&p);
        }
        if (r == 0)
            r = cit__object_insert(s, &ob);
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(o, "versions"), k, v) {
            if (r < 0)
                break;
            cit_object_version ov = {.version = (int)json_integer_value(json_object_get(v, "version")),
                                     .created_at = json_integer_value(json_object_get(v, "created_at")),
                                     .parent_version = (int)json_integer_value(json_object_get(v, "parent_version"))};
            if (blob_from_b64(json_string_value(json_object_get(v, "tpm_public")), &ov.pub, &ov.pub_len) < 0 ||
                blob_from_b64(json_string_value(json_object_get(v, "tpm_private")), &ov.priv, &ov.priv_len) < 0 ||
                cit_hex_decode(&ov.name, &ov.name_len, json_string_value(json_object_get(v, "tpm_name")) ?: "x") < 0 ||
                (json_object_get(v, "payload") &&
                 blob_from_b64(json_string_value(json_object_get(v, "payload")), &ov.payload, &ov.payload_len) < 0))
                r = cit__import_invalid(input, "a version's blobs are not valid base64/hex");
            else
                r = cit__version_insert(s, ob.id, &ov);
            cit__version_clear(&ov);
        }
        if (r == 0)
            r = cit__store_event(s, "object.import", ob.path, ob.id, "ok", NULL);
        if (r == 0)
            imported++;
        cit__object_clear(&ob);
    }
    size_t ca_rows = 0;
    if (r == 0)
        r = cit__ca_import(s, ca, input, &ca_rows);
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        json_decref(doc);
        return r;
    }
    json_decref(doc);
    *out = json_pack("{s:s,s:I,s:I,s:s}", "input", input, "imported", (json_int_t)imported, "ca_rows_imported",
                     (json_int_t)ca_rows, "note", "persistent handles are not imported; objects load on demand");
    return 0;
}

_public_ int cit_debug_bundle(json_t **out, cit_ctx *ctx, const char *output) {
    cit_error_clear();
    json_t *b = json_object();
    char now[32];
    cit_time_rfc3339(now, sizeof now, time(NULL));
    json_object_set_new(b, "bundle", json_string("citadel-debug"));
    json_object_set_new(b, "generated", json_string(now));
    json_object_set_new(b, "citadel_version", json_string(CIT_VERSION));
    uint32_t tv = TPMLIB_GetVersion();
    char lv[32];
    snprintf(lv, sizeof lv, "%u.%u.%u", (tv >> 16) & 0xff, (tv >> 8) & 0xff, tv & 0xff);
    json_object_set_new(b, "libraries", json_pack("{s:s,s:s,s:s,s:s}", "sqlite", sqlite3_libversion(), "openssl",
                                                  OpenSSL_version(OPENSSL_VERSION), "libtpms", lv, "jansson",
                                                  JANSSON_VERSION));
    json_t *env = json_object();
    static const char *const vars[] = {"TPM_BACKEND", "TPM_TCTI", "TPM_STORE_PATH", "XDG_DATA_HOME"};
    for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
        const char *v = getenv(vars[i]);
        json_object_set_new(env, vars[i], v ? json_string(v) : json_null());
    }
    json_object_set_new(b, "environment", env);
    if (ctx->plan) {
        json_decref(b);
        static const char *const ops[] = {"TPM2_GetCapability", "TPM2_SelfTest", "TPM2_Load/FlushContext (doctor)", NULL};
        *out = cit__plan("collect a debug bundle (reads only)", ops);
        return 0;
    }
    struct {
        const char *key;
        int (*fn)(json_t **, cit_ctx *);
    } parts[] = {{"workspace", cit_workspace_info}, {"status", cit_workspace_status}, {"capabilities", cit_workspace_capabilities}};
    for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
        json_t *p = NULL;
        if (parts[i].fn(&p, ctx) == 0)
            json_object_set_new(b, parts[i].key, p);
        else {
            json_object_set_new(b, parts[i].key, cit_error_to_json(cit_error_last()));
            cit_error_clear();
        }
    }
    json_t *doc = NULL;
    if (cit_workspace_doctor(&doc, ctx, NULL) == 0)
        json_object_set_new(b, "doctor", doc);
    else {
        json_object_set_new(b, "doctor", cit_error_to_json(cit_error_last()));
        cit_error_clear();
    }
    if (ctx->store)
        json_object_set_new(b, "recent_events", events_json(ctx->store, 0, NULL, NULL, 50));
    char *text = json_dumps(b, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(b);
    int w = text ? cit_write_file_atomic(output, (const uint8_t *)text, strlen(text), 0600, 0) : -ENOMEM;
    free(text);
    if (w < 0) {
        cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-w));
        cit_error_context("file", "%s", output);
        return CIT_E_OUTPUT_WRITE;
    }
    *out = json_pack("{s:s,s:s}", "output", output, "contains",
                     "versions, environment, workspace info, status, capabilities, doctor report, recent operation log; "
                     "no key material");
    return 0;
}

/* ---- dictionary-attack protection ---- */

static json_t *da_json(const da_state *da) {
    return json_pack("{s:i,s:i,s:b,s:i,s:i}", "failures", da->counter, "max_tries", da->max_tries, "in_lockout",
                     da->in_lockout, "recovery_seconds", da->interval, "lockout_recovery_seconds", da->recovery);
}

_public_ int cit_lockout_show(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    cit_tpm *t;
    static const char *const ops[] = {"TPM2_GetCapability (lockout properties)", NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "show the dictionary-attack state (reads only)", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    da_state da = read_da(t);
    if (!da.ok)
        return cit_error_set(CIT_E_TPM_COMMAND, "cannot read the dictionary-attack properties");
    *out = da_json(&da);
    return 0;
}

_public_ int cit_lockout_reset(json_t **out, cit_ctx *ctx, const char *auth_file) {
    cit_error_clear();
    cit_store *s;
    cit_tpm *t;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    TPM2B_AUTH auth = {0};
    if (auth_file && (r = cit__read_auth(auth_file, &auth)) < 0)
        return r;
    if (ctx->plan) {
        cit_memzero(&auth, sizeof auth);
        static const char *const ops[] = {"TPM2_DictionaryAttackLockReset (lockout hierarchy)", NULL};
        *out = cit__plan("reset the dictionary-attack counter", ops);
        return 0;
    }
    r = cit__ctx_tpm(ctx, &t);
    if (r < 0) {
        cit_memzero(&auth, sizeof auth);
        return r;
    }
    da_state before = read_da(t);
    Esys_TR_SetAuth(t->esys, ESYS_TR_RH_LOCKOUT, &auth);
    cit_memzero(&auth, sizeof auth);
    TSS2_RC rc = Esys_DictionaryAttackLockReset(t->esys, ESYS_TR_RH_LOCKOUT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                                ESYS_TR_NONE);
    Esys_TR_SetAuth(t->esys, ESYS_TR_RH_LOCKOUT, &(TPM2B_AUTH){0});
    if (rc != TSS2_RC_SUCCESS) {
        r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot reset the dictionary-attack counter");
        cit_error_cause("TPM2_DictionaryAttackLockReset needs the lockout authorization; after a wrong one "
                        "the lockout hierarchy itself waits lockout_recovery_seconds");
        return r;
    }
    r = cit__store_event(s, "lockout.reset", NULL, 0, "ok", NULL);
    if (r < 0)
        return r;
    da_state after = read_da(t);
    *out = json_pack("{s:o,s:o}", "before", da_json(&before), "after", da_json(&after));
    return 0;
}
