"""Route 4: a task a distribution sends to a process pool runs as that distribution.

``ProcessPoolExecutor`` pickles each task to a worker whose stack is the standard library's
(spawned) or the stack of whoever started the pool (forked), so a builtin a distribution submits
(``os.system``) ran there as the application. Each work item now carries the submitter's parties,
and the worker runs it through ``capimport.enforcer.run_as`` (which pickles by name, so a builtin
or a mypyc-compiled function still pickles as itself). Each attack first succeeds under plain
Python, then has no effect under capimport, in both decisions and both start methods.
"""

from __future__ import annotations

import pytest

from sechelp import ATTEMPT, Scenario, denied, ok, results

DECISIONS = pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])
CONTEXTS = pytest.mark.parametrize("context", ["fork", "spawn"])

CONFIG = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
          'evil = []\ngranted = ["process"]\n')

APP = '''
import concurrent.futures, multiprocessing, evil, granted
if __name__ == "__main__":
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context({context!r})) as pool:
        print("APP", pool.submit(abs, -1).result())
        evil.run(pool)
        granted.run(pool)
'''

EVIL = ATTEMPT + '''
import functools, os
def run(pool):
    attempt("submit", lambda: pool.submit(os.system, "touch " + os.path.join(MARKS, "submit")).result())
    attempt("map", lambda: list(pool.map(os.system, ["touch " + os.path.join(MARKS, "map")])))
    attempt("partial", lambda: pool.submit(functools.partial(os.system, "touch " + os.path.join(MARKS, "partial"))).result())
    attempt("pure_builtin", lambda: pool.submit(pow, 2, 10).result())
    def forged():   # run_as called directly with a granted party: the caller's own chain joins it
        from capimport.enforcer import run_as
        return run_as(("granted",), os.system, "touch " + os.path.join(MARKS, "forged"))
    attempt("forged_parties", forged)
    report()
'''

GRANTED = '''
import os
def run(pool):
    print("GRANTED", pool.submit(os.system, "touch " + os.path.join(MARKS, "granted")).result())
'''


def _scenario(tmp_path, context):
    marks = tmp_path / "marks"
    marks.mkdir()
    head = f"MARKS = {str(marks)!r}\n"
    scenario = Scenario(tmp_path, config=CONFIG, app=APP.format(context=context),
                        dists={"evil": {"files": {"evil/__init__.py": head + EVIL}},
                               "granted": {"files": {"granted/__init__.py": head + GRANTED}}})
    return scenario, marks


@CONTEXTS
@DECISIONS
def test_a_task_sent_to_a_process_pool_runs_as_its_submitter(tmp_path, decision, context):
    scenario, marks = _scenario(tmp_path, context)
    plain = scenario.plain()
    before = results(plain)
    assert all(ok(value) for value in before.values()), before
    assert sorted(p.name for p in marks.iterdir()) == ["forged", "granted", "map", "partial", "submit"], plain.stderr
    for p in marks.iterdir():
        p.unlink()
    guarded = scenario.guarded(extra_env=decision)
    after = results(guarded)
    for attack in ("submit", "map", "partial", "forged_parties"):
        assert denied(after[attack]), (attack, after, guarded.stderr[-2000:])
    assert after["pure_builtin"] == "ok:1024", after
    assert "APP 1" in guarded.stdout and "GRANTED 0" in guarded.stdout, (guarded.stdout, guarded.stderr[-2000:])
    assert sorted(p.name for p in marks.iterdir()) == ["granted"], guarded.stderr[-2000:]
    assert "'evil' 1.0 lacks 'process' for os.system(" in guarded.stderr, guarded.stderr[-2000:]
