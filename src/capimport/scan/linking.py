"""The per-distribution step: its files, names followed across its modules, evidence.

:func:`link` joins the per-file summaries of one distribution: a name one of
its modules imports from another (``from .compat import getproxies``) is
followed to what that module binds it to, ``?pkg.mod.NAME`` platform terms are
resolved against the module that defines NAME, and every use of an external
API becomes evidence (:func:`~capimport.scan.evidence.evidence_of`). Compiled
extensions and ``.pth`` files that run code become findings.
:func:`scan_distribution` does both steps for one distribution in this process.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from ..capabilities import CAPABILITIES, FFI
from .analyser import _attr, analyse_source
from .contexts import _negate
from .evidence import evidence_of
from .model import Evidence, FileSummary, Finding, ScanResult


def dist_files(dist) -> tuple[list, list, list]:
    """(python files as (path, root), native files, .pth files) of a distribution."""
    python: list = []
    roots = [dist.location]
    for path in dist.files:
        if path.endswith(".py") and "__pycache__" not in path:
            python.append((path, dist.location))
    for root in getattr(dist, "source_roots", ()) or ():
        roots.append(root)
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "node_modules")
                             and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg")))
            for name in sorted(files):
                if name.endswith(".py"):
                    python.append((os.path.join(folder, name), root))
    native = [p for p in dist.native_files] if hasattr(dist, "native_files") else []
    pth = [p for p in dist.files if p.endswith(".pth")]
    seen = set()
    unique = []
    for path, root in python:
        if path not in seen:
            seen.add(path)
            unique.append((path, root))
    return unique, native, pth


def module_name(path: str, root: str) -> tuple[str, bool]:
    rel = os.path.relpath(path, root)
    if rel.startswith(".."):
        rel = os.path.basename(path)
    parts = rel[:-3].split(os.sep)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(p for p in parts if p), is_package


def _rel(path: str, root: str) -> str:
    rel = os.path.relpath(path, root)
    return rel.replace(os.sep, "/")


def _scan_file(job: tuple) -> tuple:
    path, root, internal = job
    module, is_package = module_name(path, root)
    try:
        with open(path, "rb") as handle:
            source = handle.read()
    except OSError as error:
        return path, root, FileSummary(module, {}, (), [], [(0, 0, "parse-error", f"cannot read: {error.strerror}")],
                                       frozenset())
    return path, root, analyse_source(source, module, is_package, internal)


def internal_names(dist, python_files: Sequence[tuple]) -> frozenset:
    names = set(getattr(dist, "top_level", ()) or ())
    for path, root in python_files:
        module, _ = module_name(path, root)
        if module:
            names.add(module.split(".", 1)[0])
    return frozenset(names)


def link(dist, summaries: Sequence[tuple], native: Sequence[str] = (), pth: Sequence[str] = (),
         internal: frozenset = frozenset()) -> ScanResult:
    """The per-distribution step: follow names across its modules, map uses to evidence."""
    modules: dict[str, FileSummary] = {}
    for _, _, summary in summaries:
        modules.setdefault(summary.module, summary)

    def exported(module: str, name: str, depth: int) -> list:
        summary = modules.get(module)
        if summary is None:
            return []
        if name in summary.exports:
            return list(summary.exports[name])
        if f"{module}.{name}" in modules:
            return [f"{module}.{name}"]
        out = []
        for star in summary.stars:
            if star.split(".", 1)[0] in internal:
                if depth < 8:
                    out.extend(exported(star, name, depth + 1))
            else:
                out.append(f"{star}.{name}")
        return out

    def external(value: str, depth: int = 0) -> list:
        if value.split(".", 1)[0] not in internal:
            return [value]
        if depth > 8 or value.endswith("()"):
            return []
        parts = value.split(".")
        for i in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:i])
            if module in modules:
                out = []
                rest = parts[i + 1:]
                for target in exported(module, parts[i], depth):
                    full = target
                    for attr in rest:
                        full = _attr(full, attr)
                    if full == value:
                        continue
                    out.extend(external(full, depth + 1))
                return out
        return []

    def platform_of(term: str) -> Optional[str]:
        """A ``?pkg.mod.NAME`` term: the condition NAME holds in that module (None: unknown)."""
        negated = term.startswith("!")
        module, _, name = term[2 if negated else 1:].rpartition(".")
        summary = modules.get(module)
        condition = summary.platforms.get(name) if summary is not None else None
        if condition is None:
            return None
        return _negate(condition) if negated else condition

    def resolved(record: tuple) -> tuple:
        marks = record[8] if len(record) > 8 else None
        if marks is None or not any("?" in t for t in marks[0]):
            return record
        terms = tuple(t for t in (platform_of(t) if "?" in t else t for t in marks[0]) if t)
        return record[:8] + ((terms, marks[1], marks[2]),)

    own = frozenset(internal | {dist.name.replace("-", "_").lower()})
    evidence: set = set()
    findings: set = set()
    imports: set = set()
    files = 0
    for path, root, summary in summaries:
        files += 1
        rel = _rel(path, root)
        imports |= summary.imports
        for line, col, kind, message in summary.findings:
            findings.add(Finding(rel, line, col, kind, message))
        for record in summary.uses:
            record = resolved(record)
            for value in external(record[0]):
                for item in evidence_of(record, value, rel, own):
                    evidence.add(item)
    location = dist.location
    for path in native:
        findings.add(Finding(_rel(path, location), 0, 0, "native",
                             "compiled extension module: its code cannot be scanned or guarded"))
        if _loads_cffi_backend(path):
            evidence.add(Evidence(FFI, _rel(path, location), 0, 0, "loads cffi's backend (_cffi_backend) when imported"))
    for path in pth:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for number, text in enumerate(handle, 1):
                    if text.startswith(("import ", "import\t")):
                        findings.add(Finding(_rel(path, location), number, 1, "startup-code",
                                             ".pth line runs code at every interpreter start-up"))
        except OSError:
            pass
    order = {cap: i for i, cap in enumerate(CAPABILITIES)}
    sorted_evidence = tuple(sorted(evidence, key=lambda e: (order[e.capability], e.file, e.line, e.col, e.api)))
    external_imports = tuple(sorted(m for m in imports if m and m not in internal))
    return ScanResult(dist.name, dist.version, location, sorted_evidence, tuple(sorted(findings)), files,
                      external_imports)


def _loads_cffi_backend(path: str) -> bool:
    """A module cffi compiled (cryptography's, PyNaCl's ``_sodium``) imports ``_cffi_backend`` from
    its init, which needs ``ffi`` at run time: the name is in the file, read without loading it."""
    import mmap

    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b"_cffi_backend") >= 0
    except (OSError, ValueError):   # unreadable, or empty (mmap of nothing)
        return False


def scan_distribution(dist) -> ScanResult:
    """Scan one distribution in this process (no cache)."""
    python, native, pth = dist_files(dist)
    internal = internal_names(dist, python)
    summaries = [_scan_file((path, root, internal)) for path, root in python]
    return link(dist, summaries, native, pth, internal)
