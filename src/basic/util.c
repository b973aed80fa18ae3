/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE /* renameat2 */
#include "util.h"
#include "macro.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *cit_hex_encode(const uint8_t *buf, size_t len) {
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(len * 2 + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[buf[i] >> 4];
        s[2 * i + 1] = digits[buf[i] & 0xf];
    }
    s[len * 2] = 0;
    return s;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cit_hex_decode(uint8_t **out, size_t *out_len, const char *hex) {
    size_t n = strlen(hex);
    if (n >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
        hex += 2;
        n -= 2;
    }
    if (n % 2)
        return -EINVAL;
    uint8_t *b = malloc(n / 2 + 1);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return -EINVAL;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *out_len = n / 2;
    return 0;
}

int cit_parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        v = strtoull(s + 2, &end, 16);
    else
        v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end || end == s)
        return -EINVAL;
    *out = v;
    return 0;
}

int cit_parse_u32(const char *s, uint32_t *out) {
    uint64_t v;
    int r = cit_parse_u64(s, &v);
    if (r < 0)
        return r;
    if (v > UINT32_MAX)
        return -ERANGE;
    *out = (uint32_t)v;
    return 0;
}

const char *cit_path_invalid_reason(const char *path) {
    if (!path || !*path)
        return "the path is empty";
    size_t n = strlen(path);
    if (n > CIT_PATH_MAX)
        return "the path is longer than 255 bytes";
    if (path[0] == '/')
        return "the path must not start with '/'";
    if (path[n - 1] == '/')
        return "the path must not end with '/'";
    const char *comp = path;
    for (const char *p = path;; p++) {
        if (*p == '/' || *p == 0) {
            size_t cl = (size_t)(p - comp);
            if (cl == 0)
                return "the path has an empty component ('//')";
            if ((cl == 1 && comp[0] == '.') || (cl == 2 && comp[0] == '.' && comp[1] == '.'))
                return "the path must not contain '.' or '..' components";
            if (*p == 0)
                break;
            comp = p + 1;
            continue;
        }
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return "only lowercase letters, digits, '.', '_', '-' and '/' are allowed";
    }
    return NULL;
}

int cit_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len) {
    int fd;
    bool is_stdin = strcmp(path, "-") == 0;
    if (is_stdin)
        fd = STDIN_FILENO;
    else {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
            return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
        if (S_ISDIR(st.st_mode)) {
            close(fd);
            return -EISDIR;
        }
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
            close(fd);
            return -EFBIG;
        }
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap + 1);
    int r = 0;
    if (!buf) {
        r = -ENOMEM;
        goto done;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                r = -EFBIG;
                goto done;
            }
            /* not realloc: the old buffer may hold a secret and must be wiped, not left behind */
            size_t ncap = cap * 2;
            uint8_t *nb = malloc(ncap + 1);
            if (!nb) {
                r = -ENOMEM;
                goto done;
            }
            memcpy(nb, buf, len);
            cit_memzero(buf, cap + 1);
            free(buf);
            buf = nb;
            cap = ncap;
        }
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            goto done;
        }
        if (k == 0)
            break;
        len += (size_t)k;
        if (len > max) {
            r = -EFBIG;
            goto done;
        }
    }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    buf = NULL;
done:
    if (buf) {
        cit_memzero(buf, cap);
        free(buf);
    }
    if (!is_stdin)
        close(fd);
    return r;
}

static int write_all(int fd, const uint8_t *buf, size_t len) {
    while (len) {
        ssize_t k = write(fd, buf, len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += k;
        len -= (size_t)k;
    }
    return 0;
}

int cit_write_file_atomic(const char *path, const uint8_t *buf, size_t len, unsigned mode, unsigned flags) {
    if (strcmp(path, "-") == 0) {
        int r = write_all(STDOUT_FILENO, buf, len);
        return r;
    }
    size_t n = strlen(path) + 32;
    _cleanup_free_ char *tmp = malloc(n);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -errno;
    int r = fchmod(fd, mode) < 0 ? -errno : 0;
    if (r == 0)
        r = write_all(fd, buf, len);
    if (r == 0 && (flags & CIT_WRITE_DURABLE) && fdatasync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

/* The swap file, opened for a rewrite in place: a regular file of ours with one link. Anything else
 * at its name (a symlink, which the exchange moves there when the file itself was a symlink; a
 * FIFO; a hard link to another file; a file of another user) is removed and a new file made:
 * otherwise every later save would fail, or write through to something else. */
static int swap_open(const char *swap, unsigned mode) {
    int fd = open(swap, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, mode);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_uid == geteuid())
        return fd;
    if (fd >= 0)
        close(fd);
    else if (errno != ELOOP && errno != ENXIO && errno != EISDIR && errno != EACCES && errno != EPERM)
        return -errno;
    if (unlink(swap) < 0 && errno != ENOENT)
        return -errno;
    fd = open(swap, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    return fd < 0 ? -errno : fd;
}

int cit_write_file_swap(const char *path, const uint8_t *buf, size_t len, unsigned mode, unsigned flags) {
    size_t pl = strlen(path) + sizeof ".swap";
    _cleanup_free_ char *swap = malloc(pl);
    if (!swap)
        return -ENOMEM;
    snprintf(swap, pl, "%s.swap", path);
    int fd = swap_open(swap, mode);
    if (fd < 0)
        return fd;
    int r = fchmod(fd, mode) < 0 ? -errno : 0;
    if (r == 0) {
        ssize_t w = pwrite(fd, buf, len, 0);
        r = w == (ssize_t)len ? 0 : w < 0 ? -errno : -EIO;
    }
    if (r == 0 && ftruncate(fd, (off_t)len) < 0)
        r = -errno;
    if (r == 0 && (flags & CIT_WRITE_DURABLE) && fdatasync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0) {
        bool exchange = access(path, F_OK) == 0;
        if (exchange && renameat2(AT_FDCWD, swap, AT_FDCWD, path, RENAME_EXCHANGE) < 0) {
            r = -errno;
            exchange = !(r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP || r == -ENOENT);
            if (!exchange)
                r = 0;
        }
        if (r == 0 && !exchange && rename(swap, path) < 0)
            r = -errno;
    }
    if (r == 0 && (flags & CIT_WRITE_SYNC_NAME)) { /* on failure the file is whole, its durability unknown */
        _cleanup_free_ char *d = strdup(path);
        if (!d)
            return -ENOMEM;
        int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return -errno;
        r = fsync(dfd) < 0 ? -errno : 0;
        close(dfd);
        return r;
    }
    if (r < 0)
        unlink(swap);
    return r;
}

uint64_t cit_now_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void cit_time_rfc3339(char *buf, size_t len, int64_t t) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void cit_memzero(void *p, size_t len) {
    if (!p)
        return;
    volatile uint8_t *v = p;
    while (len--)
        *v++ = 0;
}

size_t cit_utf8_len(const unsigned char *p, size_t avail) {
    unsigned c = p[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else
        return 0;
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}
