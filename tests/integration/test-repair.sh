# SPDX-License-Identifier: Apache-2.0
# repair scan|plan|apply, gc plan|apply, recover list|show: store-versus-TPM mismatches made on
# purpose (on the vTPM through the store or a killed command, on swtpm with tpm2-tools behind
# citadel's back), found with the right kind, planned, fixed, and checked afterwards.

# sqlw SQL: runs a statement on the store (foreign keys off, as a hand edit would be).
sqlw() {
    python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = c.execute(sys.argv[2]).fetchall()
c.commit()
for r in rows:
    print(r[0] if len(r) == 1 else r)' "$TPM_STORE_PATH" "$1"
}

# integrity_ok: SQLite's full integrity check and the foreign keys.
integrity_ok() {
    assert_eq "$(sqlw 'PRAGMA integrity_check')" ok "store integrity_check"
    assert_eq "$(sqlw 'PRAGMA foreign_key_check')" "" "store foreign keys"
}

# scan_kinds: the sorted kinds of the findings of `repair scan` (its exit status in scan.rc,
# read with scan_rc: the function runs in a command substitution).
scan_kinds() {
    local rc=0
    citadel tpm --json repair scan "$@" >scan.json || rc=$?
    echo "$rc" >scan.rc
    json scan.json 'sorted(f["kind"] for f in d["findings"])'
}
scan_rc() { cat scan.rc; }

# repaired: apply performs exactly the plan's operations; a second apply does nothing; the scan
# is clean (exit 0), the store passes its integrity check and doctor finds it consistent.
repaired() {
    citadel tpm --json repair plan "$@" >plan.json
    citadel tpm --json repair apply "$@" >apply.json
    assert_eq "$(json apply.json 'd["performed"]')" "$(json plan.json 'd["operations"]')" "apply performs the plan"
    [ "$(json plan.json 'len(d["operations"])')" -gt 0 ] || fail "the plan was empty"
    citadel tpm --json repair apply "$@" >again.json
    assert_eq "$(json again.json 'd["performed"]')" "[]" "a second apply does nothing"
    citadel tpm repair scan "$@" >/dev/null || fail "repair scan is not clean after apply"
    integrity_ok
    doctor_consistent
}

# A vTPM workspace with a persistent key, a key, an NV index and a sealed secret.
setup_vtpm() {
    init_vtpm
    citadel tpm key create app/p --persist >/dev/null
    citadel tpm key create app/k >/dev/null
    citadel tpm nv define app/n --size 8 >/dev/null
    printf 's3cret' >s
    citadel tpm secret seal app/s --input s >/dev/null
    echo 'release 1.0' >msg
}

test_repair_clean_workspace() {
    setup_vtpm
    assert_eq "$(scan_kinds)" "[]"
    assert_eq "$(scan_rc)" 0 "scan exit status when clean"
    assert_eq "$(json scan.json '[d["clean"], d["needs_repair"]]')" "[true, 0]"
    assert_contains "$(citadel tpm repair scan)" "nothing to repair"
    assert_eq "$(citadel tpm --json repair plan | json - 'd["operations"]')" "[]"
    assert_eq "$(citadel tpm --json repair apply | json - 'd["performed"]')" "[]"
    doctor_consistent
}

# The store names a handle the TPM does not hold, and the TPM holds a citadel key at a handle
# the store does not name (the vTPM cannot be reached by tpm2-tools: the store is edited).
test_repair_missing_handle_and_orphan_vtpm() {
    setup_vtpm
    citadel tpm key export-pub app/p --output p.pem >/dev/null
    h=$(citadel tpm --json key show app/p | json - 'd["persistent_handle"]')
    sqlw "UPDATE objects SET persistent_handle = 0x81000150 WHERE path = 'app/p'"
    assert_eq "$(scan_kinds)" '["missing-handle", "orphan-handle"]'
    assert_eq "$(scan_rc)" 10 "scan exit status with something to repair"
    assert_eq "$(json scan.json '[f["object"] for f in d["findings"] if f["kind"] == "orphan-handle"]')" "[\"$h\"]"
    assert_eq "$(json scan.json '[f["provably_citadel"] for f in d["findings"] if f["kind"] == "orphan-handle"]')" "[true]"
    # --plan changes nothing: the store and the TPM's handles are as before, the finding stays
    before=$(sqlw 'SELECT path, status, persistent_handle, metadata, updated_at FROM objects ORDER BY id')
    citadel tpm --json --plan repair apply >planned.json
    assert_eq "$(json planned.json '[d["plan"], len(d["operations"])]')" "[true, 2]"
    assert_eq "$(sqlw 'SELECT path, status, persistent_handle, metadata, updated_at FROM objects ORDER BY id')" "$before"
    assert_eq "$(scan_kinds)" '["missing-handle", "orphan-handle"]' "after --plan"
    citadel tpm --json repair plan >plan.json
    assert_contains "$(json plan.json 'd["operations"]')" "evict persistent handle $h"
    assert_contains "$(json plan.json 'd["operations"]')" "persistent again at 0x81000150"
    repaired
    assert_eq "$(citadel tpm --json key show app/p | json - 'd["persistent_handle"]')" 0x81000150
    citadel tpm key sign app/p --input msg --output p.sig >/dev/null
    openssl dgst -sha256 -verify p.pem -signature p.sig msg >/dev/null || fail "the re-persisted key signs wrongly"
    assert_eq "$(citadel tpm --json log show --action repair.persist | json - 'len(d["events"])')" 1
}

# A key whose wrapped blob no longer loads is retired with the reason; nothing is deleted.
test_repair_unloadable_key_is_retired() {
    setup_vtpm
    citadel tpm key sign app/k --input msg --output k.sig >/dev/null
    # flip a byte inside the encrypted private area: the TPM's integrity check refuses it
    sqlw "UPDATE object_versions SET tpm_private = substr(tpm_private, 1, 20) || (CASE WHEN substr(tpm_private, 21, 1) = X'00' THEN X'01' ELSE X'00' END) || substr(tpm_private, 22) WHERE object_id = (SELECT id FROM objects WHERE path = 'app/k')"
    expect_fail 3 TPM0028 citadel tpm key sign app/k --input msg
    assert_eq "$(scan_kinds)" '["unloadable"]'
    assert_eq "$(scan_rc)" 10
    repaired
    assert_eq "$(citadel tpm --json key show app/k | json - 'd["status"]')" retired
    assert_contains "$(sqlw "SELECT metadata FROM objects WHERE path = 'app/k'")" "no longer loads"
    # its public key stays: the old signature still verifies
    citadel tpm key verify app/k --input msg --signature k.sig >/dev/null
    # the others are untouched
    assert_eq "$(citadel tpm --json object list | json - 'sorted((o["path"], o["status"]) for o in d["objects"])')" \
        '[["app/k", "retired"], ["app/n", "active"], ["app/p", "active"], ["app/s", "active"]]'
    citadel tpm secret unseal app/s --output out >/dev/null
    assert_eq "$(cat out)" s3cret
}

# SIGKILL in the middle of `key create --persist` (after the TPM change, before the store
# commit) leaves an intent; repair rolls it back and the next create works.
test_repair_killed_key_create() {
    setup_vtpm
    rc=0
    CITADEL_FAULT_POINT=key.create.persisted "$CITADEL_BIN" tpm key create app/killed --persist >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 137 "the command was killed"
    assert_eq "$(sqlw 'SELECT op FROM intents')" key.create
    assert_eq "$(citadel tpm --json object list | json - '[o["path"] for o in d["objects"] if o["path"] == "app/killed"]')" "[]"
    assert_eq "$(scan_kinds)" '["unfinished-command"]'
    assert_eq "$(scan_rc)" 10
    assert_contains "$(json scan.json 'd["findings"][0]["fix"]')" "roll back"
    repaired
    assert_eq "$(sqlw 'SELECT count(*) FROM intents')" 0
    citadel tpm key create app/killed --persist >/dev/null
    citadel tpm key sign app/killed --input msg >/dev/null
    doctor_consistent
}

# Kills at random moments of `key create --persist`: whatever state each leaves, repair brings
# the workspace back to consistent, and every key the store lists signs.
test_repair_random_kills_during_persist() {
    setup_vtpm
    for i in 1 2 3 4 5 6; do
        "$CITADEL_BIN" tpm key create "r/k$i" --persist >/dev/null 2>&1 &
        pid=$!
        sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    citadel tpm repair apply >/dev/null
    citadel tpm repair scan >/dev/null || fail "not clean after one apply: $(citadel tpm repair scan)"
    assert_eq "$(sqlw 'SELECT count(*) FROM intents')" 0
    integrity_ok
    doctor_consistent
    for k in $(citadel tpm --json key list | json - '" ".join(o["path"] for o in d["objects"] if o["path"].startswith("r/"))'); do
        citadel tpm key sign "$k" --input msg >/dev/null || fail "$k does not sign after repair"
    done
}

# nv define killed after the index was defined: rolled forward (the index is recorded).
test_repair_killed_nv_define_rolls_forward() {
    setup_vtpm
    rc=0
    CITADEL_FAULT_POINT=nv.define.defined "$CITADEL_BIN" tpm nv define app/n2 --size 16 >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 137
    assert_eq "$(scan_kinds)" '["unfinished-command"]'
    assert_contains "$(json scan.json 'd["findings"][0]["fix"]')" "roll forward"
    repaired
    printf 'sixteen bytes!!!' >d
    citadel tpm nv write app/n2 --input d >/dev/null
    citadel tpm nv read app/n2 --output back >/dev/null
    cmp d back || fail "the rolled-forward index does not read back"
}

# delete killed after the store commit: the handle is evicted (rolled forward); rotate killed
# after the new version took the handle: the recorded version is put back (rolled back).
test_repair_killed_delete_and_rotate() {
    setup_vtpm
    citadel tpm key export-pub app/p --output p.pem >/dev/null
    citadel tpm key create app/gone --persist >/dev/null
    h=$(citadel tpm --json key show app/gone | json - 'd["persistent_handle"]')
    rc=0
    CITADEL_FAULT_POINT=object.delete.committed "$CITADEL_BIN" tpm key delete app/gone >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 137
    rc=0
    CITADEL_FAULT_POINT=key.rotate.persisted "$CITADEL_BIN" tpm key rotate app/p >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 137
    assert_eq "$(scan_kinds)" '["unfinished-command", "unfinished-command"]'
    assert_eq "$(json scan.json 'sorted(f["object"] for f in d["findings"])')" '["app/gone", "app/p"]'
    citadel tpm --json repair plan >p.json
    assert_contains "$(json p.json 'd["operations"]')" "evict persistent handle $h (its object was deleted from the store)"
    assert_contains "$(json p.json 'd["operations"]')" "make version 1 of app/p persistent again"
    repaired
    assert_eq "$(citadel tpm --json key show app/p | json - 'd["version"]')" 1
    citadel tpm key sign app/p --input msg --output p.sig >/dev/null
    openssl dgst -sha256 -verify p.pem -signature p.sig msg >/dev/null || fail "app/p is not its version 1 after repair"
}

# A vTPM state of another TPM: repair reports tpm-replaced and refuses to change anything.
test_repair_refuses_another_tpm() {
    setup_vtpm
    citadel tpm --store-path "$T/other.db" init >/dev/null
    cp "$TPM_STORE_PATH.tpmstate" own.tpmstate
    cp "$T/other.db.tpmstate" "$TPM_STORE_PATH.tpmstate"
    before=$(sqlw 'SELECT path, status, persistent_handle, metadata FROM objects ORDER BY id')
    assert_eq "$(scan_kinds)" '["tpm-replaced"]'
    assert_eq "$(scan_rc)" 10
    expect_fail 10 TPM0142 citadel tpm repair apply
    assert_eq "$(sqlw 'SELECT path, status, persistent_handle, metadata FROM objects ORDER BY id')" "$before"
    out=$(citadel tpm --json recover show tpm-cleared 2>/dev/null || true)
    assert_eq "$(printf '%s' "$out" | json - '[d["fires"], d["detection"]["state"]]')" '[true, "tpm-replaced"]'
    cp own.tpmstate "$TPM_STORE_PATH.tpmstate"
    assert_eq "$(scan_kinds)" "[]"
    citadel tpm key sign app/p --input msg >/dev/null
}

# ---- swtpm: broken behind citadel's back with tpm2-tools ----

setup_swtpm() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    echo 'release 1.0' >msg
}

test_repair_swtpm_evicted_undefined_and_foreign() {
    setup_swtpm
    citadel tpm key create app/p --persist >/dev/null
    citadel tpm key create app/q --persist >/dev/null
    citadel tpm key export-pub app/p --output p.pem >/dev/null
    hp=$(citadel tpm --json key show app/p | json - 'd["persistent_handle"]')
    hq=$(citadel tpm --json key show app/q | json - 'd["persistent_handle"]')
    hn=$(citadel tpm --json nv define app/n --size 8 | json - 'd["handle"]')
    doctor_consistent
    # app/p evicted; app/n undefined; app/q's handle taken by a key of another program
    tpm2_evictcontrol -T "$SWTPM_TCTI" -C o -c "$hp" >/dev/null
    tpm2_nvundefine -T "$SWTPM_TCTI" "$hn"
    tpm2_evictcontrol -T "$SWTPM_TCTI" -C o -c "$hq" >/dev/null
    tpm2_createprimary -T "$SWTPM_TCTI" -C o -g sha256 -G ecc -c prim.ctx >/dev/null
    tpm2_evictcontrol -T "$SWTPM_TCTI" -C o -c prim.ctx "$hq" >/dev/null
    # and, in citadel's ranges, a persistent key and an NV index nothing proves are citadel's
    tpm2_evictcontrol -T "$SWTPM_TCTI" -C o -c prim.ctx 0x810001f0 >/dev/null
    tpm2_flushcontext -T "$SWTPM_TCTI" -t >/dev/null
    tpm2_nvdefine -T "$SWTPM_TCTI" 0x013000f0 -C o -s 4 -a "ownerread|ownerwrite" >/dev/null
    assert_eq "$(scan_kinds)" '["handle-mismatch", "missing-handle", "nv-missing", "orphan-handle", "orphan-nv"]'
    assert_eq "$(scan_rc)" 10
    assert_eq "$(json scan.json '[(f["object"], f.get("needs")) for f in d["findings"] if f["kind"].startswith("orphan")]')" \
        '[["0x810001f0", "--include-foreign"], ["0x013000f0", "--include-foreign"]]'
    citadel tpm --json repair plan >plan.json
    assert_not_contains "$(json plan.json 'd["operations"]')" "0x810001f0"
    assert_not_contains "$(json plan.json 'd["operations"]')" "0x013000f0"
    citadel tpm --json repair apply >apply.json
    assert_eq "$(json apply.json 'd["performed"]')" "$(json plan.json 'd["operations"]')"
    # the foreign things are still there; what needed repair is repaired
    tpm2_readpublic -T "$SWTPM_TCTI" -c 0x810001f0 >/dev/null || fail "a foreign handle was evicted without --include-foreign"
    tpm2_readpublic -T "$SWTPM_TCTI" -c "$hq" >/dev/null || fail "the foreign key at app/q's old handle was evicted"
    tpm2_nvreadpublic -T "$SWTPM_TCTI" 0x013000f0 >/dev/null || fail "a foreign NV index was undefined"
    tpm2_readpublic -T "$SWTPM_TCTI" -c "$hp" >/dev/null || fail "app/p was not re-persisted at $hp"
    hq2=$(citadel tpm --json key show app/q | json - 'd["persistent_handle"]')
    assert_ne "$hq2" "$hq" "app/q moved to a free handle"
    citadel tpm key sign app/p --input msg --output p.sig >/dev/null
    openssl dgst -sha256 -verify p.pem -signature p.sig msg >/dev/null || fail "app/p signs wrongly after repair"
    citadel tpm key sign app/q --input msg >/dev/null
    assert_eq "$(citadel tpm --json object list | json - '[o["status"] for o in d["objects"] if o["path"] == "app/n"]')" '["retired"]'
    # only the foreign findings remain: reported, not counted as needing repair
    assert_eq "$(scan_kinds)" '["orphan-handle", "orphan-handle", "orphan-nv"]'
    assert_eq "$(scan_rc)" 0 "foreign handles alone do not need repair"
    doctor_consistent
    # with the flag they go too
    assert_eq "$(scan_kinds --include-foreign)" '["orphan-handle", "orphan-handle", "orphan-nv"]'
    assert_eq "$(scan_rc)" 10
    repaired --include-foreign
    assert_eq "$(scan_kinds --include-foreign)" "[]"
    assert_not_contains "$(tpm2_getcap -T "$SWTPM_TCTI" handles-persistent)" 0x810001F0
    assert_not_contains "$(tpm2_getcap -T "$SWTPM_TCTI" handles-persistent)" 0x810001f0
    assert_not_contains "$(tpm2_getcap -T "$SWTPM_TCTI" handles-nv-index)" 0x13000F0
    assert_not_contains "$(tpm2_getcap -T "$SWTPM_TCTI" handles-nv-index)" 0x13000f0
    # the retired app/n's index number is free again and a new object takes it: gc removes the
    # retired row but must not undefine the new object's index
    hn2=$(citadel tpm --json nv define app/n2 --size 4 | json - 'd["handle"]')
    assert_eq "$hn2" "$hn" "the new index reuses the number"
    assert_eq "$(citadel tpm --json gc apply --retention 0 | json - '[d["freed"]["objects"], d["freed"]["tpm_handles"]]')" "[1, 0]"
    tpm2_nvreadpublic -T "$SWTPM_TCTI" "$hn2" >/dev/null || fail "gc undefined the index of app/n2"
    printf 'abcd' >d4
    citadel tpm nv write app/n2 --input d4 >/dev/null
    citadel tpm nv read app/n2 --output back4 >/dev/null
    cmp d4 back4 || fail "app/n2 does not read back"
    doctor_consistent
}

# tpm2_clear: the storage key and every key wrapped by it are gone. The playbook fires, repair
# retires what was lost (keeping the rows), makes a new storage key, and the workspace works.
test_repair_swtpm_cleared() {
    setup_swtpm
    citadel tpm key create app/k >/dev/null
    citadel tpm key create app/p --persist >/dev/null
    citadel tpm nv define app/n --size 8 >/dev/null
    printf 's' >s
    citadel tpm secret seal app/s --input s >/dev/null
    citadel tpm pcr baseline save b0 >/dev/null
    citadel tpm key sign app/k --input msg --output k.sig >/dev/null
    assert_eq "$(citadel tpm --json recover list | json - '[p["fires"] for p in d["playbooks"] if p["name"] == "tpm-cleared"]')" "[false]"
    tpm2_clear -T "$SWTPM_TCTI" -c l
    assert_eq "$(citadel tpm --json recover list | json - '[p["fires"] for p in d["playbooks"] if p["name"] == "tpm-cleared"]')" "[true]"
    rc=0
    citadel tpm --json recover show tpm-cleared >rec.json || rc=$?
    assert_eq "$rc" 10
    assert_eq "$(json rec.json 'd["detection"]["state"]')" tpm-cleared
    assert_contains "$(json rec.json 'd["commands"]')" "citadel tpm repair apply"
    expect_fail 10 TPM0027 citadel tpm key sign app/k --input msg
    assert_eq "$(scan_kinds)" '["tpm-cleared"]'
    assert_eq "$(scan_rc)" 10
    n=$(sqlw 'SELECT count(*) FROM objects')
    repaired
    assert_eq "$(sqlw 'SELECT count(*) FROM objects')" "$n" "no store row is deleted"
    assert_eq "$(citadel tpm --json object list | json - 'sorted((o["path"], o["status"]) for o in d["objects"])')" \
        '[["app/k", "retired"], ["app/n", "retired"], ["app/p", "retired"], ["app/s", "retired"], ["b0", "active"]]'
    assert_contains "$(sqlw "SELECT metadata FROM objects WHERE path = 'app/p'")" "tpm-cleared"
    citadel tpm key verify app/k --input msg --signature k.sig >/dev/null
    citadel tpm key create app/k2 --persist >/dev/null
    citadel tpm key sign app/k2 --input msg >/dev/null
    assert_eq "$(citadel tpm --json recover show tpm-cleared | json - 'd["fires"]')" false
}

# ---- gc ----

test_gc_removes_retired_past_retention_only() {
    setup_vtpm
    citadel tpm key create old/p --persist >/dev/null
    hp=$(citadel tpm --json key show old/p | json - 'd["persistent_handle"]')
    citadel tpm key create old/k >/dev/null
    citadel tpm key create new/k >/dev/null
    citadel tpm object retire old/p >/dev/null
    citadel tpm object retire old/k >/dev/null
    citadel tpm object retire new/k >/dev/null
    # old/* retired 40 days ago, new/k just now
    sqlw "UPDATE objects SET updated_at = updated_at - 40 * 86400 WHERE path LIKE 'old/%'"
    # a version row whose object is gone (a hand edit without foreign keys) and a leftover file
    sqlw "INSERT INTO object_versions(object_id, version, tpm_public, tpm_private, tpm_name, created_at) VALUES (9999, 1, X'00', X'00', X'00', 0)"
    printf 'x' >"$TPM_STORE_PATH.tpmstate.tmp.999999"
    citadel tpm --json gc plan >plan.json
    assert_eq "$(json plan.json 'sorted(o["path"] for o in d["objects"])')" '["old/k", "old/p"]'
    assert_eq "$(json plan.json 'd["orphaned_versions"]')" 1
    assert_eq "$(json plan.json '[f["path"].endswith(".tmp.999999") for f in d["files"]]')" "[true]"
    assert_contains "$(json plan.json 'd["operations"]')" "evict persistent handle $hp"
    # --plan changes nothing
    citadel tpm --json --plan gc apply >/dev/null
    assert_eq "$(sqlw 'SELECT count(*) FROM objects')" 7
    assert_file "$TPM_STORE_PATH.tpmstate.tmp.999999"
    citadel tpm --json gc apply >gc.json
    assert_eq "$(json gc.json '[d["freed"]["objects"], d["freed"]["orphaned_versions"], d["freed"]["files"], d["freed"]["tpm_handles"]]')" "[2, 1, 1, 1]"
    [ "$(json gc.json 'd["freed"]["bytes"]')" -gt 0 ] || fail "gc reports no bytes freed"
    assert_eq "$(json gc.json 'd["operations"]')" "$(json plan.json 'd["operations"]')"
    assert_eq "$(citadel tpm --json object list | json - 'sorted((o["path"], o["status"]) for o in d["objects"])')" \
        '[["app/k", "active"], ["app/n", "active"], ["app/p", "active"], ["app/s", "active"], ["new/k", "retired"]]'
    assert_no_file "$TPM_STORE_PATH.tpmstate.tmp.999999"
    assert_eq "$(sqlw 'SELECT count(*) FROM object_versions WHERE object_id NOT IN (SELECT id FROM objects)')" 0
    assert_eq "$(citadel tpm --json gc plan | json - 'd["objects"]')" "[]"
    # --retention 0 takes the one retired just now; active objects never go
    assert_eq "$(citadel tpm --json gc apply --retention 0 | json - 'd["freed"]["objects"]')" 1
    assert_eq "$(citadel tpm --json object list | json - 'len(d["objects"])')" 4
    integrity_ok
    doctor_consistent
    citadel tpm repair scan >/dev/null
}

test_gc_keeps_what_kept_objects_need() {
    init_vtpm
    citadel tpm key create st --usage storage >/dev/null
    citadel tpm key create st/child --parent st >/dev/null
    citadel tpm object retire st >/dev/null
    citadel tpm --json gc plan --retention 0 >plan.json
    assert_eq "$(json plan.json 'd["objects"]')" "[]"
    assert_contains "$(json plan.json 'd["kept"][0]["reason"]')" "st/child depends on it"
    citadel tpm object retire st/child >/dev/null
    assert_eq "$(citadel tpm --json gc apply --retention 0 | json - 'd["freed"]["objects"]')" 2
    expect_fail 2 TPM0002 citadel tpm gc plan --retention soon
}

# ---- recover ----

test_recover_playbooks() {
    init_vtpm
    citadel tpm key create k --algorithm rsa-2048 >/dev/null
    citadel tpm --json recover list >list.json
    assert_eq "$(json list.json '[p["name"] for p in d["playbooks"]]')" \
        '["tpm-cleared", "handle-mismatch", "profile-drift", "boot-change", "metadata-corruption", "key-rotation"]'
    assert_eq "$(json list.json '[p["fires"] for p in d["playbooks"]]')" '[false, false, false, false, false, false]'
    for p in tpm-cleared handle-mismatch profile-drift boot-change metadata-corruption key-rotation; do
        citadel tpm recover show "$p" >show.txt || fail "recover show $p exited $?"
        [ "$p" == boot-change ] || assert_contains "$(cat show.txt)" "Commands:"
        citadel tpm --json recover show "$p" >show.json
    done
    # unknown: a usage error that lists the playbooks
    expect_fail 2 TPM0002 citadel tpm recover show nothing
    assert_contains "$ERR" "tpm-cleared, handle-mismatch, profile-drift, boot-change, metadata-corruption, key-rotation"
    # key-rotation fires for keys older than --age
    rc=0
    citadel tpm --json recover show key-rotation --age 0 >rot.json || rc=$?
    assert_eq "$rc" 10
    assert_eq "$(json rot.json '[k["path"] for k in d["detection"]["keys"]]')" '["k"]'
    # profile drift: ci-signer allows ECC keys under ci/ only
    citadel tpm profile set ci-signer >/dev/null
    rc=0
    citadel tpm --json recover show profile-drift >drift.json || rc=$?
    assert_eq "$rc" 10
    assert_eq "$(json drift.json 'sorted(o["violation"] for o in d["detection"]["objects"])')" \
        '["algorithm not allowed by the profile", "path outside the profile'"'"'s prefix"]'
    citadel tpm profile set default >/dev/null
    # metadata corruption: invalid JSON in an object's metadata
    sqlw "UPDATE objects SET metadata = '{broken' WHERE path = 'k'"
    rc=0
    citadel tpm --json recover show metadata-corruption >mc.json || rc=$?
    assert_eq "$rc" 10
    assert_eq "$(json mc.json 'd["detection"]["invalid_metadata_paths"]')" '["k"]'
    assert_eq "$(citadel tpm --json recover list | json - '[p["name"] for p in d["playbooks"] if p["fires"]]')" '["metadata-corruption"]'
    sqlw "UPDATE objects SET metadata = '{}' WHERE path = 'k'"
    # handle-mismatch runs the repair scan
    citadel tpm key create p --persist >/dev/null
    sqlw "UPDATE objects SET persistent_handle = 0x81000160 WHERE path = 'p'"
    rc=0
    citadel tpm --json recover show handle-mismatch >hm.json || rc=$?
    assert_eq "$rc" 10
    assert_eq "$(json hm.json 'sorted(f["kind"] for f in d["detection"]["findings"])')" '["missing-handle", "orphan-handle"]'
}
