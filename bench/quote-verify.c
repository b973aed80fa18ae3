/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/quote-verify: quote verification throughput through libcitadel (ECDSA P-256 AK, PCRs
 * 0,7,11, 20-byte nonces) against raw OpenSSL ECDSA P-256 verification of the same signatures
 * over the same attest bytes, in the same run (issue 5: goal lib >= 80 % of raw, and scaling
 * with cores).
 *
 * Setup (not timed): a temporary vTPM workspace, one AK, BENCH_QUOTES (default 64) quotes made
 * with cit_attest_quote, each over its own nonce, written to files; the AK's public key to a PEM
 * file. For raw, each quote's attest bytes and its signature as DER, and the key, are decoded
 * once.
 *
 *   file      cit_attest_verify(): the public API, as `attest verify --quote F --nonce N
 *             --ak-pub ak.pem` runs it: read both files, parse the JSON, base64, the PEM key,
 *             unmarshal TPMS_ATTEST and TPMT_SIGNATURE, SHA-256 of the attest bytes, r||s to
 *             DER, ECDSA verify, nonce, PCR digest (hex decode + SHA-256), the JSON report.
 *   mem       cit__attest_verify_buf(): the same checks on the quote JSON already in memory with
 *             the AK's key already parsed (what a verifier service that keeps enrolled keys
 *             does; the CLI path is file = read + PEM + mem).
 *   raw       EVP_DigestVerifyInit + EVP_DigestVerify(attest bytes, DER signature) with the
 *             key parsed once: the ECDSA P-256 verification (and SHA-256 of the attest bytes)
 *             every quote verification needs, nothing else.
 *
 * Each thread verifies the quotes round robin with its own EVP contexts (BENCH_THREADS, default
 * "1 2": each count in turn). Variants run in rounds of BENCH_ROUND_MS (default 200 ms), in
 * rotating order, BENCH_ROUNDS rounds (default 10); a rate is the median over rounds (sum over
 * threads within a round), and a ratio the median of per-round ratios (paired). Every result is
 * checked: lib must say valid, raw must return 1.
 *
 * Output: a table, the ratios, and RESULT lines (tab separated) for bench/run.sh.
 */
#include <errno.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include "basic/util.h"
#include "citadel/citadel.h"
#include "core/attest.h"
#include "crypto/crypto.h"

#define BENCH_NAME "quote-verify"
#include "bench.h"

#define MAX_ROUNDS 200
#define MAX_QUOTES 1024
#define MAX_THREADS 16

static void die(const char *what) {
    fprintf(stderr, "quote-verify: %s\n", what);
    exit(1);
}

typedef struct quote {
    char path[4200];
    char nonce[41];
    uint8_t *json; /* the file's bytes */
    size_t json_len;
    uint8_t *attest, *der;
    size_t attest_len, der_len;
} quote;

static quote quotes[MAX_QUOTES];
static int n_quotes;
static char ak_pem_path[4200];
static EVP_PKEY *ak_key;

/* ---- the variants: one verification of quote i ---- */

static void v_file(int i) {
    json_t *out = NULL;
    bool valid = false;
    if (cit_attest_verify(&out, NULL, quotes[i].path, quotes[i].nonce, ak_pem_path, NULL, NULL, &valid) < 0)
        die_cit("cit_attest_verify");
    if (!valid)
        die("cit_attest_verify said a good quote is not valid");
    json_decref(out);
}

static void v_mem(int i) {
    json_t *out = NULL;
    bool valid = false;
    if (cit__attest_verify_buf(&out, NULL, "bench", quotes[i].json, quotes[i].json_len, quotes[i].nonce, ak_key,
                               "bench", NULL, NULL, &valid) < 0)
        die_cit("cit__attest_verify_buf");
    if (!valid)
        die("cit__attest_verify_buf said a good quote is not valid");
    json_decref(out);
}

static void v_raw(int i) {
    /* a context per verification, as any verifier of independent quotes needs one */
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m || EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, ak_key) != 1 ||
        EVP_DigestVerify(m, quotes[i].der, quotes[i].der_len, quotes[i].attest, quotes[i].attest_len) != 1)
        die("raw EVP_DigestVerify refused a good signature");
    EVP_MD_CTX_free(m);
}

typedef struct variant {
    const char *name, *what;
    void (*fn)(int);
} variant;

static const variant variants[] = {
    {"file", "cit_attest_verify: read quote + PEM files, parse, every check, JSON report", v_file},
    {"mem", "cit__attest_verify_buf: quote JSON in memory, key parsed once, every check, report", v_mem},
    {"raw", "EVP_DigestVerifyInit + EVP_DigestVerify (SHA-256 + ECDSA P-256), key parsed once", v_raw},
};
#define NV ((int)(sizeof variants / sizeof variants[0]))

/* ---- threads: run fn on quotes round robin for a fixed time ---- */

typedef struct worker {
    pthread_t t;
    void (*fn)(int);
    int start;
    double budget;
    long n;
    double secs;
} worker;

static pthread_barrier_t barrier;

static void *work(void *arg) {
    worker *w = arg;
    pthread_barrier_wait(&barrier);
    double t0 = now_s(), t;
    long n = 0;
    int i = w->start;
    do {
        w->fn(i);
        i = (i + 1) % n_quotes;
        n++;
    } while ((t = now_s()) - t0 < w->budget);
    w->n = n;
    w->secs = t - t0;
    return NULL;
}

/* Verifications per second of fn on `threads` threads for budget seconds (sum of the threads). */
static double run_round(void (*fn)(int), int threads, double budget) {
    worker ws[MAX_THREADS];
    pthread_barrier_init(&barrier, NULL, (unsigned)threads);
    for (int k = 0; k < threads; k++) {
        ws[k] = (worker){.fn = fn, .start = (k * n_quotes) / threads, .budget = budget};
        if (pthread_create(&ws[k].t, NULL, work, &ws[k]) != 0)
            die("pthread_create failed");
    }
    double rate = 0;
    for (int k = 0; k < threads; k++) {
        pthread_join(ws[k].t, NULL);
        rate += (double)ws[k].n / ws[k].secs;
    }
    pthread_barrier_destroy(&barrier);
    return rate;
}

/* ---- setup ---- */

static void read_all(const char *path, uint8_t **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot read a quote file back");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n + 1);
    if (!*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n)
        die("cannot read a quote file back");
    fclose(f);
    *len = (size_t)n;
}

/* The quote's attest bytes and its signature as DER, decoded here with OpenSSL and tss2-mu. */
static void decode_for_raw(quote *q) {
    json_t *j = json_loadb((const char *)q->json, q->json_len, 0, NULL);
    uint8_t *sb = NULL;
    size_t sl = 0, off = 0;
    TPMT_SIGNATURE sig;
    if (!j || cit__base64_decode(&q->attest, &q->attest_len, json_string_value(json_object_get(j, "attest"))) < 0 ||
        cit__base64_decode(&sb, &sl, json_string_value(json_object_get(j, "signature"))) < 0 ||
        Tss2_MU_TPMT_SIGNATURE_Unmarshal(sb, sl, &off, &sig) != TSS2_RC_SUCCESS || sig.sigAlg != TPM2_ALG_ECDSA)
        die("a quote does not decode");
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig.signature.ecdsa.signatureR.buffer, sig.signature.ecdsa.signatureR.size, NULL);
    BIGNUM *s = BN_bin2bn(sig.signature.ecdsa.signatureS.buffer, sig.signature.ecdsa.signatureS.size, NULL);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1)
        die("ECDSA_SIG");
    int n = i2d_ECDSA_SIG(es, NULL);
    q->der = malloc((size_t)n);
    uint8_t *p = q->der;
    q->der_len = (size_t)i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    free(sb);
    json_decref(j);
}

int main(void) {
    int rounds = env_int("BENCH_ROUNDS", 10, 1, MAX_ROUNDS);
    int round_ms = env_int("BENCH_ROUND_MS", 200, 20, 60000);
    n_quotes = env_int("BENCH_QUOTES", 64, 1, MAX_QUOTES);
    const char *threads_env = getenv("BENCH_THREADS");
    int thread_counts[8], n_counts = 0;
    {
        char tl[64];
        snprintf(tl, sizeof tl, "%s", threads_env && *threads_env ? threads_env : "1 2");
        for (char *tok = strtok(tl, " ,"); tok && n_counts < 8; tok = strtok(NULL, " ,")) {
            int t = atoi(tok);
            if (t >= 1 && t <= MAX_THREADS)
                thread_counts[n_counts++] = t;
        }
        if (!n_counts)
            thread_counts[n_counts++] = 1;
    }
    const char *tmpbase = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/citadel-quote-verify.XXXXXX", tmpbase && *tmpbase ? tmpbase : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char store[4200];
    snprintf(store, sizeof store, "%s/store.db", dir);

    cit_ctx *ctx;
    cit_ctx_options co = {.store_path = store, .backend = "vtpm"};
    json_t *out = NULL;
    if (cit_ctx_new(&ctx, &co) < 0)
        die_cit("cit_ctx_new");
    if (cit_workspace_init(&out, ctx, NULL) < 0)
        die_cit("cit_workspace_init");
    json_decref(out);
    if (cit_attest_ak_create(&out, ctx, "bench/ak", "ecc-p256") < 0)
        die_cit("cit_attest_ak_create");
    const char *pem = json_string_value(json_object_get(out, "ak_public_pem"));
    snprintf(ak_pem_path, sizeof ak_pem_path, "%s/ak.pem", dir);
    FILE *f = fopen(ak_pem_path, "w");
    if (!pem || !f || fputs(pem, f) < 0 || fclose(f) != 0)
        die("cannot write ak.pem");
    if (cit__pubkey_from_pem(&ak_key, pem, strlen(pem)) < 0)
        die_cit("cit__pubkey_from_pem");
    json_decref(out);
    double tq = now_s();
    for (int i = 0; i < n_quotes; i++) {
        quote *q = &quotes[i];
        uint8_t nb[20];
        for (int k = 0; k < 20; k++)
            nb[k] = (uint8_t)(i * 37 + k * 11 + 1);
        char *hex = cit_hex_encode(nb, sizeof nb);
        snprintf(q->nonce, sizeof q->nonce, "%s", hex);
        free(hex);
        snprintf(q->path, sizeof q->path, "%s/q%d.json", dir, i);
        if (cit_attest_quote(&out, ctx, "bench/ak", "0,7,11", NULL, q->nonce, q->path, NULL) < 0)
            die_cit("cit_attest_quote");
        json_decref(out);
        read_all(q->path, &q->json, &q->json_len);
        decode_for_raw(q);
    }
    tq = now_s() - tq;
    if (cit_ctx_close(ctx) < 0)
        die_cit("cit_ctx_close");

    /* warm-up, and every variant accepts every quote */
    for (int v = 0; v < NV; v++)
        for (int i = 0; i < n_quotes; i++)
            variants[v].fn(i);

    printf("quote-verify: %d quotes (ECDSA P-256 AK, PCRs 0,7,11 of sha256, 20-byte nonces), made on the vTPM in "
           "%.1f ms each (cit_attest_quote, in-process)\n",
           n_quotes, tq * 1000 / n_quotes);
    printf("              %d rounds x %d ms per variant and thread count, rotating order; rate = median over rounds\n\n",
           rounds, round_ms);
    printf("  %-5s %-7s %12s %9s %17s  %s\n", "", "threads", "verifies/s", "us each", "min-max", "what one costs");
    double med[8][NV], ratio_file[8], ratio_mem[8];
    for (int c = 0; c < n_counts; c++) {
        int th = thread_counts[c];
        double rate[NV][MAX_ROUNDS], rf[MAX_ROUNDS], rm[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++) {
            for (int j = 0; j < NV; j++) {
                int v = (j + r) % NV;
                rate[v][r] = run_round(variants[v].fn, th, round_ms / 1000.0);
            }
            rf[r] = rate[0][r] / rate[2][r];
            rm[r] = rate[1][r] / rate[2][r];
        }
        for (int v = 0; v < NV; v++) {
            med[c][v] = median(rate[v], rounds);
            double lo = rate[v][0], hi = rate[v][0];
            for (int r = 1; r < rounds; r++) {
                lo = rate[v][r] < lo ? rate[v][r] : lo;
                hi = rate[v][r] > hi ? rate[v][r] : hi;
            }
            char mm[40];
            snprintf(mm, sizeof mm, "%.0f-%.0f", lo, hi);
            printf("  %-5s %-7d %12.0f %9.1f %17s  %s\n", variants[v].name, th, med[c][v], 1e6 * th / med[c][v], mm,
                   c == 0 ? variants[v].what : "");
        }
        ratio_file[c] = median(rf, rounds);
        ratio_mem[c] = median(rm, rounds);
    }
    printf("\n  ratios to raw (goal >= 0.80), median of per-round ratios\n");
    printf("    %-7s %9s %9s\n", "threads", "file/raw", "mem/raw");
    for (int c = 0; c < n_counts; c++)
        printf("    %-7d %9.3f %9.3f\n", thread_counts[c], ratio_file[c], ratio_mem[c]);
    if (n_counts > 1) {
        printf("\n  scaling from %d to %d threads (rate ratio; %ld CPUs online)\n", thread_counts[0],
               thread_counts[n_counts - 1], sysconf(_SC_NPROCESSORS_ONLN));
        for (int v = 0; v < NV; v++)
            printf("    %-5s %.2fx\n", variants[v].name, med[n_counts - 1][v] / med[0][v]);
    }
    /* RESULT bench metric ours peer-name peer ratio goal */
    for (int c = 0; c < n_counts; c++) {
        printf("RESULT\tquote-verify\tmem, %d thread%s (verifies/s)\t%.0f\traw EVP_DigestVerify\t%.0f\t%.3f\t>= 0.80\n",
               thread_counts[c], thread_counts[c] > 1 ? "s" : "", med[c][1], med[c][2], ratio_mem[c]);
        printf("RESULT\tquote-verify\tfile, %d thread%s (verifies/s)\t%.0f\traw EVP_DigestVerify\t%.0f\t%.3f\t>= 0.80\n",
               thread_counts[c], thread_counts[c] > 1 ? "s" : "", med[c][0], med[c][2], ratio_file[c]);
    }

    for (int i = 0; i < n_quotes; i++) {
        unlink(quotes[i].path);
        free(quotes[i].json);
        free(quotes[i].attest);
        free(quotes[i].der);
    }
    EVP_PKEY_free(ak_key);
    if (!getenv("BENCH_KEEP")) {
        const char *suffixes[] = {"", "-wal", "-shm", "-journal", ".tpmstate", ".tpmstate.lock"};
        char p[4300];
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
            snprintf(p, sizeof p, "%s%s", store, suffixes[i]);
            unlink(p);
        }
        unlink(ak_pem_path);
        rmdir(dir);
    }
    return 0;
}
