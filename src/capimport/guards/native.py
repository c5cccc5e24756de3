"""Route 3: C entry points that act without raising an audit event, guarded in place.

Found by probing the standard library's C modules under an audit hook that
records every event (``notes/cpython-mechanics.md``, and ``tests/security/
test_sec_native.py`` for the proof of each):

* ``_posixsubprocess.fork_exec``: the helper behind ``subprocess`` *and*
  multiprocessing's ``spawn``/``forkserver`` start methods
  (``multiprocessing.util.spawnv_passfds``) -> ``process`` (scope: the
  executable);
* ``os.mkfifo``, ``os.mknod`` -> ``fs`` on the path (``dir_fd`` honoured);
* ``os.chroot``, ``os.setuid`` and the other identity/scheduling calls ->
  ``process``;
* ``readline.write_history_file``/``append_history_file`` -> ``fs``;
  ``read_history_file``/``read_init_file`` -> ``fs-readonly``;
* ``_gdbm.open``/``_dbm.open`` -> ``fs`` (``fs-readonly`` for flag ``r``).

Each function is replaced on its module object and on every loaded module
that holds an alias of it (``os`` re-exports ``posix``), so ``sys.modules``,
``importlib`` and ``from posix import mkfifo`` all reach the guard. A second
copy of a guarded C module (``del sys.modules[...]`` then import again) is an
``import`` event naming the extension's file: :mod:`capimport.guards.tamper`
guards it the same way as soon as it is created.
"""

from __future__ import annotations

import os
import sys

from ..capabilities import FS, FS_READONLY, PROCESS
from ..hook import Lazy, path_target, program_target

_getframe = sys._getframe

#: name -> capability for identity and scheduling calls that need ``process``.
PROCESS_CALLS = ("chroot", "setuid", "setgid", "seteuid", "setegid", "setreuid", "setregid", "setresuid",
                 "setresgid", "setgroups", "initgroups", "setsid", "setpgid", "setpgrp", "nice",
                 "setpriority", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "setns",
                 "unshare")


def _wrap_path(guard, original, capability: str, api: str, path_index: int = 0, dir_fd_kw: str = "dir_fd"):
    decide = guard.enforcer.decide

    def guarded(*args, **kwargs):
        if not guard.busy():
            path = args[path_index] if len(args) > path_index else kwargs.get("path", kwargs.get("filename"))
            dir_fd = kwargs.get(dir_fd_kw)
            if isinstance(path, (str, bytes)) or hasattr(path, "__fspath__"):
                path = os.fspath(path)   # once: the checked path is the one acted on
                if path_index < len(args):
                    args = args[:path_index] + (path,) + args[path_index + 1:]
                else:
                    kwargs["path" if "path" in kwargs else "filename"] = path
            target = Lazy(path_target, path if path is not None else os.path.expanduser("~/.python_history"),
                          dir_fd)
            decide([(capability, target, api)], _getframe(1), lambda: f"{api}({path!r})")
        return original(*args, **kwargs)

    return _finish(guarded, original)


def _wrap_process(guard, original, api: str):
    decide = guard.enforcer.decide
    none = Lazy(lambda: None)

    def guarded(*args, **kwargs):
        if not guard.busy():
            decide([(PROCESS, none, api)], _getframe(1), api)
        return original(*args, **kwargs)

    return _finish(guarded, original)


def _wrap_fork_exec(guard, original):
    from . import children

    decide = guard.enforcer.decide
    options = children.child_options(guard.enforcer)

    def fork_exec(*args, **kwargs):
        executables = args[1] if len(args) > 1 else ()
        argv = args[0] if args else ()
        program = executables[0] if executables else (argv[0] if argv else "")
        if not guard.busy():
            env = args[5] if len(args) > 5 else None
            target = Lazy(_program, program, env)
            decide([(PROCESS, target, "_posixsubprocess.fork_exec")], _getframe(1),
                   lambda: f"_posixsubprocess.fork_exec({_short(argv)})")
            # A Python child starts under capimport with the same policy (route 5).
            rewritten = guard.internal(children.rewrite, list(argv), program, options)
            if rewritten is not None and rewritten != list(argv):
                args = (rewritten,) + tuple(args[1:])
        return original(*args, **kwargs)

    return _finish(fork_exec, original)


def _wrap_dbm(guard, original, api: str):
    decide = guard.enforcer.decide

    def open_(*args, **kwargs):
        if not guard.busy():
            path = os.fspath(args[0]) if args else kwargs.get("filename")
            if args:
                args = (path,) + args[1:]
            flag = args[1] if len(args) > 1 else kwargs.get("flag", "r")
            capability = FS_READONLY if str(flag)[:1] == "r" else FS
            decide([(capability, Lazy(path_target, path), api)], _getframe(1), lambda: f"{api}({path!r}, {flag!r})")
        return original(*args, **kwargs)

    return _finish(open_, original)


def _program(program, env):
    if isinstance(program, bytes):
        program = os.fsdecode(program)
    envmap = None
    if isinstance(env, (list, tuple)):
        envmap = {}
        for item in env:
            key, _, value = (os.fsdecode(item) if isinstance(item, bytes) else str(item)).partition("=")
            envmap[key] = value
    return program_target(program, envmap)


def _short(argv) -> str:
    try:
        return repr([os.fsdecode(a) if isinstance(a, bytes) else a for a in list(argv)[:4]])
    except Exception:
        return "..."


def _finish(wrapper, original):
    wrapper.__name__ = getattr(original, "__name__", wrapper.__name__)
    wrapper.__qualname__ = getattr(original, "__qualname__", wrapper.__name__)
    wrapper.__doc__ = getattr(original, "__doc__", None)
    wrapper._capimport_guard = True
    return wrapper


#: id(original) -> replacement, waiting for the next :func:`sweep` over every loaded module.
_PENDING: dict = {}


def replace_everywhere(module, name: str, replacement, original) -> int:
    """Set *module.name* to *replacement*; :func:`sweep` then replaces every alias of *original*."""
    setattr(module, name, replacement)
    _PENDING[id(original)] = (original, replacement)
    return 1


def sweep() -> int:
    """One pass over every loaded module's namespace, swapping aliases of guarded originals."""
    if not _PENDING:
        return 0
    pending = dict(_PENDING)
    _PENDING.clear()
    count = 0
    for other in list(sys.modules.values()):
        namespace = getattr(other, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            entry = pending.get(id(value))
            if entry is not None and entry[0] is value:
                namespace[key] = entry[1]
                count += 1
    return count


def guard_module(guard, module) -> dict:
    """Guard the functions of one C module object (also used for a re-created copy)."""
    done = {}
    name = getattr(module, "__name__", "")

    def put(attr, make):
        original = getattr(module, attr, None)
        if original is None or getattr(original, "_capimport_guard", False):
            return
        replacement = make(original)
        done[f"{name}.{attr}"] = replace_everywhere(module, attr, replacement, original)

    if name == "_posixsubprocess":
        put("fork_exec", lambda o: _wrap_fork_exec(guard, o))
    elif name in ("posix", "nt"):
        put("mkfifo", lambda o: _wrap_path(guard, o, FS, "os.mkfifo"))
        put("mknod", lambda o: _wrap_path(guard, o, FS, "os.mknod"))
        for call in PROCESS_CALLS:
            put(call, lambda o, call=call: _wrap_process(guard, o, f"os.{call}"))
    elif name == "readline":
        put("write_history_file", lambda o: _wrap_path(guard, o, FS, "readline.write_history_file"))
        put("append_history_file", lambda o: _wrap_path(guard, o, FS, "readline.append_history_file", 1))
        put("read_history_file", lambda o: _wrap_path(guard, o, FS_READONLY, "readline.read_history_file"))
        put("read_init_file", lambda o: _wrap_path(guard, o, FS_READONLY, "readline.read_init_file"))
    elif name in ("_gdbm", "_dbm"):
        put("open", lambda o: _wrap_dbm(guard, o, f"{name}.open"))
    return done


#: C modules this guard covers; imported lazily modules are guarded when they first load.
MODULES = ("_posixsubprocess", "posix", "readline", "_gdbm", "_dbm")


def install(guard) -> dict:
    import posix
    import _posixsubprocess  # noqa: F401 - always guarded, whoever imports it later
    done: dict = {}
    for name in MODULES:
        module = sys.modules.get(name)
        if module is not None:
            done.update(guard_module(guard, module))
    return done
