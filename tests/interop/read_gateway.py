"""Reads a gateway (our simulator) with the reference pypowerwall library and prints JSON.

Usage: python read_gateway.py HOST:PORT GW_PWD
Run by tests/interop.rs with the virtualenv made by scripts/test-deps.sh.
"""
import json
import logging
import sys

logging.disable(logging.CRITICAL)

import pypowerwall  # noqa: E402

host, gw_pwd = sys.argv[1], sys.argv[2]
pw = pypowerwall.Powerwall(host=host, password="", gw_pwd=gw_pwd, timeout=5, pwcacheexpire=0)
vitals = pw.vitals() or {}
out = {
    "din": pw.din(),
    "level": pw.level(),
    "aggregates": pw.poll("/api/meters/aggregates"),
    "vitals_keys": sorted(vitals.keys()),
    "strings": pw.strings(),
    "temps": pw.temps(),
    "pw3": bool(pw.tedapi and pw.tedapi.pw3),
    "version": pw.version(),
}
print(json.dumps(out))
