# SPDX-License-Identifier: Apache-2.0
# Sealed secrets: round trips, the envelope for large secrets, and the TPM refusing to unseal
# once a bound PCR changed.

test_seal_unseal_round_trips() {
    init_vtpm
    printf 'hunter2' >small
    head -c 200000 /dev/urandom >big
    citadel tpm secret seal app/small --input small >/dev/null
    citadel tpm secret seal app/big --input big --pcr 0,7 >/dev/null
    assert_eq "$(citadel tpm secret unseal app/small)" "hunter2"
    citadel tpm secret unseal app/big --output big.out >/dev/null
    cmp big big.out || fail "the envelope round trip changed the secret"
    assert_mode big.out 600
    assert_eq "$(citadel tpm --json secret unseal app/small | json - 'd["secret_hex"]')" "$(printf 'hunter2' | od -An -tx1 | tr -d ' \n')"
    assert_eq "$(citadel tpm --json secret list | json - '[(s["path"], s["sealing"]) for s in d["secrets"]]')" \
        '[["app/big", "aes256gcm-env"], ["app/small", "sealed"]]'
    # the store never holds the secret in clear
    ! grep -q hunter2 "$TPM_STORE_PATH" || fail "secret in clear in the store"
    ! grep -q hunter2 "$TPM_STORE_PATH-wal" 2>/dev/null || fail "secret in clear in the WAL"
    citadel tpm secret delete app/small >/dev/null
    expect_fail 3 TPM0004 citadel tpm secret unseal app/small
}

test_pcr_change_makes_the_tpm_refuse() {
    init_vtpm
    printf 's3cret' >s
    echo update >d
    citadel tpm secret seal boot/s --input s --pcr 7 >/dev/null
    assert_eq "$(citadel tpm secret unseal boot/s)" "s3cret"
    citadel tpm pcr extend --index 7 --data d >/dev/null
    expect_fail 7 TPM0047 citadel tpm secret unseal boot/s --output out
    assert_no_file out
    assert_contains "$ERR" "PCR 7 (sha256) changed"
    assert_contains "$ERR" "baseline diff"
    assert_not_contains "$OUT$ERR" "s3cret"
    # sealed again in the new state, it unseals; the old one still refuses
    citadel tpm secret seal boot/s2 --input s --pcr 7 >/dev/null
    assert_eq "$(citadel tpm secret unseal boot/s2)" "s3cret"
    expect_fail 7 TPM0047 citadel tpm secret unseal boot/s
}

# The refusal comes from the TPM, not from citadel comparing values: point the stored policy
# at a PCR that did not change; the TPM still refuses, because the object's authPolicy binds
# PCR 7's old value.
test_tpm_enforces_not_citadel() {
    init_vtpm
    printf 'x1' >s
    echo d >d
    citadel tpm secret seal t/s --input s --pcr 7 >/dev/null
    citadel tpm pcr extend --index 7 --data d >/dev/null
    python3 - "$TPM_STORE_PATH" <<'PY'
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
(meta,) = c.execute("SELECT metadata FROM objects WHERE path = 't/s'").fetchone()
m = json.loads(meta)
m["policy"]["pcrs"] = {"0": m["policy"]["pcrs"]["7"]}
c.execute("UPDATE objects SET metadata = ? WHERE path = 't/s'", (json.dumps(m),))
c.commit()
PY
    expect_fail 7 TPM0047 citadel tpm secret unseal t/s --output out
    assert_no_file out
    # and without any policy session at all (metadata says no policy) the TPM refuses too
    python3 - "$TPM_STORE_PATH" <<'PY'
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
(meta,) = c.execute("SELECT metadata FROM objects WHERE path = 't/s'").fetchone()
m = json.loads(meta)
del m["policy"]
c.execute("UPDATE objects SET metadata = ? WHERE path = 't/s'", (json.dumps(m),))
c.commit()
PY
    rc=0
    citadel tpm secret unseal t/s --output out2 2>err || rc=$?
    [ "$rc" != 0 ] || fail "the TPM unsealed an object whose policy was skipped"
    assert_no_file out2
}

test_secret_bad_input() {
    init_vtpm
    : >empty
    expect_fail 2 TPM0031 citadel tpm secret seal a --input empty
    head -c $((1024 * 1024 + 1)) /dev/zero >huge
    expect_fail 2 TPM0030 citadel tpm secret seal a --input huge
    expect_fail 2 TPM0029 citadel tpm secret seal a --input missing
    expect_fail 2 TPM0044 citadel tpm secret seal a --input huge --pcr 99
    printf 'v' >v
    citadel tpm secret seal a --input v >/dev/null
    expect_fail 3 TPM0005 citadel tpm secret seal a --input v
    citadel tpm key create k >/dev/null
    expect_fail 3 TPM0007 citadel tpm secret unseal k
    expect_fail 3 TPM0007 citadel tpm secret delete k
    expect_fail 3 TPM0007 citadel tpm key sign a --input v
    assert_eq "$(citadel tpm --json secret list | json - 'd["count"]')" 1
    doctor_consistent
}
