/* SPDX-License-Identifier: Apache-2.0 */
#include "vtpm_state.h"

#include <errno.h>
#include <openssl/sha.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/error.h"

static const char MAGIC[8] = {'C', 'I', 'T', 'V', 'T', 'P', 'M', '\n'};

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parses a whole container into *out: 0, -1 with *why (damaged) or -ENOMEM. */
static int parse(const uint8_t *buf, size_t len, cit_vtpm_state *out, const char **why) {
    cit_vtpm_state st = {0};
    int r = -1;
    if (len < sizeof(MAGIC) + 8 + SHA256_DIGEST_LENGTH) {
        *why = len == 0 ? "the file is empty" : "the file is truncated";
        goto done;
    }
    if (memcmp(buf, MAGIC, sizeof(MAGIC)) != 0) {
        *why = "the file does not start with the vTPM state header";
        goto done;
    }
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(buf, len - SHA256_DIGEST_LENGTH, md);
    if (memcmp(md, buf + len - SHA256_DIGEST_LENGTH, SHA256_DIGEST_LENGTH) != 0) {
        *why = "the checksum does not match the contents (truncated or modified)";
        goto done;
    }
    size_t end = len - SHA256_DIGEST_LENGTH, off = sizeof(MAGIC);
    uint32_t version = get32(buf + off), n = get32(buf + off + 4);
    off += 8;
    if (version != 1) {
        *why = "unknown state file version";
        goto done;
    }
    if (n > CIT_VTPM_MAX_BLOBS) {
        *why = "too many state blobs";
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (off + 1 > end) {
            *why = "blob header truncated";
            goto done;
        }
        size_t nl = buf[off++];
        if (nl == 0 || nl >= sizeof(st.blobs[0].name) || off + nl + 4 > end) {
            *why = "blob name invalid";
            goto done;
        }
        cit_vtpm_blob *b = &st.blobs[st.n];
        memcpy(b->name, buf + off, nl);
        b->name[nl] = 0;
        off += nl;
        uint32_t bl = get32(buf + off);
        off += 4;
        if (bl > end - off) {
            *why = "blob data truncated";
            goto done;
        }
        b->data = malloc(bl ? bl : 1);
        if (!b->data) {
            r = -ENOMEM;
            goto done;
        }
        memcpy(b->data, buf + off, bl);
        b->len = bl;
        st.n++;
        off += bl;
    }
    if (off != end) {
        *why = "trailing data after the last blob";
        goto done;
    }
    *out = st;
    memset(&st, 0, sizeof(st));
    r = 0;
done:
    cit__vtpm_state_clear(&st);
    return r;
}

/* The state file is damaged (a disk error, an edit, a copy cut short). cit_write_file_swap keeps
 * the previous state in <path>.swap; when that is whole the error says how to go back to it. It is
 * never taken silently: that would undo the last command's TPM changes behind the user's back, and
 * a damaged state file is for the user to look at. (Saves sync the exchange, so a power loss leaves
 * the old or the new state, not a torn one; a state file written by a version before that could.) */
static int corrupt(const char *path, const char *why) {
    cit_error_set(CIT_E_VTPM_STATE_CORRUPT, "the vTPM state file is corrupted: %s", path);
    cit_error_cause("%s", why);
    cit_error_context("state_file", "%s", path);
    size_t pl = strlen(path) + sizeof ".swap";
    _cleanup_free_ char *swap = malloc(pl);
    uint8_t *buf = NULL;
    size_t len = 0;
    cit_vtpm_state st = {0};
    const char *swhy = NULL;
    if (swap) {
        snprintf(swap, pl, "%s.swap", path);
        if (cit_read_file(swap, CIT_VTPM_STATE_MAX, &buf, &len) == 0 && parse(buf, len, &st, &swhy) == 0) {
            cit_error_cause("%s holds the state before the last save, whole", swap);
            cit_error_step("go back to it: `mv %s %s` (the TPM changes of the last command are lost: "
                           "`citadel tpm repair scan` finds what no longer matches the store)",
                           swap, path);
        }
    }
    cit__vtpm_state_clear(&st);
    if (buf) {
        cit_memzero(buf, len);
        free(buf);
    }
    return CIT_E_VTPM_STATE_CORRUPT;
}

int cit__vtpm_state_load(cit_vtpm_state *out, const char *path) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = cit_read_file(path, CIT_VTPM_STATE_MAX, &buf, &len);
    if (r == -ENOENT) {
        cit_error_set(CIT_E_VTPM_STATE_MISSING, "the vTPM state file is missing: %s", path);
        cit_error_cause("the workspace was initialised with the embedded vTPM, whose state is kept "
                        "in this file");
        cit_error_context("state_file", "%s", path);
        return CIT_E_VTPM_STATE_MISSING;
    }
    if (r == -EFBIG)
        return corrupt(path, "the file is larger than any vTPM state");
    if (r == -EISDIR)
        return corrupt(path, "it is a directory, not a state file");
    if (r < 0) {
        cit_error_set(CIT_E_STORE_IO, "cannot read the vTPM state file %s: %s", path, strerror(-r));
        cit_error_context("state_file", "%s", path);
        return CIT_E_STORE_IO;
    }
    const char *why = NULL;
    r = parse(buf, len, out, &why);
    cit_memzero(buf, len);
    free(buf);
    if (r == -ENOMEM)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    return r < 0 ? corrupt(path, why) : 0;
}

int cit__vtpm_state_save(const cit_vtpm_state *st, const char *path) {
    size_t len = sizeof(MAGIC) + 8 + SHA256_DIGEST_LENGTH;
    for (int i = 0; i < st->n; i++)
        len += 1 + strlen(st->blobs[i].name) + 4 + st->blobs[i].len;
    uint8_t *buf = malloc(len);
    if (!buf)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    size_t off = 0;
    memcpy(buf, MAGIC, sizeof(MAGIC));
    off += sizeof(MAGIC);
    cit_put_be32(buf + off, 1);
    cit_put_be32(buf + off + 4, (uint32_t)st->n);
    off += 8;
    for (int i = 0; i < st->n; i++) {
        size_t nl = strlen(st->blobs[i].name);
        buf[off++] = (uint8_t)nl;
        memcpy(buf + off, st->blobs[i].name, nl);
        off += nl;
        cit_put_be32(buf + off, (uint32_t)st->blobs[i].len);
        off += 4;
        memcpy(buf + off, st->blobs[i].data, st->blobs[i].len);
        off += st->blobs[i].len;
    }
    SHA256(buf, off, buf + off);
    /* Every vTPM command rewrites this file under the workspace lock: a kept <path>.swap rewritten in
     * place and exchanged costs less than a new file renamed over it (no inode to create and evict),
     * even with the directory synced after the exchange, which the rename never was. That sync is
     * what keeps a power loss from tearing the state: the next save rewrites the swap file in
     * place, and the disk must not still call it the state file. */
    int r = cit_write_file_swap(path, buf, len, 0600, CIT_WRITE_DURABLE | CIT_WRITE_SYNC_NAME);
    cit_memzero(buf, len);
    free(buf);
    if (r < 0) {
        cit_error_set(CIT_E_STORE_IO, "cannot write the vTPM state file %s: %s", path, strerror(-r));
        cit_error_context("state_file", "%s", path);
        return CIT_E_STORE_IO;
    }
    return 0;
}
