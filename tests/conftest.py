"""Shared fixtures: tests build real distributions with ``distbuilder``."""

from __future__ import annotations

import pytest

from distbuilder import make_dist, write_config


@pytest.fixture
def site(tmp_path):
    """An empty site-packages folder for real dist-info trees."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    return folder


__all__ = ["make_dist", "write_config"]
