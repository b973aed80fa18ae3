/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key lifecycle: create (create/load/persist/flush in one), sign, verify in software, export,
 * rotate, delete. Keys are TPM objects wrapped under their parent (the storage primary key
 * unless a storage key is named); their public and wrapped private parts live in the store and
 * are loaded on demand, so a TPM restart (Startup CLEAR) never invalidates them.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "crypto/crypto.h"
#include "store/intents.h"
#include "ctx.h"
#include "core/ed25519.h"
#include "core/keys.h"
#include "core/profiles.h"
#include "policy/policy.h"

#define SIGN_INPUT_MAX (4ull * 1024 * 1024 * 1024) /* 4 GiB, hashed as a stream */
#define SIGNATURE_FILE_MAX 4096
#define LOAD_CHAIN_MAX 8

static const struct {
    const char *name;
    TPMI_ALG_PUBLIC type;
    uint16_t bits_or_curve;
    const char *default_hash;
} algorithms[] = {
    {"ecc-p256", TPM2_ALG_ECC, TPM2_ECC_NIST_P256, "sha256"},
    {"ecc-p384", TPM2_ALG_ECC, TPM2_ECC_NIST_P384, "sha384"},
    {"rsa-2048", TPM2_ALG_RSA, 2048, "sha256"},
    {"rsa-3072", TPM2_ALG_RSA, 3072, "sha384"},
};

static int find_alg(const char *name) {
    for (size_t i = 0; i < ELEMENTSOF(algorithms); i++)
        if (strcmp(algorithms[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int unsupported_alg(const char *name) {
    cit_error_set(CIT_E_ALG_UNSUPPORTED, "unsupported key algorithm: %s", name);
    cit_error_cause("citadel creates ecc-p256, ecc-p384, rsa-2048 and rsa-3072 keys in the TPM, and ed25519 keys "
                    "whose seed the TPM seals (`key create --algorithm ed25519`)");
    cit_error_context("algorithm", "%s", name);
    return CIT_E_ALG_UNSUPPORTED;
}

/* Names the curves or key sizes this TPM does have, for the error message. */
static void add_supported_context(cit_tpm *t, TPMI_ALG_PUBLIC type) {
    TPMS_CAPABILITY_DATA *cap = NULL;
    char buf[200] = "";
    size_t off = 0;
    if (type == TPM2_ALG_ECC) {
        if (Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_ECC_CURVES,
                               0, 64, NULL, &cap) == TSS2_RC_SUCCESS) {
            for (uint32_t i = 0; i < cap->data.eccCurves.count && off < sizeof buf - 16; i++) {
                TPM2_ECC_CURVE c = cap->data.eccCurves.eccCurves[i];
                const char *n = c == TPM2_ECC_NIST_P256   ? "ecc-p256"
                                : c == TPM2_ECC_NIST_P384 ? "ecc-p384"
                                : c == TPM2_ECC_NIST_P521 ? "ecc-p521"
                                : c == TPM2_ECC_BN_P256   ? "bn-p256"
                                : c == TPM2_ECC_SM2_P256  ? "sm2-p256"
                                                          : NULL;
                if (n)
                    off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", off ? ", " : "", n);
            }
            cit_error_context("tpm_curves", "%s", buf);
        }
    } else
        cit_error_context("tpm_rsa", "run `citadel tpm capabilities` for the RSA key sizes");
    Esys_Free(cap);
}

const char *cit__key_default_hash(const char *algorithm) {
    int i = find_alg(algorithm);
    return i < 0 ? "sha256" : algorithms[i].default_hash;
}

int cit__key_template(TPM2B_PUBLIC *pub, const char *algorithm, const char *usage) {
    int i = find_alg(algorithm);
    if (i < 0)
        return unsupported_alg(algorithm);
    memset(pub, 0, sizeof(*pub));
    TPMT_PUBLIC *p = &pub->publicArea;
    p->type = algorithms[i].type;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH;
    bool storage = usage && strcmp(usage, "storage") == 0;
    if (storage)
        p->objectAttributes |= TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_NODA;
    else
        p->objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT;
    TPMT_SYM_DEF_OBJECT sym = {.algorithm = TPM2_ALG_NULL};
    if (storage) {
        sym.algorithm = TPM2_ALG_AES;
        sym.keyBits.aes = 128;
        sym.mode.aes = TPM2_ALG_CFB;
    }
    if (p->type == TPM2_ALG_ECC) {
        p->parameters.eccDetail.symmetric = sym;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = algorithms[i].bits_or_curve;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    } else {
        p->parameters.rsaDetail.symmetric = sym;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.rsaDetail.keyBits = algorithms[i].bits_or_curve;
        p->parameters.rsaDetail.exponent = 0;
    }
    return 0;
}

int cit__name_from_public(const TPM2B_PUBLIC *pub, uint8_t *out, size_t *out_len) {
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t off = 0;
    if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, buf, sizeof buf, &off) != TSS2_RC_SUCCESS)
        return cit_error_set(CIT_E_INTERNAL, "cannot marshal a public area");
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    int r = cit__digest(pub->publicArea.nameAlg, buf, off, md, &mdlen);
    if (r < 0)
        return r;
    out[0] = (uint8_t)(pub->publicArea.nameAlg >> 8);
    out[1] = (uint8_t)pub->publicArea.nameAlg;
    memcpy(out + 2, md, mdlen);
    *out_len = mdlen + 2;
    return 0;
}

int cit__public_unmarshal(const cit_object_version *v, TPM2B_PUBLIC *pub) {
    size_t off = 0;
    memset(pub, 0, sizeof(*pub));
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(v->pub, v->pub_len, &off, pub) != TSS2_RC_SUCCESS) {
        cit_error_set(CIT_E_STORE_IO, "the stored public area of version %d is damaged", v->version);
        cit_error_step("run `citadel tpm doctor`");
        return CIT_E_STORE_IO;
    }
    return 0;
}

int cit__require_kind(const cit_object *o, const char *kind) {
    if (strcmp(o->kind, kind) == 0)
        return 0;
    cit_error_set(CIT_E_OBJECT_KIND, "%s is a %s, not a %s", o->path, o->kind, kind);
    cit_error_context("path", "%s", o->path);
    cit_error_context("kind", "%s", o->kind);
    return CIT_E_OBJECT_KIND;
}

int cit__require_active(const cit_object *o) {
    if (strcmp(o->status, "retired") != 0)
        return 0;
    cit_error_set(CIT_E_OBJECT_RETIRED, "object is retired: %s", o->path);
    cit_error_cause("retired objects cannot be used for new operations");
    cit_error_context("path", "%s", o->path);
    cit_error_step("run `citadel tpm object activate %s` to use it again", o->path);
    return CIT_E_OBJECT_RETIRED;
}

#define AUTH_MAX 32 /* the TPM limits an auth value to the name algorithm's digest size */

/* Reads a password from a file ("-" = stdin): one trailing newline is dropped. */
int cit__read_auth(const char *file, TPM2B_AUTH *out) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = cit_read_file(file, 4096, &buf, &len);
    if (r < 0) {
        cit_error_set(CIT_E_INPUT_READ, "cannot read the password file %s: %s", file, strerror(-r));
        cit_error_context("file", "%s", file);
        return CIT_E_INPUT_READ;
    }
    if (len && buf[len - 1] == '\n')
        len--;
    if (len && buf[len - 1] == '\r')
        len--;
    r = 0;
    if (len == 0) {
        r = cit_error_set(CIT_E_INPUT_EMPTY, "the password file is empty: %s", file);
    } else if (len > AUTH_MAX) {
        r = cit_error_set(CIT_E_INPUT_TOO_LARGE, "the password is longer than %d bytes", AUTH_MAX);
        cit_error_context("limit_bytes", "%d", AUTH_MAX);
    } else {
        memset(out, 0, sizeof(*out));
        out->size = (UINT16)len;
        memcpy(out->buffer, buf, len);
    }
    cit_memzero(buf, len);
    free(buf);
    return r;
}

static bool has_auth(const cit_object *o) { return o->metadata && strstr(o->metadata, "\"auth\":\"password\""); }

int cit__key_need_auth(const cit_object *o, const char *auth_file, TPM2B_AUTH *auth) {
    memset(auth, 0, sizeof(*auth));
    if (!has_auth(o)) {
        if (auth_file) {
            cit_error_set(CIT_E_USAGE, "%s has no password", o->path);
            cit_error_cause("--auth-file is only for keys created with one");
            return CIT_E_USAGE;
        }
        return 0;
    }
    if (!auth_file) {
        cit_error_set(CIT_E_AUTH_FAIL, "%s needs its password", o->path);
        cit_error_cause("the key was created with --auth-file; give the same with --auth-file");
        cit_error_context("path", "%s", o->path);
        return CIT_E_AUTH_FAIL;
    }
    return cit__read_auth(auth_file, auth);
}

/* Loads version `version` of o (and its parents) into the TPM. *out must be flushed by the
 * caller with cit__tpm_flush unless *persistent is set. */
static int load_object(cit_ctx *ctx, const cit_object *o, int version, int depth, ESYS_TR *out,
                       bool *persistent) {
    cit_tpm *t;
    int r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    if (depth > LOAD_CHAIN_MAX)
        return cit_error_set(CIT_E_INTERNAL, "parent chain too deep at %s", o->path);
    if (o->persistent_handle && version == o->version) {
        TSS2_RC rc = Esys_TR_FromTPMPublic(t->esys, o->persistent_handle, ESYS_TR_NONE, ESYS_TR_NONE,
                                           ESYS_TR_NONE, out);
        if (rc != TSS2_RC_SUCCESS && !((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && cit__rc_base(rc) == TPM2_RC_HANDLE))
            return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot read the persistent object of %s", o->path);
        if (rc != TSS2_RC_SUCCESS) {
            cit_error_set(CIT_E_STORE_INCONSISTENT, "the persistent handle of %s is missing", o->path);
            cit_error_cause("the store says %s is persisted at 0x%08x, but the TPM has no object there",
                            o->path, o->persistent_handle);
            cit_error_context("path", "%s", o->path);
            cit_error_context("handle", "0x%08x", o->persistent_handle);
            return CIT_E_STORE_INCONSISTENT;
        }
        /* The handle must still hold this key: never sign with whatever was put there since. */
        cit_object_version pv = {0};
        TPM2B_NAME *name = NULL;
        r = cit__version_get(ctx->store, o->id, version, &pv);
        if (r == 0 && cit__tpm_object_name(t, *out, &name) != TSS2_RC_SUCCESS)
            r = cit_error_set(CIT_E_TPM_COMMAND, "cannot read the name of 0x%08x", o->persistent_handle);
        if (r == 0 && (name->size != pv.name_len || memcmp(name->name, pv.name, pv.name_len) != 0)) {
            r = cit_error_set(CIT_E_STORE_INCONSISTENT, "persistent handle 0x%08x holds another key, not %s",
                              o->persistent_handle, o->path);
            cit_error_cause("the object at the handle was evicted and replaced outside citadel");
            cit_error_context("path", "%s", o->path);
            cit_error_context("handle", "0x%08x", o->persistent_handle);
        }
        Esys_Free(name);
        cit__version_clear(&pv);
        if (r < 0) {
            Esys_TR_Close(t->esys, out);
            return r;
        }
        *persistent = true;
        return 0;
    }
    cit_store *s = ctx->store;
    cit_object_version v = {0};
    r = cit__version_get(s, o->id, version, &v);
    if (r < 0)
        return r;
    TPM2B_PUBLIC pub;
    TPM2B_PRIVATE priv = {0};
    size_t off = 0;
    r = cit__public_unmarshal(&v, &pub);
    if (r == 0 && Tss2_MU_TPM2B_PRIVATE_Unmarshal(v.priv, v.priv_len, &off, &priv) != TSS2_RC_SUCCESS)
        r = cit_error_set(CIT_E_STORE_IO, "the stored private area of %s is damaged", o->path);
    int parent_version = v.parent_version;
    cit__version_clear(&v);
    if (r < 0)
        return r;

    ESYS_TR parent = ESYS_TR_NONE;
    bool parent_persistent = true;
    if (o->parent_id) {
        cit_object po = {0};
        r = cit__object_get(s, o->parent_id, &po);
        /* the parent version this key was wrapped under (a rotated parent keeps its old ones) */
        if (r == 0)
            r = load_object(ctx, &po, parent_version ? parent_version : po.version, depth + 1, &parent,
                            &parent_persistent);
        cit__object_clear(&po);
    } else
        r = cit__ctx_srk(ctx, false, &parent);
    if (r < 0)
        return r;
    ESYS_TR h = ESYS_TR_NONE;
    TSS2_RC rc = Esys_Load(t->esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &h);
    cit_memzero(&priv, sizeof priv);
    if (!parent_persistent)
        cit__tpm_flush(t, &parent);
    else if (o->parent_id)
        Esys_TR_Close(t->esys, &parent);
    if (rc != TSS2_RC_SUCCESS) {
        uint32_t base = cit__rc_base(rc);
        if (!o->parent_id && cit__tpm_srk_load_error(rc) < 0)
            return cit_error_last()->code;
        if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
            (base == TPM2_RC_INTEGRITY || base == TPM2_RC_BINDING || base == TPM2_RC_SIZE)) {
            /* Was the storage key replaced (another TPM, a clear)? Ask the TPM, now that it matters. */
            ESYS_TR check;
            if (!o->parent_id && cit__ctx_srk(ctx, true, &check) < 0)
                return cit_error_last()->code;
            cit_error_set(CIT_E_KEY_LOAD, "cannot load %s into the TPM", o->path);
            cit_error_cause("the TPM rejected the wrapped key: it was made under another parent "
                            "key (the TPM was cleared, or this is not the same TPM)");
            cit_error_context("path", "%s", o->path);
            cit_error_context("tpm_rc", "0x%08x", rc);
            return CIT_E_KEY_LOAD;
        }
        r = cit__tss_error(t, CIT_E_KEY_LOAD, rc, "cannot load %s into the TPM", o->path);
        cit_error_context("path", "%s", o->path);
        return r;
    }
    *out = h;
    *persistent = false;
    return 0;
}

void cit__key_cache_drop(cit_ctx *ctx) {
    ESYS_TR h = ctx->key_cache.h;
    ctx->key_cache.h = ESYS_TR_NONE;
    if (h == ESYS_TR_NONE || !ctx->tpm)
        return;
    if (ctx->key_cache.persistent)
        Esys_TR_Close(ctx->tpm->esys, &h);
    else
        cit__tpm_flush(ctx->tpm, &h);
}

int cit__key_load(cit_ctx *ctx, const cit_object *o, int version, ESYS_TR *out, bool *persistent) {
    bool want_persistent = o->persistent_handle && version == o->version;
    if (ctx->key_cache.h != ESYS_TR_NONE && ctx->tpm && ctx->key_cache.id == o->id &&
        ctx->key_cache.version == version && ctx->key_cache.persistent == want_persistent) {
        /* the same object, not one that took its place: compare the TPM names (the name is
         * remembered at load; asking ESYS would hash the public area again) */
        uint8_t name[sizeof ctx->key_cache.name];
        size_t name_len = 0;
        bool same = cit__version_name(ctx->store, o->id, version, name, sizeof name, &name_len) == 0 &&
                    name_len == ctx->key_cache.name_len && memcmp(name, ctx->key_cache.name, name_len) == 0;
        cit_error_clear();
        if (same) {
            *out = ctx->key_cache.h;
            *persistent = ctx->key_cache.persistent;
            return 0;
        }
    }
    cit__key_cache_drop(ctx); /* its slot is needed more than it is */
    int r = load_object(ctx, o, version, 0, out, persistent);
    if (r == 0) {
        if (cit__version_name(ctx->store, o->id, version, ctx->key_cache.name, sizeof ctx->key_cache.name,
                              &ctx->key_cache.name_len) == 0) {
            ctx->key_cache.id = o->id;
            ctx->key_cache.version = version;
            ctx->key_cache.persistent = *persistent;
            ctx->key_cache.h = *out;
        }
        cit_error_clear();
    }
    return r;
}

void cit__key_unload(cit_ctx *ctx, ESYS_TR *h, bool persistent) {
    if (!ctx->tpm || *h == ESYS_TR_NONE)
        return;
    if (*h == ctx->key_cache.h) { /* stays loaded, without the auth value */
        Esys_TR_SetAuth(ctx->tpm->esys, *h, &(TPM2B_AUTH){0});
        *h = ESYS_TR_NONE;
        return;
    }
    if (persistent)
        Esys_TR_Close(ctx->tpm->esys, h);
    else
        cit__tpm_flush(ctx->tpm, h);
    *h = ESYS_TR_NONE;
}

/* Creates a new TPM key under parent o->parent_id (or the SRK): fills v. */
static int tpm_create_key(cit_ctx *ctx, const cit_object *o, const TPM2B_AUTH *auth, cit_object_version *v) {
    cit_tpm *t;
    int r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    TPM2B_PUBLIC tmpl;
    r = cit__key_template(&tmpl, o->algorithm, o->usage);
    if (r < 0)
        return r;
    json_t *meta = o->metadata ? json_loads(o->metadata, 0, NULL) : NULL;
    const char *pd_hex = json_string_value(json_object_get(meta, "policy_digest"));
    if (pd_hex) {
        /* a policy key: only policy sessions authorize its use (no password-only HMAC path) */
        uint8_t *pd = NULL;
        size_t pl = 0;
        if (cit_hex_decode(&pd, &pl, pd_hex) < 0 || pl != 32) {
            free(pd);
            json_decref(meta);
            return cit_error_set(CIT_E_STORE_IO, "the stored policy digest of %s is damaged", o->path);
        }
        memcpy(tmpl.publicArea.authPolicy.buffer, pd, pl);
        tmpl.publicArea.authPolicy.size = (UINT16)pl;
        tmpl.publicArea.objectAttributes &= ~TPMA_OBJECT_USERWITHAUTH;
        free(pd);
    }
    json_decref(meta);
    ESYS_TR parent = ESYS_TR_NONE;
    bool parent_persistent = true;
    if (o->parent_id) {
        cit_object po = {0};
        r = cit__object_get(ctx->store, o->parent_id, &po);
        if (r == 0)
            r = cit__key_load(ctx, &po, po.version, &parent, &parent_persistent);
        v->parent_version = po.version;
        cit__object_clear(&po);
    } else
        r = cit__ctx_srk(ctx, true, &parent); /* never wrap a new key under a foreign SRK */
    if (r < 0)
        return r;
    TPM2B_SENSITIVE_CREATE sens = {0};
    if (auth && auth->size)
        sens.sensitive.userAuth = *auth;
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_PRIVATE *priv = NULL;
    TPM2B_PUBLIC *pub = NULL;
    TSS2_RC rc = Esys_Create(t->esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                             &tmpl, &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
    cit_memzero(&sens, sizeof sens);
    if (o->parent_id)
        cit__key_unload(ctx, &parent, parent_persistent);
    if (rc != TSS2_RC_SUCCESS) {
        uint32_t base = cit__rc_base(rc);
        if (!o->parent_id && cit__tpm_srk_load_error(rc) < 0)
            return cit_error_last()->code;
        if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
            (base == TPM2_RC_CURVE || base == TPM2_RC_KEY_SIZE || base == TPM2_RC_ASYMMETRIC ||
             base == TPM2_RC_VALUE || base == TPM2_RC_SCHEME)) {
            cit_error_set(CIT_E_ALG_UNSUPPORTED, "this TPM cannot create %s keys", o->algorithm);
            cit_error_context("algorithm", "%s", o->algorithm);
            cit_error_context("tpm_rc", "0x%08x", rc);
            add_supported_context(t, tmpl.publicArea.type);
            return CIT_E_ALG_UNSUPPORTED;
        }
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "TPM2_Create failed for %s", o->path);
    }
    r = cit__version_set_tpm(v, pub, priv);
    Esys_Free(pub);
    Esys_Free(priv);
    return r;
}

int cit__version_set_tpm(cit_object_version *v, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv) {
    uint8_t pb[sizeof(TPM2B_PUBLIC)], vb[sizeof(TPM2B_PRIVATE)], nb[sizeof(TPMU_NAME) + 2];
    size_t po = 0, vo = 0, nl = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, pb, sizeof pb, &po) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PRIVATE_Marshal(priv, vb, sizeof vb, &vo) != TSS2_RC_SUCCESS)
        return cit_error_set(CIT_E_INTERNAL, "cannot marshal a TPM object");
    int r = cit__name_from_public(pub, nb, &nl);
    if (r < 0)
        return r;
    uint8_t *vp = malloc(po), *vv = malloc(vo), *vn = malloc(nl);
    if (!vp || !vv || !vn) {
        free(vp);
        free(vv);
        free(vn);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    memcpy(vp, pb, po);
    memcpy(vv, vb, vo);
    memcpy(vn, nb, nl);
    v->pub = vp;
    v->priv = vv;
    v->name = vn;
    v->pub_len = po;
    v->priv_len = vo;
    v->name_len = nl;
    return 0;
}

int cit__free_persistent_handle(cit_ctx *ctx, uint32_t *out) {
    cit_tpm *t = ctx->tpm;
    uint32_t *used = NULL;
    size_t n = 0;
    int r = cit__tpm_persistent_handles(t, CIT_PERSISTENT_FIRST, CIT_PERSISTENT_LAST, &used, &n);
    if (r < 0)
        return r;
    uint32_t h = CIT_PERSISTENT_FIRST;
    for (size_t i = 0; i < n && used[i] == h; i++)
        h++;
    free(used);
    if (h > CIT_PERSISTENT_LAST) {
        cit_error_set(CIT_E_NO_FREE_HANDLE, "all citadel persistent handles are in use");
        cit_error_context("range", "0x%08x-0x%08x", CIT_PERSISTENT_FIRST, CIT_PERSISTENT_LAST);
        return CIT_E_NO_FREE_HANDLE;
    }
    *out = h;
    return 0;
}

/* Makes version v of o persistent at handle (0: pick a free one). */
static int persist(cit_ctx *ctx, const cit_object *o, int version, uint32_t handle, uint32_t *out) {
    cit_object tmp = *o;
    tmp.persistent_handle = 0; /* load the transient form */
    ESYS_TR h = ESYS_TR_NONE;
    bool pers = false;
    int r = cit__key_load(ctx, &tmp, version, &h, &pers);
    if (r < 0)
        return r;
    if (!handle)
        r = cit__free_persistent_handle(ctx, &handle);
    if (r == 0) {
        ESYS_TR ph = ESYS_TR_NONE;
        TSS2_RC rc = Esys_EvictControl(ctx->tpm->esys, ESYS_TR_RH_OWNER, h, ESYS_TR_PASSWORD,
                                       ESYS_TR_NONE, ESYS_TR_NONE, handle, &ph);
        if (rc != TSS2_RC_SUCCESS) {
            r = cit__tss_error(ctx->tpm, CIT_E_TPM_COMMAND, rc, "cannot make %s persistent", o->path);
            if (cit__rc_base(rc) == TPM2_RC_NV_SPACE) {
                cit_error_set(CIT_E_NO_FREE_HANDLE, "the TPM has no room for another persistent object");
                r = CIT_E_NO_FREE_HANDLE;
            }
        } else {
            Esys_TR_Close(ctx->tpm->esys, &ph);
            *out = handle;
        }
    }
    cit__key_cache_drop(ctx); /* the transient copy is not needed any more */
    h = ESYS_TR_NONE;
    return r;
}

int cit__evict_handle(cit_ctx *ctx, uint32_t handle) {
    cit_tpm *t;
    int r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    cit__key_cache_drop(ctx); /* it may be the object being evicted */
    ESYS_TR h = ESYS_TR_NONE;
    TSS2_RC rc = Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &h);
    if (rc != TSS2_RC_SUCCESS)
        return 0; /* already gone: nothing to undo */
    ESYS_TR none = ESYS_TR_NONE;
    rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           handle, &none);
    /* ESYS keeps the evicted handle's metadata until closed: a later object at the same handle
     * would otherwise not match it */
    Esys_TR_Close(t->esys, &h);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot evict persistent handle 0x%08x", handle);
    return 0;
}

int cit__key_version_pubkey(const cit_object *o, const cit_object_version *v, EVP_PKEY **out) {
    if (cit__is_ed25519(o))
        return cit__ed25519_pubkey(out, v);
    TPM2B_PUBLIC pub;
    int r = cit__public_unmarshal(v, &pub);
    if (r == 0)
        r = cit__pubkey_from_tpm(out, &pub);
    return r;
}

/* Public key details of a stored version, for results. */
json_t *cit__key_version_json(const cit_object *o, const cit_object_version *v, bool with_pem) {
    json_t *j = json_object();
    char when[32];
    cit_time_rfc3339(when, sizeof when, v->created_at);
    json_object_set_new(j, "version", json_integer(v->version));
    _cleanup_free_ char *name = cit_hex_encode(v->name, v->name_len);
    json_object_set_new(j, "tpm_name", json_string(name ? name : ""));
    json_object_set_new(j, "created", json_string(when));
    EVP_PKEY *pk = NULL;
    if (cit__key_version_pubkey(o, v, &pk) == 0) {
        char *fp = NULL, *pem = NULL;
        if (cit__pubkey_fingerprint(&fp, pk) == 0)
            json_object_set_new(j, "fingerprint_sha256", json_string(fp));
        if (with_pem && cit__pubkey_pem(&pem, pk) == 0)
            json_object_set_new(j, "public_key_pem", json_string(pem));
        free(fp);
        free(pem);
    }
    EVP_PKEY_free(pk);
    cit_error_clear();
    return j;
}

/* On failure *o is left empty (nothing for the caller to free). */
static int find_key(cit_ctx *ctx, const char *path, cit_object *o) {
    int r = cit__ctx_find(ctx, path, o);
    if (r == 0)
        r = cit__require_kind(o, "key");
    if (r < 0)
        cit__object_clear(o);
    return r;
}

_public_ int cit_key_create(json_t **out, cit_ctx *ctx, const cit_key_create_options *opt) {
    cit_error_clear();
    if (opt->algorithm && strcmp(opt->algorithm, "ed25519") == 0)
        return cit__ed25519_create(out, ctx, opt);
    if (!opt->pcrs && !opt->policy)
        return cit__key_create_ex(out, ctx, opt, NULL, NULL, NULL);
    int r = cit__check_path(opt->path);
    if (r < 0)
        return r;
    if (opt->usage && strcmp(opt->usage, "storage") == 0) {
        cit_error_set(CIT_E_USAGE, "storage keys cannot have a policy");
        cit_error_cause("every key below a storage key would need to satisfy it to load");
        return CIT_E_USAGE;
    }
    if (ctx->plan)
        return cit__key_create_ex(out, ctx, opt, NULL, NULL, NULL);
    json_t *pol = NULL;
    char *digest = NULL;
    cit_store *s;
    if ((r = cit__ctx_store(ctx, &s)) < 0) /* the workspace's backend before the TPM opens */
        return r;
    r = cit__policy_for_object(ctx, opt->path, opt->pcrs, opt->bank, opt->policy, NULL, opt->auth_file != NULL, &pol,
                               &digest);
    if (r == 0)
        r = cit__key_create_ex(out, ctx, opt, pol, digest, NULL);
    json_decref(pol);
    free(digest);
    return r;
}

int cit__key_create_ex(json_t **out, cit_ctx *ctx, const cit_key_create_options *opt, json_t *policy,
                       const char *policy_digest_hex, json_t *extra) {
    int r = cit__check_path(opt->path);
    if (r < 0)
        return r;
    cit_store *s;
    r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    cit_object o = {0};
    snprintf(o.path, sizeof o.path, "%s", opt->path);
    snprintf(o.kind, sizeof o.kind, "key");
    snprintf(o.status, sizeof o.status, "active");
    const char *alg = opt->algorithm;
    const cit_template_def *tpl = NULL;
    if (opt->template_name && (r = cit__template_for(opt->template_name, "key", &tpl)) < 0)
        return r;
    if (tpl && strcmp(tpl->name, "attestation-ak") == 0) /* an AK: restricted, under the EK */
        return cit_attest_ak_create_ex(out, ctx, opt->path, opt->algorithm, opt->persist);
    if (!alg && tpl)
        alg = tpl->algorithm;
    _cleanup_free_ char *def_alg = NULL;
    if (!alg) {
        cit__store_meta_get(s, "default_algorithm", &def_alg);
        alg = def_alg ? def_alg : "ecc-p256";
    }
    if (find_alg(alg) < 0)
        return unsupported_alg(alg);
    snprintf(o.algorithm, sizeof o.algorithm, "%s", alg);
    const char *usage = opt->usage ? opt->usage : tpl && tpl->usage ? tpl->usage : "sign";
    bool want_persist = opt->persist || (tpl && tpl->persist);
    if ((r = cit__profile_check(ctx, opt->path, alg)) < 0)
        return r;
    if (strcmp(usage, "sign") != 0 && strcmp(usage, "storage") != 0) {
        cit_error_set(CIT_E_USAGE, "unknown key usage: %s", usage);
        cit_error_cause("--usage takes sign or storage");
        return CIT_E_USAGE;
    }
    snprintf(o.usage, sizeof o.usage, "%s", usage);
    bool rsa = strncmp(alg, "rsa", 3) == 0;
    const char *scheme = opt->scheme ? opt->scheme : (strcmp(usage, "storage") == 0 ? "" : rsa ? "rsassa" : "ecdsa");
    if (strcmp(usage, "sign") == 0 &&
        !(rsa ? (strcmp(scheme, "rsassa") == 0 || strcmp(scheme, "rsapss") == 0) : strcmp(scheme, "ecdsa") == 0)) {
        cit_error_set(CIT_E_USAGE, "scheme %s does not fit a %s key", scheme, alg);
        cit_error_cause(rsa ? "RSA keys sign with rsassa (PKCS#1 v1.5) or rsapss" : "ECC keys sign with ecdsa");
        return CIT_E_USAGE;
    }
    snprintf(o.scheme, sizeof o.scheme, "%s", scheme);
    cit_object parent = {0};
    if (opt->parent) {
        r = cit__check_path(opt->parent);
        if (r == 0)
            r = cit__object_find(s, opt->parent, &parent);
        if (r == 0 && (strcmp(parent.kind, "key") != 0 || strcmp(parent.usage, "storage") != 0)) {
            r = cit_error_set(CIT_E_OBJECT_KIND, "%s is not a storage key", opt->parent);
            cit_error_cause("only keys created with `--usage storage` can be parents");
        }
        if (r == 0)
            r = cit__require_active(&parent);
        o.parent_id = parent.id;
        cit__object_clear(&parent);
        if (r < 0)
            return r;
    }
    /* Refuse an existing path before doing any TPM work. */
    cit_object existing = {0};
    if (cit__object_find(s, opt->path, &existing) == 0) {
        cit__object_clear(&existing);
        cit_error_set(CIT_E_OBJECT_EXISTS, "object already exists: %s", opt->path);
        cit_error_cause("the path '%s' is taken", opt->path);
        cit_error_context("path", "%s", opt->path);
        return CIT_E_OBJECT_EXISTS;
    }
    cit_error_clear();
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_ReadPublic (storage primary key)",
                                          "TPM2_Create (new key under the parent)", NULL};
        static const char *const ops_p[] = {"TPM2_ReadPublic (storage primary key)",
                                            "TPM2_Create (new key under the parent)",
                                            "TPM2_Load", "TPM2_EvictControl (persist)",
                                            "TPM2_FlushContext", NULL};
        *out = cit__plan("create a key", want_persist ? ops_p : ops);
        json_object_set_new(*out, "path", json_string(opt->path));
        json_object_set_new(*out, "algorithm", json_string(alg));
        return 0;
    }
    cit_object_version v = {.version = 1};
    TPM2B_AUTH auth = {0};
    if (opt->auth_file) {
        if (strcmp(usage, "storage") == 0) {
            r = cit_error_set(CIT_E_USAGE, "storage keys cannot have a password");
            cit_error_cause("every key below a storage key would need it to load");
            goto done;
        }
        r = cit__read_auth(opt->auth_file, &auth);
        if (r < 0)
            goto done;
    }
    json_t *meta = extra ? json_deep_copy(extra) : json_object();
    if (opt->auth_file)
        json_object_set_new(meta, "auth", json_string("password"));
    if (policy) {
        json_object_set(meta, "policy_json", policy);
        json_object_set_new(meta, "policy_digest", json_string(policy_digest_hex));
        if (opt->policy)
            json_object_set_new(meta, "policy_name", json_string(opt->policy));
    }
    o.metadata = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(meta);
    r = tpm_create_key(ctx, &o, &auth, &v);
    cit_memzero(&auth, sizeof auth);
    if (r < 0)
        goto done;
    o.version = 1;
    /* A persistent key changes the TPM before the store commits: the handle is chosen now and
     * the intent journal names it (and the key's TPM name) first, so a crash in between leaves
     * something `repair` can prove is ours and evict. */
    int64_t intent = 0;
    uint32_t want_handle = 0;
    if (want_persist) {
        r = cit__free_persistent_handle(ctx, &want_handle);
        if (r == 0)
            r = cit__intent_add(s, "key.create", o.path, 0, want_handle, v.name, v.name_len, NULL, &intent);
        if (r < 0)
            goto done;
    }
    r = cit__store_begin(s);
    if (r < 0) {
        cit__intent_clear(s, intent);
        goto done;
    }
    r = cit__object_insert(s, &o);
    if (r == 0)
        r = cit__version_insert(s, o.id, &v);
    if (r == 0 && want_persist) {
        uint32_t handle = 0;
        r = persist(ctx, &o, 1, want_handle, &handle);
        if (r == 0) {
            o.persistent_handle = handle;
            r = cit__object_update(s, &o);
        }
        if (r == 0)
            r = cit__ctx_tpm_sync(ctx); /* the handle is durable before the store says so */
        if (r == 0)
            cit__fault_point("key.create.persisted");
    }
    if (r == 0) {
        json_t *d = json_pack("{s:s,s:s}", "algorithm", o.algorithm, "usage", o.usage);
        r = cit__store_event(s, "key.create", o.path, o.id, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__intent_clear(s, intent); /* with the commit */
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        /* undo, reporting the failure that made us undo; the intent stays when the undo fails */
        cit_error saved = *cit_error_last();
        if (!o.persistent_handle ||
            (cit__evict_handle(ctx, o.persistent_handle) == 0 && cit__ctx_tpm_sync(ctx) == 0))
            cit__intent_clear(s, intent);
        cit_error_restore(&saved);
        goto done;
    }
    v.created_at = o.created_at;
    json_t *j = cit__object_json(&o, s);
    json_t *vj = cit__key_version_json(&o, &v, true);
    json_object_update(j, vj);
    json_object_set_new(j, "version", json_integer(1));
    json_decref(vj);
    *out = j;
done:
    cit__version_clear(&v);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_key_list(json_t **out, cit_ctx *ctx) { return cit_object_list(out, ctx, "key"); }

_public_ int cit_key_show(json_t **out, cit_ctx *ctx, const char *path) {
    cit_error_clear();
    cit_object o = {0};
    int r = find_key(ctx, path, &o);
    if (r < 0)
        return r;
    if (ctx->plan) {
        *out = cit__plan("show a key (reads the store only)", NULL);
        cit__object_clear(&o);
        return 0;
    }
    json_t *j = cit__object_json(&o, ctx->store);
    json_t *versions = json_array();
    for (int ver = o.version; ver >= 1; ver--) {
        cit_object_version v = {0};
        if (cit__version_get(ctx->store, o.id, ver, &v) == 0) {
            json_t *vj = cit__key_version_json(&o, &v, ver == o.version);
            json_object_set_new(vj, "current", json_boolean(ver == o.version));
            if (ver == o.version) {
                json_object_set(j, "tpm_name", json_object_get(vj, "tpm_name"));
                json_object_set(j, "fingerprint_sha256", json_object_get(vj, "fingerprint_sha256"));
                json_object_set(j, "public_key_pem", json_object_get(vj, "public_key_pem"));
                json_object_del(vj, "public_key_pem");
            }
            json_array_append_new(versions, vj);
        }
        cit__version_clear(&v);
    }
    cit_error_clear();
    json_object_set_new(j, "versions", versions);
    cit__object_clear(&o);
    *out = j;
    return 0;
}

static cit_sig_scheme scheme_of(const cit_object *o) {
    if (strcmp(o->scheme, "rsapss") == 0)
        return CIT_SCHEME_RSAPSS;
    if (strcmp(o->scheme, "rsassa") == 0)
        return CIT_SCHEME_RSASSA;
    return CIT_SCHEME_ECDSA;
}

static int parse_encoding(const char *s, const cit_object *o, cit_sig_encoding *out) {
    if (!s || strcmp(s, "der") == 0)
        *out = CIT_SIG_ENC_DER;
    else if (strcmp(s, "raw") == 0) {
        if (strncmp(o->algorithm, "rsa", 3) == 0) {
            cit_error_set(CIT_E_USAGE, "--encoding raw is for ECDSA keys; %s is %s", o->path, o->algorithm);
            cit_error_cause("an RSA signature has a single encoding");
            cit_error_step("leave out --encoding for RSA keys");
            return CIT_E_USAGE;
        }
        *out = CIT_SIG_ENC_RAW;
    } else {
        cit_error_set(CIT_E_USAGE, "unknown signature encoding: %s", s);
        cit_error_cause("--encoding takes der (X9.62, what openssl expects) or raw (r||s)");
        cit_error_step("use --encoding der or --encoding raw");
        return CIT_E_USAGE;
    }
    return 0;
}

/* The digests citadel signs with: SHA-1 is refused (collisions are practical). */
static int sign_hash(const char *name, TPMI_ALG_HASH *out) {
    if (strcmp(name, "sha256") != 0 && strcmp(name, "sha384") != 0 && strcmp(name, "sha512") != 0) {
        cit_error_set(CIT_E_ALG_UNSUPPORTED, "unsupported signature digest: %s", name);
        cit_error_cause("citadel signs with sha256, sha384 or sha512%s",
                        strcmp(name, "sha1") == 0 ? " (SHA-1 collisions are practical)" : "");
        cit_error_step("use --digest sha256, sha384 or sha512");
        return CIT_E_ALG_UNSUPPORTED;
    }
    return cit__hash_from_name(name, out);
}

static int input_error(int err, const char *path, size_t max) {
    if (err == -EFBIG) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "input too large: %s", path);
        cit_error_context("limit_bytes", "%zu", max);
    } else {
        cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", path, strerror(-err));
        cit_error_context("file", "%s", path);
    }
    cit_error_context("file", "%s", path);
    return cit_error_last()->code;
}

int cit__read_input(const char *path, size_t max, const char *what, bool allow_empty, uint8_t **out, size_t *len) {
    uint8_t *buf = NULL;
    size_t n = 0;
    int r = cit_read_file(path, max, &buf, &n);
    if (r < 0) {
        if (r == -EFBIG) {
            cit_error_set(CIT_E_INPUT_TOO_LARGE, "%s is larger than %zu bytes: %s", what, max, path);
            cit_error_context("limit_bytes", "%zu", max);
        } else
            cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", path, strerror(-r));
        cit_error_context("file", "%s", path);
        return cit_error_last()->code;
    }
    if (n == 0 && !allow_empty) {
        free(buf);
        cit_error_set(CIT_E_INPUT_EMPTY, "%s is empty: %s", what, path);
        cit_error_context("file", "%s", path);
        return CIT_E_INPUT_EMPTY;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Hashes a file as a stream (it may be large). */
int cit__digest_file(TPMI_ALG_HASH alg, const char *path, uint64_t max, uint8_t *md, size_t *mdlen) {
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return input_error(-errno, path, 0);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int r = 0;
    uint64_t total = 0;
    if (!mctx || EVP_DigestInit_ex(mctx, cit__hash_md(alg), NULL) != 1) {
        r = cit__openssl_error(CIT_E_CRYPTO, "cannot start a digest");
        goto done;
    }
    uint8_t buf[65536];
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r = input_error(-errno, path, 0);
            goto done;
        }
        if (k == 0)
            break;
        total += (uint64_t)k;
        if (total > max) {
            r = input_error(-EFBIG, path, (size_t)max);
            goto done;
        }
        EVP_DigestUpdate(mctx, buf, (size_t)k);
    }
    if (total == 0) {
        r = cit_error_set(CIT_E_INPUT_EMPTY, "the input is empty: %s", path);
        cit_error_cause("signing an empty file is almost always a mistake (a failed build or a wrong path)");
        cit_error_context("file", "%s", path);
        goto done;
    }
    unsigned int l = 0;
    EVP_DigestFinal_ex(mctx, md, &l);
    *mdlen = l;
done:
    EVP_MD_CTX_free(mctx);
    if (fd != STDIN_FILENO)
        close(fd);
    return r;
}

static int read_digest_input(const char *path, size_t want, uint8_t *md, size_t *mdlen) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = cit_read_file(path, 1024, &buf, &len);
    if (r < 0)
        return input_error(r, path, 1024);
    /* accept raw bytes or hex text */
    if (len == want) {
        memcpy(md, buf, len);
        *mdlen = len;
        free(buf);
        return 0;
    }
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        buf[--len] = 0;
    uint8_t *dec = NULL;
    size_t dl = 0;
    r = 0;
    if (cit_hex_decode(&dec, &dl, (char *)buf) < 0 || dl != want) {
        r = cit_error_set(CIT_E_INPUT_INVALID, "the digest input is not a %zu-byte digest", want);
        cit_error_cause("with --input-is-digest the input must be the raw digest or its hex");
        cit_error_context("file", "%s", path);
    } else {
        memcpy(md, dec, dl);
        *mdlen = dl;
    }
    free(dec);
    free(buf);
    return r;
}

int cit__sign_data_check(const cit_key_sign_options *opt) {
    if (opt->input)
        return cit_error_set(CIT_E_USAGE, "sign takes an input file or data in memory, not both");
    if (opt->data_len == 0) {
        cit_error_set(CIT_E_INPUT_EMPTY, "the input is empty");
        cit_error_cause("signing empty data is almost always a mistake");
        return CIT_E_INPUT_EMPTY;
    }
    if (opt->data_len > SIGN_INPUT_MAX) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "the input is larger than %llu bytes", (unsigned long long)SIGN_INPUT_MAX);
        cit_error_context("limit_bytes", "%llu", (unsigned long long)SIGN_INPUT_MAX);
        return CIT_E_INPUT_TOO_LARGE;
    }
    return 0;
}

static size_t curve_bytes(const char *alg) {
    return strcmp(alg, "ecc-p384") == 0 ? 48 : 32;
}

/* A policy session satisfying o's stored policy ("policy_json" in its metadata), or ESYS_TR_NONE
 * in *sess when o has none. The session ends with the command that uses it. */
int cit__object_policy_session(cit_ctx *ctx, const cit_object *o, ESYS_TR *sess) {
    *sess = ESYS_TR_NONE;
    json_t *meta = o->metadata ? json_loads(o->metadata, 0, NULL) : NULL;
    json_t *pol = json_object_get(meta, "policy_json");
    if (!pol) {
        json_decref(meta);
        return 0;
    }
    cit_tpm *t = ctx->tpm;
    TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
    TSS2_RC rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, sess);
    int r = 0;
    if (rc != TSS2_RC_SUCCESS)
        r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot start a policy session");
    if (r == 0)
        r = cit__policy_run(t, pol, *sess, NULL, ctx);
    if (r < 0) {
        cit_error_context("path", "%s", o->path);
        if (*sess != ESYS_TR_NONE)
            cit__tpm_flush(t, sess);
    } else
        Esys_TRSess_SetAttributes(t->esys, *sess, 0, TPMA_SESSION_CONTINUESESSION);
    json_decref(meta);
    return r;
}

static int sign_with(cit_ctx *ctx, const cit_object *o, TPMI_ALG_HASH halg, const uint8_t *md, size_t mdlen,
                     const TPM2B_AUTH *auth, TPMT_SIGNATURE **sig) {
    int r;
    TPM2B_DIGEST dig = {.size = (UINT16)mdlen};
    memcpy(dig.buffer, md, mdlen);
    cit_sig_scheme sch = scheme_of(o);
    TPMT_SIG_SCHEME scheme = {.scheme = sch == CIT_SCHEME_ECDSA    ? TPM2_ALG_ECDSA
                                        : sch == CIT_SCHEME_RSAPSS ? TPM2_ALG_RSAPSS
                                                                   : TPM2_ALG_RSASSA};
    scheme.details.any.hashAlg = halg;
    TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
    ESYS_TR h = ESYS_TR_NONE, sess = ESYS_TR_NONE;
    bool pers = false;
    TSS2_RC rc = TSS2_RC_SUCCESS;
    for (int attempt = 0; attempt < 2; attempt++) {
        r = cit__key_load(ctx, o, o->version, &h, &pers);
        if (r == 0)
            r = cit__object_policy_session(ctx, o, &sess);
        if (r < 0)
            break;
        if (auth->size)
            Esys_TR_SetAuth(ctx->tpm->esys, h, auth);
        rc = Esys_Sign(ctx->tpm->esys, h, sess != ESYS_TR_NONE ? sess : ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                       &dig, &scheme, &ticket, sig);
        if (rc != TSS2_RC_SUCCESS && sess != ESYS_TR_NONE)
            cit__tpm_flush(ctx->tpm, &sess); /* a failed command leaves the session open */
        sess = ESYS_TR_NONE;
        bool stale = rc != TSS2_RC_SUCCESS && (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
                     (cit__rc_base(rc) == TPM2_RC_HANDLE || cit__rc_base(rc) == TPM2_RC_REFERENCE_H0);
        if (!stale || attempt > 0)
            break;
        /* a key kept loaded from an earlier operation was flushed behind our back: load again */
        ctx->key_cache.h = ESYS_TR_NONE;
        Esys_TR_Close(ctx->tpm->esys, &h);
        h = ESYS_TR_NONE;
    }
    if (r < 0) {
        if (h != ESYS_TR_NONE)
            cit__key_unload(ctx, &h, pers);
        return r;
    }
    Esys_TR_SetAuth(ctx->tpm->esys, h, &(TPM2B_AUTH){0}); /* ESYS keeps no copy of the password */
    cit__key_unload(ctx, &h, pers);
    if (rc != TSS2_RC_SUCCESS) {
        uint32_t base = cit__rc_base(rc);
        if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
            (base == TPM2_RC_POLICY_FAIL || base == TPM2_RC_PCR_CHANGED)) {
            r = cit_error_set(CIT_E_POLICY_FAIL, "the TPM refused to sign with %s: its policy is not met", o->path);
            cit_error_context("tpm_rc", "0x%08x", rc);
        } else
            r = cit__tss_error(ctx->tpm, CIT_E_TPM_COMMAND, rc, "TPM2_Sign failed for %s", o->path);
        cit_error_context("path", "%s", o->path);
        return r;
    }
    return 0;
}

int cit__key_sign_digest(cit_ctx *ctx, const cit_object *o, TPMI_ALG_HASH halg, const uint8_t *md, size_t mdlen,
                         const char *auth_file, TPMT_SIGNATURE **sig) {
    TPM2B_AUTH auth;
    int r = cit__key_need_auth(o, auth_file, &auth);
    if (r == 0)
        r = sign_with(ctx, o, halg, md, mdlen, &auth, sig);
    cit_memzero(&auth, sizeof auth);
    return r;
}

_public_ int cit_key_sign(json_t **out, cit_ctx *ctx, const cit_key_sign_options *opt) {
    cit_error_clear();
    cit_object o = {0};
    int r = find_key(ctx, opt->path, &o);
    if (r < 0)
        return r;
    r = cit__require_active(&o);
    if (r < 0)
        goto done;
    if (cit__is_authority(&o)) {
        /* an authority's signature over 32 bytes is an approval: only `policy approve` makes them */
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is an authority: it signs approvals only", o.path);
        cit_error_cause("a signature by an authority over a policy digest unlocks the identities it authorizes");
        cit_error_step("approve a PCR state with `citadel tpm policy approve --authority %s --pcr LIST`", o.path);
        cit_error_context("path", "%s", o.path);
        goto done;
    }
    if (cit__is_audit_signer(&o)) {
        /* a signature by an audit identity over a digest could pass for a checkpoint */
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is an audit identity: it signs audit checkpoints only", o.path);
        cit_error_cause("its signatures vouch for the audit log's state (`audit sign`, `measure sign`)");
        cit_error_step("sign with another identity or key (`identity init NAME --usage code-signing`)");
        cit_error_context("path", "%s", o.path);
        goto done;
    }
    if (cit__is_ca_key(&o)) {
        /* a signature by a CA key over a digest could be a certificate or a CRL */
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is a certificate authority's key: it signs certificates and CRLs only",
                          o.path);
        cit_error_cause("its signatures make certificates that every relying party of the CA trusts");
        cit_error_step("issue with `citadel ca issue`, make CRLs with `citadel ca crl`");
        cit_error_context("path", "%s", o.path);
        goto done;
    }
    if (cit__is_ed25519(&o)) {
        r = cit__ed25519_sign(out, ctx, &o, opt);
        goto done;
    }
    if (strcmp(o.usage, "sign") != 0) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is a storage key and cannot sign", o.path);
        cit_error_context("path", "%s", o.path);
        goto done;
    }
    TPMI_ALG_HASH halg;
    r = sign_hash(opt->digest ? opt->digest : cit__key_default_hash(o.algorithm), &halg);
    if (r < 0)
        goto done;
    cit_sig_encoding enc;
    r = parse_encoding(opt->encoding, &o, &enc);
    if (r < 0)
        goto done;
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    if (opt->data) {
        if ((r = cit__sign_data_check(opt)) < 0)
            goto done;
        if (!opt->input_is_digest)
            r = cit__digest(halg, opt->data, opt->data_len, md, &mdlen);
        else if (opt->data_len != cit__hash_size(halg)) {
            r = cit_error_set(CIT_E_INPUT_INVALID, "the digest is %zu bytes; %s digests are %zu", opt->data_len,
                              cit__hash_name(halg), cit__hash_size(halg));
            cit_error_step("give the digest's algorithm, or sign the data itself");
        } else {
            memcpy(md, opt->data, opt->data_len);
            mdlen = opt->data_len;
        }
    } else if (!opt->input)
        r = cit_error_set(CIT_E_USAGE, "nothing to sign: no input");
    else if (opt->input_is_digest)
        r = read_digest_input(opt->input, cit__hash_size(halg), md, &mdlen);
    else
        r = cit__digest_file(halg, opt->input, SIGN_INPUT_MAX, md, &mdlen);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_ReadPublic (storage primary key)", "TPM2_Load",
                                          "TPM2_Sign", "TPM2_FlushContext", NULL};
        static const char *const ops_p[] = {"TPM2_ReadPublic (persistent key)", "TPM2_Sign", NULL};
        *out = cit__plan("sign a digest with the key", o.persistent_handle ? ops_p : ops);
        goto done;
    }
    if (opt->tls_handshake && !cit__is_tls_identity(&o)) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is not a TLS identity: it cannot sign TLS handshakes", o.path);
        cit_error_step("make one: `citadel tpm identity init NAME --usage tls-server`");
        cit_error_context("path", "%s", o.path);
        goto done;
    }
    /* a handshake is not an artefact someone approves: the gate is for what people sign */
    r = opt->tls_handshake ? 0 : cit__approval_gate(ctx, &o, halg, md, mdlen, opt->approval);
    if (r < 0)
        goto done;
    TPMT_SIGNATURE *sig = NULL;
    r = cit__key_sign_digest(ctx, &o, halg, md, mdlen, opt->auth_file, &sig);
    if (r < 0)
        goto done;
    uint8_t *sb = NULL;
    size_t sl = 0;
    r = cit__sig_encode(&sb, &sl, sig, enc, curve_bytes(o.algorithm));
    Esys_Free(sig);
    if (r < 0)
        goto done;
    if (opt->output) {
        int w = cit_write_file_atomic(opt->output, sb, sl, 0644, 0);
        if (w < 0) {
            /* an approval stays unused when its signature could not be delivered */
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", opt->output, strerror(-w));
            cit_error_context("file", "%s", opt->output);
            free(sb);
            goto done;
        }
    }
    if ((r = cit__approval_consume(ctx, opt->approval)) < 0) {
        if (opt->output) /* used by a racing process: this signature is not handed out */
            unlink(opt->output);
        free(sb);
        goto done;
    }
    json_t *j = json_object();
    json_object_set_new(j, "path", json_string(o.path));
    json_object_set_new(j, "version", json_integer(o.version));
    json_object_set_new(j, "algorithm", json_string(o.algorithm));
    json_object_set_new(j, "scheme", json_string(o.scheme));
    json_object_set_new(j, "digest_algorithm", json_string(cit__hash_name(halg)));
    char *dhex = cit_hex_encode(md, mdlen);
    json_object_set_new(j, "digest", json_string(dhex));
    free(dhex);
    json_object_set_new(j, "encoding", json_string(enc == CIT_SIG_ENC_DER ? "der" : "raw"));
    char *b64 = NULL;
    if (cit__base64_encode(&b64, sb, sl) == 0)
        json_object_set_new(j, "signature_base64", json_string(b64));
    free(b64);
    char *shex = cit_hex_encode(sb, sl);
    json_object_set_new(j, "signature_hex", json_string(shex));
    free(shex);
    if (opt->output)
        json_object_set_new(j, "output", json_string(opt->output));
    free(sb);
    *out = j;
done:
    cit__object_clear(&o);
    return r;
}

_public_ int cit_key_verify(json_t **out, cit_ctx *ctx, const char *path, const char *input,
                            const char *signature, const char *digest, const char *encoding, int version) {
    cit_error_clear();
    cit_object o = {0};
    int r = find_key(ctx, path, &o);
    if (r < 0)
        return r;
    if (cit__is_ed25519(&o)) {
        r = cit__ed25519_verify(out, ctx, &o, input, signature, digest, encoding, version);
        cit__object_clear(&o);
        return r;
    }
    TPMI_ALG_HASH halg;
    cit_sig_encoding enc;
    uint8_t *sig = NULL;
    size_t sl = 0;
    r = sign_hash(digest ? digest : cit__key_default_hash(o.algorithm), &halg);
    if (r == 0)
        r = parse_encoding(encoding, &o, &enc);
    if (r < 0)
        goto done;
    r = cit__read_input(signature, SIGNATURE_FILE_MAX, "the signature", false, &sig, &sl);
    if (r < 0)
        goto done;
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    r = cit__digest_file(halg, input, SIGN_INPUT_MAX, md, &mdlen);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        *out = cit__plan("verify a signature in software (no TPM operations)", NULL);
        goto done;
    }
    int matched = 0;
    for (int ver = o.version; ver >= 1 && !matched; ver--) {
        if (version > 0 && ver != version)
            continue;
        cit_object_version v = {0};
        TPM2B_PUBLIC pub;
        EVP_PKEY *pk = NULL;
        if (cit__version_get(ctx->store, o.id, ver, &v) == 0 && cit__public_unmarshal(&v, &pub) == 0 &&
            cit__pubkey_from_tpm(&pk, &pub) == 0 &&
            cit__sig_verify(pk, scheme_of(&o), halg, md, mdlen, sig, sl, enc) == 0)
            matched = ver;
        EVP_PKEY_free(pk);
        cit__version_clear(&v);
    }
    cit_error_clear();
    if (!matched) {
        r = cit_error_set(CIT_E_SIGNATURE_INVALID, "the signature does not verify with %s", o.path);
        cit_error_cause(version > 0 ? "it was not made by version %d of this key over this input"
                                    : "it was not made by any version of this key over this input",
                        version);
        cit_error_context("path", "%s", o.path);
        cit_error_context("digest_algorithm", "%s", cit__hash_name(halg));
        goto done;
    }
    json_t *j = json_object();
    json_object_set_new(j, "path", json_string(o.path));
    json_object_set_new(j, "valid", json_true());
    json_object_set_new(j, "version", json_integer(matched));
    json_object_set_new(j, "current_version", json_boolean(matched == o.version));
    json_object_set_new(j, "digest_algorithm", json_string(cit__hash_name(halg)));
    *out = j;
done:
    free(sig);
    cit__object_clear(&o);
    return r;
}

/* Depth-first list of o's dependents (children first). */
int cit__collect_dependents(cit_store *s, int64_t id, json_t *acc, int depth) {
    if (depth > LOAD_CHAIN_MAX)
        return 0;
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, "SELECT id, path FROM objects WHERE parent_id = ? ORDER BY path");
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t cid = sqlite3_column_int64(st, 0);
        json_t *e = json_pack("{s:I,s:s}", "id", (json_int_t)cid, "path", (const char *)sqlite3_column_text(st, 1));
        r = cit__collect_dependents(s, cid, acc, depth + 1);
        json_array_append_new(acc, e);
        if (r < 0)
            break;
    }
    sqlite3_finalize(st);
    return r;
}

_public_ int cit_key_delete(json_t **out, cit_ctx *ctx, const char *path, bool force) {
    return cit_object_delete(out, ctx, path, "key", force);
}

_public_ int cit_object_delete(json_t **out, cit_ctx *ctx, const char *path, const char *kind, bool force) {
    cit_error_clear();
    cit_object o = {0};
    int r = cit__ctx_find(ctx, path, &o);
    if (r == 0 && kind)
        r = cit__require_kind(&o, kind);
    if (r < 0) {
        cit__object_clear(&o);
        return r;
    }
    cit_store *s = ctx->store;
    json_t *deps = json_array();
    r = cit__collect_dependents(s, o.id, deps, 0);
    if (r == 0 && !force && (r = cit__authority_guard(ctx, &o, "deleting it")) < 0)
        cit_error_step(cit__is_ca_key(&o) || strncmp(o.path, "ca/", 3) == 0
                           ? "or repeat with --force: the CA can then issue nothing more"
                           : "or repeat with --force: approvals already made keep working, no new ones can be made");
    if (r < 0)
        goto done;
    if (json_array_size(deps) && !force) {
        r = cit_error_set(CIT_E_HAS_DEPENDENTS, "%s has %zu dependent object(s)", path, json_array_size(deps));
        size_t i;
        json_t *d;
        json_array_foreach(deps, i, d) {
            if (i >= 8) {
                cit_error_cause("... and %zu more", json_array_size(deps) - 8);
                break;
            }
            cit_error_cause("%s depends on %s", json_string_value(json_object_get(d, "path")), path);
        }
        cit_error_context("path", "%s", path);
        goto done;
    }
    /* Everything to delete, dependents first. */
    json_array_append_new(deps, json_pack("{s:I,s:s}", "id", (json_int_t)o.id, "path", o.path));
    if (ctx->plan) {
        bool any_persistent = false;
        size_t i;
        json_t *d;
        json_array_foreach(deps, i, d) {
            cit_object x = {0};
            if (cit__object_get(s, json_integer_value(json_object_get(d, "id")), &x) == 0 && x.persistent_handle)
                any_persistent = true;
            cit__object_clear(&x);
        }
        static const char *const ops[] = {"TPM2_EvictControl (remove persistent handle)", NULL};
        *out = cit__plan("delete the object(s) from the store", any_persistent ? ops : NULL);
        json_t *paths = json_array();
        json_array_foreach(deps, i, d) json_array_append(paths, json_object_get(d, "path"));
        json_object_set_new(*out, "would_delete", paths);
        goto done;
    }
    /* Persistent handles to evict, and the TPM opened before the store is locked for writing:
     * every command takes the TPM lock first, then the store's. */
    struct {
        uint32_t handle;
        int64_t id, intent;
        uint8_t name[sizeof(TPMU_NAME) + 2];
        size_t name_len;
        char path[256];
    } handles[64];
    size_t nh = 0;
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d) {
        cit_object x = {0};
        if (cit__object_get(s, json_integer_value(json_object_get(d, "id")), &x) == 0 && nh < ELEMENTSOF(handles)) {
            uint32_t h = x.persistent_handle ? x.persistent_handle : cit__nv_handle_of(&x);
            if (h) {
                memset(&handles[nh], 0, sizeof handles[nh]);
                handles[nh].handle = h;
                handles[nh].id = x.id;
                snprintf(handles[nh].path, sizeof handles[nh].path, "%s", x.path);
                if (x.persistent_handle)
                    cit__version_name(s, x.id, x.version, handles[nh].name, sizeof handles[nh].name,
                                      &handles[nh].name_len);
                nh++;
            }
        }
        cit__object_clear(&x);
    }
    cit_error_clear();
    cit_tpm *t = NULL;
    if (nh && (r = cit__ctx_tpm(ctx, &t)) < 0)
        goto done;
    cit__key_cache_drop(ctx);
    r = cit__store_begin(s);
    if (r < 0)
        goto done;
    json_t *deleted = json_array();
    int64_t aks[64];
    size_t naks = 0;
    json_array_foreach(deps, i, d) {
        cit_object x = {0};
        r = cit__object_get(s, json_integer_value(json_object_get(d, "id")), &x);
        if (r == 0 && strcmp(x.kind, "ak") == 0 && naks < ELEMENTSOF(aks))
            aks[naks++] = x.id;
        if (r == 0)
            r = cit__object_delete(s, x.id);
        if (r == 0) {
            json_t *det = json_pack("{s:s,s:b}", "kind", x.kind, "forced", force);
            r = cit__store_event(s, "object.delete", x.path, x.id, "ok", det);
            json_decref(det);
        }
        if (r == 0)
            json_array_append_new(deleted, json_string(x.path));
        cit__object_clear(&x);
        if (r < 0)
            break;
    }
    /* The intents commit with the deletion: until each handle is gone from the TPM (durably),
     * the journal proves to `repair` that it was ours. */
    for (size_t k = 0; k < nh && r == 0; k++)
        r = cit__intent_add(s, "object.delete", handles[k].path, handles[k].id, handles[k].handle, handles[k].name,
                            handles[k].name_len, NULL, &handles[k].intent);
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        json_decref(deleted);
        goto done;
    }
    if (nh)
        cit__fault_point("object.delete.committed");
    /* The contexts kept of deleted AKs (vTPM, cit__tpm_ctx_keep) go with them. Best effort: an
     * entry left behind is never used (it matches no AK's name) and ages out. */
    if (naks && ctx->backend == CIT_BACKEND_VTPM && cit__ctx_tpm(ctx, &t) == 0)
        for (size_t k = 0; k < naks; k++)
            cit__tpm_ctx_forget(t, aks[k], -1);
    cit_error_clear();
    /* The store no longer names them: evict. A handle that cannot be evicted now keeps its
     * intent, which `repair` resolves; never a store entry pointing at nothing. */
    json_t *warnings = json_array();
    bool removed[64] = {false};
    for (size_t k = 0; k < nh; k++) {
        uint32_t h = handles[k].handle;
        if ((h >> 24 == TPM2_HT_NV_INDEX ? cit__nv_undefine(ctx, h) : cit__evict_handle(ctx, h)) < 0) {
            json_array_append_new(warnings, json_sprintf("TPM handle 0x%08x was not removed: %s; run `citadel tpm "
                                                         "repair plan`",
                                                         h, cit_error_last()->message));
            cit_error_clear();
        } else
            removed[k] = true;
    }
    if (nh && cit__ctx_tpm_sync(ctx) < 0) {
        json_array_append_new(warnings, json_sprintf("the TPM state was not saved: %s", cit_error_last()->message));
        cit_error_clear();
    } else
        for (size_t k = 0; k < nh; k++)
            if (removed[k] && cit__intent_clear(s, handles[k].intent) < 0)
                cit_error_clear(); /* a leftover intent of a finished step: repair drops it */
    r = 0;
    *out = json_pack("{s:s,s:o}", "path", path, "deleted", deleted);
    if (json_array_size(warnings))
        json_object_set_new(*out, "warnings", warnings);
    else
        json_decref(warnings);
    goto done;
done:
    json_decref(deps);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_key_export_pub(json_t **out, cit_ctx *ctx, const char *path, const char *format,
                                const char *output, int version) {
    cit_error_clear();
    cit_object o = {0};
    int r = find_key(ctx, path, &o);
    if (r < 0)
        return r;
    const char *fmt = format ? format : "pem";
    bool is_sign = strcmp(o.usage, "sign") == 0;
    cit_object_version v = {0};
    EVP_PKEY *pk = NULL;
    char *text = NULL;
    json_t *jwk = NULL;
    if (strcmp(fmt, "pem") != 0 && strcmp(fmt, "openssl") != 0 && strcmp(fmt, "cosign") != 0 &&
        strcmp(fmt, "ssh") != 0 && strcmp(fmt, "jwk") != 0) {
        r = cit_error_set(CIT_E_USAGE, "unknown export format: %s", fmt);
        cit_error_cause("--export-for takes openssl (PEM), cosign, ssh or jwk");
        goto done;
    }
    if (!is_sign && strcmp(fmt, "pem") != 0 && strcmp(fmt, "openssl") != 0) {
        r = cit_error_set(CIT_E_EXPORT_UNSUPPORTED, "%s cannot be exported for %s", o.path, fmt);
        cit_error_cause("%s is a storage key (restricted decryption): it cannot sign, so %s "
                        "cannot use it",
                        o.path, fmt);
        cit_error_context("path", "%s", o.path);
        goto done;
    }
    if (strcmp(fmt, "cosign") == 0 && strcmp(o.scheme, "rsapss") == 0) {
        r = cit_error_set(CIT_E_EXPORT_UNSUPPORTED, "%s cannot be exported for cosign", o.path);
        cit_error_cause("cosign verifies RSA signatures as PKCS#1 v1.5; this key signs with RSA-PSS");
        goto done;
    }
    if (strcmp(fmt, "ssh") == 0 && strcmp(o.scheme, "rsapss") == 0) {
        r = cit_error_set(CIT_E_EXPORT_UNSUPPORTED, "%s cannot be exported for ssh", o.path);
        cit_error_cause("SSH RSA signatures are PKCS#1 v1.5 (rsa-sha2-256/512); this key signs with RSA-PSS");
        goto done;
    }
    r = cit__version_get(ctx->store, o.id, version > 0 ? version : o.version, &v);
    if (r == 0)
        r = cit__key_version_pubkey(&o, &v, &pk);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        *out = cit__plan("export the public key (reads the store only)", NULL);
        goto done;
    }
    if (strcmp(fmt, "ssh") == 0)
        r = cit__pubkey_openssh(&text, pk, o.path);
    else if (strcmp(fmt, "jwk") == 0) {
        r = cit__pubkey_jwk(&jwk, pk);
        if (r == 0) {
            /* JOSE names the hash too: the key's default digest (what `key sign` uses) */
            const char *h = cit__key_default_hash(o.algorithm);
            char alg[8];
            snprintf(alg, sizeof alg, "%s%s", strncmp(o.algorithm, "ecc", 3) == 0 ? "ES"
                                              : strcmp(o.scheme, "rsapss") == 0  ? "PS"
                                                                                 : "RS",
                     h + 3);
            if (cit__is_ed25519(&o))
                snprintf(alg, sizeof alg, "EdDSA"); /* RFC 8037 */
            json_object_set_new(jwk, "alg", json_string(alg));
            json_object_set_new(jwk, "use", json_string("sig"));
            text = json_dumps(jwk, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            size_t tl = strlen(text);
            char *t2 = realloc(text, tl + 2);
            if (t2) {
                t2[tl] = '\n';
                t2[tl + 1] = 0;
                text = t2;
            }
        }
    } else
        r = cit__pubkey_pem(&text, pk);
    if (r < 0)
        goto done;
    if (output) {
        int w = cit_write_file_atomic(output, (const uint8_t *)text, strlen(text), 0644, 0);
        if (w < 0) {
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-w));
            cit_error_context("file", "%s", output);
            goto done;
        }
    }
    json_t *j = json_object();
    json_object_set_new(j, "path", json_string(o.path));
    json_object_set_new(j, "version", json_integer(v.version));
    json_object_set_new(j, "format", json_string(fmt));
    if (jwk)
        json_object_set(j, "jwk", jwk);
    else
        json_object_set_new(j, "public_key", json_string(text));
    if (output) {
        json_object_set_new(j, "output", json_string(output));
    } else
        json_object_set_new(j, "_text", json_string(text));
    *out = j;
done:
    json_decref(jwk);
    free(text);
    EVP_PKEY_free(pk);
    cit__version_clear(&v);
    cit__object_clear(&o);
    return r;
}

/* Signs a zero digest with the current version and auth: the TPM says whether auth is the
 * key's password (a wrong one counts towards lockout, as any wrong password does). */
static int prove_auth(cit_ctx *ctx, const cit_object *o, const TPM2B_AUTH *auth) {
    TPMI_ALG_HASH halg;
    cit__hash_from_name(cit__key_default_hash(o->algorithm), &halg);
    uint8_t zero[64] = {0};
    TPMT_SIGNATURE *sig = NULL;
    int r = sign_with(ctx, o, halg, zero, cit__hash_size(halg), auth, &sig);
    Esys_Free(sig);
    cit__key_cache_drop(ctx);
    if (r < 0 && (cit_error_last()->code == CIT_E_TPM_COMMAND || cit_error_last()->code == CIT_E_AUTH_FAIL))
        cit_error_cause("the password for %s was not accepted", o->path);
    return r;
}

_public_ int cit_key_rotate(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file) {
    cit_error_clear();
    cit_object o = {0};
    int r = find_key(ctx, path, &o);
    if (r < 0)
        return r;
    r = cit__require_active(&o);
    if (r == 0)
        r = cit__authority_guard(ctx, &o, "a new key");
    if (r < 0)
        goto done;
    if (cit__is_ed25519(&o)) {
        r = cit__ed25519_rotate(out, ctx, &o, auth_file);
        goto done;
    }
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_ReadPublic (storage primary key)",
                                          "TPM2_Create (new version)", NULL};
        static const char *const ops_p[] = {"TPM2_ReadPublic (storage primary key)",
                                            "TPM2_Create (new version)",
                                            "TPM2_EvictControl (remove old persistent object)",
                                            "TPM2_Load", "TPM2_EvictControl (persist new version)",
                                            "TPM2_FlushContext", NULL};
        *out = cit__plan("rotate the key: a new version signs from now on", o.persistent_handle ? ops_p : ops);
        goto done;
    }
    cit_store *s = ctx->store;
    cit__key_cache_drop(ctx);
    cit_object_version v = {.version = o.version + 1};
    TPM2B_AUTH auth;
    r = cit__key_need_auth(&o, auth_file, &auth);
    if (r < 0)
        goto done_v;
    if (auth.size) {
        /* the new version takes this password: prove it is the key's, with the TPM */
        r = prove_auth(ctx, &o, &auth);
        if (r < 0) {
            cit_memzero(&auth, sizeof auth);
            goto done_v;
        }
    }
    r = tpm_create_key(ctx, &o, &auth, &v);
    cit_memzero(&auth, sizeof auth);
    if (r < 0)
        goto done_v;
    int old = o.version;
    uint32_t handle = o.persistent_handle;
    int64_t intent = 0;
    if (handle) { /* the handle changes hands before the store commits: journal it first */
        json_t *d = json_pack("{s:i,s:i}", "from_version", old, "to_version", v.version);
        r = cit__intent_add(s, "key.rotate", o.path, o.id, handle, v.name, v.name_len, d, &intent);
        json_decref(d);
        if (r < 0)
            goto done_v;
    }
    r = cit__store_begin(s);
    if (r < 0) {
        cit__intent_clear(s, intent);
        goto done_v;
    }
    r = cit__version_insert(s, o.id, &v);
    bool swapped = false;
    o.version = v.version;
    if (r == 0 && handle) {
        /* the new version takes the same handle (tools may know it by number); if anything
         * below fails the old version is put back there */
        r = cit__evict_handle(ctx, handle);
        if (r == 0) {
            swapped = true;
            r = persist(ctx, &o, v.version, handle, &handle);
        }
        if (r == 0)
            r = cit__ctx_tpm_sync(ctx);
        if (r == 0)
            cit__fault_point("key.rotate.persisted");
    }
    if (r == 0)
        r = cit__object_update(s, &o);
    if (r == 0) {
        json_t *d = json_pack("{s:i,s:i}", "from_version", old, "to_version", v.version);
        r = cit__store_event(s, "key.rotate", o.path, o.id, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__intent_clear(s, intent);
    if (r == 0)
        r = cit__store_commit(s);
    json_t *warning = NULL;
    if (r < 0) {
        cit__store_rollback(s);
        if (swapped) { /* put the old version back at its handle, reporting the first failure */
            cit_error saved = *cit_error_last();
            cit_object prev = o;
            prev.version = old;
            if (cit__evict_handle(ctx, handle) < 0 || persist(ctx, &prev, old, handle, &handle) < 0 || cit__ctx_tpm_sync(ctx) < 0) {
                cit_error_restore(&saved);
                cit_error_cause("the previous version could not be put back at 0x%08x: run `citadel tpm repair plan`",
                                handle);
                goto done_v; /* the intent stays for repair */
            }
            cit_error_restore(&saved);
        }
        cit_error saved = *cit_error_last();
        cit__intent_clear(s, intent);
        cit_error_restore(&saved);
        goto done_v;
    }
    v.created_at = o.updated_at;
    json_t *j = json_pack("{s:s,s:i,s:i}", "path", o.path, "previous_version", old, "version", v.version);
    json_t *vj = cit__key_version_json(&o, &v, true);
    json_object_del(vj, "version");
    json_object_update(j, vj);
    json_decref(vj);
    if (warning)
        json_object_set_new(j, "warning", warning);
    *out = j;
done_v:
    cit__version_clear(&v);
done:
    cit__object_clear(&o);
    return r;
}
