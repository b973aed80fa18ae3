# SPDX-License-Identifier: Apache-2.0
# A persistent key replaced behind citadel's back (with tpm2-tools) is never used to sign.

test_replaced_persistent_key_is_refused() {
    start_swtpm
    local T2=$SWTPM_TCTI
    citadel tpm --backend swtpm --tcti "$T2" init >/dev/null
    h=$(citadel tpm --json key create p --persist | json - 'd["persistent_handle"]')
    echo m >m
    citadel tpm key sign p --input m --output before.sig >/dev/null
    # evict it and put another key at the same handle (flushing as we go: no resource manager)
    tpm2_evictcontrol -T "$T2" -C o -c "$h" >/dev/null
    tpm2_createprimary -T "$T2" -C o -G ecc -c pr.ctx >/dev/null
    tpm2_flushcontext -T "$T2" -t
    tpm2_create -T "$T2" -C pr.ctx -G ecc -u k.pub -r k.priv >/dev/null
    tpm2_flushcontext -T "$T2" -t
    tpm2_load -T "$T2" -C pr.ctx -u k.pub -r k.priv -c k.ctx >/dev/null
    tpm2_flushcontext -T "$T2" -t
    tpm2_evictcontrol -T "$T2" -C o -c k.ctx "$h" >/dev/null
    tpm2_flushcontext -T "$T2" -t
    expect_fail 10 TPM0040 citadel tpm key sign p --input m --output after.sig
    assert_contains "$ERR" "holds another key"
    assert_no_file after.sig
    # doctor sees it too
    rc=0
    citadel tpm --json doctor >doc.json || rc=$?
    assert_eq "$rc" 10
    assert_eq "$(json doc.json 'd["consistent"]')" "false"
}
