"""Socket objects made with and without a descriptor, under ``python -m capimport`` and plain.

    python benchmarks/bench_sockets.py [--runs N] [--calls N] [--compare-src DIR]

Each run makes N sockets (``socket.socket().close()``) and N socket objects from a copy of a
socket pair's descriptor (``socket.socket(fileno=os.dup(n)).close()``, the socket type's gated
``__init__``: the descriptor's peer under ``net``), timed inside the process. Runs alternate
between plain Python, this tree and (``--compare-src``) another tree's ``src``; the medians
are printed in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")

APP = '''
import os, socket, sys, time
n = int(sys.argv[1])
a, b = socket.socketpair()
t0 = time.perf_counter()
for i in range(n):
    socket.socket().close()
    socket.socket(fileno=os.dup(a.fileno())).close()
print("TIME", time.perf_counter() - t0)
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--compare-src")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "app.py"), "w") as f:
            f.write(APP)
        with open(os.path.join(folder, "pyproject.toml"), "w") as f:
            f.write('[tool.capimport]\nmode = "enforce"\n')
        columns = [("plain", SRC, []), ("capimport", SRC, ["-m", "capimport"])]
        if args.compare_src:
            columns.append((args.compare_src, args.compare_src, ["-m", "capimport"]))
        times: dict = {label: [] for label, _, _ in columns}
        for _ in range(args.runs):
            for label, src, prefix in columns:
                env = dict(os.environ, PYTHONPATH=src)
                out = subprocess.run([sys.executable, *prefix, "app.py", str(args.calls)], cwd=folder, env=env,
                                     capture_output=True, text=True, check=True).stdout
                times[label].append(float(out.split("TIME")[-1]))
    plain = statistics.median(times["plain"])
    for label, values in times.items():
        median = statistics.median(values)
        print(f"{label}: {median * 1000:.1f} ms ({median / plain:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
