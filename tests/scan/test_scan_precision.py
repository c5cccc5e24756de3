"""Scanner precision: uses that are marked rather than counted, and false positives removed.

* own files: reading the distribution's own installed files is free at run time, so such
  evidence is marked ``own`` and does not count toward ``fs-readonly`` (writes still count);
* ``__main__``: code under ``if __name__ == "__main__":`` and in ``__main__.py`` is marked
  ``entry="__main__"`` and still counts (``python -m`` runs it);
* platforms: code under ``sys.platform``/``os.name``/``platform.system()`` tests carries the
  condition and counts only where it holds.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from capimport import scan
from capimport.auditdiff import check
from capimport.policy import load_policy
from distbuilder import make_dist, write_config


def evidence(source: str, module: str = "pkg.mod") -> list:
    summary = scan.analyse_source(textwrap.dedent(source).encode(), module, module.endswith("__init__"),
                                  frozenset({"pkg"}))
    out = []
    for record in summary.uses:
        out.extend(scan.evidence_of(record, record[0], "pkg/mod.py", frozenset({"pkg"})))
    return sorted(out, key=lambda e: (e.line, e.col, e.capability))


def at(items: list, line: int) -> list:
    return [e for e in items if e.line == line]


def one(items: list, line: int, capability: str = None):
    found = [e for e in at(items, line) if capability is None or e.capability == capability]
    assert len(found) == 1, (line, found)
    return found[0]


# ---------------------------------------------------------------- own files

OWN_SOURCE = """\
import os, pkgutil, importlib.resources
from pathlib import Path
from importlib.resources import files, as_file
import pkg
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = Path(__file__).parent / "data"
def f(name):
    open(os.path.join(os.path.dirname(__file__), "table.txt"))
    open(os.path.join(HERE, name), "rb")
    (DATA / "x.json").read_text()
    Path(__file__).resolve().parent.joinpath("y").read_bytes()
    files(__package__).joinpath("a.txt").read_text()
    (files("pkg") / "b").open("rb")
    with as_file(files(__name__) / "c") as path:
        open(path).read()
    pkgutil.get_data(__name__, "d.bin")
    importlib.resources.read_text("pkg", "e.txt")
    open(f"{HERE}/f.txt")
    open(HERE + "/g.txt")
    os.listdir(os.path.join(os.path.dirname(pkg.__file__), "templates"))
    open(os.path.join(os.path.dirname(__spec__.origin), "h"))
"""


def test_reading_own_files_is_marked_own_and_does_not_count():
    items = evidence(OWN_SOURCE)
    for line in range(8, 22):
        reads = at(items, line)
        assert reads, line
        for item in reads:
            assert item.capability == "fs-readonly" and item.own, (line, item)
            assert not item.counts()
    assert scan.evidence_grant(e for e in items if e.counts()).names == ()


def test_writing_own_files_still_counts_as_fs():
    items = evidence("""\
        import os
        from pathlib import Path
        HERE = os.path.dirname(__file__)
        def save(text):
            open(os.path.join(HERE, "cache.json"), "w")
            (Path(__file__).parent / "state").write_text(text)
            os.remove(os.path.join(HERE, "old"))
    """)
    for line in (5, 6, 7):
        item = one(items, line)
        assert item.capability == "fs" and item.own and item.counts()


@pytest.mark.parametrize("expression", [
    'os.path.join(HERE, "..", "..", "etc", "passwd")',      # leaves the package
    'os.path.join(HERE, "/etc/passwd")',                     # an absolute component replaces it
    'HERE + "/../secret"',
    'os.path.join(os.getcwd(), "x")',                        # not derived from __file__
    'os.path.join(HOME, "x")',
    'files("otherpkg").joinpath("x")',                       # another distribution's resources
])
def test_paths_not_provably_inside_the_distribution_count(expression):
    items = evidence(f"""\
        import os
        from importlib.resources import files
        HERE = os.path.dirname(__file__)
        HOME = os.path.expanduser("~")
        def f():
            open({expression})
    """)
    [item] = [e for e in at(items, 6) if e.api == "open"]
    assert not item.own and item.counts()


def test_a_rebound_file_name_is_not_own():
    items = evidence("""\
        def f(__file__):
            open(__file__)
    """)
    assert not one(items, 2).own


def test_other_packages_resources_count():
    items = evidence("""\
        import pkgutil
        from importlib.resources import files
        def f():
            files("otherpkg").joinpath("a").read_text()
            pkgutil.get_data("otherpkg", "x")
    """)
    assert [(e.api, e.own) for e in at(items, 4)] == [
        ("importlib.resources.abc.Traversable.read_text", False), ("importlib.resources.files", False)]
    assert not one(items, 5).own and one(items, 5).counts()


# ---------------------------------------------------------------- __main__

def test_main_block_is_marked_and_counts():
    items = evidence("""\
        import os, urllib.request
        def helper():
            os.system("x")
        if __name__ == "__main__":
            def update():
                urllib.request.urlopen("https://example.org/data")
            update()
            os.system("y")
        os.system("after")
    """)
    assert one(items, 3).entry == ""
    assert one(items, 6, "net").entry == "__main__" and one(items, 6, "net").counts()
    assert one(items, 8).entry == "__main__"
    assert one(items, 9).entry == ""
    assert "[__main__]" in one(items, 8).describe()


def test_main_module_is_marked_whole():
    items = evidence("import subprocess\nsubprocess.run(['ls'])\n", module="pkg.__main__")
    assert [(e.capability, e.entry) for e in items] == [("process", "__main__")]
    assert items[0].counts()


# ---------------------------------------------------------------- platforms

def test_platform_branches_carry_their_condition():
    items = evidence("""\
        import os, sys, platform, ctypes
        def f(x):
            if sys.platform == "win32":
                ctypes.windll.kernel32.GetStdHandle(-11)
            else:
                os.system("posix")
            if os.name == "nt":
                os.startfile(x)
            elif sys.platform == "darwin":
                os.system("open")
            if sys.platform.startswith("win"):
                os.system("w1")
            if sys.platform.startswith("freebsd"):
                os.system("bsd")
            if platform.system() == "Windows":
                os.system("w2")
            if sys.platform in ("win32", "cygwin"):
                os.system("w3")
            if sys.platform == "win32" and x:
                os.system("w4")
            else:
                os.system("unknown")
            y = os.system("w5") if os.name == "nt" else None
            if not sys.platform != "win32":
                os.system("w6")
    """)
    expected = {4: "win32", 6: "!win32", 8: "win32", 10: "!win32&darwin", 12: "win32", 14: "freebsd*",
                16: "win32", 18: "cygwin|win32", 20: "win32", 22: "", 23: "win32", 25: "win32"}
    for line, condition in expected.items():
        assert {e.platform for e in at(items, line)} == {condition}, line
    win = one(items, 4)
    assert not win.counts("linux") and win.counts("win32")
    assert one(items, 6).counts("linux") and not one(items, 6).counts("win32")
    assert one(items, 10).counts("darwin") and not one(items, 10).counts("linux")
    assert one(items, 14).counts("freebsd14") and not one(items, 14).counts("linux")
    assert one(items, 18).counts("cygwin")
    assert one(items, 22).counts("linux")


def test_a_name_bound_to_a_platform_test():
    items = evidence("""\
        import sys, ctypes, os
        WIN = sys.platform.startswith("win")
        IS_MAC = sys.platform == "darwin"
        def f():
            if WIN:
                ctypes.WinDLL("kernel32")
            if not WIN:
                os.system("x")
            if IS_MAC or WIN:
                os.system("y")
    """)
    assert one(items, 6).platform == "win32"
    assert one(items, 8).platform == "!win32"
    assert one(items, 10).platform == "darwin|win32"


def test_what_follows_a_platform_exit_runs_only_there():
    items = evidence("""\
        import sys, ctypes, os
        def g():
            if sys.platform != "win32":
                raise NotImplementedError
            ctypes.CDLL("a")
            def inner():
                ctypes.CDLL("b")
            return inner
        def h():
            ctypes.CDLL("c")
        try:
            if sys.platform == "win32":
                loader = 1
            else:
                raise ImportError("Not windows")
            ctypes.WinDLL("d")
        except ImportError:
            os.system("handler")
        else:
            ctypes.WinDLL("e")
        os.system("module")
        assert sys.platform == "win32"
        ctypes.WinDLL("f")
    """)
    assert {line: one(items, line).platform for line in (5, 7, 10, 16, 18, 20, 21, 23)} == {
        5: "win32", 7: "win32", 10: "", 16: "win32", 18: "", 20: "win32", 21: "", 23: "win32"}


def test_what_follows_a_platform_only_import_runs_only_there():
    items = evidence("""\
        import ctypes, os
        def f():
            ctypes.CDLL("a")
        try:
            import winreg
            ctypes.WinDLL("b")
        except ImportError:
            os.system("c")
        def g():
            from ctypes import windll
            windll.kernel32.GetStdHandle(-11)
        def h():
            import fcntl
            os.fork()
        ctypes.CDLL("d")
        import msvcrt
        ctypes.CDLL("e")
    """)
    assert {line: one(items, line).platform for line in (3, 6, 8, 11, 14, 15, 17)} == {
        3: "", 6: "win32", 8: "", 11: "win32", 14: "!win32", 15: "", 17: "win32"}
    six = evidence("import ctypes\nfrom six.moves import winreg\nctypes.WinDLL('k')\n")
    assert one(six, 3).platform == "win32"


def test_python_version_branches_carry_their_condition():
    items = evidence("""\
        import sys, os
        if sys.version_info >= (3, 11):
            os.system("a")
        elif sys.version_info >= (3, 7):
            os.system("b")
        else:
            open("/etc/hosts")
        if sys.version_info[:2] == (3, 7):
            os.system("c")
        PY2 = sys.version_info[0] == 2
        if PY2:
            os.system("d")
        if (3, 12) <= sys.version_info:
            os.system("e")
        if sys.version_info < (3, 8) or sys.platform == "win32":
            os.system("f")
        else:
            os.system("g")
    """)
    assert {line: one(items, line).python for line in (3, 5, 7, 9, 12, 14, 16, 18)} == {
        3: ">=3.11", 5: "<3.11,>=3.7", 7: "<3.11,<3.7", 9: ">=3.7,<3.8", 12: ">=2,<3", 14: ">=3.12",
        16: "", 18: ">=3.8"}
    assert one(items, 18).platform == "!win32"
    assert one(items, 7).counts() is (sys.version_info < (3, 7))
    assert one(items, 3).counts() is (sys.version_info >= (3, 11))
    assert scan.version_matches(">=3.7,<3.8", (3, 7, 9)) and not scan.version_matches(">=3.7,<3.8", (3, 8, 0))
    assert scan.version_matches("<3.11", (3, 10, 12, "final", 0)) and not scan.version_matches("<3.11", (3, 11, 0))


def test_non_platform_tests_add_nothing():
    items = evidence("""\
        import os, sys
        def f(x):
            if x == "win32":
                os.system("a")
            if sys.version_info >= (3, 11):
                os.system("b")
            if sys.platform == x:
                os.system("c")
    """)
    assert {e.platform for e in items} == {""}


def test_platform_constant_from_another_module(site):
    make_dist(site, "plat", files={
        "plat/__init__.py": "",
        "plat/_compat.py": "import sys\nWIN = sys.platform.startswith('win')\n",
        "plat/term.py": "import ctypes, os\nfrom ._compat import WIN\nfrom . import _compat\n"
                        "def f():\n    if WIN:\n        ctypes.WinDLL('k')\n"
                        "    if not _compat.WIN:\n        os.system('x')\n",
    })
    from capimport.distributions import find_distributions
    result = scan.scan_distribution(find_distributions([str(site)])["plat"])
    marks = {(e.capability, e.line): e.platform for e in result.evidence}
    assert marks == {("ffi", 6): "win32", ("process", 8): "!win32"}
    assert result.inferred.names == ("process",)


# ---------------------------------------------------------------- table fixes

def test_compressors_over_a_file_object_open_no_path():
    items = evidence("""\
        import gzip, tarfile, sys
        def f(out, name):
            gzip.GzipFile('', 'wb', 9, out)
            gzip.GzipFile(fileobj=out, mode='wb')
            tarfile.open(fileobj=out, mode="w:gz")
            gzip.GzipFile(name, 'wb')
            tarfile.open(name, "w")
            gzip.GzipFile(name, 'wb', 9, None)
    """)
    assert [(e.line, e.capability) for e in items] == [(6, "fs"), (7, "fs"), (8, "fs")]


def test_register_at_fork_starts_nothing():
    assert evidence("import os\nos.register_at_fork(after_in_child=lambda: None)\n") == []


# ---------------------------------------------------------------- results, JSON, the gate

def test_marks_round_trip_through_json_and_the_cache():
    item = scan.Evidence("ffi", "pkg/w.py", 3, 1, "ctypes.WinDLL", "f", None, False, False, "__main__", "win32",
                         ">=3.8")
    data = item.to_json()
    assert data["entry"] == "__main__" and data["platform"] == "win32" and "own" not in data
    assert data["python"] == ">=3.8"
    assert item.describe().endswith("in f [__main__] [platform win32] [python >=3.8]")
    assert scan.Evidence.from_json(json.loads(json.dumps(data))) == item
    plain = scan.Evidence("fs", "pkg/w.py", 3, 1, "open")
    assert set(plain.to_json()) == {"capability", "api", "file", "line", "col", "function"}


def test_inferred_grant_leaves_out_uncounted_evidence(site):
    make_dist(site, "marked", files={
        "marked/__init__.py": "import os, sys, ctypes\n"
                              "def f():\n    open(os.path.join(os.path.dirname(__file__), 'x'))\n"
                              "if sys.platform == 'win32':\n    ctypes.WinDLL('k')\n",
        "marked/__main__.py": "import socket\nsocket.create_connection(('example.org', 80))\n",
    })
    from capimport.distributions import find_distributions
    result = scan.scan_distribution(find_distributions([str(site)])["marked"])
    assert result.inferred.names == ("net",)
    assert {(e.capability, e.own, e.platform) for e in result.uncounted()} == {
        ("fs-readonly", True, ""), ("ffi", False, "win32")}
    assert result.evidence_for("fs-readonly") == [] and result.evidence_for("ffi") == []
    [net] = result.evidence_for("net")
    assert net.entry == "__main__"


def test_gate_counts_main_uses_declined_or_not(tmp_path, site):
    make_dist(site, "tool", files={
        "tool/__init__.py": "import os\ndef data():\n    return open(os.path.join(os.path.dirname(__file__), 'd'))\n",
        "tool/__main__.py": "import urllib.request\nurllib.request.urlopen('https://example.org')\n",
    })
    config = write_config(tmp_path / "proj", """
        [project]
        dependencies = ["tool"]
        [tool.capimport.packages.tool]
        capabilities = []
    """)
    policy = load_policy(str(config), paths=[str(site)])
    problems = check(policy, scan.scan_all(policy.distributions))
    assert [(p.name, p.capability) for p in problems] == [("tool", "env-readonly"), ("tool", "net")]
    assert all(e.entry == "__main__" for p in problems for e in p.evidence)
    config.write_text(config.read_text() + 'declined = { net = "tool/__main__.py: a maintainer script", '
                                           'env-readonly = "tool/__main__.py: urlopen proxies" }\n')
    policy = load_policy(str(config), paths=[str(site)])
    assert check(policy, scan.scan_all(policy.distributions)) == []


def test_gate_holds_code_to_its_review_not_to_what_the_graph_narrows(tmp_path, site):
    # lib's review grants fs and process; app -> front -> lib, and front passes lib only fs.
    make_dist(site, "lib", files={"lib/__init__.py": "import os, shutil, socket\n"
                                                     "def wipe(p):\n    shutil.rmtree(p)\n"
                                                     "def run():\n    os.system('x')\n"
                                                     "def call():\n    socket.create_connection(('h', 1))\n"})
    make_dist(site, "front", requires=["lib"], files={"front/__init__.py": "import lib\n"})
    config = write_config(tmp_path / "proj", """
        [project]
        dependencies = ["front"]
        [tool.capimport.packages]
        lib = ["fs", "process"]
        front = { capabilities = ["fs"], dependencies = { lib = ["fs"] } }
    """)
    policy = load_policy(str(config), paths=[str(site)])
    assert policy.grant_for("lib").names == ("fs", "fs-readonly")       # narrowed by front
    problems = check(policy, scan.scan_all(policy.distributions))
    # process is reviewed (lib's grant) and cut by front's review: a note, not a failure; net is in no review
    assert [(p.kind, p.name, p.capability) for p in problems] == [("exceeds", "lib", "net"),
                                                                  ("narrowed", "lib", "process")]
    assert "declared grant (fs, process)" in problems[0].message
