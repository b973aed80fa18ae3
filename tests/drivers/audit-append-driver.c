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
 *
 *   audit-append-driver STORE --batches BATCH...
 *
 * Appends each BATCH ("STREAM=PAYLOAD,STREAM=PAYLOAD,...", event driver.batch) in the same
 * context, going on after a batch fails: prints "ok FIRST_SEQNO" or "fail MESSAGE" per batch.
 * For tests of what a failed batch leaves behind in a long-lived context.
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

static int batches_mode(const char *store, int n, char **specs) {
    cit_ctx *ctx = NULL;
    cit_ctx_options o = {.store_path = store};
    if (cit_ctx_new(&ctx, &o) < 0) {
        fprintf(stderr, "cit_ctx_new: %s\n", cit_error_last()->message);
        return 1;
    }
    for (int b = 0; b < n; b++) {
        char *spec = strdup(specs[b]), *save = NULL;
        cit_audit_record recs[MAX_PER_BATCH];
        size_t k = 0;
        for (char *t = strtok_r(spec, ",", &save); t && k < MAX_PER_BATCH; t = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(t, '=');
            if (!eq)
                continue;
            *eq = 0;
            recs[k++] = (cit_audit_record){.stream = t, .event = "driver.batch", .payload = (const uint8_t *)eq + 1,
                                           .payload_len = strlen(eq + 1)};
        }
        int64_t first = 0;
        if (cit_audit_append_batch(ctx, recs, k, &first) < 0)
            printf("fail %s\n", cit_error_last()->message);
        else
            printf("ok %lld\n", (long long)first);
        fflush(stdout);
        free(spec);
    }
    return cit_ctx_close(ctx) < 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[2], "--batches") == 0)
        return batches_mode(argv[1], argc - 3, argv + 3);
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
