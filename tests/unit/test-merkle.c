/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/lib/audit/merkle.c against RFC 6962/9162. The expected hashes are the
 * certificate-transparency reference vectors (the eight leaves "", 00, 10, 2021, 3031,
 * 40414243, 5051525354555657, 606162636465666768696a6b6c6d6e6f; roots, inclusion paths and
 * consistency proofs from transparency-dev/merkle testonly/constants.go, proof/verify_test.go
 * and testonly/reference_test.go) and the golden roots of compact/range_test.go (leaf i's
 * data is the two bytes i & 0xff, i >> 8). Every other check is a property: each proof we
 * generate verifies, and each mutation of index, size, root or proof is rejected.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/merkle.h"

static void unhex(const char *hex, uint8_t *out, size_t n) {
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void assert_hash_hex(const uint8_t h[32], const char *hex) {
    uint8_t want[32];
    unhex(hex, want, 32);
    assert_memory_equal(h, want, 32);
}

static void assert_hash_b64(const uint8_t h[32], const char *b64) {
    unsigned char want[48];
    int n = EVP_DecodeBlock(want, (const unsigned char *)b64, (int)strlen(b64));
    assert_int_equal(n, 33); /* 44 base64 characters with one '=': 32 bytes + 1 pad byte */
    assert_memory_equal(h, want, 32);
}

/* An in-memory tree: the mth callback over an array of leaf hashes. */
typedef struct tree {
    uint8_t (*leaves)[32];
    uint64_t n;
    int calls;
} tree;

static int mem_mth(void *env, uint64_t start, uint64_t n, uint8_t out[32]) {
    tree *t = env;
    t->calls++;
    if (n == 0 || start + n > t->n)
        return -99; /* the generator must never ask for a range outside the tree */
    cit__merkle_root((const uint8_t(*)[32])t->leaves + start, n, out);
    return 0;
}

static const char *const ct_leaves[8] = {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f"};
static const char *const ct_roots[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static uint8_t ct_leaf_hashes[8][32];

static int setup_ct(void **state) {
    for (int i = 0; i < 8; i++) {
        uint8_t data[16];
        size_t n = strlen(ct_leaves[i]) / 2;
        unhex(ct_leaves[i], data, n);
        cit__merkle_leaf_hash(data, n, ct_leaf_hashes[i]);
    }
    return 0;
}

static void test_hashers(void **state) {
    uint8_t h[32];
    cit__merkle_root(NULL, 0, h); /* the empty tree: SHA-256 of nothing */
    assert_hash_hex(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cit__merkle_leaf_hash((const uint8_t *)"", 0, h);
    assert_hash_hex(h, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    cit__merkle_leaf_hash((const uint8_t *)"L123456", 7, h);
    assert_hash_hex(h, "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56");
    /* node hash = SHA-256(0x01 || l || r): the level-1 nodes of the CT tree */
    cit__merkle_node_hash(ct_leaf_hashes[0], ct_leaf_hashes[1], h);
    assert_hash_hex(h, "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125");
    cit__merkle_node_hash(ct_leaf_hashes[2], ct_leaf_hashes[3], h);
    assert_hash_hex(h, "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e");
}

static void test_ct_roots(void **state) {
    tree t = {ct_leaf_hashes, 8, 0};
    for (int n = 1; n <= 8; n++) {
        uint8_t h[32];
        cit__merkle_root((const uint8_t(*)[32])ct_leaf_hashes, (uint64_t)n, h);
        assert_hash_hex(h, ct_roots[n - 1]);
        assert_int_equal(mem_mth(&t, 0, (uint64_t)n, h), 0);
        assert_hash_hex(h, ct_roots[n - 1]);
    }
}

typedef struct path_vec {
    uint64_t index, size;
    size_t n;
    const char *h[3];
} path_vec;

static void test_ct_inclusion_paths(void **state) {
    static const path_vec v[] = {
        {0, 1, 0, {NULL}},
        {0, 2, 1, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"}},
        {1, 2, 1, {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"}},
        {2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
        {1, 5, 3,
         {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
          "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
          "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
        {0, 8, 3,
         {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
          "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
          "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
        {5, 8, 3,
         {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
          "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
          "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    };
    tree t = {ct_leaf_hashes, 8, 0};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t proof[CIT_MERKLE_MAX_PROOF][32], root[32];
        size_t n = 99;
        t.n = v[i].size;
        assert_int_equal(cit__merkle_inclusion_proof(mem_mth, &t, v[i].index, v[i].size, proof, &n), 0);
        assert_int_equal(n, v[i].n);
        for (size_t k = 0; k < n; k++)
            assert_hash_hex(proof[k], v[i].h[k]);
        unhex(ct_roots[v[i].size - 1], root, 32);
        assert_true(cit__merkle_verify_inclusion(v[i].index, v[i].size, ct_leaf_hashes[v[i].index],
                                                 (const uint8_t(*)[32])proof, n, root));
    }
}

static void test_ct_consistency_proofs(void **state) {
    static const path_vec v[] = {
        {1, 1, 0, {NULL}},
        {1, 8, 3,
         {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
          "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
          "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
        {6, 8, 3,
         {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
          "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
          "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
        {2, 5, 2,
         {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
          "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    };
    tree t = {ct_leaf_hashes, 8, 0};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t proof[CIT_MERKLE_MAX_PROOF][32], r1[32], r2[32];
        size_t n = 99;
        uint64_t m = v[i].index, size = v[i].size;
        t.n = size;
        assert_int_equal(cit__merkle_consistency_proof(mem_mth, &t, m, size, proof, &n), 0);
        assert_int_equal(n, v[i].n);
        for (size_t k = 0; k < n; k++)
            assert_hash_hex(proof[k], v[i].h[k]);
        unhex(ct_roots[m - 1], r1, 32);
        unhex(ct_roots[size - 1], r2, 32);
        assert_true(cit__merkle_verify_consistency(m, size, r1, r2, (const uint8_t(*)[32])proof, n));
    }
}

/* Leaf i of the golden trees: the two bytes i & 0xff, (i >> 8) & 0xff. */
static uint8_t (*golden_leaves(uint64_t n))[32] {
    uint8_t(*l)[32] = malloc((n ? n : 1) * 32);
    assert_non_null(l);
    for (uint64_t i = 0; i < n; i++) {
        uint8_t d[2] = {(uint8_t)(i & 0xff), (uint8_t)((i >> 8) & 0xff)};
        cit__merkle_leaf_hash(d, 2, l[i]);
    }
    return l;
}

static void test_golden_roots(void **state) {
    static const struct {
        uint64_t size;
        const char *root;
    } g[] = {
        {10, "VjWMPSYNtCuCNlF/RLnQy6HcwSk6CIipfxm+hettA+4="},   {15, "j4SulYmocFuxdeyp12xXCIgK6PekBcxzAIj4zbQzNEI="},
        {16, "c+4Uc6BCMOZf/v3NZK1kqTUJe+bBoFtOhP+P3SayKRE="},   {100, "dUh9hYH88p0CMoHkdr1wC2szbhcLAXOejWpINIooKUY="},
        {255, "SmdsuKUqiod3RX2jyF2M6JnbdE4QuTwwipfAowI4/i0="},  {256, "qFI0t/tZ1MdOYgyPpPzHFiZVw86koScXy9q3FU5casA="},
        {1000, "RXrgb8xHd55Y48FbfotJwCbV82Kx22LZfEbmBGAvwlQ="}, {4095, "cWRFdQhPcjn9WyBXE/r1f04ejxIm5lvg40DEpRBVS0w="},
        {4096, "6uU/phfHg1n/GksYT6TO9aN8EauMCCJRl3dIK0HDs2M="}, {10000, "VZcav65F9haHVRk3wre2axFoBXRNeUh/1d9d5FQfxIg="},
        {65535, "iPuVYJhP6SEE4gUFp8qbafd2rYv9YTCDYqAxCj8HdLM="},
    };
    uint8_t(*l)[32] = golden_leaves(65535);
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        uint8_t h[32];
        cit__merkle_root((const uint8_t(*)[32])l, g[i].size, h);
        assert_hash_b64(h, g[i].root);
    }
    /* a proof in the big tree verifies against the golden root */
    tree t = {l, 65535, 0};
    uint8_t proof[CIT_MERKLE_MAX_PROOF][32], root[32];
    size_t n = 0;
    assert_int_equal(cit__merkle_inclusion_proof(mem_mth, &t, 40000, 65535, proof, &n), 0);
    assert_int_equal(n, 16);
    cit__merkle_root((const uint8_t(*)[32])l, 65535, root);
    assert_true(cit__merkle_verify_inclusion(40000, 65535, l[40000], (const uint8_t(*)[32])proof, n, root));
    free(l);
}

#define MAXN 64

static void test_inclusion_every_size(void **state) {
    uint8_t(*l)[32] = golden_leaves(MAXN + 1);
    tree t = {l, 0, 0};
    for (uint64_t size = 1; size <= MAXN; size++) {
        uint8_t root[32], bigger[32], wrong[32];
        t.n = size;
        cit__merkle_root((const uint8_t(*)[32])l, size, root);
        cit__merkle_root((const uint8_t(*)[32])l, size + 1, bigger);
        for (uint64_t i = 0; i < size; i++) {
            uint8_t proof[CIT_MERKLE_MAX_PROOF + 1][32];
            size_t n = 0;
            assert_int_equal(cit__merkle_inclusion_proof(mem_mth, &t, i, size, proof, &n), 0);
            const uint8_t(*p)[32] = (const uint8_t(*)[32])proof;
            assert_true(cit__merkle_verify_inclusion(i, size, l[i], p, n, root));
            /* a wrong index, size, leaf or root */
            if (i + 1 < size)
                assert_false(cit__merkle_verify_inclusion(i + 1, size, l[i], p, n, root));
            if (i > 0)
                assert_false(cit__merkle_verify_inclusion(i - 1, size, l[i], p, n, root));
            assert_false(cit__merkle_verify_inclusion(i, size, l[i], p, n, bigger));
            assert_false(cit__merkle_verify_inclusion(i, size + 1, l[i], p, n, bigger));
            assert_false(cit__merkle_verify_inclusion(size, size, l[i], p, n, root));
            if (size > 1) {
                assert_false(cit__merkle_verify_inclusion(i, size * 2, l[i], p, n, root));
                assert_false(cit__merkle_verify_inclusion(i, size, l[(i + 1) % size], p, n, root));
            }
            memcpy(wrong, root, 32);
            wrong[31] ^= 1;
            assert_false(cit__merkle_verify_inclusion(i, size, l[i], p, n, wrong));
            /* each hash of the proof flipped, one hash missing, one too many */
            for (size_t k = 0; k < n; k++) {
                proof[k][0] ^= 8;
                assert_false(cit__merkle_verify_inclusion(i, size, l[i], p, n, root));
                proof[k][0] ^= 8;
            }
            if (n > 0)
                assert_false(cit__merkle_verify_inclusion(i, size, l[i], p, n - 1, root));
            memcpy(proof[n], root, 32);
            assert_false(cit__merkle_verify_inclusion(i, size, l[i], p, n + 1, root));
        }
    }
    free(l);
}

static void test_consistency_every_pair(void **state) {
    uint8_t(*l)[32] = golden_leaves(MAXN);
    uint8_t roots[MAXN + 1][32];
    for (uint64_t s = 1; s <= MAXN; s++)
        cit__merkle_root((const uint8_t(*)[32])l, s, roots[s]);
    tree t = {l, 0, 0};
    for (uint64_t size = 1; size <= MAXN; size++) {
        t.n = size;
        for (uint64_t m = 1; m <= size; m++) {
            uint8_t proof[CIT_MERKLE_MAX_PROOF + 1][32];
            size_t n = 99;
            assert_int_equal(cit__merkle_consistency_proof(mem_mth, &t, m, size, proof, &n), 0);
            const uint8_t(*p)[32] = (const uint8_t(*)[32])proof;
            assert_true(cit__merkle_verify_consistency(m, size, roots[m], roots[size], p, n));
            if (m == size) {
                assert_int_equal(n, 0);
                continue;
            }
            assert_true(n > 0);
            /* the roots of other sizes, or swapped */
            assert_false(cit__merkle_verify_consistency(m, size, roots[size], roots[m], p, n));
            if (m > 1)
                assert_false(cit__merkle_verify_consistency(m, size, roots[m - 1], roots[size], p, n));
            assert_false(cit__merkle_verify_consistency(m, size, roots[m], roots[size - 1], p, n));
            /* another old size with the same proof and roots (a different new size can have the
             * same tree shape, and RFC 9162's algorithm cannot tell those apart) */
            if (m + 1 < size)
                assert_false(cit__merkle_verify_consistency(m + 1, size, roots[m], roots[size], p, n));
            for (size_t k = 0; k < n; k++) {
                proof[k][5] ^= 0x40;
                assert_false(cit__merkle_verify_consistency(m, size, roots[m], roots[size], p, n));
                proof[k][5] ^= 0x40;
            }
            assert_false(cit__merkle_verify_consistency(m, size, roots[m], roots[size], p, n - 1));
            memcpy(proof[n], roots[size], 32);
            assert_false(cit__merkle_verify_consistency(m, size, roots[m], roots[size], p, n + 1));
        }
    }
    free(l);
}

static void test_bounds_rejected(void **state) {
    uint8_t(*l)[32] = golden_leaves(8);
    uint8_t root[32], big[CIT_MERKLE_MAX_PROOF + 1][32];
    cit__merkle_root((const uint8_t(*)[32])l, 8, root);
    memset(big, 0x11, sizeof big);
    tree t = {l, 8, 0};
    uint8_t proof[CIT_MERKLE_MAX_PROOF][32];
    size_t n = 7;
    /* generation refuses indexes and sizes outside the tree, and asks for nothing */
    assert_true(cit__merkle_inclusion_proof(mem_mth, &t, 8, 8, proof, &n) < 0);
    assert_int_equal(n, 0);
    assert_true(cit__merkle_inclusion_proof(mem_mth, &t, 0, 0, proof, &n) < 0);
    assert_true(cit__merkle_consistency_proof(mem_mth, &t, 0, 8, proof, &n) < 0);
    assert_true(cit__merkle_consistency_proof(mem_mth, &t, 9, 8, proof, &n) < 0);
    assert_int_equal(t.calls, 0);
    /* a failing callback's error comes back */
    tree small = {l, 3, 0};
    assert_int_equal(cit__merkle_inclusion_proof(mem_mth, &small, 0, 8, proof, &n), -99);
    assert_int_equal(cit__merkle_consistency_proof(mem_mth, &small, 2, 8, proof, &n), -99);
    /* verification: index >= size, size 0, old 0, old > new, empty or oversized proofs */
    const uint8_t(*b)[32] = (const uint8_t(*)[32])big;
    assert_false(cit__merkle_verify_inclusion(0, 0, l[0], b, 0, root));
    assert_false(cit__merkle_verify_inclusion(8, 8, l[0], b, 3, root));
    assert_false(cit__merkle_verify_inclusion(UINT64_MAX, 8, l[0], b, 3, root));
    assert_false(cit__merkle_verify_inclusion(0, 8, l[0], b, CIT_MERKLE_MAX_PROOF + 1, root));
    assert_false(cit__merkle_verify_consistency(0, 8, root, root, b, 3));
    assert_false(cit__merkle_verify_consistency(9, 8, root, root, b, 3));
    assert_false(cit__merkle_verify_consistency(3, 8, root, root, b, 0));
    assert_false(cit__merkle_verify_consistency(3, 8, root, root, b, CIT_MERKLE_MAX_PROOF + 1));
    assert_false(cit__merkle_verify_consistency(8, 8, root, root, b, 1)); /* equal sizes: empty proof only */
    assert_true(cit__merkle_verify_consistency(8, 8, root, root, b, 0));
    uint8_t other[32];
    memcpy(other, root, 32);
    other[0] ^= 1;
    assert_false(cit__merkle_verify_consistency(8, 8, root, other, b, 0));
    /* one leaf: the root is the leaf hash and the proof is empty */
    assert_true(cit__merkle_verify_inclusion(0, 1, l[0], b, 0, l[0]));
    assert_false(cit__merkle_verify_inclusion(0, 1, l[0], b, 1, l[0]));
    assert_false(cit__merkle_verify_inclusion(0, 1, l[1], b, 0, l[0]));
    /* a proof of the longest length (a tree of 2^63 + 1 leaves, the last one) is checked in
     * full; a 64-hash path of garbage does not verify */
    assert_false(cit__merkle_verify_inclusion((1ull << 63), (1ull << 63) + 1, l[0], b, 1, root));
    assert_false(cit__merkle_verify_inclusion(0, UINT64_MAX, l[0], b, CIT_MERKLE_MAX_PROOF, root));
    free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_hashers, setup_ct),
        cmocka_unit_test_setup(test_ct_roots, setup_ct),
        cmocka_unit_test_setup(test_ct_inclusion_paths, setup_ct),
        cmocka_unit_test_setup(test_ct_consistency_proofs, setup_ct),
        cmocka_unit_test(test_golden_roots),
        cmocka_unit_test(test_inclusion_every_size),
        cmocka_unit_test(test_consistency_every_pair),
        cmocka_unit_test(test_bounds_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
