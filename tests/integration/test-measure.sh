# SPDX-License-Identifier: Apache-2.0
# The Measured Merkle Anchor (`citadel tpm measure`, docs/mma.md): the upgrade flow from the
# issue (a release authority, an anchor identity bound to PCR 14 by PolicyAuthorize, enroll,
# checkpoint --extend-pcr 14, approve, sign; an upgrade locks the anchor until the new state is
# approved, and the approval is in the signed log), the PCR replay checked in python, rollback and
# outside extends, tampering, the error cases, and --verify-ima against IMA lists in the kernel's
# formats (tests/data/ima, plus the same list with the citadel binary added).

IMADIR="$ROOT/tests/data/ima"

# measure_replay: PCR 14 as python replays it from the measure stream of the store at $TPM_STORE_PATH
# (base = the latest enroll's pcr_value, each checkpoint's extend digest recomputed from the spec
# in docs/mma.md: SHA-256("citadel.measure.checkpoint/v1" 0x00 origin 0x00 be64(size) root)).
measure_replay() {
    python3 - "$TPM_STORE_PATH" <<'EOF'
import hashlib, json, sqlite3, struct, sys
db = sqlite3.connect(sys.argv[1])
wid = db.execute("SELECT value FROM meta WHERE key = 'workspace_id'").fetchone()[0]
origin = "citadel.tpm/audit/" + wid[:32]
rows = db.execute("SELECT seqno, event, payload FROM audit_entries WHERE stream = 'measure' ORDER BY seqno").fetchall()
base, start = None, 0
for i, (seq, ev, p) in enumerate(rows):
    p = json.loads(p)
    if ev == "measure.enroll" and p.get("pcr") == 14:
        base, start = bytes.fromhex(p["pcr_value"]), i
pcr = base
for seq, ev, p in rows[start:]:
    p = json.loads(p)
    if ev != "measure.checkpoint" or p.get("pcr") != 14:
        continue
    if pcr is None:
        pcr = bytes.fromhex(p["pcr_before"])
    d = hashlib.sha256(b"citadel.measure.checkpoint/v1\0" + origin.encode() + b"\0" +
                       struct.pack(">Q", p["tree_size"]) + bytes.fromhex(p["root"])).digest()
    assert d.hex() == p["extend_digest"], "extend digest"
    pcr = hashlib.sha256(pcr + d).digest()
print(pcr.hex())
EOF
}

pcr14() { citadel tpm --json pcr show --index 14 | json - 'd["pcrs"][0]["value"]'; }

# The release authority and the anchor identity bound to PCR 14 through it.
anchor_setup() {
    citadel tpm identity init release --authority >/dev/null
    citadel tpm identity init anchor --authorized-by release --pcr-bind 14 >/dev/null
}

# ima_with_binary IN OUT PATH SHA256HEX: OUT is the binary ima-ng list IN (SHA-1 template hashes)
# with one more entry for PATH with that file digest, written the way the kernel writes it.
ima_with_binary() {
    python3 - "$@" <<'EOF'
import hashlib, struct, sys
src, dst, path, digest = sys.argv[1], sys.argv[2], sys.argv[3], bytes.fromhex(sys.argv[4])
def field(b): return struct.pack("<I", len(b)) + b
td = field(b"sha256:\0" + digest) + field(path.encode() + b"\0")
entry = struct.pack("<I", 10) + hashlib.sha1(td).digest() + field(b"ima-ng") + field(td)
open(dst, "wb").write(open(src, "rb").read() + entry)
EOF
}

# 1. The upgrade flow from the issue.
test_measure_upgrade_flow() {
    init_vtpm
    anchor_setup

    # enroll the citadel binary; the base of PCR 14 is recorded
    citadel tpm --json measure enroll --pcr 14 >enroll.json
    assert_eq "$(json enroll.json '[d["kind"], d["pcr"], d["bank"], d["pcr_value"], d["seqno"]]')" \
        "[\"citadel\", 14, \"sha256\", \"$(printf '0%.0s' $(seq 64))\", 1]"
    assert_eq "$(json enroll.json 'd["sha256"]')" "$(sha256sum "$CITADEL_BIN" | cut -d' ' -f1)"
    assert_eq "$(json enroll.json 'd["path"]')" "$(readlink -f "$CITADEL_BIN")"

    # seal it and extend PCR 14 with the segment's root
    citadel tpm --json measure checkpoint --extend-pcr 14 >cp1.json
    assert_eq "$(json cp1.json '[d["segment"], d["tree_size"], d["measurements"], d["checkpoint_seqno"], d["pcr_value_matches"]]')" \
        '[1, 1, 1, 2, true]'
    assert_eq "$(json cp1.json 'd["locked_identities"]')" '[{"identity": "anchor", "authorized_by": "release"}]'
    assert_eq "$(pcr14)" "$(json cp1.json 'd["pcr_value"]')"
    assert_eq "$(measure_replay)" "$(pcr14)" "python replay of PCR 14"
    # the segment root is the log's own
    assert_eq "$(citadel tpm --json audit segments list | json - 'd["segments"][0]["root"]')" "$(json cp1.json 'd["root"]')"

    # the release authority approves the state; the approval is an entry of the measure stream
    citadel tpm --json policy approve --authority release --pcr 14 >ap1.json
    assert_eq "$(json ap1.json '[d["audit"]["event"], d["audit"]["seqno"], d["anchor"][0]["matches_replay"]]')" \
        '["measure.approval", 3, true]'
    assert_eq "$(json ap1.json 'd["pcrs"][0]["value"]')" "$(pcr14)"

    # the anchor signs the checkpoint: the open measure entries are sealed first, so the signed
    # tree covers the approval that unlocked it
    citadel tpm --json measure sign --identity anchor >s1.json
    assert_eq "$(json s1.json '[d["identity"], d["tree_size"], d["sealed_segment"]["segment"], d["anchor"]["authorized_by"]]')" \
        '["anchor", 3, 2, "release"]'
    citadel tpm --json measure verify 1 >v1.json
    assert_eq "$(json v1.json '[c["status"] for c in d["checks"]]')" '["pass", "pass", "pass", "info"]'
    assert_eq "$(json v1.json 'd["valid"]')" true

    # the upgrade: a new binary is measured and checkpointed, PCR 14 moves on
    cp "$CITADEL_BIN" citadel-1.1 && printf 'v1.1' >>citadel-1.1
    citadel tpm --json measure file citadel-1.1 --kind binary >m2.json
    assert_eq "$(json m2.json '[d["measurements"][0]["seqno"], d["measurements"][0]["kind"], d["pending"]]')" '[4, "binary", 1]'
    assert_eq "$(json m2.json 'd["measurements"][0]["sha256"]')" "$(sha256sum citadel-1.1 | cut -d' ' -f1)"
    citadel tpm --json measure checkpoint --extend-pcr 14 >cp2.json
    assert_ne "$(pcr14)" "$(json ap1.json 'd["pcrs"][0]["value"]')"
    assert_eq "$(measure_replay)" "$(pcr14)" "python replay after the upgrade"

    # the TPM refuses the anchor until the new state is approved
    expect_fail 7 TPM0047 citadel tpm measure sign --identity anchor
    assert_contains "$ERR" "has not approved the PCR state now"
    assert_contains "$ERR" "policy approve --authority release --pcr 14"

    citadel tpm --json policy approve --authority release --pcr 14 >ap2.json
    assert_eq "$(json ap2.json '[d["audit"]["event"], d["anchor"][0]["matches_replay"], d["anchor"][0]["checkpoints"]]')" \
        '["measure.approval", true, 2]'
    citadel tpm --json measure sign --identity anchor >s2.json
    assert_eq "$(json s2.json 'd["identity"]')" anchor
    # the same key before and after: an upgrade is an approval, not a re-key
    assert_eq "$(json s2.json 'd["public_key_pem"]')" "$(json s1.json 'd["public_key_pem"]')"
    assert_eq "$(citadel tpm --json identity show anchor | json - 'd["version"]')" 1

    # the whole log verifies, both checkpoints signed by the anchor
    citadel tpm --json audit verify >av.json
    assert_eq "$(json av.json '[d["valid"], d["checkpoints"], d["latest_checkpoint"]["identity"]]')" '[true, 2, "anchor"]'

    # the approval of the new state is in the signed log
    aseq=$(json ap2.json 'd["audit"]["seqno"]')
    citadel tpm --json audit show "$aseq" >e.json
    assert_eq "$(json e.json '[d["stream"], d["event"]]')" '["measure", "measure.approval"]'
    payload() { python3 -c 'import json, sys; p = json.loads(json.load(open(sys.argv[1]))["payload"]); print(eval(sys.argv[2], {"p": p}))' "$@"; }
    assert_eq "$(payload e.json 'p["pcrs"][0]["value"]')" "$(pcr14)"
    assert_eq "$(payload e.json '[p["authority"], p["policy_digest"]]')" "['release', '$(json ap2.json 'd["policy_digest"]')']"
    assert_eq "$(payload e.json 'p["anchor"][0]["last_checkpoint"]["segment"]')" "$(json cp2.json 'd["segment"]')"
    [ "$aseq" -le "$(json s2.json 'd["tree_size"]')" ] || fail "the approval is not under the signed checkpoint"
    citadel tpm --json audit prove "$aseq" >p.json
    assert_eq "$(json p.json 'd["verified"]')" true

    # the new binary's measurement verifies against the latest signed checkpoint and PCR 14
    citadel tpm --json measure verify 4 >v4.json
    assert_eq "$(json v4.json '[d["valid"], d["checkpoint"]["identity"], d["sealed_by"]["segment"]]')" \
        "[true, \"anchor\", $(json cp2.json 'd["segment"]')]"
    citadel tpm --json measure rollback-check >rc.json
    assert_eq "$(json rc.json '[d["valid"], d["pcrs"][0]["checkpoints"], d["audit"]["rolled_back"]]')" '[true, 2, false]'
    citadel tpm --json measure status >st.json
    assert_eq "$(json st.json '[d["measurements_total"], len(d["approvals"]), d["anchors"][0]["matches"], d["pending"]]')" \
        '[2, 2, true, []]'
    doctor_consistent
}

# 2. Error cases: missing file, nothing pending, refused PCRs, unknown segment, entries that are
# not measurements, not yet signed.
test_measure_errors() {
    init_vtpm
    anchor_setup
    expect_fail 2 TPM0029 citadel tpm measure file nosuch --kind config
    assert_contains "$ERR" "does not exist"
    mkdir d
    expect_fail 2 TPM0029 citadel tpm measure file d
    assert_contains "$ERR" "not a regular file"
    printf 'a=1\n' >ok.conf
    # one missing file of several: nothing is written
    expect_fail 2 TPM0029 citadel tpm measure file ok.conf nosuch
    assert_eq "$(citadel tpm --json audit head | json - 'd["tree_size"]')" 0
    expect_fail 2 TPM0002 citadel tpm measure file ok.conf --kind 'Bad Kind'
    expect_fail 2 TPM0130 citadel tpm measure checkpoint
    expect_fail 2 TPM0135 citadel tpm measure enroll --pcr 7
    expect_fail 2 TPM0135 citadel tpm measure checkpoint --extend-pcr 16
    assert_contains "$ERR" "resettable"
    expect_fail 2 TPM0135 citadel tpm measure checkpoint --extend-pcr 10
    expect_fail 2 TPM0044 citadel tpm measure checkpoint --extend-pcr 24
    expect_fail 2 TPM0002 citadel tpm measure sign

    # an empty file is measured (an empty config is still a state)
    : >empty.conf
    citadel tpm --json measure file ok.conf empty.conf --kind config >m.json
    assert_eq "$(json m.json '[(x["seqno"], x["size"]) for x in d["measurements"]]')" '[[1, 4], [2, 0]]'
    assert_eq "$(json m.json 'd["measurements"][1]["sha256"]')" "$(sha256sum empty.conf | cut -d' ' -f1)"

    # not sealed, not signed yet
    expect_fail 11 TPM0120 citadel tpm measure verify 1
    assert_contains "$OUT" "not sealed by a measure checkpoint"
    citadel tpm measure checkpoint >/dev/null
    expect_fail 2 TPM0130 citadel tpm measure checkpoint
    expect_fail 11 TPM0120 citadel tpm measure verify 2

    # unknown segment, non-measurement entries, unknown entries
    expect_fail 3 TPM0111 citadel tpm measure sign --identity anchor 99
    citadel tpm audit append --event deploy --payload 'not a measurement' >/dev/null
    expect_fail 3 TPM0131 citadel tpm measure verify 4
    assert_contains "$ERR" "deploy entry of the default stream"
    expect_fail 3 TPM0131 citadel tpm measure verify 3
    assert_contains "$ERR" "measure.checkpoint"
    expect_fail 3 TPM0101 citadel tpm measure verify 99
    expect_fail 2 TPM0002 citadel tpm measure verify zero

    # an identity that cannot sign checkpoints
    expect_fail 3 TPM0007 citadel tpm measure sign --identity release 1
    # plan mode changes nothing
    citadel tpm --plan measure checkpoint --extend-pcr 14 >/dev/null 2>&1 || true
    citadel tpm --json --plan measure file ok.conf | json - 'd["plan"]' >plan.txt
    assert_eq "$(cat plan.txt)" true
    assert_eq "$(citadel tpm --json audit head | json - 'd["tree_size"]')" 4
}

# 3. The wrong PCR state: an extend outside citadel locks the anchor and breaks the replay; a
# checkpoint whose extend never reached the TPM is named as such.
test_measure_wrong_pcr_state() {
    init_vtpm
    anchor_setup
    citadel tpm measure enroll --pcr 14 >/dev/null
    citadel tpm measure checkpoint --extend-pcr 14 >/dev/null
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm measure sign --identity anchor >/dev/null
    citadel tpm measure verify 1 >/dev/null

    citadel tpm pcr extend --index 14 --digest "$(printf rogue | sha256sum | cut -d' ' -f1)" >/dev/null
    expect_fail 7 TPM0047 citadel tpm measure sign --identity anchor 1
    expect_fail 9 TPM0132 citadel tpm measure verify 1
    assert_contains "$OUT" "extends the log does not record"
    expect_fail 9 TPM0132 citadel tpm measure rollback-check
    assert_contains "$ERR" "PCR 14 does not hold the value"
    citadel tpm --json measure rollback-check >rc.json 2>/dev/null || true
    assert_eq "$(json rc.json '[d["valid"], d["audit"]["rolled_back"], d["pcrs"][0]["matches"]]')" '[false, false, false]'
    assert_eq "$(json rc.json 'd["pcrs"][0]["tpm"]')" "$(pcr14)"
    assert_eq "$(json rc.json 'd["pcrs"][0]["replayed"]')" "$(measure_replay)"

    # approving the state now records that the log does not explain it
    citadel tpm --json policy approve --authority release --pcr 14 >ap.json
    assert_eq "$(json ap.json 'd["anchor"][0]["matches_replay"]')" false
    assert_contains "$(json ap.json 'd["warning"]')" "does not explain"

    # a new enroll re-bases the replay (a reboot), in the log for everyone to see
    citadel tpm --json measure enroll --pcr 14 >e2.json
    assert_eq "$(json e2.json 'd["pcr_value"]')" "$(pcr14)"
    citadel tpm measure rollback-check >/dev/null
}

# 4. A store rolled back to before a checkpoint: the audit anti-rollback check (NV counter) and
# the PCR replay both see it; the TPM's PCR cannot be rolled back.
test_measure_rollback_check_rolled_back_store() {
    init_vtpm
    anchor_setup
    citadel tpm measure enroll --pcr 14 >/dev/null
    citadel tpm measure checkpoint --extend-pcr 14 >/dev/null
    mkdir bak
    cp store.db store.db.audit-head bak/
    [ -f store.db-wal ] && cp store.db-wal bak/
    printf 'v2' >app
    citadel tpm measure file app --kind binary >/dev/null
    citadel tpm measure checkpoint --extend-pcr 14 >/dev/null
    citadel tpm measure rollback-check >/dev/null

    # the disk goes back to the copy; the TPM (its state file) does not
    rm -f store.db-wal store.db-shm
    cp bak/* .
    expect_fail 11 TPM0108 citadel tpm measure rollback-check
    citadel tpm --json measure rollback-check >rc.json 2>/dev/null || true
    assert_eq "$(json rc.json '[d["rolled_back"], d["audit"]["rolled_back"], d["pcrs"][0]["matches"]]')" '[true, true, false]'
    assert_eq "$(json rc.json 'd["pcrs"][0]["checkpoints"]')" 1
    # appends are checked against the head file only (restored with the store); sealing checks
    # the TPM's NV counter and refuses: no checkpoint can paper over the rollback
    printf 'v3' >app
    citadel tpm measure file app >/dev/null
    expect_fail 11 TPM0108 citadel tpm measure checkpoint --extend-pcr 14
}

# 5. A measurement changed in the store after it was sealed: its inclusion proof no longer leads
# to the signed root and the PCR replay (recomputed from the entries) no longer matches.
test_measure_tampered_measurement() {
    init_vtpm
    anchor_setup
    printf 'cfg' >app.conf
    citadel tpm measure file app.conf --kind config >/dev/null
    citadel tpm measure enroll --pcr 14 >/dev/null
    citadel tpm measure checkpoint --extend-pcr 14 >/dev/null
    citadel tpm policy approve --authority release --pcr 14 >/dev/null
    citadel tpm measure sign --identity anchor >/dev/null
    citadel tpm measure verify 1 >/dev/null
    python3 - "$TPM_STORE_PATH" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
p = db.execute("SELECT payload FROM audit_entries WHERE seqno = 1").fetchone()[0]
db.execute("UPDATE audit_entries SET payload = ? WHERE seqno = 1", (p.replace(b'"kind":"config"', b'"kind":"binary"'),))
db.commit()
EOF
    expect_fail 11 TPM0109 citadel tpm measure verify 1
    assert_contains "$OUT" "does not lead to the signed root"
    citadel tpm --json measure verify 1 >v.json 2>/dev/null || true
    assert_eq "$(json v.json '[c["status"] for c in d["checks"]][:3]')" '["pass", "fail", "fail"]'
    assert_contains "$(json v.json 'd["checks"][2]["detail"]')" "no longer matches"
    expect_fail 11 TPM0102 citadel tpm audit verify
}

# 6. --verify-ima: no list (said so, not an error), a list without the binary (not-measured), the
# same list with the binary added (measured, binary and ASCII), another digest at the binary's
# path (mismatch: refused, nothing recorded), --require-ima.
test_measure_enroll_verify_ima() {
    init_vtpm
    exe=$(readlink -f "$CITADEL_BIN")
    sha=$(sha256sum "$CITADEL_BIN" | cut -d' ' -f1)

    citadel tpm --json measure enroll --verify-ima --ima-log "$T/no-such-list" >e0.json
    assert_eq "$(json e0.json 'd["ima"]["verdict"]')" unavailable
    assert_contains "$(json e0.json 'd["ima"]["detail"]')" "No such file"
    txt=$(citadel tpm measure enroll --verify-ima --ima-log "$T/no-such-list")
    assert_contains "$txt" "verdict: unavailable"

    # the shipped list (made the way the kernel writes it) does not name citadel
    citadel tpm --json measure enroll --verify-ima --ima-log "$IMADIR/ima-ng-binary" >e1.json
    assert_eq "$(json e1.json '[d["ima"]["verdict"], d["ima"]["file_entries"]]')" '["not-measured", 7]'
    assert_contains "$(json e1.json 'd["ima"]["detail"]')" "does not name this binary"
    expect_fail 9 TPM0134 citadel tpm measure enroll --require-ima --ima-log "$IMADIR/ima-ng-ascii"
    assert_contains "$ERR" "not-measured"

    # the list with the running binary added: measured, in the binary and the ASCII form
    ima_with_binary "$IMADIR/ima-ng-binary" with-citadel "$exe" "$sha"
    citadel tpm attest ima replay with-citadel >/dev/null
    citadel tpm --json measure enroll --pcr 14 --require-ima --ima-log with-citadel >e2.json
    assert_eq "$(json e2.json '[d["ima"]["verdict"], d["ima"]["entries"][0]["entry"], d["ima"]["entries"][0]["path"]]')" \
        "[\"measured\", 7, \"$exe\"]"
    assert_eq "$(json e2.json 'd["ima"]["entries"][0]["file_digest"]')" "sha256:$sha"
    citadel tpm --json attest ima show with-citadel | json - 'd["_text"]' >/dev/null 2>&1 || true
    # the verdict is recorded in the log entry
    citadel tpm --json audit show "$(json e2.json 'd["seqno"]')" >a.json
    assert_eq "$(python3 -c 'import json; p = json.loads(json.load(open("a.json"))["payload"]); print(p["ima"]["verdict"], p["ima"]["entry"], p["pcr"])')" "measured 7 14"
    # the ASCII form of the same list, as tpm2 tools and the kernel print it
    citadel tpm --json attest ima show with-citadel >show.json
    python3 - <<'EOF' >with-citadel.ascii
import json
d = json.load(open("show.json"))
for e in d["entries"]:
    print("%2d %s %s %s %s" % (e["pcr"], e["template_hash"], e["template"], e["file_digest"], e["path"]))
EOF
    citadel tpm --json measure enroll --verify-ima --ima-log with-citadel.ascii >e3.json
    assert_eq "$(json e3.json 'd["ima"]["verdict"]')" measured

    # the kernel measured other contents at this path: refused, nothing recorded
    ima_with_binary "$IMADIR/ima-ng-binary" other-citadel "$exe" "$(printf other | sha256sum | cut -d' ' -f1)"
    before=$(citadel tpm --json audit head | json - 'd["tree_size"]')
    expect_fail 9 TPM0133 citadel tpm measure enroll --verify-ima --ima-log other-citadel
    assert_contains "$ERR" "with another digest"
    assert_eq "$(citadel tpm --json audit head | json - 'd["tree_size"]')" "$before"

    # a malformed list is an error of its own
    printf 'garbage' >bad-list
    expect_fail 9 TPM0071 citadel tpm measure enroll --verify-ima --ima-log bad-list
}

# 7. The flow on the mock backend in one process (batch), with several files in one append.
test_measure_mock_batch() {
    printf 'a' >a.conf
    printf 'b' >b.conf
    cat >cmds <<'C'
identity init release --authority
identity init anchor --authorized-by release --pcr-bind 14
measure file a.conf b.conf --kind config
measure checkpoint --extend-pcr 14
policy approve --authority release --pcr 14
measure sign --identity anchor
measure verify 2
measure rollback-check
C
    citadel tpm --backend mock --json batch --input cmds >flow.json
    python3 - <<'PY'
import json
docs, buf = [], ""
for line in open("flow.json"):
    buf += line
    if line.startswith("}"):
        docs.append(json.loads(buf)); buf = ""
assert len(docs) == 9 and docs[8]["failed"] == 0, docs[-1]
assert [m["seqno"] for m in docs[2]["measurements"]] == [1, 2], docs[2]
assert docs[3]["pcr_value_matches"] is True and docs[3]["tree_size"] == 2, docs[3]
assert docs[4]["audit"]["event"] == "measure.approval", docs[4]
assert docs[5]["identity"] == "anchor", docs[5]
assert docs[6]["valid"] is True and docs[6]["checks"][2]["status"] == "pass", docs[6]
assert docs[7]["valid"] is True, docs[7]
PY
}
