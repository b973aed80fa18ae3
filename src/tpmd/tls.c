/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS for tpmd: a certificate and key from files, or a TPM identity's key. In the second case
 * the key never leaves the TPM: GnuTLS gets an external private key whose sign callbacks ask
 * libcitadel to sign the handshake digest in the TPM (cit_key_sign on a digest, DER encoding,
 * the form TLS carries ECDSA signatures in).
 */
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "basic/util.h"
#include "tpmd.h"

static int read_pem(const char *file, char **out, const char *what) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (cit_read_file(file, 1024 * 1024, &buf, &len) < 0 || len == 0) {
        free(buf);
        cit_error_set(CIT_E_INPUT_READ, "cannot read the TLS %s %s", what, file);
        cit_error_context("file", "%s", file);
        return CIT_E_INPUT_READ;
    }
    *out = (char *)buf; /* NUL-terminated by cit_read_file */
    return 0;
}

typedef struct tpm_key {
    tpmd *d;
    gnutls_pk_algorithm_t pk;
    unsigned bits;
    gnutls_digest_algorithm_t dig; /* the hash that goes with the curve */
} tpm_key;
static tpm_key the_key;

/* Signs a digest in the TPM with the identity's key; sig is gnutls_malloc'd DER. */
static int tpm_sign_digest(tpm_key *k, const uint8_t *md, size_t mdlen, gnutls_datum_t *sig) {
    tpmd *d = k->d;
    const char *dig = mdlen == 32 ? "sha256" : mdlen == 48 ? "sha384" : mdlen == 64 ? "sha512" : NULL;
    if (!dig)
        return GNUTLS_E_INVALID_REQUEST;
    cit_key_sign_options o = {.path = d->tls_identity_path, .data = md, .data_len = mdlen, .digest = dig,
                              .input_is_digest = true, .encoding = "der", .tls_handshake = true};
    json_t *out = NULL;
    pthread_mutex_lock(&d->tpm_lock);
    cit_ctx_set_actor(d->ctx, "tpmd:tls");
    int r = cit_key_sign(&out, d->ctx, &o);
    pthread_mutex_unlock(&d->tpm_lock);
    if (r < 0) {
        tpmd_log("tls: the TPM did not sign the handshake: %s", cit_error_last()->message);
        return GNUTLS_E_PK_SIGN_FAILED;
    }
    uint8_t *bin = NULL;
    size_t bl = 0;
    r = cit_hex_decode(&bin, &bl, json_string_value(json_object_get(out, "signature_hex")) ?: "");
    json_decref(out);
    if (r < 0 || !bl) {
        free(bin);
        return GNUTLS_E_PK_SIGN_FAILED;
    }
    sig->data = gnutls_malloc(bl);
    if (!sig->data) {
        free(bin);
        return GNUTLS_E_MEMORY_ERROR;
    }
    memcpy(sig->data, bin, bl);
    sig->size = (unsigned)bl;
    free(bin);
    atomic_fetch_add(&d->tls_signs, 1);
    return 0;
}

static int sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata, unsigned int flags,
                     const gnutls_datum_t *hash, gnutls_datum_t *signature) {
    return tpm_sign_digest(userdata, hash->data, hash->size, signature);
}

static int sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata, unsigned int flags,
                     const gnutls_datum_t *data, gnutls_datum_t *signature) {
    tpm_key *k = userdata;
    gnutls_digest_algorithm_t dig = gnutls_sign_get_hash_algorithm(algo);
    if (dig == GNUTLS_DIG_UNKNOWN)
        dig = k->dig;
    uint8_t md[64];
    unsigned len = gnutls_hash_get_len(dig);
    if (len == 0 || len > sizeof md || gnutls_hash_fast(dig, data->data, data->size, md) < 0)
        return GNUTLS_E_INVALID_REQUEST;
    return tpm_sign_digest(k, md, len, signature);
}

static int info(gnutls_privkey_t key, unsigned int flags, void *userdata) {
    tpm_key *k = userdata;
    if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
        return (int)k->pk;
    if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
        return (int)k->bits;
    if (flags & GNUTLS_PRIVKEY_INFO_SIGN_ALGO)
        return k->dig == GNUTLS_DIG_SHA384 ? GNUTLS_SIGN_ECDSA_SECP384R1_SHA384 : GNUTLS_SIGN_ECDSA_SECP256R1_SHA256;
    if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO) {
        gnutls_sign_algorithm_t s = GNUTLS_FLAGS_TO_SIGN_ALGO(flags);
        if (k->dig == GNUTLS_DIG_SHA384)
            return s == GNUTLS_SIGN_ECDSA_SECP384R1_SHA384 || s == GNUTLS_SIGN_ECDSA_SHA384;
        return s == GNUTLS_SIGN_ECDSA_SECP256R1_SHA256 || s == GNUTLS_SIGN_ECDSA_SHA256;
    }
    return GNUTLS_E_UNKNOWN_ALGORITHM;
}

static int pubkey_der(gnutls_pubkey_t p, gnutls_datum_t *out) {
    return gnutls_pubkey_export2(p, GNUTLS_X509_FMT_DER, out);
}

static int identity_setup(tpmd *d) {
    const char *name = d->cfg.tls_identity;
    json_t *id = NULL, *pub = NULL;
    pthread_mutex_lock(&d->tpm_lock);
    int r = cit_identity_show(&id, d->ctx, name);
    const char *path = r == 0 ? json_string_value(json_object_get(id, "path")) : NULL;
    if (r == 0 && !path)
        path = name;
    if (r == 0)
        r = cit_key_export_pub(&pub, d->ctx, path, "pem", NULL, 0);
    pthread_mutex_unlock(&d->tpm_lock);
    if (r < 0) {
        cit_error_cause("TPMD_TLS_IDENTITY names %s", name);
        goto done;
    }
    snprintf(d->tls_identity_path, sizeof d->tls_identity_path, "%s", path);
    const char *usage = json_string_value(json_object_get(json_object_get(id, "identity"), "usage"));
    if (!usage || (strcmp(usage, "tls-server") != 0 && strcmp(usage, "tls-client") != 0)) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "identity %s has usage %s, not tls-server", name, usage ? usage : "(none)");
        cit_error_cause("only TLS identities sign handshakes (and they sign nothing else without approval)");
        cit_error_step("make one with `citadel tpm identity init NAME --usage tls-server --algorithm ecc-p256`");
        goto done;
    }
    const char *alg = json_string_value(json_object_get(id, "algorithm"));
    if (!alg)
        alg = json_string_value(json_object_get(json_object_get(id, "key"), "algorithm"));
    the_key.d = d;
    if (alg && strcmp(alg, "ecc-p384") == 0) {
        the_key.pk = GNUTLS_PK_ECDSA, the_key.bits = 384, the_key.dig = GNUTLS_DIG_SHA384;
    } else if (!alg || strcmp(alg, "ecc-p256") == 0) {
        the_key.pk = GNUTLS_PK_ECDSA, the_key.bits = 256, the_key.dig = GNUTLS_DIG_SHA256;
    } else {
        r = cit_error_set(CIT_E_ALG_UNSUPPORTED, "tpmd serves TLS with ECC P-256 or P-384 identities, not %s", alg);
        cit_error_step("make one with `citadel tpm identity init NAME --usage tls-server --algorithm ecc-p256`");
        goto done;
    }
    /* the certificate: TPMD_TLS_CERT, else the identity's */
    if (d->cfg.tls_cert) {
        if ((r = read_pem(d->cfg.tls_cert, &d->cert_pem, "certificate")) < 0)
            goto done;
    } else {
        const char *pem = json_string_value(json_object_get(json_object_get(id, "certificate"), "pem"));
        if (!pem) {
            r = cit_error_set(CIT_E_USAGE, "the identity %s has no certificate", name);
            cit_error_step("import one with `citadel tpm identity cert-import %s --input cert.pem`, or set "
                           "TPMD_TLS_CERT",
                           name);
            goto done;
        }
        d->cert_pem = strdup(pem);
    }
    gnutls_datum_t cd = {.data = (unsigned char *)d->cert_pem, .size = (unsigned)strlen(d->cert_pem)};
    unsigned n = 8;
    d->pcert = calloc(n, sizeof *d->pcert);
    if (!d->pcert || gnutls_pcert_list_import_x509_raw(d->pcert, &n, &cd, GNUTLS_X509_FMT_PEM, 0) < 0 || n == 0) {
        r = cit_error_set(CIT_E_INPUT_INVALID, "the TLS certificate is not a PEM X.509 certificate (chain)");
        goto done;
    }
    d->npcert = n;
    /* the certificate must carry the identity's key */
    gnutls_pubkey_t tpmpub = NULL;
    gnutls_datum_t a = {0}, b = {0};
    const char *pem = json_string_value(json_object_get(pub, "_text"));
    gnutls_datum_t pd = {.data = (unsigned char *)pem, .size = pem ? (unsigned)strlen(pem) : 0};
    bool same = gnutls_pubkey_init(&tpmpub) == 0 && gnutls_pubkey_import(tpmpub, &pd, GNUTLS_X509_FMT_PEM) == 0 &&
                pubkey_der(tpmpub, &a) == 0 && pubkey_der(d->pcert[0].pubkey, &b) == 0 && a.size == b.size &&
                memcmp(a.data, b.data, a.size) == 0;
    gnutls_free(a.data);
    gnutls_free(b.data);
    if (!same) {
        gnutls_pubkey_deinit(tpmpub);
        r = cit_error_set(CIT_E_CERT_MISMATCH, "the TLS certificate's key is not the TPM key of identity %s", name);
        cit_error_cause("tpmd refuses to serve a certificate it cannot prove possession of");
        cit_error_step("issue a certificate for the identity's CSR (`citadel tpm identity csr %s`)", name);
        goto done;
    }
    if (gnutls_privkey_init(&d->tpm_privkey) < 0 ||
        gnutls_privkey_import_ext4(d->tpm_privkey, &the_key, sign_data, sign_hash, NULL, NULL, info, 0) < 0) {
        gnutls_pubkey_deinit(tpmpub);
        r = cit_error_set(CIT_E_INTERNAL, "GnuTLS refused the external TPM key");
        goto done;
    }
    /* prove it: a signature made in the TPM through the handshake path verifies with the cert */
    gnutls_datum_t msg = {.data = (unsigned char *)"tpmd startup self-test", .size = 22}, sig = {0};
    int gr = gnutls_privkey_sign_data(d->tpm_privkey, the_key.dig, 0, &msg, &sig);
    if (gr == 0)
        gr = gnutls_pubkey_verify_data2(tpmpub, the_key.dig == GNUTLS_DIG_SHA384 ? GNUTLS_SIGN_ECDSA_SHA384
                                                                                : GNUTLS_SIGN_ECDSA_SHA256,
                                        0, &msg, &sig);
    gnutls_free(sig.data);
    gnutls_pubkey_deinit(tpmpub);
    if (gr < 0) {
        r = cit_error_set(CIT_E_CERT_MISMATCH, "the TPM key of identity %s did not make a valid TLS signature", name);
        cit_error_cause("%s", gnutls_strerror(gr));
        cit_error_step("check that the identity can sign now: `citadel tpm key sign %s --input FILE`", path);
        goto done;
    }
    cit_error_clear();
done:
    json_decref(id);
    json_decref(pub);
    return r;
}

int tpmd_tls_setup(tpmd *d) {
    if (d->cfg.tls_identity)
        return identity_setup(d);
    if (!d->cfg.tls_cert && !d->cfg.tls_key)
        return 0;
    if (!d->cfg.tls_cert || !d->cfg.tls_key)
        return cit_error_set(CIT_E_USAGE, "TLS from files needs both TPMD_TLS_CERT and TPMD_TLS_KEY");
    /* the private key file is a secret: others must not be able to read it */
    struct stat st;
    if (stat(d->cfg.tls_key, &st) == 0 && (st.st_mode & 077)) {
        cit_error_set(CIT_E_INSECURE_PERMISSIONS, "the TLS key %s can be read by others (mode %04o)", d->cfg.tls_key,
                      (unsigned)(st.st_mode & 07777));
        cit_error_context("file", "%s", d->cfg.tls_key);
        cit_error_step("run `chmod 600 %s`, or serve TLS from a TPM identity (--tls-identity)", d->cfg.tls_key);
        return CIT_E_INSECURE_PERMISSIONS;
    }
    int r = read_pem(d->cfg.tls_cert, &d->cert_pem, "certificate");
    if (r == 0)
        r = read_pem(d->cfg.tls_key, &d->key_pem, "key");
    return r;
}

int tpmd_tls_cert_cb(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                     const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                     unsigned int *pcert_length, gnutls_privkey_t *privkey) {
    tpmd *d = tpmd_global;
    *pcert = d->pcert;
    *pcert_length = d->npcert;
    *privkey = d->tpm_privkey;
    return 0;
}

void tpmd_tls_free(tpmd *d) {
    if (d->key_pem) {
        cit_memzero(d->key_pem, strlen(d->key_pem));
        free(d->key_pem);
    }
    free(d->cert_pem);
    for (unsigned i = 0; i < d->npcert; i++)
        gnutls_pcert_deinit(&d->pcert[i]);
    free(d->pcert);
    if (d->tpm_privkey)
        gnutls_privkey_deinit(d->tpm_privkey);
}
