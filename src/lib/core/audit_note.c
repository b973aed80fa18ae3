/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signed checkpoints (C2SP tlog-checkpoint in a C2SP signed note, signed in the TPM),
 * verification of the log from genesis, publication for witnesses, witness co-signatures
 * (cosignature/v1 layout) and their receipts. Byte layouts: docs/audit-format.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "audit/merkle.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "core/keys.h"
#include "crypto/crypto.h"

#define SIG_TYPE_ECDSA 0x02 /* the signature type byte in key IDs (C2SP signed-note) */
static const char EM_DASH[] = "\xe2\x80\x94 ";

int cit__audit_walk(cit_ctx *ctx, cit_store *s, json_t *report, int *code, int64_t *first_bad, char *detail,
                    size_t detail_cap, cit_audit_root **roots_out, size_t *nroots);

/* ---- signed notes ---- */

static int spki_der(EVP_PKEY *pk, uint8_t **der, size_t *len) { return cit__pubkey_der(der, len, pk); }

/* SHA-256(name || 0x0A || type || SPKI DER)[:4] */
static int key_id(const char *name, EVP_PKEY *pk, uint8_t id[4]) {
    uint8_t *der = NULL;
    size_t dl = 0;
    int r = spki_der(pk, &der, &dl);
    if (r < 0)
        return r;
    static const uint8_t sep[2] = {0x0a, SIG_TYPE_ECDSA};
    const void *p[3] = {name, sep, der};
    size_t l[3] = {strlen(name), 2, dl};
    uint8_t h[32];
    cit__sha256_parts(h, 3, p, l);
    memcpy(id, h, 4);
    free(der);
    return 0;
}

static bool is_p256(EVP_PKEY *pk) {
    char group[32] = "";
    size_t gl = 0;
    return EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
           EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof group, &gl) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

/* The checkpoint body: origin, tree size, base64 root, each ending in a newline. */
static char *checkpoint_body(const char *origin, int64_t size, const uint8_t root[32]) {
    char *b64 = NULL;
    if (cit__base64_encode(&b64, root, 32) < 0)
        return NULL;
    char *body = NULL;
    if (asprintf(&body, "%s\n%" PRId64 "\n%s\n", origin, size, b64) < 0)
        body = NULL;
    free(b64);
    return body;
}

typedef struct note {
    char *body;       /* text up to and including its last newline */
    size_t nsig;
    char *names[8];
    uint8_t *sigs[8]; /* decoded base64: key id || signature (|| for cosignatures: time) */
    size_t sig_len[8];
} note;

static void note_free(note *n) {
    free(n->body);
    for (size_t i = 0; i < n->nsig; i++) {
        free(n->names[i]);
        free(n->sigs[i]);
    }
    memset(n, 0, sizeof *n);
}

/* Parses a signed note (the text, a blank line, "— name base64" lines). */
static int note_parse(const char *text, note *n) {
    memset(n, 0, sizeof *n);
    const char *sep = strstr(text, "\n\n");
    if (!sep || strlen(text) > 64 * 1024)
        goto bad;
    n->body = strndup(text, (size_t)(sep - text) + 1);
    const char *p = sep + 2;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol || strncmp(p, EM_DASH, sizeof EM_DASH - 1) != 0 || n->nsig == ELEMENTSOF(n->names))
            goto bad;
        const char *name = p + sizeof EM_DASH - 1, *sp = memchr(name, ' ', (size_t)(eol - name));
        if (!sp || sp == name)
            goto bad;
        char *b64 = strndup(sp + 1, (size_t)(eol - sp - 1));
        uint8_t *sig = NULL;
        size_t sl = 0;
        int r = b64 ? cit__base64_decode(&sig, &sl, b64) : -1;
        free(b64);
        if (r < 0 || sl < 5) {
            free(sig);
            goto bad;
        }
        n->names[n->nsig] = strndup(name, (size_t)(sp - name));
        n->sigs[n->nsig] = sig;
        n->sig_len[n->nsig++] = sl;
        p = eol + 1;
    }
    if (!n->body || n->nsig == 0)
        goto bad;
    cit_error_clear();
    return 0;
bad:
    note_free(n);
    cit_error_set(CIT_E_AUDIT_CHECKPOINT_INVALID, "the checkpoint is not a signed note");
    cit_error_cause("a signed note is text, a blank line and lines \"— NAME BASE64\" (C2SP signed-note)");
    return CIT_E_AUDIT_CHECKPOINT_INVALID;
}

/* The body's three checkpoint lines. */
static int body_parse(const char *body, char *origin, size_t ocap, int64_t *size, uint8_t root[32]) {
    char o[256], sz[32], b64[64];
    if (sscanf(body, "%255[^\n]\n%31[^\n]\n%63[^\n]\n", o, sz, b64) != 3)
        goto bad;
    uint64_t v;
    uint8_t *h = NULL;
    size_t hl = 0;
    if (cit_parse_u64(sz, &v) < 0 || v > INT64_MAX || cit__base64_decode(&h, &hl, b64) < 0 || hl != 32) {
        free(h);
        goto bad;
    }
    memcpy(root, h, 32);
    free(h);
    *size = (int64_t)v;
    snprintf(origin, ocap, "%s", o);
    return 0;
bad:
    cit_error_set(CIT_E_AUDIT_CHECKPOINT_INVALID, "the checkpoint body is not origin, tree size and root hash");
    return CIT_E_AUDIT_CHECKPOINT_INVALID;
}

/* Verifies the note's signature by name with pk (0, or CIT_E_AUDIT_CHECKPOINT_INVALID /
 * _KEY_UNKNOWN). msg_prefix: text signed before the body (cosignatures), NULL for checkpoints. */
static int sig_check(EVP_PKEY *pk, const char *name, const uint8_t *sig, size_t sl, const char *body, bool cosig,
                     int64_t *timestamp) {
    uint8_t id[4];
    int r = key_id(name, pk, id);
    if (r < 0)
        return r;
    size_t off = 4 + (cosig ? 8 : 0);
    if (sl <= off)
        return cit_error_set(CIT_E_AUDIT_CHECKPOINT_INVALID, "the signature by %s is too short", name);
    if (memcmp(sig, id, 4) != 0) {
        cit_error_set(CIT_E_AUDIT_CHECKPOINT_KEY_UNKNOWN, "the signature by %s was made with another key", name);
        cit_error_cause("its key ID does not match the key it is checked against");
        return CIT_E_AUDIT_CHECKPOINT_KEY_UNKNOWN;
    }
    uint8_t md[32];
    int64_t t = 0;
    if (cosig) {
        for (int i = 0; i < 8; i++)
            t = (int64_t)((uint64_t)t << 8 | sig[4 + i]);
        char head[64];
        snprintf(head, sizeof head, "cosignature/v1\ntime %" PRId64 "\n", t);
        const void *p[2] = {head, body};
        size_t l[2] = {strlen(head), strlen(body)};
        cit__sha256_parts(md, 2, p, l);
        if (timestamp)
            *timestamp = t;
    } else {
        const void *p[1] = {body};
        size_t l[1] = {strlen(body)};
        cit__sha256_parts(md, 1, p, l);
    }
    r = cit__sig_verify(pk, CIT_SCHEME_ECDSA, TPM2_ALG_SHA256, md, 32, sig + off, sl - off, CIT_SIG_ENC_DER);
    if (r == CIT_E_SIGNATURE_INVALID) {
        cit_error_set(CIT_E_AUDIT_CHECKPOINT_INVALID, "the signature by %s does not verify", name);
        return CIT_E_AUDIT_CHECKPOINT_INVALID;
    }
    return r;
}

/* Finds the note's signature by name, verified with pk. */
static int note_verify(const note *n, const char *name, EVP_PKEY *pk, bool cosig, int64_t *timestamp) {
    for (size_t i = 0; i < n->nsig; i++)
        if (strcmp(n->names[i], name) == 0)
            return sig_check(pk, name, n->sigs[i], n->sig_len[i], n->body, cosig, timestamp);
    cit_error_set(CIT_E_AUDIT_CHECKPOINT_KEY_UNKNOWN, "the checkpoint has no signature by %s", name);
    return CIT_E_AUDIT_CHECKPOINT_KEY_UNKNOWN;
}

/* ---- signing in the TPM ---- */

typedef struct signer {
    cit_object o;
    EVP_PKEY *pk;
    char *pem;
} signer;

static void signer_clear(signer *g) {
    cit__object_clear(&g->o);
    EVP_PKEY_free(g->pk);
    free(g->pem);
    memset(g, 0, sizeof *g);
}

static int signer_open(cit_ctx *ctx, const char *path, signer *g) {
    memset(g, 0, sizeof *g);
    int r = cit__ctx_find(ctx, path, &g->o);
    if (r == 0)
        r = cit__require_kind(&g->o, "key");
    if (r == 0)
        r = cit__require_active(&g->o);
    if (r == 0 && (cit__is_authority(&g->o) || strcmp(g->o.usage, "sign") != 0 ||
                   strcmp(g->o.algorithm, "ecc-p256") != 0)) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s cannot sign audit checkpoints", path);
        cit_error_cause("checkpoints are signed by an ECC P-256 signing identity that is not an authority (it is %s%s)",
                        g->o.algorithm, cit__is_authority(&g->o) ? ", an authority" : "");
        cit_error_step("make one: `citadel tpm identity init audit-signer --usage audit`");
        cit_error_context("path", "%s", path);
    }
    cit_object_version v = {0};
    if (r == 0)
        r = cit__version_get(ctx->store, g->o.id, g->o.version, &v);
    if (r == 0)
        r = cit__key_version_pubkey(&g->o, &v, &g->pk);
    cit__version_clear(&v);
    if (r == 0)
        r = cit__pubkey_pem(&g->pem, g->pk);
    if (r < 0)
        signer_clear(g);
    return r;
}

/* A signature line "— name base64(key id || [time ||] DER signature)\n" over msg. */
static int sign_line(cit_ctx *ctx, signer *g, const char *name, const char *body, bool cosig, int64_t t, char **line) {
    uint8_t md[32], id[4];
    char head[64] = "";
    if (cosig)
        snprintf(head, sizeof head, "cosignature/v1\ntime %" PRId64 "\n", t);
    const void *p[2] = {head, body};
    size_t l[2] = {strlen(head), strlen(body)};
    cit__sha256_parts(md, 2, p, l);
    int r = key_id(name, g->pk, id);
    TPMT_SIGNATURE *sig = NULL;
    if (r == 0)
        r = cit__key_sign_digest(ctx, &g->o, TPM2_ALG_SHA256, md, 32, NULL, &sig);
    uint8_t *der = NULL;
    size_t dl = 0;
    if (r == 0)
        r = cit__sig_encode(&der, &dl, sig, CIT_SIG_ENC_DER, 32);
    free(sig);
    if (r < 0)
        return r;
    size_t off = 4 + (cosig ? 8 : 0);
    uint8_t *all = malloc(off + dl);
    char *b64 = NULL;
    if (all) {
        memcpy(all, id, 4);
        for (int i = 0; cosig && i < 8; i++)
            all[4 + i] = (uint8_t)((uint64_t)t >> (56 - 8 * i));
        memcpy(all + off, der, dl);
        r = cit__base64_encode(&b64, all, off + dl);
    } else
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    free(all);
    free(der);
    if (r == 0 && asprintf(line, "%s%s %s\n", EM_DASH, name, b64) < 0)
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    free(b64);
    return r;
}

static void blob32(sqlite3_stmt *st, int col, uint8_t out[32]) {
    memset(out, 0, 32);
    if (sqlite3_column_bytes(st, col) == 32)
        memcpy(out, sqlite3_column_blob(st, col), 32);
}

_public_ int cit_audit_sign(json_t **out, cit_ctx *ctx, const char *identity, int64_t segment) {
    cit_error_clear();
    cit_store *s;
    static const char *const ops[] = {"TPM2_Load (or the persistent identity)", "TPM2_Sign (ECDSA P-256, SHA-256)",
                                      NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "sign an audit checkpoint in the TPM", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    sqlite3_stmt *st = NULL;
    int64_t id = 0, last = 0;
    uint8_t root[32], now_root[32];
    r = cit__store_prepare(s, &st, segment ? "SELECT id, last_seqno, root FROM audit_segments WHERE id = ?"
                                           : "SELECT id, last_seqno, root FROM audit_segments ORDER BY id DESC LIMIT 1");
    if (r < 0)
        return r;
    if (segment)
        sqlite3_bind_int64(st, 1, segment);
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        last = sqlite3_column_int64(st, 1);
        blob32(st, 2, root);
    }
    sqlite3_finalize(st);
    if (!id) {
        cit_error_set(CIT_E_AUDIT_SEGMENT_NOT_FOUND, segment ? "no audit segment %" PRId64 : "no audit segment yet",
                      segment);
        cit_error_step("seal the open entries first: `citadel tpm audit segments close`");
        return CIT_E_AUDIT_SEGMENT_NOT_FOUND;
    }
    /* the root is recomputed (from the cached subtree hashes and the entries above them): a
     * segment row changed after the close is refused. A forged cached hash is not caught here
     * (that would read the whole log); `audit verify` recomputes everything from the entries */
    if ((r = cit__audit_mth(s, 0, (uint64_t)last, now_root)) < 0)
        return r;
    if (memcmp(root, now_root, 32) != 0) {
        cit_error_set(CIT_E_AUDIT_ROOT_MISMATCH, "segment %" PRId64 " no longer has its recorded root", id);
        cit_error_step("run `citadel tpm audit verify` to find the first changed entry");
        return CIT_E_AUDIT_ROOT_MISMATCH;
    }
    char origin[128];
    if ((r = cit__audit_origin(s, origin, sizeof origin)) < 0)
        return r;
    signer g;
    if ((r = signer_open(ctx, identity, &g)) < 0)
        return r;
    _cleanup_free_ char *body = checkpoint_body(origin, last, root);
    char *line = NULL;
    r = body ? sign_line(ctx, &g, origin, body, false, 0, &line) : cit_error_set(CIT_E_INTERNAL, "out of memory");
    _cleanup_free_ char *note_text = NULL;
    if (r == 0 && asprintf(&note_text, "%s\n%s", body, line) < 0)
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    free(line);
    int64_t cp = 0;
    if (r == 0 && (r = cit__store_begin(s)) == 0) {
        r = cit__store_prepare(s, &st, "INSERT INTO audit_checkpoints (segment_id, tree_size, root, note, identity, "
                                       "public_pem, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
        if (r == 0) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int64(st, 2, last);
            sqlite3_bind_blob(st, 3, root, 32, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, note_text, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 5, g.o.path, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 6, g.pem, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 7, (int64_t)time(NULL));
            if (sqlite3_step(st) != SQLITE_DONE)
                r = cit__store_error(s, "cannot record the checkpoint");
            cp = sqlite3_last_insert_rowid(s->db);
            sqlite3_finalize(st);
        }
        if (r == 0) {
            json_t *d = json_pack("{s:I,s:I}", "segment", (json_int_t)id, "tree_size", (json_int_t)last);
            r = cit__store_event(s, "audit.sign", g.o.path, g.o.id, "ok", d); /* borrows d */
            json_decref(d);
        }
        if (r == 0)
            r = cit__store_commit(s);
        if (r < 0)
            cit__store_rollback(s);
    }
    if (r == 0)
        *out = json_pack("{s:I,s:I,s:I,s:s,s:s,s:s,s:s}", "checkpoint", (json_int_t)cp, "segment", (json_int_t)id,
                         "tree_size", (json_int_t)last, "origin", origin, "identity", g.o.path, "note", note_text,
                         "public_key_pem", g.pem);
    signer_clear(&g);
    return r;
}

/* ---- verification ---- */

/* Whether pem is the public key of one of identity's versions. */
static bool identity_has_key(cit_store *s, const char *identity, EVP_PKEY *pk) {
    cit_object o = {0};
    if (cit__object_find(s, identity, &o) < 0) {
        cit_error_clear();
        return false;
    }
    bool found = false;
    for (int v = 1; v <= o.version && !found; v++) {
        cit_object_version ver = {0};
        EVP_PKEY *vk = NULL;
        if (cit__version_get(s, o.id, v, &ver) == 0 && cit__key_version_pubkey(&o, &ver, &vk) == 0)
            found = EVP_PKEY_eq(vk, pk) == 1;
        EVP_PKEY_free(vk);
        cit__version_clear(&ver);
    }
    cit_error_clear();
    cit__object_clear(&o);
    return found;
}

typedef struct cp_row {
    int64_t id, segment, size;
    uint8_t root[32];
    char *note, *identity, *pem;
} cp_row;

static void cp_free(cp_row *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(c[i].note);
        free(c[i].identity);
        free(c[i].pem);
    }
    free(c);
}

static int cp_load(cit_store *s, cp_row **out, size_t *n) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "SELECT id, segment_id, tree_size, root, note, identity, public_pem FROM "
                                       "audit_checkpoints ORDER BY tree_size, id");
    size_t cap = 0;
    while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            cp_row *nc = realloc(*out, cap * sizeof *nc);
            if (!nc) {
                r = cit_error_set(CIT_E_INTERNAL, "out of memory");
                break;
            }
            *out = nc;
        }
        cp_row *c = &(*out)[(*n)++];
        c->id = sqlite3_column_int64(st, 0);
        c->segment = sqlite3_column_int64(st, 1);
        c->size = sqlite3_column_int64(st, 2);
        blob32(st, 3, c->root);
        c->note = strdup((const char *)sqlite3_column_text(st, 4));
        c->identity = strdup((const char *)sqlite3_column_text(st, 5));
        c->pem = strdup((const char *)sqlite3_column_text(st, 6));
    }
    sqlite3_finalize(st);
    return r;
}

/* Checks one checkpoint: its note parses, names our origin and this size/root, is signed
 * by the key it names, and that key belongs to the identity. */
static int cp_check(cit_store *s, const char *origin, const cp_row *c, const uint8_t seg_root[32], char *why,
                    size_t cap) {
    note n;
    int r = note_parse(c->note, &n);
    char o[256];
    int64_t size = 0;
    uint8_t root[32];
    EVP_PKEY *pk = NULL;
    if (r == 0)
        r = body_parse(n.body, o, sizeof o, &size, root);
    if (r == 0 && (strcmp(o, origin) != 0 || size != c->size || memcmp(root, seg_root, 32) != 0)) {
        r = cit_error_set(CIT_E_AUDIT_CHECKPOINT_INVALID, "checkpoint %" PRId64 " names another tree", c->id);
        snprintf(why, cap, "checkpoint %" PRId64 " says %s size %" PRId64 ", the log is %s at that size", c->id, o,
                 size, memcmp(root, seg_root, 32) ? "another root" : origin);
    }
    if (r == 0)
        r = cit__pubkey_from_pem(&pk, c->pem, strlen(c->pem));
    if (r == 0 && (r = note_verify(&n, origin, pk, false, NULL)) < 0)
        snprintf(why, cap, "checkpoint %" PRId64 ": %s", c->id, cit_error_last()->message);
    if (r == 0 && !identity_has_key(s, c->identity, pk)) {
        r = cit_error_set(CIT_E_AUDIT_CHECKPOINT_KEY_UNKNOWN, "checkpoint %" PRId64 " was signed by a key that is not %s's",
                          c->id, c->identity);
        snprintf(why, cap, "checkpoint %" PRId64 " was signed by a key that is not one of %s's versions", c->id,
                 c->identity);
    }
    if (r < 0 && !why[0])
        snprintf(why, cap, "checkpoint %" PRId64 ": %s", c->id, cit_error_last()->message);
    EVP_PKEY_free(pk);
    note_free(&n);
    return r;
}

int cit__audit_checkpoint_check(cit_store *s, int64_t id, int64_t *size, uint8_t root[32], char **identity,
                                char *why, size_t cap) {
    cp_row *cps = NULL;
    size_t n = 0;
    char origin[128];
    int r = cit__audit_origin(s, origin, sizeof origin);
    if (r == 0)
        r = cp_load(s, &cps, &n);
    const cp_row *c = NULL;
    for (size_t i = 0; r == 0 && i < n; i++)
        if (cps[i].id == id)
            c = &cps[i];
    if (r == 0 && !c) {
        r = cit_error_set(CIT_E_AUDIT_NOT_SIGNED, "no audit checkpoint %" PRId64, id);
        snprintf(why, cap, "no checkpoint %" PRId64, id);
    }
    if (r == 0) {
        why[0] = 0;
        r = cp_check(s, origin, c, c->root, why, cap);
    }
    if (r == 0) {
        *size = c->size;
        memcpy(root, c->root, 32);
        *identity = strdup(c->identity);
    }
    cp_free(cps, n);
    return r;
}

static int witness_key(cit_store *s, const char *name, EVP_PKEY **pk) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "SELECT public_pem FROM audit_witnesses WHERE name = ?");
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *pem = (const char *)sqlite3_column_text(st, 0);
        r = cit__pubkey_from_pem(pk, pem, strlen(pem));
    } else {
        r = cit_error_set(CIT_E_AUDIT_WITNESS_UNKNOWN, "unknown witness: %s", name);
        cit_error_context("witness", "%s", name);
    }
    sqlite3_finalize(st);
    return r;
}

/* Verifies a cosignature line over body by the registered witness name. */
static int receipt_check(cit_store *s, const char *name, const char *line, const char *body, int64_t *t) {
    EVP_PKEY *pk = NULL;
    int r = witness_key(s, name, &pk);
    if (r < 0)
        return r;
    _cleanup_free_ char *text = NULL;
    note n;
    if (asprintf(&text, "%s\n%s", body, line) < 0)
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    if (r == 0 && (r = note_parse(text, &n)) == 0) {
        r = note_verify(&n, name, pk, true, t);
        note_free(&n);
    }
    EVP_PKEY_free(pk);
    if (r == CIT_E_AUDIT_CHECKPOINT_INVALID || r == CIT_E_AUDIT_CHECKPOINT_KEY_UNKNOWN) {
        cit_error_set(CIT_E_AUDIT_WITNESS_INVALID, "the co-signature by witness %s does not verify", name);
        cit_error_context("witness", "%s", name);
        r = CIT_E_AUDIT_WITNESS_INVALID;
    }
    return r;
}

static json_t *check_json(const char *name, int code, const char *detail) {
    json_t *c = json_pack("{s:s,s:s,s:s}", "check", name, "status", code ? "fail" : "pass", "detail", detail);
    if (code) {
        char buf[16];
        cit_code_format(buf, sizeof buf, code);
        json_object_set_new(c, "code", json_string(buf));
    }
    return c;
}

static int mth_cb(void *env, uint64_t start, uint64_t n, uint8_t out[32]) { return cit__audit_mth(env, start, n, out); }

_public_ int cit_audit_verify(json_t **out, cit_ctx *ctx, int witnesses) {
    return cit_audit_verify_pinned(out, ctx, witnesses, NULL);
}

_public_ int cit_audit_verify_pinned(json_t **out, cit_ctx *ctx, int witnesses, const char *log_key_pem) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    EVP_PKEY *pinned = NULL;
    if (log_key_pem) {
        uint8_t *kb = NULL;
        size_t kl = 0;
        int e = cit_read_file(log_key_pem, 64 * 1024, &kb, &kl);
        if (e < 0) {
            cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", log_key_pem, strerror(-e));
            return CIT_E_INPUT_READ;
        }
        r = cit__pubkey_from_pem(&pinned, (const char *)kb, kl);
        free(kb);
        if (r < 0)
            return r;
    }
    json_t *report = json_pack("{s:[]}", "checks");
    json_t *checks = json_object_get(report, "checks");
    int code = 0;
    int64_t first_bad = 0;
    char detail[256] = "";
    uint64_t t0 = cit_now_usec();
    cit_audit_root *eroots = NULL; /* roots recomputed from the entries, at each segment's end */
    size_t neroots = 0;
    if ((r = cit__audit_walk(ctx, s, report, &code, &first_bad, detail, sizeof detail, &eroots, &neroots)) < 0)
        goto fail;
    char origin[128];
    cp_row *cps = NULL;
    size_t ncp = 0;
    if ((r = cit__audit_origin(s, origin, sizeof origin)) < 0 || (r = cp_load(s, &cps, &ncp)) < 0)
        goto fail;
    /* every checkpoint: its signature, its root against the recomputed tree, and consistency
     * with the one before (an RFC 9162 proof made from the store and verified) */
    int cpcode = 0;
    char why[256] = "";
    for (size_t i = 0; i < ncp && !cpcode; i++) {
        uint8_t now_root[32];
        int64_t count = json_integer_value(json_object_get(report, "entries"));
        if (cps[i].size > count) {
            cpcode = CIT_E_AUDIT_TRUNCATED;
            snprintf(why, sizeof why, "checkpoint %" PRId64 " covers %" PRId64 " entries; the log has %" PRId64,
                     cps[i].id, cps[i].size, count);
            first_bad = first_bad ? first_bad : count + 1;
            break;
        }
        /* the root from the entries themselves (never the cached subtree hashes) */
        bool have = false;
        for (size_t k = 0; k < neroots && !have; k++)
            if (eroots[k].valid && eroots[k].size == cps[i].size) {
                memcpy(now_root, eroots[k].root, 32);
                have = true;
            }
        if (!have && (r = cit__audit_mth(s, 0, (uint64_t)cps[i].size, now_root)) < 0) {
            cpcode = r;
            snprintf(why, sizeof why, "%s", cit_error_last()->message);
            r = 0;
            break;
        }
        int c = cp_check(s, origin, &cps[i], cps[i].root, why, sizeof why);
        if (c == 0 && pinned) {
            EVP_PKEY *ck = NULL;
            bool same = cit__pubkey_from_pem(&ck, cps[i].pem, strlen(cps[i].pem)) == 0 && EVP_PKEY_eq(ck, pinned) == 1;
            EVP_PKEY_free(ck);
            if (!same) {
                c = CIT_E_AUDIT_CHECKPOINT_KEY_UNKNOWN;
                snprintf(why, sizeof why, "checkpoint %" PRId64 " was not signed by the pinned log key (--log-key)",
                         cps[i].id);
            }
        }
        if (c < 0) {
            cpcode = c;
            break;
        }
        if (memcmp(now_root, cps[i].root, 32) != 0) {
            cpcode = CIT_E_AUDIT_ROOT_MISMATCH;
            snprintf(why, sizeof why, "the entries under checkpoint %" PRId64 " (tree size %" PRId64 ") changed",
                     cps[i].id, cps[i].size);
            /* the checkpoints before it still match: the change is after the previous one */
            first_bad = first_bad ? first_bad : (i > 0 ? cps[i - 1].size : 0) + 1;
            break;
        }
        if (i > 0 && cps[i - 1].size <= cps[i].size && !code) {
            /* both roots are the entries' own; the RFC 9162 proof between them (made from the
             * cached hashes, which the walk found consistent) is what a witness would check */
            uint8_t proof[CIT_MERKLE_MAX_PROOF][32];
            size_t pn = 0;
            if (cit__merkle_consistency_proof(mth_cb, s, (uint64_t)cps[i - 1].size, (uint64_t)cps[i].size, proof,
                                              &pn) < 0 ||
                !cit__merkle_verify_consistency((uint64_t)cps[i - 1].size, (uint64_t)cps[i].size, cps[i - 1].root,
                                                cps[i].root, (const uint8_t(*)[32])proof, pn)) {
                cpcode = CIT_E_AUDIT_INCONSISTENT;
                snprintf(why, sizeof why, "checkpoint %" PRId64 " is not consistent with checkpoint %" PRId64,
                         cps[i].id, cps[i - 1].id);
                break;
            }
        } else if (i > 0 && cps[i - 1].size > cps[i].size) {
            cpcode = CIT_E_AUDIT_INCONSISTENT;
            snprintf(why, sizeof why, "checkpoint %" PRId64 " has a smaller tree than checkpoint %" PRId64, cps[i].id,
                     cps[i - 1].id);
        }
    }
    cit_error_clear();
    int64_t count = json_integer_value(json_object_get(report, "entries"));
    if (!cpcode && ncp == 0) {
        json_array_append_new(checks, check_json("checkpoints", CIT_E_AUDIT_NOT_SIGNED, "no signed checkpoint yet"));
        cpcode = CIT_E_AUDIT_NOT_SIGNED;
        snprintf(why, sizeof why, "the log has no signed checkpoint");
    } else {
        char ok[160];
        snprintf(ok, sizeof ok, "%zu checkpoints signed by their identities, each consistent with the one before; "
                                "%" PRId64 " entries after the latest", ncp, ncp ? count - cps[ncp - 1].size : count);
        json_array_append_new(checks, check_json("checkpoints", cpcode, cpcode ? why : ok));
    }
    /* witnesses on the latest checkpoint */
    int valid = 0;
    json_t *wl = json_array();
    if (ncp) {
        sqlite3_stmt *st = NULL;
        _cleanup_free_ char *body = checkpoint_body(origin, cps[ncp - 1].size, cps[ncp - 1].root);
        if (cit__store_prepare(s, &st, "SELECT witness, line FROM audit_receipts WHERE checkpoint_id = ?") == 0) {
            sqlite3_bind_int64(st, 1, cps[ncp - 1].id);
            while (sqlite3_step(st) == SQLITE_ROW) {
                const char *w = (const char *)sqlite3_column_text(st, 0);
                int64_t t = 0;
                int c = body ? receipt_check(s, w, (const char *)sqlite3_column_text(st, 1), body, &t) : -1;
                valid += c == 0;
                json_array_append_new(wl, json_pack("{s:s,s:b}", "witness", w, "valid", c == 0));
            }
            sqlite3_finalize(st);
        }
        cit_error_clear();
    }
    char wdetail[128];
    snprintf(wdetail, sizeof wdetail, "%d valid co-signatures on the latest checkpoint (%d required)", valid, witnesses);
    json_array_append_new(checks, check_json("witnesses", witnesses > valid ? CIT_E_AUDIT_WITNESSES_TOO_FEW : 0, wdetail));
    json_object_set_new(report, "receipts", wl);
    if (!code && cpcode) {
        code = cpcode;
        snprintf(detail, sizeof detail, "%s", why);
    }
    if (!code && witnesses > valid) {
        code = CIT_E_AUDIT_WITNESSES_TOO_FEW;
        snprintf(detail, sizeof detail, "%s", wdetail);
    }
    json_object_set_new(report, "checkpoints", json_integer((json_int_t)ncp));
    if (ncp)
        json_object_set_new(report, "latest_checkpoint",
                            json_pack("{s:I,s:I,s:s}", "checkpoint", (json_int_t)cps[ncp - 1].id, "tree_size",
                                      (json_int_t)cps[ncp - 1].size, "identity", cps[ncp - 1].identity));
    cp_free(cps, ncp);
    free(eroots);
    EVP_PKEY_free(pinned);
    /* the verdict first, then the evidence */
    json_t *res = json_pack("{s:b}", "valid", code == 0);
    if (code) {
        char cbuf[16];
        cit_code_format(cbuf, sizeof cbuf, code);
        json_object_set_new(res, "code", json_string(cbuf));
        json_object_set_new(res, "first_bad_seqno", json_integer(first_bad));
        json_object_set_new(res, "detail", json_string(detail));
    }
    static const char *const order[] = {"entries", "checkpoints", "latest_checkpoint", "checks", "anti_rollback",
                                        "receipts"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (json_object_get(report, order[i]))
            json_object_set(res, order[i], json_object_get(report, order[i]));
    json_decref(report);
    report = res;
    json_object_set_new(report, "elapsed_ms", json_real((double)(cit_now_usec() - t0) / 1000.0));
    *out = report;
    if (code) {
        cit_error_set(code, "the audit log does not verify: %s", detail);
        if (first_bad)
            cit_error_context("first_bad_seqno", "%" PRId64, first_bad);
        return code;
    }
    return 0;
fail:
    free(eroots);
    EVP_PKEY_free(pinned);
    json_decref(report);
    return r;
}

/* ---- publication and witnesses ---- */

static char *b64_32(const uint8_t h[32]) {
    char *b = NULL;
    return cit__base64_encode(&b, h, 32) == 0 ? b : NULL;
}

_public_ int cit_audit_publish(json_t **out, cit_ctx *ctx, int64_t from, const char *output) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    cp_row *cps = NULL;
    size_t ncp = 0;
    char origin[128];
    if ((r = cp_load(s, &cps, &ncp)) < 0 || (r = cit__audit_origin(s, origin, sizeof origin)) < 0) {
        cp_free(cps, ncp);
        return r;
    }
    if (!ncp) {
        cp_free(cps, ncp);
        return cit_error_set(CIT_E_AUDIT_NOT_SIGNED, "the audit log has no signed checkpoint to publish");
    }
    const cp_row *last = &cps[ncp - 1];
    json_t *proofs = json_array();
    /* proofs from every earlier tree size (or just from `from`) to the latest */
    for (size_t i = 0; i + 1 <= ncp && r == 0; i++) {
        int64_t old = from ? from : cps[i].size;
        if (old >= last->size || (from && i > 0))
            continue;
        uint8_t proof[CIT_MERKLE_MAX_PROOF][32], oroot[32];
        size_t pn = 0;
        if ((r = cit__audit_mth(s, 0, (uint64_t)old, oroot)) < 0 ||
            (r = cit__merkle_consistency_proof(mth_cb, s, (uint64_t)old, (uint64_t)last->size, proof, &pn)) < 0)
            break;
        json_t *pa = json_array();
        for (size_t k = 0; k < pn; k++) {
            char *b = b64_32(proof[k]);
            json_array_append_new(pa, json_string(b ? b : ""));
            free(b);
        }
        char *ob = b64_32(oroot);
        json_array_append_new(proofs, json_pack("{s:I,s:s,s:o}", "old_size", (json_int_t)old, "old_root", ob ? ob : "",
                                                "consistency", pa));
        free(ob);
    }
    char *rb = b64_32(last->root);
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:o}", "format", "citadel-audit-publish/v1", "origin", origin,
                          "tree_size", (json_int_t)last->size, "root", rb ? rb : "", "checkpoint", last->note,
                          "log_public_key_pem", last->pem, "proofs", proofs);
    free(rb);
    cp_free(cps, ncp);
    if (r < 0) {
        json_decref(j);
        return r;
    }
    if (output) {
        char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        int e = text ? cit_write_file_atomic(output, (const uint8_t *)text, strlen(text), 0644, 0) : -ENOMEM;
        free(text);
        if (e < 0) {
            json_decref(j);
            cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-e));
            return CIT_E_OUTPUT_WRITE;
        }
        json_object_set_new(j, "output", json_string(output));
    }
    *out = j;
    return 0;
}

static int read_json_file(const char *path, const char *what, json_t **out) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int e = cit_read_file(path, 4 * 1024 * 1024, &buf, &len);
    if (e < 0) {
        cit_error_set(e == -EFBIG ? CIT_E_INPUT_TOO_LARGE : CIT_E_INPUT_READ, "cannot read %s %s: %s", what, path,
                      strerror(-e));
        return e == -EFBIG ? CIT_E_INPUT_TOO_LARGE : CIT_E_INPUT_READ;
    }
    *out = json_loadb((const char *)buf, len, 0, NULL);
    free(buf);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        cit_error_set(CIT_E_INPUT_INVALID, "%s is not %s (JSON)", path, what);
        return CIT_E_INPUT_INVALID;
    }
    return 0;
}

static int b64_hash(const json_t *v, uint8_t out[32]) {
    const char *s = json_string_value(v);
    uint8_t *b = NULL;
    size_t n = 0;
    if (!s || cit__base64_decode(&b, &n, s) < 0 || n != 32) {
        free(b);
        return cit_error_set(CIT_E_INPUT_INVALID, "a hash in the publish file is not 32 bytes of base64");
    }
    memcpy(out, b, 32);
    free(b);
    return 0;
}

_public_ int cit_audit_witness_cosign(json_t **out, cit_ctx *ctx, const char *identity, const char *input,
                                      const char *log_key, const char *output) {
    cit_error_clear();
    cit_store *s;
    static const char *const ops[] = {"TPM2_Sign (ECDSA P-256, SHA-256)", NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "check a published checkpoint and co-sign it", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    json_t *pub = NULL;
    if ((r = read_json_file(input, "a publish file (`audit publish`)", &pub)) < 0)
        return r;
    const char *origin = json_string_value(json_object_get(pub, "origin"));
    const char *cp_text = json_string_value(json_object_get(pub, "checkpoint"));
    note n = {0};
    EVP_PKEY *pk = NULL;
    signer g = {0};
    char *pinned = NULL, *line = NULL;
    int64_t old_size = 0, size = 0;
    uint8_t old_root[32], root[32];
    char body_origin[256];
    if (!origin || !cp_text) {
        r = cit_error_set(CIT_E_INPUT_INVALID, "%s has no origin or checkpoint", input);
        goto done;
    }
    /* the log key: pinned at the first co-signature for this origin */
    sqlite3_stmt *st = NULL;
    if ((r = cit__store_prepare(s, &st, "SELECT log_public_pem, tree_size, root FROM audit_witness_state WHERE origin = ?")) < 0)
        goto done;
    sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        pinned = strdup((const char *)sqlite3_column_text(st, 0));
        old_size = sqlite3_column_int64(st, 1);
        blob32(st, 2, old_root);
    }
    sqlite3_finalize(st);
    if (!pinned && !log_key) {
        r = cit_error_set(CIT_E_AUDIT_CHECKPOINT_KEY_UNKNOWN, "this witness has not seen the log %s before", origin);
        cit_error_step("pin the log's public key the first time: --log-key log.pem (obtained out of band)");
        goto done;
    }
    if (log_key) {
        uint8_t *kb = NULL;
        size_t kl = 0;
        int e = cit_read_file(log_key, 64 * 1024, &kb, &kl);
        if (e < 0) {
            r = cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", log_key, strerror(-e));
            goto done;
        }
        EVP_PKEY *given = NULL;
        r = cit__pubkey_from_pem(&given, (const char *)kb, kl);
        free(kb);
        if (r < 0)
            goto done;
        if (pinned) {
            EVP_PKEY *pp = NULL;
            bool same = cit__pubkey_from_pem(&pp, pinned, strlen(pinned)) == 0 && EVP_PKEY_eq(pp, given) == 1;
            EVP_PKEY_free(pp);
            if (!same) {
                EVP_PKEY_free(given);
                r = cit_error_set(CIT_E_AUDIT_CHECKPOINT_KEY_UNKNOWN, "--log-key is not the key pinned for %s", origin);
                cit_error_cause("a log's key changes only with a new origin; a different key may be an impostor");
                goto done;
            }
        } else if ((r = cit__pubkey_pem(&pinned, given)) < 0) {
            EVP_PKEY_free(given);
            goto done;
        }
        EVP_PKEY_free(given);
    }
    if ((r = cit__pubkey_from_pem(&pk, pinned, strlen(pinned))) < 0 || (r = note_parse(cp_text, &n)) < 0 ||
        (r = note_verify(&n, origin, pk, false, NULL)) < 0 ||
        (r = body_parse(n.body, body_origin, sizeof body_origin, &size, root)) < 0)
        goto done;
    if (strcmp(body_origin, origin) != 0) {
        r = cit_error_set(CIT_E_AUDIT_CHECKPOINT_INVALID, "the checkpoint names origin %s, the file %s", body_origin,
                          origin);
        goto done;
    }
    /* consistency with what this witness saw before */
    bool consistent = old_size == 0;
    if (old_size > size) {
        r = cit_error_set(CIT_E_AUDIT_INCONSISTENT, "the log shrank: %" PRId64 " entries after %" PRId64 " were seen",
                          size, old_size);
        goto done;
    } else if (old_size == size)
        consistent = memcmp(old_root, root, 32) == 0;
    else if (old_size) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(pub, "proofs"), i, p) {
            if (json_integer_value(json_object_get(p, "old_size")) != old_size)
                continue;
            json_t *arr = json_object_get(p, "consistency");
            uint8_t proof[CIT_MERKLE_MAX_PROOF][32];
            size_t pn = json_array_size(arr);
            if (pn > CIT_MERKLE_MAX_PROOF)
                break;
            size_t k;
            json_t *h;
            bool ok = true;
            json_array_foreach(arr, k, h) ok = ok && b64_hash(h, proof[k]) == 0;
            consistent = ok && cit__merkle_verify_consistency((uint64_t)old_size, (uint64_t)size, old_root, root,
                                                              (const uint8_t(*)[32])proof, pn);
            break;
        }
        cit_error_clear();
    }
    if (!consistent) {
        r = cit_error_set(CIT_E_AUDIT_INCONSISTENT, "the checkpoint at %" PRId64 " is not consistent with the one at %" PRId64
                          " this witness co-signed", size, old_size);
        cit_error_cause("the publish file has no valid consistency proof from tree size %" PRId64, old_size);
        cit_error_step("publish again with `citadel tpm audit publish --from %" PRId64 "`; if that fails too, the log forked",
                       old_size);
        goto done;
    }
    if ((r = signer_open(ctx, identity, &g)) < 0)
        goto done;
    int64_t t = (int64_t)time(NULL);
    if ((r = sign_line(ctx, &g, g.o.path, n.body, true, t, &line)) < 0)
        goto done;
    /* remember the tree this witness vouched for */
    if ((r = cit__store_begin(s)) == 0) {
        r = cit__store_prepare(s, &st, "INSERT OR REPLACE INTO audit_witness_state (origin, log_public_pem, tree_size, root, "
                                       "updated_at) VALUES (?, ?, ?, ?, ?)");
        if (r == 0) {
            sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, pinned, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, size);
            sqlite3_bind_blob(st, 4, root, 32, SQLITE_STATIC);
            sqlite3_bind_int64(st, 5, t);
            if (sqlite3_step(st) != SQLITE_DONE)
                r = cit__store_error(s, "cannot record the witnessed tree");
            sqlite3_finalize(st);
        }
        if (r == 0)
            r = cit__store_commit(s);
        if (r < 0)
            cit__store_rollback(s);
    }
    if (r < 0)
        goto done;
    char *rb = b64_32(root);
    json_t *receipt = json_pack("{s:s,s:s,s:I,s:s,s:s,s:I,s:s,s:s}", "format", "citadel-audit-receipt/v1", "origin",
                                origin, "tree_size", (json_int_t)size, "root", rb ? rb : "", "witness", g.o.path,
                                "timestamp", (json_int_t)t, "cosignature", line, "witness_public_key_pem", g.pem);
    free(rb);
    if (output) {
        char *text = json_dumps(receipt, JSON_INDENT(2) | JSON_SORT_KEYS);
        int e = text ? cit_write_file_atomic(output, (const uint8_t *)text, strlen(text), 0644, 0) : -ENOMEM;
        free(text);
        if (e < 0) {
            json_decref(receipt);
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", output, strerror(-e));
            goto done;
        }
        json_object_set_new(receipt, "output", json_string(output));
    }
    json_object_set_new(receipt, "previous_tree_size", json_integer(old_size));
    *out = receipt;
done:
    free(line);
    free(pinned);
    signer_clear(&g);
    EVP_PKEY_free(pk);
    note_free(&n);
    json_decref(pub);
    return r;
}

_public_ int cit_audit_witness_register(json_t **out, cit_ctx *ctx, const char *name, const char *key_file) {
    cit_error_clear();
    if (!name || cit__check_path(name) < 0) {
        cit_error_set(CIT_E_USAGE, "invalid witness name: %s", name ? name : "(none)");
        cit_error_cause("a witness is named like an object path: the name its co-signatures carry");
        return CIT_E_USAGE;
    }
    cit_store *s;
    static const char *const ops[] = {NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "register a witness's public key", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    uint8_t *kb = NULL;
    size_t kl = 0;
    int e = cit_read_file(key_file, 64 * 1024, &kb, &kl);
    if (e < 0) {
        cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", key_file, strerror(-e));
        return CIT_E_INPUT_READ;
    }
    EVP_PKEY *pk = NULL;
    char *pem = NULL;
    r = cit__pubkey_from_pem(&pk, (const char *)kb, kl);
    free(kb);
    if (r == 0 && !is_p256(pk)) {
        r = cit_error_set(CIT_E_ALG_UNSUPPORTED, "witness keys are ECC P-256 public keys");
    }
    if (r == 0)
        r = cit__pubkey_pem(&pem, pk);
    sqlite3_stmt *st = NULL;
    /* one key, one witness: a co-signature's bytes do not depend on the name it is shown under
     * (the key ID is computable by anyone), so a key registered twice would count twice
     * towards `audit verify --witnesses K` */
    if (r == 0 && (r = cit__store_prepare(s, &st, "SELECT name, public_pem FROM audit_witnesses")) == 0) {
        while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
            const char *other = (const char *)sqlite3_column_text(st, 1);
            EVP_PKEY *ok = NULL;
            if (other && cit__pubkey_from_pem(&ok, other, strlen(other)) == 0 && EVP_PKEY_eq(ok, pk) == 1) {
                r = cit_error_set(CIT_E_OBJECT_EXISTS, "this key is already registered as witness %s",
                                  (const char *)sqlite3_column_text(st, 0));
                cit_error_cause("one witness key counts once towards `audit verify --witnesses`");
            }
            EVP_PKEY_free(ok);
        }
        sqlite3_finalize(st);
        st = NULL;
        if (r == 0)
            cit_error_clear();
    }
    EVP_PKEY_free(pk);
    if (r == 0 && (r = cit__store_begin(s)) == 0) {
        r = cit__store_prepare(s, &st, "INSERT INTO audit_witnesses (name, public_pem, created_at) VALUES (?, ?, ?)");
        if (r == 0) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, pem, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
            int rc = sqlite3_step(st);
            if (rc == SQLITE_CONSTRAINT) {
                r = cit_error_set(CIT_E_OBJECT_EXISTS, "the witness %s is already registered", name);
                cit_error_cause("a witness's key is never replaced: register a new key under a new name");
            } else if (rc != SQLITE_DONE)
                r = cit__store_error(s, "cannot register the witness");
            sqlite3_finalize(st);
        }
        if (r == 0) {
            json_t *d = json_pack("{s:s}", "witness", name);
            r = cit__store_event(s, "audit.witness.add", NULL, 0, "ok", d); /* borrows d */
            json_decref(d);
        }
        if (r == 0)
            r = cit__store_commit(s);
        if (r < 0)
            cit__store_rollback(s);
    }
    if (r == 0)
        *out = json_pack("{s:s,s:s}", "witness", name, "public_key_pem", pem);
    free(pem);
    return r;
}

_public_ int cit_audit_witness_import(json_t **out, cit_ctx *ctx, const char *receipt_file) {
    cit_error_clear();
    cit_store *s;
    static const char *const ops[] = {NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "verify and store a witness receipt", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    json_t *rc = NULL;
    if ((r = read_json_file(receipt_file, "a witness receipt (`audit witness cosign`)", &rc)) < 0)
        return r;
    const char *origin = json_string_value(json_object_get(rc, "origin"));
    const char *witness = json_string_value(json_object_get(rc, "witness"));
    const char *line = json_string_value(json_object_get(rc, "cosignature"));
    json_int_t size = json_integer_value(json_object_get(rc, "tree_size"));
    uint8_t root[32];
    char mine[128], *body = NULL;
    if (!origin || !witness || !line || size <= 0) {
        r = cit_error_set(CIT_E_INPUT_INVALID, "%s is not a witness receipt", receipt_file);
        goto done;
    }
    if ((r = b64_hash(json_object_get(rc, "root"), root)) < 0 || (r = cit__audit_origin(s, mine, sizeof mine)) < 0)
        goto done;
    if (strcmp(origin, mine) != 0) {
        r = cit_error_set(CIT_E_AUDIT_WITNESS_INVALID, "the receipt is for another log (%s)", origin);
        goto done;
    }
    /* the checkpoint it co-signs, by size and root */
    sqlite3_stmt *st = NULL;
    int64_t cp = 0;
    if ((r = cit__store_prepare(s, &st, "SELECT id FROM audit_checkpoints WHERE tree_size = ? AND root = ? ORDER BY id DESC "
                                        "LIMIT 1")) < 0)
        goto done;
    sqlite3_bind_int64(st, 1, size);
    sqlite3_bind_blob(st, 2, root, 32, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        cp = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!cp) {
        r = cit_error_set(CIT_E_AUDIT_WITNESS_INVALID, "the receipt co-signs a tree (size %" PRId64 ") this log never signed",
                          (int64_t)size);
        goto done;
    }
    body = checkpoint_body(origin, size, root);
    int64_t t = 0;
    if ((r = receipt_check(s, witness, line, body, &t)) < 0)
        goto done;
    if ((r = cit__store_begin(s)) == 0) {
        r = cit__store_prepare(s, &st, "INSERT OR REPLACE INTO audit_receipts (checkpoint_id, witness, line, created_at) "
                                       "VALUES (?, ?, ?, ?)");
        if (r == 0) {
            sqlite3_bind_int64(st, 1, cp);
            sqlite3_bind_text(st, 2, witness, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, line, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
            if (sqlite3_step(st) != SQLITE_DONE)
                r = cit__store_error(s, "cannot store the receipt");
            sqlite3_finalize(st);
        }
        if (r == 0)
            r = cit__store_commit(s);
        if (r < 0)
            cit__store_rollback(s);
    }
    if (r == 0)
        *out = json_pack("{s:s,s:I,s:I,s:I}", "witness", witness, "checkpoint", (json_int_t)cp, "tree_size",
                         (json_int_t)size, "timestamp", (json_int_t)t);
done:
    free(body);
    json_decref(rc);
    return r;
}

_public_ int cit_audit_witness_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    json_t *ws = json_array(), *seen = json_array();
    sqlite3_stmt *st = NULL;
    if ((r = cit__store_prepare(s, &st, "SELECT w.name, (SELECT count(*) FROM audit_receipts r WHERE r.witness = w.name), "
                                        "(SELECT max(c.tree_size) FROM audit_receipts r JOIN audit_checkpoints c ON "
                                        "c.id = r.checkpoint_id WHERE r.witness = w.name) FROM audit_witnesses w "
                                        "ORDER BY w.name")) == 0) {
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(ws, json_pack("{s:s,s:I,s:I}", "witness", (const char *)sqlite3_column_text(st, 0),
                                                "receipts", (json_int_t)sqlite3_column_int64(st, 1),
                                                "latest_tree_size", (json_int_t)sqlite3_column_int64(st, 2)));
        sqlite3_finalize(st);
    }
    if (r == 0 && (r = cit__store_prepare(s, &st, "SELECT origin, tree_size, updated_at FROM audit_witness_state ORDER BY origin")) == 0) {
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(seen, json_pack("{s:s,s:I,s:I}", "origin", (const char *)sqlite3_column_text(st, 0),
                                                  "tree_size", (json_int_t)sqlite3_column_int64(st, 1), "at",
                                                  (json_int_t)sqlite3_column_int64(st, 2)));
        sqlite3_finalize(st);
    }
    if (r < 0) {
        json_decref(ws);
        json_decref(seen);
        return r;
    }
    *out = json_pack("{s:o,s:o}", "witnesses", ws, "witnessing", seen);
    return 0;
}
