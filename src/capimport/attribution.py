"""Who is acting: code -> origin, the stack walk, and the attribution rule.

Every frame's code is classified by the file its *code object* was compiled
from (``co_filename``), never by ``__name__`` or ``__file__`` in its globals,
which any module can rewrite:

* ``STDLIB``: the standard library (transparent: it acts for its caller);
* ``IMPORT``, ``LINECACHE``, ``LOGGING``: stdlib frames with a privilege
  (the import system loading modules and writing bytecode caches; linecache
  reading Python source for tracebacks; a logging handler writing where its
  creator was allowed to write);
* ``CAPIMPORT``: capimport itself (transparent; the distributions it depends
  on are privileged while it runs them);
* ``DYNAMIC``: code compiled from a string (``<string>``, ``exec``): it is
  attributed to the frames that created and called it, which stay on the stack;
* a distribution's canonical name (from its ``RECORD``, or for an editable
  install from its source folders);
* ``UNKNOWN``: a file in a site-packages folder that no ``RECORD`` claims
  (gets the ``default`` grant);
* ``APP``: everything else (the script, its project, ``-c`` code).

The rule (``docs/attribution.md``): walk the whole stack from the innermost
frame outward, keeping the non-transparent frames as a *chain* of origins.
The first element of the chain (the innermost distribution or application
frame) must hold the capability. Every later element must too, unless the
element just inside it is one of its (transitive) dependents, or the
application: a framework calling back up into the code that uses it is not
acting itself. A privileged stdlib frame ends the walk.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Iterable, Mapping, Optional

from .graph import ROOT

APP = ROOT                      # ":app:"
STDLIB = ":stdlib:"
CAPIMPORT = ":capimport:"
DYNAMIC = ":dynamic:"
IMPORT = ":import:"
LINECACHE = ":linecache:"
LOGGING = ":logging:"
UNKNOWN = ":unknown:"
#: The runner's own frames: the bottom of the program's stack (the walk stops there).
BOTTOM = ":bottom:"

#: Origins that are not actors: skipped by the walk.
TRANSPARENT = frozenset({STDLIB, DYNAMIC, CAPIMPORT, IMPORT, LINECACHE, LOGGING, BOTTOM})
#: Origins whose frames may end the walk.
PRIVILEGED = frozenset({IMPORT, LINECACHE, LOGGING})

_IMPORT_FROZEN = frozenset({"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>",
                            "<frozen zipimport>"})

#: Distributions capimport depends on: privileged while capimport runs them.
CAPIMPORT_DEPENDENCIES = frozenset({"packaging", "tomlkit", "tomli"})


def _stdlib_dirs() -> tuple[str, ...]:
    dirs = {os.path.dirname(os.__file__)}
    for module in ("_json", "_socket", "_ctypes", "math"):
        mod = sys.modules.get(module)
        path = getattr(mod, "__file__", None)
        if path:
            dirs.add(os.path.dirname(path))
    dirs |= {os.path.realpath(d) for d in dirs if d}   # targets are resolved: a symlinked prefix too
    return tuple(sorted(d.rstrip(os.sep) + os.sep for d in dirs if d))


class OriginMap:
    """Maps a code object's file name to its origin, with a per-file cache."""

    def __init__(self, distributions: Mapping[str, object], *, app_distributions: Iterable[str] = (),
                 app_dirs: Iterable[str] = ()):
        self.distributions = distributions
        self.app_distributions = frozenset(app_distributions)
        self.capimport_dir = os.path.dirname(os.path.abspath(__file__)) + os.sep
        self.capimport_real = os.path.realpath(self.capimport_dir) + os.sep
        self.stdlib_dirs = _stdlib_dirs()
        self.app_dirs = tuple(os.path.realpath(d) + os.sep for d in app_dirs if d)
        self.cache: dict[str, str] = {}
        #: Code another party made under a name that reads as the application's (or nobody's):
        #: id -> (code, origin), the code held so that no other code takes its id. Only names in
        #: ``marked_names`` are looked up, so other frames pay one set test (:meth:`mark`).
        self.marked: dict[int, tuple] = {}
        self.marked_names: set = set()
        self._by_file: Optional[dict[str, str]] = None
        self._roots: Optional[list[tuple[str, str]]] = None
        # Most distributions share one folder: resolve each folder once.
        self._real_locations = {location: os.path.realpath(location)
                                for location in {getattr(d, "location") for d in distributions.values()}}
        self._site_dirs = tuple(sorted({real + os.sep for real in self._real_locations.values()},
                                       key=len, reverse=True))
        self._owned: dict[str, tuple[frozenset, tuple[str, ...]]] = {}
        self._source_roots: dict[str, tuple[str, ...]] = {}
        self._locations: dict[str, str] = {}
        for stdlib in self.stdlib_dirs:
            self.cache[stdlib + "linecache.py"] = LINECACHE
            self.cache[stdlib + "logging" + os.sep + "__init__.py"] = LOGGING
            self.cache[stdlib + "logging" + os.sep + "handlers.py"] = LOGGING

    # -- building ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Read every distribution's RECORD and editable mapping (done before the hook is on)."""
        if self._by_file is None:
            self._build()

    def _build(self) -> None:
        by_file: dict[str, str] = {}
        roots: list[tuple[str, str]] = []
        for name, dist in self.distributions.items():
            for path in dist.files:                       # type: ignore[attr-defined]
                by_file.setdefault(path, name)
            # source_roots reads direct_url.json and .pth files: read once, here, never in the hook.
            source_roots = _narrow_roots(dist)
            self._source_roots[name] = source_roots
            self._locations[name] = self._real_locations[dist.location]  # type: ignore[attr-defined]
            for root in source_roots:
                roots.append((root.rstrip(os.sep) + os.sep, name))
        roots.sort(key=lambda item: len(item[0]), reverse=True)
        self._by_file, self._roots = by_file, roots

    # -- classification ---------------------------------------------------------------

    def mark(self, code, origin: str) -> None:
        """*code* is *origin*'s whatever its ``co_filename`` reads as (the pure-Python fallback's
        forged-identity rule, ``guards/tamper.py``; the native core marks in C, ``mark_code``).
        The application's own code under the same name stays the application's."""
        self.marked[id(code)] = (code, origin)
        self.marked_names.add(code.co_filename)

    def code_origin(self, code, origin: str) -> str:
        """The origin of the frame running *code*, whose file name reads as *origin*."""
        found = self.marked.get(id(code))
        return found[1] if found is not None and found[0] is code else origin

    def origin(self, filename: str) -> str:
        """The origin of code compiled from *filename* (cached)."""
        found = self.cache.get(filename)
        if found is None:
            found = self.cache[filename] = self._classify(filename)
        return found

    def _classify(self, filename: str) -> str:
        if not filename:
            return DYNAMIC
        if filename[0] == "<":
            if filename in _IMPORT_FROZEN:
                return IMPORT
            return STDLIB if filename.startswith("<frozen ") else DYNAMIC
        path = filename if os.path.isabs(filename) else os.path.join(os.getcwd(), filename)
        path = os.path.normpath(path)
        if path.startswith(self.capimport_dir) or path.startswith(self.capimport_real):
            return CAPIMPORT
        dist = self._distribution_of(path)
        if dist is None:
            real = os.path.realpath(path)
            if real != path:
                if real.startswith(self.capimport_real):
                    return CAPIMPORT
                dist = self._distribution_of(real)
            path = real
        if dist is not None:
            return APP if dist in self.app_distributions else dist
        for site in self._site_dirs:
            if path.startswith(site) and not any(path.startswith(a) for a in self.app_dirs):
                return UNKNOWN
        for stdlib in self.stdlib_dirs:
            if path.startswith(stdlib):
                cached = self.cache.get(stdlib + path[len(stdlib):])
                return cached if cached in PRIVILEGED else STDLIB
        return APP

    def _distribution_of(self, path: str) -> Optional[str]:
        if self._by_file is None:
            self._build()
        assert self._by_file is not None and self._roots is not None
        dist = self._by_file.get(path)
        if dist is not None:
            return dist
        for root, name in self._roots:
            if path.startswith(root):
                return name
        return None

    # -- ownership --------------------------------------------------------------------

    def owns(self, name: str, path: str) -> bool:
        """True when the resolved *path* is one of distribution *name*'s installed files or folders."""
        owned, roots = self.ownership(name)
        if path in owned:
            return True
        return any(path == r or path.startswith(r + os.sep) for r in roots)

    def standard_library_file(self, path: str) -> bool:
        """True for a resolved *path* inside the standard library's folders that no distribution,
        site folder or application folder holds: anyone may read the standard library (it is the
        interpreter's own code, the same in every process; ``runpy.run_module`` and
        ``importlib.resources`` read it through the caller)."""
        if not path.startswith(self.stdlib_dirs) or path.startswith(self._site_dirs) \
                or path.startswith(self.app_dirs):
            return False
        if "/site-packages/" in path + "/" or "/dist-packages/" in path + "/":   # inside, or the folder
            return False
        return self._distribution_of(path) is None

    def ownership(self, name: str) -> tuple[frozenset, tuple[str, ...]]:
        """Distribution *name*'s installed files and folders, and its editable source roots (cached)."""
        entry = self._owned.get(name)
        if entry is None:
            dist = self.distributions.get(name)
            if dist is None:
                return frozenset(), ()
            self.prepare()
            files = dist.files                           # type: ignore[attr-defined]
            location = self._locations.get(name) or dist.location  # type: ignore[attr-defined]
            owned = _folders(files, location + os.sep)
            owned.update(files)
            roots = tuple(r.rstrip(os.sep) for r in self._source_roots.get(name, ()))
            entry = self._owned[name] = (frozenset(owned), roots)
        return entry

    # -- display ----------------------------------------------------------------------

    def relative(self, filename: str, origin: str) -> str:
        """*filename* shortened for messages: relative to its distribution's folder or the cwd."""
        dist = self.distributions.get(origin)
        bases = []
        if dist is not None:
            bases.extend(os.path.dirname(r) for r in self._source_roots.get(origin, ()))
            bases.append(dist.location)  # type: ignore[attr-defined]
        try:
            bases.append(os.getcwd())
        except OSError:
            pass
        for base in bases:
            for candidate in (filename, os.path.realpath(filename)):
                if candidate.startswith(base.rstrip(os.sep) + os.sep):
                    return candidate[len(base.rstrip(os.sep)) + 1:]
        return filename


def _narrow_roots(dist) -> tuple[str, ...]:
    """An editable install's source folders; a whole project folder is narrowed to its packages.

    When nothing finer is known, the foundation falls back to the project folder,
    which also holds tests, examples and scripts that are not the distribution's
    code: those are narrowed to ``<project>/<top>`` or ``<project>/src/<top>``.
    """
    roots = tuple(dist.source_roots)
    project = dist.editable_project
    if not project or tuple(roots) != (project,):
        return roots
    narrowed = []
    for top in dist.top_level:
        for base in (project, os.path.join(project, "src")):
            for candidate in (os.path.join(base, top), os.path.join(base, top + ".py")):
                if os.path.exists(candidate):
                    narrowed.append(candidate)
    return tuple(narrowed) or roots


# ----------------------------------------------------------------------------- the walk


class Link:
    """One element of the chain: an origin and the innermost frame it had there."""

    __slots__ = ("origin", "filename", "frame", "lineno")

    def __init__(self, origin: str, filename: str, frame=None, lineno: int = 0):
        self.origin = origin
        self.filename = filename
        self.frame = frame
        self.lineno = lineno

    def line(self) -> int:
        if self.frame is not None:
            try:
                return self.frame.f_lineno or 0
            except Exception:  # pragma: no cover - defensive
                return 0
        return self.lineno

    def frozen(self) -> "Link":
        """A copy that keeps no frame alive (for inherited chains)."""
        return Link(self.origin, self.filename, None, self.line())

    def __repr__(self) -> str:
        return f"Link({self.origin!r}, {self.filename!r}:{self.line()})"


ALLOW = None  # returned by walk() when a privileged frame allows the act outright


try:  # the optional C accelerator: lists frames without raising an audit event per frame
    from . import _speedups
except ImportError:  # pragma: no cover - exercised where no compiler built it
    _speedups = None
if os.environ.get("CAPIMPORT_PURE_PYTHON"):
    _speedups = None

#: Transparent origins the walk does nothing with (the C loop does not list them).
_SKIP = frozenset({STDLIB, DYNAMIC})
#: Origins whose every frame the walk must see (the C loop lists each one).
_EACH = frozenset({CAPIMPORT, IMPORT, LINECACHE, LOGGING, BOTTOM})


def _folders(files, inside: str) -> set:
    """Every folder of *files* (absolute, normalised) under *inside* (a folder and a separator)."""
    if _speedups is not None:
        return _speedups.folders(files, inside, os.sep)
    folders: set = set()
    for file in files:   # rpartition is dirname, at start-up speed
        parent = file.rpartition(os.sep)[0]
        while parent not in folders and parent.startswith(inside):
            folders.add(parent)
            parent = parent.rpartition(os.sep)[0]
    return folders


def _frames(frame, cache):
    """Pure-Python twin of ``_speedups.frames``: every frame, origin looked up (None: a miss)."""
    while frame is not None:
        filename = frame.f_code.co_filename
        yield cache.get(filename), filename, frame
        frame = frame.f_back


class Acting:
    """``privileged``'s answer when native code with no frame of its own acts for the owner of
    its file (an extension module's init, run by the import system): *link* acts, as a Python
    module's body would, and the next privileged frame ends the walk."""

    __slots__ = ("link",)

    def __init__(self, link: Link):
        self.link = link


def walk(frame, origins: OriginMap, privileged: Callable[[str, object], bool],
         inherited: tuple = ()) -> Optional[list]:
    """The chain of acting origins from *frame* outward (innermost first).

    ``privileged(kind, frame)`` is asked when a privileged stdlib frame is met
    before any actor; when it answers True the act is allowed outright and
    ``ALLOW`` (None) is returned. When it answers a :class:`Link` (code nobody
    owns: a callable the import system called, or a file that is no module it
    was made to read), that link starts the chain and no privileged frame ends
    this walk; an :class:`Acting` link starts it as an actor would. A
    privileged frame met after an actor ends the walk.
    *inherited* is appended when the walk reaches the bottom of the stack (the
    chain of the code that started this thread).
    """
    chain: list = []
    cache = origins.cache
    classify = origins.origin
    marked_names = origins.marked_names
    last = None
    deps = False  # a dependency of capimport is in the chain (rare)
    looked_through = False  # a privilege did not cover the act: no privileged frame ends the walk
    entries = (_speedups.frames(frame, cache, _SKIP, _EACH) if _speedups is not None
               else _frames(frame, cache))
    for origin, filename, frame in entries:
        if origin is None:
            origin = classify(filename)
        if marked_names and filename in marked_names:
            origin = origins.code_origin(frame.f_code, origin)
        if origin in TRANSPARENT:
            if origin == BOTTOM:
                break
            if origin == CAPIMPORT:
                if deps:
                    chain = [link for link in chain if link.origin not in CAPIMPORT_DEPENDENCIES]
                    last = chain[-1].origin if chain else None
                    deps = False
            elif origin in PRIVILEGED and not looked_through:
                if chain:
                    return chain
                verdict = privileged(origin, frame)
                if verdict is True:
                    return ALLOW
                if isinstance(verdict, Acting):   # an extension's init: its file's owner acts
                    chain.append(verdict.link)
                    last = verdict.link.origin
                elif isinstance(verdict, Link):   # not the privileged frame's act: verdict, then the rest
                    chain.append(verdict)
                    last = verdict.origin
                    looked_through = True
            continue
        if origin != last:
            chain.append(Link(origin, filename, frame))
            last = origin
            if origin in CAPIMPORT_DEPENDENCIES:
                deps = True
    if inherited:
        for link in inherited:
            if link.origin != last:
                chain.append(link)
                last = link.origin
    return chain


def accountable(chain: list, dependents: Callable[[str], frozenset]) -> list:
    """The links of *chain* that must hold the capability (innermost first).

    The innermost link always; each outer link unless the link just inside it
    is one of its dependents (it is calling back up into code that uses it).
    """
    if not chain:
        return []
    out = [chain[0]]
    for inner, outer in zip(chain, chain[1:]):
        if inner.origin in dependents(outer.origin):
            continue
        out.append(outer)
    return out
