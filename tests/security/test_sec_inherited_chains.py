"""Route 7 (part 4 of the native core): the chains deferred code inherits are the core's.

A callable a distribution schedules runs later with the registrant's chain
standing in for whoever runs it. Those chains used to be Python data (a
dictionary, and wrappers of a Python class that ended the walk), so a
distribution could build a wrapper with an empty chain around a builtin and
run it as the application. With the native core a chain is a token the core
mints from the caller's own stack, and the wrapper is a C callable.

The runner's own frames no longer end the walk either: a distribution calling
``capimport.runner`` to run code could otherwise act as the application.
"""

from __future__ import annotations

import importlib.util

import pytest

from sechelp import ATTEMPT, Scenario, denied, ok, results

NATIVE = importlib.util.find_spec("capimport._core") is not None
PURE_PYTHON = {"CAPIMPORT_PURE_PYTHON": "1"}

CODE = '''
import os, threading

def touch(name):
    return "touch " + os.path.join(OUT, name)

def run():
    from capimport.guards.boundary import Accountable
    from capimport import enforcer, runner
    active = enforcer.active()
    inherited = active.inherited if active is not None else {}
    attempt("forged_wrapper", Accountable(os.system, (), inherited), touch("forged_wrapper"))
    attempt("runner", runner._run, "code", f"import os; os.system({touch('runner')!r})", None)
    if active is not None and active.native:
        from capimport import _core
        attempt("core_wrapper", lambda: _core.accountable(os.system, _core.capture())(touch("core_wrapper")))
        attempt("mint_token", lambda: type(_core.capture())())
        attempt("pop_foreign", lambda: _core.pop(_core.capture()))
    # A chain captured here and inherited by the application's code makes this distribution
    # accountable there too (appending can only add parties).
    chain = enforcer.capture()
    def app_side():
        with enforcer.inherit(chain):
            return os.system(touch("inherited"))
    attempt("inherit", APP_RUNS, app_side)
    report()
'''

APP = '''
def APP_RUNS(fn):      # the application's code running a callable it was handed
    return fn()
import evil
evil.APP_RUNS = APP_RUNS
evil.run()
'''


def _scenario(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code = ATTEMPT + f"OUT = {str(out)!r}\n" + CODE
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\n'
    scenario = Scenario(tmp_path, config=config, app=APP, dists={"evil": {"files": {"evil/__init__.py": code}}})
    return scenario, out


def _clear(out):
    for child in out.iterdir():
        child.unlink()


def test_plain_python_runs_every_attempt(tmp_path):
    scenario, out = _scenario(tmp_path)
    plain = results(scenario.plain())
    for name in ("forged_wrapper", "runner", "inherit"):
        assert plain[name] == "ok:0", (name, plain)
    assert sorted(p.name for p in out.iterdir()) == ["forged_wrapper", "inherited", "runner"]


@pytest.mark.skipif(not NATIVE, reason="capimport._core is not built (no C compiler)")
def test_no_wrapper_or_token_runs_a_builtin_as_someone_else(tmp_path):
    scenario, out = _scenario(tmp_path)
    guarded = results(scenario.guarded())
    for name in ("forged_wrapper", "core_wrapper", "inherit"):
        assert denied(guarded[name]), (name, guarded)
    assert guarded["runner"] == "ok:1", guarded   # the runner reports the code's denial as uncaught: exit 1
    assert guarded["mint_token"].startswith("denied:TypeError"), guarded
    assert guarded["pop_foreign"].startswith("denied:RuntimeError"), guarded
    assert list(out.iterdir()) == []


def test_the_runner_ends_no_walk_in_the_python_fallback_either(tmp_path):
    scenario, out = _scenario(tmp_path)
    proc = scenario.guarded(extra_env=PURE_PYTHON)
    guarded = results(proc)
    assert guarded["runner"] == "ok:1" and "lacks 'process'" in proc.stderr, guarded
    assert not (out / "runner").exists()


REGISTER = '''
import os, sys, threading, atexit, signal, codecs, weakref, types

def touch(name):
    return "touch " + os.path.join(OUT, name)

def run():
    # What switched the Python registration guards off: their helpers, rebound (no audit event).
    from capimport.guards import deferred
    deferred.wrap = lambda guard, func, frame: func
    deferred._capture = lambda guard, frame: ()
    deferred._needs_wrap = lambda value: False
    deferred.accountable = lambda guard, func, chain: func
    # ... and the thread patches, put back to the originals their closures hold.
    start, inner = threading.Thread.start, threading.Thread._bootstrap_inner
    for patched, name in ((start, "start"), (inner, "_bootstrap_inner")):
        for cell in (getattr(patched, "__closure__", None) or ()):
            value = cell.cell_contents
            if getattr(value, "__name__", "") == name and value is not patched:
                setattr(threading.Thread, name, value)
    attempt("atexit", atexit.register, os.system, touch("atexit"))
    attempt("codecs_alias", lambda: sys.modules["_codecs"].register is codecs.register)
    attempt("thread", lambda: threading.Thread(target=os.system, args=(touch("thread"),)).start())
    class Obj:
        pass
    global KEEP
    KEEP = Obj()
    finalizer = weakref.finalize(KEEP, os.system, touch("finalize"))
    attempt("finalize", lambda: finalizer() is not None)
    import _thread
    attempt("start_new_thread", lambda: _thread.start_new_thread(os.system, (touch("start_new_thread"),)) > 0)
    def patch_module():
        import string
        string.capwords = os.system   # a builtin the application will call as string.capwords
    attempt("module_attr", patch_module)
    report()
'''

REGISTER_APP = '''
import evil, time, string
evil.run()
time.sleep(0.5)
string.capwords(evil.touch("module_attr"))   # the application calls what evil put there
'''


@pytest.mark.skipif(not NATIVE, reason="capimport._core is not built (no C compiler)")
def test_rebinding_the_python_registration_helpers_changes_nothing(tmp_path):
    """With the native core the registration APIs (atexit, signal, codecs, _thread, os.register_at_fork,
    weakref.finalize, executors, asyncio handles, module attributes) are the core's ``wrap`` gates:
    C wraps the callable with the registrant's chain, so no Python helper can be rebound to skip it,
    and the original is reachable through no alias (``_codecs.register`` is the same gate)."""
    out = tmp_path / "out"
    out.mkdir()
    code = ATTEMPT + f"OUT = {str(out)!r}\n" + REGISTER
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\n'
    scenario = Scenario(tmp_path, config=config, app=REGISTER_APP,
                        dists={"evil": {"files": {"evil/__init__.py": code}}})
    scenario.plain()
    assert sorted(p.name for p in out.iterdir()) == ["atexit", "finalize", "module_attr", "start_new_thread",
                                                     "thread"]
    _clear(out)
    proc = scenario.guarded()
    assert list(out.iterdir()) == [], proc.stderr
    assert "lacks 'process'" in proc.stderr
    assert results(proc)["codecs_alias"] == "ok:True", proc.stdout   # one gate, whichever name reaches it


COMPAT = '''
import atexit, signal, codecs, os, json, threading, weakref, types, concurrent.futures, asyncio

def bye():
    print("bye")

out = {}
out["atexit_returns"] = atexit.register(bye) is bye
atexit.register(print, "never")
atexit.unregister(print)
def handler(signum, frame):
    pass
previous = signal.signal(signal.SIGUSR1, handler)
out["signal_previous"] = previous is signal.SIG_DFL
out["getsignal"] = signal.getsignal(signal.SIGUSR1) is handler
out["signal_again"] = signal.signal(signal.SIGUSR1, signal.SIG_DFL) is handler
class Obj:
    pass
keep = Obj()
out["finalize"] = weakref.finalize(keep, len, "abc")() == 3
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    out["submit"] = pool.submit(pow, 2, 10).result() == 1024
    out["map"] = list(pool.map(abs, [-1, -2])) == [1, 2]
import multiprocessing
with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
    out["process_pool"] = pool.submit(abs, -3).result() == 3 and list(pool.map(len, ["ab"])) == [2]
async def main():
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_soon(future.set_result, 7)
    return await future + await loop.run_in_executor(None, abs, -1)
out["asyncio"] = asyncio.run(main()) == 8
t = threading.Thread(target=out.__setitem__, args=("thread", True))
t.start()
t.join()
json.helper = len
out["module_attr"] = json.helper is len
print(json.dumps(out))
'''


def test_the_registration_apis_behave_as_without_capimport(tmp_path):
    """No false denials, and the same answers: atexit.register returns the function, unregister finds
    it, signal.signal/getsignal hand back the handlers as given, executors and asyncio run their
    tasks, and a module attribute the application sets is the object it set."""
    config = '[tool.capimport]\nmode = "enforce"\n'
    scenario = Scenario(tmp_path, config=config, app=COMPAT)
    plain = scenario.plain()
    guarded = scenario.guarded()
    assert results(guarded) == results(plain), guarded.stderr
    assert all(results(plain).values()), plain.stdout
    assert guarded.stdout.splitlines()[-1] == "bye" and "never" not in guarded.stdout, guarded.stdout
