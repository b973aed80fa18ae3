#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`: an end-to-end run on the embedded vTPM, in a fresh workspace under build/demo
# (your own workspace is not touched).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${B:=build}"
CITADEL="$ROOT/$B/citadel"
DEMO="$ROOT/$B/demo"
rm -rf "$DEMO"
mkdir -p "$DEMO"
cd "$DEMO"
export TPM_STORE_PATH="$DEMO/store.db"

step() {
    printf '\n\033[1m$ %s\033[0m\n' "$*"
    "$@"
}

echo "Citadel demo: workspace $TPM_STORE_PATH, backend vtpm (libtpms in-process)"
step "$CITADEL" tpm init
step "$CITADEL" tpm key create signing/release --algorithm ecc-p256
printf 'citadel release 1.0\n' >release.txt
step "$CITADEL" tpm key sign signing/release --input release.txt --output release.sig
step "$CITADEL" tpm key export-pub signing/release --output release.pub.pem
step openssl dgst -sha256 -verify release.pub.pem -signature release.sig release.txt
step "$CITADEL" tpm key verify signing/release --input release.txt --signature release.sig
step "$CITADEL" tpm key export-pub signing/release --export-for ssh

echo
echo "A secret sealed to PCR 7: the TPM releases it only while PCR 7 keeps its value."
printf 'database password: correct horse battery staple\n' >secret.txt
step "$CITADEL" tpm secret seal db/password --input secret.txt --pcr 7
step "$CITADEL" tpm secret unseal db/password
printf 'new bootloader\n' >bootloader.bin
step "$CITADEL" tpm pcr extend --index 7 --data bootloader.bin
printf '\n\033[1m$ %s\033[0m\n' "$CITADEL tpm secret unseal db/password    # PCR 7 changed: the TPM refuses"
if "$CITADEL" tpm secret unseal db/password; then
    echo "demo: the TPM unsealed after PCR 7 changed; that must not happen" >&2
    exit 1
fi
step "$CITADEL" tpm recover show boot-change || true

echo
echo "Attestation: the EK certificate (the vTPM's local factory CA), an AK, a quote, its checks."
step "$CITADEL" tpm ek verify --algorithm ecc-p256
step "$CITADEL" tpm attest ak-create attest/ak
NONCE=$(openssl rand -hex 20)
step "$CITADEL" tpm attest quote --ak attest/ak --pcr 0,7 --nonce "$NONCE" --output quote.json
step "$CITADEL" tpm attest verify --quote quote.json --nonce "$NONCE"
python3 - <<'PY'
import base64, json
q = json.load(open("quote.json"))
open("quote.msg", "wb").write(base64.b64decode(q["attest"]))
open("quote.sig", "wb").write(base64.b64decode(q["signature"]))
open("ak.pem", "w").write(q["ak_public_pem"])
PY
step tpm2_checkquote -u ak.pem -m quote.msg -s quote.sig -q "$NONCE"

echo
echo "The audit log: entries, a segment whose checkpoint the TPM signs, an inclusion proof, a tamper."
step "$CITADEL" tpm audit append --event release --payload 'citadel release 1.0 signed'
step "$CITADEL" tpm audit append --event quote --payload "nonce $NONCE verified"
step "$CITADEL" tpm audit segments close
step "$CITADEL" tpm identity init audit-signer --usage audit >/dev/null
step "$CITADEL" tpm audit sign --identity audit-signer
step "$CITADEL" tpm audit prove 1 --output proof.json
step "$CITADEL" tpm audit verify
echo "Someone rewrites entry 1 in the store behind citadel's back:"
python3 - "$TPM_STORE_PATH" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE audit_entries SET payload = CAST('citadel release 1.0 NOT signed' AS BLOB) WHERE seqno = 1")
c.commit()
PY
printf '\n\033[1m$ %s\033[0m\n' "$CITADEL tpm audit chain verify    # the tamper is found, with the first bad entry"
if "$CITADEL" tpm audit chain verify; then
    echo "demo: the audit chain verified after an entry was rewritten; that must not happen" >&2
    exit 1
fi
step "$CITADEL" tpm status
echo
echo "Demo complete: the signature made in the TPM verified with openssl, the sealed secret was"
echo "refused by the TPM once PCR 7 changed, the quote verified with citadel and tpm2_checkquote,"
echo "and the audit log caught an entry rewritten after its checkpoint was signed in the TPM."
