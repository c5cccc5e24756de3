"""Route 5, unit level: how a Python child's command line is rewritten to start under capimport."""

from __future__ import annotations

import sys

import pytest

from capimport.guards.children import is_python, rewrite

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


def test_python_is_recognised_by_name_or_by_file():
    assert is_python("/usr/bin/python3.11") and is_python("python") and is_python(PY)
    assert not is_python("/bin/sh") and not is_python("/usr/bin/pythonista-tool")
