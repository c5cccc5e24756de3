"""Routes 6 and 7: probes from the adversarial review of the core's tamper rules (_core_tamper.h).

Each attack works under plain python (checked) and failed under ``python -m capimport`` before
its fix; crafted bytecode (test 6) is held only because the import system's name no longer
carries a privilege outside an import (docs/threat-model.md)."""

from __future__ import annotations

import importlib.util
import marshal
import os
import zipfile

import pytest

from sechelp import ATTEMPT, Scenario, denied, ok, results

@pytest.fixture(autouse=True, params=["native", "pure"])
def decision(request, monkeypatch):
    """Each probe against both decisions: the core's rules and the pure-Python fallback's."""
    if request.param == "pure":
        guarded = Scenario.guarded

        def pure(self, *args, **kwargs):
            kwargs["extra_env"] = dict(kwargs.get("extra_env") or {}, CAPIMPORT_PURE_PYTHON="1")
            return guarded(self, *args, **kwargs)
        monkeypatch.setattr(Scenario, "guarded", pure)
    return request.param


CONFIG = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'
          'granted = ["fs-readonly", "process"]\n')
FROZEN = "<frozen importlib._bootstrap>"

HELPERS = '''
import importlib, importlib.machinery, importlib.util, marshal, os, sys
M = importlib.machinery
HERE = os.path.dirname(__file__)
def blob(tag):
    with open(os.path.join(HERE, tag + ".bin"), "rb") as f:
        return marshal.loads(f.read())
def load_with(loader, name, origin=None):
    spec = importlib.util.spec_from_loader(name, loader, origin=origin)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return "ran"
'''


def _touch(marks, tag):
    return f"import os\nos.system('touch {marks / tag}')\n"


def _run(tmp_path, code, tags=(), extra_files=None, prepare=None):
    """Run *code* (defining run()) as distribution evil; return (plain, guarded, marks)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    files = {"evil/__init__.py": ATTEMPT + HELPERS + code, **{f"evil/{t}.bin": "" for t in tags},
             **(extra_files or {})}
    scenario = Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n", dists={
        "evil": {"files": files}, "granted": {"files": {"granted/__init__.py": "X = 1\n"}}})
    for t in tags:
        (scenario.site / "evil" / f"{t}.bin").write_bytes(marshal.dumps(compile(_touch(marks, t), FROZEN, "exec")))
    if prepare:
        prepare(scenario, marks)
    plain = results(scenario.plain())
    made = sorted(os.listdir(marks))
    for f in made:
        os.unlink(marks / f)
    guarded = results(scenario.guarded())
    return plain, made, guarded, sorted(os.listdir(marks))


# 1 ------------------------------------------------------------------ the import system's trampoline
def test_call_with_frames_removed_is_not_the_import_systems_own_act(tmp_path):
    code = f'''
from importlib import _bootstrap as B
def run():
    attempt("system", B._call_with_frames_removed, os.system, "touch {tmp_path}/marks/system")
    src = "import os; os.system('touch {tmp_path}/marks/forged')"
    attempt("forged", lambda: B._call_with_frames_removed(exec, B._call_with_frames_removed(compile, src, "{FROZEN}", "exec"), {{}}))
    report()
'''
    plain, made, guarded, left = _run(tmp_path, code)
    assert made == ["forged", "system"], plain
    assert left == [], guarded
    assert denied(guarded["system"]) and "'process'" in guarded["system"], guarded
    assert denied(guarded["forged"]) and "another's" in guarded["forged"], guarded


# 2 ------------------------------------------------------------------ a "trusted" loader whose methods are the attacker's
def test_a_trusted_loader_class_does_not_vouch_for_methods_it_did_not_bring(tmp_path):
    code = '''
def instance_dict():
    loader = M.SourcelessFileLoader("xa", os.__file__)
    code = blob("a")
    loader.get_code = lambda name: code          # shadows the class method; type(loader) is exact
    return load_with(loader, "xa")
def class_patch():
    code, orig = blob("b"), M.SourcelessFileLoader.get_code
    M.SourcelessFileLoader.get_code = lambda self, name: code
    try:
        return load_with(M.SourcelessFileLoader("xb", os.__file__), "xb")
    finally:
        M.SourcelessFileLoader.get_code = orig
def look_through():
    import capimport.attribution
    code = blob("c")
    class L(M.SourcelessFileLoader):
        helper = capimport.attribution.walk         # every *function* is capimport's: looked through
        get_code = property(lambda self: (lambda name: code))
    return load_with(L("xc", os.__file__), "xc")
def run():
    attempt("a", instance_dict); attempt("b", class_patch); attempt("c", look_through)
    report()
'''
    plain, made, guarded, left = _run(tmp_path, code, tags="abc")
    assert made == ["a", "b", "c"], plain
    assert left == [], guarded
    for tag in "abc":   # refused at import, not merely harmless because the payload runs from evil's frames
        assert denied(guarded[tag]) and "whose code names" in guarded[tag], (tag, guarded)


# 3 ------------------------------------------------------------------ a loader with no Python function of its own
def test_a_loader_without_python_functions_cannot_name_its_owner_through_the_spec(tmp_path):
    code = '''
def run():
    code = blob("f")
    class L(M.SourcelessFileLoader):
        get_code = property(lambda self: (lambda name: code))   # no PyFunction in the class dict
    attempt("f", load_with, L("xf", __file__), "xf", sys.modules["__main__"].__file__)
    report()
'''
    plain, made, guarded, left = _run(tmp_path, code, tags="f")
    assert made == ["f"], plain
    assert left == [], guarded
    assert denied(guarded["f"]) and "whose code names" in guarded["f"], guarded


# 4 ------------------------------------------------------------------ /proc/self/fd/N classified once, then re-pointed
def test_a_proc_fd_name_classified_as_the_standard_library_is_not_trusted_later(tmp_path):
    code = '''
def run():
    fd = os.open(os.__file__, os.O_RDONLY); os.dup2(fd, 100); os.close(fd)
    try:
        compile("", "/proc/self/fd/100", "exec")     # denied, but caches "/proc/self/fd/100" -> stdlib
    except BaseException:
        pass
    fd = os.open(os.path.join(HERE, "d.pyc"), os.O_RDONLY); os.dup2(fd, 100); os.close(fd)
    attempt("d", load_with, M.SourcelessFileLoader("xd", "/proc/self/fd/100"), "xd")
    report()
'''
    def prepare(scenario, marks):
        (scenario.site / "evil" / "d.pyc").write_bytes(
            importlib.util.MAGIC_NUMBER + b"\0" * 12 + marshal.dumps(compile(_touch(marks, "d"), FROZEN, "exec")))
    plain, made, guarded, left = _run(tmp_path, code, extra_files={"evil/d.pyc": ""}, prepare=prepare)
    assert made == ["d"], plain
    assert left == [], guarded
    assert denied(guarded["d"]) and "whose code names" in guarded["d"], guarded


# 5 ------------------------------------------------------------------ zip members "inside" the archive by prefix only
def test_a_zip_modules_code_names_cannot_climb_out_of_the_archive(tmp_path):
    code = '''
def run():
    import zipimport
    zi = zipimport.zipimporter(os.path.join(HERE, "g.zip"))
    if hasattr(zi, "find_spec"):
        spec = zi.find_spec("xg")
        attempt("g", spec.loader.exec_module, importlib.util.module_from_spec(spec))
    else:                                   # 3.9: no exec_module
        attempt("g", zi.load_module, "xg")
    report()
'''
    def prepare(scenario, marks):
        zpath = scenario.site / "evil" / "g.zip"
        forged = str(zpath) + "/../../../project/app.py"     # lexically the application's file
        with zipfile.ZipFile(zpath, "w") as zf:
            zf.writestr("xg.pyc", importlib.util.MAGIC_NUMBER + b"\0" * 12
                        + marshal.dumps(compile(_touch(marks, "g"), forged, "exec")))
    plain, made, guarded, left = _run(tmp_path, code, extra_files={"evil/g.zip": ""}, prepare=prepare)
    assert made == ["g"], plain
    assert left == [], guarded


# 6 ------------------------------------------------------------------ MAKE_FUNCTION on a code object that is not a constant
def test_crafted_bytecode_cannot_make_a_function_of_forged_code(tmp_path):
    code = '''
import dis
def run():
    def mk(c):
        return c
    op = dis.opmap
    if sys.version_info >= (3, 11):
        raw = bytes([op["RESUME"], 0, op["LOAD_FAST"], 0, op["MAKE_FUNCTION"], 0, op["RETURN_VALUE"], 0])
        mk.__code__ = mk.__code__.replace(co_code=raw, co_linetable=b"", co_exceptiontable=b"")   # names evil's file only
    else:   # MAKE_FUNCTION also takes a qualified name before 3.11
        raw = bytes([op["LOAD_FAST"], 0, op["LOAD_CONST"], 0, op["MAKE_FUNCTION"], 0, op["RETURN_VALUE"], 0])
        mk.__code__ = mk.__code__.replace(co_code=raw, co_consts=("h",))
    attempt("h", lambda: mk(blob("h"))())
    report()
'''
    plain, made, guarded, left = _run(tmp_path, code, tags="h")
    assert made == ["h"], plain
    assert left == [], guarded


# 7 ------------------------------------------------------------------ sys.meta_path as a list subclass
def test_a_meta_path_list_subclass_cannot_hide_the_guard(tmp_path):
    code = f'''
import functools, shutil, types
class Finder:
    def find_spec(self, name, path=None, target=None):
        if name != "evil_payload":
            return None
        loader = types.SimpleNamespace(create_module=lambda spec: None,
                                       exec_module=functools.partial(shutil.rmtree, "{tmp_path}/victim"))
        return M.ModuleSpec(name, loader)
class Hiding(list):
    def __iter__(self):
        return iter(list.__getitem__(self, slice(1, None)))   # the import system never sees item 0
def run():
    sys.meta_path = Hiding(sys.meta_path)
    sys.meta_path.append(Finder())
    report()
'''
    victim = tmp_path / "victim"
    app = "import evil\nevil.run()\ntry:\n    import evil_payload\nexcept BaseException:\n    pass\n"
    scenario = Scenario(tmp_path, config=CONFIG, app=app, dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + HELPERS + code}}})
    victim.mkdir()
    scenario.plain()
    assert not victim.exists()
    victim.mkdir()
    scenario.guarded()
    assert victim.exists()


# 8 ------------------------------------------------------------------ a vault's frame through a traceback
def test_a_vaults_frame_is_not_reachable_through_a_traceback(tmp_path):
    target = tmp_path / "marks" / "attached.db"
    code = f'''
import sqlite3
def original_set_authorizer():
    init = sqlite3.Connection.__dict__["__init__"]
    if not hasattr(init, "__closure__"):
        return sqlite3.Connection.set_authorizer      # plain python: nothing to get round
    invoke = [c.cell_contents for c in init.__closure__ if getattr(c.cell_contents, "__name__", "") == "invoke"][0]
    vault = invoke.__defaults__[0][-1]
    try:
        vault.throw(KeyError("x"))
        return sqlite3.Connection.set_authorizer     # the vault answered: nothing leaked
    except KeyError as exc:
        tb = exc.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        table = tb.tb_frame.f_locals["table"]         # tb_frame, not gi_frame: no vault rule
    return [v[0] for k, v in table.items() if "set_authorizer" in k][0]
def run():
    original_set = original_set_authorizer()
    con = sqlite3.connect(":memory:")
    original_set(con, lambda *args: sqlite3.SQLITE_OK)   # set_authorizer(None) clears it only from 3.11
    attempt("attach", con.execute, "ATTACH DATABASE '{target}' AS x")
    attempt("write", con.execute, "CREATE TABLE x.t (a)")
    report()
'''
    plain, made, guarded, left = _run(tmp_path, code)
    assert made == ["attached.db"], plain
    assert left == [], guarded


# 9 ------------------------------------------------------------------ memory safety: borrowed sys.meta_path
def test_integrity_does_not_use_a_meta_path_freed_by_its_own_iter(tmp_path):
    code = '''
class Finders:
    def __init__(self, items):
        self.items = items
    def __iter__(self):
        sys.meta_path = list(self.items)   # drops the last reference; integrity() only borrowed it
        return iter(self.items)
    def __length_hint__(self):
        return 8
def run():
    sys.meta_path = Finders(list(sys.meta_path))
    exec(compile("1", "<s>", "exec"))      # the exec event's args do not hold meta_path
    attempt("survived", lambda: 1)
    report()
'''
    scenario = Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + HELPERS + code}}})
    assert scenario.plain().returncode == 0
    proc = scenario.guarded()
    assert proc.returncode >= 0, f"crashed with signal {-proc.returncode}"


# 10 ----------------------------------------------------------------- by design: a rewriting import hook owns what it rewrites
def test_a_module_typeguards_import_hook_rewrites_is_typeguards_code(tmp_path):
    """By design (docs/threat-model.md, "What capimport cannot stop"): a loader a distribution wrote
    makes the code it hands the import system, so typeguard's (or beartype's) instrumented modules
    are typeguard's: the application's module acts with typeguard's grant, and a distribution's
    module it rewrites needs typeguard to hold ``ffi``. Grant the hook what the modules need, or
    install it in test runs only. (Skipped where typeguard is not installed.)"""
    typeguard = pytest.importorskip("typeguard")
    app = '''
import json, typeguard
typeguard.install_import_hook(["mypkg", "victim"])
out = {}
for name in ("mypkg", "victim"):
    try:
        out[name] = __import__(name).write(name + ".txt")
    except BaseException as e:
        out[name] = "denied:" + type(e).__name__
print(json.dumps(out))
'''
    body = "def write(p: str) -> str:\n    open(p, 'w').write('x')\n    return 'ok'\n"
    config = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
              'typeguard = ["fs-readonly", "env-readonly"]\nvictim = ["fs"]\n')
    scenario = Scenario(tmp_path, config=config, app=app, dists={"victim": {"files": {"victim/__init__.py": body}}})
    (scenario.project / "mypkg").mkdir()
    (scenario.project / "mypkg" / "__init__.py").write_text(body)
    env = {"PYTHONPATH": os.pathsep.join([str(scenario.site), str(scenario.project),
                                         os.path.dirname(os.path.dirname(typeguard.__file__)),
                                         scenario.env()["PYTHONPATH"].split(os.pathsep)[-1]])}
    assert results(scenario.plain(extra_env=env)) == {"mypkg": "ok", "victim": "ok"}
    guarded = results(scenario.guarded(extra_env=env))
    assert guarded["mypkg"].startswith("denied:") and guarded["victim"].startswith("denied:"), guarded
