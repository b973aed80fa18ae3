/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TCG PC Client event logs: the bounded parser, replay into PCR values, the comparison a
 * verifier needs, and `attest eventlog show|replay`. Formats and rules: docs/attestation.md.
 */
#include "attest/eventlog.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/bytes.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/citadel.h"
#include "core/keys.h"
#include "crypto/crypto.h"

static const struct {
    uint32_t type;
    const char *name;
} type_names[] = {
    {EV_PREBOOT_CERT, "EV_PREBOOT_CERT"},
    {EV_POST_CODE, "EV_POST_CODE"},
    {0x2, "EV_UNUSED"},
    {EV_NO_ACTION, "EV_NO_ACTION"},
    {EV_SEPARATOR, "EV_SEPARATOR"},
    {EV_ACTION, "EV_ACTION"},
    {EV_EVENT_TAG, "EV_EVENT_TAG"},
    {EV_S_CRTM_CONTENTS, "EV_S_CRTM_CONTENTS"},
    {EV_S_CRTM_VERSION, "EV_S_CRTM_VERSION"},
    {EV_CPU_MICROCODE, "EV_CPU_MICROCODE"},
    {EV_PLATFORM_CONFIG_FLAGS, "EV_PLATFORM_CONFIG_FLAGS"},
    {EV_TABLE_OF_DEVICES, "EV_TABLE_OF_DEVICES"},
    {EV_COMPACT_HASH, "EV_COMPACT_HASH"},
    {EV_IPL, "EV_IPL"},
    {EV_IPL_PARTITION_DATA, "EV_IPL_PARTITION_DATA"},
    {EV_NONHOST_CODE, "EV_NONHOST_CODE"},
    {EV_NONHOST_CONFIG, "EV_NONHOST_CONFIG"},
    {EV_NONHOST_INFO, "EV_NONHOST_INFO"},
    {EV_OMIT_BOOT_DEVICE_EVENTS, "EV_OMIT_BOOT_DEVICE_EVENTS"},
    {EV_POST_CODE2, "EV_POST_CODE2"},
    {EV_EFI_VARIABLE_DRIVER_CONFIG, "EV_EFI_VARIABLE_DRIVER_CONFIG"},
    {EV_EFI_VARIABLE_BOOT, "EV_EFI_VARIABLE_BOOT"},
    {EV_EFI_BOOT_SERVICES_APPLICATION, "EV_EFI_BOOT_SERVICES_APPLICATION"},
    {EV_EFI_BOOT_SERVICES_DRIVER, "EV_EFI_BOOT_SERVICES_DRIVER"},
    {EV_EFI_RUNTIME_SERVICES_DRIVER, "EV_EFI_RUNTIME_SERVICES_DRIVER"},
    {EV_EFI_GPT_EVENT, "EV_EFI_GPT_EVENT"},
    {EV_EFI_ACTION, "EV_EFI_ACTION"},
    {EV_EFI_PLATFORM_FIRMWARE_BLOB, "EV_EFI_PLATFORM_FIRMWARE_BLOB"},
    {EV_EFI_HANDOFF_TABLES, "EV_EFI_HANDOFF_TABLES"},
    {EV_EFI_PLATFORM_FIRMWARE_BLOB2, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"},
    {EV_EFI_HANDOFF_TABLES2, "EV_EFI_HANDOFF_TABLES2"},
    {EV_EFI_VARIABLE_BOOT2, "EV_EFI_VARIABLE_BOOT2"},
    {EV_EFI_GPT_EVENT2, "EV_EFI_GPT_EVENT2"},
    {EV_EFI_HCRTM_EVENT, "EV_EFI_HCRTM_EVENT"},
    {EV_EFI_VARIABLE_AUTHORITY, "EV_EFI_VARIABLE_AUTHORITY"},
    {EV_EFI_SPDM_FIRMWARE_BLOB, "EV_EFI_SPDM_FIRMWARE_BLOB"},
    {EV_EFI_SPDM_FIRMWARE_CONFIG, "EV_EFI_SPDM_FIRMWARE_CONFIG"},
    {0x800000E3u, "EV_EFI_SPDM_DEVICE_POLICY"},
    {0x800000E4u, "EV_EFI_SPDM_DEVICE_AUTHORITY"},
};

const char *cit__eventlog_type_name(uint32_t type) {
    for (size_t i = 0; i < ELEMENTSOF(type_names); i++)
        if (type_names[i].type == type)
            return type_names[i].name;
    return NULL;
}

/* Hash algorithms a log may name (TCG algorithm registry) and their digest sizes. */
static const struct {
    uint16_t alg;
    uint16_t size;
    const char *name;
} known_algs[] = {
    {0x0004, 20, "sha1"},     {0x000B, 32, "sha256"},   {0x000C, 48, "sha384"},   {0x000D, 64, "sha512"},
    {0x0012, 32, "sm3_256"},  {0x0027, 32, "sha3_256"}, {0x0028, 48, "sha3_384"}, {0x0029, 64, "sha3_512"},
};

static const char *alg_name(uint16_t alg, char buf[16]) {
    for (size_t i = 0; i < ELEMENTSOF(known_algs); i++)
        if (known_algs[i].alg == alg)
            return known_algs[i].name;
    snprintf(buf, 16, "alg_0x%04x", alg);
    return buf;
}

static int known_alg_size(uint16_t alg) {
    for (size_t i = 0; i < ELEMENTSOF(known_algs); i++)
        if (known_algs[i].alg == alg)
            return known_algs[i].size;
    return -1;
}

/* ---- the parser ---- */

__attribute__((format(printf, 4, 5))) static int malformed(const cit__evl_parser *p, uint32_t index, size_t offset,
                                                         const char *fmt, ...) {
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    cit_error_set(CIT_E_EVENTLOG_MALFORMED, "malformed event log: event %u at offset %zu: %s", index, offset, why);
    cit_error_cause("events are numbered from 0; event %u starts at byte %zu of the %zu-byte log", index, offset,
                    p->len);
    cit_error_context("event_index", "%u", index);
    cit_error_context("offset", "%zu", offset);
    cit_error_context("format", "%s", p->crypto_agile ? "crypto-agile (TCG_PCR_EVENT2)" : "SHA-1 (TCG_PCR_EVENT)");
    return CIT_E_EVENTLOG_MALFORMED;
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Checks the Spec ID Event03 structure in the first event's data and fills the algorithm
 * table. Everything, including the vendor information, must lie within the event's data. */
static int parse_specid(cit__evl_parser *p, const uint8_t *d, uint32_t n) {
    if (n < 28 + 4 + 1)
        return malformed(p, 0, 0, "the Spec ID event has %u bytes of data, at least 33 are needed", n);
    uint32_t na = cit__le32(d + 24);
    if (na == 0 || na > CIT_EVENTLOG_MAX_ALGS)
        return malformed(p, 0, 0, "the Spec ID event lists %u algorithms (1-%d are supported)", na,
                         CIT_EVENTLOG_MAX_ALGS);
    size_t vo = 28 + 4 * (size_t)na;
    if (vo + 1 > n)
        return malformed(p, 0, 0, "the Spec ID event's %u algorithm entries do not fit in its %u bytes", na, n);
    if (d[vo] > n - vo - 1)
        return malformed(p, 0, 0,
                         "the Spec ID event's vendorInfoSize is %u but only %zu bytes of its %u-byte data remain",
                         d[vo], (size_t)n - vo - 1, n);
    for (uint32_t i = 0; i < na; i++) {
        uint16_t alg = cit__le16(d + 28 + 4 * i), size = cit__le16(d + 30 + 4 * i);
        int ks = known_alg_size(alg);
        if (ks >= 0 && ks != size)
            return malformed(p, 0, 0, "the Spec ID event gives algorithm 0x%04x a digest size of %u (it is %d)", alg,
                             size, ks);
        if (size == 0 || size > CIT_EVENTLOG_MAX_DIGEST)
            return malformed(p, 0, 0, "the Spec ID event gives algorithm 0x%04x a digest size of %u", alg, size);
        for (uint32_t j = 0; j < i; j++)
            if (p->algs[j].alg == alg)
                return malformed(p, 0, 0, "the Spec ID event lists algorithm 0x%04x twice", alg);
        p->algs[i].alg = alg;
        p->algs[i].size = size;
    }
    p->nalgs = na;
    return 0;
}

int cit__evl_open(cit__evl_parser *p, const uint8_t *buf, size_t len) {
    memset(p, 0, sizeof *p);
    p->buf = buf;
    p->len = len;
    if (len > CIT_EVENTLOG_MAX) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "the event log is larger than %u bytes (%zu)", CIT_EVENTLOG_MAX, len);
        cit_error_context("limit_bytes", "%u", CIT_EVENTLOG_MAX);
        return CIT_E_INPUT_TOO_LARGE;
    }
    if (len == 0) {
        cit_error_set(CIT_E_INPUT_EMPTY, "the event log is empty");
        return CIT_E_INPUT_EMPTY;
    }
    p->nalgs = 1;
    p->algs[0].alg = 0x0004;
    p->algs[0].size = 20;
    if (len < 32)
        return malformed(p, 0, 0, "the first event header needs 32 bytes, the log has %zu", len);
    uint32_t type = cit__le32(buf + 4), dsize = cit__le32(buf + 28);
    if (all_zero(buf, 32))
        return malformed(p, 0, 0, "the log starts with an all-zero event header (an empty log area, not a log)");
    /* crypto-agile when the first event is the Spec ID Event03 (PFP 10.4.5.1) */
    if (type == EV_NO_ACTION && len >= 48 && memcmp(buf + 32, "Spec ID Event03", 16) == 0) {
        p->crypto_agile = true;
        if (dsize > len - 32)
            return malformed(p, 0, 0, "the Spec ID event claims %u bytes of data but only %zu remain", dsize, len - 32);
        if (cit__le32(buf) != 0)
            return malformed(p, 0, 0, "the Spec ID event is recorded for PCR %u, not 0", cit__le32(buf));
        if (!all_zero(buf + 8, 20))
            return malformed(p, 0, 0, "the Spec ID event's digest is not all zeros");
        int r = parse_specid(p, buf + 32, dsize);
        if (r < 0)
            return r;
        p->specid = buf + 32;
        p->specid_len = dsize;
    }
    return 0;
}

int cit__evl_next(cit__evl_parser *p, cit__evl_event *ev) {
    if (p->done || p->pos >= p->len)
        return 0;
    const uint8_t *q = p->buf + p->pos;
    size_t rem = p->len - p->pos, off = p->pos;
    uint32_t index = p->next_index;
    /* Firmware that hands over its whole log area leaves zeros after the last event; an all-zero
     * remainder is padding, not events (Linux stops at the same point). At least 8 bytes: every
     * real event has a non-zero type in its first 8, so a log cut inside an event that starts
     * with zeros (PCR 0) is still reported as cut. */
    if (index > 0 && rem >= 8 && all_zero(q, rem)) {
        p->trailing_zeros = rem;
        p->done = true;
        return 0;
    }
    memset(ev, 0, sizeof *ev);
    ev->index = index;
    ev->offset = off;
    size_t hdr;
    if (!p->crypto_agile || index == 0) {
        /* TCG_PCR_EVENT: pcrIndex, eventType, digest[20], eventDataSize, event */
        if (rem < 32)
            return malformed(p, index, off, "the event header needs 32 bytes, only %zu remain", rem);
        ev->pcr = cit__le32(q);
        ev->type = cit__le32(q + 4);
        ev->ndigests = 1;
        ev->digests[0].alg = 0x0004;
        ev->digests[0].size = 20;
        ev->digests[0].d = q + 8;
        hdr = 28;
    } else {
        /* TCG_PCR_EVENT2: pcrIndex, eventType, TPML_DIGEST_VALUES, eventSize, event */
        if (rem < 12)
            return malformed(p, index, off, "the event header needs at least 12 bytes, only %zu remain", rem);
        ev->pcr = cit__le32(q);
        ev->type = cit__le32(q + 4);
        uint32_t count = cit__le32(q + 8);
        if (count > p->nalgs)
            return malformed(p, index, off, "the event has %u digests but the Spec ID event declares %u algorithms",
                             count, p->nalgs);
        hdr = 12;
        uint32_t seen = 0;
        for (uint32_t i = 0; i < count; i++) {
            if (rem - hdr < 2)
                return malformed(p, index, off, "digest %u's algorithm needs 2 bytes, only %zu remain", i, rem - hdr);
            uint16_t alg = cit__le16(q + hdr);
            uint32_t k;
            for (k = 0; k < p->nalgs; k++)
                if (p->algs[k].alg == alg)
                    break;
            if (k == p->nalgs)
                return malformed(p, index, off, "digest %u uses algorithm 0x%04x, which the Spec ID event does not declare",
                                 i, alg);
            if (seen & (1u << k))
                return malformed(p, index, off, "the event has two digests for algorithm 0x%04x", alg);
            seen |= 1u << k;
            hdr += 2;
            uint16_t size = p->algs[k].size;
            if (rem - hdr < size)
                return malformed(p, index, off, "digest %u needs %u bytes, only %zu remain", i, size, rem - hdr);
            ev->digests[i].alg = alg;
            ev->digests[i].size = size;
            ev->digests[i].d = q + hdr;
            hdr += size;
        }
        ev->ndigests = count;
    }
    if (rem - hdr < 4)
        return malformed(p, index, off, "the event size field needs 4 bytes, only %zu remain", rem - hdr);
    uint32_t dsize = cit__le32(q + hdr);
    hdr += 4;
    if (dsize > CIT_EVENTLOG_MAX_EVENT)
        return malformed(p, index, off, "the event claims %u bytes of data (the limit is %u)", dsize,
                         CIT_EVENTLOG_MAX_EVENT);
    if (dsize > rem - hdr)
        return malformed(p, index, off, "the event claims %u bytes of data but only %zu remain", dsize, rem - hdr);
    if (ev->type != EV_NO_ACTION && ev->pcr >= CIT_EVENTLOG_PCRS)
        return malformed(p, index, off, "the event extends PCR %u (PCRs are 0-23)", ev->pcr);
    ev->data = q + hdr;
    ev->data_len = dsize;
    ev->size = hdr + dsize;
    p->pos += ev->size;
    p->next_index++;
    return 1;
}

/* ---- replay ---- */

static int extend(EVP_MD_CTX *mctx, const EVP_MD *md, uint8_t *pcr, const uint8_t *d, size_t size) {
    unsigned int outl = 0;
    if (EVP_DigestInit_ex(mctx, md, NULL) != 1 || EVP_DigestUpdate(mctx, pcr, size) != 1 ||
        EVP_DigestUpdate(mctx, d, size) != 1 || EVP_DigestFinal_ex(mctx, pcr, &outl) != 1 || outl != size)
        return cit__openssl_error(CIT_E_CRYPTO, "PCR extend (hash) failed");
    return 0;
}

static bool is_startup_locality(const cit__evl_event *ev) {
    return ev->type == EV_NO_ACTION && ev->data_len >= 17 && memcmp(ev->data, "StartupLocality\0", 16) == 0;
}

int cit__eventlog_replay_buf(cit__evl_replay *out, const uint8_t *buf, size_t len) {
    cit__evl_parser p;
    int r = cit__evl_open(&p, buf, len);
    if (r < 0)
        return r;
    cit__evl_replay *rp = calloc(1, sizeof *rp);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    const EVP_MD *mds[CIT_EVENTLOG_MAX_ALGS] = {0};
    if (!rp || !mctx) {
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        goto done;
    }
    rp->crypto_agile = p.crypto_agile;
    rp->startup_locality = -1;
    rp->nbanks = p.nalgs;
    for (uint32_t b = 0; b < p.nalgs; b++) {
        cit__evl_bank *bk = &rp->banks[b];
        bk->alg = p.algs[b].alg;
        bk->size = p.algs[b].size;
        if (cit__hash_size(bk->alg) == bk->size)
            mds[b] = cit__hash_md(bk->alg);
        bk->computable = mds[b] != NULL;
        /* PCRs 17-22 reset to all ones at TPM start (dynamic-launch PCRs, PC Client PTP) */
        for (int i = 17; i <= 22; i++)
            memset(bk->pcr[i], 0xff, bk->size);
    }
    uint32_t pcr0_extended = 0;
    cit__evl_event ev;
    while ((r = cit__evl_next(&p, &ev)) > 0) {
        rp->nevents++;
        if (ev.type == EV_NO_ACTION) {
            /* not extended; StartupLocality gives PCR 0's start value (TPM 2.0 part 1, 34.2) */
            if (is_startup_locality(&ev) && ev.pcr == 0 && !rp->hcrtm) {
                if (pcr0_extended) {
                    r = malformed(&p, ev.index, ev.offset, "a StartupLocality event after PCR 0 was extended");
                    goto done;
                }
                rp->startup_locality = ev.data[16];
                for (uint32_t b = 0; b < rp->nbanks; b++) {
                    memset(rp->banks[b].pcr[0], 0, rp->banks[b].size);
                    rp->banks[b].pcr[0][rp->banks[b].size - 1] = ev.data[16];
                    rp->banks[b].touched |= 1u;
                }
            }
            continue;
        }
        if (ev.type == EV_EFI_HCRTM_EVENT && ev.pcr == 0 && !pcr0_extended && !rp->hcrtm) {
            /* an H-CRTM sequence starts PCR 0 at 4 (TPM 2.0 part 1, 34.3) */
            rp->hcrtm = true;
            for (uint32_t b = 0; b < rp->nbanks; b++) {
                memset(rp->banks[b].pcr[0], 0, rp->banks[b].size);
                rp->banks[b].pcr[0][rp->banks[b].size - 1] = 4;
            }
        }
        rp->nextended++;
        if (ev.pcr == 0)
            pcr0_extended = 1;
        for (uint32_t i = 0; i < ev.ndigests; i++) {
            uint32_t b;
            for (b = 0; b < rp->nbanks; b++)
                if (rp->banks[b].alg == ev.digests[i].alg)
                    break;
            cit__evl_bank *bk = &rp->banks[b];
            bk->touched |= 1u << ev.pcr;
            if (!mds[b])
                continue;
            r = extend(mctx, mds[b], bk->pcr[ev.pcr], ev.digests[i].d, bk->size);
            if (r < 0)
                goto done;
        }
    }
    if (r < 0)
        goto done;
    *out = *rp;
    r = 0;
done:
    free(rp);
    EVP_MD_CTX_free(mctx);
    return r;
}

json_t *cit__eventlog_replay_json(const cit__evl_replay *r) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (uint32_t b = 0; b < r->nbanks; b++) {
        const cit__evl_bank *bk = &r->banks[b];
        if (!bk->computable || !bk->touched)
            continue;
        char nb[16];
        json_t *bank = json_object();
        if (json_object_set_new(o, alg_name(bk->alg, nb), bank) < 0)
            goto fail;
        for (int i = 0; i < CIT_EVENTLOG_PCRS; i++) {
            if (!(bk->touched & (1u << i)))
                continue;
            char k[4], *h = cit_hex_encode(bk->pcr[i], bk->size);
            snprintf(k, sizeof k, "%d", i);
            if (!h || json_object_set_new(bank, k, json_string(h)) < 0) {
                free(h);
                goto fail;
            }
            free(h);
        }
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

int cit__eventlog_check_pcrs(json_t **out, const uint8_t *buf, size_t len, uint16_t alg, const uint32_t *indices,
                             const uint8_t (*expected)[CIT_EVENTLOG_MAX_DIGEST], size_t n) {
    cit__evl_replay *rp = malloc(sizeof *rp);
    if (!rp)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    int r = cit__eventlog_replay_buf(rp, buf, len);
    if (r < 0)
        goto done;
    char nb[16];
    const char *bank = alg_name(alg, nb);
    const cit__evl_bank *bk = NULL;
    for (uint32_t b = 0; b < rp->nbanks; b++)
        if (rp->banks[b].alg == alg && rp->banks[b].computable)
            bk = &rp->banks[b];
    if (!bk || !bk->touched) {
        r = cit_error_set(CIT_E_BANK_UNSUPPORTED, "the event log has no %s digests to replay", bank);
        cit_error_cause("the log's banks are in `citadel tpm attest eventlog replay FILE`");
        goto done;
    }
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (indices[i] >= CIT_EVENTLOG_PCRS) {
            r = cit_error_set(CIT_E_PCR_INVALID, "invalid PCR index %u", indices[i]);
            goto done;
        }
        if (memcmp(bk->pcr[indices[i]], expected[i], bk->size) != 0)
            bad++;
    }
    if (bad) {
        cit_error_set(CIT_E_EVENTLOG_PCR_MISMATCH, "%zu of %zu %s PCR values do not match the replayed event log", bad,
                      n, bank);
        for (size_t i = 0; i < n; i++) {
            if (memcmp(bk->pcr[indices[i]], expected[i], bk->size) == 0)
                continue;
            char *a = cit_hex_encode(bk->pcr[indices[i]], bk->size), *e = cit_hex_encode(expected[i], bk->size);
            cit_error_cause("PCR %u (%s): replayed %s, reported %s%s", indices[i], bank, a ? a : "?", e ? e : "?",
                            bk->touched & (1u << indices[i]) ? "" : " (the log never extends it)");
            free(a);
            free(e);
        }
        cit_error_context("bank", "%s", bank);
        r = CIT_E_EVENTLOG_PCR_MISMATCH;
        goto done;
    }
    json_t *o = json_object(), *m = json_array();
    json_object_set_new(o, "bank", json_string(bank));
    json_object_set_new(o, "pcrs_compared", json_integer((json_int_t)n));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(m, json_integer(indices[i]));
    json_object_set_new(o, "matched", m);
    *out = o;
    r = 0;
done:
    free(rp);
    return r;
}

/* ---- show ---- */

static int set_hex(json_t *o, const char *k, const uint8_t *p, size_t n) {
    char *h = cit_hex_encode(p, n);
    if (!h)
        return -1;
    int r = json_object_set_new(o, k, json_string(h));
    free(h);
    return r;
}

/* For the event types whose digest is the hash of the event data (PFP 10.4), whether it is:
 * 1 yes, 0 no, -1 not checked. A mismatch is reported, not fatal: the PCRs hold what was
 * extended, whatever the data says. */
static int digest_matches(const cit__evl_event *ev) {
    switch (ev->type) {
    case EV_SEPARATOR:
    case EV_EFI_ACTION:
    case EV_S_CRTM_VERSION:
    case EV_EFI_VARIABLE_DRIVER_CONFIG:
    case EV_EFI_GPT_EVENT:
        break;
    default:
        return -1;
    }
    for (uint32_t i = 0; i < ev->ndigests; i++) {
        if (cit__hash_size(ev->digests[i].alg) != ev->digests[i].size)
            continue;
        uint8_t md[EVP_MAX_MD_SIZE];
        size_t mdlen = 0;
        if (cit__digest(ev->digests[i].alg, ev->data, ev->data_len, md, &mdlen) < 0)
            return -1;
        if (mdlen != ev->digests[i].size || memcmp(md, ev->digests[i].d, mdlen) != 0)
            return 0;
    }
    return 1;
}

/* JSON strings must be UTF-8; summaries come from the decoders and are, but stay safe. */
static json_t *text_string(const char *s) {
    json_t *v = json_string(s);
    if (v)
        return v;
    char *c = strdup(s);
    if (!c)
        return NULL;
    for (char *q = c; *q; q++)
        if ((unsigned char)*q >= 0x80)
            *q = '?';
    v = json_string(c);
    free(c);
    return v;
}

/* A growable text buffer for the `_text` table. */
typedef struct tbuf {
    char *p;
    size_t len, cap;
    bool failed;
} tbuf;

__attribute__((format(printf, 2, 3))) static void tb_printf(tbuf *t, const char *fmt, ...) {
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->p && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t ncap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *np = realloc(t->p, ncap);
        if (!np) {
            t->failed = true;
            return;
        }
        t->p = np;
        t->cap = ncap;
    }
}

static json_t *specid_json(const cit__evl_parser *p) {
    json_t *s = json_object();
    const uint8_t *d = p->specid;
    json_object_set_new(s, "signature", json_string("Spec ID Event03"));
    json_object_set_new(s, "platform_class", json_integer(cit__le32(d + 16)));
    char v[16];
    snprintf(v, sizeof v, "%u.%u", d[21], d[20]);
    json_object_set_new(s, "spec_version", json_string(v));
    json_object_set_new(s, "spec_errata", json_integer(d[22]));
    json_object_set_new(s, "uintn_size", json_integer(d[23]));
    json_t *a = json_array();
    for (uint32_t i = 0; i < p->nalgs; i++) {
        char nb[16];
        json_t *x = json_object();
        json_object_set_new(x, "algorithm", json_string(alg_name(p->algs[i].alg, nb)));
        json_object_set_new(x, "algorithm_id", json_integer(p->algs[i].alg));
        json_object_set_new(x, "digest_size", json_integer(p->algs[i].size));
        json_array_append_new(a, x);
    }
    json_object_set_new(s, "algorithms", a);
    size_t vo = 28 + 4 * (size_t)p->nalgs;
    set_hex(s, "vendor_info_hex", d + vo + 1, d[vo]);
    return s;
}

int cit__eventlog_show_buf(json_t **out, const uint8_t *buf, size_t len, uint32_t pcr_mask, const char *name) {
    cit__evl_parser p;
    int r = cit__evl_open(&p, buf, len);
    if (r < 0)
        return r;
    json_t *o = json_object(), *events = json_array(), *mism = json_array();
    tbuf t = {0};
    if (!o || !events || !mism) {
        json_decref(o);
        json_decref(events);
        json_decref(mism);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    json_object_set_new(o, "file", json_string(name ? name : "-"));
    json_object_set_new(o, "format", json_string(p.crypto_agile ? "crypto-agile" : "sha1"));
    json_object_set_new(o, "size", json_integer((json_int_t)len));
    json_t *algs = json_array();
    for (uint32_t i = 0; i < p.nalgs; i++) {
        char nb[16];
        json_array_append_new(algs, json_string(alg_name(p.algs[i].alg, nb)));
    }
    json_object_set_new(o, "algorithms", algs);
    if (p.specid)
        json_object_set_new(o, "spec_id", specid_json(&p));
    tb_printf(&t, "%-5s %-3s %-34s %s\n", "EVENT", "PCR", "TYPE", "DETAILS");
    cit__evl_event ev;
    uint32_t total = 0, shown = 0;
    bool oom = false;
    while ((r = cit__evl_next(&p, &ev)) > 0) {
        total++;
        if (!(ev.pcr < CIT_EVENTLOG_PCRS ? (pcr_mask >> ev.pcr) & 1 : pcr_mask == (1u << CIT_EVENTLOG_PCRS) - 1))
            continue;
        shown++;
        json_t *e = json_object(), *dg = json_object();
        const char *tn = cit__eventlog_type_name(ev.type);
        char tbuf_name[24];
        if (!tn) {
            snprintf(tbuf_name, sizeof tbuf_name, "0x%08x", ev.type);
            tn = tbuf_name;
        }
        oom |= json_array_append_new(events, e) < 0;
        json_object_set_new(e, "index", json_integer(ev.index));
        json_object_set_new(e, "offset", json_integer((json_int_t)ev.offset));
        json_object_set_new(e, "pcr", json_integer(ev.pcr));
        json_object_set_new(e, "type", json_string(tn));
        json_object_set_new(e, "type_value", json_integer(ev.type));
        json_object_set_new(e, "digests", dg);
        for (uint32_t i = 0; i < ev.ndigests; i++) {
            char nb[16];
            oom |= set_hex(dg, alg_name(ev.digests[i].alg, nb), ev.digests[i].d, ev.digests[i].size) < 0;
        }
        json_object_set_new(e, "data_size", json_integer(ev.data_len));
        char summary[256];
        oom |= cit__evl_decode(e, &ev, summary, sizeof summary) < 0;
        for (char *c = summary; *c; c++) /* one line per event in the table */
            if (*c == '\n' || *c == '\r' || *c == '\t')
                *c = ' ';
        int dm = digest_matches(&ev);
        if (dm >= 0)
            json_object_set_new(e, "digest_matches_data", json_boolean(dm));
        if (dm == 0)
            json_array_append_new(mism, json_integer(ev.index));
        tb_printf(&t, "%-5u %-3u %-34s %s%s\n", ev.index, ev.pcr, tn, summary,
                  dm == 0 ? "  [digest does not match the data]" : "");
    }
    if (r < 0) {
        json_decref(o);
        json_decref(events);
        json_decref(mism);
        free(t.p);
        return r;
    }
    json_object_set_new(o, "events_total", json_integer(total));
    json_object_set_new(o, "events_shown", json_integer(shown));
    json_object_set_new(o, "events", events);
    json_object_set_new(o, "digest_mismatches", mism);
    if (p.trailing_zeros)
        json_object_set_new(o, "trailing_zero_bytes", json_integer((json_int_t)p.trailing_zeros));
    tb_printf(&t, "%u of %u events shown (%s log, banks:", shown, total, p.crypto_agile ? "crypto-agile" : "SHA-1");
    for (uint32_t i = 0; i < p.nalgs; i++) {
        char nb[16];
        tb_printf(&t, " %s", alg_name(p.algs[i].alg, nb));
    }
    tb_printf(&t, ")\n");
    if (t.failed || oom) {
        json_decref(o);
        free(t.p);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    json_object_set_new(o, "_text", text_string(t.p));
    free(t.p);
    *out = o;
    return 0;
}

/* ---- public ---- */

static int read_log(const char *file, uint8_t **buf, size_t *len) {
    if (!file || !*file) {
        cit_error_set(CIT_E_USAGE, "an event log FILE is required");
        cit_error_cause("the running system's is /sys/kernel/security/tpm0/binary_bios_measurements");
        return CIT_E_USAGE;
    }
    return cit__read_input(file, CIT_EVENTLOG_MAX, "the event log", false, buf, len);
}

_public_ int cit_eventlog_show(json_t **out, const char *file, const char *pcrs) {
    uint32_t mask;
    int r = cit__pcr_parse_list(pcrs, &mask);
    if (r < 0)
        return r;
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len = 0;
    r = read_log(file, &buf, &len);
    if (r < 0)
        return r;
    json_t *o = NULL;
    r = cit__with_file(cit__eventlog_show_buf(&o, buf, len, mask, file), file);
    if (r < 0)
        return r;
    if (pcrs)
        json_object_set_new(o, "pcr_filter", json_string(pcrs));
    *out = o;
    return 0;
}

_public_ int cit_eventlog_replay(json_t **out, const char *file) {
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len = 0;
    int r = read_log(file, &buf, &len);
    if (r < 0)
        return r;
    _cleanup_free_ cit__evl_replay *rp = malloc(sizeof *rp);
    if (!rp)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    r = cit__with_file(cit__eventlog_replay_buf(rp, buf, len), file);
    if (r < 0)
        return r;
    json_t *pcrs = cit__eventlog_replay_json(rp);
    json_t *o = json_object(), *banks = json_array(), *skipped = json_array();
    if (!pcrs || !o || !banks || !skipped) {
        json_decref(pcrs);
        json_decref(o);
        json_decref(banks);
        json_decref(skipped);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    tbuf t = {0};
    tb_printf(&t, "%-3s %-8s %s\n", "PCR", "BANK", "VALUE");
    for (uint32_t b = 0; b < rp->nbanks; b++) {
        const cit__evl_bank *bk = &rp->banks[b];
        char nb[16];
        const char *n = alg_name(bk->alg, nb);
        if (!bk->computable) {
            json_array_append_new(skipped, json_string(n));
            continue;
        }
        json_array_append_new(banks, json_string(n));
    }
    for (int i = 0; i < CIT_EVENTLOG_PCRS; i++)
        for (uint32_t b = 0; b < rp->nbanks; b++) {
            const cit__evl_bank *bk = &rp->banks[b];
            if (!bk->computable || !(bk->touched & (1u << i)))
                continue;
            char nb[16], *h = cit_hex_encode(bk->pcr[i], bk->size);
            tb_printf(&t, "%-3d %-8s %s\n", i, alg_name(bk->alg, nb), h ? h : "?");
            free(h);
        }
    tb_printf(&t, "%u events, %u extended a PCR (%s log)\n", rp->nevents, rp->nextended,
              rp->crypto_agile ? "crypto-agile" : "SHA-1");
    json_object_set_new(o, "file", json_string(file));
    json_object_set_new(o, "format", json_string(rp->crypto_agile ? "crypto-agile" : "sha1"));
    json_object_set_new(o, "events", json_integer(rp->nevents));
    json_object_set_new(o, "events_extended", json_integer(rp->nextended));
    json_object_set_new(o, "banks", banks);
    if (json_array_size(skipped))
        json_object_set_new(o, "banks_not_replayed", skipped);
    else
        json_decref(skipped);
    if (rp->startup_locality >= 0)
        json_object_set_new(o, "startup_locality", json_integer(rp->startup_locality));
    if (rp->hcrtm)
        json_object_set_new(o, "hcrtm", json_true());
    json_object_set_new(o, "pcrs", pcrs);
    if (t.failed) {
        json_decref(o);
        free(t.p);
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    json_object_set_new(o, "_text", json_string(t.p));
    free(t.p);
    *out = o;
    return 0;
}

_public_ int cit_eventlog_secureboot(json_t **out, const char *file) {
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len = 0;
    int r = read_log(file, &buf, &len);
    if (r < 0)
        return r;
    return cit__with_file(cit__eventlog_secureboot_buf(out, buf, len, file), file);
}
