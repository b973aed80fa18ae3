/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS for tpmd: the configuration's certificate and key (files, or a TPM identity's key whose
 * handshake signatures are made in the TPM) as shared TLS credentials (src/net/tls.c), served
 * through libmicrohttpd's certificate callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/util.h"
#include "tpmd.h"

int tpmd_tls_setup(tpmd *d) {
    if (d->cfg.tls_identity) {
        char *cert = NULL;
        if (d->cfg.tls_cert) { /* TPMD_TLS_CERT overrides the identity's certificate */
            uint8_t *buf = NULL;
            size_t len = 0;
            if (cit_read_file(d->cfg.tls_cert, 1024 * 1024, &buf, &len) < 0 || len == 0) {
                free(buf);
                cit_error_set(CIT_E_INPUT_READ, "cannot read the TLS certificate %s", d->cfg.tls_cert);
                cit_error_context("file", "%s", d->cfg.tls_cert);
                return CIT_E_INPUT_READ;
            }
            cert = (char *)buf;
        }
        int r = cit_tls_creds_identity(&d->tls, d->ctx, &d->tpm_lock, d->cfg.tls_identity, cert);
        free(cert);
        if (r < 0) {
            cit_error_cause("TPMD_TLS_IDENTITY names %s", d->cfg.tls_identity);
            return r;
        }
        cit_tls_creds_set_actor(d->tls, "tpmd:tls");
        /* handshakes wait ahead of the TPM thread's next batch, like every other user */
        cit_tls_creds_set_lock_fns(d->tls, tpmd_tpm_lock_cb, tpmd_tpm_unlock_cb, d);
        return 0;
    }
    if (!d->cfg.tls_cert && !d->cfg.tls_key)
        return 0;
    if (!d->cfg.tls_cert || !d->cfg.tls_key)
        return cit_error_set(CIT_E_USAGE, "TLS from files needs both TPMD_TLS_CERT and TPMD_TLS_KEY");
    return cit_tls_creds_file(&d->tls, d->cfg.tls_cert, d->cfg.tls_key);
}

int tpmd_tls_cert_cb(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                     const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                     unsigned int *pcert_length, gnutls_privkey_t *privkey) {
    cit_tls_creds_gnutls(tpmd_global->tls, pcert, pcert_length, privkey);
    return 0;
}

void tpmd_tls_free(tpmd *d) {
    cit_tls_creds_free(d->tls);
    d->tls = NULL;
}
