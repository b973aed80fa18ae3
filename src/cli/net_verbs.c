/* SPDX-License-Identifier: Apache-2.0 */
/* The verbs of `citadel node` and `citadel enroll`: their tables, in both binaries.
 *
 * The commands themselves (cmd_node.c, cmd_enroll.c) talk HTTPS through src/net on GnuTLS,
 * which with its eight libraries costs every process about 4 ms to load and relocate on the
 * development VM. So they are linked only into `citadel-net`, installed beside `citadel`: in
 * `citadel` their handlers are weak references that stay NULL, and run_verb (main.c) hands a
 * command whose handler is NULL to citadel-net with the same arguments (cli_exec_net). Help,
 * completions and argument errors come from these tables in either binary. citadel-net links
 * this file compiled with CLI_NET_STRONG: there a handler that is missing fails the link. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* clang-format off */
#ifdef CLI_NET_STRONG
#define CLI_NET_FN(name) int name(cli_env *e, const cli_args *a, json_t **out);
#else
#define CLI_NET_FN(name) int name(cli_env *e, const cli_args *a, json_t **out) __attribute__((weak));
#endif
CLI_NET_FN(cli_node_enroll)
CLI_NET_FN(cli_node_fetch)
CLI_NET_FN(cli_node_status)
CLI_NET_FN(cli_node_config)
CLI_NET_FN(cli_node_renew)
CLI_NET_FN(cli_enroll_list)
CLI_NET_FN(cli_enroll_show)
CLI_NET_FN(cli_enroll_approve)
CLI_NET_FN(cli_enroll_deny)
CLI_NET_FN(cli_enroll_revoke)
CLI_NET_FN(cli_enroll_config_set)
CLI_NET_FN(cli_enroll_config_get)
CLI_NET_FN(cli_enroll_crl)
/* clang-format on */

/* clang-format off */
const cli_verb cli_verbs_node[] = {
    {"enroll", cli_node_enroll, NULL, 0, 0, "enroll this TPM with an enrolld server (EK, AK, quote, certified DevID key)",
     "Creates the AK (--ak, default enroll/ak) and the DevID identity (--identity, default devid)\n"
     "when missing, sends the EK, its certificate, the AK public, the DevID public and a CSR\n"
     "signed in the TPM; activates the server's credential (only this TPM can), quotes the PCRs\n"
     "the server asks for over its nonce, certifies the DevID key with the AK, and sends them\n"
     "back. The node is then pending an operator's approval (or approved at once when the server\n"
     "auto-approves); --wait polls for the approval, `node fetch` later fetches the certificates.",
     "citadel node enroll --server https://enroll.example:7702 --ca-file enroll-ca.pem --wait 60",
     {{"server", "URL", "the enrollment server (required)"},
      {"ca-file", "FILE", "the server's CA certificate (PEM; kept beside the store)"},
      {"token", "TOKEN", "an enrollment token, when the server requires one"},
      {"host", "NAME", "the name to enroll under (default: the host name)"},
      {"group", "NAME", "the configuration group to join (default: default)"},
      {"ak", "PATH", "the attestation key (default enroll/ak)"},
      {"identity", "NAME", "the DevID identity (default devid)"},
      {"algorithm", "ALG", "ecc-p256 (default) or rsa-2048: EK and AK (DevID: ecc-p256)"},
      {"eventlog", "FILE", "send this event log (device backend: the firmware's)"},
      {"wait", "SECONDS", "wait this long for an operator's approval"},
      {"new-keys", NULL, "delete the AK and DevID identity and make new ones (after a TPM clear)"}}},
    {"fetch", cli_node_fetch, NULL, 0, 0, "fetch the enrollment's status; once approved, store the certificates",
     "Asks the server about this workspace's enrollment (authenticated by the token its finish\n"
     "answered). Approved: the DevID certificate goes into the identity, the AK and CA\n"
     "certificates beside the store. Pending: exits 14.",
     "citadel node fetch", {{0}}},
    {"status", cli_node_status, NULL, 0, 0, "this workspace's enrollment as recorded locally",
     "The server, enrollment id, host, identity and status (the fetch token is not shown).",
     "citadel node status", {{0}}},
    {"config", cli_node_config, NULL, 0, 0, "the node's effective settings from the server (mutual TLS)",
     "Over mutual TLS with the DevID key signing in the TPM: every setting that applies to this\n"
     "node (global, then its group, then the node itself), with where each came from.",
     "citadel node config", {{"server", "URL", "another address of the same server"}}},
    {"renew", cli_node_renew, NULL, 0, 0, "renew the certificates, re-attesting over a fresh nonce (mutual TLS)",
     "Asks for a nonce over mutual TLS, quotes and certifies the DevID key again over it, and\n"
     "receives new AK and DevID certificates (the old DevID certificate is revoked as superseded).",
     "citadel node renew --before 30   # from cron: renews only within 30 days of expiry",
     {{"eventlog", "FILE", "send this event log with the quote"},
      {"before", "DAYS", "renew only when the DevID certificate expires within DAYS (else: not-due)"}}},
    {0}};
/* clang-format on */

/* clang-format off */
#define ADMIN_OPTS \
    {"server", "URL", "the enrollment server (or $ENROLL_SERVER)"}, \
    {"ca-file", "FILE", "its CA certificate (or $ENROLL_CA_FILE)"}, \
    {"api-key-file", "FILE", "an admin API key (or $ENROLL_API_KEY)"}, \
    {"cert", "FILE", "an admin client certificate (PEM)"}, \
    {"key", "FILE", "its private key (PEM)"}

const cli_verb cli_verbs_enroll[] = {
    {"list", cli_enroll_list, NULL, 0, 0, "nodes and their enrollment status",
     "Every enrollment, newest first: host, status (started, pending, approved, denied,\n"
     "revoked), group, AK name and certificate serials.",
     "citadel enroll list --status pending", {ADMIN_OPTS, {"status", "STATUS", "only nodes in this status"}}},
    {"show", cli_enroll_show, "NODE", 1, 1, "one node: its checks, quote, certificates",
     "NODE is a host name (its newest enrollment) or an enrollment id.",
     "citadel enroll show web-1", {ADMIN_OPTS}},
    {"approve", cli_enroll_approve, "NODE", 1, 1, "approve a pending node: its AK and DevID certificates are issued",
     "The server's CA issues the AK certificate (from the AK public recorded at enrollment) and\n"
     "the DevID certificate (from the CSR whose key the AK certified), both naming the TPM's EK\n"
     "in a HardwareModuleName. The node picks them up with `citadel node fetch`.",
     "citadel enroll approve web-1", {ADMIN_OPTS, {"reason", "TEXT", "recorded with the decision"}}},
    {"deny", cli_enroll_deny, "NODE", 1, 1, "deny a pending node", "Recorded in the audit log; the node may enroll again.",
     "citadel enroll deny web-1 --reason 'unknown machine'", {ADMIN_OPTS, {"reason", "TEXT", "recorded with the decision"}}},
    {"revoke", cli_enroll_revoke, "NODE", 1, 1, "revoke a node: its certificates go into the CRL and are refused at once",
     "The AK and DevID certificates are revoked (reason cessationOfOperation unless --reason\n"
     "keyCompromise or superseded); the server refuses the node's mutual TLS from then on.",
     "citadel enroll revoke web-1 --reason keyCompromise", {ADMIN_OPTS, {"reason", "TEXT", "keyCompromise, superseded, or a note"}}},
    {"config-set", cli_enroll_config_set, "KEY [VALUE]", 1, 2, "set (or without VALUE delete) a setting",
     "Settings are served to nodes (`citadel node config`): a node's value overrides its group's,\n"
     "which overrides the global one.",
     "citadel enroll config-set log_level debug --scope group:web", {ADMIN_OPTS,
      {"scope", "SCOPE", "global (default), group:NAME or node:HOST"}}},
    {"config-get", cli_enroll_config_get, "[NODE]", 0, 1, "the global settings, or a node's effective ones with their sources",
     "With NODE: each setting's effective value and the scope it came from (and what it overrides).",
     "citadel enroll config-get web-1", {ADMIN_OPTS}},
    {"crl", cli_enroll_crl, NULL, 0, 0, "the server CA's certificate revocation list (PEM)",
     "Anyone may fetch it; `openssl verify -crl_check -CRLfile crl.pem -CAfile ca.pem cert.pem`.",
     "citadel enroll crl --output enroll.crl", {{"server", "URL", "the enrollment server"},
      {"ca-file", "FILE", "its CA certificate"}, {"output", "FILE", "write the CRL here"}}},
    {0}};
/* clang-format on */

int cli_exec_net(cli_env *env) {
    if (env->in_batch) {
        cit_error_set(CIT_E_USAGE, "`node` and `enroll` commands cannot run inside `batch`");
        cit_error_cause("they run in citadel-net, a program of their own");
        cit_error_step("run them on a command line of their own");
        goto fail;
    }
    if (env->handed_over) { /* citadel-net (or whatever stands in its place) lacks the command */
        cit_error_set(CIT_E_INTERNAL, "citadel-net was built without this command");
        cit_error_cause("the program citadel ran for it handed it back (CITADEL_NET_EXEC was set)");
        goto fail;
    }
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path);
    if (n <= 0 || (size_t)n >= sizeof path) {
        cit_error_set(CIT_E_COMPONENT_MISSING, "cannot find the directory this program runs from");
        cit_error_cause("/proc/self/exe cannot be read: %s", n < 0 ? strerror(errno) : "the path is too long");
        goto fail;
    }
    path[n] = 0;
    char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) : 0;
    if (dir + sizeof "/citadel-net" > sizeof path) {
        cit_error_set(CIT_E_COMPONENT_MISSING, "the path of citadel-net is too long");
        goto fail;
    }
    memcpy(path + dir, "/citadel-net", sizeof "/citadel-net");
    if (access(path, X_OK) < 0) {
        cit_error_set(CIT_E_COMPONENT_MISSING, "citadel-net is not installed beside citadel");
        cit_error_cause("%s: %s", path, strerror(errno));
        cit_error_context("program", "%s", path);
        goto fail;
    }
    /* citadel-net opens the workspace itself */
    cit_ctx_close(env->ctx);
    env->ctx = NULL;
    fflush(stdout);
    fflush(stderr);
    /* a citadel-net that is a link to citadel, or a script that runs it, must not loop */
    setenv("CITADEL_NET_EXEC", "1", 1);
    char *argv0 = env->argv[0];
    env->argv[0] = path;
    execv(path, env->argv);
    int e = errno;
    env->argv[0] = argv0;
    unsetenv("CITADEL_NET_EXEC");
    cit_error_set(CIT_E_COMPONENT_MISSING, "cannot run citadel-net: %s", strerror(e));
    cit_error_context("program", "%s", path);
fail:
    cit_error_render(stderr, cit_error_last(), env->fmt);
    return cit_code_exit_status(cit_error_last()->code);
}
