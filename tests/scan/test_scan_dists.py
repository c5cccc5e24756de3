"""Scanning whole installed distributions: cross-module names, findings, cache, processes."""

from __future__ import annotations

import os

from capimport import scan
from capimport.distributions import find_distributions


def _dist(site, name, files, **kw):
    from distbuilder import make_dist
    make_dist(site, name, files=files, **kw)
    return find_distributions([str(site)])[name]


def test_names_followed_across_modules(site):
    dist = _dist(site, "pkg", {
        "pkg/__init__.py": "from .compat import fetch\nfrom ._sp import *\n",
        "pkg/compat.py": "from urllib.request import urlopen as fetch\nimport os as _os\nenv = _os.environ\n",
        "pkg/_sp.py": "import subprocess\n__all__ = ['go']\ngo = subprocess.run\n",
        "pkg/use.py": "from . import fetch, go\nfrom .compat import env\nfrom pkg import compat\n"
                      "def f():\n    fetch(u)\n    go(['ls'])\n    env.get('HOME')\n    compat._os.system('x')\n",
    })
    result = scan.scan_distribution(dist)
    got = {(e.capability, e.file, e.line) for e in result.evidence}
    assert ("net", "pkg/use.py", 5) in got
    assert ("process", "pkg/use.py", 6) in got
    assert ("env-readonly", "pkg/use.py", 7) in got
    assert ("process", "pkg/use.py", 8) in got
    assert result.inferred.names == ("env-readonly", "net", "process")


def test_syntax_error_in_one_file_does_not_hide_the_others(site):
    dist = _dist(site, "mixed", {
        "mixed/__init__.py": "import os\nos.system('x')\n",
        "mixed/broken.py": "def f(:\n    pass\n",
    })
    result = scan.scan_distribution(dist)
    assert result.inferred.names == ("process",)
    [finding] = result.findings
    assert (finding.kind, finding.file, finding.line) == ("parse-error", "mixed/broken.py", 1)


def test_native_and_pth_findings(site):
    dist = _dist(site, "nat", {"nat/__init__.py": "", "nat/_speed.cpython-311-x86_64-linux-gnu.so": "",
                               "nat-hook.pth": "import nat\n/some/path\n"})
    kinds = {(f.kind, f.file) for f in scan.scan_distribution(dist).findings}
    assert ("native", "nat/_speed.cpython-311-x86_64-linux-gnu.so") in kinds
    assert ("startup-code", "nat-hook.pth") in kinds


def test_a_compiled_module_that_loads_cffis_backend_is_ffi(site):
    # cryptography's and PyNaCl's compiled modules import _cffi_backend from their init, which
    # needs ffi at run time; a compiled module without it is a finding only
    dist = _dist(site, "cf", {"cf/__init__.py": "", "cf/_sodium.abi3.so": "\x7fELF\x00_cffi_backend\x00init\x00",
                              "cf/_plain.abi3.so": "\x7fELF\x00PyInit__plain\x00", "cf/_empty.abi3.so": ""})
    result = scan.scan_distribution(dist)
    assert [(e.capability, e.file, e.api) for e in result.evidence] == [
        ("ffi", "cf/_sodium.abi3.so", "loads cffi's backend (_cffi_backend) when imported")]
    assert result.inferred.names == ("ffi",)
    assert {f.file for f in result.findings if f.kind == "native"} == {
        "cf/_sodium.abi3.so", "cf/_plain.abi3.so", "cf/_empty.abi3.so"}


def test_evidence_carries_location_api_and_function(site):
    dist = _dist(site, "ev", {"ev/__init__.py": "import shutil\nclass A:\n    def wipe(self, d):\n"
                                                "        shutil.rmtree(d)\n"})
    [item] = scan.scan_distribution(dist).evidence
    assert item.to_json() == {"capability": "fs", "api": "shutil.rmtree", "file": "ev/__init__.py",
                              "line": 4, "col": 9, "function": "A.wipe"}


def test_editable_install_scans_the_source_tree(site, tmp_path):
    project = tmp_path / "proj"
    (project / "src" / "edpkg").mkdir(parents=True)
    (project / "src" / "edpkg" / "__init__.py").write_text("import socket\nsocket.socket()\n")
    dist = _dist(site, "edpkg", {"__editable__.edpkg-1.0.pth": str(project / "src") + "\n"},
                 top_level=["edpkg"], editable_project=project)
    result = scan.scan_distribution(dist)
    assert result.inferred.names == ("net",)
    assert result.evidence[0].file == "edpkg/__init__.py"


def test_cache_hit_and_invalidation(site, tmp_path):
    _dist(site, "cached", {"cached/__init__.py": "import os\nos.remove(p)\n"})
    dists = find_distributions([str(site)])
    folder = str(tmp_path / "c")
    first = scan.scan_all(dists, cache_dir=folder)
    second = scan.scan_all(dists, cache_dir=folder)
    assert not first["cached"].cached and second["cached"].cached
    assert first["cached"].evidence == second["cached"].evidence
    assert first["cached"].inferred == second["cached"].inferred
    # A new version (a new RECORD) is scanned again.
    from distbuilder import make_dist
    import shutil
    shutil.rmtree(site / "cached-1.0.dist-info")
    make_dist(site, "cached", "1.1", files={"cached/__init__.py": "import os\nos.system('x')\n"})
    third = scan.scan_all(find_distributions([str(site)]), cache_dir=folder)
    assert not third["cached"].cached and third["cached"].inferred.names == ("process",)


def test_default_cache_dir_respects_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPIMPORT_CACHE_DIR", str(tmp_path / "x"))
    assert scan.default_cache_dir() == str(tmp_path / "x")
    monkeypatch.delenv("CAPIMPORT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert scan.default_cache_dir() == str(tmp_path / "xdg" / "capimport")


def test_unwritable_cache_only_costs_speed(site, tmp_path):
    _dist(site, "ro", {"ro/__init__.py": "import os\nos.remove(p)\n"})
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = scan.scan_all(find_distributions([str(site)]), cache_dir=str(blocker))
    assert result["ro"].inferred.names == ("fs", "fs-readonly")


def test_process_pool_gives_the_same_results(site, tmp_path, monkeypatch):
    for i in range(6):
        _dist(site, f"p{i}", {f"p{i}/__init__.py": f"import os\nos.system('x')\nopen('/etc/f{i}')\n",
                              f"p{i}/b.py": "from . import helper\nimport socket\nsocket.socket()\n"})
    dists = find_distributions([str(site)])
    serial = scan.scan_all(dists, use_cache=False, jobs=1)
    monkeypatch.setattr(scan.pool, "PARALLEL_THRESHOLD", 0)  # scan_all reads them from scan.pool
    monkeypatch.setattr(scan.pool, "_CHUNK_BYTES", 1)
    calls = []
    parallel = scan.scan_all(dists, use_cache=False, jobs=2, progress=lambda d, t, n: calls.append((d, t)))
    assert {n: r.evidence for n, r in serial.items()} == {n: r.evidence for n, r in parallel.items()}
    assert calls and calls[-1][0] == calls[-1][1] == 12


def test_terminal_progress_only_on_a_tty():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    quiet = io.StringIO()
    scan.TerminalProgress(quiet, delay=0)(1, 2, "x")
    assert quiet.getvalue() == ""
    tty = Tty()
    progress = scan.TerminalProgress(tty, delay=0)
    progress(1, 2, "pkg")
    progress(2, 2, "")
    assert "scanning 1/2 files (pkg)" in tty.getvalue() and tty.getvalue().endswith("\r")
