"""Reads the cloud token files in AUTHPATH the way pypowerwall 0.22.2 does and prints JSON.

Usage: python read_cloud_files.py AUTHPATH EMAIL
Run by tests/setup.rs with the virtualenv made by scripts/test-deps.sh. No network: teslapy
loads its cache file, PyPowerwallCloud reads the site file in its constructor.
"""
import json
import logging
import os
import sys

logging.disable(logging.CRITICAL)

from pypowerwall.cloud.pypowerwall_cloud import PyPowerwallCloud  # noqa: E402
from pypowerwall.cloud.teslapy import Tesla  # noqa: E402

authpath, email = sys.argv[1], sys.argv[2]
tesla = Tesla(email, cache_file=os.path.join(authpath, ".pypowerwall.auth"))
cloud = PyPowerwallCloud(email, authpath=authpath)
print(json.dumps({
    "authorized": bool(tesla.authorized),
    "access_token": tesla.token.get("access_token"),
    "refresh_token": tesla.token.get("refresh_token"),
    "expires_at": tesla.token.get("expires_at"),
    "sso_url": tesla.sso_base_url,
    "siteid": cloud.siteid,
}))
