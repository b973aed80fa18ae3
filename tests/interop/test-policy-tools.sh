# SPDX-License-Identifier: Apache-2.0
# citadel's compiled policy digests equal tpm2-tools' trial-session digests for the same policy.

trial() {
    tpm2_flushcontext -T "$SWTPM_TCTI" -t >/dev/null 2>&1 || true
    tpm2_startauthsession -T "$SWTPM_TCTI" -S s.ctx
}

test_pcr_and_authvalue_digest_matches_tpm2_tools() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    tpm2_pcrextend -T "$SWTPM_TCTI" "11:sha256=$(echo m | sha256sum | cut -d' ' -f1)"
    printf 'name: p1\nrequires:\n  pcr:\n    - index: 7\n    - index: 11\n  auth_value: true\n' >p1.yaml
    ours=$(citadel tpm --json policy compile p1.yaml | json - 'd["digest"]')
    trial
    tpm2_policypcr -T "$SWTPM_TCTI" -S s.ctx -l sha256:7,11 -L d1 >/dev/null
    tpm2_policyauthvalue -T "$SWTPM_TCTI" -S s.ctx -L d2 >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" s.ctx
    assert_eq "$ours" "$(od -An -tx1 d2 | tr -d ' \n')" "pcr + auth_value"
    # tpm2_createpolicy --policy-pcr gives the PCR part alone
    printf 'name: p2\nrequires:\n  pcr:\n    - index: 7\n    - index: 11\n' >p2.yaml
    ours2=$(citadel tpm --json policy compile p2.yaml | json - 'd["digest"]')
    tpm2_createpolicy -T "$SWTPM_TCTI" --policy-pcr -l sha256:7,11 -L d3 >/dev/null
    assert_eq "$ours2" "$(od -An -tx1 d3 | tr -d ' \n')" "pcr"
}

test_locality_and_or_digests_match_tpm2_tools() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    printf 'name: l\nrequires:\n  locality: [0]\n' >l.yaml
    ours=$(citadel tpm --json policy compile l.yaml | json - 'd["digest"]')
    trial
    tpm2_policylocality -T "$SWTPM_TCTI" -S s.ctx -L dl zero >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" s.ctx
    assert_eq "$ours" "$(od -An -tx1 dl | tr -d ' \n')" "locality"
    # any_of of (pcr 7) and (auth_value): PolicyOR over both branch digests
    trial
    tpm2_policypcr -T "$SWTPM_TCTI" -S s.ctx -l sha256:7 -L b1 >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" s.ctx
    trial
    tpm2_policyauthvalue -T "$SWTPM_TCTI" -S s.ctx -L b2 >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" s.ctx
    trial
    tpm2_policyor -T "$SWTPM_TCTI" -S s.ctx -L dor -l "sha256:b1,b2" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" s.ctx
    printf 'name: o\nrequires:\n  any_of:\n    - pcr:\n        - index: 7\n    - auth_value: true\n' >o.yaml
    ours_or=$(citadel tpm --json policy compile o.yaml | json - 'd["digest"]')
    assert_eq "$ours_or" "$(od -An -tx1 dor | tr -d ' \n')" "any_of"
}
