"""Run-time overhead of ``python -m capimport`` against plain ``python``, in one run.

    python benchmarks/bench_runtime.py [--runs N] [--calls N] [--pure-python] [--src DIR] [--compare-src DIR]

Measures, each as a ratio against plain Python measured in the same run
(runs alternate, so drift affects both sides alike):

1. startup: ``-c pass``;
2. importing heavy real packages (requests, httpx, click, rich, jinja2) in the
   real-package venv (``benchmarks/realvenv.py``; skipped when it cannot be built);
3. a granted distribution doing many ``open``/``os.stat``/``os.listdir`` calls, and
   descriptor I/O (``os.pread`` of a file, ``os.write``/``os.read`` of a pipe) and calls
   that reach a file's descriptor otherwise (``mmap``, ``fcntl.ioctl``, ``os.dup2``,
   ``os.lseek``), making ctypes data objects (each one gated: ``ffi``), and weak
   references with callbacks plus young collections (the callback gates of route 4),
   each also from the application's own code, timed inside the process.

``--pure-python`` adds a column: ``python -m capimport`` with
``CAPIMPORT_PURE_PYTHON=1`` (the Python audit hook and decision, no C walk),
timed in the same alternation. ``--src DIR`` takes capimport from another
tree's ``src`` folder instead of this checkout's (a clean export with its
extensions built), and ``--compare-src DIR`` adds a column for one more tree
(an A/B against an earlier version).

Prints a Markdown table (the figures in docs/performance.md come from it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import realvenv  # noqa: E402
from distbuilder import make_dist, write_config  # noqa: E402

#: Descriptor I/O (route 3's fd gates): a file's descriptor read, a pipe written and read. Both the
#: distribution and the application define it, so each times its own code.
FDIO = '''
def fdio(folder, n):
    fd = os.open(os.path.join(folder, sorted(os.listdir(folder))[0]), os.O_RDONLY)
    r, w = os.pipe()
    t0 = time.perf_counter()
    for i in range(n):
        os.pread(fd, 16, 0)
        os.write(w, b"x")
        os.read(r, 1)
    elapsed = time.perf_counter() - t0
    for each in (fd, r, w):
        os.close(each)
    return elapsed

def fdmap(folder, n):
    import fcntl, mmap, termios
    fd = os.open(os.path.join(folder, sorted(os.listdir(folder))[0]), os.O_RDONLY)
    spare, size = os.dup(fd), bytearray(4)
    t0 = time.perf_counter()
    for i in range(n):
        mmap.mmap(fd, 0, access=mmap.ACCESS_READ).close()
        fcntl.ioctl(fd, termios.FIONREAD, size)
        os.dup2(fd, spare)
        os.lseek(fd, 0, os.SEEK_SET)
    elapsed = time.perf_counter() - t0
    os.close(fd), os.close(spare)
    return elapsed

def cdata(n):
    import ctypes
    class Pair(ctypes.Structure):
        _fields_ = [("a", ctypes.c_int), ("b", ctypes.c_double)]
    t0 = time.perf_counter()
    for i in range(n):
        ctypes.c_int(i)
        Pair(i, 0.5)
        ctypes.pointer(ctypes.c_long(i))
    return time.perf_counter() - t0

def callbacks(n):
    import gc, weakref
    class Thing:
        pass
    things = [Thing() for _ in range(64)]
    def gone(ref):
        pass
    t0 = time.perf_counter()
    for i in range(n):
        weakref.ref(things[i % 64], gone)
        if i % 200 == 0:
            gc.collect(0)
    return time.perf_counter() - t0
'''

BUSY = '''
import os, time

def _deep(n, fn):
    return fn() if n == 0 else _deep(n - 1, fn)

def work(folder, n, depth=0):
    names = sorted(os.listdir(folder))
    def body():
        t0 = time.perf_counter()
        for i in range(n):
            path = os.path.join(folder, names[i % len(names)])
            with open(path, "rb") as f:
                f.read(16)
            os.stat(path)
        os.listdir(folder)
        return time.perf_counter() - t0
    return _deep(depth, body)
''' + FDIO

APP = '''
import os, sys, time, busyfs
''' + FDIO + '''
folder, n = sys.argv[1], int(sys.argv[2])
out = {}
out["dist"] = busyfs.work(folder, n)
out["dist-deep"] = busyfs.work(folder, n, depth=20)
t0 = time.perf_counter()
names = sorted(os.listdir(folder))
for i in range(n):
    path = os.path.join(folder, names[i % len(names)])
    with open(path, "rb") as f:
        f.read(16)
    os.stat(path)
out["app"] = time.perf_counter() - t0
out["dist-fd"] = busyfs.fdio(folder, n)
out["app-fd"] = fdio(folder, n)
out["dist-map"] = busyfs.fdmap(folder, n)
out["app-map"] = fdmap(folder, n)
out["dist-cdata"] = busyfs.cdata(n)
out["app-cdata"] = cdata(n)
out["dist-callbacks"] = busyfs.callbacks(n)
out["app-callbacks"] = callbacks(n)
print("TIMES", __import__("json").dumps(out))
'''


def _time(cmd, cwd, env, before=None) -> float:
    if before is not None:
        before()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr[-2000:]}")
    return elapsed


def compare(plain, ours, cwd, env, runs, variants=(), before=None):
    """Medians and minima of *plain* and *ours* (and of *ours* under each extra environment in
    *variants*), alternating: ``(median plain, median ours, min plain, min ours, [(median, min)...])``.
    *before* runs (untimed) before each run."""
    a, b = [], []
    extra = [[] for _ in variants]
    for _ in range(runs):
        a.append(_time(plain, cwd, env, before))
        b.append(_time(ours, cwd, env, before))
        for store, variant_env in zip(extra, variants):
            store.append(_time(ours, cwd, variant_env, before))
    return (statistics.median(a), statistics.median(b), min(a), min(b),
            [(statistics.median(x), min(x)) for x in extra])


def project(root: str, grant_busy: bool = True) -> tuple[str, str]:
    site = os.path.join(root, "site")
    proj = os.path.join(root, "proj")
    os.makedirs(proj, exist_ok=True)
    make_dist(site, "busyfs", "1.0", files={"busyfs/__init__.py": BUSY})
    write_config(proj, """
        [tool.capimport]
        mode = "enforce"
        [tool.capimport.packages]
        busyfs = ["fs-readonly", "ffi"]
        """)
    with open(os.path.join(proj, "app.py"), "w") as handle:
        handle.write(textwrap.dedent(APP))
    data = os.path.join(root, "data")
    os.makedirs(data)
    for i in range(50):
        with open(os.path.join(data, f"f{i}.txt"), "w") as handle:
            handle.write("x" * 100)
    return site, proj


def settle(root: str) -> None:
    """Age the freshly written project so that the policy cache trusts it (inputs younger than
    two seconds are "racy" and never cached; see capimport/policycache.py)."""
    past = time.time() - 60
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(folder, name), (past, past), follow_symlinks=False)
    os.utime(root, (past, past))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--pure-python", action="store_true",
                        help="also time capimport with CAPIMPORT_PURE_PYTHON=1 (no C hook, no C walk)")
    parser.add_argument("--src", metavar="DIR", default=realvenv.SRC,
                        help="capimport from DIR (a src folder) instead of this checkout's")
    parser.add_argument("--compare-src", metavar="DIR",
                        help="also time capimport imported from DIR (another tree's src folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as root:
        site, proj = project(root)
        env = realvenv.env_for([site])
        env["PYTHONPATH"] = os.pathsep.join([site, os.path.abspath(args.src)])
        # The extra columns: (title, how its environment differs from the native run's).
        variants = []
        if args.pure_python:
            variants.append(("capimport, pure Python", {"CAPIMPORT_PURE_PYTHON": "1"}))
        if args.compare_src:
            variants.append((f"capimport from {args.compare_src}",
                             {"PYTHONPATH": os.pathsep.join([site, os.path.abspath(args.compare_src)])}))

        def with_variants(base):
            return [dict(base, **changes) for _, changes in variants]

        python = sys.executable
        try:
            real = realvenv.ensure()
        except Exception as exc:  # no index: measure with this interpreter only
            print(f"(real-package venv unavailable: {exc})", file=sys.stderr)
            real = None
        startup_python = real or python
        settle(root)  # as on a real machine: inputs written well before the run, so the policy cache holds
        cold = dict(env, CAPIMPORT_NO_CACHE="1")
        rows.append(("startup `-c pass`, no policy cache",
                     *compare([startup_python, "-c", "pass"], [startup_python, "-m", "capimport", "-c", "pass"],
                              proj, cold, args.runs, with_variants(cold))))
        for each_env in [env, *with_variants(env)]:  # writes the policy cache
            _time([startup_python, "-m", "capimport", "-c", "pass"], proj, each_env)
        rows.append(("startup `-c pass`, policy cache warm",
                     *compare([startup_python, "-c", "pass"], [startup_python, "-m", "capimport", "-c", "pass"],
                              proj, env, args.runs, with_variants(env))))
        if real:
            code = "import requests, httpx, click, rich.console, rich.table, jinja2"
            rows.append(("import requests, httpx, click, rich, jinja2",
                         *compare([real, "-c", code], [real, "-m", "capimport", "-c", code],
                                  proj, env, args.runs, with_variants(env))))
            # No bytecode cache at all: every module (the standard library's and capimport's too)
            # compiled and its cache written, into a prefix emptied before each run. Under
            # capimport each write is checked by compiling the source again (capimport/bytecode.py).
            prefix = os.path.join(root, "pycache-prefix")
            writes = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": prefix}
            rows.append(("same, no bytecode cache: every module compiled and written",
                         *compare([real, "-c", code], [real, "-m", "capimport", "-c", code],
                                  proj, dict(env, **writes), args.runs,
                                  [dict(variant, **writes) for variant in with_variants(env)],
                                  before=lambda: shutil.rmtree(prefix, ignore_errors=True))))
        runs = [("plain", [python, "app.py"], env), ("capimport", [python, "-m", "capimport", "app.py"], env)]
        runs += [(title, [python, "-m", "capimport", "app.py"], each_env)
                 for (title, _), each_env in zip(variants, with_variants(env))]
        times = {label: [] for label, _, _ in runs}
        for _ in range(max(3, args.runs // 3)):
            for label, cmd, each_env in runs:
                proc = subprocess.run(cmd + [os.path.join(root, "data"), str(args.calls)], cwd=proj, env=each_env,
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(proc.stderr)
                line = next(l for l in proc.stdout.splitlines() if l.startswith("TIMES "))
                times[label].append(json.loads(line[6:]))
        for key, title in (("dist", "granted dist: open+read+stat x N"),
                           ("dist-deep", "same, 20 frames deeper"),
                           ("app", "application code: open+read+stat x N"),
                           ("dist-fd", "granted dist: os.pread + pipe os.write/os.read x N"),
                           ("app-fd", "application code: os.pread + pipe os.write/os.read x N"),
                           ("dist-map", "granted dist: mmap + ioctl(FIONREAD) + os.dup2 + os.lseek of a file x N"),
                           ("app-map", "application code: mmap + ioctl(FIONREAD) + os.dup2 + os.lseek of a file x N"),
                           ("dist-cdata", "granted dist (ffi): four ctypes objects made x N"),
                           ("app-cdata", "application code: four ctypes objects made x N"),
                           ("dist-callbacks", "dist: a weak reference with a callback x N, a young collection every 200"),
                           ("app-callbacks", "application code: the same")):
            column = {label: [t[key] for t in times[label]] for label in times}
            rows.append((f"{title} (N={args.calls})",
                         statistics.median(column["plain"]), statistics.median(column["capimport"]),
                         min(column["plain"]), min(column["capimport"]),
                         [(statistics.median(column[title]), min(column[title])) for title, _ in variants]))
    if args.json:
        print(json.dumps([{"case": case, "plain_median": m0, "capimport_median": m1, "plain_min": n0,
                           "capimport_min": n1,
                           **{f"{title}_median": m for (title, _), (m, _n) in zip(variants, extra)},
                           **{f"{title}_min": n for (title, _), (_m, n) in zip(variants, extra)}}
                          for case, m0, m1, n0, n1, extra in rows], indent=2))
        return 0
    print(f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs; {args.runs} runs, medians (min)\n")
    heads = ["python -m capimport"] + [title for title, _ in variants]
    print("| workload | plain python | " + " | ".join(f"{h} | ratio" for h in heads) + " |")
    print("|---|---|" + "---|---|" * len(heads))
    for case, m0, m1, n0, n1, extra in rows:
        cells = [f"{m * 1000:.1f} ms ({n * 1000:.1f}) | {m / m0:.2f}x" for m, n in [(m1, n1), *extra]]
        print(f"| {case} | {m0 * 1000:.1f} ms ({n0 * 1000:.1f}) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
