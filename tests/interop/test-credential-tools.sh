# SPDX-License-Identifier: Apache-2.0
# Credential activation against tpm2-tools, both ways: a credential made by
# `tpm2_makecredential --tcti none` activates with `citadel tpm attest credential activate`, and
# one made by `citadel tpm attest credential make` activates with `tpm2_activatecredential` on
# swtpm (EK and AK from tpm2_createek / tpm2_createak); for RSA and ECC EKs. A credential for
# another AK name is refused by the TPM (TPM0097).
# shellcheck source=tests/interop/interop-lib.bash
source "$ROOT/tests/interop/interop-lib.bash"
INTEROP_FILE=$ROOT/tests/interop/$(basename "${BASH_SOURCE[0]}")

# tools_made_activates_with_ours AK_ALG EK_ALG TOOLS_G
tools_made_activates_with_ours() {
    local ak=$1 ek=$2 g=$3
    citadel tpm attest ak-create "ak-$ak" --algorithm "$ak" >/dev/null
    citadel tpm --json ek show --algorithm "$ek" >"ek-$ek.json"
    json "ek-$ek.json" 'd["public_key"]' >"ek-$ek.pem"
    name=$(citadel tpm --json attest ak-show "ak-$ak" | json - 'd["ak_name"]')
    head -c 32 /dev/urandom >"s-$ak"
    tpm2_makecredential -T none -u "ek-$ek.pem" -G "$g" -s "s-$ak" -n "$name" -o "cred-$ak.bin" >/dev/null 2>&1
    citadel tpm attest credential activate --ak "ak-$ak" --input "cred-$ak.bin" --output "got-$ak" >/dev/null
    cmp "s-$ak" "got-$ak"
    assert_eq "$(stat -c %a "got-$ak")" 600
    # the same secret from our own make, in both encodings
    for enc in json tpm2-tools; do
        citadel tpm attest credential make --ek-pub "ek-$ek.pem" --ak-name "$name" --secret "s-$ak" \
            --output "c-$ak.$enc" --encoding "$enc" >/dev/null
        citadel tpm attest credential activate --ak "ak-$ak" --input "c-$ak.$enc" --output "g-$ak.$enc" >/dev/null
        cmp "s-$ak" "g-$ak.$enc"
    done
    # the tpm2-tools layout is what tpm2_makecredential writes: magic, version, then the sizes
    assert_eq "$(head -c 8 "c-$ak.tpm2-tools" | od -An -tx1 | tr -d ' \n')" badcc0de00000001
    assert_eq "$(stat -c %s "c-$ak.tpm2-tools")" "$(stat -c %s "cred-$ak.bin")"
}

itest_credential_made_by_tpm2_tools_activates_with_ours() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    tools_made_activates_with_ours ecc-p256 ecc-p256 ecc
    tools_made_activates_with_ours rsa-2048 rsa-2048 rsa
    no_transient_handles "$SWTPM_TCTI"
}

# ours_activates_with_tpm2_tools G: EK and AK made by tpm2-tools; our credential; their activate.
ours_activates_with_tpm2_tools() {
    local g=$1
    tpm2_createek -T "$SWTPM_TCTI" -c "ek-$g.ctx" -G "$g" -u "ek-$g.pub" >/dev/null
    tpm2_readpublic -T "$SWTPM_TCTI" -c "ek-$g.ctx" -f pem -o "ek-$g.pem" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t # no resource manager: keep the object slots free
    tpm2_createak -T "$SWTPM_TCTI" -C "ek-$g.ctx" -c "ak-$g.ctx" -G "$g" -g sha256 -s "$([ "$g" = rsa ] && echo rsassa || echo ecdsa)" \
        -u "ak-$g.pub" -n "ak-$g.name" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    name=$(od -An -tx1 "ak-$g.name" | tr -d ' \n')
    head -c 24 /dev/urandom >"secret-$g"
    citadel tpm attest credential make --ek-pub "ek-$g.pem" --ak-name "$name" --secret "secret-$g" \
        --output "cred-$g" --encoding tpm2-tools >/dev/null
    tpm2_startauthsession -T "$SWTPM_TCTI" --policy-session -S "s-$g.ctx"
    tpm2_policysecret -T "$SWTPM_TCTI" -S "s-$g.ctx" -c e >/dev/null
    tpm2_activatecredential -T "$SWTPM_TCTI" -c "ak-$g.ctx" -C "ek-$g.ctx" -i "cred-$g" -o "out-$g" -P "session:s-$g.ctx" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" "s-$g.ctx"
    cmp "secret-$g" "out-$g"
    # made for another name: the TPM refuses it
    other=000b$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    citadel tpm attest credential make --ek-pub "ek-$g.pem" --ak-name "$other" --secret "secret-$g" \
        --output "bad-$g" --encoding tpm2-tools >/dev/null
    tpm2_startauthsession -T "$SWTPM_TCTI" --policy-session -S "s2-$g.ctx"
    tpm2_policysecret -T "$SWTPM_TCTI" -S "s2-$g.ctx" -c e >/dev/null
    if tpm2_activatecredential -T "$SWTPM_TCTI" -c "ak-$g.ctx" -C "ek-$g.ctx" -i "bad-$g" -o "x-$g" \
        -P "session:s2-$g.ctx" >/dev/null 2>&1; then
        fail "tpm2_activatecredential accepted a credential made for another AK name"
    fi
    tpm2_flushcontext -T "$SWTPM_TCTI" "s2-$g.ctx" 2>/dev/null || true
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
}

itest_credential_made_by_us_activates_with_tpm2_tools() {
    start_swtpm
    ours_activates_with_tpm2_tools ecc
    ours_activates_with_tpm2_tools rsa
}

interop_register
