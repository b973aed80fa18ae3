/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IMA runtime measurement lists: bounded parsing of the binary and ASCII forms, show, and
 * replay into PCR values. Format notes are in ima.h and docs/attestation.md.
 */
#include "attest/ima.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/bytes.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/citadel.h"
#include "core/keys.h"
#include "crypto/crypto.h"

#define NAME_MAX_LEN 255   /* TCG_EVENT_NAME_LEN_MAX: template names and legacy file names */
#define IMA_NAME_FIELD 256 /* IMA_EVENT_NAME_LEN_MAX + 1: the legacy name as hashed */
#define PCRS 24

typedef struct ima_parser {
    const uint8_t *buf;
    size_t len, pos;
    bool ascii, be;
    uint16_t dsize; /* binary: the template hash size of this list */
    uint32_t index;
    size_t line;
    uint8_t *scratch; /* rebuilt template data (ASCII lines, legacy entries) */
    size_t scap;
} ima_parser;

typedef struct ima_entry {
    uint32_t index;
    size_t offset, line;
    uint32_t pcr;
    uint8_t digest[64];
    uint16_t dsize;
    char tname[NAME_MAX_LEN + 1];
    const uint8_t *tdata; /* what the template hash covers, when known */
    size_t tlen;
    bool tdata_known;
    /* decoded fields, pointing into the list or scratch */
    const uint8_t *fd_prefix; /* "sha256:" (d-ng) or NULL (legacy sha1) */
    size_t fd_prefix_len;
    const uint8_t *fd;
    size_t fdlen;
    const uint8_t *path;
    size_t path_len;
    const uint8_t *sig; /* sig (ima-sig) or buf (ima-buf) */
    size_t siglen;
    const char *third; /* "signature" or "buffer", NULL when the template has no third field */
    uint32_t nfields;
} ima_entry;

__attribute__((format(printf, 2, 3))) static int malformed(const ima_parser *p, const char *fmt, ...) {
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (p->ascii) {
        cit_error_set(CIT_E_IMA_MALFORMED, "malformed IMA list: line %zu: %s", p->line, why);
        cit_error_cause("entries are numbered from 0; entry %u is on line %zu of the ASCII list", p->index, p->line);
        cit_error_context("line", "%zu", p->line);
    } else {
        cit_error_set(CIT_E_IMA_MALFORMED, "malformed IMA list: entry %u at offset %zu: %s", p->index, p->pos, why);
        cit_error_cause("entries are numbered from 0; entry %u starts at byte %zu of the %zu-byte list", p->index,
                        p->pos, p->len);
        cit_error_context("offset", "%zu", p->pos);
    }
    cit_error_context("entry_index", "%u", p->index);
    return CIT_E_IMA_MALFORMED;
}

static bool scratch_reserve(ima_parser *p, size_t n) {
    if (n <= p->scap)
        return true;
    size_t cap = p->scap ? p->scap : 1024;
    while (cap < n)
        cap *= 2;
    uint8_t *s = realloc(p->scratch, cap);
    if (!s)
        return false;
    p->scratch = s;
    p->scap = cap;
    return true;
}

static uint32_t rd32(const ima_parser *p, const uint8_t *q) {
    return p->be ? ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3] : cit__le32(q);
}
static void wr32(const ima_parser *p, uint8_t *q, uint32_t v) {
    if (p->be) {
        q[0] = (uint8_t)(v >> 24), q[1] = (uint8_t)(v >> 16), q[2] = (uint8_t)(v >> 8), q[3] = (uint8_t)v;
    } else {
        q[0] = (uint8_t)v, q[1] = (uint8_t)(v >> 8), q[2] = (uint8_t)(v >> 16), q[3] = (uint8_t)(v >> 24);
    }
}

/* The file digest field d-ng / d-ngv2: "[type:]alg:" NUL digest. */
static void split_digest_field(ima_entry *e, const uint8_t *f, size_t n) {
    const uint8_t *nul = memchr(f, 0, n);
    if (nul && nul > f && nul[-1] == ':') {
        e->fd_prefix = f;
        e->fd_prefix_len = (size_t)(nul - f);
        e->fd = nul + 1;
        e->fdlen = n - (size_t)(nul - f) - 1;
    } else {
        e->fd_prefix = NULL;
        e->fd = f;
        e->fdlen = n;
    }
}

static const char *third_field(const char *tname) {
    if (strcmp(tname, "ima-sig") == 0 || strcmp(tname, "ima-sigv2") == 0 || strcmp(tname, "ima-modsig") == 0)
        return "signature";
    if (strcmp(tname, "ima-buf") == 0)
        return "buffer";
    return NULL;
}

/* Splits a binary entry's template data into its length-prefixed fields and picks out the
 * digest, name and signature/buffer. */
static int decode_fields(ima_parser *p, ima_entry *e) {
    size_t off = 0;
    const uint8_t *f[16];
    size_t fl[16];
    uint32_t n = 0;
    while (off < e->tlen) {
        if (e->tlen - off < 4)
            return malformed(p, "template field %u's length needs 4 bytes, %zu remain", n, e->tlen - off);
        uint32_t l = rd32(p, e->tdata + off);
        off += 4;
        if (l > e->tlen - off)
            return malformed(p, "template field %u claims %u bytes, %zu remain", n, l, e->tlen - off);
        if (n < 16) {
            f[n] = e->tdata + off;
            fl[n] = l;
        }
        n++;
        off += l;
        if (n > 64)
            return malformed(p, "more than 64 template fields");
    }
    e->nfields = n;
    if (n >= 2) {
        split_digest_field(e, f[0], fl[0]);
        e->path = f[1];
        e->path_len = fl[1];
        while (e->path_len > 0 && e->path[e->path_len - 1] == 0)
            e->path_len--;
    }
    e->third = third_field(e->tname);
    if (e->third && n >= 3) {
        e->sig = f[2];
        e->siglen = fl[2];
    } else
        e->third = NULL;
    return 0;
}

/* The legacy "ima" template's hashed form: digest (20) || name zero-padded to 256 bytes. */
static int legacy_tdata(ima_parser *p, ima_entry *e, const uint8_t *d20, const uint8_t *name, size_t nlen) {
    if (nlen > NAME_MAX_LEN)
        return malformed(p, "the file name is %zu bytes (at most %d for the ima template)", nlen, NAME_MAX_LEN);
    if (!scratch_reserve(p, 20 + IMA_NAME_FIELD))
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    memcpy(p->scratch, d20, 20);
    memset(p->scratch + 20, 0, IMA_NAME_FIELD);
    memcpy(p->scratch + 20, name, nlen);
    e->tdata = p->scratch;
    e->tlen = 20 + IMA_NAME_FIELD;
    e->tdata_known = true;
    e->fd = p->scratch;
    e->fdlen = 20;
    e->path = p->scratch + 20;
    e->path_len = nlen;
    e->nfields = 2;
    return 0;
}

static int next_binary(ima_parser *p, ima_entry *e) {
    const uint8_t *q = p->buf + p->pos;
    size_t rem = p->len - p->pos, need = 4 + (size_t)p->dsize + 4;
    if (rem < need)
        return malformed(p, "the entry header needs %zu bytes, only %zu remain", need, rem);
    e->pcr = rd32(p, q);
    if (e->pcr >= PCRS)
        return malformed(p, "PCR %u is out of range (0-23)", e->pcr);
    e->dsize = p->dsize;
    memcpy(e->digest, q + 4, p->dsize);
    size_t off = 4 + p->dsize;
    uint32_t nl = rd32(p, q + off);
    off += 4;
    if (nl == 0 || nl > NAME_MAX_LEN)
        return malformed(p, "the template name length is %u (1-%d)", nl, NAME_MAX_LEN);
    if (rem - off < nl)
        return malformed(p, "the template name claims %u bytes, only %zu remain", nl, rem - off);
    for (uint32_t i = 0; i < nl; i++)
        if (q[off + i] < 0x21 || q[off + i] > 0x7e)
            return malformed(p, "the template name has a byte 0x%02x that is not printable", q[off + i]);
    memcpy(e->tname, q + off, nl);
    e->tname[nl] = 0;
    off += nl;
    if (strcmp(e->tname, "ima") == 0) {
        /* digest (20, no length), u32 length, name without NUL */
        if (rem - off < 24)
            return malformed(p, "the ima template entry needs 24 more bytes, only %zu remain", rem - off);
        uint32_t fl = rd32(p, q + off + 20);
        if (fl > rem - off - 24)
            return malformed(p, "the file name claims %u bytes, only %zu remain", fl, rem - off - 24);
        int r = legacy_tdata(p, e, q + off, q + off + 24, fl);
        if (r < 0)
            return r;
        off += 24 + fl;
    } else {
        if (rem - off < 4)
            return malformed(p, "the template data length needs 4 bytes, only %zu remain", rem - off);
        uint32_t tl = rd32(p, q + off);
        off += 4;
        if (tl > CIT_IMA_MAX_ENTRY)
            return malformed(p, "the template data claims %u bytes (the limit is %u)", tl, CIT_IMA_MAX_ENTRY);
        if (tl > rem - off)
            return malformed(p, "the template data claims %u bytes, only %zu remain", tl, rem - off);
        e->tdata = q + off;
        e->tlen = tl;
        e->tdata_known = true;
        int r = decode_fields(p, e);
        if (r < 0)
            return r;
        off += tl;
    }
    e->offset = p->pos;
    p->pos += off;
    return 1;
}

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes n hex characters (even) at s into out. false when one is not hex. */
static bool unhex(uint8_t *out, const uint8_t *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) {
        int a = hexval(s[i]), b = hexval(s[i + 1]);
        if (a < 0 || b < 0)
            return false;
        out[i / 2] = (uint8_t)(a << 4 | b);
    }
    return n % 2 == 0;
}

static const uint8_t *find_byte(const uint8_t *s, const uint8_t *end, uint8_t c) {
    return s < end ? memchr(s, c, (size_t)(end - s)) : NULL;
}

/* "alg:hex" into the scratch buffer at *w as a d-ng field ("alg:" NUL digest, length-prefixed). */
static int put_dng(ima_parser *p, size_t *w, const uint8_t *tok, size_t tl) {
    const uint8_t *colon = NULL;
    for (size_t i = 0; i < tl; i++)
        if (tok[i] == ':')
            colon = tok + i;
    if (!colon || colon == tok)
        return malformed(p, "the file digest \"%.*s\" is not ALG:HEX", (int)(tl > 80 ? 80 : tl), (const char *)tok);
    size_t al = (size_t)(colon - tok) + 1, hl = tl - al;
    if (hl % 2 || hl > 2 * 64)
        return malformed(p, "the file digest has %zu hex digits", hl);
    size_t fl = al + 1 + hl / 2;
    if (!scratch_reserve(p, *w + 4 + fl))
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    wr32(p, p->scratch + *w, (uint32_t)fl);
    memcpy(p->scratch + *w + 4, tok, al);
    p->scratch[*w + 4 + al] = 0;
    if (!unhex(p->scratch + *w + 4 + al + 1, colon + 1, hl))
        return malformed(p, "the file digest is not hex");
    *w += 4 + fl;
    return 0;
}

/* A length-prefixed string field with its NUL (n-ng). */
static int put_str(ima_parser *p, size_t *w, const uint8_t *s, size_t n) {
    if (!scratch_reserve(p, *w + 4 + n + 1))
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    wr32(p, p->scratch + *w, (uint32_t)(n + 1));
    memcpy(p->scratch + *w + 4, s, n);
    p->scratch[*w + 4 + n] = 0;
    *w += 4 + n + 1;
    return 0;
}

static int put_hexfield(ima_parser *p, size_t *w, const uint8_t *s, size_t n) {
    if (n % 2)
        return malformed(p, "the last field has an odd number of hex digits");
    if (!scratch_reserve(p, *w + 4 + n / 2))
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    wr32(p, p->scratch + *w, (uint32_t)(n / 2));
    if (!unhex(p->scratch + *w + 4, s, n))
        return malformed(p, "the last field is not hex");
    *w += 4 + n / 2;
    return 0;
}

static int next_ascii(ima_parser *p, ima_entry *e) {
    const uint8_t *s = p->buf + p->pos, *end = p->buf + p->len;
    const uint8_t *nl = find_byte(s, end, '\n');
    const uint8_t *le = nl ? nl : end;
    size_t ll = (size_t)(le - s);
    p->line++;
    if (ll > 2 * CIT_IMA_MAX_ENTRY + 1024)
        return malformed(p, "the line is %zu bytes long", ll);
    const uint8_t *c = s;
    while (c < le && *c == ' ')
        c++;
    uint32_t pcr = 0;
    const uint8_t *d0 = c;
    while (c < le && *c >= '0' && *c <= '9' && c - d0 < 3)
        pcr = pcr * 10 + (uint32_t)(*c++ - '0');
    if (c == d0 || c >= le || *c != ' ')
        return malformed(p, "the line does not start with a PCR number");
    if (pcr >= PCRS)
        return malformed(p, "PCR %u is out of range (0-23)", pcr);
    e->pcr = pcr;
    c++;
    const uint8_t *h = c, *sp = find_byte(c, le, ' ');
    if (!sp)
        return malformed(p, "no template name after the template hash");
    size_t hl = (size_t)(sp - h);
    if (hl != 40 && hl != 64 && hl != 96 && hl != 128)
        return malformed(p, "the template hash has %zu hex digits (40, 64, 96 or 128)", hl);
    if (!unhex(e->digest, h, hl))
        return malformed(p, "the template hash is not hex");
    e->dsize = (uint16_t)(hl / 2);
    if (p->index > 0 && e->dsize != p->dsize)
        return malformed(p, "the template hash has %zu hex digits, earlier lines %u", hl, 2u * p->dsize);
    p->dsize = e->dsize;
    const uint8_t *t = sp + 1, *tsp = find_byte(t, le, ' ');
    const uint8_t *tend = tsp ? tsp : le;
    if (tend == t || (size_t)(tend - t) > NAME_MAX_LEN)
        return malformed(p, "the template name is empty or longer than %d bytes", NAME_MAX_LEN);
    for (const uint8_t *x = t; x < tend; x++)
        if (*x < 0x21 || *x > 0x7e)
            return malformed(p, "the template name has a byte 0x%02x that is not printable", *x);
    memcpy(e->tname, t, (size_t)(tend - t));
    e->tname[tend - t] = 0;
    const uint8_t *rest = tsp ? tsp + 1 : le;
    /* the fields: "ALG:HEX PATH" (ima-ng), plus " HEX" (ima-sig, ima-buf); "SHA1HEX NAME" (ima).
     * The kernel writes names with spaces replaced by '_', so single spaces separate fields. */
    const uint8_t *f1e = find_byte(rest, le, ' ');
    if (!f1e)
        return malformed(p, "template %s: the line has no file name", e->tname);
    const uint8_t *name = f1e + 1, *name_end = le;
    e->third = third_field(e->tname);
    bool known = strcmp(e->tname, "ima-ng") == 0 || strcmp(e->tname, "ima-sig") == 0 ||
                 strcmp(e->tname, "ima-buf") == 0 || strcmp(e->tname, "ima") == 0;
    const uint8_t *last = NULL;
    size_t lastlen = 0;
    if (e->third && strcmp(e->tname, "ima-modsig") != 0) {
        const uint8_t *ls = NULL;
        for (const uint8_t *x = name; x < le; x++)
            if (*x == ' ')
                ls = x;
        if (!ls)
            return malformed(p, "template %s: the line has no %s field", e->tname, e->third);
        name_end = ls;
        last = ls + 1;
        lastlen = (size_t)(le - last);
    } else if (!known)
        e->third = NULL;
    size_t namelen = (size_t)(name_end - name);
    if (namelen > 4096)
        return malformed(p, "the file name is %zu bytes", namelen);
    e->nfields = e->third ? 3 : 2;
    if (strcmp(e->tname, "ima") == 0) {
        if (f1e - rest != 40)
            return malformed(p, "template ima: the file digest is not 40 hex digits");
        uint8_t d20[20];
        if (!unhex(d20, rest, 40))
            return malformed(p, "template ima: the file digest is not hex");
        int r = legacy_tdata(p, e, d20, name, namelen);
        if (r < 0)
            return r;
    } else if (known) {
        size_t w = 0;
        int r = put_dng(p, &w, rest, (size_t)(f1e - rest));
        if (r < 0)
            return r;
        size_t name_off = w + 4;
        r = put_str(p, &w, name, namelen);
        if (r < 0)
            return r;
        size_t third_off = w + 4;
        if (e->third) {
            r = put_hexfield(p, &w, last, lastlen);
            if (r < 0)
                return r;
        }
        if (w > CIT_IMA_MAX_ENTRY)
            return malformed(p, "the template data is %zu bytes (the limit is %u)", w, CIT_IMA_MAX_ENTRY);
        e->tdata = p->scratch;
        e->tlen = w;
        e->tdata_known = true;
        split_digest_field(e, p->scratch + 4, rd32(p, p->scratch));
        e->path = p->scratch + name_off;
        e->path_len = namelen;
        if (e->third) {
            e->sig = p->scratch + third_off;
            e->siglen = lastlen / 2;
        }
    } else {
        /* another template: shown as text, replayed from the recorded hash only */
        e->fd = rest;
        e->fdlen = (size_t)(f1e - rest);
        e->fd_prefix = NULL;
        e->path = name;
        e->path_len = namelen;
        e->tdata_known = false;
        e->nfields = 0;
    }
    e->offset = p->pos;
    e->line = p->line;
    p->pos = nl ? (size_t)(nl - p->buf) + 1 : p->len;
    return 1;
}

static int ima_next(ima_parser *p, ima_entry *e) {
    if (p->pos >= p->len)
        return 0;
    memset(e, 0, sizeof *e);
    e->index = p->index;
    int r = p->ascii ? next_ascii(p, e) : next_binary(p, e);
    if (r > 0)
        p->index++;
    return r;
}

static void ima_close(ima_parser *p) { free(p->scratch); }

/* Which form and, for the binary one, the byte order. The ASCII list starts with a PCR number
 * (digits, maybe padded with a space); a binary one with a u32 PCR < 24, whose first byte is
 * never a digit or a space. */
static int ima_open(ima_parser *p, const uint8_t *buf, size_t len, uint16_t dsize) {
    memset(p, 0, sizeof *p);
    p->buf = buf;
    p->len = len;
    if (len > CIT_IMA_MAX) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "the IMA list is larger than %u bytes (%zu)", CIT_IMA_MAX, len);
        cit_error_context("limit_bytes", "%u", CIT_IMA_MAX);
        return CIT_E_INPUT_TOO_LARGE;
    }
    if (len == 0) {
        cit_error_set(CIT_E_INPUT_EMPTY, "the IMA list is empty");
        return CIT_E_INPUT_EMPTY;
    }
    p->ascii = buf[0] == ' ' || (buf[0] >= '0' && buf[0] <= '9');
    p->dsize = dsize;
    if (!p->ascii && len >= 4 && cit__le32(buf) >= PCRS &&
        (((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) | buf[3]) < PCRS)
        p->be = true;
    return 0;
}

/* The binary list's template hash size from the file name ("..._sha256"), else 0. */
static uint16_t dsize_from_name(const char *name) {
    if (!name)
        return 0;
    size_t n = strlen(name);
    static const struct {
        const char *suffix;
        uint16_t size;
    } s[] = {{"_sha1", 20}, {"_sha256", 32}, {"_sha384", 48}, {"_sha512", 64}};
    for (size_t i = 0; i < ELEMENTSOF(s); i++) {
        size_t k = strlen(s[i].suffix);
        if (n >= k && strcmp(name + n - k, s[i].suffix) == 0)
            return s[i].size;
    }
    return 0;
}

static uint16_t alg_of_size(uint16_t size) {
    switch (size) {
    case 20: return 0x0004;
    case 32: return 0x000B;
    case 48: return 0x000C;
    case 64: return 0x000D;
    }
    return 0;
}

/* Opens the list and settles the binary template hash size: the file name's suffix, else the
 * first of 20, 32, 48, 64 with which the whole list parses (the error of the 20-byte attempt
 * when none does). */
static int ima_open_any(ima_parser *p, const uint8_t *buf, size_t len, const char *name) {
    uint16_t hint = dsize_from_name(name);
    int r = ima_open(p, buf, len, hint ? hint : 20);
    if (r < 0 || p->ascii || hint)
        return r;
    static const uint16_t sizes[] = {20, 32, 48, 64};
    cit_error first;
    bool have_first = false;
    for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
        ima_parser t;
        ima_open(&t, buf, len, sizes[i]);
        ima_entry e;
        while ((r = ima_next(&t, &e)) > 0)
            ;
        ima_close(&t);
        if (r == 0) {
            p->dsize = sizes[i];
            return 0;
        }
        if (r != CIT_E_IMA_MALFORMED)
            return r;
        if (!have_first) {
            first = *cit_error_last();
            have_first = true;
        }
    }
    cit_error_restore(&first);
    return first.code;
}

static bool all_zero(const uint8_t *d, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (d[i])
            return false;
    return true;
}

/* Text for JSON: valid UTF-8 as is, other bytes as \xNN. */
static json_t *bytes_string(const uint8_t *s, size_t n) {
    json_t *v = json_stringn((const char *)s, n);
    if (v)
        return v;
    char *b = malloc(4 * n + 1);
    if (!b)
        return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f)
            b[w++] = (char)s[i];
        else
            w += (size_t)snprintf(b + w, 5, "\\x%02x", s[i]);
    }
    v = json_stringn(b, w);
    free(b);
    return v;
}

static json_t *hex_string(const uint8_t *p, size_t n) {
    char *h = cit_hex_encode(p, n);
    json_t *v = h ? json_string(h) : NULL;
    free(h);
    return v;
}

/* The file digest as "sha256:hex" (d-ng) or hex (legacy sha1). */
static json_t *file_digest(const ima_entry *e) {
    char *h = cit_hex_encode(e->fd, e->fdlen);
    if (!h)
        return NULL;
    size_t pl = e->fd_prefix ? e->fd_prefix_len : 0;
    size_t n = pl + strlen(h) + 1;
    char *s = malloc(n);
    if (!s) {
        free(h);
        return NULL;
    }
    snprintf(s, n, "%.*s%s", (int)pl, e->fd_prefix ? (const char *)e->fd_prefix : "", h);
    free(h);
    json_t *v = bytes_string((const uint8_t *)s, strlen(s));
    free(s);
    return v;
}

/* H_alg(template data) == recorded digest: 1, 0, or -1 when not checkable. */
static int template_hash_ok(const ima_entry *e, uint16_t alg) {
    if (!e->tdata_known || !alg || all_zero(e->digest, e->dsize))
        return -1;
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t mdl = 0;
    if (cit__digest(alg, e->tdata, e->tlen, md, &mdl) < 0)
        return -1;
    return mdl == e->dsize && memcmp(md, e->digest, mdl) == 0;
}

static int read_list(const char *file, uint8_t **buf, size_t *len) {
    if (!file || !*file) {
        cit_error_set(CIT_E_USAGE, "an IMA measurement list FILE is required");
        return CIT_E_USAGE;
    }
    return cit__read_input(file, CIT_IMA_MAX, "the IMA list", false, buf, len);
}

int cit__ima_show_buf(json_t **out, const uint8_t *buf, size_t len, uint32_t pcr_mask, const char *name) {
    ima_parser p;
    int r = ima_open_any(&p, buf, len, name);
    if (r < 0)
        return r;
    json_t *o = json_object(), *entries = json_array(), *bad = json_array();
    char *t = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&t, &tl);
    if (!o || !entries || !bad || !f) {
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        goto fail;
    }
    uint16_t alg = alg_of_size(p.dsize);
    fprintf(f, "%-6s %-3s %-9s %-3s %s\n", "ENTRY", "PCR", "TEMPLATE", "OK", "FILE DIGEST / PATH");
    ima_entry e;
    uint32_t total = 0, shown = 0, violations = 0;
    while ((r = ima_next(&p, &e)) > 0) {
        total++;
        bool violation = all_zero(e.digest, e.dsize);
        violations += violation;
        int ok = template_hash_ok(&e, alg_of_size(e.dsize));
        if (ok == 0)
            json_array_append_new(bad, json_integer(e.index));
        if (!((pcr_mask >> e.pcr) & 1))
            continue;
        shown++;
        json_t *x = json_object();
        json_array_append_new(entries, x);
        json_object_set_new(x, "index", json_integer(e.index));
        if (p.ascii)
            json_object_set_new(x, "line", json_integer((json_int_t)e.line));
        else
            json_object_set_new(x, "offset", json_integer((json_int_t)e.offset));
        json_object_set_new(x, "pcr", json_integer(e.pcr));
        json_object_set_new(x, "template", json_string(e.tname));
        json_object_set_new(x, "template_hash", hex_string(e.digest, e.dsize));
        json_object_set_new(x, "template_hash_matches_data", ok < 0 ? json_null() : json_boolean(ok));
        if (violation)
            json_object_set_new(x, "violation", json_true());
        json_t *fd = NULL;
        if (e.fd) {
            fd = e.tdata_known ? file_digest(&e) : bytes_string(e.fd, e.fdlen);
            json_object_set_new(x, "file_digest", fd);
        }
        json_t *path = NULL;
        if (e.path) {
            path = bytes_string(e.path, e.path_len);
            json_object_set_new(x, "path", path);
        }
        if (e.third && e.sig) {
            json_object_set_new(x, e.third, hex_string(e.sig, e.siglen));
            json_object_set_new(x, strcmp(e.third, "signature") == 0 ? "signature_size" : "buffer_size",
                                json_integer((json_int_t)e.siglen));
        }
        if (!e.tdata_known && p.ascii)
            json_object_set_new(x, "note", json_string("template not rebuilt from the ASCII line; "
                                                       "replayed from the recorded hash"));
        fprintf(f, "%-6u %-3u %-9s %-3s %s %s%s\n", e.index, e.pcr, e.tname,
                violation ? "VIO" : ok < 0 ? "-" : ok ? "yes" : "NO", fd ? json_string_value(fd) : "",
                path ? json_string_value(path) : "", e.third && e.siglen ? "  [signed]" : "");
    }
    if (r < 0)
        goto fail;
    fprintf(f, "%u of %u entries shown (%s list, template hash %s)", shown, total, p.ascii ? "ASCII" : "binary",
            alg ? (alg == 0x4 ? "sha1" : alg == 0xB ? "sha256" : alg == 0xC ? "sha384" : "sha512") : "?");
    if (json_array_size(bad))
        fprintf(f, "; %zu template hashes do not match their data", json_array_size(bad));
    fputc('\n', f);
    fclose(f);
    f = NULL;
    json_object_set_new(o, "file", json_string(name ? name : "-"));
    json_object_set_new(o, "format", json_string(p.ascii ? "ascii" : "binary"));
    if (!p.ascii && p.be)
        json_object_set_new(o, "byte_order", json_string("big-endian"));
    json_object_set_new(o, "template_hash_algorithm",
                        json_string(p.dsize == 20 ? "sha1" : p.dsize == 32 ? "sha256" : p.dsize == 48 ? "sha384" : "sha512"));
    json_object_set_new(o, "entries_total", json_integer(total));
    json_object_set_new(o, "entries_shown", json_integer(shown));
    json_object_set_new(o, "violations", json_integer(violations));
    json_object_set_new(o, "template_hash_mismatches", bad);
    bad = NULL;
    json_object_set_new(o, "entries", entries);
    entries = NULL;
    json_t *tv = bytes_string((const uint8_t *)t, tl);
    json_object_set_new(o, "_text", tv);
    free(t);
    ima_close(&p);
    *out = o;
    return 0;
fail:
    if (f)
        fclose(f);
    free(t);
    json_decref(o);
    json_decref(entries);
    json_decref(bad);
    ima_close(&p);
    return r;
}

typedef struct ibank {
    uint16_t alg;
    const char *name;
    bool recorded; /* from the recorded template hashes (the list's own bank) */
    uint32_t touched;
    uint8_t pcr[PCRS][64];
} ibank;

static int extend(EVP_MD_CTX *m, uint16_t alg, uint8_t *pcr, const uint8_t *d) {
    size_t n = cit__hash_size(alg);
    unsigned int outl = 0;
    if (EVP_DigestInit_ex(m, cit__hash_md(alg), NULL) != 1 || EVP_DigestUpdate(m, pcr, n) != 1 ||
        EVP_DigestUpdate(m, d, n) != 1 || EVP_DigestFinal_ex(m, pcr, &outl) != 1)
        return cit__openssl_error(CIT_E_CRYPTO, "PCR extend (hash) failed");
    return 0;
}

int cit__ima_replay_buf(json_t **out, const uint8_t *buf, size_t len, const char *name) {
    ima_parser p;
    int r = ima_open_any(&p, buf, len, name);
    if (r < 0)
        return r;
    ibank *banks = calloc(3, sizeof *banks);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    json_t *bad = json_array(), *ba = NULL;
    uint32_t nb = 0;
    if (!banks || !m || !bad) {
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        goto done;
    }
    /* the list's bank is settled by its first entry (ASCII: the hash's length) */
    bool computed_ok = true, started = false;
    uint32_t total = 0, violations = 0;
    int64_t boot_aggregate = -1;
    ima_entry e;
    while ((r = ima_next(&p, &e)) > 0) {
        if (!started) {
            uint16_t la = alg_of_size(e.dsize);
            banks[nb++] = (ibank){.alg = la, .name = cit__hash_name(la), .recorded = true};
            if (la != 0x0004)
                banks[nb++] = (ibank){.alg = 0x0004, .name = "sha1"};
            if (la != 0x000B)
                banks[nb++] = (ibank){.alg = 0x000B, .name = "sha256"};
            started = true;
        }
        total++;
        bool violation = all_zero(e.digest, e.dsize);
        violations += violation;
        if (!e.tdata_known)
            computed_ok = false;
        if (template_hash_ok(&e, banks[0].alg) == 0)
            json_array_append_new(bad, json_integer(e.index));
        if (boot_aggregate < 0 && e.path && e.path_len == 14 && memcmp(e.path, "boot_aggregate", 14) == 0 && e.fd) {
            boot_aggregate = e.index;
            ba = e.tdata_known ? file_digest(&e) : bytes_string(e.fd, e.fdlen);
        }
        uint8_t ff[64];
        memset(ff, 0xff, sizeof ff);
        for (uint32_t b = 0; b < nb; b++) {
            ibank *bk = &banks[b];
            const uint8_t *d;
            uint8_t md[EVP_MAX_MD_SIZE];
            if (violation)
                d = ff; /* the kernel extends all ones for a violation, in every bank */
            else if (bk->recorded)
                d = e.digest;
            else if (e.tdata_known) {
                size_t mdl = 0;
                r = cit__digest(bk->alg, e.tdata, e.tlen, md, &mdl);
                if (r < 0)
                    goto done;
                d = md;
            } else
                continue;
            r = extend(m, bk->alg, bk->pcr[e.pcr], d);
            if (r < 0)
                goto done;
            bk->touched |= 1u << e.pcr;
        }
    }
    if (r < 0)
        goto done;
    json_t *o = json_object(), *pcrs = json_object(), *computed = json_array();
    char *t = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&t, &tl);
    if (!f) {
        json_decref(o);
        json_decref(pcrs);
        json_decref(computed);
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        goto done;
    }
    fprintf(f, "%-3s %-8s %-10s %s\n", "PCR", "BANK", "FROM", "VALUE");
    for (int i = 0; i < PCRS; i++)
        for (uint32_t b = 0; b < nb; b++) {
            ibank *bk = &banks[b];
            if (!(bk->touched & (1u << i)) || (!bk->recorded && !computed_ok))
                continue;
            json_t *bank = json_object_get(pcrs, bk->name);
            if (!bank) {
                bank = json_object();
                json_object_set_new(pcrs, bk->name, bank);
                if (!bk->recorded)
                    json_array_append_new(computed, json_string(bk->name));
            }
            char k[4];
            snprintf(k, sizeof k, "%d", i);
            json_t *hv = hex_string(bk->pcr[i], cit__hash_size(bk->alg));
            json_object_set_new(bank, k, hv);
            fprintf(f, "%-3d %-8s %-10s %s\n", i, bk->name, bk->recorded ? "recorded" : "computed",
                    hv ? json_string_value(hv) : "?");
        }
    fprintf(f, "%u entries (%s list), %u violations", total, p.ascii ? "ASCII" : "binary", violations);
    if (json_array_size(bad))
        fprintf(f, "; %zu template hashes do not match their data", json_array_size(bad));
    fputc('\n', f);
    fclose(f);
    json_object_set_new(o, "file", json_string(name ? name : "-"));
    json_object_set_new(o, "format", json_string(p.ascii ? "ascii" : "binary"));
    json_object_set_new(o, "list_bank", json_string(nb ? banks[0].name : "sha1"));
    json_object_set_new(o, "entries", json_integer(total));
    json_object_set_new(o, "violations", json_integer(violations));
    json_object_set_new(o, "template_hash_mismatches", bad);
    bad = NULL;
    json_object_set_new(o, "computed_banks", computed);
    if (!computed_ok)
        json_object_set_new(o, "computed_banks_note",
                            json_string("some entries' template data is not in the list (a template the ASCII form "
                                        "cannot rebuild): only the recorded bank is replayed"));
    if (boot_aggregate >= 0) {
        json_object_set_new(o, "boot_aggregate_entry", json_integer(boot_aggregate));
        json_object_set_new(o, "boot_aggregate", ba);
        ba = NULL;
    }
    json_object_set_new(o, "pcrs", pcrs);
    json_object_set_new(o, "_text", bytes_string((const uint8_t *)t, tl));
    free(t);
    *out = o;
    r = 0;
done:
    json_decref(ba);
    json_decref(bad);
    free(banks);
    EVP_MD_CTX_free(m);
    ima_close(&p);
    return r;
}

int cit__ima_each_file(const uint8_t *buf, size_t len, const char *name,
                       int (*fn)(void *env, const cit__ima_file *f), void *env) {
    ima_parser p;
    int r = ima_open_any(&p, buf, len, name);
    if (r < 0)
        return r;
    ima_entry e;
    while ((r = ima_next(&p, &e)) > 0) {
        if (!e.tdata_known || !e.fd || !e.path)
            continue; /* a template we only replay from its recorded hash */
        cit__ima_file f = {.index = e.index, .pcr = e.pcr, .template_name = e.tname, .digest = e.fd,
                           .digest_len = e.fdlen, .path = e.path, .path_len = e.path_len,
                           .violation = all_zero(e.digest, e.dsize)};
        if (e.fd_prefix && e.fd_prefix_len > 1) {
            /* "sha256:" (d-ng) or "ima:sha256:" (d-ngv2): the last name before the final ':' */
            size_t end = e.fd_prefix_len - 1, start = end;
            while (start > 0 && e.fd_prefix[start - 1] != ':')
                start--;
            snprintf(f.alg, sizeof f.alg, "%.*s", (int)(end - start), (const char *)e.fd_prefix + start);
        } else
            snprintf(f.alg, sizeof f.alg, "%s", e.fdlen == 20 ? "sha1" : "unknown");
        if ((r = fn(env, &f)) != 0)
            break;
    }
    ima_close(&p);
    return r;
}

_public_ int cit_ima_show(json_t **out, const char *file, const char *pcrs) {
    uint32_t mask;
    int r = cit__pcr_parse_list(pcrs, &mask);
    if (r < 0)
        return r;
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len = 0;
    r = read_list(file, &buf, &len);
    if (r < 0)
        return r;
    return cit__with_file(cit__ima_show_buf(out, buf, len, mask, file), file);
}

_public_ int cit_ima_replay(json_t **out, const char *file) {
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len = 0;
    int r = read_list(file, &buf, &len);
    if (r < 0)
        return r;
    return cit__with_file(cit__ima_replay_buf(out, buf, len, file), file);
}
