# SPDX-License-Identifier: Apache-2.0
# Profiles (constraints enforced on every command that creates or renames) and templates.

test_profile_constraints_enforced() {
    init_vtpm
    assert_eq "$(citadel tpm --json profile show | json - 'd["name"]')" default
    citadel tpm profile set ci-signer >/dev/null
    assert_eq "$(citadel tpm --json profile list | json - 'd["active"]')" ci-signer
    expect_fail 7 TPM0053 citadel tpm key create app/k
    assert_contains "$ERR" "under ci/"
    expect_fail 7 TPM0053 citadel tpm key create ci/k --algorithm rsa-2048
    assert_contains "$ERR" "allowed: ecc-p256, ecc-p384"
    citadel tpm key create ci/k --algorithm ecc-p384 >/dev/null
    printf 's' >s
    expect_fail 7 TPM0053 citadel tpm secret seal app/s --input s
    expect_fail 7 TPM0053 citadel tpm nv define app/n --size 4
    expect_fail 7 TPM0053 citadel tpm pcr baseline save boot
    expect_fail 7 TPM0053 citadel tpm policy create p --pcr 7
    expect_fail 7 TPM0053 citadel tpm object rename ci/k app/k
    # nothing was created by the refusals
    assert_eq "$(citadel tpm --json object list | json - '[o["path"] for o in d["objects"]]')" '["ci/k"]'
    citadel tpm profile set fips-like >/dev/null
    expect_fail 7 TPM0053 citadel tpm key create rsa --algorithm rsa-2048
    citadel tpm key create rsa3 --algorithm rsa-3072 >/dev/null
    # the default algorithm follows the profile
    citadel tpm profile set high >/dev/null
    assert_eq "$(citadel tpm --json key create h | json - 'd["algorithm"]')" ecc-p384
    expect_fail 2 TPM0002 citadel tpm profile set nosuch
    assert_contains "$(citadel tpm --json log show --action profile)" "profile.set"
}

test_templates() {
    init_vtpm
    assert_eq "$(citadel tpm --json template list | json - '[t["name"] for t in d["templates"]]')" \
        '["ci-signer", "tls-server", "boot-sealed-secret", "attestation-ak"]'
    out=$(citadel tpm --json key create web/tls --template tls-server)
    assert_eq "$(printf '%s' "$out" | json - 'd["algorithm"]')" ecc-p256
    assert_contains "$(printf '%s' "$out" | json - 'd.get("persistent_handle", "")')" 0x81
    printf 'k' >k
    assert_eq "$(citadel tpm --json secret seal boot/k --input k --template boot-sealed-secret | json - 'sorted(d["policy"]["pcrs"], key=int)')" '["0", "7"]'
    expect_fail 2 TPM0002 citadel tpm secret seal x --input k --template ci-signer
    expect_fail 2 TPM0002 citadel tpm key create x --template boot-sealed-secret
    expect_fail 5 TPM0042 citadel tpm key create ak --template attestation-ak
    expect_fail 2 TPM0002 citadel tpm template show nosuch
    assert_eq "$(citadel tpm --json template show tls-server | json - 'd["persist"]')" true
}
