"""Route 3: C entry points that reach other processes with no audit event.

* ``_posixshmem.shm_open``/``shm_unlink`` (behind ``multiprocessing.shared_memory``) open and
  delete ``/dev/shm/<name>``: another program's shared memory, read, rewritten or removed.
  capimport puts glibc's own implementation in their place (an ``open``/``unlink`` of that
  file), so the ``open`` and ``os.remove`` events decide them (``guards/native.py``).
* ``signal.pidfd_send_signal`` signals any process of the user (``os.kill`` raises an event,
  this does not): ``process``, as ``os.kill``.
* ``resource.prlimit`` on another process sets its limits: ``process`` (reading them, or
  setting this process's own, stays free).

Each attack runs without capimport first (it must work), then under it in both decisions.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sechelp import ATTEMPT, Scenario, denied, ok, results

pytestmark = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="POSIX shared memory lives in /dev/shm")

DECISIONS = pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])
CONFIG = '[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = []\n'

#: The application: shared memory holding a secret (as another program's would), and a child.
APP = '''
import os, resource, subprocess, sys, time
from multiprocessing import shared_memory
secret = shared_memory.SharedMemory({name!r}, create=True, size=4096)
secret.buf[:6] = b"s3cret"
doomed = shared_memory.SharedMemory({doomed!r}, create=True, size=4096)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
import evil
evil.run(child.pid)
time.sleep(0.2)
try:
    limit = resource.prlimit(child.pid, resource.RLIMIT_NOFILE)[0]
except ProcessLookupError:
    limit = "gone"
print("CHILD", child.poll(), limit)
print("SECRET", bytes(secret.buf[:6]))
child.kill()
child.wait()
secret.close()
secret.unlink()
doomed.close()
try:
    doomed.unlink()
    print("DOOMED was still there")
except FileNotFoundError:
    print("DOOMED was gone")
'''

ATTACK = ATTEMPT + '''
import mmap, os, resource, signal
import _posixshmem
def run(pid):
    def read_and_rewrite():
        fd = _posixshmem.shm_open(NAME, os.O_RDWR, 0o600)
        mapped = mmap.mmap(fd, 4096)
        taken = mapped[:6]
        mapped[:6] = b"EVIL!!"
        return taken
    attempt("shm_read_write", read_and_rewrite)
    attempt("shm_unlink", _posixshmem.shm_unlink, DOOMED)
    attempt("shm_climb", _posixshmem.shm_open, "../../etc/passwd", os.O_RDONLY)
    attempt("prlimit_read", lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE)[0] > 0)
    attempt("prlimit_set", lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, 3)))
    attempt("prlimit_own", lambda: resource.prlimit(0, resource.RLIMIT_CORE,
                                                      resource.prlimit(0, resource.RLIMIT_CORE)))
    attempt("pidfd_kill", lambda: signal.pidfd_send_signal(os.pidfd_open(pid), signal.SIGTERM))
    report()
'''


def _names() -> tuple[str, str]:
    token = uuid.uuid4().hex[:12]
    return f"capimport-test-{token}", f"capimport-doomed-{token}"


@DECISIONS
def test_shared_memory_signals_and_limits_of_other_processes_need_grants(tmp_path, decision):
    name, doomed = _names()
    scenario = Scenario(tmp_path, config=CONFIG, app=APP.format(name=name, doomed=doomed),
                        dists={"evil": {"files": {"evil/__init__.py": ATTACK.replace("NAME", repr(name))
                                                  .replace("DOOMED", repr(doomed))}}})
    plain = scenario.plain()
    before = results(plain)
    for attack in ("shm_read_write", "shm_unlink", "prlimit_read", "prlimit_set", "prlimit_own", "pidfd_kill"):
        assert ok(before[attack]), (attack, before, plain.stderr[-2000:])
    assert before["shm_read_write"] == "ok:b's3cret'" and "SECRET b'EVIL!!'" in plain.stdout, plain.stdout
    assert "DOOMED was gone" in plain.stdout and "CHILD -15 3" in plain.stdout, plain.stdout
    assert before["shm_climb"].startswith("denied:OSError"), before   # glibc refuses a name with a slash

    guarded = scenario.guarded(extra_env=decision)
    after = results(guarded)
    for attack in ("shm_read_write", "shm_unlink", "prlimit_set", "pidfd_kill"):
        assert denied(after[attack]), (attack, after, guarded.stderr[-2000:])
    assert after["shm_climb"] == before["shm_climb"], after   # the same refusal, no file opened
    assert after["prlimit_read"] == "ok:True" and ok(after["prlimit_own"]), after
    assert "SECRET b's3cret'" in guarded.stdout and "DOOMED was still there" in guarded.stdout, guarded.stdout
    assert "CHILD None" in guarded.stdout and "CHILD None 3\n" not in guarded.stdout, guarded.stdout
    assert f"/dev/shm/{name}" in guarded.stderr and "signal.pidfd_send_signal" in guarded.stderr, guarded.stderr
    assert "resource.prlimit" in guarded.stderr, guarded.stderr


#: No false denial: shared memory through multiprocessing.shared_memory, by the application and
#: by a distribution granted the files (and process: the resource tracker is a child process).
OWN = ATTEMPT + '''
from multiprocessing import shared_memory
def run(name):
    def roundtrip():
        made = shared_memory.SharedMemory(name, create=True, size=64)
        made.buf[:4] = b"mine"
        seen = shared_memory.SharedMemory(name)
        data = bytes(seen.buf[:4])
        seen.close()
        made.close()
        made.unlink()
        return data
    attempt("roundtrip", roundtrip)
    report()
'''


@DECISIONS
def test_shared_memory_works_for_the_application_and_a_granted_distribution(tmp_path, decision):
    name, app_name = _names()
    config = ('[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\n'
              'mine = { fs = ["/dev/shm/capimport-*"], process = true }\n')
    app = f'''
from multiprocessing import shared_memory
own = shared_memory.SharedMemory({app_name!r}, create=True, size=64)
own.buf[:3] = b"app"
seen = shared_memory.SharedMemory({app_name!r})
assert bytes(seen.buf[:3]) == b"app"
seen.close()
own.close()
own.unlink()
import mine
mine.run({name!r})
'''
    scenario = Scenario(tmp_path, config=config, app=app, dists={"mine": {"files": {"mine/__init__.py": OWN}}})
    guarded = scenario.guarded(extra_env=decision)
    assert results(guarded) == {"roundtrip": "ok:b'mine'"}, guarded.stderr[-2000:]
    assert "lacks" not in guarded.stderr, guarded.stderr[-2000:]
