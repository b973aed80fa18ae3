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
    assert_eq "$(citadel tpm --json key create ak --template attestation-ak | json - '[d["kind"], d["attributes"]["restricted"]]')" '["ak", true]'
    expect_fail 2 TPM0002 citadel tpm template show nosuch
    assert_eq "$(citadel tpm --json template show tls-server | json - 'd["persist"]')" true
}

# two-person: every signature needs a request an operator approved; each approval signs once,
# only the approved key version and input, and a denied or pending request signs nothing.
test_profile_two_person_approvals() {
    init_vtpm
    citadel tpm key create k >/dev/null
    citadel tpm key export-pub k --output k.pem >/dev/null
    assert_eq "$(citadel tpm --json profile show two-person | json - 'd["approval_required"]')" true
    citadel tpm profile set two-person >/dev/null
    # alice asks, bob decides (one OS account here: CITADEL_ACTOR names the operator)
    export CITADEL_ACTOR=alice
    printf 'release 1.0\n' >f
    expect_fail 7 TPM0055 citadel tpm key sign k --input f --output sig
    assert_contains "$ERR" "request 1 is pending"
    assert_contains "$ERR" "citadel tpm approval approve 1"
    [ ! -e sig ] || fail "a signature was written without an approval"
    assert_eq "$(citadel tpm --json approval list --status pending | json - '[a["approval"] for a in d["approvals"]]')" '[1]'
    # not approved yet: still refused, and no new request for the same --approval
    expect_fail 7 TPM0055 citadel tpm key sign k --input f --approval 1
    assert_contains "$ERR" "pending"
    # the requester cannot approve her own request
    expect_fail 7 TPM0055 citadel tpm approval approve 1
    assert_contains "$ERR" "alice asked for request 1 and cannot decide it too"
    assert_eq "$(CITADEL_ACTOR=bob citadel tpm --json approval approve 1 --reason 'release 1.0' | json - 'd["status"]')" approved
    assert_eq "$(citadel tpm --json approval show 1 | json - '[d["requested_by"], d["decided_by"]]')" '["alice", "bob"]'
    CITADEL_ACTOR=bob expect_fail 7 TPM0055 citadel tpm approval approve 1
    assert_contains "$ERR" "already approved"
    # the approved request signs another input? no
    printf 'evil\n' >g
    expect_fail 7 TPM0055 citadel tpm key sign k --input g --approval 1
    assert_contains "$ERR" "another input"
    citadel tpm key sign k --input f --approval 1 --output sig >/dev/null
    openssl dgst -sha256 -verify k.pem -signature sig f >/dev/null || fail "the approved signature does not verify"
    # once only
    expect_fail 7 TPM0055 citadel tpm key sign k --input f --approval 1
    assert_contains "$ERR" "used"
    # a denied request signs nothing
    expect_fail 7 TPM0055 citadel tpm key sign k --input g
    assert_eq "$(CITADEL_ACTOR=bob citadel tpm --json approval deny 2 --reason 'not a release' | json - 'd["status"]')" denied
    expect_fail 7 TPM0055 citadel tpm key sign k --input g --approval 2
    assert_contains "$ERR" "not a release"
    # an approval is for one key version: rotate, and the old approval no longer fits
    expect_fail 7 TPM0055 citadel tpm key sign k --input f
    CITADEL_ACTOR=bob citadel tpm approval approve 3 >/dev/null
    citadel tpm key rotate k >/dev/null
    expect_fail 7 TPM0055 citadel tpm key sign k --input f --approval 3
    assert_contains "$ERR" "another key"
    expect_fail 3 TPM0004 citadel tpm approval show 99
    expect_fail 2 TPM0002 citadel tpm approval list --status maybe
    # decisions are logged with who made them
    log=$(citadel tpm --json log show --action approval)
    assert_contains "$log" "approval.approve"
    assert_contains "$log" "approval.deny"
    # an approval whose signature could not be written stays unused
    expect_fail 7 TPM0055 citadel tpm key sign k --input f
    CITADEL_ACTOR=bob citadel tpm approval approve 4 >/dev/null
    expect_fail 2 TPM0032 citadel tpm key sign k --input f --approval 4 --output "$T/no/such/dir/sig"
    assert_eq "$(citadel tpm --json approval show 4 | json - 'd["status"]')" approved
    # a deleted and re-created key of the same path is another key
    citadel tpm key delete k >/dev/null
    citadel tpm key create k >/dev/null
    expect_fail 7 TPM0055 citadel tpm key sign k --input f --approval 4
    assert_contains "$ERR" "another key"
    # --approval outside such a profile is a usage error
    assert_contains "$(citadel tpm --json profile set default | json - 'd["warning"]')" "no longer need approvals"
    expect_fail 2 TPM0002 citadel tpm key sign k --input f --approval 4
    citadel tpm key sign k --input f >/dev/null
}
