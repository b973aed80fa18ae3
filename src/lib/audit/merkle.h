/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RFC 9162 (Certificate Transparency v2) Merkle trees over SHA-256: leaf and node hashing,
 * inclusion and consistency proofs, and their verification (sections 2.1.1 to 2.1.4).
 * Proof generation asks a callback for the Merkle Tree Hash of a range of leaves, so the
 * caller decides how to find it (cached subtree hashes, leaves read from the store).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CIT_MERKLE_MAX_PROOF 64 /* hashes in a proof of a tree of at most 2^63 leaves */

/* SHA-256 of the concatenation of parts (len 0 parts allowed). */
void cit__sha256_parts(uint8_t out[32], size_t n, const void *const *parts, const size_t *lens);
/* SHA-256(0x00 || data) */
void cit__merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[32]);
/* SHA-256(0x01 || left || right) */
void cit__merkle_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]);
/* MTH of n leaf hashes in memory (n 0: SHA-256 of the empty string). */
void cit__merkle_root(const uint8_t (*leaves)[32], uint64_t n, uint8_t out[32]);

/* The Merkle Tree Hash of leaves [start, start + n), n >= 1. 0 or a negative error code. */
typedef int (*cit_mth_fn)(void *env, uint64_t start, uint64_t n, uint8_t out[32]);

/* PATH(index, D[size]) (RFC 9162 2.1.3.1): *n hashes into proof (CIT_MERKLE_MAX_PROOF). */
int cit__merkle_inclusion_proof(cit_mth_fn mth, void *env, uint64_t index, uint64_t size,
                                uint8_t (*proof)[32], size_t *n);
/* PROOF(old, D[size]) (RFC 9162 2.1.4.1), 0 < old <= size (old == size: empty proof). */
int cit__merkle_consistency_proof(cit_mth_fn mth, void *env, uint64_t old, uint64_t size,
                                  uint8_t (*proof)[32], size_t *n);
/* RFC 9162 2.1.3.2 */
bool cit__merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf_hash[32],
                                  const uint8_t (*proof)[32], size_t n, const uint8_t root[32]);
/* RFC 9162 2.1.4.2; old == size: proof must be empty and the roots equal. */
bool cit__merkle_verify_consistency(uint64_t old, uint64_t size, const uint8_t old_root[32],
                                    const uint8_t new_root[32], const uint8_t (*proof)[32], size_t n);
