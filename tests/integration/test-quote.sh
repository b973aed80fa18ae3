# SPDX-License-Identifier: Apache-2.0
# Attestation keys and quotes on the embedded vTPM (and the mock backend and swtpm):
# `attest ak-create|ak-show|quote|verify`. Every bad input fails its own check with its own code;
# the quote's bytes are parsed here with python (struct), not with citadel, and the event log
# that replays is written here too.

# statuses FILE: "check=status[:code] ..." of an `attest verify --json` report.
statuses() {
    json "$1" '" ".join(c["check"] + "=" + c["status"] + (":" + c["code"] if "code" in c else "") for c in d["checks"])'
}

# verify_ok FILE ARGS...: `attest verify --json ARGS` must pass every check; the report goes to FILE.
verify_ok() {
    local f=$1 rc=0
    shift
    citadel tpm --json attest verify "$@" >"$f" 2>"$f.err" || rc=$?
    assert_eq "$rc" 0 "attest verify $* exit status; stderr: $(cat "$f.err")"
    assert_eq "$(json "$f" 'd["valid"]')" true
}

# verify_fails CODE FILE ARGS...: `attest verify --json ARGS` must exit with CODE's status (9 for
# the quote checks; VERIFY_EXIT overrides); the first failed check has CODE, which is also the
# error on stderr. The report goes to FILE.
verify_fails() {
    local code=$1 f=$2 rc=0 want=${VERIFY_EXIT:-9}
    shift 2
    citadel tpm --json attest verify "$@" >"$f" 2>"$f.err" || rc=$?
    assert_eq "$rc" "$want" "attest verify $* exit status; stderr: $(cat "$f.err")"
    assert_eq "$(json "$f" 'd["valid"]')" false
    assert_eq "$(json "$f" '[c["code"] for c in d["checks"] if c["status"] == "fail"][0]')" "$code" "first failed check"
    assert_eq "$(json "$f.err" 'd["error"]["code"]')" "$code" "error on stderr"
    assert_eq "$(json "$f.err" 'd["error"]["exit_status"]')" "$want"
}

# attest_fields FILE: the quote's TPMS_ATTEST, parsed with python: "magic type nonce_hex
# pcr_digest_hex" (TPM 2.0 part 2, 10.12.12: big endian, TPM2B = u16 size + bytes).
attest_fields() {
    python3 - "$1" <<'EOF'
import base64, json, struct, sys
a = base64.b64decode(json.load(open(sys.argv[1]))["attest"])
magic, typ = struct.unpack(">IH", a[:6])
o = 6
def tpm2b():
    global o
    n, = struct.unpack(">H", a[o:o + 2]); v = a[o + 2:o + 2 + n]; o += 2 + n
    return v
tpm2b()                    # qualifiedSigner
nonce = tpm2b()            # extraData
o += 17 + 8                # clockInfo, firmwareVersion
count, = struct.unpack(">I", a[o:o + 4]); o += 4
for _ in range(count):     # TPMS_PCR_SELECTION: hash, sizeofSelect, bitmap
    o += 3 + a[o + 2]
digest = tpm2b()
assert o == len(a), "trailing bytes in TPMS_ATTEST"
print("%08x %04x %s %s" % (magic, typ, nonce.hex(), digest.hex()))
EOF
}

# edit_quote IN OUT PYTHON: OUT is IN with the python statement applied to the parsed JSON `d`.
edit_quote() {
    python3 -c 'import base64, json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(d, open(sys.argv[2], "w"), indent=2)' "$1" "$2" "$3"
}

# flip_b64 FIELD OFFSET: a python statement for edit_quote that flips one bit of byte OFFSET of
# the base64 field FIELD.
flip_b64() {
    printf 'b = bytearray(base64.b64decode(d["%s"])); b[%d] ^= 1; d["%s"] = base64.b64encode(bytes(b)).decode()' "$1" "$2" "$1"
}

test_quote_ak_create_and_show() {
    init_vtpm
    citadel tpm --json attest ak-create att/ak >ak.json
    citadel tpm --json attest ak-create att/rsa --algorithm rsa-2048 >rsa.json
    assert_eq "$(json ak.json '[d["kind"], d["algorithm"], d["scheme"], d["usage"], d["metadata"]["ek"]]')" \
        '["ak", "ecc-p256", "ecdsa", "attest", "ecc-p256"]'
    assert_eq "$(json rsa.json '[d["kind"], d["algorithm"], d["scheme"], d["metadata"]["ek"]]')" \
        '["ak", "rsa-2048", "rsassa", "rsa-2048"]'
    for k in ak rsa; do
        citadel tpm --json attest ak-show "att/$k" >"$k.show.json"
        assert_eq "$(json "$k.show.json" 'd["attributes"]')" \
            '{"restricted": true, "sign": true, "fixed_tpm": true, "fixed_parent": true, "sensitive_data_origin": true}'
        json "$k.show.json" 'd["ak_public_pem"]' >"$k.pem"
        # the name is nameAlg || SHA-256(TPMT_PUBLIC), computed here from the marshalled public
        name=$(json "$k.show.json" 'd["ak_tpm2b_public_base64"]' | python3 -c 'import base64, hashlib, struct, sys
b = base64.b64decode(sys.stdin.read()); n, = struct.unpack(">H", b[:2]); assert n == len(b) - 2
print("000b" + hashlib.sha256(b[2:]).hexdigest())')
        assert_eq "$(json "$k.show.json" 'd["ak_name"]')" "$name" "$k name"
        # the TPMT_PUBLIC attributes word: fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign
        attrs=$(json "$k.show.json" 'd["ak_tpm2b_public_base64"]' | python3 -c 'import base64, sys
b = base64.b64decode(sys.stdin.read()); print(b[6:10].hex())')
        assert_eq "$attrs" 00050072 "$k objectAttributes"
    done
    openssl pkey -pubin -in ak.pem -text -noout | grep -q prime256v1 || fail "the ECC AK is not P-256"
    openssl pkey -pubin -in rsa.pem -text -noout | grep -q '(2048 bit)' || fail "the RSA AK is not RSA 2048"
    assert_ne "$(json ak.show.json 'd["ak_name"]')" "$(json rsa.show.json 'd["ak_name"]')"
    # the text output shows the attributes and the PEM
    out=$(citadel tpm attest ak-show att/ak)
    assert_contains "$out" "restricted:            yes"
    assert_contains "$out" "BEGIN PUBLIC KEY"
    # an AK signs only TPM-made structures: `key sign` and `key export-pub` refuse it (kind ak)
    printf 'data' >msg
    expect_fail 3 TPM0007 citadel tpm key sign att/ak --input msg
    assert_contains "$ERR" "not a key"
    assert_no_file msg.sig
    # ak-show and quote refuse a key that is not an AK
    citadel tpm key create plain >/dev/null
    expect_fail 3 TPM0007 citadel tpm attest ak-show plain
    expect_fail 3 TPM0007 citadel tpm attest quote --ak plain --pcr 0 --nonce 00
    # a path that exists, an algorithm an AK is not, a path that does not exist
    expect_fail 3 TPM0005 citadel tpm attest ak-create att/ak
    expect_fail 3 TPM0005 citadel tpm attest ak-create plain
    expect_fail 5 TPM0023 citadel tpm attest ak-create att/p384 --algorithm ecc-p384
    expect_fail 3 TPM0004 citadel tpm attest ak-show att/p384
    # the duplicate did not replace the AK
    assert_eq "$(citadel tpm --json attest ak-show att/ak | json - 'd["ak_name"]')" "$(json ak.show.json 'd["ak_name"]')"
    # a plan changes nothing
    assert_eq "$(citadel tpm --json --plan attest ak-create att/planned | json - 'd["plan"]')" true
    expect_fail 3 TPM0004 citadel tpm attest ak-show att/planned
}

test_quote_verify_passes() {
    init_vtpm
    citadel tpm attest ak-create ak >/dev/null
    citadel tpm attest ak-create rak --algorithm rsa-2048 >/dev/null
    citadel tpm --json attest ak-show ak | json - 'd["ak_public_pem"]' >ak.pem
    printf 'app' >app
    citadel tpm pcr extend --index 11 --data app >/dev/null
    n=$(openssl rand -hex 20)
    citadel tpm --json attest quote --ak ak --pcr 0,7,11 --nonce "$n" --output q.json >res.json
    assert_eq "$(json res.json '[d["ak"], d["nonce"], d["output"]]')" "[\"ak\", \"$n\", \"q.json\"]"
    assert_eq "$(json q.json 'sorted(d)')" '["ak_name", "ak_public_pem", "attest", "nonce", "pcrs", "signature", "version"]'
    assert_eq "$(json q.json 'd["version"]')" 1
    # the attested bytes: TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, our nonce
    read -r magic typ qnonce digest <<<"$(attest_fields q.json)"
    assert_eq "$magic $typ $qnonce" "ff544347 8018 $n"
    # the values: PCR 11 is SHA-256(zeros || SHA-256(app)), computed here; they are what `pcr
    # show` reads; and the attested PCR digest is SHA-256 of the three, concatenated in order
    p11=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes(32) + hashlib.sha256(b"app").digest()).hexdigest())')
    assert_eq "$(json q.json 'd["pcrs"]["sha256"]["11"]')" "$p11" "PCR 11"
    assert_eq "$(json q.json 'd["pcrs"]["sha256"]["0"]')" "$(printf '0%.0s' {1..64})" "PCR 0"
    citadel tpm --json pcr show --index 0,7,11 >now.json
    assert_eq "$(json now.json '{str(p["index"]): p["value"] for p in d["pcrs"]}')" "$(json q.json 'd["pcrs"]["sha256"]')"
    assert_eq "$digest" "$(json q.json 'd["pcrs"]["sha256"]' | python3 -c 'import hashlib, json, sys
p = json.load(sys.stdin); print(hashlib.sha256(b"".join(bytes.fromhex(p[i]) for i in ("0", "7", "11"))).hexdigest())')" "PCR digest"
    assert_eq "$(json q.json 'd["ak_name"]')" "$(citadel tpm --json attest ak-show ak | json - 'd["ak_name"]')"
    # verify: the four checks pass, with the key in the file and with the enrolled key
    verify_ok v.json --quote q.json --nonce "$n"
    assert_eq "$(statuses v.json)" "format=pass signature=pass nonce=pass pcr_digest=pass"
    assert_contains "$(json v.json 'd["ak_trusted_from"]')" "the quote file itself"
    verify_ok v2.json --quote q.json --nonce "$n" --ak-pub ak.pem
    assert_eq "$(json v2.json 'd["ak_trusted_from"]')" ak.pem
    assert_eq "$(json v2.json 'd["pcrs"]')" "$(json q.json 'd["pcrs"]')"
    # the text output says so
    out=$(citadel tpm attest verify --quote q.json --nonce "$n")
    assert_contains "$out" "valid:           yes"
    assert_contains "$out" "pcr_digest  pass"
    # the RSA AK, other banks, and the quote shown instead of written
    n2=$(openssl rand -hex 32)
    citadel tpm attest quote --ak rak --pcr 0-3 --bank sha1 --nonce "$n2" --output rq.json >/dev/null
    verify_ok rv.json --quote rq.json --nonce "$n2"
    assert_eq "$(json rq.json 'sorted(d["pcrs"]["sha1"], key=int)')" '["0", "1", "2", "3"]'
    assert_eq "$(json rq.json 'len(d["pcrs"]["sha1"]["0"])')" 40
    citadel tpm --json attest quote --ak ak --pcr 7 --bank sha384 --nonce "$n2" | json - 'd["quote"]' >sq.json
    verify_ok sv.json --quote sq.json --nonce "$n2"
    # the longest nonce TPM2B_DATA holds: 64 bytes
    n64=$(openssl rand -hex 64)
    citadel tpm attest quote --ak ak --pcr 0 --nonce "$n64" --output q64.json >/dev/null
    verify_ok v64.json --quote q64.json --nonce "$n64"
    # a quote needs no workspace to verify (a remote verifier has none)
    TPM_STORE_PATH=$T/nowhere/store.db verify_ok vr.json --quote q.json --nonce "$n" --ak-pub ak.pem
    assert_no_file "$T/nowhere"
}

# quote_setup: a workspace with AKs ak and ak2 (ECC) and rak (RSA), PCR 11 extended, and a quote
# q.json of PCRs 0,7,11 by ak over $N.
quote_setup() {
    init_vtpm
    citadel tpm attest ak-create ak >/dev/null
    citadel tpm attest ak-create ak2 >/dev/null
    citadel tpm attest ak-create rak --algorithm rsa-2048 >/dev/null
    printf 'app' >app
    citadel tpm pcr extend --index 11 --data app >/dev/null
    N=$(openssl rand -hex 20)
    citadel tpm attest quote --ak ak --pcr 0,7,11 --nonce "$N" --output q.json >/dev/null
    verify_ok good.json --quote q.json --nonce "$N"
}

# A replayed quote (or another verifier's): the nonce check fails, the others pass.
test_quote_other_nonce() {
    quote_setup
    other=$(openssl rand -hex 20)
    verify_fails TPM0092 v.json --quote q.json --nonce "$other"
    assert_eq "$(statuses v.json)" "format=pass signature=pass nonce=fail:TPM0092 pcr_digest=pass"
    assert_contains "$(json v.json '[c["detail"] for c in d["checks"] if c["check"] == "nonce"][0]')" "answers nonce $N"
    # a second quote over a new nonce does not answer the first one either
    citadel tpm attest quote --ak ak --pcr 0,7,11 --nonce "$other" --output q2.json >/dev/null
    verify_ok v2.json --quote q2.json --nonce "$other"
    verify_fails TPM0092 v3.json --quote q2.json --nonce "$N"
    # the nonce in the JSON is only informative: editing it changes nothing
    edit_quote q.json q3.json "d['nonce'] = '$other'"
    verify_fails TPM0092 v4.json --quote q3.json --nonce "$other"
    # a prefix of the nonce is another nonce
    verify_fails TPM0092 v5.json --quote q.json --nonce "${N:0:38}"
    # the text output: the table, and the code on stderr
    rc=0
    citadel tpm attest verify --quote q.json --nonce "$other" >out 2>err || rc=$?
    assert_eq "$rc" 9
    assert_contains "$(cat out)" "nonce       fail"
    assert_contains "$(cat err)" "error[TPM0092]: the quote failed the nonce check"
}

# PCR values edited in the file: TPM0093, whatever the edit.
test_quote_edited_pcr_values() {
    quote_setup
    edit_quote q.json e1.json "d['pcrs']['sha256']['7'] = '11' * 32"
    verify_fails TPM0093 v1.json --quote e1.json --nonce "$N"
    assert_eq "$(statuses v1.json)" "format=pass signature=pass nonce=pass pcr_digest=fail:TPM0093"
    # a value removed, or cut short
    edit_quote q.json e2.json "del d['pcrs']['sha256']['11']"
    verify_fails TPM0093 v2.json --quote e2.json --nonce "$N"
    assert_contains "$(cat v2.json)" "PCR 11 (sha256) is quoted but its value is missing or malformed"
    edit_quote q.json e3.json "d['pcrs']['sha256']['0'] = d['pcrs']['sha256']['0'][:62]"
    verify_fails TPM0093 v3.json --quote e3.json --nonce "$N"
    # the values of two PCRs swapped: the same bytes, another order
    edit_quote q.json e4.json "p = d['pcrs']['sha256']; p['0'], p['11'] = p['11'], p['0']"
    verify_fails TPM0093 v4.json --quote e4.json --nonce "$N"
    # a value for a PCR, or a bank, the quote does not cover: the TPM never attested it
    edit_quote q.json e5.json "d['pcrs']['sha256']['12'] = '00' * 32"
    verify_fails TPM0093 v5.json --quote e5.json --nonce "$N"
    assert_contains "$(cat v5.json)" "PCR 12 (sha256) that the quote does not cover"
    edit_quote q.json e6.json "d['pcrs']['sha1'] = {'0': '00' * 20}"
    verify_fails TPM0093 v6.json --quote e6.json --nonce "$N"
    edit_quote q.json e7.json "d['pcrs']['sha256']['07'] = d['pcrs']['sha256']['7']"
    verify_fails TPM0093 v7.json --quote e7.json --nonce "$N"
}

# The attest or signature bytes modified: the signature check fails (TPM0091); bytes that are no
# longer a quote fail the format check (TPM0090).
test_quote_modified_bytes() {
    quote_setup
    # byte 64 of TPMS_ATTEST is in clockInfo (magic 4, type 2, signer 2+34, extraData 2+20)
    edit_quote q.json m1.json "$(flip_b64 attest 64)"
    verify_fails TPM0091 v1.json --quote m1.json --nonce "$N"
    assert_eq "$(statuses v1.json)" "format=pass signature=fail:TPM0091 nonce=pass pcr_digest=pass"
    # the last byte: the PCR digest (the reported values no longer match it either)
    last=$(($(json q.json 'len(__import__("base64").b64decode(d["attest"]))') - 1))
    edit_quote q.json m2.json "$(flip_b64 attest "$last")"
    verify_fails TPM0091 v2.json --quote m2.json --nonce "$N"
    assert_eq "$(statuses v2.json)" "format=pass signature=fail:TPM0091 nonce=pass pcr_digest=fail:TPM0093"
    # one bit of the nonce in the attest: signature and nonce fail
    edit_quote q.json m3.json "$(flip_b64 attest 44)"
    verify_fails TPM0091 v3.json --quote m3.json --nonce "$N"
    assert_eq "$(statuses v3.json)" "format=pass signature=fail:TPM0091 nonce=fail:TPM0092 pcr_digest=pass"
    # the signature's r (TPMT_SIGNATURE: sigAlg 2, hashAlg 2, r size 2, r)
    edit_quote q.json m4.json "$(flip_b64 signature 10)"
    verify_fails TPM0091 v4.json --quote m4.json --nonce "$N"
    # the magic: not TPM-generated, so not a quote at all
    edit_quote q.json m5.json "$(flip_b64 attest 0)"
    verify_fails TPM0090 v5.json --quote m5.json --nonce "$N"
    assert_eq "$(statuses v5.json)" "format=fail:TPM0090"
    # a byte appended to each
    edit_quote q.json m6.json "d['attest'] = base64.b64encode(base64.b64decode(d['attest']) + b'x').decode()"
    verify_fails TPM0090 v6.json --quote m6.json --nonce "$N"
    edit_quote q.json m7.json "d['signature'] = base64.b64encode(base64.b64decode(d['signature']) + b'x').decode()"
    verify_fails TPM0090 v7.json --quote m7.json --nonce "$N"
}

# Verified with another AK's public key: the signature check fails (TPM0091).
test_quote_other_ak() {
    quote_setup
    citadel tpm --json attest ak-show ak2 | json - 'd["ak_public_pem"]' >ak2.pem
    citadel tpm --json attest ak-show rak | json - 'd["ak_public_pem"]' >rak.pem
    verify_fails TPM0091 v1.json --quote q.json --nonce "$N" --ak-pub ak2.pem
    assert_eq "$(statuses v1.json)" "format=pass signature=fail:TPM0091 nonce=pass pcr_digest=pass"
    assert_eq "$(json v1.json 'd["ak_trusted_from"]')" ak2.pem
    verify_fails TPM0091 v2.json --quote q.json --nonce "$N" --ak-pub rak.pem
    # the key in the file swapped for another AK's: the same
    edit_quote q.json s.json "d['ak_public_pem'] = open('ak2.pem').read()"
    verify_fails TPM0091 v3.json --quote s.json --nonce "$N"
    # a quote made by ak2 does not verify as ak's
    citadel tpm attest quote --ak ak2 --pcr 0,7,11 --nonce "$N" --output q2.json >/dev/null
    citadel tpm --json attest ak-show ak | json - 'd["ak_public_pem"]' >ak.pem
    verify_fails TPM0091 v4.json --quote q2.json --nonce "$N" --ak-pub ak.pem
    verify_ok v5.json --quote q2.json --nonce "$N" --ak-pub ak2.pem
    # --ak-pub that is not a public key
    printf 'junk\n' >junk.pem
    expect_fail 2 TPM0043 citadel tpm attest verify --quote q.json --nonce "$N" --ak-pub junk.pem
}

# Files that are not quotes, and bad nonces: each with its code and its class's exit status.
test_quote_malformed_input() {
    quote_setup
    head -c 100 q.json >trunc.json
    expect_fail 9 TPM0090 citadel tpm attest verify --quote trunc.json --nonce "$N"
    assert_contains "$ERR" "JSON error"
    printf 'hello\n' >notjson.json
    expect_fail 9 TPM0090 citadel tpm attest verify --quote notjson.json --nonce "$N"
    printf '[1, 2]\n' >array.json
    expect_fail 9 TPM0090 citadel tpm attest verify --quote array.json --nonce "$N"
    for field in attest signature pcrs; do
        edit_quote q.json "no-$field.json" "del d['$field']"
        expect_fail 9 TPM0090 citadel tpm attest verify --quote "no-$field.json" --nonce "$N"
        assert_contains "$ERR" "it needs attest and signature"
    done
    edit_quote q.json b64.json "d['attest'] = 'not base64!'"
    expect_fail 9 TPM0090 citadel tpm attest verify --quote b64.json --nonce "$N"
    edit_quote q.json pcrs.json "d['pcrs'] = ['0']"
    expect_fail 9 TPM0090 citadel tpm attest verify --quote pcrs.json --nonce "$N"
    # no key in the file and none given
    edit_quote q.json nokey.json "del d['ak_public_pem']"
    expect_fail 9 TPM0090 citadel tpm attest verify --quote nokey.json --nonce "$N"
    assert_contains "$ERR" "give --ak-pub"
    citadel tpm --json attest ak-show ak | json - 'd["ak_public_pem"]' >ak.pem
    verify_ok nk.json --quote nokey.json --nonce "$N" --ak-pub ak.pem
    # unreadable, empty, and over the 96 MiB limit (sparse: nothing is written)
    expect_fail 2 TPM0029 citadel tpm attest verify --quote missing.json --nonce "$N"
    : >empty.json
    expect_fail 2 TPM0031 citadel tpm attest verify --quote empty.json --nonce "$N"
    truncate -s $((96 * 1024 * 1024 + 1)) big.json
    expect_fail 2 TPM0030 citadel tpm attest verify --quote big.json --nonce "$N"
    assert_contains "$ERR" "100663296"
    # nonces: not hex, odd length, empty, over 64 bytes; for quote and for verify
    for bad in xyz abc "" "$(openssl rand -hex 65)"; do
        expect_fail 2 TPM0002 citadel tpm attest verify --quote q.json --nonce "$bad"
        assert_contains "$ERR" "the nonce must be 1 to 64 bytes of hex"
        expect_fail 2 TPM0002 citadel tpm attest quote --ak ak --pcr 0 --nonce "$bad" --output x.json
    done
    assert_no_file x.json
    # missing options, bad PCR lists and banks
    expect_fail 2 TPM0002 citadel tpm attest verify --quote q.json
    expect_fail 2 TPM0002 citadel tpm attest verify --nonce "$N"
    expect_fail 2 TPM0002 citadel tpm attest quote --ak ak --nonce "$N"
    expect_fail 2 TPM0002 citadel tpm attest quote --pcr 0 --nonce "$N"
    expect_fail 2 TPM0044 citadel tpm attest quote --ak ak --pcr 24 --nonce "$N"
    expect_fail 5 TPM0045 citadel tpm attest quote --ak ak --pcr 0 --bank md5 --nonce "$N"
    expect_fail 3 TPM0004 citadel tpm attest quote --ak nosuch --pcr 0 --nonce "$N"
    expect_fail 2 TPM0029 citadel tpm attest quote --ak ak --pcr 0 --nonce "$N" --eventlog missing.bin
    # a plan reads nothing from the TPM and writes nothing
    assert_eq "$(citadel tpm --json --plan attest quote --ak ak --pcr 0 --nonce "$N" --output p.json | json - 'd["plan"]')" true
    assert_no_file p.json
}

# See it fail after a PCR change: a baseline saved, a quote that equals it, PCR 11 extended, a new
# quote that differs from it in PCR 11 only (TPM0094 naming the PCR, the old and the new value).
test_quote_baseline_after_pcr_change() {
    init_vtpm
    citadel tpm attest ak-create ak >/dev/null
    citadel tpm pcr baseline save boot --index 0,7,11 >/dev/null
    n1=$(openssl rand -hex 20)
    citadel tpm attest quote --ak ak --pcr 0,7,11 --nonce "$n1" --output q1.json >/dev/null
    verify_ok v1.json --quote q1.json --nonce "$n1" --baseline boot
    assert_eq "$(statuses v1.json)" "format=pass signature=pass nonce=pass pcr_digest=pass baseline=pass"
    printf 'new kernel' >kernel
    citadel tpm pcr extend --index 11 --data kernel >/dev/null
    new11=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes(32) + hashlib.sha256(b"new kernel").digest()).hexdigest())')
    n2=$(openssl rand -hex 20)
    citadel tpm attest quote --ak ak --pcr 0,7,11 --nonce "$n2" --output q2.json >/dev/null
    verify_fails TPM0094 v2.json --quote q2.json --nonce "$n2" --baseline boot
    assert_eq "$(statuses v2.json)" "format=pass signature=pass nonce=pass pcr_digest=pass baseline=fail:TPM0094"
    assert_eq "$(json v2.json '[c["changed"] for c in d["checks"] if c["check"] == "baseline"][0]')" \
        "[{\"index\": \"11\", \"baseline\": \"$(printf '0%.0s' {1..64})\", \"quoted\": \"$new11\"}]"
    assert_contains "$(json v2.json.err 'd["error"]["message"]')" "the quote failed the baseline check: 1 PCR(s) differ from baseline boot"
    # the text output names PCR 11 with both values
    rc=0
    citadel tpm attest verify --quote q2.json --nonce "$n2" --baseline boot >out 2>err || rc=$?
    assert_eq "$rc" 9
    assert_contains "$(grep -E '^ +11 ' out)" "$new11"
    assert_contains "$(cat err)" "error[TPM0094]"
    # the first quote still equals the baseline (it is a record of that moment); without
    # --baseline the new quote is valid
    verify_ok v3.json --quote q1.json --nonce "$n1" --baseline boot
    verify_ok v4.json --quote q2.json --nonce "$n2"
    # a quote of fewer PCRs than the baseline: the others are "(not quoted)", not assumed equal
    citadel tpm attest quote --ak ak --pcr 0,7 --nonce "$n2" --output q3.json >/dev/null
    verify_fails TPM0094 v5.json --quote q3.json --nonce "$n2" --baseline boot
    assert_eq "$(json v5.json '[x["quoted"] for c in d["checks"] if c["check"] == "baseline" for x in c["changed"]]')" \
        '["(not quoted)"]'
    # ...and values added to the file for the missing PCR are refused before the baseline
    edit_quote q3.json q4.json "d['pcrs']['sha256']['11'] = '00' * 32"
    verify_fails TPM0093 v6.json --quote q4.json --nonce "$n2" --baseline boot
    assert_eq "$(statuses v6.json)" "format=pass signature=pass nonce=pass pcr_digest=fail:TPM0093"
    # a baseline that does not exist fails its check with the store's code (and its exit status)
    VERIFY_EXIT=3 verify_fails TPM0004 v7.json --quote q2.json --nonce "$n2" --baseline nosuch
    # so does an event log that cannot be read
    VERIFY_EXIT=2 verify_fails TPM0029 v9.json --quote q2.json --nonce "$n2" --eventlog missing.bin
    # a new baseline accepts the change
    citadel tpm pcr baseline save boot2 --index 0,7,11 >/dev/null
    verify_ok v8.json --quote q2.json --nonce "$n2" --baseline boot2
}

# mklog OUT PCR:DATA...: a crypto-agile event log (Spec ID event, SHA-256 only) with one EV_IPL
# event per argument, written here with python, not citadel. Prints each event's digest, then
# "PCR=value" for every PCR the log extends, replayed here.
mklog() {
    python3 - "$@" <<'EOF2'
import hashlib, struct, sys
out, evs = sys.argv[1], [a.split(":", 1) for a in sys.argv[2:]]
# TCG_EfiSpecIDEventStruct: signature, platformClass, spec 2.0 errata 0, uintnSize 2, one
# algorithm (sha256, 32 bytes), no vendor info; in a TCG_PCR_EVENT of type EV_NO_ACTION
spec = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, 1) + struct.pack("<HH", 0x000B, 32) + b"\0"
log = struct.pack("<II", 0, 3) + b"\0" * 20 + struct.pack("<I", len(spec)) + spec
pcrs = {}
for pcr, data in evs:
    pcr, data = int(pcr), data.encode()
    d = hashlib.sha256(data).digest()
    # TCG_PCR_EVENT2: pcrIndex, eventType EV_IPL, TPML_DIGEST_VALUES (1: sha256), event
    log += struct.pack("<IIIH", pcr, 0x0D, 1, 0x000B) + d + struct.pack("<I", len(data)) + data
    pcrs[pcr] = hashlib.sha256(pcrs.get(pcr, bytes(32)) + d).digest()
    print(d.hex())
open(out, "wb").write(log)
for p in sorted(pcrs):
    print("%d=%s" % (p, pcrs[p].hex()))
EOF2
}

# An event log that replays to the quoted values: PCR 11 extended with the digests of a log
# made here; PCRs 0 and 7, which the log does not touch, are still zero, as the replay says.
test_quote_eventlog_replays() {
    init_vtpm
    citadel tpm attest ak-create ak >/dev/null
    mklog log.bin "11:linux /vmlinuz root=/dev/vda1" "11:initrd /initrd.img" "12:credentials" >made
    for d in $(grep -v = made | head -2); do citadel tpm pcr extend --index 11 --digest "$d" >/dev/null; done
    citadel tpm pcr extend --index 12 --digest "$(grep -v = made | sed -n 3p)" >/dev/null
    n=$(openssl rand -hex 20)
    citadel tpm attest quote --ak ak --pcr 0,7,11,12 --nonce "$n" --eventlog log.bin --output q.json >/dev/null
    # the TPM's PCR 11 and 12 are our replay's; the log is embedded byte for byte
    assert_eq "$(json q.json 'd["pcrs"]["sha256"]["11"]')" "$(sed -n 's/^11=//p' made)"
    assert_eq "$(json q.json 'd["pcrs"]["sha256"]["12"]')" "$(sed -n 's/^12=//p' made)"
    json q.json 'd["eventlog"]' | base64 -d >embedded.bin
    cmp embedded.bin log.bin || fail "the embedded event log is not the file"
    verify_ok v.json --quote q.json --nonce "$n"
    assert_eq "$(statuses v.json)" "format=pass signature=pass nonce=pass pcr_digest=pass eventlog=pass"
    # the same log given to verify, for a quote that does not embed it
    citadel tpm attest quote --ak ak --pcr 11 --nonce "$n" --output plain.json >/dev/null
    verify_ok v2.json --quote plain.json --nonce "$n"
    assert_eq "$(statuses v2.json)" "format=pass signature=pass nonce=pass pcr_digest=pass"
    verify_ok v3.json --quote plain.json --nonce "$n" --eventlog log.bin
    assert_eq "$(statuses v3.json)" "format=pass signature=pass nonce=pass pcr_digest=pass eventlog=pass"
    # a log with one more event than was extended: PCR 11 named with both values
    mklog longer.bin "11:linux /vmlinuz root=/dev/vda1" "11:initrd /initrd.img" "12:credentials" \
        "11:something else" >made2
    verify_fails TPM0095 v4.json --quote q.json --nonce "$n" --eventlog longer.bin
    detail=$(json v4.json '[c["detail"] for c in d["checks"] if c["check"] == "eventlog"][0]')
    assert_contains "$detail" "PCR 11 (sha256): replayed $(sed -n 's/^11=//p' made2), reported $(sed -n 's/^11=//p' made)"
    assert_not_contains "$detail" "PCR 12"
    # --eventlog replaces the embedded log
    verify_ok v5.json --quote q.json --nonce "$n" --eventlog log.bin
    # the embedded log edited: a byte of the last event's digest (before its size and its 11
    # bytes of data), so the PCR it extends, 12, differs
    off=$(($(stat -c %s log.bin) - 11 - 4 - 10))
    edit_quote q.json e.json "b = bytearray(base64.b64decode(d['eventlog'])); b[$off] ^= 1; d['eventlog'] = base64.b64encode(bytes(b)).decode()"
    verify_fails TPM0095 v6.json --quote e.json --nonce "$n"
    assert_contains "$(cat v6.json)" "PCR 12 (sha256): replayed"
}

# A real firmware log (tests/data/eventlog) does not match the vTPM's PCRs: TPM0095 with every
# mismatch named; a log that does not parse fails the check with TPM0070.
test_quote_eventlog_mismatch() {
    init_vtpm
    citadel tpm attest ak-create ak >/dev/null
    log=$ROOT/tests/data/eventlog/event-sd-boot-fedora37.bin
    n=$(openssl rand -hex 20)
    citadel tpm attest quote --ak ak --pcr 0,7,11 --nonce "$n" --eventlog "$log" --output q.json >/dev/null
    json q.json 'd["eventlog"]' | base64 -d | cmp - "$log" || fail "the embedded log is not the file"
    verify_fails TPM0095 v.json --quote q.json --nonce "$n"
    assert_eq "$(statuses v.json)" "format=pass signature=pass nonce=pass pcr_digest=pass eventlog=fail:TPM0095"
    detail=$(json v.json '[c["detail"] for c in d["checks"] if c["check"] == "eventlog"][0]')
    citadel tpm --json attest eventlog replay "$log" >replay.json
    for p in 0 7; do
        want=$(json replay.json "d['pcrs']['sha256']['$p']")
        assert_ne "$want" "$(printf '0%.0s' {1..64})" "the log extends PCR $p"
        assert_contains "$detail" "PCR $p (sha256): replayed $want, reported $(printf '0%.0s' {1..64})"
    done
    # the log does not extend PCR 11, which is still zero: it matches
    assert_contains "$detail" "2 of 3 sha256 PCR values do not match"
    assert_not_contains "$detail" "PCR 11"
    # a log that does not parse: its own code, in the eventlog check
    citadel tpm attest quote --ak ak --pcr 0 --nonce "$n" --output plain.json >/dev/null
    verify_fails TPM0070 v2.json --quote plain.json --nonce "$n" --eventlog "$ROOT/tests/data/eventlog/specid-vendordata.bin"
    assert_eq "$(statuses v2.json)" "format=pass signature=pass nonce=pass pcr_digest=pass eventlog=fail:TPM0070"
    # the event log check runs only on values that passed the PCR digest check
    edit_quote q.json e.json "d['pcrs']['sha256']['0'] = '$(json replay.json "d['pcrs']['sha256']['0']")'"
    verify_fails TPM0093 v3.json --quote e.json --nonce "$n"
    assert_eq "$(statuses v3.json)" "format=pass signature=pass nonce=pass pcr_digest=fail:TPM0093"
}

# The same flow on the mock backend, in one process (batch).
test_quote_mock_batch() {
    n=$(openssl rand -hex 20)
    other=$(openssl rand -hex 20)
    cat >cmds <<C
attest ak-create ak
attest ak-create rak --algorithm rsa-2048
attest ak-show ak
attest quote --ak ak --pcr 0,7,11 --nonce $n --output $T/q.json
attest quote --ak rak --pcr 0,7 --nonce $n --output $T/rq.json
attest verify --quote $T/q.json --nonce $n
attest verify --quote $T/rq.json --nonce $n
C
    citadel tpm --backend mock --json batch --input cmds >flow.json 2>err || fail "mock batch failed: $(cat err)"
    assert_eq "$(grep -c '"valid": true' flow.json)" 2
    assert_eq "$(attest_fields q.json | cut -d' ' -f1-3)" "ff544347 8018 $n"
    # software verification needs no TPM: the mock's quote verifies in another process
    verify_ok v.json --quote q.json --nonce "$n"
    verify_ok rv.json --quote rq.json --nonce "$n"
    verify_fails TPM0092 v2.json --quote q.json --nonce "$other"
    printf 'attest ak-create ak\nattest quote --ak ak --pcr 0 --nonce %s --output %s/q2.json\n' "$n" "$T" |
        citadel tpm --backend mock batch >/dev/null
    verify_fails TPM0091 v3.json --quote q.json --nonce "$n" --ak-pub <(json q2.json 'd["ak_public_pem"]')
}

# The same flow on swtpm; nothing is left loaded in the TPM.
test_quote_swtpm() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    citadel tpm attest ak-create ak >/dev/null
    citadel tpm attest ak-create rak --algorithm rsa-2048 >/dev/null
    printf 'app' >app
    citadel tpm pcr extend --index 11 --data app >/dev/null
    n=$(openssl rand -hex 20)
    citadel tpm attest quote --ak ak --pcr 0,7,11 --nonce "$n" --output q.json >/dev/null
    citadel tpm attest quote --ak rak --pcr 0,7,11 --nonce "$n" --output rq.json >/dev/null
    verify_ok v.json --quote q.json --nonce "$n"
    verify_ok rv.json --quote rq.json --nonce "$n"
    assert_eq "$(json q.json 'd["pcrs"]["sha256"]["11"]')" \
        "$(python3 -c 'import hashlib; print(hashlib.sha256(bytes(32) + hashlib.sha256(b"app").digest()).hexdigest())')"
    assert_eq "$(tpm2_pcrread -T "$SWTPM_TCTI" sha256:11 | awk '$1 == "11:" {print tolower($2)}')" \
        "0x$(json q.json 'd["pcrs"]["sha256"]["11"]')"
    verify_fails TPM0092 v2.json --quote q.json --nonce "$(openssl rand -hex 20)"
    verify_fails TPM0091 v3.json --quote q.json --nonce "$n" --ak-pub <(json rq.json 'd["ak_public_pem"]')
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-transient)" "" "transient handles left loaded"
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-loaded-session)" "" "sessions left loaded"
}

# A verified quote names the authorities that approved its PCR state (PolicyAuthorize anchors).
test_verify_reports_the_approving_authority() {
    init_vtpm
    citadel tpm identity init release --authority >/dev/null
    citadel tpm attest ak-create ak >/dev/null
    n=$(openssl rand -hex 16)
    citadel tpm attest quote --ak ak --pcr 14 --nonce "$n" --output q0.json >/dev/null
    assert_eq "$(citadel tpm --json attest verify --quote q0.json --nonce "$n" | json - 'd["approved_by"]')" '[]'
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm attest quote --ak ak --pcr 7,14 --nonce "$n" --output q1.json >/dev/null
    assert_eq "$(citadel tpm --json attest verify --quote q1.json --nonce "$n" | json - '[a["authority"] for a in d["approved_by"]]')" '["release"]'
    # another state: not approved
    citadel tpm pcr extend --index 14 --digest "$(printf 'x' | sha256sum | cut -d' ' -f1)" >/dev/null
    citadel tpm attest quote --ak ak --pcr 14 --nonce "$n" --output q2.json >/dev/null
    assert_eq "$(citadel tpm --json attest verify --quote q2.json --nonce "$n" | json - 'd["approved_by"]')" '[]'
    # a verifier without a workspace gets no such field and creates nothing
    (export TPM_STORE_PATH=$T/none/store.db
     assert_eq "$(citadel tpm --json attest verify --quote q1.json --nonce "$n" | json - '"approved_by" in d')" false)
    [ ! -e "$T/none" ] || fail "verify created a workspace"
}

# Regressions from review: a bank key spelled another way ("SHA256") is not an unchecked extra
# set of values, and a signature over a weaker hash than SHA-256 is refused.
test_verify_refuses_other_bank_spellings_and_weak_hashes() {
    init_vtpm
    citadel tpm attest ak-create ak >/dev/null
    n=$(openssl rand -hex 16)
    citadel tpm attest quote --ak ak --pcr 0,7 --nonce "$n" --output q.json >/dev/null
    python3 - <<'PY'
import json
d = json.load(open("q.json"))
d["pcrs"]["SHA256"] = {"7": "ff" * 32}
json.dump(d, open("upper.json", "w"))
PY
    expect_fail 9 TPM0093 citadel tpm attest verify --quote upper.json --nonce "$n"
    python3 - <<'PY'
import base64, json, struct
d = json.load(open("q.json"))
sig = bytearray(base64.b64decode(d["signature"]))
assert struct.unpack(">H", sig[2:4])[0] == 0x000B
sig[2:4] = struct.pack(">H", 0x0004)  # claim SHA-1
d["signature"] = base64.b64encode(bytes(sig)).decode()
json.dump(d, open("sha1.json", "w"))
PY
    expect_fail 9 TPM0091 citadel tpm attest verify --quote sha1.json --nonce "$n"
}

# A persistent AK (ak-create --persist) quotes without deriving the EK or loading the AK; it
# still activates credentials (with the EK derived for that) and is evicted when deleted.
test_persistent_ak() {
    init_vtpm
    out=$(citadel tpm --json attest ak-create akp --persist)
    handle=$(printf '%s' "$out" | json - 'd["persistent_handle"]')
    assert_contains "$handle" 0x81
    n=$(openssl rand -hex 16)
    citadel tpm attest quote --ak akp --pcr 0,7 --nonce "$n" --output q.json >/dev/null
    citadel tpm attest verify --quote q.json --nonce "$n" >/dev/null
    citadel tpm --json ek show --algorithm ecc-p256 | json - 'd["public_key"]' >ek.pem
    name=$(citadel tpm --json attest ak-show akp | json - 'd["ak_name"]')
    head -c 32 /dev/urandom >s
    citadel tpm attest credential make --ek-pub ek.pem --ak-name "$name" --secret s --output c.json >/dev/null
    citadel tpm attest credential activate --ak akp --input c.json --output got >/dev/null
    cmp s got || fail "the persistent AK did not recover the secret"
    # the template path takes --persist too
    assert_contains "$(citadel tpm --json key create akt --template attestation-ak --persist | json - 'd["persistent_handle"]')" 0x81
    doctor_consistent
    citadel tpm object delete akp >/dev/null
    citadel tpm object delete akt >/dev/null
    doctor_consistent
    # the handle is free again: a new persistent AK may take it
    assert_eq "$(citadel tpm --json attest ak-create akq --persist | json - 'd["persistent_handle"]')" "$handle"
}

# vtpm_blob_edit PYTHON: rewrites the vTPM state container (docs/ARCHITECTURE.md: "CITVTPM\n",
# u32be version, u32be count, per blob u8 name length, name, u32be length, data; SHA-256 of it all)
# with the python statements applied to `blobs` (a dict name -> bytes) and `ctx` (the entries of
# the citadel.contexts blob: [id, version, data]); prints the entries' ids after the edit.
vtpm_blob_edit() {
    python3 - "$TPM_STORE_PATH.tpmstate" "$1" <<'PY'
import hashlib, struct, sys
p, code = sys.argv[1], sys.argv[2]
b = open(p, "rb").read()
assert b[:8] == b"CITVTPM\n" and hashlib.sha256(b[:-32]).digest() == b[-32:]
ver, n = struct.unpack(">II", b[8:16]); o = 16; blobs = {}
for _ in range(n):
    nl = b[o]; name = b[o + 1:o + 1 + nl].decode(); o += 1 + nl
    l, = struct.unpack(">I", b[o:o + 4]); blobs[name] = b[o + 4:o + 4 + l]; o += 4 + l
ctx, c, o = [], blobs.get("citadel.contexts", b""), 0
while o < len(c):
    i, v, l = struct.unpack(">qII", c[o:o + 16]); ctx.append([i, v, c[o + 16:o + 16 + l]]); o += 16 + l
exec(code)
if "citadel.contexts" in blobs or ctx:
    blobs["citadel.contexts"] = b"".join(struct.pack(">qII", i, v, len(d)) + d for i, v, d in ctx)
out = b"CITVTPM\n" + struct.pack(">II", ver, len(blobs))
for k, v in blobs.items():
    out += bytes([len(k)]) + k.encode() + struct.pack(">I", len(v)) + v
open(p, "wb").write(out + hashlib.sha256(out).digest())
print(" ".join(str(i) for i, _, _ in ctx))
PY
}

# object_id PATH: the object's row id in the store (read-only SQLite).
object_id() {
    python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("SELECT id FROM objects WHERE path = ?", (sys.argv[2],)).fetchone()[0])' "$TPM_STORE_PATH" "$1"
}

# quote_with AK PEM: a quote with AK that verifies against PEM (the AK's own public key).
quote_with() {
    local n
    n=$(openssl rand -hex 16)
    citadel tpm attest quote --ak "$1" --pcr 0,7 --nonce "$n" --output q.json >/dev/null
    verify_ok v.json --quote q.json --nonce "$n" --ak-pub "$2"
}

# An AK under the EK is loaded once the long way (EK, policy session, TPM2_Load); its context is
# kept in the vTPM state (citadel.contexts) and later quotes load that instead. A context that is
# damaged, of another object, or not in the state at all only sends the quote the long way: the
# quote is always signed by the right AK.
test_quote_ak_context_kept_in_vtpm_state() {
    init_vtpm
    citadel tpm attest ak-create a1 >/dev/null
    citadel tpm attest ak-create a2 >/dev/null
    citadel tpm --json attest ak-show a1 | json - 'd["ak_public_pem"]' >a1.pem
    citadel tpm --json attest ak-show a2 | json - 'd["ak_public_pem"]' >a2.pem
    # the store's object ids (no command shows them): read-only, straight from SQLite
    id1=$(object_id a1)
    id2=$(object_id a2)
    quote_with a1 a1.pem
    assert_eq "$(vtpm_blob_edit pass)" "$id1" "kept contexts after the first quote"
    quote_with a2 a2.pem
    assert_eq "$(vtpm_blob_edit pass)" "$id2 $id1" "the most recent first"
    quote_with a1 a1.pem # from the kept context
    assert_eq "$(vtpm_blob_edit pass)" "$id2 $id1" "a restored context is not saved again"
    # a2's context filed under a1: the name check refuses it, the long way re-keeps a1's
    vtpm_blob_edit 'ctx[0][0], ctx[1][0] = ctx[1][0], ctx[0][0]' >/dev/null
    quote_with a1 a1.pem
    quote_with a2 a2.pem
    assert_eq "$(vtpm_blob_edit pass)" "$id2 $id1"
    # a context the TPM rejects: a byte of its integrity digest (TPMS_CONTEXT: sequence, handle,
    # hierarchy, then the blob: u16 size, u16 digest size, digest...) changed; then its size
    vtpm_blob_edit 'd = bytearray(ctx[1][2]); d[22] ^= 1; ctx[1][2] = bytes(d)' >/dev/null
    quote_with a1 a1.pem
    vtpm_blob_edit 'd = bytearray(ctx[0][2]); d[17] ^= 0x40; ctx[0][2] = bytes(d)' >/dev/null
    quote_with a1 a1.pem
    assert_eq "$(vtpm_blob_edit pass)" "$id1 $id2" "the rejected context was replaced"
    # a damaged blob reads as empty
    vtpm_blob_edit 'blobs["citadel.contexts"] = b"\x00\x01\x02"; ctx.clear()' >/dev/null
    quote_with a2 a2.pem
    assert_eq "$(vtpm_blob_edit pass)" "$id2"
    # no blob at all (a state file from before)
    vtpm_blob_edit 'blobs.pop("citadel.contexts", None); ctx.clear()' >/dev/null
    quote_with a1 a1.pem
    assert_eq "$(vtpm_blob_edit pass)" "$id1"
    # at most 8 kept
    for i in 3 4 5 6 7 8 9 10 11; do
        citadel tpm attest ak-create "a$i" >/dev/null
        citadel tpm --json attest ak-show "a$i" | json - 'd["ak_public_pem"]' >"a$i.pem"
        quote_with "a$i" "a$i.pem"
    done
    assert_eq "$(vtpm_blob_edit pass | wc -w)" 8
    # a deleted AK's context goes with it
    before=$(vtpm_blob_edit pass)
    id11=$(object_id a11)
    assert_contains "$before" "$id11"
    citadel tpm object delete a11 >/dev/null
    after=$(vtpm_blob_edit pass)
    assert_eq "$(echo "$after" | wc -w)" 7 "kept contexts after the delete: $after"
    case " $after " in *" $id11 "*) fail "the deleted AK's context is still kept" ;; esac
    citadel tpm attest ak-create a11 >/dev/null
    citadel tpm --json attest ak-show a11 | json - 'd["ak_public_pem"]' >a11.pem
    quote_with a11 a11.pem
    doctor_consistent
}
