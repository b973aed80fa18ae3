# SPDX-License-Identifier: Apache-2.0
# TPM2_Certify against tools we did not write, on swtpm: a certification `tpm2_certify` makes
# (AK from tpm2_createek + tpm2_createak, key from tpm2_create) passes `citadel tpm attest
# certify-verify`, and fails it for another nonce or a duplicable key; our certification's
# signature verifies with `openssl dgst -verify` against the AK's PEM, and the key name it
# certifies is the one the TPM computes for key_public (tpm2_loadexternal).
# shellcheck source=tests/interop/interop-lib.bash
source "$ROOT/tests/interop/interop-lib.bash"
INTEROP_FILE=$ROOT/tests/interop/$(basename "${BASH_SOURCE[0]}")

# certify_ak ALG SCHEME PREFIX: tpm2_createek + tpm2_createak: PREFIX.ctx, PREFIX.pem and
# PREFIX.tss (TPM2B_PUBLIC). Nothing stays loaded.
certify_ak() {
    local alg=$1 scheme=$2 p=$3
    tpm2_createek -T "$SWTPM_TCTI" -c "$p.ek.ctx" -G "$alg" -u "$p.ek.pub" >/dev/null
    tpm2_createak -T "$SWTPM_TCTI" -C "$p.ek.ctx" -c "$p.ctx" -G "$alg" -g sha256 -s "$scheme" -u "$p.pem" -f pem \
        -n "$p.name" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    tpm2_flushcontext -T "$SWTPM_TCTI" -s
    tpm2_readpublic -T "$SWTPM_TCTI" -c "$p.ctx" -o "$p.tss" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
}

# tools_key ATTRS PREFIX: an ECC signing key with these attributes under an owner primary,
# loaded as PREFIX.ctx; PREFIX.pub (TPM2B_PUBLIC) and PREFIX.pem.
tools_key() {
    local attrs=$1 p=$2
    tpm2_createprimary -T "$SWTPM_TCTI" -C o -g sha256 -G ecc -c prim.ctx >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    tpm2_create -T "$SWTPM_TCTI" -C prim.ctx -G ecc -a "$attrs" -u "$p.pub" -r "$p.priv" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    tpm2_load -T "$SWTPM_TCTI" -C prim.ctx -u "$p.pub" -r "$p.priv" -c "$p.ctx" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    tpm2_readpublic -T "$SWTPM_TCTI" -c "$p.ctx" -f pem -o "$p.pem" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
}

# check_of REPORT CHECK: "status code" of one check of a certify-verify --json report.
check_of() {
    json "$1" "' '.join(str(c.get(k, '-')) for c in d['checks'] if c['check'] == '$2' for k in ('status', 'code'))"
}

itest_tpm2_certify_verifies_with_citadel() {
    start_swtpm
    export TPM_STORE_PATH=$T/none.db # software only: no workspace
    for a in ecc:ecdsa rsa:rsassa; do
        IFS=: read -r alg scheme <<<"$a"
        certify_ak "$alg" "$scheme" "$alg"
        tools_key "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign" "k$alg"
        # tpm2_certify (5.4) has no option for qualifying data: it always sends 00ff55aa
        tpm2_certify -T "$SWTPM_TCTI" -c "k$alg.ctx" -C "$alg.ctx" -g sha256 -o "$alg.att" -s "$alg.sig" >/dev/null
        tpm2_flushcontext -T "$SWTPM_TCTI" -t
        out=$(citadel tpm --json attest certify-verify --attest "$alg.att" --signature "$alg.sig" \
            --key-public "k$alg.pub" --ak-public "$alg.tss" --qualifying 00ff55aa) ||
            fail "citadel refused tpm2_certify's $alg certification: $out"
        assert_eq "$(printf '%s' "$out" | json - '" ".join(c["check"] + "=" + c["status"] for c in d["checks"])')" \
            "ak_public=pass format=pass signature=pass qualifying=pass name=pass key_attributes=pass"
        # the certified key is the one tpm2_readpublic shows
        printf '%s' "$out" | json - 'd["key_public_pem"]' >"k$alg.cit.pem"
        cmp -s <(openssl pkey -pubin -in "k$alg.pem" -outform der) <(openssl pkey -pubin -in "k$alg.cit.pem" -outform der) ||
            fail "$alg: the certified key is not tpm2_readpublic's"
        # ...and the AK is the one tpm2_createak wrote as PEM
        citadel tpm --json attest ak-public-check "$alg.tss" | json - 'd["ak_public_pem"]' >"$alg.cit.pem"
        cmp -s <(openssl pkey -pubin -in "$alg.pem" -outform der) <(openssl pkey -pubin -in "$alg.cit.pem" -outform der) ||
            fail "$alg: ak-public-check reads another key than tpm2_createak's"
        # a verifier that asked for a nonce refuses it
        expect_fail 9 TPM0193 citadel tpm attest certify-verify --attest "$alg.att" --signature "$alg.sig" \
            --key-public "k$alg.pub" --ak-public "$alg.tss" --qualifying "$(openssl rand -hex 32)"
    done
    # a duplicable key (no fixedTPM, no fixedParent) certified by a real AK: only the attribute
    # check fails, and says why
    tools_key "sensitivedataorigin|userwithauth|sign" dup
    tpm2_certify -T "$SWTPM_TCTI" -c dup.ctx -C ecc.ctx -g sha256 -o dup.att -s dup.sig >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    rc=0
    citadel tpm --json attest certify-verify --attest dup.att --signature dup.sig --key-public dup.pub \
        --ak-public ecc.tss --qualifying 00ff55aa >dup.json 2>dup.err || rc=$?
    assert_eq "$rc" 9
    assert_eq "$(json dup.err 'd["error"]["code"]')" TPM0195
    assert_eq "$(check_of dup.json signature)" "pass -"
    assert_eq "$(check_of dup.json name)" "pass -"
    assert_eq "$(check_of dup.json key_attributes)" "fail TPM0195"
    assert_contains "$(json dup.json "[c['detail'] for c in d['checks'] if c['check'] == 'key_attributes'][0]")" "not fixedTPM"
    # a key from tpm2_create with its default attributes (sign and decrypt) is refused too
    tools_key "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign|decrypt" both
    tpm2_certify -T "$SWTPM_TCTI" -c both.ctx -C ecc.ctx -g sha256 -o both.att -s both.sig >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    expect_fail 9 TPM0195 citadel tpm attest certify-verify --attest both.att --signature both.sig \
        --key-public both.pub --ak-public ecc.tss --qualifying 00ff55aa
    assert_contains "$ERR" "a decryption key"
    # tpm2_createak's AK public passes ak-public-check; a plain signing key's does not
    expect_fail 9 TPM0190 citadel tpm attest ak-public-check kecc.pub
    no_transient_handles "$SWTPM_TCTI"
}

# sig_to_openssl SIG.tss OUT: a TPMT_SIGNATURE (ECDSA or RSASSA) as openssl dgst takes it:
# ECDSA as DER Ecdsa-Sig-Value, RSASSA as the raw signature.
sig_to_openssl() {
    python3 - "$1" "$2" <<'PYEOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
alg, h = struct.unpack(">HH", b[:4])
assert h == 0x000B, "hash 0x%04x" % h
if alg == 0x0018:  # ECDSA: r, s as TPM2B
    n = struct.unpack(">H", b[4:6])[0]; r = b[6:6 + n]
    m = struct.unpack(">H", b[6 + n:8 + n])[0]; s = b[8 + n:8 + n + m]
    def der_int(x):
        x = x.lstrip(b"\0") or b"\0"
        if x[0] & 0x80:
            x = b"\0" + x
        return b"\x02" + bytes([len(x)]) + x
    body = der_int(r) + der_int(s)
    out = b"\x30" + bytes([len(body)]) + body
elif alg == 0x0014:  # RSASSA: TPM2B
    n = struct.unpack(">H", b[4:6])[0]; out = b[6:6 + n]
else:
    raise SystemExit("unexpected sigAlg 0x%04x" % alg)
open(sys.argv[2], "wb").write(out)
PYEOF
}

itest_our_certify_verifies_with_openssl() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    citadel tpm attest ak-create ak >/dev/null
    citadel tpm attest ak-create rak --algorithm rsa-2048 >/dev/null
    citadel tpm identity init devid --usage tls-client --algorithm ecc-p256 >/dev/null
    n=$(openssl rand -hex 32)
    for k in ak rak; do
        citadel tpm attest certify --ak "$k" --key devid --qualifying "$n" --output "$k.json" >/dev/null
        citadel tpm --json attest ak-show "$k" | json - 'd["ak_public_pem"]' >"$k.pem"
        json "$k.json" 'd["attest"]' | base64 -d >"$k.att"
        json "$k.json" 'd["signature"]' | base64 -d >"$k.sig"
        sig_to_openssl "$k.sig" "$k.sig.ossl"
        openssl dgst -sha256 -verify "$k.pem" -signature "$k.sig.ossl" "$k.att" >v.out 2>&1 ||
            fail "openssl refused our $k certification: $(cat v.out)"
        assert_contains "$(cat v.out)" "Verified OK"
        # one attest byte changed: openssl refuses it as well
        python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-10] ^= 1; open(sys.argv[2], "wb").write(b)' \
            "$k.att" "$k.att.bad"
        openssl dgst -sha256 -verify "$k.pem" -signature "$k.sig.ossl" "$k.att.bad" >/dev/null 2>&1 &&
            fail "openssl accepted a modified attest"
        # tpm2_print reads a TPM-generated certify (type 0x8017) with our qualifying data
        p=$(tpm2_print -t TPMS_ATTEST "$k.att" 2>/dev/null || true)
        assert_contains "$p" "magic: ff544347"
        assert_contains "$p" "type: 8017"
        assert_contains "$p" "extraData: $n"
    done
    # the certified name is the name the TPM computes for key_public (TPM2_LoadExternal)
    json ak.json 'd["key_public"]' | base64 -d >devid.pub
    tpm2_loadexternal -T "$SWTPM_TCTI" -C n -u devid.pub -c devid.ext.ctx -n devid.ext.name >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    assert_eq "$(od -An -tx1 devid.ext.name | tr -d ' \n')" "$(json ak.json 'd["key_name"]')"
    # the AK name our certification reports is tpm2_readpublic's for the AK's public area
    json ak.json 'd["ak_public"]' | base64 -d >ak.tss
    tpm2_loadexternal -T "$SWTPM_TCTI" -C n -u ak.tss -c ak.ext.ctx -n ak.ext.name >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    assert_eq "$(od -An -tx1 ak.ext.name | tr -d ' \n')" "$(json ak.json 'd["ak_name"]')"
    no_transient_handles "$SWTPM_TCTI"
}

interop_register
