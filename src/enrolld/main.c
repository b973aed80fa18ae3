/* SPDX-License-Identifier: Apache-2.0 */
/* enrolld: configuration, start-up (workspace, CA, trust store, database, TLS), signals, shut-down. */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/util.h"
#include "crypto/ekcert.h"
#include "enrolld/enrolld.h"

static const char usage[] =
    "usage: enrolld [options]\n"
    "\n"
    "The fleet enrollment server (docs/enrollment.md, API docs/openapi-enroll.yaml): nodes prove\n"
    "their TPM (EK certificate, credential activation, quote, certified DevID key), an operator\n"
    "approves them (`citadel enroll approve`), and the workspace's CA issues their certificates.\n"
    "\n"
    "  --listen ADDR:PORT   listen address (ENROLLD_LISTEN; default 127.0.0.1:7702; port 0: any)\n"
    "  --store-path P       the server's citadel workspace: CA, trust stores, audit log (TPM_STORE_PATH)\n"
    "  --backend B, --tcti CONF, --vtpm-state F   its TPM, as for the CLI\n"
    "  --db FILE            the enrollment database (SQLite; default <store>.enrolld.db)\n"
    "  --ca NAME            the workspace's CA that issues node certificates (default: enroll)\n"
    "  --tls-cert F, --tls-key F   the server's TLS certificate (chain) and key, PEM\n"
    "  --tls-identity NAME  or the TLS key in the TPM: a tls-server identity of the workspace (its\n"
    "                       certificate, or --tls-cert); every handshake is signed in the TPM\n"
    "  --keys-file F        admin API keys, \"ID admin KEY\" lines, mode 0600 (ENROLLD_KEYS_FILE);\n"
    "                       ENROLLD_API_KEY adds an admin key \"env\"\n"
    "  --admin-cn NAME      a client certificate of the CA with this CN authenticates an admin\n"
    "  --ek-ca PATH         also trust these EK manufacturer CAs (PEM bundle, DER file or directory),\n"
    "                       besides the workspace's trust store \"manufacturers\" (`citadel ca trust add`)\n"
    "                       and the built-in vendor CAs\n"
    "  --tokens-file F      enrollment tokens, one per line (mode 0600): a node must present one\n"
    "  --pcrs LIST          the PCRs nodes quote (default 0,2,4,7; sha256 bank)\n"
    "  --pcr-policy F       required PCR values, JSON {\"sha256\": {\"0\": \"hex\", ...}}\n"
    "  --require-eventlog   refuse quotes without the node's event log\n"
    "  --nonce-ttl SECONDS  how long a nonce is valid (default 300)\n"
    "  --max-pending N      open (started, unexpired) enrollments at most (default 1000): 503 beyond\n"
    "  --auto-approve       approve nodes that pass every check (default: pending for an operator)\n"
    "  --cert-days N        validity of issued certificates (default: the CA profile's)\n"
    "  --max-body BYTES     request body limit (default 262144): 413 beyond\n"
    "  --max-connections N  (default 256)   --timeout SECONDS  idle timeout (default 30)\n"
    "  --ready-file F       write the URL once listening\n"
    "  SIGHUP reloads the manufacturer trust store and the admin API keys; SIGTERM drains.\n"
    "  --insecure-http      plain HTTP on a loopback address (tests only; no mutual TLS)\n"
    "  --help, --version\n";

#define bad(...) cit_daemon_usage("enrolld", __VA_ARGS__)
#define fatal(what) cit_daemon_fatal("enrolld", what)

static int parse_listen(const char *s, struct sockaddr_storage *ss, char *host, size_t hl, uint16_t *port, bool *lo) {
    socklen_t len = 0;
    int r = cit_net_parse_listen(s, ss, &len, host, hl, port, lo);
    if (r < 0)
        cit_error_step("run `enrolld --help`");
    return r;
}

/* A text file, NUL-terminated (cit_read_file terminates what it reads). */
static int read_text(const char *path, size_t max, char **out) {
    uint8_t *b = NULL;
    size_t n = 0;
    int r = cit_read_file(path, max, &b, &n);
    if (r < 0) {
        cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", path, strerror(-r));
        return CIT_E_INPUT_READ;
    }
    *out = (char *)b;
    return 0;
}

static int private_file(const char *path, const char *what) {
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077)) {
        cit_error_set(CIT_E_INSECURE_PERMISSIONS, "%s %s can be read by others (mode %03o)", what, path,
                      (unsigned)(st.st_mode & 0777));
        cit_error_step("chmod 600 %s", path);
        return CIT_E_INSECURE_PERMISSIONS;
    }
    return 0;
}

static int load_tokens(enrolld *d) {
    if (!d->cfg.tokens_file)
        return 0;
    char *t = NULL;
    int r = private_file(d->cfg.tokens_file, "the tokens file");
    if (r == 0)
        r = read_text(d->cfg.tokens_file, 1 << 20, &t);
    if (r < 0)
        return r;
    char *save = NULL;
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' '))
            line[--l] = 0;
        if (!l || line[0] == '#')
            continue;
        char **nv = realloc(d->tokens, (d->ntokens + 1) * sizeof *nv);
        char *h = malloc(65);
        if (!nv || !h) {
            free(h);
            free(nv ? nv : NULL);
            r = cit_error_set(CIT_E_INTERNAL, "out of memory");
            break;
        }
        d->tokens = nv;
        uint8_t md[32];
        SHA256((const uint8_t *)line, l, md);
        for (int i = 0; i < 32; i++)
            snprintf(h + 2 * i, 3, "%02x", md[i]);
        d->tokens[d->ntokens++] = h;
    }
    cit_memzero(t, strlen(t));
    free(t);
    if (r == 0 && d->ntokens == 0)
        r = cit_error_set(CIT_E_USAGE, "the tokens file %s has no token", d->cfg.tokens_file);
    return r;
}

/* The manufacturer trust store: the workspace's "manufacturers" store, --ek-ca, the built-in CAs. */
static int load_ek_trust(enrolld *d, X509_STORE **out) {
    X509_STORE *st = X509_STORE_new();
    if (!st)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    size_t added = 0, n = 0;
    char *pem = NULL;
    pthread_mutex_lock(&d->ctx_lock);
    int tr = cit_ca_trust_bundle(d->ctx, "manufacturers", &pem);
    pthread_mutex_unlock(&d->ctx_lock);
    if (tr == 0 && pem) {
        cit__ekcert_store_add_pem(st, pem, strlen(pem), &n);
        added += n;
    }
    free(pem);
    cit_error_clear();
    if (d->cfg.ek_ca) {
        int r = cit__ekcert_store_add_path(st, d->cfg.ek_ca, &n);
        if (r < 0) {
            X509_STORE_free(st);
            return r;
        }
        added += n;
    }
    n = 0;
    cit__ekcert_store_add_pem(st, cit__ek_vendor_cas, cit__ek_vendor_cas_len, &n);
    enr_log("EK manufacturer trust store: %zu certificate(s) from the workspace and --ek-ca, %zu built in", added, n);
    *out = st;
    return 0;
}

/* SIGHUP: the manufacturer trust store and the admin API keys again; the old ones stay on failure. */
static void reload(enrolld *d) {
    X509_STORE *st = NULL;
    tpmd_keyset *k = NULL;
    if (load_ek_trust(d, &st) < 0) {
        enr_log("SIGHUP: keeping the old trust store: %s", cit_error_last()->message);
        return;
    }
    if ((d->cfg.keys_file || cit_daemon_env("ENROLLD_API_KEY")) && tpmd_keys_load(&k, d->cfg.keys_file, cit_daemon_env("ENROLLD_API_KEY")) < 0) {
        enr_log("SIGHUP: keeping the old trust store and keys: %s", cit_error_last()->message);
        X509_STORE_free(st);
        return;
    }
    pthread_mutex_lock(&d->reload_lock);
    X509_STORE *old_st = d->ek_trust;
    tpmd_keyset *old_k = d->keys;
    d->ek_trust = st;
    d->keys = k;
    pthread_mutex_unlock(&d->reload_lock);
    X509_STORE_free(old_st);
    tpmd_keyset_free(old_k);
    enr_audit(d, NULL, "enroll.server-reload", json_pack("{s:i}", "api_keys", k ? (int)k->n : 0), 0);
}

static enrolld *the_server; /* for the GnuTLS certificate callback, which carries no user pointer */

static int tls_cert_cb(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                       const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                       unsigned int *pcert_length, gnutls_privkey_t *privkey) {
    cit_tls_creds_gnutls(the_server->tls, pcert, pcert_length, privkey);
    return 0;
}

int main(int argc, char **argv) {
    static enrolld D;
    enrolld *d = &D;
    the_server = d;
    enrolld_config *c = &d->cfg;
    pthread_mutex_init(&d->ctx_lock, NULL);
    pthread_mutex_init(&d->reload_lock, NULL);
    const char *listen = cit_daemon_env("ENROLLD_LISTEN") ?: "127.0.0.1:7702", *ready_file = NULL, *pcrs = "0,2,4,7";
    c->store_path = cit_daemon_env("TPM_STORE_PATH");
    c->backend = cit_daemon_env("TPM_BACKEND");
    c->tcti = cit_daemon_env("TPM_TCTI");
    c->keys_file = cit_daemon_env("ENROLLD_KEYS_FILE");
    c->ca_name = "enroll";
    const char *nonce_ttl = "300", *max_body = "262144", *max_conns = "256", *timeout = "30", *cert_days = "0",
               *max_pending = "1000";
    int r = 0;
    for (int i = 1; i < argc && r == 0; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("enrolld %s (libmicrohttpd %s)\n", CIT_VERSION, MHD_get_version());
            return 0;
        }
        if (strcmp(a, "--auto-approve") == 0) {
            c->auto_approve = true;
            continue;
        }
        if (strcmp(a, "--require-eventlog") == 0) {
            c->require_eventlog = true;
            continue;
        }
        if (strcmp(a, "--insecure-http") == 0) {
            c->insecure_http = true;
            continue;
        }
        static const char *const names[] = {"--listen", "--store-path", "--backend", "--tcti", "--vtpm-state", "--db",
                                            "--ca", "--tls-cert", "--tls-key", "--tls-identity", "--keys-file", "--admin-cn", "--ek-ca",
                                            "--tokens-file", "--pcrs", "--pcr-policy", "--nonce-ttl", "--cert-days",
                                            "--max-body", "--max-connections", "--timeout", "--ready-file", "--max-pending", NULL};
        const char **slots[] = {&listen, &c->store_path, &c->backend, &c->tcti, &c->vtpm_state, &c->db_path,
                                &c->ca_name, &c->tls_cert, &c->tls_key, &c->tls_identity, &c->keys_file, &c->admin_cn, &c->ek_ca,
                                &c->tokens_file, &pcrs, &c->pcr_policy, &nonce_ttl, &cert_days, &max_body,
                                &max_conns, &timeout, &ready_file, &max_pending};
        int k = 0;
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        while (names[k] && !(strlen(names[k]) == nl && strncmp(names[k], a, nl) == 0))
            k++;
        if (!names[k])
            r = bad("unknown option: %s", a);
        else if (eq)
            *slots[k] = eq + 1;
        else if (i + 1 < argc)
            *slots[k] = argv[++i];
        else
            r = bad("%s needs a value", a);
    }
    uint64_t v_ttl = 0, v_body = 0, v_conns = 0, v_to = 0, v_days = 0, v_pend = 0;
    if (r == 0 && (cit_parse_u64(max_pending, &v_pend) < 0 || v_pend < 1 || v_pend > 10000000))
        r = bad("--max-pending takes 1 to 10000000");
    c->max_pending = (int64_t)v_pend;
    if (r == 0 && (cit_parse_u64(nonce_ttl, &v_ttl) < 0 || v_ttl < 1 || v_ttl > 86400))
        r = bad("--nonce-ttl takes 1 to 86400 seconds");
    if (r == 0 && (cit_parse_u64(max_body, &v_body) < 0 || v_body < 1024 || v_body > (64u << 20)))
        r = bad("--max-body takes 1024 to 67108864 bytes");
    if (r == 0 && (cit_parse_u64(max_conns, &v_conns) < 0 || v_conns < 1 || v_conns > 100000))
        r = bad("--max-connections takes 1 to 100000");
    if (r == 0 && (cit_parse_u64(timeout, &v_to) < 0 || v_to < 1 || v_to > 86400))
        r = bad("--timeout takes 1 to 86400 seconds");
    if (r == 0 && (cit_parse_u64(cert_days, &v_days) < 0 || v_days > 36500))
        r = bad("--cert-days takes 0 to 36500");
    c->nonce_ttl = (unsigned)v_ttl;
    c->max_body = (size_t)v_body;
    c->max_conns = (unsigned)v_conns;
    c->timeout = (unsigned)v_to;
    c->cert_days = (int)v_days;
    /* the PCR list */
    if (r == 0) {
        snprintf(c->pcrs, sizeof c->pcrs, "%s", pcrs);
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%s", pcrs);
        char *save = NULL;
        for (char *p = strtok_r(tmp, ",", &save); p && r == 0; p = strtok_r(NULL, ",", &save)) {
            uint32_t n;
            if (cit_parse_u32(p, &n) < 0 || n > 23)
                r = bad("--pcrs takes PCR numbers 0-23 separated by commas, not '%s'", pcrs);
            else
                c->pcr_mask |= 1u << n;
        }
        if (r == 0 && !c->pcr_mask)
            r = bad("--pcrs names no PCR");
    }
    struct sockaddr_storage ss;
    bool loopback = false;
    if (r == 0)
        r = parse_listen(listen, &ss, c->host, sizeof c->host, &c->port, &loopback);
    if (r == 0 && c->insecure_http && !loopback)
        r = bad("--insecure-http only on a loopback address");
    if (r == 0 && !c->insecure_http && !c->tls_identity && (!c->tls_cert || !c->tls_key))
        r = bad("enrolld serves HTTPS: give --tls-cert and --tls-key (a certificate from `citadel ca issue`), "
                "or --tls-identity");
    if (r < 0) {
        cit_error_render(stderr, cit_error_last(), CIT_FORMAT_TEXT);
        return 2;
    }

    /* the workspace: CA, trust stores, audit log */
    cit_ctx_options o = {.store_path = c->store_path, .backend = c->backend, .tcti = c->tcti, .vtpm_state = c->vtpm_state};
    json_t *st = NULL;
    if (cit_ctx_new(&d->ctx, &o) < 0 || cit_workspace_status(&st, d->ctx) < 0) {
        fatal("cannot open the workspace");
        return cit_code_exit_status(cit_error_last()->code);
    }
    json_decref(st);
    cit_ctx_set_actor(d->ctx, "enrolld");
    st = NULL;
    if (cit_audit_stream_create(&st, d->ctx, "enroll", "internal") < 0 && cit_error_last()->code != CIT_E_OBJECT_EXISTS)
        enr_log("note: audit stream enroll: %s", cit_error_last()->message);
    json_decref(st);
    cit_error_clear();
    if (cit_ca_open(&d->ca, d->ctx, c->ca_name) < 0 || cit_ca_cert_pem(d->ca, &d->ca_pem) < 0) {
        fatal("cannot open the CA");
        cit_ctx_close(d->ctx);
        return cit_code_exit_status(cit_error_last()->code);
    }
    BIO *b = BIO_new_mem_buf(d->ca_pem, -1);
    d->ca_cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    char db_default[4096];
    snprintf(db_default, sizeof db_default, "%s.enrolld.db", cit_ctx_store_path(d->ctx));
    if (!c->db_path)
        c->db_path = db_default;
    int sr = 0;
    if (!d->ca_cert)
        sr = cit_error_set(CIT_E_INTERNAL, "the CA certificate does not parse");
    if (sr == 0)
        sr = load_ek_trust(d, &d->ek_trust);
    if (sr == 0)
        sr = load_tokens(d);
    if (sr == 0 && (c->keys_file || cit_daemon_env("ENROLLD_API_KEY")))
        sr = tpmd_keys_load(&d->keys, c->keys_file, cit_daemon_env("ENROLLD_API_KEY"));
    if (sr == 0 && c->pcr_policy) {
        json_error_t je;
        d->pcr_policy = json_load_file(c->pcr_policy, 0, &je);
        if (!d->pcr_policy || !json_is_object(json_object_get(d->pcr_policy, "sha256")))
            sr = bad("--pcr-policy %s is not {\"sha256\": {\"PCR\": \"hex\"}}: %s", c->pcr_policy, je.text);
    }
    if (sr == 0 && !c->insecure_http && c->tls_identity) {
        char *chain = NULL;
        if (c->tls_cert)
            sr = read_text(c->tls_cert, 1 << 20, &chain);
        if (sr == 0)
            sr = cit_tls_creds_identity(&d->tls, d->ctx, &d->ctx_lock, c->tls_identity, chain);
        if (sr == 0)
            cit_tls_creds_set_actor(d->tls, "enrolld:tls");
        free(chain);
    } else if (sr == 0 && !c->insecure_http) {
        sr = private_file(c->tls_key, "the TLS key");
        if (sr == 0)
            sr = read_text(c->tls_cert, 1 << 20, &d->tls_cert_pem);
        if (sr == 0)
            sr = read_text(c->tls_key, 1 << 20, &d->tls_key_pem);
    }
    if (sr == 0)
        sr = enr_store_sqlite_open(&d->db, c->db_path);
    if (sr < 0) {
        fatal("cannot start");
        cit_ca_close(d->ca);
        cit_ctx_close(d->ctx);
        return cit_code_exit_status(cit_error_last()->code);
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (!c->insecure_http)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem opts[12];
    int k = 0;
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, c->max_conns, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, c->timeout, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)enr_completed, d};
    if (d->tls) {
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)tls_cert_cb};
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, d->ca_pem};
    } else if (!c->insecure_http) {
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, d->tls_cert_pem};
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, d->tls_key_pem};
        /* asks clients for a certificate (optional at the TLS level: node and admin routes check) */
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, d->ca_pem};
    }
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    d->mhd = MHD_start_daemon(flags, c->port, NULL, NULL, enr_access, d, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!d->mhd) {
        cit_error_set(CIT_E_USAGE, "cannot listen on %s: %s", listen, errno ? strerror(errno) : "libmicrohttpd refused");
        fatal("cannot start the HTTP service");
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di ? di->port : c->port;
    char url[128];
    snprintf(url, sizeof url, "%s://%s%s%s:%u", c->insecure_http ? "http" : "https", ss.ss_family == AF_INET6 ? "[" : "",
             c->host, ss.ss_family == AF_INET6 ? "]" : "", port);
    enr_audit(d, NULL, "enroll.server-start",
              json_pack("{s:s,s:s,s:s,s:b,s:i}", "url", url, "db", c->db_path, "pcrs", c->pcrs, "auto_approve",
                        c->auto_approve, "nonce_ttl", (int)c->nonce_ttl),
              0);
    enr_log("listening on %s (CA %s, database %s, PCRs %s, %s%s)", url, c->ca_name, c->db_path, c->pcrs,
            c->auto_approve ? "auto-approve" : "operator approval", d->tls ? ", TLS key in the TPM" : "");
    if (ready_file) {
        char line[160];
        int len = snprintf(line, sizeof line, "%s\n", url);
        if (cit_write_file_atomic(ready_file, (const uint8_t *)line, (size_t)len, 0644, 0) < 0)
            enr_log("warning: cannot write %s", ready_file);
    }
    int sig = 0;
    for (;;) {
        sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGHUP)
            reload(d);
        else if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    enr_log("%s: draining %d request(s)", sig == SIGTERM ? "SIGTERM" : "SIGINT", atomic_load(&d->inflight));
    atomic_store(&d->draining, true);
    MHD_socket lfd = MHD_quiesce_daemon(d->mhd);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    uint64_t deadline = cit_now_usec() + 10 * 1000000ull;
    while (atomic_load(&d->inflight) > 0 && cit_now_usec() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(d->mhd);
    enr_audit(d, NULL, "enroll.server-stop", NULL, 0);
    d->db->close(d->db);
    cit_ca_close(d->ca);
    X509_free(d->ca_cert);
    X509_STORE_free(d->ek_trust);
    json_decref(d->pcr_policy);
    tpmd_keyset_free(d->keys);
    for (size_t i = 0; i < d->ntokens; i++)
        free(d->tokens[i]);
    free(d->tokens);
    if (d->tls_key_pem) {
        cit_memzero(d->tls_key_pem, strlen(d->tls_key_pem));
        free(d->tls_key_pem);
    }
    free(d->tls_cert_pem);
    cit_tls_creds_free(d->tls);
    free(d->ca_pem);
    free(d->crl_pem);
    int cr = cit_ctx_close(d->ctx);
    enr_log("stopped");
    return cr < 0 ? 1 : 0;
}
