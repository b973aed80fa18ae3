/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attestation keys and quotes (docs/attestation.md).
 *
 * An AK is a restricted ECDSA P-256 (or RSASSA 2048) signing key created under the EK, the
 * shape tpm2_createak and go-attestation use: object kind "ak", its wrapped private part in the
 * store, loaded under a freshly derived EK through the EK's policy session. A quote is one JSON
 * file: the TPMS_ATTEST bytes (what `tpm2_quote -m` writes), the TPMT_SIGNATURE (`-s`), the PCR
 * values, the AK's public key and name, and optionally an event log. Verification runs in
 * software and reports each check on its own.
 */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "attest/eventlog.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "core/attest.h"
#include "core/ek.h"
#include "core/keys.h"
#include "core/profiles.h"
#include "crypto/crypto.h"
#include "ctx.h"
#include "out/jparse.h"
#include "store/intents.h"

#define QUOTE_FILE_MAX (96u * 1024 * 1024) /* with an embedded event log */
#define NONCE_MAX 64
#define TPM_GENERATED 0xff544347u

/* ---- AK ---- */

static int ak_template(const char *algorithm, TPM2B_PUBLIC *pub) {
    memset(pub, 0, sizeof(*pub));
    TPMT_PUBLIC *p = &pub->publicArea;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                          TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
    if (strcmp(algorithm, "ecc-p256") == 0) {
        p->type = TPM2_ALG_ECC;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
        p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    } else if (strcmp(algorithm, "rsa-2048") == 0) {
        p->type = TPM2_ALG_RSA;
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
        p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
        p->parameters.rsaDetail.keyBits = 2048;
    } else {
        cit_error_set(CIT_E_ALG_UNSUPPORTED, "an AK is ecc-p256 or rsa-2048, not %s", algorithm);
        return CIT_E_ALG_UNSUPPORTED;
    }
    return 0;
}

static const char *ak_ek_algorithm(const cit_object *o) {
    return strstr(o->metadata ? o->metadata : "", "\"ek\":\"rsa-2048\"") ? "rsa-2048" : "ecc-p256";
}

_public_ int cit_attest_ak_create(json_t **out, cit_ctx *ctx, const char *path, const char *algorithm) {
    return cit_attest_ak_create_ex(out, ctx, path, algorithm, false);
}

_public_ int cit_attest_ak_create_ex(json_t **out, cit_ctx *ctx, const char *path, const char *algorithm,
                                     bool persist) {
    cit_error_clear();
    const char *alg = algorithm ? algorithm : "ecc-p256";
    TPM2B_PUBLIC tmpl;
    int r = cit__check_path(path);
    if (r == 0)
        r = ak_template(alg, &tmpl);
    cit_store *s;
    if (r == 0)
        r = cit__ctx_store(ctx, &s);
    if (r == 0)
        r = cit__profile_check(ctx, path, NULL);
    if (r < 0)
        return r;
    cit_object ex = {0};
    if (cit__object_find(s, path, &ex) == 0) {
        cit__object_clear(&ex);
        cit_error_set(CIT_E_OBJECT_EXISTS, "object already exists: %s", path);
        cit_error_context("path", "%s", path);
        return CIT_E_OBJECT_EXISTS;
    }
    cit_error_clear();
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_CreatePrimary (the EK, endorsement hierarchy)",
                                          "TPM2_StartAuthSession + TPM2_PolicySecret (EK policy)",
                                          "TPM2_Create (restricted signing key under the EK)", "TPM2_FlushContext",
                                          NULL};
        *out = cit__plan("create an attestation key under the endorsement key", ops);
        return 0;
    }
    const char *ek_alg = strcmp(alg, "rsa-2048") == 0 ? "rsa-2048" : "ecc-p256";
    ESYS_TR ek = ESYS_TR_NONE, sess = ESYS_TR_NONE;
    TPM2B_PUBLIC ek_pub;
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_PRIVATE *priv = NULL;
    cit_object_version v = {.version = 1};
    cit_object o = {0};
    int64_t intent = 0;
    r = cit__ek_load(ctx, ek_alg, &ek, &ek_pub);
    if (r == 0)
        r = cit__ek_policy_session(ctx, &ek_pub, &sess);
    if (r < 0)
        goto done;
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION none = {0};
    TSS2_RC rc = Esys_Create(ctx->tpm->esys, ek, sess, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &none,
                             &priv, &pub, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        cit__tpm_flush(ctx->tpm, &sess);
        r = cit__tss_error(ctx->tpm, CIT_E_TPM_COMMAND, rc, "TPM2_Create failed for the AK %s", path);
        goto done;
    }
    if ((r = cit__version_set_tpm(&v, pub, priv)) < 0)
        goto done;
    if (persist) {
        /* resident at a persistent handle: quotes need neither the EK nor a load */
        ESYS_TR h = ESYS_TR_NONE, ph = ESYS_TR_NONE;
        uint32_t handle = 0;
        r = cit__ek_policy_session(ctx, &ek_pub, &sess);
        if (r == 0) {
            rc = Esys_Load(ctx->tpm->esys, ek, sess, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &h);
            if (rc != TSS2_RC_SUCCESS) {
                cit__tpm_flush(ctx->tpm, &sess);
                r = cit__tss_error(ctx->tpm, CIT_E_KEY_LOAD, rc, "cannot load the new AK %s", path);
            }
        }
        if (r == 0)
            r = cit__free_persistent_handle(ctx, &handle);
        if (r == 0) /* journalled before the TPM changes (see store/intents.h) */
            r = cit__intent_add(s, "ak.create", path, 0, handle, v.name, v.name_len, NULL, &intent);
        if (r == 0) {
            rc = Esys_EvictControl(ctx->tpm->esys, ESYS_TR_RH_OWNER, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                   handle, &ph);
            if (rc != TSS2_RC_SUCCESS)
                r = cit__tss_error(ctx->tpm, CIT_E_TPM_COMMAND, rc, "cannot make the AK %s persistent", path);
            else {
                Esys_TR_Close(ctx->tpm->esys, &ph);
                o.persistent_handle = handle;
            }
        }
        if (h != ESYS_TR_NONE)
            cit__tpm_flush(ctx->tpm, &h);
        if (r == 0)
            r = cit__ctx_tpm_sync(ctx); /* the handle is durable before the store names it */
        if (r < 0) {
            cit_error saved = *cit_error_last();
            if (!o.persistent_handle || cit__evict_handle(ctx, o.persistent_handle) == 0)
                cit__intent_clear(s, intent);
            cit_error_restore(&saved);
            goto done;
        }
    }
    snprintf(o.path, sizeof o.path, "%s", path);
    snprintf(o.kind, sizeof o.kind, "ak");
    snprintf(o.status, sizeof o.status, "active");
    snprintf(o.algorithm, sizeof o.algorithm, "%s", alg);
    snprintf(o.scheme, sizeof o.scheme, "%s", strcmp(alg, "rsa-2048") == 0 ? "rsassa" : "ecdsa");
    snprintf(o.usage, sizeof o.usage, "attest");
    o.version = 1;
    json_t *meta = json_pack("{s:s}", "ek", ek_alg);
    o.metadata = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(meta);
    r = cit__store_begin(s);
    if (r == 0)
        r = cit__object_insert(s, &o);
    if (r == 0)
        r = cit__version_insert(s, o.id, &v);
    if (r == 0) {
        json_t *d = json_pack("{s:s,s:s}", "algorithm", alg, "ek", ek_alg);
        r = cit__store_event(s, "ak.create", o.path, o.id, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__intent_clear(s, intent);
    if (r == 0)
        r = cit__store_commit(s);
    else
        cit__store_rollback(s);
    if (r < 0) { /* undo, reporting the failure that made us undo; the intent stays if it fails */
        cit_error saved = *cit_error_last();
        if (!o.persistent_handle ||
            (cit__evict_handle(ctx, o.persistent_handle) == 0 && cit__ctx_tpm_sync(ctx) == 0))
            cit__intent_clear(s, intent);
        cit_error_restore(&saved);
    }
    if (r == 0)
        r = cit_attest_ak_show(out, ctx, path);
done:
    if (ek != ESYS_TR_NONE)
        cit__tpm_flush(ctx->tpm, &ek);
    Esys_Free(pub);
    Esys_Free(priv);
    cit__version_clear(&v);
    cit__object_clear(&o);
    return r;
}

/* The AK's context kept by an earlier load (cit__tpm_ctx_keep; vTPM only), when the TPM takes it
 * back and the object it holds has the AK's TPM name: true with *h loaded. Saves the EK's
 * derivation, its policy session and the load (tpm2-tss hashes eight times on that way, 0.8 ms
 * each). A context that fails the name check is dropped. */
static bool ak_restore(cit_ctx *ctx, const cit_object *o, const cit_object_version *v, ESYS_TR *h) {
    cit_tpm *t;
    if (cit__ctx_tpm(ctx, &t) < 0) {
        cit_error_clear(); /* the full way reports it */
        return false;
    }
    if (cit__tpm_ctx_restore(t, o->id, o->version, h) < 0)
        return false;
    bool same = cit__tpm_name_is(t, *h, v->name, v->name_len);
    if (!same) {
        cit__tpm_flush(t, h);
        cit__tpm_ctx_forget(t, o->id, o->version);
    }
    return same;
}

/* Loads the AK under its EK: *h is transient (flush it). */
static int ak_load_ek(cit_ctx *ctx, const cit_object *o, bool kept_ok, ESYS_TR *h, TPM2B_PUBLIC *pub, ESYS_TR *ek_out,
                      TPM2B_PUBLIC *ek_pub_out) {
    cit_object_version v = {0};
    TPM2B_PRIVATE priv = {0};
    ESYS_TR ek = ESYS_TR_NONE, sess = ESYS_TR_NONE;
    TPM2B_PUBLIC ek_pub;
    size_t off = 0;
    int r = cit__version_get(ctx->store, o->id, o->version, &v);
    if (r == 0 && (cit__public_unmarshal(&v, pub) < 0 ||
                   Tss2_MU_TPM2B_PRIVATE_Unmarshal(v.priv, v.priv_len, &off, &priv) != TSS2_RC_SUCCESS))
        r = cit_error_set(CIT_E_STORE_IO, "the stored AK %s is damaged", o->path);
    if (r == 0 && o->persistent_handle) {
        /* resident: checked by TPM name like persistent keys; the EK only when asked for */
        bool pers = false;
        /* the EK first: deriving it drops the context's cached key, which would be this AK */
        if (ek_out)
            r = cit__ek_load(ctx, ak_ek_algorithm(o), ek_out, ek_pub_out);
        if (r == 0)
            r = cit__key_load(ctx, o, o->version, h, &pers);
        if (r < 0 && ek_out && *ek_out != ESYS_TR_NONE)
            cit__tpm_flush(ctx->tpm, ek_out);
        cit_memzero(&priv, sizeof priv);
        cit__version_clear(&v);
        return r;
    }
    if (r == 0 && kept_ok && !ek_out && ak_restore(ctx, o, &v, h)) {
        cit_memzero(&priv, sizeof priv);
        cit__version_clear(&v);
        return 0;
    }
    if (r == 0)
        r = cit__ek_load(ctx, ak_ek_algorithm(o), &ek, &ek_pub);
    if (r == 0)
        r = cit__ek_policy_session(ctx, &ek_pub, &sess);
    if (r == 0) {
        TSS2_RC rc = Esys_Load(ctx->tpm->esys, ek, sess, ESYS_TR_NONE, ESYS_TR_NONE, &priv, pub, h);
        if (rc != TSS2_RC_SUCCESS) {
            cit__tpm_flush(ctx->tpm, &sess);
            r = cit__tss_error(ctx->tpm, CIT_E_KEY_LOAD, rc, "cannot load the AK %s under the EK", o->path);
            cit_error_cause("the AK was created under another TPM's EK, or the endorsement hierarchy was changed");
            cit_error_context("path", "%s", o->path);
        }
    }
    if (r == 0) /* the next process loads this context instead (vTPM) */
        cit__tpm_ctx_keep(ctx->tpm, o->id, o->version, *h);
    if (r == 0 && ek_out) { /* the caller keeps the EK */
        *ek_out = ek;
        *ek_pub_out = ek_pub;
        ek = ESYS_TR_NONE;
    }
    if (ek != ESYS_TR_NONE)
        cit__tpm_flush(ctx->tpm, &ek);
    cit_memzero(&priv, sizeof priv);
    cit__version_clear(&v);
    return r;
}

static int ak_load(cit_ctx *ctx, const cit_object *o, ESYS_TR *h, TPM2B_PUBLIC *pub) {
    return ak_load_ek(ctx, o, true, h, pub, NULL, NULL);
}

int cit__ak_load_transient(cit_ctx *ctx, const cit_object *o, bool from_blob, ESYS_TR *h) {
    cit_object tmp = *o;
    tmp.persistent_handle = 0;
    TPM2B_PUBLIC pub;
    return ak_load_ek(ctx, &tmp, !from_blob, h, &pub, NULL, NULL);
}

/* Releases what ak_load gave: a transient AK is flushed, a persistent one only closed. */
static void cit__ak_unload(cit_ctx *ctx, const cit_object *o, ESYS_TR *h) {
    if (*h == ESYS_TR_NONE)
        return;
    if (o->persistent_handle)
        cit__key_unload(ctx, h, true);
    else
        cit__tpm_flush(ctx->tpm, h);
    *h = ESYS_TR_NONE;
}

static int find_ak(cit_ctx *ctx, const char *path, cit_object *o) {
    int r = cit__ctx_find(ctx, path, o);
    if (r == 0)
        r = cit__require_kind(o, "ak");
    if (r < 0)
        cit__object_clear(o);
    return r;
}

static json_t *public_summary(const TPM2B_PUBLIC *pub) {
    char *pem = NULL;
    uint8_t nb[sizeof(TPMU_NAME) + 2];
    size_t nl = 0;
    json_t *j = json_object();
    if (cit__name_from_public(pub, nb, &nl) == 0) {
        char *h = cit_hex_encode(nb, nl);
        json_object_set_new(j, "ak_name", json_string(h));
        free(h);
    }
    if (cit__tpm_public_pem(&pem, pub) == 0)
        json_object_set_new(j, "ak_public_pem", json_string(pem));
    free(pem);
    cit_error_clear();
    return j;
}

_public_ int cit_attest_ak_show(json_t **out, cit_ctx *ctx, const char *path) {
    cit_error_clear();
    cit_object o = {0};
    int r = find_ak(ctx, path, &o);
    if (r < 0)
        return r;
    cit_object_version v = {0};
    TPM2B_PUBLIC pub;
    r = cit__version_get(ctx->store, o.id, o.version, &v);
    if (r == 0)
        r = cit__public_unmarshal(&v, &pub);
    if (r == 0) {
        json_t *j = cit__object_json(&o, ctx->store);
        json_t *ps = public_summary(&pub);
        json_object_update(j, ps);
        json_decref(ps);
        TPMA_OBJECT a = pub.publicArea.objectAttributes;
        json_object_set_new(j, "attributes",
                            json_pack("{s:b,s:b,s:b,s:b,s:b}", "restricted", (a & TPMA_OBJECT_RESTRICTED) != 0, "sign",
                                      (a & TPMA_OBJECT_SIGN_ENCRYPT) != 0, "fixed_tpm", (a & TPMA_OBJECT_FIXEDTPM) != 0,
                                      "fixed_parent", (a & TPMA_OBJECT_FIXEDPARENT) != 0, "sensitive_data_origin",
                                      (a & TPMA_OBJECT_SENSITIVEDATAORIGIN) != 0));
        uint8_t pb[sizeof(TPM2B_PUBLIC)];
        size_t po = 0;
        if (Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, pb, sizeof pb, &po) == TSS2_RC_SUCCESS) {
            char *b64 = NULL;
            if (cit__base64_encode(&b64, pb, po) == 0)
                json_object_set_new(j, "ak_tpm2b_public_base64", json_string(b64));
            free(b64);
        }
        *out = j;
    }
    cit__version_clear(&v);
    cit__object_clear(&o);
    return r;
}

/* ---- quote ---- */

static int parse_nonce(const char *hex, TPM2B_DATA *out) {
    uint8_t *b = NULL;
    size_t n = 0;
    if (!hex || cit_hex_decode(&b, &n, hex) < 0 || n == 0 || n > NONCE_MAX) {
        free(b);
        cit_error_set(CIT_E_USAGE, "the nonce must be 1 to %d bytes of hex", NONCE_MAX);
        cit_error_cause("as `tpm2_quote -q` takes it, e.g. --nonce $(openssl rand -hex 20)");
        return CIT_E_USAGE;
    }
    out->size = (UINT16)n;
    memcpy(out->buffer, b, n);
    free(b);
    return 0;
}

static int pcr_json(cit_tpm *t, const TPML_PCR_SELECTION *sel, json_t **out) {
    json_t *banks = json_object();
    for (uint32_t b = 0; b < sel->count; b++) {
        uint32_t mask = 0;
        for (int i = 0; i < 24; i++)
            if (sel->pcrSelections[b].pcrSelect[i / 8] & (1u << (i % 8)))
                mask |= 1u << i;
        char *values[24] = {0};
        int r = cit__pcr_read(t, sel->pcrSelections[b].hash, mask, values);
        if (r < 0) {
            json_decref(banks);
            return r;
        }
        json_t *bj = json_object();
        for (int i = 0; i < 24; i++)
            if (values[i]) {
                char k[4];
                snprintf(k, sizeof k, "%d", i);
                json_object_set_new(bj, k, json_string(values[i]));
            }
        cit__pcr_values_free(values);
        json_object_set_new(banks, cit__hash_name(sel->pcrSelections[b].hash), bj);
    }
    *out = banks;
    return 0;
}

_public_ int cit_attest_quote(json_t **out, cit_ctx *ctx, const char *ak, const char *pcrs, const char *bank,
                              const char *nonce_hex, const char *output, const char *eventlog) {
    cit_error_clear();
    TPM2B_DATA nonce = {0};
    uint32_t mask = 0;
    TPMI_ALG_HASH alg = TPM2_ALG_SHA256;
    int r = parse_nonce(nonce_hex, &nonce);
    if (r == 0)
        r = pcrs ? cit__pcr_parse_list(pcrs, &mask) : cit_error_set(CIT_E_USAGE, "give the PCRs to quote with --pcr");
    if (r == 0 && !mask)
        r = cit_error_set(CIT_E_PCR_INVALID, "--pcr names no PCR");
    if (r == 0 && bank && cit__hash_from_name(bank, &alg) < 0)
        r = cit_error_set(CIT_E_BANK_UNSUPPORTED, "unknown PCR bank: %s", bank);
    if (r < 0)
        return r;
    uint8_t *log = NULL;
    size_t log_len = 0;
    if (eventlog && (r = cit__read_input(eventlog, CIT_EVENTLOG_MAX, "the event log", false, &log, &log_len)) < 0)
        return r;
    cit_object o = {0};
    r = find_ak(ctx, ak, &o);
    if (r == 0)
        r = cit__require_active(&o);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_CreatePrimary (the EK)", "TPM2_PolicySecret (EK policy)",
                                          "TPM2_Load (the AK)", "TPM2_PCR_Read", "TPM2_Quote", "TPM2_FlushContext",
                                          NULL};
        *out = cit__plan("quote PCR values with the attestation key", ops);
        goto done;
    }
    TPML_PCR_SELECTION sel = {.count = 1};
    sel.pcrSelections[0].hash = alg;
    sel.pcrSelections[0].sizeofSelect = 3;
    for (int i = 0; i < 24; i++)
        if (mask & (1u << i))
            sel.pcrSelections[0].pcrSelect[i / 8] |= (uint8_t)(1u << (i % 8));
    cit_tpm *t;
    ESYS_TR h = ESYS_TR_NONE;
    TPM2B_PUBLIC pub;
    TPM2B_ATTEST *quoted = NULL;
    TPMT_SIGNATURE *sig = NULL;
    json_t *values = NULL;
    r = cit__ctx_tpm(ctx, &t);
    if (r == 0)
        r = ak_load(ctx, &o, &h, &pub);
    if (r < 0)
        goto done;
    TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL}; /* the AK's own */
    /* the PCR values read right after the quote must be the quoted ones: a PCR extended in
     * between (another process) shows as a digest mismatch, so quote again */
    for (int attempt = 0; attempt < 3; attempt++) {
        Esys_Free(quoted);
        Esys_Free(sig);
        json_decref(values);
        quoted = NULL;
        sig = NULL;
        values = NULL;
        TSS2_RC rc = Esys_Quote(t->esys, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &nonce, &scheme, &sel, &quoted,
                                &sig);
        if (rc != TSS2_RC_SUCCESS) {
            r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "TPM2_Quote failed");
            break;
        }
        if ((r = pcr_json(t, &sel, &values)) < 0)
            break;
        TPMS_ATTEST a = {0};
        size_t off = 0;
        json_t *bj = json_object_get(values, cit__hash_name(alg));
        uint8_t cat[24 * 64], md[64];
        size_t cl = 0, ml = 0;
        for (int i = 0; i < 24; i++)
            if (mask & (1u << i)) {
                char k[4];
                snprintf(k, sizeof k, "%d", i);
                uint8_t *v = NULL;
                size_t vl = 0;
                if (cit_hex_decode(&v, &vl, json_string_value(json_object_get(bj, k)) ?: "") == 0 && cl + vl <= sizeof cat) {
                    memcpy(cat + cl, v, vl);
                    cl += vl;
                }
                free(v);
            }
        if (Tss2_MU_TPMS_ATTEST_Unmarshal(quoted->attestationData, quoted->size, &off, &a) == TSS2_RC_SUCCESS &&
            cit__digest(sig->signature.any.hashAlg, cat, cl, md, &ml) == 0 &&
            a.attested.quote.pcrDigest.size == ml && memcmp(a.attested.quote.pcrDigest.buffer, md, ml) == 0)
            break;
        r = cit_error_set(CIT_E_TPM_COMMAND, "the PCRs kept changing while they were quoted");
    }
    cit__ak_unload(ctx, &o, &h);
    if (r < 0)
        goto free_q;
    uint8_t sb[sizeof(TPMT_SIGNATURE)];
    size_t sl = 0;
    Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sb, sizeof sb, &sl);
    char *ab64 = NULL, *sb64 = NULL, *lb64 = NULL;
    cit__base64_encode(&ab64, quoted->attestationData, quoted->size);
    cit__base64_encode(&sb64, sb, sl);
    if (log)
        cit__base64_encode(&lb64, log, log_len);
    json_t *q = json_pack("{s:i,s:s,s:s,s:s,s:O}", "version", 1, "attest", ab64 ? ab64 : "", "signature",
                          sb64 ? sb64 : "", "nonce", nonce_hex, "pcrs", values);
    json_t *ps = public_summary(&pub);
    json_object_update(q, ps);
    json_decref(ps);
    if (lb64)
        json_object_set_new(q, "eventlog", json_string(lb64));
    free(ab64);
    free(sb64);
    free(lb64);
    char *text = json_dumps(q, JSON_INDENT(2));
    if (output) {
        int w = text ? cit_write_file_atomic(output, (const uint8_t *)text, strlen(text), 0644, 0) : -ENOMEM;
        if (w < 0) {
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-w));
            cit_error_context("file", "%s", output);
        }
    }
    if (r == 0) {
        *out = json_pack("{s:s,s:s,s:O,s:s}", "ak", o.path, "nonce", nonce_hex, "pcrs", values, "ak_name",
                         json_string_value(json_object_get(q, "ak_name")) ?: "");
        if (output)
            json_object_set_new(*out, "output", json_string(output));
        else
            json_object_set_new(*out, "quote", json_incref(q));
    }
    free(text);
    json_decref(q);
free_q:
    Esys_Free(quoted);
    Esys_Free(sig);
    json_decref(values);
done:
    free(log);
    cit__object_clear(&o);
    return r;
}

/* ---- verification (software only) ---- */

/* Replays the log and compares every quoted bank's PCRs; detail gets the mismatches. */
static int eventlog_check(const uint8_t *log, size_t ll, const json_t *pcrs, char *detail, size_t dl) {
    const char *bank;
    json_t *bj;
    json_object_foreach((json_t *)pcrs, bank, bj) {
        TPMI_ALG_HASH alg;
        if (cit__hash_from_name(bank, &alg) < 0)
            return cit_error_last()->code;
        uint32_t idx[24];
        uint8_t (*exp)[CIT_EVENTLOG_MAX_DIGEST] = calloc(24, CIT_EVENTLOG_MAX_DIGEST);
        size_t n = 0;
        const char *k;
        json_t *v;
        if (!exp)
            return cit_error_set(CIT_E_INTERNAL, "out of memory");
        json_object_foreach(bj, k, v) {
            uint32_t i;
            uint8_t *b = NULL;
            size_t bl = 0;
            if (n < 24 && cit_parse_u32(k, &i) == 0 && i < 24 && cit_hex_decode(&b, &bl, json_string_value(v) ?: "") == 0 &&
                bl <= CIT_EVENTLOG_MAX_DIGEST) {
                idx[n] = i;
                memcpy(exp[n], b, bl);
                n++;
            }
            free(b);
        }
        json_t *res = NULL;
        int r = cit__eventlog_check_pcrs(&res, log, ll, alg, idx, (const uint8_t(*)[CIT_EVENTLOG_MAX_DIGEST])exp, n);
        free(exp);
        json_decref(res);
        if (r < 0) {
            const cit_error *e = cit_error_last();
            size_t off = (size_t)snprintf(detail, dl, "%s", e->message);
            for (int c = 0; c < e->n_causes && off < dl; c++)
                off += (size_t)snprintf(detail + off, dl - off, "; %s", e->causes[c]);
            return r;
        }
    }
    return 0;
}

typedef struct {
    json_t *checks;
    int first_code;
} verdicts;

static void verdict(verdicts *v, const char *check, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void verdict(verdicts *v, const char *check, int code, const char *fmt, ...) {
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:s,s:s,s:s}", "check", check, "status", code ? "fail" : "pass", "detail", detail);
    if (code) {
        char c[16];
        snprintf(c, sizeof c, "TPM%04d", -code);
        json_object_set_new(j, "code", json_string(c));
        if (!v->first_code)
            v->first_code = code;
    }
    json_array_append_new(v->checks, j);
}

/* The quote's reported PCR values, concatenated in the attested selection's order. */
static int selected_values(const TPML_PCR_SELECTION *sel, const json_t *pcrs, uint8_t *cat, size_t cap, size_t *len,
                           char *why, size_t wl) {
    *len = 0;
    for (uint32_t b = 0; b < sel->count; b++) {
        const char *bn = cit__hash_name(sel->pcrSelections[b].hash);
        json_t *bj = bn ? json_object_get(pcrs, bn) : NULL;
        for (int i = 0; i < 24 && i < sel->pcrSelections[b].sizeofSelect * 8; i++) {
            if (!(sel->pcrSelections[b].pcrSelect[i / 8] & (1u << (i % 8))))
                continue;
            char k[4];
            snprintf(k, sizeof k, "%d", i);
            uint8_t *v = NULL;
            size_t vl = 0;
            const char *hex = json_string_value(json_object_get(bj, k));
            if (!hex || cit_hex_decode(&v, &vl, hex) < 0 || vl != cit__hash_size(sel->pcrSelections[b].hash) ||
                *len + vl > cap) {
                free(v);
                snprintf(why, wl, "PCR %d (%s) is quoted but its value is missing or malformed in the file", i,
                         bn ? bn : "?");
                return -1;
            }
            memcpy(cat + *len, v, vl);
            *len += vl;
            free(v);
        }
    }
    return 0;
}

/* Every PCR value in the file must be one the quote covers: the baseline and event log checks
 * read the file's values, and a value the TPM did not attest is only the sender's word. */
static int unattested_values(const TPML_PCR_SELECTION *sel, const json_t *pcrs, char *why, size_t wl) {
    const char *bn, *k;
    json_t *bj, *v;
    json_object_foreach((json_t *)pcrs, bn, bj) {
        TPMI_ALG_HASH alg = 0;
        const TPMS_PCR_SELECTION *s = NULL;
        /* the bank's canonical name only: selected_values and the digest read exactly that key */
        if (cit__hash_from_name(bn, &alg) == 0 && cit__hash_name(alg) && strcmp(cit__hash_name(alg), bn) == 0)
            for (uint32_t b = 0; b < sel->count && !s; b++)
                if (sel->pcrSelections[b].hash == alg)
                    s = &sel->pcrSelections[b];
        cit_error_clear();
        if (!json_is_object(bj) || (!s && json_object_size(bj))) {
            snprintf(why, wl, "the file has %s PCR values but the quote does not cover that bank", bn);
            return -1;
        }
        json_object_foreach(bj, k, v) {
            uint32_t i;
            char canon[12];
            bool ok = cit_parse_u32(k, &i) == 0 && i < 24 && i < (uint32_t)s->sizeofSelect * 8 &&
                      (s->pcrSelect[i / 8] & (1u << (i % 8))) && snprintf(canon, sizeof canon, "%u", i) > 0 &&
                      strcmp(canon, k) == 0;
            if (!ok) {
                snprintf(why, wl, "the file has a value for PCR %s (%s) that the quote does not cover", k, bn);
                return -1;
            }
        }
    }
    return 0;
}

int cit__attest_verify_buf(json_t **out, cit_ctx *ctx, const char *quote_file, const uint8_t *buf, size_t len,
                           const char *nonce_hex, EVP_PKEY *ak_key, const char *ak_pub_file, const char *baseline,
                           const char *eventlog, bool *valid) {
    cit_error_clear();
    *valid = false;
    uint8_t *ab = NULL, *sb = NULL, *pem = NULL;
    size_t al = 0, sl = 0, pl = 0;
    json_t *q = NULL;
    EVP_PKEY *pk = NULL;
    int r;
    TPM2B_DATA want_nonce = {0};
    if ((r = parse_nonce(nonce_hex, &want_nonce)) < 0)
        goto done;
    json_error_t je = {0};
    /* the fast reader; jansson again only to say where a bad file goes wrong */
    if (!(q = cit__json_parse((const char *)buf, len)))
        q = json_loadb((const char *)buf, len, 0, &je);
    if (!q || !json_is_object(q) || cit__base64_decode(&ab, &al, json_string_value(json_object_get(q, "attest")) ?: "") < 0 ||
        cit__base64_decode(&sb, &sl, json_string_value(json_object_get(q, "signature")) ?: "") < 0 || !al || !sl ||
        !json_is_object(json_object_get(q, "pcrs"))) {
        r = cit_error_set(CIT_E_QUOTE_MALFORMED, "%s is not a citadel quote", quote_file);
        if (!q)
            cit_error_cause("JSON error at line %d: %s", je.line, je.text);
        else
            cit_error_cause("it needs attest and signature (base64) and pcrs (bank -> index -> hex)");
        cit_error_context("file", "%s", quote_file);
        goto done;
    }
    if (ak_key) {
        pk = ak_key;
        r = EVP_PKEY_up_ref(pk) == 1 ? 0 : cit_error_set(CIT_E_INTERNAL, "cannot reference the AK public key");
    } else if (ak_pub_file) {
        if ((r = cit__read_input(ak_pub_file, 64 * 1024, "the AK public key", false, &pem, &pl)) < 0)
            goto done;
        r = cit__pubkey_from_pem(&pk, (const char *)pem, pl);
    } else {
        const char *p = json_string_value(json_object_get(q, "ak_public_pem"));
        r = p ? cit__pubkey_from_pem(&pk, p, strlen(p))
              : cit_error_set(CIT_E_QUOTE_MALFORMED, "the quote carries no AK public key: give --ak-pub");
    }
    if (r < 0)
        goto done;
    verdicts v = {.checks = json_array()};
    TPMS_ATTEST a = {0};
    TPMT_SIGNATURE sig = {0};
    size_t off = 0, soff = 0;
    bool parsed = Tss2_MU_TPMS_ATTEST_Unmarshal(ab, al, &off, &a) == TSS2_RC_SUCCESS && off == al &&
                  a.magic == TPM_GENERATED && a.type == TPM2_ST_ATTEST_QUOTE;
    bool sparsed = Tss2_MU_TPMT_SIGNATURE_Unmarshal(sb, sl, &soff, &sig) == TSS2_RC_SUCCESS && soff == sl;
    verdict(&v, "format", parsed && sparsed ? 0 : CIT_E_QUOTE_MALFORMED,
            parsed && sparsed ? "TPMS_ATTEST of a quote (TPM_GENERATED_VALUE) and a TPMT_SIGNATURE"
            : !parsed         ? "attest is not a TPM-generated TPMS_ATTEST of type quote"
                              : "signature is not a TPMT_SIGNATURE");
    if (parsed && sparsed) {
        /* signature over the exact attest bytes */
        uint8_t md[64];
        size_t ml = 0;
        uint8_t *der = NULL;
        size_t dl = 0;
        cit_sig_scheme sch = sig.sigAlg == TPM2_ALG_ECDSA    ? CIT_SCHEME_ECDSA
                             : sig.sigAlg == TPM2_ALG_RSAPSS ? CIT_SCHEME_RSAPSS
                                                            : CIT_SCHEME_RSASSA;
        bool known = sig.sigAlg == TPM2_ALG_ECDSA || sig.sigAlg == TPM2_ALG_RSASSA || sig.sigAlg == TPM2_ALG_RSAPSS;
        /* SHA-256 or stronger: an AK whose scheme is open could be made to sign SHA-1 quotes */
        bool strong = sig.signature.any.hashAlg == TPM2_ALG_SHA256 || sig.signature.any.hashAlg == TPM2_ALG_SHA384 ||
                      sig.signature.any.hashAlg == TPM2_ALG_SHA512;
        int sr = known && strong ? 0 : CIT_E_QUOTE_SIGNATURE;
        if (sr == 0)
            sr = cit__digest(sig.signature.any.hashAlg, ab, al, md, &ml);
        if (sr == 0)
            sr = cit__sig_encode(&der, &dl, &sig, CIT_SIG_ENC_DER,
                                 EVP_PKEY_get_bits(pk) > 256 && sch == CIT_SCHEME_ECDSA ? 48 : 32);
        if (sr == 0)
            sr = cit__sig_verify(pk, sch, sig.signature.any.hashAlg, md, ml, der, dl, CIT_SIG_ENC_DER);
        free(der);
        cit_error_clear();
        verdict(&v, "signature", sr ? CIT_E_QUOTE_SIGNATURE : 0,
                sr ? "the signature does not verify with the AK's public key (another AK, or modified bytes)"
                   : "made by the AK over the attest bytes");
        /* nonce */
        bool nonce_ok = a.extraData.size == want_nonce.size &&
                        memcmp(a.extraData.buffer, want_nonce.buffer, want_nonce.size) == 0;
        char *got = cit_hex_encode(a.extraData.buffer, a.extraData.size);
        verdict(&v, "nonce", nonce_ok ? 0 : CIT_E_QUOTE_NONCE,
                nonce_ok ? "the quote answers this nonce"
                         : "the quote answers nonce %s, not this one (an old quote replayed, or another verifier's)",
                got ? got : "?");
        free(got);
        /* the reported PCR values are the quoted ones */
        uint8_t cat[8 * 24 * 64];
        size_t cl = 0;
        char why[256] = "";
        const TPML_PCR_SELECTION *qs = &a.attested.quote.pcrSelect;
        bool have = qs->count <= TPM2_NUM_PCR_BANKS &&
                    selected_values(qs, json_object_get(q, "pcrs"), cat, sizeof cat, &cl, why, sizeof why) == 0 &&
                    unattested_values(qs, json_object_get(q, "pcrs"), why, sizeof why) == 0;
        bool dig_ok = false;
        if (have && cit__digest(sig.signature.any.hashAlg, cat, cl, md, &ml) == 0)
            dig_ok = a.attested.quote.pcrDigest.size == ml && memcmp(a.attested.quote.pcrDigest.buffer, md, ml) == 0;
        cit_error_clear();
        verdict(&v, "pcr_digest", dig_ok ? 0 : CIT_E_QUOTE_PCR_DIGEST,
                dig_ok ? "the reported PCR values hash to the attested PCR digest"
                : have ? "the reported PCR values do not hash to the attested PCR digest (values edited)"
                       : "%s", why);
        /* the baseline: which PCRs differ */
        if (baseline && dig_ok) {
            json_t *bd = NULL;
            int br = ctx ? cit__baseline_compare(ctx, baseline, json_object_get(q, "pcrs"), &bd) : CIT_E_USAGE;
            if (br < 0) {
                verdict(&v, "baseline", br, "%s", cit_error_last()->message);
                cit_error_clear();
            } else {
                size_t n = json_array_size(json_object_get(bd, "changed"));
                if (n)
                    verdict(&v, "baseline", CIT_E_QUOTE_BASELINE, "%zu PCR(s) differ from baseline %s", n, baseline);
                else
                    verdict(&v, "baseline", 0, "the quoted PCRs equal baseline %s", baseline);
                json_object_set(json_array_get(v.checks, json_array_size(v.checks) - 1), "changed",
                                json_object_get(bd, "changed"));
            }
            json_decref(bd);
        }
        /* the event log replays to the quoted values */
        if (dig_ok && (eventlog || json_object_get(q, "eventlog"))) {
            uint8_t *log = NULL;
            size_t ll = 0;
            int lr = eventlog ? cit__read_input(eventlog, CIT_EVENTLOG_MAX, "the event log", false, &log, &ll)
                              : cit__base64_decode(&log, &ll, json_string_value(json_object_get(q, "eventlog")) ?: "");
            char detail[1024] = "";
            if (lr == 0)
                lr = eventlog_check(log, ll, json_object_get(q, "pcrs"), detail, sizeof detail);
            if (lr == 0)
                verdict(&v, "eventlog", 0, "the event log replays to the quoted PCR values");
            else
                verdict(&v, "eventlog", lr == CIT_E_EVENTLOG_PCR_MISMATCH ? CIT_E_QUOTE_EVENTLOG : lr, "%s",
                        detail[0] ? detail : cit_error_last()->message);
            cit_error_clear();
            free(log);
        }
    }
    *valid = v.first_code == 0;
    /* ak_name is as the file states it: a public key alone does not determine the TPM name */
    json_t *j = json_pack("{s:b,s:o,s:s,s:O?,s:O?}", "valid", *valid, "checks", v.checks, "ak_trusted_from",
                          ak_pub_file ? ak_pub_file : "the quote file itself (give --ak-pub for the AK you enrolled)",
                          "ak_name_claimed", json_object_get(q, "ak_name"), "pcrs", json_object_get(q, "pcrs"));
    if (!j) { /* e.g. a file name that is not UTF-8 */
        r = cit_error_set(CIT_E_INTERNAL, "cannot build the verification report");
        goto done;
    }
    if (*valid && ctx) {
        /* which authorities approved this PCR state (PolicyAuthorize anchors): informational */
        json_t *by = NULL;
        if (cit__approvals_covering(ctx, json_object_get(q, "pcrs"), &by) == 0)
            json_object_set_new(j, "approved_by", by);
        cit_error_clear();
    }
    if (parsed) {
        char clk[32];
        snprintf(clk, sizeof clk, "%llu", (unsigned long long)a.clockInfo.clock);
        json_object_set_new(j, "tpm_clock_ms", json_string(clk));
        json_object_set_new(j, "reset_count", json_integer(a.clockInfo.resetCount));
        json_object_set_new(j, "restart_count", json_integer(a.clockInfo.restartCount));
    }
    *out = j;
    r = 0;
done:
    EVP_PKEY_free(pk);
    json_decref(q);
    free(ab);
    free(sb);
    free(pem);
    return r;
}

_public_ int cit_attest_verify(json_t **out, cit_ctx *ctx, const char *quote_file, const char *nonce_hex,
                               const char *ak_pub_file, const char *baseline, const char *eventlog, bool *valid) {
    cit_error_clear();
    *valid = false;
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = cit__read_input(quote_file, QUOTE_FILE_MAX, "the quote", false, &buf, &len);
    if (r == 0)
        r = cit__attest_verify_buf(out, ctx, quote_file, buf, len, nonce_hex, NULL, ak_pub_file, baseline, eventlog,
                                   valid);
    free(buf);
    return r;
}

/* ---- credential activation (TPM 2.0 Part 1, "Credential Protection") ---- */

#define CRED_MAGIC 0xBADCC0DEu /* tpm2-tools' credential file header, version 1 */
#define CRED_SECRET_MAX 64     /* a TPM2B_DIGEST */
#define CRED_FILE_MAX (64 * 1024)

/* KDFa (SP 800-108 counter mode with HMAC): label includes its terminating NUL. */
static int kdfa(TPMI_ALG_HASH alg, const uint8_t *key, size_t kl, const char *label, const uint8_t *u, size_t ul,
                const uint8_t *v, size_t vl, size_t bits, uint8_t *out) {
    const EVP_MD *md = cit__hash_md(alg);
    size_t hl = cit__hash_size(alg), bytes = (bits + 7) / 8, done = 0;
    uint8_t buf[4 + 32 + 2 * 128 + 4], h[EVP_MAX_MD_SIZE];
    size_t ll = strlen(label) + 1;
    if (!md || ll > 32 || ul > 128 || vl > 128)
        return cit_error_set(CIT_E_INTERNAL, "KDFa arguments out of range");
    for (uint32_t i = 1; done < bytes; i++) {
        size_t off = 0;
        cit_put_be32(buf, i);
        off = 4;
        memcpy(buf + off, label, ll);
        off += ll;
        if (ul)
            memcpy(buf + off, u, ul);
        off += ul;
        if (vl)
            memcpy(buf + off, v, vl);
        off += vl;
        cit_put_be32(buf + off, (uint32_t)bits);
        off += 4;
        unsigned int n = 0;
        if (!HMAC(md, key, (int)kl, buf, off, h, &n))
            return cit__openssl_error(CIT_E_CRYPTO, "KDFa");
        size_t take = bytes - done < hl ? bytes - done : hl;
        memcpy(out + done, h, take);
        done += take;
    }
    cit_memzero(h, sizeof h);
    return 0;
}

/* KDFe (SP 800-56A concatenation KDF): H(counter || Z || label\0 || U || V). */
static int kdfe(TPMI_ALG_HASH alg, const uint8_t *z, size_t zl, const char *label, const uint8_t *u, size_t ul,
                const uint8_t *v, size_t vl, size_t bits, uint8_t *out) {
    size_t hl = cit__hash_size(alg), bytes = (bits + 7) / 8, done = 0;
    size_t ll = strlen(label) + 1;
    uint8_t buf[4 + 66 + 32 + 2 * 66], h[EVP_MAX_MD_SIZE];
    if (zl > 66 || ul > 66 || vl > 66 || ll > 32)
        return cit_error_set(CIT_E_INTERNAL, "KDFe arguments out of range");
    for (uint32_t i = 1; done < bytes; i++) {
        size_t off = 4, n = 0;
        cit_put_be32(buf, i);
        memcpy(buf + off, z, zl);
        off += zl;
        memcpy(buf + off, label, ll);
        off += ll;
        memcpy(buf + off, u, ul);
        off += ul;
        memcpy(buf + off, v, vl);
        off += vl;
        int r = cit__digest(alg, buf, off, h, &n);
        if (r < 0)
            return r;
        size_t take = bytes - done < hl ? bytes - done : hl;
        memcpy(out + done, h, take);
        done += take;
    }
    cit_memzero(buf, sizeof buf);
    cit_memzero(h, sizeof h);
    return 0;
}

static int bn_fixed(const EVP_PKEY *pk, const char *param, uint8_t *out, size_t len) {
    BIGNUM *bn = NULL;
    int ok = EVP_PKEY_get_bn_param(pk, param, &bn) == 1 && BN_bn2binpad(bn, out, (int)len) == (int)len;
    BN_free(bn);
    return ok ? 0 : cit__openssl_error(CIT_E_CRYPTO, "reading an EC point");
}

/* The seed, encrypted to the EK: RSA-OAEP with label "IDENTITY", or ECDH with an ephemeral key
 * and KDFe. */
static int seed_for_ek(EVP_PKEY *ek, TPMI_ALG_HASH alg, uint8_t *seed, size_t seed_len, TPM2B_ENCRYPTED_SECRET *out) {
    memset(out, 0, sizeof(*out));
    int r = 0;
    if (EVP_PKEY_get_base_id(ek) == EVP_PKEY_RSA) {
        if (RAND_bytes(seed, (int)seed_len) != 1)
            return cit__openssl_error(CIT_E_CRYPTO, "random seed");
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(ek, NULL);
        static const char label[] = "IDENTITY";
        unsigned char *lab = OPENSSL_memdup(label, sizeof label);
        size_t ol = sizeof out->secret;
        int ok = c && lab && EVP_PKEY_encrypt_init(c) == 1 && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
                 EVP_PKEY_CTX_set_rsa_oaep_md(c, cit__hash_md(alg)) == 1 &&
                 EVP_PKEY_CTX_set_rsa_mgf1_md(c, cit__hash_md(alg)) == 1 &&
                 EVP_PKEY_CTX_set0_rsa_oaep_label(c, lab, sizeof label) == 1;
        if (ok)
            lab = NULL; /* owned by c */
        ok = ok && EVP_PKEY_encrypt(c, out->secret, &ol, seed, seed_len) == 1;
        OPENSSL_free(lab);
        EVP_PKEY_CTX_free(c);
        if (!ok)
            return cit__openssl_error(CIT_E_CRYPTO, "RSA-OAEP encryption of the seed to the EK");
        out->size = (UINT16)ol;
        return 0;
    }
    if (EVP_PKEY_get_base_id(ek) != EVP_PKEY_EC)
        return cit_error_set(CIT_E_ALG_UNSUPPORTED, "the EK is neither RSA nor ECC");
    size_t fl = (size_t)(EVP_PKEY_get_bits(ek) + 7) / 8;
    char group[64] = "";
    size_t gl = 0;
    EVP_PKEY *eph = NULL;
    EVP_PKEY_CTX *dc = NULL;
    uint8_t z[66], ex[66], ey[66], kx[66];
    size_t zl = sizeof z;
    if (EVP_PKEY_get_utf8_string_param(ek, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl) != 1 ||
        !(eph = EVP_EC_gen(group)) || !(dc = EVP_PKEY_CTX_new(eph, NULL)) || EVP_PKEY_derive_init(dc) != 1 ||
        EVP_PKEY_derive_set_peer(dc, ek) != 1 || EVP_PKEY_derive(dc, z, &zl) != 1 || zl != fl || fl > 66)
        r = cit__openssl_error(CIT_E_CRYPTO, "ECDH with the EK");
    if (r == 0)
        r = bn_fixed(eph, OSSL_PKEY_PARAM_EC_PUB_X, ex, fl);
    if (r == 0)
        r = bn_fixed(eph, OSSL_PKEY_PARAM_EC_PUB_Y, ey, fl);
    if (r == 0)
        r = bn_fixed(ek, OSSL_PKEY_PARAM_EC_PUB_X, kx, fl);
    if (r == 0)
        r = kdfe(alg, z, zl, "IDENTITY", ex, fl, kx, fl, seed_len * 8, seed);
    if (r == 0) {
        TPMS_ECC_POINT pt = {0};
        pt.x.size = (UINT16)fl;
        memcpy(pt.x.buffer, ex, fl);
        pt.y.size = (UINT16)fl;
        memcpy(pt.y.buffer, ey, fl);
        size_t off = 0;
        if (Tss2_MU_TPMS_ECC_POINT_Marshal(&pt, out->secret, sizeof out->secret, &off) != TSS2_RC_SUCCESS)
            r = cit_error_set(CIT_E_INTERNAL, "cannot marshal the ephemeral point");
        out->size = (UINT16)off;
    }
    cit_memzero(z, sizeof z);
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_free(eph);
    return r;
}

/* The secret and the EK come from files (the CLI) or from memory (enrolld: secret_mem and ek_key,
 * borrowed). */
static int credential_make(json_t **out, const char *ek_pub_file, EVP_PKEY *ek_key, const char *ak_name_hex,
                           const char *secret_file, const uint8_t *secret_mem, size_t secret_mem_len,
                           const char *output, const char *encoding) {
    cit_error_clear();
    bool tools = encoding && strcmp(encoding, "tpm2-tools") == 0;
    if (encoding && !tools && strcmp(encoding, "json") != 0) {
        cit_error_set(CIT_E_USAGE, "unknown credential encoding: %s", encoding);
        cit_error_cause("json (default) or tpm2-tools (the binary file tpm2_activatecredential reads)");
        return CIT_E_USAGE;
    }
    uint8_t *pem = NULL, *secret = NULL, *name = NULL;
    size_t pl = 0, sl = 0, nl = 0;
    EVP_PKEY *ek = NULL;
    int r = 0;
    if (ak_name_hex && cit_hex_decode(&name, &nl, ak_name_hex) < 0) {
        free(name);
        name = NULL;
    }
    if (!name || nl < 4 || nl > sizeof(TPMU_NAME) || cit__hash_size((TPMI_ALG_HASH)(name[0] << 8 | name[1])) != nl - 2) {
        r = cit_error_set(CIT_E_USAGE, "--ak-name must be the AK's TPM name in hex (hash algorithm id + digest)");
        cit_error_cause("`citadel tpm attest ak-show PATH` shows it as ak_name");
        goto done;
    }
    if (ek_key) {
        if (EVP_PKEY_up_ref(ek_key) != 1) {
            r = cit_error_set(CIT_E_INTERNAL, "cannot reference the EK public key");
            goto done;
        }
        ek = ek_key;
    } else if ((r = cit__read_input(ek_pub_file, 64 * 1024, "the EK public key", false, &pem, &pl)) < 0 ||
               (r = cit__pubkey_from_pem(&ek, (const char *)pem, pl)) < 0)
        goto done;
    if (secret_mem) {
        if (secret_mem_len == 0 || secret_mem_len > CRED_SECRET_MAX || !(secret = malloc(secret_mem_len))) {
            r = cit_error_set(CIT_E_USAGE, "the credential secret must be 1 to %d bytes", CRED_SECRET_MAX);
            goto done;
        }
        memcpy(secret, secret_mem, secret_mem_len);
        sl = secret_mem_len;
    } else if ((r = cit__read_input(secret_file, CRED_SECRET_MAX, "the credential secret", false, &secret, &sl)) < 0)
        goto done;
    /* the EK's name algorithm and symmetric key follow its template: the low range (RSA 2048,
     * P-256) SHA-256 and AES-128, the high range (RSA 3072, P-384) SHA-384 and AES-256 */
    int bits = EVP_PKEY_get_bits(ek);
    bool rsa = EVP_PKEY_get_base_id(ek) == EVP_PKEY_RSA;
    bool high = rsa ? bits >= 3072 : bits >= 384;
    if ((rsa && bits != 2048 && bits != 3072) || (!rsa && bits != 256 && bits != 384)) {
        r = cit_error_set(CIT_E_ALG_UNSUPPORTED, "an EK of %d bits is not one of the TCG EK templates", bits);
        cit_error_cause("EKs are RSA 2048/3072 or ECC P-256/P-384");
        goto done;
    }
    TPMI_ALG_HASH alg = high ? TPM2_ALG_SHA384 : TPM2_ALG_SHA256;
    size_t hl = cit__hash_size(alg), keybits = high ? 256 : 128;
    uint8_t seed[64], symkey[32], hmackey[64];
    TPM2B_ENCRYPTED_SECRET enc;
    if ((r = seed_for_ek(ek, alg, seed, hl, &enc)) < 0)
        goto wipe;
    if ((r = kdfa(alg, seed, hl, "STORAGE", name, nl, NULL, 0, keybits, symkey)) < 0 ||
        (r = kdfa(alg, seed, hl, "INTEGRITY", NULL, 0, NULL, 0, hl * 8, hmackey)) < 0)
        goto wipe;
    /* encIdentity: the marshalled TPM2B_DIGEST of the secret, AES-CFB with a zero IV */
    uint8_t plain[2 + CRED_SECRET_MAX], encid[2 + CRED_SECRET_MAX], iv[16] = {0};
    plain[0] = (uint8_t)(sl >> 8);
    plain[1] = (uint8_t)sl;
    memcpy(plain + 2, secret, sl);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int o1 = 0, o2 = 0;
    int ok = c && EVP_EncryptInit_ex(c, high ? EVP_aes_256_cfb128() : EVP_aes_128_cfb128(), NULL, symkey, iv) == 1 &&
             EVP_EncryptUpdate(c, encid, &o1, plain, (int)(sl + 2)) == 1 && EVP_EncryptFinal_ex(c, encid + o1, &o2) == 1;
    EVP_CIPHER_CTX_free(c);
    cit_memzero(plain, sizeof plain);
    if (!ok) {
        r = cit__openssl_error(CIT_E_CRYPTO, "AES-CFB of the credential");
        goto wipe;
    }
    size_t el = (size_t)(o1 + o2);
    uint8_t mac_in[2 + CRED_SECRET_MAX + sizeof(TPMU_NAME) + 2], mac[EVP_MAX_MD_SIZE];
    memcpy(mac_in, encid, el);
    memcpy(mac_in + el, name, nl);
    unsigned int ml = 0;
    if (!HMAC(cit__hash_md(alg), hmackey, (int)hl, mac_in, el + nl, mac, &ml)) {
        r = cit__openssl_error(CIT_E_CRYPTO, "the credential's integrity HMAC");
        goto wipe;
    }
    /* TPM2B_ID_OBJECT: integrityHMAC (TPM2B_DIGEST) || encIdentity */
    TPM2B_ID_OBJECT blob = {0};
    blob.credential[0] = (uint8_t)(ml >> 8);
    blob.credential[1] = (uint8_t)ml;
    memcpy(blob.credential + 2, mac, ml);
    memcpy(blob.credential + 2 + ml, encid, el);
    blob.size = (UINT16)(2 + ml + el);
    uint8_t file[8 + sizeof(TPM2B_ID_OBJECT) + sizeof(TPM2B_ENCRYPTED_SECRET)];
    size_t fo = 8, bo = 0, so = 0;
    cit_put_be32(file, CRED_MAGIC);
    cit_put_be32(file + 4, 1);
    uint8_t bb[sizeof(TPM2B_ID_OBJECT)], sb[sizeof(TPM2B_ENCRYPTED_SECRET)];
    if (Tss2_MU_TPM2B_ID_OBJECT_Marshal(&blob, bb, sizeof bb, &bo) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&enc, sb, sizeof sb, &so) != TSS2_RC_SUCCESS) {
        r = cit_error_set(CIT_E_INTERNAL, "cannot marshal the credential");
        goto wipe;
    }
    memcpy(file + fo, bb, bo);
    fo += bo;
    memcpy(file + fo, sb, so);
    fo += so;
    char *b1 = NULL, *b2 = NULL;
    cit__base64_encode(&b1, bb, bo);
    cit__base64_encode(&b2, sb, so);
    json_t *cred = json_pack("{s:i,s:s,s:s,s:s,s:s}", "version", 1, "ak_name", ak_name_hex, "ek_algorithm",
                             rsa ? (high ? "rsa-3072" : "rsa-2048") : (high ? "ecc-p384" : "ecc-p256"),
                             "credential_blob", b1 ? b1 : "", "encrypted_secret", b2 ? b2 : "");
    free(b1);
    free(b2);
    char *text = tools ? NULL : json_dumps(cred, JSON_INDENT(2));
    if (output) {
        int w = tools ? cit_write_file_atomic(output, file, fo, 0644, 0)
                      : text ? cit_write_file_atomic(output, (const uint8_t *)text, strlen(text), 0644, 0) : -ENOMEM;
        if (w < 0) {
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-w));
            cit_error_context("file", "%s", output);
        }
    }
    if (r == 0) {
        *out = json_pack("{s:s,s:s,s:s}", "ak_name", ak_name_hex, "ek_algorithm",
                         json_string_value(json_object_get(cred, "ek_algorithm")), "encoding", tools ? "tpm2-tools" : "json");
        if (output)
            json_object_set_new(*out, "output", json_string(output));
        else
            json_object_set_new(*out, "credential", json_incref(cred));
    }
    free(text);
    json_decref(cred);
wipe:
    cit_memzero(seed, sizeof seed);
    cit_memzero(symkey, sizeof symkey);
    cit_memzero(hmackey, sizeof hmackey);
done:
    if (secret)
        cit_memzero(secret, sl);
    free(secret);
    free(pem);
    free(name);
    EVP_PKEY_free(ek);
    return r;
}

_public_ int cit_attest_credential_make(json_t **out, const char *ek_pub_file, const char *ak_name_hex,
                                        const char *secret_file, const char *output, const char *encoding) {
    return credential_make(out, ek_pub_file, NULL, ak_name_hex, secret_file, NULL, 0, output, encoding);
}

int cit__attest_credential_make_mem(json_t **out, EVP_PKEY *ek, const char *ak_name_hex, const uint8_t *secret,
                                    size_t secret_len) {
    return credential_make(out, NULL, ek, ak_name_hex, NULL, secret, secret_len, NULL, "json");
}

/* Reads a credential: our JSON, or tpm2-tools' binary file. */
static int read_credential(const char *file, TPM2B_ID_OBJECT *blob, TPM2B_ENCRYPTED_SECRET *enc) {
    uint8_t *buf = NULL, *b1 = NULL, *b2 = NULL;
    size_t len = 0, l1 = 0, l2 = 0, o1 = 0, o2 = 0;
    int r = cit__read_input(file, CRED_FILE_MAX, "the credential", false, &buf, &len);
    if (r < 0)
        return r;
    memset(blob, 0, sizeof(*blob));
    memset(enc, 0, sizeof(*enc));
    bool ok = false;
    if (len >= 8 && buf[0] == 0xBA && buf[1] == 0xDC && buf[2] == 0xC0 && buf[3] == 0xDE) {
        size_t off = 8;
        ok = buf[4] == 0 && buf[5] == 0 && buf[6] == 0 && buf[7] == 1 &&
             Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(buf, len, &off, blob) == TSS2_RC_SUCCESS &&
             Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(buf, len, &off, enc) == TSS2_RC_SUCCESS && off == len;
    } else {
        json_t *j = json_loadb((const char *)buf, len, 0, NULL);
        ok = j && cit__base64_decode(&b1, &l1, json_string_value(json_object_get(j, "credential_blob")) ?: "") == 0 &&
             cit__base64_decode(&b2, &l2, json_string_value(json_object_get(j, "encrypted_secret")) ?: "") == 0 &&
             Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(b1, l1, &o1, blob) == TSS2_RC_SUCCESS && o1 == l1 &&
             Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(b2, l2, &o2, enc) == TSS2_RC_SUCCESS && o2 == l2;
        json_decref(j);
    }
    free(buf);
    free(b1);
    free(b2);
    if (!ok) {
        cit_error_set(CIT_E_CREDENTIAL_INVALID, "%s is not a credential", file);
        cit_error_cause("expected citadel's credential JSON or tpm2-tools' binary file (magic 0xBADCC0DE, version 1)");
        cit_error_context("file", "%s", file);
        return CIT_E_CREDENTIAL_INVALID;
    }
    return 0;
}

_public_ int cit_attest_credential_activate(json_t **out, cit_ctx *ctx, const char *ak, const char *input,
                                            const char *output) {
    cit_error_clear();
    TPM2B_ID_OBJECT blob;
    TPM2B_ENCRYPTED_SECRET enc;
    int r = read_credential(input, &blob, &enc);
    if (r < 0)
        return r;
    cit_object o = {0};
    r = find_ak(ctx, ak, &o);
    if (r == 0)
        r = cit__require_active(&o);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_CreatePrimary (the EK)", "TPM2_PolicySecret (EK policy, twice)",
                                          "TPM2_Load (the AK)", "TPM2_ActivateCredential", "TPM2_FlushContext", NULL};
        *out = cit__plan("activate a credential with the AK and the EK", ops);
        goto done;
    }
    ESYS_TR h = ESYS_TR_NONE, ek = ESYS_TR_NONE, sess = ESYS_TR_NONE;
    TPM2B_PUBLIC pub, ek_pub;
    TPM2B_DIGEST *cert = NULL;
    r = ak_load_ek(ctx, &o, false, &h, &pub, &ek, &ek_pub);
    if (r == 0)
        r = cit__ek_policy_session(ctx, &ek_pub, &sess); /* a fresh one: the load used the first */
    if (r == 0) {
        TSS2_RC rc = Esys_ActivateCredential(ctx->tpm->esys, h, ek, ESYS_TR_PASSWORD, sess, ESYS_TR_NONE, &blob, &enc,
                                             &cert);
        if (rc != TSS2_RC_SUCCESS) {
            cit__tpm_flush(ctx->tpm, &sess);
            uint32_t base = cit__rc_base(rc);
            if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
                (base == TPM2_RC_INTEGRITY || base == TPM2_RC_VALUE || base == TPM2_RC_SIZE || base == TPM2_RC_ECC_POINT)) {
                r = cit_error_set(CIT_E_CREDENTIAL_MISMATCH, "the TPM refused the credential for %s", o.path);
                cit_error_cause("it was made for another AK name, or encrypted to another EK than this AK's");
                cit_error_cause("%s lives under this TPM's %s EK (`citadel tpm ek show --algorithm %s`)", o.path,
                                ak_ek_algorithm(&o), ak_ek_algorithm(&o));
                cit_error_context("tpm_rc", "0x%08x", rc);
                cit_error_context("path", "%s", o.path);
            } else
                r = cit__tss_error(ctx->tpm, CIT_E_TPM_COMMAND, rc, "TPM2_ActivateCredential failed");
        }
    }
    cit__ak_unload(ctx, &o, &h);
    if (ek != ESYS_TR_NONE)
        cit__tpm_flush(ctx->tpm, &ek);
    if (r == 0 && output) {
        int w = cit_write_file_atomic(output, cert->buffer, cert->size, 0600, 0);
        if (w < 0) {
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-w));
            cit_error_context("file", "%s", output);
        }
    }
    if (r == 0) {
        *out = json_pack("{s:s,s:i}", "ak", o.path, "size", cert->size);
        if (output)
            json_object_set_new(*out, "output", json_string(output));
        else {
            char *hx = cit_hex_encode(cert->buffer, cert->size);
            json_object_set_new(*out, "secret_hex", json_string(hx));
            cit_memzero(hx, strlen(hx));
            free(hx);
        }
    }
    if (cert) {
        cit_memzero(cert, sizeof(*cert));
        Esys_Free(cert);
    }
done:
    cit__object_clear(&o);
    return r;
}
