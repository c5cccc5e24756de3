"""The CI gate and the upgrade review: inferred/recorded use against grants, and audit against audit.

:func:`check` lists every :class:`Problem` that makes ``capimport audit
--check`` fail: a distribution whose code (statically inferred) uses more than
its review grants, or whose run-time record shows more than its effective
grant, and a manifest whose ``version``
range no longer covers the installed version. :func:`attach_inference` puts
the scan results on the audit rows. :func:`diff_audits` compares two
``capimport audit --format json`` documents: the capabilities each
distribution gained and lost, which is the review a dependency upgrade needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from .capabilities import CAPABILITIES, SCOPE_KIND
from .grant import NOTHING, Grant
from .record import Observation, by_distribution
from .scopes import ScopeError, parse_pattern


@dataclass
class Problem:
    """One reason for ``--check`` to fail."""

    kind: str                      # "exceeds" | "recorded" | "stale" fail the check; "narrowed" is a note
    name: str
    version: str
    capability: Optional[str] = None
    message: str = ""
    evidence: list = field(default_factory=list)       # scan.Evidence (kind "exceeds")
    observations: list = field(default_factory=list)   # record.Observation (kind "recorded")
    manifest: str = ""             # path of the manifest that declares the distribution
    manifest_line: int = 0
    root: str = ""                 # folder evidence paths are relative to

    def __str__(self) -> str:
        return f"{self.name} {self.version}: {self.message}"


def _evidence_grant(capability: str, scope) -> Grant:
    kind = SCOPE_KIND.get(capability)
    if scope and kind:
        try:
            return Grant.of({capability: frozenset(parse_pattern(kind, s, environ={}) for s in scope)})
        except ScopeError:
            pass
    return Grant.of([capability])


def check(policy, scan_results: Mapping, records: Iterable[Observation] = ()) -> list[Problem]:
    """Everything that exceeds its grant, or whose review is stale, sorted by distribution.

    Inferred use is held against the distribution's *declared* grant (its review: manifest,
    ``[tool.capimport.packages]`` entry or ``default``), minus what the review ``[declined]``:
    code that its declaration grants but the dependency graph narrows (status ``narrowed``:
    a dependent passes less, or holds less itself) is a reviewed decision of those dependents,
    not a gap in this review. Uses that do not count here (own-file reads, other platforms'
    code) are left out. Run-time observations are held against the effective grant.
    """
    from .policy import declared_grant

    problems: list[Problem] = []
    reachable = set(policy.graph.nodes)
    observed = by_distribution(records)
    for name in sorted(policy.distributions):
        dist = policy.distributions[name]
        manifest = policy.declarations.get(name)
        where = (manifest.path, manifest.line) if manifest is not None else ("", 0)
        if policy.stale(name):
            problems.append(Problem("stale", name, dist.version, message=(
                f"the review in {manifest.where} covers {manifest.version}, "  # type: ignore[union-attr]
                f"not the installed {dist.version}: review the changes and update 'version'"),
                manifest=where[0], manifest_line=where[1]))
        if name not in reachable:
            continue  # nothing grants an unreachable distribution anything, and nothing runs it
        effective = policy.effective.get(name, NOTHING)
        result = scan_results.get(name)
        if result is not None:
            declined = manifest.declined if manifest is not None else {}
            declared = declared_grant(manifest, policy.config) if manifest is not None else NOTHING
            for capability in result.inferred.missing_from(declared):
                if capability in declined:
                    continue  # a reviewer saw this use and refused it, with a reason
                items = [e for e in result.evidence if e.capability == capability and e.counts()
                         and not _evidence_grant(e.capability, e.scope).issubset(declared)]
                if not items:
                    continue
                problems.append(Problem("exceeds", name, dist.version, capability,
                                        f"its code uses {capability!r}, which its declared grant "
                                        f"({declared.describe()}) does not hold", items,
                                        manifest=where[0], manifest_line=where[1], root=result.root))
            for capability in (result.inferred & declared).missing_from(effective):
                items = [e for e in result.evidence if e.capability == capability and e.counts()
                         and not _evidence_grant(e.capability, e.scope).issubset(effective)]
                if items:
                    problems.append(Problem("narrowed", name, dist.version, capability,
                                            f"its code uses {capability!r}, which its review grants but its "
                                            f"dependents narrow away (effective: {effective.describe()}); "
                                            f"that code is denied if it is reached (capimport why {name} "
                                            f"{capability})", items, manifest=where[0], manifest_line=where[1],
                                            root=result.root))
        denied: dict[str, list] = {}
        for observation in observed.get(name, ()):
            if not effective.allows(observation.capability, None) or (
                    observation.scope and not _evidence_grant(observation.capability,
                                                              (observation.scope,)).issubset(effective)):
                denied.setdefault(observation.capability, []).append(observation)
        for capability in sorted(denied, key=CAPABILITIES.index):
            problems.append(Problem("recorded", name, dist.version, capability,
                                    f"it used {capability!r} at run time ({denied[capability][0].describe()}), "
                                    f"which its effective grant ({effective.describe()}) does not hold",
                                    observations=denied[capability], manifest=where[0], manifest_line=where[1]))
    return problems


def attach_inference(rows, policy, scan_results: Mapping, records: Iterable[Observation] = ()) -> list[Problem]:
    """Put inferred grants, evidence and findings on ``audit`` rows; mark rows that exceed.

    Returns :func:`check`'s problems, so that callers need not compute them again.
    """
    problems = check(policy, scan_results, records)
    failing = {p.name for p in problems if p.kind in ("exceeds", "recorded")}
    for row in rows:
        if row.name in failing and "exceeds" not in row.statuses:
            row.statuses.append("exceeds")  # also for use seen only at run time (--record, --no-scan)
        result = scan_results.get(row.name)
        if result is not None:
            row.inferred = result.inferred
            row.evidence = [e.to_json() for e in result.evidence]
            row.findings = [str(f) for f in result.findings]
    return problems


# ---------------------------------------------------------------------------- audit vs audit


def _entries(value) -> dict:
    """A grant in audit JSON (names, or {"name", "scope"}) as {name: scope text}."""
    out = {}
    for item in value or ():
        if isinstance(item, str):
            out[item] = ""
        elif isinstance(item, dict) and "name" in item:
            out[str(item["name"])] = ", ".join(sorted(map(str, item.get("scope") or ())))
    return out


def _distributions(document) -> dict:
    if isinstance(document, dict):
        items = document.get("distributions", [])
    elif isinstance(document, list):
        items = document
    else:
        raise ValueError("not an audit document: expected an object with 'distributions'")
    out = {}
    for item in items:
        if isinstance(item, dict) and "name" in item:
            out[str(item["name"])] = item
    return out


FIELDS = ("inferred", "effective", "declared")


def diff_audits(old, new) -> dict:
    """Capabilities gained and lost per distribution between two audit JSON documents.

    Returns ``{"added": [...], "removed": [...], "changed": [{"name", "old_version",
    "new_version", "<field>": {"gained": [...], "lost": [...]}, "evidence": [...]}]}``
    where field is inferred, effective and declared (when both documents have it).
    """
    before, after = _distributions(old), _distributions(new)
    report: dict = {"added": [], "removed": [], "changed": []}
    for name in sorted(set(after) - set(before)):
        item = after[name]
        report["added"].append({"name": name, "version": item.get("version"),
                                **{f: sorted(_entries(item.get(f))) for f in FIELDS if f in item}})
    for name in sorted(set(before) - set(after)):
        report["removed"].append({"name": name, "version": before[name].get("version")})
    for name in sorted(set(before) & set(after)):
        a, b = before[name], after[name]
        change: dict = {"name": name, "old_version": a.get("version"), "new_version": b.get("version")}
        interesting = a.get("version") != b.get("version")
        for key in FIELDS:
            if key not in a or key not in b:
                continue
            old_entries, new_entries = _entries(a.get(key)), _entries(b.get(key))
            gained = sorted((_label(n, s) for n, s in new_entries.items()
                             if n not in old_entries or old_entries[n] != s),
                            key=lambda t: CAPABILITIES.index(t.split("(")[0]) if t.split("(")[0] in CAPABILITIES else 99)
            lost = sorted((_label(n, s) for n, s in old_entries.items()
                           if n not in new_entries or new_entries[n] != s),
                          key=lambda t: CAPABILITIES.index(t.split("(")[0]) if t.split("(")[0] in CAPABILITIES else 99)
            if gained or lost:
                change[key] = {"gained": gained, "lost": lost}
                interesting = True
        if "inferred" in change:
            new_caps = {g.split("(")[0] for g in change["inferred"]["gained"]}
            change["evidence"] = [e for e in b.get("evidence", []) if e.get("capability") in new_caps][:20]
        if interesting:
            report["changed"].append(change)
    return report


def _label(name: str, scope: str) -> str:
    return f"{name}({scope})" if scope else name


def gained_anything(report: Mapping) -> bool:
    return bool(report.get("added")) or any(
        change.get(key, {}).get("gained") for change in report.get("changed", []) for key in FIELDS)


def render_diff(report: Mapping) -> str:
    """The report as text for a reviewer."""
    lines = []
    for item in report.get("added", []):
        caps = ", ".join(item.get("inferred") or item.get("effective") or []) or "-"
        lines.append(f"+ {item['name']} {item.get('version') or ''}: new distribution ({caps})")
    for item in report.get("removed", []):
        lines.append(f"- {item['name']} {item.get('version') or ''}: removed")
    for change in report.get("changed", []):
        version = change["new_version"] if change["old_version"] == change["new_version"] else \
            f"{change['old_version']} -> {change['new_version']}"
        lines.append(f"~ {change['name']} {version}")
        for key in FIELDS:
            if key in change:
                parts = [f"+{g}" for g in change[key]["gained"]] + [f"-{l}" for l in change[key]["lost"]]
                lines.append(f"    {key:<9} {' '.join(parts)}")
        for evidence in change.get("evidence", [])[:5]:
            lines.append(f"      {evidence.get('capability')}: {evidence.get('file')}:{evidence.get('line')}:"
                         f"{evidence.get('col')} {evidence.get('api')}")
    if not lines:
        return "no capability changes"
    return "\n".join(lines)


def load_audit(path: str):
    """An audit JSON document from *path*, with a clear error when it is not one."""
    from .errors import ConfigError, Diagnostic
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        _distributions(document)
    except OSError as error:
        raise ConfigError([Diagnostic(path, 0, 0, f"cannot read: {error.strerror or error}")])
    except ValueError as error:
        raise ConfigError([Diagnostic(path, getattr(error, "lineno", 0) or 0, getattr(error, "colno", 0) or 0,
                                      f"not an audit JSON document (capimport audit --format json): {error}")])
    return document
