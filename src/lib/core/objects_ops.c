/* SPDX-License-Identifier: Apache-2.0 */
/* Object commands: list, tree, dependents, rename, retire/activate. Store only, no TPM. */
#include <string.h>

#include "basic/macro.h"
#include "core/keys.h"
#include "core/profiles.h"
#include "ctx.h"

_public_ int cit_object_list(json_t **out, cit_ctx *ctx, const char *kind) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "list objects (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    cit_object *list = NULL;
    size_t n = 0;
    r = cit__object_list(s, kind, &list, &n);
    if (r < 0)
        return r;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *full = cit__object_json(&list[i], s);
        /* one flat row per object, so text renders as a table */
        json_t *row = json_object();
        static const char *const keys[] = {"path", "kind", "usage", "algorithm", "status", "version", "persistent_handle", "updated"};
        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
            json_t *v = json_object_get(full, keys[k]);
            json_object_set(row, keys[k], v ? v : json_null());
        }
        json_decref(full);
        json_array_append_new(a, row);
    }
    cit__object_list_free(list, n);
    *out = json_pack("{s:o,s:I}", kind && strcmp(kind, "key") == 0 ? "keys" : "objects", a, "count", (json_int_t)n);
    return 0;
}

_public_ int cit_object_tree(json_t **out, cit_ctx *ctx) {
    cit_error_clear();
    cit_store *s;
    int r = cit__ctx_store_or_plan(ctx, &s, out, "show the object tree (reads the store only)", NULL);
    if (r != 0)
        return r < 0 ? r : 0;
    cit_object *list = NULL;
    size_t n = 0;
    r = cit__object_list(s, NULL, &list, &n);
    if (r < 0)
        return r;
    /* Nested JSON by path component; text as an indented tree. */
    json_t *root = json_object();
    size_t cap = 256, len = 0;
    char *text = malloc(cap);
    if (!text) {
        cit__object_list_free(list, n);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    text[0] = 0;
    const char *prev = "";
    for (size_t i = 0; i < n; i++) {
        json_t *node = root;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", list[i].path);
        int depth = 0;
        char *save = NULL;
        /* components shared with the previous path are already printed */
        for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save), depth++) {
            json_t *children = json_object_get(node, "children");
            if (!children) {
                children = json_object();
                json_object_set_new(node, "children", children);
            }
            json_t *child = json_object_get(children, c);
            bool last = save == NULL || *save == 0;
            if (!child) {
                child = json_object();
                json_object_set_new(children, c, child);
                char line[512];
                int k = snprintf(line, sizeof line, "%*s%s%s", depth * 2, "", c, last ? "" : "/");
                if (last)
                    k += snprintf(line + k, sizeof line - (size_t)k, "  [%s %s%s]", list[i].kind, list[i].algorithm,
                                  strcmp(list[i].status, "retired") == 0 ? ", retired" : "");
                while (len + (size_t)k + 2 > cap) {
                    cap *= 2;
                    char *nt = realloc(text, cap);
                    if (!nt)
                        break;
                    text = nt;
                }
                if (len + (size_t)k + 2 <= cap) {
                    memcpy(text + len, line, (size_t)k);
                    len += (size_t)k;
                    text[len++] = '\n';
                    text[len] = 0;
                }
            }
            if (last) {
                json_object_set_new(child, "kind", json_string(list[i].kind));
                json_object_set_new(child, "algorithm", json_string(list[i].algorithm));
                json_object_set_new(child, "status", json_string(list[i].status));
            }
            node = child;
        }
        prev = list[i].path;
    }
    (void)prev;
    cit__object_list_free(list, n);
    json_t *children = json_object_get(root, "children");
    json_t *j = json_pack("{s:O,s:I,s:s}", "tree", children ? children : json_object(), "count", (json_int_t)n, "_text",
                          n ? text : "(no objects)\n");
    free(text);
    json_decref(root);
    *out = j;
    return 0;
}

_public_ int cit_object_dependents(json_t **out, cit_ctx *ctx, const char *path) {
    cit_error_clear();
    cit_object o = {0};
    int r = cit__ctx_find(ctx, path, &o);
    if (r < 0)
        return r;
    cit_store *s = ctx->store;
    json_t *deps = json_array();
    r = cit__collect_dependents(s, o.id, deps, 0);
    cit__object_clear(&o);
    if (r < 0) {
        json_decref(deps);
        return r;
    }
    json_t *paths = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d) json_array_append(paths, json_object_get(d, "path"));
    json_decref(deps);
    *out = json_pack("{s:s,s:o,s:I}", "path", path, "dependents", paths, "count", (json_int_t)json_array_size(paths));
    return 0;
}

_public_ int cit_object_rename(json_t **out, cit_ctx *ctx, const char *from, const char *to) {
    cit_error_clear();
    cit_store *s;
    cit_object o = {0};
    int r = cit__check_path(from);
    if (r == 0)
        r = cit__check_path(to);
    if (r == 0)
        r = cit__ctx_store(ctx, &s);
    if (r == 0)
        r = cit__object_find(s, from, &o);
    if (r == 0 && (r = cit__ca_guard(ctx, &o, "renaming it")) < 0)
        cit__object_clear(&o);
    if (r < 0)
        return r;
    if ((r = cit__profile_check(ctx, to, NULL)) < 0) {
        cit__object_clear(&o);
        return r;
    }
    if (ctx->plan) {
        *out = cit__plan("rename the object in the store (no TPM operations)", NULL);
        cit__object_clear(&o);
        return 0;
    }
    r = cit__store_begin(s);
    if (r == 0) {
        snprintf(o.path, sizeof o.path, "%s", to);
        r = cit__object_update(s, &o);
    }
    if (r == 0) {
        json_t *d = json_pack("{s:s,s:s}", "from", from, "to", to);
        r = cit__store_event(s, "object.rename", to, o.id, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0)
        cit__store_rollback(s);
    else
        *out = json_pack("{s:s,s:s,s:s}", "from", from, "to", to, "kind", o.kind);
    cit__object_clear(&o);
    return r;
}

_public_ int cit_object_set_status(json_t **out, cit_ctx *ctx, const char *path, bool active) {
    cit_error_clear();
    cit_object o = {0};
    int r = cit__ctx_find(ctx, path, &o);
    if (r < 0)
        return r;
    cit_store *s = ctx->store;
    const char *status = active ? "active" : "retired";
    if (ctx->plan) {
        *out = cit__plan(active ? "activate the object (store only)" : "retire the object (store only)", NULL);
        cit__object_clear(&o);
        return 0;
    }
    bool changed = strcmp(o.status, status) != 0;
    if (changed) {
        r = cit__store_begin(s);
        if (r == 0) {
            snprintf(o.status, sizeof o.status, "%s", status);
            r = cit__object_update(s, &o);
        }
        if (r == 0)
            r = cit__store_event(s, active ? "object.activate" : "object.retire", o.path, o.id, "ok", NULL);
        if (r == 0)
            r = cit__store_commit(s);
        if (r < 0)
            cit__store_rollback(s);
    }
    if (r == 0)
        *out = json_pack("{s:s,s:s,s:b}", "path", o.path, "status", status, "changed", changed);
    cit__object_clear(&o);
    return r;
}
