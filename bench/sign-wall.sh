#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/sign-wall.sh: wall time of one `citadel tpm key sign` process on the embedded vTPM
# (backend vtpm: libtpms in-process, state file next to the store), median over N runs
# (default 200; goal from the issue: under 10 ms on this machine), interleaved run by run with
#
#   tpm2_sign          tpm2_sign on swtpm with a persistent key (as in sign-cli), when swtpm
#                      and tpm2-tools are available: the peer a TPM user would run instead
#   openssl            openssl dgst -sha256 -sign sw.pem -out sig msg, a software P-256 key:
#                      the floor (one process that loads libcrypto and signs, no TPM at all)
#
# and, for context, citadel-vtpm-pers: the same with a persistent key (no TPM2_Load).
#
# Each citadel run is the whole job: start the process, open the store (SQLite), lock and read
# the vTPM state file, start libtpms (TPM2_Startup STATE), read the SRK, load the key, sign,
# flush, write the signature, TPM2_Shutdown STATE and rewrite the state file.
#
# Environment: B, N, W, BENCH_WORK, BENCH_SWTPM_TCTI + BENCH_TPM2_HANDLE (reuse; else start an
# swtpm here), BENCH_SUMMARY, BENCH_KEEP (as in bench/sign-cli.sh).

# shellcheck source=bench/sign-cli.sh
. "$(dirname "${BASH_SOURCE[0]}")/sign-cli.sh"

sign_wall_main() {
    set -euo pipefail
    local root work own_work=0 citadel store tcti="" handle
    root=$(bench_root)
    : "${B:=build}"
    local n=${N:-200} w=${W:-10}
    case $B in /*) citadel=$B/citadel ;; *) citadel=$root/$B/citadel ;; esac
    [ -x "$citadel" ] || { bench_log "sign-wall: $citadel not built (run make)"; return 1; }
    if [ -n "${BENCH_WORK:-}" ]; then
        work=$BENCH_WORK/sign-wall
        mkdir -p "$work"
    else
        work=$(mktemp -d "${TMPDIR:-/tmp}/citadel-sign-wall.XXXXXX")
        own_work=1
    fi
    # shellcheck disable=SC2064
    trap "bench_stop_swtpm; [ $own_work = 1 ] && [ -z \"\${BENCH_KEEP:-}\" ] && rm -rf '$work'; true" EXIT
    trap 'exit 130' INT TERM

    handle=${BENCH_TPM2_HANDLE:-0x81000200}
    if [ -n "${BENCH_SWTPM_TCTI:-}" ]; then
        tcti=$BENCH_SWTPM_TCTI
    elif command -v swtpm >/dev/null && command -v tpm2_sign >/dev/null; then
        if bench_start_swtpm "$work"; then
            tcti=$BENCH_SWTPM_TCTI
        fi
    fi
    if [ -n "$tcti" ] && ! bench_tpm2_key "$tcti" "$handle" "$work"; then
        bench_log "sign-wall: no tpm2-tools key; tpm2_sign left out"
        tcti=""
    fi

    store=$work/citadel/store.db
    rm -rf "$work/citadel"
    "$citadel" tpm --backend vtpm --store-path "$store" init >/dev/null
    "$citadel" tpm --store-path "$store" key create bench/k >/dev/null
    "$citadel" tpm --store-path "$store" key create bench/kp --persist >/dev/null
    bench_message "$work/msg"
    cd "$work"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sw.pem 2>/dev/null

    local -a cmds=(
        citadel-vtpm "$citadel tpm --store-path $store key sign bench/k --input msg --output sig.c"
        openssl "openssl dgst -sha256 -sign sw.pem -out sig.o msg"
        citadel-vtpm-pers "$citadel tpm --store-path $store key sign bench/kp --input msg --output sig.cp"
    )
    local ratios="citadel-vtpm:openssl:floor citadel-vtpm-pers:openssl:floor"
    if [ -n "$tcti" ]; then
        cmds+=(tpm2_sign "tpm2_sign -T $tcti -c $handle -g sha256 -o sig.t msg")
        ratios="citadel-vtpm:tpm2_sign:info $ratios"
    fi

    echo "== sign-wall: citadel tpm key sign on the embedded vTPM, whole process, with the store"
    echo "   1 KiB message, ECDSA P-256 / SHA-256, N=$n interleaved rounds after $w warm-up rounds"
    echo "   goal: citadel-vtpm median < 10 ms"
    local i
    for ((i = 0; i < ${#cmds[@]}; i += 2)); do
        printf '   %-18s %s\n' "${cmds[i]}:" "${cmds[i + 1]}"
    done
    [ -n "$tcti" ] || echo "   (tpm2_sign left out: no swtpm/tpm2-tools)"
    local out
    out=$(BENCH_NAME=sign-wall BENCH_RATIOS="$ratios" bench_interleave "$n" "$w" "$work/raw" "${cmds[@]}")
    printf '%s\n' "$out"

    # The goal line: the median of citadel-vtpm against 10 ms.
    local med
    med=$(python3 -c 'import statistics,sys; print("%.2f" % (statistics.median(int(l) for l in open(sys.argv[1])) / 1e6))' \
        "$work/raw/citadel-vtpm.ns")
    local verdict=no
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 10 else 1)' "$med" && verdict=yes
    echo "   citadel-vtpm median: $med ms (goal < 10 ms: $verdict)"
    local line
    line=$(printf 'RESULT\tsign-wall\tcitadel-vtpm median ms\t%s\tgoal\t10.00\t%s\t< 10 ms' "$med" \
        "$(python3 -c 'import sys; print("%.3f" % (float(sys.argv[1]) / 10))' "$med")")
    echo "$line"
    [ -z "${BENCH_SUMMARY:-}" ] || echo "$line" >>"$BENCH_SUMMARY"

    "$citadel" tpm --store-path "$store" key verify bench/k --input msg --signature sig.c >/dev/null ||
        { bench_log "sign-wall: the citadel signature does not verify"; return 1; }
    openssl pkey -in sw.pem -pubout -out sw.pub 2>/dev/null
    openssl dgst -sha256 -verify sw.pub -signature sig.o msg >/dev/null ||
        { bench_log "sign-wall: the openssl signature does not verify"; return 1; }
    echo "   signatures verified"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    sign_wall_main "$@"
fi
