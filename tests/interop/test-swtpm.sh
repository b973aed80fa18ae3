# SPDX-License-Identifier: Apache-2.0
# Citadel on a real TPM 2.0 simulator without a resource manager (swtpm), checked with
# tpm2-tools: no leaked object slots over hundreds of operations, keys that survive a TPM
# restart (Startup CLEAR), and keys that refuse to load into a different TPM. Plus the
# embedded vTPM across many processes.
# shellcheck source=tests/interop/interop-lib.bash
source "$ROOT/tests/interop/interop-lib.bash"
INTEROP_FILE=$ROOT/tests/interop/$(basename "${BASH_SOURCE[0]}")

# Writes the stress command list to stress.cmds; prints nothing.
stress_cmds() {
    local d=$PWD i k n
    {
        for i in $(seq 1 8); do echo "key create s$i --algorithm ecc-p256"; done
        echo "key create s9 --algorithm ecc-p384"
        echo "key create s10 --algorithm rsa-2048"
        echo "key create p1 --persist"
        echo "key create p2 --persist --algorithm ecc-p384"
        echo "key create storage/parent --usage storage"
        echo "key create storage/child --parent storage/parent"
        i=0
        n=12
        while [ $n -lt 270 ]; do
            i=$((i + 1))
            k=s$((i % 10 + 1))
            echo "key sign $k --input $d/msg --output $d/sig/$k.$i.sig"
            echo "key show $k"
            echo "key export-pub $k --output $d/sig/$k.$i.pem"
            n=$((n + 3))
            if [ $((i % 7)) -eq 0 ]; then echo "key rotate $k"; n=$((n + 1)); fi
            if [ $((i % 9)) -eq 0 ]; then
                echo "key sign p$((i % 2 + 1)) --input $d/msg --output $d/sig/p.$i.sig"
                echo "key sign storage/child --input $d/msg --output $d/sig/child.$i.sig"
                n=$((n + 2))
            fi
            if [ $((i % 11)) -eq 0 ]; then
                echo "key create tmp$i"
                echo "key sign tmp$i --input $d/msg --output $d/sig/tmp.$i.sig"
                echo "key delete tmp$i"
                n=$((n + 3))
            fi
        done
    } >stress.cmds
}

# 300+ mixed operations on one swtpm with no resource manager: none may fail (in particular not
# with TPM0026, out of object memory), nothing may stay loaded, every signature verifies.
itest_swtpm_300_ops_no_slot_leak() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    make_messages
    mkdir sig
    stress_cmds
    local batch_ops proc_ops=0 rc=0 i k f persist_before persist_after
    batch_ops=$(grep -c . stress.cmds)
    citadel tpm batch --input stress.cmds >batch.out 2>batch.err || rc=$?
    assert_not_contains "$(cat batch.out batch.err)" "TPM0026"
    [ "$rc" -eq 0 ] || fail "batch of $batch_ops ops exited $rc: $(tail -20 batch.err)"
    no_transient_handles "$SWTPM_TCTI"

    # Separate processes on the same TPM: each one must leave nothing loaded behind.
    for i in $(seq 1 10); do
        k=s$i
        citadel tpm key sign "$k" --input msg --output "sig/$k.proc.sig" >/dev/null 2>err || fail "$k sign: $(cat err)"
        citadel tpm key export-pub "$k" --output "sig/$k.proc.pem" >/dev/null
        proc_ops=$((proc_ops + 2))
    done
    citadel tpm key rotate s1 >/dev/null
    citadel tpm key show s1 >/dev/null
    citadel tpm key sign s1 --input msg --output sig/s1.rot.sig >/dev/null
    citadel tpm key export-pub s1 --output sig/s1.rot.pem >/dev/null
    citadel tpm key sign p1 --input msg --output sig/p1.proc.sig >/dev/null
    citadel tpm key sign storage/child --input msg --output sig/child.proc.sig >/dev/null
    proc_ops=$((proc_ops + 6))
    citadel tpm key export-pub p2 --output p2.pem >/dev/null
    persist_before=$(tpm2_getcap -T "$SWTPM_TCTI" handles-persistent | grep -c 0x81)
    citadel tpm key delete p2 >/dev/null
    proc_ops=$((proc_ops + 1))
    persist_after=$(tpm2_getcap -T "$SWTPM_TCTI" handles-persistent | grep -c 0x81)
    assert_eq "$persist_after" "$((persist_before - 1))" "key delete of a --persist key evicts it"
    no_transient_handles "$SWTPM_TCTI"

    echo "ops: batch $batch_ops + processes $proc_ops"
    [ $((batch_ops + proc_ops)) -ge 300 ] || fail "only $((batch_ops + proc_ops)) operations"

    # Every signature verifies with openssl against the key version current when it was made
    # (the PEM exported next to it).
    local sigs=0
    for f in sig/s*.sig; do
        case "$f" in
        *.proc.sig) openssl_verify "${f%.sig}.pem" "$f" msg "$(hash_of "${f#sig/}")" ;;
        *.rot.sig) openssl_verify sig/s1.rot.pem "$f" msg sha256 ;;
        *) openssl_verify "${f%.sig}.pem" "$f" msg "$(hash_of "${f#sig/}")" ;;
        esac
        sigs=$((sigs + 1))
    done
    [ "$sigs" -ge 80 ] || fail "only $sigs signatures checked"
    # The rotated s1 no longer signs with the key exported before rotation.
    openssl_reject sig/s1.proc.pem sig/s1.rot.sig msg sha256
    # Persistent and child keys.
    citadel tpm key export-pub p1 --output p1.pem >/dev/null
    citadel tpm key export-pub storage/child --output child.pem >/dev/null
    for f in sig/p.*.sig; do
        # sig/p.I.sig was made by p(I % 2 + 1); p2 is P-384.
        if [ $(( ${f//[!0-9]/} % 2 )) -eq 0 ]; then
            openssl_verify p1.pem "$f" msg sha256
        else
            openssl_verify p2.pem "$f" msg sha384
        fi
    done
    openssl_verify p1.pem sig/p1.proc.sig msg sha256
    for f in sig/child.*.sig; do openssl_verify child.pem "$f" msg sha256; done
    no_transient_handles "$SWTPM_TCTI"
}

# hash_of FILE: default digest of the stress key named at the start of FILE (s9 is P-384).
hash_of() { case "$1" in s9.*) echo sha384 ;; *) echo sha256 ;; esac; }

# Keys survive TPM2_Shutdown + restart + TPM2_Startup(CLEAR) (and an unclean power loss):
# everything transient is gone, yet stored keys still sign and verify. This is where
# tpm2-tools context files of transient objects stop working.
itest_swtpm_keys_survive_startup_clear() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    make_messages
    citadel tpm key create e >/dev/null
    citadel tpm key create r --algorithm rsa-2048 >/dev/null
    citadel tpm key create pss --algorithm rsa-2048 --scheme rsapss >/dev/null
    citadel tpm key create p --persist --algorithm ecc-p384 >/dev/null
    local k round
    for k in e r pss p; do citadel tpm key export-pub "$k" --output "$k.pem" >/dev/null; done

    # A tpm2-tools transient context file: valid before the restart, dead after it.
    tpm2_createprimary -Q -T "$SWTPM_TCTI" -C o -g sha256 -G ecc -c primary.ctx
    tpm2_flushcontext -T "$SWTPM_TCTI" -t

    for round in before orderly power-loss; do
        case "$round" in
        orderly) restart_swtpm orderly ;;
        power-loss) restart_swtpm power-loss ;;
        esac
        if [ "$round" == before ]; then
            tpm2_readpublic -T "$SWTPM_TCTI" -c primary.ctx >/dev/null 2>&1 ||
                fail "the tpm2-tools context does not load before the restart (test premise)"
            tpm2_flushcontext -T "$SWTPM_TCTI" -t
        else
            ! tpm2_readpublic -T "$SWTPM_TCTI" -c primary.ctx >/dev/null 2>&1 ||
                fail "a transient tpm2-tools context survived Startup(CLEAR) (test premise)"
        fi
        for k in e r pss p; do
            citadel tpm key sign "$k" --input msg --output "$k.$round.sig" >/dev/null 2>err ||
                fail "sign $k after $round: $(cat err)"
        done
        openssl_verify e.pem "e.$round.sig" msg sha256
        openssl_verify r.pem "r.$round.sig" msg sha256
        openssl_verify pss.pem "pss.$round.sig" msg sha256 rsapss
        openssl_verify p.pem "p.$round.sig" msg sha384
        no_transient_handles "$SWTPM_TCTI"
    done
    # A key made after the restarts, rotated, works through one more restart in a batch.
    citadel tpm key create late >/dev/null
    citadel tpm key rotate e >/dev/null
    citadel tpm key export-pub e --output e2.pem >/dev/null
    citadel tpm key export-pub late --output late.pem >/dev/null
    restart_swtpm orderly
    printf 'key sign e --input %s/msg --output %s/e2.sig\nkey sign late --input %s/msg --output %s/late.sig\n' \
        "$PWD" "$PWD" "$PWD" "$PWD" | citadel tpm batch >/dev/null
    openssl_verify e2.pem e2.sig msg sha256
    openssl_verify late.pem late.sig msg sha256
    citadel tpm key verify e --input msg --signature e.before.sig >/dev/null
    no_transient_handles "$SWTPM_TCTI"
}

# expect_load_refused CMD...: fails cleanly with TPM0027 (exit 10) or TPM0028 (exit 3).
expect_load_refused() {
    local rc=0
    OUT=$("$@" 2>"$T/.err") || rc=$?
    ERR=$(cat "$T/.err")
    case "$rc" in
    10) assert_contains "$ERR" "error[TPM0027]" ;;
    3) assert_contains "$ERR" "error[TPM0028]" ;;
    0) fail "'$*' succeeded on the wrong TPM; stdout: $OUT" ;;
    *) fail "'$*' exited $rc (expected 10/TPM0027 or 3/TPM0028); stderr: $ERR" ;;
    esac
}

# A workspace made on swtpm A, pointed at another swtpm B: loading its keys fails with a clear
# code, both when B is blank and when B has its own workspace (its own key at the SRK handle).
itest_swtpm_key_from_other_tpm_refused() {
    start_swtpm
    local port_b tcti_b
    port_b=$(free_port)
    swtpm_up "$T/swtpm-b" "$port_b"
    SWTPM_B_PID=$UP_PID # global: the EXIT trap runs after this function's locals are gone
    trap 'swtpm_down "$SWTPM_B_PID"; stop_swtpm' EXIT
    tcti_b="swtpm:host=127.0.0.1,port=$port_b"
    make_messages
    local a=(--store-path "$T/a.db" --backend swtpm)
    citadel tpm "${a[@]}" --tcti "$SWTPM_TCTI" init >/dev/null
    citadel tpm "${a[@]}" --tcti "$SWTPM_TCTI" key create k >/dev/null
    citadel tpm "${a[@]}" --tcti "$SWTPM_TCTI" key create kr --algorithm rsa-2048 >/dev/null
    citadel tpm "${a[@]}" --tcti "$SWTPM_TCTI" key export-pub k --output k.pem >/dev/null

    # B blank: no storage key at all.
    expect_load_refused citadel tpm "${a[@]}" --tcti "$tcti_b" key sign k --input msg --output b1.sig
    assert_no_file b1.sig
    expect_load_refused citadel tpm "${a[@]}" --tcti "$tcti_b" key sign kr --input msg
    no_transient_handles "$tcti_b"

    # B with its own workspace: a different storage primary key sits at the same handle.
    citadel tpm --store-path "$T/b.db" --backend swtpm --tcti "$tcti_b" init >/dev/null
    expect_load_refused citadel tpm "${a[@]}" --tcti "$tcti_b" key sign k --input msg --output b2.sig
    assert_no_file b2.sig
    expect_load_refused citadel tpm "${a[@]}" --tcti "$tcti_b" key rotate k
    no_transient_handles "$tcti_b"
    # The same through batch (one process).
    printf 'key sign k --input %s/msg --output %s/b3.sig\n' "$PWD" "$PWD" >b.cmds
    expect_load_refused citadel tpm "${a[@]}" --tcti "$tcti_b" batch --input b.cmds
    assert_no_file b3.sig

    # doctor sees the mismatch too.
    local drc=0
    citadel tpm "${a[@]}" --tcti "$tcti_b" doctor >doctor.out 2>&1 || drc=$?
    assert_eq "$drc" 10 "doctor exit status for a workspace on the wrong TPM"
    assert_contains "$(cat doctor.out)" "TPM0027"

    # And the other way round: B's key in A.
    citadel tpm --store-path "$T/b.db" --backend swtpm --tcti "$tcti_b" key create kb >/dev/null
    expect_load_refused citadel tpm --store-path "$T/b.db" --backend swtpm --tcti "$SWTPM_TCTI" key sign kb --input msg

    # Workspace A on A is unharmed.
    citadel tpm "${a[@]}" --tcti "$SWTPM_TCTI" key sign k --input msg --output a.sig >/dev/null
    openssl_verify k.pem a.sig msg sha256
    assert_eq "$(json <(citadel tpm "${a[@]}" --tcti "$SWTPM_TCTI" --json key show k) 'd["version"]')" 1 \
        "a refused rotate must not add a version"
    no_transient_handles "$SWTPM_TCTI"
}

# The embedded vTPM: keys made and rotated in some processes sign in many others; every
# signature verifies in openssl against the right version.
itest_vtpm_signatures_across_processes() {
    init_vtpm
    make_messages
    citadel tpm key create a >/dev/null
    citadel tpm key create b --algorithm ecc-p384 >/dev/null
    citadel tpm key create c --algorithm rsa-2048 --scheme rsapss >/dev/null
    local i k
    for i in $(seq 1 12); do
        k=$(echo a b c | cut -d' ' -f$((i % 3 + 1)))
        citadel tpm key sign "$k" --input msg --output "$k.$i.v1.sig" >/dev/null
    done
    for k in a b c; do citadel tpm key export-pub "$k" --output "$k.v1.pem" >/dev/null; done
    citadel tpm key rotate a >/dev/null
    for i in $(seq 1 4); do citadel tpm key sign a --input msg --output "a.$i.v2.sig" >/dev/null; done
    citadel tpm key export-pub a --output a.v2.pem >/dev/null
    citadel tpm key export-pub a --version 1 --output a.v1.again.pem >/dev/null
    cmp a.v1.pem a.v1.again.pem || fail "export-pub --version 1 changed after rotate"
    for f in a.*.v1.sig; do openssl_verify a.v1.pem "$f" msg sha256; done
    for f in a.*.v2.sig; do openssl_verify a.v2.pem "$f" msg sha256; openssl_reject a.v1.pem "$f" msg sha256; done
    for f in b.*.sig; do openssl_verify b.v1.pem "$f" msg sha384; done
    for f in c.*.sig; do openssl_verify c.v1.pem "$f" msg sha256 rsapss; done
    # Citadel's own verifier names the version that made each.
    assert_eq "$(json <(citadel tpm --json key verify a --input msg --signature a.1.v2.sig) 'd.get("version")')" 2
    assert_eq "$(json <(citadel tpm --json key verify a --input msg --signature a.3.v1.sig) 'd.get("version")')" 1
}

# Concurrent processes on one vTPM workspace: each either signs or is turned away cleanly with
# TPM0020 (workspace busy); the state survives and every signature made verifies.
itest_vtpm_concurrent_processes() {
    init_vtpm
    make_messages
    citadel tpm key create k >/dev/null
    citadel tpm key export-pub k --output k.pem >/dev/null
    local i pids=() rc ok=0
    for i in $(seq 1 6); do
        (citadel tpm key sign k --input msg --output "c$i.sig" >/dev/null 2>"c$i.err"; echo $? >"c$i.rc") &
        pids+=($!)
    done
    wait "${pids[@]}"
    for i in $(seq 1 6); do
        rc=$(cat "c$i.rc")
        case "$rc" in
        0) openssl_verify k.pem "c$i.sig" msg sha256; ok=$((ok + 1)) ;;
        5) assert_contains "$(cat "c$i.err")" "error[TPM0020]" ;;
        *) fail "concurrent sign $i exited $rc: $(cat "c$i.err")" ;;
        esac
    done
    [ "$ok" -ge 1 ] || fail "no concurrent sign succeeded"
    citadel tpm key sign k --input msg --output after.sig >/dev/null
    openssl_verify k.pem after.sig msg sha256
}

# Another program (tpm2-tools, no resource manager) holds transient slots. swtpm has 3. With one
# held, Citadel still signs (also a child key, which needs its parent loaded) and leaves only the
# other program's handle behind. With all 3 held, Citadel must say TPM0026 (out of object
# memory, exit 6), not misdiagnose the TPM as cleared. Once they are flushed, it works again.
itest_swtpm_slots_held_by_another_program() {
    start_swtpm
    export TPM_BACKEND=swtpm TPM_TCTI=$SWTPM_TCTI
    citadel tpm init >/dev/null
    make_messages
    citadel tpm key create k >/dev/null
    citadel tpm key create sp --usage storage >/dev/null
    citadel tpm key create sp/c --parent sp >/dev/null
    citadel tpm key export-pub k --output k.pem >/dev/null
    citadel tpm key export-pub sp/c --output c.pem >/dev/null
    tpm2_createprimary -Q -T "$SWTPM_TCTI" -C o -G ecc -c held1.ctx
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-transient | wc -l | tr -d ' ')" 1 "held handles"
    citadel tpm key sign k --input msg --output k1.sig >/dev/null
    citadel tpm key sign sp/c --input msg --output c1.sig >/dev/null
    openssl_verify k.pem k1.sig msg sha256
    openssl_verify c.pem c1.sig msg sha256
    assert_eq "$(tpm2_getcap -T "$SWTPM_TCTI" handles-transient | wc -l | tr -d ' ')" 1 \
        "Citadel left a transient handle next to the other program's"

    tpm2_createprimary -Q -T "$SWTPM_TCTI" -C o -G ecc -c held2.ctx
    tpm2_createprimary -Q -T "$SWTPM_TCTI" -C o -G ecc -c held3.ctx
    # The TPM itself now reports TPM_RC_OBJECT_MEMORY (0x902) even for reading the SRK.
    expect_fail 6 TPM0026 citadel tpm key sign k --input msg --output k3.sig
    assert_no_file k3.sig
    expect_fail 6 TPM0026 citadel tpm key create k2

    tpm2_flushcontext -T "$SWTPM_TCTI" -t
    citadel tpm key sign k --input msg --output k4.sig >/dev/null
    openssl_verify k.pem k4.sig msg sha256
    no_transient_handles "$SWTPM_TCTI"
}

interop_register
