/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Citadel's error model. Library calls return 0 or a negative CIT_E_* code; the details
 * (message, causes, context, next steps, foreign error) are in the thread-local
 * cit_error_last(), set once where a failure is understood and enriched as it travels up.
 */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CIT_OK = 0,
#define CIT_CODE(num, name, cls, msg, steps) CIT_E_##name = -(num),
#include "../../src/lib/diag/codes.def"
#undef CIT_CODE
};

#define CIT_ERROR_MAX_ITEMS 12

typedef struct cit_error {
    int code;                 /* negative CIT_E_*; 0 when no error is recorded */
    char message[512];        /* "object not found: signing/missing" */
    int n_causes;
    char causes[CIT_ERROR_MAX_ITEMS][256];
    int n_context;
    char context_key[CIT_ERROR_MAX_ITEMS][32];
    char context_val[CIT_ERROR_MAX_ITEMS][256];
    int n_steps;              /* specific steps; when 0 the code's default steps are used */
    char steps[CIT_ERROR_MAX_ITEMS][256];
} cit_error;

typedef struct cit_code_info {
    int num;                  /* 4 for TPM0004 */
    const char *name;         /* "OBJECT_NOT_FOUND" */
    const char *cls;          /* "object" */
    const char *message;
    const char *steps;        /* '\n'-separated */
} cit_code_info;

/* The last error recorded on this thread (borrowed). */
const cit_error *cit_error_last(void);
/* Clears the thread's error. */
void cit_error_clear(void);
/* Replaces the thread's error with a copy saved earlier (to report one failure after probing). */
void cit_error_restore(const cit_error *saved);
/* Records a new error (replacing any earlier one) and returns code, so callers can
 * `return cit_error_set(CIT_E_OBJECT_NOT_FOUND, "object not found: %s", path);` */
int cit_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds a cause line to the current error. */
void cit_error_cause(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Adds a context key/value (e.g. "path", "signing/missing"; "tpm_rc", "0x0000098e"). */
void cit_error_context(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds a specific next step; when any are added they are shown before the code's defaults. */
void cit_error_step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Table lookups. num is the positive code number; NULL when unknown. */
const cit_code_info *cit_code_lookup(int num);
const cit_code_info *cit_code_lookup_name(const char *s); /* "TPM0004" or "OBJECT_NOT_FOUND" */
const cit_code_info *cit_code_table(size_t *n);
/* Documented process exit status for an error code (see docs/ERRORS.md). */
int cit_code_exit_status(int code);
/* "TPM0004" into buf (>= 8 bytes). */
void cit_code_format(char *buf, size_t len, int code);

#ifdef __cplusplus
}
#endif
