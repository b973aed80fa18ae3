/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: TPM-sealed ed25519 keys through the library on a vTPM workspace in a temporary
 * directory, and the session cache (cit_keycache_*): warm signing without the TPM, explicit and
 * idle locking, concurrency; the seed never appears in the workspace's files. */
#define _GNU_SOURCE /* memmem */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/util.h"
#include "citadel/citadel.h"
#include "core/ctx.h"
#include "core/ed25519.h"
#include "core/keys.h"

#include "vtpm_fixture.h"

/* Creates an ed25519 key; pk gets its public key (from the result's public_key_hex). */
static void create_key(cit_ctx *ctx, const char *path, const char *pcrs, uint8_t pk[32]) {
    json_t *out = NULL;
    cit_key_create_options co = {.path = path, .algorithm = "ed25519", .pcrs = pcrs};
    assert_int_equal(cit_key_create(&out, ctx, &co), 0);
    assert_string_equal(json_string_value(json_object_get(out, "algorithm")), "ed25519");
    assert_string_equal(json_string_value(json_object_get(out, "scheme")), "eddsa");
    uint8_t *b = NULL;
    size_t n = 0;
    assert_int_equal(
        cit_hex_decode(&b, &n, json_string_value(json_object_get(out, "public_key_hex"))), 0);
    assert_int_equal(n, 32);
    memcpy(pk, b, 32);
    free(b);
    json_decref(out);
}

/* The cold path: cit_key_sign (unseal, sign, wipe) into sig, via a file. */
static void cold_sign(cit_ctx *ctx, const char *path, const uint8_t *msg, size_t len,
                      uint8_t sig[64]) {
    char in[160], outf[160];
    snprintf(in, sizeof in, "%s/msg", dir);
    snprintf(outf, sizeof outf, "%s/msg.sig", dir);
    assert_int_equal(cit_write_file_atomic(in, msg, len, 0600, 0), 0);
    json_t *out = NULL;
    cit_key_sign_options so = {.path = path, .input = in, .output = outf};
    assert_int_equal(cit_key_sign(&out, ctx, &so), 0);
    json_decref(out);
    uint8_t *b = NULL;
    size_t n = 0;
    assert_int_equal(cit_read_file(outf, 4096, &b, &n), 0);
    assert_int_equal(n, 64);
    memcpy(sig, b, 64);
    free(b);
}

static void test_keycache_signs_warm_without_the_tpm(void **state) {
    static const uint8_t msg[] = "release 1.2.3 checksum 0123456789abcdef";
    uint8_t pk[32], pk2[32], warm[64], cold[64];
    cit_ctx *ctx = open_ctx();
    create_key(ctx, "cache/k", "7", pk);
    cit_keycache *c = NULL;
    assert_int_equal(cit_keycache_new(&c, 0), 0);
    assert_int_equal(cit_keycache_sign(c, "cache/k", msg, sizeof msg, warm), CIT_E_KEY_LOCKED);
    assert_int_equal(cit_keycache_unlock(c, ctx, "cache/k", NULL), 0);
    assert_int_equal(cit_keycache_count(c), 1);
    int version = 0;
    assert_int_equal(cit_keycache_public_key(c, "cache/k", pk2, &version), 0);
    assert_memory_equal(pk, pk2, 32);
    assert_int_equal(version, 1);
    /* the TPM goes away (the context is closed, the vTPM shut down): the cache still signs */
    assert_int_equal(cit_ctx_close(ctx), 0);
    memset(warm, 0, sizeof warm);
    assert_int_equal(cit_keycache_sign(c, "cache/k", msg, sizeof msg, warm), 0);
    assert_int_equal(crypto_sign_verify_detached(warm, msg, sizeof msg, pk), 0);
    /* Ed25519 is deterministic: the cold path (the TPM unseals each time) gives the same bytes */
    ctx = open_ctx();
    cold_sign(ctx, "cache/k", msg, sizeof msg, cold);
    assert_memory_equal(warm, cold, 64);
    /* a signature over another message does not verify for this one */
    uint8_t other[64];
    assert_int_equal(cit_keycache_sign(c, "cache/k", (const uint8_t *)"x", 1, other), 0);
    assert_int_not_equal(crypto_sign_verify_detached(other, msg, sizeof msg, pk), 0);
    /* explicit lock: wiped, then locked; locking twice says it is not unlocked */
    assert_int_equal(cit_keycache_lock(c, "cache/k"), 0);
    assert_int_equal(cit_keycache_count(c), 0);
    uint8_t untouched[64];
    memset(untouched, 0xa5, sizeof untouched);
    assert_int_equal(cit_keycache_sign(c, "cache/k", msg, sizeof msg, untouched), CIT_E_KEY_LOCKED);
    assert_int_equal(untouched[0], 0xa5);
    assert_int_equal(cit_error_last()->code, CIT_E_KEY_LOCKED);
    assert_int_equal(cit_keycache_lock(c, "cache/k"), CIT_E_KEY_LOCKED);
    /* lock_all and free wipe everything that is unlocked */
    assert_int_equal(cit_keycache_unlock(c, ctx, "cache/k", NULL), 0);
    assert_int_equal(cit_keycache_lock_all(c), 1);
    assert_int_equal(cit_keycache_sign(c, "cache/k", msg, sizeof msg, warm), CIT_E_KEY_LOCKED);
    assert_int_equal(cit_keycache_unlock(c, ctx, "cache/k", NULL), 0);
    cit_keycache_free(
        c); /* with a key in it: ASan's leak check and sodium_free's canary check it */
    assert_int_equal(cit_ctx_close(ctx), 0);
}

static void test_keycache_locks_after_idle_time(void **state) {
    static const uint8_t msg[] = "idle";
    uint8_t pk[32], sig[64];
    cit_ctx *ctx = open_ctx();
    create_key(ctx, "idle/k", NULL, pk);
    cit_keycache *c = NULL;
    assert_int_equal(cit_keycache_new(&c, 1), 0);
    assert_int_equal(cit_keycache_unlock(c, ctx, "idle/k", NULL), 0);
    assert_int_equal(cit_keycache_sign(c, "idle/k", msg, sizeof msg, sig), 0);
    assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof msg, pk), 0);
    assert_int_equal(cit_keycache_expire(c), 0); /* just used */
    usleep(1300 * 1000);                         /* the idle time (1 s) passes */
    assert_int_equal(cit_keycache_sign(c, "idle/k", msg, sizeof msg, sig), CIT_E_KEY_LOCKED);
    assert_non_null(strstr(cit_error_last()->message, "idle"));
    assert_int_equal(cit_keycache_count(c), 0); /* wiped at that use */
    /* the daemon's timer: expire wipes idle keys without a use */
    assert_int_equal(cit_keycache_unlock(c, ctx, "idle/k", NULL), 0);
    usleep(1300 * 1000);
    assert_int_equal(cit_keycache_count(c), 1);
    assert_int_equal(cit_keycache_expire(c), 1);
    assert_int_equal(cit_keycache_count(c), 0);
    assert_int_equal(cit_keycache_public_key(c, "idle/k", pk, NULL), CIT_E_KEY_LOCKED);
    cit_keycache_free(c);
    assert_int_equal(cit_ctx_close(ctx), 0);
}

static void test_keycache_refuses_and_follows_rotation(void **state) {
    uint8_t pk[32], pk2[32], sig[64];
    cit_ctx *ctx = open_ctx();
    json_t *out = NULL;
    cit_key_create_options co = {.path = "tpm/k"};
    assert_int_equal(cit_key_create(&out, ctx, &co), 0);
    json_decref(out);
    cit_keycache *c = NULL;
    assert_int_equal(cit_keycache_new(&c, 60), 0);
    assert_int_equal(cit_keycache_unlock(c, ctx, "tpm/k", NULL), CIT_E_OBJECT_KIND);
    assert_int_equal(cit_keycache_unlock(c, ctx, "no/such", NULL), CIT_E_OBJECT_NOT_FOUND);
    /* a profile that requires an approval for every signature allows no session cache */
    uint8_t pk0[32];
    create_key(ctx, "tp/k", NULL, pk0);
    assert_int_equal(cit_profile_set(&out, ctx, "two-person"), 0);
    json_decref(out);
    assert_int_equal(cit_keycache_unlock(c, ctx, "tp/k", NULL), CIT_E_PROFILE_VIOLATION);
    assert_int_equal(cit_profile_set(&out, ctx, "default"), 0);
    json_decref(out);
    assert_int_equal(cit_keycache_count(c), 0);
    create_key(ctx, "rot/k", NULL, pk);
    assert_int_equal(cit_keycache_unlock(c, ctx, "rot/k", NULL), 0);
    assert_int_equal(cit_key_rotate(&out, ctx, "rot/k", NULL), 0);
    json_decref(out);
    /* the cache keeps what it unsealed until unlocked again */
    int version = 0;
    assert_int_equal(cit_keycache_public_key(c, "rot/k", pk2, &version), 0);
    assert_int_equal(version, 1);
    assert_memory_equal(pk, pk2, 32);
    assert_int_equal(cit_keycache_unlock(c, ctx, "rot/k", NULL), 0);
    assert_int_equal(cit_keycache_public_key(c, "rot/k", pk2, &version), 0);
    assert_int_equal(version, 2);
    assert_memory_not_equal(pk, pk2, 32);
    assert_int_equal(cit_keycache_count(c), 1);
    assert_int_equal(cit_keycache_sign(c, "rot/k", (const uint8_t *)"m", 1, sig), 0);
    assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"m", 1, pk2), 0);
    /* and cit_key_verify finds that version 2 made it */
    char in[160], sf[160];
    snprintf(in, sizeof in, "%s/m", dir);
    snprintf(sf, sizeof sf, "%s/m.sig", dir);
    assert_int_equal(cit_write_file_atomic(in, (const uint8_t *)"m", 1, 0600, 0), 0);
    assert_int_equal(cit_write_file_atomic(sf, sig, 64, 0600, 0), 0);
    assert_int_equal(cit_key_verify(&out, ctx, "rot/k", in, sf, NULL, NULL, 0), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 2);
    json_decref(out);
    cit_keycache_free(c);
    assert_int_equal(cit_ctx_close(ctx), 0);
}

typedef struct {
    cit_keycache *c;
    const uint8_t *pk;
    int bad;
} worker;

static void *sign_many(void *arg) {
    worker *w = arg;
    for (int i = 0; i < 300; i++) {
        uint8_t msg[16], sig[64];
        randombytes_buf(msg, sizeof msg);
        if (cit_keycache_sign(w->c, "mt/k", msg, sizeof msg, sig) != 0 ||
            crypto_sign_verify_detached(sig, msg, sizeof msg, w->pk) != 0)
            w->bad++;
    }
    return NULL;
}

static void test_keycache_is_thread_safe(void **state) {
    uint8_t pk[32];
    cit_ctx *ctx = open_ctx();
    create_key(ctx, "mt/k", NULL, pk);
    cit_keycache *c = NULL;
    assert_int_equal(cit_keycache_new(&c, 60), 0);
    assert_int_equal(cit_keycache_unlock(c, ctx, "mt/k", NULL), 0);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.c = c, .pk = pk};
        assert_int_equal(pthread_create(&th[i], NULL, sign_many, &w[i]), 0);
    }
    /* meanwhile: unlock again (replaces the entry) and expire (nothing is idle) */
    assert_int_equal(cit_keycache_unlock(c, ctx, "mt/k", NULL), 0);
    assert_int_equal(cit_keycache_expire(c), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    cit_keycache_free(c);
    assert_int_equal(cit_ctx_close(ctx), 0);
}

static bool file_contains(const char *path, const uint8_t *needle, size_t n) {
    uint8_t *b = NULL;
    size_t len = 0;
    if (cit_read_file(path, 64u * 1024 * 1024, &b, &len) < 0)
        return false;
    bool found = len >= n && memmem(b, len, needle, n) != NULL;
    free(b);
    return found;
}

/* The seed is nowhere in the workspace's files (store, WAL, vTPM state); the public key is (the
 * scan does find what is there). */
static void test_seed_never_stored(void **state) {
    uint8_t pk[32];
    cit_ctx *ctx = open_ctx();
    create_key(ctx, "seed/k", NULL, pk);
    cit_object o = {0};
    assert_int_equal(cit__ctx_find(ctx, "seed/k", &o), 0);
    uint8_t *sk = sodium_malloc(64);
    assert_non_null(sk);
    assert_int_equal(cit__ed25519_unseal_sk(ctx, &o, NULL, sk), 0);
    assert_memory_equal(sk + 32, pk, 32);
    cit__object_clear(&o);
    assert_int_equal(cit_ctx_close(ctx), 0); /* store and TPM state written */
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    bool pk_seen = false;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        files++;
        if (file_contains(p, sk, 32))
            fail_msg("the seed is in clear in %s", p);
        if (file_contains(p, sk, 16) || file_contains(p, sk + 8, 16) ||
            file_contains(p, sk + 16, 16))
            fail_msg("half of the seed is in clear in %s", p);
        pk_seen |= file_contains(p, pk, 32);
    }
    closedir(d);
    sodium_free(sk);
    assert_true(files >= 2);
    assert_true(pk_seen);
}

/* Copies of the seed in this process's writable memory. The needle is kept XOR-masked so the
 * scan does not find itself. libtpms' static memory is skipped: on vtpm that is the TPM's own
 * RAM, which holds the seed as any TPM does while it works with an object. */
static uint8_t masked[32];
static int count_copies(char *where, size_t wlen) {
    FILE *m = fopen("/proc/self/maps", "r");
    int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    assert_non_null(m);
    assert_true(fd >= 0);
    char line[512];
    unsigned long tpms_end = 0;
    int hits = 0;
    where[0] = 0;
    while (fgets(line, sizeof line, m)) {
        unsigned long a, b;
        char perm[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) != 3)
            continue;
        if (strstr(line, "libtpms"))
            tpms_end = b;
        /* huge mappings are reservations (ASan's shadow), not data */
        if (perm[0] != 'r' || perm[1] != 'w' || a == tpms_end || strstr(line, "[vvar]") ||
            b - a > (256ul << 20))
            continue;
        size_t n = b - a;
        uint8_t *buf = malloc(n);
        if (buf && pread(fd, buf, n, (off_t)a) == (ssize_t)n)
            for (size_t i = 0; i + 32 <= n; i++) {
                if ((buf[i] ^ 0x5a) != masked[0])
                    continue;
                size_t k = 1;
                while (k < 32 && (buf[i + k] ^ 0x5a) == masked[k])
                    k++;
                if (k == 32 && !hits++)
                    snprintf(where, wlen, "%s", line);
            }
        free(buf);
    }
    fclose(m);
    close(fd);
    return hits;
}

/* After a cold signature the seed is nowhere in this process's memory: our buffers are wiped,
 * and the plaintext tpm2-tss decrypted in its response buffer is overwritten (the key is made
 * in a child process: tpm2-tss keeps TPM2_Create's input until another command overwrites it). */
static void test_cold_sign_leaves_no_copy(void **state) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t pk[32];
        cit_ctx *ctx = open_ctx();
        create_key(ctx, "mem/k", NULL, pk);
        _exit(cit_ctx_close(ctx) == 0 ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cit_ctx *ctx = open_ctx();
    cit_object o = {0};
    assert_int_equal(cit__ctx_find(ctx, "mem/k", &o), 0);
    uint8_t *sk = sodium_malloc(64);
    assert_non_null(sk);
    assert_int_equal(cit__ed25519_unseal_sk(ctx, &o, NULL, sk), 0);
    for (int i = 0; i < 32; i++)
        masked[i] = sk[i] ^ 0x5a;
    sodium_free(sk);
    cit__object_clear(&o);
    uint8_t sig[64];
    static const uint8_t msg[] = "memory";
    cold_sign(ctx, "mem/k", msg, sizeof msg, sig);
    char where[512];
    int n = count_copies(where, sizeof where);
    if (n)
        fail_msg("%d copies of the seed in memory after a cold signature, the first in %s", n,
                 where);
    /* an unlocked key in the session cache is in memory no one can read (PROT_NONE) between
     * signatures; cit_keycache_free wipes it */
    cit_keycache *c = NULL;
    assert_int_equal(cit_keycache_new(&c, 0), 0);
    assert_int_equal(cit_keycache_unlock(c, ctx, "mem/k", NULL), 0);
    uint8_t sig2[64];
    assert_int_equal(cit_keycache_sign(c, "mem/k", msg, sizeof msg, sig2), 0);
    assert_memory_equal(sig, sig2, 64);
    n = count_copies(where, sizeof where);
    if (n)
        fail_msg("%d readable copies of the seed with the key unlocked, the first in %s", n, where);
    cit_keycache_free(c);
    assert_int_equal(count_copies(where, sizeof where), 0);
    /* the scan does find a copy when there is one */
    uint8_t *probe = malloc(32);
    for (int i = 0; i < 32; i++)
        probe[i] = masked[i] ^ 0x5a;
    assert_true(count_copies(where, sizeof where) >= 1);
    sodium_memzero(probe, 32);
    free(probe);
    assert_int_equal(cit_ctx_close(ctx), 0);
}

int main(void) {
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keycache_signs_warm_without_the_tpm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keycache_locks_after_idle_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keycache_refuses_and_follows_rotation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keycache_is_thread_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_never_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cold_sign_leaves_no_copy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
