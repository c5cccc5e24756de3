"""Static inference: what a distribution's code can do, read from its source with ``ast``.

Nothing is imported or run. Each Python file a distribution installed (from
RECORD; an editable install's source tree) is parsed, names are resolved the
way Python resolves them inside a module (imports and their aliases,
attribute chains, ``getattr(os, "system")``, ``__import__("os")``, module
level aliases such as ``_open = open``, function scopes, class scopes,
comprehensions, ``global``/``nonlocal``, star imports), and every use of an
API in :mod:`capimport.table.apis` becomes a piece of :class:`Evidence`:
capability, API, ``file:line:col`` and enclosing function. Names one module
of the distribution imports from another (``from .compat import getproxies``)
are followed across its modules.

What cannot be judged statically is reported as a :class:`Finding`, not as a
capability: dynamic imports and ``exec``/``eval``/``compile`` of code that is
not a literal, ``getattr`` on a capability module with a computed name,
compiled extension modules, ``.pth`` files that run code at start-up, and
files that do not parse.

Work happens in two steps so that it can be spread over processes: a
per-file step (:func:`analyse_source`, pure, picklable result) and a
per-distribution link step (:func:`link`). :func:`scan_all` adds the cache
and the process pool.

One module per step; each imports only the ones listed before it:

* :mod:`.contexts`: the platform, Python-version and ``__main__`` conditions
  code runs under, as terms, and whether they hold here;
* :mod:`.model`: the data: folded argument values, :class:`Evidence`,
  :class:`Finding`, :class:`ScanResult`, :class:`FileSummary`;
* :mod:`.analyser`: the per-file step, :func:`analyse_source`;
* :mod:`.evidence`: one use record -> :class:`Evidence`, :func:`evidence_of`;
* :mod:`.linking`: the per-distribution step, :func:`link`, :func:`scan_distribution`;
* :mod:`.cache`: results on disk, :func:`scanner_fingerprint`, :func:`cache_key`;
* :mod:`.pool`: :func:`scan_all` over many distributions, with the cache and the process pool.

This package re-exports the names the rest of capimport, the tests and the
benchmarks use. The pool's tuning knobs (``PARALLEL_THRESHOLD``,
``_CHUNK_BYTES``) are read where they are defined: set them on
:mod:`capimport.scan.pool`, not here.
"""

from __future__ import annotations

from ..policycache import default_cache_dir
from .analyser import analyse_source
from .cache import CACHE_FORMAT, cache_key, scanner_fingerprint
from .contexts import platform_matches, version_matches
from .evidence import evidence_of
from .linking import dist_files, internal_names, link, module_name, scan_distribution
from .model import (FINDING_KINDS, MISSING, OWN, STAR, UNKNOWN, Evidence, FileSummary, Finding, Flags, Ref,
                    ScanResult, evidence_grant)
from .pool import TerminalProgress, scan_all

__all__ = [
    "CACHE_FORMAT", "FINDING_KINDS", "MISSING", "OWN", "STAR", "UNKNOWN",
    "Evidence", "FileSummary", "Finding", "Flags", "Ref", "ScanResult", "TerminalProgress",
    "analyse_source", "cache_key", "default_cache_dir", "dist_files", "evidence_grant", "evidence_of",
    "internal_names", "link", "module_name", "platform_matches", "scan_all", "scan_distribution",
    "scanner_fingerprint", "version_matches",
]
