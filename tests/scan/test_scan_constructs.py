"""The scanner, one Python construct at a time: what it resolves and what it must not."""

from __future__ import annotations

import textwrap

import pytest

from capimport import scan
from capimport.grant import Grant
from capimport.scopes import parse_pattern


def uses(source: str, module: str = "pkg.mod", internal=frozenset({"pkg"})) -> list:
    """Evidence of one file as (capability, api, line, scope) tuples, sorted."""
    summary = scan.analyse_source(textwrap.dedent(source).encode(), module, False, internal)
    out = set()
    for record in summary.uses:
        for item in scan.evidence_of(record, record[0], "mod.py"):
            out.add((item.capability, item.api, item.line, item.scope))
    return sorted(out)


def caps(source: str) -> set:
    return {u[0] for u in uses(source)}


def findings(source: str) -> list:
    summary = scan.analyse_source(textwrap.dedent(source).encode(), "pkg.mod", False, frozenset({"pkg"}))
    return [(kind, line) for line, col, kind, message in summary.findings]


# ---------------------------------------------------------------- imports and aliases


def test_import_as_alias():
    assert uses("import os as o\no.system('x')\n") == [("process", "os.system", 2, None)]


def test_from_import_as():
    assert uses("from subprocess import run as r\nr(['git', 'log'])\n") == [
        ("process", "subprocess.run", 2, ("git",))]


def test_from_os_import_environ_reads_and_writes():
    got = uses("""
        from os import environ
        environ["HOME"]
        environ["X"] = "1"
        del environ["Y"]
        "NO_PROXY" in environ
        environ.get("TERM")
        environ.setdefault("A", "b")
    """)
    assert ("env-readonly", "os.environ[...]", 3, ("HOME",)) in got
    assert ("env", "os.environ[...] =", 4, ("X",)) in got
    assert ("env", "del os.environ[...]", 5, ("Y",)) in got
    assert ("env-readonly", "... in os.environ", 6, ("NO_PROXY",)) in got
    assert ("env-readonly", "os.environ.get", 7, ("TERM",)) in got
    assert ("env", "os.environ.setdefault", 8, ("A",)) in got


def test_whole_environment_is_unscoped():
    assert uses("import os\nenv = dict(os.environ)\n") == [("env-readonly", "os.environ", 2, None)]
    assert uses("import os\nfor k in os.environ.copy(): pass\n") == [("env-readonly", "os.environ", 2, None)]


def test_dotted_import_binds_the_package():
    assert uses("import urllib.request\nurllib.request.urlopen(u)\n") == [
        ("env-readonly", "urllib.request.urlopen", 2, None), ("net", "urllib.request.urlopen", 2, None)]


def test_import_dotted_as():
    assert caps("import os.path as osp\nosp.exists(p)\n") == {"fs-readonly"}


def test_module_level_alias_of_builtin():
    assert uses("_open = open\ndef f(p):\n    return _open(p, 'w')\n") == [("fs", "open(mode='w')", 3, None)]


def test_alias_chain_and_attribute_alias():
    assert caps("import subprocess\n_sp = subprocess\n_run = _sp.run\n_run(cmd)\n") == {"process"}


def test_getattr_with_literal():
    assert uses("import os\ngetattr(os, 'system')('ls')\n") == [("process", "os.system", 2, None)]
    assert caps("import os\nf = getattr(os, 'remove')\n") == {"fs"}


def test_getattr_computed_on_capability_module_is_a_finding():
    assert findings("import os\ngetattr(os, name)\n") == [("dynamic-attribute", 2)]
    assert findings("getattr(obj, name)\n") == []


def test_dunder_import_and_import_module_with_literals():
    assert caps("__import__('subprocess').call(['ls'])\n") == {"process"}
    assert caps("m = __import__('os.path')\nm.remove(p)\n") == {"fs"}  # __import__ returns the top package
    assert caps("import importlib\nimportlib.import_module('socket').socket()\n") == {"net"}
    assert caps("import sys\nsys.modules['os'].system('x')\n") == {"process"}


def test_dynamic_imports_with_computed_names_are_findings():
    got = findings("""
        import importlib
        importlib.import_module(name)
        __import__(name)
        importlib.import_module("json")
    """)
    assert got == [("dynamic-import", 3), ("dynamic-import", 4)]


def test_exec_eval_compile_of_non_literals_are_findings():
    got = findings("exec(code)\neval(expr)\ncompile(src, 'f', 'exec')\nexec('x = 1')\n")
    assert got == [("dynamic-code", 1), ("dynamic-code", 2), ("dynamic-code", 3)]


def test_literal_exec_is_scanned_as_code():
    assert uses("exec(\"import os; os.system('id')\")\n") == [("process", "os.system", 1, None)]


# ---------------------------------------------------------------- open() modes


@pytest.mark.parametrize("call, capability", [
    ("open(p)", "fs-readonly"), ("open(p, 'r')", "fs-readonly"), ("open(p, 'rb')", "fs-readonly"),
    ("open(p, mode='rt')", "fs-readonly"), ("open(p, 'w')", "fs"), ("open(p, 'a')", "fs"),
    ("open(p, 'x')", "fs"), ("open(p, 'r+')", "fs"), ("open(p, mode)", "fs"), ("open(p, *a)", "fs"),
    ("open(p, **kw)", "fs"), ("io.open(p, 'wb')", "fs"), ("codecs.open(p)", "fs-readonly"),
    ("gzip.open(p)", "fs-readonly"), ("gzip.open(p, 'wt')", "fs"),
])
def test_open_mode(call, capability):
    assert caps(f"import io, codecs, gzip\n{call}\n") == {capability}


def test_open_mode_through_a_constant():
    assert caps("MODE = 'w'\ndef f(p):\n    open(p, MODE)\n") == {"fs"}
    assert caps("MODE = 'rb'\ndef f(p):\n    open(p, MODE)\n") == {"fs-readonly"}


def test_literal_paths_become_scopes():
    got = uses("""
        import os
        open("/etc/hosts")
        open(os.path.expanduser("~/.netrc"))
        open(os.devnull, "w")
        open("relative.txt")
    """)
    assert ("fs-readonly", "open", 3, ("/etc/hosts",)) in got
    assert ("fs-readonly", "open", 4, ("~/.netrc",)) in got
    assert ("fs", "open(mode='w')", 5, ("/dev/null",)) in got
    assert ("fs-readonly", "open", 6, None) in got


def test_reading_proc_environ_is_env_readonly():
    assert caps("open('/proc/self/environ')\n") == {"fs-readonly", "env-readonly"}
    # the read's own evidence covers it: no second line for the path
    assert uses("open('/proc/self/environ')\n") == [
        ("env-readonly", "open", 1, None), ("fs-readonly", "open", 1, ("/proc/self/environ",))]
    assert uses("open('/proc/self/' + 'environ')\n") == [
        ("env-readonly", "open", 1, None), ("fs-readonly", "open", 1, ("/proc/self/environ",))]


@pytest.mark.parametrize("path, template", [
    ('f"{self._procfs_path}/{self.pid}/environ"', "{}/{}/environ"),    # psutil's Process.environ
    ('f"/proc/{pid}/environ"', "/proc/{}/environ"),
    ('"/proc/%d/environ" % pid', "/proc/{}/environ"),
    ('"/proc/{}/environ".format(pid)', "/proc/{}/environ"),
    ('"/proc/" + str(pid) + "/environ"', "/proc/{}/environ"),
    ('f"/proc/self/task/{tid}/environ"', "/proc/self/task/{}/environ"),
    ('root + "/" + "environ"', "{}/environ"),
    ('"/proc/self/" + "environ"', "/proc/self/environ"),
    ("'/proc/self/environ'", "/proc/self/environ"),                     # a literal through a wrapper
])
def test_a_path_to_an_environment_file_read_through_a_wrapper_is_env_readonly(path, template):
    # the read is in the distribution's own wrapper (psutil's open_text), where the path is a
    # parameter: the path is what tells, wherever it is written
    got = uses(f"""
        def open_text(name):
            return open(name)
        def environ(self, pid, tid):
            path = {path}
            return open_text(path).read()
        """)
    assert ("env-readonly", f"path {template!r} (a process's environment)", 5, None) in got
    assert ("fs-readonly", "open", 3, None) in got


@pytest.mark.parametrize("path", [
    'f"{d}/environment"', 'f"/home/{user}/environ"', '"environ"', 'f"{d}/environ/x"', '"/etc/environ"',
    '"/proc/" + "environ"', 'd + "/environ/x"', '"/proc/" + d.pid + ".environ"',
])
def test_paths_that_cannot_name_an_environment_file_are_not_env_readonly(path):
    assert "env-readonly" not in caps(f"open_text({path})\n")


@pytest.mark.parametrize("call, capability", [
    ("zipfile.ZipFile(p)", "fs-readonly"), ("zipfile.ZipFile(p, 'w')", "fs"),
    ("zipfile.ZipFile(p, mode='a')", "fs"), ("tarfile.open(p)", "fs-readonly"),
    ("tarfile.open(p, 'r:gz')", "fs-readonly"), ("tarfile.open(p, 'w:gz')", "fs"),
    ("sqlite3.connect(':memory:')", None), ("sqlite3.connect(p)", "fs"),
    ("sqlite3.connect('file:x.db?mode=ro', uri=True)", "fs-readonly"),
    ("os.open(p, os.O_RDONLY)", "fs-readonly"), ("os.open(p, os.O_WRONLY | os.O_CREAT)", "fs"),
    ("os.open(p, flags)", "fs"), ("logging.FileHandler(p)", "fs"), ("logging.basicConfig(level=1)", None),
    ("logging.basicConfig(filename='/var/log/x')", "fs"), ("shelve.open(p, 'r')", "fs-readonly"),
])
def test_mode_dependent_apis(call, capability):
    source = f"import zipfile, tarfile, sqlite3, os, logging, logging.handlers, shelve\n{call}\n"
    assert caps(source) == ({capability} if capability else set())


def test_zipfile_instance_methods():
    assert caps("import zipfile\nwith zipfile.ZipFile(p) as z:\n    z.extractall(d)\n") == {"fs-readonly", "fs"}
    assert caps("import zipfile\nz = zipfile.ZipFile(p)\nz.namelist()\n") == {"fs-readonly"}


# ---------------------------------------------------------------- pathlib, shutil, tempfile...


def test_pathlib_methods_through_instances():
    got = uses("""
        from pathlib import Path
        p = Path("x")
        p.write_text("y")
        (Path.home() / ".cfg").read_text()
        p.parent.mkdir(parents=True)
        p.open("w")
        p.open()
        Path(p).with_suffix(".bak").exists()
    """)
    assert ("fs", "pathlib.Path.write_text", 4, None) in got
    assert ("fs-readonly", "pathlib.Path.read_text", 5, None) in got
    assert ("env-readonly", "pathlib.Path.home", 5, ("HOME",)) in got
    assert ("fs", "pathlib.Path.mkdir", 6, None) in got
    assert ("fs", "pathlib.Path.open(mode='w')", 7, None) in got
    assert ("fs-readonly", "pathlib.Path.open", 8, None) in got
    assert ("fs-readonly", "pathlib.Path.exists", 9, None) in got


def test_pathlib_method_on_unknown_receiver_is_a_hint():
    summary = scan.analyse_source(b"def save(path):\n    path.write_text('x')\n", "m", False, frozenset())
    [item] = [e for r in summary.uses for e in scan.evidence_of(r, r[0], "m.py")]
    assert item.capability == "fs" and item.hint and "by method name" in item.api
    assert caps("class A:\n    def unlink(self):\n        self.unlink()\n") == set()


def test_tracing_and_object_walks_are_ffi_but_putting_back_no_tracer_is_not():
    # the run-time rules (guards/tamper.py): a tracer or profiler sees every frame; the gc walks and
    # the frame maps reach any object; putting back None is free at run time, so it is no use here
    assert uses("import sys\nsys.settrace(tracer)\n") == [("ffi", "sys.settrace", 2, None)]
    assert uses("import sys\nsys.setprofile(function=p)\n") == [("ffi", "sys.setprofile", 2, None)]
    assert caps("import sys\nsys.settrace(None)\nsys.setprofile(None)\n") == set()
    assert caps("import threading\nthreading.settrace(t)\n") == {"ffi"}
    assert caps("import gc\ngc.get_referrers(x)\n") == {"ffi"}
    assert caps("from gc import get_objects\nget_objects()\n") == {"ffi"}
    assert caps("import sys\nsys._current_frames()\n") == {"ffi"}
    assert caps("import sys\nsys.addaudithook(h)\n") == {"ffi"}


def test_shutil_tempfile_and_friends():
    assert uses("import shutil\nshutil.copy(src, '/tmp/out')\n") == [
        ("fs", "shutil.copy", 2, ("/tmp/out",)), ("fs-readonly", "shutil.copy", 2, None)]
    assert caps("import shutil\nshutil.rmtree(d)\n") == {"fs"}
    assert uses("import shutil\nshutil.which('git')\n") == [
        ("env-readonly", "shutil.which", 2, ("PATH",)), ("fs-readonly", "shutil.which", 2, None)]
    assert caps("import tempfile\ntempfile.mkdtemp()\n") == {"fs", "env-readonly"}
    assert caps("from tempfile import NamedTemporaryFile as T\nT()\n") == {"fs", "env-readonly"}


def test_network_apis_and_scopes():
    got = uses("""
        import socket, http.client, asyncio
        socket.create_connection(("example.com", 443))
        http.client.HTTPSConnection("pypi.org")
        socket.getaddrinfo(host, 80)
        asyncio.open_connection("db", 5432)
        s = socket.socket()
        s.connect(addr)
    """)
    assert ("net", "socket.create_connection", 3, ("example.com:443",)) in got
    assert ("net", "http.client.HTTPSConnection", 4, ("pypi.org:443",)) in got
    assert ("net", "socket.getaddrinfo", 5, None) in got
    assert ("net", "asyncio.open_connection", 6, ("db:5432",)) in got
    assert ("net", "socket.socket", 7, None) in got
    assert ("net", "socket.socket.connect", 8, None) in got


def test_asyncio_streams_and_subprocesses():
    got = caps("""
        import asyncio
        async def main():
            await asyncio.create_subprocess_exec("ls")
            loop = asyncio.get_running_loop()
            await loop.create_connection(proto, "h", 1)
            await loop.subprocess_shell(proto, "ls")
    """)
    assert got == {"process", "net"}


def test_subprocess_program_scopes():
    got = uses("""
        import subprocess, os
        subprocess.run(["git", "status"])
        subprocess.check_output("uname")
        subprocess.run("ls -l", shell=True)
        subprocess.Popen([sys.executable, "-c", "1"])
        subprocess.call(["/usr/bin/env", "x"])
        os.execvp("python", args)
    """)
    assert ("process", "subprocess.run", 3, ("git",)) in got
    assert ("process", "subprocess.check_output", 4, ("uname",)) in got
    assert ("process", "subprocess.run", 5, None) in got
    assert ("process", "subprocess.Popen", 6, None) in got
    assert ("process", "subprocess.call", 7, ("/usr/bin/env",)) in got
    assert ("process", "os.execvp", 8, ("python",)) in got


def test_ffi_any_use_of_ctypes_or_cffi():
    assert caps("import ctypes\nctypes.CDLL('libc.so.6')\n") == {"ffi"}
    assert caps("from ctypes import windll\nwindll.kernel32\n") == {"ffi"}
    assert caps("from cffi import FFI\nFFI()\n") == {"ffi"}
    assert caps("import ctypes.util\nctypes.util.find_library('c')\n") == {"ffi", "process", "fs-readonly"}


def test_webbrowser_multiprocessing_sqlite():
    assert caps("import webbrowser\nwebbrowser.open(url)\n") == {"process", "env-readonly"}
    assert caps("from multiprocessing import Pool\nPool(2)\n") == {"process"}
    assert caps("from concurrent.futures import ProcessPoolExecutor\nProcessPoolExecutor()\n") == {"process"}


def test_calls_the_run_time_guards_decide_are_scanned_with_the_same_capability():
    from capimport.guards.native import PROCESS_CALLS
    from capimport.table.apis import APIS
    assert all(APIS[f"os.{call}"].capabilities == ("process",) for call in PROCESS_CALLS if call != "chroot")
    assert caps("import os\nos.setsid()\n") == {"process"}
    assert caps("import signal\nsignal.raise_signal(2)\nsignal.pthread_kill(t, 2)\n") == {"process"}
    assert caps("import time\ntime.clock_settime(0, 1.0)\n") == {"process"}
    assert caps("import socket\nsocket.sethostname('x')\n") == {"process"}
    assert caps("import syslog\nsyslog.syslog('x')\n") == {"net"}
    assert caps("import pwd, grp\npwd.getpwall()\ngrp.getgrall()\n") == {"fs-readonly"}
    assert caps("import pwd\npwd.getpwuid(0)\n") == set()


def test_event_table_apis_come_through():
    # os.remove has no line of its own in apis.py: it comes from the audit-event table.
    assert caps("import os\nos.remove(p)\nos.rename(a, b)\n") == {"fs"}


# ---------------------------------------------------------------- scopes and shadowing


def test_star_import_from_stdlib():
    assert caps("from subprocess import *\nrun(['ls'])\n") == {"process"}
    assert caps("from os import *\nsystem('ls')\n") == {"process"}


def test_star_import_does_not_invent_uses():
    assert caps("from os import *\nprint(sep)\n") == set()


def test_parameter_shadows_builtin_open():
    assert caps("def f(open):\n    open(p, 'w')\n") == set()


def test_local_def_shadows_builtin():
    assert caps("def open(p, mode='r'):\n    pass\nopen('x', 'w')\n") == set()


def test_local_assignment_shadows_import_inside_function_only():
    source = """
        import os
        def f():
            os = FakeOs()
            os.system("x")
        def g():
            os.system("y")
    """
    assert uses(source) == [("process", "os.system", 7, None)]


def test_class_scope_is_not_visible_in_methods():
    source = """
        import subprocess
        class A:
            subprocess = None
            def run(self):
                subprocess.run(["ls"])
    """
    assert caps(source) == {"process"}


def test_class_body_alias_is_a_use():
    assert caps("import os\nclass A:\n    remove = os.remove\n") == {"fs"}


def test_nested_functions_and_closures():
    source = """
        def outer():
            import subprocess as sp
            def inner():
                def innermost():
                    sp.Popen(["ls"])
                return innermost
            return inner
    """
    summary = scan.analyse_source(textwrap.dedent(source).encode(), "m", False, frozenset())
    [record] = summary.uses
    [item] = scan.evidence_of(record, record[0], "m.py")
    assert item.capability == "process"
    assert item.function == "outer.<locals>.inner.<locals>.innermost"


def test_nonlocal_and_global():
    source = """
        runner = None
        def setup():
            global runner
            import subprocess
            runner = subprocess.run
        def go():
            runner(["ls"])
    """
    assert caps(source) == {"process"}


def test_comprehension_scope_and_walrus():
    assert caps("import os\n[os.remove(p) for p in ps]\n") == {"fs"}
    assert caps("import os\nif (f := os.system):\n    f('ls')\n") == {"process"}


def test_conditional_and_try_imports_union():
    source = """
        try:
            from subprocess import run as go
        except ImportError:
            def go(cmd):
                return None
        if sys.platform == "win32":
            import msvcrt as term
        else:
            import os as term
        go(["ls"])
        term.system("x")
    """
    assert caps(source) == {"process"}


def test_default_argument_alias():
    assert uses("import os\ndef f(p, _rm=os.remove):\n    _rm(p)\n") == [("fs", "os.remove", 3, None)]


def test_isinstance_and_except_and_annotations_are_not_uses():
    source = """
        import socket, subprocess
        def f(s: socket.socket) -> subprocess.Popen:
            try:
                pass
            except subprocess.CalledProcessError:
                pass
            return isinstance(s, socket.socket)
        x: socket.socket = None
    """
    assert caps(source) == set()


def test_relative_import_resolves_inside_the_distribution():
    summary = scan.analyse_source(b"from . import compat\nfrom .util import run_it\ncompat.go()\nrun_it()\n",
                                  "pkg.mod", False, frozenset({"pkg"}))
    assert {r[0] for r in summary.uses} == {"pkg.compat.go", "pkg.util.run_it"}


def test_unrelated_code_yields_nothing():
    assert caps("import json, re\nre.compile('x').match(json.dumps({}))\nopen_file = 1\n") == set()


# ---------------------------------------------------------------- robustness


def test_syntax_error_is_a_finding_not_a_crash():
    summary = scan.analyse_source(b"def f(:\n", "m", False, frozenset())
    assert [(kind, line) for line, col, kind, msg in summary.findings] == [("parse-error", 1)]


def test_null_bytes_and_bad_encoding():
    assert scan.analyse_source(b"x = 1\x00\n", "m")[0:0] if False else True
    summary = scan.analyse_source(b"x = '\x00'\n\x00", "m")
    assert summary.findings and summary.findings[0][2] == "parse-error"
    summary = scan.analyse_source(b"# -*- coding: latin-1 -*-\nimport os\nos.system('\xe9')\n", "m")
    assert [r[0] for r in summary.uses] == ["os.system"]


def test_deep_nesting_does_not_crash():
    source = "x = " + "(" * 180 + "1" + ")" * 180 + "\n"
    scan.analyse_source(source.encode(), "m")  # either analysed or reported, never raised


def test_evidence_grant_scopes_only_when_every_use_is_literal():
    e1 = scan.Evidence("env-readonly", "a.py", 1, 1, "os.getenv", scope=("HOME",))
    e2 = scan.Evidence("env-readonly", "a.py", 2, 1, "os.getenv", scope=("TERM",))
    e3 = scan.Evidence("env-readonly", "a.py", 3, 1, "os.environ")
    assert scan.evidence_grant([e1, e2]) == Grant.of(
        {"env-readonly": frozenset({parse_pattern("env", "HOME"), parse_pattern("env", "TERM")})})
    assert scan.evidence_grant([e1, e3]) == Grant.of(["env-readonly"])
    bad = scan.Evidence("net", "a.py", 1, 1, "x", scope=("not a host!",))
    assert scan.evidence_grant([bad]) == Grant.of(["net"])
