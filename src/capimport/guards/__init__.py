"""Hardening: guards for every route to a capability that raises no audit event.

:func:`install` is called once by :func:`capimport.enforcer.enable`, after
the policy is built and before the audit hook goes in. Each guard module
replaces functions *in place* on the real module objects (``posix`` and every
module holding an alias), so that ``sys.modules``, ``importlib`` and
``from x import y`` all reach the guarded version, and each decides through
the enforcer's single decision point with the same attribution, modes and
messages as the audit hook. Rules for audit events the run-time table does
not cover (tampering, forged identity) go into ``enforcer.guard_rules``.

See ``docs/threat-model.md`` for the routes, the tests that back each claim,
and what stays open.
"""

from __future__ import annotations

import sys
from typing import Optional

_installed: Optional[dict] = None


def install(enforcer) -> dict:
    """Install every guard for *enforcer*; returns what each installed (for tests and benchmarks)."""
    global _installed
    if _installed is not None:
        return _installed
    import builtins

    from ..enforcer import _normalise, import_callables
    from ..importguard import POST_IMPORT, GuardFinder
    from . import deferred, descriptors, environ, filemeta, native, tamper
    from ._base import Guard

    from ..native import core
    guard = Guard(enforcer, _normalise, core())
    _bless_loaded(guard, enforcer)
    import os

    from ..attribution import BOTTOM
    from . import boundary
    # Deferred callables run from Accountable.__call__: the walk stops there and continues
    # with the registering chain only. (The Python fallback: with the native core the
    # accountable callables are C objects, and this file is capimport's like any other; as a
    # bottom, anyone could run a builtin through it as the application.)
    if guard.core is None:
        enforcer.origins.cache[os.path.abspath(boundary.__file__)] = BOTTOM
    result: dict = {}
    result["environ"] = environ.install(guard)
    import os as _os
    native.ENVIRON_VIEW.append(getattr(_os, "environb", _os.environ))
    guarded_modules: set = set()

    def guard_native(module):
        native.guard_module(guard, module)
        guarded_modules.add(module.__name__)
        if _installed is not None:
            native.sweep()   # a module guarded when first imported, after start-up
            if guard.core is not None and guard.core.installed():
                guard.core.note_guarded(module.__name__)   # loading it again needs ffi

    for name in native.MODULES:
        module = sys.modules.get(name)
        if module is None:
            # built in, imported now: faulthandler's gates hand the core converters, which it
            # accepts only while installing; gc's callbacks list is split before anyone reads it
            __import__(name) if name in ("_posixsubprocess", "posix", "faulthandler", "gc") else None
            module = sys.modules.get(name)
        if module is not None:
            guard_native(module)
        else:
            POST_IMPORT.setdefault(name, guard_native)
    native.guard_imp(guard, frozenset(native.MODULES))
    native.gate_ctypes_calls(guard, sys.modules.get("_ctypes"))   # made before install: now
    result["sys"] = native.guard_module(guard, sys)   # the perf trampoline (3.12+)
    result["native"] = sorted(guarded_modules)
    result["filemeta"] = filemeta.install(guard)   # posix's stat family: guarded with native's posix
    result["descriptors"] = descriptors.install(guard)   # os.read/os.write and kin: the same
    result["deferred"] = deferred.install(guard)
    result["aliases"] = native.sweep()   # one pass for every alias the guards above replaced
    tamper.patch_threading_trace(guard)
    from ..importguard import SPEC_CHECKS
    from .importhooks import charge_planted_loader
    SPEC_CHECKS.append(lambda spec: charge_planted_loader(spec, enforcer))
    finder = next((f for f in sys.meta_path if isinstance(f, GuardFinder)), None)
    vaults = tuple(result["environ"].get("vaults", ())) + tuple(guard.vault)
    real_import = builtins.__dict__["__import__"]
    enforcer.import_callables = import_callables()   # _imp's makers are the gates now
    if guard.core is not None:   # the core holds the rules (_core_tamper.h); Python keeps side effects
        enforcer.tamper_spec = tamper.core_spec(guard, vaults, guarded_modules, finder, real_import)
        rules = tamper.native_rules()
    else:
        rules = tamper.build(guard, vaults, guarded_modules, finder, real_import)
    enforcer.guard_rules.update(rules)
    _installed = result
    return result


def _bless_loaded(guard, enforcer) -> None:
    """Register the globals of every module already loaded that is stdlib, application or capimport."""
    from ..attribution import APP, BOTTOM, CAPIMPORT, IMPORT, LINECACHE, LOGGING, STDLIB

    clean = (STDLIB, CAPIMPORT, APP, IMPORT, LINECACHE, LOGGING, BOTTOM)
    origin_of = enforcer.origins.origin
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        spec = namespace.get("__spec__")
        origin = getattr(spec, "origin", None) or namespace.get("__file__")
        if origin in (None, "built-in", "frozen") or not isinstance(origin, str):
            loader = namespace.get("__loader__")
            name = getattr(loader, "__name__", "") or type(loader).__name__
            if name in ("BuiltinImporter", "FrozenImporter"):
                guard.bless(namespace)
            continue
        if origin_of(origin) in clean:
            guard.bless(namespace)
