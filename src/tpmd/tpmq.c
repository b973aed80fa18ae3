/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TPM thread: signature requests are queued and run back to back by one thread that holds
 * the TPM lock for each batch. With a plain mutex every signature ended with a hand-off: the
 * next request thread had to be woken and scheduled before the TPM worked again, and on a
 * two-core machine busy with HTTP that gap was a third of the TPM's time. Here the thread that
 * owns the TPM never waits for a scheduler while work is queued; request threads only sleep
 * on their own semaphore. Other routes still take the TPM lock (tpmd_tpm_lock, counted), so
 * the context is never used by two threads at once, and the TPM thread lets them in between
 * its batches.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tpmd.h"

typedef struct tpmq_job {
    int (*fn)(void *arg);
    void *arg;
    char actor[80];
    int result;
    cit_error err; /* the job's error state, carried back to the request thread */
    sem_t done;
    struct tpmq_job *next;
} tpmq_job;

struct tpmq {
    tpmd *d;
    pthread_t th;
    pthread_mutex_t m;
    pthread_cond_t work;
    tpmq_job *head, *tail;
    bool stop;
};

void tpmd_tpm_lock(tpmd *d) {
    atomic_fetch_add(&d->tpm_waiters, 1);
    pthread_mutex_lock(&d->tpm_lock);
    atomic_fetch_sub(&d->tpm_waiters, 1);
}
void tpmd_tpm_unlock(tpmd *d) { pthread_mutex_unlock(&d->tpm_lock); }
void tpmd_tpm_lock_cb(void *d) { tpmd_tpm_lock(d); }
void tpmd_tpm_unlock_cb(void *d) { tpmd_tpm_unlock(d); }

/* The TPM thread lets threads that wait for the TPM lock (other routes, TLS handshakes, the
 * mock backend's audit writer) take it before its next batch: a mutex is not fair, and the
 * TPM thread would otherwise take it back within a microsecond, every time, while a woken
 * waiter is still being scheduled. Bounded: after 100 ms it goes ahead anyway (a waiter that
 * holds the lock is waited for by the mutex itself). */
static void yield_to_waiters(tpmd *d) {
    for (int i = 0; i < 2000 && atomic_load(&d->tpm_waiters) > 0; i++) {
        struct timespec ts = {0, 50 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void *worker(void *arg) {
    tpmq *q = arg;
    pthread_setname_np(pthread_self(), "tpmd-tpm"); /* for top -H and perf */
    pthread_mutex_lock(&q->m);
    for (;;) {
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->work, &q->m);
        if (!q->head)
            break; /* stopping, and nothing is left */
        tpmq_job *j = q->head;
        q->head = q->tail = NULL;
        pthread_mutex_unlock(&q->m);
        yield_to_waiters(q->d);
        pthread_mutex_lock(&q->d->tpm_lock);
        while (j) {
            tpmq_job *next = j->next; /* j belongs to its requester again after the post */
            cit_ctx_set_actor(q->d->ctx, j->actor);
            cit_error_clear();
            j->result = j->fn(j->arg);
            j->err = *cit_error_last();
            sem_post(&j->done);
            /* the audit writer may be holding its batch open for the entries of the queued jobs */
            if (atomic_fetch_sub(&q->d->tpm_jobs, 1) - 1 <= AUDIT_HOLD_JOBS)
                auditq_kick(q->d->aq);
            j = next;
        }
        pthread_mutex_unlock(&q->d->tpm_lock);
        pthread_mutex_lock(&q->m);
    }
    pthread_mutex_unlock(&q->m);
    return NULL;
}

int tpmq_start(tpmq **out, tpmd *d) {
    tpmq *q = calloc(1, sizeof *q);
    if (!q)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    q->d = d;
    pthread_mutex_init(&q->m, NULL);
    pthread_cond_init(&q->work, NULL);
    if (pthread_create(&q->th, NULL, worker, q) != 0) {
        pthread_mutex_destroy(&q->m);
        pthread_cond_destroy(&q->work);
        free(q);
        return cit_error_set(CIT_E_INTERNAL, "cannot start the TPM thread");
    }
    *out = q;
    return 0;
}

int tpmq_run(tpmq *q, const char *actor, int (*fn)(void *arg), void *arg) {
    tpmq_job j = {.fn = fn, .arg = arg};
    snprintf(j.actor, sizeof j.actor, "%s", actor);
    if (sem_init(&j.done, 0, 0) != 0)
        return cit_error_set(CIT_E_INTERNAL, "cannot wait for the TPM thread");
    pthread_mutex_lock(&q->m);
    if (q->stop) {
        pthread_mutex_unlock(&q->m);
        sem_destroy(&j.done);
        return cit_error_set(CIT_E_API_UNAVAILABLE, "the daemon is shutting down");
    }
    if (q->tail)
        q->tail->next = &j;
    else
        q->head = &j;
    q->tail = &j;
    atomic_fetch_add(&q->d->tpm_jobs, 1);
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->m);
    while (sem_wait(&j.done) != 0)
        ; /* EINTR */
    sem_destroy(&j.done);
    cit_error_restore(&j.err);
    return j.result;
}

void tpmq_stop(tpmq *q) {
    if (!q)
        return;
    pthread_mutex_lock(&q->m);
    q->stop = true;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->m);
    pthread_join(q->th, NULL); /* the queued jobs run first */
    pthread_mutex_destroy(&q->m);
    pthread_cond_destroy(&q->work);
    free(q);
}
