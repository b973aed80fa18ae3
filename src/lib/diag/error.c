/* SPDX-License-Identifier: Apache-2.0 */
#include "citadel/error.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "basic/macro.h"
#include "basic/util.h"

static _Thread_local cit_error last_error;

static const cit_code_info code_table[] = {
#define CIT_CODE(n, nm, c, msg, st) {.num = (n), .name = #nm, .cls = #c, .message = (msg), .steps = (st)},
#include "codes.def"
#undef CIT_CODE
};

_public_ const cit_error *cit_error_last(void) { return &last_error; }

/* Messages carry what the user typed (a path, a file name): a byte that is not UTF-8 becomes '?',
 * else the JSON form of the error (and the text rendered from it) could not hold the message. */
static void utf8_clean(char *s) {
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        size_t k = cit_utf8_len(p, n);
        if (!k) {
            *p = '?';
            k = 1;
        }
        p += k;
        n -= k;
    }
}

_public_ void cit_error_clear(void) { memset(&last_error, 0, sizeof(last_error)); }

_public_ void cit_error_restore(const cit_error *saved) { last_error = *saved; }

_public_ int cit_error_set(int code, const char *fmt, ...) {
    cit_error_clear();
    last_error.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error.message, sizeof(last_error.message), fmt, ap);
    va_end(ap);
    utf8_clean(last_error.message);
    return code;
}

_public_ void cit_error_cause(const char *fmt, ...) {
    if (last_error.n_causes >= CIT_ERROR_MAX_ITEMS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error.causes[last_error.n_causes], sizeof(last_error.causes[0]), fmt, ap);
    va_end(ap);
    utf8_clean(last_error.causes[last_error.n_causes++]);
}

_public_ void cit_error_context(const char *key, const char *fmt, ...) {
    int i;
    for (i = 0; i < last_error.n_context; i++)
        if (strcmp(last_error.context_key[i], key) == 0)
            break;
    if (i == last_error.n_context) {
        if (i >= CIT_ERROR_MAX_ITEMS)
            return;
        last_error.n_context++;
    }
    snprintf(last_error.context_key[i], sizeof(last_error.context_key[0]), "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error.context_val[i], sizeof(last_error.context_val[0]), fmt, ap);
    va_end(ap);
    utf8_clean(last_error.context_key[i]);
    utf8_clean(last_error.context_val[i]);
}

_public_ void cit_error_step(const char *fmt, ...) {
    if (last_error.n_steps >= CIT_ERROR_MAX_ITEMS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error.steps[last_error.n_steps], sizeof(last_error.steps[0]), fmt, ap);
    va_end(ap);
    utf8_clean(last_error.steps[last_error.n_steps++]);
}

_public_ const cit_code_info *cit_code_table(size_t *n) {
    *n = ELEMENTSOF(code_table);
    return code_table;
}

_public_ const cit_code_info *cit_code_lookup(int num) {
    if (num < 0)
        num = -num;
    for (size_t i = 0; i < ELEMENTSOF(code_table); i++)
        if (code_table[i].num == num)
            return &code_table[i];
    return NULL;
}

_public_ const cit_code_info *cit_code_lookup_name(const char *s) {
    if (strncasecmp(s, "TPM", 3) == 0 && strlen(s) == 7) {
        int num = 0;
        for (int i = 3; i < 7; i++) {
            if (s[i] < '0' || s[i] > '9')
                return NULL;
            num = num * 10 + (s[i] - '0');
        }
        return cit_code_lookup(num);
    }
    for (size_t i = 0; i < ELEMENTSOF(code_table); i++)
        if (strcasecmp(code_table[i].name, s) == 0)
            return &code_table[i];
    return NULL;
}

static const struct {
    const char *cls;
    int status;
} exit_by_class[] = {
    {"internal", 1}, {"usage", 2},  {"object", 3},      {"store", 4},   {"backend", 5},
    {"transport", 6}, {"policy", 7}, {"nv", 8},         {"attestation", 9}, {"repair", 10}, {"audit", 11},
    {"api", 12},      {"ca", 13},
    {"enroll", 14}, /* enroll: docs/enrollment.md */
};

_public_ int cit_code_exit_status(int code) {
    const cit_code_info *ci = cit_code_lookup(code);
    if (!ci)
        return 1;
    for (size_t i = 0; i < ELEMENTSOF(exit_by_class); i++)
        if (strcmp(exit_by_class[i].cls, ci->cls) == 0)
            return exit_by_class[i].status;
    return 1;
}

_public_ void cit_code_format(char *buf, size_t len, int code) {
    snprintf(buf, len, "TPM%04d", code < 0 ? -code : code);
}
