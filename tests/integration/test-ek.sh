# SPDX-License-Identifier: Apache-2.0
# The endorsement key on the embedded vTPM: `init` is the factory (a workspace-local
# manufacturer CA, EK certificates in NV), `ek show|cert|verify|ca|cert-import`, and every
# failed check with its own code. Certificates are checked with openssl, and the bad ones are
# made with openssl.

# ek_pub ALG OUT: the EK public key (PEM) that `ek show` reports.
ek_pub() { citadel tpm --json ek show --algorithm "$1" | json - 'd["public_key"]' >"$2"; }

# make_ca NAME: a CA of our own (ECC P-256) in NAME.pem / NAME.key.
make_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" \
        -subj "/CN=$1" -days 3650 2>/dev/null
}

# ek_cert_by CA PUBKEY OUT [DAYS] [MANUFACTURER] [KEYUSAGE]: an EK certificate for PUBKEY issued by
# CA (openssl, not citadel): SAN directoryName with the TCG attributes, keyUsage, EKU 2.23.133.8.1.
ek_cert_by() {
    local ca=$1 pub=$2 out=$3 days=${4:-365} man=${5:-id:49424D00} ku=${6:-keyEncipherment}
    [ -f dummy.csr ] || openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dummy.key \
        -out dummy.csr -subj /CN=dummy 2>/dev/null
    cat >ekext.cnf <<EOF
[ext]
subjectAltName = critical, dirName:tpm_dn
keyUsage = critical, $ku
extendedKeyUsage = 2.23.133.8.1
basicConstraints = critical, CA:FALSE
[tpm_dn]
# "x." keeps openssl from reading the OID's first arc as a repeat counter
x.2.23.133.2.1 = $man
x.2.23.133.2.2 = SW TPM
x.2.23.133.2.3 = id:20191023
EOF
    openssl x509 -req -in dummy.csr -CA "$ca.pem" -CAkey "$ca.key" -force_pubkey "$pub" -days "$days" \
        -extfile ekext.cnf -extensions ext -out "$out" 2>/dev/null || fail "openssl could not issue $out"
}

# failed_json FILE ARGS...: `ek verify --json ARGS` must exit 9; its report goes to FILE.
failed_json() {
    local f=$1 rc=0
    shift
    citadel tpm --json ek verify "$@" >"$f" 2>"$f.err" || rc=$?
    assert_eq "$rc" 9 "ek verify $* exit status"
    assert_eq "$(json "$f.err" 'd["error"]["exit_status"]')" 9
}

# verdicts FILE: "check=verdict ..." of an `ek verify --json` report.
verdicts() { json "$1" '" ".join(c["check"] + "=" + c["verdict"] for c in d["checks"])'; }

test_ek_show_rsa_and_ecc() {
    init_vtpm
    citadel tpm --json ek show --algorithm rsa-2048 >rsa.json
    citadel tpm --json ek show --algorithm ecc-p256 >ecc.json
    assert_eq "$(json rsa.json 'd["template"]')" "L-1"
    assert_eq "$(json ecc.json 'd["template"]')" "L-2"
    json rsa.json 'd["public_key"]' >rsa.pem
    json ecc.json 'd["public_key"]' >ecc.pem
    openssl pkey -pubin -in rsa.pem -text -noout | grep -q '(2048 bit)' || fail "the RSA EK is not RSA 2048"
    openssl pkey -pubin -in ecc.pem -text -noout | grep -q 'prime256v1' || fail "the ECC EK is not P-256"
    # the standard EK policy: PolicySecret(TPM_RH_ENDORSEMENT)
    assert_eq "$(json rsa.json 'd["auth_policy"]')" "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa"
    # a SHA-256 name (000b...), the same every time: the TPM derives it from its seed
    assert_contains "$(json rsa.json 'd["name"]')" "000b"
    assert_eq "$(citadel tpm --json ek show --algorithm rsa-2048 | json - 'd["name"]')" "$(json rsa.json 'd["name"]')"
    assert_ne "$(json rsa.json 'd["name"]')" "$(json ecc.json 'd["name"]')"
    # the default is the first algorithm with a certificate: rsa-2048
    assert_eq "$(citadel tpm --json ek show | json - 'd["algorithm"]')" "rsa-2048"
    # high range: P-384 with a SHA-384 name and PolicyB
    citadel tpm --json ek show --algorithm ecc-p384 >p384.json
    assert_eq "$(json p384.json 'd["template"]')" "H-3"
    assert_contains "$(json p384.json 'd["name"]')" "000c"
    assert_contains "$(json p384.json 'd["auth_policy"]')" "b26e7d28d11a50bc"
    # the text output has the PEM and the name
    out=$(citadel tpm ek show --algorithm ecc-p256)
    assert_contains "$out" "BEGIN PUBLIC KEY"
    assert_contains "$out" "$(json ecc.json 'd["name"]')"
}

# init provisioned EK certificates: PEM and DER parse with openssl, their keys are the EKs, and
# openssl verifies them against the workspace's CA.
test_ek_cert_pem_der_and_openssl_verify() {
    init_vtpm
    citadel tpm ek cert >rsa-cert.pem
    openssl x509 -in rsa-cert.pem -noout || fail "the PEM is not a certificate openssl reads"
    citadel tpm ek cert --algorithm ecc-p256 --output ecc-cert.der --encoding der >/dev/null
    openssl x509 -inform der -in ecc-cert.der -noout || fail "the DER is not a certificate openssl reads"
    citadel tpm ek cert --algorithm ecc-p384 --output p384-cert.pem >/dev/null
    for a in rsa:rsa-2048:rsa-cert.pem ecc:ecc-p256:ecc-cert.der p384:ecc-p384:p384-cert.pem; do
        IFS=: read -r n alg f <<<"$a"
        ek_pub "$alg" "$n.pub"
        inform=PEM
        [[ "$f" == *.der ]] && inform=DER
        openssl x509 -inform "$inform" -in "$f" -pubkey -noout >"$n.certpub"
        cmp -s <(openssl pkey -pubin -in "$n.pub" -outform der) <(openssl pkey -pubin -in "$n.certpub" -outform der) ||
            fail "the $alg certificate's key is not the EK"
    done
    text=$(openssl x509 -in rsa-cert.pem -noout -text)
    assert_contains "$text" "2.23.133.2.1=id:49424D00"
    assert_contains "$text" "Key Encipherment"
    assert_contains "$text" "2.23.133.8.1"
    assert_contains "$(openssl x509 -inform der -in ecc-cert.der -noout -text)" "Key Agreement"
    citadel tpm ek ca --output ca.pem >/dev/null
    assert_eq "$(openssl verify -CAfile ca.pem rsa-cert.pem)" "rsa-cert.pem: OK"
    openssl x509 -inform der -in ecc-cert.der -out ecc-cert.pem
    assert_eq "$(openssl verify -CAfile ca.pem ecc-cert.pem)" "ecc-cert.pem: OK"
    # the CA's private key is nowhere in the workspace: only its certificate
    ! grep -ac "PRIVATE KEY" store.db* >/dev/null || fail "a private key is in the store"
    # a TPM without that certificate: rsa-3072 was not provisioned
    expect_fail 9 TPM0080 citadel tpm ek cert --algorithm rsa-3072
    assert_contains "$ERR" "rsa-2048, ecc-p256, ecc-p384"
}

test_ek_verify_passes() {
    init_vtpm
    for alg in rsa-2048 ecc-p256 ecc-p384; do
        citadel tpm --json ek verify --algorithm "$alg" >v.json || fail "ek verify --algorithm $alg failed: $(cat v.json)"
        assert_eq "$(json v.json 'd["valid"]')" true
        assert_eq "$(verdicts v.json)" "chain=pass validity=pass ek-key=pass tpm-attributes=pass key-usage=pass"
    done
    assert_contains "$(json v.json 'd["trust_store"]')" "this workspace's vTPM manufacturer CA"
    # every vendor CA of data/ek-ca is built in
    n=$(cat "$ROOT"/data/ek-ca/*.pem | grep -c "BEGIN CERTIFICATE")
    assert_contains "$(json v.json 'd["trust_store"]')" "built-in manufacturer CAs ($n certificates)"
    out=$(citadel tpm ek verify)
    assert_contains "$out" "valid:"
    assert_contains "$out" "chain "
    # the workspace's CA given explicitly works too
    citadel tpm ek ca --output ca.pem >/dev/null
    citadel tpm ek verify --ca ca.pem >/dev/null
}

# An EK certificate from a CA the trust store does not have: TPM0082, naming the chain check.
test_ek_verify_untrusted_ca() {
    init_vtpm
    make_ca other
    expect_fail 9 TPM0082 citadel tpm ek verify --ca other.pem
    assert_contains "$ERR" "chain"
    failed_json v.json --ca other.pem
    assert_eq "$(json v.json.err 'd["error"]["code"]')" TPM0082
    assert_eq "$(json v.json 'd["valid"]')" false
    assert_eq "$(json v.json 'd["failed_check"]')" chain
    assert_eq "$(verdicts v.json)" "chain=fail validity=pass ek-key=pass tpm-attributes=pass key-usage=pass"
    # a certificate from our own CA is untrusted by the built-in store
    ek_pub rsa-2048 ek.pub
    ek_cert_by other ek.pub other-ek.pem
    citadel tpm ek cert-import --input other-ek.pem >/dev/null
    expect_fail 9 TPM0082 citadel tpm ek verify
    assert_contains "$ERR" "CN=other"
    citadel tpm ek verify --ca other.pem >/dev/null
}

# An expired EK certificate from a trusted CA: TPM0083, naming the validity check.
test_ek_verify_expired() {
    init_vtpm
    make_ca mfr
    ek_pub rsa-2048 ek.pub
    ek_cert_by mfr ek.pub expired.pem -1
    citadel tpm ek cert-import --input expired.pem >/dev/null
    expect_fail 9 TPM0083 citadel tpm ek verify --ca mfr.pem
    assert_contains "$ERR" "validity"
    assert_contains "$ERR" "expired on"
    failed_json v.json --ca mfr.pem
    assert_eq "$(verdicts v.json)" "chain=pass validity=fail ek-key=pass tpm-attributes=pass key-usage=pass"
    # the same certificate, valid: passes
    ek_cert_by mfr ek.pub good.pem 30
    citadel tpm ek cert-import --input good.pem >/dev/null
    citadel tpm ek verify --ca mfr.pem >/dev/null
}

# A certificate for another key (stored with --force), one naming another manufacturer, one with
# a signing key usage: each fails its own check with its own code.
test_ek_verify_key_attributes_usage() {
    init_vtpm
    make_ca mfr
    ek_pub ecc-p256 ek.pub
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key 2>/dev/null
    openssl pkey -in other.key -pubout -out other.pub
    ek_cert_by mfr other.pub wrongkey.pem 30 id:49424D00 keyAgreement
    expect_fail 9 TPM0084 citadel tpm ek cert-import --input wrongkey.pem
    citadel tpm ek cert-import --input wrongkey.pem --force >/dev/null
    expect_fail 9 TPM0084 citadel tpm ek verify --algorithm ecc-p256 --ca mfr.pem
    assert_contains "$ERR" "ek-key"
    ek_cert_by mfr ek.pub ifx.pem 30 id:49465800 keyAgreement
    citadel tpm ek cert-import --input ifx.pem >/dev/null
    expect_fail 9 TPM0085 citadel tpm ek verify --algorithm ecc-p256 --ca mfr.pem
    assert_contains "$ERR" "id:49465800"
    failed_json v.json --algorithm ecc-p256 --ca mfr.pem
    assert_eq "$(json v.json 'd["failed_check"]')" tpm-attributes
    ek_cert_by mfr ek.pub sign.pem 30 id:49424D00 digitalSignature
    citadel tpm ek cert-import --input sign.pem >/dev/null
    expect_fail 9 TPM0086 citadel tpm ek verify --algorithm ecc-p256 --ca mfr.pem
    assert_contains "$ERR" "key-usage"
    assert_contains "$ERR" "keyAgreement"
}

test_ek_bad_input() {
    init_vtpm
    expect_fail 2 TPM0002 citadel tpm ek show --algorithm rsa-1024
    assert_contains "$ERR" "rsa-2048"
    expect_fail 2 TPM0029 citadel tpm ek verify --ca does-not-exist
    printf 'not a certificate\n' >junk.pem
    expect_fail 2 TPM0087 citadel tpm ek verify --ca junk.pem
    mkdir empty
    expect_fail 2 TPM0087 citadel tpm ek verify --ca empty
    expect_fail 2 TPM0002 citadel tpm ek cert --encoding der
    expect_fail 2 TPM0035 citadel tpm ek cert --encoding base64
    expect_fail 2 TPM0043 citadel tpm ek cert-import --input junk.pem
    expect_fail 2 TPM0002 citadel tpm ek cert-import
    # a refused import leaves the certificate as it was
    citadel tpm ek verify >/dev/null
    # the plan changes nothing
    citadel tpm ek ca --output ca.pem >/dev/null
    assert_eq "$(citadel tpm --json --plan ek cert-import --input ca.pem | json - 'd["plan"]')" true
    citadel tpm ek verify --algorithm ecc-p256 >/dev/null
}

# The mock backend's TPM has an EK but no certificate: show works, cert says why it is missing.
test_ek_on_mock() {
    export TPM_BACKEND=mock
    citadel tpm --json ek show --algorithm ecc-p256 >m.json
    json m.json 'd["public_key"]' >m.pem
    openssl pkey -pubin -in m.pem -noout || fail "the mock EK is not a public key"
    assert_eq "$(json m.json 'd["certificate"]["present"]')" false
    expect_fail 9 TPM0080 citadel tpm ek cert
    assert_contains "$ERR" "mock"
    expect_fail 9 TPM0080 citadel tpm ek verify
    expect_fail 5 TPM0042 citadel tpm ek ca
}

# init's plan names the factory; a plan-only init changes nothing.
test_ek_init_plan() {
    out=$(citadel tpm --backend vtpm --plan --json init)
    assert_contains "$out" "EK certificates"
    assert_no_file store.db
}
