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
    # the numbers in use (ranges are allotted to features, so there are gaps)
    for n in $(grep -o "^CIT_CODE([0-9]*" "$ROOT/src/lib/diag/codes.def" | cut -d'(' -f2); do
        code=$(printf 'TPM%04d' "$n")
        out=$(citadel tpm explain "$code")
        assert_contains "$out" "$code"
        assert_contains "$out" "Next steps:"
    done
}
