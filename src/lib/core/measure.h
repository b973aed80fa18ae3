/* SPDX-License-Identifier: Apache-2.0 */
/* The Measured Merkle Anchor (measure.c), shared inside libcitadel. docs/mma.md. */
#pragma once
#include <jansson.h>
#include <stdint.h>

#include "core/ctx.h"

/* Writes an authority's approval into the audit log before `policy approve` stores it: a
 * `measure.approval` entry in the `measure` stream when the approved PCRs include one that
 * measure checkpoints extend (with the replayed value, so the log shows which measured state was
 * approved), else `policy.approve` in the `default` stream. pcrs: [{index, bank, value}].
 * *seqno and *event (static) name the entry. Errors: those of cit_audit_append_batch (a rolled
 * back log refuses, and then nothing is approved). */
int cit__measure_record_approval(cit_ctx *ctx, const char *authority,
                                 const char *authority_name_hex, const json_t *pcrs,
                                 const char *policy_digest_hex, const char *policy_ref_hex,
                                 const uint8_t *sig, size_t sig_len, int64_t *seqno,
                                 const char **event, json_t **anchor);
