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
