# SPDX-License-Identifier: Apache-2.0
# PCRs and baselines on the embedded vTPM: values computed independently with python's hashlib.

# extend_expect OLD_HEX DATA_FILE: sha256(old || sha256(data))
extend_expect() {
    python3 -c 'import hashlib, sys
old = bytes.fromhex(sys.argv[1])
d = hashlib.sha256(open(sys.argv[2], "rb").read()).digest()
print(hashlib.sha256(old + d).hexdigest())' "$1" "$2"
}

pcr_value() { citadel tpm --json pcr show --index "$1" --bank "${2:-sha256}" | json - 'd["pcrs"][0]["value"]'; }

test_pcr_show_all_banks_and_lists() {
    init_vtpm
    assert_eq "$(citadel tpm --json pcr show | json - 'len(d["pcrs"])')" 24
    assert_eq "$(citadel tpm --json pcr show --index 0-7,16 | json - '[p["index"] for p in d["pcrs"]]')" "[0, 1, 2, 3, 4, 5, 6, 7, 16]"
    assert_eq "$(citadel tpm --json pcr show --bank sha1 --index 0 | json - 'len(d["pcrs"][0]["value"])')" 40
    assert_eq "$(citadel tpm --json pcr show --bank sha384 --index 0 | json - 'len(d["pcrs"][0]["value"])')" 96
    expect_fail 2 TPM0044 citadel tpm pcr show --index 24
    expect_fail 2 TPM0044 citadel tpm pcr show --index 3,x
    expect_fail 5 TPM0045 citadel tpm pcr show --bank md5
    citadel tpm --format yaml pcr show --index 7 | yaml_ok
}

test_pcr_extend_matches_independent_computation() {
    init_vtpm
    echo "measured thing" >data
    old=$(pcr_value 11)
    new=$(citadel tpm --json pcr extend --index 11 --data data | json - 'd["value"]')
    assert_eq "$new" "$(extend_expect "$old" data)"
    # the value survives into the next process (PCRs 0-15 are saved by the vTPM)
    assert_eq "$(pcr_value 11)" "$new"
    # --digest extends with the given value
    dg=$(printf 'x' | sha256sum | cut -d' ' -f1)
    new2=$(citadel tpm --json pcr extend --index 11 --digest "$dg" | json - 'd["value"]')
    assert_eq "$new2" "$(python3 -c 'import hashlib,sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1]) + bytes.fromhex(sys.argv[2])).hexdigest())' "$new" "$dg")"
    # other banks are independent
    assert_eq "$(pcr_value 11 sha1)" "$(citadel tpm --json pcr show --index 11 --bank sha1 | json - 'd["pcrs"][0]["value"]')"
    expect_fail 2 TPM0043 citadel tpm pcr extend --index 11 --digest abcd
    expect_fail 2 TPM0002 citadel tpm pcr extend --index 11
    expect_fail 2 TPM0002 citadel tpm pcr extend --index 11 --data data --digest "$dg"
    expect_fail 2 TPM0044 citadel tpm pcr extend --index 24 --data data
    expect_fail 7 TPM0046 citadel tpm pcr extend --index 17 --data data
    assert_eq "$(pcr_value 11)" "$new2"
}

test_pcr_reset_only_16_to_23() {
    init_vtpm
    echo d >data
    citadel tpm pcr extend --index 16 --data data >/dev/null
    citadel tpm pcr reset --index 16 >/dev/null
    expect_fail 2 TPM0044 citadel tpm pcr reset --index 7
    assert_contains "$ERR" "only PCRs 16-23 are resettable"
    expect_fail 2 TPM0044 citadel tpm pcr reset --index 24
    citadel tpm pcr extend --index 7 --data data >/dev/null
    v7=$(pcr_value 7)
    assert_ne "$v7" "0000000000000000000000000000000000000000000000000000000000000000"
    # a refused reset changed nothing
    assert_eq "$(pcr_value 7)" "$v7"
}

test_baseline_save_diff_list_delete() {
    init_vtpm
    echo boot >data
    citadel tpm pcr baseline save boot --index 0-7 >/dev/null
    citadel tpm --json pcr baseline diff boot >d0.json
    assert_eq "$(json d0.json 'd["matches"]')" true
    old=$(pcr_value 7)
    citadel tpm pcr extend --index 7 --data data >/dev/null
    rc=0
    citadel tpm --json pcr baseline diff boot >d1.json || rc=$?
    assert_eq "$rc" 1 "diff exits 1 when PCRs changed"
    assert_eq "$(json d1.json '[c["index"] for c in d["changed"]]')" "[7]"
    assert_eq "$(json d1.json 'd["changed"][0]["baseline"]')" "$old"
    assert_eq "$(json d1.json 'd["changed"][0]["now"]')" "$(pcr_value 7)"
    citadel tpm pcr baseline diff boot --exit-zero >/dev/null
    assert_eq "$(citadel tpm --json pcr baseline list | json - '[b["name"] for b in d["baselines"]]')" '["boot"]'
    expect_fail 3 TPM0005 citadel tpm pcr baseline save boot
    expect_fail 3 TPM0004 citadel tpm pcr baseline diff nosuch
    citadel tpm key create k >/dev/null
    expect_fail 3 TPM0007 citadel tpm pcr baseline diff k
    citadel tpm pcr baseline delete boot >/dev/null
    assert_eq "$(citadel tpm --json pcr baseline list | json - 'd["count"]')" 0
    expect_fail 2 TPM0002 citadel tpm pcr baseline frobnicate x
    # the operation log has the story
    assert_contains "$(citadel tpm --json log show --action pcr)" "pcr.extend"
    assert_contains "$(citadel tpm --json log show --action baseline)" "baseline.delete"
    doctor_consistent
}
