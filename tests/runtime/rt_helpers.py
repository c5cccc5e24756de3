"""Helpers for run-time tests: real distributions, real subprocesses, real side effects."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Iterable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from distbuilder import make_dist, write_config  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")


#: The two implementations of the decision: the native core, and the pure-Python fallback that
#: runs where no compiler built it. Rule tests run against both, so they cannot drift apart.
DECISIONS = ("native", "python")


class Project:
    """A tmp folder with a site-packages of real distributions and an application project."""

    def __init__(self, root: Path, decision: str = "native"):
        self.root = Path(root)
        self.decision = decision
        self.site = self.root / "site"
        self.proj = self.root / "proj"
        self.site.mkdir(parents=True, exist_ok=True)
        self.proj.mkdir(parents=True, exist_ok=True)

    def dist(self, name: str, version: str = "1.0", *, requires: Iterable[str] = (),
             files: Optional[dict] = None, code: Optional[str] = None, **kwargs) -> Path:
        package = name.replace("-", "_")
        if files is None:
            files = {f"{package}/__init__.py": code or ""}
        return make_dist(self.site, name, version, requires=list(requires), files=files, **kwargs)

    def config(self, body: str, dependencies: Optional[list] = None) -> Path:
        text = textwrap.dedent(body).lstrip()
        if dependencies is not None:
            text = "[project]\nname = \"app\"\nversion = \"0\"\ndependencies = " + json.dumps(dependencies) \
                   + "\n\n" + text
        return write_config(self.proj, text)

    def script(self, name: str, text: str) -> Path:
        path = self.proj / name
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = ""
        if text.startswith(ATTEMPT):
            prefix, text = ATTEMPT, text[len(ATTEMPT):]
        path.write_text(prefix + textwrap.dedent(text).lstrip())
        return path

    def env(self, extra: Optional[dict] = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPIMPORT_", "PYTHON"))}
        env["PYTHONPATH"] = os.pathsep.join([str(self.site), SRC])
        if self.decision == "python":
            env["CAPIMPORT_PURE_PYTHON"] = "1"
        env.update(extra or {})
        return env

    def run(self, *args: str, env: Optional[dict] = None, input: Optional[str] = None,
            timeout: float = 60, python_args: Iterable[str] = ()) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *python_args, "-m", "capimport", *args], cwd=self.proj,
                              env=self.env(env), capture_output=True, text=True, input=input,
                              timeout=timeout)

    def run_plain(self, *args: str, env: Optional[dict] = None, input: Optional[str] = None,
                  timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=self.proj, env=self.env(env),
                              capture_output=True, text=True, input=input, timeout=timeout)


class Listener:
    """A local TCP server that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.data = b""
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.settimeout(1)
            try:
                chunk = conn.recv(65536)
                self.data += chunk
                if chunk.startswith(b"GET") or chunk.startswith(b"POST"):
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except OSError:
                pass
            conn.close()

    def close(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def results(stdout: str) -> dict:
    """``{case: outcome}`` from lines the test scripts print as ``RESULT <json>``."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            item = json.loads(line[7:])
            out[item["case"]] = item
    return out


#: Prepended to test scripts: ``attempt(case, fn)`` runs *fn* and prints its outcome.
ATTEMPT = '''
import json as _json, sys as _sys
def _capability_error(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ in ("CapabilityError", "CapabilityImportError"):
            return exc
        exc = getattr(exc, "reason", None) if isinstance(getattr(exc, "reason", None), BaseException) \\
            else (exc.__cause__ or exc.__context__)
    return None
def attempt(case, fn, *args, **kwargs):
    try:
        value = fn(*args, **kwargs)
        out = {"case": case, "ok": True, "value": repr(value)[:200]}
    except Exception as exc:
        cap = _capability_error(exc)
        out = {"case": case, "ok": False, "denied": cap is not None,
               "error": str(cap) if cap is not None else repr(exc)[:300], "type": type(exc).__name__}
    print("RESULT " + _json.dumps(out), flush=True)
    return out
'''
