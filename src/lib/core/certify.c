/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TPM2_Certify (docs/attestation.md, "Certify"): an AK states that a key with a given TPM name
 * is loaded in its TPM, and a verifier checks that statement in software. Enrollment uses it
 * to bind a DevID key to the AK that the credential activation bound to the EK.
 *
 * Certify's object handle needs the ADMIN role: our keys never set adminWithPolicy, so an
 * empty password session satisfies it for every key without a password (policy-bound keys
 * included, their policy guards only the USER role). Keys with a password are refused
 * (CIT_E_AUTH_FAIL), as are Ed25519 keys (the TPM object is the sealed seed, not the key) and
 * objects that are not keys or AKs (CIT_E_OBJECT_KIND).
 */
#include <openssl/evp.h>
#include <stdarg.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/attest.h"
#include "core/ed25519.h"
#include "core/keys.h"
#include "crypto/crypto.h"
#include "ctx.h"

#define TPM_GENERATED 0xff544347u
#define QUALIFYING_MAX 64
/* TPMA_OBJECT bits 0, 3, 8, 9, 12-15 and 20-31 are reserved (bit 19 is x509sign) */
#define TPMA_RESERVED 0xfff0f309u

/* ---- the public area of a stored object ---- */

/* The current version's public area of a key or AK (not Ed25519), and its TPM name. */
static int object_public(cit_ctx *ctx, const char *path, cit_object *o, TPM2B_PUBLIC *pub, uint8_t *name,
                         size_t *name_len) {
    int r = cit__ctx_find(ctx, path, o);
    if (r < 0)
        return r;
    if (strcmp(o->kind, "key") != 0 && strcmp(o->kind, "ak") != 0) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is a %s, not a key, identity or AK", path, o->kind);
        cit_error_cause("only signing keys held by the TPM have a public area to certify");
    } else if (cit__is_ed25519(o)) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is an Ed25519 key: the TPM holds its sealed seed, not the key", path);
        cit_error_cause("TPM2_Certify would certify the sealed object, which says nothing about the Ed25519 key");
        cit_error_step("use an ecc-p256/ecc-p384/rsa key or identity");
    }
    cit_object_version v = {0};
    if (r == 0)
        r = cit__version_get(ctx->store, o->id, o->version, &v);
    if (r == 0)
        r = cit__public_unmarshal(&v, pub);
    if (r == 0)
        r = cit__name_from_public(pub, name, name_len);
    cit__version_clear(&v);
    if (r < 0) {
        cit_error_context("path", "%s", path);
        cit__object_clear(o);
    }
    return r;
}

_public_ int cit_key_public_blob(cit_ctx *ctx, const char *path, uint8_t **blob, size_t *len, char **name_hex) {
    cit_error_clear();
    cit_object o = {0};
    TPM2B_PUBLIC pub;
    uint8_t nb[sizeof(TPMU_NAME) + 2];
    size_t nl = 0;
    int r = object_public(ctx, path, &o, &pub, nb, &nl);
    if (r < 0)
        return r;
    cit__object_clear(&o);
    uint8_t *b = malloc(sizeof(TPM2B_PUBLIC));
    size_t off = 0;
    char *h = cit_hex_encode(nb, nl);
    if (!b || !h || Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, b, sizeof(TPM2B_PUBLIC), &off) != TSS2_RC_SUCCESS) {
        free(b);
        free(h);
        return cit_error_set(CIT_E_INTERNAL, "cannot marshal the public area of %s", path);
    }
    *blob = b;
    *len = off;
    if (name_hex)
        *name_hex = h;
    else
        free(h);
    return 0;
}

/* ---- TPM2_Certify ---- */

/* Loads a key or AK for certify; *is_ak says how to release it. */
static int load_for_certify(cit_ctx *ctx, const cit_object *o, ESYS_TR *h, bool *persistent) {
    *persistent = false;
    if (strcmp(o->kind, "ak") == 0)
        return cit__ak_load_transient(ctx, o, false, h);
    return cit__key_load(ctx, o, o->version, h, persistent);
}

static json_t *b64(const uint8_t *b, size_t n) {
    char *s = NULL;
    if (cit__base64_encode(&s, b, n) < 0)
        return NULL;
    json_t *j = json_string(s);
    free(s);
    return j;
}

_public_ int cit_attest_certify(json_t **out, cit_ctx *ctx, const char *ak, const char *key_path,
                                const uint8_t *qualifying, size_t qlen) {
    cit_error_clear();
    if (!ak || !key_path)
        return cit_error_set(CIT_E_USAGE, "certify needs an AK and the key to certify");
    if (qlen > QUALIFYING_MAX) {
        cit_error_set(CIT_E_USAGE, "the qualifying data is %zu bytes; TPM2_Certify takes at most %d", qlen,
                      QUALIFYING_MAX);
        cit_error_cause("it goes into TPMS_ATTEST.extraData (a verifier's nonce: 32 bytes is usual)");
        return CIT_E_USAGE;
    }
    cit_object ako = {0}, ko = {0};
    TPM2B_PUBLIC akpub, kpub;
    uint8_t akname[sizeof(TPMU_NAME) + 2], kname[sizeof(TPMU_NAME) + 2];
    size_t akl = 0, kl = 0;
    ESYS_TR akh = ESYS_TR_NONE, kh = ESYS_TR_NONE;
    bool kpers = false;
    TPM2B_ATTEST *info = NULL;
    TPMT_SIGNATURE *sig = NULL;
    int r = object_public(ctx, ak, &ako, &akpub, akname, &akl);
    if (r == 0 && strcmp(ako.kind, "ak") != 0) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is not an attestation key", ak);
        cit_error_cause("it is a %s; certifications are signed by an AK (`citadel tpm attest ak-create`)", ako.kind);
    }
    if (r == 0)
        r = cit__require_active(&ako);
    if (r == 0)
        r = object_public(ctx, key_path, &ko, &kpub, kname, &kl);
    if (r == 0)
        r = cit__require_active(&ko);
    if (r == 0) {
        TPM2B_AUTH auth;
        r = cit__key_need_auth(&ko, NULL, &auth);
        cit_memzero(&auth, sizeof auth);
        if (r < 0) {
            cit_error_set(CIT_E_AUTH_FAIL, "%s has a password: certify takes keys without one", key_path);
            cit_error_cause("TPM2_Certify needs the key's authorization; citadel certifies keys with an empty "
                            "password (with or without a PCR/authority policy) only");
            cit_error_step("certify a key or identity created without --auth-file");
        }
    }
    if (r < 0)
        goto done;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_CreatePrimary (the EK)", "TPM2_PolicySecret (EK policy)",
                                          "TPM2_Load (the AK)", "TPM2_Load (the key, under its parent)",
                                          "TPM2_Certify", "TPM2_FlushContext", NULL};
        *out = cit__plan("certify with the AK that the key is loaded in this TPM", ops);
        goto done;
    }
    cit_tpm *t;
    if ((r = cit__ctx_tpm(ctx, &t)) < 0)
        goto done;
    /* the AK first: deriving its EK drops the context's cached key, which could be the key */
    if ((r = load_for_certify(ctx, &ako, &akh, &kpers)) < 0)
        goto done;
    if ((r = load_for_certify(ctx, &ko, &kh, &kpers)) < 0)
        goto done;
    TPM2B_DATA q = {.size = (UINT16)qlen};
    if (qlen)
        memcpy(q.buffer, qualifying, qlen);
    TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL}; /* the AK's own */
    TPM2B_AUTH empty = {0};
    Esys_TR_SetAuth(t->esys, kh, &empty);
    TSS2_RC rc = Esys_Certify(t->esys, kh, akh, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE, &q, &scheme, &info,
                              &sig);
    if (rc != TSS2_RC_SUCCESS) {
        r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "TPM2_Certify of %s with %s failed", key_path, ak);
        goto done;
    }
    uint8_t sb[sizeof(TPMT_SIGNATURE)], pb[sizeof(TPM2B_PUBLIC)], apb[sizeof(TPM2B_PUBLIC)];
    size_t sl = 0, pl = 0, apl = 0;
    if (Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sb, sizeof sb, &sl) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PUBLIC_Marshal(&kpub, pb, sizeof pb, &pl) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_PUBLIC_Marshal(&akpub, apb, sizeof apb, &apl) != TSS2_RC_SUCCESS) {
        r = cit_error_set(CIT_E_INTERNAL, "cannot marshal the certification");
        goto done;
    }
    char *kn = cit_hex_encode(kname, kl), *an = cit_hex_encode(akname, akl), *qh = cit_hex_encode(qualifying, qlen);
    json_t *j = json_pack("{s:i,s:o*,s:o*,s:o*,s:s?,s:s,s:s?,s:o*,s:s?,s:s}", "version", 1, "attest",
                          b64(info->attestationData, info->size), "signature", b64(sb, sl), "key_public", b64(pb, pl),
                          "key_name", kn, "key", ko.path, "ak_name", an, "ak_public", b64(apb, apl), "qualifying",
                          qh ? qh : "", "ak", ako.path);
    free(kn);
    free(an);
    free(qh);
    if (!j || !json_object_get(j, "attest") || !json_object_get(j, "signature") || !json_object_get(j, "key_name")) {
        json_decref(j);
        r = cit_error_set(CIT_E_INTERNAL, "cannot build the certification");
        goto done;
    }
    *out = j;
done:
    if (kh != ESYS_TR_NONE) {
        if (strcmp(ko.kind, "ak") == 0)
            cit__tpm_flush(ctx->tpm, &kh);
        else
            cit__key_unload(ctx, &kh, kpers);
    }
    if (akh != ESYS_TR_NONE)
        cit__tpm_flush(ctx->tpm, &akh);
    Esys_Free(info);
    Esys_Free(sig);
    cit__object_clear(&ako);
    cit__object_clear(&ko);
    return r;
}

/* ---- verification in software ---- */

typedef struct {
    json_t *checks;
    int first_code;
} verdicts;

static void verdict(verdicts *v, const char *check, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void verdict(verdicts *v, const char *check, int code, const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:s,s:s,s:s}", "check", check, "status", code ? "fail" : "pass", "detail", detail);
    if (code) {
        char c[16];
        cit_code_format(c, sizeof c, code);
        json_object_set_new(j, "code", json_string(c));
        if (!v->first_code)
            v->first_code = code;
    }
    json_array_append_new(v->checks, j);
}

/* A TPM2B_PUBLIC that fills the buffer exactly, its size field included (Tss2_MU accepts a
 * size field of 0 before a public area: one TPM2B_PUBLIC, one encoding). */
static bool parse_public(const uint8_t *b, size_t len, TPM2B_PUBLIC *pub) {
    size_t off = 0;
    memset(pub, 0, sizeof *pub);
    return b && len > 2 && (size_t)((b[0] << 8) | b[1]) == len - 2 &&
           Tss2_MU_TPM2B_PUBLIC_Unmarshal(b, len, &off, pub) == TSS2_RC_SUCCESS && off == len;
}

/* The attributes missing (or present and forbidden) for a key bound to its TPM; "" when none. */
static void bound_attributes(TPMA_OBJECT a, bool restricted, char *why, size_t wl) {
    size_t off = 0;
    why[0] = 0;
#define NEED(bit, label)                                                                                              \
    if (!(a & (bit)) && off < wl)                                                                                     \
        off += (size_t)snprintf(why + off, wl - off, "%s" label, off ? ", " : "");
#define FORBID(bit, label)                                                                                            \
    if ((a & (bit)) && off < wl)                                                                                      \
        off += (size_t)snprintf(why + off, wl - off, "%s" label, off ? ", " : "");
    if ((a & TPMA_RESERVED) && off < wl) /* a TPM makes no object with these */
        off += (size_t)snprintf(why + off, wl - off, "%sreserved attribute bits 0x%08x set", off ? ", " : "",
                                (unsigned)(a & TPMA_RESERVED));
    NEED(TPMA_OBJECT_FIXEDTPM, "not fixedTPM")
    NEED(TPMA_OBJECT_FIXEDPARENT, "not fixedParent")
    NEED(TPMA_OBJECT_SENSITIVEDATAORIGIN, "not sensitiveDataOrigin")
    NEED(TPMA_OBJECT_SIGN_ENCRYPT, "not a signing key")
    FORBID(TPMA_OBJECT_DECRYPT, "a decryption key")
    if (restricted)
        NEED(TPMA_OBJECT_RESTRICTED, "not restricted")
#undef NEED
#undef FORBID
}

static json_t *attributes_json(TPMA_OBJECT a) {
    return json_pack("{s:b,s:b,s:b,s:b,s:b,s:b}", "restricted", (a & TPMA_OBJECT_RESTRICTED) != 0, "sign",
                     (a & TPMA_OBJECT_SIGN_ENCRYPT) != 0, "decrypt", (a & TPMA_OBJECT_DECRYPT) != 0, "fixed_tpm",
                     (a & TPMA_OBJECT_FIXEDTPM) != 0, "fixed_parent", (a & TPMA_OBJECT_FIXEDPARENT) != 0,
                     "sensitive_data_origin", (a & TPMA_OBJECT_SENSITIVEDATAORIGIN) != 0);
}

static bool strong_hash(TPMI_ALG_HASH h) { return h == TPM2_ALG_SHA256 || h == TPM2_ALG_SHA384 || h == TPM2_ALG_SHA512; }

/* The AK's signing scheme (in its public area): -1 when it is not one we verify. */
static int ak_scheme(const TPM2B_PUBLIC *pub, TPMT_SIG_SCHEME *out) {
    const TPMT_PUBLIC *p = &pub->publicArea;
    if (p->type == TPM2_ALG_ECC) {
        out->scheme = p->parameters.eccDetail.scheme.scheme;
        out->details.any.hashAlg = p->parameters.eccDetail.scheme.details.anySig.hashAlg;
        return out->scheme == TPM2_ALG_ECDSA && strong_hash(out->details.any.hashAlg) ? 0 : -1;
    }
    if (p->type == TPM2_ALG_RSA) {
        out->scheme = p->parameters.rsaDetail.scheme.scheme;
        out->details.any.hashAlg = p->parameters.rsaDetail.scheme.details.anySig.hashAlg;
        return (out->scheme == TPM2_ALG_RSASSA || out->scheme == TPM2_ALG_RSAPSS) &&
                       strong_hash(out->details.any.hashAlg)
                   ? 0
                   : -1;
    }
    out->scheme = p->type;
    return -1;
}

/* The AK checks on a parsed public area: 0 or CIT_E_AK_PUBLIC_INVALID with why. */
static int ak_public_ok(const uint8_t *b, size_t len, TPM2B_PUBLIC *pub, EVP_PKEY **pk, char *why, size_t wl) {
    if (!parse_public(b, len, pub)) {
        snprintf(why, wl, "the AK public is not a TPM2B_PUBLIC (%zu bytes)", len);
        return CIT_E_AK_PUBLIC_INVALID;
    }
    bound_attributes(pub->publicArea.objectAttributes, true, why, wl);
    if (why[0])
        return CIT_E_AK_PUBLIC_INVALID;
    if (!strong_hash(pub->publicArea.nameAlg)) {
        snprintf(why, wl, "the AK's name algorithm 0x%04x is not SHA-256 or stronger", pub->publicArea.nameAlg);
        return CIT_E_AK_PUBLIC_INVALID;
    }
    /* Credential activation is what binds the AK to the EK: an AK whose admin role goes through a
     * policy (TPM2_ActivateCredential is an admin command) could name a policy its owner can
     * satisfy without the key being in this TPM. TPMs refuse that for keys loaded from a public
     * part alone, but the check costs nothing: AKs made by citadel, tpm2-tools and
     * go-attestation have neither. */
    if ((pub->publicArea.objectAttributes & TPMA_OBJECT_ADMINWITHPOLICY) || pub->publicArea.authPolicy.size) {
        snprintf(why, wl, "the AK has %s: its credential activation could be authorised by a policy",
                 pub->publicArea.authPolicy.size ? "an authPolicy" : "adminWithPolicy");
        return CIT_E_AK_PUBLIC_INVALID;
    }
    /* a restricted key signs with its own scheme only: one the verifier accepts, fixed here */
    TPMT_SIG_SCHEME sch = {0};
    if (ak_scheme(pub, &sch) < 0) {
        snprintf(why, wl, "the AK's signing scheme (0x%04x with hash 0x%04x) is not ECDSA, RSASSA or RSAPSS with "
                          "SHA-256 or stronger",
                 sch.scheme, sch.details.any.hashAlg);
        return CIT_E_AK_PUBLIC_INVALID;
    }
    if (cit__pubkey_from_tpm(pk, pub) < 0) {
        snprintf(why, wl, "the AK is not an RSA or NIST ECC key: %s", cit_error_last()->message);
        cit_error_clear();
        return CIT_E_AK_PUBLIC_INVALID;
    }
    return 0;
}

_public_ int cit_attest_ak_public_check(json_t **out, const uint8_t *ak_public, size_t len, char **spki_pem,
                                        char **name_hex) {
    cit_error_clear();
    TPM2B_PUBLIC pub;
    EVP_PKEY *pk = NULL;
    char why[256] = "", *pem = NULL, *nh = NULL;
    uint8_t nb[sizeof(TPMU_NAME) + 2];
    size_t nl = 0;
    int code = ak_public_ok(ak_public, len, &pub, &pk, why, sizeof why);
    json_t *j = json_object();
    if (code == 0 && (cit__pubkey_pem(&pem, pk) < 0 || cit__name_from_public(&pub, nb, &nl) < 0 ||
                      !(nh = cit_hex_encode(nb, nl)))) {
        code = CIT_E_AK_PUBLIC_INVALID;
        snprintf(why, sizeof why, "cannot encode the AK public key: %s", cit_error_last()->message);
    }
    EVP_PKEY_free(pk);
    if (code) {
        free(pem);
        free(nh);
        if (len && parse_public(ak_public, len, &pub))
            json_object_set_new(j, "attributes", attributes_json(pub.publicArea.objectAttributes));
        json_object_set_new(j, "valid", json_false());
        json_object_set_new(j, "detail", json_string(why));
        *out = j;
        cit_error_set(CIT_E_AK_PUBLIC_INVALID, "the AK public area is refused: %s", why);
        return CIT_E_AK_PUBLIC_INVALID;
    }
    json_object_set_new(j, "valid", json_true());
    json_object_set_new(j, "ak_name", json_string(nh));
    json_object_set_new(j, "ak_public_pem", json_string(pem));
    json_object_set_new(j, "attributes", attributes_json(pub.publicArea.objectAttributes));
    *out = j;
    if (spki_pem)
        *spki_pem = pem;
    else
        free(pem);
    if (name_hex)
        *name_hex = nh;
    else
        free(nh);
    return 0;
}

/* The signature check of a TPMS_ATTEST with the AK: 0 or a reason in why. */
static bool signature_ok(EVP_PKEY *pk, const TPM2B_PUBLIC *akpub, const uint8_t *attest, size_t al,
                         const TPMT_SIGNATURE *sig, char *why, size_t wl) {
    bool ecc = akpub->publicArea.type == TPM2_ALG_ECC;
    TPMI_ALG_HASH h = sig->signature.any.hashAlg;
    TPMT_SIG_SCHEME aks = {0};
    ak_scheme(akpub, &aks);
    if (sig->sigAlg != aks.scheme || h != aks.details.any.hashAlg) {
        snprintf(why, wl, "the signature (scheme 0x%04x, hash 0x%04x) is not in the AK's scheme (0x%04x, hash 0x%04x)",
                 sig->sigAlg, h, aks.scheme, aks.details.any.hashAlg);
        return false;
    }
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t ml = 0, dl = 0;
    uint8_t *der = NULL;
    cit_sig_scheme sch = ecc ? CIT_SCHEME_ECDSA : sig->sigAlg == TPM2_ALG_RSAPSS ? CIT_SCHEME_RSAPSS : CIT_SCHEME_RSASSA;
    size_t coord = ecc ? (size_t)(EVP_PKEY_get_bits(pk) + 7) / 8 : 0;
    int r = cit__digest(h, attest, al, md, &ml);
    if (r == 0)
        r = cit__sig_encode(&der, &dl, sig, CIT_SIG_ENC_DER, coord);
    if (r == 0)
        r = cit__sig_verify(pk, sch, h, md, ml, der, dl, CIT_SIG_ENC_DER);
    free(der);
    cit_error_clear();
    if (r < 0)
        snprintf(why, wl, "the signature does not verify with the AK's public key (another AK, or modified bytes)");
    return r == 0;
}

_public_ int cit_attest_certify_verify(json_t **out, const uint8_t *ak_public, size_t ak_len, const uint8_t *attest,
                                       size_t attest_len, const uint8_t *sig, size_t sig_len,
                                       const uint8_t *key_public, size_t kp_len, const uint8_t *qualifying,
                                       size_t qlen, bool *valid, char **spki_pem) {
    cit_error_clear();
    *valid = false;
    if (qlen > QUALIFYING_MAX)
        return cit_error_set(CIT_E_USAGE, "the qualifying data is %zu bytes; TPM2_Certify takes at most %d", qlen,
                             QUALIFYING_MAX);
    verdicts v = {.checks = json_array()};
    char why[512] = "";
    TPM2B_PUBLIC akpub, kpub;
    EVP_PKEY *akpk = NULL, *kpk = NULL;
    char *kpem = NULL;
    /* 1. the AK */
    int c = ak_public_ok(ak_public, ak_len, &akpub, &akpk, why, sizeof why);
    verdict(&v, "ak_public", c, "%s", c ? why : "a restricted signing key, fixedTPM, fixedParent, sensitiveDataOrigin");
    /* 2. the format */
    TPMS_ATTEST a = {0};
    TPMT_SIGNATURE s = {0};
    size_t off = 0, soff = 0;
    bool aparsed = attest && attest_len &&
                   Tss2_MU_TPMS_ATTEST_Unmarshal(attest, attest_len, &off, &a) == TSS2_RC_SUCCESS && off == attest_len;
    bool sparsed = sig && sig_len && Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &soff, &s) == TSS2_RC_SUCCESS &&
                   soff == sig_len;
    bool fmt = aparsed && sparsed && a.magic == TPM_GENERATED && a.type == TPM2_ST_ATTEST_CERTIFY;
    verdict(&v, "format", fmt ? 0 : CIT_E_CERTIFY_MALFORMED, "%s",
            fmt             ? "a TPM-generated TPMS_ATTEST of type certify and a TPMT_SIGNATURE"
            : !aparsed      ? "attest is not a TPMS_ATTEST"
            : !sparsed      ? "signature is not a TPMT_SIGNATURE"
            : a.magic != TPM_GENERATED ? "attest does not start with TPM_GENERATED_VALUE: the TPM did not make it"
                                       : "attest is a TPMS_ATTEST of another type than certify");
    /* 3. the signature */
    if (c == 0 && fmt) {
        bool ok = signature_ok(akpk, &akpub, attest, attest_len, &s, why, sizeof why);
        verdict(&v, "signature", ok ? 0 : CIT_E_CERTIFY_SIGNATURE, "%s", ok ? "made by the AK over the attest bytes" : why);
    } else
        verdict(&v, "signature", CIT_E_CERTIFY_SIGNATURE, "not checked: %s",
                c ? "the AK public is refused" : "the certification does not parse");
    /* 4. the qualifying data */
    if (fmt) {
        bool ok = a.extraData.size == qlen && (qlen == 0 || memcmp(a.extraData.buffer, qualifying, qlen) == 0);
        char *got = cit_hex_encode(a.extraData.buffer, a.extraData.size);
        verdict(&v, "qualifying", ok ? 0 : CIT_E_CERTIFY_QUALIFYING,
                ok ? "the certification answers this qualifying data"
                   : "the certification answers qualifying data \"%s\", not the expected one (replayed, or another "
                     "verifier's)",
                got ? got : "?");
        free(got);
    }
    /* 5. the certified name is key_public's */
    bool kparsed = parse_public(key_public, kp_len, &kpub);
    uint8_t nb[sizeof(TPMU_NAME) + 2];
    size_t nl = 0;
    if (!kparsed)
        verdict(&v, "name", CIT_E_CERTIFY_NAME, "key_public is not a TPM2B_PUBLIC (%zu bytes)", kp_len);
    else if (cit__name_from_public(&kpub, nb, &nl) < 0) {
        verdict(&v, "name", CIT_E_CERTIFY_NAME, "cannot compute the name of key_public: %s", cit_error_last()->message);
        cit_error_clear();
    } else if (fmt) {
        bool ok = a.attested.certify.name.size == nl && memcmp(a.attested.certify.name.name, nb, nl) == 0;
        char *want = cit_hex_encode(nb, nl), *got = cit_hex_encode(a.attested.certify.name.name, a.attested.certify.name.size);
        if (ok)
            verdict(&v, "name", 0, "the certified object is key_public (name %s)", want ? want : "?");
        else
            verdict(&v, "name", CIT_E_CERTIFY_NAME, "the certified object has name %s, key_public has name %s",
                    got ? got : "?", want ? want : "?");
        free(want);
        free(got);
    }
    /* 6. key_public's attributes: a signing key bound to its TPM */
    if (kparsed) {
        bound_attributes(kpub.publicArea.objectAttributes, false, why, sizeof why);
        if (!why[0] && cit__pubkey_from_tpm(&kpk, &kpub) < 0) {
            snprintf(why, sizeof why, "not an RSA or NIST ECC key: %s", cit_error_last()->message);
            cit_error_clear();
        }
        if (!why[0] && cit__pubkey_pem(&kpem, kpk) < 0) {
            snprintf(why, sizeof why, "cannot encode its public key");
            cit_error_clear();
        }
        verdict(&v, "key_attributes", why[0] ? CIT_E_CERTIFY_KEY_ATTRIBUTES : 0, "%s",
                why[0] ? why : "a signing key, fixedTPM, fixedParent, sensitiveDataOrigin, not for decryption");
    }
    *valid = v.first_code == 0;
    json_t *j = json_pack("{s:b,s:o}", "valid", *valid, "checks", v.checks);
    if (v.first_code) {
        char cc[16];
        cit_code_format(cc, sizeof cc, v.first_code);
        json_object_set_new(j, "code", json_string(cc));
    }
    if (kparsed && nl) {
        char *h = cit_hex_encode(nb, nl);
        json_object_set_new(j, "key_name", json_string(h ? h : ""));
        free(h);
        json_object_set_new(j, "key_attributes", attributes_json(kpub.publicArea.objectAttributes));
    }
    if (c == 0) {
        uint8_t anb[sizeof(TPMU_NAME) + 2];
        size_t anl = 0;
        if (cit__name_from_public(&akpub, anb, &anl) == 0) {
            char *h = cit_hex_encode(anb, anl);
            json_object_set_new(j, "ak_name", json_string(h ? h : ""));
            free(h);
        }
        cit_error_clear();
    }
    if (fmt) {
        char clk[32];
        snprintf(clk, sizeof clk, "%llu", (unsigned long long)a.clockInfo.clock);
        json_object_set_new(j, "tpm_clock_ms", json_string(clk));
        json_object_set_new(j, "reset_count", json_integer(a.clockInfo.resetCount));
    }
    if (*valid && kpem)
        json_object_set_new(j, "key_public_pem", json_string(kpem));
    *out = j;
    if (*valid && spki_pem)
        *spki_pem = TAKE_PTR(kpem);
    free(kpem);
    EVP_PKEY_free(akpk);
    EVP_PKEY_free(kpk);
    return 0;
}
