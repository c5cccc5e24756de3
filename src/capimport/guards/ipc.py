"""Route 3: POSIX shared memory and named semaphores, other programs' objects reached by name.

On Linux, glibc keeps both as files: ``shm_open("/name")`` opens ``/dev/shm/name`` and
``sem_open("/name")`` maps ``/dev/shm/sem.name``. The C functions behind them raise no audit
event, so a distribution granted nothing could read, rewrite or delete another program's
shared memory, hold or release another program's semaphore, or delete it.

* ``_posixshmem.shm_open``/``shm_unlink`` (behind ``multiprocessing.shared_memory``) are
  replaced by glibc's own implementation, an ``open``/``unlink`` of the file: the ``open`` and
  ``os.remove`` events decide them as that file. The replacement holds no original.
* ``_multiprocessing.sem_unlink(name)`` and ``SemLock._rebuild(handle, kind, maxvalue, name)``
  (which opens a semaphore by name: how a spawned child gets its parent's lock) are gated as
  ``fs`` on the semaphore's file. The core's path gate takes the name and makes the file name
  itself (its ``prefix`` option), so nothing in Python computes what is decided.
* ``_rebuild`` with no name uses the ``handle`` it is given as a pointer to a ``sem_t``:
  ``release()`` then adds one at any address the caller picks, ``acquire()`` takes one away.
  That is raw memory: it needs ``ffi``.

A semaphore this process has mapped is its own (``hook.mapped_semaphore``): multiprocessing's
locks under the spawn and forkserver start methods are unlinked by a finalizer, from whatever
stack runs it, and that needs nothing. Making a new named semaphore needs nothing either:
``SemLock`` creates it with ``O_EXCL``, so it can never open one that exists.
"""

from __future__ import annotations

import errno
import os
import sys

from ..capabilities import FFI, FS
from ..hook import SEMAPHORE_FILES, Lazy, path_target
from ._base import builtin_shaped

#: Where POSIX shared memory lives (glibc's shm_open opens a file there), or "" elsewhere.
SHM_DIR = "/dev/shm/" if sys.platform.startswith("linux") and os.path.isdir("/dev/shm") else ""

SEM_UNLINK_API = "_multiprocessing.sem_unlink"
SEM_REBUILD_API = "_multiprocessing.SemLock._rebuild"


def _shm_path(name) -> str:
    """The file glibc's ``shm_open``/``shm_unlink`` use for *name* (``__shm_get_name``)."""
    if type(name) is not str:
        raise TypeError(f"shm name must be str, not {type(name).__name__}")
    base = name.lstrip("/")
    if not base or "/" in base or base in (".", ".."):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), name)
    return SHM_DIR + base


def shm_open(path, flags, mode=0o777):
    """``_posixshmem.shm_open`` as glibc implements it: an ``open`` of ``/dev/shm/<name>``
    (``O_NOFOLLOW | O_CLOEXEC``), so the ``open`` event decides it like any file (the C
    function raises none: another program's shared memory, read or rewritten). It holds no
    original to be fetched from it."""
    return os.open(_shm_path(path), flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def shm_unlink(path):
    """``_posixshmem.shm_unlink`` as glibc implements it: ``os.unlink`` of ``/dev/shm/<name>``."""
    os.unlink(_shm_path(path))


def _name_gate(api: str, index: int, names: tuple) -> tuple:
    """The core's path gate on a semaphore's name: ``fs`` on its file, ``ffi`` without a name."""
    return ("path", {"api": api, "capability": FS, "index": index, "names": names, "prefix": SEMAPHORE_FILES})


def _name_checker(guard, api: str, index: int, names: tuple):
    """The fallback's twin of :func:`_name_gate` (``prefixed_name`` in ``_core_gate.h``)."""
    decide = guard.enforcer.decide
    none = Lazy(lambda: None)

    def check(frame, args, kwargs):
        name = args[index] if len(args) > index else next((kwargs[n] for n in names if n in kwargs), None)
        if name is None:   # a raw handle: a pointer into memory
            if not guard.busy():
                decide([(FFI, none, api)], frame, api)
            return args, kwargs
        if not isinstance(name, str):
            raise TypeError(f"capimport: {api} takes a str name here")
        file = SEMAPHORE_FILES + str.lstrip(name, "/")   # str's own method: a subclass runs nothing
        if not guard.busy():
            decide([(FS, Lazy(path_target, file, None), api)], frame, lambda: f"{api}({str.__repr__(name)})")
        return args, kwargs

    return check


def _as_classmethod(public, original):
    """*public* as the type's classmethod: the method :func:`~capimport.guards.native._as_method`
    makes, bound to the class instead of an instance (the original takes the class first)."""
    from .native import _as_method
    return classmethod(_as_method(public, original))


def guard_module(guard, module, put, replace_everywhere) -> dict:
    """Called by :func:`capimport.guards.native.guard_module` for ``_posixshmem`` and
    ``_multiprocessing`` (Linux only: elsewhere these are not files)."""
    from .native import guard_type_methods

    done: dict = {}
    if not SHM_DIR:
        return done
    if module.__name__ == "_posixshmem":
        for attr, replacement in (("shm_open", shm_open), ("shm_unlink", shm_unlink)):
            original = getattr(module, attr, None)
            if original is not None and not getattr(original, "_capimport_guard", False):
                done[f"_posixshmem.{attr}"] = replace_everywhere(module, attr, builtin_shaped(replacement, original),
                                                                 original)
        return done
    put("sem_unlink", _name_gate(SEM_UNLINK_API, 0, ("name",)), lambda: _name_checker(guard, SEM_UNLINK_API, 0, ("name",)))
    semlock = module.__dict__.get("SemLock")
    if isinstance(semlock, type):
        # _rebuild(cls, handle, kind, maxvalue, name): the class comes first
        done.update(guard_type_methods(guard, semlock, {"_rebuild": [(
            _name_gate(SEM_REBUILD_API, 4, ("name",)), lambda: _name_checker(guard, SEM_REBUILD_API, 4, ("name",)),
            None)]}, _as_classmethod))
    return done
