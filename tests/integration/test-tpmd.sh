# SPDX-License-Identifier: Apache-2.0
# tpmd, the REST daemon: every documented route, API keys and roles, bad input and limits,
# approvals across a restart, signatures checked with openssl, kill -9 under load, TLS from
# files and with the key in the TPM. Each test runs its own daemon on a free port (port 0,
# the URL read from --ready-file) against the vTPM workspace in $T.

TPMD_BIN="$ROOT/$B/tpmd"
CLIENT="$ROOT/tests/integration/tpmd-client.py"
ADMIN=admin-key-0123456789abcdef
READ=read-key-0123456789abcdef
SIGN=sign-key-0123456789abcdef

stop_tpmd() {
    if [ -n "${TPMD_PID:-}" ]; then
        kill -TERM "$TPMD_PID" 2>/dev/null || true
        wait "$TPMD_PID" 2>/dev/null || true
        TPMD_PID=
    fi
}

# start_tpmd [args...]: starts tpmd in the background, waits (bounded) until it listens; sets U.
start_tpmd() {
    rm -f "$T/ready"
    "$TPMD_BIN" --listen 127.0.0.1:0 --ready-file "$T/ready" "$@" >>"$T/tpmd.log" 2>&1 &
    TPMD_PID=$!
    trap 'stop_tpmd; stop_swtpm' EXIT
    local deadline=$((SECONDS + 20))
    until [ -s "$T/ready" ]; do
        kill -0 "$TPMD_PID" 2>/dev/null || fail "tpmd exited: $(tail -20 "$T/tpmd.log")"
        [ $SECONDS -lt $deadline ] || fail "tpmd did not come up"
        sleep 0.02
    done
    U=$(cat "$T/ready")
}

keys_file() {
    printf '# id role key\nalice admin %s\nreader read %s\nci sign %s\n' "$ADMIN" "$READ" "$SIGN" >"$T/keys"
    chmod 600 "$T/keys"
}

# req METHOD PATH [BODY] [curl args...]: the status in CODE, the body in $T/resp.
req() {
    local m=$1 p=$2 b=${3:-}
    shift 3 2>/dev/null || shift $#
    CODE=$(curl -s -o "$T/resp" -w '%{http_code}' -X "$m" ${b:+--data-binary "$b"} \
        -H "X-API-Key: ${KEY:-}" -H 'Content-Type: application/json' "$@" "$U$p")
}
errcode() { json "$T/resp" 'd["error"]["code"]'; }

test_tpmd_help_and_refusals() {
    out=$("$TPMD_BIN" --help)
    for w in TPMD_LISTEN TPMD_BACKEND TPMD_VTPM_STATE TPM_STORE_PATH TPMD_API_KEY TPMD_TLS_CERT \
        TPMD_TLS_KEY TPMD_TLS_IDENTITY --insecure-no-auth --max-body X-API-Key SIGHUP SIGTERM; do
        assert_contains "$out" "$w"
    done
    init_vtpm
    # an open door on a non-loopback address is refused, unless asked for
    rc=0
    "$TPMD_BIN" --listen 0.0.0.0:0 >"$T/o" 2>&1 || rc=$?
    assert_eq "$rc" 2 "no keys on 0.0.0.0"
    assert_contains "$(cat "$T/o")" "without API keys"
    # a keys file others can read is refused
    keys_file
    chmod 644 "$T/keys"
    rc=0
    "$TPMD_BIN" --keys-file "$T/keys" >"$T/o" 2>&1 || rc=$?
    assert_ne "$rc" 0
    assert_contains "$(cat "$T/o")" "TPM0015"
    # an uninitialised workspace stops the start with its code
    rc=0
    TPM_STORE_PATH="$T/none.db" "$TPMD_BIN" --backend vtpm >"$T/o" 2>&1 || rc=$?
    assert_ne "$rc" 0
    # --insecure-no-auth on 0.0.0.0 starts
    start_tpmd --insecure-no-auth --listen 0.0.0.0:0
    U=${U/0.0.0.0/127.0.0.1}
    req GET /v1/status
    assert_eq "$CODE" 200
}

# Without API keys every caller is admin: a browser page must not be one (CSRF with a text/plain
# POST, or DNS rebinding of the page's name to 127.0.0.1 to read unsealed secrets).
test_tpmd_anonymous_refuses_browsers() {
    init_vtpm
    start_tpmd
    req GET /v1/status
    assert_eq "$CODE" 200 "a program on loopback"
    req GET /v1/status '' -H 'Host: localhost:7701'
    assert_eq "$CODE" 200 "Host localhost"
    req POST /v1/keys '{"path":"signing/csrf"}' -H 'Origin: https://evil.example' -H 'Content-Type: text/plain'
    assert_eq "$CODE" 403 "cross-origin POST"
    assert_eq "$(errcode)" TPM0151
    req GET /v1/secrets '' -H 'Host: rebind.evil.example:7701'
    assert_eq "$CODE" 403 "rebound Host"
    req GET /v1/keys/signing/csrf
    assert_eq "$CODE" 404 "the refused request made no key"
    stop_tpmd
    # with API keys the custom header already keeps browsers out: Host and Origin are not checked
    keys_file
    start_tpmd --keys-file "$T/keys"
    KEY=$READ req GET /v1/status '' -H 'Host: tpmd.example:7701' -H 'Origin: https://tpmd.example'
    assert_eq "$CODE" 200 "keyed request"
}

test_tpmd_openapi_every_route() {
    init_vtpm
    keys_file
    start_tpmd --keys-file "$T/keys"
    python3 "$CLIENT" routes "$U" "$ROOT/docs/openapi.yaml" "$ADMIN" "$READ" "$SIGN" >"$T/o" 2>&1 ||
        fail "$(cat "$T/o")"
    assert_contains "$(cat "$T/o")" "routes ok 20"
    # every route the daemon serves is documented (the table in http.c)
    n=$(grep -cE '^    \{"(GET|POST)", "' "$ROOT/src/tpmd/http.c")
    assert_eq "$n" 20 "routes in http.c"
    # the mutating requests are in the audit log with the caller's key id, never a key
    stop_tpmd
    citadel tpm --json audit chain verify >/dev/null
    python3 - "$TPM_STORE_PATH" "$ADMIN" "$READ" "$SIGN" <<'EOF'
import sqlite3, sys, json
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT event, actor, payload FROM audit_entries WHERE stream='tpmd'").fetchall()
events = {r[0] for r in rows}
for e in ("key.create", "key.delete", "key.sign", "auth.fail", "auth.forbidden", "tpmd.start", "tpmd.stop"):
    assert e in events, (e, events)
blob = b"".join(bytes(r[2]) for r in rows)
for k in sys.argv[2:]:
    assert k.encode() not in blob, "an API key is in the audit log"
created = [json.loads(r[2]) for r in rows if r[0] == "key.create"]
assert any(p["key_id"] == "alice" and p["status"] == 201 for p in created), created
EOF
}

test_tpmd_sign_verify_openssl() {
    init_vtpm
    start_tpmd
    printf 'release 1.0\n' >msg
    hex=$(od -An -tx1 msg | tr -d ' \n')
    for alg in ecc-p256 ecc-p384 rsa-2048 ed25519; do
        req POST /v1/keys "{\"path\":\"k/$alg\",\"algorithm\":\"$alg\"}"
        assert_eq "$CODE" 201 "create $alg: $(cat "$T/resp")"
        req GET "/v1/keys/k/$alg"
        json "$T/resp" 'd["public_key_pem"]' >"$alg.pem"
        req POST "/v1/sign/k/$alg" "{\"data_hex\":\"$hex\"}"
        assert_eq "$CODE" 200 "sign $alg: $(cat "$T/resp")"
        json "$T/resp" 'd["signature_base64"]' | base64 -d >"$alg.sig"
        assert_eq "$(json "$T/resp" 'd["signature_hex"]')" "$(od -An -tx1 "$alg.sig" | tr -d ' \n')" "hex = base64"
        if [ "$alg" = ed25519 ]; then
            openssl pkeyutl -verify -pubin -inkey "$alg.pem" -rawin -in msg -sigfile "$alg.sig" >/dev/null
        else
            d=sha256
            [ "$alg" = ecc-p384 ] && d=sha384
            assert_eq "$(openssl dgst -$d -verify "$alg.pem" -signature "$alg.sig" msg)" "Verified OK"
        fi
    done
    # the same signature the CLI's verifier accepts, and a digest signed as is
    dg=$(openssl dgst -sha256 -r msg | cut -d' ' -f1)
    req POST /v1/sign/k/ecc-p256 "{\"digest_hex\":\"$dg\"}"
    assert_eq "$CODE" 200
    json "$T/resp" 'd["signature_base64"]' | base64 -d >d.sig
    assert_eq "$(openssl dgst -sha256 -verify ecc-p256.pem -signature d.sig msg)" "Verified OK"
    # ed25519: the second signature comes from the session cache; lock wipes it
    req POST /v1/sign/k/ed25519 "{\"data_hex\":\"$hex\"}"
    assert_eq "$CODE" 200
    curl -s "$U/metrics" | grep -q '^tpmd_session_keys_unlocked 1$' || fail "ed25519 key not in the session cache"
    req POST /v1/keys/k/ed25519/lock '{}'
    assert_eq "$(json "$T/resp" 'd["was_unlocked"]')" true
    curl -s "$U/metrics" | grep -q '^tpmd_session_keys_unlocked 0$' || fail "lock did not wipe the key"
    req POST /v1/delete/k/rsa-2048 '{}'
    assert_eq "$CODE" 200
    req GET /v1/keys/k/rsa-2048
    assert_eq "$CODE" 404
    assert_eq "$(errcode)" TPM0004
}

test_tpmd_bad_input_and_limits() {
    init_vtpm
    start_tpmd --max-body 4096 --timeout 2 --header-timeout 2 --max-connections 6 --max-url 512
    req POST /v1/keys '{"path":"a"}'
    assert_eq "$CODE" 201
    req POST /v1/keys '{"path": "b",'
    assert_eq "$CODE:$(errcode)" 400:TPM0043 "malformed JSON"
    req POST /v1/keys '[1,2]'
    assert_eq "$CODE:$(errcode)" 400:TPM0043 "not an object"
    req POST /v1/keys '{"path": 7}'
    assert_eq "$CODE:$(errcode)" 400:TPM0043 "wrong type"
    req POST /v1/keys '{"path": "b", "colour": "red"}'
    assert_eq "$CODE:$(errcode)" 400:TPM0043 "unknown field"
    assert_contains "$(cat "$T/resp")" "colour"
    req POST /v1/keys '{"path": "b", "path": "c"}'
    assert_eq "$CODE" 400 "duplicate field"
    req POST /v1/sign/a '{"data_hex":"zz"}'
    assert_eq "$CODE:$(errcode)" 400:TPM0043 "not hex"
    req POST /v1/sign/a '{"data_hex":"00","digest_hex":"00"}'
    assert_eq "$CODE" 400 "both data and digest"
    req POST /v1/sign/a '{"digest_hex":"0011"}'
    assert_eq "$CODE" 400 "short digest"
    for p in '/v1/keys/..%2F..%2Fetc%2Fpasswd' '/v1/keys/a/../../x' '/v1/keys/%2e%2e/a' '/v1/keys/A%00b'; do
        req GET "$p" '' --path-as-is
        [ "$CODE" = 400 ] || [ "$CODE" = 404 ] || fail "path traversal $p answered $CODE"
        [ "$CODE" = 404 ] && assert_eq "$(errcode)" TPM0004
    done
    req GET '/v1/keys/..%2F..%2Fetc%2Fpasswd' '' --path-as-is
    assert_eq "$CODE:$(errcode)" 400:TPM0003 "traversal is an invalid path"
    req POST '/v1/sign/%2e%2e/a' '{"data_hex":"00"}' --path-as-is
    assert_eq "$CODE:$(errcode)" 400:TPM0003 "traversal in a sign path"
    req POST /v1/keys "{\"path\":\"$(head -c 8000 /dev/zero | tr '\0' a)\"}"
    assert_eq "$CODE:$(errcode)" 413:TPM0030 "body over --max-body"
    head -c 9000 /dev/zero | tr '\0' ' ' >big
    CODE=$(curl -s -o "$T/resp" -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @big "$U/v1/keys")
    assert_eq "$CODE" 413 "chunked body over the limit"
    req GET "/v1/keys/$(head -c 600 /dev/zero | tr '\0' a)"
    assert_eq "$CODE" 414 "URL over --max-url"
    CODE=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$U/v1/status")
    [ "$CODE" -ge 400 ] && [ "$CODE" -lt 500 ] || fail "huge header answered $CODE"
    # slowloris: a client trickling its headers is cut off after --header-timeout, and meanwhile
    # others are served
    python3 - "${U#http://}" <<'EOF' &
import socket, sys, time
host, port = sys.argv[1].split(":")
s = socket.create_connection((host, int(port)))
s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
t0 = time.time()
try:
    for i in range(40):
        time.sleep(0.5)
        s.sendall(b"X-Slow-%d: y\r\n" % i)
        s.settimeout(0.01)
        try:
            if s.recv(1) == b"":
                break
        except socket.timeout:
            pass
        s.settimeout(None)
except (BrokenPipeError, ConnectionResetError):
    pass
dt = time.time() - t0
assert dt < 8, "the slow client was not cut off: %.1fs" % dt
print("cut after %.1fs" % dt)
EOF
    slow=$!
    for i in 1 2 3 4 5; do
        req GET /v1/status
        assert_eq "$CODE" 200 "served while a slow client trickles"
    done
    wait $slow || fail "slowloris client not cut off"
    # the connection cap: idle connections up to the cap; one more is not served
    python3 - "${U#http://}" <<'EOF'
import socket, sys, time
host, port = sys.argv[1].split(":")
held = [socket.create_connection((host, int(port))) for _ in range(6)]
time.sleep(0.2)
extra = socket.create_connection((host, int(port)))
extra.settimeout(3)
try:
    extra.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
    got = extra.recv(100)
except (ConnectionResetError, BrokenPipeError, socket.timeout):
    got = b""
assert not got.startswith(b"HTTP/1.1 200"), got
for s in held:
    s.close()
EOF
    deadline=$((SECONDS + 10))
    until req GET /v1/status && [ "$CODE" = 200 ]; do
        [ $SECONDS -lt $deadline ] || fail "not served after the held connections closed"
        sleep 0.1
    done
    # the daemon is fine after all this
    req POST /v1/sign/a '{"data_hex":"00"}'
    assert_eq "$CODE" 200
}

test_tpmd_auth_roles_sighup() {
    init_vtpm
    keys_file
    start_tpmd --keys-file "$T/keys"
    KEY= req GET /v1/status
    assert_eq "$CODE:$(errcode)" 401:TPM0150
    KEY=nope-nope-nope-nope req GET /v1/status
    assert_eq "$CODE:$(errcode)" 401:TPM0150
    KEY=$READ req GET /v1/keys
    assert_eq "$CODE" 200
    KEY=$READ req POST /v1/keys '{"path":"x"}'
    assert_eq "$CODE:$(errcode)" 403:TPM0151
    KEY=$SIGN req POST /v1/keys '{"path":"x"}'
    assert_eq "$CODE" 403
    KEY=$ADMIN req POST /v1/keys '{"path":"x"}'
    assert_eq "$CODE" 201
    KEY=$SIGN req POST /v1/sign/x '{"data_hex":"00"}'
    assert_eq "$CODE" 200
    # SIGHUP: a new key works, a removed one does not
    printf 'bob admin %s\n' new-admin-key-0123456789 >"$T/keys"
    kill -HUP "$TPMD_PID"
    deadline=$((SECONDS + 10))
    until KEY=new-admin-key-0123456789 req GET /v1/status && [ "$CODE" = 200 ]; do
        [ $SECONDS -lt $deadline ] || fail "SIGHUP did not reload the keys"
        sleep 0.05
    done
    KEY=$ADMIN req GET /v1/status
    assert_eq "$CODE" 401
    # a reload that fails keeps the keys that work
    chmod 644 "$T/keys"
    kill -HUP "$TPMD_PID"
    sleep 0.3
    KEY=new-admin-key-0123456789 req GET /v1/status
    assert_eq "$CODE" 200
    grep -q "keeping the old API keys" "$T/tpmd.log" || fail "no log of the refused reload"
    # SIGTERM: exits 0, state saved, session keys wiped
    kill -TERM "$TPMD_PID"
    rc=0
    wait "$TPMD_PID" || rc=$?
    TPMD_PID=
    assert_eq "$rc" 0
    grep -q "stopped" "$T/tpmd.log" || fail "no clean stop"
    citadel tpm key sign x --input "$T/keys" >/dev/null
}

test_tpmd_approvals_survive_restart() {
    init_vtpm
    citadel tpm profile set two-person >/dev/null
    keys_file
    start_tpmd --keys-file "$T/keys"
    KEY=$ADMIN req POST /v1/keys '{"path":"release/k"}'
    assert_eq "$CODE" 201
    KEY=$ADMIN req GET /v1/keys/release/k
    json "$T/resp" 'd["public_key_pem"]' >pub.pem
    printf 'v1.4 tarball' >msg
    hex=$(od -An -tx1 msg | tr -d ' \n')
    KEY=$SIGN req POST /v1/sign/release/k "{\"data_hex\":\"$hex\"}"
    assert_eq "$CODE" 202 "$(cat "$T/resp")"
    id=$(json "$T/resp" 'd["approval"]')
    KEY=$SIGN req POST /v1/approvals "{\"path\":\"release/k\",\"data_hex\":\"00ff\"}"
    assert_eq "$CODE" 202
    id2=$(json "$T/resp" 'd["approval"]')
    # restart the daemon between the request and the decision
    stop_tpmd
    start_tpmd --keys-file "$T/keys"
    KEY=$READ req GET '/v1/approvals?status=pending'
    assert_eq "$(json "$T/resp" '[a["approval"] for a in d["approvals"]]')" "[$id, $id2]"
    KEY=$SIGN req POST "/v1/approvals/$id/approve" '{}'
    assert_eq "$CODE" 403 "a sign key cannot approve"
    KEY=$ADMIN req POST "/v1/approvals/$id/approve" '{"reason":"release 1.4"}'
    assert_eq "$CODE" 200
    KEY=$ADMIN req POST "/v1/approvals/$id2/deny" '{}'
    assert_eq "$CODE" 200
    KEY=$ADMIN req POST "/v1/approvals/$id/approve" '{}'
    assert_eq "$CODE" 422 "decided once"
    stop_tpmd
    start_tpmd --keys-file "$T/keys"
    KEY=$SIGN req POST /v1/sign/release/k "{\"data_hex\":\"00\",\"approval\":$id}"
    assert_eq "$CODE:$(errcode)" 422:TPM0055 "approval for another input"
    KEY=$SIGN req POST /v1/sign/release/k "{\"data_hex\":\"$hex\",\"approval\":$id}"
    assert_eq "$CODE" 200 "$(cat "$T/resp")"
    json "$T/resp" 'd["signature_base64"]' | base64 -d >msg.sig
    assert_eq "$(openssl dgst -sha256 -verify pub.pem -signature msg.sig msg)" "Verified OK"
    KEY=$SIGN req POST /v1/sign/release/k "{\"data_hex\":\"$hex\",\"approval\":$id}"
    assert_eq "$CODE" 422 "an approval signs once"
    # who asked and who decided, in the store (the CLI reads it without the TPM)
    citadel tpm --json approval show "$id" >a.json
    assert_eq "$(json a.json '[d["requested_by"], d["decided_by"], d["status"], d["reason"]]')" \
        '["tpmd:ci", "tpmd:alice", "used", "release 1.4"]'
    assert_eq "$(citadel tpm --json approval show "$id2" | json - 'd["status"]')" denied
}

test_tpmd_kill9_under_load() {
    init_vtpm
    keys_file
    start_tpmd --keys-file "$T/keys"
    KEY=$ADMIN req POST /v1/keys '{"path":"load/k"}'
    assert_eq "$CODE" 201
    # 12 clients: more than AUDIT_HOLD_JOBS (src/tpmd/tpmd.h) signatures queue up, so the audit
    # writer holds batches open for them (auditq.c) when the daemon dies
    python3 "$CLIENT" load "$U" "$SIGN" load/k 12 100000 acked >load.out 2>&1 &
    client=$!
    deadline=$((SECONDS + 20))
    until [ "$(wc -l <acked 2>/dev/null || echo 0)" -ge 150 ]; do
        [ $SECONDS -lt $deadline ] || fail "no load"
        sleep 0.05
    done
    KEY=$ADMIN req GET /metrics
    held=$(awk '/^tpmd_audit_held_batches_total/ {print $2}' "$T/resp")
    [ "${held:-0}" -gt 0 ] || fail "no group commit was held open for queued signatures: $(grep audit "$T/resp")"
    kill -9 "$TPMD_PID"
    wait "$TPMD_PID" 2>/dev/null || true
    TPMD_PID=
    wait $client || true
    n=$(wc -l <acked)
    # nothing acknowledged is lost: the store and the log verify, every acknowledged signature
    # has its committed audit entry
    citadel tpm --json audit chain verify >v.json || fail "chain verify: $(cat v.json)"
    doctor_consistent
    signs=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
        "SELECT count(*) FROM audit_entries WHERE stream=? AND event=?", ("tpmd", "key.sign")).fetchone()[0])' \
        "$TPM_STORE_PATH")
    [ "$signs" -ge "$n" ] || fail "$n signatures acknowledged, $signs audited"
    start_tpmd --keys-file "$T/keys"
    KEY=$SIGN req POST /v1/sign/load/k '{"data_hex":"00"}'
    assert_eq "$CODE" 200 "serves after the restart"
    stop_tpmd
    citadel tpm --json audit chain verify >/dev/null
}

# 16 clients x 20,000 signatures (CIT_LONG=1, `make check-long`); 4 x 400 otherwise.
test_tpmd_load_keepalive() {
    init_vtpm
    keys_file
    start_tpmd --keys-file "$T/keys"
    KEY=$ADMIN req POST /v1/keys '{"path":"load/k"}'
    clients=4 total=400
    [ "${CIT_LONG:-0}" = 1 ] && clients=16 total=20000
    python3 "$CLIENT" load "$U" "$SIGN" load/k 2 200 warm >/dev/null
    rss0=$(awk '/VmRSS/ {print $2}' "/proc/$TPMD_PID/status")
    python3 "$CLIENT" load "$U" "$SIGN" load/k "$clients" "$total" sigs >load.out
    rss1=$(awk '/VmRSS/ {print $2}' "/proc/$TPMD_PID/status")
    cat load.out
    echo "RSS before ${rss0} kB, after ${rss1} kB"
    assert_eq "$(awk '{print $2, $4, $6}' load.out)" "$total 0 0" "all signed, none failed, all verified"
    # (AddressSanitizer keeps freed memory in quarantine: RSS says nothing under it)
    [ "${CIT_SANITIZE:-0}" == 1 ] || [ "$rss1" -lt $((rss0 + 20000)) ] || fail "RSS grew from $rss0 to $rss1 kB"
    # a sample through the openssl command line too
    KEY=$ADMIN req GET /v1/keys/load/k
    json "$T/resp" 'd["public_key_pem"]' >pub.pem
    head -20 sigs | while read -r _ m s; do
        printf '%s' "$m" | xxd -r -p >m
        printf '%s' "$s" | xxd -r -p >s
        openssl dgst -sha256 -verify pub.pem -signature s m >/dev/null || fail "openssl: bad signature"
    done
}

test_tpmd_policy_yaml_upload() {
    init_vtpm
    keys_file
    start_tpmd --keys-file "$T/keys"
    printf 'name: boot-integrity\nrequires:\n  pcr:\n    - index: 7\n    - index: 11\n      bank: sha256\n  auth_value: true\n' >p.yaml
    body=$(python3 -c 'import json,sys; print(json.dumps({"yaml": open(sys.argv[1]).read()}))' p.yaml)
    KEY=$READ req POST /v1/policies "$body"
    assert_eq "$CODE" 403 "a read key cannot create policies"
    KEY=$ADMIN req POST /v1/policies "$body"
    assert_eq "$CODE" 201 "yaml upload: $(cat "$T/resp")"
    assert_eq "$(json "$T/resp" 'd["policy"]')" boot-integrity
    http_digest=$(json "$T/resp" 'd["digest"]')
    # the same digest as the CLI compiles from the same file in another workspace on the same TPM
    stop_tpmd
    cp p.yaml p2.yaml
    sed -i 's/boot-integrity/cli-copy/' p2.yaml
    cli_digest=$(citadel tpm --json policy compile p2.yaml | json - 'd["digest"]')
    assert_eq "$http_digest" "$cli_digest" "HTTP and CLI compile the same policy"
    start_tpmd --keys-file "$T/keys"
    # once more without replace: it exists (409); with replace: a new version (201)
    KEY=$ADMIN req POST /v1/policies "$body"
    assert_eq "$CODE" 409 "exists: $(cat "$T/resp")"
    body2=$(python3 -c 'import json,sys; print(json.dumps({"yaml": open(sys.argv[1]).read(), "replace": True}))' p.yaml)
    KEY=$ADMIN req POST /v1/policies "$body2"
    assert_eq "$CODE" 201 "replace: $(cat "$T/resp")"
    # bad YAML: 400 with the policy code, line and column; nothing stored
    KEY=$ADMIN req POST /v1/policies '{"yaml": "name: p\nrequires:\n  pcr:\n    - index: 7\n  colour: blue\n"}'
    assert_eq "$CODE" 400 "unknown key: $(cat "$T/resp")"
    assert_eq "$(errcode)" TPM0052
    assert_contains "$(cat "$T/resp")" "colour"
    KEY=$ADMIN req POST /v1/policies '{"yaml": "name: x\nrequires: {}\n", "name": "x"}'
    assert_eq "$CODE" 400 "yaml and name together"
    KEY=$ADMIN req POST /v1/policies '{"name": "y", "pcrs": "7", "replace": true}'
    assert_eq "$CODE" 400 "replace without yaml"
    KEY=$READ req GET /v1/policies
    assert_contains "$(cat "$T/resp")" boot-integrity
    assert_not_contains "$(cat "$T/resp")" '"p"'
    stop_tpmd
    # the uploads are in the audit log under the admin's key id
    n=$(python3 - "$TPM_STORE_PATH" <<'PY'
import sqlite3, sys, json
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT actor, payload FROM audit_entries WHERE stream='tpmd' AND event='policy.create'").fetchall()
print(sum(1 for a, p in rows if b"boot-integrity" in bytes(p) and b"alice" in bytes(p)))
PY
)
    [ "$n" -ge 3 ] || fail "policy.create entries (created, exists, replaced) for boot-integrity by alice: $n"
}

tls_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
        -days 2 -subj /CN=test-ca >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext
}

test_tpmd_tls_files() {
    init_vtpm
    tls_ca
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost \
        >/dev/null 2>&1
    openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 1 -extfile ext \
        >/dev/null 2>&1
    # a private key others can read is refused
    chmod 644 srv.key
    rc=0
    "$TPMD_BIN" --listen 127.0.0.1:0 --tls-cert srv.pem --tls-key srv.key >k.log 2>&1 || rc=$?
    assert_ne "$rc" 0
    assert_contains "$(cat k.log)" "chmod 600"
    chmod 600 srv.key
    start_tpmd --tls-cert srv.pem --tls-key srv.key
    assert_contains "$U" "https://"
    out=$(curl -s --cacert ca.pem "$U/v1/status")
    assert_contains "$out" '"backend": "vtpm"'
    curl -s -o /dev/null "$U/v1/status" && fail "an untrusted certificate was accepted"
    echo | openssl s_client -connect "${U#https://}" -CAfile ca.pem -verify_return_error >s.out 2>&1 ||
        fail "s_client: $(tail -5 s.out)"
    assert_contains "$(cat s.out)" "Verify return code: 0 (ok)"
}

test_tpmd_tls_tpm_identity() {
    init_vtpm
    tls_ca
    citadel tpm identity init web --usage tls-server --algorithm ecc-p256 >/dev/null
    citadel tpm identity csr web --subject /CN=localhost --san DNS:localhost,IP:127.0.0.1 --output web.csr >/dev/null
    openssl x509 -req -in web.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out web.pem -days 1 -extfile ext \
        >/dev/null 2>&1
    citadel tpm identity cert-import web --input web.pem >/dev/null
    citadel tpm --json identity show web >id.json
    citadel tpm key export-pub "$(json id.json 'd["path"]')" --output id-pub.pem >/dev/null
    start_tpmd --tls-identity web
    out=$(curl -s --cacert ca.pem "$U/v1/status")
    assert_contains "$out" '"backend": "vtpm"'
    for v in -tls1_3 -tls1_2; do
        echo | openssl s_client $v -connect "${U#https://}" -CAfile ca.pem -verify_return_error >s.out 2>&1 ||
            fail "s_client $v: $(tail -5 s.out)"
        assert_contains "$(cat s.out)" "Verify return code: 0 (ok)"
    done
    # the served certificate's key is the identity's TPM key
    openssl x509 -in <(sed -n '/BEGIN CERT/,/END CERT/p' s.out) -pubkey -noout >served-pub.pem
    assert_eq "$(openssl pkey -pubin -in served-pub.pem -outform DER | sha256sum)" \
        "$(openssl pkey -pubin -in id-pub.pem -outform DER | sha256sum)"
    n=$(curl -s --cacert ca.pem "$U/metrics" | awk '/^tpmd_tls_tpm_signatures_total/ {print $2}')
    [ "$n" -ge 3 ] || fail "handshakes were not signed in the TPM ($n)"
    stop_tpmd
    # a certificate for another key is refused at start
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o.key -out o.csr -subj /CN=x >/dev/null 2>&1
    openssl x509 -req -in o.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out other.pem -days 1 >/dev/null 2>&1
    rc=0
    TPMD_TLS_CERT=other.pem "$TPMD_BIN" --listen 127.0.0.1:0 --tls-identity web >o.log 2>&1 || rc=$?
    assert_ne "$rc" 0
    assert_contains "$(cat o.log)" "TPM0054"
    # under two-person, handshakes still sign (they are not approved artefacts) while `key sign`
    # with the same identity needs an approval
    citadel tpm profile set two-person >/dev/null
    start_tpmd --tls-identity web
    assert_contains "$(curl -s --cacert ca.pem "$U/v1/status")" '"backend": "vtpm"'
    stop_tpmd
    printf 'x' >x.txt
    expect_fail 7 TPM0055 citadel tpm key sign "$(json id.json 'd["path"]')" --input x.txt
    # an identity that is not a TLS identity cannot serve TLS
    citadel tpm profile set default >/dev/null
    citadel tpm identity init coder --usage code-signing --algorithm ecc-p256 >/dev/null
    rc=0
    TPMD_TLS_CERT=web.pem "$TPMD_BIN" --listen 127.0.0.1:0 --tls-identity coder >o.log 2>&1 || rc=$?
    assert_ne "$rc" 0
    assert_contains "$(cat o.log)" "not tls-server"
}
