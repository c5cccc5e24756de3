"""Route 8 and route 4: what an extension module's init does while the import system loads it.

An extension module's init (``PyInit_*``, or its ``Py_mod_exec`` slot) is native code with no
Python frame of its own: its Python-level acts (``os.mkdir``, ``os.system`` through the C API)
show the import system's ``_call_with_frames_removed`` innermost. They are the acts of the
distribution that ships the extension, as a Python module's body is (``made_module_acts`` in
``_core.c``): charged to it, so that granting it is what lets them through (black's compiled
``blib2to3`` writes its grammar cache at import on some versions), and never allowed as the
import system's own. Each test builds a real extension with the compiler that built capimport.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig

import pytest
from sechelp import Scenario

DECISIONS = pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])
PHASES = pytest.mark.parametrize("phase", ["single", "multi"])

#: An extension whose init makes a folder and runs a program, recording how each went.
SOURCE = r'''
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int
record(PyObject *module, const char *name, PyObject *result)
{
    const char *outcome = "ok";
    if (result == NULL) {
        outcome = PyErr_ExceptionMatches(PyExc_PermissionError) ? "denied" : "failed";
        PyErr_Clear();
    }
    Py_XDECREF(result);
    return PyModule_AddStringConstant(module, name, outcome);
}

static int
act(PyObject *module)
{
    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL) {
        return -1;
    }
    int rc = record(module, "mkdir", PyObject_CallMethod(os, "mkdir", "s", MKDIR_PATH));
    rc = rc < 0 ? rc : record(module, "system", PyObject_CallMethod(os, "system", "s", SYSTEM_COMMAND));
    Py_DECREF(os);
    return rc;
}

#ifdef MULTI_PHASE
static PyModuleDef_Slot slots[] = {{Py_mod_exec, (void *)act}, {0, NULL}};
static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT, "natinit", NULL, 0, NULL, slots};
PyMODINIT_FUNC PyInit_natinit(void) { return PyModuleDef_Init(&definition); }
#else
static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT, "natinit", NULL, -1, NULL};
PyMODINIT_FUNC
PyInit_natinit(void)
{
    PyObject *module = PyModule_Create(&definition);
    if (module != NULL && act(module) < 0) {
        Py_CLEAR(module);
    }
    return module;
}
#endif
'''

APP = '''
import natinit
print("RESULT", natinit.mkdir, natinit.system)
'''


def _build(tmp_path, phase: str, made, ran) -> str:
    """Compile the extension; its file name (skips where this machine has no C compiler)."""
    source = tmp_path / "natinit.c"
    source.write_text(SOURCE)
    name = "natinit" + sysconfig.get_config_var("EXT_SUFFIX")
    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    if shutil.which(compiler[0]) is None:
        pytest.skip("no C compiler to build a test extension")
    defines = [f'-DMKDIR_PATH="{made}"', f'-DSYSTEM_COMMAND="touch {ran}"']
    defines += ["-DMULTI_PHASE"] if phase == "multi" else []
    command = compiler + ["-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}", *defines,
                          str(source), "-o", str(tmp_path / name)]
    subprocess.run(command, check=True, capture_output=True)
    return name


def _scenario(tmp_path, phase: str, grants: str):
    made, ran = tmp_path / "made", tmp_path / "ran"
    name = _build(tmp_path, phase, made, ran)
    config = f'[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nnative = {grants}\n'
    scenario = Scenario(tmp_path, config=config, app=APP,
                        dists={"native": {"files": {"native_helpers.py": ""}}})
    shutil.copy(tmp_path / name, scenario.site / name)
    record = next(scenario.site.glob("native-*.dist-info")) / "RECORD"
    record.write_text(record.read_text() + f"{name},,\n")   # as an installer would claim it
    return scenario, made, ran


def _clear(*paths) -> None:
    for path in paths:
        if path.is_dir():
            path.rmdir()
        elif path.exists():
            path.unlink()


@DECISIONS
@PHASES
def test_an_extension_modules_init_acts_as_its_distribution(tmp_path, decision, phase):
    """With no grant, the init's folder and program are denied, charged to ``native`` by name
    (before: the program ran as the import system, the folder was charged to code nobody owns)."""
    scenario, made, ran = _scenario(tmp_path, phase, "[]")
    plain = scenario.plain()
    assert "RESULT ok ok" in plain.stdout and made.is_dir() and ran.exists(), plain.stdout + plain.stderr[-2000:]
    _clear(made, ran)
    guarded = scenario.guarded(extra_env=decision)
    assert "RESULT denied denied" in guarded.stdout, guarded.stdout + guarded.stderr[-2000:]
    assert not made.exists() and not ran.exists()
    assert "'native' 1.0 lacks 'fs'" in guarded.stderr, guarded.stderr[-2000:]
    assert "'native' 1.0 lacks 'process'" in guarded.stderr, guarded.stderr[-2000:]
    assert "code no distribution owns" not in guarded.stderr, guarded.stderr[-2000:]


@DECISIONS
@PHASES
def test_granting_the_distribution_lets_its_extensions_init_act(tmp_path, decision, phase):
    """No false denial: granting ``native`` what its init does is enough (the ``default`` grant,
    for code nobody owns, stays empty)."""
    scenario, made, ran = _scenario(tmp_path, phase, '["fs", "process"]')
    guarded = scenario.guarded(extra_env=decision)
    assert "RESULT ok ok" in guarded.stdout, guarded.stdout + guarded.stderr[-2000:]
    assert made.is_dir() and ran.exists()
    assert "lacks" not in guarded.stderr, guarded.stderr[-2000:]


#: An extension in package ``natpkg`` whose init reads data with ``pkgutil.get_data``, as black's
#: compiled ``blib2to3`` reads its grammar: its own package's, and another distribution's.
READER = r'''
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int
record(PyObject *module, const char *name, PyObject *result)
{
    const char *outcome = result == NULL ? (PyErr_ExceptionMatches(PyExc_PermissionError) ? "denied" : "failed")
                          : PyBytes_Check(result) && PyBytes_GET_SIZE(result) ? "ok" : "empty";
    PyErr_Clear();
    Py_XDECREF(result);
    return PyModule_AddStringConstant(module, name, outcome);
}

static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT, "_reader", NULL, -1, NULL};
PyMODINIT_FUNC
PyInit__reader(void)
{
    PyObject *module = PyModule_Create(&definition);
    PyObject *pkgutil = module ? PyImport_ImportModule("pkgutil") : NULL;
    if (pkgutil == NULL) {
        Py_XDECREF(module);
        return NULL;
    }
    int rc = record(module, "own", PyObject_CallMethod(pkgutil, "get_data", "ss", "natpkg", "data.txt"));
    rc = rc < 0 ? rc : record(module, "other", PyObject_CallMethod(pkgutil, "get_data", "ss", "victim", "secret.txt"));
    Py_DECREF(pkgutil);
    if (rc < 0) {
        Py_CLEAR(module);
    }
    return module;
}
'''


@DECISIONS
def test_an_extensions_init_reads_its_own_package_data_and_others_only_with_a_grant(tmp_path, decision):
    """No false denial: an extension's init reading its own package's data through
    ``pkgutil.get_data`` needs no grant (a distribution reads its own files), as black's compiled
    grammar loading does. Another distribution's data, read the same way, is the extension's
    distribution's act: denied without ``fs-readonly``, whichever loader ``get_data`` belongs to
    (before: allowed, because the victim's own loader read it)."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    if shutil.which(compiler[0]) is None:
        pytest.skip("no C compiler to build a test extension")
    name = "_reader" + sysconfig.get_config_var("EXT_SUFFIX")
    (tmp_path / "reader.c").write_text(READER)
    subprocess.run(compiler + ["-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
                               str(tmp_path / "reader.c"), "-o", str(tmp_path / name)], check=True, capture_output=True)
    config = ('[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\n'
              'native = []\nvictim = ["fs-readonly"]\n')
    app = "import natpkg._reader as r\nprint('RESULT', r.own, r.other)\n"
    scenario = Scenario(tmp_path, config=config, app=app,
                        dists={"native": {"files": {"natpkg/__init__.py": "", "natpkg/data.txt": "grammar\n"}},
                               "victim": {"files": {"victim/__init__.py": "", "victim/secret.txt": "s3cret\n"}}})
    shutil.copy(tmp_path / name, scenario.site / "natpkg" / name)
    record = next(scenario.site.glob("native-*.dist-info")) / "RECORD"
    record.write_text(record.read_text() + f"natpkg/{name},,\n")
    plain = scenario.plain()
    assert "RESULT ok ok" in plain.stdout, plain.stdout + plain.stderr[-2000:]
    guarded = scenario.guarded(extra_env=decision)
    assert "RESULT ok denied" in guarded.stdout, guarded.stdout + guarded.stderr[-2000:]
    assert "'native' 1.0 lacks 'fs-readonly'" in guarded.stderr, guarded.stderr[-2000:]
    assert "secret.txt" in guarded.stderr and "data.txt" not in guarded.stderr, guarded.stderr[-2000:]
