"""Adversarial review of the bytecode-cache rule: the probes that escaped ca2c0ae, closed since
capimport writes the import system's caches itself (``_core_bytecode.h``, ``capimport/bytecode.py``).

Each probe runs the act without capimport first (it must work, so no probe passes vacuously), then
under ``python -m capimport`` in both decisions (native core, CAPIMPORT_PURE_PYTHON=1). The tests
assert the secure outcome. Still open (docs/threat-model.md): the zip directory read through the
import system (member names, sizes and CRCs).

The attacker is the distribution ``evil``, granted nothing (``evil = []``, ``default = []``). The
victim is the application's ``helper.py``: a planted cache runs as it in the next run, which spawns
``touch marker`` (the application may spawn; ``evil`` may not).
"""

from __future__ import annotations

import os
import shutil
import textwrap
import time

import pytest
from sechelp import ATTEMPT, Scenario, denied, ok, results  # noqa: F401
from test_sec_bytecode import APP, DECISIONS, NO_GRANTS, PLANT, WRITES, _tail  # the shared scaffolding

#: Runs as the victim in any run but the planting one.
EVIL_SOURCE = "import subprocess, sys\nif sys.argv[1:] != ['plant']:\n    subprocess.run(['touch', %r])\nVALUE = 666\n"

def _plant_scenario(tmp_path, attack: str, victim_source: bytes = b"VALUE = 1\n"):
    marker = tmp_path / "spawned"
    project = tmp_path / "project"
    project.mkdir(parents=True, exist_ok=True)
    victim = project / "helper.py"
    victim.write_bytes(victim_source)
    body = textwrap.indent(textwrap.dedent(attack), "    ")
    plant = PLANT.format(evil_source=EVIL_SOURCE % str(marker), attack=body)
    scenario = Scenario(tmp_path, config=NO_GRANTS,
                        app=APP.format(project=str(project), victim=str(victim), marker=str(marker)),
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + plant}}})
    return scenario, victim, marker


def _poisoning(tmp_path, decision, attack, victim_source=b"VALUE = 1\n"):
    """Plant then run the victim, plain and guarded: (guarded plant run, guarded victim run, ran)."""
    scenario, victim, marker = _plant_scenario(tmp_path, attack, victim_source)
    cache = victim.parent / "__pycache__"
    for _ in range(3):   # a race the attack usually wins on its first try; a loaded machine can make it lose
        shutil.rmtree(cache, ignore_errors=True)
        first = scenario.plain("plant", extra_env=WRITES)
        assert list(cache.glob("helper.*.pyc")), _tail(first)
        second = scenario.plain(extra_env=WRITES)
        time.sleep(0.2)
        if marker.exists():
            break
    assert marker.exists(), "the attack does not work even without capimport: " + _tail(first) + _tail(second)
    marker.unlink()
    shutil.rmtree(cache)
    env = dict(decision, **WRITES)
    first = scenario.guarded("plant", extra_env=env)
    second = scenario.guarded(extra_env=env)
    time.sleep(0.2)
    return first, second, marker.exists()


def _nothing_spawns_inside_the_check(tmp_path, decision, attack, victim_source=b"VALUE = 1\n"):
    """The attack's ``spawn_*`` attempts (made from code capimport might run while it decides)
    work without capimport and are all denied under it."""
    scenario, victim, marker = _plant_scenario(tmp_path, attack, victim_source)
    plain = results(scenario.plain("plant", extra_env=WRITES))
    assert any(ok(v) for k, v in plain.items() if k.startswith("spawn")), plain
    for leftover in tmp_path.glob("spawned.nested*"):
        leftover.unlink()
    shutil.rmtree(victim.parent / "__pycache__")
    proc = scenario.guarded("plant", extra_env=dict(decision, **WRITES))
    guarded = results(proc)
    spawned = sorted(p.name for p in tmp_path.glob("spawned.nested*"))
    assert not spawned and all(denied(v) for k, v in guarded.items() if k.startswith("spawn")), \
        f"ESCAPE: {spawned} {guarded}\n" + _tail(proc)


# ---------------------------------------------------------------------------------------------
# (a) attacker code cached under the victim's name
# ---------------------------------------------------------------------------------------------

#: _write_atomic's file object comes from the module global ``_io`` of _bootstrap_external, which
#: anyone can rebind without an event. The stand-in writes the honest bytes (so the check at the
#: rename reads back the right code), keeps the descriptor open past the rename, and the
#: distribution overwrites the cache through it afterwards (os.pwrite raises no audit event).
KEEP_FD = '''
kept = []
class KeptFile:
    def __init__(self, fd, mode="r", closefd=True):
        self.fd = fd
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False            # the descriptor is never closed
    def write(self, data):
        kept.append((self.fd, bytes(data[:16])))
        return os.write(self.fd, data)
real_io = _external._io
_external._io = types.SimpleNamespace(FileIO=KeptFile, open_code=real_io.open_code)
sys.path.insert(0, os.path.dirname(victim))
attempt("load", lambda: __import__("helper").VALUE)
_external._io = real_io
for fd, header in kept:
    evil = header + marshal.dumps(compile(evil_source, __file__, "exec", dont_inherit=True))
    attempt("overwrite", os.pwrite, fd, evil, 0)
'''

#: The same stand-in writing the attacker's bytes instead of the ``data`` it is handed.
OTHER_BYTES = '''
class OtherFile:
    def __init__(self, fd, mode="r", closefd=True):
        self.fd = fd
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        os.close(self.fd)
        return False
    def write(self, data):
        evil = bytes(data[:16]) + marshal.dumps(compile(evil_source, __file__, "exec", dont_inherit=True))
        return os.write(self.fd, evil)
real_io = _external._io
_external._io = types.SimpleNamespace(FileIO=OtherFile, open_code=real_io.open_code)
sys.path.insert(0, os.path.dirname(victim))
attempt("load", lambda: __import__("helper").VALUE)
_external._io = real_io
'''


#: A victim whose source names a codec in its coding line that is not one of the tokenizer's fast
#: paths (utf-8, latin-1, ascii). The distribution clears the interpreter's codec cache (register
#: and unregister a search function of its own: no event) and puts its own CodecInfo in
#: ``encodings._cache``: the import system and the check both decode the victim's bytes to the
#: attacker's text, agree, and the cache of the attacker's code is written beside the victim.
CODEC = '''
import codecs, encodings, encodings.cp1252 as cp
def decode(data, errors="strict"):
    return evil_source, len(data)
def encode(text, errors="strict"):
    return codecs.charmap_encode(text, errors, cp.encoding_table)
def nothing(name):
    return None
codecs.register(nothing)
if hasattr(codecs, "unregister"):   # 3.10+: clears the interpreter's codec cache
    codecs.unregister(nothing)
encodings._cache["cp1252"] = codecs.CodecInfo(encode, decode, name="cp1252")
sys.path.insert(0, os.path.dirname(victim))
attempt("load", lambda: __import__("helper").VALUE)
'''


@DECISIONS
def test_review_a_codec_of_the_distributions_decodes_the_victims_source_for_both_compiles(tmp_path, decision):
    first, second, ran = _poisoning(tmp_path, decision, CODEC, b"# -*- coding: cp1252 -*-\nVALUE = 1\n")
    assert not ran, "ESCAPE: the planted cache ran as the application\n" + _tail(first) + _tail(second)


#: The distribution's codec runs inside the audit hook while the core checks the rename (its
#: compile decodes the source): what it does there must be judged as its own.
CODEC_NESTED = CODEC.replace("    return evil_source, len(data)", """    calls.append(1)
    attempt("spawn_%d" % len(calls), os.system, "touch " + marker + ".nested%d" % len(calls))
    return evil_source, len(data)""").replace("import codecs,", "calls = []\nimport codecs,")


@DECISIONS
def test_review_a_codec_runs_inside_the_check_and_acts_there(tmp_path, decision):
    _nothing_spawns_inside_the_check(tmp_path, decision, CODEC_NESTED, b"# -*- coding: cp1252 -*-\nVALUE = 1\n")


#: No codec needed: the fallback's check takes ``data`` from _write_atomic's frame and calls len()
#: and slices on it (bytecode.matches); a bytearray subclass from a rebound _code_to_timestamp_pyc
#: passes its isinstance test and runs the distribution's code inside the decision.
SNEAKY = '''
calls = []
class Sneaky(bytearray):
    def __len__(self):
        calls.append(1)
        attempt("spawn_%d" % len(calls), os.system, "touch " + marker + ".nested%d" % len(calls))
        return bytearray.__len__(self)
real = _external._code_to_timestamp_pyc
_external._code_to_timestamp_pyc = lambda *args: Sneaky(real(*args))
sys.path.insert(0, os.path.dirname(victim))
attempt("load", lambda: __import__("helper").VALUE)
if not calls:
    len(Sneaky(b"baseline"))   # without capimport nothing calls len(): show the act itself works
'''


@DECISIONS
def test_review_a_bytearray_subclass_runs_inside_the_fallbacks_check(tmp_path, decision):
    _nothing_spawns_inside_the_check(tmp_path, decision, SNEAKY)


#: Code that runs in the importing thread itself, at moments the distribution does not choose:
#: every new descriptor it sees is dup'ed; once the import is done the attacker's bytecode goes,
#: behind an unchecked-hash header, through each copy still writable (the cache renamed into
#: place). A loader subclass with a new mtime each load has the cache rewritten until one is caught.
GRAB = '''
import stat
seen, grabbed = set(), []
for n in range(3, 64):
    try:
        st = os.fstat(n)
        seen.add((st.st_dev, st.st_ino))
    except OSError:
        pass
def grab():
    for n in range(3, 64):
        try:
            st = os.fstat(n)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            try:
                grabbed.append(os.dup(n))
            except OSError:
                pass
class Loader(_machinery.SourceFileLoader):
    stale = [0]
    def path_stats(self, path):
        return {"mtime": self.stale[0], "size": None}
def writable(d):
    try:
        os.pwrite(d, b"", 0)
        return True
    except OSError:
        return False
def load_until_caught(stop, loads):
    for i in range(loads):
        Loader.stale[0] = i + 1
        spec = _util.spec_from_file_location("helper", victim, loader=Loader("helper", victim))
        attempt("load", lambda: _bootstrap._load(spec).VALUE)
        if any(writable(d) for d in grabbed):
            break
    stop()
    header = _util.MAGIC_NUMBER + b"\\1\\0\\0\\0" + b"\\0" * 8
    evil = bytes(header) + marshal.dumps(compile(evil_source, __file__, "exec", dont_inherit=True))
    written = [d for d in grabbed if writable(d)]
    for d in written:
        os.pwrite(d, evil, 0)
    RESULTS["caught"] = len(written)
'''

#: A finalizer that runs at every collection (it makes the next cycle as it dies) with the
#: collector asked to run at every allocation: it runs inside whatever allocates, capimport's own
#: cache write included (no event for gc.set_threshold, os.fstat or os.dup).
FINALIZER = GRAB + '''
import gc
class Cycle:
    def __del__(self):
        grab()
        make()
def make():
    cycle = Cycle()
    cycle.self = cycle
gc.set_threshold(1)
make()
load_until_caught(lambda: gc.set_threshold(700, 10, 10), 20)   # caught in the first load
'''

#: A signal handler run every millisecond of the importing thread, between any two bytecodes.
SIGNAL = GRAB + '''
import signal
signal.signal(signal.SIGALRM, lambda number, frame: grab())
signal.setitimer(signal.ITIMER_REAL, 1e-3, 1e-3)
load_until_caught(lambda: signal.setitimer(signal.ITIMER_REAL, 0), 400)
'''


#: No global rebound: a second thread dups every new descriptor while the import system writes
#: the cache (sys.setswitchinterval makes it run between any two of _write_atomic's bytecodes; no
#: event for os.dup, os.fstat or os.pwrite).
RACE = GRAB + '''
import threading
sys.setswitchinterval(1e-6)
done = []
def keep_grabbing():
    while not done:
        grab()
thread = threading.Thread(target=keep_grabbing)
thread.start()
load_until_caught(lambda: (done.append(1), thread.join()), 1000)
'''


#: The probes that put the attacker's bytecode where the victim's cache goes; each works without
#: capimport (checked by _poisoning), so none passes vacuously.
PLANTING = {"rebound-io-keeps-the-descriptor": KEEP_FD, "rebound-io-writes-other-bytes": OTHER_BYTES,
            "a-thread-dups-the-descriptor": RACE, "a-finalizer-dups-the-descriptor": FINALIZER,
            "a-signal-handler-dups-the-descriptor": SIGNAL}


@DECISIONS
@pytest.mark.parametrize("probe", list(PLANTING))
def test_review_no_planted_cache_runs_as_the_application(tmp_path, decision, probe):
    first, second, ran = _poisoning(tmp_path, decision, PLANTING[probe])
    assert not ran, "ESCAPE: the planted cache ran as the application\n" + _tail(first) + _tail(second)


# ---------------------------------------------------------------------------------------------
# False denials: legitimate caches the import system writes for the application
# ---------------------------------------------------------------------------------------------

LIB = {
    "bom.py": b"\xef\xbb\xbfVALUE = 'bom'\n",
    "crlf.py": b"X = 1\r\nY = (\r\n  2)\r\nVALUE = 'crlf'\r\n",
    "feed.py": b"\x0cX = 1\n\x0c\ndef f():\n\x0c    return 1\nVALUE = 'feed'\n",
    "longline.py": b"VALUE = 'long' if [" + b",".join(b"%d" % i for i in range(60000)) + b"] else 0\n",
    "future.py": b"from __future__ import annotations\ndef f(x: Undefined) -> int: ...\nVALUE = 'future'\n",
    "ns/inner.py": b"VALUE = 'ns'\n",
    "pkg/__init__.py": b"",
    "pkg/mod.py": b"VALUE = 'pkgmod'\nif __name__ == '__main__':\n    import pkg.sub\n    print('RAN', pkg.sub.VALUE)\n",
    "pkg/sub.py": b"VALUE = 'sub'\n",
    "tool": b"VALUE = 'script'\n",
    "reloaded.py": b"VALUE = 'reloaded'\n",
    "later.py": b"VALUE = 'later'\n",
    "compiled/a.py": b"VALUE = 'a'\n",
}

FALSE_APP = '''
import importlib, importlib.machinery, importlib.util, sys, os, compileall, py_compile
sys.path.insert(0, "lib")
sys.dont_write_bytecode = False
import bom, crlf, feed, longline, future, ns.inner, reloaded
importlib.reload(reloaded)
if "script" in sys.argv:   # an extensionless script loaded as a module (a common idiom in tests and tools)
    tool = importlib.machinery.SourceFileLoader("tool", os.path.abspath("lib/tool")).load_module()
else:
    tool = type(sys)("tool"); tool.VALUE = "script"
compileall.compile_dir("lib/compiled", quiet=1)
py_compile.compile("lib/later.py")
print("IMPORTED", bom.VALUE, crlf.VALUE, feed.VALUE, longline.VALUE, future.VALUE, ns.inner.VALUE, tool.VALUE)
'''

EXPECTED_CACHES = ["a", "bom", "crlf", "feed", "future", "inner", "later", "longline", "reloaded"]


def _false_scenario(tmp_path, app=FALSE_APP):
    scenario = Scenario(tmp_path, config=NO_GRANTS, app=app)
    for name, data in LIB.items():
        path = scenario.project / "lib" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return scenario


def _clear_caches(scenario):
    for cache in list((scenario.project / "lib").rglob("__pycache__")):
        shutil.rmtree(cache)


def _cached(scenario):
    return sorted({p.name.split(".")[0].split("-")[0] for p in (scenario.project / "lib").rglob("*.pyc")})


@DECISIONS
def test_review_false_denials_ordinary_sources_reload_scripts_compileall(tmp_path, decision):
    scenario = _false_scenario(tmp_path)
    plain = scenario.plain(extra_env=WRITES)
    assert "IMPORTED bom crlf feed long future ns script" in plain.stdout, _tail(plain)
    assert _cached(scenario) == EXPECTED_CACHES, _cached(scenario)
    _clear_caches(scenario)
    guarded = scenario.guarded(extra_env=dict(decision, **WRITES))
    assert "IMPORTED bom crlf feed long future ns script" in guarded.stdout, _tail(guarded)
    assert _cached(scenario) == EXPECTED_CACHES and "lacks" not in guarded.stderr, \
        f"FALSE DENIAL: {_cached(scenario)}\n" + _tail(guarded)


@DECISIONS
def test_review_false_denial_run_as_module(tmp_path, decision):
    """``python -m capimport -m pkg.mod``: runpy's get_code caches pkg/mod.py, the import of pkg.sub."""
    scenario = _false_scenario(tmp_path)
    env = dict(decision, **WRITES)
    lib = scenario.project / "lib"
    plain = subprocess_run(scenario, False, lib, env)
    assert "RAN sub" in plain.stdout and _cached(scenario) == ["__init__", "mod", "sub"], _tail(plain) + str(_cached(scenario))
    shutil.rmtree(lib / "pkg" / "__pycache__")
    guarded = subprocess_run(scenario, True, lib, env)
    assert "RAN sub" in guarded.stdout, _tail(guarded)
    assert _cached(scenario) == ["__init__", "mod", "sub"] and "lacks" not in guarded.stderr, "FALSE DENIAL\n" + _tail(guarded)


THREADED_APP = '''
import sys, threading
sys.path.insert(0, "lib")
sys.dont_write_bytecode = False
stop = threading.Event()
worker = threading.Thread(target=stop.wait)
worker.start()
import bom, crlf
stop.set()
worker.join()
import feed
print("IMPORTED", bom.VALUE, crlf.VALUE, feed.VALUE)
'''


@DECISIONS
def test_review_imports_while_another_thread_runs(tmp_path, decision):
    """No false denial with a second thread alive. The core writes those caches as any other
    (GIL held, no Python code runs). The fallback writes with Python, so it writes none while
    another thread could copy its descriptor: those modules compile again next run, quietly; the
    one imported after the thread ended is cached."""
    scenario = _false_scenario(tmp_path, THREADED_APP)
    guarded = scenario.guarded(extra_env=dict(decision, **WRITES))
    assert "IMPORTED bom crlf feed" in guarded.stdout, _tail(guarded)
    assert "lacks" not in guarded.stderr and "bytecode" not in guarded.stderr, _tail(guarded)
    expected = ["feed"] if decision else ["bom", "crlf", "feed"]
    assert _cached(scenario) == expected, _cached(scenario)


def subprocess_run(scenario, guarded, cwd, env):
    import subprocess
    from sechelp import PYTHON
    cmd = [PYTHON] + (["-m", "capimport", "--config", str(scenario.project / "pyproject.toml")] if guarded else []) \
        + ["-m", "pkg.mod"]
    return subprocess.run(cmd, cwd=cwd, env=scenario.env(env), capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------------------------------------
# (b) non-module files read through the import system's frames
# ---------------------------------------------------------------------------------------------


