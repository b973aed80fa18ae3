/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Audit entries of the daemon (stream "tpmd"), written by group commit: request threads queue
 * an entry and wait; one writer thread appends everything queued in one cit_audit_append_batch
 * (one transaction, one fsync of the store and the head file), then wakes them. The writer has
 * its own context on the same store, so appends never wait for the TPM and the TPM never waits
 * for an fsync. (The mock backend's store lives in its context's memory: there the writer uses
 * the daemon's context, under its lock.)
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/util.h"
#include "tpmd.h"

#define BATCH_MAX 512

typedef struct aentry {
    char event[64];
    char *payload;
    size_t len;
    bool wait;
    int result;
    uint64_t queued_usec;
    sem_t done; /* a waiting entry's requester sleeps on its own semaphore */
    struct aentry *next;
} aentry;

struct auditq {
    tpmd *d;
    pthread_t th;
    pthread_mutex_t m;
    pthread_cond_t work;
    aentry *head, *tail;
    size_t queued;
    bool stop;
    atomic_bool holding; /* the writer waits for more entries (auditq_kick ends it) */
    cit_ctx *ctx;
    bool shared;
};

/* Group commit that keeps the TPM busy. Each batch costs the same whatever its size (a
 * transaction, the head file written twice, syncs), and on a machine with few cores that work
 * slows the TPM thread down: with 16 clients, committing whatever was queued made batches of
 * about two entries and the writer took 40 % of a core. While the TPM thread has more than
 * AUDIT_HOLD_JOBS jobs queued, their requests will append entries within a few signatures, so
 * the writer waits for them; the TPM thread kicks it when its queue runs down to
 * AUDIT_HOLD_JOBS, so the requests of this batch are answered (and send their next request)
 * while the TPM still has work. Never longer than AUDIT_HOLD_USEC after the oldest entry; with
 * an idle TPM (one client, routes that do not sign) nothing is held. Called and returns with
 * q->m held. */
static void hold(auditq *q) {
    if (q->stop || !q->head)
        return;
    uint64_t deadline = q->head->queued_usec + AUDIT_HOLD_USEC;
    bool held = false;
    for (;;) {
        atomic_store(&q->holding, true); /* before reading tpm_jobs: see auditq_kick */
        if (q->stop || q->queued >= BATCH_MAX || atomic_load(&q->d->tpm_jobs) <= AUDIT_HOLD_JOBS)
            break;
        uint64_t now = cit_now_usec();
        if (now >= deadline)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (deadline - now) * 1000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        held = true;
        pthread_cond_timedwait(&q->work, &q->m, &ts);
    }
    atomic_store(&q->holding, false);
    if (held)
        atomic_fetch_add(&q->d->audit_held, 1);
}

void auditq_kick(auditq *q) {
    /* the TPM thread lowered tpm_jobs before this load, the writer sets holding before it
     * reads tpm_jobs: one of them sees the other, and the signal is taken under q->m, so a
     * writer about to wait is not missed */
    if (!q || !atomic_load(&q->holding))
        return;
    pthread_mutex_lock(&q->m);
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->m);
}

static void *writer(void *arg) {
    auditq *q = arg;
    pthread_setname_np(pthread_self(), "tpmd-audit"); /* for top -H and perf */
    cit_audit_record recs[BATCH_MAX];
    aentry *batch[BATCH_MAX];
    pthread_mutex_lock(&q->m);
    for (;;) {
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->work, &q->m);
        if (!q->head && q->stop)
            break;
        hold(q);
        size_t n = 0;
        while (q->head && n < BATCH_MAX) {
            aentry *e = q->head;
            q->head = e->next;
            q->queued--;
            batch[n] = e;
            recs[n] = (cit_audit_record){.stream = "tpmd", .event = e->event, .payload = (const uint8_t *)e->payload,
                                         .payload_len = e->len};
            n++;
        }
        if (!q->head)
            q->tail = NULL;
        pthread_mutex_unlock(&q->m);
        if (q->shared)
            tpmd_tpm_lock(q->d);
        int r = cit_audit_append_batch(q->ctx, recs, n, NULL);
        if (q->shared)
            tpmd_tpm_unlock(q->d);
        if (r < 0)
            tpmd_log("audit: cannot append %zu entries: %s", n, cit_error_last()->message);
        else {
            atomic_fetch_add(&q->d->audit_entries, n);
            atomic_fetch_add(&q->d->audit_batches, 1);
        }
        /* each requester is woken alone: a broadcast woke every thread waiting for any batch */
        for (size_t i = 0; i < n; i++) {
            aentry *e = batch[i];
            if (e->wait) {
                e->result = r;
                sem_post(&e->done); /* e belongs to its requester from here on */
            } else {
                free(e->payload);
                free(e);
            }
        }
        pthread_mutex_lock(&q->m);
    }
    pthread_mutex_unlock(&q->m);
    return NULL;
}

int auditq_start(auditq **out, tpmd *d) {
    auditq *q = calloc(1, sizeof *q);
    if (!q)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    q->d = d;
    pthread_mutex_init(&q->m, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->work, &ca);
    pthread_condattr_destroy(&ca);
    if (strcmp(cit_ctx_backend(d->ctx), "mock") == 0) {
        q->ctx = d->ctx;
        q->shared = true;
    } else {
        cit_ctx_options o = {.store_path = cit_ctx_store_path(d->ctx), .backend = cit_ctx_backend(d->ctx),
                             .tcti = d->cfg.tcti, .vtpm_state = d->cfg.vtpm_state};
        int r = cit_ctx_new(&q->ctx, &o);
        if (r < 0) {
            free(q);
            return r;
        }
        cit_ctx_set_actor(q->ctx, "tpmd");
    }
    if (pthread_create(&q->th, NULL, writer, q) != 0) {
        if (!q->shared)
            cit_ctx_close(q->ctx);
        free(q);
        return cit_error_set(CIT_E_INTERNAL, "cannot start the audit writer");
    }
    *out = q;
    return 0;
}

static aentry *entry(const char *event, json_t *payload, bool wait) {
    aentry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->event, sizeof e->event, "%s", event);
    e->payload = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    e->len = e->payload ? strlen(e->payload) : 0;
    e->wait = wait;
    return e;
}

static void enqueue(auditq *q, aentry *e) {
    e->queued_usec = cit_now_usec();
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    q->queued++;
    /* a holding writer is woken by the TPM thread, its deadline or a full batch, not by each entry */
    if (!atomic_load(&q->holding) || q->queued >= BATCH_MAX)
        pthread_cond_signal(&q->work);
}

int auditq_append(auditq *q, const char *event, json_t *payload) {
    aentry *e = entry(event, payload, true);
    if (!e || !e->payload) {
        free(e);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    pthread_mutex_lock(&q->m);
    if (q->stop) {
        pthread_mutex_unlock(&q->m);
        free(e->payload);
        free(e);
        return cit_error_set(CIT_E_API_UNAVAILABLE, "the daemon is shutting down");
    }
    if (sem_init(&e->done, 0, 0) != 0) {
        pthread_mutex_unlock(&q->m);
        free(e->payload);
        free(e);
        return cit_error_set(CIT_E_INTERNAL, "cannot wait for the audit writer");
    }
    enqueue(q, e);
    pthread_mutex_unlock(&q->m);
    while (sem_wait(&e->done) != 0)
        ; /* EINTR */
    sem_destroy(&e->done);
    int r = e->result;
    free(e->payload);
    free(e);
    if (r < 0) {
        cit_error_set(r, "the audit entry for this request could not be written");
        cit_error_cause("tpmd answers a changing request only after its audit entry is committed");
        cit_error_step("run `citadel tpm audit chain verify` and check the daemon's log");
    }
    return r;
}

void auditq_post(auditq *q, const char *event, json_t *payload) {
    aentry *e = entry(event, payload, false);
    if (!e)
        return;
    pthread_mutex_lock(&q->m);
    if (q->stop) {
        free(e->payload);
        free(e);
    } else
        enqueue(q, e);
    pthread_mutex_unlock(&q->m);
}

void auditq_stop(auditq *q) {
    if (!q)
        return;
    pthread_mutex_lock(&q->m);
    q->stop = true;
    pthread_cond_signal(&q->work); /* a holding writer commits at once */
    pthread_mutex_unlock(&q->m);
    pthread_join(q->th, NULL); /* the writer drains what is queued first */
    if (!q->shared)
        cit_ctx_close(q->ctx);
    pthread_mutex_destroy(&q->m);
    pthread_cond_destroy(&q->work);
    free(q);
}
