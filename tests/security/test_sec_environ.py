"""Route 1: environment reads raise no audit event; the environ guard hides what is not granted."""

from __future__ import annotations

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
