/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vTPM state file (<store>.tpmstate): libtpms' state blobs (and citadel's "citadel.contexts",
 * cit__tpm_ctx_keep) in one checksummed container,
 * replaced atomically (cit_write_file_swap: <file>.swap rewritten, fdatasync'd and exchanged with it;
 * the swap file keeps the previous state), mode 0600.
 *
 *   "CITVTPM\n" | u32be version (1) | u32be blob count |
 *   per blob: u8 name length, name, u32be data length, data |
 *   SHA-256 over everything before it (32 bytes)
 */
#pragma once
#include "tcti_libtpms.h"

#define CIT_VTPM_STATE_MAX (4u * 1024 * 1024)

/* 0; CIT_E_VTPM_STATE_MISSING (no file); CIT_E_VTPM_STATE_CORRUPT (bad magic, checksum,
 * truncation); CIT_E_STORE_IO. */
int cit__vtpm_state_load(cit_vtpm_state *out, const char *path);
int cit__vtpm_state_save(const cit_vtpm_state *st, const char *path);
