/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/sign-lib: ECDSA P-256 signatures per second through libcitadel against raw ESYS, on the
 * same in-process vTPM (libtpms behind citadel's TCTI), in the same process and the same run.
 *
 *   lib        cit_key_sign() on a 1 KiB file, key loaded on demand (the default key kind).
 *              Per signature: path check, store lookup of the object (SQLite), SHA-256 of the
 *              file (open/read/close), store lookup of the key blobs, SRK name read from the
 *              store meta table (the SRK ESYS_TR itself is cached), TPM2_Load, TPM2_Sign,
 *              TPM2_FlushContext, DER encoding and the JSON result (base64 + hex).
 *   lib-pers   cit_key_sign() with a persistent key (--persist): store lookup, file hash,
 *              TPM2_ReadPublic (Esys_TR_FromTPMPublic), TPM2_Sign, DER, JSON.
 *   raw        Esys_Sign() with a fixed digest on the same key, loaded once (cit__key_load)
 *              before the loop: only TPM2_Sign per signature.
 *   raw-lsf    Esys_Load + Esys_Sign + Esys_FlushContext per signature, fixed digest, blobs
 *              unmarshalled once (what cit_key_sign does in the TPM, nothing else).
 *   raw-lsf-h  raw-lsf plus reading and hashing the same 1 KiB file per signature (EVP): the
 *              whole job cit_key_sign does, minus the store, the DER encoding and the JSON.
 *
 * Variants run in rounds, in rotating order, each for about BENCH_ROUND_MS (default 100 ms);
 * the reported rate is the median over rounds (BENCH_ROUNDS, default 40). A ratio is the median
 * over rounds of the ratio within the round (paired: both rates measured within half a second of
 * each other), which cancels slow changes in machine speed that a ratio of medians keeps.
 *
 * Output: a table, the ratios, and "RESULT" lines (tab separated) for bench/run.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include "citadel/citadel.h"
#include "core/ctx.h"
#include "core/keys.h"
#include "basic/util.h"
#include "tpm/tpm.h"

#define BENCH_NAME "sign-lib"
#include "bench.h"

#define MSG_LEN 1024
#define MAX_ROUNDS 200

static void die_rc(const char *what, TSS2_RC rc) {
    fprintf(stderr, "sign-lib: %s failed: 0x%08x\n", what, rc);
    exit(1);
}

/* ---- the state every variant uses ---- */
typedef struct bench {
    cit_ctx *ctx;
    char msg_path[4200];
    TPM2B_DIGEST digest;      /* SHA-256 of the message */
    TPM2B_PUBLIC pub;         /* blobs of bench/k */
    TPM2B_PRIVATE priv;
    ESYS_TR srk;
    ESYS_TR loaded;           /* bench/k loaded once, for "raw" */
    bool loaded_persistent;
    TPMT_SIG_SCHEME scheme;
    TPMT_TK_HASHCHECK ticket;
} bench;

static void sign_lib(bench *b, const char *path) {
    cit_key_sign_options o = {.path = path, .input = b->msg_path};
    json_t *out = NULL;
    if (cit_key_sign(&out, b->ctx, &o) < 0)
        die_cit("cit_key_sign");
    json_decref(out);
}

static void v_lib(bench *b) { sign_lib(b, "bench/k"); }
static void v_lib_pers(bench *b) { sign_lib(b, "bench/kp"); }

static void v_raw(bench *b) {
    TPMT_SIGNATURE *sig = NULL;
    TSS2_RC rc = Esys_Sign(b->ctx->tpm->esys, b->loaded, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           &b->digest, &b->scheme, &b->ticket, &sig);
    if (rc != TSS2_RC_SUCCESS)
        die_rc("Esys_Sign", rc);
    Esys_Free(sig);
}

static void load_sign_flush(bench *b, const TPM2B_DIGEST *dig) {
    /* libcitadel keeps its last key loaded; with raw's own loaded key and the storage key's
     * temporary slot during TPM2_Load that would need a 4th slot, and libtpms has 3. */
    cit__key_cache_drop(b->ctx);
    ESYS_CONTEXT *esys = b->ctx->tpm->esys;
    ESYS_TR h = ESYS_TR_NONE;
    TSS2_RC rc = Esys_Load(esys, b->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &b->priv, &b->pub, &h);
    if (rc != TSS2_RC_SUCCESS)
        die_rc("Esys_Load", rc);
    TPMT_SIGNATURE *sig = NULL;
    rc = Esys_Sign(esys, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, dig, &b->scheme, &b->ticket, &sig);
    if (rc != TSS2_RC_SUCCESS)
        die_rc("Esys_Sign", rc);
    Esys_Free(sig);
    rc = Esys_FlushContext(esys, h);
    if (rc != TSS2_RC_SUCCESS)
        die_rc("Esys_FlushContext", rc);
}

static void v_raw_lsf(bench *b) { load_sign_flush(b, &b->digest); }

static void hash_file(const char *path, TPM2B_DIGEST *d) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    uint8_t buf[8192];
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_DigestInit_ex(m, EVP_sha256(), NULL);
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0)
        EVP_DigestUpdate(m, buf, (size_t)k);
    close(fd);
    unsigned int l = 0;
    EVP_DigestFinal_ex(m, d->buffer, &l);
    d->size = (UINT16)l;
    EVP_MD_CTX_free(m);
}

static void v_raw_lsf_h(bench *b) {
    TPM2B_DIGEST d;
    hash_file(b->msg_path, &d);
    load_sign_flush(b, &d);
}

typedef struct variant {
    const char *name;
    const char *what;
    void (*fn)(bench *);
    double rate[MAX_ROUNDS];     /* signatures per wall-clock second */
    double cpu_rate[MAX_ROUNDS]; /* signatures per CPU second of this thread */
    long total_n;
    double total_s;
} variant;

/* Median over rounds of a[r] / b[r]. */
static double paired_ratio(const double *a, const double *b, int n) {
    double t[MAX_ROUNDS];
    for (int i = 0; i < n; i++)
        t[i] = a[i] / b[i];
    return median(t, n);
}

static void rm_rf_workspace(const char *dir, const char *store) {
    const char *suffixes[] = {"", "-wal", "-shm", "-journal", ".tpmstate", ".tpmstate.lock"};
    char p[4300];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", store, suffixes[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/msg", dir);
    unlink(p);
    rmdir(dir);
}

int main(int argc, char **argv) {
    int rounds = env_int("BENCH_ROUNDS", 40, 1, MAX_ROUNDS);
    int round_ms = env_int("BENCH_ROUND_MS", 100, 20, 60000);
    const char *tmpbase = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/citadel-sign-lib.XXXXXX", tmpbase && *tmpbase ? tmpbase : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char store[4200];
    snprintf(store, sizeof store, "%s/store.db", dir);

    bench b = {0};
    snprintf(b.msg_path, sizeof b.msg_path, "%s/msg", dir);
    {
        uint8_t msg[MSG_LEN];
        for (int i = 0; i < MSG_LEN; i++)
            msg[i] = (uint8_t)(i * 131 + 7);
        FILE *f = fopen(b.msg_path, "wb");
        if (!f || fwrite(msg, 1, sizeof msg, f) != sizeof msg || fclose(f) != 0) {
            perror(b.msg_path);
            return 1;
        }
    }

    /* The workspace: vtpm, one on-demand key and one persistent key. */
    cit_ctx_options co = {.store_path = store, .backend = "vtpm"};
    if (cit_ctx_new(&b.ctx, &co) < 0)
        die_cit("cit_ctx_new");
    json_t *out = NULL;
    if (cit_workspace_init(&out, b.ctx, NULL) < 0)
        die_cit("cit_workspace_init");
    json_decref(out);
    cit_key_create_options ko = {.path = "bench/k", .algorithm = "ecc-p256"};
    if (cit_key_create(&out, b.ctx, &ko) < 0)
        die_cit("cit_key_create bench/k");
    json_decref(out);
    cit_key_create_options kp = {.path = "bench/kp", .algorithm = "ecc-p256", .persist = true};
    if (cit_key_create(&out, b.ctx, &kp) < 0)
        die_cit("cit_key_create bench/kp");
    json_decref(out);

    /* One libcitadel signature first: it opens the store and the TPM (lazily). */
    sign_lib(&b, "bench/k");

    /* Raw ESYS on the same ctx: the same ESYS_CONTEXT, the same TPM, the same key blobs. */
    cit_object o = {0};
    cit_object_version v = {0};
    if (cit__object_find(b.ctx->store, "bench/k", &o) < 0 || cit__version_get(b.ctx->store, o.id, o.version, &v) < 0 ||
        cit__public_unmarshal(&v, &b.pub) < 0)
        die_cit("reading bench/k from the store");
    size_t off = 0;
    if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(v.priv, v.priv_len, &off, &b.priv) != TSS2_RC_SUCCESS) {
        fprintf(stderr, "sign-lib: cannot unmarshal the private blob\n");
        return 1;
    }
    cit__version_clear(&v);
    if (cit__ctx_srk(b.ctx, false, &b.srk) < 0)
        die_cit("cit__ctx_srk");
    /* raw's own loaded copy, independent of the key libcitadel keeps loaded between calls */
    if (Esys_Load(b.ctx->tpm->esys, b.srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &b.priv, &b.pub,
                  &b.loaded) != TSS2_RC_SUCCESS) {
        fprintf(stderr, "sign-lib: Esys_Load failed\n");
        return 1;
    }
    b.loaded_persistent = false;
    hash_file(b.msg_path, &b.digest);
    b.scheme.scheme = TPM2_ALG_ECDSA;
    b.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    b.ticket.tag = TPM2_ST_HASHCHECK;
    b.ticket.hierarchy = TPM2_RH_NULL;

    variant vs[] = {
        {"lib", "cit_key_sign, on-demand key (lookup+hash+Sign+JSON; stays loaded between calls)", v_lib, {0}, {0}, 0, 0},
        {"lib-pers", "cit_key_sign, persistent key (lookup+hash+Sign+JSON)", v_lib_pers, {0}, {0}, 0, 0},
        {"raw", "Esys_Sign only, key loaded once, fixed digest", v_raw, {0}, {0}, 0, 0},
        {"raw-lsf", "Esys_Load+Esys_Sign+Esys_FlushContext, fixed digest", v_raw_lsf, {0}, {0}, 0, 0},
        {"raw-lsf-h", "raw-lsf + read and SHA-256 the 1 KiB file", v_raw_lsf_h, {0}, {0}, 0, 0},
    };
    const int nv = (int)(sizeof vs / sizeof vs[0]);

    /* Warm-up: a few of each. */
    for (int i = 0; i < nv; i++)
        for (int k = 0; k < 5; k++)
            vs[i].fn(&b);

    /* BENCH_ONLY=lib (for profiling one loop with perf): run only that variant. */
    const char *only = getenv("BENCH_ONLY");
    double budget = round_ms / 1000.0;
    for (int r = 0; r < rounds; r++) {
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
            if (getenv("BENCH_VERBOSE"))
                fprintf(stderr, "round %2d %-10s %8.1f sig/s (cpu %8.1f)\n", r, x->name, x->rate[r], x->cpu_rate[r]);
            x->total_n += n;
            x->total_s += t - t0;
        }
    }

    cit__key_unload(b.ctx, &b.loaded, b.loaded_persistent);
    cit__object_clear(&o);
    cit_memzero(&b.priv, sizeof b.priv);

    printf("sign-lib: ECDSA P-256 signatures/s on the in-process vTPM (libtpms), one process, one ctx\n");
    printf("          %d rounds x %d ms per variant, rotating order; rate = median over rounds\n\n", rounds,
           round_ms);
    printf("  %-10s %9s %9s %11s %9s %8s  %s\n", "variant", "sig/s", "us/sig", "min-max", "cpu sig/s", "n",
           "per signature");
    double med[16], cmed[16];
    for (int i = 0; i < nv; i++) {
        med[i] = median(vs[i].rate, rounds);
        cmed[i] = median(vs[i].cpu_rate, rounds);
        double lo = vs[i].rate[0], hi = vs[i].rate[0];
        for (int r = 1; r < rounds; r++) {
            lo = vs[i].rate[r] < lo ? vs[i].rate[r] : lo;
            hi = vs[i].rate[r] > hi ? vs[i].rate[r] : hi;
        }
        char mm[32];
        snprintf(mm, sizeof mm, "%.0f-%.0f", lo, hi);
        printf("  %-10s %9.1f %9.1f %11s %9.1f %8ld  %s\n", vs[i].name, med[i], 1e6 / med[i], mm, cmed[i],
               vs[i].total_n, vs[i].what);
    }
    static const struct {
        int ours, peer;
        const char *label, *peer_name, *note;
    } ratios[] = {
        {0, 2, "lib/raw", "raw Esys_Sign", "headline: what the issue compares; raw sends 1 TPM command, lib 3"},
        {0, 3, "lib/raw-lsf", "raw Load+Sign+Flush", "apples to apples in the TPM: both Load+Sign+Flush"},
        {0, 4, "lib/raw-lsf-h", "raw hash+Load+Sign+Flush", "both also hash the file: the rest is store, DER, JSON"},
        {1, 2, "lib-pers/raw", "raw Esys_Sign", "persistent key: both sign with a key already in the TPM"},
    };
    printf("\n  ratios: libcitadel rate / raw ESYS rate (goal >= 0.90), median of per-round ratios;\n"
           "  by wall time and by thread CPU time\n");
    printf("    %-14s %6s %6s\n", "", "wall", "cpu");
    double rw[8];
    for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++) {
        int a = ratios[i].ours, p = ratios[i].peer;
        rw[i] = paired_ratio(vs[a].rate, vs[p].rate, rounds);
        printf("    %-14s %6.3f %6.3f  %s\n", ratios[i].label, rw[i], paired_ratio(vs[a].cpu_rate, vs[p].cpu_rate, rounds),
               ratios[i].note);
    }
    printf("  libcitadel cost per signature over raw-lsf-h: %.1f us wall, %.1f us cpu (from the median rates)\n",
           1e6 / med[0] - 1e6 / med[4], 1e6 / cmed[0] - 1e6 / cmed[4]);

    /* Machine-readable lines for bench/run.sh: RESULT bench metric ours peer-name peer ratio goal */
    for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++)
        printf("RESULT\tsign-lib\t%s (sig/s)\t%.1f\t%s\t%.1f\t%.3f\t>= 0.90\n", ratios[i].label, med[ratios[i].ours],
               ratios[i].peer_name, med[ratios[i].peer], rw[i]);

    int rc = cit_ctx_close(b.ctx);
    if (!getenv("BENCH_KEEP"))
        rm_rf_workspace(dir, store);
    else
        fprintf(stderr, "sign-lib: workspace kept in %s\n", dir);
    (void)argc;
    (void)argv;
    return rc < 0 ? 1 : 0;
}
