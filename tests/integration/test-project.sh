# SPDX-License-Identifier: Apache-2.0
# Project hygiene: generated docs are current, banned calls absent.

test_errors_md_is_generated_from_codes_def() {
    # make rebuilds the generator when codes.def changed (it is a dependency)
    (cd "$ROOT" && make --no-print-directory B="$B" "$B/gen-errors" >/dev/null)
    "$ROOT/$B/gen-errors" >errors.md
    diff -u "$ROOT/docs/ERRORS.md" errors.md || fail "docs/ERRORS.md is stale: run make docs/ERRORS.md"
}

test_no_banned_libc_calls() {
    "$ROOT/scripts/check-banned.sh"
}

test_every_code_is_explained() {
    # the numbers in codes.def (ranges are handed out per feature, so they have gaps)
    for n in $(sed -n 's/^CIT_CODE(\([0-9]*\),.*/\1/p' "$ROOT/src/lib/diag/codes.def"); do
        code=$(printf 'TPM%04d' "$n")
        out=$(citadel tpm explain "$code")
        assert_contains "$out" "$code"
        assert_contains "$out" "Next steps:"
    done
}
