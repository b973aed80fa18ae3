/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/enroll-server: enrolld's server-side work for one enrollment, through libcitadel, against
 * the raw cost of the same cryptographic operations in OpenSSL, in the same run (issue 8: goal
 * lib >= 70 % of raw).
 *
 * Setup (not timed): a temporary vTPM workspace is both the node and the server: its EK and EK
 * certificate (its own factory CA is the trust store), an AK, a DevID identity with a CSR signed
 * in the TPM, one quote of PCRs 0,2,4,7 and one TPM2_Certify of the DevID key over a nonce, and a
 * CA (`cit_ca_init`, its key encrypted under a TPM-sealed KEK, opened once).
 *
 *   lib   what enrolld runs for start + finish + approve: parse the EK certificate and EK public
 *         key, cit__ekcert_verify (chain, validity, key, usage) against the manufacturer store;
 *         cit_attest_ak_public_check; a 32-byte secret and cit__attest_credential_make_mem (ECDH
 *         seed to the ECC EK, KDFa/KDFe, AES-CFB, HMAC); cit__attest_verify_buf of the quote
 *         with the recorded AK key (PEM parsed); cit_attest_certify_verify of the DevID key; the
 *         CSR parsed and its signature checked; cit_ca_issue_key (AK certificate) and
 *         cit_ca_issue_csr (DevID certificate) between cit_ca_begin and cit_ca_commit, as enrolld
 *         issues them: both recorded in the CA's store in one SQLite transaction.
 *   raw   the same cryptography with OpenSSL alone: the request's EK certificate (DER), EK public
 *         key and CSR (PEM) parsed from their wire forms; X509_verify_cert of the EK certificate
 *         against the same store and its key compared with the EK; an ephemeral P-256 key, ECDH with the EK,
 *         two SHA-256 KDF blocks, AES-128-CFB of 34 bytes, HMAC-SHA256 (MakeCredential);
 *         EVP_DigestVerify of the quote and of the certify (ECDSA P-256; the TPM's r||s converted
 *         to DER and the AK key parsed once, in setup); X509_REQ_verify; two
 *         X509_sign (ECDSA P-256) of certificates with the same subjects and keys.
 *
 * Variants alternate in rounds of BENCH_ROUND_MS (default 300 ms), BENCH_ROUNDS rounds (default
 * 8); a rate is the median over rounds and the ratio the median of per-round ratios. Every lib
 * result is checked (the quote and certify valid, the certificates issued).
 */
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include "basic/util.h"
#include "citadel/citadel.h"
#include "core/attest.h"
#include "crypto/crypto.h"
#include "crypto/ekcert.h"

#define BENCH_NAME "enroll-server"
#include "bench.h"

#define MAX_ROUNDS 100

static void die(const char *what) {
    fprintf(stderr, "enroll-server: %s\n", what);
    exit(1);
}

static const char *jstr(json_t *j, const char *k) { return json_string_value(json_object_get(j, k)); }

/* inputs */
static char *ek_pem, *ek_cert_pem, *ak_name, *csr_pem, *quote_json, *nonce_hex = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
static uint8_t *ek_der, *ak_pub, *devid_pub, *cert_attest, *cert_sig, *nonce;
static size_t ek_der_len, ak_pub_len, devid_pub_len, cert_attest_len, cert_sig_len, nonce_len;
static X509_STORE *trust;
static cit_ca *ca;
/* raw */
static X509 *raw_ek_cert;
static EVP_PKEY *raw_ek, *raw_ak, *raw_devid, *raw_ca_key;
static X509_REQ *raw_csr;
static uint8_t *q_attest, *q_der, *c_der;
static size_t q_attest_len, q_der_len, c_der_len;

static void sig_to_der(const uint8_t *tpm_sig, size_t len, uint8_t **der, size_t *der_len) {
    TPMT_SIGNATURE sig;
    size_t off = 0;
    if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(tpm_sig, len, &off, &sig) != TSS2_RC_SUCCESS || sig.sigAlg != TPM2_ALG_ECDSA)
        die("a signature does not decode");
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig.signature.ecdsa.signatureR.buffer, sig.signature.ecdsa.signatureR.size, NULL);
    BIGNUM *s = BN_bin2bn(sig.signature.ecdsa.signatureS.buffer, sig.signature.ecdsa.signatureS.size, NULL);
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1)
        die("ECDSA_SIG");
    int n = i2d_ECDSA_SIG(es, NULL);
    *der = malloc((size_t)n);
    uint8_t *p = *der;
    *der_len = (size_t)i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
}

static EVP_PKEY *pem_key(const char *pem) {
    EVP_PKEY *k = NULL;
    if (cit__pubkey_from_pem(&k, pem, strlen(pem)) < 0)
        die_cit("a public key PEM");
    return k;
}

static void setup(void) {
    char dir[] = "/tmp/enroll-bench-XXXXXX";
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/enroll-bench-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    if (!d)
        die("mkdtemp");
    (void)dir;
    char store[4200];
    snprintf(store, sizeof store, "%s/store.db", d);
    cit_ctx *ctx = NULL;
    cit_ctx_options co = {.store_path = store, .backend = "vtpm"};
    json_t *o = NULL;
    if (cit_ctx_new(&ctx, &co) < 0 || cit_workspace_init(&o, ctx, NULL) < 0)
        die_cit("the workspace");
    json_decref(o);
    /* EK, its certificate, the factory CA as the trust store */
    if (cit_ek_show(&o, ctx, "ecc-p256") < 0)
        die_cit("ek show");
    ek_pem = strdup(jstr(o, "public_key"));
    json_decref(o);
    if (cit_ek_cert(&o, ctx, "ecc-p256", NULL, NULL) < 0)
        die_cit("ek cert");
    ek_cert_pem = strdup(jstr(o, "_text"));
    json_decref(o);
    BIO *b = BIO_new_mem_buf(ek_cert_pem, -1);
    raw_ek_cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    unsigned char *der = NULL;
    int dl = i2d_X509(raw_ek_cert, &der);
    ek_der = malloc((size_t)dl);
    memcpy(ek_der, der, (size_t)dl);
    ek_der_len = (size_t)dl;
    OPENSSL_free(der);
    if (cit_ek_ca(&o, ctx, NULL) < 0)
        die_cit("ek ca");
    trust = X509_STORE_new();
    size_t added = 0;
    cit__ekcert_store_add_pem(trust, jstr(o, "_text"), strlen(jstr(o, "_text")), &added);
    json_decref(o);
    /* AK, DevID, CSR */
    if (cit_attest_ak_create(&o, ctx, "enroll/ak", "ecc-p256") < 0)
        die_cit("ak create");
    json_decref(o);
    char *name = NULL;
    if (cit_key_public_blob(ctx, "enroll/ak", &ak_pub, &ak_pub_len, &name) < 0)
        die_cit("ak public");
    ak_name = name;
    cit_identity_init_options io = {.name = "devid", .usage = "tls-client", .algorithm = "ecc-p256"};
    if (cit_identity_init(&o, ctx, &io) < 0)
        die_cit("identity init");
    json_decref(o);
    name = NULL;
    if (cit_key_public_blob(ctx, "devid", &devid_pub, &devid_pub_len, &name) < 0)
        die_cit("devid public");
    free(name);
    if (cit_identity_csr(&o, ctx, "devid", "CN=bench-node", NULL, NULL, NULL) < 0)
        die_cit("csr");
    csr_pem = strdup(jstr(o, "_text"));
    json_decref(o);
    /* the quote and the certify over the nonce */
    if (cit_hex_decode(&nonce, &nonce_len, nonce_hex) < 0)
        die("nonce");
    if (cit_attest_quote(&o, ctx, "enroll/ak", "0,2,4,7", "sha256", nonce_hex, NULL, NULL) < 0)
        die_cit("quote");
    quote_json = json_dumps(json_object_get(o, "quote"), JSON_COMPACT);
    json_t *qj = json_object_get(o, "quote");
    uint8_t *qs = NULL;
    size_t qsl = 0;
    if (cit__base64_decode(&q_attest, &q_attest_len, jstr(qj, "attest")) < 0 ||
        cit__base64_decode(&qs, &qsl, jstr(qj, "signature")) < 0)
        die("quote decode");
    sig_to_der(qs, qsl, &q_der, &q_der_len);
    free(qs);
    json_decref(o);
    if (cit_attest_certify(&o, ctx, "enroll/ak", "devid", nonce, nonce_len) < 0)
        die_cit("certify");
    if (cit__base64_decode(&cert_attest, &cert_attest_len, jstr(o, "attest")) < 0 ||
        cit__base64_decode(&cert_sig, &cert_sig_len, jstr(o, "signature")) < 0)
        die("certify decode");
    sig_to_der(cert_sig, cert_sig_len, &c_der, &c_der_len);
    json_decref(o);
    /* the CA, opened once as enrolld does */
    cit_ca_init_options ci = {.name = "bench"};
    if (cit_ca_init(&o, ctx, &ci, NULL) < 0)
        die_cit("ca init");
    json_decref(o);
    if (cit_ca_open(&ca, ctx, "bench") < 0)
        die_cit("ca open");
    /* raw inputs */
    raw_ek = pem_key(ek_pem);
    char *spki = NULL, *n2 = NULL;
    if (cit_attest_ak_public_check(&o, ak_pub, ak_pub_len, &spki, &n2) < 0)
        die_cit("ak check");
    json_decref(o);
    raw_ak = pem_key(spki);
    free(spki);
    free(n2);
    b = BIO_new_mem_buf(csr_pem, -1);
    raw_csr = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    BIO_free(b);
    raw_devid = X509_REQ_get_pubkey(raw_csr);
    raw_ca_key = EVP_EC_gen("P-256");
    if (!raw_ek_cert || !raw_csr || !raw_devid || !raw_ca_key)
        die("raw inputs");
    /* the context stays open: the CA signs through it (its store records the certificates) */
}

static double ph[8];
#define PH(i) do { double _t = now_s(); ph[i] += _t - _pt; _pt = _t; } while (0)
static void lib_once(void) {
    double _pt = now_s();
    X509 *cert = NULL;
    EVP_PKEY *ek = NULL, *ak = NULL;
    size_t used = 0;
    if (cit__ekcert_parse_der(&cert, ek_der, ek_der_len, &used) < 0 || cit__pubkey_from_pem(&ek, ek_pem, strlen(ek_pem)) < 0)
        die_cit("ek parse");
    json_t *checks = json_array();
    cit_tpm_attrs none = {.manufacturer = "unknown"};
    int r = cit__ekcert_verify(checks, cert, trust, ek, &none);
    if (r < 0 && r != CIT_E_EK_TPM_ATTRIBUTES)
        die_cit("ek verify");
    json_decref(checks);
    X509_free(cert);
    PH(0);
    json_t *o = NULL;
    char *spki = NULL, *name = NULL;
    if (cit_attest_ak_public_check(&o, ak_pub, ak_pub_len, &spki, &name) < 0)
        die_cit("ak check");
    json_decref(o);
    uint8_t secret[32];
    RAND_bytes(secret, sizeof secret);
    if (cit__attest_credential_make_mem(&o, ek, name, secret, sizeof secret) < 0)
        die_cit("make credential");
    json_decref(o);
    PH(1);
    if (cit__pubkey_from_pem(&ak, spki, strlen(spki)) < 0)
        die_cit("ak pem");
    bool valid = false;
    if (cit__attest_verify_buf(&o, NULL, "quote", (const uint8_t *)quote_json, strlen(quote_json), nonce_hex, ak,
                               "enrolled AK", NULL, NULL, &valid) < 0 ||
        !valid)
        die_cit("quote verify");
    json_decref(o);
    PH(2);
    char *dspki = NULL;
    valid = false;
    if (cit_attest_certify_verify(&o, ak_pub, ak_pub_len, cert_attest, cert_attest_len, cert_sig, cert_sig_len,
                                  devid_pub, devid_pub_len, nonce, nonce_len, &valid, &dspki) < 0 ||
        !valid)
        die_cit("certify verify");
    json_decref(o);
    PH(3);
    BIO *b = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    BIO_free(b);
    EVP_PKEY *dk = NULL;
    if (!req || X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1 ||
        cit__pubkey_from_pem(&dk, dspki, strlen(dspki)) < 0 || EVP_PKEY_eq(dk, X509_REQ_get0_pubkey(req)) != 1)
        die("csr");
    X509_REQ_free(req);
    EVP_PKEY_free(dk);
    PH(4);
    uint8_t *sd = NULL;
    size_t sl = 0;
    if (cit__pubkey_der(&sd, &sl, ak) < 0)
        die_cit("spki der");
    char *pem1 = NULL, *pem2 = NULL;
    cit_ca_issue_options ao = {.profile = "ak", .subject = "CN=bench-node AK", .hw_serial = secret, .hw_serial_len = 32};
    cit_ca_issue_options dv = {.profile = "devid", .subject = "CN=bench-node", .hw_serial = secret, .hw_serial_len = 32};
    if (cit_ca_begin(ca) < 0 || cit_ca_issue_key(&o, ca, sd, sl, &ao, &pem1) < 0)
        die_cit("issue ak");
    json_decref(o);
    PH(5);
    if (cit_ca_issue_csr(&o, ca, (const uint8_t *)csr_pem, strlen(csr_pem), &dv, &pem2) < 0)
        die_cit("issue devid");
    json_decref(o);
    if (cit_ca_commit(ca) < 0)
        die_cit("commit");
    PH(6);
    cit_memzero(secret, sizeof secret);
    free(sd);
    free(pem1);
    free(pem2);
    free(spki);
    free(name);
    free(dspki);
    EVP_PKEY_free(ek);
    EVP_PKEY_free(ak);
}

static void raw_verify(EVP_PKEY *k, const uint8_t *msg, size_t ml, const uint8_t *der, size_t dl) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m || EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, k) != 1 || EVP_DigestVerify(m, der, dl, msg, ml) != 1)
        die("raw verify");
    EVP_MD_CTX_free(m);
}

static void raw_sign_cert(EVP_PKEY *subject_key, const char *cn) {
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 12345);
    X509_set_version(x, 2);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, subject_key);
    if (X509_sign(x, raw_ca_key, EVP_sha256()) <= 0)
        die("raw sign");
    unsigned char *der = NULL;
    i2d_X509(x, &der);
    OPENSSL_free(der);
    X509_NAME_free(n);
    X509_free(x);
}

static void raw_once(void) {
    /* the request's inputs parsed from their wire forms, as any server must: the EK certificate
     * (DER), the EK public key and the CSR (PEM) */
    const unsigned char *p = ek_der;
    X509 *ekc = d2i_X509(NULL, &p, (long)ek_der_len);
    BIO *b = BIO_new_mem_buf(ek_pem, -1);
    EVP_PKEY *ekk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *csr = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!ekc || !ekk || !csr)
        die("raw parse");
    /* EK chain, and its key is the EK */
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    if (!sc || X509_STORE_CTX_init(sc, trust, ekc, NULL) != 1 || X509_verify_cert(sc) != 1 ||
        EVP_PKEY_eq(X509_get0_pubkey(ekc), ekk) != 1)
        die("raw chain");
    X509_STORE_CTX_free(sc);
    X509_free(ekc);
    EVP_PKEY_free(ekk);
    /* MakeCredential to the ECC EK: ephemeral key, ECDH, KDFe/KDFa blocks, AES-CFB, HMAC */
    EVP_PKEY *eph = EVP_EC_gen("P-256");
    EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new(eph, NULL);
    uint8_t z[32], seed[32], key[32], enc[34], plain[34] = {0, 32}, mac[32];
    size_t zl = sizeof z;
    if (!eph || !dc || EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, raw_ek) != 1 ||
        EVP_PKEY_derive(dc, z, &zl) != 1)
        die("raw ecdh");
    EVP_PKEY_CTX_free(dc);
    unsigned char pub[65];
    EVP_PKEY_get_octet_string_param(eph, "encoded-pub-key", pub, sizeof pub, NULL);
    EVP_PKEY_free(eph);
    SHA256(z, zl, seed);
    SHA256(seed, sizeof seed, key);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int o1 = 0, o2 = 0;
    uint8_t iv[16] = {0};
    if (!c || EVP_EncryptInit_ex(c, EVP_aes_128_cfb128(), NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(c, enc, &o1, plain, sizeof plain) != 1 || EVP_EncryptFinal_ex(c, enc + o1, &o2) != 1)
        die("raw aes");
    EVP_CIPHER_CTX_free(c);
    unsigned int ml = 0;
    HMAC(EVP_sha256(), seed, sizeof seed, enc, sizeof enc, mac, &ml);
    /* the quote and the certify (ECDSA P-256 verifications), the CSR */
    raw_verify(raw_ak, q_attest, q_attest_len, q_der, q_der_len);
    raw_verify(raw_ak, cert_attest, cert_attest_len, c_der, c_der_len);
    if (X509_REQ_verify(csr, X509_REQ_get0_pubkey(csr)) != 1 || EVP_PKEY_eq(X509_REQ_get0_pubkey(csr), raw_devid) != 1)
        die("raw csr");
    X509_REQ_free(csr);
    /* two certificates signed */
    raw_sign_cert(raw_ak, "bench-node AK");
    raw_sign_cert(raw_devid, "bench-node");
}

static double rate_for(void (*fn)(void), int ms, double *elapsed) {
    double t0 = now_s(), deadline = t0 + ms / 1000.0;
    long n = 0;
    do {
        fn();
        n++;
    } while (now_s() < deadline);
    *elapsed = now_s() - t0;
    return n / *elapsed;
}

int main(void) {
    int rounds = env_int("BENCH_ROUNDS", 8, 1, MAX_ROUNDS);
    int round_ms = env_int("BENCH_ROUND_MS", 300, 20, 60000);
    setup();
    lib_once(); /* warm-up */
    raw_once();
    double lib[MAX_ROUNDS], raw[MAX_ROUNDS], ratio[MAX_ROUNDS], e;
    for (int i = 0; i < rounds; i++) {
        if (i % 2 == 0) {
            lib[i] = rate_for(lib_once, round_ms, &e);
            raw[i] = rate_for(raw_once, round_ms, &e);
        } else {
            raw[i] = rate_for(raw_once, round_ms, &e);
            lib[i] = rate_for(lib_once, round_ms, &e);
        }
        ratio[i] = lib[i] / raw[i];
    }
    double ml = median(lib, rounds), mr = median(raw, rounds), mq = median(ratio, rounds);
    printf("variant  enrollments/s (median of %d rounds of %d ms)\n", rounds, round_ms);
    printf("lib      %10.0f   EK chain + AK check + MakeCredential + quote + certify + CSR + 2 certificates issued and recorded\n", ml);
    printf("raw      %10.0f   the same cryptography in OpenSSL alone\n", mr);
    if (getenv("BENCH_VERBOSE"))
        for (int i = 0; i < 7; i++)
            printf("phase %d: %.1f%%\n", i, 100 * ph[i] / (ph[0] + ph[1] + ph[2] + ph[3] + ph[4] + ph[5] + ph[6]));
    printf("ratio lib/raw: %.3f (goal >= 0.70)\n", mq);
    printf("RESULT\tenroll-server\tserver-side enrollments/s\t%.0f\traw OpenSSL, same operations\t%.0f\t%.3f\t>= 0.70\n", ml,
           mr, mq);
    return 0;
}
