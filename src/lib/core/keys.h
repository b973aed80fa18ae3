/* SPDX-License-Identifier: Apache-2.0 */
/* Key helpers shared inside libcitadel (doctor, export, later attestation). */
#pragma once
#include <jansson.h>
#include <openssl/evp.h>
#include <tss2/tss2_esys.h>

#include "core/ctx.h"

int cit__key_template(TPM2B_PUBLIC *pub, const char *algorithm, const char *usage);
const char *cit__key_default_hash(const char *algorithm);
/* TPM name (nameAlg || H(TPMT_PUBLIC)); out holds sizeof(TPMU_NAME)+2. */
int cit__name_from_public(const TPM2B_PUBLIC *pub, uint8_t *out, size_t *out_len);
int cit__public_unmarshal(const cit_object_version *v, TPM2B_PUBLIC *pub);
/* Fills v's public, private and name (allocated; cit__version_clear frees) from a TPM object. */
int cit__version_set_tpm(cit_object_version *v, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv);
int cit__require_kind(const cit_object *o, const char *kind);
int cit__require_active(const cit_object *o);
/* Loads a version of o (and its parent chain); unload with cit__key_unload. */
int cit__key_load(cit_ctx *ctx, const cit_object *o, int version, ESYS_TR *out, bool *persistent);
void cit__key_unload(cit_ctx *ctx, ESYS_TR *h, bool persistent);
int cit__digest_file(TPMI_ALG_HASH alg, const char *path, uint64_t max, uint8_t *md, size_t *mdlen);
/* Appends {"id","path"} of every object below id (children before their parents). */
int cit__collect_dependents(cit_store *s, int64_t id, json_t *acc, int depth);
/* Reads a password file (at most 32 bytes, one trailing newline dropped) into out. */
int cit__read_auth(const char *file, TPM2B_AUTH *out);
/* NV: the index an "nv" object defines (0 if none); undefine it (0 when already gone). */
uint32_t cit__nv_handle_of(const cit_object *o);
int cit__nv_undefine(cit_ctx *ctx, uint32_t handle);
/* PCRs: the values of the PCRs in mask (bit i = PCR i) of bank as hex strings in values[24]
 * (free with cit__pcr_values_free); "0,7" / "0-7" lists to masks. */
int cit__pcr_read(cit_tpm *t, TPMI_ALG_HASH bank, uint32_t mask, char *values[24]);
void cit__pcr_values_free(char *values[24]);
int cit__pcr_parse_list(const char *s, uint32_t *mask);
/* Reads an input file of at most max bytes ("-" = stdin), recording the standard errors:
 * CIT_E_INPUT_TOO_LARGE, CIT_E_INPUT_READ, CIT_E_INPUT_EMPTY (unless allow_empty). what names
 * it in messages ("the secret"). *out is NUL-terminated; free it (wipe it first if secret). */
int cit__read_input(const char *path, size_t max, const char *what, bool allow_empty, uint8_t **out, size_t *len);
/* Checks cit_key_sign_options' in-memory input (data, data_len): not with a file, not empty,
 * within the signing limit. CIT_E_USAGE, CIT_E_INPUT_EMPTY, CIT_E_INPUT_TOO_LARGE. */
int cit__sign_data_check(const cit_key_sign_options *opt);
/* Signs a digest with o's current version: loads it, satisfies its stored policy in a policy
 * session when it has one, uses its password (auth_file) when it has one. */
int cit__key_sign_digest(cit_ctx *ctx, const cit_object *o, TPMI_ALG_HASH halg, const uint8_t *md, size_t mdlen,
                         const char *auth_file, TPMT_SIGNATURE **sig);
/* A policy session that satisfies o's stored policy (metadata "policy_json"); ESYS_TR_NONE
 * when o has none. The session ends with the command that uses it. */
int cit__object_policy_session(cit_ctx *ctx, const cit_object *o, ESYS_TR *sess);
/* The policy for a new object: a stored one (policy_name), or built from pcrs (values now) with
 * auth_value when auth, and authorized_by an authority identity. *pol NULL when none is asked
 * for; else *pol (resolved) and *digest_hex are the caller's. */
int cit__policy_for_object(cit_ctx *ctx, const char *path, const char *pcrs, const char *bank, const char *policy_name,
                           const char *authorized_by, bool auth, json_t **pol, char **digest_hex);
/* authorized_by: {"authority"} gets the authority identity's "name" and "public" (hex). */
int cit__authority_resolve(cit_ctx *ctx, json_t *authorized_by);
/* Loads a stored policy: *policy (resolved) and *digest_hex are the caller's. */
int cit__policy_load(cit_ctx *ctx, const char *name, json_t **policy, char **digest_hex);
/* Creates a key (cit_key_create) with a policy (resolved, or NULL) and extra metadata merged in. */
int cit__key_create_ex(json_t **out, cit_ctx *ctx, const cit_key_create_options *opt, json_t *policy,
                       const char *policy_digest_hex, json_t *extra);
/* The key's password when it has one: CIT_E_AUTH_FAIL when it has one and auth_file is NULL,
 * CIT_E_USAGE when it has none and auth_file is given. auth must be wiped by the caller. */
int cit__key_need_auth(const cit_object *o, const char *auth_file, TPM2B_AUTH *auth);
/* A version's public key details for results: version, tpm_name, created, fingerprint_sha256
 * and, with with_pem, public_key_pem. */
json_t *cit__key_version_json(const cit_object *o, const cit_object_version *v, bool with_pem);
/* A version's public key (TPM public area, or the payload of an ed25519 key). */
int cit__key_version_pubkey(const cit_object *o, const cit_object_version *v, EVP_PKEY **out);
/* Sign approvals (approvals.c): under a profile that requires them, records a pending request
 * and fails with CIT_E_APPROVAL_REQUIRED (approval <= 0), or checks that request `approval`
 * is approved for this key version and digest. 0 when signing may go ahead. */
int cit__approval_gate(cit_ctx *ctx, const cit_object *o, TPMI_ALG_HASH halg, const uint8_t *md, size_t mdlen,
                       int64_t approval);
/* Marks an approved request used (after the signature was made). */
int cit__approval_consume(cit_ctx *ctx, int64_t approval);
/* CIT_E_HAS_DEPENDENTS when o is an authority identity that authorizes others (what: the
 * action refused, for the message). */
int cit__authority_guard(cit_ctx *ctx, const cit_object *o, const char *what);
/* Whether o is an authority identity (its signatures are PolicyAuthorize approvals). */
bool cit__is_authority(const cit_object *o);
/* Whether o is an identity with usage "audit": it signs audit checkpoints only. */
bool cit__is_audit_signer(const cit_object *o);
/* Whether o is an identity with usage tls-server or tls-client. */
bool cit__is_tls_identity(const cit_object *o);
/* Compares a baseline with PCR values given as {bank: {index: hex}} (a quote's):
 * {"baseline","bank","unchanged","changed":[{"index","baseline","quoted"}]}. */
int cit__baseline_compare(cit_ctx *ctx, const char *name, const json_t *pcrs, json_t **out);
/* The PolicyAuthorize approvals (policy approve) whose PCR values all equal the given ones
 * ({bank: {index: hex}}, a verified quote's): [{authority, approval, approved}]. -1 (nothing
 * recorded) when the context has no workspace. */
int cit__approvals_covering(cit_ctx *ctx, const json_t *pcrs, json_t **out);
/* A free citadel persistent handle (0x81000100-0x810001ff); evict one (0 when already gone). */
int cit__free_persistent_handle(cit_ctx *ctx, uint32_t *out);
int cit__evict_handle(cit_ctx *ctx, uint32_t handle);
/* A distinguished name from "/CN=a/O=b" or "CN=a,O=b" (identities.c). *out is the caller's.
 * CIT_E_USAGE (bad component, empty), CIT_E_INPUT_TOO_LARGE. Needs <openssl/x509.h>. */
typedef struct X509_name_st X509_NAME;
int cit__x509_name_parse(const char *subject, X509_NAME **out);
/* Whether o is the TPM-held key of a certificate authority (ca.c): it signs certificates and
 * CRLs only. */
bool cit__is_ca_key(const cit_object *o);
/* CIT_E_HAS_DEPENDENTS when o is the key or key-encryption key of a CA (what: the action
 * refused, for the message): deleting, rotating or renaming it would strand the CA. */
int cit__ca_guard(cit_ctx *ctx, const cit_object *o, const char *what);
