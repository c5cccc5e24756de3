"""Real distributions from PyPI, in a venv built once (see realenv.py).

The expected capabilities were reviewed against each package's code; the
evidence the scanner gives is checked at a few lines that were read by hand.
"""

from __future__ import annotations

import pytest

from capimport import scan
from capimport.auditdiff import check
from capimport.distributions import find_distributions
from capimport.generate import generate
from capimport.policy import load_policy
from distbuilder import write_config


@pytest.fixture(scope="module")
def results(real_site, tmp_path_factory):
    dists = find_distributions([str(real_site)])
    return scan.scan_all(dists, cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.mark.parametrize("name", ["pyyaml", "attrs", "idna", "markupsafe"])
def test_pure_libraries_need_nothing(results, name):
    assert results[name].inferred.names == ()


def _has(results, name, capability, file, api):
    return any(e.file == file and e.api.startswith(api) for e in results[name].evidence_for(capability))


EXPECTED = {
    # requests/utils.py set_environ writes os.environ["no_proxy"]; extract_zipped_paths writes a temp
    # copy of the CA bundle (fs); sockets are urllib3's.
    "requests": ({"fs", "fs-readonly", "env", "env-readonly"}, {"net", "process", "ffi"}),
    # urllib3/util/connection.py create_connection, util/ssl_.py SSLKEYLOGFILE and CA files.
    "urllib3": ({"net", "fs-readonly", "env-readonly"}, {"process", "ffi", "fs"}),
    "httpx": ({"fs-readonly", "env-readonly"}, {"process", "ffi"}),
    "httpcore": ({"net"}, {"process", "ffi"}),
    # click pager/editor/launch (subprocess, webbrowser), CliRunner env isolation, open_file.
    "click": ({"fs", "env", "process"}, {"net"}),
    # rich Console.save_* (fs), pager (pydoc -> process), environment reads; ctypes only on Windows.
    "rich": ({"fs", "env-readonly", "process"}, {"net"}),
    # jinja2 FileSystemBytecodeCache writes; loaders read.
    "jinja2": ({"fs", "fs-readonly"}, {"net", "process"}),
    # pygments/formatters/img.py runs fc-list.
    "pygments": ({"process", "fs-readonly"}, set()),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_capabilities(results, name):
    present, absent = EXPECTED[name]
    inferred = set(results[name].inferred.names)
    assert present <= inferred, f"{name}: missing {present - inferred}"
    assert not (absent & inferred), f"{name}: unexpected {absent & inferred}"


def test_evidence_read_by_hand(results):
    assert _has(results, "requests", "env", "requests/utils.py", "os.environ[...] =")
    assert _has(results, "urllib3", "net", "urllib3/util/connection.py", "socket.")
    assert _has(results, "click", "process", "click/_termui_impl.py", "subprocess.Popen")
    assert _has(results, "jinja2", "fs", "jinja2/bccache.py", "os.")
    assert _has(results, "rich", "process", "rich/pager.py", "pydoc.pager")
    fc = [e for e in results["pygments"].evidence_for("process") if e.file == "pygments/formatters/img.py"]
    assert fc and fc[0].scope == ("fc-list",)
    assert "urllib3" in results["requests"].imports


def test_every_capability_has_evidence(results):
    for name, result in results.items():
        for capability in result.inferred.names:
            assert result.evidence_for(capability), f"{name} {capability} has no evidence"


def test_findings_on_real_code(results):
    kinds = {(f.kind, f.file) for f in results["pyyaml"].findings}
    assert any(kind == "native" for kind, _ in kinds)
    assert ("dynamic-import", "yaml/constructor.py") in kinds
    assert {f.kind for f in results["attrs"].findings} == {"dynamic-code"}


def test_generated_manifests_cover_inferred_use(real_site, results, tmp_path):
    config = write_config(tmp_path, "[tool.capimport]\nmode = 'enforce'\n")
    (tmp_path / "manifests").mkdir()
    policy = load_policy(str(config), paths=[str(real_site)])
    generated = generate(policy, results)
    assert generated.written
    policy = load_policy(str(config), paths=[str(real_site)])
    exceeding = {p.name for p in check(policy, results) if p.kind == "exceeds"}
    inferred_only = {n for n, source in generated.sources.items() if source == "inferred"}
    assert inferred_only and not (exceeding & inferred_only)


def test_gate_passes_every_bundled_review_on_real_packages(real_site, tmp_path, capsys):
    """`capimport audit --check` on real PyPI releases: no distribution that capimport ships a
    reviewed manifest for exceeds it (own-file reads, other platforms' code and declined uses
    aside); only unreviewed ones (pip, setuptools from the venv) may fail."""
    import json
    import os

    from capimport.cli import main
    from capimport.policy import bundled_manifests_dir

    bundled = {name[:-5] for name in os.listdir(bundled_manifests_dir()) if name.endswith(".toml")}
    config = write_config(tmp_path, "[tool.capimport]\nmode = 'enforce'\n")
    code = main(["audit", "--config", str(config), "--path", str(real_site), "--check", "--format", "json"])
    captured = capsys.readouterr()
    rows = {row["name"]: row for row in json.loads(captured.out)["distributions"]}
    exceeding = {name for name, row in rows.items() if "exceeds" in row["statuses"]}
    reviewed = set(rows) & bundled
    assert {"requests", "urllib3", "httpx", "click", "rich", "jinja2", "pygments", "certifi",
            "charset-normalizer"} <= reviewed
    assert exceeding & reviewed == set(), "\n".join(
        line for line in captured.err.splitlines() if any(f" {name} " in line for name in exceeding & reviewed))
    assert not {name for name in reviewed if "stale" in rows[name]["statuses"]}
    # the gate still fails on what nobody reviewed, so the pass above is not a gate that never fails
    unreviewed = {name for name, row in rows.items() if row["source"] == "default"}
    assert exceeding <= unreviewed
    assert code == (1 if exceeding or unreviewed else 0)
    # the marks that made the difference are visible in the evidence
    evidence = [e for row in rows.values() for e in row.get("evidence", [])]
    assert any(e.get("platform") == "win32" and e["capability"] == "ffi" for e in rows["click"]["evidence"])
    assert any(e.get("own") for e in evidence) and any(e.get("entry") == "__main__" for e in evidence)
