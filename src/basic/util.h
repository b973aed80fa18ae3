/* SPDX-License-Identifier: Apache-2.0 */
/* libc-only helpers: hex, checked number parsing, object path rules, bounded file I/O. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hex encode len bytes into a newly allocated NUL-terminated string (lowercase). NULL on OOM. */
char *cit_hex_encode(const uint8_t *buf, size_t len);
/* Writes v big-endian (TPM byte order) at p. */
static inline void cit_put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
/* Decode hex (even length, case-insensitive, no separators) into a new buffer.
 * Returns 0, -EINVAL on bad input, -ENOMEM. */
int cit_hex_decode(uint8_t **out, size_t *out_len, const char *hex);

/* Checked parsers: the whole string must be a number in range. 0 or -EINVAL/-ERANGE. */
int cit_parse_u32(const char *s, uint32_t *out);
int cit_parse_u64(const char *s, uint64_t *out);

/* Object path rules: [a-z0-9._-]+(/[a-z0-9._-]+)*, at most 255 bytes, no "." or ".."
 * components. Returns NULL when valid, else a static string saying why. */
const char *cit_path_invalid_reason(const char *path);
#define CIT_PATH_MAX 255

/* Read a whole file (or "-" for stdin) of at most max bytes.
 * Returns 0, or -errno (-EFBIG when larger than max). *out is NUL-terminated for convenience. */
int cit_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len);
/* Write a file atomically (temp file + rename) with the given mode; "-" writes stdout.
 * CIT_WRITE_DURABLE also fdatasyncs before the rename (state that must survive a crash);
 * without it a crash may lose the new file but never leaves a torn one in its place.
 * Returns 0 or -errno. */
#define CIT_WRITE_DURABLE 1u
int cit_write_file_atomic(const char *path, const uint8_t *buf, size_t len, unsigned mode, unsigned flags);
/* Replaces a file that is rewritten often (the vTPM state, the audit head) as a whole, keeping its
 * previous version as <path>.swap: the swap file is rewritten in place (fdatasync'd with
 * CIT_WRITE_DURABLE) and the two names are exchanged (renameat2 RENAME_EXCHANGE). A reader finds the
 * old or the new file whole, as with cit_write_file_atomic, without a new inode per write. The
 * caller serialises writers (one swap file); the previous contents stay in the swap file, so it is
 * created with mode like the file. The first write (no file yet) and file systems without the
 * exchange use a plain rename. 0 or -errno.
 * The exchange itself is synced only with CIT_WRITE_SYNC_NAME (an fsync of the directory, which
 * commits the journal). Without it a power loss can tear the file: the file system may still name
 * as <path> the inode the next write rewrites in place (the other name then holds the version
 * before it whole), so the reader must detect a torn file, or the file must fit in one sector.
 * Whatever is at <path>.swap and is not a regular file of ours with one link (a symlink, which the
 * exchange leaves there when <path> was one) is replaced, never written through. */
#define CIT_WRITE_SYNC_NAME 2u
int cit_write_file_swap(const char *path, const uint8_t *buf, size_t len, unsigned mode, unsigned flags);

/* Length of the UTF-8 sequence at p (valid, shortest form, no surrogates, at most U+10FFFF,
 * within avail bytes; avail >= 1), or 0 when there is none. */
size_t cit_utf8_len(const unsigned char *p, size_t avail);

/* Monotonic time in microseconds. */
uint64_t cit_now_usec(void);
/* Wall-clock time as an RFC 3339 UTC string into buf (at least 32 bytes). */
void cit_time_rfc3339(char *buf, size_t len, int64_t unix_seconds);

/* Wipe memory in a way the compiler will not optimise away. */
void cit_memzero(void *p, size_t len);
