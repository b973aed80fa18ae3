# SPDX-License-Identifier: Apache-2.0
# attest eventlog show|replay|secureboot on the real firmware logs in tests/data/eventlog:
# filters, decoded values checked against an independent decode in python, malformed and
# oversized logs, and output formats. No workspace or TPM is involved.

EVDIR="$ROOT/tests/data/eventlog"

test_show_pcr_filter_and_fields() {
    f="$EVDIR/event-postcode.bin"
    citadel tpm --json attest eventlog show "$f" >all.json
    citadel tpm --json attest eventlog show "$f" --pcr 7 >p7.json
    citadel tpm --json attest eventlog show "$f" --pcr 0-1,4 >p014.json
    assert_eq "$(json all.json 'd["events_total"]')" 59
    assert_eq "$(json all.json 'len(d["events"])')" 59
    assert_eq "$(json p7.json 'sorted(set(e["pcr"] for e in d["events"]))')" "[7]"
    assert_eq "$(json p7.json 'd["events_shown"]')" "$(json all.json 'sum(1 for e in d["events"] if e["pcr"] == 7)')"
    assert_eq "$(json p7.json 'd["events_total"]')" 59
    assert_eq "$(json p014.json 'sorted(set(e["pcr"] for e in d["events"]))')" "[0, 1, 4]"
    # the filtered events are the same objects as in the full listing
    assert_eq "$(json p7.json '[e["index"] for e in d["events"]]')" \
        "$(json all.json '[e["index"] for e in d["events"] if e["pcr"] == 7]')"
    # JSON fields of the document and of an event
    assert_eq "$(json all.json 'd["schema_version"]')" 1
    assert_eq "$(json all.json '[d["format"], d["algorithms"], d["spec_id"]["signature"]]')" \
        '["crypto-agile", ["sha1", "sha256"], "Spec ID Event03"]'
    assert_eq "$(json all.json 'sorted(d["events"][3].keys())')" \
        '["data_size", "digest_matches_data", "digests", "index", "offset", "pcr", "type", "type_value", "value", "variable", "variable_data_hex", "variable_data_size", "variable_guid", "variable_guid_name"]'
    assert_eq "$(json all.json '[d["events"][3]["variable"], d["events"][3]["value"], d["events"][3]["type"]]')" \
        '["SecureBoot", 1, "EV_EFI_VARIABLE_DRIVER_CONFIG"]'
    # offsets and sizes: the first event after the Spec ID event starts right after it
    assert_eq "$(json all.json 'd["events"][1]["offset"]')" "$((32 + $(json all.json 'd["events"][0]["data_size"]')))"
    # decoded data: grub's commands, the shim certificate, a PXE boot option
    assert_eq "$(json all.json 'd["events"][41]["string"]')" "grub_cmd: [ -e (tftp,192.168.0.141)/grub/x86_64-efi/grub.cfg ]"
    assert_contains "$(json all.json 'd["events"][40]["certificate_subject"]')" "CN=Canonical Ltd. Master Certificate Authority"
    assert_contains "$(json all.json 'd["events"][21]["load_option"]["description"]')" "UEFI: PXE IP4 Intel(R) I350"
    # the text table, one line per event plus header and footer
    txt=$(citadel tpm attest eventlog show "$f" --pcr 7)
    assert_contains "$txt" "EV_EFI_VARIABLE_AUTHORITY"
    assert_contains "$txt" "SecureBoot = 1"
    assert_eq "$(printf '%s\n' "$txt" | wc -l)" "$(($(json p7.json 'd["events_shown"]') + 2))"
    citadel tpm --format yaml attest eventlog show "$f" --pcr 0 | yaml_ok
    citadel tpm --format yaml attest eventlog replay "$f" | yaml_ok
    # nothing here needs or creates a workspace
    assert_no_file "$TPM_STORE_PATH"
}

test_show_decodes_gpt_and_device_paths() {
    citadel tpm --json attest eventlog show "$EVDIR/event-arch-linux.bin" >a.json
    assert_eq "$(json a.json '[e["partition_count"] for e in d["events"] if e["type"] == "EV_EFI_GPT_EVENT"]')" "[3]"
    assert_eq "$(json a.json '[p["type"] for e in d["events"] if e["type"] == "EV_EFI_GPT_EVENT" for p in e["partitions"]]')" \
        '["EFI System", "Linux RAID", "Linux filesystem"]'
    # the disk GUID as tpm2_eventlog's raw event data has it (mixed-endian GUID at byte 56)
    tpm2_eventlog "$EVDIR/event-arch-linux.bin" 2>/dev/null | python3 -c '
import re, sys, uuid
raw = bytes.fromhex(re.search(r"EV_EFI_GPT_EVENT(?:.|\n)*?Event: \"([0-9a-f]+)\"", sys.stdin.read()).group(1))
print(uuid.UUID(bytes_le=raw[56:72]))' >guid.txt
    assert_eq "$(json a.json '[e["disk_guid"] for e in d["events"] if e["type"] == "EV_EFI_GPT_EVENT"][0]')" "$(cat guid.txt)"
    assert_contains "$(json a.json 'd["events"][22]["device_path"]')" 'Sata(0x1,0xffff,0x0)/HD(1,GPT,1a504613-19b5-4b44-a83d-d926d40daa1c,0x800,0x80000)/\EFI\SYSTEMD\SYSTEMD-BOOTX64.EFI'
    # systemd-boot's UTF-16 kernel command line
    assert_contains "$(json a.json 'd["events"][24]["string"]')" "root=/dev/mapper/cryptroot rw"
    # digests of data-derived events are checked; all of these logs are consistent
    assert_eq "$(json a.json 'd["digest_mismatches"]')" "[]"
    assert_eq "$(json a.json 'all(e["digest_matches_data"] for e in d["events"] if e["type"] == "EV_SEPARATOR")')" true
    # SHA-1-only log
    citadel tpm --json attest eventlog show "$EVDIR/event-uefi-sha1-log.bin" >s.json
    assert_eq "$(json s.json '[d["format"], d["algorithms"], d["events_total"]]')" '["sha1", ["sha1"], 17]'
    assert_contains "$(json s.json 'd["events"][15]["device_path"]')" 'shimx64.efi'
}

# An independent decode of the PCR 7 variables, in python: UEFI_VARIABLE_DATA and
# EFI_SIGNATURE_LIST by hand, certificates with openssl.
sb_expect() {
    python3 - "$1" <<'EOF'
import json, struct, subprocess, sys, uuid
b = open(sys.argv[1], "rb").read()
# crypto-agile: skip the Spec ID event, then TCG_PCR_EVENT2 records with sha1+sha256 digests
o = 32 + struct.unpack_from("<I", b, 28)[0]
sizes = {4: 20, 11: 32}
out = {}
while o < len(b):
    pcr, typ, n = struct.unpack_from("<III", b, o); o += 12
    for _ in range(n):
        alg, = struct.unpack_from("<H", b, o); o += 2 + sizes[alg]
    size, = struct.unpack_from("<I", b, o); o += 4
    data = b[o:o + size]; o += size
    if pcr == 7 and typ == 0x80000001:
        nl, dl = struct.unpack_from("<QQ", data, 16)
        name = data[32:32 + 2 * nl].decode("utf-16-le")
        val = data[32 + 2 * nl:32 + 2 * nl + dl]
        if name == "SecureBoot":
            out["SecureBoot"] = val[0] if val else None
            continue
        x509 = sha256 = 0; subjects = []
        p = 0
        while p < len(val):
            t = uuid.UUID(bytes_le=val[p:p + 16]); ls, hs, ss = struct.unpack_from("<III", val, p + 16)
            cnt = (ls - 28 - hs) // ss
            for k in range(cnt):
                e = val[p + 28 + hs + k * ss:p + 28 + hs + (k + 1) * ss]
                if str(t) == "a5c059a1-94e4-4aa7-87b5-ab155c2bf072":
                    x509 += 1
                    s = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-nameopt", "RFC2253"],
                                       input=e[16:], capture_output=True, check=True).stdout.decode()
                    subjects.append(s.strip().split("=", 1)[1])
                elif str(t) == "c1c41626-504c-4092-aca9-41f936934328":
                    sha256 += 1
            p += ls
        out[name] = {"present": dl > 0, "size": dl, "x509": x509, "sha256": sha256, "subjects": subjects}
print(json.dumps(out, sort_keys=True))
EOF
}

test_secureboot_summary_values() {
    f="$EVDIR/event-postcode.bin"
    citadel tpm --json attest eventlog secureboot "$f" >sb.json
    sb_expect "$f" >exp.json
    assert_eq "$(json sb.json '[d["secure_boot"], d["secure_boot_value"], d["secure_boot_event"]]')" '["enabled", 1, 3]'
    assert_eq "$(json exp.json 'd["SecureBoot"]')" 1
    for k in PK KEK db dbx; do
        assert_eq "$(json sb.json "[d['keys']['$k'][x] for x in ('present', 'size', 'x509', 'sha256')]")" \
            "$(json exp.json "[d['$k'][x] for x in ('present', 'size', 'x509', 'sha256')]")" "$k"
        assert_eq "$(json sb.json "d['keys']['$k'].get('subjects', [])")" "$(json exp.json "d['$k']['subjects']")" "$k subjects"
    done
    # the actual values, for the record
    assert_eq "$(json sb.json '[d["keys"][k]["x509"] for k in ("PK", "KEK", "db", "dbx")]')" "[1, 1, 4, 0]"
    assert_eq "$(json sb.json 'd["keys"]["dbx"]["sha256"]')" 77
    assert_eq "$(json sb.json 'd["keys"]["PK"]["subjects"][0]')" "CN=SUPERMICRO PK CA 2018,O=Super Micro Computer Inc.,L=San Jose,ST=CA,C=USA"
    assert_eq "$(json sb.json '[(a["event"], a["variable"]) for a in d["authorities"]]')" '[[37, "db"], [40, "Shim"], [54, "Shim"]]'
    assert_eq "$(json sb.json 'd["authorities"][0]["subject"]')" "CN=Microsoft Corporation UEFI CA 2011,O=Microsoft Corporation,L=Redmond,ST=Washington,C=US"
    assert_eq "$(json sb.json '[d["shim"]["detected"], [e["event"] for e in d["shim"]["events"]]]')" "[true, [40, 54]]"
    assert_eq "$(json sb.json 'd["pcr7_separator_event"]')" 8
    assert_eq "$(json sb.json 'd["pcr7_digest_mismatches"]')" 0
    txt=$(citadel tpm attest eventlog secureboot "$f")
    assert_contains "$txt" "Secure Boot: enabled"
    assert_contains "$txt" "Shim: detected"
    # Secure Boot off: SecureBoot = 0 (bootorder), an empty variable (sd-boot, arch)
    assert_eq "$(citadel tpm --json attest eventlog secureboot "$EVDIR/event-bootorder.bin" | json - '[d["secure_boot"], d["secure_boot_value"], d["keys"]["PK"]["present"]]')" '["disabled", 0, false]'
    citadel tpm --json attest eventlog secureboot "$EVDIR/event-sd-boot-fedora37.bin" >sd.json
    assert_eq "$(json sd.json '[d["secure_boot"], d["keys"]["db"]["measured"], d["keys"]["db"]["present"], d["shim"]["detected"]]')" '["disabled", true, false, false]'
    assert_contains "$(json sd.json 'd["findings"]')" "Secure Boot is off"
    # the SHA-1 log: shim named in the boot application's path
    assert_eq "$(citadel tpm --json attest eventlog secureboot "$EVDIR/event-uefi-sha1-log.bin" | json - 'd["shim"]["detected"]')" true
    # a log without PCR 7 variables: unknown
    assert_eq "$(citadel tpm --json attest eventlog secureboot "$EVDIR/event.bin" | json - '[d["secure_boot"], d["keys"]["PK"]["measured"]]')" '["unknown", false]'
}

# Every cut of every log either parses to a prefix of the full log's events or fails with
# TPM0070; nothing else (a crash would be exit 134/139).
test_truncated_logs_prefix_or_malformed() {
    local f base size cuts=0 prefixes=0 malformed=0
    for f in "$EVDIR"/event*.bin; do
        base=$(basename "$f")
        size=$(stat -c %s "$f")
        citadel tpm --json attest eventlog show "$f" >full.json
        # event boundaries, one byte either side, and 12 offsets spread over the file
        offs=$(python3 - full.json "$size" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); size = int(sys.argv[2])
ends = [e["offset"] + 0 for e in d["events"]][1:] + [size]
cand = set()
for x in ends[:4] + ends[-2:]:
    cand.update((x - 1, x, x + 1))
cand.update(size * k // 9 for k in range(1, 9))
print(" ".join(str(x) for x in sorted(c for c in cand if 0 < c < size)))
EOF
)
        for at in $offs; do
            head -c "$at" "$f" >cut.bin
            rc=0
            citadel tpm --json attest eventlog show cut.bin >cut.json 2>cut.err || rc=$?
            cuts=$((cuts + 1))
            if [ "$rc" -eq 0 ]; then
                # a prefix: the same events, and all of them end within the cut
                python3 - cut.json full.json "$at" <<'EOF' || fail "$base cut at $at: not a prefix"
import json, sys
c = json.load(open(sys.argv[1])); f = json.load(open(sys.argv[2])); at = int(sys.argv[3])
n = len(c["events"])
assert n >= 1 and c["events"] == f["events"][:n], "events differ"
nxt = f["events"][n]["offset"] if n < len(f["events"]) else None
# the prefix ends at the cut, or what follows it is reported as zero padding (>= 8 bytes)
pad = c.get("trailing_zero_bytes", 0)
assert nxt + pad == at and (pad == 0 or pad >= 8), ("cut at %d but the prefix ends at %s (+%d)" % (at, nxt, pad))
EOF
                prefixes=$((prefixes + 1))
            else
                [ "$rc" -eq 9 ] || fail "$base cut at $at: exit $rc: $(cat cut.err)"
                assert_eq "$(json cut.err 'd["error"]["code"]')" TPM0070
                assert_contains "$(json cut.err 'd["error"]["message"]')" "malformed event log: event "
                malformed=$((malformed + 1))
            fi
        done
    done
    echo "$cuts cuts: $prefixes prefixes, $malformed malformed"
    [ "$prefixes" -ge 20 ] && [ "$malformed" -ge 50 ] || fail "too few of each kind"
}

test_malformed_and_oversized_logs() {
    # an event claiming more bytes than remain: event 1's size field in event.bin
    python3 - "$EVDIR/event.bin" <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
o = 32 + struct.unpack_from("<I", b, 28)[0]           # event 1 starts after the Spec ID event
size_at = o + 12 + (2 + 20) + (2 + 32) + (2 + 48) + (2 + 64)
assert struct.unpack_from("<I", b, size_at)[0] == 16
struct.pack_into("<I", b, size_at, 1000)
open("claims.bin", "wb").write(b)
print(o)
EOF
    off=$(python3 -c 'import struct; b=open("'"$EVDIR/event.bin"'","rb").read(); print(32 + struct.unpack_from("<I", b, 28)[0])')
    expect_fail 9 TPM0070 citadel tpm attest eventlog replay claims.bin
    assert_contains "$ERR" "event 1 at offset $off: the event claims 1000 bytes of data but only 16 remain"
    citadel tpm --json attest eventlog show claims.bin >e.json 2>&1 || true
    assert_eq "$(json e.json '[d["error"]["code"], d["error"]["context"]["event_index"], d["error"]["context"]["offset"], d["error"]["exit_status"]]')" \
        "[\"TPM0070\", \"1\", \"$off\", 9]"
    # a digest algorithm the Spec ID event did not declare
    python3 - "$EVDIR/event-uefiaction.bin" <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
o = 32 + struct.unpack_from("<I", b, 28)[0]
struct.pack_into("<H", b, o + 12, 0x0012)   # sm3_256 instead of sha1
open("alg.bin", "wb").write(b)
EOF
    expect_fail 9 TPM0070 citadel tpm attest eventlog show alg.bin
    assert_contains "$ERR" "algorithm 0x0012, which the Spec ID event does not declare"
    # a PCR index out of range
    python3 - "$EVDIR/event-uefiaction.bin" <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
o = 32 + struct.unpack_from("<I", b, 28)[0]
struct.pack_into("<I", b, o, 24)
open("pcr.bin", "wb").write(b)
EOF
    expect_fail 9 TPM0070 citadel tpm attest eventlog replay pcr.bin
    assert_contains "$ERR" "extends PCR 24"
    # more than 64 MiB: refused before reading (a sparse file)
    truncate -s $((64 * 1024 * 1024 + 1)) big.bin
    expect_fail 2 TPM0030 citadel tpm attest eventlog replay big.bin
    assert_contains "$ERR" "67108864"
    # exactly 64 MiB of zeros is read, and is not a log
    truncate -s $((64 * 1024 * 1024)) max.bin
    expect_fail 9 TPM0070 citadel tpm attest eventlog replay max.bin
    # empty, missing, not a log
    : >empty.bin
    expect_fail 2 TPM0031 citadel tpm attest eventlog show empty.bin
    expect_fail 2 TPM0029 citadel tpm attest eventlog show nosuch.bin
    echo "not an event log at all, just text" >text.bin
    expect_fail 9 TPM0070 citadel tpm attest eventlog replay text.bin
    # trailing zero padding after the last event is not an event
    { cat "$EVDIR/event.bin"; head -c 4096 /dev/zero; } >padded.bin
    citadel tpm --json attest eventlog show padded.bin >p.json
    assert_eq "$(json p.json '[d["events_total"], d["trailing_zero_bytes"]]')" "[2, 4096]"
    assert_eq "$(citadel tpm --json attest eventlog replay padded.bin | json - 'd["pcrs"]')" \
        "$(citadel tpm --json attest eventlog replay "$EVDIR/event.bin" | json - 'd["pcrs"]')"
    # usage
    expect_fail 2 TPM0002 citadel tpm attest eventlog frobnicate "$EVDIR/event.bin"
    expect_fail 2 TPM0002 citadel tpm attest eventlog show
    expect_fail 2 TPM0002 citadel tpm attest eventlog replay "$EVDIR/event.bin" --pcr 7
    expect_fail 2 TPM0044 citadel tpm attest eventlog show "$EVDIR/event.bin" --pcr 99
    assert_no_file "$TPM_STORE_PATH"
}

# Replay rules checked against a computation in python: EV_NO_ACTION is not extended and a
# StartupLocality event sets PCR 0's start value.
test_replay_startup_locality() {
    python3 - "$EVDIR/event.bin" <<'EOF'
import hashlib, struct, sys
b = open(sys.argv[1], "rb").read()
spec = b[:32 + struct.unpack_from("<I", b, 28)[0]]
rest = b[len(spec):]
# an EV_NO_ACTION StartupLocality event (locality 3) with zero digests in the 4 banks
digs = b"".join(struct.pack("<H", a) + bytes(n) for a, n in ((4, 20), (11, 32), (12, 48), (13, 64)))
data = b"StartupLocality\x00" + bytes([3])
ev = struct.pack("<III", 0, 3, 4) + digs + struct.pack("<I", len(data)) + data
open("loc.bin", "wb").write(spec + ev + rest)
# expected: PCR 0 = H(0...03 || digest) for each bank, digests from event 1
o = 12; out = []
for alg, n, h in ((4, 20, hashlib.sha1), (11, 32, hashlib.sha256), (12, 48, hashlib.sha384), (13, 64, hashlib.sha512)):
    d = rest[o + 2:o + 2 + n]; o += 2 + n
    out.append(h(bytes(n - 1) + b"\x03" + d).hexdigest())
print(" ".join(out))
EOF
    read -r e1 e256 e384 e512 <<<"$(python3 - "$EVDIR/event.bin" <<'EOF'
import hashlib, struct, sys
b = open(sys.argv[1], "rb").read()
rest = b[32 + struct.unpack_from("<I", b, 28)[0]:]
o = 12; out = []
for n, h in ((20, hashlib.sha1), (32, hashlib.sha256), (48, hashlib.sha384), (64, hashlib.sha512)):
    d = rest[o + 2:o + 2 + n]; o += 2 + n
    out.append(h(bytes(n - 1) + b"\x03" + d).hexdigest())
print(" ".join(out))
EOF
)"
    citadel tpm --json attest eventlog replay loc.bin >r.json
    assert_eq "$(json r.json 'd["startup_locality"]')" 3
    assert_eq "$(json r.json '[d["pcrs"][b]["0"] for b in ("sha1", "sha256", "sha384", "sha512")]')" \
        "[\"$e1\", \"$e256\", \"$e384\", \"$e512\"]"
    assert_eq "$(json r.json '[d["events"], d["events_extended"]]')" "[3, 1]"
    # without the locality event PCR 0 starts at zero
    assert_ne "$(citadel tpm --json attest eventlog replay "$EVDIR/event.bin" | json - 'd["pcrs"]["sha256"]["0"]')" "$e256"
}
