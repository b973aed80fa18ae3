#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The attacker of tests/integration/test-audit-tamper.sh: edits an audit log directly in
SQLite, the way someone with write access to the store file (but not the TPM) could.

The entry layout and hashes follow src/lib/core/audit.c and docs/audit-format.md:
  entry = 0x01 || be64 seqno || be64 at || u8 sealed || str16 stream || str16 event
          || str16 actor || be32 len || payload          (str16 = be16 length || bytes)
  leaf  = SHA-256(0x00 || entry)                         (RFC 9162 leaf hash)
  hash  = SHA-256(0x02 || prev_hash || leaf)             (the chain link)
  node  = SHA-256(0x01 || left || right), MTH(empty) = SHA-256("")

usage: audit_tamper.py STORE ACTION [ARGS...]
  edit SEQ COLUMN VALUE      set one column of one entry (no hash recomputed)
  delete SEQ                 delete one entry
  swap SEQ                   swap every column but seqno of SEQ and SEQ+1
  append EVENT PAYLOAD       append a well-formed entry at head+1 (hashes computed)
  insert SEQ EVENT PAYLOAD   renumber SEQ.. up by one and put a well-formed entry at SEQ
                             (its hash computed and linked to SEQ-1; later rows untouched)
  insert-raw SEQ EVENT PAYLOAD   the same with garbage hashes
  truncate-rows SEQ          delete SEQ and every entry after it
  truncate-file FRACTION     checkpoint the WAL, then cut the file to FRACTION of its size
  rewrite SEQ PAYLOAD [--segments] [--head-file]
                             change SEQ's payload and recompute every hash from SEQ to the end
                             (--segments: also the segments' roots and head hashes and the
                             cached tree nodes; --head-file: also STORE.audit-head)
  head                       print "SEQNO HEXHASH" of the last entry
"""
import hashlib
import os
import sqlite3
import struct
import sys

COLS = ["at", "stream", "event", "actor", "sealed", "payload", "prev_hash", "entry_hash"]


def str16(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def entry_bytes(seqno, at, sealed, stream, event, actor, payload):
    return (b"\x01" + struct.pack(">QQB", seqno, at, 1 if sealed else 0) + str16(stream) + str16(event)
            + str16(actor) + struct.pack(">I", len(payload)) + bytes(payload))


def leaf_hash(row):
    return hashlib.sha256(b"\x00" + entry_bytes(*row)).digest()


def chain_hash(prev, leaf):
    return hashlib.sha256(b"\x02" + prev + leaf).digest()


def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def rows(db, first=1):
    return db.execute("SELECT seqno, at, sealed, stream, event, actor, payload, prev_hash, entry_hash "
                      "FROM audit_entries WHERE seqno >= ? ORDER BY seqno", (first,)).fetchall()


def head(db):
    r = db.execute("SELECT seqno, entry_hash FROM audit_entries ORDER BY seqno DESC LIMIT 1").fetchone()
    return (0, bytes(32)) if r is None else (r[0], bytes(r[1]))


def prev_of(db, seq):
    r = db.execute("SELECT entry_hash FROM audit_entries WHERE seqno = ?", (seq - 1,)).fetchone()
    return bytes(32) if r is None else bytes(r[0])


def template(db):
    """A plausible row to forge: the newest entry's time, stream and actor."""
    r = db.execute("SELECT at, stream, actor FROM audit_entries ORDER BY seqno DESC LIMIT 1").fetchone()
    return r[0] + 1, r[1], r[2]


def forge(db, seq, event, payload, prev, good=True):
    at, stream, actor = template(db)
    row = (seq, at, 0, stream, event, actor, payload.encode())
    h = chain_hash(prev, leaf_hash(row)) if good else os.urandom(32)
    db.execute("INSERT INTO audit_entries (seqno, at, sealed, stream, event, actor, payload, prev_hash, "
               "entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (seq, at, 0, stream, event, actor, payload.encode(), prev if good else os.urandom(32), h))


def renumber_up(db, seq):
    # two steps through negative numbers: the primary key must stay unique on the way
    db.execute("UPDATE audit_entries SET seqno = -(seqno + 1) WHERE seqno >= ?", (seq,))
    db.execute("UPDATE audit_entries SET seqno = -seqno WHERE seqno < 0")


def main():
    store, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if action == "truncate-file":
        db = sqlite3.connect(store)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        size = os.path.getsize(store)
        with open(store, "r+b") as f:
            f.truncate(int(size * float(args[0])) // 4096 * 4096)
        for ext in ("-wal", "-shm"):
            if os.path.exists(store + ext):
                os.unlink(store + ext)
        return
    db = sqlite3.connect(store, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    if action == "edit":
        seq, col, val = int(args[0]), args[1], args[2]
        assert col in COLS
        db.execute("UPDATE audit_entries SET %s = ? WHERE seqno = ?" % col,
                   (val.encode() if col == "payload" else val, seq))
    elif action == "delete":
        db.execute("DELETE FROM audit_entries WHERE seqno = ?", (int(args[0]),))
    elif action == "swap":
        seq = int(args[0])
        a = db.execute("SELECT %s FROM audit_entries WHERE seqno = ?" % ", ".join(COLS), (seq,)).fetchone()
        b = db.execute("SELECT %s FROM audit_entries WHERE seqno = ?" % ", ".join(COLS), (seq + 1,)).fetchone()
        sets = ", ".join("%s = ?" % c for c in COLS)
        db.execute("UPDATE audit_entries SET %s WHERE seqno = ?" % sets, (*b, seq))
        db.execute("UPDATE audit_entries SET %s WHERE seqno = ?" % sets, (*a, seq + 1))
    elif action == "append":
        n, h = head(db)
        forge(db, n + 1, args[0], args[1], h)
    elif action in ("insert", "insert-raw"):
        seq = int(args[0])
        prev = prev_of(db, seq)
        renumber_up(db, seq)
        forge(db, seq, args[1], args[2], prev, good=action == "insert")
    elif action == "truncate-rows":
        db.execute("DELETE FROM audit_entries WHERE seqno >= ?", (int(args[0]),))
    elif action == "rewrite":
        seq, payload = int(args[0]), args[1].encode()
        db.execute("UPDATE audit_entries SET payload = ? WHERE seqno = ?", (payload, seq))
        prev = prev_of(db, seq)
        for r in rows(db, seq):
            h = chain_hash(prev, leaf_hash(r[:7]))
            db.execute("UPDATE audit_entries SET prev_hash = ?, entry_hash = ? WHERE seqno = ?", (prev, h, r[0]))
            prev = h
        if "--segments" in args:
            leaves = [leaf_hash(r[:7]) for r in rows(db)]
            hashes = {r[0]: bytes(r[8]) for r in rows(db)}
            for sid, last in db.execute("SELECT id, last_seqno FROM audit_segments").fetchall():
                db.execute("UPDATE audit_segments SET root = ?, head_hash = ? WHERE id = ?",
                           (mth(leaves[:last]), hashes[last], sid))
            for level, idx in db.execute("SELECT level, idx FROM audit_nodes").fetchall():
                n = 1 << level
                db.execute("UPDATE audit_nodes SET hash = ? WHERE level = ? AND idx = ?",
                           (mth(leaves[idx * n:(idx + 1) * n]), level, idx))
        if "--head-file" in args:
            n, h = head(db)
            with open(store + ".audit-head", "w") as f:
                f.write("citadel-audit-head/v1\ncommitted %d %s\n" % (n, h.hex()))
    elif action == "head":
        n, h = head(db)
        print(n, h.hex())
    else:
        sys.exit("unknown action " + action)
    db.execute("COMMIT")
    db.close()


if __name__ == "__main__":
    main()
