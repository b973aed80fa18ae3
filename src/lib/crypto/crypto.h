/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Software cryptography (OpenSSL 3): TPM public areas to EVP_PKEY, key export formats,
 * TPM signatures to the encodings users expect, and software verification.
 * Internal to libcitadel (cit__ prefix). All functions return 0 or a negative CIT_E_* code
 * with cit_error_last() filled in; outputs are untouched on failure; outputs are the
 * caller's (free with free(), json_decref(), EVP_PKEY_free()).
 */
#pragma once
#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

typedef enum { CIT_SIG_ENC_DER, CIT_SIG_ENC_RAW } cit_sig_encoding;
typedef enum { CIT_SCHEME_ECDSA, CIT_SCHEME_RSASSA, CIT_SCHEME_RSAPSS } cit_sig_scheme;

/* TPM2B_PUBLIC of an RSA or ECC (NIST P-256/P-384/P-521) key to an EVP_PKEY.
 * CIT_E_ALG_UNSUPPORTED for other types/curves. */
int cit__pubkey_from_tpm(EVP_PKEY **out, const TPM2B_PUBLIC *pub);
/* SubjectPublicKeyInfo as PEM text (NUL-terminated) / DER bytes. */
int cit__pubkey_pem(char **out, EVP_PKEY *pk);
/* The PEM SubjectPublicKeyInfo of a TPM public area: P-256/P-384 written directly (the same
 * bytes OpenSSL writes), anything else through OpenSSL. */
int cit__tpm_public_pem(char **out, const TPM2B_PUBLIC *pub);
int cit__pubkey_der(uint8_t **out, size_t *out_len, EVP_PKEY *pk);
/* Parses a PEM SubjectPublicKeyInfo. CIT_E_INPUT_INVALID when it is not one. */
int cit__pubkey_from_pem(EVP_PKEY **out, const char *pem, size_t len);
/* A DER SubjectPublicKeyInfo, exactly len bytes (P-256/P-384 imported without the decoder). */
int cit__pubkey_from_der(EVP_PKEY **out, const uint8_t *der, size_t len);
/* One OpenSSH public key line: "ecdsa-sha2-nistp256 AAAA... comment\n", "ssh-rsa ..." or
 * "ssh-ed25519 ...".
 * comment may be NULL. */
int cit__pubkey_openssh(char **out, EVP_PKEY *pk, const char *comment);
/* JWK (RFC 7517/7518/8037): {"kty":"EC","crv":"P-256","x":..,"y":..,"kid":..},
 * {"kty":"OKP","crv":"Ed25519","x":..,"kid":..} or
 * {"kty":"RSA","n":..,"e":..,"kid":..}; kid is the RFC 7638 SHA-256 thumbprint (base64url). */
int cit__pubkey_jwk(json_t **out, EVP_PKEY *pk);
/* "SHA256:<base64 no padding>" of the OpenSSH wire blob, like `ssh-keygen -l`. */
int cit__pubkey_ssh_fingerprint(char **out, EVP_PKEY *pk);
/* Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo. */
int cit__pubkey_fingerprint(char **out, EVP_PKEY *pk);

/* Hash algorithms by name: "sha1", "sha256", "sha384", "sha512". CIT_E_ALG_UNSUPPORTED else. */
int cit__hash_from_name(const char *name, TPMI_ALG_HASH *out);
const char *cit__hash_name(TPMI_ALG_HASH alg);   /* NULL when unknown */
const EVP_MD *cit__hash_md(TPMI_ALG_HASH alg);   /* NULL when unknown */
size_t cit__hash_size(TPMI_ALG_HASH alg);        /* 0 when unknown */
/* out must hold EVP_MAX_MD_SIZE bytes. */
int cit__digest(TPMI_ALG_HASH alg, const uint8_t *data, size_t len, uint8_t *out, size_t *out_len);

/* A TPMT_SIGNATURE as bytes: ECDSA as DER (X9.62 Ecdsa-Sig-Value) or raw r||s, each padded
 * to curve_bytes (32 for P-256, 48 for P-384); RSASSA/RSAPSS as the signature bytes (enc
 * ignored). */
int cit__sig_encode(uint8_t **out, size_t *out_len, const TPMT_SIGNATURE *sig,
                    cit_sig_encoding enc, size_t curve_bytes);
/* Verifies sig over digest (already hashed with hash) in software.
 * 0 when valid; CIT_E_SIGNATURE_INVALID when it does not verify or cannot be parsed;
 * another code on library failure. RSA-PSS accepts any salt length (auto). */
int cit__sig_verify(EVP_PKEY *pk, cit_sig_scheme scheme, TPMI_ALG_HASH hash,
                    const uint8_t *digest, size_t digest_len,
                    const uint8_t *sig, size_t sig_len, cit_sig_encoding enc);

/* Base64 (standard, padded) and base64url (no padding). NUL-terminated results.
 * Decoding accepts either alphabet, with or without padding, and skips whitespace;
 * CIT_E_INPUT_INVALID on anything else. */
int cit__base64_encode(char **out, const uint8_t *buf, size_t len);
int cit__base64url_encode(char **out, const uint8_t *buf, size_t len);
int cit__base64_decode(uint8_t **out, size_t *out_len, const char *s);

/* Records `code` with `what` as message and the drained OpenSSL error queue as context
 * "openssl"; returns code. */
int cit__openssl_error(int code, const char *what);
