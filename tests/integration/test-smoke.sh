# SPDX-License-Identifier: Apache-2.0
# The demo flow: init, create, sign, verify with openssl, status.

test_init_create_sign_verify_openssl() {
    init_vtpm
    citadel tpm key create signing/release >/dev/null
    echo "release 1.0" >msg
    citadel tpm key sign signing/release --input msg --output msg.sig >/dev/null
    citadel tpm key export-pub signing/release --output pub.pem >/dev/null
    out=$(openssl dgst -sha256 -verify pub.pem -signature msg.sig msg)
    assert_eq "$out" "Verified OK"
    echo "tampered" >msg
    ! openssl dgst -sha256 -verify pub.pem -signature msg.sig msg >/dev/null 2>&1 || fail "tampered message verified"
}

test_state_persists_across_processes() {
    init_vtpm
    citadel tpm key create a >/dev/null
    echo x >m
    for i in 1 2 3; do citadel tpm key sign a --input m --output "s$i" >/dev/null; done
    citadel tpm key export-pub a --output p.pem >/dev/null
    for i in 1 2 3; do openssl dgst -sha256 -verify p.pem -signature "s$i" m >/dev/null; done
    assert_mode "$TPM_STORE_PATH" 600
    assert_mode "$TPM_STORE_PATH.tpmstate" 600
}
