"""``capimport audit``: what every distribution may do, where that was declared, and its status.

One :class:`AuditRow` per installed distribution, built from a
:class:`~capimport.policy.Policy`; rendered as an 80-column table or as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from dataclasses import dataclass, field
from typing import Iterable, Optional

from .graph import ROOT
from .grant import NOTHING, Grant
from .policy import Policy

#: Statuses from most to least urgent; a row shows the first that applies.
STATUSES = ("exceeds", "stale", "self-declared", "unreviewed", "unreachable", "narrowed", "ok")
#: Statuses that make ``audit --check`` fail.
FAILING = frozenset({"exceeds", "stale", "self-declared", "unreviewed"})

STATUS_HELP = {
    "exceeds": "its code uses more than its review (declared grant) allows",
    "stale": "its manifest's version range does not cover the installed version",
    "self-declared": "only its own shipped capimport.toml declares it (capped by 'default' until reviewed)",
    "unreviewed": "no manifest: it gets 'default'",
    "unreachable": "the application does not depend on it, so nothing grants it anything",
    "narrowed": "a dependent or the application grants less than it declares",
    "ok": "reviewed, and granted what it declares",
}


@dataclass
class AuditRow:
    name: str
    display_name: str
    version: str
    source: str
    manifest: str
    declared: Grant
    effective: Grant
    statuses: list = field(default_factory=list)
    native: bool = False
    dependents: list = field(default_factory=list)
    inferred: Optional[Grant] = None
    evidence: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    declined: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return next((s for s in STATUSES if s in self.statuses), "ok")

    def to_json(self) -> dict:
        data = {
            "name": self.name,
            "display_name": self.display_name,
            "version": self.version,
            "source": self.source,
            "manifest": self.manifest,
            "declared": self.declared.to_json(),
            "effective": self.effective.to_json(),
            "status": self.status,
            "statuses": sorted(self.statuses, key=STATUSES.index),
            "native": self.native,
            "dependents": self.dependents,
            "declined": self.declined,
        }
        if self.inferred is not None:
            data["inferred"] = self.inferred.to_json()
            data["evidence"] = self.evidence
            data["findings"] = self.findings
        return data


def audit_rows(policy: Policy) -> list[AuditRow]:
    """One row per installed distribution, sorted by name."""
    reachable = set(policy.graph.nodes)
    rows = []
    for name in sorted(policy.distributions):
        dist = policy.distributions[name]
        manifest = policy.declarations[name]
        effective = policy.effective.get(name, NOTHING)
        statuses = []
        if policy.stale(name):
            statuses.append("stale")
        if manifest.source == "shipped":
            statuses.append("self-declared")
        elif manifest.source == "default":
            statuses.append("unreviewed")
        if name not in reachable:
            statuses.append("unreachable")
        elif not manifest.grant.issubset(effective):
            statuses.append("narrowed")
        dependents = sorted({"(app)" if e.parent == ROOT else e.parent for e in policy.graph.parents(name)})
        rows.append(AuditRow(name=name, display_name=dist.display_name, version=dist.version,
                             source=manifest.source, manifest=manifest.where, declared=manifest.grant,
                             declined=dict(manifest.declined),
                             effective=effective, statuses=statuses, native=dist.is_native,
                             dependents=dependents))
    return rows


def check_failed(rows: Iterable[AuditRow]) -> list[AuditRow]:
    """Rows that make ``audit --check`` exit 1.

    An unreachable distribution holds nothing, so it cannot act: being
    unreviewed or stale is not a failure for it (pip and setuptools in a
    venv whose project does not depend on them).
    """
    return [row for row in rows if FAILING & set(row.statuses) and "unreachable" not in row.statuses]


def render_json(policy: Policy, rows: list[AuditRow]) -> str:
    data = {
        "config": policy.config.path,
        "mode": policy.mode,
        "app": policy.app.to_json(),
        "default": policy.config.default.to_json(),
        "distributions": [row.to_json() for row in rows],
        "missing": [{"dependent": p, "requirement": r} for p, r in policy.graph.missing],
        "warnings": [str(w) for w in policy.warnings],
    }
    return json.dumps(data, indent=2, sort_keys=False)


def render_table(policy: Policy, rows: list[AuditRow], *, width: Optional[int] = None,
                 verbose: bool = False) -> str:
    """A table that reads in an 80-column terminal: long grants wrap under their column."""
    width = width or max(80, min(shutil.get_terminal_size((80, 24)).columns, 160))
    name_w = max([len("distribution")] + [len(r.display_name) + (1 if r.native else 0) for r in rows])
    name_w = min(name_w, 24)
    head = f"{'distribution':<{name_w}} {'version':<10} {'source':<9} {'status':<13} "
    indent = len(head)
    inferred = any(row.inferred is not None for row in rows)
    lines = [head + ("effective (declared) (inferred)" if inferred else "effective (declared)"),
             "-" * min(width, 100)]
    for row in rows:
        label = row.display_name + ("*" if row.native else "")
        if len(label) > name_w:
            label = label[: name_w - 1] + "…"
        version = row.version if len(row.version) <= 10 else row.version[:9] + "…"
        grant_text = row.effective.describe()
        if row.declared != row.effective:
            grant_text += f"  (declared: {row.declared.describe()})"
        if row.inferred is not None:
            grant_text += f"  (inferred: {row.inferred.describe()})"
        wrapped = textwrap.wrap(grant_text, max(20, width - indent), break_on_hyphens=False) or ["-"]
        lines.append(f"{label:<{name_w}} {version:<10} {row.source:<9} {row.status:<13} {wrapped[0]}")
        lines.extend(" " * indent + more for more in wrapped[1:])
        if verbose:
            lines.extend(_evidence_lines(row, indent))
    lines.append("")
    for line in _summary(policy, rows).splitlines():
        lines.extend(textwrap.wrap(line, width, subsequent_indent="    ") or [""])
    return "\n".join(lines)


def _evidence_lines(row: AuditRow, indent: int) -> list[str]:
    pad = " " * 4
    out = [f"{pad}manifest: {row.manifest}", f"{pad}required by: {', '.join(row.dependents) or '-'}"]
    for item in row.evidence:
        marks = " (own file)" if item.get("own") else ""
        if item.get("entry"):
            marks += f" [{item['entry']}]"
        if item.get("platform"):
            marks += f" [platform {item['platform']}]"
        if item.get("python"):
            marks += f" [python {item['python']}]"
        out.append(f"{pad}{item.get('capability')}: {item.get('file')}:{item.get('line')}:{item.get('col')} "
                   f"{item.get('api')}{marks}")
    for capability, reason in sorted(row.declined.items()):
        out.append(f"{pad}declined {capability}: {reason}")
    for finding in row.findings:
        out.append(f"{pad}note: {finding}")
    return out


def _summary(policy: Policy, rows: list[AuditRow]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    parts = [f"{counts[s]} {s}" for s in STATUSES if s in counts]
    config = os.path.relpath(policy.config.path) if policy.config.path else "none (bundled manifests, warn mode)"
    native = sum(1 for r in rows if r.native)
    lines = [f"{len(rows)} distributions: {', '.join(parts) or 'none'}.",
             f"config: {config}; app: {policy.app.describe()}; default: {policy.config.default.describe()}"]
    if native:
        lines.append(f"* ships compiled code ({native}): enforcement cannot see inside it")
    for status in STATUSES:
        if status in counts and status != "ok":
            lines.append(f"  {status}: {STATUS_HELP[status]}")
    optional = [(row.display_name, policy.graph.optional_requirers(row.name)) for row in rows
                if "unreachable" in row.statuses]
    for name, extras in optional:
        if extras:
            lines.append(f"note: {name} is unreachable but is an optional dependency of {', '.join(extras[:3])}; "
                         f"code there may import it when installed, and then it holds nothing: add the extra "
                         f"(or {name}) to [project.dependencies]")
    if counts.get("unreviewed") or counts.get("self-declared"):
        lines.append("Write manifests to review with: capimport generate")
    return "\n".join(lines)
