/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ed25519 keys whose seed the TPM seals (docs/ed25519.md): the parts of key create, sign,
 * verify, export, rotate that differ for them, backup/restore, and the unseal the session cache
 * (keycache.c) shares. Internal to libcitadel.
 */
#pragma once
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>

#include "core/ctx.h"

#define CIT_ED25519_SEED_BYTES 32
#define CIT_ED25519_SK_BYTES 64                     /* libsodium's form: seed || public key */
#define CIT_ED25519_MESSAGE_MAX (64u * 1024 * 1024) /* Ed25519 signs the message itself */

/* sodium_init() once per process (thread-safe). CIT_E_INTERNAL when libsodium cannot start. */
int cit__sodium_init(void);
bool cit__is_ed25519(const cit_object *o);
/* The public key of a version (its 32-byte payload) as an EVP_PKEY. */
int cit__ed25519_pubkey(EVP_PKEY **out, const cit_object_version *v);
/* Unseals the current version of o (policy session, password from auth_file) and expands it:
 * sk (64 bytes, libsodium's seed || public key) must be sodium_malloc'd memory the caller
 * owns. The public key derived from the seed is checked against the stored one
 * (CIT_E_STORE_INCONSISTENT when they differ). sk is wiped on failure. */
int cit__ed25519_unseal_sk(cit_ctx *ctx, const cit_object *o, const char *auth_file, uint8_t *sk);

/* CIT_E_PROFILE_VIOLATION when the active profile requires an approval for every signature: then
 * what ("a backup", "the session cache") would sign without one. */
int cit__ed25519_refuse_unapproved(cit_ctx *ctx, const char *what);
int cit__ed25519_create(json_t **out, cit_ctx *ctx, const cit_key_create_options *opt);
int cit__ed25519_sign(json_t **out, cit_ctx *ctx, const cit_object *o,
                      const cit_key_sign_options *opt);
int cit__ed25519_verify(json_t **out, cit_ctx *ctx, const cit_object *o, const char *input,
                        const char *signature, const char *digest, const char *encoding,
                        int version);
int cit__ed25519_rotate(json_t **out, cit_ctx *ctx, cit_object *o, const char *auth_file);
