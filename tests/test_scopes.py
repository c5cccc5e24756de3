"""Scope patterns: parsing, normalisation, matching, and conservative comparison."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings, strategies as st

from capimport.scopes import (ScopeError, covers, env_matches, host_matches, ipv6_packed, is_ip, parse_pattern,
                              path_matches, program_matches, resolve_path, scope_intersection,
                              scope_issubset, scope_union)


def p(kind, text, **kw):
    return parse_pattern(kind, text, **kw)


# ----------------------------------------------------------------------------- paths


def test_path_expands_home_and_vars(tmp_path):
    env = {"HOME": str(tmp_path), "BUNDLE": str(tmp_path / "ca.pem")}
    assert p("path", "~/.netrc", environ=env).value == str(tmp_path.resolve() / ".netrc")
    assert p("path", "$BUNDLE", environ=env).value == str(tmp_path.resolve() / "ca.pem")
    assert p("path", "${BUNDLE}", environ=env).value == str(tmp_path.resolve() / "ca.pem")


def test_path_unset_variable_matches_nothing_rather_than_widening():
    pattern = p("path", "$NOPE/x", environ={})
    assert str(pattern) == "$NOPE/x"
    for probe in ("/", "/x", "/NOPE/x", "x"):
        assert not path_matches(pattern.value, probe)
    assert not covers(p("path", "/"), pattern) and not covers(p("path", "/**"), pattern)
    assert covers(pattern, pattern)
    assert not program_matches(p("program", "$NOPE", environ={}).value, "/usr/bin/NOPE")


def test_path_other_users_home_is_refused():
    with pytest.raises(ScopeError, match="~user"):
        p("path", "~root/.ssh", environ={"HOME": "/home/me"})


def test_relative_path_is_relative_to_declaring_file(tmp_path):
    assert p("path", "data/*.csv", base_dir=str(tmp_path)).value == str(tmp_path.resolve() / "data/*.csv")


def test_path_dotdot_normalised(tmp_path):
    assert p("path", f"{tmp_path}/a/../b").value == str(tmp_path.resolve() / "b")


def test_path_literal_prefix_resolved_through_symlinks(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert p("path", f"{tmp_path}/link/*.log").value == f"{real.resolve()}/*.log"


@pytest.mark.parametrize("bad", ["", " /tmp", "/tmp\x00x", 3, ["/tmp"]])
def test_path_malformed(bad):
    with pytest.raises(ScopeError):
        p("path", bad)


def test_path_matching_subtree_and_globs():
    assert path_matches("/data", "/data")
    assert path_matches("/data", "/data/x/y")
    assert not path_matches("/data", "/database")
    assert path_matches("/logs/*.log", "/logs/a.log")
    assert not path_matches("/logs/*.log", "/logs/sub/a.txt")
    assert path_matches("/logs/*.log", "/logs/a.log/inside")  # a matched directory grants its subtree
    assert path_matches("/srv/**/secret", "/srv/a/b/secret")
    assert path_matches("/", "/etc/passwd")
    assert path_matches("/x/[ab].txt", "/x/a.txt") and not path_matches("/x/[ab].txt", "/x/c.txt")


def test_resolve_path_defeats_dotdot_and_symlinks(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape").symlink_to("/etc")
    pattern = str(allowed.resolve())
    assert not path_matches(pattern, resolve_path(f"{allowed}/../outside"))
    assert not path_matches(pattern, resolve_path(f"{allowed}/escape/passwd"))
    assert path_matches(pattern, resolve_path("f.txt", cwd=str(allowed)))


# ----------------------------------------------------------------------------- hosts


@pytest.mark.parametrize("text,value", [
    ("example.com", "example.com:*"),
    ("Example.COM.:443", "example.com:443"),
    ("*:443", "*:443"),
    ("*.example.com", "*.example.com:*"),
    ("10.0.0.1:80", "10.0.0.1:80"),
    ("[::1]:8080", "[::1]:8080"),
    ("::1", "[::1]:*"),
    ("[0:0::1]", "[::1]:*"),
])
def test_host_normalised(text, value):
    assert p("host", text).value == value


@pytest.mark.parametrize("bad", ["exa mple.com", "host:99999", "host:http", "[::1", "*.*.com", "a.*.com", "[zz::1]"])
def test_host_malformed(bad):
    with pytest.raises(ScopeError):
        p("host", bad)


def test_host_matching():
    assert host_matches("*:443", "anything.org", 443)
    assert not host_matches("*:443", "anything.org", 80)
    assert host_matches("example.com:*", "EXAMPLE.com.", 8080)
    assert host_matches("*.example.com:*", "api.example.com", 1)
    assert not host_matches("*.example.com:*", "example.com", 1)
    assert not host_matches("*.example.com:*", "evilexample.com", 1)
    assert host_matches("[::1]:*", "0:0::1", 5)
    assert host_matches("example.com:443", "example.com", None)  # a DNS lookup has no port


# ----------------------------------------------------------------------------- env and programs


def test_env_names_and_globs():
    assert p("env", "AWS_*").value == "AWS_*"
    assert env_matches("AWS_*", "AWS_SECRET_ACCESS_KEY")
    assert env_matches("*_PROXY", "HTTPS_PROXY")
    assert not env_matches("HOME", "home")
    for bad in ("A-B", "1ABC", "A B", ""):
        with pytest.raises(ScopeError):
            p("env", bad)


def test_programs_by_name_and_path(tmp_path):
    assert p("program", "git").value == "git"
    assert program_matches("git", "/usr/bin/git")
    assert not program_matches("git", "/usr/bin/gitk")
    assert program_matches("python3*", "/usr/bin/python3.11")
    exe = tmp_path / "tool"
    exe.write_text("")
    assert p("program", str(exe)).value == str(exe.resolve())
    assert program_matches(str(exe.resolve()), str(exe.resolve()))
    assert not program_matches(str(exe.resolve()), "/usr/bin/tool")
    with pytest.raises(ScopeError):
        p("program", "bin/tool")


def test_ffi_takes_no_scope():
    with pytest.raises(ScopeError):
        parse_pattern("ffi-kind", "x")


# ----------------------------------------------------------------------------- comparing sets


def test_covers_is_conservative():
    assert covers(p("path", "/a"), p("path", "/a/b/*.txt"))
    assert not covers(p("path", "/a/?"), p("path", "/a/*"))  # '?' is narrower than '*'
    assert not covers(p("path", "/a/*.txt"), p("path", "/a/*"))
    assert covers(p("host", "*:443"), p("host", "x.org:443"))
    assert not covers(p("host", "x.org:443"), p("host", "x.org"))
    assert covers(p("host", "*.x.org"), p("host", "*.a.x.org:80"))
    assert covers(p("env", "AWS_*"), p("env", "AWS_KEY_*"))
    assert not covers(p("env", "*_KEY"), p("env", "A*"))


def test_union_intersection_subset():
    a = frozenset({p("path", "/a"), p("path", "/b")})
    b = frozenset({p("path", "/a/x"), p("path", "/c")})
    assert scope_intersection(a, b) == frozenset({p("path", "/a/x")})
    assert scope_intersection(None, b) == b
    assert scope_union(a, None) is None
    assert scope_union(a, frozenset({p("path", "/a/deep")})) == a  # minimised
    assert scope_issubset(frozenset({p("path", "/a/x")}), a)
    assert not scope_issubset(None, a)
    assert scope_issubset(a, None)


def test_overlapping_globs_intersect_to_nothing_rather_than_too_much():
    a = frozenset({p("host", "*.example.com")})
    b = frozenset({p("host", "api.*")}) if False else frozenset({p("host", "*:443")})
    # *.example.com (any port) ∩ *:443 cannot be written exactly as one pattern;
    # the conservative answer must not allow example.com hosts on port 80.
    result = scope_intersection(a, b)
    assert result is not None
    assert not any(host_matches(q.value, "api.example.com", 80) for q in result)


# ----------------------------------------------------------------------------- addresses without ipaddress


def _ipaddress_is_ip(host: str) -> bool:
    import ipaddress
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


ADDRESSES = ["1.2.3.4", "0.0.0.0", "01.2.3.4", "1.2.3", "256.1.1.1", "1.2.3.4 ", "0x1.2.3.4", "", "::",
             "::1", "fe80::1%eth0", "::ffff:1.2.3.4", "::1::", "[::1]", "1::2:3:4:5:6:7:8", "example.com",
             "a\x00b", "\ud800"]


@pytest.mark.parametrize("host", ADDRESSES)
def test_is_ip_agrees_with_ipaddress(host):
    # the decision path tells addresses from names with the C library's parser (no import while
    # deciding); it must draw the line where ipaddress draws it
    assert is_ip(host) is _ipaddress_is_ip(host)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789abcdefx:.%[] ", max_size=24))
def test_is_ip_agrees_with_ipaddress_on_any_text(host):
    assert is_ip(host) is _ipaddress_is_ip(host)


def test_ipv6_patterns_match_every_spelling_of_the_address_and_no_other():
    pattern = p("host", "[2001:db8::1]:443").value
    assert host_matches(pattern, "2001:0db8:0:0:0:0:0:1", 443)
    assert host_matches(pattern, "[2001:DB8::1]", 443)
    assert host_matches(pattern, "2001:db8::1%eth0", 443)      # the zone is not the address
    assert not host_matches(pattern, "2001:db8::2", 443)
    assert not host_matches(pattern, "2001:db8::1", 80)
    assert not host_matches(pattern, "not::an::address", 443)
    assert ipv6_packed("::1") == b"\x00" * 15 + b"\x01" and ipv6_packed("1.2.3.4") is None
