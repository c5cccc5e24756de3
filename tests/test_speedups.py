"""The C accelerator lists frames exactly as the pure-Python walk needs them."""

from __future__ import annotations

import sys

import pytest

from capimport import attribution
from capimport.attribution import BOTTOM, CAPIMPORT, DYNAMIC, LOGGING, STDLIB, _EACH, _SKIP, _frames

speedups = pytest.importorskip("capimport._speedups", reason="the C accelerator is not built here")


def on_stack(names, probe):
    """Call probe(frame) from the innermost of nested frames whose co_filename are *names* (outermost first)."""
    call = lambda: probe(sys._getframe(1))  # noqa: E731
    for name in reversed(names):
        scope = {"nxt": call}
        exec(compile("def f():\n    return nxt()\n", name, "exec"), scope)
        call = scope["f"]
    return call()


def reference(frame, cache, stop_at):
    """What the C loop should produce: the Python twin, minus skipped and collapsed frames."""
    out, last = [], None
    for origin, filename, f in _frames(frame, cache):
        if filename == stop_at:
            break
        if origin is None:
            out.append((None, filename)); last = None
        elif origin in _EACH:
            out.append((origin, filename)); last = None
        elif origin in _SKIP:
            continue
        elif origin != last:
            out.append((origin, filename)); last = origin
    return out


def test_frames_skip_collapse_and_report_misses():
    names = ["/app/main.py", "/site/fw/a.py", "/site/fw/b.py", "/lib/os.py", "/site/fw/c.py",
             "/cap/enforcer.py", "/site/fw/d.py", "<string>", "/unknown.py", "/site/lib/x.py",
             "/lib/logging.py", "/site/lib/y.py", "/site/lib/z.py"]
    cache = {"/app/main.py": ":app:", "/site/fw/a.py": "fw", "/site/fw/b.py": "fw", "/lib/os.py": STDLIB,
             "/site/fw/c.py": "fw", "/cap/enforcer.py": CAPIMPORT, "/site/fw/d.py": "fw",
             "<string>": DYNAMIC, "/site/lib/x.py": "lib", "/lib/logging.py": LOGGING,
             "/site/lib/y.py": "lib", "/site/lib/z.py": "lib"}
    here = __file__
    got, want = on_stack(names, lambda frame: (
        [(o, f) for o, f, _ in speedups.frames(frame, cache, _SKIP, _EACH)], reference(frame, cache, here)))
    got = got[: len(want)]
    assert got == want
    assert got[:4] == [("lib", "/site/lib/z.py"), (LOGGING, "/lib/logging.py"), ("lib", "/site/lib/x.py"),
                       (None, "/unknown.py")]


def test_frames_returns_the_innermost_frame_of_each_run():
    cache = {"/site/fw/outer.py": "fw", "/site/fw/inner.py": "fw"}
    frame, entries = on_stack(["/site/fw/outer.py", "/site/fw/inner.py"],
                              lambda f: (f, speedups.frames(f, cache, _SKIP, _EACH)))
    assert entries[0][0] == "fw" and entries[0][2] is frame
    assert [e[1] for e in entries[:2]] == ["/site/fw/inner.py", __file__]  # the run of fw is listed once


def test_frames_rejects_bad_arguments():
    with pytest.raises(TypeError):
        speedups.frames(sys._getframe(), [], _SKIP, _EACH)
    with pytest.raises(TypeError):
        speedups.frames("not a frame", {}, _SKIP, _EACH)
    assert speedups.frames(None, {}, _SKIP, _EACH) == []


def test_walk_is_the_same_with_and_without_the_accelerator(monkeypatch):
    names = ["/app/main.py", "/site/fw/a.py", "/cap/x.py", "/site/lib/y.py"]
    cache = {"/app/main.py": ":app:", "/site/fw/a.py": "fw", "/cap/x.py": CAPIMPORT, "/site/lib/y.py": "lib"}

    class Origins:
        def __init__(self):
            self.cache = dict(cache)
            self.marked_names = set()

        def origin(self, filename):
            return self.cache.setdefault(filename, BOTTOM if filename == __file__ else ":app:")

    def both(frame):
        fast = attribution.walk(frame, Origins(), lambda kind, f: False)
        monkeypatch.setattr(attribution, "_speedups", None)
        return fast, attribution.walk(frame, Origins(), lambda kind, f: False)

    fast, slow = on_stack(names, both)
    assert [(l.origin, l.filename) for l in fast] == [(l.origin, l.filename) for l in slow]
    assert [l.origin for l in fast][:3] == ["lib", "fw", ":app:"]


def test_attribution_suite_passes_on_the_pure_python_walk(tmp_path):
    """Where no compiler built the accelerator, the pure-Python walk must decide the same."""
    import os
    import subprocess
    env = dict(os.environ, CAPIMPORT_PURE_PYTHON="1")
    tests = os.path.join(os.path.dirname(__file__), "runtime", "test_rt_attribution.py")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests],
                            capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_native_core_is_built_wherever_the_accelerator_is():
    """Both extensions are optional, so a broken build of the core would only show as skipped
    security tests: where a compiler built one, it must have built the other."""
    import importlib.util
    if importlib.util.find_spec("capimport._speedups") is None:
        import pytest
        pytest.skip("no C compiler: both extensions are absent, the pure-Python decision runs")
    assert importlib.util.find_spec("capimport._core") is not None


# ---------------------------------------------------------------- RECORD reading at start-up

from hypothesis import given, settings, strategies as st  # noqa: E402

from capimport import distributions  # noqa: E402


def python_record_paths(data: bytes, prefix: str) -> list:
    """The Python twin alone (the C path switched off for the call)."""
    saved, distributions._speedups = distributions._speedups, None
    try:
        return distributions.record_paths(data, prefix)
    finally:
        distributions._speedups = saved


def python_folders(files, inside: str) -> set:
    saved, attribution._speedups = attribution._speedups, None
    try:
        return attribution._folders(files, inside)
    finally:
        attribution._speedups = saved


_PIECES = st.sampled_from(["a", "pkg", "é", "x.py", ",", "\r", "\n", "\r\n", "/", "//", ".", "..", "./",
                           '"', "sha256=AbC", "123", " ", "\x0b", "\x1c", "\u2028", "dist-info"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_record_paths_in_c_reads_as_the_python_twin(text):
    data = text.encode("utf-8")
    prefix = "/site/é/"
    try:
        want = python_record_paths(data, prefix)
    except (UnicodeDecodeError, ValueError):
        want = None
    assert distributions.record_paths(data, prefix) == want


def test_record_paths_of_a_real_record():
    data = (b"pkg/__init__.py,sha256=abc,12\r\npkg/data/x.txt,,\n../../../bin/tool,sha256=d,3\n"
            b'"pkg/a,b.py",sha256=e,4\npkg-1.0.dist-info/RECORD,,\n')
    want = ["/sp/pkg/__init__.py", "/sp/pkg/data/x.txt", "/bin/tool", "/sp/pkg/a,b.py",
            "/sp/pkg-1.0.dist-info/RECORD"]
    assert python_record_paths(data, "/sp/") == want
    assert distributions.record_paths(data, "/sp/") == want   # C hands the quoted line's RECORD back
    plain = data.replace(b'"pkg/a,b.py",sha256=e,4\n', b"")
    assert speedups.record_paths(plain, b"/sp/") == (
        ["/sp/pkg/__init__.py", "/sp/pkg/data/x.txt", "/sp/../../../bin/tool", "/sp/pkg-1.0.dist-info/RECORD"], [2])
    assert speedups.record_paths(b"\xff\n", b"/sp/") is None    # not UTF-8: Python's read says so


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["sp", "a", "b", "é", "x.py", ""]), min_size=1, max_size=5)
                .map(lambda parts: "/" + "/".join(parts)), max_size=30))
def test_folders_in_c_are_the_python_twins(files):
    for inside in ("/sp/", "/", "/sp/a/"):
        assert speedups.folders(files, inside, "/") == python_folders(files, inside)
