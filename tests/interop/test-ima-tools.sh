# SPDX-License-Identifier: Apache-2.0
# citadel's IMA replay against evmctl (ima-evm-utils), which we did not write: evmctl replays a
# binary measurement list and compares it with PCR values given in a file (--pcrs), per bank
# (sha1 from the recorded template hashes, sha256 recomputed from the template data).

IMADIR="$ROOT/tests/data/ima"

# pcr_file BANK_SIZE_HEX_ZEROS VALUE10: the "PCR-NN: hex" file evmctl reads (PCRs 0-23)
pcr_file() {
    local zero=$1 v10=$2 i
    for i in $(seq 0 23); do
        if [ "$i" -eq 10 ]; then printf 'PCR-%02d: %s\n' "$i" "$v10"; else printf 'PCR-%02d: %s\n' "$i" "$zero"; fi
    done
}

test_ima_replay_agrees_with_evmctl() {
    command -v evmctl >/dev/null || fail "evmctl (ima-evm-utils) is not installed"
    local z1 z256 t
    z1=$(printf '%040d' 0)
    z256=$(printf '%064d' 0)
    for t in ima-ng ima-sig ima-legacy; do
        citadel tpm --json attest ima replay "$IMADIR/$t-binary" >r.json
        pcr_file "$z1" "$(json r.json 'd["pcrs"]["sha1"]["10"]')" >sha1.pcrs
        pcr_file "$z256" "$(json r.json 'd["pcrs"]["sha256"]["10"]')" >sha256.pcrs
        # --ignore-violations: extend all ones for a violation, as the kernel does (without it
        # evmctl extends zeros, a PCR value no kernel produces)
        evmctl ima_measurement --ignore-violations --pcrs sha1,sha1.pcrs --pcrs sha256,sha256.pcrs \
            "$IMADIR/$t-binary" >evm.out 2>&1 || fail "$t: evmctl disagrees: $(grep -v '^10 ' evm.out)"
        # and evmctl does notice a wrong value
        pcr_file "$z1" "$(json r.json 'd["pcrs"]["sha1"]["10"]' | tr 0-9a-f 1-9a-f0)" >bad.pcrs
        if evmctl ima_measurement --ignore-violations --pcrs sha1,bad.pcrs "$IMADIR/$t-binary" >/dev/null 2>&1; then
            fail "$t: evmctl accepted a wrong PCR value"
        fi
        pcr_file "$z256" "$(json r.json 'd["pcrs"]["sha256"]["10"]' | tr 0-9a-f 1-9a-f0)" >bad256.pcrs
        if evmctl ima_measurement --ignore-violations --pcrs sha1,sha1.pcrs --pcrs sha256,bad256.pcrs \
            "$IMADIR/$t-binary" >/dev/null 2>&1; then
            fail "$t: evmctl accepted a wrong sha256 PCR value"
        fi
        echo "$t: evmctl matches sha1 and sha256 PCR 10"
    done
}
