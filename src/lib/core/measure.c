/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Measured Merkle Anchor (docs/mma.md): file measurements as entries of the audit log's
 * `measure` stream, checkpoints that seal them into a Merkle segment and extend the segment's
 * root into a PCR, the replay of those extends against the TPM, verification of a measurement
 * (inclusion proof, signed checkpoint, PCR replay) and the record of authority approvals.
 *
 * Entries (stream "measure", payload canonical JSON, keys sorted):
 *   measure.file        {path, kind, sha256, size}
 *   measure.enroll      {path, kind: "citadel", sha256, size, version, [pcr, bank, pcr_value],
 * [ima]} measure.checkpoint  {segment, tree_size, root, measurements, first_seqno, last_seqno,
 *                        [pcr, bank, pcr_before, extend_digest]}
 *   measure.approval    {authority, authority_name, pcrs, policy_digest, policy_ref,
 *                        signature_sha256, anchor}
 * The extend digest of a checkpoint is SHA-256("citadel.measure.checkpoint/v1" || 0x00 ||
 * origin || 0x00 || be64(tree_size) || root): domain-separated, bound to this log and its size.
 */
#define _GNU_SOURCE
#include "core/measure.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/merkle.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "core/audit.h"
#include "core/keys.h"
#include "crypto/crypto.h"
#include "attest/ima.h"

#define STREAM "measure"
#define EV_FILE "measure.file"
#define EV_ENROLL "measure.enroll"
#define EV_CHECKPOINT "measure.checkpoint"
#define EV_APPROVAL "measure.approval"
#define EXTEND_TAG "citadel.measure.checkpoint/v1"
#define FILE_MAX (4ull << 30) /* bytes hashed per measured file */
#define BATCH_MAX 1024        /* files per `measure file` */
#define KIND_MAX 32
#define DEFAULT_IMA_BINARY "/sys/kernel/security/ima/binary_runtime_measurements"
#define DEFAULT_IMA_ASCII "/sys/kernel/security/ima/ascii_runtime_measurements"

/* ---- the measure stream, read back ---- */

typedef struct mentry {
    int64_t seqno;
    char event[CIT_AUDIT_NAME_MAX + 1];
    json_t *p; /* the payload, NULL when it is not a JSON object */
} mentry;

typedef struct mlog {
    mentry *e;
    size_t n;
} mlog;

static void mlog_free(mlog *m) {
    for (size_t i = 0; i < m->n; i++)
        json_decref(m->e[i].p);
    free(m->e);
    memset(m, 0, sizeof *m);
}

static int mlog_load(cit_store *s, mlog *m) {
    memset(m, 0, sizeof *m);
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(
        s, &st,
        "SELECT seqno, event, payload, sealed FROM audit_entries WHERE stream = '" STREAM
        "' ORDER BY seqno");
    size_t cap = 0;
    int rc;
    while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (m->n == cap) {
            cap = cap ? cap * 2 : 64;
            mentry *ne = realloc(m->e, cap * sizeof *ne);
            if (!ne) {
                r = cit_error_set(CIT_E_INTERNAL, "out of memory");
                break;
            }
            m->e = ne;
        }
        mentry *e = &m->e[m->n++];
        memset(e, 0, sizeof *e);
        e->seqno = sqlite3_column_int64(st, 0);
        snprintf(e->event, sizeof e->event, "%s", (const char *)sqlite3_column_text(st, 1));
        if (!sqlite3_column_int(st, 3)) {
            json_t *p = json_loadb(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                                   0, NULL);
            if (json_is_object(p))
                e->p = p;
            else
                json_decref(p);
        }
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = cit__store_error(s, "cannot read the measure stream");
    sqlite3_finalize(st);
    if (r < 0)
        mlog_free(m);
    return r;
}

static bool is_measurement(const char *event) {
    return strcmp(event, EV_FILE) == 0 || strcmp(event, EV_ENROLL) == 0;
}

static const char *pstr(const json_t *p, const char *k) {
    return json_string_value(json_object_get(p, k));
}
static int64_t pint(const json_t *p, const char *k, int64_t dflt) {
    json_t *v = json_object_get(p, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* The tree size the latest measure checkpoint sealed (0: none yet). */
static int64_t last_sealed(const mlog *m, int64_t *checkpoint_seqno) {
    for (size_t i = m->n; i > 0; i--)
        if (strcmp(m->e[i - 1].event, EV_CHECKPOINT) == 0) {
            if (checkpoint_seqno)
                *checkpoint_seqno = m->e[i - 1].seqno;
            return pint(m->e[i - 1].p, "tree_size", 0);
        }
    if (checkpoint_seqno)
        *checkpoint_seqno = 0;
    return 0;
}

/* The PCRs measure enrolls and checkpoints name (a mask). */
static uint32_t anchor_mask(const mlog *m) {
    uint32_t mask = 0;
    for (size_t i = 0; i < m->n; i++) {
        int64_t pcr = pint(m->e[i].p, "pcr", -1);
        if ((strcmp(m->e[i].event, EV_ENROLL) == 0 || strcmp(m->e[i].event, EV_CHECKPOINT) == 0) &&
            pcr >= 0 && pcr < 24)
            mask |= 1u << pcr;
    }
    return mask;
}

/* ---- hashing ---- */

static bool hex32(const char *hex, uint8_t out[32]) {
    uint8_t *b = NULL;
    size_t n = 0;
    bool ok = hex && cit_hex_decode(&b, &n, hex) == 0 && n == 32;
    if (ok)
        memcpy(out, b, 32);
    free(b);
    return ok;
}

static json_t *hexj(const uint8_t *b, size_t n) {
    char *h = cit_hex_encode(b, n);
    json_t *j = json_string(h ? h : "");
    free(h);
    return j;
}

static void extend_digest(const char *origin, int64_t size, const uint8_t root[32],
                          uint8_t out[32]) {
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)((uint64_t)size >> (56 - 8 * i));
    static const uint8_t zero = 0;
    const void *p[5] = {EXTEND_TAG, &zero, origin, &zero, be};
    size_t l[5] = {sizeof EXTEND_TAG - 1, 1, strlen(origin), 1, 8};
    uint8_t h[32] = {0};
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned int ol = 0;
    if (m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1) {
        for (int i = 0; i < 5; i++)
            EVP_DigestUpdate(m, p[i], l[i]);
        EVP_DigestUpdate(m, root, 32);
        EVP_DigestFinal_ex(m, h, &ol);
    }
    EVP_MD_CTX_free(m);
    memcpy(out, h, 32);
}

static void pcr_extend_sw(uint8_t pcr[32], const uint8_t d[32]) {
    const void *p[2] = {pcr, d};
    size_t l[2] = {32, 32};
    uint8_t out[32];
    cit__sha256_parts(out, 2, p, l);
    memcpy(pcr, out, 32);
}

/* The digests of a regular file (sha256 always; sha1/sha384/sha512 too when all), read once. */
typedef struct fdigest {
    uint8_t sha1[20], sha256[32], sha384[48], sha512[64];
    uint64_t size;
} fdigest;

static int hash_file(const char *path, bool all, fdigest *d) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat stt;
    if (fd < 0 || fstat(fd, &stt) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", path, strerror(e));
        cit_error_context("file", "%s", path);
        if (e == ENOENT)
            cit_error_cause("the file does not exist");
        return CIT_E_INPUT_READ;
    }
    if (!S_ISREG(stt.st_mode)) {
        close(fd);
        cit_error_set(CIT_E_INPUT_READ, "%s is not a regular file", path);
        cit_error_cause(
            "measurements are of file contents; directories and devices are not measured");
        cit_error_context("file", "%s", path);
        return CIT_E_INPUT_READ;
    }
    const EVP_MD *mds[4] = {EVP_sha256(), EVP_sha1(), EVP_sha384(), EVP_sha512()};
    uint8_t *outs[4] = {d->sha256, d->sha1, d->sha384, d->sha512};
    EVP_MD_CTX *m[4] = {0};
    int nmd = all ? 4 : 1, r = 0;
    for (int i = 0; i < nmd; i++)
        if (!(m[i] = EVP_MD_CTX_new()) || EVP_DigestInit_ex(m[i], mds[i], NULL) != 1)
            r = cit__openssl_error(CIT_E_CRYPTO, "cannot start a digest");
    uint8_t *buf = r == 0 ? malloc(1u << 16) : NULL;
    if (r == 0 && !buf)
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    uint64_t total = 0;
    while (r == 0) {
        ssize_t k = read(fd, buf, 1u << 16);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", path, strerror(errno));
            cit_error_context("file", "%s", path);
            break;
        }
        if (k == 0)
            break;
        total += (uint64_t)k;
        if (total > FILE_MAX) {
            r = cit_error_set(CIT_E_INPUT_TOO_LARGE, "%s is larger than 4 GiB", path);
            cit_error_context("limit_bytes", "%llu", (unsigned long long)FILE_MAX);
            break;
        }
        for (int i = 0; i < nmd; i++)
            EVP_DigestUpdate(m[i], buf, (size_t)k);
    }
    for (int i = 0; i < nmd && r == 0; i++) {
        unsigned int ol = 0;
        EVP_DigestFinal_ex(m[i], outs[i], &ol);
    }
    for (int i = 0; i < 4; i++)
        EVP_MD_CTX_free(m[i]);
    free(buf);
    close(fd);
    d->size = total;
    return r;
}

static bool valid_kind(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n > KIND_MAX)
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
              *p == '.'))
            return false;
    return true;
}

static char *payload_text(json_t *p) { return json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS); }

/* Appends one entry whose payload is p as canonical JSON; its seqno into *seq. */
static int append_json(cit_ctx *ctx, const char *stream, const char *event, json_t *p, int64_t *seq) {
    char *text = payload_text(p);
    if (!text)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    cit_audit_record rec = {.stream = stream, .event = event, .payload = (const uint8_t *)text,
                            .payload_len = strlen(text)};
    int r = cit_audit_append_batch(ctx, &rec, 1, seq);
    free(text);
    return r;
}

/* ---- anchor PCRs ---- */

static int check_anchor_pcr(int64_t pcr) {
    if (pcr >= 8 && pcr <= 15 && pcr != 10)
        return 0;
    cit_error_set(CIT_E_MEASURE_PCR_REFUSED, "PCR %" PRId64 " cannot anchor measurements", pcr);
    if (pcr < 0 || pcr > 23)
        cit_error_cause("PCR indices are 0-23");
    else if (pcr < 8)
        cit_error_cause("PCRs 0-7 record the firmware's boot measurements; the event log would no "
                        "longer replay");
    else if (pcr == 10)
        cit_error_cause(
            "PCR 10 is the kernel's IMA PCR; its measurement list would no longer replay");
    else
        cit_error_cause(
            "PCRs 16-23 are resettable (16, 23) or locality-bound at locality 0: a reset and a "
            "replay of chosen extends would forge any state an authority approved");
    cit_error_context("pcr", "%" PRId64, pcr);
    return CIT_E_MEASURE_PCR_REFUSED;
}

static int pcr_now(cit_ctx *ctx, uint32_t pcr, uint8_t out[32]) {
    cit_tpm *t;
    int r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    char *values[24] = {0};
    r = cit__pcr_read(t, TPM2_ALG_SHA256, 1u << pcr, values);
    if (r == 0 && !hex32(values[pcr], out))
        r = cit_error_set(CIT_E_TPM_COMMAND, "PCR %u (sha256) could not be read", pcr);
    cit__pcr_values_free(values);
    return r;
}

/* ---- replay ---- */

typedef struct replay {
    uint32_t pcr;
    bool any;           /* the log names this PCR */
    int64_t base_seqno; /* the enroll (or first checkpoint) the chain starts from */
    uint8_t base[32];
    uint8_t value[32];       /* the replayed value */
    uint8_t before_last[32]; /* the value before the last checkpoint's extend */
    size_t checkpoints;      /* since the base */
    int64_t last_seqno, last_segment, last_tree_size;
    int64_t
        discontinuity; /* first checkpoint whose recorded pcr_before is not the replay (0: none) */
    int64_t root_changed; /* first checkpoint whose root no longer matches its entries (0: none) */
} replay;

/* Replays the extends of PCR pcr from the log: from the latest enroll naming it (its recorded
 * value), else from the first checkpoint's recorded pcr_before; each checkpoint's extend digest
 * is recomputed from the Merkle root of the entries now in the store, so a changed entry under a
 * checkpoint makes the replay differ from the TPM. */
static int replay_pcr(cit_store *s, const mlog *m, uint32_t pcr, replay *rp) {
    memset(rp, 0, sizeof *rp);
    rp->pcr = pcr;
    char origin[128];
    int r = cit__audit_origin(s, origin, sizeof origin);
    if (r < 0)
        return r;
    size_t start = m->n;
    for (size_t i = m->n; i > 0; i--)
        if (strcmp(m->e[i - 1].event, EV_ENROLL) == 0 && pint(m->e[i - 1].p, "pcr", -1) == pcr &&
            hex32(pstr(m->e[i - 1].p, "pcr_value"), rp->base)) {
            start = i - 1;
            break;
        }
    bool have_base = start < m->n;
    if (have_base)
        rp->base_seqno = m->e[start].seqno;
    else
        start = 0;
    memcpy(rp->value, rp->base, 32);
    for (size_t i = start; i < m->n; i++) {
        const mentry *e = &m->e[i];
        if (strcmp(e->event, EV_CHECKPOINT) != 0 || pint(e->p, "pcr", -1) != pcr)
            continue;
        uint8_t before[32], recorded_root[32], root[32], d[32];
        bool have_before = hex32(pstr(e->p, "pcr_before"), before);
        if (!have_base) {
            if (!have_before)
                continue;
            memcpy(rp->base, before, 32);
            memcpy(rp->value, before, 32);
            rp->base_seqno = e->seqno;
            have_base = true;
        }
        if (!rp->discontinuity && have_before && memcmp(before, rp->value, 32) != 0)
            rp->discontinuity = e->seqno;
        int64_t size = pint(e->p, "tree_size", 0);
        if (size <= 0 || (r = cit__audit_mth(s, 0, (uint64_t)size, root)) < 0) {
            if (r < 0)
                return r;
            continue;
        }
        if (!rp->root_changed &&
            (!hex32(pstr(e->p, "root"), recorded_root) || memcmp(recorded_root, root, 32) != 0))
            rp->root_changed = e->seqno;
        extend_digest(origin, size, root, d);
        memcpy(rp->before_last, rp->value, 32);
        pcr_extend_sw(rp->value, d);
        rp->checkpoints++;
        rp->last_seqno = e->seqno;
        rp->last_segment = pint(e->p, "segment", 0);
        rp->last_tree_size = size;
    }
    rp->any = have_base;
    return 0;
}

/* The replay of pcr compared with the TPM: a result object; *match whether they agree. */
static int replay_check(cit_ctx *ctx, cit_store *s, const mlog *m, uint32_t pcr, json_t **out,
                        bool *match) {
    replay rp;
    uint8_t tpm[32];
    int r = replay_pcr(s, m, pcr, &rp);
    if (r == 0)
        r = pcr_now(ctx, pcr, tpm);
    if (r < 0)
        return r;
    *match = memcmp(tpm, rp.value, 32) == 0 && !rp.root_changed;
    json_t *j = json_pack("{s:i,s:s,s:o,s:o,s:b,s:I,s:I,s:o}", "pcr", (int)pcr, "bank", "sha256",
                          "replayed", hexj(rp.value, 32), "tpm", hexj(tpm, 32), "matches", *match,
                          "checkpoints", (json_int_t)rp.checkpoints, "base_seqno",
                          (json_int_t)rp.base_seqno, "base_value", hexj(rp.base, 32));
    if (rp.last_seqno)
        json_object_set_new(j, "last_checkpoint",
                            json_pack("{s:I,s:I,s:I}", "seqno", (json_int_t)rp.last_seqno,
                                      "segment", (json_int_t)rp.last_segment, "tree_size",
                                      (json_int_t)rp.last_tree_size));
    if (rp.discontinuity)
        json_object_set_new(j, "discontinuity_seqno", json_integer(rp.discontinuity));
    const char *why = NULL;
    if (rp.root_changed)
        why = "entries under a measure checkpoint changed after it was sealed (its root no longer "
              "matches)";
    else if (*match)
        why = "the TPM's PCR is the replay of every measure checkpoint since the base";
    else if (rp.checkpoints && memcmp(tpm, rp.before_last, 32) == 0)
        why = "the last checkpoint's extend never reached the TPM (a crash between the log and the "
              "TPM)";
    else if (rp.checkpoints && memcmp(tpm, rp.base, 32) == 0)
        why = "the PCR is back at its base value: the machine rebooted (enroll again) or the TPM "
              "state was restored";
    else if (rp.discontinuity)
        why = "the PCR was extended outside citadel between measure checkpoints";
    else
        why = "the PCR holds extends the log does not record: extended outside citadel, or the "
              "store was rolled back";
    json_object_set_new(j, "detail", json_string(why));
    if (rp.root_changed)
        json_object_set_new(j, "root_changed_seqno", json_integer(rp.root_changed));
    *out = j;
    return 0;
}

/* Identities bound to pcr (their pcr_bind lists it): [{identity, authorized_by}]. */
static json_t *anchored_identities(cit_store *s, uint32_t pcr) {
    json_t *a = json_array();
    cit_object *list = NULL;
    size_t n = 0;
    if (cit__object_list(s, "key", &list, &n) < 0) {
        cit_error_clear();
        return a;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *meta = list[i].metadata ? json_loads(list[i].metadata, 0, NULL) : NULL;
        json_t *id = json_object_get(meta, "identity");
        const char *pb = json_string_value(json_object_get(id, "pcr_bind"));
        uint32_t mask = 0;
        if (pb && cit__pcr_parse_list(pb, &mask) == 0 && (mask >> pcr & 1)) {
            const char *ab = json_string_value(json_object_get(id, "authorized_by"));
            json_array_append_new(
                a, json_pack("{s:s,s:s?}", "identity", list[i].path, "authorized_by", ab));
        }
        cit_error_clear();
        json_decref(meta);
    }
    cit__object_list_free(list, n);
    return a;
}

/* ---- measure file ---- */

static json_t *file_payload(const char *given, const char *kind, const fdigest *d) {
    char real[PATH_MAX];
    const char *path = realpath(given, real) ? real : given;
    json_t *p = json_pack("{s:s,s:s,s:o,s:I}", "path", path, "kind", kind, "sha256",
                          hexj(d->sha256, 32), "size", (json_int_t)d->size);
    return p;
}

_public_ int cit_measure_file(json_t **out, cit_ctx *ctx, const char *const *paths, size_t n,
                              const char *kind) {
    cit_error_clear();
    if (!kind)
        kind = "file";
    if (!valid_kind(kind)) {
        cit_error_set(CIT_E_USAGE, "invalid measurement kind: %s", kind);
        cit_error_cause("kinds are 1 to %d characters of a-z, 0-9, '-', '_' and '.' (binary, "
                        "config, library, ...)",
                        KIND_MAX);
        return CIT_E_USAGE;
    }
    if (n == 0 || n > BATCH_MAX) {
        cit_error_set(CIT_E_USAGE,
                      n ? "at most %d files per measurement" : "give the files to measure",
                      BATCH_MAX);
        return CIT_E_USAGE;
    }
    json_t **payloads = calloc(n, sizeof *payloads);
    char **texts = calloc(n, sizeof *texts);
    cit_audit_record *recs = calloc(n, sizeof *recs);
    int r = payloads && texts && recs ? 0 : cit_error_set(CIT_E_INTERNAL, "out of memory");
    /* hash first: a missing file fails before anything is written */
    for (size_t i = 0; i < n && r == 0; i++) {
        fdigest d;
        if ((r = hash_file(paths[i], false, &d)) < 0)
            break;
        payloads[i] = file_payload(paths[i], kind, &d);
        texts[i] = payload_text(payloads[i]);
        if (!texts[i])
            r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        recs[i] = (cit_audit_record){.stream = STREAM,
                                     .event = EV_FILE,
                                     .payload = (const uint8_t *)texts[i],
                                     .payload_len = texts[i] ? strlen(texts[i]) : 0};
    }
    cit_store *s = NULL;
    static const char *const ops[] = {NULL};
    int64_t first = 0;
    if (r == 0 && (r = cit__ctx_store_or_plan(ctx, &s, out, "append measurements to the audit log",
                                              ops)) != 0)
        goto done;
    if (r == 0)
        r = cit_audit_append_batch(ctx, recs, n, &first);
    if (r == 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++) {
            json_object_set_new(payloads[i], "seqno", json_integer(first + (json_int_t)i));
            json_array_append(a, payloads[i]);
        }
        mlog m;
        int64_t pending = 0;
        if (mlog_load(s, &m) == 0) {
            int64_t sealed = last_sealed(&m, NULL);
            for (size_t i = 0; i < m.n; i++)
                pending += is_measurement(m.e[i].event) && m.e[i].seqno > sealed;
            mlog_free(&m);
        }
        cit_error_clear(); /* the pending count is information; the measurements are written */
        *out = json_pack("{s:s,s:o,s:I,s:s}", "stream", STREAM, "measurements", a, "pending",
                         (json_int_t)pending, "next_step",
                         "seal them: `citadel tpm measure checkpoint --extend-pcr 14`");
    }
done:
    for (size_t i = 0; i < n; i++) {
        if (payloads)
            json_decref(payloads[i]);
        if (texts)
            free(texts[i]);
    }
    free(payloads);
    free(texts);
    free(recs);
    return r < 0 ? r : 0;
}

/* ---- IMA cross-check ---- */

typedef struct ima_env {
    const fdigest *d;
    const char *path;
    json_t *found;     /* entries with our digest */
    json_t *other;     /* entries of our path with another digest */
    size_t violations; /* violation entries of our path */
    size_t files;
} ima_env;

static int ima_cb(void *envp, const cit__ima_file *f) {
    ima_env *env = envp;
    env->files++;
    const uint8_t *want = NULL;
    size_t wl = 0;
    if (strcmp(f->alg, "sha256") == 0)
        want = env->d->sha256, wl = 32;
    else if (strcmp(f->alg, "sha1") == 0)
        want = env->d->sha1, wl = 20;
    else if (strcmp(f->alg, "sha384") == 0)
        want = env->d->sha384, wl = 48;
    else if (strcmp(f->alg, "sha512") == 0)
        want = env->d->sha512, wl = 64;
    bool same_path =
        strlen(env->path) == f->path_len && memcmp(env->path, f->path, f->path_len) == 0;
    bool same_digest = want && wl == f->digest_len && memcmp(want, f->digest, wl) == 0;
    json_t *x = NULL;
    if (same_digest || (same_path && !f->violation)) {
        char *h = cit_hex_encode(f->digest, f->digest_len);
        char fd[160];
        snprintf(fd, sizeof fd, "%s:%s", f->alg, h ? h : "");
        free(h);
        x = json_pack("{s:i,s:i,s:s,s:s,s:s%}", "entry", (int)f->index, "pcr", (int)f->pcr,
                      "template", f->template_name, "file_digest", fd, "path",
                      (const char *)f->path, f->path_len);
    }
    if (same_digest)
        json_array_append_new(env->found, x);
    else if (x)
        json_array_append_new(env->other, x);
    else if (same_path && f->violation)
        env->violations++;
    return 0;
}

/* The verdict of the IMA cross-check into *out: measured, not-measured, mismatch, unavailable. */
static int ima_check(const char *list, bool list_given, const char *exe_path, const fdigest *d,
                     json_t **out) {
    const char *tried[2] = {list, NULL};
    if (!list_given) {
        tried[0] = DEFAULT_IMA_BINARY;
        tried[1] = DEFAULT_IMA_ASCII;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    const char *used = NULL;
    int err = 0;
    for (int i = 0; i < 2 && tried[i] && !used; i++) {
        int e = cit_read_file(tried[i], CIT_IMA_MAX, &buf, &len);
        if (e == 0)
            used = tried[i];
        else if (!err || e != -ENOENT)
            err = e;
    }
    if (!used) {
        char why[256];
        snprintf(why, sizeof why, "%s: %s%s", tried[0], strerror(-err),
                 err == -EACCES ? " (reading the IMA log needs root)"
                 : err == -ENOENT && !list_given
                     ? " (IMA is not enabled, or securityfs is not mounted)"
                     : "");
        *out =
            json_pack("{s:s,s:s,s:s}", "verdict", "unavailable", "list", tried[0], "detail", why);
        return 0;
    }
    ima_env env = {.d = d, .path = exe_path, .found = json_array(), .other = json_array()};
    int r = cit__ima_each_file(buf, len, used, ima_cb, &env);
    free(buf);
    if (r < 0) {
        json_decref(env.found);
        json_decref(env.other);
        cit_error_context("file", "%s", used);
        return r;
    }
    const char *verdict, *detail;
    char db[256];
    if (json_array_size(env.found)) {
        verdict = "measured";
        detail = "the kernel measured this binary's contents (the same digest) before it ran";
    } else if (json_array_size(env.other)) {
        verdict = "mismatch";
        snprintf(db, sizeof db,
                 "the kernel measured %s with another digest, and never this binary's", exe_path);
        detail = db;
    } else {
        verdict = "not-measured";
        snprintf(db, sizeof db,
                 "the IMA log (%zu file entries) does not name this binary%s: the IMA policy does "
                 "not measure it",
                 env.files, env.violations ? " except as a measurement violation" : "");
        detail = db;
    }
    *out = json_pack("{s:s,s:s,s:s,s:o,s:I}", "verdict", verdict, "list", used, "detail", detail,
                     "entries", json_array_size(env.found) ? env.found : env.other, "file_entries",
                     (json_int_t)env.files);
    if (json_array_size(env.found))
        json_decref(env.other);
    else
        json_decref(env.found);
    if (env.violations)
        json_object_set_new(*out, "violations", json_integer((json_int_t)env.violations));
    return 0;
}

/* ---- measure enroll ---- */

_public_ int cit_measure_enroll(json_t **out, cit_ctx *ctx, const cit_measure_enroll_options *o) {
    cit_error_clear();
    int r = 0;
    if (o->pcr >= 0 && (r = check_anchor_pcr(o->pcr)) < 0)
        return r;
    if ((o->require_ima || o->ima_log) && !o->verify_ima) {
        cit_error_set(CIT_E_USAGE, "--ima-log and --require-ima go with --verify-ima");
        return CIT_E_USAGE;
    }
    /* the running binary itself: /proc/self/exe opens the executed inode, even if the file was
     * replaced on disk since; its name is what IMA recorded at exec */
    const char *bin = o->binary ? o->binary : "/proc/self/exe";
    char exe[PATH_MAX] = "";
    if (o->binary) {
        if (!realpath(o->binary, exe))
            snprintf(exe, sizeof exe, "%s", o->binary);
    } else {
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k < 0)
            return cit_error_set(CIT_E_INPUT_READ,
                                 "cannot name the running binary (/proc/self/exe): %s",
                                 strerror(errno));
        exe[k] = 0;
    }
    fdigest d;
    if ((r = hash_file(bin, o->verify_ima, &d)) < 0)
        return r;
    json_t *ima = NULL;
    if (o->verify_ima && (r = ima_check(o->ima_log, o->ima_log != NULL, exe, &d, &ima)) < 0)
        return r;
    const char *verdict = ima ? json_string_value(json_object_get(ima, "verdict")) : NULL;
    if (verdict && strcmp(verdict, "mismatch") == 0) {
        cit_error_set(CIT_E_MEASURE_IMA_MISMATCH,
                      "the kernel's IMA log measured %s with other contents", exe);
        cit_error_cause("%s", json_string_value(json_object_get(ima, "detail")));
        cit_error_context("ima_list", "%s", json_string_value(json_object_get(ima, "list")));
        json_decref(ima);
        return CIT_E_MEASURE_IMA_MISMATCH;
    }
    if (verdict && o->require_ima && strcmp(verdict, "measured") != 0) {
        cit_error_set(CIT_E_MEASURE_IMA_NOT_FOUND, "--require-ima: the IMA verdict is %s", verdict);
        cit_error_cause("%s", json_string_value(json_object_get(ima, "detail")));
        json_decref(ima);
        return CIT_E_MEASURE_IMA_NOT_FOUND;
    }
    cit_store *s;
    static const char *const ops[] = {
        "TPM2_PCR_Read (the anchor PCR's value now: the replay's base)", NULL};
    if ((r = cit__ctx_store_or_plan(
             ctx, &s, out, "measure the running citadel binary into the audit log", ops)) != 0) {
        json_decref(ima);
        return r < 0 ? r : 0;
    }
    json_t *p = json_pack("{s:s,s:s,s:o,s:I,s:s}", "path", exe, "kind", "citadel", "sha256",
                          hexj(d.sha256, 32), "size", (json_int_t)d.size, "version", CIT_VERSION);
    if (o->pcr >= 0) {
        uint8_t v[32];
        if ((r = pcr_now(ctx, (uint32_t)o->pcr, v)) < 0) {
            json_decref(p);
            json_decref(ima);
            return r;
        }
        json_object_set_new(p, "pcr", json_integer(o->pcr));
        json_object_set_new(p, "bank", json_string("sha256"));
        json_object_set_new(p, "pcr_value", hexj(v, 32));
    }
    if (ima) {
        /* the verdict and where it came from; the entries stay in the result only */
        json_object_set_new(p, "ima",
                            json_pack("{s:O,s:O}", "verdict", json_object_get(ima, "verdict"),
                                      "list", json_object_get(ima, "list")));
        json_t *first = json_array_get(json_object_get(ima, "entries"), 0);
        if (first && strcmp(verdict, "measured") == 0)
            json_object_set(json_object_get(p, "ima"), "entry", json_object_get(first, "entry"));
    }
    int64_t seq = 0;
    r = append_json(ctx, STREAM, EV_ENROLL, p, &seq);
    if (r < 0) {
        json_decref(p);
        json_decref(ima);
        return r;
    }
    json_object_set_new(p, "seqno", json_integer(seq));
    if (ima)
        json_object_set_new(p, "ima", ima);
    char step[160];
    if (o->pcr >= 0)
        snprintf(step, sizeof step,
                 "seal it and extend PCR %d: `citadel tpm measure checkpoint --extend-pcr %d`",
                 o->pcr, o->pcr);
    else
        snprintf(step, sizeof step, "seal it: `citadel tpm measure checkpoint`");
    json_object_set_new(p, "next_step", json_string(step));
    *out = p;
    return 0;
}

/* ---- measure checkpoint ---- */

static int latest_segment(cit_store *s, int64_t *id, int64_t *last, uint8_t root[32]) {
    sqlite3_stmt *st = NULL;
    int r = cit__store_prepare(
        s, &st, "SELECT id, last_seqno, root FROM audit_segments ORDER BY id DESC LIMIT 1");
    *id = 0;
    if (r == 0 && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 2) == 32) {
        *id = sqlite3_column_int64(st, 0);
        *last = sqlite3_column_int64(st, 1);
        memcpy(root, sqlite3_column_blob(st, 2), 32);
    }
    sqlite3_finalize(st);
    return r;
}

_public_ int cit_measure_checkpoint(json_t **out, cit_ctx *ctx, int pcr) {
    cit_error_clear();
    int r = 0;
    if (pcr >= 0 && (r = check_anchor_pcr(pcr)) < 0)
        return r;
    cit_store *s;
    if ((r = cit__ctx_store(ctx, &s)) < 0)
        return r;
    mlog m;
    if ((r = mlog_load(s, &m)) < 0)
        return r;
    int64_t prev_cp = 0, sealed = last_sealed(&m, &prev_cp), first = 0, last = 0, count = 0;
    for (size_t i = 0; i < m.n; i++)
        if (is_measurement(m.e[i].event) && m.e[i].seqno > sealed) {
            first = first ? first : m.e[i].seqno;
            last = m.e[i].seqno;
            count++;
        }
    mlog_free(&m);
    if (!count) {
        cit_error_set(CIT_E_MEASURE_NOTHING_PENDING,
                      "no measurements since the last measure checkpoint%s",
                      prev_cp ? "" : " (there are none yet)");
        if (prev_cp)
            cit_error_cause("the measure checkpoint at entry %" PRId64
                            " sealed the log at tree size %" PRId64,
                            prev_cp, sealed);
        return CIT_E_MEASURE_NOTHING_PENDING;
    }
    if (ctx->plan) {
        static const char *const ops_x[] = {
            "TPM2_NV_Increment (audit rollback counter)", "TPM2_PCR_Read",
            "TPM2_PCR_Extend (the segment's extend digest)", "TPM2_PCR_Read", NULL};
        static const char *const ops[] = {"TPM2_NV_Increment (audit rollback counter)", NULL};
        *out = cit__plan("seal the pending measurements into an audit segment",
                         pcr >= 0 ? ops_x : ops);
        return 0;
    }
    uint8_t before[32];
    if (pcr >= 0 && (r = pcr_now(ctx, (uint32_t)pcr, before)) < 0)
        return r;
    /* seal: a new segment, or the latest one when the log is already sealed up to its head
     * (someone ran `audit segments close` after the measurements) */
    json_t *seg = NULL;
    r = cit_audit_segments_close(&seg, ctx);
    json_decref(seg);
    if (r == CIT_E_AUDIT_NOTHING_TO_CLOSE) {
        cit_error_clear();
        r = 0;
    }
    if (r < 0)
        return r;
    int64_t segment = 0, size = 0;
    uint8_t root[32], d[32];
    if ((r = latest_segment(s, &segment, &size, root)) < 0)
        return r;
    if (!segment || size < last)
        return cit_error_set(CIT_E_INTERNAL, "the sealed segment does not cover the measurements");
    char origin[128];
    if ((r = cit__audit_origin(s, origin, sizeof origin)) < 0)
        return r;
    extend_digest(origin, size, root, d);
    json_t *p =
        json_pack("{s:I,s:I,s:o,s:I,s:I,s:I}", "segment", (json_int_t)segment, "tree_size",
                  (json_int_t)size, "root", hexj(root, 32), "measurements", (json_int_t)count,
                  "first_seqno", (json_int_t)first, "last_seqno", (json_int_t)last);
    if (pcr >= 0) {
        json_object_set_new(p, "pcr", json_integer(pcr));
        json_object_set_new(p, "bank", json_string("sha256"));
        json_object_set_new(p, "pcr_before", hexj(before, 32));
        json_object_set_new(p, "extend_digest", hexj(d, 32));
    }
    /* the record first, then the extend: the log never lags the TPM; a crash in between leaves
     * an extend the replay names as missing, never one the log does not explain */
    int64_t seq = 0;
    r = append_json(ctx, STREAM, EV_CHECKPOINT, p, &seq);
    if (r < 0) {
        json_decref(p);
        return r;
    }
    json_object_set_new(p, "checkpoint_seqno", json_integer(seq));
    if (pcr >= 0) {
        _cleanup_free_ char *dh = cit_hex_encode(d, 32);
        json_t *x = NULL;
        if ((r = cit_pcr_extend(&x, ctx, (uint32_t)pcr, NULL, dh, "sha256")) < 0) {
            cit_error_cause(
                "measure checkpoint entry %" PRId64 " records an extend the TPM did not take", seq);
            cit_error_step("`citadel tpm measure rollback-check` shows the PCR against the log");
            json_decref(p);
            return r;
        }
        uint8_t expect[32];
        memcpy(expect, before, 32);
        pcr_extend_sw(expect, d);
        const char *now = json_string_value(json_object_get(x, "value"));
        uint8_t nowb[32];
        json_object_set_new(p, "pcr_value", json_string(now ? now : ""));
        json_object_set_new(p, "pcr_value_matches",
                            json_boolean(hex32(now, nowb) && memcmp(nowb, expect, 32) == 0));
        json_decref(x);
        json_t *ids = anchored_identities(s, (uint32_t)pcr);
        char step[256];
        const char *auth =
            json_string_value(json_object_get(json_array_get(ids, 0), "authorized_by"));
        snprintf(step, sizeof step,
                 "identities bound to PCR %d sign again once their authority approves this state: "
                 "`citadel tpm "
                 "policy approve --authority %s --pcr %d`",
                 pcr, auth ? auth : "AUTH", pcr);
        json_object_set_new(p, "locked_identities", ids);
        json_object_set_new(p, "next_step", json_string(step));
    } else
        json_object_set_new(p, "next_step",
                            json_string("sign it: `citadel tpm measure sign --identity NAME`"));
    *out = p;
    return 0;
}

/* ---- measure sign ---- */

_public_ int cit_measure_sign(json_t **out, cit_ctx *ctx, const char *identity, int64_t segment) {
    cit_error_clear();
    if (!identity) {
        cit_error_set(CIT_E_USAGE, "--identity is required");
        return CIT_E_USAGE;
    }
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    json_t *sealed = NULL;
    if (!segment && !ctx->plan) {
        /* an approval not yet under a segment is sealed first (with whatever came before it),
         * so the signature covers the approval that unlocked the signer */
        int64_t id = 0, last = 0, open = 0;
        uint8_t root[32];
        mlog m;
        if ((r = latest_segment(s, &id, &last, root)) < 0 || (r = mlog_load(s, &m)) < 0)
            return r;
        for (size_t i = 0; i < m.n; i++)
            open += m.e[i].seqno > last && strcmp(m.e[i].event, EV_APPROVAL) == 0;
        mlog_free(&m);
        if (open && (r = cit_audit_segments_close(&sealed, ctx)) < 0)
            return r;
    }
    cit_object o = {0};
    json_t *meta = NULL;
    if (cit__object_find(s, identity, &o) == 0 && o.metadata)
        meta = json_loads(o.metadata, 0, NULL);
    cit_error_clear();
    cit__object_clear(&o);
    json_t *idj = json_object_get(meta, "identity");
    const char *pb = json_string_value(json_object_get(idj, "pcr_bind"));
    const char *ab = json_string_value(json_object_get(idj, "authorized_by"));
    r = cit_audit_sign(out, ctx, identity, segment);
    if (r == CIT_E_POLICY_FAIL) {
        cit_error_cause("%s signs only in PCR states%s%s approved%s", identity, ab ? " " : "",
                        ab ? ab : "", pb ? "" : " by its policy");
        if (pb && ab)
            cit_error_step(
                "review what was measured since the last approval (`citadel tpm measure status`), "
                "then "
                "approve the new state: `citadel tpm policy approve --authority %s --pcr %s`",
                ab, pb);
    }
    if (r < 0 || ctx->plan) {
        json_decref(sealed);
        json_decref(meta);
        return r;
    }
    if (sealed)
        json_object_set_new(*out, "sealed_segment",
                            json_pack("{s:O,s:O}", "segment", json_object_get(sealed, "segment"),
                                      "tree_size", json_object_get(sealed, "tree_size")));
    json_decref(sealed);
    if (pb)
        json_object_set_new(*out, "anchor",
                            json_pack("{s:s,s:s?}", "pcr_bind", pb, "authorized_by", ab));
    json_decref(meta);
    return 0;
}

/* ---- measure verify ---- */

static json_t *check_json(const char *name, const char *status, int code, const char *detail) {
    json_t *c = json_pack("{s:s,s:s,s:s}", "check", name, "status", status, "detail", detail);
    if (code) {
        char b[16];
        cit_code_format(b, sizeof b, code);
        json_object_set_new(c, "code", json_string(b));
    }
    return c;
}

_public_ int cit_measure_verify(json_t **out, cit_ctx *ctx, int64_t seqno) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    cit_audit_row row;
    if ((r = cit__audit_row_get(s, seqno, &row)) < 0)
        return r;
    bool meas = strcmp(row.stream, STREAM) == 0 && is_measurement(row.event);
    json_t *p = meas && !row.sealed
                    ? json_loadb((const char *)row.payload, row.payload_len, 0, NULL)
                    : NULL;
    if (!meas || !json_is_object(p)) {
        cit_error_set(CIT_E_MEASURE_NOT_MEASUREMENT, "audit entry %" PRId64 " is not a measurement",
                      seqno);
        cit_error_cause("it is a %s entry of the %s stream", row.event, row.stream);
        cit_error_context("seqno", "%" PRId64, seqno);
        cit__audit_row_clear(&row);
        json_decref(p);
        return CIT_E_MEASURE_NOT_MEASUREMENT;
    }
    char event[CIT_AUDIT_NAME_MAX + 1];
    snprintf(event, sizeof event, "%s", row.event);
    cit__audit_row_clear(&row);
    json_t *checks = json_array();
    json_t *report = json_pack("{s:I,s:s,s:o,s:o}", "seqno", (json_int_t)seqno, "event", event,
                               "measurement", p, "checks", checks);
    int code = 0;
    char detail[320] = "";
    /* 1. the measure checkpoint that sealed it, and its PCR */
    mlog m;
    if ((r = mlog_load(s, &m)) < 0)
        goto fail;
    const mentry *cp = NULL;
    for (size_t i = 0; i < m.n && !cp; i++)
        if (strcmp(m.e[i].event, EV_CHECKPOINT) == 0 && pint(m.e[i].p, "tree_size", 0) >= seqno)
            cp = &m.e[i];
    if (cp) {
        json_object_set_new(report, "sealed_by",
                            json_pack("{s:I,s:I,s:I}", "checkpoint_seqno", (json_int_t)cp->seqno,
                                      "segment", (json_int_t)pint(cp->p, "segment", 0), "tree_size",
                                      (json_int_t)pint(cp->p, "tree_size", 0)));
    } else
        json_object_set_new(report, "sealed_by", json_null());
    /* 2. the latest signed checkpoint that covers it: signature, then the inclusion proof */
    sqlite3_stmt *st = NULL;
    int64_t cpid = 0;
    if ((r = cit__store_prepare(
             s, &st,
             "SELECT id FROM audit_checkpoints WHERE tree_size >= ? ORDER BY id DESC "
             "LIMIT 1")) < 0) {
        mlog_free(&m);
        goto fail;
    }
    sqlite3_bind_int64(st, 1, seqno);
    if (sqlite3_step(st) == SQLITE_ROW)
        cpid = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!cpid) {
        code = CIT_E_AUDIT_NOT_SIGNED;
        snprintf(detail, sizeof detail, "no signed checkpoint covers entry %" PRId64 "%s", seqno,
                 cp ? "" : " (it is not sealed by a measure checkpoint yet)");
        json_array_append_new(checks, check_json("signed checkpoint", "fail", code, detail));
    } else {
        int64_t size = 0;
        uint8_t root[32];
        char *signer = NULL, why[256] = "";
        int c = cit__audit_checkpoint_check(s, cpid, &size, root, &signer, why, sizeof why);
        if (c < 0 && c != CIT_E_AUDIT_CHECKPOINT_INVALID &&
            c != CIT_E_AUDIT_CHECKPOINT_KEY_UNKNOWN && c != CIT_E_AUDIT_NOT_SIGNED) {
            r = c;
            mlog_free(&m);
            goto fail;
        }
        char ok[256];
        snprintf(ok, sizeof ok, "checkpoint %" PRId64 " (tree size %" PRId64 ") is signed by %s",
                 cpid, size, signer ? signer : "?");
        json_array_append_new(
            checks, check_json("signed checkpoint", c ? "fail" : "pass", c, c ? why : ok));
        json_object_set_new(report, "checkpoint",
                            json_pack("{s:I,s:I,s:s?}", "checkpoint", (json_int_t)cpid, "tree_size",
                                      (json_int_t)size, "identity", signer));
        free(signer);
        if (c) {
            code = c;
            snprintf(detail, sizeof detail, "%s", why);
        } else {
            json_t *proof = NULL;
            int pr = cit_audit_prove(&proof, ctx, seqno, size);
            const char *proot = json_string_value(json_object_get(proof, "root"));
            uint8_t pb[32];
            bool match = pr == 0 && hex32(proot, pb) && memcmp(pb, root, 32) == 0;
            if (pr < 0 && pr != CIT_E_AUDIT_PROOF_INVALID && !cit_error_last()->code) {
                json_decref(proof);
                r = pr;
                mlog_free(&m);
                goto fail;
            }
            char pd[256];
            if (match)
                snprintf(
                    pd, sizeof pd,
                    "an RFC 9162 inclusion proof of %zu hashes leads from the entry to the signed "
                    "root",
                    json_array_size(json_object_get(proof, "proof")));
            else
                snprintf(pd, sizeof pd,
                         "the entry does not lead to the signed root of checkpoint %" PRId64 ": %s",
                         cpid, pr < 0 ? cit_error_last()->message : "the tree under it changed");
            int pc = match ? 0 : pr < 0 ? pr : CIT_E_AUDIT_ROOT_MISMATCH;
            json_t *ic = check_json("inclusion", match ? "pass" : "fail", pc, pd);
            if (proof)
                json_object_set(ic, "proof", json_object_get(proof, "proof"));
            json_array_append_new(checks, ic);
            json_decref(proof);
            if (!match && !code) {
                code = pc;
                snprintf(detail, sizeof detail, "%s", pd);
            }
        }
    }
    /* 3. the PCR replay, when the sealing checkpoint was extended into a PCR */
    int64_t pcr = cp ? pint(cp->p, "pcr", -1) : -1;
    if (pcr >= 0 && pcr < 24) {
        json_t *rj = NULL;
        bool match = false;
        if ((r = replay_check(ctx, s, &m, (uint32_t)pcr, &rj, &match)) < 0) {
            mlog_free(&m);
            goto fail;
        }
        char rd[320];
        snprintf(rd, sizeof rd, "PCR %" PRId64 ": %s", pcr,
                 json_string_value(json_object_get(rj, "detail")));
        json_t *c = check_json("pcr replay", match ? "pass" : "fail",
                               match ? 0 : CIT_E_MEASURE_PCR_MISMATCH, rd);
        json_object_update(c, rj);
        json_decref(rj);
        json_array_append_new(checks, c);
        if (!match && !code) {
            code = CIT_E_MEASURE_PCR_MISMATCH;
            snprintf(detail, sizeof detail, "%s", rd);
        }
    } else
        json_array_append_new(checks, check_json("pcr replay", "skipped", 0,
                                                 cp ? "its measure checkpoint extended no PCR"
                                                    : "not sealed by a measure checkpoint yet"));
    mlog_free(&m);
    /* 4. the file on disk now (information: the record stays valid when the file changes) */
    const char *path = pstr(p, "path"), *want = pstr(p, "sha256");
    fdigest d;
    if (path) {
        int hr = hash_file(path, false, &d);
        _cleanup_free_ char *now = hr == 0 ? cit_hex_encode(d.sha256, 32) : NULL;
        cit_error_clear();
        bool same = now && want && strcmp(now, want) == 0;
        json_array_append_new(
            checks, check_json("file now", "info", 0,
                               hr < 0 ? "the file cannot be read now"
                               : same ? "the file on disk still has the measured digest"
                                      : "the file on disk changed since it was measured"));
    }
    json_object_set_new(report, "valid", json_boolean(code == 0));
    *out = report;
    if (code) {
        char cb[16];
        cit_code_format(cb, sizeof cb, code);
        json_object_set_new(report, "code", json_string(cb));
        json_object_set_new(report, "detail", json_string(detail));
        cit_error_set(code, "measurement %" PRId64 " does not verify: %s", seqno, detail);
        if (code == CIT_E_AUDIT_NOT_SIGNED)
            cit_error_step("seal and sign: `citadel tpm measure checkpoint --extend-pcr 14`, then "
                           "`citadel tpm measure "
                           "sign --identity NAME`");
        return code;
    }
    return 0;
fail:
    json_decref(report);
    return r;
}

/* ---- rollback-check ---- */

_public_ int cit_measure_rollback_check(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_NV_Read (audit rollback counter)",
                                          "TPM2_PCR_Read (anchor PCRs)", NULL};
        *out = cit__plan("check the audit log and the measure PCRs for rollback (reads only)", ops);
        return 0;
    }
    json_t *rb = NULL;
    int ar = cit_audit_rollback(&rb, ctx, false);
    cit_error saved = *cit_error_last();
    if (ar < 0 && !rb)
        return ar;
    mlog m;
    if ((r = mlog_load(s, &m)) < 0) {
        json_decref(rb);
        return r;
    }
    uint32_t mask = anchor_mask(&m);
    json_t *pcrs = json_array();
    bool all = true;
    for (uint32_t i = 0; i < 24 && r == 0; i++) {
        if (!(mask >> i & 1))
            continue;
        json_t *rj = NULL;
        bool match = false;
        if ((r = replay_check(ctx, s, &m, i, &rj, &match)) == 0) {
            json_array_append_new(pcrs, rj);
            all &= match;
        }
    }
    mlog_free(&m);
    if (r < 0) {
        json_decref(rb);
        json_decref(pcrs);
        return r;
    }
    bool audit_ok = ar == 0;
    json_t *report = json_pack("{s:o,s:o,s:b,s:b}", "audit", rb, "pcrs", pcrs, "rolled_back",
                               !audit_ok || !all, "valid", audit_ok && all);
    if (!mask)
        json_object_set_new(report, "note",
                            json_string("no measure checkpoint has extended a PCR yet"));
    *out = report;
    if (!audit_ok) {
        cit_error_restore(&saved);
        cit_error_step("the PCR replay is in the report: `--json` shows both checks");
        return ar;
    }
    if (!all) {
        size_t i;
        json_t *v;
        json_array_foreach(pcrs, i, v) if (!json_is_true(json_object_get(v, "matches"))) {
            cit_error_set(CIT_E_MEASURE_PCR_MISMATCH,
                          "PCR %d does not hold the value the measure checkpoints replay to",
                          (int)json_integer_value(json_object_get(v, "pcr")));
            cit_error_cause("%s", json_string_value(json_object_get(v, "detail")));
            cit_error_context("replayed", "%s", json_string_value(json_object_get(v, "replayed")));
            cit_error_context("tpm", "%s", json_string_value(json_object_get(v, "tpm")));
            break;
        }
        return CIT_E_MEASURE_PCR_MISMATCH;
    }
    return 0;
}

/* ---- status ---- */

_public_ int cit_measure_status(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    mlog m;
    if ((r = mlog_load(s, &m)) < 0)
        return r;
    int64_t cpseq = 0, sealed = last_sealed(&m, &cpseq);
    json_t *list = json_array(), *pending = json_array(), *approvals = json_array();
    for (size_t i = 0; i < m.n; i++) {
        const mentry *e = &m.e[i];
        if (is_measurement(e->event)) {
            json_t *x = json_pack("{s:I,s:s,s:s?,s:s?,s:s?}", "seqno", (json_int_t)e->seqno,
                                  "event", e->event, "path", pstr(e->p, "path"), "kind",
                                  pstr(e->p, "kind"), "sha256", pstr(e->p, "sha256"));
            if (e->seqno > sealed)
                json_array_append(pending, x);
            json_array_append_new(list, x);
        } else if (strcmp(e->event, EV_APPROVAL) == 0)
            json_array_append_new(approvals,
                                  json_pack("{s:I,s:s?,s:O?}", "seqno", (json_int_t)e->seqno,
                                            "authority", pstr(e->p, "authority"), "pcrs",
                                            json_object_get(e->p, "pcrs")));
    }
    /* keep the listing bounded: the newest 100 */
    json_int_t total = (json_int_t)json_array_size(list);
    while (json_array_size(list) > 100)
        json_array_remove(list, 0);
    json_t *j = json_pack("{s:I,s:o,s:o,s:o}", "measurements_total", total, "pending", pending,
                          "measurements", list, "approvals", approvals);
    json_object_set_new(
        j, "last_checkpoint",
        cpseq ? json_pack("{s:I,s:I}", "seqno", (json_int_t)cpseq, "tree_size", (json_int_t)sealed)
              : json_null());
    uint32_t mask = anchor_mask(&m);
    json_t *anchors = json_array();
    for (uint32_t i = 0; i < 24 && r == 0; i++) {
        if (!(mask >> i & 1))
            continue;
        json_t *rj = NULL;
        bool match = false;
        if ((r = replay_check(ctx, s, &m, i, &rj, &match)) == 0) {
            json_object_set_new(rj, "identities", anchored_identities(s, i));
            json_array_append_new(anchors, rj);
        }
    }
    mlog_free(&m);
    json_object_set_new(j, "anchors", anchors);
    if (r < 0) {
        json_decref(j);
        return r;
    }
    *out = j;
    return 0;
}

/* ---- approvals in the log ---- */

int cit__measure_record_approval(cit_ctx *ctx, const char *authority,
                                 const char *authority_name_hex, const json_t *pcrs,
                                 const char *policy_digest_hex, const char *policy_ref_hex,
                                 const uint8_t *sig, size_t sig_len, int64_t *seqno,
                                 const char **event, json_t **anchor) {
    cit_store *s;
    int r = cit__ctx_store(ctx, &s);
    if (r < 0)
        return r;
    mlog m;
    if ((r = mlog_load(s, &m)) < 0)
        return r;
    uint32_t mask = anchor_mask(&m);
    json_t *anchors = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(pcrs, i, v) {
        int64_t idx = json_integer_value(json_object_get(v, "index"));
        const char *bank = json_string_value(json_object_get(v, "bank"));
        if (idx < 0 || idx >= 24 || !(mask >> idx & 1) || !bank || strcmp(bank, "sha256") != 0)
            continue;
        replay rp;
        uint8_t approved[32];
        if ((r = replay_pcr(s, &m, (uint32_t)idx, &rp)) < 0)
            break;
        bool explained = hex32(json_string_value(json_object_get(v, "value")), approved) &&
                         memcmp(approved, rp.value, 32) == 0 && !rp.root_changed;
        json_t *a =
            json_pack("{s:I,s:o,s:b,s:I}", "pcr", (json_int_t)idx, "replayed", hexj(rp.value, 32),
                      "matches_replay", explained, "checkpoints", (json_int_t)rp.checkpoints);
        if (rp.last_seqno)
            json_object_set_new(a, "last_checkpoint",
                                json_pack("{s:I,s:I,s:I}", "seqno", (json_int_t)rp.last_seqno,
                                          "segment", (json_int_t)rp.last_segment, "tree_size",
                                          (json_int_t)rp.last_tree_size));
        json_array_append_new(anchors, a);
    }
    mlog_free(&m);
    if (r < 0) {
        json_decref(anchors);
        return r;
    }
    uint8_t sh[32];
    const void *pp[1] = {sig};
    size_t pl[1] = {sig_len};
    cit__sha256_parts(sh, 1, pp, pl);
    bool measured = json_array_size(anchors) > 0;
    json_t *p = json_pack("{s:s,s:s,s:O,s:s,s:s,s:o}", "authority", authority, "authority_name",
                          authority_name_hex ? authority_name_hex : "", "pcrs", pcrs,
                          "policy_digest", policy_digest_hex ? policy_digest_hex : "", "policy_ref",
                          policy_ref_hex ? policy_ref_hex : "", "signature_sha256", hexj(sh, 32));
    if (measured)
        json_object_set(p, "anchor", anchors);
    r = append_json(ctx, measured ? STREAM : "default", measured ? EV_APPROVAL : "policy.approve", p, seqno);
    json_decref(p);
    if (r < 0) {
        json_decref(anchors);
        cit_error_cause(
            "an approval is written into the audit log before it is stored; nothing was approved");
        return r;
    }
    *event = measured ? EV_APPROVAL : "policy.approve";
    if (anchor && measured)
        *anchor = anchors;
    else
        json_decref(anchors);
    return 0;
}
