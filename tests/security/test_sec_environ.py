"""Route 1: environment reads raise no audit event; the environ guard hides what is not granted."""

from __future__ import annotations

import importlib.util
import os

import pytest

from sechelp import ATTEMPT, Scenario, denied, ok, results

SECRET = "s3cret-value-41"

EVIL = ATTEMPT + '''
import os, sys, gc
def run():
    attempt("getitem", lambda: os.environ["SECRET"])
    attempt("getenv", lambda: os.getenv("SECRET"))
    attempt("contains", lambda: "SECRET" in os.environ)
    attempt("dict", lambda: dict(os.environ).get("SECRET"))
    attempt("copy", lambda: os.environ.copy().get("SECRET"))
    attempt("items", lambda: [v for k, v in os.environ.items() if k == "SECRET"])
    attempt("values", lambda: [v for v in os.environ.values() if v.startswith("s3cret")])
    attempt("keys", lambda: "SECRET" in list(os.environ))
    attempt("repr", lambda: "s3cret" in repr(os.environ))
    attempt("environb", lambda: os.environb[b"SECRET"])
    attempt("getenvb", lambda: os.getenvb(b"SECRET"))
    attempt("data", lambda: os.environ._data[b"SECRET"])
    attempt("base_method", lambda: os._Environ.__getitem__(os.environ, "SECRET"))
    attempt("vars_data", lambda: vars(os.environ).get("_data", {}).get(b"SECRET"))
    attempt("posix", lambda: sys.modules["posix"].environ[b"SECRET"])
    def fresh_posix():
        import importlib
        saved = sys.modules.pop("posix")
        try:
            return importlib.import_module("posix").environ[b"SECRET"]
        finally:
            sys.modules["posix"] = saved
    attempt("fresh_posix", fresh_posix)
    attempt("proc_self", lambda: open("/proc/self/environ", "rb").read().count(b"s3cret"))
    attempt("proc_pid", lambda: open("/proc/%d/environ" % os.getpid(), "rb").read().count(b"s3cret"))
    attempt("proc_osopen", lambda: os.read(os.open("/proc/self/environ", os.O_RDONLY), 1 << 20).count(b"s3cret"))
    attempt("granted", lambda: os.environ["VISIBLE_NAME"])
    attempt("granted_iter", lambda: sorted(k for k in os.environ if k in ("VISIBLE_NAME", "SECRET")))
    report()
'''

CONFIG = '''
[tool.capimport]
mode = "enforce"
[tool.capimport.packages]
evil = { env-readonly = ["VISIBLE_*"], fs-readonly = ["/proc"] }
'''

APP = '''
import os
assert os.environ["SECRET"] == "%s"       # the application itself reads everything
assert "SECRET" in dict(os.environ)
import evil
evil.run()
''' % SECRET


def test_environment_reads_are_hidden_from_a_distribution_without_the_grant(tmp_path):
    scenario = Scenario(tmp_path, config=CONFIG, app=APP, dists={"evil": {"files": {"evil/__init__.py": EVIL}}})
    env = {"SECRET": SECRET, "VISIBLE_NAME": "shown"}
    plain = results(scenario.plain(extra_env=env))
    guarded_proc = scenario.guarded(extra_env=env)
    guarded = results(guarded_proc)
    # Without capimport every route reveals the secret.
    for name in ("getitem", "getenv", "dict", "copy", "environb", "getenvb", "data", "base_method",
                 "vars_data", "posix", "fresh_posix"):
        assert SECRET in plain[name], (name, plain[name])
    assert plain["contains"] == "ok:True" and plain["keys"] == "ok:True" and plain["repr"] == "ok:True"
    assert plain["items"] == plain["values"] == f"ok:['{SECRET}']"
    assert plain["proc_self"] == plain["proc_pid"] == plain["proc_osopen"] == "ok:1"
    # Under capimport none of them does, and the granted name is still readable.
    for name, value in guarded.items():
        assert SECRET not in value and "s3cret" not in value.split(":", 2)[-1] or name == "repr", (name, value)
    assert guarded["getitem"].startswith("denied:KeyError")
    assert guarded["environb"].startswith("denied:KeyError")
    assert guarded["posix"].startswith("denied:KeyError")
    assert guarded["fresh_posix"].startswith("denied:KeyError")
    assert guarded["getenv"] == guarded["getenvb"] == guarded["dict"] == guarded["copy"] == "ok:None"
    assert guarded["contains"] == guarded["keys"] == guarded["repr"] == "ok:False"
    assert guarded["items"] == guarded["values"] == "ok:[]"
    assert denied(guarded["data"]) and denied(guarded["base_method"])  # the raw dict: raised
    assert guarded["vars_data"] == "ok:None"
    for name in ("proc_self", "proc_pid", "proc_osopen"):
        assert denied(guarded[name]), (name, guarded[name])
    assert guarded["granted"] == "ok:shown"
    assert guarded["granted_iter"] == "ok:['VISIBLE_NAME']"
    assert "lacks 'env-readonly'" in guarded_proc.stderr   # the hidden read is reported


def test_environment_writes_still_need_env(tmp_path):
    evil = ATTEMPT + '''
import os, subprocess
def run():
    attempt("set", os.environ.__setitem__, "PATH", "/tmp/evil-bin")
    attempt("setdefault", os.environ.setdefault, "INJECTED", "1")
    attempt("del", os.environ.__delitem__, "SECRET")
    attempt("vault_store", lambda: os.environb.__class__.__setitem__(os.environb, b"INJECTED2", b"1"))
    report()
'''
    app = '''
import os, json, evil
evil.run()
print(json.dumps({"path": os.environ["PATH"], "injected": os.environ.get("INJECTED"),
                  "injected2": os.environ.get("INJECTED2"), "secret": os.environ.get("SECRET")}))
'''
    scenario = Scenario(tmp_path, app=app, dists={"evil": {"files": {"evil/__init__.py": evil}}},
                        config='[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["env-readonly"]\n')
    plain = scenario.plain(extra_env={"SECRET": "x"})
    assert results(plain) == {"path": "/tmp/evil-bin", "injected": "1", "injected2": "1", "secret": None}
    guarded = scenario.guarded(extra_env={"SECRET": "x"})
    outcome = results(guarded)
    assert outcome["path"] != "/tmp/evil-bin" and outcome["injected"] is None
    assert outcome["injected2"] is None and outcome["secret"] == "x"
    evil_lines = [line for line in guarded.stdout.splitlines() if line.startswith('{"set"')]
    attacks = __import__("json").loads(evil_lines[0])
    assert all(denied(v) for v in attacks.values()), attacks


NATIVE = pytest.mark.skipif(importlib.util.find_spec("capimport._core") is None
                            or bool(os.environ.get("CAPIMPORT_PURE_PYTHON")),
                            reason="the environment in C memory is the native core's")

REBIND = ATTEMPT + '''
import os, sys, gc, threading
def run():
    attempt("before", lambda: os.environ.get("SECRET"))
    # What switched the Python vault off: its helpers, capimport's per-thread table, its rules.
    from capimport import enforcer
    from capimport.guards import _base, environ
    _base.Guard.busy = lambda self, frame=None: True
    _base.Guard.acting = lambda self, frame: None
    environ._visible = lambda *args: True
    environ._filter = lambda guard, links, pairs, frame, report_hidden: pairs
    active = enforcer.active()
    if active is not None:   # None under plain python
        active._depth[threading.get_ident()] = 1
        active.guard_rules.clear()
    attempt("get", lambda: os.environ.get("SECRET"))
    attempt("getitem", lambda: os.environ["SECRET"])
    attempt("iterate", lambda: "SECRET" in list(os.environ))
    attempt("items", lambda: dict(os.environ.items()).get("SECRET"))
    attempt("values", lambda: "%s" in list(os.environ.values()))
    attempt("len", lambda: len(os.environ) == len([k for k in os.environ]))
    attempt("unbound", lambda: type(os.environ).get(os.environ, "SECRET"))
    attempt("class_dict", lambda: vars(type(os.environ))["get"].__func__(os.environ, "SECRET"))
    view = getattr(getattr(vars(type(os.environ)).get("get"), "__func__", None), "__self__", None)
    attempt("view_referents", lambda: gc.get_referents(view))
    attempt("view_dir", lambda: [name for name in dir(view) if not name.startswith("__")])
    attempt("view_reduce", lambda: view.__reduce_ex__(2))
    attempt("view_new", lambda: type(view)())
    attempt("swap_class_back", lambda: (setattr(os.environ, "__class__", os._Environ), os.environ.get("SECRET")))
    report()
''' % SECRET


@NATIVE
def test_rebinding_capimports_python_does_not_reveal_the_environment(tmp_path):
    """Route 7, the environment: with the native core the environment lives in C memory and
    os.environ's methods are the core's C (no Python of capimport's decides), so rebinding the
    fallback's helpers, the per-thread table or the rules changes nothing; the view itself,
    reached through the class, decides on whoever calls it and lists nothing."""
    scenario = Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": REBIND}}})
    env = {"SECRET": SECRET}
    plain = results(scenario.plain(extra_env=env))
    assert plain["before"] == plain["get"] == plain["unbound"] == f"ok:{SECRET}", plain
    guarded = results(scenario.guarded(extra_env=env))
    assert guarded["before"] == guarded["get"] == "ok:None", guarded
    assert guarded["getitem"].startswith("denied:KeyError"), guarded
    assert guarded["iterate"] == "ok:False" and guarded["items"] == "ok:None", guarded
    assert guarded["values"] == "ok:False" and guarded["len"] == "ok:True", guarded
    assert guarded["unbound"] == guarded["class_dict"] == "ok:None", guarded
    assert denied(guarded["view_referents"]), guarded   # gc walks need ffi, and would find nothing
    assert guarded["view_dir"] == "ok:['contains', 'copy', 'data', 'delitem', 'get', 'getitem', 'items_iter', " \
        "'iter', 'len', 'repr', 'setitem', 'values_iter']", guarded   # methods only: no attribute holds the store
    assert guarded["view_reduce"].startswith("denied:TypeError"), guarded   # nothing to rebuild it from
    assert guarded["view_new"].startswith("denied:TypeError"), guarded
    assert guarded["swap_class_back"].startswith("denied:AttributeError"), guarded   # the original class finds no _data


APP_READS = '''
import os, json
environ = os.environ
out = {
    "get": environ.get("SECRET"), "getitem": environ["SECRET"], "contains": "SECRET" in environ,
    "unbound": type(environ).get(environ, "SECRET"), "getenv": os.getenv("SECRET"),
    "environb": os.environb[b"SECRET"].decode(), "copy": environ.copy()["SECRET"],
    "items": dict(environ.items())["SECRET"], "keys": "SECRET" in environ.keys(),
    "values": "%s" in environ.values(), "len": len(environ) == len(list(environ)),
    "repr": "SECRET" in repr(environ), "missing": environ.get("NOT_SET_ANYWHERE", "default"),
    "pop_default": environ.pop("NOT_SET_ANYWHERE", "gone"),
}
environ["NEW_ONE"] = "1"
environ.setdefault("NEW_TWO", "2")
environ.update(NEW_THREE="3")
os.environb[b"NEW_FOUR"] = b"4"
del environ["NEW_ONE"]
import subprocess, sys
child = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('NEW_TWO'), os.environ.get('NEW_FOUR'), os.environ.get('NEW_ONE'))"],
                       capture_output=True, text=True, env=dict(environ))
out["child"] = child.stdout.strip()
out["inherited"] = subprocess.run(["sh", "-c", "echo $NEW_THREE"], capture_output=True, text=True).stdout.strip()
try:
    environ[1] = "x"
except TypeError as exc:
    out["type_error"] = str(exc)
try:
    del environ["NOT_SET_ANYWHERE"]
except KeyError as exc:
    out["key_error"] = str(exc)
print(json.dumps(out))
''' % SECRET


def test_the_application_reads_and_writes_the_environment_as_without_capimport(tmp_path):
    """No false denials: the application sees, changes and passes on the whole environment, with the
    same types, errors and results as under plain Python."""
    scenario = Scenario(tmp_path, config='[tool.capimport]\nmode = "enforce"\n', app=APP_READS)
    env = {"SECRET": SECRET}
    plain = results(scenario.plain(extra_env=env))
    guarded_proc = scenario.guarded(extra_env=env)
    assert results(guarded_proc) == plain, guarded_proc.stderr
    assert plain["child"] == "2 4 None" and plain["inherited"] == "3" and plain["get"] == SECRET
