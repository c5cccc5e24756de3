"""Frameworks that legitimately load and rewrite code: no false denial, and no way in for forgers.

pytest's assertion rewriter compiles other distributions' modules (plugins)
under their own file names and inserts its import hook ahead of capimport's;
linters ``ast.parse`` other files. None of that may be denied, and none of it
may open a route for a distribution to forge another's identity.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from sechelp import ATTEMPT, Scenario, denied, ok, results

CONFIG = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
          'evil = ["fs-readonly"]\nvictim = ["fs"]\n')
VICTIM = {"files": {"victim/__init__.py": "def hello():\n    return 'hi'\n"}}


def test_pytest_runs_a_suite_under_enforcement_with_zero_denials(tmp_path):
    """The suite's own interpreter has pytest (and its plugins) installed: run a small suite under it."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_sample.py").write_text(textwrap.dedent('''
        import os, subprocess
        def test_tmp(tmp_path):
            (tmp_path / "f.txt").write_text("x")
            assert (tmp_path / "f.txt").read_text() == "x"
        def test_env(monkeypatch):
            monkeypatch.setenv("CAPIMPORT_SAMPLE", "1")
            assert os.environ["CAPIMPORT_SAMPLE"] == "1"
        def test_process():
            assert subprocess.run(["true"]).returncode == 0
        def test_rewritten_assert():
            x = 2
            assert x + 1 == 3
        '''))
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent('''
        [project]
        name = "sample"
        version = "0"
        dependencies = ["pytest", "hypothesis"]

        [tool.capimport]
        mode = "enforce"

        [tool.capimport.packages]
        # installed here as a pytest plugin, and not in the bundled library: the project grants it
        hypothesis = ["fs", "env-readonly"]
        '''))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    proc = subprocess.run([sys.executable, "-m", "capimport", "-m", "pytest", "-q", "tests"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "4 passed" in proc.stdout
    assert not [line for line in proc.stderr.splitlines() if line.startswith("capimport:")], proc.stderr


def test_parsing_is_free_but_compiling_under_anothers_name_is_not(tmp_path):
    code = '''
import ast, os, victim
MARKS = os.path.dirname(victim.__file__)
def _rewrite_test(filename):   # a look-alike of pytest's rewriter, in evil's own file
    return compile("import os\\nopen(os.path.join(MARKS, 'forged'), 'w').close()", filename, "exec")
def run():
    attempt("ast_parse", lambda: type(ast.parse(open(victim.__file__).read(), victim.__file__)).__name__)
    attempt("lookalike", lambda: exec(_rewrite_test(victim.__file__), {"MARKS": MARKS}))
    report()
'''
    scenario = Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}, "victim": VICTIM})
    plain = results(scenario.plain())
    assert ok(plain["lookalike"]) and (scenario.site / "victim" / "forged").exists(), plain
    os.remove(scenario.site / "victim" / "forged")
    guarded = results(scenario.guarded())
    assert guarded["ast_parse"] == "ok:Module", guarded
    assert denied(guarded["lookalike"]), guarded
    assert not (scenario.site / "victim" / "forged").exists()


def test_a_finder_inserted_ahead_is_tolerated_and_the_guard_put_back(tmp_path):
    app = '''
import sys, importlib.abc
class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        return None
sys.meta_path.insert(0, Hook())
import json.tool, victim
print("first", type(sys.meta_path[0]).__name__, "second", type(sys.meta_path[1]).__name__)
'''
    scenario = Scenario(tmp_path, config=CONFIG, app=app, dists={"victim": VICTIM})
    proc = scenario.guarded()
    assert proc.returncode == 0, proc.stderr
    assert "first GuardFinder second Hook" in proc.stdout, proc.stdout
    assert "tampering" not in proc.stderr, proc.stderr
