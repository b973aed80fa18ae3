#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/tpmd-sign.sh: ECDSA P-256 signatures per second through tpmd over HTTP keep-alive
# (CLIENTS connections, default 16) against libcitadel's own rate (cit_key_sign, data in memory)
# on the same vTPM workspace in the same run: lib, http, lib again (the lib rate is the mean of
# the two, so a drift in machine speed shows). Goal: http >= 80 % of lib. Also GET /v1/status
# requests per second. Every HTTP signature includes its committed audit entry.
#   make build/bench/tpmd-sign && bench/tpmd-sign.sh     (SECONDS per phase, default 5)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${B:-build}
SECS=${SECONDS_PER_PHASE:-5}
CLIENTS=${CLIENTS:-16}
W=$(mktemp -d "${TMPDIR:-/tmp}/tpmd-bench.XXXXXX")
export TPM_STORE_PATH=$W/store.db
unset TPM_BACKEND
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
"$ROOT/$B/citadel" tpm --backend vtpm init >/dev/null
"$ROOT/$B/citadel" tpm key create bench/k --algorithm ecc-p256 >/dev/null
KEY=bench-key-0123456789abcdef
printf 'bench admin %s\n' "$KEY" >"$W/keys"
chmod 600 "$W/keys"
lib1=$("$ROOT/$B/bench/tpmd-sign" lib bench/k "$SECS" | awk '/^RATE/ {print $3}')
"$ROOT/$B/tpmd" --listen 127.0.0.1:0 --ready-file "$W/ready" --keys-file "$W/keys" --threads "${THREADS:-0}" \
    --max-connections 256 2>"$W/tpmd.log" &
PID=$!
for _ in $(seq 200); do [ -s "$W/ready" ] && break; sleep 0.05; done
port=$(sed 's/.*://' "$W/ready")
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
http=$("$ROOT/$B/bench/tpmd-sign" http 127.0.0.1 "$port" "$KEY" bench/k "$CLIENTS" "$SECS")
status=$("$ROOT/$B/bench/tpmd-sign" http 127.0.0.1 "$port" "$KEY" bench/k "$CLIENTS" "$SECS" status)
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
kill "$PID"
wait "$PID" || true
PID=
lib2=$("$ROOT/$B/bench/tpmd-sign" lib bench/k "$SECS" | awk '/^RATE/ {print $3}')
hr=$(echo "$http" | awk '{print $3}')
sr=$(echo "$status" | awk '{print $3}')
lib=$(((lib1 + lib2) / 2))
echo "library cit_key_sign        : $lib1 / $lib2 signatures/s (mean $lib)"
echo "tpmd POST /v1/sign ($CLIENTS keep-alive clients): $hr signatures/s ($(echo "$http" | awk '{print $4" ok, "$5" errors"}'))"
echo "tpmd GET /v1/status ($CLIENTS clients): $sr requests/s ($(echo "$status" | awk '{print $4" ok, "$5" errors"}'))"
echo "ratio http/lib: $(awk -v h="$hr" -v l="$lib" 'BEGIN {printf "%.0f %%", 100 * h / l}') (goal >= 80 %)"
echo "tpmd RSS: $rss0 kB before, $rss1 kB after"
printf 'RESULT\ttpmd-sign\t%s\t%s\t%s\n' "$hr" "$lib" "$sr"
