# SPDX-License-Identifier: Apache-2.0
# What citadel writes to NV, tpm2-tools reads back from the same swtpm, and the other way.

test_nv_agrees_with_tpm2_tools() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    printf 'citadel-nv' >d
    h=$(citadel tpm --json nv define app/x --size 10 | json - 'd["handle"]')
    citadel tpm nv write app/x --input d >/dev/null
    tpm2_nvread -T "$SWTPM_TCTI" "$h" -P "" -s 10 -o theirs.bin
    cmp d theirs.bin || fail "tpm2_nvread read something else"
    printf 'tools-nv!!' >t
    tpm2_nvwrite -T "$SWTPM_TCTI" "$h" -P "" -i t
    assert_eq "$(citadel tpm --json nv read app/x | json - 'd["data_hex"]')" "$(od -An -tx1 t | tr -d ' \n')"
    citadel tpm nv delete app/x >/dev/null
    ! tpm2_nvreadpublic -T "$SWTPM_TCTI" "$h" >/dev/null 2>&1 || fail "the index is still defined"
}

# An NV index removed behind citadel's back (tpm2_nvundefine) shows in doctor.
test_doctor_sees_an_undefined_nv_index() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    printf 's' >s
    citadel tpm secret seal app/s --input s >/dev/null
    h=$(citadel tpm --json nv define app/x --size 4 | json - 'd["handle"]')
    doctor_consistent
    tpm2_nvundefine -T "$SWTPM_TCTI" "$h"
    rc=0
    citadel tpm --json doctor >doc.json || rc=$?
    assert_eq "$rc" 10
    assert_eq "$(json doc.json 'd["consistent"]')" false
    assert_contains "$(json doc.json '[c["detail"] for c in d["checks"] if c["check"] == "objects load"][0]')" "app/x: NV index"
}

# An index larger than one TPM buffer on swtpm: citadel's chunked write reads back the same
# with tpm2_nvread, and tpm2_nvwrite's data reads back the same with citadel.
test_nv_multi_chunk_on_swtpm() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    citadel tpm --json capabilities >caps.json
    max=$(json caps.json 'd["limits"]["nv_index_max_size"]')
    buf=$(json caps.json 'd["limits"]["nv_buffer_max"]')
    size=$((max < 2048 ? max : 2048))
    [ "$size" -gt "$buf" ] || fail "index size $size is not larger than the TPM buffer $buf"
    h=$(citadel tpm --json nv define app/big --size "$size" | json - 'd["handle"]')
    head -c "$size" /dev/urandom >ours
    citadel tpm nv write app/big --input ours >/dev/null
    citadel tpm nv read app/big --output back >/dev/null
    cmp ours back || fail "citadel read back something else"
    tpm2_nvread -T "$SWTPM_TCTI" "$h" -P "" -s "$size" -o theirs.bin
    cmp ours theirs.bin || fail "tpm2_nvread read something else"
    head -c "$size" /dev/urandom >t
    tpm2_nvwrite -T "$SWTPM_TCTI" "$h" -P "" -i t
    citadel tpm nv read app/big --output back >/dev/null
    cmp t back || fail "citadel did not read what tpm2_nvwrite wrote"
    expect_fail 8 TPM0048 citadel tpm nv write app/big --input ours --offset 1
    citadel tpm nv read app/big --output back >/dev/null
    cmp t back || fail "a refused write changed the index"
}
