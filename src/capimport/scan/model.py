"""The scanner's data: folded argument values, evidence, findings, results.

Plain values only, so that they pickle cheaply from the pool's workers
(:class:`FileSummary`) and round-trip through the JSON cache
(:class:`ScanResult`); the code that makes them is in the other modules. The
two predicates on folded values that both the analyser and the evidence step
need (:func:`_plain_str`, :func:`_names_self`) live here with the values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from ..capabilities import FS_READONLY, SCOPE_KIND
from ..grant import NOTHING, Grant
from ..scopes import ScopeError, parse_pattern
from .contexts import platform_matches, version_matches

# ============================================================================ folded argument values


class Ref(str):
    """A folded argument that is a name (``os.devnull``, ``os.O_WRONLY``), not a string literal."""

    __slots__ = ()

    def __reduce__(self):
        return (Ref, (str(self),))


class Flags(tuple):
    """A folded ``A | B | C`` argument."""

    def __reduce__(self):
        return (Flags, (tuple(self),))


UNKNOWN = ...          # an argument that is not a literal


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self):
        return self.name  # pickles as a reference to the module global of that name


MISSING = _Sentinel("MISSING")   # an argument that is not given
STAR = _Sentinel("STAR")         # marks a *args in the positional arguments
OWN = _Sentinel("OWN")           # a path inside the distribution's own installed files


def _plain_str(value) -> bool:
    return isinstance(value, str) and not isinstance(value, Ref)


def _names_self(value, own: frozenset) -> bool:
    """True when a folded argument names the distribution itself (its package or its name)."""
    if value is MISSING or value is OWN:
        return True
    if isinstance(value, Ref):
        return str(value) in ("builtins.__name__", "builtins.__package__", "builtins.__spec__.name")
    if isinstance(value, str):
        return value.split(".", 1)[0] in own or value.replace("-", "_").lower() in own
    return False


# ============================================================================ results


@dataclass(frozen=True, order=True)
class Evidence:
    """One use of one capability: where, through which API, in which function.

    Three marks qualify a use (see docs/inference.md, "What counts"):

    * ``own``: the use acts on the distribution's own installed files
      (``open(os.path.join(os.path.dirname(__file__), ...))``,
      ``importlib.resources.files(__package__)``...). Reading them is free at
      run time, so an own read does not count toward ``fs-readonly``; an own
      write still counts as ``fs``.
    * ``entry``: ``"__main__"`` for code under ``if __name__ == "__main__":``
      and in ``__main__.py`` modules. It counts (``python -m`` runs it), but a
      reviewer sees at once that no library caller reaches it.
    * ``platform``: the ``sys.platform`` condition the code runs under
      (``"win32"``, ``"!win32"``, ``"darwin|linux"``, ``"freebsd*"``; ``&``
      joins nested conditions), and ``python``, the ``sys.version_info``
      condition (``"<3.7"``, ``">=3.7,<3.8"``). It counts only where the
      conditions hold for the running interpreter.
    """

    capability: str
    file: str          # relative to the distribution's root, with forward slashes
    line: int
    col: int           # 1-based
    api: str
    function: str = "<module>"
    scope: Optional[tuple] = None   # literal scope texts; None: the whole capability
    hint: bool = False              # matched by method name only (receiver's class unknown)
    own: bool = False               # acts on the distribution's own installed files
    entry: str = ""                 # "__main__": only run as a script (python -m, __main__ block)
    platform: str = ""              # sys.platform condition it runs under; "" everywhere
    python: str = ""                # Python version condition it runs under (">=3.7,<3.8"); "" any

    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def marks(self) -> str:
        """`` (own file)``, `` [__main__]``, `` [platform win32]``: the qualifiers, for people."""
        out = " (own file)" if self.own else ""
        if self.entry:
            out += f" [{self.entry}]"
        if self.platform:
            out += f" [platform {self.platform}]"
        if self.python:
            out += f" [python {self.python}]"
        return out

    def describe(self) -> str:
        scope = f" [{', '.join(self.scope)}]" if self.scope else ""
        return f"{self.location()} {self.api}{scope} in {self.function}{self.marks()}"

    def counts(self, platform: Optional[str] = None) -> bool:
        """Whether this use counts toward the inferred grant on *platform* (default: this one).

        Reading the distribution's own files is free; code for another platform
        cannot run here. Everything else counts, ``__main__`` code included.
        """
        if self.own and self.capability == FS_READONLY:
            return False
        if self.platform and not platform_matches(self.platform, platform):
            return False
        if self.python and not version_matches(self.python):
            return False
        return True

    def to_json(self) -> dict:
        data = {"capability": self.capability, "api": self.api, "file": self.file,
                "line": self.line, "col": self.col, "function": self.function}
        if self.scope is not None:
            data["scope"] = list(self.scope)
        if self.hint:
            data["hint"] = True
        if self.own:
            data["own"] = True
        if self.entry:
            data["entry"] = self.entry
        if self.platform:
            data["platform"] = self.platform
        if self.python:
            data["python"] = self.python
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> "Evidence":
        scope = data.get("scope")
        return cls(data["capability"], data["file"], int(data["line"]), int(data["col"]), data["api"],
                   data.get("function", "<module>"), tuple(scope) if scope is not None else None,
                   bool(data.get("hint", False)), bool(data.get("own", False)), str(data.get("entry", "")),
                   str(data.get("platform", "")), str(data.get("python", "")))


@dataclass(frozen=True, order=True)
class Finding:
    """Something the scanner cannot turn into a capability, reported for review."""

    file: str
    line: int
    col: int
    kind: str          # dynamic-import | dynamic-code | dynamic-attribute | native | startup-code | parse-error
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.kind}: {self.message}"

    def to_json(self) -> dict:
        return {"kind": self.kind, "file": self.file, "line": self.line, "col": self.col,
                "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping) -> "Finding":
        return cls(data["file"], int(data["line"]), int(data["col"]), data["kind"], data["message"])


FINDING_KINDS = ("dynamic-import", "dynamic-code", "dynamic-attribute", "native", "startup-code", "parse-error")


@dataclass
class ScanResult:
    """What the scanner found in one distribution."""

    name: str
    version: str
    root: str                              # folder evidence paths are relative to
    evidence: tuple = ()
    findings: tuple = ()
    files: int = 0
    imports: tuple = ()                    # top-level modules of other distributions it imports
    cached: bool = False
    _inferred: Optional[Grant] = field(default=None, repr=False, compare=False)

    @property
    def inferred(self) -> Grant:
        """The capabilities the counting evidence shows (:meth:`Evidence.counts`), scoped where
        every use had a literal scope."""
        if self._inferred is None:
            self._inferred = evidence_grant(e for e in self.evidence if e.counts())
        return self._inferred

    def evidence_for(self, capability: str) -> list:
        """Counting evidence of *capability*, including uses of the capabilities that imply it."""
        names = {capability} | {cap for cap, implied in
                                (("fs", ("fs-readonly",)), ("env", ("env-readonly",))) if capability in implied}
        return [e for e in self.evidence if e.capability in names and e.counts()]

    def uncounted(self) -> list:
        """Evidence that does not count here: own-file reads, other platforms' code."""
        return [e for e in self.evidence if not e.counts()]

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version, "root": self.root, "files": self.files,
                "imports": list(self.imports), "inferred": self.inferred.to_json(),
                "evidence": [e.to_json() for e in self.evidence],
                "findings": [f.to_json() for f in self.findings]}

    @classmethod
    def from_json(cls, data: Mapping) -> "ScanResult":
        return cls(data["name"], data["version"], data["root"],
                   tuple(Evidence.from_json(e) for e in data["evidence"]),
                   tuple(Finding.from_json(f) for f in data["findings"]),
                   int(data.get("files", 0)), tuple(data.get("imports", ())))


def evidence_grant(evidence: Iterable[Evidence]) -> Grant:
    """Union of the evidence: a capability is scoped only when every use of it has a literal scope."""
    scopes: dict[str, object] = {}
    for item in evidence:
        scope = _parse_scope(item.capability, item.scope)
        if item.capability not in scopes:
            scopes[item.capability] = scope
        elif scopes[item.capability] is not None:
            scopes[item.capability] = None if scope is None else scopes[item.capability] | scope
    if not scopes:
        return NOTHING
    return Grant.of(scopes)  # type: ignore[arg-type]


def _parse_scope(capability: str, texts: Optional[tuple]):
    kind = SCOPE_KIND.get(capability)
    if texts is None or kind is None or not texts:
        return None
    try:
        return frozenset(parse_pattern(kind, text, environ={}) for text in texts)
    except ScopeError:
        return None


# ============================================================================ per file


@dataclass
class FileSummary:
    """The per-file step's result: plain data, cheap to pickle."""

    module: str
    exports: dict            # module-level name -> tuple of values
    stars: tuple             # modules star-imported at module level
    uses: list               # (value, form, args, kwargs, line, col, function, hint, marks)
    findings: list           # (line, col, kind, message)
    imports: frozenset       # top-level modules imported
    platforms: dict = field(default_factory=dict)   # module-level name -> platform condition it holds

