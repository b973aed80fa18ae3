/* SPDX-License-Identifier: Apache-2.0 */
/* Store-versus-TPM repair, shared inside libcitadel (repair.c, gc.c, playbooks.c, init). */
#pragma once
#include <jansson.h>
#include <stdbool.h>

#include "core/ctx.h"

/* Citadel's NV index range (nv define picks from it). */
#define CIT_NV_FIRST 0x01300000u
#define CIT_NV_LAST 0x013000ffu

/* The TPM name of this TPM's ECC P-256 endorsement key (TCG template L-2, or the platform's
 * template from NV), as hex (the caller's). TPM2_Clear keeps the endorsement seed, so this name
 * tells a cleared TPM from another TPM. */
int cit__ek_fingerprint(cit_ctx *ctx, char **hex);

/* Whether the storage primary key is the one recorded at init: 0 when it is; 1 when it is
 * missing or different (*state: "tpm-cleared" when the endorsement key is the recorded one,
 * "tpm-replaced" when it differs, "unproven" when none was recorded); negative when the TPM
 * cannot be asked (errors recorded). */
int cit__repair_srk_state(cit_ctx *ctx, const char **state);

/* The repair scan as a result tree: {"findings": [...], "operations": [...], "skipped": [...],
 * "needs_repair": n}. Reads only. */
int cit__repair_scan(cit_ctx *ctx, bool include_foreign, bool accept_cleared, json_t **out);
