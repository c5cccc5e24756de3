"""Python APIs -> the capability they exercise, for the static scanner.

The run-time layer reads audit events (:mod:`capimport.table.events`); the
scanner sees source code, so it needs the same knowledge at the level of the
functions, classes and attributes that code names: ``shutil.rmtree``,
``pathlib.Path.write_text``, ``os.environ.get``, ``subprocess.run``. Every
audit event whose name is also a callable API (``os.remove``,
``shutil.copyfile``, ``sqlite3.connect``...) is taken from the event table
with its capability, so the two cannot disagree; the entries below add what
raises no event or needs an argument read (``open``'s mode, a literal path,
an environment variable's name).

An entry is an :class:`Api`: one or more :class:`Use` (capability, and where
its scope is: a positional index and/or keyword name, and how to read it),
plus optionally a :class:`Mode` that decides ``fs`` against ``fs-readonly``
from a mode argument, and ``returns``, the class of the value a call returns
(so that ``Path.home().write_text(...)`` and ``z = ZipFile(p, "w")`` resolve).

Scope readers (``Use.kind``) take the argument as the scanner folded it:

``path``     a literal absolute or ``~`` path (``open("/etc/hosts")``)
``env``      a literal variable name (``os.environ.get("HOME")``)
``url``      a literal URL: its ``host:port``
``host``     a literal host, with the port from ``Use.port`` or its default
``addr``     a literal ``(host, port)`` tuple
``program``  the program of an argv list or string (not with ``shell=True``)
``const``    always ``Use.const`` (what a stdlib helper reads by itself)

A use with nothing literal to read is unscoped: the whole capability.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ..capabilities import ENV, ENV_READONLY, FFI, FS, FS_READONLY, NET, PROCESS
from .events import ENVIRON_FILE_PATTERN, EVENTS, FFI_EVENTS, OPEN

#: Pseudo-capability of a use whose capability its :class:`Mode` decides.
MODE = "mode"


@dataclass(frozen=True)
class Use:
    capability: str
    pos: Optional[int] = None        # positional index of the scope argument
    kw: Optional[str] = None         # keyword name of the scope argument
    kind: Optional[str] = None       # scope reader (see the module docstring)
    const: tuple = ()                # scope texts for kind "const"
    port: Optional[tuple] = None     # (pos, kw, default) of the port for kind "host"
    when: Optional[str] = None       # only when this keyword argument is given
    unless: Optional[tuple] = None   # (pos, kw) of a file-object argument: given, no path is opened
    free_if_none: bool = False       # a literal None at pos/kw needs nothing (sys.settrace(None))


@dataclass(frozen=True)
class Mode:
    """Where the mode argument is and how to read it; a mode that is not literal means ``fs``."""

    pos: Optional[int]
    kw: Optional[str]
    default: object
    kind: str = "open"               # open | zip | tar | dbm | flags | sqlite


@dataclass(frozen=True)
class Api:
    uses: tuple = ()
    mode: Optional[Mode] = None
    returns: Optional[str] = None
    # For mappings such as os.environ: the capability of ``m[k]``, ``m[k] = v`` / ``del m[k]``
    # and ``k in m``, each scoped by a literal key.
    getitem: Optional[str] = None
    setitem: Optional[str] = None

    @property
    def capabilities(self) -> tuple:
        return tuple(u.capability for u in self.uses)


APIS: dict[str, Api] = {}
#: Names that are only constructors or factories: calling them yields an instance of a class
#: whose methods the table lists, but needs nothing by itself.
RETURNS: dict[str, str] = {}


def _add(names: str, *uses: Use, mode: Optional[Mode] = None, returns: Optional[str] = None,
         getitem: Optional[str] = None, setitem: Optional[str] = None) -> None:
    for name in names.split():
        APIS[name] = Api(tuple(uses), mode, returns, getitem, setitem)
        if returns:
            RETURNS[name] = returns


def _p(cap: str, pos: Optional[int] = 0, kw: Optional[str] = None) -> Use:
    """A use scoped by the path in argument *pos* / keyword *kw*."""
    return Use(cap, pos, kw, "path")


def _c(cap: str, *texts: str) -> Use:
    return Use(cap, kind="const", const=texts)


_U = Use  # an unscoped use: _U(NET)

TMP_VARS = ("TMPDIR", "TEMP", "TMP")
_OPEN_MODE = Mode(1, "mode", "r")

# ------------------------------------------------------------------------- files
_add("builtins.open io.open codecs.open", Use(MODE, 0, "file", "path"), mode=_OPEN_MODE)
_add("gzip.open bz2.open lzma.open", Use(MODE, 0, "filename", "path"), mode=Mode(1, "mode", "rb"))
_add("bz2.BZ2File lzma.LZMAFile", Use(MODE, 0, "filename", "path"), mode=Mode(1, "mode", "rb"))
# GzipFile(name, mode, level, fileobj): with a file object it only wraps that stream.
_add("gzip.GzipFile", Use(MODE, 0, "filename", "path", unless=(3, "fileobj")), mode=Mode(1, "mode", "rb"))
_add("os.open", Use(MODE, 0, "path", "path"), mode=Mode(1, "flags", None, "flags"))
_add("pathlib.Path.open", Use(MODE), mode=Mode(0, "mode", "r"))
_add("zipfile.ZipFile zipfile.PyZipFile", Use(MODE, 0, "file", "path"), mode=Mode(1, "mode", "r", "zip"),
     returns="zipfile.ZipFile")
_add("tarfile.open tarfile.TarFile.open tarfile.TarFile", Use(MODE, 0, "name", "path", unless=(2, "fileobj")),
     mode=Mode(1, "mode", "r", "tar"), returns="tarfile.TarFile")
_add("shelve.open", Use(MODE, 0, "filename", "path"), mode=Mode(1, "flag", "c", "dbm"))
_add("dbm.open dbm.gnu.open dbm.ndbm.open dbm.dumb.open", Use(MODE, 0, "file", "path"),
     mode=Mode(1, "flag", "r", "dbm"))
_add("sqlite3.connect", Use(MODE, 0, "database", "path"), mode=Mode(0, "database", None, "sqlite"))
_add("zipfile.ZipFile.extract zipfile.ZipFile.extractall tarfile.TarFile.extract "
     "tarfile.TarFile.extractall zipfile.ZipFile.write zipfile.ZipFile.writestr tarfile.TarFile.add",
     _U(FS))
_add("zipfile.ZipFile.open", Use(MODE), mode=Mode(1, "mode", "r", "zip"))
_add("zipfile.ZipFile.read zipfile.ZipFile.namelist tarfile.TarFile.extractfile tarfile.TarFile.getmembers",
     _U(FS_READONLY))

_add("os.remove os.unlink os.rmdir os.removedirs os.mkdir os.makedirs os.chmod os.lchmod os.chown "
     "os.lchown os.truncate os.utime os.mkfifo os.mknod os.chflags os.lchflags os.setxattr "
     "os.removexattr os.chroot", _p(FS, 0, "path"))
_add("os.rename os.renames os.replace os.link", _p(FS, 0, "src"), _p(FS, 1, "dst"))
_add("os.symlink", _p(FS, 1, "dst"))
_add("os.stat os.lstat os.listdir os.scandir os.walk os.fwalk os.access os.readlink os.statvfs "
     "os.getxattr os.listxattr os.chdir os.path.exists os.path.lexists os.path.isfile os.path.isdir "
     "os.path.islink os.path.ismount os.path.isjunction os.path.getsize os.path.getmtime "
     "os.path.getatime os.path.getctime os.path.realpath os.path.samefile",
     _p(FS_READONLY, 0, "path"))
_add("os.path.expanduser", _c(ENV_READONLY, "HOME"))
_add("os.path.expandvars", _U(ENV_READONLY))
_add("glob.glob glob.iglob", _p(FS_READONLY, 0, "pathname"))
_add("shutil.copy shutil.copy2 shutil.copyfile shutil.copytree shutil.copymode shutil.copystat",
     _p(FS_READONLY, 0, "src"), _p(FS, 1, "dst"))
_add("shutil.move", _p(FS, 0, "src"), _p(FS, 1, "dst"))
_add("shutil.rmtree shutil.chown", _p(FS, 0, "path"))
_add("shutil.make_archive", _p(FS, 0, "base_name"))
_add("shutil.unpack_archive", _p(FS_READONLY, 0, "filename"), _p(FS, 1, "extract_dir"))
_add("shutil.disk_usage", _p(FS_READONLY, 0, "path"))
_add("shutil.which", _U(FS_READONLY), _c(ENV_READONLY, "PATH"))
_add("shutil.get_terminal_size", _c(ENV_READONLY, "COLUMNS", "LINES"))
_add("filecmp.cmp filecmp.cmpfiles filecmp.dircmp", _U(FS_READONLY))
_add("fileinput.input fileinput.FileInput", _U(MODE), mode=Mode(None, "inplace", False, "inplace"))
_add("tempfile.mkstemp tempfile.mkdtemp tempfile.TemporaryFile tempfile.NamedTemporaryFile "
     "tempfile.SpooledTemporaryFile tempfile.TemporaryDirectory tempfile.gettempdir tempfile.gettempdirb "
     "tempfile.mktemp", _U(FS), _c(ENV_READONLY, *TMP_VARS))
_add("logging.FileHandler logging.handlers.RotatingFileHandler logging.handlers.TimedRotatingFileHandler "
     "logging.handlers.WatchedFileHandler", _p(FS, 0, "filename"))
_add("logging.basicConfig", Use(FS, None, "filename", "path", when="filename"))
_add("logging.config.fileConfig", _p(FS_READONLY, 0, "fname"))
_add("py_compile.compile compileall.compile_dir compileall.compile_file compileall.compile_path", _U(FS))
# Reading a distribution's own installed files needs nothing (the run-time layer allows it):
# kind "own" marks the evidence "own" (it does not count toward fs-readonly) when the argument
# names the distribution itself (a literal, __name__, __package__, nothing at all, or a path the
# scanner knows is inside the distribution: os.path.dirname(__file__), files(__package__) / "x").
_OWN0 = Use(FS_READONLY, 0, "package", "own")
_add("importlib.resources.read_text importlib.resources.read_binary importlib.resources.open_text "
     "importlib.resources.open_binary importlib.resources.path importlib.resources.contents "
     "importlib.resources.is_resource importlib.resources.files pkgutil.get_data "
     "pkg_resources.resource_string pkg_resources.resource_stream pkg_resources.resource_filename "
     "pkg_resources.resource_listdir pkg_resources.resource_exists pkg_resources.resource_isdir",
     _OWN0, returns=None)
_add("importlib.resources.as_file", Use(FS_READONLY, 0, "path", "own"))
_add("importlib.metadata.version importlib.metadata.distribution importlib.metadata.metadata "
     "importlib.metadata.files importlib.metadata.requires importlib_metadata.version "
     "importlib_metadata.distribution importlib_metadata.metadata importlib_metadata.files "
     "importlib_metadata.requires pkg_resources.get_distribution pkg_resources.require",
     Use(FS_READONLY, 0, "distribution_name", "own"))
_add("importlib.metadata.distributions importlib.metadata.entry_points "
     "importlib.metadata.packages_distributions importlib_metadata.distributions "
     "importlib_metadata.entry_points importlib_metadata.packages_distributions "
     "pkg_resources.iter_entry_points pkg_resources.working_set", _U(FS_READONLY))
_add("linecache.getline linecache.getlines linecache.updatecache linecache.checkcache "
     "inspect.getsource inspect.getsourcelines inspect.findsource inspect.getsourcefile "
     "inspect.stack inspect.trace inspect.getouterframes inspect.getinnerframes inspect.getframeinfo "
     "traceback.print_exc traceback.format_exc traceback.print_exception traceback.format_exception "
     "traceback.print_tb traceback.format_tb traceback.extract_tb traceback.extract_stack "
     "traceback.print_stack traceback.format_stack traceback.StackSummary.extract "
     "traceback.TracebackException", _U(FS_READONLY))
_add("zipimport.zipimporter runpy.run_path", _U(FS_READONLY))
_add("ssl.create_default_context ssl.SSLContext.load_verify_locations ssl.SSLContext.load_cert_chain "
     "ssl.SSLContext.load_default_certs ssl.SSLContext.set_default_verify_paths", _U(FS_READONLY))
_add("netrc.netrc", _U(FS_READONLY), _c(ENV_READONLY, "NETRC", "HOME"))
_add("mimetypes.init mimetypes.guess_type mimetypes.guess_extension mimetypes.MimeTypes", _U(FS_READONLY))
_add("configparser.ConfigParser.read configparser.RawConfigParser.read", _U(FS_READONLY))
RETURNS.update({"configparser.ConfigParser": "configparser.ConfigParser",
                "configparser.RawConfigParser": "configparser.RawConfigParser"})
_add("mmap.mmap", _U(FS))
_add("platform.libc_ver platform.platform", _U(FS_READONLY))
_add("platform.architecture", _U(FS_READONLY), Use(PROCESS, kind="const", const=("file",)))

# pathlib: the path is the receiver, so these are unscoped unless it was a literal.
_PATHLIB_READ = ("exists is_dir is_file is_symlink is_mount is_socket is_fifo is_block_device "
                 "is_char_device is_junction stat lstat iterdir glob rglob walk readlink resolve "
                 "samefile owner group read_text read_bytes absolute")
_PATHLIB_WRITE = ("write_text write_bytes touch mkdir unlink rmdir rename replace symlink_to "
                  "hardlink_to link_to chmod lchmod")
for _m in _PATHLIB_READ.split():
    _add(f"pathlib.Path.{_m}", _U(FS_READONLY))
for _m in _PATHLIB_WRITE.split():
    _add(f"pathlib.Path.{_m}", _U(FS))
_add("pathlib.Path.home pathlib.Path.expanduser", _c(ENV_READONLY, "HOME"), returns="pathlib.Path")
for _name in ("pathlib.Path", "pathlib.Path.cwd", "pathlib.Path.joinpath", "pathlib.Path.with_name",
              "pathlib.Path.with_suffix", "pathlib.Path.with_stem", "pathlib.Path.relative_to",
              ):
    RETURNS[_name] = "pathlib.Path"
# What files() returns: a Traversable, read through its methods (own files when files() named
# the distribution itself: the scanner marks those uses "own").
_TRAVERSABLE = "importlib.resources.abc.Traversable"
RETURNS["importlib.resources.files"] = _TRAVERSABLE
RETURNS[f"{_TRAVERSABLE}.joinpath"] = _TRAVERSABLE
for _m in ("read_text", "read_bytes", "iterdir", "is_file", "is_dir"):
    _add(f"{_TRAVERSABLE}.{_m}", _U(FS_READONLY))
_add(f"{_TRAVERSABLE}.open", Use(MODE), mode=Mode(0, "mode", "r"))
for _m in ("resolve", "absolute"):
    RETURNS[f"pathlib.Path.{_m}"] = "pathlib.Path"
#: Attributes (not calls) of an instance that are instances again.
ATTRIBUTE_RETURNS: dict[str, str] = {"pathlib.Path.parent": "pathlib.Path"}
#: Classes whose ``/`` operator returns an instance of the same class.
DIV_RETURNS = frozenset({"pathlib.Path", _TRAVERSABLE})

# ------------------------------------------------------------------------- environment
_add("os.environ os.environb", _U(ENV_READONLY), getitem=ENV_READONLY, setitem=ENV)
_add("os.getenv os.getenvb os.environ.get os.environb.get os.environ.__getitem__ "
     "os.environ.__contains__", Use(ENV_READONLY, 0, "key", "env"))
_add("os.putenv os.unsetenv os.environ.setdefault os.environ.pop os.environ.__setitem__ "
     "os.environ.__delitem__ os.environb.setdefault os.environb.pop", Use(ENV, 0, "key", "env"))
_add("os.environ.update os.environ.clear os.environ.popitem os.environb.update os.environb.clear",
     _U(ENV))
_add("urllib.request.getproxies urllib.request.proxy_bypass urllib.request.getproxies_environment "
     "urllib.request.proxy_bypass_environment", _U(ENV_READONLY))
_add("getpass.getuser", _c(ENV_READONLY, "LOGNAME", "USER", "LNAME", "USERNAME"))
_add("locale.getdefaultlocale", _c(ENV_READONLY, "LC_ALL", "LC_CTYPE", "LANG", "LANGUAGE"))

# ------------------------------------------------------------------------- network
_add("socket.socket socket.SocketType socket.fromfd socket.socketpair socket.create_server "
     "socket.gethostname socket.getfqdn", _U(NET), returns="socket.socket")
_add("socket.create_connection", Use(NET, 0, "address", "addr"), returns="socket.socket")
_add("socket.socket.connect socket.socket.connect_ex socket.socket.bind socket.socket.sendto",
     Use(NET, 0, "address", "addr"))
_add("socket.getaddrinfo socket.gethostbyname socket.gethostbyname_ex socket.gethostbyaddr",
     Use(NET, 0, "host", "host", port=(1, "port", None)))
_add("socket.getnameinfo", Use(NET, 0, "sockaddr", "addr"))
_add("ssl.wrap_socket ssl.SSLContext.wrap_socket ssl.get_server_certificate", _U(NET))
_add("http.client.HTTPConnection", Use(NET, 0, "host", "host", port=(1, "port", 80)),
     returns="http.client.HTTPConnection")
_add("http.client.HTTPSConnection", Use(NET, 0, "host", "host", port=(1, "port", 443)),
     returns="http.client.HTTPConnection")
_add("urllib.request.urlopen urllib.request.urlretrieve", Use(NET, 0, "url", "url"), _U(ENV_READONLY))
_add("urllib.request.build_opener urllib.request.ProxyHandler urllib.request.install_opener",
     _U(ENV_READONLY), returns="urllib.request.OpenerDirector")
_add("urllib.request.OpenerDirector.open", Use(NET, 0, "fullurl", "url"))
_add("ftplib.FTP ftplib.FTP_TLS", Use(NET, 0, "host", "host", port=(None, "port", 21)))
_add("smtplib.SMTP smtplib.SMTP_SSL smtplib.LMTP", Use(NET, 0, "host", "host", port=(1, "port", None)))
_add("poplib.POP3 poplib.POP3_SSL imaplib.IMAP4 imaplib.IMAP4_SSL nntplib.NNTP nntplib.NNTP_SSL "
     "telnetlib.Telnet", Use(NET, 0, "host", "host", port=(1, "port", None)))
_add("xmlrpc.client.ServerProxy", Use(NET, 0, "uri", "url"))
_add("socketserver.TCPServer socketserver.UDPServer socketserver.ThreadingTCPServer "
     "socketserver.ThreadingUDPServer socketserver.ForkingTCPServer socketserver.UnixStreamServer "
     "socketserver.UnixDatagramServer http.server.HTTPServer http.server.ThreadingHTTPServer "
     "xmlrpc.server.SimpleXMLRPCServer wsgiref.simple_server.make_server", _U(NET))
_add("logging.handlers.SocketHandler logging.handlers.DatagramHandler logging.handlers.SysLogHandler "
     "logging.handlers.HTTPHandler logging.handlers.SMTPHandler", _U(NET))
_add("asyncio.open_connection", Use(NET, 0, "host", "host", port=(1, "port", None)))
_add("asyncio.start_server asyncio.open_unix_connection asyncio.start_unix_server", _U(NET))
_LOOP = "asyncio.AbstractEventLoop"
for _m in ("create_connection", "create_server", "create_datagram_endpoint", "create_unix_connection",
           "create_unix_server", "sock_connect", "sock_sendto", "getaddrinfo", "getnameinfo", "connect_read_pipe"):
    _add(f"{_LOOP}.{_m}", _U(NET))
for _m in ("subprocess_exec", "subprocess_shell"):
    _add(f"{_LOOP}.{_m}", _U(PROCESS))
for _name in ("asyncio.get_event_loop", "asyncio.get_running_loop", "asyncio.new_event_loop",
              "asyncio.events.get_event_loop", "asyncio.events.get_running_loop"):
    RETURNS[_name] = _LOOP

# ------------------------------------------------------------------------- processes
_ARGV = Use(PROCESS, 0, "args", "program")
_add("subprocess.Popen subprocess.run subprocess.call subprocess.check_call subprocess.check_output",
     _ARGV, returns="subprocess.Popen")
_add("subprocess.getoutput subprocess.getstatusoutput os.system os.popen", _U(PROCESS))
_add("os.execv os.execve os.execvp os.execvpe os.execl os.execle os.execlp os.execlpe",
     Use(PROCESS, 0, "path", "program"))
_add("os.spawnl os.spawnle os.spawnlp os.spawnlpe os.spawnv os.spawnve os.spawnvp os.spawnvpe",
     Use(PROCESS, 1, "file", "program"))
_add("os.posix_spawn os.posix_spawnp", Use(PROCESS, 0, "path", "program"))
_add("os.fork os.forkpty os.kill os.killpg os.startfile pty.spawn pty.fork signal.pthread_kill "
     "signal.raise_signal socket.sethostname time.clock_settime time.clock_settime_ns", _U(PROCESS))
# identity and scheduling calls the run-time guard decides as process (guards/native.py PROCESS_CALLS)
_add("os.setuid os.setgid os.seteuid os.setegid os.setreuid os.setregid os.setresuid os.setresgid "
     "os.setgroups os.initgroups os.setsid os.setpgid os.setpgrp os.nice os.setpriority "
     "os.sched_setaffinity os.sched_setscheduler os.sched_setparam os.setns os.unshare", _U(PROCESS))
_add("syslog.openlog syslog.syslog", _U(NET))
_add("pwd.getpwall grp.getgrall", _U(FS_READONLY))
# os.register_at_fork only registers callbacks: it starts nothing (the fork that runs them is
# the act, and it is checked where it happens); capimport defers the callbacks with the
# registrant's accountability (guards/deferred.py), like threads.
_add("asyncio.create_subprocess_exec asyncio.subprocess.create_subprocess_exec",
     Use(PROCESS, 0, "program", "program"))
_add("asyncio.create_subprocess_shell asyncio.subprocess.create_subprocess_shell", _U(PROCESS))
_add("multiprocessing.Process multiprocessing.Pool multiprocessing.Manager "
     "multiprocessing.get_context multiprocessing.context.Process multiprocessing.pool.Pool "
     "concurrent.futures.ProcessPoolExecutor concurrent.futures.process.ProcessPoolExecutor",
     _U(PROCESS))
_add("webbrowser.open webbrowser.open_new webbrowser.open_new_tab webbrowser.get",
     _U(PROCESS), _c(ENV_READONLY, "BROWSER"))
_add("pydoc.pager pydoc.getpager", _U(PROCESS), _U(ENV_READONLY), _U(FS))
_add("ctypes.util.find_library", _U(FFI), _U(PROCESS), _U(FS_READONLY))

# ------------------------------------------------------------------------- foreign code
#: Modules every attribute of which is a use: anything done with ctypes or cffi is ffi.
MODULE_USES: dict[str, str] = {"ctypes": FFI, "_ctypes": FFI, "cffi": FFI, "_cffi_backend": FFI}
_add("importlib.machinery.ExtensionFileLoader", _U(FFI))
_add("_imp.create_dynamic", _U(FFI))
# A Tcl interpreter runs processes and opens files and sockets unseen (guards/native.py).
_add("tkinter.Tcl tkinter.Tk tkinter.tix.Tk _tkinter.create", _U(FFI))

# What sees or rewrites every frame or every object needs ffi at run time: the calls that raise
# the events of FFI_EVENTS, threading's tracers and guards/native.py's SYS_FFI_CALLS. Putting
# back no tracer does not.
_add("sys.settrace sys.setprofile threading.settrace threading.setprofile",
     Use(FFI, 0, "function", free_if_none=True))
_add("sys.activate_stack_trampoline", _U(FFI))
for _event in FFI_EVENTS:
    if _event.startswith(("sys.", "gc.")) and _event not in APIS:
        _add(_event, _U(FFI))

# ------------------------------------------------------------------------- one table
# Every audit event that is also a callable API takes its capability from the event table
# (unless listed above with argument-level detail).
for _event, _spec in EVENTS.items():
    if "/" in _event or _event in APIS or "." not in _event or _spec.capability == OPEN:
        continue
    if _event.split(".", 1)[0] in ("cpython", "ctypes"):
        continue
    APIS[_event] = Api((_U(_spec.capability),))

#: Spellings that name the same API: the part before the dot is rewritten.
ALIASES: dict[str, str] = {
    "posixpath": "os.path", "ntpath": "os.path", "genericpath": "os.path", "posix": "os", "nt": "os",
    "pathlib.PosixPath": "pathlib.Path", "pathlib.WindowsPath": "pathlib.Path",
    "pathlib._local.Path": "pathlib.Path", "_io.open": "builtins.open", "_socket": "socket",
    "asyncio.base_events.BaseEventLoop": _LOOP, "asyncio.events.AbstractEventLoop": _LOOP,
    "asyncio.unix_events": "asyncio", "asyncio.streams": "asyncio", "asyncio.subprocess": "asyncio",
    "importlib_resources": "importlib.resources", "os.environ.copy": "os.environ",
    "subprocess.CompletedProcess": "", "subprocess.CalledProcessError": "",
    "subprocess.TimeoutExpired": "", "subprocess.SubprocessError": "", "subprocess.PIPE": "",
    "subprocess.DEVNULL": "", "subprocess.STDOUT": "",
}

#: Method names distinctive enough to count when the receiver's class is unknown
#: (``path.write_text(...)`` where ``path`` is a parameter). Evidence says so.
METHOD_HINTS: dict[str, str] = {
    **{m: f"pathlib.Path.{m}" for m in ("write_text", "write_bytes", "read_text", "read_bytes",
                                         "touch", "unlink", "rmdir", "mkdir", "symlink_to",
                                         "hardlink_to", "iterdir", "rglob")},
    "subprocess_exec": f"{_LOOP}.subprocess_exec", "subprocess_shell": f"{_LOOP}.subprocess_shell",
    "sock_connect": f"{_LOOP}.sock_connect", "create_datagram_endpoint": f"{_LOOP}.create_datagram_endpoint",
    "create_unix_connection": f"{_LOOP}.create_unix_connection",
    "extractall": "tarfile.TarFile.extractall",
}

#: Paths whose reading exposes the environment (``/proc/self/environ``).
ENVIRON_FILE = re.compile(ENVIRON_FILE_PATTERN)

#: The use record of a path to an environment file built in code the scanner
#: cannot follow to the read: ``open_text(f"{procfs}/{pid}/environ")`` through a
#: wrapper of the distribution's own. Not a Python name, so no table entry or
#: module of the distribution can shadow it.
ENVIRON_FILE_USE = "<environ file>"

#: A path's text with its computed parts as ``{}``: the f-string's fields, a
#: ``.format`` field, a ``%`` conversion, the unknown side of a ``+``.
_COMPUTED_PART = re.compile(r"\{[^{}]*\}|%[sdir]")
#: The environment files a path template can name: ``/proc/{}/environ``,
#: ``{}/{}/environ`` (psutil's procfs root and pid), ``/proc/self/task/{}/environ``.
_PROC_PART = r"(?:\{\}|self|thread-self|task|\d+)"
_ENVIRON_TEMPLATE = re.compile(r"(?:\{\}(?:/" + _PROC_PART + r")*|/proc(?:/" + _PROC_PART + r")+)/environ")


def environ_template(text: str) -> Optional[str]:
    """*text* with its computed parts as ``{}`` if it can name an environment file, else None."""
    if not text.endswith("environ"):
        return None
    template = _COMPUTED_PART.sub("{}", text)
    return template if _ENVIRON_TEMPLATE.fullmatch(template) else None


def normalise(name: str) -> str:
    """*name* with alias modules rewritten (``posixpath.exists`` -> ``os.path.exists``).

    ``Class().method`` (a method reached through an instance) becomes ``Class.method``.
    """
    if "()." in name:
        name = name.replace("().", ".")
    if name in ALIASES:
        return ALIASES[name]
    head = name
    while "." in head:
        head = head.rsplit(".", 1)[0]
        if head in ALIASES:
            target = ALIASES[head]
            return target + name[len(head):] if target else ""
    return name


def lookup(name: str) -> tuple[Optional[str], Optional[Api]]:
    """The table entry for a qualified *name*: (key, entry), or (None, None).

    An attribute of an entry counts as a use of the entry (``os.environ.copy``
    is ``os.environ``; ``socket.socket.connect`` without its own line is
    ``socket.socket``); any attribute of a :data:`MODULE_USES` module is a use.
    """
    instance = "()." in name
    name = normalise(name)
    if not name:
        return None, None
    entry = APIS.get(name)
    if entry is not None or instance:
        return (name, entry) if entry is not None else (None, None)
    root = name.split(".", 1)[0]
    if root in MODULE_USES and "." in name:
        return name, Api((_U(MODULE_USES[root]),))
    head = name
    while "." in head:
        head = head.rsplit(".", 1)[0]
        entry = APIS.get(head)
        if entry is not None:
            return head, entry
    return None, None


def relevant_roots() -> frozenset:
    """Top-level module names that occur in the table (a cheap first filter)."""
    roots = {name.split(".", 1)[0] for name in APIS} | set(MODULE_USES)
    roots |= {name.split(".", 1)[0] for name in ALIASES}
    return frozenset(roots)
