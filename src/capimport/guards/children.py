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

A child is recognised as Python when its executable is this interpreter (same
file, or same device and inode), or is named ``python``/``pythonX.Y``.
Subinterpreters (``_xxsubinterpreters.create``) need ``ffi``: Python-level
hooks do not follow into them (:mod:`capimport.guards.tamper`).
"""

from __future__ import annotations

import os
import re
import sys

from ..hook import _fd_path

_PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?)?[a-z]?$")
#: Interpreter options that take a separate argument.
_WITH_ARG = {"-X", "-W", "--check-hash-based-pycs"}


def _same_file(a, b) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def is_python(executable) -> bool:
    """True for this interpreter's file or a ``python``/``pythonX.Y`` name (an int is an open
    file descriptor, as ``os.execve`` takes it: judged by the file it is open on)."""
    if type(executable) is int:
        return _fd_is_python(executable)
    if isinstance(executable, bytes):
        executable = os.fsdecode(executable)
    executable = str(executable)
    if os.path.basename(executable) and _PYTHON_NAME.match(os.path.basename(executable)):
        return True
    return bool(sys.executable) and _same_file(executable, sys.executable)


def _fd_is_python(fd: int) -> bool:
    target = _fd_path(fd)
    if target and _PYTHON_NAME.match(os.path.basename(target)):
        return True
    return bool(sys.executable) and _same_file(fd, sys.executable)   # os.stat takes a descriptor too


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


def rewrite(argv, executable, options: list):
    """*argv* of a Python child rewritten to start under capimport (unchanged when not Python).

    Raises PermissionError for a Python command line it cannot rewrite (fail closed).
    """
    if not argv or not is_python(executable):
        return argv
    as_bytes = isinstance(argv[0], bytes)
    items = [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in argv]
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
    rest = items[i:]
    # A child asking for capimport itself still gets the parent's options first: a nested
    # "-m capimport --mode record" then fails to weaken the running policy (enable refuses).
    if not rest or rest[0] in ("--version", "--help", "--help-env", "--help-xoptions", "--help-all"):
        return argv  # an interactive child, or one that only prints: nothing to run
    if rest[0] == "--":
        rest = rest[1:]
    new = head + ["-m", "capimport"] + options + (["--"] if rest and not rest[0].startswith("-") else []) + rest
    return [os.fsencode(a) for a in new] if as_bytes else new
