# SPDX-License-Identifier: Apache-2.0
# Helpers shared by tests/interop/test-*.sh. Not a test file itself (run.sh only picks up *.sh);
# each test file sources it after tests/lib/testlib.sh.

# ---- strict mode ----
# tests/run.sh runs each test as `if (cd "$T" && set -e && ... && "$fn") ...; then`: inside an
# `if` condition bash ignores set -e, so a failing command in the middle of a test would not
# fail it. Our tests are therefore written as itest_NAME bodies and registered as test_NAME
# wrappers that run the body in a fresh bash process, where set -e -o pipefail does apply.
# A file sets INTEROP_FILE=${BASH_SOURCE[0]} and calls interop_register at its end.
interop_strict() {
    bash -c 'source "$1/tests/lib/testlib.sh" || exit 1
source "$2" || exit 1
set -e -o pipefail
trap stop_swtpm EXIT
"$3"' _ "$ROOT" "$INTEROP_FILE" "$1"
}

interop_register() {
    local fn
    for fn in $(declare -F | awk '{print $3}' | grep '^itest_'); do
        eval "test_${fn#itest_}() { interop_strict $fn; }"
    done
}

# The algorithm matrix: NAME ALGORITHM SCHEME(or -) DEFAULT_DIGEST
INTEROP_KEYS=(
    "p256 ecc-p256 - sha256"
    "p384 ecc-p384 - sha384"
    "r2 rsa-2048 - sha256"
    "r3 rsa-3072 - sha384"
    "pss rsa-2048 rsapss sha256"
)

# raw_to_der IN OUT: ECDSA r||s (two equal halves) to a DER Ecdsa-Sig-Value, with a tiny
# hand-written DER encoder (no python packages).
raw_to_der() {
    python3 - "$1" "$2" <<'EOF'
import sys
raw = open(sys.argv[1], "rb").read()
assert len(raw) % 2 == 0 and len(raw) > 0, "odd raw signature length %d" % len(raw)
half = len(raw) // 2

def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b

def der_int(b):
    b = b.lstrip(b"\x00") or b"\x00"
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + der_len(len(b)) + b

body = der_int(raw[:half]) + der_int(raw[half:])
open(sys.argv[2], "wb").write(b"\x30" + der_len(len(body)) + body)
EOF
}

# ecdsa_check_dir DIR COORD: every DIR/*.raw is exactly 2*COORD bytes and is written as
# DIR/*.raw.der; every DIR/*.der (Citadel's DER) is strict minimal DER of two positive INTEGERs
# of at most COORD bytes. Prints how many had a leading zero byte in r or s (the edge cases).
ecdsa_check_dir() {
    python3 - "$1" "$2" <<'EOF2'
import glob, os, sys
d, n = sys.argv[1], int(sys.argv[2])

def der_len(k):
    if k < 0x80:
        return bytes([k])
    b = k.to_bytes((k.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b

def der_int(b):
    b = b.lstrip(b"\x00") or b"\x00"
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + der_len(len(b)) + b

def parse_strict(sig, name):
    def rd_len(i):
        if sig[i] < 0x80:
            return sig[i], i + 1
        k = sig[i] & 0x7F
        assert k == 1 and sig[i + 1] >= 0x80, "%s: non-minimal length" % name
        return sig[i + 1], i + 2
    assert sig[0] == 0x30, "%s: not a SEQUENCE" % name
    ln, i = rd_len(1)
    assert i + ln == len(sig), "%s: SEQUENCE length %d, %d bytes follow" % (name, ln, len(sig) - i)
    out = []
    for _ in range(2):
        assert sig[i] == 0x02, "%s: not an INTEGER" % name
        ln, i = rd_len(i + 1)
        v = sig[i:i + ln]
        assert ln > 0 and not (v[0] & 0x80), "%s: negative or empty INTEGER" % name
        assert not (ln > 1 and v[0] == 0 and not (v[1] & 0x80)), "%s: non-minimal INTEGER" % name
        assert len(v.lstrip(b"\x00")) <= n, "%s: INTEGER longer than the curve" % name
        out.append(v)
        i += ln
    assert i == len(sig), "%s: trailing bytes" % name
    return out

edge = 0
raws = sorted(glob.glob(os.path.join(d, "*.raw")))
for f in raws:
    raw = open(f, "rb").read()
    assert len(raw) == 2 * n, "%s: %d bytes, expected %d" % (f, len(raw), 2 * n)
    if raw[0] == 0 or raw[n] == 0:
        edge += 1
    body = der_int(raw[:n]) + der_int(raw[n:])
    open(f + ".der", "wb").write(b"\x30" + der_len(len(body)) + body)
ders = sorted(g for g in glob.glob(os.path.join(d, "*.der")) if not g.endswith(".raw.der"))
for f in ders:
    r, s = parse_strict(open(f, "rb").read(), f)
    if len(r.lstrip(b"\x00")) < n or len(s.lstrip(b"\x00")) < n:
        edge += 1
print("%d raw, %d der, %d with a short r or s" % (len(raws), len(ders), edge))
EOF2
}

# openssl_verify PEM SIG FILE HASH SCHEME: openssl dgst must say "Verified OK".
openssl_verify() {
    local pem=$1 sig=$2 file=$3 hash=$4 scheme=${5:--} out opts=()
    [ "$scheme" == rsapss ] && opts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-2)
    out=$(openssl dgst "-$hash" "${opts[@]}" -verify "$pem" -signature "$sig" "$file" 2>&1) ||
        fail "openssl dgst -$hash ${opts[*]} -verify $pem -signature $sig $file: $out"
    assert_eq "$out" "Verified OK" "openssl verify of $sig"
}

# openssl_reject PEM SIG FILE HASH SCHEME: openssl dgst must refuse.
openssl_reject() {
    local pem=$1 sig=$2 file=$3 hash=$4 scheme=${5:--} out opts=()
    [ "$scheme" == rsapss ] && opts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-2)
    if out=$(openssl dgst "-$hash" "${opts[@]}" -verify "$pem" -signature "$sig" "$file" 2>&1); then
        fail "openssl accepted $sig over the wrong file $file: $out"
    fi
    assert_contains "$out" "Verification failure"
}

# pkeyutl_verify PEM SIG DIGESTFILE HASH SCHEME: openssl pkeyutl over a precomputed digest.
pkeyutl_verify() {
    local pem=$1 sig=$2 dig=$3 hash=$4 scheme=${5:--} out opts
    opts=(-pkeyopt "digest:$hash")
    [ "$scheme" == rsapss ] && opts+=(-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:-2)
    out=$(openssl pkeyutl -verify -pubin -inkey "$pem" -sigfile "$sig" -in "$dig" "${opts[@]}" 2>&1) ||
        fail "openssl pkeyutl -verify ${opts[*]} of $sig: $out"
    assert_contains "$out" "Signature Verified Successfully"
}

# The msg / msg.bad / msg.<hash>.bin / msg.sha256.hex fixtures in the current directory.
make_messages() {
    head -c 3000 /dev/urandom >msg
    printf 'release 1.0\n' >>msg
    cp msg msg.bad
    # change byte 100 to a value it does not already have (the message is random)
    local c=X
    [ "$(dd if=msg bs=1 skip=100 count=1 2>/dev/null)" == X ] && c=Y
    printf '%s' "$c" | dd of=msg.bad bs=1 seek=100 conv=notrunc 2>/dev/null
    cmp -s msg msg.bad && fail "msg.bad equals msg"
    local h
    for h in sha256 sha384 sha512; do openssl dgst "-$h" -binary msg >"msg.$h.bin"; done
    openssl dgst -sha256 -r msg | cut -d' ' -f1 >msg.sha256.hex
}

# matrix_create_cmds / matrix_sign_cmds: citadel command lines (without "citadel tpm") for the
# whole algorithm matrix, signing $PWD/msg. Paths are absolute so batch and per-process agree.
matrix_create_cmds() {
    local line name alg scheme hash
    for line in "${INTEROP_KEYS[@]}"; do
        read -r name alg scheme hash <<<"$line"
        if [ "$scheme" == - ]; then
            echo "key create $name --algorithm $alg"
        else
            echo "key create $name --algorithm $alg --scheme $scheme"
        fi
    done
}

matrix_sign_cmds() {
    local d=$PWD line name alg scheme hash
    for line in "${INTEROP_KEYS[@]}"; do
        read -r name alg scheme hash <<<"$line"
        echo "key sign $name --input $d/msg --output $d/$name.sig"
        echo "key export-pub $name --output $d/$name.pem"
    done
    # ECDSA raw r||s.
    echo "key sign p256 --input $d/msg --encoding raw --output $d/p256.raw"
    echo "key sign p384 --input $d/msg --encoding raw --output $d/p384.raw"
    # A non-default digest.
    echo "key sign p256 --input $d/msg --digest sha512 --output $d/p256.sha512.sig"
    echo "key sign r2 --input $d/msg --digest sha512 --output $d/r2.sha512.sig"
    # Pre-hashed input (openssl dgst -binary), and hex.
    echo "key sign p256 --input $d/msg.sha256.bin --input-is-digest --output $d/p256.dig.sig"
    echo "key sign p384 --input $d/msg.sha384.bin --input-is-digest --digest sha384 --output $d/p384.dig.sig"
    echo "key sign r2 --input $d/msg.sha256.bin --input-is-digest --digest sha256 --output $d/r2.dig.sig"
    echo "key sign pss --input $d/msg.sha256.bin --input-is-digest --digest sha256 --output $d/pss.dig.sig"
    echo "key sign p256 --input $d/msg.sha256.hex --input-is-digest --digest sha256 --output $d/p256.hex.sig"
}

# matrix_check: every signature the matrix wrote verifies with openssl; tampered input fails.
matrix_check() {
    local line name alg scheme hash n
    for line in "${INTEROP_KEYS[@]}"; do
        read -r name alg scheme hash <<<"$line"
        assert_file "$name.sig"
        assert_file "$name.pem"
        openssl pkey -pubin -in "$name.pem" -noout 2>/dev/null || fail "$name.pem is not a public key openssl reads"
        openssl_verify "$name.pem" "$name.sig" msg "$hash" "$scheme"
        openssl_reject "$name.pem" "$name.sig" msg.bad "$hash" "$scheme"
        # The same signature, verified by pkeyutl over the digest.
        pkeyutl_verify "$name.pem" "$name.sig" "msg.$hash.bin" "$hash" "$scheme"
        case "$alg" in
        ecc-p256) openssl pkey -pubin -in "$name.pem" -text -noout | grep -q 'prime256v1' || fail "$name is not P-256" ;;
        ecc-p384) openssl pkey -pubin -in "$name.pem" -text -noout | grep -q 'secp384r1' || fail "$name is not P-384" ;;
        rsa-2048) openssl pkey -pubin -in "$name.pem" -text -noout | grep -q '(2048 bit)' || fail "$name is not RSA-2048" ;;
        rsa-3072) openssl pkey -pubin -in "$name.pem" -text -noout | grep -q '(3072 bit)' || fail "$name is not RSA-3072" ;;
        esac
    done
    # Raw ECDSA: exactly 2 * the coordinate size, and r||s -> DER verifies.
    n=$(stat -c %s p256.raw)
    assert_eq "$n" 64 "P-256 raw signature size"
    n=$(stat -c %s p384.raw)
    assert_eq "$n" 96 "P-384 raw signature size"
    raw_to_der p256.raw p256.raw.der
    raw_to_der p384.raw p384.raw.der
    openssl_verify p256.pem p256.raw.der msg sha256
    openssl_verify p384.pem p384.raw.der msg sha384
    openssl_reject p256.pem p256.raw.der msg.bad sha256
    # sha512 on P-256 and RSA-2048.
    openssl_verify p256.pem p256.sha512.sig msg sha512
    openssl_verify r2.pem r2.sha512.sig msg sha512
    openssl_reject p256.pem p256.sha512.sig msg sha256
    # Pre-hashed: verifies over the original file.
    openssl_verify p256.pem p256.dig.sig msg sha256
    openssl_verify p384.pem p384.dig.sig msg sha384
    openssl_verify r2.pem r2.dig.sig msg sha256
    openssl_verify pss.pem pss.dig.sig msg sha256 rsapss
    openssl_verify p256.pem p256.hex.sig msg sha256
    openssl_reject p256.pem p256.dig.sig msg.bad sha256
    pkeyutl_verify p256.pem p256.dig.sig msg.sha256.bin sha256
    pkeyutl_verify r2.pem r2.dig.sig msg.sha256.bin sha256
    pkeyutl_verify pss.pem pss.dig.sig msg.sha256.bin sha256 rsapss
    # RSA-PSS salt length equals the digest length (what JWS PS256 and most verifiers require).
    openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
        -verify pss.pem -signature pss.sig msg >/dev/null || fail "PSS salt length is not the digest length"
}

# run_lines: each stdin line as its own citadel process.
run_lines() {
    local line
    while read -r line; do
        [ -n "$line" ] || continue
        # shellcheck disable=SC2086
        citadel tpm $line >/dev/null || fail "citadel tpm $line failed"
    done
}

# ---- swtpm instances beyond the one testlib manages ----

# swtpm_up DIR PORT [FLAGS]: starts swtpm on DIR/PORT (ctrl PORT+1); sets UP_PID.
# FLAGS default "not-need-init,startup-clear"; waits until it answers.
swtpm_up() {
    local dir=$1 port=$2 flags=${3:-not-need-init,startup-clear} pid deadline
    mkdir -p "$dir"
    swtpm socket --tpm2 --tpmstate dir="$dir" \
        --server type=tcp,port="$port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
        --flags "$flags" --log file="$dir.log" >/dev/null 2>&1 &
    pid=$!
    deadline=$((SECONDS + 10))
    # The control channel answers once swtpm is listening (with or without auto-startup).
    until swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -g >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { kill "$pid" 2>/dev/null; fail "swtpm did not come up on port $port: $(cat "$dir.log" 2>/dev/null)"; }
        kill -0 "$pid" 2>/dev/null || fail "swtpm exited: $(cat "$dir.log" 2>/dev/null)"
        sleep 0.05
    done
    if [[ "$flags" == *startup-clear* ]]; then
        until tpm2_getcap -T "swtpm:host=127.0.0.1,port=$port" properties-fixed >/dev/null 2>&1; do
            [ $SECONDS -lt $deadline ] || { kill "$pid" 2>/dev/null; fail "swtpm on port $port does not answer"; }
            sleep 0.05
        done
    fi
    UP_PID=$pid
}

swtpm_down() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    local _
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

# restart_swtpm [orderly|power-loss]: restarts the testlib swtpm on the same state dir and port,
# like a reboot: (TPM2_Shutdown(CLEAR) when orderly,) stop, start without auto-startup, then
# tpm2_startup -c (TPM2_Startup(CLEAR)). Volatile state (loaded objects, sessions) is gone.
restart_swtpm() {
    local how=${1:-orderly}
    [ -n "${SWTPM_BG:-}" ] || fail "restart_swtpm: swtpm not running"
    if [ "$how" == orderly ]; then
        tpm2_shutdown -c -T "$SWTPM_TCTI" || fail "tpm2_shutdown failed"
    fi
    swtpm_down "$SWTPM_BG"
    SWTPM_BG=
    swtpm_up "$T/swtpm" "$SWTPM_PORT" not-need-init
    SWTPM_BG=$UP_PID # stopped by the runner's stop_swtpm
    tpm2_startup -c -T "$SWTPM_TCTI" || fail "tpm2_startup -c failed after restart"
}

# no_transient_handles TCTI: nothing left loaded in the TPM (no resource manager cleans up).
no_transient_handles() {
    local tcti=$1 h s
    h=$(tpm2_getcap -T "$tcti" handles-transient) || fail "tpm2_getcap handles-transient failed"
    assert_eq "$h" "" "transient handles left loaded"
    s=$(tpm2_getcap -T "$tcti" handles-loaded-session) || fail "tpm2_getcap handles-loaded-session failed"
    assert_eq "$s" "" "sessions left loaded"
}
