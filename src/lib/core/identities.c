/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Identities: signing keys with a purpose, a binding and certificate metadata. An identity is a
 * key object (kind "key") whose metadata carries {"identity": {...}}, so every key command works
 * on it too. Bindings are TPM policies:
 *   --pcr-bind N            PolicyPCR over the values at creation;
 *   --authorized-by AUTH    PolicyAuthorize by AUTH's key: the identity signs in any PCR state
 *                           (of the --pcr-bind PCRs) that AUTH has approved with
 *                           `policy approve`; approvals are signatures kept in the store
 *                           (table approvals) and checked by the TPM at every use.
 * CSRs are built with OpenSSL and signed in the TPM (the TBS bytes are hashed here, the digest
 * is signed by TPM2_Sign).
 */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <tss2/tss2_mu.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/keys.h"
#include "core/measure.h"
#include "core/profiles.h"
#include "crypto/crypto.h"
#include "ctx.h"
#include "policy/policy.h"

#define CSR_SUBJECT_MAX 1024
#define CERT_MAX (64 * 1024)

static const char *const usages[] = {"code-signing", "tls-server", "tls-client", "attestation", "audit", NULL};

/* ---- helpers ---- */

static json_t *identity_meta(const cit_object *o, json_t **meta_out) {
    json_t *meta = o->metadata ? json_loads(o->metadata, 0, NULL) : NULL;
    json_t *id = json_object_get(meta, "identity");
    if (meta_out)
        *meta_out = meta;
    else
        json_decref(meta);
    return id;
}

/* Finds an identity by name; on failure *o is left empty. */
static int find_identity(cit_ctx *ctx, const char *name, cit_object *o) {
    int r = cit__ctx_find(ctx, name, o);
    json_t *meta = NULL;
    if (r == 0 && (strcmp(o->kind, "key") != 0 || !identity_meta(o, &meta))) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is not an identity", name);
        cit_error_cause("it is a %s; identities are made with `citadel tpm identity init`", o->kind);
        cit_error_context("path", "%s", name);
    }
    json_decref(meta);
    if (r < 0)
        cit__object_clear(o);
    return r;
}

bool cit__is_authority(const cit_object *o) {
    json_t *meta = NULL;
    json_t *id = identity_meta(o, &meta); /* json_is_true evaluates its argument twice */
    bool b = json_is_true(json_object_get(id, "authority"));
    json_decref(meta);
    return b;
}

bool cit__is_audit_signer(const cit_object *o) {
    json_t *meta = NULL;
    json_t *id = identity_meta(o, &meta);
    const char *u = json_string_value(json_object_get(id, "usage"));
    bool b = u && strcmp(u, "audit") == 0;
    json_decref(meta);
    return b;
}

bool cit__is_tls_identity(const cit_object *o) {
    json_t *meta = NULL;
    json_t *id = identity_meta(o, &meta);
    const char *u = json_string_value(json_object_get(id, "usage"));
    bool b = u && (strcmp(u, "tls-server") == 0 || strcmp(u, "tls-client") == 0);
    json_decref(meta);
    return b;
}

static int find_authority(cit_ctx *ctx, const char *name, cit_object *o) {
    int r = find_identity(ctx, name, o);
    if (r == 0 && !cit__is_authority(o)) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is not an authority", name);
        cit_error_cause("authorities are made with `citadel tpm identity init NAME --authority`");
        cit_error_context("path", "%s", name);
        cit__object_clear(o);
    }
    return r;
}

/* The objects (identities, keys, secrets, stored policies) whose policy names the authority's
 * current key (paths in acc): matched by TPM name, so a re-created authority of the same name
 * has none of its predecessor's dependents. */
static int authority_dependents(cit_store *s, const cit_object *auth, json_t *acc) {
    cit_object_version v = {0};
    int r = cit__version_get(s, auth->id, auth->version, &v);
    if (r < 0)
        return r;
    char *name = cit_hex_encode(v.name, v.name_len);
    cit__version_clear(&v);
    cit_object *list = NULL;
    size_t n = 0;
    r = cit__object_list(s, NULL, &list, &n);
    for (size_t i = 0; r == 0 && i < n; i++) {
        json_t *meta = json_loads(list[i].metadata ? list[i].metadata : "{}", 0, NULL);
        json_t *pol = json_object_get(meta, "policy_json");
        if (!pol && strcmp(list[i].kind, "policy") == 0)
            pol = json_object_get(meta, "policy");
        const char *a = json_string_value(
            json_object_get(json_object_get(json_object_get(pol, "requires"), "authorized_by"), "name"));
        if (a && name && strcmp(a, name) == 0)
            json_array_append_new(acc, json_string(list[i].path));
        json_decref(meta);
    }
    cit__object_list_free(list, n);
    free(name);
    return r;
}

int cit__authority_resolve(cit_ctx *ctx, json_t *ab) {
    if (!ab)
        return 0;
    const char *name = json_string_value(json_object_get(ab, "authority"));
    cit_object o = {0};
    cit_object_version v = {0};
    int r = name ? find_authority(ctx, name, &o) : cit_error_set(CIT_E_POLICY_INVALID, "authorized_by names no authority");
    if (r == 0)
        r = cit__require_active(&o);
    if (r == 0)
        r = cit__version_get(ctx->store, o.id, o.version, &v);
    if (r == 0) {
        char *nh = cit_hex_encode(v.name, v.name_len), *ph = cit_hex_encode(v.pub, v.pub_len);
        json_object_set_new(ab, "name", json_string(nh));
        json_object_set_new(ab, "public", json_string(ph));
        json_object_set_new(ab, "version", json_integer(o.version));
        free(nh);
        free(ph);
    }
    cit__version_clear(&v);
    cit__object_clear(&o);
    return r;
}

/* The authority's public area from a resolved authorized_by, checked against its name. */
static int authority_public(const json_t *ab, TPM2B_PUBLIC *pub, TPM2B_NAME *name) {
    uint8_t *pb = NULL, *nb = NULL;
    size_t pl = 0, nl = 0, off = 0;
    uint8_t calc[sizeof(TPMU_NAME) + 2];
    size_t cl = 0;
    int ok = cit_hex_decode(&pb, &pl, json_string_value(json_object_get(ab, "public")) ?: "") == 0 &&
             cit_hex_decode(&nb, &nl, json_string_value(json_object_get(ab, "name")) ?: "") == 0 && nl <= sizeof name->name &&
             Tss2_MU_TPM2B_PUBLIC_Unmarshal(pb, pl, &off, pub) == TSS2_RC_SUCCESS &&
             cit__name_from_public(pub, calc, &cl) == 0 && cl == nl && memcmp(calc, nb, nl) == 0;
    if (ok) {
        name->size = (UINT16)nl;
        memcpy(name->name, nb, nl);
    }
    free(pb);
    free(nb);
    if (!ok) {
        cit_error_set(CIT_E_POLICY_INVALID, "the policy's authority key is missing or damaged");
        cit_error_cause("its public key does not match the TPM name the policy was compiled with");
        return CIT_E_POLICY_INVALID;
    }
    return 0;
}

/* aHash = SHA-256(approvedPolicy || policyRef). */
static int approval_hash(const uint8_t *digest, size_t len, const TPM2B_DIGEST *ref, uint8_t out[32]) {
    uint8_t buf[64 + sizeof ref->buffer];
    if (len > 64)
        return cit_error_set(CIT_E_INTERNAL, "policy digest too long");
    memcpy(buf, digest, len);
    memcpy(buf + len, ref->buffer, ref->size);
    size_t n = 0;
    return cit__digest(TPM2_ALG_SHA256, buf, len + ref->size, out, &n);
}

/* Causes for a refused approval: the approved PCR values against the values now. */
static void explain_stale(cit_tpm *t, const char *pcrs_json) {
    cit_error saved = *cit_error_last();
    json_t *pcrs = json_loads(pcrs_json ? pcrs_json : "[]", 0, NULL);
    char lines[24][200];
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(pcrs, i, e) {
        TPMI_ALG_HASH alg;
        int idx = (int)json_integer_value(json_object_get(e, "index"));
        char *values[24] = {0};
        if (n >= 24 || idx < 0 || idx > 23 ||
            cit__hash_from_name(json_string_value(json_object_get(e, "bank")), &alg) < 0 ||
            cit__pcr_read(t, alg, 1u << idx, values) < 0)
            continue;
        const char *want = json_string_value(json_object_get(e, "value"));
        if (want && values[idx] && strcmp(want, values[idx]) != 0)
            snprintf(lines[n++], sizeof lines[0], "PCR %d (%s) changed: newest approval for %.16s..., now %.16s...",
                     idx, cit__hash_name(alg), want, values[idx]);
        cit__pcr_values_free(values);
    }
    json_decref(pcrs);
    cit_error_restore(&saved);
    for (int k = 0; k < n; k++)
        cit_error_cause("%s", lines[k]);
}

int cit__policy_authorize(void *env, cit_tpm *t, ESYS_TR s, const json_t *ab, const json_t *pcrs,
                          const TPM2B_DIGEST *now, json_t *checks) {
    cit_ctx *ctx = env;
    cit_store *st;
    const char *authority = json_string_value(json_object_get(ab, "authority")) ?: "?";
    const char *name_hex = json_string_value(json_object_get(ab, "name"));
    int r = ctx ? cit__ctx_store(ctx, &st) : cit_error_set(CIT_E_INTERNAL, "no store for the approvals");
    if (r < 0)
        return r;
    if (!name_hex)
        return cit_error_set(CIT_E_POLICY_INVALID, "the policy's authority is not resolved");
    TPM2B_DIGEST ref;
    if ((r = cit__policy_approval_ref(pcrs, &ref)) < 0)
        return r;
    char *now_hex = cit_hex_encode(now->buffer, now->size), *ref_hex = cit_hex_encode(ref.buffer, ref.size);
    sqlite3_stmt *q = NULL;
    r = cit__store_prepare(st, &q,
                           "SELECT id, policy_digest, signature, pcrs FROM approvals WHERE authority_name = ? "
                           "AND policy_ref = ? ORDER BY (policy_digest = ?) DESC, id DESC LIMIT 1");
    if (r < 0) {
        free(now_hex);
        free(ref_hex);
        return r;
    }
    sqlite3_bind_text(q, 1, name_hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, ref_hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, now_hex, -1, SQLITE_STATIC);
    free(ref_hex);
    int step = sqlite3_step(q);
    if (step != SQLITE_ROW) {
        sqlite3_finalize(q);
        free(now_hex);
        cit__policy_check(checks, "authorized_by", false, "the authority has approved no state");
        cit_error_set(CIT_E_POLICY_FAIL, "%s has approved no state of these PCRs yet", authority);
        cit_error_cause("an identity authorized by %s signs only in states it approved", authority);
        cit_error_step("approve the state now: `citadel tpm policy approve --authority %s --pcr LIST`", authority);
        return CIT_E_POLICY_FAIL;
    }
    int64_t approval_id = sqlite3_column_int64(q, 0);
    const char *approved_hex = (const char *)sqlite3_column_text(q, 1);
    bool matches = approved_hex && strcmp(approved_hex, now_hex) == 0;
    TPMT_SIGNATURE sig = {0};
    size_t off = 0;
    const uint8_t *sb = sqlite3_column_blob(q, 2);
    int sl = sqlite3_column_bytes(q, 2);
    uint8_t *ad = NULL;
    size_t al = 0;
    char *pcrs_json = sqlite3_column_text(q, 3) ? strdup((const char *)sqlite3_column_text(q, 3)) : NULL;
    if (!sb || Tss2_MU_TPMT_SIGNATURE_Unmarshal(sb, (size_t)sl, &off, &sig) != TSS2_RC_SUCCESS || !approved_hex ||
        cit_hex_decode(&ad, &al, approved_hex) < 0 || al != 32)
        r = cit_error_set(CIT_E_STORE_IO, "approval %lld in the store is damaged", (long long)approval_id);
    sqlite3_finalize(q);
    free(now_hex);
    TPM2B_PUBLIC pub = {0}; /* tss2-mu unmarshals only into a zeroed TPM2B */
    TPM2B_NAME kname = {0};
    ESYS_TR kh = ESYS_TR_NONE;
    TPMT_TK_VERIFIED *ticket = NULL;
    if (r == 0)
        r = authority_public(ab, &pub, &kname);
    if (r < 0)
        goto done;
    /* the public key alone, in the owner hierarchy so the TPM's ticket is one PolicyAuthorize takes */
    TSS2_RC rc = Esys_LoadExternal(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, &pub, ESYS_TR_RH_OWNER, &kh);
    if (rc != TSS2_RC_SUCCESS) {
        r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot load the public key of authority %s", authority);
        goto done;
    }
    TPM2B_DIGEST ah = {.size = 32};
    if ((r = approval_hash(ad, al, &ref, ah.buffer)) < 0)
        goto done;
    rc = Esys_VerifySignature(t->esys, kh, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &ah, &sig, &ticket);
    if (rc != TSS2_RC_SUCCESS) {
        cit__policy_check(checks, "authorized_by", false, "the TPM rejected the approval's signature");
        r = cit_error_set(CIT_E_POLICY_FAIL, "the TPM rejected the signature of approval %lld by %s",
                          (long long)approval_id, authority);
        cit_error_cause("the stored approval was not made by the authority's key, or was modified");
        cit_error_context("tpm_rc", "0x%08x", rc);
        cit_error_step("approve the state again: `citadel tpm policy approve --authority %s --pcr LIST`", authority);
        goto done;
    }
    TPM2B_DIGEST approved = {.size = 32};
    memcpy(approved.buffer, ad, 32);
    rc = Esys_PolicyAuthorize(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &approved, &ref, &kname, ticket);
    char det[128];
    snprintf(det, sizeof det, "approval %lld by %s", (long long)approval_id, authority);
    cit__policy_check(checks, "authorized_by", rc == TSS2_RC_SUCCESS, rc == TSS2_RC_SUCCESS ? det : "no approval covers the PCR state now");
    if (rc != TSS2_RC_SUCCESS) {
        r = cit_error_set(CIT_E_POLICY_FAIL, "the TPM refused: %s has not approved the PCR state now", authority);
        cit_error_cause(matches ? "the approval's digest matches, but the TPM refused it"
                                : "no approval by %s covers the PCR values now; the TPM checked the newest one "
                                  "(approval %lld) and refused it",
                        authority, (long long)approval_id);
        cit_error_context("tpm_rc", "0x%08x", rc);
        explain_stale(t, pcrs_json);
        cit_error_step("if the new state is expected (an upgrade), approve it: `citadel tpm policy approve "
                       "--authority %s --pcr LIST`",
                       authority);
        cit_error_step("run `citadel tpm policy approvals --authority %s` to see the approved states", authority);
    }
done:
    if (kh != ESYS_TR_NONE)
        cit__tpm_flush(t, &kh);
    Esys_Free(ticket);
    free(ad);
    free(pcrs_json);
    return r;
}

/* ---- approvals ---- */

_public_ int cit_policy_approve(json_t **out, cit_ctx *ctx, const char *authority, const char *pcrs,
                                const char *bank, const char *auth_file) {
    cit_error_clear();
    uint32_t mask = 0;
    TPMI_ALG_HASH alg = TPM2_ALG_SHA256;
    int r = pcrs ? cit__pcr_parse_list(pcrs, &mask) : cit_error_set(CIT_E_USAGE, "give the PCRs to approve with --pcr");
    if (r == 0 && !mask)
        r = cit_error_set(CIT_E_PCR_INVALID, "--pcr names no PCR");
    if (r == 0 && bank && cit__hash_from_name(bank, &alg) < 0)
        r = cit_error_set(CIT_E_BANK_UNSUPPORTED, "unknown PCR bank: %s", bank);
    if (r < 0)
        return r;
    cit_object o = {0};
    r = find_authority(ctx, authority, &o);
    if (r == 0)
        r = cit__require_active(&o);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_PCR_Read", "TPM2_Load (the authority key)",
                                          "TPM2_Sign (the PCR policy digest)", NULL};
        *out = cit__plan("approve the PCR state now for identities authorized by the authority", ops);
        goto done;
    }
    cit_tpm *t;
    char *values[24] = {0};
    r = cit__ctx_tpm(ctx, &t);
    if (r == 0)
        r = cit__pcr_read(t, alg, mask, values);
    if (r < 0)
        goto done;
    json_t *list = json_array();
    for (int i = 0; i < 24; i++)
        if (mask & (1u << i))
            json_array_append_new(list, json_pack("{s:i,s:s,s:s}", "index", i, "bank", cit__hash_name(alg), "value",
                                                  values[i] ? values[i] : ""));
    cit__pcr_values_free(values);
    TPM2B_DIGEST d, ref;
    uint8_t ah[32];
    TPMT_SIGNATURE *sig = NULL;
    r = cit__policy_pcr_digest(list, &d);
    if (r == 0)
        r = cit__policy_approval_ref(list, &ref);
    if (r == 0)
        r = approval_hash(d.buffer, d.size, &ref, ah);
    if (r == 0) /* SHA-256: the hash TPM2_VerifySignature checks against the authority's name algorithm */
        r = cit__key_sign_digest(ctx, &o, TPM2_ALG_SHA256, ah, 32, auth_file, &sig);
    if (r < 0) {
        json_decref(list);
        goto done;
    }
    uint8_t sb[sizeof(TPMT_SIGNATURE)];
    size_t sl = 0;
    Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sb, sizeof sb, &sl);
    Esys_Free(sig);
    cit_object_version v = {0};
    char *dhex = cit_hex_encode(d.buffer, d.size), *nhex = NULL, *pj = json_dumps(list, JSON_COMPACT),
         *rhex = cit_hex_encode(ref.buffer, ref.size);
    cit_store *s = ctx->store;
    r = cit__version_get(s, o.id, o.version, &v);
    if (r == 0)
        nhex = cit_hex_encode(v.name, v.name_len);
    /* the approval goes into the audit log before it is stored: an approval the TPM would honour
     * never exists without its log entry (a crash in between leaves an entry for an approval that
     * was never stored, which unlocks nothing); a rolled-back log refuses, and nothing is approved */
    int64_t aseq = 0;
    const char *aevent = NULL;
    json_t *anchor = NULL;
    if (r == 0)
        r = cit__measure_record_approval(ctx, o.path, nhex, list, dhex, rhex, sb, sl, &aseq, &aevent, &anchor);
    sqlite3_stmt *st = NULL;
    int64_t id = 0, now = (int64_t)time(NULL);
    if (r == 0)
        r = cit__store_begin(s);
    if (r == 0)
        r = cit__store_prepare(s, &st,
                               "INSERT INTO approvals(authority, authority_name, policy_digest, pcrs, signature, "
                               "created_at, policy_ref) VALUES(?, ?, ?, ?, ?, ?, ?)");
    if (r == 0) {
        sqlite3_bind_text(st, 1, o.path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, nhex, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, dhex, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, pj, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 5, sb, (int)sl, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, now);
        sqlite3_bind_text(st, 7, rhex, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            r = cit__store_error(s, "cannot store the approval");
        id = sqlite3_last_insert_rowid(s->db);
        sqlite3_finalize(st);
    }
    if (r == 0) {
        json_t *det = json_pack("{s:I,s:s,s:O}", "approval", (json_int_t)id, "policy_digest", dhex, "pcrs", list);
        r = cit__store_event(s, "policy.approve", o.path, o.id, "ok", det);
        json_decref(det);
    }
    if (r == 0)
        r = cit__store_commit(s);
    else
        cit__store_rollback(s);
    if (r == 0) {
        char when[32];
        cit_time_rfc3339(when, sizeof when, now);
        *out = json_pack("{s:I,s:s,s:s,s:s,s:O,s:s,s:{s:I,s:s}}", "approval", (json_int_t)id, "authority", o.path,
                         "policy_digest", dhex, "policy_ref", rhex, "pcrs", list, "approved", when, "audit", "seqno",
                         (json_int_t)aseq, "event", aevent);
        if (anchor) {
            json_object_set(*out, "anchor", anchor);
            json_t *a;
            size_t k;
            bool explained = true;
            json_array_foreach(anchor, k, a) explained &= json_is_true(json_object_get(a, "matches_replay"));
            if (!explained)
                json_object_set_new(*out, "warning",
                                    json_string("an approved PCR value is not the replay of the measure checkpoints: "
                                                "the log does not explain the state that was approved (`citadel tpm "
                                                "measure rollback-check`)"));
        }
    }
    json_decref(anchor);
    cit__version_clear(&v);
    json_decref(list);
    free(dhex);
    free(nhex);
    free(pj);
    free(rhex);
done:
    cit__object_clear(&o);
    return r;
}

_public_ int cit_policy_approvals(json_t **out, cit_ctx *ctx, const char *authority) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "list approvals (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    sqlite3_stmt *st;
    r = cit__store_prepare(s, &st,
                           "SELECT id, authority, policy_digest, pcrs, created_at FROM approvals "
                           "WHERE ?1 IS NULL OR authority = ?1 ORDER BY id");
    if (r < 0)
        return r;
    if (authority)
        sqlite3_bind_text(st, 1, authority, -1, SQLITE_STATIC);
    json_t *a = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        char when[32];
        cit_time_rfc3339(when, sizeof when, sqlite3_column_int64(st, 4));
        json_t *pcrs = json_loads((const char *)sqlite3_column_text(st, 3) ?: "[]", 0, NULL);
        char buf[128] = "";
        size_t off = 0, i;
        json_t *e;
        json_array_foreach(pcrs, i, e) off += (size_t)snprintf(buf + off, off < sizeof buf ? sizeof buf - off : 0, "%s%lld",
                                                              off ? "," : "", json_integer_value(json_object_get(e, "index")));
        json_array_append_new(a, json_pack("{s:I,s:s,s:s,s:s,s:s,s:o}", "approval", (json_int_t)sqlite3_column_int64(st, 0),
                                           "authority", (const char *)sqlite3_column_text(st, 1) ?: "", "pcrs", buf,
                                           "policy_digest", (const char *)sqlite3_column_text(st, 2) ?: "", "approved",
                                           when, "values", pcrs ? pcrs : json_array()));
    }
    sqlite3_finalize(st);
    *out = json_pack("{s:o,s:I}", "approvals", a, "count", (json_int_t)json_array_size(a));
    return 0;
}

/* ---- identities ---- */

static bool known_usage(const char *u) {
    for (size_t i = 0; usages[i]; i++)
        if (strcmp(usages[i], u) == 0)
            return true;
    return false;
}

_public_ int cit_identity_init(json_t **out, cit_ctx *ctx, const cit_identity_init_options *io) {
    cit_error_clear();
    int r = cit__check_path(io->name);
    if (r < 0)
        return r;
    if (io->algorithm && strcmp(io->algorithm, "ed25519") == 0) {
        cit_error_set(CIT_E_ALG_UNSUPPORTED, "identities are TPM keys; ed25519 is not one");
        cit_error_cause("an identity signs its CSR, approvals and attestations in the TPM, which has no Ed25519");
        cit_error_step("use --algorithm ecc-p256 (or another TPM algorithm) for the identity");
        cit_error_step("an ed25519 key whose seed the TPM seals is `citadel tpm key create PATH --algorithm ed25519`");
        return CIT_E_ALG_UNSUPPORTED;
    }
    const char *usage = io->usage;
    const cit_template_def *tpl = NULL;
    if (io->template_name && (r = cit__template_for(io->template_name, "key", &tpl)) < 0)
        return r;
    if (!usage && tpl && strcmp(tpl->name, "tls-server") == 0)
        usage = "tls-server";
    if (io->authority) {
        if (io->usage) {
            cit_error_set(CIT_E_USAGE, "--authority and --usage do not go together");
            cit_error_cause("an authority's only use is signing approvals");
            return CIT_E_USAGE;
        }
        if (io->authorized_by) {
            cit_error_set(CIT_E_USAGE, "an authority cannot itself be --authorized-by another");
            return CIT_E_USAGE;
        }
        usage = "authority";
    } else if (!usage)
        usage = "code-signing";
    else if (!known_usage(usage)) {
        cit_error_set(CIT_E_USAGE, "unknown identity usage: %s", usage);
        cit_error_cause("usages: code-signing, tls-server, tls-client, attestation, audit (or --authority)");
        return CIT_E_USAGE;
    }
    if (io->authorized_by && !io->pcr_bind && !io->policy) {
        cit_error_set(CIT_E_USAGE, "--authorized-by needs --pcr-bind LIST");
        cit_error_cause("the authority approves states of these PCRs, one `policy approve` per state");
        return CIT_E_USAGE;
    }
    if (io->policy && (io->pcr_bind || io->authorized_by)) {
        cit_error_set(CIT_E_USAGE, "give --policy, or --pcr-bind / --authorized-by, not both");
        return CIT_E_USAGE;
    }
    cit_key_create_options ko = {.path = io->name,
                                 .algorithm = io->algorithm,
                                 .usage = "sign",
                                 .auth_file = io->auth_file,
                                 .template_name = io->template_name,
                                 .pcrs = io->pcr_bind,
                                 .bank = io->bank,
                                 .policy = io->policy};
    cit_store *s;
    if ((r = cit__ctx_store(ctx, &s)) < 0)
        return r;
    cit_object ex = {0};
    if (cit__object_find(s, io->name, &ex) == 0) {
        cit__object_clear(&ex);
        cit_error_set(CIT_E_OBJECT_EXISTS, "object already exists: %s", io->name);
        cit_error_context("path", "%s", io->name);
        return CIT_E_OBJECT_EXISTS;
    }
    cit_error_clear();
    json_t *pol = NULL;
    char *digest = NULL;
    if (io->authorized_by) {
        cit_object a = {0};
        r = find_authority(ctx, io->authorized_by, &a);
        cit__object_clear(&a);
        if (r < 0)
            return r;
    }
    if (!ctx->plan)
        r = cit__policy_for_object(ctx, io->name, io->pcr_bind, io->bank, io->policy, io->authorized_by,
                                   io->auth_file != NULL, &pol, &digest);
    json_t *extra = json_pack("{s:{s:s,s:b,s:s?,s:s?}}", "identity", "usage", usage, "authority", io->authority,
                              "pcr_bind", io->pcr_bind, "authorized_by", io->authorized_by);
    if (r == 0)
        r = cit__key_create_ex(out, ctx, &ko, pol, digest, extra);
    json_decref(extra);
    json_decref(pol);
    free(digest);
    if (r == 0 && !ctx->plan) {
        json_t *meta = json_object_get(*out, "metadata");
        json_object_set(*out, "identity", json_object_get(meta, "identity"));
        json_object_set(*out, "policy_digest", json_object_get(meta, "policy_digest"));
        json_object_del(*out, "metadata");
        if (io->authorized_by)
            json_object_set_new(*out, "next_step",
                                json_sprintf("approve the state it may sign in: `citadel tpm policy approve --authority %s "
                                             "--pcr %s%s%s`",
                                             io->authorized_by, io->pcr_bind ? io->pcr_bind : "LIST",
                                             io->bank ? " --bank " : "", io->bank ? io->bank : ""));
    }
    return r;
}

static json_t *cert_summary(const uint8_t *pem, size_t len) {
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x)
        return NULL;
    char *subj = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
    char *iss = X509_NAME_oneline(X509_get_issuer_name(x), NULL, 0);
    char nb[64] = "", na[64] = "";
    BIO *m = BIO_new(BIO_s_mem());
    if (m && ASN1_TIME_print(m, X509_get0_notBefore(x)) == 1)
        BIO_read(m, nb, sizeof nb - 1);
    BIO_free(m);
    m = BIO_new(BIO_s_mem());
    if (m && ASN1_TIME_print(m, X509_get0_notAfter(x)) == 1)
        BIO_read(m, na, sizeof na - 1);
    BIO_free(m);
    uint8_t md[32];
    unsigned int ml = 0;
    X509_digest(x, EVP_sha256(), md, &ml);
    char *fp = cit_hex_encode(md, ml);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *serial = bn ? BN_bn2hex(bn) : NULL;
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s%}", "subject", subj ? subj : "", "issuer", iss ? iss : "",
                          "not_before", nb, "not_after", na, "serial", serial ? serial : "", "fingerprint_sha256", fp,
                          "pem", (const char *)pem, len);
    OPENSSL_free(serial);
    BN_free(bn);
    free(fp);
    OPENSSL_free(subj);
    OPENSSL_free(iss);
    X509_free(x);
    return j;
}

_public_ int cit_identity_show(json_t **out, cit_ctx *ctx, const char *name) {
    cit_error_clear();
    cit_object o = {0};
    int r = find_identity(ctx, name, &o);
    if (r < 0)
        return r;
    if (ctx->plan) {
        *out = cit__plan("show an identity (reads the store only)", NULL);
        cit__object_clear(&o);
        return 0;
    }
    json_t *j = NULL, *meta = NULL;
    r = cit_key_show(&j, ctx, name);
    json_t *id = identity_meta(&o, &meta);
    if (r == 0) {
        json_object_del(j, "metadata");
        json_object_set(j, "identity", id);
        json_object_set(j, "policy_digest", json_object_get(meta, "policy_digest"));
        json_t *req = json_object_get(json_object_get(meta, "policy_json"), "requires");
        TPM2B_DIGEST ref;
        if (json_object_get(req, "authorized_by") && cit__policy_approval_ref(json_object_get(req, "pcr"), &ref) == 0) {
            char *rh = cit_hex_encode(ref.buffer, ref.size);
            json_object_set_new(j, "policy_ref", json_string(rh));
            free(rh);
        }
        cit_error_clear();
        cit_object_version v = {0};
        if (cit__version_get(ctx->store, o.id, o.version, &v) == 0 && v.payload) {
            json_t *c = cert_summary(v.payload, v.payload_len);
            if (c)
                json_object_set_new(j, "certificate", c);
        }
        cit__version_clear(&v);
        if (cit__is_authority(&o)) {
            json_t *deps = json_array();
            authority_dependents(ctx->store, &o, deps);
            json_object_set_new(j, "authorizes", deps);
        }
        *out = j;
    }
    json_decref(meta);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_identity_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "list identities (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    cit_object *list = NULL;
    size_t n = 0;
    r = cit__object_list(s, "key", &list, &n);
    if (r < 0)
        return r;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *meta = NULL, *id = identity_meta(&list[i], &meta);
        if (id) {
            const char *ab = json_string_value(json_object_get(id, "authorized_by"));
            const char *pb = json_string_value(json_object_get(id, "pcr_bind"));
            char binding[160];
            if (ab)
                snprintf(binding, sizeof binding, "authorized by %s (PCR %s)", ab, pb ? pb : "?");
            else if (pb)
                snprintf(binding, sizeof binding, "PCR %s", pb);
            else if (json_object_get(meta, "policy_name"))
                snprintf(binding, sizeof binding, "policy %s", json_string_value(json_object_get(meta, "policy_name")));
            else
                snprintf(binding, sizeof binding, "-");
            cit_object_version v = {0};
            json_t *cert = NULL;
            if (cit__version_get(s, list[i].id, list[i].version, &v) == 0 && v.payload)
                cert = cert_summary(v.payload, v.payload_len);
            cit__version_clear(&v);
            json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:s}", "name", list[i].path, "usage",
                                               json_string_value(json_object_get(id, "usage")) ?: "?", "algorithm",
                                               list[i].algorithm, "binding", binding, "version", list[i].version,
                                               "certificate",
                                               cert ? json_string_value(json_object_get(cert, "subject")) : "-",
                                               "status", list[i].status));
            json_decref(cert);
        }
        json_decref(meta);
    }
    cit_error_clear();
    cit__object_list_free(list, n);
    *out = json_pack("{s:o,s:I}", "identities", a, "count", (json_int_t)json_array_size(a));
    return 0;
}

int cit__authority_guard(cit_ctx *ctx, const cit_object *o, const char *what) {
    int g = cit__ca_guard(ctx, o, what);
    if (g < 0)
        return g;
    if (!o->metadata || !cit__is_authority(o))
        return 0;
    json_t *deps = json_array();
    int r = authority_dependents(ctx->store, o, deps);
    if (r == 0 && json_array_size(deps)) {
        r = cit_error_set(CIT_E_HAS_DEPENDENTS, "%s authorizes %zu identities: %s would strand them", o->path,
                          json_array_size(deps), what);
        size_t i;
        json_t *e;
        json_array_foreach(deps, i, e) cit_error_cause("%s is authorized by %s", json_string_value(e), o->path);
        cit_error_step("their policies name this key; re-create them under a new authority first");
    }
    json_decref(deps);
    return r;
}

_public_ int cit_identity_rotate(json_t **out, cit_ctx *ctx, const char *name, const char *auth_file) {
    cit_error_clear();
    cit_object o = {0};
    int r = find_identity(ctx, name, &o); /* key rotate refuses authorities in use */
    cit__object_clear(&o);
    if (r == 0)
        r = cit_key_rotate(out, ctx, name, auth_file);
    if (r == 0 && *out && !ctx->plan)
        json_object_set_new(*out, "certificate", json_string("the new key has none: make a CSR and import the certificate"));
    return r;
}

_public_ int cit_identity_delete(json_t **out, cit_ctx *ctx, const char *name, bool force) {
    cit_error_clear();
    cit_object o = {0};
    int r = find_identity(ctx, name, &o); /* object delete refuses authorities in use without force */
    cit__object_clear(&o);
    if (r == 0)
        r = cit_object_delete(out, ctx, name, "key", force);
    return r;
}

/* ---- CSR and certificates ---- */

int cit__x509_name_parse(const char *subject, X509_NAME **out) {
    if (strlen(subject) > CSR_SUBJECT_MAX) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "the subject is longer than %d characters", CSR_SUBJECT_MAX);
        return CIT_E_INPUT_TOO_LARGE;
    }
    X509_NAME *n = X509_NAME_new();
    char *copy = strdup(subject);
    int r = n && copy ? 0 : cit_error_set(CIT_E_INTERNAL, "out of memory");
    char sep = subject[0] == '/' ? '/' : ',';
    char *save = NULL;
    for (char *tok = r == 0 ? strtok_r(copy, sep == '/' ? "/" : ",", &save) : NULL; tok && r == 0;
         tok = strtok_r(NULL, sep == '/' ? "/" : ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1]) {
            r = cit_error_set(CIT_E_USAGE, "invalid subject component '%s'", tok);
            cit_error_cause("write the subject as /CN=name/O=org or CN=name,O=org");
            break;
        }
        *eq = 0;
        if (!X509_NAME_add_entry_by_txt(n, tok, MBSTRING_UTF8, (const unsigned char *)eq + 1, -1, -1, 0)) {
            r = cit_error_set(CIT_E_USAGE, "invalid subject component '%s=%s'", tok, eq + 1);
            cit_error_cause("an unknown attribute, or a value it does not take (C is two letters)");
            cit_error_cause("attributes such as CN, O, OU, C, ST, L, emailAddress");
        }
    }
    if (r == 0 && X509_NAME_entry_count(n) == 0)
        r = cit_error_set(CIT_E_USAGE, "the subject is empty");
    free(copy);
    if (r < 0) {
        X509_NAME_free(n);
        return r;
    }
    *out = n;
    return 0;
}

static int add_ext(STACK_OF(X509_EXTENSION) * exts, int nid, const char *value) {
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
    if (!e) {
        cit_error_set(CIT_E_USAGE, "invalid extension value: %s", value);
        if (nid == NID_subject_alt_name)
            cit_error_cause("write names as DNS:example.org,IP:192.0.2.1,email:a@example.org,URI:spiffe://x/y");
        return CIT_E_USAGE;
    }
    sk_X509_EXTENSION_push(exts, e);
    return 0;
}

_public_ int cit_identity_csr(json_t **out, cit_ctx *ctx, const char *name, const char *subject, const char *san,
                              const char *output, const char *auth_file) {
    cit_error_clear();
    if (!subject) {
        cit_error_set(CIT_E_USAGE, "give the subject with --subject, e.g. --subject /CN=build.example.org");
        return CIT_E_USAGE;
    }
    cit_object o = {0};
    int r = find_identity(ctx, name, &o);
    if (r == 0)
        r = cit__require_active(&o);
    if (r < 0)
        return r;
    X509_NAME *xn = NULL;
    X509_REQ *req = NULL;
    EVP_PKEY *pk = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_ALGOR *alg = NULL;
    uint8_t *tbs = NULL, *sb = NULL;
    size_t sl = 0;
    char *pem = NULL;
    json_t *meta = NULL, *id = identity_meta(&o, &meta);
    const char *usage = json_string_value(json_object_get(id, "usage")) ?: "code-signing";
    if (strcmp(usage, "authority") == 0) {
        r = cit_error_set(CIT_E_USAGE, "%s is an authority: it signs approvals only", name);
        goto done;
    }
    if (strcmp(o.scheme, "rsapss") == 0) {
        r = cit_error_set(CIT_E_ALG_UNSUPPORTED, "CSRs for RSA-PSS keys are not supported");
        cit_error_cause("make the identity with --algorithm ecc-p256 or an rsassa key");
        goto done;
    }
    if ((r = cit__x509_name_parse(subject, &xn)) < 0)
        goto done;
    exts = sk_X509_EXTENSION_new_null();
    const char *eku = strcmp(usage, "code-signing") == 0 ? "codeSigning"
                      : strcmp(usage, "tls-server") == 0 ? "serverAuth"
                      : strcmp(usage, "tls-client") == 0 ? "clientAuth"
                                                          : NULL;
    if ((r = add_ext(exts, NID_key_usage, "critical,digitalSignature")) < 0 ||
        (eku && (r = add_ext(exts, NID_ext_key_usage, eku)) < 0) || (san && (r = add_ext(exts, NID_subject_alt_name, san)) < 0))
        goto done;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_Load", "TPM2_Sign (the CSR's to-be-signed bytes)", NULL};
        *out = cit__plan("make a certificate signing request signed in the TPM", ops);
        goto done;
    }
    cit_object_version v = {0};
    TPM2B_PUBLIC pub;
    r = cit__version_get(ctx->store, o.id, o.version, &v);
    if (r == 0)
        r = cit__public_unmarshal(&v, &pub);
    cit__version_clear(&v);
    if (r == 0)
        r = cit__pubkey_from_tpm(&pk, &pub);
    if (r < 0)
        goto done;
    TPMI_ALG_HASH halg;
    cit__hash_from_name(cit__key_default_hash(o.algorithm), &halg);
    bool ecc = strncmp(o.algorithm, "ecc", 3) == 0;
    int signid = ecc ? (halg == TPM2_ALG_SHA384 ? NID_ecdsa_with_SHA384 : NID_ecdsa_with_SHA256)
                     : (halg == TPM2_ALG_SHA384 ? NID_sha384WithRSAEncryption : NID_sha256WithRSAEncryption);
    req = X509_REQ_new();
    alg = X509_ALGOR_new();
    if (!req || !alg || !X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, xn) ||
        !X509_REQ_set_pubkey(req, pk) || !X509_REQ_add_extensions(req, exts) ||
        !X509_ALGOR_set0(alg, OBJ_nid2obj(signid), ecc ? V_ASN1_UNDEF : V_ASN1_NULL, NULL) ||
        !X509_REQ_set1_signature_algo(req, alg)) {
        r = cit__openssl_error(CIT_E_CRYPTO, "building the CSR");
        goto done;
    }
    int tl = i2d_re_X509_REQ_tbs(req, &tbs);
    uint8_t md[64];
    size_t mdlen = 0;
    TPMT_SIGNATURE *sig = NULL;
    if (tl <= 0) {
        r = cit__openssl_error(CIT_E_CRYPTO, "encoding the CSR");
        goto done;
    }
    if ((r = cit__digest(halg, tbs, (size_t)tl, md, &mdlen)) < 0 ||
        (r = cit__key_sign_digest(ctx, &o, halg, md, mdlen, auth_file, &sig)) < 0)
        goto done;
    r = cit__sig_encode(&sb, &sl, sig, CIT_SIG_ENC_DER, strcmp(o.algorithm, "ecc-p384") == 0 ? 48 : 32);
    Esys_Free(sig);
    if (r < 0)
        goto done;
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    if (!bs || !ASN1_BIT_STRING_set(bs, sb, (int)sl)) {
        ASN1_BIT_STRING_free(bs);
        r = cit__openssl_error(CIT_E_CRYPTO, "the CSR signature");
        goto done;
    }
    bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bs);
    BIO *m = BIO_new(BIO_s_mem());
    if (!m || !PEM_write_bio_X509_REQ(m, req)) {
        BIO_free(m);
        r = cit__openssl_error(CIT_E_CRYPTO, "writing the CSR");
        goto done;
    }
    /* our own check that what we hand out verifies */
    if (X509_REQ_verify(req, pk) != 1) {
        BIO_free(m);
        r = cit__openssl_error(CIT_E_SIGNATURE_INVALID, "the CSR's TPM signature does not verify");
        goto done;
    }
    char *p = NULL;
    long pl = BIO_get_mem_data(m, &p);
    pem = strndup(p, (size_t)pl);
    BIO_free(m);
    if (output) {
        int w = cit_write_file_atomic(output, (const uint8_t *)pem, strlen(pem), 0644, 0);
        if (w < 0) {
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-w));
            cit_error_context("file", "%s", output);
            goto done;
        }
    }
    *out = json_pack("{s:s,s:s,s:s,s:s?,s:s}", "identity", name, "subject", subject, "usage", usage, "san", san,
                     "signature_algorithm", OBJ_nid2sn(signid));
    if (output)
        json_object_set_new(*out, "output", json_string(output));
    else {
        json_object_set_new(*out, "csr_pem", json_string(pem));
        json_object_set_new(*out, "_text", json_string(pem));
    }
    cit__store_event(ctx->store, "identity.csr", o.path, o.id, "ok", NULL);
done:
    free(pem);
    free(sb);
    OPENSSL_free(tbs);
    X509_ALGOR_free(alg);
    X509_REQ_free(req);
    EVP_PKEY_free(pk);
    X509_NAME_free(xn);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    json_decref(meta);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_identity_cert_import(json_t **out, cit_ctx *ctx, const char *name, const char *input) {
    cit_error_clear();
    cit_object o = {0};
    int r = find_identity(ctx, name, &o);
    if (r < 0)
        return r;
    uint8_t *buf = NULL;
    size_t len = 0;
    X509 *x = NULL;
    EVP_PKEY *pk = NULL;
    char *pem = NULL;
    r = cit__read_input(input, CERT_MAX, "the certificate", false, &buf, &len);
    if (r < 0)
        goto done;
    BIO *b = BIO_new_mem_buf(buf, (int)len);
    x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    if (!x) {
        const uint8_t *p = buf;
        x = d2i_X509(NULL, &p, (long)len);
    }
    BIO_free(b);
    if (!x) {
        r = cit_error_set(CIT_E_INPUT_INVALID, "%s is not an X.509 certificate (PEM or DER)", input);
        cit_error_context("file", "%s", input);
        goto done;
    }
    cit_object_version v = {0};
    TPM2B_PUBLIC pub;
    r = cit__version_get(ctx->store, o.id, o.version, &v);
    if (r == 0)
        r = cit__public_unmarshal(&v, &pub);
    if (r == 0)
        r = cit__pubkey_from_tpm(&pk, &pub);
    if (r == 0 && EVP_PKEY_eq(X509_get0_pubkey(x), pk) != 1) {
        r = cit_error_set(CIT_E_CERT_MISMATCH, "the certificate is not for %s: its public key differs", name);
        cit_error_cause("it was issued for another key (or for an earlier version of this identity)");
        cit_error_context("path", "%s", name);
    }
    if (r < 0) {
        cit__version_clear(&v);
        goto done;
    }
    if (ctx->plan) {
        *out = cit__plan("store the certificate with the identity (no TPM operations)", NULL);
        cit__version_clear(&v);
        goto done;
    }
    BIO *m = BIO_new(BIO_s_mem());
    char *p = NULL;
    long pl = 0;
    if (m && PEM_write_bio_X509(m, x))
        pl = BIO_get_mem_data(m, &p);
    pem = pl > 0 ? strndup(p, (size_t)pl) : NULL;
    BIO_free(m);
    if (!pem) {
        cit__version_clear(&v);
        r = cit__openssl_error(CIT_E_CRYPTO, "encoding the certificate");
        goto done;
    }
    r = cit__store_begin(ctx->store);
    if (r == 0)
        r = cit__version_set_payload(ctx->store, o.id, o.version, (const uint8_t *)pem, strlen(pem));
    if (r == 0)
        r = cit__store_event(ctx->store, "identity.cert-import", o.path, o.id, "ok", NULL);
    if (r == 0)
        r = cit__store_commit(ctx->store);
    else
        cit__store_rollback(ctx->store);
    cit__version_clear(&v);
    if (r == 0) {
        json_t *c = cert_summary((const uint8_t *)pem, strlen(pem));
        json_object_del(c, "pem");
        *out = json_pack("{s:s,s:i,s:o}", "identity", name, "version", o.version, "certificate", c ? c : json_object());
    }
done:
    free(pem);
    EVP_PKEY_free(pk);
    X509_free(x);
    free(buf);
    cit__object_clear(&o);
    return r;
}

int cit__approvals_covering(cit_ctx *ctx, const json_t *pcrs, json_t **out) {
    *out = NULL;
    cit_store *s = ctx->store;
    if (!s && (!ctx->store_path || access(ctx->store_path, F_OK) != 0))
        return -1; /* no workspace here: nothing to report, nothing created */
    if (!s && cit__ctx_store(ctx, &s) < 0)
        return -1;
    sqlite3_stmt *st;
    if (cit__store_prepare(s, &st, "SELECT id, authority, pcrs, created_at FROM approvals ORDER BY id") < 0)
        return -1;
    json_t *a = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *list = json_loads((const char *)sqlite3_column_text(st, 2) ?: "[]", 0, NULL);
        bool all = json_array_size(list) > 0;
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) {
            char k[8];
            snprintf(k, sizeof k, "%lld", json_integer_value(json_object_get(e, "index")));
            const char *now = json_string_value(
                json_object_get(json_object_get(pcrs, json_string_value(json_object_get(e, "bank")) ?: ""), k));
            const char *ok = json_string_value(json_object_get(e, "value"));
            if (!now || !ok || strcasecmp(now, ok) != 0)
                all = false;
        }
        if (all) {
            char when[32];
            cit_time_rfc3339(when, sizeof when, sqlite3_column_int64(st, 3));
            json_array_append_new(a, json_pack("{s:s,s:I,s:s}", "authority", (const char *)sqlite3_column_text(st, 1) ?: "",
                                               "approval", (json_int_t)sqlite3_column_int64(st, 0), "approved", when));
        }
        json_decref(list);
    }
    sqlite3_finalize(st);
    *out = a;
    return 0;
}
