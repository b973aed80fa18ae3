# SPDX-License-Identifier: Apache-2.0
# TPM-sealed Ed25519 keys checked by tools we did not write: OpenSSL (`pkeyutl -verify -rawin`),
# Python's cryptography package, and OpenSSH (`ssh-keygen -Y verify` of an SSHSIG signature whose
# inner Ed25519 signature citadel made).
# shellcheck source=tests/interop/interop-lib.bash
source "$ROOT/tests/interop/interop-lib.bash"
INTEROP_FILE=$ROOT/tests/interop/$(basename "${BASH_SOURCE[0]}")

itest_ed25519_openssl_and_python_verify() {
    init_vtpm
    citadel tpm key create ed/o --algorithm ed25519 >/dev/null
    citadel tpm key export-pub ed/o --output pub.pem >/dev/null
    printf 'x' >m1
    head -c 1000 /dev/urandom >m2
    head -c $((1024 * 1024)) /dev/urandom >m3
    for m in m1 m2 m3; do
        citadel tpm key sign ed/o --input $m --output $m.sig >/dev/null
        openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in $m -sigfile $m.sig >/dev/null ||
            fail "openssl does not verify $m"
    done
    # another message with m1's signature: openssl refuses
    ! openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in m2 -sigfile m1.sig >/dev/null 2>&1 ||
        fail "openssl verified m1's signature over m2"
    python3 - <<'PY'
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_public_key
k = load_pem_public_key(open("pub.pem", "rb").read())
for m in ("m1", "m2", "m3"):
    k.verify(open(m + ".sig", "rb").read(), open(m, "rb").read())
try:
    k.verify(open("m1.sig", "rb").read(), b"y")
    raise SystemExit("python verified a signature over another message")
except InvalidSignature:
    pass
PY
    # an openssl-made Ed25519 signature (another key) does not verify with citadel's key
    openssl genpkey -algorithm ed25519 -out other.pem 2>/dev/null
    openssl pkeyutl -sign -inkey other.pem -rawin -in m1 -out other.sig
    expect_fail 3 TPM0033 citadel tpm key verify ed/o --input m1 --signature other.sig
}

# ssh-keygen -Y sign's format (PROTOCOL.sshsig): citadel signs the SSHSIG "signed data" blob;
# python wraps the 64 bytes into the armored signature; ssh-keygen verifies it against the
# exported ssh-ed25519 public key in an allowed_signers file.
itest_ed25519_ssh_signature_verifies_with_ssh_keygen() {
    init_vtpm
    citadel tpm key create ssh/id --algorithm ed25519 --pcr 7 >/dev/null
    citadel tpm key export-pub ssh/id --export-for ssh --output id.pub >/dev/null
    printf 'release notes\n' >msg
    sshsig() { # sshsig MODE(tosign|armor) MSG [RAWSIG]
        python3 - "$@" <<'PY'
import base64, hashlib, struct, sys
mode, msg = sys.argv[1], sys.argv[2]
s = lambda b: struct.pack(">I", len(b)) + b
ns, h = b"file", hashlib.sha512(open(msg, "rb").read()).digest()
if mode == "tosign":
    sys.stdout.buffer.write(b"SSHSIG" + s(ns) + s(b"") + s(b"sha512") + s(h))
else:
    pub = base64.b64decode(open("id.pub").read().split()[1])
    raw = open(sys.argv[3], "rb").read()
    assert len(raw) == 64
    blob = b"SSHSIG" + struct.pack(">I", 1) + s(pub) + s(ns) + s(b"") + s(b"sha512") + s(s(b"ssh-ed25519") + s(raw))
    b64 = base64.b64encode(blob).decode()
    print("-----BEGIN SSH SIGNATURE-----")
    for i in range(0, len(b64), 76):
        print(b64[i:i + 76])
    print("-----END SSH SIGNATURE-----")
PY
    }
    sshsig tosign msg >tosign
    citadel tpm key sign ssh/id --input tosign --output raw.sig >/dev/null
    sshsig armor msg raw.sig >msg.sig
    printf 'ci@example %s\n' "$(cut -d' ' -f1,2 id.pub)" >allowed
    out=$(ssh-keygen -Y verify -f allowed -I ci@example -n file -s msg.sig <msg 2>&1) ||
        fail "ssh-keygen does not verify: $out"
    assert_contains "$out" 'Good "file" signature for ci@example'
    ssh-keygen -Y check-novalidate -n file -s msg.sig <msg >/dev/null 2>&1 || fail "check-novalidate failed"
    printf 'release notes, changed\n' >msg2
    ! ssh-keygen -Y verify -f allowed -I ci@example -n file -s msg.sig <msg2 >/dev/null 2>&1 ||
        fail "ssh-keygen verified the signature over another message"
}

interop_register
