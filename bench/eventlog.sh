#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/eventlog.sh: event log replay (issue 5).
#   1. $B/bench/eventlog-replay: libcitadel's replay of the largest real log held in memory,
#      MB of log per second (goal: >= 100 MB/s).
#   2. For the record, whole processes on the same log, interleaved: `citadel tpm attest
#      eventlog replay LOG` vs `tpm2_eventlog LOG` (which parses, replays and prints every
#      event as YAML): median wall time per log over N runs.
# Prints a table and RESULT lines (appended to $BENCH_SUMMARY when set). Environment: B, N
# (process runs, default 100), W (warm-up, default 5), BENCH_ROUNDS, BENCH_ROUND_MS.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
B=${B:-build}
N=${N:-100}
W=${W:-5}
LOG=${EVENTLOG_BENCH_LOG:-tests/data/eventlog/event-postcode.bin}

echo "== eventlog: replay of $LOG ($(stat -c %s "$LOG") bytes)"
out=$("$B/bench/eventlog-replay" "$LOG") || { echo "$out"; exit 1; }
printf '%s\n' "$out" | grep -v '^RATE'
rate=$(printf '%s\n' "$out" | awk -F'\t' '$1 == "RATE" {print $2}')

echo
echo "-- whole processes, interleaved, N=$N (W=$W warm-up): citadel vs tpm2_eventlog"
python3 - "$B/citadel" "$LOG" "$N" "$W" "$rate" "${BENCH_SUMMARY:-}" <<'PY'
import os, statistics, subprocess, sys, time
citadel, log, n, w, rate, summary = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
cmds = {
    "citadel replay": [citadel, "tpm", "attest", "eventlog", "replay", log],
    "citadel show --json": [citadel, "tpm", "--json", "attest", "eventlog", "show", log],
    "tpm2_eventlog": ["tpm2_eventlog", log],
}
have_tools = subprocess.run(["sh", "-c", "command -v tpm2_eventlog"], capture_output=True).returncode == 0
if not have_tools:
    del cmds["tpm2_eventlog"]
times = {k: [] for k in cmds}
names = list(cmds)
devnull = open(os.devnull, "wb")
for i in range(w + n):
    order = names[i % len(names):] + names[:i % len(names)]
    for k in order:
        t0 = time.perf_counter_ns()
        r = subprocess.run(cmds[k], stdout=devnull, stderr=devnull)
        t = time.perf_counter_ns() - t0
        if r.returncode != 0:
            sys.exit("%s failed (exit %d)" % (k, r.returncode))
        if i >= w:
            times[k].append(t / 1e6)
size = os.path.getsize(log)
print("  %-22s %9s %9s %9s %12s" % ("command", "median ms", "p10 ms", "p90 ms", "MB/s (proc)"))
for k in names:
    v = sorted(times[k]); med = statistics.median(v)
    print("  %-22s %9.2f %9.2f %9.2f %12.2f" % (k, med, v[len(v) // 10], v[len(v) * 9 // 10], size / med / 1e3))
lines = []
if have_tools:
    ours, theirs = statistics.median(times["citadel replay"]), statistics.median(times["tpm2_eventlog"])
    print("  ratio citadel replay / tpm2_eventlog (medians): %.3f" % (ours / theirs))
    lines.append("RESULT\teventlog\treplay in memory (MB/s)\t%.1f\ttpm2_eventlog process\t%.2f\t%.1f\t>= 100 MB/s" % (rate, size / theirs / 1e3, rate / (size / theirs / 1e3)))
    lines.append("RESULT\teventlog\treplay process median ms\t%.2f\ttpm2_eventlog\t%.2f\t%.3f\t-" % (ours, theirs, ours / theirs))
else:
    lines.append("RESULT\teventlog\treplay in memory (MB/s)\t%.1f\t-\t-\t-\t>= 100 MB/s" % rate)
for l in lines:
    print(l)
if summary:
    open(summary, "a").write("".join(l + "\n" for l in lines))
PY
