# SPDX-License-Identifier: Apache-2.0
# Tampering with the audit log directly in SQLite (tests/lib/audit_tamper.py plays the attacker,
# who can write the store but not the TPM). Each kind of tampering must be caught by both
# `audit chain verify` and `audit verify` with its own code and the first bad sequence number,
# exit status 11, and without the verification changing the store.

AT="$ROOT/tests/lib/audit_tamper.py"
tamper() { python3 "$AT" "$TPM_STORE_PATH" "$@"; }

close_and_sign() {
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity signer >/dev/null
}

# 50 entries in two streams; segments 1 (entries 1-20) and 2 (21-40) closed and signed; 41-50
# open. The log verifies before anything is done to it.
audit_log_50() {
    init_vtpm
    citadel tpm identity init signer --usage audit >/dev/null
    citadel tpm audit streams create ops --tier internal >/dev/null
    local i stream
    for i in $(seq 1 50); do
        stream=default
        [ $((i % 3)) == 0 ] && stream=ops
        echo "audit append --stream $stream --event ev.$((i % 4)) --payload 'payload $i'"
        if [ "$i" == 20 ] || [ "$i" == 40 ]; then
            echo "audit segments close"
            echo "audit sign --identity signer"
        fi
    done >setup.cmds
    citadel tpm batch --input setup.cmds >/dev/null
    rm setup.cmds
    citadel tpm audit chain verify >/dev/null
    citadel tpm audit verify >/dev/null
}

# What a verification must leave as it was: the database (main file and WAL) and the head file.
store_digest() {
    {
        cat "$TPM_STORE_PATH"
        cat "$TPM_STORE_PATH-wal" 2>/dev/null || true
        echo ---
        cat "$TPM_STORE_PATH.audit-head" 2>/dev/null || true
    } | sha256sum
}

# expect_audit_fail CODE FIRST_BAD [chain|verify]...: each command fails with exit 11, CODE in
# its report (stdout) and its error (stderr), and FIRST_BAD as first_bad_seqno in both.
expect_audit_fail() {
    local code=$1 seq=$2 which rc before
    shift 2
    [ $# -gt 0 ] || set -- chain verify
    before=$(store_digest)
    for which in "$@"; do
        local cmd=(audit verify)
        [ "$which" == chain ] && cmd=(audit chain verify)
        rc=0
        citadel tpm --json "${cmd[@]}" >"$T/.out" 2>"$T/.err" || rc=$?
        [ "$rc" == 11 ] || fail "'${cmd[*]}' exited $rc, expected 11; stderr: $(cat "$T/.err")"
        assert_eq "$(json "$T/.out" 'd["valid"]')" false "${cmd[*]}: valid"
        assert_eq "$(json "$T/.out" 'd["code"]')" "$code" "${cmd[*]}: report code"
        assert_eq "$(json "$T/.out" 'd["first_bad_seqno"]')" "$seq" "${cmd[*]}: report first_bad_seqno"
        assert_eq "$(json "$T/.err" 'd["error"]["code"]')" "$code" "${cmd[*]}: error code"
        assert_eq "$(json "$T/.err" 'd["error"]["exit_status"]')" 11 "${cmd[*]}: exit status"
        # 0: no entry in particular (the head file); the context may then be left out
        assert_eq "$(json "$T/.err" 'd["error"]["context"].get("first_bad_seqno", "0")')" "$seq" \
            "${cmd[*]}: error context first_bad_seqno"
    done
    assert_eq "$(store_digest)" "$before" "verification left the store untouched"
}

test_audit_tamper_edit_row() {
    audit_log_50
    mkdir orig && cp store.db* orig/
    local col
    # payload inside a sealed segment, event in the open part, actor in the first segment
    for col in "payload 30 forged" "event 45 ev.forged" "actor 7 mallory"; do
        set -- $col
        rm -f store.db* && cp orig/store.db* .
        tamper edit "$2" "$1" "$3"
        expect_audit_fail TPM0102 "$2"
    done
}

test_audit_tamper_delete_row() {
    audit_log_50
    tamper delete 30
    expect_audit_fail TPM0103 30
}

test_audit_tamper_reorder() {
    audit_log_50
    tamper swap 30
    expect_audit_fail TPM0104 30
}

# (a) A well-formed entry appended at the end, its hashes computed as the log would: the chain
# holds, the head file names entry 50 as the last the log wrote.
test_audit_tamper_insert_at_end() {
    audit_log_50
    tamper append deploy "release that never happened"
    expect_audit_fail TPM0105 51
    # and the log refuses to build on it
    expect_fail 11 TPM0105 citadel tpm audit append --event x
}

# (b) An entry put in the middle, the entries after it renumbered up by one. The forged entry
# itself is well-formed (hashes computed, linked to the entry before), so the first entry the
# chain cannot explain is the next one, which was written one position earlier and links to
# the entry before the forged one: the forged entry (30) is the inserted one, and 30 is the
# first bad sequence number. With garbage hashes, the same answer.
test_audit_tamper_insert_in_middle() {
    audit_log_50
    mkdir orig && cp store.db* orig/
    tamper insert 30 deploy "forged in the middle"
    expect_audit_fail TPM0105 30
    rm -f store.db* && cp orig/store.db* .
    tamper insert-raw 30 deploy "forged in the middle"
    expect_audit_fail TPM0105 30
    # at the very start too
    rm -f store.db* && cp orig/store.db* .
    tamper insert 1 deploy "forged genesis"
    expect_audit_fail TPM0105 1
}

# The database file cut short (after a checkpoint): a clear error, no crash, no hang.
test_audit_tamper_truncate_file() {
    audit_log_50
    # more entries, so the log spans pages the cut removes
    local i
    for i in $(seq 51 400); do echo "audit append --event bulk --payload entry-$i-$(printf '%0200d' 0)"; done >cmds
    citadel tpm batch --input cmds >/dev/null
    mkdir orig && cp store.db* orig/
    local frac rc code
    for frac in 0.5 0.75 0.9; do
        rm -f store.db* && cp orig/store.db* .
        tamper truncate-file "$frac"
        for cmd in "chain verify" verify; do
            rc=0
            timeout 60 "$CITADEL_BIN" tpm --json audit $cmd >"$T/.out" 2>"$T/.err" || rc=$?
            [ "$rc" != 124 ] || fail "audit $cmd hung on a store cut to $frac"
            [ "$rc" -lt 128 ] || fail "audit $cmd crashed (exit $rc) on a store cut to $frac: $(cat "$T/.err")"
            code=$(json "$T/.err" 'd["error"]["code"]')
            echo "cut to $frac: audit $cmd -> exit $rc $code: $(json "$T/.err" 'd["error"]["message"]')"
            case "$rc:$code" in
                11:TPM0107) ;;
                4:TPM0012) assert_contains "$(json "$T/.err" 'd["error"]["causes"]')" "truncated" ;;
                *) fail "audit $cmd on a store cut to $frac: exit $rc $code, expected 11 TPM0107 or 4 TPM0012" ;;
            esac
        done
    done
}

# Deleting the last rows: inside a sealed segment it is a truncation (the segment points past the
# end), in the open part a rollback (the head file acknowledged more); the first missing entry
# is the first bad one either way.
test_audit_tamper_truncate_rows() {
    audit_log_50
    mkdir orig && cp store.db* orig/
    tamper truncate-rows 35
    expect_audit_fail TPM0107 35
    rm -f store.db* && cp orig/store.db* .
    tamper truncate-rows 45
    expect_audit_fail TPM0108 45
}

# An older copy of the store put back (before 3 more appends and a segment close), leaving the
# head file and the TPM (its NV counter) as they are.
test_audit_tamper_restore_older_copy() {
    audit_log_50
    # the database only (main file and WAL): the head file and the TPM state stay current
    mkdir old && cp store.db store.db-wal old/
    local i
    for i in 1 2 3; do citadel tpm audit append --event late --payload "late $i" >/dev/null; done
    close_and_sign
    rm -f store.db store.db-wal store.db-shm && cp old/store.db old/store.db-wal .
    expect_audit_fail TPM0108 51
    # appending on top of it would fork the log
    expect_fail 11 TPM0108 citadel tpm audit append --event x --payload y
    expect_fail 11 TPM0108 citadel tpm audit segments close
    expect_fail 11 TPM0108 citadel tpm audit rollback
    assert_eq "$(tamper head | cut -d' ' -f1)" 50 "nothing was appended"
    # the operator's decision: re-anchor on this copy, which is logged in the log itself
    local acc
    acc=$(citadel tpm --json audit rollback --accept)
    assert_eq "$(printf '%s' "$acc" | json - 'd["rolled_back"]')" false
    citadel tpm --json audit show 51 >shown
    assert_eq "$(json shown 'd["event"]')" audit.head.accept
    assert_contains "$(json shown 'd["payload"]')" '"accepted_head":50'
    citadel tpm audit chain verify >/dev/null
    # and the log goes on: appends, a segment close (the NV counter moves on from the TPM's
    # value), a signed checkpoint, and everything verifies
    citadel tpm audit append --event after --payload "after the restore" >/dev/null
    close_and_sign
    citadel tpm audit chain verify >/dev/null
    citadel tpm audit verify >/dev/null
}

# The attacker rewrites an entry inside a sealed segment and recomputes every hash after it, so
# the chain holds: the segment's recorded root no longer matches (first bad: the segment's first
# entry). Rewriting the segments' roots and the head file too leaves only the signed checkpoint,
# which `audit verify` checks; `audit chain verify` cannot know (it checks no signatures).
test_audit_tamper_rewrite_sealed_segment() {
    audit_log_50
    mkdir orig && cp store.db* orig/
    tamper rewrite 30 "rewritten"
    expect_audit_fail TPM0109 21
    rm -f store.db* && cp orig/store.db* .
    tamper rewrite 5 "rewritten"
    expect_audit_fail TPM0109 1
    rm -f store.db* && cp orig/store.db* .
    tamper rewrite 30 "rewritten" --segments --head-file
    citadel tpm audit chain verify >/dev/null
    expect_audit_fail TPM0109 21 verify
    # the checkpoint's signature is still good: it is the entries that changed
    citadel tpm --json audit verify >out 2>/dev/null || true
    assert_contains "$(json out '[c["detail"] for c in d["checks"] if c["check"] == "checkpoints"][0]')" "changed"
}

test_audit_tamper_missing_head_file() {
    audit_log_50
    rm store.db.audit-head
    expect_audit_fail TPM0113 0
    json "$T/.err" 'd["error"]["next_steps"]' >steps
    assert_contains "$(cat steps)" "audit rollback --accept"
    expect_fail 11 TPM0113 citadel tpm audit append --event x
    assert_contains "$ERR" "audit rollback --accept"
    # accepting it writes the head file again and logs the decision
    citadel tpm audit rollback --accept >/dev/null
    assert_file store.db.audit-head
    citadel tpm audit chain verify >/dev/null
    assert_eq "$(citadel tpm --json audit show 51 | json - 'd["event"]')" audit.head.accept
}

# The untouched log verifies, and the verifications leave it as it was (the baseline for the
# "left untouched" checks above).
test_audit_tamper_none() {
    audit_log_50
    local before
    before=$(store_digest)
    citadel tpm --json audit chain verify >out
    assert_eq "$(json out '[d["valid"], d["entries"]]')" "[true, 50]"
    citadel tpm --json audit verify >out
    assert_eq "$(json out '[d["valid"], d["entries"], d["checkpoints"]]')" "[true, 50, 2]"
    assert_eq "$(store_digest)" "$before" "verification left the store untouched"
}
