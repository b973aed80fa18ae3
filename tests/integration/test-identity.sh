# SPDX-License-Identifier: Apache-2.0
# Identities and PolicyAuthorize: the upgrade flow (an authority approves a new PCR state and the
# same key signs again), the TPM refusing unapproved, tampered and foreign approvals, PCR
# bindings, identity init validation, rotate/delete of authorities, CSRs checked by openssl,
# certificates, YAML policies with authorized_by, and the core flow on mock and swtpm.
#
# Tests named test_regression_* are bugs found while writing these tests (fixed; the comment
# above each says what was wrong).

# A SHA-256 digest (hex) of a string: a PCR extend value.
hx() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# verify_ok PEM SIG FILE: openssl accepts SIG as a SHA-256 signature of FILE by PEM's key.
verify_ok() {
    local out
    out=$(openssl dgst -sha256 -verify "$1" -signature "$2" "$3" 2>&1) || fail "openssl rejected $2: $out"
    assert_eq "$out" "Verified OK" "openssl verify of $2"
}

# authority AUTH + anchor authorized by it for PCR 14, in the workspace of the environment.
authority_and_anchor() {
    citadel tpm identity init "${1:-release}" --authority >/dev/null
    citadel tpm identity init "${2:-anchor}" --authorized-by "${1:-release}" --pcr-bind 14 >/dev/null
}

# 1. The upgrade flow from the issue.
test_identity_upgrade_flow() {
    init_vtpm
    printf 'release 1.0\n' >artifact
    citadel tpm --json identity init release --authority >auth.json
    assert_eq "$(json auth.json 'd["identity"]["usage"]')" authority
    citadel tpm --json identity init anchor --authorized-by release --pcr-bind 14 >anchor.json
    assert_eq "$(json anchor.json '[d["identity"]["authorized_by"], d["identity"]["pcr_bind"]]')" '["release", "14"]'
    assert_contains "$(json anchor.json 'd["next_step"]')" "policy approve --authority release --pcr 14"
    assert_eq "$(json anchor.json 'len(d["policy_digest"])')" 64

    # before any approval the TPM refuses
    expect_fail 7 TPM0047 citadel tpm key sign anchor --input artifact --output s0.sig
    assert_contains "$ERR" "release has approved no state of these PCRs yet"
    assert_no_file s0.sig

    # approve the state now; the anchor key signs
    citadel tpm --json policy approve --authority release --pcr 14 >ap1.json
    assert_eq "$(json ap1.json '[d["authority"], d["pcrs"][0]["index"], d["pcrs"][0]["value"]]')" \
        "[\"release\", 14, \"$(printf '0%.0s' $(seq 64))\"]"
    citadel tpm key export-pub anchor --output before.pem >/dev/null
    citadel tpm key sign anchor --input artifact --output s1.sig >/dev/null
    verify_ok before.pem s1.sig artifact

    # the upgrade: PCR 14 is extended; the anchor refuses, naming PCR 14
    citadel tpm pcr extend --index 14 --digest "$(hx firmware-2)" >/dev/null
    expect_fail 7 TPM0047 citadel tpm key sign anchor --input artifact --output s2.sig
    assert_contains "$ERR" "has not approved the PCR state now"
    assert_contains "$ERR" "PCR 14 (sha256) changed"
    assert_no_file s2.sig

    # the authority approves the new state; the same key signs again
    citadel tpm --json policy approve --authority release --pcr 14 >ap2.json
    v14=$(citadel tpm --json pcr show --index 14 | json - 'd["pcrs"][0]["value"]')
    assert_eq "$(json ap2.json 'd["pcrs"][0]["value"]')" "$v14"
    assert_ne "$(json ap2.json 'd["policy_digest"]')" "$(json ap1.json 'd["policy_digest"]')"
    citadel tpm key sign anchor --input artifact --output s3.sig >/dev/null
    citadel tpm key export-pub anchor --output after.pem >/dev/null
    cmp before.pem after.pem || fail "the anchor's public key changed across the upgrade"
    verify_ok after.pem s3.sig artifact
    assert_eq "$(citadel tpm --json key verify anchor --input artifact --signature s3.sig | json - 'd["valid"]')" true
    assert_eq "$(citadel tpm --json identity show anchor | json - 'd["version"]')" 1

    # another, unapproved state still refuses
    citadel tpm pcr extend --index 14 --digest "$(hx firmware-3)" >/dev/null
    expect_fail 7 TPM0047 citadel tpm key sign anchor --input artifact --output s4.sig
    assert_contains "$ERR" "PCR 14"
    assert_no_file s4.sig

    citadel tpm --json policy approvals --authority release >list.json
    assert_eq "$(json list.json 'd["count"]')" 2
    assert_eq "$(json list.json '[a["policy_digest"] for a in d["approvals"]]')" \
        "[\"$(json ap1.json 'd["policy_digest"]')\", \"$(json ap2.json 'd["policy_digest"]')\"]"
    doctor_consistent
}

# 2. A stored approval whose signature was modified: the TPM rejects it.
test_identity_tampered_approval_refused() {
    init_vtpm
    authority_and_anchor
    echo data >f
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm key sign anchor --input f --output ok.sig >/dev/null
    # flip a bit in the last byte (the ECDSA s value) of the marshalled TPMT_SIGNATURE
    python3 - "$TPM_STORE_PATH" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
(i, s) = c.execute("SELECT id, signature FROM approvals").fetchone()
b = bytearray(s)
b[-1] ^= 0x01
c.execute("UPDATE approvals SET signature = ? WHERE id = ?", (bytes(b), i))
c.commit()
PY
    expect_fail 7 TPM0047 citadel tpm key sign anchor --input f --output bad.sig
    assert_contains "$ERR" "the TPM rejected the signature of approval 1 by release"
    assert_no_file bad.sig
    doctor_consistent
    # a fresh approval of the same state is preferred to the damaged one
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm key sign anchor --input f --output again.sig >/dev/null
    citadel tpm key export-pub anchor --output a.pem >/dev/null
    verify_ok a.pem again.sig f
}

# 3. Approvals by another authority do not unlock the identity, not even relabelled as the
# right authority's in the store.
test_identity_other_authority_does_not_unlock() {
    init_vtpm
    authority_and_anchor release anchor
    citadel tpm identity init rogue --authority >/dev/null
    citadel tpm identity init rogue-signer --authorized-by rogue --pcr-bind 14 >/dev/null
    echo data >f
    citadel tpm policy approve --authority rogue --pcr 14 >/dev/null
    # rogue's approval works for rogue's identity ...
    citadel tpm key sign rogue-signer --input f --output r.sig >/dev/null
    # ... not for release's
    expect_fail 7 TPM0047 citadel tpm key sign anchor --input f --output a.sig
    assert_contains "$ERR" "release has approved no state of these PCRs yet"
    assert_no_file a.sig
    # release approved the old state; in the new state only rogue has approved
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm pcr extend --index 14 --digest "$(hx other)" >/dev/null
    citadel tpm policy approve --authority rogue --pcr 14 >/dev/null
    expect_fail 7 TPM0047 citadel tpm key sign anchor --input f --output a.sig
    assert_contains "$ERR" "release has not approved the PCR state now"
    # relabel rogue's newest approval as release's: the TPM checks it against release's key
    python3 - "$TPM_STORE_PATH" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
(name,) = c.execute("SELECT authority_name FROM approvals WHERE authority = 'release'").fetchone()
(i,) = c.execute("SELECT max(id) FROM approvals WHERE authority = 'rogue'").fetchone()
c.execute("UPDATE approvals SET authority = 'release', authority_name = ? WHERE id = ?", (name, i))
c.commit()
PY
    expect_fail 7 TPM0047 citadel tpm key sign anchor --input f --output a.sig
    assert_contains "$ERR" "the TPM rejected the signature"
    assert_no_file a.sig
}

# An approval covers a PCR selection (list and bank) and its values: an identity bound to PCR 14
# is not unlocked by an approval of 14,15 or of the sha1 bank, and one approval unlocks every
# identity of the authority bound to the same selection. policy approve validation.
test_identity_approval_scope_and_approve_validation() {
    init_vtpm
    citadel tpm identity init release --authority >/dev/null
    citadel tpm identity init a --authorized-by release --pcr-bind 14 >/dev/null
    citadel tpm identity init a2 --authorized-by release --pcr-bind 14 >/dev/null
    citadel tpm identity init b --authorized-by release --pcr-bind 14,15 >/dev/null
    citadel tpm identity init c --authorized-by release --pcr-bind 14 --bank sha1 >/dev/null
    echo x >f
    citadel tpm policy approve --authority release --pcr 14,15 >/dev/null
    citadel tpm key sign b --input f --output b.sig >/dev/null
    expect_fail 7 TPM0047 citadel tpm key sign a --input f --output a.sig
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm key sign a --input f --output a.sig >/dev/null
    citadel tpm key sign a2 --input f --output a2.sig >/dev/null
    expect_fail 7 TPM0047 citadel tpm key sign c --input f --output c.sig
    citadel tpm --json policy approve --authority release --pcr 14 --bank sha1 >sha1.json
    assert_eq "$(json sha1.json '[d["pcrs"][0]["bank"], len(d["pcrs"][0]["value"])]')" '["sha1", 40]'
    citadel tpm key sign c --input f --output c.sig >/dev/null
    assert_eq "$(citadel tpm --json policy approvals | json - '[a["pcrs"] for a in d["approvals"]]')" '["14,15", "14", "14"]'

    # an authority with a password needs it to approve
    printf 'pw' >pw
    citadel tpm identity init locked --authority --auth-file pw >/dev/null
    expect_fail 7 TPM0024 citadel tpm policy approve --authority locked --pcr 14
    citadel tpm policy approve --authority locked --pcr 14 --auth-file pw >/dev/null
    # validation
    expect_fail 2 TPM0002 citadel tpm policy approve --pcr 14
    expect_fail 2 TPM0002 citadel tpm policy approve --authority release
    expect_fail 3 TPM0007 citadel tpm policy approve --authority a --pcr 14
    expect_fail 3 TPM0004 citadel tpm policy approve --authority nosuch --pcr 14
    expect_fail 2 TPM0044 citadel tpm policy approve --authority release --pcr 24
    # --plan changes nothing
    citadel tpm --plan policy approve --authority release --pcr 14 >/dev/null
    assert_eq "$(citadel tpm --json policy approvals | json - 'd["count"]')" 4
    assert_eq "$(citadel tpm --json policy approvals --authority locked | json - '[a["authority"] for a in d["approvals"]]')" '["locked"]'
    # every approval is in the operation log
    assert_eq "$(citadel tpm --json log show | json - 'len([e for e in d["events"] if e["action"] == "policy.approve" and e["outcome"] == "ok"])')" 4
}

# 4. --pcr-bind alone: the values at creation.
test_identity_pcr_bind_without_authority() {
    init_vtpm
    citadel tpm pcr extend --index 14 --digest "$(hx boot)" >/dev/null
    citadel tpm --json identity init pinned --pcr-bind 14 >p.json
    assert_eq "$(json p.json '[d["identity"]["pcr_bind"], d["identity"]["authorized_by"], d["identity"]["usage"]]')" \
        '["14", null, "code-signing"]'
    assert_eq "$(citadel tpm --json identity list | json - '[i["binding"] for i in d["identities"]]')" '["PCR 14"]'
    echo data >f
    citadel tpm key sign pinned --input f --output s.sig >/dev/null
    citadel tpm key export-pub pinned --output p.pem >/dev/null
    verify_ok p.pem s.sig f
    citadel tpm pcr extend --index 14 --digest "$(hx update)" >/dev/null
    expect_fail 7 TPM0047 citadel tpm key sign pinned --input f --output s2.sig
    assert_contains "$ERR" "PCR 14"
    assert_no_file s2.sig
    doctor_consistent
}

# 5. identity init validation; show and list.
test_identity_init_validation_show_list() {
    init_vtpm
    citadel tpm identity init release --authority >/dev/null
    citadel tpm key create plain >/dev/null
    expect_fail 2 TPM0002 citadel tpm identity init a --usage bogus
    assert_contains "$ERR" "unknown identity usage: bogus"
    expect_fail 2 TPM0002 citadel tpm identity init b --authorized-by release
    assert_contains "$ERR" "--authorized-by needs --pcr-bind"
    expect_fail 3 TPM0007 citadel tpm identity init c --authorized-by plain --pcr-bind 14
    assert_contains "$ERR" "plain is not an identity"
    citadel tpm identity init signer >/dev/null
    expect_fail 3 TPM0007 citadel tpm identity init d --authorized-by signer --pcr-bind 14
    assert_contains "$ERR" "signer is not an authority"
    expect_fail 3 TPM0004 citadel tpm identity init e --authorized-by nosuch --pcr-bind 14
    expect_fail 2 TPM0002 citadel tpm identity init f --authority --usage tls-server
    expect_fail 2 TPM0002 citadel tpm identity init g --authority --authorized-by release
    expect_fail 2 TPM0002 citadel tpm identity init h --pcr-bind 14 --policy p
    expect_fail 3 TPM0005 citadel tpm identity init signer
    expect_fail 3 TPM0005 citadel tpm identity init plain --usage tls-client
    # none of the refused ones was created
    assert_eq "$(citadel tpm --json identity list | json - '[i["name"] for i in d["identities"]]')" '["release", "signer"]'

    citadel tpm identity init web --usage tls-server --algorithm ecc-p384 >/dev/null
    citadel tpm identity init anchor --authorized-by release --pcr-bind 14 >/dev/null
    citadel tpm --json identity show anchor >a.json
    assert_eq "$(json a.json '[d["path"], d["kind"], d["algorithm"], d["version"]]')" '["anchor", "key", "ecc-p256", 1]'
    assert_eq "$(json a.json '[d["identity"][k] for k in ("usage", "authority", "authorized_by", "pcr_bind")]')" \
        '["code-signing", false, "release", "14"]'
    assert_eq "$(json a.json 'len(d["policy_digest"])')" 64
    assert_eq "$(json a.json '"certificate" in d')" false
    citadel tpm --json identity show release >r.json
    assert_eq "$(json r.json '[d["identity"]["usage"], d["identity"]["authority"], d["authorizes"]]')" \
        '["authority", true, ["anchor"]]'
    assert_eq "$(json r.json '"policy_digest" in d')" false
    assert_eq "$(citadel tpm --json identity show web | json - '[d["identity"]["usage"], d["algorithm"]]')" \
        '["tls-server", "ecc-p384"]'
    citadel tpm --json identity list >l.json
    assert_eq "$(json l.json 'd["count"]')" 4
    assert_eq "$(json l.json '{i["name"]: [i["usage"], i["binding"], i["certificate"], i["status"]] for i in d["identities"]}')" \
        '{"anchor": ["code-signing", "authorized by release (PCR 14)", "-", "active"], "release": ["authority", "-", "-", "active"], "signer": ["code-signing", "-", "-", "active"], "web": ["tls-server", "-", "-", "active"]}'
    # a plain key is not an identity
    expect_fail 3 TPM0007 citadel tpm identity show plain
    expect_fail 3 TPM0004 citadel tpm identity show nosuch
    # every key command works on an identity
    assert_contains "$(citadel tpm --json key list)" '"anchor"'
    citadel tpm identity show anchor | grep -q "authorized_by: *release" || fail "text output lacks authorized_by"
}

# 6. rotate and delete.
test_identity_rotate_and_delete() {
    init_vtpm
    authority_and_anchor
    echo data >f
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    d1=$(citadel tpm --json identity show anchor | json - 'd["policy_digest"]')
    citadel tpm key export-pub anchor --output v1.pem >/dev/null
    citadel tpm --json identity rotate anchor >rot.json
    assert_eq "$(json rot.json '[d["previous_version"], d["version"]]')" '[1, 2]'
    assert_contains "$(json rot.json 'd["certificate"]')" "the new key has none"
    citadel tpm --json identity show anchor >a.json
    assert_eq "$(json a.json '[d["version"], d["identity"]["authorized_by"], d["identity"]["pcr_bind"], d["policy_digest"]]')" \
        "[2, \"release\", \"14\", \"$d1\"]"
    # the rotated key signs in the approved state, with a new public key
    citadel tpm key sign anchor --input f --output s2.sig >/dev/null
    citadel tpm key export-pub anchor --output v2.pem >/dev/null
    ! cmp -s v1.pem v2.pem || fail "rotate kept the same key"
    verify_ok v2.pem s2.sig f
    # and is still bound: another state refuses until approved
    citadel tpm pcr extend --index 14 --digest "$(hx next)" >/dev/null
    expect_fail 7 TPM0047 citadel tpm key sign anchor --input f --output s3.sig
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm key sign anchor --input f --output s3.sig >/dev/null
    verify_ok v2.pem s3.sig f

    # an authority that authorizes identities: rotate refused, delete refused without --force
    expect_fail 3 TPM0008 citadel tpm identity rotate release
    assert_contains "$ERR" "anchor is authorized by release"
    assert_eq "$(citadel tpm --json identity show release | json - 'd["version"]')" 1
    expect_fail 3 TPM0008 citadel tpm identity delete release
    assert_contains "$ERR" "--force"
    citadel tpm identity show release >/dev/null
    # an authority nobody uses rotates like any identity
    citadel tpm identity init spare --authority >/dev/null
    assert_eq "$(citadel tpm --json identity rotate spare | json - 'd["version"]')" 2
    # --force deletes it; approvals already made keep working, no new ones can be made
    citadel tpm identity delete release --force >/dev/null
    expect_fail 3 TPM0004 citadel tpm identity show release
    citadel tpm key sign anchor --input f --output s4.sig >/dev/null
    verify_ok v2.pem s4.sig f
    expect_fail 3 TPM0004 citadel tpm policy approve --authority release --pcr 14
    # an ordinary identity deletes without --force
    citadel tpm identity delete anchor >/dev/null
    expect_fail 3 TPM0004 citadel tpm identity show anchor
    doctor_consistent
}

# 7. CSRs: signed in the TPM, accepted by openssl, subject, SAN and EKU as asked.
test_identity_csr() {
    init_vtpm
    local id alg usage eku
    for line in "p256 ecc-p256 code-signing Code Signing" "p384 ecc-p384 tls-server TLS Web Server" \
        "r2048 rsa-2048 tls-client TLS Web Client"; do
        read -r id alg usage eku <<<"$line"
        citadel tpm identity init "$id" --algorithm "$alg" --usage "$usage" >/dev/null
        citadel tpm --json identity csr "$id" --subject "/CN=$id.example.org/O=Example Org" \
            --san "DNS:$id.example.org,IP:192.0.2.1" --output "$id.csr" >"$id.json"
        assert_eq "$(json "$id.json" '[d["identity"], d["usage"], d["output"]]')" "[\"$id\", \"$usage\", \"$id.csr\"]"
        out=$(openssl req -verify -in "$id.csr" -noout 2>&1) || fail "openssl req -verify rejected $id.csr: $out"
        assert_contains "$out" "verify OK"
        txt=$(openssl req -in "$id.csr" -noout -text)
        assert_contains "$txt" "Subject: CN = $id.example.org, O = Example Org"
        assert_contains "$txt" "DNS:$id.example.org, IP Address:192.0.2.1"
        assert_contains "$txt" "$eku"
        assert_contains "$txt" "Digital Signature"
        # the CSR carries the identity's public key
        openssl req -in "$id.csr" -noout -pubkey >"$id.req.pem"
        citadel tpm key export-pub "$id" --output "$id.pem" >/dev/null
        cmp "$id.req.pem" "$id.pem" || fail "the CSR's public key is not $id's"
    done
    assert_contains "$(openssl req -in p384.csr -noout -text)" "ecdsa-with-SHA384"
    assert_contains "$(openssl req -in r2048.csr -noout -text)" "sha256WithRSAEncryption"
    # comma form of the subject, printed when there is no --output
    citadel tpm identity csr p256 --subject "CN=a.example.org,O=X" >p.csr
    openssl req -verify -in p.csr -noout 2>/dev/null || fail "printed CSR does not verify"
    assert_contains "$(openssl req -in p.csr -noout -subject)" "CN = a.example.org, O = X"

    expect_fail 2 TPM0002 citadel tpm identity csr p256 --subject garbage --output g.csr
    assert_contains "$ERR" "invalid subject component"
    expect_fail 2 TPM0002 citadel tpm identity csr p256 --subject /XX=a --output g.csr
    expect_fail 2 TPM0002 citadel tpm identity csr p256 --output g.csr
    expect_fail 2 TPM0002 citadel tpm identity csr p256 --subject /CN=a --san bogus --output g.csr
    assert_no_file g.csr
    citadel tpm identity init release --authority >/dev/null
    expect_fail 2 TPM0002 citadel tpm identity csr release --subject /CN=a --output g.csr
    assert_contains "$ERR" "authority"
    citadel tpm key create plain >/dev/null
    expect_fail 3 TPM0007 citadel tpm identity csr plain --subject /CN=a --output g.csr

    # a PCR-bound identity in a wrong state: the TPM refuses to sign the CSR
    citadel tpm identity init bound --pcr-bind 14 >/dev/null
    citadel tpm identity csr bound --subject /CN=bound --output b1.csr >/dev/null
    citadel tpm pcr extend --index 14 --digest "$(hx x)" >/dev/null
    expect_fail 7 TPM0047 citadel tpm identity csr bound --subject /CN=bound --output b2.csr
    assert_no_file b2.csr
    authority_and_anchor release2 anchor
    expect_fail 7 TPM0047 citadel tpm identity csr anchor --subject /CN=anchor --output b3.csr
    assert_no_file b3.csr
    citadel tpm policy approve --authority release2 --pcr 14 >/dev/null
    citadel tpm identity csr anchor --subject /CN=anchor --output b3.csr >/dev/null
    openssl req -verify -in b3.csr -noout 2>/dev/null || fail "the authorized identity's CSR does not verify"
}

make_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
        -subj "/CN=Test CA" -days 2 2>/dev/null || fail "openssl could not make a CA"
}

# issue CSR CERT: the test CA signs the CSR, copying its extensions.
issue() {
    openssl x509 -req -in "$1" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -copy_extensions copyall \
        -out "$2" 2>/dev/null || fail "openssl could not sign $1"
}

# 8. Certificates.
test_identity_cert_import() {
    init_vtpm
    make_ca
    citadel tpm identity init web --usage tls-server >/dev/null
    citadel tpm identity init other >/dev/null
    citadel tpm identity csr web --subject /CN=web.example.org --san DNS:web.example.org --output web.csr >/dev/null
    issue web.csr web.pem
    openssl verify -CAfile ca.pem web.pem >/dev/null || fail "the issued certificate does not verify"
    fp=$(openssl x509 -in web.pem -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')

    # a certificate for another key: refused, nothing stored
    expect_fail 3 TPM0054 citadel tpm identity cert-import other --input web.pem
    assert_contains "$ERR" "the certificate is not for other"
    assert_eq "$(citadel tpm --json identity show other | json - '"certificate" in d')" false
    assert_eq "$(citadel tpm --json identity list | json - '[i["certificate"] for i in d["identities"]]')" '["-", "-"]'
    # garbage, a missing file, no --input
    head -c 500 /dev/urandom >junk
    expect_fail 2 TPM0043 citadel tpm identity cert-import web --input junk
    expect_fail 2 TPM0029 citadel tpm identity cert-import web --input nofile
    expect_fail 2 TPM0002 citadel tpm identity cert-import web
    assert_eq "$(citadel tpm --json identity show web | json - '"certificate" in d')" false

    citadel tpm --json identity cert-import web --input web.pem >imp.json
    assert_eq "$(json imp.json '[d["identity"], d["version"], d["certificate"]["fingerprint_sha256"]]')" "[\"web\", 1, \"$fp\"]"
    citadel tpm --json identity show web >w.json
    assert_eq "$(json w.json '[d["certificate"][k] for k in ("subject", "issuer", "fingerprint_sha256")]')" \
        "[\"/CN=web.example.org\", \"/CN=Test CA\", \"$fp\"]"
    json w.json 'd["certificate"]["pem"]' >stored.pem
    cmp <(openssl x509 -in stored.pem -outform der) <(openssl x509 -in web.pem -outform der) ||
        fail "the stored certificate differs from the imported one"
    assert_eq "$(citadel tpm --json identity list | json - '{i["name"]: i["certificate"] for i in d["identities"]}')" \
        '{"other": "-", "web": "/CN=web.example.org"}'
    # DER is accepted too
    openssl x509 -in web.pem -outform der -out web.der
    citadel tpm identity cert-import web --input web.der >/dev/null

    # after rotate the new key version has no certificate; the old one is refused for it
    citadel tpm identity rotate web >/dev/null
    citadel tpm --json identity show web >w2.json
    assert_eq "$(json w2.json '[d["version"], "certificate" in d]')" '[2, false]'
    expect_fail 3 TPM0054 citadel tpm identity cert-import web --input web.pem
    citadel tpm identity csr web --subject /CN=web.example.org --output web2.csr >/dev/null
    issue web2.csr web2.pem
    citadel tpm identity cert-import web --input web2.pem >/dev/null
    assert_ne "$(citadel tpm --json identity show web | json - 'd["certificate"]["fingerprint_sha256"]')" "$fp"
    doctor_consistent
}

# 9. A YAML policy with authorized_by, used by a plain key.
test_identity_yaml_authorized_by_policy() {
    init_vtpm
    citadel tpm identity init release --authority >/dev/null
    printf 'name: fw\nrequires:\n  authorized_by: release\n  pcr: [{index: 14}]\n' >fw.yaml
    citadel tpm --json policy compile fw.yaml >c.json
    d=$(json c.json 'd["digest"]')
    assert_eq "${#d}" 64
    assert_eq "$(json c.json '[d["requires"]["authorized_by"]["authority"], d["requires"]["pcr"]]')" \
        '["release", [{"index": 14, "bank": "sha256"}]]'
    citadel tpm key create app/signer --policy fw >/dev/null
    echo data >f
    # nothing approved yet
    rc=0
    citadel tpm --json policy test fw >t0.json || rc=$?
    assert_eq "$rc" 7
    assert_eq "$(json t0.json '[d["satisfied"], [c["status"] for c in d["checks"]]]')" '[false, ["pass", "fail"]]'
    expect_fail 7 TPM0047 citadel tpm key sign app/signer --input f --output s.sig
    assert_no_file s.sig
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm --json policy test fw >t1.json
    assert_eq "$(json t1.json '[d["satisfied"], d["session_digest"]]')" "[true, \"$d\"]"
    assert_contains "$(json t1.json 'd["checks"][1]["detail"]')" "approval 1 by release"
    citadel tpm key sign app/signer --input f --output s.sig >/dev/null
    citadel tpm key export-pub app/signer --output k.pem >/dev/null
    verify_ok k.pem s.sig f
    ex=$(citadel tpm policy explain fw)
    assert_contains "$ex" "the authority release has approved"
    assert_contains "$ex" "PCR 14 (sha256)"
    # the key counts as authorized by release
    assert_eq "$(citadel tpm --json identity show release | json - 'd["authorizes"]')" '["app/signer", "fw"]'
    expect_fail 3 TPM0008 citadel tpm identity rotate release
    # a new state: unsatisfied until approved
    citadel tpm pcr extend --index 14 --digest "$(hx v2)" >/dev/null
    rc=0
    citadel tpm --json policy test fw >t2.json || rc=$?
    assert_eq "$rc" 7
    assert_eq "$(json t2.json 'd["satisfied"]')" false
    expect_fail 7 TPM0047 citadel tpm key sign app/signer --input f --output s2.sig
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm key sign app/signer --input f --output s2.sig >/dev/null
    verify_ok k.pem s2.sig f

    # with auth_value: the password is needed too
    printf 'pw' >pw
    printf 'name: fwpw\nrequires:\n  authorized_by: release\n  pcr: [{index: 14}]\n  auth_value: true\n' >fwpw.yaml
    citadel tpm policy compile fwpw.yaml >/dev/null
    citadel tpm key create app/pw --policy fwpw --auth-file pw >/dev/null
    citadel tpm key sign app/pw --input f --output p.sig --auth-file pw >/dev/null
    printf 'bad' >bad
    expect_fail 7 TPM0024 citadel tpm key sign app/pw --input f --output p2.sig --auth-file bad
    assert_no_file p2.sig
    citadel tpm lockout reset >/dev/null

    # refused forms
    printf 'name: p\nrequires:\n  authorized_by: release\n  pcr: [{index: 14, value: "%064d"}]\n' 0 >v.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile v.yaml
    assert_contains "$ERR" "leave value out"
    printf 'name: p\nrequires:\n  authorized_by: release\n  pcr: [{index: 14}]\n  locality: [0]\n' >l.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile l.yaml
    printf 'name: p\nrequires:\n  authorized_by: release\n  any_of:\n    - auth_value: true\n    - pcr: [{index: 7}]\n' >o.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile o.yaml
    printf 'name: p\nrequires:\n  authorized_by: release\n' >n.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile n.yaml
    printf 'name: p\nrequires:\n  authorized_by: nosuch\n  pcr: [{index: 14}]\n' >m.yaml
    expect_fail 3 TPM0004 citadel tpm policy compile m.yaml
    citadel tpm key create plain >/dev/null
    printf 'name: p\nrequires:\n  authorized_by: plain\n  pcr: [{index: 14}]\n' >k.yaml
    expect_fail 3 TPM0007 citadel tpm policy compile k.yaml
    printf 'name: p\nrequires:\n  any_of:\n    - authorized_by: release\n    - pcr: [{index: 7}]\n' >nested.yaml
    expect_fail 7 TPM0052 citadel tpm policy compile nested.yaml
    assert_eq "$(citadel tpm --json policy list | json - '[p["name"] for p in d["policies"]]')" '["fw", "fwpw"]'
}

# 10. key create --pcr 16. On the vtpm backend PCRs 16-23 start from their reset value in each
# process (README), so the extend and the refusal have to happen in one process: batch.
test_identity_key_pcr16_extend_reset() {
    init_vtpm
    echo data >f
    cat >cmds <<C
key create k16 --pcr 16
pcr reset --index 16
key sign k16 --input $PWD/f --output $PWD/s1.sig
pcr extend --index 16 --data $PWD/f
key sign k16 --input $PWD/f --output $PWD/s2.sig
pcr reset --index 16
key sign k16 --input $PWD/f --output $PWD/s3.sig
C
    rc=0
    citadel tpm batch --keep-going --input cmds >out 2>err || rc=$?
    assert_eq "$rc" 7 "batch exit status (one refused command)"
    assert_contains "$(cat err)" "error[TPM0047]"
    assert_contains "$(cat err)" "PCR 16"
    assert_file s1.sig
    assert_no_file s2.sig
    assert_file s3.sig
    citadel tpm key export-pub k16 --output k.pem >/dev/null
    verify_ok k.pem s1.sig f
    verify_ok k.pem s3.sig f
}

# 11a. The core flow on the mock backend (one process).
# (Needs test_regression_second_authorized_signature_in_one_process's fix: the second signature
# by an authorized identity in one process was refused with TPM0052.)
test_identity_flow_on_mock() {
    echo data >f
    local h2
    h2=$(hx two)
    cat >cmds <<C
identity init release --authority
identity init anchor --authorized-by release --pcr-bind 14
policy approve --authority release --pcr 14
key sign anchor --input $PWD/f --output $PWD/s1.sig
key export-pub anchor --output $PWD/a.pem
pcr extend --index 14 --digest $h2
key sign anchor --input $PWD/f --output $PWD/s2.sig
policy approve --authority release --pcr 14
key sign anchor --input $PWD/f --output $PWD/s3.sig
C
    rc=0
    citadel tpm --backend mock batch --keep-going --input cmds >out 2>err || rc=$?
    assert_eq "$rc" 7
    assert_contains "$(cat err)" "error[TPM0047]"
    assert_contains "$(cat err)" "release has not approved the PCR state now"
    assert_no_file s2.sig
    verify_ok a.pem s1.sig f
    verify_ok a.pem s3.sig f
}

# 11b. The core flow on swtpm, a process per command; PCR 16 keeps its value across processes.
test_identity_flow_on_swtpm() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    init_vtpm
    authority_and_anchor
    echo data >f
    expect_fail 7 TPM0047 citadel tpm key sign anchor --input f --output s0.sig
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm key sign anchor --input f --output s1.sig >/dev/null
    citadel tpm key export-pub anchor --output a.pem >/dev/null
    verify_ok a.pem s1.sig f
    tpm2_pcrextend -T "$SWTPM_TCTI" "14:sha256=$(hx update)"
    expect_fail 7 TPM0047 citadel tpm key sign anchor --input f --output s2.sig
    assert_contains "$ERR" "PCR 14"
    assert_no_file s2.sig
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm key sign anchor --input f --output s3.sig >/dev/null
    verify_ok a.pem s3.sig f
    # PCR 16 on a TPM that stays up
    citadel tpm key create k16 --pcr 16 >/dev/null
    citadel tpm key sign k16 --input f --output k1.sig >/dev/null
    citadel tpm pcr extend --index 16 --data f >/dev/null
    expect_fail 7 TPM0047 citadel tpm key sign k16 --input f --output k2.sig
    assert_no_file k2.sig
    citadel tpm pcr reset --index 16 >/dev/null
    citadel tpm key sign k16 --input f --output k3.sig >/dev/null
    doctor_consistent
    # nothing left loaded in a TPM without a resource manager
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-transient)" "" "transient handles left loaded"
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-loaded-session)" "" "sessions left loaded"
}

# ---- regressions (bugs found by these tests, fixed) ----

# KNOWN BUG 1: in one process (batch, the mock backend, a library user), the second use of an
# identity authorized by an authority fails with TPM0052 "the policy's authority key is missing
# or damaged". authority_public() in src/lib/core/identities.c unmarshals the authority's
# public area into an uninitialised TPM2B_PUBLIC (cit__policy_authorize's `TPM2B_PUBLIC pub;`);
# Tss2_MU_TPM2B_PUBLIC_Unmarshal refuses a destination whose size field is not 0, so the
# outcome depends on stack contents (the first use in a process usually works with -O2; with
# -O0 even that fails). cit__public_unmarshal() memsets first; authority_public() does not.
test_regression_second_authorized_signature_in_one_process() {
    init_vtpm
    echo data >f
    cat >cmds <<C
identity init release --authority
identity init anchor --authorized-by release --pcr-bind 14
policy approve --authority release --pcr 14
key sign anchor --input $PWD/f --output $PWD/s1.sig
key sign anchor --input $PWD/f --output $PWD/s2.sig
C
    rc=0
    citadel tpm batch --input cmds >out 2>err || rc=$?
    assert_not_contains "$(cat err)" "TPM0052"
    assert_eq "$rc" 0 "batch: $(cat err)"
    citadel tpm key export-pub anchor --output a.pem >/dev/null
    verify_ok a.pem s1.sig f
    verify_ok a.pem s2.sig f
}

# KNOWN BUG 2: `key rotate AUTH` rotates an authority that authorizes identities; `identity rotate
# AUTH` refuses the same with TPM0008. The identities' policies name the old key, so after
# the rotation every new approval is made with the new key and they never sign in a new state.
test_regression_key_rotate_strands_authorized_identities() {
    init_vtpm
    authority_and_anchor
    echo data >f
    rc=0
    citadel tpm key rotate release >/dev/null 2>err || rc=$?
    [ "$rc" != 0 ] || {
        # show the damage: a new state approved by the rotated authority does not unlock anchor
        citadel tpm pcr extend --index 14 --digest "$(hx new)" >/dev/null
        citadel tpm policy approve --authority release --pcr 14 >/dev/null
        citadel tpm key sign anchor --input f --output s.sig >/dev/null 2>&1 ||
            fail "key rotate of an authority in use succeeded and stranded anchor: approvals by the rotated key do not unlock it"
        fail "key rotate of an authority in use succeeded (identity rotate refuses with TPM0008)"
    }
    assert_eq "$rc" 3
    assert_contains "$(cat err)" "error[TPM0008]"
}

# KNOWN BUG 3: `key delete AUTH` deletes an authority in use without --force (identity delete
# refuses with TPM0008).
test_regression_key_delete_of_authority_in_use() {
    init_vtpm
    authority_and_anchor
    rc=0
    citadel tpm key delete release >/dev/null 2>err || rc=$?
    [ "$rc" != 0 ] || fail "key delete of an authority in use succeeded without --force"
    assert_contains "$(cat err)" "error[TPM0008]"
    citadel tpm identity show release >/dev/null
}

# KNOWN BUG 4: an authority "signs approvals, nothing else" (identity init --help), but `key sign`
# signs anything with it. An approval is the authority's signature over SHA-256(PolicyPCR
# digest), so `key sign AUTH --input <32-byte PCR policy digest>` is an approval of any state,
# made outside `policy approve` (no policy.approve event). The second half of this test shows
# that such a signature, stored as an approval, unlocks the identity.
test_regression_key_sign_with_authority_forges_approvals() {
    init_vtpm
    authority_and_anchor
    echo data >f
    citadel tpm pcr extend --index 14 --digest "$(hx unapproved)" >/dev/null
    # the PolicyPCR digest of the state now, from a plain policy
    printf 'name: now\nrequires:\n  pcr: [{index: 14}]\n' >now.yaml
    d=$(citadel tpm --json policy compile now.yaml | json - 'd["digest"]')
    printf '%s' "$d" | xxd -r -p >pd.bin
    rc=0
    citadel tpm key sign release --input pd.bin --encoding raw --output forged.raw >/dev/null 2>err || rc=$?
    if [ "$rc" == 0 ]; then
        python3 - "$TPM_STORE_PATH" "$d" <<'PY'
import sqlite3, struct, sys, time
db, d = sys.argv[1], sys.argv[2]
raw = open("forged.raw", "rb").read()
r, s = raw[:32], raw[32:]
sig = struct.pack(">HHH", 0x0018, 0x000B, 32) + r + struct.pack(">H", 32) + s  # TPMT_SIGNATURE, ECDSA/SHA-256
c = sqlite3.connect(db)
(name,) = c.execute("SELECT v.tpm_name FROM objects o JOIN object_versions v ON v.object_id = o.id "
                    "AND v.version = o.version WHERE o.path = 'release'").fetchone()
c.execute("INSERT INTO approvals(authority, authority_name, policy_digest, pcrs, signature, created_at) "
          "VALUES('release', ?, ?, '[]', ?, ?)", (name.hex(), d, sig, int(time.time())))
c.commit()
PY
        if citadel tpm key sign anchor --input f --output s.sig >/dev/null 2>&1; then
            fail "key sign with an authority made a signature that the TPM accepted as an approval"
        fi
        fail "key sign with an authority succeeded (an authority signs approvals only)"
    fi
    assert_no_file forged.raw
}
