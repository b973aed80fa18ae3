/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `citadel tpm attest ...`: measured boot and remote attestation. A verb per subject, each
 * with a sub-action positional like `pcr baseline save|diff`:
 *   attest eventlog show|replay|secureboot FILE   firmware event logs (no TPM needed)
 *   attest ima show|replay FILE                   IMA runtime measurement lists
 * New verbs (ek, ak, quote, verify, credential) are rows in cli_verbs_attest below.
 */
#include <string.h>

#include "cli.h"

/* A sub-action of a verb: its name and what it runs. */
typedef struct sub_action {
    const char *name;
    int (*run)(const cli_args *a, const char *file, json_t **out);
} sub_action;

/* Finds a->pos[0] in actions and runs it on the FILE in a->pos[1]. */
static int dispatch(const cli_args *a, const char *verb, const sub_action *actions, json_t **out) {
    const char *action = a->pos[0], *file = a->npos > 1 ? a->pos[1] : NULL;
    for (const sub_action *s = actions; s->name; s++)
        if (strcmp(s->name, action) == 0) {
            if (!file) {
                cit_error_set(CIT_E_USAGE, "attest %s %s needs a FILE", verb, action);
                return CIT_E_USAGE;
            }
            return s->run(a, file, out);
        }
    char names[128] = "";
    size_t off = 0;
    for (const sub_action *s = actions; s->name; s++)
        off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", off ? ", " : "", s->name);
    cit_error_set(CIT_E_USAGE, "unknown %s action: %s", verb, action);
    cit_error_cause("`attest %s` takes %s", verb, names);
    return CIT_E_USAGE;
}

/* ---- eventlog ---- */

static int eventlog_show(const cli_args *a, const char *file, json_t **out) {
    return cit_eventlog_show(out, file, cli_get(a, "pcr"));
}
static int eventlog_replay(const cli_args *a, const char *file, json_t **out) { return cit_eventlog_replay(out, file); }
static int eventlog_secureboot(const cli_args *a, const char *file, json_t **out) {
    return cit_eventlog_secureboot(out, file);
}

static const sub_action eventlog_actions[] = {
    {"show", eventlog_show}, {"replay", eventlog_replay}, {"secureboot", eventlog_secureboot}, {0}};

static int do_eventlog(cli_env *e, const cli_args *a, json_t **out) {
    if (cli_get(a, "pcr") && strcmp(a->pos[0], "show") != 0) {
        cit_error_set(CIT_E_USAGE, "--pcr applies to `eventlog show` only");
        return CIT_E_USAGE;
    }
    return dispatch(a, "eventlog", eventlog_actions, out);
}

/* ---- ima ---- */

static int ima_show(const cli_args *a, const char *file, json_t **out) { return cit_ima_show(out, file, cli_get(a, "pcr")); }
static int ima_replay(const cli_args *a, const char *file, json_t **out) { return cit_ima_replay(out, file); }

static const sub_action ima_actions[] = {{"show", ima_show}, {"replay", ima_replay}, {0}};

static int do_ima(cli_env *e, const cli_args *a, json_t **out) {
    if (cli_get(a, "pcr") && strcmp(a->pos[0], "show") != 0) {
        cit_error_set(CIT_E_USAGE, "--pcr applies to `ima show` only");
        return CIT_E_USAGE;
    }
    return dispatch(a, "ima", ima_actions, out);
}

const cli_verb cli_verbs_attest[] = {
    {"eventlog", do_eventlog, "show|replay|secureboot FILE", 2, 2, "parse, replay and summarise a firmware event log",
     "FILE is a binary TCG PC Client event log, crypto-agile (TCG_PCR_EVENT2 after the Spec ID\n"
     "event) or SHA-1 only, at most 64 MiB; the running system's is\n"
     "/sys/kernel/security/tpm0/binary_bios_measurements. No TPM or workspace is needed.\n"
     "  show        every event: PCR, type, digests per bank, decoded data (UEFI variables,\n"
     "              boot applications and device paths, GPT, actions, separators, ...);\n"
     "              --pcr keeps the events of some PCRs\n"
     "  replay      the PCR values the log produces, per bank (EV_NO_ACTION is not extended;\n"
     "              a StartupLocality event sets PCR 0's start value)\n"
     "  secureboot  Secure Boot state: SecureBoot, PK/KEK/db/dbx, authorities, shim and MOK\n"
     "A log that does not parse stops with TPM0070 naming the event and its byte offset.",
     "citadel tpm attest eventlog replay /sys/kernel/security/tpm0/binary_bios_measurements",
     {{"pcr", "LIST", "show: only events of these PCRs (0,7 or 0-7)"}}},
    {"ima", do_ima, "show|replay FILE", 2, 2, "parse and replay an IMA measurement list",
     "FILE is /sys/kernel/security/ima/binary_runtime_measurements or\n"
     "ascii_runtime_measurements (or a _sha256 variant), at most 64 MiB.\n"
     "  show    every entry: PCR, template, template hash, file digest, path, signature,\n"
     "          and whether the template hash matches the template data\n"
     "  replay  the PCR values (PCR 10 by default) the list produces, per bank\n"
     "A list that does not parse stops with TPM0071 naming the entry.",
     "citadel tpm attest ima replay /sys/kernel/security/ima/binary_runtime_measurements",
     {{"pcr", "LIST", "show: only entries of these PCRs"}}},
    {0}};
