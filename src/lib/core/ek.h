/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The endorsement key (EK) as the TCG EK Credential Profile defines it: the primary key the
 * TPM derives in the endorsement hierarchy from a standard template, and its certificate in
 * NV. Shared inside libcitadel (ek show/cert/verify, the vTPM factory at init, credential
 * activation).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <tss2/tss2_esys.h>

#include "core/ctx.h"

typedef struct cit_ek_profile {
    const char *algorithm;   /* "rsa-2048", "ecc-p256", "ecc-p384", "rsa-3072" */
    const char *template_id; /* the profile's name for it: "L-1", "L-2", "H-3", "H-6" */
    TPMI_ALG_PUBLIC type;
    uint16_t rsa_bits;
    TPMI_ECC_CURVE curve;
    TPMI_ALG_HASH name_alg;
    uint16_t aes_bits;
    bool high_range;         /* userWithAuth and PolicyB (PolicySecret OR PolicyAuthorizeNV) */
    uint32_t cert_index;     /* the EK certificate's NV index */
    uint32_t nonce_index;    /* low range only: an EK nonce (0 = none) */
    uint32_t template_index; /* an EK template the platform may have written */
} cit_ek_profile;

/* The profile for an algorithm name (NULL, nothing recorded, when unknown). */
const cit_ek_profile *cit__ek_profile(const char *algorithm);
/* The profile for an algorithm name; NULL picks the first algorithm whose EK certificate is in
 * NV (rsa-2048, ecc-p256, ecc-p384, rsa-3072), else rsa-2048. CIT_E_USAGE for unknown names. */
int cit__ek_resolve(cit_ctx *ctx, const char *algorithm, const cit_ek_profile **out);

/* The TCG default template of p (what `tpm2_createek` uses), authPolicy included. */
void cit__ek_default_template(const cit_ek_profile *p, TPM2B_PUBLIC *out);
/* PolicyA (PolicySecret(TPM_RH_ENDORSEMENT)) and PolicyB (PolicyOR of PolicyA and PolicyC)
 * digests for hash alg (sha256 or sha384). 0 or CIT_E_ALG_UNSUPPORTED. */
int cit__ek_policy_a(TPMI_ALG_HASH alg, TPM2B_DIGEST *out);
int cit__ek_policy_b(TPMI_ALG_HASH alg, TPM2B_DIGEST *out);

/* Creates the EK of `algorithm` (NULL: as cit__ek_resolve) with TPM2_CreatePrimary in the
 * endorsement hierarchy: from the EK template in NV when the platform wrote one (with the EK
 * nonce for the low range), else from the profile's default template. *handle is a transient
 * object the caller flushes (cit__tpm_flush); *pub its public area. The cached key of ctx is
 * flushed first, so a TPM without a resource manager has the slot. The EK's authPolicy must be
 * satisfied in a policy session (cit__ek_policy_session) for ActivateCredential and the like:
 * the low range EKs have no userWithAuth at all. */
int cit__ek_load(cit_ctx *ctx, const char *algorithm, ESYS_TR *handle, TPM2B_PUBLIC *pub);
/* Starts a policy session (hash: the EK's nameAlg) and satisfies the EK's authPolicy with
 * PolicySecret(TPM_RH_ENDORSEMENT, empty endorsement auth), then for a high-range EK
 * PolicyOR(PolicyA, PolicyC). The session ends with the command that uses it (continueSession
 * clear); flush it yourself if that command is not sent. CIT_E_POLICY_FAIL when the EK's
 * authPolicy is neither PolicyA nor PolicyB (a non-standard template). */
int cit__ek_policy_session(cit_ctx *ctx, const TPM2B_PUBLIC *ek_pub, ESYS_TR *session);

/* The vTPM factory, run by init on the vtpm backend: a manufacturer CA (ECC P-256) made in
 * memory, EK certificates for rsa-2048, ecc-p256 and ecc-p384 issued by it and written to
 * their NV indices (owner-defined, readable without authorization). The CA's private key is
 * freed (wiped) before returning: only its certificate survives, *ca_pem (the caller's). */
int cit__ek_factory(cit_ctx *ctx, const char *workspace_id, char **ca_pem, json_t **summary);
