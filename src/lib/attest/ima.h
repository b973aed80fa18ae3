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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CIT_IMA_MAX (64u << 20)
#define CIT_IMA_MAX_ENTRY (1u << 20) /* template data of one entry */

/* name: shown as "file"; it also hints the binary list's bank (a "_sha256" suffix). */
int cit__ima_show_buf(json_t **out, const uint8_t *buf, size_t len, uint32_t pcr_mask, const char *name);
int cit__ima_replay_buf(json_t **out, const uint8_t *buf, size_t len, const char *name);

/* One entry of the list that names a file, for cit__ima_each_file. Pointers are into the list (or
 * the parser's scratch) and valid only during the callback. */
typedef struct cit__ima_file {
    uint32_t index, pcr;
    const char *template_name;
    char alg[16];          /* the file digest's algorithm: "sha256" (d-ng prefix), "sha1" (legacy) */
    const uint8_t *digest; /* the file digest (all zero for a violation) */
    size_t digest_len;
    const uint8_t *path; /* not NUL-terminated */
    size_t path_len;
    bool violation; /* the template hash is all zero (ToMToU, open writers) */
} cit__ima_file;

/* Calls fn for every entry whose file digest and path are known (ima-ng, ima-sig, ima-buf and
 * the legacy template, binary or ASCII), in list order. A non-zero return from fn stops the walk
 * and is returned; CIT_E_IMA_MALFORMED (and the parser's other errors) as for show. For
 * `measure enroll --verify-ima`. */
int cit__ima_each_file(const uint8_t *buf, size_t len, const char *name,
                       int (*fn)(void *env, const cit__ima_file *f), void *env);
