"""Known gaps, kept honest: attacks that still work under capimport today.

Each test here *asserts that the attack succeeds* under ``python -m capimport``
so that docs/threat-model.md's "open" column is backed by evidence, and so
that whoever closes a gap is told to move it to the closed column (the test
then fails and must be rewritten as a test that the act has no effect).
"""

from __future__ import annotations

import os

import pytest
from sechelp import ATTEMPT, Scenario, denied, ok, results

#: The pure-Python fallback of the decision (what runs where no C compiler built the core).
PURE_PYTHON = {"CAPIMPORT_PURE_PYTHON": "1"}

CONFIG = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'


def _scenario(tmp_path, code):
    return Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n",
                    dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})


def test_gap_without_the_native_core_rebinding_capimports_classes_disables_enforcement(tmp_path):
    """Open (route 7) in the pure-Python fallback only (no C compiler, or ``CAPIMPORT_PURE_PYTHON=1``):
    class attributes and instance state of capimport's enforcer are plain Python objects.

    Setting a class attribute raises no audit event, so a distribution that
    imports ``capimport.enforcer`` can replace ``Enforcer.decide``. With the
    native core the same attack is denied
    (``test_sec_native_core.py::test_rebinding_capimports_python_does_not_change_a_native_decision``).
    """
    marker = tmp_path / "written"
    code = f'''
def run():
    import capimport.enforcer as enforcer
    enforcer.Enforcer.decide = lambda *args, **kwargs: None
    attempt("write", lambda: open({str(marker)!r}, "w").close())
    report()
'''
    scenario = _scenario(tmp_path, code)
    guarded = results(scenario.guarded(extra_env=PURE_PYTHON))
    assert ok(guarded["write"]) and marker.exists(), guarded


def test_gap_a_python_child_started_through_a_shell_is_not_rewritten(tmp_path):
    """Open (route 5), by design: a shell is any program.

    ``os.system`` and ``shell=True`` run ``/bin/sh``; the Python the shell then
    starts is not seen, so its command line is not rewritten to start under
    capimport. Holding ``process`` for a shell is holding it for every program
    (docs/threat-model.md); grant ``process`` for named programs instead.
    """
    marker = tmp_path / "written"
    code = f'''
import os, sys, shlex
def run():
    child = "open({str(marker)!r}, 'w').close()"
    attempt("system", lambda: os.system(shlex.join([sys.executable, "-c", child])))
    report()
'''
    shell = os.path.realpath("/bin/sh")   # the program os.system runs, as the process scope names it
    config = CONFIG.replace('evil = ["fs-readonly"]', f'evil = {{ fs-readonly = ["/"], process = ["{shell}"] }}')
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    guarded = results(scenario.guarded())
    assert guarded["system"] == "ok:0" and marker.exists(), guarded


def test_gap_a_cffi_backend_another_party_loaded_is_native_code_at_hand(tmp_path):
    """Open (route 8): once the application (or a distribution granted ``ffi``) has loaded cffi's
    backend, a distribution without ``ffi`` can use it through ``sys.modules`` or the loaded
    ``cffi`` package: its calls raise no audit event. Loading it is refused
    (``test_sec_routes.py::test_the_cffi_backend_needs_ffi_in_every_mode``); using objects a
    native library hands out is the class of gap docs/threat-model.md lists under native code.
    """
    import pytest
    pytest.importorskip("cffi")
    code = '''
def run():
    import cffi
    attempt("raw_memory", lambda: cffi.FFI().cast("long *", id(run))[0] > 0)
    report()
'''
    scenario = Scenario(tmp_path, config=CONFIG, app="import cffi\ncffi.FFI()\nimport evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    guarded = results(scenario.guarded())
    assert guarded["raw_memory"] == "ok:True", guarded


def test_gap_without_the_native_core_rebinding_a_standard_library_function_widens_a_grant(tmp_path):
    """Open (route 7) in the pure-Python fallback only: its decision calls standard-library
    Python functions (``os.path.realpath`` to resolve a path), looked up where anyone can
    rebind them.

    A distribution holding ``fs`` on one folder rebinds ``posixpath.realpath`` so
    that every path resolves into that folder, then writes outside it. The
    native core resolves paths with lstat(2)/readlink(2) and is not fooled
    (``test_sec_native_core.py``, the ``posixpath_realpath`` attack).
    """
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    marker = tmp_path / "outside"
    code = f'''
def run():
    import posixpath
    real = posixpath.realpath
    posixpath.realpath = lambda path, *args, **kwargs: {str(allowed / "x")!r}
    try:
        attempt("write", lambda: open({str(marker)!r}, "w").close())
    finally:
        posixpath.realpath = real
    report()
'''
    config = CONFIG.replace('evil = ["fs-readonly"]', f'evil = {{ fs-readonly = true, fs = ["{allowed}"] }}')
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    guarded = results(scenario.guarded(extra_env=PURE_PYTHON))
    assert ok(guarded["write"]) and marker.exists(), guarded


def test_gap_without_the_native_core_a_wrapper_with_an_empty_chain_runs_a_builtin_as_the_application(tmp_path):
    """Open in the pure-Python fallback only (route 7): deferred callables run inside a Python
    wrapper whose frames end the walk and whose chain is plain data, so a distribution can build
    one with an empty chain around a builtin. The native core's wrappers are C callables around
    chains only the core mints (``test_sec_inherited_chains.py``)."""
    marker = tmp_path / "marker"
    code = f'''
import os
def run():
    from capimport.guards.boundary import Accountable
    from capimport import enforcer
    attempt("write", Accountable(os.system, (), enforcer.active().inherited), "touch {marker}")
    report()
'''
    scenario = _scenario(tmp_path, code)
    guarded = results(scenario.guarded(extra_env=PURE_PYTHON))
    assert guarded["write"] == "ok:0" and marker.exists(), guarded


def test_gap_a_distribution_can_change_what_the_application_reads_through_python_objects(tmp_path):
    """Open, by design (docs/threat-model.md, "What capimport cannot stop"): capimport decides who
    acts and with which grant, not whether the Python objects other code reads tell the truth. A
    distribution without ``env`` can shadow ``os.environ``'s methods on the instance (or rebind
    ``os.getenv``, ``shutil.which``, any function), and the application then reads its values:
    here a ``PATH`` that makes ``subprocess`` look for programs in the distribution's folder.
    What the application then runs is decided as the application's act, so a ``process`` grant
    scoped to named programs still refuses a substitute (found by the environment's review)."""
    code = '''
import os
def run():
    real_get = type(os.environ).get
    attempt("instance_get", lambda: setattr(os.environ, "get",
            lambda key, default=None: "/tmp/evil-bin" if key == "PATH" else real_get(os.environ, key, default)))
    report()
'''
    app = ("import os, json, evil\nevil.run()\n"
           "print(json.dumps({'getenv': os.getenv('PATH'), 'exec_path': os.get_exec_path()}))\n")
    scenario = Scenario(tmp_path, config=CONFIG, app=app, dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    seen = results(scenario.guarded(extra_env={"PATH": "/usr/bin:/bin"}))
    assert seen["getenv"] == "/tmp/evil-bin" and seen["exec_path"] == ["/tmp/evil-bin"], seen


def test_gap_a_standard_library_function_planted_on_a_module_runs_as_its_caller(tmp_path):
    """Open (route 4): a module attribute set by a distribution is wrapped with the planter's chain
    only when the callable has no Python frame of its own that names where it came from (builtins,
    partials, string-compiled code). A standard-library Python function (``subprocess.getoutput``)
    has frames, but the standard library's frames are looked through, so planted on a module the
    application calls, it runs as the application. Wrapping every standard-library function or class
    a distribution stores on a module would break ``isinstance`` and compat shims (six, future); the
    fix is to decide by where the code comes from (a review finding, kept open)."""
    marker = tmp_path / "function"
    code = '''
import string, subprocess
def run():
    attempt("function", setattr, string, "capwords", subprocess.getoutput)
    report()
'''
    app = f"import string, evil\nevil.run()\nstring.capwords('touch {marker}')\n"
    scenario = Scenario(tmp_path, config=CONFIG, app=app,
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    scenario.guarded()
    assert marker.exists()


def test_gap_a_distribution_runs_any_module_file_it_can_name_through_the_import_system(tmp_path):
    """Open, by design (route 2/6): the import system loads modules from ``sys.path`` for anyone
    (``DESIGN.md``: frameworks import the application's modules by name), so a distribution holding
    no ``fs-readonly`` at all can run a ``.py`` file anywhere by putting its folder on ``sys.path``,
    or with a finder it plants, and read what the module defines. Reading the file directly is
    denied (checked first). Files that are no module (a ``.env``, a key) are closed:
    ``test_sec_import_reads.py`` (docs/threat-model.md, "What capimport cannot stop")."""
    secret = tmp_path / "private" / "settings.py"
    secret.parent.mkdir()
    secret.write_text("TOKEN = 's3cret'\n")
    code = f'''
import importlib, importlib.util, sys
class Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "stolen_settings":
            return importlib.util.spec_from_file_location(name, {str(secret)!r})
        return None
def run():
    attempt("direct", lambda: open({str(secret)!r}).read())
    sys.meta_path.append(Finder())
    attempt("through_a_finder", lambda: importlib.import_module("stolen_settings").TOKEN)
    sys.path.append({str(secret.parent)!r})
    attempt("through_sys_path", lambda: importlib.import_module("settings").TOKEN)
    report()
'''
    config = '[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = []\n'
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    guarded = results(scenario.guarded())
    assert denied(guarded["direct"]), guarded
    assert guarded["through_a_finder"] == "ok:s3cret", guarded
    assert guarded["through_sys_path"] == "ok:s3cret", guarded


#: A callable with no Python frame that makes MARKS/<name> however it is called.
_PLANTED = '''
import functools, os
def planted(name):
    return functools.partial(set().update, map(os.mkdir, [os.path.join(MARKS, name)]))
'''


def test_gap_without_the_native_core_a_weak_reference_callback_runs_as_the_application(tmp_path):
    """Open in the pure-Python fallback only (route 4): ``weakref.ref`` is a type, and only the
    native core can gate its instance maker (a C slot) to wrap a frameless callback with its
    registrant's chain. Replacing ``weakref.ref`` with a function would break ``isinstance`` and
    every subclass (``KeyedRef``, ``WeakMethod``). Closed with the core:
    ``test_sec_callbacks.py::test_callbacks_the_interpreter_calls_later_run_as_their_registrant``."""
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f"MARKS = {str(marks)!r}\n" + _PLANTED + '''
import weakref
class Victim:
    pass
VICTIM = Victim()
def run():
    global REF
    REF = weakref.ref(VICTIM, planted("weakref_ref"))
'''
    app = "import evil\nevil.run()\nevil.VICTIM = None\n"
    scenario = Scenario(tmp_path, config=CONFIG, app=app, dists={"evil": {"files": {"evil/__init__.py": code}}})
    scenario.guarded()
    assert os.listdir(marks) == []
    scenario.guarded(extra_env=PURE_PYTHON)
    assert os.listdir(marks) == ["weakref_ref"]


def test_gap_a_frameless_callable_in_a_distributions_class_or_a_registry_runs_as_its_caller(tmp_path):
    """Open (route 4; docs/threat-model.md, "Callables a distribution hands over"): a builtin, a
    ``partial`` or string-compiled code stored in a class (``__del__``, ``__repr__``, a
    ``property``'s getter), in a registry dict (``copyreg.dispatch_table``), handed to a
    standard-library Python setter (``logging.setLogRecordFactory``), exported by the
    distribution's own module or returned by its function runs as whoever calls it: the
    interpreter dropping the application's last reference, the application's ``repr``,
    ``pickle.dumps`` or own call. Nothing of the planter is on the stack then, and a reference
    carries no record of who chose it: the same wrapping that would catch these would charge
    every re-exported builtin (``numpy.sqrt``) and every generated method (attrs compiles
    ``__init__`` from a string, calling the converters its user chose) to the wrong party."""
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f"MARKS = {str(marks)!r}\n" + _PLANTED + '''
import copyreg, logging
namespace = {"os": os, "MARKS": MARKS}
exec("def compiled(self):\\n    os.mkdir(os.path.join(MARKS, 'compiled'))\\n", namespace)
class Handle:
    __del__ = planted("del")
    __repr__ = planted("repr")
    __str__ = namespace["compiled"]
    size = property(planted("property"))
exported = planted("exported")
def run():
    copyreg.pickle(Handle, planted("copyreg"))
    logging.setLogRecordFactory(planted("record_factory"))
    return Handle()
def helper():
    return planted("returned")
'''
    app = '''
import logging, pickle, evil
handle = evil.run()
for act in (lambda: repr(handle), lambda: str(handle), lambda: handle.size, lambda: pickle.dumps(handle),
            lambda: logging.getLogger("app").error("x"), evil.exported, lambda: evil.helper()()):
    try:
        act()
    except Exception:
        pass
logging.setLogRecordFactory(logging.LogRecord)
del handle
'''
    scenario = Scenario(tmp_path, config=CONFIG, app=app, dists={"evil": {"files": {"evil/__init__.py": code}}})
    scenario.guarded()
    assert sorted(os.listdir(marks)) == ["compiled", "copyreg", "del", "exported", "property", "record_factory",
                                         "repr", "returned"]
