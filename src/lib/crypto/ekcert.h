/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EK certificates (TCG EK Credential Profile) with OpenSSL 3: issuing them for the embedded
 * vTPM's factory, parsing what a TPM keeps in NV, loading manufacturer CA trust stores and the
 * checks of `ek verify`. No TPM access here: the TPM's facts come in as arguments.
 * All functions return 0 or a negative CIT_E_* code with cit_error_last() filled in; outputs
 * are the caller's and untouched on failure.
 */
#pragma once
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* TCG attribute OIDs (EK Credential Profile 3.2.9) and the EK certificate EKU. */
#define CIT_OID_TPM_MANUFACTURER "2.23.133.2.1"
#define CIT_OID_TPM_MODEL "2.23.133.2.2"
#define CIT_OID_TPM_VERSION "2.23.133.2.3"
#define CIT_OID_EK_CERTIFICATE "2.23.133.8.1"

/* What a TPM says about itself, in the certificate's encoding: manufacturer "id:49424D00"
 * (TPM_PT_MANUFACTURER), model (TPM_PT_VENDOR_STRING_1..4, trimmed), version "id:20191023"
 * (TPM_PT_FIRMWARE_VERSION_1). Empty strings when unknown. */
typedef struct cit_tpm_attrs {
    char manufacturer[16];
    char model[40];
    char version[16];
} cit_tpm_attrs;

/* A new manufacturer CA: an ECC P-256 key pair and a self-signed CA certificate (subject CN=cn,
 * O=org, valid until 9999-12-31). *key holds a private key: free it with EVP_PKEY_free, which
 * wipes it. */
int cit__ekcert_ca_new(EVP_PKEY **key, X509 **cert, const char *cn, const char *org);
/* An EK certificate for ek (RSA or EC public key) issued by ca_cert/ca_key: X.509 v3, empty
 * subject, critical subjectAltName directoryName with the TPM attributes, critical keyUsage
 * keyEncipherment (RSA) or keyAgreement (EC), extendedKeyUsage 2.23.133.8.1, critical
 * basicConstraints CA:FALSE, authorityKeyIdentifier; valid from now until 9999-12-31. */
int cit__ekcert_issue(X509 **out, EVP_PKEY *ek, const cit_tpm_attrs *attrs, X509 *ca_cert,
                      EVP_PKEY *ca_key);
/* Parses a DER certificate that may be followed by padding (NV indices are often larger than
 * the certificate). *der_len gets the certificate's own length. CIT_E_EK_CERT_INVALID. */
int cit__ekcert_parse_der(X509 **out, const uint8_t *buf, size_t len, size_t *der_len);
/* Parses a PEM or DER certificate file's contents. CIT_E_INPUT_INVALID. */
int cit__ekcert_parse_any(X509 **out, const uint8_t *buf, size_t len);
/* DER / PEM encodings (malloc'd; PEM is NUL-terminated). */
int cit__ekcert_der(uint8_t **out, size_t *len, X509 *x);
int cit__ekcert_pem(char **out, X509 *x);
/* subject, issuer, serial, validity, SHA-256 fingerprint and the TPM attributes it names. */
json_t *cit__ekcert_summary(X509 *x);

/* Adds every certificate in a PEM text (any number of blocks; other blocks such as private
 * keys are skipped) to st; *added counts them. */
int cit__ekcert_store_add_pem(X509_STORE *st, const char *pem, size_t len, size_t *added);
/* Adds the certificates of a file (PEM bundle or one DER certificate) or of every regular
 * file in a directory (not recursive). CIT_E_INPUT_READ when the path cannot be read,
 * CIT_E_CA_STORE_INVALID when nothing in it is a certificate. */
int cit__ekcert_store_add_path(X509_STORE *st, const char *path, size_t *added);

/* The checks of `ek verify`, in order: chain, validity, ek-key, tpm-attributes, key-usage.
 * Appends {"check","verdict","detail"} objects (verdict pass, warn or fail) to checks. Returns
 * 0 when none failed; otherwise the code of the first failed check (CIT_E_EK_CERT_UNTRUSTED,
 * _EXPIRED, _KEY_MISMATCH, _TPM_ATTRIBUTES, _KEY_USAGE), recorded in cit_error_last() with the
 * check's name and the other failures as causes. ek: the TPM's endorsement public key. */
int cit__ekcert_verify(json_t *checks, X509 *cert, X509_STORE *trust, EVP_PKEY *ek,
                       const cit_tpm_attrs *tpm);

/* The built-in manufacturer CA certificates (the PEM files of data/ek-ca, embedded at build time by
 * scripts/gen-ek-ca-bundle.sh): one PEM text. */
extern const char cit__ek_vendor_cas[];
extern const size_t cit__ek_vendor_cas_len;
