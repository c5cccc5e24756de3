"""Route 7, part 3: the guards of unaudited C functions are the core's gates.

``os.stat`` and its family, ``os.mkfifo``/``mknod``, the process-identity
calls (``os.nice``, ``os.setuid``, ...), ``_posixsubprocess.fork_exec``,
``_gdbm.open`` and ``readline``'s history files are replaced by
``capimport._core`` gates: C objects that decide in C and hold the original in
C memory. The Python guards that remain (the environment, deferred callables,
the tamper rules) decide through the core as well (``_core.check``), and
capimport's own work is recognised by the core (C thread-local state), not by
a per-thread table a distribution could write.

Each attack runs first under plain ``python`` (it succeeds, so the test
cannot pass vacuously), then under ``python -m capimport``.
"""

from __future__ import annotations

import importlib.util

import pytest

from sechelp import ATTEMPT, Scenario, denied, ok, results

pytestmark = pytest.mark.skipif(importlib.util.find_spec("capimport._core") is None,
                                reason="capimport._core is not built (no C compiler)")

CODE = '''
import os, sys, threading, subprocess

def busy():
    """What used to switch the Python guards off: capimport's per-thread 'deciding' table."""
    try:
        from capimport import enforcer
    except ImportError:
        return
    active = enforcer.active()
    if active is not None:
        active._depth[threading.get_ident()] = 1

def python_guards_say_yes():
    """Rebind the Python guard helpers (class attributes: no audit event)."""
    try:
        from capimport.guards import _base
    except ImportError:
        return
    _base.Guard.busy = lambda self, frame=None: True
    _base.Guard.plain = lambda self, frame: True

def shape():
    stat = os.stat
    return (f"closure={hasattr(stat, '__closure__')} globals={hasattr(stat, '__globals__')} "
            f"func={hasattr(stat, 'func')} name={stat.__name__}")

def core_calls():
    from capimport import _core
    _core.check([("fs-readonly", "path", SECRET, None, "probe")], None, "probe")
    return f"busy={_core.busy(None)}"

def run():
    attempt("shape", shape)
    busy()
    attempt("stat_busy", lambda: os.stat(SECRET).st_mode > 0)
    attempt("environ_busy", lambda: os.environ.get("GATE_SECRET"))
    python_guards_say_yes()
    attempt("stat_rebound", lambda: os.path.exists(os.path.join(SECRET, "key")))
    attempt("lstat_rebound", lambda: os.lstat(os.path.join(SECRET, "key")).st_size)
    attempt("readlink_rebound", lambda: os.readlink(os.path.join(SECRET, "link")))
    attempt("getcwd_rebound", os.getcwd)
    attempt("mkfifo_rebound", lambda: os.mkfifo(os.path.join(SECRET, "fifo")))
    attempt("nice_rebound", lambda: os.nice(0))
    attempt("subprocess_rebound", lambda: subprocess.run(["true"]).returncode)
    attempt("core_calls", core_calls)
    attempt("gate_type", lambda: type(os.stat)())
    report()
'''


def _scenario(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("k")
    (secret / "link").symlink_to(secret / "key")
    code = ATTEMPT + f"SECRET = {str(secret)!r}\n" + CODE
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\n'
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": code}}})
    return scenario, secret


def test_gates_and_core_decisions_ignore_capimports_python_state(tmp_path):
    scenario, secret = _scenario(tmp_path)
    env = {"GATE_SECRET": "s3cret"}
    plain = results(scenario.plain(extra_env=env))
    assert plain["stat_busy"] == "ok:True" and plain["environ_busy"] == "ok:s3cret", plain
    for name in ("stat_rebound", "lstat_rebound", "readlink_rebound", "getcwd_rebound", "mkfifo_rebound",
                 "nice_rebound", "subprocess_rebound"):
        assert ok(plain[name]), (name, plain)
    (secret / "fifo").unlink()

    guarded = results(scenario.guarded(extra_env=env))
    # Nothing to rewrite: the gate is a C object with no closure, globals or wrapped function.
    assert guarded["shape"] == "ok:closure=False globals=False func=False name=stat", guarded
    # Writing the old "busy" table lets nothing through.
    assert denied(guarded["stat_busy"]), guarded
    assert guarded["environ_busy"] == "ok:None", guarded
    # Rebinding the Python guard helpers changes nothing a gate decides.
    for name in ("stat_rebound", "lstat_rebound", "readlink_rebound", "getcwd_rebound", "mkfifo_rebound",
                 "nice_rebound", "subprocess_rebound"):
        assert guarded[name].startswith(("denied:CapabilityError", "ok:False")), (name, guarded)
    assert guarded["stat_rebound"] == "ok:False", guarded   # exists() swallows the denial: reveals nothing
    assert not (secret / "fifo").exists()
    # The core's entry points can only refuse: check() denies the caller, busy() is False for it.
    assert denied(guarded["core_calls"]), guarded
    assert guarded["gate_type"].startswith("denied:TypeError"), guarded


def test_gates_keep_the_shape_of_the_functions_they_replace(tmp_path):
    """No false denial and no change of behaviour for code that inspects or stores the functions."""
    app = '''
import os, pickle, pathlib, posix, subprocess, sys
class Holder:
    stat = os.stat          # a builtin stored on a class stays a plain function, and so does a gate
print(Holder().stat(".").st_mode == os.stat(".").st_mode)
print(pickle.loads(pickle.dumps(os.stat)) is os.stat, os.stat is posix.stat)
print(os.stat.__name__, os.stat.__qualname__, os.stat.__module__, bool(os.stat.__doc__))
print(pathlib.Path(".").exists(), os.path.realpath(".") == os.getcwd())
print(os.stat(os.open(".", os.O_RDONLY)).st_mode > 0)            # a descriptor: not a path
print(subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, text=True).stdout.strip())
print(getattr(os.stat, "_capimport_guard", False))
'''
    scenario = Scenario(tmp_path, app=app)
    plain = scenario.plain()
    guarded = scenario.guarded()
    assert plain.returncode == 0 and guarded.returncode == 0, guarded.stderr
    assert guarded.stdout.splitlines()[:-1] == plain.stdout.splitlines()[:-1], (plain.stdout, guarded.stdout)
    assert guarded.stdout.splitlines()[-1] == "True" and plain.stdout.splitlines()[-1] == "False"


def test_process_memory_is_the_cores_own_check_of_every_open(tmp_path):
    """/proc/<pid>/mem needs ffi by the core's own check (a stat of the opened path, then its
    resolved name), not by a Python rule whose closure a distribution could rewrite: with the
    rule's decide a no-op and guard_rules emptied, the memory still stays closed, through a
    link whose name says nothing too."""
    code = '''
import os
def run():
    from capimport import enforcer
    active = enforcer.active()
    if active is not None:
        rule = active.guard_rules.get("open")
        for cell in (getattr(rule, "__closure__", None) or ()):
            if getattr(cell.cell_contents, "__name__", "") == "decide":
                cell.cell_contents = lambda *args, **kwargs: None
        active.guard_rules.clear()
    attempt("proc_mem", lambda: open("/proc/self/mem", "rb").close())
    attempt("task_mem", lambda: open("/proc/self/task/%d/mem" % os.getpid(), "rb").close())
    attempt("innocent_link", lambda: (os.symlink("/proc/self/mem", "notes.txt"), open("notes.txt", "rb").close()))
    report()
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs"]\n'
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    plain = results(scenario.plain())
    assert all(ok(v) for v in plain.values()), plain
    (scenario.project / "notes.txt").unlink()
    guarded = results(scenario.guarded())
    assert all(denied(v) and "'ffi'" in v for v in guarded.values()), guarded
