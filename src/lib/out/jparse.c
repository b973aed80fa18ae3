/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A strict JSON reader that builds jansson trees, for hot paths (quote verification). jansson's
 * own decoder reads one character at a time through a stream with UTF-8 decoding and a growing
 * buffer: about 30 us for a 1 KB quote, a fifth of the cost of verifying its ECDSA signature.
 * This one scans the text in place: string bodies with memchr-like loops, numbers with strtoll
 * and strtod, and hands jansson finished values (json_stringn_nocheck after its own UTF-8 check).
 *
 * It accepts exactly what json_loadb(buf, len, 0, ...) accepts (tests/fuzz/fuzz-jparse.c
 * compares the two on a corpus and on random mutations of it): an object or array at the top,
 * nothing after it but white space; no NUL in strings (\u0000 refused); valid UTF-8 and valid
 * surrogate pairs; no control characters in strings; integers that fit json_int_t, reals that
 * do not overflow; the last of duplicate keys wins; values at most 2048 deep (as jansson counts).
 * One difference, on the strict side: jansson's stream reader drops a NUL byte that directly
 * follows a token it read one byte past (a number or true/false/null: "[1\0]" loads); here
 * every NUL byte is an error. Reals are read in the C locale whatever the program's locale.
 */
#define _GNU_SOURCE /* strtod_l */
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "basic/util.h"
#include "jparse.h"

#define MAX_DEPTH 2048

typedef struct {
    const char *p, *end;
    int depth;
    char *tmp; /* scratch for strings with escapes */
    size_t tmp_cap;
} P;

static void ws(P *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static int tmp_reserve(P *s, size_t need) {
    if (need <= s->tmp_cap)
        return 0;
    size_t cap = s->tmp_cap ? s->tmp_cap : 256;
    while (cap < need)
        cap *= 2;
    char *n = realloc(s->tmp, cap);
    if (!n)
        return -1;
    s->tmp = n;
    s->tmp_cap = cap;
    return 0;
}

/* A string at s->p (after the opening quote); out and len point into the text or s->tmp */
static int string(P *s, const char **out, size_t *len) {
    const char *start = s->p;
    /* the common case: no escapes */
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            *out = start;
            *len = (size_t)(s->p - start);
            s->p++;
            return 0;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            return -1;
        if (c < 0x80)
            s->p++;
        else {
            size_t n = cit_utf8_len((const unsigned char *)s->p, (size_t)(s->end - s->p));
            if (!n)
                return -1;
            s->p += n;
        }
    }
    if (s->p >= s->end)
        return -1;
    /* escapes: copy into tmp (an escape never makes the text longer) */
    size_t pre = (size_t)(s->p - start);
    if (tmp_reserve(s, pre + (size_t)(s->end - s->p) + 1) < 0)
        return -1;
    memcpy(s->tmp, start, pre);
    size_t o = pre;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            *out = s->tmp;
            *len = o;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            size_t n = c < 0x80 ? 1 : cit_utf8_len((const unsigned char *)s->p, (size_t)(s->end - s->p));
            if (!n)
                return -1;
            memcpy(s->tmp + o, s->p, n);
            o += n;
            s->p += n;
            continue;
        }
        if (s->end - s->p < 2)
            return -1;
        char e = s->p[1];
        s->p += 2;
        switch (e) {
        case '"': s->tmp[o++] = '"'; continue;
        case '\\': s->tmp[o++] = '\\'; continue;
        case '/': s->tmp[o++] = '/'; continue;
        case 'b': s->tmp[o++] = '\b'; continue;
        case 'f': s->tmp[o++] = '\f'; continue;
        case 'n': s->tmp[o++] = '\n'; continue;
        case 'r': s->tmp[o++] = '\r'; continue;
        case 't': s->tmp[o++] = '\t'; continue;
        case 'u': break;
        default: return -1;
        }
        unsigned cp;
        if (s->end - s->p < 4 || hex4(s->p, &cp) < 0)
            return -1;
        s->p += 4;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return -1; /* a lone low surrogate */
        if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned lo;
            if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) < 0 || lo < 0xdc00 ||
                lo > 0xdfff)
                return -1;
            s->p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (cp == 0)
            return -1; /* NUL inside a string: jansson refuses it without JSON_ALLOW_NUL */
        /* \uXXXX is 6 bytes of text; its UTF-8 is at most 4 (a pair: 12 -> 4) */
        if (cp < 0x80)
            s->tmp[o++] = (char)cp;
        else if (cp < 0x800) {
            s->tmp[o++] = (char)(0xc0 | (cp >> 6));
            s->tmp[o++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            s->tmp[o++] = (char)(0xe0 | (cp >> 12));
            s->tmp[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            s->tmp[o++] = (char)(0x80 | (cp & 0x3f));
        } else {
            s->tmp[o++] = (char)(0xf0 | (cp >> 18));
            s->tmp[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            s->tmp[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            s->tmp[o++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    return -1;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static json_t *number(P *s) {
    const char *start = s->p;
    bool real = false;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return NULL;
    if (*s->p == '0')
        s->p++;
    else if (*s->p >= '1' && *s->p <= '9')
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    else
        return NULL;
    if (s->p < s->end && *s->p == '.') {
        real = true;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return NULL;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        real = true;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return NULL;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    /* a digit straight after a leading zero ("01") is left for the caller, which refuses it */
    char buf[64];
    size_t n = (size_t)(s->p - start);
    char *heap = NULL, *text = buf;
    if (n >= sizeof buf) {
        if (!(heap = malloc(n + 1)))
            return NULL;
        text = heap;
    }
    memcpy(text, start, n);
    text[n] = 0;
    json_t *v = NULL;
    errno = 0;
    if (!real) {
        long long x = strtoll(text, NULL, 10);
        if (errno != ERANGE)
            v = json_integer((json_int_t)x);
    } else {
        /* in the C locale whatever the program set: "1.5" is never read as 1 under a
         * comma-decimal locale (jansson converts the point to the locale's for the same reason) */
        pthread_once(&c_locale_once, make_c_locale);
        char *end = NULL;
        double d = c_locale ? strtod_l(text, &end, c_locale) : strtod(text, &end);
        if (end == text + n && !(errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL)))
            v = json_real(d);
    }
    free(heap);
    return v;
}

static json_t *value(P *s);

static json_t *object(P *s) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return o;
    }
    for (;;) {
        ws(s);
        const char *k;
        size_t kl;
        if (s->p >= s->end || *s->p != '"')
            goto bad;
        s->p++;
        if (string(s, &k, &kl) < 0)
            goto bad;
        /* keys are NUL-terminated in jansson: copy when the key came from tmp (reused below) */
        char kb[128], *kh = NULL, *key = kb;
        if (kl >= sizeof kb && !(key = kh = malloc(kl + 1)))
            goto bad;
        memcpy(key, k, kl);
        key[kl] = 0;
        ws(s);
        if (s->p >= s->end || *s->p != ':') {
            free(kh);
            goto bad;
        }
        s->p++;
        json_t *v = value(s);
        if (!v || json_object_setn_new_nocheck(o, key, kl, v) < 0) {
            free(kh);
            goto bad;
        }
        free(kh);
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return o;
        }
        goto bad;
    }
bad:
    json_decref(o);
    return NULL;
}

static json_t *array(P *s) {
    json_t *a = json_array();
    if (!a)
        return NULL;
    ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return a;
    }
    for (;;) {
        json_t *v = value(s);
        if (!v || json_array_append_new(a, v) < 0)
            goto bad;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return a;
        }
        goto bad;
    }
bad:
    json_decref(a);
    return NULL;
}

static bool word(P *s, const char *w, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

static json_t *scalar_or_container(P *s) {
    char c = *s->p;
    switch (c) {
    case '{':
        s->p++;
        return object(s);
    case '[':
        s->p++;
        return array(s);
    case '"': {
        const char *t;
        size_t n;
        s->p++;
        if (string(s, &t, &n) < 0)
            return NULL;
        return json_stringn_nocheck(t, n);
    }
    case 't': return word(s, "true", 4) ? json_true() : NULL;
    case 'f': return word(s, "false", 5) ? json_false() : NULL;
    case 'n': return word(s, "null", 4) ? json_null() : NULL;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return number(s);
        return NULL;
    }
}

/* jansson counts the depth of every value, scalars included (the top level is 1). */
static json_t *value(P *s) {
    ws(s);
    if (s->p >= s->end || ++s->depth > MAX_DEPTH)
        return NULL;
    json_t *v = scalar_or_container(s);
    s->depth--;
    return v;
}

json_t *cit__json_parse(const char *buf, size_t len) {
    P s = {.p = buf, .end = buf + len};
    ws(&s);
    if (s.p >= s.end || (*s.p != '{' && *s.p != '['))
        return NULL;
    json_t *v = value(&s);
    free(s.tmp);
    if (!v)
        return NULL;
    ws(&s);
    if (s.p != s.end) {
        json_decref(v);
        return NULL;
    }
    return v;
}
