#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every test: cmocka unit tests, then tests/{integration,interop}/*.sh (two files at a time).
# Ends with exactly one line: "N passed, N failed".
#   B=build tests/run.sh [FILTER]   FILTER: run only test files whose name contains it
#   CIT_LONG=1: also the long soak/fault variants. CIT_SANITIZE=1: an ASan/UBSan build.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
: "${B:=build}"
export B
FILTER=${1:-}
RESULTS=$(mktemp -d "${TMPDIR:-/tmp}/citadel-tests.XXXXXX")
trap 'rm -rf "$RESULTS"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# One shell test file: every test_* function in a subshell with its own directory.
run_file() {
    local file=$1 out=$2 fn
    (
        # shellcheck source=tests/lib/testlib.sh
        source "$ROOT/tests/lib/testlib.sh"
        source "$ROOT/$file"
        for fn in $(declare -F | awk '{print $3}' | grep '^test_'); do
            T=$(mktemp -d "${TMPDIR:-/tmp}/cit-t.XXXXXX")
            export T TPM_STORE_PATH="$T/store.db"
            unset TPM_BACKEND TPM_TCTI
            local start=$SECONDS
            # Not inside an `if`: bash ignores `set -e` in a condition, and then a command
            # failing in the middle of a test would not fail it.
            (
                cd "$T" || exit 1
                set -e
                trap stop_swtpm EXIT
                "$fn"
            ) >"$T/.log" 2>&1
            local rc=$?
            if [ "$rc" -eq 0 ]; then
                echo "ok   $file $fn ($((SECONDS - start))s)" >>"$out"
                rm -rf "$T"
            else
                echo "FAIL $file $fn" >>"$out"
                sed 's/^/     | /' "$T/.log" | tail -40 >>"$out"
                rm -rf "$T"
            fi
        done
    )
}
export -f run_file
export ROOT

passed=0
failed=0

# Unit tests (cmocka): count each test case.
for t in "$B"/tests/test-*; do
    [ -x "$t" ] || continue
    [ -n "$FILTER" ] && [[ "$t" != *"$FILTER"* ]] && continue
    log="$RESULTS/$(basename "$t").log"
    "$t" >"$log" 2>&1
    rc=$?
    p=$(grep -Eo '\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
    f=$(grep -Eo '\[  FAILED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ]; then
        echo "FAIL unit $(basename "$t")"
        sed 's/^/     | /' "$log" | tail -40
    else
        echo "ok   unit $(basename "$t") ($p cases)"
    fi
done

files=()
for f in tests/integration/*.sh tests/interop/*.sh; do
    [ -f "$f" ] || continue
    [ -n "$FILTER" ] && [[ "$f" != *"$FILTER"* ]] && continue
    files+=("$f")
done
if [ ${#files[@]} -gt 0 ]; then
    printf '%s\n' "${files[@]}" | xargs -P "${CIT_JOBS:-2}" -I{} bash -c 'run_file "$1" "$2/$(echo "$1" | tr / _).out"' _ {} "$RESULTS"
    for f in "${files[@]}"; do
        o="$RESULTS/$(echo "$f" | tr / _).out"
        [ -f "$o" ] || { echo "FAIL $f (no test ran)"; failed=$((failed + 1)); continue; }
        cat "$o"
        passed=$((passed + $(grep -c '^ok ' "$o")))
        failed=$((failed + $(grep -c '^FAIL ' "$o")))
    done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
