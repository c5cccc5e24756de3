"""Per-distribution manifests: parsing them, and the grant specifications inside them.

A grant specification appears in many places (``capabilities``, ``app``,
``default``, each ``[tool.capimport.packages]`` entry, each
``[dependencies]`` entry) and takes one of two shapes:

* a list of names: ``["net", "fs-readonly"]``;
* a table of name to scope: ``{ net = ["*:443"], env-readonly = true }``.

Every problem becomes a :class:`Diagnostic` and the specification is
rejected whole: a half-understood grant is never used.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence

from .names import canonical_name as canonicalize_name

from ._values import FrozenValue
from .capabilities import SCOPE_KIND, is_capability, suggest
from .errors import Diagnostic
from .grant import NOTHING, Grant
from .scopes import ScopeError, parse_pattern
from .tomlfile import TomlFile

MANIFEST_KEYS = ("version", "capabilities", "scopes", "dependencies", "declined")

#: Where a declaration came from, in the order they are consulted.
SOURCES = ("config", "manifests", "shipped", "bundled", "default")


class Manifest(FrozenValue):
    """What one distribution is declared to need, and where that was written.

    A hand-written frozen class, not a ``@dataclass``: importing ``dataclasses``
    would cost every start ~17 ms (see :mod:`capimport._values`). The four
    mappings default to a new empty dict each.
    """

    __slots__ = ("name", "grant", "source", "path", "line", "version", "passes", "pass_lines",
                 "capability_lines", "declined")
    name: str                                   # canonical distribution name
    grant: Grant                                # declared capabilities
    source: str                                 # one of SOURCES
    path: str                                   # file that declared it ("" for default)
    line: int                                   # where the declaration starts
    version: Optional[str]                      # the versions the review covers (a PEP 440 specifier)
    passes: Mapping[str, Grant]                 # dependency -> most passed on
    pass_lines: Mapping[str, int]               # dependency -> line of its entry
    capability_lines: Mapping[str, int]
    declined: Mapping[str, str]                 # capability -> why a reviewer refused it

    def __init__(self, name: str, grant: Grant, source: str, path: str = "", line: int = 0,
                 version: Optional[str] = None, passes: Optional[Mapping[str, Grant]] = None,
                 pass_lines: Optional[Mapping[str, int]] = None,
                 capability_lines: Optional[Mapping[str, int]] = None,
                 declined: Optional[Mapping[str, str]] = None) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "grant", grant)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "line", line)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "passes", {} if passes is None else passes)
        object.__setattr__(self, "pass_lines", {} if pass_lines is None else pass_lines)
        object.__setattr__(self, "capability_lines", {} if capability_lines is None else capability_lines)
        object.__setattr__(self, "declined", {} if declined is None else declined)

    def _key(self) -> tuple:
        return (self.name, self.grant, self.source, self.path, self.line, self.version, self.passes,
                self.pass_lines, self.capability_lines, self.declined)

    def covers_version(self, version: str) -> bool:
        if self.version is None:
            return True
        from packaging.specifiers import SpecifierSet  # only audit and generate ask; run time never does

        return SpecifierSet(self.version).contains(version, prereleases=True)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.path and self.line else (self.path or self.source)


class GrantParser:
    """Parses grant specifications from one TOML file, collecting diagnostics."""

    def __init__(self, toml: TomlFile, diagnostics: list[Diagnostic]):
        self.toml = toml
        self.diagnostics = diagnostics
        self.base_dir = os.path.dirname(os.path.abspath(toml.path))

    def error(self, keys: Sequence[str], message: str, value: Any = None) -> None:
        self.diagnostics.append(self.toml.diagnostic(keys, message, value))

    def warning(self, keys: Sequence[str], message: str, value: Any = None) -> None:
        self.diagnostics.append(self.toml.diagnostic(keys, message, value, "warning"))

    def grant(self, keys: Sequence[str], value: Any) -> Optional[Grant]:
        """A grant from a list or table specification, or None after reporting errors."""
        before = len(self.diagnostics)
        if isinstance(value, list):
            names = [self._name(keys, item) for item in value]
            seen = set()
            for name in names:
                if name is not None and name in seen:
                    self.error(keys, f"capability {name!r} is listed twice", name)
                seen.add(name)
            mapping = {name: None for name in names if name is not None}
        elif isinstance(value, dict):
            mapping = {}
            for name, scope_value in value.items():
                if self._name(keys, name, as_key=True) is None:
                    continue
                scope = self.scope(list(keys) + [name], name, scope_value)
                if scope is not False:
                    mapping[name] = scope
        else:
            self.error(keys, "expected a list of capability names, such as [\"net\", \"fs-readonly\"], "
                             f"or a table of capability to scope; found {_type(value)}", _display(value))
            return None
        if len(self.diagnostics) > before and any(d.severity == "error" for d in self.diagnostics[before:]):
            return None
        return Grant.of(mapping)

    def scope(self, keys: Sequence[str], name: str, value: Any):
        """The scope for one capability: None (unscoped), a frozenset, or False (not granted / error)."""
        if value is True:
            return None
        if value is False:
            return False
        kind = SCOPE_KIND[name]
        if not isinstance(value, list):
            self.error(keys, f"the scope of {name!r} must be true or a list of patterns; found {_type(value)}")
            return False
        if kind is None:
            self.error(keys, f"{name!r} takes no scope; write {name} = true")
            return False
        if not value:
            self.error(keys, f"an empty scope grants nothing; remove {name!r} instead")
            return False
        patterns = set()
        for item in value:
            try:
                patterns.add(parse_pattern(kind, item, base_dir=self.base_dir))
            except ScopeError as error:
                self.error(keys, f"bad {kind} scope {item!r} for {name!r}: {error}", item)
        return frozenset(patterns) if len(patterns) == len(value) else False

    def _name(self, keys: Sequence[str], item: Any, *, as_key: bool = False) -> Optional[str]:
        if is_capability(item):
            return item
        if not isinstance(item, str):
            self.error(keys, f"a capability name must be a string; found {_type(item)}", _display(item))
            return None
        hint = suggest(item)
        hint_text = f"; did you mean {hint!r}?" if hint else ""
        where = list(keys) + [item] if as_key else keys
        self.error(where, f"unknown capability {item!r}{hint_text} "
                          "(known: fs, fs-readonly, env, env-readonly, net, process, ffi)",
                   None if as_key else item)
        return None


def parse_manifest(parser: GrantParser, keys: Sequence[str], table: Any, name: str,
                   source: str) -> Optional[Manifest]:
    """A full manifest (version, capabilities, scopes, dependencies) at *keys* of the file."""
    toml = parser.toml
    if not isinstance(table, dict):
        parser.error(keys, f"expected a table; found {_type(table)}")
        return None
    before = len(parser.diagnostics)
    for key in table:
        if key not in MANIFEST_KEYS:
            parser.error(list(keys) + [key], f"unknown key {key!r} in a manifest "
                                             f"(expected one of: {', '.join(MANIFEST_KEYS)})")
    version = _parse_version(parser, keys, table.get("version"))
    if "capabilities" not in table:
        parser.error(keys, "a manifest needs 'capabilities' (use [] for a package that needs none)")
        grant = None
    else:
        grant = parser.grant(list(keys) + ["capabilities"], table["capabilities"])
    grant = _apply_scopes(parser, keys, grant, table.get("scopes"))
    passes, pass_lines = _parse_dependencies(parser, keys, table.get("dependencies"))
    declined = _parse_declined(parser, keys, table.get("declined"))
    if any(d.severity == "error" for d in parser.diagnostics[before:]) or grant is None:
        return None
    line = toml.locate(keys)[0] if keys else 1
    capability_lines = {cap: toml.locate(list(keys) + ["capabilities"], cap)[0] for cap in grant}
    return Manifest(name=name, grant=grant, source=source, path=toml.path, line=line,
                    version=version, passes=passes, pass_lines=pass_lines,
                    capability_lines=capability_lines, declined=declined)


def _parse_version(parser: GrantParser, keys: Sequence[str], value: Any) -> Optional[str]:
    if value is None:
        return None
    where = list(keys) + ["version"]
    if not isinstance(value, str):
        parser.error(where, f"'version' must be a version specifier string such as \">=2,<3\"; found {_type(value)}")
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return str(SpecifierSet(value))
    except InvalidSpecifier:
        parser.error(where, f"{value!r} is not a valid version specifier (PEP 440), e.g. \">=2.28,<3\"", value)
        return None


def _apply_scopes(parser: GrantParser, keys: Sequence[str], grant: Optional[Grant],
                  scopes: Any) -> Optional[Grant]:
    if scopes is None or grant is None:
        return grant
    where = list(keys) + ["scopes"]
    if not isinstance(scopes, dict):
        parser.error(where, f"[scopes] must be a table of capability to patterns; found {_type(scopes)}")
        return None
    mapping = grant.as_dict()
    declared = set(_listed(parser, keys))
    for name, value in scopes.items():
        if parser._name(where, name, as_key=True) is None:
            continue
        if name not in declared:
            parser.error(where + [name], f"[scopes] narrows {name!r}, which 'capabilities' does not list")
            continue
        if value is True:
            parser.error(where + [name], f"[scopes] entries must be lists of patterns")
            continue
        scope = parser.scope(where + [name], name, value)
        if scope is False:
            continue
        mapping[name] = scope
    # An implied capability listed on its own stays as listed; one only implied
    # follows the narrowed scope of its implier.
    rebuilt = {name: scope for name, scope in mapping.items() if name in declared}
    return Grant.of(rebuilt)


def _listed(parser: GrantParser, keys: Sequence[str]) -> list[str]:
    """Capabilities written in 'capabilities' itself (not only implied)."""
    raw = parser.toml.data
    for key in keys:
        raw = raw.get(key, {}) if isinstance(raw, dict) else {}
    listed = raw.get("capabilities", []) if isinstance(raw, dict) else []
    return list(listed) if isinstance(listed, list) else list(listed.keys()) if isinstance(listed, dict) else []


def _parse_dependencies(parser: GrantParser, keys: Sequence[str], value: Any
                        ) -> tuple[dict[str, Grant], dict[str, int]]:
    if value is None:
        return {}, {}
    where = list(keys) + ["dependencies"]
    if not isinstance(value, dict):
        parser.error(where, f"[dependencies] must be a table of distribution to capabilities; found {_type(value)}")
        return {}, {}
    passes: dict[str, Grant] = {}
    lines: dict[str, int] = {}
    for dep, spec in value.items():
        canonical = canonicalize_name(dep)
        if canonical in passes:
            parser.error(where + [dep], f"{dep!r} is listed twice in [dependencies] (as {canonical!r})")
            continue
        grant = parser.grant(where + [dep], spec)
        if grant is not None:
            passes[canonical] = grant
            lines[canonical] = parser.toml.locate(where + [dep])[0]
    return passes, lines


def _parse_declined(parser: GrantParser, keys: Sequence[str], value: Any) -> dict[str, str]:
    """``[declined]``: capabilities a reviewer saw the code use and refused, each with the reason.

    It grants nothing; it tells ``audit --check`` that this use was reviewed,
    so that a deliberate refusal does not fail the gate forever.
    """
    if value is None:
        return {}
    where = list(keys) + ["declined"]
    if not isinstance(value, dict):
        parser.error(where, f"[declined] must be a table of capability to reason; found {_type(value)}")
        return {}
    declined = {}
    for name, reason in value.items():
        if parser._name(where, name, as_key=True) is None:
            continue
        if not isinstance(reason, str) or not reason.strip():
            parser.error(where + [name], f"[declined] {name!r} needs a reason: the code that uses it and "
                                         "why it is not granted")
            continue
        declined[name] = reason.strip()
    return declined


def default_manifest(name: str, grant: Grant = NOTHING, path: str = "", line: int = 0) -> Manifest:
    """The declaration of a distribution nobody wrote a manifest for."""
    return Manifest(name=name, grant=grant, source="default", path=path, line=line)


def _type(value: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _display(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) else None
