/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/drivers/audit-append-driver: the batched audit API in one long-lived context, for
 * tests/integration/test-audit-fault.sh (which kills it with SIGKILL at random moments).
 *
 *   audit-append-driver STORE TAG BATCHES PER_BATCH
 *
 * Appends BATCHES batches of PER_BATCH records (event fault.batch, payload TAG.B.K for the
 * K-th record of batch B) with cit_audit_append_batch, and after each batch returns prints
 * "SEQNO PAYLOAD" for each of its records and flushes: a printed line is an acknowledged
 * append. Exit 0 when every batch was appended, 1 on the first error (printed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "citadel/citadel.h"

#define MAX_PER_BATCH 64

static int parse_int(const char *s, int lo, int hi) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return end && end != s && !*end && v >= lo && v <= hi ? (int)v : -1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s STORE TAG BATCHES PER_BATCH\n", argv[0]);
        return 2;
    }
    int batches = parse_int(argv[3], 1, 1000000), per = parse_int(argv[4], 1, MAX_PER_BATCH);
    if (batches < 0 || per < 0) {
        fprintf(stderr, "BATCHES >= 1, 1 <= PER_BATCH <= %d\n", MAX_PER_BATCH);
        return 2;
    }
    cit_ctx *ctx = NULL;
    cit_ctx_options o = {.store_path = argv[1]};
    if (cit_ctx_new(&ctx, &o) < 0) {
        fprintf(stderr, "cit_ctx_new: %s\n", cit_error_last()->message);
        return 1;
    }
    int rc = 0;
    char payloads[MAX_PER_BATCH][96];
    cit_audit_record recs[MAX_PER_BATCH];
    for (int b = 0; b < batches && rc == 0; b++) {
        for (int k = 0; k < per; k++) {
            snprintf(payloads[k], sizeof payloads[k], "%s.%d.%d", argv[2], b, k);
            recs[k] = (cit_audit_record){.event = "fault.batch", .payload = (const uint8_t *)payloads[k],
                                         .payload_len = strlen(payloads[k])};
        }
        int64_t first = 0;
        if (cit_audit_append_batch(ctx, recs, (size_t)per, &first) < 0) {
            fprintf(stderr, "cit_audit_append_batch: %s\n", cit_error_last()->message);
            rc = 1;
            break;
        }
        for (int k = 0; k < per; k++)
            printf("%lld %s\n", (long long)(first + k), payloads[k]);
        fflush(stdout);
    }
    if (cit_ctx_close(ctx) < 0 && rc == 0) {
        fprintf(stderr, "cit_ctx_close: %s\n", cit_error_last()->message);
        rc = 1;
    }
    return rc;
}
