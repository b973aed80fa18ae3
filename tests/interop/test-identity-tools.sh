# SPDX-License-Identifier: Apache-2.0
# PolicyAuthorize against tpm2-tools on swtpm: an authorized identity's policy digest equals
# tpm2_policyauthorize's (and + tpm2_policyauthvalue's), an approval's digest equals
# tpm2_createpolicy --policy-pcr's in the same TPM state, and the approval's signature is an
# ordinary signature by the authority's key over SHA-256(approved digest), which openssl checks.

trial() {
    tpm2_flushcontext -T "$SWTPM_TCTI" -t >/dev/null 2>&1 || true
    tpm2_startauthsession -T "$SWTPM_TCTI" -S s.ctx
}

hexof() { od -An -tx1 "$1" | tr -d ' \n'; }

# tpm2_createpolicy leaves its trial session loaded, and swtpm without a resource manager has
# three session slots.
createpolicy_pcr() {
    tpm2_createpolicy -T "$SWTPM_TCTI" --policy-pcr -l "$1" -L "$2" >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -l >/dev/null 2>&1 || true
}

# citadel leaves nothing loaded in the TPM.
nothing_loaded() {
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-transient)" "" "transient handles left loaded"
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-loaded-session)" "" "sessions left loaded"
}

swtpm_workspace() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
}

test_authorized_identity_digest_matches_tpm2_policyauthorize() {
    swtpm_workspace
    citadel tpm identity init release --authority >/dev/null
    citadel tpm identity init anchor --authorized-by release --pcr-bind 14 >/dev/null
    printf 'pw' >pw
    citadel tpm identity init anchor-pw --authorized-by release --pcr-bind 14 --auth-file pw >/dev/null
    citadel tpm --json identity show release | json - 'd["tpm_name"]' | xxd -r -p >name.bin
    assert_eq "$(stat -c %s name.bin)" 34 "a SHA-256 TPM name"
    # in a trial session the approved digest is not checked: any 32 bytes
    head -c 32 /dev/zero >approved.dat
    # the policyRef binds approvals to the PCR selection: SHA-256("citadel approval v1\0" ||
    # TPML_PCR_SELECTION{1: sha256, 3 bytes, PCR 14}), computed here independently
    python3 -c 'import hashlib,sys; sys.stdout.buffer.write(hashlib.sha256(b"citadel approval v1\0" + bytes.fromhex("00000001000b03004000")).digest())' >ref.bin
    assert_eq "$(citadel tpm --json identity show anchor | json - 'd["policy_ref"]')" "$(hexof ref.bin)" "policyRef"

    trial
    tpm2_policyauthorize -T "$SWTPM_TCTI" -S s.ctx -L auth.dat -i approved.dat -q ref.bin -n name.bin >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" s.ctx
    assert_eq "$(citadel tpm --json identity show anchor | json - 'd["policy_digest"]')" "$(hexof auth.dat)" \
        "PolicyAuthorize"

    trial
    tpm2_policyauthorize -T "$SWTPM_TCTI" -S s.ctx -L a1.dat -i approved.dat -q ref.bin -n name.bin >/dev/null
    tpm2_policyauthvalue -T "$SWTPM_TCTI" -S s.ctx -L authpw.dat >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" s.ctx
    assert_eq "$(citadel tpm --json identity show anchor-pw | json - 'd["policy_digest"]')" "$(hexof authpw.dat)" \
        "PolicyAuthorize + PolicyAuthValue"
    assert_ne "$(hexof auth.dat)" "$(hexof authpw.dat)"

    # the same digests from YAML policies
    printf 'name: fw\nrequires:\n  authorized_by: release\n  pcr: [{index: 14}]\n' >fw.yaml
    assert_eq "$(citadel tpm --json policy compile fw.yaml | json - 'd["digest"]')" "$(hexof auth.dat)" "YAML authorized_by"
    printf 'name: fwpw\nrequires:\n  auth_value: true\n  authorized_by: release\n  pcr: [{index: 14}]\n' >fwpw.yaml
    assert_eq "$(citadel tpm --json policy compile fwpw.yaml | json - 'd["digest"]')" "$(hexof authpw.dat)" \
        "YAML authorized_by + auth_value"

    # and the TPM agrees once the state is approved: the password is needed too
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    echo data >f
    citadel tpm key sign anchor-pw --input f --output s.sig --auth-file pw >/dev/null
    nothing_loaded
    printf 'bad' >bad
    expect_fail 7 TPM0024 citadel tpm key sign anchor-pw --input f --output s2.sig --auth-file bad
    assert_no_file s2.sig
}

test_approval_digest_matches_tpm2_policypcr() {
    swtpm_workspace
    citadel tpm identity init release --authority >/dev/null
    tpm2_pcrextend -T "$SWTPM_TCTI" "14:sha256=$(printf fw-1 | sha256sum | cut -d' ' -f1)"
    tpm2_pcrextend -T "$SWTPM_TCTI" "15:sha256=$(printf cfg-1 | sha256sum | cut -d' ' -f1)"
    local round
    for round in 1 2; do
        citadel tpm --json policy approve --authority release --pcr 14 >a14.json
        nothing_loaded
        createpolicy_pcr sha256:14 p14.dat
        assert_eq "$(json a14.json 'd["policy_digest"]')" "$(hexof p14.dat)" "approval of PCR 14, round $round"
        citadel tpm --json policy approve --authority release --pcr 14,15 >a1415.json
        createpolicy_pcr sha256:14,15 p1415.dat
        assert_eq "$(json a1415.json 'd["policy_digest"]')" "$(hexof p1415.dat)" "approval of PCRs 14,15, round $round"
        # the values it records are the TPM's
        tpm2_pcrread -T "$SWTPM_TCTI" sha256:14 -o v14.bin >/dev/null
        assert_eq "$(json a14.json 'd["pcrs"][0]["value"]')" "$(hexof v14.bin)"
        tpm2_pcrextend -T "$SWTPM_TCTI" "14:sha256=$(printf fw-2 | sha256sum | cut -d' ' -f1)"
    done
    citadel tpm --json policy approvals --authority release >list.json
    assert_eq "$(json list.json 'd["count"]')" 4
    assert_eq "$(json list.json '[a["pcrs"] for a in d["approvals"]]')" '["14", "14,15", "14", "14,15"]'

    # the stored approval is the authority's signature over SHA-256(approved digest || policyRef):
    # decode the TPMT_SIGNATURE (ECDSA, SHA-256) and check it with openssl
    citadel tpm key export-pub release --output release.pem >/dev/null
    python3 - "$TPM_STORE_PATH" <<'PY'
import sqlite3, struct, sys

def der_len(n):
    return bytes([n]) if n < 0x80 else bytes([0x81, n])

def der_int(b):
    b = b.lstrip(b"\x00") or b"\x00"
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + der_len(len(b)) + b

c = sqlite3.connect(sys.argv[1])
for i, digest, ref, sig in c.execute("SELECT id, policy_digest, policy_ref, signature FROM approvals ORDER BY id"):
    alg, halg, rl = struct.unpack(">HHH", sig[:6])
    assert (alg, halg) == (0x0018, 0x000B), "not ECDSA/SHA-256: %04x %04x" % (alg, halg)
    r = sig[6:6 + rl]
    (sl,) = struct.unpack(">H", sig[6 + rl:8 + rl])
    s = sig[8 + rl:8 + rl + sl]
    assert 8 + rl + sl == len(sig), "trailing bytes in approval %d" % i
    body = der_int(r) + der_int(s)
    open("ap%d.der" % i, "wb").write(b"\x30" + der_len(len(body)) + body)
    open("ap%d.bin" % i, "wb").write(bytes.fromhex(digest) + bytes.fromhex(ref))
PY
    for i in 1 2 3 4; do
        out=$(openssl dgst -sha256 -verify release.pem -signature "ap$i.der" "ap$i.bin" 2>&1) ||
            fail "approval $i is not release's signature of its digest: $out"
        assert_eq "$out" "Verified OK"
    done
    # and not of another approval's digest
    if openssl dgst -sha256 -verify release.pem -signature ap1.der ap3.bin >/dev/null 2>&1; then
        fail "approval 1's signature verifies over approval 3's digest"
    fi
}
