"""The native path functions (src/capimport/_core_paths.h) against their Python references.

Each C function is run through ``leaf(name, *args)`` and compared with the
Python it replaces -- posixpath (CPython 3.11), shutil.which and
capimport.hook / capimport.scopes -- on the same arguments, from the same
current directory: the same str (surrogates included), or the same exception
type. realpath and its callers run on a real tree of symlinks (loops,
relative, absolute, dangling, links to directories, ``..`` after links,
spellings that encode to the same bytes).

The differences _core_paths.h documents (PATH read with getenv, readlink
past MAXPATHLEN, symlink chains past Python's recursion limit, one stat for
which's two) cannot show here; everything else must be identical.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import socket
import sys

import pytest
from hypothesis import given, settings, strategies as st

from capimport import hook, scopes
from capimport.guards import tamper
from capimport.guards.tamper import MEMORY_FILE_PATTERN
from capimport.table.events import ENVIRON_FILE_PATTERN

FAST = settings(max_examples=150, deadline=None)

#: The C port reproduces CPython 3.11's realpath and shutil.which (3.12 reworked which, 3.13
#: realpath); elsewhere the running interpreter's versions are not the reference.
py311 = pytest.mark.skipif(sys.version_info[:2] != (3, 11),
                           reason="the references are CPython 3.11's posixpath.realpath and shutil.which")


# ----------------------------------------------------------------------------- comparison


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - the exception type is what is compared
        return ("raise", type(exc))


def same(leaf, name, reference, *args):
    """leaf(name, *args) gives what reference(*args) gives: an equal value of the same type, or the
    same exception type."""
    got = outcome(leaf, name, *args)
    want = outcome(reference, *args)
    assert got == want, (name, args)
    if got[0] == "ok":
        assert type(got[1]) is type(want[1]), (name, args, got, want)
    return got


@contextlib.contextmanager
def cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def always_uri(value: bool):
    old = hook.SQLITE_ALWAYS_URI[0]
    hook.SQLITE_ALWAYS_URI[0] = value
    try:
        yield
    finally:
        hook.SQLITE_ALWAYS_URI[0] = old


def sqlite_reference(always):
    def reference(name, _flag):
        with always_uri(always):
            return hook.sqlite_targets(name)
    return reference


def py_which(name, path):
    return shutil.which(name, path=path)


def py_program_target(program, path):
    return hook.program_target(program, None if path is None else {"PATH": path})


def py_environ_file(path):
    return bool(re.match(ENVIRON_FILE_PATTERN, path))


# ----------------------------------------------------------------------------- the tree

# "\udcc3\udca9" encodes to the same bytes as "é" (b"\xc3\xa9"): two spellings of one file.
# "\udcff" is the undecodable byte 0xff, as os.listdir would spell it.
NAMES = ["d", "f", "sub", "g", "ld", "lf", "abs", "dangling", "loop1", "loop2", "self", "up",
         "back", "dd", "chain1", "dotlink", "ts", "dbl", "rootish", "x", "y", "é", "\udcc3\udca9",
         "ü", "\udcc3\udcbc", "\udcff", "file:d", "bin", "missing", "long", "deep0", "a b"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("paths"))
    j = lambda *p: os.path.join(root, *p)  # noqa: E731
    os.makedirs(j("d", "sub"))
    for f in (j("d", "f"), j("d", "sub", "g")):
        open(f, "w").close()
    os.mkdir(j("ü"))
    os.mkdir(j("a b"))
    os.mkdir(j("x"))
    os.makedirs(j("file:", "tmp"))
    os.mkdir(j("file:d"))
    links = {
        "ld": "d",                      # relative, to a directory
        "lf": "d/f",                    # relative, to a file
        "abs": j("d", "sub"),           # absolute
        "dangling": "nowhere/x",        # target missing
        "loop1": "loop2",               # a two-link loop
        "loop2": "loop1",
        "self": "self",                 # a one-link loop
        "up": "..",                     # the parent (.. inside a link)
        "d/back": "../ld",              # a chain through another link
        "d/sub/dd": "../..",            # up two
        "chain1": "chain2", "chain2": "chain3", "chain3": "ld",
        "dotlink": ".",
        "ts": "d/",                     # trailing slash
        "dbl": "d//sub/",               # doubled slash
        "rootish": "//" + root.lstrip("/") + "/d",   # absolute with two leading slashes
        "x/y": "../loop1/z",            # into a loop, with a rest
        "é": "d",
        "\udcff": "d/sub",
        "long": "d/" + "./" * 700 + "f",  # a target longer than the first readlink buffer
        "loopdir": "loopdir/again/..",  # a loop reached through itself with a rest
    }
    for name, target in links.items():
        os.symlink(target, j(name))
    # a chain of 60 links, deeper than any fixed limit a port might keep
    for i in range(60):
        os.symlink(f"deep{i + 1}" if i < 59 else "d", j(f"deep{i}"))
    # programs for which()
    os.mkdir(j("bin"))
    os.mkdir(j("bin2"))
    for path, mode in ((j("bin", "tool"), 0o755), (j("bin", "notexec"), 0o644), (j("bin2", "tool2"), 0o755),
                       (j("bin2", "tool"), 0o755), (j("d", "tool3"), 0o755)):
        with open(path, "w") as fh:
            fh.write("#!/bin/sh\n")
        os.chmod(path, mode)
    os.mkdir(j("bin", "direxec"))
    os.chmod(j("bin", "direxec"), 0o755)
    os.symlink("tool", j("bin", "ltool"))
    os.symlink("../bin2/tool2", j("bin", "ltool2"))
    os.symlink("nowhere", j("bin", "lbroken"))
    return root


PATH_TOKENS = ["/", "/", "/", ".", "..", "a", "b", " ", "é", "€", "\udcff", "\udcc3\udca9"]
TEXT = st.lists(st.sampled_from(PATH_TOKENS + ["\x00", "\ud800", "//", "aa"]), max_size=12).map("".join)


def tree_path(root):
    """Paths inside the tree: relative, or under the tree's absolute root, or under "/"."""
    comps = st.lists(st.sampled_from(NAMES + [".", "..", "", "..", "."]), max_size=8).map("/".join)
    return st.tuples(st.sampled_from(["", "", root + "/", root + "//", "/", "./", "d/"]), comps,
                     st.sampled_from(["", "", "/", "/.", "/.."])).map("".join)


# ----------------------------------------------------------------------------- normpath, abspath


NORMPATH_CASES = ["", ".", "..", "/", "//", "///", "////a", "//a//b/", "///a/../..", "a/..", "a/../..",
                  "../../a", "/..", "/../a", "//..", "//../a/./b", "./", "./.", "a/./b/.", "a//b", ".../a",
                  "a/.../..", "..a/..", "a..", "\x00", "a/\x00/..", "\ud800/..", "\udcff/./x", "é/../€"]


@pytest.mark.parametrize("path", NORMPATH_CASES)
def test_normpath_cases(leaf, path):
    same(leaf, "normpath", posixpath.normpath, path)


@FAST
@given(TEXT)
def test_normpath(leaf, path):
    same(leaf, "normpath", posixpath.normpath, path)


@FAST
@given(TEXT)
def test_abspath(leaf, tree, path):
    with cwd(tree):
        same(leaf, "abspath", posixpath.abspath, path)
    with cwd("/"):
        same(leaf, "abspath", posixpath.abspath, path)


@py311
def test_abspath_long_cwd(leaf, tmp_path):
    # a current directory longer than getcwd's first buffer (1024 bytes)
    deep = str(tmp_path)
    with cwd(deep):
        for _ in range(12):
            os.mkdir("c" * 120)
            os.chdir("c" * 120)
        assert len(os.getcwd()) > 1500
        for path in ("", "x", "../y", "/abs"):
            same(leaf, "abspath", posixpath.abspath, path)
            same(leaf, "realpath", posixpath.realpath, path)
            same(leaf, "resolve_path", scopes.resolve_path, path)


@py311
def test_deleted_cwd(leaf, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    with cwd(gone):
        gone.rmdir()
        for name, ref in (("abspath", posixpath.abspath), ("realpath", posixpath.realpath),
                          ("resolve_path", scopes.resolve_path), ("glob_target", hook.glob_target)):
            assert same(leaf, name, ref, "rel")[0] == "raise"
            same(leaf, name, ref, "/abs/olute")
        assert same(leaf, "sqlite_targets", sqlite_reference(True), "file:x", 1) == ("raise", FileNotFoundError)
        same(leaf, "sqlite_targets", sqlite_reference(False), "plain", 0)


# ----------------------------------------------------------------------------- realpath, resolve_path


REALPATH_CASES = ["", ".", "..", "ld", "ld/", "ld/f", "ld/..", "ld/../d", "lf", "lf/..", "abs", "abs/..",
                  "dangling", "dangling/..", "dangling/../x", "loop1", "loop1/x/../y", "loop1//z", "loop1/",
                  "self", "self/", "self/../d", "up", "up/up/x", "d/back/f", "d/sub/dd/ld/sub",
                  "chain1/sub/g", "dotlink/dotlink/ld", "ts/f", "dbl/g", "rootish/f", "x/y", "x/y/w",
                  "x/y/..", "é/f", "\udcc3\udca9/f", "ü", "\udcc3\udcbc", "\udcff/g", "long", "long/..",
                  "deep0/f", "deep30/../d", "loopdir", "loopdir/q", "missing/../ld", "a b/../ld",
                  "ld/\x00", "\x00", "missing/\x00", "ld/sub/g\x00", "loop1/\x00", "d/f/x", "d/f/..",
                  "a/" * 2100 + "b", "ld/" * 40 + "f", "ld/../" * 50 + "d",
                  "\ud800", "ld/\ud800", "loop1/\ud800"]


@py311
@pytest.mark.parametrize("path", REALPATH_CASES)
def test_realpath_cases(leaf, tree, path):
    for where in (tree, os.path.join(tree, "d", "sub")):
        with cwd(where):
            same(leaf, "realpath", posixpath.realpath, path)
            same(leaf, "realpath", posixpath.realpath, os.path.join(tree, path))
            same(leaf, "resolve_path", scopes.resolve_path, path)


@py311
def test_realpath_errors_where_python_raises(leaf, tree):
    # Python encodes (and checks for NUL) only what it lstat()s: nothing after a loop.
    with cwd(tree):
        assert leaf("realpath", "loop1/\ud800") == posixpath.realpath("loop1/\ud800") \
            == os.path.join(tree, "loop1", "\ud800")
        assert leaf("realpath", "self/a\x00b/..") == posixpath.realpath("self/a\x00b/..") \
            == os.path.join(tree, "self")
        assert outcome(leaf, "realpath", "ld/\ud800") == ("raise", UnicodeEncodeError)
        assert outcome(leaf, "realpath", "ld/\x00") == ("raise", ValueError)
        assert outcome(leaf, "realpath", "\x00\ud800") == ("raise", UnicodeEncodeError)
        assert outcome(leaf, "realpath", "\x00/\ud800") == ("raise", ValueError)


@py311
def test_realpath_keeps_spelling(leaf, tree):
    # "\udcc3\udcbc" names the directory "ü"; Python's answer keeps the caller's spelling
    with cwd(tree):
        got = leaf("realpath", "\udcc3\udcbc/x")
        assert got == posixpath.realpath("\udcc3\udcbc/x") == os.path.join(tree, "\udcc3\udcbc", "x")
        assert got != os.path.join(tree, "ü", "x")


@py311
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_realpath(leaf, tree, data):
    path = data.draw(tree_path(tree))
    where = data.draw(st.sampled_from([tree, os.path.join(tree, "d"), os.path.join(tree, "d", "sub")]))
    with cwd(where):
        same(leaf, "realpath", posixpath.realpath, path)
        same(leaf, "resolve_path", scopes.resolve_path, path)


@py311
@FAST
@given(TEXT)
def test_realpath_any_text(leaf, tree, path):
    with cwd(tree):
        same(leaf, "realpath", posixpath.realpath, path)
        same(leaf, "resolve_path", scopes.resolve_path, path)


# ----------------------------------------------------------------------------- glob_target


GLOB_TOKENS = NAMES[:20] + ["*", "?", "[a]", "[", "**", "a*", "/", "/", "/", ".", "..", "", "\x00"]


@py311
@pytest.mark.parametrize("pattern", ["", "*", "/*", "//*", "/", "a/*", "ld/*.py", "ld/sub/[ab]", "ld/?/x",
                                     "/d/**/x", "ld", "loop1/*", "loop1/x/*", "a/*\x00", "a\x00/*", "*/ld"])
def test_glob_target_cases(leaf, tree, pattern):
    with cwd(tree):
        same(leaf, "glob_target", hook.glob_target, pattern)


@py311
@FAST
@given(st.tuples(st.sampled_from(["", "/", "./"]), st.lists(st.sampled_from(GLOB_TOKENS), max_size=8))
       .map(lambda t: t[0] + "/".join(t[1])))
def test_glob_target(leaf, tree, pattern):
    with cwd(tree):
        same(leaf, "glob_target", hook.glob_target, pattern)


# ----------------------------------------------------------------------------- which, program_target


PROGRAMS = ["tool", "tool2", "tool3", "notexec", "direxec", "ltool", "ltool2", "lbroken", "bin/tool",
            "./bin/tool", "bin/ltool", "bin/notexec", "bin/direxec", "bin/", "/bin/sh", "sh", "", "nope",
            "a\x00b", "bin/a\x00b", "\ud800", "bin/\ud800", "é", "ld/tool3"]
DIRS = ["bin", "bin2", "", ".", "d", "ld", "missing", "bin/", "bin//", "./bin", "bin\x00", "\ud800", "/usr/bin"]


@py311
@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PROGRAMS), st.one_of(st.lists(st.sampled_from(DIRS), max_size=5).map(":".join),
                                            st.sampled_from(["", ":", "::"])))
def test_which_and_program_target(leaf, tree, name, path):
    with cwd(tree):
        same(leaf, "which", py_which, name, path)
        same(leaf, "program_target", py_program_target, name, path)
        assert outcome(hook.which, name, path) == outcome(py_which, name, path)   # the pure fallback's
        # the absolute spelling of the same search path
        abs_path = ":".join(os.path.join(tree, d) if d and not d.startswith("/") else d for d in path.split(":"))
        same(leaf, "which", py_which, name, abs_path)


@py311
@pytest.mark.parametrize("path_env", ["bin:bin2", "", ":", None, "/usr/bin:/bin"])
def test_which_default_path(leaf, tree, monkeypatch, path_env):
    # path=None: the process's PATH (os.environ and the C environment agree: os.environ sets both),
    # and with no PATH at all, os.confstr("CS_PATH")
    if path_env is None:
        monkeypatch.delenv("PATH", raising=False)
    else:
        monkeypatch.setenv("PATH", path_env)
    with cwd(tree):
        for name in PROGRAMS:
            same(leaf, "which", py_which, name, None)
            same(leaf, "program_target", py_program_target, name, None)
            assert outcome(hook.which, name, None) == outcome(py_which, name, None)


# ----------------------------------------------------------------------------- fd_path


def test_fd_path(leaf, tree, tmp_path):
    opened = []
    try:
        def keep(fd):
            opened.append(fd)
            return fd

        fds = [keep(os.open(os.path.join(tree, "d", "f"), os.O_RDONLY)),
               keep(os.open(os.path.join(tree, "ld"), os.O_RDONLY | os.O_DIRECTORY)),
               keep(os.open(os.path.join(tree, "\udcff", "g"), os.O_RDONLY)),
               keep(os.open("/dev/null", os.O_RDONLY))]
        fds += [keep(fd) for fd in os.pipe()]
        sock = socket.socket()
        opened.append(sock)
        fds.append(sock.fileno())
        named = tmp_path / "name (deleted) here"
        named.write_text("")
        fds.append(keep(os.open(named, os.O_RDONLY)))
        gone = tmp_path / "gone"
        gone.write_text("")
        fds.append(keep(os.open(gone, os.O_RDONLY)))
        gone.unlink()
        closed = os.open("/dev/null", os.O_RDONLY)
        os.close(closed)
        for fd in fds + [closed, -1, 0, 2, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63), 10**30, -(10**30)]:
            same(leaf, "fd_path", hook._fd_path, fd)
        assert leaf("fd_path", fds[0]) == os.path.join(tree, "d", "f")
        assert leaf("fd_path", fds[-1]) is None   # deleted
        assert leaf("fd_path", fds[-2]) is None   # a name that says " (deleted)"
    finally:
        for item in opened:
            item.close() if isinstance(item, socket.socket) else os.close(item)


# ----------------------------------------------------------------------------- sqlite_targets


SQLITE_TOKENS = ["file:", "//", "/", "localhost", "evil", "%2f", "%2F", "%", "%4", "%zz", "%00", "%c3%a9",
                 "%ff", "?", "#", "&", "=", "mode", "mode=ro", "mode=rw", "mode=rwc", "mode=memory",
                 "immutable=1", "immutable=0", "immutable=", "%6dode=ro", "mode=%72o", ":memory:", "a", "b",
                 "..", "tmp", "d", "é", "\udcff", "\ud800", "\x00", "%%", "cache=shared"]
SQLITE_NAMES = st.one_of(
    st.lists(st.sampled_from(SQLITE_TOKENS), max_size=10).map(lambda t: "file:" + "".join(t)),
    st.lists(st.sampled_from(SQLITE_TOKENS), max_size=10).map("".join),
)


@pytest.mark.parametrize("name", [
    "", ":memory:", "plain.db", "/abs.db", "file:", "file:a.db", "file:/tmp/x.db", "file:///tmp/x.db",
    "file://localhost/tmp/x.db", "file://evil/tmp/x.db", "file://", "file://localhost", "file:x?mode=ro",
    "file:x?mode=memory", "file::memory:", "file::memory:?cache=shared", "file:x?immutable=1",
    "file:x?immutable=0", "file:x?mode=ro&mode=rw", "file:x?mode=rw&mode=ro", "file:..%2f..%2fetc%2fpasswd",
    "file:x#?mode=ro", "file:x?a#mode=ro", "file:%2e%2e/x", "file:d", "file:d/x", "file:/tmp/y",
    "file:x%", "file:x%4", "file:x%ff", "file:%c3%a9", "file:\udcff%41", "file:\ud800", "file:%\ud800",
    "file:x?%\ud800=1", "file:a\x00b", "file:x?mode=ro\x00", "file:x%00y", "FILE:x", "file:x?%6dode=ro",
    "file:x?mode=%72o", "file:x?=ro", "file:x?mode", "file:x?&&mode=ro&", "file:\x00?mode=memory"])
@pytest.mark.parametrize("flag", [False, True])
def test_sqlite_targets_cases(leaf, tree, name, flag):
    with cwd(tree):
        same(leaf, "sqlite_targets", sqlite_reference(flag), name, flag)


@settings(max_examples=300, deadline=None)
@given(SQLITE_NAMES, st.booleans())
def test_sqlite_targets(leaf, tree, name, flag):
    with cwd(tree):
        same(leaf, "sqlite_targets", sqlite_reference(flag), name, int(flag))


# ----------------------------------------------------------------------------- environ_file


ENVIRON_CASES = ["/proc/self/environ", "/proc/thread-self/environ", "/proc/1/environ", "/proc/123/task/45/environ",
                 "/proc/self/task/1/environ", "/proc/thread-self/task/7/environ", "/proc/self/environ\n",
                 "/proc/self/environ\n\n", "/proc/self/environ ", "/proc/self/environx", "/proc//environ",
                 "/proc/self/task//environ", "/proc/self/task/environ", "/proc/selfx/environ", "/proc/1a/environ",
                 "/proc/\u0663\u0661/environ", "/proc/\U0001d7d8/task/\u0967/environ", "/proc/\u00b2/environ",
                 "/proc/\u2460/environ", "/proc/1/task/\u00b2/environ", "proc/self/environ", "/proc/self/environ\r",
                 "\n/proc/self/environ", "/proc/self/task/1/task/2/environ", "", "/proc/", "/proc/self",
                 "/PROC/self/environ", "/proc/1/environ\x00", "/proc/\uff11/environ"]


@pytest.mark.parametrize("path", ENVIRON_CASES)
def test_environ_file_cases(leaf, path):
    same(leaf, "environ_file", py_environ_file, path)
    assert hook._ENVIRON_FILE.pattern == ENVIRON_FILE_PATTERN


ENVIRON_TOKENS = ["/proc/", "/proc/", "self", "thread-self", "1", "23", "\u0663", "\U0001d7d8", "\u00b2", "\u2460",
                  "/task/", "/environ", "/environ", "\n", "x", "/", "environ", "task", "-", "s", "t"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(st.sampled_from(ENVIRON_TOKENS), max_size=7).map("".join), st.text(max_size=20)))
def test_environ_file(leaf, path):
    same(leaf, "environ_file", py_environ_file, path)


# ----------------------------------------------------------------------------- memory_file


def py_memory_file(path):
    return bool(re.match(MEMORY_FILE_PATTERN, path))


MEMORY_CASES = ["/proc/self/mem", "/proc/thread-self/mem", "/proc/1/mem", "/proc/12/task/3/mem", "/proc/self/mem\n",
                "/proc/self/mem\n\n", "/proc/self/memx", "/proc/self/mem/", "/proc/self/map_files",
                "/proc/self/map_files/", "/proc/self/map_files/7f00-7f01", "/proc/self/map_files/a\n",
                "/proc/self/map_files/a\nb", "/proc/self/map_files/a\n\n", "/proc/self/map_filesx",
                "/proc/1/task/2/map_files/x/y", "/proc/\u0663/mem", "/proc/\u00b2/mem", "/proc//mem",
                "/proc/self/task//mem", "/proc/self/environ", "proc/self/mem", "/proc/self/mem ", "",
                "/proc/self/map_files\n", "/proc/self/map_files\nx", "/proc/self/task/1/task/2/mem"]


@pytest.mark.parametrize("path", MEMORY_CASES)
def test_memory_file_cases(leaf, path):
    same(leaf, "memory_file", py_memory_file, path)
    assert tamper.MEMORY_FILE.pattern == MEMORY_FILE_PATTERN


MEMORY_TOKENS = ["/proc/", "/proc/", "self", "thread-self", "1", "\u0663", "\u00b2", "/task/", "/mem", "/map_files",
                 "/", "\n", "x", "mem", "map_files", "-"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(st.sampled_from(MEMORY_TOKENS), max_size=7).map("".join), st.text(max_size=20)))
def test_memory_file(leaf, path):
    same(leaf, "memory_file", py_memory_file, path)


# ----------------------------------------------------------------------------- arguments


class Str(str):
    pass


@pytest.mark.parametrize("name", ["normpath", "abspath", "realpath", "resolve_path", "glob_target",
                                  "environ_file", "memory_file"])
def test_only_exact_str(leaf, name):
    for bad in (b"/x", Str("/x"), None, 3):
        with pytest.raises(TypeError):
            leaf(name, bad)


def test_argument_types(leaf):
    with pytest.raises(TypeError):
        leaf("which", Str("sh"), None)
    with pytest.raises(TypeError):
        leaf("which", "sh", Str("/bin"))
    with pytest.raises(TypeError):
        leaf("program_target", b"sh", None)
    with pytest.raises(TypeError):
        leaf("sqlite_targets", Str("file:x"), 0)
    with pytest.raises(TypeError):
        leaf("fd_path", True)
    with pytest.raises(TypeError):
        leaf("realpath", "/a", "/b")
