"""Route 4, reached through route 7: callables planted where the import system calls others'.

The import system's frames are privileged while it imports, for its own acts only: reading module
files, writing bytecode from ``set_data``/``_write_atomic``, and inside ``_call_with_frames_removed``
running a callable held since install (``builtins.exec``, ``_imp``'s module makers). Where it calls
finders, path hooks, loaders and ``_imp``'s functions, an act with its frame innermost is a builtin,
a ``functools.partial`` or a standard-library function someone planted there: the core charges it
to code nobody owns (the ``default`` grant) together with whoever imports (``writes_bytecode`` in
``_core.c``, ``runs_held_callable`` in ``_core_tamper.h``), whatever capimport's Python (which also
wraps planted entries, ``guards/importhooks.py``) has been made to do.
"""

from __future__ import annotations

import os
import shutil

import pytest
from sechelp import ATTEMPT, Scenario, ok, results

DECISIONS = pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])

CONFIG = '[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'

#: The application lets the distribution plant, then imports a module nobody has.
APP = '''
import os
os.chdir({marks!r})
os.makedirs("hooked")
import evil
evil.plant()
try:
    __import__("missing_module")
except Exception:
    pass
print("DONE")
'''

#: Rewrites every piece of capimport's Python that wraps planted import hooks into a no-op.
DISARM = '''
    from capimport import enforcer
    from capimport.guards import importhooks
    active = enforcer.active()   # None in the plain run
    rule = active.guard_rules.get("import") if active is not None else None
    for cell in getattr(rule, "__closure__", None) or ():
        cell.cell_contents = type("Nothing", (), {"sanitize": staticmethod(lambda *a: 0),
                                                 "__call__": lambda *a: None})()
    importhooks.sanitize = lambda *a: 0
    importhooks._planted = lambda value: False
'''


def _scenario(tmp_path, plant: str):
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f"import functools, os, shutil, sys\ndef plant():\n{plant}"
    scenario = Scenario(tmp_path, config=CONFIG, app=APP.format(marks=str(marks)),
                        dists={"evil": {"files": {"evil/__init__.py": code}}})
    return scenario, marks


def _payload(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "payload.py").write_text("x")
    return source / "payload.py"


def _copy_hook(payload) -> str:
    return (f"    sys.path_hooks.insert(0, functools.partial(shutil.copy, {str(payload)!r}))\n"
            f"    sys.path.append(os.path.abspath('hooked'))\n")


def test_rewriting_capimports_python_charging_leaves_a_planted_path_hook_charged(tmp_path):
    """Was ``test_gap_the_import_hook_charging_is_still_python``: a ``sys.path_hooks`` partial
    copies a file into the path entry when the application imports; under capimport it copies
    nothing, even after the distribution rewrote capimport's Python import rule into no-ops."""
    scenario, marks = _scenario(tmp_path, DISARM + _copy_hook(_payload(tmp_path)))
    proc = scenario.plain()
    assert "DONE" in proc.stdout and os.listdir(marks / "hooked") == ["payload.py"], proc.stderr[-2000:]
    os.remove(marks / "hooked" / "payload.py")
    os.rmdir(marks / "hooked")
    proc = scenario.guarded()
    assert "DONE" in proc.stdout, proc.stderr[-2000:]
    assert os.listdir(marks / "hooked") == [], proc.stderr[-2000:]
    assert "code no distribution owns lacks 'fs'" in proc.stderr, proc.stderr[-2000:]


@DECISIONS
def test_a_planted_partial_path_hook_is_charged(tmp_path, decision):
    """The same partial with capimport's Python intact: charged in both decisions."""
    scenario, marks = _scenario(tmp_path, _copy_hook(_payload(tmp_path)))
    proc = scenario.guarded(extra_env=decision)
    assert "DONE" in proc.stdout, proc.stderr[-2000:]
    assert os.listdir(marks / "hooked") == [], proc.stderr[-2000:]


@DECISIONS
def test_a_standard_library_function_planted_as_a_path_hook_is_charged(tmp_path, decision):
    """``os.makedirs`` on ``sys.path_hooks`` creates every folder the distribution puts on
    ``sys.path`` when anyone imports. It has Python frames (so the Python wrapping leaves it
    alone), but they are the standard library's, looked through: the act is charged at the
    import system's call site."""
    plant = ("    sys.path_hooks.insert(0, os.makedirs)\n"
             "    sys.path.append(os.path.abspath(os.path.join('made', 'deep')))\n")
    scenario, marks = _scenario(tmp_path, plant)
    proc = scenario.plain()
    assert "DONE" in proc.stdout and (marks / "made" / "deep").is_dir(), proc.stderr[-2000:]
    for folder in (marks / "made" / "deep", marks / "made", marks / "hooked"):
        folder.rmdir()
    proc = scenario.guarded(extra_env=decision)
    assert "DONE" in proc.stdout, proc.stderr[-2000:]
    assert not (marks / "made").exists(), proc.stderr[-2000:]


#: Extension modules the import system loads through ``_imp`` (one not yet loaded is enough).
EXTENSIONS = "_bisect, _csv, _json, _heapq, _random, _statistics, _contextvars, _queue, _uuid, _zoneinfo"
#: Builtin modules nothing loads at start-up.
BUILTINS = "xxsubtype, _symtable, _tracemalloc"

IMP_CONFIG = CONFIG.replace('evil = ["fs-readonly"]', "evil = []")


def _imp_scenario(tmp_path, maker: str, payload: str, modules: str):
    """A distribution puts *payload* where the import system looks ``_imp.<maker>`` up, then
    imports *modules*: the payload runs inside ``_call_with_frames_removed``."""
    code = f'''
import functools, importlib, pty, shutil, sys, time, _imp
def run():
    _imp.{maker} = {payload}
    def go():
        import {modules}
    attempt("load", go)
    time.sleep(1.5)
    report()
'''
    return Scenario(tmp_path, config=IMP_CONFIG, app="import evil\nevil.run()\n",
                    dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})


@DECISIONS
@pytest.mark.parametrize("maker, modules", [("exec_dynamic", EXTENSIONS), ("create_dynamic", EXTENSIONS),
                                            ("exec_builtin", BUILTINS), ("create_builtin", BUILTINS)],
                         ids=["exec_dynamic", "create_dynamic", "exec_builtin", "create_builtin"])
def test_a_partial_put_on_imp_runs_without_the_import_systems_privilege(tmp_path, decision, maker, modules):
    """Was ``test_gap_a_planted_imp_function_runs_as_the_import_system``: ``_call_with_frames_removed``
    is where the import system's own acts happen (a standard-library module's body, an extension
    module's init), but only while it calls the callables the core has held since install. A
    partial of ``pty.spawn`` put on ``_imp`` spawns nothing under capimport."""
    marker = tmp_path / "spawned"
    payload = f"functools.partial(pty.spawn, ['touch', {str(marker)!r}])"
    scenario = _imp_scenario(tmp_path, maker, payload, modules)
    plain = results(scenario.plain())
    assert marker.exists(), plain
    marker.unlink()
    guarded = results(scenario.guarded(extra_env=decision))
    assert not marker.exists(), guarded


@DECISIONS
def test_a_partial_put_on_imp_writes_no_bytecode_cache(tmp_path, decision):
    """The import system may write into ``__pycache__`` folders, from ``set_data`` and
    ``_write_atomic`` only: a partial of ``shutil.copytree`` on ``_imp.exec_dynamic`` cannot plant
    bytecode in another package's cache (the application's here) as the import system."""
    payload_file = _payload(tmp_path)
    cache = tmp_path / "victim" / "__pycache__"
    cache.mkdir(parents=True)
    target = cache / "planted"
    payload = f"functools.partial(shutil.copytree, {str(payload_file.parent)!r}, {str(target)!r})"
    scenario = _imp_scenario(tmp_path, "exec_dynamic", payload, EXTENSIONS)
    plain = results(scenario.plain())
    assert (target / "payload.py").exists(), plain
    shutil.rmtree(target)
    guarded = results(scenario.guarded(extra_env=decision))
    assert not target.exists(), guarded


@DECISIONS
def test_the_import_systems_own_acts_are_still_its_own(tmp_path, decision):
    """No false denial: with nothing planted, a standard-library module whose body acts
    (``ctypes`` opens the interpreter with ``dlopen``), extension and builtin modules, and bytecode
    written to ``__pycache__`` all load, for the application and for a distribution granted only
    what its own code does."""
    code = f'''
import sys
def run():
    assert "ctypes" not in sys.modules
    def go():
        import ctypes, {EXTENSIONS}, {BUILTINS}
        import helper
        return ctypes.sizeof(ctypes.c_int)
    attempt("load", go)
    report()
'''
    config = CONFIG.replace('evil = ["fs-readonly"]', 'evil = ["ffi", "env-readonly"]\nhelper = []')  # sysconfig reads HOME
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}},
                               "helper": {"files": {"helper/__init__.py": "VALUE = 1\n"}}})
    writes = dict(decision, PYTHONDONTWRITEBYTECODE="")
    guarded = scenario.guarded(extra_env=writes)
    assert ok(results(guarded)["load"]), guarded.stderr[-2000:]
    assert "lacks" not in guarded.stderr, guarded.stderr[-2000:]
    assert list((scenario.site / "helper" / "__pycache__").glob("__init__.*.pyc")), guarded.stderr[-2000:]


@DECISIONS
def test_a_standard_library_body_a_planted_finder_runs_as_main_acts_without_privilege(tmp_path, decision):
    """A finder a distribution plants can have the import system run any standard-library file
    under any name. As ``"__main__"``, ``webbrowser.py`` opens the URL in ``sys.argv`` with the
    user's ``$BROWSER`` (here ``touch``: it creates a file); ``http.server`` would bind a port.
    The privilege for a standard-library body covers ``ffi`` only (``ctypes`` opens the
    interpreter at import): the process is charged to code nobody owns together with the
    application that imported, and never runs."""
    marker = tmp_path / "opened"
    code = f'''
import importlib.util, os, sys
class Finder:
    def find_spec(self, name, path=None, target=None):
        if name != "innocent":
            return None
        browser = os.path.join(os.path.dirname(os.__file__), "webbrowser.py")
        return importlib.util.spec_from_file_location("__main__", browser)
def plant():
    sys.argv[1:] = [{str(marker)!r}]
    sys.meta_path.insert(0, Finder())
'''
    app = '''
import evil
evil.plant()
try:
    import innocent
except BaseException as exc:
    print("RAISED", type(exc).__name__)
print("DONE")
'''
    scenario = Scenario(tmp_path, config=CONFIG, app=app, dists={"evil": {"files": {"evil/__init__.py": code}}})
    browser = {"BROWSER": "touch"}
    plain = scenario.plain(extra_env=browser)
    assert "DONE" in plain.stdout and marker.exists(), plain.stdout + plain.stderr[-2000:]
    marker.unlink()
    guarded = scenario.guarded(extra_env=dict(decision, **browser))
    assert "DONE" in guarded.stdout, guarded.stderr[-2000:]
    assert not marker.exists(), guarded.stdout
    assert "code no distribution owns lacks 'process'" in guarded.stderr, guarded.stderr[-2000:]


@DECISIONS
def test_bytecode_under_a_relative_cache_prefix_follows_the_working_folder(tmp_path, decision):
    """No false denial: with a relative ``PYTHONPYCACHEPREFIX`` the import system writes bytecode
    under the prefix as seen from the working folder of the moment, so after ``os.chdir`` too
    (the prefix was resolved once, at start-up, and such writes were charged to code nobody owns)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    app = f'''
import os
os.chdir({str(elsewhere)!r})
import helper
print("DONE", helper.VALUE)
'''
    scenario = Scenario(tmp_path, config=CONFIG, app=app,
                        dists={"helper": {"files": {"helper/__init__.py": "VALUE = 1\n"}}})
    env = dict(decision, PYTHONDONTWRITEBYTECODE="", PYTHONPYCACHEPREFIX="relpfx")
    guarded = scenario.guarded(extra_env=env)
    assert "DONE 1" in guarded.stdout, guarded.stderr[-2000:]
    assert "lacks" not in guarded.stderr, guarded.stderr[-2000:]
    assert list((elsewhere / "relpfx").rglob("__init__.*.pyc")), guarded.stderr[-2000:]


@DECISIONS
def test_a_standard_library_extensions_init_calling_a_planted_function_acts_without_privilege(tmp_path, decision):
    """``_decimal``'s init calls ``collections.namedtuple``, a module attribute anyone can replace:
    the standard library's extension inits are privileged for ``ffi`` only, as its bodies are, so a
    partial of ``pty.spawn`` planted there spawns nothing (a review finding: it ran as the import
    system's act with the native core)."""
    marker = tmp_path / "spawned"
    payload = f"functools.partial(pty.spawn, ['touch', {str(marker)!r}])"
    code = f'''
import collections, functools, pty, sys, time
def run():
    assert "_decimal" not in sys.modules
    collections.namedtuple = {payload}
    attempt("load", lambda: __import__("_decimal"))
    time.sleep(1.5)
    report()
'''
    scenario = Scenario(tmp_path, config=IMP_CONFIG, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    plain = results(scenario.plain())
    assert marker.exists(), plain
    marker.unlink()
    guarded = results(scenario.guarded(extra_env=decision))
    assert not marker.exists(), guarded
