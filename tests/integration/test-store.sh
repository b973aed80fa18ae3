# SPDX-License-Identifier: Apache-2.0
# The store as a file: SQLite settings, schema, the operation log, file modes, where it lives
# by default, and the environment overrides.

# sql DB QUERY: the rows of QUERY as Python reprs, one per line (read-only connection).
sql() {
    python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for row in c.execute(sys.argv[2]).fetchall():
    print(row[0] if len(row) == 1 else row)' "$1" "$2"
}

events() { sql "$TPM_STORE_PATH" "SELECT count(*) FROM events"; }
last_event() { sql "$TPM_STORE_PATH" "SELECT action || ' ' || coalesce(object_path, '-') || ' ' || outcome FROM events ORDER BY id DESC LIMIT 1"; }

test_store_is_sqlite_wal_with_foreign_keys() {
    init_vtpm
    citadel tpm key create st --usage storage >/dev/null
    citadel tpm key create st/c --parent st >/dev/null
    citadel tpm key create k >/dev/null
    citadel tpm key rotate k >/dev/null
    assert_eq "$(head -c 15 "$TPM_STORE_PATH")" "SQLite format 3"
    assert_eq "$(sql "$TPM_STORE_PATH" 'PRAGMA journal_mode')" wal
    assert_eq "$(printf '0x%08x' "$(sql "$TPM_STORE_PATH" 'PRAGMA application_id')")" 0x43495444 # "CITD"
    # user_version is the schema version (the number of applied migrations, 1 in the first
    # release); status and doctor report the same number
    uv=$(sql "$TPM_STORE_PATH" 'PRAGMA user_version')
    if ! [[ "$uv" =~ ^[0-9]+$ ]] || [ "$uv" -lt 1 ]; then
        fail "PRAGMA user_version is '$uv'"
    fi
    assert_eq "$(citadel tpm --json status | json - 'd["workspace"].get("store_schema_version", d["workspace"].get("schema_version"))')" "$uv"
    assert_contains "$(citadel tpm --json doctor | json - '[c["detail"] for c in d["checks"] if c["check"] == "store integrity"]')" "schema version $uv"
    assert_eq "$(sql "$TPM_STORE_PATH" 'PRAGMA integrity_check')" ok
    # foreign keys: declared, and no row violates them
    fks=$(sql "$TPM_STORE_PATH" "SELECT m.name || '.' || p.\"from\" || '->' || p.\"table\" || '.' || p.\"to\" FROM sqlite_master m, pragma_foreign_key_list(m.name) p WHERE m.type = 'table' ORDER BY 1")
    assert_contains "$fks" "objects.parent_id->objects.id"
    assert_contains "$fks" "object_versions.object_id->objects.id"
    assert_eq "$(sql "$TPM_STORE_PATH" 'PRAGMA foreign_key_check')" ""
    # they are enforced: deleting keys leaves no orphaned versions or dangling parents
    citadel tpm key delete st --force >/dev/null
    citadel tpm key delete k >/dev/null
    assert_eq "$(sql "$TPM_STORE_PATH" 'SELECT count(*) FROM object_versions')" 0
    assert_eq "$(sql "$TPM_STORE_PATH" 'SELECT count(*) FROM objects')" 0
    assert_eq "$(sql "$TPM_STORE_PATH" 'PRAGMA foreign_key_check')" ""
}

test_store_tables_and_columns() {
    init_vtpm
    tables=$(sql "$TPM_STORE_PATH" "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name" | tr '\n' ' ')
    for t in meta objects object_versions events; do
        assert_contains " $tables" " $t "
    done
    cols=$(sql "$TPM_STORE_PATH" "SELECT name FROM pragma_table_info('objects')" | tr '\n' ' ')
    for c in id path kind status algorithm scheme usage parent_id version persistent_handle metadata created_at updated_at; do
        assert_contains " $cols" " $c " "objects column $c"
    done
    cols=$(sql "$TPM_STORE_PATH" "SELECT name FROM pragma_table_info('object_versions')" | tr '\n' ' ')
    for c in object_id version tpm_public tpm_private tpm_name created_at; do
        assert_contains " $cols" " $c " "object_versions column $c"
    done
    cols=$(sql "$TPM_STORE_PATH" "SELECT name FROM pragma_table_info('events')" | tr '\n' ' ')
    for c in id at actor action object_id object_path outcome details; do
        assert_contains " $cols" " $c " "events column $c"
    done
    # path is unique
    uniq=$(sql "$TPM_STORE_PATH" "SELECT il.name FROM pragma_index_list('objects') il, pragma_index_info(il.name) ii WHERE il.\"unique\" = 1 AND ii.name = 'path'")
    [ -n "$uniq" ] || fail "objects.path is not unique"
    # the workspace metadata
    meta=$(sql "$TPM_STORE_PATH" "SELECT key FROM meta ORDER BY key" | tr '\n' ' ')
    for k in workspace_id backend srk_name; do
        assert_contains " $meta" " $k "
    done
    assert_eq "$(sql "$TPM_STORE_PATH" "SELECT value FROM meta WHERE key = 'workspace_id'")" \
        "$(citadel tpm --json workspace info | json - 'd["workspace_id"]')"
    assert_eq "$(sql "$TPM_STORE_PATH" "SELECT value FROM meta WHERE key = 'backend'")" vtpm
}

test_keys_stored_as_wrapped_blobs() {
    init_vtpm
    citadel tpm key create k >/dev/null
    citadel tpm key rotate k >/dev/null
    assert_eq "$(sql "$TPM_STORE_PATH" "SELECT path || ' ' || kind || ' ' || status || ' ' || algorithm || ' ' || scheme || ' ' || usage || ' ' || version FROM objects")" \
        "k key active ecc-p256 ecdsa sign 2"
    assert_eq "$(sql "$TPM_STORE_PATH" "SELECT group_concat(version) FROM (SELECT version FROM object_versions ORDER BY version)")" "1,2"
    # the TPM name of each version is what key show reports
    assert_eq "$(sql "$TPM_STORE_PATH" "SELECT lower(hex(tpm_name)) FROM object_versions ORDER BY version DESC LIMIT 1")" \
        "$(citadel tpm --json key show k | json - 'd["tpm_name"]')"
    # no clear private key anywhere in the file
    ! grep -aq "PRIVATE KEY" "$TPM_STORE_PATH" || fail "the store contains a PEM private key"
}

# Each line of the list below is "command expectation" with '|' for spaces inside each half.
test_every_change_writes_an_event() {
    init_vtpm
    n=$(events)
    assert_eq "$n" 1 "events after init"
    assert_eq "$(last_event)" "workspace.init - ok"
    echo x >m
    while read -r action expect; do
        action=${action//|/ }
        expect=${expect//|/ }
        # shellcheck disable=SC2086
        citadel tpm $action >/dev/null
        n=$((n + 1))
        assert_eq "$(events)" "$n" "events after '$action'"
        assert_eq "$(last_event)" "$expect" "the event of '$action'"
    done <<'EOF'
key|create|a key.create|a|ok
key|create|st|--usage|storage key.create|st|ok
key|create|st/c|--parent|st key.create|st/c|ok
key|rotate|a key.rotate|a|ok
object|rename|a|b object.rename|b|ok
object|retire|b object.retire|b|ok
object|activate|b object.activate|b|ok
key|create|p|--persist key.create|p|ok
key|delete|p object.delete|p|ok
EOF
    # export, then delete with --force: one event per deleted object
    citadel tpm workspace export --output ex.json >/dev/null
    assert_eq "$(events)" "$n" "export is not a change"
    citadel tpm key delete st --force >/dev/null
    n=$((n + 2))
    assert_eq "$(events)" "$n" "events after deleting st and st/c"
    citadel tpm key delete b >/dev/null
    n=$((n + 1))
    citadel tpm workspace import --input ex.json >/dev/null
    n=$((n + 3)) # b, st, st/c
    assert_eq "$(events)" "$n" "events after importing 3 objects"
    assert_eq "$(last_event | cut -d' ' -f1)" object.import
    # reads, signatures, plans and failures change nothing and log nothing
    citadel tpm key sign b --input m --output s.sig >/dev/null
    citadel tpm key verify b --input m --signature s.sig >/dev/null
    citadel tpm key list >/dev/null
    citadel tpm key show b >/dev/null
    citadel tpm status >/dev/null
    citadel tpm doctor >/dev/null
    citadel tpm --plan key create c >/dev/null
    citadel tpm --plan key rotate b >/dev/null
    citadel tpm --plan key delete b >/dev/null
    citadel tpm key create b >/dev/null 2>&1 || true
    citadel tpm key show nosuch >/dev/null 2>&1 || true
    assert_eq "$(events)" "$n" "events after reads, plans and failures"
    # the log in the store is what `log show` shows
    assert_eq "$(citadel tpm --json log show --limit 1000 | json - 'd["count"]')" "$n"
    # the actor is the user who ran the command
    assert_eq "$(sql "$TPM_STORE_PATH" 'SELECT DISTINCT actor FROM events')" "$(id -un)"
}

test_file_modes() {
    umask 000 # even with a permissive umask
    citadel tpm --store-path "$T/ws/sub/store.db" init >/dev/null
    export TPM_STORE_PATH="$T/ws/sub/store.db"
    assert_mode "$T/ws/sub/store.db" 600
    assert_mode "$T/ws/sub/store.db.tpmstate" 600
    assert_mode "$T/ws/sub/store.db.tpmstate.lock" 600
    assert_mode "$T/ws/sub" 700
    citadel tpm key create k >/dev/null
    echo x >m
    citadel tpm key sign k --input m --output m.sig >/dev/null
    # after changes (the state file is rewritten by every TPM command) the modes stay
    assert_mode "$T/ws/sub/store.db" 600
    assert_mode "$T/ws/sub/store.db.tpmstate" 600
    for f in "$T/ws/sub/store.db-wal" "$T/ws/sub/store.db-shm"; do
        [ ! -e "$f" ] || assert_mode "$f" 600
    done
    citadel tpm workspace export --output ex.json >/dev/null
    assert_mode ex.json 600
    citadel tpm debug --output bundle.json >/dev/null
    assert_mode bundle.json 600
    # the debug bundle never carries key material
    ! grep -q "tpm_private" bundle.json || fail "the debug bundle contains wrapped private blobs"
    ! grep -q "PRIVATE KEY" bundle.json || fail "the debug bundle contains a private key"
    # doctor notices a store that became readable by others
    chmod 644 "$T/ws/sub/store.db"
    rc=0
    citadel tpm --json doctor >doc.json || rc=$?
    assert_eq "$(json doc.json '[c["status"] for c in d["checks"] if c["check"] == "file permissions"][0] in ("warn", "fail")')" true
    assert_contains "$(json doc.json '[c["detail"] for c in d["checks"] if c["check"] == "file permissions"]')" "0644"
    chmod 600 "$T/ws/sub/store.db"
}

test_default_store_xdg_data_home() {
    unset TPM_STORE_PATH
    export XDG_DATA_HOME="$T/xdg" HOME="$T/home"
    citadel tpm --json init >init.json
    assert_eq "$(json init.json 'd["workspace"]')" "$T/xdg/citadel/store.db"
    assert_file "$T/xdg/citadel/store.db"
    assert_file "$T/xdg/citadel/store.db.tpmstate"
    assert_mode "$T/xdg/citadel" 700
    assert_no_file "$T/home/.local"
    # later commands find it without any option
    citadel tpm key create k >/dev/null
    assert_eq "$(citadel tpm --json workspace info | json - 'd["store"]')" "$T/xdg/citadel/store.db"
    assert_eq "$(sql "$T/xdg/citadel/store.db" "SELECT path FROM objects")" k
}

test_default_store_home() {
    unset TPM_STORE_PATH XDG_DATA_HOME
    export HOME="$T/home"
    citadel tpm --json init >init.json
    assert_eq "$(json init.json 'd["workspace"]')" "$T/home/.local/share/citadel/store.db"
    assert_file "$T/home/.local/share/citadel/store.db"
    assert_file "$T/home/.local/share/citadel/store.db.tpmstate"
    assert_mode "$T/home/.local/share/citadel" 700
    citadel tpm key create k >/dev/null
    assert_eq "$(citadel tpm --json key show k | json - 'd["path"]')" k
    # an empty XDG_DATA_HOME counts as unset
    XDG_DATA_HOME='' citadel tpm key show k >/dev/null
}

test_env_backend_mock() {
    export TPM_BACKEND=mock
    assert_eq "$(citadel tpm --json status | json - 'd["backend"]')" mock
    echo x >m
    printf 'key create a\nkey sign a --input m --output m.sig\nkey verify a --input m --signature m.sig\nkey export-pub a --output a.pem\n' |
        citadel tpm batch >/dev/null
    assert_eq "$(openssl dgst -sha256 -verify a.pem -signature m.sig m)" "Verified OK"
    assert_no_file "$TPM_STORE_PATH"
    assert_no_file "$TPM_STORE_PATH.tpmstate"
    # a vtpm workspace next to it is not touched by mock commands
    citadel tpm --backend vtpm init >/dev/null
    citadel tpm --backend vtpm key create real >/dev/null
    h=$(sha256sum <"$TPM_STORE_PATH")
    hs=$(sha256sum <"$TPM_STORE_PATH.tpmstate")
    assert_eq "$(citadel tpm --json key list | json - 'd["count"]')" 0
    citadel tpm key create mockkey >/dev/null
    assert_eq "$(sha256sum <"$TPM_STORE_PATH")" "$h"
    assert_eq "$(sha256sum <"$TPM_STORE_PATH.tpmstate")" "$hs"
    # --backend beats the environment
    assert_eq "$(citadel tpm --backend vtpm --json key list | json - '[k["path"] for k in d.get("keys", d.get("objects", []))]')" '["real"]'
    unset TPM_BACKEND
    assert_eq "$(citadel tpm --json status | json - 'd["backend"]')" vtpm
}

test_store_path_option_overrides_env() {
    export TPM_STORE_PATH="$T/env.db"
    citadel tpm --store-path "$T/flag.db" init >/dev/null
    assert_file "$T/flag.db"
    assert_no_file "$T/env.db"
    citadel tpm --store-path "$T/flag.db" key create only-in-flag >/dev/null
    expect_fail 4 TPM0013 citadel tpm key show only-in-flag
    assert_no_file "$T/env.db"
    citadel tpm init >/dev/null
    citadel tpm key create only-in-env >/dev/null
    assert_eq "$(sql "$T/flag.db" 'SELECT path FROM objects')" only-in-flag
    assert_eq "$(sql "$T/env.db" 'SELECT path FROM objects')" only-in-env
    # the two workspaces have separate TPMs
    assert_ne "$(sql "$T/flag.db" "SELECT value FROM meta WHERE key = 'srk_name'")" \
        "$(sql "$T/env.db" "SELECT value FROM meta WHERE key = 'srk_name'")"
    # relative --store-path works from the current directory
    mkdir sub
    (cd sub && citadel tpm --store-path rel.db init >/dev/null)
    assert_file sub/rel.db
    (cd sub && citadel tpm --store-path rel.db key list >/dev/null)
}
