/* SPDX-License-Identifier: Apache-2.0 */
/* What the daemons' main()s share (tpmd, enrolld): usage errors, environment settings, the
 * report of a failure to start. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "net.h"

int cit_daemon_usage(const char *prog, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cit_error_set(CIT_E_USAGE, "%s", msg);
    cit_error_step("run `%s --help`", prog);
    return CIT_E_USAGE;
}

const char *cit_daemon_env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

void cit_daemon_fatal(const char *prog, const char *what) {
    const cit_error *e = cit_error_last();
    fprintf(stderr, "%s: %s\n", prog, what);
    cit_error_render(stderr, e, CIT_FORMAT_TEXT);
}
