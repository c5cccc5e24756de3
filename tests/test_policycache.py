"""The policy cache: a cached load equals a fresh build, and any changed input rebuilds it."""

from __future__ import annotations

import os
import time

import pytest

from capimport import policycache
from capimport.grant import Grant
from capimport.policy import load_policy
from distbuilder import make_dist, write_config


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPIMPORT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def project(tmp_path, site):
    make_dist(site, "web", requires=["core", 'plugin; extra == "x"'], extras=["x"],
              manifest='capabilities = ["net"]\n')
    make_dist(site, "core")
    make_dist(site, "plugin")   # web's optional requirement (graph.optional)
    (tmp_path / "proj" / "manifests").mkdir(parents=True)
    (tmp_path / "proj" / "manifests" / "core.toml").write_text(
        'version = ">=1"\ncapabilities = ["fs"]\n[scopes]\nfs = ["$CACHE_TEST_DIR", "~/x"]\n'
        '[declined]\nnet = "core/net.py: not needed"\n')
    write_config(tmp_path / "proj", """
        [project]
        dependencies = ["web"]
        [tool.capimport]
        default = ["net"]
        [tool.capimport.packages]
        web = { capabilities = ["net", "fs"], dependencies = { core = ["fs"] } }
    """)
    return tmp_path / "proj"


def load(project, site, **kw):
    settle(project.parent)
    return load_policy(cwd=str(project), paths=[str(site)], use_bundled=False, **kw)


def settle(folder):
    """Age files written in the last seconds, as if written before this run (racy inputs are not cached)."""
    past = time.time() - 10
    paths = [folder] + [os.path.join(root, name) for root, dirs, files in os.walk(folder) for name in dirs + files]
    for path in paths:
        if os.lstat(path).st_mtime > time.time() - 3:
            os.utime(path, (past, past), follow_symlinks=False)


def same(a, b):
    assert a.config == b.config
    assert a.effective == b.effective
    assert a.declarations == b.declarations
    assert {n: (d.version, d.location, d.requires, d.files) for n, d in a.distributions.items()} == \
           {n: (d.version, d.location, d.requires, d.files) for n, d in b.distributions.items()}
    assert a.graph.edges == b.graph.edges and a.graph.missing == b.graph.missing
    assert a.graph.optional == b.graph.optional
    assert a.warnings == b.warnings


def cache_files():
    folder = policycache.default_cache_dir()
    return [f for f in os.listdir(folder) if f.startswith("policy-")] if os.path.isdir(folder) else []


def test_cached_load_equals_fresh_build(project, site, monkeypatch):
    monkeypatch.setenv("CACHE_TEST_DIR", str(project))
    fresh = load(project, site, cache=False)
    first = load(project, site)
    assert cache_files()
    cached = load(project, site)
    same(fresh, first)
    same(fresh, cached)
    assert cached.graph.optional == {"web": ["plugin"]}
    assert cached.grant_for("core").allows("fs", str(project / "a"))
    assert cached.declarations["core"].declined == {"net": "core/net.py: not needed"}
    assert cached.declarations["web"].source == "config"


def test_cache_hit_does_not_rebuild(project, site, monkeypatch):
    load(project, site)
    import capimport.policy as policy_module
    monkeypatch.setattr(policy_module, "build_policy", lambda *a, **k: pytest.fail("rebuilt"))
    load(project, site)


def touch_later(path, text=None):
    """Change a file or folder; settle() then ages it to a time it never had before."""
    if text is not None:
        path.write_text(text)
    os.utime(path)


@pytest.mark.parametrize("change", ["config", "manifest", "new-manifest", "dist-installed", "shipped", "record",
                                    "env"])
def test_changed_input_rebuilds(project, site, monkeypatch, change):
    monkeypatch.setenv("CACHE_TEST_DIR", str(project))
    before = load(project, site)
    if change == "config":
        touch_later(project / "pyproject.toml", (project / "pyproject.toml").read_text().replace(
            'web = { capabilities = ["net", "fs"]', 'web = { capabilities = ["net"]'))
        assert load(project, site).grant_for("web") == Grant.of(["net"])
    elif change == "manifest":
        touch_later(project / "manifests" / "core.toml", 'capabilities = ["fs-readonly"]\n')
        assert load(project, site).grant_for("core") == Grant.of(["fs-readonly"])
    elif change == "new-manifest":
        (project / "manifests" / "web.toml").write_text('capabilities = []\n')
        touch_later(project / "manifests")
        assert load(project, site).declarations["web"].source == "config"  # config still wins
        assert "web" in before.config.packages
    elif change == "dist-installed":
        make_dist(site, "newcomer")
        touch_later(site)
        assert "newcomer" in load(project, site).distributions
    elif change == "shipped":
        (site / "core" / "capimport.toml").write_text('capabilities = ["process"]\n')
        touch_later(site / "core")
        # core's own file is not in its RECORD, so it is not a shipped manifest: unchanged result,
        # but the cache must have looked again (the folder changed).
        assert load(project, site).declarations["core"].source == "manifests"
    elif change == "record":
        # a capimport.toml the distribution's RECORD does not list is not shipped; RECORD rewritten
        # in place to list it (its folder's time does not move) makes it shipped
        make_dist(site, "lib")
        (site / "lib" / "capimport.toml").write_text('capabilities = ["process"]\n')
        assert load(project, site).declarations["lib"].source == "default"
        assert load(project, site).declarations["lib"].source == "default"   # from the cache
        record = next(site.glob("lib-*.dist-info")) / "RECORD"
        with open(record, "a") as handle:
            handle.write("lib/capimport.toml,,\n")
        touch_later(record)
        shipped = load(project, site).declarations["lib"]
        assert (shipped.source, shipped.grant) == ("shipped", Grant.of(["process"]))
    elif change == "env":
        monkeypatch.setenv("CACHE_TEST_DIR", str(project / "elsewhere"))
        grant = load(project, site).grant_for("core")
        assert grant.allows("fs", str(project / "elsewhere" / "f"))
        assert not grant.allows("fs", str(project / "a"))


def test_corrupt_or_foreign_cache_is_ignored(project, site):
    load(project, site)
    for name in cache_files():
        path = os.path.join(policycache.default_cache_dir(), name)
        with open(path, "w") as handle:
            handle.write('{"format": 1, "watched": [], "environ": {}, "policy": {"config": 5}}')
    assert load(project, site).grant_for("web") == Grant.of(["net", "fs"])
    for name in cache_files():
        with open(os.path.join(policycache.default_cache_dir(), name), "w") as handle:
            handle.write("not json")
    assert load(project, site).grant_for("web") == Grant.of(["net", "fs"])


def test_config_errors_are_never_cached(project, site):
    from capimport.errors import ConfigError
    load(project, site)
    touch_later(project / "pyproject.toml", "[tool.capimport]\napp = ['nett']\n")
    for _ in range(2):
        with pytest.raises(ConfigError):
            load(project, site)


def test_no_cache_switch(project, site, monkeypatch):
    monkeypatch.setenv("CAPIMPORT_NO_CACHE", "1")
    load(project, site)
    assert not cache_files()


def test_racy_inputs_are_not_cached(project, site):
    load_policy(cwd=str(project), paths=[str(site)], use_bundled=False)  # files written just now
    assert not cache_files()
    load(project, site)  # settled
    assert cache_files()
