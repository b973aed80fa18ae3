/* SPDX-License-Identifier: Apache-2.0 */
#include "tpm.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "citadel/error.h"
#include "tcti_libtpms.h"
#include "vtpm_state.h"

static const char *const backend_names[] = {
    [CIT_BACKEND_AUTO] = "auto",   [CIT_BACKEND_DEVICE] = "device", [CIT_BACKEND_VTPM] = "vtpm",
    [CIT_BACKEND_MOCK] = "mock",   [CIT_BACKEND_SWTPM] = "swtpm",
};

const char *cit__backend_name(cit_backend b) {
    return (size_t)b < ELEMENTSOF(backend_names) ? backend_names[b] : "unknown";
}

int cit__backend_parse(const char *s, cit_backend *out) {
    for (size_t i = 0; i < ELEMENTSOF(backend_names); i++)
        if (strcmp(s, backend_names[i]) == 0) {
            *out = (cit_backend)i;
            return 0;
        }
    if (strcmp(s, "tpm12") == 0) {
        cit_error_set(CIT_E_BACKEND_UNAVAILABLE, "the tpm12 backend is not available yet");
        cit_error_cause("TPM 1.2 support (libtpms in 1.2 mode) is planned but not built");
        return CIT_E_BACKEND_UNAVAILABLE;
    }
    cit_error_set(CIT_E_BACKEND_UNKNOWN, "unknown backend: %s", s);
    cit_error_context("backend", "%s", s);
    return CIT_E_BACKEND_UNKNOWN;
}

const char *cit__device_usable(void) {
    static const char *const nodes[] = {"/dev/tpmrm0"};
    for (size_t i = 0; i < ELEMENTSOF(nodes); i++)
        if (access(nodes[i], R_OK | W_OK) == 0)
            return nodes[i];
    return NULL;
}

uint32_t cit__rc_base(TSS2_RC rc) {
    rc &= 0xffff;
    if (rc & 0x80) /* format 1: strip parameter/handle/session number */
        return rc & 0xbf;
    return rc & 0x97f;
}

/* Adds the dictionary-attack counter and how lockout ends to the current error. Reading the
 * properties must not replace the error being reported, so it is saved and restored. */
static void add_da_context(cit_tpm *t) {
    uint32_t counter = 0, max = 0, interval = 0;
    if (!t || !t->esys)
        return;
    cit_error saved = *cit_error_last();
    bool ok = cit__tpm_prop(t, TPM2_PT_LOCKOUT_COUNTER, &counter) == 0 &&
              cit__tpm_prop(t, TPM2_PT_MAX_AUTH_FAIL, &max) == 0 &&
              cit__tpm_prop(t, TPM2_PT_LOCKOUT_INTERVAL, &interval) == 0;
    cit_error_restore(&saved);
    if (!ok)
        return;
    cit_error_context("da_counter", "%u", counter);
    cit_error_context("da_max_tries", "%u", max);
    cit_error_context("da_recovery_seconds", "%u", interval);
    if (counter >= max)
        cit_error_cause("the dictionary-attack counter is %u of %u: the TPM is locked out; one failure "
                        "is forgiven every %u s",
                        counter, max, interval);
    else
        cit_error_cause("the dictionary-attack counter is now %u of %u; %u more failure(s) lock the "
                        "TPM out",
                        counter, max, max - counter);
    if (cit_error_last()->code == CIT_E_AUTH_FAIL)
        cit_error_step("if it locks out: `citadel tpm lockout reset` (needs the lockout "
                       "authorization), or wait %u s per counted failure",
                       interval);
}

/* ---- libtss2-rc and libtss2-tctildr, loaded on first use ----
 * Most commands neither decode a failed response code nor reach a TPM through the TCTI loader (the
 * vTPM is in-process), and mapping and relocating the two libraries at start cost every command
 * 0.3 ms. They are dlopen'ed when first needed instead. */

static struct {
    pthread_once_t once;
    const char *(*rc_decode)(TSS2_RC);
    TSS2_RC (*ldr_init)(const char *, TSS2_TCTI_CONTEXT **);
    void (*ldr_fini)(TSS2_TCTI_CONTEXT **);
    char ldr_error[256];
} tss_libs = {.once = PTHREAD_ONCE_INIT};

static void tss_libs_load(void) {
    void *rc = dlopen("libtss2-rc.so.0", RTLD_NOW | RTLD_LOCAL);
    if (rc)
        *(void **)&tss_libs.rc_decode = dlsym(rc, "Tss2_RC_Decode");
    void *ldr = dlopen("libtss2-tctildr.so.0", RTLD_NOW | RTLD_LOCAL);
    if (ldr) {
        *(void **)&tss_libs.ldr_init = dlsym(ldr, "Tss2_TctiLdr_Initialize");
        *(void **)&tss_libs.ldr_fini = dlsym(ldr, "Tss2_TctiLdr_Finalize");
    }
    if (!tss_libs.ldr_init || !tss_libs.ldr_fini) {
        const char *e = dlerror();
        snprintf(tss_libs.ldr_error, sizeof tss_libs.ldr_error, "%s", e ? e : "libtss2-tctildr.so.0 not found");
        tss_libs.ldr_init = NULL;
        tss_libs.ldr_fini = NULL;
    }
}

const char *cit__tss_rc_decode(TSS2_RC rc) {
    pthread_once(&tss_libs.once, tss_libs_load);
    if (tss_libs.rc_decode)
        return tss_libs.rc_decode(rc);
    static _Thread_local char hex[16];
    snprintf(hex, sizeof hex, "0x%08x", rc);
    return hex;
}

static TSS2_RC tctildr_init(const char *conf, TSS2_TCTI_CONTEXT **tcti) {
    pthread_once(&tss_libs.once, tss_libs_load);
    return tss_libs.ldr_init ? tss_libs.ldr_init(conf, tcti) : TSS2_TCTI_RC_NOT_SUPPORTED;
}

int cit__tss_error(cit_tpm *t, int code, TSS2_RC rc, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    uint32_t layer = rc & TSS2_RC_LAYER_MASK;
    uint32_t base = cit__rc_base(rc);
    bool tpm_layer = layer == TSS2_TPM_RC_LAYER;
    if (layer == TSS2_TCTI_RC_LAYER || (layer == TSS2_ESAPI_RC_LAYER && (rc & 0xffff) == TSS2_BASE_RC_IO_ERROR)) {
        code = CIT_E_TRANSPORT;
        cit_error_set(code, "%s: cannot reach the TPM", msg);
        if (t && t->tcti_conf)
            cit_error_context("tcti", "%s", t->tcti_conf);
    } else if (tpm_layer && base == TPM2_RC_AUTH_FAIL) {
        code = CIT_E_AUTH_FAIL;
        cit_error_set(code, "%s: authorization failed", msg);
        cit_error_cause("the password or policy given for the object is wrong; the TPM counted "
                        "this failure against the dictionary-attack limit");
    } else if (tpm_layer && base == TPM2_RC_BAD_AUTH) {
        code = CIT_E_AUTH_FAIL;
        cit_error_set(code, "%s: authorization failed", msg);
        cit_error_cause("the authorization value is wrong (this object is not DA-protected)");
    } else if (tpm_layer && base == TPM2_RC_LOCKOUT) {
        code = CIT_E_LOCKOUT;
        cit_error_set(code, "%s: the TPM is in dictionary-attack lockout", msg);
        cit_error_cause("too many authorization failures; the TPM refuses DA-protected objects "
                        "until the recovery time passes or lockout is cleared");
    } else if (tpm_layer && (base == TPM2_RC_OBJECT_MEMORY || base == TPM2_RC_SESSION_MEMORY ||
                             base == TPM2_RC_OBJECT_HANDLES || base == TPM2_RC_SESSION_HANDLES)) {
        code = CIT_E_TPM_MEMORY;
        cit_error_set(code, "%s: the TPM has no free %s slot", msg,
                      base == TPM2_RC_OBJECT_MEMORY || base == TPM2_RC_OBJECT_HANDLES ? "object"
                                                                                       : "session");
        cit_error_cause("other programs are holding transient objects or sessions in the TPM");
    } else if (tpm_layer && base == TPM2_RC_FAILURE) {
        code = CIT_E_TPM_FAILURE_MODE;
        cit_error_set(code, "%s: the TPM is in failure mode", msg);
    } else {
        cit_error_set(code, "%s", msg);
    }
    cit_error_context("tpm_rc", "0x%08x", rc);
    cit_error_context("tpm_rc_decoded", "%s", cit__tss_rc_decode(rc));
    if (code == CIT_E_AUTH_FAIL || code == CIT_E_LOCKOUT)
        add_da_context(t);
    return code;
}

static int lock_state(const char *state_path, int *fd_out) {
    size_t n = strlen(state_path) + 8;
    _cleanup_free_ char *lp = malloc(n);
    if (!lp)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    snprintf(lp, n, "%s.lock", state_path);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        cit_error_set(CIT_E_STORE_OPEN, "cannot open the workspace lock %s: %s", lp, strerror(errno));
        cit_error_context("lock_file", "%s", lp);
        return CIT_E_STORE_OPEN;
    }
    uint64_t deadline = cit_now_usec() + 30ull * 1000000ull;
    unsigned delay_us = 200;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            close(fd);
            return cit_error_set(CIT_E_STORE_IO, "cannot lock %s: %s", lp, strerror(errno));
        }
        if (cit_now_usec() > deadline) {
            close(fd);
            cit_error_set(CIT_E_WORKSPACE_BUSY, "another process holds the workspace lock");
            cit_error_context("lock_file", "%s", lp);
            return CIT_E_WORKSPACE_BUSY;
        }
        usleep(delay_us);
        if (delay_us < 5000)
            delay_us *= 2;
    }
    *fd_out = fd;
    return 0;
}

/* With the lock held, temp files of a state save are leftovers of a killed process. */
static void remove_stale_temps(const char *state_path) {
    _cleanup_free_ char *d = strdup(state_path), *b = strdup(state_path);
    if (!d || !b)
        return;
    const char *dir = dirname(d), *base = basename(b);
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    DIR *dh = opendir(dir);
    if (!dh)
        return;
    struct dirent *e;
    while ((e = readdir(dh)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            unlinkat(dirfd(dh), e->d_name, 0);
    closedir(dh);
}

int cit__tpm_open(cit_tpm **out, const cit_tpm_options *o) {
    cit_tpm *t = calloc(1, sizeof(*t));
    if (!t)
        return cit_error_set(CIT_E_INTERNAL, "out of memory");
    t->backend = o->backend;
    t->lock_fd = -1;
    t->srk = ESYS_TR_NONE;
    int r = 0;
    TSS2_RC rc;

    switch (o->backend) {
    case CIT_BACKEND_VTPM:
    case CIT_BACKEND_MOCK: {
        cit_vtpm_state st = {0};
        if (o->backend == CIT_BACKEND_VTPM) {
            t->state_path = strdup(o->state_path);
            if (!t->state_path) {
                r = cit_error_set(CIT_E_INTERNAL, "out of memory");
                goto fail;
            }
            r = lock_state(o->state_path, &t->lock_fd);
            if (r < 0)
                goto fail;
            remove_stale_temps(o->state_path);
            r = cit__vtpm_state_load(&st, o->state_path);
            if (r == CIT_E_VTPM_STATE_MISSING && o->create) {
                t->manufactured = true;
                r = 0;
            }
            if (r < 0)
                goto fail;
        } else
            t->manufactured = true;
        r = cit__tcti_libtpms_new(&t->tcti, &st, false);
        cit__vtpm_state_clear(&st);
        if (r < 0) {
            if (t->state_path)
                cit_error_context("state_file", "%s", t->state_path);
            goto fail;
        }
        break;
    }
    case CIT_BACKEND_SWTPM:
    case CIT_BACKEND_DEVICE: {
        const char *conf = o->tcti;
        if (!conf || !*conf)
            conf = o->backend == CIT_BACKEND_SWTPM ? "swtpm:host=127.0.0.1,port=2321"
                                                   : "device:/dev/tpmrm0";
        t->tcti_conf = strdup(conf);
        /* Name the library itself for the common TCTIs: the loader otherwise probes several
         * file names before it finds it, on every command. */
        static const struct {
            const char *prefix, *library;
        } libs[] = {{"swtpm:", "libtss2-tcti-swtpm.so.0:"}, {"device:", "libtss2-tcti-device.so.0:"},
                    {"mssim:", "libtss2-tcti-mssim.so.0:"}};
        rc = TSS2_TCTI_RC_NOT_SUPPORTED;
        for (size_t i = 0; i < ELEMENTSOF(libs); i++)
            if (strncmp(conf, libs[i].prefix, strlen(libs[i].prefix)) == 0) {
                char full[512];
                snprintf(full, sizeof full, "%s%s", libs[i].library, conf + strlen(libs[i].prefix));
                rc = tctildr_init(full, &t->tcti);
            }
        if (rc != TSS2_RC_SUCCESS)
            rc = tctildr_init(conf, &t->tcti);
        if (rc != TSS2_RC_SUCCESS) {
            t->tcti = NULL;
            r = cit_error_set(o->backend == CIT_BACKEND_SWTPM ? CIT_E_TRANSPORT : CIT_E_BACKEND_UNAVAILABLE,
                              "cannot connect to the TPM at %s", conf);
            cit_error_cause(o->backend == CIT_BACKEND_SWTPM
                                ? "no swtpm answers at that address (is it running?)"
                                : "the TPM device cannot be opened");
            cit_error_context("tcti", "%s", conf);
            cit_error_context("tpm_rc_decoded", "%s", cit__tss_rc_decode(rc));
            if (tss_libs.ldr_error[0]) {
                cit_error_cause("the TCTI loader library could not be loaded: %s", tss_libs.ldr_error);
                cit_error_step("install it: `apt-get install libtss2-tctildr0`");
            }
            goto fail;
        }
        break;
    }
    default:
        r = cit_error_set(CIT_E_INTERNAL, "backend not resolved");
        goto fail;
    }

    rc = Esys_Initialize(&t->esys, t->tcti, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        t->esys = NULL;
        r = cit__tss_error(t, CIT_E_TRANSPORT, rc, "cannot start a TPM session");
        goto fail;
    }
    if (o->backend == CIT_BACKEND_SWTPM) {
        /* swtpm started without startup-clear needs TPM2_Startup; INITIALIZE means done. */
        rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
        if (rc != TSS2_RC_SUCCESS && cit__rc_base(rc) != TPM2_RC_INITIALIZE) {
            r = cit__tss_error(t, CIT_E_TRANSPORT, rc, "TPM2_Startup failed");
            goto fail;
        }
    }
    *out = t;
    return 0;
fail:
    cit__tpm_free(t);
    return r;
}

static void tpm_release(cit_tpm *t) {
    if (t->esys) {
        if (t->srk != ESYS_TR_NONE)
            Esys_TR_Close(t->esys, &t->srk);
        Esys_Finalize(&t->esys);
    }
    if (t->tcti) {
        if (t->backend == CIT_BACKEND_VTPM || t->backend == CIT_BACKEND_MOCK) {
            Tss2_Tcti_Finalize(t->tcti);
            free(t->tcti);
        } else
            tss_libs.ldr_fini(&t->tcti); /* set: this TCTI came from the loader */
        t->tcti = NULL;
    }
    if (t->lock_fd >= 0)
        close(t->lock_fd); /* releases the flock */
    free(t->state_path);
    free(t->tcti_conf);
    free(t);
}

void cit__tpm_free(cit_tpm *t) {
    if (t)
        tpm_release(t);
}

int cit__tpm_close(cit_tpm *t) {
    if (!t)
        return 0;
    int r = 0;
    if (t->backend == CIT_BACKEND_VTPM && t->tcti) {
        if (t->srk != ESYS_TR_NONE)
            Esys_TR_Close(t->esys, &t->srk);
        cit_vtpm_state st = {0};
        r = cit__tcti_libtpms_shutdown(t->tcti, &st);
        if (r == 0)
            r = cit__vtpm_state_save(&st, t->state_path);
        cit__vtpm_state_clear(&st);
    }
    tpm_release(t);
    return r;
}

/* TCG provisioning guidance's ECC P-256 storage root key template. */
static void srk_template(TPM2B_PUBLIC *pub) {
    memset(pub, 0, sizeof(*pub));
    pub->publicArea.type = TPM2_ALG_ECC;
    pub->publicArea.nameAlg = TPM2_ALG_SHA256;
    pub->publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                       TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                       TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    TPMS_ECC_PARMS *p = &pub->publicArea.parameters.eccDetail;
    p->symmetric.algorithm = TPM2_ALG_AES;
    p->symmetric.keyBits.aes = 128;
    p->symmetric.mode.aes = TPM2_ALG_CFB;
    p->scheme.scheme = TPM2_ALG_NULL;
    p->curveID = TPM2_ECC_NIST_P256;
    p->kdf.scheme = TPM2_ALG_NULL;
    pub->publicArea.unique.ecc.x.size = 32;
    pub->publicArea.unique.ecc.y.size = 32;
}

static bool name_eq(const TPM2B_NAME *a, const TPM2B_NAME *b) {
    return a->size == b->size && memcmp(a->name, b->name, a->size) == 0;
}

static int srk_missing(TSS2_RC rc) {
    cit_error_set(CIT_E_SRK_MISSING, "the storage primary key is missing from the TPM");
    cit_error_cause("no key at persistent handle 0x%08x: the TPM was cleared or replaced, or "
                    "this is not the TPM the workspace was created with",
                    CIT_SRK_HANDLE);
    cit_error_context("handle", "0x%08x", CIT_SRK_HANDLE);
    cit_error_context("tpm_rc", "0x%08x", rc);
    return CIT_E_SRK_MISSING;
}

int cit__tpm_srk_load_error(TSS2_RC rc) {
    /* handle 1 of TPM2_Load/TPM2_Create is the parent: TPM_RC_HANDLE there means no SRK */
    if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && cit__rc_base(rc) == TPM2_RC_HANDLE &&
        (rc & 0xf00) == TPM2_RC_1)
        return srk_missing(rc);
    return 0;
}

int cit__tpm_srk_serialize(cit_tpm *t, uint8_t **out, size_t *out_len) {
    ESYS_TR h;
    int r = cit__tpm_srk(t, NULL, NULL, 0, &h);
    if (r < 0)
        return r;
    uint8_t *buf = NULL;
    size_t len = 0;
    TSS2_RC rc = Esys_TR_Serialize(t->esys, h, &buf, &len);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_INTERNAL, rc, "cannot serialize the storage key handle");
    *out = malloc(len);
    if (*out)
        memcpy(*out, buf, len);
    *out_len = len;
    Esys_Free(buf);
    return *out ? 0 : cit_error_set(CIT_E_INTERNAL, "out of memory");
}

int cit__tpm_srk(cit_tpm *t, const TPM2B_NAME *expected, const uint8_t *serialized, size_t serialized_len,
                 ESYS_TR *out) {
    if (t->srk != ESYS_TR_NONE) {
        *out = t->srk;
        return 0;
    }
    ESYS_TR h = ESYS_TR_NONE;
    if (serialized && serialized_len &&
        Esys_TR_Deserialize(t->esys, serialized, serialized_len, &h) == TSS2_RC_SUCCESS) {
        t->srk = h;
        *out = h;
        return 0;
    }
    TSS2_RC rc = Esys_TR_FromTPMPublic(t->esys, CIT_SRK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, &h);
    if (rc != TSS2_RC_SUCCESS) {
        /* Only "no such handle" means missing; out of memory and the rest are reported as they are. */
        if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && cit__rc_base(rc) == TPM2_RC_HANDLE)
            return srk_missing(rc);
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot read the storage primary key");
    }
    if (expected && expected->size) {
        TPM2B_NAME *name = NULL;
        rc = cit__tpm_object_name(t, h, &name);
        if (rc != TSS2_RC_SUCCESS) {
            Esys_TR_Close(t->esys, &h);
            return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot read the storage key name");
        }
        bool ok = name_eq(name, expected);
        Esys_Free(name);
        if (!ok) {
            Esys_TR_Close(t->esys, &h);
            cit_error_set(CIT_E_SRK_MISSING, "the storage primary key has changed");
            cit_error_cause("the key at 0x%08x is not the one this workspace was created with: the "
                            "TPM was cleared or this is another TPM",
                            CIT_SRK_HANDLE);
            cit_error_context("handle", "0x%08x", CIT_SRK_HANDLE);
            return CIT_E_SRK_MISSING;
        }
    }
    t->srk = h;
    *out = h;
    return 0;
}

int cit__tpm_srk_provision(cit_tpm *t, TPM2B_NAME *name_out) {
    TPM2B_PUBLIC tmpl;
    srk_template(&tmpl);
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    ESYS_TR prim = ESYS_TR_NONE;
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_NAME *name = NULL;
    TSS2_RC rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                    ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, &prim, &pub, NULL,
                                    NULL, NULL);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot create the storage primary key");
    Esys_Free(pub);
    rc = cit__tpm_object_name(t, prim, &name);
    if (rc != TSS2_RC_SUCCESS) {
        cit__tpm_flush(t, &prim);
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot read the storage key name");
    }
    /* Adopt an identical key already persisted (same seed, same template), else persist. */
    ESYS_TR existing = ESYS_TR_NONE;
    int r = 0;
    rc = Esys_TR_FromTPMPublic(t->esys, CIT_SRK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                               &existing);
    if (rc == TSS2_RC_SUCCESS) {
        TPM2B_NAME *ename = NULL;
        bool same = cit__tpm_object_name(t, existing, &ename) == TSS2_RC_SUCCESS && name_eq(ename, name);
        Esys_Free(ename);
        Esys_TR_Close(t->esys, &existing);
        if (!same) {
            r = cit_error_set(CIT_E_NO_FREE_HANDLE,
                              "persistent handle 0x%08x holds another key", CIT_SRK_HANDLE);
            cit_error_cause("citadel keeps its storage primary key at this handle (the TCG "
                            "convention for an ECC SRK)");
            cit_error_step("evict the key at that handle if it is unused: `tpm2_evictcontrol -C o -c 0x%08x`",
                           CIT_SRK_HANDLE);
        }
    } else {
        ESYS_TR persisted = ESYS_TR_NONE;
        rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, prim, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, CIT_SRK_HANDLE, &persisted);
        if (rc != TSS2_RC_SUCCESS)
            r = cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot persist the storage primary key");
        else
            Esys_TR_Close(t->esys, &persisted);
    }
    cit__tpm_flush(t, &prim);
    if (r == 0)
        *name_out = *name;
    Esys_Free(name);
    return r;
}

int cit__tpm_prop(cit_tpm *t, TPM2_PT prop, uint32_t *out) {
    TPMS_CAPABILITY_DATA *cap = NULL;
    TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_TPM_PROPERTIES, prop, 1, NULL, &cap);
    if (rc != TSS2_RC_SUCCESS)
        return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "TPM2_GetCapability failed");
    int r = -1;
    if (cap->data.tpmProperties.count >= 1 && cap->data.tpmProperties.tpmProperty[0].property == prop) {
        *out = cap->data.tpmProperties.tpmProperty[0].value;
        r = 0;
    } else
        r = cit_error_set(CIT_E_TPM_COMMAND, "the TPM does not report property 0x%x", prop);
    Esys_Free(cap);
    return r;
}

int cit__tpm_persistent_handles(cit_tpm *t, uint32_t first, uint32_t last, uint32_t **out, size_t *n) {
    size_t cap_n = 0, len = 0;
    uint32_t *list = NULL;
    uint32_t next = first;
    TPMI_YES_NO more = TPM2_YES;
    while (more && next <= last) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        TPM2_CAP_HANDLES, next, TPM2_MAX_CAP_HANDLES, &more, &cap);
        if (rc != TSS2_RC_SUCCESS) {
            free(list);
            return cit__tss_error(t, CIT_E_TPM_COMMAND, rc, "cannot list persistent handles");
        }
        TPML_HANDLE *hl = &cap->data.handles;
        if (hl->count == 0) {
            Esys_Free(cap);
            break;
        }
        for (uint32_t i = 0; i < hl->count; i++) {
            uint32_t h = hl->handle[i];
            if (h > last) {
                more = TPM2_NO;
                break;
            }
            if (len == cap_n) {
                cap_n = cap_n ? cap_n * 2 : 16;
                uint32_t *nl = realloc(list, cap_n * sizeof(*nl));
                if (!nl) {
                    free(list);
                    Esys_Free(cap);
                    return cit_error_set(CIT_E_INTERNAL, "out of memory");
                }
                list = nl;
            }
            list[len++] = h;
            next = h + 1;
        }
        Esys_Free(cap);
    }
    *out = list;
    *n = len;
    return 0;
}

/* ---- saved contexts of transient objects (vTPM) ----
 * One blob, "citadel.contexts", in the vTPM state container: entries of
 *   i64be object id | u32be version | u32be length | TPMS_CONTEXT (tss2-mu marshalled, as
 *   TPM2_ContextSave returned it)
 * the most recently kept first. A damaged blob reads as empty. */

#define CTX_BLOB "citadel.contexts"

typedef struct {
    int64_t id;
    int version;
    const uint8_t *data;
    size_t len;
} ctx_entry;

/* Parses up to CIT_TPM_CTX_KEEP entries of buf; returns how many (0 on any damage). */
static size_t ctx_entries(const uint8_t *buf, size_t len, ctx_entry *e) {
    size_t n = 0, off = 0;
    while (off < len) {
        if (n == CIT_TPM_CTX_KEEP || len - off < 16)
            return 0;
        const uint8_t *p = buf + off;
        uint64_t id = 0;
        for (int i = 0; i < 8; i++)
            id = id << 8 | p[i];
        uint32_t ver = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
        uint32_t l = (uint32_t)p[12] << 24 | (uint32_t)p[13] << 16 | (uint32_t)p[14] << 8 | p[15];
        off += 16;
        if (l == 0 || l > len - off || ver > INT32_MAX)
            return 0;
        e[n++] = (ctx_entry){(int64_t)id, (int)ver, buf + off, l};
        off += l;
    }
    return n;
}

/* Writes first (when given) and then the entries other than (id, version), at most
 * CIT_TPM_CTX_KEEP in all. */
static void ctx_store(int64_t id, int version, const uint8_t *first, size_t first_len, const ctx_entry *e,
                      size_t n) {
    /* version < 0 (forget): every version of id */
    size_t cap = first ? 16 + first_len : 0, k = first ? 1 : 0;
    for (size_t i = 0; i < n; i++)
        cap += 16 + e[i].len;
    uint8_t *buf = malloc(cap ? cap : 1), *p = buf;
    if (!buf)
        return;
    ctx_entry all[CIT_TPM_CTX_KEEP + 1];
    if (first)
        all[0] = (ctx_entry){id, version, first, first_len};
    for (size_t i = 0; i < n; i++)
        if (!(e[i].id == id && (e[i].version == version || version < 0)) && k < CIT_TPM_CTX_KEEP)
            all[k++] = e[i];
    for (size_t i = 0; i < k; i++) {
        for (int b = 0; b < 8; b++)
            *p++ = (uint8_t)((uint64_t)all[i].id >> (56 - 8 * b));
        cit_put_be32(p, (uint32_t)all[i].version);
        cit_put_be32(p + 4, (uint32_t)all[i].len);
        memcpy(p + 8, all[i].data, all[i].len);
        p += 8 + all[i].len;
    }
    cit__tcti_libtpms_blob_put(CTX_BLOB, buf, (size_t)(p - buf));
    free(buf);
}

/* The TPM's own context, through the SYS layer under ESYS: Esys_ContextLoad parses tpm2-tss's
 * metadata from the blob and leaves its context unusable when that fails. */
int cit__tpm_ctx_restore(cit_tpm *t, int64_t id, int version, ESYS_TR *out) {
    *out = ESYS_TR_NONE;
    uint8_t *buf = NULL;
    size_t len = 0;
    TSS2_SYS_CONTEXT *sys = NULL;
    if (t->backend != CIT_BACKEND_VTPM || Esys_GetSysContext(t->esys, &sys) != TSS2_RC_SUCCESS ||
        cit__tcti_libtpms_blob_get(CTX_BLOB, &buf, &len) < 0 || !buf)
        return -1;
    ctx_entry e[CIT_TPM_CTX_KEEP];
    size_t n = ctx_entries(buf, len, e);
    int r = -1;
    for (size_t i = 0; i < n && r < 0; i++) {
        if (e[i].id != id || e[i].version != version)
            continue;
        TPMS_CONTEXT c;
        size_t off = 0;
        TPM2_HANDLE loaded = 0;
        if (Tss2_MU_TPMS_CONTEXT_Unmarshal(e[i].data, e[i].len, &off, &c) != TSS2_RC_SUCCESS || off != e[i].len ||
            Tss2_Sys_ContextLoad(sys, &c, &loaded) != TSS2_RC_SUCCESS)
            continue;
        if (Esys_TR_FromTPMPublic(t->esys, loaded, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, out) == TSS2_RC_SUCCESS)
            r = 0;
        else {
            *out = ESYS_TR_NONE;
            Tss2_Sys_FlushContext(sys, loaded);
        }
    }
    free(buf);
    return r;
}

void cit__tpm_ctx_keep(cit_tpm *t, int64_t id, int version, ESYS_TR h) {
    TSS2_SYS_CONTEXT *sys = NULL;
    TPM2_HANDLE th = 0;
    TPMS_CONTEXT c;
    if (t->backend != CIT_BACKEND_VTPM || Esys_GetSysContext(t->esys, &sys) != TSS2_RC_SUCCESS ||
        Esys_TR_GetTpmHandle(t->esys, h, &th) != TSS2_RC_SUCCESS || Tss2_Sys_ContextSave(sys, th, &c) != TSS2_RC_SUCCESS)
        return;
    uint8_t m[sizeof(TPMS_CONTEXT)];
    size_t ml = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (Tss2_MU_TPMS_CONTEXT_Marshal(&c, m, sizeof m, &ml) == TSS2_RC_SUCCESS &&
        cit__tcti_libtpms_blob_get(CTX_BLOB, &buf, &len) == 0) {
        ctx_entry e[CIT_TPM_CTX_KEEP];
        size_t n = buf ? ctx_entries(buf, len, e) : 0;
        ctx_store(id, version, m, ml, e, n);
    }
    free(buf);
}

void cit__tpm_ctx_forget(cit_tpm *t, int64_t id, int version) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (t->backend != CIT_BACKEND_VTPM || cit__tcti_libtpms_blob_get(CTX_BLOB, &buf, &len) < 0 || !buf)
        return;
    ctx_entry e[CIT_TPM_CTX_KEEP];
    ctx_store(id, version, NULL, 0, e, ctx_entries(buf, len, e));
    free(buf);
}

TSS2_RC cit__tpm_object_name(cit_tpm *t, ESYS_TR h, TPM2B_NAME **name) {
    TPM2B_PUBLIC *pub = NULL;
    TPM2B_NAME *qname = NULL;
    *name = NULL;
    TSS2_RC rc = Esys_ReadPublic(t->esys, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, name, &qname);
    Esys_Free(pub);
    Esys_Free(qname);
    return rc;
}

bool cit__tpm_name_is(cit_tpm *t, ESYS_TR h, const uint8_t *name, size_t len) {
    TPM2B_NAME *nm = NULL;
    bool same = cit__tpm_object_name(t, h, &nm) == TSS2_RC_SUCCESS && nm->size == len && memcmp(nm->name, name, len) == 0;
    Esys_Free(nm);
    return same;
}

void cit__tpm_flush(cit_tpm *t, ESYS_TR *h) {
    if (*h != ESYS_TR_NONE && t && t->esys)
        Esys_FlushContext(t->esys, *h);
    *h = ESYS_TR_NONE;
}

void cit__tpm_scrub_response(cit_tpm *t) {
    if (!t || !t->esys)
        return;
    TPML_PCR_SELECTION sel = {.count = 1};
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].pcrSelect[0] = 0xff; /* PCRs 0-7: 8 x 32 bytes in the response */
    UINT32 counter = 0;
    TPML_PCR_SELECTION *out_sel = NULL;
    TPML_DIGEST *values = NULL;
    Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &counter, &out_sel, &values);
    Esys_Free(out_sel);
    Esys_Free(values);
}

bool cit__tpm_in_process(const cit_tpm *t) {
    return t && (t->backend == CIT_BACKEND_VTPM || t->backend == CIT_BACKEND_MOCK);
}
