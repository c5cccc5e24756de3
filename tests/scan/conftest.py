"""Fixtures for the scanner tests: an isolated scan cache, and a real venv built once."""

from __future__ import annotations

import pytest

from realenv import ensure_venv, site_packages


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPIMPORT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def real_site():
    """site-packages of a venv with requests, rich, click... (built once, reused across runs)."""
    venv, reason = ensure_venv()
    if venv is None:
        pytest.skip(reason)
    return site_packages(venv)
