# SPDX-License-Identifier: Apache-2.0
# The PCR policy citadel seals with is the one tpm2-tools computes for the same PCRs and
# values (tpm2_createpolicy --policy-pcr, offline from a PCR values file), and the sealed
# object carries it as its authPolicy.

test_pcr_policy_digest_matches_tpm2_tools() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    tpm2_pcrextend -T "$SWTPM_TCTI" "16:sha256=$(echo boot | sha256sum | cut -d' ' -f1)"
    printf 'k' >s
    citadel tpm --json secret seal p/s --input s --pcr 7,16 >seal.json
    # the values citadel recorded, concatenated in index order, as tpm2-tools' -f file
    python3 -c 'import json, sys
d = json.load(open("seal.json"))["policy"]["pcrs"]
sys.stdout.buffer.write(b"".join(bytes.fromhex(d[k]) for k in sorted(d, key=int)))' >pcrs.bin
    tpm2_createpolicy -T "$SWTPM_TCTI" --policy-pcr -l sha256:7,16 -f pcrs.bin -L tools.policy >/dev/null
    theirs=$(od -An -tx1 tools.policy | tr -d ' \n')
    # ours: the digest recorded at seal time, and the sealed object's authPolicy (its public
    # area as the TPM made it), both read from the store
    python3 - "$TPM_STORE_PATH" <<'PY'
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
meta, pub = c.execute("SELECT o.metadata, v.tpm_public FROM objects o JOIN object_versions v "
                      "ON o.id = v.object_id WHERE o.path = 'p/s'").fetchone()
open("ours.digest", "w").write(json.loads(meta)["policy_digest"])
open("pub.bin", "wb").write(pub)
PY
    assert_eq "$(cat ours.digest)" "$theirs" "policy digest: citadel vs tpm2_createpolicy"
    assert_contains "$(tpm2_print -t TPM2B_PUBLIC pub.bin)" "$theirs"
    assert_eq "$(citadel tpm secret unseal p/s)" "k"
}
