/* SPDX-License-Identifier: Apache-2.0 */
/* The client side of enrolld's API (docs/enrollment.md) for `citadel node` and `citadel enroll`. */
#pragma once
#include <jansson.h>

#include "net/net.h"

/* method url (server + path), JSON body (may be NULL), extra headers (may be NULL). A 2xx
 * answer's JSON into *out; otherwise the server's error (its code, message and causes) becomes
 * cit_error_last() with the server and the HTTP status as context, and its code is returned;
 * an unreachable server is CIT_E_ENROLL_SERVER. */
int enroll_call(const char *server, const char *method, const char *path, const char *ca_file, cit_tls_creds *creds,
                const json_t *body, const char *const *headers, json_t **out);
/* The same for a text answer (the CA certificate, the CRL). */
int enroll_call_text(const char *server, const char *path, const char *ca_file, char **out);
