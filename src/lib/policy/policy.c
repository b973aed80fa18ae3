/* SPDX-License-Identifier: Apache-2.0 */
#include "policy.h"

#include <openssl/evp.h>
#include <string.h>
#include <tss2/tss2_mu.h>
#include <yaml.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/error.h"
#include "core/keys.h"
#include "crypto/crypto.h"

#define CC_POLICY_PCR 0x0000017Fu
#define CC_POLICY_LOCALITY 0x0000016Fu
#define CC_POLICY_AUTH_VALUE 0x0000016Bu
#define CC_POLICY_OR 0x00000171u
#define CC_POLICY_AUTHORIZE 0x0000016Au

/* ---- parsing ---- */

static int invalid(const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int invalid(const yaml_node_t *n, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cit_error_set(CIT_E_POLICY_INVALID, "invalid policy: %s", msg);
    if (n) {
        cit_error_context("line", "%zu", n->start_mark.line + 1);
        cit_error_context("column", "%zu", n->start_mark.column + 1);
    }
    return CIT_E_POLICY_INVALID;
}

static const char *scalar(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int parse_int(yaml_document_t *doc, const yaml_node_t *n, int lo, int hi, const char *what, int *out) {
    const char *s = scalar(n);
    uint32_t v;
    if (!s || cit_parse_u32(s, &v) < 0)
        return invalid(n, "%s must be a number", what);
    if ((int)v < lo || (int)v > hi)
        return invalid(n, "%s must be %d to %d, not %u", what, lo, hi, v);
    *out = (int)v;
    return 0;
}

static int parse_bool(const yaml_node_t *n, const char *what, bool *out) {
    const char *s = scalar(n);
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0))
        *out = true;
    else if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0))
        *out = false;
    else
        return invalid(n, "%s must be true or false", what);
    return 0;
}

static int parse_pcr_item(yaml_document_t *doc, yaml_node_t *n, json_t *acc) {
    if (n->type != YAML_MAPPING_NODE)
        return invalid(n, "each pcr entry is a mapping with index (and optionally bank, value)");
    int index = -1;
    const char *bank = "sha256", *value = NULL;
    yaml_node_t *value_node = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        const char *key = scalar(k);
        int r;
        if (!key)
            return invalid(k, "keys must be plain words");
        if (strcmp(key, "index") == 0) {
            if ((r = parse_int(doc, v, 0, 23, "pcr index", &index)) < 0)
                return r;
        } else if (strcmp(key, "bank") == 0) {
            bank = scalar(v);
            TPMI_ALG_HASH alg;
            if (!bank || (strcmp(bank, "sha1") != 0 && strcmp(bank, "sha256") != 0 && strcmp(bank, "sha384") != 0 &&
                          strcmp(bank, "sha512") != 0) ||
                cit__hash_from_name(bank, &alg) < 0)
                return invalid(v, "bank must be sha1, sha256, sha384 or sha512");
        } else if (strcmp(key, "value") == 0) {
            value = scalar(v);
            value_node = v;
            if (!value)
                return invalid(v, "value must be a hex string");
        } else
            return invalid(k, "unknown key '%s' in a pcr entry (index, bank, value)", key);
    }
    if (index < 0)
        return invalid(n, "a pcr entry needs an index");
    json_t *e = json_pack("{s:i,s:s}", "index", index, "bank", bank);
    if (value) {
        TPMI_ALG_HASH alg;
        cit__hash_from_name(bank, &alg);
        uint8_t *b = NULL;
        size_t bl = 0;
        if (cit_hex_decode(&b, &bl, value) < 0 || bl != cit__hash_size(alg)) {
            free(b);
            json_decref(e);
            return invalid(value_node, "value must be %zu bytes of hex for the %s bank", cit__hash_size(alg), bank);
        }
        char *h = cit_hex_encode(b, bl);
        json_object_set_new(e, "value", json_string(h));
        free(h);
        free(b);
    }
    json_array_append_new(acc, e);
    return 0;
}

static int parse_requires(yaml_document_t *doc, yaml_node_t *n, json_t **out, bool nested) {
    if (n->type != YAML_MAPPING_NODE)
        return invalid(n, "requires must be a mapping");
    json_t *req = json_object();
    int r = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top && r == 0; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        const char *key = scalar(k);
        if (!key) {
            r = invalid(k, "keys must be plain words");
        } else if (strcmp(key, "pcr") == 0) {
            if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top == v->data.sequence.items.start) {
                r = invalid(v, "pcr must be a list of entries");
                break;
            }
            json_t *a = json_array();
            for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top && r == 0; i++)
                r = parse_pcr_item(doc, yaml_document_get_node(doc, *i), a);
            json_object_set_new(req, "pcr", a);
        } else if (strcmp(key, "auth_value") == 0) {
            bool b;
            r = parse_bool(v, "auth_value", &b);
            if (r == 0 && b)
                json_object_set_new(req, "auth_value", json_true());
        } else if (strcmp(key, "locality") == 0) {
            if (v->type != YAML_SEQUENCE_NODE) {
                r = invalid(v, "locality must be a list such as [0, 3]");
                break;
            }
            json_t *a = json_array();
            for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top && r == 0; i++) {
                int l;
                r = parse_int(doc, yaml_document_get_node(doc, *i), 0, 4, "locality", &l);
                if (r == 0)
                    json_array_append_new(a, json_integer(l));
            }
            if (r == 0 && json_array_size(a) == 0)
                r = invalid(v, "locality lists at least one locality (0-4)");
            json_object_set_new(req, "locality", a);
        } else if (strcmp(key, "any_of") == 0 && !nested) {
            size_t cnt = (size_t)(v->type == YAML_SEQUENCE_NODE ? v->data.sequence.items.top - v->data.sequence.items.start : 0);
            if (cnt < 2 || cnt > 8) {
                r = invalid(v, "any_of must list 2 to 8 alternatives");
                break;
            }
            json_t *a = json_array();
            for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top && r == 0; i++) {
                json_t *branch = NULL;
                r = parse_requires(doc, yaml_document_get_node(doc, *i), &branch, true);
                if (r == 0)
                    json_array_append_new(a, branch);
            }
            json_object_set_new(req, "any_of", a);
        } else if (strcmp(key, "authorized_by") == 0 && !nested) {
            const char *who = scalar(v);
            if (!who || cit_path_invalid_reason(who))
                r = invalid(v, "authorized_by names an authority identity (`citadel tpm identity init NAME --authority`)");
            else
                json_object_set_new(req, "authorized_by", json_pack("{s:s}", "authority", who));
        } else
            r = invalid(k, nested ? "unknown key '%s' in an any_of alternative (pcr, auth_value, locality)"
                                  : "unknown key '%s' in requires (pcr, auth_value, locality, any_of, authorized_by)",
                        key);
    }
    if (r == 0 && json_object_size(req) == 0)
        r = invalid(n, "requires lists no assertion");
    if (r == 0 && json_object_get(req, "authorized_by")) {
        /* PolicyAuthorize: the PCR assertion is what the authority approves, state by state */
        size_t i;
        json_t *e;
        if (json_object_get(req, "any_of") || json_object_get(req, "locality"))
            r = invalid(n, "with authorized_by, requires takes only pcr (the PCRs whose states the authority "
                           "approves) and auth_value");
        else if (!json_object_get(req, "pcr"))
            r = invalid(n, "authorized_by needs a pcr list: the PCRs whose states the authority approves");
        json_array_foreach(json_object_get(req, "pcr"), i, e) if (r == 0 && json_object_get(e, "value")) r =
            invalid(n, "with authorized_by, PCR values are what the authority approves (`citadel tpm policy "
                       "approve`): leave value out");
    }
    if (r < 0) {
        json_decref(req);
        return r;
    }
    *out = req;
    return 0;
}

int cit__policy_parse(json_t **out, const char *text, size_t len) {
    if (len > CIT_POLICY_MAX) {
        cit_error_set(CIT_E_INPUT_TOO_LARGE, "the policy is larger than 64 KiB");
        cit_error_context("limit_bytes", "%u", CIT_POLICY_MAX);
        return CIT_E_INPUT_TOO_LARGE;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        cit_error_set(CIT_E_POLICY_INVALID, "invalid policy: %s", parser.problem ? parser.problem : "not YAML");
        cit_error_context("line", "%zu", parser.problem_mark.line + 1);
        cit_error_context("column", "%zu", parser.problem_mark.column + 1);
        yaml_parser_delete(&parser);
        return CIT_E_POLICY_INVALID;
    }
    int r = 0;
    json_t *pol = json_object();
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        r = invalid(root, "a policy is a mapping with name and requires");
    for (yaml_node_pair_t *p = r == 0 ? root->data.mapping.pairs.start : NULL; p && p < root->data.mapping.pairs.top && r == 0;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key), *v = yaml_document_get_node(&doc, p->value);
        const char *key = scalar(k);
        if (key && strcmp(key, "name") == 0) {
            const char *name = scalar(v);
            if (!name || cit_path_invalid_reason(name))
                r = invalid(v, "name must be an object path (lowercase letters, digits, '.', '_', '-', '/')");
            else
                json_object_set_new(pol, "name", json_string(name));
        } else if (key && strcmp(key, "requires") == 0) {
            json_t *req = NULL;
            r = parse_requires(&doc, v, &req, false);
            if (r == 0)
                json_object_set_new(pol, "requires", req);
        } else
            r = invalid(k, "unknown key '%s' (a policy has name and requires)", key ? key : "?");
    }
    if (r == 0 && !json_object_get(pol, "name"))
        r = invalid(root, "the policy has no name");
    if (r == 0 && !json_object_get(pol, "requires"))
        r = invalid(root, "the policy has no requires");
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (r < 0) {
        json_decref(pol);
        return r;
    }
    *out = pol;
    return 0;
}

/* ---- PCR helpers ---- */

/* The selection and the concatenated expected values of a pcr list, banks in first-seen
 * order, indices ascending within a bank (the order TPM2_PolicyPCR digests them). */
static int pcr_list(const json_t *pcrs, TPML_PCR_SELECTION *sel, uint8_t *vals, size_t *vals_len, bool need_values) {
    memset(sel, 0, sizeof(*sel));
    *vals_len = 0;
    size_t i;
    json_t *e;
    json_array_foreach(pcrs, i, e) {
        TPMI_ALG_HASH alg;
        if (cit__hash_from_name(json_string_value(json_object_get(e, "bank")), &alg) < 0)
            return cit_error_last()->code;
        uint32_t b;
        for (b = 0; b < sel->count; b++)
            if (sel->pcrSelections[b].hash == alg)
                break;
        if (b == sel->count) {
            if (sel->count >= TPM2_NUM_PCR_BANKS)
                return cit_error_set(CIT_E_POLICY_INVALID, "too many PCR banks");
            sel->pcrSelections[b].hash = alg;
            sel->pcrSelections[b].sizeofSelect = 3;
            sel->count++;
        }
        json_int_t idx = json_integer_value(json_object_get(e, "index"));
        if (idx < 0 || idx > 23) /* a stored policy is outside input too */
            return cit_error_set(CIT_E_POLICY_INVALID, "invalid policy: PCR index %lld", (long long)idx);
        sel->pcrSelections[b].pcrSelect[idx / 8] |= (uint8_t)(1u << (idx % 8));
    }
    if (!need_values)
        return 0;
    for (uint32_t b = 0; b < sel->count; b++)
        for (int idx = 0; idx < 24; idx++) {
            if (!(sel->pcrSelections[b].pcrSelect[idx / 8] & (1u << (idx % 8))))
                continue;
            const char *hex = NULL;
            json_array_foreach(pcrs, i, e) {
                TPMI_ALG_HASH alg;
                cit__hash_from_name(json_string_value(json_object_get(e, "bank")), &alg);
                if (alg == sel->pcrSelections[b].hash && json_integer_value(json_object_get(e, "index")) == idx)
                    hex = json_string_value(json_object_get(e, "value"));
            }
            uint8_t *v = NULL;
            size_t vl = 0;
            if (!hex || cit_hex_decode(&v, &vl, hex) < 0 || *vals_len + vl > 24 * 4 * 64) {
                free(v);
                return cit_error_set(CIT_E_POLICY_INVALID, "PCR %d has no value (the policy is not resolved)", idx);
            }
            memcpy(vals + *vals_len, v, vl);
            *vals_len += vl;
            free(v);
        }
    return 0;
}

static int read_pcr(cit_tpm *t, TPMI_ALG_HASH alg, int idx, char **hex) {
    char *values[24] = {0};
    int r = cit__pcr_read(t, alg, 1u << idx, values);
    if (r == 0) {
        *hex = values[idx];
        values[idx] = NULL;
    }
    cit__pcr_values_free(values);
    return r;
}

static int resolve_block(json_t *req, cit_tpm *t) {
    size_t i;
    json_t *e;
    if (json_object_get(req, "authorized_by"))
        return 0; /* the values are whatever the authority approves */
    json_array_foreach(json_object_get(req, "pcr"), i, e) {
        if (json_object_get(e, "value"))
            continue;
        TPMI_ALG_HASH alg;
        cit__hash_from_name(json_string_value(json_object_get(e, "bank")), &alg);
        char *hex = NULL;
        int r = read_pcr(t, alg, (int)json_integer_value(json_object_get(e, "index")), &hex);
        if (r < 0)
            return r;
        json_object_set_new(e, "value", json_string(hex));
        free(hex);
    }
    json_array_foreach(json_object_get(req, "any_of"), i, e) {
        int r = resolve_block(e, t);
        if (r < 0)
            return r;
    }
    return 0;
}

int cit__policy_resolve(json_t *policy, cit_tpm *t) { return resolve_block(json_object_get(policy, "requires"), t); }

/* ---- digest ---- */

static int extend(uint8_t d[32], uint32_t cc, const uint8_t *data, size_t len) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    uint8_t ccb[4];
    cit_put_be32(ccb, cc);
    unsigned int n = 0;
    int ok = c && EVP_DigestInit_ex(c, cit__hash_md(TPM2_ALG_SHA256), NULL) == 1 && EVP_DigestUpdate(c, d, 32) == 1 &&
             EVP_DigestUpdate(c, ccb, 4) == 1 && (len == 0 || EVP_DigestUpdate(c, data, len) == 1) &&
             EVP_DigestFinal_ex(c, d, &n) == 1;
    EVP_MD_CTX_free(c);
    return ok ? 0 : cit__openssl_error(CIT_E_CRYPTO, "policy digest");
}

static uint8_t locality_bits(const json_t *l) {
    uint8_t bits = 0;
    size_t i;
    json_t *e;
    json_array_foreach(l, i, e) bits |= (uint8_t)(1u << json_integer_value(e));
    return bits;
}

static int block_digest(const json_t *req, uint8_t d[32]);

static int pcr_list(const json_t *pcrs, TPML_PCR_SELECTION *sel, uint8_t *vals, size_t *vals_len, bool need_values);

/* The policyRef of an approval: SHA-256("citadel approval v1" || marshalled PCR selection). An
 * approval covers states of exactly these PCRs (an approval of PCR 0 states never unlocks an
 * identity bound to PCR 14), and no other signature by the authority can pass for one. */
int cit__policy_approval_ref(const json_t *pcrs, TPM2B_DIGEST *ref) {
    TPML_PCR_SELECTION sel;
    uint8_t vals[8];
    size_t vl = 0;
    int r = pcr_list(pcrs, &sel, vals, &vl, false);
    if (r < 0)
        return r;
    static const char label[] = "citadel approval v1";
    uint8_t buf[sizeof label + sizeof(TPML_PCR_SELECTION)];
    size_t off = sizeof label; /* the label with its NUL */
    memcpy(buf, label, sizeof label);
    if (Tss2_MU_TPML_PCR_SELECTION_Marshal(&sel, buf, sizeof buf, &off) != TSS2_RC_SUCCESS)
        return cit_error_set(CIT_E_INTERNAL, "cannot marshal a PCR selection");
    size_t n = 0;
    r = cit__digest(TPM2_ALG_SHA256, buf, off, ref->buffer, &n);
    ref->size = (UINT16)n;
    return r;
}

/* PolicyAuthorize's update: H(H(0 || CC || keyName) || policyRef). */
static int authorize_digest(const json_t *ab, const json_t *pcrs, uint8_t d[32]) {
    uint8_t *name = NULL;
    size_t nl = 0;
    const char *hex = json_string_value(json_object_get(ab, "name"));
    if (!hex || cit_hex_decode(&name, &nl, hex) < 0 || nl < 4 || nl > sizeof(TPMU_NAME)) {
        free(name);
        return cit_error_set(CIT_E_POLICY_INVALID, "invalid policy: the authority's TPM name is missing or damaged");
    }
    TPM2B_DIGEST ref;
    int r = cit__policy_approval_ref(pcrs, &ref);
    memset(d, 0, 32);
    if (r == 0)
        r = extend(d, CC_POLICY_AUTHORIZE, name, nl);
    free(name);
    uint8_t buf[32 + sizeof ref.buffer];
    size_t n = 0;
    if (r == 0) {
        memcpy(buf, d, 32);
        memcpy(buf + 32, ref.buffer, ref.size);
        r = cit__digest(TPM2_ALG_SHA256, buf, 32 + ref.size, d, &n);
    }
    return r;
}

/* The digest of the PCR assertion alone: what an authority approves. */
int cit__policy_pcr_digest(const json_t *pcrs, TPM2B_DIGEST *out) {
    json_t *req = json_pack("{s:O}", "pcr", pcrs);
    uint8_t d[32];
    int r = req ? block_digest(req, d) : cit_error_set(CIT_E_INTERNAL, "out of memory");
    json_decref(req);
    if (r == 0) {
        out->size = 32;
        memcpy(out->buffer, d, 32);
    }
    return r;
}

static int block_digest(const json_t *req, uint8_t d[32]) {
    memset(d, 0, 32);
    int r = 0;
    json_t *ab = json_object_get(req, "authorized_by");
    if (ab) {
        if ((r = authorize_digest(ab, json_object_get(req, "pcr"), d)) < 0)
            return r;
        if (json_is_true(json_object_get(req, "auth_value")) && (r = extend(d, CC_POLICY_AUTH_VALUE, NULL, 0)) < 0)
            return r;
        return 0;
    }
    json_t *any = json_object_get(req, "any_of");
    if (any && (!json_is_array(any) || json_array_size(any) < 2 || json_array_size(any) > 8))
        return cit_error_set(CIT_E_POLICY_INVALID, "invalid policy: any_of needs 2 to 8 alternatives");
    if (any) {
        uint8_t branches[8 * 32];
        size_t n = 0, i;
        json_t *b;
        json_array_foreach(any, i, b) {
            if ((r = block_digest(b, branches + n * 32)) < 0)
                return r;
            n++;
        }
        memset(d, 0, 32);
        if ((r = extend(d, CC_POLICY_OR, branches, n * 32)) < 0)
            return r;
    }
    json_t *pcrs = json_object_get(req, "pcr");
    if (pcrs) {
        TPML_PCR_SELECTION sel;
        uint8_t vals[24 * 4 * 64];
        size_t vl = 0;
        if ((r = pcr_list(pcrs, &sel, vals, &vl, true)) < 0)
            return r;
        uint8_t pcrd[EVP_MAX_MD_SIZE];
        size_t pl = 0;
        if ((r = cit__digest(TPM2_ALG_SHA256, vals, vl, pcrd, &pl)) < 0)
            return r;
        uint8_t buf[sizeof(TPML_PCR_SELECTION) + 64];
        size_t off = 0;
        if (Tss2_MU_TPML_PCR_SELECTION_Marshal(&sel, buf, sizeof buf, &off) != TSS2_RC_SUCCESS)
            return cit_error_set(CIT_E_INTERNAL, "cannot marshal a PCR selection");
        memcpy(buf + off, pcrd, pl);
        if ((r = extend(d, CC_POLICY_PCR, buf, off + pl)) < 0)
            return r;
    }
    json_t *loc = json_object_get(req, "locality");
    if (loc) {
        uint8_t bits = locality_bits(loc);
        if ((r = extend(d, CC_POLICY_LOCALITY, &bits, 1)) < 0)
            return r;
    }
    if (json_is_true(json_object_get(req, "auth_value")) && (r = extend(d, CC_POLICY_AUTH_VALUE, NULL, 0)) < 0)
        return r;
    return 0;
}

int cit__policy_digest(const json_t *policy, TPM2B_DIGEST *out) {
    uint8_t d[32];
    int r = block_digest(json_object_get(policy, "requires"), d);
    if (r < 0)
        return r;
    out->size = 32;
    memcpy(out->buffer, d, 32);
    return 0;
}

bool cit__policy_needs_auth(const json_t *policy) {
    const json_t *req = json_object_get(policy, "requires");
    if (json_is_true(json_object_get(req, "auth_value")))
        return true;
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(req, "any_of"), i, b) if (json_is_true(json_object_get(b, "auth_value"))) return true;
    return false;
}

/* ---- running in a session ---- */

void cit__policy_check(json_t *checks, const char *assertion, bool ok, const char *detail) {
    if (checks)
        json_array_append_new(checks, json_pack("{s:s,s:s,s:s}", "assertion", assertion, "status", ok ? "pass" : "fail",
                                                "detail", detail));
}

/* Does the TPM's current state satisfy the pcr entries (checked in software, for messages and
 * for choosing an any_of branch)? mismatch gets "PCR 7 (sha256): expected .., actual .." lines. */
static int pcrs_match(cit_tpm *t, const json_t *pcrs, bool *ok, char *mismatch, size_t mlen) {
    *ok = true;
    size_t off = 0, i;
    json_t *e;
    mismatch[0] = 0;
    json_array_foreach(pcrs, i, e) {
        TPMI_ALG_HASH alg;
        cit__hash_from_name(json_string_value(json_object_get(e, "bank")), &alg);
        int idx = (int)json_integer_value(json_object_get(e, "index"));
        char *now = NULL;
        int r = read_pcr(t, alg, idx, &now);
        if (r < 0)
            return r;
        const char *want = json_string_value(json_object_get(e, "value"));
        if (!want || strcmp(want, now) != 0) {
            *ok = false;
            off += (size_t)snprintf(mismatch + off, off < mlen ? mlen - off : 0, "%sPCR %d (%s): expected %s, actual %s",
                                    off ? "; " : "", idx, cit__hash_name(alg), want ? want : "?", now);
        }
        free(now);
    }
    return 0;
}

/* PolicyPCR over the live values, then the authority's approval of exactly that state. */
static int run_authorized(cit_tpm *t, const json_t *req, ESYS_TR s, json_t *checks, void *env) {
    TPML_PCR_SELECTION sel;
    uint8_t vals[8];
    size_t vl = 0;
    int r = pcr_list(json_object_get(req, "pcr"), &sel, vals, &vl, false);
    if (r < 0)
        return r;
    TPM2B_DIGEST empty = {0}, *now = NULL;
    TSS2_RC rc = Esys_PolicyPCR(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &sel);
    if (rc == TSS2_RC_SUCCESS)
        rc = Esys_PolicyGetDigest(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &now);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_POLICY_FAIL, rc, "TPM2_PolicyPCR failed");
    cit__policy_check(checks, "pcr", true, "the PCR values now are asserted; the authority must have approved them");
    r = cit__policy_authorize(env, t, s, json_object_get(req, "authorized_by"), json_object_get(req, "pcr"), now,
                              checks);
    Esys_Free(now);
    if (r < 0)
        return r;
    if (json_is_true(json_object_get(req, "auth_value"))) {
        rc = Esys_PolicyAuthValue(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
        cit__policy_check(checks, "auth_value", rc == TSS2_RC_SUCCESS, "the object's password is required at use");
        if (rc != TSS2_RC_SUCCESS)
            return cit__tss_error(t, CIT_E_POLICY_FAIL, rc, "TPM2_PolicyAuthValue failed");
    }
    return 0;
}

static int run_block(cit_tpm *t, const json_t *req, ESYS_TR s, json_t *checks, void *env) {
    int r;
    if (json_object_get(req, "authorized_by"))
        return run_authorized(t, req, s, checks, env);
    json_t *any = json_object_get(req, "any_of");
    if (any && (!json_is_array(any) || json_array_size(any) < 2 || json_array_size(any) > 8))
        return cit_error_set(CIT_E_POLICY_INVALID, "invalid policy: any_of needs 2 to 8 alternatives");
    if (any) {
        /* the branch the TPM's state satisfies, then PolicyOR over all branch digests */
        TPML_DIGEST list = {0};
        int chosen = -1;
        size_t i;
        json_t *b;
        json_array_foreach(any, i, b) {
            uint8_t d[32];
            if ((r = block_digest(b, d)) < 0)
                return r;
            list.digests[list.count].size = 32;
            memcpy(list.digests[list.count].buffer, d, 32);
            list.count++;
            bool ok = true;
            char mm[1024];
            if (chosen < 0 && (r = pcrs_match(t, json_object_get(b, "pcr"), &ok, mm, sizeof mm)) < 0)
                return r;
            json_t *bl = json_object_get(b, "locality");
            if (bl && !(locality_bits(bl) & 1)) /* citadel runs at locality 0 */
                ok = false;
            if (chosen < 0 && ok)
                chosen = (int)i;
        }
        if (chosen < 0) {
            cit__policy_check(checks, "any_of", false, "no alternative matches the PCR values now");
            cit_error_set(CIT_E_POLICY_FAIL, "no alternative of any_of is satisfied");
            return CIT_E_POLICY_FAIL;
        }
        if ((r = run_block(t, json_array_get(any, (size_t)chosen), s, checks, env)) < 0)
            return r;
        TSS2_RC rc = Esys_PolicyOR(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &list);
        char det[64];
        snprintf(det, sizeof det, "alternative %d of %u", chosen + 1, list.count);
        cit__policy_check(checks, "any_of", rc == TSS2_RC_SUCCESS, det);
        if (rc != TSS2_RC_SUCCESS)
            return cit__tss_error(t, CIT_E_POLICY_FAIL, rc, "TPM2_PolicyOR failed");
    }
    json_t *pcrs = json_object_get(req, "pcr");
    if (pcrs) {
        TPML_PCR_SELECTION sel;
        uint8_t vals[24 * 4 * 64];
        size_t vl = 0;
        if ((r = pcr_list(pcrs, &sel, vals, &vl, true)) < 0)
            return r;
        TPM2B_DIGEST pd = {0};
        size_t pl = 0;
        if ((r = cit__digest(TPM2_ALG_SHA256, vals, vl, pd.buffer, &pl)) < 0)
            return r;
        pd.size = (UINT16)pl;
        bool ok;
        char mm[2048];
        if ((r = pcrs_match(t, pcrs, &ok, mm, sizeof mm)) < 0)
            return r;
        /* with the expected digest given, the TPM itself refuses when the values differ */
        TSS2_RC rc = Esys_PolicyPCR(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pd, &sel);
        cit__policy_check(checks, "pcr", rc == TSS2_RC_SUCCESS, rc == TSS2_RC_SUCCESS ? "the PCR values match" : mm);
        if (rc != TSS2_RC_SUCCESS) {
            cit_error_set(CIT_E_POLICY_FAIL, "the TPM refused the PCR assertion");
            if (mm[0])
                cit_error_cause("%s", mm);
            cit_error_context("tpm_rc", "0x%08x", rc);
            return CIT_E_POLICY_FAIL;
        }
    }
    json_t *loc = json_object_get(req, "locality");
    if (loc) {
        TSS2_RC rc = Esys_PolicyLocality(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, locality_bits(loc));
        bool zero_ok = (locality_bits(loc) & 1) != 0;
        cit__policy_check(checks, "locality", rc == TSS2_RC_SUCCESS && zero_ok,
              zero_ok ? "citadel runs at locality 0, which the policy allows"
                      : "citadel runs at locality 0, which the policy does not allow: uses will fail");
        if (rc != TSS2_RC_SUCCESS)
            return cit__tss_error(t, CIT_E_POLICY_FAIL, rc, "TPM2_PolicyLocality failed");
        if (!zero_ok) {
            cit_error_set(CIT_E_POLICY_FAIL, "the policy needs a locality other than 0, citadel's");
            return CIT_E_POLICY_FAIL;
        }
    }
    if (json_is_true(json_object_get(req, "auth_value"))) {
        TSS2_RC rc = Esys_PolicyAuthValue(t->esys, s, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
        cit__policy_check(checks, "auth_value", rc == TSS2_RC_SUCCESS, "the object's password is required at use");
        if (rc != TSS2_RC_SUCCESS)
            return cit__tss_error(t, CIT_E_POLICY_FAIL, rc, "TPM2_PolicyAuthValue failed");
    }
    return 0;
}

int cit__policy_run(cit_tpm *t, const json_t *policy, ESYS_TR session, json_t *checks, void *env) {
    return run_block(t, json_object_get(policy, "requires"), session, checks, env);
}

/* ---- explanation ---- */

static void explain_block(FILE *f, const json_t *req, const char *indent) {
    size_t i;
    json_t *e;
    json_t *ab = json_object_get(req, "authorized_by");
    if (ab) {
        fprintf(f, "%sthe authority %s has approved the values the PCRs hold at the time of use:", indent,
                json_string_value(json_object_get(ab, "authority")));
        json_array_foreach(json_object_get(req, "pcr"), i, e)
            fprintf(f, "%s PCR %lld (%s)", i ? "," : "", json_integer_value(json_object_get(e, "index")),
                    json_string_value(json_object_get(e, "bank")));
        fprintf(f, "\n      (an approval is a signature by the authority's key over the PCR policy digest;\n"
                   "      `citadel tpm policy approve --authority %s --pcr LIST` makes one)\n",
                json_string_value(json_object_get(ab, "authority")));
        if (json_is_true(json_object_get(req, "auth_value")))
            fprintf(f, "%sthe object's password is given\n", indent);
        return;
    }
    json_t *any = json_object_get(req, "any_of");
    if (any) {
        fprintf(f, "%sone of these %zu alternatives holds:\n", indent, json_array_size(any));
        char sub[32];
        snprintf(sub, sizeof sub, "%s    ", indent);
        json_array_foreach(any, i, e) {
            fprintf(f, "%s  %zu.\n", indent, i + 1);
            explain_block(f, e, sub);
        }
    }
    json_array_foreach(json_object_get(req, "pcr"), i, e)
        fprintf(f, "%sPCR %lld (%s) has the value %.16s...\n", indent, json_integer_value(json_object_get(e, "index")),
                json_string_value(json_object_get(e, "bank")), json_string_value(json_object_get(e, "value")) ?: "?");
    json_t *loc = json_object_get(req, "locality");
    if (loc) {
        fprintf(f, "%sthe command comes from locality", indent);
        json_array_foreach(loc, i, e) fprintf(f, "%s %lld", i ? "," : "", json_integer_value(e));
        fputc('\n', f);
    }
    if (json_is_true(json_object_get(req, "auth_value")))
        fprintf(f, "%sthe object's password is given\n", indent);
}

char *cit__policy_explain(const json_t *policy) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "Policy %s. The TPM allows use only when all of this holds:\n",
            json_string_value(json_object_get(policy, "name")));
    explain_block(f, json_object_get(policy, "requires"), "  - ");
    if (json_object_get(json_object_get(policy, "requires"), "authorized_by"))
        fprintf(f, "It locks when the PCRs reach a state the authority has not approved (a firmware,\n"
                   "bootloader or kernel update, a different boot path), or with a wrong password.\n"
                   "After an expected change, the authority approves the new state: the objects bound to\n"
                   "this policy keep working without being re-created.\n");
    else
        fprintf(f, "It locks when any of it stops holding: a PCR that is extended (a firmware, bootloader\n"
                   "or kernel update, a different boot path), another locality, or a wrong password.\n"
                   "After an expected change, compile the policy again and seal to the new digest.\n");
    fclose(f);
    return buf;
}
