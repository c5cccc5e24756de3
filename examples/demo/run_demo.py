"""capimport's demo: a typosquat tries to exfiltrate a secret and is stopped.

    python -m pip install . && python examples/demo/run_demo.py

1. installs the vendored typosquat ``colourama`` into a temporary
   site-packages folder (a dist-info with RECORD, as pip would leave it);
2. starts a local "collector" HTTP server standing in for the attacker;
3. runs ``app.py`` with plain ``python``: the secret reaches the collector;
4. runs it with ``python -m capimport app.py``: the connection is denied,
   and capimport says who tried what, where, and how to grant it.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT_SRC = os.path.join(os.path.dirname(os.path.dirname(HERE)), "src")


def install_typosquat(site: str) -> None:
    """Install vendor/colourama into *site* the way an installer does (files + dist-info + RECORD)."""
    source = os.path.join(HERE, "vendor", "colourama")
    shutil.copytree(os.path.join(source, "colourama"), os.path.join(site, "colourama"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    info = os.path.join(site, "colourama-0.4.6.dist-info")
    os.makedirs(info)
    shutil.copy(os.path.join(source, "METADATA"), os.path.join(info, "METADATA"))
    with open(os.path.join(info, "INSTALLER"), "w") as handle:
        handle.write("run_demo\n")
    with open(os.path.join(info, "top_level.txt"), "w") as handle:
        handle.write("colourama\n")
    rows = []
    for folder, _, files in os.walk(site):
        for name in sorted(files):
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                data = handle.read()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{os.path.relpath(path, site)},sha256={digest},{len(data)}")
    rows.append("colourama-0.4.6.dist-info/RECORD,,")
    with open(os.path.join(info, "RECORD"), "w") as handle:
        handle.write("\n".join(rows) + "\n")


class Collector(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_GET(self):
        Collector.received.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"thanks")

    def log_message(self, *args):
        pass


def run(title: str, command: list, env: dict) -> None:
    Collector.received.clear()
    print(f"\n$ {' '.join(command)}        # {title}", flush=True)
    subprocess.run([sys.executable] + command[1:], cwd=HERE, env=env)
    if Collector.received:
        print(f"   collector received: {Collector.received[0]}   <- the secret leaked", flush=True)
    else:
        print("   collector received: nothing", flush=True)


def main() -> int:
    site = tempfile.mkdtemp(prefix="capimport-demo-site-")
    server = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        install_typosquat(site)
        paths = [site]
        try:
            import capimport  # noqa: F401  (installed: use it)
        except ImportError:
            paths.append(CHECKOUT_SRC)  # running from a checkout without installing
        env = dict(os.environ)
        env.update({"PYTHONPATH": os.pathsep.join(paths), "PYTHONDONTWRITEBYTECODE": "1",
                    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-demo-secret",
                    "DEMO_COLLECTOR_PORT": str(server.server_address[1])})
        env.pop("CAPIMPORT_CONFIG", None)
        run("without capimport", ["python", "app.py"], env)
        run("with capimport", ["python", "-m", "capimport", "app.py"], env)
    finally:
        server.shutdown()
        if not os.environ.get("DEMO_KEEP"):
            shutil.rmtree(site, ignore_errors=True)
        else:
            print("site:", site)
    return 0


if __name__ == "__main__":
    sys.exit(main())
