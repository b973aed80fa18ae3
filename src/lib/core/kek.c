/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal key-encryption keys (sealed.h): 32 random bytes sealed in the TPM, no password, no
 * policy (an HMAC session unseals them). Used by the audit log (audit/kek, audit_kek.c) and the
 * certificate authority (ca/NAME/kek, ca.c). They never leave the library.
 */
#include <sodium.h>
#include <string.h>

#include "basic/util.h"
#include "core/ed25519.h"
#include "core/sealed.h"

int cit__kek_seal_new(cit_ctx *ctx, const char *path, uint8_t *kek_out, cit_object_version *v) {
    int r = cit__sodium_init();
    if (r < 0)
        return r;
    uint8_t *kek = sodium_malloc(CIT_KEK_BYTES);
    if (!kek)
        return cit_error_set(CIT_E_INTERNAL, "cannot allocate locked memory for the key %s", path);
    randombytes_buf(kek, CIT_KEK_BYTES);
    TPM2B_DIGEST none = {0};
    TPM2B_AUTH noauth = {0};
    r = cit__seal_data(ctx, path, kek, CIT_KEK_BYTES, &none, &noauth, v);
    if (r == 0 && kek_out)
        memcpy(kek_out, kek, CIT_KEK_BYTES);
    sodium_free(kek); /* wipes */
    return r;
}

int cit__kek_unseal(cit_ctx *ctx, cit_object *o, int version, uint8_t *kek) {
    int keep = o->version;
    o->version = version;
    json_t *meta = json_object(); /* no policy: an HMAC session */
    size_t len = 0;
    TPM2B_AUTH none = {0};
    int r = cit__unseal_data(ctx, o, meta, &none, kek, CIT_KEK_BYTES, &len);
    json_decref(meta);
    o->version = keep;
    if (r == 0 && len != CIT_KEK_BYTES) {
        sodium_memzero(kek, CIT_KEK_BYTES);
        r = cit_error_set(CIT_E_STORE_INCONSISTENT, "the key %s (version %d) unsealed to %zu bytes", o->path, version,
                          len);
    }
    return r;
}

bool cit__kek_is_internal(const cit_object *o) {
    size_t n = strlen(o->algorithm);
    return strcmp(o->kind, "secret") == 0 && n >= 4 && strcmp(o->algorithm + n - 4, "-kek") == 0;
}
