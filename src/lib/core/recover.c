/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `recover show boot-change`: after a firmware, bootloader or kernel change, which PCR-bound
 * objects no longer open, which PCRs moved (bound value and value now), and what to do for each.
 * Reads the store and the PCRs only; the TPM stays the judge at use (this is a forecast from
 * the same values the policies were built from).
 */
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/keys.h"
#include "crypto/crypto.h"
#include "ctx.h"
#include "policy/policy.h"

/* The PCR values now, each bank read once for the whole report. */
typedef struct pcr_now {
    cit_tpm *t;
    int n;
    TPMI_ALG_HASH alg[8];
    char *v[8][24];
} pcr_now;

static int pcr_now_get(pcr_now *c, TPMI_ALG_HASH alg, int idx, const char **out) {
    int b = 0;
    while (b < c->n && c->alg[b] != alg)
        b++;
    if (b == c->n) {
        if (c->n == 8)
            return cit_error_set(CIT_E_INTERNAL, "too many PCR banks");
        int r = cit__pcr_read(c->t, alg, 0xffffffu, c->v[b]);
        if (r < 0)
            return r;
        c->alg[c->n++] = alg;
    }
    *out = c->v[b][idx];
    return 0;
}

static void pcr_now_free(pcr_now *c) {
    for (int b = 0; b < c->n; b++)
        cit__pcr_values_free(c->v[b]);
}

/* Compares [{index, bank, value}] entries with the PCRs now: changed entries appended to ch. */
static int compare_entries(pcr_now *t, const json_t *pcrs, json_t *ch) {
    size_t i;
    json_t *e;
    json_array_foreach(pcrs, i, e) {
        TPMI_ALG_HASH alg;
        const char *bank = json_string_value(json_object_get(e, "bank")) ?: "sha256";
        int idx = (int)json_integer_value(json_object_get(e, "index"));
        const char *want = json_string_value(json_object_get(e, "value"));
        if (!want || idx < 0 || idx > 23 || cit__hash_from_name(bank, &alg) < 0)
            continue;
        const char *now = NULL;
        int r = pcr_now_get(t, alg, idx, &now);
        if (r < 0)
            return r;
        if (now && strcmp(now, want) != 0)
            json_array_append_new(ch, json_pack("{s:i,s:s,s:s,s:s}", "pcr", idx, "bank", bank, "bound", want, "now", now));
    }
    return 0;
}

/* The PCR values now for an authorized policy's pcr list, and whether an approval covers them. */
static int authorized_state(cit_ctx *ctx, pcr_now *t, const json_t *req, bool *approved) {
    json_t *pcrs = json_deep_copy(json_object_get(req, "pcr"));
    size_t i;
    json_t *e;
    int r = 0;
    json_array_foreach(pcrs, i, e) {
        TPMI_ALG_HASH alg;
        int idx = (int)json_integer_value(json_object_get(e, "index"));
        const char *now = NULL;
        if (idx < 0 || idx > 23 || cit__hash_from_name(json_string_value(json_object_get(e, "bank")) ?: "sha256", &alg) < 0)
            continue;
        if ((r = pcr_now_get(t, alg, idx, &now)) < 0)
            break;
        json_object_set_new(e, "value", json_string(now ? now : ""));
    }
    TPM2B_DIGEST d, ref;
    if (r == 0)
        r = cit__policy_pcr_digest(pcrs, &d);
    if (r == 0)
        r = cit__policy_approval_ref(pcrs, &ref);
    json_decref(pcrs);
    if (r < 0)
        return r;
    char *dh = cit_hex_encode(d.buffer, d.size), *rh = cit_hex_encode(ref.buffer, ref.size);
    sqlite3_stmt *st;
    *approved = false;
    r = cit__store_prepare(ctx->store, &st,
                           "SELECT 1 FROM approvals WHERE authority_name = ? AND policy_digest = ? AND policy_ref = ?");
    if (r == 0) {
        sqlite3_bind_text(st, 1, json_string_value(json_object_get(json_object_get(req, "authorized_by"), "name")) ?: "",
                          -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, dh, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, rh, -1, SQLITE_STATIC);
        *approved = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    free(dh);
    free(rh);
    return r;
}

static const char *next_step(const cit_object *o, bool authorized, const char *authority, char *buf, size_t len) {
    if (authorized)
        snprintf(buf, len, "if the change is expected: `citadel tpm policy approve --authority %s --pcr LIST`",
                 authority ? authority : "AUTH");
    else if (strcmp(o->kind, "secret") == 0)
        snprintf(buf, len,
                 "if the change is expected, seal it again from your copy: `citadel tpm secret delete %s`, then "
                 "`secret seal %s --input FILE --pcr LIST`; else restore the old boot state",
                 o->path, o->path);
    else
        snprintf(buf, len,
                 "if the change is expected, create the key again bound to the new state (its old signatures "
                 "still verify with `key verify`), or bind keys to an authority (`identity init --authorized-by`) "
                 "so an update is an approval");
    return buf;
}

_public_ int cit_recover_boot_change(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    static const char *const ops[] = {"TPM2_PCR_Read", NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "show which PCR-bound objects a boot change locked (reads only)", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    pcr_now now = {0};
    if ((r = cit__ctx_tpm(ctx, &now.t)) < 0)
        return r;
    pcr_now *t = &now;
    cit_object *list = NULL;
    size_t n = 0;
    if ((r = cit__object_list(s, NULL, &list, &n)) < 0)
        return r;
    json_t *objs = json_array();
    int locked = 0, bound = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        if (strcmp(list[i].kind, "policy") == 0 || strcmp(list[i].kind, "baseline") == 0)
            continue;
        json_t *meta = json_loads(list[i].metadata ? list[i].metadata : "{}", 0, NULL);
        json_t *legacy = json_object_get(meta, "policy"); /* sealed secrets bound with --pcr */
        json_t *req = json_object_get(json_object_get(meta, "policy_json"), "requires");
        json_t *changed = json_array();
        bool is_bound = false, authorized = false, open_now = true;
        const char *authority = NULL;
        if (json_is_object(legacy) && json_object_get(legacy, "pcrs")) {
            is_bound = true;
            json_t *entries = json_array();
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(legacy, "pcrs"), k, v) {
                uint32_t idx;
                if (cit_parse_u32(k, &idx) == 0)
                    json_array_append_new(entries, json_pack("{s:i,s:s,s:O}", "index", (int)idx, "bank",
                                                             json_string_value(json_object_get(legacy, "bank")) ?: "sha256",
                                                             "value", v));
            }
            r = compare_entries(t, entries, changed);
            json_decref(entries);
        } else if (req && json_object_get(req, "authorized_by")) {
            is_bound = authorized = true;
            authority = json_string_value(json_object_get(json_object_get(req, "authorized_by"), "authority"));
            bool ok = false;
            r = authorized_state(ctx, t, req, &ok);
            open_now = ok;
        } else if (req && (json_object_get(req, "pcr") || json_object_get(req, "any_of"))) {
            is_bound = true;
            r = compare_entries(t, json_object_get(req, "pcr"), changed);
            json_t *any = json_object_get(req, "any_of");
            if (r == 0 && any) {
                bool some = false;
                size_t bi;
                json_t *b;
                json_array_foreach(any, bi, b) {
                    json_t *c = json_array();
                    if (compare_entries(t, json_object_get(b, "pcr"), c) == 0 && json_array_size(c) == 0)
                        some = true;
                    json_decref(c);
                }
                if (!some) {
                    open_now = false;
                    json_array_append_new(changed, json_pack("{s:s}", "any_of", "no alternative matches the PCRs now"));
                }
            }
        }
        if (json_array_size(changed))
            open_now = false;
        if (r == 0 && is_bound) {
            bound++;
            char step[512] = "";
            json_t *j = json_pack("{s:s,s:s,s:s,s:o}", "path", list[i].path, "kind", list[i].kind, "state",
                                  open_now ? "opens" : "locked", "changed", changed);
            changed = NULL;
            if (authorized)
                json_object_set_new(j, "binding", json_sprintf("authorized by %s", authority ? authority : "?"));
            if (!open_now) {
                locked++;
                json_object_set_new(j, "next_step",
                                    json_string(next_step(&list[i], authorized, authority, step, sizeof step)));
            }
            json_array_append_new(objs, j);
        }
        json_decref(changed);
        json_decref(meta);
    }
    cit__object_list_free(list, n);
    pcr_now_free(&now);
    if (r < 0) {
        json_decref(objs);
        return r;
    }
    /* a readable report */
    char *text = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&text, &tl);
    if (f) {
        fprintf(f, "%d PCR-bound object(s), %d locked by the PCR values now.\n", bound, locked);
        size_t i;
        json_t *o;
        json_array_foreach(objs, i, o) {
            fprintf(f, "\n%s (%s): %s\n", json_string_value(json_object_get(o, "path")),
                    json_string_value(json_object_get(o, "kind")), json_string_value(json_object_get(o, "state")));
            size_t ci;
            json_t *c;
            json_array_foreach(json_object_get(o, "changed"), ci, c) {
                if (json_object_get(c, "pcr"))
                    fprintf(f, "  PCR %lld (%s): bound %.16s..., now %.16s...\n", json_integer_value(json_object_get(c, "pcr")),
                            json_string_value(json_object_get(c, "bank")), json_string_value(json_object_get(c, "bound")),
                            json_string_value(json_object_get(c, "now")));
                else
                    fprintf(f, "  %s\n", json_string_value(json_object_get(c, "any_of")));
            }
            if (json_object_get(o, "binding") && strcmp(json_string_value(json_object_get(o, "state")), "locked") == 0)
                fprintf(f, "  no approval by the authority covers the PCR values now\n");
            if (json_object_get(o, "next_step"))
                fprintf(f, "  next: %s\n", json_string_value(json_object_get(o, "next_step")));
        }
        fclose(f);
    }
    *out = json_pack("{s:i,s:i,s:o,s:s}", "bound", bound, "locked", locked, "objects", objs, "_text", text ? text : "");
    free(text);
    return 0;
}
