/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 9162 Merkle trees (see merkle.h). */
#include "merkle.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One digest context per thread, reused: EVP's per-call set-up costs more than hashing the
 * short inputs a Merkle tree has. */
static _Thread_local EVP_MD_CTX *sha_ctx;
static EVP_MD *sha_md;
static pthread_key_t sha_key; /* frees a thread's context when the thread exits */
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_ctx_free(void *p) { EVP_MD_CTX_free(p); }
static void sha_start(void) {
    sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    (void)pthread_key_create(&sha_key, sha_ctx_free);
}

void cit__sha256_parts(uint8_t out[32], size_t n, const void *const *parts, const size_t *lens) {
    pthread_once(&sha_once, sha_start);
    if (!sha_ctx && (sha_ctx = EVP_MD_CTX_new()))
        (void)pthread_setspecific(sha_key, sha_ctx);
    unsigned int l = 32;
    if (!sha_md || !sha_ctx || EVP_DigestInit_ex2(sha_ctx, sha_md, NULL) != 1)
        abort();
    for (size_t i = 0; i < n; i++)
        if (lens[i] && EVP_DigestUpdate(sha_ctx, parts[i], lens[i]) != 1)
            abort();
    if (EVP_DigestFinal_ex(sha_ctx, out, &l) != 1)
        abort();
}

void cit__merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[32]) {
    static const uint8_t zero = 0x00;
    const void *p[2] = {&zero, data};
    size_t l[2] = {1, len};
    cit__sha256_parts(out, 2, p, l);
}

void cit__merkle_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]) {
    uint8_t buf[65];
    buf[0] = 0x01;
    memcpy(buf + 1, left, 32);
    memcpy(buf + 33, right, 32);
    const void *p[1] = {buf};
    size_t l[1] = {sizeof buf};
    cit__sha256_parts(out, 1, p, l);
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t split_point(uint64_t n) {
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

void cit__merkle_root(const uint8_t (*leaves)[32], uint64_t n, uint8_t out[32]) {
    if (n == 0) {
        const void *p[1] = {""};
        size_t l[1] = {0};
        cit__sha256_parts(out, 1, p, l);
        return;
    }
    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return;
    }
    uint64_t k = split_point(n);
    uint8_t a[32], b[32];
    cit__merkle_root(leaves, k, a);
    cit__merkle_root(leaves + k, n - k, b);
    cit__merkle_node_hash(a, b, out);
}

/* PATH(m, D[start:start+n]), appended leaf-first. */
static int path(cit_mth_fn mth, void *env, uint64_t m, uint64_t start, uint64_t n, uint8_t (*proof)[32],
                size_t *len) {
    if (n <= 1)
        return 0;
    uint64_t k = split_point(n);
    int r;
    if (m < k) {
        if ((r = path(mth, env, m, start, k, proof, len)) < 0)
            return r;
        r = mth(env, start + k, n - k, proof[*len]);
    } else {
        if ((r = path(mth, env, m - k, start + k, n - k, proof, len)) < 0)
            return r;
        r = mth(env, start, k, proof[*len]);
    }
    if (r < 0)
        return r;
    (*len)++;
    return 0;
}

int cit__merkle_inclusion_proof(cit_mth_fn mth, void *env, uint64_t index, uint64_t size, uint8_t (*proof)[32],
                                size_t *n) {
    *n = 0;
    if (index >= size)
        return -1;
    return path(mth, env, index, 0, size, proof, n);
}

/* SUBPROOF(m, D[start:start+n], b) */
static int subproof(cit_mth_fn mth, void *env, uint64_t m, uint64_t start, uint64_t n, bool b, uint8_t (*proof)[32],
                    size_t *len) {
    int r;
    if (m == n) {
        if (b)
            return 0;
        if ((r = mth(env, start, n, proof[*len])) < 0)
            return r;
        (*len)++;
        return 0;
    }
    uint64_t k = split_point(n);
    if (m <= k) {
        if ((r = subproof(mth, env, m, start, k, b, proof, len)) < 0)
            return r;
        r = mth(env, start + k, n - k, proof[*len]);
    } else {
        if ((r = subproof(mth, env, m - k, start + k, n - k, false, proof, len)) < 0)
            return r;
        r = mth(env, start, k, proof[*len]);
    }
    if (r < 0)
        return r;
    (*len)++;
    return 0;
}

int cit__merkle_consistency_proof(cit_mth_fn mth, void *env, uint64_t old, uint64_t size, uint8_t (*proof)[32],
                                  size_t *n) {
    *n = 0;
    if (old == 0 || old > size)
        return -1;
    if (old == size)
        return 0;
    return subproof(mth, env, old, 0, size, true, proof, n);
}

bool cit__merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf_hash[32],
                                  const uint8_t (*proof)[32], size_t n, const uint8_t root[32]) {
    if (index >= size)
        return false;
    uint64_t fn = index, sn = size - 1;
    uint8_t r[32];
    memcpy(r, leaf_hash, 32);
    for (size_t i = 0; i < n; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            cit__merkle_node_hash(proof[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            cit__merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, 32) == 0;
}

bool cit__merkle_verify_consistency(uint64_t old, uint64_t size, const uint8_t old_root[32],
                                    const uint8_t new_root[32], const uint8_t (*proof)[32], size_t n) {
    if (old == 0 || old > size)
        return false;
    if (old == size)
        return n == 0 && memcmp(old_root, new_root, 32) == 0;
    if (n == 0 || n > CIT_MERKLE_MAX_PROOF)
        return false;
    uint8_t path_buf[CIT_MERKLE_MAX_PROOF + 1][32];
    size_t pn = 0;
    if ((old & (old - 1)) == 0) /* an exact power of two: the old root starts the path */
        memcpy(path_buf[pn++], old_root, 32);
    memcpy(path_buf + pn, proof, n * 32);
    pn += n;
    uint64_t fn = old - 1, sn = size - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    uint8_t fr[32], sr[32];
    memcpy(fr, path_buf[0], 32);
    memcpy(sr, path_buf[0], 32);
    for (size_t i = 1; i < pn; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            cit__merkle_node_hash(path_buf[i], fr, fr);
            cit__merkle_node_hash(path_buf[i], sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            cit__merkle_node_hash(sr, path_buf[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(fr, old_root, 32) == 0 && memcmp(sr, new_root, 32) == 0;
}
