/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sealed secrets: data sealed in a TPM keyed-hash object under the storage key, optionally
 * bound to PCR values by a PolicyPCR policy the TPM itself checks at unseal. Secrets larger
 * than the TPM seals directly are encrypted with AES-256-GCM under a random key, and that key
 * is what the TPM seals (an envelope); the ciphertext stays in the store.
 * Unseal runs in a session salted with the storage key, with the response encrypted, so the
 * secret does not cross the TPM interface in clear.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/keys.h"
#include "core/sealed.h"
#include "crypto/crypto.h"
#include "ctx.h"
#include "profiles.h"
#include "policy/policy.h"


#define SECRET_MAX (1024u * 1024)
#define GCM_NONCE 12
#define GCM_TAG 16
#define ENVELOPE_AAD "citadel sealed secret v1"


static int pcr_selection(const char *bank, uint32_t mask, TPML_PCR_SELECTION *sel, TPMI_ALG_HASH *alg) {
    int r = cit__hash_from_name(bank ? bank : "sha256", alg);
    if (r < 0)
        return r;
    memset(sel, 0, sizeof(*sel));
    sel->count = 1;
    sel->pcrSelections[0].hash = *alg;
    sel->pcrSelections[0].sizeofSelect = 3;
    for (int i = 0; i < 24; i++)
        if (mask & (1u << i))
            sel->pcrSelections[0].pcrSelect[i / 8] |= (uint8_t)(1u << (i % 8));
    return 0;
}

/* The current values of the selected PCRs as {"7": "hex", ...}. */
static int pcr_values(cit_tpm *t, TPMI_ALG_HASH alg, uint32_t mask, json_t **out) {
    char *values[24] = {0};
    int r = cit__pcr_read(t, alg, mask, values);
    if (r == 0) {
        *out = json_object();
        for (int i = 0; i < 24; i++)
            if (values[i]) {
                char k[4];
                snprintf(k, sizeof k, "%d", i);
                json_object_set_new(*out, k, json_string(values[i]));
            }
    }
    cit__pcr_values_free(values);
    return r;
}

/* PolicyPCR over the current values, computed by the TPM in a trial session. */
static int policy_pcr_digest(cit_tpm *t, const TPML_PCR_SELECTION *sel, bool auth_value, TPM2B_DIGEST *out) {
    ESYS_TR s = ESYS_TR_NONE;
    TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
    TSS2_RC rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       NULL, TPM2_SE_TRIAL, &sym, TPM2_ALG_SHA256, &s);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot start a trial policy session");
    TPM2B_DIGEST empty = {0};
    TPM2B_DIGEST *d = NULL;
    rc = Esys_PolicyPCR(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, sel);
    /* with a password, the TPM must check it too: PolicyAuthValue in the same policy */
    if (rc == TSS2_RC_SUCCESS && auth_value)
        rc = Esys_PolicyAuthValue(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc == TSS2_RC_SUCCESS)
        rc = Esys_PolicyGetDigest(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &d);
    cit__tpm_flush(t, &s);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot compute the PCR policy");
    *out = *d;
    Esys_Free(d);
    return 0;
}

static int envelope_seal(const uint8_t *data, size_t len, uint8_t key[32], uint8_t **out, size_t *out_len) {
    uint8_t *buf = malloc(GCM_NONCE + len + GCM_TAG);
    if (!buf)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c && RAND_bytes(key, 32) == 1 && RAND_bytes(buf, GCM_NONCE) == 1 &&
             EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, buf) == 1;
    int n = 0, m = 0;
    ok = ok && EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)ENVELOPE_AAD, sizeof ENVELOPE_AAD - 1) == 1 &&
         EVP_EncryptUpdate(c, buf + GCM_NONCE, &n, data, (int)len) == 1 &&
         EVP_EncryptFinal_ex(c, buf + GCM_NONCE + n, &m) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG, buf + GCM_NONCE + len) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        free(buf);
        cit_memzero(key, 32);
        return cit__openssl_error(CIT_E_CRYPTO, "AES-256-GCM encryption failed");
    }
    *out = buf;
    *out_len = GCM_NONCE + len + GCM_TAG;
    return 0;
}

static int envelope_open(const uint8_t *payload, size_t plen, const uint8_t key[32], uint8_t **out, size_t *out_len) {
    if (plen < GCM_NONCE + GCM_TAG)
        return cit_error_set(CIT_E_STORE_IO, "the sealed secret's ciphertext is damaged");
    size_t len = plen - GCM_NONCE - GCM_TAG;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, m = 0;
    int ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, payload) == 1 &&
             EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)ENVELOPE_AAD, sizeof ENVELOPE_AAD - 1) == 1 &&
             EVP_DecryptUpdate(c, buf, &n, payload + GCM_NONCE, (int)len) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG, (void *)(payload + GCM_NONCE + len)) == 1 &&
             EVP_DecryptFinal_ex(c, buf + n, &m) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        cit_memzero(buf, len);
        free(buf);
        cit_error_set(CIT_E_STORE_IO, "the sealed secret's ciphertext does not authenticate");
        cit_error_cause("the stored ciphertext was modified or damaged");
        return CIT_E_STORE_IO;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

_public_ int cit_secret_seal(json_t **out, cit_ctx *ctx, const char *path, const char *input, const char *pcrs,
                             const char *bank, const char *policy_name, const char *auth_file, const char *template_name) {
    cit_error_clear();
    int r = cit__check_path(path);
    if (r < 0)
        return r;
    if (template_name) {
        const cit_template_def *tpl = NULL;
        if ((r = cit__template_for(template_name, "secret", &tpl)) < 0)
            return r;
        if (!pcrs && !policy_name)
            pcrs = tpl->pcrs;
    }
    if ((r = cit__profile_check(ctx, path, NULL)) < 0)
        return r;
    if (pcrs && policy_name) {
        cit_error_set(CIT_E_USAGE, "give --pcr or --policy, not both");
        cit_error_cause("a named policy can list PCRs itself (`citadel tpm policy create NAME --pcr LIST`)");
        return CIT_E_USAGE;
    }

    uint32_t mask = 0;
    if (pcrs && (r = cit__pcr_parse_list(pcrs, &mask)) < 0)
        return r;
    if (pcrs && !mask) {
        cit_error_set(CIT_E_PCR_INVALID, "--pcr names no PCR");
        return CIT_E_PCR_INVALID;
    }
    TPML_PCR_SELECTION sel;
    TPMI_ALG_HASH alg = TPM2_ALG_SHA256;
    if (mask && (r = pcr_selection(bank, mask, &sel, &alg)) < 0)
        return r;
    cit_store *s;
    r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    cit_object ex = {0};
    if (cit__object_find(s, path, &ex) == 0) {
        cit__object_clear(&ex);
        cit_error_set(CIT_E_OBJECT_EXISTS, "object already exists: %s", path);
        cit_error_context("path", "%s", path);
        cit_error_step("run `citadel tpm secret delete %s` first to replace it", path);
        return CIT_E_OBJECT_EXISTS;
    }
    cit_error_clear();
    uint8_t *data = NULL;
    size_t len = 0;
    r = cit__read_input(input, SECRET_MAX, "the secret", false, &data, &len);
    if (r < 0)
        return r;
    json_t *named = NULL;
    char *named_digest = NULL;
    if (policy_name && (r = cit__policy_load(ctx, policy_name, &named, &named_digest)) < 0) {
        cit_memzero(data, len);
        free(data);
        return r;
    }
    bool needs_auth = named ? cit__policy_needs_auth(named) : auth_file != NULL;
    if (named && cit__policy_needs_auth(named) && !auth_file) {
        json_decref(named);
        free(named_digest);
        cit_memzero(data, len);
        free(data);
        cit_error_set(CIT_E_USAGE, "policy %s requires a password: give it with --auth-file", policy_name);
        return CIT_E_USAGE;
    }
    if (named && !cit__policy_needs_auth(named) && auth_file) {
        json_decref(named);
        free(named_digest);
        cit_memzero(data, len);
        free(data);
        cit_error_set(CIT_E_USAGE, "policy %s has no auth_value: a password would never be asked for", policy_name);
        return CIT_E_USAGE;
    }
    if (ctx->plan) {
        cit_memzero(data, len);
        free(data);
        json_decref(named);
        free(named_digest);
        static const char *const ops[] = {"TPM2_StartAuthSession (trial)", "TPM2_PolicyPCR", "TPM2_PolicyGetDigest",
                                          "TPM2_PCR_Read", "TPM2_Create (sealed data object)", NULL};
        static const char *const ops_np[] = {"TPM2_Create (sealed data object)", NULL};
        *out = cit__plan("seal a secret", mask ? ops : ops_np);
        return 0;
    }
    bool envelope = len > CIT_SEAL_DIRECT_MAX;
    uint8_t key[32];
    cit_object_version v = {.version = 1};
    cit_object o = {0};
    json_t *meta = json_object(), *values = NULL;
    cit_tpm *t;
    TPM2B_AUTH auth = {0};
    TPM2B_DIGEST policy_digest = {0};
    const uint8_t *sealed = data;
    size_t sealed_len = len;
    if (envelope) {
        r = envelope_seal(data, len, key, &v.payload, &v.payload_len);
        if (r < 0)
            goto done;
        sealed = key;
        sealed_len = sizeof key;
    }
    r = cit__ctx_tpm(ctx, &t);
    if (r == 0 && auth_file)
        r = cit__read_auth(auth_file, &auth);
    if (r < 0)
        goto done;
    if (named) {
        uint8_t *pd = NULL;
        size_t pl = 0;
        if (cit_hex_decode(&pd, &pl, named_digest) < 0 || pl != 32) {
            free(pd);
            r = cit_error_set(CIT_E_STORE_IO, "the stored policy %s is damaged", policy_name);
            goto done;
        }
        memcpy(policy_digest.buffer, pd, pl);
        policy_digest.size = (UINT16)pl;
        free(pd);
        json_object_set_new(meta, "policy_name", json_string(policy_name));
        json_object_set(meta, "policy_json", named);
        json_object_set_new(meta, "policy_digest", json_string(named_digest));
    } else if (mask) {
        r = policy_pcr_digest(t, &sel, needs_auth, &policy_digest);
        if (r == 0)
            r = pcr_values(t, alg, mask, &values);
        if (r < 0)
            goto done;
        json_object_set_new(meta, "policy", json_pack("{s:s,s:O}", "bank", cit__hash_name(alg), "pcrs", values));
        char *pd = cit_hex_encode(policy_digest.buffer, policy_digest.size);
        json_object_set_new(meta, "policy_digest", json_string(pd));
        free(pd);
    }
    /* no policy: the password (or none) unseals, dictionary-attack protected when there is one */
    json_object_set_new(meta, "auth", json_boolean(needs_auth));
    r = cit__seal_data(ctx, path, sealed, sealed_len, &policy_digest, &auth, &v);
    if (r < 0)
        goto done;
    json_object_set_new(meta, "size", json_integer((json_int_t)len));
    json_object_set_new(meta, "envelope", json_boolean(envelope));
    snprintf(o.path, sizeof o.path, "%s", path);
    snprintf(o.kind, sizeof o.kind, "secret");
    snprintf(o.status, sizeof o.status, "active");
    snprintf(o.algorithm, sizeof o.algorithm, "%s", envelope ? "aes256gcm-env" : "sealed");
    o.version = 1;
    o.metadata = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    r = cit__store_begin(s);
    if (r == 0)
        r = cit__object_insert(s, &o);
    if (r == 0)
        r = cit__version_insert(s, o.id, &v);
    if (r == 0) {
        json_t *d = json_pack("{s:b,s:b}", "pcr_policy", mask != 0, "envelope", envelope);
        r = cit__store_event(s, "secret.seal", o.path, o.id, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        goto done;
    }
    *out = json_pack("{s:s,s:I,s:s,s:O?}", "path", path, "size", (json_int_t)len, "sealing",
                     envelope ? "AES-256-GCM envelope, key sealed in the TPM" : "sealed in the TPM", "policy",
                     json_object_get(meta, "policy"));
    if (named)
        json_object_set_new(*out, "policy_name", json_string(policy_name));
done:
    json_decref(named);
    free(named_digest);
    cit_memzero(key, sizeof key);
    cit_memzero(&auth, sizeof auth);
    cit_memzero(data, len);
    free(data);
    json_decref(values);
    json_decref(meta);
    cit__version_clear(&v);
    cit__object_clear(&o);
    return r;
}

int cit__seal_data(cit_ctx *ctx, const char *path, const uint8_t *data, size_t len, const TPM2B_DIGEST *auth_policy,
                   const TPM2B_AUTH *auth, cit_object_version *v) {
    if (len == 0 || len > CIT_SEAL_DIRECT_MAX)
        return cit_error_set(CIT_E_INTERNAL, "cannot seal %zu bytes directly", len);
    cit_tpm *t;
    ESYS_TR srk;
    int r = cit__ctx_tpm(ctx, &t);
    if (r == 0)
        r = cit__ctx_srk(ctx, true, &srk); /* never seal under a foreign SRK */
    if (r < 0)
        return r;
    bool has_auth = auth && auth->size;
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_PUBLIC tmpl = {0};
    TPM2B_PRIVATE *priv = NULL;
    TPM2B_PUBLIC *pub = NULL;
    memcpy(sens.sensitive.data.buffer, data, len);
    sens.sensitive.data.size = (UINT16)len;
    if (has_auth)
        sens.sensitive.userAuth = *auth;
    tmpl.publicArea.type = TPM2_ALG_KEYEDHASH;
    tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
    tmpl.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT;
    tmpl.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
    if (auth_policy && auth_policy->size)
        tmpl.publicArea.authPolicy = *auth_policy; /* only a policy session unseals it */
    else
        tmpl.publicArea.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
    if (!has_auth)
        tmpl.publicArea.objectAttributes |= TPMA_OBJECT_NODA; /* nothing to guess */
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION none = {0};
    /* the data goes to the TPM encrypted: a session salted with the storage key, with
     * parameter decryption, authorizes the use of the storage key. The in-process TPM (vtpm)
     * has no interface to protect: its commands never leave this process's memory, so there
     * the salt (an ECDH in software and in the TPM) is skipped. */
    ESYS_TR cs = ESYS_TR_NONE;
    TSS2_RC rc = TSS2_RC_SUCCESS;
    if (!cit__tpm_in_process(t)) {
        TPMT_SYM_DEF csym = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB};
        rc = Esys_StartAuthSession(t->esys, srk, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                   TPM2_SE_HMAC, &csym, TPM2_ALG_SHA256, &cs);
        if (rc != TSS2_RC_SUCCESS) {
            r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot start the sealing session");
            goto done;
        }
        Esys_TRSess_SetAttributes(t->esys, cs, TPMA_SESSION_DECRYPT | TPMA_SESSION_CONTINUESESSION,
                                  TPMA_SESSION_DECRYPT | TPMA_SESSION_CONTINUESESSION);
    }
    rc = Esys_Create(t->esys, srk, cs != ESYS_TR_NONE ? cs : ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                     &tmpl, &outside, &none, &priv, &pub, NULL, NULL, NULL);
    if (cs != ESYS_TR_NONE)
        cit__tpm_flush(t, &cs);
    if (rc != TSS2_RC_SUCCESS) {
        r = cit__tpm_srk_load_error(rc);
        if (r == 0)
            r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "TPM2_Create failed for the sealed object %s", path);
        goto done;
    }
    r = cit__version_set_tpm(v, pub, priv);
done:
    cit_memzero(&sens, sizeof sens);
    Esys_Free(priv);
    Esys_Free(pub);
    return r;
}

/* Which bound PCRs differ from the values at seal time, as causes of the current error. */
static void explain_pcr_change(cit_tpm *t, const json_t *policy) {
    cit_error saved = *cit_error_last();
    TPMI_ALG_HASH alg;
    json_t *want = json_object_get(policy, "pcrs"), *now = NULL;
    uint32_t mask = 0;
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v) {
        uint32_t i;
        if (cit_parse_u32(k, &i) == 0 && i < 24)
            mask |= 1u << i;
    }
    int ok = cit__hash_from_name(json_string_value(json_object_get(policy, "bank")), &alg) == 0 &&
             pcr_values(t, alg, mask, &now) == 0;
    cit_error_restore(&saved);
    if (!ok)
        return;
    int n = 0;
    json_object_foreach(want, k, v) {
        const char *cur = json_string_value(json_object_get(now, k));
        if (cur && strcmp(cur, json_string_value(v)) != 0) {
            cit_error_cause("PCR %s (%s) changed: sealed at %.16s..., now %.16s...", k, cit__hash_name(alg),
                            json_string_value(v), cur);
            n++;
        }
    }
    if (!n)
        cit_error_cause("the bound PCRs have their sealing values; the object's policy itself was not met");
    json_decref(now);
}

int cit__unseal_data(cit_ctx *ctx, const cit_object *o, const json_t *meta, const TPM2B_AUTH *auth, uint8_t *out,
                     size_t cap, size_t *out_len) {
    const char *path = o->path;
    const json_t *policy = json_object_get(meta, "policy");
    const json_t *named = json_object_get(meta, "policy_json");
    bool has_auth = auth && auth->size;
    cit_tpm *t;
    ESYS_TR h = ESYS_TR_NONE, sess = ESYS_TR_NONE, srk;
    bool pers = false;
    TPM2B_SENSITIVE_DATA *data = NULL;
    int r = cit__ctx_tpm(ctx, &t);
    if (r == 0)
        r = cit__ctx_srk(ctx, false, &srk);
    if (r == 0)
        r = cit__key_load(ctx, o, o->version, &h, &pers);
    if (r < 0)
        goto done;
    /* a session salted with the storage key: the response (the sealed data) is encrypted (not
     * for the in-process TPM, whose responses never leave this process's memory) */
    bool salt = !cit__tpm_in_process(t);
    TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB};
    TPMT_SYM_DEF nosym = {.algorithm = TPM2_ALG_NULL};
    TSS2_RC rc = Esys_StartAuthSession(t->esys, salt ? srk : ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, NULL, policy || named ? TPM2_SE_POLICY : TPM2_SE_HMAC,
                                       salt ? &sym : &nosym, TPM2_ALG_SHA256, &sess);
    if (rc != TSS2_RC_SUCCESS) {
        r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot start the unseal session");
        goto done;
    }
    if (policy) {
        uint32_t mask = 0;
        const char *k;
        json_t *x;
        json_object_foreach(json_object_get(policy, "pcrs"), k, x) {
            uint32_t i;
            if (cit_parse_u32(k, &i) == 0 && i < 24)
                mask |= 1u << i;
        }
        TPML_PCR_SELECTION sel;
        TPMI_ALG_HASH alg;
        r = pcr_selection(json_string_value(json_object_get(policy, "bank")), mask, &sel, &alg);
        if (r < 0)
            goto done;
        TPM2B_DIGEST empty = {0};
        rc = Esys_PolicyPCR(t->esys, sess, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &sel);
        if (rc == TSS2_RC_SUCCESS && has_auth)
            rc = Esys_PolicyAuthValue(t->esys, sess, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS) {
            r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "the PCR policy session failed");
            goto done;
        }
    }
    if (named) {
        r = cit__policy_run(t, named, sess, NULL, ctx);
        if (r < 0) {
            cit_error_context("path", "%s", path);
            goto done;
        }
    }
    if (has_auth)
        Esys_TR_SetAuth(t->esys, h, auth);
    if (salt)
        Esys_TRSess_SetAttributes(t->esys, sess, TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION,
                                  TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION);
    rc = Esys_Unseal(t->esys, h, sess, ESYS_TR_NONE, ESYS_TR_NONE, &data);
    if (rc != TSS2_RC_SUCCESS) {
        uint32_t base = cit__rc_base(rc);
        if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
            (base == TPM2_RC_AUTH_FAIL || base == TPM2_RC_BAD_AUTH || base == TPM2_RC_LOCKOUT)) {
            r = cit__tss_error(t, CIT_E_AUTH_FAIL, rc, "the TPM refused to unseal %s", path);
            cit_error_context("path", "%s", path);
        } else if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && base == TPM2_RC_LOCALITY) {
            r = cit_error_set(CIT_E_POLICY_FAIL, "the TPM refused to unseal %s: its policy needs another locality", path);
            cit_error_cause("citadel runs at locality 0");
            cit_error_context("path", "%s", path);
            cit_error_context("tpm_rc", "0x%08x", rc);
        } else if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
                   (base == TPM2_RC_POLICY_FAIL || base == TPM2_RC_PCR_CHANGED)) {
            r = cit_error_set(CIT_E_POLICY_FAIL, "the TPM refused to unseal %s: its PCR policy is not met", path);
            cit_error_context("path", "%s", path);
            cit_error_context("tpm_rc", "0x%08x", rc);
            explain_pcr_change(t, policy);
        } else
            r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "TPM2_Unseal failed for %s", path);
        goto done;
    }
    if (data->size > cap) {
        r = cit_error_set(CIT_E_STORE_IO, "the sealed object of %s holds %u bytes, more than expected", path,
                          (unsigned)data->size);
        goto done;
    }
    memcpy(out, data->buffer, data->size);
    *out_len = data->size;
    cit__tpm_scrub_response(t); /* tpm2-tss decrypted the response in its own buffer */
done:
    if (data) {
        cit_memzero(data, sizeof(*data));
        Esys_Free(data);
    }
    if (r < 0)
        cit_memzero(out, cap);
    if (sess != ESYS_TR_NONE)
        cit__tpm_flush(t, &sess);
    if (h != ESYS_TR_NONE)
        Esys_TR_SetAuth(t->esys, h, &(TPM2B_AUTH){0}); /* ESYS keeps no copy of the password */
    cit__key_unload(ctx, &h, pers);
    cit__key_cache_drop(ctx); /* a sealed object does not stay loaded */
    return r;
}

_public_ int cit_secret_unseal(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file, uint8_t **secret,
                               size_t *secret_len) {
    cit_error_clear();
    cit_object o = {0};
    int r = cit__ctx_find(ctx, path, &o);
    if (r == 0)
        r = cit__require_kind(&o, "secret");
    if (r == 0)
        r = cit__require_active(&o);
    if (r == 0 && strcmp(o.algorithm, "audit-kek") == 0) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is the audit log's key: it is never unsealed out of the log", path);
        cit_error_cause("it wraps the data keys of secret-tier audit segments");
        cit_error_step("read secret-tier entries with `citadel tpm audit show SEQNO`");
        cit_error_context("path", "%s", path);
    } else if (r == 0 && cit__kek_is_internal(&o)) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is an internal key-encryption key: it is never unsealed", path);
        cit_error_cause("it wraps a private key that stays inside libcitadel (%s)", o.algorithm);
        cit_error_step("a CA's key is used through `citadel ca issue` and `citadel ca crl`");
        cit_error_context("path", "%s", path);
    }
    if (r < 0) {
        cit__object_clear(&o);
        return r;
    }
    json_t *meta = json_loads(o.metadata, 0, NULL);
    json_t *policy = json_object_get(meta, "policy");
    json_t *named = json_object_get(meta, "policy_json");
    bool needs_auth = json_is_true(json_object_get(meta, "auth"));
    if (needs_auth != (auth_file != NULL)) {
        r = needs_auth ? cit_error_set(CIT_E_AUTH_FAIL, "%s needs its password: give it with --auth-file", path)
                       : cit_error_set(CIT_E_USAGE, "%s has no password", path);
        cit_error_context("path", "%s", path);
        json_decref(meta);
        cit__object_clear(&o);
        return r;
    }
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_Load", "TPM2_StartAuthSession (policy, salted)", "TPM2_PolicyPCR",
                                          "TPM2_Unseal", "TPM2_FlushContext", NULL};
        static const char *const ops_np[] = {"TPM2_Load", "TPM2_StartAuthSession (HMAC, salted)", "TPM2_Unseal",
                                             "TPM2_FlushContext", NULL};
        *out = cit__plan("unseal a secret", policy || named ? ops : ops_np);
        json_decref(meta);
        cit__object_clear(&o);
        return 0;
    }
    TPM2B_AUTH auth = {0};
    uint8_t data[CIT_SEAL_DIRECT_MAX];
    size_t dlen = 0;
    cit_object_version v = {0};
    if (auth_file)
        r = cit__read_auth(auth_file, &auth);
    if (r == 0)
        r = cit__unseal_data(ctx, &o, meta, &auth, data, sizeof data, &dlen);
    cit_memzero(&auth, sizeof auth);
    if (r < 0)
        goto done;
    if (json_is_true(json_object_get(meta, "envelope"))) {
        r = cit__version_get(ctx->store, o.id, o.version, &v);
        if (r == 0 && dlen != 32)
            r = cit_error_set(CIT_E_STORE_IO, "the sealed envelope key of %s is damaged", path);
        if (r == 0)
            r = envelope_open(v.payload, v.payload_len, data, secret, secret_len);
    } else {
        *secret = malloc(dlen ? dlen : 1);
        if (!*secret)
            r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        else {
            memcpy(*secret, data, dlen);
            *secret_len = dlen;
        }
    }
    if (r == 0) {
        *out = json_pack("{s:s,s:I,s:b}", "path", path, "size", (json_int_t)*secret_len, "pcr_policy", policy != NULL);
        if (named)
            json_object_set(*out, "policy_name", json_object_get(meta, "policy_name"));
    }
done:
    cit_memzero(data, sizeof data);
    cit__version_clear(&v);
    json_decref(meta);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_secret_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "list sealed secrets (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    cit_object *list = NULL;
    size_t n = 0;
    r = cit__object_list(s, "secret", &list, &n);
    if (r < 0)
        return r;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *meta = json_loads(list[i].metadata, 0, NULL);
        json_t *pcrs = json_object_get(json_object_get(meta, "policy"), "pcrs");
        const char *pname = json_string_value(json_object_get(meta, "policy_name"));
        char buf[80] = "";
        size_t off = 0;
        const char *k;
        json_t *x;
        json_object_foreach(pcrs, k, x) off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", off ? "," : "", k);
        char when[32];
        cit_time_rfc3339(when, sizeof when, list[i].created_at);
        json_array_append_new(a, json_pack("{s:s,s:I,s:s,s:s,s:s}", "path", list[i].path, "size",
                                           json_integer_value(json_object_get(meta, "size")), "sealing",
                                           list[i].algorithm, "pcrs", off ? buf : pname ? pname : "-", "created",
                                           when));
        json_decref(meta);
    }
    cit__object_list_free(list, n);
    *out = json_pack("{s:o,s:I}", "secrets", a, "count", (json_int_t)n);
    return 0;
}
