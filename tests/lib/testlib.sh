# SPDX-License-Identifier: Apache-2.0
# Shell test library for tests/integration and tests/interop.
#
# A test file defines functions named test_*; tests/run.sh sources this library and the file,
# then runs each test in a subshell with its own temporary directory ($T) and workspace
# (TPM_STORE_PATH=$T/store.db). A test fails when any command fails (set -e) or an assertion
# fails. Helpers start swtpm on a free port and always stop it.

set -o pipefail

: "${B:=build}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CITADEL_BIN="$ROOT/$B/citadel"

citadel() { "$CITADEL_BIN" "$@"; }

# The system python starts much faster than a pyenv shim; the assertions run it often.
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    python3() { /usr/bin/python3 "$@"; }
fi

fail() {
    echo "    assertion failed: $*" >&2
    exit 1
}

assert_eq() { [ "$1" == "$2" ] || fail "expected '$2', got '$1'${3:+ ($3)}"; }
assert_ne() { [ "$1" != "$2" ] || fail "expected something other than '$2'${3:+ ($3)}"; }
assert_contains() {
    case "$1" in *"$2"*) ;; *) fail "expected to find '$2' in: $(printf '%s' "$1" | head -c 2000)" ;; esac
}
assert_not_contains() {
    case "$1" in *"$2"*) fail "did not expect '$2' in: $(printf '%s' "$1" | head -c 2000)" ;; *) ;; esac
}
assert_file() { [ -f "$1" ] || fail "file $1 does not exist"; }
assert_no_file() { [ ! -e "$1" ] || fail "file $1 should not exist"; }
assert_mode() {
    local m
    m=$(stat -c %a "$1")
    [ "$m" == "$2" ] || fail "mode of $1 is $m, expected $2"
}

# expect_fail EXIT CODE cmd...: runs cmd, which must exit with EXIT and print error[CODE].
# Leaves stderr in $ERR and stdout in $OUT.
expect_fail() {
    local want_exit=$1 want_code=$2 rc=0
    shift 2
    OUT=$("$@" 2>"$T/.err") || rc=$?
    ERR=$(cat "$T/.err")
    [ "$rc" == "$want_exit" ] || fail "'$*' exited $rc, expected $want_exit; stderr: $ERR"
    assert_contains "$ERR" "error[$want_code]"
}

# json FILE_OR_- EXPR: evaluates a Python expression on the parsed JSON document `d`.
json() {
    python3 -c 'import json,sys
src = sys.argv[1]
d = json.load(sys.stdin if src == "-" else open(src))
v = eval(sys.argv[2], {"d": d})
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1" "$2"
}

# yaml_ok: stdin must parse as YAML into a mapping with schema_version.
yaml_ok() {
    python3 -c 'import sys, yaml
d = yaml.safe_load(sys.stdin)
assert isinstance(d, dict), "not a mapping"
assert d.get("schema_version") == 1 or "error" in d, "no schema_version"'
}

free_port() {
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

# start_swtpm: starts swtpm (TPM 2.0, no resource manager) on free ports; sets SWTPM_PORT and
# SWTPM_TCTI. Stopped by stop_swtpm, which the runner calls after each test.
start_swtpm() {
    mkdir -p "$T/swtpm"
    SWTPM_PORT=$(free_port)
    swtpm socket --tpm2 --tpmstate dir="$T/swtpm" \
        --server type=tcp,port="$SWTPM_PORT",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((SWTPM_PORT + 1)),bindaddr=127.0.0.1 \
        --flags not-need-init,startup-clear --pid file="$T/swtpm.pid" \
        --log file="$T/swtpm.log" >/dev/null 2>&1 &
    SWTPM_BG=$!
    SWTPM_TCTI="swtpm:host=127.0.0.1,port=$SWTPM_PORT"
    local deadline=$((SECONDS + 10))
    until tpm2_getcap -T "$SWTPM_TCTI" properties-fixed >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "swtpm did not come up on port $SWTPM_PORT"
        kill -0 "$SWTPM_BG" 2>/dev/null || fail "swtpm exited: $(cat "$T/swtpm.log" 2>/dev/null)"
        sleep 0.05
    done
}

stop_swtpm() {
    if [ -n "${SWTPM_BG:-}" ]; then
        kill "$SWTPM_BG" 2>/dev/null || true
        wait "$SWTPM_BG" 2>/dev/null || true
        SWTPM_BG=
    fi
}

# doctor finds the store and the TPM consistent, with no failed check.
doctor_consistent() {
    local d
    d=$(citadel tpm --json doctor) || fail "doctor failed: $d"
    assert_eq "$(printf '%s' "$d" | json - '[d["consistent"], d["failed"]]')" "[true, 0]" "doctor consistent, no failed check"
}

# A workspace with the embedded vTPM in $T.
init_vtpm() { citadel tpm init >/dev/null; }
