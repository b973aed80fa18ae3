/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

static int do_compile(cli_env *e, const cli_args *a, json_t **out) {
    return cit_policy_compile(out, e->ctx, a->pos[0], cli_flag(a, "replace"));
}
static int do_create(cli_env *e, const cli_args *a, json_t **out) {
    return cit_policy_create(out, e->ctx, a->pos[0], cli_get(a, "pcr"), cli_get(a, "bank"), cli_flag(a, "password"));
}
static int do_show(cli_env *e, const cli_args *a, json_t **out) { return cit_policy_show(out, e->ctx, a->pos[0]); }
static int do_list(cli_env *e, const cli_args *a, json_t **out) { return cit_policy_list(out, e->ctx); }
static int do_delete(cli_env *e, const cli_args *a, json_t **out) {
    return cit_object_delete(out, e->ctx, a->pos[0], "policy", false);
}
static int do_test(cli_env *e, const cli_args *a, json_t **out) {
    bool ok = false;
    int r = cit_policy_test(out, e->ctx, a->pos[0], &ok);
    if (r == 0 && !ok && json_object_get(*out, "satisfied"))
        e->exit_status = 7; /* the policy class's exit status: the TPM would refuse now */
    return r;
}
static int do_approve(cli_env *e, const cli_args *a, json_t **out) {
    if (!cli_get(a, "authority")) {
        cit_error_set(CIT_E_USAGE, "--authority is required");
        cit_error_step("run `citadel tpm policy approve --help`");
        return CIT_E_USAGE;
    }
    return cit_policy_approve(out, e->ctx, cli_get(a, "authority"), cli_get(a, "pcr"), cli_get(a, "bank"),
                              cli_get(a, "auth-file"));
}
static int do_approvals(cli_env *e, const cli_args *a, json_t **out) {
    return cit_policy_approvals(out, e->ctx, cli_get(a, "authority"));
}
static int do_explain(cli_env *e, const cli_args *a, json_t **out) { return cit_policy_explain(out, e->ctx, a->pos[0]); }

const cli_verb cli_verbs_policy[] = {
    {"compile", do_compile, "FILE", 1, 1, "compile a YAML policy and store it under its name",
     "The format is in docs/policy.md. PCR values left out take the TPM's values now. Prints the\n"
     "policy digest (the TPM's, computed in software; `policy test` runs it in the TPM).",
     "citadel tpm policy compile boot-integrity.yaml",
     {{"replace", NULL, "replace a stored policy of the same name (a new version)"}}},
    {"create", do_create, "NAME", 1, 1, "a policy from flags: PCRs at their values now, and/or a password", NULL,
     "citadel tpm policy create boot --pcr 0,7",
     {{"pcr", "LIST", "PCRs to bind, e.g. 0,7"}, {"bank", "BANK", "the PCR bank (default sha256)"},
      {"password", NULL, "also require the object's password (PolicyAuthValue)"}}},
    {"show", do_show, "NAME", 1, 1, "a stored policy: its assertions and digest", NULL, "citadel tpm policy show boot",
     {{0}}},
    {"list", do_list, NULL, 0, 0, "list stored policies", NULL, "citadel tpm policy list", {{0}}},
    {"delete", do_delete, "NAME", 1, 1, "delete a stored policy", NULL, "citadel tpm policy delete boot", {{0}}},
    {"test", do_test, "NAME", 1, 1, "run the policy in a real TPM policy session now",
     "Each assertion runs in the TPM; for PCRs the expected values are given, so the TPM itself\n"
     "refuses when they differ, and the result names the PCRs with expected and actual values.\n"
     "Exit status 0 when the TPM accepts the policy now, 7 when it would refuse.",
     "citadel tpm policy test boot", {{0}}},
    {"approve", do_approve, NULL, 0, 0, "an authority approves the PCR state now (PolicyAuthorize)",
     "The authority's TPM key signs the policy digest of the listed PCRs at their values now.\n"
     "Identities made with --authorized-by AUTH then sign in this state too. The approval is\n"
     "written into the audit log first (measure.approval in the measure stream when a PCR is one\n"
     "`measure checkpoint` extends, else policy.approve), then stored; the TPM checks its\n"
     "signature at every use.",
     "citadel tpm policy approve --authority release --pcr 14",
     {{"authority", "AUTH", "the authority identity (required)"},
      {"pcr", "LIST", "the PCRs whose values now are approved (required)"},
      {"bank", "BANK", "their bank (default sha256)"},
      {"auth-file", "FILE", "the authority's password, if it has one"}}},
    {"approvals", do_approvals, NULL, 0, 0, "list approvals", NULL, "citadel tpm policy approvals --authority release",
     {{"authority", "AUTH", "only this authority's"}}},
    {"explain", do_explain, "NAME", 1, 1, "the policy in plain language", NULL, "citadel tpm policy explain boot", {{0}}},
    {0}};
