"""The hand-written value classes of the run-time path behave as the dataclasses they replaced,
and the run-time modules do not import ``dataclasses`` (and with it ``inspect``)."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import pytest

from capimport._values import FrozenInstanceError
from capimport.config import Config
from capimport.distributions import Distribution
from capimport.errors import Diagnostic
from capimport.grant import Grant
from capimport.graph import DependencyGraph, Edge
from capimport.manifest import Manifest
from capimport.report import Violation
from capimport.scopes import ScopePattern


def test_runtime_modules_do_not_import_dataclasses():
    code = ("import sys, capimport.runner, capimport.policy, capimport.policycache, capimport.enforcer, "
            "capimport.importguard, capimport.guards; "
            "print(sorted({'dataclasses', 'inspect'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_frozen_values_refuse_assignment_and_deletion():
    diagnostic = Diagnostic("f.toml", 1, 2, "bad")
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'line'"):
        diagnostic.line = 3  # type: ignore[misc]
    with pytest.raises(AttributeError, match="cannot delete field 'path'"):
        del diagnostic.path
    with pytest.raises(AttributeError):
        Grant().extra = 1  # type: ignore[attr-defined]


def test_equality_hash_and_repr_as_dataclasses():
    assert Diagnostic("f", 1, 2, "m") == Diagnostic(path="f", line=1, column=2, message="m", severity="error")
    assert hash(Diagnostic("f", 1, 2, "m")) == hash(("f", 1, 2, "m", "error"))
    assert Diagnostic("f", 1, 2, "m").__eq__(("f", 1, 2, "m", "error")) is NotImplemented
    assert repr(Diagnostic("f", 1, 2, "m")) == "Diagnostic(path='f', line=1, column=2, message='m', severity='error')"
    assert hash(Grant()) == hash(((),)) and repr(Grant()) == "Grant(entries=())"
    assert Edge("a", "b", "b") == Edge("a", "b", "b", frozenset())
    assert DependencyGraph.__hash__ is None and Violation.__hash__ is None and Distribution.__hash__ is None


def test_scope_pattern_compares_kind_and_value_only():
    a, b = ScopePattern("path", "/x", "x"), ScopePattern("path", "/x", "./x")
    assert a == b and hash(a) == hash(b) and not a < b and a <= b
    assert sorted([ScopePattern("path", "/b"), ScopePattern("env", "A"), ScopePattern("path", "/a")]) == \
           [ScopePattern("env", "A"), ScopePattern("path", "/a"), ScopePattern("path", "/b")]
    assert repr(a) == "ScopePattern(kind='path', value='/x', text='x')"
    with pytest.raises(TypeError):
        a < ("path", "/x")  # noqa: B015


def test_mutable_defaults_are_fresh_and_private_fields_stay_out_of_repr():
    one, two = Manifest("a", Grant(), "config"), Manifest("a", Grant(), "config")
    assert one.passes == {} and one.passes is not two.passes
    assert Config().packages is not Config().packages
    assert DependencyGraph({}).missing is not DependencyGraph({}).missing
    dist = Distribution("n", "N", "1", "/l", "/i", _files=("/l/n.py",))
    assert repr(dist) == ("Distribution(name='n', display_name='N', version='1', location='/l', info_dir='/i', "
                          "requires=(), provides_extras=())")
    assert dist != Distribution("n", "N", "1", "/l", "/i")  # _files is compared, as before


@pytest.mark.parametrize("value", [
    Diagnostic("f", 1, 2, "m", "warning"), Grant.of({"net": frozenset([ScopePattern("host", "x:1", "x:1")])}),
    Manifest("a", Grant.of(["fs"]), "config", passes={"b": Grant()}), Config(mode="enforce"),
    Edge("a", "b", "b", frozenset({"x"})), Distribution("n", "N", "1", "/l", "/i"),
    Violation("o", "1", "net", "api", "an", "s", "loc"),
])
def test_values_pickle_and_copy(value):
    assert pickle.loads(pickle.dumps(value)) == value
    assert copy.copy(value) == value and copy.deepcopy(value) == value
