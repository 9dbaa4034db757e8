#!/usr/bin/env python3
"""Inspects an OpenWrt .ipk as opkg would read it: ipk_check.py FILE.ipk RUST_TARGET

Checks the outer archive (gzip'd tar: debian-binary 2.0, data.tar.gz, control.tar.gz), the
control fields (name/version/architecture match the file name, Installed-Size, Require-User),
conffiles, the maintainer scripts, and the data: a static binary for the right CPU, the procd
init script and the UCI config with OpenWrt's modes. Shell scripts are syntax-checked with
BusyBox ash (OpenWrt's shell). Prints one line per package; exits 1 on any problem.
"""

import gzip
import io
import os
import struct
import subprocess
import sys
import tarfile
import tempfile

ELF = {  # Rust target prefix -> (e_machine, ELF class, byte order)
    "x86_64": (62, 2, "<"),
    "aarch64": (183, 2, "<"),
    "armv7": (40, 1, "<"),
    "mipsel": (8, 1, "<"),
    "mips": (8, 1, ">"),
}


def members(blob):
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as t:
        return {m.name.lstrip("./") or ".": (m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()}


def elf(data):
    if data[:4] != b"\x7fELF":
        return None
    cls, order = data[4], "<" if data[5] == 1 else ">"  # EI_DATA: 1 little-endian, 2 big-endian
    machine = struct.unpack_from(order + "H", data, 18)[0]
    if cls == 2:
        phoff, = struct.unpack_from(order + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 54)
    else:
        phoff, = struct.unpack_from(order + "I", data, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 42)
    interp = any(struct.unpack_from(order + "I", data, phoff + i * phentsize)[0] == 3 for i in range(phnum))
    return machine, cls, order, interp


def main(path, target):
    problems = []

    def expect(cond, what):
        if not cond:
            problems.append(what)
        return cond

    raw = open(path, "rb").read()
    expect(raw[:2] == b"\x1f\x8b", "outer archive is gzip (OpenWrt ipkg-build format)")
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as t:
        names = [m.name for m in t.getmembers()]
        outer = {m.name.lstrip("./"): t.extractfile(m).read() for m in t.getmembers()}
    expect(names == ["./debian-binary", "./data.tar.gz", "./control.tar.gz"], f"outer members in order: {names}")
    expect(outer.get("debian-binary") == b"2.0\n", "debian-binary is 2.0")
    control = members(outer["control.tar.gz"])
    data = members(outer["data.tar.gz"])

    fields, last = {}, None
    for line in control["control"][1].decode().splitlines():
        if line.startswith(" ") and last:
            fields[last] += "\n" + line
        else:
            last, _, v = line.partition(":")
            fields[last] = v.strip()
    for f in ("Package", "Version", "Architecture", "Installed-Size", "Description", "Section", "License", "Maintainer"):
        expect(fields.get(f), f"control: {f}")
    base = os.path.basename(path)
    expect(base == f"{fields.get('Package')}_{fields.get('Version')}_{fields.get('Architecture')}.ipk", f"file name {base} matches control")
    expect(fields.get("Installed-Size") == str(len(gzip.decompress(outer["data.tar.gz"]))), "Installed-Size is the data size")
    expect(fields.get("Require-User", "").startswith("pypowerwall="), "Require-User creates the service user")
    conffiles = control["conffiles"][1].decode().split()
    expect(conffiles == ["/etc/config/pypowerwall-server"], f"conffiles: {conffiles}")
    for script, fn in (("postinst", "default_postinst"), ("prerm", "default_prerm")):
        m, body = control.get(script, (None, None))
        if expect(m is not None, f"control: {script}"):
            expect(m.mode & 0o111 and fn.encode() in body, f"{script}: executable, calls {fn}")

    for cf in conffiles:
        expect(cf.lstrip("/") in data, f"conffile {cf} is in data")
    expect(all(m.uid == 0 and m.gid == 0 for m, _ in data.values()), "data: all files root-owned")
    b = data.get("usr/bin/pypowerwall-server")
    if expect(b is not None, "data: /usr/bin/pypowerwall-server"):
        m, exe = b
        expect(m.mode == 0o755, "binary mode 0755")
        got = elf(exe)
        want = ELF[target.split("-")[0]]
        expect(got is not None and got[:3] == want, f"binary is ELF for {target} (got {got})")
        expect(got is not None and not got[3], "binary is static (no PT_INTERP)")
    init = data.get("etc/init.d/pypowerwall-server")
    if expect(init is not None, "data: /etc/init.d/pypowerwall-server"):
        m, body = init
        expect(m.mode == 0o755, "init script mode 0755")
        expect(body.startswith(b"#!/bin/sh /etc/rc.common") and b"USE_PROCD=1" in body, "init script is a procd rc.common script")
    conf = data.get("etc/config/pypowerwall-server")
    if expect(conf is not None, "data: /etc/config/pypowerwall-server"):
        m, body = conf
        expect(m.mode == 0o600, "UCI config mode 0600 (it holds passwords)")
        expect(b"config server 'server'" in body and b"config gateway" in body, "UCI config has server and gateway sections")

    # BusyBox ash syntax check of every shell script in the package.
    with tempfile.TemporaryDirectory() as d:
        for label, body in (("init", init and init[1]), ("postinst", control.get("postinst", (0, None))[1]), ("prerm", control.get("prerm", (0, None))[1])):
            if body:
                p = os.path.join(d, label)
                open(p, "wb").write(body)
                r = subprocess.run(["busybox", "sh", "-n", p], capture_output=True, text=True)
                expect(r.returncode == 0, f"{label}: busybox sh -n: {r.stderr.strip()}")

    size = len(raw)
    if problems:
        for p in problems:
            print(f"FAIL: {base}: {p}", file=sys.stderr)
        return 1
    print(f"{base}: {size} bytes, {fields['Installed-Size']} installed; control, conffiles, postinst/prerm, static {target.split('-')[0]} binary, procd init, UCI config 0600: ok")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
