#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/run.sh: every Citadel benchmark, each against its peer measured in the same run, then
# one summary table. `make bench` builds and runs it; by hand: `make && make build/bench/sign-lib
# && bench/run.sh`.
#
#   1. bench/sign-cli.sh    citadel tpm key sign vs tpm2_sign, whole processes, same swtpm
#   2. build/bench/sign-lib libcitadel cit_key_sign vs raw ESYS, signatures/s, in-process vTPM
#   4. bench/seal-cli.sh    secret seal/unseal bound to PCR 7 vs tpm2-tools on one swtpm (issue 4)
#   5. build/bench/ed25519-lib  TPM-sealed Ed25519 through the session cache vs raw libsodium,
#                           and the cold path (unseal every time) on the vTPM (issue 4)
#   3. bench/sign-wall.sh   citadel tpm key sign on the vTPM: median wall time (goal < 10 ms),
#                           vs tpm2_sign (swtpm) and openssl dgst -sign (software floor)
#   5. bench/eventlog.sh    event log replay in memory, MB/s (goal >= 100 MB/s, issue 5), and
#                           whole processes vs tpm2_eventlog on the same log
#   6. build/bench/quote-verify  quote verification through libcitadel vs raw OpenSSL ECDSA P-256
#                           verification of the same signatures, 1 and 2 threads (goal >= 80 %)
#   7. bench/quote-cli.sh   citadel tpm attest quote on the vTPM as a whole process (goal median
#                           < 15 ms), with tpm2_quote / tpm2_checkquote on swtpm for the record
#   8. build/bench/audit-append  batched audit appends (cit_audit_append_batch) vs plain SQLite
#                           INSERTs of the same rows, same PRAGMAs (goals >= 50 % and >= 100,000/s)
#   9. build/bench/audit-proof   inclusion/consistency proofs in a 1,000,000-entry log (goal < 1 ms)
#                           and full chain verification vs raw SHA-256 of the same entry bytes
#  10. bench/tpmd-sign.sh  signatures over HTTP keep-alive through tpmd vs cit_key_sign in-process
#                           (goal >= 80 %), and GET /v1/status requests/s
#  11. build/bench/enroll-server  enrolld's server-side work per enrollment (EK chain, AK check,
#                           MakeCredential, quote, certify, CSR, 2 certificates issued) vs the same
#                           cryptography in raw OpenSSL (goal >= 70 %, issue 8)
#
# One swtpm is started here for 1 and 3 (with the tpm2-tools key persisted at 0x81000200) and
# stopped on exit, whatever happens. Environment: B (build dir, default build), N (runs per
# command, default 200), W (warm-up rounds, default 10), BENCH_ROUNDS / BENCH_ROUND_MS (sign-lib),
# BENCH_KEEP=1 (keep the scratch directory), BENCH_HYPERFINE=1 (hyperfine cross-check in 1).
# Exit status: 0 when every benchmark ran (goals met or not), 1 when one failed to run.

set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export B=${B:-build}
export N=${N:-200} W=${W:-10}

# shellcheck source=bench/sign-cli.sh
. "$ROOT/bench/sign-cli.sh"

BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/citadel-bench.XXXXXX")
export BENCH_WORK
export BENCH_SUMMARY=$BENCH_WORK/summary.tsv
: >"$BENCH_SUMMARY"

cleanup() {
    bench_stop_swtpm
    if [ -z "${BENCH_KEEP:-}" ]; then
        rm -rf "$BENCH_WORK"
    else
        echo "bench: scratch directory kept: $BENCH_WORK" >&2
    fi
}
# Each benchmark runs in its own process group (setsid), so an interrupt can stop it at once
# (bash defers traps while it waits for a foreground child) without touching anything else.
CHILD=
run_child() {
    setsid "$@" &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=
    return $rc
}
on_signal() {
    if [ -n "$CHILD" ]; then
        kill -TERM -- -"$CHILD" 2>/dev/null
        wait "$CHILD" 2>/dev/null
    fi
    exit 130
}
trap cleanup EXIT
trap on_signal INT TERM HUP

if [ ! -x "$B/citadel" ] || [ ! -x "$B/bench/sign-lib" ] || [ ! -x "$B/bench/ed25519-lib" ] ||
    [ ! -x "$B/bench/eventlog-replay" ] || [ ! -x "$B/bench/quote-verify" ] ||
    [ ! -x "$B/bench/audit-append" ] || [ ! -x "$B/bench/audit-proof" ] || [ ! -x "$B/bench/tpmd-sign" ] ||
    [ ! -x "$B/bench/enroll-server" ]; then
    echo "bench: building $B/citadel, $B/tpmd and $B/bench/{sign-lib,ed25519-lib,eventlog-replay,quote-verify,audit-append,audit-proof,tpmd-sign,enroll-server}" >&2
    make --no-print-directory B="$B" all "$B/bench/sign-lib" "$B/bench/ed25519-lib" "$B/bench/eventlog-replay" \
        "$B/bench/quote-verify" "$B/bench/audit-append" "$B/bench/audit-proof" "$B/bench/tpmd-sign" "$B/bench/enroll-server" >&2 || exit 1
fi

echo "Citadel benchmarks  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  source:   $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(
    [ -n "$(git -C "$ROOT" status --porcelain -- src include 2>/dev/null)" ] && echo ' + uncommitted changes in src/ include/')"
echo "  binary:   $B/citadel ($(stat -c %y "$B/citadel" | cut -d. -f1))"
echo "  machine:  $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  versions: $(swtpm --version 2>/dev/null | head -1 | sed 's/,.*//'); tpm2-tools $(tpm2_sign --version 2>/dev/null | sed -n 's/.*version="\([^"]*\)".*/\1/p'); $(openssl version 2>/dev/null | cut -d' ' -f1-2); libtpms $(dpkg-query -W -f='${Version}' libtpms0 2>/dev/null || echo '?'); tpm2-tss $(dpkg-query -W -f='${Version}' libtss2-esys-3.0.2-0 2>/dev/null || echo '?')"
echo "  N=$N runs per command (W=$W warm-up), interleaved"
if python3 -c 'import os,sys; sys.exit(0 if os.getloadavg()[0] > 0.5 * os.cpu_count() else 1)'; then
    echo "  WARNING: the machine is busy (load average above half the CPUs): absolute times are"
    echo "           inflated and noisy; ratios from the same run are still comparable, roughly"
fi
echo

failed=()

# One swtpm and one tpm2-tools key for sign-cli and sign-wall.
if command -v swtpm >/dev/null && command -v tpm2_sign >/dev/null; then
    if bench_start_swtpm "$BENCH_WORK" && bench_tpm2_key "$BENCH_SWTPM_TCTI" 0x81000200 "$BENCH_WORK"; then
        export BENCH_SWTPM_TCTI BENCH_TPM2_HANDLE=0x81000200
    else
        bench_stop_swtpm
        failed+=("swtpm setup")
    fi
else
    echo "bench: swtpm or tpm2-tools missing: sign-cli skipped, sign-wall without tpm2_sign" >&2
fi

if [ -n "${BENCH_SWTPM_TCTI:-}" ]; then
    run_child bench/sign-cli.sh || failed+=(sign-cli)
    echo
else
    failed+=("sign-cli (no swtpm)")
fi

echo "== sign-lib: libcitadel vs raw ESYS on the in-process vTPM"
if run_child env TMPDIR="$BENCH_WORK" "$B/bench/sign-lib" >"$BENCH_WORK/sign-lib.out"; then
    cat "$BENCH_WORK/sign-lib.out"
    grep '^RESULT' "$BENCH_WORK/sign-lib.out" >>"$BENCH_SUMMARY"
else
    cat "$BENCH_WORK/sign-lib.out"
    failed+=(sign-lib)
fi
echo

run_child bench/sign-wall.sh || failed+=(sign-wall)
echo

echo "== ed25519-lib: TPM-sealed Ed25519, session cache (warm) vs raw libsodium, and cold, on the in-process vTPM"
if run_child env TMPDIR="$BENCH_WORK" "$B/bench/ed25519-lib" >"$BENCH_WORK/ed25519-lib.out"; then
    cat "$BENCH_WORK/ed25519-lib.out"
    grep '^RESULT' "$BENCH_WORK/ed25519-lib.out" >>"$BENCH_SUMMARY"
else
    cat "$BENCH_WORK/ed25519-lib.out"
    failed+=(ed25519-lib)
fi
echo

# 4. seal/unseal bound to PCR 7 vs the tpm2-tools sequence on one swtpm, and on the vTPM
if command -v swtpm >/dev/null && command -v tpm2_unseal >/dev/null; then
    if run_child env N="${SEAL_N:-60}" W=5 bench/seal-cli.sh >"$BENCH_WORK/seal-cli.out"; then
        cat "$BENCH_WORK/seal-cli.out"
        grep '^RESULT' "$BENCH_WORK/seal-cli.out" >>"$BENCH_SUMMARY"
    else
        cat "$BENCH_WORK/seal-cli.out"
        failed+=(seal-cli)
    fi
    echo
fi

# 5. event log replay (no TPM involved)
if run_child env N="${EVENTLOG_N:-100}" W=5 bench/eventlog.sh >"$BENCH_WORK/eventlog.out"; then
    cat "$BENCH_WORK/eventlog.out"
    grep '^RESULT' "$BENCH_WORK/eventlog.out" >>"$BENCH_SUMMARY"
else
    cat "$BENCH_WORK/eventlog.out"
    failed+=(eventlog)
fi
echo

# 6. quote verification through the library vs raw OpenSSL (issue 5)
echo "== quote-verify: attest verify through libcitadel vs raw OpenSSL ECDSA P-256, in one process"
if run_child env TMPDIR="$BENCH_WORK" "$B/bench/quote-verify" >"$BENCH_WORK/quote-verify.out"; then
    grep -v '^RESULT' "$BENCH_WORK/quote-verify.out"
    grep '^RESULT' "$BENCH_WORK/quote-verify.out" >>"$BENCH_SUMMARY"
else
    cat "$BENCH_WORK/quote-verify.out"
    failed+=(quote-verify)
fi
echo

# 7. attest quote as a whole process (issue 5)
if run_child env N="${QUOTE_N:-100}" W=5 bench/quote-cli.sh >"$BENCH_WORK/quote-cli.out"; then
    grep -v '^RESULT' "$BENCH_WORK/quote-cli.out"
    grep '^RESULT' "$BENCH_WORK/quote-cli.out" >>"$BENCH_SUMMARY"
else
    cat "$BENCH_WORK/quote-cli.out"
    failed+=(quote-cli)
fi
echo

# 8. audit log appends vs plain SQLite inserts of the same rows (interleaved, one process)
echo "== audit-append: cit_audit_append_batch vs plain SQLite INSERTs of the same rows, same PRAGMAs"
if run_child env TMPDIR="$BENCH_WORK" BENCH_ROUNDS="${AUDIT_APPEND_ROUNDS:-25}" "$B/bench/audit-append" >"$BENCH_WORK/audit-append.out"; then
    grep -v '^RESULT' "$BENCH_WORK/audit-append.out"
    grep '^RESULT' "$BENCH_WORK/audit-append.out" >>"$BENCH_SUMMARY"
else
    cat "$BENCH_WORK/audit-append.out"
    failed+=(audit-append)
fi
echo

# 9. proofs and chain verification on a 1,000,000-entry log
echo "== audit-proof: proofs in a ${AUDIT_ENTRIES:-1000000}-entry log, chain verification vs raw SHA-256"
if run_child env TMPDIR="$BENCH_WORK" BENCH_ENTRIES="${AUDIT_ENTRIES:-1000000}" \
    BENCH_ROUNDS="${AUDIT_VERIFY_ROUNDS:-3}" "$B/bench/audit-proof" \
    >"$BENCH_WORK/audit-proof.out"; then
    grep -v '^RESULT' "$BENCH_WORK/audit-proof.out"
    grep '^RESULT' "$BENCH_WORK/audit-proof.out" >>"$BENCH_SUMMARY"
else
    cat "$BENCH_WORK/audit-proof.out"
    failed+=(audit-proof)
fi
echo

# 10. tpmd: signatures over HTTP vs the library (issue 7)
echo "== tpmd-sign: POST /v1/sign over HTTP keep-alive (${TPMD_CLIENTS:-16} clients) vs cit_key_sign"
if run_child env B="$B" CLIENTS="${TPMD_CLIENTS:-16}" SECONDS_PER_PHASE="${TPMD_SECONDS:-4}" bench/tpmd-sign.sh \
    >"$BENCH_WORK/tpmd-sign.out"; then
    grep -v '^RESULT' "$BENCH_WORK/tpmd-sign.out"
    awk -F'\t' '$1 == "RESULT" && $2 == "tpmd-sign" {
        printf "RESULT\ttpmd-sign\thttp sign (sig/s)\t%s\tcit_key_sign\t%s\t%.3f\t>= 0.80\n", $3, $4, $6
        printf "RESULT\ttpmd-sign\tGET /v1/status (req/s)\t%s\t-\t-\t-\t-\n", $5 }' \
        "$BENCH_WORK/tpmd-sign.out" >>"$BENCH_SUMMARY"
else
    cat "$BENCH_WORK/tpmd-sign.out"
    failed+=(tpmd-sign)
fi
echo

# 11. enrolld's server-side enrollment work vs raw OpenSSL (issue 8)
echo "== enroll-server: one enrollment's server-side checks and certificates vs the same cryptography in OpenSSL"
if run_child env TMPDIR="$BENCH_WORK" "$B/bench/enroll-server" >"$BENCH_WORK/enroll-server.out"; then
    grep -v '^RESULT' "$BENCH_WORK/enroll-server.out"
    grep '^RESULT' "$BENCH_WORK/enroll-server.out" >>"$BENCH_SUMMARY"
else
    cat "$BENCH_WORK/enroll-server.out"
    failed+=(enroll-server)
fi
echo

echo "== summary (ours vs peer, measured in the same run; ratio = ours/peer: of the medians for times,"
echo "   paired per round for the sign-lib rates)"
python3 - "$BENCH_SUMMARY" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t")[1:] for l in open(sys.argv[1]) if l.startswith("RESULT")]
hdr = ["benchmark", "metric", "ours", "peer", "peer value", "ratio", "goal", "met"]
def met(r):
    metric, ratio, goal = r[1], (float(r[5]) if r[5] not in ("-", "") else 0.0), r[6].replace(" ", "")
    if goal.startswith(">=") and goal.endswith("MB/s"):  # an absolute rate: ours against it
        return "yes" if float(r[2]) >= float(goal[2:-4]) else "NO"
    if goal.startswith(">=") and goal.endswith("/s"):  # an absolute rate: ours itself
        return "yes" if float(r[2]) >= float(goal[2:-2]) else "NO"
    if goal.startswith("<=") and not goal.endswith("ms"):
        return "yes" if ratio <= float(goal[2:]) else "NO"
    if goal.startswith(">="):
        return "yes" if ratio >= float(goal[2:]) else "NO"
    if goal.startswith("<") and goal.endswith("ms"):
        return "yes" if float(r[2]) < float(goal[1:-2]) else "NO"
    return "-"
out = [hdr] + [r + [met(r)] for r in rows]
w = [max(len(x[i]) for x in out) for i in range(len(hdr))]
for i, r in enumerate(out):
    print("  " + "  ".join(c.ljust(w[j]) for j, c in enumerate(r)))
    if i == 0:
        print("  " + "  ".join("-" * w[j] for j in range(len(hdr))))
PY
echo "  load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ ${#failed[@]} -gt 0 ]; then
    echo "bench: did not run: ${failed[*]}" >&2
    exit 1
fi
exit 0
