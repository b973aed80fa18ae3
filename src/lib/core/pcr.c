/* SPDX-License-Identifier: Apache-2.0 */
/* PCRs (show, extend, reset) and PCR baselines (saved values, compared later). */
#include <string.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/keys.h"
#include "crypto/crypto.h"
#include "ctx.h"
#include "profiles.h"

#define PCR_COUNT 24
#define DATA_MAX (1024u * 1024)

static int bank_parse(const char *name, TPMI_ALG_HASH *out) {
    const char *b = name ? name : "sha256";
    if (strcmp(b, "sha1") != 0 && strcmp(b, "sha256") != 0 && strcmp(b, "sha384") != 0 &&
        strcmp(b, "sha512") != 0) {
        cit_error_set(CIT_E_BANK_UNSUPPORTED, "unknown PCR bank: %s", b);
        cit_error_cause("banks are sha1, sha256, sha384 and sha512");
        return CIT_E_BANK_UNSUPPORTED;
    }
    return cit__hash_from_name(b, out);
}

/* "0,7,11" or "0-7,11" into a 24-bit mask; NULL or "" = all. */
int cit__pcr_parse_list(const char *s, uint32_t *mask) {
    *mask = 0;
    if (!s || !*s) {
        *mask = (1u << PCR_COUNT) - 1;
        return 0;
    }
    const char *p = s;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p)
            goto bad;
        if (*end == '-') {
            const char *q = end + 1;
            b = strtol(q, &end, 10);
            if (end == q)
                goto bad;
        }
        if (a < 0 || b >= PCR_COUNT || a > b)
            goto bad;
        for (long i = a; i <= b; i++)
            *mask |= 1u << i;
        if (*end == ',')
            end++;
        else if (*end)
            goto bad;
        p = end;
    }
    return 0;
bad:
    cit_error_set(CIT_E_PCR_INVALID, "invalid PCR list: %s", s);
    cit_error_cause("use indices 0-23 separated by commas, ranges allowed (0,7,11 or 0-7)");
    return CIT_E_PCR_INVALID;
}

/* Reads the PCRs in mask from bank into values[24] (hex strings, caller frees). */
int cit__pcr_read(cit_tpm *t, TPMI_ALG_HASH bank, uint32_t mask, char *values[PCR_COUNT]) {
    uint32_t left = mask;
    while (left) {
        TPML_PCR_SELECTION sel = {.count = 1};
        sel.pcrSelections[0].hash = bank;
        sel.pcrSelections[0].sizeofSelect = 3;
        for (int i = 0; i < PCR_COUNT; i++)
            if (left & (1u << i))
                sel.pcrSelections[0].pcrSelect[i / 8] |= (uint8_t)(1u << (i % 8));
        TPML_PCR_SELECTION *got = NULL;
        TPML_DIGEST *vals = NULL;
        TSS2_RC rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, NULL, &got, &vals);
        if (rc != TSS2_RC_SUCCESS)
            return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "TPM2_PCR_Read failed");
        /* the TPM answers at most 8 digests per call and says which ones in got */
        uint32_t done = 0;
        uint32_t k = 0;
        if (got->count == 1)
            for (int i = 0; i < PCR_COUNT && k < vals->count; i++)
                if (got->pcrSelections[0].pcrSelect[i / 8] & (1u << (i % 8))) {
                    values[i] = cit_hex_encode(vals->digests[k].buffer, vals->digests[k].size);
                    done |= 1u << i;
                    k++;
                }
        Esys_Free(got);
        Esys_Free(vals);
        if (!done) {
            cit_error_set(CIT_E_BANK_UNSUPPORTED, "the TPM has no active %s PCR bank", cit__hash_name(bank));
            cit_error_step("run `citadel tpm capabilities` to see the active banks");
            return CIT_E_BANK_UNSUPPORTED;
        }
        left &= ~done;
    }
    return 0;
}

void cit__pcr_values_free(char *values[PCR_COUNT]) {
    for (int i = 0; i < PCR_COUNT; i++) {
        free(values[i]);
        values[i] = NULL;
    }
}

static json_t *values_json(char *values[PCR_COUNT], uint32_t mask) {
    json_t *a = json_array();
    for (int i = 0; i < PCR_COUNT; i++)
        if ((mask & (1u << i)) && values[i])
            json_array_append_new(a, json_pack("{s:i,s:s}", "index", i, "value", values[i]));
    return a;
}

_public_ int cit_pcr_show(json_t **out, cit_ctx *ctx, const char *bank, const char *indices) {
    cit_error_clear();
    TPMI_ALG_HASH alg;
    uint32_t mask;
    int r = bank_parse(bank, &alg);
    if (r == 0)
        r = cit__pcr_parse_list(indices, &mask);
    if (r < 0)
        return r;
    cit_store *s;
    cit_tpm *t;
    static const char *const ops[] = {"TPM2_PCR_Read", NULL};
    r = cit__ctx_store_or_plan(ctx, &s, out, "read PCR values (reads only)", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    char *values[PCR_COUNT] = {0};
    r = cit__pcr_read(t, alg, mask, values);
    if (r == 0)
        *out = json_pack("{s:s,s:o}", "bank", cit__hash_name(alg), "pcrs", values_json(values, mask));
    cit__pcr_values_free(values);
    return r;
}

static int pcr_tpm_error(cit_tpm *t, TSS2_RC rc, const char *what, uint32_t index) {
    if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && cit__rc_base(rc) == TPM2_RC_LOCALITY) {
        cit_error_set(CIT_E_LOCALITY, "PCR %u cannot be %s at locality 0", index, what);
        cit_error_context("tpm_rc", "0x%08x", rc);
        return CIT_E_LOCALITY;
    }
    int r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "PCR %u could not be %s", index, what);
    cit_error_context("pcr", "%u", index);
    return r;
}

_public_ int cit_pcr_extend(json_t **out, cit_ctx *ctx, uint32_t index, const char *data_file, const char *digest_hex,
                            const char *bank) {
    cit_error_clear();
    TPMI_ALG_HASH alg;
    int r = bank_parse(bank, &alg);
    if (r < 0)
        return r;
    if (index >= PCR_COUNT) {
        cit_error_set(CIT_E_PCR_INVALID, "PCR %u does not exist", index);
        cit_error_cause("PCR indices are 0-23");
        return CIT_E_PCR_INVALID;
    }
    if (!!data_file == !!digest_hex) {
        cit_error_set(CIT_E_USAGE, "give exactly one of --data and --digest");
        return CIT_E_USAGE;
    }
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    if (data_file) {
        r = cit__digest_file(alg, data_file, DATA_MAX, md, &mdlen);
        if (r < 0)
            return r;
    } else {
        uint8_t *b = NULL;
        size_t n = 0;
        if (cit_hex_decode(&b, &n, digest_hex) < 0 || n != cit__hash_size(alg)) {
            free(b);
            cit_error_set(CIT_E_INPUT_INVALID, "--digest must be %zu bytes of hex for the %s bank", cit__hash_size(alg),
                          cit__hash_name(alg));
            return CIT_E_INPUT_INVALID;
        }
        memcpy(md, b, n);
        mdlen = n;
        free(b);
    }
    cit_store *s;
    cit_tpm *t;
    static const char *const ops[] = {"TPM2_PCR_Extend", "TPM2_PCR_Read", NULL};
    r = cit__ctx_store_or_plan(ctx, &s, out, "extend a PCR", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    TPML_DIGEST_VALUES dv = {.count = 1};
    dv.digests[0].hashAlg = alg;
    memcpy(&dv.digests[0].digest, md, mdlen);
    TSS2_RC rc = Esys_PCR_Extend(t->esys, ESYS_TR_PCR0 + index, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &dv);
    if (rc != TSS2_RC_SUCCESS)
        return pcr_tpm_error(t, rc, "extended", index);
    char *values[PCR_COUNT] = {0};
    r = cit__pcr_read(t, alg, 1u << index, values);
    if (r == 0) {
        char *h = cit_hex_encode(md, mdlen);
        *out = json_pack("{s:i,s:s,s:s,s:s}", "index", index, "bank", cit__hash_name(alg), "extended_with", h, "value",
                         values[index]);
        free(h);
        json_t *d = json_pack("{s:i,s:s}", "index", index, "bank", cit__hash_name(alg));
        cit__store_event(s, "pcr.extend", NULL, 0, "ok", d);
        json_decref(d);
    }
    cit__pcr_values_free(values);
    return r;
}

_public_ int cit_pcr_reset(json_t **out, cit_ctx *ctx, uint32_t index) {
    cit_error_clear();
    if (index < 16 || index >= PCR_COUNT) {
        cit_error_set(CIT_E_PCR_INVALID, "PCR %u cannot be reset", index);
        cit_error_cause(index < 16 ? "PCRs 0-15 record the boot and are reset only by a reboot"
                                   : "PCR indices are 0-23");
        cit_error_step("only PCRs 16-23 are resettable (16 and 23 at locality 0)");
        return CIT_E_PCR_INVALID;
    }
    cit_store *s;
    cit_tpm *t;
    static const char *const ops[] = {"TPM2_PCR_Reset", NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "reset a PCR", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    TSS2_RC rc = Esys_PCR_Reset(t->esys, ESYS_TR_PCR0 + index, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS)
        return pcr_tpm_error(t, rc, "reset", index);
    json_t *d = json_pack("{s:i}", "index", index);
    cit__store_event(s, "pcr.reset", NULL, 0, "ok", d);
    json_decref(d);
    *out = json_pack("{s:i,s:b}", "index", index, "reset", 1);
    return 0;
}

/* ---- baselines: objects of kind "baseline" whose metadata holds the values ---- */

_public_ int cit_baseline_save(json_t **out, cit_ctx *ctx, const char *name, const char *indices, const char *bank) {
    cit_error_clear();
    TPMI_ALG_HASH alg;
    uint32_t mask;
    int r = cit__check_path(name);
    if (r == 0)
        r = bank_parse(bank, &alg);
    if (r == 0)
        r = cit__pcr_parse_list(indices ? indices : "0-7", &mask);
    if (r < 0)
        return r;
    cit_store *s;
    cit_tpm *t;
    static const char *const ops[] = {"TPM2_PCR_Read", NULL};
    r = cit__ctx_store_or_plan(ctx, &s, out, "save a PCR baseline", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    if ((r = cit__profile_check(ctx, name, NULL)) < 0)
        return r;
    r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    char *values[PCR_COUNT] = {0};
    r = cit__pcr_read(t, alg, mask, values);
    if (r < 0) {
        cit__pcr_values_free(values);
        return r;
    }
    json_t *pcrs = json_object();
    for (int i = 0; i < PCR_COUNT; i++)
        if (values[i]) {
            char k[4];
            snprintf(k, sizeof k, "%d", i);
            json_object_set_new(pcrs, k, json_string(values[i]));
        }
    cit__pcr_values_free(values);
    json_t *meta = json_pack("{s:s,s:o}", "bank", cit__hash_name(alg), "pcrs", pcrs);
    cit_object o = {0};
    snprintf(o.path, sizeof o.path, "%s", name);
    snprintf(o.kind, sizeof o.kind, "baseline");
    snprintf(o.status, sizeof o.status, "active");
    snprintf(o.algorithm, sizeof o.algorithm, "%s", cit__hash_name(alg));
    o.version = 1;
    o.metadata = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    r = cit__store_begin(s);
    if (r == 0)
        r = cit__object_insert(s, &o);
    if (r == 0)
        r = cit__store_event(s, "baseline.save", o.path, o.id, "ok", NULL);
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0)
        cit__store_rollback(s);
    else
        *out = json_pack("{s:s,s:s,s:O}", "baseline", name, "bank", cit__hash_name(alg), "pcrs",
                         json_object_get(meta, "pcrs"));
    json_decref(meta);
    cit__object_clear(&o);
    return r;
}

static int find_baseline(cit_ctx *ctx, const char *name, cit_object *o, json_t **meta) {
    int r = cit__ctx_find(ctx, name, o);
    if (r == 0)
        r = cit__require_kind(o, "baseline");
    if (r < 0)
        return r;
    *meta = json_loads(o->metadata, 0, NULL);
    if (!*meta || !json_is_object(json_object_get(*meta, "pcrs")))
        return cit_error_set(CIT_E_STORE_IO, "the baseline %s is damaged", name);
    return 0;
}

_public_ int cit_baseline_diff(json_t **out, cit_ctx *ctx, const char *name, bool *changed) {
    cit_error_clear();
    cit_object o = {0};
    json_t *meta = NULL;
    int r = find_baseline(ctx, name, &o, &meta);
    TPMI_ALG_HASH alg = TPM2_ALG_SHA256;
    if (r == 0)
        r = bank_parse(json_string_value(json_object_get(meta, "bank")), &alg);
    cit_tpm *t;
    if (r == 0 && ctx->plan) {
        static const char *const ops[] = {"TPM2_PCR_Read", NULL};
        *out = cit__plan("compare a baseline with the PCRs now (reads only)", ops);
        goto done;
    }
    if (r == 0)
        r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        goto done;
    json_t *saved = json_object_get(meta, "pcrs");
    uint32_t mask = 0;
    const char *k;
    json_t *v;
    json_object_foreach(saved, k, v) {
        uint32_t i;
        if (cit_parse_u32(k, &i) == 0 && i < PCR_COUNT)
            mask |= 1u << i;
    }
    char *values[PCR_COUNT] = {0};
    r = cit__pcr_read(t, alg, mask, values);
    if (r < 0) {
        cit__pcr_values_free(values);
        goto done;
    }
    json_t *diffs = json_array();
    int unchanged = 0;
    for (int i = 0; i < PCR_COUNT; i++) {
        if (!(mask & (1u << i)))
            continue;
        char key[4];
        snprintf(key, sizeof key, "%d", i);
        const char *old = json_string_value(json_object_get(saved, key));
        if (old && values[i] && strcmp(old, values[i]) == 0)
            unchanged++;
        else
            json_array_append_new(diffs, json_pack("{s:i,s:s,s:s}", "index", i, "baseline", old ? old : "",
                                                   "now", values[i] ? values[i] : ""));
    }
    cit__pcr_values_free(values);
    if (changed)
        *changed = json_array_size(diffs) > 0;
    *out = json_pack("{s:s,s:s,s:b,s:i,s:o}", "baseline", name, "bank", cit__hash_name(alg), "matches",
                     json_array_size(diffs) == 0, "unchanged", unchanged, "changed", diffs);
done:
    json_decref(meta);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_baseline_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "list baselines (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    cit_object *list = NULL;
    size_t n = 0;
    r = cit__object_list(s, "baseline", &list, &n);
    if (r < 0)
        return r;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *meta = json_loads(list[i].metadata, 0, NULL);
        char when[32];
        cit_time_rfc3339(when, sizeof when, list[i].created_at);
        json_t *idx = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(meta, "pcrs"), k, v) json_array_append_new(idx, json_string(k));
        char *joined = NULL;
        size_t jl = 0;
        FILE *f = open_memstream(&joined, &jl);
        size_t j;
        json_t *x;
        json_array_foreach(idx, j, x) fprintf(f, "%s%s", j ? "," : "", json_string_value(x));
        fclose(f);
        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s}", "name", list[i].path, "bank", list[i].algorithm, "pcrs",
                                           joined ? joined : "", "saved", when));
        free(joined);
        json_decref(idx);
        json_decref(meta);
    }
    cit__object_list_free(list, n);
    *out = json_pack("{s:o,s:I}", "baselines", a, "count", (json_int_t)n);
    return 0;
}

_public_ int cit_baseline_delete(json_t **out, cit_ctx *ctx, const char *name) {
    cit_error_clear();
    cit_object o = {0};
    json_t *meta = NULL;
    int r = find_baseline(ctx, name, &o, &meta);
    json_decref(meta);
    if (r < 0) {
        cit__object_clear(&o);
        return r;
    }
    if (ctx->plan) {
        *out = cit__plan("delete a baseline (store only)", NULL);
        cit__object_clear(&o);
        return 0;
    }
    cit_store *s = ctx->store;
    r = cit__store_begin(s);
    if (r == 0)
        r = cit__object_delete(s, o.id);
    if (r == 0)
        r = cit__store_event(s, "baseline.delete", o.path, o.id, "ok", NULL);
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0)
        cit__store_rollback(s);
    else
        *out = json_pack("{s:s,s:b}", "baseline", name, "deleted", 1);
    cit__object_clear(&o);
    return r;
}

int cit__baseline_compare(cit_ctx *ctx, const char *name, const json_t *pcrs, json_t **out) {
    cit_object o = {0};
    json_t *meta = NULL;
    int r = find_baseline(ctx, name, &o, &meta);
    if (r < 0) {
        cit__object_clear(&o);
        return r;
    }
    const char *bank = json_string_value(json_object_get(meta, "bank")) ?: "sha256";
    json_t *have = json_object_get(pcrs, bank), *diffs = json_array();
    const char *k;
    json_t *v;
    int unchanged = 0;
    json_object_foreach(json_object_get(meta, "pcrs"), k, v) {
        const char *now = json_string_value(json_object_get(have, k));
        if (now && strcmp(now, json_string_value(v) ?: "") == 0)
            unchanged++;
        else
            json_array_append_new(diffs, json_pack("{s:s,s:s,s:s}", "index", k, "baseline", json_string_value(v) ?: "",
                                                   "quoted", now ? now : "(not quoted)"));
    }
    *out = json_pack("{s:s,s:s,s:i,s:o}", "baseline", name, "bank", bank, "unchanged", unchanged, "changed", diffs);
    json_decref(meta);
    cit__object_clear(&o);
    return 0;
}
