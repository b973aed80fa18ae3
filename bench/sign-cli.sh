#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/sign-cli.sh: `citadel tpm key sign` against `tpm2_sign`, whole processes, on the SAME
# swtpm, signing the same 1 KiB message, interleaved run by run.
#
#   tpm2_sign         tpm2_sign -T swtpm:... -c 0x81000200 -g sha256 -o sig msg
#                     (ECC P-256 signing key under an owner primary, persisted with
#                     tpm2_evictcontrol)
#   citadel-persist   citadel tpm --store-path S key sign bench/k --input msg --output sig
#                     (bench/k created with --persist)
#   citadel-ondemand  the same with bench/kt, a key loaded on demand (TPM2_Load + Flush)
#
# Every round runs each command once, in rotating order; N rounds (default 200) after W
# warm-up rounds (default 10). Reports median and mean wall time per command and the ratios
# ours/theirs (goal from the issue: <= 0.5, i.e. at most half the time of tpm2_sign).
#
# Environment: B (build dir, default build), N, W, BENCH_WORK (scratch dir, default mktemp),
# BENCH_SWTPM_TCTI + BENCH_TPM2_HANDLE (use an swtpm and tpm2 key bench/run.sh prepared; else
# this script starts its own swtpm and stops it on exit), BENCH_SUMMARY (file: RESULT lines are
# appended for bench/run.sh), BENCH_HYPERFINE=1 (also run hyperfine on the same commands, not
# interleaved, as a cross-check).
#
# Sourced (by bench/run.sh and bench/sign-wall.sh) it only defines the helpers below.

# ---------------------------------------------------------------------------------------------
# helpers

bench_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

bench_log() { printf '%s\n' "$*" >&2; }

bench_free_port() {
    python3 -c 'import socket
for _ in range(50):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p < 65000:
        s2 = socket.socket()
        try:
            s2.bind(("127.0.0.1", p + 1)); s2.close(); print(p); break
        except OSError:
            s2.close()'
}

# bench_start_swtpm DIR: starts swtpm (TPM 2.0, no resource manager, already started up) on a
# free port pair; sets BENCH_SWTPM_PID and BENCH_SWTPM_TCTI. Stop with bench_stop_swtpm.
bench_start_swtpm() {
    local dir=$1 port deadline
    command -v swtpm >/dev/null || { bench_log "swtpm is not installed"; return 1; }
    mkdir -p "$dir/swtpm-state"
    port=$(bench_free_port)
    swtpm socket --tpm2 --tpmstate dir="$dir/swtpm-state" \
        --server type=tcp,port="$port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
        --flags not-need-init,startup-clear --pid file="$dir/swtpm.pid" \
        --log file="$dir/swtpm.log" >/dev/null 2>&1 &
    BENCH_SWTPM_PID=$!
    BENCH_SWTPM_TCTI="swtpm:host=127.0.0.1,port=$port"
    deadline=$((SECONDS + 10))
    until tpm2_getcap -T "$BENCH_SWTPM_TCTI" properties-fixed >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "$BENCH_SWTPM_PID" 2>/dev/null; then
            bench_log "swtpm did not come up on port $port: $(cat "$dir/swtpm.log" 2>/dev/null)"
            bench_stop_swtpm
            return 1
        fi
        sleep 0.05
    done
}

bench_stop_swtpm() {
    if [ -n "${BENCH_SWTPM_PID:-}" ]; then
        kill "$BENCH_SWTPM_PID" 2>/dev/null || true
        wait "$BENCH_SWTPM_PID" 2>/dev/null || true
        BENCH_SWTPM_PID=
    fi
}

# bench_tpm2_key TCTI HANDLE DIR: an ECC P-256 signing key made with tpm2-tools under an owner
# primary and persisted at HANDLE (kept if it is already there). Transient objects are flushed
# afterwards (swtpm has no resource manager).
bench_tpm2_key() {
    local tcti=$1 handle=$2 dir=$3
    if tpm2_readpublic -T "$tcti" -c "$handle" >/dev/null 2>&1; then
        return 0
    fi
    mkdir -p "$dir/tpm2"
    # swtpm has no resource manager and 3 object slots: every tool reloads the context files
    # it is given and leaves them loaded, so flush transient objects after each step.
    (
        cd "$dir/tpm2" &&
            tpm2_createprimary -T "$tcti" -Q -C o -g sha256 -G ecc -c prim.ctx &&
            tpm2_flushcontext -T "$tcti" -t &&
            tpm2_create -T "$tcti" -Q -C prim.ctx -G ecc256:ecdsa-sha256 -u k.pub -r k.priv &&
            tpm2_flushcontext -T "$tcti" -t &&
            tpm2_load -T "$tcti" -Q -C prim.ctx -u k.pub -r k.priv -c k.ctx &&
            tpm2_flushcontext -T "$tcti" -t &&
            tpm2_evictcontrol -T "$tcti" -Q -C o -c k.ctx "$handle" &&
            tpm2_flushcontext -T "$tcti" -t &&
            tpm2_flushcontext -T "$tcti" -s
    ) >"$dir/tpm2/setup.log" 2>&1 || {
        bench_log "tpm2-tools key setup failed:"
        cat "$dir/tpm2/setup.log" >&2
        return 1
    }
}

# bench_message FILE: the same 1 KiB message for every benchmark (fixed content).
bench_message() {
    python3 -c 'import sys; open(sys.argv[1], "wb").write(bytes((i * 131 + 7) & 0xff for i in range(1024)))' "$1"
}

# bench_interleave N WARMUP RAWDIR LABEL CMD [LABEL CMD ...]
#   Runs each command (split like a shell would, no shell in between: posix_spawn, stdout and
#   stderr to files) once per round, rotating the order every round. Prints a table in ms.
#   Raw wall times (ns) go to RAWDIR/LABEL.ns. A failing command stops the benchmark.
#   BENCH_RATIOS="ours:peer:goal ..." prints ratios ours/peer (median and mean); with
#   BENCH_NAME set, RESULT lines for bench/run.sh (appended to $BENCH_SUMMARY when set).
bench_interleave() {
    python3 - "$@" <<'PY'
import os, shlex, shutil, statistics, sys, time

n, warm, rawdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
args = sys.argv[4:]
cmds = [(args[i], shlex.split(args[i + 1])) for i in range(0, len(args), 2)]
os.makedirs(rawdir, exist_ok=True)
for label, argv in cmds:
    exe = shutil.which(argv[0])
    if not exe:
        sys.exit(f"bench: {argv[0]}: not found")
    argv[0] = exe

def run(label, argv):
    fa = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
          (os.POSIX_SPAWN_OPEN, 1, f"{rawdir}/{label}.stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
          (os.POSIX_SPAWN_OPEN, 2, f"{rawdir}/{label}.stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    if status != 0:
        err = open(f"{rawdir}/{label}.stderr", errors="replace").read()
        sys.exit(f"bench: {label} failed (wait status {status}): {shlex.join(argv)}\n{err}")
    return t1 - t0

times = {label: [] for label, _ in cmds}
k = len(cmds)
for r in range(warm + n):
    for j in range(k):
        label, argv = cmds[(j + r) % k]
        t = run(label, argv)
        if r >= warm:
            times[label].append(t)

for label, ts in times.items():
    with open(f"{rawdir}/{label}.ns", "w") as f:
        f.write("\n".join(map(str, ts)) + "\n")

def q(ts, p):
    s = sorted(ts)
    return s[min(len(s) - 1, int(p * (len(s) - 1) + 0.5))]

ms = lambda ns: ns / 1e6
stats = {}
print(f"  {'command':<18} {'n':>4} {'median':>8} {'mean':>8} {'sd':>7} {'p10':>8} {'p90':>8} {'min':>8}   (ms, wall, per process)")
for label, ts in times.items():
    st = dict(median=statistics.median(ts), mean=statistics.fmean(ts),
              sd=statistics.pstdev(ts), p10=q(ts, .1), p90=q(ts, .9), min=min(ts))
    stats[label] = st
    print(f"  {label:<18} {len(ts):>4} {ms(st['median']):8.2f} {ms(st['mean']):8.2f} {ms(st['sd']):7.2f} "
          f"{ms(st['p10']):8.2f} {ms(st['p90']):8.2f} {ms(st['min']):8.2f}")

ratios = os.environ.get("BENCH_RATIOS", "").split()
name = os.environ.get("BENCH_NAME")
summary = os.environ.get("BENCH_SUMMARY")
if ratios:
    print("\n  ratios ours/theirs, lower is better for ours (median: of the medians; mean: of the means;")
    print("  paired: median over rounds of ours/theirs within the round)")
lines = []
for spec in ratios:
    ours, peer, goal = spec.split(":", 2)
    rm = stats[ours]["median"] / stats[peer]["median"]
    ra = stats[ours]["mean"] / stats[peer]["mean"]
    # paired: the two runs of the same round were seconds apart at most
    rp = statistics.median(a / b for a, b in zip(times[ours], times[peer]))
    print(f"    {ours:<18} / {peer:<18} median {rm:6.3f}   mean {ra:6.3f}   paired {rp:6.3f}   (goal {goal})")
    if name:
        lines.append(f"RESULT\t{name}\t{ours} median ms\t{ms(stats[ours]['median']):.2f}\t{peer}\t"
                     f"{ms(stats[peer]['median']):.2f}\t{rm:.3f}\t{goal}")
for l in lines:
    print(l)
if summary and lines:
    with open(summary, "a") as f:
        f.write("\n".join(lines) + "\n")
PY
}

# ---------------------------------------------------------------------------------------------
# main (when executed, not sourced)

sign_cli_main() {
    set -euo pipefail
    local root work own_work=0 tcti handle citadel store
    root=$(bench_root)
    : "${B:=build}"
    local n=${N:-200} w=${W:-10}
    case $B in /*) citadel=$B/citadel ;; *) citadel=$root/$B/citadel ;; esac
    [ -x "$citadel" ] || { bench_log "sign-cli: $citadel not built (run make)"; return 1; }
    for t in tpm2_sign tpm2_createprimary python3; do
        command -v "$t" >/dev/null || { bench_log "sign-cli: $t is not installed"; return 1; }
    done
    if [ -n "${BENCH_WORK:-}" ]; then
        work=$BENCH_WORK/sign-cli
        mkdir -p "$work"
    else
        work=$(mktemp -d "${TMPDIR:-/tmp}/citadel-sign-cli.XXXXXX")
        own_work=1
    fi
    # shellcheck disable=SC2064 # expand now: the cleanup knows what this run created
    trap "bench_stop_swtpm; [ $own_work = 1 ] && [ -z \"\${BENCH_KEEP:-}\" ] && rm -rf '$work'; true" EXIT
    trap 'exit 130' INT TERM

    if [ -n "${BENCH_SWTPM_TCTI:-}" ]; then
        tcti=$BENCH_SWTPM_TCTI
    else
        bench_start_swtpm "$work"
        tcti=$BENCH_SWTPM_TCTI
    fi
    handle=${BENCH_TPM2_HANDLE:-0x81000200}
    bench_tpm2_key "$tcti" "$handle" "$work"

    store=$work/citadel/store.db
    rm -rf "$work/citadel"
    "$citadel" tpm --backend swtpm --tcti "$tcti" --store-path "$store" init >/dev/null
    "$citadel" tpm --store-path "$store" key create bench/k --persist >/dev/null
    "$citadel" tpm --store-path "$store" key create bench/kt >/dev/null
    bench_message "$work/msg"
    cd "$work"

    echo "== sign-cli: citadel tpm key sign vs tpm2_sign, whole processes, same swtpm ($tcti)"
    echo "   1 KiB message, ECDSA P-256 / SHA-256, N=$n interleaved rounds after $w warm-up rounds"
    echo "   tpm2_sign:        tpm2_sign -T $tcti -c $handle -g sha256 -o sig.tpm2 msg"
    echo "   citadel-persist:  citadel tpm --store-path $store key sign bench/k --input msg --output sig.cp"
    echo "   citadel-ondemand: citadel tpm --store-path $store key sign bench/kt --input msg --output sig.ct"
    BENCH_NAME=sign-cli \
    BENCH_RATIOS="citadel-persist:tpm2_sign:<=0.50 citadel-ondemand:tpm2_sign:<=0.50" \
        bench_interleave "$n" "$w" "$work/raw" \
        tpm2_sign "tpm2_sign -T $tcti -c $handle -g sha256 -o sig.tpm2 msg" \
        citadel-persist "$citadel tpm --store-path $store key sign bench/k --input msg --output sig.cp" \
        citadel-ondemand "$citadel tpm --store-path $store key sign bench/kt --input msg --output sig.ct"

    # Both produced real signatures over the same message (checked once, after the timing).
    tpm2_verifysignature -T "$tcti" -Q -c "$handle" -g sha256 -m msg -s sig.tpm2 ||
        { bench_log "sign-cli: the tpm2_sign signature does not verify"; return 1; }
    "$citadel" tpm --store-path "$store" key verify bench/k --input msg --signature sig.cp >/dev/null ||
        { bench_log "sign-cli: the citadel signature does not verify"; return 1; }
    "$citadel" tpm --store-path "$store" key verify bench/kt --input msg --signature sig.ct >/dev/null ||
        { bench_log "sign-cli: the citadel (on-demand key) signature does not verify"; return 1; }
    echo "   signatures verified (tpm2_verifysignature; citadel key verify)"

    if [ "${BENCH_HYPERFINE:-0}" = 1 ] && command -v hyperfine >/dev/null; then
        echo "   hyperfine cross-check (not interleaved: runs each command in a block):"
        hyperfine -N -w "$w" -r "$n" --style basic \
            -n tpm2_sign "tpm2_sign -T $tcti -c $handle -g sha256 -o sig.tpm2 msg" \
            -n citadel-persist "$citadel tpm --store-path $store key sign bench/k --input msg --output sig.cp" \
            -n citadel-ondemand "$citadel tpm --store-path $store key sign bench/kt --input msg --output sig.ct" \
            2>&1 | grep -E 'Benchmark|Time|±' | sed 's/^/     /'
    fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    sign_cli_main "$@"
fi
