"""Static inference throughput: `capimport audit` cold and warm, and bandit on the same files.

    python benchmarks/bench_scan.py SITE_PACKAGES [--bandit /path/to/bandit] [--repeat 3]

Cold runs use a fresh scan cache (CAPIMPORT_CACHE_DIR in a temporary folder);
warm runs reuse it. Each figure is the best of --repeat runs of the whole
command in a new process, so interpreter start-up is included.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def _time(command, env) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", help="a site-packages folder")
    parser.add_argument("--bandit", help="a bandit executable, to compare on the same files")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from capimport.distributions import find_distributions
    from capimport.scan import dist_files

    dists = find_distributions([args.site])
    files = [path for dist in dists.values() for path, _ in dist_files(dist)[0]]
    size = sum(os.path.getsize(f) for f in files if os.path.exists(f))
    print(f"{len(dists)} distributions, {len(files)} Python files, {size / 1e6:.1f} MB of source, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")

    audit = [sys.executable, "-m", "capimport.cli", "audit", "--path", args.site, "--format", "json"]
    cold, warm, serial = [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, CAPIMPORT_CACHE_DIR=cache)
            cold.append(_time(audit, env))
            warm.append(min(_time(audit, env) for _ in range(3)))
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, CAPIMPORT_CACHE_DIR=cache)
            serial.append(_time(audit + ["--jobs", "1"], env))
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, CAPIMPORT_CACHE_DIR=cache)
        no_scan = min(_time(audit + ["--no-scan"], env) for _ in range(3))
    print(f"capimport audit, cold cache, {os.cpu_count()} processes: {min(cold):.2f} s")
    print(f"capimport audit, cold cache, 1 process:  {min(serial):.2f} s")
    print(f"capimport audit, warm cache:            {min(warm):.2f} s")
    print(f"capimport audit --no-scan:              {no_scan:.2f} s")
    if args.bandit:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
            listing.write("\n".join(files))
        command = [args.bandit, "-q", "-f", "json", "-o", os.devnull] + files
        times = [_time(command, dict(os.environ)) for _ in range(max(1, args.repeat - 1))]
        print(f"bandit (same files, 1 process):       {min(times):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
