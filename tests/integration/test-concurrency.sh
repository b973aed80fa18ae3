# SPDX-License-Identifier: Apache-2.0
# Several citadel processes on one vtpm workspace at once: the lock on <store>.tpmstate.lock
# serialises them; every operation must succeed and the store and TPM must stay consistent.

# wait_all PID...: waits for every pid; fails if any exited non-zero.
wait_all() {
    local p bad=0
    for p in "$@"; do
        wait "$p" || bad=$((bad + 1))
    done
    [ "$bad" == 0 ] || fail "$bad background worker(s) failed: $(cat "$T"/worker*.err 2>/dev/null | head -20)"
}

# 50 signatures per worker in `make check`; 500 in `make check-long`.
SIGS_PER_WORKER=50
[ -n "${CIT_LONG:-}" ] && SIGS_PER_WORKER=500

test_parallel_signing_two_processes() {
    init_vtpm
    citadel tpm key create signing/shared >/dev/null
    citadel tpm key export-pub signing/shared --output pub.pem >/dev/null
    pids=()
    for w in 1 2; do
        echo "message from worker $w" >"m$w"
        (
            for i in $(seq "$SIGS_PER_WORKER"); do
                citadel tpm key sign signing/shared --input "m$w" --output "s$w.$i" >/dev/null 2>>"worker$w.err" ||
                    { echo "worker $w signature $i failed" >>"worker$w.err"; exit 1; }
            done
        ) &
        pids+=($!)
    done
    wait_all "${pids[@]}"
    # all 100 signatures exist and verify with openssl, each over its own worker's message
    n=0
    for w in 1 2; do
        for i in $(seq "$SIGS_PER_WORKER"); do
            [ -s "s$w.$i" ] || fail "signature s$w.$i is missing or empty"
            openssl dgst -sha256 -verify pub.pem -signature "s$w.$i" "m$w" >/dev/null 2>&1 ||
                fail "signature s$w.$i does not verify"
            n=$((n + 1))
        done
    done
    assert_eq "$n" $((2 * SIGS_PER_WORKER))
    # a signature of worker 1 is not valid for worker 2's message
    ! openssl dgst -sha256 -verify pub.pem -signature s1.1 m2 >/dev/null 2>&1 || fail "cross-verified"
    # the state file is whole (not torn) and still usable; no temp files were left behind
    [ "$(stat -c %s "$TPM_STORE_PATH.tpmstate")" -gt 0 ] || fail "state file empty"
    # (the .swap file is kept on purpose: the previous state, rewritten and exchanged at each save)
    assert_eq "$(find "$T" -maxdepth 1 -name 'store.db.tpmstate.*' ! -name '*.lock' ! -name '*.swap' | wc -l)" 0 "leftover temp state files"
    assert_eq "$(stat -c %a "$TPM_STORE_PATH.tpmstate.swap")" 600
    doctor_consistent
    citadel tpm key sign signing/shared --input m1 --output last.sig >/dev/null
    citadel tpm key verify signing/shared --input m1 --signature last.sig >/dev/null
    # signing does not write the operation log, but nothing else was lost either
    assert_eq "$(citadel tpm --json object list | json - 'd["count"]')" 1
}

test_parallel_create_distinct_paths() {
    init_vtpm
    pids=()
    for w in 1 2 3; do
        (
            for i in $(seq 6); do
                citadel tpm key create "w$w/k$i" >/dev/null 2>>"worker$w.err" || exit 1
            done
        ) &
        pids+=($!)
    done
    wait_all "${pids[@]}"
    assert_eq "$(citadel tpm --json object list | json - 'd["count"]')" 18
    assert_eq "$(citadel tpm --json log show --action key.create --limit 1000 | json - 'd["count"]')" 18
    # every key works and has its own TPM key
    assert_eq "$(citadel tpm --json object list | json - 'len(set(o["path"] for o in d["objects"]))')" 18
    echo x >m
    for w in 1 2 3; do
        citadel tpm key sign "w$w/k6" --input m --output "w$w.sig" >/dev/null
        citadel tpm key verify "w$w/k6" --input m --signature "w$w.sig" >/dev/null
    done
    doctor_consistent
}

test_parallel_create_same_path_one_wins() {
    init_vtpm
    pids=()
    for w in 1 2 3 4; do
        (
            rc=0
            citadel tpm key create contested >/dev/null 2>"worker$w.err" || rc=$?
            echo "$rc" >"rc$w"
        ) &
        pids+=($!)
    done
    wait "${pids[@]}"
    wins=0
    for w in 1 2 3 4; do
        rc=$(cat "rc$w")
        if [ "$rc" == 0 ]; then
            wins=$((wins + 1))
        else
            assert_eq "$rc" 3 "exit status of a losing create"
            assert_contains "$(cat "worker$w.err")" "error[TPM0005]"
        fi
    done
    assert_eq "$wins" 1 "exactly one create succeeds"
    assert_eq "$(citadel tpm --json key show contested | json - '[d["version"], len(d["versions"])]')" "[1, 1]"
    echo x >m
    citadel tpm key sign contested --input m >/dev/null
    doctor_consistent
}

test_parallel_sign_while_rotating() {
    init_vtpm
    citadel tpm key create rot >/dev/null
    echo "payload" >m
    (
        for i in $(seq 20); do
            citadel tpm key sign rot --input m --output "s.$i" >/dev/null 2>>worker1.err || exit 1
        done
    ) &
    p1=$!
    (
        for i in $(seq 4); do
            citadel tpm key rotate rot >/dev/null 2>>worker2.err || exit 1
        done
    ) &
    p2=$!
    wait_all "$p1" "$p2"
    assert_eq "$(citadel tpm --json key show rot | json - '[d["version"], len(d["versions"])]')" "[5, 5]"
    # every signature verifies against some version of the key, which key verify names
    versions=""
    for i in $(seq 20); do
        v=$(citadel tpm --json key verify rot --input m --signature "s.$i" | json - 'd["version"]') ||
            fail "signature s.$i made during rotation does not verify"
        versions="$versions $v"
    done
    # and the version key verify names really made it (openssl with that version's public key)
    for i in 1 20; do
        v=$(citadel tpm --json key verify rot --input m --signature "s.$i" | json - 'd["version"]')
        citadel tpm key export-pub rot --version "$v" --output "v$v.pem" >/dev/null
        assert_eq "$(openssl dgst -sha256 -verify "v$v.pem" -signature "s.$i" m)" "Verified OK"
    done
    assert_eq "$(citadel tpm --json log show --object rot --action key.rotate | json - 'd["count"]')" 4
    doctor_consistent
}

test_parallel_readers_and_writer() {
    # store-only readers (list/show/verify/export-pub) run alongside a writer and never fail
    # or see a half-written object
    init_vtpm
    citadel tpm key create base >/dev/null
    echo x >m
    citadel tpm key sign base --input m --output base.sig >/dev/null
    (
        for i in $(seq 10); do
            citadel tpm key create "new/k$i" >/dev/null 2>>worker1.err || exit 1
        done
    ) &
    p1=$!
    (
        for i in $(seq 30); do
            citadel tpm --json object list >"list.$i" 2>>worker2.err || exit 1
            citadel tpm key verify base --input m --signature base.sig >/dev/null 2>>worker2.err || exit 1
        done
    ) &
    p2=$!
    wait_all "$p1" "$p2"
    python3 - <<'EOF' || fail "a reader saw an inconsistent object list"
import glob, json
for f in glob.glob("list.*"):
    d = json.load(open(f))
    assert d["schema_version"] == 1
    assert d["count"] == len(d["objects"]), f
    assert all(o["version"] >= 1 and o["algorithm"] for o in d["objects"]), f
EOF
    assert_eq "$(citadel tpm --json object list | json - 'd["count"]')" 11
    doctor_consistent
}
