# SPDX-License-Identifier: Apache-2.0
# Export formats checked against OpenSSL's reading of the PEM: JWK coordinates / modulus and
# exponent, the RFC 7638 kid, cosign = PEM, openssl = PEM, and the SPKI fingerprint.
# shellcheck source=tests/interop/interop-lib.bash
source "$ROOT/tests/interop/interop-lib.bash"
INTEROP_FILE=$ROOT/tests/interop/$(basename "${BASH_SOURCE[0]}")

# openssl_pub_hex PEM FIELD: the colon-separated hex block after FIELD ("pub:" or "Modulus:")
# in `openssl pkey -pubin -text -noout`, as one lowercase hex string.
openssl_pub_hex() {
    openssl pkey -pubin -in "$1" -text -noout | awk -v f="$2" '
        $0 ~ "^"f { on = 1; next }
        on && /^    / { gsub(/[ :]/, ""); printf "%s", $0; next }
        on { exit }'
}

# check_jwk NAME KTY CRV/BITS ALG: compares NAME's JWK with openssl's reading of its PEM.
check_jwk() {
    citadel tpm key export-pub "$1" --export-for jwk --output "$1.jwk" >/dev/null
    citadel tpm key export-pub "$1" --output "$1.pem" >/dev/null
    check_jwk_files "$@"
}

# check_jwk_files NAME KTY CRV/BITS ALG: the same on existing NAME.jwk and NAME.pem.
check_jwk_files() {
    local name=$1 kty=$2 size=$3 alg=$4 pemhex ehex
    if [ "$kty" == EC ]; then
        # openssl: pub: 04 || x || y (uncompressed point), "ASN1 OID: secp384r1", "NIST CURVE: P-384".
        pemhex=$(openssl_pub_hex "$name.pem" "pub:")
        assert_contains "$(openssl ec -pubin -in "$name.pem" -text -noout 2>/dev/null)" "NIST CURVE: $size"
        ehex=
    else
        pemhex=$(openssl_pub_hex "$name.pem" "Modulus:")
        ehex=$(openssl pkey -pubin -in "$name.pem" -text -noout | sed -n 's/^Exponent: \([0-9]*\) .*/\1/p')
    fi
    [ -n "$pemhex" ] || fail "could not read the key from openssl's text output of $name.pem"
    python3 - "$name.jwk" "$kty" "$size" "$alg" "$pemhex" "$ehex" <<'EOF'
import base64, hashlib, json, sys
path, kty, size, alg, pemhex, exp = sys.argv[1:]
raw = open(path, "rb").read()
j = json.loads(raw)

def b64u(s):
    assert "=" not in s and "+" not in s and "/" not in s, "not base64url without padding: %r" % s
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

def check(cond, msg):
    if not cond:
        sys.exit("JWK check failed: %s; jwk=%s" % (msg, raw.decode()))

check(j.get("kty") == kty, "kty %r, expected %r" % (j.get("kty"), kty))
check(j.get("alg") == alg, "alg %r, expected %r" % (j.get("alg"), alg))
check(j.get("use", "sig") == "sig", "use %r" % j.get("use"))
check("d" not in j and "p" not in j, "private members in a public JWK")
if kty == "EC":
    check(j.get("crv") == size, "crv %r, expected %r" % (j.get("crv"), size))
    n = {"P-256": 32, "P-384": 48}[size]
    x, y = b64u(j["x"]), b64u(j["y"])
    # RFC 7518 6.2.1.2: the full coordinate length, leading zeros kept.
    check(len(x) == n and len(y) == n, "x/y are %d/%d bytes, expected %d" % (len(x), len(y), n))
    point = bytes.fromhex(pemhex)
    check(point[0] == 4 and len(point) == 1 + 2 * n, "openssl point is not uncompressed")
    check(x == point[1:1 + n], "x differs from the PEM's x")
    check(y == point[1 + n:], "y differs from the PEM's y")
    members = {"crv": j["crv"], "kty": "EC", "x": j["x"], "y": j["y"]}
else:
    nb, eb = b64u(j["n"]), b64u(j["e"])
    # RFC 7518 6.3.1: no leading zero octets.
    check(nb[0] != 0 and eb[0] != 0, "n or e has a leading zero octet")
    check(len(nb) * 8 == int(size), "n is %d bits, expected %s" % (len(nb) * 8, size))
    check(int.from_bytes(nb, "big") == int(pemhex, 16), "n differs from the PEM's modulus")
    check(int.from_bytes(eb, "big") == int(exp), "e differs from the PEM's exponent %s" % exp)
    members = {"e": j["e"], "kty": "RSA", "n": j["n"]}
# RFC 7638 thumbprint: SHA-256 over the required members, sorted, no whitespace.
canon = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
kid = base64.urlsafe_b64encode(hashlib.sha256(canon).digest()).rstrip(b"=").decode()
check(j.get("kid") == kid, "kid %r is not the RFC 7638 thumbprint %r" % (j.get("kid"), kid))
EOF
}

itest_jwk_matches_pem_all_algorithms() {
    init_vtpm
    citadel tpm key create p256 --algorithm ecc-p256 >/dev/null
    citadel tpm key create p384 --algorithm ecc-p384 >/dev/null
    citadel tpm key create r2 --algorithm rsa-2048 >/dev/null
    citadel tpm key create pss --algorithm rsa-2048 --scheme rsapss >/dev/null
    check_jwk p256 EC P-256 ES256
    check_jwk p384 EC P-384 ES384
    check_jwk r2 RSA 2048 RS256
    check_jwk pss RSA 2048 PS256
}

# The JWK's "alg" names what the key's default signature is (RFC 7518: ES384 = P-384 + SHA-384,
# RS384 = PKCS#1 v1.5 + SHA-384, ...): a JOSE verifier that follows "alg" must accept what
# `key sign` makes by default. Mock backend, one batch process (rsa-3072 keygen is cheap there).
itest_jwk_alg_matches_default_signature_mock() {
    make_messages
    local d=$PWD line name alg scheme hash jalg jhash
    {
        echo init
        matrix_create_cmds
        for line in "${INTEROP_KEYS[@]}"; do
            read -r name alg scheme hash <<<"$line"
            echo "key export-pub $name --export-for jwk --output $d/$name.jwk"
            echo "key export-pub $name --output $d/$name.pem"
            echo "key sign $name --input $d/msg --output $d/$name.sig"
        done
    } >cmds
    citadel tpm --backend mock batch --input cmds >/dev/null 2>err || fail "batch failed: $(cat err)"
    check_jwk_files p256 EC P-256 ES256
    check_jwk_files p384 EC P-384 ES384
    check_jwk_files r2 RSA 2048 RS256
    check_jwk_files pss RSA 2048 PS256
    # rsa-3072 signs with SHA-384 by default (key sign --help), so its JWK must say RS384.
    check_jwk_files r3 RSA 3072 RS384
    for line in "${INTEROP_KEYS[@]}"; do
        read -r name alg scheme hash <<<"$line"
        jalg=$(json "$name.jwk" 'd["alg"]')
        jhash=sha${jalg:2}
        openssl_verify "$name.pem" "$name.sig" msg "$jhash" "$scheme" ||
            fail "default signature of $name does not verify as its JWK alg $jalg"
    done
    # PS256 (RFC 7518 3.5) requires the salt length to equal the digest length.
    openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
        -verify pss.pem -signature pss.sig msg >/dev/null || fail "PSS salt length is not the digest length"
}

# JWK on the result (no --output) is the same document as the file.
itest_jwk_stdout_equals_file() {
    init_vtpm
    citadel tpm key create k >/dev/null
    citadel tpm key export-pub k --export-for jwk --output k.jwk >/dev/null
    citadel tpm key export-pub k --export-for jwk >k.stdout.jwk
    assert_eq "$(json k.stdout.jwk 'sorted(d.items())')" "$(json k.jwk 'sorted(d.items())')"
}

# cosign and openssl exports are the PEM, byte for byte (cosign refuses RSA-PSS: TPM0034); openssl re-encodes it identically;
# `key show`'s fingerprint_sha256 is the SHA-256 of the DER SubjectPublicKeyInfo.
itest_cosign_and_openssl_exports_equal_pem() {
    init_vtpm
    local n
    citadel tpm key create p256 --algorithm ecc-p256 >/dev/null
    citadel tpm key create p384 --algorithm ecc-p384 >/dev/null
    citadel tpm key create r2 --algorithm rsa-2048 >/dev/null
    citadel tpm key create pss --algorithm rsa-2048 --scheme rsapss >/dev/null
    for n in p256 p384 r2 pss; do
        citadel tpm key export-pub "$n" --output "$n.pem" >/dev/null
        citadel tpm key export-pub "$n" --export-for pem --output "$n.pem2" >/dev/null
        citadel tpm key export-pub "$n" --export-for openssl --output "$n.openssl.pem" >/dev/null
        cmp "$n.pem" "$n.pem2" || fail "--export-for pem differs from the default for $n"
        cmp "$n.pem" "$n.openssl.pem" || fail "--export-for openssl differs from pem for $n"
        openssl pkey -pubin -in "$n.pem" -out "$n.reenc.pem"
        cmp "$n.pem" "$n.reenc.pem" || fail "$n.pem is not the canonical PEM openssl writes"
        citadel tpm --json key show "$n" >"$n.show.json"
        assert_eq "$(json "$n.show.json" 'd["public_key_pem"]')" "$(cat "$n.pem")" "key show PEM of $n"
        assert_eq "$(json "$n.show.json" 'd["fingerprint_sha256"]')" \
            "$(openssl pkey -pubin -in "$n.pem" -outform DER | sha256sum | cut -d' ' -f1)" "fingerprint of $n"
        if [ "$n" == pss ]; then
            # cosign verifies RSA as PKCS#1 v1.5 only: a PSS key has no cosign form.
            expect_fail 3 TPM0034 citadel tpm key export-pub "$n" --export-for cosign --output "$n.cosign.pub"
            assert_no_file "$n.cosign.pub"
            continue
        fi
        citadel tpm key export-pub "$n" --export-for cosign --output "$n.cosign.pub" >/dev/null
        cmp "$n.pem" "$n.cosign.pub" || fail "--export-for cosign differs from pem for $n"
        head -1 "$n.cosign.pub" | grep -qx -- '-----BEGIN PUBLIC KEY-----' || fail "cosign export is not a PUBLIC KEY PEM"
    done
}

# After rotate, export-pub --version 1 is the old key and the default the new one; each verifies
# only its own version's signature in openssl.
itest_rotate_exports_verify_in_openssl() {
    init_vtpm
    make_messages
    citadel tpm key create k >/dev/null
    citadel tpm key sign k --input msg --output v1.sig >/dev/null
    citadel tpm key rotate k >/dev/null
    citadel tpm key sign k --input msg --output v2.sig >/dev/null
    citadel tpm key export-pub k --version 1 --output v1.pem >/dev/null
    citadel tpm key export-pub k --output v2.pem >/dev/null
    citadel tpm key export-pub k --version 2 --export-for cosign --output v2.cosign.pub >/dev/null
    cmp -s v1.pem v2.pem && fail "rotate kept the same public key"
    cmp v2.pem v2.cosign.pub || fail "version 2 cosign export differs from the current PEM"
    openssl_verify v1.pem v1.sig msg sha256
    openssl_verify v2.pem v2.sig msg sha256
    openssl_reject v2.pem v1.sig msg sha256
    openssl_reject v1.pem v2.sig msg sha256
}

interop_register
