"""Review of the environment in C memory (route 7, f6b5a15): probes from an adversarial review
(with ASAN+UBSAN) that read hidden variables through it. Each failed on f6b5a15 and passes since.

A privileged standard-library frame (linecache, a logging handler, the import system) no longer
allows an environment read outright; the views have no "capimport's own work" pass; one
snapshot serves a listing; ``get`` takes ``default`` by keyword as ``Mapping.get`` does. The
review's fifth finding (a distribution changing what the application reads, through Python
objects) is the class of gap ``test_sec_known_gaps.py`` keeps open.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from sechelp import ATTEMPT, Scenario, results

SECRET = "s3cret-value-41"

NATIVE = pytest.mark.skipif(importlib.util.find_spec("capimport._core") is None
                            or bool(os.environ.get("CAPIMPORT_PURE_PYTHON")),
                            reason="the environment in C memory is the native core's")

CONFIG = '''
[tool.capimport]
mode = "enforce"
[tool.capimport.packages]
evil = { env-readonly = ["VISIBLE_*"] }
'''


def _run(tmp_path, code, app="import evil\nevil.run()\n", config=CONFIG, env=None):
    scenario = Scenario(tmp_path, config=config, app=app, dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    env = {"SECRET": SECRET, "VISIBLE_NAME": "shown", **(env or {})}
    return results(scenario.plain(extra_env=env)), scenario.guarded(extra_env=env)


# 1. (fixed in both decisions) A privileged standard-library frame (linecache, a registered logging handler) met before any
#    distribution frame allows env-readonly outright, so the C view shows everything to a planted
#    C callable that such a frame calls with the distribution's arguments.
PRIVILEGED = '''
import os, types, linecache, logging
LEAK = []
def run():
    attempt("direct", lambda: os.environ.get("SECRET"))
    def via_linecache():
        loader = types.SimpleNamespace(get_source=os.environ.get)   # lazycache: partial(get_source, name)()
        return "".join(linecache.getlines("/nonexistent/evil_probe.py", {"__name__": "SECRET", "__loader__": loader}))
    attempt("linecache", via_linecache)
    def via_file_handler():
        handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler))
        handler.addFilter(LEAK.extend)          # Filterer.filter(self=handler) calls LEAK.extend(record)
        try:
            handler.filter(os.environ.items())  # ... which iterates the items view from logging's frame
        finally:
            handler.removeFilter(LEAK.extend)
        return dict(LEAK).get("SECRET")
    attempt("file_handler", via_file_handler)
    report()
'''

PRIVILEGED_APP = '''
import logging, os
logging.basicConfig(filename=os.path.join(os.getcwd(), "app.log"))   # a FileHandler the app may create
import evil
evil.run()
'''


def test_privileged_stdlib_frames_do_not_show_hidden_variables(tmp_path):
    plain, proc = _run(tmp_path, PRIVILEGED, app=PRIVILEGED_APP)
    assert SECRET in plain["linecache"] and SECRET in plain["file_handler"], plain
    guarded = results(proc)
    assert guarded["direct"] == "ok:None", guarded
    assert SECRET not in guarded["linecache"], guarded
    assert SECRET not in guarded["file_handler"], guarded


# 2. While the core runs the report (internal_depth > 0) the views show everything to any call whose
#    innermost non-stdlib frame is capimport's. capimport's report is Python whose module globals a
#    distribution rebinds without an audit event: a planted partial then reads as capimport.
REPORT = '''
import os, functools, types
LEAK = []
def run():
    import capimport.enforcer as E
    E._Known = lambda target: types.SimpleNamespace(get=functools.partial(os.environ.copy))
    E.describe_target = lambda capability, value: (LEAK.append(value), "x")[1]
    attempt("trigger", lambda: os.environ.get("SECRET"))        # hidden: the core reports it
    attempt("trigger_write", lambda: os.environ.__setitem__("X", "1"))   # denied: reported each time
    attempt("leak", lambda: [d.get("SECRET") for d in LEAK if isinstance(d, dict)])
    report()
'''


@NATIVE
def test_rebinding_the_report_does_not_read_the_environment_as_capimport(tmp_path):
    _, proc = _run(tmp_path, REPORT)
    guarded = results(proc)
    assert guarded["trigger"] == "ok:None", guarded
    assert SECRET not in guarded["leak"], guarded


# 3. env_pairs() snapshots the store twice (PyDict_Items, then PyDict_Keys) and lines the two lists
#    up; a GC collection inside PyDict_Keys runs Python (gc.callbacks, finalizers). A distribution
#    with 'env' on its own names deletes one listed before SECRET there: the visibility flags shift by
#    one (SECRET is shown) and the loop reads past the end of `visible` (heap overflow under ASAN with
#    PYTHONMALLOC=malloc).
RACE = '''
import os, sys, gc
ST = {"armed": False, "n": 0, "at": -1, "victims": []}
def cb(phase, info):
    if phase != "start" or not ST["armed"] or sys._getframe(1).f_code.co_name != "once":
        return
    ST["n"] += 1
    if ST["n"] == ST["at"]:
        for name in ST["victims"]:
            os.environ.pop(name, None)       # evil holds env for EVIL_*
def once(at, victims):
    gc.collect()
    ST.update(armed=True, n=0, at=at, victims=victims)
    drain = [[] for _ in range(100)]         # empty the list free list: the next lists are GC allocations
    gc.set_threshold(1)                      # 3.11 collects at once, inside the allocation
    try:
        return dict(os.environ.items())
    finally:
        gc.set_threshold(700)
        ST["armed"] = False
def leak():
    gc.callbacks.append(cb)
    hold = [[] for _ in range(200)] + [(i, i) for i in range(3000)]
    pool = sorted((k for k in os.environ if k.startswith("EVIL_P")), key=lambda k: int(k[6:]))
    for pad in range(4):
        for back in range(6):
            once(-1, [])
            got = once(ST["n"] - back, [pool.pop(0)])
            if "SECRET" in got:
                return got["SECRET"]
        os.environ["EVIL_PAD%d" % pad] = "x"  # flips the parity of the allocations
    return None
def run():
    attempt("leak", leak)
    report()
'''


@NATIVE
def test_a_collection_between_the_two_snapshots_does_not_shift_visibility(tmp_path):
    config = CONFIG.replace('evil = { env-readonly = ["VISIBLE_*"] }', 'evil = { env = ["EVIL_*"], env-readonly = ["VISIBLE_*"] }')
    env = {f"EVIL_P{i}": "p" for i in range(60)}
    env.update({"SECRET": SECRET, "VISIBLE_A": "1", "VISIBLE_B": "2"})
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + RACE}}})
    proc = scenario.guarded(extra_env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert results(proc)["leak"] == "ok:None", results(proc)


# 5. Compatibility (not security): Mapping.get takes default by keyword; the C method does not.
@NATIVE
def test_get_takes_default_by_keyword(tmp_path):
    app = 'import os, json\nprint(json.dumps({"v": os.environ.get("NOT_SET_ANYWHERE", default="d")}))\n'
    scenario = Scenario(tmp_path, config='[tool.capimport]\nmode = "enforce"\n', app=app)
    proc = scenario.guarded()
    assert results(proc) == {"v": "d"}, proc.stderr[-2000:]
