"""The README's first command: the demo shows the leak without capimport and its denial with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "run_demo.py"


def test_demo_leaks_without_capimport_and_is_stopped_with_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(DEMO)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    plain, _, guarded = output.partition("$ python -m capimport app.py")
    assert "collector received: /c?k=wJalrXUtnFEMI-demo-secret   <- the secret leaked" in plain
    assert "collector received: nothing" in guarded and "secret leaked" not in guarded
    assert ("capimport: 'colourama' 0.4.6 lacks 'env-readonly' for os.environ['AWS_SECRET_ACCESS_KEY'] "
            "at colourama/__init__.py:20 (called from app.py:3)") in guarded
    # 3.10+ names the HTTP connection; 3.9 has no http.client.connect event, so the lookup is refused first.
    assert re.search(r"capimport: 'colourama' 0\.4\.6 lacks 'net' for "
                     r"(http\.client\.connect|socket\.getaddrinfo)\('127\.0\.0\.1', 8000\) "
                     r"at colourama/__init__\.py:23 \(called from app\.py:3\)", guarded), guarded
    assert guarded.count("capimport: 'colourama'") == 2, guarded   # each denial reported once
