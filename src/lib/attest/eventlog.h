/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TCG PC Client event logs (the firmware's record of what it measured into PCRs 0-7 and what
 * boot loaders added): a bounded parser over a byte buffer, replay into PCR values per bank,
 * and the decoders behind `attest eventlog show|replay|secureboot`. Internal to libcitadel.
 *
 * Two formats (TCG PC Client Platform Firmware Profile, section 10):
 *   - crypto-agile: a TCG_PCR_EVENT carrying the "Spec ID Event03" (which lists the hash
 *     algorithms and their digest sizes), then TCG_PCR_EVENT2 records with one digest per bank;
 *   - SHA-1 only: TCG_PCR_EVENT records (a 20-byte SHA-1 digest each), TPM 1.2 style.
 *
 * Bounds: the whole log at most CIT_EVENTLOG_MAX bytes, one event's data at most
 * CIT_EVENTLOG_MAX_EVENT bytes, at most CIT_EVENTLOG_MAX_ALGS algorithms; every length is
 * checked against what remains before anything is read. A framing error (an event that does
 * not fit, an algorithm the Spec ID event did not declare, ...) is CIT_E_EVENTLOG_MALFORMED
 * with the event index, its offset and the reason; a parser never reads past the buffer.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CIT_EVENTLOG_MAX (64u << 20)
#define CIT_EVENTLOG_MAX_EVENT (4u << 20)
#define CIT_EVENTLOG_MAX_ALGS 8
#define CIT_EVENTLOG_PCRS 24
#define CIT_EVENTLOG_MAX_DIGEST 64

/* Event types (PC Client PFP, table 9 and 10). */
#define EV_PREBOOT_CERT 0x0u
#define EV_POST_CODE 0x1u
#define EV_NO_ACTION 0x3u
#define EV_SEPARATOR 0x4u
#define EV_ACTION 0x5u
#define EV_EVENT_TAG 0x6u
#define EV_S_CRTM_CONTENTS 0x7u
#define EV_S_CRTM_VERSION 0x8u
#define EV_CPU_MICROCODE 0x9u
#define EV_PLATFORM_CONFIG_FLAGS 0xAu
#define EV_TABLE_OF_DEVICES 0xBu
#define EV_COMPACT_HASH 0xCu
#define EV_IPL 0xDu
#define EV_IPL_PARTITION_DATA 0xEu
#define EV_NONHOST_CODE 0xFu
#define EV_NONHOST_CONFIG 0x10u
#define EV_NONHOST_INFO 0x11u
#define EV_OMIT_BOOT_DEVICE_EVENTS 0x12u
#define EV_POST_CODE2 0x13u
#define EV_EFI_VARIABLE_DRIVER_CONFIG 0x80000001u
#define EV_EFI_VARIABLE_BOOT 0x80000002u
#define EV_EFI_BOOT_SERVICES_APPLICATION 0x80000003u
#define EV_EFI_BOOT_SERVICES_DRIVER 0x80000004u
#define EV_EFI_RUNTIME_SERVICES_DRIVER 0x80000005u
#define EV_EFI_GPT_EVENT 0x80000006u
#define EV_EFI_ACTION 0x80000007u
#define EV_EFI_PLATFORM_FIRMWARE_BLOB 0x80000008u
#define EV_EFI_HANDOFF_TABLES 0x80000009u
#define EV_EFI_PLATFORM_FIRMWARE_BLOB2 0x8000000Au
#define EV_EFI_HANDOFF_TABLES2 0x8000000Bu
#define EV_EFI_VARIABLE_BOOT2 0x8000000Cu
#define EV_EFI_GPT_EVENT2 0x8000000Du
#define EV_EFI_HCRTM_EVENT 0x80000010u
#define EV_EFI_VARIABLE_AUTHORITY 0x800000E0u
#define EV_EFI_SPDM_FIRMWARE_BLOB 0x800000E1u
#define EV_EFI_SPDM_FIRMWARE_CONFIG 0x800000E2u

/* "EV_EFI_ACTION", or NULL for a type we do not know. */
const char *cit__eventlog_type_name(uint32_t type);

typedef struct cit__evl_alg {
    uint16_t alg;  /* TPM_ALG_ID */
    uint16_t size; /* digest size, from the Spec ID event (checked for the algorithms we know) */
} cit__evl_alg;

typedef struct cit__evl_event {
    uint32_t index;  /* 0-based, in log order (the Spec ID event is 0 in a crypto-agile log) */
    size_t offset;   /* of the event's first byte in the log */
    size_t size;     /* of the whole record */
    uint32_t pcr;
    uint32_t type;
    uint32_t ndigests;
    struct {
        uint16_t alg;
        uint16_t size;
        const uint8_t *d; /* points into the log */
    } digests[CIT_EVENTLOG_MAX_ALGS];
    const uint8_t *data; /* the event data, points into the log */
    uint32_t data_len;
} cit__evl_event;

typedef struct cit__evl_parser {
    const uint8_t *buf;
    size_t len, pos;
    uint32_t next_index;
    bool crypto_agile;
    bool done;
    /* From the Spec ID event (crypto-agile logs; a SHA-1 log has one: sha1/20). */
    uint32_t nalgs;
    cit__evl_alg algs[CIT_EVENTLOG_MAX_ALGS];
    const uint8_t *specid; /* the Spec ID event's data, or NULL */
    uint32_t specid_len;
    size_t trailing_zeros; /* zero padding after the last event (some firmware pads the area) */
} cit__evl_parser;

/* Starts parsing buf (borrowed; must outlive the parser). Checks the size limit and, for a
 * crypto-agile log, the Spec ID event. CIT_E_EVENTLOG_MALFORMED, CIT_E_INPUT_TOO_LARGE,
 * CIT_E_INPUT_EMPTY. */
int cit__evl_open(cit__evl_parser *p, const uint8_t *buf, size_t len);
/* The next event into *ev: 1, or 0 at the end, or CIT_E_EVENTLOG_MALFORMED. */
int cit__evl_next(cit__evl_parser *p, cit__evl_event *ev);

/* ---- replay ---- */

typedef struct cit__evl_bank {
    uint16_t alg;
    uint16_t size;
    bool computable;    /* we have the hash (sha1, sha256, sha384, sha512, sm3_256 when OpenSSL has it) */
    uint32_t touched;   /* bit i: PCR i was extended (or given a start locality) */
    uint8_t pcr[CIT_EVENTLOG_PCRS][CIT_EVENTLOG_MAX_DIGEST];
} cit__evl_bank;

typedef struct cit__evl_replay {
    bool crypto_agile;
    uint32_t nbanks;
    cit__evl_bank banks[CIT_EVENTLOG_MAX_ALGS];
    uint32_t nevents;        /* all records, including EV_NO_ACTION ones */
    uint32_t nextended;      /* records that extended a PCR */
    int startup_locality;    /* -1 when the log has no StartupLocality event */
    bool hcrtm;              /* an EV_EFI_HCRTM_EVENT set PCR 0's start value */
} cit__evl_replay;

/* Replays the log: for every event except EV_NO_ACTION, PCR[pcr] = H(PCR[pcr] || digest) in
 * each bank the event has a digest for. PCRs start at zero (17-22 at all ones, as after a TPM
 * reset); a StartupLocality EV_NO_ACTION event sets PCR 0's last byte to the locality and an
 * H-CRTM event to 4, as TPM 2.0 does at _TPM_Init. *out is the caller's (no heap). */
int cit__eventlog_replay_buf(cit__evl_replay *out, const uint8_t *buf, size_t len);

/* The replayed values as {"sha256": {"0": "hex", ...}, ...}, only the PCRs the log touched.
 * NULL on allocation failure. */
json_t *cit__eventlog_replay_json(const cit__evl_replay *r);

/* For `attest verify --eventlog`: replays the log in buf and compares bank `alg`'s PCRs with
 * the n given values (expected[i] of size bytes for PCR indices[i]). 0 when every one matches
 * (*out: {"bank", "pcrs_compared", "matched": [..]}); CIT_E_EVENTLOG_PCR_MISMATCH naming each
 * PCR that differs, with both values, when one does not (out untouched);
 * CIT_E_EVENTLOG_MALFORMED when the log does not parse; CIT_E_BANK_UNSUPPORTED when the log
 * has no digests of that bank. */
int cit__eventlog_check_pcrs(json_t **out, const uint8_t *buf, size_t len, uint16_t alg,
                             const uint32_t *indices, const uint8_t (*expected)[CIT_EVENTLOG_MAX_DIGEST],
                             size_t n);

/* In-memory forms of the public show/secureboot calls (the fuzz target drives these).
 * pcr_mask: bit i shows PCR i's events. name: shown as "file". */
int cit__eventlog_show_buf(json_t **out, const uint8_t *buf, size_t len, uint32_t pcr_mask, const char *name);
int cit__eventlog_secureboot_buf(json_t **out, const uint8_t *buf, size_t len, const char *name);

/* ---- event data decoding (uefi.c) ---- */

/* Decodes an event's data by type into o (keys added to the event object) and writes a one-line
 * summary for the text table into summary. Never fails on odd content: what cannot be decoded
 * is reported as "decode_error" next to the raw bytes. Returns -1 only on allocation failure. */
int cit__evl_decode(json_t *o, const cit__evl_event *ev, char *summary, size_t summary_len);

/* Pieces of the decoders shared with the Secure Boot summary. */
typedef struct cit__uefi_var {
    uint8_t guid[16];
    char name[128];  /* UTF-8, truncated names end in "..." */
    const uint8_t *data;
    uint64_t data_len;
} cit__uefi_var;
/* UEFI_VARIABLE_DATA; false when it does not fit in len (why in err). */
bool cit__uefi_var_parse(cit__uefi_var *v, const uint8_t *p, size_t len, char *err, size_t err_len);
void cit__guid_format(char out[37], const uint8_t g[16]);
bool cit__guid_eq(const uint8_t g[16], const char *text);
/* Counts the entries of an EFI_SIGNATURE_LIST sequence (db, dbx, KEK, PK). false when
 * malformed. */
bool cit__uefi_siglists(const uint8_t *p, size_t len, uint32_t *lists, uint32_t *x509, uint32_t *sha256,
                        uint32_t *other);
/* Subject of a DER X.509 certificate as "CN=...,O=..." into out; false when it does not parse. */
bool cit__x509_subject(const uint8_t *der, size_t len, char *out, size_t out_len);
