/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS credentials (net.h): a certificate chain with a key from a PEM file, or a TPM identity's
 * key. In the second case the key never leaves the TPM: GnuTLS gets an external private key
 * whose sign callbacks ask libcitadel to sign the handshake digest in the TPM (cit_key_sign on
 * a digest, DER encoding, the form TLS carries ECDSA signatures in).
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/util.h"
#include "net/net.h"

#define PEM_MAX (1024 * 1024)
#define CHAIN_MAX 8

struct cit_tls_creds {
    gnutls_pcert_st *pcert;
    unsigned npcert;
    gnutls_privkey_t key;
    /* a TPM identity's key */
    bool tpm;
    cit_ctx *ctx;
    pthread_mutex_t *lock;
    void (*lock_fn)(void *), (*unlock_fn)(void *); /* instead of lock, when set */
    void *lock_arg;
    char path[256]; /* the identity's key path */
    char actor[64];
    gnutls_pk_algorithm_t pk;
    unsigned bits;
    gnutls_digest_algorithm_t dig; /* the hash that goes with the curve */
    atomic_ullong signs;
};

static int read_pem(const char *file, char **out, const char *what) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (cit_read_file(file, PEM_MAX, &buf, &len) < 0 || len == 0) {
        free(buf);
        cit_error_set(CIT_E_INPUT_READ, "cannot read the TLS %s %s", what, file);
        cit_error_context("file", "%s", file);
        return CIT_E_INPUT_READ;
    }
    *out = (char *)buf; /* NUL-terminated by cit_read_file */
    return 0;
}

static int import_chain(cit_tls_creds *c, const char *pem) {
    gnutls_datum_t cd = {.data = (unsigned char *)pem, .size = (unsigned)strlen(pem)};
    unsigned n = CHAIN_MAX;
    c->pcert = calloc(n, sizeof *c->pcert);
    if (!c->pcert || gnutls_pcert_list_import_x509_raw(c->pcert, &n, &cd, GNUTLS_X509_FMT_PEM, 0) < 0 || n == 0) {
        free(c->pcert);
        c->pcert = NULL;
        return cit_error_set(CIT_E_INPUT_INVALID, "the TLS certificate is not a PEM X.509 certificate (chain of at most %d)",
                             CHAIN_MAX);
    }
    c->npcert = n;
    return 0;
}

void cit_tls_creds_free(cit_tls_creds *c) {
    if (!c)
        return;
    for (unsigned i = 0; i < c->npcert; i++)
        gnutls_pcert_deinit(&c->pcert[i]);
    free(c->pcert);
    if (c->key)
        gnutls_privkey_deinit(c->key);
    free(c);
}

static int pubkey_der(gnutls_pubkey_t p, gnutls_datum_t *out) { return gnutls_pubkey_export2(p, GNUTLS_X509_FMT_DER, out); }

/* Whether the leaf certificate carries the public key pub. */
static bool leaf_has_key(const cit_tls_creds *c, gnutls_pubkey_t pub) {
    gnutls_datum_t a = {0}, b = {0};
    bool same = pubkey_der(pub, &a) == 0 && pubkey_der(c->pcert[0].pubkey, &b) == 0 && a.size == b.size &&
                memcmp(a.data, b.data, a.size) == 0;
    gnutls_free(a.data);
    gnutls_free(b.data);
    return same;
}

int cit_tls_creds_file(cit_tls_creds **out, const char *cert_pem_file, const char *key_pem_file) {
    cit_error_clear();
    if (!cert_pem_file || !key_pem_file)
        return cit_error_set(CIT_E_USAGE, "TLS from files needs a certificate and a key file");
    /* the private key file is a secret: others must not be able to read it */
    struct stat st;
    if (stat(key_pem_file, &st) == 0 && (st.st_mode & 077)) {
        cit_error_set(CIT_E_INSECURE_PERMISSIONS, "the TLS key %s can be read by others (mode %04o)", key_pem_file,
                      (unsigned)(st.st_mode & 07777));
        cit_error_context("file", "%s", key_pem_file);
        cit_error_step("run `chmod 600 %s`, or use a TPM identity's key", key_pem_file);
        return CIT_E_INSECURE_PERMISSIONS;
    }
    cit_tls_creds *c = calloc(1, sizeof *c);
    char *cert = NULL, *key = NULL;
    gnutls_pubkey_t pub = NULL;
    int r = c ? 0 : cit_error_set(CIT_E_INTERNAL, "out of memory");
    if (r == 0)
        r = read_pem(cert_pem_file, &cert, "certificate");
    if (r == 0)
        r = read_pem(key_pem_file, &key, "key");
    if (r == 0 && (r = import_chain(c, cert)) < 0)
        cit_error_context("file", "%s", cert_pem_file);
    if (r == 0) {
        gnutls_datum_t kd = {.data = (unsigned char *)key, .size = (unsigned)strlen(key)};
        int gr = gnutls_privkey_init(&c->key);
        if (gr == 0)
            gr = gnutls_privkey_import_x509_raw(c->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (gr < 0) {
            r = cit_error_set(CIT_E_INPUT_INVALID, "the TLS key %s is not an unencrypted PEM private key", key_pem_file);
            cit_error_cause("%s", gnutls_strerror(gr));
            cit_error_context("file", "%s", key_pem_file);
        }
    }
    if (r == 0 && (gnutls_pubkey_init(&pub) < 0 || gnutls_pubkey_import_privkey(pub, c->key, 0, 0) < 0 ||
                   !leaf_has_key(c, pub))) {
        r = cit_error_set(CIT_E_CERT_MISMATCH, "the TLS certificate %s is not for the key %s", cert_pem_file,
                          key_pem_file);
    }
    if (pub)
        gnutls_pubkey_deinit(pub);
    if (key) {
        cit_memzero(key, strlen(key));
        free(key);
    }
    free(cert);
    if (r < 0) {
        cit_tls_creds_free(c);
        return r;
    }
    *out = c;
    return 0;
}

/* Signs a digest in the TPM with the identity's key; sig is gnutls_malloc'd DER. */
static int tpm_sign_digest(cit_tls_creds *k, const uint8_t *md, size_t mdlen, gnutls_datum_t *sig) {
    const char *dig = mdlen == 32 ? "sha256" : mdlen == 48 ? "sha384" : mdlen == 64 ? "sha512" : NULL;
    if (!dig)
        return GNUTLS_E_INVALID_REQUEST;
    cit_key_sign_options o = {.path = k->path, .data = md, .data_len = mdlen, .digest = dig,
                              .input_is_digest = true, .encoding = "der", .tls_handshake = true};
    json_t *out = NULL;
    if (k->lock_fn)
        k->lock_fn(k->lock_arg);
    else if (k->lock)
        pthread_mutex_lock(k->lock);
    cit_ctx_set_actor(k->ctx, k->actor);
    int r = cit_key_sign(&out, k->ctx, &o);
    if (k->lock_fn)
        k->unlock_fn(k->lock_arg);
    else if (k->lock)
        pthread_mutex_unlock(k->lock);
    if (r < 0)
        return GNUTLS_E_PK_SIGN_FAILED;
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
    atomic_fetch_add(&k->signs, 1);
    return 0;
}

static int sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata, unsigned int flags,
                     const gnutls_datum_t *hash, gnutls_datum_t *signature) {
    return tpm_sign_digest(userdata, hash->data, hash->size, signature);
}

static int sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata, unsigned int flags,
                     const gnutls_datum_t *data, gnutls_datum_t *signature) {
    cit_tls_creds *k = userdata;
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
    cit_tls_creds *k = userdata;
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

int cit_tls_creds_identity(cit_tls_creds **out, cit_ctx *ctx, pthread_mutex_t *sign_lock, const char *identity,
                           const char *cert_pem) {
    cit_error_clear();
    const char *name = identity;
    json_t *id = NULL, *pub = NULL;
    gnutls_pubkey_t tpmpub = NULL;
    cit_tls_creds *c = calloc(1, sizeof *c);
    if (!c)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    if (sign_lock)
        pthread_mutex_lock(sign_lock);
    int r = cit_identity_show(&id, ctx, name);
    const char *path = r == 0 ? json_string_value(json_object_get(id, "path")) : NULL;
    if (r == 0 && !path)
        path = name;
    if (r == 0)
        r = cit_key_export_pub(&pub, ctx, path, "pem", NULL, 0);
    if (sign_lock)
        pthread_mutex_unlock(sign_lock);
    if (r < 0) {
        cit_error_cause("the TLS identity is %s", name);
        goto done;
    }
    snprintf(c->path, sizeof c->path, "%s", path);
    snprintf(c->actor, sizeof c->actor, "tls");
    c->ctx = ctx;
    c->lock = sign_lock;
    c->tpm = true;
    const char *usage = json_string_value(json_object_get(json_object_get(id, "identity"), "usage"));
    if (!usage || (strcmp(usage, "tls-server") != 0 && strcmp(usage, "tls-client") != 0)) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "identity %s has usage %s, not tls-server or tls-client", name,
                          usage ? usage : "(none)");
        cit_error_cause("only TLS identities sign handshakes (and they sign nothing else without approval)");
        cit_error_step("make one with `citadel tpm identity init NAME --usage tls-server --algorithm ecc-p256`");
        goto done;
    }
    const char *alg = json_string_value(json_object_get(id, "algorithm"));
    if (!alg)
        alg = json_string_value(json_object_get(json_object_get(id, "key"), "algorithm"));
    if (alg && strcmp(alg, "ecc-p384") == 0) {
        c->pk = GNUTLS_PK_ECDSA, c->bits = 384, c->dig = GNUTLS_DIG_SHA384;
    } else if (!alg || strcmp(alg, "ecc-p256") == 0) {
        c->pk = GNUTLS_PK_ECDSA, c->bits = 256, c->dig = GNUTLS_DIG_SHA256;
    } else {
        r = cit_error_set(CIT_E_ALG_UNSUPPORTED, "TLS with a TPM key takes ECC P-256 or P-384 identities, not %s", alg);
        cit_error_step("make one with `citadel tpm identity init NAME --usage tls-server --algorithm ecc-p256`");
        goto done;
    }
    /* the certificate: the one given, else the identity's */
    if (!cert_pem) {
        cert_pem = json_string_value(json_object_get(json_object_get(id, "certificate"), "pem"));
        if (!cert_pem) {
            r = cit_error_set(CIT_E_USAGE, "the identity %s has no certificate", name);
            cit_error_step("import one with `citadel tpm identity cert-import %s --input cert.pem`, or give the "
                           "certificate file",
                           name);
            goto done;
        }
    }
    if ((r = import_chain(c, cert_pem)) < 0)
        goto done;
    /* the certificate must carry the identity's key */
    const char *pem = json_string_value(json_object_get(pub, "_text"));
    gnutls_datum_t pd = {.data = (unsigned char *)pem, .size = pem ? (unsigned)strlen(pem) : 0};
    if (gnutls_pubkey_init(&tpmpub) < 0 || gnutls_pubkey_import(tpmpub, &pd, GNUTLS_X509_FMT_PEM) < 0 ||
        !leaf_has_key(c, tpmpub)) {
        r = cit_error_set(CIT_E_CERT_MISMATCH, "the TLS certificate's key is not the TPM key of identity %s", name);
        cit_error_cause("a certificate whose private key cannot be used is refused before any handshake");
        cit_error_step("issue a certificate for the identity's CSR (`citadel tpm identity csr %s`)", name);
        goto done;
    }
    if (gnutls_privkey_init(&c->key) < 0 ||
        gnutls_privkey_import_ext4(c->key, c, sign_data, sign_hash, NULL, NULL, info, 0) < 0) {
        r = cit_error_set(CIT_E_INTERNAL, "GnuTLS refused the external TPM key");
        goto done;
    }
    /* prove it: a signature made in the TPM through the handshake path verifies with the cert */
    gnutls_datum_t msg = {.data = (unsigned char *)"citadel tls self-test", .size = 21}, sig = {0};
    int gr = gnutls_privkey_sign_data(c->key, c->dig, 0, &msg, &sig);
    if (gr == 0)
        gr = gnutls_pubkey_verify_data2(
            tpmpub, c->dig == GNUTLS_DIG_SHA384 ? GNUTLS_SIGN_ECDSA_SHA384 : GNUTLS_SIGN_ECDSA_SHA256, 0, &msg, &sig);
    gnutls_free(sig.data);
    if (gr < 0) {
        r = cit_error_set(CIT_E_CERT_MISMATCH, "the TPM key of identity %s did not make a valid TLS signature", name);
        cit_error_cause("%s", gnutls_strerror(gr));
        cit_error_step("check that the identity can sign now: `citadel tpm key sign %s --input FILE`", path);
        goto done;
    }
    atomic_store(&c->signs, 0); /* the self-test is not a handshake */
    cit_error_clear();
done:
    if (tpmpub)
        gnutls_pubkey_deinit(tpmpub);
    json_decref(id);
    json_decref(pub);
    if (r < 0) {
        cit_tls_creds_free(c);
        return r;
    }
    *out = c;
    return 0;
}

void cit_tls_creds_gnutls(const cit_tls_creds *c, gnutls_pcert_st **pcert, unsigned *npcert, gnutls_privkey_t *key) {
    *pcert = c->pcert;
    *npcert = c->npcert;
    *key = c->key;
}

unsigned long long cit_tls_creds_tpm_signs(const cit_tls_creds *c) {
    return c ? atomic_load(&((cit_tls_creds *)c)->signs) : 0;
}

bool cit_tls_creds_in_tpm(const cit_tls_creds *c) { return c && c->tpm; }

void cit_tls_creds_set_actor(cit_tls_creds *c, const char *actor) {
    snprintf(c->actor, sizeof c->actor, "%s", actor ? actor : "tls");
}

void cit_tls_creds_set_lock_fns(cit_tls_creds *c, void (*lock)(void *), void (*unlock)(void *), void *arg) {
    if (!c)
        return;
    c->lock_fn = lock && unlock ? lock : NULL;
    c->unlock_fn = lock && unlock ? unlock : NULL;
    c->lock_arg = arg;
}
