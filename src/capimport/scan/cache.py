"""Scan results on disk, one JSON file per distribution.

A result is reused while both keys hold: :func:`cache_key` (the
distribution's name, version, RECORD, and the file stats of an editable
install's source tree) and :func:`scanner_fingerprint` (the scanner's own
code and tables), so that neither a reinstall nor a scanner change can serve
stale results.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Optional

from .model import ScanResult

#: Bumped when the shape of cached results changes.
CACHE_FORMAT = 2

_FINGERPRINT: Optional[str] = None


def scanner_fingerprint() -> str:
    """Changes whenever the scanner or its table changes, so that stale results are not reused.

    Every module of this package is hashed (a change to any of them can change
    results), with the tables it reads.
    """
    global _FINGERPRINT
    if _FINGERPRINT is None:
        digest = hashlib.sha256(f"{CACHE_FORMAT}:{sys.version_info[:2]}".encode())
        here = os.path.dirname(os.path.abspath(__file__))  # capimport/scan
        try:
            modules = sorted(name for name in os.listdir(here) if name.endswith(".py"))
        except OSError:
            modules = []
        files = [os.path.join("scan", name) for name in modules]
        files += [os.path.join("table", "apis.py"), os.path.join("table", "events.py")]
        for rel in files:
            try:
                with open(os.path.join(os.path.dirname(here), rel), "rb") as handle:
                    digest.update(handle.read())
            except OSError:
                digest.update(rel.encode())
        _FINGERPRINT = digest.hexdigest()[:16]
    return _FINGERPRINT


def cache_key(dist) -> str:
    """Hash of RECORD (plus file stats of an editable install's source tree)."""
    digest = hashlib.sha256(f"{dist.name}\0{dist.version}\0".encode())
    for listing in ("RECORD", "installed-files.txt"):
        try:
            with open(os.path.join(dist.info_dir, listing), "rb") as handle:
                digest.update(handle.read())
            break
        except OSError:
            continue
    else:
        digest.update(repr(sorted(dist.files)).encode())
    for root in getattr(dist, "source_roots", ()) or ():
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "node_modules"))
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    try:
                        stat = os.stat(path)
                    except OSError:
                        continue
                    digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
    return digest.hexdigest()[:24]


def _cache_path(folder: str, dist) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in f"{dist.name}-{dist.version}")
    return os.path.join(folder, "scan", scanner_fingerprint(), f"{safe}-{cache_key(dist)}.json")


def _cache_load(path: str, dist) -> Optional[ScanResult]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        result = ScanResult.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    result.root = dist.location
    result.cached = True
    return result


def _cache_store(path: str, result: ScanResult) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        data = result.to_json()
        data.pop("inferred", None)
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full cache folder only costs speed
