/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-process TPM: libtpms behind our own TCTI (Debian's tpm2-tss 3.2 has no libtpms TCTI).
 * libtpms is one global TPM per process and its callbacks carry no user pointer, so there is at
 * most one such TCTI alive at a time, and every call into libtpms is serialised by one mutex.
 *
 * State lives in memory as named blobs ("permall", "savestate", "volatilestate") that libtpms
 * loads and stores through its NVRAM callbacks; the caller persists them (vtpm_state.c).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tcti.h>

#define CIT_VTPM_MAX_BLOBS 4

typedef struct cit_vtpm_blob {
    char name[32];
    uint8_t *data;
    size_t len;
} cit_vtpm_blob;

typedef struct cit_vtpm_state {
    int n;
    cit_vtpm_blob blobs[CIT_VTPM_MAX_BLOBS];
} cit_vtpm_state;

void cit__vtpm_state_clear(cit_vtpm_state *s);

/* Starts the TPM from state (NULL or empty: manufacture a new TPM) and sends TPM2_Startup:
 * STATE when the state holds an orderly shutdown, CLEAR otherwise (or when startup_clear).
 * On success *out is a TCTI usable with Esys_Initialize; the state is copied.
 * Returns 0, CIT_E_BACKEND_UNAVAILABLE (another instance alive), CIT_E_VTPM_STATE_CORRUPT
 * (libtpms rejected the state), CIT_E_TPM_FAILURE_MODE. */
int cit__tcti_libtpms_new(TSS2_TCTI_CONTEXT **out, const cit_vtpm_state *state, bool startup_clear);

/* Sends TPM2_Shutdown(STATE) and copies the TPM's state blobs into *out (caller frees with
 * cit__vtpm_state_clear). The TCTI stays usable for finalize only. */
int cit__tcti_libtpms_shutdown(TSS2_TCTI_CONTEXT *tcti, cit_vtpm_state *out);

/* Citadel's own blobs in the state container beside libtpms' (names "citadel.*", which libtpms
 * never asks for): read from the state the TPM was started with and saved with it at shutdown.
 * Only while the TPM runs. get: a malloc'd copy, or *out NULL when absent; 0 or -1 (no TPM, out
 * of memory). put: 0 or -1 (also when the container has no room). */
int cit__tcti_libtpms_blob_get(const char *name, uint8_t **out, size_t *len);
int cit__tcti_libtpms_blob_put(const char *name, const uint8_t *data, size_t len);

/* Finalize (Tss2_Tcti_Finalize) terminates libtpms; then free() the context. */
