/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcitadel: the TPM as a managed object store.
 *
 * Every operation takes a cit_ctx (store + TPM, opened lazily), returns 0 or a negative
 * CIT_E_* code (details in cit_error_last()), and on success hands back a result tree
 * (json_t object, the caller's reference) that the CLI and the daemons render. With
 * plan mode on, operations validate their arguments, describe the TPM operations they would
 * perform in {"plan": [...]} and change nothing.
 *
 * The library never prints and never exits.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "citadel/error.h"
#include "citadel/explain.h"
#include "citadel/output.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CIT_VERSION "0.1.0"

typedef struct cit_ctx cit_ctx;

typedef struct cit_ctx_options {
    const char *store_path; /* NULL: $TPM_STORE_PATH, else $XDG_DATA_HOME/citadel/store.db */
    const char *backend;    /* NULL: $TPM_BACKEND, else the workspace's, else "auto" */
    const char *tcti;       /* NULL: $TPM_TCTI */
    bool plan;              /* describe, change nothing */
} cit_ctx_options;

/* Creates a context; opens nothing yet. */
int cit_ctx_new(cit_ctx **out, const cit_ctx_options *o);
/* Ends the context: an open vTPM is shut down orderly and its state saved (the returned code
 * says whether that worked). Always frees ctx. */
int cit_ctx_close(cit_ctx *ctx);
/* Turns plan mode on or off for the following operations. */
void cit_ctx_set_plan(cit_ctx *ctx, bool plan);
/* The store path and backend name this context resolved (borrowed). */
const char *cit_ctx_store_path(cit_ctx *ctx);
const char *cit_ctx_backend(cit_ctx *ctx);

/* ---- workspace ---- */
int cit_workspace_init(json_t **out, cit_ctx *ctx, const char *profile);
int cit_workspace_status(json_t **out, cit_ctx *ctx);
int cit_workspace_doctor(json_t **out, cit_ctx *ctx, bool *healthy);
int cit_workspace_capabilities(json_t **out, cit_ctx *ctx);
int cit_workspace_info(json_t **out, cit_ctx *ctx);
int cit_workspace_export(json_t **out, cit_ctx *ctx, const char *output);
int cit_workspace_import(json_t **out, cit_ctx *ctx, const char *input);
int cit_debug_bundle(json_t **out, cit_ctx *ctx, const char *output);
int cit_log_show(json_t **out, cit_ctx *ctx, const char *object, const char *action, int limit);

/* ---- keys ---- */
typedef struct cit_key_create_options {
    const char *path;
    const char *algorithm; /* ecc-p256 (default), ecc-p384, rsa-2048, rsa-3072 */
    const char *scheme;    /* ecdsa, rsassa (RSA default), rsapss */
    const char *usage;     /* sign (default) or storage (a parent for other keys) */
    const char *parent;    /* NULL: the storage primary key */
    bool persist;          /* also make it a persistent TPM object */
    const char *auth_file; /* a password for the key (file, "-" = stdin); the key is then
                              dictionary-attack protected */
    const char *template_name; /* a recipe (cit_template_list) for what is not given */
    const char *pcrs;      /* bind use to these PCRs' values now ("0,7"); the TPM enforces it */
    const char *bank;      /* their bank (default sha256) */
    const char *policy;    /* or a stored policy by name */
} cit_key_create_options;

typedef struct cit_key_sign_options {
    const char *path;
    const char *input;     /* file or "-" */
    const char *output;    /* NULL: signature only in the result */
    const char *digest;    /* sha256 / sha384 / sha512; default by key */
    const char *encoding;  /* der (default) or raw (ECDSA r||s) */
    bool input_is_digest;  /* the input is already a digest of the given algorithm */
    const char *auth_file; /* the key's password, when it has one */
    int64_t approval;      /* an approved request, under a profile that requires approval */
} cit_key_sign_options;

int cit_key_create(json_t **out, cit_ctx *ctx, const cit_key_create_options *o);
int cit_key_list(json_t **out, cit_ctx *ctx);
int cit_key_show(json_t **out, cit_ctx *ctx, const char *path);
int cit_key_sign(json_t **out, cit_ctx *ctx, const cit_key_sign_options *o);
/* Verifies in software against every version (or just version when > 0). */
int cit_key_verify(json_t **out, cit_ctx *ctx, const char *path, const char *input,
                   const char *signature, const char *digest, const char *encoding, int version);
int cit_key_delete(json_t **out, cit_ctx *ctx, const char *path, bool force);
/* format: pem (default), openssl, cosign, ssh, jwk. output NULL: in the result ("_text"). */
int cit_key_export_pub(json_t **out, cit_ctx *ctx, const char *path, const char *format,
                       const char *output, int version);
/* auth_file: the key's password when it has one (the new version gets the same). */
int cit_key_rotate(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file);

/* ---- PCRs and baselines ---- */
/* bank: sha1|sha256 (default)|sha384|sha512; indices: "0,7,11", "0-7", NULL = all. */
int cit_pcr_show(json_t **out, cit_ctx *ctx, const char *bank, const char *indices);
/* Extends PCR index with the digest of data_file, or with digest_hex (exactly one). */
int cit_pcr_extend(json_t **out, cit_ctx *ctx, uint32_t index, const char *data_file, const char *digest_hex,
                   const char *bank);
/* Resets a resettable PCR (16-23). */
int cit_pcr_reset(json_t **out, cit_ctx *ctx, uint32_t index);
/* A baseline is a named set of PCR values (default PCRs 0-7 of sha256), kept in the store. */
int cit_baseline_save(json_t **out, cit_ctx *ctx, const char *name, const char *indices, const char *bank);
/* Compares a baseline with the PCRs now; *changed tells whether any differ. */
int cit_baseline_diff(json_t **out, cit_ctx *ctx, const char *name, bool *changed);
int cit_baseline_list(json_t **out, cit_ctx *ctx);
int cit_baseline_delete(json_t **out, cit_ctx *ctx, const char *name);

/* ---- sealed secrets ---- */
/* Seals the contents of input (at most 1 MiB; "-" = stdin) at path. pcrs (e.g. "0,7") binds it
 * to the PCR values now (bank default sha256): the TPM unseals only while they hold. policy
 * names a stored policy instead; auth_file gives the password (for policies with auth_value, or
 * alone for a password-protected secret). */
int cit_secret_seal(json_t **out, cit_ctx *ctx, const char *path, const char *input, const char *pcrs,
                    const char *bank, const char *policy, const char *auth_file, const char *template_name);
/* Unseals: *secret is the caller's and must be wiped (cit_memzero) and freed. A policy that
 * is not met is CIT_E_POLICY_FAIL, naming the PCRs that changed. */
int cit_secret_unseal(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file, uint8_t **secret,
                      size_t *secret_len);
int cit_secret_list(json_t **out, cit_ctx *ctx);

/* ---- policies (docs/policy.md) ---- */
/* Compiles a YAML policy file and stores it under its name (replace: a new version). */
int cit_policy_compile(json_t **out, cit_ctx *ctx, const char *file, bool replace);
/* A policy from flags: the PCRs in pcrs at their values now, and/or the object's password. */
int cit_policy_create(json_t **out, cit_ctx *ctx, const char *name, const char *pcrs, const char *bank,
                      bool password);
int cit_policy_show(json_t **out, cit_ctx *ctx, const char *name);
int cit_policy_list(json_t **out, cit_ctx *ctx);
/* Runs the policy in a real policy session now; *satisfied says whether the TPM accepted it. */
int cit_policy_test(json_t **out, cit_ctx *ctx, const char *name, bool *satisfied);
int cit_policy_explain(json_t **out, cit_ctx *ctx, const char *name);

/* ---- NV indices ---- */
/* type: ordinary (size bytes, at most the TPM's TPM2_PT_NV_INDEX_MAX, else CIT_E_USAGE), counter,
 * bits (8 bytes), extend (32 bytes, sha256). A password (auth_file) makes the index
 * dictionary-attack protected. Indices are write-lockable. Write and read move data in chunks of
 * at most TPM2_PT_NV_BUFFER_MAX bytes; a write that does not fit is CIT_E_NV_RANGE before any
 * chunk is written. */
int cit_nv_define(json_t **out, cit_ctx *ctx, const char *path, uint32_t size, const char *type,
                  const char *auth_file);
int cit_nv_write(json_t **out, cit_ctx *ctx, const char *path, const char *input, uint32_t offset,
                 const char *auth_file);
/* *data is the caller's (free). */
int cit_nv_read(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file, uint8_t **data, size_t *len);
int cit_nv_increment(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file);
int cit_nv_extend(json_t **out, cit_ctx *ctx, const char *path, const char *input, const char *auth_file);
int cit_nv_lock(json_t **out, cit_ctx *ctx, const char *path, const char *auth_file);
int cit_nv_list(json_t **out, cit_ctx *ctx);

/* ---- profiles and templates ---- */
/* Profiles: the workspace's defaults and constraints (allowed key algorithms, a path prefix),
 * enforced whenever an object is created; built-ins default, compat, high, ci-signer, fips-like. */
int cit_profile_list(json_t **out, cit_ctx *ctx);
int cit_profile_show(json_t **out, cit_ctx *ctx, const char *name /* NULL: the active one */);
int cit_profile_set(json_t **out, cit_ctx *ctx, const char *name);
/* Templates: recipes for key create / secret seal (ci-signer, tls-server, boot-sealed-secret,
 * attestation-ak). */
int cit_template_list(json_t **out, cit_ctx *ctx);
int cit_template_show(json_t **out, cit_ctx *ctx, const char *name);

/* ---- identities (docs/identities.md) ---- */
/* An identity is a signing key with a purpose (usage), an optional binding (PCR state, or the
 * approvals of an authority: PolicyAuthorize) and certificate metadata. */
typedef struct cit_identity_init_options {
    const char *name;
    const char *usage;         /* code-signing (default), tls-server, tls-client, attestation, audit */
    const char *algorithm;     /* as for keys (default: the profile's) */
    const char *policy;        /* a stored policy */
    const char *pcr_bind;      /* "14": signs only while these PCRs hold their values now, or, with
                                  authorized_by, states the authority approved */
    const char *bank;          /* of pcr_bind (default sha256) */
    bool authority;            /* an approver key for PolicyAuthorize (signs approvals only) */
    const char *authorized_by; /* the authority whose approvals unlock this identity */
    const char *template_name;
    const char *auth_file;     /* a password, required at every use */
} cit_identity_init_options;

int cit_identity_init(json_t **out, cit_ctx *ctx, const cit_identity_init_options *o);
int cit_identity_show(json_t **out, cit_ctx *ctx, const char *name);
int cit_identity_list(json_t **out, cit_ctx *ctx);
int cit_identity_rotate(json_t **out, cit_ctx *ctx, const char *name, const char *auth_file);
int cit_identity_delete(json_t **out, cit_ctx *ctx, const char *name, bool force);
/* A PKCS#10 CSR signed in the TPM. subject: "/CN=a/O=b" or "CN=a,O=b"; san: "DNS:x,IP:1.2.3.4"
 * (may be NULL). output NULL: the PEM in the result ("_text"). */
int cit_identity_csr(json_t **out, cit_ctx *ctx, const char *name, const char *subject, const char *san,
                     const char *output, const char *auth_file);
/* Stores a certificate (PEM or DER) for the identity's current key, after checking it matches. */
int cit_identity_cert_import(json_t **out, cit_ctx *ctx, const char *name, const char *input);
/* The authority signs (in the TPM) the policy digest of the PCRs in pcrs at their values now:
 * identities authorized by it then sign in that state. The approval is stored and logged. */
int cit_policy_approve(json_t **out, cit_ctx *ctx, const char *authority, const char *pcrs, const char *bank,
                       const char *auth_file);
int cit_policy_approvals(json_t **out, cit_ctx *ctx, const char *authority /* NULL: all */);

/* ---- sign approvals (profiles with approval_required, e.g. two-person) ---- */
/* status: pending, approved, denied, used, or NULL for all. */
int cit_approval_list(json_t **out, cit_ctx *ctx, const char *status);
int cit_approval_show(json_t **out, cit_ctx *ctx, int64_t id);
/* Decides a pending request (approve or deny) once; the decider is recorded. */
int cit_approval_decide(json_t **out, cit_ctx *ctx, int64_t id, bool approve, const char *reason);

/* ---- dictionary-attack protection ---- */
int cit_lockout_show(json_t **out, cit_ctx *ctx);
/* TPM2_DictionaryAttackLockReset with the lockout authorization (empty unless auth_file). */
int cit_lockout_reset(json_t **out, cit_ctx *ctx, const char *auth_file);

/* ---- objects ---- */
int cit_object_list(json_t **out, cit_ctx *ctx, const char *kind);
int cit_object_tree(json_t **out, cit_ctx *ctx);
int cit_object_dependents(json_t **out, cit_ctx *ctx, const char *path);
int cit_object_rename(json_t **out, cit_ctx *ctx, const char *from, const char *to);
int cit_object_set_status(json_t **out, cit_ctx *ctx, const char *path, bool active);
/* Deletes an object of the given kind (NULL: any), its dependents with force. */
int cit_object_delete(json_t **out, cit_ctx *ctx, const char *path, const char *kind, bool force);

/* ---- attestation: event logs and IMA (docs/attestation.md) ---- */
/* These read a file and need no TPM and no workspace. file: a binary TCG PC Client event log
 * (crypto-agile or SHA-1), at most 64 MiB. A log that does not parse is CIT_E_EVENTLOG_MALFORMED
 * (the event index, its offset and the reason in the error); too large is CIT_E_INPUT_TOO_LARGE. */
/* Every event (or those of the PCRs in pcrs, "0,7" / "0-7"; NULL = all) with its digests and
 * decoded data. */
int cit_eventlog_show(json_t **out, const char *file, const char *pcrs);
/* The PCR values the log produces, per bank: {"pcrs": {"sha256": {"0": hex, ...}, ...}}. */
int cit_eventlog_replay(json_t **out, const char *file);
/* Secure Boot state as the log records it: SecureBoot, PK/KEK/db/dbx, the authorities that
 * allowed images, shim and MOK events, and findings. */
int cit_eventlog_secureboot(json_t **out, const char *file);
/* IMA runtime measurement lists, binary or ASCII (ima-ng, ima-sig, ima-buf; the binary list
 * with any template), at most 64 MiB. Malformed: CIT_E_IMA_MALFORMED. pcrs filters show. */
int cit_ima_show(json_t **out, const char *file, const char *pcrs);
/* Replays the list into PCR values (PCR 10 usually): the list's own bank from the recorded
 * template hashes, and sha1/sha256 recomputed from the template data when every entry has it. */
int cit_ima_replay(json_t **out, const char *file);

#ifdef __cplusplus
}
#endif
