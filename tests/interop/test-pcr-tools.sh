# SPDX-License-Identifier: Apache-2.0
# citadel's PCR view agrees with tpm2-tools on the same swtpm, in both directions.

test_pcr_values_agree_with_tpm2_tools() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    echo "tools" >d1
    echo "citadel" >d2
    tpm2_pcrextend -T "$SWTPM_TCTI" "16:sha256=$(sha256sum d1 | cut -d' ' -f1)"
    citadel tpm pcr extend --index 16 --data d2 >/dev/null
    ours=$(citadel tpm --json pcr show --index 16 | json - 'd["pcrs"][0]["value"]')
    theirs=$(tpm2_pcrread -T "$SWTPM_TCTI" sha256:16 | awk '$1 == "16:" {print tolower($2)}' | sed 's/^0x//')
    assert_eq "$ours" "$theirs"
    citadel tpm pcr reset --index 16 >/dev/null
    theirs=$(tpm2_pcrread -T "$SWTPM_TCTI" sha256:16 | awk '$1 == "16:" {print tolower($2)}' | sed 's/^0x//')
    assert_eq "$theirs" "0000000000000000000000000000000000000000000000000000000000000000"
}
