"""Route 4: call sites of the import system a review of ``calls_planted`` found unlisted (3.9 to
3.12): ``_handle_fromlist`` and ``_find_and_load_unlocked`` asking a module's ``__getattr__``, a
namespace package's ``_NamespacePath._recalculate`` calling its path finder. A partial planted
there ran a process with no grant. The distribution (``evil``) holds no grant at all. The last
test is a known gap: a module global of ``_imp`` the import system looks up when it calls it."""
from __future__ import annotations
import os, time
import pytest
from sechelp import ATTEMPT, Scenario, denied, ok, results

DECISIONS = pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])
NO_GRANTS = '[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = []\n'


def _run(tmp_path, code, decision, app="import evil\nevil.run()\n"):
    scenario = Scenario(tmp_path, config=NO_GRANTS, app=app,
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code,
                                                  "evil/plain.py": "X = 1\n"}}})
    return scenario


@DECISIONS
def test_handle_fromlist_module_getattr_spawns(tmp_path, decision):
    """evil (no grant) sets its own package's __getattr__ to a partial of os.spawnlp and runs
    `from evil import anything`: _handle_fromlist's hasattr calls it, innermost import frame
    _handle_fromlist (not listed), PROCESS -> import privilege `continue`s."""
    marker = tmp_path / "spawned"
    code = f'''
import functools, os, sys
def run():
    attempt("direct", lambda: os.spawnlp(os.P_WAIT, "touch", "touch", {str(marker)!r}))
    sys.modules["evil"].__getattr__ = functools.partial(os.spawnlp, os.P_WAIT, "touch", "touch", {str(marker)!r})
    def go():
        from evil import anything_missing
        return anything_missing
    attempt("fromlist", go)
    report()
'''
    s = _run(tmp_path, code, decision)
    plain = results(s.plain())
    assert ok(plain["fromlist"]) and marker.exists(), plain
    marker.unlink()
    guarded = results(s.guarded(extra_env=decision))
    assert denied(guarded["direct"]), guarded
    assert not marker.exists(), ("PLANTED __getattr__ SPAWNED UNDER GUARD", guarded)


@DECISIONS
def test_find_and_load_unlocked_parent_path_getattr_spawns(tmp_path, decision):
    """`import evil.plain.sub`: _find_and_load_unlocked reads parent_module.__path__ on a plain module
    -> its __getattr__('__path__') (a planted partial), innermost import frame not listed."""
    marker = tmp_path / "spawned"
    code = f'''
import functools, os, sys
def run():
    import evil.plain as p
    p.__getattr__ = functools.partial(os.spawnlp, os.P_WAIT, "touch", "touch", {str(marker)!r})
    def go():
        import evil.plain.sub
    attempt("parent_path", go)
    report()
'''
    s = _run(tmp_path, code, decision)
    plain = results(s.plain())
    assert marker.exists(), plain
    marker.unlink()
    guarded = results(s.guarded(extra_env=decision))
    assert not marker.exists(), ("PLANTED __getattr__ SPAWNED UNDER GUARD", guarded)


@DECISIONS
def test_namespace_path_finder_copies(tmp_path, decision):
    """A namespace package's _NamespacePath._path_finder replaced by a partial of shutil.copytree:
    the next submodule import iterates __path__ -> _recalculate calls it (not listed). The
    application imports; compare with a planted path hook (charged to code nobody owns)."""
    src = tmp_path / "src_tree"; src.mkdir(); (src / "loot").write_text("x")
    ns = tmp_path / "nsroot" / "nspkg"; ns.mkdir(parents=True)
    marks = tmp_path / "marks"; marks.mkdir()
    code = f'''
import functools, importlib, shutil, sys
def run():
    sys.modules["nspkg"].__path__._path_finder = functools.partial(shutil.copytree, {str(src)!r})
    importlib.invalidate_caches()
'''
    app = f'''
import os, sys
sys.path.append({str(tmp_path / "nsroot")!r})
import nspkg
os.chdir({str(marks)!r})
import evil
evil.run()
try:
    import nspkg.sub
except Exception as e:
    print("EXC", type(e).__name__, e)
print("DONE")
'''
    s = _run(tmp_path, code, decision, app=app)
    proc = s.plain()
    assert (marks / "nspkg" / "loot").exists(), proc.stdout + proc.stderr
    import shutil; shutil.rmtree(marks / "nspkg")
    proc = s.guarded(extra_env=decision)
    assert not (marks / "nspkg").exists(), ("PLANTED _path_finder COPIED UNDER GUARD", proc.stdout, proc.stderr[-1500:])


@DECISIONS
def test_namespace_path_finder_spawns(tmp_path, decision):
    """Same site (_NamespacePath._recalculate), a PROCESS act: pty.spawn accepts (name, parent_path)
    as its master_read/stdin_read arguments. evil plants and imports itself; it holds no grant."""
    marker = tmp_path / "spawned"
    ns = tmp_path / "nsroot" / "nspkg"; ns.mkdir(parents=True)
    code = f'''
import functools, importlib, pty, sys, time
def run():
    attempt("direct", lambda: pty.spawn(["touch", {str(marker)!r}]))
    sys.modules["nspkg"].__path__._path_finder = functools.partial(pty.spawn, ["touch", {str(marker)!r}])
    importlib.invalidate_caches()
    def go():
        import nspkg.sub
    attempt("recalculate", go)
    time.sleep(1.5)
    report()
'''
    app = f'''
import sys
sys.path.append({str(tmp_path / "nsroot")!r})
import nspkg
import evil
evil.run()
'''
    s = _run(tmp_path, code, decision, app=app)
    plain = results(s.plain())
    assert marker.exists(), plain
    marker.unlink()
    guarded = results(s.guarded(extra_env=decision))
    assert denied(guarded["direct"]), guarded
    assert not marker.exists(), ("PLANTED _path_finder SPAWNED UNDER GUARD", guarded)
