/* SPDX-License-Identifier: Apache-2.0 */
/* The CA tables in a workspace export (ca_backup.c). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* In workspace.c: TPM0039 for the export file input, with why as its cause. */
int cit__import_invalid(const char *input, const char *why);
/* {"ca": [...], "ca_certs": [...], "ca_trust": [...]}: every row, blobs in base64. */
int cit__ca_export(cit_store *s, json_t **out);
/* Checks an export's "ca" member (NULL: none) before anything is written: types, and that no CA,
 * certificate or trust entry of the same key is in the workspace (TPM0160), else
 * TPM0039 (IMPORT_INVALID). */
int cit__ca_import_check(cit_store *s, const json_t *ca, const char *input);
/* Inserts the rows, inside the caller's transaction and after the objects (a CA's key object
 * must be in the store by then). *imported counts the rows added. */
int cit__ca_import(cit_store *s, const json_t *ca, const char *input, size_t *imported);
/* What an imported row says about its certificate; NULL / false: nothing. */
typedef struct {
    const char *fingerprint, *subject, *issuer, *serial;
    bool has_not_before, has_not_after;
    int64_t not_before, not_after;
} cit_ca_row_claims;
/* In ca.c: NULL when pem is exactly one certificate as citadel writes it (a CA certificate when
 * must_be_ca) and every claim holds, else why not. */
const char *cit__ca_import_cert_problem(const char *pem, bool must_be_ca, const cit_ca_row_claims *c);
