# SPDX-License-Identifier: Apache-2.0
# Enrollment under attack and bad input (docs/enrollment.md, "Rejections"): each is refused with
# its code, is an enroll.reject (or enroll.auth-failed) entry of the server's audit log, and
# changes nothing (the node's record keeps its status; nothing is issued).

source "$ROOT/tests/lib/enroll.sh"

# post_start NAME: POST $T/NAME/start.json; CODE/resp as req
post_start() { req POST /v1/enroll/start "$T/$1/start.json"; }

# started NAME: start must succeed; the answer in $T/NAME/started.json, the id in ID
started() {
    post_start "$1"
    assert_eq "$CODE" 200 "$(cat "$T/resp")"
    cp "$T/resp" "$T/$1/started.json"
    ID=$(jq -r .enrollment_id "$T/resp")
}

nodes_count() { admin --json list | jq '.nodes|length'; }

# A manufacturer CA the server trusts and an EK certificate it issued for the node's EK public key,
# expired since 2021 (python's cryptography, not our code).
expired_ek_cert() {
    python3 "$ROOT/tests/lib/ek-cert.py" "$T/$1/ek.pem" "$T/evil-ca.pem" "$T/$1/ek-expired.der" "Old Factory CA" 2019 2021
}

test_attack_ek_cert_untrusted_ca() {
    server_setup
    node_setup n1 untrusted
    start_enrolld
    s=$(audit_seq)
    expect_fail 9 TPM0082 enroll n1
    assert_rejected_audited "$s" TPM0082
    assert_eq "$(nodes_count)" 0
    # trusted once its factory CA is added and the server reloads its trust store (SIGHUP)
    srv ca trust add n1 --store manufacturers "$T/n1/factory.pem" >/dev/null
    kill -HUP "$ENROLLD_PID"
    local deadline=$((SECONDS + 10))
    until grep -q enroll.server-reload "$T/enrolld.log"; do
        [ $SECONDS -lt $deadline ] || fail "no reload"
        sleep 0.02
    done
    enroll n1 >/dev/null
}

test_attack_ek_cert_expired() {
    server_setup
    node_setup n1
    start_body n1
    expired_ek_cert n1
    srv ca trust add oldfactory --store manufacturers "$T/evil-ca.pem" >/dev/null
    start_enrolld
    jq --arg c "$(base64 -w0 "$T/n1/ek-expired.der")" '.ek_cert=$c' "$T/n1/start.json" >"$T/b.json"
    mv "$T/b.json" "$T/n1/start.json"
    s=$(audit_seq)
    post_start n1
    assert_eq "$CODE" 422
    assert_eq "$(errcode)" TPM0083
    assert_rejected_audited "$s" TPM0083
    assert_eq "$(nodes_count)" 0
}

test_attack_ek_cert_not_matching_ek() {
    server_setup
    node_setup n1
    node_setup n2
    start_enrolld
    start_body n1
    start_body n2
    # n1's EK public key with n2's (valid, trusted) certificate
    jq --slurpfile o "$T/n2/start.json" '.ek_cert=$o[0].ek_cert' "$T/n1/start.json" >"$T/b.json"
    mv "$T/b.json" "$T/n1/start.json"
    s=$(audit_seq)
    post_start n1
    assert_eq "$CODE" 422
    assert_eq "$(errcode)" TPM0084
    assert_rejected_audited "$s" TPM0084
    assert_eq "$(nodes_count)" 0
}

test_attack_ak_not_restricted() {
    server_setup
    node_setup n1
    start_enrolld
    start_body n1
    # the DevID key (an unrestricted signing key) posing as the AK
    jq '.ak_public=.devid_public' "$T/n1/start.json" >"$T/b.json"
    mv "$T/b.json" "$T/n1/start.json"
    s=$(audit_seq)
    post_start n1
    assert_eq "$CODE" 422
    assert_eq "$(errcode)" TPM0170
    assert_contains "$(jq -r '.error.causes|join(" ")' "$T/resp")" "restricted"
    assert_rejected_audited "$s" TPM0170
    assert_eq "$(nodes_count)" 0
}

# An EK swap: n1 enrolls its AK under n2's EK (valid and trusted). The credential is for n2's
# TPM, bound to n1's AK name: neither TPM can activate it, and a guessed secret is refused.
test_attack_ek_swap() {
    server_setup
    node_setup n1
    node_setup n2
    start_enrolld
    start_body n2
    start_body n1 n2
    started n1
    jq .credential "$T/n1/started.json" >"$T/cred.json"
    expect_fail 9 TPM0097 node n1 attest credential activate --ak enroll/ak --input "$T/cred.json"
    expect_fail 9 TPM0097 node n2 attest credential activate --ak enroll/ak --input "$T/cred.json"
    SECRET=$(openssl rand -hex 32) finish_body n1
    s=$(audit_seq)
    req POST "/v1/enroll/$ID/finish" "$T/n1/finish.json"
    assert_eq "$CODE" 422
    assert_eq "$(errcode)" TPM0172
    assert_rejected_audited "$s" TPM0172
    assert_eq "$(admin --json show "$ID" | jq -r .status)" started
}

# A replayed finish (activation and quote) and a quote replayed into another enrollment.
test_attack_replay() {
    server_setup
    node_setup n1
    start_enrolld
    start_body n1
    started n1
    finish_body n1
    req POST "/v1/enroll/$ID/finish" "$T/n1/finish.json"
    assert_eq "$CODE" 200
    first=$ID
    cp "$T/n1/finish.json" "$T/finish-a.json"
    s=$(audit_seq)
    req POST "/v1/enroll/$ID/finish" "$T/n1/finish.json"
    assert_eq "$CODE" 409
    assert_eq "$(errcode)" TPM0173
    assert_rejected_audited "$s" TPM0173
    assert_eq "$(admin --json show "$first" | jq -r .status)" pending
    # a new enrollment answered with its own secret but the old quote and certify
    started n1
    finish_body n1
    jq --slurpfile a "$T/finish-a.json" '.quote=$a[0].quote' "$T/n1/finish.json" >"$T/f.json"
    s=$(audit_seq)
    req POST "/v1/enroll/$ID/finish" "$T/f.json"
    assert_eq "$CODE" 422
    assert_eq "$(errcode)" TPM0175
    assert_contains "$(jq -r '.error.causes|join(" ")' "$T/resp")" "nonce"
    assert_rejected_audited "$s" TPM0175
    jq --slurpfile a "$T/finish-a.json" '.certify=$a[0].certify' "$T/n1/finish.json" >"$T/f.json"
    req POST "/v1/enroll/$ID/finish" "$T/f.json"
    assert_eq "$(errcode)" TPM0181
    assert_eq "$(admin --json show "$ID" | jq -r .status)" started
    # the genuine answer still works: the failed attempts changed nothing
    req POST "/v1/enroll/$ID/finish" "$T/n1/finish.json"
    assert_eq "$CODE" 200
}

test_attack_stale_nonce() {
    server_setup
    node_setup n1
    start_enrolld --nonce-ttl 1
    start_body n1
    started n1
    finish_body n1
    sleep 2.1 # the nonce's lifetime, not a wait for a server
    s=$(audit_seq)
    req POST "/v1/enroll/$ID/finish" "$T/n1/finish.json"
    assert_eq "$CODE" 410
    assert_eq "$(errcode)" TPM0174
    assert_rejected_audited "$s" TPM0174
    assert_eq "$(admin --json show "$ID" | jq -r .status)" started
}

test_attack_pcrs_not_meeting_policy() {
    server_setup
    node_setup n1
    printf '{"sha256": {"0": "%s"}}\n' "$(printf 'ff%.0s' $(seq 32))" >"$T/policy.json"
    start_enrolld --pcr-policy "$T/policy.json"
    s=$(audit_seq)
    expect_fail 14 TPM0176 enroll n1
    assert_rejected_audited "$s" TPM0176
    assert_contains "$ERR" "PCR 0"
    # a quote of fewer PCRs than the policy names
    stop_enrolld
    start_enrolld --pcrs 0,2,4,7,9
    start_body n1
    started n1
    jq '.pcrs=[0,2,4,7]' "$T/n1/started.json" >"$T/x.json"
    mv "$T/x.json" "$T/n1/started.json"
    finish_body n1
    req POST "/v1/enroll/$ID/finish" "$T/n1/finish.json"
    assert_eq "$(errcode)" TPM0176
    assert_contains "$(cat "$T/resp")" "PCR 9"
    assert_eq "$(admin --json show "$ID" | jq -r .status)" started
}

test_attack_revoked_node_old_certificate() {
    server_setup
    node_setup n1
    start_enrolld --auto-approve
    enroll n1 >/dev/null
    admin revoke n1 >/dev/null
    s=$(audit_seq)
    expect_fail 14 TPM0178 node n1 node config
    expect_fail 14 TPM0178 node n1 node renew
    [ "$(audit_seq)" -gt "$s" ] || fail "not audited"
    assert_contains "$(audit_last | jq -r .payload)" TPM0178
    assert_eq "$(admin --json show n1 | jq -r .status)" revoked
    # and after a server restart
    stop_enrolld
    start_enrolld
    expect_fail 14 TPM0178 node n1 node config --server "$U"
}

test_attack_body_over_limit() {
    server_setup
    start_enrolld --max-body 4096
    head -c 10000 /dev/zero | tr '\0' a >"$T/big"
    s=$(audit_seq)
    req POST /v1/enroll/start "$T/big"
    assert_eq "$CODE" 413
    assert_eq "$(errcode)" TPM0030
    assert_rejected_audited "$s" TPM0030
    # chunked, without a length: the same
    CODE=$(curl -s --cacert "$T/ca.pem" -o "$T/resp" -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
        --data-binary @"$T/big" "$U/v1/enroll/start")
    assert_eq "$CODE" 413
    # malformed JSON: 400
    printf '{"host":' >"$T/bad"
    req POST /v1/enroll/start "$T/bad"
    assert_eq "$CODE" 400
    assert_eq "$(errcode)" TPM0043
}

test_attack_unauthenticated_admin() {
    server_setup
    node_setup n1
    start_enrolld
    enroll n1 >/dev/null
    s=$(audit_seq)
    req GET /v1/admin/nodes ""
    assert_eq "$CODE" 401
    assert_eq "$(errcode)" TPM0150
    req POST /v1/admin/nodes/n1/approve "" -H "X-API-Key: wrong-key-0123456789abcdef"
    assert_eq "$CODE" 401
    [ "$(audit_seq)" -gt "$s" ] || fail "not audited"
    assert_eq "$(audit_last | jq -r .event)" enroll.auth-failed
    # the node's own DevID certificate is no admin credential, and nothing changed
    ENROLL_API_KEY= expect_fail 12 TPM0150 citadel enroll approve n1 --server "$U" --ca-file "$T/ca.pem"
    assert_eq "$(admin --json show n1 | jq -r .status)" pending
}

test_attack_enrollment_token() {
    server_setup
    node_setup n1
    printf 'tok-0123456789abcdef\n' >"$T/tokens"
    chmod 600 "$T/tokens"
    start_enrolld --tokens-file "$T/tokens"
    s=$(audit_seq)
    expect_fail 14 TPM0180 enroll n1
    expect_fail 14 TPM0180 enroll n1 --token wrong
    assert_rejected_audited "$s" TPM0180
    enroll n1 --token tok-0123456789abcdef >/dev/null
}

# Admin by client certificate (--admin-cn): a certificate of the server's CA with that CN is an
# admin; another CN is refused (403), and so is a certificate of another CA (TLS or 401).
test_attack_admin_client_certificate() {
    server_setup
    node_setup n1
    for cn in ops-admin intruder; do
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$cn.key" 2>/dev/null
        chmod 600 "$T/$cn.key"
        openssl req -new -key "$T/$cn.key" -subj "/CN=$cn" -out "$T/$cn.csr"
        srv ca issue --ca enroll --csr "$T/$cn.csr" --profile tls-client --output "$T/$cn.pem" >/dev/null
    done
    start_enrolld --admin-cn ops-admin
    enroll n1 >/dev/null
    ENROLL_API_KEY= citadel enroll list --server "$U" --ca-file "$T/ca.pem" --cert "$T/ops-admin.pem" \
        --key "$T/ops-admin.key" >/dev/null
    ap=$(ENROLL_API_KEY= citadel --json enroll approve n1 --server "$U" --ca-file "$T/ca.pem" \
        --cert "$T/ops-admin.pem" --key "$T/ops-admin.key")
    assert_eq "$(printf '%s' "$ap" | jq -r .decided_by)" "cert:$(openssl x509 -in "$T/ops-admin.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)"
    s=$(audit_seq)
    ENROLL_API_KEY= expect_fail 12 TPM0151 citadel enroll revoke n1 --server "$U" --ca-file "$T/ca.pem" \
        --cert "$T/intruder.pem" --key "$T/intruder.key"
    [ "$(audit_seq)" -gt "$s" ] || fail "not audited"
    # a self-signed certificate with the admin's CN
    openssl req -x509 -new -key "$T/intruder.key" -subj /CN=ops-admin -days 1 -out "$T/self.pem"
    rc=0
    ENROLL_API_KEY= citadel enroll revoke n1 --server "$U" --ca-file "$T/ca.pem" --cert "$T/self.pem" \
        --key "$T/intruder.key" >/dev/null 2>&1 || rc=$?
    assert_ne "$rc" 0
    # a revoked admin certificate is refused at once
    srv ca revoke "$(openssl x509 -in "$T/ops-admin.pem" -noout -serial | cut -d= -f2)" >/dev/null
    ENROLL_API_KEY= expect_fail 14 TPM0178 citadel enroll list --server "$U" --ca-file "$T/ca.pem" \
        --cert "$T/ops-admin.pem" --key "$T/ops-admin.key"
    assert_eq "$(admin --json show n1 | jq -r .status)" approved
}

# A node that enrolled under the admin's CN gets a DevID certificate with CN=ops-admin from the
# same CA: it is still a node's certificate, never an admin's (the TLS handshake is signed in its
# TPM by tests/drivers/http-driver).
test_attack_node_certificate_as_admin() {
    server_setup
    node_setup n1
    start_enrolld --auto-approve --admin-cn ops-admin
    node n1 node enroll --server "$U" --ca-file "$T/ca.pem" --host ops-admin >/dev/null
    TPM_STORE_PATH="$T/n1/store.db" "$ROOT/$B/tests/http-driver" GET "$U/v1/node/config" --cacert "$T/ca.pem" \
        --identity devid >/dev/null 2>"$T/o"
    assert_contains "$(cat "$T/o")" "status 200"
    rc=0
    TPM_STORE_PATH="$T/n1/store.db" "$ROOT/$B/tests/http-driver" POST "$U/v1/admin/nodes/ops-admin/revoke" \
        --cacert "$T/ca.pem" --identity devid >"$T/resp" 2>"$T/o" || rc=$?
    assert_contains "$(cat "$T/o")" "status 403"
    assert_eq "$(errcode)" TPM0151
    assert_eq "$(admin --json show ops-admin | jq -r .status)" approved
}

# Another TPM enrolling under a host name that an approved node holds is not auto-approved: it
# waits for an operator, and the first node keeps working.
test_attack_host_name_takeover() {
    server_setup
    node_setup n1
    node_setup n2
    start_enrolld --auto-approve
    enroll n1 --host web-1 >/dev/null
    node n2 node enroll --server "$U" --ca-file "$T/ca.pem" --host web-1 >/dev/null
    assert_eq "$(node n2 --json node status | jq -r .status)" pending
    assert_contains "$(admin --json show web-1 | jq -r .held_for_operator)" "another TPM"
    assert_eq "$(admin --json list --status approved | jq -r '.nodes|length')" 1
    node n1 node config >/dev/null
    # the same TPM enrolling again is approved (and supersedes its earlier enrollment)
    enroll n1 --host web-1 >/dev/null
    assert_eq "$(node n1 --json node status | jq -r .status)" approved
}

# A software AK (the gap behind PYSEC-2022-184): a key made with openssl, its TPM2B_PUBLIC
# claiming restricted, fixedTPM, fixedParent (tpm2_loadexternal takes any attributes for a
# public-only object), sent with a genuine, trusted EK. The server cannot tell from the public
# area, so it answers a credential; but the TPM releases it only to an object it can authorize:
# the public-only one has no authValue (TPM_RC_AUTH_UNAVAILABLE), and with its private part the
# TPM refuses fixedTPM on an external object. A guessed secret is refused, nothing is issued, and
# no quote by that key is ever looked at.
test_attack_software_ak() {
    server_setup
    start_swtpm
    export TPM2TOOLS_TCTI=$SWTPM_TCTI
    sw() { TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI "$@"; }
    mkdir -p "$T/sw"
    sw node sw init >/dev/null
    sw factory_ek_cert sw
    start_enrolld
    sw start_body sw
    # the forged AK
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/soft.key" 2>/dev/null
    openssl pkey -in "$T/soft.key" -pubout -out "$T/soft.pub.pem"
    attrs="restricted|sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth"
    tpm2_loadexternal -C n -G ecc:ecdsa-sha256:null -u "$T/soft.pub.pem" -a "$attrs" -c "$T/soft.ctx" >/dev/null
    tpm2_readpublic -c "$T/soft.ctx" -o "$T/soft.tpm2b" >/dev/null
    tpm2_flushcontext -t
    jq --arg ak "$(base64 -w0 "$T/soft.tpm2b")" '.ak_public=$ak' "$T/sw/start.json" >"$T/b.json"
    mv "$T/b.json" "$T/sw/start.json"
    req POST /v1/enroll/start "$T/sw/start.json"
    assert_eq "$CODE" 200 "the forged attributes pass the public-area check: $(cat "$T/resp")"
    cp "$T/resp" "$T/sw/started.json"
    ID=$(jq -r .enrollment_id "$T/resp")
    # the credential in tpm2-tools' format (header 0xBADCC0DE, version 1, the two TPM2Bs)
    { printf '\xba\xdc\xc0\xde\x00\x00\x00\x01'
      jq -r .credential.credential_blob "$T/resp" | base64 -d
      jq -r .credential.encrypted_secret "$T/resp" | base64 -d; } >"$T/cred.bin"
    tpm2_createek -c 0x81010001 -G ecc -u "$T/ek.pub" >/dev/null
    activate() {
        tpm2_startauthsession --policy-session -S "$T/s.ctx"
        tpm2_policysecret -S "$T/s.ctx" -c e >/dev/null
        rc=0
        tpm2_activatecredential -c "$1" -C 0x81010001 -i "$T/cred.bin" -o "$T/out.bin" -P "session:$T/s.ctx" \
            >"$T/o" 2>&1 || rc=$?
        tpm2_flushcontext "$T/s.ctx" 2>/dev/null || true
        return $rc
    }
    tpm2_loadexternal -C n -G ecc:ecdsa-sha256:null -u "$T/soft.pub.pem" -a "$attrs" -c "$T/soft.ctx" >/dev/null
    ! activate "$T/soft.ctx" || fail "the TPM released the secret to a public-only object"
    assert_contains "$(cat "$T/o")" "0x12F"
    tpm2_flushcontext -t
    rc=0
    tpm2_loadexternal -C n -G ecc:ecdsa-sha256:null -r "$T/soft.key" -a "$attrs" -c "$T/soft2.ctx" >"$T/o" 2>&1 || rc=$?
    assert_ne "$rc" 0 "the TPM loaded a software key marked fixedTPM"
    # the genuine AK of this TPM does not have that name either
    expect_fail 9 TPM0097 sw node sw attest credential activate --ak enroll/ak --input "$T/cred.bin"
    # all that is left is guessing
    jq --arg s "$(openssl rand -hex 32)" --arg n "$(jq -r .nonce "$T/resp")" \
        '{secret:$s, quote:{attest:"AA==",signature:"AA==",pcrs:{},nonce:$n}, certify:{attest:"AA==",signature:"AA=="}}' \
        -n >"$T/f.json"
    s=$(audit_seq)
    req POST "/v1/enroll/$ID/finish" "$T/f.json"
    assert_eq "$(errcode)" TPM0172
    assert_rejected_audited "$s" TPM0172
    assert_eq "$(admin --json show "$ID" | jq -r .status)" started
}

# A certificate revoked by hand first (`citadel ca revoke SERIAL`): revoking the node afterwards
# still succeeds (already revoked counts as done) and revokes the other certificate too: the AK
# certificate is on the CRL (openssl verify -crl_check).
test_attack_revoke_after_ca_revoke() {
    server_setup
    node_setup n1
    start_enrolld --auto-approve
    enroll n1 >/dev/null
    admin --json show n1 >"$T/show.json"
    jq -r .ak_cert "$T/show.json" >"$T/ak.pem"
    jq -r .devid_cert "$T/show.json" >"$T/devid.pem"
    serial=$(openssl x509 -noout -serial -in "$T/devid.pem" | cut -d= -f2)
    srv ca revoke "$serial" --reason keyCompromise >/dev/null
    assert_eq "$(admin --json revoke n1 | jq -r .status)" revoked
    admin crl --output "$T/crl.pem" >/dev/null
    for c in ak devid; do
        rc=0
        openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/ca.pem" "$T/$c.pem" >"$T/o" 2>&1 || rc=$?
        assert_ne "$rc" 0
        assert_contains "$(cat "$T/o")" "revoked"
    done
}

# Anyone may start an enrollment without --tokens-file, with any host name: starts for web-1 by
# another TPM make `approve web-1` ambiguous, so it refuses and names the enrollment ids; the id
# always works. Started enrollments expire with their nonce and then no longer count.
test_attack_host_name_flood_ambiguous() {
    server_setup
    node_setup n1
    node_setup n2
    start_enrolld --nonce-ttl 4
    enroll n1 --host web-1 >/dev/null
    real=$(admin --json list --status pending | jq -r '.nodes[0].id')
    start_body n2
    jq '.host="web-1"' "$T/n2/start.json" >"$T/n2/web1.json"
    req POST /v1/enroll/start "$T/n2/web1.json"
    assert_eq "$CODE" 200
    fake=$(jq -r .enrollment_id "$T/resp")
    s=$(audit_seq)
    expect_fail 14 TPM0187 admin approve web-1
    assert_contains "$ERR" "$real"
    assert_contains "$ERR" "$fake"
    assert_rejected_audited "$s" TPM0187
    expect_fail 14 TPM0187 admin revoke web-1
    assert_eq "$(admin --json show "$real" | jq -r .status)" pending
    # once the attacker's nonce expired, the host name names one enrollment again
    sleep 5.1 # the nonce's lifetime, not a wait for a server
    assert_eq "$(admin --json approve web-1 | jq -r .id)" "$real"
    assert_eq "$(admin --json show "$fake" | jq -r .status)" expired
    assert_eq "$(node n1 --json node fetch | jq -r .status)" approved
}

# The open (started) enrollments are capped (--max-pending): beyond, 503 with its code, audited;
# expired ones do not count.
test_attack_start_flood_capped() {
    server_setup
    node_setup n1
    start_enrolld --max-pending 2 --nonce-ttl 2
    start_body n1
    started n1
    started n1
    s=$(audit_seq)
    post_start n1
    assert_eq "$CODE" 503
    assert_eq "$(errcode)" TPM0186
    assert_rejected_audited "$s" TPM0186
    assert_eq "$(nodes_count)" 2
    sleep 3.1 # the nonce's lifetime, not a wait for a server
    started n1
    assert_eq "$(admin --json list --status expired | jq -r '.nodes|length')" 2
}

# A renewal racing a revoke (each step is a compare-and-set on the node's version): whichever
# commits first, once both are over every DevID and AK certificate the CA ever issued is revoked
# (a renewal that lost revokes what it had just issued; a revoke after a renewal revokes the
# renewed certificates). Several rounds with the revoke sent at different moments of the renewal.
test_attack_renew_racing_revoke() {
    server_setup
    node_setup n1
    start_enrolld --auto-approve
    for delay in 0.05 0.2 0.35 0.5; do
        enroll n1 >/dev/null
        (node n1 node renew --before 400 >/dev/null 2>&1 || true) &
        rp=$!
        sleep "$delay"
        admin revoke n1 >/dev/null
        wait "$rp"
        srv --json ca show enroll >"$T/issued.json"
        left=$(jq -r '[.certificates[] | select((.profile=="devid" or .profile=="ak") and .status!="revoked") | .serial] | join(" ")' "$T/issued.json")
        assert_eq "$left" "" "certificates left valid after the revoke (delay $delay)"
        assert_eq "$(admin --json list --status approved | jq -r '.nodes|length')" 0
    done
    assert_ne "$(jq '[.certificates[] | select(.profile=="devid")] | length' "$T/issued.json")" 4
}

# Two TPMs finishing at the same moment under one host name (auto-approve): the host check is in
# the compare-and-set, so exactly one is approved and the other waits for the operator, its
# just-issued certificates revoked. Several rounds, each with its own host name.
test_attack_host_name_race_auto_approve() {
    server_setup
    node_setup n1
    node_setup n2
    start_enrolld --auto-approve
    for h in web-a web-b web-c; do
        (enroll n1 --host "$h" >/dev/null) &
        p1=$!
        (enroll n2 --host "$h" >/dev/null) &
        p2=$!
        wait "$p1"
        wait "$p2"
        admin --json list >"$T/l.json"
        assert_eq "$(jq --arg h "$h" '[.nodes[] | select(.host==$h and .status=="approved")] | length' "$T/l.json")" 1
        assert_eq "$(jq --arg h "$h" '[.nodes[] | select(.host==$h and .status=="pending")] | length' "$T/l.json")" 1
    done
    # every DevID certificate the CA issued that is still valid is an approved node's
    srv --json ca show enroll >"$T/issued.json"
    valid=$(jq -r '[.certificates[] | select(.profile=="devid" and .status=="valid") | .serial | sub("^0+";"")] | sort | join(" ")' "$T/issued.json")
    approved=$(jq -r '[.nodes[] | select(.status=="approved") | .devid_serial | sub("^0+";"")] | sort | join(" ")' "$T/l.json")
    assert_eq "$valid" "$approved"
}
