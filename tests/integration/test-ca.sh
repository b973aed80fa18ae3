# SPDX-License-Identifier: Apache-2.0
# The certificate authority (`citadel ca`, docs/ca.md): root and intermediate CAs with the key in
# a KEK-encrypted file blob or in the TPM, certificates for every profile from `openssl req` CSRs
# and from TPM-held identity keys, checked by `openssl verify -crl_check` against the CA's CRL;
# revocation seen by openssl; the DevID HardwareModuleName decoded by openssl; AK certificates
# from a bare public key; trust stores; bad input with its own codes; where the CA key lives.

# osslreq NAME CN [EXTRA...]: a P-256 key NAME.key and a CSR NAME.csr made by openssl.
osslreq() {
    local n=$1 cn=$2
    shift 2
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$n.key" -subj "/CN=$cn" \
        "$@" -out "$n.csr" 2>/dev/null || fail "openssl req failed"
}

# verify_chain ROOT INT CRL LEAF: openssl verifies LEAF against ROOT + INT with the CRL checked.
verify_chain() {
    local out
    out=$(openssl verify -CAfile "$1" -untrusted "$2" -crl_check -CRLfile "$3" "$4" 2>&1) ||
        fail "openssl verify -crl_check rejected $4: $out"
    assert_eq "$out" "$4: OK" "openssl verify of $4"
}

# ext CERT NAME: one extension as openssl prints it (header line dropped).
ext() { openssl x509 -in "$1" -noout -ext "$2" 2>/dev/null | tail -n +2 | sed 's/^ *//' | tr '\n' ' '; }

# root + intermediate in the workspace: file keys unless $1 is --tpm
ca_pair() {
    citadel ca init root ${1:-} --output root.pem >/dev/null
    citadel ca intermediate issuing --parent root ${1:-} --output int.pem >/dev/null
}

# 1. File-key CAs: every profile from openssl CSRs verifies with the CRL checked; the extensions
#    are those of the profile; revocation is seen by openssl.
test_ca_file_key_profiles_verify_with_crl() {
    init_vtpm
    citadel --json ca init root >root.json
    assert_eq "$(json root.json '[d["key"], d["key_object"], d["profile"], d["subject"]]')" \
        '["file", "ca/root/kek", "root-ca", "CN=root"]'
    json root.json 'd["certificate_pem"]' >root.pem
    citadel ca intermediate issuing --parent root --output int.pem >/dev/null
    openssl verify -CAfile root.pem int.pem >/dev/null || fail "intermediate does not verify"
    # CA certificates: CA:TRUE critical, pathlen 0 on the intermediate, keyCertSign+cRLSign, SKI/AKI
    assert_contains "$(openssl x509 -in root.pem -noout -ext basicConstraints)" "critical"
    assert_contains "$(ext int.pem basicConstraints)" "CA:TRUE, pathlen:0"
    assert_contains "$(ext int.pem keyUsage)" "Certificate Sign, CRL Sign"
    assert_eq "$(ext int.pem authorityKeyIdentifier)" "$(ext root.pem subjectKeyIdentifier)" "AKI = root's SKI"

    osslreq srv web.example.org -addext subjectAltName=DNS:web.example.org
    osslreq cli client-1
    # a device's CSR that asks for server names and a HardwareModuleName of its own choosing
    osslreq dev node-1 -addext "subjectAltName=DNS:enroll.example.com,IP:127.0.0.1,otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hwm" \
        -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[hwm]\nt=OID:2.23.133.1.2\ns=FORMAT:HEX,OCTETSTRING:ffffffff\n')
    osslreq cli2 client-2 -addext "subjectAltName=DNS:client-2.example.org,otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hwm" \
        -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[hwm]\nt=OID:2.23.133.1.2\ns=FORMAT:HEX,OCTETSTRING:ffffffff\n')
    osslreq ak node-1-ak
    citadel --json ca issue --ca issuing --csr srv.csr --profile tls-server --output srv.pem >srv.json
    citadel ca issue --ca issuing --csr cli.csr --profile tls-client >cli.pem
    citadel ca issue --ca issuing --csr dev.csr --profile devid --hw-serial 000b0102030405 --output dev.pem >/dev/null
    citadel ca issue --ca issuing --csr ak.csr --profile ak --days 30 --output ak.pem >/dev/null
    assert_contains "$(head -1 cli.pem)" "BEGIN CERTIFICATE"
    citadel ca crl --ca issuing --output int.crl >/dev/null
    for c in srv cli dev ak; do verify_chain root.pem int.pem int.crl $c.pem; done

    # profile extensions
    assert_contains "$(ext srv.pem extendedKeyUsage)" "TLS Web Server Authentication"
    assert_contains "$(ext srv.pem subjectAltName)" "DNS:web.example.org"
    assert_contains "$(ext cli.pem extendedKeyUsage)" "TLS Web Client Authentication"
    assert_not_contains "$(ext cli.pem extendedKeyUsage)" "Server"
    # a device identity is no server name: client auth only, and no name from its CSR
    assert_contains "$(ext dev.pem extendedKeyUsage)" "TLS Web Client Authentication"
    assert_not_contains "$(ext dev.pem extendedKeyUsage)" "Server"
    assert_not_contains "$(ext dev.pem subjectAltName)" "enroll.example.com"
    assert_not_contains "$(ext dev.pem subjectAltName)" "127.0.0.1"
    assert_not_contains "$(openssl asn1parse -in dev.pem)" "FFFFFFFF"
    ! openssl verify -CAfile root.pem -untrusted int.pem -purpose sslserver dev.pem >/dev/null 2>&1 ||
        fail "a DevID certificate verifies for TLS server use"
    # other profiles keep a CSR's DNS names but never its otherName (the HardwareModuleName is the CA's)
    citadel ca issue --ca issuing --csr cli2.csr --profile tls-client --output cli2.pem >/dev/null
    assert_contains "$(ext cli2.pem subjectAltName)" "DNS:client-2.example.org"
    assert_not_contains "$(openssl asn1parse -in cli2.pem)" "FFFFFFFF"
    assert_contains "$(ext ak.pem extendedKeyUsage)" "2.23.133.8.3"
    for c in srv cli dev ak; do
        assert_contains "$(ext $c.pem keyUsage)" "Digital Signature"
        assert_contains "$(ext $c.pem basicConstraints)" "CA:FALSE"
        assert_eq "$(ext $c.pem authorityKeyIdentifier)" "$(ext int.pem subjectKeyIdentifier)" "AKI of $c"
    done
    # validity: the profile's default (90 days) and --days
    local nb na
    nb=$(date -d "$(openssl x509 -in srv.pem -noout -startdate | cut -d= -f2)" +%s)
    na=$(date -d "$(openssl x509 -in srv.pem -noout -enddate | cut -d= -f2)" +%s)
    assert_eq $(((na - nb + 60) / 86400)) 90 "tls-server validity in days"
    nb=$(date -d "$(openssl x509 -in ak.pem -noout -startdate | cut -d= -f2)" +%s)
    na=$(date -d "$(openssl x509 -in ak.pem -noout -enddate | cut -d= -f2)" +%s)
    assert_eq $(((na - nb + 60) / 86400)) 30 "--days 30"
    # 16-byte positive random serials, as the store records them
    local serial
    serial=$(json srv.json 'd["serial"]')
    assert_eq "$(openssl x509 -in srv.pem -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^0*//')" "$serial"
    assert_eq "$(citadel --json ca status "$serial" | json - 'd["status"]')" valid

    # revoke: the next CRL lists it with its reason and openssl refuses the certificate
    citadel --json ca revoke "$serial" --reason keyCompromise >rev.json
    assert_eq "$(json rev.json '[d["status"], d["reason"], d["ca"]]')" '["revoked", "keyCompromise", "issuing"]'
    assert_eq "$(citadel --json ca status "$serial" | json - 'd["status"]')" revoked
    citadel --json ca crl --ca issuing --output int2.crl >crl2.json
    assert_eq "$(json crl2.json '[d["crl_number"], d["revoked"]]')" '[2, 1]'
    local crltext
    crltext=$(openssl crl -in int2.crl -noout -text)
    assert_contains "$crltext" "Version 2"
    assert_contains "$crltext" "X509v3 CRL Number: "
    assert_contains "$crltext" "Key Compromise"
    assert_contains "$crltext" "Next Update"
    assert_contains "$(openssl crl -in int2.crl -noout -crlnumber)" "crlNumber=0x02"
    assert_contains "$(openssl crl -in int2.crl -CAfile int.pem -noout 2>&1)" "verify OK"
    local out rc=0
    out=$(openssl verify -CAfile root.pem -untrusted int.pem -crl_check -CRLfile int2.crl srv.pem 2>&1) || rc=$?
    assert_ne "$rc" 0 "openssl verify of a revoked certificate"
    assert_contains "$out" "certificate revoked"
    # the others still verify against the new CRL
    for c in cli dev ak; do verify_chain root.pem int.pem int2.crl $c.pem; done
    # the root's CRL (an empty one) with -crl_check_all: the whole chain checked
    citadel ca crl --ca root --output root.crl >/dev/null
    cat int2.crl root.crl >all.crl
    out=$(openssl verify -CAfile root.pem -untrusted int.pem -crl_check_all -CRLfile all.crl cli.pem 2>&1)
    assert_eq "$out" "cli.pem: OK"

    # list and show
    citadel --json ca list >list.json
    assert_eq "$(json list.json '[(c["name"], c["parent"], c["key"], c["issued"], c["revoked"]) for c in d["cas"]]')" \
        '[["issuing", "root", "file", 5, 1], ["root", null, "file", 1, 0]]'
    citadel ca show issuing >show.pem
    cmp show.pem int.pem || fail "ca show does not print the CA certificate"
    assert_eq "$(citadel --json ca show issuing | json - '[c["status"] for c in d["certificates"]]')" \
        '["revoked", "valid", "valid", "valid", "valid"]'
}

# 2. TPM-held CA keys: root and intermediate sign in the TPM; a leaf from a TPM identity's CSR
#    (its key in the TPM too) verifies with the CRL; the identity takes the certificate.
test_ca_tpm_key_identity_csr() {
    init_vtpm
    citadel --json ca init root --tpm --algorithm ecc-p384 --output root.pem >root.json
    assert_eq "$(json root.json '[d["key"], d["key_object"], d["algorithm"]]')" '["tpm", "ca/root/key", "ecc-p384"]'
    assert_contains "$(openssl x509 -in root.pem -noout -text)" "ecdsa-with-SHA384"
    # the certificate's key is the TPM key's
    citadel tpm key export-pub ca/root/key --output rootkey.pem >/dev/null
    assert_eq "$(openssl x509 -in root.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" \
        "$(openssl pkey -pubin -in rootkey.pem -outform DER | sha256sum)"
    openssl verify -CAfile root.pem root.pem >/dev/null || fail "the TPM-signed root does not verify"
    citadel ca intermediate issuing --parent root --tpm --output int.pem >/dev/null
    openssl verify -CAfile root.pem int.pem >/dev/null || fail "the TPM-signed intermediate does not verify"

    citadel tpm identity init web --usage tls-server >/dev/null
    citadel tpm identity csr web --subject /CN=web.example.org --san DNS:web.example.org --output web.csr >/dev/null
    citadel tpm identity init node --usage tls-client >/dev/null
    citadel tpm identity csr node --subject /CN=node-1 --output node.csr >/dev/null
    citadel ca issue --ca issuing --csr web.csr --profile tls-server --output web.pem >/dev/null
    citadel ca issue --ca issuing --csr node.csr --profile devid --hw-serial 000b99 --output node.pem >/dev/null
    citadel ca crl --ca issuing --output int.crl >/dev/null
    assert_contains "$(openssl crl -in int.crl -CAfile int.pem -noout 2>&1)" "verify OK"
    verify_chain root.pem int.pem int.crl web.pem
    verify_chain root.pem int.pem int.crl node.pem
    assert_contains "$(ext web.pem subjectAltName)" "DNS:web.example.org"
    # the certificate is the identity's: cert-import checks it names the identity's TPM key
    citadel tpm identity cert-import web --input web.pem >/dev/null
    # revoke the intermediate at the root: its CRL (signed in the TPM) makes openssl refuse the chain
    local iserial out rc=0
    iserial=$(openssl x509 -in int.pem -noout -serial | cut -d= -f2)
    citadel ca revoke "$iserial" --reason cACompromise >/dev/null
    citadel ca crl --ca root --output root.crl >/dev/null
    cat int.crl root.crl >all.crl
    out=$(openssl verify -CAfile root.pem -untrusted int.pem -crl_check_all -CRLfile all.crl web.pem 2>&1) || rc=$?
    assert_ne "$rc" 0
    assert_contains "$out" "certificate revoked"
    # and the revoked intermediate issues nothing more
    expect_fail 13 TPM0162 citadel ca issue --ca issuing --csr node.csr --profile tls-client
    assert_contains "$ERR" "CA issuing is revoked"
    # a CA key signs certificates and CRLs only
    printf 'x' >blob
    expect_fail 3 TPM0007 citadel tpm key sign ca/root/key --input blob
    assert_contains "$ERR" "certificate authority's key"
    # and it is not deleted, rotated or renamed from under the CA
    expect_fail 3 TPM0008 citadel tpm key delete ca/root/key
    assert_contains "$ERR" "is the key of CA root"
    expect_fail 3 TPM0008 citadel tpm key rotate ca/root/key
    expect_fail 3 TPM0008 citadel tpm object rename ca/issuing/key other/key
    doctor_consistent
}

# 3. DevID: the HardwareModuleName (RFC 4108 otherName, hwType TCG 2.23.133.1.2) decodes with
#    openssl asn1parse; an AK certificate from the AK's bare public key (an AK cannot sign a CSR).
test_ca_devid_hardware_module_name_and_ak() {
    init_vtpm
    ca_pair
    local ekname
    ekname=$(citadel --json tpm ek show | json - 'd["name"]')
    osslreq dev node-1
    citadel ca issue --ca issuing --csr dev.csr --profile devid --hw-serial "$ekname" --output dev.pem >/dev/null
    assert_contains "$(openssl x509 -in dev.pem -noout -text)" "othername: 1.3.6.1.5.5.7.8.4"
    local off parsed
    off=$(openssl asn1parse -in dev.pem | grep -A1 "X509v3 Subject Alternative Name" | tail -1 | cut -d: -f1 | tr -d ' ')
    parsed=$(openssl asn1parse -in dev.pem -strparse "$off")
    assert_contains "$parsed" ":1.3.6.1.5.5.7.8.4"
    assert_contains "$parsed" ":2.23.133.1.2"
    assert_contains "$parsed" "OCTET STRING      [HEX DUMP]:$(printf '%s' "$ekname" | tr a-f A-F)"

    citadel tpm attest ak-create attest/ak >/dev/null
    citadel --json tpm attest ak-show attest/ak | json - 'd["ak_public_pem"]' >ak.pub
    citadel --json ca issue --ca issuing --public-key ak.pub --subject CN=node-1-ak --profile ak \
        --hw-serial "$ekname" --output ak.pem >ak.json
    assert_eq "$(json ak.json 'd["hardware_module_name"]["hw_serial"]')" "$ekname"
    assert_eq "$(openssl x509 -in ak.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" \
        "$(openssl pkey -pubin -in ak.pub -outform DER | sha256sum)"
    assert_contains "$(ext ak.pem extendedKeyUsage)" "2.23.133.8.3"
    citadel ca crl --ca issuing --output int.crl >/dev/null
    verify_chain root.pem int.pem int.crl ak.pem
    verify_chain root.pem int.pem int.crl dev.pem
    # a bare key needs a subject
    expect_fail 2 TPM0002 citadel ca issue --ca issuing --public-key ak.pub --profile ak
}

# 4. Trust stores: add, list, bundle, remove; duplicates and non-CA certificates refused.
test_ca_trust_stores() {
    init_vtpm
    ca_pair
    osslreq leaf leaf
    citadel ca issue --ca issuing --csr leaf.csr --profile tls-client --output leaf.pem >/dev/null
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout v.key -subj "/CN=Vendor EK Root" \
        -days 30 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        -out vendor.pem 2>/dev/null
    openssl x509 -in vendor.pem -outform DER -out vendor.der
    citadel --json ca trust add vendor-root --store manufacturers vendor.der >add.json
    assert_eq "$(json add.json 'd["fingerprint_sha256"]')" \
        "$(openssl x509 -in vendor.pem -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)"
    citadel ca trust add partner --store peers root.pem >/dev/null
    citadel --json ca trust list >list.json
    assert_eq "$(json list.json '[(e["store"], e["name"], e["subject"]) for e in d["trust"]]')" \
        '[["manufacturers", "vendor-root", "CN=Vendor EK Root"], ["peers", "partner", "CN=root"]]'
    assert_eq "$(citadel --json ca trust list --store peers | json - 'd["count"]')" 1
    citadel ca trust bundle --store manufacturers --output bundle.pem >/dev/null
    cmp <(openssl x509 -in bundle.pem -outform DER) vendor.der || fail "the bundle is not the vendor root"
    # the same certificate twice, the same name twice, a leaf, garbage, an unknown store
    expect_fail 13 TPM0160 citadel ca trust add vendor-again --store manufacturers vendor.pem
    assert_contains "$ERR" "already has this certificate"
    expect_fail 13 TPM0160 citadel ca trust add partner --store peers int.pem
    expect_fail 13 TPM0169 citadel ca trust add leaf --store peers leaf.pem
    assert_contains "$ERR" "not a CA certificate"
    printf 'not a certificate\n' >junk.pem
    expect_fail 13 TPM0169 citadel ca trust add junk --store peers junk.pem
    expect_fail 2 TPM0002 citadel ca trust add x --store elsewhere vendor.pem
    cat root.pem int.pem >two.pem
    expect_fail 13 TPM0169 citadel ca trust add two --store peers two.pem
    assert_contains "$ERR" "holds 2 certificates"
    citadel --json ca trust remove vendor-root --store manufacturers | json - 'd["removed"]' | grep -q true
    expect_fail 13 TPM0161 citadel ca trust remove vendor-root --store manufacturers
    assert_eq "$(citadel --json ca trust list | json - 'd["count"]')" 1
    citadel ca trust bundle --store manufacturers --output empty.pem >/dev/null
    assert_eq "$(wc -c <empty.pem)" 0
}

# 5. Bad input: each its own code, exit status 13 (class ca), nothing recorded.
test_ca_bad_inputs() {
    init_vtpm
    ca_pair
    osslreq good good.example.org
    # a tampered CSR (the subject changed after signing) parses but its signature fails
    openssl req -in good.csr -outform DER -out good.der
    python3 -c 'import sys
d = open("good.der", "rb").read()
i = d.index(b"good.example.org")
open("tampered.der", "wb").write(d[:i] + b"evil" + d[i + 4:])'
    openssl req -in tampered.der -inform DER -noout 2>/dev/null || fail "the tampered CSR should still parse"
    expect_fail 13 TPM0164 citadel ca issue --ca issuing --csr tampered.der --profile tls-server
    assert_contains "$ERR" "signature does not verify"
    # a truncated CSR (PEM and DER)
    head -c 200 good.csr >trunc.csr
    expect_fail 13 TPM0163 citadel ca issue --ca issuing --csr trunc.csr --profile tls-server
    head -c 100 good.der >trunc.der
    expect_fail 13 TPM0163 citadel ca issue --ca issuing --csr trunc.der --profile tls-server
    : >empty.csr
    expect_fail 2 TPM0031 citadel ca issue --ca issuing --csr empty.csr --profile tls-server
    # unknown and missing profile
    expect_fail 13 TPM0165 citadel ca issue --ca issuing --csr good.csr --profile code-signing
    assert_contains "$ERR" "tls-server, tls-client, devid, ak"
    expect_fail 13 TPM0165 citadel ca issue --ca issuing --csr good.csr
    # a hardware serial on a TLS certificate; bad hex
    expect_fail 2 TPM0002 citadel ca issue --ca issuing --csr good.csr --profile tls-server --hw-serial 0011
    expect_fail 2 TPM0002 citadel ca issue --ca issuing --csr good.csr --profile devid --hw-serial zz
    # unknown CA, existing CA, bad names and algorithms
    expect_fail 13 TPM0161 citadel ca issue --ca nope --csr good.csr --profile tls-server
    expect_fail 13 TPM0160 citadel ca init root
    expect_fail 13 TPM0160 citadel ca intermediate issuing --parent root
    expect_fail 13 TPM0161 citadel ca intermediate other --parent nope
    expect_fail 2 TPM0002 citadel ca init Bad/Name
    expect_fail 2 TPM0002 citadel ca intermediate other
    expect_fail 5 TPM0023 citadel ca init weak --algorithm rsa-2048
    # unknown serial, bad serial, unknown reason, revoked twice
    expect_fail 13 TPM0166 citadel ca revoke 0123456789abcdef
    assert_contains "$ERR" "no certificate with serial 123456789abcdef"
    expect_fail 2 TPM0002 citadel ca revoke not-hex
    local s
    s=$(citadel --json ca issue --ca issuing --csr good.csr --profile tls-client | json - 'd["serial"]')
    expect_fail 2 TPM0002 citadel ca revoke "$s" --reason because
    citadel ca revoke "0x00$s" >/dev/null
    expect_fail 13 TPM0167 citadel ca revoke "$(printf '%s' "$s" | tr a-f A-F)"
    assert_eq "$(citadel --json ca status ffff | json - 'd["status"]')" unknown
    # JSON errors carry the class and exit status
    citadel --json ca revoke 77 2>err.json >/dev/null || true
    assert_eq "$(json err.json '[d["error"]["code"], d["error"]["class"], d["error"]["exit_status"]]')" \
        '["TPM0166", "ca", 13]'
    # nothing was recorded by the failures: one leaf issued, one revoked
    assert_eq "$(citadel --json ca show issuing | json - '[len(d["certificates"]), d["revoked"]]')" '[1, 1]'
    citadel tpm explain TPM0164 | grep -q "signature does not verify" || fail "explain TPM0164"
}

# 6. --plan changes nothing; --json and yaml render.
test_ca_plan_and_formats() {
    init_vtpm
    citadel --json --plan ca init root >plan.json
    assert_eq "$(json plan.json '[d["plan"], d["key"]]')" '[true, "file"]'
    citadel --plan ca init root --tpm >/dev/null
    assert_eq "$(citadel --json ca list | json - 'd["count"]')" 0
    citadel tpm object list --json | json - 'len(d["objects"])' | grep -qx 0 || fail "plan created objects"
    ca_pair
    osslreq a a.example.org
    citadel --json ca issue --ca issuing --csr a.csr --profile tls-server --plan >p2.json
    assert_eq "$(json p2.json 'd["plan"]')" true
    assert_eq "$(citadel --json ca show issuing | json - 'len(d["certificates"])')" 0
    # plan still checks the CSR
    head -c 100 a.csr >bad.csr
    expect_fail 13 TPM0163 citadel --plan ca issue --ca issuing --csr bad.csr --profile tls-server
    citadel --json --plan ca crl --ca issuing | json - 'd["plan"]' | grep -qx true
    assert_eq "$(citadel --json ca show issuing | json - 'd["crl_number"]')" 0
    citadel --format yaml ca list | yaml_ok
    citadel --format yaml ca show root | yaml_ok
}

# 7. Where the CA key lives: a file-key CA's private key is only ever stored encrypted (under a
#    KEK sealed in the TPM, which `secret unseal` refuses), the store is 0600, no PEM/DER private
#    key in any file; a tampered or swapped key blob is detected. (The unit test test-ca checks
#    the actual key bytes against every file.)
test_ca_key_storage() {
    init_vtpm
    citadel ca init root >/dev/null
    citadel ca init other >/dev/null
    assert_mode store.db 600
    assert_eq "$(citadel --json tpm object list | json - 'sorted(o["path"] for o in d["objects"])')" \
        '["ca/other/kek", "ca/root/kek"]'
    expect_fail 3 TPM0007 citadel tpm secret unseal ca/root/kek
    assert_contains "$ERR" "internal key-encryption key"
    expect_fail 3 TPM0008 citadel tpm secret delete ca/root/kek
    assert_contains "$ERR" "is the key of CA root"
    doctor_consistent
    # the audit KEK keeps its own refusal
    citadel tpm audit key create >/dev/null
    expect_fail 3 TPM0007 citadel tpm secret unseal audit/kek
    assert_contains "$ERR" "audit log's key"
    local f
    for f in "$T"/store.db*; do
        if grep -a -q "PRIVATE KEY" "$f"; then fail "a PEM private key in $f"; fi
    done
    # the blob is the encrypted format, not a PKCS#8 structure
    python3 - <<'EOF'
import sqlite3
db = sqlite3.connect("store.db")
for name, blob in db.execute("SELECT name, key_blob FROM ca"):
    assert blob[:8] == b"CITCAK1\0", name
    assert b"\x30\x81" not in blob[8:32] and len(blob) > 100, name
EOF
    # swap the two CAs' blobs: the name is bound in the AEAD, both refuse
    python3 - <<'EOF'
import sqlite3
db = sqlite3.connect("store.db")
a = db.execute("SELECT key_blob FROM ca WHERE name='root'").fetchone()[0]
b = db.execute("SELECT key_blob FROM ca WHERE name='other'").fetchone()[0]
db.execute("UPDATE ca SET key_blob=? WHERE name='root'", (b,))
db.execute("UPDATE ca SET key_blob=? WHERE name='other'", (a,))
db.commit()
EOF
    osslreq x x.example.org
    citadel ca intermediate i1 --parent root >/dev/null 2>err || true
    assert_contains "$(cat err)" "error[TPM0168]"
    expect_fail 13 TPM0168 citadel ca crl --ca other
    assert_contains "$ERR" "does not decrypt"
}

# 8. RSA-3072 CAs (file and TPM keys): an RSA tls-server certificate adds keyEncipherment;
#    validity never exceeds the issuer's; pathLenConstraint is enforced.
test_ca_rsa_validity_clamp_and_pathlen() {
    init_vtpm
    citadel ca init root --algorithm rsa-3072 --output root.pem >/dev/null
    assert_contains "$(openssl x509 -in root.pem -noout -text)" "Public-Key: (3072 bit)"
    citadel ca intermediate mid --parent root --algorithm rsa-3072 --tpm --days 10 --pathlen 1 \
        --output mid.pem >/dev/null
    assert_contains "$(openssl x509 -in mid.pem -noout -text)" "sha256WithRSAEncryption"
    assert_contains "$(ext mid.pem basicConstraints)" "pathlen:1"
    openssl req -new -newkey rsa:2048 -nodes -keyout r.key -subj /CN=rsa.example.org -out r.csr 2>/dev/null
    citadel --json ca issue --ca mid --csr r.csr --profile tls-server --days 400 --output r.pem >r.json
    assert_contains "$(json r.json 'd["note"]')" "cut to the issuing CA's notAfter"
    assert_eq "$(openssl x509 -in r.pem -noout -enddate)" "$(openssl x509 -in mid.pem -noout -enddate)"
    assert_contains "$(ext r.pem keyUsage)" "Digital Signature, Key Encipherment"
    citadel ca crl --ca mid --output mid.crl >/dev/null
    verify_chain root.pem mid.pem mid.crl r.pem
    # an intermediate never outlives its issuer either
    citadel --json ca intermediate sub --parent mid --days 3000 --output sub.pem >sub.json
    assert_eq "$(openssl x509 -in sub.pem -noout -enddate)" "$(openssl x509 -in mid.pem -noout -enddate)"
    cat root.pem mid.pem >chain.pem
    openssl verify -CAfile chain.pem sub.pem >/dev/null || fail "sub does not verify"
    # sub has pathlen 0: it signs no CA; --pathlen must shrink down the chain
    expect_fail 13 TPM0162 citadel ca intermediate leafca --parent sub
    assert_contains "$ERR" "may not sign CA certificates"
    expect_fail 2 TPM0002 citadel ca intermediate wide --parent mid --pathlen 1
}

# 9. The same on swtpm: a TPM-held CA key signs certificates and CRLs that openssl verifies.
test_ca_tpm_key_on_swtpm() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    init_vtpm
    ca_pair --tpm
    citadel tpm identity init web --usage tls-server >/dev/null
    citadel tpm identity csr web --subject /CN=web.example.org --output web.csr >/dev/null
    citadel ca issue --ca issuing --csr web.csr --profile tls-server --output web.pem >/dev/null
    citadel ca crl --ca issuing --output int.crl >/dev/null
    verify_chain root.pem int.pem int.crl web.pem
    # the public key in the certificate is the TPM key's
    citadel tpm key export-pub ca/issuing/key --output ik.pem >/dev/null
    assert_eq "$(openssl x509 -in int.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" \
        "$(openssl pkey -pubin -in ik.pem -outform DER | sha256sum)"
}

# The CA tables travel in `workspace export`: the store is lost, the vTPM survives, `init`
# adopts the TPM and the import brings back a file-key CA and a TPM-key CA that issue again,
# their issued certificates with their revocations (the CRL still lists them), and the trust
# stores. A second import refuses (TPM0005/TPM0160) and changes nothing; a damaged "ca" is
# TPM0039, and so is a CA whose key object is in neither the workspace nor the export.
# edit_export OUT CODE: backup.json with the Python statements CODE applied to it (as d), into OUT.
edit_export() {
    python3 -c 'import json, sys
d = json.load(open("backup.json"))
exec(sys.argv[2])
json.dump(d, open(sys.argv[1], "w"))' "$1" "$2"
}

# refused_ca_import OUT CODE MESSAGE: backup.json edited by CODE (edit_export) is refused by
# `workspace import` with TPM0039, and the error says MESSAGE.
refused_ca_import() {
    edit_export "$1" "$2"
    expect_fail 4 TPM0039 citadel tpm workspace import --input "$1"
    assert_contains "$ERR" "$3"
}

test_ca_workspace_export_import() {
    init_vtpm
    ca_pair
    citadel ca init troot --tpm --output troot.pem >/dev/null
    osslreq srv web.example.org
    osslreq cli client-1
    citadel ca issue --ca issuing --csr srv.csr --profile tls-server --output srv.pem >/dev/null
    citadel ca issue --ca troot --csr cli.csr --profile tls-client --output cli.pem >/dev/null
    serial=$(openssl x509 -in srv.pem -noout -serial | cut -d= -f2)
    citadel ca revoke "$serial" --reason keyCompromise >/dev/null
    citadel ca trust add partner --store peers troot.pem >/dev/null
    citadel --json ca list >before.json
    citadel --json workspace export --output backup.json >exp.json
    assert_eq "$(json exp.json '[d["cas"], d["ca_certificates"] >= 3]')" '[3, true]'
    assert_mode backup.json 600
    # the file CA's key is in the export only encrypted: its blob is the sealed-KEK envelope
    # (docs/ca.md: "CITCAK1\0" || nonce || XChaCha20-Poly1305 ciphertext), no PEM private key anywhere
    assert_not_contains "$(cat backup.json)" "PRIVATE KEY"
    assert_eq "$(python3 -c 'import json, base64; d = json.load(open("backup.json")); print([base64.b64decode(c["key_blob"])[:8] for c in d["ca"]["ca"] if c["key_kind"] == "file"] == [b"CITCAK1\0"] * 2)')" True
    rm "$TPM_STORE_PATH"
    citadel tpm init >/dev/null
    citadel --json workspace import --input backup.json >imp.json
    assert_eq "$(json imp.json 'd["ca_rows_imported"] >= 7')" true
    citadel --json ca list >after.json
    assert_eq "$(json after.json '[c["name"] for c in d["cas"]]')" "$(json before.json '[c["name"] for c in d["cas"]]')"
    # both CAs issue again, and openssl verifies what they issue
    osslreq srv2 web2.example.org
    citadel ca issue --ca issuing --csr srv2.csr --profile tls-server --output srv2.pem >/dev/null
    citadel ca issue --ca troot --csr srv2.csr --profile tls-client --output cli2.pem >/dev/null
    citadel ca crl --ca issuing --output int.crl >/dev/null
    verify_chain root.pem int.pem int.crl srv2.pem
    assert_eq "$(openssl verify -CAfile troot.pem cli2.pem)" "cli2.pem: OK"
    # the revocation came back with the certificate: the new CRL still lists it
    out=$(openssl verify -CAfile root.pem -untrusted int.pem -crl_check -CRLfile int.crl srv.pem 2>&1) &&
        fail "the revoked certificate verifies after the import"
    assert_contains "$out" "certificate revoked"
    assert_contains "$(citadel ca trust list --store peers)" partner
    # a second import: refused, nothing added (its objects are here already: TPM0005; without
    # them, its CAs: TPM0160)
    expect_fail 3 TPM0005 citadel tpm workspace import --input backup.json
    edit_export caonly.json 'd["objects"]=[]'
    expect_fail 13 TPM0160 citadel tpm workspace import --input caonly.json
    assert_contains "$ERR" "already has a CA"
    assert_eq "$(citadel --json ca list | json - 'len(d["cas"])')" 3
    # a damaged ca member: refused before anything is written
    rm "$TPM_STORE_PATH"
    citadel tpm init >/dev/null
    refused_ca_import bad.json 'd["ca"]["ca_certs"][0]["not_after"]="soon"' "not_after is not an integer"
    assert_eq "$(citadel --json ca list | json - 'len(d["cas"])')" 0
    assert_eq "$(citadel --json object list | json - 'd["count"]')" 0
    expect_fail 4 TPM0039 citadel tpm workspace import --input caonly.json
    assert_contains "$ERR" "key object ca/root/kek is neither in the workspace nor in the export"
    # a trust entry whose certificate is not the one its fingerprint names, or not a CA
    refused_ca_import bad2.json 't=d["ca"]["ca_trust"][0]; t["pem"]=open("int.pem").read()' "ca.ca_trust[0]: the fingerprint is not the certificate's"
    refused_ca_import bad3.json 't=d["ca"]["ca_trust"][0]; t["pem"]=open("srv.pem").read()' "not a CA certificate"
    # a second certificate riding after the trust entry's (the bundle would carry it)
    refused_ca_import bad4.json 't=d["ca"]["ca_trust"][0]; t["pem"]+=open("root.pem").read()' "not exactly one PEM certificate"
    # a row that names another subject than its certificate's (what `trust list` would show)
    refused_ca_import bad5.json 'd["ca"]["ca_trust"][0]["subject"]="CN=Some Vendor EK Root"' "the subject is not the certificate's"
    # an issued certificate under a CA that did not issue it, and one whose serial is not its own
    refused_ca_import bad6.json 'c=[c for c in d["ca"]["ca_certs"] if c["ca"]=="issuing"][0]; c["ca"]="troot"' "not issued by its CA"
    refused_ca_import bad7.json 'd["ca"]["ca_certs"][0]["serial"]="01"' "the serial is not the certificate's"
    # a row the export repeats (here with the revocation dropped): refused, not merged
    edit_export bad8.json 'c=[c for c in d["ca"]["ca_certs"] if c.get("status")=="revoked"][0]; r=dict(c); r["status"]="valid"; r.pop("revoked_at",None); r.pop("reason",None); d["ca"]["ca_certs"].insert(0,r)'
    expect_fail 13 TPM0160 citadel tpm workspace import --input bad8.json
    assert_eq "$(citadel --json object list | json - 'd["count"]')" 0
    assert_eq "$(citadel --json ca list | json - 'len(d["cas"])')" 0
}
