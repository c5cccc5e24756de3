"""Fixtures for the native decision core's tests.

``leaf`` is ``capimport._core._leaf``: a test-only entry that runs one of the
core's leaf functions (path resolution, scope matching, target parsing) on
plain arguments, so each can be compared with its Python reference
implementation. ``CAPIMPORT_LEAF_MODULE`` names another module that offers
the same ``_leaf`` (a development harness).
"""

from __future__ import annotations

import importlib
import os

import pytest


@pytest.fixture(scope="session")
def leaf():
    name = os.environ.get("CAPIMPORT_LEAF_MODULE", "capimport._core")
    try:
        module = importlib.import_module(name)
    except ImportError:
        pytest.skip(f"{name} is not built (no C compiler): the pure-Python decision is used")
    return module._leaf
