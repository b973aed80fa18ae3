/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `gc plan|apply`: removes what nothing needs any more.
 *   - objects retired longer than the retention period (default 30 days, counted from their
 *     last change, which retiring is), unless something kept depends on them: a key below a
 *     retired storage key, identities an authority approves for;
 *   - their TPM parts (a persistent handle, an NV index) when they still hold them;
 *   - stored versions whose object row is gone (possible only if the store was edited without
 *     foreign keys);
 *   - leftover temporary files of killed processes beside the store.
 * Older versions of kept objects are never removed: `key verify` accepts signatures of every
 * version, and keys below a rotated storage key load through its older versions.
 * The store changes in one transaction; evictions follow it with the intent journal, as in
 * `object delete`.
 */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/keys.h"
#include "ctx.h"
#include "store/intents.h"

#define GC_DEFAULT_RETENTION_DAYS 30

typedef struct gc_item {
    cit_object o;
    uint32_t handle; /* persistent handle or NV index to remove (0: none) */
    uint8_t name[sizeof(TPMU_NAME) + 2];
    size_t name_len;
    int64_t bytes;
} gc_item;

typedef struct gc {
    cit_ctx *ctx;
    cit_store *s;
    int64_t cutoff;
    int retention;
    gc_item *items;
    size_t n;
    json_t *skipped;
    json_t *files; /* [{path, bytes}] */
    int64_t orphan_versions, orphan_bytes, kept_versions;
} gc;

static void gc_free(gc *g) {
    for (size_t i = 0; i < g->n; i++)
        cit__object_clear(&g->items[i].o);
    free(g->items);
    json_decref(g->skipped);
    json_decref(g->files);
}

static int64_t scalar(cit_store *s, const char *sql, int64_t bind) {
    sqlite3_stmt *st;
    int64_t v = 0;
    if (cit__store_prepare(s, &st, sql) < 0) {
        cit_error_clear();
        return 0;
    }
    if (bind >= 0)
        sqlite3_bind_int64(st, 1, bind);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static bool is_candidate(const gc *g, int64_t id) {
    for (size_t i = 0; i < g->n; i++)
        if (g->items[i].o.id == id)
            return true;
    return false;
}

/* Leftover "<store>.tmp.<pid>" and "<store>.tpmstate.tmp.<pid>" files of processes that are gone. */
static void leftover_files(gc *g) {
    _cleanup_free_ char *d1 = strdup(g->ctx->store_path), *d2 = strdup(g->ctx->store_path);
    if (!d1 || !d2)
        return;
    const char *dir = dirname(d1), *base = basename(d2);
    DIR *d = opendir(dir);
    if (!d)
        return;
    char p1[300], p2[300];
    snprintf(p1, sizeof p1, "%s.tmp.", base);
    snprintf(p2, sizeof p2, "%s.tpmstate.tmp.", base);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *pid = NULL;
        if (strncmp(e->d_name, p1, strlen(p1)) == 0)
            pid = e->d_name + strlen(p1);
        else if (strncmp(e->d_name, p2, strlen(p2)) == 0)
            pid = e->d_name + strlen(p2);
        uint32_t p;
        if (!pid || cit_parse_u32(pid, &p) < 0 || p == 0) {
            cit_error_clear();
            continue;
        }
        if ((pid_t)p == getpid() || kill((pid_t)p, 0) == 0 || errno == EPERM)
            continue; /* its writer may still be working */
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode))
            json_array_append_new(g->files, json_pack("{s:s,s:I}", "path", full, "bytes", (json_int_t)st.st_size));
    }
    closedir(d);
}

static int collect(gc *g) {
    cit_object *list = NULL;
    size_t n = 0;
    int r = cit__object_list(g->s, NULL, &list, &n);
    if (r < 0)
        return r;
    g->items = calloc(n ? n : 1, sizeof(*g->items));
    if (!g->items) {
        cit__object_list_free(list, n);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    /* candidates: retired before the cutoff */
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].status, "retired") != 0 || list[i].updated_at > g->cutoff)
            continue;
        gc_item *it = &g->items[g->n++];
        it->o = list[i];
        memset(&list[i], 0, sizeof list[i]); /* moved */
    }
    cit__object_list_free(list, n);
    /* drop candidates that something kept depends on (until nothing changes) */
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < g->n; i++) {
            cit_object *o = &g->items[i].o;
            json_t *deps = json_array();
            char why[400] = "";
            if (cit__collect_dependents(g->s, o->id, deps, 0) == 0) {
                size_t k;
                json_t *d;
                json_array_foreach(deps, k, d) if (!is_candidate(g, json_integer_value(json_object_get(d, "id")))) {
                    snprintf(why, sizeof why, "%s depends on it and is kept", json_string_value(json_object_get(d, "path")));
                    break;
                }
            }
            json_decref(deps);
            if (!why[0] && cit__authority_guard(g->ctx, o, "removing it") < 0)
                snprintf(why, sizeof why, "it is an authority that identities still depend on");
            cit_error_clear();
            if (why[0]) {
                json_array_append_new(g->skipped, json_pack("{s:s,s:s}", "path", o->path, "reason", why));
                cit__object_clear(o);
                g->items[i] = g->items[--g->n];
                changed = true;
                break;
            }
        }
    }
    /* order: dependents first (deeper paths of the parent chain before their parents) */
    for (size_t i = 0; i < g->n; i++)
        for (size_t j = i + 1; j < g->n; j++)
            if (g->items[j].o.parent_id == g->items[i].o.id) {
                gc_item t = g->items[i];
                g->items[i] = g->items[j];
                g->items[j] = t;
                i = (size_t)-1; /* restart */
                break;
            }
    for (size_t i = 0; i < g->n; i++) {
        gc_item *it = &g->items[i];
        it->handle = it->o.persistent_handle ? it->o.persistent_handle : cit__nv_handle_of(&it->o);
        if (it->o.persistent_handle)
            cit__version_name(g->s, it->o.id, it->o.version, it->name, sizeof it->name, &it->name_len);
        cit_error_clear();
        it->bytes = scalar(g->s,
                           "SELECT coalesce(sum(length(tpm_public) + length(tpm_private) + length(tpm_name) + "
                           "coalesce(length(payload), 0)), 0) FROM object_versions WHERE object_id = ?",
                           it->o.id) +
                    (int64_t)strlen(it->o.metadata ? it->o.metadata : "");
    }
    g->orphan_versions = scalar(g->s, "SELECT count(*) FROM object_versions WHERE object_id NOT IN (SELECT id FROM objects)", -1);
    g->orphan_bytes = scalar(g->s,
                             "SELECT coalesce(sum(length(tpm_public) + length(tpm_private) + length(tpm_name) + "
                             "coalesce(length(payload), 0)), 0) FROM object_versions WHERE object_id NOT IN "
                             "(SELECT id FROM objects)",
                             -1);
    g->kept_versions = scalar(g->s,
                              "SELECT count(*) FROM object_versions v JOIN objects o ON o.id = v.object_id "
                              "WHERE v.version <> o.version",
                              -1);
    leftover_files(g);
    return 0;
}

static int gc_start(gc *g, cit_ctx *ctx, int retention_days) {
    memset(g, 0, sizeof(*g));
    g->ctx = ctx;
    g->skipped = json_array();
    g->files = json_array();
    if (retention_days < 0)
        retention_days = GC_DEFAULT_RETENTION_DAYS;
    g->retention = retention_days;
    g->cutoff = (int64_t)time(NULL) - (int64_t)retention_days * 86400;
    int r = cit__ctx_store(ctx, &g->s);
    if (r == 0)
        r = collect(g);
    return r;
}

static json_t *item_ops(gc *g, json_t *texts) {
    json_t *objs = json_array();
    for (size_t i = 0; i < g->n; i++) {
        gc_item *it = &g->items[i];
        char when[32];
        cit_time_rfc3339(when, sizeof when, it->o.updated_at);
        json_t *m = json_loads(it->o.metadata ? it->o.metadata : "{}", 0, NULL);
        const char *reason = json_string_value(json_object_get(json_object_get(m, "retired"), "reason"));
        json_t *j = json_pack("{s:s,s:s,s:s,s:I}", "path", it->o.path, "kind", it->o.kind, "retired_since", when,
                              "bytes", (json_int_t)it->bytes);
        if (reason)
            json_object_set_new(j, "reason", json_string(reason));
        json_decref(m);
        json_array_append_new(objs, j);
        json_array_append_new(texts, json_sprintf("delete %s %s from the store (retired since %s)", it->o.kind,
                                                  it->o.path, when));
    }
    for (size_t i = 0; i < g->n; i++)
        if (g->items[i].handle)
            json_array_append_new(texts, json_sprintf("%s 0x%08x of %s, if the TPM still holds it",
                                                      g->items[i].handle >> 24 == TPM2_HT_NV_INDEX ? "undefine NV index"
                                                                                                  : "evict persistent handle",
                                                      g->items[i].handle, g->items[i].o.path));
    if (g->orphan_versions)
        json_array_append_new(texts, json_sprintf("delete %lld stored version(s) whose object is gone",
                                                  (long long)g->orphan_versions));
    size_t k;
    json_t *f;
    json_array_foreach(g->files, k, f) json_array_append_new(
        texts, json_sprintf("remove leftover file %s", json_string_value(json_object_get(f, "path"))));
    return objs;
}

static int64_t files_bytes(const json_t *files) {
    int64_t b = 0;
    size_t k;
    json_t *f;
    json_array_foreach(files, k, f) b += json_integer_value(json_object_get(f, "bytes"));
    return b;
}

static char *gc_text(const char *head, const json_t *texts, const json_t *skipped, const char *tail) {
    char *text = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&text, &tl);
    if (!f)
        return NULL;
    fprintf(f, "%s\n", head);
    size_t i;
    json_t *x;
    json_array_foreach(texts, i, x) fprintf(f, "  %zu. %s\n", i + 1, json_string_value(x));
    json_array_foreach(skipped, i, x) fprintf(f, "  kept: %s (%s)\n", json_string_value(json_object_get(x, "path")),
                                              json_string_value(json_object_get(x, "reason")));
    if (tail)
        fprintf(f, "%s\n", tail);
    fclose(f);
    return text;
}

_public_ int cit_gc_plan(json_t **out, cit_ctx *ctx, int retention_days) {
    cit_error_clear();
    gc g;
    int r = gc_start(&g, ctx, retention_days);
    if (r < 0) {
        gc_free(&g);
        return r;
    }
    json_t *texts = json_array();
    json_t *objs = item_ops(&g, texts);
    int64_t obytes = 0;
    for (size_t i = 0; i < g.n; i++)
        obytes += g.items[i].bytes;
    char cut[32], head[200], tail[200];
    cit_time_rfc3339(cut, sizeof cut, g.cutoff);
    snprintf(head, sizeof head, "Retention %d day(s): objects retired before %s go. `citadel tpm gc apply` would:",
             g.retention, cut);
    snprintf(tail, sizeof tail, "%lld older version(s) of kept objects stay (signature verification needs them).",
             (long long)g.kept_versions);
    char *text = json_array_size(texts) ? gc_text(head, texts, g.skipped, tail) : NULL;
    json_t *j = json_object();
    if (ctx->plan)
        json_object_set_new(j, "plan", json_true());
    json_object_set_new(j, "retention_days", json_integer(g.retention));
    json_object_set_new(j, "cutoff", json_string(cut));
    json_object_set_new(j, "objects", objs);
    json_object_set(j, "kept", g.skipped);
    json_object_set_new(j, "orphaned_versions", json_integer(g.orphan_versions));
    json_object_set(j, "files", g.files);
    json_object_set_new(j, "kept_old_versions", json_integer(g.kept_versions));
    json_object_set_new(j, "operations", texts);
    json_object_set_new(j, "would_free_bytes", json_integer(obytes + g.orphan_bytes + files_bytes(g.files)));
    json_object_set_new(j, "changes", json_string("none (plan only)"));
    if (!text) {
        char none[300];
        snprintf(none, sizeof none, "Nothing to collect (retention %d day(s)). %s", g.retention, tail);
        json_object_set_new(j, "_text", json_string(none));
    } else
        json_object_set_new(j, "_text", json_string(text));
    free(text);
    gc_free(&g);
    *out = j;
    return 0;
}

_public_ int cit_gc_apply(json_t **out, cit_ctx *ctx, int retention_days) {
    cit_error_clear();
    if (ctx->plan)
        return cit_gc_plan(out, ctx, retention_days);
    gc g;
    int r = gc_start(&g, ctx, retention_days);
    json_t *texts = json_array(), *objs = NULL, *warnings = json_array();
    int64_t *intents = NULL;
    if (r < 0)
        goto done;
    objs = item_ops(&g, texts);
    bool tpm = false;
    for (size_t i = 0; i < g.n; i++)
        tpm = tpm || g.items[i].handle;
    cit_tpm *t = NULL;
    if (tpm && (r = cit__ctx_tpm(ctx, &t)) < 0) /* the TPM lock before the store's */
        goto done;
    intents = calloc(g.n ? g.n : 1, sizeof(*intents));
    if (!intents) {
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        goto done;
    }
    int64_t bytes = 0, versions = 0;
    r = cit__store_begin(g.s);
    for (size_t i = 0; i < g.n && r == 0; i++) {
        gc_item *it = &g.items[i];
        versions += scalar(g.s, "SELECT count(*) FROM object_versions WHERE object_id = ?", it->o.id);
        r = cit__object_delete(g.s, it->o.id);
        if (r == 0) {
            json_t *d = json_pack("{s:s,s:i}", "kind", it->o.kind, "retention_days", g.retention);
            r = cit__store_event(g.s, "gc.delete", it->o.path, it->o.id, "ok", d);
            json_decref(d);
        }
        if (r == 0 && it->handle)
            r = cit__intent_add(g.s, "object.delete", it->o.path, it->o.id, it->handle, it->name, it->name_len, NULL,
                                &intents[i]);
        bytes += it->bytes;
    }
    if (r == 0 && g.orphan_versions)
        r = cit__store_exec(g.s, "DELETE FROM object_versions WHERE object_id NOT IN (SELECT id FROM objects)");
    if (r == 0 && json_array_size(texts)) {
        json_t *d = json_pack("{s:i,s:O}", "retention_days", g.retention, "operations", texts);
        r = cit__store_event(g.s, "gc.apply", NULL, 0, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(g.s);
    if (r < 0) {
        cit__store_rollback(g.s);
        goto done;
    }
    /* the TPM parts, after the store no longer names them (intents until durable) */
    size_t removed_handles = 0;
    bool removed[256] = {false};
    for (size_t i = 0; i < g.n; i++) {
        gc_item *it = &g.items[i];
        if (!it->handle)
            continue;
        int e = 0;
        bool present = false;
        if (it->handle >> 24 == TPM2_HT_NV_INDEX) {
            /* an index that vanished may have been defined again for a newer object since */
            bool reused = scalar(g.s, "SELECT count(*) FROM objects WHERE kind = 'nv' AND json_valid(metadata) "
                                      "AND json_extract(metadata, '$.handle') = ?",
                                 it->handle) > 0;
            ESYS_TR h = ESYS_TR_NONE;
            if (!reused && cit__ctx_tpm(ctx, &t) == 0 &&
                Esys_TR_FromTPMPublic(t->esys, it->handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &h) ==
                    TSS2_RC_SUCCESS) {
                present = true;
                Esys_TR_Close(t->esys, &h);
            }
            if (present)
                e = cit__nv_undefine(ctx, it->handle);
        } else {
            /* evict only what is still this object's key */
            ESYS_TR h = ESYS_TR_NONE;
            bool same = false;
            if (cit__ctx_tpm(ctx, &t) == 0 &&
                Esys_TR_FromTPMPublic(t->esys, it->handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &h) ==
                    TSS2_RC_SUCCESS) {
                same = cit__tpm_name_is(t, h, it->name, it->name_len);
                Esys_TR_Close(t->esys, &h);
            }
            if (same)
                e = cit__evict_handle(ctx, it->handle);
            present = same;
        }
        if (e < 0) {
            json_array_append_new(warnings, json_sprintf("0x%08x of %s was not removed: %s; run `citadel tpm repair plan`",
                                                         it->handle, it->o.path, cit_error_last()->message));
            cit_error_clear();
        } else {
            removed_handles += present;
            if (i < ELEMENTSOF(removed))
                removed[i] = true;
        }
    }
    if (tpm && cit__ctx_tpm_sync(ctx) < 0) {
        json_array_append_new(warnings, json_sprintf("the TPM state was not saved: %s", cit_error_last()->message));
        cit_error_clear();
    } else
        for (size_t i = 0; i < g.n && i < ELEMENTSOF(removed); i++)
            if (removed[i] && cit__intent_clear(g.s, intents[i]) < 0)
                cit_error_clear();
    size_t k;
    json_t *f;
    int64_t fbytes = 0, nfiles = 0;
    json_array_foreach(g.files, k, f) {
        /* ENOENT: the vTPM's own start-up, under its lock, removed a state temp file first */
        if (unlink(json_string_value(json_object_get(f, "path"))) == 0 || errno == ENOENT) {
            nfiles++;
            fbytes += json_integer_value(json_object_get(f, "bytes"));
        }
    }
    char line[400];
    snprintf(line, sizeof line,
             "Freed: %zu object(s) with %lld version(s), %lld orphaned version(s), %lld file(s), %zu TPM handle(s); "
             "%lld bytes.",
             g.n, (long long)versions, (long long)g.orphan_versions, (long long)nfiles, removed_handles,
             (long long)(bytes + g.orphan_bytes + fbytes));
    char *text = json_array_size(texts) ? gc_text("Done:", texts, g.skipped, line) : NULL;
    json_t *freed = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "objects", (json_int_t)g.n, "versions", (json_int_t)versions,
                              "orphaned_versions", (json_int_t)g.orphan_versions, "files", (json_int_t)nfiles,
                              "tpm_handles", (json_int_t)removed_handles, "bytes",
                              (json_int_t)(bytes + g.orphan_bytes + fbytes));
    *out = json_pack("{s:i,s:O,s:O,s:o,s:O}", "retention_days", g.retention, "objects", objs, "operations", texts,
                     "freed", freed, "kept", g.skipped);
    if (json_array_size(warnings))
        json_object_set(*out, "warnings", warnings);
    if (!text) {
        char none[200];
        snprintf(none, sizeof none, "Nothing to collect (retention %d day(s)).", g.retention);
        json_object_set_new(*out, "_text", json_string(none));
    } else
        json_object_set_new(*out, "_text", json_string(text));
    free(text);
done:
    free(intents);
    json_decref(objs);
    json_decref(texts);
    json_decref(warnings);
    gc_free(&g);
    return r;
}
