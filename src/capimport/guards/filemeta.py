"""Route 2: file metadata (``os.stat`` and friends), which raises no audit event.

``os.stat``, ``lstat``, ``access``, ``readlink``, ``statvfs`` and ``getcwd``
(and through them ``os.path.exists/isfile/isdir/realpath``, ``pathlib``'s
``exists``/``stat``) are replaced on ``posix`` and every alias, and decided
as ``fs-readonly`` on the path. They are the hottest functions capimport
guards (the import system alone calls ``stat`` for every module it looks
for), so the guard first runs the cheap test :meth:`Guard.plain`: when no
frame on the stack has a distribution's builtins and the thread inherited no
chain, the call passes straight through (about 0.3 us at depth 20 instead of
the 7 us of a full walk). Calls made while capimport itself decides, and
calls from the import system, pass through as well. File descriptors
(``os.stat(fd)``) are not paths and are not checked: opening the fd was.

This is the one guard that relies on the import guard's builtins as its
filter: code that a distribution runs with the interpreter's own builtins
dict, called later from a stack with no distribution frame, passes it.
``docs/threat-model.md`` lists this as an open gap for metadata only.
"""

from __future__ import annotations

import os
import sys

from ..capabilities import FS_READONLY
from ..hook import Lazy, path_target
from .native import _finish, replace_everywhere

_getframe = sys._getframe

#: name -> index of the path argument.
CALLS = {"stat": 0, "lstat": 0, "access": 0, "readlink": 0, "statvfs": 0}


def _wrap(guard, original, api: str):
    decide = guard.enforcer.decide
    plain = guard.plain
    busy = guard.busy

    def guarded(path, *args, **kwargs):
        if busy() or isinstance(path, int):
            return original(path, *args, **kwargs)
        frame = _getframe(1)
        if plain(frame):
            return original(path, *args, **kwargs)
        if not isinstance(path, (str, bytes)):
            path = os.fspath(path)  # once: the checked path is the one looked at
        dir_fd = kwargs.get("dir_fd")
        decide([(FS_READONLY, Lazy(path_target, path, dir_fd), api)], frame, lambda: f"{api}({path!r})")
        return original(path, *args, **kwargs)

    return _finish(guarded, original)


def _wrap_getcwd(guard, original, api: str):
    decide = guard.enforcer.decide
    plain = guard.plain
    busy = guard.busy

    def guarded(*args):
        if busy():
            return original(*args)
        frame = _getframe(1)
        if plain(frame):
            return original(*args)
        value = original(*args)
        decide([(FS_READONLY, Lazy(path_target, value), api)], frame, api + "()")
        return value

    return _finish(guarded, original)


def install(guard) -> list:
    import posix

    done = []
    for name in CALLS:
        original = getattr(posix, name, None)
        if original is None or getattr(original, "_capimport_guard", False):
            continue
        replace_everywhere(posix, name, _wrap(guard, original, f"os.{name}"), original)
        done.append(f"os.{name}")
    for name in ("getcwd", "getcwdb"):
        original = getattr(posix, name, None)
        if original is None or getattr(original, "_capimport_guard", False):
            continue
        replace_everywhere(posix, name, _wrap_getcwd(guard, original, f"os.{name}"), original)
        done.append(f"os.{name}")
    return done
