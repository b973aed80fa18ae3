# SPDX-License-Identifier: Apache-2.0
# Regression tests for problems found in review of the audit log: what a failed batch leaves
# in a long-lived context (the secret tier's data key), `audit rollback --accept` on a chain
# that does not verify, the NV counter catch-up, witnesses registered twice with one key, and
# checkpoints signed out of order.

AR_DRIVER="$ROOT/$B/tests/audit-append-driver"

ar_sql() {
    python3 - "$TPM_STORE_PATH" "$@" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for s in sys.argv[2:]:
    for row in con.execute(s):
        print("|".join(str(c) for c in row))
con.commit()
con.close()
PY
}

# A batch that fails after it sealed a secret payload rolls back the data key row it
# inserted; the context must not keep using that key, or later entries are sealed under a key
# stored nowhere and can never be decrypted.
test_audit_failed_batch_forgets_data_key() {
    [ -x "$AR_DRIVER" ] || fail "$AR_DRIVER is not built (make unit)"
    init_vtpm
    citadel tpm audit key create >/dev/null
    citadel tpm audit streams create hr --tier secret >/dev/null
    out=$("$AR_DRIVER" "$TPM_STORE_PATH" --batches 'hr=LOST-1,no-such-stream=x' 'hr=SECRET-2')
    assert_contains "$(printf '%s' "$out" | sed -n 1p)" "fail"
    assert_eq "$(printf '%s' "$out" | sed -n 2p)" "ok 1"
    assert_eq "$(ar_sql "SELECT count(*) FROM audit_data_keys")" 1 "the data key of the open segment is recorded"
    assert_eq "$(citadel tpm --json audit show 1 | json - 'd["payload"]')" SECRET-2
}

# `audit rollback --accept` re-anchors the head file on the store's head "after checking the
# entries": a chain with an entry put in the middle (TPM0105 from the walk, not from the head
# file) must be refused, not acknowledged.
test_audit_accept_refuses_middle_insertion() {
    init_vtpm
    local i
    for i in $(seq 1 8); do echo "audit append --event e.$i --payload 'entry $i'"; done >cmds
    citadel tpm batch --input cmds >/dev/null
    python3 "$ROOT/tests/lib/audit_tamper.py" "$TPM_STORE_PATH" insert 4 deploy "forged in the middle"
    head_before=$(cat "$TPM_STORE_PATH.audit-head")
    expect_fail 11 TPM0105 citadel tpm audit rollback --accept
    assert_eq "$(cat "$TPM_STORE_PATH.audit-head")" "$head_before" "the head file is unchanged"
    assert_eq "$(ar_sql "SELECT count(*) FROM audit_entries WHERE event = 'audit.head.accept'")" 0
    # entries the head file never acknowledged, at the end, are what --accept is for
    python3 "$ROOT/tests/lib/audit_tamper.py" "$TPM_STORE_PATH" delete 4
    expect_fail 11 TPM0103 citadel tpm audit rollback --accept
}

# The NV counter: a genuine store is at most one close ahead of the TPM (a crash between the
# commit and the increment). A store that claims more (an edited counter value) is reported,
# not "caught up" by as many TPM increments as it asks for; --accept catches up a plausible
# gap and refuses an absurd one.
test_audit_counter_gap() {
    init_vtpm
    citadel tpm audit append --event a >/dev/null
    citadel tpm audit segments close >/dev/null
    nv=$(citadel tpm --json audit rollback | json - 'd["nv_counter"]["tpm_value"]')
    ar_sql "INSERT OR REPLACE INTO meta (key, value) VALUES ('audit_counter_accepted', '$((nv + 5))')"
    expect_fail 11 TPM0108 citadel tpm audit rollback
    assert_eq "$(citadel tpm --json audit rollback 2>/dev/null | json - 'd["nv_counter"]["tpm_value"]')" "$nv" \
        "no increment on the store's word"
    expect_fail 11 TPM0108 citadel tpm audit segments close
    citadel tpm audit rollback --accept >/dev/null
    assert_eq "$(citadel tpm --json audit rollback | json - 'd["nv_counter"]["tpm_value"]')" "$((nv + 5))"
    ar_sql "UPDATE meta SET value = '1000000000' WHERE key = 'audit_counter_accepted'"
    expect_fail 11 TPM0108 citadel tpm audit rollback --accept
    assert_eq "$(citadel tpm --json audit rollback 2>/dev/null | json - 'd["nv_counter"]["tpm_value"]')" "$((nv + 5))"
}

# One witness key registered under two names would count twice towards --witnesses K (the
# co-signature's bytes do not depend on the name; the key ID is public): refused.
test_audit_witness_key_registered_once() {
    init_vtpm
    openssl ecparam -name prime256v1 -genkey -noout -out w.key 2>/dev/null
    openssl ec -in w.key -pubout -out w.pem 2>/dev/null
    citadel tpm audit witness add wa --key w.pem >/dev/null
    expect_fail 3 TPM0005 citadel tpm audit witness add wb --key w.pem
    assert_contains "$ERR" "already registered as witness wa"
    assert_eq "$(citadel tpm --json audit witness list | json - '[w["witness"] for w in d["witnesses"]]')" '["wa"]'
}

# Signing an older segment after a newer one (allowed: `audit sign ... SEGMENT`) keeps the log
# verifiable, and the latest checkpoint (the one published to witnesses) is the largest tree.
test_audit_checkpoints_signed_out_of_order() {
    init_vtpm
    citadel tpm identity init signer --usage audit >/dev/null
    citadel tpm audit append --event a >/dev/null
    citadel tpm audit segments close >/dev/null
    citadel tpm audit append --event b >/dev/null
    citadel tpm audit append --event c >/dev/null
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity signer 2 >/dev/null
    citadel tpm audit sign --identity signer 1 >/dev/null
    citadel tpm --json audit verify >v.json || fail "verify refused checkpoints signed out of order: $(cat v.json)"
    assert_eq "$(json v.json '[d["checkpoints"], d["latest_checkpoint"]["tree_size"]]')" '[2, 3]'
    citadel tpm --json audit publish >p.json
    assert_eq "$(json p.json '[d["tree_size"], [p["old_size"] for p in d["proofs"]]]')" '[3, [1]]'
}

# verify --log-key pins the log's key: checkpoints signed by another key recorded in the store
# itself (which an attacker with the store could add) are refused.
test_audit_verify_pinned_log_key() {
    init_vtpm
    citadel tpm identity init signer --usage audit >/dev/null
    citadel tpm identity init other --usage audit >/dev/null
    citadel tpm key export-pub signer --output log.pem >/dev/null
    citadel tpm audit append --event a >/dev/null
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity signer >/dev/null
    citadel tpm audit verify --log-key log.pem >/dev/null || fail "the pinned key was refused"
    citadel tpm audit append --event b >/dev/null
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity other >/dev/null
    citadel tpm audit verify >/dev/null || fail "without a pin, any identity of the store verifies"
    expect_fail 11 TPM0115 citadel tpm audit verify --log-key log.pem
    assert_contains "$ERR" "pinned log key"
}
