# SPDX-License-Identifier: Apache-2.0
# The audit log against code we did not write: every inclusion and consistency proof
# `citadel tpm audit prove` makes verifies with tests/interop/rfc9162.py (written from RFC 9162
# 2.1.3.2 and 2.1.4.2), whose leaves are rebuilt from the SQLite rows by Python; segment roots
# are the MTH Python computes from those rows; checkpoints and witness co-signatures verify with
# `openssl dgst -sha256 -verify`, and their key IDs are SHA-256(name || 0x0A || 0x02 || SPKI)[:4]
# over the DER `openssl pkey` writes.
# shellcheck source=tests/interop/interop-lib.bash
source "$ROOT/tests/interop/interop-lib.bash"
INTEROP_FILE=$ROOT/tests/interop/$(basename "${BASH_SOURCE[0]}")
RFC9162="$ROOT/tests/interop/rfc9162.py"

# append_many N [PREFIX]: N entries in one process, with payloads of varied length and bytes.
append_many() {
    local i
    for i in $(seq 1 "$1"); do
        printf 'audit append --event ev.%d --payload "%s %d %s"\n' $((i % 7)) "${2:-p}" "$i" "$(head -c $((i % 13)) /dev/zero | tr '\0' x)"
    done >"$T/cmds"
    citadel tpm batch --input "$T/cmds" >/dev/null
}

# verify_batch_proofs FILE DB: FILE holds the concatenated JSON of many `audit prove` runs; each
# proof must verify with rfc9162.py's functions, its entry must be the one Python rebuilds from
# DB, and its roots must be Python's MTH. Prints how many proofs were checked.
verify_batch_proofs() {
    python3 - "$1" "$2" "$RFC9162" <<'EOF'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("rfc9162", sys.argv[3])
r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
text = open(sys.argv[1]).read()
entries = r.store_entries(sys.argv[2])
leaves = [r.leaf_hash(e) for e in entries]
roots = {}
def root(n):
    if n not in roots:
        roots[n] = r.mth(leaves[:n])
    return roots[n]
dec, pos, inc, con = json.JSONDecoder(), 0, 0, 0
while True:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    d, pos = dec.raw_decode(text, pos)
    if "batch" in d:
        assert d["failed"] == 0, d
        continue
    proof = [bytes.fromhex(p) for p in d["proof"]]
    if d["type"] == "inclusion":
        i, n = d["leaf_index"], d["tree_size"]
        assert bytes.fromhex(d["entry"]) == entries[i], "entry %d: not the bytes Python rebuilds from the row" % (i + 1)
        h = r.leaf_hash(bytes.fromhex(d["entry"]))
        assert h.hex() == d["leaf_hash"], d
        assert bytes.fromhex(d["root"]) == root(n), "root of size %d" % n
        assert r.verify_inclusion(i, n, h, proof, root(n)), "inclusion %d in %d" % (i + 1, n)
        # and the verifier is not a rubber stamp: the neighbour's leaf or a flipped hash fails
        if n > 1:
            assert not r.verify_inclusion(i, n, leaves[(i + 1) % n], proof, root(n))
            bad = list(proof); bad[-1] = bytes([bad[-1][0] ^ 1]) + bad[-1][1:]
            assert not r.verify_inclusion(i, n, h, bad, root(n))
        inc += 1
    else:
        m, n = d["old_size"], d["new_size"]
        assert bytes.fromhex(d["old_root"]) == root(m) and bytes.fromhex(d["new_root"]) == root(n), (m, n)
        assert r.verify_consistency(m, n, root(m), root(n), proof), "consistency %d -> %d" % (m, n)
        if m < n:
            if n - 1 > m:
                assert not r.verify_consistency(m, n, root(m), root(n - 1), proof), (m, n)
            bad = list(proof); bad[0] = bytes([bad[0][0] ^ 1]) + bad[0][1:]
            assert not r.verify_consistency(m, n, root(m), root(n), bad)
        con += 1
print(inc, con)
EOF
}

itest_rfc9162_selftest() {
    # the verifier itself agrees with the certificate-transparency reference vectors
    assert_eq "$(python3 "$RFC9162" self-test)" ok
}

itest_every_proof_up_to_70_entries() {
    citadel tpm init >/dev/null
    # varied entries: streams of each tier, a sealed payload, a binary payload and UTF-8 text
    citadel tpm audit key create >/dev/null
    citadel tpm audit streams create hr --tier secret >/dev/null
    citadel tpm audit streams create pub --tier public >/dev/null
    append_many 30
    citadel tpm audit append --stream hr --event hire --payload 'salary 100' >/dev/null
    head -c 300 /dev/urandom >bin
    citadel tpm audit append --stream pub --event blob --payload-file bin >/dev/null
    citadel tpm audit append --event utf8 --payload 'größe — ünïcödé' >/dev/null
    citadel tpm audit append --event empty >/dev/null
    append_many 36 q
    assert_eq "$(citadel tpm --json audit head | json - 'd["tree_size"]')" 70
    # every entry of every tree size 1..70, and every consistency pair
    python3 -c '
for n in range(1, 71):
    for s in range(1, n + 1):
        print("audit prove %d --tree-size %d" % (s, n))
for n in range(1, 71):
    for m in range(1, n + 1):
        print("audit prove --consistency %d %d" % (m, n))' >proofs.cmd
    citadel tpm --json batch --input proofs.cmd >proofs.json
    assert_eq "$(verify_batch_proofs proofs.json "$TPM_STORE_PATH")" "2485 2485"
    # one proof file checked on its own by both verifiers, then tampered: both refuse
    citadel tpm audit prove 31 --tree-size 70 --output inc.json >/dev/null
    assert_eq "$(python3 "$RFC9162" check-inclusion inc.json)" ok
    assert_eq "$(json inc.json 'd["entry"]')" "$(python3 "$RFC9162" entry "$TPM_STORE_PATH" 31)"
    python3 -c 'import json; d = json.load(open("inc.json")); e = bytearray.fromhex(d["entry"]); e[-1] ^= 1
d["entry"] = e.hex(); json.dump(d, open("bad.json", "w"))'
    if python3 "$RFC9162" check-inclusion bad.json 2>/dev/null; then fail "rfc9162.py accepted a changed entry"; fi
    expect_fail 11 TPM0112 citadel tpm audit prove --check bad.json
    citadel tpm audit prove --consistency 17 70 --output con.json >/dev/null
    assert_eq "$(python3 "$RFC9162" check-consistency con.json)" ok
    python3 -c 'import json; d = json.load(open("con.json")); d["proof"][1] = d["proof"][0]
json.dump(d, open("badc.json", "w"))'
    if python3 "$RFC9162" check-consistency badc.json 2>/dev/null; then fail "rfc9162.py accepted a changed proof"; fi
    expect_fail 11 TPM0112 citadel tpm audit prove --check badc.json
}

itest_segment_roots_are_python_mth() {
    citadel tpm init >/dev/null
    # segments at sizes around the cached level-8 subtrees (256 leaves), appended by several
    # processes so the writer state is reloaded mid-block
    append_many 1
    citadel tpm audit segments close >/dev/null
    append_many 99
    citadel tpm audit segments close >/dev/null
    append_many 100
    append_many 56
    citadel tpm audit segments close >/dev/null
    citadel tpm audit append --event one --payload more >/dev/null
    citadel tpm audit segments close >/dev/null
    append_many 300 r
    citadel tpm audit segments close >/dev/null
    citadel tpm --json audit segments list >segs.json
    assert_eq "$(json segs.json '[s["tree_size"] for s in d["segments"]]')" "[1, 100, 256, 257, 557]"
    assert_eq "$(json segs.json '" ".join(s["root"] for s in d["segments"])')" \
        "$(python3 "$RFC9162" roots "$TPM_STORE_PATH" 1 100 256 257 557 | tr '\n' ' ' | sed 's/ $//')"
    # every cached subtree node (level L, index i) is the MTH of leaves [i * 2^L, (i + 1) * 2^L);
    # the two complete 256-leaf blocks are cached
    python3 - "$TPM_STORE_PATH" "$RFC9162" <<'EOF'
import importlib.util, sqlite3, sys
spec = importlib.util.spec_from_file_location("rfc9162", sys.argv[2])
r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
leaves = [r.leaf_hash(e) for e in r.store_entries(sys.argv[1])]
con = sqlite3.connect(sys.argv[1])
nodes = con.execute("SELECT level, idx, hash FROM audit_nodes ORDER BY level, idx").fetchall()
assert {(8, 0), (8, 1)} <= {(l, i) for l, i, _ in nodes}, nodes
for l, i, h in nodes:
    w = 1 << l
    assert (i + 1) * w <= len(leaves) and bytes(h) == r.mth(leaves[i * w:(i + 1) * w]), (l, i)
EOF
    # proofs across the block boundary, from several processes
    {
        for s in 1 128 255 256 257 300 511 512 513 557; do echo "audit prove $s --tree-size 557"; done
        for s in 1 256 257; do echo "audit prove $s --tree-size 257"; done
        echo "audit prove 200 --tree-size 256"
        for p in "1 557" "100 557" "255 557" "256 557" "257 557" "256 512" "100 257" "512 557" "513 514"; do
            echo "audit prove --consistency $p"
        done
    } >p.cmd
    citadel tpm --json batch --input p.cmd >p.json
    assert_eq "$(verify_batch_proofs p.json "$TPM_STORE_PATH")" "14 9"
    # the default tree of `prove` is the latest segment's
    assert_eq "$(citadel tpm --json audit prove 3 | json - '[d["tree_size"], d["verified"]]')" "[557, true]"
}

# split_note NOTE_FILE PREFIX: PREFIX.body (text up to the blank line), and for each signature
# line i: PREFIX.i.name, PREFIX.i.keyid (hex), PREFIX.i.time (cosignatures: the u64 after the
# key id, else empty) and PREFIX.i.der. COSIG=1 reads the 8-byte timestamp.
split_note() {
    python3 - "$1" "$2" "${COSIG:-0}" <<'EOF'
import base64, sys
text, p, cosig = open(sys.argv[1], encoding="utf-8").read(), sys.argv[2], sys.argv[3] == "1"
body, sep, sigs = text.partition("\n\n")
assert sep and body and not body.endswith("\n"), "no blank line after the body"
open(p + ".body", "w", encoding="utf-8", newline="").write(body + "\n")
lines = sigs.split("\n")
assert lines[-1] == "" and len(lines) >= 2, "the note must end with a newline"
for i, line in enumerate(lines[:-1]):
    assert line.startswith("\u2014 "), "not an em dash signature line: %r" % line
    name, b64 = line[2:].rsplit(" ", 1)
    raw = base64.b64decode(b64, validate=True)
    open("%s.%d.name" % (p, i), "w").write(name)
    open("%s.%d.keyid" % (p, i), "w").write(raw[:4].hex())
    off = 12 if cosig else 4
    open("%s.%d.time" % (p, i), "w").write(str(int.from_bytes(raw[4:12], "big")) if cosig else "")
    open("%s.%d.der" % (p, i), "wb").write(raw[off:])
print(len(lines) - 1)
EOF
}

# keyid NAME PEM: SHA-256(NAME || 0x0A || 0x02 || SPKI DER)[:4] in hex, the DER from openssl.
keyid() {
    openssl pkey -pubin -in "$2" -outform DER -out "$T/spki.der"
    { printf '%s' "$1"; printf '\n\002'; cat "$T/spki.der"; } | openssl dgst -sha256 -binary | head -c 4 | od -An -tx1 | tr -d ' \n'
}

openssl_verifies() { # PEM SIG MSG
    local out
    out=$(openssl dgst -sha256 -verify "$1" -signature "$2" "$3" 2>&1) || fail "openssl does not verify $2 over $3: $out"
    assert_eq "$out" "Verified OK"
}

openssl_refuses() { # PEM SIG MSG
    if openssl dgst -sha256 -verify "$1" -signature "$2" "$3" >/dev/null 2>&1; then
        fail "openssl verified $2 over a changed $3"
    fi
}

itest_checkpoint_and_cosignature_with_openssl() {
    citadel tpm init >/dev/null
    citadel tpm identity init audit-signer --usage audit >/dev/null
    append_many 5
    citadel tpm audit segments close >/dev/null
    citadel tpm --json audit sign --identity audit-signer >sign.json
    python3 -c 'import json; d = json.load(open("sign.json")); open("note.txt", "w", encoding="utf-8", newline="").write(d["note"]); open("log.pem", "w").write(d["public_key_pem"])'
    origin=$(json sign.json 'd["origin"]')
    assert_eq "$(split_note note.txt cp)" 1
    # the body: origin, tree size, base64 of the root `segments list` reports (RFC 9162 MTH)
    root=$(python3 "$RFC9162" roots "$TPM_STORE_PATH" 5)
    assert_eq "$(cat cp.body)" "$(printf '%s\n5\n%s' "$origin" "$(printf '%s' "$root" | xxd -r -p | base64)")"
    assert_eq "$(cat cp.0.name)" "$origin"
    # the signature line's key id, and the ECDSA P-256 signature over SHA-256(body), by openssl
    assert_eq "$(cat cp.0.keyid)" "$(keyid "$origin" log.pem)"
    cmp -s <(openssl pkey -pubin -in log.pem -outform DER) \
        <(citadel tpm key export-pub audit-signer | openssl pkey -pubin -outform DER) || fail "the note's key is not audit-signer's"
    openssl_verifies log.pem cp.0.der cp.body
    sed 's/^5$/6/' cp.body >cp.changed
    openssl_refuses log.pem cp.0.der cp.changed

    # a witness in its own workspace co-signs; the cosignature/v1 message verifies with openssl
    citadel tpm audit publish --output pub.json >/dev/null
    (
        export TPM_STORE_PATH=$T/w/store.db
        mkdir -p "$T/w"
        citadel tpm init >/dev/null
        citadel tpm identity init w1 --usage audit >/dev/null
        citadel tpm key export-pub w1 --output "$T/w1.pem" >/dev/null
        citadel tpm audit witness cosign --identity w1 --input "$T/pub.json" --log-key "$T/log.pem" \
            --output "$T/receipt.json" >/dev/null
    )
    python3 -c 'import json; d = json.load(open("receipt.json")); open("cosig.txt", "w", encoding="utf-8", newline="").write(open("cp.body").read() + "\n" + d["cosignature"])'
    assert_eq "$(COSIG=1 split_note cosig.txt co)" 1
    assert_eq "$(cat co.0.name)" w1
    assert_eq "$(cat co.0.keyid)" "$(keyid w1 w1.pem)"
    assert_eq "$(cat co.0.time)" "$(json receipt.json 'd["timestamp"]')"
    { printf 'cosignature/v1\ntime %s\n' "$(cat co.0.time)"; cat cp.body; } >co.msg
    openssl_verifies w1.pem co.0.der co.msg
    # the time is signed: another time does not verify
    { printf 'cosignature/v1\ntime %s\n' "$(($(cat co.0.time) + 1))"; cat cp.body; } >co.later
    openssl_refuses w1.pem co.0.der co.later
    # and the log accepts the receipt it can check the same way
    citadel tpm audit witness add w1 --key w1.pem >/dev/null
    citadel tpm audit witness add --receipt receipt.json >/dev/null
    citadel tpm audit verify --witnesses 1 >/dev/null
}

itest_publish_proofs_verify_in_python() {
    citadel tpm init >/dev/null
    citadel tpm identity init audit-signer --usage audit >/dev/null
    for n in 3 4 9 23; do
        have=$(citadel tpm --json audit head | json - 'd["tree_size"]')
        append_many $((n - have))
        citadel tpm audit segments close >/dev/null
        citadel tpm audit sign --identity audit-signer >/dev/null
    done
    citadel tpm audit publish --output pub.json >/dev/null
    python3 - pub.json "$TPM_STORE_PATH" "$RFC9162" <<'EOF'
import base64, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("rfc9162", sys.argv[3])
r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
d = json.load(open(sys.argv[1]))
leaves = [r.leaf_hash(e) for e in r.store_entries(sys.argv[2])]
root = base64.b64decode(d["root"])
assert d["tree_size"] == 23 and root == r.mth(leaves[:23])
olds = []
for p in d["proofs"]:
    m = p["old_size"]
    old = base64.b64decode(p["old_root"])
    assert old == r.mth(leaves[:m]), m
    proof = [base64.b64decode(h) for h in p["consistency"]]
    assert r.verify_consistency(m, 23, old, root, proof), m
    assert not r.verify_consistency(m, 23, r.mth(leaves[:m + 1]), root, proof), m
    olds.append(m)
assert olds == [3, 4, 9], olds
EOF
    # --from N: only the proof from N
    citadel tpm audit publish --from 4 --output pub4.json >/dev/null
    assert_eq "$(json pub4.json '[p["old_size"] for p in d["proofs"]]')" "[4]"
}

interop_register
