# SPDX-License-Identifier: Apache-2.0
# Citadel's signatures and public keys, checked by OpenSSL (a tool we did not write) for every
# algorithm on every backend: ecc-p256, ecc-p384, rsa-2048, rsa-3072, rsa-2048/rsapss; DER and
# raw ECDSA, sha512, pre-hashed input, and `openssl pkeyutl -verify` over the digest.
# shellcheck source=tests/interop/interop-lib.bash
source "$ROOT/tests/interop/interop-lib.bash"
INTEROP_FILE=$ROOT/tests/interop/$(basename "${BASH_SOURCE[0]}")

# vtpm: every command its own process.
itest_openssl_matrix_vtpm() {
    init_vtpm
    make_messages
    matrix_create_cmds | run_lines
    matrix_sign_cmds | run_lines
    matrix_check
}

# mock: the whole flow in one process through batch (the mock TPM ends with the process).
itest_openssl_matrix_mock_batch() {
    make_messages
    { echo "init"; matrix_create_cmds; matrix_sign_cmds; } >cmds
    citadel tpm --backend mock batch --input cmds >batch.out 2>batch.err ||
        fail "mock batch failed: $(cat batch.err)"
    matrix_check
}

# swtpm (no resource manager): keys created in one batch process, then used from separate
# processes and verified.
itest_openssl_matrix_swtpm() {
    start_swtpm
    citadel tpm --backend swtpm --tcti "$SWTPM_TCTI" init >/dev/null
    make_messages
    matrix_create_cmds >create.cmds
    citadel tpm --backend swtpm --tcti "$SWTPM_TCTI" batch --input create.cmds >/dev/null 2>batch.err ||
        fail "swtpm batch failed: $(cat batch.err)"
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    matrix_sign_cmds | run_lines
    matrix_check
    no_transient_handles "$SWTPM_TCTI"
}

# The sign result reports the digest it signed; it equals openssl's digest of the file, and the
# result's signature bytes equal the --output file.
itest_sign_result_matches_openssl_digest() {
    init_vtpm
    make_messages
    citadel tpm key create k >/dev/null
    citadel tpm --json key sign k --input msg --output k.sig >r.json
    assert_eq "$(json r.json 'd["digest_algorithm"]')" sha256
    assert_eq "$(json r.json 'd["digest"]')" "$(openssl dgst -sha256 -r msg | cut -d' ' -f1)"
    assert_eq "$(json r.json 'd["signature_hex"]')" "$(od -An -v -tx1 k.sig | tr -d ' \n')"
    citadel tpm --json key sign k --input msg --digest sha512 >r512.json
    assert_eq "$(json r512.json 'd["digest"]')" "$(openssl dgst -sha512 -r msg | cut -d' ' -f1)"
    # stdin input signs the same bytes.
    citadel tpm key sign k --input - --output k.stdin.sig <msg >/dev/null
    citadel tpm key export-pub k --output k.pem >/dev/null
    openssl_verify k.pem k.stdin.sig msg sha256
}

# An openssl-made signature over the same file verifies with `citadel key verify`, the other
# direction: Citadel reads what OpenSSL writes. (Tampered: TPM0033.)
itest_citadel_verify_reads_what_openssl_checks() {
    init_vtpm
    make_messages
    citadel tpm key create k --algorithm ecc-p384 >/dev/null
    citadel tpm key sign k --input msg --output k.sig >/dev/null
    citadel tpm key sign k --input msg --encoding raw --output k.raw >/dev/null
    citadel tpm key verify k --input msg --signature k.sig >/dev/null
    citadel tpm key verify k --input msg --signature k.raw --encoding raw >/dev/null
    # raw -> DER by our encoder is accepted by citadel as DER too.
    raw_to_der k.raw k.raw.der
    citadel tpm key verify k --input msg --signature k.raw.der >/dev/null
    expect_fail 3 TPM0033 citadel tpm key verify k --input msg.bad --signature k.sig
}

# Many ECDSA signatures on the embedded (libtpms) TPM, in one batch: some have r or s with a
# leading zero byte. Raw stays exactly 64/96 bytes (zero-padded), DER stays minimal, and
# openssl verifies every one, raw ones after our r||s -> DER conversion.
itest_ecdsa_encodings_many_signatures_vtpm() {
    init_vtpm
    make_messages
    mkdir e256 e384
    local d=$PWD i f n
    {
        echo "key create e256"
        echo "key create e384 --algorithm ecc-p384"
        for i in $(seq 1 160); do
            echo "key sign e256 --input $d/msg --output $d/e256/$i.der"
            echo "key sign e256 --input $d/msg --encoding raw --output $d/e256/$i.raw"
        done
        for i in $(seq 1 30); do
            echo "key sign e384 --input $d/msg --output $d/e384/$i.der"
            echo "key sign e384 --input $d/msg --encoding raw --output $d/e384/$i.raw"
        done
        echo "key export-pub e256 --output $d/e256.pem"
        echo "key export-pub e384 --output $d/e384.pem"
    } >cmds
    citadel tpm batch --input cmds >/dev/null 2>err || fail "batch failed: $(cat err)"
    ecdsa_check_dir e256 32
    ecdsa_check_dir e384 48
    n=0
    for f in e256/*.der; do openssl_verify e256.pem "$f" msg sha256; n=$((n + 1)); done
    for f in e384/*.der; do openssl_verify e384.pem "$f" msg sha384; n=$((n + 1)); done
    assert_eq "$n" 380 "signatures verified"
}

# --input-is-digest takes exactly openssl's `dgst -binary` output (or its hex, any case) for the
# digest in use; a digest of another size is refused (TPM0043), never padded or cut and signed.
itest_input_is_digest_sizes() {
    init_vtpm
    make_messages
    citadel tpm key create k >/dev/null
    citadel tpm key create k384 --algorithm ecc-p384 >/dev/null
    citadel tpm key export-pub k --output k.pem >/dev/null
    tr a-f A-F <msg.sha256.hex >msg.sha256.HEX
    citadel tpm key sign k --input msg.sha256.HEX --input-is-digest --output upper.sig >/dev/null
    openssl_verify k.pem upper.sig msg sha256
    openssl dgst -sha512 -binary msg | citadel tpm key sign k --input - --input-is-digest --digest sha512 --output stdin.sig >/dev/null
    openssl_verify k.pem stdin.sig msg sha512
    expect_fail 2 TPM0043 citadel tpm key sign k --input msg.sha512.bin --input-is-digest --output bad1.sig
    expect_fail 2 TPM0043 citadel tpm key sign k --input msg.sha256.bin --input-is-digest --digest sha384 --output bad2.sig
    expect_fail 2 TPM0043 citadel tpm key sign k384 --input msg.sha256.bin --input-is-digest --output bad3.sig
    assert_no_file bad1.sig
    assert_no_file bad2.sig
    assert_no_file bad3.sig
}

interop_register
