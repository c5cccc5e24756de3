"""A real virtual environment with popular distributions, built once and reused.

The folder is keyed on the package list and the interpreter version, under
``$CAPIMPORT_TEST_CACHE`` (default ``~/.cache/capimport-tests``), so a second
test run (and the benchmark) reuses it. ``python tests/scan/realenv.py`` builds
it by hand.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

#: Exact pins, so that the expected capabilities below stay true.
PACKAGES = (
    "requests==2.32.3", "urllib3==2.2.3", "httpx==0.27.2", "click==8.1.7", "rich==13.9.4",
    "jinja2==3.1.4", "pyyaml==6.0.2", "attrs==24.2.0", "pygments==2.18.0", "idna==3.10",
    "markupsafe==3.0.2", "certifi==2024.8.30", "charset-normalizer==3.4.0",
)


def cache_root() -> Path:
    return Path(os.environ.get("CAPIMPORT_TEST_CACHE") or Path.home() / ".cache" / "capimport-tests")


def venv_dir(packages=PACKAGES) -> Path:
    key = hashlib.sha256(("\n".join(packages) + sys.version).encode()).hexdigest()[:12]
    return cache_root() / f"venv-{key}"


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def ensure_venv(packages=PACKAGES) -> tuple[Optional[Path], str]:
    """(venv folder, "") when ready, or (None, reason) when it cannot be built."""
    venv = venv_dir(packages)
    marker = venv / ".capimport-ready"
    if marker.exists():
        return venv, ""
    venv.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                       capture_output=True, timeout=300)
        # Few retries and a short timeout: without an index the tests skip in seconds, not minutes.
        pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", "--retries", "1", "--timeout", "30", *packages],
                             capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"cannot build a venv: {error}"
    if pip.returncode != 0:
        return None, "pip could not install the test distributions: " + (pip.stderr.strip().splitlines() or ["?"])[-1]
    marker.write_text("\n".join(packages) + "\n")
    return venv, ""


if __name__ == "__main__":
    venv, reason = ensure_venv()
    print(venv or reason)
