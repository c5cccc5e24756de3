"""Route 6 through route 4: bytecode caches written through the import system.

The import system writes a module's bytecode cache, and the next run executes that cache as the
module's own code. A distribution granted nothing that gets the import system to cache *its* code
under another module's name has its code run as that module from then on: a persistent escape.
Its privilege now covers a cache write only when the cache is the one capimport would have
written (``capimport/bytecode.py``, ``_core_bytecode.h``): the file ``cache_from_source`` names for
the source ``get_code`` read, holding that source compiled.

Each attack runs twice without capimport (the first run plants, the second runs the attacker's
code as the victim) and twice under it (the second run must not run it), in both decisions.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest
from sechelp import ATTEMPT, Scenario, ok, results

PURE_PYTHON = {"CAPIMPORT_PURE_PYTHON": "1"}
DECISIONS = pytest.mark.parametrize("decision", [{}, PURE_PYTHON], ids=["native", "pure"])
NO_GRANTS = '[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = []\n'
#: Bytecode writing on, whatever the test run's own environment says.
WRITES = {"PYTHONDONTWRITEBYTECODE": ""}

VICTIM_SOURCE = "VALUE = 1\n"
#: The attacker's code: it acts only in a run other than the one that plants it.
EVIL_SOURCE = "import subprocess, sys\nif sys.argv[1:] != ['plant']:\n    subprocess.run(['touch', %r])\nVALUE = 1\n"

#: How each attack gets the import system to cache the attacker's code as the application's
#: ``helper.py`` (``victim``). ``evil_source`` spawns ``touch marker``.
ATTACKS = {
    # A loader subclass whose source_to_code compiles other code under the victim's name.
    "source_to_code": '''
    class Loader(_machinery.SourceFileLoader):
        def source_to_code(self, data, path, *, _optimize=-1):
            return compile(evil_source, path, "exec", dont_inherit=True)
    spec = _util.spec_from_file_location("helper", victim, loader=Loader("helper", victim))
    attempt("load", lambda: _bootstrap._load(spec))
''',
    # A loader subclass whose get_data hands the import system other source for the victim's file.
    "get_data": '''
    class Loader(_machinery.SourceFileLoader):
        def get_data(self, path):
            if path == victim:
                return evil_source.encode()
            return super().get_data(path)
    spec = _util.spec_from_file_location("helper", victim, loader=Loader("helper", victim))
    attempt("load", lambda: _bootstrap._load(spec))
''',
    # The standard loader, with the function that serialises the code rebound: an ordinary
    # ``import helper`` caches the attacker's code.
    "rebound_serialiser": '''
    real = _external._code_to_timestamp_pyc
    def serialise(code, mtime=0, source_size=0):
        if code.co_filename == victim:
            code = compile(evil_source, victim, "exec", dont_inherit=True)
        return real(code, mtime, source_size)
    _external._code_to_timestamp_pyc = serialise
    sys.path.insert(0, os.path.dirname(victim))
    attempt("load", lambda: __import__("helper").VALUE)
''',
    # Honest bytecode of the attacker's own file, cached where the victim's cache goes: the
    # attacker's file has the victim's size and modification time, so the next run takes it.
    "foreign_target": '''
    real = _external.cache_from_source
    def where(path, *args, **kwargs):
        if path.endswith(os.sep + "payload.py"):
            return real(victim)
        return real(path, *args, **kwargs)
    _external.cache_from_source = where
    attempt("load", lambda: __import__("evil.payload"))
''',
}

PLANT = '''
import importlib._bootstrap as _bootstrap, importlib._bootstrap_external as _external
import importlib.machinery as _machinery, importlib.util as _util, os, sys, types, marshal
def run(victim, marker):
    sys.dont_write_bytecode = False     # no event
    evil_source = {evil_source!r}
{attack}
    report()
'''

APP = '''
import sys
sys.path.insert(0, {project!r})
if sys.argv[1:] == ["plant"]:
    import evil
    evil.run({victim!r}, {marker!r})
else:
    import helper
    print("IMPORTED", helper.VALUE)
'''


def _scenario(tmp_path, attack: str):
    marker = tmp_path / "spawned"
    project = tmp_path / "project"
    project.mkdir(parents=True, exist_ok=True)
    victim = project / "helper.py"
    payload = EVIL_SOURCE % str(marker)
    victim.write_text(VICTIM_SOURCE + "#" * (len(payload) - len(VICTIM_SOURCE) - 1) + "\n")
    plant = PLANT.format(evil_source=payload, attack="\n".join(line[4:] if line.startswith("    ") else line
                                          for line in ATTACKS[attack].splitlines()).replace("\n", "\n    "))
    scenario = Scenario(tmp_path, config=NO_GRANTS,
                        app=APP.format(project=str(project), victim=str(victim), marker=str(marker)),
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + plant, "evil/payload.py": payload}}})
    payload_file = scenario.site / "evil" / "payload.py"
    assert payload_file.stat().st_size == victim.stat().st_size
    os.utime(payload_file, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns))
    return scenario, victim, marker


def _tail(proc):
    return f"rc={proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"


@DECISIONS
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_bytecode_a_distribution_has_the_import_system_cache_does_not_run_as_its_victim(tmp_path, attack, decision):
    """Each way of having the import system cache a distribution's code as the application's
    module works without capimport (the next run executes it as the application) and has no
    effect under it: capimport writes caches itself, only of the source compiled; a write of
    anything else is charged to code nobody owns together with the distribution and the import
    goes on without a cache, so the next run runs the application's real source."""
    scenario, victim, marker = _scenario(tmp_path, attack)
    cache = victim.parent / "__pycache__"
    plain = scenario.plain("plant", extra_env=WRITES)
    assert list(cache.glob("helper.*.pyc")), _tail(plain)
    second = scenario.plain(extra_env=WRITES)
    time.sleep(0.3)
    assert marker.exists(), "the planted cache did not run as the application: " + _tail(second)
    marker.unlink()
    shutil.rmtree(cache)

    env = dict(decision, **WRITES)
    first = scenario.guarded("plant", extra_env=env)
    if attack == "rebound_serialiser":
        # The code compiled is honest: the core writes its cache (the very code object it kept);
        # the fallback, which keeps none, compares the bytes handed over and refuses them.
        assert list(cache.glob("helper.*.pyc")) or "lacks 'fs'" in first.stderr, _tail(first)
    else:   # what is being written is not the source compiled: charged, reported, no cache
        assert "lacks 'fs'" in first.stderr and "__pycache__" in first.stderr, _tail(first)
    second = scenario.guarded(extra_env=env)
    time.sleep(0.3)
    assert "IMPORTED 1" in second.stdout, _tail(second)
    assert not marker.exists(), "the planted cache ran as the application: " + _tail(second)
    assert "lacks" not in second.stderr, _tail(second)   # the honest cache is written now


MODULES = {
    "pkg/__init__.py": "from . import inner\n",
    "pkg/inner.py": '''
"""A docstring."""
import asyncio

CONSTANTS = (1, 2.5, -0.0, 3j, b"bytes", None, ..., frozenset({1, 2}), ("nested", (1,)))

def outer(x, *args, key=None, **kw):
    total = 0
    def inner(y):
        nonlocal total
        total += y
        return lambda z: x + y + z + total
    return inner

class Thing:
    attribute: int = 3
    def method(self):
        return [i * 2 for i in range(3)] + list({k: v for k, v in zip("ab", "cd")})
    @property
    def prop(self):
        return f"{self.attribute!r:>5}"

async def coroutine():
    async with asyncio.Lock():
        await asyncio.sleep(0)
    return [x async for x in agen()]

async def agen():
    yield 1

try:
    raise ValueError
except ValueError as error:
    del error
''',
    "groups.py": "try:\n    raise ValueError\nexcept* ValueError:\n    pass\n" if sys.version_info >= (3, 11) else "",
    "latin.py": "# -*- coding: latin-1 -*-\nTEXT = 'caf\xe9'\n",
    "empty.py": "",
    "dotted.name.py": "VALUE = 2\n",
}


def _modules_scenario(tmp_path):
    app = '''
import importlib.util, sys
sys.path.insert(0, "lib")
import pkg, groups, latin, empty, helper
spec = importlib.util.spec_from_file_location("dotted", "lib/dotted.name.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print("IMPORTED", pkg.inner.Thing().prop.strip(), latin.TEXT, helper.VALUE, module.VALUE)
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nhelper = []\n'
    scenario = Scenario(tmp_path, config=config, app=app,
                        dists={"helper": {"files": {"helper/__init__.py": "VALUE = 1\n"}}})
    lib = scenario.project / "lib"
    for name, text in MODULES.items():
        path = lib / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("latin-1" if name == "latin.py" else "utf-8"))
    return scenario, lib


def _caches(scenario, lib) -> list:
    return sorted(p.name for p in list(lib.rglob("*.pyc")) + list((scenario.site / "helper").rglob("*.pyc")))


@DECISIONS
@pytest.mark.parametrize("optimize", ["", "1", "2"], ids=["O0", "O1", "O2"])
def test_bytecode_the_import_system_writes_for_ordinary_modules_is_written(tmp_path, decision, optimize):
    """No false denial: a package, closures, classes, comprehensions, coroutines, ``except*``, a
    latin-1 source with its coding line, an empty module, a file name with two dots loaded from a
    relative path, and a distribution's module all get their bytecode cache, at each optimization
    level; the next run reads them back."""
    scenario, lib = _modules_scenario(tmp_path)
    env = dict(decision, **WRITES)
    if optimize:
        env["PYTHONOPTIMIZE"] = optimize
    plain = scenario.plain(extra_env=env)
    assert "IMPORTED 3 café 1 2" in plain.stdout, _tail(plain)
    expected = _caches(scenario, lib)
    assert len(expected) == 7 and all(("opt-" in name) == bool(optimize) for name in expected), expected
    for path in list(lib.rglob("__pycache__")) + list((scenario.site / "helper").rglob("__pycache__")):
        shutil.rmtree(path)
    guarded = scenario.guarded(extra_env=env)
    assert "IMPORTED 3 café 1 2" in guarded.stdout, _tail(guarded)
    assert "lacks" not in guarded.stderr, _tail(guarded)
    assert _caches(scenario, lib) == expected
    again = scenario.guarded(extra_env=env)
    assert "IMPORTED 3 café 1 2" in again.stdout and "lacks" not in again.stderr, _tail(again)


@DECISIONS
def test_bytecode_under_a_cache_prefix_is_written_and_checked(tmp_path, decision):
    """No false denial under ``PYTHONPYCACHEPREFIX``: the cache mirrors the source's folders under
    the prefix (the standard library's and capimport's caches are written there too)."""
    scenario, lib = _modules_scenario(tmp_path)
    prefix = tmp_path / "prefix"
    env = dict(decision, PYTHONPYCACHEPREFIX=str(prefix), **WRITES)
    guarded = scenario.guarded(extra_env=env)
    assert "IMPORTED 3 café 1 2" in guarded.stdout, _tail(guarded)
    assert "lacks" not in guarded.stderr, _tail(guarded)
    mirrored = [prefix / str(folder).lstrip("/") for folder in (lib, scenario.site / "helper")]
    assert sum(len(list(folder.rglob("*.pyc"))) for folder in mirrored) == 7, sorted(prefix.rglob("*"))


@DECISIONS
def test_bytecode_a_source_that_does_not_compile_the_same_twice_gets_no_cache(tmp_path, decision):
    """The check compiles the source again and compares: a source file changed between the import
    system's compile and the write (here by the loader itself, granted ``fs``) gets no cache
    rather than a cache of code that is not in the file, and the import itself goes on."""
    code = '''
import importlib._bootstrap as _bootstrap, importlib.machinery as _machinery, importlib.util as _util, sys
def run(victim):
    sys.dont_write_bytecode = False
    class Loader(_machinery.SourceFileLoader):
        def get_data(self, path):
            data = super().get_data(path)
            if path == victim:
                with open(victim, "a") as file:
                    file.write("CHANGED = True\\n")
            return data
    spec = _util.spec_from_file_location("helper", victim, loader=Loader("helper", victim))
    attempt("load", lambda: _bootstrap._load(spec).VALUE)
    report()
'''
    project = tmp_path / "project"
    project.mkdir()
    victim = project / "helper.py"
    victim.write_text(VICTIM_SOURCE)
    config = NO_GRANTS.replace("evil = []", 'evil = ["fs"]')
    scenario = Scenario(tmp_path, config=config, app=f"import evil\nevil.run({str(victim)!r})\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    guarded = scenario.guarded(extra_env=dict(decision, **WRITES))
    assert ok(results(guarded)["load"]), _tail(guarded)
    assert "lacks 'fs'" in guarded.stderr, _tail(guarded)
    assert not list(project.rglob("*.pyc")), _tail(guarded)


@DECISIONS
def test_bytecode_is_checked_without_the_import_systems_kept_compile(tmp_path, decision):
    """The native core keeps the import system's own compile of each source (``cache_compile``,
    set as ``importlib._bootstrap_external.compile``) so that the check needs no second compile.
    With that global removed, the check compiles again: ordinary caches are still written, and a
    lying loader's still are not."""
    scenario, lib = _modules_scenario(tmp_path)
    app = scenario.project / "app.py"
    app.write_text("import importlib._bootstrap_external as e\ne.__dict__.pop('compile', None)\n" + app.read_text())
    guarded = scenario.guarded(extra_env=dict(decision, **WRITES))
    assert "IMPORTED 3 café 1 2" in guarded.stdout, _tail(guarded)
    assert "lacks" not in guarded.stderr, _tail(guarded)
    assert len(_caches(scenario, lib)) == 7, _caches(scenario, lib)
