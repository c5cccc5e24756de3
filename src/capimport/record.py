"""Reading what ``record`` mode observed at run time (a JSON-lines file).

Each line is one act: ``{"distribution", "version", "capability", "scope",
"api", "location"}``. The run-time layer appends to the file while the
application runs, so a process killed mid-write leaves a truncated last line:
that line is skipped. Any other malformed line is an error naming the file
and line, because a record that is half understood must not be half merged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Optional

from .names import canonical_name as canonicalize_name

from .capabilities import CAPABILITIES, SCOPE_KIND
from .errors import ConfigError, Diagnostic
from .grant import NOTHING, Grant
from .scopes import ScopeError, parse_pattern

#: Names the run-time layer may use for the application's own code (not a distribution).
APP_NAMES = frozenset({"", ":app:", "(app)", "<app>"})


@dataclass(frozen=True, order=True)
class Observation:
    """One act seen at run time."""

    distribution: str          # canonical name
    capability: str
    scope: Optional[str]       # the target as a scope text (path, host:port, name...), or None
    api: str = ""
    location: str = ""         # "file:line" of the code that acted
    version: str = ""

    def describe(self) -> str:
        target = f" {self.scope}" if self.scope else ""
        where = f" at {self.location}" if self.location else ""
        return f"{self.api or self.capability}{target}{where}"


def read_records(path: str) -> list[Observation]:
    """Every observation in the record file at *path*; raises ConfigError on a malformed line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as error:
        raise ConfigError([Diagnostic(path, 0, 0, f"cannot read the record file: {error.strerror or error}")])
    lines = text.split("\n")
    complete = text.endswith("\n")
    observations: list[Observation] = []
    problems: list[Diagnostic] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        last = number == len(lines) and not complete
        try:
            data = json.loads(line)
        except ValueError as error:
            if last:
                break  # a truncated final line: the process stopped mid-write
            problems.append(Diagnostic(path, number, error.colno if hasattr(error, "colno") else 1,
                                       f"not a JSON object: {error.msg if hasattr(error, 'msg') else error}"))
            continue
        observation, problem = _observation(data)
        if problem:
            problems.append(Diagnostic(path, number, 1, problem))
        elif observation is not None:
            observations.append(observation)
    if problems:
        raise ConfigError(problems)
    return observations


def _observation(data: object) -> tuple[Optional[Observation], Optional[str]]:
    if not isinstance(data, dict):
        return None, "expected a JSON object with distribution, capability, scope, api, location"
    name = data.get("distribution")
    capability = data.get("capability")
    if name is None or (isinstance(name, str) and name in APP_NAMES) or \
            data.get("origin") in ("application", "unknown"):
        return None, None  # the application's own acts (or unattributed ones) need no manifest
    if not isinstance(name, str):
        return None, "'distribution' must be a string"
    if capability not in CAPABILITIES:
        return None, f"unknown capability {capability!r}"
    scope = data.get("scope")
    if isinstance(scope, list):
        scope = scope[0] if len(scope) == 1 else None
    if scope is not None and not isinstance(scope, str):
        scope = str(scope)
    if scope == "*":
        scope = None
    return Observation(canonicalize_name(name), capability, scope or None, str(data.get("api") or ""),
                       str(data.get("location") or ""), str(data.get("version") or "")), None


def by_distribution(observations: Iterable[Observation]) -> dict[str, list[Observation]]:
    out: dict[str, list[Observation]] = {}
    for observation in observations:
        out.setdefault(observation.distribution, []).append(observation)
    for items in out.values():
        # scope may be None (an act with no target) beside a text: sort on text
        items.sort(key=lambda o: (o.capability, o.scope or "", o.api, o.location, o.version))
    return out


def observed_grant(observations: Iterable[Observation], *, scoped: bool = False) -> Grant:
    """What the observations needed: unscoped by default (one run sees only some targets).

    With *scoped*, each capability is narrowed to the targets seen, where they
    parse as scopes; a target that does not parse makes its capability unscoped.
    """
    mapping: dict[str, object] = {}
    for observation in observations:
        kind = SCOPE_KIND.get(observation.capability)
        pattern = None
        if scoped and kind and observation.scope:
            try:
                pattern = parse_pattern(kind, observation.scope, environ={})
            except ScopeError:
                pattern = None
        current = mapping.get(observation.capability, frozenset())
        if pattern is None or current is None:
            mapping[observation.capability] = None
        else:
            mapping[observation.capability] = current | {pattern}  # type: ignore[operator]
    return Grant.of(mapping) if mapping else NOTHING  # type: ignore[arg-type]
