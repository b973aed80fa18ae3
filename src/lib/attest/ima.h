/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IMA runtime measurement lists (Linux integrity measurement architecture): the binary list
 * (/sys/kernel/security/ima/binary_runtime_measurements[_sha256...]) and the ASCII one, parsed
 * with bounds, shown and replayed into PCR values. Internal to libcitadel.
 *
 * Binary record (host byte order; big-endian lists are recognised): PCR (u32), template hash
 * (20 bytes, or the _shaNNN list's size), template name length (u32, <= 255) and name, then
 * for every template but "ima" the template data length (u32) and data: each field as a u32
 * length and its bytes. For "ima" (the pre-3.13 format): the 20-byte digest, a u32 length and
 * the file name.
 *
 * The kernel extends PCR[pcr] with the template hash, which is H(template data) in each bank
 * (for "ima": H(digest || name padded to 256 bytes)); a measurement violation is recorded with
 * an all-zero template hash but extends all ones.
 */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CIT_IMA_MAX (64u << 20)
#define CIT_IMA_MAX_ENTRY (1u << 20) /* template data of one entry */

/* name: shown as "file"; it also hints the binary list's bank (a "_sha256" suffix). */
int cit__ima_show_buf(json_t **out, const uint8_t *buf, size_t len, uint32_t pcr_mask, const char *name);
int cit__ima_replay_buf(json_t **out, const uint8_t *buf, size_t len, const char *name);
