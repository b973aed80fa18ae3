/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>
#include <unistd.h>

#include "basic/util.h"
#include "cli.h"

static int do_seal(cli_env *e, const cli_args *a, json_t **out) {
    if (!cli_get(a, "input")) {
        cit_error_set(CIT_E_USAGE, "--input is required");
        return CIT_E_USAGE;
    }
    return cit_secret_seal(out, e->ctx, a->pos[0], cli_get(a, "input"), cli_get(a, "pcr"), cli_get(a, "bank"),
                           cli_get(a, "policy"), cli_get(a, "auth-file"), cli_get(a, "template"));
}

static int do_unseal(cli_env *e, const cli_args *a, json_t **out) {
    uint8_t *secret = NULL;
    size_t len = 0;
    int r = cit_secret_unseal(out, e->ctx, a->pos[0], cli_get(a, "auth-file"), &secret, &len);
    if (r < 0 || !secret) /* failure, or --plan */
        return r;
    const char *output = cli_get(a, "output");
    if (output) {
        int w = cit_write_file_atomic(output, secret, len, 0600, CIT_WRITE_DURABLE);
        if (w < 0) {
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s", output);
            cit_error_context("file", "%s", output);
        } else
            json_object_set_new(*out, "output", json_string(output));
    } else if (e->fmt == CIT_FORMAT_TEXT) {
        /* the secret itself is the output */
        int w = cit_write_file_atomic("-", secret, len, 0600, 0);
        json_decref(*out);
        *out = NULL;
        if (w < 0)
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write the secret to standard output");
    } else {
        char *hex = cit_hex_encode(secret, len);
        json_object_set_new(*out, "secret_hex", json_string(hex ? hex : ""));
        if (hex) {
            cit_memzero(hex, strlen(hex));
            free(hex);
        }
    }
    cit_memzero(secret, len);
    free(secret);
    if (r < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return r;
}

static int do_list(cli_env *e, const cli_args *a, json_t **out) { return cit_secret_list(out, e->ctx); }
static int do_delete(cli_env *e, const cli_args *a, json_t **out) {
    return cit_object_delete(out, e->ctx, a->pos[0], "secret", false);
}

const cli_verb cli_verbs_secret[] = {
    {"seal", do_seal, "PATH", 1, 1, "seal a secret in the TPM, optionally bound to PCR values",
     "With --pcr the TPM unseals it only while those PCRs hold the values they have now (a\n"
     "PolicyPCR policy the TPM enforces). Secrets over 128 bytes (up to 1 MiB) are encrypted\n"
     "with AES-256-GCM and the key is what the TPM seals.",
     "citadel tpm secret seal db/password --input pw.txt --pcr 0,7",
     {{"input", "FILE", "the secret ('-' = stdin; required)"},
      {"pcr", "LIST", "bind to these PCRs, e.g. 0,7"},
      {"bank", "BANK", "the PCR bank (default sha256)"},
      {"policy", "NAME", "bind to a stored policy (`citadel tpm policy compile`)"},
      {"auth-file", "FILE", "a password (required by policies with auth_value)"},
      {"template", "NAME", "a recipe, e.g. boot-sealed-secret (PCRs 0 and 7)"}}},
    {"unseal", do_unseal, "PATH", 1, 1, "unseal a secret (to a 0600 file, or standard output)",
     "Without --output the secret is written to standard output (as secret_hex with --json).\n"
     "When the bound PCRs changed the TPM refuses (TPM0047), nothing is written, and the error\n"
     "names the PCRs that differ.",
     "citadel tpm secret unseal db/password --output pw.txt",
     {{"output", "FILE", "write the secret to FILE, created with mode 0600"},
      {"auth-file", "FILE", "the secret's password, when it has one"}}},
    {"list", do_list, NULL, 0, 0, "list sealed secrets (never their contents)", NULL, "citadel tpm secret list", {{0}}},
    {"delete", do_delete, "PATH", 1, 1, "delete a sealed secret", NULL, "citadel tpm secret delete db/password", {{0}}},
    {0}};
