# SPDX-License-Identifier: Apache-2.0
# Ed25519 keys whose seed the TPM seals (issue 4): create/sign/verify, the TPM refusing to unseal
# after a bound PCR changed, passwords, rotation, deletion, export formats, backup and restore into
# another workspace with its own vTPM (and every way a backup can be bad), refusals, and the mock
# and swtpm backends.

# raw public key (hex) from `key export-pub` PEM: the last 32 bytes of the SubjectPublicKeyInfo
ed_pub_hex() { openssl pkey -pubin -in "$1" -outform DER | tail -c 32 | od -An -v -tx1 | tr -d ' \n'; }
hex_of() { od -An -v -tx1 "$1" | tr -d ' \n'; }

# sqlite: one value of the current version of PATH's stored row (python, no sqlite3 CLI needed)
stored() {
    python3 - "$TPM_STORE_PATH" "$1" "$2" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
row = c.execute("SELECT v.%s FROM objects o JOIN object_versions v ON v.object_id = o.id AND v.version = o.version "
                "WHERE o.path = ?" % sys.argv[3], (sys.argv[2],)).fetchone()
v = row[0]
print(v.hex() if isinstance(v, bytes) else v)
PY
}

test_ed25519_create_sign_verify() {
    init_vtpm
    printf 'release 1.0 contents\n' >msg
    citadel tpm --json key create ed/a --algorithm ed25519 >create.json
    assert_eq "$(json create.json '[d["algorithm"], d["scheme"], d["usage"], d["version"]]')" '["ed25519", "eddsa", "sign", 1]'
    assert_eq "$(json create.json 'sorted(d["metadata"]["policy_json"]["requires"]["pcr"][i]["index"] for i in range(2))')" "[0, 7]" \
        "bound to PCRs 0 and 7 by default"
    citadel tpm --json key sign ed/a --input msg --output msg.sig >sign.json
    assert_eq "$(stat -c %s msg.sig)" 64 "a raw 64-byte signature"
    assert_eq "$(json sign.json 'd["signature_hex"]')" "$(hex_of msg.sig)"
    assert_eq "$(json sign.json '[d["encoding"], d["message_bytes"]]')" '["raw", 21]'
    # Ed25519 is deterministic: signing again (another unseal) gives the same bytes, stdin too
    citadel tpm key sign ed/a --input - --output again.sig <msg >/dev/null
    cmp msg.sig again.sig || fail "two signatures of one message differ"
    citadel tpm --json key verify ed/a --input msg --signature msg.sig >v.json
    assert_eq "$(json v.json '[d["valid"], d["version"]]')" "[true, 1]"
    citadel tpm key export-pub ed/a --output pub.pem >/dev/null
    openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in msg -sigfile msg.sig >/dev/null ||
        fail "openssl does not verify the signature"
    assert_eq "$(json create.json 'd["public_key_hex"]')" "$(ed_pub_hex pub.pem)"
    printf 'release 1.0 contents, modified\n' >msg2
    expect_fail 3 TPM0033 citadel tpm key verify ed/a --input msg2 --signature msg.sig
    ! openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in msg2 -sigfile msg.sig >/dev/null 2>&1 ||
        fail "openssl verified a signature over another message"
    # the store holds the sealed object (a keyed-hash object with a policy and no userWithAuth)
    # and the public key, nothing else
    assert_eq "$(stored ed/a payload)" "$(ed_pub_hex pub.pem)"
    python3 - "$(stored ed/a tpm_public)" "$(stored ed/a tpm_private)" <<'PY'
import struct, sys
pub, priv = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
size, typ, name_alg, attrs, pol_len = struct.unpack(">HHHIH", pub[:12])
assert typ == 0x0008, "not a KEYEDHASH object: 0x%04x" % typ
assert not attrs & 0x40, "userWithAuth is set: a password session could unseal it"
assert attrs & 0x2 and attrs & 0x10, "not fixedTPM/fixedParent"
assert pol_len == 32, "no authPolicy"
assert len(priv) > 32 + 16, "no wrapped private part"
PY
    citadel tpm --json key list >list.json
    assert_eq "$(json list.json '[(k["path"], k["algorithm"]) for k in d["keys"]]')" '[["ed/a", "ed25519"]]'
    citadel tpm --json key show ed/a >show.json
    assert_eq "$(json show.json 'd["public_key_pem"]')" "$(cat pub.pem)"
    doctor_consistent
}

test_ed25519_sign_input_rules() {
    init_vtpm
    printf 'm' >msg
    citadel tpm key create ed/a --algorithm ed25519 >/dev/null
    expect_fail 2 TPM0002 citadel tpm key sign ed/a --input msg --digest sha256
    assert_contains "$ERR" "signs the message itself"
    expect_fail 2 TPM0002 citadel tpm key sign ed/a --input msg --input-is-digest
    expect_fail 2 TPM0002 citadel tpm key sign ed/a --input msg --encoding der
    citadel tpm key sign ed/a --input msg --encoding raw --output s >/dev/null
    expect_fail 2 TPM0002 citadel tpm key verify ed/a --input msg --signature s --digest sha512
    : >empty
    expect_fail 2 TPM0031 citadel tpm key sign ed/a --input empty --output o1
    truncate -s $((64 * 1024 * 1024 + 1)) big
    expect_fail 2 TPM0030 citadel tpm key sign ed/a --input big --output o2
    assert_contains "$ERR" "64 MiB"
    assert_no_file o1
    assert_no_file o2
    # a signature of the wrong length is refused as invalid, not misread
    head -c 63 s >short.sig
    expect_fail 3 TPM0033 citadel tpm key verify ed/a --input msg --signature short.sig
    assert_contains "$ERR" "64 bytes"
}

test_ed25519_pcr_change_makes_the_tpm_refuse() {
    init_vtpm
    printf 'boot-bound' >msg
    echo update >d
    citadel tpm key create ed/p7 --algorithm ed25519 --pcr 7 >/dev/null
    citadel tpm key create ed/def --algorithm ed25519 >/dev/null
    citadel tpm key sign ed/p7 --input msg --output ok.sig >/dev/null
    citadel tpm key sign ed/def --input msg --output def.sig >/dev/null
    citadel tpm pcr extend --index 7 --data d >/dev/null
    expect_fail 7 TPM0047 citadel tpm key sign ed/p7 --input msg --output bad.sig
    assert_no_file bad.sig
    assert_contains "$ERR" "PCR 7 (sha256)"
    assert_contains "$ERR" "key restore"
    assert_not_contains "$OUT" "signature"
    # the default binding (PCRs 0,7) refuses too
    expect_fail 7 TPM0047 citadel tpm key sign ed/def --input msg --output bad2.sig
    assert_no_file bad2.sig
    # verification is software and still works for what was signed before
    citadel tpm key verify ed/p7 --input msg --signature ok.sig >/dev/null
    # a key made in the new state signs
    citadel tpm key create ed/new --algorithm ed25519 --pcr 7 >/dev/null
    citadel tpm key sign ed/new --input msg --output new.sig >/dev/null
}

# The refusal comes from the TPM: make citadel's stored policy expect today's value of PCR 7 (so
# citadel's own PolicyPCR assertion passes); the object's authPolicy still binds the old value,
# and the TPM refuses to unseal.
test_ed25519_tpm_enforces_not_citadel() {
    init_vtpm
    printf 'x' >msg
    echo d >d
    citadel tpm key create t/k --algorithm ed25519 --pcr 7 >/dev/null
    citadel tpm pcr extend --index 7 --data d >/dev/null
    now=$(citadel tpm --json pcr show --index 7 | json - 'd["pcrs"][0]["value"]')
    python3 - "$TPM_STORE_PATH" "$now" <<'PY'
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
(meta,) = c.execute("SELECT metadata FROM objects WHERE path = 't/k'").fetchone()
m = json.loads(meta)
for p in m["policy_json"]["requires"]["pcr"]:
    p["value"] = sys.argv[2]
c.execute("UPDATE objects SET metadata = ? WHERE path = 't/k'", (json.dumps(m),))
c.commit()
PY
    expect_fail 7 TPM0047 citadel tpm key sign t/k --input msg --output out.sig
    assert_no_file out.sig
    assert_contains "$ERR" "the TPM refused to unseal t/k"
    assert_contains "$ERR" "tpm_rc 0x0000099d" # TPM_RC_POLICY_FAIL from TPM2_Unseal
}

test_ed25519_password() {
    init_vtpm
    printf 'm' >msg
    printf 'open sesame\n' >pw
    printf 'wrong one\n' >bad
    citadel tpm key create ed/pw --algorithm ed25519 --pcr 7 --auth-file pw >/dev/null
    expect_fail 7 TPM0024 citadel tpm key sign ed/pw --input msg --output s1
    expect_fail 7 TPM0024 citadel tpm key sign ed/pw --input msg --output s2 --auth-file bad
    assert_no_file s1
    assert_no_file s2
    citadel tpm key sign ed/pw --input msg --output ok.sig --auth-file pw >/dev/null
    citadel tpm key verify ed/pw --input msg --signature ok.sig >/dev/null
    # rotation keeps the password, which must be proven first
    expect_fail 7 TPM0024 citadel tpm key rotate ed/pw --auth-file bad
    assert_eq "$(citadel tpm --json key show ed/pw | json - 'd["version"]')" 1
    citadel tpm key rotate ed/pw --auth-file pw >/dev/null
    expect_fail 7 TPM0024 citadel tpm key sign ed/pw --input msg --output s3
    citadel tpm key sign ed/pw --input msg --output v2.sig --auth-file pw >/dev/null
    assert_eq "$(citadel tpm --json key verify ed/pw --input msg --signature v2.sig | json - 'd["version"]')" 2
    # a key without a password refuses one
    citadel tpm key create ed/nopw --algorithm ed25519 >/dev/null
    expect_fail 2 TPM0002 citadel tpm key sign ed/nopw --input msg --auth-file pw
}

test_ed25519_rotate_and_delete() {
    init_vtpm
    printf 'v1 message' >msg
    citadel tpm key create ed/r --algorithm ed25519 --pcr 0,7 >/dev/null
    citadel tpm key export-pub ed/r --output v1.pem >/dev/null
    citadel tpm key sign ed/r --input msg --output v1.sig >/dev/null
    policy_before=$(stored ed/r tpm_public | cut -c 25-88)
    citadel tpm --json key rotate ed/r >rot.json
    assert_eq "$(json rot.json '[d["previous_version"], d["version"]]')" "[1, 2]"
    citadel tpm key export-pub ed/r --output v2.pem >/dev/null
    assert_ne "$(ed_pub_hex v2.pem)" "$(ed_pub_hex v1.pem)" "a new seed"
    assert_eq "$(json rot.json 'd["public_key_hex"]')" "$(ed_pub_hex v2.pem)"
    assert_eq "$(stored ed/r tpm_public | cut -c 25-88)" "$policy_before" "the same authPolicy"
    citadel tpm key sign ed/r --input msg --output v2.sig >/dev/null
    openssl pkeyutl -verify -pubin -inkey v2.pem -rawin -in msg -sigfile v2.sig >/dev/null
    citadel tpm --json key verify ed/r --input msg --signature v1.sig >old.json
    assert_eq "$(json old.json '[d["version"], d["current_version"]]')" "[1, false]"
    expect_fail 3 TPM0033 citadel tpm key verify ed/r --input msg --signature v1.sig --version 2
    citadel tpm key export-pub ed/r --version 1 --output again1.pem >/dev/null
    cmp v1.pem again1.pem || fail "version 1's public key changed"
    assert_eq "$(citadel tpm --json key show ed/r | json - 'len(d["versions"])')" 2
    doctor_consistent
    citadel tpm key delete ed/r >/dev/null
    expect_fail 3 TPM0004 citadel tpm key sign ed/r --input msg --output gone.sig
    assert_eq "$(citadel tpm --json key list | json - 'd["count"]')" 0
    doctor_consistent
}

test_ed25519_export_formats() {
    init_vtpm
    citadel tpm key create ed/x --algorithm ed25519 >/dev/null
    citadel tpm key export-pub ed/x --output pub.pem >/dev/null
    pk=$(ed_pub_hex pub.pem)
    openssl pkey -pubin -in pub.pem -noout -text | grep -q ED25519 || fail "not an ED25519 SubjectPublicKeyInfo"
    citadel tpm key export-pub ed/x --export-for cosign --output cosign.pem >/dev/null
    cmp pub.pem cosign.pem
    citadel tpm key export-pub ed/x --export-for openssl --output o.pem >/dev/null
    cmp pub.pem o.pem
    citadel tpm key export-pub ed/x --export-for ssh --output id.pub >/dev/null
    assert_eq "$(cut -d' ' -f1,3 id.pub)" "ssh-ed25519 ed/x"
    assert_contains "$(ssh-keygen -l -f id.pub)" "(ED25519)"
    # the key blob is string "ssh-ed25519" || string pk
    assert_eq "$(cut -d' ' -f2 id.pub | base64 -d | od -An -v -tx1 | tr -d ' \n')" \
        "0000000b7373682d65643235353139$(printf '00000020')$pk"
    citadel tpm --json key export-pub ed/x --export-for jwk >jwk.json
    python3 - jwk.json "$pk" <<'PY'
import base64, hashlib, json, sys
d = json.load(open(sys.argv[1]))
j = d["jwk"]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
assert j["kty"] == "OKP" and j["crv"] == "Ed25519" and j["alg"] == "EdDSA" and j["use"] == "sig", j
assert j["x"] == b64(bytes.fromhex(sys.argv[2])), j
canon = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": j["x"]}, separators=(",", ":"), sort_keys=True)
assert j["kid"] == b64(hashlib.sha256(canon.encode()).digest()), "kid is not the RFC 7638 thumbprint"
assert "y" not in j and "d" not in j
PY
}

test_ed25519_refusals() {
    init_vtpm
    citadel tpm key create st --usage storage >/dev/null
    citadel tpm key create ec >/dev/null
    expect_fail 2 TPM0002 citadel tpm key create e1 --algorithm ed25519 --persist
    assert_contains "$ERR" "--persist"
    expect_fail 2 TPM0002 citadel tpm key create e2 --algorithm ed25519 --parent st
    expect_fail 2 TPM0002 citadel tpm key create e3 --algorithm ed25519 --usage storage
    expect_fail 2 TPM0002 citadel tpm key create e4 --algorithm ed25519 --scheme ecdsa
    expect_fail 2 TPM0002 citadel tpm key create e5 --algorithm ed25519 --template ci-signer
    expect_fail 2 TPM0002 citadel tpm key create e6 --algorithm ed25519 --pcr 7 --policy p
    expect_fail 2 TPM0044 citadel tpm key create e7 --algorithm ed25519 --pcr 99
    citadel tpm key create e8 --algorithm ed25519 --scheme eddsa >/dev/null
    expect_fail 3 TPM0005 citadel tpm key create e8 --algorithm ed25519
    expect_fail 5 TPM0023 citadel tpm identity init id1 --algorithm ed25519
    printf 'a long enough passphrase\n' >pass
    expect_fail 3 TPM0007 citadel tpm key backup ec --output ec.bk --passphrase-file pass
    assert_no_file ec.bk
    assert_eq "$(citadel tpm --json key list | json - 'sorted(k["path"] for k in d["keys"])')" '["e8", "ec", "st"]'
    # plan mode describes and creates nothing
    citadel tpm --plan --json key create e9 --algorithm ed25519 >plan.json
    assert_eq "$(json plan.json 'd["plan"]')" true
    expect_fail 3 TPM0004 citadel tpm key show e9
    doctor_consistent
}

# Backup in one workspace, restore in another with its own vTPM: the same public key, the same
# (deterministic) signatures; the default KDF strength (moderate) is used here only.
test_ed25519_backup_restore_other_tpm() {
    init_vtpm
    printf 'ship it\n' >msg
    printf 'correct horse battery staple\n' >pass
    citadel tpm key create ssh/deploy --algorithm ed25519 --pcr 7 >/dev/null
    citadel tpm key export-pub ssh/deploy --output pub.pem >/dev/null
    citadel tpm key sign ssh/deploy --input msg --output a.sig >/dev/null
    citadel tpm --json key backup ssh/deploy --output deploy.citkey --passphrase-file pass >bk.json
    assert_mode deploy.citkey 600
    assert_eq "$(stat -c %s deploy.citkey)" $((194 + 10)) "194 bytes + the path"
    assert_eq "$(head -c 8 deploy.citkey)" CITKEYBK
    assert_eq "$(json bk.json '[d["kdf"], d["public_key_hex"]]')" "[\"moderate\", \"$(ed_pub_hex pub.pem)\"]"
    assert_eq "$(citadel tpm --json log show --action key.backup | json - 'len(d["events"])')" 1
    # the other workspace: its own store and its own vTPM state
    mkdir other
    (
        cd other
        export TPM_STORE_PATH=$T/other/store.db
        citadel tpm init >/dev/null
        citadel tpm --json key restore ops/deploy --input ../deploy.citkey --passphrase-file ../pass >r.json
        assert_eq "$(json r.json '[d["restored_from"]["path"], d["restored_from"]["version"]]')" '["ssh/deploy", 1]'
        citadel tpm key sign ops/deploy --input ../msg --output b.sig >/dev/null
        cmp ../a.sig b.sig || fail "the restored key signs differently"
        openssl pkeyutl -verify -pubin -inkey ../pub.pem -rawin -in ../msg -sigfile b.sig >/dev/null
        citadel tpm key export-pub ops/deploy --output pub2.pem >/dev/null
        cmp ../pub.pem pub2.pem || fail "the restored public key differs"
        # sealed again by this TPM: its own sealed object, bound to PCRs 0,7 here
        assert_eq "$(json r.json 'sorted(p["index"] for p in d["metadata"]["policy_json"]["requires"]["pcr"])')" "[0, 7]"
        # restore again under another path, with a password and PCR 7
        printf 'pw\n' >pw
        citadel tpm key restore ops/pw --input ../deploy.citkey --passphrase-file ../pass --pcr 7 --auth-file pw >/dev/null
        expect_fail 7 TPM0024 citadel tpm key sign ops/pw --input ../msg --output c.sig
        citadel tpm key sign ops/pw --input ../msg --output c.sig --auth-file pw >/dev/null
        cmp ../a.sig c.sig
        expect_fail 3 TPM0005 citadel tpm key restore ops/pw --input ../deploy.citkey --passphrase-file ../pass
        doctor_consistent
    )
    # the original workspace's sealed blob does not load on the other TPM (different SRK): the
    # backup is the only way across
    assert_ne "$(stored ssh/deploy tpm_private)" "$(TPM_STORE_PATH=$T/other/store.db stored ops/deploy tpm_private)"
}

test_ed25519_bad_backups_create_nothing() {
    init_vtpm
    printf 'm' >msg
    printf 'the right passphrase\n' >pass
    printf 'the wrong passphrase\n' >wrong
    printf 'short\n' >short
    citadel tpm key create k --algorithm ed25519 >/dev/null
    expect_fail 2 TPM0002 citadel tpm key backup k --output x.bk --passphrase-file short
    assert_contains "$ERR" "shorter than 12"
    expect_fail 2 TPM0002 citadel tpm key backup k --output x.bk --passphrase-file pass --kdf extreme
    expect_fail 2 TPM0002 citadel tpm key backup k --output x.bk
    assert_no_file x.bk
    citadel tpm key backup k --output k.bk --passphrase-file pass --kdf interactive >/dev/null
    assert_mode k.bk 600
    citadel tpm key delete k >/dev/null
    events_before=$(citadel tpm --json log show | json - 'len(d["events"])')
    expect_fail 7 TPM0064 citadel tpm key restore r --input k.bk --passphrase-file wrong
    # one flipped bit anywhere: the checksum says so before any passphrase is tried
    cp k.bk flip.bk
    printf '\x01' | dd of=flip.bk bs=1 seek=150 conv=notrunc 2>/dev/null
    expect_fail 2 TPM0063 citadel tpm key restore r --input flip.bk --passphrase-file pass
    head -c 150 k.bk >trunc.bk
    expect_fail 2 TPM0062 citadel tpm key restore r --input trunc.bk --passphrase-file pass
    head -c 5 k.bk >trunc5.bk
    expect_fail 2 TPM0062 citadel tpm key restore r --input trunc5.bk --passphrase-file pass
    { cat k.bk; printf 'x'; } >long.bk
    expect_fail 2 TPM0063 citadel tpm key restore r --input long.bk --passphrase-file pass
    expect_fail 2 TPM0061 citadel tpm key restore r --input msg --passphrase-file pass
    : >empty.bk
    expect_fail 2 TPM0031 citadel tpm key restore r --input empty.bk --passphrase-file pass
    # forged headers with a recomputed checksum: the header is the AEAD's associated data, so
    # the decryption fails; absurd KDF parameters are refused before any work; a newer format
    # version is named as such
    python3 - k.bk <<'PY'
import hashlib, struct
b = bytearray(open("k.bk", "rb").read())
def write(name, data):
    data = bytes(data[:-32])
    open(name, "wb").write(data + hashlib.blake2b(data, digest_size=32).digest())
p = bytearray(b); p[114] ^= 0x20; write("path.bk", p)          # the original path's first letter
p = bytearray(b); p[68] ^= 1; write("pub.bk", p)                # the public key
p = bytearray(b); p[20:28] = struct.pack(">Q", 1 << 40); write("mem.bk", p)
p = bytearray(b); p[8] = 2; write("v2.bk", p)
PY
    expect_fail 7 TPM0064 citadel tpm key restore r --input path.bk --passphrase-file pass
    expect_fail 7 TPM0064 citadel tpm key restore r --input pub.bk --passphrase-file pass
    expect_fail 2 TPM0063 citadel tpm key restore r --input mem.bk --passphrase-file pass
    expect_fail 2 TPM0061 citadel tpm key restore r --input v2.bk --passphrase-file pass
    assert_contains "$ERR" "version 2"
    # nothing was created, nothing was logged
    assert_eq "$(citadel tpm --json key list | json - 'd["count"]')" 0
    assert_eq "$(citadel tpm --json log show | json - 'len(d["events"])')" "$events_before"
    # and the good file still restores
    citadel tpm key restore r --input k.bk --passphrase-file pass >/dev/null
    citadel tpm key sign r --input msg --output r.sig >/dev/null
    # a backup needs the policy to hold now: after a PCR change the TPM refuses, no file
    echo d >d
    citadel tpm pcr extend --index 7 --data d >/dev/null
    expect_fail 7 TPM0047 citadel tpm key backup r --output late.bk --passphrase-file pass --kdf interactive
    assert_no_file late.bk
}

# Workspace export/import carries each version's payload (the ed25519 public key, the envelope
# ciphertext of a large secret).
test_ed25519_workspace_export_import() {
    init_vtpm
    printf 'm' >msg
    head -c 4000 /dev/urandom >big
    citadel tpm key create ed/k --algorithm ed25519 >/dev/null
    citadel tpm secret seal s/big --input big >/dev/null
    citadel tpm key sign ed/k --input msg --output a.sig >/dev/null
    citadel tpm workspace export --output ws.json >/dev/null
    citadel tpm key delete ed/k >/dev/null
    citadel tpm secret delete s/big >/dev/null
    citadel tpm workspace import --input ws.json >/dev/null
    citadel tpm key sign ed/k --input msg --output b.sig >/dev/null
    cmp a.sig b.sig || fail "the imported key signs differently"
    citadel tpm key verify ed/k --input msg --signature a.sig >/dev/null
    citadel tpm secret unseal s/big --output big.out >/dev/null
    cmp big big.out || fail "the imported envelope secret changed"
    doctor_consistent
}

test_ed25519_mock_batch() {
    printf 'mock message' >msg
    cat >cmds <<'C'
key create m/k --algorithm ed25519 --pcr 7
key sign m/k --input msg --output m.sig
key export-pub m/k --output m.pem
key rotate m/k
key sign m/k --input msg --output m2.sig
key verify m/k --input msg --signature m.sig
C
    citadel tpm --backend mock batch --input cmds >out 2>err || fail "mock batch failed: $(cat err)"
    openssl pkeyutl -verify -pubin -inkey m.pem -rawin -in msg -sigfile m.sig >/dev/null
    ! cmp -s m.sig m2.sig || fail "the rotated key signs like the old one"
}

test_ed25519_swtpm() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    printf 'swtpm message' >msg
    printf 'a passphrase for swtpm\n' >pass
    citadel tpm key create sw/k --algorithm ed25519 >/dev/null
    citadel tpm key sign sw/k --input msg --output s.sig >/dev/null
    citadel tpm key export-pub sw/k --output s.pem >/dev/null
    openssl pkeyutl -verify -pubin -inkey s.pem -rawin -in msg -sigfile s.sig >/dev/null
    citadel tpm key backup sw/k --output s.bk --passphrase-file pass --kdf interactive >/dev/null
    # nothing left loaded in a TPM without a resource manager
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-transient | grep -c 0x || true)" 0
    echo d >d
    citadel tpm pcr extend --index 7 --data d >/dev/null
    expect_fail 7 TPM0047 citadel tpm key sign sw/k --input msg --output late.sig
    assert_no_file late.sig
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-transient | grep -c 0x || true)" 0
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-loaded-session | grep -c 0x || true)" 0
    # recovery after the PCR change: restore the backup, sealed to the new state
    citadel tpm key restore sw/k2 --input s.bk --passphrase-file pass >/dev/null
    citadel tpm key sign sw/k2 --input msg --output s2.sig >/dev/null
    cmp s.sig s2.sig
}

# Under a profile that requires an approval for every signature (two-person), an ed25519
# signature needs one like any other (the request names the message's SHA-256), and nothing
# that would sign without one is allowed: no backup (the session cache is refused the same way,
# tests/unit/test-ed25519.c).
test_ed25519_two_person_needs_approvals() {
    init_vtpm
    printf 'a long enough passphrase\n' >pass
    citadel tpm key create ed/k --algorithm ed25519 >/dev/null
    citadel tpm key export-pub ed/k --output k.pem >/dev/null
    citadel tpm profile set two-person >/dev/null
    export CITADEL_ACTOR=alice
    printf 'release 2.0\n' >f
    expect_fail 7 TPM0055 citadel tpm key sign ed/k --input f --output sig
    assert_no_file sig
    assert_eq "$(citadel tpm --json approval show 1 | json - 'd["digest"]')" "$(sha256sum f | cut -d' ' -f1)"
    CITADEL_ACTOR=bob citadel tpm approval approve 1 >/dev/null
    printf 'evil\n' >g
    expect_fail 7 TPM0055 citadel tpm key sign ed/k --input g --approval 1 --output gsig
    assert_no_file gsig
    citadel tpm --json key sign ed/k --input f --approval 1 --output sig >s.json
    assert_eq "$(json s.json 'd["message_sha256"]')" "$(sha256sum f | cut -d' ' -f1)"
    openssl pkeyutl -verify -pubin -inkey k.pem -rawin -in f -sigfile sig >/dev/null
    expect_fail 7 TPM0055 citadel tpm key sign ed/k --input f --approval 1 --output again
    assert_no_file again
    expect_fail 7 TPM0053 citadel tpm key backup ed/k --output k.bk --passphrase-file pass --kdf interactive
    assert_no_file k.bk
}
