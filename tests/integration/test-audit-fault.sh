# SPDX-License-Identifier: Apache-2.0
# Crash safety of the audit log: `audit append` (several at once), `audit segments close` and
# `audit sign` killed with SIGKILL at random moments. After every round the log verifies (a kill
# may leave the NV counter behind the store, which is not a failure and which the next close or
# `audit rollback` catches up); at the end a final close and sign verify, and every append that
# printed its sequence number is in the log with its payload.
# Random kills: about 60 in `make check`, about 250 in `make check-long` (CIT_LONG=1); the
# counts of kills that landed mid-command are printed. Plus 24 kills at exact points of the head
# file protocol (tests/drivers/killshim.so), and the batched library API killed mid-batch
# (tests/drivers/audit-append-driver).

if [ -n "${CIT_LONG:-}" ]; then
    AF_APPEND_ROUNDS=120
    AF_SEGMENT_ROUNDS=80
    AF_BATCH_ROUNDS=40
else
    AF_APPEND_ROUNDS=30
    AF_SEGMENT_ROUNDS=20
    AF_BATCH_ROUNDS=10
fi

AF_DRIVER="$ROOT/$B/tests/audit-append-driver"

# sleep_ms N: sleep N milliseconds (no timing is asserted: the sleeps only spread the kills
# over the phases of a command)
sleep_ms() { sleep "$(printf '0.%03d' "$1")"; }

# af_verify ROUND: the log verifies after a round of kills. The only repair allowed is the
# documented one without --accept (`audit rollback`, which also catches a lagging counter up).
AF_RECOVERED=0
af_verify() {
    local out
    if ! out=$(citadel tpm --json audit chain verify 2>&1); then
        echo "after $1: chain verify failed: $out"
        citadel tpm audit rollback >/dev/null 2>&1 || fail "after $1: the log does not verify and \`audit rollback\` does not recover it: $out"
        citadel tpm audit chain verify >/dev/null || fail "after $1: still broken after \`audit rollback\`"
        AF_RECOVERED=$((AF_RECOVERED + 1))
    fi
}

# The acknowledged appends (lines "SEQNO PAYLOAD" in acked) are in the log with their payloads,
# and the log verifies end to end after a final close and sign.
af_final_check() {
    citadel tpm audit append --event fault.final --payload final >/dev/null
    citadel tpm audit segments close >/dev/null
    citadel tpm audit sign --identity signer >/dev/null
    citadel tpm audit chain verify >/dev/null
    citadel tpm --json audit verify >verify.json || fail "audit verify: $(cat verify.json)"
    assert_eq "$(json verify.json 'd["valid"]')" true
    # the NV counter agrees with the store once the last close incremented it
    citadel tpm --json audit rollback >rb.json
    assert_eq "$(json rb.json 'd["nv_counter"]["status"]')" pass
    python3 - "$TPM_STORE_PATH" acked <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = dict(db.execute("SELECT seqno, payload FROM audit_entries").fetchall())
n = 0
for line in open(sys.argv[2]):
    seq, payload = line.rstrip("\n").split(" ", 1)
    got = rows.get(int(seq))
    assert got is not None, "acknowledged entry %s is missing" % seq
    assert bytes(got).decode() == payload, "entry %s holds %r, acknowledged %r" % (seq, bytes(got), payload)
    n += 1
payloads = [bytes(p).decode() for p in rows.values()]
assert len(payloads) == len(set(payloads)), "a payload was appended twice"
print("%d acknowledged appends present of %d entries" % (n, len(rows)))
EOF
}

af_setup() {
    init_vtpm
    citadel tpm identity init signer --usage audit >/dev/null
    : >acked
}

# wait_all: reaps the round's processes; counts the kills that landed mid-command (status 137)
# and records the appends that printed their sequence number.
AF_LANDED=0
AF_KILLS=0
wait_all() {
    local i rc seq
    for i in "${!PIDS[@]}"; do
        rc=0
        wait "${PIDS[$i]}" 2>/dev/null || rc=$?
        if [ "$rc" == 137 ]; then
            AF_LANDED=$((AF_LANDED + 1))
        elif [ "$rc" == 0 ] && [ -n "${PAYLOADS[$i]}" ]; then
            seq=$(awk '$1 == "seqno:" {print $2}' "out.$i")
            [ -n "$seq" ] || fail "an append exited 0 without printing its seqno"
            echo "$seq ${PAYLOADS[$i]}" >>acked
        elif [ "$rc" != 0 ] && ! grep -qE 'TPM011[01]' "err.$i"; then
            # a command that was not killed must not fail (no false tamper alarm, no lock error);
            # the expected refusals: a close with nothing new to seal (TPM0110), a sign before
            # any segment was closed (TPM0111, when the first close was killed)
            fail "a command exited $rc without being killed: $(cat "err.$i")"
        fi
    done
    PIDS=()
    PAYLOADS=()
}

# spawn PAYLOAD cmd...: starts the binary itself in the background (the kill must hit the
# process that works, not a wrapper).
spawn() {
    local i=${#PIDS[@]} payload=$1
    shift
    "$CITADEL_BIN" tpm "$@" >"out.$i" 2>"err.$i" &
    PIDS[$i]=$!
    PAYLOADS[$i]=$payload
}

# kill_one N: SIGKILL to process N of the round (it may have finished already).
kill_one() {
    AF_KILLS=$((AF_KILLS + 1))
    kill -9 "${PIDS[$1]}" 2>/dev/null || true
}

# 1 to 3 appends at once; one of them killed 0-40 ms in. The others run to the end.
test_audit_fault_kill_appends() {
    af_setup
    local round j n victim
    PIDS=()
    PAYLOADS=()
    for round in $(seq "$AF_APPEND_ROUNDS"); do
        n=$((1 + RANDOM % 3))
        for j in $(seq "$n"); do
            spawn "append $round.$j" audit append --event fault.append --payload "append $round.$j"
        done
        victim=$((RANDOM % n))
        sleep_ms $((RANDOM % 40))
        kill_one "$victim"
        wait_all
        af_verify "append round $round"
    done
    echo "appends: $AF_KILLS kills, $AF_LANDED landed mid-command, $AF_RECOVERED recoveries"
    [ "$AF_LANDED" -gt 0 ] || fail "no kill landed while a command ran"
    assert_eq "$AF_RECOVERED" 0 "rounds that needed \`audit rollback\`"
    af_final_check
}

# A segment close or a checkpoint signature killed 0-80 ms in, sometimes with an append running
# beside it (killed too, or not).
test_audit_fault_kill_close_sign() {
    af_setup
    local round i what
    PIDS=()
    PAYLOADS=()
    for round in $(seq "$AF_SEGMENT_ROUNDS"); do
        for i in $(seq $((1 + RANDOM % 3))); do
            citadel tpm audit append --event fault.fill --payload "fill $round.$i" >fill.out
            echo "$(awk '$1 == "seqno:" {print $2}' fill.out) fill $round.$i" >>acked
        done
        # sign needs a segment: the first round closes; later, close and sign alternate at random
        what=close
        [ "$round" -gt 1 ] && [ $((RANDOM % 2)) == 0 ] && what=sign
        if [ "$what" == close ]; then
            spawn "" audit segments close
        else
            spawn "" audit sign --identity signer
        fi
        if [ $((RANDOM % 3)) == 0 ]; then
            spawn "beside $round" audit append --event fault.beside --payload "beside $round"
        fi
        # a close or sign takes 10-20 ms on an idle machine (more under load or ASan): kills
        # within 30 ms land mid-command often enough that every run has some
        sleep_ms $((RANDOM % 30))
        kill_one 0
        [ ${#PIDS[@]} == 2 ] && [ $((RANDOM % 2)) == 0 ] && kill_one 1
        wait_all
        af_verify "$what round $round"
    done
    echo "close/sign: $AF_KILLS kills, $AF_LANDED landed mid-command, $AF_RECOVERED recoveries"
    [ "$AF_LANDED" -gt 0 ] || fail "no kill landed while a command ran"
    assert_eq "$AF_RECOVERED" 0 "rounds that needed \`audit rollback\`"
    af_final_check
    # every checkpoint that was stored verifies (a killed sign stores nothing or a whole one)
    assert_eq "$(json verify.json '[c["status"] for c in d["checks"] if c["check"] == "checkpoints"][0]')" pass
}

# The batched library API (tests/audit-append-driver: cit_audit_append_batch of N records per
# call, in one long-lived context) killed in the middle: a batch is all or nothing, and every
# batch the driver reported done is in the log.
test_audit_fault_kill_batches() {
    [ -x "$AF_DRIVER" ] || fail "$AF_DRIVER is not built (make unit)"
    af_setup
    local round rc
    for round in $(seq "$AF_BATCH_ROUNDS"); do
        rc=0
        "$AF_DRIVER" "$TPM_STORE_PATH" "batch$round" 20 16 >>batches.out 2>batch.err &
        local pid=$!
        sleep_ms $((RANDOM % 60))
        AF_KILLS=$((AF_KILLS + 1))
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || rc=$?
        [ "$rc" == 137 ] && AF_LANDED=$((AF_LANDED + 1))
        [ "$rc" == 0 ] || [ "$rc" == 137 ] || fail "the driver exited $rc: $(cat batch.err)"
        af_verify "batch round $round"
    done
    echo "batches: $AF_KILLS kills, $AF_LANDED landed mid-run, $AF_RECOVERED recoveries"
    [ "$AF_LANDED" -gt 0 ] || fail "no kill landed while the driver ran"
    assert_eq "$AF_RECOVERED" 0 "rounds that needed \`audit rollback\`"
    # the driver prints "SEQNO PAYLOAD" for each record of a batch once the batch returned
    cp batches.out acked
    af_final_check
    # all or nothing: a batch's records are consecutive, and the log holds whole batches only
    python3 - "$TPM_STORE_PATH" <<'EOF'
import collections, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT seqno, payload FROM audit_entries WHERE event = 'fault.batch' ORDER BY seqno").fetchall()
batches = collections.defaultdict(list)
for seq, p in rows:
    tag, _, k = bytes(p).decode().rpartition(".")
    batches[tag].append((seq, int(k)))
for tag, recs in batches.items():
    assert len(recs) == 16, "batch %s is partly in the log: %d of 16 records" % (tag, len(recs))
    assert [s for s, _ in recs] == list(range(recs[0][0], recs[0][0] + 16)), "batch %s is not consecutive" % tag
    assert [k for _, k in recs] == list(range(16)), "batch %s is out of order" % tag
print("%d whole batches" % len(batches))
EOF
}

# The head file protocol, phase by phase (tests/drivers/killshim.so kills an append at an exact
# rename of STORE.audit-head, no timing involved): before the pending record, between it and the
# commit, between the commit and the committed record. Every pair of consecutive crashes leaves
# a log that verifies and takes the next append.
AF_SHIM="$ROOT/$B/tests/killshim.so"
shim_append() { # PHASE PAYLOAD: an append that dies at PHASE ("none": runs to the end)
    local rc=0
    if [ "$1" == none ]; then
        "$CITADEL_BIN" tpm audit append --event fault.phase --payload "$2" >out.shim 2>err.shim || rc=$?
    else
        CIT_KILL_HEAD=$1 LD_PRELOAD=$AF_SHIM "$CITADEL_BIN" tpm audit append --event fault.phase \
            --payload "$2" >out.shim 2>err.shim || rc=$?
    fi
    if [ "$1" == none ]; then
        [ "$rc" == 0 ] || fail "append (not killed) exited $rc: $(cat err.shim)"
        echo "$(awk '$1 == "seqno:" {print $2}' out.shim) $2" >>acked
    else
        [ "$rc" == 137 ] || fail "append killed at $1 exited $rc: $(cat err.shim)"
    fi
}

test_audit_fault_head_file_phases() {
    [ -z "${CIT_SANITIZE:-}" ] || return 0 # a preloaded library may not come before ASan's
    af_setup
    citadel tpm audit append --event fault.phase --payload genesis >/dev/null
    local p1 p2
    for p1 in before:1 after:1 before:2 none; do
        for p2 in before:1 after:1 before:2 none; do
            shim_append "$p1" "$p1 then $p2 (1)"
            af_verify "append killed at $p1"
            shim_append "$p2" "$p1 then $p2 (2)"
            af_verify "appends killed at $p1, then at $p2"
            shim_append none "after $p1 then $p2"
            af_verify "a clean append after kills at $p1 and $p2"
        done
    done
    assert_eq "$AF_RECOVERED" 0 "kills that needed \`audit rollback\`"
    af_final_check
}

# A segment close killed at each save of the vTPM state (killshim with CIT_KILL_SUFFIX
# .tpmstate: after defining the rollback counter, after its first increment, after the close's
# increment), the first close of a log and a later one: the log verifies without `audit
# rollback` (a TPM counter initialised for a segment that never committed is not a rollback),
# and the next close works.
test_audit_fault_close_phases() {
    [ -z "${CIT_SANITIZE:-}" ] || return 0 # a preloaded library may not come before ASan's
    local n rc closes
    for n in 1 2 3 4; do
        for closes in 0 1; do
            rm -f "$TPM_STORE_PATH"* acked
            af_setup
            citadel tpm audit append --event fault.close --payload "first" >/dev/null
            [ "$closes" == 0 ] || citadel tpm audit segments close >/dev/null
            citadel tpm audit append --event fault.close --payload "second" >/dev/null
            rc=0
            CIT_KILL_SUFFIX=.tpmstate CIT_KILL_HEAD=after:$n LD_PRELOAD=$AF_SHIM "$CITADEL_BIN" tpm audit segments close \
                >out.shim 2>err.shim || rc=$?
            [ "$rc" == 137 ] || [ "$rc" == 0 ] || fail "close killed after state save $n exited $rc: $(cat err.shim)"
            af_verify "a close killed after state save $n (earlier closes: $closes)"
            citadel tpm audit append --event fault.close --payload "third" >/dev/null
            citadel tpm audit segments close >/dev/null || fail "the close after a kill at save $n failed"
            af_verify "the close after a kill at save $n (earlier closes: $closes)"
            citadel tpm --json audit rollback >rb.json
            assert_eq "$(json rb.json 'd["nv_counter"]["status"]')" pass
        done
    done
    assert_eq "$AF_RECOVERED" 0 "kills that needed \`audit rollback\`"
}

# Two appends interleaved: A commits and is stopped before it writes its committed record;
# B appends meanwhile; then A resumes. A's late record must not replace B's newer one (the log
# would then hold an entry the head file never acknowledged: a false TPM0105).
test_audit_fault_head_file_late_writer() {
    [ -z "${CIT_SANITIZE:-}" ] || return 0
    af_setup
    citadel tpm audit append --event fault.phase --payload genesis >/dev/null
    CIT_KILL_HEAD=stop:2 LD_PRELOAD=$AF_SHIM "$CITADEL_BIN" tpm audit append --event fault.phase \
        --payload late-writer >out.a 2>err.a &
    AF_STOPPED=$!
    local a=$AF_STOPPED deadline=$((SECONDS + 30)) state=
    # a stopped process would outlive a failed test (and hold the store's write lock)
    trap 'kill -9 "$AF_STOPPED" 2>/dev/null || true; stop_swtpm' EXIT
    until [ "$state" == T ]; do
        state=$(awk '{print $3}' "/proc/$a/stat" 2>/dev/null || echo gone)
        [ "$state" != gone ] || fail "A exited before it stopped: $(cat err.a)"
        [ $SECONDS -lt $deadline ] || fail "A did not reach its committed record"
        sleep 0.01
    done
    "$CITADEL_BIN" tpm audit append --event fault.phase --payload meanwhile >out.b 2>err.b &
    local b=$!
    # B may finish (the race) or wait for A (which holds the store's write lock while it writes
    # its record); either way A resumes after at most 3 s
    deadline=$((SECONDS + 3))
    while kill -0 "$b" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.01; done
    kill -CONT "$a"
    wait "$a" || fail "A failed: $(cat err.a)"
    wait "$b" || fail "B failed: $(cat err.b)"
    echo "$(awk '$1 == "seqno:" {print $2}' out.a) late-writer" >>acked
    echo "$(awk '$1 == "seqno:" {print $2}' out.b) meanwhile" >>acked
    af_verify "the late writer"
    assert_eq "$AF_RECOVERED" 0 "needed \`audit rollback\`"
    citadel tpm audit append --event fault.phase --payload next >/dev/null
    af_final_check
}
