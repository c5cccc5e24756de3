"""Route 7 with the native decision core: rebinding capimport's Python, or the standard-library
Python it used to decide with, no longer changes a decision on an audited act.

Each attack first runs under plain ``python`` (where the rebinding is harmless
and the act succeeds, so the test cannot pass vacuously), then under
``python -m capimport``, where the act must be denied and leave no trace.
The fallback without the core (``CAPIMPORT_PURE_PYTHON=1``) keeps the gap:
``test_sec_known_gaps.py`` asserts that it is still there.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from sechelp import ATTEMPT, Scenario, denied, ok, results

pytestmark = pytest.mark.skipif(importlib.util.find_spec("capimport._core") is None,
                                reason="capimport._core is not built (no C compiler)")

#: (name, what to rebind, as Python run inside ``run()`` before the act; restored after it)
REBINDINGS = [
    ("enforcer_decide", "import capimport.enforcer as m; target, attr, value = m.Enforcer, 'decide', "
                        "lambda *a, **k: None"),
    ("enforcer_handle_event", "import capimport.enforcer as m; target, attr, value = m.Enforcer, 'handle_event', "
                              "lambda *a, **k: None"),
    ("accountable_global", "import capimport.enforcer as m; target, attr, value = m, 'accountable', "
                           "lambda chain, deps: []"),
    ("scope_allows_global", "import capimport.enforcer as m; target, attr, value = m, 'scope_allows', "
                            "lambda *a: True"),
    ("walk_global", "import capimport.enforcer as m; target, attr, value = m, 'walk', lambda *a, **k: None"),
    ("checks_for", "import capimport.hook as m; target, attr, value = m, 'checks_for', lambda *a: []"),
    ("posixpath_realpath", "import posixpath as m; target, attr, value = m, 'realpath', "
                           "lambda p, *a, **k: ALLOWED + '/x'"),
    ("instance_mode", "import capimport.enforcer as m; target, attr, value = m.active(), 'mode', 'record'"),
    ("instance_scopes", "import capimport.enforcer as m; target, attr, value = m.active(), 'scopes_of', "
                        "lambda origin: {'fs': None, 'fs-readonly': None}"),
    ("report_hook", "import capimport.enforcer as m; target, attr, value = m.Enforcer, '_native_report', "
                    "lambda *a, **k: None"),
]


def _scenario(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    lines = [ATTEMPT, f"ALLOWED = {str(allowed)!r}\n", f"OUTSIDE = {str(outside)!r}\n", '''
import os

def rebound(setup, act):
    scope = {"ALLOWED": ALLOWED}
    exec(setup, scope)
    target, attr, value = scope["target"], scope["attr"], scope["value"]
    if target is None:
        return act()
    missing = object()
    old = getattr(target, attr, missing)
    setattr(target, attr, value)
    try:
        return act()
    finally:
        if old is missing:
            delattr(target, attr)
        else:
            setattr(target, attr, old)

def write(name):
    def act():
        with open(os.path.join(OUTSIDE, name), "w") as f:
            f.write("x")
        return "written"
    return act

def run():
    try:
        from capimport import native
        module = native.core()
        attempt("native", lambda: bool(module and module.installed()))
    except ImportError:
        attempt("native", lambda: False)
''']
    for name, setup in REBINDINGS:
        lines.append(f"    attempt({name!r}, rebound, {setup!r}, write({name!r}))\n")
    lines.append("    report()\n")
    config = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
              f'evil = {{ fs-readonly = true, fs = ["{allowed}"] }}\n')
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": "".join(lines)}}})
    return scenario, outside


def test_rebinding_capimports_python_does_not_change_a_native_decision(tmp_path):
    scenario, outside = _scenario(tmp_path)
    plain = results(scenario.plain())
    for name, _ in REBINDINGS:
        assert ok(plain[name]), (name, plain)
    for child in outside.iterdir():
        child.unlink()
    guarded = results(scenario.guarded())
    assert guarded["native"] == "ok:True", guarded
    for name, _ in REBINDINGS:
        assert denied(guarded[name]), (name, guarded)
    assert sorted(os.listdir(outside)) == []


def test_a_tampered_report_still_denies_with_a_plain_message(tmp_path):
    """The verdict is reached before Python is asked to word it: a report that returns
    nothing (or raises) is replaced by the core's own message, never by an allowance."""
    scenario, outside = _scenario(tmp_path)
    guarded = results(scenario.guarded())
    assert "denied:CapabilityError:capimport: evil may not use 'fs'" in guarded["report_hook"], guarded


def test_the_core_relabels_a_file_name_only_for_the_party_itself(tmp_path):
    """The core relabels file names itself (``_core_tamper.h``) and offers no entry point to do so
    (``_core.attribute`` is gone): a distribution compiling code under a name nobody owns, for the
    application to call, gets the name labelled as its own, so the code stays its own."""
    out = tmp_path / "out"
    out.mkdir()
    code = f'''
import os
def make():
    name = "/nonexistent/forged.py"
    global RELABEL
    try:
        from capimport import _core
        RELABEL = hasattr(_core, "attribute")
    except ImportError:
        RELABEL = "no core"
    scope = {{}}
    exec(compile("def helper(p):\\n    open(p, 'w').close()\\n", name, "exec"), scope)
    return scope["helper"]
RELABEL = None
helper = make()
'''
    app = (ATTEMPT + "import os, evil\nattempt('relabel', lambda: evil.RELABEL)\n"
           f"attempt('write', evil.helper, os.path.join({str(out)!r}, 'x'))\nreport()\n")
    config = ('[project]\nname = "app"\nversion = "0"\ndependencies = ["evil", "victim"]\n'
              '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\nvictim = ["fs"]\n')
    scenario = Scenario(tmp_path, config=config, app=app,
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}},
                               "victim": {"files": {"victim/__init__.py": ""}, "requires": ["evil"]}})
    assert ok(results(scenario.plain())["write"])
    (out / "x").unlink()
    guarded = results(scenario.guarded())
    assert guarded["relabel"] == "ok:False", guarded
    assert denied(guarded["write"]), guarded
    assert not (out / "x").exists()


def test_code_a_distribution_names_as_the_applications_file_is_its_own_and_the_applications_stays(tmp_path):
    """hypothesis's ``@given`` gives its wrapper the test file's name (``impersonate``:
    ``wrapper.__code__ = wrapper.__code__.replace(co_filename=test.__code__.co_filename)``). The
    wrapper is the distribution's code and stays charged to it; the application's own code in that
    file must stay the application's (relabelling the name denied every act of every test in the
    file as hypothesis's). The core, and the pure-Python fallback, mark the code objects, by
    identity, when they are run or bound."""
    out = tmp_path / "out"
    out.mkdir()
    code = '''
def impersonate(target):
    def wrapper(path):
        open(path, "w").close()
    wrapper.__code__ = wrapper.__code__.replace(co_filename=target.__code__.co_filename)
    return wrapper
def run_as(target, path):
    exec(compile(f"open({path!r}, 'w').close()", target.__code__.co_filename, "exec"), {})
'''
    app = (ATTEMPT + "import os, impostor\n"
           "def target():\n    pass\n"
           "wrapper = impostor.impersonate(target)\n"
           f"OUT = {str(out)!r}\n"
           "def own():\n    open(os.path.join(OUT, 'own'), 'w').close()\n    os.environ['CAPIMPORT_TEST_OWN'] = '1'\n"
           "attempt('own_before', own)\n"
           "attempt('wrapper', wrapper, os.path.join(OUT, 'wrapper'))\n"
           "attempt('own_after', own)\n"
           "attempt('module_level', lambda: open(os.path.join(OUT, 'module'), 'w').close())\n"
           "attempt('compiled', impostor.run_as, target, os.path.join(OUT, 'compiled'))\n"
           "attempt('compiled_app', lambda: exec(compile('own()', __file__, 'exec'), {'own': own}))\n"
           "report()\n")
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nimpostor = []\n'
    scenario = Scenario(tmp_path, config=config, app=app,
                        dists={"impostor": {"files": {"impostor/__init__.py": code}}})
    plain = results(scenario.plain())
    assert all(ok(v) for v in plain.values()), plain
    assert sorted(os.listdir(out)) == ["compiled", "module", "own", "wrapper"]
    for entry in os.listdir(out):
        os.remove(out / entry)
    for extra_env in ({}, {"CAPIMPORT_PURE_PYTHON": "1"}):   # the core, and the fallback's own marks
        guarded = results(scenario.guarded(extra_env=extra_env))
        assert denied(guarded["wrapper"]) and "'impostor'" in guarded["wrapper"], (extra_env, guarded)
        for name in ("own_before", "own_after", "module_level", "compiled_app"):
            assert ok(guarded[name]), (name, extra_env, guarded)
        assert denied(guarded["compiled"]) and "'impostor'" in guarded["compiled"], (extra_env, guarded)
        assert sorted(os.listdir(out)) == ["module", "own"], extra_env
        for entry in os.listdir(out):
            os.remove(out / entry)


def test_a_host_name_cut_at_nul_is_matched_as_the_resolver_reads_it(tmp_path):
    """The resolver stops at NUL: ``localhost\\0.example.com`` is a lookup of localhost, which a
    grant on ``*.example.com`` does not cover. The core's leaf functions are refused once it is on."""
    code = '''
import socket
def run():
    attempt("lookup", lambda: len(socket.getaddrinfo("localhost\\x00.example.com", 80)) > 0)
    try:
        from capimport import _core
        attempt("leaf", _core._leaf, "realpath", "/")
    except ImportError:
        attempt("leaf", lambda: "no core")
    report()
'''
    config = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
              'evil = { net = ["*.example.com"] }\n')
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    assert results(scenario.plain())["lookup"] == "ok:True"
    guarded = results(scenario.guarded())
    assert denied(guarded["lookup"]), guarded
    assert guarded["leaf"].startswith("denied:"), guarded
