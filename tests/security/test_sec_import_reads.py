"""Route 2/6: what the import system reads for whoever imports.

While it imports, the import system's frames are privileged to read module files. A finder a
distribution plants on ``sys.meta_path`` (or a path hook, or a spec it rewrites) chooses which
file a standard loader reads, and a loader's bound ``get_data`` can be made to read any path, so
that privilege covers module files only (``.py``, ``.pyc``, extension modules, and zipimport's
archives read for an import): the read of any other file (a ``.env``, a key) is charged to code
nobody owns (the ``default`` grant) together with whoever imports, unless an extension module's
init reads it (compiled code reading its package data: its distribution acts). Each test runs in
both decisions.
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
def test_a_loader_naming_anyone_reads_other_files_as_code_nobody_owns(tmp_path, decision):
    """Who made a loader cannot be told from its attributes (anyone can set a granted party's
    function on one), and a standard loader's bound ``get_data`` can be called by the import
    system with any path (a path hook, a module ``__getattr__`` asked by ``from x import secret``).
    So the read of a file that is no module is code nobody owns' with whoever imports, whatever
    the loader names: a loader subclass the distribution wrote (a language front end's loader
    reads such files with the ``default`` grant), a standard loader carrying the application's
    function, and a standard loader whose ``path`` is a granted distribution's file (review
    findings F1, F2)."""
    secret = _secret(tmp_path, "module.src")
    code = f'''
import functools, importlib, importlib.machinery, importlib.util, os, sys
SECRET = {str(secret)!r}
VICTIM = os.path.join(os.path.dirname(os.path.dirname(__file__)), "victim", "__init__.py")
class Loader(importlib.machinery.SourceFileLoader):
    def source_to_code(self, data, path, *, _optimize=-1):
        return compile(data, path, "exec", dont_inherit=True)
class Finder:
    def __init__(self, name, loader):
        self.name, self.loader = name, loader
    def find_spec(self, name, path=None, target=None):
        if name == self.name:
            return importlib.util.spec_from_file_location(name, SECRET, loader=self.loader)
        return None
def run(app_function):
    sys.meta_path.append(Finder("own_loader", Loader("own_loader", SECRET)))
    attempt("own_loader", lambda: importlib.import_module("own_loader").TOKEN)
    borrowed = importlib.machinery.SourceFileLoader("borrowed", SECRET)
    borrowed.prefix = app_function
    sys.meta_path.append(Finder("borrowed", borrowed))
    attempt("borrowed_function", lambda: importlib.import_module("borrowed").TOKEN)
    victims = importlib.machinery.SourceFileLoader("victim", VICTIM)
    sys.modules["evil"].__getattr__ = functools.lru_cache(victims.get_data)
    def through_fromlist():
        __import__("evil", fromlist=[SECRET])
        return sys.modules["evil"].__getattr__(SECRET)
    attempt("victims_path", through_fromlist)
    report()
'''
    app = "import evil\ndef helper(*args):\n    return None\nevil.run(helper)\n"
    config = NO_GRANTS + 'victim = ["fs-readonly"]\n'
    scenario = Scenario(tmp_path, config=config, app=app,
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}},
                               "victim": {"files": {"victim/__init__.py": "X = 1\n"}}})
    plain = results(scenario.plain())
    assert all(v.startswith("ok:") and "s3cret" in v for v in plain.values()), plain
    guarded = results(scenario.guarded(extra_env=decision))
    assert all(denied(v) and "s3cret" not in v for v in guarded.values()), guarded
    assert "code no distribution owns" in guarded["borrowed_function"], guarded


@DECISIONS
def test_a_loader_built_on_another_distributions_module_reads_none_of_its_files(tmp_path, decision):
    """A review finding: the import system's reads used to be allowed when the distribution owning
    the loader's ``path`` owned the file. A ``SourceFileLoader`` subclass built on a granted
    distribution's module file, whose ``get_filename`` names that distribution's data file and
    whose ``source_to_code`` keeps the bytes, driven through ``_load``, read the data for a
    distribution holding nothing. The loader decides nothing now: the read is code nobody owns'
    with whoever drives it."""
    code = '''
import importlib._bootstrap as _bootstrap, importlib.machinery as _machinery, importlib.util as _util, os
VICTIM = os.path.join(os.path.dirname(os.path.dirname(__file__)), "victim")
stolen = []
class Loader(_machinery.SourceFileLoader):
    def get_filename(self, name=None):
        return os.path.join(VICTIM, "credentials.txt")
    def source_to_code(self, data, path, *, _optimize=-1):
        stolen.append(data)
        raise ImportError("kept")
def run():
    module_file = os.path.join(VICTIM, "__init__.py")
    spec = _util.spec_from_file_location("victim_data", module_file, loader=Loader("victim_data", module_file))
    def steal():
        try:
            _bootstrap._load(spec)
        except ImportError:
            pass
        return stolen[0].decode()
    attempt("direct", lambda: open(os.path.join(VICTIM, "credentials.txt")).read())
    attempt("through_a_loader", steal)
    report()
'''
    config = NO_GRANTS + 'victim = ["fs-readonly"]\n'
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}},
                               "victim": {"files": {"victim/__init__.py": "X = 1\n",
                                                    "victim/credentials.txt": "s3cret\n"}}})
    plain = results(scenario.plain())
    assert all(v.startswith("ok:") and "s3cret" in v for v in plain.values()), plain
    guarded = results(scenario.guarded(extra_env=decision))
    assert all(denied(v) and "s3cret" not in v for v in guarded.values()), guarded


@DECISIONS
def test_a_zip_member_read_for_a_get_data_caller_is_not_the_import_systems(tmp_path, decision):
    """zipimport reads an archive for an import (its directory, a module's member) with the
    import system's privilege, but a member read through ``zipimporter.get_data`` is for whoever
    asked: a zipimporter's bound ``get_data`` planted as a path hook reads no member of a zip
    the distribution may not read (review finding F3)."""
    archive = tmp_path / "private" / "backup.xlsx"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("credentials.txt", "aws_secret_access_key=SECRET\n")
    code = f'''
import sys, zipimport
ARCHIVE = {str(archive)!r}
def run():
    def via_hook():
        sys.path.append(ARCHIVE)
        try:
            __import__("not_there")
        except BaseException:
            pass
        importer = sys.path_importer_cache[ARCHIVE]
        member = ARCHIVE + "/credentials.txt"
        sys.path_hooks.insert(0, importer.get_data)
        sys.path.append(member)
        try:
            __import__("not_there_either")
        except BaseException:
            pass
        return sys.path_importer_cache[member]
    attempt("member", via_hook)
    report()
'''
    scenario = Scenario(tmp_path, config=NO_GRANTS, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    assert "SECRET" in results(scenario.plain())["member"]
    guarded = results(scenario.guarded(extra_env=decision))
    assert "SECRET" not in guarded["member"] and not ok(guarded["member"]), guarded


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
