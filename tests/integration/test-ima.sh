# SPDX-License-Identifier: Apache-2.0
# attest ima show|replay on the IMA lists in tests/data/ima (made by make-ima-lists.py the way
# the kernel writes them). PCR values are checked against a replay written here in python.

IMADIR="$ROOT/tests/data/ima"

# ima_expect LIST_ASCII: PCR 10 per bank, replayed in python from the ASCII list: the sha1
# (or the list's) bank extends the recorded template hash, sha256 the SHA-256 of the template
# data rebuilt from the fields; a violation (all-zero hash) extends all ones.
ima_expect() {
    python3 - "$1" <<'EOF'
import hashlib, json, struct, sys
def field(b): return struct.pack("<I", len(b)) + b
pcr = {"sha1": bytes(20), "sha256": bytes(32)}
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    parts = line.split(" ")
    while parts[0] == "":
        parts.pop(0)
    th, tmpl = bytes.fromhex(parts[1]), parts[2]
    if tmpl == "ima":
        d, name = bytes.fromhex(parts[3]), parts[4]
        data = d + name.encode().ljust(256, b"\0")
    else:
        alg, hexd = parts[3].split(":")
        data = field(alg.encode() + b":\0" + bytes.fromhex(hexd)) + field(parts[4].encode() + b"\0")
        if tmpl == "ima-sig":
            data += field(bytes.fromhex(parts[5]))
    violation = not any(th)
    recorded = "sha1" if len(th) == 20 else "sha256"
    for bank, h in (("sha1", hashlib.sha1), ("sha256", hashlib.sha256)):
        n = h().digest_size
        if violation:
            d = b"\xff" * n
        elif bank == recorded:
            d = th
        else:
            d = h(data).digest()
        pcr[bank] = h(pcr[bank] + d).digest()
print(json.dumps({"sha1": {"10": pcr["sha1"].hex()}, "sha256": {"10": pcr["sha256"].hex()}}, sort_keys=True))
EOF
}

test_ima_replay_matches_python() {
    for t in ima-ng ima-sig ima-legacy; do
        exp=$(ima_expect "$IMADIR/$t-ascii")
        for f in "$t-ascii" "$t-binary"; do
            citadel tpm --json attest ima replay "$IMADIR/$f" >r.json
            assert_eq "$(python3 -c 'import json; print(json.dumps(json.load(open("r.json"))["pcrs"], sort_keys=True))')" "$exp" "$f"
            assert_eq "$(json r.json '[d["list_bank"], d["computed_banks"], d["template_hash_mismatches"]]')" '["sha1", ["sha256"], []]' "$f"
        done
        # the _sha256 lists record SHA-256 template hashes: the same two PCR values
        [ "$t" = ima-legacy ] && continue
        for f in "$t-ascii_sha256" "$t-binary_sha256"; do
            citadel tpm --json attest ima replay "$IMADIR/$f" >r.json
            assert_eq "$(python3 -c 'import json; print(json.dumps(json.load(open("r.json"))["pcrs"], sort_keys=True))')" "$exp" "$f"
            assert_eq "$(json r.json '[d["list_bank"], d["computed_banks"], d["violations"]]')" '["sha256", ["sha1"], 1]' "$f"
        done
    done
    txt=$(citadel tpm attest ima replay "$IMADIR/ima-ng-binary")
    assert_contains "$txt" "10  sha1     recorded"
    assert_contains "$txt" "7 entries (binary list), 1 violations"
    assert_no_file "$TPM_STORE_PATH"
}

test_ima_show_fields() {
    citadel tpm --json attest ima show "$IMADIR/ima-sig-binary" >s.json
    assert_eq "$(json s.json '[d["format"], d["template_hash_algorithm"], d["entries_total"], d["violations"]]')" '["binary", "sha1", 7, 1]'
    assert_eq "$(json s.json 'd["entries"][0]["path"]')" boot_aggregate
    assert_eq "$(json s.json 'd["entries"][1]["path"]')" /usr/bin/bash
    assert_eq "$(json s.json 'd["entries"][1]["file_digest"]')" "sha256:$(printf '#!bash\n%.0s' $(seq 100) | sha256sum | cut -d' ' -f1)"
    assert_eq "$(json s.json 'd["entries"][5]["path"]')" /tmp/file_with_spaces
    # the signature travels byte for byte; unsigned files have an empty one
    assert_eq "$(json s.json 'd["entries"][1]["signature"][:14]')" 030204a1b2c3d4
    assert_eq "$(json s.json '[d["entries"][1]["signature_size"], d["entries"][3]["signature_size"]]')" "[73, 0]"
    # every template hash matches its data, the violation is not checkable
    assert_eq "$(json s.json '[e["template_hash_matches_data"] for e in d["entries"]]')" "[true, true, true, true, null, true, true]"
    assert_eq "$(json s.json 'd["entries"][4]["violation"]')" true
    # the ASCII list says the same
    citadel tpm --json attest ima show "$IMADIR/ima-sig-ascii" >a.json
    assert_eq "$(json a.json '[(e["path"], e["file_digest"], e.get("signature"), e["template_hash"]) for e in d["entries"]]')" \
        "$(json s.json '[(e["path"], e["file_digest"], e.get("signature"), e["template_hash"]) for e in d["entries"]]')"
    assert_eq "$(json a.json 'd["entries"][2]["line"]')" 3
    # --pcr filters; text output
    assert_eq "$(citadel tpm --json attest ima show "$IMADIR/ima-ng-ascii" --pcr 11 | json - '[d["entries_shown"], d["entries_total"]]')" "[0, 7]"
    txt=$(citadel tpm attest ima show "$IMADIR/ima-ng-ascii")
    assert_contains "$txt" "ima-ng    yes sha256:"
    assert_contains "$txt" "VIO"
    citadel tpm --format yaml attest ima show "$IMADIR/ima-legacy-binary" | yaml_ok
}

test_ima_tampered_and_malformed_lists() {
    # a changed path no longer matches its recorded template hash: reported, and the replay
    # still extends what was recorded (as the kernel did) while the computed bank changes
    python3 - "$IMADIR/ima-ng-binary" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.find(b"/etc/ld.so.cache")
b[i + 5] = ord("X")
open("tampered", "wb").write(b)
EOF
    citadel tpm --json attest ima replay tampered >t.json
    citadel tpm --json attest ima replay "$IMADIR/ima-ng-binary" >o.json
    assert_eq "$(json t.json 'd["template_hash_mismatches"]')" "[3]"
    assert_eq "$(json t.json 'd["pcrs"]["sha1"]')" "$(json o.json 'd["pcrs"]["sha1"]')"
    assert_ne "$(json t.json 'd["pcrs"]["sha256"]')" "$(json o.json 'd["pcrs"]["sha256"]')"
    assert_eq "$(citadel tpm --json attest ima show tampered | json - 'd["entries"][3]["template_hash_matches_data"]')" false
    # big-endian lists (non-canonical, from a big-endian machine) are recognised: there the
    # field lengths are big-endian in the list and in what the template hash covers
    python3 - "$IMADIR/ima-ng-binary" <<'EOF'
import hashlib, struct, sys
b = open(sys.argv[1], "rb").read(); o = 0; out = b""; pcr10 = bytes(20)
while o < len(b):
    pcr, = struct.unpack_from("<I", b, o); th = b[o + 4:o + 24]; o += 24
    nl, = struct.unpack_from("<I", b, o); name = b[o + 4:o + 4 + nl]; o += 4 + nl
    tl, = struct.unpack_from("<I", b, o); td = b[o + 4:o + 4 + tl]; o += 4 + tl
    f, q = b"", 0
    while q < len(td):
        fl, = struct.unpack_from("<I", td, q); f += struct.pack(">I", fl) + td[q + 4:q + 4 + fl]; q += 4 + fl
    if any(th):
        th = hashlib.sha1(f).digest()
    pcr10 = hashlib.sha1(pcr10 + (th if any(th) else b"\xff" * 20)).digest()
    out += struct.pack(">I", pcr) + th + struct.pack(">I", nl) + name + struct.pack(">I", len(f)) + f
open("be.bin", "wb").write(out)
open("be.expect", "w").write(pcr10.hex())
EOF
    citadel tpm --json attest ima replay be.bin >be.json
    assert_eq "$(json be.json '[d["pcrs"]["sha1"]["10"], d["template_hash_mismatches"], d["entries"]]')" "[\"$(cat be.expect)\", [], 7]"
    assert_eq "$(citadel tpm --json attest ima show be.bin | json - '[e["path"] for e in d["entries"]]')" \
        "$(citadel tpm --json attest ima show "$IMADIR/ima-ng-binary" | json - '[e["path"] for e in d["entries"]]')"
    assert_eq "$(citadel tpm --json attest ima show be.bin | json - 'd["byte_order"]')" big-endian
    # truncated binary list: the entry and its offset
    size=$(stat -c %s "$IMADIR/ima-ng-binary")
    head -c $((size - 5)) "$IMADIR/ima-ng-binary" >cut.bin
    expect_fail 9 TPM0071 citadel tpm attest ima replay cut.bin
    assert_contains "$ERR" "malformed IMA list: entry 6 at offset"
    # every cut of the binary list is a prefix or TPM0071, never anything else
    for at in $(seq 1 7 "$size"); do
        head -c "$at" "$IMADIR/ima-sig-binary" >c.bin
        rc=0
        citadel tpm --json attest ima show c.bin >/dev/null 2>c.err || rc=$?
        [ "$rc" -eq 0 ] || [ "$rc" -eq 9 ] || fail "cut at $at: exit $rc"
        [ "$rc" -eq 0 ] || assert_eq "$(json c.err 'd["error"]["code"]')" TPM0071
    done
    # ASCII: a bad line is named by its number
    sed '3s/ima-ng sha256:/ima-ng sha256-/' "$IMADIR/ima-ng-ascii" >bad.txt
    expect_fail 9 TPM0071 citadel tpm attest ima show bad.txt
    assert_contains "$ERR" "line 3"
    sed '2s/^10 /10 zz/' "$IMADIR/ima-ng-ascii" >bad2.txt
    expect_fail 9 TPM0071 citadel tpm attest ima replay bad2.txt
    printf '30 %s ima-ng sha256:00 /x\n' "$(printf '%040d' 1)" >bad3.txt
    expect_fail 9 TPM0071 citadel tpm attest ima replay bad3.txt
    assert_contains "$ERR" "PCR 30 is out of range"
    # limits and usage
    truncate -s $((64 * 1024 * 1024 + 1)) big
    expect_fail 2 TPM0030 citadel tpm attest ima replay big
    : >empty
    expect_fail 2 TPM0031 citadel tpm attest ima show empty
    expect_fail 2 TPM0002 citadel tpm attest ima verify "$IMADIR/ima-ng-ascii"
    expect_fail 2 TPM0002 citadel tpm attest ima replay "$IMADIR/ima-ng-ascii" --pcr 10
}
