#!/usr/bin/env python3
"""Assembles and checks the OCI image of pypowerwall-server without a Docker engine.

  oci.py build OUT VERSION PLATFORM=BINARY...   write an OCI image layout (one layer per platform)
  oci.py check OUT VERSION DOCKERFILE            verify it blob by blob, and against the Dockerfile

The image is what the Dockerfile's final stage (FROM scratch) produces: the static binary, CA
certificates, /etc/passwd and /etc/group with user 10001, an /auth directory owned by it, and
the same user, port, volume, environment, entrypoint and health check. PLATFORM is
linux/amd64, linux/arm64 or linux/arm/v7.

Layout tags (org.opencontainers.image.ref.name): VERSION names a multi-platform image index;
VERSION-amd64, VERSION-arm64, VERSION-armv7 name each platform's manifest.
Only the standard library is used.
"""

import gzip
import hashlib
import io
import json
import os
import re
import shlex
import struct
import sys
import tarfile
import time

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF = "org.opencontainers.image.ref.name"

BIN = "usr/local/bin/pypowerwall-server"
CA = "etc/ssl/certs/ca-certificates.crt"
UID = 10001
USER = f"{UID}:{UID}"
PORT = "8675/tcp"
ENTRYPOINT = ["/" + BIN]
HEALTHCHECK = {
    "Test": ["CMD", "/" + BIN, "healthcheck"],
    "Interval": 30 * 10**9,
    "Timeout": 10 * 10**9,
    "StartPeriod": 30 * 10**9,
    "Retries": 3,
}
# BuildKit gives a FROM scratch image this PATH; the rest is the Dockerfile's ENV.
ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PW_AUTH_PATH=/auth",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
]
LABELS = {
    "org.opencontainers.image.title": "pypowerwall-server",
    "org.opencontainers.image.description": "Tesla Powerwall gateway server, drop-in for the pypowerwall proxy",
    "org.opencontainers.image.licenses": "MIT",
}
PASSWD = "root:x:0:0:root:/root:/sbin/nologin\npypowerwall:x:10001:10001:pypowerwall-server:/auth:/sbin/nologin\n"
GROUP = "root:x:0:\npypowerwall:x:10001:\n"

# ELF e_machine and class for each platform, to catch a binary in the wrong image.
ELF = {"linux/amd64": (62, 2), "linux/arm64": (183, 2), "linux/arm/v7": (40, 1)}
TAG_SUFFIX = {"linux/amd64": "amd64", "linux/arm64": "arm64", "linux/arm/v7": "armv7"}


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def platform_dict(platform):
    parts = platform.split("/")
    d = {"architecture": parts[1], "os": parts[0]}
    if len(parts) > 2:
        d["variant"] = parts[2]
    return d


def epoch():
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or int(time.time())


class Layout:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)

    def put(self, data, media_type, **extra):
        digest = sha256(data)
        path = os.path.join(self.root, "blobs", "sha256", digest.split(":")[1])
        with open(path, "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def get(self, desc):
        path = os.path.join(self.root, "blobs", "sha256", desc["digest"].split(":")[1])
        with open(path, "rb") as f:
            data = f.read()
        if len(data) != desc["size"]:
            raise SystemExit(f"blob {desc['digest']}: {len(data)} bytes, descriptor says {desc['size']}")
        if sha256(data) != desc["digest"]:
            raise SystemExit(f"blob {desc['digest']}: content does not match its digest")
        return data


def layer(binary, mtime):
    """The root file system as an uncompressed tar (deterministic: sorted, fixed times/owners)."""
    with open(binary, "rb") as f:
        exe = f.read()
    with open("/" + CA, "rb") as f:
        ca = f.read()
    entries = [
        ("auth", None, 0o700, UID),
        ("etc", None, 0o755, 0),
        ("etc/group", GROUP.encode(), 0o644, 0),
        ("etc/passwd", PASSWD.encode(), 0o644, 0),
        ("etc/ssl", None, 0o755, 0),
        ("etc/ssl/certs", None, 0o755, 0),
        (CA, ca, 0o644, 0),
        ("usr", None, 0o755, 0),
        ("usr/local", None, 0o755, 0),
        ("usr/local/bin", None, 0o755, 0),
        (BIN, exe, 0o755, 0),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode, owner in entries:
            info = tarfile.TarInfo(name + ("/" if data is None else ""))
            info.mode, info.uid, info.gid, info.mtime = mode, owner, owner, mtime
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build(out, version, pairs):
    mtime = epoch()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))
    lay = Layout(out)
    index_entries, arch_entries = [], []
    for pair in pairs:
        platform, binary = pair.split("=", 1)
        if platform not in ELF:
            raise SystemExit(f"unknown platform {platform} (known: {', '.join(ELF)})")
        tar = layer(binary, mtime)
        gz = io.BytesIO()
        with gzip.GzipFile(fileobj=gz, mode="wb", compresslevel=9, mtime=0) as g:
            g.write(tar)
        layer_desc = lay.put(gz.getvalue(), MT_LAYER)
        config = {
            "created": created,
            **platform_dict(platform),
            "config": {
                "User": USER,
                "ExposedPorts": {PORT: {}},
                "Env": ENV,
                "Entrypoint": ENTRYPOINT,
                "Volumes": {"/auth": {}},
                "Labels": {**LABELS, "org.opencontainers.image.version": version},
                "Healthcheck": HEALTHCHECK,
            },
            "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
            "history": [{"created": created, "created_by": "scripts/oci-image.sh (same as Dockerfile)"}],
        }
        config_desc = lay.put(canonical(config), MT_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": config_desc,
            "layers": [layer_desc],
            "annotations": {"org.opencontainers.image.version": version, "org.opencontainers.image.created": created},
        }
        m = lay.put(canonical(manifest), MT_MANIFEST, platform=platform_dict(platform))
        index_entries.append(m)
        arch_entries.append({**m, "annotations": {REF: f"{version}-{TAG_SUFFIX[platform]}"}})
    nested = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": index_entries}
    top = lay.put(canonical(nested), MT_INDEX, annotations={REF: version})
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [top] + arch_entries}))
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


# ---------------------------------------------------------------------------------------------


def dockerfile_final_stage(path):
    """USER, EXPOSE, ENV, VOLUME, ENTRYPOINT and HEALTHCHECK of the last stage of a Dockerfile."""
    text = open(path).read()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    last = max(i for i, l in enumerate(lines) if l.upper().startswith("FROM "))
    stage = {"ENV": {}, "EXPOSE": [], "VOLUME": [], "FROM": lines[last].split()[1]}
    for l in lines[last + 1 :]:
        op, _, rest = l.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "ENV":
            for kv in shlex.split(rest):
                k, _, v = kv.partition("=")
                stage["ENV"][k] = v
        elif op == "EXPOSE":
            stage["EXPOSE"] += [p if "/" in p else p + "/tcp" for p in rest.split()]
        elif op == "VOLUME":
            stage["VOLUME"] += json.loads(rest) if rest.startswith("[") else rest.split()
        elif op in ("USER", "ENTRYPOINT"):
            stage[op] = json.loads(rest) if rest.startswith("[") else rest
        elif op == "HEALTHCHECK":
            opts = dict(re.findall(r"--([a-z-]+)=(\S+)", rest))
            cmd = json.loads(rest[rest.index("CMD") + 3 :].strip())
            stage["HEALTHCHECK"] = (opts, cmd)
    return stage


def duration_ns(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    return int(m.group(1)) * {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}[m.group(2)]


def elf_ident(data):
    if data[:4] != b"\x7fELF":
        return None
    ei_class = data[4]
    machine = struct.unpack_from("<H", data, 18)[0]
    # Program headers: refuse a PT_INTERP (a dynamic loader) in a FROM scratch image.
    if ei_class == 2:
        phoff, = struct.unpack_from("<Q", data, 32)
        phentsize, phnum = struct.unpack_from("<HH", data, 54)
    else:
        phoff, = struct.unpack_from("<I", data, 28)
        phentsize, phnum = struct.unpack_from("<HH", data, 42)
    interp = any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3 for i in range(phnum))
    return machine, ei_class, interp


def check(out, version, dockerfile):
    problems = []

    def expect(cond, what):
        if not cond:
            problems.append(what)
        return cond

    lay = Layout(out)
    expect(json.load(open(os.path.join(out, "oci-layout"))) == {"imageLayoutVersion": "1.0.0"}, "oci-layout")
    index = json.load(open(os.path.join(out, "index.json")))
    expect(index.get("schemaVersion") == 2, "index.json: schemaVersion 2")
    refs = {d.get("annotations", {}).get(REF): d for d in index["manifests"]}
    expect(version in refs and refs[version]["mediaType"] == MT_INDEX, f"index.json: tag {version} names an image index")
    nested = json.loads(lay.get(refs[version]))
    stage = dockerfile_final_stage(dockerfile)
    expect(stage["FROM"] == "scratch", "Dockerfile: final stage is FROM scratch")
    rows = []
    for m in nested["manifests"]:
        plat = m["platform"]
        name = "/".join([plat["os"], plat["architecture"]] + ([plat["variant"]] if "variant" in plat else []))
        tag = f"{version}-{TAG_SUFFIX.get(name, '?')}"
        expect(tag in refs and refs[tag]["digest"] == m["digest"], f"{name}: tag {tag} names the same manifest")
        manifest = json.loads(lay.get(m))
        expect(manifest["mediaType"] == MT_MANIFEST and manifest["config"]["mediaType"] == MT_CONFIG, f"{name}: media types")
        config = json.loads(lay.get(manifest["config"]))
        expect(len(manifest["layers"]) == 1 and manifest["layers"][0]["mediaType"] == MT_LAYER, f"{name}: one gzip layer")
        gz = lay.get(manifest["layers"][0])
        tar = gzip.decompress(gz)
        expect(config["rootfs"]["diff_ids"] == [sha256(tar)], f"{name}: diff_id is the uncompressed layer's digest")
        expect((config["os"], config["architecture"], config.get("variant")) == (plat["os"], plat["architecture"], plat.get("variant")), f"{name}: config platform")
        c = config["config"]
        # The Dockerfile and the assembled image must agree.
        expect(c["User"] == stage["USER"], f"{name}: User {c['User']} vs Dockerfile USER {stage['USER']}")
        expect(sorted(c["ExposedPorts"]) == sorted(stage["EXPOSE"]), f"{name}: ExposedPorts vs EXPOSE")
        expect(c["Entrypoint"] == stage["ENTRYPOINT"], f"{name}: Entrypoint vs ENTRYPOINT")
        expect(sorted(c["Volumes"]) == sorted(stage["VOLUME"]), f"{name}: Volumes vs VOLUME")
        env = dict(e.split("=", 1) for e in c["Env"])
        expect(all(env.get(k) == v for k, v in stage["ENV"].items()), f"{name}: Env vs ENV")
        opts, cmd = stage["HEALTHCHECK"]
        hc = c["Healthcheck"]
        expect(hc["Test"] == ["CMD"] + cmd, f"{name}: Healthcheck test vs HEALTHCHECK CMD")
        expect(hc["Interval"] == duration_ns(opts["interval"]) and hc["Timeout"] == duration_ns(opts["timeout"])
               and hc["StartPeriod"] == duration_ns(opts["start-period"]) and hc["Retries"] == int(opts["retries"]),
               f"{name}: Healthcheck options vs HEALTHCHECK")
        expect(c["User"].split(":")[0] != "0", f"{name}: runs as a non-root user")
        # The file system.
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            members = {mem.name.rstrip("/"): mem for mem in t.getmembers()}
            exe = members.get(BIN)
            bin_size = 0
            if expect(exe is not None and exe.isfile(), f"{name}: /{BIN} present"):
                expect(exe.mode == 0o755 and exe.uid == 0, f"{name}: binary is root-owned 0755")
                data = t.extractfile(exe).read()
                bin_size = len(data)
                ident = elf_ident(data)
                want = ELF.get(name)
                expect(ident is not None and (ident[0], ident[1]) == want, f"{name}: binary is ELF for this platform (got {ident})")
                expect(ident is not None and not ident[2], f"{name}: binary is static (no PT_INTERP)")
                expect(hc["Test"][1] == "/" + BIN and c["Entrypoint"][0] == "/" + BIN, f"{name}: entrypoint/healthcheck run the binary")
            ca = members.get(CA)
            if expect(ca is not None, f"{name}: /{CA} present"):
                pem = t.extractfile(ca).read()
                expect(pem.count(b"BEGIN CERTIFICATE") > 50, f"{name}: CA bundle holds certificates")
            passwd = t.extractfile(members["etc/passwd"]).read().decode()
            uid = c["User"].split(":")[0]
            expect(any(l.split(":")[2] == uid for l in passwd.splitlines()), f"{name}: /etc/passwd has uid {uid}")
            auth = members.get("auth")
            expect(auth is not None and auth.isdir() and str(auth.uid) == uid and auth.mode == 0o700, f"{name}: /auth owned by {uid}, 0700")
            owned = [n for n, mem in members.items() if mem.uid != 0 and n != "auth"]
            expect(not owned, f"{name}: only /auth is non-root-owned (also: {owned})")
            expect(not [n for n, mem in members.items() if mem.issym() or mem.islnk() or mem.mode & 0o6000], f"{name}: no links, no setuid/setgid")
        total = len(gz) + manifest["config"]["size"] + m["size"]
        rows.append((name, tag, bin_size, len(tar), len(gz), total))
    expect(len(rows) >= 1, "at least one platform")
    print(f"{'PLATFORM':14} {'TAG':16} {'BINARY':>10} {'LAYER':>10} {'LAYER.GZ':>10} {'IMAGE':>10}")
    for r in rows:
        print(f"{r[0]:14} {r[1]:16} {r[2]:>10} {r[3]:>10} {r[4]:>10} {r[5]:>10}")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "build":
        build(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        sys.exit(__doc__)
