"""A virtual environment with real PyPI distributions, for benchmarks and real-workload tests.

    python benchmarks/realvenv.py [FOLDER]

creates (or reuses) FOLDER (default: ``$CAPIMPORT_REALVENV`` or
``~/.cache/capimport-realvenv``) with requests, httpx, click, rich and jinja2
plus capimport's own dependencies. capimport itself is used from this
checkout's ``src/`` through PYTHONPATH, so the venv is built once and reused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from typing import Optional

PACKAGES = ["requests", "httpx", "click", "rich", "jinja2", "packaging", "tomlkit"]
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def default_folder() -> str:
    return os.environ.get("CAPIMPORT_REALVENV") or os.path.join(
        os.path.expanduser("~"), ".cache", "capimport-realvenv")


def python_of(folder: str) -> str:
    return os.path.join(folder, "bin", "python")


def ensure(folder: Optional[str] = None, *, quiet: bool = True) -> str:
    """The venv's python, building the venv if needed; raises RuntimeError when pip fails."""
    folder = folder or default_folder()
    python = python_of(folder)
    marker = os.path.join(folder, ".capimport-ready")
    wanted = " ".join(PACKAGES)
    if os.path.exists(marker) and open(marker).read() == wanted:
        return python
    if not os.path.exists(python):
        venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    proc = subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check", *(["-q"] if quiet else []),
                           *PACKAGES], capture_output=quiet, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install failed: {(proc.stderr or '')[-2000:]}")
    with open(marker, "w") as handle:
        handle.write(wanted)
    return python


def ensure_with(packages, modules, folder: Optional[str] = None) -> str:
    """:func:`ensure`, plus *packages* installed unless *modules* already import; RuntimeError otherwise."""
    python = ensure(folder)
    probe = "import " + ", ".join(modules)
    if subprocess.run([python, "-c", probe], capture_output=True).returncode != 0:
        proc = subprocess.run([python, "-m", "pip", "install", "-q", *packages], capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"cannot install {' '.join(packages)}: {proc.stderr[-500:]}")
    return python


def env_for(extra_paths=()) -> dict:
    """The environment for a child run in the venv: capimport from this checkout, no ambient
    capimport settings (the test session's private cache folder excepted)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CAPIMPORT_", "PYTHON")) or k == "CAPIMPORT_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([*extra_paths, SRC])
    return env


if __name__ == "__main__":
    print(ensure(sys.argv[1] if len(sys.argv) > 1 else None, quiet=False))
