# SPDX-License-Identifier: Apache-2.0
# recover show boot-change: every PCR-bound object against the PCR values now.

test_recover_boot_change_report() {
    init_vtpm
    printf 's3cret' >s
    citadel tpm secret seal db/pw --input s --pcr 7,14 >/dev/null
    citadel tpm secret seal free --input s >/dev/null
    citadel tpm key create k14 --pcr 14 >/dev/null
    citadel tpm identity init release --authority >/dev/null
    citadel tpm identity init anchor --authorized-by release --pcr-bind 14 >/dev/null
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm recover show boot-change >/dev/null || fail "something is locked before any change"
    out=$(citadel tpm --json recover show boot-change)
    assert_eq "$(printf '%s' "$out" | json - '[d["bound"], d["locked"]]')" '[3, 0]'
    assert_eq "$(printf '%s' "$out" | json - 'sorted(o["path"] for o in d["objects"])')" '["anchor", "db/pw", "k14"]'
    citadel tpm pcr extend --index 14 --digest "$(printf 'update' | sha256sum | cut -d' ' -f1)" >/dev/null
    rc=0
    citadel tpm recover show boot-change >report.txt || rc=$?
    assert_eq "$rc" 7 "exit status with locked objects"
    assert_contains "$(cat report.txt)" "3 locked by the PCR values now"
    out=$(citadel tpm --json recover show boot-change 2>/dev/null || true)
    assert_eq "$(printf '%s' "$out" | json - 'd["locked"]')" 3
    assert_eq "$(printf '%s' "$out" | json - '[c["pcr"] for o in d["objects"] if o["path"] == "db/pw" for c in o["changed"]]')" '[14]'
    assert_contains "$(printf '%s' "$out" | json - '[o["next_step"] for o in d["objects"] if o["path"] == "anchor"][0]')" \
        "policy approve --authority release"
    # the report agrees with the TPM: the secret really does not unseal, the key does not sign
    expect_fail 7 TPM0047 citadel tpm secret unseal db/pw
    assert_contains "$ERR" "recover show boot-change"
    printf 'x' >f
    expect_fail 7 TPM0047 citadel tpm key sign k14 --input f
    # approving the new state unlocks the authorized identity, and the report says so
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    out=$(citadel tpm --json recover show boot-change 2>/dev/null || true)
    assert_eq "$(printf '%s' "$out" | json - '[o["state"] for o in d["objects"] if o["path"] == "anchor"]')" '["opens"]'
    citadel tpm key sign anchor --input f >/dev/null
    expect_fail 2 TPM0002 citadel tpm recover show nothing
}
