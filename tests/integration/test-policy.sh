# SPDX-License-Identifier: Apache-2.0
# YAML policies: strict parsing with line/column, compiled digests equal to the TPM's own
# session digest, and the TPM refusing when a policy is not met.

write_policy() { cat >"$1"; }

test_policy_compile_test_explain() {
    init_vtpm
    write_policy p.yaml <<'Y'
name: boot-integrity
requires:
  pcr:
    - index: 7
    - index: 11
      bank: sha256
  auth_value: true
Y
    d=$(citadel tpm --json policy compile p.yaml | json - 'd["digest"]')
    assert_eq "${#d}" 64
    citadel tpm --json policy test boot-integrity >t.json
    assert_eq "$(json t.json 'd["satisfied"]')" true
    # the digest computed in software is the one the TPM's policy session arrives at
    assert_eq "$(json t.json 'd["session_digest"]')" "$d"
    assert_contains "$(citadel tpm policy explain boot-integrity)" "PCR 11 (sha256)"
    assert_eq "$(citadel tpm --json policy list | json - '[p["name"] for p in d["policies"]]')" '["boot-integrity"]'
    echo x >x
    citadel tpm pcr extend --index 11 --data x >/dev/null
    rc=0
    citadel tpm --json policy test boot-integrity >t2.json || rc=$?
    assert_eq "$rc" 7
    assert_eq "$(json t2.json 'd["satisfied"]')" false
    assert_contains "$(json t2.json 'd["checks"][0]["detail"]')" "PCR 11 (sha256): expected"
    expect_fail 3 TPM0005 citadel tpm policy compile p.yaml
    citadel tpm policy compile p.yaml --replace >/dev/null
    assert_eq "$(citadel tpm --json policy test boot-integrity | json - 'd["satisfied"]')" true
    citadel tpm policy delete boot-integrity >/dev/null
    expect_fail 3 TPM0004 citadel tpm policy show boot-integrity
}

test_policy_any_of() {
    init_vtpm
    echo a >a
    citadel tpm pcr extend --index 12 --data a >/dev/null
    v12=$(citadel tpm --json pcr show --index 12 | json - 'd["pcrs"][0]["value"]')
    write_policy or.yaml <<Y
name: either
requires:
  any_of:
    - pcr:
        - index: 12
          value: "0000000000000000000000000000000000000000000000000000000000000000"
    - pcr:
        - index: 12
          value: "$v12"
Y
    citadel tpm policy compile or.yaml >/dev/null
    assert_eq "$(citadel tpm --json policy test either | json - 'd["satisfied"]')" true
    assert_contains "$(citadel tpm --json policy test either | json - 'd["checks"]')" "alternative 2 of 2"
    citadel tpm pcr extend --index 12 --data a >/dev/null
    rc=0
    citadel tpm --json policy test either >t.json || rc=$?
    assert_eq "$rc" 7
}

test_policy_errors_have_line_and_column() {
    init_vtpm
    printf 'name: p\nrequires:\n  pcr:\n    - index: 7\n  colour: blue\n' >unknown.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile unknown.yaml
    assert_contains "$ERR" "unknown key 'colour'"
    assert_contains "$ERR" "line 5"
    assert_contains "$ERR" "column 3"
    printf 'name: p\nrequires:\n  pcr:\n    - index: 24\n' >range.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile range.yaml
    assert_contains "$ERR" "line 4"
    printf 'name: p\nrequires:\n  auth_value: maybe\n' >type.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile type.yaml
    printf 'name: p\nrequires:\n  pcr:\n    - index: 7\n      bank: md5\n' >bank.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile bank.yaml
    printf 'name: p\nrequires:\n  pcr: [ {index: 7\n' >broken.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile broken.yaml
    printf 'name: p\nrequires:\n  authorized_by: release\n' >auth.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile auth.yaml
    { printf 'name: p\nrequires:\n  pcr:\n'; for i in $(seq 7000); do printf '    - index: 7\n'; done; } >big.yaml
    expect_fail 2 TPM0030 citadel tpm policy compile big.yaml
    assert_eq "$(citadel tpm --json policy list | json - 'd["count"]')" 0
}

test_secret_sealed_to_a_policy() {
    init_vtpm
    citadel tpm policy create guard --pcr 7 --password >/dev/null
    printf 'pw' >pw
    printf 'bad' >bad
    printf 'the-secret' >s
    expect_fail 2 TPM0002 citadel tpm secret seal app/s --input s --policy guard
    citadel tpm secret seal app/s --input s --policy guard --auth-file pw >/dev/null
    assert_eq "$(citadel tpm secret unseal app/s --auth-file pw)" "the-secret"
    expect_fail 7 TPM0024 citadel tpm secret unseal app/s --auth-file bad --output out
    assert_no_file out
    citadel tpm lockout reset >/dev/null
    echo x >x
    citadel tpm pcr extend --index 7 --data x >/dev/null
    expect_fail 7 TPM0047 citadel tpm secret unseal app/s --auth-file pw --output out
    assert_no_file out
    # the TPM enforces the policy: drop the password assertion from the stored copy and the
    # TPM still refuses (the object's authPolicy includes PolicyAuthValue)
    citadel tpm pcr reset --index 16 >/dev/null
    citadel tpm policy create g2 --pcr 16 --password >/dev/null
    citadel tpm secret seal app/t --input s --policy g2 --auth-file pw >/dev/null
    python3 - "$TPM_STORE_PATH" <<'PY'
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
(m,) = c.execute("SELECT metadata FROM objects WHERE path = 'app/t'").fetchone()
m = json.loads(m); del m["policy_json"]["requires"]["auth_value"]; m["auth"] = False
c.execute("UPDATE objects SET metadata = ? WHERE path = 'app/t'", (json.dumps(m),)); c.commit()
PY
    rc=0
    citadel tpm secret unseal app/t --output out2 2>err || rc=$?
    [ "$rc" != 0 ] || fail "the TPM unsealed without the password the policy binds"
    assert_no_file out2
}
