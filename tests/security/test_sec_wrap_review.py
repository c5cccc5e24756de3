"""Review of the registration ``wrap`` gates (18a4dc7) and the core's /proc memory check (93593c0).

Each probe runs in a distribution ``evil`` granted nothing (or what its config says); ``helper``,
where present, is an ordinary distribution granted ``fs``. Under plain ``python`` the act works
(no test passes vacuously); under ``python -m capimport`` it must have no effect. Every test in
this file failed at c7d1f8d (review findings). The fixes: a wrapper called by a party adds its
token instead of standing in for the caller, and ``_core.accountable`` adds the caller's chain to
the token it is given, and a wrapper a party's thread runs adds its token too; ``_thread.start_new``
is gated; a
handler handed back by ``signal``/``getsignal`` stays wrapped; capimport registers finalize's exit
hook itself; asyncio handles always carry their scheduler's chain; ``os.open`` with ``dir_fd``
opens through the descriptor's /proc link; a map_files entry is matched by its own name. The
review's findings on standard-library functions planted on a module and on tasks sent to the
application's process pool are known gaps (``test_sec_known_gaps.py``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

from sechelp import ATTEMPT, Scenario, denied, ok, results

pytestmark = pytest.mark.skipif(importlib.util.find_spec("capimport._core") is None,
                                reason="capimport._core is not built (no C compiler)")

EVIL_ONLY = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\n'
WITH_HELPER = EVIL_ONLY + 'helper = ["fs"]\n'


def _scenario(tmp_path, code, app, config=EVIL_ONLY, helper=None):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    dists = {"evil": {"files": {"evil/__init__.py": ATTEMPT + f"OUT = {str(out)!r}\nVICTIM = {str(victim)!r}\n"
                                + code}}}
    if helper is not None:
        dists["helper"] = {"files": {"helper/__init__.py": helper}}
    return Scenario(tmp_path, config=config, app=app, dists=dists), out, victim


def _reset(out, victim):
    for child in out.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    (victim / "sub").mkdir(parents=True, exist_ok=True)


def _both(scenario, out, victim):
    """(plain outcome, guarded outcome): the files made in OUT and whether VICTIM survived."""
    seen = []
    for guarded in (False, True):
        _reset(out, victim)
        proc = scenario.run(guarded)
        seen.append((sorted(p.name for p in out.iterdir()), victim.exists(), proc))
    return seen


# --------------------------------------------------------------------------- chain tokens and wrappers


def test_a_token_left_on_an_application_thread_runs_a_builtin_as_the_application(tmp_path):
    """Thread.start stores the starter's Chain token as ``thread._capimport_chain`` (enforcer.py:673);
    ``_core.accountable`` takes any token, and the wrapper's walk stops at its caller's frame, so a
    distribution pairs the application's token with ``os.system``."""
    code = '''
import os, threading
def run():
    def steal():
        from capimport import _core
        for t in threading.enumerate():
            token = getattr(t, "_capimport_chain", None)
            if token is not None:
                return _core.accountable(os.system, token)("touch " + os.path.join(OUT, "token"))
        return os.system("touch " + os.path.join(OUT, "token"))     # plain python: no token anywhere
    attempt("token", steal)
    report()
'''
    app = '''
import threading, evil
ready = threading.Event()
worker = threading.Thread(target=ready.wait)
worker.start()
evil.run()
ready.set()
worker.join()
'''
    scenario, out, victim = _scenario(tmp_path, code, app)
    (plain, _, _), (guarded, _, proc) = _both(scenario, out, victim)
    assert plain == ["token"]
    assert guarded == [], proc.stdout


def test_a_wrapper_read_from_weakref_finalize_runs_with_the_registrants_grant(tmp_path):
    """The Accountable a finalizer holds is readable (``weakref.finalize._registry``, ``peek()``,
    ``detach()``); called directly, or handed to another registration API (``wrap_wanted`` passes an
    Accountable through unwrapped), it runs its function with *any* arguments as the registrant."""
    helper = '''
import tempfile
SCRATCH = tempfile.TemporaryDirectory()    # helper holds fs: its finalizer removes the folder later
'''
    code = '''
import os, weakref, _thread, time
def stolen():
    for info in list(weakref.finalize._registry.values()):
        if "_cleanup" in repr(info.func):
            return info.func               # plain python: the bound method; capimport: its Accountable
def run():
    attempt("direct", lambda: stolen()(VICTIM, "bye"))
    report()

def in_thread():
    import threading
    worker = threading.Thread(target=stolen(), args=(VICTIM, "bye"))   # run by the stdlib's frames
    worker.start()
    worker.join()

def via_timer():
    import threading
    timer = threading.Timer(0, stolen(), args=(VICTIM, "bye"))
    timer.start()
    timer.join()
'''
    for how in ("run", "in_thread", "via_timer"):
        app = f"import helper, evil\nevil.{how}()\n"
        (tmp_path / how).mkdir()
        scenario, out, victim = _scenario(tmp_path / how, code, app, config=WITH_HELPER, helper=helper)
        (_, plain_kept, _), (_, guarded_kept, proc) = _both(scenario, out, victim)
        assert not plain_kept, how
        assert guarded_kept, (how, proc.stderr)


def test_a_privileged_distributions_module_patch_runs_with_its_grant_for_any_caller(tmp_path):
    """A frameless callable set on a module by ``helper`` (granted fs) becomes Accountable(helper's
    chain); whoever calls the attribute is cut off at the wrapper (walk stops at the caller's frame),
    so ``evil`` calling ``shutil.rmtree`` acts as ``helper``. The planter should be *added*."""
    helper = '''
import functools, shutil
shutil.rmtree = functools.partial(shutil.rmtree, ignore_errors=True)   # an ordinary monkeypatch
'''
    code = '''
import shutil
def run():
    attempt("call_patched", shutil.rmtree, VICTIM)
    report()
'''
    app = "import helper, evil\nevil.run()\n"
    scenario, out, victim = _scenario(tmp_path, code, app, config=WITH_HELPER, helper=helper)
    (_, plain_kept, _), (_, guarded_kept, proc) = _both(scenario, out, victim)
    assert not plain_kept
    assert guarded_kept, results(proc)


# --------------------------------------------------------------------------- registration APIs


def test_the_start_new_alias_of_start_new_thread_is_gated_too(tmp_path):
    """``_thread.start_new`` is a second builtin for the same C function (not the same object), so
    REGISTRATIONS' gate and replace_everywhere's alias sweep (by identity) miss it."""
    code = '''
import os, _thread, time
def run():
    attempt("start_new", _thread.start_new, os.system, ("touch " + os.path.join(OUT, "start_new"),))
    time.sleep(0.5)
    report()
'''
    scenario, out, victim = _scenario(tmp_path, code, "import evil\nevil.run()\n")
    (plain, _, _), (guarded, _, proc) = _both(scenario, out, victim)
    assert plain == ["start_new"]
    assert guarded == [], proc.stderr


def test_a_handler_handed_back_by_signal_or_getsignal_stays_the_registrants(tmp_path):
    """gate_call unwraps an Accountable result (_core_gate.h, 'atexit.register returns the callable,
    signal.signal the previous handler'): the application's usual chaining (call the previous
    handler) and save/restore (re-install it) then run the distribution's partial as the
    application. Denied at f6b5a15; works since 18a4dc7."""
    code = '''
import os, signal, functools
def run():
    attempt("chain", signal.signal, signal.SIGUSR1, functools.partial(os.makedirs, os.path.join(OUT, "chained")))
    attempt("restore", signal.signal, signal.SIGUSR2, functools.partial(os.makedirs, os.path.join(OUT, "restored")))
    report()
'''
    app = '''
import os, signal, evil
evil.run()
previous = signal.getsignal(signal.SIGUSR1)
def mine(signum, frame):
    try:
        previous(signum, frame)
    except Exception:
        pass
signal.signal(signal.SIGUSR1, mine)
os.kill(os.getpid(), signal.SIGUSR1)
saved = signal.signal(signal.SIGUSR2, lambda s, f: None)
signal.signal(signal.SIGUSR2, saved)
try:
    os.kill(os.getpid(), signal.SIGUSR2)
except Exception:
    pass
'''
    scenario, out, victim = _scenario(tmp_path, code, app)
    (plain, _, _), (guarded, _, proc) = _both(scenario, out, victim)
    assert plain == ["chained", "restored"]
    assert guarded == [], proc.stderr


def test_the_applications_finalizers_at_exit_are_not_charged_to_the_first_finalizers_registrant(tmp_path):
    """False denial: weakref.finalize.__init__ registers ``finalize._exitfunc`` with atexit the first
    time it runs, from inside the distribution's call, so the atexit gate wraps it with the
    distribution's chain, and at exit every remaining finalizer (the application's
    TemporaryDirectory) runs as that distribution: its folder is left behind."""
    code = '''
import weakref
class Kept:
    pass
KEEP = Kept()
weakref.finalize(KEEP, len, "")            # the process's first finalizer, harmless
def run():
    report()
'''
    app = '''
import os, tempfile, evil
scratch = tempfile.TemporaryDirectory()
os.symlink(scratch.name, os.path.join(evil.OUT, "scratch"))
evil.run()
'''
    scenario, out, victim = _scenario(tmp_path, code, app)
    for guarded in (False, True):
        _reset(out, victim)
        proc = scenario.run(guarded)
        link = out / "scratch"
        assert not os.path.exists(os.readlink(link)), (guarded, proc.stderr[-1500:])


# --------------------------------------------------------------------------- /proc/<pid>/mem


FS_READONLY = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'


def test_process_memory_through_dir_fd_needs_ffi(tmp_path):
    """The ``open`` audit event carries no ``dir_fd``: build_checks (_core.c, CAP_OPEN) resolves
    ``"mem"`` against the working directory and stat(2)s it there, so ``os.open("mem", ...,
    dir_fd=<fd of /proc/self>)`` passes the T_MEMORY check (and a scoped ``fs`` check)."""
    code = '''
import os
def run():
    def memory(path, **kw):
        os.close(os.open(path, os.O_RDONLY, **kw))
        return "opened"
    attempt("direct", memory, "/proc/self/mem")
    attempt("dir_fd", lambda: memory("mem", dir_fd=os.open("/proc/self", os.O_RDONLY | os.O_DIRECTORY)))
    attempt("dir_fd_proc", lambda: memory("self/mem", dir_fd=os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)))
    report()
'''
    scenario, out, victim = _scenario(tmp_path, code, "import evil\nevil.run()\n", config=FS_READONLY)
    plain = results(scenario.plain())
    assert all(ok(v) for v in plain.values()), plain
    guarded = results(scenario.guarded())
    assert all(denied(v) for v in guarded.values()), guarded


def test_a_write_through_dir_fd_is_decided_on_the_folder_it_names(tmp_path):
    """Same root cause for a scoped ``fs`` grant: the file written is VICTIM/planted, the path
    decided is <cwd>/planted (in scope)."""
    code = '''
import os
def run():
    def write(**kw):
        fd = os.open("planted", os.O_WRONLY | os.O_CREAT, 0o644, **kw)
        os.close(fd)
        return "written"
    attempt("direct", lambda: os.close(os.open(os.path.join(VICTIM, "direct"), os.O_WRONLY | os.O_CREAT)))
    attempt("dir_fd", lambda: write(dir_fd=os.open(VICTIM, os.O_RDONLY | os.O_DIRECTORY)))
    report()
'''
    app = "import os, evil\nos.chdir(evil.OUT)\nevil.run()\n"
    scoped = FS_READONLY.replace('evil = ["fs-readonly"]',
                                 f'evil = {{ fs-readonly = true, fs = ["{tmp_path / "out"}"] }}')
    scenario, out, victim = _scenario(tmp_path, code, app, config=scoped)
    _reset(out, victim)
    plain = results(scenario.plain())
    assert all(ok(v) for v in plain.values()), plain
    _reset(out, victim)
    for child in victim.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    guarded = results(scenario.guarded())
    assert denied(guarded["direct"]), guarded
    assert denied(guarded["dir_fd"]) and not (victim / "planted").exists(), guarded


def test_a_map_files_entry_needs_ffi(tmp_path):
    """Regression of 93593c0: a /proc/self/map_files/<range> entry is a link to the mapped file, so
    stat(2) (which follows it) says "not on /proc" and the name is never matched. The Python rule it
    replaced matched the name as given and denied this (needs CAP_SYS_ADMIN/CAP_CHECKPOINT_RESTORE,
    i.e. root in a container). Here: a memfd the application mapped, read without ``ffi``."""
    code = '''
import os
def run(start):
    def read():
        for name in os.listdir("/proc/self/map_files"):
            if int(name.split("-")[0], 16) == start:
                with open("/proc/self/map_files/" + name, "rb") as f:
                    return f.read(6)
    attempt("entry", read)
    report()
'''
    app = '''
import ctypes, mmap, os, evil
fd = os.memfd_create("secret")
os.ftruncate(fd, 4096)
m = mmap.mmap(fd, 4096)
os.close(fd)
m[:6] = b"SECRET"
evil.run(ctypes.addressof(ctypes.c_char.from_buffer(m)))
'''
    scenario, out, victim = _scenario(tmp_path, code, app, config=FS_READONLY)
    plain = results(scenario.plain())
    if not ok(plain["entry"]):
        pytest.skip(f"map_files not readable here (needs CAP_CHECKPOINT_RESTORE): {plain}")
    guarded = results(scenario.guarded())
    assert denied(guarded["entry"]), guarded


def test_an_application_callback_on_a_distributions_event_loop_runs_as_the_application(tmp_path):
    """False denial: Handle.__init__ wraps only when someone other than the application schedules
    (no ``always``, unlike ThreadPoolExecutor.submit), so a builtin/partial the application hands to
    ``call_soon_threadsafe`` of a loop a distribution runs on its own thread is charged to that
    distribution (the loop thread's inherited chain)."""
    code = '''
import asyncio, threading
LOOP = asyncio.new_event_loop()
threading.Thread(target=LOOP.run_forever, daemon=True).start()     # a library's background loop
def run():
    report()
'''
    app = '''
import os, time, functools, evil
evil.LOOP.call_soon_threadsafe(functools.partial(os.makedirs, os.path.join(evil.OUT, "app_partial")))
time.sleep(1)
evil.run()
'''
    scenario, out, victim = _scenario(tmp_path, code, app)
    (plain, _, _), (guarded, _, proc) = _both(scenario, out, victim)
    assert plain == ["app_partial"]
    assert guarded == plain, proc.stderr[-1500:]
