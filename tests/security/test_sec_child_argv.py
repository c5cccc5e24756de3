"""Route 5, unit level: how a Python child's command line is rewritten to start under capimport."""

from __future__ import annotations

import os
import sys

import pytest

from capimport.guards.children import first_runnable, rewrite, runs_here

PY = sys.executable
OPTS = ["--config", "/p/pyproject.toml", "--mode", "enforce"]


@pytest.mark.parametrize("argv, expected", [
    ([PY, "-c", "x"], [PY, "-m", "capimport", *OPTS, "-c", "x"]),
    ([PY, "-Bc", "x"], [PY, "-B", "-m", "capimport", *OPTS, "-c", "x"]),
    ([PY, "-Bcprint(1)"], [PY, "-B", "-m", "capimport", *OPTS, "-cprint(1)"]),
    ([PY, "-I", "-m", "mod", "a"], [PY, "-I", "-m", "capimport", *OPTS, "-m", "mod", "a"]),
    ([PY, "-X", "dev", "s.py", "-c"], [PY, "-X", "dev", "-m", "capimport", *OPTS, "--", "s.py", "-c"]),
    ([PY, "-m", "capimport", "--mode", "record", "x.py"],
     [PY, "-m", "capimport", *OPTS, "-m", "capimport", "--mode", "record", "x.py"]),
    ([PY, "-V"], [PY, "-V"]),
    ([PY, "--version"], [PY, "--version"]),
    ([PY], [PY]),
    (["/bin/sh", "-c", "python x.py"], ["/bin/sh", "-c", "python x.py"]),
])
def test_rewrite(argv, expected):
    assert rewrite(argv, argv[0], OPTS) == expected


def test_multiprocessing_spawn_command_line_in_bytes():
    argv = [PY.encode(), b"-B", b"-c", b"from multiprocessing.spawn import spawn_main; spawn_main()",
            b"--multiprocessing-fork"]
    out = rewrite(argv, argv[0], OPTS)
    assert out[:4] == [PY.encode(), b"-B", b"-m", b"capimport"] and out[-3:] == argv[-3:]


def test_unknown_interpreter_options_fail_closed():
    with pytest.raises(PermissionError):
        rewrite([PY, "-Zc", "x"], PY, OPTS)


def test_only_this_environments_python_is_rewritten(tmp_path, monkeypatch):
    """A child is rewritten when it is this interpreter's file started in this environment. The
    base interpreter of a venv, another venv made from it (virtualenv asks each interpreter about
    itself) or an unrelated program cannot import capimport: they start as they are."""
    assert runs_here(PY) and runs_here(PY.encode()) and runs_here(PY, PY)
    assert not runs_here("/bin/sh") and not runs_here("/nonexistent/python3")
    other = tmp_path / "venv"
    (other / "bin").mkdir(parents=True)
    (other / "pyvenv.cfg").write_text(f"home = {os.path.dirname(os.path.realpath(PY))}\n")
    (other / "bin" / "python").symlink_to(os.path.realpath(PY))
    assert not runs_here(str(other / "bin" / "python"))          # same file, another environment
    assert rewrite([str(other / "bin" / "python"), "-c", "x"], str(other / "bin" / "python"), OPTS) == \
        [str(other / "bin" / "python"), "-c", "x"]
    base = os.path.realpath(PY)
    assert runs_here(base) == (sys.prefix == sys.base_prefix)    # a venv's base interpreter is not it
    # CPython finds its environment from argv[0]: naming this one there is enough (fail closed)
    assert runs_here(str(other / "bin" / "python"), PY)
    with open(PY, "rb") as handle:                                # os.execve on a descriptor
        assert runs_here(handle.fileno())
    monkeypatch.setenv("PATH", os.path.dirname(PY))              # posix_spawnp's bare name, on PATH
    assert runs_here(os.path.basename(PY)) and not runs_here("sh")


def test_the_candidate_subprocess_will_run_is_the_first_executable_one(tmp_path):
    missing = str(tmp_path / "nowhere" / "python3")
    assert first_runnable([missing, PY]) == PY
    assert first_runnable([missing.encode(), PY.encode()]) == PY.encode()
    assert first_runnable([missing]) == missing
