"""The dependency graph and the policy, built from real dist-info trees in tmp folders."""

from __future__ import annotations

import pytest

from capimport.config import load_config
from capimport.distributions import find_distributions
from capimport.errors import ConfigError
from capimport.grant import Grant, NOTHING
from capimport.graph import ROOT, build_graph
from capimport.policy import build_policy, load_policy
from distbuilder import make_dist, write_config


def names(edges):
    return sorted(e.child for e in edges)


def test_reads_real_dist_info(site):
    make_dist(site, "Foo_Bar", "1.2", requires=["idna>=2"], files={"foo_bar/__init__.py": "", "foo_bar/x.so": ""})
    dist = find_distributions([str(site)])["foo-bar"]
    assert (dist.display_name, dist.version, dist.requires) == ("Foo_Bar", "1.2", ("idna>=2",))
    assert dist.top_level == ("foo_bar",)
    assert str(site / "foo_bar" / "__init__.py") in dist.files
    assert dist.is_native


def test_first_distribution_on_the_path_wins(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    make_dist(first, "dup", "2.0")
    make_dist(second, "dup", "1.0")
    assert find_distributions([str(first), str(second)])["dup"].version == "2.0"


def test_extras_followed_only_when_asked(site):
    make_dist(site, "requests", requires=["urllib3", 'PySocks; extra == "socks"'], extras=["socks"])
    make_dist(site, "urllib3")
    make_dist(site, "pysocks")
    make_dist(site, "app-plain", requires=["requests"])
    dists = find_distributions([str(site)])
    graph = build_graph(dists, ["requests"])
    assert names(graph.children("requests")) == ["urllib3"]
    graph = build_graph(dists, ["requests[socks]"])
    assert names(graph.children("requests")) == ["pysocks", "urllib3"]


def test_requirements_under_extras_nobody_asked_for_are_optional_edges(site):
    # no edge for grants, but the requirer builds on them: attribution counts it as a dependent
    make_dist(site, "starlette", requires=["anyio", 'httpx; extra == "full"', 'itsdangerous; extra == "full"',
                                           'nowhere; extra == "full"', 'oldlib; extra == "full" and python_version < "3"'],
              extras=["full"])
    for name in ("anyio", "httpx", "itsdangerous", "oldlib"):
        make_dist(site, name)
    dists = find_distributions([str(site)])
    graph = build_graph(dists, ["starlette", "httpx"])
    assert names(graph.children("starlette")) == ["anyio"]
    assert graph.optional == {"starlette": ["httpx", "itsdangerous"]}   # installed, and markers hold
    assert "starlette" not in graph.dependents_closure("httpx")
    assert graph.dependents_closure("httpx", optional=True) == {"starlette", ROOT}
    graph = build_graph(dists, ["starlette[full]"])
    assert names(graph.children("starlette")) == ["anyio", "httpx", "itsdangerous"]
    assert graph.optional == {}   # asked for: ordinary edges


def test_false_markers_are_not_followed(site):
    make_dist(site, "a", requires=['b; python_version < "3"', 'c; sys_platform == "nonexistent"', "d"])
    for name in "bcd":
        make_dist(site, name)
    graph = build_graph(find_distributions([str(site)]), ["a"])
    assert names(graph.children("a")) == ["d"]


def test_names_canonicalised_and_missing_recorded(site):
    make_dist(site, "Foo.Bar", requires=["Zope_Interface", "not-installed>=1"])
    make_dist(site, "zope.interface")
    graph = build_graph(find_distributions([str(site)]), ["FOO_bar"])
    assert names(graph.children(ROOT)) == ["foo-bar"]
    assert names(graph.children("foo-bar")) == ["zope-interface"]
    assert graph.missing == [("foo-bar", "not-installed>=1")]


def test_root_without_project_is_what_nothing_requires(site):
    make_dist(site, "top", requires=["mid"])
    make_dist(site, "mid", requires=["leaf"])
    make_dist(site, "leaf")
    make_dist(site, "x", requires=["y"])  # a cycle that nothing else requires
    make_dist(site, "y", requires=["x"])
    graph = build_graph(find_distributions([str(site)]))
    assert "top" in names(graph.children(ROOT))
    assert "mid" not in names(graph.children(ROOT))
    assert graph.unreachable() == []
    assert set(graph.nodes) >= {"top", "mid", "leaf", "x", "y"}


def test_project_dependencies_leave_others_unreachable(site):
    make_dist(site, "used")
    make_dist(site, "devtool")
    graph = build_graph(find_distributions([str(site)]), ["used"])
    assert graph.unreachable() == ["devtool"]


def policy_for(tmp_path, site, body):
    path = write_config(tmp_path / "proj", body)
    return build_policy(load_config(str(path)), find_distributions([str(site)]), use_bundled=False)


def test_diamond_and_narrowing_dependents(tmp_path, site):
    make_dist(site, "web", requires=["core", "helper"])
    make_dist(site, "helper", requires=["core"])
    make_dist(site, "core")
    policy = policy_for(tmp_path, site, """
        [project]
        dependencies = ["web"]
        [tool.capimport.packages]
        web = { capabilities = ["net", "fs"], dependencies = { core = ["net"] } }
        helper = { capabilities = ["fs", "net"], dependencies = { core = ["fs"] } }
        core = ["net", "fs", "process"]
    """)
    assert policy.grant_for("core") == Grant.of(["net", "fs"])  # union of the two edges
    assert "process" not in policy.grant_for("core")             # no dependent holds process
    assert policy.grant_for("web") == Grant.of(["net", "fs"])


def test_declaration_sources_in_order(tmp_path, site):
    proj = tmp_path / "proj"
    (proj / "manifests").mkdir(parents=True)
    (proj / "manifests" / "b.toml").write_text('capabilities = ["fs"]\n')
    (proj / "manifests" / "a.toml").write_text('capabilities = ["fs"]\n')
    make_dist(site, "a")
    make_dist(site, "b")
    make_dist(site, "c", manifest='capabilities = ["net"]\n')
    make_dist(site, "d")
    policy = policy_for(tmp_path, site, """
        [tool.capimport]
        default = ["env-readonly"]
        [tool.capimport.packages]
        a = ["net"]
    """)
    sources = {n: policy.declarations[n].source for n in "abcd"}
    assert sources == {"a": "config", "b": "manifests", "c": "shipped", "d": "default"}
    assert policy.grant_for("a") == Grant.of(["net"])
    assert policy.grant_for("b") == Grant.of(["fs"])
    assert policy.grant_for("d") == Grant.of(["env-readonly"])


def test_shipped_manifest_is_never_a_grant_on_its_own(tmp_path, site):
    make_dist(site, "greedy", manifest='capabilities = ["net", "process", "env-readonly"]\n')
    policy = policy_for(tmp_path, site, '[tool.capimport]\ndefault = ["env-readonly"]\n')
    assert policy.declared_for("greedy") == Grant.of(["net", "process", "env-readonly"])
    assert policy.grant_for("greedy") == Grant.of(["env-readonly"])


def test_bad_shipped_manifest_is_an_error_with_position(tmp_path, site):
    make_dist(site, "broken", manifest='capabilities = ["net", "nte"]\n')
    with pytest.raises(ConfigError) as info:
        policy_for(tmp_path, site, "[tool.capimport]\n")
    (d,) = info.value.diagnostics
    assert d.path.endswith("broken/capimport.toml") and d.line == 1 and "did you mean 'net'" in d.message


def test_manifest_folder_errors(tmp_path, site):
    proj = tmp_path / "proj"
    (proj / "manifests").mkdir(parents=True)
    (proj / "manifests" / "Foo_Bar.toml").write_text('capabilities = ["net"]\n')
    (proj / "manifests" / "foo-bar.toml").write_text('capabilities = ["fs"]\n')
    (proj / "manifests" / "x.toml").write_text('version = ">=1"\ncapabilites = ["net"]\n')
    make_dist(site, "foo-bar")
    make_dist(site, "x")
    with pytest.raises(ConfigError) as info:
        policy_for(tmp_path, site, "[tool.capimport]\n")
    text = "\n".join(map(str, info.value.diagnostics))
    assert "declares 'foo-bar' a second time" in text
    assert "x.toml:2:1: error: unknown key 'capabilites'" in text
    assert "a manifest needs 'capabilities'" in text


def test_scopes_table_in_manifest(tmp_path, site):
    proj = tmp_path / "proj"
    (proj / "manifests").mkdir(parents=True)
    (proj / "manifests" / "req.toml").write_text(
        'capabilities = ["net", "fs"]\n[scopes]\nnet = ["*:443"]\nfs = ["data"]\n')
    make_dist(site, "req")
    policy = policy_for(tmp_path, site, "[tool.capimport]\n")
    grant = policy.grant_for("req")
    assert grant.allows("net", ("x.org", 443)) and not grant.allows("net", ("x.org", 80))
    assert grant.allows("fs", str((proj / "manifests" / "data" / "f").resolve()))
    assert grant.allows("fs-readonly", str((proj / "manifests" / "data").resolve()))
    assert not grant.allows("fs-readonly", "/etc/passwd")


def test_scopes_for_unlisted_capability_is_an_error(tmp_path, site):
    proj = tmp_path / "proj"
    (proj / "manifests").mkdir(parents=True)
    (proj / "manifests" / "req.toml").write_text('capabilities = ["net"]\n[scopes]\nfs = ["/tmp"]\n')
    make_dist(site, "req")
    with pytest.raises(ConfigError, match="which 'capabilities' does not list"):
        policy_for(tmp_path, site, "[tool.capimport]\n")


def test_manifest_for_uninstalled_distribution_warns(tmp_path, site):
    policy = policy_for(tmp_path, site, "[tool.capimport.packages]\nghost = ['net']\n")
    (w,) = policy.warnings
    assert w.severity == "warning" and "'ghost', which is not installed" in str(w) and w.line == 2


def test_stale_version_range(tmp_path, site):
    make_dist(site, "lib", "3.0")
    policy = policy_for(tmp_path, site, """
        [tool.capimport.packages.lib]
        version = ">=2,<3"
        capabilities = ["net"]
    """)
    assert policy.stale("lib")


def test_editable_install_source_roots(tmp_path, site):
    project = tmp_path / "editable_proj"
    (project / "src" / "edpkg").mkdir(parents=True)
    make_dist(site, "edpkg", files={"__editable__.edpkg-1.0.pth": f"{project / 'src'}\n"},
              editable_project=project, top_level=["edpkg"])
    dist = find_distributions([str(site)])["edpkg"]
    assert dist.editable_project == str(project.resolve())
    assert dist.source_roots == (str((project / "src").resolve()),)


def test_load_policy_discovers_from_cwd(tmp_path, site):
    make_dist(site, "a")
    write_config(tmp_path, "[tool.capimport.packages]\na = ['net']\n")
    policy = load_policy(cwd=str(tmp_path), paths=[str(site)], use_bundled=False)
    assert policy.grant_for("a") == Grant.of(["net"])
