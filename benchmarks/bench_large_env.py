"""Warm start-up on a large environment: plain Python against capimport trees, alternating runs.

    python benchmarks/bench_large_env.py VENV PROJECT [--runs N] [--compare-src DIR]

*VENV* is a virtual environment with many distributions installed (the figures in
docs/performance.md come from 63- and 106-distribution venvs of popular packages), *PROJECT* a
folder with a ``pyproject.toml`` that configures capimport for them. Each run starts
``VENV/bin/python -c pass`` plainly and ``-m capimport -c pass`` with this tree's ``src`` (and
with ``--compare-src``'s) on ``PYTHONPATH``, in turn, after one warming start per tree so the
policy caches are warm. Prints the medians and minimums.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv")
    parser.add_argument("project")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--compare-src", metavar="DIR")
    args = parser.parse_args()
    trees = {"plain python": None, "python -m capimport": os.path.join(HERE, "src")}
    if args.compare_src:
        trees[f"capimport from {args.compare_src}"] = args.compare_src
    python = os.path.join(args.venv, "bin", "python")
    with tempfile.TemporaryDirectory() as cache:
        base = dict(os.environ, CAPIMPORT_CACHE_DIR=cache)
        commands = {name: ([python, "-c", "pass"], base) if src is None else
                    ([python, "-m", "capimport", "-c", "pass"], dict(base, PYTHONPATH=src))
                    for name, src in trees.items()}
        for command, env in commands.values():   # warm the policy caches
            subprocess.run(command, cwd=args.project, env=env, check=True)
        times: dict = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, (command, env) in commands.items():
                start = time.perf_counter()
                subprocess.run(command, cwd=args.project, env=env, check=True)
                times[name].append(time.perf_counter() - start)
    plain = statistics.median(times["plain python"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name}: {1000 * median:.1f} ms (min {1000 * min(values):.1f}), {median / plain:.2f}x")


if __name__ == "__main__":
    main()
