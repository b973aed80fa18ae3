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

# Ordinary indices up to the TPM's largest (TPM2_PT_NV_INDEX_MAX), written and read in chunks of
# at most TPM2_PT_NV_BUFFER_MAX bytes; a write that does not fit changes nothing.
test_nv_large_index_chunked() {
    init_vtpm
    citadel tpm --json capabilities >caps.json
    max=$(json caps.json 'd["limits"]["nv_index_max_size"]')
    buf=$(json caps.json 'd["limits"]["nv_buffer_max"]')
    size=$((max < 2048 ? max : 2048))
    # libtpms: 2048 and 1024, so one index needs more than one TPM2_NV_Read/Write
    [ "$size" -gt "$buf" ] || fail "index size $size is not larger than the TPM buffer $buf"
    [ "$size" -ge 1800 ] || fail "the TPM's largest NV index ($max) is too small for this test"
    assert_eq "$(citadel tpm --json nv define big --size "$size" | json - 'd["size"]')" "$size"
    head -c "$size" /dev/urandom >r
    assert_eq "$(citadel tpm --json nv write big --input r | json - 'd["written"]')" "$size"
    citadel tpm nv read big --output back >/dev/null
    cmp r back || fail "a $size-byte index read back something else"
    # the hex form is assembled from the same chunks
    assert_eq "$(citadel tpm --json nv read big | json - 'd["data_hex"]')" "$(od -An -v -tx1 r | tr -d ' \n')"
    # 1500 bytes at offset 300 span the chunk boundary
    head -c 1500 /dev/urandom >p
    citadel tpm nv write big --input p --offset 300 >/dev/null
    { head -c 300 r; cat p; tail -c +1801 r; } >want
    citadel tpm nv read big --output back >/dev/null
    cmp want back || fail "the write at offset 300 did not land where expected"
    # past the end, by one byte: refused before any chunk is written
    expect_fail 8 TPM0048 citadel tpm nv write big --input p --offset $((size - 1500 + 1))
    assert_contains "$ERR" "do not fit in big ($size bytes)"
    head -c $((size + 1)) /dev/urandom >over
    expect_fail 8 TPM0048 citadel tpm nv write big --input over
    citadel tpm nv read big --output back >/dev/null
    cmp want back || fail "a refused write changed the index"
    # larger than the TPM's largest index: refused with the limit named, nothing defined
    expect_fail 2 TPM0002 citadel tpm nv define huge --size $((max + 1))
    assert_contains "$ERR" "nv_index_max $max"
    assert_eq "$(citadel tpm --json nv list | json - 'd["count"]')" 1
    doctor_consistent
}
