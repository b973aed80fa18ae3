# SPDX-License-Identifier: Apache-2.0
# Enrollment (docs/enrollment.md): enrolld and `citadel node` / `citadel enroll`, each step on its
# own and the whole flow, on real vTPMs: a server workspace with its CA, node workspaces each with
# their own TPM state and factory CA. Certificates are checked with openssl, TLS with curl.

source "$ROOT/tests/lib/enroll.sh"

test_enroll_help_and_refusals() {
    out=$("$ENROLLD_BIN" --help)
    for w in --store-path --db --ca --tls-cert --keys-file --ek-ca --pcrs --pcr-policy --nonce-ttl --auto-approve \
        --max-body --tokens-file; do
        assert_contains "$out" "$w"
    done
    server_setup
    # HTTPS only: no certificate, no start
    rc=0
    "$ENROLLD_BIN" --store-path "$T/srv/store.db" >"$T/o" 2>&1 || rc=$?
    assert_eq "$rc" 2
    assert_contains "$(cat "$T/o")" "--tls-cert"
    # a TLS key others can read is refused
    chmod 644 "$T/srv/tls.key"
    rc=0
    "$ENROLLD_BIN" --store-path "$T/srv/store.db" --tls-cert "$T/srv/tls.pem" --tls-key "$T/srv/tls.key" \
        --listen 127.0.0.1:0 >"$T/o" 2>&1 || rc=$?
    assert_ne "$rc" 0
    assert_contains "$(cat "$T/o")" "TPM0015"
    chmod 600 "$T/srv/tls.key"
    # an unknown CA stops the start with the CA's code
    rc=0
    "$ENROLLD_BIN" --store-path "$T/srv/store.db" --tls-cert "$T/srv/tls.pem" --tls-key "$T/srv/tls.key" \
        --ca nosuch --listen 127.0.0.1:0 >"$T/o" 2>&1 || rc=$?
    assert_eq "$rc" 13
    # plain HTTP only on loopback
    rc=0
    "$ENROLLD_BIN" --store-path "$T/srv/store.db" --insecure-http --listen 0.0.0.0:0 >"$T/o" 2>&1 || rc=$?
    assert_eq "$rc" 2
}

# Step 1: the node's EK, EK certificate, AK public and DevID material; the server answers a
# credential for that EK bound to the AK's name, which only that TPM can activate.
test_enroll_step1_start() {
    server_setup
    node_setup n1
    start_enrolld
    start_body n1
    req POST /v1/enroll/start "$T/n1/start.json"
    assert_eq "$CODE" 200 "$(cat "$T/resp")"
    cp "$T/resp" "$T/n1/started.json"
    assert_eq "$(jq -r '.nonce|length' "$T/resp")" 64
    assert_eq "$(jq -c .pcrs "$T/resp")" "[0,2,4,7]"
    assert_eq "$(jq -r .ak_name "$T/resp")" "$(node n1 --json attest ak-show enroll/ak | jq -r .ak_name)"
    assert_eq "$(jq -r .credential.ak_name "$T/resp")" "$(jq -r .ak_name "$T/resp")"
    # the credential opens in this TPM, with this AK: a 32-byte secret
    jq .credential "$T/resp" >"$T/cred.json"
    s=$(node n1 --json attest credential activate --ak enroll/ak --input "$T/cred.json" | jq -r .secret_hex)
    assert_eq "${#s}" 64
    # recorded as started, audited
    id=$(jq -r .enrollment_id "$T/resp")
    assert_eq "$(admin --json show "$id" | jq -r .status)" started
    assert_eq "$(audit_last | jq -r .event)" enroll.start
    # the EK checks the server ran are recorded
    assert_eq "$(admin --json show "$id" | jq -r '[.ek_checks[]|select(.check=="chain")|.verdict][0]')" pass
}

# Step 3: activation, quote over the nonce, certify of the DevID key; the node is then pending.
test_enroll_step3_finish() {
    server_setup
    node_setup n1
    start_enrolld
    start_body n1
    req POST /v1/enroll/start "$T/n1/start.json"
    cp "$T/resp" "$T/n1/started.json"
    id=$(jq -r .enrollment_id "$T/resp")
    finish_body n1
    # the quote and the certify verify with tools we did not write: the quote's signature with
    # openssl over the AK public the server recorded
    req POST "/v1/enroll/$id/finish" "$T/n1/finish.json"
    assert_eq "$CODE" 200 "$(cat "$T/resp")"
    assert_eq "$(jq -r .status "$T/resp")" pending
    tok=$(jq -r .fetch_token "$T/resp")
    assert_eq "${#tok}" 64
    assert_eq "$(admin --json show "$id" | jq -r .status)" pending
    assert_eq "$(audit_last | jq -r .event)" enroll.finish
    # the fetch route needs the token
    req GET "/v1/enroll/$id" ""
    assert_eq "$CODE" 401
    assert_eq "$(errcode)" TPM0180
    req GET "/v1/enroll/$id" "" -H "X-Enroll-Token: $tok"
    assert_eq "$CODE" 200
    assert_eq "$(jq -r .status "$T/resp")" pending
    assert_eq "$(jq -r .devid_cert "$T/resp")" null
}

# The whole flow: node enroll, operator approval, certificates fetched into the identity,
# mutual TLS with the DevID key in the TPM.
test_enroll_whole_flow() {
    server_setup
    node_setup n1
    start_enrolld
    out=$(enroll n1 --json)
    assert_eq "$(printf '%s' "$out" | jq -r .status)" pending
    assert_eq "$(printf '%s' "$out" | jq -c .created)" '["enroll/ak","devid"]'
    assert_mode "$T/n1/store.db.enroll.json" 600
    # fetching before approval: pending, exit 14
    rc=0
    node n1 node fetch >/dev/null || rc=$?
    assert_eq "$rc" 14
    # the operator
    assert_eq "$(admin --json list --status pending | jq -r '.nodes[0].host')" n1
    ap=$(admin --json approve n1)
    assert_eq "$(printf '%s' "$ap" | jq -r .status)" approved
    assert_eq "$(printf '%s' "$ap" | jq -r .decided_by)" key:ops
    assert_eq "$(audit_last | jq -r .event)" enroll.approve
    # the node fetches its certificates
    f=$(node n1 --json node fetch)
    assert_eq "$(printf '%s' "$f" | jq -r .status)" approved
    serial=$(printf '%s' "$f" | jq -r .devid_serial)
    # openssl: both certificates chain to the CA and are not revoked
    admin crl --output "$T/crl.pem" >/dev/null
    admin --json show n1 | jq -r .devid_cert >"$T/devid.pem"
    openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/ca.pem" "$T/devid.pem" >/dev/null
    openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/ca.pem" "$T/n1/store.db.enroll-ak.pem" >/dev/null
    # the DevID certificate is for the identity's TPM key, the AK certificate for the AK
    assert_eq "$(openssl x509 -in "$T/devid.pem" -noout -pubkey)" \
        "$(node n1 --json identity show devid | jq -r .public_key_pem | sed '/^$/d')"
    assert_eq "$(openssl x509 -in "$T/n1/store.db.enroll-ak.pem" -noout -pubkey)" \
        "$(node n1 --json attest ak-show enroll/ak | jq -r .ak_public_pem | sed '/^$/d')"
    assert_eq "$(openssl x509 -in "$T/devid.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)" "$serial"
    assert_contains "$(openssl x509 -in "$T/devid.pem" -noout -subject)" "CN = n1"
    # the TPM's identity (the EK fingerprint) in a HardwareModuleName (hwType 2.23.133.1.2)
    off=$(openssl asn1parse -in "$T/devid.pem" | grep -A1 "X509v3 Subject Alternative Name" | tail -1 | cut -d: -f1 | tr -d ' ')
    parsed=$(openssl asn1parse -in "$T/devid.pem" -strparse "$off")
    assert_contains "$parsed" ":2.23.133.1.2"
    ekfpr=$(node n1 --json ek show --algorithm ecc-p256 | jq -r .fingerprint_sha256)
    assert_contains "$parsed" "[HEX DUMP]:$(printf '%s' "$ekfpr" | tr a-f A-F)"
    # mutual TLS: the node's settings over TLS with the DevID key signing in the TPM
    c=$(node n1 --json node config)
    assert_eq "$(printf '%s' "$c" | jq -r .host)" n1
    # without a client certificate the node routes refuse
    req GET /v1/node/config ""
    assert_eq "$CODE" 401
    assert_eq "$(errcode)" TPM0179
    # the server's certificate verifies for curl and openssl s_client with the CA
    echo | openssl s_client -connect "${U#https://}" -CAfile "$T/ca.pem" -verify_return_error >/dev/null 2>&1
    # the audit chain of the server's workspace holds
    srv audit chain verify >/dev/null
}

test_enroll_auto_approve() {
    server_setup
    node_setup n1
    start_enrolld --auto-approve
    out=$(enroll n1 --json)
    assert_eq "$(printf '%s' "$out" | jq -r .status)" approved
    assert_eq "$(node n1 --json node status | jq -r .status)" approved
    node n1 --json node config >/dev/null
    assert_eq "$(admin --json show n1 | jq -r .decided_by)" "auto-approve policy"
}

test_enroll_deny() {
    server_setup
    node_setup n1
    start_enrolld
    enroll n1 >/dev/null
    assert_eq "$(admin --json deny n1 --reason 'unknown machine' | jq -r .status)" denied
    expect_fail 14 TPM0177 admin approve n1
    assert_eq "$(node n1 --json node fetch | jq -r .status)" denied
    expect_fail 14 TPM0184 node n1 node config
}

# Renewal: a fresh nonce over mutual TLS, the quote and certify again, new certificates; the old
# DevID certificate is revoked as superseded.
test_enroll_renew() {
    server_setup
    node_setup n1
    start_enrolld --auto-approve
    enroll n1 >/dev/null
    old=$(node n1 --json node status | jq -r .devid_serial)
    oldak=$(admin --json show n1 | jq -r .ak_serial)
    # not due yet: nothing asked of the server
    nd=$(node n1 --json node renew --before 30)
    assert_eq "$(printf '%s' "$nd" | jq -r .status)" not-due
    assert_eq "$(node n1 --json node status | jq -r .devid_serial)" "$old"
    r=$(node n1 --json node renew --before 400)
    new=$(printf '%s' "$r" | jq -r .devid_serial)
    assert_ne "$new" "$old"
    assert_eq "$(srv --json ca status "$old" | jq -r .status)" revoked
    assert_eq "$(srv --json ca status "$new" | jq -r .status)" valid
    assert_eq "$(srv --json ca status "$oldak" | jq -r .status)" revoked
    assert_eq "$(srv --json ca status "$(admin --json show n1 | jq -r .ak_serial)" | jq -r .status)" valid
    node n1 --json node config >/dev/null
    assert_eq "$(audit_last | jq -r .event)" enroll.renew
}

# Revocation: refused at once, in the CRL.
test_enroll_revoke() {
    server_setup
    node_setup n1
    start_enrolld --auto-approve
    enroll n1 >/dev/null
    node n1 node config >/dev/null
    admin --json show n1 | jq -r .devid_cert >"$T/devid.pem"
    assert_eq "$(admin --json revoke n1 --reason keyCompromise | jq -r .status)" revoked
    expect_fail 14 TPM0178 node n1 node config
    assert_eq "$(audit_last | jq -r .event)" enroll.auth-failed
    admin crl --output "$T/crl.pem" >/dev/null
    rc=0
    openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/ca.pem" "$T/devid.pem" >"$T/o" 2>&1 || rc=$?
    assert_ne "$rc" 0
    assert_contains "$(cat "$T/o")" "revoked"
    expect_fail 14 TPM0177 admin revoke n1
}

# Settings: global -> group -> node, each with its source.
test_enroll_config_hierarchy() {
    server_setup
    node_setup n1
    start_enrolld --auto-approve
    enroll n1 --group web >/dev/null
    admin config-set log_level info >/dev/null
    admin config-set interval 60 >/dev/null
    admin config-set interval 30 --scope group:web >/dev/null
    admin config-set owner alice --scope node:n1 >/dev/null
    admin config-set log_level debug --scope node:n1 >/dev/null
    c=$(node n1 --json node config)
    assert_eq "$(printf '%s' "$c" | jq -r .group)" web
    assert_eq "$(printf '%s' "$c" | jq -c '.settings.interval|[.value,.source]')" '["30","group:web"]'
    assert_eq "$(printf '%s' "$c" | jq -c '.settings.log_level|[.value,.source]')" '["debug","node:n1"]'
    assert_eq "$(printf '%s' "$c" | jq -c '.settings.log_level.overrides[0]')" '{"source":"global","value":"info"}'
    assert_eq "$(printf '%s' "$c" | jq -c '.settings.owner|[.value,.source]')" '["alice","node:n1"]'
    # the operator sees the same; deleting a node setting uncovers the group's
    assert_eq "$(admin --json config-get n1 | jq -r .settings.interval.value)" 30
    admin config-set interval --scope group:web >/dev/null
    assert_eq "$(node n1 --json node config | jq -c '.settings.interval|[.value,.source]')" '["60","global"]'
    expect_fail 2 TPM0043 admin config-set 'bad key' x
}

# Re-enrollment after a TPM clear (the playbook in docs/enrollment.md), on swtpm: the clear loses
# the AK and the DevID key; `repair apply` retires them; `node enroll` makes new ones, and once
# the new activation proves the same EK, the server supersedes the old enrollment (its
# certificates revoked).
test_enroll_reenroll_after_tpm_clear() {
    server_setup
    start_swtpm
    sw() { TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI "$@"; }
    mkdir -p "$T/sw"
    sw node sw init >/dev/null
    sw factory_ek_cert sw
    start_enrolld --auto-approve
    sw enroll sw >/dev/null
    old=$(sw node sw --json node status | jq -r .devid_serial)
    sw node sw node config >/dev/null
    tpm2_clear -T "$SWTPM_TCTI" -c l
    assert_eq "$(sw node sw --json recover list | jq -c '[.playbooks[]|select(.name=="tpm-cleared")|.fires]')" "[true]"
    rc=0
    sw node sw node config >/dev/null 2>&1 || rc=$?
    assert_ne "$rc" 0 "the DevID key is gone with the clear"
    sw node sw repair apply >/dev/null
    # the clear also removed the owner-created NV index of this test's EK certificate (a real
    # manufacturer's is platform-created and survives): store it again. The EK is the same.
    sw node sw ek cert-import --algorithm ecc-p256 --input "$T/sw/ek.der" >/dev/null
    # the AK (under the EK) did not survive the clear either: new keys
    out=$(sw enroll sw --json --new-keys)
    assert_eq "$(printf '%s' "$out" | jq -r .status)" approved
    assert_eq "$(printf '%s' "$out" | jq -c '.replaced|sort')" '["devid","enroll/ak"]'
    sw node sw node config >/dev/null
    assert_eq "$(admin --json list --status superseded | jq -r '.nodes[0].host')" sw
    assert_eq "$(srv --json ca status "$old" | jq -r .status)" revoked
    assert_eq "$(admin --json list --status approved | jq '.nodes|length')" 1
}

# The event log: a node sends its measured-boot log with the quote; the server replays it
# against the quoted PCRs (--require-eventlog makes it mandatory). n1's PCRs are extended with the
# log's own sha256 digests (what its firmware would have done); n2's are not.
test_enroll_eventlog_replay() {
    server_setup
    node_setup n1
    node_setup n2
    log="$ROOT/tests/data/eventlog/event.bin"
    node n1 --json attest eventlog show "$log" |
        jq -r '.events[]|select((.pcr|IN(0,2,4,7)) and .type != "EV_NO_ACTION" and .digests.sha256 != null)|"\(.pcr) \(.digests.sha256)"' \
            >"$T/extends"
    [ -s "$T/extends" ] || fail "the log has no sha256 events for PCRs 0,2,4,7"
    while read -r pcr dg; do node n1 pcr extend --index "$pcr" --digest "$dg" >/dev/null; done <"$T/extends"
    start_enrolld --auto-approve --require-eventlog
    expect_fail 14 TPM0176 enroll n1
    out=$(enroll n1 --json --eventlog "$log")
    assert_eq "$(printf '%s' "$out" | jq -r .status)" approved
    assert_eq "$(admin --json show n1 | jq -r .quote.eventlog)" true
    s=$(audit_seq)
    expect_fail 14 TPM0175 enroll n2 --eventlog "$log"
    assert_contains "$ERR" "eventlog"
    assert_rejected_audited "$s" TPM0175
}

# An RSA EK (TCG template L-1) and an RSA AK: RSA-OAEP credential, RSASSA quote and certify; the
# DevID key stays ECC (TLS).
test_enroll_rsa_ek() {
    server_setup
    node_setup n1
    start_enrolld --auto-approve
    assert_eq "$(enroll n1 --json --algorithm rsa-2048 | jq -r .status)" approved
    assert_eq "$(node n1 --json attest ak-show enroll/ak | jq -r .algorithm)" rsa-2048
    admin --json show n1 | jq -r .ak_cert >"$T/ak.pem"
    assert_contains "$(openssl x509 -in "$T/ak.pem" -noout -text)" "rsaEncryption"
    node n1 node config >/dev/null
}

# Every route of docs/openapi-enroll.yaml exists (answers something other than "no route"), and a
# route that is not there is TPM0152.
test_enroll_openapi_routes_exist() {
    server_setup
    start_enrolld
    python3 - "$ROOT/docs/openapi-enroll.yaml" >"$T/routes" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for path, ops in d["paths"].items():
    for m in ops:
        p = path.replace("{id}", "0123abcd").replace("{node}", "n1").replace("{decision}", "approve")
        print(m.upper(), p)
PY
    [ "$(wc -l <"$T/routes")" -ge 13 ] || fail "too few routes in the OpenAPI file"
    while read -r m p; do
        printf '{}' >"$T/empty.json"
        req "$m" "$p" "$T/empty.json" -H "X-API-Key: $ADMIN_KEY"
        [ "$CODE" != 404 ] || [ "$(errcode)" != TPM0152 ] || fail "$m $p: no such route"
    done <"$T/routes"
    req GET /v1/nosuch ""
    assert_eq "$CODE" 404
    assert_eq "$(errcode)" TPM0152
}

# The server's own TLS key in its TPM (--tls-identity): both ends of the mutual TLS sign their
# handshakes in their TPMs; openssl s_client verifies the server's certificate.
test_enroll_server_key_in_tpm() {
    server_setup
    node_setup n1
    srv identity init enrolld-tls --usage tls-server >/dev/null
    srv identity csr enrolld-tls --subject CN=127.0.0.1 --output "$T/srv/id.csr" >/dev/null
    srv ca issue --ca enroll --csr "$T/srv/id.csr" --profile tls-server --san IP:127.0.0.1 \
        --output "$T/srv/id.pem" >/dev/null
    srv identity cert-import enrolld-tls --input "$T/srv/id.pem" >/dev/null
    rm -f "$T/ready"
    "$ENROLLD_BIN" --store-path "$T/srv/store.db" --tls-identity enrolld-tls --keys-file "$T/srv/keys" \
        --auto-approve --listen 127.0.0.1:0 --ready-file "$T/ready" >>"$T/enrolld.log" 2>&1 &
    ENROLLD_PID=$!
    trap 'stop_enrolld; stop_swtpm' EXIT
    local deadline=$((SECONDS + 20))
    until [ -s "$T/ready" ]; do
        kill -0 "$ENROLLD_PID" 2>/dev/null || fail "enrolld exited: $(tail -20 "$T/enrolld.log")"
        [ $SECONDS -lt $deadline ] || fail "enrolld did not come up"
        sleep 0.02
    done
    U=$(cat "$T/ready")
    assert_contains "$(cat "$T/enrolld.log")" "TLS key in the TPM"
    echo | openssl s_client -connect "${U#https://}" -CAfile "$T/ca.pem" -verify_return_error >"$T/o" 2>&1 ||
        fail "s_client: $(tail -5 "$T/o")"
    assert_eq "$(enroll n1 --json | jq -r .status)" approved
    node n1 node config >/dev/null
}
