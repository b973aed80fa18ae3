/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/ed25519-lib: Ed25519 signatures per second with a TPM-sealed key, in one process on one
 * core, against raw libsodium in the same run (issue 4: warm >= 20,000 signatures/s; cold:
 * report it).
 *
 *   warm       cit_keycache_sign() of a 64-byte message, the key unlocked once: mutex, path
 *              lookup, idle check, sodium_mprotect to read-only and back to no-access around
 *              crypto_sign_detached. No TPM.
 *   raw        crypto_sign_detached() of the same message with the same 64-byte secret key in
 *              ordinary memory: the floor.
 *   cold-core  per signature: TPM2_Load of the sealed seed, a salted policy session, PolicyPCR,
 *              TPM2_Unseal (encrypted response), flush, seed expansion, sign, wipe
 *              (cit__ed25519_unseal_sk + crypto_sign_detached): what unsealing every time costs.
 *   cold-lib   cit_key_sign() on a 64-byte file: cold-core plus the store lookup, reading the
 *              file and the JSON result (hex + base64).
 *
 * The vTPM is the in-process libtpms behind citadel's TCTI; the key is bound to PCRs 0,7 (the
 * default). Variants run in rounds of about BENCH_ROUND_MS (default 100 ms), in rotating order;
 * a rate is the median over BENCH_ROUNDS rounds (default 20); the warm/raw ratio is the median of
 * the per-round ratios (paired). Output: a table and RESULT lines for bench/run.sh.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basic/util.h"
#include "citadel/citadel.h"
#include "core/ctx.h"
#include "core/ed25519.h"
#include "core/keys.h"

#define BENCH_NAME "ed25519-lib"
#include "bench.h"

#define MSG_LEN 64
#define MAX_ROUNDS 200
#define KEY "bench/ed"

typedef struct bench {
    cit_ctx *ctx;
    cit_keycache *cache;
    cit_object obj;
    uint8_t msg[MSG_LEN];
    uint8_t sig[64];
    uint8_t raw_sk[64]; /* the raw variant's copy, ordinary memory */
    uint8_t *sk;        /* cold-core's buffer, sodium_malloc'd */
    char msg_path[4200];
    long failures;
} bench;

static void v_warm(bench *b) {
    if (cit_keycache_sign(b->cache, KEY, b->msg, sizeof b->msg, b->sig) != 0)
        b->failures++;
}

static void v_raw(bench *b) {
    crypto_sign_detached(b->sig, NULL, b->msg, sizeof b->msg, b->raw_sk);
}

static void v_cold_core(bench *b) {
    if (cit__ed25519_unseal_sk(b->ctx, &b->obj, NULL, b->sk) != 0)
        b->failures++;
    crypto_sign_detached(b->sig, NULL, b->msg, sizeof b->msg, b->sk);
    sodium_memzero(b->sk, 64);
}

static void v_cold_lib(bench *b) {
    json_t *out = NULL;
    cit_key_sign_options o = {.path = KEY, .input = b->msg_path};
    if (cit_key_sign(&out, b->ctx, &o) != 0)
        b->failures++;
    json_decref(out);
}

typedef struct variant {
    const char *name, *what;
    void (*fn)(bench *);
    double rate[MAX_ROUNDS], cpu_rate[MAX_ROUNDS];
    int budget_div; /* the cold variants get a fraction of the round: they are 1000x slower */
} variant;

int main(void) {
    int rounds = env_int("BENCH_ROUNDS", 20, 1, MAX_ROUNDS);
    int round_ms = env_int("BENCH_ROUND_MS", 100, 20, 60000);
    if (sodium_init() < 0)
        return 1;
    const char *tmpbase = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/citadel-ed25519-lib.XXXXXX",
             tmpbase && *tmpbase ? tmpbase : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char store[4200];
    snprintf(store, sizeof store, "%s/store.db", dir);
    bench b = {0};
    for (int i = 0; i < MSG_LEN; i++)
        b.msg[i] = (uint8_t)(i * 37 + 1);
    snprintf(b.msg_path, sizeof b.msg_path, "%s/msg", dir);
    if (cit_write_file_atomic(b.msg_path, b.msg, sizeof b.msg, 0600, 0) < 0) {
        perror(b.msg_path);
        return 1;
    }
    cit_ctx_options co = {.store_path = store, .backend = "vtpm"};
    json_t *out = NULL;
    if (cit_ctx_new(&b.ctx, &co) < 0)
        die_cit("cit_ctx_new");
    if (cit_workspace_init(&out, b.ctx, NULL) < 0)
        die_cit("cit_workspace_init");
    json_decref(out);
    cit_key_create_options ko = {.path = KEY, .algorithm = "ed25519"}; /* PCRs 0,7 */
    if (cit_key_create(&out, b.ctx, &ko) < 0)
        die_cit("cit_key_create");
    json_decref(out);
    if (cit_keycache_new(&b.cache, 0) < 0 || cit_keycache_unlock(b.cache, b.ctx, KEY, NULL) < 0)
        die_cit("cit_keycache_unlock");
    if (cit__ctx_find(b.ctx, KEY, &b.obj) < 0)
        die_cit("finding the key");
    b.sk = sodium_malloc(64);
    if (!b.sk || cit__ed25519_unseal_sk(b.ctx, &b.obj, NULL, b.sk) < 0)
        die_cit("unsealing the key");
    memcpy(b.raw_sk, b.sk, 64); /* the floor needs the key in plain memory */

    /* every variant must produce the same (deterministic) signature */
    uint8_t ref[64], pk[32];
    crypto_sign_detached(ref, NULL, b.msg, sizeof b.msg, b.raw_sk);
    if (cit_keycache_public_key(b.cache, KEY, pk, NULL) < 0 ||
        crypto_sign_verify_detached(ref, b.msg, sizeof b.msg, pk) != 0) {
        fprintf(stderr, "ed25519-lib: the reference signature does not verify\n");
        return 1;
    }

    variant vs[] = {
        {"warm", "cit_keycache_sign, key unlocked once (no TPM)", v_warm, {0}, {0}, 1},
        {"raw", "crypto_sign_detached, same key in plain memory", v_raw, {0}, {0}, 1},
        {"cold-core",
         "unseal (Load+policy session+Unseal+Flush) + sign + wipe",
         v_cold_core,
         {0},
         {0},
         1},
        {"cold-lib",
         "cit_key_sign on a 64-byte file (cold-core + store, file, JSON)",
         v_cold_lib,
         {0},
         {0},
         1},
    };
    const int nv = (int)(sizeof vs / sizeof vs[0]);
    for (int i = 0; i < nv; i++) {
        for (int k = 0; k < 3; k++)
            vs[i].fn(&b);
        memset(b.sig, 0, sizeof b.sig);
        vs[i].fn(&b);
        if (memcmp(b.sig, ref, 64) != 0 && strcmp(vs[i].name, "cold-lib") != 0) {
            fprintf(stderr, "ed25519-lib: %s made another signature\n", vs[i].name);
            return 1;
        }
    }
    double budget = round_ms / 1000.0;
    const char *only = getenv("BENCH_ONLY");
    for (int r = 0; r < rounds; r++)
        for (int j = 0; j < nv; j++) {
            variant *x = &vs[(j + r) % nv];
            if (only && *only && strcmp(only, x->name) != 0) {
                x->rate[r] = x->cpu_rate[r] = 1e-9;
                continue;
            }
            long n = 0;
            double t0 = now_s(), c0 = cpu_s(), t;
            do {
                x->fn(&b);
                n++;
                t = now_s();
            } while (t - t0 < budget);
            x->rate[r] = (double)n / (t - t0);
            x->cpu_rate[r] = (double)n / (cpu_s() - c0);
        }
    if (b.failures) {
        fprintf(stderr, "ed25519-lib: %ld signatures failed\n", b.failures);
        return 1;
    }
    printf("ed25519-lib: Ed25519 signatures/s with a TPM-sealed key (vtpm, PCRs 0,7), 64-byte "
           "messages, one thread\n");
    printf(
        "             %d rounds x %d ms per variant, rotating order; rate = median over rounds\n\n",
        rounds, round_ms);
    printf("  %-10s %12s %12s   %s\n", "variant", "sig/s", "cpu sig/s", "what one signature costs");
    double med[8], cmed[8];
    for (int i = 0; i < nv; i++) {
        med[i] = median(vs[i].rate, rounds);
        cmed[i] = median(vs[i].cpu_rate, rounds);
        printf("  %-10s %12.0f %12.0f   %s\n", vs[i].name, med[i], cmed[i], vs[i].what);
    }
    double ratio[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
        ratio[r] = vs[0].rate[r] / vs[1].rate[r];
    double rw = median(ratio, rounds);
    printf("\n  warm/raw (paired): %.3f   cache overhead per signature: %.2f us\n", rw,
           1e6 / med[0] - 1e6 / med[1]);
    printf("  warm goal (issue 4): >= 20000 sig/s: %s\n", med[0] >= 20000 ? "met" : "NOT met");
    printf("  cold: %.0f sig/s (%.2f ms each) through the core, %.0f sig/s through cit_key_sign\n",
           med[2], 1e3 / med[2], med[3]);
    printf("RESULT\ted25519-lib\twarm cache (sig/s)\t%.1f\traw libsodium\t%.1f\t%.3f\t>= 20000/s\n",
           med[0], med[1], rw);
    printf("RESULT\ted25519-lib\tcold cit_key_sign (sig/s)\t%.1f\twarm\t%.1f\t%.5f\t-\n", med[3],
           med[0], med[3] / med[0]);

    sodium_free(b.sk);
    sodium_memzero(b.raw_sk, sizeof b.raw_sk);
    cit__object_clear(&b.obj);
    cit_keycache_free(b.cache);
    int rc = cit_ctx_close(b.ctx);
    const char *suffixes[] = {"", "-wal", "-shm", "-journal", ".tpmstate", ".tpmstate.lock"};
    char p[4300];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", store, suffixes[i]);
        unlink(p);
    }
    unlink(b.msg_path);
    rmdir(dir);
    return rc == 0 && med[0] > 0 ? 0 : 1;
}
