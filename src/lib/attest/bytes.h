/* SPDX-License-Identifier: Apache-2.0 */
/* Little-endian reads, a bounded text builder and error context for the event log and IMA
 * parsers. Internal. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "citadel/error.h"

/* Adds the file name to an error from a parser (r < 0); returns r. */
static inline int cit__with_file(int r, const char *file) {
    if (r < 0)
        cit_error_context("file", "%s", file);
    return r;
}

static inline uint16_t cit__le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t cit__le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t cit__le64(const uint8_t *p) { return cit__le32(p) | ((uint64_t)cit__le32(p + 4) << 32); }

/* A text builder over a caller's fixed buffer: appends what fits and marks the cut with "...". */
typedef struct cit__sbuf {
    char *p;
    size_t cap, len;
    bool cut;
} cit__sbuf;

static inline void cit__sb_init(cit__sbuf *b, char *p, size_t cap) {
    b->p = p;
    b->cap = cap;
    b->len = 0;
    b->cut = false;
    if (cap)
        p[0] = 0;
}

__attribute__((format(printf, 2, 3))) static inline void cit__sb_printf(cit__sbuf *b, const char *fmt, ...) {
    if (b->cut || b->cap < 4)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        /* cut on a UTF-8 boundary and mark it */
        size_t end = b->cap - 4;
        while (end > 0 && ((unsigned char)b->p[end] & 0xC0) == 0x80)
            end--;
        memcpy(b->p + end, "...", 4);
        b->len = end + 3;
        b->cut = true;
        return;
    }
    b->len += (size_t)n;
}
