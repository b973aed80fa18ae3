#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# A small HTTP/1.1 server for tests/integration/test-net.sh (plain TCP, or TLS with --cert/--key):
#   /echo      {"method","path","headers","body"} as JSON with Content-Length
#   /chunked   a chunked body (three chunks, one of them empty of data but CRLF-framed)
#   /big       17 MiB with Content-Length (over the client's 16 MiB cap)
#   /bigclose  17 MiB delimited by the close (no Content-Length)
#   /slow      answers after 5 seconds
#   /notes     204 No Content
#   /interim   a 100 Continue, then the answer
#   HEAD       headers with a Content-Length of 100, and no body (as HTTP wants)
# Usage: http-test-server.py READY_FILE [--cert F --key F]; writes its URL to READY_FILE.
import json, socket, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, body, ctype="application/json", length=True):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        body = self._body()
        p = self.path
        if p == "/echo":
            d = {"method": self.command, "path": p, "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": body.decode("utf-8", "replace")}
            self._send(200, json.dumps(d).encode())
        elif p == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for part in (b"hello, ", b"chunked ", b"world" * 1000):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif p == "/big":
            self._send(200, b"x" * (17 * 1024 * 1024), "text/plain")
        elif p == "/bigclose":
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(17):
                self.wfile.write(b"y" * (1024 * 1024))
        elif p == "/slow":
            time.sleep(5)
            self._send(200, b"{}")
        elif p == "/interim":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._send(200, b'{"after":"interim"}')
        elif p == "/notes":
            self.send_response(204)
            self.send_header("Connection", "close")
            self.end_headers()
        else:
            self._send(404, b'{"error":"no route"}')

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.send_header("Connection", "close")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


def main():
    ready = sys.argv[1]
    args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    scheme = "http"
    if "--cert" in args:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args["--cert"], args["--key"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    with open(ready + ".tmp", "w") as f:
        f.write("%s://127.0.0.1:%d\n" % (scheme, srv.server_address[1]))
    import os
    os.rename(ready + ".tmp", ready)
    srv.serve_forever()


main()
