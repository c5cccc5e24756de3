"""``python -m capimport`` behaves like ``python`` for the program it runs."""

from __future__ import annotations

import pytest

from rt_helpers import Project

SHOW = """
import os, sys
print("argv", sys.argv)
print("name", __name__)
print("path0", sys.path[0])
print("file", globals().get("__file__"))
print("main", sys.modules["__main__"].__dict__ is globals())
print("stdin", sys.stdin.read().strip())
"""


@pytest.fixture
def project(tmp_path):
    project = Project(tmp_path)
    project.config('[tool.capimport]\nmode = "enforce"\n')
    return project


def _same(project, args, **kwargs):
    ours = project.run(*args, **kwargs)
    theirs = project.run_plain(*args, **kwargs)
    assert ours.stdout == theirs.stdout, (ours.stdout, theirs.stdout, ours.stderr)
    assert ours.returncode == theirs.returncode, (ours.stderr, theirs.stderr)
    return ours, theirs


def test_script_argv_main_path0_file_stdin(project):
    project.script("sub/show.py", SHOW)
    _same(project, ["sub/show.py", "a", "--flag", "-m"], input="from stdin\n")


def test_module_with_main(project):
    project.script("pkg/__init__.py", "")
    project.script("pkg/__main__.py", SHOW + "print('spec', __spec__.name)\n")
    project.script("single.py", SHOW)
    _same(project, ["-m", "pkg", "x"], input="")
    _same(project, ["-m", "single", "y"], input="")


def test_code(project):
    _same(project, ["-c", "import sys; print(sys.argv, __name__, sys.path[0] == '')", "q"])


@pytest.mark.parametrize("body,code", [
    ("raise SystemExit(3)", 3),
    ("raise SystemExit", 0),
    ("import sys; sys.exit('fatal: message')", 1),
    ("pass", 0),
])
def test_exit_codes(project, body, code):
    project.script("exit.py", body + "\n")
    ours, theirs = _same(project, ["exit.py"])
    assert ours.returncode == code
    assert ours.stderr == theirs.stderr


def test_uncaught_exception_traceback_is_the_programs(project):
    project.script("boom.py", "def f():\n    raise KeyError('k')\nf()\n")
    ours, theirs = _same(project, ["boom.py"])
    assert ours.returncode == 1
    assert ours.stderr == theirs.stderr
    assert "capimport" not in ours.stderr


def test_custom_excepthook_is_used(project):
    project.script("hook.py", "import sys\nsys.excepthook = lambda t, v, tb: print('HOOK', t.__name__)\n"
                   "raise RuntimeError('x')\n")
    ours, _ = _same(project, ["hook.py"])
    assert "HOOK RuntimeError" in ours.stdout


def test_pickling_main_classes_and_dunder_main_guard(project):
    project.script("pick.py", """
        import pickle
        class Thing:
            pass
        if __name__ == "__main__":
            print(type(pickle.loads(pickle.dumps(Thing()))).__name__)
        """)
    ours, _ = _same(project, ["pick.py"])
    assert ours.stdout.strip() == "Thing"


def test_a_capimport_command_runs_as_the_command_unless_a_file_has_its_name(project):
    """``python -m capimport audit`` is ``capimport audit`` (the way ``python -m pip`` is pip);
    a program file named ``audit`` in the working folder is still the program."""
    from capimport import cli, runner
    assert sorted(runner.SUBCOMMANDS) == sorted(cli.COMMANDS)   # the runner's list names them all
    proc = project.run("audit")
    assert proc.returncode == 0 and "can't open file" not in proc.stderr, proc.stderr
    assert proc.stdout == project.run_plain("-m", "capimport.cli", "audit").stdout and "capimport" in proc.stdout
    project.script("audit", "print('the program')\n")
    proc = project.run("audit")
    assert proc.returncode == 0 and proc.stdout == "the program\n", proc.stderr


def test_missing_script_and_usage_errors(project):
    proc = project.run("nope.py")
    assert proc.returncode == 2 and "can't open file" in proc.stderr
    proc = project.run()
    assert proc.returncode == 2 and "usage:" in proc.stderr
    proc = project.run("--mode", "lax", "x.py")
    assert proc.returncode == 2 and "--mode must be" in proc.stderr
    proc = project.run("--help")
    assert proc.returncode == 0 and "usage:" in proc.stdout


def test_runner_main_returns_the_exit_status(project):
    project.script("three.py", "raise SystemExit(3)\n")
    proc = project.run_plain("-c", "import sys; from capimport.runner import main; "
                                   "sys.exit(10 + main(['three.py']))")
    assert proc.returncode == 13, proc.stderr
