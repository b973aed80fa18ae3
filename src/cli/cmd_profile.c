/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

static int do_list(cli_env *e, const cli_args *a, json_t **out) { return cit_profile_list(out, e->ctx); }
static int do_show(cli_env *e, const cli_args *a, json_t **out) {
    return cit_profile_show(out, e->ctx, a->npos ? a->pos[0] : NULL);
}
static int do_set(cli_env *e, const cli_args *a, json_t **out) { return cit_profile_set(out, e->ctx, a->pos[0]); }
static int do_tlist(cli_env *e, const cli_args *a, json_t **out) { return cit_template_list(out, e->ctx); }
static int do_tshow(cli_env *e, const cli_args *a, json_t **out) { return cit_template_show(out, e->ctx, a->pos[0]); }

const cli_verb cli_verbs_profile[] = {
    {"list", do_list, NULL, 0, 0, "the profiles, and which one the workspace uses", NULL, "citadel tpm profile list",
     {{0}}},
    {"show", do_show, "[NAME]", 0, 1, "a profile's defaults and constraints (default: the active one)",
     "Constraints are enforced whenever an object is created or renamed: allowed key algorithms and\n"
     "a path prefix. A violation is TPM0053.",
     "citadel tpm profile show fips-like", {{0}}},
    {"set", do_set, "NAME", 1, 1, "switch the workspace to another profile",
     "Existing objects stay as they are; new ones must meet the new profile.", "citadel tpm profile set ci-signer",
     {{0}}},
    {0}};

const cli_verb cli_verbs_template[] = {
    {"list", do_tlist, NULL, 0, 0, "ready recipes for keys and sealed secrets", NULL, "citadel tpm template list", {{0}}},
    {"show", do_tshow, "NAME", 1, 1, "what a template sets", NULL, "citadel tpm template show tls-server", {{0}}},
    {0}};
