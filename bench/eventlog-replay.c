/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event log replay throughput: cit__eventlog_replay_buf (parse + extend every bank) on a log
 * held in memory, repeated for about 2 s, in MB of log per second. Issue 5's goal: >= 100 MB/s.
 *
 *   build/bench/eventlog-replay [LOG]     default: tests/data/eventlog/event-postcode.bin,
 *                                         the largest real log we have
 *
 * Rounds of BENCH_ROUND_MS (default 200 ms), BENCH_ROUNDS (default 10) of them; the rate is
 * the median over rounds. Also measured, for context: the same log's `show` (parse + decode +
 * JSON tree) and a synthetic 4 MiB log made by repeating the real log's events (replay cost
 * per byte depends on the events' sizes: a log of many small events hashes more per byte).
 * Prints a table and a RESULT line for bench/run.sh.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/eventlog.h"
#include "basic/util.h"

#define BENCH_NAME "eventlog-replay"
#include "bench.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef int (*op_fn)(const uint8_t *buf, size_t len);

static int op_replay(const uint8_t *buf, size_t len) {
    static cit__evl_replay r;
    return cit__eventlog_replay_buf(&r, buf, len);
}

static int op_show(const uint8_t *buf, size_t len) {
    json_t *o = NULL;
    int r = cit__eventlog_show_buf(&o, buf, len, (1u << 24) - 1, "bench");
    json_decref(o);
    return r;
}

/* Median MB/s over rounds. */
static double rate(op_fn op, const uint8_t *buf, size_t len, int rounds, double round_s, long *total_runs) {
    double *r = calloc((size_t)rounds, sizeof *r);
    *total_runs = 0;
    for (int k = 0; k < rounds; k++) {
        long n = 0;
        double t0 = now_s(), t;
        do {
            if (op(buf, len) != 0) {
                fprintf(stderr, "eventlog-replay: the log does not parse\n");
                exit(1);
            }
            n++;
        } while ((t = now_s()) - t0 < round_s);
        r[k] = (double)n * (double)len / (t - t0) / 1e6;
        *total_runs += n;
    }
    qsort(r, (size_t)rounds, sizeof *r, cmp_d);
    double m = r[rounds / 2];
    free(r);
    return m;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "tests/data/eventlog/event-postcode.bin";
    const char *e;
    int rounds = (e = getenv("BENCH_ROUNDS")) ? atoi(e) : 10;
    double round_s = ((e = getenv("BENCH_ROUND_MS")) ? atoi(e) : 200) / 1000.0;
    if (rounds < 1)
        rounds = 1;
    uint8_t *log = NULL;
    size_t len = 0;
    if (cit_read_file(path, CIT_EVENTLOG_MAX, &log, &len) < 0) {
        fprintf(stderr, "eventlog-replay: cannot read %s\n", path);
        return 1;
    }
    cit__evl_replay rp;
    if (cit__eventlog_replay_buf(&rp, log, len) != 0) {
        fprintf(stderr, "eventlog-replay: %s does not parse\n", path);
        return 1;
    }
    /* a synthetic large log: the Spec ID event, then the real events over and over */
    cit__evl_parser p;
    cit__evl_open(&p, log, len);
    cit__evl_event ev;
    cit__evl_next(&p, &ev);
    size_t head = ev.size, body = len - head, big_len = head;
    size_t want = 4u << 20;
    uint8_t *big = malloc(want + len);
    memcpy(big, log, head);
    while (big_len + body <= want) {
        memcpy(big + big_len, log + head, body);
        big_len += body;
    }

    long runs_replay, runs_show, runs_big;
    double replay = rate(op_replay, log, len, rounds, round_s, &runs_replay);
    double show = rate(op_show, log, len, rounds, round_s, &runs_show);
    double bigr = rate(op_replay, big, big_len, rounds, round_s, &runs_big);
    printf("log: %s (%zu bytes, %u events, %u banks)\n", path, len, rp.nevents, rp.nbanks);
    printf("%-34s %10s %10s %12s\n", "operation", "MB/s", "runs", "us/log");
    printf("%-34s %10.1f %10ld %12.2f\n", "replay (parse + extend)", replay, runs_replay, len / replay);
    printf("%-34s %10.1f %10ld %12.2f\n", "show (parse + decode + JSON)", show, runs_show, len / show);
    char label[64];
    snprintf(label, sizeof label, "replay, synthetic %.1f MiB log", big_len / 1048576.0);
    printf("%-34s %10.1f %10ld %12.2f\n", label, bigr, runs_big, big_len / bigr);
    printf("goal (issue 5): replay >= 100 MB/s of log: %s\n", replay >= 100 ? "met" : "NOT met");
    /* RESULT bench metric ours peer-name peer ratio goal (peer filled in by bench/eventlog.sh) */
    printf("RATE\t%.1f\n", replay);
    free(big);
    free(log);
    return 0;
}
