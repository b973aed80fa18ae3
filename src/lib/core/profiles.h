/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
#include <stdbool.h>

#include "core/ctx.h"

typedef struct cit_profile_def {
    const char *name;
    const char *description;
    const char *default_algorithm;
    const char *const *algorithms; /* allowed key algorithms, NULL-terminated */
    const char *path_prefix;       /* every object path must start with it; NULL: any */
    bool approval_required;        /* every signature needs an approved request (`approval`) */
} cit_profile_def;

/* The workspace's active profile (never NULL). */
const cit_profile_def *cit__profile_active(cit_ctx *ctx);

typedef struct cit_template_def {
    const char *name;
    const char *description;
    const char *kind;      /* key or secret */
    const char *algorithm; /* keys */
    const char *usage;     /* keys */
    bool persist;          /* keys */
    const char *pcrs;      /* secrets: PCR binding */
    bool available;
} cit_template_def;

const cit_profile_def *cit__profile_find(const char *name);
int cit__profile_unknown(const char *name);
/* Checks a new object's path (and key algorithm, when not NULL) against the active profile:
 * CIT_E_PROFILE_VIOLATION naming the constraint. */
int cit__profile_check(cit_ctx *ctx, const char *path, const char *algorithm);
/* A template by name for a kind of object (errors recorded). */
int cit__template_for(const char *name, const char *kind, const cit_template_def **out);
