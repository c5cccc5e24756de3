"""Route 7: regression tests from the review of the core's gates (each was a bypass or a crash).

Every probe runs as a distribution granted nothing (or what its grant says) whose module
defines ``run()``; the marks it tries to make land in ``SECRET``. Under plain ``python`` the
direct act works (the test cannot pass vacuously); under ``python -m capimport`` nothing may
appear in ``SECRET`` and the process must not crash.
"""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

from sechelp import ATTEMPT, Scenario, ok, results

pytestmark = pytest.mark.skipif(importlib.util.find_spec("capimport._core") is None,
                                reason="capimport._core is not built (no C compiler)")

PROBES = {
    'kwarg_key_subclass': ('[]', '''
import os
class K(str):
    __hash__ = str.__hash__
    def __eq__(self, other):
        return False                  # the gate's dict lookup never finds it; the original's parser does
def run():
    target = os.path.join(SECRET, "via_kwkey")
    attempt("direct_mkfifo", os.mkfifo, target + "_direct")
    attempt("direct_stat", lambda: os.stat(os.path.join(SECRET, "key")).st_size)
    attempt("mkfifo_kwkey", lambda: os.mkfifo(**{K("path"): target}))
    attempt("stat_kwkey", lambda: os.stat(**{K("path"): os.path.join(SECRET, "key")}).st_size)
    attempt("readlink_kwkey", lambda: os.readlink(**{K("path"): "/proc/self/exe"}))
    attempt("listdir_sanity", lambda: os.path.exists(target))
    report()
'''),
    'tuple_mutation': ('{ fs-readonly = ["/"] }', '''
import os
class P:
    def __fspath__(self): return SECRET
def run():
    t = (P(),)
    attempt("stat_star", lambda: os.stat(*t).st_mode > 0)
    attempt("tuple_item_type", lambda: type(t[0]).__name__)
    report()
'''),
    'report_class_property': ('[]', '''
import os, subprocess
class P:
    def __init__(self, p): self.p = p
    def __fspath__(self): return self.p
    __class__ = property(os.mkfifo)     # isinstance(x, str) in safe_repr reads __class__ -> gate called from report.py
def run():
    attempt("direct_mkfifo", os.mkfifo, os.path.join(SECRET, "direct"))
    attempt("popen_denied", lambda: subprocess.Popen(["true", P(os.path.join(SECRET, "via_report"))]))
    attempt("exists_after", lambda: os.path.exists(os.path.join(SECRET, "via_report")))
    report()
'''),
    'check_describe': ('[]', '''
import os, functools
def run():
    from capimport import _core
    attempt("direct_mkfifo", os.mkfifo, os.path.join(SECRET, "direct"))
    # a denied check() whose describe is a C callable: the report calls it from capimport's frames
    attempt("check", _core.check, [("ffi", "none", None, None, "probe")], None,
            functools.partial(os.mkfifo, os.path.join(SECRET, "via_describe")))
    report()
'''),
    'gate_after_internal': ('[]', '''
import os
def run():
    from capimport import _core, enforcer
    target = os.path.join(SECRET, "via_gate_after")
    attempt("direct_mkfifo", os.mkfifo, target)
    class TP(tuple):
        def __fspath__(self): return target
    # after(result, args) = Enforcer.internal(os.mkfifo, TP): os.mkfifo(TP) is then called from
    # enforcer.py while the gate holds internal_depth > 0 -> no decision.
    def make():
        return _core.gate(lambda *x: os.mkfifo, "post", "probe", before=lambda a, k: (TP(a), k),
                          after=getattr(enforcer.active(), "internal", print))
    attempt("gate_made", lambda: repr(make()))
    attempt("gate_call", lambda: make()(1))
    report()
'''),
    'imp_post_exec': ('[]', '''
import os, _imp
def run():
    target = os.path.join(SECRET, "via_imp_post")
    class X:
        def __fspath__(self): return target
        __name__ = property(os.mkfifo)    # post_exec reads getattr(args[0], "__name__") as capimport
    attempt("direct_mkfifo", os.mkfifo, target + "_direct")
    attempt("exec_builtin", _imp.exec_builtin, X())
    report()
'''),
    'dynamic_callback': ('[]', '''
import os, subprocess
NS = {"os": os}
def run():
    target = os.path.join(SECRET, "via_dynamic")
    NS["target"] = target
    exec(compile("def fget(self):\\n    os.mkfifo(target)\\n    return None\\n", "<dyn>", "exec"), NS)
    class P:
        __class__ = property(NS["fget"])  # a Python callback, but compiled as '<dyn>': seen through
    attempt("direct_dynamic", NS["fget"], None)
    attempt("popen_denied", lambda: subprocess.Popen(["true", P()]))
    report()
'''),
    'sqlite_busy_attach': ('[]', '''
import os, sqlite3, operator, subprocess
def run():
    target = os.path.join(SECRET, "via_attach.db")
    conn = sqlite3.connect(":memory:")
    attempt("direct_attach", conn.executescript, f"ATTACH DATABASE '{target}_direct' AS d; CREATE TABLE d.t(x);")
    class P:
        executescript = conn.executescript      # a builtin method: no frame of evil's when called
        __class__ = property(operator.methodcaller("executescript",
                                                   f"ATTACH DATABASE '{target}' AS x; CREATE TABLE x.t(x);"))
    attempt("popen_denied", lambda: subprocess.Popen(["true", P()]))
    report()
'''),
    'fork_exec_toctou_listsub': ('{ process = ["/bin/true"], fs-readonly = ["/"] }', '''
import os, subprocess, _posixsubprocess
class L(list):
    pass                              # not `type(x) is list`: the converter leaves it mutable
EXE = L()
class S(str):
    def __str__(self):
        EXE[0] = b"/bin/sh"
        return str.__str__(self)
def run():
    mark = os.path.join(SECRET, "via_toctou")
    attempt("sh_direct", lambda: subprocess.run(["/bin/sh", "-c", "true"]).returncode)
    real = _posixsubprocess.fork_exec
    def shim(*args):
        args = list(args)
        EXE[:] = [S("/bin/true")]
        args[0] = [b"true", b"-c", ("touch " + mark).encode()]
        args[1] = EXE
        return real(*args)
    # subprocess calls its _fork_exec alias (3.11+) or _posixsubprocess.fork_exec (3.9, 3.10)
    holder, attr = (subprocess, "_fork_exec") if hasattr(subprocess, "_fork_exec") else (_posixsubprocess, "fork_exec")
    saved = getattr(holder, attr)
    setattr(holder, attr, shim)
    try:
        attempt("toctou", lambda: subprocess.run(["/bin/true"]).returncode)
    finally:
        setattr(holder, attr, saved)
    attempt("exe_list_now", lambda: repr(EXE))
    report()
'''),
    'check_api_uaf': ('[]', '''
ITEMS = []
class Env:
    def __str__(self):
        ITEMS.clear()                 # frees the item tuple and with it the (borrowed) api str
        return "HOME"
def run():
    from capimport import _core
    api = "".join(["api-", "x" * 40])  # a fresh str held only by the item tuple
    ITEMS[:] = [("env", "env", Env(), None, api)]
    del api
    attempt("check", _core.check, ITEMS, None, "d")
    report()
'''),
    'residual_stat_leak': ('[]', '''
import os
def run():
    from capimport import _core, enforcer
    target = os.path.join(SECRET, "key")
    attempt("direct_stat", lambda: os.stat(target).st_size)
    class TP(tuple):
        def __fspath__(self): return target
    def make():
        return _core.gate(lambda *x: os.stat, "post", "probe", before=lambda a, k: (TP(a), k),
                          after=getattr(enforcer.active(), "internal", print))
    attempt("gate_after_stat", lambda: make()(1).st_size)
    attempt("gate_after_readlink", lambda: _core.gate(lambda *x: os.readlink, "post", "p", before=lambda a, k: (type("T", (tuple,), {"__fspath__": lambda s: "/proc/self/cwd"})(a), k), after=getattr(enforcer.active(), "internal", print))(1))
    report()
'''),
}

#: The act that must work under plain python, per probe (so that no probe passes vacuously).
WITNESS = {
    "kwarg_key_subclass": "direct_mkfifo", "tuple_mutation": "stat_star", "report_class_property": "direct_mkfifo",
    "check_describe": "direct_mkfifo", "gate_after_internal": "direct_mkfifo", "imp_post_exec": "direct_mkfifo",
    "dynamic_callback": "direct_dynamic", "sqlite_busy_attach": "direct_attach", "fork_exec_toctou_listsub": "sh_direct",
    "check_api_uaf": "check", "residual_stat_leak": "direct_stat",
}


def _scenario(tmp_path, name):
    grants, code = PROBES[name]
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("k")
    body = ATTEMPT + f"SECRET = {str(secret)!r}\n" + textwrap.dedent(code)
    config = f'[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = {grants}\n'
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": body}}})
    return scenario, secret


@pytest.mark.parametrize("name", sorted(PROBES))
def test_review_probe_has_no_effect(tmp_path, name):
    scenario, secret = _scenario(tmp_path, name)
    plain = results(scenario.plain())
    assert ok(plain[WITNESS[name]]), plain
    for entry in secret.iterdir():
        if entry.name != "key":
            entry.unlink()
    proc = scenario.guarded()
    guarded = results(proc)            # the process ran to its report: no crash
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in secret.iterdir()) == ["key"], guarded
    if name == "tuple_mutation":        # the gate converts into its own tuple, not the caller's
        assert guarded["tuple_item_type"] == "ok:P", guarded
    if name == "residual_stat_leak":    # after/before helpers of one's own are refused
        assert not ok(guarded["gate_after_stat"]) and not ok(guarded["gate_after_readlink"]), guarded
    if name == "kwarg_key_subclass":
        assert not ok(guarded["stat_kwkey"]) and not ok(guarded["readlink_kwkey"]), guarded
