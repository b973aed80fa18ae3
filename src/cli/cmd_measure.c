/* SPDX-License-Identifier: Apache-2.0 */
/* `citadel tpm measure ...`: the Measured Merkle Anchor (docs/mma.md). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "basic/util.h"
#include "cli.h"

static int parse_pos(const char *s, const char *what, int64_t *out) {
    uint64_t v = 0;
    if (!s || cit_parse_u64(s, &v) < 0 || v == 0 || v > INT64_MAX) {
        cit_error_set(CIT_E_USAGE, "%s must be a positive number, not '%s'", what, s ? s : "");
        return CIT_E_USAGE;
    }
    *out = (int64_t)v;
    return 0;
}

static int parse_pcr(const char *s, const char *opt, int *out) {
    uint32_t v = 0;
    *out = -1;
    if (!s)
        return 0;
    if (cit_parse_u32(s, &v) < 0 || v > 23) {
        cit_error_set(CIT_E_PCR_INVALID, "--%s must be a PCR index (0-23), not '%s'", opt, s);
        return CIT_E_PCR_INVALID;
    }
    *out = (int)v;
    return 0;
}

/* A failed check still shows its report (stdout) before the error (stderr). */
static int with_report(cli_env *e, int r, json_t **out) {
    if (r < 0 && *out)
        cit_render(stdout, *out, e->fmt);
    return r;
}

static int do_file(cli_env *e, const cli_args *a, json_t **out) {
    return cit_measure_file(out, e->ctx, (const char *const *)a->pos, (size_t)a->npos,
                            cli_get(a, "kind"));
}

static int do_enroll(cli_env *e, const cli_args *a, json_t **out) {
    cit_measure_enroll_options o = {.verify_ima = cli_flag(a, "verify-ima"),
                                    .require_ima = cli_flag(a, "require-ima"),
                                    .ima_log = cli_get(a, "ima-log"),
                                    .binary = cli_get(a, "binary")};
    int r = parse_pcr(cli_get(a, "pcr"), "pcr", &o.pcr);
    if (r < 0)
        return r;
    if (o.require_ima || o.ima_log)
        o.verify_ima = true;
    return cit_measure_enroll(out, e->ctx, &o);
}

static int do_checkpoint(cli_env *e, const cli_args *a, json_t **out) {
    int pcr = -1;
    int r = parse_pcr(cli_get(a, "extend-pcr"), "extend-pcr", &pcr);
    if (r < 0)
        return r;
    return cit_measure_checkpoint(out, e->ctx, pcr);
}

static int do_sign(cli_env *e, const cli_args *a, json_t **out) {
    int64_t seg = 0;
    if (!cli_get(a, "identity")) {
        cit_error_set(CIT_E_USAGE, "--identity is required");
        cit_error_step("run `citadel tpm measure sign --help`");
        return CIT_E_USAGE;
    }
    if (a->npos && parse_pos(a->pos[0], "SEGMENT", &seg) < 0)
        return CIT_E_USAGE;
    return cit_measure_sign(out, e->ctx, cli_get(a, "identity"), seg);
}

static int do_verify(cli_env *e, const cli_args *a, json_t **out) {
    int64_t seq;
    if (parse_pos(a->pos[0], "SEQNO", &seq) < 0)
        return CIT_E_USAGE;
    return with_report(e, cit_measure_verify(out, e->ctx, seq), out);
}

static int do_rollback(cli_env *e, const cli_args *a, json_t **out) {
    return with_report(e, cit_measure_rollback_check(out, e->ctx), out);
}

static int do_status(cli_env *e, const cli_args *a, json_t **out) {
    return cit_measure_status(out, e->ctx);
}

const cli_verb cli_verbs_measure[] = {
    {"file",
     do_file,
     "PATH...",
     1,
     CLI_MAX_POS,
     "measure files into the audit log (stream measure)",
     "Each file's SHA-256, size and resolved path become a measure.file entry, all in one append;\n"
     "every file is hashed before anything is written. The entries are pending until\n"
     "`measure checkpoint` seals them. Files up to 4 GiB.",
     "citadel tpm measure file /usr/bin/citadel --kind binary",
     {{"kind", "KIND", "what it is: binary, config, library, ... (default file)"}}},
    {"enroll",
     do_enroll,
     NULL,
     0,
     0,
     "measure the running citadel binary (and cross-check the IMA log)",
     "Hashes /proc/self/exe (the executed file, even if replaced on disk since) into a\n"
     "measure.enroll entry. --pcr N records PCR N's value now: the base from which `measure\n"
     "checkpoint --extend-pcr N` extends are replayed (enroll again after a reboot). --verify-ima\n"
     "looks the binary's digest up in the kernel's IMA list: measured, not-measured (reported, "
     "not\n"
     "an error unless --require-ima) or unavailable (no list: said so, not an error); a list that\n"
     "names this path only with other digests fails with TPM0133 and nothing is recorded.",
     "citadel tpm measure enroll --pcr 14 --verify-ima",
     {{"pcr", "N", "the anchor PCR (8-15 but 10; usually 14)"},
      {"verify-ima", NULL, "cross-check with the kernel's IMA measurement list"},
      {"ima-log", "FILE",
       "the IMA list to read (default /sys/kernel/security/ima/binary_runtime_measurements, "
       "then ascii_runtime_measurements)"},
      {"require-ima", NULL, "fail unless IMA measured this binary"},
      {"binary", "FILE", "measure FILE instead of the running binary"}}},
    {"checkpoint",
     do_checkpoint,
     NULL,
     0,
     0,
     "seal the pending measurements; extend the root into a PCR",
     "Closes an audit segment over the log (or uses the latest one when the log is sealed to its\n"
     "head) and records a measure.checkpoint entry naming it; that entry lands in the next\n"
     "segment. --extend-pcr N then extends PCR N (sha256 bank) with\n"
     "  SHA-256(\"citadel.measure.checkpoint/v1\" 0x00 ORIGIN 0x00 be64(TREE_SIZE) ROOT)\n"
     "after the entry is written. Identities bound to PCR N through an authority are locked until\n"
     "it approves the new state (`policy approve`).",
     "citadel tpm measure checkpoint --extend-pcr 14",
     {{"extend-pcr", "N", "extend the segment's root into PCR N (8-15 but 10)"}}},
    {"sign",
     do_sign,
     "[SEGMENT]",
     0,
     1,
     "sign a segment's checkpoint with the anchor identity",
     "`audit sign` with the anchor: the TPM signs only while the PCR state is one the anchor's\n"
     "authority approved (TPM0047 otherwise). Without SEGMENT: the latest segment, after sealing\n"
     "an approval that is not under a segment yet (`policy approve` writes one into the measure\n"
     "stream), so the signature covers the approval that unlocked the anchor.",
     "citadel tpm measure sign --identity anchor",
     {{"identity", "NAME", "the signing identity (required; ECC P-256)"}}},
    {"verify",
     do_verify,
     "SEQNO",
     1,
     1,
     "verify a measurement: signed checkpoint, inclusion proof, PCR replay",
     "For a measure.file or measure.enroll entry: the latest signed checkpoint that covers it "
     "(its\n"
     "signature and signer), an RFC 9162 inclusion proof from the entry to that root and, when "
     "its\n"
     "measure checkpoint extended a PCR, the replay of every extend against the TPM. Also says\n"
     "whether the file on disk still has the measured digest (information only).",
     "citadel tpm measure verify 3",
     {{0}}},
    {"rollback-check",
     do_rollback,
     NULL,
     0,
     0,
     "the audit anti-rollback check and the PCR replay",
     "`audit rollback` (the store against its head file and the TPM NV counter) and, for every "
     "PCR\n"
     "measure checkpoints extended, the replay of their extends against the TPM's PCR: a store\n"
     "rolled back to before a checkpoint no longer replays to the PCR, which only a reboot resets.",
     "citadel tpm measure rollback-check",
     {{0}}},
    {"status",
     do_status,
     NULL,
     0,
     0,
     "measurements, what is pending, approvals and each anchor PCR's replay",
     NULL,
     "citadel tpm measure status",
     {{0}}},
    {0}};
