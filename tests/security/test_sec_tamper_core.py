"""Route 6 and 7: the forged-identity and import-integrity rules held by the native core."""

from __future__ import annotations

import importlib.util
import marshal
import os

import pytest
from sechelp import ATTEMPT, Scenario, denied, ok, results

#: Route 6 holds in both decisions: the core's rules (_core_tamper.h) and the fallback's (guards/tamper.py).
DECISIONS = pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])

CONFIG = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'


def _pyc(source: str, filename: str) -> bytes:
    return importlib.util.MAGIC_NUMBER + b"\x00" * 12 + marshal.dumps(compile(source, filename, "exec"))


@DECISIONS
def test_a_pyc_naming_the_standard_library_is_not_believed_at_import(tmp_path, decision):
    """A sourceless ``.pyc`` whose code names a standard-library file (or the import system) is
    refused when imported, by a plain import or through a loader the distribution builds with a
    spec that names the standard library as the module's origin."""
    marker = tmp_path / "marker"
    body = f"import os\ndef go():\n    os.system('touch {marker}')\n"
    code = f'''
import importlib, importlib.machinery, importlib.util, os, sys
HERE = os.path.dirname(__file__)
def load(name, path, origin):
    loader = importlib.machinery.SourcelessFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader, origin=origin)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
def run():
    attempt("plain_stdlib", lambda: importlib.import_module("evil.stdlib_named").go())
    attempt("plain_import", lambda: importlib.import_module("evil.import_named").go())
    attempt("spec_stdlib", lambda: load("evil_x", os.path.join(HERE, "stdlib_named.pyc"), os.__file__).go())
    report()
'''
    scenario = Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code,
                                                  "evil/stdlib_named.pyc": "", "evil/import_named.pyc": ""}}})
    (scenario.site / "evil" / "stdlib_named.pyc").write_bytes(_pyc(body, os.__file__))
    (scenario.site / "evil" / "import_named.pyc").write_bytes(_pyc(body, "<frozen importlib._bootstrap>"))
    plain = results(scenario.plain())
    assert all(ok(v) for v in plain.values()) and marker.exists(), plain
    marker.unlink()
    guarded = results(scenario.guarded(extra_env=decision))
    assert not marker.exists(), guarded
    for name in ("plain_stdlib", "plain_import", "spec_stdlib"):
        assert denied(guarded[name]) and "whose code names" in guarded[name], (name, guarded)


def test_rewriting_capimports_python_rules_does_not_unlock_a_forged_name(tmp_path):
    """Route 7 (was ``test_gap_the_tamper_rules_are_still_python``): the forged-identity and
    import-integrity rules are the core's. Emptying ``guard_rules``, rewriting the closure cells
    of every Python rule left (they only charge planted import hooks) and of the fallback's rule
    builder changes nothing: code compiled under the import system's name is still refused, and
    a removed import guard still comes back."""
    marker = tmp_path / "marker"
    code = f'''
import sys
FORGED = "import os; os.system('touch {marker}')"
def run():
    attempt("before", compile, FORGED, "<frozen importlib._bootstrap>", "exec")
    from capimport import enforcer
    from capimport.guards import tamper
    active = enforcer.active()
    noop = lambda *args, **kwargs: None
    for name, rule in list(active.guard_rules.items() if active else ()):
        for cell in getattr(rule, "__closure__", None) or ():
            cell.cell_contents = noop
        active.guard_rules[name] = noop
    tamper.build = tamper.check_names = tamper.code_tree = noop
    if active:
        active.decide = noop
    attempt("compile", lambda: exec(compile(FORGED, "<frozen importlib._bootstrap>", "exec"), {{}}))
    attempt("replace", lambda: exec(compile(FORGED, "<evil>", "exec").replace(co_filename="<frozen importlib._bootstrap>"), {{}}))
    guard = sys.meta_path[0]
    sys.meta_path.remove(guard)
    attempt("import_after_removal", lambda: __import__("json.tool"))
    attempt("guard_is_back", lambda: sys.meta_path[0] is guard)
    report()
'''
    scenario = Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    plain = results(scenario.plain())
    assert ok(plain["compile"]) and marker.exists(), plain
    marker.unlink()
    guarded = results(scenario.guarded())
    assert not marker.exists(), guarded
    for name in ("before", "compile", "replace"):
        assert denied(guarded[name]) and "another's" in guarded[name], (name, guarded)
    assert denied(guarded["import_after_removal"]) and "tampering" in guarded["import_after_removal"], guarded
    assert guarded["guard_is_back"] == "ok:True", guarded


@DECISIONS
def test_a_loader_a_distribution_wrote_answers_for_the_code_it_hands_the_import_system(tmp_path, decision):
    """Route 6: a subclass of the standard library's loader whose ``get_code`` returns code named
    after another distribution's file (or the standard library's), read with ``marshal`` (no
    event), is judged as its author's: the spec's origin, which anyone's finder can set, does not
    vouch for the code."""
    marker = tmp_path / "marker"
    code = """
import importlib.machinery, importlib.util, marshal, os
HERE = os.path.dirname(__file__)
def load(name, blob, origin):
    with open(os.path.join(HERE, blob), "rb") as f:
        body = marshal.loads(f.read())
    class Loader(importlib.machinery.SourcelessFileLoader):
        def get_code(self, fullname):
            return body
    loader = Loader(name, __file__)
    spec = importlib.util.spec_from_loader(name, loader, origin=origin)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
def run():
    import granted
    attempt("other_dist", lambda: load("x1", "granted.bin", granted.__file__).go())
    attempt("stdlib", lambda: load("x2", "stdlib.bin", os.__file__).go())
    report()
"""
    config = CONFIG + 'granted = ["fs-readonly", "process"]\n'
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n", dists={
        "evil": {"files": {"evil/__init__.py": ATTEMPT + code, "evil/granted.bin": "", "evil/stdlib.bin": ""}},
        "granted": {"files": {"granted/__init__.py": "VALUE = 1\n"}}})
    body = f"import os\ndef go():\n    os.system('touch {marker}')\n"
    for blob, filename in (("granted.bin", scenario.site / "granted" / "__init__.py"), ("stdlib.bin", os.__file__)):
        (scenario.site / "evil" / blob).write_bytes(marshal.dumps(compile(body, str(filename), "exec")))
    plain = results(scenario.plain())
    assert all(ok(v) for v in plain.values()) and marker.exists(), plain
    marker.unlink()
    guarded = results(scenario.guarded(extra_env=decision))
    assert not marker.exists(), guarded
    for name in ("other_dist", "stdlib"):
        assert denied(guarded[name]) and "whose code names" in guarded[name], (name, guarded)
