"""``capimport audit`` and ``capimport why`` on real dist-info trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from capimport.cli import main
from distbuilder import make_dist, write_config


@pytest.fixture
def env(tmp_path, site, monkeypatch):
    """A project depending on web -> (core, helper -> core), plus an unreviewed and a native dist."""
    make_dist(site, "web", "2.0", requires=["core", "helper"])
    make_dist(site, "helper", "1.0", requires=["core"])
    make_dist(site, "core", "0.3")
    make_dist(site, "fastlib", "1.1", files={"fastlib/__init__.py": "", "fastlib/_speed.cpython-311-x86_64-linux-gnu.so": ""})
    make_dist(site, "devtool", "5")
    project = tmp_path / "proj"
    write_config(project, """
        [project]
        dependencies = ["web", "fastlib"]

        [tool.capimport]
        app = ["net", "fs", "env"]

        [tool.capimport.packages]
        web = { capabilities = ["net", "fs", "env-readonly"], dependencies = { core = ["net"] } }
        helper = ["fs", "net"]
        core = ["net", "fs", "process", "env-readonly"]
    """)
    monkeypatch.chdir(project)
    monkeypatch.delenv("CAPIMPORT_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    return ["--path", str(site)]


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_table_fits_80_columns(env, capsys):
    code, out, _ = run(capsys, "audit", *env)
    assert code == 0
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    row = next(line for line in lines if line.startswith("core "))
    assert "narrowed" in row and "config" in row and "0.3" in row
    assert "(declared: fs, env-readonly, net, process)" in " ".join(out.split())
    assert next(line for line in lines if line.startswith("devtool")).split()[3] == "unreviewed"
    assert next(line for line in lines if line.startswith("fastlib*"))
    assert "ships compiled code" in out
    names = [line.split()[0].rstrip("*") for line in lines[2:] if line and not line.startswith(" ")]
    assert names[:5] == sorted(names[:5])


def test_audit_json(env, capsys):
    code, out, _ = run(capsys, "audit", "--format", "json", *env)
    data = json.loads(out)
    rows = {d["name"]: d for d in data["distributions"]}
    assert set(rows) == {"web", "helper", "core", "fastlib", "devtool"}
    core = rows["core"]
    assert core["declared"] == ["fs", "fs-readonly", "env-readonly", "net", "process"]
    assert core["effective"] == ["fs", "fs-readonly", "net"]
    assert core["status"] == "narrowed" and core["source"] == "config" and core["version"] == "0.3"
    assert rows["devtool"]["statuses"] == ["unreviewed", "unreachable"]
    assert rows["fastlib"]["native"] is True and rows["fastlib"]["status"] == "unreviewed"
    assert data["app"] == ["fs", "fs-readonly", "env", "env-readonly", "net"]


def test_audit_check_fails_on_unreviewed(env, capsys):
    code, _, err = run(capsys, "audit", "--check", *env)
    assert code == 1
    assert "fastlib 1.1 is unreviewed" in err
    assert "devtool" not in err  # unreviewed but unreachable: it holds nothing, so it cannot act


def test_audit_check_passes_when_all_reviewed(tmp_path, site, capsys, monkeypatch):
    make_dist(site, "only")
    write_config(tmp_path, "[tool.capimport.packages]\nonly = []\n")
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(capsys, "audit", "--check", "--path", str(site))
    assert code == 0


def test_config_error_exits_2_with_position(tmp_path, site, capsys, monkeypatch):
    path = write_config(tmp_path, "[tool.capimport.packages]\nx = ['nett']\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "audit", "--path", str(site))
    assert code == 2 and out == ""
    assert f"{path}:2:" in err and "did you mean 'net'" in err


def test_why_paths(env, capsys):
    code, out, _ = run(capsys, "why", "core", "net", *env)
    assert code == 0
    assert "net: granted, through" in out
    assert "(app) -> web -> core" in out and "(app) -> web -> helper -> core" in out


def test_why_cut_by_dependencies_entry(env, capsys):
    code, out, _ = run(capsys, "why", "core", "fs", *env)
    assert "fs: granted" in out and "(app) -> web -> helper -> core" in out
    assert "(app) -> web -> core" not in out  # web passes only net to core
    code, out, _ = run(capsys, "why", "core", "env-readonly", *env)
    assert "env-readonly: not granted" in out
    assert "cut: web -> core: web's [dependencies] passes net to core (" in out
    assert "pyproject.toml:8)" in out  # the line of web's entry
    assert "cut: helper -> core: helper itself does not hold env-readonly" in out
    code, out, _ = run(capsys, "why", "core", "process", *env)
    assert "cut: web -> core: web itself does not hold process" in out


def test_why_cut_by_declaration_and_app(env, capsys):
    _, out, _ = run(capsys, "why", "web", "process", *env)
    assert "web's declaration (config:" in out and "does not list process" in out
    assert "cut: (app) -> web: the application's 'app' grant does not hold process" in out


def test_why_all_capabilities_and_unreachable(env, capsys):
    _, out, _ = run(capsys, "why", "core", *env)
    assert out.count("granted") >= 3
    _, out, _ = run(capsys, "why", "devtool", *env)
    assert "not a dependency of the application" in out


def test_why_errors(env, capsys):
    code, _, err = run(capsys, "why", "nosuch", *env)
    assert code == 2 and "not installed" in err
    code, _, err = run(capsys, "why", "core", "nett", *env)
    assert code == 2 and "did you mean 'net'" in err


def test_console_script_runs(env, tmp_path):
    result = subprocess.run([sys.executable, "-c", "import sys; from capimport.cli import main; sys.exit(main())",
                             "audit", "--format", "json", *env], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["distributions"]


def test_unreachable_distributions_are_scanned_only_with_all(env, capsys):
    _, out, _ = run(capsys, "audit", "--format", "json", *env)
    rows = {d["name"]: d for d in json.loads(out)["distributions"]}
    assert "inferred" in rows["core"] and "inferred" not in rows["devtool"]
    _, out, _ = run(capsys, "audit", "--format", "json", "--all", *env)
    rows = {d["name"]: d for d in json.loads(out)["distributions"]}
    assert "inferred" in rows["devtool"]


def test_unreachable_optional_dependency_is_pointed_out(tmp_path, site, capsys, monkeypatch):
    make_dist(site, "client", requires=["core", 'fancy; extra == "cli"'], extras=["cli"])
    make_dist(site, "core")
    make_dist(site, "fancy")
    write_config(tmp_path, """
        [project]
        dependencies = ["client"]
        [tool.capimport.packages]
        client = []
        core = []
        fancy = ["fs-readonly"]
    """)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "audit", "--no-scan", "--path", str(site))
    assert "note: fancy is unreachable but is an optional dependency of client[cli]" in " ".join(out.split())
    code, out, _ = run(capsys, "why", "fancy", "--path", str(site))
    assert "It is an optional dependency of client[cli]" in out
