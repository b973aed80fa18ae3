#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Test and load client for tpmd (stdlib http.client with keep-alive; python3-cryptography,
i.e. OpenSSL, to verify signatures).

  tpmd-client.py routes URL OPENAPI ADMIN_KEY READ_KEY SIGN_KEY
      every documented path+method answers with a documented status; 401 without a key;
      403 for a read key on a sign/admin route and a sign key on an admin route.
  tpmd-client.py load URL KEY PATH CLIENTS TOTAL OUTFILE
      CLIENTS threads, one keep-alive connection each, TOTAL sign requests of distinct
      messages in all; every acknowledged (200) signature is verified with the key's public
      key and appended to OUTFILE ("seq hexmsg hexsig") as it is acknowledged. Prints
      "ok N errors E seconds S rps R".
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

import yaml


def conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def call(c, method, path, body=None, key=None):
    h = {"Content-Type": "application/json"}
    if key:
        h["X-API-Key"] = key
    data = None if body is None else json.dumps(body)
    for attempt in (0, 1):
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            if r.getheader("Connection", "").lower() == "close":
                c.close()
            return r.status, raw
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # an answer before the body was read closes the connection; open a new one
            c.close()
            if attempt:
                raise


def routes(url, spec_file, admin, read, sign):
    spec = yaml.safe_load(open(spec_file))
    c = conn(url)
    # fixtures the examples name
    for p in ("openapi/k1", "openapi/gone"):
        st, raw = call(c, "POST", "/v1/keys", {"path": p}, admin)
        assert st in (201, 409), (st, raw)
    st, raw = call(c, "POST", "/v1/delete/openapi/k1", {}, admin)  # POST /v1/keys recreates it
    assert st == 200, (st, raw)
    ops = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            ops.append((0 if (method, path) == ("post", "/v1/keys") else 1, path, method, op))
    ops.sort(key=lambda x: x[0])
    checked = 0
    for _, path, method, op in ops:
        documented = {int(s) for s in op["responses"]}
        concrete = path
        if "{" in path:
            concrete = path.replace("{path}", op["x-example-path"]).replace("{id}", op["x-example-path"])
        body = op.get("x-example", {} if method == "post" else None)
        st, raw = call(c, method.upper(), concrete, body, admin)
        assert st in documented, f"{method.upper()} {concrete}: {st} not in {sorted(documented)}: {raw[:300]!r}"
        if st >= 400:
            e = json.loads(raw)["error"]
            assert e["code"].startswith("TPM") and e["message"], raw
        elif path != "/metrics":
            assert json.loads(raw)["schema_version"] == 1, raw
        # authentication and roles
        st, raw = call(c, method.upper(), concrete, body, None)
        assert st == 401 and json.loads(raw)["error"]["code"] == "TPM0150", (path, st, raw)
        st, _ = call(c, method.upper(), concrete, body, "wrong-key-0123456789")
        assert st == 401, (path, st)
        role = op["x-role"]
        if role in ("sign", "admin"):
            st, raw = call(c, method.upper(), concrete, body, read)
            assert st == 403 and json.loads(raw)["error"]["code"] == "TPM0151", (path, st, raw)
        if role == "admin":
            st, _ = call(c, method.upper(), concrete, body, sign)
            assert st == 403, (path, st)
        checked += 1
    print(f"routes ok {checked}")


def load(url, key, path, clients, total, outfile):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    c = conn(url)
    st, raw = call(c, "GET", "/v1/keys/" + path, None, key)
    assert st == 200, raw
    pub = serialization.load_pem_public_key(json.loads(raw)["public_key_pem"].encode())
    c.close()
    out = open(outfile, "a", buffering=1)
    lock = threading.Lock()
    counter = iter(range(total))
    stats = {"ok": 0, "err": 0, "bad": 0}

    def verify(msg, sig):
        if isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(sig, msg)
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        else:
            pub.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())

    def worker():
        c = conn(url)
        failures = 0  # in a row: the daemon is gone (the kill -9 test)
        while failures < 20:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            msg = b"message %d" % i
            try:
                st, raw = call(c, "POST", "/v1/sign/" + path, {"data_hex": msg.hex()}, key)
            except Exception:
                with lock:
                    stats["err"] += 1
                failures += 1
                c.close()
                c = conn(url)
                time.sleep(0.01)
                continue
            failures = 0
            if st != 200:
                with lock:
                    stats["err"] += 1
                continue
            sig = bytes.fromhex(json.loads(raw)["signature_hex"])
            with lock:
                out.write(f"{i} {msg.hex()} {sig.hex()}\n")
            try:
                verify(msg, sig)
                with lock:
                    stats["ok"] += 1
            except Exception:
                with lock:
                    stats["bad"] += 1
        c.close()

    t0 = time.monotonic()
    th = [threading.Thread(target=worker) for _ in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    dt = time.monotonic() - t0
    print(f"ok {stats['ok']} errors {stats['err']} bad {stats['bad']} seconds {dt:.2f} rps {stats['ok'] / dt:.0f}")


if __name__ == "__main__":
    if sys.argv[1] == "routes":
        routes(*sys.argv[2:7])
    elif sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7])
    else:
        sys.exit("usage: tpmd-client.py routes|load ...")
