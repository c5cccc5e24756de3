"""Route 4, reached through route 7: callables planted where the import system calls others'.

The import system's frames are privileged while it imports. Where it calls finders, path hooks and
loaders (``_find_spec``, ``_path_hooks``, ``module_from_spec``, ``_load_unlocked``...), an act with
that frame innermost is not the import system's: it is a builtin, a ``functools.partial`` or a
standard-library function someone planted there. The core charges such an act to code nobody owns
(the ``default`` grant) together with whoever imports (``calls_planted`` in ``_core.c``), whatever
capimport's Python (which also wraps planted entries, ``guards/importhooks.py``) has been made to do.
"""

from __future__ import annotations

import os

import pytest
from sechelp import Scenario

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
