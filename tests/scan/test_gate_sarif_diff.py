"""The CI gate (audit --check), SARIF 2.1.0 output, record files and capimport diff."""

from __future__ import annotations

import json

import pytest

from capimport import scan
from capimport.auditdiff import check, diff_audits, gained_anything, render_diff
from capimport.cli import main
from capimport.errors import ConfigError
from capimport.policy import load_policy
from capimport.record import observed_grant, read_records
from capimport.sarif import to_sarif
from distbuilder import make_dist, write_config


@pytest.fixture
def env(tmp_path, site):
    make_dist(site, "sneaky", "2.0", files={"sneaky/__init__.py": "import os, socket\n"
                                                                  "def f():\n    socket.create_connection((h, 443))\n"
                                                                  "    os.environ.get('TOKEN')\n"})
    make_dist(site, "fine", files={"fine/__init__.py": "import os\nos.environ.get('HOME')\n"})
    config = write_config(tmp_path / "proj", """
        [project]
        name = "demo"
        dependencies = ["sneaky", "fine"]

        [tool.capimport]
        mode = "enforce"

        [tool.capimport.packages]
        sneaky = { version = ">=1,<2", capabilities = ["env-readonly"] }
        fine = ["env-readonly"]
    """)
    return config


def _problems(config, site, records=()):
    policy = load_policy(str(config), paths=[str(site)])
    return check(policy, scan.scan_all(policy.distributions), records), policy


def test_check_finds_exceeding_use_and_stale_review(env, site):
    problems, _ = _problems(env, site)
    assert [(p.kind, p.name, p.capability) for p in problems] == [
        ("stale", "sneaky", None), ("exceeds", "sneaky", "net")]
    exceeds = problems[1]
    assert [(e.file, e.line, e.api) for e in exceeds.evidence] == [
        ("sneaky/__init__.py", 3, "socket.create_connection")]


def test_recorded_use_beyond_the_grant_fails_the_check(env, site, tmp_path):
    log = tmp_path / "r.jsonl"
    log.write_text(json.dumps({"distribution": "fine", "version": "1.0", "capability": "env-readonly",
                               "scope": "HOME", "api": "os.environ", "location": "fine/__init__.py:2"}) + "\n" +
                   json.dumps({"distribution": "fine", "version": "1.0", "capability": "process",
                               "scope": "ls", "api": "subprocess.Popen", "location": "fine/__init__.py:9"}) + "\n")
    problems, _ = _problems(env, site, read_records(str(log)))
    recorded = [p for p in problems if p.kind == "recorded"]
    assert [(p.name, p.capability) for p in recorded] == [("fine", "process")]


SARIF_REQUIRED = {"version", "runs"}


def _validate_sarif(log: dict) -> None:
    """The required properties of SARIF 2.1.0 (sarif-schema-2.1.0.json), checked by hand."""
    assert SARIF_REQUIRED <= set(log) and log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    for run in log["runs"]:
        driver = run["tool"]["driver"]
        assert isinstance(driver["name"], str) and driver["name"]
        rule_ids = [rule["id"] for rule in driver["rules"]]
        assert len(rule_ids) == len(set(rule_ids))
        for rule in driver["rules"]:
            assert set(rule) >= {"id", "shortDescription"} and rule["shortDescription"]["text"]
        bases = run.get("originalUriBaseIds", {})
        for base in bases.values():
            assert base["uri"].startswith("file:///") and base["uri"].endswith("/")
        for result in run["results"]:
            assert isinstance(result["message"]["text"], str) and result["message"]["text"]
            assert result["level"] in ("none", "note", "warning", "error")
            assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
            for location in result.get("locations", []) + result.get("relatedLocations", []):
                physical = location["physicalLocation"]
                artifact = physical["artifactLocation"]
                assert isinstance(artifact["uri"], str) and artifact["uri"]
                if "uriBaseId" in artifact:
                    assert artifact["uriBaseId"] in bases
                region = physical.get("region")
                if region is not None:
                    assert isinstance(region["startLine"], int) and region["startLine"] >= 1
                    assert region.get("startColumn", 1) >= 1


def test_sarif_one_result_per_evidence_location(env, site, tmp_path):
    problems, _ = _problems(env, site)
    log = to_sarif(problems, srcroot=str(tmp_path / "proj"))
    _validate_sarif(log)
    results = log["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["stale-manifest", "exceeds/net"]
    net = results[1]
    physical = net["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "sneaky/__init__.py"
    assert physical["region"] == {"startLine": 3, "startColumn": 5}
    assert net["relatedLocations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "pyproject.toml", "uriBaseId": "%SRCROOT%"}
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == "%SRCROOT%"


def test_cli_audit_check_and_sarif(env, site, capsys):
    assert main(["audit", "--config", str(env), "--path", str(site), "--check"]) == 1
    captured = capsys.readouterr()
    assert "exceeds" in captured.out and "(inferred:" in captured.out
    assert "sneaky 2.0: its code uses 'net'" in captured.err
    assert main(["audit", "--config", str(env), "--path", str(site), "--format", "sarif"]) == 0
    _validate_sarif(json.loads(capsys.readouterr().out))
    assert main(["audit", "--config", str(env), "--path", str(site), "--format", "json"]) == 0
    data = {d["name"]: d for d in json.loads(capsys.readouterr().out)["distributions"]}
    assert data["sneaky"]["inferred"] == [{"name": "env-readonly", "scope": ["TOKEN"]}, "net"]
    assert {"capability": "net", "api": "socket.create_connection", "file": "sneaky/__init__.py", "line": 3,
            "col": 5, "function": "f"} in data["sneaky"]["evidence"]
    assert data["sneaky"]["status"] == "exceeds"
    assert main(["audit", "--config", str(env), "--path", str(site), "--verbose"]) == 0
    assert "net: sneaky/__init__.py:3:5 socket.create_connection" in capsys.readouterr().out


def test_check_passes_when_grants_cover_use(tmp_path, site, capsys):
    make_dist(site, "fine", files={"fine/__init__.py": "import os\nos.environ.get('HOME')\n"})
    config = write_config(tmp_path / "p", """
        [project]
        name = "demo"
        dependencies = ["fine"]
        [tool.capimport.packages]
        fine = { version = ">=1", capabilities = { env-readonly = ["HOME"] } }
    """)
    assert main(["audit", "--config", str(config), "--path", str(site), "--check"]) == 0


def test_record_reader(tmp_path):
    log = tmp_path / "r.jsonl"
    log.write_text('{"distribution": "A_B", "capability": "net", "scope": "h:1", "api": "socket.connect", '
                   '"location": "a/b.py:3"}\n{"distribution": null, "capability": "fs"}\n'
                   '{"distribution": "x", "origin": "unknown", "capability": "fs"}\n{"distri')
    [observation] = read_records(str(log))
    assert (observation.distribution, observation.capability, observation.scope) == ("a-b", "net", "h:1")
    assert observed_grant([observation]).names == ("net",)
    assert str(observed_grant([observation], scoped=True)) == "net(h:1)"
    log.write_text('{"distribution": "a", "capability": "nett"}\nnot json\n{"distribution": "a", "capability": "fs"}\n')
    with pytest.raises(ConfigError) as error:
        read_records(str(log))
    assert [(d.line, "capability" in d.message or "JSON" in d.message) for d in error.value.diagnostics] == [
        (1, True), (2, True)]
    with pytest.raises(ConfigError):
        read_records(str(tmp_path / "missing.jsonl"))


OLD = {"distributions": [
    {"name": "requests", "version": "2.31.0", "effective": ["net"], "declared": ["net"], "inferred": ["net"]},
    {"name": "gone", "version": "1.0", "effective": [], "declared": []},
]}
NEW = {"distributions": [
    {"name": "requests", "version": "2.32.3", "effective": ["net"], "declared": ["net"],
     "inferred": ["fs", "net", {"name": "env-readonly", "scope": ["NO_PROXY"]}],
     "evidence": [{"capability": "fs", "api": "open(mode='w')", "file": "requests/utils.py", "line": 3,
                   "col": 1}]},
    {"name": "newdep", "version": "0.1", "effective": [], "declared": [], "inferred": ["process"]},
]}


def test_diff_audits_lists_gains_and_losses():
    report = diff_audits(OLD, NEW)
    assert report["added"] == [{"name": "newdep", "version": "0.1", "inferred": ["process"],
                                "effective": [], "declared": []}]
    assert report["removed"] == [{"name": "gone", "version": "1.0"}]
    [change] = report["changed"]
    assert change["inferred"] == {"gained": ["fs", "env-readonly(NO_PROXY)"], "lost": []}
    assert change["evidence"][0]["file"] == "requests/utils.py"
    assert gained_anything(report)
    text = render_diff(report)
    assert "~ requests 2.31.0 -> 2.32.3" in text and "+fs +env-readonly(NO_PROXY)" in text
    assert not gained_anything(diff_audits(NEW, NEW)) and render_diff(diff_audits(NEW, NEW)) == "no capability changes"


def test_cli_diff(tmp_path, capsys, env, site):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(OLD))
    new.write_text(json.dumps(NEW))
    assert main(["diff", str(old), str(new)]) == 0
    assert "+ newdep 0.1: new distribution (process)" in capsys.readouterr().out
    assert main(["diff", str(old), str(new), "--check", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["removed"] == [{"name": "gone", "version": "1.0"}]
    # Against a saved baseline: the current environment is audited on the fly.
    assert main(["audit", "--config", str(env), "--path", str(site), "--format", "json"]) == 0
    old.write_text(capsys.readouterr().out)
    assert main(["diff", str(old), "--config", str(env), "--path", str(site), "--check"]) == 0
    assert capsys.readouterr().out.strip() == "no capability changes"
    old.write_text("{not json")
    assert main(["diff", str(old), str(new)]) == 2


def test_declined_use_passes_the_gate_but_grants_nothing(tmp_path, site):
    make_dist(site, "sneaky", "1.0", files={"sneaky/__init__.py": "import socket\n"
                                                                  "def f(h):\n    socket.create_connection((h, 443))\n"})
    config = write_config(tmp_path / "proj", """
        [project]
        dependencies = ["sneaky"]

        [tool.capimport.packages.sneaky]
        capabilities = []
        declined = { net = "sneaky/__init__.py f: an optional upload we do not use" }
    """)
    problems, policy = _problems(config, site)
    assert problems == []
    assert "net" not in policy.grant_for("sneaky")
    assert policy.declarations["sneaky"].declined == {"net": "sneaky/__init__.py f: an optional upload we do not use"}


def test_declined_needs_a_known_capability_and_a_reason(tmp_path, site):
    make_dist(site, "x")
    config = write_config(tmp_path / "proj", """
        [tool.capimport.packages.x]
        capabilities = []
        declined = { nett = "why", fs = "" }
    """)
    with pytest.raises(ConfigError) as info:
        load_policy(str(config), paths=[str(site)])
    text = "\n".join(map(str, info.value.diagnostics))
    assert "did you mean 'net'" in text and "[declined] 'fs' needs a reason" in text


def test_narrowed_use_is_a_note_not_a_failure(tmp_path, site, capsys, monkeypatch):
    make_dist(site, "web", requires=["lib"], files={"web/__init__.py": "import lib\n"})
    make_dist(site, "lib", files={"lib/__init__.py": "import subprocess\n"
                                                     "def run(c):\n    subprocess.run(c)\n"})
    project = tmp_path / "proj"
    write_config(project, """
        [project]
        dependencies = ["web"]
        [tool.capimport.packages]
        web = []
        lib = ["process"]
    """)
    problems, policy = _problems(project / "pyproject.toml", site)
    assert [(p.kind, p.name, p.capability) for p in problems] == [("narrowed", "lib", "process")]
    assert problems[0].evidence[0].api == "subprocess.run"
    sarif = to_sarif(problems)
    (result,) = sarif["runs"][0]["results"]
    assert (result["ruleId"], result["level"]) == ("narrowed/process", "note")
    _validate_sarif(sarif)
    monkeypatch.chdir(project)
    assert main(["audit", "--check", "--path", str(site)]) == 0
    err = capsys.readouterr().err
    assert "capimport: note: lib 1.0: its code uses 'process'" in err and "capimport why lib process" in err


def test_recorded_use_marks_the_row_even_without_a_scan(env, site, tmp_path, capsys, monkeypatch):
    log = tmp_path / "r.jsonl"
    log.write_text(json.dumps({"distribution": "fine", "version": "1.0", "capability": "net",
                               "scope": "example.org:443", "api": "socket.connect",
                               "location": "fine/__init__.py:3"}) + "\n")
    monkeypatch.chdir(env.parent)
    code = main(["audit", "--no-scan", "--record", str(log), "--check", "--format", "json", "--path", str(site)])
    out, err = capsys.readouterr()
    assert code == 1
    rows = {row["name"]: row for row in json.loads(out)["distributions"]}
    assert rows["fine"]["status"] == "exceeds" and "inferred" not in rows["fine"]
    assert "it used 'net' at run time" in err


def test_records_with_and_without_a_scope_sort_together(tmp_path):
    from capimport.record import by_distribution
    log = tmp_path / "r.jsonl"
    log.write_text("".join(json.dumps(row) + "\n" for row in (
        {"distribution": "u3", "version": "2", "capability": "net", "scope": "pypi.org:443",
         "api": "socket.connect", "location": "u3/c.py:9"},
        {"distribution": "u3", "version": "2", "capability": "net", "scope": None,
         "api": "socket.socket", "location": "u3/c.py:5"},
        {"distribution": "u3", "version": "2", "capability": "net", "scope": "",
         "api": "socket.socket", "location": "u3/c.py:6"})))
    grouped = by_distribution(read_records(str(log)))
    assert [o.location for o in grouped["u3"]] == ["u3/c.py:5", "u3/c.py:6", "u3/c.py:9"]
