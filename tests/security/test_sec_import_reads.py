"""Route 2/6: what the import system reads for whoever imports.

While it imports, the import system's frames are privileged to read module files. A finder a
distribution plants on ``sys.meta_path`` (or a path hook, or a spec it rewrites) chooses which
file a standard loader reads, so that privilege covers module files only (``.py``, ``.pyc``,
extension modules, and zipimport's archives): the read of any other file (a ``.env``, a key) is
charged to whoever chose it, the loader's author or code nobody owns (the ``default`` grant),
together with whoever imports. Each test runs in both decisions.
"""

from __future__ import annotations

import zipfile

import pytest
from sechelp import ATTEMPT, Scenario, denied, ok, results

DECISIONS = pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])

NO_GRANTS = '[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = []\n'

#: A finder pointing a standard loader at *secret* for the module name "stolen".
FINDER = '''
import importlib, importlib.machinery, importlib.util, sys
class Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "stolen":
            return importlib.util.spec_from_file_location(
                name, SECRET, loader=importlib.machinery.SourceFileLoader(name, SECRET))
        return None
def plant():
    sys.meta_path.append(Finder())
'''


def _secret(tmp_path, name=".env"):
    secret = tmp_path / "private" / name
    secret.parent.mkdir()
    secret.write_text("TOKEN = 's3cret'\n")
    return secret


@DECISIONS
def test_a_planted_finder_cannot_make_the_import_system_read_a_file_that_is_no_module(tmp_path, decision):
    """A distribution holding no grant points the import system at a ``.env`` file that parses as
    Python: imported by itself or by the application, the read is charged to code nobody owns
    (``default = []``) and denied; reading the file directly is denied too (checked first)."""
    secret = _secret(tmp_path)
    code = f'''SECRET = {str(secret)!r}\n{FINDER}
def run():
    attempt("direct", lambda: open(SECRET).read())
    plant()
    attempt("through_import", lambda: importlib.import_module("stolen").TOKEN)
    report()
'''
    scenario = Scenario(tmp_path, config=NO_GRANTS, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    plain = results(scenario.plain())
    assert plain == {"direct": "ok:TOKEN = 's3cret'\n", "through_import": "ok:s3cret"}, plain
    guarded = results(scenario.guarded(extra_env=decision))
    assert denied(guarded["direct"]), guarded
    assert denied(guarded["through_import"]) and "s3cret" not in guarded["through_import"], guarded


@DECISIONS
def test_the_application_importing_a_name_a_planted_finder_redirects_reads_nothing(tmp_path, decision):
    """The finder waits for the application (which may read everything) to import a missing
    optional module; the file it chose is still charged to code nobody owns, so the application's
    import fails and the distribution finds no secret in ``sys.modules``."""
    secret = _secret(tmp_path)
    code = f'''SECRET = {str(secret)!r}\n{FINDER}
def steal():
    attempt("stolen", lambda: sys.modules["stolen"].TOKEN)
    report()
'''
    app = '''
import evil
evil.plant()
try:
    import stolen
except Exception as exc:
    print("import failed:", type(exc).__name__)
evil.steal()
'''
    scenario = Scenario(tmp_path, config=NO_GRANTS, app=app,
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    assert results(scenario.plain()) == {"stolen": "ok:s3cret"}
    proc = scenario.guarded(extra_env=decision)
    guarded = results(proc)
    assert not ok(guarded["stolen"]), guarded
    assert "import failed: CapabilityError" in proc.stdout, proc.stdout


@DECISIONS
def test_a_loader_a_distribution_wrote_reads_other_files_with_its_own_grant(tmp_path, decision):
    """A loader class of the distribution's (a language front end: hy, coconut) reading a file that
    is no module answers for the read itself: denied without a grant, allowed with ``fs-readonly``
    on that folder. The charge follows the grant; it is not a blanket refusal."""
    secret = _secret(tmp_path, "module.src")
    code = f'''
import importlib, importlib.machinery, importlib.util, sys
SECRET = {str(secret)!r}
class Loader(importlib.machinery.SourceFileLoader):
    def source_to_code(self, data, path, *, _optimize=-1):
        return compile(data, path, "exec", dont_inherit=True)
class Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "front_end":
            return importlib.util.spec_from_file_location(name, SECRET, loader=Loader(name, SECRET))
        return None
def run():
    sys.meta_path.append(Finder())
    attempt("import", lambda: importlib.import_module("front_end").TOKEN)
    report()
'''
    granted = NO_GRANTS.replace("evil = []", f'evil = {{ fs-readonly = ["{secret.parent}/**"] }}')
    for config, expect in ((NO_GRANTS, denied), (granted, lambda v: v == "ok:s3cret")):
        scenario = Scenario(tmp_path / ("granted" if config is granted else "bare"), config=config,
                            app="import evil\nevil.run()\n",
                            dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
        guarded = results(scenario.guarded(extra_env=decision))
        assert expect(guarded["import"]), (config, guarded)


@DECISIONS
def test_modules_from_a_zip_archive_and_bytecode_still_import_without_a_grant(tmp_path, decision):
    """No false denial: a distribution holding no grant imports a module from a zip archive on
    ``sys.path`` (zipimport reads the archive) and a sourceless ``.pyc`` module."""
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("zipped_module.py", "VALUE = 'from zip'\n")
    code = f'''
import importlib, sys
def run():
    sys.path.append({str(archive)!r})
    attempt("zip", lambda: importlib.import_module("zipped_module").VALUE)
    attempt("pyc", lambda: importlib.import_module("evil.compiled").VALUE)
    report()
'''
    scenario = Scenario(tmp_path, config=NO_GRANTS, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code, "evil/compiled.pyc": ""}}})
    import importlib.util
    import marshal
    pyc = importlib.util.MAGIC_NUMBER + b"\x00" * 12 + marshal.dumps(
        compile("VALUE = 'from pyc'\n", str(scenario.site / "evil" / "compiled.pyc"), "exec"))
    (scenario.site / "evil" / "compiled.pyc").write_bytes(pyc)
    guarded = results(scenario.guarded(extra_env=decision))
    assert guarded == {"zip": "ok:from zip", "pyc": "ok:from pyc"}, guarded


@DECISIONS
def test_a_distribution_without_grants_may_read_the_standard_library(tmp_path, decision):
    """No false denial: the standard library is the interpreter's own code, readable by anyone
    (``importlib.resources`` on a stdlib package, a loader's ``get_source``, a plain ``open``).
    The rule is narrow: another distribution's files still need ``fs-readonly``."""
    code = '''
import importlib.resources, importlib.util, os
def run():
    attempt("open", lambda: "d = {}" in open(os.path.join(os.path.dirname(os.__file__), "this.py")).read())
    attempt("get_source", lambda: "JSON" in importlib.util.find_spec("json").loader.get_source("json"))
    attempt("resources", lambda: "JSON" in importlib.resources.files("json").joinpath("__init__.py").read_text())
    other = os.path.join(os.path.dirname(os.path.dirname(__file__)), "other", "__init__.py")
    attempt("other_distribution", lambda: open(other).read())
    report()
'''
    scenario = Scenario(tmp_path, config=NO_GRANTS, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}},
                               "other": {"files": {"other/__init__.py": "SECRET = 1\n"}}})
    guarded = results(scenario.guarded(extra_env=decision))
    assert guarded.pop("other_distribution").startswith("denied:"), guarded
    assert guarded == {"open": "ok:True", "get_source": "ok:True", "resources": "ok:True"}, guarded
