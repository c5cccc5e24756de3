"""The attribution rule, clause by clause, and the false-positive scenarios, in real subprocesses."""

from __future__ import annotations

import os

import pytest

from rt_helpers import DECISIONS, ATTEMPT, Listener, Project, results

NET_LIB = '''
import socket
def get(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"hello")
    s.close()
    return "sent"
'''


@pytest.fixture(params=DECISIONS)
def project(tmp_path, request):
    return Project(tmp_path, request.param)


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def _config(project, packages: str, deps=None, extra: str = ""):
    project.config(f"""
        [tool.capimport]
        mode = "enforce"
        {extra}
        [tool.capimport.packages]
        {packages}
        """, dependencies=deps)


def test_evil_through_granted_library_is_denied(project, listener):
    """evil -> requests -> socket: denied when evil lacks net, though the library holds it."""
    project.dist("fakerequests", code=NET_LIB)
    project.dist("evil", requires=["fakerequests"], code="import fakerequests\n"
                 "def exfiltrate(port):\n    return fakerequests.get(port)\n")
    _config(project, 'fakerequests = ["net"]\nevil = []', deps=["evil", "fakerequests"])
    project.script("app.py", ATTEMPT + "import sys, evil\nattempt('x', evil.exfiltrate, int(sys.argv[1]))\n")
    proc = project.run("app.py", str(listener.port))
    result = results(proc.stdout)["x"]
    assert result["denied"], result
    assert result["error"].startswith("capimport: 'evil' 1.0 lacks 'net' for socket.")
    assert "at evil/__init__.py:3, which called 'fakerequests' at fakerequests/__init__.py:4 (called from app.py:" \
        in result["error"], result
    assert listener.accepted == 0


def test_unrelated_granted_package_used_as_deputy_is_denied(project, listener):
    project.dist("fakerequests", code=NET_LIB)
    project.dist("evil", code="def exfiltrate(port):\n    import fakerequests\n    return fakerequests.get(port)\n")
    _config(project, 'fakerequests = ["net"]\nevil = []')
    project.script("app.py", ATTEMPT + "import sys, evil\nattempt('x', evil.exfiltrate, int(sys.argv[1]))\n")
    proc = project.run("app.py", str(listener.port))
    result = results(proc.stdout)["x"]
    assert result["denied"] and "'evil' 1.0 lacks 'net'" in result["error"], result
    assert listener.accepted == 0


def test_framework_calling_back_into_the_application_is_allowed(project, listener):
    """framework -> app callback -> socket: allowed although the framework lacks net."""
    project.dist("framework", code="def run(callback, *args):\n    return callback(*args)\n")
    project.dist("fakerequests", code=NET_LIB)
    _config(project, 'framework = []\nfakerequests = ["net"]')
    project.script("app.py", ATTEMPT + """
        import sys, socket, framework, fakerequests
        def view(port):
            s = socket.create_connection(("127.0.0.1", port)); s.close()
            return fakerequests.get(port)
        attempt("x", framework.run, view, int(sys.argv[1]))
        """)
    proc = project.run("app.py", str(listener.port))
    assert results(proc.stdout)["x"]["ok"], proc.stdout + proc.stderr
    assert listener.accepted == 2


def test_framework_calling_a_plugin_that_depends_on_it(project, listener):
    project.dist("framework", code="import importlib\n"
                 "def run_plugin(name, port):\n    return importlib.import_module(name).hook(port)\n")
    project.dist("goodplugin", requires=["framework"], code=NET_LIB + "\ndef hook(port):\n    return get(port)\n")
    project.dist("badplugin", requires=["framework"], code=NET_LIB + "\ndef hook(port):\n    return get(port)\n")
    _config(project, 'framework = []\ngoodplugin = ["net"]\nbadplugin = []')
    project.script("app.py", ATTEMPT + """
        import sys, framework
        attempt("good", framework.run_plugin, "goodplugin", int(sys.argv[1]))
        attempt("bad", framework.run_plugin, "badplugin", int(sys.argv[1]))
        """)
    proc = project.run("app.py", str(listener.port))
    got = results(proc.stdout)
    assert got["good"]["ok"], got
    assert got["bad"]["denied"] and got["bad"]["error"].startswith("capimport: 'badplugin' 1.0 lacks 'net'")
    assert listener.accepted == 1


def test_a_client_calling_a_transport_of_a_framework_that_requires_it_under_an_extra(project, tmp_path):
    """Starlette's TestClient is an httpx client (starlette requires httpx only under its ``full``
    extra) whose transport runs the application's endpoint: httpx calls back up into starlette,
    which builds on it, so httpx is not acting, whether or not anyone asked for ``starlette[full]``.
    Before, the endpoint's own file write was denied as httpx's."""
    project.dist("client", code="class Client:\n    def __init__(self, transport):\n"
                 "        self.transport = transport\n"
                 "    def get(self, path):\n        return self.transport.handle(path)\n")
    project.dist("framework", requires=['client; extra == "full"'], extras=["full"],
                 code="import client\n"
                      "class Transport:\n    def __init__(self, app):\n        self.app = app\n"
                      "    def handle(self, path):\n        return self.app(path)\n"
                      "class TestClient(client.Client):\n"
                      "    def __init__(self, app):\n        super().__init__(Transport(app))\n")
    project.dist("bystander", requires=['client; extra == "net"'], extras=["net"], code="import client\n"
                 "def fetch(c, path):\n    return c.get(path)\n")
    _config(project, 'client = []\nframework = []\nbystander = []', deps=["framework", "client", "bystander"])
    out = tmp_path / "out"
    out.mkdir()
    project.script("app.py", ATTEMPT + f"""
        import os, framework, bystander
        def endpoint(path):
            with open(os.path.join({str(out)!r}, path), "w") as handle:
                handle.write("x")
            return "written"
        attempt("endpoint", framework.TestClient(endpoint).get, "a")
        # the exemption is for the client only: a third package driving the client is accountable
        attempt("third_party", bystander.fetch, framework.TestClient(endpoint), "b")
        """)
    got = results(project.run("app.py").stdout)
    assert got["endpoint"]["ok"], got
    assert got["third_party"]["denied"] and "'bystander' 1.0 lacks 'fs'" in got["third_party"]["error"], got
    assert sorted(os.listdir(out)) == ["a"]


def test_framework_calling_an_unrelated_granted_package_is_denied(project, listener):
    """A framework that is not a dependent of the granted package is accountable itself."""
    project.dist("framework", code="def run(fn, *args):\n    return fn(*args)\n")
    project.dist("fakerequests", code=NET_LIB)
    _config(project, 'framework = []\nfakerequests = ["net"]')
    project.script("app.py", ATTEMPT + """
        import sys, framework, fakerequests
        attempt("x", framework.run, fakerequests.get, int(sys.argv[1]))
        """)
    proc = project.run("app.py", str(listener.port))
    assert "'framework' 1.0 lacks 'net'" in results(proc.stdout)["x"]["error"]
    assert listener.accepted == 0


def test_application_threads_calling_granted_packages(project, listener, tmp_path):
    project.dist("fakerequests", code=NET_LIB)
    project.dist("evil", code="import os, threading\n"
                 "def later(path):\n    t = threading.Thread(target=os.remove, args=(path,))\n"
                 "    t.start(); t.join()\n")
    _config(project, 'fakerequests = ["net"]\nevil = []')
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    project.script("app.py", """
        import sys, threading, concurrent.futures, fakerequests, evil
        port = int(sys.argv[1])
        threads = [threading.Thread(target=fakerequests.get, args=(port,)) for _ in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            print(list(pool.map(fakerequests.get, [port, port])))
        evil.later(sys.argv[2])
        """)
    proc = project.run("app.py", str(listener.port), str(victim))
    assert listener.accepted == 5, proc.stderr
    # Deferring the act to a thread does not launder it: the thread inherits evil's chain.
    assert victim.exists()
    assert "CapabilityError: capimport: 'evil' 1.0 lacks 'fs' for os.remove(" in proc.stderr


def test_asyncio_under_a_framework_without_grants(project, listener):
    project.dist("aioframe", code="import asyncio\ndef serve(coro):\n    return asyncio.run(coro)\n")
    project.dist("evilaio", code="import asyncio\nasync def leak(port):\n"
                 "    r, w = await asyncio.open_connection('127.0.0.1', port)\n    w.close()\n")
    _config(project, 'aioframe = []\nevilaio = []')
    project.script("app.py", ATTEMPT + """
        import asyncio, sys, aioframe, evilaio
        port = int(sys.argv[1])
        async def handler():
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"hi"); await w.drain(); w.close()
            try:
                await asyncio.gather(asyncio.create_task(evilaio.leak(port)))
            except PermissionError as exc:
                print("TASK-DENIED", exc)
            return "done"
        attempt("x", aioframe.serve, handler())
        """)
    proc = project.run("app.py", str(listener.port))
    assert results(proc.stdout)["x"]["ok"], proc.stdout + proc.stderr
    assert "TASK-DENIED capimport: 'evilaio' 1.0 lacks 'net'" in proc.stdout
    assert listener.accepted == 1


def test_imports_and_bytecode_by_packages_without_grants(project):
    project.dist("nogrants", files={
        "nogrants/__init__.py": "import json, email.message, decimal\nfrom . import sub\nfrom .sub import value\n",
        "nogrants/sub.py": "import importlib\nvalue = importlib.import_module('nogrants.lazy').X\n",
        "nogrants/lazy.py": "X = 42\n",
    })
    _config(project, "nogrants = []")
    project.script("app.py", "import nogrants\nprint('value', nogrants.value)\n")
    proc = project.run("app.py")
    assert proc.returncode == 0, proc.stderr
    assert "value 42" in proc.stdout
    assert proc.stderr == ""
    assert list((project.site / "nogrants" / "__pycache__").glob("lazy.*.pyc"))


def test_distribution_reads_its_own_files(project, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    project.dist("selfread", files={
        "selfread/__init__.py": """
            import os, importlib.resources
            HERE = os.path.dirname(__file__)
            def own():
                with open(os.path.join(HERE, "data.txt")) as f:
                    a = f.read()
                b = importlib.resources.files("selfread").joinpath("data.txt").read_text()
                return a + b + str(sorted(os.listdir(HERE)))
            def other(path):
                return open(path).read()
            """,
        "selfread/data.txt": "DATA",
    })
    _config(project, "selfread = []")
    project.script("app.py", ATTEMPT + "import sys, selfread\nattempt('own', selfread.own)\n"
                   "attempt('other', selfread.other, sys.argv[1])\n")
    got = results(project.run("app.py", str(secret)).stdout)
    assert got["own"]["ok"] and "DATADATA" in got["own"]["value"], got
    assert got["other"]["denied"] and "lacks 'fs-readonly'" in got["other"]["error"]


def test_tracebacks_of_packages_without_grants_show_source(project):
    project.dist("crashy", code="import traceback\n"
                 "def fail():\n    raise ValueError('boom from crashy')\n"
                 "def formatted():\n    try:\n        fail()\n    except ValueError:\n"
                 "        return traceback.format_exc()\n")
    _config(project, "crashy = []")
    project.script("app.py", "import crashy\nprint(crashy.formatted())\ncrashy.fail()\n")
    proc = project.run("app.py")
    assert proc.returncode == 1
    assert "raise ValueError('boom from crashy')" in proc.stdout
    assert "raise ValueError('boom from crashy')" in proc.stderr
    assert "capimport" not in proc.stderr.replace("crashy", "")


def test_logging_to_an_application_configured_file(project, tmp_path):
    project.dist("chatty", code="import logging\nlog = logging.getLogger('chatty')\n"
                 "def talk(n):\n    for i in range(n):\n        log.warning('message %d %s', i, 'x' * 50)\n"
                 "def own_handler(path):\n    logging.FileHandler(path)\n")
    _config(project, "chatty = []")
    log = tmp_path / "logs" / "app.log"
    rot = tmp_path / "logs" / "rot.log"
    log.parent.mkdir()
    project.script("app.py", ATTEMPT + """
        import logging, logging.handlers, sys, chatty
        root = logging.getLogger()
        root.addHandler(logging.FileHandler(sys.argv[1], delay=True))
        root.addHandler(logging.handlers.RotatingFileHandler(sys.argv[2], maxBytes=300, backupCount=2))
        chatty.talk(20)
        attempt("own", chatty.own_handler, sys.argv[1] + ".evil")
        """)
    proc = project.run("app.py", str(log), str(rot))
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().count("message") == 20
    assert (tmp_path / "logs" / "rot.log.1").exists()
    own = results(proc.stdout)["own"]
    assert own["denied"] and "'chatty' 1.0 lacks 'fs' for logging.FileHandler(" in own["error"]
    assert not (tmp_path / "logs" / "app.log.evil").exists()


def test_dynamic_code_and_spoofed_globals_are_still_attributed(project, tmp_path):
    project.dist("sneaky", code="""
        import os
        def via_exec(path):
            exec(compile("open(path, 'w').write('x')", "<string>", "exec"), {"path": path})
        def via_spoof(path):
            globals()["__file__"] = os.path.abspath("app.py")
            globals()["__name__"] = "__main__"
            open(path, "w").write("x")
        """)
    _config(project, "sneaky = []")
    project.script("app.py", ATTEMPT + "import sys, sneaky\nattempt('exec', sneaky.via_exec, sys.argv[1])\n"
                   "attempt('spoof', sneaky.via_spoof, sys.argv[2])\n")
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    got = results(project.run("app.py", str(a), str(b)).stdout)
    assert got["exec"]["denied"] and got["spoof"]["denied"], got
    assert not a.exists() and not b.exists()


def test_denied_rename_does_not_fall_back_to_copy_and_delete(project, tmp_path):
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (inside / "f.txt").write_text("data")
    project.dist("mover", code="import shutil, os\ndef move(a, b):\n    return shutil.move(a, b)\n"
                 "def rename(a, b):\n    os.rename(a, b)\n")
    _config(project, f'mover = {{ fs = ["{inside}"] }}')
    project.script("app.py", ATTEMPT + "import sys, mover\nattempt('move', mover.move, sys.argv[1], sys.argv[2])\n"
                   "attempt('rename', mover.rename, sys.argv[1], sys.argv[2])\n")
    got = results(project.run("app.py", str(inside / "f.txt"), str(outside / "f.txt")).stdout)
    assert got["move"]["denied"] and got["rename"]["denied"], got
    assert (inside / "f.txt").read_text() == "data"
    assert not (outside / "f.txt").exists()


def test_scopes_paths_symlinks_hosts_programs_env(project, tmp_path, listener):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape").symlink_to(tmp_path)
    other = Listener()
    project.dist("scoped", code=NET_LIB + """
import os, subprocess
def write(path):
    open(path, "w").write("x")
def run(*argv):
    return subprocess.run(list(argv)).returncode
def setenv(name):
    os.environ[name] = "1"
""")
    _config(project, f"""scoped = {{ fs = ["{allowed}"], net = ["127.0.0.1:{listener.port}"], process = ["touch"], env = ["MYAPP_*"] }}""")
    project.script("app.py", ATTEMPT + f"""
        import scoped
        attempt("fs-in", scoped.write, "{allowed}/ok.txt")
        attempt("fs-dotdot", scoped.write, "{allowed}/../dotdot.txt")
        attempt("fs-symlink", scoped.write, "{allowed}/escape/link.txt")
        attempt("net-in", scoped.get, {listener.port})
        attempt("net-out", scoped.get, {other.port})
        attempt("proc-in", scoped.run, "touch", "{tmp_path}/touched")
        attempt("proc-out", scoped.run, "true")
        attempt("env-in", scoped.setenv, "MYAPP_X")
        attempt("env-out", scoped.setenv, "PATH")
        """)
    try:
        proc = project.run("app.py")
        got = results(proc.stdout)
        assert got, proc.stderr
    finally:
        other.close()
    for case in ("fs-in", "net-in", "proc-in", "env-in"):
        assert got[case]["ok"], (case, got[case])
    for case in ("fs-dotdot", "fs-symlink", "net-out", "proc-out", "env-out"):
        assert got[case]["denied"], (case, got[case])
    assert (allowed / "ok.txt").exists() and (tmp_path / "touched").exists()
    assert not (tmp_path / "dotdot.txt").exists() and not (tmp_path / "link.txt").exists()
    assert listener.accepted == 1 and other.accepted == 0
    assert f"lacks 'net' for 127.0.0.1:{other.port}" in got["net-out"]["error"]
    assert "widen its scope" in got["net-out"]["error"]


def test_application_grant_applies_to_its_own_code(project, tmp_path):
    _config(project, "", extra='app = ["fs-readonly"]')
    project.script("app.py", ATTEMPT + "import sys\nattempt('w', lambda: open(sys.argv[1], 'w'))\n")
    target = tmp_path / "nope.txt"
    got = results(project.run("app.py", str(target)).stdout)
    assert got["w"]["denied"] and got["w"]["error"].startswith("capimport: the application lacks 'fs'")
    assert 'app = ["fs"]' in got["w"]["error"] or "[tool.capimport] app" in got["w"]["error"]
    assert not target.exists()


def test_editable_install_is_attributed_by_its_source_folder(project, tmp_path, listener):
    src = tmp_path / "editable_src"
    (src / "edpkg").mkdir(parents=True)
    (src / "edpkg" / "__init__.py").write_text(NET_LIB)
    project.dist("edpkg", files={"__editable__.edpkg-1.0.pth": str(src) + "\n"}, top_level=["edpkg"],
                 editable_project=src)
    _config(project, "edpkg = []")
    project.script("app.py", ATTEMPT + "import sys, edpkg\nattempt('x', edpkg.get, int(sys.argv[1]))\n")
    # The .pth line puts the source folder on sys.path when the site folder is a real site dir.
    proc = project.run("app.py", str(listener.port), env={"PYTHONPATH": os.pathsep.join(
        [str(project.site), str(src), project.env()["PYTHONPATH"]])})
    got = results(proc.stdout)["x"]
    assert got["denied"] and "'edpkg' 1.0 lacks 'net'" in got["error"], (got, proc.stderr)
    assert listener.accepted == 0


def test_net_scope_by_host_name_allows_its_addresses(project, listener):
    """A grant for localhost:PORT allows the connect to 127.0.0.1:PORT that follows the lookup."""
    other = Listener()
    project.dist("named", code=NET_LIB.replace('("127.0.0.1", port)', '(host, port)').replace(
        "def get(port):", "def get(port, host='localhost'):"))
    _config(project, f'named = {{ net = ["localhost:{listener.port}"] }}')
    project.script("app.py", ATTEMPT + f"""
        import named
        attempt("name", named.get, {listener.port})
        attempt("ip", named.get, {listener.port}, "127.0.0.1")
        attempt("other-port", named.get, {other.port})
        """)
    try:
        got = results(project.run("app.py").stdout)
    finally:
        other.close()
    assert got["name"]["ok"] and got["ip"]["ok"], got
    assert got["other-port"]["denied"], got
    assert listener.accepted == 2 and other.accepted == 0
