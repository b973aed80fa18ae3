/* SPDX-License-Identifier: Apache-2.0 */
/* explain, completions, batch */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "cli.h"

#define BATCH_MAX (1024u * 1024)
#define BATCH_ARGS 32

static int do_explain(cli_env *e, const cli_args *a, json_t **out) {
    const char *what = a->npos ? a->pos[0] : NULL;
    char buf[8192];
    if (!what) {
        size_t n, off = 0;
        const cit_topic *t = cit_topic_table(&n);
        json_t *topics = json_array();
        off += (size_t)snprintf(buf + off, sizeof buf - off, "Topics (citadel tpm explain TOPIC):\n");
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(topics, json_pack("{s:s,s:s}", "topic", t[i].name, "title", t[i].title));
            off += (size_t)snprintf(buf + off, sizeof buf - off, "  %-18s %s\n", t[i].name, t[i].title);
        }
        snprintf(buf + off, sizeof buf - off,
                 "\nError codes: citadel tpm explain TPM0004 (all codes: docs/ERRORS.md)\n");
        *out = json_pack("{s:o,s:s}", "topics", topics, "_text", buf);
        return 0;
    }
    const cit_code_info *ci = cit_code_lookup_name(what);
    if (ci) {
        char code[16];
        cit_code_format(code, sizeof code, ci->num);
        json_t *steps = json_array();
        size_t off = (size_t)snprintf(buf, sizeof buf, "%s %s (class %s, exit status %d)\n\n%s.\n\nNext steps:\n", code,
                                      ci->name, ci->cls, cit_code_exit_status(-ci->num), ci->message);
        const char *p = ci->steps;
        int k = 1;
        while (p && *p) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            json_array_append_new(steps, json_stringn(p, len));
            off += (size_t)snprintf(buf + off, sizeof buf - off, "  %d. %.*s\n", k++, (int)len, p);
            p += len + (nl ? 1 : 0);
        }
        *out = json_pack("{s:s,s:s,s:s,s:s,s:i,s:o,s:s}", "code", code, "name", ci->name, "class", ci->cls, "message",
                         ci->message, "exit_status", cit_code_exit_status(-ci->num), "next_steps", steps, "_text", buf);
        return 0;
    }
    const cit_topic *t = cit_topic_lookup(what);
    if (t) {
        snprintf(buf, sizeof buf, "%s: %s\n\n%s%s%s%s", t->name, t->title, t->text, t->see_also ? "\nSee also: " : "",
                 t->see_also ? t->see_also : "", t->see_also ? "\n" : "");
        *out = json_pack("{s:s,s:s,s:s,s:s?,s:s}", "topic", t->name, "title", t->title, "text", t->text, "see_also",
                         t->see_also, "_text", buf);
        return 0;
    }
    cit_error_set(CIT_E_UNKNOWN_TOPIC, "nothing to explain for '%s'", what);
    cit_error_cause("it is neither an error code (TPM0004) nor a topic");
    return CIT_E_UNKNOWN_TOPIC;
}

/* ---- completions, generated from the command table ---- */

static void verbs_of(const cli_noun *n, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = 0;
    for (const cli_verb *v = n->verbs; v->name; v++)
        if (v->name[0])
            off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? " " : "", v->name);
}

static void opts_of(const cli_verb *v, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < CLI_MAX_OPTS && v->opts[i].name; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s--%s", off ? " " : "", v->opts[i].name);
    snprintf(buf + off, len - off, "%s--help", off ? " " : "");
}

static const char *const globals = "--json --format --backend --tcti --store-path --plan --verbose --help --version";

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (k < 0)
            return -1;
        if (*len + (size_t)k < *cap) {
            *len += (size_t)k;
            return 0;
        }
        size_t ncap = *cap * 2 + (size_t)k;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
}

static int do_completions(cli_env *e, const cli_args *a, json_t **out) {
    const char *shell = a->pos[0];
    size_t cap = 8192, len = 0;
    char *s = malloc(cap);
    if (!s)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    s[0] = 0;
    char nouns[512] = "", verbs[256], opts[512];
    size_t off = 0;
    for (const cli_noun *n = cli_nouns; n->name; n++)
        off += (size_t)snprintf(nouns + off, sizeof nouns - off, "%s%s", off ? " " : "", n->name);
    if (strcmp(shell, "bash") == 0) {
        append(&s, &len, &cap,
               "# bash completion for citadel; source it or put it in /etc/bash_completion.d/citadel\n"
               "_citadel() {\n"
               "    local cur words noun= verb= i\n"
               "    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
               "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
               "        case \"${COMP_WORDS[i]}\" in\n"
               "            tpm) ;;\n"
               "            --format|--backend|--tcti|--store-path) ((i++)) ;;\n"
               "            -*) ;;\n"
               "            *) if [ -z \"$noun\" ]; then noun=${COMP_WORDS[i]}; elif [ -z \"$verb\" ]; then verb=${COMP_WORDS[i]}; fi ;;\n"
               "        esac\n"
               "    done\n"
               "    case \"${COMP_WORDS[COMP_CWORD-1]}\" in\n"
               "        --format) COMPREPLY=($(compgen -W 'text json yaml' -- \"$cur\")); return ;;\n"
               "        --backend) COMPREPLY=($(compgen -W 'auto vtpm mock swtpm device' -- \"$cur\")); return ;;\n"
               "        --algorithm) COMPREPLY=($(compgen -W 'ecc-p256 ecc-p384 rsa-2048 rsa-3072' -- \"$cur\")); return ;;\n"
               "        --export-for) COMPREPLY=($(compgen -W 'openssl pem cosign ssh jwk' -- \"$cur\")); return ;;\n"
               "        --input|--output|--signature|--store-path) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
               "    esac\n"
               "    if [ -z \"$noun\" ]; then\n"
               "        COMPREPLY=($(compgen -W '%s %s' -- \"$cur\")); return\n"
               "    fi\n"
               "    case \"$noun\" in\n",
               nouns, globals);
        for (const cli_noun *n = cli_nouns; n->name; n++) {
            verbs_of(n, verbs, sizeof verbs);
            append(&s, &len, &cap, "        %s)\n", n->name);
            if (verbs[0]) {
                append(&s, &len, &cap, "            if [ -z \"$verb\" ]; then COMPREPLY=($(compgen -W '%s' -- \"$cur\")); return; fi\n"
                                       "            case \"$verb\" in\n", verbs);
                for (const cli_verb *v = n->verbs; v->name; v++) {
                    opts_of(v, opts, sizeof opts);
                    append(&s, &len, &cap, "                %s) COMPREPLY=($(compgen -W '%s' -- \"$cur\")) ;;\n", v->name, opts);
                }
                append(&s, &len, &cap, "            esac ;;\n");
            } else {
                opts_of(&n->verbs[0], opts, sizeof opts);
                if (strcmp(n->name, "completions") == 0)
                    snprintf(opts, sizeof opts, "bash zsh fish");
                if (strcmp(n->name, "explain") == 0) {
                    size_t nt;
                    const cit_topic *t = cit_topic_table(&nt);
                    size_t o2 = 0;
                    for (size_t i = 0; i < nt; i++)
                        o2 += (size_t)snprintf(opts + o2, sizeof opts - o2, "%s%s", o2 ? " " : "", t[i].name);
                }
                append(&s, &len, &cap, "            COMPREPLY=($(compgen -W '%s' -- \"$cur\")) ;;\n", opts);
            }
        }
        append(&s, &len, &cap, "    esac\n}\ncomplete -F _citadel citadel\n");
    } else if (strcmp(shell, "zsh") == 0) {
        append(&s, &len, &cap,
               "#compdef citadel\n# zsh completion for citadel: put it in a directory on $fpath as _citadel\n"
               "_citadel() {\n"
               "    local -a words2; words2=(${words:#tpm}); words2=(${words2:#-*})\n"
               "    local noun=${words2[2]} verb=${words2[3]}\n"
               "    if (( ${#words2} <= 2 )); then compadd -- %s %s; return; fi\n"
               "    case $noun in\n",
               nouns, globals);
        for (const cli_noun *n = cli_nouns; n->name; n++) {
            verbs_of(n, verbs, sizeof verbs);
            if (verbs[0]) {
                append(&s, &len, &cap, "        %s)\n            if (( ${#words2} <= 3 )); then compadd -- %s; return; fi\n"
                                       "            case $verb in\n", n->name, verbs);
                for (const cli_verb *v = n->verbs; v->name; v++) {
                    opts_of(v, opts, sizeof opts);
                    append(&s, &len, &cap, "                %s) compadd -- %s; _files ;;\n", v->name, opts);
                }
                append(&s, &len, &cap, "            esac ;;\n");
            } else {
                opts_of(&n->verbs[0], opts, sizeof opts);
                if (strcmp(n->name, "completions") == 0)
                    snprintf(opts, sizeof opts, "bash zsh fish");
                append(&s, &len, &cap, "        %s) compadd -- %s ;;\n", n->name, opts);
            }
        }
        append(&s, &len, &cap, "    esac\n}\ncompdef _citadel citadel\n");
    } else if (strcmp(shell, "fish") == 0) {
        append(&s, &len, &cap, "# fish completion for citadel: save as ~/.config/fish/completions/citadel.fish\n"
                               "complete -c citadel -f\n"
                               "complete -c citadel -l json -d 'JSON output'\n"
                               "complete -c citadel -l format -x -a 'text json yaml'\n"
                               "complete -c citadel -l backend -x -a 'auto vtpm mock swtpm device'\n"
                               "complete -c citadel -l tcti -x\ncomplete -c citadel -l store-path -r\n"
                               "complete -c citadel -l plan -d 'show TPM operations, change nothing'\n"
                               "complete -c citadel -l verbose\n");
        append(&s, &len, &cap, "complete -c citadel -n 'not __fish_seen_subcommand_from %s' -a '%s'\n", nouns, nouns);
        for (const cli_noun *n = cli_nouns; n->name; n++) {
            verbs_of(n, verbs, sizeof verbs);
            if (verbs[0])
                append(&s, &len, &cap, "complete -c citadel -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a '%s' -d '%s'\n",
                       n->name, verbs, verbs, n->name);
            for (const cli_verb *v = n->verbs; v->name; v++)
                for (int i = 0; i < CLI_MAX_OPTS && v->opts[i].name; i++)
                    append(&s, &len, &cap, "complete -c citadel -n '__fish_seen_subcommand_from %s' -l %s%s -d '%s'\n",
                           v->name[0] ? v->name : n->name, v->opts[i].name, v->opts[i].metavar ? " -r" : "",
                           v->opts[i].help);
        }
        append(&s, &len, &cap, "complete -c citadel -n '__fish_seen_subcommand_from completions' -a 'bash zsh fish'\n");
    } else {
        free(s);
        cit_error_set(CIT_E_USAGE, "unknown shell: %s", shell);
        cit_error_cause("completions are available for bash, zsh and fish");
        return CIT_E_USAGE;
    }
    *out = json_pack("{s:s,s:s,s:s}", "shell", shell, "script", s, "_text", s);
    free(s);
    return 0;
}

/* ---- batch: many commands, one process, one TPM session ---- */

static int split_line(char *line, char **argv, int max) {
    int argc = 0;
    char *p = line, *w = line;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            break;
        if (argc >= max)
            return -1;
        argv[argc++] = w;
        char quote = 0;
        while (*p && (quote || (*p != ' ' && *p != '\t'))) {
            if (!quote && (*p == '\'' || *p == '"'))
                quote = *p++;
            else if (quote && *p == quote) {
                quote = 0;
                p++;
            } else if (*p == '\\' && p[1] && quote != '\'') {
                *w++ = p[1];
                p += 2;
            } else
                *w++ = *p++;
        }
        if (quote)
            return -2;
        if (*p)
            p++;
        *w++ = 0;
    }
    return argc;
}

static int do_batch(cli_env *e, const cli_args *a, json_t **out) {
    const char *input = cli_get(a, "input") ? cli_get(a, "input") : "-";
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = cit_read_file(input, BATCH_MAX, &buf, &len);
    if (r < 0) {
        cit_error_set(r == -EFBIG ? CIT_E_INPUT_TOO_LARGE : CIT_E_INPUT_READ, "cannot read the batch %s: %s", input,
                      r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
        return cit_error_last()->code;
    }
    bool keep_going = cli_flag(a, "keep-going");
    int ran = 0, failed = 0, lineno = 0, status = 0;
    char *save = NULL;
    for (char *line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *argv[BATCH_ARGS];
        int argc = split_line(line, argv, BATCH_ARGS);
        if (argc == 0)
            continue;
        if (argc < 0) {
            free(buf);
            cit_error_set(CIT_E_USAGE, "batch line %d: %s", lineno, argc == -1 ? "too many arguments" : "unclosed quote");
            return CIT_E_USAGE;
        }
        int k = 0;
        if (strcmp(argv[0], "citadel") == 0)
            k++;
        if (k < argc && strcmp(argv[k], "tpm") == 0)
            k++;
        if (k < argc && strcmp(argv[k], "batch") == 0) {
            free(buf);
            cit_error_set(CIT_E_USAGE, "batch line %d: batches do not nest", lineno);
            return CIT_E_USAGE;
        }
        if (ran++ && e->fmt == CIT_FORMAT_TEXT)
            fputc('\n', stdout); /* a blank line between the commands' results */
        /* options after a verb (--json, --plan, ...) hold for that line only */
        cli_env saved = *e;
        e->in_batch = true;
        int st = cli_run(e, argc - k, argv + k);
        e->in_batch = saved.in_batch;
        e->fmt = saved.fmt;
        e->verbose = saved.verbose;
        if (e->plan != saved.plan) {
            e->plan = saved.plan;
            cit_ctx_set_plan(e->ctx, saved.plan);
        }
        if (st != 0) {
            failed++;
            status = st;
            if (!keep_going)
                break;
        }
    }
    free(buf);
    e->exit_status = status;
    if (e->fmt == CIT_FORMAT_TEXT && !e->verbose)
        return 0;
    *out = json_pack("{s:s,s:i,s:i}", "batch", input, "commands", ran, "failed", failed);
    return 0;
}

const cli_verb cli_verbs_explain[] = {
    {"", do_explain, "[TOPIC|CODE]", 0, 1, "explain an error code or a TPM topic",
     "With no argument, lists the topics. A code is TPM0004 or its name (OBJECT_NOT_FOUND).", "citadel tpm explain pcr",
     {{0}}},
    {0}};

const cli_verb cli_verbs_completions[] = {
    {"", do_completions, "SHELL", 1, 1, "print shell completions for bash, zsh or fish", NULL,
     "citadel tpm completions bash > /etc/bash_completion.d/citadel", {{0}}},
    {0}};

const cli_verb cli_verbs_batch[] = {
    {"", do_batch, NULL, 0, 0, "run several commands in one process (one TPM session)",
     "Reads one command per line (\"key sign k --input f\", optionally prefixed with \"citadel tpm\"),\n"
     "'#' starts a comment, quotes group words. All commands share the global options and one\n"
     "TPM session, which is how the in-memory mock backend runs multi-step flows. Stops at the\n"
     "first failure unless --keep-going.",
     "printf 'key create a\\nkey sign a --input f --output f.sig\\n' | citadel tpm --backend mock batch",
     {{"input", "FILE", "the commands (default: stdin)"}, {"keep-going", NULL, "run the rest after a failure"}}},
    {0}};
