/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `attest eventlog secureboot`: what an event log says about UEFI Secure Boot. The firmware
 * measures the SecureBoot variable and the key databases (PK, KEK, db, dbx) into PCR 7 as
 * EV_EFI_VARIABLE_DRIVER_CONFIG events before the separator, then one
 * EV_EFI_VARIABLE_AUTHORITY event for each db entry that allowed an image to run; shim adds
 * its own certificate ("Shim"), SbatLevel and the MOK lists (PCR 7 and 14).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "attest/bytes.h"
#include "attest/eventlog.h"
#include "basic/util.h"
#include "citadel/citadel.h"
#include "crypto/crypto.h"

#define GUID_GLOBAL "8be4df61-93ca-11d2-aa0d-00e098032b8c"
#define GUID_IMAGE_SECURITY_DB "d719b2cb-3d3a-4596-a3bc-dad00e67656f"
#define GUID_SHIM_LOCK "605dab50-e046-4300-abb6-3dd810dd8b23"
#define GUID_CERT_X509 "a5c059a1-94e4-4aa7-87b5-ab155c2bf072"

static const char *const key_vars[] = {"PK", "KEK", "db", "dbx"};

/* Subjects of the X.509 entries of a signature list sequence already checked by
 * cit__uefi_siglists (so every length here is known to fit). */
static json_t *siglist_subjects(const uint8_t *p, size_t len) {
    json_t *a = json_array();
    size_t off = 0;
    while (a && off + 28 <= len) {
        const uint8_t *l = p + off;
        uint32_t list_size = cit__le32(l + 16), hdr_size = cit__le32(l + 20), sig_size = cit__le32(l + 24);
        if (list_size < 28 || list_size > len - off || sig_size < 16)
            break;
        if (cit__guid_eq(l, GUID_CERT_X509)) {
            for (size_t e = 28 + hdr_size; e + sig_size <= list_size; e += sig_size) {
                char subj[512];
                /* EFI_SIGNATURE_DATA: owner GUID, then the DER certificate */
                if (cit__x509_subject(l + e + 16, sig_size - 16, subj, sizeof subj))
                    json_array_append_new(a, json_string(subj));
                else
                    json_array_append_new(a, json_string("(certificate does not parse)"));
            }
        }
        off += list_size;
    }
    return a;
}

typedef struct sb_state {
    json_t *o, *keys, *authorities, *apps, *shim_events, *findings;
    int secure_boot; /* -1 not measured, else the value (0 for an empty variable) */
    bool shim;
    int separator7;
    bool after_separator7;
} sb_state;

static void finding(sb_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void finding(sb_state *s, const char *fmt, ...) {
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    json_array_append_new(s->findings, json_string(b));
}

static void shim_event(sb_state *s, const cit__evl_event *ev, const char *what) {
    json_t *x = json_object();
    json_object_set_new(x, "event", json_integer(ev->index));
    json_object_set_new(x, "pcr", json_integer(ev->pcr));
    json_object_set_new(x, "type", json_string(cit__eventlog_type_name(ev->type)));
    json_object_set_new(x, "what", json_string(what));
    json_array_append_new(s->shim_events, x);
    s->shim = true;
}

static void on_config_var(sb_state *s, const cit__evl_event *ev, const cit__uefi_var *v) {
    char g[37];
    cit__guid_format(g, v->guid);
    bool global = strcmp(g, GUID_GLOBAL) == 0, secdb = strcmp(g, GUID_IMAGE_SECURITY_DB) == 0;
    if (global && strcmp(v->name, "SecureBoot") == 0) {
        s->secure_boot = v->data_len >= 1 ? v->data[0] : 0;
        json_object_set_new(s->o, "secure_boot_event", json_integer(ev->index));
        if (v->data_len == 1)
            json_object_set_new(s->o, "secure_boot_value", json_integer(v->data[0]));
        return;
    }
    if (global && (strcmp(v->name, "SetupMode") == 0 || strcmp(v->name, "AuditMode") == 0 ||
                   strcmp(v->name, "DeployedMode") == 0)) {
        char k[32];
        snprintf(k, sizeof k, "%s", strcmp(v->name, "SetupMode") == 0   ? "setup_mode"
                                    : strcmp(v->name, "AuditMode") == 0 ? "audit_mode"
                                                                        : "deployed_mode");
        if (v->data_len == 1)
            json_object_set_new(s->o, k, json_integer(v->data[0]));
        return;
    }
    if (strcmp(g, GUID_SHIM_LOCK) == 0) {
        char what[160];
        snprintf(what, sizeof what, "%s measured by shim (%llu bytes)", v->name, (unsigned long long)v->data_len);
        shim_event(s, ev, what);
        return;
    }
    for (size_t i = 0; i < sizeof key_vars / sizeof key_vars[0]; i++) {
        bool ours = strcmp(v->name, key_vars[i]) == 0 && (i < 2 ? global : secdb);
        if (!ours)
            continue;
        json_t *k = json_object();
        json_object_set_new(k, "measured", json_true());
        json_object_set_new(k, "present", json_boolean(v->data_len > 0));
        json_object_set_new(k, "size", json_integer((json_int_t)v->data_len));
        json_object_set_new(k, "event", json_integer(ev->index));
        uint32_t lists, x509, sha256, other;
        if (v->data_len > 0) {
            if (cit__uefi_siglists(v->data, (size_t)v->data_len, &lists, &x509, &sha256, &other)) {
                json_object_set_new(k, "x509", json_integer(x509));
                json_object_set_new(k, "sha256", json_integer(sha256));
                if (other)
                    json_object_set_new(k, "other", json_integer(other));
                if (x509)
                    json_object_set_new(k, "subjects", siglist_subjects(v->data, (size_t)v->data_len));
            } else {
                json_object_set_new(k, "error", json_string("not a valid EFI_SIGNATURE_LIST sequence"));
                finding(s, "%s (event %u) is not a valid signature list", key_vars[i], ev->index);
            }
        }
        json_object_set_new(s->keys, key_vars[i], k);
        return;
    }
}

static void on_authority(sb_state *s, const cit__evl_event *ev, const cit__uefi_var *v) {
    char g[37];
    cit__guid_format(g, v->guid);
    json_t *a = json_object();
    json_object_set_new(a, "event", json_integer(ev->index));
    json_object_set_new(a, "variable", json_string(v->name));
    json_object_set_new(a, "variable_guid", json_string(g));
    const uint8_t *d = v->data;
    size_t n = (size_t)v->data_len;
    char subj[512];
    const uint8_t *cert = NULL;
    size_t cl = 0;
    if (n >= 2 && d[0] == 0x30 && d[1] == 0x82) {
        cert = d;
        cl = n;
    } else if (n > 18 && d[16] == 0x30 && d[17] == 0x82) {
        cert = d + 16;
        cl = n - 16;
    } else if (n == 48) {
        char *h = cit_hex_encode(d + 16, 32);
        json_object_set_new(a, "sha256", json_string(h ? h : ""));
        free(h);
    }
    if (cert && cit__x509_subject(cert, cl, subj, sizeof subj))
        json_object_set_new(a, "subject", json_string(subj));
    json_array_append_new(s->authorities, a);
    if (strcmp(g, GUID_SHIM_LOCK) == 0) {
        char what[640];
        snprintf(what, sizeof what, "authority %s%s%s", v->name, cert ? ": " : "", cert ? subj : "");
        shim_event(s, ev, what);
    }
}

static bool contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

int cit__eventlog_secureboot_buf(json_t **out, const uint8_t *buf, size_t len, const char *name) {
    cit__evl_parser p;
    int r = cit__evl_open(&p, buf, len);
    if (r < 0)
        return r;
    sb_state s = {.o = json_object(),
                  .keys = json_object(),
                  .authorities = json_array(),
                  .apps = json_array(),
                  .shim_events = json_array(),
                  .findings = json_array(),
                  .secure_boot = -1,
                  .separator7 = -1};
    cit__evl_event ev;
    uint32_t mismatched7 = 0;
    while ((r = cit__evl_next(&p, &ev)) > 0) {
        cit__uefi_var v;
        char err[160];
        if (ev.pcr == 7 && ev.type == EV_SEPARATOR && s.separator7 < 0) {
            s.separator7 = (int)ev.index;
            s.after_separator7 = true;
            continue;
        }
        if ((ev.type == EV_EFI_VARIABLE_DRIVER_CONFIG || ev.type == EV_EFI_VARIABLE_AUTHORITY) && ev.pcr == 7) {
            if (!cit__uefi_var_parse(&v, ev.data, ev.data_len, err, sizeof err)) {
                finding(&s, "event %u (PCR 7) does not decode: %s", ev.index, err);
                continue;
            }
            if (ev.type == EV_EFI_VARIABLE_DRIVER_CONFIG) {
                on_config_var(&s, &ev, &v);
                /* the digest of a configuration variable is the hash of the data shown: if it
                 * is not, what we read is not what was measured */
                for (uint32_t i = 0; i < ev.ndigests; i++) {
                    uint8_t md[64];
                    size_t mdl = 0;
                    if (cit__hash_size(ev.digests[i].alg) != ev.digests[i].size)
                        continue;
                    if (cit__digest(ev.digests[i].alg, ev.data, ev.data_len, md, &mdl) == 0 &&
                        (mdl != ev.digests[i].size || memcmp(md, ev.digests[i].d, mdl) != 0)) {
                        finding(&s, "event %u (%s): the digest is not the hash of the event data, so the value "
                                    "shown is not necessarily what was measured",
                                ev.index, v.name);
                        mismatched7++;
                        break;
                    }
                }
            } else
                on_authority(&s, &ev, &v);
            continue;
        }
        if (ev.type == EV_EFI_BOOT_SERVICES_APPLICATION) {
            json_t *x = json_object();
            char summary[512];
            json_object_set_new(x, "event", json_integer(ev.index));
            json_object_set_new(x, "pcr", json_integer(ev.pcr));
            json_t *d = json_object();
            cit__evl_decode(d, &ev, summary, sizeof summary);
            json_t *dp = json_object_get(d, "device_path");
            if (dp)
                json_object_set(x, "device_path", dp);
            json_decref(d);
            json_array_append_new(s.apps, x);
            if (dp && contains_ci(json_string_value(dp), "shim"))
                shim_event(&s, &ev, "boot application path names shim");
            continue;
        }
        if (ev.type == EV_IPL && ev.pcr == 14) {
            /* shim measures MokList, MokListX, MokListTrusted (and MokSBState) into PCR 14 */
            char text[64] = "";
            size_t m = 0;
            while (m < ev.data_len && m < sizeof text - 1 && ev.data[m] >= 0x20 && ev.data[m] < 0x7f) {
                text[m] = (char)ev.data[m];
                m++;
            }
            text[m] = 0;
            char what[128];
            snprintf(what, sizeof what, "%s (PCR 14)", m ? text : "MOK state");
            shim_event(&s, &ev, what);
        }
    }
    if (r < 0) {
        json_decref(s.o);
        json_decref(s.keys);
        json_decref(s.authorities);
        json_decref(s.apps);
        json_decref(s.shim_events);
        json_decref(s.findings);
        return r;
    }
    const char *state = s.secure_boot < 0 ? "unknown" : s.secure_boot == 1 ? "enabled" : "disabled";
    for (size_t i = 0; i < sizeof key_vars / sizeof key_vars[0]; i++)
        if (!json_object_get(s.keys, key_vars[i])) {
            json_t *k = json_object();
            json_object_set_new(k, "measured", json_false());
            json_object_set_new(k, "present", json_false());
            json_object_set_new(s.keys, key_vars[i], k);
        }
    if (s.secure_boot < 0)
        finding(&s, "the log has no SecureBoot variable event in PCR 7: the state cannot be told from it");
    else if (s.secure_boot == 1) {
        if (!json_is_true(json_object_get(json_object_get(s.keys, "PK"), "present")))
            finding(&s, "SecureBoot is 1 but PK is empty or not measured");
        if (!json_is_true(json_object_get(json_object_get(s.keys, "dbx"), "present")))
            finding(&s, "dbx is empty or not measured: no image or certificate is revoked");
    } else
        finding(&s, "Secure Boot is off: any image runs, the PCR 7 authority events prove nothing");
    if (s.separator7 < 0)
        finding(&s, "no separator in PCR 7: the log ends before the firmware finished its configuration");

    json_t *o = s.o;
    json_object_set_new(o, "file", json_string(name ? name : "-"));
    json_object_set_new(o, "secure_boot", json_string(state));
    json_object_set_new(o, "keys", s.keys);
    json_object_set_new(o, "authorities", s.authorities);
    json_object_set_new(o, "boot_applications", s.apps);
    json_t *shim = json_object();
    json_object_set_new(shim, "detected", json_boolean(s.shim));
    json_object_set_new(shim, "events", s.shim_events);
    json_object_set_new(o, "shim", shim);
    json_object_set_new(o, "pcr7_separator_event", s.separator7 >= 0 ? json_integer(s.separator7) : json_null());
    json_object_set_new(o, "pcr7_digest_mismatches", json_integer(mismatched7));
    json_object_set_new(o, "findings", s.findings);

    /* a readable summary for the text format */
    char *t = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&t, &tl);
    if (!f) {
        json_decref(o);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    fprintf(f, "Secure Boot: %s", state);
    if (json_object_get(o, "secure_boot_event"))
        fprintf(f, " (SecureBoot = %lld, event %lld)", (long long)(s.secure_boot),
                (long long)json_integer_value(json_object_get(o, "secure_boot_event")));
    fputc('\n', f);
    for (size_t i = 0; i < sizeof key_vars / sizeof key_vars[0]; i++) {
        json_t *k = json_object_get(s.keys, key_vars[i]);
        fprintf(f, "  %-4s ", key_vars[i]);
        if (!json_is_true(json_object_get(k, "measured")))
            fputs("not measured\n", f);
        else if (!json_is_true(json_object_get(k, "present")))
            fprintf(f, "empty (event %lld)\n", (long long)json_integer_value(json_object_get(k, "event")));
        else {
            fprintf(f, "present, %lld bytes, %lld X.509, %lld SHA-256 (event %lld)\n",
                    (long long)json_integer_value(json_object_get(k, "size")),
                    (long long)json_integer_value(json_object_get(k, "x509")),
                    (long long)json_integer_value(json_object_get(k, "sha256")),
                    (long long)json_integer_value(json_object_get(k, "event")));
            size_t j;
            json_t *x;
            json_array_foreach(json_object_get(k, "subjects"), j, x) fprintf(f, "         %s\n", json_string_value(x));
        }
    }
    size_t j;
    json_t *x;
    if (json_array_size(s.authorities))
        fputs("Authorities used (PCR 7):\n", f);
    json_array_foreach(s.authorities, j, x) {
        json_t *sub = json_object_get(x, "subject"), *h = json_object_get(x, "sha256");
        fprintf(f, "  event %-4lld %-8s %s\n", (long long)json_integer_value(json_object_get(x, "event")),
                json_string_value(json_object_get(x, "variable")),
                sub ? json_string_value(sub) : h ? json_string_value(h) : "");
    }
    fprintf(f, "Shim: %s\n", s.shim ? "detected" : "not seen");
    json_array_foreach(s.shim_events, j, x) fprintf(f, "  event %-4lld %s\n",
                                                    (long long)json_integer_value(json_object_get(x, "event")),
                                                    json_string_value(json_object_get(x, "what")));
    if (json_array_size(s.apps))
        fputs("Boot applications (PCR 4):\n", f);
    json_array_foreach(s.apps, j, x) {
        json_t *dp = json_object_get(x, "device_path");
        fprintf(f, "  event %-4lld %s\n", (long long)json_integer_value(json_object_get(x, "event")),
                dp ? json_string_value(dp) : "(no device path)");
    }
    if (json_array_size(s.findings))
        fputs("Findings:\n", f);
    json_array_foreach(s.findings, j, x) fprintf(f, "  - %s\n", json_string_value(x));
    fclose(f);
    json_t *tv = json_string(t);
    free(t);
    json_object_set_new(o, "_text", tv ? tv : json_string("(summary not printable; use --json)\n"));
    *out = o;
    return 0;
}
