/* SPDX-License-Identifier: Apache-2.0 */
/* A cmocka fixture for unit tests on a real vTPM workspace: setup makes a temporary directory
 * with an initialised vtpm workspace (store.db and its state file), teardown removes it, and
 * open_ctx opens a context on it (the caller closes it). Include after cmocka.h. */
#pragma once
#include <stdio.h>
#include <stdlib.h>

#include "citadel/citadel.h"

static char dir[64];
static char store[128];

static int setup(void **state) {
    snprintf(dir, sizeof dir, "/tmp/cit-unit-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(store, sizeof store, "%s/store.db", dir);
    cit_ctx *ctx = NULL;
    cit_ctx_options o = {.store_path = store, .backend = "vtpm"};
    json_t *out = NULL;
    if (cit_ctx_new(&ctx, &o) < 0 || cit_workspace_init(&out, ctx, NULL) < 0)
        return -1;
    json_decref(out);
    return cit_ctx_close(ctx) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static cit_ctx *open_ctx(void) {
    cit_ctx *ctx = NULL;
    cit_ctx_options o = {.store_path = store, .backend = "vtpm"};
    assert_int_equal(cit_ctx_new(&ctx, &o), 0);
    return ctx;
}
