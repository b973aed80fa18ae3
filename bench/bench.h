/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the C benchmarks share: clocks, the environment knobs, medians and a fatal error for
 * libcitadel failures. Define BENCH_NAME (the program's name, for messages) before including.
 */
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/util.h"
#include "citadel/citadel.h"

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench.h"
#endif

#define BENCH_UNUSED __attribute__((unused))

/* Wall time (monotonic), in seconds. */
static BENCH_UNUSED double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread (the vTPM runs in it): less sensitive to other load than wall time. */
static BENCH_UNUSED double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static BENCH_UNUSED void die_cit(const char *what) {
    const cit_error *e = cit_error_last();
    fprintf(stderr, BENCH_NAME ": %s failed: %s\n", what, e && e->message[0] ? e->message : "(no message)");
    exit(1);
}

/* An integer knob from the environment: def when unset; lo..hi or the benchmark stops. */
static BENCH_UNUSED int env_int(const char *name, int def, int lo, int hi) {
    const char *s = getenv(name);
    uint32_t v;
    if (!s || !*s)
        return def;
    if (cit_parse_u32(s, &v) < 0 || v > (uint32_t)hi || (int)v < lo) {
        fprintf(stderr, BENCH_NAME ": %s must be %d..%d\n", name, lo, hi);
        exit(2);
    }
    return (int)v;
}

static BENCH_UNUSED int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of n values (v is left as it is). */
static BENCH_UNUSED double median(const double *v, int n) {
    if (n <= 0)
        return 0;
    double *t = malloc(sizeof(double) * (size_t)n);
    if (!t) {
        fprintf(stderr, BENCH_NAME ": out of memory\n");
        exit(1);
    }
    memcpy(t, v, sizeof(double) * (size_t)n);
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    double m = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
    free(t);
    return m;
}
