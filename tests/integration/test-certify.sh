# SPDX-License-Identifier: Apache-2.0
# TPM2_Certify on vtpm (docs/attestation.md, "Certify"): an AK certifies an identity and the
# certification verifies in software; every tampering fails its own check with its own code
# (TPM0190-0195) and exit status 9; keys that cannot be certified are refused with a code.
# tests/interop/test-certify-tools.sh checks the same against tpm2_certify and openssl.

# b64edit FILE FIELD PY: rewrites the base64 field of a certification JSON with the Python
# expression PY on the bytearray `b` (in place).
b64edit() {
    python3 - "$1" "$2" "$3" <<'PYEOF'
import base64, json, sys
f, field, expr = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(f))
b = bytearray(base64.b64decode(d[field]))
exec(expr)
d[field] = base64.b64encode(bytes(b)).decode()
json.dump(d, open(f, "w"))
PYEOF
}

# b64out FILE FIELD OUT: the bytes of a base64 field.
b64out() { python3 -c 'import base64,json,sys; open(sys.argv[3],"wb").write(base64.b64decode(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$@"; }

# check_status REPORT CHECK: the status of one check of a certify-verify --json report.
check_status() { json "$1" "[c for c in d['checks'] if c['check'] == '$2'][0]['status']"; }
check_code() { json "$1" "[c for c in d['checks'] if c['check'] == '$2'][0].get('code')"; }

setup_certify() {
    init_vtpm
    citadel tpm attest ak-create ak >/dev/null
    citadel tpm --json attest ak-show ak >ak.json
    citadel tpm identity init devid --usage tls-client --algorithm ecc-p256 >/dev/null
    N=$(openssl rand -hex 32)
    citadel tpm attest certify --ak ak --key devid --qualifying "$N" --output c.json >/dev/null
}

test_certify_identity_verifies() {
    setup_certify
    # the certification names the identity's key and the AK
    assert_eq "$(json c.json 'd["ak_name"]')" "$(json ak.json 'd["ak_name"]')"
    assert_eq "$(json c.json 'd["qualifying"]')" "$N"
    citadel tpm --json attest certify-verify --input c.json --ak-public ak.json --qualifying "$N" >r.json
    assert_eq "$(json r.json 'd["valid"]')" true
    for c in ak_public format signature qualifying name key_attributes; do
        assert_eq "$(check_status r.json $c)" pass "$c"
    done
    assert_eq "$(json r.json 'd["key_name"]')" "$(json c.json 'd["key_name"]')"
    # the certified public key is the identity's, as `key export-pub` gives it
    citadel tpm key export-pub devid --output devid.pem >/dev/null
    json r.json 'd["key_public_pem"]' >cert-pub.pem
    assert_eq "$(openssl pkey -pubin -in cert-pub.pem -outform DER | sha256sum)" \
        "$(openssl pkey -pubin -in devid.pem -outform DER | sha256sum)"
    # the key name is the TPM's: the one `key show` records
    assert_eq "$(citadel tpm --json key show devid | json - 'd.get("tpm_name") or d["versions"][-1]["tpm_name"]')" \
        "$(json c.json 'd["key_name"]')"
    # the binary forms (what tpm2_certify writes) and the binary AK public give the same verdict
    b64out c.json attest att.bin
    b64out c.json signature sig.bin
    b64out c.json key_public kp.bin
    json ak.json 'd["ak_tpm2b_public_base64"]' | base64 -d >ak.pub
    citadel tpm attest certify-verify --attest att.bin --signature sig.bin --key-public kp.bin --ak-public ak.pub \
        --qualifying "$N" >/dev/null
    # an RSA AK certifies an RSA key, without qualifying data; and text output
    citadel tpm attest ak-create rak --algorithm rsa-2048 >/dev/null
    citadel tpm key create rkey --algorithm rsa-2048 >/dev/null
    citadel tpm --json attest ak-show rak >rak.json
    citadel tpm --json attest certify --ak rak --key rkey >rc.json
    out=$(citadel tpm attest certify-verify --input rc.json --ak-public rak.json)
    assert_contains "$out" "valid:"
    assert_contains "$out" "yes"
    # a PCR-bound identity (policy on signing, none on certification) is certified too
    citadel tpm identity init bound --usage tls-client --pcr-bind 7 >/dev/null
    citadel tpm attest certify --ak ak --key bound --output b.json >/dev/null
    citadel tpm attest certify-verify --input b.json --ak-public ak.json >/dev/null
    # --plan changes nothing and touches no TPM
    citadel tpm --plan --json attest certify --ak ak --key devid | json - 'd["plan"]' >/dev/null
}

test_certify_tampering_fails_its_check() {
    setup_certify
    # a modified attest (the TPM clock): the signature no longer verifies
    cp c.json t1.json
    b64edit t1.json attest 'b[-20] ^= 1'
    expect_fail 9 TPM0192 citadel tpm attest certify-verify --input t1.json --ak-public ak.json --qualifying "$N"
    citadel tpm --json attest certify-verify --input t1.json --ak-public ak.json --qualifying "$N" >r.json 2>/dev/null || true
    assert_eq "$(json r.json 'd["valid"]')" false
    assert_eq "$(check_code r.json signature)" TPM0192
    assert_eq "$(check_status r.json name)" pass
    # a modified signature
    cp c.json t2.json
    b64edit t2.json signature 'b[-3] ^= 0x40'
    expect_fail 9 TPM0192 citadel tpm attest certify-verify --input t2.json --ak-public ak.json --qualifying "$N"
    # the wrong qualifying data (a replay for another nonce), and none when one was given
    expect_fail 9 TPM0193 citadel tpm attest certify-verify --input c.json --ak-public ak.json \
        --qualifying "$(openssl rand -hex 32)"
    expect_fail 9 TPM0193 citadel tpm attest certify-verify --input c.json --ak-public ak.json
    # key_public that is not the certified key (another key of the same TPM)
    citadel tpm identity init other --usage tls-client >/dev/null
    citadel tpm --json attest certify --ak ak --key other --qualifying "$N" >o.json
    cp c.json t3.json
    python3 -c 'import json; a=json.load(open("t3.json")); b=json.load(open("o.json")); a["key_public"]=b["key_public"]; json.dump(a, open("t3.json","w"))'
    expect_fail 9 TPM0194 citadel tpm attest certify-verify --input t3.json --ak-public ak.json --qualifying "$N"
    # another AK's public: the signature check fails
    citadel tpm attest ak-create ak2 >/dev/null
    citadel tpm --json attest ak-show ak2 >ak2.json
    expect_fail 9 TPM0192 citadel tpm attest certify-verify --input c.json --ak-public ak2.json --qualifying "$N"
    # a quote's attest is not a certification
    citadel tpm attest quote --ak ak --pcr 0 --nonce "$N" --output q.json >/dev/null
    cp c.json t4.json
    python3 -c 'import json; a=json.load(open("t4.json")); q=json.load(open("q.json")); a["attest"]=q["attest"]; a["signature"]=q["signature"]; json.dump(a, open("t4.json","w"))'
    expect_fail 9 TPM0191 citadel tpm attest certify-verify --input t4.json --ak-public ak.json --qualifying "$N"
    # not TPM-generated (magic changed)
    cp c.json t5.json
    b64edit t5.json attest 'b[0] ^= 0xff'
    expect_fail 9 TPM0191 citadel tpm attest certify-verify --input t5.json --ak-public ak.json --qualifying "$N"
    # key_public without fixedTPM (attribute bit 1 cleared): its name changes and the
    # attribute check names what is missing
    cp c.json t6.json
    b64edit t6.json key_public 'b[9] &= ~0x02'
    citadel tpm --json attest certify-verify --input t6.json --ak-public ak.json --qualifying "$N" >r6.json 2>/dev/null &&
        fail "a key without fixedTPM was accepted"
    assert_eq "$(check_code r6.json key_attributes)" TPM0195
    assert_contains "$(json r6.json "[c for c in d['checks'] if c['check'] == 'key_attributes'][0]['detail']")" \
        "not fixedTPM"
    assert_eq "$(check_code r6.json name)" TPM0194
}

test_certify_ak_public_check() {
    setup_certify
    json ak.json 'd["ak_tpm2b_public_base64"]' | base64 -d >ak.pub
    citadel tpm --json attest ak-public-check ak.pub >p.json
    assert_eq "$(json p.json 'd["ak_name"]')" "$(json ak.json 'd["ak_name"]')"
    assert_eq "$(json p.json 'd["ak_public_pem"]')" "$(json ak.json 'd["ak_public_pem"]')"
    # a signing key that is not restricted is refused as an AK: it could sign a forged TPMS_ATTEST
    b64out c.json key_public devid.pub
    expect_fail 9 TPM0190 citadel tpm attest ak-public-check devid.pub
    assert_contains "$ERR" "not restricted"
    # ... also inside certify-verify (a certification "signed" by it proves nothing)
    printf '{"ak_public": "%s"}' "$(json c.json 'd["key_public"]')" >fake-ak.json
    expect_fail 9 TPM0190 citadel tpm attest certify-verify --input c.json --ak-public fake-ak.json --qualifying "$N"
    # garbage
    head -c 40 /dev/urandom >junk.pub
    expect_fail 9 TPM0190 citadel tpm attest ak-public-check junk.pub
}

test_certify_refusals() {
    setup_certify
    # a key with a password
    printf 'pw' >pw
    citadel tpm key create locked --auth-file pw >/dev/null
    expect_fail 7 TPM0024 citadel tpm attest certify --ak ak --key locked
    assert_contains "$ERR" "password"
    # an Ed25519 key: the TPM holds its sealed seed, not the key
    citadel tpm key create ed --algorithm ed25519 >/dev/null
    expect_fail 3 TPM0007 citadel tpm attest certify --ak ak --key ed
    # a sealed secret is not a key
    printf 's' >s
    citadel tpm secret seal sec --input s >/dev/null
    expect_fail 3 TPM0007 citadel tpm attest certify --ak ak --key sec
    # the signer must be an AK
    expect_fail 3 TPM0007 citadel tpm attest certify --ak devid --key devid
    # qualifying data over 64 bytes, bad hex
    expect_fail 2 TPM0002 citadel tpm attest certify --ak ak --key devid --qualifying "$(openssl rand -hex 65)"
    expect_fail 2 TPM0002 citadel tpm attest certify --ak ak --key devid --qualifying zz
    # missing objects and options
    expect_fail 3 TPM0004 citadel tpm attest certify --ak ak --key nothing
    expect_fail 2 TPM0002 citadel tpm attest certify --key devid
    expect_fail 2 TPM0002 citadel tpm attest certify-verify --ak-public ak.json
    # nothing was written by the refusals
    [ ! -e locked.json ] || fail "unexpected output"
}
