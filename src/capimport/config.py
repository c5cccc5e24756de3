"""The application's configuration: where it is found and what it says.

Found from ``--config``, then ``CAPIMPORT_CONFIG``, then upward from the
script's folder, then upward from the working directory. In each folder a
``capimport.toml`` (keys at its top level, or under ``[tool.capimport]``)
wins over a ``pyproject.toml``, which counts only when it has a
``[tool.capimport]`` table.

With no configuration at all, capimport runs in ``warn`` mode with its
bundled manifest library: a newcomer sees what would be denied before
anything is.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

from .names import canonical_name as canonicalize_name

from ._values import FrozenValue
from .errors import ConfigError, Diagnostic
from .grant import EVERYTHING, NOTHING, Grant
from .manifest import GrantParser, Manifest, parse_manifest, MANIFEST_KEYS
from .tomlfile import TomlFile, load

MODES = ("enforce", "warn", "record")
CONFIG_KEYS = ("mode", "strict", "manifests", "app", "default", "packages")
ENV_CONFIG = "CAPIMPORT_CONFIG"


class Config(FrozenValue):
    """Settled configuration; ``path`` is None when none was found.

    A hand-written frozen class, not a ``@dataclass``: importing ``dataclasses``
    would cost every start ~17 ms (see :mod:`capimport._values`). ``packages``
    defaults to a new empty dict.
    """

    __slots__ = ("path", "mode", "strict", "manifests_dir", "app", "default", "packages",
                 "project_dependencies", "project_dir", "warnings", "app_line", "default_line")
    path: Optional[str]
    mode: str
    strict: bool
    manifests_dir: Optional[str]
    app: Grant
    default: Grant
    packages: Mapping[str, Manifest]
    project_dependencies: Optional[tuple[str, ...]]
    project_dir: Optional[str]
    warnings: tuple[Diagnostic, ...]
    app_line: int
    default_line: int

    def __init__(self, path: Optional[str] = None, mode: str = "warn", strict: bool = False,
                 manifests_dir: Optional[str] = None, app: Grant = EVERYTHING, default: Grant = NOTHING,
                 packages: Optional[Mapping[str, Manifest]] = None,
                 project_dependencies: Optional[tuple[str, ...]] = None, project_dir: Optional[str] = None,
                 warnings: tuple[Diagnostic, ...] = (), app_line: int = 0, default_line: int = 0) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "strict", strict)
        object.__setattr__(self, "manifests_dir", manifests_dir)
        object.__setattr__(self, "app", app)
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "packages", {} if packages is None else packages)
        object.__setattr__(self, "project_dependencies", project_dependencies)
        object.__setattr__(self, "project_dir", project_dir)
        object.__setattr__(self, "warnings", warnings)
        object.__setattr__(self, "app_line", app_line)
        object.__setattr__(self, "default_line", default_line)

    def _key(self) -> tuple:
        return (self.path, self.mode, self.strict, self.manifests_dir, self.app, self.default, self.packages,
                self.project_dependencies, self.project_dir, self.warnings, self.app_line, self.default_line)

    @property
    def found(self) -> bool:
        return self.path is not None


def discover(explicit: Optional[str] = None, script: Optional[str] = None,
             cwd: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The configuration file to use, or None. An explicit path that does not exist is an error."""
    environ = os.environ if environ is None else environ
    for chosen, origin in ((explicit, "--config"), (environ.get(ENV_CONFIG), ENV_CONFIG)):
        if chosen:
            if not os.path.isfile(chosen):
                raise ConfigError([Diagnostic(chosen, 0, 0, f"configuration file given by {origin} does not exist")])
            return os.path.abspath(chosen)
    starts = []
    if script:
        starts.append(os.path.dirname(os.path.abspath(script)))
    starts.append(os.path.abspath(cwd or os.getcwd()))
    for start in starts:
        found = _search_upward(start)
        if found:
            return found
    return None


def _search_upward(start: str) -> Optional[str]:
    folder = start
    while True:
        candidate = os.path.join(folder, "capimport.toml")
        if os.path.isfile(candidate):
            return candidate
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate) and _has_tool_table(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _has_tool_table(path: str) -> bool:
    """Cheap check for a ``[tool.capimport`` header, so that unrelated pyproject files are skipped."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return any(line.lstrip().startswith(("[tool.capimport", "[ tool.capimport"))
                       or line.replace(" ", "").startswith("tool.capimport")
                       for line in handle)
    except OSError:
        return False


def load_config(path: Optional[str]) -> Config:
    """Parse the configuration at *path* (None: the no-configuration defaults)."""
    if path is None:
        return Config()
    toml, error = load(path)
    if error is not None:
        raise ConfigError([error])
    assert toml is not None
    diagnostics: list[Diagnostic] = []
    keys, table = _tool_table(toml)
    if table is None:
        raise ConfigError([Diagnostic(path, 1, 1, "no [tool.capimport] table in this file")])
    if not isinstance(table, dict):
        raise ConfigError([toml.diagnostic(keys, "[tool.capimport] must be a table")])
    parser = GrantParser(toml, diagnostics)
    for key in table:
        if key not in CONFIG_KEYS:
            parser.error(keys + [key], f"unknown key {key!r} (expected one of: {', '.join(CONFIG_KEYS)})")
    mode = _mode(parser, keys, table.get("mode", "enforce"))
    strict = table.get("strict", False)
    if not isinstance(strict, bool):
        parser.error(keys + ["strict"], "'strict' must be true or false")
    manifests_dir = _manifests_dir(parser, keys, table.get("manifests"))
    app = parser.grant(keys + ["app"], table["app"]) if "app" in table else EVERYTHING
    default = parser.grant(keys + ["default"], table["default"]) if "default" in table else NOTHING
    packages = _packages(parser, keys, table.get("packages", {}))
    project_dependencies = _project_dependencies(parser, toml)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise ConfigError(errors)
    return Config(path=os.path.abspath(path), mode=mode, strict=bool(strict),
                  manifests_dir=manifests_dir, app=app if app is not None else NOTHING,
                  default=default if default is not None else NOTHING, packages=packages,
                  project_dependencies=project_dependencies,
                  project_dir=os.path.dirname(os.path.abspath(path)),
                  warnings=tuple(d for d in diagnostics if d.severity == "warning"),
                  app_line=toml.locate(keys + ["app"])[0] if "app" in table else 0,
                  default_line=toml.locate(keys + ["default"])[0] if "default" in table else 0)


def _tool_table(toml: TomlFile) -> tuple[list[str], object]:
    tool = toml.data.get("tool")
    if isinstance(tool, dict) and "capimport" in tool:
        return ["tool", "capimport"], tool["capimport"]
    if os.path.basename(toml.path) != "pyproject.toml":
        return [], toml.data  # a stand-alone capimport.toml keeps its keys at the top level
    return ["tool", "capimport"], None


def _mode(parser: GrantParser, keys: list[str], value: object) -> str:
    if value not in MODES:
        parser.error(keys + ["mode"], f"mode must be one of {', '.join(MODES)}; found {value!r}", value)
        return "enforce"
    return str(value)


def _manifests_dir(parser: GrantParser, keys: list[str], value: object) -> Optional[str]:
    base = parser.base_dir
    if value is None:
        default = os.path.join(base, "manifests")
        return default if os.path.isdir(default) else None
    if not isinstance(value, str) or not value:
        parser.error(keys + ["manifests"], "'manifests' must be a folder path (a string)")
        return None
    folder = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
    if not os.path.isdir(folder):
        parser.error(keys + ["manifests"], f"manifests folder {value!r} does not exist ({folder})", value)
        return None
    return folder


def _packages(parser: GrantParser, keys: list[str], value: object) -> dict[str, Manifest]:
    where = keys + ["packages"]
    if not isinstance(value, dict):
        parser.error(where, "[packages] must be a table of distribution name to capabilities")
        return {}
    packages: dict[str, Manifest] = {}
    spelled: dict[str, str] = {}
    for name, spec in value.items():
        canonical = canonicalize_name(name)
        if canonical in spelled:
            parser.error(where + [name], f"{name!r} is declared twice: it is the same distribution as "
                                         f"{spelled[canonical]!r} (canonical name {canonical!r})")
            continue
        spelled[canonical] = name
        manifest = package_entry(parser, where + [name], canonical, spec)
        if manifest is not None:
            packages[canonical] = manifest
    return packages


def package_entry(parser: GrantParser, keys: Sequence[str], name: str, spec: object) -> Optional[Manifest]:
    """One ``[packages]`` entry: a list, a capability table, or a full manifest table."""
    if isinstance(spec, dict) and any(key in MANIFEST_KEYS for key in spec):
        return parse_manifest(parser, keys, spec, name, "config")
    grant = parser.grant(keys, spec)
    if grant is None:
        return None
    toml = parser.toml
    line = toml.locate(keys)[0]
    return Manifest(name=name, grant=grant, source="config", path=toml.path, line=line,
                    capability_lines={cap: line for cap in grant})


def _project_dependencies(parser: GrantParser, toml: TomlFile) -> Optional[tuple[str, ...]]:
    """``[project.dependencies]`` of this pyproject.toml, or of the one beside a capimport.toml."""
    data = toml.data
    source = toml
    if os.path.basename(toml.path) != "pyproject.toml":
        sibling = os.path.join(os.path.dirname(toml.path), "pyproject.toml")
        if not os.path.isfile(sibling):
            return None
        loaded, error = load(sibling)
        if loaded is None:
            parser.diagnostics.append(error)  # type: ignore[arg-type]
            return None
        data, source = loaded.data, loaded
    project = data.get("project")
    if not isinstance(project, dict) or "dependencies" not in project:
        return None
    deps = project["dependencies"]
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        parser.diagnostics.append(source.diagnostic(["project", "dependencies"],
                                                    "[project.dependencies] must be a list of strings"))
        return None
    return tuple(deps)
