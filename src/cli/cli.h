/* SPDX-License-Identifier: Apache-2.0 */
/* The `citadel` command line: a table of nouns and verbs, each a thin call into libcitadel. */
#pragma once
#include <jansson.h>
#include <stdbool.h>

#include "citadel/citadel.h"

#define CLI_MAX_OPTS 12
#define CLI_MAX_POS 4

typedef struct cli_opt {
    const char *name;    /* long name without "--" */
    const char *metavar; /* NULL: a flag */
    const char *help;
} cli_opt;

typedef struct cli_args {
    int npos;
    const char *pos[CLI_MAX_POS];
    const char *val[CLI_MAX_OPTS];
    bool set[CLI_MAX_OPTS];
    const struct cli_verb *verb;
} cli_args;

typedef struct cli_env {
    cit_ctx *ctx;
    cit_format fmt;
    bool plan;
    bool verbose;
    int exit_status; /* a command may ask for a non-zero exit with a rendered result */
    bool in_batch;   /* inside `batch`: a command cannot be handed to citadel-net */
    char **argv;     /* the process's own arguments, handed on by cli_exec_net */
    bool handed_over; /* this process was started by cli_exec_net (CITADEL_NET_EXEC) */
} cli_env;

typedef int (*cli_fn)(cli_env *env, const cli_args *a, json_t **out);

typedef struct cli_verb {
    const char *name;
    cli_fn fn;
    const char *args;    /* positional synopsis, e.g. "PATH" or "OLD NEW" */
    int min_pos, max_pos;
    const char *summary; /* one line */
    const char *help;    /* paragraph(s) */
    const char *example;
    cli_opt opts[CLI_MAX_OPTS];
} cli_verb;

typedef struct cli_noun {
    const char *name;
    const char *summary;
    const cli_verb *verbs; /* terminated by {0}; a noun with one verb named "" is a command */
} cli_noun;

extern const cli_noun cli_nouns[];

/* Value of option name, or NULL. */
const char *cli_get(const cli_args *a, const char *name);
bool cli_flag(const cli_args *a, const char *name);
/* Parses a positive int option; 0 when absent; -1 (error recorded) when bad. */
int cli_get_int(const cli_args *a, const char *name, int *out);

/* Commands (one file per noun). */
extern const cli_verb cli_verbs_init[], cli_verbs_status[], cli_verbs_doctor[], cli_verbs_capabilities[],
    cli_verbs_debug[], cli_verbs_workspace[], cli_verbs_log[], cli_verbs_key[], cli_verbs_object[],
    cli_verbs_explain[], cli_verbs_completions[], cli_verbs_batch[], cli_verbs_lockout[], cli_verbs_pcr[], cli_verbs_secret[], cli_verbs_nv[], cli_verbs_policy[], cli_verbs_profile[], cli_verbs_template[], cli_verbs_identity[], cli_verbs_approval[], cli_verbs_ek[], cli_verbs_attest[], cli_verbs_recover[], cli_verbs_repair[], cli_verbs_gc[], cli_verbs_audit[], cli_verbs_measure[];
/* ca (issue 8) */
extern const cli_verb cli_verbs_ca[];

/* enroll: `citadel node` and `citadel enroll`. Their tables are in net_verbs.c (in both binaries),
 * their handlers in cmd_node.c and cmd_enroll.c, linked only into citadel-net. */
extern const cli_verb cli_verbs_node[], cli_verbs_enroll[];
/* Runs this process's command line in citadel-net (beside this program) instead: returns only on
 * failure (an error recorded, its exit status returned). */
int cli_exec_net(cli_env *env);

/* Used by completions and help. */
void cli_print_usage(FILE *f);
int cli_run(cli_env *env, int argc, char **argv);
