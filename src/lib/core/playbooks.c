/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Recovery playbooks (`recover list`, `recover show NAME`): for each kind of trouble, a live
 * detection against this workspace, the steps, and the exact commands. The detections read
 * only; the fixes are the commands they name (repair, gc, key rotate, ...).
 * `recover show boot-change` is recover.c's report, unchanged.
 */
#include <string.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/profiles.h"
#include "core/repair.h"
#include "ctx.h"

#define ROTATION_DEFAULT_DAYS 365

typedef int (*detect_fn)(cit_ctx *ctx, int days, json_t *det, bool *fires);

typedef struct playbook {
    const char *name;
    const char *summary;
    detect_fn detect;
    const char *const *steps;
    const char *const *commands;
} playbook;

/* ---- detections ---- */

static int detect_cleared(cit_ctx *ctx, int days, json_t *det, bool *fires) {
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    const char *state = NULL;
    r = cit__repair_srk_state(ctx, &state);
    if (r < 0)
        return r;
    _cleanup_free_ char *ek = NULL;
    cit__store_meta_get(s, "ek_name", &ek);
    cit_error_clear();
    json_object_set_new(det, "check", json_string("the storage primary key at 0x81000002 against the name recorded at "
                                                  "init; the endorsement key (a clear keeps it) against the recorded one"));
    json_object_set_new(det, "storage_key", json_string(r == 0 ? "present, the one recorded at init"
                                                               : "missing or not the one recorded at init"));
    json_object_set_new(det, "endorsement_key_recorded", json_boolean(ek && *ek));
    json_object_set_new(det, "state", json_string(r == 0 ? "ok" : state));
    *fires = r == 1;
    return 0;
}

static int detect_handles(cit_ctx *ctx, int days, json_t *det, bool *fires) {
    json_t *j = NULL;
    int r = cit__repair_scan(ctx, false, false, &j);
    if (r < 0)
        return r;
    json_t *list = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(j, "findings"), i, f) json_array_append_new(
        list, json_pack("{s:O,s:O,s:O}", "kind", json_object_get(f, "kind"), "object", json_object_get(f, "object"),
                        "detail", json_object_get(f, "detail")));
    json_object_set_new(det, "check", json_string("`citadel tpm repair scan`: every persistent handle, NV index, "
                                                  "wrapped blob and unfinished command against the TPM"));
    json_object_set_new(det, "findings", list);
    json_object_set(det, "needs_repair", json_object_get(j, "needs_repair"));
    *fires = json_integer_value(json_object_get(j, "needs_repair")) > 0;
    json_decref(j);
    return 0;
}

static bool alg_allowed(const cit_profile_def *p, const char *alg) {
    for (const char *const *a = p->algorithms; *a; a++)
        if (strcmp(*a, alg) == 0)
            return true;
    return false;
}

static int detect_drift(cit_ctx *ctx, int days, json_t *det, bool *fires) {
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    const cit_profile_def *p = cit__profile_active(ctx);
    cit_object *list = NULL;
    size_t n = 0;
    if ((r = cit__object_list(s, NULL, &list, &n)) < 0)
        return r;
    json_t *drift = json_array();
    for (size_t i = 0; i < n; i++) {
        const cit_object *o = &list[i];
        if (strcmp(o->status, "active") != 0)
            continue;
        if (p->path_prefix && strncmp(o->path, p->path_prefix, strlen(p->path_prefix)) != 0)
            json_array_append_new(drift, json_pack("{s:s,s:s,s:s}", "path", o->path, "kind", o->kind, "violation",
                                                   "path outside the profile's prefix"));
        if ((strcmp(o->kind, "key") == 0 || strcmp(o->kind, "ak") == 0) && o->algorithm[0] && !alg_allowed(p, o->algorithm))
            json_array_append_new(drift, json_pack("{s:s,s:s,s:s,s:s}", "path", o->path, "kind", o->kind, "algorithm",
                                                   o->algorithm, "violation", "algorithm not allowed by the profile"));
    }
    cit__object_list_free(list, n);
    json_object_set_new(det, "check", json_string("every active object against the active profile's allowed key "
                                                  "algorithms and path prefix"));
    json_object_set_new(det, "profile", json_string(p->name));
    json_object_set_new(det, "objects", drift);
    *fires = json_array_size(drift) > 0;
    return 0;
}

static int detect_boot(cit_ctx *ctx, int days, json_t *det, bool *fires) {
    json_t *j = NULL;
    int r = cit_recover_boot_change(&j, ctx);
    if (r < 0)
        return r;
    json_t *locked = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "objects"), i, o) if (strcmp(json_string_value(json_object_get(o, "state")),
                                                                       "locked") == 0)
        json_array_append(locked, json_object_get(o, "path"));
    json_object_set_new(det, "check", json_string("every PCR-bound object against the PCR values now"));
    json_object_set(det, "bound", json_object_get(j, "bound"));
    json_object_set_new(det, "locked", locked);
    *fires = json_integer_value(json_object_get(j, "locked")) > 0;
    json_decref(j);
    return 0;
}

static int64_t count_sql(cit_store *s, const char *sql, json_t *det, const char *key) {
    sqlite3_stmt *st;
    int64_t v = -1;
    if (cit__store_prepare(s, &st, sql) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    cit_error_clear();
    json_object_set_new(det, key, json_integer(v));
    return v;
}

static int detect_corruption(cit_ctx *ctx, int days, json_t *det, bool *fires) {
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    sqlite3_stmt *st;
    json_t *integrity = json_array();
    if ((r = cit__store_prepare(s, &st, "PRAGMA integrity_check")) < 0)
        return r;
    while (sqlite3_step(st) == SQLITE_ROW && json_array_size(integrity) < 20)
        json_array_append_new(integrity, json_string((const char *)sqlite3_column_text(st, 0) ?: ""));
    sqlite3_finalize(st);
    bool ok = json_array_size(integrity) == 1 && strcmp(json_string_value(json_array_get(integrity, 0)), "ok") == 0;
    json_object_set_new(det, "check", json_string("SQLite integrity_check and foreign_key_check; JSON validity of "
                                                  "object metadata, log details and the intent journal; versions "
                                                  "without an object"));
    json_object_set_new(det, "integrity_check", integrity);
    int64_t fk = count_sql(s, "SELECT count(*) FROM pragma_foreign_key_check", det, "foreign_key_violations");
    int64_t bad_meta = count_sql(s, "SELECT count(*) FROM objects WHERE json_valid(metadata) = 0 OR "
                                    "json_type(metadata) <> 'object'",
                                 det, "objects_with_invalid_metadata");
    int64_t bad_events = count_sql(s, "SELECT count(*) FROM events WHERE json_valid(details) = 0", det,
                                   "events_with_invalid_details");
    int64_t bad_intents = count_sql(s, "SELECT count(*) FROM intents WHERE json_valid(details) = 0", det,
                                    "intents_with_invalid_details");
    int64_t orphans = count_sql(s, "SELECT count(*) FROM object_versions WHERE object_id NOT IN (SELECT id FROM objects)",
                                det, "versions_without_object");
    json_t *paths = json_array();
    if (bad_meta > 0 && cit__store_prepare(s, &st, "SELECT path FROM objects WHERE json_valid(metadata) = 0 OR "
                                                   "json_type(metadata) <> 'object' LIMIT 20") == 0) {
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(paths, json_string((const char *)sqlite3_column_text(st, 0) ?: ""));
        sqlite3_finalize(st);
    }
    cit_error_clear();
    json_object_set_new(det, "invalid_metadata_paths", paths);
    *fires = !ok || fk != 0 || bad_meta != 0 || bad_events != 0 || bad_intents != 0 || orphans != 0;
    return 0;
}

static int detect_rotation(cit_ctx *ctx, int days, json_t *det, bool *fires) {
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    if (days < 0)
        days = ROTATION_DEFAULT_DAYS;
    sqlite3_stmt *st;
    if ((r = cit__store_prepare(s, &st,
                                "SELECT o.path, o.version, v.created_at FROM objects o JOIN object_versions v ON "
                                "v.object_id = o.id AND v.version = o.version WHERE o.kind = 'key' AND o.status = "
                                "'active' AND v.created_at <= ? ORDER BY v.created_at")) < 0)
        return r;
    int64_t cutoff = (int64_t)time(NULL) - (int64_t)days * 86400;
    sqlite3_bind_int64(st, 1, cutoff);
    json_t *keys = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        char when[32];
        int64_t at = sqlite3_column_int64(st, 2);
        cit_time_rfc3339(when, sizeof when, at);
        json_array_append_new(keys, json_pack("{s:s,s:i,s:s,s:I}", "path", (const char *)sqlite3_column_text(st, 0),
                                              "version", sqlite3_column_int(st, 1), "created", when, "age_days",
                                              (json_int_t)((time(NULL) - at) / 86400)));
    }
    sqlite3_finalize(st);
    json_object_set_new(det, "check", json_sprintf("active keys whose current version is older than %d days", days));
    json_object_set_new(det, "rotation_age_days", json_integer(days));
    json_object_set_new(det, "keys", keys);
    *fires = json_array_size(keys) > 0;
    return 0;
}

/* ---- the playbooks ---- */

static const char *const cleared_steps[] = {
    "Confirm. The detection compares the storage primary key at 0x81000002 with the name recorded at init, and the "
    "endorsement key with the recorded one: TPM2_Clear keeps the endorsement key, so a changed storage key with the "
    "same endorsement key is a clear, and a different endorsement key is another TPM.",
    "If it is another TPM (state tpm-replaced): change nothing; point the workspace at its own TPM (--tcti / "
    "TPM_TCTI, or restore its .tpmstate file). The keys still work there.",
    "If it was cleared: `repair plan`, then `repair apply`. Every object wrapped by the old storage key is marked "
    "retired with the reason tpm-cleared (rows, public keys and history stay, so old signatures still verify); a new "
    "storage key is made and recorded. Attestation keys live under the endorsement key and survive.",
    "Make new keys and secrets: `key create` (or `key rotate` is not possible: the old version cannot load), seal "
    "secrets again from your copies, define NV indices again, and publish the new public keys where the old ones "
    "were registered. Ed25519 keys with a backup come back with `key restore`.",
    "After the retention period, `gc apply` removes the retired rows.",
    NULL};
static const char *const cleared_cmds[] = {"citadel tpm recover show tpm-cleared", "citadel tpm repair plan",
                                           "citadel tpm repair apply",
                                           "citadel tpm repair apply --accept-cleared   # only for a workspace that "
                                           "recorded no endorsement key, when you know the TPM was cleared",
                                           "citadel tpm key create PATH", "citadel tpm key restore PATH --input BACKUP",
                                           "citadel tpm gc plan", NULL};

static const char *const handle_steps[] = {
    "Scan: `repair scan` lists every mismatch with its kind: missing-handle (a persistent key evicted behind "
    "citadel's back), handle-mismatch (its handle holds another key), nv-missing, unloadable (the TPM refuses a "
    "wrapped blob), orphan-handle / orphan-nv (in citadel's ranges, named by no object), unfinished-command (an "
    "intent left by a command that was killed or failed half-way).",
    "Plan: `repair plan` lists exactly the operations `repair apply` performs, in order.",
    "Apply: keys are re-persisted from their stored blobs when they still load (nothing is lost); otherwise they are "
    "retired with the reason. Orphans are evicted only when the store proves they are citadel's; others need "
    "--include-foreign, and the plan says which. Unfinished commands are rolled forward or back.",
    "Check: `repair scan` is clean and `doctor` reports the store and the TPM consistent.", NULL};
static const char *const handle_cmds[] = {"citadel tpm repair scan", "citadel tpm repair plan",
                                          "citadel tpm repair apply",
                                          "citadel tpm repair apply --include-foreign   # also evict handles no "
                                          "object proves are citadel's",
                                          "citadel tpm doctor", NULL};

static const char *const drift_steps[] = {
    "List the objects the active profile would refuse now (the detection).",
    "Either bring them in line: make a new key with an allowed algorithm (`key create`), move paths under the "
    "profile's prefix (`object rename`), retire the old objects (`object retire`);",
    "or choose the profile that fits what you have (`profile set NAME`).", NULL};
static const char *const drift_cmds[] = {"citadel tpm profile show", "citadel tpm key create PATH --algorithm ALG",
                                         "citadel tpm object rename OLD NEW", "citadel tpm object retire PATH",
                                         "citadel tpm profile set NAME", NULL};

static const char *const boot_steps[] = {
    "Run `recover show boot-change`: every PCR-bound object with the PCRs that moved and a next step.",
    "If the change is expected: approve the new state for authorized identities (`policy approve`), seal secrets "
    "again, create PCR-bound keys again.",
    "If it is not expected: restore the old boot state; nothing needs to change in the workspace.", NULL};
static const char *const boot_cmds[] = {"citadel tpm recover show boot-change", "citadel tpm pcr baseline diff NAME",
                                        "citadel tpm policy approve --authority NAME --pcr LIST",
                                        "citadel tpm secret seal PATH --input FILE --pcr LIST", NULL};

static const char *const corrupt_steps[] = {
    "Stop writing: do not run commands that change the workspace until it is resolved.",
    "Copy the store as it is (store.db, store.db-wal, store.db-shm and store.db.tpmstate) somewhere safe.",
    "If SQLite reports damage: restore from a `workspace export` backup with `workspace import` into a new store "
    "path, or let sqlite3's `.recover` salvage the rows into a new file and check it with this playbook.",
    "If only metadata is invalid JSON: the detection names the objects; restore them from the backup.",
    "Then `repair scan` and `doctor`: the TPM side must agree with the restored store.", NULL};
static const char *const corrupt_cmds[] = {"citadel tpm recover show metadata-corruption",
                                           "cp -p store.db store.db-wal store.db-shm store.db.tpmstate BACKUP_DIR/",
                                           "citadel tpm --store-path NEW.db workspace import BACKUP.json",
                                           "sqlite3 store.db .recover | sqlite3 recovered.db", "citadel tpm doctor",
                                           NULL};

static const char *const rotation_steps[] = {
    "List the keys whose current version is older than the rotation age (the detection; `--age DAYS`, default 365).",
    "Rotate each: `key rotate PATH` makes a new version; signatures made by older versions still verify "
    "(`key verify` reports the version), a persistent key keeps its handle.",
    "Publish the new public key (`key export-pub`) wherever the old one is trusted.",
    "Retire keys that are no longer used instead (`object retire`); `gc` removes them after the retention period.",
    NULL};
static const char *const rotation_cmds[] = {"citadel tpm recover show key-rotation --age 90",
                                            "citadel tpm key rotate PATH", "citadel tpm key export-pub PATH --output PEM",
                                            "citadel tpm object retire PATH", NULL};

static const playbook playbooks[] = {
    {"tpm-cleared", "the TPM was cleared: the storage key and the keys wrapped by it are gone", detect_cleared,
     cleared_steps, cleared_cmds},
    {"handle-mismatch", "persistent handles, NV indices or wrapped blobs disagree with the store", detect_handles,
     handle_steps, handle_cmds},
    {"profile-drift", "objects the active profile would not allow now (algorithm, path prefix)", detect_drift,
     drift_steps, drift_cmds},
    {"boot-change", "PCR-bound objects that the boot state now locks", detect_boot, boot_steps, boot_cmds},
    {"metadata-corruption", "the store fails SQLite's integrity check or holds invalid metadata", detect_corruption,
     corrupt_steps, corrupt_cmds},
    {"key-rotation", "keys whose current version is older than the rotation age", detect_rotation, rotation_steps,
     rotation_cmds},
};

static const playbook *find_playbook(const char *name) {
    for (size_t i = 0; i < ELEMENTSOF(playbooks); i++)
        if (strcmp(playbooks[i].name, name) == 0)
            return &playbooks[i];
    return NULL;
}

static json_t *strings(const char *const *l) {
    json_t *a = json_array();
    for (; *l; l++)
        json_array_append_new(a, json_string(*l));
    return a;
}

/* Runs a detection: fires true/false, or null with the error when it could not run. */
static json_t *run_detection(cit_ctx *ctx, const playbook *p, int days, bool *fires) {
    json_t *det = json_object();
    *fires = false;
    int r = p->detect(ctx, days, det, fires);
    if (r < 0) {
        json_object_set_new(det, "error", cit_error_to_json(cit_error_last()));
        json_object_set_new(det, "fires", json_null());
        cit_error_clear();
        cit__key_cache_drop(ctx);
        return det;
    }
    json_object_set_new(det, "fires", json_boolean(*fires));
    return det;
}

static const char *const detect_ops[] = {"TPM2_ReadPublic (storage key, persistent objects)",
                                         "TPM2_CreatePrimary (endorsement key, ECC P-256)",
                                         "TPM2_GetCapability (handles)", "TPM2_Load and TPM2_FlushContext (each key)",
                                         "TPM2_PCR_Read", NULL};

_public_ int cit_recover_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "run every playbook's detection (reads only)", detect_ops);
    if (r != 0)
        return r < 0 ? r : 0;
    json_t *list = json_array();
    char *text = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&text, &tl);
    int firing = 0;
    for (size_t i = 0; i < ELEMENTSOF(playbooks); i++) {
        bool fires = false;
        json_t *det = run_detection(ctx, &playbooks[i], -1, &fires);
        json_t *fj = json_object_get(det, "fires");
        json_t *e = json_pack("{s:s,s:s,s:O}", "name", playbooks[i].name, "summary", playbooks[i].summary, "fires", fj);
        if (json_object_get(det, "error"))
            json_object_set(e, "error", json_object_get(json_object_get(det, "error"), "message"));
        firing += fires;
        if (f)
            fprintf(f, "%-20s %-10s %s\n", playbooks[i].name,
                    json_is_null(fj) ? "unknown" : fires ? "FIRES" : "ok", playbooks[i].summary);
        json_array_append_new(list, e);
        json_decref(det);
    }
    if (f) {
        fprintf(f, "\n%d playbook(s) fire. Details: `citadel tpm recover show NAME`.\n", firing);
        fclose(f);
    }
    *out = json_pack("{s:o,s:i}", "playbooks", list, "firing", firing);
    json_object_set_new(*out, "_text", json_string(text ? text : ""));
    free(text);
    return 0;
}

_public_ int cit_recover_show(json_t **out, cit_ctx *ctx, const char *name, int age_days, bool *fires) {
    cit_error_clear();
    const playbook *p = name ? find_playbook(name) : NULL;
    if (!p) {
        cit_error_set(CIT_E_USAGE, "unknown playbook: %s", name ? name : "");
        char names[300] = "";
        size_t off = 0;
        for (size_t i = 0; i < ELEMENTSOF(playbooks); i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "", playbooks[i].name);
        cit_error_cause("playbooks: %s", names);
        cit_error_step("run `citadel tpm recover list` to see them with their state");
        return CIT_E_USAGE;
    }
    if (strcmp(p->name, "boot-change") == 0) { /* the report as it always was */
        int r = cit_recover_boot_change(out, ctx);
        if (r == 0 && fires)
            *fires = json_integer_value(json_object_get(*out, "locked")) > 0;
        return r;
    }
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "run the playbook's detection (reads only)", detect_ops);
    if (r != 0)
        return r < 0 ? r : 0;
    bool f = false;
    json_t *det = run_detection(ctx, p, age_days, &f);
    json_t *j = json_pack("{s:s,s:s,s:O,s:o,s:o,s:o}", "name", p->name, "summary", p->summary, "fires",
                          json_object_get(det, "fires"), "detection", det, "steps", strings(p->steps), "commands",
                          strings(p->commands));
    char *text = NULL;
    size_t tl = 0;
    FILE *fp = open_memstream(&text, &tl);
    if (fp) {
        fprintf(fp, "%s: %s\n\nDetection: %s\n  %s\n", p->name, p->summary,
                json_string_value(json_object_get(det, "check")) ?: "",
                json_is_null(json_object_get(det, "fires")) ? "could not run" : f ? "FIRES" : "does not fire");
        json_t *err = json_object_get(det, "error");
        if (err)
            fprintf(fp, "  %s\n", json_string_value(json_object_get(err, "message")));
        const char *k;
        json_t *v;
        json_object_foreach(det, k, v) {
            if (!strcmp(k, "check") || !strcmp(k, "fires") || !strcmp(k, "error"))
                continue;
            char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            fprintf(fp, "  %s: %s\n", k, dump ? dump : "");
            free(dump);
        }
        fprintf(fp, "\nSteps:\n");
        for (size_t i = 0; p->steps[i]; i++)
            fprintf(fp, "  %zu. %s\n", i + 1, p->steps[i]);
        fprintf(fp, "\nCommands:\n");
        for (size_t i = 0; p->commands[i]; i++)
            fprintf(fp, "  %s\n", p->commands[i]);
        fclose(fp);
    }
    json_object_set_new(j, "_text", json_string(text ? text : ""));
    free(text);
    cit_error_clear();
    if (fires)
        *fires = f;
    *out = j;
    return 0;
}
