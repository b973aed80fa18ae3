# SPDX-License-Identifier: Apache-2.0
# Helpers of the enrollment tests (test-enroll*.sh): an enrolld server workspace with its CA
# and TLS certificate in $T/srv, node workspaces in $T/<name> (each its own vTPM state and its
# own factory CA, trusted by the server), the server on a free port, manual protocol steps with
# curl for the tests that tamper with them.

ENROLLD_BIN="$ROOT/$B/enrolld"
ADMIN_KEY=admin-key-0123456789abcdef

# srv ARGS...: citadel on the server's workspace
srv() { citadel --store-path "$T/srv/store.db" "$@"; }
# node NAME ARGS...: citadel on a node's workspace
node() {
    local n=$1
    shift
    citadel --store-path "$T/$n/store.db" "$@"
}
# admin ARGS...: `citadel enroll` with the admin key
admin() {
    local g=()
    if [ "${1:-}" == --json ]; then
        g=(--json)
        shift
    fi
    ENROLL_API_KEY=$ADMIN_KEY ENROLL_SERVER=$U ENROLL_CA_FILE="$T/ca.pem" citadel "${g[@]}" enroll "$@"
}

# The server's workspace, CA "enroll" (key encrypted under a TPM-sealed KEK), a TLS key and
# certificate for 127.0.0.1 issued by it, the admin keys file.
server_setup() {
    export TPM_BACKEND=vtpm
    mkdir -p "$T/srv"
    srv init >/dev/null
    srv ca init enroll >/dev/null
    srv ca show enroll >"$T/ca.pem"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/srv/tls.key" 2>/dev/null
    chmod 600 "$T/srv/tls.key"
    openssl req -new -key "$T/srv/tls.key" -subj /CN=127.0.0.1 -out "$T/srv/tls.csr"
    srv ca issue --ca enroll --csr "$T/srv/tls.csr" --profile tls-server --san IP:127.0.0.1 \
        --output "$T/srv/tls.pem" >/dev/null
    printf 'ops admin %s\n' "$ADMIN_KEY" >"$T/srv/keys"
    chmod 600 "$T/srv/keys"
}

# node_setup NAME [trust]: a node workspace; its factory CA is added to the server's
# manufacturer trust store unless the second argument is "untrusted".
node_setup() {
    mkdir -p "$T/$1"
    node "$1" init >/dev/null
    node "$1" ek ca --output "$T/$1/factory.pem" >/dev/null
    if [ "${2:-trusted}" != untrusted ]; then
        srv ca trust add "$1" --store manufacturers "$T/$1/factory.pem" >/dev/null
    fi
}

stop_enrolld() {
    if [ -n "${ENROLLD_PID:-}" ]; then
        kill -TERM "$ENROLLD_PID" 2>/dev/null || true
        wait "$ENROLLD_PID" 2>/dev/null || true
        ENROLLD_PID=
    fi
}

# start_enrolld [args...]: starts enrolld on a free port, waits (bounded) until it listens; sets U.
start_enrolld() {
    rm -f "$T/ready"
    "$ENROLLD_BIN" --store-path "$T/srv/store.db" --tls-cert "$T/srv/tls.pem" --tls-key "$T/srv/tls.key" \
        --keys-file "$T/srv/keys" --listen "127.0.0.1:${ENROLLD_PORT:-0}" --ready-file "$T/ready" "$@" >>"$T/enrolld.log" 2>&1 &
    ENROLLD_PID=$!
    trap 'stop_enrolld; stop_swtpm' EXIT
    local deadline=$((SECONDS + 20))
    until [ -s "$T/ready" ]; do
        kill -0 "$ENROLLD_PID" 2>/dev/null || fail "enrolld exited: $(tail -20 "$T/enrolld.log")"
        [ $SECONDS -lt $deadline ] || fail "enrolld did not come up"
        sleep 0.02
    done
    U=$(cat "$T/ready")
}

# enroll NAME [args...]: `citadel node enroll` of node NAME as host NAME
enroll() {
    local n=$1
    shift
    node "$n" node enroll --server "$U" --ca-file "$T/ca.pem" --host "$n" "$@"
}

# req METHOD PATH [BODY_FILE] [curl args...]: status in CODE, body in $T/resp
req() {
    local m=$1 p=$2 b=${3:-}
    shift 3 2>/dev/null || shift $#
    CODE=$(curl -s --cacert "$T/ca.pem" -o "$T/resp" -w '%{http_code}' -X "$m" ${b:+--data-binary @"$b"} \
        -H 'Content-Type: application/json' "$@" "$U$p")
}
errcode() { jq -r .error.code "$T/resp"; }

# The server's audit log, stream enroll: the number of entries and the last one's event/payload.
audit_seq() { srv --json audit head --stream enroll | jq -r .seqno; }
audit_last() { srv --json audit show "$(audit_seq)"; }
# assert_rejected_audited SEQ_BEFORE CODE: a new enroll.reject entry with the code
assert_rejected_audited() {
    local last
    [ "$(audit_seq)" -gt "$1" ] || fail "no new audit entry after the rejection"
    last=$(audit_last)
    assert_eq "$(printf '%s' "$last" | jq -r .event)" enroll.reject
    assert_contains "$(printf '%s' "$last" | jq -r .payload)" "\"code\":\"$2\""
}

# start_body NAME [EK_FROM]: the start request of node NAME (material made by the CLI's own
# commands), the EK and its certificate from node EK_FROM (default NAME), in $T/NAME/start.json.
start_body() {
    local n=$1 ekn=${2:-$1} d="$T/$1"
    node "$n" attest ak-create enroll/ak --algorithm ecc-p256 >/dev/null 2>&1 || true
    node "$n" identity init devid --usage tls-client >/dev/null 2>&1 || true
    node "$ekn" --json ek show --algorithm ecc-p256 | jq -r .public_key >"$d/ek.pem"
    node "$ekn" ek cert --algorithm ecc-p256 --encoding der --output "$d/ek.der" >/dev/null
    node "$n" --json attest ak-show enroll/ak | jq -r .ak_tpm2b_public_base64 >"$d/ak.b64"
    node "$n" --json attest certify --ak enroll/ak --key devid --qualifying 00 | jq -r .key_public >"$d/devid.b64"
    node "$n" identity csr devid --subject "CN=$n" --output "$d/devid.csr" >/dev/null
    jq -n --rawfile ek "$d/ek.pem" --arg cert "$(base64 -w0 "$d/ek.der")" --rawfile ak "$d/ak.b64" \
        --rawfile dv "$d/devid.b64" --rawfile csr "$d/devid.csr" --arg host "$n" \
        '{host:$host, ek_public:$ek, ek_cert:$cert, ek_algorithm:"ecc-p256", ak_public:($ak|rtrimstr("\n")),
          devid_public:($dv|rtrimstr("\n")), devid_csr:$csr}' >"$d/start.json"
}

# finish_body NAME: from $T/NAME/started.json (start's answer): activation, quote, certify, in
# $T/NAME/finish.json (SECRET overrides the activated secret).
finish_body() {
    local n=$1 d="$T/$1"
    jq .credential "$d/started.json" >"$d/cred.json"
    local nonce secret
    nonce=$(jq -r .nonce "$d/started.json")
    secret=${SECRET:-$(node "$n" --json attest credential activate --ak enroll/ak --input "$d/cred.json" | jq -r .secret_hex)}
    node "$n" --json attest quote --ak enroll/ak --pcr "$(jq -r '.pcrs|map(tostring)|join(",")' "$d/started.json")" \
        --nonce "$nonce" --output "$d/quote.json" >/dev/null
    node "$n" --json attest certify --ak enroll/ak --key devid --qualifying "$nonce" --output "$d/certify.json" >/dev/null
    jq -n --arg s "$secret" --slurpfile q "$d/quote.json" --slurpfile c "$d/certify.json" \
        '{secret:$s, quote:$q[0], certify:{attest:$c[0].attest, signature:$c[0].signature}}' >"$d/finish.json"
}

# factory_ek_cert NAME: for a TPM without an EK certificate (swtpm without swtpm_setup): a
# manufacturer CA made with python's cryptography issues one for the node's ECC EK, the node
# stores it in its NV index (`ek cert-import`), and the server trusts the CA.
factory_ek_cert() {
    local d="$T/$1"
    node "$1" --json ek show --algorithm ecc-p256 | jq -r .public_key >"$d/ek.pem"
    python3 "$ROOT/tests/lib/ek-cert.py" "$d/ek.pem" "$d/factory.pem" "$d/ek.der" "Test swtpm Factory CA" 2020 2099
    node "$1" ek cert-import --algorithm ecc-p256 --input "$d/ek.der" >/dev/null
    srv ca trust add "$1" --store manufacturers "$d/factory.pem" >/dev/null
}
