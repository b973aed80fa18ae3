/* SPDX-License-Identifier: Apache-2.0 */
#include "tcti_libtpms.h"

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>
#include <pthread.h>
#include <string.h>
#include <tss2/tss2_tpm2_types.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/error.h"

#define TCTI_LIBTPMS_MAGIC 0x43495456544d5031ULL /* "CITVTMP1" */

typedef struct tcti_libtpms {
    TSS2_TCTI_CONTEXT_COMMON_V2 common;
    unsigned char *resp;
    uint32_t resp_len;
    uint32_t resp_bufsize;
    bool have_response;
    bool running;
} tcti_libtpms;

/* The one libtpms instance of this process and the blobs its callbacks see. */
static pthread_mutex_t tpm_lock = PTHREAD_MUTEX_INITIALIZER;
static tcti_libtpms *active;
static cit_vtpm_state cb_state;

void cit__vtpm_state_clear(cit_vtpm_state *s) {
    for (int i = 0; i < s->n; i++) {
        cit_memzero(s->blobs[i].data, s->blobs[i].len);
        free(s->blobs[i].data);
    }
    memset(s, 0, sizeof(*s));
}

static cit_vtpm_blob *blob_find(cit_vtpm_state *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->blobs[i].name, name) == 0)
            return &s->blobs[i];
    return NULL;
}

static int blob_put(cit_vtpm_state *s, const char *name, const uint8_t *data, size_t len) {
    cit_vtpm_blob *b = blob_find(s, name);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, data, len);
    if (!b) {
        if (s->n >= CIT_VTPM_MAX_BLOBS || strlen(name) >= sizeof(b->name)) {
            free(copy);
            return -1;
        }
        b = &s->blobs[s->n++];
        snprintf(b->name, sizeof(b->name), "%s", name);
    } else {
        cit_memzero(b->data, b->len);
        free(b->data);
    }
    b->data = copy;
    b->len = len;
    return 0;
}

static void blob_del(cit_vtpm_state *s, const char *name) {
    cit_vtpm_blob *b = blob_find(s, name);
    if (!b)
        return;
    cit_memzero(b->data, b->len);
    free(b->data);
    int i = (int)(b - s->blobs);
    memmove(&s->blobs[i], &s->blobs[i + 1], (size_t)(s->n - i - 1) * sizeof(*b));
    s->n--;
}

static int state_copy(cit_vtpm_state *dst, const cit_vtpm_state *src) {
    memset(dst, 0, sizeof(*dst));
    for (int i = 0; src && i < src->n; i++)
        if (blob_put(dst, src->blobs[i].name, src->blobs[i].data, src->blobs[i].len) < 0) {
            cit__vtpm_state_clear(dst);
            return -1;
        }
    return 0;
}

int cit__tcti_libtpms_blob_get(const char *name, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    pthread_mutex_lock(&tpm_lock);
    cit_vtpm_blob *b = active ? blob_find(&cb_state, name) : NULL;
    int r = active ? 0 : -1;
    if (b) {
        *out = malloc(b->len ? b->len : 1);
        if (*out) {
            memcpy(*out, b->data, b->len);
            *len = b->len;
        } else
            r = -1;
    }
    pthread_mutex_unlock(&tpm_lock);
    return r;
}

int cit__tcti_libtpms_blob_put(const char *name, const uint8_t *data, size_t len) {
    pthread_mutex_lock(&tpm_lock);
    int r = active ? blob_put(&cb_state, name, data, len) : -1;
    pthread_mutex_unlock(&tpm_lock);
    return r;
}

/* ---- libtpms NVRAM callbacks: serve and collect blobs in memory ---- */

static TPM_RESULT cb_nvram_init(void) { return TPM_SUCCESS; }

static TPM_RESULT cb_nvram_loaddata(unsigned char **data, uint32_t *length, uint32_t tpm_number,
                                    const char *name) {
    cit_vtpm_blob *b = blob_find(&cb_state, name);
    if (!b)
        return TPM_RETRY; /* "no such state yet": libtpms manufactures or skips */
    /* libtpms releases this buffer with free(). */
    unsigned char *copy = malloc(b->len ? b->len : 1);
    if (!copy)
        return TPM_FAIL;
    memcpy(copy, b->data, b->len);
    *data = copy;
    *length = (uint32_t)b->len;
    return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_storedata(const unsigned char *data, uint32_t length,
                                     uint32_t tpm_number, const char *name) {
    return blob_put(&cb_state, name, data, length) < 0 ? TPM_FAIL : TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_deletename(uint32_t tpm_number, const char *name, TPM_BOOL must_exist) {
    if (must_exist && !blob_find(&cb_state, name))
        return TPM_FAIL;
    blob_del(&cb_state, name);
    return TPM_SUCCESS;
}

static TPM_RESULT cb_io_init(void) { return TPM_SUCCESS; }

static TPM_RESULT cb_io_getlocality(TPM_MODIFIER_INDICATOR *loc, uint32_t tpm_number) {
    *loc = 0;
    return TPM_SUCCESS;
}

static TPM_RESULT cb_io_getphysicalpresence(TPM_BOOL *pp, uint32_t tpm_number) {
    *pp = 0;
    return TPM_SUCCESS;
}

/* ---- TCTI ---- */

static tcti_libtpms *tcti_cast(TSS2_TCTI_CONTEXT *ctx) {
    tcti_libtpms *t = (tcti_libtpms *)ctx;
    if (!t || t->common.v1.magic != TCTI_LIBTPMS_MAGIC)
        return NULL;
    return t;
}

static TSS2_RC tcti_transmit(TSS2_TCTI_CONTEXT *ctx, size_t size, const uint8_t *cmd) {
    tcti_libtpms *t = tcti_cast(ctx);
    if (!t)
        return TSS2_TCTI_RC_BAD_CONTEXT;
    if (!cmd || size == 0 || size > UINT32_MAX)
        return TSS2_TCTI_RC_BAD_VALUE;
    if (t->have_response)
        return TSS2_TCTI_RC_BAD_SEQUENCE;
    pthread_mutex_lock(&tpm_lock);
    TPM_RESULT rc = TPMLIB_Process(&t->resp, &t->resp_len, &t->resp_bufsize, (unsigned char *)cmd,
                                   (uint32_t)size);
    pthread_mutex_unlock(&tpm_lock);
    if (rc != TPM_SUCCESS)
        return TSS2_TCTI_RC_IO_ERROR;
    t->have_response = true;
    return TSS2_RC_SUCCESS;
}

static TSS2_RC tcti_receive(TSS2_TCTI_CONTEXT *ctx, size_t *size, uint8_t *resp, int32_t timeout) {
    tcti_libtpms *t = tcti_cast(ctx);
    if (!t)
        return TSS2_TCTI_RC_BAD_CONTEXT;
    if (!size)
        return TSS2_TCTI_RC_BAD_REFERENCE;
    if (!t->have_response)
        return TSS2_TCTI_RC_BAD_SEQUENCE;
    if (!resp) { /* size query */
        *size = t->resp_len;
        return TSS2_RC_SUCCESS;
    }
    if (*size < t->resp_len)
        return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
    memcpy(resp, t->resp, t->resp_len);
    *size = t->resp_len;
    t->have_response = false;
    return TSS2_RC_SUCCESS;
}

static void tcti_finalize(TSS2_TCTI_CONTEXT *ctx) {
    tcti_libtpms *t = tcti_cast(ctx);
    if (!t)
        return;
    pthread_mutex_lock(&tpm_lock);
    if (t->running)
        TPMLIB_Terminate();
    t->running = false;
    if (active == t)
        active = NULL;
    cit__vtpm_state_clear(&cb_state);
    pthread_mutex_unlock(&tpm_lock);
    free(t->resp);
    t->resp = NULL;
    t->common.v1.magic = 0;
}

static TSS2_RC tcti_cancel(TSS2_TCTI_CONTEXT *ctx) { return TSS2_TCTI_RC_NOT_IMPLEMENTED; }

static TSS2_RC tcti_get_poll_handles(TSS2_TCTI_CONTEXT *ctx, TSS2_TCTI_POLL_HANDLE *h, size_t *n) {
    return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC tcti_set_locality(TSS2_TCTI_CONTEXT *ctx, uint8_t locality) {
    return locality == 0 ? TSS2_RC_SUCCESS : TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC tcti_make_sticky(TSS2_TCTI_CONTEXT *ctx, TPM2_HANDLE *h, uint8_t sticky) {
    return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

/* Sends a bare command built by hand (Startup/Shutdown) and returns the TPM response code. */
static uint32_t send_su(tcti_libtpms *t, uint32_t cc, uint16_t su) {
    uint8_t cmd[12] = {0x80, 0x01, 0, 0, 0, 12, (uint8_t)(cc >> 24), (uint8_t)(cc >> 16),
                       (uint8_t)(cc >> 8), (uint8_t)cc, (uint8_t)(su >> 8), (uint8_t)su};
    pthread_mutex_lock(&tpm_lock);
    TPM_RESULT rc = TPMLIB_Process(&t->resp, &t->resp_len, &t->resp_bufsize, cmd, sizeof cmd);
    pthread_mutex_unlock(&tpm_lock);
    if (rc != TPM_SUCCESS || t->resp_len < 10)
        return 0xffffffffu;
    return (uint32_t)t->resp[6] << 24 | (uint32_t)t->resp[7] << 16 | (uint32_t)t->resp[8] << 8 |
           t->resp[9];
}

int cit__tcti_libtpms_new(TSS2_TCTI_CONTEXT **out, const cit_vtpm_state *state, bool startup_clear) {
    static struct libtpms_callbacks cbs = {
        .sizeOfStruct = sizeof(struct libtpms_callbacks),
        .tpm_nvram_init = cb_nvram_init,
        .tpm_nvram_loaddata = cb_nvram_loaddata,
        .tpm_nvram_storedata = cb_nvram_storedata,
        .tpm_nvram_deletename = cb_nvram_deletename,
        .tpm_io_init = cb_io_init,
        .tpm_io_getlocality = cb_io_getlocality,
        .tpm_io_getphysicalpresence = cb_io_getphysicalpresence,
    };
    tcti_libtpms *t = calloc(1, sizeof(*t));
    if (!t)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    t->common.v1.magic = TCTI_LIBTPMS_MAGIC;
    t->common.v1.version = 2;
    t->common.v1.transmit = tcti_transmit;
    t->common.v1.receive = tcti_receive;
    t->common.v1.finalize = tcti_finalize;
    t->common.v1.cancel = tcti_cancel;
    t->common.v1.getPollHandles = tcti_get_poll_handles;
    t->common.v1.setLocality = tcti_set_locality;
    t->common.makeSticky = tcti_make_sticky;

    pthread_mutex_lock(&tpm_lock);
    if (active) {
        pthread_mutex_unlock(&tpm_lock);
        free(t);
        return cit_error_set(CIT_E_BACKEND_UNAVAILABLE,
                             "the in-process TPM is already in use in this process");
    }
    bool resume = false;
    if (state_copy(&cb_state, state) < 0) {
        pthread_mutex_unlock(&tpm_lock);
        free(t);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    /* Only an orderly Shutdown(STATE) leaves state that Startup(STATE) can resume. */
    resume = !startup_clear && blob_find(&cb_state, TPM_PERMANENT_ALL_NAME) != NULL;
    TPM_RESULT rc = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
    if (rc == TPM_SUCCESS)
        rc = TPMLIB_RegisterCallbacks(&cbs);
    if (rc == TPM_SUCCESS)
        rc = TPMLIB_MainInit();
    if (rc != TPM_SUCCESS) {
        cit__vtpm_state_clear(&cb_state);
        pthread_mutex_unlock(&tpm_lock);
        free(t);
        cit_error_set(state && state->n ? CIT_E_VTPM_STATE_CORRUPT : CIT_E_BACKEND_UNAVAILABLE,
                      "libtpms could not start the TPM");
        cit_error_context("libtpms_rc", "0x%08x", rc);
        return cit_error_last()->code;
    }
    t->running = true;
    active = t;
    pthread_mutex_unlock(&tpm_lock);

    uint32_t trc = send_su(t, TPM2_CC_Startup, resume ? TPM2_SU_STATE : TPM2_SU_CLEAR);
    if (resume && trc != TPM2_RC_SUCCESS) /* no saved state to resume (e.g. after a crash) */
        trc = send_su(t, TPM2_CC_Startup, TPM2_SU_CLEAR);
    if (trc != TPM2_RC_SUCCESS && trc != TPM2_RC_INITIALIZE) {
        tcti_finalize((TSS2_TCTI_CONTEXT *)t);
        free(t);
        cit_error_set(trc == TPM2_RC_FAILURE ? CIT_E_TPM_FAILURE_MODE : CIT_E_VTPM_STATE_CORRUPT,
                      "the in-process TPM did not start");
        cit_error_context("tpm_rc", "0x%08x", trc);
        return cit_error_last()->code;
    }
    *out = (TSS2_TCTI_CONTEXT *)t;
    return 0;
}

int cit__tcti_libtpms_shutdown(TSS2_TCTI_CONTEXT *tcti, cit_vtpm_state *out) {
    tcti_libtpms *t = tcti_cast(tcti);
    if (!t || !t->running)
        return cit_error_set(CIT_E_INTERNAL, "in-process TPM is not running");
    t->have_response = false;
    uint32_t trc = send_su(t, TPM2_CC_Shutdown, TPM2_SU_STATE);
    if (trc != TPM2_RC_SUCCESS) {
        cit_error_set(CIT_E_TPM_COMMAND, "TPM2_Shutdown(STATE) failed");
        cit_error_context("tpm_rc", "0x%08x", trc);
        return cit_error_last()->code;
    }
    pthread_mutex_lock(&tpm_lock);
    /* Ask libtpms for the current blobs too, in case it keeps some only in memory. */
    unsigned char *buf = NULL;
    uint32_t len = 0;
    /* these buffers hold the TPM's seeds: wiped before they are freed */
    if (TPMLIB_GetState(TPMLIB_STATE_PERMANENT, &buf, &len) == TPM_SUCCESS && buf && len)
        blob_put(&cb_state, TPM_PERMANENT_ALL_NAME, buf, len);
    cit_memzero(buf, buf ? len : 0);
    free(buf);
    buf = NULL;
    len = 0;
    if (TPMLIB_GetState(TPMLIB_STATE_SAVE_STATE, &buf, &len) == TPM_SUCCESS && buf && len)
        blob_put(&cb_state, TPM_SAVESTATE_NAME, buf, len);
    cit_memzero(buf, buf ? len : 0);
    free(buf);
    int r = state_copy(out, &cb_state);
    pthread_mutex_unlock(&tpm_lock);
    return r < 0 ? cit_error_set(CIT_E_INTERNAL, "out of memory") : 0;
}
