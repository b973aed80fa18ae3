/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <string.h>
#include <yaml.h>

#include "basic/macro.h"
#include "citadel/output.h"

_public_ int cit_format_parse(const char *s, cit_format *out) {
    if (strcmp(s, "text") == 0)
        *out = CIT_FORMAT_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = CIT_FORMAT_JSON;
    else if (strcmp(s, "yaml") == 0 || strcmp(s, "yml") == 0)
        *out = CIT_FORMAT_YAML;
    else {
        cit_error_set(CIT_E_FORMAT_UNKNOWN, "unknown output format: %s", s);
        cit_error_cause("--format takes text, json or yaml");
        cit_error_context("format", "%s", s);
        return CIT_E_FORMAT_UNKNOWN;
    }
    return 0;
}

/* Copy without presentation keys ('_' prefix), recursively. */
static json_t *strip_hints(const json_t *v) {
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (k[0] == '_')
                continue;
            json_object_set_new(o, k, strip_hints(x));
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append_new(a, strip_hints(x));
        return a;
    }
    return json_deep_copy(v);
}

static json_t *with_schema(const json_t *result) {
    json_t *o = json_object();
    json_object_set_new(o, "schema_version", json_integer(CIT_SCHEMA_VERSION));
    json_t *s = strip_hints(result);
    json_object_del(s, "schema_version"); /* the envelope's, never a result field */
    json_object_update(o, s);
    json_decref(s);
    return o;
}

/* ---- YAML through libyaml's emitter, so quoting is always right ---- */

static int yaml_out(void *data, unsigned char *buf, size_t size) {
    return fwrite(buf, 1, size, (FILE *)data) == size;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, bool plain_ok) {
    yaml_event_t ev;
    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain_ok, !plain_ok ? 1 : 1,
                                 plain_ok ? YAML_ANY_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    return yaml_emitter_emit(em, &ev);
}

static int emit_node(yaml_emitter_t *em, const json_t *v) {
    yaml_event_t ev;
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        if (!yaml_emitter_emit(em, &ev))
            return -1;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (!emit_scalar(em, k, true) || emit_node(em, x) < 0)
                return -1;
        }
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev) ? 0 : -1;
    }
    case JSON_ARRAY: {
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
        if (!yaml_emitter_emit(em, &ev))
            return -1;
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) if (emit_node(em, x) < 0) return -1;
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev) ? 0 : -1;
    }
    case JSON_STRING:
        /* Strings are always quoted so "yes", "0x10" or "1.0" stay strings for any parser. */
        return emit_scalar(em, json_string_value(v), false) ? 0 : -1;
    case JSON_INTEGER:
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(em, buf, true) ? 0 : -1;
    case JSON_REAL:
        snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        return emit_scalar(em, buf, true) ? 0 : -1;
    case JSON_TRUE:
        return emit_scalar(em, "true", true) ? 0 : -1;
    case JSON_FALSE:
        return emit_scalar(em, "false", true) ? 0 : -1;
    case JSON_NULL:
        return emit_scalar(em, "null", true) ? 0 : -1;
    }
    return -1;
}

static int render_yaml(FILE *f, const json_t *doc) {
    yaml_emitter_t em;
    yaml_event_t ev;
    int r = -1;
    if (!yaml_emitter_initialize(&em))
        return -1;
    yaml_emitter_set_output(&em, yaml_out, f);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    if (!yaml_emitter_emit(&em, &ev))
        goto done;
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    if (!yaml_emitter_emit(&em, &ev))
        goto done;
    if (emit_node(&em, doc) < 0)
        goto done;
    yaml_document_end_event_initialize(&ev, 1);
    if (!yaml_emitter_emit(&em, &ev))
        goto done;
    yaml_stream_end_event_initialize(&ev);
    if (!yaml_emitter_emit(&em, &ev))
        goto done;
    r = 0;
done:
    yaml_emitter_delete(&em);
    return r;
}

/* ---- text ---- */

static void scalar_text(FILE *f, const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_STRING: fputs(json_string_value(v), f); break;
    case JSON_INTEGER: fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: fprintf(f, "%g", json_real_value(v)); break;
    case JSON_TRUE: fputs("yes", f); break;
    case JSON_FALSE: fputs("no", f); break;
    case JSON_NULL: fputs("-", f); break;
    default: break;
    }
}

static bool is_scalar(const json_t *v) { return !json_is_object(v) && !json_is_array(v); }

static size_t scalar_width(const json_t *v) {
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_STRING: return strlen(json_string_value(v));
    case JSON_INTEGER: return (size_t)snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL: return (size_t)snprintf(buf, sizeof buf, "%g", json_real_value(v));
    case JSON_TRUE: return 3;
    case JSON_FALSE: return 2;
    default: return 1;
    }
}

/* An array of flat objects renders as a table with the first element's keys as columns. */
static bool tabular(const json_t *a) {
    if (!json_is_array(a) || json_array_size(a) == 0)
        return false;
    size_t i;
    json_t *row;
    json_array_foreach(a, i, row) {
        if (!json_is_object(row))
            return false;
        const char *k;
        json_t *x;
        json_object_foreach(row, k, x) if (!is_scalar(x)) return false;
    }
    return true;
}

static void indent(FILE *f, int n) {
    for (int i = 0; i < n; i++)
        fputc(' ', f);
}

static void upper_label(FILE *f, const char *k) {
    for (; *k; k++)
        fputc(*k == '_' ? ' ' : (*k >= 'a' && *k <= 'z' ? *k - 32 : *k), f);
}

static void render_table(FILE *f, const json_t *a, int ind) {
    json_t *first = json_array_get(a, 0);
    size_t ncol = json_object_size(first);
    if (ncol > 16)
        ncol = 16;
    const char *cols[16];
    size_t w[16];
    size_t c = 0;
    const char *k;
    json_t *x;
    json_object_foreach(first, k, x) {
        if (c >= ncol)
            break;
        cols[c] = k;
        w[c] = strlen(k);
        c++;
    }
    size_t i;
    json_t *row;
    json_array_foreach(a, i, row) for (c = 0; c < ncol; c++) {
        json_t *v = json_object_get(row, cols[c]);
        size_t vw = v ? scalar_width(v) : 1;
        if (vw > w[c])
            w[c] = vw;
    }
    indent(f, ind);
    for (c = 0; c < ncol; c++) {
        upper_label(f, cols[c]);
        if (c + 1 < ncol)
            indent(f, (int)(w[c] - strlen(cols[c]) + 2));
    }
    fputc('\n', f);
    json_array_foreach(a, i, row) {
        indent(f, ind);
        for (c = 0; c < ncol; c++) {
            json_t *v = json_object_get(row, cols[c]);
            if (v)
                scalar_text(f, v);
            else
                fputc('-', f);
            if (c + 1 < ncol)
                indent(f, (int)(w[c] - (v ? scalar_width(v) : 1) + 2));
        }
        fputc('\n', f);
    }
}

static void render_text_node(FILE *f, const json_t *v, int ind);

static void render_text_object(FILE *f, const json_t *o, int ind) {
    size_t w = 0;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)o, k, x) {
        if (k[0] == '_')
            continue;
        if (strlen(k) > w)
            w = strlen(k);
    }
    json_object_foreach((json_t *)o, k, x) {
        if (k[0] == '_')
            continue;
        indent(f, ind);
        fputs(k, f);
        fputc(':', f);
        if (json_is_string(x) && strchr(json_string_value(x), '\n')) {
            /* multi-line text (PEM, scripts) goes below its key, indented */
            fputc('\n', f);
            const char *p = json_string_value(x);
            while (*p) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p) : strlen(p);
                indent(f, ind + 2);
                fwrite(p, 1, n, f);
                fputc('\n', f);
                p += n + (nl ? 1 : 0);
            }
        } else if (is_scalar(x)) {
            indent(f, (int)(w - strlen(k) + 1));
            scalar_text(f, x);
            fputc('\n', f);
        } else if (json_is_array(x) && json_array_size(x) == 0) {
            fputs(" (none)\n", f);
        } else if (json_is_array(x) && !tabular(x)) {
            bool all_scalar = true;
            size_t i;
            json_t *e;
            json_array_foreach(x, i, e) if (!is_scalar(e)) all_scalar = false;
            if (all_scalar) {
                indent(f, (int)(w - strlen(k) + 1));
                json_array_foreach(x, i, e) {
                    if (i)
                        fputs(", ", f);
                    scalar_text(f, e);
                }
                fputc('\n', f);
            } else {
                fputc('\n', f);
                render_text_node(f, x, ind + 2);
            }
        } else {
            fputc('\n', f);
            render_text_node(f, x, ind + 2);
        }
    }
}

static void render_text_node(FILE *f, const json_t *v, int ind) {
    if (json_is_object(v)) {
        render_text_object(f, v, ind);
    } else if (tabular(v)) {
        render_table(f, v, ind);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            indent(f, ind);
            fputs("- ", f);
            if (is_scalar(e)) {
                scalar_text(f, e);
                fputc('\n', f);
            } else {
                fputc('\n', f);
                render_text_node(f, e, ind + 2);
            }
        }
    } else {
        indent(f, ind);
        scalar_text(f, v);
        fputc('\n', f);
    }
}

_public_ int cit_render(FILE *f, const json_t *result, cit_format fmt) {
    int r = 0;
    if (fmt == CIT_FORMAT_TEXT) {
        json_t *t = json_object_get(result, "_text");
        if (json_is_string(t)) {
            const char *s = json_string_value(t);
            fputs(s, f);
            if (*s && s[strlen(s) - 1] != '\n')
                fputc('\n', f);
        } else
            render_text_node(f, result, 0);
    } else {
        json_t *doc = with_schema(result);
        if (fmt == CIT_FORMAT_JSON) {
            r = json_dumpf(doc, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fputc('\n', f);
        } else
            r = render_yaml(f, doc);
        json_decref(doc);
    }
    fflush(f);
    return r < 0 ? CIT_E_OUTPUT_WRITE : 0;
}

_public_ json_t *cit_error_to_json(const cit_error *e) {
    char code[16];
    cit_code_format(code, sizeof code, e->code);
    const cit_code_info *ci = cit_code_lookup(e->code);
    json_t *o = json_object();
    json_object_set_new(o, "code", json_string(code));
    json_object_set_new(o, "name", json_string(ci ? ci->name : "UNKNOWN"));
    json_object_set_new(o, "class", json_string(ci ? ci->cls : "internal"));
    json_object_set_new(o, "message", json_string(e->message[0] ? e->message : (ci ? ci->message : "error")));
    json_t *causes = json_array();
    for (int i = 0; i < e->n_causes; i++)
        json_array_append_new(causes, json_string(e->causes[i]));
    json_object_set_new(o, "causes", causes);
    json_t *ctx = json_object();
    for (int i = 0; i < e->n_context; i++)
        json_object_set_new(ctx, e->context_key[i], json_string(e->context_val[i]));
    json_object_set_new(o, "context", ctx);
    json_t *steps = json_array();
    for (int i = 0; i < e->n_steps; i++)
        json_array_append_new(steps, json_string(e->steps[i]));
    if (ci && ci->steps) {
        /* default steps name PATH; when the error knows the path, say it */
        const char *path = NULL;
        for (int i = 0; i < e->n_context; i++)
            if (strcmp(e->context_key[i], "path") == 0)
                path = e->context_val[i];
        const char *p = ci->steps;
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            char line[512];
            snprintf(line, sizeof line, "%.*s", (int)n, p);
            char *ph = path ? strstr(line, "PATH") : NULL;
            if (ph) {
                char tail[512];
                snprintf(tail, sizeof tail, "%s", ph + 4);
                snprintf(ph, sizeof line - (size_t)(ph - line), "%s%s", path, tail);
            }
            bool dup = false;
            for (int i = 0; i < e->n_steps; i++)
                if (strcmp(e->steps[i], line) == 0)
                    dup = true;
            if (!dup)
                json_array_append_new(steps, json_string(line));
            p += n + (nl ? 1 : 0);
        }
    }
    json_object_set_new(o, "next_steps", steps);
    json_object_set_new(o, "exit_status", json_integer(cit_code_exit_status(e->code)));
    return o;
}

_public_ void cit_error_render(FILE *f, const cit_error *e, cit_format fmt) {
    json_t *j = cit_error_to_json(e);
    if (fmt == CIT_FORMAT_TEXT) {
        fprintf(f, "error[%s]: %s\n", json_string_value(json_object_get(j, "code")),
                json_string_value(json_object_get(j, "message")));
        json_t *causes = json_object_get(j, "causes"), *ctx = json_object_get(j, "context");
        if (json_array_size(causes) || json_object_size(ctx)) {
            fputs("causes:\n", f);
            size_t i;
            json_t *x;
            json_array_foreach(causes, i, x) fprintf(f, "  - %s\n", json_string_value(x));
            const char *k;
            json_object_foreach(ctx, k, x) fprintf(f, "  %s %s\n", k, json_string_value(x));
        }
        json_t *steps = json_object_get(j, "next_steps");
        if (json_array_size(steps)) {
            fputs("next steps:\n", f);
            size_t i;
            json_t *x;
            json_array_foreach(steps, i, x) fprintf(f, "  %zu. %s\n", i + 1, json_string_value(x));
        }
    } else {
        json_t *doc = json_object();
        json_object_set_new(doc, "schema_version", json_integer(CIT_SCHEMA_VERSION));
        json_object_set(doc, "error", j);
        if (fmt == CIT_FORMAT_JSON) {
            json_dumpf(doc, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fputc('\n', f);
        } else
            render_yaml(f, doc);
        json_decref(doc);
    }
    json_decref(j);
    fflush(f);
}
