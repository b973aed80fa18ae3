/* SPDX-License-Identifier: Apache-2.0 */
/* API keys: a keys file of "ID ROLE KEY" lines (mode 0600 or stricter) and/or TPMD_API_KEY. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/util.h"
#include "tpmd.h"

#define KEYS_FILE_MAX (1024 * 1024)
#define KEY_MIN 16

const char *tpmd_role_name(int role) {
    return role == ROLE_ADMIN ? "admin" : role == ROLE_SIGN ? "sign" : role == ROLE_READ ? "read" : "none";
}

static int role_parse(const char *s) {
    if (strcmp(s, "read") == 0)
        return ROLE_READ;
    if (strcmp(s, "sign") == 0)
        return ROLE_SIGN;
    if (strcmp(s, "admin") == 0)
        return ROLE_ADMIN;
    return ROLE_NONE;
}

void tpmd_keyset_free(tpmd_keyset *k) {
    if (!k)
        return;
    if (k->v)
        cit_memzero(k->v, k->n * sizeof *k->v);
    free(k->v);
    free(k);
}

static int add_key(tpmd_keyset *k, const char *id, int role, const char *key) {
    tpmd_key *nv = realloc(k->v, (k->n + 1) * sizeof *nv);
    if (!nv)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    k->v = nv;
    tpmd_key *e = &k->v[k->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->role = role;
    SHA256((const unsigned char *)key, strlen(key), e->hash);
    return 0;
}

static bool valid_id(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 48)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '_' || *s == '.'))
            return false;
    return true;
}

int tpmd_keys_load(tpmd_keyset **out, const char *file, const char *env_key) {
    tpmd_keyset *k = calloc(1, sizeof *k);
    if (!k)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    int r = 0;
    if (env_key && *env_key) {
        if (strlen(env_key) < KEY_MIN)
            r = cit_error_set(CIT_E_USAGE, "TPMD_API_KEY is shorter than %d characters", KEY_MIN);
        else
            r = add_key(k, "env", ROLE_ADMIN, env_key);
    }
    if (r == 0 && file) {
        int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st = {0};
        if (fd < 0 || fstat(fd, &st) < 0) {
            r = cit_error_set(CIT_E_INPUT_READ, "cannot read the keys file %s: %s", file, strerror(errno));
            cit_error_context("file", "%s", file);
        } else if (st.st_mode & 077) {
            r = cit_error_set(CIT_E_INSECURE_PERMISSIONS, "the keys file %s can be read by others (mode %04o)", file,
                              (unsigned)(st.st_mode & 07777));
            cit_error_context("file", "%s", file);
            cit_error_step("run `chmod 600 %s`", file);
        } else if (st.st_uid != geteuid()) {
            r = cit_error_set(CIT_E_INSECURE_PERMISSIONS, "the keys file %s belongs to uid %u, not to tpmd's (%u)",
                              file, (unsigned)st.st_uid, (unsigned)geteuid());
            cit_error_context("file", "%s", file);
            cit_error_step("run `chown %u %s`", (unsigned)geteuid(), file);
        }
        /* read the file that was checked (the same descriptor), not whatever the path names now */
        uint8_t *buf = NULL;
        size_t len = 0;
        if (r == 0 && (!S_ISREG(st.st_mode) || st.st_size < 0 || (size_t)st.st_size > KEYS_FILE_MAX ||
                       !(buf = malloc((size_t)st.st_size + 1))))
            r = cit_error_set(CIT_E_INPUT_READ, "the keys file %s is not a regular file of at most %d bytes", file,
                              KEYS_FILE_MAX);
        while (r == 0 && len < (size_t)st.st_size) {
            ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                r = cit_error_set(CIT_E_INPUT_READ, "cannot read the keys file %s", file);
                break;
            }
            len += (size_t)n;
        }
        if (buf)
            buf[len] = 0;
        if (fd >= 0)
            close(fd);
        char *save = NULL;
        unsigned lineno = 0;
        for (char *line = buf ? strtok_r((char *)buf, "\n", &save) : NULL; r == 0 && line;
             line = strtok_r(NULL, "\n", &save)) {
            lineno++;
            while (*line == ' ' || *line == '\t')
                line++;
            if (*line == '#' || *line == 0 || *line == '\r')
                continue;
            char id[64], role[16], key[512];
            if (sscanf(line, "%63s %15s %511s", id, role, key) != 3 || !valid_id(id) || !role_parse(role) ||
                strlen(key) < KEY_MIN) {
                r = cit_error_set(CIT_E_INPUT_INVALID, "the keys file %s: line %u is not \"ID ROLE KEY\"", file,
                                  lineno);
                cit_error_cause("ID: letters, digits, '-', '_', '.'; ROLE: read, sign or admin; KEY: at least %d "
                                "characters",
                                KEY_MIN);
            } else {
                for (size_t i = 0; i < k->n && r == 0; i++)
                    if (strcmp(k->v[i].id, id) == 0)
                        r = cit_error_set(CIT_E_INPUT_INVALID, "the keys file %s names key id %s twice", file, id);
                if (r == 0)
                    r = add_key(k, id, role_parse(role), key);
            }
            cit_memzero(key, sizeof key);
        }
        if (buf) {
            cit_memzero(buf, len);
            free(buf);
        }
    }
    if (r < 0) {
        tpmd_keyset_free(k);
        return r;
    }
    *out = k;
    return 0;
}

int tpmd_keys_check(const tpmd_keyset *k, const char *presented, char id[64]) {
    uint8_t h[32];
    SHA256((const unsigned char *)presented, strlen(presented), h);
    int role = ROLE_NONE;
    /* every entry is compared, so the time does not tell which (or whether one) matched */
    for (size_t i = 0; i < k->n; i++) {
        int eq = CRYPTO_memcmp(h, k->v[i].hash, 32) == 0;
        int mask = -eq;
        role = (role & ~mask) | (k->v[i].role & mask);
        if (eq)
            snprintf(id, 64, "%s", k->v[i].id);
    }
    return role;
}
