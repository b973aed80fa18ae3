#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""An independent RFC 9162 (Certificate Transparency v2) Merkle tree checker for
tests/interop/test-audit-tools.sh, written from the RFC's text (sections 2.1.1, 2.1.3.2 and
2.1.4.2), not from Citadel's C. It also rebuilds Citadel's audit entry bytes from the SQLite
rows (the layout in the brief of the audit log: u8 version || u64 seqno || u64 at_us || u8
sealed || u16 len + stream || u16 len + event || u16 len + actor || u32 len + payload).

  rfc9162.py self-test
  rfc9162.py check-inclusion PROOF.json           (leaf recomputed from "entry")
  rfc9162.py check-consistency PROOF.json
  rfc9162.py roots STORE.db SIZE...                prints the MTH of the first SIZE entries
  rfc9162.py entry STORE.db SEQNO                  prints the entry bytes in hex
Exit status 0 when every check holds, 1 otherwise (with the reason on stderr).
"""
import hashlib
import json
import sqlite3
import struct
import sys


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(entry):
    return sha256(b"\x00" + entry)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def mth(leaves):
    """2.1.1: MTH of a list of leaf *hashes* (already 0x00-prefixed and hashed)."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:  # the largest power of two smaller than n
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(leaf_index, tree_size, h, inclusion_path, root_hash):
    """2.1.3.2, step by step."""
    # 1. leaf_index >= tree_size: fail
    if leaf_index >= tree_size:
        return False
    # 2. fn = leaf_index, sn = tree_size - 1
    fn, sn = leaf_index, tree_size - 1
    # 3. r = hash
    r = h
    # 4. for each p in inclusion_path
    for p in inclusion_path:
        # a. sn == 0: fail
        if sn == 0:
            return False
        # b. LSB(fn) set, or fn == sn
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        # c. shift once
        fn >>= 1
        sn >>= 1
    # 5. sn == 0 and r == root
    return sn == 0 and r == root_hash


def verify_consistency(first, second, first_hash, second_hash, consistency_path):
    """2.1.4.2, step by step. first == second is outside the RFC's algorithm (it has nothing
    to prove): accepted only with an empty path and equal hashes."""
    if first < 1 or first > second:
        return False
    if first == second:
        return not consistency_path and first_hash == second_hash
    # 1. an empty path fails
    if not consistency_path:
        return False
    path = list(consistency_path)
    # 2. first an exact power of 2: prepend first_hash
    if first & (first - 1) == 0:
        path = [first_hash] + path
    # 3.
    fn, sn = first - 1, second - 1
    # 4.
    if fn & 1:
        while fn & 1:
            fn >>= 1
            sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 7.
    return fr == first_hash and sr == second_hash and sn == 0


# ---- Citadel's audit entries, rebuilt from the rows ----


def entry_bytes(row):
    seqno, at, stream, event, actor, sealed, payload = row
    out = struct.pack(">BQQB", 1, seqno, at, 1 if sealed else 0)
    for s in (stream, event, actor):
        b = s.encode()
        out += struct.pack(">H", len(b)) + b
    payload = bytes(payload)
    return out + struct.pack(">I", len(payload)) + payload


def store_entries(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    rows = con.execute("SELECT seqno, at, stream, event, actor, sealed, payload FROM audit_entries ORDER BY seqno").fetchall()
    con.close()
    for i, r in enumerate(rows):
        if r[0] != i + 1:
            raise SystemExit("entry %d is missing from %s" % (i + 1, db))
    return [entry_bytes(r) for r in rows]


def die(msg):
    print("rfc9162.py: " + msg, file=sys.stderr)
    sys.exit(1)


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    cmd = argv[0]
    if cmd == "self-test":
        # the certificate-transparency reference vectors: eight leaves and their roots
        leaves = [bytes.fromhex(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                             "606162636465666768696a6b6c6d6e6f")]
        want = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
                "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
                "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
                "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
        lh = [leaf_hash(x) for x in leaves]
        for n in range(1, 9):
            if mth(lh[:n]).hex() != want[n - 1]:
                die("self-test: the root of %d CT leaves is wrong" % n)
        path = [bytes.fromhex(x) for x in ("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                                           "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                                           "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]
        if not verify_inclusion(5, 8, lh[5], path, bytes.fromhex(want[7])):
            die("self-test: the CT inclusion path (5, 8) does not verify")
        if verify_inclusion(4, 8, lh[5], path, bytes.fromhex(want[7])):
            die("self-test: a wrong index verifies")
        cons = [bytes.fromhex(x) for x in ("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                                           "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                                           "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]
        if not verify_consistency(6, 8, bytes.fromhex(want[5]), bytes.fromhex(want[7]), cons):
            die("self-test: the CT consistency proof (6, 8) does not verify")
        if verify_consistency(6, 8, bytes.fromhex(want[4]), bytes.fromhex(want[7]), cons):
            die("self-test: a wrong old root verifies")
        print("ok")
        return 0
    if cmd == "check-inclusion":
        d = json.load(open(argv[1]))
        if d.get("type") != "inclusion":
            die("not an inclusion proof")
        entry = bytes.fromhex(d["entry"])
        h = leaf_hash(entry)
        if h.hex() != d["leaf_hash"]:
            die("leaf_hash is not the hash of the entry bytes")
        # the entry's own sequence number is the leaf index + 1
        if struct.unpack(">Q", entry[1:9])[0] != d["leaf_index"] + 1:
            die("the entry's seqno is not leaf_index + 1")
        ok = verify_inclusion(d["leaf_index"], d["tree_size"], h, [bytes.fromhex(p) for p in d["proof"]],
                              bytes.fromhex(d["root"]))
        if not ok:
            die("the inclusion proof does not verify")
        print("ok")
        return 0
    if cmd == "check-consistency":
        d = json.load(open(argv[1]))
        if d.get("type") != "consistency":
            die("not a consistency proof")
        ok = verify_consistency(d["old_size"], d["new_size"], bytes.fromhex(d["old_root"]),
                                bytes.fromhex(d["new_root"]), [bytes.fromhex(p) for p in d["proof"]])
        if not ok:
            die("the consistency proof does not verify")
        print("ok")
        return 0
    if cmd == "roots":
        lh = [leaf_hash(e) for e in store_entries(argv[1])]
        for s in argv[2:]:
            n = int(s)
            if n > len(lh):
                die("the store has %d entries, not %d" % (len(lh), n))
            print(mth(lh[:n]).hex())
        return 0
    if cmd == "entry":
        print(store_entries(argv[1])[int(argv[2]) - 1].hex())
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
