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
* ``_gdbm.open``/``_dbm.open`` -> ``fs`` (``fs-readonly`` for flag ``r``);
* ``_sqlite3``: ``ATTACH``/``VACUUM INTO`` through an authorizer every
  connection gets (:mod:`capimport.guards.sqlite`);
* ``_posixshmem.shm_open``/``shm_unlink`` (Linux), ``_multiprocessing``'s named
  semaphores: as the file glibc opens for the name (:mod:`capimport.guards.ipc`);
* ``_ssl``: the files OpenSSL opens itself (:mod:`capimport.guards.tls`);
* ``spwd.getspnam``/``getspall`` -> ``fs-readonly`` on ``/etc/shadow`` (read through NSS);
* descriptors (:mod:`capimport.guards.descriptors`): ``os.read``/``write`` and
  their kin, ``dup2``, ``lseek``, ``posix_fallocate``, ``signal.set_wakeup_fd``,
  ``faulthandler``; and ``signal.pidfd_send_signal`` -> ``process``.

Each function is replaced on its module object and on every loaded module
that holds an alias of it (``os`` re-exports ``posix``), so ``sys.modules``,
``importlib`` and ``from posix import mkfifo`` all reach the guard. A second
copy of a guarded C module (``del sys.modules[...]`` then import again) is an
``import`` event naming the extension's file: :mod:`capimport.guards.tamper`
guards it the same way as soon as it is created.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import types
from typing import Optional

from ..capabilities import FFI, FS, FS_READONLY, PROCESS
from ..hook import Lazy, path_target, program_target
from ._base import builtin_shaped, exact_fspath, exact_path, put_in_type_dict, register

_getframe = sys._getframe

#: name -> capability for identity and scheduling calls that need ``process``.
PROCESS_CALLS = ("chroot", "setuid", "setgid", "seteuid", "setegid", "setreuid", "setregid", "setresuid",
                 "setresgid", "setgroups", "initgroups", "setsid", "setpgid", "setpgrp", "nice",
                 "setpriority", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "setns",
                 "unshare")


def _public(invoke, key, original, convert=None):
    """The function put on the module: converts path-likes once, then calls through the vault."""
    if convert is None:
        def public(*args, **kwargs):
            return invoke(key, args, kwargs)
    else:
        def public(*args, **kwargs):
            args, kwargs = convert(args, kwargs)
            return invoke(key, args, kwargs)
    return _finish(public, original)


def _path_converter(index: int, names=("path", "filename")):
    def convert(args, kwargs):
        if len(args) > index:
            value = args[index]
            if value is not None and not exact_path(value):
                args = args[:index] + (exact_fspath(value),) + args[index + 1:]
        else:
            for name in names:
                value = kwargs.get(name)
                if value is not None and not exact_path(value):
                    kwargs = dict(kwargs, **{name: exact_fspath(value)})
        return args, kwargs
    return convert


def _path_checker(guard, capability: str, api: str, index: int = 0, default=None, names=("path", "filename")):
    decide = guard.enforcer.decide

    def check(frame, args, kwargs):
        path = args[index] if len(args) > index else next((kwargs[n] for n in names if n in kwargs), None)
        dir_fd = kwargs.get("dir_fd")
        if path is not None and not exact_path(path) or dir_fd is not None and type(dir_fd) is not int:
            raise TypeError(f"capimport: {api} takes a str, bytes or int path here")
        if path is None and default is None or type(path) is int:
            return args, kwargs   # no path (the original refuses it or needs none), or a descriptor
        if not guard.busy():
            target = Lazy(path_target, default() if path is None and default else path, dir_fd)
            decide([(capability, target, api)], frame, lambda: f"{api}({path!r})")
        return args, kwargs

    return check


_PLAIN_ARG_TYPES = (int, str, bytes)   # subclasses too (signal.SIGTERM is an IntEnum)


def _process_checker(guard, api: str):
    decide = guard.enforcer.decide
    none = Lazy(lambda: None)

    def check(frame, args, kwargs):
        for value in tuple(args) + tuple(kwargs.values()):   # as plain_process_arg in _core_gate.h
            if type(value) in (list, tuple):
                if not all(isinstance(v, int) for v in value):
                    raise TypeError(f"capimport: {api}: unexpected argument type")
            elif not (value is None or isinstance(value, _PLAIN_ARG_TYPES) or type(value) is float):
                raise TypeError(f"capimport: {api}: unexpected argument type")
        if not guard.busy():
            decide([(PROCESS, none, api)], frame, api)
        return args, kwargs

    return check


def current_umask() -> Optional[int]:
    """This process's file mode creation mask from ``/proc/self/status`` (``os.umask`` itself
    would set it for a moment, under every other thread), or None (``current_umask`` in C)."""
    try:
        with open("/proc/self/status", "rb", buffering=0) as status:
            text = status.read(4095)
    except OSError:
        return None
    head, found, rest = text.partition(b"\nUmask:\t")
    digits = rest.split(b"\n", 1)[0]
    if not found or not digits or digits.strip(b"01234567"):
        return None
    mask = int(digits, 8)
    return mask if mask <= 0o777 else None


def _umask_checker(guard):
    """The fallback's ``umask`` gate: free when the new mask keeps every bit of the one in force,
    or of the one the process started with (a restore after tightening); else ``process``."""
    decide = guard.enforcer.decide
    none = Lazy(lambda: None)
    start = current_umask()

    def check(frame, args, kwargs):
        mask = args[0] if args else kwargs.get("mask")
        if mask is None:
            return args, kwargs
        if not issubclass(type(mask), int):   # an int subclass's value is read directly
            raise TypeError("capimport: os.umask takes an int mask here")
        if guard.busy():
            return args, kwargs
        current = current_umask()
        mask = int.__index__(mask)
        kept = any(known is not None and mask & known == known for known in (current, start))
        if mask < 0 or not kept:
            decide([(PROCESS, none, "os.umask")], frame, lambda: f"os.umask({mask:#o})")
        return args, kwargs

    return check


def _bytes_list(value) -> bool:
    return type(value) in (list, tuple) and all(type(v) in (str, bytes) for v in value)


def _convert_fork_exec(args, kwargs):
    """Path-likes to bytes, and the argument lists frozen into tuples: the check and the call must
    see the same program (another thread could change a list between the two)."""
    args = list(args)
    if args and type(args[0]) in (list, tuple):
        args[0] = tuple(a if type(a) in (str, bytes) else os.fsencode(a) for a in args[0])
    for index in (1, 5):
        if len(args) > index and type(args[index]) is list:
            args[index] = tuple(args[index])
    if len(args) > 4 and args[4] is not None and type(args[4]) not in (str, bytes):
        args[4] = os.fsencode(args[4])
    return tuple(args), kwargs


def _fork_exec_checker(guard):
    from . import children

    decide = guard.enforcer.decide
    rewrite = _fork_exec_rewrite(children.child_options(guard.enforcer))

    def check(frame, args, kwargs):
        if kwargs or len(args) < 6:
            raise TypeError("capimport: fork_exec takes its arguments positionally")
        argv, executables, env, cwd = args[0], args[1], args[5], args[4]
        if not _bytes_list(argv) or not _bytes_list(executables) or (env is not None and not _bytes_list(env)) \
                or (cwd is not None and type(cwd) not in (str, bytes)):
            raise TypeError("capimport: fork_exec: unexpected argument type")
        program = executables[0] if executables else (argv[0] if argv else "")
        if guard.busy():
            return args, kwargs
        decide([(PROCESS, Lazy(_program, program, env), "_posixsubprocess.fork_exec")], frame,
               lambda: f"_posixsubprocess.fork_exec({_short(argv)})")
        return guard.internal(rewrite, args, kwargs)

    return check


def _fork_exec_rewrite(options):
    """``rewrite(args, kwargs)``: a Python child of ``fork_exec`` starts under capimport with the
    same policy (route 5). Run as capimport's own work, after the check."""
    from . import children

    def rewrite(args, kwargs):
        argv, executables = args[0], args[1]
        program = children.first_runnable(executables) if executables else (argv[0] if argv else "")
        rewritten = children.rewrite(list(argv), program, options, args[5])
        if rewritten is not None and rewritten != list(argv):
            args = (rewritten,) + tuple(args[1:])
        return args, kwargs

    return rewrite


def _convert_exec(args, kwargs):
    """Path-likes in the program and argv of ``execv``/``execve``/``posix_spawn[p]`` become str or bytes."""
    args = list(args)
    if args and type(args[0]) not in (str, bytes, int):
        args[0] = exact_fspath(args[0])
    if len(args) > 1 and type(args[1]) in (list, tuple):
        args[1] = [a if type(a) in (str, bytes) else exact_fspath(a) for a in args[1]]
    return tuple(args), kwargs


def _exec_checker(guard, api: str):
    """``os.execv``/``execve``/``posix_spawn``/``posix_spawnp``: a Python child starts under capimport.

    The act itself is decided by the audit event the C function raises
    (``os.exec``, ``os.posix_spawn``: ``process`` on the program); this guard
    only rewrites the command line first, as :func:`_fork_exec_checker` does
    for ``subprocess`` (route 5).
    """
    from . import children

    rewrite = _exec_rewrite(api, children.child_options(guard.enforcer))

    def check(frame, args, kwargs):
        _exec_arguments(api, args, kwargs)
        if guard.busy():
            return args, kwargs
        return guard.internal(rewrite, args, kwargs)

    return check


def _exec_arguments(api: str, args, kwargs):
    """``(program, argv)`` of an exec/spawn call; TypeError for what the guard does not take."""
    if len(args) < 2 or "argv" in kwargs or "path" in kwargs:
        raise TypeError(f"capimport: {api} takes its path and argv positionally")
    program, argv = args[0], args[1]
    if type(program) not in (str, bytes, int) or not _bytes_list(argv):
        raise TypeError(f"capimport: {api}: unexpected argument type")
    return program, argv


def _exec_rewrite(api: str, options):
    """``rewrite(args, kwargs)`` for exec/spawn: argv of a Python child runs it under capimport."""
    from . import children

    def rewrite(args, kwargs):
        kwargs = kwargs or {}
        program, argv = _exec_arguments(api, args, kwargs)
        env = args[2] if api != "execv" and len(args) > 2 else None
        rewritten = children.rewrite(list(argv), program, options, env)
        if rewritten is not None and rewritten != list(argv):
            args = (program, rewritten) + tuple(args[2:])
        return args, kwargs

    return rewrite


def _dbm_checker(guard, api: str):
    decide = guard.enforcer.decide

    def check(frame, args, kwargs):
        path = args[0] if args else kwargs.get("filename")
        flag = args[1] if len(args) > 1 else kwargs.get("flag", "r")
        if not exact_path(path) or type(flag) is not str:
            raise TypeError(f"capimport: {api}: unexpected argument type")
        if not guard.busy():
            capability = FS_READONLY if flag[:1] == "r" else FS
            decide([(capability, Lazy(path_target, path), api)], frame, lambda: f"{api}({path!r}, {flag!r})")
        return args, kwargs

    return check


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


def _guarded(guard, api: str, key: str, original, gate: tuple, checker, convert=None):
    """*original* behind a decision: the core's gate (*gate*: the kind and options of
    ``_core.gate``; an ``api`` among them names it instead of *api*), or where the core is not
    built, the vault's check (*checker* makes it) under *key*."""
    if guard.core is not None:
        kind, options = gate
        options = dict(options)
        return guard.core.gate(original, kind, options.pop("api", api), **options)
    register(guard.vault, key, original, checker())
    return _public(guard.invoke, key, original, convert)


def _finish(wrapper, original):
    """The replacement as the module will hold it: shaped like the C function it replaces."""
    return builtin_shaped(wrapper, original)


#: The guarded ``os.environb`` (set by :func:`capimport.guards.install`), for re-created ``posix`` modules.
ENVIRON_VIEW: list = []

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
    """Guard the functions of one C module object (also used for a re-created copy).

    Each function is described once, as the core's gate (kind and arguments
    of ``_core.gate``); the Python checker is the fallback where the core is
    not built (``guard.core`` is None).
    """
    done = {}
    name = getattr(module, "__name__", "")

    def put(attr, gate, checker, convert=None):
        original = getattr(module, attr, None)
        if original is None or getattr(original, "_capimport_guard", False):
            return
        replacement = _guarded(guard, f"{name}.{attr}", f"{name}.{attr}#{id(module)}", original, gate, checker,
                               convert)
        done[f"{name}.{attr}"] = replace_everywhere(module, attr, replacement, original)

    if name == "_posixsubprocess":
        put("fork_exec", ("fork_exec", _fork_exec_gate(guard)), lambda: _fork_exec_checker(guard),
            _convert_fork_exec)
    elif name in ("posix", "nt"):
        # A fresh copy of posix starts from the interpreter's cached dict, whose "environ" is the
        # raw environment: it gets the guarded view instead (route 1).
        if ENVIRON_VIEW and isinstance(module.__dict__.get("environ"), dict):
            module.environ = ENVIRON_VIEW[0]
        for call in ("execv", "execve", "posix_spawn", "posix_spawnp"):
            api = f"os.{call}"
            put(call, ("rewrite", _exec_gate(guard, api)), lambda api=api: _exec_checker(guard, api), _convert_exec)
        for call in ("mkfifo", "mknod"):
            api = f"os.{call}"
            put(call, _path_gate(FS, api), lambda api=api: _path_checker(guard, FS, api), _path_converter(0))
        for call in PROCESS_CALLS:
            api = f"os.{call}"
            gate = ("process", {"api": api, "index": 0, "names": ("path",)} if call == "chroot" else {"api": api})
            convert = _path_converter(0) if call == "chroot" else None
            put(call, gate, lambda api=api: _process_checker(guard, api), convert)
        # the mask every later file is made with, the application's included: loosening it below
        # the mask in force and the one the process started with needs process
        put("umask", ("umask", {"api": "os.umask"}), lambda: _umask_checker(guard))
        # os.open's "open" event carries no dir_fd: a relative path under one goes through the
        # descriptor's /proc link instead, which the hook resolves to where it really is.
        put("open", ("open_at", {"api": "os.open", "index": 0, "names": ("path",)}), lambda: _open_at_checker,
            _path_converter(0, ("path",)))
        from . import descriptors, filemeta
        filemeta.guard_posix(guard, module, put)
        descriptors.guard_posix(guard, put)
    elif name == "_signal":
        from . import descriptors
        descriptors.guard_signal(guard, put, _process_checker)
        # a signal to this process with no audit event: as os.kill(os.getpid(), sig) (the
        # application's handler runs, or the default action ends the process)
        put("raise_signal", ("process", {"api": "signal.raise_signal"}),
            lambda: _process_checker(guard, "signal.raise_signal"))
    elif name == "time":
        # as root, the system clock (certificate validity, tokens, every log's timestamps)
        for attr in ("clock_settime", "clock_settime_ns"):
            api = f"time.{attr}"
            put(attr, ("process", {"api": api}), lambda api=api: _process_checker(guard, api))
    elif name in ACCOUNT_DATABASES:
        # the whole database through NSS, with no open event: as open() of its file would need
        attr, path = ACCOUNT_DATABASES[name]
        api = f"{name}.{attr}"
        put(attr, _path_gate(FS_READONLY, api, -1, (), path),
            lambda: _fixed_path_checker(guard, FS_READONLY, api, path))
    elif name == "gc":
        from . import deferred
        done["gc.callbacks"] = deferred.guard_gc(guard, module)
    elif name == "faulthandler":
        from . import descriptors
        descriptors.guard_faulthandler(guard, put, lambda key, make: _gate_helper(guard, key, make))
    elif name == "readline":
        history = os.path.expanduser("~/.python_history")
        for attr, capability, index in (("write_history_file", FS, 0), ("append_history_file", FS, 1),
                                        ("read_history_file", FS_READONLY, 0)):
            api = f"readline.{attr}"
            put(attr, _path_gate(capability, api, index, default=history),
                lambda c=capability, a=api, i=index: _path_checker(guard, c, a, i, lambda: history),
                _path_converter(index))
        # hooks readline calls from inside input(): as whoever asks for a line (route 4)
        from . import deferred
        for attr in READLINE_HOOKS:
            put(attr, ("wrap", {"api": f"readline.{attr}", "index": 0, "frameless": True}),
                lambda: deferred._wrapping(guard, (0,), frameless=True))
        inputrc = os.path.expanduser("~/.inputrc")
        put("read_init_file", _path_gate(FS_READONLY, "readline.read_init_file", default=inputrc),
            lambda: _path_checker(guard, FS_READONLY, "readline.read_init_file", 0, lambda: inputrc),
            _path_converter(0))
    elif name in ("_gdbm", "_dbm"):
        api = f"{name}.open"
        put("open", ("dbm", {"api": api, "index": 0, "names": ("filename",)}), lambda: _dbm_checker(guard, api),
            _path_converter(0, ("filename",)))
    elif name in ("_posixshmem", "_multiprocessing"):
        from . import ipc
        done.update(ipc.guard_module(guard, module, put, replace_everywhere))
    elif name == "spwd":
        # getspnam/getspall read /etc/shadow through NSS with no open event (as root: every
        # user's password hash)
        for attr in ("getspnam", "getspall"):
            api = f"spwd.{attr}"
            put(attr, _path_gate(FS_READONLY, api, -1, (), SHADOW_FILE),
                lambda api=api: _fixed_path_checker(guard, FS_READONLY, api, SHADOW_FILE))
    elif name == "sys":   # not in MODULES: it cannot be loaded again, and it is always there
        for attr in SYS_FFI_CALLS:
            api = f"sys.{attr}"
            put(attr, ("whole", {"api": api, "capability": FFI}), lambda api=api: _whole_checker(guard, FFI, api))
        # a trace or profile function runs on every frame (ffi), but putting back None or one
        # installed before, as doctest, pdb and coverage do when they finish, puts no new code anywhere
        for index, attr in enumerate(("settrace", "setprofile")):
            api = f"sys.{attr}"
            put(attr, ("tracer", {"api": api, "index": index}),
                lambda api=api, index=index: _tracer_checker(guard, api, index))
    elif name == "_socket":
        from . import descriptors
        done.update(descriptors.guard_socket(guard, module))
    elif name == "_ssl":
        from . import tls
        done.update(tls.guard_module(guard, module, put))
    elif name == "_ctypes":
        for attr in CTYPES_RAW_CALLS:
            api = f"_ctypes.{attr}"
            put(attr, ("whole", {"api": api, "capability": FFI}), lambda api=api: _whole_checker(guard, FFI, api))
    elif name == "_tkinter":
        put("create", ("whole", {"api": TCL_API, "capability": FFI}), lambda: _whole_checker(guard, FFI, TCL_API))
        done.update(_guard_tcl_methods(guard, module))
    elif name == "_sqlite3":
        from . import sqlite

        def put_plain(attr, replacement, original):
            replacement._capimport_guard = True
            done[f"{name}.{attr}"] = replace_everywhere(module, attr, replacement, original)

        sqlite.guard_module(guard, module, put_plain)
        done[f"{name}.Connection"] = 1
    return done


#: tkinter's Tcl interpreter runs processes (``exec``), opens files and sockets with no audit
#: event: making one, running Tcl code in one, or handing it a Python callable to run later
#: (``createcommand``: ``after``, a button's command, as the application's event loop) needs
#: ``ffi``, like any foreign code.
TCL_API = "a Tcl interpreter (tkinter)"
TCL_METHODS = ("call", "eval", "evalfile", "record", "exprstring", "exprlong", "exprdouble", "exprboolean",
               "createcommand", "createfilehandler")


#: readline's hook setters: the hook runs later, inside whoever's ``input()``.
READLINE_HOOKS = ("set_startup_hook", "set_pre_input_hook", "set_completer", "set_completion_display_matches_hook")


#: Where glibc's NSS "files" backend keeps the shadow passwords ``spwd`` reads.
SHADOW_FILE = "/etc/shadow"

#: module -> (the call that lists every entry, the file glibc's NSS "files" backend reads for
#: it). Lookups by name or id (``getpwuid``, ``getgrnam``: ``os.path.expanduser``, ``getpass``,
#: ``shutil.chown``) stay free: they answer one question, not the file.
ACCOUNT_DATABASES = {"pwd": ("getpwall", "/etc/passwd"), "grp": ("getgrall", "/etc/group")}


def _fixed_path_checker(guard, capability: str, api: str, path: str):
    """The fallback's path gate with no path argument: *path* is what the call reads."""
    decide = guard.enforcer.decide

    def check(frame, args, kwargs):
        if not guard.busy():
            decide([(capability, Lazy(path_target, path, None), api)], frame, api)
        return args, kwargs

    return check


def _whole_checker(guard, capability: str, api: str):
    """The fallback's ``whole`` gate: *capability* as a whole; the arguments decide nothing."""
    decide = guard.enforcer.decide
    none = Lazy(lambda: None)

    def check(frame, args, kwargs):
        if not guard.busy():
            decide([(capability, none, api)], frame, api)
        return args, kwargs

    return check


def _tracer_checker(guard, api: str, index: int):
    """The fallback's ``tracer`` gate: ``ffi`` unless the function is None or one installed before
    with a decision that let it in (or in force at install). The call's own audit event is then not
    decided again (``guard.vouch``)."""
    event = ("sys.settrace", "sys.setprofile")[index]
    decide = guard.enforcer.decide
    current = (sys.gettrace, sys.getprofile)[index]()
    known = [current] if current is not None else []
    none = Lazy(lambda: None)

    def check(frame, args, kwargs):
        if len(args) != 1 or kwargs:
            return args, kwargs   # the original refuses the call before its event
        func = args[0]
        if func is not None and not any(func is k for k in known):
            if not guard.busy():
                decide([(FFI, none, api)], frame, api)
            known[:] = known[-255:] + [func]
        guard.vouch(event)
        return args, kwargs

    return check


def _guard_tcl_methods(guard, module) -> dict:
    """Gate the interpreter type's methods in place, each as a Python function so that it
    still binds ``self``."""
    tkapp = module.__dict__.get("TkappType")
    if type(tkapp) is not type:
        return {}

    def gate(attr):
        api = f"Tcl code (tkinter {attr})"
        return [(("whole", {"api": api, "capability": FFI}), lambda: _whole_checker(guard, FFI, api), None)]

    return guard_type_methods(guard, tkapp, {attr: gate(attr) for attr in TCL_METHODS})


def _as_method(public, original):
    """*public* as a method of a class: a Python function binds ``self``, a gate does not."""
    def method(self, *args, **kwargs):
        return public(self, *args, **kwargs)
    method.__name__ = method.__qualname__ = getattr(original, "__name__", "method")
    method.__doc__ = getattr(original, "__doc__", None)
    method._capimport_guard = True
    return method


def guard_type_methods(guard, cls, methods: dict, wrap=_as_method) -> dict:
    """Gate methods of a C type in place. *methods* maps a method's name to its gates, outermost
    first, each ``(gate, checker, convert)``: the core's kind and options (an ``api`` among
    them), the fallback's checker maker, the path converter or None. An immutable type is
    written through its dict (:func:`capimport.guards._base.put_in_type_dict`)."""
    done, entries = {}, {}
    where = f"{cls.__module__}.{cls.__name__}"
    for attr, gates in methods.items():
        original = cls.__dict__.get(attr)
        if original is None or getattr(getattr(original, "__func__", original), "_capimport_guard", False):
            continue   # (a classmethod put here before carries the mark on its function)
        public = original
        for n, (gate, checker, convert) in enumerate(reversed(gates)):
            if n:   # the core keeps a gate given a gate as it is: the inner one goes in a function
                public = _calls(public)
            api = dict(gate[1]).get("api", attr)
            public = _guarded(guard, api, f"{where}.{attr}.{n}#{id(cls)}", public, gate, checker, convert)
        entries[attr] = wrap(public, original)
        done[f"{where}.{attr}"] = 1
    if entries:
        guard.internal(put_in_type_dict, cls, entries)
    return done


def _calls(inner):
    def call(*args, **kwargs):
        return inner(*args, **kwargs)
    return call


def _open_at_checker(frame, args, kwargs):
    """The fallback's ``open_at`` gate: ``os.open(rel, flags, dir_fd=fd)`` through ``/proc/self/fd/fd``."""
    dir_fd = kwargs.get("dir_fd")
    path = args[0] if args else None
    if type(dir_fd) is not int or not isinstance(path, (str, bytes)) or path[:1] in ("/", b"/"):
        return args, kwargs
    link = f"/proc/self/fd/{dir_fd}/"
    joined = (os.fsencode(link) + path) if isinstance(path, bytes) else link + path
    return (joined,) + tuple(args[1:]), {k: v for k, v in kwargs.items() if k != "dir_fd"}


def _path_gate(capability: str, api: str, index: int = 0, names=("path", "filename"), default=None):
    """The core's gate for a function whose argument *index* (or keyword in *names*) is a path."""
    return ("path", {"api": api, "capability": capability, "index": index, "names": names, "default": default})


#: key -> (guard, gate options): the core accepts, once installed, only the before/after callables
#: it saw while installing, so a re-created module's gates reuse them.
_HELPERS: dict = {}


def _gate_helpers(guard, key: str, make) -> dict:
    """The options of a gate with helpers, made once per guard (a copy: ``put`` pops from it)."""
    known = _HELPERS.get(key)
    if known is None or known[0] is not guard:
        known = _HELPERS[key] = (guard, make())
    return dict(known[1])


def _gate_helper(guard, key: str, make):
    """One helper callable made once per guard (see :func:`_gate_helpers`)."""
    return _gate_helpers(guard, key, lambda: {"helper": make()})["helper"]


def _fork_exec_gate(guard) -> dict:
    """``fork_exec`` decided by the core on its program; then the route-5 rewrite of a Python child."""
    from . import children

    return _gate_helpers(guard, "fork_exec", lambda: {
        "api": "_posixsubprocess.fork_exec", "before": _convert_fork_exec,
        "after": _fork_exec_rewrite(children.child_options(guard.enforcer))})


def _exec_gate(guard, api: str) -> dict:
    """``os.exec*``/``posix_spawn*``: their own audit event decides; the gate only rewrites (route 5)."""
    from . import children

    return _gate_helpers(guard, api, lambda: {
        "api": api, "before": _convert_exec, "after": _exec_rewrite(api, children.child_options(guard.enforcer))})


#: ``sys`` functions with no audit event that change how every Python call of the process runs,
#: as ``sys.settrace`` does (whose event needs ``ffi``): the perf trampoline (3.12+, Linux) puts
#: native code in front of every Python frame and writes ``/tmp/perf-<pid>.map``.
SYS_FFI_CALLS = ("activate_stack_trampoline",)


def gate_ctypes_calls(guard, module) -> None:
    """``_ctypes``, when it is made: every call of a foreign function pointer, and making every
    ctypes data object, needs ``ffi`` (``core_gate_ctypes_calls``/``core_gate_ctypes_data`` in
    ``_core_gate.h``; no audit event covers either on 3.11). The pure-Python fallback cannot
    reach a type's slots: open there."""
    if guard.core is None or type(module) is not types.ModuleType or module.__dict__.get("__name__") != "_ctypes":
        return
    base = module.__dict__.get("CFuncPtr")
    if isinstance(base, type):
        guard.core.gate_ctypes_calls(base)
    data = tuple(module.__dict__.get(name) for name in CTYPES_DATA_BASES)
    if all(isinstance(base, type) for base in data):
        guard.core.gate_ctypes_data(data)


#: ``_ctypes``'s data bases: making an instance of any of them (or of a subclass) needs ``ffi``
#: (``core_gate_ctypes_data`` in ``_core_gate.h``).
CTYPES_DATA_BASES = ("_SimpleCData", "Structure", "Union", "Array", "_Pointer")

#: ``_ctypes`` functions that reach raw memory with no audit event: a reference count changed
#: at will frees an object still in use.
CTYPES_RAW_CALLS = ("Py_INCREF", "Py_DECREF", "dlclose")


def guard_imp(guard, names) -> None:
    """A second copy of a guarded C module is guarded before anyone gets it.

    ``del sys.modules["posix"]`` followed by an import builds a fresh module
    from the interpreter's cached copy, with the original functions and no
    audit event. ``_imp.create_builtin``/``create_dynamic`` are how the import
    system (and anyone calling ``_imp`` directly) builds one; their results
    are guarded (by the core's gate, or inside the vault) before they are returned.
    """
    import _imp

    # Runs as capimport's own work: touch nothing of an object that is not exactly a module
    # (isinstance and getattr would run a caller's __class__/__name__ as capimport).
    def post_create(module, args):
        if type(module) is types.ModuleType and module.__dict__.get("__name__") in names:
            guard_module(guard, module)
        gate_ctypes_calls(guard, module)
        return module

    def post_exec(result, args):
        # Multi-phase modules (posix) get their functions at creation, the rest (environ) here.
        module = args[0] if args else None
        if type(module) is types.ModuleType and module.__dict__.get("__name__") in names:
            guard_module(guard, module)
        gate_ctypes_calls(guard, module)
        return result

    def no_check(frame, args, kwargs):
        return args, kwargs

    for attr, post in (("create_builtin", post_create), ("create_dynamic", post_create),
                       ("exec_builtin", post_exec), ("exec_dynamic", post_exec)):
        original = getattr(_imp, attr, None)
        if original is None or getattr(original, "_capimport_guard", False):
            continue
        key = f"_imp.{attr}"
        if guard.core is not None:
            replacement = guard.core.gate(original, "post", key, after=post)
        else:
            register(guard.vault, key, original, no_check, post)
            replacement = _public(guard.invoke, key, original)
        replace_everywhere(_imp, attr, replacement, original)


#: C modules this guard covers; imported lazily modules are guarded when they first load.
MODULES = ("_posixsubprocess", "posix", "_signal", "faulthandler", "readline", "_gdbm", "_dbm", "_sqlite3",
           "_posixshmem", "_multiprocessing", "_tkinter", "_ssl", "spwd", "_ctypes", "time", "pwd", "grp", "gc", "_socket")
