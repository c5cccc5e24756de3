"""``capimport generate``: manifests to review, written so that regenerating is safe.

For every distribution in the dependency graph it writes
``manifests/<canonical-name>.toml`` (or, with ``inline``, an entry of
``[tool.capimport.packages]``):

* starting from capimport's bundled reviewed manifest when there is one that
  covers the installed version, and from static inference otherwise;
* adding what the distribution's imported dependencies need, because a
  distribution is accountable for the acts of the code it calls (and
  unification never gives a dependency more than its dependents hold);
* adding what ``record`` mode observed at run time (``from_record``);
* with one piece of evidence as a comment on each capability, and scopes
  where every use had a literal one.

Files are edited with ``tomlkit``, so a second run keeps the user's comments,
ordering and hand edits: it only adds capabilities that are missing, never
removes one, never narrows or widens a capability the file already lists,
and updates ``version`` only when it no longer covers the installed version.
Output is deterministic (capabilities in canonical order, scopes sorted).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

import tomlkit
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .capabilities import CAPABILITIES, IMPLIES
from .errors import ConfigError, Diagnostic
from .grant import NOTHING, Grant
from .graph import ROOT
from .names import canonical_name as canonicalize_name
from .record import Observation, by_distribution, observed_grant

#: Prefixes of the comments generate writes (so that readers can tell them from their own).
COMMENT_INFERRED = "inferred:"
COMMENT_VIA = "via"
COMMENT_RECORDED = "recorded:"


@dataclass
class GenerateResult:
    """What generate did (or would do, with ``dry_run``)."""

    diff: str = ""
    written: list = field(default_factory=list)      # files created or changed
    unchanged: list = field(default_factory=list)
    sources: dict = field(default_factory=dict)      # distribution -> "bundled" | "inferred" | "existing"

    @property
    def changed(self) -> bool:
        return bool(self.written)


def review_range(version: str) -> str:
    """The version range a generated review covers: this release up to the next minor one."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return f"=={version}"
    release = parsed.release + (0,)
    return f">={version},<{release[0]}.{release[1] + 1}"


def needs(policy, scan_results: Mapping, observations: Mapping[str, list]) -> dict:
    """Per distribution: (own grant, {dependency: grant it needs}) and the bundled flag.

    A distribution needs what its own code uses (inferred plus recorded) and
    what the dependencies it imports need, transitively; a dependency with a
    reviewed bundled manifest contributes that manifest's grant.
    """
    bundled = _bundled(policy)
    own: dict[str, Grant] = {}
    for name in policy.distributions:
        grant = NOTHING
        if name in bundled:
            grant = bundled[name]
        else:
            result = scan_results.get(name)
            if result is not None:
                grant = result.inferred
        grant = grant | observed_grant(observations.get(name, ()))
        own[name] = grant
    tops = {name: set(dist.top_level) for name, dist in policy.distributions.items()}
    total: dict[str, Grant] = {}

    def closure(name: str, stack: tuple) -> Grant:
        if name in total:
            return total[name]
        grant = own.get(name, NOTHING)
        if name not in bundled and name not in stack:
            result = scan_results.get(name)
            imported = set(result.imports) if result is not None else set()
            for edge in policy.graph.children(name):
                if tops.get(edge.child, set()) & imported:
                    grant = grant | closure(edge.child, stack + (name,))
        if not stack:
            total[name] = grant
        return grant

    return {name: closure(name, ()) for name in policy.distributions}


def _bundled(policy) -> dict:
    """Bundled reviewed manifests that cover the installed version: name -> grant."""
    from .policy import bundled_manifests_dir, read_manifest_file
    folder = bundled_manifests_dir()
    out: dict[str, Grant] = {}
    if not folder:
        return out
    for name, dist in policy.distributions.items():
        path = os.path.join(folder, f"{name}.toml")
        if not os.path.isfile(path):
            continue
        diagnostics: list = []
        manifest = read_manifest_file(path, name, "bundled", diagnostics)
        if manifest is not None and manifest.covers_version(dist.version):
            out[name] = manifest.grant
    return out


def _bundled_path(name: str) -> Optional[str]:
    from .policy import bundled_manifests_dir
    folder = bundled_manifests_dir()
    path = os.path.join(folder, f"{name}.toml") if folder else ""
    return path if path and os.path.isfile(path) else None


def generate(policy, scan_results: Mapping, *, out_dir: Optional[str] = None, inline: Optional[str] = None,
             dry_run: bool = False, records: Iterable[Observation] = (),
             names: Optional[Iterable[str]] = None) -> GenerateResult:
    """Write (or with *dry_run*, only diff) manifests for the distributions in the graph.

    *out_dir*: the manifests folder (default: the configuration's, else
    ``./manifests``). *inline*: a pyproject.toml or capimport.toml whose
    ``[tool.capimport.packages]`` gets the entries instead. *names* limits
    the distributions. Returns the unified diff and the files changed.
    """
    observations = by_distribution(records)
    wanted = _selected(policy, names)
    grants = needs(policy, scan_results, observations)
    bundled = _bundled(policy)
    result = GenerateResult()
    if inline:
        _generate_inline(policy, scan_results, observations, grants, bundled, wanted, inline, dry_run, result)
        return result
    folder = out_dir or policy.config.manifests_dir or os.path.join(os.getcwd(), "manifests")
    diffs = []
    for name in wanted:
        dist = policy.distributions[name]
        path = os.path.join(folder, f"{name}.toml")
        old = _read(path)
        if old is not None:
            doc = _parse(path, old)
            result.sources[name] = "existing"
        elif name in bundled and _bundled_path(name):
            doc = _parse(_bundled_path(name), _read(_bundled_path(name)) or "")  # type: ignore[arg-type]
            result.sources[name] = "bundled"
        else:
            doc = _new_document(dist, scan_results.get(name))
            result.sources[name] = "inferred"
        infer = name not in bundled
        _merge(doc, dist, grants[name] if infer else observed_grant(observations.get(name, ())),
               scan_results.get(name), observations.get(name, []), policy, scan_results)
        new = tomlkit.dumps(doc)
        if not new.endswith("\n"):
            new += "\n"
        if new == old:
            result.unchanged.append(path)
            continue
        diffs.append(_diff(old or "", new, os.path.relpath(path), old is None))
        result.written.append(path)
        if not dry_run:
            os.makedirs(folder, exist_ok=True)
            _write(path, new)
    result.diff = "".join(diffs)
    return result


def _selected(policy, names: Optional[Iterable[str]]) -> list:
    graph_names = [n for n in policy.graph.nodes if n != ROOT and n in policy.distributions]
    if names is None:
        return graph_names
    out = []
    for name in names:
        canonical = canonicalize_name(name)
        if canonical not in policy.distributions:
            raise ConfigError([Diagnostic("<command line>", 0, 0, f"{name!r} is not installed here")])
        out.append(canonical)
    return sorted(set(out))


# ---------------------------------------------------------------------------- documents


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError([Diagnostic(path, 0, 0, f"cannot read: {error.strerror or error}")])


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _parse(path: str, text: str):
    try:
        return tomlkit.parse(text)
    except Exception as error:  # tomlkit raises its own ParseError subclasses
        line = getattr(error, "line", 0) or 0
        col = getattr(error, "col", 0) or 0
        raise ConfigError([Diagnostic(path, line, col, f"TOML syntax error: {error}")]) from None


def _diff(old: str, new: str, label: str, created: bool) -> str:
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile="/dev/null" if created else f"a/{label}", tofile=f"b/{label}")
    return "".join(lines)


def _new_document(dist, result) -> tomlkit.TOMLDocument:
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"{dist.display_name} {dist.version}: generated by `capimport generate` "
                            "from static inference."))
    doc.add(tomlkit.comment("Review each line; `capimport audit --verbose` lists every use found."))
    if result is not None and result.findings:
        doc.add(tomlkit.comment(_findings_summary(result.findings)))
    doc["version"] = review_range(dist.version)
    return doc


def _findings_summary(findings) -> str:
    counts: dict[str, list] = {}
    for finding in findings:
        counts.setdefault(finding.kind, []).append(finding)
    parts = []
    for kind in sorted(counts):
        first = counts[kind][0]
        where = f"{first.file}:{first.line}" if first.line else first.file
        parts.append(f"{kind} x{len(counts[kind])} (e.g. {where})")
    return "Not decidable statically: " + "; ".join(parts)


def _shown(grant: Grant) -> list:
    """Capabilities to list: implied ones only when their scope differs from the implier's."""
    out = []
    for name, scope in grant.entries:
        redundant = any(name in implied and implier in grant and grant.scope(implier) == scope
                        for implier, implied in IMPLIES.items())
        if not redundant:
            out.append(name)
    return out


def _comment(capability: str, dist_name: str, result, observations: list, policy, scan_results) -> str:
    """One piece of evidence for *capability*: own code first, then run-time records, then a dependency."""
    if result is not None:
        items = [e for e in result.evidence_for(capability)]
        items.sort(key=lambda e: (e.hint, e.capability != capability, e.file, e.line, e.col))
        if items:
            e = items[0]
            more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
            return f"{COMMENT_INFERRED} {e.file}:{e.line} {e.api} in {e.function}{more}"
    for observation in observations:
        if observation.capability == capability or capability in IMPLIES and observation.capability in IMPLIES[capability]:
            return f"{COMMENT_RECORDED} {observation.describe()}"
    for edge in policy.graph.children(dist_name):
        child = scan_results.get(edge.child)
        if child is not None and child.evidence_for(capability):
            e = sorted(child.evidence_for(capability), key=lambda e: (e.hint, e.file, e.line))[0]
            return f"{COMMENT_VIA} {edge.child}: {e.file}:{e.line} {e.api}"
        declared = policy.declarations.get(edge.child)
        if declared is not None and capability in declared.grant:
            return f"{COMMENT_VIA} {edge.child} (its manifest grants {capability})"
    return "needed by a dependency it calls"


def _listed(item) -> Grant:
    """The capabilities a ``capabilities`` list or table names (scopes aside)."""
    names: list = []
    if isinstance(item, list):
        names = [str(x) for x in item if str(x) in CAPABILITIES]
    elif isinstance(item, dict):
        names = [str(k) for k, v in item.items() if str(k) in CAPABILITIES and v is not False]
    return Grant.of(names)


def _multiline(container, key, item):
    """A one-line array rewritten as a multi-line one (same items), so that comments can follow."""
    if not isinstance(item, list) or "\n" in item.as_string():
        return item
    array = tomlkit.array()
    array.multiline(True)
    for value in list(item):
        array.add_line(value)
    array.trivia.comment = item.trivia.comment
    array.trivia.comment_ws = item.trivia.comment_ws
    container[key] = array
    return container[key]


def _merge(container, dist, grant: Grant, result, observations: list, policy, scan_results,
           *, short: bool = False) -> None:
    """Add what *grant* holds and the manifest lacks; keep everything else as it is.

    *container* is a manifest table (or document), or with *short* the
    capability list or table of a ``[tool.capimport.packages]`` line.
    """
    if short:
        item = container
    else:
        _update_version(container, dist)
        item = container.get("capabilities")
        if item is None:
            array = tomlkit.array()
            array.multiline(True)
            container["capabilities"] = array
            item = container["capabilities"]
    existing = _listed(item)
    missing = [name for name in _shown(grant) if name not in existing]
    if not missing:
        return
    if not short:
        item = _multiline(container, "capabilities", item)
    added_scopes: dict[str, list] = {}
    for name in missing:
        scope = grant.scope(name)
        note = _comment(name, dist.name, result, observations, policy, scan_results)
        if isinstance(item, list):
            item.add_line(name, comment=note)
            if scope is not None:
                added_scopes[name] = sorted(str(p) for p in scope)
        elif isinstance(item, dict):
            item[name] = True if scope is None else sorted(str(p) for p in scope)
    if added_scopes and not short:
        scopes = container.get("scopes")
        if scopes is None:
            container["scopes"] = tomlkit.table()
            scopes = container["scopes"]
        for name in sorted(added_scopes, key=CAPABILITIES.index):
            if name not in scopes:
                scopes[name] = added_scopes[name]


def _update_version(container, dist) -> None:
    current = container.get("version")
    if current is None:
        return
    try:
        covers = SpecifierSet(str(current)).contains(dist.version, prereleases=True)
    except InvalidSpecifier:
        return  # a bad specifier is reported by the manifest parser, not silently replaced
    if not covers:
        container["version"] = review_range(dist.version)


# ---------------------------------------------------------------------------- inline


def _generate_inline(policy, scan_results, observations, grants, bundled, wanted, path: str,
                     dry_run: bool, result: GenerateResult) -> None:
    old = _read(path)
    doc = _parse(path, old or "")
    packages = _packages_table(doc, path)
    spelled = {canonicalize_name(str(k)): str(k) for k in packages}
    for name in wanted:
        dist = policy.distributions[name]
        grant = grants[name]
        key = spelled.get(name)
        entry = packages.get(key) if key is not None else None
        result.sources[name] = "existing" if entry is not None else ("bundled" if name in bundled else "inferred")
        if entry is None:
            shown = _shown(grant)
            scoped = [n for n in shown if grant.scope(n) is not None]
            if scoped:
                table = tomlkit.table()
                table["version"] = review_range(dist.version)
                packages[name] = table
                _merge(packages[name], dist, grant, scan_results.get(name), observations.get(name, []),
                       policy, scan_results)
            else:
                array = tomlkit.array()
                array.multiline(True)
                packages[name] = array
                _merge(packages[name], dist, grant, scan_results.get(name), observations.get(name, []),
                       policy, scan_results, short=True)
        elif isinstance(entry, dict) and "capabilities" in entry:
            _merge(entry, dist, grant, scan_results.get(name), observations.get(name, []), policy,
                   scan_results)
        else:
            _merge(entry, dist, grant, scan_results.get(name), observations.get(name, []), policy,
                   scan_results, short=True)
    new = tomlkit.dumps(doc)
    if new != (old or ""):
        result.diff = _diff(old or "", new, os.path.relpath(path), old is None)
        result.written.append(path)
        if not dry_run:
            _write(path, new)
    else:
        result.unchanged.append(path)


def _packages_table(doc, path: str):
    is_pyproject = os.path.basename(path) == "pyproject.toml"
    if is_pyproject or "tool" in doc:
        tool = doc.get("tool")
        if tool is None:
            doc["tool"] = tomlkit.table(is_super_table=True)
            tool = doc["tool"]
        base = tool.get("capimport")
        if base is None:
            tool["capimport"] = tomlkit.table()
            base = tool["capimport"]
    else:
        base = doc
    packages = base.get("packages")
    if packages is None:
        base["packages"] = tomlkit.table()
        packages = base["packages"]
    if not isinstance(packages, dict):
        raise ConfigError([Diagnostic(path, 0, 0, "[tool.capimport.packages] must be a table")])
    return packages
