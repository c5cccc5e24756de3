"""Overhead of every hardening guard (issue 4), each against plain Python in the same run.

    python benchmarks/bench_guards.py [--quick] [--pure-python] [--src DIR]

Each figure is the best of several timed loops inside a child process, run
once as ``python app.py`` (no capimport) and once as ``python -m capimport
app.py``, alternating. Calls are made from the application's own code (the
path every stdlib and app caller takes), at stack depth 20 where that
matters, and from a granted distribution (``benchdist``, the full decision).

``--pure-python`` adds a column: ``python -m capimport app.py`` with
``CAPIMPORT_PURE_PYTHON=1`` (no C hook, no C walk), in the same alternation.
``--src DIR`` takes capimport from another tree's ``src`` folder.

Prints a Markdown table (the figures in docs/performance.md "Guards" come from it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from distbuilder import make_dist, write_config  # noqa: E402

SRC = os.path.join(os.path.dirname(HERE), "src")

TIMING = '''
import os, sys, time, atexit, weakref, functools

def best(fn, n, repeat=5):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t) / n * 1e9)
    return min(out)

def deep(depth, fn):
    return fn() if depth == 0 else deep(depth - 1, fn)

def suite(n, here, small):
    class Obj: pass
    r = {}
    r["environ.get"] = best(lambda: os.environ.get("HOME"), n)
    r["environ[k] depth 20"] = deep(20, lambda: best(lambda: os.environ["HOME"], n))
    r["dict(os.environ)"] = best(lambda: dict(os.environ), max(n // 20, 10))
    r["os.stat"] = best(lambda: os.stat(here), n)
    r["os.stat depth 20"] = deep(20, lambda: best(lambda: os.stat(here), n))
    r["os.path.exists depth 20"] = deep(20, lambda: best(lambda: os.path.exists(here), n))
    r["os.getcwd"] = best(os.getcwd, n)
    r["atexit.register+unregister"] = best(lambda: atexit.unregister(atexit.register(len)), n)
    r["weakref.finalize"] = best(lambda: weakref.finalize(Obj(), len, ()), n)
    r["compile (small)"] = best(lambda: compile("x = 1", "<bench>", "exec"), max(n // 10, 10))
    own = compile("def f():\\n    return 1\\n", __file__, "exec")   # code named after the caller's own file
    r["exec(code of one's own file)"] = best(lambda: exec(own, {}), n)
    import types
    inner = [c for c in own.co_consts if isinstance(c, types.CodeType)][0]
    r["types.FunctionType(code)"] = best(lambda: types.FunctionType(inner, {}), n)
    import importlib
    module = importlib.import_module(small)
    r["importlib.reload (a small module)"] = best(lambda: importlib.reload(module), max(n // 20, 10))
    import asyncio
    loop = asyncio.new_event_loop()
    r["loop.call_soon"] = best(lambda: loop.call_soon(len, ()), n)
    loop.close()
    import sqlite3
    r["sqlite3.connect(':memory:') + close"] = best(lambda: sqlite3.connect(":memory:").close(), max(n // 10, 10))
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    r["sqlite execute, cached statement"] = best(lambda: conn.execute("SELECT x FROM t WHERE x = ?", (1,)).fetchall(), n)
    counter = iter(range(10**9))
    r["sqlite execute, new statement"] = best(
        lambda: conn.execute("SELECT x FROM t WHERE x = %d" % next(counter)).fetchall(), max(n // 10, 10))
    import subprocess
    r["subprocess.run(['true'])"] = best(lambda: subprocess.run(["true"]), 20, repeat=3)
    return r
'''

APP = '''
import json, sys, os, benchdist
from apptiming import suite
n = int(sys.argv[1])
here = os.path.dirname(os.path.abspath(__file__))
app = suite(n, here, "appsmall")
dist = benchdist.run(n, here)
print(json.dumps({"app": app, "dist": dist}))
'''

#: A module to import again and again (the import system executing a module: the exec rule).
SMALL = "import os\n\ndef f(x):\n    return x + 1\n\nclass C:\n    def m(self):\n        return f(1)\n"

DIST = '''
from .timing import suite
def run(n, here):
    return suite(n, here, "benchdist.small")
'''


def build(root: str) -> tuple[str, str]:
    site = os.path.join(root, "site-packages")
    project = os.path.join(root, "project")
    os.makedirs(project)
    make_dist(site, "benchdist", files={"benchdist/__init__.py": DIST,
                                        "benchdist/timing.py": textwrap.dedent(TIMING),
                                        "benchdist/small.py": SMALL})
    write_config(project, '''
        [tool.capimport]
        mode = "enforce"
        [tool.capimport.packages]
        benchdist = ["fs", "env", "process"]
        ''')
    with open(os.path.join(project, "app.py"), "w") as handle:
        handle.write(APP)
    with open(os.path.join(project, "apptiming.py"), "w") as handle:
        handle.write(textwrap.dedent(TIMING))   # the same code, as the application's own
    with open(os.path.join(project, "appsmall.py"), "w") as handle:
        handle.write(SMALL)
    return site, project


def run(site: str, project: str, guarded: bool, n: int, src: str = SRC, pure: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([site, src]), PYTHONDONTWRITEBYTECODE="1")
    env.pop("CAPIMPORT_PURE_PYTHON", None)
    if pure:
        env["CAPIMPORT_PURE_PYTHON"] = "1"
    cmd = [sys.executable] + (["-m", "capimport"] if guarded else []) + ["app.py", str(n)]
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--runs", type=int, default=3, help="alternating process pairs (best of)")
    parser.add_argument("--pure-python", action="store_true", help="add a column: CAPIMPORT_PURE_PYTHON=1")
    parser.add_argument("--src", metavar="DIR", default=SRC, help="capimport from DIR instead of this checkout")
    opts = parser.parse_args()
    src = os.path.abspath(opts.src)
    n = 2000 if opts.quick else 20000
    with tempfile.TemporaryDirectory() as root:
        site, project = build(root)
        plain: dict = {}
        guarded: dict = {}
        pure: dict = {}
        stores = [(plain, False, False), (guarded, True, False)] + ([(pure, True, True)] if opts.pure_python else [])
        for _ in range(opts.runs):
            for store, flag, pure_python in stores:
                out = run(site, project, flag, n, src, pure_python)
                for who in out:
                    for key, value in out[who].items():
                        slot = store.setdefault(who, {})
                        slot[key] = min(value, slot.get(key, value))
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), n={n}, best of {opts.runs} process pairs\n")
    extra = " pure Python (ns) | ratio |" if pure else ""
    print("| operation | caller | plain (ns) | capimport (ns) | ratio |" + extra)
    print("|---|---|---:|---:|---:|" + ("---:|---:|" if pure else ""))
    for who in ("app", "dist"):
        for key in plain[who]:
            a, b = plain[who][key], guarded[who][key]
            label = "application" if who == "app" else "granted distribution"
            tail = f" {pure[who][key]:,.0f} | {pure[who][key] / a:.2f}x |" if pure else ""
            print(f"| {key} | {label} | {a:,.0f} | {b:,.0f} | {b / a:.2f}x |" + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
