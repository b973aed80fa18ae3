/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "cli.h"

const cli_noun cli_nouns[] = {
    {"init", "create the workspace: the store and (for vtpm) the embedded TPM", cli_verbs_init},
    {"status", "backend, TPM identity, objects and a health score", cli_verbs_status},
    {"doctor", "check backend, self-test, lockout, store integrity and store-vs-TPM consistency", cli_verbs_doctor},
    {"capabilities", "algorithms, curves, PCR banks and limits, read from the TPM", cli_verbs_capabilities},
    {"key", "signing and storage keys: create, sign, verify, export, rotate, delete", cli_verbs_key},
    {"object", "every object in the store: list, tree, dependents, rename, retire", cli_verbs_object},
    {"pcr", "PCR values, extend and reset, and PCR baselines", cli_verbs_pcr},
    {"policy", "YAML policies compiled to TPM policy digests, tested in real sessions", cli_verbs_policy},
    {"identity", "keys with a purpose: PCR- or authority-bound, CSRs and certificates", cli_verbs_identity},
    {"ek", "the endorsement key: show, its certificate from NV, verify it against manufacturer CAs", cli_verbs_ek},
    {"secret", "secrets sealed in the TPM, optionally bound to PCR values", cli_verbs_secret},
    {"nv", "NV indices: ordinary, counter, bits and extend; write-lockable", cli_verbs_nv},
    {"workspace", "workspace information, export and import", cli_verbs_workspace},
    {"profile", "the workspace's defaults and constraints", cli_verbs_profile},
    {"template", "ready recipes for keys and sealed secrets", cli_verbs_template},
    {"approval", "sign requests under a profile that requires approval (two-person)", cli_verbs_approval},
    {"attest", "attestation keys, quotes and their verification, credential activation, event logs and IMA", cli_verbs_attest},
    {"recover", "recovery playbooks: detection, steps and commands (tpm-cleared, boot-change, ...)", cli_verbs_recover},
    {"repair", "find and fix where the store and the TPM disagree", cli_verbs_repair},
    {"gc", "remove retired objects past retention, orphaned blobs, leftover files", cli_verbs_gc},
    {"audit", "the tamper-evident audit log: append, segments, signed checkpoints, proofs, witnesses", cli_verbs_audit},
    {"ca", "certificate authority: root/intermediate CAs, issue by profile, revoke, CRLs, trust stores", cli_verbs_ca},
    {"measure", "the Measured Merkle Anchor: measurements sealed into the audit log and extended into a PCR",
     cli_verbs_measure},
    /* ---- enroll ---- */
    {"node", "enroll this TPM with an enrolld server, its certificates, settings and renewal", cli_verbs_node},
    {"enroll", "operate an enrolld server: list, approve, deny, revoke nodes; settings; CRL", cli_verbs_enroll},
    /* ---- end enroll ---- */
    {"lockout", "dictionary-attack counter and lockout recovery", cli_verbs_lockout},
    {"log", "the operation log", cli_verbs_log},
    {"debug", "write a bug-report bundle (no secrets)", cli_verbs_debug},
    {"explain", "explain an error code or a TPM topic", cli_verbs_explain},
    {"completions", "shell completions for bash, zsh or fish", cli_verbs_completions},
    {"batch", "run several commands in one process (one TPM session)", cli_verbs_batch},
    {0},
};

static const char *const global_help =
    "Global options (before the noun):\n"
    "  --json                 same as --format json\n"
    "  --format FMT           text (default), json or yaml\n"
    "  --backend B            auto, vtpm, mock, swtpm or device (env TPM_BACKEND)\n"
    "  --tcti CONF            TCTI for swtpm/device, e.g. swtpm:host=127.0.0.1,port=2321 (env TPM_TCTI)\n"
    "  --store-path P         the workspace store (env TPM_STORE_PATH;\n"
    "                         default $XDG_DATA_HOME/citadel/store.db)\n"
    "  --plan                 show the TPM operations a command would perform; change nothing\n"
    "  --verbose              print the backend, store and timing to stderr\n"
    "  --version, --help\n";

static bool is_command(const cli_noun *n) { return n->verbs[0].name && n->verbs[0].name[0] == 0; }

void cli_print_usage(FILE *f) {
    fputs("usage: citadel tpm [global options] <noun> <verb> [arguments]\n\n"
          "Citadel manages the TPM as a store of named objects.\n\nCommands:\n",
          f);
    for (const cli_noun *n = cli_nouns; n->name; n++) {
        if (is_command(n))
            fprintf(f, "  %-14s %s\n", n->name, n->summary);
        else {
            char verbs[200] = "";
            size_t off = 0;
            for (const cli_verb *v = n->verbs; v->name; v++)
                off += (size_t)snprintf(verbs + off, sizeof verbs - off, "%s%s", off ? "|" : "", v->name);
            fprintf(f, "  %-14s %s\n  %-14s   %s\n", n->name, n->summary, "", verbs);
        }
    }
    fputs("\n", f);
    fputs(global_help, f);
    fputs("\nRun `citadel tpm <noun> --help` or `citadel tpm <noun> <verb> --help` for details.\n"
          "Error codes: `citadel tpm explain TPM0004`; all codes in docs/ERRORS.md.\n",
          f);
}

static void print_noun_help(FILE *f, const cli_noun *n) {
    fprintf(f, "usage: citadel tpm %s <verb> [arguments]\n\n%s\n\nVerbs:\n", n->name, n->summary);
    for (const cli_verb *v = n->verbs; v->name; v++)
        fprintf(f, "  %-12s %s\n", v->name, v->summary);
    fprintf(f, "\nRun `citadel tpm %s <verb> --help` for a verb's options.\n", n->name);
}

static void print_verb_help(FILE *f, const cli_noun *n, const cli_verb *v) {
    fprintf(f, "usage: citadel tpm %s%s%s%s%s", n->name, v->name[0] ? " " : "", v->name, v->args ? " " : "",
            v->args ? v->args : "");
    for (int i = 0; i < CLI_MAX_OPTS && v->opts[i].name; i++)
        fprintf(f, " [--%s%s%s]", v->opts[i].name, v->opts[i].metavar ? " " : "",
                v->opts[i].metavar ? v->opts[i].metavar : "");
    fprintf(f, "\n\n%s\n", v->summary);
    if (v->help)
        fprintf(f, "\n%s\n", v->help);
    if (v->opts[0].name) {
        fputs("\nOptions:\n", f);
        for (int i = 0; i < CLI_MAX_OPTS && v->opts[i].name; i++) {
            char left[64];
            snprintf(left, sizeof left, "--%s%s%s", v->opts[i].name, v->opts[i].metavar ? " " : "",
                     v->opts[i].metavar ? v->opts[i].metavar : "");
            fprintf(f, "  %-24s %s\n", left, v->opts[i].help);
        }
    }
    if (v->example)
        fprintf(f, "\nExample:\n  %s\n", v->example);
    fputs("\nGlobal options (--json, --format, --backend, --store-path, --plan, ...): `citadel tpm --help`.\n", f);
}

const char *cli_get(const cli_args *a, const char *name) {
    for (int i = 0; i < CLI_MAX_OPTS && a->verb->opts[i].name; i++)
        if (strcmp(a->verb->opts[i].name, name) == 0)
            return a->set[i] ? a->val[i] : NULL;
    return NULL;
}

bool cli_flag(const cli_args *a, const char *name) {
    for (int i = 0; i < CLI_MAX_OPTS && a->verb->opts[i].name; i++)
        if (strcmp(a->verb->opts[i].name, name) == 0)
            return a->set[i];
    return false;
}

int cli_get_int(const cli_args *a, const char *name, int *out) {
    const char *s = cli_get(a, name);
    *out = 0;
    if (!s)
        return 0;
    uint32_t v;
    if (cit_parse_u32(s, &v) < 0 || v > 1000000) {
        cit_error_set(CIT_E_USAGE, "--%s takes a positive number, not '%s'", name, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int usage_error(const cli_noun *n, const cli_verb *v, const char *what, const char *arg) {
    cit_error_set(CIT_E_USAGE, "%s: %s", what, arg);
    if (n && v)
        cit_error_step("run `citadel tpm %s%s%s --help` to see its options", n->name, v->name[0] ? " " : "", v->name);
    else if (n)
        cit_error_step("run `citadel tpm %s --help` to see its verbs", n->name);
    else
        cit_error_step("run `citadel tpm --help` to see the commands");
    return CIT_E_USAGE;
}

/* Global options that may also follow the verb (`key list --json`). 1 when arg was one. */
static int late_global(cli_env *env, int argc, char **argv, int *i) {
    const char *arg = argv[*i];
    if (strcmp(arg, "--json") == 0)
        env->fmt = CIT_FORMAT_JSON;
    else if (strcmp(arg, "--verbose") == 0)
        env->verbose = true;
    else if (strcmp(arg, "--plan") == 0) {
        env->plan = true;
        cit_ctx_set_plan(env->ctx, true);
    } else if (strncmp(arg, "--format=", 9) == 0 || strcmp(arg, "--format") == 0) {
        const char *val = arg[8] == '=' ? arg + 9 : (*i + 1 < argc ? argv[++*i] : NULL);
        if (!val) {
            cit_error_set(CIT_E_USAGE, "--format needs a value");
            return -1;
        }
        return cit_format_parse(val, &env->fmt) < 0 ? -1 : 1;
    } else if (strcmp(arg, "--backend") == 0 || strcmp(arg, "--store-path") == 0 || strcmp(arg, "--tcti") == 0 ||
               strncmp(arg, "--backend=", 10) == 0 || strncmp(arg, "--store-path=", 13) == 0 ||
               strncmp(arg, "--tcti=", 7) == 0) {
        cit_error_set(CIT_E_USAGE, "%s must come before the command", arg);
        cit_error_cause("--backend, --store-path and --tcti choose the workspace, before anything runs");
        cit_error_step("write it as `citadel tpm %s ... <noun> <verb> ...`", arg);
        return -1;
    } else
        return 0;
    return 1;
}

static int parse_verb_args(cli_env *env, const cli_noun *n, const cli_verb *v, int argc, char **argv, cli_args *a,
                           bool *help) {
    memset(a, 0, sizeof(*a));
    a->verb = v;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_pos && strcmp(arg, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (!only_pos && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            *help = true;
            return 0;
        }
        if (!only_pos && arg[0] == '-' && arg[1] == '-') {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t nl = eq ? (size_t)(eq - name) : strlen(name);
            int k = -1;
            for (int j = 0; j < CLI_MAX_OPTS && v->opts[j].name; j++)
                if (strlen(v->opts[j].name) == nl && strncmp(v->opts[j].name, name, nl) == 0)
                    k = j;
            if (k < 0) {
                int g = late_global(env, argc, argv, &i);
                if (g < 0)
                    return CIT_E_USAGE;
                if (g > 0)
                    continue;
                return usage_error(n, v, "unknown option", arg);
            }
            if (v->opts[k].metavar) {
                if (eq)
                    a->val[k] = eq + 1;
                else if (i + 1 < argc)
                    a->val[k] = argv[++i];
                else
                    return usage_error(n, v, "option needs a value", arg);
            } else if (eq)
                return usage_error(n, v, "option takes no value", arg);
            a->set[k] = true;
            continue;
        }
        if (!only_pos && arg[0] == '-' && arg[1] != 0)
            return usage_error(n, v, "unknown option", arg);
        if (a->npos >= v->max_pos || a->npos >= CLI_MAX_POS)
            return usage_error(n, v, "unexpected argument", arg);
        a->pos[a->npos++] = arg;
    }
    if (a->npos < v->min_pos)
        return usage_error(n, v, "missing argument", v->args ? v->args : "");
    return 0;
}

static int run_verb(cli_env *env, const cli_noun *n, const cli_verb *v, int argc, char **argv) {
    cli_args a;
    bool help = false;
    int r = parse_verb_args(env, n, v, argc, argv, &a, &help);
    if (r < 0) {
        cit_error_render(stderr, cit_error_last(), env->fmt);
        return cit_code_exit_status(r);
    }
    if (help) {
        print_verb_help(stdout, n, v);
        return 0;
    }
    if (!v->fn) /* a network command: it lives in citadel-net (net_verbs.c) */
        return cli_exec_net(env);
    json_t *out = NULL;
    env->exit_status = 0;
    uint64_t t0 = cit_now_usec();
    r = v->fn(env, &a, &out);
    if (r == 0 && out) {
        if (env->plan && json_object_get(out, "plan") == NULL) {
            /* read-only commands that have no TPM plan of their own */
        }
        cit_render(stdout, out, env->fmt);
    }
    json_decref(out);
    if (env->verbose)
        fprintf(stderr, "citadel: %s%s%s: backend %s, store %s, %.2f ms\n", n->name, v->name[0] ? " " : "", v->name,
                env->ctx ? cit_ctx_backend(env->ctx) : "-", env->ctx ? cit_ctx_store_path(env->ctx) : "-",
                (double)(cit_now_usec() - t0) / 1000.0);
    if (r < 0) {
        cit_error_render(stderr, cit_error_last(), env->fmt);
        return cit_code_exit_status(r);
    }
    return env->exit_status;
}

/* Runs one "<noun> <verb> args..." in env. */
int cli_run(cli_env *env, int argc, char **argv) {
    if (argc == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "help") == 0) {
        cli_print_usage(stdout);
        return argc == 0 ? 2 : 0;
    }
    const cli_noun *n = NULL;
    for (const cli_noun *x = cli_nouns; x->name; x++)
        if (strcmp(x->name, argv[0]) == 0)
            n = x;
    if (!n) {
        usage_error(NULL, NULL, "unknown command", argv[0]);
        cit_error_cause("commands: init, status, doctor, capabilities, key, object, pcr, policy, identity, ek, secret, nv, workspace, profile, template, approval, attest, recover, repair, gc, audit, measure, ca, lockout, log, debug, "
                        "explain, completions, batch");
        cit_error_render(stderr, cit_error_last(), env->fmt);
        return 2;
    }
    if (is_command(n))
        return run_verb(env, n, &n->verbs[0], argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_noun_help(argc < 2 ? stderr : stdout, n);
        return argc < 2 ? 2 : 0;
    }
    for (const cli_verb *v = n->verbs; v->name; v++)
        if (strcmp(v->name, argv[1]) == 0)
            return run_verb(env, n, v, argc - 2, argv + 2);
    usage_error(n, NULL, "unknown verb", argv[1]);
    char verbs[200] = "";
    size_t off = 0;
    for (const cli_verb *v = n->verbs; v->name; v++)
        off += (size_t)snprintf(verbs + off, sizeof verbs - off, "%s%s", off ? ", " : "", v->name);
    cit_error_cause("'%s' has the verbs: %s", n->name, verbs);
    cit_error_render(stderr, cit_error_last(), env->fmt);
    return 2;
}

int main(int argc, char **argv) {
    /* OpenSSL's random generator: Hash_DRBG with SHA-256 (NIST SP 800-90A, 256-bit strength like
     * the default CTR_DRBG with AES-256). Its first use then needs only the digests every command
     * fetches anyway, not the setup of all of OpenSSL's ciphers, which a command that uses no cipher
     * otherwise pays for once libtpms draws its entropy (`attest quote`: 0.6 ms). Set before the
     * configuration is read, so each setting of an openssl.cnf [random] section still wins; a
     * section that sets `cipher` without `random = CTR-DRBG` keeps Hash_DRBG. */
    RAND_set_DRBG_type(NULL, "HASH-DRBG", NULL, NULL, "SHA256");
    /* A short-lived process: the OS frees OpenSSL's global state faster than its atexit hook. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    cli_env env = {.fmt = CIT_FORMAT_TEXT, .argv = argv, .handed_over = getenv("CITADEL_NET_EXEC") != NULL};
    unsetenv("CITADEL_NET_EXEC"); /* for this process only, not whatever it runs */
    cit_ctx_options o = {0};
    int i = 1;
    /* "citadel tpm ..." (the tpm group is the only one so far; "citadel ..." works too) */
    if (i < argc && strcmp(argv[i], "tpm") == 0)
        i++;
    for (; i < argc && (argv[i][0] == '-' || strcmp(argv[i], "tpm") == 0); i++) {
        const char *a = argv[i];
        if (strcmp(a, "tpm") == 0) /* `citadel --json tpm ...` */
            continue;
        const char *val = NULL;
#define TAKE(opt)                                                                                       \
    (strcmp(a, opt) == 0 ? (i + 1 < argc ? (val = argv[++i], 1) : -1)                                  \
                         : (strncmp(a, opt "=", strlen(opt) + 1) == 0 ? (val = a + strlen(opt) + 1, 1) : 0))
        int t;
        if (strcmp(a, "--json") == 0)
            env.fmt = CIT_FORMAT_JSON;
        else if (strcmp(a, "--plan") == 0)
            env.plan = o.plan = true;
        else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0)
            env.verbose = true;
        else if (strcmp(a, "--version") == 0) {
            printf("citadel %s\n", CIT_VERSION);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_print_usage(stdout);
            return 0;
        } else if ((t = TAKE("--format")) != 0) {
            if (t < 0 || cit_format_parse(val, &env.fmt) < 0) {
                if (t < 0)
                    cit_error_set(CIT_E_USAGE, "--format needs a value");
                cit_error_render(stderr, cit_error_last(), CIT_FORMAT_TEXT);
                return 2;
            }
        } else if ((t = TAKE("--backend")) != 0) {
            if (t < 0)
                goto missing;
            o.backend = val;
        } else if ((t = TAKE("--tcti")) != 0) {
            if (t < 0)
                goto missing;
            o.tcti = val;
        } else if ((t = TAKE("--store-path")) != 0) {
            if (t < 0)
                goto missing;
            o.store_path = val;
        } else {
            cit_error_set(CIT_E_USAGE, "unknown global option: %s", a);
            cit_error_step("run `citadel tpm --help`");
            cit_error_render(stderr, cit_error_last(), env.fmt);
            return 2;
        }
        continue;
    missing:
        cit_error_set(CIT_E_USAGE, "%s needs a value", a);
        cit_error_render(stderr, cit_error_last(), env.fmt);
        return 2;
#undef TAKE
    }
    if (cit_ctx_new(&env.ctx, &o) < 0) {
        cit_error_render(stderr, cit_error_last(), env.fmt);
        return cit_code_exit_status(cit_error_last()->code);
    }
    int status = cli_run(&env, argc - i, argv + i);
    if (cit_ctx_close(env.ctx) < 0) {
        cit_error_render(stderr, cit_error_last(), env.fmt);
        if (status == 0)
            status = cit_code_exit_status(cit_error_last()->code);
    }
    return status;
}
