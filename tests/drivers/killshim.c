/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/drivers/killshim.so: an LD_PRELOAD shim that kills the process (SIGKILL) at an exact
 * point of the audit head file protocol, so tests/integration/test-audit-fault.sh can crash an
 * append between the head file and the commit without relying on timing:
 *
 *   CIT_KILL_HEAD=before:N   SIGKILL just before the N-th rename (or renameat2 exchange) onto
 *                            STORE.audit-head
 *   CIT_KILL_HEAD=after:N    SIGKILL just after it
 *   CIT_KILL_HEAD=stop:N     SIGSTOP just before it (the test resumes the process with SIGCONT)
 *
 * An append renames the head file twice: the pending record (before its commit) and the
 * committed one (after it). before:1 dies before anything, after:1 between the head file and
 * the commit, before:2 between the commit and the committed record.
 *
 * CIT_KILL_SUFFIX=.tpmstate counts and kills at renames onto the vTPM state file instead (a
 * `segments close` saves the TPM state after initialising the rollback counter and after its
 * increment).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int seen;

static const char *suffix(void) {
    const char *s = getenv("CIT_KILL_SUFFIX");
    return s && *s ? s : ".audit-head";
}

static void maybe_kill(const char *when, const char *newpath) {
    const char *spec = getenv("CIT_KILL_HEAD"), *sx = suffix();
    size_t n = strlen(newpath), sl = strlen(sx);
    if (!spec || n < sl || strcmp(newpath + n - sl, sx) != 0)
        return;
    size_t wl = strlen(when);
    if (strncmp(spec, when, wl) == 0 && spec[wl] == ':' && strtol(spec + wl + 1, NULL, 10) == seen)
        raise(when[0] == 's' ? SIGSTOP : SIGKILL);
}

/* Before a rename onto newpath: counts it when it is onto the watched file, and kills or stops
 * when asked to before that rename. */
static void before_rename(const char *newpath) {
    const char *sx = suffix();
    size_t n = strlen(newpath), sl = strlen(sx);
    if (n >= sl && strcmp(newpath + n - sl, sx) == 0)
        seen++;
    maybe_kill("before", newpath);
    maybe_kill("stop", newpath);
}

int rename(const char *oldpath, const char *newpath) {
    static int (*real)(const char *, const char *);
    if (!real)
        real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    before_rename(newpath);
    int r = real(oldpath, newpath);
    maybe_kill("after", newpath);
    return r;
}

/* the audit head and the vTPM state are replaced by exchanging them with their .swap files
 * (cit_write_file_swap) */
int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
    static int (*real)(int, const char *, int, const char *, unsigned int);
    if (!real)
        real = (int (*)(int, const char *, int, const char *, unsigned int))dlsym(RTLD_NEXT, "renameat2");
    before_rename(newpath);
    int r = real(olddirfd, oldpath, newdirfd, newpath, flags);
    maybe_kill("after", newpath);
    return r;
}
