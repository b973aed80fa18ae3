/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/audit-proof: Merkle proofs and full chain verification on a large audit log, through
 * libcitadel, against raw floors measured in the same run.
 *
 * Setup: a temporary vTPM workspace and a log of BENCH_ENTRIES entries (default 1,000,000),
 * appended with cit_audit_append_batch in batches of 1000 (~100-byte payloads). The build
 * rate is printed for the record.
 *
 *   prove        cit_audit_prove(seqno, tree_size = the log's size) for BENCH_PROOFS random
 *                entries (default 1000): the entry read, its leaf hash, the audit path from the
 *                cached level-8/16 subtree hashes (entries below level 8), the root, the proof
 *                checked, the JSON result. Time per call: median, p99, max. Goal: < 1 ms.
 *   consistency  cit_audit_prove_consistency(old = random, new = the log's size), the same
 *                statistics. Reported, no goal.
 *   select       for context, interleaved with prove: one prepared SELECT of the same entry row
 *                (the floor of any proof served from SQLite).
 *   verify       cit_audit_chain_verify: every entry read from the store, its leaf hash and chain
 *                link recomputed and compared, the Merkle frontier, the anti-rollback checks.
 *                Entries per second.
 *   sha256       the peer: one EVP SHA-256 (reused context) of every entry's leaf input
 *                (0x00 || the canonical entry bytes), all held in memory.
 *   sha256x3     for context: the hashes verification cannot avoid, per entry: the leaf hash,
 *                the chain link (65 bytes) and one Merkle node (65 bytes), in memory.
 *
 * verify, sha256 and sha256x3 run BENCH_ROUNDS rounds (default 3) in rotating order over the
 * whole log; a rate is the median over rounds and the ratio verify/sha256 the median of the
 * per-round ratios (paired).
 *
 * Output: a table and RESULT lines (tab separated) for bench/run.sh.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/merkle.h"
#include "citadel/citadel.h"
#include "core/audit.h"
#include "core/ctx.h"
#include "store/store.h"

#define BENCH_NAME "audit-proof"
#include "bench.h"

#define MAX_ROUNDS 50
#define BATCH 1000
#define PAYLOAD_LEN 100

static void die(const char *what) {
    fprintf(stderr, "audit-proof: %s\n", what);
    exit(1);
}

/* Sorts v in place; the q-quantile (nearest rank). */
static double quantile(double *v, int n, double q) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    int i = (int)(q * n + 0.5) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static uint64_t rng = 0x2545f4914f6cdd1du;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Every entry's leaf input (0x00 || entry bytes), back to back. */
typedef struct entries {
    uint8_t *data;
    size_t *off; /* n + 1 offsets */
    int64_t n;
} entries;

static void load_entries(cit_store *s, int64_t n, entries *e) {
    sqlite3_stmt *st = NULL;
    if (cit__store_prepare(s, &st,
                           "SELECT seqno, at, stream, event, actor, sealed, payload FROM audit_entries ORDER BY seqno") < 0)
        die_cit("prepare");
    e->n = n;
    e->off = calloc((size_t)n + 1, sizeof *e->off);
    size_t cap = (size_t)n * 200, len = 0;
    e->data = malloc(cap);
    if (!e->off || !e->data)
        die("out of memory");
    int64_t i = 0;
    while (i < n && sqlite3_step(st) == SQLITE_ROW) {
        cit_audit_row row = {.seqno = sqlite3_column_int64(st, 0), .at = sqlite3_column_int64(st, 1)};
        snprintf(row.stream, sizeof row.stream, "%s", (const char *)sqlite3_column_text(st, 2));
        snprintf(row.event, sizeof row.event, "%s", (const char *)sqlite3_column_text(st, 3));
        snprintf(row.actor, sizeof row.actor, "%s", (const char *)sqlite3_column_text(st, 4));
        row.sealed = sqlite3_column_int(st, 5);
        row.payload = (uint8_t *)sqlite3_column_blob(st, 6);
        row.payload_len = (size_t)sqlite3_column_bytes(st, 6);
        uint8_t *b = NULL;
        size_t bl = 0;
        if (row.seqno != i + 1 || cit__audit_entry_bytes(&row, &b, &bl) < 0)
            die("reading the entries");
        if (len + bl + 1 > cap) {
            cap *= 2;
            if (!(e->data = realloc(e->data, cap)))
                die("out of memory");
        }
        e->off[i++] = len;
        e->data[len] = 0x00;
        memcpy(e->data + len + 1, b, bl);
        len += bl + 1;
        free(b);
    }
    sqlite3_finalize(st);
    if (i != n)
        die("the log does not hold every entry");
    e->off[n] = len;
}

static EVP_MD_CTX *mdctx;
static EVP_MD *sha256;

static void evp_sha256(const uint8_t *p, size_t n, uint8_t out[32]) {
    unsigned int l = 32;
    if (EVP_DigestInit_ex2(mdctx, sha256, NULL) != 1 || EVP_DigestUpdate(mdctx, p, n) != 1 ||
        EVP_DigestFinal_ex(mdctx, out, &l) != 1)
        die("EVP SHA-256 failed");
}

static uint8_t sink[32];

static void raw_sha256(const entries *e) {
    uint8_t h[32];
    for (int64_t i = 0; i < e->n; i++) {
        evp_sha256(e->data + e->off[i], e->off[i + 1] - e->off[i], h);
        sink[i & 31] ^= h[0];
    }
}

static void raw_sha256x3(const entries *e) {
    uint8_t leaf[32], buf[65], chain[32] = {0}, node[32];
    for (int64_t i = 0; i < e->n; i++) {
        evp_sha256(e->data + e->off[i], e->off[i + 1] - e->off[i], leaf);
        buf[0] = 0x02;
        memcpy(buf + 1, chain, 32);
        memcpy(buf + 33, leaf, 32);
        evp_sha256(buf, sizeof buf, chain);
        buf[0] = 0x01;
        evp_sha256(buf, sizeof buf, node);
        sink[i & 31] ^= node[0];
    }
}

static void lib_verify(cit_ctx *ctx, int64_t n) {
    json_t *out = NULL;
    if (cit_audit_chain_verify(&out, ctx) < 0)
        die_cit("cit_audit_chain_verify");
    if (!json_is_true(json_object_get(out, "valid")) || json_integer_value(json_object_get(out, "entries")) != n)
        die("the chain did not verify");
    json_decref(out);
}

static void stats_line(const char *name, double *us, int n, const char *what) {
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += us[i];
    double mean = sum / n, p50 = quantile(us, n, 0.50), p90 = quantile(us, n, 0.90), p99 = quantile(us, n, 0.99);
    printf("  %-12s %9.1f %9.1f %9.1f %9.1f %9.1f %6d  %s\n", name, p50, p90, p99, us[n - 1], mean, n, what);
}

static void rm_rf(const char *dir) {
    const char *names[] = {"store.db", "store.db-wal", "store.db-shm", "store.db.tpmstate", "store.db.tpmstate.lock",
                           "store.db.audit-head"};
    char p[4300];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void) {
    int64_t n = env_int("BENCH_ENTRIES", 1000000, BATCH, 100000000);
    n -= n % BATCH;
    int nproofs = env_int("BENCH_PROOFS", 1000, 10, 1000000);
    int rounds = env_int("BENCH_ROUNDS", 3, 1, MAX_ROUNDS);
    setenv("CITADEL_ACTOR", "bench", 1);
    const char *tmpbase = getenv("TMPDIR");
    char dir[4096], store[4200];
    snprintf(dir, sizeof dir, "%s/citadel-audit-proof.XXXXXX", tmpbase && *tmpbase ? tmpbase : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(store, sizeof store, "%s/store.db", dir);

    cit_ctx *ctx = NULL;
    json_t *out = NULL;
    cit_ctx_options co = {.store_path = store, .backend = "vtpm"};
    if (cit_ctx_new(&ctx, &co) < 0)
        die_cit("cit_ctx_new");
    if (cit_workspace_init(&out, ctx, NULL) < 0)
        die_cit("cit_workspace_init");
    json_decref(out);

    /* The log. */
    static uint8_t payload[BATCH][PAYLOAD_LEN];
    static cit_audit_record recs[BATCH];
    double t0 = now_s();
    for (int64_t done = 0; done < n; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            char *p = (char *)payload[i];
            int k = snprintf(p, PAYLOAD_LEN, "{\"op\":\"key.sign\",\"path\":\"svc/api-%09lld\",\"digest\":\"",
                             (long long)(done + i));
            for (; k < PAYLOAD_LEN - 2; k++)
                p[k] = "0123456789abcdef"[(i * 7 + k * 13) & 15];
            p[PAYLOAD_LEN - 2] = '"';
            p[PAYLOAD_LEN - 1] = '}';
            recs[i] = (cit_audit_record){.event = "key.sign", .payload = payload[i], .payload_len = PAYLOAD_LEN};
        }
        if (cit_audit_append_batch(ctx, recs, BATCH, NULL) < 0)
            die_cit("cit_audit_append_batch");
    }
    double build_s = now_s() - t0;
    int64_t size = 0;
    if (cit__audit_size(ctx->store, &size) < 0 || size != n)
        die("the log does not hold every entry");
    printf("audit-proof: a log of %lld entries (batches of %d, %d-byte payloads) built in %.1f s: %.0f entries/s\n\n",
           (long long)n, BATCH, PAYLOAD_LEN, build_s, (double)n / build_s);

    /* (a) inclusion proofs, interleaved with a plain SELECT of the same row */
    double *prove_us = calloc((size_t)nproofs, sizeof(double)), *sel_us = calloc((size_t)nproofs, sizeof(double));
    double *cons_us = calloc((size_t)nproofs, sizeof(double)), *prove_cpu = calloc((size_t)nproofs, sizeof(double));
    double *cons_cpu = calloc((size_t)nproofs, sizeof(double));
    if (!prove_us || !sel_us || !cons_us || !prove_cpu || !cons_cpu)
        die("out of memory");
    sqlite3_stmt *sel = NULL;
    if (cit__store_prepare(ctx->store, &sel,
                           "SELECT seqno, at, stream, event, actor, sealed, payload, prev_hash, entry_hash "
                           "FROM audit_entries WHERE seqno = ?") < 0)
        die_cit("prepare");
    for (int i = 0; i < nproofs; i++) {
        int64_t seq = 1 + (int64_t)(next_rand() % (uint64_t)n);
        for (int j = 0; j < 2; j++) {
            if ((i + j) % 2 == 0) {
                double a = now_s(), c = cpu_s();
                if (cit_audit_prove(&out, ctx, seq, n) < 0)
                    die_cit("cit_audit_prove");
                prove_us[i] = (now_s() - a) * 1e6;
                prove_cpu[i] = (cpu_s() - c) * 1e6;
                if (!json_is_true(json_object_get(out, "verified")))
                    die("an inclusion proof did not verify");
                json_decref(out);
            } else {
                double a = now_s();
                sqlite3_bind_int64(sel, 1, seq);
                if (sqlite3_step(sel) != SQLITE_ROW)
                    die("SELECT found no row");
                sink[0] ^= (uint8_t)sqlite3_column_bytes(sel, 6);
                sqlite3_reset(sel);
                sel_us[i] = (now_s() - a) * 1e6;
            }
        }
    }
    sqlite3_finalize(sel);
    /* consistency proofs */
    for (int i = 0; i < nproofs; i++) {
        int64_t old = 1 + (int64_t)(next_rand() % (uint64_t)(n - 1));
        double a = now_s(), c = cpu_s();
        if (cit_audit_prove_consistency(&out, ctx, old, n) < 0)
            die_cit("cit_audit_prove_consistency");
        cons_us[i] = (now_s() - a) * 1e6;
        cons_cpu[i] = (cpu_s() - c) * 1e6;
        if (!json_is_true(json_object_get(out, "verified")))
            die("a consistency proof did not verify");
        json_decref(out);
    }
    printf("  proofs in a tree of %lld entries, random entries / old sizes; microseconds per call\n", (long long)n);
    printf("  %-12s %9s %9s %9s %9s %9s %6s\n", "", "median", "p90", "p99", "max", "mean", "n");
    stats_line("prove", prove_us, nproofs, "cit_audit_prove (goal: < 1000 us)");
    stats_line("consistency", cons_us, nproofs, "cit_audit_prove_consistency(old, size)");
    stats_line("select", sel_us, nproofs, "context: one prepared SELECT of the entry row");
    stats_line("prove cpu", prove_cpu, nproofs, "thread CPU time of the same calls (less sensitive to other load)");
    stats_line("consist. cpu", cons_cpu, nproofs, "thread CPU time of the same calls");
    double prove_p50 = quantile(prove_us, nproofs, 0.5), prove_p99 = quantile(prove_us, nproofs, 0.99);
    double cons_p50 = quantile(cons_us, nproofs, 0.5), cons_p99 = quantile(cons_us, nproofs, 0.99);
    double sel_p50 = quantile(sel_us, nproofs, 0.5);

    /* (b) full chain verification against raw SHA-256 of the same entry bytes */
    entries e;
    load_entries(ctx->store, n, &e);
    mdctx = EVP_MD_CTX_new();
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!mdctx || !sha256)
        die("EVP set-up failed");
    double rate[3][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < 3; j++) {
            int v = (j + r) % 3;
            double a = now_s();
            if (v == 0)
                lib_verify(ctx, n);
            else if (v == 1)
                raw_sha256(&e);
            else
                raw_sha256x3(&e);
            rate[v][r] = (double)n / (now_s() - a);
            if (getenv("BENCH_VERBOSE"))
                fprintf(stderr, "round %d %s %.0f entries/s\n", r, v == 0 ? "verify" : v == 1 ? "sha256" : "sha256x3",
                        rate[v][r]);
        }
    }
    double ratio[MAX_ROUNDS], ratio3[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        ratio[r] = rate[0][r] / rate[1][r];
        ratio3[r] = rate[0][r] / rate[2][r];
    }
    double mv = median(rate[0], rounds), ms = median(rate[1], rounds), m3 = median(rate[2], rounds);
    double pr = median(ratio, rounds), pr3 = median(ratio3, rounds);
    printf("\n  full chain verification, %lld entries, %d rounds (rotating order); entries/s, median over rounds\n",
           (long long)n, rounds);
    printf("  %-12s %12.0f  %s\n", "verify", mv, "cit_audit_chain_verify (store read, leaf + link + Merkle frontier)");
    printf("  %-12s %12.0f  %s\n", "sha256", ms, "peer: one EVP SHA-256 per entry of the same bytes, in memory");
    printf("  %-12s %12.0f  %s\n", "sha256x3", m3, "context: leaf + chain link + one node hash per entry, in memory");
    printf("  verify/sha256: %.3f   verify/sha256x3: %.3f (medians of per-round ratios)\n", pr, pr3);

    printf("RESULT\taudit-proof\tprove median (ms)\t%.3f\tSELECT row\t%.3f\t%.1f\t< 1 ms\n", prove_p50 / 1000,
           sel_p50 / 1000, prove_p50 / sel_p50);
    printf("RESULT\taudit-proof\tprove p99 (ms)\t%.3f\t-\t-\t-\t< 1 ms\n", prove_p99 / 1000);
    printf("RESULT\taudit-proof\tprove cpu median (ms)\t%.3f\t-\t-\t-\t< 1 ms\n", quantile(prove_cpu, nproofs, 0.5) / 1000);
    printf("RESULT\taudit-proof\tprove cpu p99 (ms)\t%.3f\t-\t-\t-\t< 1 ms\n", quantile(prove_cpu, nproofs, 0.99) / 1000);
    printf("RESULT\taudit-proof\tconsistency median (ms)\t%.3f\t-\t-\t-\t-\n", cons_p50 / 1000);
    printf("RESULT\taudit-proof\tconsistency p99 (ms)\t%.3f\t-\t-\t-\t-\n", cons_p99 / 1000);
    printf("RESULT\taudit-proof\tchain verify (entries/s)\t%.0f\tEVP SHA-256\t%.0f\t%.3f\t-\n", mv, ms, pr);
    printf("RESULT\taudit-proof\tchain verify (entries/s)\t%.0f\tEVP SHA-256 x3\t%.0f\t%.3f\t-\n", mv, m3, pr3);

    free(e.data);
    free(e.off);
    free(prove_us);
    free(sel_us);
    free(cons_us);
    free(prove_cpu);
    free(cons_cpu);
    EVP_MD_CTX_free(mdctx);
    EVP_MD_free(sha256);
    int rc = cit_ctx_close(ctx);
    if (!getenv("BENCH_KEEP"))
        rm_rf(dir);
    else
        fprintf(stderr, "audit-proof: workspace kept in %s\n", dir);
    return rc < 0 ? 1 : 0;
}
