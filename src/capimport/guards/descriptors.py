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
decided (a child's pipes come with ``process``) or needs nothing (``os.pipe``); so are the
standard streams as the process was started (everyone writes them through ``print``).

Three calls change what other code reads or writes through a descriptor without asking:
``os.dup2(fd, 0)`` turns ``sys.stdin`` into a reader of the file *fd* is open on,
``os.login_tty(fd)`` does the same for all three streams, and ``os.lseek`` moves where the
opener reads or writes next; they are decided as opening that file in the mode *fd* is open
in (``fs`` when it is open for writing, else ``fs-readonly``). ``os.posix_fallocate`` grows
the file: a write.
``signal.set_wakeup_fd(fd)`` has the interpreter write a byte per signal to *fd*, and
``faulthandler`` writes tracebacks (file and function names a distribution can choose) to the
file it is given: writes. ``faulthandler`` looks up its file's descriptor itself, so the gate
does that lookup once, as the caller, and hands the original the number it decided.
(``mmap.mmap`` and ``fcntl.ioctl`` on a descriptor raise audit events, decided by the event
table's ``mmap``/``ioctl`` scopes.)

With the native core these are its ``fd`` gates (``capimport/_core_gate.h``); the checker
below is the pure-Python fallback. File objects (``open(fd)``, ``os.fdopen``, ``io.FileIO``)
raise the ``open`` event with the descriptor and are decided there; socket objects made from
a descriptor raise ``socket.__new__``. What is not covered: an object another party opened,
reached through a module's globals (``docs/threat-model.md``).
"""

from __future__ import annotations

import sys

from threading import get_ident as _get_ident

from ..capabilities import FS, FS_READONLY, NET
from ..hook import Lazy, fd_file_target, fd_peer_target, fd_writable

#: name -> (position of the descriptor written, of the one read, their keyword names).
CALLS: dict[str, tuple[int, int, tuple]] = {
    "read": (-1, 0, ()), "pread": (-1, 0, ()), "readv": (-1, 0, ()), "preadv": (-1, 0, ()),
    "write": (0, -1, ()), "pwrite": (0, -1, ()), "writev": (0, -1, ()), "pwritev": (0, -1, ()),
    "sendfile": (0, 1, ("out_fd", "in_fd")),
    "copy_file_range": (1, 0, ("dst", "src")),
    "splice": (1, 0, ("dst", "src")),
    "posix_fallocate": (0, -1, ()),   # grows the file: a write
}

#: name -> (position of the descriptor put in place, its keyword names): decided by its open mode.
BY_MODE: dict[str, tuple[int, tuple]] = {"dup2": (0, ("fd",)), "login_tty": (0, ("fd",)),
                                         "lseek": (0, ())}   # moves where the opener reads or writes next

#: faulthandler function -> position of its ``file`` argument.
TRACEBACK_FILES: dict[str, int] = {"enable": 0, "dump_traceback": 0, "dump_traceback_later": 2, "register": 1}

#: File objects handed to faulthandler, kept alive as faulthandler keeps them (it is given
#: their descriptor instead): (function, signal number or None) -> object.
_KEPT: dict = {}


def file_as_descriptor(name: str, index: int):
    """faulthandler's own lookup of where it writes (``faulthandler_get_fileno``: the file or
    ``sys.stderr``, an int as it is, else its ``fileno()`` after a ``flush()``), done once, as
    the caller: the descriptor decided is the one written, however often a file object's
    ``fileno()`` would answer differently."""
    def convert(args, kwargs):
        kwargs = dict(kwargs) if kwargs else {}
        positional = len(args) > index
        file = args[index] if positional else kwargs.get("file")
        if file is None:
            file = sys.stderr
            if file is None:
                raise RuntimeError("sys.stderr is None")
        if type(file) is int:
            fd = file
        else:
            fd = file.fileno()
            if type(fd) is not int:
                raise TypeError(f"capimport: faulthandler.{name} needs a file whose fileno() is an int")
            try:
                file.flush()
            except Exception:   # noqa: BLE001 - faulthandler ignores a failing flush too
                pass
            key = args[0] if name == "register" and args else kwargs.get("signum")
            _KEPT[(name, key if type(key) is int else None)] = file
        if positional:
            return args[:index] + (fd,) + tuple(args[index + 1:]), kwargs
        kwargs["file"] = fd
        return tuple(args), kwargs
    return convert


def gate(api: str, written: int, read: int, names: tuple, by_mode: bool = False) -> tuple:
    """The core's gate for one of :data:`CALLS` (``fd``) or :data:`BY_MODE` (``fd_mode``)."""
    return ("fd_mode" if by_mode else "fd", {"api": api, "index": written, "read_index": read, "names": names})


#: thread -> the descriptor the socket type's ``_accept`` last returned on it (the fallback's
#: twin of the core's ``accepted_fd``).
_ACCEPTED: dict = {}


def checker(guard, api: str, written: int, read: int, names: tuple, by_mode: bool = False,
            accepted: bool = False):
    """The fallback's check: the same two checks per descriptor as the core's gate
    (*accepted*: the connection ``_accept`` just made on this thread is free, once)."""
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
            if accepted and _ACCEPTED.pop(_get_ident(), None) == fd:
                continue
            if by_mode and not guard.internal(fd_writable, fd):
                capability = FS_READONLY
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
    for name, (index, names) in BY_MODE.items():
        api = f"os.{name}"
        put(name, gate(api, index, -1, names, by_mode=True),
            lambda api=api, i=index, n=names: checker(guard, api, i, -1, n, by_mode=True))


def guard_signal(guard, put, process_checker) -> None:
    """Called by :func:`capimport.guards.native.guard_module` for ``_signal``.
    ``pidfd_send_signal`` signals another process with no audit event (``os.kill`` has one):
    ``process``, as ``os.kill``."""
    api = "signal.set_wakeup_fd"
    put("set_wakeup_fd", gate(api, 0, -1, ("fd",)), lambda: checker(guard, api, 0, -1, ("fd",)))
    api = "signal.pidfd_send_signal"
    put("pidfd_send_signal", ("process", {"api": api}), lambda: process_checker(guard, api))


def guard_faulthandler(guard, put, helpers) -> None:
    """Called by :func:`capimport.guards.native.guard_module` for ``faulthandler``; *helpers*
    hands out the converters once per guard (the core accepts only those it saw installing)."""
    for name, index in TRACEBACK_FILES.items():
        api = f"faulthandler.{name}"
        convert = helpers(api, lambda name=name, index=index: file_as_descriptor(name, index))
        kind, options = gate(api, index, -1, ("file",))
        put(name, (kind, dict(options, before=convert)),
            lambda api=api, i=index: checker(guard, api, i, -1, ("file",)), convert)


#: What a socket object made from a descriptor is decided as: a connected socket's peer under
#: ``net`` (a distribution whose ``net`` is scoped to one host would otherwise send on the
#: application's connection to another), as ``os.write`` to that descriptor is.
SOCKET_API = "socket.socket"   # shown with the descriptor: socket.socket(8)


def guard_socket(guard, module) -> dict:
    """Called by :func:`capimport.guards.native.guard_module` for ``_socket``: the socket type's
    ``__init__`` (``socket.socket``'s own calls it by name; its ``fileno`` is the fifth
    argument counting ``self``), written through the immutable type's dict. Making an instance
    calls the type's slot instead, which the native core points at the dict's entry; the
    pure-Python fallback cannot, so there ``_socket.socket(fileno=n)`` stays open (known gap)."""
    from ._base import put_in_type_dict
    from .native import _as_method, _guarded

    cls = getattr(module, "socket", None)
    original = cls.__dict__.get("__init__") if isinstance(cls, type) else None
    accept = cls.__dict__.get("_accept") if isinstance(cls, type) else None
    if original is None or accept is None or getattr(original, "_capimport_guard", False):
        return {}
    kind, options = gate(SOCKET_API, 4, -1, ("fileno",))
    public = _guarded(guard, SOCKET_API, f"_socket.socket.__init__#{id(cls)}", original,
                      (kind, dict(options, accepted=True)),
                      lambda: checker(guard, SOCKET_API, 4, -1, ("fileno",), accepted=True))
    if guard.core is not None:
        entries = {"__init__": guard.core.method(public),
                   "_accept": guard.core.method(guard.core.gate(accept, "accept", "socket.accept"))}
    else:
        def accepting(self):
            fd, address = accept(self)
            _ACCEPTED[_get_ident()] = fd
            return fd, address
        accepting.__name__ = accepting.__qualname__ = "_accept"
        accepting._capimport_guard = True
        entries = {"__init__": _as_method(public, original), "_accept": accepting}
    guard.internal(put_in_type_dict, cls, entries)
    if guard.core is not None:
        guard.core.init_through_dict(cls)   # the instance-making slot calls the entry too
    return {"_socket.socket.__init__": 1, "_socket.socket._accept": 1}


def install(guard) -> list:
    """Nothing of its own: ``posix`` and ``_signal`` are guarded by
    :mod:`capimport.guards.native` (one sweep)."""
    return ([f"os.{name}" for name in (*CALLS, *BY_MODE)] + ["signal.set_wakeup_fd", "signal.pidfd_send_signal"]
            + [f"faulthandler.{name}" for name in TRACEBACK_FILES])
