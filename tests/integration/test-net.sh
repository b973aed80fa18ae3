# SPDX-License-Identifier: Apache-2.0
# The network layer (src/net/, docs/net.md) through tests/drivers/http-driver: HTTPS to tpmd
# serving TLS from a TPM identity, mutual TLS whose client key is a TPM identity (openssl
# s_server requires and checks the client certificate), plain HTTP with Content-Length,
# chunked and close-delimited bodies, and the failures with their codes: wrong CA and wrong
# host name (TPM0197), server down (TPM0196), timeout (TPM0198), too large (TPM0199).

DRIVER="$ROOT/$B/tests/http-driver"
TPMD_BIN="$ROOT/$B/tpmd"
SERVER="$ROOT/tests/integration/http-test-server.py"

stop_bg() {
    local p
    for p in ${BG_PIDS:-}; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    BG_PIDS=
}

# wait_ready FILE PID: until FILE is written (bounded); sets U.
wait_ready() {
    local deadline=$((SECONDS + 20))
    until [ -s "$1" ]; do
        kill -0 "$2" 2>/dev/null || fail "the server exited: $(tail -20 "$T/bg.log" 2>/dev/null)"
        [ $SECONDS -lt $deadline ] || fail "the server did not come up"
        sleep 0.02
    done
    U=$(cat "$1")
}

# net_ca: a test CA (ca.pem) and a second, unrelated one (other-ca.pem).
net_ca() {
    for c in ca other-ca; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$c.key" -out "$c.pem" \
            -days 2 -subj "/CN=$c" >/dev/null 2>&1
    done
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext
}

# issue CSR OUT [EXTFILE]: a certificate from the test CA.
issue() {
    openssl x509 -req -in "$1" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$2" -days 1 ${3:+-extfile "$3"} \
        >/dev/null 2>&1
}

# identity NAME USAGE SUBJECT: a TPM identity with a certificate from the test CA.
tls_identity() {
    citadel tpm identity init "$1" --usage "$2" --algorithm ecc-p256 >/dev/null
    citadel tpm identity csr "$1" --subject "$3" --san DNS:localhost,IP:127.0.0.1 --output "$1.csr" >/dev/null
    issue "$1.csr" "$1.pem" ext
    citadel tpm identity cert-import "$1" --input "$1.pem" >/dev/null
}

# drv ARGS: runs the driver; body in $T/body, stderr in $T/drv.err, exit status in DRC.
drv() {
    DRC=0
    "$DRIVER" "$@" >"$T/body" 2>"$T/drv.err" || DRC=$?
}

test_net_https_to_tpmd_with_tpm_identity() {
    init_vtpm
    net_ca
    tls_identity web tls-server /CN=localhost
    trap stop_bg EXIT
    TPMD_TLS_IDENTITY=web "$TPMD_BIN" --listen 127.0.0.1:0 --ready-file "$T/ready" >"$T/bg.log" 2>&1 &
    BG_PIDS=$!
    wait_ready "$T/ready" "$BG_PIDS"
    assert_contains "$U" "https://"
    drv GET "$U/v1/status" --cacert ca.pem
    assert_eq "$DRC" 0 "$(cat drv.err)"
    assert_contains "$(cat drv.err)" "status 200"
    assert_eq "$(json body 'd["backend"]')" vtpm
    # by DNS name: the certificate names localhost too
    drv GET "${U/127.0.0.1/localhost}/v1/status" --cacert ca.pem
    assert_eq "$DRC" 0 "$(cat drv.err)"
    # a 404 is an answer, not an error
    drv GET "$U/v1/nothing-here" --cacert ca.pem
    assert_eq "$DRC" 0
    assert_contains "$(cat drv.err)" "status 404"
    assert_eq "$(json body 'd["error"]["code"]')" TPM0152
    # the handshakes were signed in the TPM (tpmd's counter)
    drv GET "$U/metrics" --cacert ca.pem
    n=$(awk '/^tpmd_tls_tpm_signatures_total/ {print $2}' body)
    [ "$n" -ge 3 ] || fail "tpmd's TLS key did not sign in the TPM ($n)"
    # another CA: verification fails with its own code and the reason
    drv GET "$U/v1/status" --cacert other-ca.pem
    assert_eq "$DRC" 6
    assert_contains "$(cat drv.err)" "error[TPM0197]"
    assert_contains "$(cat drv.err)" "did not verify"
    assert_contains "$(cat drv.err)" "issuer is unknown"
    # https without a CA file is a usage error
    drv GET "$U/v1/status"
    assert_eq "$DRC" 2
    assert_contains "$(cat drv.err)" "error[TPM0002]"
    stop_bg
    # the server is gone: connection refused
    drv GET "$U/v1/status" --cacert ca.pem
    assert_eq "$DRC" 6
    assert_contains "$(cat drv.err)" "error[TPM0196]"
    assert_contains "$(cat drv.err)" "connection refused"
}

test_net_mutual_tls_client_key_in_tpm() {
    init_vtpm
    net_ca
    tls_identity node tls-client /CN=node-1
    citadel tpm key export-pub node --output node-pub.pem >/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost \
        >/dev/null 2>&1
    issue srv.csr srv.pem ext
    P=$(free_port)
    trap stop_bg EXIT
    # a server that requires a client certificate issued by the test CA
    openssl s_server -accept "127.0.0.1:$P" -cert srv.pem -key srv.key -CAfile ca.pem -Verify 1 \
        -verify_return_error -www >"$T/bg.log" 2>&1 &
    BG_PIDS=$!
    local deadline=$((SECONDS + 10))
    until grep -q ACCEPT "$T/bg.log"; do
        kill -0 "$BG_PIDS" 2>/dev/null || fail "s_server exited: $(cat "$T/bg.log")"
        [ $SECONDS -lt $deadline ] || fail "s_server did not come up"
        sleep 0.02
    done
    drv GET "https://127.0.0.1:$P/" --cacert ca.pem --identity node
    assert_eq "$DRC" 0 "$(cat drv.err)"
    # the handshake completed with a client certificate, signed in the TPM
    assert_contains "$(cat drv.err)" "status 200"
    signs=$(awk '/^tpm_signs/ {print $2}' drv.err)
    [ "${signs:-0}" -ge 1 ] || fail "the client handshake was not signed in the TPM"
    # the certificate the server saw (s_server -www shows it) is the identity's, and its key the TPM key
    assert_contains "$(cat body)" "Client certificate"
    sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' body >seen.pem
    assert_eq "$(openssl x509 -in seen.pem -outform DER | sha256sum)" "$(openssl x509 -in node.pem -outform DER | sha256sum)"
    openssl x509 -in seen.pem -pubkey -noout >seen-pub.pem
    assert_eq "$(openssl pkey -pubin -in seen-pub.pem -outform DER | sha256sum)" \
        "$(openssl pkey -pubin -in node-pub.pem -outform DER | sha256sum)"
    # a P-384 identity too (ECDSA with SHA-384 in the TPM)
    citadel tpm identity init node384 --usage tls-client --algorithm ecc-p384 >/dev/null
    citadel tpm identity csr node384 --subject /CN=node-384 --output node384.csr >/dev/null
    issue node384.csr node384.pem
    citadel tpm identity cert-import node384 --input node384.pem >/dev/null
    drv GET "https://127.0.0.1:$P/" --cacert ca.pem --identity node384
    assert_eq "$DRC" 0 "$(cat drv.err)"
    assert_contains "$(cat body)" "CN=node-384"
    # without a client certificate the server refuses the handshake
    drv GET "https://127.0.0.1:$P/" --cacert ca.pem
    assert_eq "$DRC" 6
    assert_contains "$(cat drv.err)" "error[TPM0197]"
    # a client certificate from files works the same way (and a readable key file is refused)
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout cli.key -out cli.csr -subj /CN=file-client \
        >/dev/null 2>&1
    issue cli.csr cli.pem
    chmod 644 cli.key
    drv GET "https://127.0.0.1:$P/" --cacert ca.pem --cert cli.pem --key cli.key
    assert_eq "$DRC" 4
    assert_contains "$(cat drv.err)" "error[TPM0015]"
    chmod 600 cli.key
    drv GET "https://127.0.0.1:$P/" --cacert ca.pem --cert cli.pem --key cli.key
    assert_eq "$DRC" 0 "$(cat drv.err)"
    assert_contains "$(cat body)" "CN=file-client"
    # a certificate that is not the identity's key is refused before any connection
    drv GET "https://127.0.0.1:$P/" --cacert ca.pem --identity node --cert cli.pem
    assert_eq "$DRC" 3
    assert_contains "$(cat drv.err)" "error[TPM0054]"
    # a code-signing identity does not sign handshakes
    citadel tpm identity init coder --usage code-signing >/dev/null
    drv GET "https://127.0.0.1:$P/" --cacert ca.pem --identity coder --cert node.pem
    assert_eq "$DRC" 3
    assert_contains "$(cat drv.err)" "error[TPM0007]"
}

test_net_http_bodies_and_limits() {
    trap stop_bg EXIT
    python3 "$SERVER" "$T/ready" >"$T/bg.log" 2>&1 &
    BG_PIDS=$!
    wait_ready "$T/ready" "$BG_PIDS"
    # a POST with a body, a content type and extra headers
    drv POST "$U/echo" --data '{"a": 1}' --content-type application/json --header 'X-Test: yes'
    assert_eq "$DRC" 0 "$(cat drv.err)"
    assert_eq "$(json body 'd["method"]')" POST
    assert_eq "$(json body 'd["body"]')" '{"a": 1}'
    assert_eq "$(json body 'd["headers"]["content-type"]')" application/json
    assert_eq "$(json body 'd["headers"]["x-test"]')" yes
    assert_eq "$(json body 'd["headers"]["content-length"]')" 8
    assert_contains "$(json body 'd["headers"]["host"]')" "127.0.0.1:"
    # chunked
    drv GET "$U/chunked"
    assert_eq "$DRC" 0 "$(cat drv.err)"
    assert_eq "$(head -c 21 body)" "hello, chunked worldw"
    assert_eq "$(stat -c %s body)" $((7 + 8 + 5000))
    # no body
    drv GET "$U/notes"
    assert_eq "$DRC" 0
    assert_contains "$(cat drv.err)" "status 204"
    assert_eq "$(stat -c %s body)" 0
    # an interim 100 Continue before the answer; HEAD has no body whatever Content-Length says
    drv GET "$U/interim"
    assert_eq "$DRC" 0 "$(cat drv.err)"
    assert_eq "$(json body 'd["after"]')" interim
    drv HEAD "$U/echo" --timeout 5
    assert_eq "$DRC" 0 "$(cat drv.err)"
    assert_contains "$(cat drv.err)" "status 200"
    assert_eq "$(stat -c %s body)" 0
    # over the 16 MiB cap, with Content-Length and delimited by the close
    for p in big bigclose; do
        drv GET "$U/$p"
        assert_eq "$DRC" 6 "$p"
        assert_contains "$(cat drv.err)" "error[TPM0199]"
        assert_contains "$(cat drv.err)" "larger than"
    done
    # a server that does not answer in time
    s=$SECONDS
    drv GET "$U/slow" --timeout 1
    assert_eq "$DRC" 6
    assert_contains "$(cat drv.err)" "error[TPM0198]"
    [ $((SECONDS - s)) -le 3 ] || fail "the timeout took $((SECONDS - s)) s"
    # header injection and bad URLs are refused before connecting
    drv GET "$U/echo" --header $'X-A: b\r\nX-Evil: 1'
    assert_eq "$DRC" 2
    drv GET "ftp://127.0.0.1/"
    assert_eq "$DRC" 2
    drv 'GE T' "$U/echo"
    assert_eq "$DRC" 2
    # a name that does not resolve
    drv GET "http://nonexistent.invalid/"
    assert_eq "$DRC" 6
    assert_contains "$(cat drv.err)" "error[TPM0196]"
}

test_net_tls_host_name_is_checked() {
    net_ca
    # a certificate for another name than the one in the URL
    printf 'subjectAltName=DNS:other.example\n' >ext2
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o.key -out o.csr -subj /CN=other.example \
        >/dev/null 2>&1
    issue o.csr o.pem ext2
    trap stop_bg EXIT
    python3 "$SERVER" "$T/ready" --cert o.pem --key o.key >"$T/bg.log" 2>&1 &
    BG_PIDS=$!
    wait_ready "$T/ready" "$BG_PIDS"
    drv GET "$U/echo" --cacert ca.pem
    assert_eq "$DRC" 6
    assert_contains "$(cat drv.err)" "error[TPM0197]"
    assert_contains "$(cat drv.err)" "does not match"
    stop_bg
    # the same server with a certificate for 127.0.0.1 is accepted, over TLS, with chunked bodies
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout g.key -out g.csr -subj /CN=localhost \
        >/dev/null 2>&1
    issue g.csr g.pem ext
    rm -f "$T/ready"
    python3 "$SERVER" "$T/ready" --cert g.pem --key g.key >"$T/bg.log" 2>&1 &
    BG_PIDS=$!
    wait_ready "$T/ready" "$BG_PIDS"
    drv GET "$U/chunked" --cacert ca.pem
    assert_eq "$DRC" 0 "$(cat drv.err)"
    assert_eq "$(stat -c %s body)" $((7 + 8 + 5000))
    # a TLS server that does not answer in time
    s=$SECONDS
    drv GET "$U/slow" --cacert ca.pem --timeout 1
    assert_eq "$DRC" 6
    assert_contains "$(cat drv.err)" "error[TPM0198]"
    [ $((SECONDS - s)) -le 3 ] || fail "the timeout took $((SECONDS - s)) s"
}
