"""CPython audit events (PEP 578) -> the capability they exercise and where their scope is.

Plain data, one entry per event, so that it can be reviewed like data and
imported by the static scanner and by coverage checks without importing the
run-time enforcer. Each entry is an :class:`EventSpec`:

``capability``
    One of the seven capability names, or ``OPEN`` for the ``open`` event,
    whose capability comes from its flags (``O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|
    O_APPEND`` mean ``fs``, anything else ``fs-readonly``).

``scope``
    How to read the scope from the event's arguments:

    ``("path", i, dir_fd_i)``  argument *i* is a path (str, bytes, PathLike or
                               an fd int); *dir_fd_i* is the index of its
                               ``dir_fd`` argument, or ``None``.
    ``("addr", i)``            argument *i* is a socket address.
    ``("hostport", h, p)``     arguments *h* and *p* are a host and a port
                               (*p* ``None``: no port, a DNS lookup).
    ``("program", i)``         argument *i* is the program (a path or a name).
    ``("shell",)``             the program is the shell (``/bin/sh``).
    ``("env", i)``             argument *i* is an environment variable name.
    ``("socket", i)``          argument *i* is the socket family (AF_UNIX
                               sockets are checked at connect/bind instead).
    ``("mmap", f, a)``         argument *f* is a descriptor mapped, *a* the access: decided as
                               the open it rides on, ``fs-readonly`` when the mapping cannot
                               write the file (``ACCESS_READ``/``ACCESS_COPY``, or a descriptor
                               open read-only); an anonymous mapping (-1) is free.
    ``("ioctl", f, r)``        argument *f* is a descriptor, *r* the request: ``TIOCSTI`` and
                               ``TIOCLINUX`` (typing into the terminal, which the shell runs
                               once the process exits) need ``process`` as ``os.system`` does;
                               on a regular file a request that only reads is ``fs-readonly``,
                               any other ``fs`` (``FICLONE`` rewrites the file); other
                               descriptors are free.
    ``("pid", p, v)``          argument *p* is a process id, *v* the value set: only setting
                               something (*v* not None) on another process than this one
                               needs the capability, as a whole.
    ``()``                     no scope: the capability as a whole.

    An event can carry several scopes (``os.rename``: both paths); each one
    is checked, and all must be allowed.

``api``
    How the act is named in messages and logs.

Coverage is deliberately whole-capability: every event through which a
capability can be exercised is listed, so that a denied ``os.rename`` cannot
succeed through the copy-and-delete fallback of ``shutil.move``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from ..capabilities import ENV, ENV_READONLY, FFI, FS, FS_READONLY, NET, PROCESS  # noqa: F401 (re-exported)

#: Pseudo-capability for the ``open`` event: decided by the open flags.
OPEN = "open"


class EventSpec(NamedTuple):
    capability: str
    scope: tuple
    api: str


def _path(i: int = 0, dir_fd: Optional[int] = None) -> tuple:
    return ("path", i, dir_fd)


#: Audit events that need ffi and nothing else (guards/tamper.py decides them; the scanner's
#: table, table/apis.py, infers ffi from the calls that raise them): event -> the act's name.
FFI_EVENTS = {
    "sys.addaudithook": "sys.addaudithook",
    "sys.settrace": "sys.settrace",
    "sys.setprofile": "sys.setprofile",
    "gc.get_objects": "gc.get_objects",
    "gc.get_referrers": "gc.get_referrers",
    "gc.get_referents": "gc.get_referents",
    "sys._current_frames": "sys._current_frames",
    "sys._current_exceptions": "sys._current_exceptions",
    # 3.12+: a callback on every call, line or return of every thread (settrace's successor)
    "sys.monitoring.register_callback": "sys.monitoring.register_callback",
    "cpython.PyInterpreterState_New": "a new subinterpreter",
}


#: Audit event name -> what it needs. Keep sorted by capability, then name.
EVENTS: dict[str, EventSpec] = {
    # -- files: writing ---------------------------------------------------------------
    "open": EventSpec(OPEN, (_path(0),), "open"),
    "os.chmod": EventSpec(FS, (_path(0, 2),), "os.chmod"),
    "os.chown": EventSpec(FS, (_path(0, 3),), "os.chown"),
    "os.chflags": EventSpec(FS, (_path(0),), "os.chflags"),
    "os.lchflags": EventSpec(FS, (_path(0),), "os.lchflags"),
    "os.lchmod": EventSpec(FS, (_path(0),), "os.lchmod"),
    "os.link": EventSpec(FS, (_path(0, 2), _path(1, 3)), "os.link"),
    "os.mkdir": EventSpec(FS, (_path(0, 2),), "os.mkdir"),
    "os.remove": EventSpec(FS, (_path(0, 1),), "os.remove"),
    "os.removexattr": EventSpec(FS, (_path(0),), "os.removexattr"),
    "os.rename": EventSpec(FS, (_path(0, 2), _path(1, 3)), "os.rename"),
    "os.rmdir": EventSpec(FS, (_path(0, 1),), "os.rmdir"),
    "os.setxattr": EventSpec(FS, (_path(0),), "os.setxattr"),
    "os.symlink": EventSpec(FS, (_path(1, 2),), "os.symlink"),
    "os.truncate": EventSpec(FS, (_path(0),), "os.truncate"),
    "os.utime": EventSpec(FS, (_path(0, 3),), "os.utime"),
    "shutil.chown": EventSpec(FS, (_path(0),), "shutil.chown"),
    "shutil.copyfile": EventSpec(FS, (_path(1),), "shutil.copyfile"),
    "shutil.copymode": EventSpec(FS, (_path(1),), "shutil.copymode"),
    "shutil.copystat": EventSpec(FS, (_path(1),), "shutil.copystat"),
    "shutil.copytree": EventSpec(FS, (_path(1),), "shutil.copytree"),
    "shutil.make_archive": EventSpec(FS, (_path(0),), "shutil.make_archive"),
    "shutil.move": EventSpec(FS, (_path(0), _path(1)), "shutil.move"),
    "shutil.rmtree": EventSpec(FS, (_path(0, 1),), "shutil.rmtree"),
    "shutil.unpack_archive": EventSpec(FS, (_path(1),), "shutil.unpack_archive"),
    "sqlite3.connect": EventSpec(FS, (("sqlite", 0),), "sqlite3.connect"),
    "tempfile.mkdtemp": EventSpec(FS, (_path(0),), "tempfile.mkdtemp"),
    "tempfile.mkstemp": EventSpec(FS, (_path(0),), "tempfile.mkstemp"),
    # -- files: reading ---------------------------------------------------------------
    "fcntl.ioctl": EventSpec(FS, (("ioctl", 0, 1),), "fcntl.ioctl"),
    "mmap.__new__": EventSpec(FS, (("mmap", 0, 2),), "mmap.mmap"),
    "glob.glob": EventSpec(FS_READONLY, (("glob", 0),), "glob.glob"),
    "glob.glob/2": EventSpec(FS_READONLY, (("glob", 0),), "glob.glob"),
    "os.chdir": EventSpec(FS_READONLY, (_path(0),), "os.chdir"),
    "os.getxattr": EventSpec(FS_READONLY, (_path(0),), "os.getxattr"),
    "os.listdir": EventSpec(FS_READONLY, (_path(0),), "os.listdir"),
    "os.listxattr": EventSpec(FS_READONLY, (_path(0),), "os.listxattr"),
    "os.scandir": EventSpec(FS_READONLY, (_path(0),), "os.scandir"),
    "pathlib.Path.glob": EventSpec(FS_READONLY, (_path(0),), "pathlib.Path.glob"),
    "pathlib.Path.rglob": EventSpec(FS_READONLY, (_path(0),), "pathlib.Path.rglob"),
    # -- environment ------------------------------------------------------------------
    "os.putenv": EventSpec(ENV, (("env", 0),), "os.putenv"),
    "os.unsetenv": EventSpec(ENV, (("env", 0),), "os.unsetenv"),
    # -- network ----------------------------------------------------------------------
    "socket.__new__": EventSpec(NET, (("socket", 1),), "socket.socket"),
    "socket.bind": EventSpec(NET, (("addr", 1),), "socket.bind"),
    "socket.connect": EventSpec(NET, (("addr", 1),), "socket.connect"),
    "socket.getaddrinfo": EventSpec(NET, (("hostport", 0, 1),), "socket.getaddrinfo"),
    "socket.gethostbyaddr": EventSpec(NET, (("hostport", 0, None),), "socket.gethostbyaddr"),
    "socket.gethostbyname": EventSpec(NET, (("hostport", 0, None),), "socket.gethostbyname"),
    "socket.getnameinfo": EventSpec(NET, (("addr", 0),), "socket.getnameinfo"),
    "socket.sendmsg": EventSpec(NET, (("addr", 1),), "socket.sendmsg"),
    "socket.sendto": EventSpec(NET, (("addr", 1),), "socket.sendto"),
    "http.client.connect": EventSpec(NET, (("hostport", 1, 2),), "http.client.connect"),
    "ftplib.connect": EventSpec(NET, (("hostport", 1, 2),), "ftplib.connect"),
    "imaplib.open": EventSpec(NET, (("hostport", 1, 2),), "imaplib.open"),
    "nntplib.connect": EventSpec(NET, (("hostport", 1, 2),), "nntplib.connect"),
    "poplib.connect": EventSpec(NET, (("hostport", 1, 2),), "poplib.connect"),
    "smtplib.connect": EventSpec(NET, (("hostport", 1, 2),), "smtplib.connect"),
    "telnetlib.Telnet.open": EventSpec(NET, (("hostport", 1, 2),), "telnetlib.Telnet.open"),
    # the C syslog() connects to the system logger's socket (/dev/log) and sends to it, as
    # logging.handlers.SysLogHandler does through socket.connect
    "syslog.openlog": EventSpec(NET, (), "syslog.openlog"),
    "syslog.syslog": EventSpec(NET, (), "syslog.syslog"),
    # -- processes --------------------------------------------------------------------
    "subprocess.Popen": EventSpec(PROCESS, (("program", 0),), "subprocess.Popen"),
    "os.system": EventSpec(PROCESS, (("shell",),), "os.system"),
    "os.exec": EventSpec(PROCESS, (("program", 0),), "os.exec"),
    "os.posix_spawn": EventSpec(PROCESS, (("program", 0),), "os.posix_spawn"),
    "os.spawn": EventSpec(PROCESS, (("program", 1),), "os.spawn"),
    "os.startfile": EventSpec(PROCESS, (("program", 0),), "os.startfile"),
    "os.fork": EventSpec(PROCESS, (), "os.fork"),
    "os.forkpty": EventSpec(PROCESS, (), "os.forkpty"),
    "os.kill": EventSpec(PROCESS, (), "os.kill"),
    "os.killpg": EventSpec(PROCESS, (), "os.killpg"),
    "signal.pthread_kill": EventSpec(PROCESS, (), "signal.pthread_kill"),
    "socket.sethostname": EventSpec(PROCESS, (), "socket.sethostname"),
    "pty.spawn": EventSpec(PROCESS, (), "pty.spawn"),
    "resource.prlimit": EventSpec(PROCESS, (("pid", 0, 2),), "resource.prlimit"),
    "webbrowser.open": EventSpec(PROCESS, (), "webbrowser.open"),
    "cpython.PyInterpreterState_New": EventSpec(PROCESS, (), "a new interpreter"),
    # -- foreign code -----------------------------------------------------------------
    "ctypes.addressof": EventSpec(FFI, (), "ctypes.addressof"),
    "ctypes.call_function": EventSpec(FFI, (), "ctypes call"),
    # raised by capimport's core before a ctypes data object is made (no CPython event covers
    # it: c_char_p(address).value reads any memory, a Union of an int and a POINTER writes any)
    "capimport.ctypes_data": EventSpec(FFI, (), "a ctypes data object"),
    "ctypes.PyObj_FromPtr": EventSpec(FFI, (), "ctypes.PyObj_FromPtr"),
    "ctypes.cdata": EventSpec(FFI, (), "ctypes.cdata"),
    "ctypes.cdata/buffer": EventSpec(FFI, (), "ctypes.cdata"),
    "ctypes.create_string_buffer": EventSpec(FFI, (), "ctypes.create_string_buffer"),
    "ctypes.create_unicode_buffer": EventSpec(FFI, (), "ctypes.create_unicode_buffer"),
    "ctypes.dlopen": EventSpec(FFI, (), "ctypes.dlopen"),
    "ctypes.dlsym": EventSpec(FFI, (), "ctypes.dlsym"),
    "ctypes.dlsym/handle": EventSpec(FFI, (), "ctypes.dlsym"),
    "ctypes.get_errno": EventSpec(FFI, (), "ctypes.get_errno"),
    "ctypes.set_errno": EventSpec(FFI, (), "ctypes.set_errno"),
    "ctypes.string_at": EventSpec(FFI, (), "ctypes.string_at"),
    "ctypes.wstring_at": EventSpec(FFI, (), "ctypes.wstring_at"),
    # SQLite loading a shared library into the process (also the SQL load_extension() it enables)
    "sqlite3.enable_load_extension": EventSpec(FFI, (), "sqlite3 enable_load_extension"),
    "sqlite3.load_extension": EventSpec(FFI, (), "sqlite3 load_extension"),
}

#: Modules that exist only to exercise one capability. In ``strict`` mode a
#: distribution lacking the capability cannot import them; otherwise the
#: import succeeds and the first use is denied by the events above.
CAPABILITY_MODULES: dict[str, str] = {
    "_socket": NET, "socket": NET, "ssl": NET, "_ssl": NET, "socketserver": NET,
    "http.client": NET, "http.server": NET, "urllib.request": NET, "ftplib": NET,
    "smtplib": NET, "poplib": NET, "imaplib": NET, "nntplib": NET, "telnetlib": NET,
    "xmlrpc.client": NET, "xmlrpc.server": NET,
    "subprocess": PROCESS, "_posixsubprocess": PROCESS, "pty": PROCESS,
    "multiprocessing": PROCESS, "concurrent.futures.process": PROCESS, "webbrowser": PROCESS,
    "ctypes": FFI, "_ctypes": FFI,
}

#: The flags of ``open``'s event that make it a write (``fs``), not a read.
WRITE_FLAGS_NAMES = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")

#: Files that expose the environment: reading them is ``env-readonly`` too.
ENVIRON_FILE_PATTERN = r"^/proc/(self|thread-self|\d+)(/task/\d+)?/environ$"
