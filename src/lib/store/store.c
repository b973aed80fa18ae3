/* SPDX-License-Identifier: Apache-2.0 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/error.h"
#include "schema.h"

int cit__store_latest_schema(void) { return cit__store_n_migrations; }

int cit__store_error(cit_store *s, const char *what) {
    int ext = s && s->db ? sqlite3_extended_errcode(s->db) : 0;
    cit_error_set(CIT_E_STORE_IO, "%s", what);
    if (s && s->db) {
        cit_error_cause("%s", sqlite3_errmsg(s->db));
        cit_error_context("sqlite_code", "%d", ext);
    }
    if (s && s->path)
        cit_error_context("store", "%s", s->path);
    if ((ext & 0xff) == SQLITE_BUSY || (ext & 0xff) == SQLITE_LOCKED)
        cit_error_step("another process is writing the store; retry");
    return CIT_E_STORE_IO;
}

int cit__store_prepare(cit_store *s, sqlite3_stmt **out, const char *sql) {
    if (sqlite3_prepare_v2(s->db, sql, -1, out, NULL) != SQLITE_OK)
        return cit__store_error(s, "cannot prepare a store query");
    return 0;
}

int cit__store_exec(cit_store *s, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sqlite3_free(msg);
        return cit__store_error(s, "store statement failed");
    }
    return 0;
}

int cit__store_begin(cit_store *s) { return cit__store_exec(s, "BEGIN IMMEDIATE"); }
int cit__store_commit(cit_store *s) {
    int r = cit__store_exec(s, "COMMIT");
    if (r == 0)
        s->wrote = true;
    return r;
}
void cit__store_rollback(cit_store *s) {
    if (s && s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int mkdir_parents(const char *path) {
    _cleanup_free_ char *dup = strdup(path);
    if (!dup)
        return -ENOMEM;
    char *dir = dirname(dup);
    struct stat st;
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    int r = mkdir_parents(dir);
    if (r < 0)
        return r;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int not_citadel(const char *path, const char *why) {
    cit_error_set(CIT_E_STORE_NOT_CITADEL, "not a Citadel store: %s", path);
    cit_error_cause("%s", why);
    cit_error_context("store", "%s", path);
    return CIT_E_STORE_NOT_CITADEL;
}

/* Looks at the file before SQLite does, so a foreign file is never modified. */
static int check_header(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return -ENOENT;
        cit_error_set(CIT_E_STORE_OPEN, "cannot open the store %s: %s", path, strerror(errno));
        cit_error_context("store", "%s", path);
        return CIT_E_STORE_OPEN;
    }
    char hdr[16];
    ssize_t n = read(fd, hdr, sizeof hdr);
    close(fd);
    if (n == 0)
        return not_citadel(path, "the file is empty");
    if (n != (ssize_t)sizeof hdr || memcmp(hdr, "SQLite format 3", 16) != 0)
        return not_citadel(path, "the file is not an SQLite database");
    return 0;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* SQLite cannot read a file whose header is SQLite's: when the header names a Citadel store
 * (application_id) it is a damaged store, not a foreign file; say so, and whether the file is
 * shorter than the header records (cut short: a copy interrupted, a full disk). */
static int damaged(const char *path, const char *sqlite_msg) {
    uint8_t h[100];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool ours = fd >= 0 && read(fd, h, sizeof h) == (ssize_t)sizeof h && fstat(fd, &st) == 0 &&
                be32(h + 68) == CIT_STORE_APPLICATION_ID;
    if (fd >= 0)
        close(fd);
    if (!ours)
        return not_citadel(path, "SQLite cannot read the file (damaged or not a database)");
    uint32_t page = (uint32_t)h[16] << 8 | h[17], pages = be32(h + 28);
    uint64_t want = (uint64_t)(page == 1 ? 65536 : page) * pages;
    cit_error_set(CIT_E_STORE_IO, "the store %s is damaged", path);
    if ((uint64_t)st.st_size < want)
        cit_error_cause("the file is %lld bytes but its header records %" PRIu64 ": it was truncated",
                        (long long)st.st_size, want);
    cit_error_cause("SQLite: %s", sqlite_msg);
    cit_error_context("store", "%s", path);
    cit_error_step("the file was left untouched; restore the store from a backup");
    return CIT_E_STORE_IO;
}

static int pragma_int(cit_store *s, const char *sql, int *out) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, sql);
    if (r < 0)
        return r;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        r = cit__store_error(s, "cannot read the store header");
    sqlite3_finalize(st);
    return r;
}

static int migrate(cit_store *s, int from) {
    int r = cit__store_begin(s);
    if (r < 0)
        return r;
    for (int v = from; v < cit__store_n_migrations; v++) {
        r = cit__store_exec(s, cit__store_migrations[v]);
        if (r < 0) {
            cit_error_context("migration", "%d", v + 1);
            goto fail;
        }
    }
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d;",
             cit__store_n_migrations, CIT_STORE_APPLICATION_ID);
    r = cit__store_exec(s, sql);
    if (r < 0)
        goto fail;
    r = cit__store_commit(s);
    if (r < 0)
        goto fail;
    s->schema_version = cit__store_n_migrations;
    return 0;
fail:
    cit__store_rollback(s);
    return r;
}

int cit__store_open(cit_store **out, const char *path, bool create) {
    bool memory = strcmp(path, ":memory:") == 0;
    int r = memory ? 0 : check_header(path);
    bool fresh = memory;
    if (r == -ENOENT) {
        if (!create) {
            cit_error_set(CIT_E_NOT_INITIALIZED, "no workspace at %s", path);
            cit_error_cause("the store file does not exist");
            cit_error_context("store", "%s", path);
            return CIT_E_NOT_INITIALIZED;
        }
        r = mkdir_parents(path);
        if (r < 0) {
            cit_error_set(CIT_E_STORE_OPEN, "cannot create the store directory for %s: %s", path,
                          strerror(-r));
            cit_error_context("store", "%s", path);
            return CIT_E_STORE_OPEN;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            cit_error_set(CIT_E_STORE_OPEN, "cannot create the store %s: %s", path, strerror(errno));
            cit_error_context("store", "%s", path);
            return CIT_E_STORE_OPEN;
        }
        close(fd);
        fresh = true;
    } else if (r < 0)
        return r;

    cit_store *s = calloc(1, sizeof(*s));
    if (!s)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    s->path = strdup(path);
    int flags = SQLITE_OPEN_READWRITE | (memory ? SQLITE_OPEN_MEMORY | SQLITE_OPEN_CREATE : SQLITE_OPEN_NOFOLLOW);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        r = cit_error_set(CIT_E_STORE_OPEN, "cannot open the store %s", path);
        if (s->db) {
            cit_error_cause("%s", sqlite3_errmsg(s->db));
            cit_error_context("sqlite_code", "%d", sqlite3_extended_errcode(s->db));
        }
        cit_error_context("store", "%s", path);
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 15000);
    int appid = 0, ver = 0;
    if (!fresh) {
        if (pragma_int(s, "PRAGMA application_id", &appid) < 0) {
            /* SQLITE_NOTADB and friends: a damaged or foreign file */
            r = damaged(path, sqlite3_errmsg(s->db));
            goto fail;
        }
        r = pragma_int(s, "PRAGMA user_version", &ver);
        if (r < 0)
            goto fail;
        if (appid != CIT_STORE_APPLICATION_ID) {
            r = not_citadel(path, "the SQLite database belongs to another application");
            goto fail;
        }
        if (ver > cit__store_n_migrations) {
            r = cit_error_set(CIT_E_STORE_SCHEMA_NEWER,
                              "the store has schema version %d; this citadel knows up to %d", ver,
                              cit__store_n_migrations);
            cit_error_context("store", "%s", path);
            goto fail;
        }
    }
    /* WAL is a property of the database file: set once, when the store is made. Keeping the
     * -wal file between processes saves creating and removing it on every command. */
    /* synchronous=FULL: a key the user was told exists survives a power cut (it costs a sync
     * per write transaction only). */
    r = cit__store_exec(s, memory ? "PRAGMA foreign_keys=ON;"
                        : fresh ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                : "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    if (r < 0)
        goto fail;
    if (!memory) {
        int persist = 1;
        sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
        /* Checkpoints happen as writes fill the WAL (wal_autocheckpoint), not at every close:
         * otherwise each read-only command would pay three syncs on exit. */
        sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    }
    s->schema_version = ver;
    if (ver < cit__store_n_migrations) {
        r = migrate(s, ver);
        if (r < 0)
            goto fail;
    }
    *out = s;
    return 0;
fail:
    cit__store_close(s);
    if (fresh && !memory)
        unlink(path);
    return r;
}

void cit__store_close(cit_store *s) {
    if (!s)
        return;
    /* The writer folds its changes into the database file and truncates the WAL, so the many
     * read-only commands that follow find an empty WAL (they never checkpoint themselves). A
     * WAL left full of checkpointed frames would be re-read in full by each process that opens
     * the store first (wal-index recovery): 0.8 MB and ~10 ms per command after a few hundred
     * writes. When a reader is active the checkpoint does what it can without waiting and the
     * truncation is left to a later writer. */
    if (s->db && s->wrote) {
        sqlite3_busy_timeout(s->db, 0); /* a reader now: checkpoint what can be, never wait */
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    if (s->db)
        sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

int cit__store_meta_get(cit_store *s, const char *key, char **out) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, "SELECT value FROM meta WHERE key = ?");
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *out = NULL;
    if (rc == SQLITE_ROW) {
        *out = strdup((const char *)sqlite3_column_text(st, 0));
        if (!*out)
            r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    } else if (rc != SQLITE_DONE)
        r = cit__store_error(s, "cannot read workspace metadata");
    sqlite3_finalize(st);
    return r;
}

int cit__store_meta_set(cit_store *s, const char *key, const char *value) {
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, "INSERT INTO meta(key, value) VALUES(?, ?) "
                                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = cit__store_error(s, "cannot write workspace metadata");
    sqlite3_finalize(st);
    return r;
}

const char *cit__store_actor(cit_store *s) {
    if (!s->actor[0]) { /* resolved only when needed */
        /* CITADEL_ACTOR names the operator when one OS account serves several (recorded as
         * given; it is a label for the log, not an authentication) */
        const char *env = getenv("CITADEL_ACTOR");
        struct passwd *pw = env && *env ? NULL : getpwuid(getuid());
        snprintf(s->actor, sizeof s->actor, "%s", env && *env ? env : pw && pw->pw_name ? pw->pw_name : "unknown");
    }
    return s->actor;
}

int cit__store_event(cit_store *s, const char *action, const char *path, int64_t object_id,
                     const char *outcome, json_t *details) {
    cit__store_actor(s);
    sqlite3_stmt *st;
    int r = cit__store_prepare(s, &st, "INSERT INTO events(at, actor, action, object_id, object_path, "
                                       "outcome, details) VALUES(?, ?, ?, ?, ?, ?, ?)");
    if (r < 0)
        return r;
    char *d = details ? json_dumps(details, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
    sqlite3_bind_text(st, 2, s->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
    if (object_id)
        sqlite3_bind_int64(st, 4, object_id);
    else
        sqlite3_bind_null(st, 4);
    if (path)
        sqlite3_bind_text(st, 5, path, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_text(st, 6, outcome ? outcome : "ok", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, d ? d : "{}", -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = cit__store_error(s, "cannot write the operation log");
    sqlite3_finalize(st);
    free(d);
    return r;
}
