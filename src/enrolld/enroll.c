/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The enrollment protocol, server side (docs/enrollment.md). Security properties kept here:
 *  - no quote or certify is trusted before the AK is bound to a validated EK by credential
 *    activation, and the AK public used to verify them is the one recorded at start, never one
 *    from a later request;
 *  - the activation secret and the fetch token are kept as SHA-256 digests, compared in constant
 *    time, and used once (a compare-and-set on the node's status);
 *  - nonces expire (--nonce-ttl);
 *  - every rejection and decision is an audit entry (stream enroll) of the server's workspace.
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/attest.h"
#include "crypto/crypto.h"
#include "crypto/ekcert.h"
#include "enrolld/enrolld.h"

#define CSR_MAX (16 * 1024)
#define BLOB_MAX (4 * 1024)

/* ---- helpers ---- */

static const char *jstr(const json_t *j, const char *k) {
    const char *v = json_string_value(json_object_get(j, k));
    return v && *v ? v : NULL;
}

static void sha256_hex(const uint8_t *b, size_t n, char out[65]) {
    uint8_t md[32];
    SHA256(b, n, md);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Constant-time comparison of SHA-256(presented) with a stored hex digest. */
static bool digest_matches(const uint8_t *presented, size_t n, const char *stored_hex) {
    char h[65];
    sha256_hex(presented, n, h);
    bool ok = stored_hex && strlen(stored_hex) == 64 && CRYPTO_memcmp(h, stored_hex, 64) == 0;
    cit_memzero(h, sizeof h);
    return ok;
}

static int random_hex(char *out, size_t bytes) {
    uint8_t b[64];
    if (bytes > sizeof b || RAND_bytes(b, (int)bytes) != 1)
        return cit__openssl_error(CIT_E_CRYPTO, "the random number generator");
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    cit_memzero(b, sizeof b);
    return 0;
}

static bool valid_host(const char *h) {
    size_t n = h ? strlen(h) : 0;
    if (n == 0 || n > 253)
        return false;
    for (const char *p = h; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            return false;
    return true;
}

static bool valid_name(const char *h) {
    size_t n = h ? strlen(h) : 0;
    if (n == 0 || n > 64)
        return false;
    for (const char *p = h; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            return false;
    return true;
}

void enr_audit(enrolld *d, enr_req *rq, const char *event, json_t *payload, int code) {
    cit_error saved = *cit_error_last();
    if (!payload)
        payload = json_object();
    json_object_set_new(payload, "actor", json_string(rq ? rq->actor : "enrolld"));
    if (rq && rq->remote[0])
        json_object_set_new(payload, "remote", json_string(rq->remote));
    if (code < 0) {
        char cs[16];
        cit_code_format(cs, sizeof cs, code);
        json_object_set_new(payload, "code", json_string(cs));
        json_object_set_new(payload, "error", json_string(saved.message));
    }
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    if (text) {
        json_t *o = NULL;
        pthread_mutex_lock(&d->ctx_lock);
        cit_ctx_set_actor(d->ctx, rq ? rq->actor : "enrolld");
        int r = cit_audit_append(&o, d->ctx, "enroll", event, (const uint8_t *)text, strlen(text));
        pthread_mutex_unlock(&d->ctx_lock);
        json_decref(o);
        if (r < 0)
            enr_log("warning: audit entry %s not written: %s", event, cit_error_last()->message);
        free(text);
    }
    enr_log("%s %s%s%s", event, rq ? rq->actor : "", code < 0 ? ": " : "", code < 0 ? saved.message : "");
    cit_error_restore(&saved);
}

/* Rejects: audit entry "enroll.reject" with what was rejected, then the error stays set. */
static int reject(enrolld *d, enr_req *rq, const char *step, const char *id, const char *host, int code) {
    json_t *p = json_pack("{s:s}", "step", step);
    if (id)
        json_object_set_new(p, "enrollment", json_string(id));
    if (host)
        json_object_set_new(p, "host", json_string(host));
    enr_audit(d, rq, "enroll.reject", p, code);
    return code;
}

static int need_field(const json_t *b, const char *k) {
    if (jstr(b, k))
        return 0;
    cit_error_set(CIT_E_INPUT_INVALID, "the request needs the field %s", k);
    cit_error_context("field", "%s", k);
    return CIT_E_INPUT_INVALID;
}

static int b64_field(const json_t *b, const char *k, size_t max, uint8_t **out, size_t *len) {
    int r = need_field(b, k);
    if (r < 0)
        return r;
    if (strlen(jstr(b, k)) > max * 4 / 3 + 8 || cit__base64_decode(out, len, jstr(b, k)) < 0 || *len == 0) {
        cit_error_set(CIT_E_INPUT_INVALID, "the field %s is not base64 of at most %zu bytes", k, max);
        cit_error_context("field", "%s", k);
        return CIT_E_INPUT_INVALID;
    }
    return 0;
}

static int pem_to_der_spki(const char *pem, uint8_t **der, size_t *len) {
    EVP_PKEY *pk = NULL;
    int r = cit__pubkey_from_pem(&pk, pem, strlen(pem));
    if (r == 0)
        r = cit__pubkey_der(der, len, pk);
    EVP_PKEY_free(pk);
    return r;
}

static int cert_serial_hex(const char *pem, char *out, size_t outlen, int64_t *not_after) {
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x)
        return cit_error_set(CIT_E_INTERNAL, "the CA returned a certificate that does not parse");
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *h = bn ? BN_bn2hex(bn) : NULL;
    if (h) {
        size_t i = 0;
        for (; h[i] && i + 1 < outlen; i++)
            out[i] = (char)tolower((unsigned char)h[i]);
        out[i] = 0;
    }
    struct tm tm;
    if (not_after && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
        *not_after = (int64_t)timegm(&tm);
    OPENSSL_free(h);
    BN_free(bn);
    X509_free(x);
    return h ? 0 : cit_error_set(CIT_E_INTERNAL, "cannot read the certificate's serial");
}

/* ---- step 1: start ---- */

/* The EK certificate against the manufacturer trust store and the EK public key. The TPM's own
 * attributes are not known to the server, so the tpm-attributes check (certificate vs TPM) is
 * informational; every other check must pass. */
static int check_ek(enrolld *d, const uint8_t *der, size_t dl, EVP_PKEY *ek, json_t **checks_out) {
    X509 *cert = NULL;
    size_t used = 0;
    int r = cit__ekcert_parse_der(&cert, der, dl, &used);
    if (r < 0)
        return r;
    json_t *checks = json_array();
    cit_tpm_attrs none = {.manufacturer = "unknown"}; /* the server does not know the TPM */
    pthread_mutex_lock(&d->reload_lock);
    X509_STORE *trust = d->ek_trust;
    X509_STORE_up_ref(trust);
    pthread_mutex_unlock(&d->reload_lock);
    r = cit__ekcert_verify(checks, cert, trust, ek, &none);
    X509_STORE_free(trust);
    if (r == CIT_E_EK_TPM_ATTRIBUTES) {
        r = 0;
        size_t i;
        json_t *c;
        json_array_foreach(checks, i, c) {
            const char *name = jstr(c, "check"), *v = jstr(c, "verdict");
            if (v && strcmp(v, "fail") == 0 && name && strcmp(name, "tpm-attributes") != 0) {
                r = cit_error_set(CIT_E_EK_KEY_USAGE, "the EK certificate failed the %s check", name);
                cit_error_cause("%s", jstr(c, "detail") ?: "");
                break;
            }
        }
    }
    X509_free(cert);
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c) {
        const char *name = jstr(c, "check");
        if (name && strcmp(name, "tpm-attributes") == 0) {
            json_object_set_new(c, "verdict", json_string("skip"));
            json_object_set_new(c, "detail", json_string("the server knows the TPM only through this certificate: "
                                                         "its manufacturer, model and version are recorded, not compared"));
        }
    }
    if (r < 0)
        json_decref(checks);
    else
        *checks_out = checks;
    return r;
}

static bool token_ok(enrolld *d, const char *token) {
    if (!d->ntokens)
        return true;
    if (!token)
        return false;
    bool ok = false;
    for (size_t i = 0; i < d->ntokens; i++)
        ok |= digest_matches((const uint8_t *)token, strlen(token), d->tokens[i]);
    return ok;
}

int enr_start(enrolld *d, enr_req *rq, json_t *body, json_t **out) {
    const char *host = jstr(body, "host");
    uint8_t *ek_der = NULL, *ak_pub = NULL, *devid_pub = NULL;
    size_t ek_len = 0, ak_len = 0, devid_len = 0;
    EVP_PKEY *ek = NULL;
    char *ak_spki = NULL, *ak_name = NULL;
    json_t *checks = NULL, *akj = NULL, *cred = NULL;
    uint8_t secret[ENR_SECRET_BYTES];
    int r = 0;
    int64_t open_n = 0;
    if (!token_ok(d, jstr(body, "token"))) {
        r = cit_error_set(CIT_E_ENROLL_TOKEN, "%s enrollment token", jstr(body, "token") ? "an unknown" : "no");
        goto done;
    }
    if (!valid_host(host)) {
        r = cit_error_set(CIT_E_INPUT_INVALID, "host must be a host name (letters, digits, '.', '-', '_'; 1-253)");
        goto done;
    }
    const char *group = jstr(body, "group") ?: "default";
    if (!valid_name(group)) {
        r = cit_error_set(CIT_E_INPUT_INVALID, "group must be a name (letters, digits, '.', '-', '_'; 1-64)");
        goto done;
    }
    /* started enrollments whose nonce expired are marked expired; the open ones are capped, so a
     * flood of starts (without --tokens-file anyone can start) cannot grow the database forever */
    if ((r = d->db->expire(d->db, (int64_t)time(NULL), &open_n)) < 0)
        goto done;
    if (open_n >= d->cfg.max_pending) {
        r = cit_error_set(CIT_E_ENROLL_BUSY, "the server already holds %lld open enrollments (--max-pending %lld)",
                          (long long)open_n, (long long)d->cfg.max_pending);
        goto done;
    }
    if ((r = need_field(body, "ek_public")) < 0 || (r = need_field(body, "devid_csr")) < 0 ||
        (r = b64_field(body, "ek_cert", 8192, &ek_der, &ek_len)) < 0 ||
        (r = b64_field(body, "ak_public", BLOB_MAX, &ak_pub, &ak_len)) < 0 ||
        (r = b64_field(body, "devid_public", BLOB_MAX, &devid_pub, &devid_len)) < 0)
        goto done;
    if (strlen(jstr(body, "devid_csr")) > CSR_MAX) {
        r = cit_error_set(CIT_E_INPUT_TOO_LARGE, "devid_csr is larger than %d bytes", CSR_MAX);
        goto done;
    }
    const char *ekp = jstr(body, "ek_public");
    if (strlen(ekp) > 8192 || (r = cit__pubkey_from_pem(&ek, ekp, strlen(ekp))) < 0) {
        if (r == 0)
            r = cit_error_set(CIT_E_INPUT_INVALID, "ek_public is too large");
        goto done;
    }
    /* the EK: chain to a trusted manufacturer, validity, and the certificate is this EK's */
    if ((r = check_ek(d, ek_der, ek_len, ek, &checks)) < 0)
        goto done;
    /* the AK: restricted, fixedTPM, fixedParent, sensitiveDataOrigin signing key */
    if ((r = cit_attest_ak_public_check(&akj, ak_pub, ak_len, &ak_spki, &ak_name)) < 0) {
        if (cit_error_last()->code != CIT_E_ENROLL_AK_INVALID) {
            cit_error saved = *cit_error_last();
            cit_error_set(CIT_E_ENROLL_AK_INVALID, "the AK is not a restricted, fixedTPM, fixedParent signing key");
            cit_error_cause("%s", saved.message);
            r = CIT_E_ENROLL_AK_INVALID;
        }
        goto done;
    }
    /* the credential: a one-time secret only the TPM holding this EK can release, and only to
     * an object with this AK's name */
    if (RAND_bytes(secret, sizeof secret) != 1) {
        r = cit__openssl_error(CIT_E_CRYPTO, "the random number generator");
        goto done;
    }
    if ((r = cit__attest_credential_make_mem(&cred, ek, ak_name, secret, sizeof secret)) < 0)
        goto done;
    char id[33], nonce[2 * ENR_NONCE_BYTES + 1], sh[65];
    if ((r = random_hex(id, 16)) < 0 || (r = random_hex(nonce, ENR_NONCE_BYTES)) < 0)
        goto done;
    sha256_hex(secret, sizeof secret, sh);
    int64_t expires = (int64_t)time(NULL) + d->cfg.nonce_ttl;
    char *ek_fpr = NULL;
    cit__pubkey_fingerprint(&ek_fpr, ek);
    json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:O}", "host", host, "group", group,
                            "ek_public", ekp, "ek_cert", jstr(body, "ek_cert"), "ek_fingerprint", ek_fpr ? ek_fpr : "",
                            "ak_public", jstr(body, "ak_public"), "ak_name", ak_name, "ak_spki", ak_spki,
                            "devid_public", jstr(body, "devid_public"), "devid_csr", jstr(body, "devid_csr"),
                            "nonce", nonce, "nonce_expires", (json_int_t)expires, "pcrs", d->cfg.pcrs, "ek_checks",
                            checks);
    free(ek_fpr);
    json_object_set_new(rec, "secret_sha256", json_string(sh));
    if ((r = d->db->insert(d->db, id, host, "started", rec)) < 0) {
        json_decref(rec);
        goto done;
    }
    json_decref(rec);
    json_t *pcrs = json_array();
    for (int i = 0; i < 24; i++)
        if (d->cfg.pcr_mask & (1u << i))
            json_array_append_new(pcrs, json_integer(i));
    *out = json_pack("{s:s,s:O,s:s,s:o,s:s,s:I,s:s}", "enrollment_id", id, "credential",
                     json_object_get(cred, "credential"), "nonce", nonce, "pcrs", pcrs, "bank", "sha256",
                     "nonce_expires", (json_int_t)expires, "ak_name", ak_name);
    enr_audit(d, rq, "enroll.start",
              json_pack("{s:s,s:s,s:s,s:s}", "enrollment", id, "host", host, "ak_name", ak_name, "group", group), 0);
done:
    cit_memzero(secret, sizeof secret);
    if (r < 0)
        reject(d, rq, "start", NULL, host, r);
    free(ek_der);
    free(ak_pub);
    free(devid_pub);
    EVP_PKEY_free(ek);
    free(ak_spki);
    free(ak_name);
    json_decref(checks);
    json_decref(akj);
    json_decref(cred);
    return r;
}

/* ---- step 3: finish ---- */

/* The quote against the AK recorded at start (never one from the request), the nonce, the PCR
 * selection and values the policy requires, and the event log when there is one. */
static int check_quote(enrolld *d, const json_t *rec, json_t *quote, const char *nonce, json_t **report) {
    if (!json_is_object(quote))
        return cit_error_set(CIT_E_INPUT_INVALID, "quote must be the quote JSON object (`citadel tpm attest quote`)");
    /* the AK key in the quote itself is ignored: the recorded one is substituted */
    json_t *q = json_deep_copy(quote);
    json_object_del(q, "ak_public_pem");
    char *buf = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    EVP_PKEY *ak = NULL;
    int r = buf ? cit__pubkey_from_pem(&ak, jstr(rec, "ak_spki"), strlen(jstr(rec, "ak_spki")))
                : cit_error_set(CIT_E_INTERNAL, "out of memory");
    bool valid = false;
    json_t *v = NULL;
    if (r == 0)
        r = cit__attest_verify_buf(&v, NULL, "quote", (const uint8_t *)buf, strlen(buf), nonce, ak, "enrolled AK",
                                   NULL, NULL, &valid);
    free(buf);
    EVP_PKEY_free(ak);
    if (r == 0 && !valid) {
        cit_error saved = *cit_error_last();
        cit_error_set(CIT_E_ENROLL_QUOTE_INVALID, "the quote does not verify with the enrolled AK over the nonce");
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(v, "checks"), i, c) {
            if (jstr(c, "status") && strcmp(jstr(c, "status"), "pass") != 0)
                cit_error_cause("%s (%s): %s", jstr(c, "check") ?: "?", jstr(c, "code") ?: "", jstr(c, "detail") ?: "");
        }
        if (saved.message[0])
            cit_error_cause("%s", saved.message);
        r = CIT_E_ENROLL_QUOTE_INVALID;
    } else if (r < 0 && cit_error_last()->code != CIT_E_ENROLL_QUOTE_INVALID) {
        cit_error saved = *cit_error_last();
        cit_error_set(CIT_E_ENROLL_QUOTE_INVALID, "the quote does not verify");
        cit_error_cause("%s", saved.message);
        r = CIT_E_ENROLL_QUOTE_INVALID;
    }
    /* the policy: every required PCR quoted in sha256, with the required value when given */
    json_t *bank = json_object_get(json_object_get(quote, "pcrs"), "sha256");
    for (int i = 0; i < 24 && r == 0; i++) {
        if (!(d->cfg.pcr_mask & (1u << i)))
            continue;
        char k[4];
        snprintf(k, sizeof k, "%d", i);
        const char *got = jstr(bank, k);
        if (!got) {
            r = cit_error_set(CIT_E_ENROLL_PCR_POLICY, "the quote does not cover PCR %d (sha256)", i);
            cit_error_cause("the registration policy requires PCRs %s", d->cfg.pcrs);
            break;
        }
        const char *want = jstr(json_object_get(d->pcr_policy, "sha256"), k);
        if (want && strcasecmp(want, got) != 0) {
            r = cit_error_set(CIT_E_ENROLL_PCR_POLICY, "PCR %d (sha256) is not the value the policy requires", i);
            cit_error_cause("quoted %s, required %s", got, want);
            cit_error_context("pcr", "%d", i);
        }
    }
    if (r == 0 && d->cfg.require_eventlog && !jstr(quote, "eventlog"))
        r = cit_error_set(CIT_E_ENROLL_PCR_POLICY, "the policy requires the node's event log with the quote");
    if (r == 0)
        *report = v;
    else
        json_decref(v);
    return r;
}

/* TPM2_Certify by the recorded AK of the recorded DevID key, over the nonce; and the CSR is
 * signed by that key (its own signature checks, its key is the certified one). */
static int check_certify(const json_t *rec, const json_t *certify, const char *nonce, char **devid_spki) {
    uint8_t *ak = NULL, *kp = NULL, *at = NULL, *sg = NULL, *nb = NULL;
    size_t al = 0, kl = 0, atl = 0, sgl = 0, nl = 0;
    char *spki = NULL;
    json_t *rep = NULL;
    bool valid = false;
    int r = 0;
    if (!json_is_object(certify)) {
        r = cit_error_set(CIT_E_ENROLL_CERTIFY_INVALID, "the request needs certify {attest, signature}");
        goto done;
    }
    if (cit__base64_decode(&ak, &al, jstr(rec, "ak_public")) < 0 ||
        cit__base64_decode(&kp, &kl, jstr(rec, "devid_public")) < 0 || cit_hex_decode(&nb, &nl, nonce) < 0 ||
        b64_field(certify, "attest", BLOB_MAX, &at, &atl) < 0 || b64_field(certify, "signature", BLOB_MAX, &sg, &sgl) < 0) {
        r = cit_error_set(CIT_E_ENROLL_CERTIFY_INVALID, "certify needs attest and signature (base64)");
        goto done;
    }
    r = cit_attest_certify_verify(&rep, ak, al, at, atl, sg, sgl, kp, kl, nb, nl, &valid, &spki);
    if (r == 0 && !valid)
        r = cit_error_last()->code < 0 ? cit_error_last()->code
                                       : cit_error_set(CIT_E_ENROLL_CERTIFY_INVALID, "the certify does not verify");
    if (r < 0) {
        cit_error saved = *cit_error_last();
        cit_error_set(CIT_E_ENROLL_CERTIFY_INVALID, "the DevID key is not certified by the enrolled AK over the nonce");
        cit_error_cause("%s", saved.message);
        r = CIT_E_ENROLL_CERTIFY_INVALID;
        goto done;
    }
    /* the CSR: its own signature, and its key is the certified key */
    const char *csr = jstr(rec, "devid_csr");
    BIO *b = BIO_new_mem_buf(csr, -1);
    X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    EVP_PKEY *ck = req ? X509_REQ_get0_pubkey(req) : NULL, *cert_k = NULL;
    if (!req || !ck || X509_REQ_verify(req, ck) != 1) {
        r = cit_error_set(CIT_E_ENROLL_CERTIFY_INVALID, "devid_csr is not a PKCS#10 request signed by its key");
    } else if (cit__pubkey_from_pem(&cert_k, spki, strlen(spki)) < 0 || EVP_PKEY_eq(ck, cert_k) != 1) {
        r = cit_error_set(CIT_E_ENROLL_CERTIFY_INVALID, "the CSR's key is not the DevID key the AK certified");
    }
    EVP_PKEY_free(cert_k);
    X509_REQ_free(req);
    if (r == 0)
        *devid_spki = TAKE_PTR(spki);
done:
    free(ak);
    free(kp);
    free(at);
    free(sg);
    free(nb);
    free(spki);
    json_decref(rep);
    return r;
}

/* Issues the AK and DevID certificates into rec (under the context lock). */
static int issue_certs(enrolld *d, json_t *rec) {
    const char *host = jstr(rec, "host");
    uint8_t *spki = NULL, *hw = NULL;
    size_t sl = 0, hl = 0;
    char *ak_pem = NULL, *devid_pem = NULL;
    json_t *o1 = NULL, *o2 = NULL;
    char subj[320], ak_subj[320];
    snprintf(subj, sizeof subj, "CN=%s", host);
    snprintf(ak_subj, sizeof ak_subj, "CN=%s AK", host);
    int r = pem_to_der_spki(jstr(rec, "ak_spki"), &spki, &sl);
    /* the TPM's identification in the HardwareModuleName: the EK's SHA-256 fingerprint */
    if (r == 0)
        r = cit_hex_decode(&hw, &hl, jstr(rec, "ek_fingerprint") ?: "") < 0
                ? cit_error_set(CIT_E_INTERNAL, "the record has no EK fingerprint")
                : 0;
    if (r < 0)
        goto done;
    cit_ca_issue_options ao = {.profile = "ak", .days = d->cfg.cert_days, .subject = ak_subj, .hw_serial = hw,
                               .hw_serial_len = hl};
    cit_ca_issue_options dv = {.profile = "devid", .days = d->cfg.cert_days, .subject = subj, .hw_serial = hw,
                               .hw_serial_len = hl};
    /* both certificates or neither, recorded in one store transaction (one sync) */
    pthread_mutex_lock(&d->ctx_lock);
    r = cit_ca_begin(d->ca);
    if (r == 0)
        r = cit_ca_issue_key(&o1, d->ca, spki, sl, &ao, &ak_pem);
    if (r == 0) {
        const char *csr = jstr(rec, "devid_csr");
        r = cit_ca_issue_csr(&o2, d->ca, (const uint8_t *)csr, strlen(csr), &dv, &devid_pem);
    }
    if (r == 0)
        r = cit_ca_commit(d->ca);
    else
        cit_ca_rollback(d->ca);
    pthread_mutex_unlock(&d->ctx_lock);
    if (r < 0)
        goto done;
    char s1[80], s2[80];
    int64_t na = 0;
    if ((r = cert_serial_hex(ak_pem, s1, sizeof s1, NULL)) < 0 || (r = cert_serial_hex(devid_pem, s2, sizeof s2, &na)) < 0)
        goto done;
    json_object_set_new(rec, "ak_cert", json_string(ak_pem));
    json_object_set_new(rec, "devid_cert", json_string(devid_pem));
    json_object_set_new(rec, "ak_serial", json_string(s1));
    json_object_set_new(rec, "devid_serial", json_string(s2));
    char nas[40];
    cit_time_rfc3339(nas, sizeof nas, na);
    json_object_set_new(rec, "not_after", json_string(nas));
done:
    free(spki);
    free(hw);
    free(ak_pem);
    free(devid_pem);
    json_decref(o1);
    json_decref(o2);
    return r;
}

static int revoke_serial(enrolld *d, const char *serial, const char *reason);
static int revoke_both(enrolld *d, const char *devid, const char *ak, const char *reason);
static void revoke_orphans(enrolld *d, const json_t *rec, const char *keep_devid, const char *keep_ak);

static int64_t node_version(const json_t *node) {
    json_t *v = json_object_get(node, "version");
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* A TPM that proved itself again (a retried enrollment, a re-enrollment after a TPM clear)
 * replaces its earlier enrollments: they become "superseded" and their certificates are revoked
 * (superseded). Only called once the new enrollment's activation proved that EK. */
static void supersede_others(enrolld *d, enr_req *rq, const char *id, const char *ek_fpr) {
    json_t *all = NULL;
    if (!ek_fpr || d->db->list(d->db, NULL, &all) < 0) {
        cit_error_clear();
        return;
    }
    size_t i;
    json_t *n;
    json_array_foreach(all, i, n) {
        const char *oid = jstr(n, "id"), *st = jstr(n, "status"), *f = jstr(n, "ek_fingerprint");
        if (!oid || !f || strcmp(oid, id) == 0 || strcmp(f, ek_fpr) != 0 || !st ||
            (strcmp(st, "started") != 0 && strcmp(st, "pending") != 0 && strcmp(st, "approved") != 0))
            continue;
        json_t *node = NULL;
        if (d->db->get(d->db, oid, &node) < 0) {
            cit_error_clear();
            continue;
        }
        json_t *rec = json_deep_copy(json_object_get(node, "record"));
        json_object_set_new(rec, "superseded_by", json_string(id));
        bool changed = false;
        enr_cas cas = {.version = node_version(node)};
        st = jstr(node, "status");
        if (d->db->update(d->db, oid, "started|pending|approved", "superseded", rec, &cas, &changed) == 0 && changed) {
            /* the serials of the record just committed (the version makes it the one read) */
            if (revoke_both(d, jstr(rec, "devid_serial"), jstr(rec, "ak_serial"), "superseded") < 0)
                enr_log("warning: certificates of %s not revoked: %s", oid, cit_error_last()->message);
            enr_audit(d, rq, "enroll.supersede",
                      json_pack("{s:s,s:s,s:s,s:s}", "enrollment", oid, "host", jstr(node, "host"), "was", st,
                                "superseded_by", id),
                      0);
        }
        cit_error_clear();
        json_decref(rec);
        json_decref(node);
    }
    json_decref(all);
}

int enr_finish(enrolld *d, enr_req *rq, const char *id, json_t *body, json_t **out) {
    json_t *node = NULL, *report = NULL;
    uint8_t *secret = NULL;
    size_t sl = 0;
    char *devid_spki = NULL;
    const char *host = NULL;
    int r = d->db->get(d->db, id, &node);
    if (r < 0)
        goto done;
    if (strcmp(jstr(node, "id"), id) != 0) { /* finish takes the enrollment id, not a host */
        r = cit_error_set(CIT_E_ENROLL_NOT_FOUND, "no enrollment %.40s", id);
        goto done;
    }
    json_t *rec = json_object_get(node, "record");
    host = jstr(rec, "host");
    if (strcmp(jstr(node, "status"), "expired") == 0) {
        r = cit_error_set(CIT_E_ENROLL_NONCE_EXPIRED, "the nonce of enrollment %s expired", id);
        cit_error_cause("the server gives %u seconds between start and finish", d->cfg.nonce_ttl);
        goto done;
    }
    if (strcmp(jstr(node, "status"), "started") != 0) {
        r = cit_error_set(CIT_E_ENROLL_REPLAY, "enrollment %s was already finished (it is %s)", id, jstr(node, "status"));
        goto done;
    }
    if ((int64_t)time(NULL) > json_integer_value(json_object_get(rec, "nonce_expires"))) {
        r = cit_error_set(CIT_E_ENROLL_NONCE_EXPIRED, "the nonce of enrollment %s expired", id);
        cit_error_cause("the server gives %u seconds between start and finish", d->cfg.nonce_ttl);
        goto done;
    }
    /* the activation: only the TPM with the recorded EK, holding an object with the recorded AK's
     * name, could release the secret */
    const char *sx = jstr(body, "secret");
    if (!sx || strlen(sx) != 2 * ENR_SECRET_BYTES || cit_hex_decode(&secret, &sl, sx) < 0 ||
        !digest_matches(secret, sl, jstr(rec, "secret_sha256"))) {
        r = cit_error_set(CIT_E_ENROLL_SECRET_MISMATCH, "the secret of enrollment %s is not the credential's", id);
        cit_error_cause("the credential was activated by another TPM, with another AK, or not at all");
        goto done;
    }
    /* from here the AK is bound to the validated EK: its quote and certify can be trusted */
    const char *nonce = jstr(rec, "nonce");
    if ((r = check_quote(d, rec, json_object_get(body, "quote"), nonce, &report)) < 0 ||
        (r = check_certify(rec, json_object_get(body, "certify"), nonce, &devid_spki)) < 0)
        goto done;
    char token[65], th[65];
    if ((r = random_hex(token, 32)) < 0)
        goto done;
    sha256_hex((const uint8_t *)token, 64, th);
    json_t *nrec = json_deep_copy(rec);
    json_object_set_new(nrec, "fetch_sha256", json_string(th));
    json_object_set_new(nrec, "devid_spki", json_string(devid_spki));
    json_object_set_new(nrec, "quote", json_pack("{s:O,s:b}", "pcrs", json_object_get(json_object_get(body, "quote"), "pcrs"),
                                                 "eventlog", jstr(json_object_get(body, "quote"), "eventlog") != NULL));
    json_object_set_new(nrec, "attested", json_integer((json_int_t)time(NULL)));
    json_object_del(nrec, "secret_sha256"); /* used once */
    const char *status = "pending";
    /* a host name held by another TPM's approved enrollment is never auto-approved: an operator
     * decides whether this is a replacement machine or an impersonation */
    bool host_taken = false;
    json_t *approved = NULL;
    if (d->cfg.auto_approve && d->db->list(d->db, "approved", &approved) == 0) {
        size_t i;
        json_t *n;
        json_array_foreach(approved, i, n) {
            const char *f = jstr(n, "ek_fingerprint");
            if (jstr(n, "host") && strcmp(jstr(n, "host"), host) == 0 && f && jstr(rec, "ek_fingerprint") &&
                strcmp(f, jstr(rec, "ek_fingerprint")) != 0)
                host_taken = true;
        }
    }
    json_decref(approved);
    cit_error_clear();
    if (host_taken)
        json_object_set_new(nrec, "held_for_operator", json_string("the host name belongs to another TPM's approved enrollment"));
    if (d->cfg.auto_approve && !host_taken) {
        if ((r = issue_certs(d, nrec)) < 0) {
            json_decref(nrec);
            goto done;
        }
        status = "approved";
        json_object_set_new(nrec, "decided_by", json_string("auto-approve policy"));
    }
    bool changed = false;
    /* one compare-and-set: still the version read (a replayed finish loses) and, to approved, no
     * other TPM's approved enrollment under this host (two racing TPMs are not both approved) */
    enr_cas cas = {.version = node_version(node),
                   .sole_host_ek = strcmp(status, "approved") == 0 ? (jstr(rec, "ek_fingerprint") ?: "") : NULL};
    r = d->db->update(d->db, id, "started", status, nrec, &cas, &changed);
    if (r == 0 && !changed && strcmp(status, "approved") == 0) {
        /* lost: either a replay, or another TPM was approved under this host meanwhile; the
         * certificates just issued are revoked, and in the second case the node waits for an operator */
        revoke_orphans(d, nrec, NULL, NULL);
        json_t *again = NULL;
        if (d->db->get(d->db, id, &again) == 0 && strcmp(jstr(again, "id"), id) == 0 &&
            node_version(again) == node_version(node) && strcmp(jstr(again, "status"), "started") == 0) {
            const char *drop[] = {"ak_cert", "devid_cert", "ak_serial", "devid_serial", "not_after", "decided_by", NULL};
            for (int i = 0; drop[i]; i++)
                json_object_del(nrec, drop[i]);
            json_object_set_new(nrec, "held_for_operator",
                                json_string("the host name belongs to another TPM's approved enrollment"));
            status = "pending";
            cas.sole_host_ek = NULL;
            r = d->db->update(d->db, id, "started", status, nrec, &cas, &changed);
        }
        json_decref(again);
        cit_error_clear();
    } else if (r < 0 && strcmp(status, "approved") == 0)
        revoke_orphans(d, nrec, NULL, NULL);
    json_decref(nrec);
    if (r == 0 && !changed)
        r = cit_error_set(CIT_E_ENROLL_REPLAY, "enrollment %s was finished by another request", id);
    if (r < 0)
        goto done;
    *out = json_pack("{s:s,s:s,s:s,s:s}", "enrollment_id", id, "host", host, "status", status, "fetch_token", token);
    enr_audit(d, rq, "enroll.finish", json_pack("{s:s,s:s,s:s}", "enrollment", id, "host", host, "status", status), 0);
    supersede_others(d, rq, id, jstr(rec, "ek_fingerprint"));
    cit_memzero(token, sizeof token);
done:
    if (r < 0)
        reject(d, rq, "finish", id, host, r);
    if (secret)
        cit_memzero(secret, sl);
    free(secret);
    free(devid_spki);
    json_decref(report);
    json_decref(node);
    return r;
}

/* ---- step 5: the node fetches its certificates ---- */

int enr_fetch(enrolld *d, enr_req *rq, const char *id, const char *token, json_t **out) {
    json_t *node = NULL;
    int r = d->db->get(d->db, id, &node);
    if (r == 0 && strcmp(jstr(node, "id"), id) != 0)
        r = cit_error_set(CIT_E_ENROLL_NOT_FOUND, "no enrollment %.40s", id);
    json_t *rec = json_object_get(node, "record");
    if (r == 0 && (!token || !digest_matches((const uint8_t *)token, strlen(token), jstr(rec, "fetch_sha256")))) {
        r = cit_error_set(CIT_E_ENROLL_TOKEN, "the fetch token of enrollment %s is missing or wrong", id);
        cit_error_cause("send the token finish answered in the X-Enroll-Token header");
    }
    if (r < 0) {
        reject(d, rq, "fetch", id, NULL, r);
        json_decref(node);
        return r;
    }
    const char *st = jstr(node, "status");
    *out = json_pack("{s:s,s:s,s:s}", "enrollment_id", id, "host", jstr(rec, "host"), "status", st);
    if (strcmp(st, "approved") == 0) {
        json_object_set(*out, "ak_cert", json_object_get(rec, "ak_cert"));
        json_object_set(*out, "devid_cert", json_object_get(rec, "devid_cert"));
        json_object_set(*out, "devid_serial", json_object_get(rec, "devid_serial"));
        json_object_set_new(*out, "ca_cert", json_string(d->ca_pem));
    }
    json_decref(node);
    return 0;
}

/* ---- admin ---- */

int enr_admin_list(enrolld *d, enr_req *rq, const char *status, json_t **out) {
    json_t *arr = NULL;
    int r = d->db->list(d->db, status, &arr);
    if (r == 0)
        *out = json_pack("{s:o}", "nodes", arr);
    return r;
}

static json_t *public_view(json_t *node) {
    json_t *rec = json_object_get(node, "record");
    json_t *j = json_pack("{s:O,s:O,s:O,s:O,s:O}", "id", json_object_get(node, "id"), "host",
                          json_object_get(node, "host"), "status", json_object_get(node, "status"), "created",
                          json_object_get(node, "created"), "updated", json_object_get(node, "updated"));
    const char *keys[] = {"group", "ek_fingerprint", "ak_name", "pcrs", "quote", "ek_checks", "ak_serial", "devid_serial",
                          "not_after", "decided_by", "reason", "ak_cert", "devid_cert", "renewed", "held_for_operator",
                          "superseded_by", NULL};
    for (int i = 0; keys[i]; i++)
        if (json_object_get(rec, keys[i]))
            json_object_set(j, keys[i], json_object_get(rec, keys[i]));
    return j;
}

int enr_admin_show(enrolld *d, enr_req *rq, const char *nodename, json_t **out) {
    json_t *node = NULL;
    int r = d->db->get(d->db, nodename, &node);
    if (r == 0)
        *out = public_view(node);
    json_decref(node);
    return r;
}

static int revoke_serial(enrolld *d, const char *serial, const char *reason) {
    if (!serial)
        return 0;
    json_t *o = NULL;
    pthread_mutex_lock(&d->ctx_lock);
    int r = cit_ca_revoke(&o, d->ctx, serial, reason);
    d->crl_at = 0; /* the next CRL request signs a new one */
    pthread_mutex_unlock(&d->ctx_lock);
    json_decref(o);
    if (r == CIT_E_CA_ALREADY_REVOKED) { /* e.g. `citadel ca revoke SERIAL` first: the goal is reached */
        cit_error_clear();
        r = 0;
    }
    return r;
}

/* Revokes the record's DevID and AK certificates, each attempted whatever the other did; the
 * first error is returned (and logged for both). */
static int revoke_both(enrolld *d, const char *devid, const char *ak, const char *reason) {
    int r1 = revoke_serial(d, devid, reason);
    cit_error e1 = *cit_error_last();
    if (r1 < 0)
        enr_log("warning: the DevID certificate %s was not revoked: %s", devid, e1.message);
    int r2 = revoke_serial(d, ak, reason);
    if (r2 < 0)
        enr_log("warning: the AK certificate %s was not revoked: %s", ak, cit_error_last()->message);
    if (r1 < 0) {
        cit_error_restore(&e1);
        return r1;
    }
    return r2;
}

/* Certificates issued into rec for a step whose compare-and-set then lost: nobody tracks them,
 * so they are revoked at once. */
static void revoke_orphans(enrolld *d, const json_t *rec, const char *keep_devid, const char *keep_ak) {
    const char *dv = jstr(rec, "devid_serial"), *ak = jstr(rec, "ak_serial");
    if (dv && keep_devid && strcmp(dv, keep_devid) == 0)
        dv = NULL;
    if (ak && keep_ak && strcmp(ak, keep_ak) == 0)
        ak = NULL;
    cit_error saved = *cit_error_last();
    if (revoke_both(d, dv, ak, "cessationOfOperation") == 0 && (dv || ak))
        enr_log("revoked the certificates issued for a step that lost its race (DevID %s, AK %s)", dv ? dv : "-",
                ak ? ak : "-");
    cit_error_restore(&saved);
}

/* The node an admin decision acts on: an enrollment id always; a host name only when it names
 * at most one open (started, pending, approved) enrollment, since anyone allowed to start an
 * enrollment can put a host name on it. */
static int resolve_for_decision(enrolld *d, const char *nodename, json_t **node) {
    int r = d->db->get(d->db, nodename, node);
    if (r < 0 || strcmp(jstr(*node, "id"), nodename) == 0)
        return r;
    json_t *ids = NULL;
    if ((r = d->db->expire(d->db, (int64_t)time(NULL), NULL)) < 0 ||
        (r = d->db->host_ids(d->db, nodename, "started|pending|approved", &ids)) < 0) {
        json_decref(*node);
        *node = NULL;
        return r;
    }
    if (json_array_size(ids) > 1) {
        char list[400] = "";
        size_t i, n = 0;
        json_t *v;
        json_array_foreach(ids, i, v) {
            if (i == 5) {
                snprintf(list + n, sizeof list - n, ", ...");
                break;
            }
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", json_string_value(v));
            if (n >= sizeof list)
                break;
        }
        r = cit_error_set(CIT_E_ENROLL_AMBIGUOUS, "host %.80s has %zu open enrollments: give the enrollment id",
                          nodename, json_array_size(ids));
        cit_error_cause("enrollments: %s", list);
        cit_error_step("`citadel enroll list` shows each one's EK fingerprint and status");
        cit_error_context("node", "%.80s", nodename);
    } else if (json_array_size(ids) == 1) {
        json_decref(*node);
        *node = NULL;
        r = d->db->get(d->db, json_string_value(json_array_get(ids, 0)), node);
    }
    json_decref(ids);
    if (r < 0) {
        json_decref(*node);
        *node = NULL;
    }
    return r;
}

int enr_admin_decide(enrolld *d, enr_req *rq, const char *nodename, const char *verb, json_t *body, json_t **out) {
    json_t *node = NULL, *rec = NULL;
    const char *reason = jstr(body, "reason");
    int r = resolve_for_decision(d, nodename, &node);
    if (r < 0) {
        reject(d, rq, verb, NULL, nodename, r);
        return r;
    }
    char id[80];
    snprintf(id, sizeof id, "%s", jstr(node, "id"));
    const char *from, *to;
    bool approve = strcmp(verb, "approve") == 0, revoke = strcmp(verb, "revoke") == 0;
    if (approve)
        from = "pending", to = "approved";
    else if (strcmp(verb, "deny") == 0)
        from = "pending|started", to = "denied";
    else
        from = "approved|pending", to = "revoked";
    /* a compare-and-set on the version read: a renewal that commits meanwhile makes this one
     * read again (a few times), so the certificates revoked are the ones committed */
    for (int attempt = 0;; attempt++) {
        const char *st = jstr(node, "status");
        json_decref(rec);
        rec = json_deep_copy(json_object_get(node, "record"));
        char w[40];
        snprintf(w, sizeof w, "|%s|", from);
        char sw[40];
        snprintf(sw, sizeof sw, "|%s|", st);
        if (!strstr(w, sw)) {
            r = cit_error_set(CIT_E_ENROLL_STATE, "node %s is %s: it cannot be %s", jstr(node, "host"), st,
                              approve ? "approved" : strcmp(verb, "deny") == 0 ? "denied" : "revoked");
            goto done;
        }
        if (approve && (r = issue_certs(d, rec)) < 0)
            goto done;
        json_object_set_new(rec, "decided_by", json_string(rq->actor));
        if (reason)
            json_object_set_new(rec, "reason", json_string(reason));
        bool changed = false;
        enr_cas cas = {.version = node_version(node)};
        r = d->db->update(d->db, id, from, to, rec, &cas, &changed);
        if (approve && (r < 0 || !changed))
            revoke_orphans(d, rec, NULL, NULL);
        if (r < 0)
            goto done;
        if (changed)
            break;
        json_decref(node);
        node = NULL;
        if (approve || attempt >= 4 || (r = d->db->get(d->db, id, &node)) < 0) {
            if (r == 0)
                r = cit_error_set(CIT_E_ENROLL_STATE, "node %s changed while it was being decided", id);
            goto done;
        }
    }
    if (revoke) {
        /* after the commit: the serials of the record committed (no renewal can add others now:
         * it would lose its compare-and-set and revoke its own) */
        const char *rs = reason && (strcmp(reason, "keyCompromise") == 0 || strcmp(reason, "superseded") == 0)
                             ? reason
                             : "cessationOfOperation";
        if ((r = revoke_both(d, jstr(rec, "devid_serial"), jstr(rec, "ak_serial"), rs)) < 0) {
            cit_error_step("the node is revoked in the database; revoke the certificates with `citadel ca revoke SERIAL`");
            goto done;
        }
    }
    json_decref(node);
    node = NULL;
    if ((r = d->db->get(d->db, id, &node)) < 0)
        goto done;
    *out = public_view(node);
    char ev[32];
    snprintf(ev, sizeof ev, "enroll.%s", verb);
    json_t *p = json_pack("{s:s,s:s,s:s}", "enrollment", id, "host", jstr(rec, "host"), "status", to);
    if (reason)
        json_object_set_new(p, "reason", json_string(reason));
    if (jstr(rec, "devid_serial"))
        json_object_set_new(p, "devid_serial", json_string(jstr(rec, "devid_serial")));
    enr_audit(d, rq, ev, p, 0);
done:
    if (r < 0)
        reject(d, rq, verb, id, node ? jstr(node, "host") : jstr(rec, "host"), r);
    json_decref(rec);
    json_decref(node);
    return r;
}

/* ---- configuration: global -> group -> node ---- */

int enr_admin_config_set(enrolld *d, enr_req *rq, json_t *body, json_t **out) {
    const char *scope = jstr(body, "scope") ?: "global", *key = jstr(body, "key");
    json_t *vj = json_object_get(body, "value");
    const char *value = json_string_value(vj);
    int r = 0;
    bool scope_ok = strcmp(scope, "global") == 0 ||
                    (strncmp(scope, "group:", 6) == 0 && valid_name(scope + 6)) ||
                    (strncmp(scope, "node:", 5) == 0 && valid_host(scope + 5));
    if (!scope_ok)
        r = cit_error_set(CIT_E_INPUT_INVALID, "scope must be global, group:NAME or node:HOST");
    else if (!valid_name(key))
        r = cit_error_set(CIT_E_INPUT_INVALID, "key must be a name (letters, digits, '.', '-', '_'; 1-64)");
    else if (vj && !json_is_null(vj) && (!value || strlen(value) > 4096))
        r = cit_error_set(CIT_E_INPUT_INVALID, "value must be a string of at most 4096 bytes, or null to delete");
    if (r == 0)
        r = d->db->config_set(d->db, scope, key, value);
    if (r < 0) {
        reject(d, rq, "config", NULL, NULL, r);
        return r;
    }
    *out = json_pack("{s:s,s:s,s:o}", "scope", scope, "key", key, "value", value ? json_string(value) : json_null());
    enr_audit(d, rq, "enroll.config", json_pack("{s:s,s:s,s:b}", "scope", scope, "key", key, "deleted", value == NULL),
              0);
    return 0;
}

/* The effective settings of a node: node over group over global, each with where it came from. */
static int effective_config(enrolld *d, const char *host, const char *group, json_t **out) {
    char gs[80], ns[300];
    snprintf(gs, sizeof gs, "group:%s", group ? group : "default");
    snprintf(ns, sizeof ns, "node:%s", host);
    const char *scopes[] = {"global", gs, ns};
    json_t *all = NULL;
    int r = d->db->config_get(d->db, scopes, 3, &all);
    if (r < 0)
        return r;
    json_t *eff = json_object();
    for (int i = 0; i < 3; i++) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(all, scopes[i]), k, v) {
            json_t *e = json_pack("{s:O,s:s}", "value", v, "source", scopes[i]);
            json_t *old = json_object_get(eff, k);
            if (old) {
                json_t *ov = json_array();
                json_t *prev = json_object_get(old, "overrides");
                if (prev)
                    json_array_extend(ov, prev);
                json_array_append_new(ov, json_pack("{s:O,s:O}", "source", json_object_get(old, "source"), "value",
                                                    json_object_get(old, "value")));
                json_object_set_new(e, "overrides", ov);
            }
            json_object_set_new(eff, k, e);
        }
    }
    *out = json_pack("{s:s,s:s,s:o,s:o}", "host", host, "group", group ? group : "default", "settings", eff, "scopes",
                     all);
    return 0;
}

int enr_admin_config_get(enrolld *d, enr_req *rq, const char *nodename, json_t **out) {
    if (!nodename) {
        const char *scopes[] = {"global"};
        json_t *all = NULL;
        int r = d->db->config_get(d->db, scopes, 1, &all);
        if (r == 0)
            *out = all;
        return r;
    }
    json_t *node = NULL;
    int r = d->db->get(d->db, nodename, &node);
    if (r == 0)
        r = effective_config(d, jstr(node, "host"), jstr(json_object_get(node, "record"), "group"), out);
    json_decref(node);
    return r;
}

int enr_node_config(enrolld *d, enr_req *rq, json_t *node, json_t **out) {
    return effective_config(d, jstr(node, "host"), jstr(json_object_get(node, "record"), "group"), out);
}

/* ---- renewal: re-attestation with the enrolled AK, a new DevID key certified by it ---- */

int enr_node_renew_start(enrolld *d, enr_req *rq, json_t *node, json_t **out) {
    json_t *rec = json_deep_copy(json_object_get(node, "record"));
    char nonce[2 * ENR_NONCE_BYTES + 1];
    int r = random_hex(nonce, ENR_NONCE_BYTES);
    int64_t expires = (int64_t)time(NULL) + d->cfg.nonce_ttl;
    json_object_set_new(rec, "renew_nonce", json_string(nonce));
    json_object_set_new(rec, "renew_expires", json_integer(expires));
    bool changed = false;
    enr_cas cas = {.version = node_version(node)};
    if (r == 0)
        r = d->db->update(d->db, jstr(node, "id"), "approved", "approved", rec, &cas, &changed);
    if (r == 0 && !changed)
        r = cit_error_set(CIT_E_ENROLL_STATE, "the node is no longer approved");
    json_decref(rec);
    if (r < 0)
        return reject(d, rq, "renew-start", jstr(node, "id"), jstr(node, "host"), r);
    json_t *pcrs = json_array();
    for (int i = 0; i < 24; i++)
        if (d->cfg.pcr_mask & (1u << i))
            json_array_append_new(pcrs, json_integer(i));
    *out = json_pack("{s:s,s:o,s:s,s:I}", "nonce", nonce, "pcrs", pcrs, "bank", "sha256", "nonce_expires",
                     (json_int_t)expires);
    return 0;
}

int enr_node_renew(enrolld *d, enr_req *rq, json_t *node, json_t *body, json_t **out) {
    const char *id = jstr(node, "id"), *host = jstr(node, "host");
    json_t *rec = json_deep_copy(json_object_get(node, "record"));
    json_t *report = NULL;
    char *devid_spki = NULL;
    char old_serial[80], old_ak[80];
    snprintf(old_serial, sizeof old_serial, "%s", jstr(rec, "devid_serial") ?: "");
    snprintf(old_ak, sizeof old_ak, "%s", jstr(rec, "ak_serial") ?: "");
    const char *nonce = jstr(rec, "renew_nonce");
    int r = 0;
    if (!nonce) {
        r = cit_error_set(CIT_E_ENROLL_REPLAY, "no renewal in progress (each renewal nonce is used once)");
        cit_error_step("run `citadel node renew` again (it asks for a fresh nonce first)");
        goto done;
    }
    if ((int64_t)time(NULL) > json_integer_value(json_object_get(rec, "renew_expires"))) {
        r = cit_error_set(CIT_E_ENROLL_NONCE_EXPIRED, "the renewal nonce expired");
        goto done;
    }
    uint8_t *kp = NULL;
    size_t kl = 0;
    if ((r = need_field(body, "devid_csr")) < 0 || (r = b64_field(body, "devid_public", BLOB_MAX, &kp, &kl)) < 0)
        goto done;
    free(kp);
    json_object_set(rec, "devid_public", json_object_get(body, "devid_public"));
    json_object_set(rec, "devid_csr", json_object_get(body, "devid_csr"));
    if ((r = check_quote(d, rec, json_object_get(body, "quote"), nonce, &report)) < 0 ||
        (r = check_certify(rec, json_object_get(body, "certify"), nonce, &devid_spki)) < 0)
        goto done;
    json_object_del(rec, "renew_nonce");
    json_object_del(rec, "renew_expires");
    json_object_set_new(rec, "devid_spki", json_string(devid_spki));
    json_object_set_new(rec, "attested", json_integer((json_int_t)time(NULL)));
    json_object_set_new(rec, "renewed", json_integer((json_int_t)time(NULL)));
    if ((r = issue_certs(d, rec)) < 0)
        goto done;
    /* one compare-and-set on the version read: it consumes the renewal nonce (the record written
     * has none), so a second renewal with the same nonce, or one racing a revoke, loses; the
     * certificates it issued are then revoked (nobody would track them) */
    bool changed = false;
    enr_cas cas = {.version = node_version(node)};
    r = d->db->update(d->db, id, "approved", "approved", rec, &cas, &changed);
    if (r == 0 && !changed)
        r = cit_error_set(CIT_E_ENROLL_STATE, "the node changed during the renewal (revoked, or renewed by another request)");
    if (r < 0) {
        revoke_orphans(d, rec, old_serial, old_ak);
        goto done;
    }
    revoke_both(d, old_serial[0] && strcmp(old_serial, jstr(rec, "devid_serial")) != 0 ? old_serial : NULL,
                old_ak[0] && strcmp(old_ak, jstr(rec, "ak_serial")) != 0 ? old_ak : NULL, "superseded");
    cit_error_clear();
    *out = json_pack("{s:s,s:s,s:O,s:O,s:O,s:s}", "host", host, "status", "approved", "devid_cert",
                     json_object_get(rec, "devid_cert"), "ak_cert", json_object_get(rec, "ak_cert"), "devid_serial",
                     json_object_get(rec, "devid_serial"), "ca_cert", d->ca_pem);
    enr_audit(d, rq, "enroll.renew",
              json_pack("{s:s,s:s,s:s,s:s}", "enrollment", id, "host", host, "devid_serial", jstr(rec, "devid_serial"),
                        "superseded", old_serial),
              0);
done:
    if (r < 0)
        reject(d, rq, "renew", id, host, r);
    free(devid_spki);
    json_decref(report);
    json_decref(rec);
    return r;
}

int enr_crl(enrolld *d, char **pem) {
    json_t *o = NULL;
    int r = 0;
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&d->ctx_lock);
    if (!d->crl_pem || !d->crl_at || now - d->crl_at >= 60) {
        char *fresh = NULL;
        if ((r = cit_ca_crl(&o, d->ca, &fresh)) == 0) {
            free(d->crl_pem);
            d->crl_pem = fresh;
            d->crl_at = now;
        }
    }
    if (r == 0 && !(*pem = strdup(d->crl_pem)))
        r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    pthread_mutex_unlock(&d->ctx_lock);
    json_decref(o);
    return r;
}
