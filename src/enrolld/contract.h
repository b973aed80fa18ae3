/* SPDX-License-Identifier: Apache-2.0 */
/* TEMPORARY: the declarations of /work/enroll-contract.md from the `ca` and `tpmnet` branches,
 * until they are merged into main (then this file goes away). */
#pragma once
#include <pthread.h>
#include "citadel/citadel.h"
#ifndef CIT_CONTRACT_CA
typedef struct cit_ca cit_ca;
typedef struct cit_ca_issue_options {
    const char *profile;
    int days;
    const char *subject;
    const char *san;
    const uint8_t *hw_serial;
    size_t hw_serial_len;
} cit_ca_issue_options;
int cit_ca_open(cit_ca **out, cit_ctx *ctx, const char *name);
void cit_ca_close(cit_ca *ca);
int cit_ca_issue_csr(json_t **out, cit_ca *ca, const uint8_t *csr, size_t csr_len, const cit_ca_issue_options *o,
                     char **cert_pem);
int cit_ca_issue_key(json_t **out, cit_ca *ca, const uint8_t *spki_der, size_t spki_len,
                     const cit_ca_issue_options *o, char **cert_pem);
int cit_ca_revoke(json_t **out, cit_ctx *ctx, const char *serial_hex, const char *reason);
int cit_ca_crl(json_t **out, cit_ca *ca, char **crl_pem);
int cit_ca_cert_status(cit_ctx *ctx, const char *serial_hex, const char **status);
int cit_ca_cert_pem(cit_ca *ca, char **pem);
int cit_ca_trust_bundle(cit_ctx *ctx, const char *store, char **pem);
#endif
