"""Guarded C functions keep the shape of builtins: stored on a class, they do not become methods.

Python 3.9's pathlib stores ``stat = os.stat`` on ``_NormalAccessor`` at import
time; any module imported after capimport's guards can do the same. A Python
function there would receive the instance as its first argument.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _run_app(tmp_path, code: str) -> subprocess.CompletedProcess:
    """*code* as the application, under ``python -m capimport`` in enforce mode."""
    (tmp_path / "pyproject.toml").write_text('[tool.capimport]\nmode = "enforce"\n')
    (tmp_path / "app.py").write_text(textwrap.dedent(code))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "capimport", "app.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)


def test_guarded_os_functions_stored_on_a_class_are_not_bound(tmp_path):
    proc = _run_app(tmp_path, '''
        import os
        class Accessor:
            stat = os.stat
            lstat = os.lstat
            mkfifo = os.mkfifo
        a = Accessor()
        print(a.stat(".").st_mode == os.stat(".").st_mode, a.lstat(".").st_size >= 0)
        print(getattr(os.stat, "_capimport_guard", False))
        ''')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "True"], proc.stdout  # guarded, yet shaped like a builtin


def test_guarded_registration_functions_stored_on_a_class_are_not_bound(tmp_path):
    """The deferred-execution guards (route 4) replace C functions too: same shape."""
    proc = _run_app(tmp_path, '''
        import atexit, codecs, os, signal, _thread, time
        class Registry:
            at_exit = atexit.register
            forget = atexit.unregister
            handler = signal.signal
            current = signal.getsignal
            at_fork = os.register_at_fork
            start = _thread.start_new_thread
            add_codec = codecs.register
        r = Registry()
        done = []
        r.at_exit(print, "at exit")
        r.forget(print)
        r.handler(signal.SIGUSR1, signal.SIG_IGN)
        print(r.current(signal.SIGUSR1) is signal.SIG_IGN)
        r.at_fork(before=lambda: None)
        r.start(done.append, (1,))
        time.sleep(0.2)
        r.add_codec(lambda name: None)
        print(done == [1], all(getattr(f, "_capimport_guard", False) for f in (atexit.register, signal.signal,
              os.register_at_fork, _thread.start_new_thread, codecs.register)))
        ''')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "True"], proc.stdout
