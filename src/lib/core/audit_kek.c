/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Envelope encryption of secret-tier audit payloads (docs/audit-format.md, "Secret tier"):
 * each segment has a random data key, wrapped (XChaCha20-Poly1305) under the master KEK; the
 * KEK is 32 random bytes sealed in the TPM as the store object audit/kek, one object version
 * per KEK version. Rotating the KEK re-wraps the data keys; entries never change.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "core/ed25519.h"
#include "core/keys.h"
#include "core/sealed.h"

#define KEK_PATH "audit/kek"
#define KEY_BYTES 32
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define PAYLOAD_VERSION 1

/* Unwrapped keys the context holds: the data key of one segment. sodium_malloc'd. */
struct cit_audit_keys {
    int64_t segment;
    uint8_t dk[KEY_BYTES];
};

void cit__audit_keys_drop(cit_ctx *ctx) {
    if (ctx->audit_keys)
        sodium_free(ctx->audit_keys); /* wipes */
    ctx->audit_keys = NULL;
}

static int kek_find(cit_ctx *ctx, cit_object *o) {
    int r = cit__object_find(ctx->store, KEK_PATH, o);
    if (r == CIT_E_OBJECT_NOT_FOUND) {
        cit_error_set(CIT_E_OBJECT_NOT_FOUND, "there is no audit key (KEK) yet");
        cit_error_cause("secret-tier streams encrypt their payloads under the audit key");
        cit_error_step("create it with `citadel tpm audit key create`");
    }
    return r;
}

int cit__audit_kek_require(cit_ctx *ctx) {
    cit_object o = {0};
    int r = kek_find(ctx, &o);
    cit__object_clear(&o);
    return r;
}

/* Unseals KEK version `version` of o into kek (locked memory the caller owns). */
static int kek_unseal(cit_ctx *ctx, cit_object *o, int version, uint8_t *kek) {
    return cit__kek_unseal(ctx, o, version, kek);
}

static void dk_ad(uint8_t ad[32], int64_t segment) {
    memset(ad, 0, 32);
    memcpy(ad, "citadel-audit-dk/v1", 19);
    for (int i = 0; i < 8; i++)
        ad[24 + i] = (uint8_t)((uint64_t)segment >> (56 - 8 * i));
}

static int wrap(const uint8_t *kek, int64_t segment, const uint8_t *dk, uint8_t out[NONCE_BYTES + KEY_BYTES + TAG_BYTES]) {
    uint8_t ad[32];
    dk_ad(ad, segment);
    randombytes_buf(out, NONCE_BYTES);
    unsigned long long cl = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE_BYTES, &cl, dk, KEY_BYTES, ad, sizeof ad, NULL, out, kek);
    return 0;
}

static int unwrap(const uint8_t *kek, int64_t segment, const uint8_t *w, size_t wl, uint8_t *dk) {
    uint8_t ad[32];
    dk_ad(ad, segment);
    unsigned long long pl = 0;
    if (wl != NONCE_BYTES + KEY_BYTES + TAG_BYTES ||
        crypto_aead_xchacha20poly1305_ietf_decrypt(dk, &pl, NULL, w + NONCE_BYTES, wl - NONCE_BYTES, ad, sizeof ad, w,
                                                   kek) != 0 ||
        pl != KEY_BYTES) {
        cit_error_set(CIT_E_STORE_INCONSISTENT, "the data key of audit segment %" PRId64 " does not unwrap", segment);
        cit_error_cause("the wrapped key was changed, or it belongs to another audit key");
        return CIT_E_STORE_INCONSISTENT;
    }
    return 0;
}

/* The segment that entries appended now belong to (the open one). */
static int open_segment(cit_store *s, int64_t *seg) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "SELECT coalesce(max(id), 0) + 1 FROM audit_segments");
    if (r == 0 && sqlite3_step(st) == SQLITE_ROW)
        *seg = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return r;
}

/* The data key of segment seg into ctx->audit_keys: unwrapped when recorded, else (create)
 * made and recorded wrapped under the current KEK. */
static int data_key(cit_ctx *ctx, cit_store *s, int64_t seg, bool create) {
    if (ctx->audit_keys && ctx->audit_keys->segment == seg)
        return 0;
    int r = cit__sodium_init();
    if (r < 0)
        return r;
    cit__audit_keys_drop(ctx);
    struct cit_audit_keys *k = sodium_malloc(sizeof *k);
    uint8_t *kek = sodium_malloc(KEY_BYTES);
    if (!k || !kek) {
        if (k)
            sodium_free(k);
        if (kek)
            sodium_free(kek);
        return cit_error_set(CIT_E_INTERNAL, "cannot allocate locked memory for the audit keys");
    }
    cit_object o = {0};
    sqlite3_stmt *st = NULL;
    int kv = 0;
    uint8_t *w = NULL;
    size_t wl = 0;
    r = cit__store_prepare(s, &st, "SELECT kek_version, wrapped FROM audit_data_keys WHERE segment = ?");
    if (r == 0) {
        sqlite3_bind_int64(st, 1, seg);
        if (sqlite3_step(st) == SQLITE_ROW) {
            kv = sqlite3_column_int(st, 0);
            wl = (size_t)sqlite3_column_bytes(st, 1);
            w = malloc(wl ? wl : 1);
            if (w && wl)
                memcpy(w, sqlite3_column_blob(st, 1), wl);
        }
        sqlite3_finalize(st);
    }
    if (r == 0)
        r = kek_find(ctx, &o);
    if (r == 0 && kv) {
        r = kek_unseal(ctx, &o, kv, kek);
        if (r == 0)
            r = unwrap(kek, seg, w, wl, k->dk);
    } else if (r == 0 && !create) {
        r = cit_error_set(CIT_E_STORE_INCONSISTENT, "audit segment %" PRId64 " has no data key", seg);
        cit_error_cause("the sealed entries of this segment cannot be decrypted: the key row was deleted");
    } else if (r == 0) {
        uint8_t wrapped[NONCE_BYTES + KEY_BYTES + TAG_BYTES];
        r = kek_unseal(ctx, &o, o.version, kek);
        if (r == 0) {
            randombytes_buf(k->dk, KEY_BYTES);
            wrap(kek, seg, k->dk, wrapped);
            r = cit__store_prepare(s, &st, "INSERT INTO audit_data_keys (segment, kek_version, wrapped) VALUES (?, ?, ?)");
        }
        if (r == 0) {
            sqlite3_bind_int64(st, 1, seg);
            sqlite3_bind_int(st, 2, o.version);
            sqlite3_bind_blob(st, 3, wrapped, sizeof wrapped, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE)
                r = cit__store_error(s, "cannot record the audit data key");
            sqlite3_finalize(st);
        }
    }
    free(w);
    sodium_free(kek);
    cit__object_clear(&o);
    if (r < 0) {
        sodium_free(k);
        return r;
    }
    k->segment = seg;
    ctx->audit_keys = k;
    return 0;
}

/* Additional data binding a payload to its entry. */
static size_t payload_ad(uint8_t *ad, int64_t seqno, const char *stream, const char *event) {
    size_t n = 0;
    memcpy(ad, "citadel-audit-payload/v1", 24);
    n = 24;
    for (int i = 0; i < 8; i++)
        ad[n++] = (uint8_t)((uint64_t)seqno >> (56 - 8 * i));
    size_t sl = strlen(stream), el = strlen(event);
    memcpy(ad + n, stream, sl);
    n += sl;
    ad[n++] = 0;
    memcpy(ad + n, event, el);
    n += el;
    return n;
}

int cit__audit_seal_payload(cit_ctx *ctx, cit_store *s, int64_t seqno, const char *stream, const char *event,
                            const uint8_t *in, size_t len, uint8_t **out, size_t *out_len) {
    int64_t seg = 0;
    int r = open_segment(s, &seg);
    if (r == 0)
        r = data_key(ctx, s, seg, true);
    if (r < 0)
        return r;
    size_t n = 1 + 8 + NONCE_BYTES + len + TAG_BYTES;
    uint8_t *b = malloc(n);
    if (!b)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    b[0] = PAYLOAD_VERSION;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (uint8_t)((uint64_t)seg >> (56 - 8 * i));
    randombytes_buf(b + 9, NONCE_BYTES);
    uint8_t ad[24 + 8 + 2 * (CIT_AUDIT_NAME_MAX + 1)];
    size_t adl = payload_ad(ad, seqno, stream, event);
    unsigned long long cl = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(b + 9 + NONCE_BYTES, &cl, len ? in : (const uint8_t *)"", len, ad, adl,
                                               NULL, b + 9, ctx->audit_keys->dk);
    *out = b;
    *out_len = n;
    return 0;
}

int cit__audit_open_payload(cit_ctx *ctx, cit_store *s, const cit_audit_row *row, uint8_t **out, size_t *out_len) {
    const uint8_t *p = row->payload;
    size_t n = row->payload_len;
    if (n < 1 + 8 + NONCE_BYTES + TAG_BYTES || p[0] != PAYLOAD_VERSION) {
        cit_error_set(CIT_E_STORE_INCONSISTENT, "the sealed payload of audit entry %" PRId64 " is damaged", row->seqno);
        return CIT_E_STORE_INCONSISTENT;
    }
    int64_t seg = 0;
    for (int i = 0; i < 8; i++)
        seg = seg << 8 | p[1 + i];
    int r = data_key(ctx, s, seg, false);
    if (r < 0)
        return r;
    uint8_t ad[24 + 8 + 2 * (CIT_AUDIT_NAME_MAX + 1)];
    size_t adl = payload_ad(ad, row->seqno, row->stream, row->event);
    size_t pl = n - 9 - NONCE_BYTES - TAG_BYTES;
    uint8_t *plain = malloc(pl + 1);
    if (!plain)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    unsigned long long got = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &got, NULL, p + 9 + NONCE_BYTES, n - 9 - NONCE_BYTES, ad, adl,
                                                   p + 9, ctx->audit_keys->dk) != 0) {
        free(plain);
        cit_error_set(CIT_E_AUDIT_ENTRY_MODIFIED, "the sealed payload of audit entry %" PRId64 " does not decrypt",
                      row->seqno);
        cit_error_cause("the ciphertext, or the entry's sequence number, stream or event, was changed");
        cit_error_context("first_bad_seqno", "%" PRId64, row->seqno);
        return CIT_E_AUDIT_ENTRY_MODIFIED;
    }
    plain[got] = 0;
    *out = plain;
    *out_len = (size_t)got;
    return 0;
}

/* ---- audit key create | rotate | show ---- */

static int seal_new_kek(cit_ctx *ctx, cit_object_version *v) { return cit__kek_seal_new(ctx, KEK_PATH, NULL, v); }

_public_ int cit_audit_key_create(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    static const char *const ops[] = {"TPM2_GetRandom", "TPM2_Create (sealed data object)", NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "create the audit key (KEK) sealed in the TPM", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    cit_object o = {0};
    if (cit__object_find(s, KEK_PATH, &o) == 0) {
        cit__object_clear(&o);
        cit_error_set(CIT_E_OBJECT_EXISTS, "the audit key already exists");
        cit_error_step("rotate it with `citadel tpm audit key rotate`");
        return CIT_E_OBJECT_EXISTS;
    }
    cit_error_clear();
    cit_object_version v = {.version = 1};
    if ((r = seal_new_kek(ctx, &v)) < 0)
        return r;
    snprintf(o.path, sizeof o.path, KEK_PATH);
    snprintf(o.kind, sizeof o.kind, "secret");
    snprintf(o.status, sizeof o.status, "active");
    snprintf(o.algorithm, sizeof o.algorithm, "audit-kek");
    o.version = 1;
    o.metadata = strdup("{\"auth\":false,\"purpose\":\"audit-kek\",\"size\":32}");
    if ((r = cit__store_begin(s)) == 0 && (r = cit__object_insert(s, &o)) == 0 && (r = cit__version_insert(s, o.id, &v)) == 0 &&
        (r = cit__store_event(s, "audit.key.create", KEK_PATH, o.id, "ok", NULL)) == 0)
        r = cit__store_commit(s);
    if (r < 0)
        cit__store_rollback(s);
    cit__version_clear(&v);
    cit__object_clear(&o);
    if (r < 0)
        return r;
    *out = json_pack("{s:s,s:i,s:s}", "path", KEK_PATH, "version", 1, "sealing",
                     "32 random bytes sealed in the TPM; data keys are wrapped with XChaCha20-Poly1305");
    return 0;
}

_public_ int cit_audit_key_rotate(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    static const char *const ops[] = {"TPM2_Load + TPM2_Unseal (each KEK version in use)", "TPM2_GetRandom",
                                      "TPM2_Create (sealed data object)", NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "rotate the audit key: a new KEK, every data key re-wrapped", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    cit_object o = {0};
    if ((r = cit__sodium_init()) < 0 || (r = kek_find(ctx, &o)) < 0)
        return r;
    cit_object_version v = {.version = o.version + 1};
    uint8_t *old = sodium_malloc(KEY_BYTES), *neu = sodium_malloc(KEY_BYTES), *dk = sodium_malloc(KEY_BYTES);
    int64_t rewrapped = 0;
    const int new_version = v.version;
    if (!old || !neu || !dk) {
        r = cit_error_set(CIT_E_INTERNAL, "cannot allocate locked memory for the audit keys");
        goto done;
    }
    if ((r = seal_new_kek(ctx, &v)) < 0)
        goto done;
    /* the new KEK, unsealed back from the TPM (so what is used is what the TPM holds) */
    if ((r = cit__store_begin(s)) < 0)
        goto done;
    o.version = v.version;
    if ((r = cit__version_insert(s, o.id, &v)) < 0 || (r = cit__object_update(s, &o)) < 0)
        goto fail;
    if ((r = kek_unseal(ctx, &o, v.version, neu)) < 0)
        goto fail;
    sqlite3_stmt *st = NULL, *up = NULL;
    r = cit__store_prepare(s, &st, "SELECT segment, kek_version, wrapped FROM audit_data_keys ORDER BY kek_version, segment");
    if (r == 0)
        r = cit__store_prepare(s, &up, "UPDATE audit_data_keys SET kek_version = ?, wrapped = ? WHERE segment = ?");
    int have = 0;
    while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
        int64_t seg = sqlite3_column_int64(st, 0);
        int kv = sqlite3_column_int(st, 1);
        if (kv != have && (r = kek_unseal(ctx, &o, kv, old)) < 0)
            break;
        have = kv;
        if ((r = unwrap(old, seg, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), dk)) < 0)
            break;
        uint8_t w[NONCE_BYTES + KEY_BYTES + TAG_BYTES];
        wrap(neu, seg, dk, w);
        sqlite3_bind_int(up, 1, v.version);
        sqlite3_bind_blob(up, 2, w, sizeof w, SQLITE_TRANSIENT);
        sqlite3_bind_int64(up, 3, seg);
        if (sqlite3_step(up) != SQLITE_DONE)
            r = cit__store_error(s, "cannot re-wrap an audit data key");
        sqlite3_reset(up);
        rewrapped++;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(up);
    if (r == 0) {
        json_t *d = json_pack("{s:i,s:I}", "version", v.version, "rewrapped", (json_int_t)rewrapped);
        r = cit__store_event(s, "audit.key.rotate", KEK_PATH, o.id, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
fail:
    if (r < 0)
        cit__store_rollback(s);
done:
    cit__audit_keys_drop(ctx);
    if (old)
        sodium_free(old);
    if (neu)
        sodium_free(neu);
    if (dk)
        sodium_free(dk);
    cit__version_clear(&v);
    cit__object_clear(&o);
    if (r < 0)
        return r;
    *out = json_pack("{s:s,s:i,s:I}", "path", KEK_PATH, "version", new_version, "rewrapped_data_keys",
                     (json_int_t)rewrapped);
    return 0;
}

_public_ int cit_audit_key_show(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    cit_object o = {0};
    if ((r = kek_find(ctx, &o)) < 0)
        return r;
    json_t *vers = json_array();
    sqlite3_stmt *st = NULL;
    r = cit__store_prepare(s, &st, "SELECT v.version, v.created_at, (SELECT count(*) FROM audit_data_keys d WHERE "
                                   "d.kek_version = v.version) FROM object_versions v WHERE v.object_id = ? ORDER BY v.version");
    if (r == 0) {
        sqlite3_bind_int64(st, 1, o.id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            char when[40];
            cit_time_rfc3339(when, sizeof when, sqlite3_column_int64(st, 1));
            json_array_append_new(vers, json_pack("{s:i,s:s,s:I,s:b}", "version", sqlite3_column_int(st, 0), "created",
                                                  when, "data_keys", (json_int_t)sqlite3_column_int64(st, 2), "current",
                                                  sqlite3_column_int(st, 0) == o.version));
        }
        sqlite3_finalize(st);
    }
    *out = json_pack("{s:s,s:i,s:o,s:s}", "path", KEK_PATH, "version", o.version, "versions", vers, "wrapping",
                     "XChaCha20-Poly1305 (data keys under the KEK, payloads under their segment's data key)");
    cit__object_clear(&o);
    return r;
}
