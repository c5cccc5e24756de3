"""Route 5: new interpreters run under the same policy.

Every process start that goes through ``_posixsubprocess.fork_exec``
(``subprocess``, ``asyncio`` subprocesses, ``os.popen``, multiprocessing's
``spawn`` and ``forkserver`` start methods), ``os.execv``/``execve`` (and so
``os.exec*p*``, ``os.spawn*``) or ``os.posix_spawn``/``posix_spawnp`` passes
the native guard, which
rewrites the command line of a *Python* child so that it starts under
capimport with the parent's configuration, mode, strictness and log::

    python [interpreter options] -m capimport --config C --mode M [--strict] [--log L] <rest>

where ``<rest>`` is what the child was asked to run (``script.py args``,
``-m module``, ``-c code`` as multiprocessing uses). A child interpreter
started with ``-S`` cannot import capimport and fails to start, and a command
line this module cannot parse is refused: fail closed.
``os.fork`` children keep the parent's hook (hooks survive fork). A program
started through a shell (``os.system``, ``shell=True``) is the shell, not
Python: holding ``process`` for a shell is holding it for every program.

A child is rewritten when it is *this environment's* Python: its executable
is this interpreter's file (same device and inode) and, found from the path
it is started by, the environment it will run in is this one (a venv's
``pyvenv.cfg`` beside or above the executable, else the prefix the file is
in). That is where capimport and the policy's distributions are. Any other
Python (named ``python``/``pythonX.Y``, a pyenv shim, this file in another
environment) is rewritten when it can import capimport, asked once per
interpreter, environment path and isolation flags (:func:`can_import_capimport`);
one that cannot (the base interpreter of this venv, the system's
``python3``, a venv being made: virtualenv asks each interpreter about
itself) starts as it is, since rewritten it would not start at all. Holding
``process`` for such an interpreter is holding it for every act, as for a
shell.
Subinterpreters (``_xxsubinterpreters.create``) need ``ffi``: Python-level
hooks do not follow into them (:mod:`capimport.guards.tamper`).
"""

from __future__ import annotations

import os
import re
import sys
from _thread import get_ident

from ..hook import _fd_path, which

#: Interpreter options that take a separate argument.
_WITH_ARG = {"-X", "-W", "--check-hash-based-pycs"}


def _same_file(a, b) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _text(value) -> str:
    """A command line's item, an environment entry or a path as str (bytes decoded as the OS does)."""
    return os.fsdecode(value) if isinstance(value, bytes) else str(value)


def _environment_of(path: str) -> str:
    """The environment an interpreter started as *path* runs in, as CPython finds it: a venv's
    folder (``pyvenv.cfg`` beside the executable or one folder up), else its file's prefix."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    for candidate in (folder, os.path.dirname(folder)):
        if os.path.isfile(os.path.join(candidate, "pyvenv.cfg")):
            return os.path.realpath(candidate)
    return os.path.dirname(os.path.dirname(os.path.realpath(path)))


_HERE: list = []


def runs_here(executable, argv0=None) -> bool:
    """True when *executable* (a path, bytes, or an open descriptor as ``os.execve`` takes one)
    is this interpreter's file and starts in this environment (see the module's docstring).

    CPython finds its environment from ``argv[0]`` when that holds a ``/``: either path naming
    this environment is enough. A descriptor is judged by its file alone (fail closed: a child
    rewritten that cannot import capimport does not start).
    """
    if type(executable) is int:
        return bool(sys.executable) and _same_file(executable, sys.executable)
    path = _text(executable)
    if path and "/" not in path:   # posix_spawnp's bare name: found on PATH, as it will be
        path = which(path) or path
    if not path or not sys.executable or not _same_file(path, sys.executable):
        return False
    if not _HERE:
        _HERE.append(_environment_of(sys.executable))
    names = [path]
    if argv0 is not None:
        argv0 = _text(argv0)
        names += [argv0] if "/" in argv0 else []
    for name in names:
        try:
            if _environment_of(name) == _HERE[0]:
                return True
        except (OSError, ValueError):
            return True   # cannot tell: rewritten (fail closed)
    return False


_PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?)?[a-z]?$")


def is_python(executable) -> bool:
    """A ``python``/``pythonX.Y`` name, or this interpreter's file (a descriptor: by its file)."""
    if type(executable) is int:
        target = _fd_path(executable)
        return bool(target and _PYTHON_NAME.match(os.path.basename(target))) or _same_file(executable, sys.executable)
    name = _text(executable)
    return bool(_PYTHON_NAME.match(os.path.basename(name))) or (bool(sys.executable) and _same_file(name, sys.executable))


#: (interpreter, PYTHONPATH, isolation flags) -> whether it imports capimport.
_IMPORTS: dict = {}
#: Threads asking an interpreter whether it imports capimport (can_import_capimport).
_PROBING: set = set()
#: The interpreter options that change what a child can import.
_ISOLATING = ("-I", "-E", "-s", "-S")


def can_import_capimport(executable, env, flags: tuple) -> bool:
    """Whether a Python child started as *executable* with *env* (None: this process's) and the
    isolation *flags* of its command line imports capimport: asked of the interpreter itself
    (once per key), as capimport's own work. Cannot tell: True (rewritten: fail closed)."""
    import subprocess

    executable = _text(executable)
    environment = dict(os.environ) if env is None else _env_dict(env)
    key = (executable, environment.get("PYTHONPATH"), environment.get("PYTHONHOME"), flags)
    found = _IMPORTS.get(key)
    if found is None:
        _PROBING.add(get_ident())   # the question's own child is asked as it is (rewrite)
        try:
            # Pipes, not /dev/null: the act is decided for whoever starts the child (the core
            # walks capimport's own Python like any other), and a pipe is everyone's.
            done = subprocess.run([executable, *flags, "-c", "import capimport"], env=environment,
                                  stdin=subprocess.PIPE, capture_output=True, timeout=60)
            found = done.returncode == 0
        except (OSError, ValueError, subprocess.SubprocessError):
            found = True
        finally:
            _PROBING.discard(get_ident())
        _IMPORTS[key] = found
    return found


def _env_dict(env) -> dict:
    if isinstance(env, dict):
        return {_text(k): _text(v) for k, v in env.items()}
    out = {}
    for item in env:
        key, _, value = _text(item).partition("=")
        out[key] = value
    return out


def first_runnable(candidates) -> object:
    """The candidate ``fork_exec`` will run: the first executable file among them (subprocess
    hands it every ``PATH`` folder joined to a bare name), else the first."""
    for candidate in candidates:
        try:
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        except (TypeError, ValueError):
            continue
    return candidates[0]


def _isolating(head: list) -> tuple:
    """The isolation flags (``_ISOLATING``) among an interpreter command line's single-letter ones."""
    letters = set("".join(a[1:] for a in head[1:] if a.startswith("-") and not a.startswith(("-X", "-W", "--"))))
    return tuple(flag for flag in _ISOLATING if flag[1] in letters)


def child_options(enforcer) -> list:
    config = enforcer.policy.config
    options = []
    if config.path:
        options += ["--config", config.path]
    options += ["--mode", enforcer.mode]
    if enforcer.strict:
        options.append("--strict")
    log = getattr(enforcer.reporter, "log_path", None)
    if log:
        options += ["--log", log]
    return options


_SIMPLE_FLAGS = set("bBdEhiIOqsSuvxPR")


def rewrite(argv, executable, options: list, env=None):
    """*argv* of a Python child rewritten to start under capimport (unchanged when it is not
    Python, or a Python of another environment that cannot import capimport). *env* is the
    child's environment (None: this process's).

    Raises PermissionError for a Python command line it cannot rewrite (fail closed).
    """
    if not argv or get_ident() in _PROBING or not is_python(executable):
        return argv
    here = runs_here(executable, argv[0])
    as_bytes = isinstance(argv[0], bytes)
    items = [_text(a) for a in argv]
    head = [items[0]]
    i = 1
    while i < len(items):
        arg = items[i]
        if arg in _WITH_ARG:
            head += items[i:i + 2]
            i += 2
            continue
        if arg.startswith(("-X", "-W")) and len(arg) > 2:
            head.append(arg)
            i += 1
            continue
        if arg in ("-c", "-m", "-", "--") or not arg.startswith("-") or arg.startswith("--"):
            break
        # Single-dash flags, possibly combined and possibly ending in -c/-m (-Bc, -Im, -cCODE).
        letters = arg[1:]
        cut = next((k for k, ch in enumerate(letters) if ch in "cm"), None)
        flags = letters if cut is None else letters[:cut]
        if "V" in flags or "h" in flags or "?" in flags:
            return argv  # prints the version or the help and exits: runs no code
        if not set(flags) <= _SIMPLE_FLAGS:
            raise PermissionError(f"capimport: cannot start the Python child {items!r} under capimport "
                                  f"(unknown option {arg!r}); denied (fail closed)")
        if flags:
            head.append("-" + flags)
        if cut is None:
            i += 1
            continue
        items[i] = "-" + letters[cut:]   # "-c", "-m", "-cCODE" or "-mMODULE"
        break
    if not here and not can_import_capimport(executable, env, _isolating(head)):
        return argv
    rest = items[i:]
    # A child asking for capimport itself still gets the parent's options first: a nested
    # "-m capimport --mode record" then fails to weaken the running policy (enable refuses).
    if not rest or rest[0] in ("--version", "--help", "--help-env", "--help-xoptions", "--help-all"):
        return argv  # an interactive child, or one that only prints: nothing to run
    if rest[0] == "--":
        rest = rest[1:]
    new = head + ["-m", "capimport"] + options + (["--"] if rest and not rest[0].startswith("-") else []) + rest
    return [os.fsencode(a) for a in new] if as_bytes else new
