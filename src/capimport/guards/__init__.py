"""Hardening: guards for every route to a capability that raises no audit event.

:func:`install` is called once by :func:`capimport.enforcer.enable`, after
the audit hook's policy is built and before the application runs. Each guard
module replaces functions *in place* on the real module objects (``posix``
and every module holding an alias), so that ``sys.modules``, ``importlib``
and ``from x import y`` all reach the guarded version, and each decides
through the enforcer's single decision point with the same attribution,
modes and messages as the audit hook.

See ``docs/threat-model.md`` for the routes, the tests that back each claim,
and what stays open.
"""

from __future__ import annotations

from typing import Optional

_installed: Optional[dict] = None


def install(enforcer) -> dict:
    """Install every guard for *enforcer*; returns what each installed (for tests and benchmarks)."""
    global _installed
    if _installed is not None:
        return _installed
    from ..enforcer import _normalise
    from ._base import Guard
    from . import environ

    guard = Guard(enforcer, _normalise)
    result: dict = {}
    result["environ"] = environ.install(guard)
    _installed = result
    return result
