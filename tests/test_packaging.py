"""The wheel carries every module and the bundled manifest library.

CI installs the checkout in editable mode, which cannot notice a subpackage
missing from the wheel; users install the wheel. So build it and look.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The wheel's path and the build's own output (pip -v shows the backend's warnings)."""
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps",
                             "-w", str(out), str(ROOT)], capture_output=True, text=True)
    if result.returncode != 0 and ("NewConnectionError" in result.stderr or "No matching distribution" in result.stderr):
        pytest.skip(f"no package index to fetch the build backend from: {result.stderr.strip()[-200:]}")
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("capimport-*.whl")
    return wheel, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel_names(built):
    return set(zipfile.ZipFile(built[0]).namelist())


def test_the_build_warns_of_nothing_deprecated(built):
    # setuptools' deprecations come with a date after which the build fails
    warnings = [line for line in built[1].splitlines() if "SetuptoolsDeprecationWarning" in line]
    assert not warnings, warnings


def test_the_license_is_declared_and_shipped(built, wheel_names):
    metadata = zipfile.ZipFile(built[0]).read(next(n for n in wheel_names if n.endswith(".dist-info/METADATA")))
    assert b"\nLicense-Expression: MIT\n" in metadata
    assert any(n.endswith("/LICENSE") for n in wheel_names)


def test_every_module_is_in_the_wheel(wheel_names):
    source = ROOT / "src"
    modules = {str(p.relative_to(source)) for p in source.rglob("*.py")
               if "__pycache__" not in p.parts and "_manifests" not in p.parts}
    assert modules, "no sources found"
    assert modules <= wheel_names, sorted(modules - wheel_names)


def test_bundled_manifests_are_in_the_wheel(wheel_names):
    manifests = {f"capimport/_manifests/{p.name}" for p in (ROOT / "manifests").glob("*.toml")}
    assert len(manifests) >= 15
    assert manifests <= wheel_names, sorted(manifests - wheel_names)


def test_console_script_declared(wheel_names):
    entry_points = next(n for n in wheel_names if n.endswith("entry_points.txt"))
    assert entry_points
