"""The installed distributions on a path, read straight from their metadata files.

``importlib.metadata`` costs 60 ms just to import (email, zipfile, csv...)
and the run-time layer needs this inventory before the application starts,
so this module reads ``*.dist-info`` (and legacy ``*.egg-info``) folders
itself: the ``METADATA`` header lines it needs, ``RECORD`` for the files a
distribution owns, ``direct_url.json`` and ``.pth`` files for editable
installs. The first distribution of a name on the path wins, as with
``importlib.metadata``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Iterable, Optional

from .names import canonical_name as canonicalize_name

try:   # RECORD reading in C (optional: setup.py builds it where a compiler is)
    from . import _speedups
except ImportError:
    _speedups = None
if os.environ.get("CAPIMPORT_PURE_PYTHON"):
    _speedups = None

from ._values import Value

#: Extensions of compiled modules a distribution may ship.
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")


class Distribution(Value):
    """One installed distribution, as its metadata folder describes it.

    A hand-written class, not a ``@dataclass``: importing ``dataclasses`` would
    cost every start ~17 ms (see :mod:`capimport._values`). ``_files`` (RECORD,
    read on first use) is compared but left out of the repr.
    """

    __slots__ = ("name", "display_name", "version", "location", "info_dir", "requires", "provides_extras",
                 "_files")
    name: str                      # canonical (PEP 503)
    display_name: str              # as written in METADATA
    version: str
    location: str                  # the folder on sys.path that holds it
    info_dir: str                  # its *.dist-info or *.egg-info folder
    requires: tuple[str, ...]
    provides_extras: tuple[str, ...]
    _files: Optional[tuple[str, ...]]

    def __init__(self, name: str, display_name: str, version: str, location: str, info_dir: str,
                 requires: tuple[str, ...] = (), provides_extras: tuple[str, ...] = (),
                 _files: Optional[tuple[str, ...]] = None) -> None:
        self.name = name
        self.display_name = display_name
        self.version = version
        self.location = location
        self.info_dir = info_dir
        self.requires = requires
        self.provides_extras = provides_extras
        self._files = _files

    def _key(self) -> tuple:
        return (self.name, self.display_name, self.version, self.location, self.info_dir, self.requires,
                self.provides_extras, self._files)

    # -- files ----------------------------------------------------------------------

    @property
    def files(self) -> tuple[str, ...]:
        """Absolute, normalised paths of the files RECORD lists (read once)."""
        if self._files is None:
            self._files = tuple(_read_record(self))
        return self._files

    @property
    def top_level(self) -> tuple[str, ...]:
        """Top-level import names: top_level.txt, else the first segment of RECORD paths."""
        path = os.path.join(self.info_dir, "top_level.txt")
        try:
            with open(path, encoding="utf-8") as handle:
                names = [line.strip() for line in handle if line.strip()]
            if names:
                return tuple(names)
        except OSError:
            pass
        names = set()
        prefix = self.location + os.sep
        for file in self.files:
            if not file.startswith(prefix):
                continue
            head = file[len(prefix):].split(os.sep, 1)[0]
            if head == "__pycache__" or head.endswith((".pth", ".dist-info", ".egg-info")):
                continue
            names.add(head[:-3] if head.endswith(".py") else head.split(".", 1)[0])
        return tuple(sorted(names))

    @property
    def native_files(self) -> tuple[str, ...]:
        """Compiled extension modules and shared libraries the distribution ships."""
        return tuple(f for f in self.files if f.endswith(NATIVE_SUFFIXES) or ".so." in os.path.basename(f))

    @property
    def is_native(self) -> bool:
        return bool(self.native_files)

    # -- editable installs ------------------------------------------------------------

    @property
    def editable_project(self) -> Optional[str]:
        """The project folder of an editable install (from direct_url.json), else None."""
        try:
            with open(os.path.join(self.info_dir, "direct_url.json"), encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not (data.get("dir_info") or {}).get("editable"):
            return None
        from urllib.parse import unquote, urlparse   # editable installs only

        url = urlparse(str(data.get("url", "")))
        if url.scheme != "file":
            return None
        return os.path.realpath(unquote(url.path))

    @property
    def source_roots(self) -> tuple[str, ...]:
        """Folders whose code belongs to this distribution although RECORD does not list it.

        For an editable install: the package folders a setuptools finder maps,
        else the path lines of its ``.pth`` files, else the project folder.
        """
        project = self.editable_project
        if project is None:
            return ()
        roots: list[str] = []
        for file in self.files:
            if file.endswith(".pth"):
                roots.extend(_pth_paths(file))
            elif os.path.basename(file).startswith("__editable__") and file.endswith("_finder.py"):
                roots.extend(_finder_mapping(file))
        roots = [os.path.realpath(r) for r in roots if os.path.isabs(r)]
        return tuple(dict.fromkeys(roots)) or (project,)


def find_distributions(paths: Optional[Iterable[str]] = None) -> dict[str, Distribution]:
    """Every distribution installed on *paths* (default ``sys.path``), by canonical name."""
    found: dict[str, Distribution] = {}
    for entry in (sys.path if paths is None else paths):
        folder = entry or os.getcwd()
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            dist = _read_distribution(folder, name)
            if dist is not None and dist.name not in found:
                found[dist.name] = dist
    return found


def _read_distribution(folder: str, name: str) -> Optional[Distribution]:
    info_dir = os.path.join(folder, name)
    if name.endswith(".dist-info"):
        headers = _read_headers(os.path.join(info_dir, "METADATA"))
    elif os.path.isdir(info_dir):
        headers = _read_headers(os.path.join(info_dir, "PKG-INFO"))
        headers.setdefault("requires-dist", []).extend(_egg_requires(info_dir))
    else:  # a bare PKG-INFO file named *.egg-info
        headers = _read_headers(info_dir)
    names = headers.get("name")
    versions = headers.get("version")
    if not names or not versions:
        return None
    return Distribution(
        name=canonicalize_name(names[0]),
        display_name=names[0],
        version=versions[0],
        location=os.path.realpath(folder),
        info_dir=info_dir,
        requires=tuple(headers.get("requires-dist", ())),
        provides_extras=tuple(headers.get("provides-extra", ())),
    )


def _read_headers(path: str) -> dict[str, list[str]]:
    """The RFC 822 header block of METADATA/PKG-INFO, keys lowercased; continuation lines folded."""
    headers: dict[str, list[str]] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            last = None
            for line in handle:
                if line in ("\n", "\r\n"):
                    break
                if line[:1] in (" ", "\t") and last is not None:
                    headers[last][-1] += " " + line.strip()
                    continue
                key, sep, value = line.partition(":")
                if not sep:
                    continue
                last = key.strip().lower()
                headers.setdefault(last, []).append(value.strip())
    except OSError:
        pass
    return headers


def _egg_requires(info_dir: str) -> list[str]:
    """requires.txt of an egg-info folder, with ``[extra:marker]`` sections as markers."""
    out: list[str] = []
    section = ""
    try:
        with open(os.path.join(info_dir, "requires.txt"), encoding="utf-8") as handle:
            for raw in handle:
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith("[") and line.endswith("]"):
                    section = line[1:-1]
                    continue
                extra, _, marker = section.partition(":")
                markers = [f'extra == "{extra}"'] if extra else []
                if marker:
                    markers.append(f"({marker})")
                out.append(f"{line}; {' and '.join(markers)}" if markers else line)
    except OSError:
        pass
    return out


def _read_record(dist: Distribution) -> list[str]:
    """RECORD's paths made absolute (:func:`record_paths`); installed-files.txt without one."""
    try:
        with open(os.path.join(dist.info_dir, "RECORD"), "rb") as handle:
            data = handle.read()
    except OSError:
        return _legacy_files(dist)
    return record_paths(data, dist.location + os.sep)


def record_paths(data: bytes, prefix: str) -> list[str]:
    """RECORD's first column, each joined to *prefix* and normalised where it climbs.

    Lines are split at ``\n`` with one trailing ``\r`` dropped; a line is cut at its first
    comma, or read with ``csv`` when it starts with a quote (a path with a comma or a quote in
    it). Every distribution's RECORD is read at each start: the common case is C
    (``_speedups.record_paths``, the same rule), this is the rest.
    """
    if _speedups is not None:
        try:
            found = _speedups.record_paths(data, prefix.encode("utf-8"))
        except UnicodeEncodeError:   # a folder name that is not UTF-8: read below
            found = None
        if found is not None:
            paths, fix = found
            for index in fix:
                paths[index] = os.path.normpath(paths[index])
            return paths
    files: list[str] = []
    for line in data.decode("utf-8").split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith('"'):
            import csv   # rare: a path with a comma or a quote in it

            try:
                path = next(csv.reader([line]))[0]
            except (csv.Error, StopIteration, IndexError):
                continue
        else:
            path = line.partition(",")[0]
        if not path:
            continue
        if ".." in path or "./" in path or "//" in path:
            files.append(os.path.normpath(prefix + path))
        else:
            files.append(prefix + path)
    return files


def _legacy_files(dist: Distribution) -> list[str]:
    """installed-files.txt of a legacy egg-info install, relative to the egg-info folder."""
    try:
        with open(os.path.join(dist.info_dir, "installed-files.txt"), encoding="utf-8") as handle:
            return [os.path.normpath(os.path.join(dist.info_dir, line.strip())) for line in handle if line.strip()]
    except OSError:
        return []


def record_lists(dist: Distribution, relative_path: str) -> bool:
    """True when RECORD lists *relative_path*, checked on the raw text (no full parse)."""
    try:
        with open(os.path.join(dist.info_dir, "RECORD"), encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return False
    return text.startswith(relative_path + ",") or f"\n{relative_path}," in text or f'"{relative_path}"' in text


def _pth_paths(pth_file: str) -> list[str]:
    """Plain path lines of a .pth file (import lines are code, not paths)."""
    try:
        with open(pth_file, encoding="utf-8") as handle:
            return [line.strip() for line in handle
                    if line.strip() and not line.startswith(("#", "import ", "import\t"))]
    except OSError:
        return []


def _finder_mapping(finder_file: str) -> list[str]:
    """Values of ``MAPPING = {...}`` in a setuptools editable finder, read without running it."""
    import ast   # editable installs only

    try:
        with open(finder_file, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "MAPPING" for t in node.targets):
            try:
                mapping = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [str(v) for v in mapping.values()] if isinstance(mapping, dict) else []
    return []
