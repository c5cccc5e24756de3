"""Hand the policy to the native decision core (``capimport._core``).

The core decides every audited act in C, on a copy of the policy that no
Python code can reach or rebind (docs/decisions.md, "The native decision
core"). This module turns the Python objects that :mod:`capimport.enforcer`
builds (the effective grants, the origin map, the dependency graph, the
event table) into the plain, numbered data the core copies at install:
origins become indices, scopes become tuples of pattern values, and every
table maps ``str`` to ``int`` or ``tuple``.

When the extension is not built (no compiler), or ``CAPIMPORT_PURE_PYTHON=1``
is set, :func:`install` returns False and the Python audit hook decides, with
the route-7 gap docs/threat-model.md describes.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

from .attribution import (APP, BOTTOM, CAPIMPORT, CAPIMPORT_DEPENDENCIES, DYNAMIC, IMPORT, LINECACHE,
                          LOGGING, PRIVILEGED, STDLIB, UNKNOWN, _IMPORT_FROZEN)
from .capabilities import CAPABILITIES, FFI

#: The special origins, in the order of the core's ``O_*`` constants.
SPECIAL = (APP, UNKNOWN, STDLIB, CAPIMPORT, DYNAMIC, IMPORT, LINECACHE, LOGGING, BOTTOM)
#: Where a name the policy does not know is numbered (fail closed): an origin that holds nothing, last.
NOBODY = ":nobody:"
#: The core's code for the ``open`` event's flag-dependent capability, and for "a rule only".
CAP_OPEN, CAP_NONE = 100, -1


def core():
    """The extension module, or None when it is not built or not wanted."""
    if os.environ.get("CAPIMPORT_PURE_PYTHON"):
        return None
    try:
        from . import _core
    except ImportError:  # pragma: no cover - exercised where no compiler built it
        return None
    return _core


def install(enforcer) -> bool:
    """Copy *enforcer*'s policy into the core and add its audit hook; False when there is no core."""
    module = core()
    if module is None:
        return False
    module.install(build_spec(enforcer))
    from .bytecode import compile_through
    compile_through(module.cache_compile)
    return True


def core_item(capability: str, target, api: str) -> tuple:
    """One check of :meth:`Enforcer.decide` as ``_core.check`` takes it: the target's raw input.

    A target the Python would resolve (a path, a program, a variable name)
    is handed over unresolved, so that the core resolves it in C: resolving
    in Python would call ``os.lstat``/``os.getcwd``, which the core's gates
    would then judge as the acting distribution's own calls.
    """
    from . import hook
    from .enforcer import _normalise

    if target.done:
        value = target.value
        return (capability, "none" if value is None else "value", value, None, api)
    fn, args = target.fn, target.args
    if fn is _normalise:
        raw = args[1]
        if raw is None:
            return (capability, "none", None, None, api)
        kind = _RAW_KINDS.get(capability, "value")
        return (capability, kind, raw, None, api)
    if fn is hook.path_target:
        return (capability, "path", args[0], args[1] if len(args) > 1 else None, api)
    value = target.get()
    return (capability, "none" if value is None else "value", value, None, api)


#: How ``_core.check`` computes the target of a capability from the raw value ``check()`` was given.
_RAW_KINDS = {"fs": "path", "fs-readonly": "path", "process": "program", "env": "env", "env-readonly": "env"}


def build_spec(enforcer) -> dict:
    """The plain data :c:func:`core_install` copies (see ``install_spec`` in ``_core.c``)."""
    from . import hook
    from .table.events import EVENTS

    origins = enforcer.origins
    origins.prepare()
    policy = enforcer.policy
    names = SPECIAL + tuple(sorted(policy.distributions)) + (NOBODY,)
    index = {name: i for i, name in enumerate(names)}
    app_dists = origins.app_distributions

    def number(name: str) -> int:
        return index[APP] if name in app_dists else index.get(name, index[NOBODY])

    prefix = enforcer.bytecode.prefix   # as the interpreter started
    return {
        "mode": enforcer.mode,
        "origins": names,
        "record_files": _numbered(origins._by_file or {}, number),
        "roots": tuple((root, number(name)) for root, name in (origins._roots or ())),
        "cache": {name: number(origin) for name, origin in origins.cache.items()},
        "privileged_files": {name: index[origin] for name, origin in origins.cache.items() if origin in PRIVILEGED},
        "capimport_dirs": (origins.capimport_dir, origins.capimport_real),
        "stdlib_dirs": tuple(origins.stdlib_dirs),
        "site_dirs": tuple(origins._site_dirs),
        "app_dirs": tuple(origins.app_dirs),
        "import_frozen": tuple(sorted(_IMPORT_FROZEN)),
        "grants": tuple(_grant_entry(enforcer, name) for name in names),
        "dependents": tuple(_dependents(enforcer, name, index) for name in names),
        "owned": _owned(enforcer, names, index),
        "owned_roots": tuple(_owned_roots(enforcer, name) for name in names),
        "capimport_dependencies": tuple(index[name] for name in sorted(CAPIMPORT_DEPENDENCIES) if name in index),
        "events": _events(EVENTS, enforcer.guard_rules),
        "write_flags": hook._WRITE_FLAGS,
        "af_unix": hook._AF_UNIX,
        "proc_dev": hook._PROC_DEV,
        "standard_streams": tuple(sorted(hook.STANDARD_STREAMS)),
        "pycache": (prefix, os.path.realpath(prefix) + os.sep) if prefix else None,
        "bytecode": enforcer.bytecode.as_spec(),
        "sqlite_always_uri": bool(hook.SQLITE_ALWAYS_URI[0]),
        "report": enforcer.native_report,
        "internal_error": enforcer.reporter.internal_error,
        "error_class": _error_class(),
        "tamper": _tamper(enforcer, names),
    }


def _tamper(enforcer, names: tuple) -> dict:
    """The forged-identity and import-integrity rules' data (guards/tamper.py, ``core_spec``)."""
    spec = dict(getattr(enforcer, "tamper_spec", None) or {})
    labels = []
    for name in names:
        dist = enforcer.policy.distributions.get(name)
        labels.append(f"'{name}' {dist.version}" if dist is not None else "code no distribution owns")
    spec["labels"] = tuple(labels)
    return spec


def _error_class():
    from .errors import CapabilityError
    return CapabilityError


def _grant_entry(enforcer, name: str) -> tuple:
    """Per capability: False (not held), None (unscoped) or a tuple of pattern values."""
    if name == APP:
        grant = enforcer.policy.app
    elif name == UNKNOWN:
        grant = enforcer.policy.config.default
    elif name in enforcer.policy.distributions:
        grant = enforcer.policy.grant_for(name)
    else:
        return (False,) * len(CAPABILITIES)
    scopes = grant.as_dict()
    out = []
    for capability in CAPABILITIES:
        if capability not in scopes:
            out.append(False)
        elif scopes[capability] is None:
            out.append(None)
        else:
            out.append(tuple(sorted(pattern.value for pattern in scopes[capability])))
    return tuple(out)


def _dependents(enforcer, name: str, index: dict) -> tuple:
    if name not in enforcer.policy.distributions:
        return ()
    return tuple(sorted(index[d] for d in enforcer.dependents(name) if d in index))


def _numbered(by_file: dict, number) -> dict:
    """path -> owner's index, numbering each owner once (thousands of RECORD lines, at start-up)."""
    numbers = {name: number(name) for name in set(by_file.values())}
    return {path: numbers[name] for path, name in by_file.items()}


def _owned(enforcer, names: tuple, index: dict) -> dict:
    """Every installed file and folder -> the distributions that own it (fs-readonly on their own).
    Most paths have one owner: each distribution's are added at once, and only the paths two
    distributions share (a namespace package's folders) are merged one by one."""
    out: dict = {}
    for name in names:
        if name in enforcer.policy.distributions:
            files, _ = enforcer.origins.ownership(name)
            shared = {path: out[path] + (index[name],) for path in out.keys() & files}
            out.update(dict.fromkeys(files, (index[name],)))
            out.update(shared)
    return out


def _owned_roots(enforcer, name: str) -> Optional[tuple]:
    _, roots = enforcer.origins.ownership(name)
    return roots or None


def _events(table: dict, rules: dict) -> tuple:
    """The core's event table: (name, capability, api, scopes, rule, frames only, lookup).

    Each rule is handed over itself, so the core holds it (emptying ``enforcer.guard_rules``
    later changes nothing). The tampering events that only need ``ffi`` need no Python at all:
    they are plain entries of the table, decided like ``ctypes.dlopen``.
    """
    from .enforcer import _LOOKUPS
    from .guards.tamper import FFI_EVENTS

    out = []
    for name in sorted(set(table) | set(rules) | set(FFI_EVENTS)):
        spec = table.get(name)
        rule = rules.get(name)
        if name == "open":
            rule = None   # /proc/<pid>/mem: the core's own check of every open (T_MEMORY)
        if name in FFI_EVENTS and spec is None:
            capability, api, scopes, rule = CAPABILITIES.index(FFI), FFI_EVENTS[name], (), None
        elif spec is None:
            capability, api, scopes = CAP_NONE, name, ()
        else:
            capability = CAP_OPEN if spec.capability == "open" else CAPABILITIES.index(spec.capability)
            api = spec.api
            scopes = tuple((scope[0], _index(scope, 1), _index(scope, 2)) for scope in spec.scope)
        out.append((name, capability, api, scopes, rule, name == "object.__getattr__",
                    _LOOKUPS.get(name, -1)))
    return tuple(out)


def _index(scope: tuple, i: int) -> int:
    return scope[i] if len(scope) > i and isinstance(scope[i], int) else -1
