/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "basic/util.h"
#include "cli.h"

static int index_arg(const char *s, uint32_t *out) {
    if (!s) {
        cit_error_set(CIT_E_USAGE, "--index is required");
        return CIT_E_USAGE;
    }
    if (cit_parse_u32(s, out) < 0) {
        cit_error_set(CIT_E_PCR_INVALID, "invalid PCR index: %s", s);
        cit_error_cause("PCR indices are 0-23");
        return CIT_E_PCR_INVALID;
    }
    return 0;
}

static int do_show(cli_env *e, const cli_args *a, json_t **out) {
    return cit_pcr_show(out, e->ctx, cli_get(a, "bank"), cli_get(a, "index"));
}

static int do_extend(cli_env *e, const cli_args *a, json_t **out) {
    uint32_t i;
    int r = index_arg(cli_get(a, "index"), &i);
    if (r < 0)
        return r;
    return cit_pcr_extend(out, e->ctx, i, cli_get(a, "data"), cli_get(a, "digest"), cli_get(a, "bank"));
}

static int do_reset(cli_env *e, const cli_args *a, json_t **out) {
    uint32_t i;
    int r = index_arg(cli_get(a, "index"), &i);
    if (r < 0)
        return r;
    return cit_pcr_reset(out, e->ctx, i);
}

/* `pcr baseline save|diff|list|delete [NAME]` */
static int do_baseline(cli_env *e, const cli_args *a, json_t **out) {
    const char *action = a->pos[0], *name = a->npos > 1 ? a->pos[1] : NULL;
    bool needs_name = strcmp(action, "list") != 0;
    if (strcmp(action, "save") != 0 && strcmp(action, "diff") != 0 && strcmp(action, "list") != 0 &&
        strcmp(action, "delete") != 0) {
        cit_error_set(CIT_E_USAGE, "unknown baseline action: %s", action);
        cit_error_cause("`pcr baseline` takes save, diff, list or delete");
        return CIT_E_USAGE;
    }
    if (needs_name != (name != NULL)) {
        cit_error_set(CIT_E_USAGE, needs_name ? "baseline %s needs a NAME" : "baseline %s takes no NAME", action);
        return CIT_E_USAGE;
    }
    if (strcmp(action, "save") == 0)
        return cit_baseline_save(out, e->ctx, name, cli_get(a, "index"), cli_get(a, "bank"));
    if (strcmp(action, "list") == 0)
        return cit_baseline_list(out, e->ctx);
    if (strcmp(action, "delete") == 0)
        return cit_baseline_delete(out, e->ctx, name);
    bool changed = false;
    int r = cit_baseline_diff(out, e->ctx, name, &changed);
    if (r == 0 && changed && !cli_flag(a, "exit-zero"))
        e->exit_status = 1; /* like diff(1): 1 when something differs */
    return r;
}

const cli_verb cli_verbs_pcr[] = {
    {"show", do_show, NULL, 0, 0, "PCR values, read from the TPM",
     "With the vtpm backend PCRs 0-15 keep their values from one command to the next (the\n"
     "embedded TPM saves them); 16-23 start at their reset value in every process.",
     "citadel tpm pcr show --index 0-7 --bank sha256",
     {{"bank", "BANK", "sha1, sha256 (default), sha384 or sha512"},
      {"index", "LIST", "PCR indices, e.g. 0,7,11 or 0-7 (default: all 24)"}}},
    {"extend", do_extend, NULL, 0, 0, "extend a PCR: new = H(old || digest)",
     "--data hashes the file with the bank's algorithm and extends with that digest; --digest\n"
     "extends with the given value. PCRs 17-22 need a higher locality than citadel's (0).",
     "citadel tpm pcr extend --index 16 --data build.log",
     {{"index", "N", "the PCR (0-23; required)"},
      {"data", "FILE", "extend with the digest of FILE"},
      {"digest", "HEX", "extend with this digest (the bank's size)"},
      {"bank", "BANK", "sha1, sha256 (default), sha384 or sha512"}}},
    {"reset", do_reset, NULL, 0, 0, "reset a resettable PCR (16-23)",
     "PCRs 0-15 hold the boot measurements and only a reboot resets them; at locality 0 the\n"
     "TPM lets 16 and 23 be reset.",
     "citadel tpm pcr reset --index 16", {{"index", "N", "the PCR (16-23; required)"}}},
    {"baseline", do_baseline, "save|diff|list|delete [NAME]", 1, 2, "save PCR values and compare them later",
     "save NAME records the PCRs now (default 0-7 of sha256); diff NAME lists the PCRs that\n"
     "changed with their old and new values and exits 1 when any did (0 with --exit-zero);\n"
     "list and delete manage them. Baselines are objects of kind baseline in the store.",
     "citadel tpm pcr baseline save boot --index 0-7 && citadel tpm pcr baseline diff boot",
     {{"index", "LIST", "save: the PCRs to record (default 0-7)"},
      {"bank", "BANK", "save: the bank (default sha256)"},
      {"exit-zero", NULL, "diff: exit 0 even when PCRs changed"}}},
    {0}};
