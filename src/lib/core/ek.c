/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The endorsement key and its certificate (TCG EK Credential Profile for TPM Family 2.0):
 * ek show (the EK from the profile's templates, as `tpm2_createek` derives it), ek cert (the
 * certificate from its NV index), ek verify (chain, validity, key, TPM attributes, key usage),
 * ek cert-import, and the vTPM factory that provisions EK certificates at init.
 */
#include "core/ek.h"

#include <errno.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/keys.h"
#include "crypto/crypto.h"
#include "crypto/ekcert.h"
#include "ctx.h"

/* The EK NV range: certificates, nonces and templates, low and high range. */
#define EK_NV_FIRST 0x01c00000u
#define EK_NV_LAST 0x01c0001fu
#define EK_NV_CERT_MAX 4096u       /* larger than any EK certificate; bounds what we read */
#define EK_NV_BUFFER_FALLBACK 512u /* TPM2_PT_NV_BUFFER_MAX when the TPM does not say */
#define EK_INPUT_MAX (64u * 1024u) /* ek cert-import --input */

/* Table order is the order `ek` picks a default in: the first with a certificate. */
static const cit_ek_profile profiles[] = {
    {"rsa-2048", "L-1", TPM2_ALG_RSA, 2048, 0, TPM2_ALG_SHA256, 128, false, 0x01c00002, 0x01c00003,
     0x01c00004},
    {"ecc-p256", "L-2", TPM2_ALG_ECC, 0, TPM2_ECC_NIST_P256, TPM2_ALG_SHA256, 128, false,
     0x01c0000a, 0x01c0000b, 0x01c0000c},
    {"ecc-p384", "H-3", TPM2_ALG_ECC, 0, TPM2_ECC_NIST_P384, TPM2_ALG_SHA384, 256, true, 0x01c00016,
     0, 0x01c00017},
    {"rsa-3072", "H-6", TPM2_ALG_RSA, 3072, 0, TPM2_ALG_SHA384, 256, true, 0x01c0001c, 0,
     0x01c0001d},
};

/* The vTPM factory provisions these (rsa-3072 is left out: its key derivation would double the
 * time init takes, and RSA 3072 EK certificates are rare in the field). */
static const char *const factory_algorithms[] = {"rsa-2048", "ecc-p256", "ecc-p384"};

/* PolicyC: PolicyAuthorizeNV of the profile's policy index (I-1/I-2), a published constant
 * (it depends on that index's public area, not on this TPM). */
static const uint8_t policy_c_sha256[32] = {
    0x37, 0x67, 0xe2, 0xed, 0xd4, 0x3f, 0xf4, 0x5a, 0x3a, 0x7e, 0x1e, 0xae, 0xfc, 0xef, 0x78, 0x64,
    0x3d, 0xca, 0x96, 0x46, 0x32, 0xe7, 0xaa, 0xd8, 0x2c, 0x67, 0x3a, 0x30, 0xd8, 0x63, 0x3f, 0xde};
static const uint8_t policy_c_sha384[48] = {
    0xd6, 0x03, 0x2c, 0xe6, 0x1f, 0x2f, 0xb3, 0xc2, 0x40, 0xeb, 0x3c, 0xf6, 0xa3, 0x32, 0x37, 0xef,
    0x2b, 0x6a, 0x16, 0xf4, 0x29, 0x3c, 0x22, 0xb4, 0x55, 0xe2, 0x61, 0xcf, 0xfd, 0x21, 0x7a, 0xd5,
    0xb4, 0x94, 0x7c, 0x2d, 0x73, 0xe6, 0x30, 0x05, 0xee, 0xd2, 0xdc, 0x2b, 0x35, 0x93, 0xd1, 0x65};

const cit_ek_profile *cit__ek_profile(const char *algorithm) {
    for (size_t i = 0; algorithm && i < ELEMENTSOF(profiles); i++)
        if (strcmp(profiles[i].algorithm, algorithm) == 0)
            return &profiles[i];
    return NULL;
}

static int unknown_algorithm(const char *algorithm) {
    cit_error_set(CIT_E_USAGE, "unknown EK algorithm: %s", algorithm);
    cit_error_cause("--algorithm takes rsa-2048 (template L-1), ecc-p256 (L-2), ecc-p384 (H-3) or "
                    "rsa-3072 (H-6)");
    cit_error_context("algorithm", "%s", algorithm);
    return CIT_E_USAGE;
}

/* ---- policies and templates --------------------------------------------------------------- */

int cit__ek_policy_a(TPMI_ALG_HASH alg, TPM2B_DIGEST *out) {
    size_t n = cit__hash_size(alg);
    if (alg != TPM2_ALG_SHA256 && alg != TPM2_ALG_SHA384)
        return cit_error_set(CIT_E_ALG_UNSUPPORTED, "no EK policy for this hash algorithm");
    /* PolicySecret: H(H(0...0 || TPM_CC_PolicySecret || name(TPM_RH_ENDORSEMENT)) || policyRef) */
    uint8_t buf[64 + 8];
    memset(buf, 0, n);
    cit_put_be32(buf + n, TPM2_CC_PolicySecret);
    cit_put_be32(buf + n + 4, TPM2_RH_ENDORSEMENT);
    uint8_t md[EVP_MAX_MD_SIZE], md2[EVP_MAX_MD_SIZE];
    size_t ml = 0, ml2 = 0;
    int r = cit__digest(alg, buf, n + 8, md, &ml);
    if (r == 0)
        r = cit__digest(alg, md, ml, md2, &ml2); /* the empty policyRef */
    if (r < 0)
        return r;
    out->size = (UINT16)ml2;
    memcpy(out->buffer, md2, ml2);
    return 0;
}

int cit__ek_policy_b(TPMI_ALG_HASH alg, TPM2B_DIGEST *out) {
    TPM2B_DIGEST a;
    int r = cit__ek_policy_a(alg, &a);
    if (r < 0)
        return r;
    const uint8_t *c = alg == TPM2_ALG_SHA256 ? policy_c_sha256 : policy_c_sha384;
    size_t n = a.size;
    /* PolicyOR: H(0...0 || TPM_CC_PolicyOR || PolicyA || PolicyC) */
    uint8_t buf[3 * 64 + 4];
    memset(buf, 0, n);
    cit_put_be32(buf + n, TPM2_CC_PolicyOR);
    memcpy(buf + n + 4, a.buffer, n);
    memcpy(buf + 2 * n + 4, c, n);
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t ml = 0;
    r = cit__digest(alg, buf, 3 * n + 4, md, &ml);
    if (r < 0)
        return r;
    out->size = (UINT16)ml;
    memcpy(out->buffer, md, ml);
    return 0;
}

void cit__ek_default_template(const cit_ek_profile *p, TPM2B_PUBLIC *out) {
    memset(out, 0, sizeof(*out));
    TPMT_PUBLIC *t = &out->publicArea;
    t->type = p->type;
    t->nameAlg = p->name_alg;
    t->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                          TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    if (p->high_range)
        t->objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
    if (p->high_range)
        cit__ek_policy_b(p->name_alg, &t->authPolicy);
    else
        cit__ek_policy_a(p->name_alg, &t->authPolicy);
    TPMT_SYM_DEF_OBJECT sym = {
        .algorithm = TPM2_ALG_AES, .keyBits.aes = p->aes_bits, .mode.aes = TPM2_ALG_CFB};
    if (p->type == TPM2_ALG_RSA) {
        t->parameters.rsaDetail.symmetric = sym;
        t->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        t->parameters.rsaDetail.keyBits = p->rsa_bits;
        t->parameters.rsaDetail.exponent = 0;
        /* the low range templates have a zero-filled unique field, the high range an empty one */
        t->unique.rsa.size = p->high_range ? 0 : (UINT16)(p->rsa_bits / 8);
    } else {
        t->parameters.eccDetail.symmetric = sym;
        t->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        t->parameters.eccDetail.curveID = p->curve;
        t->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        t->unique.ecc.x.size = p->high_range ? 0 : 32;
        t->unique.ecc.y.size = p->high_range ? 0 : 32;
    }
}

/* ---- NV ----------------------------------------------------------------------------------- */

/* Which indices of the EK range exist (bit i = EK_NV_FIRST + i). */
static int ek_nv_present(cit_tpm *t, uint32_t *mask) {
    TPMS_CAPABILITY_DATA *cap = NULL;
    TSS2_RC rc =
        Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                           EK_NV_FIRST, EK_NV_LAST - EK_NV_FIRST + 1, NULL, &cap);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot list the EK NV indices");
    *mask = 0;
    for (uint32_t i = 0; i < cap->data.handles.count; i++) {
        uint32_t h = cap->data.handles.handle[i];
        if (h >= EK_NV_FIRST && h <= EK_NV_LAST)
            *mask |= 1u << (h - EK_NV_FIRST);
    }
    Esys_Free(cap);
    return 0;
}

static bool present(uint32_t mask, uint32_t index) {
    return index >= EK_NV_FIRST && index <= EK_NV_LAST && (mask & (1u << (index - EK_NV_FIRST)));
}

int cit__ek_resolve(cit_ctx *ctx, const char *algorithm, const cit_ek_profile **out) {
    if (algorithm) {
        const cit_ek_profile *p = cit__ek_profile(algorithm);
        if (!p)
            return unknown_algorithm(algorithm);
        *out = p;
        return 0;
    }
    cit_tpm *t;
    uint32_t mask = 0;
    int r = cit__ctx_tpm(ctx, &t);
    if (r == 0)
        r = ek_nv_present(t, &mask);
    if (r < 0)
        return r;
    *out = &profiles[0];
    for (size_t i = 0; i < ELEMENTSOF(profiles); i++)
        if (present(mask, profiles[i].cert_index)) {
            *out = &profiles[i];
            break;
        }
    return 0;
}

/* Reads a whole NV index (at most max bytes). CIT_E_EK_CERT_MISSING-style absence is reported as
 * *data == NULL with 0 returned, so callers word it for what they read. */
static int nv_read_index(cit_tpm *t, uint32_t index, size_t max, uint8_t **data, size_t *len,
                         TPMA_NV *attrs) {
    ESYS_TR h = ESYS_TR_NONE;
    TPM2B_NV_PUBLIC *pub = NULL;
    uint8_t *buf = NULL;
    int r = 0;
    *data = NULL;
    *len = 0;
    TSS2_RC rc =
        Esys_TR_FromTPMPublic(t->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &h);
    if (rc != TSS2_RC_SUCCESS) {
        if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && cit__rc_base(rc) == TPM2_RC_HANDLE)
            return 0; /* not defined */
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot read NV index 0x%08x", index);
    }
    rc = Esys_NV_ReadPublic(t->esys, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc,
                           "cannot read the public area of NV index 0x%08x", index);
        goto done;
    }
    TPMA_NV a = pub->nvPublic.attributes;
    if (attrs)
        *attrs = a;
    if (!(a & TPMA_NV_WRITTEN))
        goto done; /* defined, never written: nothing to read */
    size_t size = pub->nvPublic.dataSize;
    if (size > max) {
        r = cit_error_set(CIT_E_EK_CERT_INVALID,
                          "NV index 0x%08x holds %zu bytes, more than the %zu expected", index,
                          size, max);
        goto done;
    }
    ESYS_TR auth;
    if (a & TPMA_NV_AUTHREAD)
        auth = h; /* readable with the index's own (empty) authorization, whatever the owner's is */
    else if (a & TPMA_NV_OWNERREAD)
        auth = ESYS_TR_RH_OWNER;
    else {
        r = cit_error_set(
            CIT_E_AUTH_FAIL,
            "NV index 0x%08x is readable neither with its own nor the owner's authorization",
            index);
        goto done;
    }
    uint32_t chunk = EK_NV_BUFFER_FALLBACK;
    if (cit__tpm_prop(t, TPM2_PT_NV_BUFFER_MAX, &chunk) < 0 || chunk == 0)
        chunk = EK_NV_BUFFER_FALLBACK;
    cit_error_clear();
    if (chunk > sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer))
        chunk = sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer);
    buf = malloc(size ? size : 1);
    if (!buf) {
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t got = 0; got < size;) {
        UINT16 n = (UINT16)(size - got < chunk ? size - got : chunk);
        TPM2B_MAX_NV_BUFFER *b = NULL;
        rc = Esys_NV_Read(t->esys, auth, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
                          (UINT16)got, &b);
        if (rc != TSS2_RC_SUCCESS) {
            r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot read NV index 0x%08x", index);
            goto done;
        }
        bool ok = b->size == n;
        if (ok)
            memcpy(buf + got, b->buffer, n);
        Esys_Free(b);
        if (!ok) {
            r = cit_error_set(CIT_E_TPM_COMMAND, "TPM2_NV_Read of 0x%08x returned a short read",
                              index);
            goto done;
        }
        got += n;
    }
    *data = TAKE_PTR(buf);
    *len = size;
done:
    free(buf);
    Esys_Free(pub);
    Esys_TR_Close(t->esys, &h);
    return r;
}

/* Writes data as the whole content of index: an owner-defined index is (re)defined at the right
 * size; one the platform created is refused. Readable without authorization, like the
 * platform's own EK certificate indices. */
static int nv_store_index(cit_tpm *t, uint32_t index, const uint8_t *data, size_t len) {
    ESYS_TR h = ESYS_TR_NONE;
    TSS2_RC rc =
        Esys_TR_FromTPMPublic(t->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &h);
    if (rc == TSS2_RC_SUCCESS) {
        TPM2B_NV_PUBLIC *pub = NULL;
        rc = Esys_NV_ReadPublic(t->esys, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
        bool platform =
            rc == TSS2_RC_SUCCESS && (pub->nvPublic.attributes & TPMA_NV_PLATFORMCREATE);
        Esys_Free(pub);
        if (platform) {
            Esys_TR_Close(t->esys, &h);
            cit_error_set(CIT_E_EK_NV_PLATFORM, "NV index 0x%08x was created by the platform",
                          index);
            cit_error_cause(
                "an index with TPMA_NV_PLATFORMCREATE is changed only with platform authorization "
                "(firmware), not by the owner");
            cit_error_context("index", "0x%08x", index);
            return CIT_E_EK_NV_PLATFORM;
        }
        rc = Esys_NV_UndefineSpace(t->esys, ESYS_TR_RH_OWNER, h, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS) {
            Esys_TR_Close(t->esys, &h);
            return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot undefine NV index 0x%08x",
                                  index);
        }
    } else if (!((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
                 cit__rc_base(rc) == TPM2_RC_HANDLE))
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot read NV index 0x%08x", index);
    TPM2B_NV_PUBLIC pub = {0};
    pub.nvPublic.nvIndex = index;
    pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
    pub.nvPublic.attributes = TPMA_NV_OWNERWRITE | TPMA_NV_PPREAD | TPMA_NV_OWNERREAD |
                              TPMA_NV_AUTHREAD | TPMA_NV_NO_DA |
                              ((TPMA_NV)TPM2_NT_ORDINARY << TPMA_NV_TPM2_NT_SHIFT);
    pub.nvPublic.dataSize = (UINT16)len;
    h = ESYS_TR_NONE;
    rc = Esys_NV_DefineSpace(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE, &(TPM2B_AUTH){0}, &pub, &h);
    if (rc != TSS2_RC_SUCCESS) {
        int r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc,
                               "cannot define NV index 0x%08x (%zu bytes)", index, len);
        if (cit__rc_base(rc) == TPM2_RC_NV_SPACE || cit__rc_base(rc) == TPM2_RC_NV_SIZE)
            r = cit_error_set(CIT_E_NV_NO_SPACE,
                              "the TPM has no room for a %zu-byte EK certificate at 0x%08x", len,
                              index);
        return r;
    }
    uint32_t chunk = EK_NV_BUFFER_FALLBACK;
    if (cit__tpm_prop(t, TPM2_PT_NV_BUFFER_MAX, &chunk) < 0 || chunk == 0)
        chunk = EK_NV_BUFFER_FALLBACK;
    cit_error_clear();
    if (chunk > sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer))
        chunk = sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer);
    int r = 0;
    for (size_t done = 0; done < len && r == 0; done += chunk) {
        size_t n = len - done < chunk ? len - done : chunk;
        TPM2B_MAX_NV_BUFFER b = {.size = (UINT16)n};
        memcpy(b.buffer, data + done, n);
        rc = Esys_NV_Write(t->esys, ESYS_TR_RH_OWNER, h, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &b, (UINT16)done);
        if (rc != TSS2_RC_SUCCESS)
            r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot write NV index 0x%08x", index);
    }
    Esys_TR_Close(t->esys, &h);
    return r;
}

/* ---- the EK ------------------------------------------------------------------------------- */

/* The template the profile says to use: the platform's EK template from NV if there is one
 * (with its EK nonce in the unique field, low range only), else the default. */
static int ek_template(cit_tpm *t, const cit_ek_profile *p, TPM2B_PUBLIC *tmpl, char *source,
                       size_t source_len) {
    uint32_t mask = 0;
    int r = ek_nv_present(t, &mask);
    if (r < 0)
        return r;
    cit__ek_default_template(p, tmpl);
    snprintf(source, source_len, "default (TCG EK Credential Profile template %s)", p->template_id);
    if (!present(mask, p->template_index))
        return 0;
    uint8_t *data = NULL, *nonce = NULL;
    size_t len = 0, nlen = 0;
    r = nv_read_index(t, p->template_index, sizeof(TPMT_PUBLIC), &data, &len, NULL);
    if (r < 0 || !data)
        return r;
    TPM2B_PUBLIC nv = {0};
    size_t off = 0;
    if (Tss2_MU_TPMT_PUBLIC_Unmarshal(data, len, &off, &nv.publicArea) != TSS2_RC_SUCCESS) {
        free(data);
        cit_error_set(CIT_E_TPM_COMMAND, "the EK template in NV index 0x%08x is not a TPMT_PUBLIC",
                      p->template_index);
        cit_error_cause("the platform wrote an EK template the profile's format does not describe");
        return CIT_E_TPM_COMMAND;
    }
    free(data);
    if (p->nonce_index && present(mask, p->nonce_index)) {
        r = nv_read_index(t, p->nonce_index, 64, &nonce, &nlen, NULL);
        if (r < 0)
            return r;
        if (nonce && nv.publicArea.type == TPM2_ALG_RSA) {
            size_t n = nv.publicArea.parameters.rsaDetail.keyBits / 8;
            if (n > sizeof nv.publicArea.unique.rsa.buffer)
                n = sizeof nv.publicArea.unique.rsa.buffer;
            memset(nv.publicArea.unique.rsa.buffer, 0, n);
            memcpy(nv.publicArea.unique.rsa.buffer, nonce, nlen < n ? nlen : n);
            nv.publicArea.unique.rsa.size = (UINT16)n;
        } else if (nonce && nv.publicArea.type == TPM2_ALG_ECC) {
            memset(&nv.publicArea.unique.ecc, 0, sizeof nv.publicArea.unique.ecc);
            memcpy(nv.publicArea.unique.ecc.x.buffer, nonce, nlen < 32 ? nlen : 32);
            nv.publicArea.unique.ecc.x.size = 32;
            nv.publicArea.unique.ecc.y.size = 32;
        }
        free(nonce);
    }
    *tmpl = nv;
    snprintf(source, source_len, "NV index 0x%08x (the platform's EK template%s)",
             p->template_index, nonce ? ", with its EK nonce" : "");
    return 0;
}

static int ek_create(cit_tpm *t, const cit_ek_profile *p, const TPM2B_PUBLIC *tmpl, ESYS_TR *handle,
                     TPM2B_PUBLIC *pub_out) {
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_PUBLIC *pub = NULL;
    ESYS_TR h = ESYS_TR_NONE;
    TSS2_RC rc =
        Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &sens, tmpl, &outside, &pcrs, &h, &pub, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        uint32_t base = cit__rc_base(rc);
        if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
            (base == TPM2_RC_KEY_SIZE || base == TPM2_RC_CURVE || base == TPM2_RC_ASYMMETRIC ||
             base == TPM2_RC_HASH || base == TPM2_RC_SYMMETRIC)) {
            cit_error_set(CIT_E_ALG_UNSUPPORTED, "this TPM cannot make the %s endorsement key",
                          p->algorithm);
            cit_error_cause("TPM2_CreatePrimary refused the %s template (%s)", p->template_id,
                            cit__tss_rc_decode(rc));
            cit_error_context("tpm_rc", "0x%08x", rc);
            cit_error_step("run `citadel tpm capabilities` to see the algorithms, curves and key "
                           "sizes it has");
            return CIT_E_ALG_UNSUPPORTED;
        }
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot create the %s endorsement key",
                              p->algorithm);
    }
    *pub_out = *pub;
    Esys_Free(pub);
    *handle = h;
    return 0;
}

static int load_with_source(cit_ctx *ctx, const cit_ek_profile *p, ESYS_TR *handle,
                            TPM2B_PUBLIC *pub, char *source, size_t source_len) {
    cit_tpm *t;
    int r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    cit__key_cache_drop(ctx);
    TPM2B_PUBLIC tmpl;
    r = ek_template(t, p, &tmpl, source, source_len);
    if (r == 0)
        r = ek_create(t, p, &tmpl, handle, pub);
    return r;
}

static int open_tpm(cit_ctx *ctx, cit_tpm **t) {
    cit_store *s;
    int r = cit__ctx_store(ctx, &s); /* the workspace names the backend */
    if (r == 0)
        r = cit__ctx_tpm(ctx, t);
    return r;
}

int cit__ek_load(cit_ctx *ctx, const char *algorithm, ESYS_TR *handle, TPM2B_PUBLIC *pub) {
    const cit_ek_profile *p;
    cit_tpm *t;
    char source[128];
    int r = open_tpm(ctx, &t);
    if (r == 0)
        r = cit__ek_resolve(ctx, algorithm, &p);
    if (r == 0)
        r = load_with_source(ctx, p, handle, pub, source, sizeof source);
    return r;
}

/* The EK's public key as OpenSSL sees it (derived, then flushed). */
static int ek_public_key(cit_ctx *ctx, const cit_ek_profile *p, EVP_PKEY **ek) {
    ESYS_TR h = ESYS_TR_NONE;
    TPM2B_PUBLIC pub;
    char source[128];
    int r = load_with_source(ctx, p, &h, &pub, source, sizeof source);
    if (h != ESYS_TR_NONE)
        cit__tpm_flush(ctx->tpm, &h);
    return r < 0 ? r : cit__pubkey_from_tpm(ek, &pub);
}

int cit__ek_policy_session(cit_ctx *ctx, const TPM2B_PUBLIC *ek_pub, ESYS_TR *session) {
    cit_tpm *t;
    int r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    TPMI_ALG_HASH alg = ek_pub->publicArea.nameAlg;
    TPM2B_DIGEST a, b;
    if (cit__ek_policy_a(alg, &a) < 0 || cit__ek_policy_b(alg, &b) < 0) {
        cit_error_set(CIT_E_POLICY_FAIL,
                      "the endorsement key's name algorithm has no TCG EK policy");
        return CIT_E_POLICY_FAIL;
    }
    const TPM2B_DIGEST *want = &ek_pub->publicArea.authPolicy;
    bool is_a = want->size == a.size && memcmp(want->buffer, a.buffer, a.size) == 0;
    bool is_b = want->size == b.size && memcmp(want->buffer, b.buffer, b.size) == 0;
    if (!is_a && !is_b) {
        cit_error_set(CIT_E_POLICY_FAIL, "the endorsement key's authPolicy is not a TCG EK policy");
        cit_error_cause(
            "the EK was made from a non-standard template (PolicyA or PolicyB of the EK Credential "
            "Profile expected)");
        return CIT_E_POLICY_FAIL;
    }
    TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
    ESYS_TR s = ESYS_TR_NONE;
    TSS2_RC rc =
        Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                              ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, alg, &s);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot start the EK policy session");
    rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, s, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        r = cit__tss_error(t, CIT_E_POLICY_FAIL, rc,
                           "TPM2_PolicySecret(TPM_RH_ENDORSEMENT) failed");
        cit__tpm_flush(t, &s);
        return r;
    }
    if (is_b) {
        TPML_DIGEST list = {.count = 2};
        list.digests[0] = a;
        list.digests[1].size = a.size;
        memcpy(list.digests[1].buffer, alg == TPM2_ALG_SHA256 ? policy_c_sha256 : policy_c_sha384,
               a.size);
        rc = Esys_PolicyOR(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &list);
        if (rc != TSS2_RC_SUCCESS) {
            r = cit__tss_error(t, CIT_E_POLICY_FAIL, rc, "TPM2_PolicyOR(PolicyA, PolicyC) failed");
            cit__tpm_flush(t, &s);
            return r;
        }
    }
    Esys_TRSess_SetAttributes(t->esys, s, 0, TPMA_SESSION_CONTINUESESSION);
    *session = s;
    return 0;
}

/* ---- what the TPM says about itself -------------------------------------------------------- */

static void tpm_attrs(cit_tpm *t, cit_tpm_attrs *a) {
    memset(a, 0, sizeof(*a));
    TPMS_CAPABILITY_DATA *cap = NULL;
    uint32_t man = 0, fw1 = 0, vs[4] = {0};
    if (Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                           TPM2_CAP_TPM_PROPERTIES, TPM2_PT_MANUFACTURER,
                           TPM2_PT_FIRMWARE_VERSION_1 - TPM2_PT_MANUFACTURER + 1, NULL,
                           &cap) == TSS2_RC_SUCCESS) {
        for (uint32_t i = 0; i < cap->data.tpmProperties.count; i++) {
            const TPMS_TAGGED_PROPERTY *p = &cap->data.tpmProperties.tpmProperty[i];
            if (p->property == TPM2_PT_MANUFACTURER)
                man = p->value;
            else if (p->property == TPM2_PT_FIRMWARE_VERSION_1)
                fw1 = p->value;
            else if (p->property >= TPM2_PT_VENDOR_STRING_1 &&
                     p->property <= TPM2_PT_VENDOR_STRING_4)
                vs[p->property - TPM2_PT_VENDOR_STRING_1] = p->value;
        }
    }
    Esys_Free(cap);
    snprintf(a->manufacturer, sizeof a->manufacturer, "id:%08X", man);
    snprintf(a->version, sizeof a->version, "id:%08X", fw1);
    /* the vendor string: printable characters, runs of spaces as one, trimmed */
    size_t off = 0;
    for (int i = 0; i < 4; i++)
        for (int b = 3; b >= 0; b--) {
            char c = (char)(vs[i] >> (8 * b));
            if (c < 0x20 || c >= 0x7f || (c == ' ' && (off == 0 || a->model[off - 1] == ' ')))
                continue;
            if (off + 1 < sizeof a->model)
                a->model[off++] = c;
        }
    while (off && a->model[off - 1] == ' ')
        off--;
    a->model[off] = 0;
}

/* ---- the vTPM factory ---------------------------------------------------------------------- */

int cit__ek_factory(cit_ctx *ctx, const char *workspace_id, char **ca_pem, json_t **summary) {
    cit_tpm *t;
    int r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    cit_tpm_attrs attrs;
    tpm_attrs(t, &attrs);
    EVP_PKEY *ca_key = NULL;
    X509 *ca = NULL;
    char cn[96];
    snprintf(cn, sizeof cn, "Citadel vTPM EK CA %.16s", workspace_id);
    r = cit__ekcert_ca_new(&ca_key, &ca, cn, "Citadel vTPM manufacturer (workspace-local)");
    if (r < 0)
        return r;
    json_t *certs = json_array();
    for (size_t i = 0; i < ELEMENTSOF(factory_algorithms) && r == 0; i++) {
        const cit_ek_profile *p = cit__ek_profile(factory_algorithms[i]);
        TPM2B_PUBLIC tmpl, pub;
        ESYS_TR h = ESYS_TR_NONE;
        EVP_PKEY *ek = NULL;
        X509 *x = NULL;
        uint8_t *der = NULL;
        size_t der_len = 0;
        cit__ek_default_template(p, &tmpl);
        r = ek_create(t, p, &tmpl, &h, &pub);
        cit__tpm_flush(t, &h);
        if (r == 0)
            r = cit__pubkey_from_tpm(&ek, &pub);
        if (r == 0)
            r = cit__ekcert_issue(&x, ek, &attrs, ca, ca_key);
        if (r == 0)
            r = cit__ekcert_der(&der, &der_len, x);
        if (r == 0)
            r = nv_store_index(t, p->cert_index, der, der_len);
        if (r == 0) {
            char idx[16];
            snprintf(idx, sizeof idx, "0x%08x", p->cert_index);
            json_array_append_new(certs, json_pack("{s:s,s:s,s:I}", "algorithm", p->algorithm,
                                                   "nv_index", idx, "size", (json_int_t)der_len));
        }
        free(der);
        X509_free(x);
        EVP_PKEY_free(ek);
    }
    /* The CA's private key ends here: the workspace never issues another certificate. */
    EVP_PKEY_free(ca_key);
    char *pem = NULL;
    if (r == 0)
        r = cit__ekcert_pem(&pem, ca);
    if (r == 0) {
        json_t *cs = cit__ekcert_summary(ca);
        *summary = json_pack("{s:O,s:o,s:s}", "ca", json_object_get(cs, "subject"), "certificates",
                             certs, "ca_private_key", "discarded after issuing");
        json_decref(cs);
        *ca_pem = pem;
    } else
        json_decref(certs);
    X509_free(ca);
    return r;
}

/* ---- shared by the commands ----------------------------------------------------------------- */

static void hex_index(char *buf, size_t len, uint32_t index) {
    snprintf(buf, len, "0x%08x", index);
}

/* The EK certificate of p from NV: CIT_E_EK_CERT_MISSING when the index is absent or empty,
 * CIT_E_EK_CERT_INVALID when it holds no certificate. der and der_len: the certificate's bytes
 * without the index's padding. */
static int read_cert(cit_ctx *ctx, const cit_ek_profile *p, X509 **out, uint8_t **der,
                     size_t *der_len) {
    cit_tpm *t;
    uint8_t *data = NULL;
    size_t len = 0;
    int r = cit__ctx_tpm(ctx, &t);
    if (r == 0)
        r = nv_read_index(t, p->cert_index, EK_NV_CERT_MAX, &data, &len, NULL);
    if (r < 0)
        return r;
    if (!data) {
        cit_error_set(CIT_E_EK_CERT_MISSING, "the TPM holds no %s EK certificate (NV index 0x%08x)",
                      p->algorithm, p->cert_index);
        uint32_t mask = 0;
        if (ek_nv_present(t, &mask) == 0) {
            char have[120] = "";
            size_t off = 0;
            for (size_t i = 0; i < ELEMENTSOF(profiles); i++)
                if (present(mask, profiles[i].cert_index) && off < sizeof have)
                    off += (size_t)snprintf(have + off, sizeof have - off, "%s%s", off ? ", " : "",
                                            profiles[i].algorithm);
            if (off)
                cit_error_cause("it has EK certificates for: %s", have);
            else
                cit_error_cause("it has no EK certificate at any of the profile's NV indices");
        }
        if (t->backend == CIT_BACKEND_VTPM)
            cit_error_cause(
                "a vtpm workspace gets rsa-2048, ecc-p256 and ecc-p384 EK certificates at `init`");
        else if (t->backend == CIT_BACKEND_MOCK)
            cit_error_cause(
                "the mock backend's TPM is manufactured fresh in memory, without EK certificates");
        cit_error_context("nv_index", "0x%08x", p->cert_index);
        cit_error_context("algorithm", "%s", p->algorithm);
        return CIT_E_EK_CERT_MISSING;
    }
    X509 *x = NULL;
    size_t n = 0;
    r = cit__ekcert_parse_der(&x, data, len, &n);
    if (r < 0) {
        cit_error_context("nv_index", "0x%08x", p->cert_index);
        free(data);
        return r;
    }
    *out = x;
    if (der) {
        *der = data;
        *der_len = n;
    } else
        free(data);
    return 0;
}

/* ---- ek show ----------------------------------------------------------------------------------
 */

_public_ int cit_ek_show(json_t **out, cit_ctx *ctx, const char *algorithm) {
    cit_error_clear();
    if (algorithm && !cit__ek_profile(algorithm))
        return unknown_algorithm(algorithm);
    if (ctx->plan) {
        static const char *const ops[] = {
            "TPM2_GetCapability (EK NV indices)", "TPM2_NV_Read (EK template, if any)",
            "TPM2_CreatePrimary (endorsement hierarchy)", "TPM2_FlushContext", NULL};
        *out = cit__plan("show the endorsement key", ops);
        return 0;
    }
    cit_tpm *t;
    const cit_ek_profile *p;
    int r = open_tpm(ctx, &t);
    if (r == 0)
        r = cit__ek_resolve(ctx, algorithm, &p);
    if (r < 0)
        return r;
    ESYS_TR h = ESYS_TR_NONE;
    TPM2B_PUBLIC pub;
    char source[128];
    r = load_with_source(ctx, p, &h, &pub, source, sizeof source);
    cit__tpm_flush(t, &h);
    if (r < 0)
        return r;
    uint8_t name[sizeof(TPMU_NAME) + 2];
    size_t name_len = 0;
    EVP_PKEY *pk = NULL;
    _cleanup_free_ char *pem = NULL, *fp = NULL, *name_hex = NULL, *policy_hex = NULL;
    r = cit__name_from_public(&pub, name, &name_len);
    if (r == 0)
        r = cit__pubkey_from_tpm(&pk, &pub);
    if (r == 0)
        r = cit__pubkey_pem(&pem, pk);
    if (r == 0)
        r = cit__pubkey_fingerprint(&fp, pk);
    EVP_PKEY_free(pk);
    if (r < 0)
        return r;
    name_hex = cit_hex_encode(name, name_len);
    policy_hex = cit_hex_encode(pub.publicArea.authPolicy.buffer, pub.publicArea.authPolicy.size);
    uint32_t mask = 0;
    bool have_cert = ek_nv_present(t, &mask) == 0 && present(mask, p->cert_index);
    cit_error_clear();
    char idx[16];
    hex_index(idx, sizeof idx, p->cert_index);
    json_t *j = json_object();
    json_object_set_new(j, "algorithm", json_string(p->algorithm));
    json_object_set_new(j, "template", json_string(p->template_id));
    json_object_set_new(j, "template_source", json_string(source));
    json_object_set_new(j, "name", json_string(name_hex ? name_hex : ""));
    json_object_set_new(j, "auth_policy", json_string(policy_hex ? policy_hex : ""));
    json_object_set_new(j, "policy",
                        json_string(p->high_range
                                        ? "PolicyB: PolicySecret(TPM_RH_ENDORSEMENT) OR the "
                                          "policy in NV (PolicyAuthorizeNV)"
                                        : "PolicyA: PolicySecret(TPM_RH_ENDORSEMENT)"));
    json_object_set_new(j, "fingerprint_sha256", json_string(fp ? fp : ""));
    json_object_set_new(j, "certificate",
                        json_pack("{s:s,s:b}", "nv_index", idx, "present", have_cert));
    json_object_set_new(j, "public_key", json_string(pem ? pem : ""));
    char *text = NULL;
    size_t tl = 0;
    FILE *m = open_memstream(&text, &tl);
    if (m) {
        fprintf(m, "algorithm     %s (TCG EK template %s)\n", p->algorithm, p->template_id);
        fprintf(m, "template      %s\n", source);
        fprintf(m, "name          %s\n", name_hex ? name_hex : "");
        fprintf(m, "certificate   NV %s (%s)\n", idx,
                have_cert ? "present: `citadel tpm ek cert`" : "absent");
        fprintf(m, "%s", pem ? pem : "");
        fclose(m);
        json_object_set_new(j, "_text", json_string(text ? text : ""));
    }
    free(text);
    *out = j;
    return 0;
}

/* ---- ek cert ----------------------------------------------------------------------------------
 */

_public_ int cit_ek_cert(json_t **out, cit_ctx *ctx, const char *algorithm, const char *output,
                         const char *format) {
    cit_error_clear();
    bool der = false;
    if (format && strcmp(format, "der") == 0)
        der = true;
    else if (format && strcmp(format, "pem") != 0) {
        cit_error_set(CIT_E_FORMAT_UNKNOWN, "unknown certificate encoding: %s", format);
        cit_error_cause("--encoding takes pem (default) or der");
        return CIT_E_FORMAT_UNKNOWN;
    }
    if (der && !output) {
        cit_error_set(CIT_E_USAGE, "DER is binary: give --output FILE with --encoding der");
        return CIT_E_USAGE;
    }
    if (algorithm && !cit__ek_profile(algorithm))
        return unknown_algorithm(algorithm);
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_GetCapability (EK NV indices)",
                                          "TPM2_NV_ReadPublic", "TPM2_NV_Read (the EK certificate)",
                                          NULL};
        *out = cit__plan("read the EK certificate", ops);
        return 0;
    }
    cit_tpm *t;
    const cit_ek_profile *p;
    int r = open_tpm(ctx, &t);
    if (r == 0)
        r = cit__ek_resolve(ctx, algorithm, &p);
    if (r < 0)
        return r;
    X509 *x = NULL;
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    char *pem = NULL;
    r = read_cert(ctx, p, &x, &raw, &raw_len);
    if (r == 0)
        r = cit__ekcert_pem(&pem, x);
    if (r == 0 && output) {
        int w = der ? cit_write_file_atomic(output, raw, raw_len, 0644, 0)
                    : cit_write_file_atomic(output, (const uint8_t *)pem, strlen(pem), 0644, 0);
        if (w < 0) {
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-w));
            cit_error_context("file", "%s", output);
        }
    }
    if (r == 0) {
        char idx[16];
        hex_index(idx, sizeof idx, p->cert_index);
        json_t *j = json_pack("{s:s,s:s,s:I,s:o}", "algorithm", p->algorithm, "nv_index", idx,
                              "size", (json_int_t)raw_len, "certificate", cit__ekcert_summary(x));
        json_object_set_new(j, "encoding", json_string(der ? "der" : "pem"));
        if (output)
            json_object_set_new(j, "output", json_string(output));
        else {
            json_object_set_new(j, "pem", json_string(pem));
            json_object_set_new(j, "_text", json_string(pem));
        }
        *out = j;
    }
    free(pem);
    free(raw);
    X509_free(x);
    return r;
}

/* ---- ek cert-import -----------------------------------------------------------------------------
 */

static const cit_ek_profile *profile_for_key(EVP_PKEY *k) {
    int bits = EVP_PKEY_get_bits(k);
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA)
        return cit__ek_profile(bits == 3072 ? "rsa-3072" : bits == 2048 ? "rsa-2048" : NULL);
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC)
        return cit__ek_profile(bits == 384 ? "ecc-p384" : bits == 256 ? "ecc-p256" : NULL);
    return NULL;
}

_public_ int cit_ek_cert_import(json_t **out, cit_ctx *ctx, const char *algorithm,
                                const char *input, bool force) {
    cit_error_clear();
    if (algorithm && !cit__ek_profile(algorithm))
        return unknown_algorithm(algorithm);
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = cit__read_input(input, EK_INPUT_MAX, "the certificate", false, &buf, &len);
    if (r < 0)
        return r;
    X509 *x = NULL;
    r = cit__ekcert_parse_any(&x, buf, len);
    free(buf);
    if (r < 0) {
        cit_error_context("file", "%s", input);
        return r;
    }
    const cit_ek_profile *p =
        algorithm ? cit__ek_profile(algorithm) : profile_for_key(X509_get0_pubkey(x));
    uint8_t *der = NULL;
    size_t der_len = 0;
    cit_tpm *t = NULL;
    EVP_PKEY *ek = NULL;
    if (!p) {
        r = cit_error_set(CIT_E_USAGE,
                          "the certificate's key is not one of the profile's EK algorithms");
        cit_error_cause("give --algorithm rsa-2048, ecc-p256, ecc-p384 or rsa-3072");
        goto done;
    }
    r = cit__ekcert_der(&der, &der_len, x);
    if (r == 0 && der_len > EK_NV_CERT_MAX)
        r = cit_error_set(CIT_E_INPUT_TOO_LARGE,
                          "the certificate is %zu bytes; EK certificates fit in %u", der_len,
                          EK_NV_CERT_MAX);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        static const char *const ops[] = {
            "TPM2_CreatePrimary (endorsement key, to compare)",
            "TPM2_FlushContext",
            "TPM2_NV_UndefineSpace (an owner-defined index already there)",
            "TPM2_NV_DefineSpace",
            "TPM2_NV_Write",
            NULL};
        *out = cit__plan("store the EK certificate in NV", ops);
        goto done;
    }
    r = open_tpm(ctx, &t);
    if (r < 0)
        goto done;
    r = ek_public_key(ctx, p, &ek);
    if (r < 0)
        goto done;
    bool match = EVP_PKEY_eq(X509_get0_pubkey(x), ek) == 1;
    ERR_clear_error();
    if (!match && !force) {
        r = cit_error_set(CIT_E_EK_KEY_MISMATCH,
                          "the certificate is not for this TPM's %s endorsement key", p->algorithm);
        cit_error_cause("its public key differs from the EK the TPM derives from template %s",
                        p->template_id);
        cit_error_step("`--force` stores it anyway (to reproduce a mis-provisioned TPM)");
        goto done;
    }
    r = nv_store_index(t, p->cert_index, der, der_len);
    if (r == 0)
        r = cit__ctx_tpm_sync(ctx);
    if (r == 0) {
        char idx[16];
        hex_index(idx, sizeof idx, p->cert_index);
        json_t *d = json_pack("{s:s,s:s,s:b}", "algorithm", p->algorithm, "nv_index", idx,
                              "matches_ek", match);
        r = cit__store_event(ctx->store, "ek.cert-import", NULL, 0, "ok", d);
        json_decref(d);
        if (r == 0)
            *out = json_pack("{s:s,s:s,s:I,s:b,s:o}", "algorithm", p->algorithm, "nv_index", idx,
                             "size", (json_int_t)der_len, "matches_ek", match, "certificate",
                             cit__ekcert_summary(x));
    }
done:
    EVP_PKEY_free(ek);
    free(der);
    X509_free(x);
    return r;
}

/* ---- ek ca ------------------------------------------------------------------------------------
 */

_public_ int cit_ek_ca(json_t **out, cit_ctx *ctx, const char *output) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    if (ctx->plan) {
        *out = cit__plan("show the workspace's vTPM manufacturer CA (reads the store only)", NULL);
        return 0;
    }
    _cleanup_free_ char *pem = NULL;
    r = cit__store_meta_get(s, "ek_ca_cert", &pem);
    if (r < 0)
        return r;
    if (!pem || !*pem) {
        cit_error_set(CIT_E_BACKEND_UNSUPPORTED_OP,
                      "this workspace has no manufacturer CA of its own");
        cit_error_cause("only a vtpm workspace is its TPM's factory: `init` makes the CA and its "
                        "EK certificates; "
                        "%s",
                        ctx->backend == CIT_BACKEND_VTPM
                            ? "this one was initialised before citadel did that"
                            : "other TPMs' EK certificates come from their "
                              "manufacturer");
        return CIT_E_BACKEND_UNSUPPORTED_OP;
    }
    X509 *x = NULL;
    r = cit__ekcert_parse_any(&x, (const uint8_t *)pem, strlen(pem));
    if (r < 0)
        return cit_error_set(CIT_E_STORE_IO,
                             "the workspace's manufacturer CA certificate is damaged");
    if (output) {
        int w = cit_write_file_atomic(output, (const uint8_t *)pem, strlen(pem), 0644, 0);
        if (w < 0) {
            X509_free(x);
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-w));
            cit_error_context("file", "%s", output);
            return r;
        }
    }
    json_t *j = json_pack("{s:o,s:s}", "certificate", cit__ekcert_summary(x), "private_key",
                          "discarded at init, after issuing the EK certificates");
    if (output)
        json_object_set_new(j, "output", json_string(output));
    else {
        json_object_set_new(j, "pem", json_string(pem));
        json_object_set_new(j, "_text", json_string(pem));
    }
    X509_free(x);
    *out = j;
    return 0;
}

/* ---- ek verify ---------------------------------------------------------------------------------
 */

/* The trust store: ca_path alone when given; else the built-in manufacturer CAs, plus the
 * workspace's own vTPM manufacturer CA. */
static int trust_store(cit_ctx *ctx, const char *ca_path, X509_STORE **out, char *desc,
                       size_t desc_len) {
    X509_STORE *st = X509_STORE_new();
    size_t n = 0;
    int r = 0;
    if (!st)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    if (ca_path) {
        r = cit__ekcert_store_add_path(st, ca_path, &n);
        snprintf(desc, desc_len, "%s (%zu certificate%s)", ca_path, n, n == 1 ? "" : "s");
    } else {
        r = cit__ekcert_store_add_pem(st, cit__ek_vendor_cas, cit__ek_vendor_cas_len, &n);
        size_t vendor = n;
        _cleanup_free_ char *own = NULL;
        if (r == 0 && ctx->store && cit__store_meta_get(ctx->store, "ek_ca_cert", &own) == 0 &&
            own && *own)
            r = cit__ekcert_store_add_pem(st, own, strlen(own), &n);
        cit_error_clear();
        snprintf(desc, desc_len, "built-in manufacturer CAs (%zu certificates)%s", vendor,
                 n > vendor ? " + this workspace's vTPM manufacturer CA" : "");
    }
    if (r < 0) {
        X509_STORE_free(st);
        return r;
    }
    *out = st;
    return 0;
}

_public_ int cit_ek_verify(json_t **out, cit_ctx *ctx, const char *algorithm, const char *ca_path,
                           int *failed) {
    cit_error_clear();
    if (algorithm && !cit__ek_profile(algorithm))
        return unknown_algorithm(algorithm);
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    X509_STORE *trust = NULL;
    char trust_desc[300];
    r = trust_store(ctx, ca_path, &trust, trust_desc, sizeof trust_desc);
    if (r < 0)
        return r;
    if (ctx->plan) {
        X509_STORE_free(trust);
        static const char *const ops[] = {
            "TPM2_NV_Read (the EK certificate)", "TPM2_CreatePrimary (endorsement key)",
            "TPM2_FlushContext", "TPM2_GetCapability (manufacturer, model, version)", NULL};
        *out = cit__plan("verify the EK certificate", ops);
        return 0;
    }
    cit_tpm *t;
    const cit_ek_profile *p = NULL;
    X509 *x = NULL;
    EVP_PKEY *ek = NULL;
    json_t *checks = NULL;
    r = cit__ctx_tpm(ctx, &t);
    if (r == 0)
        r = cit__ek_resolve(ctx, algorithm, &p);
    if (r == 0)
        r = read_cert(ctx, p, &x, NULL, NULL);
    if (r < 0)
        goto done;
    r = ek_public_key(ctx, p, &ek);
    if (r < 0)
        goto done;
    cit_tpm_attrs attrs;
    tpm_attrs(t, &attrs);
    checks = json_array();
    int v = cit__ekcert_verify(checks, x, trust, ek, &attrs);
    char idx[16];
    hex_index(idx, sizeof idx, p->cert_index);
    json_t *j = json_object();
    json_object_set_new(j, "algorithm", json_string(p->algorithm));
    json_object_set_new(j, "nv_index", json_string(idx));
    json_object_set_new(j, "valid", json_boolean(v == 0));
    json_object_set_new(j, "trust_store", json_string(trust_desc));
    json_object_set_new(j, "checks", json_incref(checks));
    json_object_set_new(j, "tpm",
                        json_pack("{s:s,s:s,s:s}", "manufacturer", attrs.manufacturer, "model",
                                  attrs.model, "version", attrs.version));
    json_object_set_new(j, "certificate", cit__ekcert_summary(x));
    if (v < 0) {
        char code[16];
        cit_code_format(code, sizeof code, v);
        size_t i;
        json_t *c;
        json_array_foreach(
            checks, i,
            c) if (strcmp(json_string_value(json_object_get(c, "verdict")), "fail") == 0) {
            json_object_set(j, "failed_check", json_object_get(c, "check"));
            break;
        }
        json_object_set_new(j, "code", json_string(code));
    }
    *out = j;
    *failed = v;
done:
    json_decref(checks);
    EVP_PKEY_free(ek);
    X509_free(x);
    X509_STORE_free(trust);
    return r;
}
