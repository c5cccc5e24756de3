"""Route 4: callbacks the interpreter (or a C module) calls later, from whatever stack runs then.

A callable with no Python frame of its own (a builtin, a ``functools.partial``, a bound builtin
method) acts as whoever is on the stack when it is called. Each registration point below is
called from the application's stack: the asynchronous-generator hooks (whoever first iterates
one), weak reference callbacks (whoever drops the last reference), the collector's
``gc.callbacks`` (whoever triggers a collection), codec error handlers (whoever decodes) and
readline's hooks (whoever asks for a line). The attack is the same everywhere:
``partial(set().update, map(os.mkdir, [path]))`` makes a directory when called with any
arguments, and the test looks for the directory.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sechelp import PYTHON, Scenario

PURE_PYTHON = {"CAPIMPORT_PURE_PYTHON": "1"}
DECISIONS = pytest.mark.parametrize("extra_env", [None, PURE_PYTHON], ids=["native", "pure"])

CONFIG = '''
[tool.capimport]
mode = "enforce"
[tool.capimport.packages]
evil = ["fs-readonly"]
granted = ["fs"]
'''

#: The planter's helper: a callable with no frame that makes MARKS/<name> however it is called.
PLANT = '''
import functools, os
def planted(name):
    return functools.partial(set().update, map(os.mkdir, [os.path.join(MARKS, name)]))
'''

#: Every registration point, from a distribution; then the application triggers each one.
EVIL = PLANT + '''
import codecs, gc, importlib, sys, threading, weakref
class Victim:
    pass
VICTIMS = [Victim(), Victim()]
KEEP = []
def run():
    sys.set_asyncgen_hooks(firstiter=planted("asyncgen_keyword"))
    KEEP.append(weakref.ref(VICTIMS[0], planted("weakref_ref")))
    KEEP.append(weakref.proxy(VICTIMS[1], planted("weakref_proxy")))
    gc.callbacks.append(planted("gc_append"))
    list.insert(gc.callbacks, 0, planted("gc_insert"))
    del sys.modules["gc"]
    again = importlib.import_module("gc")   # a gc module made again names the same list
    sys.modules["gc"] = gc
    list.append(again.callbacks, planted("gc_again"))
    codecs.register_error("strict", planted("codec_strict"))
    sys.unraisablehook = planted("unraisablehook")          # module attributes: the module's own rule
    threading.excepthook = planted("thread_excepthook")
def positional():
    sys.set_asyncgen_hooks(planted("asyncgen_positional"))
'''

APP = '''
import gc, json, os, sys, evil
evil.run()
async def numbers():
    yield 1
def first(agen):
    try:
        agen.__anext__().send(None)
    except BaseException:
        pass
first(numbers())                      # firstiter: from the application's stack
evil.positional()
first(numbers())
sys.set_asyncgen_hooks(None, None)
evil.VICTIMS.clear()                  # the weak reference callbacks: from the application's stack
gc.collect()                          # gc.callbacks: from the application's stack
try:
    b"\\xff".decode("utf-8")          # the "strict" error handler: from the application's stack
except BaseException:
    pass
class Broken:
    def __del__(self):
        raise ValueError("unraisable")
Broken()                              # sys.unraisablehook: from the application's stack
import threading
thread = threading.Thread(target=lambda: 1 / 0)
thread.start()                        # threading.excepthook: in the application's thread
thread.join()
print(json.dumps(sorted(os.listdir(MARKS))))
'''

PLANTED = ["asyncgen_keyword", "asyncgen_positional", "codec_strict", "gc_again", "gc_append", "gc_insert",
           "thread_excepthook", "unraisablehook", "weakref_proxy", "weakref_ref"]


def _scenario(tmp_path, evil: str, app: str, granted: str = "def run():\n    pass\n"):
    marks = tmp_path / "marks"
    marks.mkdir()
    head = f"MARKS = {str(marks)!r}\n"
    return Scenario(tmp_path, config=CONFIG, app=head + app, dists={
        "evil": {"files": {"evil/__init__.py": head + evil}},
        "granted": {"files": {"granted/__init__.py": head + granted}}}), marks


def _clear(marks):
    for entry in os.listdir(marks):
        os.rmdir(marks / entry)


@DECISIONS
def test_callbacks_the_interpreter_calls_later_run_as_their_registrant(tmp_path, extra_env):
    scenario, marks = _scenario(tmp_path, EVIL, APP)
    plain = scenario.plain()
    assert sorted(os.listdir(marks)) == PLANTED, plain.stderr[-2000:]
    _clear(marks)
    guarded = scenario.guarded(extra_env=extra_env)
    assert guarded.returncode == 0, guarded.stderr[-3000:]
    # The pure-Python fallback cannot reach weakref.ref's instance maker (a C slot): open there,
    # test_sec_known_gaps.py::test_gap_without_the_native_core_a_weak_reference_callback_runs_as_the_application
    expected = ["weakref_ref"] if extra_env == PURE_PYTHON else []
    assert sorted(os.listdir(marks)) == expected, guarded.stderr[-3000:]


GRANTED = PLANT + '''
import codecs, gc, sys, weakref
class Victim:
    pass
VICTIMS = [Victim(), Victim()]
KEEP = []
def run():
    sys.set_asyncgen_hooks(firstiter=planted("granted_asyncgen"))
    KEEP.append(weakref.ref(VICTIMS[0], planted("granted_weakref_ref")))
    KEEP.append(weakref.proxy(VICTIMS[1], planted("granted_weakref_proxy")))
    codecs.register_error("granted", planted("granted_codec"))
    gc.callbacks.append(planted("granted_gc"))
'''

OWN = """
import asyncio, codecs, functools, gc, json, os, sys, weakref, granted
seen = {"gc_phases": [], "weakref": [], "codec": []}
partial_phases = {}
def on_gc(phase, info):                              # a Python callback: its own frames
    seen["gc_phases"].append(phase)
gc.callbacks.append(on_gc)
gc.callbacks.append(functools.partial(dict.__setitem__, partial_phases))   # the application's own partial
class Thing:
    pass
thing = Thing()
ref = weakref.ref(thing, functools.partial(list.append, seen["weakref"]))
codecs.register_error("app", functools.partial(lambda bag, exc: (bag.append(1), ("?", exc.end))[1], seen["codec"]))
del thing
gc.collect()
seen["decoded"] = b"a\\xffb".decode("ascii", "app")
async def numbers():
    for i in range(3):
        yield i
async def main():
    return [i async for i in numbers()]
seen["async"] = asyncio.run(main())                  # asyncio sets and restores its own hooks
granted.run()
async def more():
    yield 1
try:
    more().__anext__().send(None)
except BaseException:
    pass
sys.set_asyncgen_hooks(None, None)
granted.VICTIMS.clear()
try:
    b"\\xff".decode("utf-8", "granted")
except BaseException:
    pass
gc.callbacks.remove(on_gc)
phases = len(seen["gc_phases"])
gc.collect()
seen["after_remove"] = len(seen["gc_phases"]) - phases
seen["gc_phases"] = sorted(set(seen["gc_phases"]))
seen["partial_phases"] = sorted(partial_phases)
seen["weakref"] = len(seen["weakref"])
seen["marks"] = sorted(os.listdir(MARKS))
print(json.dumps(seen))
"""


@DECISIONS
def test_the_applications_and_a_granted_distributions_callbacks_keep_working(tmp_path, extra_env):
    """No false denial: the application's own callbacks (Python functions and partials) run as
    before, asyncio's hooks work, and a distribution granted ``fs`` makes its directories from
    its partials. A frameless ``gc.callbacks`` entry is charged to code nobody owns, whoever put
    it there (a list does not say who appended): the granted distribution's is refused too."""
    scenario, marks = _scenario(tmp_path, "def run():\n    pass\n", OWN, granted=GRANTED)
    import json
    outcomes = []
    for run in (scenario.plain, lambda: scenario.guarded(extra_env=extra_env)):
        _clear(marks)
        proc = run()
        assert proc.returncode == 0, proc.stderr[-3000:]
        outcomes.append(json.loads(proc.stdout.splitlines()[-1]))
    plain, guarded = outcomes
    assert plain["marks"] == ["granted_asyncgen", "granted_codec", "granted_gc", "granted_weakref_proxy",
                              "granted_weakref_ref"]
    assert guarded["marks"] == ["granted_asyncgen", "granted_codec", "granted_weakref_proxy",
                                "granted_weakref_ref"], guarded
    for outcome in (plain, guarded):
        assert outcome["gc_phases"] == outcome["partial_phases"] == ["start", "stop"], outcome
        assert outcome["weakref"] == 1 and outcome["codec"] == [1] and outcome["decoded"] == "a?b", outcome
        assert outcome["async"] == [0, 1, 2] and outcome["after_remove"] == 0, outcome


READLINE_EVIL = PLANT + '''
import readline
def run():
    readline.set_startup_hook(planted("startup_hook"))
    readline.set_pre_input_hook(planted("pre_input_hook"))
'''

READLINE_APP = '''
import evil, readline
evil.run()
try:
    input()
except EOFError:
    pass
'''


@DECISIONS
def test_readline_hooks_run_as_their_registrant(tmp_path, extra_env):
    """readline calls its startup and pre-input hooks inside ``input()`` when both ends are a
    terminal: the application's prompt ran the planter's partial as the application."""
    pty = pytest.importorskip("pty")
    pytest.importorskip("readline")
    scenario, marks = _scenario(tmp_path, READLINE_EVIL, READLINE_APP)

    def run(guarded):
        controller, terminal = pty.openpty()
        try:
            os.write(controller, b"line\n")
            cmd = [PYTHON] + (["-m", "capimport"] if guarded else []) + ["app.py"]
            return subprocess.run(cmd, cwd=scenario.project, env=scenario.env(extra_env if guarded else None),
                                  stdin=terminal, stdout=terminal, stderr=subprocess.PIPE, text=True, timeout=60)
        finally:
            os.close(terminal)
            os.close(controller)

    plain = run(False)
    assert sorted(os.listdir(marks)) == ["pre_input_hook", "startup_hook"], plain.stderr[-2000:]
    _clear(marks)
    guarded = run(True)
    assert guarded.returncode == 0, guarded.stderr[-3000:]
    assert os.listdir(marks) == [], guarded.stderr[-3000:]
