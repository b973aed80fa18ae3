/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

static int do_scan(cli_env *e, const cli_args *a, json_t **out) {
    bool needs = false;
    int r = cit_repair_scan(out, e->ctx, cli_flag(a, "include-foreign"), &needs);
    if (r == 0 && needs)
        e->exit_status = 10; /* the repair class: something needs repair */
    return r;
}

static int do_plan(cli_env *e, const cli_args *a, json_t **out) {
    return cit_repair_plan(out, e->ctx, cli_flag(a, "include-foreign"), cli_flag(a, "accept-cleared"));
}

static int do_apply(cli_env *e, const cli_args *a, json_t **out) {
    return cit_repair_apply(out, e->ctx, cli_flag(a, "include-foreign"), cli_flag(a, "accept-cleared"));
}

#define FOREIGN_OPT {"include-foreign", NULL, "also act on handles and NV indices in citadel's ranges that nothing proves are citadel's"}
#define CLEARED_OPT {"accept-cleared", NULL, "treat a missing storage key as a cleared TPM even without a recorded endorsement key"}

const cli_verb cli_verbs_repair[] = {
    {"scan", do_scan, NULL, 0, 0, "find where the store and the TPM disagree (reads only)",
     "Checks the storage primary key (a cleared or another TPM), every persistent handle and NV\n"
     "index the store names, every wrapped key blob, the handles and NV indices in citadel's ranges\n"
     "that no object names, and the intent journal (commands that were killed or failed half-way).\n"
     "Each finding has a kind, the object, what is wrong and the fix. Exit status 0 when nothing\n"
     "needs repair, 10 when something does. Handles nothing proves are citadel's are reported but\n"
     "need --include-foreign to count.",
     "citadel tpm repair scan", {FOREIGN_OPT}},
    {"plan", do_plan, NULL, 0, 0, "the exact operations `repair apply` would perform (reads only)",
     "The scan's findings and, in order, the operations `repair apply` performs for them: evictions\n"
     "and undefines first, then a new storage key (after a clear), then re-persisting keys from their\n"
     "blobs, then the store changes (retire with a reason, record an NV index, drop journal entries).\n"
     "Findings that need a flag are listed with it.",
     "citadel tpm repair plan", {FOREIGN_OPT, CLEARED_OPT}},
    {"apply", do_apply, NULL, 0, 0, "fix what the scan found",
     "Performs the plan. The TPM changes come first, each checked against the TPM before it acts\n"
     "and made durable; then every store change in one transaction. A key whose persistent handle\n"
     "is gone is re-persisted from its blob when it still loads (nothing is lost), else retired with\n"
     "the reason; store rows are never deleted (retired objects go with `gc` after the retention\n"
     "period). Running it again is safe: a repaired workspace has nothing more to do.\n"
     "With --plan it prints the plan and changes nothing. Another TPM (tpm-replaced) is refused.",
     "citadel tpm repair apply", {FOREIGN_OPT, CLEARED_OPT}},
    {0}};
