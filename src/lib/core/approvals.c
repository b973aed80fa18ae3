/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sign approvals: under a profile with approval_required (built-in: two-person), a signature is
 * made only for a request an operator approved. `key sign` without --approval records a
 * pending request (key, key version, digest) and stops with TPM0055; `approval approve ID`
 * decides it; `key sign --approval ID` over the same input then signs once. Requests, decisions
 * and who made them are kept in the store (table sign_approvals) and logged. The daemon (tpmd)
 * uses the same functions behind its approval endpoints.
 */
#include <string.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/keys.h"
#include "core/profiles.h"
#include "crypto/crypto.h"
#include "ctx.h"

static json_t *row_json(sqlite3_stmt *st) {
    char req[32] = "", dec[32] = "";
    cit_time_rfc3339(req, sizeof req, sqlite3_column_int64(st, 7));
    if (sqlite3_column_type(st, 9) != SQLITE_NULL)
        cit_time_rfc3339(dec, sizeof dec, sqlite3_column_int64(st, 9));
#define TXT(i) ((const char *)sqlite3_column_text(st, i))
    json_t *j = json_pack("{s:I,s:s,s:i,s:s,s:s,s:s,s:s,s:s}", "approval", (json_int_t)sqlite3_column_int64(st, 0),
                          "path", TXT(1) ?: "", "key_version", sqlite3_column_int(st, 2), "digest_algorithm",
                          TXT(3) ?: "", "digest", TXT(4) ?: "", "status", TXT(5) ?: "", "requested_by", TXT(6) ?: "",
                          "requested", req);
    if (TXT(8))
        json_object_set_new(j, "decided_by", json_string(TXT(8)));
    if (dec[0])
        json_object_set_new(j, "decided", json_string(dec));
    if (TXT(10))
        json_object_set_new(j, "reason", json_string(TXT(10)));
    json_object_set_new(j, "_object_id", json_integer(sqlite3_column_int64(st, 11)));
#undef TXT
    return j;
}

#define COLS "id, object_path, key_version, digest_alg, digest, status, requested_by, requested_at, decided_by, " \
             "decided_at, reason, object_id"

static int get_row(cit_store *s, int64_t id, json_t **out) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, "SELECT " COLS " FROM sign_approvals WHERE id = ?");
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = row_json(st);
    else {
        r = cit_error_set(CIT_E_OBJECT_NOT_FOUND, "no approval request %lld", (long long)id);
        cit_error_step("run `citadel tpm approval list` to see the requests");
    }
    sqlite3_finalize(st);
    return r;
}

int cit__approval_gate(cit_ctx *ctx, const cit_object *o, TPMI_ALG_HASH halg, const uint8_t *md, size_t mdlen,
                       int64_t approval) {
    const cit_profile_def *p = cit__profile_active(ctx);
    if (!p->approval_required) {
        if (approval > 0) {
            cit_error_set(CIT_E_USAGE, "the workspace's profile (%s) needs no approvals", p->name);
            cit_error_cause("--approval is for profiles with approval_required (two-person)");
            return CIT_E_USAGE;
        }
        return 0;
    }
    cit_store *s = ctx->store;
    char *hex = cit_hex_encode(md, mdlen);
    int r = 0;
    if (approval <= 0) {
        /* record a pending request and stop */
        sqlite3_stmt *st = NULL;
        int64_t id = 0;
        r = cit__store_begin(s);
        if (r == 0)
            r = cit__store_event(s, "approval.request", o->path, o->id, "pending", NULL);
        if (r == 0)
            r = cit__store_prepare(s, &st,
                                   "INSERT INTO sign_approvals(object_id, object_path, key_version, digest_alg, digest, "
                                   "requested_by, requested_at) VALUES(?, ?, ?, ?, ?, ?, ?)");
        if (r == 0) {
            sqlite3_bind_int64(st, 1, o->id);
            sqlite3_bind_text(st, 2, o->path, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 3, o->version);
            sqlite3_bind_text(st, 4, cit__hash_name(halg), -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 5, hex, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 6, cit__store_actor(s), -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 7, (int64_t)time(NULL));
            if (sqlite3_step(st) != SQLITE_DONE)
                r = cit__store_error(s, "cannot record the approval request");
            id = sqlite3_last_insert_rowid(s->db);
            sqlite3_finalize(st);
        }
        if (r == 0)
            r = cit__store_commit(s);
        else
            cit__store_rollback(s);
        if (r == 0) {
            r = cit_error_set(CIT_E_APPROVAL_REQUIRED, "signing with %s needs an approval: request %lld is pending",
                              o->path, (long long)id);
            cit_error_cause("the workspace's profile (%s) requires an approved request for every signature", p->name);
            cit_error_context("approval", "%lld", (long long)id);
            cit_error_context("path", "%s", o->path);
            cit_error_step("an operator approves it: `citadel tpm approval approve %lld`", (long long)id);
            cit_error_step("then sign the same input again with `--approval %lld`", (long long)id);
        }
        free(hex);
        return r;
    }
    json_t *row = NULL;
    r = get_row(s, approval, &row);
    if (r == 0) {
        const char *status = json_string_value(json_object_get(row, "status"));
        if (strcmp(json_string_value(json_object_get(row, "path")), o->path) != 0 ||
            json_integer_value(json_object_get(row, "key_version")) != o->version ||
            json_integer_value(json_object_get(row, "_object_id")) != o->id) {
            r = cit_error_set(CIT_E_APPROVAL_REQUIRED, "approval %lld is for another key", (long long)approval);
            cit_error_cause("it approves %s version %lld", json_string_value(json_object_get(row, "path")),
                            json_integer_value(json_object_get(row, "key_version")));
        } else if (strcmp(json_string_value(json_object_get(row, "digest")), hex) != 0 ||
                   strcmp(json_string_value(json_object_get(row, "digest_algorithm")), cit__hash_name(halg)) != 0) {
            r = cit_error_set(CIT_E_APPROVAL_REQUIRED, "approval %lld is for another input", (long long)approval);
            cit_error_cause("the approved %s digest is %.16s..., this input's is %.16s...",
                            json_string_value(json_object_get(row, "digest_algorithm")),
                            json_string_value(json_object_get(row, "digest")), hex);
        } else if (strcmp(status, "approved") != 0) {
            r = cit_error_set(CIT_E_APPROVAL_REQUIRED, "approval %lld is %s", (long long)approval, status);
            if (strcmp(status, "pending") == 0)
                cit_error_step("an operator approves it: `citadel tpm approval approve %lld`", (long long)approval);
            else if (strcmp(status, "used") == 0)
                cit_error_cause("an approval signs once; sign again without --approval to request another");
            else
                cit_error_cause("denied by %s%s%s", json_string_value(json_object_get(row, "decided_by")) ?: "?",
                                json_object_get(row, "reason") ? ": " : "",
                                json_string_value(json_object_get(row, "reason")) ?: "");
        }
        if (r < 0) {
            cit_error_context("approval", "%lld", (long long)approval);
            cit_error_context("path", "%s", o->path);
        }
    }
    json_decref(row);
    free(hex);
    return r;
}

int cit__approval_consume(cit_ctx *ctx, int64_t approval) {
    if (approval <= 0)
        return 0;
    cit_store *s = ctx->store;
    sqlite3_stmt *st;
    int r = cit__store_begin(s);
    if (r == 0)
        r = cit__store_prepare(s, &st, "UPDATE sign_approvals SET status = 'used', used_at = ? WHERE id = ? AND status = 'approved'");
    if (r == 0) {
        sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
        sqlite3_bind_int64(st, 2, approval);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = cit__store_error(s, "cannot mark the approval used");
        else if (sqlite3_changes(s->db) != 1)
            r = cit_error_set(CIT_E_APPROVAL_REQUIRED, "approval %lld was used meanwhile", (long long)approval);
        sqlite3_finalize(st);
    }
    if (r == 0) {
        json_t *d = json_pack("{s:I}", "approval", (json_int_t)approval);
        r = cit__store_event(s, "approval.use", NULL, 0, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    else
        cit__store_rollback(s);
    return r;
}

_public_ int cit_approval_list(json_t **out, cit_ctx *ctx, const char *status) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "list sign approval requests (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    if (status && strcmp(status, "pending") && strcmp(status, "approved") && strcmp(status, "denied") &&
        strcmp(status, "used")) {
        cit_error_set(CIT_E_USAGE, "unknown status: %s", status);
        cit_error_cause("statuses: pending, approved, denied, used");
        return CIT_E_USAGE;
    }
    sqlite3_stmt *st;
    r = cit__store_prepare(s, &st, "SELECT " COLS " FROM sign_approvals WHERE ?1 IS NULL OR status = ?1 ORDER BY id");
    if (r < 0)
        return r;
    if (status)
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    json_t *a = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *j = row_json(st);
        json_object_del(j, "digest");
        json_array_append_new(a, j);
    }
    sqlite3_finalize(st);
    *out = json_pack("{s:o,s:I}", "approvals", a, "count", (json_int_t)json_array_size(a));
    return 0;
}

_public_ int cit_approval_show(json_t **out, cit_ctx *ctx, int64_t id) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "show a sign approval request (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    return get_row(s, id, out);
}

_public_ int cit_approval_decide(json_t **out, cit_ctx *ctx, int64_t id, bool approve, const char *reason) {
    cit_error_clear();
    if (reason && strlen(reason) > 1024) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "the reason is longer than 1024 characters");
        return CIT_E_INPUT_TOO_LARGE;
    }
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, approve ? "approve a sign request (store only)"
                                                         : "deny a sign request (store only)",
                                   NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    json_t *row = NULL;
    if ((r = get_row(s, id, &row)) < 0)
        return r;
    const char *status = json_string_value(json_object_get(row, "status"));
    if (strcmp(status, "pending") != 0) {
        r = cit_error_set(CIT_E_APPROVAL_REQUIRED, "request %lld is already %s", (long long)id, status);
        cit_error_cause("a request is decided once");
        json_decref(row);
        return r;
    }
    sqlite3_stmt *st;
    r = cit__store_begin(s);
    if (r == 0 && strcmp(cit__store_actor(s), json_string_value(json_object_get(row, "requested_by")) ?: "") == 0) {
        r = cit_error_set(CIT_E_APPROVAL_REQUIRED, "%s asked for request %lld and cannot decide it too", cit__store_actor(s),
                          (long long)id);
        cit_error_cause("under two-person, the approver is another operator than the requester");
        cit_error_step("another operator decides it (on a shared account, each sets CITADEL_ACTOR to their name)");
    }
    if (r == 0) {
        json_t *d = json_pack("{s:I,s:s?}", "approval", (json_int_t)id, "reason", reason);
        r = cit__store_event(s, approve ? "approval.approve" : "approval.deny",
                             json_string_value(json_object_get(row, "path")), 0, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_prepare(s, &st,
                               "UPDATE sign_approvals SET status = ?, decided_by = ?, decided_at = ?, reason = ? "
                               "WHERE id = ? AND status = 'pending'");
    if (r == 0) {
        sqlite3_bind_text(st, 1, approve ? "approved" : "denied", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, cit__store_actor(s), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
        if (reason)
            sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, id);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = cit__store_error(s, "cannot record the decision");
        else if (sqlite3_changes(s->db) != 1)
            r = cit_error_set(CIT_E_APPROVAL_REQUIRED, "request %lld was decided meanwhile", (long long)id);
        sqlite3_finalize(st);
    }
    if (r == 0)
        r = cit__store_commit(s);
    else
        cit__store_rollback(s);
    json_decref(row);
    if (r == 0)
        r = get_row(s, id, out);
    return r;
}
