/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `citadel tpm attest ...`: measured boot and remote attestation. A verb per subject, each
 * with a sub-action positional like `pcr baseline save|diff`:
 *   attest eventlog show|replay|secureboot FILE   firmware event logs (no TPM needed)
 *   attest ima show|replay FILE                   IMA runtime measurement lists
 * New verbs (ek, ak, quote, verify, credential) are rows in cli_verbs_attest below.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "basic/util.h"
#include "cli.h"

/* A sub-action of a verb: its name and what it runs. */
typedef struct sub_action {
    const char *name;
    int (*run)(const cli_args *a, const char *file, json_t **out);
} sub_action;

/* Finds a->pos[0] in actions and runs it on the FILE in a->pos[1]. */
static int dispatch(const cli_args *a, const char *verb, const sub_action *actions, json_t **out) {
    const char *action = a->pos[0], *file = a->npos > 1 ? a->pos[1] : NULL;
    for (const sub_action *s = actions; s->name; s++)
        if (strcmp(s->name, action) == 0) {
            if (!file) {
                cit_error_set(CIT_E_USAGE, "attest %s %s needs a FILE", verb, action);
                return CIT_E_USAGE;
            }
            return s->run(a, file, out);
        }
    char names[128] = "";
    size_t off = 0;
    for (const sub_action *s = actions; s->name; s++)
        off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", off ? ", " : "", s->name);
    cit_error_set(CIT_E_USAGE, "unknown %s action: %s", verb, action);
    cit_error_cause("`attest %s` takes %s", verb, names);
    return CIT_E_USAGE;
}

/* ---- eventlog ---- */

static int eventlog_show(const cli_args *a, const char *file, json_t **out) {
    return cit_eventlog_show(out, file, cli_get(a, "pcr"));
}
static int eventlog_replay(const cli_args *a, const char *file, json_t **out) { return cit_eventlog_replay(out, file); }
static int eventlog_secureboot(const cli_args *a, const char *file, json_t **out) {
    return cit_eventlog_secureboot(out, file);
}

static const sub_action eventlog_actions[] = {
    {"show", eventlog_show}, {"replay", eventlog_replay}, {"secureboot", eventlog_secureboot}, {0}};

static int do_eventlog(cli_env *e, const cli_args *a, json_t **out) {
    if (cli_get(a, "pcr") && strcmp(a->pos[0], "show") != 0) {
        cit_error_set(CIT_E_USAGE, "--pcr applies to `eventlog show` only");
        return CIT_E_USAGE;
    }
    return dispatch(a, "eventlog", eventlog_actions, out);
}

/* ---- ima ---- */

static int ima_show(const cli_args *a, const char *file, json_t **out) { return cit_ima_show(out, file, cli_get(a, "pcr")); }
static int ima_replay(const cli_args *a, const char *file, json_t **out) { return cit_ima_replay(out, file); }

static const sub_action ima_actions[] = {{"show", ima_show}, {"replay", ima_replay}, {0}};

static int do_ima(cli_env *e, const cli_args *a, json_t **out) {
    if (cli_get(a, "pcr") && strcmp(a->pos[0], "show") != 0) {
        cit_error_set(CIT_E_USAGE, "--pcr applies to `ima show` only");
        return CIT_E_USAGE;
    }
    return dispatch(a, "ima", ima_actions, out);
}

static int do_ak_create(cli_env *e, const cli_args *a, json_t **out) {
    return cit_attest_ak_create_ex(out, e->ctx, a->pos[0], cli_get(a, "algorithm"), cli_flag(a, "persist"));
}
static int do_ak_show(cli_env *e, const cli_args *a, json_t **out) { return cit_attest_ak_show(out, e->ctx, a->pos[0]); }
static int need_opt(const cli_args *a, const char *opt) {
    if (cli_get(a, opt))
        return 0;
    cit_error_set(CIT_E_USAGE, "--%s is required", opt);
    cit_error_step("run `citadel tpm attest %s --help`", a->verb->name);
    return CIT_E_USAGE;
}
static int do_quote(cli_env *e, const cli_args *a, json_t **out) {
    if (need_opt(a, "ak") < 0 || need_opt(a, "pcr") < 0 || need_opt(a, "nonce") < 0)
        return CIT_E_USAGE;
    return cit_attest_quote(out, e->ctx, cli_get(a, "ak"), cli_get(a, "pcr"), cli_get(a, "bank"), cli_get(a, "nonce"),
                            cli_get(a, "output"), cli_get(a, "eventlog"));
}
/* A failed check, as `ek verify` reports one: the whole report on stdout, and on stderr an error
 * with the first failed check's code naming it (the other failed checks are its causes), so the
 * code shows in text output too. Returns the exit status of that code: 9 for TPM0090-0095 and
 * the event log's TPM0070; a check that could not run (a baseline that does not exist: TPM0004)
 * exits with its own code's status, as the error on stderr says. */
static int report_failed_check(cli_env *e, const json_t *report) {
    json_t *c;
    size_t i;
    bool first = true;
    json_array_foreach(json_object_get(report, "checks"), i, c) {
        const char *status = json_string_value(json_object_get(c, "status")) ?: "";
        const char *code = json_string_value(json_object_get(c, "code")) ?: "";
        const char *check = json_string_value(json_object_get(c, "check")) ?: "?";
        const char *detail = json_string_value(json_object_get(c, "detail")) ?: "";
        const cit_code_info *ci = cit_code_lookup_name(code);
        if (strcmp(status, "fail") != 0)
            continue;
        if (first)
            cit_error_set(ci ? -ci->num : CIT_E_QUOTE_MALFORMED, "the quote failed the %s check: %s", check, detail);
        else
            cit_error_cause("the %s check failed too (%s): %s", check, code, detail);
        first = false;
    }
    if (first)
        return 9;
    cit_error_render(stderr, cit_error_last(), e->fmt);
    return cit_code_exit_status(cit_error_last()->code);
}

static int do_verify(cli_env *e, const cli_args *a, json_t **out) {
    if (need_opt(a, "quote") < 0 || need_opt(a, "nonce") < 0)
        return CIT_E_USAGE;
    bool valid = false;
    int r = cit_attest_verify(out, e->ctx, cli_get(a, "quote"), cli_get(a, "nonce"), cli_get(a, "ak-pub"),
                              cli_get(a, "baseline"), cli_get(a, "eventlog"), &valid);
    if (r == 0 && !valid)
        e->exit_status = report_failed_check(e, *out);
    return r;
}

static int do_credential(cli_env *e, const cli_args *a, json_t **out) {
    const char *act = a->pos[0];
    if (strcmp(act, "make") == 0) {
        if (need_opt(a, "ek-pub") < 0 || need_opt(a, "ak-name") < 0 || need_opt(a, "secret") < 0)
            return CIT_E_USAGE;
        return cit_attest_credential_make(out, cli_get(a, "ek-pub"), cli_get(a, "ak-name"), cli_get(a, "secret"),
                                          cli_get(a, "output"), cli_get(a, "encoding"));
    }
    if (strcmp(act, "activate") == 0) {
        if (need_opt(a, "ak") < 0 || need_opt(a, "input") < 0)
            return CIT_E_USAGE;
        return cit_attest_credential_activate(out, e->ctx, cli_get(a, "ak"), cli_get(a, "input"), cli_get(a, "output"));
    }
    cit_error_set(CIT_E_USAGE, "unknown credential action: %s", act);
    cit_error_cause("actions: make, activate");
    return CIT_E_USAGE;
}

/* ---- certify (branch tpmnet) ---- */

/* Standard base64 (padded, no whitespace), as the library writes it. */
static int cit_base64_decode(uint8_t **out, size_t *len, const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n % 4 || n > 4 * 1024 * 1024)
        return -1;
    uint8_t *b = malloc(n / 4 * 3 + 1);
    int k = b ? EVP_DecodeBlock(b, (const unsigned char *)s, (int)n) : -1;
    if (k < 0) {
        free(b);
        return -1;
    }
    k -= (s[n - 1] == '=') + (s[n - 2] == '=');
    *out = b;
    *len = (size_t)k;
    return 0;
}

/* Hex qualifying data (may be absent: empty). */
static int qualifying_arg(const cli_args *a, uint8_t **q, size_t *ql) {
    const char *h = cli_get(a, "qualifying");
    *q = NULL;
    *ql = 0;
    if (!h || !*h)
        return 0;
    if (cit_hex_decode(q, ql, h) < 0 || *ql > 64) {
        free(*q);
        *q = NULL;
        cit_error_set(CIT_E_USAGE, "--qualifying must be at most 64 bytes of hex");
        return CIT_E_USAGE;
    }
    return 0;
}

/* A TPM2B_PUBLIC from a file: the binary (tpm2_createak -u, tpm2_readpublic -o) or a JSON file
 * with it in base64 ("ak_tpm2b_public_base64" of `attest ak-show --json`, or "ak_public" /
 * "key_public" of a certification: the field named by key). */
static int public_arg(const char *file, const char *key, uint8_t **out, size_t *len) {
    uint8_t *buf = NULL;
    size_t bl = 0;
    if (cit_read_file(file, 1024 * 1024, &buf, &bl) < 0) {
        free(buf);
        cit_error_set(CIT_E_INPUT_READ, "cannot read %s", file);
        cit_error_context("file", "%s", file);
        return CIT_E_INPUT_READ;
    }
    if (bl && buf[0] == '{') {
        json_t *j = json_loadb((const char *)buf, bl, 0, NULL);
        const char *b = json_string_value(json_object_get(j, key));
        if (!b)
            b = json_string_value(json_object_get(j, "ak_tpm2b_public_base64"));
        int r = b ? cit_base64_decode(out, len, b) : -1;
        json_decref(j);
        free(buf);
        if (r < 0) {
            cit_error_set(CIT_E_INPUT_INVALID, "%s has no base64 TPM2B_PUBLIC in \"%s\"", file, key);
            return CIT_E_INPUT_INVALID;
        }
        return 0;
    }
    *out = buf;
    *len = bl;
    return 0;
}

static int do_certify(cli_env *e, const cli_args *a, json_t **out) {
    if (need_opt(a, "ak") < 0 || need_opt(a, "key") < 0)
        return CIT_E_USAGE;
    uint8_t *q = NULL;
    size_t ql = 0;
    int r = qualifying_arg(a, &q, &ql);
    json_t *c = NULL;
    if (r == 0)
        r = cit_attest_certify(&c, e->ctx, cli_get(a, "ak"), cli_get(a, "key"), q, ql);
    free(q);
    if (r < 0)
        return r;
    const char *output = cli_get(a, "output");
    if (!output || json_object_get(c, "plan")) {
        *out = c;
        return 0;
    }
    char *text = json_dumps(c, JSON_INDENT(2));
    int w = text ? cit_write_file_atomic(output, (const uint8_t *)text, strlen(text), 0644, 0) : -1;
    free(text);
    if (w < 0) {
        json_decref(c);
        cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s", output);
        cit_error_context("file", "%s", output);
        return CIT_E_OUTPUT_WRITE;
    }
    *out = json_pack("{s:O,s:O,s:O,s:O,s:s}", "key", json_object_get(c, "key"), "key_name",
                     json_object_get(c, "key_name"), "ak", json_object_get(c, "ak"), "ak_name",
                     json_object_get(c, "ak_name"), "output", output);
    json_decref(c);
    return 0;
}

/* A failed certify check as an error on stderr (like report_failed_check). */
static int certify_failed(cli_env *e, const json_t *report) {
    json_t *c;
    size_t i;
    bool first = true;
    json_array_foreach(json_object_get(report, "checks"), i, c) {
        const char *code = json_string_value(json_object_get(c, "code")) ?: "";
        const char *check = json_string_value(json_object_get(c, "check")) ?: "?";
        const char *detail = json_string_value(json_object_get(c, "detail")) ?: "";
        const cit_code_info *ci = cit_code_lookup_name(code);
        if (strcmp(json_string_value(json_object_get(c, "status")) ?: "", "fail") != 0)
            continue;
        if (first)
            cit_error_set(ci ? -ci->num : CIT_E_CERTIFY_MALFORMED, "the certification failed the %s check: %s", check,
                          detail);
        else
            cit_error_cause("the %s check failed too (%s): %s", check, code, detail);
        first = false;
    }
    if (first)
        return 9;
    cit_error_render(stderr, cit_error_last(), e->fmt);
    return cit_code_exit_status(cit_error_last()->code);
}

static int b64_field(json_t *j, const char *key, const char *file, uint8_t **out, size_t *len) {
    const char *s = json_string_value(json_object_get(j, key));
    if (s && cit_base64_decode(out, len, s) == 0)
        return 0;
    cit_error_set(CIT_E_INPUT_INVALID, "%s has no base64 \"%s\"", file, key);
    cit_error_cause("--input takes the JSON that `citadel tpm attest certify --output` writes");
    return CIT_E_INPUT_INVALID;
}

static int read_bin(const char *file, uint8_t **out, size_t *len) {
    if (cit_read_file(file, 1024 * 1024, out, len) == 0)
        return 0;
    cit_error_set(CIT_E_INPUT_READ, "cannot read %s", file);
    cit_error_context("file", "%s", file);
    return CIT_E_INPUT_READ;
}

static int do_certify_verify(cli_env *e, const cli_args *a, json_t **out) {
    const char *input = cli_get(a, "input");
    if (need_opt(a, "ak-public") < 0)
        return CIT_E_USAGE;
    if (!input && (!cli_get(a, "attest") || !cli_get(a, "signature") || !cli_get(a, "key-public"))) {
        cit_error_set(CIT_E_USAGE, "give --input FILE, or --attest, --signature and --key-public");
        cit_error_step("run `citadel tpm attest certify-verify --help`");
        return CIT_E_USAGE;
    }
    uint8_t *q = NULL, *akp = NULL, *att = NULL, *sig = NULL, *kp = NULL;
    size_t ql = 0, akl = 0, al = 0, sl = 0, kl = 0;
    json_t *in = NULL;
    int r = qualifying_arg(a, &q, &ql);
    if (r == 0)
        r = public_arg(cli_get(a, "ak-public"), "ak_public", &akp, &akl);
    if (r == 0 && input) {
        uint8_t *buf = NULL;
        size_t bl = 0;
        json_error_t je;
        if ((r = read_bin(input, &buf, &bl)) == 0 && !(in = json_loadb((const char *)buf, bl, 0, &je))) {
            r = cit_error_set(CIT_E_INPUT_INVALID, "%s is not JSON: line %d: %s", input, je.line, je.text);
        }
        free(buf);
        if (r == 0 && !cli_get(a, "attest"))
            r = b64_field(in, "attest", input, &att, &al);
        if (r == 0 && !cli_get(a, "signature"))
            r = b64_field(in, "signature", input, &sig, &sl);
        if (r == 0 && !cli_get(a, "key-public"))
            r = b64_field(in, "key_public", input, &kp, &kl);
    }
    if (r == 0 && cli_get(a, "attest"))
        r = read_bin(cli_get(a, "attest"), &att, &al);
    if (r == 0 && cli_get(a, "signature"))
        r = read_bin(cli_get(a, "signature"), &sig, &sl);
    if (r == 0 && cli_get(a, "key-public"))
        r = public_arg(cli_get(a, "key-public"), "key_public", &kp, &kl);
    bool valid = false;
    if (r == 0)
        r = cit_attest_certify_verify(out, akp, akl, att, al, sig, sl, kp, kl, q, ql, &valid, NULL);
    if (r == 0 && !valid)
        e->exit_status = certify_failed(e, *out);
    json_decref(in);
    free(q);
    free(akp);
    free(att);
    free(sig);
    free(kp);
    return r;
}

static int do_ak_public_check(cli_env *e, const cli_args *a, json_t **out) {
    uint8_t *b = NULL;
    size_t bl = 0;
    int r = public_arg(a->pos[0], "ak_public", &b, &bl);
    if (r == 0)
        r = cit_attest_ak_public_check(out, b, bl, NULL, NULL);
    if (r < 0 && *out) { /* the report of a refused AK goes to stdout with the error */
        json_decref(*out);
        *out = NULL;
    }
    free(b);
    return r;
}

const cli_verb cli_verbs_attest[] = {
    {"ak-create", do_ak_create, "PATH", 1, 1, "create an attestation key (restricted signing key under the EK)",
     "The AK is made under the endorsement key (ECC P-256 EK for an ecc-p256 AK, RSA 2048 EK for\n"
     "rsa-2048), the shape tpm2_createak uses; it signs only TPM-made structures (quotes,\n"
     "certifications), never outside data. Its private part is kept wrapped in the store.",
     "citadel tpm attest ak-create attest/ak",
     {{"algorithm", "ALG", "ecc-p256 (default) or rsa-2048"},
      {"persist", NULL, "keep it resident at a persistent handle (quotes then skip the EK and the load)"}}},
    {"ak-show", do_ak_show, "PATH", 1, 1, "an AK: public key (PEM), TPM name and attributes", NULL,
     "citadel tpm attest ak-show attest/ak", {{0}}},
    {"quote", do_quote, NULL, 0, 0, "quote PCR values with an AK over a verifier's nonce",
     "Writes one JSON file (docs/attestation.md): attest (the TPMS_ATTEST bytes, as `tpm2_quote -m`\n"
     "writes them), signature (TPMT_SIGNATURE, as `tpm2_quote -s`), pcrs, ak_public_pem,\n"
     "ak_name, and the event log when --eventlog is given.",
     "citadel tpm attest quote --ak attest/ak --pcr 0,7,11 --nonce $(openssl rand -hex 20) --output quote.json",
     {{"ak", "PATH", "the attestation key (required)"},
      {"pcr", "LIST", "the PCRs to quote (required)"},
      {"bank", "BANK", "their bank (default sha256)"},
      {"nonce", "HEX", "the verifier's nonce, hex (required; at most 64 bytes)"},
      {"output", "FILE", "write the quote here (else it is shown)"},
      {"eventlog", "FILE", "embed this event log (e.g. /sys/kernel/security/tpm0/binary_bios_measurements)"}}},
    {"verify", do_verify, NULL, 0, 0, "verify a quote in software: signature, nonce, PCR digest, baseline, event log",
     "Each check is reported on its own (--json: checks[] with status and code). Exit status 0 when\n"
     "every check passes, 9 when one fails (TPM0090-0095), with an error on stderr carrying the\n"
     "first failed check's code; a check that cannot run (no such baseline) exits with its code's\n"
     "status. Needs no TPM; --baseline reads the workspace's store.",
     "citadel tpm attest verify --quote quote.json --nonce NONCE --ak-pub ak.pem --baseline boot",
     {{"quote", "FILE", "the quote file (required)"},
      {"nonce", "HEX", "the nonce the quote must answer (required)"},
      {"ak-pub", "PEM", "the AK public key you trust (default: the one in the file)"},
      {"baseline", "NAME", "compare the quoted PCRs with a saved baseline"},
      {"eventlog", "FILE", "replay this event log (default: the one in the quote, if any)"}}},
    {"credential", do_credential, "make|activate", 1, 1, "the enrollment handshake: MakeCredential / ActivateCredential",
     "  make      (verifier, no TPM) protect a secret (at most 64 bytes) for an AK name under an EK\n"
     "            public key: --ek-pub PEM --ak-name HEX --secret FILE [--output F]\n"
     "            [--encoding json|tpm2-tools]\n"
     "  activate  (the machine) recover it with the AK and the EK: --ak PATH --input F [--output F]\n"
     "The TPM releases the secret only if the AK with that name is loaded in the TPM that holds\n"
     "the EK: the proof that the AK lives beside that EK.",
     "citadel tpm attest credential make --ek-pub ek.pem --ak-name 000b... --secret s --output cred.json",
     {{"ek-pub", "PEM", "make: the EK public key"},
      {"ak-name", "HEX", "make: the AK's TPM name"},
      {"secret", "FILE", "make: the secret to protect"},
      {"encoding", "ENC", "make: json (default) or tpm2-tools"},
      {"ak", "PATH", "activate: the AK"},
      {"input", "FILE", "activate: the credential (JSON or tpm2-tools binary)"},
      {"output", "FILE", "where to write the credential (make) or the secret (activate, 0600)"}}},
    {"certify", do_certify, NULL, 0, 0, "TPM2_Certify: the AK states that a key is loaded in this TPM",
     "The AK signs a TPMS_ATTEST (type certify) naming the key's TPM name, with the verifier's\n"
     "qualifying data (a nonce, at most 64 bytes). The JSON (--output) has attest and signature\n"
     "(base64 of the exact TPMS_ATTEST and TPMT_SIGNATURE, as `tpm2_certify -o -s` writes them),\n"
     "key_public and ak_public (base64 TPM2B_PUBLIC), key_name and ak_name. Keys with a password\n"
     "are refused (TPM0024); PCR- or authority-bound keys without one are certified.",
     "citadel tpm attest certify --ak attest/ak --key devid --qualifying $(openssl rand -hex 32) --output c.json",
     {{"ak", "PATH", "the attestation key (required)"},
      {"key", "PATH", "the key, identity or AK to certify (required)"},
      {"qualifying", "HEX", "qualifying data (the verifier's nonce), at most 64 bytes"},
      {"output", "FILE", "write the certification here (else it is shown)"}}},
    {"certify-verify", do_certify_verify, NULL, 0, 0, "verify a certification in software (no TPM)",
     "Checks, each reported on its own (--json: checks[] with status and code): ak_public (a\n"
     "restricted signing key bound to its TPM, TPM0190), format (TPM-generated, type certify,\n"
     "TPM0191), signature (the AK's, TPM0192), qualifying (TPM0193), name (the certified key is\n"
     "key_public, TPM0194), key_attributes (fixedTPM, fixedParent, sensitiveDataOrigin, signing,\n"
     "TPM0195). Exit status 0 when all pass, 9 when one fails, with the first failure on stderr.\n"
     "--ak-public and --key-public take a binary TPM2B_PUBLIC (tpm2_createak -u) or JSON holding\n"
     "it in base64 (`attest ak-show --json`, a certification). --input takes attest, signature and\n"
     "key_public from `attest certify --output`; --attest/--signature/--key-public override them\n"
     "(tpm2_certify -o, -s in its default tss format).",
     "citadel tpm attest certify-verify --input c.json --ak-public ak.json --qualifying NONCE",
     {{"input", "FILE", "the certification (JSON of `attest certify`)"},
      {"ak-public", "FILE", "the AK's TPM2B_PUBLIC you trust (required)"},
      {"qualifying", "HEX", "the qualifying data it must answer (default: none)"},
      {"attest", "FILE", "the TPMS_ATTEST bytes (tpm2_certify -o)"},
      {"signature", "FILE", "the TPMT_SIGNATURE bytes (tpm2_certify -s)"},
      {"key-public", "FILE", "the certified key's TPM2B_PUBLIC (default: key_public of --input)"}}},
    {"ak-public-check", do_ak_public_check, "FILE", 1, 1, "check that a TPM2B_PUBLIC is fit to be an AK (no TPM)",
     "A restricted signing key (not decrypt), fixedTPM, fixedParent, sensitiveDataOrigin, RSA or\n"
     "NIST ECC: prints its public key (PEM) and TPM name; TPM0190 when refused. FILE is a binary\n"
     "TPM2B_PUBLIC or JSON holding it in base64 (ak_tpm2b_public_base64, ak_public).",
     "citadel tpm attest ak-public-check ak.pub", {{0}}},
    {"eventlog", do_eventlog, "show|replay|secureboot FILE", 2, 2, "parse, replay and summarise a firmware event log",
     "FILE is a binary TCG PC Client event log, crypto-agile (TCG_PCR_EVENT2 after the Spec ID\n"
     "event) or SHA-1 only, at most 64 MiB; the running system's is\n"
     "/sys/kernel/security/tpm0/binary_bios_measurements. No TPM or workspace is needed.\n"
     "  show        every event: PCR, type, digests per bank, decoded data (UEFI variables,\n"
     "              boot applications and device paths, GPT, actions, separators, ...);\n"
     "              --pcr keeps the events of some PCRs\n"
     "  replay      the PCR values the log produces, per bank (EV_NO_ACTION is not extended;\n"
     "              a StartupLocality event sets PCR 0's start value)\n"
     "  secureboot  Secure Boot state: SecureBoot, PK/KEK/db/dbx, authorities, shim and MOK\n"
     "A log that does not parse stops with TPM0070 naming the event and its byte offset.",
     "citadel tpm attest eventlog replay /sys/kernel/security/tpm0/binary_bios_measurements",
     {{"pcr", "LIST", "show: only events of these PCRs (0,7 or 0-7)"}}},
    {"ima", do_ima, "show|replay FILE", 2, 2, "parse and replay an IMA measurement list",
     "FILE is /sys/kernel/security/ima/binary_runtime_measurements or\n"
     "ascii_runtime_measurements (or a _sha256 variant), at most 64 MiB.\n"
     "  show    every entry: PCR, template, template hash, file digest, path, signature,\n"
     "          and whether the template hash matches the template data\n"
     "  replay  the PCR values (PCR 10 by default) the list produces, per bank\n"
     "A list that does not parse stops with TPM0071 naming the entry.",
     "citadel tpm attest ima replay /sys/kernel/security/ima/binary_runtime_measurements",
     {{"pcr", "LIST", "show: only entries of these PCRs"}}},
    {0}};
