# SPDX-License-Identifier: Apache-2.0
# Soak and fault runs. `make check` runs a short version of each; `make check-long`
# (CIT_LONG=1) runs them long.

if [ -n "${CIT_LONG:-}" ]; then
    SOAK_ROUNDS=400
    KILLS=100
else
    SOAK_ROUNDS=25
    KILLS=8
fi

# Mixed lifecycle in one process and across processes; at the end every signature verifies
# with openssl and the store and TPM agree.
test_soak_lifecycle() {
    init_vtpm
    echo "soak message" >m
    : >cmds
    for i in $(seq "$SOAK_ROUNDS"); do
        k=soak/k$((i % 7))
        if [ "$i" -le 7 ]; then echo "key create $k" >>cmds; fi
        echo "key sign $k --input m --output sig.$i" >>cmds
        if [ $((i % 5)) == 0 ]; then echo "key rotate $k" >>cmds; fi
        if [ $((i % 11)) == 0 ]; then
            echo "key create soak/tmp$i --persist" >>cmds
            echo "key delete soak/tmp$i" >>cmds
        fi
    done
    citadel tpm batch --input cmds >/dev/null
    for i in $(seq 1 "$SOAK_ROUNDS"); do
        k=soak/k$((i % 7))
        # verify in software against every version: the signature was made by one of them
        citadel tpm key verify "$k" --input m --signature "sig.$i" >/dev/null || fail "sig.$i does not verify"
    done
    for i in $(seq 1 $((SOAK_ROUNDS / 5 + 1))); do
        citadel tpm key sign soak/k$((i % 7)) --input m --output p.$i >/dev/null
    done
    assert_eq "$(citadel tpm --json doctor | json - 'd["consistent"]')" "true"
}

# Fault injection: signing processes killed with SIGKILL at random moments (holding the lock,
# inside the TPM, while writing the state). Afterwards the state file loads, the store and TPM
# agree, and keys still sign.
test_fault_kill_during_operations() {
    init_vtpm
    citadel tpm key create f/k >/dev/null
    citadel tpm key export-pub f/k --output pub.pem >/dev/null
    echo m >m
    for i in $(seq "$KILLS"); do
        # the binary itself, not the citadel() wrapper: the kill must hit the process that works
        "$CITADEL_BIN" tpm key sign f/k --input m --output "s.$i" >/dev/null 2>&1 &
        pid=$!
        # between 0 and ~15 ms into the command
        sleep "0.00$((RANDOM % 10))$((RANDOM % 10))"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        # a signature that was written whole verifies; a killed one is absent, never torn
        if [ -e "s.$i" ]; then
            openssl dgst -sha256 -verify pub.pem -signature "s.$i" m >/dev/null || fail "torn signature s.$i"
        fi
    done
    citadel tpm key sign f/k --input m --output final.sig >/dev/null
    # a state save cut short leaves a temp file; the next command (holding the lock) removes it
    assert_eq "$(find . -maxdepth 1 -name 'store.db.tpmstate.tmp.*' | wc -l)" 0 "no state temp files left"
    openssl dgst -sha256 -verify pub.pem -signature final.sig m >/dev/null
    assert_eq "$(citadel tpm --json doctor | json - 'd["consistent"]')" "true"
}
