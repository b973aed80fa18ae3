/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ed25519 keys sealed by the TPM (docs/ed25519.md). TPMs do not sign with Ed25519, so the key is
 * a software key whose 32-byte seed only the TPM can give back: it is sealed in a keyed-hash
 * object under the storage key with the key's policy (PCRs 0,7 by default), and the store keeps
 * the wrapped object and the public key, never the seed. Signing unseals the seed into
 * sodium_malloc'd memory (mlock'd, guard pages, kept out of core dumps), signs with libsodium and
 * wipes it. A backup is the seed encrypted under a passphrase (Argon2id + XChaCha20-Poly1305).
 *
 * Objects: kind "key", algorithm "ed25519", scheme "eddsa", usage "sign"; each version holds the
 * sealed object's blobs and, as its payload, the 32-byte public key.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "core/ed25519.h"
#include "core/keys.h"
#include "core/profiles.h"
#include "core/sealed.h"
#include "crypto/crypto.h"
#include "ctx.h"

#define DEFAULT_PCRS "0,7"
#define SIGNATURE_FILE_MAX 4096
#define PASSPHRASE_MIN 12
#define PASSPHRASE_MAX 1024
#define SEED_DOMAIN "citadel ed25519 seed v1" /* BLAKE2b key: separates this use of the hash */

/* ---- libsodium ---- */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_state = -1;

static void sodium_start(void) { sodium_state = sodium_init(); }

int cit__sodium_init(void) {
    pthread_once(&sodium_once, sodium_start);
    if (sodium_state < 0)
        return cit_error_set(CIT_E_INTERNAL, "libsodium cannot be initialised");
    return 0;
}

bool cit__is_ed25519(const cit_object *o) { return strcmp(o->algorithm, "ed25519") == 0; }

/* Secret buffers come from sodium_malloc; sodium_free wipes them. */
static void *secure_alloc(size_t n) {
    void *p = sodium_malloc(n);
    if (!p)
        cit_error_set(CIT_E_INTERNAL, "cannot allocate locked memory for a secret");
    return p;
}

static void secure_freep(uint8_t **p) {
    if (*p)
        sodium_free(*p);
    *p = NULL;
}
#define _cleanup_secure_ _cleanup_(secure_freep)

int cit__ed25519_pubkey(EVP_PKEY **out, const cit_object_version *v) {
    if (!v->payload || v->payload_len != crypto_sign_PUBLICKEYBYTES) {
        cit_error_set(CIT_E_STORE_IO, "the stored Ed25519 public key of version %d is damaged",
                      v->version);
        cit_error_step("run `citadel tpm doctor`");
        return CIT_E_STORE_IO;
    }
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, v->payload, v->payload_len);
    if (!pk)
        return cit__openssl_error(CIT_E_CRYPTO, "cannot make an Ed25519 public key");
    *out = pk;
    return 0;
}

/* 32 bytes = BLAKE2b-256 keyed with SEED_DOMAIN over TPM2_GetRandom(32) || randombytes(32): as
 * strong as the better of the two generators. */
static int make_seed(cit_ctx *ctx, uint8_t *seed) {
    cit_tpm *t;
    int r = cit__ctx_tpm(ctx, &t);
    if (r < 0)
        return r;
    _cleanup_secure_ uint8_t *mix = secure_alloc(64);
    if (!mix)
        return CIT_E_INTERNAL;
    size_t got = 0;
    for (int tries = 0; got < 32 && tries < 8; tries++) {
        TPM2B_DIGEST *rnd = NULL;
        TSS2_RC rc = Esys_GetRandom(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    (UINT16)(32 - got), &rnd);
        if (rc != TSS2_RC_SUCCESS)
            return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "TPM2_GetRandom failed");
        size_t n = rnd->size < 32 - got ? rnd->size : 32 - got;
        memcpy(mix + got, rnd->buffer, n);
        got += n;
        sodium_memzero(rnd, sizeof *rnd);
        Esys_Free(rnd);
    }
    if (got < 32)
        return cit_error_set(CIT_E_TPM_COMMAND, "the TPM gave only %zu random bytes", got);
    randombytes_buf(mix + 32, 32);
    crypto_generichash(seed, CIT_ED25519_SEED_BYTES, mix, 64, (const uint8_t *)SEED_DOMAIN,
                       sizeof SEED_DOMAIN - 1);
    return 0;
}

/* The public key of a seed (the expanded key is made and wiped in locked memory). */
static int public_of_seed(const uint8_t *seed, uint8_t pk[32]) {
    _cleanup_secure_ uint8_t *sk = secure_alloc(CIT_ED25519_SK_BYTES);
    if (!sk)
        return CIT_E_INTERNAL;
    crypto_sign_seed_keypair(pk, sk, seed);
    return 0;
}

static int refuse(const char *what, const char *why) {
    cit_error_set(CIT_E_USAGE, "%s does not apply to ed25519 keys", what);
    cit_error_cause("%s", why);
    cit_error_step("run `citadel tpm key create --help`; docs/ed25519.md describes ed25519 keys");
    return CIT_E_USAGE;
}

static int hex_digest(const char *hex, TPM2B_DIGEST *out, const char *path) {
    uint8_t *pd = NULL;
    size_t pl = 0;
    memset(out, 0, sizeof *out);
    if (!hex)
        return 0;
    if (cit_hex_decode(&pd, &pl, hex) < 0 || pl != 32) {
        free(pd);
        return cit_error_set(CIT_E_STORE_IO, "the stored policy digest of %s is damaged", path);
    }
    memcpy(out->buffer, pd, pl);
    out->size = (UINT16)pl;
    free(pd);
    return 0;
}

/* Seals seed under the policy digest hex with the password auth into a new version v (payload:
 * the public key). */
static int seal_version(cit_ctx *ctx, const char *path, const uint8_t *seed,
                        const char *policy_digest_hex, const TPM2B_AUTH *auth,
                        cit_object_version *v) {
    TPM2B_DIGEST pd;
    uint8_t pk[32];
    int r = hex_digest(policy_digest_hex, &pd, path);
    if (r == 0)
        r = public_of_seed(seed, pk);
    if (r == 0)
        r = cit__seal_data(ctx, path, seed, CIT_ED25519_SEED_BYTES, &pd, auth, v);
    if (r < 0)
        return r;
    v->payload = malloc(sizeof pk);
    if (!v->payload)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    memcpy(v->payload, pk, sizeof pk);
    v->payload_len = sizeof pk;
    return 0;
}

/* Checks everything about a new ed25519 key that needs no TPM: options, profile, a free path. */
static int check_new(cit_ctx *ctx, const char *path, const cit_key_create_options *opt) {
    int r = cit__check_path(path);
    if (r < 0)
        return r;
    if (opt) {
        if (opt->persist)
            return refuse(
                "--persist",
                "the TPM holds the sealed seed, not a key it could keep at a persistent handle");
        if (opt->parent)
            return refuse("--parent", "the seed is sealed under the storage primary key");
        if (opt->usage && strcmp(opt->usage, "sign") != 0)
            return refuse("--usage storage", "an ed25519 key only signs");
        if (opt->scheme && strcmp(opt->scheme, "eddsa") != 0)
            return refuse("this --scheme", "ed25519 keys sign with eddsa (RFC 8032 Ed25519)");
        if (opt->template_name)
            return refuse("--template", "the templates describe TPM keys");
    }
    cit_store *s;
    r = cit__ctx_store(ctx, &s);
    if (r == 0)
        r = cit__profile_check(ctx, path, "ed25519");
    if (r < 0)
        return r;
    cit_object existing = {0};
    if (cit__object_find(s, path, &existing) == 0) {
        cit__object_clear(&existing);
        cit_error_set(CIT_E_OBJECT_EXISTS, "object already exists: %s", path);
        cit_error_cause("the path '%s' is taken", path);
        cit_error_context("path", "%s", path);
        return CIT_E_OBJECT_EXISTS;
    }
    cit_error_clear();
    return 0;
}

/* Stores a new ed25519 key at path with seed sealed under the policy (pcrs/bank or policy_name;
 * PCRs 0,7 when neither), with the password in auth_file when given. extra is merged into the
 * metadata; action names the log event. */
static int store_new(json_t **out, cit_ctx *ctx, const char *path, const char *pcrs,
                     const char *bank, const char *policy_name, const char *auth_file,
                     const uint8_t *seed, json_t *extra, const char *action) {
    if (!pcrs && !policy_name)
        pcrs = DEFAULT_PCRS;
    json_t *pol = NULL;
    char *digest = NULL;
    TPM2B_AUTH auth = {0};
    cit_object o = {0};
    cit_object_version v = {.version = 1};
    cit_store *s = ctx->store;
    int r = cit__policy_for_object(ctx, path, pcrs, bank, policy_name, NULL, auth_file != NULL,
                                   &pol, &digest);
    if (r == 0 && auth_file)
        r = cit__read_auth(auth_file, &auth);
    if (r == 0)
        r = seal_version(ctx, path, seed, digest, &auth, &v);
    cit_memzero(&auth, sizeof auth);
    if (r < 0)
        goto done;
    snprintf(o.path, sizeof o.path, "%s", path);
    snprintf(o.kind, sizeof o.kind, "key");
    snprintf(o.status, sizeof o.status, "active");
    snprintf(o.algorithm, sizeof o.algorithm, "ed25519");
    snprintf(o.scheme, sizeof o.scheme, "eddsa");
    snprintf(o.usage, sizeof o.usage, "sign");
    o.version = 1;
    json_t *meta = extra ? json_deep_copy(extra) : json_object();
    json_object_set_new(meta, "seed", json_string("tpm-sealed"));
    if (auth_file)
        json_object_set_new(meta, "auth", json_string("password"));
    json_object_set(meta, "policy_json", pol);
    json_object_set_new(meta, "policy_digest", json_string(digest));
    if (policy_name)
        json_object_set_new(meta, "policy_name", json_string(policy_name));
    o.metadata = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(meta);
    r = cit__store_begin(s);
    if (r < 0)
        goto done;
    r = cit__object_insert(s, &o);
    if (r == 0)
        r = cit__version_insert(s, o.id, &v);
    if (r == 0) {
        json_t *d = json_pack("{s:s,s:s}", "algorithm", "ed25519", "usage", "sign");
        if (extra && json_object_get(extra, "restored_from"))
            json_object_set(d, "restored_from", json_object_get(extra, "restored_from"));
        r = cit__store_event(s, action, o.path, o.id, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        goto done;
    }
    v.created_at = o.created_at;
    json_t *j = cit__object_json(&o, s);
    json_t *vj = cit__key_version_json(&o, &v, true);
    json_object_update(j, vj);
    json_decref(vj);
    json_object_set_new(j, "version", json_integer(1));
    char *pkhex = cit_hex_encode(v.payload, v.payload_len);
    json_object_set_new(j, "public_key_hex", json_string(pkhex ? pkhex : ""));
    free(pkhex);
    json_object_set_new(j, "seed", json_string("sealed in the TPM (never stored in clear)"));
    *out = j;
done:
    json_decref(pol);
    free(digest);
    cit__version_clear(&v);
    cit__object_clear(&o);
    return r;
}

int cit__ed25519_create(json_t **out, cit_ctx *ctx, const cit_key_create_options *opt) {
    int r = cit__sodium_init();
    if (r == 0)
        r = check_new(ctx, opt->path, opt);
    if (r < 0)
        return r;
    if (opt->pcrs && opt->policy) {
        cit_error_set(CIT_E_USAGE, "give --pcr or --policy, not both");
        cit_error_cause(
            "a named policy can list PCRs itself (`citadel tpm policy create NAME --pcr LIST`)");
        return CIT_E_USAGE;
    }
    if (ctx->plan) {
        static const char *const ops[] = {
            "TPM2_PCR_Read (the bound PCRs)",
            "TPM2_GetRandom (32 bytes)",
            "TPM2_StartAuthSession (HMAC, salted, parameter encryption)",
            "TPM2_Create (sealed data object: the seed)",
            "TPM2_FlushContext",
            NULL};
        *out = cit__plan(
            "create an ed25519 key: a seed from the TPM's and libsodium's RNGs, sealed in the TPM",
            ops);
        json_object_set_new(*out, "path", json_string(opt->path));
        json_object_set_new(*out, "algorithm", json_string("ed25519"));
        json_object_set_new(*out, "pcrs",
                            json_string(opt->policy ? "(the policy's)"
                                        : opt->pcrs ? opt->pcrs
                                                    : DEFAULT_PCRS));
        return 0;
    }
    _cleanup_secure_ uint8_t *seed = secure_alloc(CIT_ED25519_SEED_BYTES);
    if (!seed)
        return CIT_E_INTERNAL;
    r = make_seed(ctx, seed);
    if (r == 0)
        r = store_new(out, ctx, opt->path, opt->pcrs, opt->bank, opt->policy, opt->auth_file, seed,
                      NULL, "key.create");
    return r;
}

int cit__ed25519_refuse_unapproved(cit_ctx *ctx, const char *what) {
    const cit_profile_def *p = cit__profile_active(ctx);
    if (!p->approval_required)
        return 0;
    cit_error_set(CIT_E_PROFILE_VIOLATION, "profile %s does not allow %s of an ed25519 key",
                  p->name, what);
    cit_error_cause("the profile requires an approved request for every signature; %s would let "
                    "the key sign without one",
                    what);
    cit_error_context("profile", "%s", p->name);
    cit_error_step(
        "sign each message with `citadel tpm key sign` and an approval (`--approval ID`)");
    return CIT_E_PROFILE_VIOLATION;
}

int cit__ed25519_unseal_sk(cit_ctx *ctx, const cit_object *o, const char *auth_file, uint8_t *sk) {
    int r = cit__sodium_init();
    if (r < 0)
        return r;
    TPM2B_AUTH auth;
    r = cit__key_need_auth(o, auth_file, &auth);
    if (r < 0)
        return r;
    json_t *meta = json_loads(o->metadata ? o->metadata : "{}", 0, NULL);
    cit_object_version v = {0};
    uint8_t pk[32];
    size_t len = 0;
    _cleanup_secure_ uint8_t *seed = secure_alloc(CIT_ED25519_SEED_BYTES);
    if (!seed)
        r = CIT_E_INTERNAL;
    if (r == 0)
        r = cit__version_get(ctx->store, o->id, o->version, &v);
    if (r == 0 && (!v.payload || v.payload_len != sizeof pk))
        r = cit_error_set(CIT_E_STORE_IO, "the stored Ed25519 public key of %s is damaged",
                          o->path);
    if (r == 0) {
        r = cit__unseal_data(ctx, o, meta, &auth, seed, CIT_ED25519_SEED_BYTES, &len);
        if (r == CIT_E_POLICY_FAIL) {
            cit_error_cause("the seed of %s stays sealed while its policy is not met", o->path);
            cit_error_step("if the change is expected (a firmware or boot update), restore the key "
                           "from its backup "
                           "in the new state: `citadel tpm key restore PATH --input FILE "
                           "--passphrase-file P`");
            cit_error_step("docs/ed25519.md describes the recovery procedure");
        }
    }
    cit_memzero(&auth, sizeof auth);
    if (r == 0 && len != CIT_ED25519_SEED_BYTES)
        r = cit_error_set(CIT_E_STORE_IO, "the sealed seed of %s has %zu bytes, not 32", o->path,
                          len);
    if (r == 0) {
        crypto_sign_seed_keypair(pk, sk, seed);
        if (sodium_memcmp(pk, v.payload, sizeof pk) != 0) {
            sodium_memzero(sk, CIT_ED25519_SK_BYTES);
            r = cit_error_set(CIT_E_STORE_INCONSISTENT,
                              "the unsealed seed of %s does not match its public key", o->path);
            cit_error_cause("the store's public key or sealed object of version %d was replaced",
                            o->version);
            cit_error_context("path", "%s", o->path);
        }
    }
    cit__version_clear(&v);
    json_decref(meta);
    return r;
}

static int check_sign_options(const cit_object *o, const char *digest, bool input_is_digest,
                              const char *encoding) {
    if (digest || input_is_digest) {
        cit_error_set(CIT_E_USAGE,
                      "%s is an ed25519 key: it signs the message itself, not a digest", o->path);
        cit_error_cause(
            "Ed25519 (RFC 8032) hashes the message with SHA-512 as part of the signature");
        cit_error_step("leave out --digest and --input-is-digest; give the message with --input "
                       "(at most 64 MiB)");
        return CIT_E_USAGE;
    }
    if (encoding && strcmp(encoding, "raw") != 0) {
        cit_error_set(CIT_E_USAGE, "an Ed25519 signature has one encoding: raw (64 bytes)");
        cit_error_step("leave out --encoding for ed25519 keys");
        return CIT_E_USAGE;
    }
    return 0;
}

static int read_message(const char *input, uint8_t **msg, size_t *len) {
    int r = cit__read_input(input, CIT_ED25519_MESSAGE_MAX, "the message", false, msg, len);
    if (r == CIT_E_INPUT_TOO_LARGE)
        cit_error_cause("Ed25519 signs the whole message in memory; citadel takes up to 64 MiB");
    return r;
}

int cit__ed25519_sign(json_t **out, cit_ctx *ctx, const cit_object *o,
                      const cit_key_sign_options *opt) {
    int r = cit__sodium_init();
    if (r == 0)
        r = check_sign_options(o, opt->digest, opt->input_is_digest, opt->encoding);
    if (r < 0)
        return r;
    uint8_t *msg = NULL;
    size_t len = 0;
    if (opt->data) {
        if (opt->data_len > CIT_ED25519_MESSAGE_MAX)
            r = cit_error_set(CIT_E_INPUT_TOO_LARGE, "the message is larger than %u bytes",
                              (unsigned)CIT_ED25519_MESSAGE_MAX);
        else if ((r = cit__sign_data_check(opt)) == 0 && !(msg = malloc(opt->data_len)))
            r = cit_error_set(CIT_E_INTERNAL, "out of memory");
        if (r == 0) {
            memcpy(msg, opt->data, opt->data_len);
            len = opt->data_len;
        }
    } else if (!opt->input)
        r = cit_error_set(CIT_E_USAGE, "nothing to sign: no input");
    else
        r = read_message(opt->input, &msg, &len);
    if (r < 0)
        return r;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_Load (sealed seed)",
                                          "TPM2_StartAuthSession (policy, salted)",
                                          "TPM2_PolicyPCR",
                                          "TPM2_Unseal (response encrypted)",
                                          "TPM2_FlushContext",
                                          "Ed25519 signature in software (libsodium)",
                                          NULL};
        *out = cit__plan("sign the message with the ed25519 key", ops);
        free(msg);
        return 0;
    }
    /* under a profile that requires approvals the request names the message by its SHA-256,
     * the digest an operator can check with sha256sum */
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    r = cit__digest(TPM2_ALG_SHA256, msg, len, md, &mdlen);
    if (r == 0)
        r = cit__approval_gate(ctx, o, TPM2_ALG_SHA256, md, mdlen, opt->approval);
    if (r < 0) {
        free(msg);
        return r;
    }
    uint8_t sig[crypto_sign_BYTES];
    _cleanup_secure_ uint8_t *sk = secure_alloc(CIT_ED25519_SK_BYTES);
    if (!sk)
        r = CIT_E_INTERNAL;
    if (r == 0)
        r = cit__ed25519_unseal_sk(ctx, o, opt->auth_file, sk);
    if (r == 0)
        crypto_sign_detached(sig, NULL, msg, len, sk);
    secure_freep(&sk); /* wiped before anything else happens */
    free(msg);
    if (r < 0)
        return r;
    if (opt->output) {
        int w = cit_write_file_atomic(opt->output, sig, sizeof sig, 0644, 0);
        if (w < 0) {
            /* an approval stays unused when its signature could not be delivered */
            cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", opt->output, strerror(-w));
            cit_error_context("file", "%s", opt->output);
            return CIT_E_OUTPUT_WRITE;
        }
    }
    if ((r = cit__approval_consume(ctx, opt->approval)) < 0) {
        if (opt->output) /* used by a racing process: this signature is not handed out */
            unlink(opt->output);
        return r;
    }
    json_t *j = json_object();
    json_object_set_new(j, "path", json_string(o->path));
    json_object_set_new(j, "version", json_integer(o->version));
    json_object_set_new(j, "algorithm", json_string("ed25519"));
    json_object_set_new(j, "scheme", json_string("eddsa"));
    json_object_set_new(j, "message_bytes", json_integer((json_int_t)len));
    char *mhex = cit_hex_encode(md, mdlen);
    json_object_set_new(j, "message_sha256", json_string(mhex ? mhex : ""));
    free(mhex);
    json_object_set_new(j, "encoding", json_string("raw"));
    char *b64 = NULL;
    if (cit__base64_encode(&b64, sig, sizeof sig) == 0)
        json_object_set_new(j, "signature_base64", json_string(b64));
    free(b64);
    char *shex = cit_hex_encode(sig, sizeof sig);
    json_object_set_new(j, "signature_hex", json_string(shex ? shex : ""));
    free(shex);
    if (opt->output)
        json_object_set_new(j, "output", json_string(opt->output));
    *out = j;
    return 0;
}

int cit__ed25519_verify(json_t **out, cit_ctx *ctx, const cit_object *o, const char *input,
                        const char *signature, const char *digest, const char *encoding,
                        int version) {
    int r = cit__sodium_init();
    if (r == 0)
        r = check_sign_options(o, digest, false, encoding);
    if (r < 0)
        return r;
    uint8_t *sig = NULL, *msg = NULL;
    size_t sl = 0, len = 0;
    r = cit__read_input(signature, SIGNATURE_FILE_MAX, "the signature", false, &sig, &sl);
    if (r == 0)
        r = read_message(input, &msg, &len);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        *out = cit__plan("verify a signature in software (no TPM operations)", NULL);
        goto done;
    }
    if (sl != crypto_sign_BYTES) {
        r = cit_error_set(CIT_E_SIGNATURE_INVALID, "the signature does not verify with %s",
                          o->path);
        cit_error_cause("an Ed25519 signature is 64 bytes; %s has %zu", signature, sl);
        cit_error_context("path", "%s", o->path);
        goto done;
    }
    int matched = 0;
    for (int ver = o->version; ver >= 1 && !matched; ver--) {
        if (version > 0 && ver != version)
            continue;
        cit_object_version v = {0};
        if (cit__version_get(ctx->store, o->id, ver, &v) == 0 && v.payload && v.payload_len == 32 &&
            crypto_sign_verify_detached(sig, msg, len, v.payload) == 0)
            matched = ver;
        cit__version_clear(&v);
    }
    cit_error_clear();
    if (!matched) {
        r = cit_error_set(CIT_E_SIGNATURE_INVALID, "the signature does not verify with %s",
                          o->path);
        cit_error_cause(version > 0 ? "it was not made by version %d of this key over this input"
                                    : "it was not made by any version of this key over this input",
                        version);
        cit_error_context("path", "%s", o->path);
        goto done;
    }
    json_t *j = json_object();
    json_object_set_new(j, "path", json_string(o->path));
    json_object_set_new(j, "valid", json_true());
    json_object_set_new(j, "version", json_integer(matched));
    json_object_set_new(j, "current_version", json_boolean(matched == o->version));
    json_object_set_new(j, "algorithm", json_string("ed25519"));
    *out = j;
done:
    free(sig);
    free(msg);
    return r;
}

int cit__ed25519_rotate(json_t **out, cit_ctx *ctx, cit_object *o, const char *auth_file) {
    int r = cit__sodium_init();
    if (r < 0)
        return r;
    TPM2B_AUTH auth;
    r = cit__key_need_auth(o, auth_file, &auth);
    if (r < 0)
        return r;
    if (ctx->plan) {
        cit_memzero(&auth, sizeof auth);
        static const char *const ops[] = {
            "TPM2_GetRandom (32 bytes)",
            "TPM2_Create (sealed data object: the new seed, same policy)", NULL};
        *out = cit__plan(
            "rotate the ed25519 key: a new seed, sealed with the same policy, signs from now on",
            ops);
        return 0;
    }
    cit_store *s = ctx->store;
    json_t *meta = json_loads(o->metadata ? o->metadata : "{}", 0, NULL);
    cit_object_version v = {.version = o->version + 1};
    _cleanup_secure_ uint8_t *seed = secure_alloc(CIT_ED25519_SEED_BYTES);
    if (!seed) {
        r = CIT_E_INTERNAL;
        goto done;
    }
    if (auth.size) {
        /* the new version takes this password: prove it is the key's (the TPM checks it) */
        _cleanup_secure_ uint8_t *sk = secure_alloc(CIT_ED25519_SK_BYTES);
        r = sk ? cit__ed25519_unseal_sk(ctx, o, auth_file, sk) : CIT_E_INTERNAL;
        if (r < 0) {
            cit_error_cause("rotating a key with a password needs the password, checked by "
                            "unsealing the current seed");
            goto done;
        }
    }
    r = make_seed(ctx, seed);
    if (r == 0)
        r = seal_version(ctx, o->path, seed,
                         json_string_value(json_object_get(meta, "policy_digest")), &auth, &v);
    if (r < 0)
        goto done;
    r = cit__store_begin(s);
    if (r < 0)
        goto done;
    int old = o->version;
    r = cit__version_insert(s, o->id, &v);
    o->version = v.version;
    if (r == 0)
        r = cit__object_update(s, o);
    if (r == 0) {
        json_t *d = json_pack("{s:i,s:i}", "from_version", old, "to_version", v.version);
        r = cit__store_event(s, "key.rotate", o->path, o->id, "ok", d);
        json_decref(d);
    }
    if (r == 0)
        r = cit__store_commit(s);
    if (r < 0) {
        cit__store_rollback(s);
        o->version = old;
        goto done;
    }
    v.created_at = o->updated_at;
    json_t *j =
        json_pack("{s:s,s:i,s:i}", "path", o->path, "previous_version", old, "version", v.version);
    json_t *vj = cit__key_version_json(o, &v, true);
    json_object_del(vj, "version");
    json_object_update(j, vj);
    json_decref(vj);
    char *pkhex = cit_hex_encode(v.payload, v.payload_len);
    json_object_set_new(j, "public_key_hex", json_string(pkhex ? pkhex : ""));
    free(pkhex);
    *out = j;
done:
    cit_memzero(&auth, sizeof auth);
    cit__version_clear(&v);
    json_decref(meta);
    return r;
}

/* ---- backup and restore ---- */

/* The recovery file (docs/ed25519.md has the table); integers big-endian.
 *   0   8  magic "CITKEYBK"
 *   8   1  format version (1)
 *   9   1  algorithm (1 = Ed25519)
 *  10   1  KDF (1 = Argon2id v1.3)
 *  11   1  KDF strength (1 interactive, 2 moderate, 3 sensitive; informational)
 *  12   8  Argon2id opslimit
 *  20   8  Argon2id memlimit (bytes)
 *  28  16  salt
 *  44  24  XChaCha20-Poly1305 nonce
 *  68  32  Ed25519 public key
 * 100   4  the key's version that was backed up
 * 104   8  creation time (Unix seconds)
 * 112   2  length L of the original path (1..255)
 * 114   L  the original path
 * 114+L 48 ciphertext of the 32-byte seed || Poly1305 tag; associated data: bytes 0..114+L
 * 162+L 32 BLAKE2b-256 of bytes 0..162+L (tells damage from a wrong passphrase)
 */
#define BK_MAGIC "CITKEYBK"
#define BK_VERSION 1
#define BK_ALG_ED25519 1
#define BK_KDF_ARGON2ID13 1
#define BK_FIXED 114
#define BK_CT (CIT_ED25519_SEED_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define BK_SUM 32
#define BK_MAX (BK_FIXED + 255 + BK_CT + BK_SUM)

static const struct {
    const char *name;
    uint8_t id;
    unsigned long long ops;
    size_t mem;
} kdf_levels[] = {
    {"interactive", 1, crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
     crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE},
    {"moderate", 2, crypto_pwhash_argon2id_OPSLIMIT_MODERATE,
     crypto_pwhash_argon2id_MEMLIMIT_MODERATE},
    {"sensitive", 3, crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE,
     crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE},
};

static void put_be(uint8_t *p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The passphrase from a file ("-" = stdin) into locked memory; one trailing newline dropped. */
static int read_passphrase(const char *file, bool creating, uint8_t **out, size_t *out_len) {
    if (!file) {
        cit_error_set(CIT_E_USAGE, "--passphrase-file is required");
        cit_error_cause(
            "the passphrase is never taken from the command line, where other users can see it");
        return CIT_E_USAGE;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = cit__read_input(file, PASSPHRASE_MAX, "the passphrase file", false, &buf, &len);
    if (r < 0)
        return r;
    size_t n = len;
    if (n && buf[n - 1] == '\n')
        n--;
    if (n && buf[n - 1] == '\r')
        n--;
    r = 0;
    if (n == 0)
        r = cit_error_set(CIT_E_INPUT_EMPTY, "the passphrase file is empty: %s", file);
    else if (creating && n < PASSPHRASE_MIN) {
        r = cit_error_set(CIT_E_USAGE, "the passphrase is shorter than %d bytes", PASSPHRASE_MIN);
        cit_error_cause("the backup can be attacked offline; Argon2id slows guessing, it cannot "
                        "save a short passphrase");
        cit_error_step(
            "use a passphrase of several random words (a password manager can make one)");
    }
    uint8_t *p = r == 0 ? secure_alloc(n) : NULL;
    if (r == 0 && !p)
        r = CIT_E_INTERNAL;
    if (r == 0) {
        memcpy(p, buf, n);
        *out = p;
        *out_len = n;
    }
    cit_memzero(buf, len);
    free(buf);
    return r;
}

static int derive_key(uint8_t key[32], const uint8_t *pw, size_t pwlen, const uint8_t *salt,
                      unsigned long long ops, size_t mem) {
    if (crypto_pwhash(key, 32, (const char *)pw, pwlen, salt, ops, mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        cit_error_set(CIT_E_INTERNAL, "Argon2id could not run (it needs %zu MiB of memory)",
                      mem >> 20);
        cit_error_cause("the system refused the memory the key derivation needs");
        return CIT_E_INTERNAL;
    }
    return 0;
}

_public_ int cit_key_backup(json_t **out, cit_ctx *ctx, const cit_key_backup_options *opt) {
    cit_error_clear();
    int r = cit__sodium_init();
    if (r < 0)
        return r;
    if (!opt->output) {
        cit_error_set(CIT_E_USAGE, "--output is required");
        return CIT_E_USAGE;
    }
    const char *kdf = opt->kdf ? opt->kdf : "moderate";
    int level = -1;
    for (size_t i = 0; i < ELEMENTSOF(kdf_levels); i++)
        if (strcmp(kdf_levels[i].name, kdf) == 0)
            level = (int)i;
    if (level < 0) {
        cit_error_set(CIT_E_USAGE, "unknown --kdf: %s", kdf);
        cit_error_cause("--kdf takes interactive (64 MiB), moderate (256 MiB, the default) or "
                        "sensitive (1 GiB)");
        return CIT_E_USAGE;
    }
    cit_object o = {0};
    r = cit__ctx_find(ctx, opt->path, &o);
    if (r == 0)
        r = cit__require_kind(&o, "key");
    if (r == 0 && !cit__is_ed25519(&o)) {
        r = cit_error_set(CIT_E_OBJECT_KIND, "%s is a %s key: only ed25519 keys can be backed up",
                          o.path, o.algorithm);
        cit_error_cause(
            "the private part of a TPM key never leaves the TPM; that is the point of it");
        cit_error_context("path", "%s", o.path);
    }
    if (r == 0)
        r = cit__require_active(&o);
    if (r == 0)
        r = cit__ed25519_refuse_unapproved(ctx, "a backup");
    if (r < 0) {
        cit__object_clear(&o);
        return r;
    }
    _cleanup_secure_ uint8_t *pw = NULL;
    _cleanup_secure_ uint8_t *sk = NULL;
    _cleanup_secure_ uint8_t *key = NULL;
    size_t pwlen = 0;
    r = read_passphrase(opt->passphrase_file, true, &pw, &pwlen);
    if (r < 0)
        goto done;
    if (ctx->plan) {
        static const char *const ops[] = {"TPM2_Load (sealed seed)",
                                          "TPM2_StartAuthSession (policy, salted)",
                                          "TPM2_PolicyPCR",
                                          "TPM2_Unseal (response encrypted)",
                                          "TPM2_FlushContext",
                                          "Argon2id + XChaCha20-Poly1305 in software",
                                          NULL};
        *out = cit__plan("write a passphrase-encrypted recovery file of the ed25519 key", ops);
        goto done;
    }
    sk = secure_alloc(CIT_ED25519_SK_BYTES);
    key = secure_alloc(32);
    if (!sk || !key) {
        r = CIT_E_INTERNAL;
        goto done;
    }
    r = cit__ed25519_unseal_sk(ctx, &o, opt->auth_file, sk);
    if (r < 0)
        goto done;
    size_t plen = strlen(o.path);
    size_t total = BK_FIXED + plen + BK_CT + BK_SUM;
    uint8_t file[BK_MAX];
    memcpy(file, BK_MAGIC, 8);
    file[8] = BK_VERSION;
    file[9] = BK_ALG_ED25519;
    file[10] = BK_KDF_ARGON2ID13;
    file[11] = kdf_levels[level].id;
    put_be(file + 12, kdf_levels[level].ops, 8);
    put_be(file + 20, kdf_levels[level].mem, 8);
    randombytes_buf(file + 28, crypto_pwhash_SALTBYTES);
    randombytes_buf(file + 44, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    memcpy(file + 68, sk + 32, 32);
    put_be(file + 100, (uint64_t)o.version, 4);
    put_be(file + 104, (uint64_t)time(NULL), 8);
    put_be(file + 112, plen, 2);
    memcpy(file + BK_FIXED, o.path, plen);
    r = derive_key(key, pw, pwlen, file + 28, kdf_levels[level].ops, kdf_levels[level].mem);
    if (r < 0)
        goto done;
    crypto_aead_xchacha20poly1305_ietf_encrypt(file + BK_FIXED + plen, NULL, sk,
                                               CIT_ED25519_SEED_BYTES, file, BK_FIXED + plen, NULL,
                                               file + 44, key);
    crypto_generichash(file + BK_FIXED + plen + BK_CT, BK_SUM, file, BK_FIXED + plen + BK_CT, NULL,
                       0);
    int w = cit_write_file_atomic(opt->output, file, total, 0600, CIT_WRITE_DURABLE);
    if (w < 0) {
        r = cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", opt->output, strerror(-w));
        cit_error_context("file", "%s", opt->output);
        goto done;
    }
    json_t *d = json_pack("{s:i,s:s}", "version", o.version, "kdf", kdf);
    r = cit__store_event(ctx->store, "key.backup", o.path, o.id, "ok", d);
    json_decref(d);
    if (r < 0)
        goto done;
    char *pkhex = cit_hex_encode(sk + 32, 32);
    *out = json_pack("{s:s,s:i,s:s,s:s,s:s,s:I,s:s}", "path", o.path, "version", o.version,
                     "output", opt->output, "public_key_hex", pkhex ? pkhex : "", "kdf", kdf,
                     "kdf_memory_mib", (json_int_t)(kdf_levels[level].mem >> 20), "encryption",
                     "XChaCha20-Poly1305, key from Argon2id");
    free(pkhex);
done:
    cit__object_clear(&o);
    return r;
}

/* Parses and checks a recovery file up to (not including) the passphrase. */
static int backup_parse(const char *input, const uint8_t *b, size_t len, size_t *plen) {
    static const char magic[] = BK_MAGIC;
    if (len < 8 ? memcmp(b, magic, len) != 0 : memcmp(b, magic, 8) != 0) {
        cit_error_set(CIT_E_BACKUP_FORMAT, "not a citadel key backup: %s", input);
        cit_error_cause("it does not start with %s", BK_MAGIC);
        cit_error_context("file", "%s", input);
        return CIT_E_BACKUP_FORMAT;
    }
    if (len >= 9 && b[8] != BK_VERSION) {
        cit_error_set(CIT_E_BACKUP_FORMAT,
                      "the key backup %s has format version %u; this citadel reads version %d",
                      input, b[8], BK_VERSION);
        cit_error_context("file", "%s", input);
        return CIT_E_BACKUP_FORMAT;
    }
    size_t need = len >= BK_FIXED ? BK_FIXED + get_be(b + 112, 2) + BK_CT + BK_SUM
                                  : BK_FIXED + BK_CT + BK_SUM + 1;
    if (len < need) {
        cit_error_set(CIT_E_BACKUP_TRUNCATED,
                      "the key backup %s is truncated: %zu bytes, at least %zu expected", input,
                      len, need);
        cit_error_context("file", "%s", input);
        return CIT_E_BACKUP_TRUNCATED;
    }
    size_t pl = get_be(b + 112, 2);
    if (len > need || pl == 0 || pl > 255) {
        cit_error_set(CIT_E_BACKUP_TAMPERED, "the key backup %s is damaged", input);
        if (len > need)
            cit_error_cause("it has %zu bytes more than its header describes", len - need);
        else
            cit_error_cause("its path length is invalid");
        cit_error_context("file", "%s", input);
        return CIT_E_BACKUP_TAMPERED;
    }
    uint8_t sum[BK_SUM];
    crypto_generichash(sum, BK_SUM, b, len - BK_SUM, NULL, 0);
    if (sodium_memcmp(sum, b + len - BK_SUM, BK_SUM) != 0) {
        cit_error_set(CIT_E_BACKUP_TAMPERED, "the key backup %s is damaged or was modified", input);
        cit_error_cause("its BLAKE2b checksum does not match its contents");
        cit_error_context("file", "%s", input);
        return CIT_E_BACKUP_TAMPERED;
    }
    if (b[9] != BK_ALG_ED25519 || b[10] != BK_KDF_ARGON2ID13) {
        cit_error_set(
            CIT_E_BACKUP_FORMAT,
            "the key backup %s uses an algorithm (%u) or KDF (%u) this citadel does not know",
            input, b[9], b[10]);
        cit_error_context("file", "%s", input);
        return CIT_E_BACKUP_FORMAT;
    }
    uint64_t ops = get_be(b + 12, 8), mem = get_be(b + 20, 8);
    /* bounded, so a forged header cannot make restore take hours or all memory */
    if (ops < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
        ops > crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE * 4 ||
        mem < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
        mem > crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE) {
        cit_error_set(CIT_E_BACKUP_TAMPERED,
                      "the key backup %s has Argon2id parameters out of range", input);
        cit_error_cause("opslimit %llu, memlimit %llu bytes", (unsigned long long)ops,
                        (unsigned long long)mem);
        cit_error_context("file", "%s", input);
        return CIT_E_BACKUP_TAMPERED;
    }
    for (size_t i = 0; i < pl; i++)
        if (b[BK_FIXED + i] < 0x20 || b[BK_FIXED + i] > 0x7e) {
            cit_error_set(CIT_E_BACKUP_TAMPERED, "the key backup %s names an invalid path", input);
            cit_error_context("file", "%s", input);
            return CIT_E_BACKUP_TAMPERED;
        }
    *plen = pl;
    return 0;
}

_public_ int cit_key_restore(json_t **out, cit_ctx *ctx, const cit_key_restore_options *opt) {
    cit_error_clear();
    int r = cit__sodium_init();
    if (r < 0)
        return r;
    if (!opt->input) {
        cit_error_set(CIT_E_USAGE, "--input is required");
        return CIT_E_USAGE;
    }
    if (opt->pcrs && opt->policy) {
        cit_error_set(CIT_E_USAGE, "give --pcr or --policy, not both");
        return CIT_E_USAGE;
    }
    r = check_new(ctx, opt->path, NULL);
    if (r < 0)
        return r;
    uint8_t *b = NULL;
    size_t len = 0, plen = 0;
    r = cit__read_input(opt->input, BK_MAX + 1, "the key backup", false, &b, &len);
    if (r == CIT_E_INPUT_TOO_LARGE) {
        cit_error_set(CIT_E_BACKUP_FORMAT, "not a citadel key backup: %s", opt->input);
        cit_error_cause("it is larger than any key backup (%d bytes at most)", BK_MAX);
        cit_error_context("file", "%s", opt->input);
        r = CIT_E_BACKUP_FORMAT;
    }
    if (r < 0)
        return r;
    r = backup_parse(opt->input, b, len, &plen);
    if (r < 0) {
        free(b);
        return r;
    }
    _cleanup_secure_ uint8_t *pw = NULL;
    size_t pwlen = 0;
    r = read_passphrase(opt->passphrase_file, false, &pw, &pwlen);
    if (r < 0) {
        free(b);
        return r;
    }
    char orig[256];
    memcpy(orig, b + BK_FIXED, plen);
    orig[plen] = 0;
    int orig_version = (int)get_be(b + 100, 4);
    char when[32];
    cit_time_rfc3339(when, sizeof when, (int64_t)get_be(b + 104, 8));
    if (ctx->plan) {
        static const char *const ops[] = {
            "Argon2id + XChaCha20-Poly1305 in software", "TPM2_PCR_Read (the bound PCRs)",
            "TPM2_StartAuthSession (HMAC, salted, parameter encryption)",
            "TPM2_Create (sealed data object: the restored seed)", NULL};
        *out = cit__plan(
            "restore an ed25519 key from a recovery file, sealing its seed in this TPM", ops);
        json_object_set_new(*out, "original_path", json_string(orig));
        free(b);
        return 0;
    }
    _cleanup_secure_ uint8_t *key = secure_alloc(32);
    _cleanup_secure_ uint8_t *seed = secure_alloc(CIT_ED25519_SEED_BYTES);
    uint8_t pk[32];
    if (!key || !seed) {
        r = CIT_E_INTERNAL;
        goto done;
    }
    r = derive_key(key, pw, pwlen, b + 28, get_be(b + 12, 8), (size_t)get_be(b + 20, 8));
    if (r < 0)
        goto done;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(seed, NULL, NULL, b + BK_FIXED + plen, BK_CT, b,
                                                   BK_FIXED + plen, b + 44, key) != 0) {
        r = cit_error_set(CIT_E_BACKUP_PASSPHRASE, "the passphrase does not open the key backup %s",
                          opt->input);
        cit_error_cause(
            "the file's checksum is intact, so the passphrase is wrong (or someone who rewrote the "
            "checksum modified the file)");
        cit_error_context("file", "%s", opt->input);
        goto done;
    }
    r = public_of_seed(seed, pk);
    if (r == 0 && sodium_memcmp(pk, b + 68, 32) != 0) {
        r = cit_error_set(CIT_E_BACKUP_TAMPERED, "the key backup %s is inconsistent", opt->input);
        cit_error_cause("the seed it holds does not give the public key in its header");
        cit_error_context("file", "%s", opt->input);
    }
    if (r < 0)
        goto done;
    json_t *extra = json_pack("{s:{s:s,s:i,s:s}}", "restored_from", "path", orig, "version",
                              orig_version, "backup_created", when);
    r = store_new(out, ctx, opt->path, opt->pcrs, opt->bank, opt->policy, opt->auth_file, seed,
                  extra, "key.restore");
    json_decref(extra);
    if (r == 0)
        json_object_set_new(*out, "restored_from",
                            json_pack("{s:s,s:i,s:s}", "path", orig, "version", orig_version,
                                      "backup_created", when));
done:
    free(b);
    return r;
}
