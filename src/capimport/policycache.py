"""A cache of the computed policy, so that a run does not re-parse and re-unify unchanged inputs.

Building the policy means parsing every manifest, importing ``packaging`` and
walking the dependency graph: about 50 ms on a 25-distribution venv, paid on
every ``python -m capimport``. The result depends only on files (the
configuration, manifest folders, every ``*.dist-info`` on the path and its
``RECORD``, every top-level package folder where a shipped ``capimport.toml``
could appear: it counts only when ``RECORD`` lists it), on the environment
variables that scope patterns name, and on the interpreter. The cache records
the ``stat`` of each input (or its absence) and is used only when every one
still matches; otherwise the policy is built again and the cache rewritten. As
in git's index, an input modified in the last two seconds is "racy" (a second
write in the same timestamp tick would not show), so no cache is stored until
the inputs have settled.

The format is JSON, never pickle: loading a cache must not be able to run code.
A distribution that can write into the cache folder could forge a policy, but
only one that holds ``fs`` there, which could equally rewrite the
configuration itself; see docs/decisions.md.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import Any, Iterable, Optional

from .config import Config
from .distributions import Distribution
from .errors import Diagnostic
from .grant import Grant
from .graph import DependencyGraph, Edge
from .manifest import Manifest
from .scopes import ScopePattern

FORMAT = 2   # 2: RECORD watched, the graph's optional requirements
#: Inputs changed more recently than this are not trusted to show a later change
#: in their stat (timestamps are coarser than writes): no cache is stored then.
RACY_NS = 2_000_000_000
_VARIABLE = re.compile(r"\$(\w+|\{[^}]*\})")


def default_cache_dir() -> str:
    """``$CAPIMPORT_CACHE_DIR``, else ``$XDG_CACHE_HOME/capimport``, else ``~/.cache/capimport``."""
    explicit = os.environ.get("CAPIMPORT_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "capimport")


def _sha256(data: bytes):
    """SHA-256 from the interpreter's own module: ``hashlib`` loads OpenSSL, ~3 ms of every start."""
    try:
        from _sha256 import sha256   # CPython 3.9-3.11
    except ImportError:
        try:
            from _sha2 import sha256   # CPython 3.12+
        except ImportError:
            from hashlib import sha256
    return sha256(data)


def cache_path(config_path: Optional[str], paths: Iterable[str], use_bundled: bool) -> str:
    """One cache file per (interpreter, configuration, path, bundled library on/off)."""
    key = json.dumps([FORMAT, sys.executable, sys.version, config_path, list(paths), use_bundled])
    digest = _sha256(key.encode()).hexdigest()[:20]
    return os.path.join(default_cache_dir(), f"policy-{digest}.json")


# ----------------------------------------------------------------------------- inputs


def _stat(path: str) -> Optional[list]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def watched_paths(policy, path_entries: Iterable[str], bundled_dir: Optional[str]) -> list[str]:
    """Every file and folder whose change could change the policy."""
    config = policy.config
    watched: list[str] = [os.path.dirname(os.path.abspath(__file__))]  # capimport's own code
    watched += [os.path.join(watched[0], name) for name in
                ("policy.py", "policycache.py", "manifest.py", "config.py", "graph.py", "unify.py",
                 "scopes.py", "grant.py", "distributions.py")]
    if config.path:
        folder = os.path.dirname(config.path)
        watched += [config.path, folder, os.path.join(folder, "pyproject.toml"),
                    os.path.join(folder, "manifests")]
    for folder in (config.manifests_dir, bundled_dir):
        if folder and os.path.isdir(folder):
            watched.append(folder)
            watched += sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".toml"))
    watched += [entry or os.getcwd() for entry in path_entries]
    for dist in policy.distributions.values():
        # RECORD (rewritten in place, its folder's time stays) decides which capimport.toml is shipped
        watched += [dist.info_dir, os.path.join(dist.info_dir, "METADATA"),
                    os.path.join(dist.info_dir, "RECORD")]
        watched += [os.path.join(dist.location, top) for top in dist.top_level]
        for root in dist.source_roots:
            watched += [root] + [os.path.join(root, top) for top in dist.top_level]
    return list(dict.fromkeys(watched))


def environment_inputs(policy) -> dict:
    """The variables scope patterns expand (``$NAME``, ``~``), with their current values."""
    names = {"HOME"}
    for grant in _all_grants(policy):
        for _, scope in grant.entries:
            for pattern in scope or ():
                names.update(m.group(1).strip("{}") for m in _VARIABLE.finditer(pattern.text))
    return {name: os.environ.get(name) for name in sorted(names)}


def _all_grants(policy) -> Iterable[Grant]:
    yield policy.config.app
    yield policy.config.default
    yield from policy.effective.values()
    for manifest in list(policy.declarations.values()) + list(policy.config.packages.values()):
        yield manifest.grant
        yield from manifest.passes.values()


# ----------------------------------------------------------------------------- load and store


def load(path: str):
    """The cached policy at *path* if every input is unchanged, else None."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    try:
        for watched, stat in data["watched"]:
            if _stat(watched) != stat:
                return None
        for name, value in data["environ"].items():
            if os.environ.get(name) != value:
                return None
        return _policy_from_json(data["policy"])
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def store(path: str, policy, path_entries: Iterable[str], bundled_dir: Optional[str]) -> None:
    """Write the cache atomically; a folder that cannot be written to just means no cache."""
    watched = [[p, _stat(p)] for p in watched_paths(policy, path_entries, bundled_dir)]
    now = time.time_ns()
    if any(stat is not None and stat[0] > now - RACY_NS for _, stat in watched):
        return  # an input is still being written to; the next run stores the cache
    data = {"format": FORMAT, "watched": watched,
            "environ": environment_inputs(policy), "policy": _policy_to_json(policy)}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        import tempfile   # only when storing: a warm start does not pay for its import
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".policy-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        pass


# ----------------------------------------------------------------------------- JSON forms


def _grant(grant: Grant) -> list:
    return [[name, None if scope is None else sorted([p.kind, p.value, p.text] for p in scope)]
            for name, scope in grant.entries]


def _grant_from(data: list) -> Grant:
    return Grant(tuple((name, None if scope is None else frozenset(ScopePattern(*p) for p in scope))
                       for name, scope in data))


def _manifest(m: Manifest) -> dict:
    return {"name": m.name, "grant": _grant(m.grant), "source": m.source, "path": m.path, "line": m.line,
            "version": m.version, "passes": {k: _grant(v) for k, v in m.passes.items()},
            "pass_lines": dict(m.pass_lines), "capability_lines": dict(m.capability_lines),
            "declined": dict(m.declined)}


def _manifest_from(d: dict) -> Manifest:
    return Manifest(name=d["name"], grant=_grant_from(d["grant"]), source=d["source"], path=d["path"],
                    line=d["line"], version=d["version"],
                    passes={k: _grant_from(v) for k, v in d["passes"].items()},
                    pass_lines=d["pass_lines"], capability_lines=d["capability_lines"], declined=d["declined"])


def _diagnostic(d: Diagnostic) -> list:
    return [d.path, d.line, d.column, d.message, d.severity]


def _policy_to_json(policy) -> dict:
    config: Config = policy.config
    graph: DependencyGraph = policy.graph
    return {
        "config": {"path": config.path, "mode": config.mode, "strict": config.strict,
                   "manifests_dir": config.manifests_dir, "app": _grant(config.app),
                   "default": _grant(config.default),
                   "packages": {k: _manifest(v) for k, v in config.packages.items()},
                   "project_dependencies": (None if config.project_dependencies is None
                                            else list(config.project_dependencies)),
                   "project_dir": config.project_dir, "warnings": [_diagnostic(w) for w in config.warnings],
                   "app_line": config.app_line, "default_line": config.default_line},
        "distributions": [[d.name, d.display_name, d.version, d.location, d.info_dir, list(d.requires),
                           list(d.provides_extras)] for d in policy.distributions.values()],
        "graph": {"edges": {p: [[e.child, e.requirement, sorted(e.extras)] for e in edges]
                            for p, edges in graph.edges.items()},
                  "missing": graph.missing, "invalid": graph.invalid,
                  "active_extras": {k: sorted(v) for k, v in graph.active_extras.items()},
                  "root_is_project": graph.root_is_project, "optional": graph.optional},
        "declarations": {k: _manifest(v) for k, v in policy.declarations.items()},
        "effective": {k: _grant(v) for k, v in policy.effective.items()},
        "warnings": [_diagnostic(w) for w in policy.warnings],
    }


def _policy_from_json(data: dict):
    from .policy import Policy

    c = data["config"]
    config = Config(path=c["path"], mode=c["mode"], strict=c["strict"], manifests_dir=c["manifests_dir"],
                    app=_grant_from(c["app"]), default=_grant_from(c["default"]),
                    packages={k: _manifest_from(v) for k, v in c["packages"].items()},
                    project_dependencies=(None if c["project_dependencies"] is None
                                          else tuple(c["project_dependencies"])),
                    project_dir=c["project_dir"], warnings=tuple(Diagnostic(*w) for w in c["warnings"]),
                    app_line=c["app_line"], default_line=c["default_line"])
    distributions = {row[0]: Distribution(name=row[0], display_name=row[1], version=row[2], location=row[3],
                                          info_dir=row[4], requires=tuple(row[5]), provides_extras=tuple(row[6]))
                     for row in data["distributions"]}
    g = data["graph"]
    graph = DependencyGraph(
        distributions=distributions,
        edges={p: [Edge(p, child, req, frozenset(extras)) for child, req, extras in edges]
               for p, edges in g["edges"].items()},
        missing=[tuple(m) for m in g["missing"]], invalid=[tuple(i) for i in g["invalid"]],
        active_extras={k: set(v) for k, v in g["active_extras"].items()}, root_is_project=g["root_is_project"],
        optional={k: list(v) for k, v in g["optional"].items()})
    return Policy(config=config, distributions=distributions, graph=graph,
                  declarations={k: _manifest_from(v) for k, v in data["declarations"].items()},
                  effective={k: _grant_from(v) for k, v in data["effective"].items()},
                  warnings=tuple(Diagnostic(*w) for w in data["warnings"]))
