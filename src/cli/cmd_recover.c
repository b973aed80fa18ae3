/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "cli.h"

static int do_show(cli_env *e, const cli_args *a, json_t **out) {
    if (strcmp(a->pos[0], "boot-change") != 0) {
        cit_error_set(CIT_E_USAGE, "unknown recovery report: %s", a->pos[0]);
        cit_error_cause("reports: boot-change");
        return CIT_E_USAGE;
    }
    int r = cit_recover_boot_change(out, e->ctx);
    if (r == 0 && json_integer_value(json_object_get(*out, "locked")) > 0)
        e->exit_status = 7; /* the policy class: something no longer opens */
    return r;
}

const cli_verb cli_verbs_recover[] = {
    {"show", do_show, "boot-change", 1, 1, "which PCR-bound objects the boot state now locks, and what to do",
     "Compares every PCR-bound object (sealed secrets, keys, identities, Ed25519 keys) with the PCR\n"
     "values now: which PCRs moved (bound and current values) and, for each locked object, the\n"
     "next step (re-seal, re-create, or approve the new state for authorized identities).\n"
     "Exit status 0 when everything opens, 7 when something is locked. Reads only.",
     "citadel tpm recover show boot-change", {{0}}},
    {0}};
