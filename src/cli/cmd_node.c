/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `citadel node enroll|fetch|status|config|renew`: this workspace's TPM enrolls with an enrolld
 * server (docs/enrollment.md). The node's side of the protocol: EK and its certificate, the AK
 * and a DevID identity (created when missing), credential activation, a quote over the server's
 * nonce, TPM2_Certify of the DevID key by the AK; then the certificates go into the identity
 * and every later call is mutual TLS with the DevID key signing in the TPM.
 * The enrollment's state (server, id, fetch token) is <store>.enroll.json, mode 0600.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "basic/util.h"
#include "cli.h"
#include "cli/enroll_client.h"

#define STATE_MAX (1 << 20)

static const char *jstr(const json_t *j, const char *k) {
    const char *v = json_string_value(json_object_get(j, k));
    return v && *v ? v : NULL;
}

static void state_path(cli_env *e, const char *suffix, char *out, size_t len) {
    snprintf(out, len, "%s.%s", cit_ctx_store_path(e->ctx), suffix);
}

static int state_load(cli_env *e, json_t **out) {
    char p[4096];
    state_path(e, "enroll.json", p, sizeof p);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!j) {
        if (access(p, F_OK) != 0) {
            cit_error_set(CIT_E_ENROLL_NOT_ENROLLED, "this workspace has not started an enrollment");
            cit_error_context("state", "%s", p);
        } else
            cit_error_set(CIT_E_INPUT_INVALID, "the enrollment state %s does not parse: %s", p, je.text);
        return cit_error_last()->code;
    }
    *out = j;
    return 0;
}

static int write_private(const char *path, const char *text) {
    int w = cit_write_file_atomic(path, (const uint8_t *)text, strlen(text), 0600, 0);
    if (w < 0) {
        cit_error_set(CIT_E_OUTPUT_WRITE, "cannot write %s: %s", path, strerror(-w));
        return CIT_E_OUTPUT_WRITE;
    }
    return 0;
}

static int state_save(cli_env *e, const json_t *st) {
    char p[4096];
    state_path(e, "enroll.json", p, sizeof p);
    char *t = json_dumps(st, JSON_INDENT(2));
    int r = t ? write_private(p, t) : cit_error_set(CIT_E_INTERNAL, "out of memory");
    if (t) {
        cit_memzero(t, strlen(t));
        free(t);
    }
    return r;
}

/* The server's CA certificate the node keeps (written at enroll from --ca-file). */
static void ca_path(cli_env *e, char *out, size_t len) { state_path(e, "enroll-ca.pem", out, len); }

/* A text file, NUL-terminated (cit_read_file terminates what it reads). */
static int read_text_file(const char *path, size_t max, char **out) {
    uint8_t *b = NULL;
    size_t n = 0;
    int r = cit_read_file(path, max, &b, &n);
    if (r < 0) {
        cit_error_set(CIT_E_INPUT_READ, "cannot read %s: %s", path, strerror(-r));
        return CIT_E_INPUT_READ;
    }
    *out = (char *)b;
    return 0;
}

static int b64(char **out, const uint8_t *b, size_t n) {
    char *t = malloc(4 * ((n + 2) / 3) + 1);
    if (!t)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    EVP_EncodeBlock((unsigned char *)t, b, (int)n);
    *out = t;
    return 0;
}

/* The EK certificate PEM as base64 DER, as the server takes it. */
static int cert_der_b64(char **out, const char *pem) {
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    unsigned char *der = NULL;
    int n = x ? i2d_X509(x, &der) : -1;
    X509_free(x);
    if (n <= 0)
        return cit_error_set(CIT_E_EK_CERT_INVALID, "the EK certificate does not parse");
    int r = b64(out, der, (size_t)n);
    OPENSSL_free(der);
    return r;
}

/* The certificate's notAfter (Unix time), 0 when it does not parse. */
static int64_t cert_not_after(const char *pem) {
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    struct tm tm;
    int64_t t = x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 ? (int64_t)timegm(&tm) : 0;
    X509_free(x);
    return t;
}

static void record_not_after(json_t *st, const char *pem) {
    int64_t t = cert_not_after(pem ? pem : "");
    if (!t)
        return;
    char ts[40];
    cit_time_rfc3339(ts, sizeof ts, t);
    json_object_set_new(st, "devid_not_after", json_string(ts));
    json_object_set_new(st, "devid_not_after_unix", json_integer(t));
}

/* A private temporary directory for the credential and the certificates in transit. */
static int tmpdir(char *out, size_t len) {
    const char *base = getenv("TMPDIR");
    snprintf(out, len, "%s/citadel-node-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(out)) {
        cit_error_set(CIT_E_OUTPUT_WRITE, "cannot create a temporary directory: %s", strerror(errno));
        return CIT_E_OUTPUT_WRITE;
    }
    return 0;
}

static void rmtmp(const char *dir) {
    const char *names[] = {"credential.json", "devid.pem", NULL};
    char p[4200];
    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* A retired object at path (a TPM clear lost it: `repair apply` retired it), or with any an
 * object there at all (--new-keys), is deleted, so the enrollment makes a new one; recorded in
 * replaced. */
static int drop_retired(cli_env *e, const char *path, json_t *replaced, bool any) {
    json_t *o = NULL;
    int r = cit_identity_show(&o, e->ctx, path);
    if (r < 0) {
        json_decref(o);
        o = NULL;
        r = cit_attest_ak_show(&o, e->ctx, path);
    }
    const char *st = r == 0 ? json_string_value(json_object_get(o, "status")) : NULL;
    bool retired = st && (any || strcmp(st, "retired") == 0);
    json_decref(o);
    o = NULL;
    cit_error_clear();
    if (!retired)
        return 0;
    if ((r = cit_object_delete(&o, e->ctx, path, NULL, true)) < 0)
        return r;
    json_decref(o);
    json_array_append_new(replaced, json_string(path));
    return 0;
}

/* The AK and the DevID identity, created when missing. */
static int ensure_keys(cli_env *e, const char *ak, const char *devid, const char *alg, json_t *created) {
    json_t *o = NULL;
    int r = cit_attest_ak_show(&o, e->ctx, ak);
    json_decref(o);
    o = NULL;
    if (r == CIT_E_OBJECT_NOT_FOUND) {
        if ((r = cit_attest_ak_create(&o, e->ctx, ak, alg)) < 0)
            return r;
        json_array_append_new(created, json_string(ak));
        json_decref(o);
        o = NULL;
    } else if (r < 0)
        return r;
    r = cit_identity_show(&o, e->ctx, devid);
    json_decref(o);
    o = NULL;
    if (r == CIT_E_OBJECT_NOT_FOUND) {
        /* ECC whatever the EK's family: the TLS layer signs handshakes with ECC identities */
        cit_identity_init_options io = {.name = devid, .usage = "tls-client", .algorithm = "ecc-p256"};
        if ((r = cit_identity_init(&o, e->ctx, &io)) < 0)
            return r;
        json_array_append_new(created, json_string(devid));
        json_decref(o);
    } else if (r < 0)
        return r;
    cit_error_clear();
    return 0;
}

/* The quote over nonce and the certify of the DevID key over the same nonce. */
static int attest(cli_env *e, const char *ak, const char *devid, const char *nonce, const json_t *pcrs_arr,
                  const char *eventlog, json_t **quote, json_t **certify) {
    char pcrs[128] = "";
    size_t i, off = 0;
    json_t *v;
    json_array_foreach(pcrs_arr, i, v) off += (size_t)snprintf(pcrs + off, sizeof pcrs - off, "%s%lld", off ? "," : "",
                                                               (long long)json_integer_value(v));
    if (!off) {
        cit_error_set(CIT_E_ENROLL_SERVER, "the server asked for no PCRs");
        return CIT_E_ENROLL_SERVER;
    }
    json_t *q = NULL, *c = NULL;
    int r = cit_attest_quote(&q, e->ctx, ak, pcrs, "sha256", nonce, NULL, eventlog);
    if (r < 0)
        return r;
    uint8_t *nb = NULL;
    size_t nl = 0;
    if (cit_hex_decode(&nb, &nl, nonce) < 0) {
        json_decref(q);
        cit_error_set(CIT_E_ENROLL_SERVER, "the server's nonce is not hex");
        return CIT_E_ENROLL_SERVER;
    }
    r = cit_attest_certify(&c, e->ctx, ak, devid, nb, nl);
    free(nb);
    if (r < 0) {
        json_decref(q);
        return r;
    }
    *quote = json_incref(json_object_get(q, "quote"));
    *certify = json_pack("{s:O,s:O}", "attest", json_object_get(c, "attest"), "signature", json_object_get(c, "signature"));
    json_decref(q);
    json_decref(c);
    return 0;
}

static int devid_material(cli_env *e, const char *devid, const char *host, char **pub_b64, char **csr) {
    uint8_t *blob = NULL;
    size_t bl = 0;
    char *name = NULL;
    json_t *o = NULL;
    char subj[300];
    snprintf(subj, sizeof subj, "CN=%s", host);
    int r = cit_key_public_blob(e->ctx, devid, &blob, &bl, &name);
    if (r == 0)
        r = cit_identity_csr(&o, e->ctx, devid, subj, NULL, NULL, NULL);
    if (r == 0) {
        const char *t = jstr(o, "_text") ?: jstr(o, "csr");
        if (!t)
            r = cit_error_set(CIT_E_INTERNAL, "the identity CSR came back without its PEM");
        else if (!(*csr = strdup(t)) || b64(pub_b64, blob, bl) < 0)
            r = cit_error_set(CIT_E_INTERNAL, "out of memory");
    }
    free(blob);
    free(name);
    json_decref(o);
    return r;
}

/* Fetches the enrollment; once approved, imports the DevID certificate into the identity and
 * keeps the AK and CA certificates beside the store. */
static int fetch(cli_env *e, json_t *st, json_t **out) {
    char cap[4096], hdr[128], path[128];
    ca_path(e, cap, sizeof cap);
    snprintf(hdr, sizeof hdr, "X-Enroll-Token: %s", jstr(st, "fetch_token") ?: "");
    snprintf(path, sizeof path, "/v1/enroll/%s", jstr(st, "enrollment_id") ?: "");
    const char *hdrs[] = {hdr, NULL};
    json_t *a = NULL;
    int r = enroll_call(jstr(st, "server"), "GET", path, cap, NULL, NULL, hdrs, &a);
    cit_memzero(hdr, sizeof hdr);
    if (r < 0)
        return r;
    const char *status = jstr(a, "status") ?: "unknown";
    json_object_set_new(st, "status", json_string(status));
    if (strcmp(status, "approved") == 0)
        r = 0;
    if (strcmp(status, "approved") == 0 && jstr(a, "devid_cert")) {
        char dir[4096], f[4200];
        if ((r = tmpdir(dir, sizeof dir)) < 0)
            goto done;
        snprintf(f, sizeof f, "%s/devid.pem", dir);
        json_t *io = NULL;
        r = write_private(f, jstr(a, "devid_cert"));
        if (r == 0)
            r = cit_identity_cert_import(&io, e->ctx, jstr(st, "identity"), f);
        json_decref(io);
        rmtmp(dir);
        if (r < 0)
            goto done;
        char p[4096];
        state_path(e, "enroll-ak.pem", p, sizeof p);
        if ((r = write_private(p, jstr(a, "ak_cert") ?: "")) < 0)
            goto done;
        if (jstr(a, "ca_cert") && (r = write_private(cap, jstr(a, "ca_cert"))) < 0)
            goto done;
        json_object_set(st, "devid_serial", json_object_get(a, "devid_serial"));
        json_object_set_new(st, "certificates_imported", json_integer((json_int_t)time(NULL)));
        record_not_after(st, jstr(a, "devid_cert"));
    }
    r = state_save(e, st);
    if (r == 0) {
        *out = json_pack("{s:s,s:s,s:s,s:s}", "server", jstr(st, "server"), "enrollment_id",
                         jstr(st, "enrollment_id"), "host", jstr(st, "host"), "status", status);
        if (jstr(st, "devid_serial") && strcmp(status, "approved") == 0)
            json_object_set_new(*out, "devid_serial", json_string(jstr(st, "devid_serial")));
        if (strcmp(status, "approved") == 0)
            json_object_set_new(*out, "identity", json_string(jstr(st, "identity")));
    }
done:
    json_decref(a);
    return r;
}

int cli_node_enroll(cli_env *e, const cli_args *a, json_t **out) {
    const char *server = cli_get(a, "server"), *ca_file = cli_get(a, "ca-file");
    const char *ak = cli_get(a, "ak") ?: "enroll/ak", *devid = cli_get(a, "identity") ?: "devid";
    const char *alg = cli_get(a, "algorithm") ?: "ecc-p256";
    char host[256];
    if (cli_get(a, "host"))
        snprintf(host, sizeof host, "%s", cli_get(a, "host"));
    else if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "node");
    host[sizeof host - 1] = 0;
    if (!server) {
        cit_error_set(CIT_E_USAGE, "--server URL is required (https://HOST:7702)");
        return CIT_E_USAGE;
    }
    int wait = 0;
    if (cli_get_int(a, "wait", &wait) < 0)
        return CIT_E_USAGE;
    json_t *created = json_array(), *replaced = json_array(), *ek = NULL, *akj = NULL, *start = NULL, *act = NULL, *quote = NULL, *certify = NULL,
           *fin = NULL, *st = NULL;
    char *ca_pem = NULL, *ek_cert_pem = NULL, *ek_der_b64 = NULL, *devid_pub = NULL, *csr = NULL;
    char dir[4096] = "", capath[4096];
    ca_path(e, capath, sizeof capath);
    int r = 0;
    if (ca_file) {
        if ((r = read_text_file(ca_file, 1 << 20, &ca_pem)) < 0 || (r = write_private(capath, ca_pem)) < 0)
            goto done;
    } else if (strncmp(server, "https:", 6) == 0 && access(capath, R_OK) != 0) {
        r = cit_error_set(CIT_E_USAGE, "--ca-file is required: the server's CA certificate (from its operator)");
        goto done;
    }
    bool fresh = cli_flag(a, "new-keys");
    if ((r = drop_retired(e, devid, replaced, fresh)) < 0 || (r = drop_retired(e, ak, replaced, fresh)) < 0 ||
        (r = ensure_keys(e, ak, devid, alg, created)) < 0)
        goto done;
    /* step 1: EK, EK certificate, AK public, DevID public and CSR */
    json_t *ekc = NULL;
    if ((r = cit_ek_show(&ek, e->ctx, alg)) < 0 || (r = cit_ek_cert(&ekc, e->ctx, alg, NULL, NULL)) < 0)
        goto done;
    r = cert_der_b64(&ek_der_b64, jstr(ekc, "_text") ?: jstr(ekc, "pem") ?: "");
    json_decref(ekc);
    if (r < 0)
        goto done;
    if ((r = cit_attest_ak_show(&akj, e->ctx, ak)) < 0 || (r = devid_material(e, devid, host, &devid_pub, &csr)) < 0)
        goto done;
    json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "host", host, "ek_public", jstr(ek, "public_key"),
                             "ek_cert", ek_der_b64, "ek_algorithm", alg, "ak_public",
                             jstr(akj, "ak_tpm2b_public_base64") ?: "", "devid_public", devid_pub, "devid_csr", csr);
    if (cli_get(a, "token"))
        json_object_set_new(body, "token", json_string(cli_get(a, "token")));
    if (cli_get(a, "group"))
        json_object_set_new(body, "group", json_string(cli_get(a, "group")));
    r = enroll_call(server, "POST", "/v1/enroll/start", capath, NULL, body, NULL, &start);
    json_decref(body);
    if (r < 0)
        goto done;
    const char *id = jstr(start, "enrollment_id"), *nonce = jstr(start, "nonce");
    if (!id || !nonce || !json_is_object(json_object_get(start, "credential"))) {
        r = cit_error_set(CIT_E_ENROLL_SERVER, "the server's answer to start lacks enrollment_id, nonce or credential");
        goto done;
    }
    /* step 3: activate the credential, quote and certify over the nonce */
    char cred[4200];
    if ((r = tmpdir(dir, sizeof dir)) < 0)
        goto done;
    snprintf(cred, sizeof cred, "%s/credential.json", dir);
    char *ct = json_dumps(json_object_get(start, "credential"), JSON_INDENT(2));
    r = ct ? write_private(cred, ct) : cit_error_set(CIT_E_INTERNAL, "out of memory");
    free(ct);
    if (r < 0 || (r = cit_attest_credential_activate(&act, e->ctx, ak, cred, NULL)) < 0)
        goto done;
    /* on a hardware TPM the firmware's event log goes with the quote unless another is named */
    const char *evlog = cli_get(a, "eventlog");
    static const char bios_log[] = "/sys/kernel/security/tpm0/binary_bios_measurements";
    if (!evlog && strcmp(cit_ctx_backend(e->ctx), "device") == 0 && access(bios_log, R_OK) == 0)
        evlog = bios_log;
    if ((r = attest(e, ak, devid, nonce, json_object_get(start, "pcrs"), evlog, &quote, &certify)) < 0)
        goto done;
    json_t *fb = json_pack("{s:s,s:O,s:O}", "secret", jstr(act, "secret_hex") ?: "", "quote", quote, "certify", certify);
    char path[128];
    snprintf(path, sizeof path, "/v1/enroll/%s/finish", id);
    r = enroll_call(server, "POST", path, capath, NULL, fb, NULL, &fin);
    const char *sx = jstr(json_object_get(fb, "secret") ? fb : NULL, "secret");
    if (sx)
        cit_memzero((char *)sx, strlen(sx));
    json_decref(fb);
    if (r < 0)
        goto done;
    st = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "server", server, "enrollment_id", id, "host", host,
                   "fetch_token", jstr(fin, "fetch_token") ?: "", "ak", ak, "identity", devid, "status",
                   jstr(fin, "status") ?: "pending", "started", (json_int_t)time(NULL));
    if ((r = state_save(e, st)) < 0)
        goto done;
    /* step 5: fetch the certificates when approved (at once under auto-approve, or --wait) */
    uint64_t deadline = cit_now_usec() + (uint64_t)wait * 1000000;
    json_t *fo = NULL;
    for (;;) {
        json_decref(fo);
        fo = NULL;
        if ((r = fetch(e, st, &fo)) < 0)
            break;
        const char *s = jstr(fo, "status");
        if (!s || strcmp(s, "pending") != 0 || cit_now_usec() >= deadline)
            break;
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (r < 0) {
        json_decref(fo);
        goto done;
    }
    json_object_set_new(fo, "created", json_incref(created));
    if (json_array_size(replaced))
        json_object_set_new(fo, "replaced", json_incref(replaced));
    json_object_set(fo, "nonce", json_object_get(start, "nonce"));
    json_object_set(fo, "pcrs", json_object_get(start, "pcrs"));
    if (strcmp(jstr(fo, "status") ?: "", "pending") == 0)
        json_object_set_new(fo, "next_step", json_string("an operator approves it: `citadel enroll approve HOST`; "
                                                         "then `citadel node fetch`"));
    *out = fo;
done:
    if (act) {
        const char *h = jstr(act, "secret_hex");
        if (h)
            cit_memzero((char *)h, strlen(h));
    }
    if (dir[0])
        rmtmp(dir);
    json_decref(created);
    json_decref(replaced);
    json_decref(ek);
    json_decref(akj);
    json_decref(start);
    json_decref(act);
    json_decref(quote);
    json_decref(certify);
    json_decref(fin);
    json_decref(st);
    free(ca_pem);
    free(ek_cert_pem);
    free(ek_der_b64);
    free(devid_pub);
    free(csr);
    return r;
}

int cli_node_fetch(cli_env *e, const cli_args *a, json_t **out) {
    json_t *st = NULL;
    int r = state_load(e, &st);
    if (r == 0)
        r = fetch(e, st, out);
    json_decref(st);
    if (r == 0 && strcmp(jstr(*out, "status") ?: "", "pending") == 0) {
        json_object_set_new(*out, "next_step", json_string("waiting for `citadel enroll approve`"));
        e->exit_status = 14;
    }
    return r;
}

int cli_node_status(cli_env *e, const cli_args *a, json_t **out) {
    json_t *st = NULL;
    int r = state_load(e, &st);
    if (r < 0)
        return r;
    json_object_del(st, "fetch_token");
    *out = st;
    return 0;
}

/* Mutual TLS with the DevID identity: its key signs the handshake in the TPM. */
static int node_creds(cli_env *e, json_t *st, cit_tls_creds **creds) {
    if (!jstr(st, "certificates_imported")) {
        if (!json_integer_value(json_object_get(st, "certificates_imported"))) {
            cit_error_set(CIT_E_ENROLL_PENDING, "the node has no certificates yet (status %s)", jstr(st, "status") ?: "?");
            return CIT_E_ENROLL_PENDING;
        }
    }
    return cit_tls_creds_identity(creds, e->ctx, NULL, jstr(st, "identity"), NULL);
}

int cli_node_config(cli_env *e, const cli_args *a, json_t **out) {
    json_t *st = NULL;
    cit_tls_creds *creds = NULL;
    char cap[4096];
    ca_path(e, cap, sizeof cap);
    int r = state_load(e, &st);
    if (r == 0)
        r = node_creds(e, st, &creds);
    if (r == 0)
        r = enroll_call(cli_get(a, "server") ?: jstr(st, "server"), "GET", "/v1/node/config", cap, creds, NULL, NULL, out);
    cit_tls_creds_free(creds);
    json_decref(st);
    return r;
}

int cli_node_renew(cli_env *e, const cli_args *a, json_t **out) {
    json_t *st = NULL, *rs = NULL, *quote = NULL, *certify = NULL, *ans = NULL;
    cit_tls_creds *creds = NULL;
    char *pub = NULL, *csr = NULL;
    char cap[4096];
    ca_path(e, cap, sizeof cap);
    int before = 0;
    if (cli_get_int(a, "before", &before) < 0)
        return CIT_E_USAGE;
    int r = state_load(e, &st);
    int64_t na = json_integer_value(json_object_get(st, "devid_not_after_unix")), now = (int64_t)time(NULL);
    if (r == 0 && cli_get(a, "before") && na && na - now > (int64_t)before * 86400) {
        /* not due: nothing is asked of the server */
        *out = json_pack("{s:s,s:s,s:s,s:I}", "host", jstr(st, "host"), "status", "not-due", "devid_not_after",
                         jstr(st, "devid_not_after") ?: "", "days_left", (json_int_t)((na - now) / 86400));
        json_decref(st);
        return 0;
    }
    if (r == 0)
        r = node_creds(e, st, &creds);
    const char *server = jstr(st, "server");
    if (r == 0)
        r = enroll_call(server, "POST", "/v1/node/renew/start", cap, creds, NULL, NULL, &rs);
    if (r == 0)
        r = attest(e, jstr(st, "ak"), jstr(st, "identity"), jstr(rs, "nonce") ?: "", json_object_get(rs, "pcrs"),
                   cli_get(a, "eventlog"), &quote, &certify);
    if (r == 0)
        r = devid_material(e, jstr(st, "identity"), jstr(st, "host"), &pub, &csr);
    if (r == 0) {
        json_t *body = json_pack("{s:O,s:O,s:s,s:s}", "quote", quote, "certify", certify, "devid_public", pub,
                                 "devid_csr", csr);
        r = enroll_call(server, "POST", "/v1/node/renew", cap, creds, body, NULL, &ans);
        json_decref(body);
    }
    if (r == 0) {
        char dir[4096], f[4200];
        json_t *io = NULL;
        if ((r = tmpdir(dir, sizeof dir)) == 0) {
            snprintf(f, sizeof f, "%s/devid.pem", dir);
            r = write_private(f, jstr(ans, "devid_cert") ?: "");
            if (r == 0)
                r = cit_identity_cert_import(&io, e->ctx, jstr(st, "identity"), f);
            json_decref(io);
            rmtmp(dir);
        }
        char p[4096];
        state_path(e, "enroll-ak.pem", p, sizeof p);
        if (r == 0 && jstr(ans, "ak_cert"))
            r = write_private(p, jstr(ans, "ak_cert"));
        json_object_set(st, "devid_serial", json_object_get(ans, "devid_serial"));
        json_object_set_new(st, "renewed", json_integer((json_int_t)time(NULL)));
        record_not_after(st, jstr(ans, "devid_cert"));
        if (r == 0)
            r = state_save(e, st);
    }
    if (r == 0)
        *out = json_pack("{s:s,s:s,s:O,s:s}", "host", jstr(st, "host"), "status", "renewed", "devid_serial",
                         json_object_get(ans, "devid_serial"), "identity", jstr(st, "identity"));
    cit_tls_creds_free(creds);
    json_decref(st);
    json_decref(rs);
    json_decref(quote);
    json_decref(certify);
    json_decref(ans);
    free(pub);
    free(csr);
    return r;
}
