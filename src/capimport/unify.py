"""Unification of grants over the dependency graph: a pure function of plain data.

    effective(root) = app
    effective(D)    = declared(D) ∩ ⋃ over each dependent P of D: (effective(P) ∩ passes(P → D))

``passes(P → D)`` is P's ``[dependencies]`` entry for D, or everything when P
says nothing. Iterating from "nothing" reaches the least fixpoint, which is
what cycles resolve to; each node's value only grows (it is joined with its
previous value), so the loop ends even where the conservative intersection of
glob sets is not monotone pattern by pattern. No I/O happens here, so
the rule can be tested exhaustively and by property.
"""

from __future__ import annotations

from collections import deque
from typing import Mapping, Optional, Sequence

from .capabilities import CAPABILITIES
from .grant import EVERYTHING, NOTHING, Grant

#: ``edges[parent]`` lists ``(child, passes)``; ``passes`` None means "everything".
Edges = Mapping[str, Sequence[tuple[str, Optional[Grant]]]]


def unify(root: str, app: Grant, declared: Mapping[str, Grant], edges: Edges) -> dict[str, Grant]:
    """Effective grant of every node reachable from *root* (and NOTHING for the rest)."""
    incoming: dict[str, list[tuple[str, Grant]]] = {}
    for parent, children in edges.items():
        for child, passes in children:
            if child != root:
                incoming.setdefault(child, []).append((parent, EVERYTHING if passes is None else passes))

    effective: dict[str, Grant] = {name: NOTHING for name in declared}
    effective[root] = app
    queue = deque(child for child, _ in edges.get(root, ()))
    queued = set(queue)
    budget = 1000 * (len(declared) + 1) * len(CAPABILITIES)  # a safety net: growth alone ends the loop
    while queue:
        budget -= 1
        if budget < 0:
            raise RuntimeError("capimport: unification did not converge (a bug); refusing to guess a policy")
        node = queue.popleft()
        queued.discard(node)
        flowing = NOTHING
        for parent, passes in incoming.get(node, ()):
            flowing = flowing | (effective.get(parent, NOTHING) & passes)
        # Joined with what the node already had: every value here lies within the exact least
        # fixpoint, and growing only makes the loop end even where the conservative scope
        # operations are not monotone pattern by pattern (tests: test_unify_terminates_*).
        old = effective.get(node, NOTHING)
        new = old | (declared.get(node, NOTHING) & flowing)
        if new != old:
            effective[node] = new
            for child, _ in edges.get(node, ()):
                if child not in queued and child != root:
                    queue.append(child)
                    queued.add(child)
    return effective
