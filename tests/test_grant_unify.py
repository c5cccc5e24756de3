"""Grants (implication, algebra) and unification, by example and by property."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from capimport.capabilities import CAPABILITIES
from capimport.grant import EVERYTHING, NOTHING, Grant, union_all
from capimport.scopes import parse_pattern
from capimport.unify import unify

ROOT = ":app:"


def path_scope(*paths):
    return frozenset(parse_pattern("path", x) for x in paths)


def test_implication_closed():
    g = Grant.of(["fs", "env"])
    assert "fs-readonly" in g and "env-readonly" in g
    scoped = Grant.of({"fs": path_scope("/tmp")})
    assert scoped.allows("fs-readonly", "/tmp/a")
    assert not scoped.allows("fs-readonly", "/etc/passwd")
    assert str(scoped) == "fs(/tmp)"


def test_readonly_not_widened_by_narrower_fs():
    g = Grant.of({"fs": path_scope("/tmp"), "fs-readonly": None})
    assert g.allows("fs-readonly", "/etc/passwd")
    assert not g.allows("fs", "/etc/passwd")


def test_unknown_capability_rejected():
    import pytest
    with pytest.raises(ValueError):
        Grant.of(["network"])


def test_algebra():
    a = Grant.of(["net", "fs-readonly"])
    b = Grant.of({"net": frozenset({parse_pattern("host", "*:443")}), "process": None})
    assert (a & b) == Grant.of({"net": frozenset({parse_pattern("host", "*:443")})})
    assert (a | b).names == ("fs-readonly", "net", "process")
    assert (a & b) <= a and (a & b) <= b and a <= (a | b)
    assert not a <= b
    assert a.missing_from(b).names == ("fs-readonly", "net")
    assert NOTHING <= a and a <= EVERYTHING


def test_to_json_shape():
    g = Grant.of({"net": frozenset({parse_pattern("host", "*:443")}), "ffi": None})
    assert g.to_json() == [{"name": "net", "scope": ["*:443"]}, "ffi"]


# ----------------------------------------------------------------------------- unification examples


def test_root_gets_app_and_children_are_capped():
    eff = unify(ROOT, Grant.of(["net"]), {"a": Grant.of(["net", "fs"])}, {ROOT: [("a", None)]})
    assert eff["a"] == Grant.of(["net"])


def test_diamond_unions_what_two_dependents_pass():
    declared = {"p1": EVERYTHING, "p2": EVERYTHING, "d": Grant.of(["net", "fs", "process"])}
    edges = {ROOT: [("p1", None), ("p2", None)],
             "p1": [("d", Grant.of(["net"]))], "p2": [("d", Grant.of(["fs"]))]}
    eff = unify(ROOT, EVERYTHING, declared, edges)
    assert eff["d"] == Grant.of(["net", "fs"])


def test_dependent_never_gives_more_than_it_holds():
    declared = {"p": Grant.of(["fs-readonly"]), "d": Grant.of(["net", "fs-readonly"])}
    eff = unify(ROOT, EVERYTHING, declared, {ROOT: [("p", None)], "p": [("d", None)]})
    assert eff["d"] == Grant.of(["fs-readonly"])


def test_cycle_resolves_to_least_fixpoint():
    declared = {"a": Grant.of(["net"]), "b": Grant.of(["net", "process"])}
    edges = {ROOT: [("a", None)], "a": [("b", None)], "b": [("a", None)]}
    eff = unify(ROOT, EVERYTHING, declared, edges)
    assert eff["a"] == Grant.of(["net"]) and eff["b"] == Grant.of(["net"])
    # An island cycle that nothing reaches gets nothing, not whatever it declares.
    eff = unify(ROOT, EVERYTHING, {"x": EVERYTHING, "y": EVERYTHING}, {"x": [("y", None)], "y": [("x", None)]})
    assert eff["x"] == NOTHING and eff["y"] == NOTHING


def test_scopes_intersect_along_the_path():
    declared = {"req": Grant.of({"net": frozenset({parse_pattern("host", "*:443")}), "fs-readonly": None}),
                "u3": Grant.of({"net": frozenset({parse_pattern("host", "*")})})}
    edges = {ROOT: [("req", None)], "req": [("u3", None)]}
    eff = unify(ROOT, EVERYTHING, declared, edges)
    assert eff["u3"].allows("net", ("x.org", 443)) and not eff["u3"].allows("net", ("x.org", 80))


# ----------------------------------------------------------------------------- properties

PATHS = ["/a", "/a/b", "/a/*.txt", "/c", "/"]
HOSTS = ["*:443", "x.org", "x.org:443", "*.x.org", "*"]
ENVS = ["HOME", "AWS_*", "AWS_KEY", "*_PROXY"]


@st.composite
def grants(draw):
    mapping = {}
    for cap in draw(st.sets(st.sampled_from(CAPABILITIES))):
        kind = {"fs": ("path", PATHS), "fs-readonly": ("path", PATHS), "net": ("host", HOSTS),
                "env": ("env", ENVS), "env-readonly": ("env", ENVS)}.get(cap)
        if kind is None or draw(st.booleans()):
            mapping[cap] = None
        else:
            texts = draw(st.sets(st.sampled_from(kind[1]), min_size=1, max_size=3))
            mapping[cap] = frozenset(parse_pattern(kind[0], t) for t in texts)
    return Grant.of(mapping)


NODES = ["a", "b", "c", "d"]


@st.composite
def graphs(draw):
    declared = {n: draw(grants()) for n in NODES}
    edges = {ROOT: []}
    for parent in [ROOT] + NODES:
        for child in NODES:
            if parent != child and draw(st.integers(0, 2)) == 0:
                passes = draw(st.one_of(st.none(), grants()))
                edges.setdefault(parent, []).append((child, passes))
    return draw(grants()), declared, edges


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_effective_never_exceeds_declared_nor_dependents(graph):
    app, declared, edges = graph
    eff = unify(ROOT, app, declared, edges)
    assert eff[ROOT] == app
    for node in NODES:
        assert eff[node] <= declared[node]
        flowing = union_all(eff[p] & (EVERYTHING if passes is None else passes)
                            for p, children in edges.items() for c, passes in children if c == node)
        assert eff[node] <= flowing


@settings(max_examples=150, deadline=None)
@given(graphs(), grants(), st.sampled_from(NODES))
def test_monotone_in_grants(graph, extra, node):
    app, declared, edges = graph
    before = unify(ROOT, app, declared, edges)
    wider = dict(declared)
    wider[node] = declared[node] | extra
    after = unify(ROOT, app | extra, wider, edges)
    for name in NODES:
        assert before[name] <= after[name]


@settings(max_examples=100, deadline=None)
@given(graphs())
def test_is_a_fixpoint(graph):
    app, declared, edges = graph
    eff = unify(ROOT, app, declared, edges)
    for node in NODES:
        flowing = union_all(eff[p] & (EVERYTHING if passes is None else passes)
                            for p, children in edges.items() for c, passes in children if c == node)
        # Equal up to how the patterns are written: each includes the other.
        assert eff[node] <= declared[node] & flowing and (declared[node] & flowing) <= eff[node]


def _grant(spec):
    kinds = {"fs": "path", "fs-readonly": "path", "net": "host", "env": "env", "env-readonly": "env"}
    return Grant.of({cap: None if scope is None else frozenset(parse_pattern(kinds[cap], t) for t in scope)
                     for cap, scope in spec.items()})


def test_unify_terminates_where_scope_sets_used_to_oscillate():
    """A cycle (a <-> b <-> c) once made net(x.org:443) come and go on c forever."""
    app = _grant({'ffi': None, 'env-readonly': ['*_PROXY', 'AWS_KEY'], 'fs-readonly': None, 'process': None,
                  'net': ['*:443', 'x.org:443']})
    declared = {n: _grant(d) for n, d in {
        'a': {'process': None},
        'b': {'env': None, 'env-readonly': ['AWS_KEY'], 'fs-readonly': ['/', '/a', '/a/b'], 'net': None,
              'fs': None, 'process': None},
        'c': {'fs': None, 'env': None, 'net': ['x.org'], 'process': None, 'fs-readonly': ['/a', '/a/b', '/c'],
              'env-readonly': None},
        'd': {'ffi': None, 'fs': ['/', '/a/b', '/c'], 'net': ['*', '*:443'], 'env': ['*_PROXY'],
              'env-readonly': ['AWS_KEY'], 'fs-readonly': ['/', '/c'], 'process': None}}.items()}
    edges = {ROOT: [('c', _grant({'net': None, 'fs': ['/', '/a/*.txt', '/c'], 'env': ['AWS_*', 'HOME'],
                                  'fs-readonly': None, 'process': None, 'env-readonly': None, 'ffi': None}))],
             'a': [('b', None), ('c', None)],
             'b': [('a', _grant({'fs': None, 'net': None, 'env-readonly': None, 'process': None,
                                 'fs-readonly': ['/a'], 'env': ['*_PROXY', 'AWS_*', 'AWS_KEY'], 'ffi': None})),
                   ('c', _grant({'process': None, 'fs': ['/a/*.txt', '/a/b'], 'ffi': None,
                                 'fs-readonly': ['/a/*.txt', '/c'], 'env': None, 'net': None,
                                 'env-readonly': None}))],
             'c': [('a', _grant({'ffi': None, 'net': ['*.x.org', '*:443'], 'env-readonly': ['*_PROXY', 'AWS_KEY'],
                                 'fs': ['/', '/a/*.txt', '/a/b'], 'process': None, 'fs-readonly': ['/', '/a', '/a/*.txt'],
                                 'env': ['*_PROXY', 'AWS_*', 'HOME']})),
                   ('b', _grant({'env-readonly': None, 'net': ['*', '*.x.org', '*:443'], 'env': ['AWS_*']}))],
             'd': [('b', _grant({'process': None})), ('c', None)]}
    eff = unify(ROOT, app, declared, edges)
    assert eff['c'].allows('net', ('x.org', 443)) and not eff['c'].allows('net', ('x.org', 80))


def test_host_scopes_meet_exactly():
    from capimport.scopes import scope_intersection
    a = frozenset({parse_pattern("host", "*:443")})
    b = frozenset({parse_pattern("host", "x.org")})
    assert {p.value for p in scope_intersection(a, b)} == {"x.org:443"}
    c = frozenset({parse_pattern("host", "*.x.org:*")})
    d = frozenset({parse_pattern("host", "api.x.org:80"), parse_pattern("host", "y.org:443")})
    assert {p.value for p in scope_intersection(c, d)} == {"api.x.org:80"}
    assert scope_intersection(frozenset({parse_pattern("host", "a.org:80")}),
                              frozenset({parse_pattern("host", "a.org:443")})) == frozenset()


def test_unify_always_terminates_on_random_graphs():
    import random
    rng = random.Random(1)
    # Broader pools than the property tests: '?', '**' and suffix globs make the conservative
    # intersection non-monotone pattern by pattern, which once made the loop run forever.
    texts = {"path": ["/a", "/a/b", "/a/*.txt", "/c", "/", "/a/?", "/a/**/x"],
             "host": ["*:443", "x.org", "x.org:443", "*.x.org", "*", "*.x.org:80"],
             "env": ["HOME", "AWS_*", "AWS_KEY", "*_PROXY", "*_KEY", "A*"]}
    nodes = NODES + ["e"]
    kinds = {"fs": "path", "fs-readonly": "path", "net": "host", "env": "env", "env-readonly": "env"}

    def grant():
        spec = {}
        for cap in rng.sample(CAPABILITIES, rng.randint(0, 7)):
            kind = kinds.get(cap)
            spec[cap] = None if kind is None or rng.random() < 0.4 else rng.sample(texts[kind], rng.randint(1, 3))
        return _grant(spec)

    for _ in range(400):
        declared = {n: grant() for n in nodes}
        edges = {ROOT: []}
        for parent in [ROOT] + nodes:
            for child in nodes:
                if parent != child and rng.randint(0, 2) == 0:
                    edges.setdefault(parent, []).append((child, None if rng.random() < 0.5 else grant()))
        eff = unify(ROOT, grant(), declared, edges)  # raises, rather than hangs, if it does not converge
        for node in nodes:
            assert eff[node] <= declared[node]
