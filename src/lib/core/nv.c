/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NV indices as named objects: ordinary (bytes), counter (64-bit, only increments), bits
 * (64-bit, bits only get set) and extend (a hash chain like a PCR). The TPM enforces the type,
 * the size, the write lock and the optional password; the store keeps the name, the index
 * handle and the definition (object kind "nv", metadata).
 */
#include <errno.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/keys.h"
#include "crypto/crypto.h"
#include "store/intents.h"
#include "ctx.h"
#include "profiles.h"

#define NV_FIRST 0x01300000u
#define NV_LAST 0x013000ffu
/* An index's data size and offsets are UINT16 in TPM2_NV_DefineSpace/Write, so no index holds
 * more; the TPM's own limit (TPM2_PT_NV_INDEX_MAX, libtpms 2048) is queried and is smaller. */
#define NV_DATA_MAX UINT16_MAX
/* TPM2_PT_NV_BUFFER_MAX when the TPM does not report it: the PC Client minimum. */
#define NV_BUFFER_FALLBACK 512u
#define NV_BUFFER_CAP ((uint32_t)sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer))

typedef struct nv_def {
    uint32_t handle;
    uint32_t size;
    char type[16];
    bool auth;
} nv_def;

static const struct {
    const char *name;
    TPM2_NT nt;
} nv_types[] = {
    {"ordinary", TPM2_NT_ORDINARY}, {"counter", TPM2_NT_COUNTER}, {"bits", TPM2_NT_BITS}, {"extend", TPM2_NT_EXTEND}};

static int nv_type(const char *name, TPM2_NT *out) {
    for (size_t i = 0; i < ELEMENTSOF(nv_types); i++)
        if (strcmp(nv_types[i].name, name) == 0) {
            *out = nv_types[i].nt;
            return 0;
        }
    cit_error_set(CIT_E_USAGE, "unknown NV type: %s", name);
    cit_error_cause("--type takes ordinary, counter, bits or extend");
    return CIT_E_USAGE;
}

static int nv_error(cit_tpm *t, TSS2_RC rc, const char *what, const char *path) {
    uint32_t base = cit__rc_base(rc);
    bool tpm = (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER;
    int r;
    if (tpm && base == TPM2_RC_NV_RANGE)
        r = cit_error_set(CIT_E_NV_RANGE, "%s: the data does not fit in %s", what, path);
    else if (tpm && base == TPM2_RC_NV_LOCKED)
        r = cit_error_set(CIT_E_NV_LOCKED, "%s: %s is write-locked", what, path);
    else if (tpm && (base == TPM2_RC_NV_SPACE || base == TPM2_RC_NV_SIZE))
        r = cit_error_set(CIT_E_NV_NO_SPACE, "%s: the TPM has no room for %s", what, path);
    else if (tpm && base == TPM2_RC_ATTRIBUTES)
        r = cit_error_set(CIT_E_NV_TYPE, "%s: not possible for the type of %s", what, path);
    else
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "%s failed for %s", what, path);
    cit_error_context("path", "%s", path);
    cit_error_context("tpm_rc", "0x%08x", rc);
    return r;
}

static int load_def(const cit_object *o, nv_def *d) {
    json_t *m = json_loads(o->metadata, 0, NULL);
    memset(d, 0, sizeof(*d));
    int r = 0;
    if (!m || !json_is_integer(json_object_get(m, "handle")))
        r = cit_error_set(CIT_E_STORE_IO, "the NV definition of %s is damaged", o->path);
    else {
        d->handle = (uint32_t)json_integer_value(json_object_get(m, "handle"));
        d->size = (uint32_t)json_integer_value(json_object_get(m, "size"));
        snprintf(d->type, sizeof d->type, "%s", json_string_value(json_object_get(m, "type")) ?: "ordinary");
        d->auth = json_is_true(json_object_get(m, "auth"));
    }
    json_decref(m);
    return r;
}

static int find_nv(cit_ctx *ctx, const char *path, cit_object *o, nv_def *d) {
    int r = cit__ctx_find(ctx, path, o);
    if (r == 0)
        r = cit__require_kind(o, "nv");
    if (r == 0)
        r = load_def(o, d);
    return r;
}

/* The index as an ESYS_TR with its auth set (from auth_file when it has one). */
static int open_index(cit_ctx *ctx, const cit_object *o, const nv_def *d, const char *auth_file, ESYS_TR *out) {
    cit_tpm *t;
    int r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    if (d->auth && !auth_file) {
        cit_error_set(CIT_E_AUTH_FAIL, "%s needs its password", o->path);
        cit_error_cause("the index was defined with --auth-file; give the same with --auth-file");
        return CIT_E_AUTH_FAIL;
    }
    if (!d->auth && auth_file) {
        cit_error_set(CIT_E_USAGE, "%s has no password", o->path);
        return CIT_E_USAGE;
    }
    TSS2_RC rc = Esys_TR_FromTPMPublic(t->esys, d->handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, out);
    if (rc != TSS2_RC_SUCCESS) {
        cit_error_set(CIT_E_STORE_INCONSISTENT, "the NV index of %s is missing from the TPM", o->path);
        cit_error_context("handle", "0x%08x", d->handle);
        cit_error_context("path", "%s", o->path);
        return CIT_E_STORE_INCONSISTENT;
    }
    if (auth_file) {
        TPM2B_AUTH auth;
        r = cit__read_auth(auth_file, &auth);
        if (r < 0) {
            Esys_TR_Close(t->esys, out);
            return r;
        }
        Esys_TR_SetAuth(t->esys, *out, &auth);
        cit_memzero(&auth, sizeof auth);
    }
    return 0;
}

static void close_index(cit_ctx *ctx, ESYS_TR *h) {
    if (*h != ESYS_TR_NONE && ctx->tpm) {
        Esys_TR_SetAuth(ctx->tpm->esys, *h, &(TPM2B_AUTH){0});
        Esys_TR_Close(ctx->tpm->esys, h);
    }
}

/* The TPM's largest ordinary index (TPM2_PT_NV_INDEX_MAX) and the most one TPM2_NV_Read or
 * TPM2_NV_Write moves (TPM2_PT_NV_BUFFER_MAX), in one TPM2_GetCapability. A TPM that does not
 * report the buffer size gets NV_BUFFER_FALLBACK; one that does not report the index size is
 * held to one buffer, as citadel did before it split transfers. */
static int nv_limits(cit_tpm *t, uint32_t *index_max, uint32_t *buffer_max) {
    TPMS_CAPABILITY_DATA *cap = NULL;
    TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                    TPM2_PT_NV_INDEX_MAX, TPM2_PT_NV_BUFFER_MAX - TPM2_PT_NV_INDEX_MAX + 1, NULL, &cap);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot read the TPM's NV limits");
    uint32_t imax = 0, bmax = 0;
    for (uint32_t i = 0; i < cap->data.tpmProperties.count; i++) {
        const TPMS_TAGGED_PROPERTY *p = &cap->data.tpmProperties.tpmProperty[i];
        if (p->property == TPM2_PT_NV_INDEX_MAX)
            imax = p->value;
        else if (p->property == TPM2_PT_NV_BUFFER_MAX)
            bmax = p->value;
    }
    Esys_Free(cap);
    if (bmax == 0)
        bmax = NV_BUFFER_FALLBACK;
    if (bmax > NV_BUFFER_CAP) /* what a TPM2B_MAX_NV_BUFFER holds */
        bmax = NV_BUFFER_CAP;
    if (imax == 0)
        imax = bmax;
    if (imax > NV_DATA_MAX)
        imax = NV_DATA_MAX;
    *index_max = imax;
    *buffer_max = bmax;
    return 0;
}

static int free_nv_handle(cit_tpm *t, uint32_t *out) {
    TPMS_CAPABILITY_DATA *cap = NULL;
    TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, NV_FIRST,
                                    NV_LAST - NV_FIRST + 1, NULL, &cap);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot list NV indices");
    uint32_t h = NV_FIRST;
    for (uint32_t i = 0; i < cap->data.handles.count && cap->data.handles.handle[i] == h; i++)
        h++;
    Esys_Free(cap);
    if (h > NV_LAST) {
        cit_error_set(CIT_E_NV_NO_SPACE, "all of citadel's NV handles are in use");
        return CIT_E_NV_NO_SPACE;
    }
    *out = h;
    return 0;
}

_public_ int cit_nv_define(json_t **out, cit_ctx *ctx, const char *path, uint32_t size, const char *type,
                           const char *auth_file) {
    cit_error_clear();
    TPM2_NT nt = TPM2_NT_ORDINARY;
    int r = cit__check_path(path);
    if (r == 0)
        r = nv_type(type ? type : "ordinary", &nt);
    if (r < 0)
        return r;
    if (nt == TPM2_NT_COUNTER || nt == TPM2_NT_BITS)
        size = 8;
    else if (nt == TPM2_NT_EXTEND)
        size = 32; /* sha256 */
    else if (size == 0 || size > NV_DATA_MAX) {
        cit_error_set(CIT_E_USAGE, "--size must be 1 to %u bytes for an ordinary index", NV_DATA_MAX);
        if (size > NV_DATA_MAX)
            cit_error_cause("no NV index holds more, and the TPM's own limit (nv_index_max_size in `citadel tpm "
                            "capabilities`) is usually much lower");
        return CIT_E_USAGE;
    }
    cit_store *s;
    r = cit__ctx_store(ctx, &s);
    if (r == 0)
        r = cit__profile_check(ctx, path, NULL);
    if (r < 0)
        return r;
    cit_object ex = {0};
    if (cit__object_find(s, path, &ex) == 0) {
        cit__object_clear(&ex);
        cit_error_set(CIT_E_OBJECT_EXISTS, "object already exists: %s", path);
        cit_error_context("path", "%s", path);
        return CIT_E_OBJECT_EXISTS;
    }
    cit_error_clear();
    TPM2B_AUTH auth = {0};
    if (auth_file && (r = cit__read_auth(auth_file, &auth)) < 0)
        return r;
    if (ctx->plan) {
        cit_memzero(&auth, sizeof auth);
        static const char *const ops[] = {"TPM2_GetCapability (NV limits)", "TPM2_GetCapability (handles)",
                                          "TPM2_NV_DefineSpace", NULL};
        static const char *const ops_fixed[] = {"TPM2_GetCapability (handles)", "TPM2_NV_DefineSpace", NULL};
        *out = cit__plan("define an NV index", nt == TPM2_NT_ORDINARY ? ops : ops_fixed);
        return 0;
    }
    cit_tpm *t;
    uint32_t handle = 0, index_max = 0, buffer_max = 0;
    r = cit__ctx_tpm(ctx, &t);
    if (r == 0 && nt == TPM2_NT_ORDINARY && (r = nv_limits(t, &index_max, &buffer_max)) == 0 && size > index_max) {
        r = cit_error_set(CIT_E_USAGE, "--size must be 1 to %u bytes for an ordinary index on this TPM", index_max);
        cit_error_cause("the TPM's largest NV index (TPM2_PT_NV_INDEX_MAX) is %u bytes", index_max);
        cit_error_context("nv_index_max", "%u", index_max);
        cit_error_context("size", "%u", size);
        cit_error_step("define a smaller index, or split the data over several indices");
    }
    if (r == 0)
        r = free_nv_handle(t, &handle);
    if (r < 0) {
        cit_memzero(&auth, sizeof auth);
        return r;
    }
    TPM2B_NV_PUBLIC pub = {0};
    pub.nvPublic.nvIndex = handle;
    pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
    pub.nvPublic.attributes = (TPMA_NV)(TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE | TPMA_NV_WRITEDEFINE |
                                        ((TPMA_NV)nt << TPMA_NV_TPM2_NT_SHIFT));
    if (!auth.size)
        pub.nvPublic.attributes |= TPMA_NV_NO_DA;
    pub.nvPublic.dataSize = (UINT16)size;
    /* the index is defined before the store names it: the intent journal names it first, so a
     * crash in between leaves something `repair` can prove is ours */
    int64_t intent = 0;
    json_t *idet = json_pack("{s:I,s:s,s:b}", "size", (json_int_t)size, "type", type ? type : "ordinary", "auth",
                             auth_file != NULL);
    r = cit__intent_add(s, "nv.define", path, 0, handle, NULL, 0, idet, &intent);
    json_decref(idet);
    if (r < 0) {
        cit_memzero(&auth, sizeof auth);
        return r;
    }
    ESYS_TR nvh = ESYS_TR_NONE;
    TSS2_RC rc = Esys_NV_DefineSpace(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth,
                                     &pub, &nvh);
    cit_memzero(&auth, sizeof auth);
    if (rc != TSS2_RC_SUCCESS) {
        r = nv_error(t, rc, "TPM2_NV_DefineSpace", path);
        cit_error saved = *cit_error_last();
        cit__intent_clear(s, intent);
        cit_error_restore(&saved);
        return r;
    }
    Esys_TR_Close(t->esys, &nvh);
    /* the TPM is durable before the store names the index */
    r = cit__ctx_tpm_sync(ctx);
    if (r == 0)
        cit__fault_point("nv.define.defined");
    cit_object o = {0};
    snprintf(o.path, sizeof o.path, "%s", path);
    snprintf(o.kind, sizeof o.kind, "nv");
    snprintf(o.status, sizeof o.status, "active");
    snprintf(o.algorithm, sizeof o.algorithm, "%s", type ? type : "ordinary");
    o.version = 1;
    json_t *m = json_pack("{s:I,s:I,s:s,s:b}", "handle", (json_int_t)handle, "size", (json_int_t)size, "type",
                          o.algorithm, "auth", auth_file != NULL);
    o.metadata = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    if (r == 0)
        r = cit__store_begin(s);
    if (r == 0)
        r = cit__object_insert(s, &o);
    if (r == 0)
        r = cit__store_event(s, "nv.define", o.path, o.id, "ok", NULL);
    if (r == 0)
        r = cit__intent_clear(s, intent); /* with the commit */
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        cit_error saved = *cit_error_last();
        /* undo; the intent stays when the undo does not get through */
        if (cit__nv_undefine(ctx, handle) == 0 && cit__ctx_tpm_sync(ctx) == 0)
            cit__intent_clear(s, intent);
        cit_error_restore(&saved);
    } else {
        char hs[16];
        snprintf(hs, sizeof hs, "0x%08x", handle);
        *out = json_pack("{s:s,s:s,s:s,s:I,s:b}", "path", path, "handle", hs, "type", o.algorithm, "size",
                         (json_int_t)size, "password", auth_file != NULL);
    }
    cit__object_clear(&o);
    return r;
}

_public_ int cit_nv_write(json_t **out, cit_ctx *ctx, const char *path, const char *input, uint32_t offset,
                          const char *auth_file) {
    cit_error_clear();
    cit_object o = {0};
    nv_def d;
    int r = find_nv(ctx, path, &o, &d);
    uint8_t *data = NULL;
    size_t len = 0;
    ESYS_TR h = ESYS_TR_NONE;
    if (r < 0)
        goto done;
    bool bits = strcmp(d.type, "bits") == 0;
    if (!bits && strcmp(d.type, "ordinary") != 0) {
        r = cit_error_set(CIT_E_NV_TYPE, "%s is a %s index: write is for ordinary and bits indices", path, d.type);
        cit_error_step(strcmp(d.type, "counter") == 0 ? "use `citadel tpm nv increment %s`"
                                                     : "use `citadel tpm nv extend %s --input F`",
                       path);
        goto done;
    }
    r = cit__read_input(input, NV_DATA_MAX, "the data", false, &data, &len);
    if (r < 0)
        goto done;
    if (bits && (len != 8 || offset)) {
        r = cit_error_set(CIT_E_INPUT_INVALID, "a bits index takes exactly 8 bytes (the bits to set), at offset 0");
        goto done;
    }
    /* NV_DATA_MAX too: the TPM takes UINT16 offsets, whatever size the store records */
    if (!bits && ((uint64_t)offset + len > d.size || (uint64_t)offset + len > NV_DATA_MAX)) {
        r = cit_error_set(CIT_E_NV_RANGE, "%zu bytes at offset %u do not fit in %s (%u bytes)", len, offset, path,
                          d.size);
        cit_error_context("path", "%s", path);
        goto done;
    }
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_ReadPublic (NV)", "TPM2_GetCapability (NV limits)",
                                          "TPM2_NV_Write (once per TPM2_PT_NV_BUFFER_MAX bytes)", NULL};
        static const char *const ops_b[] = {"TPM2_ReadPublic (NV)", "TPM2_NV_SetBits", NULL};
        *out = cit__plan("write an NV index", bits ? ops_b : ops);
        goto done;
    }
    r = open_index(ctx, &o, &d, auth_file, &h);
    if (r < 0)
        goto done;
    if (bits) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | data[i];
        TSS2_RC rc = Esys_NV_SetBits(ctx->tpm->esys, h, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, v);
        if (rc != TSS2_RC_SUCCESS) {
            r = nv_error(ctx->tpm, rc, "TPM2_NV_SetBits", path);
            goto done;
        }
    } else {
        uint32_t index_max, chunk;
        r = nv_limits(ctx->tpm, &index_max, &chunk);
        if (r < 0)
            goto done;
        /* The range was checked above, so a later chunk fails only if the TPM changed under
         * us (another program locked or redefined the index): then say how much is written. */
        for (size_t done_len = 0; done_len < len; done_len += chunk) {
            size_t n = len - done_len < chunk ? len - done_len : chunk;
            TPM2B_MAX_NV_BUFFER buf = {.size = (UINT16)n};
            memcpy(buf.buffer, data + done_len, n);
            TSS2_RC rc = Esys_NV_Write(ctx->tpm->esys, h, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &buf,
                                       (UINT16)(offset + done_len));
            cit_memzero(&buf, sizeof buf);
            if (rc != TSS2_RC_SUCCESS) {
                r = nv_error(ctx->tpm, rc, "TPM2_NV_Write", path);
                if (done_len) {
                    cit_error_cause("the first %zu of %zu bytes were written before the failure", done_len, len);
                    cit_error_context("written", "%zu", done_len);
                }
                goto done;
            }
        }
    }
    *out = json_pack("{s:s,s:I,s:I}", "path", path, "written", (json_int_t)len, "offset", (json_int_t)offset);
done:
    close_index(ctx, &h);
    if (data) {
        cit_memzero(data, len);
        free(data);
    }
    cit__object_clear(&o);
    return r;
}

_public_ int cit_nv_read(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file, uint8_t **data,
                         size_t *len) {
    cit_error_clear();
    cit_object o = {0};
    nv_def d;
    ESYS_TR h = ESYS_TR_NONE;
    uint8_t *buf_all = NULL;
    size_t got = 0;
    int r = find_nv(ctx, path, &o, &d);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_ReadPublic (NV)", "TPM2_GetCapability (NV limits)",
                                          "TPM2_NV_Read (once per TPM2_PT_NV_BUFFER_MAX bytes)", NULL};
        *out = cit__plan("read an NV index", ops);
        goto done;
    }
    r = open_index(ctx, &o, &d, auth_file, &h);
    uint32_t index_max, chunk;
    if (r == 0)
        r = nv_limits(ctx->tpm, &index_max, &chunk);
    if (r < 0)
        goto done;
    buf_all = malloc(d.size ? d.size : 1);
    if (!buf_all) {
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        goto done;
    }
    for (got = 0; got < d.size;) {
        uint32_t n = d.size - got < chunk ? d.size - got : chunk;
        TPM2B_MAX_NV_BUFFER *buf = NULL;
        TSS2_RC rc = Esys_NV_Read(ctx->tpm->esys, h, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, (UINT16)n,
                                  (UINT16)got, &buf);
        if (rc != TSS2_RC_SUCCESS) {
            if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && cit__rc_base(rc) == TPM2_RC_NV_UNINITIALIZED) {
                r = cit_error_set(CIT_E_NV_TYPE, "%s has never been written", path);
                cit_error_cause("an NV index has no value until its first write, increment or extend");
            } else
                r = nv_error(ctx->tpm, rc, "TPM2_NV_Read", path);
            goto done;
        }
        if (buf->size != n) {
            unsigned short_n = buf->size;
            cit_memzero(buf, sizeof(*buf));
            Esys_Free(buf);
            r = cit_error_set(CIT_E_TPM_COMMAND, "TPM2_NV_Read of %s returned %u bytes instead of %u", path, short_n,
                              n);
            goto done;
        }
        memcpy(buf_all + got, buf->buffer, n);
        got += n;
        cit_memzero(buf, sizeof(*buf));
        Esys_Free(buf);
    }
    *data = TAKE_PTR(buf_all);
    *len = got;
    json_t *j = json_pack("{s:s,s:s,s:I}", "path", path, "type", d.type, "size", (json_int_t)*len);
    if ((strcmp(d.type, "counter") == 0 || strcmp(d.type, "bits") == 0) && *len == 8) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | (*data)[i];
        json_object_set_new(j, "value", json_integer((json_int_t)v));
    }
    *out = j;
done:
    close_index(ctx, &h);
    if (buf_all) {
        cit_memzero(buf_all, got);
        free(buf_all);
    }
    cit__object_clear(&o);
    return r;
}

_public_ int cit_nv_increment(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file) {
    cit_error_clear();
    cit_object o = {0};
    nv_def d;
    ESYS_TR h = ESYS_TR_NONE;
    int r = find_nv(ctx, path, &o, &d);
    if (r == 0 && strcmp(d.type, "counter") != 0) {
        r = cit_error_set(CIT_E_NV_TYPE, "%s is a %s index: only counters increment", path, d.type);
        cit_error_context("path", "%s", path);
    }
    if (r == 0 && ctx->plan) {
        static const char *const ops[] = {"TPM2_ReadPublic (NV)", "TPM2_NV_Increment", NULL};
        *out = cit__plan("increment an NV counter", ops);
        goto done;
    }
    if (r == 0)
        r = open_index(ctx, &o, &d, auth_file, &h);
    if (r < 0)
        goto done;
    TSS2_RC rc = Esys_NV_Increment(ctx->tpm->esys, h, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS) {
        r = nv_error(ctx->tpm, rc, "TPM2_NV_Increment", path);
        goto done;
    }
    TPM2B_MAX_NV_BUFFER *buf = NULL;
    rc = Esys_NV_Read(ctx->tpm->esys, h, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0, &buf);
    uint64_t v = 0;
    if (rc != TSS2_RC_SUCCESS || buf->size != 8) {
        Esys_Free(buf);
        r = rc != TSS2_RC_SUCCESS ? nv_error(ctx->tpm, rc, "TPM2_NV_Read after the increment", path)
                                  : cit_error_set(CIT_E_TPM_COMMAND, "the counter %s read back the wrong size", path);
        goto done;
    }
    for (int i = 0; i < 8; i++)
        v = v << 8 | buf->buffer[i];
    Esys_Free(buf);
    *out = json_pack("{s:s,s:I}", "path", path, "value", (json_int_t)v);
done:
    close_index(ctx, &h);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_nv_extend(json_t **out, cit_ctx *ctx, const char *path, const char *input, const char *auth_file) {
    cit_error_clear();
    cit_object o = {0};
    nv_def d;
    ESYS_TR h = ESYS_TR_NONE;
    uint8_t *data = NULL;
    size_t len = 0;
    int r = find_nv(ctx, path, &o, &d);
    if (r == 0 && strcmp(d.type, "extend") != 0) {
        r = cit_error_set(CIT_E_NV_TYPE, "%s is a %s index: only extend indices extend", path, d.type);
        cit_error_context("path", "%s", path);
    }
    if (r < 0)
        goto done;
    r = cit__read_input(input, 1024, "the data", true, &data, &len);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_ReadPublic (NV)", "TPM2_NV_Extend", NULL};
        *out = cit__plan("extend an NV index", ops);
        goto done;
    }
    r = open_index(ctx, &o, &d, auth_file, &h);
    if (r < 0)
        goto done;
    TPM2B_MAX_NV_BUFFER buf = {.size = (UINT16)len};
    memcpy(buf.buffer, data, len);
    TSS2_RC rc = Esys_NV_Extend(ctx->tpm->esys, h, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &buf);
    if (rc != TSS2_RC_SUCCESS) {
        r = nv_error(ctx->tpm, rc, "TPM2_NV_Extend", path);
        goto done;
    }
    TPM2B_MAX_NV_BUFFER *val = NULL;
    rc = Esys_NV_Read(ctx->tpm->esys, h, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, (UINT16)d.size, 0, &val);
    char *hex = rc == TSS2_RC_SUCCESS ? cit_hex_encode(val->buffer, val->size) : NULL;
    Esys_Free(val);
    *out = json_pack("{s:s,s:s}", "path", path, "value", hex ? hex : "");
    free(hex);
done:
    close_index(ctx, &h);
    free(data);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_nv_lock(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file) {
    cit_error_clear();
    cit_object o = {0};
    nv_def d;
    ESYS_TR h = ESYS_TR_NONE;
    int r = find_nv(ctx, path, &o, &d);
    if (r == 0 && ctx->plan) {
        static const char *const ops[] = {"TPM2_ReadPublic (NV)", "TPM2_NV_WriteLock", NULL};
        *out = cit__plan("write-lock an NV index", ops);
        goto done;
    }
    if (r == 0)
        r = open_index(ctx, &o, &d, auth_file, &h);
    if (r < 0)
        goto done;
    TSS2_RC rc = Esys_NV_WriteLock(ctx->tpm->esys, h, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS) {
        r = nv_error(ctx->tpm, rc, "TPM2_NV_WriteLock", path);
        goto done;
    }
    r = cit__store_event(ctx->store, "nv.lock", o.path, o.id, "ok", NULL);
    if (r == 0)
        *out = json_pack("{s:s,s:b}", "path", path, "write_locked", 1);
done:
    close_index(ctx, &h);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_nv_list(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "list NV indices (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    cit_object *list = NULL;
    size_t n = 0;
    r = cit__object_list(s, "nv", &list, &n);
    if (r < 0)
        return r;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        nv_def d;
        if (load_def(&list[i], &d) < 0) {
            cit_error_clear();
            continue;
        }
        char hs[16];
        snprintf(hs, sizeof hs, "0x%08x", d.handle);
        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:I,s:b}", "path", list[i].path, "handle", hs, "type", d.type,
                                           "size", (json_int_t)d.size, "password", d.auth));
    }
    cit__object_list_free(list, n);
    *out = json_pack("{s:o,s:I}", "indices", a, "count", (json_int_t)n);
    return 0;
}

/* Used by object deletion: the NV index an "nv" object defines (0 when none). */
uint32_t cit__nv_handle_of(const cit_object *o) {
    nv_def d;
    if (strcmp(o->kind, "nv") != 0 || load_def(o, &d) < 0) {
        cit_error_clear();
        return 0;
    }
    return d.handle;
}

int cit__nv_undefine(cit_ctx *ctx, uint32_t handle) {
    cit_tpm *t;
    int r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    ESYS_TR h = ESYS_TR_NONE;
    if (Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &h) != TSS2_RC_SUCCESS)
        return 0; /* already gone */
    TSS2_RC rc = Esys_NV_UndefineSpace(t->esys, ESYS_TR_RH_OWNER, h, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
    if (rc != TSS2_RC_SUCCESS) {
        Esys_TR_Close(t->esys, &h);
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot undefine NV index 0x%08x", handle);
    }
    return 0;
}
