"""The import layer: a ``sys.meta_path`` finder that guards third-party modules.

The finder sits first on ``sys.meta_path`` and delegates to every finder
after it (setuptools' editable-install finders are appended at the end, so
delegating only to ``PathFinder`` would miss them). When the module found
belongs to a distribution, its loader is replaced by a subclass of the same
loader class (so ``isinstance`` checks, ``pkg_resources`` and
``importlib.resources`` see what they expect) whose ``exec_module`` gives the
module a guarded ``__builtins__``:

* ``open`` converts a path-like argument to a string once, so that the audit
  event and the open itself see the same path (a ``__fspath__`` that answers
  differently on its second call cannot slip past the check);
* in ``strict`` mode, ``__import__`` refuses modules that exist only to
  exercise a capability the importing distribution lacks (``socket``,
  ``subprocess``, ``ctypes``, ...) with :class:`CapabilityImportError`, an
  ``ImportError``. Without ``strict`` such imports succeed and the first use
  is denied by the audit hook.

This layer is a convenience and an early warning, not the boundary:
``importlib.import_module`` and ``sys.modules`` reach modules without
``__import__``. The audit hook enforces.
"""

from __future__ import annotations

import builtins
import functools
import sys
import types
from typing import Callable, Optional

from .attribution import APP, CAPIMPORT, DYNAMIC, IMPORT, LINECACHE, LOGGING, STDLIB
from .table.events import CAPABILITY_MODULES

_NOT_GUARDED = frozenset({APP, CAPIMPORT, DYNAMIC, IMPORT, LINECACHE, LOGGING, STDLIB})

#: Module name -> function run on the module right after it executes.
POST_IMPORT: dict[str, Callable] = {}

#: Run on every spec another finder returns, before it is used (set by the guards: a loader
#: planted with builtin methods is charged to who planted it, :mod:`capimport.guards.importhooks`).
SPEC_CHECKS: list = []


def capability_of_import(name: str, fromlist=()) -> Optional[tuple[str, str]]:
    """``(module, capability)`` when importing *name* (with *fromlist*) reaches a capability module."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        cap = CAPABILITY_MODULES.get(prefix)
        if cap is not None:
            return prefix, cap
    for item in fromlist or ():
        if isinstance(item, str):
            full = f"{name}.{item}"
            cap = CAPABILITY_MODULES.get(full)
            if cap is not None:
                return full, cap
    return None


class GuardFinder:
    """Finds modules through the finders after it and guards the distributions' ones."""

    def __init__(self, enforcer):
        self.enforcer = enforcer
        self._builtins: dict[str, dict] = {}
        self._classes: dict[tuple, type] = {}

    # -- finder protocol ----------------------------------------------------------------

    def find_spec(self, fullname, path=None, target=None):
        spec = None
        after = False
        for finder in list(sys.meta_path):
            if finder is self:
                after = True
                continue
            if not after:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                return None  # a legacy finder: let the import system take it from here, in order
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None:
            return spec
        for check in SPEC_CHECKS:
            if check(spec):
                return spec   # a charged loader: not a distribution's module to guard
        post = POST_IMPORT.get(fullname)
        origin = spec.origin
        guarded = None
        if isinstance(origin, str) and origin.endswith((".py", ".pyc")):
            owner = self.enforcer.origins.origin(origin)
            if owner not in _NOT_GUARDED:
                guarded = self.builtins_for(owner)
        if guarded is None and post is None:
            return spec
        loader = self._wrap(spec.loader, guarded, post)
        if loader is not None:
            spec.loader = loader
        return spec

    def invalidate_caches(self):
        pass

    # -- loaders ------------------------------------------------------------------------

    def _wrap(self, inner, guarded: Optional[dict], post: Optional[Callable]):
        cls = type(inner)
        if getattr(cls, "_capimport_guard", False) or not hasattr(inner, "exec_module"):
            return None
        key = (cls, guarded is not None, post is not None)
        sub = self._classes.get(key)
        if sub is None:
            # Only create_module is overridden for guarded modules, so that no capimport
            # frame sits between the import system and the module's code in tracebacks.
            namespace = {"_capimport_guard": True, "create_module": _create_module,
                         "__module__": cls.__module__}
            if post is not None:
                namespace["exec_module"] = _exec_module
            try:
                sub = type(f"Guarded{cls.__name__}", (cls,), namespace)
            except TypeError:
                return None
            self._classes[key] = sub
        try:
            loader = object.__new__(sub)
            loader.__dict__.update(inner.__dict__)
        except (TypeError, AttributeError):
            return None
        loader.__dict__["_capimport_builtins"] = guarded
        loader.__dict__["_capimport_post"] = post
        return loader

    # -- builtins -----------------------------------------------------------------------

    def builtins_for(self, owner: str) -> dict:
        found = self._builtins.get(owner)
        if found is None:
            found = dict(builtins.__dict__)
            found["open"] = _guarded_open
            if self.enforcer.strict:
                found["__import__"] = _make_import(self.enforcer)
            self._builtins[owner] = found
        return found


def _create_module(self, spec):
    module = super(type(self), self).create_module(spec)
    guarded = self.__dict__.get("_capimport_builtins")
    if guarded is not None:
        if module is None:
            module = types.ModuleType(spec.name)
        module.__dict__["__builtins__"] = guarded
    return module


def _exec_module(self, module):
    super(type(self), self).exec_module(module)
    post = self.__dict__.get("_capimport_post")
    if post is not None:
        post(module)


_real_open = builtins.open


@functools.wraps(_real_open)
def _guarded_open(file, *args, **kwargs):
    if not isinstance(file, (str, bytes, int)):
        import os
        file = os.fspath(file)  # once: the checked path is the opened path
    return _real_open(file, *args, **kwargs)


def _make_import(enforcer) -> Callable:
    real_import = builtins.__import__
    from . import enforcer as _enforcer_module

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            found = capability_of_import(name, fromlist)
            if found is not None:
                module, cap = found
                _enforcer_module.check(cap, None, f"import {module}", frame=sys._getframe(1),
                                       call=f"import {module}", import_name=module)
        return real_import(name, globals, locals, fromlist, level)

    return __import__


def install(enforcer) -> GuardFinder:
    """Put the guard finder first on ``sys.meta_path``."""
    from .enforcer import patch_logging
    POST_IMPORT.setdefault("logging", patch_logging)
    finder = GuardFinder(enforcer)
    sys.meta_path.insert(0, finder)
    return finder
