/* SPDX-License-Identifier: Apache-2.0 */
/* tpmd: configuration, start-up, signals (SIGTERM drains, SIGHUP reloads API keys), shut-down. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "basic/util.h"
#include "tpmd.h"

tpmd *tpmd_global;

static const char usage[] =
    "usage: tpmd [options]\n"
    "\n"
    "The TPM as a REST service: keys, signatures, policies, secrets, approvals and the audit log of\n"
    "a Citadel workspace over HTTP(S), JSON in and out. The API is docs/openapi.yaml; errors carry\n"
    "the CLI's stable codes (docs/ERRORS.md). Options override the environment variables shown.\n"
    "\n"
    "Service:\n"
    "  --listen ADDR:PORT     listen address (TPMD_LISTEN; default 127.0.0.1:7701; [::1]:PORT for\n"
    "                         IPv6; port 0 picks a free port, see --ready-file)\n"
    "  --backend B            auto, vtpm, mock, swtpm or device (TPMD_BACKEND, else TPM_BACKEND, else\n"
    "                         the workspace's, as the CLI chooses)\n"
    "  --store-path P         the workspace store (TPM_STORE_PATH)\n"
    "  --vtpm-state F         the vTPM state file (TPMD_VTPM_STATE; default <store>.tpmstate)\n"
    "  --tcti CONF            TCTI for swtpm/device (TPM_TCTI)\n"
    "  --ready-file F         write the service URL to F once listening (for scripts and tests)\n"
    "  --threads N            0 (default): a thread per connection; N: a pool of N polling threads\n"
    "                         (TPMD_THREADS). TPM access is serialised either way.\n"
    "\n"
    "Security:\n"
    "  --keys-file F          API keys, one \"ID ROLE KEY\" per line, ROLE read|sign|admin; mode 0600\n"
    "                         or stricter (TPMD_KEYS_FILE). TPMD_API_KEY adds an admin key \"env\".\n"
    "                         Clients send the key in X-API-Key. SIGHUP reloads the keys.\n"
    "  --insecure-no-auth     allow listening on a non-loopback address without API keys\n"
    "  --tls-cert F           TLS certificate (chain) PEM (TPMD_TLS_CERT)\n"
    "  --tls-key F            TLS private key PEM (TPMD_TLS_KEY)\n"
    "  --tls-identity NAME    TLS with a TPM identity's key: handshakes are signed in the TPM; the\n"
    "                         certificate is the identity's, or --tls-cert (TPMD_TLS_IDENTITY)\n"
    "\n"
    "Limits:\n"
    "  --max-body BYTES       request body limit (TPMD_MAX_BODY; default 1048576): 413 beyond\n"
    "  --max-header BYTES     request line and headers (TPMD_MAX_HEADER; default 16384)\n"
    "  --max-url BYTES        URL length (TPMD_MAX_URL; default 2048): 414 beyond\n"
    "  --max-connections N    concurrent connections (TPMD_MAX_CONNECTIONS; default 64)\n"
    "  --timeout SECONDS      idle connection timeout (TPMD_TIMEOUT; default 30)\n"
    "  --header-timeout S     a request's headers must arrive within S seconds of the connection\n"
    "                         opening or the previous answer (TPMD_HEADER_TIMEOUT; default 10)\n"
    "  --idle-lock SECONDS    unsealed Ed25519 keys lock after this idle time (TPMD_IDLE_LOCK; 300)\n"
    "  --drain SECONDS        on SIGTERM, wait this long for requests in flight (TPMD_DRAIN; 10)\n"
    "\n"
    "Without API keys tpmd listens on loopback only (every caller is \"anonymous\" with role admin).\n"
    "Every changing request is answered after its audit entry (stream tpmd, with the caller's key\n"
    "id, never the key) is committed. See `man 8 tpmd` (docs/tpmd.8).\n"
    "  --help, --version\n";

void tpmd_log(const char *fmt, ...) {
    char ts[32];
    cit_time_rfc3339(ts, sizeof ts, (int64_t)time(NULL));
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s tpmd: %s\n", ts, msg);
}

#define bad(...) cit_daemon_usage("tpmd", __VA_ARGS__)
#define fatal(what) cit_daemon_fatal("tpmd", what)

static int parse_uint(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *out) {
    uint64_t v;
    if (!s || cit_parse_u64(s, &v) < 0 || v < min || v > max)
        return bad("%s takes a number from %llu to %llu, not '%s'", what, (unsigned long long)min,
                   (unsigned long long)max, s ? s : "");
    *out = v;
    return 0;
}

typedef struct listen_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    bool loopback;
} listen_addr;

static int parse_listen(const char *s, listen_addr *a, char *host, size_t hostlen, uint16_t *port) {
    int r = cit_net_parse_listen(s, &a->ss, &a->len, host, hostlen, port, &a->loopback);
    if (r < 0)
        cit_error_step("run `tpmd --help`");
    return r;
}

static int load_keys(tpmd *d, tpmd_keyset **out) {
    const char *k = cit_daemon_env("TPMD_API_KEY");
    *out = NULL;
    if (!k && !d->cfg.keys_file)
        return 0;
    return tpmd_keys_load(out, d->cfg.keys_file, k);
}

int main(int argc, char **argv) {
    static tpmd D;
    tpmd *d = &D;
    tpmd_global = d;
    d->started_usec = cit_now_usec();
    pthread_mutex_init(&d->tpm_lock, NULL);
    pthread_rwlock_init(&d->keys_lock, NULL);
    pthread_mutex_init(&d->conns_lock, NULL);
    const char *listen = cit_daemon_env("TPMD_LISTEN") ?: "127.0.0.1:7701";
    const char *ready_file = NULL;
    tpmd_config *c = &d->cfg;
    c->backend = cit_daemon_env("TPMD_BACKEND");
    c->store_path = cit_daemon_env("TPM_STORE_PATH");
    c->vtpm_state = cit_daemon_env("TPMD_VTPM_STATE");
    c->tcti = cit_daemon_env("TPM_TCTI");
    c->keys_file = cit_daemon_env("TPMD_KEYS_FILE");
    c->tls_cert = cit_daemon_env("TPMD_TLS_CERT");
    c->tls_key = cit_daemon_env("TPMD_TLS_KEY");
    c->tls_identity = cit_daemon_env("TPMD_TLS_IDENTITY");
    const char *num[][3] = {{"--max-body", "TPMD_MAX_BODY", "1048576"},
                            {"--max-header", "TPMD_MAX_HEADER", "16384"},
                            {"--max-url", "TPMD_MAX_URL", "2048"},
                            {"--max-connections", "TPMD_MAX_CONNECTIONS", "64"},
                            {"--timeout", "TPMD_TIMEOUT", "30"},
                            {"--idle-lock", "TPMD_IDLE_LOCK", "300"},
                            {"--drain", "TPMD_DRAIN", "10"},
                            {"--threads", "TPMD_THREADS", "0"},
                            {"--header-timeout", "TPMD_HEADER_TIMEOUT", "10"}};
    const char *numval[9];
    for (int i = 0; i < 9; i++)
        numval[i] = cit_daemon_env(num[i][1]) ?: num[i][2];
    int r = 0;
    for (int i = 1; i < argc && r == 0; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        char name[40];
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), a);
#define VAL() (eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL))
        const char *v = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("tpmd %s (libmicrohttpd %s, GnuTLS %s)\n", CIT_VERSION, MHD_get_version(),
                   gnutls_check_version(NULL));
            return 0;
        } else if (strcmp(a, "--insecure-no-auth") == 0)
            c->insecure_no_auth = true;
        else {
            const char **slot = NULL;
            if (strcmp(name, "--listen") == 0)
                slot = &listen;
            else if (strcmp(name, "--backend") == 0)
                slot = &c->backend;
            else if (strcmp(name, "--store-path") == 0)
                slot = &c->store_path;
            else if (strcmp(name, "--vtpm-state") == 0)
                slot = &c->vtpm_state;
            else if (strcmp(name, "--tcti") == 0)
                slot = &c->tcti;
            else if (strcmp(name, "--keys-file") == 0)
                slot = &c->keys_file;
            else if (strcmp(name, "--tls-cert") == 0)
                slot = &c->tls_cert;
            else if (strcmp(name, "--tls-key") == 0)
                slot = &c->tls_key;
            else if (strcmp(name, "--tls-identity") == 0)
                slot = &c->tls_identity;
            else if (strcmp(name, "--ready-file") == 0)
                slot = &ready_file;
            for (int k = 0; k < 9 && !slot; k++)
                if (strcmp(name, num[k][0]) == 0)
                    slot = &numval[k];
            if (!slot)
                r = bad("unknown option: %s", a);
            else if (!(v = VAL()))
                r = bad("%s needs a value", name);
            else
                *slot = v;
        }
#undef VAL
    }
    uint64_t n[9] = {0};
    static const uint64_t lo[9] = {1024, 2048, 64, 1, 1, 1, 0, 0, 1};
    static const uint64_t hi[9] = {64ull << 20, 1 << 20, 65536, 100000, 86400, 86400, 3600, 64, 3600};
    for (int i = 0; i < 9 && r == 0; i++)
        r = parse_uint(num[i][0], numval[i], lo[i], hi[i], &n[i]);
    listen_addr la;
    if (r == 0)
        r = parse_listen(listen, &la, c->host, sizeof c->host, &c->port);
    if (r < 0) {
        cit_error_render(stderr, cit_error_last(), CIT_FORMAT_TEXT);
        return 2;
    }
    c->max_body = (size_t)n[0];
    c->header_max = (unsigned)n[1];
    c->url_max = (unsigned)n[2];
    c->max_conns = (unsigned)n[3];
    c->timeout = (unsigned)n[4];
    c->idle_lock = (unsigned)n[5];
    c->drain_seconds = (unsigned)n[6];
    c->threads = (unsigned)n[7];
    c->header_timeout = (unsigned)n[8];
    c->loopback = la.loopback;

    /* API keys; refuse an open door on a non-loopback address */
    if (load_keys(d, &d->keys) < 0) {
        fatal("cannot load the API keys");
        return 2;
    }
    if (!d->keys && !la.loopback && !c->insecure_no_auth) {
        bad("refusing to listen on %s without API keys", c->host);
        cit_error_cause("anyone who can reach the address could use the TPM");
        cit_error_step("set TPMD_API_KEY or --keys-file, or listen on 127.0.0.1");
        cit_error_step("--insecure-no-auth overrides this (for a network you fully control)");
        fatal("configuration refused");
        return 2;
    }

    /* signals go to the main thread only (every thread started from here on,
     * the TPM thread, the audit writer and the HTTP threads, inherits this mask) */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the one TPM context; opened now, so a broken workspace stops the start */
    cit_ctx_options o = {.store_path = c->store_path, .backend = c->backend, .tcti = c->tcti,
                         .vtpm_state = c->vtpm_state};
    json_t *st = NULL;
    if (cit_ctx_new(&d->ctx, &o) < 0 || cit_workspace_status(&st, d->ctx) < 0) {
        fatal("cannot open the workspace");
        return cit_code_exit_status(cit_error_last()->code);
    }
    json_decref(st);
    if (cit_keycache_new(&d->kc, c->idle_lock) < 0 || auditq_start(&d->aq, d) < 0 || tpmq_start(&d->tq, d) < 0) {
        fatal("cannot start");
        tpmq_stop(d->tq);
        auditq_stop(d->aq);
        cit_ctx_close(d->ctx);
        return 1;
    }
    if (tpmd_tls_setup(d) < 0) {
        fatal("TLS set-up refused");
        tpmq_stop(d->tq);
        auditq_stop(d->aq);
        cit_keycache_free(d->kc);
        cit_ctx_close(d->ctx);
        return cit_code_exit_status(cit_error_last()->code);
    }

    /* A request waits for the TPM lock and for its audit commit, so a thread that handled many
     * connections would hold all of them up (and audit entries would never batch): by default
     * each connection has its own thread (bounded by --max-connections); --threads N > 0 uses a
     * pool of N polling threads instead. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (c->threads == 0)
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    else
        flags |= MHD_USE_EPOLL;
    if (la.ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    bool tls = d->tls != NULL, tpmkey = cit_tls_creds_in_tpm(d->tls);
    if (tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem opts[16];
    int k = 0;
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &la.ss};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, c->max_conns, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, c->timeout, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->header_max, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)tpmd_completed, d};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)tpmd_conn_notify, d};
    if (c->threads > 1)
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, c->threads, NULL};
    if (tls)
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)tpmd_tls_cert_cb};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    d->mhd = MHD_start_daemon(flags, c->port, NULL, NULL, tpmd_access, d, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!d->mhd) {
        cit_error_set(CIT_E_USAGE, "cannot listen on %s: %s", listen, errno ? strerror(errno) : "libmicrohttpd refused");
        fatal("cannot start the HTTP service");
        tpmq_stop(d->tq);
        auditq_stop(d->aq);
        cit_keycache_free(d->kc);
        cit_ctx_close(d->ctx);
        tpmd_tls_free(d);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di ? di->port : c->port;
    char url[128];
    snprintf(url, sizeof url, "%s://%s%s%s:%u", tls ? "https" : "http", la.ss.ss_family == AF_INET6 ? "[" : "",
             c->host, la.ss.ss_family == AF_INET6 ? "]" : "", port);
    json_t *p = json_pack("{s:s,s:s,s:s,s:b,s:s}", "url", url, "backend", cit_ctx_backend(d->ctx), "store",
                          cit_ctx_store_path(d->ctx), "auth", d->keys != NULL, "tls",
                          tpmkey ? "tpm-identity" : tls ? "files" : "none");
    if (auditq_append(d->aq, "tpmd.start", p) < 0)
        tpmd_log("warning: the start entry was not audited: %s", cit_error_last()->message);
    json_decref(p);
    tpmd_log("listening on %s (backend %s, store %s, %s, %s)", url, cit_ctx_backend(d->ctx),
             cit_ctx_store_path(d->ctx), d->keys ? "API keys required" : "no API keys: loopback, anonymous admin",
             tpmkey ? "TLS key in the TPM" : tls ? "TLS" : "plain HTTP");
    if (ready_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", ready_file);
        char line[160];
        int len = snprintf(line, sizeof line, "%s\n", url);
        if (cit_write_file_atomic(ready_file, (const uint8_t *)line, (size_t)len, 0644, 0) < 0)
            tpmd_log("warning: cannot write %s", ready_file);
    }

    /* the main thread: signals, and the idle lock of session keys */
    int sig = 0;
    for (;;) {
        struct timespec ts = {1, 0};
        sig = sigtimedwait(&sigs, NULL, &ts);
        size_t cut = tpmd_conns_reap(d);
        if (cut)
            tpmd_log("closed %zu connection(s) slower than %u s to send their headers", cut, c->header_timeout);
        size_t locked = cit_keycache_expire(d->kc);
        if (locked)
            tpmd_log("locked %zu idle session key(s)", locked);
        if (sig == SIGHUP) {
            tpmd_keyset *nk = NULL;
            if (load_keys(d, &nk) < 0) {
                tpmd_log("SIGHUP: keeping the old API keys: %s", cit_error_last()->message);
                continue;
            }
            if (!nk && !la.loopback && !c->insecure_no_auth) {
                tpmd_log("SIGHUP: keeping the old API keys: no keys configured on a non-loopback address");
                continue;
            }
            pthread_rwlock_wrlock(&d->keys_lock);
            tpmd_keyset *old = d->keys;
            d->keys = nk;
            pthread_rwlock_unlock(&d->keys_lock);
            tpmd_keyset_free(old);
            tpmd_log("SIGHUP: reloaded the API keys (%zu)", nk ? nk->n : 0);
            json_t *hp = json_pack("{s:I}", "keys", (json_int_t)(nk ? nk->n : 0));
            auditq_post(d->aq, "tpmd.keys-reload", hp);
            json_decref(hp);
        } else if (sig == SIGTERM || sig == SIGINT)
            break;
    }

    /* drain: stop accepting, let requests in flight finish, then close everything */
    tpmd_log("%s: draining %d request(s) in flight", sig == SIGTERM ? "SIGTERM" : "SIGINT",
             atomic_load(&d->inflight));
    atomic_store(&d->draining, true);
    MHD_socket lfd = MHD_quiesce_daemon(d->mhd);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    uint64_t deadline = cit_now_usec() + (uint64_t)c->drain_seconds * 1000000;
    while (atomic_load(&d->inflight) > 0 && cit_now_usec() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int left = atomic_load(&d->inflight);
    MHD_stop_daemon(d->mhd);
    tpmq_stop(d->tq);
    json_t *sp = json_pack("{s:i}", "unfinished_requests", left);
    auditq_append(d->aq, "tpmd.stop", sp);
    json_decref(sp);
    auditq_stop(d->aq);
    size_t wiped = cit_keycache_count(d->kc);
    cit_keycache_free(d->kc);
    int cr = cit_ctx_close(d->ctx);
    tpmd_tls_free(d);
    pthread_rwlock_wrlock(&d->keys_lock);
    tpmd_keyset_free(d->keys);
    d->keys = NULL;
    pthread_rwlock_unlock(&d->keys_lock);
    if (cr < 0)
        tpmd_log("the TPM state was not saved cleanly: %s", cit_error_last()->message);
    tpmd_log("stopped (%d request(s) cut off, %zu session key(s) wiped)", left, wiped);
    return cr < 0 ? 1 : 0;
}
