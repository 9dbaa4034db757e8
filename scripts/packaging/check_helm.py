#!/usr/bin/env python3
"""Lints, renders and validates the Helm chart: check_helm.py CHART BINARY

- `helm lint --strict` (Helm's own Go SDK, through helm-python-sdk) with the default values and
  each ci/*-values.yaml; rendering without a gateway stops with the chart's own message;
- values.schema.json refuses a misspelt gateway key and a bad id;
- every rendered manifest validates against the Kubernetes OpenAPI schema (strict: unknown
  fields refused) of the oldest and newest Kubernetes versions checked here;
- the Deployment's probes, security context, config mount and ports are what the server needs;
- the gateways.yaml that the chart puts in its Secret is read by the real server binary, which
  must poll a simulator with it (a chart config the server refuses fails here).
Prints a short report; exits 1 on any problem.
"""

import base64
import glob
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import helm_python as helm
import kubernetes_validate
import yaml

K8S_VERSIONS = ["1.30.0", "1.37.0"]
problems = []


def expect(cond, what):
    if not cond:
        problems.append(what)
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def render(chart_dir, values):
    with helm.Chart.load(chart_dir) as chart:
        out = chart.render(values, name="pw", namespace="energy", is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith(".txt"):
            continue
        docs += [(path, d) for d in yaml.safe_load_all(text) if d]
    return docs


def lint(chart_dir, values):
    report = helm.lint(chart_dir, values, strict=True, kube_version="v1.30.0")
    bad = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    return bad + [{"error": e} for e in report.get("errors", [])]


def main(chart_dir, binary):
    ci = sorted(glob.glob(os.path.join(chart_dir, "ci", "*-values.yaml")))
    expect(ci, "ci/*-values.yaml present")
    rendered = {}
    for f in ci:
        values = yaml.safe_load(open(f))
        bad = lint(chart_dir, values)
        expect(not bad, f"helm lint --strict with {os.path.basename(f)}: {bad}")
        docs = render(chart_dir, values)
        rendered[os.path.basename(f)] = docs
        for path, doc in docs:
            for v in K8S_VERSIONS:
                try:
                    kubernetes_validate.validate(doc, v, strict=True)
                except Exception as e:  # ValidationError, InvalidSchemaError, ...
                    expect(False, f"{os.path.basename(f)}: {path} {doc.get('kind')}: Kubernetes {v}: {str(e).splitlines()[0]}")

    # Default values: lint passes (Helm's lint mode lets `fail` through), but an install without
    # a gateway stops with the chart's own message.
    bad = lint(chart_dir, None)
    expect(not bad, f"helm lint --strict with default values: {bad}")
    try:
        render(chart_dir, None)
        expect(False, "rendering with default values (no gateway) should fail")
    except helm.HelmError as e:
        expect("set at least one gateway" in str(e), f"rendering without a gateway: {e}")
    # The schema refuses keys the server would refuse.
    with helm.Chart.load(chart_dir) as chart:
        for wrong in ({"gateways": [{"id": "house", "host": "h", "gw_password": "x"}]},
                      {"gateways": [{"id": "bad id!", "host": "h", "gw_pwd": "x"}]},
                      {"server": {"polling": 5}, "gateways": [{"id": "a", "host": "h", "gw_pwd": "x"}]}):
            try:
                chart.validate_schema(wrong)
                expect(False, f"values.schema.json accepted {wrong}")
            except helm.HelmError:
                pass

    # What the Deployment must hold.
    docs = rendered.get("multi-gateway-persistence-values.yaml", [])
    kinds = sorted(d["kind"] for _, d in docs)
    expect(kinds == ["Deployment", "PersistentVolumeClaim", "Secret", "Service"], f"multi-gateway kinds: {kinds}")
    dep = next((d for _, d in docs if d["kind"] == "Deployment"), None)
    if dep:
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in c["env"]}
        expect(c["readinessProbe"]["httpGet"]["path"] == "/health", "readiness probe on /health")
        expect(c["livenessProbe"]["httpGet"]["port"] == "http" and c["readinessProbe"]["httpGet"]["port"] == "http", "probes on the http port")
        expect(env.get("PW_CONFIG") == "/etc/pypowerwall/gateways.yaml", "PW_CONFIG points at the mounted Secret")
        expect(env.get("PW_AUTH_PATH") == "/auth" and any(m["mountPath"] == "/auth" for m in c["volumeMounts"]), "auth volume at PW_AUTH_PATH")
        expect(pod["securityContext"].get("runAsNonRoot") is True and c["securityContext"].get("readOnlyRootFilesystem") is True, "non-root, read-only root")
        expect(c["ports"][0]["containerPort"] == int(env["PW_PORT"]), "container port = PW_PORT")
        vol = next(v for v in pod["volumes"] if v["name"] == "auth")
        expect(vol.get("persistentVolumeClaim", {}).get("claimName") == "pw-pypowerwall-server-auth", "auth PVC claimed")
        expect("checksum/config" in dep["spec"]["template"]["metadata"]["annotations"], "config checksum annotation")
    ext = rendered.get("existing-secret-values.yaml", [])
    expect(sorted(d["kind"] for _, d in ext) == ["Deployment", "Service"], "existingSecret: no Secret, no PVC rendered")

    # The chart's gateways.yaml, read by the real server against the simulator.
    sp, hp = free_port(), free_port()
    values = {"server": {"port": hp, "host": "127.0.0.1", "poll_interval": 1},
              "gateways": [{"id": "house", "name": "Main house", "host": f"127.0.0.1:{sp}", "gw_pwd": "HelmTest#1: 'x'"}]}
    secret = next(d for _, d in render(chart_dir, values) if d["kind"] == "Secret")
    conf = base64.b64decode(secret["data"]["gateways.yaml"])
    procs = []
    try:
        with tempfile.NamedTemporaryFile("wb", suffix=".yaml", delete=False) as f:
            f.write(conf)
        procs.append(subprocess.Popen([binary, "sim", "--listen", f"127.0.0.1:{sp}", "--fixture", "pw2", "--gw-pwd", "HelmTest#1: 'x'"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        server = subprocess.Popen([binary, "--config", f.name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  env={"PATH": os.environ.get("PATH", "")})
        procs.append(server)
        ok = False
        for _ in range(60):
            if subprocess.run([binary, "healthcheck", f"http://127.0.0.1:{hp}/health"], stderr=subprocess.DEVNULL).returncode == 0:
                ok = True
                break
            if server.poll() is not None:
                break
            time.sleep(0.5)
        if expect(ok, "the server runs and polls with the chart's gateways.yaml"):
            body = urllib.request.urlopen(f"http://127.0.0.1:{hp}/api/gateways").read().decode()
            expect('"house"' in body, "/api/gateways lists the chart's gateway")
        elif server.poll() is not None:
            problems.append("server said: " + server.stderr.read().decode().strip())
    finally:
        for p in procs:
            p.kill()
            p.wait()
        os.unlink(f.name)

    for p in problems:
        print(f"FAIL: helm: {p}", file=sys.stderr)
    if not problems:
        n = sum(len(d) for d in rendered.values())
        print(f"helm: lint --strict ok with defaults and {len(ci)} ci values files; {n} manifests valid for Kubernetes {' and '.join(K8S_VERSIONS)} (strict); "
              "schema refuses bad keys; probes/security/mounts ok; the server polls with the chart's gateways.yaml")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
