"""Route 3: C entry points that reach other processes with no audit event.

* ``_posixshmem.shm_open``/``shm_unlink`` (behind ``multiprocessing.shared_memory``) open and
  delete ``/dev/shm/<name>``: another program's shared memory, read, rewritten or removed.
  capimport puts glibc's own implementation in their place (an ``open``/``unlink`` of that
  file), so the ``open`` and ``os.remove`` events decide them (``guards/native.py``).
* ``signal.pidfd_send_signal`` signals any process of the user (``os.kill`` raises an event,
  this does not): ``process``, as ``os.kill``.
* ``resource.prlimit`` on another process sets its limits: ``process`` (reading them, or
  setting this process's own, stays free).
* ``_multiprocessing``'s named semaphores (``/dev/shm/sem.<name>``): ``SemLock._rebuild`` opens
  another program's by name (then holds or releases it), ``sem_unlink`` deletes it: ``fs`` on
  that file. ``_rebuild`` with no name takes a raw ``sem_t`` pointer, so ``release()`` adds one
  at any address: ``ffi`` (``guards/ipc.py``).

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
child = subprocess.Popen([sys.executable, "-c", "print('ready', flush=True); import time; time.sleep(30)"],
                         stdout=subprocess.PIPE)
child.stdout.readline()   # started: a limit of 3 files set before its start-up would stop it (127)
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
child.stdout.close()
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


#: The semaphores of "another program": this test process makes them, the application's
#: distribution reaches them by name.
SEMAPHORE_ATTACK = ATTEMPT + '''
import sys
import _multiprocessing
SemLock = _multiprocessing.SemLock
def run():
    def hold():
        taken = SemLock._rebuild(0, 1, 1, VICTIM)
        return taken.acquire(False)
    attempt("sem_hold", hold)
    attempt("sem_unlink", _multiprocessing.sem_unlink, DOOMED)
    def raw_memory():
        # the handle is used as a sem_t pointer: release() adds one to whatever is there
        # (here the reference count of a fresh object), acquire() takes it back
        target = object()
        before = sys.getrefcount(target)
        handle = SemLock._rebuild(id(target), 1, SemLock.SEM_VALUE_MAX, None)
        handle.release()
        after = sys.getrefcount(target)
        handle.acquire(False)
        return after - before
    attempt("sem_raw_memory", raw_memory)
    report()
'''


@DECISIONS
def test_another_programs_named_semaphores_and_raw_handles_need_grants(tmp_path, decision):
    _multiprocessing = pytest.importorskip("_multiprocessing")
    token = uuid.uuid4().hex[:12]
    victim_name, doomed_name = f"/capimport-sem-{token}", f"/capimport-semdoomed-{token}"
    victim = _multiprocessing.SemLock(1, 1, 1, victim_name, False)
    attack = SEMAPHORE_ATTACK.replace("VICTIM", repr(victim_name)).replace("DOOMED", repr(doomed_name))
    scenario = Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": attack}}})
    try:
        doomed = _multiprocessing.SemLock(1, 1, 1, doomed_name, False)
        plain = scenario.plain()
        before = results(plain)
        assert before == {"sem_hold": "ok:True", "sem_unlink": "ok:None", "sem_raw_memory": "ok:1"}, \
            (before, plain.stderr[-2000:])
        assert not victim.acquire(False), "the plain run holds the victim's semaphore"
        assert not os.path.exists(f"/dev/shm/sem.{doomed_name[1:]}")
        victim.release()
        del doomed

        doomed = _multiprocessing.SemLock(1, 1, 1, doomed_name, False)
        guarded = scenario.guarded(extra_env=decision)
        after = results(guarded)
        for attack_name, capability in (("sem_hold", "fs"), ("sem_unlink", "fs"), ("sem_raw_memory", "ffi")):
            assert denied(after[attack_name]) and f"lacks '{capability}'" in after[attack_name], \
                (attack_name, after, guarded.stderr[-2000:])
        assert victim.acquire(False), "the victim's semaphore was left alone"
        assert os.path.exists(f"/dev/shm/sem.{doomed_name[1:]}"), "the doomed semaphore is still there"
        assert f"_multiprocessing.SemLock._rebuild('{victim_name}')" in guarded.stderr, guarded.stderr[-2000:]
    finally:
        for name in (victim_name, doomed_name):
            try:
                _multiprocessing.sem_unlink(name)
            except OSError:
                pass


#: No false denial: a distribution granted ``process`` and reads (not ``fs``) uses multiprocessing's locks under
#: the spawn start method. The lock is a named semaphore: the child opens it by name, and the
#: finalizer unlinks it at exit from whatever stack runs it.
SPAWN_LOCKS = ATTEMPT + '''
import multiprocessing
def work(lock, queue):
    with lock:
        queue.put("child held it")
def run():
    context = multiprocessing.get_context("spawn")
    lock = context.Lock()
    queue = context.Queue()
    def spawn():
        child = context.Process(target=work, args=(lock, queue))
        child.start()
        said = queue.get(timeout=60)
        child.join(60)
        return said, child.exitcode
    attempt("spawn", spawn)
    def unlink_early():
        early = context.Semaphore(2)
        early.acquire()
        early.release()
        name = early._semlock.name
        del early
        import gc; gc.collect()
        import os
        return os.path.exists("/dev/shm/sem." + name.lstrip("/"))
    attempt("unlinked_when_collected", unlink_early)
    report()
'''


@DECISIONS
def test_multiprocessing_locks_under_spawn_need_no_grant_for_their_semaphores(tmp_path, decision):
    config = ('[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\n'
              'pool = ["process", "fs-readonly", "env-readonly"]\n')
    scenario = Scenario(tmp_path, config=config, app="import pool\nif __name__ == '__main__':\n    pool.run()\n    print('EXIT')\n",
                        dists={"pool": {"files": {"pool/__init__.py": SPAWN_LOCKS}}})
    guarded = scenario.guarded(extra_env=decision, timeout=180)
    assert results(guarded) == {"spawn": "ok:('child held it', 0)", "unlinked_when_collected": "ok:False"}, \
        (guarded.stdout, guarded.stderr[-3000:])
    assert "lacks" not in guarded.stderr and "leaked semaphore" not in guarded.stderr, guarded.stderr[-3000:]
    assert guarded.returncode == 0 and "EXIT" in guarded.stdout, guarded.stderr[-3000:]
