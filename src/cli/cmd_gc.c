/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

/* --retention DAYS (0 allowed); -1 when absent (the library's default). */
static int retention(const cli_args *a, int *days) {
    *days = -1;
    if (!cli_get(a, "retention"))
        return 0;
    return cli_get_int(a, "retention", days) < 0 ? CIT_E_USAGE : 0;
}

static int do_plan(cli_env *e, const cli_args *a, json_t **out) {
    int days, r = retention(a, &days);
    return r < 0 ? r : cit_gc_plan(out, e->ctx, days);
}

static int do_apply(cli_env *e, const cli_args *a, json_t **out) {
    int days, r = retention(a, &days);
    return r < 0 ? r : cit_gc_apply(out, e->ctx, days);
}

#define RETENTION_OPT {"retention", "DAYS", "remove objects retired at least this many days ago (default 30; 0: all retired)"}

const cli_verb cli_verbs_gc[] = {
    {"plan", do_plan, NULL, 0, 0, "what `gc apply` would remove (reads only)",
     "Objects retired longer than the retention period (their last change, which retiring is),\n"
     "unless a kept object depends on them; their persistent handles and NV indices; stored\n"
     "versions whose object is gone; leftover temporary files of killed processes beside the store.\n"
     "Older versions of kept keys are never removed: signatures they made still verify.",
     "citadel tpm gc plan --retention 90", {RETENTION_OPT}},
    {"apply", do_apply, NULL, 0, 0, "remove them and report what was freed",
     "Deletes the rows in one transaction, then evicts the TPM parts (journalled, as in `object\n"
     "delete`), then removes the files; reports what it freed. With --plan it changes nothing.",
     "citadel tpm gc apply", {RETENTION_OPT}},
    {0}};
