"""``capimport why DIST [CAP]``: the paths that grant a capability, or the edge that cuts it.

Like ``npm why`` or ``cargo tree -i``: for each capability of DIST, the
shortest dependency paths from the application along which it flows, each
step holding it and each edge passing it; for a capability DIST declares but
does not get, every place the flow stops, with the manifest line to change.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

from .names import canonical_name as canonicalize_name

from .capabilities import CAPABILITIES
from .grant import EVERYTHING, NOTHING, Grant
from .graph import ROOT
from .policy import Policy, declared_grant

MAX_PATHS = 5


def explain(policy: Policy, dist: str, capability: Optional[str] = None) -> list[str]:
    """Lines of explanation; raises KeyError for a distribution that is not installed."""
    name = canonicalize_name(dist)
    if name not in policy.distributions:
        raise KeyError(name)
    manifest = policy.declarations[name]
    effective = policy.effective.get(name, NOTHING)
    info = policy.distributions[name]
    lines = [f"{info.display_name} {info.version}: declared by {manifest.source} ({manifest.where})",
             f"  declared:  {manifest.grant.describe()}", f"  effective: {effective.describe()}"]
    if name not in set(policy.graph.nodes):
        lines.append(f"  {info.display_name} is not a dependency of the application, so nothing grants it "
                     "anything. Add it to [project.dependencies] or to a dependent's requirements.")
        extras = policy.graph.optional_requirers(name)
        if extras:
            lines.append(f"  It is an optional dependency of {', '.join(extras)}: code there may import it "
                         "whenever it is installed; asking for that extra makes it a dependency.")
        return lines
    wanted = [capability] if capability else sorted(set(manifest.grant) | set(effective),
                                                   key=CAPABILITIES.index)
    for cap in wanted:
        lines.append("")
        if effective.allows(cap):
            lines.append(f"{cap}: granted{_scope_text(effective, cap)}, through")
            for path in grant_paths(policy, name, cap):
                lines.append("  " + " -> ".join(_label(policy, node) for node in path))
        else:
            lines.append(f"{cap}: not granted")
            lines.extend("  " + cut for cut in cuts(policy, name, cap))
    return lines


def _scope_text(grant: Grant, cap: str) -> str:
    scope = grant.scope(cap)
    return "" if scope is None else f" within {', '.join(sorted(map(str, scope)))}"


def _label(policy: Policy, node: str) -> str:
    return "(app)" if node == ROOT else policy.distributions[node].display_name


def _passes(policy: Policy, parent: str, child: str) -> Grant:
    manifest = policy.declarations.get(parent)
    if manifest is None or child not in manifest.passes:
        return EVERYTHING
    return manifest.passes[child]


def _carries(policy: Policy, parent: str, child: str, cap: str) -> bool:
    holds = policy.effective.get(parent, NOTHING).allows(cap)
    return holds and _passes(policy, parent, child).allows(cap)


def grant_paths(policy: Policy, name: str, cap: str, limit: int = MAX_PATHS) -> list[list[str]]:
    """Shortest simple paths ROOT -> ... -> name whose every edge carries *cap*."""
    found: list[list[str]] = []
    queue = deque([[ROOT]])
    expansions = 0
    while queue and len(found) < limit and expansions < 20000:
        path = queue.popleft()
        expansions += 1
        for edge in policy.graph.children(path[-1]):
            if edge.child in path or not _carries(policy, path[-1], edge.child, cap):
                continue
            if edge.child == name:
                found.append(path + [name])
            elif policy.effective.get(edge.child, NOTHING).allows(cap):
                queue.append(path + [edge.child])
    return found


def cuts(policy: Policy, name: str, cap: str) -> list[str]:
    """Every reason *cap* does not reach *name*: its own declaration, or each incoming edge."""
    manifest = policy.declarations[name]
    label = policy.distributions[name].display_name
    out = []
    declared = declared_grant(manifest, policy.config)
    if not declared.allows(cap):
        if manifest.source == "shipped" and manifest.grant.allows(cap):
            out.append(f"cut: {label} asks for {cap} only in its own shipped capimport.toml ({manifest.where}); "
                       f"a shipped declaration is capped by 'default'. Review it into your manifests to grant it.")
        else:
            out.append(f"cut: {label}'s declaration ({manifest.source}: {manifest.where}) does not list {cap}. "
                       f"To grant it, add \"{cap}\" to its capabilities.")
    for edge in policy.graph.parents(name):
        parent = edge.parent
        parent_label = _label(policy, parent)
        if not policy.effective.get(parent, NOTHING).allows(cap):
            where = "the application's 'app' grant" if parent == ROOT else f"{parent_label} itself"
            out.append(f"cut: {parent_label} -> {label}: {where} does not hold {cap}")
        elif not _passes(policy, parent, name).allows(cap):
            pm = policy.declarations[parent]
            line = pm.pass_lines.get(name, pm.line)
            out.append(f"cut: {parent_label} -> {label}: {parent_label}'s [dependencies] passes "
                       f"{_passes(policy, parent, name).describe()} to {label} ({pm.path}:{line})")
    return out or [f"{label} declares {cap}, and no dependent cuts it"]
