# SPDX-License-Identifier: Apache-2.0
# Regressions found in review: each test is a command sequence that once went wrong.

# A key deleted and created again at the same path, in one process: the new key signs.
test_recreated_key_is_not_the_cached_old_one() {
    echo f >f
    printf 'key create a\nkey sign a --input f --output s1\nkey delete a\nkey create a\nkey sign a --input f --output s2\nkey export-pub a --output a.pem\n' |
        citadel tpm --backend mock batch >/dev/null
    openssl dgst -sha256 -verify a.pem -signature s2 f >/dev/null || fail "the signature was made by the deleted key"
    ! openssl dgst -sha256 -verify a.pem -signature s1 f >/dev/null 2>&1 || fail "old and new key are the same"
    # on vtpm the ids of deleted objects are not reused: the log of the new object is its own
    init_vtpm
    citadel tpm key create b >/dev/null
    citadel tpm key delete b >/dev/null
    citadel tpm key create b >/dev/null
    assert_eq "$(citadel tpm --json log show --object b | json - '[e["action"] for e in d["events"]]')" \
        '["key.create", "object.delete", "key.create"]'
}

# Persistent keys rotated or re-created at a handle used before, in one process (no vtpm sync
# in between): ESYS must not keep the old object's metadata.
test_persistent_rotate_and_recreate_in_one_process() {
    echo f >f
    printf 'key create p --persist\nkey rotate p\nkey sign p --input f --output s1\nkey export-pub p --output p1.pem\nkey delete p\nkey create p --persist\nkey sign p --input f --output s2\nkey export-pub p --output p2.pem\n' |
        citadel tpm --backend mock batch >/dev/null
    openssl dgst -sha256 -verify p1.pem -signature s1 f >/dev/null
    openssl dgst -sha256 -verify p2.pem -signature s2 f >/dev/null
}

# Options after the verb hold for their batch line only.
test_batch_line_options_do_not_leak() {
    out=$(printf 'key create a --plan\nkey create b\nkey list --json\nkey list\n' | citadel tpm --backend mock batch)
    assert_contains "$out" "plan"
    assert_contains "$out" '"path": "b"'
    assert_contains "$out" "PATH"    # the last line is text again
    assert_not_contains "$out" '"path": "a"'
}

# Rotating a password key needs the key's password, proven to the TPM.
test_rotate_with_a_wrong_password_changes_nothing() {
    init_vtpm
    printf 'pw' >pw
    printf 'bad' >bad
    echo m >m
    citadel tpm key create k --auth-file pw >/dev/null
    expect_fail 7 TPM0024 citadel tpm key rotate k --auth-file bad
    assert_eq "$(citadel tpm --json key show k | json - 'd["version"]')" 1
    citadel tpm lockout reset >/dev/null
    citadel tpm key sign k --input m --auth-file pw --output s >/dev/null
    citadel tpm key rotate k --auth-file pw >/dev/null
    assert_eq "$(citadel tpm --json key show k | json - 'd["version"]')" 2
}

# Rotating a persistent key moves it to a new handle and evicts the old one.
test_rotate_persistent_key_keeps_store_and_tpm_in_step() {
    init_vtpm
    echo m >m
    h1=$(citadel tpm --json key create p --persist | json - 'd["persistent_handle"]')
    h2=$(citadel tpm --json key rotate p | json - 'd["persistent_handle"]' 2>/dev/null || true)
    citadel tpm key sign p --input m --output s >/dev/null
    citadel tpm key verify p --input m --signature s >/dev/null
    assert_eq "$(citadel tpm --json key verify p --input m --signature s | json - 'd["version"]')" 2
    doctor_consistent
    # no orphaned handle left by the old version
    assert_eq "$(citadel tpm --json doctor | json - '[c["status"] for c in d["checks"] if c["check"] == "orphaned handles"][0]')" pass
    [ -n "$h1" ] || fail "no handle"
}

# A secret sealed to PCRs and a password: the TPM checks the password too.
test_pcr_and_password_secret_checks_the_password_in_the_tpm() {
    init_vtpm
    printf 'good' >good
    printf 'wrong' >wrong
    printf 'the secret' >s
    citadel tpm secret seal a --input s --pcr 7 --auth-file good >/dev/null
    assert_eq "$(citadel tpm secret unseal a --auth-file good)" "the secret"
    expect_fail 7 TPM0024 citadel tpm secret unseal a --auth-file wrong --output out
    assert_no_file out
}

# Locality: a branch that needs locality 3 is never chosen; test says unsatisfied.
test_policy_locality_handling() {
    init_vtpm
    printf 'name: loc3\nrequires:\n  locality: [3]\n' >l3.yaml
    citadel tpm policy compile l3.yaml >/dev/null
    rc=0
    citadel tpm --json policy test loc3 >t.json || rc=$?
    assert_eq "$rc" 7
    assert_eq "$(json t.json 'd["satisfied"]')" false
    printf 'name: either\nrequires:\n  any_of:\n    - locality: [3]\n    - pcr:\n        - index: 7\n' >or.yaml
    citadel tpm policy compile or.yaml >/dev/null
    assert_eq "$(citadel tpm --json policy test either | json - 'd["satisfied"]')" true
    printf 's' >s
    citadel tpm secret seal x --input s --policy either >/dev/null
    assert_eq "$(citadel tpm secret unseal x)" "s"
    printf 'name: e\nrequires:\n  locality: []\n' >empty.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile empty.yaml
    expect_fail 5 TPM0045 citadel tpm policy create p --pcr 7 --bank md5
}

# nv read --output writes the data only to the file.
test_nv_read_output_does_not_print_data() {
    init_vtpm
    printf 'pw' >pw
    printf 'secretnv' >d
    citadel tpm nv define n --size 8 --auth-file pw >/dev/null
    citadel tpm nv write n --input d --auth-file pw >/dev/null
    out=$(citadel tpm --json nv read n --auth-file pw --output f)
    assert_not_contains "$out" "$(od -An -tx1 d | tr -d ' \n')"
    cmp d f
    # the cap is now the TPM's largest index, not one buffer (1024)
    max=$(citadel tpm --json capabilities | json - 'd["limits"]["nv_index_max_size"]')
    expect_fail 2 TPM0002 citadel tpm nv define big --size $((max + 1))
}
