"""Reads and writes through a file descriptor, which raise no audit event.

capimport decides when a file or a socket is opened (the ``open`` and ``socket.connect``
events); what is then read or written through its descriptor raises nothing. A descriptor is a
small number anyone in the process can name, so a distribution granted nothing could walk
``3..1024`` with ``os.fstat`` and write the application's open log file, read its open database,
or send on its connected sockets. ``os.read``/``write``, ``pread``/``pwrite``,
``readv``/``writev``, ``preadv``/``pwritev``, ``sendfile``, ``copy_file_range`` and ``splice``
are therefore decided as the open they ride on: a regular file's descriptor as an ``fs``
(written) or ``fs-readonly`` (read) act on that file, a connected socket as a ``net`` act on
its peer. Pipes, terminals, unnamed socket pairs and anonymous memory are free: making them was
decided (a child's pipes come with ``process``) or needs nothing (``os.pipe``).

With the native core these are its ``fd`` gates (``capimport/_core_gate.h``); the checker
below is the pure-Python fallback. File objects (``open(fd)``, ``os.fdopen``, ``io.FileIO``)
raise the ``open`` event with the descriptor and are decided there; socket objects made from
a descriptor raise ``socket.__new__``. What is not covered: an object another party opened,
reached through a module's globals (``docs/threat-model.md``).
"""

from __future__ import annotations

from ..capabilities import FS, FS_READONLY, NET
from ..hook import Lazy, fd_file_target, fd_peer_target

#: name -> (position of the descriptor written, of the one read, their keyword names).
CALLS: dict[str, tuple[int, int, tuple]] = {
    "read": (-1, 0, ()), "pread": (-1, 0, ()), "readv": (-1, 0, ()), "preadv": (-1, 0, ()),
    "write": (0, -1, ()), "pwrite": (0, -1, ()), "writev": (0, -1, ()), "pwritev": (0, -1, ()),
    "sendfile": (0, 1, ("out_fd", "in_fd")),
    "copy_file_range": (1, 0, ("dst", "src")),
    "splice": (1, 0, ("dst", "src")),
}


def gate(api: str, written: int, read: int, names: tuple) -> tuple:
    """The core's gate for one of :data:`CALLS`."""
    return ("fd", {"api": api, "index": written, "read_index": read, "names": names})


def checker(guard, api: str, written: int, read: int, names: tuple):
    """The fallback's check: the same two checks per descriptor as the core's gate."""
    decide = guard.enforcer.decide

    def check(frame, args, kwargs):
        fds = []
        for position, (index, capability) in enumerate(((written, FS), (read, FS_READONLY))):
            if index < 0:
                continue
            fd = args[index] if len(args) > index else kwargs.get(names[position]) if names else None
            if fd is None:
                continue   # the original refuses the call
            if type(fd) is not int:   # an __index__ of the caller's would run after the decision
                raise TypeError(f"capimport: {api} takes an int file descriptor here")
            fds.append((fd, capability))
        if not fds or guard.busy() or guard.plain(frame):
            return args, kwargs
        checks = []
        for fd, capability in fds:
            checks.append((capability, Lazy(guard.internal, fd_file_target, fd), api))
            checks.append((NET, Lazy(guard.internal, fd_peer_target, fd), api))
        decide(checks, frame, lambda: f"{api}({', '.join(str(fd) for fd, _ in fds)})")
        return args, kwargs

    return check


def guard_posix(guard, put) -> None:
    """Called by :func:`capimport.guards.native.guard_module` for ``posix``."""
    for name, (written, read, names) in CALLS.items():
        api = f"os.{name}"
        put(name, gate(api, written, read, names),
            lambda api=api, w=written, r=read, n=names: checker(guard, api, w, r, n))


def install(guard) -> list:
    """Nothing of its own: ``posix`` is guarded by :mod:`capimport.guards.native` (one sweep)."""
    return [f"os.{name}" for name in CALLS]
