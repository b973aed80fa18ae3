/* SPDX-License-Identifier: Apache-2.0 */
/* init, status, doctor, capabilities, debug, workspace, log */
#include "cli.h"

static int do_init(cli_env *e, const cli_args *a, json_t **out) {
    return cit_workspace_init(out, e->ctx, cli_get(a, "profile"));
}
static int do_status(cli_env *e, const cli_args *a, json_t **out) { return cit_workspace_status(out, e->ctx); }
static int do_doctor(cli_env *e, const cli_args *a, json_t **out) {
    bool healthy = true;
    int r = cit_workspace_doctor(out, e->ctx, &healthy);
    if (r == 0 && !healthy)
        e->exit_status = 10; /* documented: doctor found failures */
    return r;
}
static int do_caps(cli_env *e, const cli_args *a, json_t **out) { return cit_workspace_capabilities(out, e->ctx); }
static int do_debug(cli_env *e, const cli_args *a, json_t **out) {
    return cit_debug_bundle(out, e->ctx, cli_get(a, "output") ? cli_get(a, "output") : "citadel-debug.json");
}
static int do_ws_info(cli_env *e, const cli_args *a, json_t **out) { return cit_workspace_info(out, e->ctx); }
static int do_ws_export(cli_env *e, const cli_args *a, json_t **out) {
    return cit_workspace_export(out, e->ctx, cli_get(a, "output"));
}
static int do_ws_import(cli_env *e, const cli_args *a, json_t **out) {
    return cit_workspace_import(out, e->ctx, cli_get(a, "input"));
}
static int do_log_show(cli_env *e, const cli_args *a, json_t **out) {
    int limit;
    if (cli_get_int(a, "limit", &limit) < 0)
        return CIT_E_USAGE;
    return cit_log_show(out, e->ctx, cli_get(a, "object"), cli_get(a, "action"), limit);
}

static int require(const cli_args *a, const char *opt) {
    if (cli_get(a, opt))
        return 0;
    cit_error_set(CIT_E_USAGE, "--%s is required", opt);
    return CIT_E_USAGE;
}
static int do_ws_export_req(cli_env *e, const cli_args *a, json_t **out) {
    return require(a, "output") < 0 ? CIT_E_USAGE : do_ws_export(e, a, out);
}
static int do_ws_import_req(cli_env *e, const cli_args *a, json_t **out) {
    return require(a, "input") < 0 ? CIT_E_USAGE : do_ws_import(e, a, out);
}

const cli_verb cli_verbs_init[] = {
    {"", do_init, NULL, 0, 0, "create the workspace: the store and (for vtpm) the embedded TPM",
     "Creates the store (SQLite, mode 0600) and a storage primary key (ECC P-256, persisted at\n"
     "0x81000002). With the vtpm backend (the default when no /dev/tpmrm0 is usable) it also\n"
     "manufactures the embedded TPM, whose state is kept beside the store as <store>.tpmstate.\n"
     "Profiles: default (ecc-p256 keys), compat (rsa-2048), high (ecc-p384).",
     "citadel tpm init --profile default",
     {{"profile", "NAME", "default, compat or high (sets the default key algorithm)"}}},
    {0}};

const cli_verb cli_verbs_status[] = {
    {"", do_status, NULL, 0, 0, "backend, TPM identity, objects and a health score",
     "The health score starts at 100; each deduction is listed with its reason.", "citadel tpm status", {{0}}},
    {0}};

const cli_verb cli_verbs_doctor[] = {
    {"", do_doctor, NULL, 0, 0, "check backend, self-test, lockout, store integrity and store-vs-TPM consistency",
     "Each check reports pass, warn or fail with a next step. Exit status 0 when nothing failed,\n"
     "10 when a check failed. `consistent` is false when the store and the TPM disagree.",
     "citadel tpm doctor --json", {{0}}},
    {0}};

const cli_verb cli_verbs_capabilities[] = {
    {"", do_caps, NULL, 0, 0, "algorithms, curves, PCR banks and limits, read from the TPM",
     "Everything is read from the TPM with TPM2_GetCapability; the key algorithms citadel can\n"
     "create are checked with TPM2_TestParms.",
     "citadel tpm capabilities --format yaml", {{0}}},
    {0}};

const cli_verb cli_verbs_debug[] = {
    {"", do_debug, NULL, 0, 0, "write a bug-report bundle (no secrets)",
     "Writes versions, environment, workspace info, status, capabilities, the doctor report and\n"
     "recent operation log to a JSON file (mode 0600). It never contains key material.",
     "citadel tpm debug --output bundle.json",
     {{"output", "FILE", "where to write the bundle (default citadel-debug.json)"}}},
    {0}};

const cli_verb cli_verbs_workspace[] = {
    {"info", do_ws_info, NULL, 0, 0, "where the workspace lives and what it holds", NULL, "citadel tpm workspace info",
     {{0}}},
    {"export", do_ws_export_req, NULL, 0, 0, "export objects (wrapped TPM blobs) and CAs to a JSON file",
     "The file (mode 0600) holds every object with all versions, and the certificate authority's\n"
     "CAs, issued certificates and trust stores (docs/ca.md). Private parts stay wrapped under\n"
     "this TPM's storage key: the export restores the store, not the TPM.",
     "citadel tpm workspace export --output backup.json", {{"output", "FILE", "the export file (required)"}}},
    {"import", do_ws_import_req, NULL, 0, 0, "import objects and CAs from an export of this TPM's workspace",
     "Adds the objects and CAs of an export made on the same TPM (the storage key must match). It\n"
     "never overwrites: any existing path, CA or certificate aborts the whole import.",
     "citadel tpm workspace import --input backup.json", {{"input", "FILE", "the export file (required)"}}},
    {0}};

const cli_verb cli_verbs_log[] = {
    {"show", do_log_show, NULL, 0, 0, "show the operation log, newest first", NULL,
     "citadel tpm log show --object signing/release --limit 20",
     {{"object", "PATH", "only events of this object (follows renames)"},
      {"action", "ACTION", "only this action or group (e.g. key.create, object)"},
      {"limit", "N", "at most N events (default 50)"}}},
    {0}};

static int do_lockout_show(cli_env *e, const cli_args *a, json_t **out) { return cit_lockout_show(out, e->ctx); }
static int do_lockout_reset(cli_env *e, const cli_args *a, json_t **out) {
    return cit_lockout_reset(out, e->ctx, cli_get(a, "auth-file"));
}

const cli_verb cli_verbs_lockout[] = {
    {"show", do_lockout_show, NULL, 0, 0, "the dictionary-attack counter and lockout state",
     "Keys with a password are dictionary-attack protected: each wrong password counts, and at\n"
     "max_tries the TPM refuses them until one failure is forgiven every recovery_seconds.",
     "citadel tpm lockout show", {{0}}},
    {"reset", do_lockout_reset, NULL, 0, 0, "reset the counter and end a lockout",
     "Runs TPM2_DictionaryAttackLockReset with the lockout authorization (empty unless set by\n"
     "the TPM owner). A wrong lockout authorization locks the lockout hierarchy itself for\n"
     "lockout_recovery_seconds.",
     "citadel tpm lockout reset", {{"auth-file", "FILE", "the lockout authorization, if one is set"}}},
    {0}};
