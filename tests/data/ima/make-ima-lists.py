#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the IMA measurement lists in this directory, the way the Linux kernel writes them.

Kernel references (security/integrity/ima/): ima_template_lib.c (fields), ima_crypto.c
(ima_calc_field_array_hash_tfm: the template hash), ima_fs.c (ima_measurements_show: the binary
list, ima_ascii_measurements_show: the ASCII one).

  template data (every template but "ima"): each field as u32 length (little endian) + bytes
    d-ng  = b"<alg>:\\0" + file digest
    n-ng  = path + b"\\0" (spaces replaced by '_')
    sig   = the security.ima xattr (ima-sig; may be empty)
  template hash in bank B = B(template data); for "ima": SHA1(digest20 || name padded to 256)
  binary entry = u32 pcr | template hash | u32 len + template name | u32 len + template data
                 ("ima": digest20 | u32 len + name, no template data length)
  ASCII line   = "%2d <template hash hex> <template name> <fields...>"
  a violation is recorded with an all-zero template hash (PCR 10 is extended with all ones)

Run from anywhere: python3 tests/data/ima/make-ima-lists.py (deterministic output).
"""
import hashlib, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
# (path, content, signed) -- contents stand in for files; boot_aggregate's "content" is 8 PCRs
FILES = [
    ("/usr/bin/bash", b"#!bash\n" * 100, True),
    ("/usr/lib/x86_64-linux-gnu/libc.so.6", bytes(range(256)) * 40, True),
    ("/etc/ld.so.cache", b"ld.so-1.7.0\x00cache", False),
    ("/usr/bin/ls", b"\x7fELF ls", True),
    ("/tmp/file with spaces", b"spaces become underscores", False),
    ("/usr/sbin/sshd", b"\x7fELF sshd" * 33, True),
]


def u32(n):
    return struct.pack("<I", n)


def field(b):
    return u32(len(b)) + b


def sig_for(path):
    # an IMA signature v2 header (type 3, version 2, sha256) + key id + a fake signature: the
    # parser does not verify it, it only has to carry it byte for byte
    body = hashlib.sha512(path.encode()).digest()
    return bytes([3, 2, 4]) + bytes.fromhex("a1b2c3d4") + struct.pack(">H", len(body)) + body


def entries(template):
    out = []
    # boot_aggregate: the digest of PCRs 0-7 (here: of eight fixed values)
    agg = hashlib.sha256(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(8))).digest()
    out.append(("boot_aggregate", "sha256", agg, b""))
    for path, content, signed in FILES:
        out.append((path.replace(" ", "_"), "sha256", hashlib.sha256(content).digest(),
                    sig_for(path) if (signed and template == "ima-sig") else b""))
    return out


def template_data(template, name, alg, digest, sig):
    d = field(alg.encode() + b":\x00" + digest) + field(name.encode() + b"\x00")
    if template == "ima-sig":
        d += field(sig)
    return d


def write(template, violation_at=4):
    ents = entries(template)
    for bank, hfn, suffix in (("sha1", hashlib.sha1, ""), ("sha256", hashlib.sha256, "_sha256")):
        binary = b""
        ascii_lines = []
        for i, (name, alg, digest, sig) in enumerate(ents):
            td = template_data(template, name, alg, digest, sig)
            th = hfn(td).digest()
            if i == violation_at:  # a ToMToU/open-writers violation: zero hash, zero file digest
                td = template_data(template, name, alg, bytes(len(digest)), sig)
                th = bytes(len(th))
                digest = bytes(len(digest))
            binary += u32(10) + th + field(template.encode()) + field(td)
            line = "%2d %s %s %s:%s %s" % (10, th.hex(), template, alg, digest.hex(), name)
            if template == "ima-sig":
                line += " " + sig.hex()
            ascii_lines.append(line + "\n")
        base = os.path.join(HERE, template)
        open(base + "-binary" + suffix, "wb").write(binary)
        open(base + "-ascii" + suffix, "w").write("".join(ascii_lines))


def write_legacy():
    """The pre-3.13 "ima" template, ASCII and binary, SHA-1 list."""
    binary = b""
    lines = []
    for path, content, _ in FILES[:3]:
        name = path.replace(" ", "_")
        d = hashlib.sha1(content).digest()
        th = hashlib.sha1(d + name.encode().ljust(256, b"\x00")).digest()
        binary += u32(10) + th + field(b"ima") + d + field(name.encode())
        lines.append("10 %s ima %s %s\n" % (th.hex(), d.hex(), name))
    open(os.path.join(HERE, "ima-legacy-binary"), "wb").write(binary)
    open(os.path.join(HERE, "ima-legacy-ascii"), "w").write("".join(lines))


write("ima-ng")
write("ima-sig")
write_legacy()
