/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "cli.h"

static int do_list(cli_env *e, const cli_args *a, json_t **out) { return cit_recover_list(out, e->ctx); }

static int do_show(cli_env *e, const cli_args *a, json_t **out) {
    int age = -1; /* the default */
    if (cli_get(a, "age") && cli_get_int(a, "age", &age) < 0)
        return CIT_E_USAGE;
    bool fires = false;
    int r = cit_recover_show(out, e->ctx, a->pos[0], age, &fires);
    if (r == 0 && fires && !e->plan)
        /* boot-change: the policy class (something no longer opens); the others: repair */
        e->exit_status = strcmp(a->pos[0], "boot-change") == 0 ? 7 : 10;
    return r;
}

const cli_verb cli_verbs_recover[] = {
    {"list", do_list, NULL, 0, 0, "the recovery playbooks and whether their detection fires now",
     "Runs every playbook's detection against this workspace (reads only): tpm-cleared,\n"
     "handle-mismatch, profile-drift, boot-change, metadata-corruption, key-rotation.\n"
     "A detection that cannot run (no TPM) shows as unknown.",
     "citadel tpm recover list", {{0}}},
    {"show", do_show, "NAME", 1, 1, "one playbook: its detection run now, the steps, the exact commands",
     "tpm-cleared          the storage key's name against the one recorded at init, the endorsement\n"
     "                     key against the recorded one (a clear keeps it; another TPM does not)\n"
     "handle-mismatch      `repair scan`\n"
     "profile-drift        active objects against the active profile's algorithms and path prefix\n"
     "boot-change          which PCR-bound objects the boot state now locks (the report as before:\n"
     "                     bound and current values per PCR, a next step per locked object)\n"
     "metadata-corruption  SQLite integrity_check and foreign keys, JSON validity of metadata\n"
     "key-rotation         keys whose current version is older than --age DAYS (default 365)\n"
     "Exit status 0 when the detection does not fire; when it fires, 7 for boot-change and 10 for\n"
     "the others. Reads only.",
     "citadel tpm recover show boot-change", {{"age", "DAYS", "key-rotation: the rotation age (default 365)"}}},
    {0}};
