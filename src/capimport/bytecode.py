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

This is the pure-Python twin of ``_core_bytecode.h``. The core compares the file as written,
read back when it is renamed into place; this fallback compares the bytes ``_write_atomic`` was
handed (its own reads would be judged by this same walk), so a second thread changing those bytes
between the check and the write is a documented limit of the fallback only.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

_EXTERNAL = "<frozen importlib._bootstrap_external>"
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


def is_cache_file(target: str, folder: str, name: str, tmp: bool) -> bool:
    """*target* is the cache (or, *tmp*, ``_write_atomic``'s temporary file beside it)."""
    whole = folder + "/" + name
    if not tmp:
        return target == whole
    return target.startswith(whole + ".") and target[len(whole) + 1:].isdigit() \
        and target[len(whole) + 1:].isascii()


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


def matches(source: str, data, compiling: list) -> bool:
    """*data* (a cache's bytes) holds what compiling *source* gives, as the import system compiles
    it, behind this interpreter's magic number. *compiling* is where the name object of this
    compile is put while it runs, so that its compile event is known as capimport's own."""
    import marshal
    from importlib.util import MAGIC_NUMBER
    if not isinstance(data, (bytes, bytearray)) or len(data) <= 16 or bytes(data[:4]) != MAGIC_NUMBER:
        return False
    try:
        with open(source, "rb") as file:
            text = file.read()
        name = (source + "\0")[:-1]   # a fresh str: nothing else holds this object
        compiling.append(name)
        try:
            expected = compile(text, name, "exec", dont_inherit=True)
        finally:
            compiling.remove(name)
        found = marshal.loads(bytes(data[16:]))
    except Exception:
        return False
    return same_code(expected, found)


def is_pycache(path: str, prefix: Optional[str]) -> bool:
    """A bytecode cache: inside a ``__pycache__`` folder, or under the cache prefix the interpreter
    started with (a relative one as the working folder is now, as the import system writes it)."""
    if prefix:
        resolved = os.path.realpath(prefix)
        if path in (prefix, resolved) or path.startswith(resolved + os.sep):
            return True
    return (os.sep + "__pycache__" + os.sep) in path or path.endswith(os.sep + "__pycache__")


def writes_cache(frame, held: Held, checks: list, index: int, compiling: list) -> bool:
    """May the import system make write check *index* at *frame* (``import_writes_bytecode`` in
    ``_core_bytecode.h``): the cache of the source ``get_code`` read, where ``cache_from_source``
    puts it (the folders ``set_data`` makes, the temporary file, the rename into place once the
    bytes written are that source compiled)?"""
    if frame.f_code.co_name not in ("set_data", "_write_atomic"):
        return False
    _, target, api = checks[index]
    value = target.get()
    source = source_of(frame, held)
    if not isinstance(value, str) or source is None or not source.endswith(".py"):
        return False
    where = cache_location(source, held)
    if where is None:
        return False
    folder, name = where
    if api == "os.mkdir":
        return (value == folder or folder.startswith(value + "/")) and is_pycache(value, held.prefix)
    if api in ("open", "os.remove"):
        return is_cache_file(value, folder, name, True)
    if api == "os.rename":
        if is_cache_file(value, folder, name, True):
            return True
        if not is_cache_file(value, folder, name, False):
            return False
        sources = [other.get() for k, (_, other, other_api) in enumerate(checks) if k != index and other_api == api]
        if not any(isinstance(s, str) and is_cache_file(s, folder, name, True) for s in sources):
            return False
        return matches(source, frame.f_locals.get("data"), compiling)
    return False
