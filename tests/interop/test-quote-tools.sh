# SPDX-License-Identifier: Apache-2.0
# Quotes against tools we did not write, on swtpm: citadel's quotes pass `tpm2_checkquote`
# (signature, nonce, PCR digest and the embedded event log), a quote `tpm2_quote` made with
# `tpm2_createek` + `tpm2_createak` passes `citadel tpm attest verify` and fails it when a PCR
# value is edited, and our AK's name and public key are what the TPM and `tpm2_readpublic`
# compute for its public area, whose template is tpm2_createak's.
# shellcheck source=tests/interop/interop-lib.bash
source "$ROOT/tests/interop/interop-lib.bash"
INTEROP_FILE=$ROOT/tests/interop/$(basename "${BASH_SOURCE[0]}")

swtpm_workspace() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
}

# split_quote Q.json PREFIX PCRS: PREFIX.msg (attest), PREFIX.sig (signature), PREFIX.pem (AK
# key), PREFIX.tss (TPM2B_PUBLIC, when the file has none: skipped) and PREFIX.pcrs (the values of
# the comma-separated PCRS of sha256 concatenated: the "values" format of tpm2_pcrread -o).
split_quote() {
    python3 - "$1" "$2" "$3" <<'EOF'
import base64, json, sys
d, p, sel = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3].split(",")
open(p + ".msg", "wb").write(base64.b64decode(d["attest"]))
open(p + ".sig", "wb").write(base64.b64decode(d["signature"]))
open(p + ".pem", "w").write(d["ak_public_pem"])
open(p + ".pcrs", "wb").write(b"".join(bytes.fromhex(d["pcrs"]["sha256"][i]) for i in sel))
EOF
}

# checkquote_ok ARGS / checkquote_fails WHY ARGS: tpm2_checkquote's verdict.
checkquote_ok() {
    local out
    out=$(tpm2_checkquote "$@" 2>&1) || fail "tpm2_checkquote $* refused our quote: $out"
}
checkquote_fails() {
    local why=$1 out
    shift
    if out=$(tpm2_checkquote "$@" 2>&1); then
        fail "tpm2_checkquote $* accepted a bad quote: $out"
    fi
    assert_contains "$out" "$why"
}

itest_our_quote_passes_tpm2_checkquote() {
    swtpm_workspace
    citadel tpm attest ak-create ak >/dev/null
    citadel tpm attest ak-create rak --algorithm rsa-2048 >/dev/null
    printf 'app' >app
    citadel tpm pcr extend --index 11 --data app >/dev/null
    n=$(openssl rand -hex 20)
    for k in ak rak; do
        citadel tpm attest quote --ak "$k" --pcr 0,7,11 --nonce "$n" --output "$k.json" >/dev/null
        split_quote "$k.json" "$k" 0,7,11
        # the signature over the attest bytes, and the nonce
        checkquote_ok -u "$k.pem" -m "$k.msg" -s "$k.sig" -q "$n"
        # ...and the PCR values in the file hash to the digest in the quote
        checkquote_ok -u "$k.pem" -m "$k.msg" -s "$k.sig" -q "$n" -f "$k.pcrs" -l sha256:0,7,11
        # the key as the TPM's TPM2B_PUBLIC (tss format) works as well
        citadel tpm --json attest ak-show "$k" | json - 'd["ak_tpm2b_public_base64"]' | base64 -d >"$k.tss"
        checkquote_ok -u "$k.tss" -m "$k.msg" -s "$k.sig" -q "$n" -f "$k.pcrs" -l sha256:0,7,11
        # tpm2_checkquote refuses what citadel refuses: another nonce, an edited PCR value
        checkquote_fails "Error validating nonce" -u "$k.pem" -m "$k.msg" -s "$k.sig" -q "$(openssl rand -hex 20)"
        python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[70] ^= 1; open(sys.argv[2], "wb").write(b)' \
            "$k.pcrs" "$k.pcrs.bad"
        checkquote_fails "PCR values failed to match" -u "$k.pem" -m "$k.msg" -s "$k.sig" -q "$n" -f "$k.pcrs.bad" -l sha256:0,7,11
    done
    # ak's quote with rak's key
    checkquote_fails "Verify signature failed" -u rak.pem -m ak.msg -s ak.sig -q "$n"
    # PCR 11's value is the one tpm2_pcrread reads
    tpm2_pcrread -T "$SWTPM_TCTI" sha256:11 -o p11.bin >/dev/null
    assert_eq "$(od -An -tx1 p11.bin | tr -d ' \n')" "$(json ak.json 'd["pcrs"]["sha256"]["11"]')"
    no_transient_handles "$SWTPM_TCTI"
}

# An event log embedded in our quote, checked by tpm2_checkquote -e against the PCR values.
itest_our_quote_eventlog_passes_tpm2_checkquote() {
    swtpm_workspace
    citadel tpm attest ak-create ak >/dev/null
    # a crypto-agile log with two EV_IPL events for PCR 12 (python), and PCR 12 extended the same
    python3 - log.bin >digests <<'EOF'
import hashlib, struct, sys
spec = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, 1) + struct.pack("<HH", 0x000B, 32) + b"\0"
log = struct.pack("<II", 0, 3) + b"\0" * 20 + struct.pack("<I", len(spec)) + spec
for data in (b"stage one", b"stage two"):
    d = hashlib.sha256(data).digest()
    log += struct.pack("<IIIH", 12, 0x0D, 1, 0x000B) + d + struct.pack("<I", len(data)) + data
    print(d.hex())
open(sys.argv[1], "wb").write(log)
EOF
    while read -r d; do citadel tpm pcr extend --index 12 --digest "$d" >/dev/null; done <digests
    n=$(openssl rand -hex 20)
    citadel tpm attest quote --ak ak --pcr 0,7,12 --nonce "$n" --eventlog log.bin --output q.json >/dev/null
    citadel tpm attest verify --quote q.json --nonce "$n" >/dev/null
    split_quote q.json q 0,7,12
    json q.json 'd["eventlog"]' | base64 -d >embedded.bin
    checkquote_ok -u q.pem -m q.msg -s q.sig -q "$n" -f q.pcrs -l sha256:0,7,12 -e embedded.bin
    # a log from another machine: both tools refuse it
    other=$ROOT/tests/data/eventlog/event.bin
    checkquote_fails "Eventlog and quote PCR mismatch" -u q.pem -m q.msg -s q.sig -q "$n" -f q.pcrs -l sha256:0,7,12 -e "$other"
    rc=0
    citadel tpm attest verify --quote q.json --nonce "$n" --eventlog "$other" >/dev/null 2>err || rc=$?
    assert_eq "$rc" 9
    assert_contains "$(cat err)" "error[TPM0095]"
    no_transient_handles "$SWTPM_TCTI"
}

# tools_ak ALG SCHEME PREFIX: tpm2_createek + tpm2_createak (ALG ecc|rsa, SCHEME ecdsa|rsassa):
# PREFIX.ctx, PREFIX.pem, PREFIX.tss (TPM2B_PUBLIC), PREFIX.name. Nothing stays loaded.
tools_ak() {
    local alg=$1 scheme=$2 p=$3
    tpm2_createek -T "$SWTPM_TCTI" -c "$p.ek.ctx" -G "$alg" -u "$p.ek.pub" >/dev/null
    tpm2_createak -T "$SWTPM_TCTI" -C "$p.ek.ctx" -c "$p.ctx" -G "$alg" -g sha256 -s "$scheme" -u "$p.pem" -f pem \
        -n "$p.name" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    tpm2_flushcontext -T "$SWTPM_TCTI" -s
    tpm2_readpublic -T "$SWTPM_TCTI" -c "$p.ctx" -o "$p.tss" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
}

# build_quote MSG SIG PCRS LIST OUT: our quote JSON from tpm2_quote's -m, -s and -o (-F values)
# files, with the sha256 PCRs of LIST (comma separated, in selection order). No AK key in it.
build_quote() {
    python3 - "$@" <<'EOF'
import base64, json, sys
msg, sig, pcrs, sel, out = sys.argv[1:6]
v, sel = open(pcrs, "rb").read(), sel.split(",")
assert len(v) == 32 * len(sel), "tpm2_quote wrote %d bytes of PCR values" % len(v)
d = {"version": 1,
     "attest": base64.b64encode(open(msg, "rb").read()).decode(),
     "signature": base64.b64encode(open(sig, "rb").read()).decode(),
     "pcrs": {"sha256": {i: v[32 * k:32 * k + 32].hex() for k, i in enumerate(sel)}}}
json.dump(d, open(out, "w"), indent=2)
EOF
}

itest_tpm2_quote_verifies_with_citadel() {
    start_swtpm
    tpm2_pcrextend -T "$SWTPM_TCTI" 11:sha256=$(printf 'ab%.0s' {1..32})
    for a in ecc:ecdsa rsa:rsassa; do
        IFS=: read -r alg scheme <<<"$a"
        tools_ak "$alg" "$scheme" "$alg"
        n=$(openssl rand -hex 20)
        tpm2_quote -T "$SWTPM_TCTI" -c "$alg.ctx" -l sha256:0,7,11 -q "$n" -m "$alg.msg" -s "$alg.sig" \
            -o "$alg.pcrs" -F values -g sha256 >/dev/null
        tpm2_flushcontext -T "$SWTPM_TCTI" -t
        build_quote "$alg.msg" "$alg.sig" "$alg.pcrs" 0,7,11 "$alg.json"
        # the values tpm2_quote wrote are the TPM's (tpm2_pcrread)
        tpm2_pcrread -T "$SWTPM_TCTI" sha256:0,7,11 -o "$alg.read" >/dev/null
        cmp "$alg.pcrs" "$alg.read" || fail "tpm2_quote's PCR values are not tpm2_pcrread's"
        # no workspace: verification is software only, with the key we enrolled
        out=$(TPM_STORE_PATH=$T/none.db citadel tpm --json attest verify --quote "$alg.json" --nonce "$n" --ak-pub "$alg.pem") ||
            fail "citadel refused tpm2_quote's $alg quote: $out"
        assert_eq "$(printf '%s' "$out" | json - '" ".join(c["check"] + "=" + c["status"] for c in d["checks"])')" \
            "format=pass signature=pass nonce=pass pcr_digest=pass"
        assert_eq "$(printf '%s' "$out" | json - 'd["pcrs"]["sha256"]["11"]')" "$(od -An -tx1 -j64 -N32 "$alg.read" | tr -d ' \n')"
        # one PCR value edited: TPM0093; another nonce: TPM0092; another key: TPM0091
        python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["pcrs"]["sha256"]["7"] = "11" * 32; json.dump(d, open(sys.argv[2], "w"))' \
            "$alg.json" "$alg.bad.json"
        expect_fail 9 TPM0093 citadel tpm attest verify --quote "$alg.bad.json" --nonce "$n" --ak-pub "$alg.pem"
        expect_fail 9 TPM0092 citadel tpm attest verify --quote "$alg.json" --nonce "$(openssl rand -hex 20)" --ak-pub "$alg.pem"
        # without a key in the file or --ak-pub there is nothing to trust
        expect_fail 9 TPM0090 citadel tpm attest verify --quote "$alg.json" --nonce "$n"
        assert_contains "$ERR" "give --ak-pub"
    done
    # ecc's quote checked with rsa's key (the nonce is right): the signature check names it
    n=$(openssl rand -hex 20)
    tpm2_quote -T "$SWTPM_TCTI" -c ecc.ctx -l sha256:0,7,11 -q "$n" -m e2.msg -s e2.sig -o e2.pcrs -F values -g sha256 >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    build_quote e2.msg e2.sig e2.pcrs 0,7,11 e2.json
    expect_fail 9 TPM0091 citadel tpm attest verify --quote e2.json --nonce "$n" --ak-pub rsa.pem
    citadel tpm attest verify --quote e2.json --nonce "$n" --ak-pub ecc.pem >/dev/null
    no_transient_handles "$SWTPM_TCTI"
}

# print_template TSS: tpm2_print of a TPM2B_PUBLIC without its key (x, y, rsa) and name lines.
print_template() {
    tpm2_print -t TPM2B_PUBLIC "$1" | grep -Ev '^(x|y|rsa|name):'
}

# Our AK's public area loaded into the TPM (tpm2_loadexternal, public part only): the TPM's name
# and tpm2_readpublic's key are ak-show's; and its template is the one tpm2_createak uses.
itest_ak_name_and_template_match_tpm2_tools() {
    swtpm_workspace
    citadel tpm attest ak-create ak >/dev/null
    citadel tpm attest ak-create rak --algorithm rsa-2048 >/dev/null
    for a in ak:ecc:ecdsa rak:rsa:rsassa; do
        IFS=: read -r k alg scheme <<<"$a"
        citadel tpm --json attest ak-show "$k" >"$k.json"
        json "$k.json" 'd["ak_tpm2b_public_base64"]' | base64 -d >"$k.tss"
        json "$k.json" 'd["ak_public_pem"]' >"$k.pem"
        tpm2_loadexternal -T "$SWTPM_TCTI" -C n -u "$k.tss" -c "$k.ext.ctx" -n "$k.ext.name" >/dev/null
        tpm2_readpublic -T "$SWTPM_TCTI" -c "$k.ext.ctx" -n "$k.rp.name" -f pem -o "$k.rp.pem" >/dev/null
        tpm2_flushcontext -T "$SWTPM_TCTI" -t
        assert_eq "$(od -An -tx1 "$k.ext.name" | tr -d ' \n')" "$(json "$k.json" 'd["ak_name"]')" "$k: name from TPM2_LoadExternal"
        assert_eq "$(od -An -tx1 "$k.rp.name" | tr -d ' \n')" "$(json "$k.json" 'd["ak_name"]')" "$k: tpm2_readpublic name"
        cmp -s <(openssl pkey -pubin -in "$k.pem" -outform der) <(openssl pkey -pubin -in "$k.rp.pem" -outform der) ||
            fail "$k: tpm2_readpublic reads another key"
        # tpm2_createak's AK of the same algorithm: every field but the key itself is the same
        tools_ak "$alg" "$scheme" "t$k"
        diff <(print_template "$k.tss") <(print_template "t$k.tss") || fail "$k: not tpm2_createak's template"
        assert_contains "$(print_template "$k.tss")" "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"
    done
    no_transient_handles "$SWTPM_TCTI"
}

interop_register
