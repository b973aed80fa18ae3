/* SPDX-License-Identifier: Apache-2.0 */
/* Generates docs/ERRORS.md from src/lib/diag/codes.def (through the compiled table). */
#include <stdio.h>
#include <string.h>

#include "citadel/error.h"

int main(void) {
    size_t n;
    const cit_code_info *t = cit_code_table(&n);
    puts("<!-- Generated from src/lib/diag/codes.def by scripts/gen-errors.c: do not edit. -->");
    puts("# Citadel error codes\n");
    puts("Every failure carries a stable code `TPMnnnn`. Codes are append-only: a code never");
    puts("changes meaning and is never reused. `citadel tpm explain TPMnnnn` prints the entry.\n");
    puts("Errors are printed as `error[TPMnnnn]: message`, then `causes:` (with context such as the");
    puts("object path or the decoded TPM response code) and numbered `next steps:`. With `--json`");
    puts("they are `{\"schema_version\":1,\"error\":{\"code\",\"name\",\"class\",\"message\",\"causes\",");
    puts("\"context\",\"next_steps\",\"exit_status\"}}`.\n");
    puts("## Exit status\n");
    puts("| exit | meaning |\n|---|---|");
    puts("| 0 | success |");
    puts("| 1 | internal error (class `internal`) |");
    puts("| 2 | usage: bad command line, unreadable or invalid input (class `usage`) |");
    puts("| 3 | object: missing, existing, retired, wrong kind (class `object`) |");
    puts("| 4 | store: cannot open, not a Citadel store, newer schema (class `store`) |");
    puts("| 5 | backend: unavailable, vTPM state missing or corrupt, unsupported (class `backend`) |");
    puts("| 6 | transport: TPM unreachable or rejected a command (class `transport`) |");
    puts("| 7 | policy and authorization, lockout (class `policy`) |");
    puts("| 8 | NV (class `nv`) |");
    puts("| 9 | attestation (class `attestation`) |");
    puts("| 10 | repair: store and TPM disagree (class `repair`) |");
    puts("| 11 | audit log: tampering, rollback or a bad proof or signature (class `audit`) |");
    puts("| 12 | tpmd API: no or wrong API key, no such route (class `api`) |");
    puts("| 13 | certificate authority: unknown CA or serial, bad CSR, unusable CA (class `ca`) |");
    puts("\n## Codes\n");
    puts("| code | name | class | exit | message |\n|---|---|---|---|---|");
    for (size_t i = 0; i < n; i++)
        printf("| TPM%04d | %s | %s | %d | %s |\n", t[i].num, t[i].name, t[i].cls,
               cit_code_exit_status(-t[i].num), t[i].message);
    puts("");
    for (size_t i = 0; i < n; i++) {
        printf("### TPM%04d %s\n\n%s (class `%s`).\n\nNext steps:\n", t[i].num, t[i].name, t[i].message,
               t[i].cls);
        const char *p = t[i].steps;
        int k = 1;
        while (p && *p) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            printf("%d. %.*s\n", k++, (int)len, p);
            p += len + (nl ? 1 : 0);
        }
        puts("");
    }
    return 0;
}
