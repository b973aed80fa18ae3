# SPDX-License-Identifier: Apache-2.0
# The PCR, secret, NV and policy flows on the in-memory mock backend (one process: batch).

test_mock_pcr_secret_nv_policy_flow() {
    printf 'mock secret' >s
    printf 'boot' >d
    printf 'name: m\nrequires:\n  pcr:\n    - index: 7\n' >m.yaml
    cat >cmds <<'C'
pcr baseline save boot --index 7
secret seal app/s --input s --pcr 7
secret unseal app/s --output out1
policy compile m.yaml
policy test m
nv define app/c --type counter
nv increment app/c
nv increment app/c
pcr extend --index 7 --data d
pcr baseline diff boot --exit-zero
C
    citadel tpm --backend mock --json batch --input cmds >flow.json
    cmp s out1 || fail "unsealed something else"
    python3 - <<'PY'
import json
docs, buf, depth = [], "", 0
for line in open("flow.json"):
    buf += line
    if line.startswith("}"):
        docs.append(json.loads(buf)); buf = ""
byname = {}
tests = [d for d in docs if "satisfied" in d]
assert tests and tests[0]["satisfied"] is True, tests
counters = [d["value"] for d in docs if d.get("path") == "app/c" and "value" in d]
assert counters == [1, 2], counters
diffs = [d for d in docs if d.get("baseline") == "boot" and "changed" in d]
assert diffs and [c["index"] for c in diffs[-1]["changed"]] == [7], diffs
PY
    # after the PCR change the mock TPM refuses to unseal, like any TPM
    printf 'secret seal app/s --input s --pcr 7\npcr extend --index 7 --data d\nsecret unseal app/s --output out2\n' >c2
    rc=0
    citadel tpm --backend mock batch --input c2 >/dev/null 2>err || rc=$?
    assert_eq "$rc" 7
    assert_contains "$(cat err)" "TPM0047"
    assert_no_file out2
}
