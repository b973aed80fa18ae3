/* SPDX-License-Identifier: Apache-2.0 */
#include "basic/util.h"
#include "cli.h"

static int id_arg(const cli_args *a, int64_t *id) {
    uint64_t v = 0;
    if (cit_parse_u64(a->pos[0], &v) < 0 || v == 0 || v > INT64_MAX) {
        cit_error_set(CIT_E_USAGE, "not a request number: %s", a->pos[0]);
        cit_error_step("run `citadel tpm approval list` to see the requests");
        return CIT_E_USAGE;
    }
    *id = (int64_t)v;
    return 0;
}
static int do_list(cli_env *e, const cli_args *a, json_t **out) { return cit_approval_list(out, e->ctx, cli_get(a, "status")); }
static int do_show(cli_env *e, const cli_args *a, json_t **out) {
    int64_t id;
    return id_arg(a, &id) < 0 ? CIT_E_USAGE : cit_approval_show(out, e->ctx, id);
}
static int do_approve(cli_env *e, const cli_args *a, json_t **out) {
    int64_t id;
    return id_arg(a, &id) < 0 ? CIT_E_USAGE : cit_approval_decide(out, e->ctx, id, true, cli_get(a, "reason"));
}
static int do_deny(cli_env *e, const cli_args *a, json_t **out) {
    int64_t id;
    return id_arg(a, &id) < 0 ? CIT_E_USAGE : cit_approval_decide(out, e->ctx, id, false, cli_get(a, "reason"));
}

const cli_verb cli_verbs_approval[] = {
    {"list", do_list, NULL, 0, 0, "sign requests waiting for (or past) a decision",
     "Under a profile that requires approval (two-person), `key sign` records a request and stops\n"
     "with TPM0055; an operator approves or denies it here; the approved request signs once, with\n"
     "`key sign ... --approval ID` over the same input.",
     "citadel tpm approval list --status pending", {{"status", "S", "pending, approved, denied or used"}}},
    {"show", do_show, "ID", 1, 1, "a request: key, digest, who asked, who decided", NULL, "citadel tpm approval show 3",
     {{0}}},
    {"approve", do_approve, "ID", 1, 1, "approve a pending sign request (it then signs once)", NULL,
     "citadel tpm approval approve 3 --reason 'release 1.4.2'", {{"reason", "TEXT", "recorded with the decision"}}},
    {"deny", do_deny, "ID", 1, 1, "deny a pending sign request", NULL, "citadel tpm approval deny 3 --reason 'not a release build'",
     {{"reason", "TEXT", "recorded with the decision"}}},
    {0}};
