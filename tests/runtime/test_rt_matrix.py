"""Every capability x allowed/denied x direct / through a stdlib helper / through another distribution.

Two real subprocess runs of ``python -m capimport app.py`` share one plan of
acts: in one the acting distribution holds nothing, in the other everything.
Each act is judged by its side effect (the file, the server, the marker, the
mapped library, the process environment), not only by the exception.
"""

from __future__ import annotations

import json
import os

import pytest

from rt_helpers import DECISIONS, DECISIONS, ATTEMPT, Listener, Project, results

ACTS = '''
import os, shutil, socket, subprocess, pathlib, ctypes, urllib.request

def fs_open_write(path):
    with open(path, "w") as f:
        f.write("x")

def fs_shutil_copy(src, dst):
    shutil.copy(src, dst)

def read_file(path):
    with open(path) as f:
        return f.read()

def read_pathlib(path):
    return pathlib.Path(path).read_text()

def env_putenv(name):
    os.putenv(name, "1")

def env_set(name):
    os.environ[name] = "1"

def read_environ():
    with open("/proc/self/environ", "rb") as f:
        return len(f.read())

def read_environ_pathlib():
    return len(pathlib.Path("/proc/self/environ").read_bytes())

def net_socket(port):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
    finally:
        s.close()

def net_urlopen(port):
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()

def proc_system(marker):
    return os.system(f"touch {marker}")

def proc_run(marker):
    return subprocess.run(["touch", marker]).returncode

def ffi_cdll(lib):
    ctypes.CDLL(lib)

def ffi_loadlibrary(lib):
    ctypes.cdll.LoadLibrary(lib)
'''

LIBS = {"direct": "libform.so.6", "stdlib": "libuuid.so.1", "dist": "libmenu.so.6"}

# capability, route, function, argument kind
CASES = [
    ("fs", "direct", "fs_open_write", "newfile"),
    ("fs", "stdlib", "fs_shutil_copy", "copy"),
    ("fs", "dist", "fs_open_write", "newfile"),
    ("fs-readonly", "direct", "read_file", "secret"),
    ("fs-readonly", "stdlib", "read_pathlib", "secret"),
    ("fs-readonly", "dist", "read_file", "secret"),
    ("env", "direct", "env_putenv", "envname"),
    ("env", "stdlib", "env_set", "envname"),
    ("env", "dist", "env_set", "envname"),
    ("env-readonly", "direct", "read_environ", None),
    ("env-readonly", "stdlib", "read_environ_pathlib", None),
    ("env-readonly", "dist", "read_environ", None),
    ("net", "direct", "net_socket", "port"),
    ("net", "stdlib", "net_urlopen", "port"),
    ("net", "dist", "net_socket", "port"),
    ("process", "direct", "proc_system", "marker"),
    ("process", "stdlib", "proc_run", "marker"),
    ("process", "dist", "proc_run", "marker"),
    ("ffi", "direct", "ffi_cdll", "lib"),
    ("ffi", "stdlib", "ffi_loadlibrary", "lib"),
    ("ffi", "dist", "ffi_cdll", "lib"),
]

APP = ATTEMPT + '''
import json, os, sys, actor
plan = json.loads(sys.argv[1])
for case, cap, route, func, args in plan:
    if route == "dist":
        attempt(case, actor.via, func, *args)
    else:
        attempt(case, getattr(actor, func), *args)
    if cap in ("env",):
        name = args[0]
        import ctypes
        libc = ctypes.CDLL(None)
        libc.getenv.restype = ctypes.c_char_p
        print("RESULT " + json.dumps({"case": case + ":env", "mapping": name in os.environ,
              "process": libc.getenv(name.encode()) is not None}), flush=True)
    if cap == "ffi":
        print("RESULT " + json.dumps({"case": case + ":maps",
              "mapped": args[0].split(".so")[0] in open("/proc/self/maps").read()}), flush=True)
'''


def _build(tmp_path, granted: bool, decision: str):
    project = Project(tmp_path, decision)
    project.dist("helper", code=ACTS)
    project.dist("actor", requires=["helper"], code=ACTS + "\nimport helper\n"
                 "def via(name, *args):\n    return getattr(helper, name)(*args)\n")
    actor = '["fs", "env", "net", "process", "ffi"]' if granted else "[]"
    project.config(f"""
        [tool.capimport]
        mode = "enforce"
        [tool.capimport.packages]
        actor = {actor}
        helper = ["fs", "env", "net", "process", "ffi"]
        """, dependencies=["actor", "helper"])
    project.script("app.py", APP)
    (tmp_path / "source.txt").write_text("copied")
    (tmp_path / "secret.txt").write_text("top secret")
    listeners = {}
    plan = []
    for cap, route, func, kind in CASES:
        case = f"{cap}/{route}"
        if kind == "newfile":
            args = [str(tmp_path / f"out-{cap}-{route}.txt")]
        elif kind == "copy":
            args = [str(tmp_path / "source.txt"), str(tmp_path / f"out-{cap}-{route}.txt")]
        elif kind == "secret":
            args = [str(tmp_path / "secret.txt")]
        elif kind == "envname":
            args = [f"CAPIMPORT_TEST_{route.upper()}_{cap.replace('-', '_').upper()}"]
        elif kind == "port":
            listeners[case] = Listener()
            args = [listeners[case].port]
        elif kind == "marker":
            args = [str(tmp_path / f"marker-{route}")]
        elif kind == "lib":
            args = [LIBS[route]]
        else:
            args = []
        plan.append([case, cap, route, func, args])
    try:
        proc = project.run("app.py", json.dumps(plan))
    finally:
        for listener in listeners.values():
            listener.close()
    return {"proc": proc, "results": results(proc.stdout), "listeners": listeners, "plan": plan,
            "tmp": tmp_path}


@pytest.fixture(scope="module", params=DECISIONS)
def denied_run(tmp_path_factory, request):
    return _build(tmp_path_factory.mktemp("denied"), granted=False, decision=request.param)


@pytest.fixture(scope="module", params=DECISIONS)
def allowed_run(tmp_path_factory, request):
    return _build(tmp_path_factory.mktemp("allowed"), granted=True, decision=request.param)


def _effect(run, cap, route):
    """Whether the act's side effect happened."""
    case = f"{cap}/{route}"
    result = run["results"][case]
    tmp = run["tmp"]
    if cap == "fs":
        return (tmp / f"out-{cap}-{route}.txt").exists()
    if cap == "fs-readonly":
        return result["ok"] and "top secret" in result["value"]
    if cap == "env":
        env = run["results"][case + ":env"]
        return env["process"] or env["mapping"]
    if cap == "env-readonly":
        return result["ok"]
    if cap == "net":
        return run["listeners"][case].accepted > 0
    if cap == "process":
        return (tmp / f"marker-{route}").exists()
    if cap == "ffi":
        return run["results"][case + ":maps"]["mapped"]
    raise AssertionError(cap)


IDS = [f"{cap}-{route}" for cap, route, _, _ in CASES]


@pytest.mark.parametrize("cap,route,func,kind", CASES, ids=IDS)
def test_denied_without_grant(denied_run, cap, route, func, kind):
    assert denied_run["proc"].returncode == 0, denied_run["proc"].stderr
    result = denied_run["results"][f"{cap}/{route}"]
    assert result["ok"] is False, result
    assert result["denied"] is True, result
    assert "capimport: 'actor' 1.0 lacks '" in result["error"], result["error"]
    assert not _effect(denied_run, cap, route)


@pytest.mark.parametrize("cap,route,func,kind", CASES, ids=IDS)
def test_allowed_with_grant(allowed_run, cap, route, func, kind):
    assert allowed_run["proc"].returncode == 0, allowed_run["proc"].stderr
    result = allowed_run["results"][f"{cap}/{route}"]
    assert result["ok"] is True, result
    assert _effect(allowed_run, cap, route)


def test_denied_message_names_the_capability(denied_run):
    messages = {case: r.get("error", "") for case, r in denied_run["results"].items()}
    assert "lacks 'fs' for open(" in messages["fs/direct"]
    assert "lacks 'net' for socket.socket(" in messages["net/direct"]
    assert "lacks 'process' for os.system(" in messages["process/direct"]
    assert "lacks 'process' for subprocess.Popen(" in messages["process/stdlib"]
    assert "lacks 'env' for os.putenv(" in messages["env/direct"]
    assert "lacks 'ffi' for ctypes.dlopen" in messages["ffi/direct"]
    # Through another distribution, the denial names the caller that lacks it, not the granted helper.
    assert messages["net/dist"].startswith("capimport: 'actor' 1.0 lacks 'net'")
