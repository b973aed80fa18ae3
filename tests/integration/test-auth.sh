# SPDX-License-Identifier: Apache-2.0
# Keys with a password: the TPM enforces it, counts failures, locks out, and recovers.

test_password_key_enforced_by_tpm() {
    init_vtpm
    printf 'correct horse\n' >pw
    printf 'wrong\n' >bad
    echo data >m
    citadel tpm key create a/k --auth-file pw >/dev/null
    citadel tpm key sign a/k --input m --auth-file pw --output s >/dev/null
    citadel tpm key export-pub a/k --output p.pem >/dev/null
    assert_eq "$(openssl dgst -sha256 -verify p.pem -signature s m)" "Verified OK"
    expect_fail 7 TPM0024 citadel tpm key sign a/k --input m --output s2
    assert_contains "$ERR" "needs its password"
    assert_no_file s2
    expect_fail 7 TPM0024 citadel tpm key sign a/k --input m --auth-file bad --output s2
    assert_contains "$ERR" "da_counter 1"
    assert_contains "$ERR" "2 more failure(s) lock the TPM out"
    assert_no_file s2
    assert_not_contains "$ERR" "correct horse"
}

test_lockout_and_reset() {
    init_vtpm
    printf 'pw\n' >pw
    printf 'bad\n' >bad
    echo data >m
    citadel tpm key create a/k --auth-file pw >/dev/null
    max=$(citadel tpm --json lockout show | json - 'd["max_tries"]')
    for i in $(seq 1 "$max"); do
        expect_fail 7 TPM0024 citadel tpm key sign a/k --input m --auth-file bad
    done
    expect_fail 7 TPM0025 citadel tpm key sign a/k --input m --auth-file pw
    assert_contains "$ERR" "lockout reset"
    assert_eq "$(citadel tpm --json lockout show | json - 'd["in_lockout"]')" "true"
    citadel tpm --json doctor >doc.json || true
    assert_eq "$(json doc.json '[c["status"] for c in d["checks"] if c["check"] == "dictionary-attack state"][0]')" "fail"
    citadel tpm lockout reset >/dev/null
    assert_eq "$(citadel tpm --json lockout show | json - 'd["failures"]')" "0"
    citadel tpm key sign a/k --input m --auth-file pw --output s >/dev/null
    assert_file s
    assert_eq "$(citadel tpm --json doctor | json - 'd["consistent"]')" "true"
}

test_password_rules() {
    init_vtpm
    : >empty
    expect_fail 2 TPM0031 citadel tpm key create a/k --auth-file empty
    head -c 40 /dev/zero | tr '\0' 'x' >long
    expect_fail 2 TPM0030 citadel tpm key create a/k --auth-file long
    printf 'pw' >pw
    expect_fail 2 TPM0002 citadel tpm key create st --usage storage --auth-file pw
    citadel tpm key create plain >/dev/null
    echo m >m
    expect_fail 2 TPM0002 citadel tpm key sign plain --input m --auth-file pw
    # nothing was created by the failures
    assert_eq "$(citadel tpm --json object list | json - 'd["count"]')" "1"
}

test_rotate_keeps_password() {
    init_vtpm
    printf 'pw' >pw
    echo m >m
    citadel tpm key create a/k --auth-file pw >/dev/null
    expect_fail 7 TPM0024 citadel tpm key rotate a/k
    citadel tpm key rotate a/k --auth-file pw >/dev/null
    citadel tpm key sign a/k --input m --auth-file pw --output s >/dev/null
    assert_eq "$(citadel tpm --json key verify a/k --input m --signature s | json - 'd["version"]')" "2"
}
