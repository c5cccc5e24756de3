"""The conditions a use runs under: the platform, the Python version, ``__main__``.

The analyser collects them as terms while it walks a module (``"win32"``,
``"!win32"``, ``"darwin|linux"``, ``"py:>=3.8"``, ``"?pkg.compat.WIN"`` for a
name another module defines) and :class:`~capimport.scan.model.Evidence`
evaluates them for the running interpreter (:func:`platform_matches`,
:func:`version_matches`): code for another platform or Python cannot run here,
so its uses do not count. This module knows nothing of the rest of the scanner.
"""

from __future__ import annotations

import ast
import sys
from typing import Optional


def platform_matches(condition: str, platform: Optional[str] = None) -> bool:
    """Whether a platform condition (``"win32"``, ``"!win32"``, ``"darwin|linux"``, ``"freebsd*"``,
    conditions joined by ``&``) holds for *platform* (default ``sys.platform``)."""
    platform = sys.platform if platform is None else platform
    for part in condition.split("&"):
        negated = part.startswith("!")
        names = part[1:] if negated else part
        hit = any(platform.startswith(name[:-1]) if name.endswith("*") else platform == name
                  for name in names.split("|"))
        if hit == negated:
            return False
    return True


_LEAVING = (ast.Raise, ast.Return, ast.Continue, ast.Break)
#: Complete ``sys.platform`` values (a ``startswith`` of one of these is that value).
_PLATFORMS = frozenset({"aix", "android", "cygwin", "darwin", "emscripten", "ios", "linux", "wasi", "win32"})
_OS_NAMES = {"nt": "win32", "posix": "!win32", "java": "java*"}
_SYSTEMS = {"windows": "win32", "darwin": "darwin", "linux": "linux", "java": "java*", "aix": "aix",
            "freebsd": "freebsd*", "openbsd": "openbsd*", "netbsd": "netbsd*", "sunos": "sunos*",
            "emscripten": "emscripten", "ios": "ios", "android": "android"}


#: Standard modules that exist on one side only: importing them fails elsewhere.
_PLATFORM_MODULES = {
    **dict.fromkeys(("winreg", "_winreg", "msvcrt", "_winapi", "winsound", "_overlapped", "nt", "_msi",
                     "msilib"), "win32"),
    **dict.fromkeys(("posix", "pwd", "grp", "termios", "tty", "pty", "fcntl", "resource", "syslog",
                     "crypt", "spwd", "nis", "_posixsubprocess"), "!win32"),
}
#: Names ``from ctypes import ...`` finds only on Windows.
_CTYPES_WINDOWS = frozenset({"windll", "oledll", "WinDLL", "OleDLL", "WINFUNCTYPE", "HRESULT",
                             "FormatError", "GetLastError", "WinError"})


def _import_platform(stmt) -> Optional[str]:
    """The platform an unconditional import statement succeeds on (None: everywhere)."""
    if isinstance(stmt, ast.Import):
        for alias in stmt.names:
            term = _PLATFORM_MODULES.get(alias.name.split(".", 1)[0])
            if term is not None:
                return term
        return None
    if stmt.level:
        return None
    module = stmt.module or ""
    term = _PLATFORM_MODULES.get(module.split(".", 1)[0])
    if term is None and module == "ctypes" and any(a.name in _CTYPES_WINDOWS for a in stmt.names):
        term = "win32"
    if term is None and module == "six.moves":  # from six.moves import winreg
        term = next((_PLATFORM_MODULES[a.name] for a in stmt.names if a.name in _PLATFORM_MODULES), None)
    return term


_ORDER_OPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_FLIPPED = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE}
_OP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _mentions_version(node: ast.AST) -> bool:
    """A cheap syntactic test: ``...version_info...`` or ``....major``."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        if isinstance(node, ast.Attribute) and node.attr in ("version_info", "major"):
            return True
        node = node.value
    return isinstance(node, ast.Name) and node.id == "version_info"


def _version_term(op_kind, version: tuple) -> str:
    """``py:>=3.8``: a condition on the running Python's full ``sys.version_info``."""
    return "py:" + _OP_TEXT[op_kind] + ".".join(map(str, version))


def _negate_version(term: str) -> str:
    for op, opposite in (("<=", ">"), (">=", "<"), ("<", ">="), (">", "<=")):
        if term.startswith("py:" + op):
            return "py:" + opposite + term[3 + len(op):]
    return term


def version_matches(condition: str, version: Optional[tuple] = None) -> bool:
    """Whether a Python-version condition (``>=3.8``, ``>=3.7,<3.8``) holds for *version*
    (default: the running interpreter's ``sys.version_info``)."""
    current = tuple(sys.version_info) if version is None else tuple(version)
    for part in condition.split(","):
        for op in ("<=", ">=", "<", ">"):
            if part.startswith(op):
                wanted = tuple(int(x) for x in part[len(op):].split("."))
                if not {"<": current < wanted, "<=": current <= wanted,
                        ">": current > wanted, ">=": current >= wanted}[op]:
                    return False
                break
    return True


def _leaves(stmts: list) -> bool:
    """A block that always leaves its enclosing block (ends in raise, return, continue, break)."""
    return bool(stmts) and isinstance(stmts[-1], _LEAVING)


def _is_main_guard(test: ast.AST) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = (test.left, test.comparators[0])
    return any(isinstance(a, ast.Name) and a.id == "__name__" for a in sides) and any(
        isinstance(b, ast.Constant) and b.value == "__main__" for b in sides)


def _is_type_checking(test: ast.AST) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``: a block that never runs."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _platform_term(subject: str, values: tuple, prefix: bool) -> Optional[str]:
    """The condition ``subject == one of values`` (``startswith`` when *prefix*) as a term."""
    names = set()
    for value in values:
        if subject == "sys.platform":
            if not prefix or value in _PLATFORMS:
                name = value
            elif value in ("win", "win3"):
                name = "win32"
            else:
                name = value + "*"
        elif prefix:
            return None
        elif subject == "os.name":
            name = _OS_NAMES.get(value)
        else:
            name = _SYSTEMS.get(value.lower())
        if not name or "&" in name or "|" in name:
            return None
        names.add(name)
    if any(n.startswith("!") for n in names):
        return names.pop() if len(names) == 1 else None
    return "|".join(sorted(names))


def _negate(term: str) -> str:
    if term.startswith("py:"):
        return _negate_version(term)
    return term[1:] if term.startswith("!") else "!" + term


def _and(ctx: Optional[tuple], terms: tuple) -> Optional[tuple]:
    """*ctx* with more platform conditions that all hold."""
    if not terms:
        return ctx
    platform, entry = ctx or ((), "")
    return (platform + tuple(t for t in terms if t not in platform), entry)


def _marks(ctx: Optional[tuple], own: bool = False) -> Optional[tuple]:
    """The marks of a use record: None, or (platform terms, entry, own)."""
    if ctx is None:
        return (((), "", True) if own else None)
    return (ctx[0], ctx[1], own)
