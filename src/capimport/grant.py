"""Grant: an immutable set of capabilities, each unscoped or narrowed by patterns.

A grant is the unit everything else computes with: a manifest declares one,
a ``[dependencies]`` entry passes one, unification intersects and unions
them, and the run-time hook asks one ``allows(capability, target)``.

Implication is closed on construction: a grant holding ``fs`` over a scope
also holds ``fs-readonly`` over that scope, so that set operations can work
capability by capability.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Optional

from ._values import FrozenValue
from .capabilities import CAPABILITIES, IMPLIES
from .scopes import (Scope, ScopePattern, scope_allows, scope_intersection, scope_issubset,
                     scope_union)


class Grant(FrozenValue):
    """Capabilities with their scopes, as a sorted tuple of ``(name, scope)``.

    ``scope`` is ``None`` for an unscoped capability or a frozenset of
    :class:`ScopePattern`. Build grants with :meth:`of` (or :data:`NOTHING`,
    :data:`EVERYTHING`), which closes implication and drops empty scopes.

    A hand-written frozen class, not a ``@dataclass``: importing ``dataclasses``
    would cost every start ~17 ms (see :mod:`capimport._values`).
    """

    __slots__ = ("entries",)
    entries: tuple[tuple[str, Scope], ...]

    def __init__(self, entries: tuple[tuple[str, Scope], ...] = ()) -> None:
        object.__setattr__(self, "entries", entries)

    def _key(self) -> tuple:
        return (self.entries,)

    # -- construction -----------------------------------------------------------------

    @classmethod
    def of(cls, mapping: Mapping[str, Scope] | Iterable[str]) -> "Grant":
        """A grant from ``{capability: scope}`` or from an iterable of unscoped names."""
        if not isinstance(mapping, Mapping):
            mapping = {name: None for name in mapping}
        closed: dict[str, Scope] = {}
        for name, scope in mapping.items():
            if name not in CAPABILITIES:
                raise ValueError(f"unknown capability {name!r}")
            closed[name] = _merge(closed, name, scope)
            for implied in IMPLIES.get(name, ()):
                closed[implied] = _merge(closed, implied, scope)
        entries = tuple(sorted(
            ((name, scope) for name, scope in closed.items() if scope is None or scope),
            key=lambda item: CAPABILITIES.index(item[0])))
        return cls(entries)

    # -- queries ---------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return any(entry[0] == name for entry in self.entries)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self)

    def scope(self, name: str) -> Scope:
        """The scope of *name*; raises KeyError when the grant lacks it."""
        for entry_name, scope in self.entries:
            if entry_name == name:
                return scope
        raise KeyError(name)

    def as_dict(self) -> dict[str, Scope]:
        return dict(self.entries)

    def allows(self, name: str, target: object = None) -> bool:
        """True when the grant holds *name* and, if scoped, *target* is inside the scope.

        ``target`` ``None`` asks about the capability as a whole: a scoped
        grant then answers True (it holds the capability somewhere).
        """
        for entry_name, scope in self.entries:
            if entry_name == name:
                return target is None or scope_allows(scope, target)
        return False

    # -- algebra ----------------------------------------------------------------------

    def union(self, other: "Grant") -> "Grant":
        merged = self.as_dict()
        for name, scope in other.entries:
            merged[name] = scope_union(merged[name], scope) if name in merged else scope
        return Grant.of(merged)

    def intersection(self, other: "Grant") -> "Grant":
        theirs = other.as_dict()
        return Grant.of({name: scope_intersection(scope, theirs[name])
                         for name, scope in self.entries if name in theirs})

    def issubset(self, other: "Grant") -> bool:
        theirs = other.as_dict()
        return all(name in theirs and scope_issubset(scope, theirs[name])
                   for name, scope in self.entries)

    __or__ = union
    __and__ = intersection
    __le__ = issubset

    def missing_from(self, other: "Grant") -> "Grant":
        """The part of this grant that *other* does not hold (whole capabilities or scopes)."""
        theirs = other.as_dict()
        out: dict[str, Scope] = {}
        for name, scope in self.entries:
            if name not in theirs:
                out[name] = scope
            elif not scope_issubset(scope, theirs[name]):
                if scope is None:
                    out[name] = None
                else:
                    out[name] = frozenset(p for p in scope
                                          if not scope_issubset(frozenset([p]), theirs[name]))
        return Grant(tuple((n, s) for n, s in out.items()))

    # -- display ----------------------------------------------------------------------

    def to_json(self) -> list:
        """Names as strings; scoped ones as ``{"name": ..., "scope": [...]}``."""
        return [name if scope is None else {"name": name, "scope": sorted(str(p) for p in scope)}
                for name, scope in self.entries]

    def describe(self, *, implied: bool = False) -> str:
        """Short text such as ``fs, net(*:443), env-readonly``.

        Implied entries whose scope equals their implier's are hidden unless
        *implied* is set, so ``fs`` does not print as ``fs, fs-readonly``.
        """
        shown = []
        for name, scope in self.entries:
            if not implied and _is_redundant(self, name, scope):
                continue
            shown.append(name if scope is None else f"{name}({', '.join(sorted(map(str, scope)))})")
        return ", ".join(shown) if shown else "-"

    def __str__(self) -> str:
        return self.describe()


def _merge(current: dict[str, Scope], name: str, scope: Scope) -> Scope:
    return scope_union(current[name], scope) if name in current else scope


def _is_redundant(grant: Grant, name: str, scope: Scope) -> bool:
    for implier, implied in IMPLIES.items():
        if name in implied and implier in grant and grant.scope(implier) == scope:
            return True
    return False


NOTHING = Grant()
EVERYTHING = Grant.of(CAPABILITIES)


def scoped(name: str, patterns: Iterable[ScopePattern]) -> Grant:
    """A grant of one capability over *patterns*."""
    return Grant.of({name: frozenset(patterns)})


def unscoped(*names: str) -> Grant:
    return Grant.of(names)


def union_all(grants: Iterable[Grant]) -> Grant:
    result = NOTHING
    for grant in grants:
        result = result | grant
    return result

