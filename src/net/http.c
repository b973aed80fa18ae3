/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal HTTP/1.1 client (net.h): one request per connection (Connection: close), over TCP
 * or GnuTLS. Everything the server sends is bounded (header and body caps) and every wait is
 * bounded by one deadline for the whole request.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "basic/util.h"
#include "net/net.h"

#define DEFAULT_TIMEOUT 30
#define URL_MAX 2048

typedef struct url {
    bool tls;
    char host[256]; /* without brackets */
    char port[8];
    const char *path; /* into the URL string; "/" when empty */
    bool ipv6;
} url;

typedef struct conn {
    int fd;
    gnutls_session_t s;
    gnutls_certificate_credentials_t cred;
    cit_tls_creds *creds;
    uint64_t deadline; /* CLOCK_MONOTONIC, ms */
    const char *host;
    /* a response from memory instead of a socket (cit__http_parse_response, for the fuzzer) */
    const uint8_t *mem;
    size_t mem_len, mem_off, mem_step;
} conn;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int remaining(const conn *c) {
    uint64_t n = now_ms();
    return n >= c->deadline ? 0 : (int)(c->deadline - n);
}

static int timeout_error(const conn *c, const char *what) {
    cit_error_set(CIT_E_NET_TIMEOUT, "no answer from %s in time (%s)", c->host, what);
    return CIT_E_NET_TIMEOUT;
}

static int parse_url(const char *s, url *u) {
    memset(u, 0, sizeof *u);
    const char *p;
    if (strlen(s) > URL_MAX)
        return cit_error_set(CIT_E_USAGE, "the URL is longer than %d bytes", URL_MAX);
    if (strncmp(s, "https://", 8) == 0)
        u->tls = true, p = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        p = s + 7;
    else {
        cit_error_set(CIT_E_USAGE, "the URL %s is not http:// or https://", s);
        return CIT_E_USAGE;
    }
    const char *end = p + strcspn(p, "/?#");
    const char *hs = p, *he, *port = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return cit_error_set(CIT_E_USAGE, "the URL %s has an unclosed [IPv6] host", s);
        hs = p + 1, he = rb, u->ipv6 = true;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return cit_error_set(CIT_E_USAGE, "the URL %s is malformed after the host", s);
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        he = colon ? colon : end;
        if (colon)
            port = colon + 1;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof u->host || memchr(hs, '@', (size_t)(he - hs)))
        return cit_error_set(CIT_E_USAGE, "the URL %s has no usable host", s);
    memcpy(u->host, hs, (size_t)(he - hs));
    if (port) {
        size_t pl = (size_t)(end - port);
        uint32_t pn;
        char tmp[8];
        if (pl == 0 || pl >= sizeof tmp)
            return cit_error_set(CIT_E_USAGE, "the URL %s has a bad port", s);
        memcpy(tmp, port, pl);
        tmp[pl] = 0;
        if (cit_parse_u32(tmp, &pn) < 0 || pn == 0 || pn > 65535)
            return cit_error_set(CIT_E_USAGE, "the URL %s has a bad port", s);
        snprintf(u->port, sizeof u->port, "%u", pn);
    } else
        snprintf(u->port, sizeof u->port, "%s", u->tls ? "443" : "80");
    u->path = *end == '/' ? end : "/";
    if (*end == '?') /* "host?q" */
        u->path = end;
    for (const char *c = u->path; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return cit_error_set(CIT_E_USAGE, "the URL's path has spaces or control characters");
    return 0;
}

/* Connects to the first address that answers before the deadline. */
static int tcp_connect(conn *c, const url *u) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gr = getaddrinfo(u->host, u->port, &hints, &res);
    if (gr != 0) {
        cit_error_set(CIT_E_NET_CONNECT, "cannot resolve %s: %s", u->host, gai_strerror(gr));
        return CIT_E_NET_CONNECT;
    }
    int err = 0;
    bool timed_out = false;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
            err = errno;
            close(fd);
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int pr;
        do
            pr = poll(&p, 1, remaining(c));
        while (pr < 0 && errno == EINTR);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (pr == 0) {
            timed_out = true;
            close(fd);
            break;
        }
        if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            err = soerr ? soerr : errno;
            close(fd);
            continue;
        }
        /* blocking from here, each wait bounded by poll (and a send by SO_SNDTIMEO) */
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        int ms = remaining(c);
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        freeaddrinfo(res);
        return 0;
    }
    freeaddrinfo(res);
    if (timed_out)
        return timeout_error(c, "connect");
    cit_error_set(CIT_E_NET_CONNECT, "cannot connect to %s port %s: %s", u->host, u->port,
                  err == ECONNREFUSED ? "connection refused" : strerror(err));
    if (err == ECONNREFUSED)
        cit_error_cause("nothing listens there: the server is down or the port is wrong");
    cit_error_context("host", "%s", u->host);
    cit_error_context("port", "%s", u->port);
    return CIT_E_NET_CONNECT;
}

/* Waits until fd is readable (or writable) before the deadline. */
static int wait_fd(conn *c, short ev, const char *what) {
    for (;;) {
        int ms = remaining(c);
        if (ms <= 0)
            return timeout_error(c, what);
        struct pollfd p = {.fd = c->fd, .events = ev};
        int pr = poll(&p, 1, ms);
        if (pr > 0)
            return 0;
        if (pr == 0)
            return timeout_error(c, what);
        if (errno != EINTR)
            return cit_error_set(CIT_E_NET_CONNECT, "poll failed: %s", strerror(errno));
    }
}

static int client_cert_cb(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                          const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                          unsigned int *pcert_length, gnutls_privkey_t *privkey) {
    conn *c = gnutls_session_get_ptr(s);
    if (!c || !c->creds) {
        *pcert = NULL;
        *pcert_length = 0;
        *privkey = NULL;
        return 0;
    }
    cit_tls_creds_gnutls(c->creds, pcert, pcert_length, privkey);
    return 0;
}

static int tls_error(conn *c, int gr, const char *what) {
    if (gr == GNUTLS_E_TIMEDOUT || gr == GNUTLS_E_AGAIN)
        return timeout_error(c, what);
    if (gr == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || gr == GNUTLS_E_CERTIFICATE_ERROR) {
        unsigned st = gnutls_session_get_verify_cert_status(c->s);
        gnutls_datum_t txt = {0};
        cit_error_set(CIT_E_NET_TLS, "the server certificate of %s did not verify", c->host);
        if (gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509, &txt, 0) == 0) {
            cit_error_cause("%s", (const char *)txt.data);
            gnutls_free(txt.data);
        }
        cit_error_step("check that the CA file holds the CA that issued the server's certificate, and that the "
                       "certificate names %s",
                       c->host);
        return CIT_E_NET_TLS;
    }
    cit_error_set(CIT_E_NET_TLS, "TLS with %s failed (%s): %s", c->host, what, gnutls_strerror(gr));
    if (gr == GNUTLS_E_PK_SIGN_FAILED)
        cit_error_cause("the client key did not sign the handshake (the TPM refused, or the identity changed)");
    if (gr == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        gnutls_alert_description_t a = gnutls_alert_get(c->s);
        cit_error_cause("the server sent the alert \"%s\"%s", gnutls_alert_get_name(a),
                        a == GNUTLS_A_CERTIFICATE_REQUIRED || a == GNUTLS_A_HANDSHAKE_FAILURE ||
                                a == GNUTLS_A_BAD_CERTIFICATE || a == GNUTLS_A_UNKNOWN_CA
                            ? " (it may require a client certificate it trusts)"
                            : "");
    }
    return CIT_E_NET_TLS;
}

static int tls_start(conn *c, const url *u, const char *ca_file) {
    if (!ca_file) {
        cit_error_set(CIT_E_USAGE, "https needs the server's CA certificate (a CA file)");
        return CIT_E_USAGE;
    }
    int gr = gnutls_certificate_allocate_credentials(&c->cred);
    if (gr < 0)
        return cit_error_set(CIT_E_INTERNAL, "GnuTLS: %s", gnutls_strerror(gr));
    gr = gnutls_certificate_set_x509_trust_file(c->cred, ca_file, GNUTLS_X509_FMT_PEM);
    if (gr <= 0) {
        cit_error_set(CIT_E_INPUT_READ, "the CA file %s holds no PEM certificate", ca_file);
        if (gr < 0)
            cit_error_cause("%s", gnutls_strerror(gr));
        cit_error_context("file", "%s", ca_file);
        return CIT_E_INPUT_READ;
    }
    if (c->creds)
        gnutls_certificate_set_retrieve_function2(c->cred, client_cert_cb);
    if ((gr = gnutls_init(&c->s, GNUTLS_CLIENT)) < 0 || (gr = gnutls_set_default_priority(c->s)) < 0 ||
        (gr = gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, c->cred)) < 0)
        return cit_error_set(CIT_E_INTERNAL, "GnuTLS: %s", gnutls_strerror(gr));
    gnutls_session_set_ptr(c->s, c);
    struct in6_addr tmp;
    bool ip = inet_pton(AF_INET, u->host, &tmp) == 1 || inet_pton(AF_INET6, u->host, &tmp) == 1;
    if (!ip) /* SNI takes DNS names only */
        gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, u->host, strlen(u->host));
    /* the chain against ca_file, and the host (DNS name or IP address SAN) */
    gnutls_session_set_verify_cert(c->s, u->host, 0);
    gnutls_transport_set_int(c->s, c->fd);
    int ms = remaining(c);
    if (ms <= 0)
        return timeout_error(c, "TLS handshake");
    gnutls_handshake_set_timeout(c->s, (unsigned)ms);
    do
        gr = gnutls_handshake(c->s);
    while (gr < 0 && !gnutls_error_is_fatal(gr) && gr != GNUTLS_E_AGAIN && gr != GNUTLS_E_TIMEDOUT && remaining(c) > 0);
    if (gr < 0)
        return tls_error(c, gr, "handshake");
    return 0;
}

static int send_all(conn *c, const char *b, size_t n) {
    while (n) {
        int r = wait_fd(c, POLLOUT, "sending the request");
        if (r < 0)
            return r;
        ssize_t w;
        if (c->s) {
            w = gnutls_record_send(c->s, b, n);
            if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
                continue;
            if (w < 0)
                return tls_error(c, (int)w, "send");
        } else {
            w = send(c->fd, b, n, MSG_NOSIGNAL);
            if (w < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (w < 0)
                return cit_error_set(CIT_E_NET_CONNECT, "sending to %s failed: %s", c->host, strerror(errno));
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads some bytes; 0 at the end of the stream. */
static int recv_some(conn *c, char *b, size_t cap, size_t *got) {
    if (c->mem) {
        size_t n = c->mem_len - c->mem_off;
        if (n > cap)
            n = cap;
        if (n > c->mem_step)
            n = c->mem_step;
        memcpy(b, c->mem + c->mem_off, n);
        c->mem_off += n;
        *got = n;
        return 0;
    }
    for (;;) {
        ssize_t n;
        if (c->s) {
            /* GnuTLS may hold buffered bytes the socket no longer shows: it waits on its own */
            int ms = remaining(c);
            if (ms <= 0)
                return timeout_error(c, "reading the response");
            gnutls_record_set_timeout(c->s, (unsigned)ms);
            n = gnutls_record_recv(c->s, b, cap);
            /* AGAIN also follows a post-handshake message (a TLS 1.3 session ticket): read on */
            if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN)
                continue;
            if (n == GNUTLS_E_TIMEDOUT)
                return timeout_error(c, "reading the response");
            if (n == GNUTLS_E_PREMATURE_TERMINATION) /* a close without close_notify ends the body too */
                n = 0;
            if (n < 0)
                return tls_error(c, (int)n, "receive");
        } else {
            int r = wait_fd(c, POLLIN, "reading the response");
            if (r < 0)
                return r;
            n = recv(c->fd, b, cap, 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n < 0)
                return cit_error_set(CIT_E_NET_CONNECT, "reading from %s failed: %s", c->host, strerror(errno));
        }
        *got = (size_t)n;
        return 0;
    }
}

/* The raw response: grows to header cap + body cap (+ chunk framing slack). */
typedef struct rbuf {
    char *b;
    size_t len, cap;
    bool eof;
} rbuf;

#define RAW_MAX (CIT_HTTP_HEADER_MAX + CIT_HTTP_RESPONSE_MAX + 64 * 1024)

static int too_large(conn *c) {
    cit_error_set(CIT_E_NET_RESPONSE, "the response from %s is larger than %u bytes", c->host,
                  (unsigned)CIT_HTTP_RESPONSE_MAX);
    return CIT_E_NET_RESPONSE;
}

/* Reads more into rb (at least one byte, or eof). */
static int fill(conn *c, rbuf *rb) {
    if (rb->eof)
        return 0;
    if (rb->len + 1 >= rb->cap) {
        if (rb->cap >= RAW_MAX)
            return too_large(c);
        size_t nc = rb->cap ? rb->cap * 2 : 16384;
        if (nc > RAW_MAX)
            nc = RAW_MAX;
        char *nb = realloc(rb->b, nc);
        if (!nb)
            return cit_error_set(CIT_E_INTERNAL, "out of memory");
        rb->b = nb, rb->cap = nc;
    }
    size_t got = 0;
    int r = recv_some(c, rb->b + rb->len, rb->cap - rb->len - 1, &got);
    if (r < 0)
        return r;
    if (got == 0)
        rb->eof = true;
    rb->len += got;
    rb->b[rb->len] = 0;
    return 0;
}

static int malformed(conn *c, const char *why) {
    cit_error_set(CIT_E_NET_RESPONSE, "the response from %s is not HTTP/1.x: %s", c->host, why);
    return CIT_E_NET_RESPONSE;
}

/* Case-insensitive header lookup in the header block [h, end): the value (trimmed) in v. */
static bool header(const char *h, const char *end, const char *name, char *v, size_t vl) {
    size_t nl = strlen(name);
    for (const char *l = h; l < end;) {
        const char *e = memchr(l, '\n', (size_t)(end - l));
        if (!e)
            e = end;
        if ((size_t)(e - l) > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *s = l + nl + 1;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            const char *t = e;
            while (t > s && (t[-1] == '\r' || t[-1] == ' ' || t[-1] == '\t'))
                t--;
            snprintf(v, vl, "%.*s", (int)(t - s), s);
            return true;
        }
        l = e + 1;
    }
    return false;
}

static int read_response(conn *c, cit_http_resp *resp, bool head) {
    rbuf rb = {0};
    char *hend = NULL;
    int r = 0;
    unsigned major = 0, minor = 0, status = 0;
    for (;;) {
        /* the status line and headers */
        while (!(hend = rb.b ? strstr(rb.b, "\r\n\r\n") : NULL)) {
            if (rb.len > CIT_HTTP_HEADER_MAX) {
                r = malformed(c, "its headers are longer than the cap");
                goto done;
            }
            if (rb.eof) {
                r = malformed(c, rb.len ? "the connection closed inside the headers"
                                        : "the server closed the connection without answering");
                goto done;
            }
            if ((r = fill(c, &rb)) < 0)
                goto done;
        }
        if (sscanf(rb.b, "HTTP/%u.%u %3u", &major, &minor, &status) != 3 || major != 1 || status < 100 ||
            status > 999) {
            r = malformed(c, "bad status line");
            goto done;
        }
        if (status >= 200 || status == 101)
            break;
        /* an interim response (100 Continue, 103 Early Hints): the final one follows */
        size_t used = (size_t)(hend - rb.b) + 4;
        memmove(rb.b, rb.b + used, rb.len - used);
        rb.len -= used;
        rb.b[rb.len] = 0;
    }
    char *hs = strstr(rb.b, "\r\n") + 2;
    size_t body_off = (size_t)(hend - rb.b) + 4;
    if (head || status == 204 || status == 304 || status == 101) { /* no body, whatever the headers say */
        char *out = strdup("");
        if (!out) {
            r = cit_error_set(CIT_E_INTERNAL, "out of memory");
            goto done;
        }
        resp->status = (int)status;
        resp->body = out;
        resp->len = 0;
        goto done;
    }
    char v[64];
    bool chunked = header(hs, hend + 2, "Transfer-Encoding", v, sizeof v) && strcasestr(v, "chunked");
    long long clen = -1;
    if (!chunked && header(hs, hend + 2, "Content-Length", v, sizeof v)) {
        uint64_t n;
        if (cit_parse_u64(v, &n) < 0) {
            r = malformed(c, "bad Content-Length");
            goto done;
        }
        if (n > CIT_HTTP_RESPONSE_MAX) {
            r = too_large(c);
            goto done;
        }
        clen = (long long)n;
    }
    char *body = NULL;
    size_t blen = 0;
    if (chunked) {
        /* decode in place as chunks arrive: [body_off, w) is decoded, [p, len) raw */
        size_t w = body_off, p = body_off;
        for (;;) {
            char *eol;
            while (!(eol = memmem(rb.b + p, rb.len - p, "\r\n", 2))) {
                if (rb.eof || rb.len - p > 1024) {
                    r = malformed(c, "a truncated or bad chunk size line");
                    goto done;
                }
                if ((r = fill(c, &rb)) < 0)
                    goto done;
            }
            char *endp = NULL;
            errno = 0;
            unsigned long long sz = strtoull(rb.b + p, &endp, 16);
            if (endp == rb.b + p || errno || (*endp != '\r' && *endp != ';' && *endp != ' ')) {
                r = malformed(c, "a bad chunk size");
                goto done;
            }
            if (sz > CIT_HTTP_RESPONSE_MAX || (w - body_off) + sz > CIT_HTTP_RESPONSE_MAX) {
                r = too_large(c);
                goto done;
            }
            p = (size_t)(eol - rb.b) + 2;
            if (sz == 0)
                break; /* trailers are not read: the connection closes */
            while (rb.len - p < sz + 2) {
                if (rb.eof) {
                    r = malformed(c, "the connection closed inside a chunk");
                    goto done;
                }
                if ((r = fill(c, &rb)) < 0)
                    goto done;
            }
            if (memcmp(rb.b + p + sz, "\r\n", 2) != 0) {
                r = malformed(c, "a chunk is not followed by CRLF");
                goto done;
            }
            memmove(rb.b + w, rb.b + p, sz);
            w += sz;
            p += sz + 2;
            /* compact: keep the raw buffer small */
            memmove(rb.b + w, rb.b + p, rb.len - p);
            rb.len -= p - w;
            p = w;
            rb.b[rb.len] = 0;
        }
        body = rb.b + body_off;
        blen = w - body_off;
    } else if (clen >= 0) {
        while (rb.len - body_off < (size_t)clen) {
            if (rb.eof) {
                r = malformed(c, "the connection closed before Content-Length bytes");
                goto done;
            }
            if ((r = fill(c, &rb)) < 0)
                goto done;
        }
        body = rb.b + body_off;
        blen = (size_t)clen;
    } else {
        /* delimited by the close */
        while (!rb.eof) {
            if (rb.len - body_off > CIT_HTTP_RESPONSE_MAX) {
                r = too_large(c);
                goto done;
            }
            if ((r = fill(c, &rb)) < 0)
                goto done;
        }
        if (rb.len - body_off > CIT_HTTP_RESPONSE_MAX) {
            r = too_large(c);
            goto done;
        }
        body = rb.b + body_off;
        blen = rb.len - body_off;
    }
    char *out = malloc(blen + 1);
    if (!out) {
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        goto done;
    }
    memcpy(out, body, blen);
    out[blen] = 0;
    resp->status = (int)status;
    resp->body = out;
    resp->len = blen;
done:
    free(rb.b);
    return r;
}

int cit__http_parse_response(cit_http_resp *resp, const uint8_t *raw, size_t len, size_t step, bool head) {
    cit_error_clear();
    conn c = {.fd = -1, .host = "memory", .mem = raw, .mem_len = len, .mem_step = step ? step : 1};
    c.deadline = now_ms() + 60000;
    cit_http_resp tmp = {0};
    int r = read_response(&c, &tmp, head);
    if (r == 0)
        *resp = tmp;
    return r;
}

static bool token(const char *s) {
    if (!s || !*s || strlen(s) > 32)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '-' || *s == '_'))
            return false;
    return true;
}

static bool header_line_ok(const char *h) {
    const char *colon = strchr(h, ':');
    if (!colon || colon == h || strlen(h) > 8192)
        return false;
    for (const char *p = h; *p; p++)
        if (*p == '\r' || *p == '\n' || (p < colon && (*p == ' ' || *p == '\t')))
            return false;
    return true;
}

int cit_http_request(cit_http_resp *resp, const char *method, const char *url_s, const char *ca_file,
                     cit_tls_creds *creds, const char *content_type, const char *body, size_t body_len,
                     const char *const *headers, unsigned timeout_sec) {
    cit_error_clear();
    url u;
    int r;
    if (!token(method)) {
        cit_error_set(CIT_E_USAGE, "bad HTTP method %s", method ? method : "(none)");
        return CIT_E_USAGE;
    }
    if (!url_s)
        return cit_error_set(CIT_E_USAGE, "no URL");
    if ((r = parse_url(url_s, &u)) < 0)
        return r;
    if (content_type && (strchr(content_type, '\r') || strchr(content_type, '\n')))
        return cit_error_set(CIT_E_USAGE, "bad Content-Type");
    for (size_t i = 0; headers && headers[i]; i++)
        if (!header_line_ok(headers[i])) {
            cit_error_set(CIT_E_USAGE, "bad HTTP header line (want \"Name: value\", no CR/LF)");
            return CIT_E_USAGE;
        }
    if (body_len && !body)
        return cit_error_set(CIT_E_USAGE, "a body length without a body");
    if (creds && !u.tls)
        return cit_error_set(CIT_E_USAGE, "a client certificate needs an https:// URL");
    conn c = {.fd = -1, .creds = creds, .host = u.host};
    c.deadline = now_ms() + (uint64_t)(timeout_sec ? timeout_sec : DEFAULT_TIMEOUT) * 1000;
    /* the request head */
    size_t hl = 512 + strlen(u.path) + strlen(u.host) + (content_type ? strlen(content_type) : 0);
    for (size_t i = 0; headers && headers[i]; i++)
        hl += strlen(headers[i]) + 2;
    char *head = malloc(hl);
    if (!head)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    bool def_port = strcmp(u.port, u.tls ? "443" : "80") == 0;
    size_t off = (size_t)snprintf(head, hl, "%s %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: citadel/%s\r\n"
                                            "Accept: */*\r\nConnection: close\r\n",
                                  method, u.path, u.ipv6 ? "[" : "", u.host, u.ipv6 ? "]" : "", def_port ? "" : ":",
                                  def_port ? "" : u.port, CIT_VERSION);
    if (content_type)
        off += (size_t)snprintf(head + off, hl - off, "Content-Type: %s\r\n", content_type);
    if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
        off += (size_t)snprintf(head + off, hl - off, "Content-Length: %zu\r\n", body_len);
    for (size_t i = 0; headers && headers[i]; i++)
        off += (size_t)snprintf(head + off, hl - off, "%s\r\n", headers[i]);
    off += (size_t)snprintf(head + off, hl - off, "\r\n");

    cit_http_resp tmp = {0};
    r = tcp_connect(&c, &u);
    if (r == 0 && u.tls)
        r = tls_start(&c, &u, ca_file);
    if (r == 0)
        r = send_all(&c, head, off);
    if (r == 0 && body_len)
        r = send_all(&c, body, body_len);
    if (r == 0)
        r = read_response(&c, &tmp, strcmp(method, "HEAD") == 0);
    if (r < 0) {
        cit_error_context("url", "%s", url_s);
    } else
        *resp = tmp;
    free(head);
    if (c.s) {
        gnutls_deinit(c.s);
    }
    if (c.cred)
        gnutls_certificate_free_credentials(c.cred);
    if (c.fd >= 0)
        close(c.fd);
    return r;
}

void cit_http_resp_free(cit_http_resp *r) {
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

int cit_http_body_append(char **body, size_t *len, size_t *cap, bool *too_large, const char *data, size_t n,
                         size_t max) {
    if (*too_large || n > max || *len > max - n) {
        *too_large = true;
        return 0;
    }
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n + 1)
            c *= 2;
        char *nb = malloc(c);
        if (!nb)
            return -1;
        if (*body) {
            memcpy(nb, *body, *len);
            cit_memzero(*body, *cap);
            free(*body);
        }
        *body = nb;
        *cap = c;
    }
    memcpy(*body + *len, data, n);
    *len += n;
    (*body)[*len] = 0;
    return 0;
}

int cit_net_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen, char *host, size_t hl,
                         uint16_t *port, bool *loopback) {
    memset(ss, 0, sizeof *ss);
    const char *colon = strrchr(s, ':');
    if (!colon)
        return cit_error_set(CIT_E_USAGE, "--listen takes ADDR:PORT, not '%s'", s);
    uint64_t p = 0;
    if (cit_parse_u64(colon + 1, &p) < 0 || p > 65535)
        return cit_error_set(CIT_E_USAGE, "the port takes a number from 0 to 65535, not '%s'", colon + 1);
    *port = (uint16_t)p;
    size_t n = (size_t)(colon - s);
    char h[64];
    if (s[0] == '[') {
        if (n < 2 || s[n - 1] != ']' || n - 2 >= sizeof h)
            return cit_error_set(CIT_E_USAGE, "--listen: bad IPv6 address in '%s'", s);
        memcpy(h, s + 1, n - 2);
        h[n - 2] = 0;
    } else {
        if (n >= sizeof h)
            return cit_error_set(CIT_E_USAGE, "--listen: address too long");
        memcpy(h, s, n);
        h[n] = 0;
    }
    if (strcmp(h, "localhost") == 0)
        snprintf(h, sizeof h, "127.0.0.1");
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(*port);
        *sslen = sizeof *v4;
        *loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, h, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(*port);
        *sslen = sizeof *v6;
        *loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    } else
        return cit_error_set(CIT_E_USAGE, "--listen: '%s' is not an IP address", h);
    snprintf(host, hl, "%s", h);
    return 0;
}
