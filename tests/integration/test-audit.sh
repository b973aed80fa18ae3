# SPDX-License-Identifier: Apache-2.0
# `citadel tpm audit`: every verb on vtpm (and a short flow on swtpm). Appends and what they
# refuse, head/show, chain verify, segments, signed checkpoints, verify from genesis, proofs and
# their checker, rollback, publish and witnesses across two workspaces (pinning, a second round
# with a consistency proof, forged receipts, a forked log, a shrinking log), checkpoints signed
# by another key, the secret tier (no plaintext in the store, key rotation), --plan, --json and
# --help.

# sql STATEMENT...: runs SQL on the store (python's sqlite3: the sqlite3 shell may be absent).
sql() {
    python3 - "$TPM_STORE_PATH" "$@" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for s in sys.argv[2:]:
    for row in con.execute(s):
        print("|".join(str(c) for c in row))
con.commit()
con.close()
EOF
}

# a log workspace with entries 1..N and an audit signing identity
log_with() {
    init_vtpm
    citadel tpm identity init audit-signer --usage audit >/dev/null
    local i
    for i in $(seq 1 "$1"); do echo "audit append --event e.$i --payload 'entry $i'"; done >"$T/cmds"
    citadel tpm batch --input "$T/cmds" >/dev/null
}

size_of() { citadel tpm --json audit head | json - 'd["tree_size"]'; }

test_audit_append_head_show() {
    init_vtpm
    # text
    out=$(citadel tpm --json audit append --event deploy --payload 'release 1.4.2 to prod')
    assert_eq "$(printf '%s' "$out" | json - '[d["seqno"], d["stream"], d["event"]]')" '[1, "default", "deploy"]'
    h1=$(printf '%s' "$out" | json - 'd["entry_hash"]')
    # a file, binary
    printf '\x00\x01\xff binary' >bin
    citadel tpm audit append --event file.bin --payload-file bin >/dev/null
    # stdin
    printf 'from stdin\n' | citadel tpm audit append --event stdin --payload-file - >/dev/null
    # another stream, and no payload at all
    citadel tpm audit streams create ops --tier public >/dev/null
    citadel tpm audit append --stream ops --event ops/restart:db_1 >/dev/null
    assert_eq "$(size_of)" 4
    # show: every field as written
    s1=$(citadel tpm --json audit show 1)
    assert_eq "$(printf '%s' "$s1" | json - '[d["seqno"], d["stream"], d["event"], d["payload"], d["sealed"], d["actor"] != ""]')" \
        '[1, "default", "deploy", "release 1.4.2 to prod", false, true]'
    assert_eq "$(printf '%s' "$s1" | json - 'd["entry_hash"]')" "$h1"
    assert_eq "$(printf '%s' "$s1" | json - 'd["prev_hash"]')" "$(printf '0%.0s' $(seq 64))"
    s2=$(citadel tpm --json audit show 2)
    assert_eq "$(printf '%s' "$s2" | json - 'd["prev_hash"]')" "$h1" "entry 2 links to entry 1"
    assert_eq "$(printf '%s' "$s2" | json - 'd["payload_base64"]')" "$(base64 <bin)"
    assert_eq "$(printf '%s' "$s2" | json - 'd["payload_size"]')" 10
    assert_eq "$(citadel tpm --json audit show 3 | json - 'd["payload"]')" "from stdin"
    assert_eq "$(citadel tpm --json audit show 4 | json - '[d["stream"], d["event"], d["payload_size"]]')" '["ops", "ops/restart:db_1", 0]'
    assert_contains "$(citadel tpm audit show 1)" "release 1.4.2 to prod"
    # head, of the log and of a stream
    assert_eq "$(citadel tpm --json audit head | json - '[d["seqno"], d["tree_size"], d["segment"], d["sealed_through"]]')" '[4, 4, null, 0]'
    assert_eq "$(citadel tpm --json audit head --stream default | json - '[d["seqno"], d["tree_size"], d["stream"]]')" '[3, 4, "default"]'
    assert_eq "$(citadel tpm --json audit head --stream tpmd | json - '[d["seqno"], d["entry_hash"]]')" '[0, ""]'
    expect_fail 2 TPM0100 citadel tpm audit head --stream nosuch
    # streams list counts them
    assert_eq "$(citadel tpm --json audit streams list | json - '{s["stream"]: [s["tier"], s["entries"], s["head"]] for s in d["streams"]}["ops"]')" '["public", 1, 4]'
    expect_fail 3 TPM0005 citadel tpm audit streams create ops --tier internal
    expect_fail 2 TPM0002 citadel tpm audit streams create ops2 --tier topsecret
    expect_fail 2 TPM0002 citadel tpm audit streams create Bad --tier public
}

test_audit_append_refusals() {
    init_vtpm
    citadel tpm audit append --event first --payload one >/dev/null
    for bad in Bad 'a b' 'semi;colon' 'ünï' "$(printf 'x%.0s' $(seq 65))"; do
        expect_fail 2 TPM0002 citadel tpm audit append --event "$bad" --payload x
        assert_contains "$ERR" "invalid audit event type"
    done
    expect_fail 2 TPM0002 citadel tpm audit append --payload x
    assert_contains "$ERR" "--event is required"
    expect_fail 2 TPM0002 citadel tpm audit append --event e --payload x --payload-file /dev/null
    expect_fail 2 TPM0100 citadel tpm audit append --event e --stream nosuch --payload x
    expect_fail 2 TPM0002 citadel tpm audit append --event e --stream 'UP' --payload x
    # 1 MiB is the most one entry holds: exactly 1 MiB is accepted, one byte more is not
    head -c 1048577 /dev/urandom >big
    expect_fail 2 TPM0030 citadel tpm audit append --event big --payload-file big
    expect_fail 2 TPM0030 citadel tpm audit append --event big --payload-file - <big
    expect_fail 2 TPM0029 citadel tpm audit append --event e --payload-file ./missing
    assert_eq "$(size_of)" 1 "nothing was appended by a refused command"
    head -c 1048576 big >mib
    citadel tpm audit append --event big --payload-file mib >/dev/null
    assert_eq "$(citadel tpm --json audit show 2 | json - 'd["payload_size"]')" 1048576
    citadel tpm audit chain verify >/dev/null
    # show: unknown or malformed sequence numbers
    expect_fail 3 TPM0101 citadel tpm audit show 3
    assert_contains "$ERR" "1 to 2"
    expect_fail 2 TPM0002 citadel tpm audit show 0
    expect_fail 2 TPM0002 citadel tpm audit show -1
    expect_fail 2 TPM0002 citadel tpm audit show abc
}

test_audit_segments_sign_verify() {
    log_with 3
    expect_fail 11 TPM0120 citadel tpm audit verify
    # the failing verification still prints its report on stdout
    assert_contains "$OUT" "no signed checkpoint"
    rc=0
    citadel tpm --json audit verify >v.json 2>/dev/null || rc=$?
    assert_eq "$rc" 11
    assert_eq "$(json v.json '[d["valid"], d["code"], [c["status"] for c in d["checks"]]]')" \
        '[false, "TPM0120", ["pass", "pass", "pass", "pass", "fail", "pass"]]'
    expect_fail 3 TPM0111 citadel tpm audit sign --identity audit-signer
    assert_eq "$(citadel tpm --json audit segments list | json - 'd["segments"]')" '[]'
    c1=$(citadel tpm --json audit segments close)
    assert_eq "$(printf '%s' "$c1" | json - '[d["segment"], d["first_seqno"], d["last_seqno"], d["tree_size"]]')" '[1, 1, 3, 3]'
    expect_fail 2 TPM0110 citadel tpm audit segments close
    assert_contains "$ERR" "sealed through 3"
    # the root agrees with the consistency proof's view of tree size 3
    assert_eq "$(printf '%s' "$c1" | json - 'd["root"]')" "$(citadel tpm --json audit prove --consistency 1 3 | json - 'd["new_root"]')"
    # signing: only an ECC P-256 signing key that is not an authority
    citadel tpm key create rsa --algorithm rsa-2048 >/dev/null
    citadel tpm key create p384 --algorithm ecc-p384 >/dev/null
    citadel tpm identity init boss --authority >/dev/null
    for k in rsa p384 boss; do
        expect_fail 3 TPM0007 citadel tpm audit sign --identity "$k"
        assert_contains "$ERR" "cannot sign audit checkpoints"
    done
    assert_contains "$ERR" "an authority"
    expect_fail 3 TPM0004 citadel tpm audit sign --identity nobody
    expect_fail 3 TPM0111 citadel tpm audit sign --identity audit-signer 2
    expect_fail 2 TPM0002 citadel tpm audit sign --identity audit-signer 0
    expect_fail 2 TPM0002 citadel tpm audit sign 1
    sg=$(citadel tpm --json audit sign --identity audit-signer)
    assert_eq "$(printf '%s' "$sg" | json - '[d["checkpoint"], d["segment"], d["tree_size"], d["identity"]]')" '[1, 1, 3, "audit-signer"]'
    assert_contains "$(printf '%s' "$sg" | json - 'd["note"]')" "$(printf '%s' "$sg" | json - 'd["origin"]')"
    v=$(citadel tpm --json audit verify)
    assert_eq "$(printf '%s' "$v" | json - '[d["valid"], d["entries"], d["checkpoints"], d["latest_checkpoint"]["tree_size"]]')" '[true, 3, 1, 3]'
    assert_eq "$(printf '%s' "$v" | json - '[c["status"] for c in d["checks"]]')" '["pass", "pass", "pass", "pass", "pass", "pass"]'
    assert_contains "$(citadel tpm audit verify)" "1 checkpoints signed by their identities"
    # more entries, a second segment, signed by number; the first one can be signed again
    citadel tpm audit append --event more --payload x >/dev/null
    assert_contains "$(citadel tpm audit verify)" "1 entries after the latest"
    assert_eq "$(citadel tpm --json audit segments close | json - '[d["segment"], d["first_seqno"], d["last_seqno"]]')" '[2, 4, 4]'
    citadel tpm audit sign --identity audit-signer 2 >/dev/null
    citadel tpm audit sign --identity audit-signer 1 >/dev/null
    # signing an older segment again, after a newer one, is fine: checkpoints are checked in
    # tree-size order, each consistent with the one before
    citadel tpm audit verify >/dev/null || fail "a re-signed older segment broke verify"
    sql "DELETE FROM audit_checkpoints WHERE id = 3"
    citadel tpm audit verify >/dev/null
    assert_eq "$(citadel tpm --json audit segments list | json - '[[s["segment"], s["tree_size"], s["checkpoints"]] for s in d["segments"]]')" '[[1, 3, 1], [2, 4, 1]]'
    assert_eq "$(citadel tpm --json audit head | json - '[d["segment"], d["sealed_through"]]')" '[2, 4]'
    ch=$(citadel tpm --json audit chain verify)
    assert_eq "$(printf '%s' "$ch" | json - '[d["valid"], d["entries"], d["anti_rollback"]["head_file"]["status"], d["anti_rollback"]["nv_counter"]["status"]]')" '[true, 4, "pass", "pass"]'
    rb=$(citadel tpm --json audit rollback)
    assert_eq "$(printf '%s' "$rb" | json - '[d["rolled_back"], d["store_head"], d["nv_counter"]["tpm_value"] == d["nv_counter"]["store_value"]]')" '[false, 4, true]'
    # a changed entry: verify names it
    sql "UPDATE audit_entries SET payload = CAST('changed' AS BLOB) WHERE seqno = 2"
    expect_fail 11 TPM0102 citadel tpm audit verify
    assert_contains "$(printf "%s" "$OUT" | tr -s " ")" "first_bad_seqno: 2"
    expect_fail 11 TPM0102 citadel tpm audit chain verify
}

test_audit_prove_and_check() {
    log_with 9
    citadel tpm audit segments close >/dev/null
    # inclusion, default tree = the latest segment's
    p=$(citadel tpm --json audit prove 5 --output inc.json)
    assert_eq "$(printf '%s' "$p" | json - '[d["type"], d["seqno"], d["leaf_index"], d["tree_size"], d["verified"], len(d["proof"]), d["output"]]')" \
        '["inclusion", 5, 4, 9, true, 4, "inc.json"]'
    assert_eq "$(json inc.json 'd["root"]')" "$(citadel tpm --json audit segments list | json - 'd["segments"][0]["root"]')"
    # the leaf is SHA-256(0x00 || entry), and the entry starts with version 1 and the seqno
    assert_eq "$(json inc.json 'd["leaf_hash"]')" "$( (printf '\0'; json inc.json 'd["entry"]' | xxd -r -p) | sha256sum | cut -d' ' -f1)"
    assert_eq "$(json inc.json 'd["entry"][:18]')" "010000000000000005"
    assert_eq "$(citadel tpm --json audit prove --check inc.json | json - '[d["type"], d["verified"]]')" '["inclusion", true]'
    # tree sizes: explicit, too small for the entry, past the log
    assert_eq "$(citadel tpm --json audit prove 5 --tree-size 6 | json - '[d["tree_size"], len(d["proof"])]')" '[6, 2]'
    assert_eq "$(citadel tpm --json audit prove 1 --tree-size 1 | json - '[d["proof"], d["root"] == d["leaf_hash"]]')" '[[], true]'
    expect_fail 3 TPM0101 citadel tpm audit prove 7 --tree-size 6
    expect_fail 3 TPM0101 citadel tpm audit prove 5 --tree-size 10
    expect_fail 3 TPM0101 citadel tpm audit prove 10
    expect_fail 2 TPM0002 citadel tpm audit prove 0
    expect_fail 2 TPM0002 citadel tpm audit prove
    # consistency
    c=$(citadel tpm --json audit prove --consistency 3 9 --output con.json)
    assert_eq "$(printf '%s' "$c" | json - '[d["type"], d["old_size"], d["new_size"], d["verified"]]')" '["consistency", 3, 9, true]'
    assert_eq "$(printf '%s' "$c" | json - 'd["old_root"]')" "$(citadel tpm --json audit prove 1 --tree-size 3 | json - 'd["root"]')"
    assert_eq "$(citadel tpm --json audit prove --consistency 4 | json - '[d["new_size"], d["verified"]]')" '[9, true]'
    assert_eq "$(citadel tpm --json audit prove --consistency 9 9 | json - 'd["proof"]')" '[]'
    expect_fail 2 TPM0002 citadel tpm audit prove --consistency 5 4
    expect_fail 2 TPM0002 citadel tpm audit prove --consistency 5 10
    expect_fail 2 TPM0002 citadel tpm audit prove --consistency
    citadel tpm audit prove --check con.json >/dev/null
    # tampered proof files: a hash of the path, the root, the entry, the index or the sizes
    edit() { python3 -c "import json; d = json.load(open('$1')); $3; json.dump(d, open('$2', 'w'))"; }
    flip='lambda h: ("0" if h[0] != "0" else "1") + h[1:]'
    edit inc.json t1.json "d['proof'][1] = ($flip)(d['proof'][1])"
    edit inc.json t2.json "d['root'] = ($flip)(d['root'])"
    edit inc.json t3.json "d['entry'] = d['entry'][:-2] + ('00' if d['entry'][-2:] != '00' else '01')"
    edit inc.json t4.json "d['leaf_index'] = 5"
    # (a tree size of the same shape, such as 12 for leaf 5 of 9, verifies under RFC 9162: only
    # the signed checkpoint binds a root to its size; 17 is another shape)
    edit inc.json t5.json "d['tree_size'] = 17"
    edit inc.json t6.json "d['proof'] = d['proof'][:-1]"
    edit inc.json t7.json "d['proof'] = d['proof'] + [d['root']]"
    edit con.json t8.json "d['proof'][0] = ($flip)(d['proof'][0])"
    edit con.json t9.json "d['old_size'] = 4"
    edit con.json t10.json "d['new_root'] = d['old_root']"
    for f in t1 t2 t3 t4 t5 t6 t7 t8 t9 t10; do
        expect_fail 11 TPM0112 citadel tpm audit prove --check $f.json
        assert_eq "$(printf '%s' "$OUT" | grep -c 'verified: *no')" 1 "$f: the report says not verified"
    done
    # the checker needs no store
    TPM_STORE_PATH=$T/none.db citadel tpm audit prove --check inc.json >/dev/null
    assert_no_file "$T/none.db"
    printf 'not json' >junk
    expect_fail 2 TPM0043 citadel tpm audit prove --check junk
    edit inc.json t11.json "d['proof'] = ['zz']"
    expect_fail 2 TPM0043 citadel tpm audit prove --check t11.json
    edit inc.json t12.json "d['proof'] = d['proof'] * 17"
    expect_fail 2 TPM0043 citadel tpm audit prove --check t12.json
    edit inc.json t13.json "d['type'] = 'other'"
    expect_fail 2 TPM0043 citadel tpm audit prove --check t13.json
    expect_fail 2 TPM0002 citadel tpm audit prove 3 --check inc.json
}

test_audit_rollback_and_restore() {
    log_with 2
    citadel tpm audit segments close >/dev/null
    assert_eq "$(citadel tpm --json audit rollback | json - 'd["rolled_back"]')" false
    assert_eq "$(head -1 "$TPM_STORE_PATH.audit-head")" "citadel-audit-head/v1"
    cp "$TPM_STORE_PATH" old.db
    citadel tpm audit append --event later --payload x >/dev/null
    # the store is put back to the older copy: rollback, verify and append all refuse
    rm -f "$TPM_STORE_PATH-wal" "$TPM_STORE_PATH-shm"
    cp old.db "$TPM_STORE_PATH"
    expect_fail 11 TPM0108 citadel tpm audit rollback
    rc=0
    citadel tpm --json audit rollback >rb.json 2>/dev/null || rc=$?
    assert_eq "$rc" 11
    assert_eq "$(json rb.json '[d["rolled_back"], d["store_head"], d["head_file"]["acknowledged_seqno"], d["first_bad_seqno"]]')" '[true, 2, 3, 3]'
    expect_fail 11 TPM0108 citadel tpm audit verify
    expect_fail 11 TPM0108 citadel tpm audit append --event e --payload x
    # an operator accepts the restore: the decision is an entry, and everything verifies again
    a=$(citadel tpm --json audit rollback --accept)
    assert_eq "$(printf '%s' "$a" | json - '[d["rolled_back"], d["store_head"]]')" '[false, 3]'
    assert_eq "$(citadel tpm --json audit show 3 | json - '[d["event"], __import__("json").loads(d["payload"])["accepted_head"]]')" '["audit.head.accept", 2]'
    citadel tpm audit chain verify >/dev/null
    citadel tpm audit append --event e --payload x >/dev/null
}

test_audit_plan_changes_nothing() {
    log_with 2
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity audit-signer >/dev/null
    citadel tpm audit key create >/dev/null
    citadel tpm audit publish --output pub.json >/dev/null
    citadel tpm key export-pub audit-signer --output w.pem >/dev/null
    citadel tpm audit append --event more --payload x >/dev/null
    snapshot() {
        sql "SELECT 'e', count(*), max(seqno) FROM audit_entries" "SELECT 's', count(*) FROM audit_segments" \
            "SELECT 'c', count(*) FROM audit_checkpoints" "SELECT 'w', count(*) FROM audit_witnesses" \
            "SELECT 'st', group_concat(name) FROM audit_streams" "SELECT 'v', count(*) FROM object_versions" \
            "SELECT 'ev', count(*) FROM events" "SELECT 'ws', count(*) FROM audit_witness_state"
        sha256sum "$TPM_STORE_PATH.audit-head" "$TPM_STORE_PATH.tpmstate"
    }
    before=$(snapshot)
    for cmd in "audit append --event e --payload x" "audit segments close" "audit sign --identity audit-signer" \
        "audit key create" "audit key rotate" "audit streams create s --tier public" "audit witness add w --key w.pem" \
        "audit witness cosign --identity audit-signer --input pub.json --log-key w.pem" "audit rollback --accept" \
        "audit witness add --receipt pub.json"; do
        # shellcheck disable=SC2086
        out=$(citadel tpm --json --plan $cmd) || fail "--plan $cmd failed"
        assert_eq "$(printf '%s' "$out" | json - 'd["plan"]')" true "--plan $cmd"
    done
    assert_eq "$(snapshot)" "$before" "--plan changed the store, the head file or the TPM"
}

test_audit_secret_tier() {
    init_vtpm
    # a secret stream needs the audit key first
    expect_fail 3 TPM0004 citadel tpm audit streams create hr --tier secret
    assert_contains "$ERR" "audit key create"
    expect_fail 3 TPM0004 citadel tpm audit key show
    expect_fail 3 TPM0004 citadel tpm audit key rotate
    assert_eq "$(citadel tpm --json audit key create | json - '[d["path"], d["version"]]')" '["audit/kek", 1]'
    expect_fail 3 TPM0005 citadel tpm audit key create
    citadel tpm audit streams create hr --tier secret >/dev/null
    assert_eq "$(citadel tpm --json audit streams list | json - '[s["tier"] for s in d["streams"] if s["stream"] == "hr"]')" '["secret"]'
    citadel tpm audit append --event plain --payload 'PUBLICWORDS' >/dev/null
    citadel tpm audit append --stream hr --event hire --payload 'SALARY-ALICE-93000' >/dev/null
    printf 'BINSECRET\x00\x01-BOB' >s.bin
    citadel tpm audit append --stream hr --event hire --payload-file s.bin >/dev/null
    citadel tpm audit segments close >/dev/null
    citadel tpm audit append --stream hr --event fire --payload 'SALARY-CAROL-1' >/dev/null
    # no plaintext anywhere in the store files; the internal-tier one is there
    for w in SALARY-ALICE BINSECRET SALARY-CAROL; do
        if grep -qa "$w" "$TPM_STORE_PATH"*; then fail "$w is stored in clear"; fi
    done
    grep -qa PUBLICWORDS "$TPM_STORE_PATH"* || fail "the internal payload should be stored as is"
    assert_eq "$(sql "SELECT seqno, sealed FROM audit_entries ORDER BY seqno" | tr '\n' ' ')" "1|0 2|1 3|1 4|1 "
    # show decrypts (a TPM unseal); --no-decrypt does not
    assert_eq "$(citadel tpm --json audit show 2 | json - '[d["sealed"], d["payload"]]')" '[true, "SALARY-ALICE-93000"]'
    assert_eq "$(citadel tpm --json audit show 3 | json - 'd["payload_base64"]')" "$(base64 <s.bin)"
    assert_eq "$(citadel tpm --json audit show 4 | json - 'd["payload"]')" SALARY-CAROL-1
    nd=$(citadel tpm --json audit show 2 --no-decrypt)
    assert_eq "$(printf '%s' "$nd" | json - '["payload" in d, "payload_base64" in d, d["sealed"]]')" '[false, false, true]'
    assert_not_contains "$(citadel tpm audit show 2 --no-decrypt)" SALARY
    # two segments, two data keys
    assert_eq "$(sql "SELECT segment, kek_version FROM audit_data_keys ORDER BY segment" | tr '\n' ' ')" "1|1 2|1 "
    citadel tpm identity init audit-signer --usage audit >/dev/null
    citadel tpm audit sign --identity audit-signer >/dev/null
    before_chain=$(citadel tpm --json audit chain verify | json - '[d["valid"], d["entries"]]')
    before_roots=$(citadel tpm --json audit segments list | json - '[s["root"] for s in d["segments"]]')
    before_rows=$(sql "SELECT seqno, hex(payload), hex(entry_hash) FROM audit_entries ORDER BY seqno")
    wrapped_before=$(sql "SELECT hex(wrapped) FROM audit_data_keys ORDER BY segment")
    # rotate: a new KEK version re-wraps both data keys; no entry changes, all stay readable
    r=$(citadel tpm --json audit key rotate)
    assert_eq "$(printf '%s' "$r" | json - '[d["version"], d["rewrapped_data_keys"]]')" '[2, 2]'
    assert_eq "$(sql "SELECT segment, kek_version FROM audit_data_keys ORDER BY segment" | tr '\n' ' ')" "1|2 2|2 "
    assert_ne "$(sql "SELECT hex(wrapped) FROM audit_data_keys ORDER BY segment")" "$wrapped_before"
    assert_eq "$(sql "SELECT seqno, hex(payload), hex(entry_hash) FROM audit_entries ORDER BY seqno")" "$before_rows"
    assert_eq "$(citadel tpm --json audit show 2 | json - 'd["payload"]')" SALARY-ALICE-93000
    assert_eq "$(citadel tpm --json audit show 4 | json - 'd["payload"]')" SALARY-CAROL-1
    assert_eq "$(citadel tpm --json audit chain verify | json - '[d["valid"], d["entries"]]')" "$before_chain"
    assert_eq "$(citadel tpm --json audit segments list | json - '[s["root"] for s in d["segments"]]')" "$before_roots"
    citadel tpm audit verify >/dev/null
    # a rotation more, then appends use the new KEK for the open segment's new data key
    citadel tpm audit key rotate >/dev/null
    citadel tpm audit segments close >/dev/null
    citadel tpm audit append --stream hr --event hire --payload 'SALARY-DAN-5' >/dev/null
    assert_eq "$(sql "SELECT kek_version FROM audit_data_keys WHERE segment = 3")" 3
    assert_eq "$(citadel tpm --json audit key show | json - '[[v["version"], v["data_keys"], v["current"]] for v in d["versions"]]')" \
        '[[1, 0, false], [2, 0, false], [3, 3, true]]'
    for s in 2 3 4 5; do citadel tpm audit show $s >/dev/null; done
    # a sealed payload is bound to its entry: moving the ciphertext to another entry fails
    sql "UPDATE audit_entries SET payload = (SELECT payload FROM audit_entries WHERE seqno = 2) WHERE seqno = 3"
    expect_fail 11 TPM0102 citadel tpm audit show 3
    # --plan of the key verbs and a secret append change nothing
    v=$(sql "SELECT count(*) FROM object_versions")
    citadel tpm --plan audit key rotate >/dev/null
    citadel tpm --plan audit append --stream hr --event x --payload y >/dev/null
    assert_eq "$(sql "SELECT count(*) FROM object_versions")" "$v"
    assert_eq "$(size_of)" 5
}

# ---- witnesses: a log workspace ($T) and a witness workspace ($T/w) ----

as_witness() { TPM_STORE_PATH=$T/w/store.db "$@"; }

witness_setup() {
    log_with 4
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity audit-signer >/dev/null
    citadel tpm key export-pub audit-signer --output log.pem >/dev/null
    mkdir -p w
    as_witness citadel tpm init >/dev/null
    as_witness citadel tpm identity init w1 --usage audit >/dev/null
    as_witness citadel tpm identity init w2 --usage audit >/dev/null
    as_witness citadel tpm key export-pub w1 --output w1.pem >/dev/null
    as_witness citadel tpm key export-pub w2 --output w2.pem >/dev/null
}

test_audit_witness_flow() {
    witness_setup
    citadel tpm audit publish --output pub1.json >/dev/null
    assert_eq "$(json pub1.json '[d["format"], d["tree_size"], d["proofs"]]')" '["citadel-audit-publish/v1", 4, []]'
    # first co-signature: the witness must pin the log's key
    expect_fail 11 TPM0115 as_witness citadel tpm audit witness cosign --identity w1 --input pub1.json
    assert_contains "$ERR" "--log-key"
    # ... and not a wrong one
    expect_fail 11 TPM0115 as_witness citadel tpm audit witness cosign --identity w1 --input pub1.json --log-key w1.pem
    r1=$(as_witness citadel tpm --json audit witness cosign --identity w1 --input pub1.json --log-key log.pem --output r1.json)
    assert_eq "$(printf '%s' "$r1" | json - '[d["witness"], d["tree_size"], d["previous_tree_size"]]')" '["w1", 4, 0]'
    assert_eq "$(as_witness citadel tpm --json audit witness list | json - '[[s["origin"], s["tree_size"]] for s in d["witnessing"]]')" \
        "$(json pub1.json '[[d["origin"], 4]]')"
    # the log: an unregistered witness's receipt is refused; registered, it counts
    expect_fail 2 TPM0117 citadel tpm audit witness add --receipt r1.json
    expect_fail 11 TPM0118 citadel tpm audit verify --witnesses 1
    citadel tpm audit witness add w1 --key w1.pem >/dev/null
    expect_fail 3 TPM0005 citadel tpm audit witness add w1 --key w2.pem
    openssl ecparam -name secp384r1 -genkey -noout -out p384.key 2>/dev/null
    openssl ec -in p384.key -pubout -out p384.pem 2>/dev/null
    expect_fail 5 TPM0023 citadel tpm audit witness add w9 --key p384.pem
    assert_eq "$(citadel tpm --json audit witness add --receipt r1.json | json - '[d["witness"], d["checkpoint"], d["tree_size"]]')" '["w1", 1, 4]'
    v=$(citadel tpm --json audit verify --witnesses 1)
    assert_eq "$(printf '%s' "$v" | json - 'd["receipts"]')" '[{"witness": "w1", "valid": true}]'
    expect_fail 11 TPM0118 citadel tpm audit verify --witnesses 2
    assert_contains "$OUT" "1 valid co-signatures on the latest checkpoint (2 required)"
    assert_eq "$(citadel tpm --json audit witness list | json - '[[w["witness"], w["receipts"], w["latest_tree_size"]] for w in d["witnesses"]]')" '[["w1", 1, 4]]'

    # forged receipts
    forge() { python3 -c "import json; d = json.load(open('$1')); $3; json.dump(d, open('$2', 'w'))"; }
    # signature bytes changed
    forge r1.json f1.json "import base64; n, b = d['cosignature'].rstrip('\n').rsplit(' ', 1); s = bytearray(base64.b64decode(b)); s[-3] ^= 1; d['cosignature'] = n + ' ' + base64.b64encode(bytes(s)).decode() + '\n'"
    expect_fail 11 TPM0116 citadel tpm audit witness add --receipt f1.json
    # the timestamp changed (it is signed)
    forge r1.json f2.json "import base64; n, b = d['cosignature'].rstrip('\n').rsplit(' ', 1); s = bytearray(base64.b64decode(b)); s[11] ^= 1; d['cosignature'] = n + ' ' + base64.b64encode(bytes(s)).decode() + '\n'"
    expect_fail 11 TPM0116 citadel tpm audit witness add --receipt f2.json
    # a tree size or root this log never signed
    forge r1.json f3.json "d['tree_size'] = 3"
    expect_fail 11 TPM0116 citadel tpm audit witness add --receipt f3.json
    forge r1.json f4.json "d['origin'] = 'citadel.tpm/audit/elsewhere'"
    expect_fail 11 TPM0116 citadel tpm audit witness add --receipt f4.json
    # signed by a witness key the log does not know (w2), as itself or posing as w1
    as_witness citadel tpm audit witness cosign --identity w2 --input pub1.json --output r2.json >/dev/null
    expect_fail 2 TPM0117 citadel tpm audit witness add --receipt r2.json
    forge r2.json f5.json "d['witness'] = 'w1'"
    expect_fail 11 TPM0116 citadel tpm audit witness add --receipt f5.json
    forge r2.json f6.json "d['witness'] = 'w1'; d['cosignature'] = d['cosignature'].replace(' w2 ', ' w1 ', 1)"
    expect_fail 11 TPM0116 citadel tpm audit witness add --receipt f6.json
    # none of them was stored: still one valid receipt
    citadel tpm audit verify --witnesses 1 >/dev/null
    expect_fail 11 TPM0118 citadel tpm audit verify --witnesses 2
    # w2 registered: two witnesses
    citadel tpm audit witness add w2 --key w2.pem >/dev/null
    citadel tpm audit witness add --receipt r2.json >/dev/null
    citadel tpm audit verify --witnesses 2 >/dev/null
    # a stored receipt changed in the store no longer counts
    sql "UPDATE audit_receipts SET line = replace(line, substr(line, -6, 4), 'AAAA') WHERE witness = 'w2'"
    expect_fail 11 TPM0118 citadel tpm audit verify --witnesses 2
    assert_contains "$OUT" '1 valid co-signatures'

    # round 2: more entries, a new checkpoint; the witness uses its pinned key and checks the
    # consistency proof from the tree it co-signed
    for i in 1 2 3 4 5 6 7; do citadel tpm audit append --event r2 --payload "$i" >/dev/null; done
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity audit-signer >/dev/null
    citadel tpm audit publish --output pub2.json >/dev/null
    assert_eq "$(json pub2.json '[d["tree_size"], [p["old_size"] for p in d["proofs"]]]')" '[11, [4]]'
    # without the proof the witness cannot tell the new tree extends the old one
    python3 -c 'import json; d = json.load(open("pub2.json")); d["proofs"] = []; json.dump(d, open("noproof.json", "w"))'
    expect_fail 11 TPM0119 as_witness citadel tpm audit witness cosign --identity w1 --input noproof.json
    python3 -c 'import json; d = json.load(open("pub2.json")); p = d["proofs"][0]["consistency"]; p[0], p[-1] = p[-1], p[0]; json.dump(d, open("badproof.json", "w"))'
    expect_fail 11 TPM0119 as_witness citadel tpm audit witness cosign --identity w1 --input badproof.json
    r3=$(as_witness citadel tpm --json audit witness cosign --identity w1 --input pub2.json --output r3.json)
    assert_eq "$(printf '%s' "$r3" | json - '[d["tree_size"], d["previous_tree_size"]]')" '[11, 4]'
    # the receipts of round 1 are for an older checkpoint: the latest has none yet
    expect_fail 11 TPM0118 citadel tpm audit verify --witnesses 1
    assert_eq "$(citadel tpm --json audit witness add --receipt r3.json | json - '[d["checkpoint"], d["tree_size"]]')" '[2, 11]'
    citadel tpm audit verify --witnesses 1 >/dev/null
    # the log shrinks (an old publish file replayed to the witness)
    expect_fail 11 TPM0119 as_witness citadel tpm audit witness cosign --identity w1 --input pub1.json
    assert_contains "$ERR" "shrank"
    # the witness's record did not move
    assert_eq "$(as_witness citadel tpm --json audit witness list | json - '[s["tree_size"] for s in d["witnessing"]]')" '[11]'
    # --json of list and publish parse; --from
    assert_eq "$(citadel tpm --json audit publish --from 4 | json - '[p["old_size"] for p in d["proofs"]]')" '[4]'
}

test_audit_checkpoint_signed_by_another_key() {
    log_with 3
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity audit-signer >/dev/null
    citadel tpm identity init other --usage audit >/dev/null
    citadel tpm audit verify >/dev/null
    note=$(sql "SELECT note FROM audit_checkpoints WHERE id = 1")
    pem=$(sql "SELECT public_pem FROM audit_checkpoints WHERE id = 1")
    # 1. a key made outside the TPM signs the same body with a correct key id, and the row names
    #    that key: the signature verifies, but the key is not the identity's
    openssl ecparam -name prime256v1 -genkey -noout -out evil.key 2>/dev/null
    openssl ec -in evil.key -pubout -out evil.pem 2>/dev/null
    python3 - "$TPM_STORE_PATH" <<'EOF'
import base64, hashlib, sqlite3, subprocess, sys
con = sqlite3.connect(sys.argv[1])
note = con.execute("SELECT note FROM audit_checkpoints WHERE id = 1").fetchone()[0]
body = note.split("\n\n")[0] + "\n"
origin = body.split("\n")[0]
open("body.txt", "w").write(body)
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", "evil.key", "body.txt"], check=True, capture_output=True).stdout
spki = subprocess.run(["openssl", "pkey", "-pubin", "-in", "evil.pem", "-outform", "DER"], check=True, capture_output=True).stdout
kid = hashlib.sha256(origin.encode() + b"\n\x02" + spki).digest()[:4]
forged = body + "\n" + "\u2014 " + origin + " " + base64.b64encode(kid + sig).decode() + "\n"
con.execute("UPDATE audit_checkpoints SET note = ?, public_pem = ? WHERE id = 1", (forged, open("evil.pem").read()))
con.commit()
EOF
    expect_fail 11 TPM0115 citadel tpm audit verify
    assert_contains "$OUT" "not one of audit-signer's versions"
    # 2. ... naming an identity in the store that did not sign it either
    sql "UPDATE audit_checkpoints SET identity = 'other' WHERE id = 1"
    expect_fail 11 TPM0115 citadel tpm audit verify
    # 3. the genuine note checked against another identity's public key: the key id differs
    otherpem=$(citadel tpm key export-pub other)
    python3 - "$TPM_STORE_PATH" "$note" "$otherpem" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("UPDATE audit_checkpoints SET note = ?, public_pem = ?, identity = 'other' WHERE id = 1", (sys.argv[2] + "\n", sys.argv[3] + "\n"))
con.commit()
EOF
    assert_eq "$(sql "SELECT note FROM audit_checkpoints WHERE id = 1")" "$note"
    expect_fail 11 TPM0115 citadel tpm audit verify
    # 4. the right key, a broken signature
    python3 - "$TPM_STORE_PATH" "$note" "$pem" <<'EOF'
import base64, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
body, _, line = sys.argv[2].partition("\n\n")
name, b64 = line.rsplit(" ", 1)
raw = bytearray(base64.b64decode(b64)); raw[-2] ^= 0x10
note = body + "\n\n" + name + " " + base64.b64encode(bytes(raw)).decode() + "\n"
con.execute("UPDATE audit_checkpoints SET note = ?, public_pem = ?, identity = 'audit-signer' WHERE id = 1", (note, sys.argv[3] + "\n"))
con.commit()
EOF
    expect_fail 11 TPM0114 citadel tpm audit verify
    # 5. a body naming another size than the row
    python3 - "$TPM_STORE_PATH" "$note" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("UPDATE audit_checkpoints SET note = ? WHERE id = 1", (sys.argv[2].replace("\n3\n", "\n2\n", 1) + "\n",))
con.commit()
EOF
    expect_fail 11 TPM0114 citadel tpm audit verify
    # put back: verifies again
    python3 - "$TPM_STORE_PATH" "$note" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("UPDATE audit_checkpoints SET note = ? WHERE id = 1", (sys.argv[2] + "\n",))
con.commit()
EOF
    citadel tpm audit verify >/dev/null
}

test_audit_unrelated_trees() {
    witness_setup
    # workspace B: a copy of the log taken now (same origin and key), then both go their ways:
    # a fork
    mkdir b
    cp "$TPM_STORE_PATH" "$TPM_STORE_PATH.tpmstate" "$TPM_STORE_PATH.audit-head" b/
    as_b() { TPM_STORE_PATH=$T/b/store.db "$@"; }
    for i in 1 2 3; do citadel tpm audit append --event a --payload "A$i" >/dev/null; done
    for i in 1 2 3 4 5; do as_b citadel tpm audit append --event b --payload "B$i" >/dev/null; done
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity audit-signer >/dev/null
    as_b citadel tpm audit segments close >/dev/null
    as_b citadel tpm audit sign --identity audit-signer >/dev/null
    citadel tpm audit publish --output a.json >/dev/null
    as_b citadel tpm audit publish --output b.json >/dev/null
    assert_eq "$(json a.json 'd["origin"]')" "$(json b.json 'd["origin"]')"
    # the witness pinned A at 7; B's 9 has a valid signature and a proof from 4, not from A's 7
    as_witness citadel tpm audit witness cosign --identity w1 --input a.json --log-key log.pem >/dev/null
    expect_fail 11 TPM0119 as_witness citadel tpm audit witness cosign --identity w1 --input b.json
    # even B's proof from 7 (in B's tree) does not link A's root at 7 to B's root
    as_b citadel tpm audit publish --from 7 --output b7.json >/dev/null
    expect_fail 11 TPM0119 as_witness citadel tpm audit witness cosign --identity w1 --input b7.json
    # a proof from one tree with the roots of the other does not check
    citadel tpm audit prove --consistency 4 7 --output pa.json >/dev/null
    as_b citadel tpm audit prove --consistency 4 9 --output pb.json >/dev/null
    python3 -c 'import json; a = json.load(open("pa.json")); b = json.load(open("pb.json"))
a["new_root"] = b["new_root"]; a["new_size"] = 9; json.dump(a, open("mix1.json", "w"))
b["proof"] = a["proof"]; json.dump(b, open("mix2.json", "w"))'
    expect_fail 11 TPM0112 citadel tpm audit prove --check mix1.json
    expect_fail 11 TPM0112 citadel tpm audit prove --check mix2.json
    citadel tpm audit prove --check pa.json >/dev/null
    citadel tpm audit prove --check pb.json >/dev/null
    # an inclusion proof of A's entry 5 against B's root at 7
    citadel tpm audit prove 5 --tree-size 7 --output ia.json >/dev/null
    as_b citadel tpm audit prove 5 --tree-size 7 --output ib.json >/dev/null
    python3 -c 'import json; a = json.load(open("ia.json")); b = json.load(open("ib.json"))
assert a["root"] != b["root"]; a["root"] = b["root"]; json.dump(a, open("mix3.json", "w"))'
    expect_fail 11 TPM0112 citadel tpm audit prove --check mix3.json
    # an unrelated log (another workspace, its own origin) signed by another key: not the
    # pinned log, and the pinned key does not verify it
    mkdir c
    (
        export TPM_STORE_PATH=$T/c/store.db
        citadel tpm init >/dev/null
        citadel tpm identity init audit-signer --usage audit >/dev/null
        citadel tpm audit append --event c --payload c >/dev/null
        citadel tpm audit segments close >/dev/null
        citadel tpm audit sign --identity audit-signer >/dev/null
        citadel tpm audit publish --output "$T/c.json" >/dev/null
    )
    assert_ne "$(json c.json 'd["origin"]')" "$(json a.json 'd["origin"]')"
    expect_fail 11 TPM0115 as_witness citadel tpm audit witness cosign --identity w1 --input c.json
    expect_fail 11 TPM0115 as_witness citadel tpm audit witness cosign --identity w1 --input c.json --log-key log.pem
    # C's checkpoint relabelled with A's origin: the signature does not verify under A's key
    python3 -c 'import json; a = json.load(open("a.json")); c = json.load(open("c.json"))
c["origin"] = a["origin"]; json.dump(c, open("c-as-a.json", "w"))'
    expect_fail 11 TPM0115 as_witness citadel tpm audit witness cosign --identity w1 --input c-as-a.json
    # a witness that never saw A co-signs B; A refuses that receipt (A never signed that tree)
    mkdir x
    (
        export TPM_STORE_PATH=$T/x/store.db
        citadel tpm init >/dev/null
        citadel tpm identity init wx --usage audit >/dev/null
        citadel tpm key export-pub wx --output "$T/wx.pem" >/dev/null
        citadel tpm audit witness cosign --identity wx --input "$T/b.json" --log-key "$T/log.pem" --output "$T/rb.json" >/dev/null
    )
    citadel tpm audit witness add wx --key wx.pem >/dev/null
    expect_fail 11 TPM0116 citadel tpm audit witness add --receipt rb.json
    assert_contains "$ERR" "never signed"
}

test_audit_on_swtpm() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    citadel tpm identity init audit-signer --usage audit >/dev/null
    citadel tpm audit key create >/dev/null
    citadel tpm audit streams create hr --tier secret >/dev/null
    citadel tpm audit append --event deploy --payload 'on swtpm' >/dev/null
    citadel tpm audit append --stream hr --event hire --payload 'SWTPM-SECRET' >/dev/null
    assert_eq "$(citadel tpm --json audit segments close | json - '[d["tree_size"], d["counter"] >= 1]')" '[2, true]'
    citadel tpm audit sign --identity audit-signer >/dev/null
    v=$(citadel tpm --json audit verify)
    assert_eq "$(printf '%s' "$v" | json - '[d["valid"], d["checkpoints"]]')" '[true, 1]'
    assert_eq "$(printf '%s' "$v" | json - '[d["anti_rollback"]["nv_counter"]["status"]]')" '["pass"]'
    assert_eq "$(citadel tpm --json audit show 2 | json - 'd["payload"]')" SWTPM-SECRET
    if grep -qa SWTPM-SECRET "$TPM_STORE_PATH"*; then fail "the secret is stored in clear"; fi
    citadel tpm audit key rotate >/dev/null
    assert_eq "$(citadel tpm --json audit show 2 | json - 'd["payload"]')" SWTPM-SECRET
    citadel tpm audit prove 1 --output p.json >/dev/null
    citadel tpm audit prove --check p.json >/dev/null
    citadel tpm audit rollback >/dev/null
    citadel tpm audit chain verify >/dev/null
}

test_audit_json_and_help() {
    log_with 2
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity audit-signer >/dev/null
    citadel tpm audit key create >/dev/null
    # every read verb's --json parses and carries schema_version 1
    for cmd in "audit head" "audit show 1" "audit chain verify" "audit segments list" "audit verify" \
        "audit prove 1" "audit prove --consistency 1 2" "audit rollback" "audit publish" "audit witness list" \
        "audit streams list" "audit key show"; do
        # shellcheck disable=SC2086
        out=$(citadel tpm --json $cmd) || fail "$cmd failed"
        assert_eq "$(printf '%s' "$out" | json - 'd["schema_version"]')" 1 "$cmd"
        # shellcheck disable=SC2086
        citadel tpm --format yaml $cmd | yaml_ok
    done
    # and an error in JSON
    rc=0
    out=$(citadel tpm --json audit show 99 2>&1) || rc=$?
    assert_eq "$rc" 3
    assert_eq "$(printf '%s' "$out" | json - 'd["error"]["code"]')" TPM0101
    # --help of the noun and of each verb
    h=$(citadel tpm audit --help)
    for verb in append head show chain segments sign verify prove rollback publish witness streams key; do
        assert_contains "$h" "  $verb "
        vh=$(citadel tpm audit $verb --help) || fail "audit $verb --help failed"
        assert_contains "$vh" "usage: citadel tpm audit $verb"
        assert_contains "$vh" "Example:"
    done
    assert_contains "$(citadel tpm audit append --help)" "--payload-file FILE"
    assert_contains "$(citadel tpm audit prove --help)" "--consistency"
    assert_contains "$(citadel tpm audit streams --help)" "audit key create"
    expect_fail 2 TPM0002 citadel tpm audit chain check
    expect_fail 2 TPM0002 citadel tpm audit segments open
    expect_fail 2 TPM0002 citadel tpm audit witness sign
    expect_fail 2 TPM0002 citadel tpm audit key destroy
    expect_fail 2 TPM0002 citadel tpm audit streams drop x
}
