/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tamper-evident audit log: hash-chained entries in streams, RFC 9162 Merkle segments,
 * inclusion and consistency proofs, and anti-rollback (a head file beside the store and a
 * TPM NV counter). Signed checkpoints and witnesses are in audit_note.c, envelope keys in
 * audit_kek.c. Every byte is described in docs/audit-format.md.
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/merkle.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "crypto/crypto.h"

#define COUNTER_PATH "audit/rollback-counter"
#define HEAD_MAGIC "citadel-audit-head/v1"

/* The writer's view of the head, kept across batches of one context: the last entry and the
 * leaf hashes of the incomplete level-8 block and the level-8 nodes of the incomplete
 * level-16 block, so appends cache subtree hashes without reading entries back. */
struct cit_audit_state {
    int64_t head;
    uint8_t head_hash[32];
    uint8_t leaves[CIT_AUDIT_BLOCK][32];
    uint8_t nodes8[CIT_AUDIT_BLOCK][32];
};

void cit__audit_state_free(cit_ctx *ctx) {
    free(ctx->audit);
    ctx->audit = NULL;
}

void cit__audit_row_clear(cit_audit_row *r) {
    free(r->payload);
    memset(r, 0, sizeof *r);
}

static void copy_text(char *dst, size_t cap, const unsigned char *src) {
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static void blob32(sqlite3_stmt *st, int col, uint8_t out[32]) {
    memset(out, 0, 32);
    if (sqlite3_column_bytes(st, col) == 32)
        memcpy(out, sqlite3_column_blob(st, col), 32);
}

#define ROW_COLUMNS "seqno, at, stream, event, actor, sealed, payload, prev_hash, entry_hash"

static int row_from_stmt(sqlite3_stmt *st, cit_audit_row *r) {
    memset(r, 0, sizeof *r);
    r->seqno = sqlite3_column_int64(st, 0);
    r->at = sqlite3_column_int64(st, 1);
    copy_text(r->stream, sizeof r->stream, sqlite3_column_text(st, 2));
    copy_text(r->event, sizeof r->event, sqlite3_column_text(st, 3));
    copy_text(r->actor, sizeof r->actor, sqlite3_column_text(st, 4));
    r->sealed = sqlite3_column_int(st, 5);
    int n = sqlite3_column_bytes(st, 6);
    r->payload = malloc((size_t)n + 1);
    if (!r->payload)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    if (n)
        memcpy(r->payload, sqlite3_column_blob(st, 6), (size_t)n);
    r->payload[n] = 0;
    r->payload_len = (size_t)n;
    blob32(st, 7, r->prev);
    blob32(st, 8, r->hash);
    return 0;
}

/* The row without copying the payload: r->payload points into the statement's result and is
 * valid until the next step or reset; the row is not cleared (hot loops: leaf ranges and the
 * chain walk, which otherwise spend a malloc, a copy and three snprintf calls per entry). */
static void row_view(sqlite3_stmt *st, cit_audit_row *r) {
    char *dst[3] = {r->stream, r->event, r->actor};
    size_t cap[3] = {sizeof r->stream, sizeof r->event, sizeof r->actor};
    r->seqno = sqlite3_column_int64(st, 0);
    r->at = sqlite3_column_int64(st, 1);
    for (int i = 0; i < 3; i++) {
        const unsigned char *t = sqlite3_column_text(st, 2 + i);
        size_t n = t ? (size_t)sqlite3_column_bytes(st, 2 + i) : 0;
        n = n < cap[i] - 1 ? n : cap[i] - 1;
        if (n)
            memcpy(dst[i], t, n);
        dst[i][n] = 0;
    }
    r->sealed = sqlite3_column_int(st, 5);
    r->payload = (uint8_t *)sqlite3_column_blob(st, 6);
    r->payload_len = r->payload ? (size_t)sqlite3_column_bytes(st, 6) : 0;
    blob32(st, 7, r->prev);
    blob32(st, 8, r->hash);
}

int cit__audit_row_get(cit_store *s, int64_t seqno, cit_audit_row *out) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "SELECT " ROW_COLUMNS " FROM audit_entries WHERE seqno = ?");
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, seqno);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        r = row_from_stmt(st, out);
    else if (rc == SQLITE_DONE) {
        r = cit_error_set(CIT_E_AUDIT_ENTRY_NOT_FOUND, "no audit entry %" PRId64, seqno);
        cit_error_context("seqno", "%" PRId64, seqno);
    } else
        r = cit__store_error(s, "cannot read the audit entry");
    sqlite3_finalize(st);
    return r;
}

/* ---- canonical bytes and hashes ---- */

static uint8_t *put_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_str16(uint8_t *p, const char *s) {
    size_t n = strlen(s);
    *p++ = (uint8_t)(n >> 8);
    *p++ = (uint8_t)n;
    memcpy(p, s, n);
    return p + n;
}

/* The entry bytes into buf (cap at least entry_size()). */
static size_t entry_size(const cit_audit_row *r) {
    return 1 + 8 + 8 + 1 + 2 + strlen(r->stream) + 2 + strlen(r->event) + 2 + strlen(r->actor) + 4 + r->payload_len;
}

static size_t entry_write(const cit_audit_row *r, uint8_t *buf) {
    uint8_t *p = buf;
    *p++ = 1; /* format version */
    p = put_be64(p, (uint64_t)r->seqno);
    p = put_be64(p, (uint64_t)r->at);
    *p++ = r->sealed ? 1 : 0;
    p = put_str16(p, r->stream);
    p = put_str16(p, r->event);
    p = put_str16(p, r->actor);
    cit_put_be32(p, (uint32_t)r->payload_len);
    p += 4;
    if (r->payload_len)
        memcpy(p, r->payload, r->payload_len);
    return (size_t)(p - buf) + r->payload_len;
}

int cit__audit_entry_bytes(const cit_audit_row *r, uint8_t **out, size_t *len) {
    uint8_t *b = malloc(entry_size(r));
    if (!b)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    *len = entry_write(r, b);
    *out = b;
    return 0;
}

/* Leaf hash with a reusable buffer (hot path of appends and verification). */
static int leaf_hash_buf(const cit_audit_row *r, uint8_t **buf, size_t *cap, uint8_t out[32]) {
    size_t need = entry_size(r) + 1;
    if (need > *cap) {
        uint8_t *nb = realloc(*buf, need < 4096 ? 4096 : need);
        if (!nb)
            return cit_error_set(CIT_E_INTERNAL, "out of memory");
        *buf = nb;
        *cap = need < 4096 ? 4096 : need;
    }
    (*buf)[0] = 0x00; /* RFC 9162 leaf prefix */
    size_t n = entry_write(r, *buf + 1);
    const void *p[1] = {*buf};
    size_t l[1] = {n + 1};
    cit__sha256_parts(out, 1, p, l);
    return 0;
}

int cit__audit_leaf_hash(const cit_audit_row *r, uint8_t out[32]) {
    uint8_t *buf = NULL;
    size_t cap = 0;
    int ret = leaf_hash_buf(r, &buf, &cap, out);
    free(buf);
    return ret;
}

void cit__audit_chain_hash(const uint8_t prev[32], const uint8_t leaf[32], uint8_t out[32]) {
    uint8_t b[65];
    b[0] = 0x02; /* chain links: a prefix no Merkle leaf (0x00) or node (0x01) hash uses */
    memcpy(b + 1, prev, 32);
    memcpy(b + 33, leaf, 32);
    const void *p[1] = {b};
    size_t l[1] = {sizeof b};
    cit__sha256_parts(out, 1, p, l);
}

/* ---- streams ---- */

static const struct {
    const char *name, *tier;
} builtin_streams[] = {{"default", "internal"}, {"tpmd", "internal"}, {"measure", "internal"}};

static bool valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > CIT_AUDIT_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
              *p == '/' || *p == ':'))
            return false;
    return true;
}

static int ensure_builtin_streams(cit_store *s) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "INSERT OR IGNORE INTO audit_streams (name, tier, created_at) VALUES (?, ?, ?)");
    for (size_t i = 0; r == 0 && i < ELEMENTSOF(builtin_streams); i++) {
        sqlite3_bind_text(st, 1, builtin_streams[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, builtin_streams[i].tier, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
        if (sqlite3_step(st) != SQLITE_DONE)
            r = cit__store_error(s, "cannot record the built-in audit streams");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return r;
}

/* The stream's tier into tier (16 bytes); CIT_E_AUDIT_STREAM_UNKNOWN when absent. */
static int stream_tier(cit_store *s, const char *name, char *tier) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "SELECT tier FROM audit_streams WHERE name = ?");
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        copy_text(tier, 16, sqlite3_column_text(st, 0));
    else if (rc == SQLITE_DONE) {
        r = cit_error_set(CIT_E_AUDIT_STREAM_UNKNOWN, "unknown audit stream: %s", name);
        cit_error_context("stream", "%s", name);
    } else
        r = cit__store_error(s, "cannot read the audit streams");
    sqlite3_finalize(st);
    return r;
}

_public_ int cit_audit_stream_create(json_t **out, cit_ctx *ctx, const char *name, const char *tier) {
    cit_error_clear();
    if (!name || !valid_name(name)) {
        cit_error_set(CIT_E_USAGE, "invalid audit stream name: %s", name ? name : "(none)");
        cit_error_cause("stream names are 1 to %d characters of a-z, 0-9, '-', '_', '.', '/' and ':'",
                        CIT_AUDIT_NAME_MAX);
        return CIT_E_USAGE;
    }
    if (!tier || (strcmp(tier, "public") != 0 && strcmp(tier, "internal") != 0 && strcmp(tier, "secret") != 0)) {
        cit_error_set(CIT_E_USAGE, "--tier must be public, internal or secret");
        cit_error_cause("public: anyone may read; internal: operators; secret: payloads are encrypted under "
                        "the audit key (`audit key create`)");
        return CIT_E_USAGE;
    }
    cit_store *s;
    static const char *const ops[] = {NULL};
    int r = cit__ctx_store_or_plan(ctx, &s, out, "create an audit stream", ops);
    if (r != 0)
        return r < 0 ? r : 0;
    if ((r = cit__store_begin(s)) < 0)
        return r;
    char have[16];
    r = ensure_builtin_streams(s);
    if (r == 0 && strcmp(tier, "secret") == 0 && (r = cit__audit_kek_require(ctx)) < 0)
        cit_error_cause("a secret-tier stream is usable only once the audit key exists");
    if (r == 0 && stream_tier(s, name, have) == 0) {
        r = cit_error_set(CIT_E_OBJECT_EXISTS, "the audit stream %s already exists (tier %s)", name, have);
        cit_error_context("stream", "%s", name);
        cit_error_step("streams are never deleted or re-tiered: entries already written keep their tier");
    } else if (r == 0) {
        cit_error_clear();
        sqlite3_stmt *st = NULL;
        r = cit__store_prepare(s, &st, "INSERT INTO audit_streams (name, tier, created_at) VALUES (?, ?, ?)");
        if (r == 0) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, tier, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
            if (sqlite3_step(st) != SQLITE_DONE)
                r = cit__store_error(s, "cannot create the audit stream");
            sqlite3_finalize(st);
        }
    }
    if (r == 0) {
        json_t *d = json_pack("{s:s,s:s}", "stream", name, "tier", tier);
        r = cit__store_event(s, "audit.stream.create", NULL, 0, "ok", d); /* borrows d */
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        return r;
    }
    *out = json_pack("{s:s,s:s}", "stream", name, "tier", tier);
    return 0;
}

_public_ int cit_audit_stream_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    json_t *a = json_array();
    for (size_t i = 0; i < ELEMENTSOF(builtin_streams); i++) /* present before their first use */
        json_array_append_new(a, json_pack("{s:s,s:s,s:b,s:I,s:n}", "stream", builtin_streams[i].name, "tier",
                                           builtin_streams[i].tier, "builtin", 1, "entries", (json_int_t)0, "head"));
    sqlite3_stmt *st = NULL;
    r = cit__store_prepare(s, &st,
                           "SELECT s.name, s.tier, (SELECT count(*) FROM audit_entries e WHERE e.stream = s.name), "
                           "(SELECT max(seqno) FROM audit_entries e WHERE e.stream = s.name) "
                           "FROM audit_streams s ORDER BY s.name");
    while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        json_t *item = NULL;
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) if (strcmp(json_string_value(json_object_get(v, "stream")), name) == 0) item = v;
        if (!item) {
            item = json_pack("{s:s,s:b}", "stream", name, "builtin", 0);
            json_array_append_new(a, item);
        }
        json_object_set_new(item, "tier", json_string((const char *)sqlite3_column_text(st, 1)));
        json_object_set_new(item, "entries", json_integer(sqlite3_column_int64(st, 2)));
        json_object_set_new(item, "head", sqlite3_column_type(st, 3) == SQLITE_NULL
                                              ? json_null()
                                              : json_integer(sqlite3_column_int64(st, 3)));
    }
    sqlite3_finalize(st);
    if (r < 0) {
        json_decref(a);
        return r;
    }
    *out = json_pack("{s:o}", "streams", a);
    return 0;
}

/* ---- the head file (anti-rollback, beside the store) ---- */

typedef struct head_rec {
    bool present;
    int64_t seqno;
    uint8_t hash[32];
} head_rec;

typedef struct head_file {
    bool exists;
    head_rec committed, pending;
} head_file;

static char *head_path(cit_store *s) {
    size_t n = strlen(s->path) + sizeof ".audit-head";
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s.audit-head", s->path);
    return p;
}

static bool in_memory(cit_store *s) { return !s->path || strcmp(s->path, ":memory:") == 0; }

static int parse_rec(const char *line, const char *tag, head_rec *rec) {
    size_t tl = strlen(tag);
    if (strncmp(line, tag, tl) != 0 || line[tl] != ' ')
        return -1;
    char hex[65];
    long long seq;
    if (sscanf(line + tl + 1, "%lld %64s", &seq, hex) != 2 || seq < 0 || strlen(hex) != 64)
        return -1;
    uint8_t *h = NULL;
    size_t hl = 0;
    if (cit_hex_decode(&h, &hl, hex) < 0 || hl != 32) {
        free(h);
        return -1;
    }
    memcpy(rec->hash, h, 32);
    free(h);
    rec->seqno = seq;
    rec->present = true;
    return 0;
}

static int head_read(cit_store *s, head_file *hf) {
    memset(hf, 0, sizeof *hf);
    if (in_memory(s))
        return 0;
    _cleanup_free_ char *path = head_path(s);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!path)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    int e = cit_read_file(path, 4096, &buf, &len);
    if (e == -ENOENT)
        return 0;
    if (e < 0) {
        cit_error_set(CIT_E_AUDIT_HEAD_FILE, "cannot read the audit head file %s: %s", path, strerror(-e));
        cit_error_context("file", "%s", path);
        return CIT_E_AUDIT_HEAD_FILE;
    }
    hf->exists = true;
    char *save = NULL, *line = strtok_r((char *)buf, "\n", &save);
    int r = 0;
    if (!line || strcmp(line, HEAD_MAGIC) != 0)
        r = -1;
    while (r == 0 && (line = strtok_r(NULL, "\n", &save))) {
        if (strncmp(line, "committed ", 10) == 0)
            r = parse_rec(line, "committed", &hf->committed);
        else if (strncmp(line, "pending ", 8) == 0)
            r = parse_rec(line, "pending", &hf->pending);
        else
            r = -1;
    }
    free(buf);
    if (r < 0 || !hf->committed.present) {
        cit_error_set(CIT_E_AUDIT_HEAD_FILE, "the audit head file %s is damaged", path);
        cit_error_context("file", "%s", path);
        return CIT_E_AUDIT_HEAD_FILE;
    }
    return 0;
}

static int head_write(cit_store *s, const head_rec *committed, const head_rec *pending, bool durable) {
    if (in_memory(s))
        return 0;
    _cleanup_free_ char *path = head_path(s);
    if (!path)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    char buf[512];
    int n = snprintf(buf, sizeof buf, HEAD_MAGIC "\n");
    const head_rec *recs[2] = {committed, pending};
    const char *tags[2] = {"committed", "pending"};
    for (int i = 0; i < 2; i++) {
        if (!recs[i] || !recs[i]->present)
            continue;
        _cleanup_free_ char *hex = cit_hex_encode(recs[i]->hash, 32);
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s %" PRId64 " %s\n", tags[i], recs[i]->seqno, hex ? hex : "");
    }
    /* STORE.audit-head.swap keeps the previous head file: a new file renamed over it each time cost
     * an inode allocation and the old inode's eviction, twice per append, half of the CPU of tpmd's
     * group commits. Every writer holds the head lock, so the swap file has one writer at a time. */
    int e = cit_write_file_swap(path, (const uint8_t *)buf, (size_t)n, 0600, durable ? CIT_WRITE_DURABLE : 0);
    if (e < 0) {
        cit_error_set(CIT_E_AUDIT_HEAD_FILE, "cannot write the audit head file %s: %s", path, strerror(-e));
        cit_error_context("file", "%s", path);
        return CIT_E_AUDIT_HEAD_FILE;
    }
    return 0;
}

/* The head file's writers take an exclusive lock on STORE.audit-head.lock (after the store's
 * write lock, never before), so one append's "committed" write after its COMMIT cannot land
 * after the next append's "pending" write and move the head file backwards. */
static int file_lock(cit_store *s, const char *suffix, int *fd) {
    *fd = -1;
    if (in_memory(s))
        return 0;
    size_t n = strlen(s->path) + strlen(suffix) + 1;
    _cleanup_free_ char *p = malloc(n);
    if (!p)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    snprintf(p, n, "%s%s", s->path, suffix);
    int f = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0 || flock(f, LOCK_EX) < 0) {
        int e = errno;
        if (f >= 0)
            close(f);
        cit_error_set(CIT_E_AUDIT_HEAD_FILE, "cannot lock %s: %s", p, strerror(e));
        return CIT_E_AUDIT_HEAD_FILE;
    }
    *fd = f;
    return 0;
}

static int head_lock(cit_store *s, int *fd) { return file_lock(s, ".audit-head.lock", fd); }

static void head_unlock(int fd) {
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* ---- reading the head and the tree ---- */

/* The last entry (seqno 0 and a zero hash when empty). */
static int db_head(cit_store *s, int64_t *seqno, uint8_t hash[32]) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "SELECT seqno, entry_hash FROM audit_entries ORDER BY seqno DESC LIMIT 1");
    if (r < 0)
        return r;
    *seqno = 0;
    memset(hash, 0, 32);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *seqno = sqlite3_column_int64(st, 0);
        blob32(st, 1, hash);
    } else if (rc != SQLITE_DONE)
        r = cit__store_error(s, "cannot read the audit head");
    sqlite3_finalize(st);
    return r;
}

int cit__audit_size(cit_store *s, int64_t *size) {
    uint8_t h[32];
    return db_head(s, size, h);
}

int cit__audit_origin(cit_store *s, char *out, size_t cap) {
    _cleanup_free_ char *id = NULL;
    int r = cit__store_meta_get(s, "workspace_id", &id);
    if (r < 0)
        return r;
    snprintf(out, cap, "citadel.tpm/audit/%.32s", id && *id ? id : "unnamed");
    return 0;
}

/* Prepares sql into *st once; later calls reset it for reuse. st NULL: *out is the caller's to
 * finalize (one-off use). */
static int stmt_get(cit_store *s, sqlite3_stmt **cache, sqlite3_stmt **out, const char *sql) {
    if (cache && *cache) {
        sqlite3_reset(*cache);
        sqlite3_clear_bindings(*cache);
        *out = *cache;
        return 0;
    }
    int r = cit__store_prepare(s, out, sql);
    if (r == 0 && cache)
        *cache = *out;
    return r;
}

static void stmt_put(sqlite3_stmt **cache, sqlite3_stmt *st) {
    if (cache)
        sqlite3_reset(st);
    else
        sqlite3_finalize(st);
}

/* Leaf hashes of entries [first, first + n) (seqnos) into out. exact: fewer entries than n is
 * CIT_E_AUDIT_ENTRY_MISSING; otherwise *got says how many consecutive ones were there. */
static int leaf_range_got(cit_store *s, sqlite3_stmt **cache, int64_t first, uint64_t n, uint8_t (*out)[32],
                          bool exact, uint64_t *got_out) {
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, cache, &st,
                     "SELECT " ROW_COLUMNS " FROM audit_entries WHERE seqno >= ? AND seqno < ? ORDER BY seqno");
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, first);
    sqlite3_bind_int64(st, 2, first + (int64_t)n);
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t got = 0;
    int rc;
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cit_audit_row row;
        row_view(st, &row);
        if (row.seqno != first + (int64_t)got) {
            if (!exact)
                break;
            r = cit_error_set(CIT_E_AUDIT_ENTRY_MISSING, "audit entry %" PRId64 " is missing", first + (int64_t)got);
            cit_error_context("first_bad_seqno", "%" PRId64, first + (int64_t)got);
        } else
            r = leaf_hash_buf(&row, &buf, &cap, out[got++]);
    }
    if (r == 0 && exact && got != n) {
        r = cit_error_set(CIT_E_AUDIT_ENTRY_MISSING, "audit entry %" PRId64 " is missing", first + (int64_t)got);
        cit_error_context("first_bad_seqno", "%" PRId64, first + (int64_t)got);
    }
    if (got_out)
        *got_out = got;
    free(buf);
    stmt_put(cache, st);
    return r;
}

static int leaf_range(cit_store *s, int64_t first, uint64_t n, uint8_t (*out)[32]) {
    return leaf_range_got(s, NULL, first, n, out, true, NULL);
}

static int node_get_st(cit_store *s, sqlite3_stmt **cache, int level, uint64_t idx, uint8_t out[32], bool *found) {
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, cache, &st, "SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?");
    if (r < 0)
        return r;
    sqlite3_bind_int(st, 1, level);
    sqlite3_bind_int64(st, 2, (int64_t)idx);
    *found = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32;
    if (*found)
        memcpy(out, sqlite3_column_blob(st, 0), 32);
    stmt_put(cache, st);
    return 0;
}

static int node_get(cit_store *s, int level, uint64_t idx, uint8_t out[32], bool *found) {
    return node_get_st(s, NULL, level, idx, out, found);
}

/* The nodes of one level (4 or 8), indices [first, first + n), in one query (a proof needs up to
 * 255 of them; one query each cost more than the hashing); *found false when any is missing. */
static int nodes_range(cit_store *s, sqlite3_stmt **cache, int level, uint64_t first, uint64_t n, uint8_t (*out)[32],
                       bool *found) {
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, cache, &st,
                     "SELECT idx, hash FROM audit_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx");
    if (r < 0)
        return r;
    sqlite3_bind_int(st, 1, level);
    sqlite3_bind_int64(st, 2, (int64_t)first);
    sqlite3_bind_int64(st, 3, (int64_t)(first + n));
    uint64_t got = 0;
    while (got < n && sqlite3_step(st) == SQLITE_ROW && (uint64_t)sqlite3_column_int64(st, 0) == first + got &&
           sqlite3_column_bytes(st, 1) == 32)
        memcpy(out[got++], sqlite3_column_blob(st, 1), 32);
    *found = got == n;
    stmt_put(cache, st);
    return 0;
}

static int node_put_st(cit_store *s, sqlite3_stmt **cache, int level, uint64_t idx, const uint8_t h[32]) {
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, cache, &st, "INSERT OR REPLACE INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)");
    if (r < 0)
        return r;
    sqlite3_bind_int(st, 1, level);
    sqlite3_bind_int64(st, 2, (int64_t)idx);
    sqlite3_bind_blob(st, 3, h, 32, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = cit__store_error(s, "cannot record an audit tree node");
    stmt_put(cache, st);
    return r;
}

static int node_put(cit_store *s, int level, uint64_t idx, const uint8_t h[32]) {
    return node_put_st(s, NULL, level, idx, h);
}

/* What the subtree hashes of one tree or proof share: the statements (prepared once, not once
 * per subtree) and the leaf hashes of the last block read (a proof's path below level 8 and the
 * root's right edge need most of one block each; reading it once replaces eight queries). */
typedef struct mth_env {
    cit_store *s;
    sqlite3_stmt *node, *nodes4, *nodes8, *leaves;
    bool have_groups; /* the store has level-4 nodes (logs written before them do not) */
    int64_t grp;      /* the group or block in leaf[] (-1: none) */
    uint64_t unit;    /* its size: CIT_AUDIT_GROUP or CIT_AUDIT_BLOCK leaves */
    uint64_t nleaf;   /* its leaves that exist */
    uint8_t leaf[CIT_AUDIT_BLOCK][32];
} mth_env;

static mth_env *mth_env_new(cit_store *s) {
    mth_env *e = calloc(1, sizeof *e);
    if (e) {
        e->s = s;
        e->grp = -1;
        uint8_t h[32];
        bool found = false;
        e->have_groups = node_get(s, 4, 0, h, &found) == 0 && found;
    } else
        cit_error_set(CIT_E_INTERNAL, "out of memory");
    return e;
}

static void mth_env_free(mth_env *e) {
    if (!e)
        return;
    sqlite3_finalize(e->node);
    sqlite3_finalize(e->nodes4);
    sqlite3_finalize(e->nodes8);
    sqlite3_finalize(e->leaves);
    free(e);
}

static int mth(mth_env *e, uint64_t start, uint64_t n, uint8_t out[32]) {
    cit_store *s = e->s;
    /* aligned complete subtrees of 2^8 and 2^16 leaves are cached at append time */
    if ((n == 1u << 16 || n == CIT_AUDIT_BLOCK) && start % n == 0) {
        bool found = false;
        int r = node_get_st(s, &e->node, n == CIT_AUDIT_BLOCK ? 8 : 16, start / n, out, &found);
        if (r < 0 || found)
            return r;
    }
    /* whole 16-leaf groups inside one block: the tree over their level-4 nodes */
    if (n >= CIT_AUDIT_GROUP && n <= CIT_AUDIT_BLOCK && start % CIT_AUDIT_GROUP == 0 && n % CIT_AUDIT_GROUP == 0 &&
        start / CIT_AUDIT_BLOCK == (start + n - 1) / CIT_AUDIT_BLOCK) {
        uint8_t nodes[CIT_AUDIT_BLOCK / CIT_AUDIT_GROUP][32];
        bool found = false;
        int r = nodes_range(s, &e->nodes4, 4, start / CIT_AUDIT_GROUP, n / CIT_AUDIT_GROUP, nodes, &found);
        if (r < 0 || found) {
            if (found)
                cit__merkle_root((const uint8_t(*)[32])nodes, n / CIT_AUDIT_GROUP, out);
            return r;
        }
    }
    if (n <= CIT_AUDIT_GROUP || (n <= CIT_AUDIT_BLOCK && !e->have_groups)) {
        /* leaves: read the 16-leaf group (or, in a store without level-4 nodes, the block)
         * once; the pieces of a proof below it come from that read */
        uint64_t unit = n <= CIT_AUDIT_GROUP ? CIT_AUDIT_GROUP : CIT_AUDIT_BLOCK;
        uint64_t grp = start / unit, off = start % unit;
        if (n && off + n <= unit && (e->grp != (int64_t)grp || e->unit != unit)) {
            int r = leaf_range_got(s, &e->leaves, (int64_t)(grp * unit) + 1, unit, e->leaf, false, &e->nleaf);
            e->grp = r == 0 ? (int64_t)grp : -1;
            e->unit = unit;
            if (r < 0)
                return r;
        }
        if (n && e->grp == (int64_t)grp && e->unit == unit && off + n <= e->nleaf) {
            cit__merkle_root((const uint8_t(*)[32])e->leaf + off, n, out);
            return 0;
        }
        uint8_t(*leaves)[32] = malloc(n * 32 + 1);
        if (!leaves)
            return cit_error_set(CIT_E_INTERNAL, "out of memory");
        int r = leaf_range_got(s, &e->leaves, (int64_t)start + 1, n, leaves, true, NULL);
        if (r == 0)
            cit__merkle_root((const uint8_t(*)[32])leaves, n, out);
        free(leaves);
        return r;
    }
    if (n < 1u << 16 && start % CIT_AUDIT_BLOCK == 0 && n % CIT_AUDIT_BLOCK == 0) {
        /* whole blocks under one level-16 node: the tree over their level-8 nodes */
        uint8_t nodes[CIT_AUDIT_BLOCK][32];
        bool found = false;
        int r = nodes_range(s, &e->nodes8, 8, start / CIT_AUDIT_BLOCK, n / CIT_AUDIT_BLOCK, nodes, &found);
        if (r < 0 || found) {
            if (found)
                cit__merkle_root((const uint8_t(*)[32])nodes, n / CIT_AUDIT_BLOCK, out);
            return r;
        }
    }
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    uint8_t a[32], b[32];
    int r = mth(e, start, k, a);
    if (r == 0)
        r = mth(e, start + k, n - k, b);
    if (r == 0)
        cit__merkle_node_hash(a, b, out);
    return r;
}

int cit__audit_mth(cit_store *s, uint64_t start, uint64_t n, uint8_t out[32]) {
    mth_env *e = mth_env_new(s);
    if (!e)
        return CIT_E_INTERNAL;
    int r = mth(e, start, n, out);
    mth_env_free(e);
    return r;
}

static int mth_cb(void *env, uint64_t start, uint64_t n, uint8_t out[32]) { return mth(env, start, n, out); }

/* ---- appends ---- */

/* Loads the writer state from the store (inside the append transaction) and checks the store's
 * head against the head file: a store behind the acknowledged head was rolled back or
 * truncated, one ahead of it holds entries the log never wrote. */
static int state_load(cit_ctx *ctx, cit_store *s) {
    struct cit_audit_state *a = ctx->audit;
    int64_t head;
    uint8_t hash[32];
    int r = db_head(s, &head, hash);
    if (r < 0)
        return r;
    if (a && a->head == head && memcmp(a->head_hash, hash, 32) == 0)
        return 0; /* nothing was appended by anyone else */
    head_file hf;
    if ((r = head_read(s, &hf)) < 0)
        return r;
    if (hf.exists) {
        int64_t acked = hf.committed.seqno;
        bool at_committed = head == acked && memcmp(hash, hf.committed.hash, 32) == 0;
        bool at_pending = hf.pending.present && head == hf.pending.seqno && memcmp(hash, hf.pending.hash, 32) == 0;
        if (!at_committed && !at_pending) {
            if (head < acked) {
                r = cit_error_set(CIT_E_AUDIT_ROLLBACK,
                                  "the audit log ends at %" PRId64 " but %" PRId64 " entries were acknowledged", head,
                                  acked);
                cit_error_cause("the store was restored from an older copy, or entries were deleted");
            } else if (head > (hf.pending.present && hf.pending.seqno > acked ? hf.pending.seqno : acked)) {
                r = cit_error_set(CIT_E_AUDIT_ENTRY_INSERTED,
                                  "the audit log holds entries after the last one it wrote (%" PRId64 ")", acked);
                cit_error_cause("rows were added to the store directly");
            } else {
                r = cit_error_set(CIT_E_AUDIT_ROLLBACK, "the audit log's head entry %" PRId64
                                                        " is not the one it acknowledged", head);
                cit_error_cause("the store was replaced by another copy, or the head entry was rewritten");
            }
            cit_error_context("store_head", "%" PRId64, head);
            cit_error_context("acknowledged_head", "%" PRId64, acked);
            cit_error_context("first_bad_seqno", "%" PRId64, head < acked ? head + 1 : acked + 1);
            cit_error_step("run `citadel tpm audit chain verify` and `citadel tpm audit rollback` to see what changed");
            cit_error_step("appending is refused until this is resolved: the log would fork");
            return r;
        }
    } else if (head > 0 && !in_memory(s)) {
        r = cit_error_set(CIT_E_AUDIT_HEAD_FILE, "the audit head file is missing, but the log has %" PRId64 " entries",
                          head);
        cit_error_cause("the store was copied or moved without STORE.audit-head, or the file was deleted");
        cit_error_step("if this store is the genuine one, accept its head: `citadel tpm audit rollback --accept`");
        return r;
    }
    if (!a && !(a = ctx->audit = calloc(1, sizeof *a)))
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    a->head = head;
    memcpy(a->head_hash, hash, 32);
    /* the incomplete blocks at the right edge */
    uint64_t n8 = (uint64_t)head % CIT_AUDIT_BLOCK;
    if (n8 && (r = leaf_range(s, head - (int64_t)n8 + 1, n8, a->leaves)) < 0)
        return r;
    uint64_t blocks = (uint64_t)head / CIT_AUDIT_BLOCK, n16 = blocks % CIT_AUDIT_BLOCK;
    bool all = false; /* usually every node is there: one query instead of up to 255 */
    if (n16 && (r = nodes_range(s, NULL, 8, blocks - n16, n16, a->nodes8, &all)) < 0)
        return r;
    for (uint64_t i = 0; i < n16 && r == 0 && !all; i++) {
        bool found = false;
        uint64_t idx = blocks - n16 + i;
        r = node_get(s, 8, idx, a->nodes8[i], &found);
        if (r == 0 && !found && (r = cit__audit_mth(s, idx * CIT_AUDIT_BLOCK, CIT_AUDIT_BLOCK, a->nodes8[i])) == 0)
            r = node_put(s, 8, idx, a->nodes8[i]);
    }
    return r;
}

/* Appends one prepared row inside the transaction; updates the state. */
static int append_row(cit_store *s, struct cit_audit_state *a, sqlite3_stmt *ins, sqlite3_stmt **node_ins,
                      cit_audit_row *row, uint8_t **buf,
                      size_t *cap) {
    uint8_t leaf[32];
    row->seqno = a->head + 1;
    memcpy(row->prev, a->head_hash, 32);
    int r = leaf_hash_buf(row, buf, cap, leaf);
    if (r < 0)
        return r;
    cit__audit_chain_hash(row->prev, leaf, row->hash);
    sqlite3_bind_int64(ins, 1, row->seqno);
    sqlite3_bind_int64(ins, 2, row->at);
    sqlite3_bind_text(ins, 3, row->stream, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 4, row->event, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 5, row->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int(ins, 6, row->sealed);
    sqlite3_bind_blob(ins, 7, row->payload_len ? (const void *)row->payload : "", (int)row->payload_len,
                      SQLITE_STATIC);
    sqlite3_bind_blob(ins, 8, row->prev, 32, SQLITE_STATIC);
    sqlite3_bind_blob(ins, 9, row->hash, 32, SQLITE_STATIC);
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE)
        return cit__store_error(s, "cannot append the audit entry");
    uint64_t li = (uint64_t)row->seqno - 1; /* leaf index */
    memcpy(a->leaves[li % CIT_AUDIT_BLOCK], leaf, 32);
    if ((li + 1) % CIT_AUDIT_GROUP == 0) {
        uint8_t n4[32];
        cit__merkle_root((const uint8_t(*)[32])a->leaves + (li % CIT_AUDIT_BLOCK) + 1 - CIT_AUDIT_GROUP,
                         CIT_AUDIT_GROUP, n4);
        if ((r = node_put_st(s, node_ins, 4, li / CIT_AUDIT_GROUP, n4)) < 0)
            return r;
    }
    if ((li + 1) % CIT_AUDIT_BLOCK == 0) {
        uint64_t b = li / CIT_AUDIT_BLOCK;
        uint8_t *n8 = a->nodes8[b % CIT_AUDIT_BLOCK];
        cit__merkle_root((const uint8_t(*)[32])a->leaves, CIT_AUDIT_BLOCK, n8);
        if ((r = node_put_st(s, node_ins, 8, b, n8)) < 0)
            return r;
        if ((b + 1) % CIT_AUDIT_BLOCK == 0) {
            uint8_t n16[32];
            cit__merkle_root((const uint8_t(*)[32])a->nodes8, CIT_AUDIT_BLOCK, n16);
            if ((r = node_put_st(s, node_ins, 16, b / CIT_AUDIT_BLOCK, n16)) < 0)
                return r;
        }
    }
    a->head = row->seqno;
    memcpy(a->head_hash, row->hash, 32);
    return 0;
}

static int check_record(const cit_audit_record *rec, size_t i) {
    const char *what = NULL;
    if (!rec->event || !valid_name(rec->event))
        what = "event type";
    else if (rec->stream && !valid_name(rec->stream))
        what = "stream name";
    if (what) {
        cit_error_set(CIT_E_USAGE, "invalid audit %s: %s", what,
                      what[0] == 'e' ? (rec->event ? rec->event : "(none)") : rec->stream);
        cit_error_cause("names are 1 to %d characters of a-z, 0-9, '-', '_', '.', '/' and ':'", CIT_AUDIT_NAME_MAX);
        cit_error_context("record", "%zu", i);
        return CIT_E_USAGE;
    }
    if (rec->payload_len > CIT_AUDIT_PAYLOAD_MAX || (rec->payload_len && !rec->payload)) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "the audit payload is %zu bytes; at most %u are allowed",
                      rec->payload_len, CIT_AUDIT_PAYLOAD_MAX);
        cit_error_context("record", "%zu", i);
        cit_error_step("store large artefacts elsewhere and append their digest (for example `measure file`)");
        return CIT_E_INPUT_TOO_LARGE;
    }
    return 0;
}

_public_ int cit_audit_append_batch(cit_ctx *ctx, const cit_audit_record *recs, size_t n, int64_t *first_seqno) {
    cit_error_clear();
    if (n == 0)
        return cit_error_set(CIT_E_USAGE, "nothing to append");
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        r = check_record(&recs[i], i);
    if (r < 0)
        return r;
    cit_store *s;
    if ((r = cit__ctx_store(ctx, &s)) < 0)
        return r;
    if (ctx->plan)
        return cit_error_set(CIT_E_USAGE, "appends have no plan mode in the library; the CLI reports the plan");
    if ((r = cit__store_begin(s)) < 0)
        return r;
    sqlite3_stmt *ins = NULL, *node_ins = NULL;
    uint8_t *buf = NULL, *sealed = NULL;
    size_t cap = 0;
    struct cit_audit_state saved;
    bool have_saved = false;
    r = ensure_builtin_streams(s);
    if (r == 0)
        r = state_load(ctx, s);
    if (r == 0) {
        saved = *ctx->audit; /* restored when the transaction fails */
        have_saved = true;
        r = cit__store_prepare(s, &ins, "INSERT INTO audit_entries (" ROW_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    }
    const char *actor = cit__store_actor(s);
    int64_t now = (int64_t)time(NULL) * 1000000;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
        now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    char last_stream[CIT_AUDIT_NAME_MAX + 1] = "", tier[16] = "";
    int64_t first = ctx->audit ? ctx->audit->head + 1 : 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        cit_audit_row row = {.at = now};
        const char *stream = recs[i].stream ? recs[i].stream : "default";
        if (strcmp(stream, last_stream) != 0) {
            if ((r = stream_tier(s, stream, tier)) < 0)
                break;
            snprintf(last_stream, sizeof last_stream, "%s", stream);
        }
        snprintf(row.stream, sizeof row.stream, "%s", stream);
        snprintf(row.event, sizeof row.event, "%s", recs[i].event);
        snprintf(row.actor, sizeof row.actor, "%s", actor);
        row.payload = (uint8_t *)recs[i].payload;
        row.payload_len = recs[i].payload_len;
        if (strcmp(tier, "secret") == 0) {
            size_t sl = 0;
            free(sealed);
            sealed = NULL;
            r = cit__audit_seal_payload(ctx, s, ctx->audit->head + 1, row.stream, row.event, recs[i].payload,
                                        recs[i].payload_len, &sealed, &sl);
            if (r < 0)
                break;
            row.payload = sealed;
            row.payload_len = sl;
            row.sealed = 1;
        }
        r = append_row(s, ctx->audit, ins, &node_ins, &row, &buf, &cap);
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(node_ins);
    free(buf);
    free(sealed);
    /* the head file names the new head before the commit (pending) and after it (committed):
     * a crash in between leaves a store the head file still accepts. The committed line is the
     * head this batch started from, which state_load found acknowledged (committed or pending):
     * not the file's own committed line, which is one behind when the last writer died between
     * its commit and its committed record; a second crash would then leave a store at neither
     * line, a false rollback. */
    int lock = -1;
    if (r == 0)
        r = head_lock(s, &lock);
    head_rec newh = {.present = true, .seqno = ctx->audit ? ctx->audit->head : 0};
    if (r == 0) {
        memcpy(newh.hash, ctx->audit->head_hash, 32);
        head_rec old = {.present = true, .seqno = saved.head};
        memcpy(old.hash, saved.head_hash, 32);
        r = head_write(s, &old, &newh, true);
    }
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        head_unlock(lock);
        if (have_saved)
            *ctx->audit = saved;
        /* a data key made in this transaction was rolled back with it: kept in the context it
         * would seal later entries under a key recorded nowhere */
        cit__audit_keys_drop(ctx);
        return r;
    }
    /* still under the head file's lock: no later writer's pending record can be overwritten */
    (void)head_write(s, &newh, NULL, false); /* a failure here is caught as "pending" next time */
    head_unlock(lock);
    cit_error_clear();
    if (first_seqno)
        *first_seqno = first;
    return 0;
}

_public_ int cit_audit_append(json_t **out, cit_ctx *ctx, const char *stream, const char *event, const uint8_t *payload,
                              size_t len) {
    cit_audit_record rec = {.stream = stream, .event = event, .payload = payload, .payload_len = len};
    int r = check_record(&rec, 0);
    if (r < 0)
        return r;
    if (ctx->plan) {
        cit_store *s;
        static const char *const ops[] = {NULL};
        if ((r = cit__ctx_store_or_plan(ctx, &s, out, "append an audit entry", ops)) != 0)
            return r < 0 ? r : 0;
    }
    int64_t seq = 0;
    if ((r = cit_audit_append_batch(ctx, &rec, 1, &seq)) < 0)
        return r;
    _cleanup_free_ char *hex = cit_hex_encode(ctx->audit->head_hash, 32);
    *out = json_pack("{s:I,s:s,s:s,s:s}", "seqno", (json_int_t)seq, "stream", stream ? stream : "default", "event",
                     event, "entry_hash", hex ? hex : "");
    return 0;
}

/* ---- reading ---- */

static json_t *row_json(const cit_audit_row *r) {
    char when[40];
    cit_time_rfc3339(when, sizeof when, r->at / 1000000);
    _cleanup_free_ char *prev = cit_hex_encode(r->prev, 32);
    _cleanup_free_ char *hash = cit_hex_encode(r->hash, 32);
    return json_pack("{s:I,s:s,s:I,s:s,s:s,s:s,s:b,s:I,s:s,s:s}", "seqno", (json_int_t)r->seqno, "at", when, "at_us",
                     (json_int_t)r->at, "stream", r->stream, "event", r->event, "actor", r->actor, "sealed", r->sealed,
                     "payload_size", (json_int_t)r->payload_len, "prev_hash", prev ? prev : "", "entry_hash",
                     hash ? hash : "");
}

static void payload_json(json_t *j, const uint8_t *p, size_t len) {
    bool text = true;
    for (size_t i = 0; i < len && text; i++)
        text = p[i] >= 0x20 || p[i] == '\n' || p[i] == '\t' || p[i] == '\r';
    json_t *str = text ? json_stringn((const char *)p, len) : NULL; /* NULL when not UTF-8 */
    if (str) {
        json_object_set_new(j, "payload", str);
        return;
    }
    char *b64 = NULL;
    if (cit__base64_encode(&b64, p, len) == 0)
        json_object_set_new(j, "payload_base64", json_string(b64));
    free(b64);
}

_public_ int cit_audit_show(json_t **out, cit_ctx *ctx, int64_t seqno, bool decrypt) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    cit_audit_row row;
    if ((r = cit__audit_row_get(s, seqno, &row)) < 0) {
        int64_t head = 0;
        if (r == CIT_E_AUDIT_ENTRY_NOT_FOUND && cit__audit_size(s, &head) == 0)
            cit_error_cause("the log holds sequence numbers 1 to %" PRId64, head);
        return r;
    }
    json_t *j = row_json(&row);
    if (!row.sealed)
        payload_json(j, row.payload, row.payload_len);
    else if (decrypt) {
        uint8_t *plain = NULL;
        size_t pl = 0;
        r = cit__audit_open_payload(ctx, s, &row, &plain, &pl);
        if (r == 0) {
            payload_json(j, plain, pl);
            cit_memzero(plain, pl);
            free(plain);
        }
    }
    cit__audit_row_clear(&row);
    if (r < 0) {
        json_decref(j);
        return r;
    }
    *out = j;
    return 0;
}

_public_ int cit_audit_head(json_t **out, cit_ctx *ctx, const char *stream) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    char tier[16] = "";
    if (stream && (r = stream_tier(s, stream, tier)) < 0) {
        bool builtin = false;
        for (size_t i = 0; i < ELEMENTSOF(builtin_streams); i++)
            builtin |= strcmp(builtin_streams[i].name, stream) == 0;
        if (!builtin)
            return r;
        cit_error_clear();
        r = 0;
    }
    int64_t size = 0, seq = 0;
    uint8_t hash[32] = {0};
    if ((r = cit__audit_size(s, &size)) < 0)
        return r;
    sqlite3_stmt *st = NULL;
    r = cit__store_prepare(s, &st, stream ? "SELECT seqno, entry_hash FROM audit_entries WHERE stream = ? "
                                            "ORDER BY seqno DESC LIMIT 1"
                                          : "SELECT seqno, entry_hash FROM audit_entries ORDER BY seqno DESC LIMIT 1");
    if (r < 0)
        return r;
    if (stream)
        sqlite3_bind_text(st, 1, stream, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        seq = sqlite3_column_int64(st, 0);
        blob32(st, 1, hash);
    }
    sqlite3_finalize(st);
    json_t *j = json_pack("{s:I,s:I}", "seqno", (json_int_t)seq, "tree_size", (json_int_t)size);
    if (stream)
        json_object_set_new(j, "stream", json_string(stream));
    _cleanup_free_ char *hex = cit_hex_encode(hash, 32);
    json_object_set_new(j, "entry_hash", json_string(seq ? hex : ""));
    /* the latest segment and checkpoint */
    r = cit__store_prepare(s, &st, "SELECT id, last_seqno FROM audit_segments ORDER BY id DESC LIMIT 1");
    if (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
        json_object_set_new(j, "segment", json_integer(sqlite3_column_int64(st, 0)));
        json_object_set_new(j, "sealed_through", json_integer(sqlite3_column_int64(st, 1)));
    } else {
        json_object_set_new(j, "segment", json_null());
        json_object_set_new(j, "sealed_through", json_integer(0));
    }
    sqlite3_finalize(st);
    if (r < 0) {
        json_decref(j);
        return r;
    }
    *out = j;
    return 0;
}

/* ---- verification of the chain ---- */

typedef struct verdict {
    int code;
    int64_t first_bad;
    char detail[256];
} verdict;

static void fail_at(verdict *v, int code, int64_t seq, const char *fmt, ...) _printf_(4, 5);
static void fail_at(verdict *v, int code, int64_t seq, const char *fmt, ...) {
    if (v->code)
        return; /* the first failure is the one reported */
    v->code = code;
    v->first_bad = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
}

/* Whether the row's content hashes to its stored hash when written as seqno `as`. */
static bool hashes_as(const cit_audit_row *row, int64_t as, uint8_t **buf, size_t *cap) {
    cit_audit_row t = *row;
    t.seqno = as;
    uint8_t leaf[32], h[32];
    if (leaf_hash_buf(&t, buf, cap, leaf) < 0)
        return false;
    cit__audit_chain_hash(row->prev, leaf, h);
    return memcmp(h, row->hash, 32) == 0;
}

/* A frontier of perfect subtrees: the Merkle root of every prefix in one pass. */
typedef struct frontier {
    uint8_t h[64][32];
    int level[64];
    int n;
} frontier;

static void frontier_add(frontier *f, const uint8_t leaf[32]) {
    memcpy(f->h[f->n], leaf, 32);
    f->level[f->n++] = 0;
    while (f->n >= 2 && f->level[f->n - 1] == f->level[f->n - 2]) {
        cit__merkle_node_hash(f->h[f->n - 2], f->h[f->n - 1], f->h[f->n - 2]);
        f->level[f->n - 2]++;
        f->n--;
    }
}

static void frontier_root(const frontier *f, uint8_t out[32]) {
    if (f->n == 0) {
        cit__merkle_root(NULL, 0, out);
        return;
    }
    memcpy(out, f->h[f->n - 1], 32);
    for (int i = f->n - 2; i >= 0; i--)
        cit__merkle_node_hash(f->h[i], out, out);
}

typedef struct seg_info {
    int64_t id, first, last;
    uint8_t root[32], head_hash[32];
} seg_info;

static int segments_load(cit_store *s, seg_info **out, size_t *n) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "SELECT id, first_seqno, last_seqno, root, head_hash FROM audit_segments ORDER BY id");
    size_t cap = 0;
    while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            seg_info *ns = realloc(*out, cap * sizeof **out);
            if (!ns) {
                r = cit_error_set(CIT_E_INTERNAL, "out of memory");
                break;
            }
            *out = ns;
        }
        seg_info *g = &(*out)[(*n)++];
        g->id = sqlite3_column_int64(st, 0);
        g->first = sqlite3_column_int64(st, 1);
        g->last = sqlite3_column_int64(st, 2);
        blob32(st, 3, g->root);
        blob32(st, 4, g->head_hash);
    }
    sqlite3_finalize(st);
    return r;
}

/* Walks every entry from genesis: the chain, then the segments' roots. roots: when not NULL,
 * receives the recomputed root at the end of each segment (parallel to segs). */
static int chain_walk(cit_store *s, verdict *v, int64_t *count, const seg_info *segs, size_t nsegs,
                      uint8_t (*roots)[32]) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "SELECT " ROW_COLUMNS " FROM audit_entries ORDER BY seqno");
    if (r < 0)
        return r;
    uint8_t prev_hash[32] = {0}, prev_prev[32] = {0}, *buf = NULL;
    size_t cap = 0, si = 0;
    int64_t expect = 1;
    bool prev_link_bad = false;
    frontier *f = calloc(1, sizeof *f);
    if (!f) {
        sqlite3_finalize(st);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cit_audit_row row;
        row_view(st, &row); /* no copy: used before the next step */
        if (row.seqno != expect && !v->code)
            fail_at(v, CIT_E_AUDIT_ENTRY_MISSING, expect, "entries %" PRId64 " to %" PRId64 " are missing", expect,
                    row.seqno - 1);
        uint8_t leaf[32], h[32];
        if ((r = leaf_hash_buf(&row, &buf, &cap, leaf)) < 0)
            break;
        cit__audit_chain_hash(row.prev, leaf, h);
        bool own_ok = memcmp(h, row.hash, 32) == 0;
        bool link_ok = memcmp(row.prev, prev_hash, 32) == 0;
        /* written one position earlier and linked to the entry two back: the entry before this
         * one was put in between and the rest renumbered (an insertion, not a reorder) */
        bool shifted = !own_ok && row.seqno > 1 && memcmp(row.prev, prev_prev, 32) == 0 &&
                       hashes_as(&row, row.seqno - 1, &buf, &cap);
        if (shifted && v->code == CIT_E_AUDIT_ENTRY_MODIFIED && v->first_bad == row.seqno - 1) {
            /* the entry just reported as modified (garbage hashes) is the inserted one */
            v->code = 0;
            fail_at(v, CIT_E_AUDIT_ENTRY_INSERTED, row.seqno - 1,
                    "entry %" PRId64 " is not part of the chain (the entries after it were renumbered)",
                    row.seqno - 1);
        }
        if (!v->code) {
            if (shifted)
                fail_at(v, CIT_E_AUDIT_ENTRY_INSERTED, row.seqno - 1,
                        "entry %" PRId64 " is not part of the chain (the entries after it were renumbered)",
                        row.seqno - 1);
            else if (!own_ok) {
                if (hashes_as(&row, row.seqno - 1, &buf, &cap) || hashes_as(&row, row.seqno + 1, &buf, &cap))
                    fail_at(v, CIT_E_AUDIT_ENTRY_REORDERED, row.seqno,
                            "entry %" PRId64 " was written at another position", row.seqno);
                else
                    fail_at(v, CIT_E_AUDIT_ENTRY_MODIFIED, row.seqno,
                            "entry %" PRId64 " does not hash to its recorded hash", row.seqno);
            } else if (!link_ok && prev_link_bad) {
                /* the previous row broke the link and this one links past it: it was inserted */
                if (memcmp(row.prev, prev_prev, 32) == 0)
                    fail_at(v, CIT_E_AUDIT_ENTRY_INSERTED, row.seqno - 1,
                            "entry %" PRId64 " is not part of the chain", row.seqno - 1);
                else
                    fail_at(v, CIT_E_AUDIT_CHAIN_BROKEN, row.seqno - 1, "the chain breaks before entry %" PRId64,
                            row.seqno - 1);
            }
        }
        if (!v->code && prev_link_bad && link_ok)
            fail_at(v, CIT_E_AUDIT_CHAIN_BROKEN, row.seqno - 1, "the chain breaks before entry %" PRId64,
                    row.seqno - 1);
        prev_link_bad = !link_ok && own_ok && !v->code;
        memcpy(prev_prev, prev_hash, 32);
        memcpy(prev_hash, row.hash, 32);
        frontier_add(f, leaf);
        while (si < nsegs && segs[si].last == row.seqno) {
            if (roots)
                frontier_root(f, roots[si]);
            si++;
        }
        expect = row.seqno + 1;
    }
    if (r == 0 && rc != SQLITE_DONE) {
        /* a damaged database file: everything up to here was readable */
        fail_at(v, CIT_E_AUDIT_TRUNCATED, expect, "the store cannot be read past entry %" PRId64 " (%s)", expect - 1,
                sqlite3_errmsg(s->db));
    }
    if (prev_link_bad && !v->code) {
        /* the last row does not link: check whether it would be an insertion at the end */
        fail_at(v, CIT_E_AUDIT_CHAIN_BROKEN, expect - 1, "the chain breaks before entry %" PRId64, expect - 1);
    }
    *count = expect - 1;
    free(f);
    free(buf);
    sqlite3_finalize(st);
    return r;
}

/* The segments against the walked log: each must end inside it (else truncated) and have the
 * root recomputed by the walk (else the first entry of the first changed segment is bad). */
static void segments_check(const seg_info *segs, size_t nsegs, const uint8_t (*roots)[32], int64_t count,
                           verdict *v) {
    for (size_t i = 0; i < nsegs && !v->code; i++) {
        if (segs[i].last > count)
            fail_at(v, CIT_E_AUDIT_TRUNCATED, count + 1,
                    "segment %" PRId64 " covers entries up to %" PRId64 " but the log ends at %" PRId64, segs[i].id,
                    segs[i].last, count);
        else if (memcmp(roots[i], segs[i].root, 32) != 0)
            fail_at(v, CIT_E_AUDIT_ROOT_MISMATCH, segs[i].first,
                    "segment %" PRId64 " (entries %" PRId64 "-%" PRId64 ") no longer has its recorded root",
                    segs[i].id, segs[i].first, segs[i].last);
    }
}

/* Compares the store with the head file and the NV counter. fix_nv: bring a lagging NV
 * counter up to the store's record. */
static int rollback_check(cit_ctx *ctx, cit_store *s, int64_t count, verdict *v, json_t *report, bool fix_nv);

static json_t *verdict_check(const char *name, const verdict *v, const char *ok_detail) {
    json_t *c = json_pack("{s:s,s:s}", "check", name, "status", v->code ? "fail" : "pass");
    if (v->code) {
        char code[16];
        cit_code_format(code, sizeof code, v->code);
        json_object_set_new(c, "code", json_string(code));
        json_object_set_new(c, "first_bad_seqno", json_integer(v->first_bad));
        json_object_set_new(c, "detail", json_string(v->detail));
    } else
        json_object_set_new(c, "detail", json_string(ok_detail));
    return c;
}

static int verdict_error(const verdict *v, const char *what) {
    cit_error_set(v->code, "%s: %s", what, v->detail);
    cit_error_context("first_bad_seqno", "%" PRId64, v->first_bad);
    return v->code;
}

_public_ int cit_audit_chain_verify(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    seg_info *segs = NULL;
    size_t nsegs = 0;
    verdict v = {0};
    int64_t count = 0;
    uint64_t t0 = cit_now_usec();
    uint8_t(*roots)[32] = NULL;
    if ((r = segments_load(s, &segs, &nsegs)) == 0 && nsegs && !(roots = calloc(nsegs, 32)))
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    if (r == 0)
        r = chain_walk(s, &v, &count, segs, nsegs, roots);
    /* the walk computes the segments' roots anyway: an attacker who rewrote the chain from an
     * entry onwards (so every link holds) is caught here, at the segment holding that entry,
     * rather than only as a head that differs from the head file's */
    if (r == 0)
        segments_check(segs, nsegs, (const uint8_t(*)[32])roots, count, &v);
    json_t *rb = json_object();
    if (r == 0)
        r = rollback_check(ctx, s, count, &v, rb, false);
    free(roots);
    free(segs);
    if (r < 0) {
        json_decref(rb);
        return r;
    }
    uint64_t us = cit_now_usec() - t0;
    json_t *report = json_pack("{s:b,s:I}", "valid", !v.code, "entries", (json_int_t)count);
    if (v.code) {
        char code[16];
        cit_code_format(code, sizeof code, v.code);
        json_object_set_new(report, "code", json_string(code));
        json_object_set_new(report, "first_bad_seqno", json_integer(v.first_bad));
        json_object_set_new(report, "detail", json_string(v.detail));
    }
    json_object_set_new(report, "anti_rollback", rb);
    json_object_set_new(report, "elapsed_ms", json_real((double)us / 1000.0));
    *out = report;
    return v.code ? verdict_error(&v, "the audit chain does not verify") : 0;
}

/* ---- anti-rollback ---- */

static int counter_read_ex(cit_ctx *ctx, bool *exists, int64_t *value, bool *uninit) {
    *exists = false;
    *value = 0;
    if (uninit)
        *uninit = false;
    cit_store *s = ctx->store;
    cit_object o = {0};
    if (cit__object_find(s, COUNTER_PATH, &o) < 0) {
        cit_error_clear();
        return 0;
    }
    cit__object_clear(&o);
    json_t *j = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int r = cit_nv_read(&j, ctx, COUNTER_PATH, NULL, &data, &len);
    if (r == 0) {
        *exists = true;
        *value = json_integer_value(json_object_get(j, "value"));
    } else if (r == CIT_E_NV_TYPE) {
        /* defined but never incremented: the first `segments close` died between the two
         * (counter_ensure); it reads as 0 and the next close increments it */
        cit_error_clear();
        *exists = true;
        if (uninit)
            *uninit = true;
        r = 0;
    }
    json_decref(j);
    free(data);
    return r;
}

static int counter_read(cit_ctx *ctx, bool *exists, int64_t *value) {
    return counter_read_ex(ctx, exists, value, NULL);
}

#define COUNTER_ACCEPTED_META "audit_counter_accepted"

/* The NV counter value the store expects: its newest segment's, or the TPM's value that
 * `audit rollback --accept` re-anchored on (an NV counter never goes back, so a restored
 * store that predates a segment close could otherwise never verify or close again). */
static int db_counter(cit_store *s, int64_t *v) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st,
                               "SELECT max(coalesce((SELECT max(counter) FROM audit_segments), 0), "
                               "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = '" COUNTER_ACCEPTED_META
                               "'), 0))");
    *v = 0;
    if (r == 0 && sqlite3_step(st) == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return r;
}

/* The value the counter's first increment gave it, recorded so that a close that died after
 * initialising the counter and before its segment committed (the TPM at that value, the store
 * with no segment) is told apart from segments rolled back. */
#define COUNTER_BASE_META "audit_counter_base"

static int counter_base(cit_store *s, bool *known, int64_t *base) {
    _cleanup_free_ char *v = NULL;
    *known = false;
    *base = 0;
    int r = cit__store_meta_get(s, COUNTER_BASE_META, &v);
    if (r < 0)
        return r;
    if (v) {
        uint64_t u = 0;
        if (cit_parse_u64(v, &u) < 0 || u > INT64_MAX)
            return cit_error_set(CIT_E_STORE_IO, "the store's %s is not a number", COUNTER_BASE_META);
        *known = true;
        *base = (int64_t)u;
    }
    return 0;
}


static int rollback_check(cit_ctx *ctx, cit_store *s, int64_t count, verdict *v, json_t *report, bool fix_nv) {
    head_file hf;
    int r = head_read(s, &hf);
    if (r < 0)
        return r;
    int64_t head = 0;
    uint8_t hash[32];
    if ((r = db_head(s, &head, hash)) < 0)
        return r;
    json_t *hj = json_object();
    json_object_set_new(hj, "file_present", json_boolean(hf.exists));
    if (hf.exists) {
        json_object_set_new(hj, "acknowledged_seqno", json_integer(hf.committed.seqno));
        if (hf.pending.present)
            json_object_set_new(hj, "pending_seqno", json_integer(hf.pending.seqno));
        bool at_c = head == hf.committed.seqno && memcmp(hash, hf.committed.hash, 32) == 0;
        bool at_p = hf.pending.present && head == hf.pending.seqno && memcmp(hash, hf.pending.hash, 32) == 0;
        int64_t top = hf.pending.present && hf.pending.seqno > hf.committed.seqno ? hf.pending.seqno
                                                                                  : hf.committed.seqno;
        if (at_c || at_p)
            json_object_set_new(hj, "status", json_string("pass"));
        else if (head > top)
            fail_at(v, CIT_E_AUDIT_ENTRY_INSERTED, top + 1,
                    "the store holds entries %" PRId64 " to %" PRId64 " that the log never acknowledged", top + 1,
                    head);
        else if (head < hf.committed.seqno)
            fail_at(v, CIT_E_AUDIT_ROLLBACK, head + 1,
                    "the store ends at entry %" PRId64 " but the log acknowledged %" PRId64 " (an older copy?)", head,
                    hf.committed.seqno);
        else
            fail_at(v, CIT_E_AUDIT_ROLLBACK, head,
                    "the store's head entry %" PRId64 " is not the one the log acknowledged", head);
        if (!at_c && !at_p)
            json_object_set_new(hj, "status", json_string("fail"));
    } else if (in_memory(s)) {
        /* the mock backend's store lives and dies with the process: nothing to roll back */
        json_object_set_new(hj, "status", json_string("not applicable (in-memory store)"));
    } else if (head > 0) {
        json_object_set_new(hj, "status", json_string("missing"));
        if (!v->code)
            fail_at(v, CIT_E_AUDIT_HEAD_FILE, 0, "the head file STORE.audit-head is missing but the log has entries");
    } else
        json_object_set_new(hj, "status", json_string("pass"));
    json_object_set_new(report, "head_file", hj);

    /* the NV counter, when a segment has been closed */
    int64_t dbc = 0, nv = 0;
    bool have_nv = false;
    if ((r = db_counter(s, &dbc)) < 0)
        return r;
    json_t *nj = json_object();
    json_object_set_new(nj, "store_value", json_integer(dbc));
    cit_object co = {0};
    bool counter_defined = dbc > 0 || cit__object_find(s, COUNTER_PATH, &co) == 0;
    cit__object_clear(&co); /* the metadata it read */
    if (counter_defined) {
        cit_error_clear();
        bool uninit = false, base_known = false;
        int64_t base = 0;
        if ((r = counter_read_ex(ctx, &have_nv, &nv, &uninit)) < 0) {
            json_decref(nj);
            return r;
        }
        json_object_set_new(nj, "tpm_value", have_nv ? json_integer(nv) : json_null());
        if (uninit && dbc == 0) {
            /* defined by a first close that died before its first increment: nothing was
             * committed against it yet; the next close initialises it */
            json_object_set_new(nj, "status", json_string("defined, not yet initialised"));
        } else if (uninit)
            fail_at(v, CIT_E_AUDIT_ROLLBACK, 0,
                    "the store records NV counter value %" PRId64 " but the TPM's counter %s was never "
                    "incremented (a redefined index, or another TPM state)", dbc, COUNTER_PATH);
        else if (!have_nv && dbc > 0)
            fail_at(v, CIT_E_AUDIT_ROLLBACK, 0, "the store records NV counter value %" PRId64
                    " but the TPM's counter %s is gone", dbc, COUNTER_PATH);
        else if (have_nv && nv > dbc && dbc == 0 && (r = counter_base(s, &base_known, &base)) < 0) {
            json_decref(nj);
            return r;
        } else if (have_nv && nv > dbc && dbc == 0 && (!base_known || nv == base)) {
            /* initialised by a first close that died before its segment committed (or before
             * the base was recorded): no segment was ever recorded against it */
            json_object_set_new(nj, "status", json_string("initialised, no segment yet"));
        } else if (have_nv && nv > dbc) {
            /* the segment whose counter value the TPM reached is missing */
            fail_at(v, CIT_E_AUDIT_ROLLBACK, count + 1,
                    "the TPM counter is at %" PRId64 " but the store's newest segment recorded %" PRId64
                    ": segments were rolled back", nv, dbc);
            json_object_set_new(nj, "status", json_string("fail"));
        } else if (have_nv && nv < dbc - 1) {
            /* a crash loses at most the one increment after a close's commit (closes are
             * serialized): more means a TPM state that went back, or a store whose counter
             * was edited; catching up would also let an edited value drive increments */
            fail_at(v, CIT_E_AUDIT_ROLLBACK, 0,
                    "the TPM counter is at %" PRId64 " but the store records %" PRId64
                    ": more than a crash can leave behind (an older TPM state, or an edited store)",
                    nv, dbc);
            json_object_set_new(nj, "status", json_string("fail"));
        } else if (have_nv && nv < dbc) {
            /* a close committed and the process died before the increment */
            if (fix_nv) {
                json_t *j = NULL;
                while (nv < dbc && (r = cit_nv_increment(&j, ctx, COUNTER_PATH, NULL)) == 0) {
                    nv = json_integer_value(json_object_get(j, "value"));
                    json_decref(j);
                    j = NULL;
                }
                if (r == 0)
                    r = cit__ctx_tpm_sync(ctx);
                if (r < 0) {
                    json_decref(nj);
                    return r;
                }
                json_object_set_new(nj, "tpm_value", json_integer(nv));
                json_object_set_new(nj, "status", json_string("caught up"));
            } else
                json_object_set_new(nj, "status", json_string("lagging (caught up by `audit rollback`)"));
        } else
            json_object_set_new(nj, "status", json_string("pass"));
    } else {
        cit_error_clear();
        json_object_set_new(nj, "status", json_string("not yet defined (no segment closed)"));
    }
    json_object_set_new(report, "nv_counter", nj);
    return 0;
}

_public_ int cit_audit_rollback(json_t **out, cit_ctx *ctx, bool accept) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_NV_Read (rollback counter)", NULL};
        *out = cit__plan(accept ? "accept the store's audit head as acknowledged" : "check for rollback", ops);
        return 0;
    }
    int64_t head = 0;
    uint8_t hash[32];
    if ((r = db_head(s, &head, hash)) < 0)
        return r;
    if (accept) {
        /* an operator's decision (a restored backup, a moved store): the store's chain must
         * verify first, and the decision itself is logged */
        /* the chain and the segment roots, not the head file or the counter (those are what
         * is being accepted): an insertion the walk finds (TPM0105 in the middle) is refused */
        seg_info *segs = NULL;
        size_t nsegs = 0;
        verdict cv = {0};
        int64_t walked = 0;
        uint8_t(*roots)[32] = NULL;
        if ((r = segments_load(s, &segs, &nsegs)) == 0 && nsegs && !(roots = calloc(nsegs, 32)))
            r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        if (r == 0)
            r = chain_walk(s, &cv, &walked, segs, nsegs, roots);
        if (r == 0)
            segments_check(segs, nsegs, (const uint8_t(*)[32])roots, walked, &cv);
        free(roots);
        free(segs);
        if (r < 0)
            return r;
        if (cv.code) {
            r = verdict_error(&cv, "refusing to accept a head whose chain does not verify");
            cit_error_step("run `citadel tpm audit chain verify`: --accept acknowledges a genuine store, it does not "
                           "repair one");
            return r;
        }
        /* a TPM counter ahead of the store's record (the copy predates a segment close) is
         * accepted too: it cannot go back, so the store takes the TPM's value */
        int64_t dbc = 0, nv = 0;
        bool have_nv = false;
        if ((r = db_counter(s, &dbc)) < 0 || (r = counter_read(ctx, &have_nv, &nv)) < 0)
            return r;
        if (have_nv && nv < dbc - 1) {
            /* the operator accepts a counter behind the store (an older TPM state): it is
             * brought up to the store's value, within reason (the value is the store's word) */
            if (dbc - nv > 1024) {
                cit_error_set(CIT_E_AUDIT_ROLLBACK,
                              "the store records NV counter value %" PRId64 ", %" PRId64 " ahead of the TPM's",
                              dbc, dbc - nv);
                cit_error_cause("no restore explains that many segment closes: the store's counter was edited");
                return CIT_E_AUDIT_ROLLBACK;
            }
            int cfd = -1;
            if ((r = file_lock(s, ".audit-counter.lock", &cfd)) < 0)
                return r;
            json_t *j = NULL;
            while (nv < dbc && (r = cit_nv_increment(&j, ctx, COUNTER_PATH, NULL)) == 0) {
                nv = json_integer_value(json_object_get(j, "value"));
                json_decref(j);
                j = NULL;
            }
            if (r == 0)
                r = cit__ctx_tpm_sync(ctx);
            head_unlock(cfd);
            if (r < 0)
                return r;
        }
        head_rec h = {.present = true, .seqno = head};
        memcpy(h.hash, hash, 32);
        int lock = -1;
        if ((r = head_lock(s, &lock)) == 0)
            r = head_write(s, &h, NULL, true);
        head_unlock(lock);
        if (r < 0)
            return r;
        cit__audit_state_free(ctx);
        char payload[160];
        snprintf(payload, sizeof payload, "{\"accepted_head\":%" PRId64 ",\"accepted_counter\":%" PRId64 "}", head,
                 have_nv && nv > dbc ? nv : dbc);
        json_t *a = NULL;
        /* logged first, applied after: a crash in between leaves a logged decision to repeat,
         * never an unlogged one */
        r = cit_audit_append(&a, ctx, "default", "audit.head.accept", (const uint8_t *)payload, strlen(payload));
        if (r < 0)
            return r;
        json_decref(a);
        if (have_nv && nv > dbc) {
            char val[32];
            snprintf(val, sizeof val, "%" PRId64, nv);
            if ((r = cit__store_meta_set(s, COUNTER_ACCEPTED_META, val)) < 0)
                return r;
        }
        cit_error_clear();
    }
    verdict v = {0};
    json_t *report = json_object();
    int64_t count = head;
    int cfd = -1; /* catching the counter up is an increment, serialized with segment closes */
    if ((r = file_lock(s, ".audit-counter.lock", &cfd)) == 0 && (r = cit__audit_size(s, &count)) == 0)
        r = rollback_check(ctx, s, count, &v, report, true);
    head_unlock(cfd);
    if (r < 0) {
        json_decref(report);
        return r;
    }
    json_object_set_new(report, "store_head", json_integer(count));
    json_object_set_new(report, "rolled_back", json_boolean(v.code != 0));
    if (v.code) {
        char code[16];
        cit_code_format(code, sizeof code, v.code);
        json_object_set_new(report, "code", json_string(code));
        json_object_set_new(report, "first_bad_seqno", json_integer(v.first_bad));
        json_object_set_new(report, "detail", json_string(v.detail));
        *out = report;
        r = verdict_error(&v, "anti-rollback check failed");
        cit_error_step("if this store is a deliberate restore, `citadel tpm audit rollback --accept` re-anchors it "
                       "(and logs that it did)");
        return r;
    }
    *out = report;
    return 0;
}

/* ---- segments ---- */

static int counter_record_base(cit_store *s, int64_t value) {
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, value);
    return cit__store_meta_set(s, COUNTER_BASE_META, b);
}

static int counter_ensure(cit_ctx *ctx, int64_t *value) {
    bool exists = false, uninit = false;
    int r = counter_read_ex(ctx, &exists, value, &uninit);
    if (r < 0)
        return r;
    if (exists && !uninit) {
        /* initialised by a close that died before recording the base (nothing committed since) */
        bool known = false;
        int64_t base = 0, dbc = 0;
        if ((r = counter_base(ctx->store, &known, &base)) == 0 && !known && (r = db_counter(ctx->store, &dbc)) == 0 &&
            dbc == 0)
            r = counter_record_base(ctx->store, *value);
        return r;
    }
    json_t *j = NULL;
    /* a counter is initialised (by its first increment) before any segment records a value
     * against it; a define whose increment a crash cut off is completed here */
    if (!exists && (r = cit_nv_define(&j, ctx, COUNTER_PATH, 8, "counter", NULL)) < 0)
        return r;
    json_decref(j);
    j = NULL;
    if ((r = cit_nv_increment(&j, ctx, COUNTER_PATH, NULL)) < 0) /* a counter reads after its first increment */
        return r;
    *value = json_integer_value(json_object_get(j, "value"));
    json_decref(j);
    return counter_record_base(ctx->store, *value);
}

static int segments_close_locked(json_t **out, cit_ctx *ctx, cit_store *s);

_public_ int cit_audit_segments_close(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_NV_Read (rollback counter)", "TPM2_NV_Increment (rollback counter)",
                                          NULL};
        *out = cit__plan("seal the open entries into a Merkle segment", ops);
        return 0;
    }
    /* closes are serialized from the counter check to the increment: two at once would each
     * increment from the value they read and leave the TPM counter ahead of every segment
     * (a false rollback). Taken before the store's write lock; appenders never take it. */
    int cfd = -1;
    if ((r = file_lock(s, ".audit-counter.lock", &cfd)) < 0)
        return r;
    r = segments_close_locked(out, ctx, s);
    head_unlock(cfd);
    return r;
}

static int segments_close_locked(json_t **out, cit_ctx *ctx, cit_store *s) {
    /* refuse to seal on top of a rolled-back store */
    verdict v = {0};
    json_t *rb = json_object();
    int64_t count = 0;
    int r;
    if ((r = cit__audit_size(s, &count)) == 0)
        r = rollback_check(ctx, s, count, &v, rb, true);
    json_decref(rb);
    if (r < 0)
        return r;
    if (v.code)
        return verdict_error(&v, "refusing to seal a segment");
    int64_t nv = 0;
    if ((r = counter_ensure(ctx, &nv)) < 0)
        return r;
    /* the TPM durably holds every increment so far before the store records the next value
     * (the in-process vTPM keeps NV changes in memory until its state is saved): otherwise a
     * crash could leave the store two or more values ahead of the TPM */
    if ((r = cit__ctx_tpm_sync(ctx)) < 0)
        return r;
    if ((r = cit__store_begin(s)) < 0)
        return r;
    int64_t head = 0, last_closed = 0, id = 0, dbc = 0;
    uint8_t hash[32], root[32];
    sqlite3_stmt *st = NULL;
    r = db_head(s, &head, hash);
    if (r == 0)
        r = cit__store_prepare(s, &st, "SELECT coalesce(max(last_seqno), 0), coalesce(max(id), 0) FROM audit_segments");
    if (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
        last_closed = sqlite3_column_int64(st, 0);
        id = sqlite3_column_int64(st, 1) + 1;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (r == 0)
        r = db_counter(s, &dbc);
    if (r == 0 && head <= last_closed) {
        r = cit_error_set(CIT_E_AUDIT_NOTHING_TO_CLOSE, "no audit entries since the last segment (sealed through %" PRId64 ")",
                          last_closed);
    }
    if (r == 0)
        r = cit__audit_mth(s, 0, (uint64_t)head, root);
    int64_t next = (nv > dbc ? nv : dbc) + 1;
    if (r == 0)
        r = cit__store_prepare(s, &st, "INSERT INTO audit_segments (id, first_seqno, last_seqno, root, head_hash, counter, "
                                       "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (r == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, last_closed + 1);
        sqlite3_bind_int64(st, 3, head);
        sqlite3_bind_blob(st, 4, root, 32, SQLITE_STATIC);
        sqlite3_bind_blob(st, 5, hash, 32, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, next);
        sqlite3_bind_int64(st, 7, (int64_t)time(NULL));
        if (sqlite3_step(st) != SQLITE_DONE)
            r = cit__store_error(s, "cannot record the audit segment");
    }
    sqlite3_finalize(st);
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        return r;
    }
    /* the store first, then the counter: a crash in between leaves the counter behind (caught
     * up later), never ahead (which would read as a rollback) */
    json_t *j = NULL;
    int64_t got = nv;
    while (got < next && (r = cit_nv_increment(&j, ctx, COUNTER_PATH, NULL)) == 0) {
        got = json_integer_value(json_object_get(j, "value"));
        json_decref(j);
        j = NULL;
    }
    if (r == 0)
        r = cit__ctx_tpm_sync(ctx);
    if (r < 0)
        return r;
    _cleanup_free_ char *root_hex = cit_hex_encode(root, 32);
    *out = json_pack("{s:I,s:I,s:I,s:I,s:s,s:I}", "segment", (json_int_t)id, "first_seqno", (json_int_t)(last_closed + 1),
                     "last_seqno", (json_int_t)head, "tree_size", (json_int_t)head, "root", root_hex ? root_hex : "",
                     "counter", (json_int_t)got);
    return 0;
}

_public_ int cit_audit_segments_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    sqlite3_stmt *st = NULL;
    r = cit__store_prepare(s, &st,
                           "SELECT g.id, g.first_seqno, g.last_seqno, g.root, g.counter, g.created_at, "
                           "(SELECT count(*) FROM audit_checkpoints c WHERE c.segment_id = g.id) "
                           "FROM audit_segments g ORDER BY g.id");
    json_t *a = json_array();
    while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
        uint8_t root[32];
        blob32(st, 3, root);
        _cleanup_free_ char *hex = cit_hex_encode(root, 32);
        char when[40];
        cit_time_rfc3339(when, sizeof when, sqlite3_column_int64(st, 5));
        json_array_append_new(a, json_pack("{s:I,s:I,s:I,s:I,s:s,s:I,s:s,s:I}", "segment",
                                           (json_int_t)sqlite3_column_int64(st, 0), "first_seqno",
                                           (json_int_t)sqlite3_column_int64(st, 1), "last_seqno",
                                           (json_int_t)sqlite3_column_int64(st, 2), "tree_size",
                                           (json_int_t)sqlite3_column_int64(st, 2), "root", hex ? hex : "", "counter",
                                           (json_int_t)sqlite3_column_int64(st, 4), "closed", when, "checkpoints",
                                           (json_int_t)sqlite3_column_int64(st, 6)));
    }
    sqlite3_finalize(st);
    if (r < 0) {
        json_decref(a);
        return r;
    }
    *out = json_pack("{s:o}", "segments", a);
    return 0;
}

/* ---- proofs ---- */

static json_t *hash_array(const uint8_t (*h)[32], size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        char *hex = cit_hex_encode(h[i], 32);
        json_array_append_new(a, json_string(hex ? hex : ""));
        free(hex);
    }
    return a;
}

/* Tree size default: the latest sealed segment's, else the whole log. */
static int default_size(cit_store *s, int64_t *size) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(s, &st, "SELECT max(last_seqno) FROM audit_segments");
    *size = 0;
    if (r == 0 && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *size = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (r == 0 && *size == 0)
        r = cit__audit_size(s, size);
    return r;
}

_public_ int cit_audit_prove(json_t **out, cit_ctx *ctx, int64_t seqno, int64_t tree_size) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    int64_t size = tree_size, count = 0;
    if ((r = cit__audit_size(s, &count)) < 0 || (!size && (r = default_size(s, &size)) < 0))
        return r;
    if (seqno < 1 || seqno > size || size > count) {
        cit_error_set(CIT_E_AUDIT_ENTRY_NOT_FOUND, "entry %" PRId64 " is not in a tree of %" PRId64 " entries", seqno,
                      size);
        cit_error_cause("the log holds entries 1 to %" PRId64 "%s", count,
                        tree_size ? "" : "; without --tree-size the latest sealed segment's size is used");
        cit_error_context("seqno", "%" PRId64, seqno);
        return CIT_E_AUDIT_ENTRY_NOT_FOUND;
    }
    uint64_t t0 = cit_now_usec();
    uint8_t proof[CIT_MERKLE_MAX_PROOF][32], root[32], leaf[32];
    size_t n = 0;
    cit_audit_row row;
    if ((r = cit__audit_row_get(s, seqno, &row)) < 0)
        return r;
    r = cit__audit_leaf_hash(&row, leaf);
    uint8_t *entry = NULL;
    size_t elen = 0;
    if (r == 0)
        r = cit__audit_entry_bytes(&row, &entry, &elen);
    cit__audit_row_clear(&row);
    mth_env *env = r == 0 ? mth_env_new(s) : NULL; /* shared by the path and the root */
    if (r == 0 && !env)
        r = CIT_E_INTERNAL;
    if (r == 0)
        r = cit__merkle_inclusion_proof(mth_cb, env, (uint64_t)seqno - 1, (uint64_t)size, proof, &n) < 0
                ? (cit_error_last()->code ? cit_error_last()->code : cit_error_set(CIT_E_INTERNAL, "proof failed"))
                : 0;
    if (r == 0)
        r = mth(env, 0, (uint64_t)size, root);
    mth_env_free(env);
    uint64_t us = cit_now_usec() - t0;
    if (r < 0) {
        free(entry);
        return r;
    }
    bool ok = cit__merkle_verify_inclusion((uint64_t)seqno - 1, (uint64_t)size, leaf, (const uint8_t(*)[32])proof, n, root);
    _cleanup_free_ char *root_hex = cit_hex_encode(root, 32);
    _cleanup_free_ char *leaf_hex = cit_hex_encode(leaf, 32);
    _cleanup_free_ char *entry_hex = cit_hex_encode(entry, elen);
    free(entry);
    *out = json_pack("{s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:o,s:b,s:f}", "type", "inclusion", "seqno", (json_int_t)seqno,
                     "leaf_index", (json_int_t)(seqno - 1), "tree_size", (json_int_t)size, "root",
                     root_hex ? root_hex : "", "leaf_hash", leaf_hex ? leaf_hex : "", "entry",
                     entry_hex ? entry_hex : "", "proof", hash_array((const uint8_t(*)[32])proof, n), "verified", ok,
                     "elapsed_ms", (double)us / 1000.0);
    if (!ok)
        return cit_error_set(CIT_E_AUDIT_PROOF_INVALID, "the inclusion proof for entry %" PRId64 " does not verify",
                             seqno);
    return 0;
}

_public_ int cit_audit_prove_consistency(json_t **out, cit_ctx *ctx, int64_t old_size, int64_t new_size) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    int64_t count = 0;
    if ((r = cit__audit_size(s, &count)) < 0)
        return r;
    if (!new_size)
        new_size = count;
    if (old_size < 1 || old_size > new_size || new_size > count) {
        cit_error_set(CIT_E_USAGE, "consistency proofs need 1 <= OLD <= NEW <= %" PRId64 " (got %" PRId64 " and %" PRId64 ")",
                      count, old_size, new_size);
        cit_error_cause("OLD and NEW are tree sizes (the sequence number of a segment's last entry)");
        return CIT_E_USAGE;
    }
    uint8_t proof[CIT_MERKLE_MAX_PROOF][32], r_old[32], r_new[32];
    size_t n = 0;
    mth_env *env = mth_env_new(s); /* shared by the proof and both roots */
    if (!env)
        return CIT_E_INTERNAL;
    r = cit__merkle_consistency_proof(mth_cb, env, (uint64_t)old_size, (uint64_t)new_size, proof, &n) < 0
            ? (cit_error_last()->code ? cit_error_last()->code : cit_error_set(CIT_E_INTERNAL, "proof failed"))
            : 0;
    if (r == 0)
        r = mth(env, 0, (uint64_t)old_size, r_old);
    if (r == 0)
        r = mth(env, 0, (uint64_t)new_size, r_new);
    mth_env_free(env);
    if (r < 0)
        return r;
    bool ok = cit__merkle_verify_consistency((uint64_t)old_size, (uint64_t)new_size, r_old, r_new,
                                             (const uint8_t(*)[32])proof, n);
    _cleanup_free_ char *ho = cit_hex_encode(r_old, 32);
    _cleanup_free_ char *hn = cit_hex_encode(r_new, 32);
    *out = json_pack("{s:s,s:I,s:I,s:s,s:s,s:o,s:b}", "type", "consistency", "old_size", (json_int_t)old_size,
                     "new_size", (json_int_t)new_size, "old_root", ho ? ho : "", "new_root", hn ? hn : "", "proof",
                     hash_array((const uint8_t(*)[32])proof, n), "verified", ok);
    if (!ok)
        return cit_error_set(CIT_E_AUDIT_PROOF_INVALID, "the consistency proof does not verify");
    return 0;
}

/* Verifies a proof given as JSON (from `audit prove`, or another tool with the same fields):
 * the leaf (or entry bytes), the proof and the root. For checking proofs away from the store. */
static int hex32(const json_t *j, const char *key, uint8_t out[32]) {
    const char *s = json_string_value(json_object_get(j, key));
    uint8_t *b = NULL;
    size_t n = 0;
    if (!s || cit_hex_decode(&b, &n, s) < 0 || n != 32) {
        free(b);
        cit_error_set(CIT_E_INPUT_INVALID, "the proof's \"%s\" is not a 32-byte hex hash", key);
        return CIT_E_INPUT_INVALID;
    }
    memcpy(out, b, 32);
    free(b);
    return 0;
}

static int proof_array(const json_t *j, uint8_t (*out)[32], size_t *n) {
    const json_t *a = json_object_get(j, "proof");
    *n = 0;
    if (!json_is_array(a) || json_array_size(a) > CIT_MERKLE_MAX_PROOF)
        return cit_error_set(CIT_E_INPUT_INVALID, "the proof's \"proof\" is not an array of at most %d hashes",
                             CIT_MERKLE_MAX_PROOF);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        json_t *w = json_pack("{s:O}", "h", v);
        int r = hex32(w, "h", out[i]);
        json_decref(w);
        if (r < 0)
            return r;
    }
    *n = json_array_size(a);
    return 0;
}

_public_ int cit_audit_proof_check(json_t **out, const char *proof_file) {
    cit_error_clear();
    uint8_t *buf = NULL;
    size_t len = 0;
    int e = cit_read_file(proof_file, 1024 * 1024, &buf, &len);
    if (e < 0) {
        cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", proof_file, strerror(-e));
        return CIT_E_INPUT_READ;
    }
    json_t *j = json_loadb((const char *)buf, len, 0, NULL);
    free(buf);
    if (!json_is_object(j)) {
        json_decref(j);
        return cit_error_set(CIT_E_INPUT_INVALID, "%s is not a proof (JSON from `audit prove`)", proof_file);
    }
    uint8_t proof[CIT_MERKLE_MAX_PROOF][32], a[32], b[32];
    size_t n = 0;
    int r = proof_array(j, proof, &n);
    const char *type = json_string_value(json_object_get(j, "type"));
    bool ok = false;
    if (r == 0 && type && strcmp(type, "inclusion") == 0) {
        json_int_t idx = json_integer_value(json_object_get(j, "leaf_index"));
        json_int_t size = json_integer_value(json_object_get(j, "tree_size"));
        const char *entry = json_string_value(json_object_get(j, "entry"));
        if (entry) { /* recompute the leaf from the entry bytes rather than trust leaf_hash */
            uint8_t *eb = NULL;
            size_t el = 0;
            if (cit_hex_decode(&eb, &el, entry) < 0)
                r = cit_error_set(CIT_E_INPUT_INVALID, "the proof's \"entry\" is not hex");
            else
                cit__merkle_leaf_hash(eb, el, a);
            free(eb);
        } else
            r = hex32(j, "leaf_hash", a);
        if (r == 0)
            r = hex32(j, "root", b);
        if (r == 0)
            ok = size > 0 && idx >= 0 &&
                 cit__merkle_verify_inclusion((uint64_t)idx, (uint64_t)size, a, (const uint8_t(*)[32])proof, n, b);
    } else if (r == 0 && type && strcmp(type, "consistency") == 0) {
        json_int_t o = json_integer_value(json_object_get(j, "old_size"));
        json_int_t nn = json_integer_value(json_object_get(j, "new_size"));
        if ((r = hex32(j, "old_root", a)) == 0 && (r = hex32(j, "new_root", b)) == 0)
            ok = o > 0 && nn >= o &&
                 cit__merkle_verify_consistency((uint64_t)o, (uint64_t)nn, a, b, (const uint8_t(*)[32])proof, n);
    } else if (r == 0)
        r = cit_error_set(CIT_E_INPUT_INVALID, "the proof's \"type\" must be inclusion or consistency");
    if (r < 0) {
        json_decref(j);
        return r;
    }
    *out = json_pack("{s:s,s:b}", "type", type, "verified", ok);
    json_decref(j); /* type pointed into j: use the copy in *out from here on */
    if (!ok)
        return cit_error_set(CIT_E_AUDIT_PROOF_INVALID, "the %s proof does not verify",
                             json_string_value(json_object_get(*out, "type")));
    return 0;
}

/* Used by audit_note.c: the walk with segment roots recomputed from the entries. */
int cit__audit_walk(cit_ctx *ctx, cit_store *s, json_t *report, int *code, int64_t *first_bad, char *detail,
                    size_t detail_cap, cit_audit_root **roots_out, size_t *nroots);
int cit__audit_walk(cit_ctx *ctx, cit_store *s, json_t *report, int *code, int64_t *first_bad, char *detail,
                    size_t detail_cap, cit_audit_root **roots_out, size_t *nroots) {
    *roots_out = NULL;
    *nroots = 0;
    seg_info *segs = NULL;
    size_t nsegs = 0;
    verdict v = {0};
    int64_t count = 0;
    uint8_t(*roots)[32] = NULL;
    json_t *checks = json_object_get(report, "checks");
    int r = segments_load(s, &segs, &nsegs);
    if (r == 0 && nsegs && !(roots = calloc(nsegs, 32)))
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    if (r == 0)
        r = chain_walk(s, &v, &count, segs, nsegs, roots);
    if (r < 0)
        goto out;
    json_array_append_new(checks, verdict_check("hash chain", &v, "every entry links to the one before"));
    verdict vs = {0};
    segments_check(segs, nsegs, (const uint8_t(*)[32])roots, count, &vs);
    char ok_detail[96];
    snprintf(ok_detail, sizeof ok_detail, "%zu segment roots match their entries", nsegs);
    json_array_append_new(checks, verdict_check("segment roots", &vs, ok_detail));
    /* the cached subtree hashes (what proofs and roots are served from) against the entries */
    verdict vc = {0};
    if (nsegs && !vs.code && segs[nsegs - 1].last <= count) {
        uint8_t cached[32];
        if ((r = cit__audit_mth(s, 0, (uint64_t)segs[nsegs - 1].last, cached)) < 0)
            goto out;
        if (memcmp(cached, roots[nsegs - 1], 32) != 0)
            fail_at(&vc, CIT_E_AUDIT_ROOT_MISMATCH, 1,
                    "the cached subtree hashes (audit_nodes) disagree with the entries: proofs made from this "
                    "store would not verify");
    }
    json_array_append_new(checks, verdict_check("tree cache", &vc, "cached subtree hashes match the entries"));
    verdict vr = {0};
    json_t *rb = json_object();
    r = rollback_check(ctx, s, count, &vr, rb, false);
    json_array_append_new(checks, verdict_check("anti-rollback", &vr, "head file and NV counter agree with the store"));
    json_object_set_new(report, "anti_rollback", rb);
    json_object_set_new(report, "entries", json_integer(count));
    const verdict *first = v.code ? &v : vs.code ? &vs : vr.code ? &vr : vc.code ? &vc : NULL;
    if (first) {
        *code = first->code;
        *first_bad = first->first_bad;
        snprintf(detail, detail_cap, "%s", first->detail);
    }
    /* the roots recomputed from the entries, for the checkpoints */
    if (r == 0 && nsegs && (*roots_out = calloc(nsegs, sizeof **roots_out))) {
        for (size_t i = 0; i < nsegs; i++) {
            (*roots_out)[i].size = segs[i].last;
            (*roots_out)[i].valid = segs[i].last <= count;
            memcpy((*roots_out)[i].root, roots[i], 32);
        }
        *nroots = nsegs;
    }
out:
    free(roots);
    free(segs);
    return r;
}
