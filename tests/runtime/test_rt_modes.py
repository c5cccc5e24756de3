"""Modes (enforce, warn, record, no configuration), messages, strict imports, config errors."""

from __future__ import annotations

import json

import pytest

from rt_helpers import DECISIONS, ATTEMPT, Project, results

LEAKY = """
import os, socket
def write(path):
    with open(path, "w") as f:
        f.write("x")
def connect():
    s = socket.socket()
    s.close()
def getenv_all():
    with open("/proc/self/environ", "rb") as f:
        return f.read()
"""


@pytest.fixture(params=DECISIONS)
def project(tmp_path, request):
    project = Project(tmp_path, request.param)
    project.dist("leaky", "0.3", code=LEAKY)
    return project


def _config(project, mode: str, extra: str = ""):
    project.config(f"""
        [tool.capimport]
        mode = "{mode}"
        {extra}
        [tool.capimport.packages]
        leaky = []
        """)


def test_enforce_message_format(project, tmp_path):
    _config(project, "enforce")
    project.script("app.py", ATTEMPT + """
        import sys, leaky
        attempt("w", leaky.write, sys.argv[1])
        """)
    target = tmp_path / "x.txt"
    got = results(project.run("app.py", str(target)).stdout)["w"]
    line = ATTEMPT.splitlines().index("        value = fn(*args, **kwargs)") + 1
    assert got["error"] == (f"capimport: 'leaky' 0.3 lacks 'fs' for open({str(target)!r}, 'w') at "
                            f"leaky/__init__.py:4 (called from app.py:{line}); grant it in pyproject.toml "
                            f'[tool.capimport.packages]: leaky = ["fs"]')
    assert got["type"] == "CapabilityError"
    assert not target.exists()


def test_enforce_message_points_at_the_manifest_file(project, tmp_path):
    (project.proj / "manifests").mkdir()
    (project.proj / "manifests" / "leaky.toml").write_text('capabilities = ["fs-readonly"]\n')
    project.config('[tool.capimport]\nmode = "enforce"\n')
    project.script("app.py", ATTEMPT + "import leaky\nattempt('n', leaky.connect)\n")
    got = results(project.run("app.py").stdout)["n"]
    assert got["error"].endswith('grant it in manifests/leaky.toml: capabilities = ["fs-readonly", "net"]')


def test_a_scoped_grant_names_the_target_it_does_not_cover(project, tmp_path):
    (project.proj / "manifests").mkdir()
    (project.proj / "manifests" / "leaky.toml").write_text(
        'capabilities = ["fs", "fs-readonly", "env-readonly"]\n'
        '[scopes]\nfs = ["/nowhere"]\nenv-readonly = ["HOME"]\n')
    project.config('[tool.capimport]\nmode = "enforce"\n')
    project.script("app.py", ATTEMPT + """
        import sys, leaky
        attempt("w", leaky.write, sys.argv[1])
        attempt("e", leaky.getenv_all)
        """)
    target = tmp_path / "x.txt"
    got = results(project.run("app.py", str(target)).stdout)
    assert f"'leaky' 0.3 lacks 'fs' for {target} in open({str(target)!r}, 'w') at leaky/__init__.py:4 " \
        in got["w"]["error"]
    assert got["w"]["error"].endswith(f'widen its scope in manifests/leaky.toml: [scopes] fs = [..., "{target}"]')
    # reading /proc/self/environ reads every variable: no name to add, the scope has to go
    assert "'leaky' 0.3 lacks 'env-readonly' for every variable in open('/proc/self/environ', 'r') at " \
        in got["e"]["error"]
    assert got["e"]["error"].endswith("grant it unscoped in manifests/leaky.toml: remove 'env-readonly' from [scopes]")


def test_a_scoped_entry_in_the_configuration_is_told_how_to_grant_it_unscoped(project, tmp_path):
    project.config("""
        [tool.capimport]
        mode = "enforce"
        [tool.capimport.packages]
        leaky = {fs-readonly = true, env-readonly = ["HOME"]}
        """)
    project.script("app.py", ATTEMPT + "import leaky\nattempt('e', leaky.getenv_all)\n")
    got = results(project.run("app.py").stdout)["e"]
    assert "lacks 'env-readonly' for every variable in open(" in got["error"]
    assert got["error"].endswith("grant it unscoped in pyproject.toml [tool.capimport.packages] leaky: "
                                 "env-readonly = true")


def test_capability_error_is_a_permission_error_with_fields(project, tmp_path):
    _config(project, "enforce")
    project.script("app.py", """
        import capimport, errno, leaky
        try:
            leaky.connect()
        except PermissionError as exc:
            assert isinstance(exc, capimport.CapabilityError)
            print(exc.distribution, exc.capability, exc.api)
            # as the OS's refusal reads: pygments rewords err.strerror and re-raises
            assert exc.errno == errno.EACCES and exc.strerror == str(exc), (exc.errno, exc.strerror)
        """)
    proc = project.run("app.py")
    assert proc.stdout.strip() == "leaky net socket.socket", proc.stderr


def test_warn_reports_each_distinct_violation_once_and_lets_it_through(project, tmp_path):
    _config(project, "warn")
    project.script("app.py", """
        import sys, leaky
        for i in range(3):
            leaky.write(sys.argv[1] + str(i))
        leaky.connect(); leaky.connect()
        print("done")
        """)
    proc = project.run("app.py", str(tmp_path / "w"))
    assert proc.returncode == 0 and "done" in proc.stdout
    assert all((tmp_path / f"w{i}").exists() for i in range(3))
    lines = [line for line in proc.stderr.splitlines() if line.startswith("capimport: 'leaky'")]
    assert len(lines) == 2, proc.stderr
    assert "lacks 'fs' for open(" in lines[0] and "[allowed: warn mode]" in lines[0]
    assert "lacks 'net' for socket.socket(" in lines[1]


def test_mode_flag_overrides_configuration(project, tmp_path):
    _config(project, "enforce")
    project.script("app.py", "import sys, leaky\nleaky.write(sys.argv[1])\n")
    proc = project.run("--mode", "warn", "app.py", str(tmp_path / "w"))
    assert proc.returncode == 0 and (tmp_path / "w").exists()


def test_record_logs_every_act_and_survives_a_crash(project, tmp_path):
    _config(project, "record")
    log = tmp_path / "acts.jsonl"
    project.script("app.py", """
        import os, sys, leaky
        leaky.write(sys.argv[1])
        leaky.connect()
        leaky.getenv_all()
        os._exit(7)   # no atexit, no flush: what was recorded must be on disk already
        """)
    proc = project.run("--log", str(log), "app.py", str(tmp_path / "w"))
    assert proc.returncode == 7
    assert (tmp_path / "w").exists()
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    by_cap = {(e["capability"], e["api"]): e for e in entries}
    write = by_cap[("fs", "open")]
    assert write["distribution"] == "leaky" and write["version"] == "0.3"
    assert write["scope"] == str((tmp_path / "w").resolve())
    assert write["location"] == "leaky/__init__.py:4" and write["allowed"] is False
    assert ("net", "socket.socket") in by_cap
    assert by_cap[("env-readonly", "open")]["scope"] == "*"
    assert {"distribution", "version", "capability", "scope", "api", "location"} <= set(write)


def test_setting_the_environment_is_one_act_once_reported(project, tmp_path):
    # os.environ[k] = v decides 'env' and then calls putenv, whose own audit event is the same act:
    # it is vouched for, so warn and record report the set once (not the set and then putenv)
    _config(project, "record")
    project.dist("setter", "1.0", code="""
        import os
        def go():
            os.environ["CAP_SET"] = "1"
            del os.environ["CAP_SET"]
            os.putenv("CAP_PUT", "2")
            os.environ["CAP_KEPT"] = "3"
        """)
    project.config("""
        [tool.capimport]
        mode = "record"
        [tool.capimport.packages]
        setter = []
        """)
    log = tmp_path / "acts.jsonl"
    project.script("app.py", """
        import subprocess, sys, setter
        setter.go()
        child = "import os; print(os.environ.get('CAP_SET'), os.environ.get('CAP_KEPT'))"
        print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout.strip())
        """)
    proc = project.run("--log", str(log), "app.py")
    assert proc.stdout.strip() == "None 3", proc.stderr   # the real environment changed, as without capimport
    acts = [(e["api"], e["scope"], e["location"]) for e in map(json.loads, log.read_text().splitlines())
            if e["distribution"] == "setter" and e["capability"] == "env"]
    assert acts == [("os.environ", "CAP_SET", "setter/__init__.py:4"), ("os.environ", "CAP_SET", "setter/__init__.py:5"),
                    ("os.putenv", "CAP_PUT", "setter/__init__.py:6"), ("os.environ", "CAP_KEPT", "setter/__init__.py:7")]
    # deleting is not a read: no env-readonly act for it
    assert not [e for e in map(json.loads, log.read_text().splitlines())
                if e["distribution"] == "setter" and e["capability"] == "env-readonly"]


def test_record_default_log_name(project, tmp_path):
    _config(project, "record")
    project.script("app.py", "import leaky\nleaky.connect()\n")
    project.run("app.py")
    assert (project.proj / "capimport-record.jsonl").exists()


def test_enforce_with_log_appends_denials(project, tmp_path):
    _config(project, "enforce")
    log = tmp_path / "denials.jsonl"
    project.script("app.py", ATTEMPT + "import leaky\nattempt('n', leaky.connect)\n")
    project.run("--log", str(log), "app.py")
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["distribution"] == "leaky" and entry["capability"] == "net" and entry["allowed"] is False


def test_no_configuration_warns_and_prints_a_summary(tmp_path):
    project = Project(tmp_path)
    project.dist("leaky", "0.3", code=LEAKY)
    project.script("app.py", "import sys, leaky\nleaky.write(sys.argv[1])\nleaky.connect()\nprint('ran')\n")
    proc = project.run("app.py", str(tmp_path / "w"))
    assert proc.returncode == 0 and "ran" in proc.stdout
    assert (tmp_path / "w").exists()
    lines = proc.stderr.strip().splitlines()
    assert "no configuration found; ran in warn mode" in lines[0]
    assert any(line.startswith("  leaky 0.3: fs (open); net (socket.socket)") for line in lines), proc.stderr
    assert lines[-1].endswith("capimport generate")


def test_strict_mode_denies_capability_imports_with_an_import_error(project):
    _config(project, "enforce", extra="strict = true")
    project.dist("importer", files={"importer/__init__.py": "", "importer/net.py": "import socket\n",
                                    "importer/proc.py": "from subprocess import run\n",
                                    "importer/ok.py": "import json\n"})
    project.script("app.py", """
        import importer.ok
        for name in ("importer.net", "importer.proc"):
            try:
                __import__(name)
            except ImportError as exc:
                print(type(exc).__name__, exc.name, "|", exc)
        """)
    proc = project.run("app.py")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("CapabilityImportError socket | capimport: 'importer' 1.0 lacks 'net' for import socket")
    assert lines[1].startswith("CapabilityImportError subprocess | capimport: 'importer' 1.0 lacks 'process'")


def test_default_mode_lets_the_import_succeed_and_denies_the_use(project):
    _config(project, "enforce")
    project.dist("importer", code="import socket, subprocess, ctypes\n"
                 "def use():\n    socket.socket()\n")
    project.script("app.py", ATTEMPT + "import importer\nprint('imported')\nattempt('use', importer.use)\n"
                   "print('guarded', importer.__builtins__['open'] is not open)\n")
    proc = project.run("app.py")
    assert "imported" in proc.stdout
    assert results(proc.stdout)["use"]["denied"]
    assert "guarded True" in proc.stdout  # the module runs with guarded builtins


def test_configuration_errors_refuse_to_start(tmp_path):
    project = Project(tmp_path)
    project.config("""
        [tool.capimport]
        mode = "enforce"
        [tool.capimport.packages]
        leaky = ["network"]
        """)
    project.script("app.py", "print('should not run')\n")
    proc = project.run("app.py")
    assert proc.returncode == 2
    assert "should not run" not in proc.stdout
    assert "refusing to start" in proc.stderr
    assert "pyproject.toml:" in proc.stderr and "network" in proc.stderr


def test_library_entry_point_and_no_switching_off(project, tmp_path):
    project.config('[tool.capimport]\nmode = "warn"\n[tool.capimport.packages]\nleaky = []\n')
    project.script("app.py", ATTEMPT + """
        import sys, capimport
        capimport.enable(mode="enforce")
        import leaky
        attempt("w", leaky.write, sys.argv[1])
        attempt("again", capimport.enable, mode="warn")
        attempt("same", capimport.enable)
        attempt("w2", leaky.write, sys.argv[1])
        """)
    proc = project.run_plain("app.py", str(tmp_path / "w"))
    got = results(proc.stdout)
    assert got["w"]["denied"] and got["w2"]["denied"], (got, proc.stderr)
    assert "cannot be switched off" in got["again"]["error"]
    assert got["same"]["ok"]
    assert not (tmp_path / "w").exists()


def test_denial_in_a_thread_callback_reports_the_same(project, tmp_path):
    _config(project, "enforce")
    project.script("app.py", """
        import sys, threading, leaky
        t = threading.Thread(target=leaky.write, args=(sys.argv[1],))
        t.start(); t.join()
        """)
    proc = project.run("app.py", str(tmp_path / "w"))
    assert "CapabilityError: capimport: 'leaky' 0.3 lacks 'fs' for open(" in proc.stderr
    assert not (tmp_path / "w").exists()


def test_a_path_of_a_str_subclass_works_as_the_str(project, tmp_path):
    # matplotlib's FontPath(str): the guards take the text with str's own methods, and an
    # override of the subclass runs nowhere (it would be the distribution's code in capimport's)
    project.dist("fonts", "1.0", code="""
        import os
        class FontPath(str):
            def __str__(self):
                raise AssertionError("an override ran")
            __fspath__ = __str__
        def probe(path):
            p = FontPath(path)
            return [os.path.exists(p), os.path.isfile(p), os.stat(p).st_size, os.access(p, os.R_OK),
                    len(open(p).read())]
        """)
    project.config('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nfonts = ["fs-readonly"]\n')
    target = tmp_path / "font.txt"
    target.write_text("glyphs")
    project.script("app.py", ATTEMPT + "import sys, fonts\nattempt('probe', fonts.probe, sys.argv[1])\n")
    got = results(project.run("app.py", str(target)).stdout)["probe"]
    assert got.get("value") == "[True, True, 6, True, 6]", got


def test_a_hidden_name_is_charged_to_the_grant_that_is_short(project, tmp_path):
    # structlog (env-readonly scoped to two names) calls rich, which it imports without declaring
    # it and which reads TERM: the message names structlog, whose scope is short, not rich
    project.dist("inner", "1.0", code="import os\ndef term():\n    return os.environ.get('TERM')\n")
    project.dist("outer", "1.0", code="import inner\ndef render():\n    return inner.term()\n")
    project.config('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
                   'inner = ["env-readonly"]\nouter = {env-readonly = ["NO_COLOR"]}\n')
    project.script("app.py", "import outer\nprint('TERM', outer.render())\n")
    proc = project.run("app.py", env={"TERM": "xterm"})
    assert "TERM None" in proc.stdout, proc.stderr
    line = next(line for line in proc.stderr.splitlines() if "lacks 'env-readonly'" in line)
    assert line.startswith("capimport: 'outer' 1.0 lacks 'env-readonly' for TERM in "), line
    assert "widen its scope in pyproject.toml [tool.capimport.packages] outer" in line, line
