# SPDX-License-Identifier: Apache-2.0
# Enrollment at scale: many node workspaces (each its own vTPM state and factory CA) enrolling at
# once against one enrolld on loopback, plus one node on swtpm; the server is killed (SIGKILL)
# and restarted in the middle. Every node ends approved with a certificate that openssl
# verifies, and nothing the server answered is lost. 10 nodes in `make check`, 50 with CIT_LONG=1.

source "$ROOT/tests/lib/enroll.sh"

# enroll_retry NAME [env...]: `node enroll`, retried (the server may be down for a moment) until
# it succeeds or 90 s pass; the last error in $T/NAME/err.
enroll_retry() {
    local n=$1 deadline=$((SECONDS + 90))
    until enroll "$n" >"$T/$n/out" 2>"$T/$n/err"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2 # back-off between attempts while the server restarts
    done
}

test_enroll_scale_concurrent_with_restart() {
    local n=10
    [ -n "${CIT_LONG:-}" ] && n=50
    server_setup
    for i in $(seq "$n"); do node_setup "n$i"; done
    # the swtpm node: a TPM without an EK certificate gets one from a test factory CA
    start_swtpm
    mkdir -p "$T/sw"
    TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI node sw init >/dev/null
    TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI factory_ek_cert sw
    ENROLLD_PORT=$(free_port)
    start_enrolld --auto-approve
    pids=()
    for i in $(seq "$n"); do
        enroll_retry "n$i" &
        pids+=($!)
    done
    TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI enroll_retry sw &
    pids+=($!)
    # kill the server once a few nodes are through, restart it on the same port
    local deadline=$((SECONDS + 60))
    until [ "$(ls "$T"/n*/store.db.enroll.json 2>/dev/null | wc -l)" -ge $((n / 3)) ]; do
        [ $SECONDS -lt $deadline ] || fail "no enrollment went through"
        sleep 0.05
    done
    kill -KILL "$ENROLLD_PID"
    wait "$ENROLLD_PID" 2>/dev/null || true
    ENROLLD_PID=
    start_enrolld --auto-approve
    for p in "${pids[@]}"; do
        wait "$p" || fail "a node did not enroll: $(cat "$T"/n*/err "$T/sw/err" 2>/dev/null | grep error | sort | uniq -c)"
    done
    # every node approved, with its DevID certificate in its identity
    admin crl --output "$T/crl.pem" >/dev/null
    list=$(admin --json list --status approved)
    for h in $(seq -f 'n%g' "$n") sw; do
        assert_eq "$(node "$h" --json node status | jq -r .status)" approved "$h"
        assert_eq "$(printf '%s' "$list" | jq --arg h "$h" '[.nodes[]|select(.host==$h)]|length')" 1 "$h approved once"
        admin --json show "$h" | jq -r .devid_cert >"$T/$h.pem"
        openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/ca.pem" "$T/$h.pem" >/dev/null
    done
    # the nodes talk mutual TLS with their TPM-held keys
    node n1 --json node config >/dev/null
    TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI node sw --json node config >/dev/null
    # the server's audit log survived the kill: its chain verifies
    stop_enrolld
    srv audit chain verify >/dev/null
}
