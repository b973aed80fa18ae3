/* SPDX-License-Identifier: Apache-2.0 */
/*
 * YAML policies (docs/policy.md): parsed strictly (every error with its line and column) into a
 * canonical JSON form, resolved against the TPM (PCR values that were left out take the values
 * now), compiled to a TPM policy digest in software, and run in real policy sessions.
 */
#pragma once
#include <jansson.h>
#include <tss2/tss2_esys.h>

#include "citadel/citadel.h"
#include "tpm/tpm.h"

#define CIT_POLICY_MAX (64u * 1024)

/* Parses YAML text into the canonical form {"name":..,"requires":{..}}. CIT_E_POLICY_INVALID
 * (with "line"/"column" context), CIT_E_INPUT_TOO_LARGE. */
int cit__policy_parse(json_t **out, const char *text, size_t len);
/* Compiles and stores a policy cit__policy_parse made of text (the stored source), as
 * cit_policy_compile does (core/policies.c): for a caller that parsed it already. */
int cit__policy_compile_parsed(json_t **out, cit_ctx *ctx, json_t *pol, const char *text, bool replace);
/* Fills PCR values that were left out with the TPM's current ones (CIT_E_BANK_UNSUPPORTED when
 * the TPM has no such bank). */
int cit__policy_resolve(json_t *policy, cit_tpm *t);
/* The policy digest (SHA-256) of a resolved policy. */
int cit__policy_digest(const json_t *policy, TPM2B_DIGEST *out);
/* Runs the policy's assertions in a policy session. checks (may be NULL) gets one
 * {"assertion","status","detail"} per assertion. CIT_E_POLICY_FAIL when the TPM refuses one.
 * env is the cit_ctx (approvals for authorized_by come from its store). */
int cit__policy_run(cit_tpm *t, const json_t *policy, ESYS_TR session, json_t *checks, void *env);
/* The digest of a PCR assertion ([{"index","bank","value"}...]) alone: what an authority approves. */
int cit__policy_pcr_digest(const json_t *pcrs, TPM2B_DIGEST *out);
/* The policyRef that binds an approval to a PCR selection (docs/identities.md). */
int cit__policy_approval_ref(const json_t *pcrs, TPM2B_DIGEST *ref);
/* authorized_by (in core/identities.c): finds the authority's approval of the policy digest now
 * (`now`, after PolicyPCR over pcrs), has the TPM verify its signature and runs
 * TPM2_PolicyAuthorize. Without a matching approval the newest one is tried, so the refusal
 * comes from the TPM. */
int cit__policy_authorize(void *env, cit_tpm *t, ESYS_TR session, const json_t *authorized_by, const json_t *pcrs,
                          const TPM2B_DIGEST *now, json_t *checks);
/* Appends {"assertion","status","detail"} to checks (when not NULL): policy test's report. */
void cit__policy_check(json_t *checks, const char *assertion, bool ok, const char *detail);
/* Whether the policy asks for the object's auth value (PolicyAuthValue). */
bool cit__policy_needs_auth(const json_t *policy);
/* Plain-language description. */
char *cit__policy_explain(const json_t *policy);
