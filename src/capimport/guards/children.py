"""Route 5: new interpreters run under the same policy.

Every process start that goes through ``_posixsubprocess.fork_exec``
(``subprocess``, ``asyncio`` subprocesses, ``os.popen``, multiprocessing's
``spawn`` and ``forkserver`` start methods) passes the native guard, which
rewrites the command line of a *Python* child so that it starts under
capimport with the parent's configuration, mode, strictness and log::

    python [interpreter options] -m capimport --config C --mode M [--strict] [--log L] <rest>

where ``<rest>`` is what the child was asked to run (``script.py args``,
``-m module``, ``-c code`` as multiprocessing uses). A child interpreter
started with ``-S`` cannot import capimport and fails to start: fail closed.
``os.fork`` children keep the parent's hook (hooks survive fork).

A child is recognised as Python when its executable is this interpreter (same
file, or same device and inode), or is named ``python``/``pythonX.Y``.
Subinterpreters (``_xxsubinterpreters.create``) need ``ffi``: Python-level
hooks do not follow into them (:mod:`capimport.guards.tamper`).
"""

from __future__ import annotations

import os
import re
import sys

_PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?)?[a-z]?$")
#: Interpreter options that take a separate argument.
_WITH_ARG = {"-X", "-W", "--check-hash-based-pycs"}


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def is_python(executable) -> bool:
    if isinstance(executable, bytes):
        executable = os.fsdecode(executable)
    executable = str(executable)
    if os.path.basename(executable) and _PYTHON_NAME.match(os.path.basename(executable)):
        return True
    return bool(sys.executable) and _same_file(executable, sys.executable)


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


def rewrite(argv, executable, options: list):
    """*argv* of a Python child rewritten to start under capimport (unchanged when not Python)."""
    if not argv or not is_python(executable):
        return argv
    as_bytes = isinstance(argv[0], bytes)
    items = [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in argv]
    i = 1
    while i < len(items):
        arg = items[i]
        if arg in _WITH_ARG:
            i += 2
            continue
        if arg in ("-c", "-m") or arg == "-" or not arg.startswith("-") or arg == "--":
            break
        if arg.startswith("-") and ("c" in arg[1:] or "m" in arg[1:]) and not arg.startswith("--"):
            break  # combined flags ending in -c/-m, e.g. -Bc: leave them to the runner
        i += 1
    if i + 1 < len(items) and items[i] == "-m" and items[i + 1] == "capimport":
        return argv  # already under capimport
    if i >= len(items):
        return argv  # an interactive child: nothing to run
    new = items[:i] + ["-m", "capimport"] + options + (["--"] if not items[i].startswith("-") else []) + items[i:]
    return [os.fsencode(a) for a in new] if as_bytes else new
