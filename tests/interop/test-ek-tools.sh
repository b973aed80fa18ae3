# SPDX-License-Identifier: Apache-2.0
# The endorsement key against tools we did not write: on swtpm, `citadel tpm ek show` gives the
# same public key and TPM name as `tpm2_createek` + `tpm2_readpublic` for every template; the EK
# certificates `swtpm_setup --create-ek-cert` writes (swtpm's local CA) verify with
# `ek verify --ca`, match the files swtpm_setup wrote, and verify with openssl; a certificate
# citadel stores in NV reads back with tpm2_nvread.
# shellcheck source=tests/interop/interop-lib.bash
source "$ROOT/tests/interop/interop-lib.bash"
INTEROP_FILE=$ROOT/tests/interop/$(basename "${BASH_SOURCE[0]}")

# same_key A.pem B.pem: the two PEM public keys are the same key.
same_key() {
    cmp -s <(openssl pkey -pubin -in "$1" -outform der) <(openssl pkey -pubin -in "$2" -outform der) ||
        fail "$1 and $2 are different keys"
}

# createek_matches ALG TOOLS_ALG: citadel's EK equals tpm2_createek's (name and public key).
createek_matches() {
    local alg=$1 talg=$2
    citadel tpm --json ek show --algorithm "$alg" >"$alg.json"
    json "$alg.json" 'd["public_key"]' >"$alg.ours.pem"
    tpm2_createek -T "$SWTPM_TCTI" -c "$alg.ctx" -G "$talg" -u "$alg.pub" >/dev/null
    tpm2_readpublic -T "$SWTPM_TCTI" -c "$alg.ctx" -f pem -o "$alg.theirs.pem" -n "$alg.name" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    assert_eq "$(json "$alg.json" 'd["name"]')" "$(od -An -tx1 "$alg.name" | tr -d ' \n')" "$alg EK name"
    same_key "$alg.ours.pem" "$alg.theirs.pem"
}

itest_ek_equals_tpm2_createek() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    createek_matches rsa-2048 rsa
    createek_matches ecc-p256 ecc
    createek_matches ecc-p384 ecc384
    createek_matches rsa-3072 rsa3072
    no_transient_handles "$SWTPM_TCTI"
}

# swtpm_factory DIR: runs swtpm_setup with its own local CA (DIR/ca) on the TPM state DIR/state,
# writing the EK certificates to DIR/certs too.
swtpm_factory() {
    local d=$1
    mkdir -p "$d/ca" "$d/state" "$d/certs"
    cat >"$d/localca.conf" <<EOF
statedir = $d/ca
signingkey = $d/ca/signkey.pem
issuercert = $d/ca/issuercert.pem
certserial = $d/ca/certserial
EOF
    printf -- '--platform-manufacturer Citadel\n--platform-version 1.0\n--platform-model test\n' >"$d/localca.options"
    cat >"$d/setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $d/localca.conf
create_certs_tool_options = $d/localca.options
active_pcr_banks = sha256
EOF
    swtpm_setup --tpm2 --tpmstate "$d/state" --create-ek-cert --create-platform-cert --config "$d/setup.conf" \
        --write-ek-cert-files "$d/certs" --overwrite >"$d/setup.log" 2>&1 || fail "swtpm_setup failed: $(tail -5 "$d/setup.log")"
}

itest_ek_verify_swtpm_setup_certificates() {
    swtpm_factory "$T/factory"
    SWTPM_PORT=$(free_port)
    swtpm_up "$T/factory/state" "$SWTPM_PORT"
    SWTPM_BG=$UP_PID # stopped by stop_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI="swtpm:host=127.0.0.1,port=$SWTPM_PORT"
    SWTPM_TCTI=$TPM_TCTI
    citadel tpm init >/dev/null
    # swtpm_setup provisions RSA 2048 (0x01c00002) and ECC P-384 (0x01c00016)
    citadel tpm --json ek verify --ca "$T/factory/ca" >v.json || fail "ek verify --ca failed: $(cat v.json)"
    assert_eq "$(json v.json 'd["algorithm"]')" rsa-2048
    assert_eq "$(json v.json '[c["verdict"] for c in d["checks"]]')" '["pass", "pass", "pass", "pass", "pass"]'
    citadel tpm --json ek verify --algorithm ecc-p384 --ca "$T/factory/ca" >v384.json
    assert_eq "$(json v384.json 'd["valid"]')" true
    # what citadel reads from NV is what swtpm_setup wrote
    citadel tpm ek cert --output rsa.der --encoding der >/dev/null
    cmp rsa.der "$T/factory/certs/ek-rsa2048.crt" || fail "ek cert differs from swtpm_setup's RSA certificate"
    citadel tpm ek cert --algorithm ecc-p384 --output p384.der --encoding der >/dev/null
    cmp p384.der "$T/factory/certs/ek-secp384r1.crt" || fail "ek cert differs from swtpm_setup's P-384 certificate"
    # openssl agrees about the chain
    citadel tpm ek cert --output rsa.pem >/dev/null
    out=$(openssl verify -CAfile "$T/factory/ca/swtpm-localca-rootca-cert.pem" \
        -untrusted "$T/factory/ca/issuercert.pem" rsa.pem)
    assert_eq "$out" "rsa.pem: OK"
    # with the built-in manufacturer CAs only, swtpm's local CA is not trusted: TPM0082, chain
    expect_fail 9 TPM0082 citadel tpm ek verify
    assert_contains "$ERR" "chain"
    assert_contains "$ERR" "swtpm-localca"
    # the platform's index is not the owner's to replace
    expect_fail 8 TPM0088 citadel tpm ek cert-import --input "$T/factory/certs/ek-rsa2048.crt"
    citadel tpm ek verify --ca "$T/factory/ca" >/dev/null
}

# On a plain swtpm (no EK certificate), ek cert-import defines the index; tpm2_nvread reads the
# same certificate back, and ek verify checks it.
itest_ek_cert_import_reads_back_with_tpm2_tools() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    expect_fail 9 TPM0080 citadel tpm ek cert
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -subj /CN=lab-ca \
        -days 30 2>/dev/null
    citadel tpm --json ek show --algorithm ecc-p256 | json - 'd["public_key"]' >ek.pub
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout d.key -out d.csr -subj /CN=d 2>/dev/null
    printf '[e]\nsubjectAltName=critical,dirName:t\nkeyUsage=critical,keyAgreement\n[t]\nx.2.23.133.2.1=id:49424D00\nx.2.23.133.2.2=SW TPM\nx.2.23.133.2.3=id:20191023\n' >e.cnf
    openssl x509 -req -in d.csr -CA ca.pem -CAkey ca.key -force_pubkey ek.pub -days 30 -extfile e.cnf -extensions e \
        -outform der -out ek.der 2>/dev/null
    citadel tpm ek cert-import --input ek.der >/dev/null
    size=$(stat -c %s ek.der)
    tpm2_nvread -T "$SWTPM_TCTI" 0x01c0000a -s "$size" -o theirs.der
    cmp ek.der theirs.der || fail "tpm2_nvread read another certificate"
    citadel tpm ek verify --algorithm ecc-p256 --ca ca.pem >/dev/null
}

interop_register
