"""The audit hook (PEP 578): the one place where CPython's audit events enter capimport.

Its first statement is a set test on the event name, so irrelevant events
(and the nested ``sys._getframe``/``object.__getattr__`` events the walk
itself raises) leave at once. A relevant event is turned into checks, each a
capability and a lazily computed target, by the scope extractors below, and
handed to the enforcer's single decision point.

Everything specific to "a Python hook" lives in this module so that it can be
swapped for a native one: :func:`install` is the only entry point.
"""

from __future__ import annotations

import errno
import os
import re
import _socket
import stat
import sys
from typing import Callable, Optional

from .scopes import resolve_path
from .table.events import (ENV, ENV_READONLY, ENVIRON_FILE_PATTERN, EVENTS, FS, FS_READONLY, OPEN, PROCESS,
                           WRITE_FLAGS_NAMES)

_WRITE_FLAGS = 0
for _name in WRITE_FLAGS_NAMES:
    _WRITE_FLAGS |= getattr(os, _name, 0)
_ENVIRON_FILE = re.compile(ENVIRON_FILE_PATTERN)
_AF_UNIX = getattr(_socket, "AF_UNIX", 1)
try:
    from fcntl import F_GETFL as _F_GETFL, fcntl as _fcntl
except ImportError:   # Windows: no descriptor is told read-only, so the wider capability is asked
    _F_GETFL, _fcntl = 0, None

#: Every event name the hook looks at.
WATCHED = frozenset(EVENTS)


class Lazy:
    """A target computed once, on first use (most checks never need it)."""

    __slots__ = ("fn", "args", "done", "value")

    def __init__(self, fn: Callable, *args):
        self.fn = fn
        self.args = args
        self.done = False
        self.value = None

    def get(self):
        if not self.done:
            self.value = self.fn(*self.args)
            self.done = True
        return self.value


_NONE = Lazy(lambda: None)
_NONE.get()


# ----------------------------------------------------------------------------- targets


def _fd_path(fd: int) -> Optional[str]:
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return link if link.startswith("/") and " (deleted)" not in link else None


def path_target(value, dir_fd=None) -> Optional[str]:
    """The resolved absolute path an event argument names (None: not a path we can check)."""
    if value is None:
        value = "."
    if isinstance(value, int) and not isinstance(value, bool):
        path = _fd_path(value)
        if path is None or path.startswith("/dev/"):
            return None  # a pipe, socket, terminal or other non-file descriptor
        return os.path.realpath(path)
    if not isinstance(value, (str, bytes)):
        value = os.fspath(value)
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if dir_fd is not None and isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(value):
        base = _fd_path(dir_fd)
        if base is None:
            return "/\0unresolvable-dir_fd"  # fail closed: matches no scope
        return resolve_path(os.path.join(base, value))
    return resolve_path(value)


def glob_target(pattern) -> Optional[str]:
    if isinstance(pattern, bytes):
        pattern = os.fsdecode(pattern)
    pattern = str(pattern)
    literal = []
    for part in pattern.split("/"):
        if any(ch in part for ch in "*?["):
            break
        literal.append(part)
    head = "/".join(literal) or ("/" if pattern.startswith("/") else ".")
    return resolve_path(head)


def addr_target(addr):
    """``(host, port)`` of a socket address; AF_UNIX paths give ``(path, None)``."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        return (str(host), port if isinstance(port, int) else _port(port))
    if isinstance(addr, (str, bytes)):
        return (os.fsdecode(addr) if isinstance(addr, bytes) else addr, None)
    return ("?", None)


def _port(port) -> Optional[int]:
    if port is None:
        return None
    if isinstance(port, bytes):
        port = port.decode("ascii", "replace")
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    try:
        return _socket.getservbyname(text)
    except OSError:
        return None


def program_target(program, env=None) -> str:
    """The resolved executable a process event names (a bare name is looked up on PATH)."""
    if isinstance(program, (list, tuple)):
        program = program[0] if program else ""
    if type(program) is int:  # os.execve(fd, ...): the file the descriptor is open on
        path = _fd_path(program)
        return os.path.realpath(path) if path else f"<file descriptor {program}>"   # else: no scope matches
    if isinstance(program, bytes):
        program = os.fsdecode(program)
    program = os.fspath(program) if not isinstance(program, str) else program
    if "/" not in program:
        path = None
        if isinstance(env, dict):
            path = env.get("PATH", env.get(b"PATH"))
            if isinstance(path, bytes):
                path = os.fsdecode(path)
        found = which(program, path)
        return os.path.realpath(found) if found else program
    return os.path.realpath(program)


def which(program: str, path: Optional[str] = None) -> Optional[str]:
    """``shutil.which(program, path=path)``, without importing ``shutil`` while deciding.

    ``shutil`` also loads ``zlib``, ``bz2`` and ``lzma``: 2 ms of every start when it was warmed
    for this one call. The search is the same: ``PATH`` (else the system's default), each folder
    once, the first executable file that is not a folder (tests/native/test_core_paths.py compares
    the two).
    """
    if sys.platform == "win32":   # PATHEXT and the current folder: shutil's own rules
        import shutil   # warmed by enforcer.enable there
        return shutil.which(program, path=path)
    if os.path.dirname(program):
        return program if _executable_file(program) else None
    if path is None:
        path = os.environ.get("PATH")
        if path is None:
            try:
                path = os.confstr("CS_PATH")
            except (AttributeError, ValueError):
                path = os.defpath
    for folder in dict.fromkeys(path.split(os.pathsep)) if path else ():
        candidate = os.path.join(folder, program)
        if _executable_file(candidate):
            return candidate
    return None


def _executable_file(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.F_OK | os.X_OK) and not os.path.isdir(path)


#: Set by :mod:`capimport.guards.sqlite` once SQLite's build is known: True when it reads every
#: ``file:`` name as a URI (``SQLITE_USE_URI``), so the literal reading needs no check.
SQLITE_ALWAYS_URI: list = [False]


def sqlite_targets(name) -> list:
    """``[(capability, path)]`` that opening the SQLite database *name* acts on; [] for memory.

    SQLite reads a name that starts with ``file:`` as a URI (``uri=True``, or
    always in builds with ``SQLITE_USE_URI``, as most are): an optional
    ``//localhost`` authority, a percent-encoded path that ends at ``?`` or
    ``#``, and ``mode=ro|rw|rwc|memory``. The path is decoded here exactly so
    (``..%2f`` is ``../``). Unless the build always reads URIs, the same name
    could also be taken literally, as a relative file name in an existing
    folder: that file is checked too, so whichever way SQLite reads it, the
    act is covered (fail closed).
    """
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not isinstance(name, str):
        return [(FS, name)]
    if name in (":memory:", ""):
        return []
    if not name.startswith("file:"):
        return [(FS, name)]
    out = []
    uri = name[5:].partition("#")[0]   # the fragment first: a "?" after "#" is not a query
    path, _, query = uri.partition("?")
    if path.startswith("//"):
        authority, slash, rest = path[2:].partition("/")
        path = slash + rest
        if authority not in ("", "localhost"):
            path = name   # SQLite refuses other authorities: the whole name is checked as a path
    params = {}
    for item in query.split("&"):
        key, _, value = item.partition("=")
        params[_percent_decode(key)] = _percent_decode(value)
    path = _percent_decode(path)
    mode = params.get("mode", "")
    if mode != "memory" and path not in ("", ":memory:"):
        readonly = mode == "ro" or params.get("immutable", "") not in ("", "0")
        out.append((FS_READONLY if readonly else FS, path))
    literal = os.path.abspath(name)
    if not SQLITE_ALWAYS_URI[0] and os.path.isdir(os.path.dirname(literal)):
        out.append((FS, literal))
    return out


def _percent_decode(text: str) -> str:
    """SQLite's URI decoding: ``%HH`` becomes that byte; anything else stays as it is."""
    if "%" not in text:
        return text
    data = bytearray()
    i = 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        if raw[i] == 0x25 and _is_hex(raw[i + 1:i + 3]):
            data.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            data.append(raw[i])
            i += 1
    return os.fsdecode(bytes(data))


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


def env_target(name) -> str:
    if isinstance(name, bytes):
        return os.fsdecode(name)
    return str(name)


def _plain(value):
    """Path-like objects converted once, here, outside the decision: ``__fspath__`` is code
    the acting distribution may control, and it must run (and be checked) as that code."""
    if value is None or isinstance(value, (str, bytes, int)):
        return value
    if isinstance(value, (list, tuple)):
        return value
    return os.fspath(value)


def checks_for(event: str, args: tuple) -> list:
    """``[(capability, Lazy target, api)]`` for one relevant event; [] when it needs no check."""
    spec = EVENTS[event]
    capability = spec.capability
    out = []
    if capability == OPEN:
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        mode = args[1] if len(args) > 1 else None
        writes = bool(flags & _WRITE_FLAGS) or (isinstance(mode, str) and any(c in mode for c in "wax+"))
        capability = FS if writes else FS_READONLY
        raw = _plain(args[0])
        # open(fd): decided as reads and writes through that descriptor are (a pipe is free)
        target = Lazy(fd_file_target if isinstance(raw, int) and not isinstance(raw, bool) else path_target, raw)
        out.append((capability, target, spec.api))
        # The environment is readable through /proc: that is an env-readonly act as well.
        if not writes:
            out.append((ENV_READONLY, Lazy(_environ_target, raw, target), spec.api))
        return out
    for scope in spec.scope:
        kind = scope[0]
        if kind == "path":
            value = args[scope[1]] if len(args) > scope[1] else None
            dir_fd = args[scope[2]] if scope[2] is not None and len(args) > scope[2] else None
            out.append((capability, Lazy(path_target, _plain(value), dir_fd), spec.api))
        elif kind == "addr":
            out.append((capability, Lazy(addr_target, args[scope[1]]), spec.api))
        elif kind == "hostport":
            host = args[scope[1]]
            port = args[scope[2]] if scope[2] is not None and len(args) > scope[2] else None
            out.append((capability, Lazy(lambda h, p: (env_target(h) if h is not None else "",
                                                       _port(p)), host, port), spec.api))
        elif kind == "program":
            env = args[3] if event == "subprocess.Popen" and len(args) > 3 else None
            value = args[scope[1]] if len(args) > scope[1] else ""
            if event == "subprocess.Popen" and value is None:
                value = args[1]
            out.append((capability, Lazy(program_target, _plain(value), env), spec.api))
        elif kind == "shell":
            out.append((capability, Lazy(program_target, "/bin/sh"), spec.api))
        elif kind == "env":
            out.append((capability, Lazy(env_target, args[scope[1]]), spec.api))
        elif kind == "socket":
            if len(args) > scope[1] and args[scope[1]] == _AF_UNIX:
                continue  # socketpair() and unix sockets: checked at connect/bind
            out.append((capability, _NONE, spec.api))
        elif kind == "glob":
            out.append((capability, Lazy(glob_target, args[scope[1]]), spec.api))
        elif kind == "mmap":
            out.append(_mmap_check(args[scope[1]], args[scope[2]], spec.api))
        elif kind == "ioctl":
            out.append(_ioctl_check(args[scope[1]], args[scope[2]], spec.api))
        elif kind == "pid":
            pid = args[scope[1]] if len(args) > scope[1] else 0
            if pid not in (0, os.getpid()) and len(args) > scope[2] and args[scope[2]] is not None:
                out.append((capability, _NONE, spec.api))
        elif kind == "sqlite":
            db = _plain(args[scope[1]]) if args else ":memory:"
            for sqlite_capability, value in sqlite_targets(db):
                out.append((sqlite_capability, Lazy(path_target, value), spec.api))
    if not spec.scope:
        out.append((capability, _NONE, spec.api))
    return out


#: ``mmap`` access values whose mapping never writes the file.
_MAP_READS = (1, 3)   # ACCESS_READ, ACCESS_COPY (private: writes stay in memory)
#: ioctl requests that type into a terminal (asm-generic values; the core uses the platform's).
TERMINAL_INPUT_NAMES = {0x5412: "TIOCSTI (typing into the terminal)", 0x541C: "TIOCLINUX"}
_TERMINAL_INPUT = tuple(TERMINAL_INPUT_NAMES)
#: Old-style ioctl requests (no direction bits) that change no file: FIONREAD, FIONBIO,
#: FIONCLEX, FIOCLEX, FIOASYNC.
_IOCTL_FLAG_ONLY = (0x541B, 0x5421, 0x5450, 0x5451, 0x5452)
_IOC_DIR_READ = 2   # _IOC_DIR(request) == _IOC_READ: the kernel only copies data out


def _mmap_check(fd, access, api: str) -> tuple:
    """``mmap.mmap(fd, ...)``: the mapped file read or written as the open it rides on."""
    writes = access not in _MAP_READS and fd_writable(fd)
    return (FS if writes else FS_READONLY, Lazy(fd_file_target, fd), api)


def _ioctl_check(fd, request, api: str) -> tuple:
    """``fcntl.ioctl(fd, request)``: typing into a terminal is running a command; a request on
    a file is a read when it only copies data out, else a write."""
    if request in _TERMINAL_INPUT:
        return (PROCESS, Lazy(program_target, "/bin/sh"), api)
    reads = request in _IOCTL_FLAG_ONLY or (request >> 30) & 3 == _IOC_DIR_READ
    return (FS_READONLY if reads else FS, Lazy(fd_file_target, fd), api)


#: A target saying its check does not apply (an open that is not of an environ file, a descriptor
#: of another kind than the check's): see skip_target.
_SKIP = object()


def _proc_dev() -> Optional[int]:
    try:
        return os.stat("/proc/self/environ").st_dev
    except OSError:
        return None


_PROC_DEV = _proc_dev()


def _standard_streams() -> frozenset:
    """``(st_dev, st_ino)`` of the files standard input, output and error are when capimport
    starts: whoever started the process chose them (``app.py > out.log``), and every party
    already reads and writes them through ``sys.stdin``/``sys.stdout``; a descriptor call on
    them is not an act on a file (``fd_stat`` in ``_core.c``)."""
    found = set()
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return frozenset(found)


#: Snapshot taken before any application or distribution code runs (this module is imported first).
STANDARD_STREAMS = _standard_streams()


def _environ_target(raw, path_lazy: Lazy):
    """``"*"`` when the file opened is a process's environment (/proc/<pid>/environ), else skip.

    One ``stat`` tells whether the file lives on procfs at all (however it is named:
    symlinks, ``/dev/fd``, ``..``); only then is the path resolved and matched.
    """
    if _PROC_DEV is None or isinstance(raw, int):
        return _SKIP
    try:
        if os.stat(raw).st_dev != _PROC_DEV:
            return _SKIP
    except (OSError, ValueError, TypeError):
        return _SKIP  # nothing there to read (the open itself will fail)
    path = path_lazy.get()
    if isinstance(path, str) and _ENVIRON_FILE.match(path):
        return "*"  # the whole environment: only an env-readonly grant covering every name allows it
    return _SKIP


#: glibc's named semaphores: ``sem_open("/name")`` maps this file (``semaphore_files`` in _core.c).
SEMAPHORE_FILES = "/dev/shm/sem."


def mapped_semaphore(path) -> bool:
    """True when *path* is a named semaphore's file that this process has mapped now: one it
    made (multiprocessing's locks under spawn/forkserver unlink theirs at exit, from whatever
    stack runs the finalizer) or opened already with a grant. Removing it, or opening it
    again, touches only this process's own object. glibc maps a temporary file and links it
    under the name after, so ``/proc/self/maps`` is searched for the file's device and inode.
    False on any error (fail closed); ``mapped_semaphore`` in ``_core.c``."""
    if type(path) is not str or not path.startswith(SEMAPHORE_FILES) or "/" in path[len(SEMAPHORE_FILES):] \
            or len(path) == len(SEMAPHORE_FILES):
        return False
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return False
        fd = os.open("/proc/self/maps", os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return False
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return False
    finally:
        os.close(fd)
    device = b"%02x:%02x" % (os.major(st.st_dev), os.minor(st.st_dev))
    inode = b"%d" % st.st_ino
    for line in b"".join(chunks).split(b"\n"):
        fields = line.split(None, 5)   # address perms offset dev inode [pathname]
        if len(fields) >= 5 and fields[4] == inode and fields[3] == device:
            return True
    return False


def skip_target(target) -> bool:
    """True when a check's target says the check does not apply (not an environ file, a
    descriptor of another kind than the check's)."""
    return target is _SKIP


def _fd_stat(fd: int):
    """``os.fstat(fd)``, or None when there is nothing to decide: no such descriptor (the call
    it guards fails) or one of the standard streams as the process was started."""
    try:
        st = os.fstat(fd)
    except (OSError, OverflowError, ValueError):
        return None
    return None if (st.st_dev, st.st_ino) in STANDARD_STREAMS else st


def fd_writable(fd: int) -> bool:
    """Whether *fd* is open for writing (``O_WRONLY``/``O_RDWR``); True when it cannot be
    told (the call fails anyway), so the wider capability is asked."""
    try:
        return (_fcntl(fd, _F_GETFL) & os.O_ACCMODE) != os.O_RDONLY
    except (OSError, OverflowError, ValueError, TypeError):
        return True


def fd_file_target(fd: int):
    """The file a descriptor read or written through (``os.read``, ``os.write``) is open on,
    resolved as the open of that descriptor is; skip for a descriptor that is no file (a pipe,
    a socket, a terminal, ``memfd_create``'s anonymous memory), one of the standard streams or
    none at all (the call fails). A deleted file gives None: only an ``fs`` grant answers for it
    (``fd_file_target`` in ``_core.c``)."""
    st = _fd_stat(fd)
    if st is None or not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        return _SKIP
    try:
        if os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:"):
            return _SKIP
    except OSError:
        pass
    return path_target(fd)


def fd_peer_target(fd: int):
    """Who a socket descriptor talks to, as the ``socket.connect`` event shows it: ``(host,
    port)`` at the other end of a connected socket; for one with no peer that is bound (a
    listening server, a UDP socket), the address it is bound to, as ``socket.bind`` shows it
    (accepting on it or reading its datagrams is serving there). Skip for a descriptor that is
    no socket, one of an unnamed socket pair, or neither connected nor bound
    (``fd_peer_target`` in ``_core.c``)."""
    st = _fd_stat(fd)
    if st is None or not stat.S_ISSOCK(st.st_mode):
        return _SKIP
    try:
        sock = _socket.socket(fileno=fd)
    except (OSError, OverflowError, ValueError):
        return _SKIP
    try:
        family = sock.family
        try:
            address = sock.getpeername()
        except OSError as error:
            if error.errno != errno.ENOTCONN:
                return _SKIP
            address = sock.getsockname()
    except OSError:
        return _SKIP
    finally:
        sock.detach()
    if family == _AF_UNIX:
        return addr_target(address) if address else _SKIP
    if family not in (_socket.AF_INET, getattr(_socket, "AF_INET6", -1)) or not address[1]:
        return _SKIP   # another family was decided when it was made; port 0: not bound
    return addr_target(address)


# ----------------------------------------------------------------------------- installation


def make_hook(handle: Callable[[str, tuple], None], watched: frozenset = WATCHED) -> Callable:
    """The hook function: a set test, then *handle* for relevant events."""

    def capimport_audit_hook(event, args, _watched=watched, _handle=handle,
                             _frames=frozenset({"gi_frame", "cr_frame", "ag_frame", "tb_frame"})):
        if event not in _watched:
            return
        if event == "object.__getattr__" and args[1] not in _frames:
            return  # the walk's own f_code reads: only frame-exposing attributes matter (guards.tamper)
        _handle(event, args)

    return capimport_audit_hook


def install(handle: Callable[[str, tuple], None], watched: frozenset = WATCHED) -> Callable:
    """Install the hook for the rest of the process (audit hooks cannot be removed)."""
    hook = make_hook(handle, watched)
    sys.addaudithook(hook)
    return hook
