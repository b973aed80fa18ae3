/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A connection to one TPM through tpm2-tss ESYS, whatever the backend, and the helpers every
 * TPM-using module shares: error mapping, the storage primary key, capabilities.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <tss2/tss2_esys.h>

typedef enum {
    CIT_BACKEND_AUTO,
    CIT_BACKEND_DEVICE,
    CIT_BACKEND_VTPM,
    CIT_BACKEND_MOCK,
    CIT_BACKEND_SWTPM,
} cit_backend;

const char *cit__backend_name(cit_backend b);
/* 0 or CIT_E_BACKEND_UNKNOWN (recorded). */
int cit__backend_parse(const char *s, cit_backend *out);
/* The device backend's node, when it is usable (/dev/tpmrm0), else NULL. */
const char *cit__device_usable(void);

typedef struct cit_tpm_options {
    cit_backend backend;    /* resolved: never AUTO */
    const char *tcti;       /* swtpm / device configuration ("swtpm:host=...,port=...") */
    const char *state_path; /* vtpm: the .tpmstate file */
    bool create;            /* vtpm: manufacture a new TPM if the state file does not exist */
} cit_tpm_options;

typedef struct cit_tpm {
    cit_backend backend;
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    int lock_fd;
    char *state_path;
    char *tcti_conf;
    bool manufactured; /* vtpm: this open created a new TPM */
    ESYS_TR srk;       /* cached ESYS_TR of the storage primary key, or ESYS_TR_NONE */
} cit_tpm;

/* Opens the TPM. For vtpm takes an exclusive lock on <state>.lock (waits up to 30 s, then
 * CIT_E_WORKSPACE_BUSY), loads the state and starts the TPM. */
int cit__tpm_open(cit_tpm **out, const cit_tpm_options *o);
/* Orderly close: vtpm sends Shutdown(STATE) and saves the state file. Frees t. */
int cit__tpm_close(cit_tpm *t);
/* Closes without saving (after a failure we do not want persisted, or for mock). */
void cit__tpm_free(cit_tpm *t);

/* Saved contexts of transient objects, vTPM only: cit__tpm_ctx_keep saves h's context
 * (TPM2_ContextSave) under (id, version) in the vTPM state container, and a later process loads it
 * with cit__tpm_ctx_restore (TPM2_ContextLoad) instead of building the object again: for an AK
 * under the EK that is the EK's derivation, its policy session and the TPM2_Load, most of a
 * quote's time. The TPM checks the context's integrity; the caller must check the loaded object's
 * name before using it. At most CIT_TPM_CTX_KEEP are kept, the most recently kept first. Best
 * effort: restore returns 0 with *out loaded, or -1 (nothing kept, or the TPM refused it, e.g.
 * after a TPM reset) without recording an error; keep and forget fail silently. Other backends:
 * restore always -1, keep and forget nothing. */
#define CIT_TPM_CTX_KEEP 8
int cit__tpm_ctx_restore(cit_tpm *t, int64_t id, int version, ESYS_TR *out);
void cit__tpm_ctx_keep(cit_tpm *t, int64_t id, int version, ESYS_TR h);
/* version < 0: every version of id. */
void cit__tpm_ctx_forget(cit_tpm *t, int64_t id, int version);
/* Tss2_RC_Decode from libtss2-rc, loaded on first use ("0x%08x" if it cannot be). */
const char *cit__tss_rc_decode(TSS2_RC rc);
/* Records an error for a failed TSS call: decodes rc (Tss2_RC_Decode), maps well-known
 * TPM response codes (auth failure with DA counter, lockout, object/session memory, failure
 * mode, transport) to their codes and otherwise uses code. Returns the recorded code. */
int cit__tss_error(cit_tpm *t, int code, TSS2_RC rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The format-independent base of a TPM response code (e.g. 0x98e -> 0x08e). */
uint32_t cit__rc_base(TSS2_RC rc);

/* Storage primary key (ECC P-256, TCG SRK template) at CIT_SRK_HANDLE. */
#define CIT_SRK_HANDLE 0x81000002u
#define CIT_PERSISTENT_FIRST 0x81000100u
#define CIT_PERSISTENT_LAST 0x810001ffu
/* Creates and persists the SRK (or adopts an identical one). *name_out gets its TPM name. */
int cit__tpm_srk_provision(cit_tpm *t, TPM2B_NAME *name_out);
/* The SRK as an ESYS_TR. With serialized (an Esys_TR_Serialize blob recorded at init) no TPM
 * command is sent: a missing or replaced key then shows when something is loaded under it.
 * Otherwise TPM2_ReadPublic checks that it exists and its name equals expected (when given). */
int cit__tpm_srk(cit_tpm *t, const TPM2B_NAME *expected, const uint8_t *serialized, size_t serialized_len,
                 ESYS_TR *out);
/* Esys_TR_Serialize of the SRK (malloc'd). */
int cit__tpm_srk_serialize(cit_tpm *t, uint8_t **out, size_t *out_len);
/* Records the right error when loading under the SRK failed because it is not there (rc from
 * TPM2_Load / TPM2_Create); returns 0 when rc means something else. */
int cit__tpm_srk_load_error(TSS2_RC rc);

/* One TPM property (TPM2_CAP_TPM_PROPERTIES). */
int cit__tpm_prop(cit_tpm *t, TPM2_PT prop, uint32_t *out);
/* Persistent handles in [first, last] that exist. *out is malloc'd. */
int cit__tpm_persistent_handles(cit_tpm *t, uint32_t first, uint32_t last, uint32_t **out, size_t *n);
/* The TPM name of the object at h, as TPM2_ReadPublic returns it (the TPM computes it). Esys_TR_GetName
 * recomputes names in software, and tpm2-tss 3.x sets up a fresh OpenSSL library context for every
 * such hash: about 0.8 ms each. *name is Esys_Free'd by the caller. */
TSS2_RC cit__tpm_object_name(cit_tpm *t, ESYS_TR h, TPM2B_NAME **name);
/* Whether the object at h has the TPM name name[len] (cit__tpm_object_name; false when it cannot be
 * read). */
bool cit__tpm_name_is(cit_tpm *t, ESYS_TR h, const uint8_t *name, size_t len);
/* Flush helper that ignores ESYS_TR_NONE. */
void cit__tpm_flush(cit_tpm *t, ESYS_TR *h);
/* The TPM runs inside this process (vtpm, mock): its commands and responses never cross an
 * interface another process could observe, so parameter encryption protects nothing there. */
bool cit__tpm_in_process(const cit_tpm *t);
/* Overwrites the plaintext tpm2-tss leaves in its command/response buffer after a response it
 * decrypted (TPM2_Unseal with an encrypt session decrypts in place): a TPM2_PCR_Read of eight
 * PCRs writes about 300 bytes of public data over it. Best effort: failures are ignored. */
void cit__tpm_scrub_response(cit_tpm *t);
