"""Reads a gateway (our simulator) with the reference pypowerwall library and prints JSON.

Usage: python read_gateway.py HOST:PORT GW_PWD            (TEDAPI mode)
       python read_gateway.py HOST:PORT - PASSWORD CACHEFILE (local mode, customer password)
Run by tests/interop.rs with the virtualenv made by scripts/test-deps.sh.
"""
import json
import logging
import sys

logging.disable(logging.CRITICAL)

import pypowerwall  # noqa: E402

host, gw_pwd = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3:
    pw = pypowerwall.Powerwall(host=host, password=sys.argv[3], gw_pwd=None, timeout=5,
                               pwcacheexpire=0, cachefile=sys.argv[4])
else:
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
    "mode": pw.mode,
    "tedapi_mode": pw.tedapi_mode,
    "alerts": sorted(pw.alerts()),
    "site_name": pw.site_name(),
    "grid_status": pw.grid_status(),
}
print(json.dumps(out))
