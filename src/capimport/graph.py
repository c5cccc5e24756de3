"""The dependency graph of installed distributions, rooted at the application.

Edges come from ``Requires-Dist`` parsed by ``packaging``: markers are
evaluated for the running interpreter, an ``extra == "x"`` requirement is
followed only when some dependent asked for ``D[x]``, names are canonical.
Requirements that are not installed are kept as ``missing``; cycles are
ordinary (unification takes the least fixpoint).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Iterable, Mapping, Optional

from .names import canonical_name as canonicalize_name

from ._values import FrozenValue, Value
from .distributions import Distribution

#: The node that stands for the application itself.
ROOT = ":app:"

_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


class Edge(FrozenValue):
    """``parent`` requires ``child`` (with ``extras``), as written in ``requirement``.

    A hand-written frozen class, not a ``@dataclass``: importing ``dataclasses``
    would cost every start ~17 ms (see :mod:`capimport._values`).
    """

    __slots__ = ("parent", "child", "requirement", "extras")
    parent: str
    child: str
    requirement: str
    extras: frozenset

    def __init__(self, parent: str, child: str, requirement: str, extras: frozenset = frozenset()) -> None:
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "child", child)
        object.__setattr__(self, "requirement", requirement)
        object.__setattr__(self, "extras", extras)

    def _key(self) -> tuple:
        return (self.parent, self.child, self.requirement, self.extras)


class DependencyGraph(Value):
    """Distributions reachable from the application and the edges between them.

    A hand-written class, not a ``@dataclass``: importing ``dataclasses`` would
    cost every start ~17 ms (see :mod:`capimport._values`). The dicts and lists
    default to a new empty one each.
    """

    __slots__ = ("distributions", "edges", "missing", "invalid", "active_extras", "root_is_project", "optional")
    distributions: Mapping[str, Distribution]
    edges: dict[str, list[Edge]]                # parent -> edges
    missing: list[tuple[str, str]]              # (parent, requirement)
    invalid: list[tuple[str, str]]              # (parent, requirement)
    active_extras: dict[str, set]
    root_is_project: bool
    #: parent -> installed distributions it requires only under an extra nobody asked for
    #: (starlette requires httpx under ``full``, and its test client is an httpx client): no edge
    #: for grants, but the parent builds on them all the same (``dependents_closure``).
    optional: dict[str, list[str]]

    def __init__(self, distributions: Mapping[str, Distribution],
                 edges: Optional[dict[str, list[Edge]]] = None,
                 missing: Optional[list[tuple[str, str]]] = None,
                 invalid: Optional[list[tuple[str, str]]] = None,
                 active_extras: Optional[dict[str, set]] = None, root_is_project: bool = False,
                 optional: Optional[dict[str, list[str]]] = None) -> None:
        self.distributions = distributions
        self.edges = {} if edges is None else edges
        self.missing = [] if missing is None else missing
        self.invalid = [] if invalid is None else invalid
        self.active_extras = {} if active_extras is None else active_extras
        self.root_is_project = root_is_project
        self.optional = {} if optional is None else optional

    def _key(self) -> tuple:
        return (self.distributions, self.edges, self.missing, self.invalid, self.active_extras,
                self.root_is_project, self.optional)

    @property
    def nodes(self) -> list[str]:
        """ROOT first, then every reachable distribution, sorted."""
        reached = {edge.child for edges in self.edges.values() for edge in edges}
        return [ROOT] + sorted(reached - {ROOT})

    def children(self, parent: str) -> list[Edge]:
        return self.edges.get(parent, [])

    def parents(self, child: str) -> list[Edge]:
        return [edge for edges in self.edges.values() for edge in edges if edge.child == child]

    def unreachable(self) -> list[str]:
        """Installed distributions the application does not (transitively) depend on."""
        reached = set(self.nodes)
        return sorted(name for name in self.distributions if name not in reached)

    def optional_requirers(self, name: str) -> list[str]:
        """``dist[extra]`` for each reachable distribution that requires *name* only under an extra.

        Such code often imports the optional dependency whenever it is installed
        (``try: import rich``), which is why an unreachable distribution can act.
        """
        reached = set(self.nodes)
        found = set()
        for parent in sorted(reached - {ROOT}):
            dist = self.distributions.get(parent)
            for line in getattr(dist, "requires", ()):
                head = _REQUIREMENT_NAME.match(line)
                extra = _EXTRA_MARKER.search(line)
                if head and extra and canonicalize_name(head.group(1)) == name:
                    found.add(f"{dist.display_name}[{extra.group(1)}]")
        return sorted(found)

    def parents_index(self, optional: bool = False) -> dict:
        """child -> its parents (with *optional*, through the optional edges too), for
        :meth:`dependents_closure` over many names (``parents`` scans every edge)."""
        parents_of: dict = {}
        for edges in self.edges.values():
            for edge in edges:
                parents_of.setdefault(edge.child, []).append(edge.parent)
        if optional:
            for parent, children in self.optional.items():
                for child in children:
                    parents_of.setdefault(child, []).append(parent)
        return parents_of

    def dependents_closure(self, name: str, optional: bool = False, parents_of: Optional[dict] = None) -> set:
        """Every node that (transitively) depends on *name*, ROOT included; with *optional*, also
        through requirements under extras nobody asked for (attribution's rule 2: code that builds
        on a framework, whether or not the extra that declares it is active). *parents_of* is
        :meth:`parents_index` for the same *optional*, when the caller keeps one."""
        if parents_of is None:
            parents_of = self.parents_index(optional)
        seen: set = set()
        queue = deque([name])
        while queue:
            for parent in parents_of.get(queue.popleft(), ()):
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        return seen

    def dependencies_closure(self, name: str) -> set:
        """Every distribution *name* (transitively) depends on."""
        seen: set = set()
        queue = deque([name])
        while queue:
            for edge in self.children(queue.popleft()):
                if edge.child not in seen:
                    seen.add(edge.child)
                    queue.append(edge.child)
        return seen


def build_graph(distributions: Mapping[str, Distribution],
                root_requirements: Optional[Iterable[str]] = None,
                environment: Optional[Mapping[str, str]] = None) -> DependencyGraph:
    """The graph from the application's requirements, or from every distribution nothing requires."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = dict(default_environment() if environment is None else environment)
    graph = DependencyGraph(distributions=distributions, root_is_project=root_requirements is not None)
    requirements = {name: _parse_all(graph, name, dist.requires) for name, dist in distributions.items()}
    if root_requirements is not None:
        requirements[ROOT] = _parse_all(graph, ROOT, root_requirements)
    else:
        requirements[ROOT] = [Requirement(name) for name in _unrequired(distributions, requirements, env)]

    graph.active_extras = {ROOT: {""}}
    optional: dict[str, set] = {}
    queue = deque([ROOT])
    while queue:
        parent = queue.popleft()
        extras = graph.active_extras[parent]
        found: dict[str, Edge] = {e.child: e for e in graph.edges.get(parent, [])}
        for req in requirements.get(parent, []):
            if not _marker_holds(req, extras, env):
                if parent in distributions and _marker_holds(req, _provided(distributions[parent]), env):
                    optional.setdefault(parent, set()).add(canonicalize_name(req.name))
                continue
            child = canonicalize_name(req.name)
            if child not in distributions:
                if (parent, str(req)) not in graph.missing:
                    graph.missing.append((parent, str(req)))
                continue
            old = found.get(child)
            wanted = frozenset(canonicalize_name(e) for e in req.extras)
            found[child] = Edge(parent, child, old.requirement if old else str(req),
                                (old.extras if old else frozenset()) | wanted)
            active = graph.active_extras.setdefault(child, set())
            new = ({""} | wanted) - active
            if new:
                active.update(new)
                queue.append(child)
        graph.edges[parent] = sorted(found.values(), key=lambda e: e.child)
    if root_requirements is None:
        _root_leftovers(graph, requirements, env)
    for parent, children in optional.items():
        active = {edge.child for edge in graph.edges.get(parent, [])}
        installed = sorted(c for c in children if c in distributions and c not in active and c != parent)
        if installed:
            graph.optional[parent] = installed
    return graph


def _provided(dist: Distribution) -> list[str]:
    """Every extra *dist* declares (``Provides-Extra``), canonical."""
    return [canonicalize_name(extra) for extra in dist.provides_extras]


def _parse_all(graph: DependencyGraph, parent: str, lines: Iterable[str]) -> list:
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for line in lines:
        try:
            out.append(Requirement(line))
        except InvalidRequirement:
            graph.invalid.append((parent, line))
    return out


def _marker_holds(req, extras: Iterable[str], env: Mapping[str, str]) -> bool:
    if req.marker is None:
        return True
    for extra in extras:
        try:
            if req.marker.evaluate({**env, "extra": extra}):
                return True
        except Exception:  # an undefined marker variable: treat as false
            continue
    return False


def _unrequired(distributions: Mapping[str, Distribution],
                requirements: Mapping[str, list], env: Mapping[str, str]) -> list[str]:
    """Distributions no other installed distribution requires (with its base extras)."""
    required = set()
    for parent, reqs in requirements.items():
        for req in reqs:
            if _marker_holds(req, [""], env):
                child = canonicalize_name(req.name)
                if child != parent:
                    required.add(child)
    return sorted(name for name in distributions if name not in required)


def _root_leftovers(graph: DependencyGraph, requirements: Mapping[str, list],
                    env: Mapping[str, str]) -> None:
    """With no project, distributions only a cycle requires still hang from the root."""
    left = graph.unreachable()
    while left:
        name = left[0]
        graph.edges[ROOT].append(Edge(ROOT, name, name))
        # Re-run reachability from the new root child.
        sub = build_graph(graph.distributions, [name], env)
        for parent, edges in sub.edges.items():
            if parent == ROOT:
                continue
            known = {e.child for e in graph.edges.get(parent, [])}
            graph.edges.setdefault(parent, []).extend(e for e in edges if e.child not in known)
        left = graph.unreachable()
    graph.edges[ROOT].sort(key=lambda e: e.child)
