/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The session cache for ed25519 keys (docs/ed25519.md): a daemon unseals a key once
 * (cit_keycache_unlock, through the TPM) and then signs without the TPM. Each unlocked key is
 * libsodium's 64-byte secret key (seed || public key) in its own sodium_malloc allocation:
 * mlock'd, between guard pages, excluded from core dumps, and PROT_NONE except while a signature
 * is being made. A key not used for the idle time is wiped at its next use (or by
 * cit_keycache_expire) and reported as CIT_E_KEY_LOCKED.
 *
 * One mutex guards the cache, and signatures are made under it: with the key readable only
 * inside the lock, no thread can find it unprotected while another signs.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/ed25519.h"
#include "core/keys.h"
#include "crypto/crypto.h"
#include "ctx.h"

typedef struct entry {
    char *path;
    int version;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t *sk;        /* sodium_malloc'd, PROT_NONE while idle */
    uint64_t last_used; /* monotonic microseconds */
} entry;

struct cit_keycache {
    pthread_mutex_t mu;
    uint64_t idle_usec;
    entry *e;
    size_t n, cap;
};

static void entry_wipe(entry *x) {
    if (x->sk)
        sodium_free(x->sk); /* makes it accessible again, zeroes it, unlocks and frees it */
    free(x->path);
    sodium_memzero(x, sizeof *x);
}

/* Removes entry i (the lock is held). */
static void remove_at(cit_keycache *c, size_t i) {
    entry_wipe(&c->e[i]);
    c->e[i] = c->e[--c->n];
    memset(&c->e[c->n], 0, sizeof c->e[c->n]);
}

static entry *find(cit_keycache *c, const char *path, size_t *idx) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].path, path) == 0) {
            if (idx)
                *idx = i;
            return &c->e[i];
        }
    return NULL;
}

static int locked(const char *path, const char *why) {
    cit_error_set(CIT_E_KEY_LOCKED, "%s is locked: %s", path, why);
    cit_error_context("path", "%s", path);
    return CIT_E_KEY_LOCKED;
}

/* now may be a little older than last_used: another thread took its time before this one got
 * the lock. */
static bool idle_too_long(const cit_keycache *c, const entry *x, uint64_t now) {
    return now > x->last_used && now - x->last_used > c->idle_usec;
}

/* The entry for path if it is unlocked and not past its idle time; an expired one is wiped
 * first. The lock is held. */
static entry *usable(cit_keycache *c, const char *path, uint64_t now, int *r) {
    size_t i;
    entry *x = find(c, path, &i);
    if (!x) {
        *r = locked(path, "it is not unlocked in this cache");
        return NULL;
    }
    if (idle_too_long(c, x, now)) {
        unsigned long idle = (unsigned long)((now - x->last_used) / 1000000);
        remove_at(c, i);
        *r = locked(path, "it was idle longer than the cache's idle time, and was wiped");
        cit_error_context("idle_seconds", "%lu", idle);
        cit_error_context("limit_seconds", "%lu", (unsigned long)(c->idle_usec / 1000000));
        return NULL;
    }
    return x;
}

_public_ int cit_keycache_new(cit_keycache **out, unsigned idle_seconds) {
    cit_error_clear();
    int r = cit__sodium_init();
    if (r < 0)
        return r;
    cit_keycache *c = calloc(1, sizeof *c);
    if (!c)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->idle_usec = (uint64_t)(idle_seconds ? idle_seconds : CIT_KEYCACHE_DEFAULT_IDLE) * 1000000;
    *out = c;
    return 0;
}

_public_ int cit_keycache_unlock(cit_keycache *c, cit_ctx *ctx, const char *path,
                                 const char *auth_file) {
    cit_error_clear();
    if (!c || !ctx || !path)
        return cit_error_set(CIT_E_USAGE,
                             "cit_keycache_unlock needs a cache, a context and a path");
    cit_object o = {0};
    int r = cit__ctx_find(ctx, path, &o);
    if (r == 0)
        r = cit__require_kind(&o, "key");
    if (r == 0 && !cit__is_ed25519(&o)) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is a %s key: the session cache holds ed25519 keys",
                          path, o.algorithm);
        cit_error_cause("a TPM key never leaves the TPM; sign with it through cit_key_sign");
        cit_error_context("path", "%s", path);
    }
    if (r == 0)
        r = cit__require_active(&o);
    if (r == 0)
        r = cit__ed25519_refuse_unapproved(ctx, "the session cache");
    if (r == 0 && ctx->plan)
        r = cit_error_set(CIT_E_USAGE, "the session cache does not work in plan mode");
    uint8_t *sk = NULL;
    char *p = NULL;
    if (r == 0) {
        sk = sodium_malloc(CIT_ED25519_SK_BYTES);
        p = strdup(path);
        if (!sk || !p)
            r = cit_error_set(CIT_E_INTERNAL, "out of memory (locked memory for the key)");
    }
    /* the TPM work happens outside the cache's lock: other keys keep signing meanwhile */
    if (r == 0)
        r = cit__ed25519_unseal_sk(ctx, &o, auth_file, sk);
    if (r == 0)
        sodium_mprotect_noaccess(sk);
    if (r < 0) {
        if (sk)
            sodium_free(sk);
        free(p);
        cit__object_clear(&o);
        return r;
    }
    entry x = {.path = p, .version = o.version, .sk = sk, .last_used = cit_now_usec()};
    sodium_mprotect_readonly(sk);
    memcpy(x.pk, sk + 32, sizeof x.pk);
    sodium_mprotect_noaccess(sk);
    cit__object_clear(&o);

    pthread_mutex_lock(&c->mu);
    size_t i;
    if (find(c, path, &i))
        remove_at(c, i); /* unlocked again: the new unseal replaces it */
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        entry *e = realloc(c->e, cap * sizeof *e);
        if (!e) {
            pthread_mutex_unlock(&c->mu);
            entry_wipe(&x);
            return cit_error_set(CIT_E_INTERNAL, "out of memory");
        }
        c->e = e;
        c->cap = cap;
    }
    c->e[c->n++] = x;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

_public_ int cit_keycache_sign(cit_keycache *c, const char *path, const uint8_t *msg, size_t len,
                               uint8_t sig[CIT_ED25519_SIGNATURE_BYTES]) {
    if (!c || !path || (!msg && len))
        return cit_error_set(CIT_E_USAGE, "cit_keycache_sign needs a cache, a path and a message");
    uint64_t now = cit_now_usec();
    int r = 0;
    pthread_mutex_lock(&c->mu);
    entry *x = usable(c, path, now, &r);
    if (x) {
        sodium_mprotect_readonly(x->sk);
        crypto_sign_detached(sig, NULL, msg, len, x->sk);
        sodium_mprotect_noaccess(x->sk);
        if (now > x->last_used)
            x->last_used = now;
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

_public_ int cit_keycache_sign_result(json_t **out, cit_keycache *c, const char *path, const uint8_t *msg,
                                      size_t len) {
    uint8_t sig[CIT_ED25519_SIGNATURE_BYTES];
    if (!c || !path || !msg || !len)
        return cit_error_set(CIT_E_USAGE, "cit_keycache_sign_result needs a cache, a path and a message");
    uint64_t now = cit_now_usec();
    int r = 0, version = 0;
    pthread_mutex_lock(&c->mu);
    entry *x = usable(c, path, now, &r);
    if (x) {
        sodium_mprotect_readonly(x->sk);
        crypto_sign_detached(sig, NULL, msg, len, x->sk);
        sodium_mprotect_noaccess(x->sk);
        if (now > x->last_used)
            x->last_used = now;
        version = x->version;
    }
    pthread_mutex_unlock(&c->mu);
    if (r < 0)
        return r;
    uint8_t md[32];
    crypto_hash_sha256(md, msg, len);
    _cleanup_free_ char *mhex = cit_hex_encode(md, sizeof md);
    _cleanup_free_ char *shex = cit_hex_encode(sig, sizeof sig);
    _cleanup_free_ char *b64 = NULL;
    if (!mhex || !shex || cit__base64_encode(&b64, sig, sizeof sig) < 0)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    /* the fields and order of cit_key_sign's result for an ed25519 key */
    *out = json_pack("{s:s,s:i,s:s,s:s,s:I,s:s,s:s,s:s,s:s}", "path", path, "version", version, "algorithm", "ed25519",
                     "scheme", "eddsa", "message_bytes", (json_int_t)len, "message_sha256", mhex, "encoding", "raw",
                     "signature_base64", b64, "signature_hex", shex);
    return *out ? 0 : cit_error_set(CIT_E_INTERNAL, "out of memory");
}

_public_ int cit_keycache_public_key(cit_keycache *c, const char *path,
                                     uint8_t pk[CIT_ED25519_PUBLIC_BYTES], int *version) {
    if (!c || !path)
        return cit_error_set(CIT_E_USAGE, "cit_keycache_public_key needs a cache and a path");
    int r = 0;
    pthread_mutex_lock(&c->mu);
    entry *x = usable(c, path, cit_now_usec(), &r);
    if (x) {
        memcpy(pk, x->pk, sizeof x->pk);
        if (version)
            *version = x->version;
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

_public_ int cit_keycache_lock(cit_keycache *c, const char *path) {
    if (!c || !path)
        return cit_error_set(CIT_E_USAGE, "cit_keycache_lock needs a cache and a path");
    size_t i;
    int r = 0;
    pthread_mutex_lock(&c->mu);
    if (find(c, path, &i))
        remove_at(c, i);
    else
        r = locked(path, "it is not unlocked in this cache");
    pthread_mutex_unlock(&c->mu);
    return r;
}

_public_ size_t cit_keycache_lock_all(cit_keycache *c) {
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    while (c->n)
        remove_at(c, c->n - 1);
    pthread_mutex_unlock(&c->mu);
    return n;
}

_public_ size_t cit_keycache_expire(cit_keycache *c) {
    if (!c)
        return 0;
    uint64_t now = cit_now_usec();
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = c->n; i-- > 0;)
        if (idle_too_long(c, &c->e[i], now)) {
            remove_at(c, i);
            n++;
        }
    pthread_mutex_unlock(&c->mu);
    return n;
}

_public_ size_t cit_keycache_count(cit_keycache *c) {
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

_public_ void cit_keycache_free(cit_keycache *c) {
    if (!c)
        return;
    cit_keycache_lock_all(c);
    free(c->e);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
