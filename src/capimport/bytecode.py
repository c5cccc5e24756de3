"""The import system's bytecode writes: where they may go and what they must hold.

The import system caches a module's bytecode (``SourceLoader.get_code``, ``_cache_bytecode``,
``set_data``, ``_write_atomic``), and the next run executes that cache as the module's own code
without compiling anything, so a write into someone's ``__pycache__`` decides what runs as them
later. The import system's privilege covers such a write only when it is the cache capimport would
have written itself: the file ``cache_from_source`` names for the source ``get_code`` read (with the
tag, optimization level and prefix the interpreter started with), holding the code that compiling
that source gives. A ``SourceFileLoader`` subclass whose ``source_to_code`` or ``get_data`` lies, a
rebound ``_code_to_timestamp_pyc`` or ``compile``, a loader naming one file and caching under
another's name: each fails one test, and the write is charged as a planted callable's act.

capimport writes such a cache itself (the import system's own write is refused with
:class:`CacheWritten`, which ``set_data`` takes as "no cache"), from its own compile of the file on
disk and behind its own header, so no descriptor the import system hands to Python code ever
reaches a cache. This is the pure-Python twin of ``_core_bytecode.h``. The core writes with the
GIL held and no Python code running; this twin's write is Python, so it writes only when no other
Python code can run while its descriptor is open (:func:`write_cache`): no other thread, signals
blocked, the cyclic collector (finalizers) off.
"""
from __future__ import annotations

import _thread
import gc
import os
import re
import signal
import sys
from typing import Optional

#: Bound at import, before any distribution runs: the cache write calls nothing a distribution can
#: rebind (``os.open`` replaced by a function that hands the descriptor to a thread of its own).
_OPEN, _WRITE, _CLOSE, _REPLACE, _UNLINK = os.open, os.write, os.close, os.replace, os.unlink
_THREADS = _thread._count
_GC_ENABLED, _GC_DISABLE, _GC_ENABLE = gc.isenabled, gc.disable, gc.enable
_SIGMASK = getattr(signal, "pthread_sigmask", None)   # not on Windows
_SIG_BLOCK, _SIG_SETMASK = getattr(signal, "SIG_BLOCK", 0), getattr(signal, "SIG_SETMASK", 2)
_ALL_SIGNALS = signal.valid_signals() if _SIGMASK is not None else ()

_ALSO = ("co_filename", "co_qualname", "co_varnames", "co_cellvars", "co_freevars", "co_nlocals",
         "co_stacksize")


class Held:
    """What the checks compare against, taken at install before any distribution runs: the
    standard ``get_code``'s code object, the cache tag, the optimization level and the prefix."""

    __slots__ = ("get_code", "cache_tag", "optimize", "prefix")

    def __init__(self):
        from importlib.machinery import SourceFileLoader
        self.get_code = SourceFileLoader.get_code.__code__
        self.cache_tag: Optional[str] = sys.implementation.cache_tag
        self.optimize: int = sys.flags.optimize
        self.prefix: Optional[str] = sys.pycache_prefix

    def as_spec(self) -> tuple:
        """The native core's ``bytecode`` entry (``install_bytecode``)."""
        import builtins
        return (self.get_code, self.cache_tag, self.optimize, builtins.compile)


def compile_through(cache_compile) -> None:
    """Have the import system compile sources through the native core's ``cache_compile`` (set as
    ``importlib._bootstrap_external``'s global ``compile``, which ``source_to_code`` calls): it keeps
    the import system's own compile of a source, so that checking the cache written next needs no
    second compile. Nothing depends on it staying there: without it the check compiles again."""
    import importlib._bootstrap_external as external
    external.compile = cache_compile


def source_of(frame, held: Held) -> Optional[str]:
    """``get_code``'s ``source_path`` when *frame* runs inside the standard ``get_code`` with only
    the import system's frames between (``bytecode_source`` in ``_core_bytecode.h``)."""
    while frame is not None:
        code = frame.f_code
        if code is held.get_code:
            source = frame.f_locals.get("source_path")
            return source if type(source) is str else None
        if not code.co_filename.startswith("<frozen importlib._bootstrap"):
            return None
        frame = frame.f_back
    return None


def _join(*parts: str) -> str:
    """importlib's ``_path_join`` on POSIX."""
    return "/".join(part.rstrip("/") for part in parts if part)


def cache_location(source: str, held: Held) -> Optional[tuple]:
    """(folder, name) where ``cache_from_source(source)`` puts the cache as the interpreter started,
    the folder resolved as a target is; None when this interpreter writes no caches."""
    if held.cache_tag is None:
        return None
    head, _, tail = source.rpartition("/")
    base, sep, rest = tail.rpartition(".")
    name = (base or rest) + sep + held.cache_tag
    if held.optimize:
        name += f".opt-{held.optimize}"
    name += ".pyc"
    if held.prefix is not None:
        if not head.startswith("/"):
            head = _join(os.getcwd(), head)
        folder = _join(held.prefix, head.lstrip("/"))
    else:
        folder = _join(head, "__pycache__")
    from .hook import path_target
    return path_target(folder), name


def is_temporary_file(target: str, folder: str, name: str) -> bool:
    """*target* is ``_write_atomic``'s temporary file for the cache *folder*/*name* (its name and
    ``"."`` and digits)."""
    whole = folder + "/" + name + "."
    rest = target[len(whole):]
    return target.startswith(whole) and rest.isdigit() and rest.isascii()


def same_code(a, b) -> bool:
    """Two code trees are the same code (``same_code`` in ``_core_bytecode.h``): equal as code
    compares, and in what that leaves out (file and qualified names, cell and free variables)."""
    code = type(same_code.__code__)
    if type(a) is not code or type(b) is not code or a != b:
        return False
    for attribute in _ALSO:
        if getattr(a, attribute, None) != getattr(b, attribute, None):
            return False
    if len(a.co_consts) != len(b.co_consts):
        return False
    return all(same_code(x, y) for x, y in zip(a.co_consts, b.co_consts)
               if type(x) is code or type(y) is code)


def is_pycache(path: str, prefix: Optional[str]) -> bool:
    """A bytecode cache: inside a ``__pycache__`` folder, or under the cache prefix the interpreter
    started with (a relative one as the working folder is now, as the import system writes it)."""
    if prefix:
        resolved = os.path.realpath(prefix)
        if path in (prefix, resolved) or path.startswith(resolved + os.sep):
            return True
    return (os.sep + "__pycache__" + os.sep) in path or path.endswith(os.sep + "__pycache__")


class CacheWritten(OSError):
    """Raised at the import system's own write of a cache capimport wrote itself: ``set_data``
    takes any ``OSError`` as "no cache" and goes on."""


_CODING = re.compile(rb"#.*?coding[:=][ \t]*([-\w.]+)")
_PLAIN = ("utf-8", "utf8", "latin-1", "latin1", "iso-8859-1", "iso8859-1", "iso-latin-1", "ascii")
_FAMILIES = ("utf-8-", "latin-1-", "iso-8859-1-", "iso-latin-1-")


def decodes_without_registry(text: bytes) -> bool:
    """The source's declared encoding (PEP 263) is one the tokenizer decodes without the codec
    registry, which anyone can fill (``decodes_without_registry`` in ``_core_bytecode.h``)."""
    for line in text.splitlines()[:2]:
        found = _CODING.search(line)
        if found:
            name = found.group(1).decode("ascii", "replace").lower().replace("_", "-")
            return name in _PLAIN or name.startswith(_FAMILIES)
    return True


def _read(source: str) -> Optional[tuple]:
    """(bytes, mtime, the cache's mode) of the source through one descriptor, or None."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return ((b"".join(chunks), int(st.st_mtime), (st.st_mode | 0o200) & 0o666)
                if size == st.st_size else None)
    except OSError:
        return None
    finally:
        os.close(fd)


def expected_code(source: str, text: bytes, compiling: list):
    """What compiling the source file's bytes gives, as ``source_to_code`` compiles them; None
    when nothing can be vouched for (a syntax error, a NUL byte, a registry codec). *compiling*
    holds the name object of this compile while it runs: its compile event is capimport's own."""
    if b"\0" in text or not decodes_without_registry(text):
        return None
    name = (source + "\0")[:-1]   # a fresh str: nothing else holds this object
    compiling.append(name)
    try:
        return compile(text, name, "exec", dont_inherit=True)
    except Exception:
        return None
    finally:
        compiling.remove(name)


def writes_expected(writer, expected) -> bool:
    """The bytes ``_write_atomic`` was handed (exact ``bytes`` or ``bytearray`` only: no code of
    anyone's runs inside a decision) unmarshal, after their header, to *expected*."""
    import marshal
    data = writer.f_locals.get("data")
    if type(data) not in (bytes, bytearray) or len(data) <= 16:
        return False
    try:
        return same_code(expected, marshal.loads(bytes(data[16:])))
    except Exception:
        return False


def write_cache(tmp: str, path: str, code, mtime: int, size: int, mode: int) -> bool:
    """*code* as the cache file *path*, through *tmp*, behind a timestamp header of its own.

    Python code that runs while the temporary file's descriptor is open could copy it (``os.dup``
    raises no event) and write through the copy after the rename. So the write happens only when
    none can: no other Python thread exists (none to be switched to while ``os.write`` releases
    the GIL; with one, no cache: the import compiles again next run), signals are blocked (no
    handler runs in this thread), the cyclic collector is off (no finalizer runs), and every
    function called was bound before any distribution ran."""
    if _THREADS():
        return False
    import marshal
    from importlib.util import MAGIC_NUMBER
    body = MAGIC_NUMBER + (0).to_bytes(4, "little") + (mtime & 0xFFFFFFFF).to_bytes(4, "little") \
        + (size & 0xFFFFFFFF).to_bytes(4, "little") + marshal.dumps(code)
    # pthread_sigmask runs the handlers of signals already pending, and raises what they raise:
    # the first call changes nothing, so the mask to restore is known before anything is blocked.
    mask = _SIGMASK(_SIG_BLOCK, ()) if _SIGMASK is not None else None
    collecting = _GC_ENABLED()
    try:
        if mask is not None:
            _SIGMASK(_SIG_BLOCK, _ALL_SIGNALS)
        _GC_DISABLE()
        return _write_alone(tmp, path, body, mode)
    finally:
        if collecting:
            _GC_ENABLE()
        if mask is not None:
            _SIGMASK(_SIG_SETMASK, mask)


def _write_alone(tmp: str, path: str, body: bytes, mode: int) -> bool:
    """*body* into the new file *tmp*, renamed to *path*; False (and no file) on any error."""
    try:
        fd = _OPEN(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except OSError:
        return False
    try:
        try:
            done = 0
            while done < len(body):
                done += _WRITE(fd, body[done:])
        finally:
            _CLOSE(fd)
        _REPLACE(tmp, path)
        return True
    except OSError:
        try:
            _UNLINK(tmp)
        except OSError:
            pass
        return False


def write_instead(frame, held: Held, checks: list, compiling: list) -> bool:
    """The open of ``_write_atomic``'s temporary file for the cache of the source the standard
    ``get_code`` read (``bytecode_write`` in ``_core_bytecode.h``): when what the import system is
    writing is that source compiled, capimport writes the cache itself and raises
    :class:`CacheWritten` in place of the import system's write; with nothing to vouch for, it
    raises it too (no cache). False: not this act, or other code being written (a planted act)."""
    if frame.f_code.co_name != "_write_atomic" or len(checks) != 1 or checks[0][2] != "open":
        return False
    value = checks[0][1].get()
    source = source_of(frame, held)
    if not isinstance(value, str) or source is None or not source.endswith(".py"):
        return False
    where = cache_location(source, held)
    if where is None or not is_temporary_file(value, where[0], where[1]):
        return False
    read = _read(source)
    expected = expected_code(source, read[0], compiling) if read else None
    if expected is not None:
        if not writes_expected(frame, expected):
            return False
        write_cache(value, where[0] + "/" + where[1], expected, read[1], len(read[0]), read[2])
    raise CacheWritten("capimport writes this bytecode cache itself")


def makes_cache_folder(frame, held: Held, checks: list, index: int) -> bool:
    """May the import system make write check *index* at *frame* (``import_makes_cache_folder`` in
    ``_core_bytecode.h``): the folders ``set_data`` makes for the cache of the source ``get_code``
    read. The cache itself capimport writes (:func:`write_instead`)."""
    if frame.f_code.co_name != "set_data":
        return False
    _, target, api = checks[index]
    value = target.get()
    source = source_of(frame, held)
    if api != "os.mkdir" or not isinstance(value, str) or source is None or not source.endswith(".py"):
        return False
    where = cache_location(source, held)
    if where is None:
        return False
    folder = where[0]
    return (value == folder or folder.startswith(value + "/")) and is_pycache(value, held.prefix)
