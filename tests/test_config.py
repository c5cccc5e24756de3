"""Configuration and manifests: formats, discovery, and one clear error per mistake."""

from __future__ import annotations

import os

import pytest

from capimport.config import discover, load_config
from capimport.errors import ConfigError
from capimport.grant import EVERYTHING, NOTHING, Grant
from distbuilder import write_config


def errors_of(path):
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    return info.value.diagnostics


def test_full_config_parses(tmp_path):
    (tmp_path / "manifests").mkdir()
    path = write_config(tmp_path, """
        [project]
        dependencies = ["requests>=2", "click"]

        [tool.capimport]
        mode = "enforce"
        manifests = "manifests"
        app = ["fs", "net", "env", "process"]
        default = []

        [tool.capimport.packages]
        requests = ["net", "fs-readonly", "env-readonly"]
        urllib3 = { net = ["*:443", "*:80"], env-readonly = ["NO_PROXY", "*_PROXY"] }
        Foo_Bar = { capabilities = ["net"], version = ">=1", dependencies = { idna = [] } }
    """)
    config = load_config(str(path))
    assert config.mode == "enforce"
    assert config.manifests_dir == str(tmp_path / "manifests")
    assert config.app == Grant.of(["fs", "net", "env", "process"])
    assert config.default == NOTHING
    assert config.project_dependencies == ("requests>=2", "click")
    assert set(config.packages) == {"requests", "urllib3", "foo-bar"}
    urllib3 = config.packages["urllib3"].grant
    assert urllib3.allows("net", ("pypi.org", 443)) and not urllib3.allows("net", ("pypi.org", 22))
    assert urllib3.allows("env-readonly", "HTTPS_PROXY") and not urllib3.allows("env-readonly", "AWS_SECRET")
    assert config.packages["foo-bar"].passes["idna"] == NOTHING


def test_defaults_when_keys_absent(tmp_path):
    config = load_config(str(write_config(tmp_path, "[tool.capimport]\n")))
    assert config.mode == "enforce" and config.app == EVERYTHING and config.default == NOTHING


def test_standalone_capimport_toml(tmp_path):
    path = write_config(tmp_path, """
        mode = "warn"
        [packages]
        rich = ["env-readonly"]
    """, name="capimport.toml")
    config = load_config(str(path))
    assert config.mode == "warn" and config.packages["rich"].grant == Grant.of(["env-readonly"])


def test_no_config_means_warn_with_everything_for_app():
    config = load_config(None)
    assert not config.found and config.mode == "warn" and config.app == EVERYTHING


# ----------------------------------------------------------------------------- errors, each with position


def test_toml_syntax_error_has_line_and_column(tmp_path):
    path = write_config(tmp_path, """
        [tool.capimport]
        mode = "enforce
    """)
    (d,) = errors_of(path)
    assert (d.path, d.line) == (str(path), 2) and d.column > 0
    assert "TOML syntax error" in d.message


def test_unknown_capability_suggests_nearest(tmp_path):
    path = write_config(tmp_path, """
        [tool.capimport.packages]
        requests = ["net", "fs-readonly"]
        rich = ["env-readonly", "nett"]
    """)
    (d,) = errors_of(path)
    assert d.line == 3 and d.column == line_col(path, 3, '"nett"')
    assert "unknown capability 'nett'" in d.message and "did you mean 'net'" in d.message
    assert str(d).startswith(f"{path}:3:")


def test_unknown_capability_in_table_form(tmp_path):
    path = write_config(tmp_path, """
        [tool.capimport.packages]
        urllib3 = { network = ["*:443"] }
    """)
    (d,) = errors_of(path)
    assert d.line == 2 and "did you mean 'net'" in d.message


@pytest.mark.parametrize("scope,needle", [
    ('net = ["exa mple.com"]', "bad host scope"),
    ('net = ["*:99999"]', "bad host scope"),
    ('env-readonly = ["A-B"]', "bad env scope"),
    ('fs = ["${1BAD}/a"]', "is not a variable name"),
    ('ffi = ["x"]', "takes no scope"),
    ('net = []', "empty scope"),
    ('net = "*:443"', "must be true or a list"),
])
def test_malformed_scope(tmp_path, scope, needle):
    path = write_config(tmp_path, f"""
        [tool.capimport.packages]
        pkg = {{ {scope} }}
    """)
    (d,) = errors_of(path)
    assert d.line == 2 and needle in d.message


def test_wrong_types(tmp_path):
    path = write_config(tmp_path, """
        [tool.capimport]
        mode = "enforced"
        strict = "yes"
        app = "net"
        bogus = 1

        [tool.capimport.packages]
        requests = 5
    """)
    diagnostics = errors_of(path)
    messages = "\n".join(d.message for d in diagnostics)
    assert "mode must be one of enforce, warn, record" in messages
    assert "'strict' must be true or false" in messages
    assert "expected a list of capability names" in messages
    assert "unknown key 'bogus'" in messages
    lines = sorted(d.line for d in diagnostics)
    assert lines == [2, 3, 4, 5, 8]


def test_duplicate_declaration_by_canonical_name(tmp_path):
    path = write_config(tmp_path, """
        [tool.capimport.packages]
        Foo_Bar = ["net"]
        foo-bar = ["fs"]
    """)
    (d,) = errors_of(path)
    assert d.line == 3 and "declared twice" in d.message and "'foo-bar'" in d.message


def test_capability_listed_twice(tmp_path):
    path = write_config(tmp_path, '[tool.capimport]\napp = ["net", "net"]\n')
    (d,) = errors_of(path)
    assert d.line == 2 and "listed twice" in d.message


def test_bad_version_specifier_in_inline_manifest(tmp_path):
    path = write_config(tmp_path, """
        [tool.capimport.packages.requests]
        version = ">=2.x"
        capabilities = ["net"]
    """)
    (d,) = errors_of(path)
    assert d.line == 2 and "not a valid version specifier" in d.message


def test_missing_manifests_folder_is_an_error(tmp_path):
    path = write_config(tmp_path, '[tool.capimport]\nmanifests = "nowhere"\n')
    (d,) = errors_of(path)
    assert d.line == 2 and "does not exist" in d.message


def test_errors_never_fall_back_to_a_grant(tmp_path):
    # One bad entry rejects the whole file: nothing is half-read as a grant.
    path = write_config(tmp_path, """
        [tool.capimport]
        default = ["net", "flie"]
    """)
    assert errors_of(path)


def line_col(path, line, needle):
    return open(path).read().splitlines()[line - 1].index(needle) + 1


# ----------------------------------------------------------------------------- discovery


def test_discovery_order(tmp_path, monkeypatch):
    project = tmp_path / "project"
    script_dir = project / "src" / "app"
    script_dir.mkdir(parents=True)
    write_config(project, "[tool.capimport]\n")
    other = write_config(tmp_path / "other", "[tool.capimport]\n")
    explicit = write_config(tmp_path / "explicit", "mode='warn'\n", name="capimport.toml")
    monkeypatch.delenv("CAPIMPORT_CONFIG", raising=False)
    script = str(script_dir / "main.py")
    assert discover(script=script, cwd=str(tmp_path / "other")) == str(project / "pyproject.toml")
    assert discover(cwd=str(tmp_path / "other")) == str(other)
    assert discover(str(explicit), script=script) == str(explicit)
    assert discover(script=script, environ={"CAPIMPORT_CONFIG": str(other)}) == str(other)
    assert discover(str(explicit), environ={"CAPIMPORT_CONFIG": str(other)}) == str(explicit)


def test_pyproject_without_tool_table_is_skipped(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[project]\nname='x'\n")
    outer = write_config(tmp_path, "[tool.capimport]\n")
    assert discover(cwd=str(inner), environ={}) == str(outer)


def test_capimport_toml_wins_in_same_folder(tmp_path):
    write_config(tmp_path, "[tool.capimport]\n")
    standalone = write_config(tmp_path, "", name="capimport.toml")
    assert discover(cwd=str(tmp_path), environ={}) == str(standalone)


def test_explicit_missing_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        discover(str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="CAPIMPORT_CONFIG"):
        discover(environ={"CAPIMPORT_CONFIG": str(tmp_path / "nope.toml")})
