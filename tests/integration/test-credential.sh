# SPDX-License-Identifier: Apache-2.0
# Credential activation (the enrollment handshake) on vtpm: make in software, activate in the
# TPM, for RSA and ECC EKs; refusals with their own codes and nothing written.

credential_round() {
    local ak=$1 ek=$2
    citadel tpm attest ak-create "$ak" --algorithm "$3" >/dev/null
    citadel tpm --json ek show --algorithm "$ek" | json - 'd["public_key"]' >"$ek.pem"
    name=$(citadel tpm --json attest ak-show "$ak" | json - 'd["ak_name"]')
    head -c 32 /dev/urandom >"s.$ak"
    citadel tpm attest credential make --ek-pub "$ek.pem" --ak-name "$name" --secret "s.$ak" --output "c.$ak" >/dev/null
    assert_eq "$(json "c.$ak" 'd["ak_name"]')" "$name"
    assert_eq "$(json "c.$ak" 'd["ek_algorithm"]')" "$ek"
    citadel tpm attest credential activate --ak "$ak" --input "c.$ak" --output "got.$ak" >/dev/null
    cmp "s.$ak" "got.$ak" || fail "the activated secret differs ($ak)"
    assert_eq "$(stat -c %a "got.$ak")" 600
    # without --output the secret is shown as hex
    assert_eq "$(citadel tpm --json attest credential activate --ak "$ak" --input "c.$ak" | json - 'd["secret_hex"]')" \
        "$(od -An -tx1 "s.$ak" | tr -d ' \n')"
}

test_credential_round_trip_ecc_and_rsa() {
    init_vtpm
    credential_round ak-e ecc-p256 ecc-p256
    credential_round ak-r rsa-2048 rsa-2048
}

test_credential_refusals() {
    init_vtpm
    citadel tpm attest ak-create ak >/dev/null
    citadel tpm attest ak-create ak2 >/dev/null
    citadel tpm --json ek show --algorithm ecc-p256 | json - 'd["public_key"]' >ek.pem
    citadel tpm --json ek show --algorithm rsa-2048 | json - 'd["public_key"]' >ekr.pem
    name=$(citadel tpm --json attest ak-show ak | json - 'd["ak_name"]')
    printf 'one-time secret' >s
    citadel tpm attest credential make --ek-pub ek.pem --ak-name "$name" --secret s --output c >/dev/null
    # another AK (same TPM) cannot activate it: the TPM checks the name
    expect_fail 9 TPM0097 citadel tpm attest credential activate --ak ak2 --input c --output out
    [ ! -e out ] || fail "a refused activation wrote output"
    # encrypted to another EK than the AK's (its RSA EK, the AK lives under the ECC EK)
    citadel tpm attest credential make --ek-pub ekr.pem --ak-name "$name" --secret s --output cr >/dev/null
    expect_fail 9 TPM0097 citadel tpm attest credential activate --ak ak --input cr
    assert_contains "$ERR" "lives under this TPM's ecc-p256 EK"
    # a credential for another TPM: a second workspace with its own vTPM
    (export TPM_STORE_PATH=$T/other/store.db; mkdir -p "$T/other"; citadel tpm --backend vtpm init >/dev/null
     citadel tpm --json ek show --algorithm ecc-p256 | json - 'd["public_key"]' >"$T/other-ek.pem")
    citadel tpm attest credential make --ek-pub other-ek.pem --ak-name "$name" --secret s --output co >/dev/null
    expect_fail 9 TPM0097 citadel tpm attest credential activate --ak ak --input co
    # damaged and foreign files
    head -c 40 c >trunc
    expect_fail 9 TPM0096 citadel tpm attest credential activate --ak ak --input trunc
    printf 'not a credential' >junk
    expect_fail 9 TPM0096 citadel tpm attest credential activate --ak ak --input junk
    # a tampered blob fails the TPM's integrity check
    python3 - <<'PY'
import base64, json
d = json.load(open("c"))
b = bytearray(base64.b64decode(d["credential_blob"])); b[-1] ^= 1
d["credential_blob"] = base64.b64encode(bytes(b)).decode()
json.dump(d, open("tampered", "w"))
PY
    expect_fail 9 TPM0097 citadel tpm attest credential activate --ak ak --input tampered
    # make's bad input
    head -c 65 /dev/zero >big
    expect_fail 2 TPM0030 citadel tpm attest credential make --ek-pub ek.pem --ak-name "$name" --secret big
    expect_fail 2 TPM0002 citadel tpm attest credential make --ek-pub ek.pem --ak-name zz --secret s
    expect_fail 2 TPM0002 citadel tpm attest credential make --ek-pub ek.pem --ak-name "$name" --secret s --encoding pem
    expect_fail 2 TPM0002 citadel tpm attest credential frobnicate
    expect_fail 3 TPM0004 citadel tpm attest credential activate --ak nosuch --input c
    doctor_consistent
}
