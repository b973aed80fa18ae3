/* SPDX-License-Identifier: Apache-2.0 */
/* Key helpers shared inside libcitadel (doctor, export, later attestation). */
#pragma once
#include <jansson.h>
#include <tss2/tss2_esys.h>

#include "core/ctx.h"

int cit__key_template(TPM2B_PUBLIC *pub, const char *algorithm, const char *usage);
const char *cit__key_default_hash(const char *algorithm);
/* TPM name (nameAlg || H(TPMT_PUBLIC)); out holds sizeof(TPMU_NAME)+2. */
int cit__name_from_public(const TPM2B_PUBLIC *pub, uint8_t *out, size_t *out_len);
int cit__public_unmarshal(const cit_object_version *v, TPM2B_PUBLIC *pub);
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
