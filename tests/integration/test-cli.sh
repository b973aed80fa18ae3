# SPDX-License-Identifier: Apache-2.0
# The command line as a user sees it: output formats, --plan, --help, explain, the error
# format, the key lifecycle, storage parents, persistent keys, export/import, status/doctor
# and the mock backend.

# ---- helpers (local to this file) ----

# jrun ARGS...: `citadel tpm --json ARGS`, must succeed and carry schema_version 1; the
# document is left in $J (a file) and printed nowhere.
jrun() {
    J="$T/.j.$RANDOM.json"
    citadel tpm --json "$@" >"$J" || fail "'citadel tpm --json $*' failed"
    [ "$(json "$J" 'd.get("schema_version")')" == 1 ] || fail "'--json $*': schema_version is not 1: $(head -c 500 "$J")"
}
# jq_ EXPR: evaluate EXPR on the last jrun document.
jq_() { json "$J" "$1"; }

# yrun ARGS...: `citadel tpm --format yaml ARGS`, must succeed and parse as YAML with
# schema_version 1. The YAML is left in $Y.
yrun() {
    Y="$T/.y.$RANDOM.yaml"
    citadel tpm --format yaml "$@" >"$Y" || fail "'citadel tpm --format yaml $*' failed"
    yaml_ok <"$Y" || fail "'--format yaml $*' is not valid YAML with schema_version: $(head -c 500 "$Y")"
}
# yq_ EXPR: evaluate EXPR on the last yrun document (as `d`).
yq_() {
    python3 -c 'import sys, yaml, json
d = yaml.safe_load(open(sys.argv[1]))
v = eval(sys.argv[2], {"d": d})
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$Y" "$1"
}

# same_doc: the last JSON and YAML documents are the same tree.
same_doc() {
    python3 -c 'import sys, json, yaml
j = json.load(open(sys.argv[1])); y = yaml.safe_load(open(sys.argv[2]))
assert j == y, "JSON and YAML differ:\n%r\n%r" % (j, y)' "$J" "$Y" || fail "JSON and YAML output of '$*' differ"
}

# both ARGS...: a read-only command; JSON and YAML must parse and hold the same tree.
both() {
    jrun "$@"
    yrun "$@"
    same_doc "$@"
}

# ejson EXPR: evaluate EXPR on the JSON error document a failed --json command printed on
# stderr (left in $ERR by expect_fail / expect_fail_json).
ejson() {
    local doc=$ERR
    [ -n "$doc" ] || doc=$OUT
    printf '%s' "$doc" | json - "$1"
}

# A snapshot of everything a mutating command could change in the store.
snapshot() {
    citadel tpm --json object list
    citadel tpm --json log show --limit 100000 | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'
    local p
    for p in $(citadel tpm --json object list | python3 -c 'import json,sys; [print(o["path"]) for o in json.load(sys.stdin)["objects"]]'); do
        citadel tpm --json key show "$p" 2>/dev/null || true
    done
}

# expect_fail_json EXIT CODE cmd...: like expect_fail, for --json commands, whose error is a
# JSON document rather than "error[CODE]".
expect_fail_json() {
    local want_exit=$1 want_code=$2 rc=0
    shift 2
    OUT=$("$@" 2>"$T/.err") || rc=$?
    ERR=$(cat "$T/.err")
    [ "$rc" == "$want_exit" ] || fail "'$*' exited $rc, expected $want_exit; stderr: $ERR"
    # errors go to stderr, in JSON too; stdout stays empty
    assert_eq "$OUT" "" "stdout of failing '$*'"
    assert_eq "$(ejson 'd["error"]["code"]')" "$want_code" "error code of '$*'"
}

# ---- output formats ----

test_every_command_json_and_yaml() {
    jrun init
    assert_eq "$(jq_ 'd["backend"]')" vtpm
    assert_eq "$(jq_ 'd["workspace"]')" "$TPM_STORE_PATH"
    # a second, independent workspace initialised with YAML output
    yrun --store-path "$T/other.db" init
    assert_eq "$(yq_ 'd["workspace"]')" "$T/other.db"
    assert_file "$T/other.db"

    echo "payload" >msg
    jrun key create signing/a
    assert_eq "$(jq_ 'd["path"]')" signing/a
    assert_eq "$(jq_ 'd["version"]')" 1
    yrun key create signing/b --algorithm ecc-p384
    assert_eq "$(yq_ 'd["path"]')" signing/b
    assert_eq "$(yq_ 'd["algorithm"]')" ecc-p384

    jrun key sign signing/a --input msg --output a.sig
    assert_eq "$(jq_ 'd["output"]')" a.sig
    assert_file a.sig
    yrun key sign signing/b --input msg --output b.sig
    assert_eq "$(yq_ 'd["digest_algorithm"]')" sha384
    assert_file b.sig
    # without --output the signature is in the result and matches a verify
    jrun key sign signing/a --input msg
    jq_ 'd["signature_base64"]' | base64 -d >a2.sig
    citadel tpm key verify signing/a --input msg --signature a2.sig >/dev/null

    both status
    both doctor
    both capabilities
    both key list
    assert_eq "$(jq_ '[k["path"] for k in d["keys"]]')" '["signing/a", "signing/b"]'
    both key show signing/a
    both key verify signing/a --input msg --signature a.sig
    assert_eq "$(jq_ 'd["valid"]')" true
    both key export-pub signing/a
    assert_contains "$(jq_ 'd["public_key"]')" "BEGIN PUBLIC KEY"
    jrun key export-pub signing/a --output a.pem
    yrun key export-pub signing/b --output b.pem
    openssl dgst -sha256 -verify a.pem -signature a.sig msg >/dev/null
    openssl dgst -sha384 -verify b.pem -signature b.sig msg >/dev/null

    jrun key rotate signing/a
    assert_eq "$(jq_ 'd["version"]')" 2
    yrun key rotate signing/b
    assert_eq "$(yq_ 'd["version"]')" 2

    jrun key create store/p --usage storage
    yrun key create store/p/c1 --parent store/p
    both object list
    both object list --kind key
    both object tree
    assert_contains "$(jq_ 'd["tree"]')" '"signing"'
    both object dependents store/p
    assert_eq "$(jq_ 'd["dependents"]')" '["store/p/c1"]'

    jrun object rename signing/a signing/a2
    assert_eq "$(jq_ 'd["to"]')" signing/a2
    yrun object rename signing/a2 signing/a3
    assert_eq "$(yq_ 'd["to"]')" signing/a3
    jrun object retire signing/a3
    assert_eq "$(jq_ 'd["status"]')" retired
    yrun object activate signing/a3
    assert_eq "$(yq_ 'd["status"]')" active
    yrun object retire signing/b
    jrun object activate signing/b
    assert_eq "$(jq_ 'd["status"]')" active

    # workspace info: see test_workspace_info_output (the output schema_version is checked there)
    citadel tpm --format yaml workspace info | python3 -c 'import sys, yaml; assert isinstance(yaml.safe_load(sys.stdin), dict)'
    jrun workspace export --output ex1.json
    assert_eq "$(jq_ 'd["objects"]')" 4
    yrun workspace export --output ex2.json
    assert_file ex1.json
    assert_file ex2.json

    jrun key delete signing/a3
    assert_eq "$(jq_ 'd["deleted"]')" '["signing/a3"]'
    yrun key delete signing/b
    assert_eq "$(yq_ 'd["deleted"]')" '["signing/b"]'
    jrun object delete store/p --force
    assert_eq "$(jq_ 'sorted(d["deleted"])')" '["store/p", "store/p/c1"]'
    assert_eq "$(citadel tpm --json object list | json - 'd["count"]')" 0
    jrun workspace import --input ex1.json
    assert_eq "$(jq_ 'd["imported"]')" 4
    yrun key delete store/p --force
    assert_eq "$(yq_ 'sorted(d["deleted"])')" '["store/p", "store/p/c1"]'
    citadel tpm key delete signing/a3 >/dev/null
    citadel tpm key delete signing/b >/dev/null
    yrun workspace import --input ex2.json
    assert_eq "$(yq_ 'd["imported"]')" 4
    assert_eq "$(citadel tpm --json object list | json - 'sorted(o["path"] for o in d["objects"])')" \
        '["signing/a3", "signing/b", "store/p", "store/p/c1"]'
    citadel tpm key sign store/p/c1 --input msg >/dev/null

    both log show
    both log show --object signing/a3 --limit 5
    both log show --action key.create

    jrun debug --output bundle1.json
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' bundle1.json
    yrun debug --output bundle2.json
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' bundle2.json

    both explain
    both explain pcr
    both explain TPM0004
    assert_eq "$(jq_ 'd["name"]')" OBJECT_NOT_FOUND
    for sh in bash zsh fish; do
        both completions "$sh"
        assert_contains "$(jq_ 'd["script"]')" citadel
    done
    doctor_consistent
}

test_workspace_info_output() {
    init_vtpm
    citadel tpm key create a >/dev/null
    citadel tpm key create b >/dev/null
    citadel tpm object retire b >/dev/null
    # the document's schema_version is the output schema (1), not the store's schema version
    both workspace info
    assert_eq "$(jq_ '[d["store"], d["tpm_state"], d["backend"], d["objects"]["total"], d["objects"]["retired"]]')" \
        "[\"$TPM_STORE_PATH\", \"$TPM_STORE_PATH.tpmstate\", \"vtpm\", 2, 1]"
    assert_eq "$(jq_ 'd["workspace_id"]')" "$(citadel tpm --json status | json - 'd["workspace"]["id"]')"
}

test_completions_shells() {
    citadel tpm completions bash >c.bash
    bash -n c.bash || fail "bash completion script has syntax errors"
    assert_contains "$(cat c.bash)" citadel
    # the script actually completes: nouns, then verbs of a noun
    out=$(bash -c 'source ./c.bash
        COMP_WORDS=(citadel tpm ke); COMP_CWORD=2; _citadel; echo "${COMPREPLY[*]}"
        COMP_WORDS=(citadel tpm key ro); COMP_CWORD=3; _citadel; echo "${COMPREPLY[*]}"')
    assert_contains "$out" key
    assert_contains "$out" rotate
    for sh in zsh fish; do
        out=$(citadel tpm completions "$sh")
        [ -n "$out" ] || fail "$sh completions are empty"
        assert_contains "$out" citadel
    done
    expect_fail 2 TPM0002 citadel tpm completions tcsh
    [ -z "$OUT" ] || fail "unknown shell printed a script: $OUT"
}

# ---- --plan ----

test_plan_init_creates_nothing() {
    jrun --plan init
    assert_eq "$(jq_ 'd["plan"]')" true
    [ "$(jq_ 'len(d["tpm_operations"])')" -gt 0 ] || fail "init plan lists no TPM operations"
    assert_no_file "$TPM_STORE_PATH"
    assert_no_file "$TPM_STORE_PATH.tpmstate"
    assert_eq "$(find "$T" -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%f ')" "" "files created by --plan init"
    # and in a directory that does not exist yet: not even the directory appears
    jrun --plan --store-path "$T/newdir/s.db" init
    assert_no_file "$T/newdir"
    # a real init afterwards works
    citadel tpm init >/dev/null
    assert_file "$TPM_STORE_PATH"
}

test_plan_mutations_change_nothing() {
    init_vtpm
    echo data >m
    citadel tpm key create k >/dev/null
    citadel tpm key create p --persist >/dev/null
    citadel tpm key create st --usage storage >/dev/null
    citadel tpm key create st/c --parent st >/dev/null
    citadel tpm key sign k --input m --output k.sig >/dev/null
    before=$(snapshot)
    state_before=$(sha256sum <"$TPM_STORE_PATH.tpmstate")

    jrun --plan key create new/key
    assert_eq "$(jq_ 'd["plan"]')" true
    [ "$(jq_ 'len(d["tpm_operations"])')" -gt 0 ] || fail "key create plan lists no TPM operations"
    jrun --plan key create new/pkey --persist --algorithm rsa-2048
    assert_contains "$(jq_ 'd["tpm_operations"]')" EvictControl
    jrun --plan key rotate k
    assert_eq "$(jq_ 'd["plan"]')" true
    [ "$(jq_ 'len(d["tpm_operations"])')" -gt 0 ] || fail "key rotate plan lists no TPM operations"
    jrun --plan key delete k
    assert_eq "$(jq_ 'd["plan"]')" true
    jrun --plan key delete p
    [ "$(jq_ 'len(d["tpm_operations"])')" -gt 0 ] || fail "deleting a persistent key must plan an evict"
    assert_contains "$(jq_ 'd["tpm_operations"]')" EvictControl
    jrun --plan key delete st --force
    assert_eq "$(jq_ 'sorted(d.get("would_delete", []))')" '["st", "st/c"]'
    jrun --plan object rename k renamed/k
    assert_eq "$(jq_ 'd["plan"]')" true
    jrun --plan object retire k
    jrun --plan object delete k
    # text output of a plan too
    out=$(citadel tpm --plan key create other)
    assert_contains "$out" "plan"

    after=$(snapshot)
    assert_eq "$after" "$before" "store changed by --plan"
    assert_eq "$(sha256sum <"$TPM_STORE_PATH.tpmstate")" "$state_before" "--plan touched the TPM state"
    # the keys still work exactly as before
    citadel tpm key sign k --input m --output k2.sig >/dev/null
    citadel tpm key verify k --input m --signature k2.sig >/dev/null
    expect_fail 3 TPM0004 citadel tpm key show renamed/k
    expect_fail 3 TPM0004 citadel tpm key show new/key
    # a plan still validates its input
    expect_fail 3 TPM0005 citadel tpm --plan key create k
    expect_fail 3 TPM0003 citadel tpm --plan key create Bad/Path
    expect_fail 3 TPM0004 citadel tpm --plan key rotate nosuch
    expect_fail 3 TPM0008 citadel tpm --plan key delete st
    assert_eq "$(snapshot)" "$before" "store changed by a failed --plan"
    doctor_consistent
}

# ---- --help ----

test_help_on_every_noun_and_verb() {
    out=$(citadel tpm --help)
    assert_contains "$out" "usage:"
    # nouns and their verbs, as the top-level help lists them
    nouns=$(printf '%s\n' "$out" | awk '/^Commands:/{c=1; next} /^$/{c=0} c && /^  [a-z]/{print $1}')
    [ "$(printf '%s\n' "$nouns" | wc -l)" -ge 12 ] || fail "too few commands in --help: $nouns"
    for want in init status doctor capabilities key object workspace log debug explain completions batch; do
        printf '%s\n' "$nouns" | grep -qx "$want" || fail "--help does not list $want"
    done
    checked=0
    for n in $nouns; do
        h=$(citadel tpm "$n" --help) || fail "'$n --help' exited non-zero"
        assert_contains "$h" "usage:"
        verbs=$(printf '%s\n' "$out" | awk -v n="$n" '$1 == n {getline nx; if (nx ~ /^      +[a-z][a-z|-]*$/) {gsub(/ /, "", nx); gsub(/\|/, " ", nx); print nx}}')
        for v in $verbs; do
            vh=$(citadel tpm "$n" "$v" --help) || fail "'$n $v --help' exited non-zero"
            assert_contains "$vh" "usage:"
            assert_contains "$vh" "citadel tpm $n $v"
            checked=$((checked + 1))
        done
    done
    [ "$checked" -ge 19 ] || fail "only $checked verbs found in --help"
    # the verbs named in the brief, explicitly
    for nv in "key create" "key list" "key show" "key sign" "key verify" "key delete" "key export-pub" \
        "key rotate" "object list" "object tree" "object dependents" "object rename" "object retire" \
        "object activate" "object delete" "workspace info" "workspace export" "workspace import" "log show"; do
        # shellcheck disable=SC2086
        h=$(citadel tpm $nv --help) || fail "'$nv --help' exited non-zero"
        assert_contains "$h" "usage:"
    done
    # --help never needs (or creates) a workspace
    assert_no_file "$TPM_STORE_PATH"
    # unknown nouns and verbs are usage errors
    expect_fail 2 TPM0002 citadel tpm frobnicate
    expect_fail 2 TPM0002 citadel tpm key frobnicate
    expect_fail 2 TPM0002 citadel tpm key create a --no-such-option
    expect_fail 2 TPM0002 citadel tpm key sign
}

# ---- explain ----

test_explain_codes_and_topics() {
    out=$(citadel tpm explain TPM0004)
    assert_contains "$out" OBJECT_NOT_FOUND
    assert_contains "$out" "citadel tpm object list"
    out=$(citadel tpm explain OBJECT_NOT_FOUND)
    assert_contains "$out" TPM0004
    out=$(citadel tpm explain pcr)
    assert_contains "$out" "Platform Configuration Registers"
    out=$(citadel tpm explain)
    assert_contains "$out" pcr
    assert_contains "$out" dictionary-attack
    expect_fail 2 TPM0038 citadel tpm explain nosuch
    assert_contains "$ERR" nosuch
    expect_fail 2 TPM0038 citadel tpm explain TPM9999
    # every code in the table explains itself, with its name, the documented exit status and
    # at least one next step (one python process drives the loop: it is much faster)
    root=$(cd "$(dirname "$CITADEL_BIN")/.." && pwd)
    python3 - "$CITADEL_BIN" "$root/src/lib/diag/codes.def" <<'PY' || fail "explain of the error codes is wrong"
import json, re, subprocess, sys
exits = {"internal": 1, "usage": 2, "object": 3, "store": 4, "backend": 5, "transport": 6,
         "policy": 7, "nv": 8, "attestation": 9, "repair": 10, "audit": 11, "api": 12,
         "ca": 13, "enroll": 14}
codes = re.findall(r"^CIT_CODE\((\d+),\s*([A-Z_0-9]+),\s*([a-z]+),", open(sys.argv[2]).read(), re.M)
assert len(codes) >= 43, "could not read the code table"
bad = []
for num, name, cls in codes:
    code = "TPM%04d" % int(num)
    for arg in (code, name):
        p = subprocess.run([sys.argv[1], "tpm", "--json", "explain", arg], capture_output=True, text=True)
        if p.returncode != 0:
            bad.append("%s: exit %d %s" % (arg, p.returncode, p.stderr[:200])); continue
        d = json.loads(p.stdout)
        if (d.get("schema_version"), d.get("code"), d.get("name"), d.get("class")) != (1, code, name, cls):
            bad.append("%s: %r" % (arg, d))
        if d.get("exit_status") != exits[cls]:
            bad.append("%s: exit_status %r, documented %d" % (arg, d.get("exit_status"), exits[cls]))
        if not d.get("next_steps"):
            bad.append("%s: no next steps" % arg)
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
    # topics from the list all explain
    for topic in $(citadel tpm --json explain | python3 -c 'import json,sys
d = json.load(sys.stdin)
ts = d.get("topics", [])
print(" ".join(t["topic"] if isinstance(t, dict) else str(t) for t in ts))'); do
        citadel tpm explain "$topic" >/dev/null || fail "explain $topic failed"
    done
}

# ---- the error format ----

test_error_format_text() {
    init_vtpm
    rc=0
    out=$(citadel tpm key show signing/missing 2>err) || rc=$?
    assert_eq "$rc" 3 "exit status"
    assert_eq "$out" "" "stdout on error"
    expected='error[TPM0004]: object not found: signing/missing
causes:
  - no object with path '"'"'signing/missing'"'"' exists in the workspace
  path signing/missing
next steps:
  1. run `citadel tpm object list` to see all objects
  2. run `citadel tpm key list` to see available keys'
    assert_eq "$(cat err)" "$expected"
}

test_error_format_json() {
    init_vtpm
    expect_fail_json 3 TPM0004 citadel tpm --json key show signing/missing
    assert_eq "$(ejson 'd["schema_version"]')" 1
    assert_eq "$(ejson 'd["error"]["code"]')" TPM0004
    assert_eq "$(ejson 'd["error"]["name"]')" OBJECT_NOT_FOUND
    assert_eq "$(ejson 'd["error"]["class"]')" object
    assert_eq "$(ejson 'd["error"]["message"]')" "object not found: signing/missing"
    assert_eq "$(ejson 'd["error"]["causes"]')" "[\"no object with path 'signing/missing' exists in the workspace\"]"
    assert_eq "$(ejson 'd["error"]["context"]["path"]')" signing/missing
    assert_eq "$(ejson 'd["error"]["next_steps"]')" '["run `citadel tpm object list` to see all objects", "run `citadel tpm key list` to see available keys"]'
    assert_eq "$(ejson 'd["error"]["exit_status"]')" 3
    # YAML errors are structured the same way
    rc=0
    citadel tpm --format yaml key show signing/missing >yout 2>yerr || rc=$?
    assert_eq "$rc" 3
    cat yout yerr | yaml_ok
    assert_eq "$(cat yout yerr | python3 -c 'import yaml,sys; print(yaml.safe_load(sys.stdin)["error"]["code"])')" TPM0004
}

# ---- key lifecycle ----

test_key_algorithms_sign_and_verify() {
    init_vtpm
    head -c 10000 /dev/urandom >msg
    # algorithm scheme openssl-digest openssl-extra...
    while read -r path alg scheme dgst; do
        args=(key create "$path" --algorithm "$alg")
        [ "$scheme" == - ] || args+=(--scheme "$scheme")
        jrun "${args[@]}"
        assert_eq "$(jq_ 'd["algorithm"]')" "$alg"
        [ "$scheme" == - ] || assert_eq "$(jq_ 'd["scheme"]')" "$scheme"
        jrun key sign "$path" --input msg --output "$path.sig"
        assert_eq "$(jq_ 'd["digest_algorithm"]')" "$dgst"
        jrun key verify "$path" --input msg --signature "$path.sig"
        assert_eq "$(jq_ 'd["valid"]')" true "$alg verify"
        assert_eq "$(jq_ 'd["version"]')" 1
        citadel tpm key export-pub "$path" --output "$path.pem" >/dev/null
        extra=()
        [ "$scheme" == rsapss ] && extra=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-2)
        out=$(openssl dgst "-$dgst" "${extra[@]}" -verify "$path.pem" -signature "$path.sig" msg)
        assert_eq "$out" "Verified OK" "openssl verify $alg/$scheme"
        # the key type is what was asked for
        txt=$(openssl pkey -pubin -in "$path.pem" -noout -text)
        case $alg in
        ecc-p256) assert_contains "$txt" "P-256" ;;
        ecc-p384) assert_contains "$txt" "P-384" ;;
        rsa-2048) assert_contains "$txt" "2048 bit" ;;
        rsa-3072) assert_contains "$txt" "3072 bit" ;;
        esac
    done <<'EOF'
k256 ecc-p256 - sha256
k384 ecc-p384 - sha384
r2048 rsa-2048 - sha256
r3072 rsa-3072 - sha384
pss rsa-2048 rsapss sha256
EOF
    # ECDSA encodings: raw r||s (64 bytes for P-256) verifies with --encoding raw only; a
    # precomputed digest (raw or hex) signs the same message
    citadel tpm key sign k256 --input msg --encoding raw --output raw.sig >/dev/null
    assert_eq "$(stat -c %s raw.sig)" 64
    citadel tpm key verify k256 --input msg --signature raw.sig --encoding raw >/dev/null
    expect_fail 3 TPM0033 citadel tpm key verify k256 --input msg --signature raw.sig
    openssl dgst -sha256 -binary msg >digest.bin
    citadel tpm key sign k256 --input digest.bin --input-is-digest --output dg.sig >/dev/null
    assert_eq "$(openssl dgst -sha256 -verify k256.pem -signature dg.sig msg)" "Verified OK"
    sha256sum msg | cut -d' ' -f1 >digest.hex
    citadel tpm key sign k256 --input digest.hex --input-is-digest --output dh.sig >/dev/null
    assert_eq "$(openssl dgst -sha256 -verify k256.pem -signature dh.sig msg)" "Verified OK"
    head -c 20 /dev/urandom >short.bin
    expect_fail 2 TPM0043 citadel tpm key sign k256 --input short.bin --input-is-digest
    # a scheme that does not fit the algorithm, or an unknown algorithm, creates nothing
    expect_fail 2 TPM0002 citadel tpm key create bad1 --algorithm ecc-p256 --scheme rsapss
    expect_fail 5 TPM0023 citadel tpm key create bad2 --algorithm ed448
    expect_fail 3 TPM0004 citadel tpm key show bad1
    expect_fail 3 TPM0004 citadel tpm key show bad2
    doctor_consistent
}

test_verify_rejects_wrong_input() {
    init_vtpm
    echo "original" >msg
    echo "other" >other
    citadel tpm key create k >/dev/null
    citadel tpm key create k2 >/dev/null
    citadel tpm key sign k --input msg --output msg.sig >/dev/null
    expect_fail 3 TPM0033 citadel tpm key verify k --input other --signature msg.sig
    assert_contains "$ERR" "k"
    # a signature of another key
    expect_fail 3 TPM0033 citadel tpm key verify k2 --input msg --signature msg.sig
    # a damaged signature
    python3 -c 'import sys; b = bytearray(open("msg.sig","rb").read()); b[-3] ^= 0x55; open("bad.sig","wb").write(b)'
    expect_fail 3 TPM0033 citadel tpm key verify k --input msg --signature bad.sig
    expect_fail_json 3 TPM0033 citadel tpm --json key verify k --input other --signature msg.sig
    assert_eq "$(ejson 'd["error"]["code"]')" TPM0033
    # and the right one still verifies
    citadel tpm key verify k --input msg --signature msg.sig >/dev/null
}

test_rotate_keeps_old_versions_verifiable() {
    init_vtpm
    echo "release 1" >m
    citadel tpm key create rel >/dev/null
    citadel tpm key export-pub rel --output v1.pem >/dev/null
    citadel tpm key sign rel --input m --output v1.sig >/dev/null
    jrun key rotate rel
    assert_eq "$(jq_ 'd["previous_version"]')" 1
    assert_eq "$(jq_ 'd["version"]')" 2
    citadel tpm key sign rel --input m --output v2.sig >/dev/null
    citadel tpm key export-pub rel --output v2.pem >/dev/null
    ! cmp -s v1.pem v2.pem || fail "rotation kept the same public key"
    # the new version signs
    assert_eq "$(openssl dgst -sha256 -verify v2.pem -signature v2.sig m)" "Verified OK"
    ! openssl dgst -sha256 -verify v1.pem -signature v2.sig m >/dev/null 2>&1 || fail "v2 signature verifies with v1 key"
    jrun key show rel
    assert_eq "$(jq_ 'd["version"]')" 2
    assert_eq "$(jq_ 'len(d["versions"])')" 2
    assert_eq "$(jq_ 'sorted(v["version"] for v in d["versions"])')" '[1, 2]'
    assert_eq "$(jq_ '[v["version"] for v in d["versions"] if v["current"]]')" '[2]'
    # the old signature still verifies and reports version 1
    jrun key verify rel --input m --signature v1.sig
    assert_eq "$(jq_ 'd["valid"]')" true
    assert_eq "$(jq_ 'd["version"]')" 1
    assert_eq "$(jq_ 'd["current_version"]')" false
    jrun key verify rel --input m --signature v2.sig
    assert_eq "$(jq_ 'd["version"]')" 2
    assert_eq "$(jq_ 'd["current_version"]')" true
    # restricted to a version
    expect_fail 3 TPM0033 citadel tpm key verify rel --input m --signature v1.sig --version 2
    jrun key verify rel --input m --signature v1.sig --version 1
    assert_eq "$(jq_ 'd["version"]')" 1
    # the old public key is still exportable
    citadel tpm key export-pub rel --version 1 --output v1b.pem >/dev/null
    cmp v1.pem v1b.pem || fail "export-pub --version 1 differs from the original public key"
    expect_fail 3 TPM0004 citadel tpm key export-pub rel --version 3
    # the rotation is in the log
    assert_contains "$(citadel tpm --json log show --object rel)" key.rotate
    doctor_consistent
}

test_retire_and_activate() {
    init_vtpm
    echo x >m
    citadel tpm key create k >/dev/null
    citadel tpm key sign k --input m --output before.sig >/dev/null
    jrun object retire k
    assert_eq "$(jq_ 'd["status"]')" retired
    expect_fail 3 TPM0006 citadel tpm key sign k --input m --output s.sig
    assert_no_file s.sig
    assert_contains "$ERR" "citadel tpm object activate k"
    expect_fail 3 TPM0006 citadel tpm key rotate k
    assert_eq "$(citadel tpm --json key list | json - '[k["status"] for k in d.get("keys", d.get("objects", [])) if k["path"] == "k"]')" '["retired"]'
    assert_eq "$(citadel tpm --json status | json - 'd["objects"]["retired"]')" 1
    jrun object activate k
    assert_eq "$(jq_ 'd["status"]')" active
    citadel tpm key sign k --input m --output s.sig >/dev/null
    citadel tpm key verify k --input m --signature s.sig >/dev/null
    assert_eq "$(citadel tpm --json key show k | json - 'd["version"]')" 1
    doctor_consistent
}

test_rename_keeps_history_and_key() {
    init_vtpm
    echo x >m
    citadel tpm key create team/old >/dev/null
    citadel tpm key export-pub team/old --output old.pem >/dev/null
    citadel tpm key sign team/old --input m --output old.sig >/dev/null
    jrun object rename team/old team/new
    assert_eq "$(jq_ 'd["from"]')" team/old
    assert_eq "$(jq_ 'd["to"]')" team/new
    expect_fail 3 TPM0004 citadel tpm key show team/old
    citadel tpm key export-pub team/new --output new.pem >/dev/null
    cmp old.pem new.pem || fail "rename changed the public key"
    citadel tpm key verify team/new --input m --signature old.sig >/dev/null
    citadel tpm key sign team/new --input m --output new.sig >/dev/null
    assert_eq "$(openssl dgst -sha256 -verify old.pem -signature new.sig m)" "Verified OK"
    jrun log show --object team/new
    assert_eq "$(jq_ 'sorted(set(e["action"] for e in d["events"]))')" '["key.create", "object.rename"]'
    # renaming onto an existing path or to an invalid path fails and changes nothing
    citadel tpm key create team/other >/dev/null
    expect_fail 3 TPM0005 citadel tpm object rename team/new team/other
    expect_fail 3 TPM0003 citadel tpm object rename team/new Team/New
    expect_fail 3 TPM0004 citadel tpm object rename team/gone team/x
    citadel tpm key export-pub team/new --output new2.pem >/dev/null
    cmp old.pem new2.pem || fail "a failed rename changed team/new"
    citadel tpm key export-pub team/other --output other.pem >/dev/null
    ! cmp -s old.pem other.pem || fail "team/other was overwritten"
    doctor_consistent
}

test_storage_parent_and_dependents() {
    init_vtpm
    echo x >m
    jrun key create st --usage storage
    assert_eq "$(jq_ 'd["usage"]')" storage
    jrun key create st/child --parent st
    assert_eq "$(jq_ 'd["parent"]')" st
    citadel tpm key sign st/child --input m --output c.sig >/dev/null
    citadel tpm key verify st/child --input m --signature c.sig >/dev/null
    expect_fail 3 TPM0007 citadel tpm key sign st --input m
    jrun object dependents st
    assert_eq "$(jq_ 'd["dependents"]')" '["st/child"]'
    assert_eq "$(jq_ 'd["count"]')" 1
    expect_fail 3 TPM0008 citadel tpm key delete st
    assert_contains "$ERR" "st/child"
    expect_fail_json 3 TPM0008 citadel tpm --json key delete st
    assert_contains "$(ejson 'd["error"]["causes"]')" "st/child"
    # nothing was deleted
    assert_eq "$(citadel tpm --json object list | json - 'sorted(o["path"] for o in d["objects"])')" '["st", "st/child"]'
    citadel tpm key sign st/child --input m >/dev/null
    jrun key delete st --force
    assert_eq "$(jq_ 'sorted(d["deleted"])')" '["st", "st/child"]'
    assert_eq "$(citadel tpm --json object list | json - 'd["count"]')" 0
    expect_fail 3 TPM0004 citadel tpm key show st/child
    doctor_consistent
}

test_rotate_storage_parent_keeps_children_usable() {
    # Rotating a storage key that has dependents must not strand them: either the rotation is
    # refused (TPM0008) or the children keep working. Either way the store stays consistent.
    init_vtpm
    echo x >m
    citadel tpm key create st --usage storage >/dev/null
    citadel tpm key create st/child --parent st >/dev/null
    rc=0
    citadel tpm key rotate st >/dev/null 2>rot.err || rc=$?
    if [ "$rc" != 0 ]; then
        assert_contains "$(cat rot.err)" "error[TPM0008]"
    fi
    citadel tpm key sign st/child --input m --output c.sig >/dev/null 2>sign.err ||
        fail "after 'key rotate st' (exit $rc) the child key can no longer sign: $(cat sign.err)"
    doctor_consistent
}

test_persistent_key() {
    init_vtpm
    echo x >m
    free_before=$(citadel tpm --json doctor | json - '[c["detail"] for c in d["checks"] if c["check"] == "free handles and NV"][0]')
    jrun key create p --persist
    handle=$(jq_ 'd["persistent_handle"]')
    [[ "$handle" =~ ^0x810001[0-9a-f]{2}$ ]] || fail "persistent handle '$handle' is not in 0x81000100-0x810001ff"
    assert_eq "$(citadel tpm --json key list | json - '[k["persistent_handle"] for k in d.get("keys", d.get("objects", [])) if k["path"] == "p"]')" "[\"$handle\"]"
    citadel tpm key sign p --input m --output p.sig >/dev/null
    citadel tpm key export-pub p --output p.pem >/dev/null
    assert_eq "$(openssl dgst -sha256 -verify p.pem -signature p.sig m)" "Verified OK"
    # a second persistent key gets another handle
    jrun key create p2 --persist
    assert_ne "$(jq_ 'd["persistent_handle"]')" "$handle"
    doctor_consistent
    citadel tpm key delete p >/dev/null
    citadel tpm key delete p2 >/dev/null
    d=$(citadel tpm --json doctor)
    assert_eq "$(printf '%s' "$d" | json - 'd["consistent"]')" true
    assert_eq "$(printf '%s' "$d" | json - '[c["status"] for c in d["checks"] if c["check"] == "orphaned handles"]')" '["pass"]'
    # the handles were evicted: the TPM has as much room as before
    assert_eq "$(printf '%s' "$d" | json - '[c["detail"] for c in d["checks"] if c["check"] == "free handles and NV"][0]')" "$free_before"
    # and a new persistent key can take the freed handle again
    jrun key create p3 --persist
    assert_eq "$(jq_ 'd["persistent_handle"]')" "$handle"
    doctor_consistent
}

test_persistent_key_evicted_on_swtpm() {
    start_swtpm
    export TPM_TCTI=$SWTPM_TCTI
    citadel tpm --backend swtpm init >/dev/null
    handles() { tpm2_getcap -T "$SWTPM_TCTI" handles-persistent | tr -d ' -' | sort | tr '\n' ' '; }
    assert_eq "$(handles)" "0x81000002 "
    echo x >m
    jrun key create p --persist
    handle=$(jq_ 'd["persistent_handle"]')
    assert_eq "$(handles)" "0x81000002 $handle "
    citadel tpm key sign p --input m --output p.sig >/dev/null
    citadel tpm key verify p --input m --signature p.sig >/dev/null
    # a rotated persistent key: the handle now holds the new version
    jrun key rotate p
    v2name=$(jq_ 'd["tpm_name"]')
    assert_eq "$(handles)" "0x81000002 $handle "
    assert_eq "$(tpm2_readpublic -T "$SWTPM_TCTI" -c "$handle" | awk '$1 == "name:" {print $2}')" "$v2name"
    citadel tpm key sign p --input m --output p2.sig >/dev/null
    assert_eq "$(citadel tpm --json key verify p --input m --signature p2.sig | json - 'd["version"]')" 2
    citadel tpm key delete p >/dev/null
    assert_eq "$(handles)" "0x81000002 "
    doctor_consistent
}

# ---- workspace export / import ----

test_workspace_export_import_restores_keys() {
    init_vtpm
    echo x >m
    citadel tpm key create a >/dev/null
    citadel tpm key create b --algorithm rsa-2048 >/dev/null
    citadel tpm key rotate a >/dev/null
    citadel tpm key sign a --input m --output a.sig >/dev/null
    citadel tpm key export-pub a --output a.pem >/dev/null
    old_show=$(citadel tpm --json key show a | json - '{k: d[k] for k in ("algorithm", "version", "tpm_name", "fingerprint_sha256", "versions")}')
    jrun workspace export --output backup.json
    assert_eq "$(jq_ 'd["objects"]')" 2
    assert_mode backup.json 600
    # no secret in clear: the export holds only wrapped blobs, but never PEM private keys
    assert_not_contains "$(cat backup.json)" "PRIVATE KEY"
    citadel tpm key delete a >/dev/null
    expect_fail 3 TPM0004 citadel tpm key show a
    # importing with b still present must fail (b exists); import a backup of a only
    python3 -c 'import json
d = json.load(open("backup.json"))
d["objects"] = [o for o in d["objects"] if o["path"] == "a"]
json.dump(d, open("only-a.json", "w"))'
    jrun workspace import --input only-a.json
    assert_eq "$(jq_ 'd["imported"]')" 1
    new_show=$(citadel tpm --json key show a | json - '{k: d[k] for k in ("algorithm", "version", "tpm_name", "fingerprint_sha256", "versions")}')
    # created/updated timestamps may differ; the key material and versions may not
    assert_eq "$(printf '%s' "$new_show" | python3 -c 'import json,sys; d=json.load(sys.stdin); [v.pop("created", None) for v in d["versions"]]; print(json.dumps(d, sort_keys=True))')" \
        "$(printf '%s' "$old_show" | python3 -c 'import json,sys; d=json.load(sys.stdin); [v.pop("created", None) for v in d["versions"]]; print(json.dumps(d, sort_keys=True))')"
    # it signs again with the same key, and the old signature still verifies
    citadel tpm key sign a --input m --output a2.sig >/dev/null
    assert_eq "$(openssl dgst -sha256 -verify a.pem -signature a2.sig m)" "Verified OK"
    citadel tpm key verify a --input m --signature a.sig >/dev/null
    assert_contains "$(citadel tpm --json log show --object a)" object.import
    doctor_consistent
}

test_import_existing_path_imports_nothing() {
    init_vtpm
    echo x >m
    citadel tpm key create a >/dev/null
    citadel tpm key create b >/dev/null
    citadel tpm workspace export --output backup.json >/dev/null
    citadel tpm key delete a >/dev/null
    before=$(snapshot)
    expect_fail 3 TPM0005 citadel tpm workspace import --input backup.json
    text_err=$ERR
    expect_fail_json 3 TPM0005 citadel tpm --json workspace import --input backup.json
    json_err=$ERR
    # nothing was imported: a is still gone, b untouched
    assert_eq "$(snapshot)" "$before"
    expect_fail 3 TPM0004 citadel tpm key show a
    citadel tpm key sign b --input m >/dev/null
    doctor_consistent
    # the error names the path that is in the way
    assert_eq "$(printf '%s' "$json_err" | json - 'd["error"]["context"].get("path")')" b "JSON error context.path"
    assert_eq "$(printf '%s' "$json_err" | json - 'd["error"].get("message")')" "the workspace already has b" "JSON error message"
    assert_eq "$(printf '%s\n' "$text_err" | head -1)" "error[TPM0005]: the workspace already has b"
    assert_contains "$text_err" "  path b"
}

test_restore_lost_store_from_export() {
    # the store is lost but the vTPM state survived: init adopts the existing TPM (same
    # storage key) and the export restores the keys
    citadel tpm --json init >first.json
    echo x >m
    citadel tpm key create signing/release >/dev/null
    citadel tpm key sign signing/release --input m --output m.sig >/dev/null
    citadel tpm key export-pub signing/release --output pub.pem >/dev/null
    citadel tpm workspace export --output backup.json >/dev/null
    rm "$TPM_STORE_PATH"
    jrun init
    assert_eq "$(jq_ 'd["tpm_manufactured"]')" false
    assert_eq "$(jq_ 'd["storage_key_name"]')" "$(json first.json 'd["storage_key_name"]')"
    citadel tpm workspace import --input backup.json >/dev/null
    citadel tpm key verify signing/release --input m --signature m.sig >/dev/null
    citadel tpm key sign signing/release --input m --output m2.sig >/dev/null
    assert_eq "$(openssl dgst -sha256 -verify pub.pem -signature m2.sig m)" "Verified OK"
    doctor_consistent
}

test_output_streams_and_verbose() {
    init_vtpm
    citadel tpm key create a >/dev/null
    # without --output, export-pub prints only the key, so it can be piped
    citadel tpm key export-pub a >pub.pem
    assert_eq "$(head -1 pub.pem)" "-----BEGIN PUBLIC KEY-----"
    assert_eq "$(tail -1 pub.pem)" "-----END PUBLIC KEY-----"
    openssl pkey -pubin -in pub.pem -noout
    echo x >m
    citadel tpm key sign a --input - --output s.sig <m >/dev/null
    assert_eq "$(openssl dgst -sha256 -verify pub.pem -signature s.sig m)" "Verified OK"
    # --verbose reports backend, store and timing on stderr; stdout is the same as without it
    citadel tpm --json --verbose key list >v.out 2>v.err
    citadel tpm --json key list >plain.out
    cmp v.out plain.out || fail "--verbose changed stdout"
    assert_contains "$(cat v.err)" "backend vtpm"
    assert_contains "$(cat v.err)" "$TPM_STORE_PATH"
    assert_contains "$(cat v.err)" "ms"
    # errors: stdout empty, the error on stderr, in every format
    for f in text json yaml; do
        rc=0
        citadel tpm --format "$f" key show nosuch >e.out 2>e.err || rc=$?
        assert_eq "$rc" 3
        [ ! -s e.out ] || fail "an error in $f wrote to stdout: $(cat e.out)"
        assert_contains "$(cat e.err)" TPM0004
    done
    # the log of a deleted object can still be read
    citadel tpm key delete a >/dev/null
    assert_eq "$(citadel tpm --json log show --object a | json - '[e["action"] for e in d["events"]]')" '["object.delete", "key.create"]'
}

# ---- status and doctor ----

test_status_health_score() {
    init_vtpm
    citadel tpm key create a >/dev/null
    citadel tpm key create b >/dev/null
    citadel tpm object retire b >/dev/null
    jrun status
    score=$(jq_ 'd["health_score"]')
    if ! [[ "$score" =~ ^[0-9]+$ ]] || [ "$score" -gt 100 ]; then
        fail "health_score '$score' is not 0-100"
    fi
    jq_ 'd["deductions"]' >/dev/null
    assert_eq "$(jq_ 'all(isinstance(x["points"], int) and x["points"] > 0 and x["reason"] for x in d["deductions"])')" true
    # the score is 100 minus the listed deductions
    assert_eq "$(jq_ 'max(0, 100 - sum(x["points"] for x in d["deductions"]))')" "$score"
    # a software TPM is never full marks, and says why
    [ "$score" -lt 100 ] || fail "a vtpm workspace scored 100"
    assert_contains "$(jq_ 'd["deductions"]')" "software TPM"
    assert_eq "$(jq_ 'd["backend"]')" vtpm
    assert_eq "$(jq_ 'd["objects"]["total"]')" 2
    assert_eq "$(jq_ 'd["objects"]["retired"]')" 1
    assert_eq "$(jq_ 'd["objects"]["by_kind"]["key"]')" 2
    # the text form shows the score too
    assert_contains "$(citadel tpm status)" "$score"
}

test_doctor_report() {
    init_vtpm
    citadel tpm key create a >/dev/null
    citadel tpm key create b --persist >/dev/null
    rc=0
    citadel tpm --json doctor >d.json || rc=$?
    assert_eq "$rc" 0 "doctor exit status on a healthy workspace"
    assert_eq "$(json d.json 'd["schema_version"]')" 1
    assert_eq "$(json d.json 'd["consistent"]')" true
    assert_eq "$(json d.json 'd["healthy"]')" true
    [ "$(json d.json 'len(d["checks"])')" -ge 5 ] || fail "doctor ran too few checks"
    assert_eq "$(json d.json 'all(c["status"] in ("pass", "warn", "fail") for c in d["checks"])')" true
    assert_eq "$(json d.json 'all(c["check"] and "detail" in c for c in d["checks"])')" true
    assert_eq "$(json d.json 'd["passed"] + d["warnings"] + d["failed"] == len(d["checks"])')" true
    assert_eq "$(json d.json 'd["failed"]')" 0
    assert_eq "$(json d.json 'sum(1 for c in d["checks"] if c["status"] == "pass") == d["passed"]')" true
    assert_contains "$(json d.json '[c["detail"] for c in d["checks"] if c["check"] == "objects load"]')" "2 of 2"
    # a TPM state rolled back to before a persistent key existed: doctor fails (exit 10),
    # says inconsistent and names the key
    cp "$TPM_STORE_PATH.tpmstate" state.bak
    citadel tpm key create c --persist >/dev/null
    cp state.bak "$TPM_STORE_PATH.tpmstate"
    rc=0
    citadel tpm --json doctor >d2.json || rc=$?
    assert_eq "$rc" 10 "doctor exit status with a failed check"
    assert_eq "$(json d2.json 'd["consistent"]')" false
    assert_eq "$(json d2.json 'd["healthy"]')" false
    [ "$(json d2.json 'd["failed"]')" -ge 1 ] || fail "doctor counted no failure"
    assert_contains "$(json d2.json '[c["detail"] for c in d["checks"] if c["status"] == "fail"]')" "c:"
    assert_eq "$(json d2.json 'all(c.get("next_step") for c in d["checks"] if c["status"] == "fail")')" true
}

# ---- mock backend ----

test_mock_batch_sign_verify_openssl() {
    echo "hello mock" >m
    printf 'key create a\nkey sign a --input m --output m.sig\nkey export-pub a --output a.pem\n' |
        citadel tpm --backend mock batch >batch.out
    assert_file m.sig
    assert_file a.pem
    assert_eq "$(openssl dgst -sha256 -verify a.pem -signature m.sig m)" "Verified OK"
    echo tampered >m
    ! openssl dgst -sha256 -verify a.pem -signature m.sig m >/dev/null 2>&1 || fail "tampered message verified"
    # mock keeps everything in memory
    assert_no_file "$TPM_STORE_PATH"
    assert_no_file "$TPM_STORE_PATH.tpmstate"
    assert_eq "$(find . -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%f\n' | sort | tr '\n' ' ')" "a.pem batch.out m m.sig "
    # a failing batch stops and reports the failing command's error
    rc=0
    printf 'key create a\nkey show nosuch\nkey create b\n' | citadel tpm --backend mock --json batch >b2.out 2>b2.err || rc=$?
    assert_eq "$rc" 3
    assert_contains "$(cat b2.err)" TPM0004
    # --keep-going runs the rest and exits with the status of the last failure
    rc=0
    printf 'key create a\nkey show nosuch\nkey sign a --input missing-file\n# a comment\n\ncitadel tpm key create b\n' |
        citadel tpm --backend mock --json batch --keep-going >b3.out 2>b3.err || rc=$?
    assert_eq "$rc" 2 "batch exit status: the last failure was TPM0029 (exit 2)"
    assert_contains "$(cat b3.err)" TPM0004
    assert_contains "$(cat b3.err)" TPM0029
    assert_contains "$(cat b3.out)" '"path": "b"'
    # without it, the batch stopped before creating b
    assert_not_contains "$(cat b2.out)" '"path": "b"'
    # and a fresh mock process knows nothing of the previous one
    assert_eq "$(citadel tpm --backend mock --json key list | json - 'd["count"]')" 0
}

# `node` and `enroll` run in citadel-net (src/cli/net_verbs.c): citadel itself does not load
# GnuTLS. The hand-over keeps arguments, output and exit status; a citadel without citadel-net
# beside it says so (TPM0056) and every other command still works; a batch refuses them.
test_network_commands_run_in_citadel_net() {
    local bin net
    bin=$(dirname "$CITADEL_BIN")
    net=$bin/citadel-net
    assert_file "$net"
    assert_not_contains "$(ldd "$CITADEL_BIN")" libgnutls
    assert_contains "$(ldd "$net")" libgnutls
    init_vtpm
    # the command's own error and exit status, from citadel-net (TPM0183: not enrolled, exit 14)
    expect_fail 14 TPM0183 citadel tpm node status
    citadel tpm --json node status >ns.json 2>ns.err || true
    assert_eq "$(json ns.err 'd["error"]["code"]')" TPM0183
    # help and argument errors come from the tables, in citadel itself
    assert_contains "$(citadel node enroll --help)" "--server URL"
    expect_fail 2 TPM0002 citadel node enroll --no-such-option
    # citadel alone
    mkdir lone
    cp "$CITADEL_BIN" lone/citadel
    expect_fail 1 TPM0056 lone/citadel tpm node status
    assert_contains "$ERR" "lone/citadel-net"
    assert_eq "$(lone/citadel tpm --json key list | json - 'd["count"]')" 0
    # a copy of citadel named citadel-net lacks the handlers: an internal error, not a loop;
    # so does a link to citadel, or a script that runs it
    cp "$CITADEL_BIN" lone/citadel-net
    expect_fail 1 TPM0001 timeout 10 lone/citadel tpm node status
    rm lone/citadel-net
    ln -s citadel lone/citadel-net
    expect_fail 1 TPM0001 timeout 10 lone/citadel tpm node status
    rm lone/citadel-net
    printf '#!/bin/sh\nexec "%s" "$@"\n' "$PWD/lone/citadel" >lone/citadel-net
    chmod +x lone/citadel-net
    expect_fail 1 TPM0001 timeout 10 lone/citadel tpm node status
    assert_contains "$ERR" CITADEL_NET_EXEC
    # not in a batch: one process cannot become another halfway through
    printf 'key list\nnode status\n' >b.txt
    expect_fail 2 TPM0002 citadel tpm batch --input b.txt
    assert_contains "$ERR" "inside \`batch\`"
}
