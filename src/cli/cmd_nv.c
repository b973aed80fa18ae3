/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "basic/util.h"
#include "cli.h"

static int u32_opt(const cli_args *a, const char *name, uint32_t *out, bool required) {
    const char *s = cli_get(a, name);
    *out = 0;
    if (!s) {
        if (!required)
            return 0;
        cit_error_set(CIT_E_USAGE, "--%s is required", name);
        return CIT_E_USAGE;
    }
    if (cit_parse_u32(s, out) < 0) {
        cit_error_set(CIT_E_USAGE, "--%s takes a number, not '%s'", name, s);
        return CIT_E_USAGE;
    }
    return 0;
}

static int do_define(cli_env *e, const cli_args *a, json_t **out) {
    uint32_t size;
    const char *type = cli_get(a, "type");
    bool sized = !type || strcmp(type, "ordinary") == 0;
    int r = u32_opt(a, "size", &size, sized);
    if (r < 0)
        return r;
    return cit_nv_define(out, e->ctx, a->pos[0], size, type, cli_get(a, "auth-file"));
}

static int do_write(cli_env *e, const cli_args *a, json_t **out) {
    uint32_t off;
    if (!cli_get(a, "input")) {
        cit_error_set(CIT_E_USAGE, "--input is required");
        return CIT_E_USAGE;
    }
    int r = u32_opt(a, "offset", &off, false);
    if (r < 0)
        return r;
    return cit_nv_write(out, e->ctx, a->pos[0], cli_get(a, "input"), off, cli_get(a, "auth-file"));
}

static int do_read(cli_env *e, const cli_args *a, json_t **out) {
    uint8_t *data = NULL;
    size_t len = 0;
    int r = cit_nv_read(out, e->ctx, a->pos[0], cli_get(a, "auth-file"), &data, &len);
    if (r < 0 || !data)
        return r;
    const char *output = cli_get(a, "output");
    if (!output) { /* with --output the data goes only to the file */
        char *hex = cit_hex_encode(data, len);
        json_object_set_new(*out, "data_hex", json_string(hex ? hex : ""));
        if (hex) {
            cit_memzero(hex, strlen(hex));
            free(hex);
        }
    } else {
        if (cit_write_file_atomic(output, data, len, 0600, 0) < 0) {
            r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s", output);
            json_decref(*out);
            *out = NULL;
        } else
            json_object_set_new(*out, "output", json_string(output));
    }
    cit_memzero(data, len);
    free(data);
    return r;
}

static int do_increment(cli_env *e, const cli_args *a, json_t **out) {
    return cit_nv_increment(out, e->ctx, a->pos[0], cli_get(a, "auth-file"));
}
static int do_extend(cli_env *e, const cli_args *a, json_t **out) {
    if (!cli_get(a, "input")) {
        cit_error_set(CIT_E_USAGE, "--input is required");
        return CIT_E_USAGE;
    }
    return cit_nv_extend(out, e->ctx, a->pos[0], cli_get(a, "input"), cli_get(a, "auth-file"));
}
static int do_lock(cli_env *e, const cli_args *a, json_t **out) {
    return cit_nv_lock(out, e->ctx, a->pos[0], cli_get(a, "auth-file"));
}
static int do_list(cli_env *e, const cli_args *a, json_t **out) { return cit_nv_list(out, e->ctx); }
static int do_delete(cli_env *e, const cli_args *a, json_t **out) {
    return cit_object_delete(out, e->ctx, a->pos[0], "nv", false);
}

#define AUTH_OPT {"auth-file", "FILE", "the index's password, if it has one"}

const cli_verb cli_verbs_nv[] = {
    {"define", do_define, "PATH", 1, 1, "define an NV index in the TPM",
     "Types: ordinary (--size bytes, up to the TPM's largest index: nv_index_max_size in\n"
     "`citadel tpm capabilities`, 2048 on libtpms), counter (64-bit, only increments), bits\n"
     "(64-bit, bits can only be set), extend (32 bytes, a SHA-256 hash chain). The TPM enforces\n"
     "the type, the size and the write lock; --auth-file gives the index a password (and makes it\n"
     "dictionary-attack protected).",
     "citadel tpm nv define app/counter --type counter",
     {{"size", "N", "size in bytes (ordinary indices; required there)"},
      {"type", "TYPE", "ordinary (default), counter, bits or extend"},
      {"auth-file", "FILE", "protect the index with the password in FILE"}}},
    {"write", do_write, "PATH", 1, 1, "write bytes (ordinary) or set bits (bits: 8 bytes)",
     "Data that does not fit between --offset and the end of the index is refused (TPM0048)\n"
     "before anything is written. Data larger than one TPM buffer (nv_buffer_max in `citadel tpm\n"
     "capabilities`, 1024 on libtpms) is written in several TPM2_NV_Write commands.",
     "citadel tpm nv write app/config --input config.bin --offset 0",
     {{"input", "FILE", "the data (required)"}, {"offset", "N", "where to write (default 0)"}, AUTH_OPT}},
    {"read", do_read, "PATH", 1, 1, "read an index (counters and bits also as a number)", NULL,
     "citadel tpm nv read app/config --output config.bin", {{"output", "FILE", "write the bytes to FILE"}, AUTH_OPT}},
    {"increment", do_increment, "PATH", 1, 1, "increment a counter index", NULL, "citadel tpm nv increment app/counter",
     {AUTH_OPT}},
    {"extend", do_extend, "PATH", 1, 1, "extend an extend index with data: new = SHA-256(old || data)", NULL,
     "citadel tpm nv extend app/log --input event.bin", {{"input", "FILE", "the data (at most 1024 bytes)"}, AUTH_OPT}},
    {"lock", do_lock, "PATH", 1, 1, "write-lock an index until it is deleted", NULL, "citadel tpm nv lock app/config",
     {AUTH_OPT}},
    {"list", do_list, NULL, 0, 0, "list NV indices", NULL, "citadel tpm nv list", {{0}}},
    {"delete", do_delete, "PATH", 1, 1, "undefine an NV index and forget it", NULL, "citadel tpm nv delete app/config",
     {{0}}},
    {0}};
