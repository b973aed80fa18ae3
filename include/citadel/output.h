/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every command produces one result tree (a jansson json_t object). This module renders it
 * as text, JSON or YAML, and renders errors the same way.
 *
 * Conventions for result trees:
 *   - keys starting with '_' are presentation hints and never appear in JSON or YAML;
 *   - "_text" (string): in text format, printed verbatim instead of the generic rendering
 *     (used for PEM, prose and other output a user pipes elsewhere).
 */
#pragma once
#include <jansson.h>
#include <stdio.h>

#include "citadel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CIT_SCHEMA_VERSION 1

typedef enum { CIT_FORMAT_TEXT, CIT_FORMAT_JSON, CIT_FORMAT_YAML } cit_format;

/* "text", "json", "yaml" (also "yml"). 0 or CIT_E_FORMAT_UNKNOWN (error recorded). */
int cit_format_parse(const char *s, cit_format *out);

/* Renders result (an object) to f. JSON/YAML get "schema_version" first. */
int cit_render(FILE *f, const json_t *result, cit_format fmt);

/* The error as {"code":"TPM0004","name":..,"class":..,"message":..,"causes":[..],
 * "context":{..},"next_steps":[..]}; caller owns the reference. */
json_t *cit_error_to_json(const cit_error *e);
/* Renders an error: text (error[TPM0004]: ... causes/next steps), or
 * {"schema_version":1,"error":{...}} as JSON/YAML. */
void cit_error_render(FILE *f, const cit_error *e, cit_format fmt);

#ifdef __cplusplus
}
#endif
