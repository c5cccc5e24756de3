"""Route 2: file metadata (``os.stat`` and friends), which raises no audit event.

``os.stat``, ``lstat``, ``access``, ``readlink``, ``statvfs`` and ``getcwd``
(and through them ``os.path.exists/isfile/isdir/realpath``, ``pathlib``'s
``exists``/``stat``) are replaced on ``posix`` and every alias, and decided
as ``fs-readonly`` on the path. With the native core they are its gates
(``capimport/_core_gate.h``), which decide in C; the rest of this module is
the pure-Python fallback, where the originals are held in the guards' vault
(:func:`capimport.guards._base.make_vault`), never in a closure. These are
the hottest functions capimport guards (the import system alone calls
``stat`` for every module it looks for), so the check first runs the cheap
test :meth:`Guard.plain`: when no frame on the stack has a distribution's
builtins and the thread inherited no chain, the call passes straight
through. Calls made while capimport itself decides pass through as well.
File descriptors (``os.stat(fd)``) are not paths and are not checked:
opening the fd was.

In the fallback, this guard (like the environment's and the deferred-execution
guards) relies on the import guard's builtins as its fast filter: code that a distribution
runs with the interpreter's own builtins dict, called later from a stack with
no distribution frame, passes it. ``docs/threat-model.md`` lists this gap.
"""

from __future__ import annotations

import os

from ..capabilities import FS_READONLY
from ..hook import Lazy, path_target
from ._base import exact_path

#: name -> index of the path argument.
CALLS = ("stat", "lstat", "access", "readlink", "statvfs")


def _checker(guard, api: str):
    decide = guard.enforcer.decide
    plain = guard.plain
    busy = guard.busy

    def check(frame, args, kwargs):
        path = args[0] if args else kwargs.get("path")
        if type(path) is int:
            return args, kwargs
        dir_fd = kwargs.get("dir_fd")
        if not exact_path(path) or (dir_fd is not None and type(dir_fd) is not int):
            raise TypeError(f"capimport: {api} takes a str, bytes or int path here")
        if busy() or plain(frame):
            return args, kwargs
        decide([(FS_READONLY, Lazy(path_target, path, dir_fd), api)], frame, lambda: f"{api}({path!r})")
        return args, kwargs

    return check


def _cwd_checker(guard, api: str, original):
    # getcwd's target is its own result: the check asks for it through capimport's own call.
    decide = guard.enforcer.decide
    plain = guard.plain
    busy = guard.busy

    def check(frame, args, kwargs):
        if args or kwargs:
            raise TypeError(f"{api}() takes no arguments")
        if busy() or plain(frame):
            return args, kwargs
        decide([(FS_READONLY, Lazy(lambda: path_target(guard.internal(original))), api)], frame, api + "()")
        return args, kwargs

    return check


def guard_posix(guard, module, put) -> None:
    """Called by :func:`capimport.guards.native.guard_module` for ``posix``."""
    from .native import _path_converter, _path_gate

    for name in CALLS:
        api = f"os.{name}"
        put(name, _path_gate(FS_READONLY, api, names=("path",)), lambda api=api: _checker(guard, api),
            _path_converter(0))
    for name in ("getcwd", "getcwdb"):
        original = getattr(module, name, None)
        if original is not None:
            api = f"os.{name}"
            put(name, ("cwd", {"api": api}), lambda api=api, original=original: _cwd_checker(guard, api, original))


def install(guard) -> list:
    """Nothing of its own: ``posix`` is guarded by :mod:`capimport.guards.native` (one module, one sweep)."""
    return [f"os.{name}" for name in CALLS + ("getcwd",)]
