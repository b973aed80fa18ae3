/* SPDX-License-Identifier: Apache-2.0 */
/* `citadel tpm audit ...`: the tamper-evident audit log (docs/audit-format.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "basic/util.h"
#include "cli.h"

static int need(const cli_args *a, const char *opt) {
    if (cli_get(a, opt))
        return 0;
    cit_error_set(CIT_E_USAGE, "--%s is required", opt);
    cit_error_step("run `citadel tpm audit %s --help`", a->verb->name);
    return CIT_E_USAGE;
}

static int parse_seq(const char *s, const char *what, int64_t *out) {
    uint64_t v = 0;
    if (!s || cit_parse_u64(s, &v) < 0 || v == 0 || v > INT64_MAX) {
        cit_error_set(CIT_E_USAGE, "%s must be a positive number, not '%s'", what, s ? s : "");
        return CIT_E_USAGE;
    }
    *out = (int64_t)v;
    return 0;
}

/* A failed verification still shows its report (stdout) before the error (stderr). */
static int with_report(cli_env *e, int r, json_t **out) {
    if (r < 0 && *out)
        cit_render(stdout, *out, e->fmt);
    return r;
}

static int unknown_action(const char *verb, const char *act, const char *list) {
    cit_error_set(CIT_E_USAGE, "unknown audit %s action: %s", verb, act);
    cit_error_cause("`audit %s` takes %s", verb, list);
    return CIT_E_USAGE;
}

static int do_append(cli_env *e, const cli_args *a, json_t **out) {
    if (need(a, "event") < 0)
        return CIT_E_USAGE;
    const char *text = cli_get(a, "payload"), *file = cli_get(a, "payload-file");
    if (text && file) {
        cit_error_set(CIT_E_USAGE, "give --payload or --payload-file, not both");
        return CIT_E_USAGE;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (file) {
        int err = cit_read_file(file, 1024 * 1024, &buf, &len);
        if (err < 0) {
            int code = err == -EFBIG ? CIT_E_INPUT_TOO_LARGE : CIT_E_INPUT_READ;
            cit_error_set(code, err == -EFBIG ? "%s is larger than 1 MiB, the most one entry holds" : "cannot read %s: %s",
                          file, strerror(-err));
            if (err == -EFBIG)
                cit_error_step("append a digest of large artefacts instead (`citadel tpm measure file PATH`)");
            return code;
        }
    }
    int r = cit_audit_append(out, e->ctx, cli_get(a, "stream"), cli_get(a, "event"),
                             file ? buf : (const uint8_t *)text, file ? len : text ? strlen(text) : 0);
    free(buf);
    return r;
}

static int do_head(cli_env *e, const cli_args *a, json_t **out) { return cit_audit_head(out, e->ctx, cli_get(a, "stream")); }

static int do_show(cli_env *e, const cli_args *a, json_t **out) {
    int64_t seq;
    if (parse_seq(a->pos[0], "SEQNO", &seq) < 0)
        return CIT_E_USAGE;
    return cit_audit_show(out, e->ctx, seq, !cli_flag(a, "no-decrypt"));
}

static int do_chain(cli_env *e, const cli_args *a, json_t **out) {
    if (strcmp(a->pos[0], "verify") != 0)
        return unknown_action("chain", a->pos[0], "verify");
    return with_report(e, cit_audit_chain_verify(out, e->ctx), out);
}

static int do_segments(cli_env *e, const cli_args *a, json_t **out) {
    if (strcmp(a->pos[0], "close") == 0)
        return cit_audit_segments_close(out, e->ctx);
    if (strcmp(a->pos[0], "list") == 0)
        return cit_audit_segments_list(out, e->ctx);
    return unknown_action("segments", a->pos[0], "close, list");
}

static int do_sign(cli_env *e, const cli_args *a, json_t **out) {
    int64_t seg = 0;
    if (need(a, "identity") < 0 || (a->npos && parse_seq(a->pos[0], "SEGMENT", &seg) < 0))
        return CIT_E_USAGE;
    return cit_audit_sign(out, e->ctx, cli_get(a, "identity"), seg);
}

static int do_verify(cli_env *e, const cli_args *a, json_t **out) {
    int k = 0;
    if (cli_get_int(a, "witnesses", &k) < 0)
        return CIT_E_USAGE;
    return with_report(e, cit_audit_verify_pinned(out, e->ctx, k, cli_get(a, "log-key")), out);
}

static int write_json(json_t *j, const char *path) {
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    int err = text ? cit_write_file_atomic(path, (const uint8_t *)text, strlen(text), 0644, 0) : -ENOMEM;
    free(text);
    if (err < 0) {
        cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", path, strerror(-err));
        return CIT_E_OUTPUT_WRITE;
    }
    return 0;
}

static int do_prove(cli_env *e, const cli_args *a, json_t **out) {
    int r;
    if (cli_get(a, "check")) {
        if (a->npos) {
            cit_error_set(CIT_E_USAGE, "--check FILE takes no other arguments");
            return CIT_E_USAGE;
        }
        return with_report(e, cit_audit_proof_check(out, cli_get(a, "check")), out);
    }
    if (cli_flag(a, "consistency")) {
        int64_t o, n = 0;
        if (a->npos < 1 || parse_seq(a->pos[0], "OLD", &o) < 0 || (a->npos > 1 && parse_seq(a->pos[1], "NEW", &n) < 0)) {
            if (a->npos < 1)
                cit_error_set(CIT_E_USAGE, "--consistency needs OLD [NEW] tree sizes");
            return CIT_E_USAGE;
        }
        r = cit_audit_prove_consistency(out, e->ctx, o, n);
    } else {
        int64_t seq, size = 0;
        if (a->npos != 1) {
            cit_error_set(CIT_E_USAGE, "audit prove takes one SEQNO (or --consistency OLD NEW)");
            return CIT_E_USAGE;
        }
        const char *ts = cli_get(a, "tree-size");
        if (parse_seq(a->pos[0], "SEQNO", &seq) < 0 || (ts && parse_seq(ts, "--tree-size", &size) < 0))
            return CIT_E_USAGE;
        r = cit_audit_prove(out, e->ctx, seq, size);
    }
    if (r == 0 && cli_get(a, "output")) {
        r = write_json(*out, cli_get(a, "output"));
        if (r == 0)
            json_object_set_new(*out, "output", json_string(cli_get(a, "output")));
    }
    return r;
}

static int do_rollback(cli_env *e, const cli_args *a, json_t **out) {
    return with_report(e, cit_audit_rollback(out, e->ctx, cli_flag(a, "accept")), out);
}

static int do_publish(cli_env *e, const cli_args *a, json_t **out) {
    int64_t from = 0;
    if (cli_get(a, "from") && parse_seq(cli_get(a, "from"), "--from", &from) < 0)
        return CIT_E_USAGE;
    return cit_audit_publish(out, e->ctx, from, cli_get(a, "output"));
}

static int do_witness(cli_env *e, const cli_args *a, json_t **out) {
    const char *act = a->pos[0];
    if (strcmp(act, "cosign") == 0) {
        if (need(a, "identity") < 0 || need(a, "input") < 0)
            return CIT_E_USAGE;
        return cit_audit_witness_cosign(out, e->ctx, cli_get(a, "identity"), cli_get(a, "input"), cli_get(a, "log-key"),
                                        cli_get(a, "output"));
    }
    if (strcmp(act, "add") == 0) {
        if (cli_get(a, "receipt")) {
            if (a->npos > 1) {
                cit_error_set(CIT_E_USAGE, "audit witness add --receipt FILE takes no NAME");
                return CIT_E_USAGE;
            }
            return cit_audit_witness_import(out, e->ctx, cli_get(a, "receipt"));
        }
        if (a->npos != 2 || need(a, "key") < 0) {
            if (a->npos != 2)
                cit_error_set(CIT_E_USAGE, "audit witness add takes NAME --key PEM (register) or --receipt FILE (import)");
            return CIT_E_USAGE;
        }
        return cit_audit_witness_register(out, e->ctx, a->pos[1], cli_get(a, "key"));
    }
    if (strcmp(act, "list") == 0)
        return cit_audit_witness_list(out, e->ctx);
    return unknown_action("witness", act, "cosign, add, list");
}

static int do_streams(cli_env *e, const cli_args *a, json_t **out) {
    const char *act = a->pos[0];
    if (strcmp(act, "create") == 0) {
        if (a->npos != 2 || need(a, "tier") < 0) {
            if (a->npos != 2)
                cit_error_set(CIT_E_USAGE, "audit streams create takes NAME --tier public|internal|secret");
            return CIT_E_USAGE;
        }
        return cit_audit_stream_create(out, e->ctx, a->pos[1], cli_get(a, "tier"));
    }
    if (strcmp(act, "list") == 0)
        return cit_audit_stream_list(out, e->ctx);
    return unknown_action("streams", act, "create, list");
}

static int do_key(cli_env *e, const cli_args *a, json_t **out) {
    const char *act = a->pos[0];
    if (strcmp(act, "create") == 0)
        return cit_audit_key_create(out, e->ctx);
    if (strcmp(act, "rotate") == 0)
        return cit_audit_key_rotate(out, e->ctx);
    if (strcmp(act, "show") == 0)
        return cit_audit_key_show(out, e->ctx);
    return unknown_action("key", act, "create, rotate, show");
}

const cli_verb cli_verbs_audit[] = {
    {"append", do_append, NULL, 0, 0, "append an entry; prints its sequence number",
     "Entries are hash-chained (each names the one before) and become Merkle leaves (RFC 9162).\n"
     "The payload is text or a file of at most 1 MiB; in a secret-tier stream it is encrypted\n"
     "under the audit key before it is stored. The head is mirrored into STORE.audit-head.",
     "citadel tpm audit append --event deploy --payload 'release 1.4.2 to prod'",
     {{"event", "TYPE", "the event type (required): a-z, 0-9, '.', '_', '-', '/', ':'"},
      {"payload", "TEXT", "the payload text"},
      {"payload-file", "FILE", "or the payload from a file ('-' = stdin)"},
      {"stream", "NAME", "the stream (default: default)"}}},
    {"head", do_head, NULL, 0, 0, "the latest entry (of a stream), the tree size and the latest segment", NULL,
     "citadel tpm audit head --stream tpmd", {{"stream", "NAME", "the latest entry of this stream"}}},
    {"show", do_show, "SEQNO", 1, 1, "one entry: time, stream, event, actor, payload, hashes",
     "Secret-tier payloads are decrypted with the audit key (a TPM unseal) unless --no-decrypt.", "citadel tpm audit show 1",
     {{"no-decrypt", NULL, "show secret-tier payloads as sealed"}}},
    {"chain", do_chain, "verify", 1, 1, "verify the hash chain from genesis and the anti-rollback records",
     "Recomputes every entry's hash and link and every segment's root. A modified, deleted,\n"
     "reordered or inserted entry, a truncated or rolled-back store, a changed sealed segment and a\n"
     "missing head file each fail with their own code (TPM0102-0109, TPM0113) and the first bad\n"
     "sequence number. Exit status 11 on tampering. Reads only; signatures: `audit verify`.",
     "citadel tpm audit chain verify", {{0}}},
    {"segments", do_segments, "close|list", 1, 1, "seal the open entries into a Merkle segment, or list segments",
     "close records the RFC 9162 root of the whole log at its current size and advances the TPM\n"
     "NV counter audit/rollback-counter (anti-rollback); sign the segment with `audit sign`.",
     "citadel tpm audit segments close", {{0}}},
    {"sign", do_sign, "[SEGMENT]", 0, 1, "sign a segment's checkpoint in the TPM (C2SP tlog-checkpoint)",
     "The checkpoint (origin, tree size, root) is a C2SP signed note; the identity's ECC P-256 key\n"
     "signs it in the TPM (and its PCR or authority policy applies). Default: the latest segment.",
     "citadel tpm audit sign --identity audit-signer",
     {{"identity", "NAME", "the signing identity (required; ECC P-256, e.g. identity init NAME --usage audit)"}}},
    {"verify", do_verify, NULL, 0, 0, "verify everything from genesis: chain, roots, checkpoints, rollback, witnesses",
     "Checks the hash chain, every segment's root against its entries, every checkpoint's\n"
     "signature and its consistency with the one before (RFC 9162), the anti-rollback records and,\n"
     "with --witnesses K, K valid co-signatures on the latest checkpoint. --json: checks[].\n"
     "Without --log-key the signer keys come from the store being checked: pin the log key (and\n"
     "require witnesses) when the store itself may be in an attacker's hands.",
     "citadel tpm audit verify --witnesses 1 --log-key log.pem",
     {{"witnesses", "K", "require K valid witness co-signatures"},
      {"log-key", "PEM", "require every checkpoint to be signed by this key (obtained out of band)"}}},
    {"prove", do_prove, "SEQNO | --consistency OLD [NEW]", 0, 2, "RFC 9162 inclusion and consistency proofs",
     "  prove SEQNO [--tree-size N]     the inclusion proof of an entry (default tree: the latest\n"
     "                                 sealed segment's)\n"
     "  prove --consistency OLD [NEW]   the consistency proof between two tree sizes\n"
     "  prove --check FILE              verify a proof file without a store\n"
     "Proofs carry hex hashes; the entry bytes are included so a verifier recomputes the leaf.",
     "citadel tpm audit prove 42 --output proof.json",
     {{"tree-size", "N", "the tree the proof is for"},
      {"consistency", NULL, "a consistency proof between tree sizes OLD and NEW"},
      {"check", "FILE", "verify a proof file"},
      {"output", "FILE", "also write the proof here"}}},
    {"rollback", do_rollback, NULL, 0, 0, "the anti-rollback check: the store against its head file and NV counter",
     "A store older than the acknowledged head (a restored copy) fails with TPM0108; one with\n"
     "entries the log never wrote with TPM0105. A lagging NV counter (a crash after a segment\n"
     "close) is caught up. --accept re-anchors the head file on this store (after a deliberate\n"
     "restore) and logs that decision as an entry.",
     "citadel tpm audit rollback", {{"accept", NULL, "accept the store's head as acknowledged"}}},
    {"publish", do_publish, NULL, 0, 0, "the latest checkpoint with consistency proofs, for witnesses",
     NULL, "citadel tpm audit publish --output publish.json",
     {{"from", "N", "only the proof from tree size N"}, {"output", "FILE", "write it here"}}},
    {"witness", do_witness, "cosign|add|list [NAME]", 1, 2, "witness co-signatures: make, register, import, list",
     "  cosign --identity W --input publish.json [--log-key log.pem] [--output receipt.json]\n"
     "        (the witness, possibly on another host) checks the checkpoint's signature against\n"
     "        the log key it pinned and its consistency with the tree it saw last, then co-signs\n"
     "  add NAME --key witness.pem     (the log) register a witness's public key\n"
     "  add --receipt receipt.json     (the log) verify and store a co-signature\n"
     "  list                           registered witnesses, their receipts, logs this one witnesses",
     "citadel tpm audit witness cosign --identity w1 --input publish.json --log-key log.pem --output r.json",
     {{"identity", "NAME", "cosign: the witness's signing identity"},
      {"input", "FILE", "cosign: the publish file"},
      {"log-key", "PEM", "cosign: the log's public key (pinned the first time)"},
      {"output", "FILE", "cosign: write the receipt here"},
      {"key", "PEM", "add: the witness's public key"},
      {"receipt", "FILE", "add: a receipt to import"}}},
    {"streams", do_streams, "create|list [NAME]", 1, 2, "audit streams and their confidentiality tiers",
     "Tiers: public, internal, secret (payloads encrypted under the audit key; create it first\n"
     "with `audit key create`). Built in: default, tpmd and measure (internal).",
     "citadel tpm audit streams create hr --tier secret", {{"tier", "TIER", "create: public, internal or secret"}}},
    {"key", do_key, "create|rotate|show", 1, 1, "the master KEK for secret-tier payloads, sealed in the TPM",
     "Each segment's data key is wrapped under the KEK (XChaCha20-Poly1305); rotate makes a new KEK\n"
     "version and re-wraps every data key without touching an entry.",
     "citadel tpm audit key create", {{0}}},
    {0}};
