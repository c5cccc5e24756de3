"""Shared fixtures: tests build real distributions with ``distbuilder``."""

from __future__ import annotations

import pytest

from distbuilder import make_dist, write_config


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Every test (and every subprocess it starts) uses a throwaway cache folder,
    never the user's ~/.cache/capimport, and no ambient CAPIMPORT_CONFIG."""
    patch = pytest.MonkeyPatch()
    patch.setenv("CAPIMPORT_CACHE_DIR", str(tmp_path_factory.mktemp("capimport-cache")))
    patch.delenv("CAPIMPORT_CONFIG", raising=False)
    yield
    patch.undo()


@pytest.fixture
def site(tmp_path):
    """An empty site-packages folder for real dist-info trees."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    return folder


__all__ = ["make_dist", "write_config"]
