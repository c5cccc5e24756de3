"""Cost of one audited act under capimport: native core, pure Python, and plain ``python``.

    python benchmarks/bench_acts.py [--runs N] [--calls N] [--src DIR] [--compare-src DIR]

Each act is timed inside a child process (best of 3 loops of ``--calls``
calls), run as ``python app.py``, ``python -m capimport app.py`` (the native
core decides) and ``python -m capimport app.py`` with
``CAPIMPORT_PURE_PYTHON=1`` (the Python hook decides), alternating; every
figure is the median over ``--runs`` processes. The callers are real
installed distributions (built as the tests build them, ``tests/distbuilder``):

* ``unscoped``: granted ``fs-readonly`` and ``net``, unscoped;
* ``scoped``: granted ``fs-readonly`` on the data folder only, so the target
  is resolved (``realpath``) and matched;
* ``nogrant``: granted nothing; its ``open`` is denied and the
  ``PermissionError`` caught (in plain Python the same ``open`` succeeds).

The last rows are audit events capimport does not decide but every event
passes the hook: ``id()`` raises ``builtins.id`` (no rule), ``compile`` and
``exec`` have the tamper rules of ``capimport/guards/tamper.py`` (Python in
both modes). ``--src DIR`` takes capimport from another tree's ``src`` folder
(a clean export with its extensions built); ``--compare-src DIR`` adds a column
for one more tree. Prints a Markdown table of microseconds per act.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from distbuilder import make_dist, write_config  # noqa: E402

SRC = os.path.join(os.path.dirname(HERE), "src")

#: The timed acts; one copy is the application's own module, one copy is each distribution's.
ACTS = '''
import socket, time

CODE = compile("x = 1", "<bench>", "exec")

def denied(path):
    try:
        open(path, "rb").close()
    except PermissionError:
        pass

ACTS = {
    "open+close": (lambda path: open(path, "rb").close(), 1),
    "open+close, denied": (denied, 10),
    "getaddrinfo('localhost', 80)": (lambda path: socket.getaddrinfo("localhost", 80), 10),
    "id() (builtins.id event)": (lambda path: id(path), 1),
    "compile('1', '<s>', 'eval')": (lambda path: compile("1", "<s>", "eval"), 1),
    "exec of a small code object": (lambda path: exec(CODE, {}), 1),
}

def run(names, n, path):
    out = {}
    for name in names:
        fn, divisor = ACTS[name]
        calls = max(n // divisor, 10)
        best = None
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(calls):
                fn(path)
            each = (time.perf_counter() - t) / calls * 1e6
            best = each if best is None else min(best, each)
        out[name] = best
    return out
'''

#: (row label, caller module, act)
ROWS = [
    ("application", "appacts", "open+close"),
    ("dist, unscoped fs-readonly", "unscoped", "open+close"),
    ("dist, scoped fs-readonly", "scoped", "open+close"),
    ("dist, no grant (denied, caught)", "nogrant", "open+close, denied"),
    ("dist, unscoped net", "unscoped", "getaddrinfo('localhost', 80)"),
    ("application", "appacts", "id() (builtins.id event)"),
    ("application", "appacts", "compile('1', '<s>', 'eval')"),
    ("application", "appacts", "exec of a small code object"),
    ("dist, unscoped", "unscoped", "exec of a small code object"),
]

APP = '''
import json, sys, importlib
n, path = int(sys.argv[1]), sys.argv[2]
rows = json.loads(sys.argv[3])
out = {}
for label, module, act in rows:
    out[label + " | " + act] = importlib.import_module(module).run([act], n, path)[act]
print(json.dumps(out))
'''


def build(root: str) -> tuple[str, str, str]:
    site = os.path.join(root, "site-packages")
    project = os.path.join(root, "project")
    data = os.path.join(root, "data")
    os.makedirs(project)
    os.makedirs(data)
    target = os.path.join(data, "file.txt")
    with open(target, "w") as handle:
        handle.write("x" * 100)
    for name in ("unscoped", "scoped", "nogrant"):
        make_dist(site, name, files={f"{name}/__init__.py": ACTS})
    write_config(project, f'''
        [tool.capimport]
        mode = "enforce"
        [tool.capimport.packages]
        unscoped = ["fs-readonly", "net"]
        scoped = {{ fs-readonly = [{json.dumps(data)}] }}
        nogrant = []
        ''')
    with open(os.path.join(project, "app.py"), "w") as handle:
        handle.write(APP)
    with open(os.path.join(project, "appacts.py"), "w") as handle:
        handle.write(textwrap.dedent(ACTS))
    return site, project, target


def run(cmd: list, project: str, env: dict, n: int, target: str) -> dict:
    proc = subprocess.run(cmd + ["app.py", str(n), target, json.dumps(ROWS)], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="alternating process triples (median of)")
    parser.add_argument("--calls", type=int, default=20000, help="calls per loop (denials, lookups: a tenth)")
    parser.add_argument("--src", metavar="DIR", default=SRC, help="capimport from DIR instead of this checkout")
    parser.add_argument("--compare-src", metavar="DIR", help="add a column: capimport (native) from DIR")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        site, project, target = build(root)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPIMPORT_", "PYTHON"))}
        env.update(PYTHONPATH=os.pathsep.join([site, os.path.abspath(opts.src)]), PYTHONDONTWRITEBYTECODE="1")
        guarded = [sys.executable, "-m", "capimport"]
        modes = [("plain", [sys.executable], env), ("native", guarded, env),
                 ("pure Python", guarded, dict(env, CAPIMPORT_PURE_PYTHON="1"))]
        if opts.compare_src:
            modes.append((opts.compare_src, guarded,
                          dict(env, PYTHONPATH=os.pathsep.join([site, os.path.abspath(opts.compare_src)]))))
        samples: dict = {mode: {} for mode, _, _ in modes}
        for _ in range(opts.runs):
            for mode, cmd, mode_env in modes:
                for key, value in run(cmd, project, mode_env, opts.calls, target).items():
                    samples[mode].setdefault(key, []).append(value)
    median = {mode: {key: statistics.median(values) for key, values in by_key.items()}
              for mode, by_key in samples.items()}
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), {opts.calls} calls a loop, "
          f"best of 3 loops, median of {opts.runs} processes; µs per act (overhead over plain)\n")
    others = [mode for mode, _, _ in modes[1:]]
    print("| act | caller | plain | " + " | ".join(others) + " |")
    print("|---|---|---:|" + "---:|" * len(others))
    for label, _, act in ROWS:
        key = f"{label} | {act}"
        plain = median["plain"][key]
        cells = [f"{median[m][key]:.2f} ({median[m][key] - plain:+.2f})" for m in others]
        print(f"| {act} | {label} | {plain:.2f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
