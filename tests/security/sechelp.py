"""Helpers for the security suite: real distributions, real child processes.

Every route is tested twice in one child-process pair: ``plain`` runs the
attack with ``python app.py`` (it must succeed, so the test can never pass
vacuously) and ``guarded`` runs it with ``python -m capimport app.py``
(it must have no effect). The attack code lives in a real installed
distribution (``evil``) built with :mod:`distbuilder`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Mapping, Optional

from distbuilder import make_dist, write_config

PYTHON = sys.executable
SRC = str(Path(__file__).resolve().parents[2] / "src")


class Scenario:
    """A project folder with a site-packages folder, a config and an app script."""

    def __init__(self, root: Path, *, config: str = "", app: str = "", dists: Optional[Mapping] = None):
        self.root = Path(root)
        self.site = self.root / "site-packages"
        self.project = self.root / "project"
        self.site.mkdir(parents=True, exist_ok=True)
        self.project.mkdir(parents=True, exist_ok=True)
        for name, spec in (dists or {}).items():
            spec = dict(spec)
            make_dist(self.site, name, spec.pop("version", "1.0"), **spec)
        write_config(self.project, config or '[tool.capimport]\nmode = "enforce"\n')
        (self.project / "app.py").write_text(textwrap.dedent(app))

    def env(self, extra: Optional[Mapping[str, str]] = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPIMPORT", "PYTHON", "COV_"))}
        env["PYTHONPATH"] = os.pathsep.join([str(self.site), SRC])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra or {})
        return env

    def run(self, guarded: bool, *args: str, extra_env: Optional[Mapping[str, str]] = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [PYTHON] + (["-m", "capimport"] if guarded else []) + ["app.py", *args]
        return subprocess.run(cmd, cwd=self.project, env=self.env(extra_env), capture_output=True,
                              text=True, timeout=timeout)

    def plain(self, *args, **kw) -> subprocess.CompletedProcess:
        return self.run(False, *args, **kw)

    def guarded(self, *args, **kw) -> subprocess.CompletedProcess:
        return self.run(True, *args, **kw)


def results(proc: subprocess.CompletedProcess) -> dict:
    """The JSON object the app prints on its last stdout line (attack outcomes by name)."""
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result line\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(lines[-1])


#: Code the attacking distribution's module starts with: ``attempt(name, fn)``
#: runs one attack and records "ok:<value>" or "denied:<exception type>".
ATTEMPT = '''
import json as _json
RESULTS = {}
def attempt(name, fn, *args):
    try:
        value = fn(*args)
        RESULTS[name] = "ok:" + str(value)[:200]
    except BaseException as exc:  # noqa: BLE001 - the attack's outcome, whatever it is
        RESULTS[name] = "denied:" + type(exc).__name__ + ":" + str(exc)[:300]
    return RESULTS[name]
def report():
    print(_json.dumps(RESULTS), flush=True)
'''


def ok(value: str) -> bool:
    return value.startswith("ok:")


def denied(value: str) -> bool:
    return value.startswith("denied:PermissionError") or value.startswith("denied:CapabilityError") \
        or value.startswith("denied:CapabilityImportError")


__all__ = ["ATTEMPT", "Scenario", "denied", "ok", "results", "make_dist", "write_config"]
