/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/tpmd-sign: signatures per second through tpmd (HTTP/1.1 keep-alive, N client threads)
 * against the library's own rate (cit_key_sign on data in memory, one context) on the same
 * vTPM workspace, in the same run; bench/tpmd-sign.sh runs the two modes in turn.
 *
 *   tpmd-sign lib  KEYPATH SECONDS                       (TPM_STORE_PATH names the workspace)
 *   tpmd-sign http HOST PORT APIKEY KEYPATH CLIENTS SECONDS [status]
 *
 * Prints "RATE <mode> <requests/s> <ok> <errors>". The HTTP rate includes everything a client
 * gets: parsing, authentication, the TPM signature and the committed audit entry of each
 * signature (group commit).
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "citadel/citadel.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int lib_mode(const char *path, double seconds) {
    cit_ctx *ctx;
    if (cit_ctx_new(&ctx, &(cit_ctx_options){0}) < 0) {
        fprintf(stderr, "%s\n", cit_error_last()->message);
        return 1;
    }
    unsigned long ok = 0, err = 0;
    char msg[64];
    double t0 = now(), t1 = t0;
    for (unsigned long i = 0; (t1 = now()) - t0 < seconds; i++) {
        int n = snprintf(msg, sizeof msg, "message %lu", i);
        cit_key_sign_options o = {.path = path, .data = (const uint8_t *)msg, .data_len = (size_t)n};
        json_t *out = NULL;
        if (cit_key_sign(&out, ctx, &o) == 0)
            ok++;
        else
            err++;
        json_decref(out);
    }
    cit_ctx_close(ctx);
    printf("RATE lib %.0f %lu %lu\n", (double)ok / (t1 - t0), ok, err);
    return 0;
}

static struct {
    struct sockaddr_in sa;
    const char *key, *path;
    bool status;
    double end;
    atomic_ulong ok, err;
} H;

static int connect_one(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&H.sa, sizeof H.sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request and its response on fd; the HTTP status, or -1 when the connection failed. */
static int roundtrip(int fd, const char *req, size_t len) {
    if (write(fd, req, len) != (ssize_t)len)
        return -1;
    char buf[16384];
    size_t have = 0;
    char *hend = NULL;
    while (!(hend = memmem(buf, have, "\r\n\r\n", 4))) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    int status = (int)strtol(buf + 9, NULL, 10);
    const char *cl = strcasestr(buf, "Content-Length:");
    size_t body = cl && cl < hend ? strtoul(cl + 15, NULL, 10) : 0;
    size_t got = have - (size_t)(hend + 4 - buf);
    while (got < body) {
        ssize_t n = read(fd, buf, sizeof buf < body - got ? sizeof buf : body - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return status;
}

static void *client(void *arg) {
    unsigned long id = (unsigned long)(uintptr_t)arg;
    int fd = connect_one();
    char req[1024], body[256];
    for (unsigned long i = 0; now() < H.end; i++) {
        int n;
        if (H.status)
            n = snprintf(req, sizeof req, "GET /v1/status HTTP/1.1\r\nHost: b\r\nX-API-Key: %s\r\n\r\n", H.key);
        else {
            char msg[48], hex[97];
            int ml = snprintf(msg, sizeof msg, "m %lu %lu", id, i);
            for (int k = 0; k < ml; k++)
                snprintf(hex + 2 * k, 3, "%02x", (unsigned char)msg[k]);
            int bl = snprintf(body, sizeof body, "{\"data_hex\":\"%s\"}", hex);
            n = snprintf(req, sizeof req,
                         "POST /v1/sign/%s HTTP/1.1\r\nHost: b\r\nX-API-Key: %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         H.path, H.key, bl, body);
        }
        int st = fd < 0 ? -1 : roundtrip(fd, req, (size_t)n);
        if (st == 200)
            atomic_fetch_add(&H.ok, 1);
        else {
            atomic_fetch_add(&H.err, 1);
            if (st < 0) {
                if (fd >= 0)
                    close(fd);
                fd = connect_one();
            }
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "lib") == 0)
        return lib_mode(argv[2], atof(argv[3]));
    if (argc < 8 || strcmp(argv[1], "http") != 0) {
        fprintf(stderr, "usage: tpmd-sign lib KEYPATH SECONDS | http HOST PORT APIKEY KEYPATH CLIENTS SECONDS [status]\n");
        return 2;
    }
    H.sa.sin_family = AF_INET;
    H.sa.sin_port = htons((uint16_t)(int)strtol(argv[3], NULL, 10));
    inet_pton(AF_INET, argv[2], &H.sa.sin_addr);
    H.key = argv[4];
    H.path = argv[5];
    int clients = (int)strtol(argv[6], NULL, 10);
    H.status = argc > 8 && strcmp(argv[8], "status") == 0;
    double t0 = now();
    H.end = t0 + atof(argv[7]);
    pthread_t th[256];
    if (clients < 1 || clients > 256)
        return 2;
    for (int i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, client, (void *)(uintptr_t)i);
    for (int i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    double dt = now() - t0;
    printf("RATE %s %.0f %lu %lu\n", H.status ? "http-status" : "http-sign", (double)atomic_load(&H.ok) / dt,
           atomic_load(&H.ok), atomic_load(&H.err));
    return 0;
}
