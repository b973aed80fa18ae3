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
