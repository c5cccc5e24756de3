"""Many distributions: the cache, and a process pool for large uncached scans.

:func:`scan_all` takes cached results where they hold, and spreads the
uncached files' per-file step over processes when there is enough source to
pay for the pool (:data:`PARALLEL_THRESHOLD`); the workers run
:func:`_scan_chunk` and send back plain :class:`~capimport.scan.model.FileSummary`
data, and the per-distribution link step runs here.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Iterable, Mapping, Optional

from ..policycache import default_cache_dir  # one cache folder for policy and scan results
from .cache import _cache_load, _cache_path, _cache_store
from .linking import _scan_file, dist_files, internal_names, link


#: Below this much uncached source (bytes) scanning stays in this process.
PARALLEL_THRESHOLD = 1_500_000
_CHUNK_BYTES = 400_000


def _scan_chunk(jobs: list) -> list:
    """A worker's job. Module level, so that the pool sends it by name (``capimport.scan.pool``)."""
    return [_scan_file(job) for job in jobs]


class TerminalProgress:
    """Progress on a terminal's stderr line, shown only once scanning takes more than *delay* s."""

    def __init__(self, stream=None, delay: float = 0.3):
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.start = time.monotonic()
        self.shown = False
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int, label: str = "") -> None:
        if not self.enabled or total <= 0:
            return
        if not self.shown and time.monotonic() - self.start < self.delay and done < total:
            return
        self.shown = True
        text = f"capimport: scanning {done}/{total} files" + (f" ({label})" if label else "")
        self.stream.write("\r" + text[:79].ljust(79))
        if done >= total:
            self.stream.write("\r" + " " * 79 + "\r")
        self.stream.flush()


def scan_all(distributions: Mapping[str, object] | Iterable, cache_dir: Optional[str] = None,
             jobs: Optional[int] = None, progress: Optional[Callable] = None,
             use_cache: bool = True) -> dict:
    """Scan every distribution; returns ``{canonical name: ScanResult}``.

    Results are cached per (distribution, version, RECORD hash) under
    *cache_dir* (default :func:`default_cache_dir`). Uncached files are spread over
    *jobs* processes (default: the CPU count) when there is enough source to
    pay for the pool; otherwise they are scanned here. *progress* is called as
    ``progress(done_files, total_files, name)``.
    """
    dists = list(distributions.values()) if isinstance(distributions, Mapping) else list(distributions)
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    results: dict = {}
    todo = []
    for dist in dists:
        path = _cache_path(folder, dist) if use_cache else ""
        cached = _cache_load(path, dist) if use_cache else None
        if cached is not None:
            results[dist.name] = cached
        else:
            todo.append((dist, path))
    if not todo:
        return results
    plans = []
    jobs_list: list = []
    total_bytes = 0
    for dist, path in todo:
        python, native, pth = dist_files(dist)
        internal = internal_names(dist, python)
        plans.append((dist, path, python, native, pth, internal))
        for file, root in python:
            try:
                size = os.path.getsize(file)
            except OSError:
                size = 0
            total_bytes += size
            jobs_list.append(((file, root, internal), size, dist.name))
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    summaries: dict = {}
    total = len(jobs_list)
    done = 0
    if workers > 1 and total_bytes >= PARALLEL_THRESHOLD and total > 1:
        chunks = _chunks(jobs_list, max(_CHUNK_BYTES, total_bytes // (workers * 8)))
        try:
            from concurrent.futures import ProcessPoolExecutor, as_completed
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_scan_chunk, [job for job, _, _ in chunk]): chunk for chunk in chunks}
                for future in as_completed(futures):
                    for file, root, summary in future.result():
                        summaries[file] = (file, root, summary)
                    done += len(futures[future])
                    if progress:
                        progress(done, total, futures[future][-1][2])
        except (OSError, ImportError, RuntimeError):
            summaries = {}
            done = 0
    if len(summaries) < total:
        for job, _, name in jobs_list:
            if job[0] in summaries:
                continue
            summaries[job[0]] = _scan_file(job)
            done += 1
            if progress and (done % 25 == 0 or done == total):
                progress(done, total, name)
    for dist, path, python, native, pth, internal in plans:
        result = link(dist, [summaries[file] for file, _ in python if file in summaries], native, pth, internal)
        if use_cache:
            _cache_store(path, result)
        results[dist.name] = result
    if progress:
        progress(total, total, "")
    return results


def _chunks(jobs: list, budget: int) -> list:
    """Jobs grouped into chunks of about *budget* bytes, biggest files first (better balance)."""
    ordered = sorted(jobs, key=lambda item: -item[1])
    chunks: list = []
    current: list = []
    size = 0
    for item in ordered:
        current.append(item)
        size += item[1]
        if size >= budget:
            chunks.append(current)
            current, size = [], 0
    if current:
        chunks.append(current)
    return chunks
