"""Route 3: SQL that creates files without an audit event (``ATTACH``, ``VACUUM INTO``).

Opening a database raises the ``sqlite3.connect`` audit event (``fs`` on its
file: :func:`capimport.hook.sqlite_targets`). On an open connection, even a
``:memory:`` one, ``ATTACH 'path'`` and ``VACUUM INTO 'path'`` then create
files with no event at all. SQLite's authorizer sees both before anything
happens (action ``SQLITE_ATTACH``, with the file name as written, or none when
the name is an expression such as a bound parameter), so every connection gets
capimport's authorizer:

* ``sqlite3.Connection.__init__`` is replaced on the type, which is immutable
  from Python. :func:`capimport._speedups.seal_sqlite_connection` sets it
  through the type machinery, so ``sqlite3.connect()``, ``Connection(...)``,
  subclasses and a second ``conn.__init__(...)`` all run it: the original
  runs in a vault, then the authorizer is installed.
* ``set_authorizer`` is replaced the same way. A callback the program sets
  runs *after* capimport's, which stays; ``set_authorizer(None)`` removes
  only the program's.

With the native core the authorizer is ``_core.sqlite_authorizer`` (C, deciding
in the core: ``capimport/_core_sqlite.h``); without it, the Python one below.
The authorizer decides ``fs`` (``fs-readonly`` for a ``mode=ro`` URI) on the
attached file, for the code that runs the statement (``fs`` on ``/`` when the
name is an expression: which file it will be is not known yet); the folder PRAGMAs
(``temp_store_directory``, ``data_store_directory``) are ``fs`` on the
folder. A denial makes SQLite refuse the statement ("not authorized") and is
reported like every other denial.

Without the C accelerator, and on CPython 3.9 (whose ``Connection`` is a
static type), the two replacements go into the type's dict directly and
``sqlite3.connect`` is wrapped in place; ``sqlite3.Connection(...)`` called
directly then gets no authorizer, and an authorizer a ``factory`` set in its
``__init__`` is replaced by capimport's (docs/threat-model.md).
"""

from __future__ import annotations

import os
import sys

from ..capabilities import FS
from ..errors import CapabilityError
from ..hook import SQLITE_ALWAYS_URI, Lazy, path_target, sqlite_targets
from ._base import exact_fspath, put_in_type_dict, register

SQLITE_OK = 0
SQLITE_DENY = 1
SQLITE_PRAGMA = 19
SQLITE_ATTACH = 24
#: PRAGMAs whose value is a folder SQLite creates files in.
DIRECTORY_PRAGMAS = frozenset({"temp_store_directory", "data_store_directory"})
#: Argument types Connection.__init__ takes that call no Python code when the C code reads them.
_PLAIN = (str, bytes, int, float, bool, type(None), type)

_getframe = sys._getframe


def _authorizers(guard):
    """``authorizer_for(user_callback)``: capimport's check first, then the program's callback."""
    decide = guard.enforcer.decide

    def allowed(action, arg1, arg2, frame) -> bool:
        # No "capimport's own work" shortcut: capimport never attaches a database or moves
        # SQLite's directories, and busy() cannot tell its frames from a callback they reach.
        if action == SQLITE_ATTACH and arg1 is None:
            # The file is an expression (a bound parameter, a concatenation): SQLite names it only
            # when the statement runs, after the authorizer. Any file: fs on the whole file
            # system, the root (fail closed; only unscoped fs, or a scope of "/", holds it).
            checks = [(FS, Lazy(path_target, os.sep), "sqlite ATTACH")]
            what = "ATTACH or VACUUM INTO a file named by an expression (a bound parameter)"
        elif action == SQLITE_ATTACH:
            checks = [(capability, Lazy(path_target, value), "sqlite ATTACH")
                      for capability, value in sqlite_targets(arg1)]
            what = f"ATTACH or VACUUM INTO {arg1!r}"
        else:
            checks = [(FS, Lazy(path_target, arg2), f"PRAGMA {arg1}")]
            what = f"PRAGMA {arg1} = {arg2!r}"
        if not checks:
            return True
        try:
            decide(checks, frame, lambda: what)
        except CapabilityError:
            return False
        return True

    def authorizer_for(user):
        def authorize(action, arg1, arg2, dbname, source):
            if action == SQLITE_ATTACH or (action == SQLITE_PRAGMA and arg2 and type(arg1) is str
                                          and arg1.lower() in DIRECTORY_PRAGMAS):
                if not allowed(action, arg1, arg2, _getframe(1)):
                    return SQLITE_DENY
            if user is None:
                return SQLITE_OK
            return user(action, arg1, arg2, dbname, source)
        return authorize

    return authorizer_for


def _init_checker(frame, args, kwargs):
    if not args or any(type(v) not in _PLAIN for v in args[1:]) \
            or any(type(v) not in _PLAIN for v in kwargs.values()):
        raise TypeError("capimport: sqlite3.Connection(): unexpected argument type")
    return args, kwargs


def _plain_database(args, kwargs):
    """The database path-like converted once, outside the vault (``__fspath__`` is caller code)."""
    if args and type(args[0]) not in (str, bytes):
        args = (exact_fspath(args[0]),) + tuple(args[1:])
    elif "database" in kwargs and type(kwargs["database"]) not in (str, bytes):
        kwargs = dict(kwargs, database=exact_fspath(kwargs["database"]))
    return args, kwargs


def _reads_uris(module) -> bool:
    """True when this SQLite build reads every ``file:`` name as a URI (``SQLITE_USE_URI``)."""
    try:
        connection = module.connect(":memory:")
        try:
            options = {row[0] for row in connection.execute("PRAGMA compile_options")}
        finally:
            connection.close()
    except Exception:
        return False
    return "USE_URI" in options or "USE_URI=1" in options


def _sealer():
    """The C helper, when the accelerator is in use (attribution decides: built, and not
    switched off with ``CAPIMPORT_PURE_PYTHON``)."""
    from ..attribution import _speedups
    return getattr(_speedups, "seal_sqlite_connection", None)


def guard_module(guard, module, put_plain) -> None:
    """Give every connection of this ``_sqlite3`` module capimport's authorizer, for good."""
    connection_type = getattr(module, "Connection", None)
    if not isinstance(connection_type, type):
        return
    original_init = connection_type.__dict__.get("__init__")
    original_set = connection_type.__dict__.get("set_authorizer")
    if original_init is None or original_set is None or getattr(original_set, "_capimport_guard", False):
        return
    SQLITE_ALWAYS_URI[0] = guard.internal(_reads_uris, module)
    # With the core, the authorizer is its C object: no Python decides, so nothing a distribution
    # reaches from these functions' globals (the enforcer) turns the check off.
    authorizer_for = guard.core.sqlite_authorizer if guard.core is not None else _authorizers(guard)
    tag = f"#{id(connection_type)}"
    init_key, set_key = "sqlite3.Connection.__init__" + tag, "sqlite3.Connection.set_authorizer" + tag

    def install(result, args):
        original_set(args[0], authorizer_for(None))
        return result

    def set_checker(frame, args, kwargs):
        if len(args) + len(kwargs) != 2 or (kwargs and "authorizer_callback" not in kwargs):
            raise TypeError("set_authorizer() takes exactly one argument (the callback or None)")
        callback = args[1] if len(args) > 1 else kwargs["authorizer_callback"]
        if callback is not None and not callable(callback):
            raise TypeError("set_authorizer(): the authorizer must be callable or None")
        return (args[0], authorizer_for(callback)), {}

    register(guard.vault, init_key, original_init, _init_checker, install)
    register(guard.vault, set_key, original_set, set_checker)
    invoke = guard.invoke

    def __init__(self, *args, **kwargs):
        args, kwargs = _plain_database(args, kwargs)
        invoke(init_key, (self,) + tuple(args), kwargs)

    def set_authorizer(self, *args, **kwargs):
        return invoke(set_key, (self,) + args, kwargs)

    __init__.__doc__ = getattr(original_init, "__doc__", None)
    set_authorizer.__doc__ = getattr(original_set, "__doc__", None)
    __init__._capimport_guard = set_authorizer._capimport_guard = True
    seal = _sealer()
    if seal is not None:
        try:
            seal(connection_type, __init__, set_authorizer)
            return
        except (TypeError, RuntimeError):
            pass   # a static type (3.9): below
    guard.internal(put_in_type_dict, connection_type, {"__init__": __init__, "set_authorizer": set_authorizer})
    # The type's C init slot is unchanged, so sqlite3.connect() installs the authorizer itself
    # (after a factory's __init__ ran: an authorizer that factory set is replaced by capimport's).
    original_connect = getattr(module, "connect", None)
    if original_connect is not None:
        def connect(*args, **kwargs):
            connection = original_connect(*args, **kwargs)
            invoke(set_key, (connection, None), {})
            return connection
        connect.__doc__ = getattr(original_connect, "__doc__", None)
        put_plain("connect", connect, original_connect)
