/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/drivers/http-driver: cit_http_request (src/net/) from the shell, for
 * tests/integration/test-net.sh. A diagnostic, not a user command.
 *
 *   http-driver METHOD URL [--cacert F] [--identity NAME [--cert F]] [--cert F --key F]
 *               [--data STRING] [--content-type T] [--header "N: v"]... [--timeout SEC]
 *
 * --identity: a client certificate whose key is that TPM identity of the workspace
 * (TPM_STORE_PATH/TPM_BACKEND as for citadel; its stored certificate, or --cert), so the
 * handshake signature is made in the TPM; --cert/--key: one from files. Prints the body on
 * stdout and "status N" and, for an identity, "tpm_signs N" on stderr; exit 0. On an error
 * prints the error (code, message, causes) on stderr and exits with the code's exit status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "citadel/citadel.h"
#include "net/net.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: http-driver METHOD URL [--cacert F] [--identity NAME] [--cert F] [--key F] "
                        "[--data S] [--content-type T] [--header H]... [--timeout SEC]\n");
        return 2;
    }
    const char *method = argv[1], *url = argv[2], *cacert = NULL, *identity = NULL, *cert = NULL, *key = NULL,
               *data = NULL, *ctype = NULL;
    const char *headers[16] = {0};
    int nh = 0;
    unsigned timeout = 0;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "%s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--cacert") == 0)
            cacert = v;
        else if (strcmp(a, "--identity") == 0)
            identity = v;
        else if (strcmp(a, "--cert") == 0)
            cert = v;
        else if (strcmp(a, "--key") == 0)
            key = v;
        else if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "--content-type") == 0)
            ctype = v;
        else if (strcmp(a, "--header") == 0 && nh < 15)
            headers[nh++] = v;
        else if (strcmp(a, "--timeout") == 0)
            timeout = (unsigned)strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    cit_ctx *ctx = NULL;
    cit_tls_creds *creds = NULL;
    int r = 0;
    if (identity) {
        cit_ctx_options o = {0};
        char *pem = NULL;
        if (cert) {
            FILE *f = fopen(cert, "re");
            pem = calloc(1, 65536);
            if (!f || !pem || fread(pem, 1, 65535, f) == 0) {
                fprintf(stderr, "cannot read %s\n", cert);
                return 2;
            }
            fclose(f);
        }
        r = cit_ctx_new(&ctx, &o);
        if (r == 0)
            r = cit_tls_creds_identity(&creds, ctx, NULL, identity, pem);
        free(pem);
    } else if (cert || key)
        r = cit_tls_creds_file(&creds, cert, key);
    cit_http_resp resp = {0};
    if (r == 0)
        r = cit_http_request(&resp, method, url, cacert, creds, ctype, data, data ? strlen(data) : 0,
                             nh ? headers : NULL, timeout);
    if (r < 0) {
        cit_error_render(stderr, cit_error_last(), CIT_FORMAT_TEXT);
        cit_tls_creds_free(creds);
        if (ctx)
            cit_ctx_close(ctx);
        return cit_code_exit_status(r);
    }
    fwrite(resp.body, 1, resp.len, stdout);
    fprintf(stderr, "status %d\n", resp.status);
    if (creds && cit_tls_creds_in_tpm(creds))
        fprintf(stderr, "tpm_signs %llu\n", cit_tls_creds_tpm_signs(creds));
    cit_http_resp_free(&resp);
    cit_tls_creds_free(creds);
    if (ctx)
        cit_ctx_close(ctx);
    return 0;
}
