"""Exceptions and diagnostics shared by every part of capimport.

Configuration problems are collected as :class:`Diagnostic` values (file,
line, column, message) so that one run reports every mistake in a file, the
way a compiler does, and then refuses to go on. Nothing malformed is ever
read as a wider grant.
"""

from __future__ import annotations

from typing import Iterable, Optional

from ._values import FrozenValue


class Diagnostic(FrozenValue):
    """One problem found in a policy file.

    A hand-written frozen class, not a ``@dataclass``: importing ``dataclasses``
    would cost every start ~17 ms (see :mod:`capimport._values`).
    """

    __slots__ = ("path", "line", "column", "message", "severity")
    path: str
    line: int
    column: int
    message: str
    severity: str  # "error" or "warning"

    def __init__(self, path: str, line: int, column: int, message: str, severity: str = "error") -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "line", line)
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "severity", severity)

    def _key(self) -> tuple:
        return (self.path, self.line, self.column, self.message, self.severity)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


class CapimportError(Exception):
    """Base class for capimport's own errors (not capability denials)."""


class ConfigError(CapimportError):
    """One or more errors in configuration or manifests; the command exits 2."""

    exit_code = 2

    def __init__(self, diagnostics: Iterable[Diagnostic] | str):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic("<capimport>", 0, 0, diagnostics)]
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


_EACCES = 13   # errno.EACCES on every POSIX system (no import of errno at start-up)


class CapabilityError(PermissionError):
    """Raised by enforcement when code acts without the capability it needs.

    It is a :class:`PermissionError` so that code which already copes with
    the operating system refusing an operation copes with capimport too.
    """

    def __init__(self, message: str, *, distribution: Optional[str] = None,
                 capability: Optional[str] = None, api: Optional[str] = None,
                 target: object = None):
        super().__init__(message)
        # As the operating system's refusal reads (code that rewords ``err.strerror`` and
        # re-raises, pygments' style-file error, or checks ``errno.EACCES``, keeps working).
        self.errno = _EACCES
        self.strerror = message
        self.distribution = distribution
        self.capability = capability
        self.api = api
        self.target = target

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


class CapabilityImportError(ImportError):
    """An import denied in strict mode: an ImportError carrying the capability message."""

    def __init__(self, message: str, *, name: Optional[str] = None,
                 distribution: Optional[str] = None, capability: Optional[str] = None):
        super().__init__(message, name=name)
        self.distribution = distribution
        self.capability = capability
