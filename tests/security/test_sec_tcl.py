"""Route 3 and 8: tkinter's Tcl interpreter, foreign code that acts with no audit event.

``tkinter.Tcl().eval("exec ...")`` runs a process, Tcl's ``open`` writes a file and ``socket``
connects, all inside libtcl: no audit event, and no display needed. capimport treats the
interpreter as foreign code (``ffi``): making one (``_tkinter.create``), running Tcl code in
one the application made (``call``, ``eval``, ``expr*``, ``record``, ``evalfile``) and handing
one a Python callable to run later (``createcommand``: ``after``, a widget's command, run by
the application's event loop) need ``ffi`` (``capimport/guards/native.py``).

Every attack runs without capimport first (it must work), then under it in both decisions.
"""

from __future__ import annotations

import pytest
from sechelp import ATTEMPT, Scenario, denied, ok, results

pytest.importorskip("_tkinter")

DECISIONS = pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])

#: The application: a Tcl interpreter of its own (as a Tk GUI has), then the distribution runs,
#: then the application runs the Tcl command "refresh" it defined.
APP = '''
import os, tkinter
interp = tkinter.Tcl()
interp.createcommand("refresh", lambda: None)
assert interp.eval("exec echo app") == "app"   # the application itself: no grant needed
import evil
evil.run(interp)
interp.call("refresh")
print("MARKS", sorted(os.listdir({marks!r})))
'''

ATTACK = ATTEMPT + '''
import functools, os, tkinter
def run(interp):
    attempt("new_interpreter", lambda: tkinter.Tcl().eval("exec touch " + os.path.join(MARKS, "new")))
    attempt("app_call", lambda: interp.call("exec", "touch", os.path.join(MARKS, "call")))
    attempt("app_eval", lambda: interp.eval("set f [open " + os.path.join(MARKS, "eval") + " w]; close $f"))
    attempt("app_expr", lambda: interp.exprstring("[exec touch " + os.path.join(MARKS, "expr") + "]"))
    attempt("replace_command", lambda: interp.createcommand(
        "refresh", functools.partial(os.mkdir, os.path.join(MARKS, "later"))))
    report()
'''


@DECISIONS
def test_a_tcl_interpreter_is_foreign_code(tmp_path, decision):
    marks = tmp_path / "marks"
    marks.mkdir()
    config = '[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = []\n'
    scenario = Scenario(tmp_path, config=config, app=APP.format(marks=str(marks)),
                        dists={"evil": {"files": {"evil/__init__.py": ATTACK.replace("MARKS", repr(str(marks)))}}})
    plain = scenario.plain()
    before = results(plain)
    assert all(ok(value) for value in before.values()), (before, plain.stderr[-2000:])
    assert "MARKS ['call', 'eval', 'expr', 'later', 'new']" in plain.stdout, plain.stdout
    for mark in marks.iterdir():
        mark.rmdir() if mark.is_dir() else mark.unlink()

    guarded = scenario.guarded(extra_env=decision)
    after = results(guarded)
    for name, outcome in after.items():
        assert denied(outcome) and "lacks 'ffi'" in outcome, (name, after, guarded.stderr[-2000:])
    assert "MARKS []" in guarded.stdout, (guarded.stdout, guarded.stderr[-2000:])
    assert "a Tcl interpreter (tkinter)" in guarded.stderr and "Tcl code (tkinter call)" in guarded.stderr


@DECISIONS
def test_a_distribution_granted_ffi_runs_tcl(tmp_path, decision):
    """No false denial: a distribution holding ``ffi`` (a GUI toolkit built on tkinter) makes
    and drives its own interpreter, and a command it registers runs."""
    code = ATTEMPT + '''
import tkinter
def run():
    interp = tkinter.Tcl()
    seen = []
    interp.createcommand("hello", lambda name: seen.append(name))
    attempt("drive", lambda: (interp.eval("hello world; expr {6 * 7}"), seen))
    report()
'''
    # tkinter.Tcl() also reads $HOME and looks for the user's profile scripts (Tk.readprofile)
    config = ('[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\n'
              'gui = ["ffi", "env-readonly", "fs-readonly"]\n')
    scenario = Scenario(tmp_path, config=config, app="import gui\ngui.run()\n",
                        dists={"gui": {"files": {"gui/__init__.py": code}}})
    guarded = scenario.guarded(extra_env=decision)
    assert results(guarded) == {"drive": "ok:('42', ['world'])"}, guarded.stderr[-2000:]
    assert "lacks" not in guarded.stderr, guarded.stderr[-2000:]
