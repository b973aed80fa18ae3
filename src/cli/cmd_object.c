/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

static int do_list(cli_env *e, const cli_args *a, json_t **out) {
    return cit_object_list(out, e->ctx, cli_get(a, "kind"));
}
static int do_tree(cli_env *e, const cli_args *a, json_t **out) { return cit_object_tree(out, e->ctx); }
static int do_deps(cli_env *e, const cli_args *a, json_t **out) {
    return cit_object_dependents(out, e->ctx, a->pos[0]);
}
static int do_rename(cli_env *e, const cli_args *a, json_t **out) {
    return cit_object_rename(out, e->ctx, a->pos[0], a->pos[1]);
}
static int do_retire(cli_env *e, const cli_args *a, json_t **out) {
    return cit_object_set_status(out, e->ctx, a->pos[0], false);
}
static int do_activate(cli_env *e, const cli_args *a, json_t **out) {
    return cit_object_set_status(out, e->ctx, a->pos[0], true);
}
static int do_delete(cli_env *e, const cli_args *a, json_t **out) {
    return cit_object_delete(out, e->ctx, a->pos[0], NULL, cli_flag(a, "force"));
}

const cli_verb cli_verbs_object[] = {
    {"list", do_list, NULL, 0, 0, "list all objects", NULL, "citadel tpm object list",
     {{"kind", "KIND", "only objects of this kind (key, ...)"}}},
    {"tree", do_tree, NULL, 0, 0, "objects as a tree of their paths", NULL, "citadel tpm object tree", {{0}}},
    {"dependents", do_deps, "PATH", 1, 1, "objects that depend on PATH (keys created under it)", NULL,
     "citadel tpm object dependents storage/app", {{0}}},
    {"rename", do_rename, "OLD NEW", 2, 2, "rename an object; its history follows it", NULL,
     "citadel tpm object rename signing/old signing/new", {{0}}},
    {"retire", do_retire, "PATH", 1, 1, "retire an object: it stays, but refuses to be used",
     NULL, "citadel tpm object retire signing/2024", {{0}}},
    {"activate", do_activate, "PATH", 1, 1, "make a retired object usable again", NULL,
     "citadel tpm object activate signing/2024", {{0}}},
    {"delete", do_delete, "PATH", 1, 1, "delete an object (and evict it if persistent)", NULL,
     "citadel tpm object delete signing/old", {{"force", NULL, "also delete the objects that depend on it"}}},
    {0}};
