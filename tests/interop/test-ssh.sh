# SPDX-License-Identifier: Apache-2.0
# `key export-pub --export-for ssh`, read by OpenSSH's ssh-keygen: the key line parses, and its
# SHA256 fingerprint equals the one of the PEM export converted by ssh-keygen itself.
# shellcheck source=tests/interop/interop-lib.bash
source "$ROOT/tests/interop/interop-lib.bash"
INTEROP_FILE=$ROOT/tests/interop/$(basename "${BASH_SOURCE[0]}")

# check_ssh_export NAME SSHTYPE BITS KEYTYPE: NAME exists in the workspace.
check_ssh_export() {
    local key=$1 sshtype=$2 bits=$3 keytype=$4 ours theirs line name
    name=${key//\//_} # file names for a key path like ssh/p256
    citadel tpm key export-pub "$key" --export-for ssh --output "$name.ssh.pub" >/dev/null
    citadel tpm key export-pub "$key" --output "$name.pem" >/dev/null
    assert_eq "$(wc -l <"$name.ssh.pub" | tr -d ' ')" 1 "$name.ssh.pub is one line"
    line=$(cat "$name.ssh.pub")
    assert_eq "${line%% *}" "$sshtype" "ssh key type of $name"
    ours=$(ssh-keygen -l -E sha256 -f "$name.ssh.pub") || fail "ssh-keygen cannot read $name.ssh.pub: $line"
    ssh-keygen -i -m PKCS8 -f "$name.pem" >"$name.conv.pub" || fail "ssh-keygen cannot convert $name.pem"
    theirs=$(ssh-keygen -l -E sha256 -f "$name.conv.pub")
    # "BITS SHA256:... COMMENT (TYPE)"
    assert_eq "$(echo "$ours" | awk '{print $2}')" "$(echo "$theirs" | awk '{print $2}')" "fingerprint of $name"
    assert_eq "$(echo "$ours" | awk '{print $1}')" "$bits" "ssh-keygen key size of $name"
    assert_contains "$ours" "($keytype)"
    assert_contains "$(echo "$ours" | awk '{print $2}')" "SHA256:"
    # The base64 blob itself is the same key ssh-keygen derives from the PEM.
    assert_eq "$(awk '{print $2}' "$name.ssh.pub")" "$(awk '{print $2}' "$name.conv.pub")" "ssh blob of $name"
    # ... and ssh-keygen converts it back to the same SubjectPublicKeyInfo.
    ssh-keygen -e -m PKCS8 -f "$name.ssh.pub" >"$name.back.pem" || fail "ssh-keygen -e failed for $name"
    assert_eq "$(openssl pkey -pubin -in "$name.back.pem" -outform DER | od -An -tx1 -v | tr -d ' \n')" \
        "$(openssl pkey -pubin -in "$name.pem" -outform DER | od -An -tx1 -v | tr -d ' \n')" "ssh -> PKCS8 round trip of $name"
}

itest_ssh_export_ecc_p256() {
    init_vtpm
    citadel tpm key create ssh/p256 --algorithm ecc-p256 >/dev/null
    check_ssh_export ssh/p256 ecdsa-sha2-nistp256 256 ECDSA
}

itest_ssh_export_ecc_p384() {
    init_vtpm
    citadel tpm key create p384 --algorithm ecc-p384 >/dev/null
    check_ssh_export p384 ecdsa-sha2-nistp384 384 ECDSA
}

itest_ssh_export_rsa_2048() {
    init_vtpm
    citadel tpm key create r2 --algorithm rsa-2048 >/dev/null
    check_ssh_export r2 ssh-rsa 2048 RSA
}

# Same on the mock backend, in one batch process: exports written there are read by ssh-keygen.
itest_ssh_export_mock_batch() {
    cat >cmds <<EOF
init
key create e --algorithm ecc-p256
key create r --algorithm rsa-2048
key export-pub e --export-for ssh --output $PWD/e.ssh.pub
key export-pub e --output $PWD/e.pem
key export-pub r --export-for ssh --output $PWD/r.ssh.pub
key export-pub r --output $PWD/r.pem
EOF
    citadel tpm --backend mock batch --input cmds >/dev/null 2>err || fail "batch failed: $(cat err)"
    local n
    for n in e r; do
        ssh-keygen -i -m PKCS8 -f "$n.pem" >"$n.conv.pub"
        assert_eq "$(ssh-keygen -l -f "$n.ssh.pub" | awk '{print $2}')" \
            "$(ssh-keygen -l -f "$n.conv.pub" | awk '{print $2}')" "mock ssh fingerprint of $n"
    done
}

# SSH RSA signatures are PKCS#1 v1.5: an RSA-PSS key has no SSH form. TPM0034, exit 3 (object),
# nothing written.
itest_ssh_export_rsapss_refused() {
    init_vtpm
    citadel tpm key create pss --algorithm rsa-2048 --scheme rsapss >/dev/null
    expect_fail 3 TPM0034 citadel tpm key export-pub pss --export-for ssh --output pss.ssh.pub
    assert_no_file pss.ssh.pub
    expect_fail 3 TPM0034 citadel tpm key export-pub pss --export-for ssh
    assert_not_contains "$OUT" "ssh-rsa"
}

interop_register
