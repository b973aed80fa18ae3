/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/audit-append: batched audit log appends through libcitadel (cit_audit_append_batch)
 * against plain SQLite inserts of the same rows, in the same process and the same run.
 *
 *   lib   cit_audit_append_batch() of BENCH_BATCH records (default 1000, payloads of about 100
 *         bytes, stream "default") on a temporary vTPM workspace. Per batch: BEGIN IMMEDIATE, the
 *         built-in streams (INSERT OR IGNORE), the head read and compared with the writer state,
 *         the stream's tier, then per entry the canonical bytes, the RFC 9162 leaf hash, the
 *         chain link and the INSERT; a level-8 Merkle node per 256 entries (and a level-16 one
 *         per 65,536); the head file written with fdatasync (pending), COMMIT (WAL,
 *         synchronous=FULL: one sync), the head file rewritten (committed, no sync).
 *   raw   the same rows into a separate SQLite database with the same audit_entries table and
 *         index (copied from the store schema), the store's PRAGMAs (journal_mode=WAL,
 *         synchronous=FULL) and the same batch size: BEGIN IMMEDIATE, one prepared INSERT per
 *         row (the same nine values: seqno, time, stream, event, actor, sealed, payload, and two
 *         32-byte hashes, which raw does not compute), COMMIT. What any log stored in SQLite
 *         pays at least.
 *
 * Both databases live in one temporary directory (TMPDIR) and grow side by side. The run is
 * BENCH_ROUNDS rounds (default 25) of BENCH_BATCHES batches per variant (default 10), the order
 * alternating every round: 250,000 entries per side by default. A rate is entries per second of
 * wall time within a round; the report gives the median over rounds, the total, and the median
 * of the per-round ratios lib/raw (paired). Goals: lib >= 50 % of raw and >= 100,000 entries/s.
 *
 * Output: a table and RESULT lines (tab separated) for bench/run.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "citadel/citadel.h"
#include "core/audit.h"
#include "core/ctx.h"
#include "store/store.h"

#define BENCH_NAME "audit-append"
#include "bench.h"

#define MAX_ROUNDS 400
#define MAX_BATCH 100000
#define PAYLOAD_LEN 100

static void die_sql(sqlite3 *db, const char *what) {
    fprintf(stderr, "audit-append: %s failed: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

typedef struct bench {
    int batch;
    cit_ctx *ctx;
    cit_audit_record *recs;
    uint8_t (*payload)[PAYLOAD_LEN];
    uint8_t (*hashes)[64]; /* raw's prev_hash and entry_hash values */
    sqlite3 *raw;
    int64_t raw_seq;
} bench;

/* The same nine columns and index as audit_entries in src/lib/store/schema.c. */
static const char raw_schema[] = "CREATE TABLE audit_entries (\n"
                                 "  seqno INTEGER PRIMARY KEY,\n"
                                 "  at INTEGER NOT NULL,\n"
                                 "  stream TEXT NOT NULL,\n"
                                 "  event TEXT NOT NULL,\n"
                                 "  actor TEXT NOT NULL,\n"
                                 "  sealed INTEGER NOT NULL DEFAULT 0,\n"
                                 "  payload BLOB NOT NULL,\n"
                                 "  prev_hash BLOB NOT NULL,\n"
                                 "  entry_hash BLOB NOT NULL\n"
                                 ");\n"
                                 "CREATE INDEX audit_entries_stream ON audit_entries(stream, seqno);\n";

static void lib_batch(bench *b) {
    int64_t first = 0;
    if (cit_audit_append_batch(b->ctx, b->recs, (size_t)b->batch, &first) < 0)
        die_cit("cit_audit_append_batch");
}

static void raw_batch(bench *b) {
    sqlite3 *db = b->raw;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        die_sql(db, "BEGIN");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO audit_entries (seqno, at, stream, event, actor, sealed, payload, prev_hash, "
                           "entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        die_sql(db, "prepare");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    for (int i = 0; i < b->batch; i++) {
        sqlite3_bind_int64(st, 1, ++b->raw_seq);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, "default", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, b->recs[i].event, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, "bench", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, 0);
        sqlite3_bind_blob(st, 7, b->recs[i].payload, (int)b->recs[i].payload_len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 8, b->hashes[i], 32, SQLITE_STATIC);
        sqlite3_bind_blob(st, 9, b->hashes[i] + 32, 32, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            die_sql(db, "INSERT");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        die_sql(db, "COMMIT");
}

typedef struct variant {
    const char *name;
    void (*fn)(bench *);
    double rate[MAX_ROUNDS], cpu_rate[MAX_ROUNDS];
    long total_n;
    double total_s;
} variant;

static void rm_rf(const char *dir) {
    const char *names[] = {"store.db", "store.db-wal", "store.db-shm", "store.db.tpmstate", "store.db.tpmstate.lock",
                           "store.db.audit-head", "raw.db", "raw.db-wal", "raw.db-shm"};
    char p[4300];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void) {
    int rounds = env_int("BENCH_ROUNDS", 25, 1, MAX_ROUNDS);
    int per_round = env_int("BENCH_BATCHES", 10, 1, 10000);
    bench b = {.batch = env_int("BENCH_BATCH", 1000, 1, MAX_BATCH)};
    setenv("CITADEL_ACTOR", "bench", 1); /* the actor column: the same text on both sides */

    const char *tmpbase = getenv("TMPDIR");
    char dir[4096], store[4200], rawp[4200];
    snprintf(dir, sizeof dir, "%s/citadel-audit-append.XXXXXX", tmpbase && *tmpbase ? tmpbase : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(store, sizeof store, "%s/store.db", dir);
    snprintf(rawp, sizeof rawp, "%s/raw.db", dir);

    /* The records: ~100-byte JSON-like payloads, distinct within a batch. */
    b.recs = calloc((size_t)b.batch, sizeof *b.recs);
    b.payload = calloc((size_t)b.batch, sizeof *b.payload);
    b.hashes = calloc((size_t)b.batch, sizeof *b.hashes);
    if (!b.recs || !b.payload || !b.hashes)
        return 1;
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < b.batch; i++) {
        char *p = (char *)b.payload[i];
        int n = snprintf(p, PAYLOAD_LEN, "{\"op\":\"key.sign\",\"path\":\"svc/api-%06d\",\"digest\":\"", i);
        for (; n < PAYLOAD_LEN - 2; n++)
            p[n] = "0123456789abcdef"[(i * 7 + n * 13) & 15];
        p[PAYLOAD_LEN - 2] = '"';
        p[PAYLOAD_LEN - 1] = '}';
        b.recs[i] = (cit_audit_record){.stream = NULL, .event = "key.sign", .payload = b.payload[i],
                                       .payload_len = PAYLOAD_LEN};
        for (int k = 0; k < 64; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b.hashes[i][k] = (uint8_t)x;
        }
    }

    cit_ctx_options co = {.store_path = store, .backend = "vtpm"};
    json_t *out = NULL;
    if (cit_ctx_new(&b.ctx, &co) < 0)
        die_cit("cit_ctx_new");
    if (cit_workspace_init(&out, b.ctx, NULL) < 0)
        die_cit("cit_workspace_init");
    json_decref(out);

    if (sqlite3_open_v2(rawp, &b.raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        die_sql(b.raw, "open raw.db");
    /* the store's PRAGMAs (src/lib/store/store.c) */
    if (sqlite3_exec(b.raw, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(b.raw, raw_schema, NULL, NULL, NULL) != SQLITE_OK)
        die_sql(b.raw, "raw schema");
    sqlite3_busy_timeout(b.raw, 15000);

    variant vs[] = {{"lib", lib_batch, {0}, {0}, 0, 0}, {"raw", raw_batch, {0}, {0}, 0, 0}};
    const int nv = 2;
    for (int i = 0; i < nv; i++) /* warm-up: one batch each (the writer state, the page cache) */
        vs[i].fn(&b);

    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < nv; j++) {
            variant *v = &vs[(j + r) % nv];
            double t0 = now_s(), c0 = cpu_s();
            for (int k = 0; k < per_round; k++)
                v->fn(&b);
            double t = now_s() - t0, c = cpu_s() - c0;
            long n = (long)per_round * b.batch;
            v->rate[r] = (double)n / t;
            v->cpu_rate[r] = (double)n / c;
            v->total_n += n;
            v->total_s += t;
            if (getenv("BENCH_VERBOSE"))
                fprintf(stderr, "round %3d %-4s %10.0f entries/s (cpu %10.0f)\n", r, v->name, v->rate[r],
                        v->cpu_rate[r]);
        }
    }

    /* Both logs must hold every entry. */
    int64_t size = 0;
    if (cit__audit_size(b.ctx->store, &size) < 0)
        die_cit("cit__audit_size");
    if (size != b.raw_seq || size != (int64_t)(rounds * per_round + 1) * b.batch) {
        fprintf(stderr, "audit-append: entry counts differ: lib %lld, raw %lld\n", (long long)size,
                (long long)b.raw_seq);
        return 1;
    }

    double ratio[MAX_ROUNDS], cratio[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        ratio[r] = vs[0].rate[r] / vs[1].rate[r];
        cratio[r] = vs[0].cpu_rate[r] / vs[1].cpu_rate[r];
    }
    double med[2], cmed[2];
    printf("audit-append: entries/s, batches of %d entries (%d-byte payloads), one transaction per batch,\n"
           "              WAL + synchronous=FULL; %d rounds x %d batches per variant, alternating order\n\n",
           b.batch, PAYLOAD_LEN, rounds, per_round);
    printf("  %-4s %12s %12s %12s %12s %9s  %s\n", "", "entries/s", "us/entry", "total e/s", "cpu e/s", "entries",
           "what");
    static const char *what[] = {"cit_audit_append_batch (hash chain, Merkle nodes, head file, store)",
                                 "plain SQLite INSERTs of the same rows, same table, same PRAGMAs"};
    for (int i = 0; i < nv; i++) {
        med[i] = median(vs[i].rate, rounds);
        cmed[i] = median(vs[i].cpu_rate, rounds);
        printf("  %-4s %12.0f %12.2f %12.0f %12.0f %9ld  %s\n", vs[i].name, med[i], 1e6 / med[i],
               (double)vs[i].total_n / vs[i].total_s, cmed[i], vs[i].total_n, what[i]);
    }
    double pr = median(ratio, rounds), cpr = median(cratio, rounds);
    printf("\n  lib/raw: %.3f wall, %.3f thread CPU (median of per-round ratios; goal >= 0.50)\n", pr, cpr);
    printf("  lib: %.0f entries/s (goal >= 100000/s); log size at the end: %lld entries per side\n", med[0],
           (long long)size);
    printf("RESULT\taudit-append\tlib/raw (entries/s)\t%.0f\tSQLite INSERT\t%.0f\t%.3f\t>= 0.50\n", med[0], med[1], pr);
    printf("RESULT\taudit-append\tlib (entries/s)\t%.0f\tSQLite INSERT\t%.0f\t%.3f\t>= 100000/s\n", med[0], med[1],
           pr);

    sqlite3_close(b.raw);
    int rc = cit_ctx_close(b.ctx);
    if (!getenv("BENCH_KEEP"))
        rm_rf(dir);
    else
        fprintf(stderr, "audit-append: workspace kept in %s\n", dir);
    free(b.recs);
    free(b.payload);
    free(b.hashes);
    return rc < 0 ? 1 : 0;
}
