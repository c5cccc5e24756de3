"""The policy: every distribution's declaration, the graph, and the effective grants.

This is where the parts meet. For each installed distribution the first
declaration found wins, in this order: the application's
``[tool.capimport.packages]``, its ``manifests/`` folder, a ``capimport.toml``
the distribution ships in its own top-level package, capimport's bundled
library of reviewed manifests, then ``default``.

A shipped ``capimport.toml`` is a declaration of need, never a grant on its
own: what it asks for is capped by ``default`` (what the application gives
unreviewed distributions) until someone reviews it into ``manifests/``.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, Mapping, Optional

from .names import canonical_name as canonicalize_name

from ._values import FrozenValue
from .config import Config, discover, load_config
from .distributions import Distribution, find_distributions, record_lists
from .errors import ConfigError, Diagnostic
from .grant import NOTHING, Grant
from .graph import ROOT, DependencyGraph, build_graph
from .manifest import GrantParser, Manifest, default_manifest, parse_manifest
from .tomlfile import load
from .unify import unify

SHIPPED_MANIFEST = "capimport.toml"


class Policy(FrozenValue):
    """Everything enforcement and audit need, computed once.

    A hand-written frozen class, not a ``@dataclass``: importing ``dataclasses``
    would cost every start ~17 ms (see :mod:`capimport._values`).
    """

    __slots__ = ("config", "distributions", "graph", "declarations", "effective", "warnings")
    config: Config
    distributions: Mapping[str, Distribution]
    graph: DependencyGraph
    declarations: Mapping[str, Manifest]      # canonical name -> the declaration that won
    effective: Mapping[str, Grant]            # canonical name -> effective grant (ROOT: app)
    warnings: tuple[Diagnostic, ...]

    def __init__(self, config: Config, distributions: Mapping[str, Distribution], graph: DependencyGraph,
                 declarations: Mapping[str, Manifest], effective: Mapping[str, Grant],
                 warnings: tuple[Diagnostic, ...] = ()) -> None:
        object.__setattr__(self, "config", config)
        object.__setattr__(self, "distributions", distributions)
        object.__setattr__(self, "graph", graph)
        object.__setattr__(self, "declarations", declarations)
        object.__setattr__(self, "effective", effective)
        object.__setattr__(self, "warnings", warnings)

    def _key(self) -> tuple:
        return (self.config, self.distributions, self.graph, self.declarations, self.effective, self.warnings)

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def app(self) -> Grant:
        return self.config.app

    def grant_for(self, name: str) -> Grant:
        """The effective grant of distribution *name* (canonicalised); NOTHING if unknown."""
        return self.effective.get(canonicalize_name(name), NOTHING)

    def declared_for(self, name: str) -> Grant:
        manifest = self.declarations.get(canonicalize_name(name))
        return manifest.grant if manifest else NOTHING

    def stale(self, name: str) -> bool:
        """True when the winning manifest's ``version`` range does not cover the installed version."""
        manifest = self.declarations.get(name)
        dist = self.distributions.get(name)
        return bool(manifest and dist and not manifest.covers_version(dist.version))


def bundled_manifests_dir() -> Optional[str]:
    """capimport's library of reviewed manifests: ``capimport/_manifests`` (in a checkout, a
    symlink to the repository's top-level ``manifests/``)."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_manifests")
    return folder if os.path.isdir(folder) else None


def load_policy(config_path: Optional[str] = None, *, script: Optional[str] = None,
                paths: Optional[Iterable[str]] = None, cwd: Optional[str] = None,
                use_bundled: bool = True, discover_config: bool = True, cache: bool = True) -> Policy:
    """Discover and load configuration, read the installed distributions, unify.

    The result is cached (``policycache``) and reused while none of its inputs
    changed; ``cache=False`` or ``CAPIMPORT_NO_CACHE=1`` always builds afresh.
    """
    from . import policycache

    path = discover(config_path, script=script, cwd=cwd) if discover_config else config_path
    entries = [entry or os.getcwd() for entry in (sys.path if paths is None else paths)]
    cache = cache and os.environ.get("CAPIMPORT_NO_CACHE") != "1"
    cache_file = policycache.cache_path(path, entries, use_bundled)
    if cache:
        cached = policycache.load(cache_file)
        if cached is not None:
            return cached
    policy = build_policy(load_config(path), find_distributions(entries), use_bundled=use_bundled)
    if cache:
        policycache.store(cache_file, policy, entries, bundled_manifests_dir() if use_bundled else None)
    return policy


def build_policy(config: Config, distributions: Mapping[str, Distribution], *,
                 use_bundled: bool = True) -> Policy:
    diagnostics: list[Diagnostic] = list(config.warnings)
    folder = _read_manifest_folder(config.manifests_dir, diagnostics, "manifests")
    bundled = _read_manifest_folder(bundled_manifests_dir() if use_bundled else None, diagnostics, "bundled")
    declarations: dict[str, Manifest] = {}
    for name, dist in distributions.items():
        declarations[name] = (config.packages.get(name) or folder.get(name)
                              or _shipped_manifest(dist, diagnostics) or bundled.get(name)
                              or default_manifest(name, config.default, config.path or "", config.default_line))
    for source, table in (("[tool.capimport.packages]", config.packages), ("manifests/", folder)):
        for name, manifest in table.items():
            if name not in distributions:
                diagnostics.append(Diagnostic(manifest.path, manifest.line, 1,
                                              f"{source} declares {name!r}, which is not installed", "warning"))
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise ConfigError(errors)
    graph = build_graph(distributions, config.project_dependencies)
    effective = unify(ROOT, config.app, {n: declared_grant(m, config) for n, m in declarations.items()},
                      edges_with_passes(graph, declarations))
    return Policy(config=config, distributions=distributions, graph=graph, declarations=declarations,
                  effective=effective, warnings=tuple(d for d in diagnostics if d.severity == "warning"))


def declared_grant(manifest: Manifest, config: Config) -> Grant:
    """What unification may give: a shipped declaration is capped by ``default``."""
    if manifest.source == "shipped":
        return manifest.grant & config.default
    return manifest.grant


def edges_with_passes(graph: DependencyGraph, declarations: Mapping[str, Manifest]):
    """The graph's edges as ``parent -> [(child, passes)]`` for :func:`unify`."""
    out: dict[str, list[tuple[str, Optional[Grant]]]] = {}
    for parent, edges in graph.edges.items():
        manifest = declarations.get(parent)
        passes = manifest.passes if manifest else {}
        out[parent] = [(edge.child, passes.get(edge.child)) for edge in edges]
    return out


def _read_manifest_folder(folder: Optional[str], diagnostics: list[Diagnostic],
                          source: str) -> dict[str, Manifest]:
    if not folder:
        return {}
    manifests: dict[str, Manifest] = {}
    files: dict[str, str] = {}
    for entry in sorted(os.listdir(folder)):
        if not entry.endswith(".toml"):
            continue
        path = os.path.join(folder, entry)
        name = canonicalize_name(entry[:-5])
        if name in files:
            diagnostics.append(Diagnostic(path, 1, 1, f"declares {name!r} a second time: "
                                                      f"{os.path.basename(files[name])} already does"))
            continue
        files[name] = path
        manifest = read_manifest_file(path, name, source, diagnostics)
        if manifest is not None:
            manifests[name] = manifest
    return manifests


def read_manifest_file(path: str, name: str, source: str,
                       diagnostics: list[Diagnostic]) -> Optional[Manifest]:
    toml, error = load(path)
    if error is not None:
        diagnostics.append(error)
        return None
    assert toml is not None
    return parse_manifest(GrantParser(toml, diagnostics), [], toml.data, name, source)


def _shipped_manifest(dist: Distribution, diagnostics: list[Diagnostic]) -> Optional[Manifest]:
    """A ``capimport.toml`` in one of the distribution's own top-level packages.

    Checked with one ``stat`` per top-level name; RECORD is consulted only when
    such a file exists, to make sure the distribution itself installed it.
    """
    for top in dist.top_level:
        path = os.path.join(dist.location, top, SHIPPED_MANIFEST)
        if os.path.isfile(path) and record_lists(dist, f"{top}/{SHIPPED_MANIFEST}"):
            return read_manifest_file(path, dist.name, "shipped", diagnostics)
        for root in dist.source_roots:
            path = os.path.join(root, top, SHIPPED_MANIFEST)
            if os.path.isfile(path):
                return read_manifest_file(path, dist.name, "shipped", diagnostics)
    return None
