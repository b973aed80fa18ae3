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
