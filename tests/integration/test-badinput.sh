# SPDX-License-Identifier: Apache-2.0
# Bad input of every kind: malformed paths, unreadable/empty/oversized/malformed files, foreign
# or newer stores, damaged or missing vTPM state, bad global options, unreachable swtpm. Each
# failure must name the right code and exit status, and leave files and workspace untouched.

# The objects and their versions, for before/after comparisons.
objects_snapshot() {
    citadel tpm --json object list
    citadel tpm --json log show --limit 100000 | json - 'd["count"]'
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- object paths ----

test_malformed_paths_rejected() {
    init_vtpm
    echo x >m
    citadel tpm key create good >/dev/null
    before=$(objects_snapshot)
    long=$(printf 'a%.0s' $(seq 256))
    for p in "Signing/X" "UPPER" "a/../b" ".." "a/./b" "." "/abs" "a/" "a//b" "$long" "" "a b" "a\$b" "ключ" "a*" "a\\b"; do
        expect_fail 3 TPM0003 citadel tpm key create "$p"
        assert_contains "$ERR" "invalid object path"
        expect_fail 3 TPM0003 citadel tpm key show "$p"
        expect_fail 3 TPM0003 citadel tpm key sign "$p" --input m
        expect_fail 3 TPM0003 citadel tpm key delete "$p"
        expect_fail 3 TPM0003 citadel tpm object rename good "$p"
    done
    expect_fail 3 TPM0003 citadel tpm key create "$long"
    assert_contains "$ERR" "255"
    expect_fail 3 TPM0003 citadel tpm key create "a/../b"
    assert_contains "$ERR" ".."
    # nothing changed; the key still works under its name
    assert_eq "$(objects_snapshot)" "$before"
    citadel tpm key sign good --input m >/dev/null
    # the boundary: 255 bytes is a valid path, and so are the documented characters
    p255=$(printf 'b%.0s' $(seq 255))
    citadel tpm key create "$p255" >/dev/null
    assert_eq "$(citadel tpm --json key show "$p255" | json - 'len(d["path"])')" 255
    citadel tpm key create "team-1/svc_a.v2/key-0" >/dev/null
    citadel tpm key sign "team-1/svc_a.v2/key-0" --input m >/dev/null
    doctor_consistent
}

test_create_existing_path_keeps_original() {
    init_vtpm
    echo "data" >m
    citadel tpm key create signing/k >/dev/null
    citadel tpm key export-pub signing/k --output orig.pem >/dev/null
    show_before=$(citadel tpm --json key show signing/k)
    for alg in ecc-p256 ecc-p384 rsa-2048; do
        expect_fail 3 TPM0005 citadel tpm key create signing/k --algorithm "$alg"
        assert_contains "$ERR" "signing/k"
    done
    expect_fail 3 TPM0005 citadel tpm key create signing/k --persist
    assert_eq "$(citadel tpm --json key show signing/k)" "$show_before"
    citadel tpm key sign signing/k --input m --output m.sig >/dev/null
    assert_eq "$(openssl dgst -sha256 -verify orig.pem -signature m.sig m)" "Verified OK"
    citadel tpm key export-pub signing/k --output now.pem >/dev/null
    cmp orig.pem now.pem || fail "the public key changed"
    # the failed --persist left no persistent handle behind
    doctor_consistent
}

# ---- input files ----

test_unreadable_and_empty_input() {
    init_vtpm
    citadel tpm key create k >/dev/null
    echo x >m
    citadel tpm key sign k --input m --output m.sig >/dev/null
    before=$(objects_snapshot)
    mkdir adir
    : >empty
    expect_fail 2 TPM0029 citadel tpm key sign k --input missing.txt --output s.sig
    assert_contains "$ERR" missing.txt
    assert_no_file s.sig
    expect_fail 2 TPM0029 citadel tpm key sign k --input adir --output s.sig
    assert_no_file s.sig
    expect_fail 2 TPM0029 citadel tpm key verify k --input missing.txt --signature m.sig
    expect_fail 2 TPM0029 citadel tpm key verify k --input m --signature missing.sig
    expect_fail 2 TPM0029 citadel tpm key verify k --input m --signature adir
    expect_fail 2 TPM0029 citadel tpm workspace import --input missing.json
    expect_fail 2 TPM0029 citadel tpm workspace import --input adir
    expect_fail 2 TPM0031 citadel tpm key sign k --input empty --output s.sig
    assert_no_file s.sig
    rc=0
    citadel tpm key sign k --input - --output s.sig </dev/null 2>err || rc=$?
    assert_eq "$rc" 2
    assert_contains "$(cat err)" "error[TPM0031]"
    assert_no_file s.sig
    expect_fail 2 TPM0031 citadel tpm key verify k --input m --signature empty
    expect_fail 2 TPM0031 citadel tpm workspace import --input empty
    # JSON error output names the code too
    rc=0
    citadel tpm --json key sign k --input missing.txt 2>err.json || rc=$?
    assert_eq "$rc" 2
    assert_eq "$(json err.json 'd["error"]["code"]')" TPM0029
    # an output file that cannot be written
    expect_fail 2 TPM0032 citadel tpm key sign k --input m --output nodir/s.sig
    expect_fail 2 TPM0032 citadel tpm key export-pub k --output adir
    assert_eq "$(objects_snapshot)" "$before"
    doctor_consistent
}

test_oversized_input() {
    init_vtpm
    citadel tpm key create k >/dev/null
    echo x >m
    citadel tpm key sign k --input m --output m.sig >/dev/null
    before=$(objects_snapshot)
    truncate -s $((64 * 1024 * 1024 + 1)) big.json # sparse: > 64 MiB without the disk cost
    expect_fail 2 TPM0030 citadel tpm workspace import --input big.json
    assert_contains "$ERR" "67108864"
    head -c 4097 /dev/urandom >big.sig
    expect_fail 2 TPM0030 citadel tpm key verify k --input m --signature big.sig
    assert_contains "$ERR" "4096"
    # exactly at the limit is not "too large": it just does not verify
    head -c 4096 /dev/urandom >edge.sig
    expect_fail 3 TPM0033 citadel tpm key verify k --input m --signature edge.sig
    # oversized stdin is refused the same way
    rc=0
    head -c 5000 /dev/zero | citadel tpm key verify k --input m --signature - 2>err || rc=$?
    if [ "$rc" != 0 ]; then
        assert_contains "$(cat err)" "error[TPM0030]"
    fi
    assert_eq "$(objects_snapshot)" "$before"
    citadel tpm key verify k --input m --signature m.sig >/dev/null
    doctor_consistent
}

test_malformed_import_files() {
    init_vtpm
    citadel tpm key create k >/dev/null
    citadel tpm workspace export --output good.json >/dev/null
    citadel tpm key delete k >/dev/null
    before=$(objects_snapshot)
    echo '{not json' >bad1.json
    echo '[1, 2, 3]' >bad2.json
    echo '{"format": "something-else", "format_version": 1, "objects": []}' >bad3.json
    python3 - <<'EOF'
import json
d = json.load(open("good.json"))
def w(name, doc):
    json.dump(doc, open(name, "w"))
e = json.loads(json.dumps(d)); e["format_version"] = 99; w("bad4.json", e)
e = json.loads(json.dumps(d)); e["objects"] = "nope"; w("bad5.json", e)
e = json.loads(json.dumps(d)); del e["objects"][0]["path"]; w("bad6.json", e)
e = json.loads(json.dumps(d)); del e["objects"][0]["versions"]; w("bad7.json", e)
open("bad8.json", "wb").write(b"\x00\x01\x02 binary garbage \xff\xfe")
open("bad9.json", "w").write(json.dumps(d)[:-40])  # truncated
EOF
    for f in bad1 bad2 bad3 bad4 bad5 bad6 bad7 bad8 bad9; do
        expect_fail 4 TPM0039 citadel tpm workspace import --input "$f.json"
        assert_contains "$ERR" "$f.json"
    done
    # a path in the export that is not a valid path
    python3 -c 'import json
d = json.load(open("good.json")); d["objects"][0]["path"] = "../Evil"; json.dump(d, open("evil.json", "w"))'
    rc=0
    citadel tpm workspace import --input evil.json 2>err || rc=$?
    [ "$rc" != 0 ] || fail "an export with path '../Evil' was imported"
    grep -Eq 'error\[TPM00(03|39)\]' err || fail "unexpected error for an invalid path in an export: $(cat err)"
    assert_eq "$(objects_snapshot)" "$before" "a malformed import changed the store"
    # the good one still imports
    citadel tpm workspace import --input good.json >/dev/null
    citadel tpm key show k >/dev/null
    doctor_consistent
}

test_import_from_another_tpm_refused() {
    init_vtpm
    citadel tpm key create k >/dev/null
    citadel tpm workspace export --output mine.json >/dev/null
    # a second workspace has its own vTPM and storage key
    export TPM_STORE_PATH="$T/other/store.db"
    citadel tpm init >/dev/null
    before=$(objects_snapshot)
    expect_fail 10 TPM0040 citadel tpm workspace import --input "$T/mine.json"
    assert_contains "$ERR" "storage key"
    assert_eq "$(objects_snapshot)" "$before"
    expect_fail 3 TPM0004 citadel tpm key show k
    doctor_consistent
}

# ---- the store file ----

# store_refused FILE CODE: every command refuses FILE with CODE, and the file stays
# byte-identical; no TPM state is created beside it.
store_refused() {
    local f=$1 code=$2 h c
    h=$(sha "$f")
    echo x >"$T/m"
    for c in "status" "key list" "key create a" "object list" "doctor" "workspace info" "init" "log show" \
        "workspace export --output $T/ex.json"; do
        # shellcheck disable=SC2086
        expect_fail 4 "$code" citadel tpm --store-path "$f" $c
        assert_contains "$ERR" "$f"
    done
    expect_fail 4 "$code" citadel tpm --store-path "$f" key sign a --input "$T/m"
    TPM_STORE_PATH=$f expect_fail 4 "$code" citadel tpm key list
    assert_eq "$(sha "$f")" "$h" "$f was modified"
    assert_no_file "$f.tpmstate"
    assert_no_file "$f-wal"
    assert_no_file "$f-journal"
    assert_no_file "$T/ex.json"
}

test_store_not_sqlite() {
    printf 'this is my shopping list\nmilk\n' >notes.txt
    store_refused "$T/notes.txt" TPM0010
    assert_contains "$ERR" "not"
    head -c 100000 /dev/urandom >random.bin
    store_refused "$T/random.bin" TPM0010
}

test_store_empty_file() {
    : >empty.db
    store_refused "$T/empty.db" TPM0010
    [ ! -s empty.db ] || fail "the empty file was written to"
}

test_store_of_another_application() {
    python3 -c 'import sqlite3
c = sqlite3.connect("app.db")
c.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
c.execute("INSERT INTO contacts VALUES (?, ?)", ("alice", "555"))
c.commit()'
    store_refused "$T/app.db" TPM0010
    assert_contains "$ERR" "another application"
    # a WAL-mode database of another application too
    python3 -c 'import sqlite3
c = sqlite3.connect("app2.db")
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA application_id=1234")
c.execute("CREATE TABLE t (x)")
c.commit(); c.close()'
    store_refused "$T/app2.db" TPM0010
    assert_eq "$(python3 -c 'import sqlite3; print(sqlite3.connect("app.db").execute("select * from contacts").fetchall())')" "[('alice', '555')]"
}

test_store_with_newer_schema() {
    init_vtpm
    citadel tpm key create k >/dev/null
    python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA user_version=999"); c.commit(); c.close()' "$TPM_STORE_PATH"
    state=$(sha "$TPM_STORE_PATH.tpmstate")
    h=$(sha "$TPM_STORE_PATH")
    echo x >m
    for c in "status" "key list" "key show k" "key create b" "key rotate k" "key delete k" "object rename k j" \
        "doctor" "workspace info" "init" "workspace export --output ex.json"; do
        # shellcheck disable=SC2086
        expect_fail 4 TPM0011 citadel tpm $c
        assert_contains "$ERR" "999"
    done
    expect_fail 4 TPM0011 citadel tpm key sign k --input m
    expect_fail 4 TPM0011 citadel tpm --plan key create c
    assert_eq "$(sha "$TPM_STORE_PATH")" "$h" "a newer store was modified"
    assert_eq "$(sha "$TPM_STORE_PATH.tpmstate")" "$state" "the TPM state was modified"
    assert_eq "$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA user_version").fetchone()[0])' "$TPM_STORE_PATH")" 999
}

# ---- the vTPM state file ----

# state_refused: with a damaged or missing state, TPM commands fail with CODE, the state file
# (if any) is untouched, no state appears if there was none, and the store is unchanged.
state_refused() {
    local code=$1 h="" c
    [ -e "$TPM_STORE_PATH.tpmstate" ] && h=$(sha "$TPM_STORE_PATH.tpmstate")
    for c in "key sign k --input m --output s.sig" "key create other" "key rotate k"; do
        # shellcheck disable=SC2086
        expect_fail 5 "$code" citadel tpm $c
        assert_contains "$ERR" "$TPM_STORE_PATH.tpmstate"
    done
    expect_fail 5 "$code" citadel tpm key create p --persist
    expect_fail 5 "$code" citadel tpm capabilities
    expect_fail 4 TPM0014 citadel tpm init
    assert_no_file s.sig
    # doctor reports the failure (exit 10) instead of repairing anything
    rc=0
    citadel tpm --json doctor >doc.json || rc=$?
    assert_eq "$rc" 10 "doctor exit status"
    assert_contains "$(json doc.json '[c["detail"] for c in d["checks"] if c["status"] == "fail"]')" "$code"
    # status still answers, with a reduced score
    citadel tpm --json status >st.json
    [ "$(json st.json 'd["health_score"]')" -lt 90 ] || fail "status did not deduct for an unusable TPM"
    if [ -n "$h" ]; then
        assert_eq "$(sha "$TPM_STORE_PATH.tpmstate")" "$h" "the state file was modified"
    else
        assert_no_file "$TPM_STORE_PATH.tpmstate"
    fi
    assert_eq "$(citadel tpm --json object list)" "$before" "the store changed"
    # commands that only read the store work without the TPM
    citadel tpm key verify k --input m --signature good.sig >/dev/null
    citadel tpm key export-pub k >/dev/null
    citadel tpm key list >/dev/null
}

# setup_state: a workspace with key k, a good signature and a backup of the state.
setup_state() {
    init_vtpm
    echo x >m
    citadel tpm key create k >/dev/null
    citadel tpm key sign k --input m --output good.sig >/dev/null
    cp "$TPM_STORE_PATH.tpmstate" state.bak
    before=$(citadel tpm --json object list)
}

# after a restore from the backup everything works again
state_restored() {
    cp state.bak "$TPM_STORE_PATH.tpmstate"
    citadel tpm key sign k --input m --output s2.sig >/dev/null
    citadel tpm key verify k --input m --signature s2.sig >/dev/null
    doctor_consistent
}

test_tpmstate_bit_flip() {
    setup_state
    python3 -c 'import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x01; open(p, "wb").write(b)' "$TPM_STORE_PATH.tpmstate"
    state_refused TPM0019
    state_restored
}

test_tpmstate_truncated() {
    setup_state
    head -c $(($(stat -c %s state.bak) / 2)) state.bak >"$TPM_STORE_PATH.tpmstate"
    state_refused TPM0019
    state_restored
}

test_tpmstate_empty() {
    setup_state
    : >"$TPM_STORE_PATH.tpmstate"
    state_refused TPM0019
    [ ! -s "$TPM_STORE_PATH.tpmstate" ] || fail "the empty state file was written to"
    state_restored
}

test_tpmstate_garbage() {
    setup_state
    head -c "$(stat -c %s state.bak)" /dev/urandom >"$TPM_STORE_PATH.tpmstate"
    state_refused TPM0019
    state_restored
}

# A state file torn (or otherwise damaged) with the previous state whole in the swap file (what a
# power loss mid-save left before saves synced the exchange): refused like any damaged state, and
# the error says how to go back to the previous one, which then works.
test_tpmstate_torn_with_previous_in_swap() {
    setup_state
    sw="$TPM_STORE_PATH.tpmstate.swap"
    [ -f "$sw" ] || fail "no $sw after a few commands"
    cp "$sw" swap.bak
    # the torn file: the first half of a newer state over the previous one
    citadel tpm key sign k --input m --output s1.sig >/dev/null
    python3 -c 'import sys
new, old = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert new != old
h = len(new) // 2
open(sys.argv[1], "wb").write(new[:h] + old[h:] if len(old) > h else new[:h])' "$TPM_STORE_PATH.tpmstate" "$sw"
    state_refused TPM0019
    expect_fail 5 TPM0019 citadel tpm key sign k --input m --output s.sig
    assert_contains "$ERR" "$sw holds the state before the last save, whole"
    assert_contains "$ERR" "mv $sw $TPM_STORE_PATH.tpmstate"
    mv "$sw" "$TPM_STORE_PATH.tpmstate"
    citadel tpm key sign k --input m --output s2.sig >/dev/null
    citadel tpm key verify k --input m --signature s2.sig >/dev/null
    doctor_consistent
    # a damaged swap file too: no such advice
    python3 -c 'import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x01; open(p, "wb").write(b)' "$TPM_STORE_PATH.tpmstate"
    python3 -c 'import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 3] ^= 0x01; open(p, "wb").write(b)' "$sw"
    expect_fail 5 TPM0019 citadel tpm key sign k --input m --output s3.sig
    case "$ERR" in *"mv "*) fail "advice to go back to a damaged swap file: $ERR" ;; esac
}

test_tpmstate_missing() {
    setup_state
    rm "$TPM_STORE_PATH.tpmstate"
    state_refused TPM0018
    expect_fail 5 TPM0018 citadel tpm key sign k --input m
    assert_contains "$ERR" "will not silently create a new TPM"
    assert_no_file "$TPM_STORE_PATH.tpmstate"
    state_restored
}

test_tpmstate_of_another_tpm() {
    # the state file of another workspace's vTPM: the storage key does not match
    setup_state
    citadel tpm --store-path "$T/other.db" init >/dev/null
    cp "$T/other.db.tpmstate" "$TPM_STORE_PATH.tpmstate"
    expect_fail 10 TPM0027 citadel tpm key sign k --input m --output s.sig
    assert_no_file s.sig
    expect_fail 10 TPM0027 citadel tpm key create other
    rc=0
    citadel tpm --json doctor >doc.json || rc=$?
    assert_eq "$rc" 10
    assert_eq "$(json doc.json 'd["consistent"]')" false
    assert_eq "$(json doc.json '[c["status"] for c in d["checks"] if c["check"] == "storage primary key"]')" '["fail"]'
    assert_eq "$(citadel tpm --json object list)" "$before" "the store changed"
    state_restored
}

# ---- global options, backends, workspace state ----

test_wrong_format() {
    init_vtpm
    for f in xml JSON "" txt html; do
        expect_fail 2 TPM0035 citadel tpm --format "$f" status
        assert_eq "$OUT" "" "stdout with a bad --format"
    done
    expect_fail 2 TPM0035 citadel tpm --format xml key create k
    expect_fail 3 TPM0004 citadel tpm key show k
    expect_fail 2 TPM0002 citadel tpm --format
}

test_unknown_backend() {
    expect_fail 5 TPM0016 citadel tpm --backend nosuch init
    assert_contains "$ERR" nosuch
    assert_no_file "$TPM_STORE_PATH"
    TPM_BACKEND=quantum expect_fail 5 TPM0016 citadel tpm init
    assert_no_file "$TPM_STORE_PATH"
    init_vtpm
    expect_fail 5 TPM0016 citadel tpm --backend nosuch status
    TPM_BACKEND=nosuch expect_fail 5 TPM0016 citadel tpm key list
    doctor_consistent
}

test_uninitialised_workspace() {
    echo x >m
    for c in "status" "key list" "key create a" "key show a" "object list" "workspace info" "log show" \
        "key rotate a" "workspace export --output e.json"; do
        # shellcheck disable=SC2086
        expect_fail 4 TPM0013 citadel tpm $c
        assert_contains "$ERR" "citadel tpm init"
    done
    expect_fail 4 TPM0013 citadel tpm key sign a --input m
    # nothing was created by any of them
    assert_no_file "$TPM_STORE_PATH"
    assert_no_file "$TPM_STORE_PATH.tpmstate"
    assert_no_file e.json
    # in a directory that does not exist either
    expect_fail 4 TPM0013 citadel tpm --store-path "$T/no/such/dir/s.db" status
    assert_no_file "$T/no"
}

test_init_twice() {
    citadel tpm --json init >first.json
    citadel tpm key create k >/dev/null
    h=$(sha "$TPM_STORE_PATH.tpmstate")
    expect_fail 4 TPM0014 citadel tpm init
    assert_contains "$ERR" "$TPM_STORE_PATH"
    expect_fail 4 TPM0014 citadel tpm init --profile high
    assert_eq "$(sha "$TPM_STORE_PATH.tpmstate")" "$h" "a second init touched the TPM state"
    assert_eq "$(citadel tpm --json workspace info | json - 'd["workspace_id"]')" "$(json first.json 'd["workspace_id"]')"
    citadel tpm key show k >/dev/null
    echo x >m
    citadel tpm key sign k --input m >/dev/null
    doctor_consistent
}

test_swtpm_not_running() {
    port=$(free_port)
    expect_fail 6 TPM0021 citadel tpm --backend swtpm --tcti "swtpm:host=127.0.0.1,port=$port" init
    assert_contains "$ERR" "127.0.0.1"
    assert_contains "$ERR" "$port"
    assert_no_file "$TPM_STORE_PATH"
    # the same through the environment
    TPM_TCTI="swtpm:host=127.0.0.1,port=$port" expect_fail 6 TPM0021 citadel tpm --backend swtpm init
    assert_contains "$ERR" "$port"
    assert_no_file "$TPM_STORE_PATH"
    # a workspace initialised on swtpm, whose swtpm has gone away
    start_swtpm
    citadel tpm --backend swtpm --tcti "$SWTPM_TCTI" init >/dev/null
    citadel tpm key create k >/dev/null
    stop_swtpm
    echo x >m
    expect_fail 6 TPM0021 citadel tpm key sign k --input m
    assert_contains "$ERR" "$SWTPM_PORT"
    rc=0
    citadel tpm --json doctor >doc.json || rc=$?
    assert_eq "$rc" 10
    assert_eq "$(json doc.json '[c["status"] for c in d["checks"] if c["check"] == "backend reachable"]')" '["fail"]'
    # the store is intact and store-only commands work
    citadel tpm key show k >/dev/null
}

test_bad_key_options() {
    init_vtpm
    echo x >m
    citadel tpm key create k >/dev/null
    before=$(objects_snapshot)
    expect_fail 5 TPM0023 citadel tpm key create a --algorithm ecc-p521x
    expect_fail 2 TPM0002 citadel tpm key create a --scheme rsassa
    expect_fail 2 TPM0002 citadel tpm key create a --usage decrypt
    expect_fail 3 TPM0004 citadel tpm key create a --parent nosuch
    expect_fail 3 TPM0007 citadel tpm key create a --parent k
    expect_fail 5 TPM0023 citadel tpm key sign k --input m --digest md5 --output s.sig
    expect_fail 2 TPM0002 citadel tpm key sign k --input m --encoding base64 --output s.sig
    assert_no_file s.sig
    expect_fail 2 TPM0002 citadel tpm key verify k --input m --signature m --version abc
    expect_fail 2 TPM0002 citadel tpm log show --limit -5
    expect_fail 2 TPM0002 citadel tpm key create
    expect_fail 2 TPM0002 citadel tpm object rename k
    assert_eq "$(objects_snapshot)" "$before"
    doctor_consistent
}

test_sign_digests_are_the_documented_ones() {
    # every digest `key sign` accepts is one its --help documents (sha256, sha384, sha512);
    # the others are refused and write no signature
    init_vtpm
    echo x >m
    citadel tpm key create k >/dev/null
    help=$(citadel tpm key sign --help | grep -- '--digest')
    for dg in sha1 sha224 sha256 sha384 sha512 sha3-256; do
        if citadel tpm key sign k --input m --digest "$dg" --output "s-$dg.sig" >/dev/null 2>&1; then
            assert_contains "$help" "$dg" "key sign accepted --digest $dg, which --help does not document"
            citadel tpm key verify k --input m --signature "s-$dg.sig" --digest "$dg" >/dev/null
        else
            assert_no_file "s-$dg.sig"
        fi
    done
    for dg in sha256 sha384 sha512; do
        assert_file "s-$dg.sig"
    done
}

# What the user typed ends up in error messages: bytes that are not UTF-8 become '?' (a message
# once rendered as "(null)", since JSON cannot hold them), valid UTF-8 stays as typed, and the
# JSON form of the error parses.
test_non_utf8_input_in_error_messages() {
    init_vtpm
    expect_fail 3 TPM0003 citadel tpm key show $'caf\xe9'
    assert_contains "$ERR" "invalid object path: caf?"
    expect_fail 3 TPM0003 citadel tpm key show $'caf\xc3\xa9/\xe2\x82'
    assert_contains "$ERR" "invalid object path: café/??"
    expect_fail 2 TPM0002 citadel ca revoke 01 --reason $'caf\xe9'
    assert_contains "$ERR" "unknown revocation reason: caf?"
    citadel tpm --json key show $'k\xff' >/dev/null 2>err.json || true
    assert_eq "$(json err.json 'd["error"]["message"]')" "invalid object path: k?"
}
