#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/quote-cli.sh: `citadel tpm attest quote` as a whole process (issue 5: median on the vTPM
# under 15 ms), interleaved round by round with, for the record:
#
#   cit-vtpm-quote     citadel tpm attest quote --ak ak --pcr 0,7,11 --nonce N --output q.json
#                      on the embedded vTPM with an AK made by `attest ak-create` (wrapped under the
#                      EK): process start, store, vTPM state file, libtpms startup, the AK's
#                      context kept in the vTPM state loaded with TPM2_ContextLoad (the first
#                      quote derives the EK, starts its policy session and loads the AK),
#                      TPM2_ReadPublic name check, TPM2_Quote, TPM2_PCR_Read, JSON, atomic write,
#                      TPM2_Shutdown(STATE) and the state file rewritten
#   cit-vtpm-quote-persist  the same with an AK made by `attest ak-create --persist`
#   cit-swtpm-quote    the same command on swtpm (TCP)
#   tpm2_quote         tpm2_quote -c ak.ctx -l sha256:0,7,11 -q N -m -s -o on the same swtpm, with
#                      an AK from tpm2_createek + tpm2_createak (its context file loads the AK
#                      with TPM2_ContextLoad: no EK work), + tpm2_flushcontext -t (swtpm has no
#                      resource manager; without it the next quote runs out of object slots)
#   cit-vtpm-sign      citadel tpm key sign k --input msg --output sig on the same vTPM workspace:
#                      context, the same process and vTPM costs with a key under the SRK
#                      (password session) instead of an AK under the EK (policy session)
#   cit-verify         citadel tpm attest verify --quote q.json --nonce N --ak-pub ak.pem
#                      (software only; the PEM parse costs most of it, see README)
#   tpm2_checkquote    tpm2_checkquote -u ak.pem -m msg -s sig -q N -f pcrs -l sha256:0,7,11
#
# Every nonce is fresh (openssl-grade randomness from os.urandom); every output is checked
# after the timing: citadel verify and tpm2_checkquote accept the last quotes.
# N rounds (default 100) after W warm-up rounds (default 5). Prints a table and RESULT lines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/sign-cli.sh
source "$root/bench/sign-cli.sh"
: "${B:=build}"
case $B in /*) citadel=$B/citadel ;; *) citadel=$root/$B/citadel ;; esac
n=${N:-100}
w=${W:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/citadel-quote-cli.XXXXXX")
trap 'bench_stop_swtpm; [ -z "${BENCH_KEEP:-}" ] && rm -rf "$work"; true' EXIT
trap 'exit 130' INT TERM
cd "$work"

vt=$work/vt/store.db
"$citadel" tpm --backend vtpm --store-path "$vt" init >/dev/null
"$citadel" tpm --store-path "$vt" attest ak-create ak >/dev/null
"$citadel" tpm --store-path "$vt" attest ak-create akp --persist >/dev/null
"$citadel" tpm --store-path "$vt" key create k >/dev/null
head -c 1024 /dev/urandom >msg
"$citadel" tpm --store-path "$vt" --json attest ak-show ak | python3 -c 'import json, sys; print(json.load(sys.stdin)["ak_public_pem"], end="")' >vt-ak.pem

tcti=
if command -v swtpm >/dev/null && command -v tpm2_quote >/dev/null && bench_start_swtpm "$work"; then
    tcti=$BENCH_SWTPM_TCTI
    sw=$work/sw/store.db
    "$citadel" tpm --backend swtpm --tcti "$tcti" --store-path "$sw" init >/dev/null
    "$citadel" tpm --store-path "$sw" attest ak-create ak >/dev/null
    tpm2_createek -T "$tcti" -c ek.ctx -G ecc -u ek.pub >/dev/null
    tpm2_createak -T "$tcti" -C ek.ctx -c ak.ctx -G ecc -g sha256 -s ecdsa -u t-ak.pem -f pem >/dev/null
    tpm2_flushcontext -T "$tcti" -t
    tpm2_flushcontext -T "$tcti" -s
else
    echo "quote-cli: swtpm or tpm2-tools missing: only the vTPM is measured" >&2
fi

python3 - "$n" "$w" "$citadel" "$vt" "${sw:-}" "$tcti" <<'PY'
import os, statistics, subprocess, sys, time
n, w, cit, vt, sw, tcti = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:7]
null = open(os.devnull, "wb")
def run(argv):
    t0 = time.perf_counter_ns()
    p = subprocess.run(argv, stdout=null, stderr=subprocess.PIPE)
    t = time.perf_counter_ns() - t0
    if p.returncode:
        sys.exit(f"quote-cli: {' '.join(argv)} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return t / 1e6
PCRS = "0,7,11"
state = {}
def cit_quote(store, tag, ak="ak"):
    nonce = os.urandom(20).hex()
    state[tag] = nonce
    return run([cit, "tpm", "--store-path", store, "attest", "quote", "--ak", ak, "--pcr", PCRS, "--nonce", nonce,
                "--output", f"{tag}.json"])
def tools_quote():
    nonce = os.urandom(20).hex()
    state["tools"] = nonce
    return run(["tpm2_quote", "-T", tcti, "-c", "ak.ctx", "-l", "sha256:" + PCRS, "-q", nonce, "-m", "t.msg", "-s", "t.sig",
                "-o", "t.pcrs", "-F", "values", "-g", "sha256"]) + run(["tpm2_flushcontext", "-T", tcti, "-t"])
jobs = [("cit-vtpm-quote", lambda: cit_quote(vt, "vt")),
        ("cit-vtpm-quote-persist", lambda: cit_quote(vt, "vtp", "akp")),
        ("cit-vtpm-sign", lambda: run([cit, "tpm", "--store-path", vt, "key", "sign", "k", "--input", "msg", "--output", "sig"])),
        ("cit-verify", lambda: run([cit, "tpm", "--store-path", vt, "attest", "verify", "--quote", "vt.json",
                                    "--nonce", state["vt"], "--ak-pub", "vt-ak.pem"]))]
if sw:
    jobs += [("cit-swtpm-quote", lambda: cit_quote(sw, "sw")),
             ("tpm2_quote", tools_quote),
             ("tpm2_checkquote", lambda: run(["tpm2_checkquote", "-u", "t-ak.pem", "-m", "t.msg", "-s", "t.sig", "-q",
                                              state["tools"], "-f", "t.pcrs", "-l", "sha256:" + PCRS]))]
# the verifiers need a quote to exist before their first turn
cit_quote(vt, "vt")
if sw:
    tools_quote()
res = {k: [] for k, _ in jobs}
for r in range(w + n):
    k = len(jobs)
    for j in range(k):
        name, fn = jobs[(j + r) % k]
        t = fn()
        if r >= w:
            res[name].append(t)
# the last outputs are good quotes (checked by the other side's verifier too)
run([cit, "tpm", "--store-path", vt, "attest", "verify", "--quote", "vt.json", "--nonce", state["vt"]])
if sw:
    run([cit, "tpm", "--store-path", sw, "attest", "verify", "--quote", "sw.json", "--nonce", state["sw"]])
    run(["tpm2_checkquote", "-u", "t-ak.pem", "-m", "t.msg", "-s", "t.sig", "-q", state["tools"], "-f", "t.pcrs", "-l", "sha256:" + PCRS])
print(f"== quote-cli: attest quote as a whole process, PCRs {PCRS}, N={n} interleaved rounds (W={w} warm-up)")
print("  command            median ms   mean ms    p10 ms    p90 ms")
med = {}
for k, v in res.items():
    v = sorted(v)
    med[k] = statistics.median(v)
    print(f"  {k:22s} {med[k]:10.2f} {statistics.mean(v):9.2f} {v[len(v) // 10]:9.2f} {v[(9 * len(v)) // 10]:9.2f}")
vq0 = med["cit-vtpm-quote"]
vq = med["cit-vtpm-quote-persist"]
print(f"    cit-vtpm-quote (AK wrapped under the EK, its kept context loaded): {vq0:.2f} ms (goal < 15 ms: {'yes' if vq0 < 15 else 'no'})")
print(f"    cit-vtpm-quote-persist (ak-create --persist): {vq:.2f} ms (goal < 15 ms: {'yes' if vq < 15 else 'no'})")
lines = []
if sw:
    r = med["cit-swtpm-quote"] / med["tpm2_quote"]
    print(f"    cit-swtpm-quote / tpm2_quote (incl. its flush): {r:.3f} (for the record; on swtpm citadel derives the EK and loads the AK each time)")
    lines.append(f"RESULT\tquote-cli\tcit-vtpm-quote (persistent AK) median ms\t{vq:.2f}\ttpm2_quote (swtpm)\t{med['tpm2_quote']:.2f}\t{vq / med['tpm2_quote']:.3f}\t< 15 ms")
    lines.append(f"RESULT\tquote-cli\tcit-vtpm-quote (AK under the EK) median ms\t{vq0:.2f}\ttpm2_quote (swtpm)\t{med['tpm2_quote']:.2f}\t{vq0 / med['tpm2_quote']:.3f}\t< 15 ms")
    rv = med["cit-verify"] / med["tpm2_checkquote"]
    lines.append(f"RESULT\tquote-cli\tcit-verify median ms\t{med['cit-verify']:.2f}\ttpm2_checkquote\t{med['tpm2_checkquote']:.2f}\t{rv:.3f}\t-")
else:
    lines.append(f"RESULT\tquote-cli\tcit-vtpm-quote (persistent AK) median ms\t{vq:.2f}\t-\t-\t-\t< 15 ms")
    lines.append(f"RESULT\tquote-cli\tcit-vtpm-quote (AK under the EK) median ms\t{vq0:.2f}\t-\t-\t-\t< 15 ms")
for l in lines:
    print(l)
PY
