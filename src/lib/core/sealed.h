/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sealed data objects: TPM keyed-hash objects under the storage primary key that hold up to
 * CIT_SEAL_DIRECT_MAX bytes the TPM gives back only to an authorized TPM2_Unseal. Shared by
 * sealed secrets (secrets.c) and TPM-sealed Ed25519 seeds (ed25519.c). Both directions travel
 * in sessions salted with the storage key with parameter encryption, so the data never crosses
 * the TPM interface in clear (swtpm, devices; the in-process TPM has no such interface, and
 * there the salt is skipped).
 */
#pragma once
#include <jansson.h>
#include <tss2/tss2_esys.h>

#include "core/ctx.h"

#define CIT_SEAL_DIRECT_MAX 128 /* MAX_SYM_DATA of the TPMs we meet (libtpms: 128) */

/* Seals data (1..CIT_SEAL_DIRECT_MAX bytes) in a new keyed-hash object under the storage key
 * (checked against the one recorded at init). auth_policy (NULL or size 0: none) makes a policy
 * session satisfying it the only way to unseal; without one the password auth (may be empty)
 * does (userWithAuth). A non-empty auth also makes the object dictionary-attack protected.
 * Fills v->pub, v->priv, v->name (the caller's; cit__version_clear). path is for messages. */
int cit__seal_data(cit_ctx *ctx, const char *path, const uint8_t *data, size_t len,
                   const TPM2B_DIGEST *auth_policy, const TPM2B_AUTH *auth, cit_object_version *v);

/* Unseals the current version of o into out (cap bytes; *out_len the length). meta is o's
 * parsed metadata: "policy" ({"bank","pcrs":{"7":hex}}, PolicyPCR form of sealed secrets) or
 * "policy_json" (a resolved policy) says which policy session to run; neither: an HMAC
 * session. auth is the object's password (size 0: none). Errors: CIT_E_POLICY_FAIL naming the
 * PCRs that changed, CIT_E_AUTH_FAIL (wrong password, lockout), CIT_E_KEY_LOAD, ... Nothing
 * stays loaded afterwards; out is wiped on failure. */
int cit__unseal_data(cit_ctx *ctx, const cit_object *o, const json_t *meta, const TPM2B_AUTH *auth,
                     uint8_t *out, size_t cap, size_t *out_len);

/* Internal key-encryption keys (KEKs): 32 random bytes sealed in the TPM as a store object of
 * kind "secret" whose algorithm ends in "-kek" ("audit-kek", "ca-kek"). They wrap other keys
 * (audit data keys, CA private keys) and never leave libcitadel: `secret unseal` refuses them. */
#define CIT_KEK_BYTES 32
/* Seals a new random KEK (path for messages); fills v (the caller's; cit__version_clear).
 * kek_out (NULL, or CIT_KEK_BYTES of the caller's locked memory) gets a copy of the KEK. */
int cit__kek_seal_new(cit_ctx *ctx, const char *path, uint8_t *kek_out, cit_object_version *v);
/* Unseals version `version` of KEK object o into kek (CIT_KEK_BYTES, caller's locked memory). */
int cit__kek_unseal(cit_ctx *ctx, cit_object *o, int version, uint8_t *kek);
/* Whether o is an internal KEK (refused by `secret unseal`). */
bool cit__kek_is_internal(const cit_object *o);
