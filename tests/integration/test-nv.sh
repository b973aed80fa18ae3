# SPDX-License-Identifier: Apache-2.0
# NV indices: the TPM enforces type, size, lock and password.

test_nv_ordinary_write_read_range_lock() {
    init_vtpm
    citadel tpm nv define app/cfg --size 16 >/dev/null
    printf 'hello' >h
    citadel tpm nv write app/cfg --input h --offset 3 >/dev/null
    citadel tpm nv read app/cfg --output back >/dev/null
    assert_eq "$(od -An -c -j3 -N5 back | tr -d ' ')" "hello"
    assert_eq "$(stat -c %s back)" 16
    head -c 17 /dev/zero >big
    expect_fail 8 TPM0048 citadel tpm nv write app/cfg --input big
    expect_fail 8 TPM0048 citadel tpm nv write app/cfg --input h --offset 12
    # the TPM checks the size too: with the stored size made larger, the TPM refuses
    python3 - "$TPM_STORE_PATH" <<'PY'
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
(m,) = c.execute("SELECT metadata FROM objects WHERE path = 'app/cfg'").fetchone()
m = json.loads(m); m["size"] = 64
c.execute("UPDATE objects SET metadata = ? WHERE path = 'app/cfg'", (json.dumps(m),)); c.commit()
PY
    expect_fail 8 TPM0048 citadel tpm nv write app/cfg --input big
    assert_contains "$ERR" "tpm_rc"
    citadel tpm nv lock app/cfg >/dev/null
    expect_fail 8 TPM0049 citadel tpm nv write app/cfg --input h
    expect_fail 8 TPM0050 citadel tpm nv increment app/cfg
}

test_nv_counter_bits_extend() {
    init_vtpm
    citadel tpm nv define c --type counter >/dev/null
    expect_fail 8 TPM0050 citadel tpm nv read c
    for i in 1 2 3; do citadel tpm nv increment c >/dev/null; done
    assert_eq "$(citadel tpm --json nv read c | json - 'd["value"]')" 3
    printf 'x' >x
    expect_fail 8 TPM0050 citadel tpm nv write c --input x
    citadel tpm nv define b --type bits >/dev/null
    printf '\0\0\0\0\0\0\0\5' >b5
    printf '\0\0\0\0\0\0\0\2' >b2
    citadel tpm nv write b --input b5 >/dev/null
    citadel tpm nv write b --input b2 >/dev/null
    assert_eq "$(citadel tpm --json nv read b | json - 'd["value"]')" 7
    citadel tpm nv define e --type extend >/dev/null
    printf 'event one' >ev
    v=$(citadel tpm --json nv extend e --input ev | json - 'd["value"]')
    assert_eq "$v" "$(python3 -c 'import hashlib; print(hashlib.sha256(bytes(32) + b"event one").hexdigest())')"
    # counters survive into later processes and never go back
    assert_eq "$(citadel tpm --json nv increment c | json - 'd["value"]')" 4
}

test_nv_password_and_delete() {
    init_vtpm
    printf 'pw' >pw
    printf 'bad' >bad
    printf 'data' >d
    citadel tpm nv define s --size 8 --auth-file pw >/dev/null
    citadel tpm nv write s --input d --auth-file pw >/dev/null
    expect_fail 7 TPM0024 citadel tpm nv read s --auth-file bad
    expect_fail 7 TPM0024 citadel tpm nv read s
    assert_eq "$(citadel tpm --json nv read s --auth-file pw | json - 'd["data_hex"][:8]')" "64617461"
    h=$(citadel tpm --json nv list | json - 'd["indices"][0]["handle"]')
    citadel tpm nv delete s >/dev/null
    # the index is really gone from the TPM: the same handle is free again
    assert_eq "$(citadel tpm --json nv define t --size 4 | json - 'd["handle"]')" "$h"
    citadel tpm key create k >/dev/null
    expect_fail 3 TPM0007 citadel tpm nv read k
    expect_fail 3 TPM0005 citadel tpm nv define t --size 4
    expect_fail 2 TPM0002 citadel tpm nv define u --type weird
    expect_fail 2 TPM0002 citadel tpm nv define u
    doctor_consistent
}
