/* SPDX-License-Identifier: Apache-2.0 */
/* Quote verification on a quote already in memory (inside libcitadel and its benchmarks). */
#pragma once
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"

/* cit_attest_verify on the quote JSON in buf (len bytes; quote_file names it in messages), which
 * is what cit_attest_verify runs after reading the file. The AK trusted is ak_key when given (a
 * key the caller parsed once, borrowed; reported as ak_pub_file), else the PEM file ak_pub_file,
 * else the key in the quote. */
int cit__attest_verify_buf(json_t **out, cit_ctx *ctx, const char *quote_file, const uint8_t *buf, size_t len,
                           const char *nonce_hex, EVP_PKEY *ak_key, const char *ak_pub_file, const char *baseline,
                           const char *eventlog, bool *valid);

/* cit_attest_credential_make with the EK key (borrowed) and the secret (1..64 bytes) in memory:
 * *out as cit_attest_credential_make's without output, the credential JSON under "credential". */
int cit__attest_credential_make_mem(json_t **out, EVP_PKEY *ek, const char *ak_name_hex, const uint8_t *secret,
                                    size_t secret_len);

/* Loads the current version of the AK o as a transient object, ignoring its persistent handle:
 * *h is transient, flush it. from_blob: from its wrapped blob under its EK, never from a context
 * kept on the vTPM (repair tests and re-persists the blob itself); otherwise a kept context is
 * used when the TPM takes it back and its name is the AK's. */
int cit__ak_load_transient(cit_ctx *ctx, const cit_object *o, bool from_blob, ESYS_TR *h);
