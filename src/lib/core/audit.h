/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log, shared inside libcitadel (audit.c: entries, chain, segments, proofs,
 * anti-rollback; audit_note.c: signed checkpoints and witnesses; audit_kek.c: envelope
 * encryption of secret-tier payloads). The byte layouts are in docs/audit-format.md.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/ctx.h"

#define CIT_AUDIT_PAYLOAD_MAX (1024u * 1024)  /* bytes of one entry's payload */
#define CIT_AUDIT_NAME_MAX 64                  /* stream and event names */
#define CIT_AUDIT_BLOCK 256                    /* leaves under a cached level-8 node */
#define CIT_AUDIT_GROUP 16                     /* leaves under a cached level-4 node */

typedef struct cit_audit_row {
    int64_t seqno;
    int64_t at;      /* unix time, microseconds */
    char stream[CIT_AUDIT_NAME_MAX + 1];
    char event[CIT_AUDIT_NAME_MAX + 1];
    char actor[65];
    int sealed;      /* 1: payload is envelope ciphertext (secret tier) */
    uint8_t *payload;
    size_t payload_len;
    uint8_t prev[32], hash[32]; /* as stored */
} cit_audit_row;

void cit__audit_row_clear(cit_audit_row *r);
/* Reads one entry (CIT_E_AUDIT_ENTRY_NOT_FOUND when absent). */
int cit__audit_row_get(cit_store *s, int64_t seqno, cit_audit_row *out);
/* The canonical entry bytes (the Merkle leaf input); *out malloc'd. */
int cit__audit_entry_bytes(const cit_audit_row *r, uint8_t **out, size_t *len);
/* The RFC 9162 leaf hash of an entry, and the chain link SHA-256(0x02 || prev || leaf). */
int cit__audit_leaf_hash(const cit_audit_row *r, uint8_t out[32]);
void cit__audit_chain_hash(const uint8_t prev[32], const uint8_t leaf[32], uint8_t out[32]);

/* The number of entries (the tree size; sequence numbers are 1..size). */
int cit__audit_size(cit_store *s, int64_t *size);
/* The Merkle Tree Hash of leaves [start, start + n) from the store (cached subtree hashes
 * where complete, entries otherwise). */
int cit__audit_mth(cit_store *s, uint64_t start, uint64_t n, uint8_t out[32]);
/* The log's origin line: "citadel.tpm/audit/<workspace id>". */
int cit__audit_origin(cit_store *s, char *out, size_t cap);

/* Checks the stored signed checkpoint id (audit_note.c): its note names this log's origin and
 * its recorded tree size and root, the signature verifies with the key it was made with, and
 * that key is one of the signing identity's versions. On success *size, root and *identity (the
 * caller's) describe it; on failure why says what is wrong (CIT_E_AUDIT_CHECKPOINT_INVALID,
 * _KEY_UNKNOWN, CIT_E_AUDIT_NOT_SIGNED when there is no such checkpoint). */
int cit__audit_checkpoint_check(cit_store *s, int64_t id, int64_t *size, uint8_t root[32], char **identity,
                                char *why, size_t cap);

/* Envelope encryption (audit_kek.c). seal: plaintext -> stored payload for an entry of the
 * open segment; open: the reverse, for audit show. */
int cit__audit_seal_payload(cit_ctx *ctx, cit_store *s, int64_t seqno, const char *stream, const char *event,
                            const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);
int cit__audit_open_payload(cit_ctx *ctx, cit_store *s, const cit_audit_row *r, uint8_t **out, size_t *out_len);
/* 0 when the audit key (KEK) exists, else CIT_E_OBJECT_NOT_FOUND with the step to create it. */
int cit__audit_kek_require(cit_ctx *ctx);
/* Forgets any data key or KEK the context holds (wiped). */
void cit__audit_keys_drop(cit_ctx *ctx);

/* A root recomputed from the entries at a segment's end (audit verify). */
typedef struct cit_audit_root {
    int64_t size;
    bool valid; /* the log reached that size */
    uint8_t root[32];
} cit_audit_root;

/* Drops the context's cached writer state (ctx close). */
void cit__audit_state_free(cit_ctx *ctx);
