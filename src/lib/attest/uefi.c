/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoding of event data: the UEFI structures of the TCG PC Client Platform Firmware Profile
 * (UEFI_VARIABLE_DATA, UEFI_IMAGE_LOAD_EVENT, UEFI_GPT_DATA, UEFI_PLATFORM_FIRMWARE_BLOB(2),
 * UEFI_HANDOFF_TABLE_POINTERS(2)), EFI device paths and load options, signature lists, and the
 * strings boot loaders measure. Everything here reads from a (pointer, length) pair and checks
 * each field against what is left; content that does not decode is reported, never fatal (the
 * log's framing is checked by the parser, and a replay does not depend on event data).
 */
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/bytes.h"
#include "attest/eventlog.h"
#include "basic/util.h"

/* ---- GUIDs ---- */

void cit__guid_format(char out[37], const uint8_t g[16]) {
    snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", cit__le32(g), cit__le16(g + 4),
             cit__le16(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

bool cit__guid_eq(const uint8_t g[16], const char *text) {
    char s[37];
    cit__guid_format(s, g);
    return strcmp(s, text) == 0;
}

#define GUID_GLOBAL "8be4df61-93ca-11d2-aa0d-00e098032b8c"
#define GUID_IMAGE_SECURITY_DB "d719b2cb-3d3a-4596-a3bc-dad00e67656f"
#define GUID_SHIM_LOCK "605dab50-e046-4300-abb6-3dd810dd8b23"
#define GUID_CERT_X509 "a5c059a1-94e4-4aa7-87b5-ab155c2bf072"
#define GUID_CERT_SHA256 "c1c41626-504c-4092-aca9-41f936934328"

static const struct {
    const char *guid, *name;
} known_guids[] = {
    {GUID_GLOBAL, "EFI_GLOBAL_VARIABLE"},
    {GUID_IMAGE_SECURITY_DB, "EFI_IMAGE_SECURITY_DATABASE"},
    {GUID_SHIM_LOCK, "SHIM_LOCK"},
    {GUID_CERT_X509, "EFI_CERT_X509"},
    {GUID_CERT_SHA256, "EFI_CERT_SHA256"},
    {"77fa9abd-0359-4d32-bd60-28f4e78f784b", "Microsoft"},
    {"8868e871-e4f1-11d3-bc22-0080c73c8881", "ACPI 2.0 table"},
    {"eb9d2d30-2d88-11d3-9a16-0090273fc14d", "ACPI 1.0 table"},
    {"eb9d2d31-2d88-11d3-9a16-0090273fc14d", "SMBIOS table"},
    {"f2fd1544-9794-4a2c-992e-e5bbcf20e394", "SMBIOS 3 table"},
    /* GPT partition types */
    {"c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI System"},
    {"21686148-6449-6e6f-744e-656564454649", "BIOS boot"},
    {"0fc63daf-8483-4772-8e79-3d69d8477de4", "Linux filesystem"},
    {"a19d880f-05fc-4d3b-a006-743f0f84911e", "Linux RAID"},
    {"e6d6d379-f507-44c2-a23c-238f2a3df928", "Linux LVM"},
    {"0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "Linux swap"},
    {"4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "Linux root (x86-64)"},
    {"933ac7e1-2eb4-4f13-b844-0e14e2aef915", "Linux home"},
    {"bc13c2ff-59e6-4262-a352-b275fd6f7172", "Linux extended boot"},
    {"ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "Microsoft basic data"},
    {"e3c9e316-0b5c-4db8-817d-f92df00215ae", "Microsoft reserved"},
    {"de94bba4-06d1-4d40-a16a-bfd50179d6ac", "Windows recovery"},
};

static const char *guid_name(const char *text) {
    for (size_t i = 0; i < sizeof known_guids / sizeof known_guids[0]; i++)
        if (strcmp(known_guids[i].guid, text) == 0)
            return known_guids[i].name;
    return NULL;
}

/* ---- text ---- */

/* UTF-16LE (n code units) to UTF-8 into b; unpaired surrogates become U+FFFD. Stops at NUL. */
static void utf16_to_sb(cit__sbuf *b, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cit__le16(p + 2 * i);
        if (c == 0)
            break;
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n) {
            uint32_t lo = cit__le16(p + 2 * (i + 1));
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                i++;
            } else
                c = 0xFFFD;
        } else if (c >= 0xD800 && c <= 0xDFFF)
            c = 0xFFFD;
        if (c < 0x20 || c == 0x7f) /* control characters, shown escaped */
            cit__sb_printf(b, "\\x%02x", c);
        else if (c < 0x80)
            cit__sb_printf(b, "%c", (char)c);
        else if (c < 0x800)
            cit__sb_printf(b, "%c%c", (char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F)));
        else if (c < 0x10000)
            cit__sb_printf(b, "%c%c%c", (char)(0xE0 | (c >> 12)), (char)(0x80 | ((c >> 6) & 0x3F)),
                           (char)(0x80 | (c & 0x3F)));
        else
            cit__sb_printf(b, "%c%c%c%c", (char)(0xF0 | (c >> 18)), (char)(0x80 | ((c >> 12) & 0x3F)),
                           (char)(0x80 | ((c >> 6) & 0x3F)), (char)(0x80 | (c & 0x3F)));
    }
}

static bool printable(uint32_t c) { return (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n' || c == '\r'; }

/* Length of p without trailing NULs. */
static size_t strip_nuls(const uint8_t *p, size_t n) {
    while (n > 0 && p[n - 1] == 0)
        n--;
    return n;
}

/* Printable ASCII (trailing NULs allowed): the length of the text, or 0 when it is not text. */
static size_t ascii_text(const uint8_t *p, size_t n) {
    size_t m = strip_nuls(p, n);
    if (m == 0)
        return 0;
    for (size_t i = 0; i < m; i++)
        if (!printable(p[i]))
            return 0;
    return m;
}

/* UTF-16LE text (even length, no NUL before the trailing ones, no control characters other
 * than tab/newline, at least one code unit): the number of code units, else 0. */
static size_t utf16_text(const uint8_t *p, size_t n) {
    if (n % 2 && n > 2 && p[n - 1] == 0)
        n--; /* seen in systemd-boot's PCR 8 command line: UTF-16 plus one NUL byte */
    if (n < 2 || n % 2)
        return 0;
    size_t units = n / 2;
    while (units > 0 && cit__le16(p + 2 * (units - 1)) == 0)
        units--;
    if (units == 0)
        return 0;
    /* Firmware strings are nearly always ASCII in UCS-2; binary data (a GUID, a hash) read as
     * UTF-16 gives code units all over the BMP. Accept text that is at least half ASCII and
     * has nothing beyond the alphabetic scripts (below U+2000). */
    size_t ascii = 0;
    for (size_t i = 0; i < units; i++) {
        uint16_t c = cit__le16(p + 2 * i);
        if (c < 0x80 && !printable(c))
            return 0;
        if (c >= 0x2000)
            return 0;
        ascii += c < 0x80;
    }
    return 2 * ascii >= units ? units : 0;
}

static int set_new(json_t *o, const char *k, json_t *v) { return json_object_set_new(o, k, v); }

/* Adds key = hex of p (NULL-safe for n == 0). */
static int set_hex(json_t *o, const char *k, const uint8_t *p, size_t n) {
    char *h = cit_hex_encode(p, n);
    if (!h)
        return -1;
    int r = set_new(o, k, json_string(h));
    free(h);
    return r;
}

/* Strings come from outside input: one that is not valid UTF-8 (a certificate name in a legacy
 * string type) is stored with its non-ASCII bytes replaced by '?', never dropped. */
static int set_str(json_t *o, const char *k, const char *s) {
    json_t *v = json_string(s);
    if (!v) {
        char *c = strdup(s);
        if (!c)
            return -1;
        for (char *q = c; *q; q++)
            if ((unsigned char)*q >= 0x80)
                *q = '?';
        v = json_string(c);
        free(c);
    }
    return set_new(o, k, v);
}

static int set_u64hex(json_t *o, const char *k, uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
    return set_str(o, k, b);
}

/* Raw bytes are shown as hex up to RAW_HEX_MAX bytes (an event may have 4 MiB); past that
 * only their size is. */
#define RAW_HEX_MAX 1024
static int set_hex_max(json_t *o, const char *k, const uint8_t *p, size_t n) {
    return n <= RAW_HEX_MAX ? set_hex(o, k, p, n) : 0;
}

/* Event data shown as text when it is text (ASCII or UTF-16), else as hex. Returns the text
 * (or the hex, shortened) in summary. */
static int set_text_or_hex(json_t *o, const uint8_t *p, size_t n, cit__sbuf *summary) {
    char buf[4096];
    cit__sbuf b;
    cit__sb_init(&b, buf, sizeof buf);
    size_t m;
    if ((m = ascii_text(p, n)) > 0) {
        cit__sb_printf(&b, "%.*s", (int)m, (const char *)p);
        cit__sb_printf(summary, "%s", buf);
        return set_str(o, "string", buf) | (b.cut ? set_new(o, "string_truncated", json_true()) : 0);
    }
    if ((m = utf16_text(p, n)) > 0) {
        utf16_to_sb(&b, p, m);
        cit__sb_printf(summary, "%s", buf);
        return set_str(o, "string", buf) | set_str(o, "encoding", "utf-16le") |
               (b.cut ? set_new(o, "string_truncated", json_true()) : 0);
    }
    if (n > 0 && n <= 64) {
        char *h = cit_hex_encode(p, n);
        if (h)
            cit__sb_printf(summary, "%s", h);
        free(h);
    } else if (n > 64)
        cit__sb_printf(summary, "%zu bytes", n);
    return n <= RAW_HEX_MAX ? set_hex(o, "data_hex", p, n) : 0;
}

/* ---- EFI device paths (UEFI spec, chapter 10) ---- */

static void dp_guid(cit__sbuf *b, const char *what, const uint8_t *g) {
    char s[37];
    cit__guid_format(s, g);
    cit__sb_printf(b, "%s(%s)", what, s);
}

/* One node into b. n >= 4 (its whole length). */
static void dp_node(cit__sbuf *b, uint8_t type, uint8_t sub, const uint8_t *p, size_t n) {
    const uint8_t *d = p + 4;
    size_t dl = n - 4;
    if (type == 1 && sub == 1 && dl >= 2)
        cit__sb_printf(b, "Pci(0x%x,0x%x)", d[1], d[0]);
    else if (type == 1 && sub == 4 && dl >= 16)
        dp_guid(b, "VenHw", d);
    else if (type == 1 && sub == 3 && dl >= 20)
        cit__sb_printf(b, "MemoryMapped(0x%x,0x%llx,0x%llx)", cit__le32(d), (unsigned long long)cit__le64(d + 4),
                       (unsigned long long)cit__le64(d + 12));
    else if (type == 2 && sub == 1 && dl >= 8) {
        uint32_t hid = cit__le32(d), uid = cit__le32(d + 4);
        if (hid == 0x0a0341d0)
            cit__sb_printf(b, "PciRoot(0x%x)", uid);
        else if (hid == 0x0a0841d0)
            cit__sb_printf(b, "PcieRoot(0x%x)", uid);
        else if ((hid & 0xffff) == 0x41d0)
            cit__sb_printf(b, "Acpi(PNP%04X,0x%x)", hid >> 16, uid);
        else
            cit__sb_printf(b, "Acpi(0x%08x,0x%x)", hid, uid);
    } else if (type == 3 && sub == 2 && dl >= 4)
        cit__sb_printf(b, "Scsi(0x%x,0x%x)", cit__le16(d), cit__le16(d + 2));
    else if (type == 3 && sub == 5 && dl >= 2)
        cit__sb_printf(b, "USB(0x%x,0x%x)", d[0], d[1]);
    else if (type == 3 && sub == 11 && dl >= 33)
        cit__sb_printf(b, "MAC(%02x%02x%02x%02x%02x%02x,0x%x)", d[0], d[1], d[2], d[3], d[4], d[5], d[32]);
    else if (type == 3 && sub == 12 && dl >= 8)
        cit__sb_printf(b, "IPv4(%u.%u.%u.%u)", d[4], d[5], d[6], d[7]);
    else if (type == 3 && sub == 13)
        cit__sb_printf(b, "IPv6()");
    else if (type == 3 && sub == 18 && dl >= 6)
        cit__sb_printf(b, "Sata(0x%x,0x%x,0x%x)", cit__le16(d), cit__le16(d + 2), cit__le16(d + 4));
    else if (type == 3 && sub == 23 && dl >= 12)
        cit__sb_printf(b, "NVMe(0x%x,%02X-%02X-%02X-%02X-%02X-%02X-%02X-%02X)", cit__le32(d), d[4], d[5], d[6],
                       d[7], d[8], d[9], d[10], d[11]);
    else if (type == 3 && sub == 24) {
        size_t m = ascii_text(d, dl);
        cit__sb_printf(b, "Uri(%.*s)", (int)m, (const char *)d);
    } else if (type == 3 && sub == 10 && dl >= 16)
        dp_guid(b, "VenMsg", d);
    else if (type == 4 && sub == 1 && dl >= 38) {
        uint32_t part = cit__le32(d);
        uint64_t start = cit__le64(d + 4), size = cit__le64(d + 12);
        uint8_t fmt = d[36], sigtype = d[37];
        if (sigtype == 2) {
            char g[37];
            cit__guid_format(g, d + 20);
            cit__sb_printf(b, "HD(%u,GPT,%s,0x%llx,0x%llx)", part, g, (unsigned long long)start,
                           (unsigned long long)size);
        } else if (sigtype == 1)
            cit__sb_printf(b, "HD(%u,MBR,0x%08x,0x%llx,0x%llx)", part, cit__le32(d + 20), (unsigned long long)start,
                           (unsigned long long)size);
        else
            cit__sb_printf(b, "HD(%u,%u,0,0x%llx,0x%llx)", part, fmt, (unsigned long long)start,
                           (unsigned long long)size);
    } else if (type == 4 && sub == 2 && dl >= 4)
        cit__sb_printf(b, "CDROM(0x%x)", cit__le32(d));
    else if (type == 4 && sub == 3 && dl >= 16)
        dp_guid(b, "VenMedia", d);
    else if (type == 4 && sub == 4)
        utf16_to_sb(b, d, dl / 2);
    else if (type == 4 && sub == 6 && dl >= 16)
        dp_guid(b, "FvFile", d);
    else if (type == 4 && sub == 7 && dl >= 16)
        dp_guid(b, "Fv", d);
    else if (type == 4 && sub == 8 && dl >= 20)
        cit__sb_printf(b, "Offset(0x%llx,0x%llx)", (unsigned long long)cit__le64(d + 4),
                       (unsigned long long)cit__le64(d + 12));
    else {
        cit__sb_printf(b, "Path(%u,%u,", type, sub);
        for (size_t i = 0; i < dl && i < 64; i++)
            cit__sb_printf(b, "%02x", d[i]);
        cit__sb_printf(b, "%s)", dl > 64 ? "..." : "");
    }
}

/* The text form of a device path; false (with err) when a node does not fit. */
static bool device_path_text(cit__sbuf *b, const uint8_t *p, size_t n, char *err, size_t err_len) {
    size_t off = 0;
    bool first = true;
    while (off < n) {
        if (n - off < 4) {
            snprintf(err, err_len, "device path node at byte %zu needs 4 bytes, %zu remain", off, n - off);
            return false;
        }
        uint8_t type = p[off], sub = p[off + 1];
        uint16_t len = cit__le16(p + off + 2);
        if (len < 4 || len > n - off) {
            snprintf(err, err_len, "device path node at byte %zu claims %u bytes, %zu remain", off, len, n - off);
            return false;
        }
        if (type == 0x7f && sub == 0xff)
            return true;
        if (type == 0x7f && sub == 0x01) {
            cit__sb_printf(b, ",");
            first = true;
        } else {
            if (!first)
                cit__sb_printf(b, "/");
            dp_node(b, type, sub, p + off, len);
            first = false;
        }
        off += len;
    }
    return true; /* no end node: tolerated, what we have is shown */
}

static int set_device_path(json_t *o, const uint8_t *p, size_t n, cit__sbuf *summary) {
    char buf[2048], err[160];
    cit__sbuf b;
    cit__sb_init(&b, buf, sizeof buf);
    int r = n <= RAW_HEX_MAX ? set_hex(o, "device_path_hex", p, n) : 0;
    if (n == 0)
        return r;
    if (device_path_text(&b, p, n, err, sizeof err)) {
        r |= set_str(o, "device_path", buf);
        cit__sb_printf(summary, "%s", buf);
    } else
        r |= set_str(o, "device_path_error", err);
    return r;
}

/* ---- UEFI_VARIABLE_DATA ---- */

bool cit__uefi_var_parse(cit__uefi_var *v, const uint8_t *p, size_t len, char *err, size_t err_len) {
    if (len < 32) {
        snprintf(err, err_len, "UEFI_VARIABLE_DATA needs 32 bytes, the event has %zu", len);
        return false;
    }
    uint64_t nlen = cit__le64(p + 16), dlen = cit__le64(p + 24);
    size_t rest = len - 32;
    if (nlen > rest / 2) {
        snprintf(err, err_len, "the variable name claims %llu UTF-16 characters, %zu bytes remain",
                 (unsigned long long)nlen, rest);
        return false;
    }
    rest -= (size_t)nlen * 2;
    if (dlen > rest) {
        snprintf(err, err_len, "the variable data claims %llu bytes, %zu remain", (unsigned long long)dlen, rest);
        return false;
    }
    memcpy(v->guid, p, 16);
    cit__sbuf b;
    cit__sb_init(&b, v->name, sizeof v->name);
    utf16_to_sb(&b, p + 32, (size_t)nlen);
    v->data = p + 32 + nlen * 2;
    v->data_len = dlen;
    return true;
}

bool cit__uefi_siglists(const uint8_t *p, size_t len, uint32_t *lists, uint32_t *x509, uint32_t *sha256,
                        uint32_t *other) {
    *lists = *x509 = *sha256 = *other = 0;
    size_t off = 0;
    while (off < len) {
        if (len - off < 28)
            return false;
        const uint8_t *l = p + off;
        uint32_t list_size = cit__le32(l + 16), hdr_size = cit__le32(l + 20), sig_size = cit__le32(l + 24);
        if (list_size < 28 || list_size > len - off || hdr_size > list_size - 28 || sig_size < 16)
            return false;
        uint32_t body = list_size - 28 - hdr_size;
        if (body % sig_size)
            return false;
        uint32_t count = body / sig_size;
        (*lists)++;
        if (cit__guid_eq(l, GUID_CERT_X509))
            *x509 += count;
        else if (cit__guid_eq(l, GUID_CERT_SHA256))
            *sha256 += count;
        else
            *other += count;
        off += list_size;
    }
    return true;
}

bool cit__x509_subject(const uint8_t *der, size_t len, char *out, size_t out_len) {
    const unsigned char *q = der;
    if (len > 65536)
        return false;
    X509 *x = d2i_X509(NULL, &q, (long)len);
    if (!x)
        return false;
    bool ok = false;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *s = NULL;
        long n = BIO_get_mem_data(bio, &s);
        if (n >= 0 && s) {
            snprintf(out, out_len, "%.*s", (int)n, s);
            ok = true;
        }
    }
    BIO_free(bio);
    X509_free(x);
    return ok;
}

/* An EFI_LOAD_OPTION (Boot####): attributes, description, device path. */
static int decode_load_option(json_t *o, const uint8_t *p, size_t n, cit__sbuf *summary) {
    if (n < 6)
        return set_str(o, "load_option_error", "shorter than an EFI_LOAD_OPTION header");
    uint32_t attr = cit__le32(p);
    uint16_t fpl = cit__le16(p + 4);
    size_t off = 6, desc_units = 0;
    while (off + 2 * desc_units + 1 < n && cit__le16(p + off + 2 * desc_units) != 0)
        desc_units++;
    if (off + 2 * desc_units + 2 > n)
        return set_str(o, "load_option_error", "the description is not terminated");
    char desc[512];
    cit__sbuf b;
    cit__sb_init(&b, desc, sizeof desc);
    utf16_to_sb(&b, p + off, desc_units);
    off += 2 * desc_units + 2;
    json_t *lo = json_object();
    int r = set_new(o, "load_option", lo);
    r |= set_new(lo, "attributes", json_integer(attr));
    r |= set_new(lo, "active", json_boolean(attr & 1));
    r |= set_str(lo, "description", desc);
    cit__sb_printf(summary, " \"%s\"", desc);
    if (fpl > n - off)
        return r | set_str(lo, "device_path_error", "the file path list is longer than the option");
    cit__sbuf dummy;
    char tmp[2048];
    cit__sb_init(&dummy, tmp, sizeof tmp);
    r |= set_device_path(lo, p + off, fpl, &dummy);
    if (dummy.len)
        cit__sb_printf(summary, " %s", tmp);
    if (n - off - fpl > 0)
        r |= set_new(lo, "optional_data_size", json_integer((json_int_t)(n - off - fpl)));
    return r;
}

static bool is_boot_option_name(const char *s) {
    if (strncmp(s, "Boot", 4) != 0 || strlen(s) != 8)
        return false;
    for (int i = 4; i < 8; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* What the variable's value means, for the variables people look for. */
static int decode_var_value(json_t *o, const cit__uefi_var *v, uint32_t type, cit__sbuf *summary) {
    char g[37];
    cit__guid_format(g, v->guid);
    bool global = strcmp(g, GUID_GLOBAL) == 0, secdb = strcmp(g, GUID_IMAGE_SECURITY_DB) == 0,
         shim = strcmp(g, GUID_SHIM_LOCK) == 0;
    const uint8_t *d = v->data;
    size_t n = (size_t)v->data_len;
    int r = 0;
    if (global && (strcmp(v->name, "SecureBoot") == 0 || strcmp(v->name, "SetupMode") == 0 ||
                   strcmp(v->name, "AuditMode") == 0 || strcmp(v->name, "DeployedMode") == 0)) {
        if (n == 1) {
            r |= set_new(o, "value", json_integer(d[0]));
            cit__sb_printf(summary, " = %u", d[0]);
        } else if (n == 0)
            cit__sb_printf(summary, " (empty)");
        return r;
    }
    if (type == EV_EFI_VARIABLE_AUTHORITY) {
        /* the signature that allowed an image: an EFI_SIGNATURE_DATA (owner + certificate or
         * hash) from db, or a bare certificate (shim's own vendor certificate, MOK) */
        char subj[512];
        const uint8_t *cert = NULL;
        size_t cl = 0;
        if (n >= 2 && d[0] == 0x30 && d[1] == 0x82) {
            cert = d;
            cl = n;
        } else if (n > 18 && d[16] == 0x30 && d[17] == 0x82) {
            char owner[37];
            cit__guid_format(owner, d);
            r |= set_str(o, "signature_owner", owner);
            cert = d + 16;
            cl = n - 16;
        } else if (n == 16 + 32) {
            char owner[37];
            cit__guid_format(owner, d);
            r |= set_str(o, "signature_owner", owner);
            r |= set_hex(o, "sha256", d + 16, 32);
            cit__sb_printf(summary, " (image hash)");
        }
        if (cert) {
            if (cit__x509_subject(cert, cl, subj, sizeof subj)) {
                r |= set_str(o, "certificate_subject", subj);
                cit__sb_printf(summary, ": %s", subj);
            } else
                r |= set_str(o, "certificate_error", "the certificate does not parse");
        }
        return r;
    }
    if ((global && (strcmp(v->name, "PK") == 0 || strcmp(v->name, "KEK") == 0)) ||
        (secdb && (strcmp(v->name, "db") == 0 || strcmp(v->name, "dbx") == 0 || strcmp(v->name, "dbt") == 0 ||
                   strcmp(v->name, "dbr") == 0)) ||
        (shim && strncmp(v->name, "MokList", 7) == 0)) {
        uint32_t lists, x509, sha256, other;
        if (n == 0) {
            cit__sb_printf(summary, " (empty)");
            return 0;
        }
        if (cit__uefi_siglists(d, n, &lists, &x509, &sha256, &other)) {
            json_t *s = json_object();
            r |= set_new(o, "signatures", s);
            r |= set_new(s, "lists", json_integer(lists));
            r |= set_new(s, "x509", json_integer(x509));
            r |= set_new(s, "sha256", json_integer(sha256));
            r |= set_new(s, "other", json_integer(other));
            cit__sb_printf(summary, ": %u X.509, %u SHA-256%s", x509, sha256, other ? ", other" : "");
        } else
            r |= set_str(o, "signatures_error", "not a valid EFI_SIGNATURE_LIST sequence");
        return r;
    }
    if (global && strcmp(v->name, "BootOrder") == 0 && n % 2 == 0) {
        json_t *a = json_array();
        r |= set_new(o, "boot_order", a);
        cit__sb_printf(summary, ":");
        for (size_t i = 0; i + 1 < n; i += 2) {
            char s[12];
            snprintf(s, sizeof s, "Boot%04X", cit__le16(d + i));
            r |= json_array_append_new(a, json_string(s));
            cit__sb_printf(summary, " %04X", cit__le16(d + i));
        }
        return r;
    }
    if (global && (strcmp(v->name, "BootCurrent") == 0 || strcmp(v->name, "BootNext") == 0) && n == 2) {
        char s[12];
        snprintf(s, sizeof s, "Boot%04X", cit__le16(d));
        cit__sb_printf(summary, " = %s", s);
        return set_str(o, "value", s);
    }
    if (global && is_boot_option_name(v->name))
        return decode_load_option(o, d, n, summary);
    if (shim && strcmp(v->name, "SbatLevel") == 0) {
        size_t m = ascii_text(d, n);
        if (m) {
            char s[1024];
            snprintf(s, sizeof s, "%.*s", (int)(m < sizeof s - 1 ? m : sizeof s - 1), (const char *)d);
            r |= set_str(o, "string", s);
        }
    }
    return r;
}

static int decode_variable(json_t *o, const cit__evl_event *ev, cit__sbuf *summary) {
    cit__uefi_var v;
    char err[160];
    if (!cit__uefi_var_parse(&v, ev->data, ev->data_len, err, sizeof err)) {
        cit__sb_printf(summary, "(undecodable: %s)", err);
        return set_str(o, "decode_error", err) |
               (ev->data_len <= RAW_HEX_MAX ? set_hex(o, "data_hex", ev->data, ev->data_len) : 0);
    }
    char g[37];
    cit__guid_format(g, v.guid);
    const char *gn = guid_name(g);
    int r = set_str(o, "variable_guid", g);
    if (gn)
        r |= set_str(o, "variable_guid_name", gn);
    r |= set_str(o, "variable", v.name);
    r |= set_new(o, "variable_data_size", json_integer((json_int_t)v.data_len));
    cit__sb_printf(summary, "%s", v.name);
    if (v.data_len <= RAW_HEX_MAX)
        r |= set_hex(o, "variable_data_hex", v.data, (size_t)v.data_len);
    r |= decode_var_value(o, &v, ev->type, summary);
    size_t used = (size_t)(v.data - ev->data) + (size_t)v.data_len;
    if (used < ev->data_len)
        r |= set_new(o, "trailing_bytes", json_integer((json_int_t)(ev->data_len - used)));
    return r;
}

/* UEFI_IMAGE_LOAD_EVENT */
static int decode_image(json_t *o, const cit__evl_event *ev, cit__sbuf *summary) {
    const uint8_t *p = ev->data;
    size_t n = ev->data_len;
    if (n < 32) {
        char err[96];
        snprintf(err, sizeof err, "UEFI_IMAGE_LOAD_EVENT needs 32 bytes, the event has %zu", n);
        cit__sb_printf(summary, "(undecodable: %s)", err);
        return set_str(o, "decode_error", err) | set_hex(o, "data_hex", p, n);
    }
    uint64_t dpl = cit__le64(p + 24);
    int r = set_u64hex(o, "image_location", cit__le64(p));
    r |= set_new(o, "image_length", json_integer((json_int_t)cit__le64(p + 8)));
    r |= set_u64hex(o, "image_link_time_address", cit__le64(p + 16));
    r |= set_new(o, "device_path_length", json_integer((json_int_t)(dpl > INT64_MAX ? INT64_MAX : dpl)));
    size_t rest = n - 32;
    if (dpl > rest) {
        char err[128];
        snprintf(err, sizeof err, "the device path claims %llu bytes, %zu remain", (unsigned long long)dpl, rest);
        cit__sb_printf(summary, "(device path: %s)", err);
        return r | set_str(o, "decode_error", err) | set_hex_max(o, "device_path_hex", p + 32, rest);
    }
    if (dpl == 0)
        cit__sb_printf(summary, "image of %llu bytes, no device path", (unsigned long long)cit__le64(p + 8));
    r |= set_device_path(o, p + 32, (size_t)dpl, summary);
    if (rest > dpl) {
        r |= set_new(o, "trailing_bytes", json_integer((json_int_t)(rest - dpl)));
        r |= set_hex_max(o, "trailing_hex", p + 32 + dpl, rest - (size_t)dpl);
    }
    return r;
}

/* UEFI_GPT_DATA: the partition table header, then NumberOfPartitions entries. */
static int decode_gpt(json_t *o, const cit__evl_event *ev, cit__sbuf *summary) {
    const uint8_t *p = ev->data;
    size_t n = ev->data_len;
    char err[128] = "";
    if (n < 92 + 8)
        snprintf(err, sizeof err, "UEFI_GPT_DATA needs 100 bytes, the event has %zu", n);
    else if (memcmp(p, "EFI PART", 8) != 0)
        snprintf(err, sizeof err, "the header signature is not \"EFI PART\"");
    if (err[0]) {
        cit__sb_printf(summary, "(undecodable: %s)", err);
        return set_str(o, "decode_error", err) | (n <= RAW_HEX_MAX ? set_hex(o, "data_hex", p, n) : 0);
    }
    char g[37];
    cit__guid_format(g, p + 56);
    uint32_t entry_size = cit__le32(p + 84);
    uint64_t count = cit__le64(p + 92);
    int r = set_str(o, "disk_guid", g);
    r |= set_new(o, "partition_entry_size", json_integer(entry_size));
    r |= set_new(o, "partition_count", json_integer((json_int_t)(count > INT64_MAX ? INT64_MAX : count)));
    cit__sb_printf(summary, "disk %s, %llu partitions", g, (unsigned long long)count);
    size_t rest = n - 100;
    if (entry_size < 128 || (count > 0 && count > rest / entry_size)) {
        snprintf(err, sizeof err, "%llu partition entries of %u bytes do not fit in the %zu bytes left",
                 (unsigned long long)count, entry_size, rest);
        return r | set_str(o, "decode_error", err);
    }
    json_t *parts = json_array();
    r |= set_new(o, "partitions", parts);
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *e = p + 100 + i * entry_size;
        json_t *x = json_object();
        char t[37], u[37], name[160];
        cit__guid_format(t, e);
        cit__guid_format(u, e + 16);
        cit__sbuf nb;
        cit__sb_init(&nb, name, sizeof name);
        utf16_to_sb(&nb, e + 56, 36);
        const char *tn = guid_name(t);
        r |= json_array_append_new(parts, x);
        r |= set_str(x, "type_guid", t);
        if (tn)
            r |= set_str(x, "type", tn);
        r |= set_str(x, "unique_guid", u);
        r |= set_new(x, "first_lba", json_integer((json_int_t)(cit__le64(e + 32) & INT64_MAX)));
        r |= set_new(x, "last_lba", json_integer((json_int_t)(cit__le64(e + 40) & INT64_MAX)));
        r |= set_str(x, "name", name);
    }
    return r;
}

/* UEFI_PLATFORM_FIRMWARE_BLOB: base and length. */
static int decode_blob(json_t *o, const uint8_t *p, size_t n, cit__sbuf *summary) {
    int r = set_u64hex(o, "blob_base", cit__le64(p));
    r |= set_new(o, "blob_length", json_integer((json_int_t)(cit__le64(p + 8) & INT64_MAX)));
    cit__sb_printf(summary, "base 0x%llx, length 0x%llx", (unsigned long long)cit__le64(p),
                   (unsigned long long)cit__le64(p + 8));
    return r;
}

/* A one-byte-length-prefixed ASCII description (BLOB2, HANDOFF_TABLES2). Returns bytes used
 * or 0 when it does not fit. */
static size_t decode_desc(json_t *o, const uint8_t *p, size_t n, cit__sbuf *summary, int *r) {
    if (n < 1 || p[0] > n - 1)
        return 0;
    size_t m = ascii_text(p + 1, p[0]);
    char s[260];
    if (m)
        snprintf(s, sizeof s, "%.*s", (int)m, (const char *)p + 1);
    else
        s[0] = 0;
    *r |= set_str(o, "description", s);
    cit__sb_printf(summary, "%s ", s);
    return 1 + (size_t)p[0];
}

static int decode_handoff(json_t *o, const uint8_t *p, size_t n, cit__sbuf *summary) {
    if (n < 8)
        return set_str(o, "decode_error", "UEFI_HANDOFF_TABLE_POINTERS needs 8 bytes");
    uint64_t count = cit__le64(p);
    if (count > (n - 8) / 24) {
        char err[128];
        snprintf(err, sizeof err, "%llu tables of 24 bytes do not fit in %zu bytes", (unsigned long long)count, n - 8);
        return set_str(o, "decode_error", err);
    }
    json_t *a = json_array();
    int r = set_new(o, "tables", a);
    cit__sb_printf(summary, "%llu tables:", (unsigned long long)count);
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *t = p + 8 + i * 24;
        char g[37];
        cit__guid_format(g, t);
        const char *gn = guid_name(g);
        json_t *x = json_object();
        r |= json_array_append_new(a, x);
        r |= set_str(x, "vendor_guid", g);
        if (gn)
            r |= set_str(x, "name", gn);
        r |= set_u64hex(x, "address", cit__le64(t + 16));
        cit__sb_printf(summary, " %s", gn ? gn : g);
    }
    return r;
}

/* EV_NO_ACTION: the Spec ID event, StartupLocality, or another signed structure. */
static int decode_no_action(json_t *o, const cit__evl_event *ev, cit__sbuf *summary) {
    const uint8_t *p = ev->data;
    size_t n = ev->data_len;
    if (n >= 16 && memcmp(p, "Spec ID Event", 13) == 0) {
        char sig[17];
        snprintf(sig, sizeof sig, "%.*s", (int)ascii_text(p, 16), (const char *)p);
        int r = set_str(o, "signature", sig);
        cit__sb_printf(summary, "%s", sig);
        if (n >= 24)
            r |= set_new(o, "platform_class", json_integer(cit__le32(p + 16)));
        if (n >= 24) {
            char v[16];
            snprintf(v, sizeof v, "%u.%u", p[21], p[20]);
            r |= set_str(o, "spec_version", v);
            r |= set_new(o, "spec_errata", json_integer(p[22]));
            r |= set_new(o, "uintn_size", json_integer(p[23]));
        }
        if (strcmp(sig, "Spec ID Event03") == 0 && n >= 28) {
            uint32_t na = cit__le32(p + 24);
            json_t *a = json_array();
            r |= set_new(o, "algorithms", a);
            for (uint32_t i = 0; i < na && 28 + 4 * (size_t)i + 4 <= n; i++) {
                json_t *x = json_object();
                r |= json_array_append_new(a, x);
                r |= set_new(x, "algorithm_id", json_integer(cit__le16(p + 28 + 4 * i)));
                r |= set_new(x, "digest_size", json_integer(cit__le16(p + 30 + 4 * i)));
            }
            size_t vo = 28 + 4 * (size_t)na;
            if (na <= CIT_EVENTLOG_MAX_ALGS && vo < n && p[vo] <= n - vo - 1)
                r |= set_hex(o, "vendor_info_hex", p + vo + 1, p[vo]);
        }
        return r;
    }
    if (n >= 17 && memcmp(p, "StartupLocality\0", 16) == 0) {
        cit__sb_printf(summary, "StartupLocality %u", p[16]);
        return set_str(o, "signature", "StartupLocality") | set_new(o, "startup_locality", json_integer(p[16]));
    }
    if (n >= 16) {
        size_t m = ascii_text(p, 16);
        if (m >= 4) {
            char sig[17];
            snprintf(sig, sizeof sig, "%.*s", (int)m, (const char *)p);
            cit__sb_printf(summary, "%s", sig);
            return set_str(o, "signature", sig) | (n <= RAW_HEX_MAX ? set_hex(o, "data_hex", p, n) : 0);
        }
    }
    return set_text_or_hex(o, p, n, summary);
}

int cit__evl_decode(json_t *o, const cit__evl_event *ev, char *summary_buf, size_t summary_len) {
    cit__sbuf summary;
    cit__sb_init(&summary, summary_buf, summary_len);
    const uint8_t *p = ev->data;
    size_t n = ev->data_len;
    int r = 0;
    switch (ev->type) {
    case EV_EFI_VARIABLE_DRIVER_CONFIG:
    case EV_EFI_VARIABLE_BOOT:
    case EV_EFI_VARIABLE_BOOT2:
    case EV_EFI_VARIABLE_AUTHORITY:
        r = decode_variable(o, ev, &summary);
        break;
    case EV_EFI_BOOT_SERVICES_APPLICATION:
    case EV_EFI_BOOT_SERVICES_DRIVER:
    case EV_EFI_RUNTIME_SERVICES_DRIVER:
        r = decode_image(o, ev, &summary);
        break;
    case EV_EFI_GPT_EVENT:
    case EV_EFI_GPT_EVENT2:
        r = decode_gpt(o, ev, &summary);
        break;
    case EV_SEPARATOR:
        if (n == 4) {
            uint32_t v = cit__le32(p);
            char s[16];
            snprintf(s, sizeof s, "0x%08x", v);
            r = set_str(o, "value", s);
            cit__sb_printf(&summary, "%s%s", s, v == 0xffffffffu ? " (error)" : "");
        } else
            r = set_text_or_hex(o, p, n, &summary);
        break;
    case EV_POST_CODE:
    case EV_S_CRTM_CONTENTS:
    case EV_EFI_PLATFORM_FIRMWARE_BLOB:
        if (n == 16)
            r = decode_blob(o, p, n, &summary);
        else
            r = set_text_or_hex(o, p, n, &summary);
        break;
    case EV_EFI_PLATFORM_FIRMWARE_BLOB2: {
        size_t used = decode_desc(o, p, n, &summary, &r);
        if (used && n - used == 16)
            r |= decode_blob(o, p + used, 16, &summary);
        else
            r |= set_str(o, "decode_error", "not a UEFI_PLATFORM_FIRMWARE_BLOB2") | set_hex_max(o, "data_hex", p, n);
        break;
    }
    case EV_EFI_HANDOFF_TABLES:
        r = decode_handoff(o, p, n, &summary);
        break;
    case EV_EFI_HANDOFF_TABLES2: {
        size_t used = decode_desc(o, p, n, &summary, &r);
        if (used)
            r |= decode_handoff(o, p + used, n - used, &summary);
        else
            r |= set_str(o, "decode_error", "not a UEFI_HANDOFF_TABLE_POINTERS2");
        break;
    }
    case EV_NO_ACTION:
        r = decode_no_action(o, ev, &summary);
        break;
    case EV_EVENT_TAG:
        if (n >= 8 && cit__le32(p + 4) <= n - 8) {
            uint32_t id = cit__le32(p), len = cit__le32(p + 4);
            char s[16];
            snprintf(s, sizeof s, "0x%08x", id);
            r = set_str(o, "tag_id", s);
            cit__sb_printf(&summary, "tag %s: ", s);
            r |= set_text_or_hex(o, p + 8, len, &summary);
        } else
            r = set_str(o, "decode_error", "not a TCG_PCClientTaggedEvent") | set_hex_max(o, "data_hex", p, n);
        break;
    case EV_S_CRTM_VERSION:
        if (utf16_text(p, n) == 0 && ascii_text(p, n) == 0 && n == 16) {
            char g[37];
            cit__guid_format(g, p);
            r = set_str(o, "guid", g);
            cit__sb_printf(&summary, "%s", g);
        } else
            r = set_text_or_hex(o, p, n, &summary);
        break;
    case EV_COMPACT_HASH:
    case EV_PLATFORM_CONFIG_FLAGS:
    case EV_CPU_MICROCODE:
    case EV_TABLE_OF_DEVICES:
    case EV_NONHOST_CODE:
    case EV_NONHOST_CONFIG:
    case EV_NONHOST_INFO:
    case EV_EFI_SPDM_FIRMWARE_BLOB:
    case EV_EFI_SPDM_FIRMWARE_CONFIG:
    case EV_PREBOOT_CERT:
        if (n <= RAW_HEX_MAX)
            r = set_hex(o, "data_hex", p, n);
        if (n <= 64 && n > 0) {
            char *h = cit_hex_encode(p, n);
            if (h)
                cit__sb_printf(&summary, "%s", h);
            free(h);
        } else if (n)
            cit__sb_printf(&summary, "%zu bytes", n);
        break;
    default: /* EV_ACTION, EV_EFI_ACTION, EV_IPL, EV_OMIT_BOOT_DEVICE_EVENTS, EV_EFI_HCRTM_EVENT, unknown */
        r = set_text_or_hex(o, p, n, &summary);
        break;
    }
    return r ? -1 : 0;
}
