"""Routes 2-8: each attack succeeds without capimport and has no effect under it.

One child process pair per route family; the attacking code is a real
installed distribution (``evil``) with the grants given in CONFIG, and every
outcome is checked by its side effect (a marker file, a child that ran, a
hook that fired), not only by an exception.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from sechelp import ATTEMPT, SRC as SRC_DIR, Scenario, denied, ok, results

CONFIG = '''
[tool.capimport]
mode = "enforce"
[tool.capimport.packages]
evil = ["fs-readonly"]
'''


def _scenario(tmp_path, evil_code: str, app: str = "import evil\nevil.run()\n", config: str = CONFIG, **extra):
    return Scenario(tmp_path, config=config, app=app,
                    dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + evil_code}}, **extra})


def test_native_entry_points_without_events(tmp_path):
    """Route 3: fork_exec (subprocess's and multiprocessing spawn's helper), mkfifo, mknod, setsid..."""
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f'''
import os, sys, importlib, importlib.util
MARKS = {str(marks)!r}
def run():
    import _posixsubprocess
    def fork_exec(mark):
        r, w = os.pipe()
        argv = [b"/bin/sh", b"-c", ("touch " + MARKS + "/" + mark).encode()]
        # restore_signals, new session, (process group,) gid, groups, uid, umask, preexec_fn(, vfork)
        tail = ((False, False, None, None, None, -1, None) if sys.version_info < (3, 11)
                else (False, False, -1, None, None, None, -1, None, False))
        pid = importlib.import_module("_posixsubprocess").fork_exec(
            argv, [b"/bin/sh"], True, (), None, None, -1, -1, -1, -1, -1, -1, r, w, *tail)
        os.close(w); os.read(r, 100); os.close(r); os.waitpid(pid, 0)
        return pid
    attempt("fork_exec", fork_exec, "fork_exec")
    attempt("fork_exec_alias", lambda: sys.modules["_posixsubprocess"].fork_exec)
    def spawnv(mark):
        from multiprocessing import util
        pid = util.spawnv_passfds(b"/bin/sh", [b"/bin/sh", b"-c", ("touch " + MARKS + "/" + mark).encode()], ())
        os.waitpid(pid, 0)
    attempt("mp_spawnv_passfds", spawnv, "spawnv")
    attempt("mkfifo", os.mkfifo, MARKS + "/fifo")
    attempt("mkfifo_posix", sys.modules["posix"].mkfifo, MARKS + "/fifo2")
    attempt("mknod", os.mknod, MARKS + "/node")
    def reimport():
        del sys.modules["_posixsubprocess"]
        return getattr(importlib.import_module("_posixsubprocess").fork_exec, "_capimport_guard", False)
    attempt("reimport_copy", reimport)
    def reimport_posix():
        del sys.modules["posix"]
        return importlib.import_module("posix").mkfifo(MARKS + "/fifo3")
    attempt("reimport_posix", reimport_posix)
    def create_builtin():
        spec = importlib.util.find_spec("posix")
        import _imp
        return _imp.create_builtin(spec).mkfifo(MARKS + "/fifo4")
    attempt("create_builtin", create_builtin)
    def closure_original():
        cells = [c.cell_contents for c in (getattr(os.mkfifo, "__closure__", None) or ())]
        originals = [c for c in cells if getattr(c, "__name__", "") == "mkfifo" and c is not os.mkfifo]
        return originals[0](MARKS + "/fifo5") if originals else "no original reachable"
    attempt("closure_original", closure_original)
    import readline
    attempt("readline_history", readline.write_history_file, MARKS + "/history")
    attempt("setpgid", os.setpgid, 0, 0)
    import dbm
    attempt("dbm", lambda: dbm.open(MARKS + "/db", "c").close())
    report()
'''
    scenario = _scenario(tmp_path, code)
    plain = results(scenario.plain())
    assert {"fifo", "fifo2", "fifo3", "fifo4", "fork_exec", "history", "node", "spawnv"} < set(os.listdir(marks))
    assert any(entry.startswith("db") for entry in os.listdir(marks)), plain
    assert plain["closure_original"] == "ok:no original reachable"   # plain: nothing to find
    assert plain["reimport_copy"] == "ok:False"
    for name in ("fork_exec", "mkfifo", "mknod", "readline_history", "setpgid",
                 "reimport_posix", "create_builtin"):
        assert ok(plain[name]), (name, plain[name])
    for entry in os.listdir(marks):
        os.remove(marks / entry)
    guarded = results(scenario.guarded())
    assert os.listdir(marks) == [], guarded
    for name in ("fork_exec", "mp_spawnv_passfds", "mkfifo", "mkfifo_posix", "mknod", "readline_history",
                 "setpgid", "reimport_posix", "create_builtin", "dbm"):
        assert denied(guarded[name]), (name, guarded[name])
    # A second copy of a guarded C module is refused or comes out guarded, never with the originals.
    assert denied(guarded["reimport_copy"]) or guarded["reimport_copy"] == "ok:True", guarded["reimport_copy"]
    assert guarded["closure_original"] == "ok:no original reachable", guarded["closure_original"]


def test_deferred_execution_keeps_the_registrants_grant(tmp_path):
    """Route 4: builtins and partials scheduled by a distribution run with its grant, not the app's."""
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f'''
import os, sys, atexit, weakref, functools, signal, threading, codecs
from concurrent.futures import ThreadPoolExecutor
MARKS = {str(marks)!r}
class Victim: pass
VICTIM = Victim()
def touch(name):
    return functools.partial(open, os.path.join(MARKS, name), "w")
def run():
    attempt("atexit", atexit.register, touch("atexit"))
    attempt("finalize", weakref.finalize, VICTIM, touch("finalize"))
    t = threading.Timer(0, touch("timer")); attempt("timer", t.start); t.join()
    t = threading.Thread(target=open, args=(os.path.join(MARKS, "thread"), "w")); t.start(); t.join()
    import _thread, time
    done = []
    _thread.start_new_thread(lambda f=touch("start_new_thread"): (done.append(1), f()), ())
    t = threading.Thread(target=touch("wrapped_start"))
    start = threading.Thread.start
    attempt("wrapped_start", lambda: getattr(start, "__wrapped__", start)(t)); t.join()
    raw = _thread.start_new_thread
    attempt("raw_start_new", raw, functools.partial(os.mkdir, os.path.join(MARKS, "raw_start_new")), ())
    time.sleep(0.3)
    attempt("signal", signal.signal, signal.SIGUSR1, lambda *a, f=touch("never"): None)
    attempt("signal_builtin", signal.signal, signal.SIGUSR2, functools.partial(os.makedirs, os.path.join(MARKS, "signal")))
    ex = ThreadPoolExecutor(1)
    attempt("executor", lambda: ex.submit(touch("executor")).exception() or "ok")
    attempt("at_fork", lambda: os.register_at_fork(before=touch("at_fork")))
    attempt("codec", codecs.register, functools.partial(os.makedirs, os.path.join(MARKS, "codec"), 0o755))
    import asyncio
    loop = asyncio.new_event_loop()
    loop.call_soon(touch("call_soon")); loop.call_later(0, touch("call_later"))
    attempt("run_in_executor", lambda: loop.run_until_complete(loop.run_in_executor(None, touch("run_in_executor"))))
    loop.close()
    report()
'''
    app = '''
import os, signal, json, codecs, evil
evil.run()
try:
    codecs.lookup("no-such-codec-capimport")   # the search function runs from the application's stack
except (LookupError, PermissionError, TypeError):
    pass
evil.VICTIM = None   # the finalizer runs from the application's stack
import gc; gc.collect()
try:
    os.kill(os.getpid(), signal.SIGUSR2)   # the handler runs in whatever frame is current
except Exception as exc:
    print("signal-raised", type(exc).__name__)
if hasattr(os, "fork"):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'
    scenario = _scenario(tmp_path, code, app=app, config=config)
    proc = scenario.plain()
    results(proc)
    expected = {"atexit", "finalize", "timer", "thread", "signal", "executor", "at_fork", "call_soon",
                "call_later", "run_in_executor", "start_new_thread", "wrapped_start", "raw_start_new", "codec"}
    assert set(os.listdir(marks)) == expected, (os.listdir(marks), proc.stderr)
    for entry in os.listdir(marks):
        path = marks / entry
        os.rmdir(path) if path.is_dir() else os.remove(path)
    proc = scenario.guarded()
    results(proc)
    assert os.listdir(marks) == [], (os.listdir(marks), proc.stderr[-3000:])


@pytest.mark.parametrize("pure", [False, True], ids=["native", "pure"])
def test_a_distribution_may_put_back_the_tracer_it_found_but_not_install_its_own(tmp_path, pure):
    """doctest (run by pytest's --doctest-modules) and pdb save ``sys.gettrace()`` and put it back
    when they finish: putting back the function in force, or None, is no new code on anyone's
    frames, and needs no ffi; any other trace or profile function does (route 7)."""
    code = '''
import sys
def run():
    def put_back(get, set_):
        saved = get()
        set_(None)
        set_(saved)
        return get() is saved
    attempt("trace_put_back", put_back, sys.gettrace, sys.settrace)
    attempt("profile_put_back", put_back, sys.getprofile, sys.setprofile)
    attempt("trace_own", sys.settrace, lambda *a: None)
    attempt("profile_own", sys.setprofile, lambda *a: None)
    attempt("trace_bad_call", lambda: sys.settrace())
    attempt("profile_keyword", lambda: sys.setprofile(function=None))
    attempt("still_app_tracer", lambda: sys.gettrace() is APP_TRACER[0])
    report()
'''
    app = ("import sys, evil\n"
           "def tracer(frame, event, arg):\n    return None\n"
           "def profiler(frame, event, arg):\n    return None\n"
           "evil.APP_TRACER = [tracer]\n"
           "sys.settrace(tracer)\nsys.setprofile(profiler)\n"
           "evil.run()\n")
    scenario = _scenario(tmp_path, code, app=app)
    env = {"CAPIMPORT_PURE_PYTHON": "1"} if pure else None
    plain = results(scenario.plain())
    assert all(ok(plain[n]) for n in ("trace_put_back", "profile_put_back", "trace_own", "profile_own")), plain
    assert plain["trace_bad_call"].startswith("denied:TypeError"), plain
    guarded = results(scenario.guarded(extra_env=env))
    assert guarded["trace_put_back"] == guarded["profile_put_back"] == "ok:True", guarded
    assert denied(guarded["trace_own"]) and "'ffi'" in guarded["trace_own"], guarded
    assert denied(guarded["profile_own"]), guarded
    assert guarded["still_app_tracer"] == "ok:True", guarded     # the denied call changed nothing
    # a malformed call is the interpreter's error, and vouches for no later call
    assert guarded["trace_bad_call"].startswith("denied:TypeError"), guarded
    assert guarded["profile_keyword"].startswith("denied:TypeError"), guarded


def test_tampering_with_capimport_is_denied(tmp_path):
    """Route 7: audit hooks, tracing, gc walks, the vault's frame, meta_path and __import__."""
    code = '''
import os, sys, gc, builtins, threading
def run():
    seen = []
    sys.addaudithook(lambda event, args: seen.append(event))   # CPython swallows the denial...
    attempt("addaudithook", lambda: (open(__file__).close(), "open" in seen)[1])   # ...but it never runs
    attempt("settrace", sys.settrace, lambda *a: None)
    attempt("settrace_off", sys.settrace, None)    # putting back no tracer: free (below)
    attempt("setprofile", sys.setprofile, lambda *a: None)
    attempt("setprofile_off", sys.setprofile, None)
    attempt("threading_settrace", threading.settrace, lambda *a: None)
    attempt("gc_get_objects", lambda: len(gc.get_objects()))
    attempt("gc_referrers", lambda: len(gc.get_referrers(os.environ)))
    attempt("current_frames", lambda: len(sys._current_frames()))
    # other threads' exceptions, and through their tracebacks the frames (3.10+)
    attempt("current_exceptions", lambda: type(getattr(sys, "_current_exceptions", dict)()).__name__)
    # 3.12+: a callback on every call of every thread (settrace's successor)
    def monitor():
        sys.monitoring.use_tool_id(4, "evil")
        sys.monitoring.register_callback(4, sys.monitoring.events.CALL, print)
        return "registered"
    attempt("monitoring", monitor) if hasattr(sys, "monitoring") else None
    # 3.12+ (Linux): native code in front of every Python frame, and /tmp/perf-<pid>.map
    def trampoline():
        sys.activate_stack_trampoline("perf")
        active = sys.is_stack_trampoline_active()
        sys.deactivate_stack_trampoline()
        return active
    attempt("stack_trampoline", trampoline) if hasattr(sys, "activate_stack_trampoline") else None
    import types
    def generators_of(fn):
        for value in (fn.__defaults__ or ()):
            if isinstance(value, tuple) and value and isinstance(value[0], types.GeneratorType):
                return value
    def env_vaults():
        cells = type(os.environ).__getitem__.__closure__
        call = [c.cell_contents for c in cells if getattr(c.cell_contents, "__name__", "") == "call"][0]
        return generators_of(call)
    # The native core's environment is a C view (its methods are the class's): reached, it
    # decides for whoever calls it, and nothing lists what it holds.
    core_get = getattr(vars(type(os.environ)).get("get"), "__func__", None)
    def vault_frame():
        if core_get is not None:
            return str(gc.get_referents(core_get.__self__))
        return "SECRET" in str(env_vaults()[0].gi_frame.f_locals)
    def vault_send():
        if core_get is not None:
            return core_get(os.environ, "SECRET")
        return env_vaults()[0].send(("get", b"SECRET", None))[1]
    attempt("vault_frame", vault_frame)
    attempt("vault_send", vault_send)
    def originals_vault_frame():
        import codecs   # the fallback's registration APIs keep their originals in a vault
        if type(codecs.register).__name__ == "Gate":   # the core's: only a gc walk could look inside
            return str(gc.get_referents(codecs.register))
        public = getattr(codecs.register, "func", codecs.register)
        invoke = [c.cell_contents for c in public.__closure__ if getattr(c.cell_contents, "__name__", "") == "invoke"][0]
        return str(generators_of(invoke)[0].gi_frame.f_locals)[:100]
    attempt("originals_vault_frame", originals_vault_frame)
    def originals_in_closures():
        import atexit, signal, codecs, weakref, _posixsubprocess, types, functools
        found = []
        def visit(obj, depth, name):
            if depth > 4:
                return
            if isinstance(obj, types.BuiltinFunctionType) and obj.__name__ == name:
                found.append(name)
            for cell in (getattr(obj, "__closure__", None) or ()):
                try:
                    visit(cell.cell_contents, depth + 1, name)
                except ValueError:
                    pass
            for value in (getattr(obj, "__defaults__", None) or ()):
                visit(value, depth + 1, name)
            for value in (getattr(obj, "__kwdefaults__", None) or {}).values():
                visit(value, depth + 1, name)
            visit(getattr(obj, "__wrapped__", None), depth + 1, name) if hasattr(obj, "__wrapped__") else None
            if isinstance(obj, functools.partial):   # the guards are partials: follow them as an attacker would
                for value in (obj.func, *obj.args, *obj.keywords.values()):
                    visit(value, depth + 1, name)
        visited = []
        for fn in (os.stat, os.lstat, os.mkfifo, os.getcwd, _posixsubprocess.fork_exec, atexit.register,
                   signal.signal, codecs.register, os.register_at_fork, codecs.register_error,
                   sys.set_asyncgen_hooks, weakref.proxy):
            if not isinstance(fn, types.BuiltinFunctionType):
                visited.append(fn.__name__)
                visit(fn, 0, fn.__name__)
        return f"found={found} visited={sorted(visited)}"
    attempt("originals_in_closures", originals_in_closures)
    attempt("meta_path", lambda: sys.meta_path.pop(0).__class__.__name__)
    attempt("import_after_meta_path", lambda: __import__("json.tool").__name__)
    attempt("replace_import", lambda: setattr(builtins, "__import__", lambda *a, **k: None))
    attempt("import_after_replace", lambda: __import__("xml.dom.minidom").__name__)
    report()
'''
    app = "import os, sys, json, evil\nevil.run()\nprint(json.dumps({'first': type(sys.meta_path[0]).__name__}))\n"
    scenario = _scenario(tmp_path, code, app=app)
    plain_proc = scenario.plain(extra_env={"SECRET": "x"})
    plain = json.loads(plain_proc.stdout.splitlines()[0])
    for name in ("settrace", "setprofile", "threading_settrace", "gc_get_objects",
                 "gc_referrers", "current_frames", "current_exceptions", "meta_path", "replace_import") + (
                 ("monitoring",) if hasattr(sys, "monitoring") else ()):
        assert ok(plain[name]), (name, plain[name])
    if hasattr(sys, "activate_stack_trampoline"):
        assert plain["stack_trampoline"] == "ok:True", plain["stack_trampoline"]
    assert plain["addaudithook"] == "ok:True", plain["addaudithook"]
    guarded_proc = scenario.guarded(extra_env={"SECRET": "x"})
    guarded = json.loads(guarded_proc.stdout.splitlines()[0])
    assert guarded["addaudithook"] == "ok:False", guarded["addaudithook"]
    for name in ("settrace", "setprofile", "threading_settrace", "gc_get_objects",
                 "gc_referrers", "current_frames", "vault_frame", "originals_vault_frame", "import_after_meta_path",
                 "import_after_replace") + (("current_exceptions",) if hasattr(sys, "_current_exceptions") else ()) + (
                 ("monitoring",) if hasattr(sys, "monitoring") else ()) + (
                 ("stack_trampoline",) if hasattr(sys, "activate_stack_trampoline") else ()):
        assert denied(guarded[name]), (name, guarded[name])
    assert guarded["settrace_off"] == guarded["setprofile_off"] == "ok:None", guarded
    assert guarded["vault_send"] == "ok:None", guarded["vault_send"]   # decided for its real caller
    # No guarded function keeps its original reachable, and the walk really went through them.
    assert guarded["originals_in_closures"].startswith("ok:found=[] visited=["), guarded["originals_in_closures"]
    for name in ("stat", "lstat", "mkfifo", "getcwd", "fork_exec", "register", "signal", "register_at_fork",
                 "register_error", "set_asyncgen_hooks", "proxy"):
        assert f"'{name}'" in guarded["originals_in_closures"], (name, guarded["originals_in_closures"])
    assert results(guarded_proc) == {"first": "GuardFinder"}   # put back, and still first


def test_forged_identity_is_not_believed(tmp_path):
    """Route 6: compile/CodeType/marshal with another's file name, sourceless .pyc with a false name."""
    marks = tmp_path / "marks"
    marks.mkdir()
    import marshal
    fake = compile(f"open({str(marks / 'pyc')!r}, 'w').close()\n", "/nonexistent/app_like.py", "exec")
    import importlib.util
    pyc = importlib.util.MAGIC_NUMBER + b"\x00" * 12 + marshal.dumps(fake)
    code = f'''
import os, sys, types, marshal
MARKS = {str(marks)!r}
CAPIMPORT_FILE = {os.path.join(SRC_DIR, "capimport", "enforcer.py")!r}
SRC = "open(os.path.join(MARKS, NAME), 'w').close()"
def run():
    def forge(name, filename):
        code = compile(SRC, filename, "exec")
        exec(code, {{"os": os, "MARKS": MARKS, "NAME": name}})
    attempt("stdlib_name", forge, "stdlib", os.__file__)
    attempt("capimport_name", forge, "capimport", CAPIMPORT_FILE)
    attempt("app_name", forge, "app", os.path.abspath("app.py"))
    attempt("nowhere_name", forge, "nowhere", "/nonexistent/elsewhere.py")
    def replace():
        code = compile(SRC, "<evil>", "exec").replace(co_filename=os.__file__)
        exec(code, {{"os": os, "MARKS": MARKS, "NAME": "replace"}})
    attempt("code_replace", replace)
    def later():
        code = compile("def f():\\n    open(os.path.join(MARKS, 'later'), 'w').close()\\n", "/nonexistent/x.py", "exec")
        ns = {{"os": os, "MARKS": MARKS}}
        exec(code, ns)
        return ns["f"]
    import atexit
    attempt("deferred_forged", lambda: setattr(sys.modules["__main__"], "CALLBACK", later()))
    attempt("sourceless_pyc", lambda: __import__("evil.compiled"))
    report()
'''
    app = "import evil, sys\nevil.run()\ntry:\n    sys.modules['__main__'].CALLBACK()\nexcept PermissionError as e:\n    print('callback denied')\n"
    scenario = Scenario(tmp_path, config=CONFIG, app=app, dists={"evil": {"files": {
        "evil/__init__.py": ATTEMPT + code, "evil/compiled.pyc": ""}}})
    (scenario.site / "evil" / "compiled.pyc").write_bytes(pyc)
    plain = results(scenario.plain())
    assert sorted(os.listdir(marks)) == ["app", "capimport", "later", "nowhere", "pyc", "replace", "stdlib"], plain
    for entry in os.listdir(marks):
        os.remove(marks / entry)
    proc = scenario.guarded()
    guarded = results(proc)
    assert os.listdir(marks) == [], (guarded, proc.stderr[-2000:])
    for name in ("stdlib_name", "capimport_name", "code_replace"):
        assert denied(guarded[name]) and "another's" in guarded[name], (name, guarded[name])
    for name in ("app_name", "nowhere_name", "sourceless_pyc"):
        assert denied(guarded[name]) and "'evil'" in guarded[name], (name, guarded[name])
    assert "callback denied" in proc.stdout


def test_code_named_after_another_distributions_data_file_is_its_makers(tmp_path):
    """Route 6: jinja2 compiles a template with the template's path as the file name, and a sphinx
    theme's ``layout.html`` is another distribution's file. That is no forgery: the code is the
    compiler's, marked as it runs, so the theme's grants are not borrowed and the compiler's apply.
    Naming another distribution's Python file still needs ffi. Native core and fallback, and every
    data suffix (the core's list and tamper.DATA_FILE_SUFFIXES are one list)."""
    from capimport.guards.tamper import DATA_FILE_SUFFIXES

    out = tmp_path / "out"
    out.mkdir()
    theme_files = {f"theme/layout{suffix}": "x\n" for suffix in DATA_FILE_SUFFIXES}
    theme_files.update({"theme/__init__.py": "", "theme/helpers.py": ""})
    code = f'''
import os, theme
OUT = {str(out)!r}
HERE = os.path.dirname(theme.__file__)
def render(name, target):
    source = f"open(os.path.join(OUT, {{target!r}}), 'w').close()"
    exec(compile(source, os.path.join(HERE, name), "exec"), {{"os": os, "OUT": OUT}})
def run():
    for suffix in {DATA_FILE_SUFFIXES!r}:
        attempt("data" + suffix, render, "layout" + suffix, "data" + suffix)
    attempt("python", render, "helpers.py", "python")
    report()
'''
    for engine_grant, written in (('["fs"]', True), ("[]", False)):
        config = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
                  f'engine = {engine_grant}\ntheme = ["fs", "ffi"]\n')
        scenario = Scenario(tmp_path / engine_grant.strip('[]"') if engine_grant != "[]" else tmp_path / "none",
                            config=config, app="import engine\nengine.run()\n",
                            dists={"theme": {"files": theme_files},
                                   "engine": {"files": {"engine/__init__.py": ATTEMPT + code}}})
        plain = results(scenario.plain())
        assert all(ok(v) for v in plain.values()), plain
        for entry in os.listdir(out):
            os.remove(out / entry)
        for extra_env in ({}, {"CAPIMPORT_PURE_PYTHON": "1"}):
            guarded = results(scenario.guarded(extra_env=extra_env))
            # naming the theme's module forges it (the theme holds ffi: no one borrows that)
            assert denied(guarded["python"]) and "another's" in guarded["python"], (extra_env, guarded)
            for suffix in DATA_FILE_SUFFIXES:
                got = guarded["data" + suffix]
                if written:   # the engine's own grant: its template code writes
                    assert ok(got), (suffix, extra_env, got)
                else:         # the theme's fs is not borrowed: the engine's code lacks it
                    assert denied(got) and "'engine'" in got, (suffix, extra_env, got)
            assert sorted(os.listdir(out)) == (sorted("data" + s for s in DATA_FILE_SUFFIXES) if written else [])
            for entry in os.listdir(out):
                os.remove(out / entry)


def test_ffi_is_denied_before_the_first_symbol(tmp_path):
    """Route 8: ctypes without ffi never resolves a symbol; subinterpreters need ffi too."""
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f'''
import os
MARKS = {str(marks)!r}
def run():
    def libc():
        import ctypes
        return ctypes.CDLL(None).mkdir(os.path.join(MARKS, "ctypes").encode(), 0o755)
    attempt("ctypes", libc)
    def sub():
        import _xxsubinterpreters as interpreters
        interp = interpreters.create()
        interpreters.run_string(interp, "import os; os.mkdir(%r)" % os.path.join(MARKS, "subinterp"))
    attempt("subinterpreter", sub)
    report()
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly", "process"]\n'
    scenario = _scenario(tmp_path, code, config=config)
    plain = results(scenario.plain())
    assert sorted(os.listdir(marks)) == ["ctypes", "subinterp"], plain
    for entry in os.listdir(marks):
        os.rmdir(marks / entry)
    guarded = results(scenario.guarded())
    assert os.listdir(marks) == [], guarded
    assert denied(guarded["ctypes"]), guarded
    # Refused when evil imports the subinterpreter module (first import in the process).
    assert guarded["subinterpreter"].startswith("denied:Capability"), guarded


CFFI_CODE = '''
import os
MARKS = {marks!r}
def run():
    def abi_mode():
        import cffi
        ffi = cffi.FFI()
        ffi.cdef("int mkdir(const char *, unsigned int);")
        return ffi.dlopen(None).mkdir(os.path.join(MARKS, "cffi").encode(), 0o755)
    attempt("cffi", abi_mode)
    def raw_memory():
        import cffi
        return cffi.FFI().cast("long *", id(MARKS))[0] > 0   # the refcount, read from memory
    attempt("cffi_memory", raw_memory)
    report()
'''


def test_the_cffi_backend_needs_ffi_in_every_mode(tmp_path):
    """Route 8: cffi's backend acts without audit events; loading it needs ffi (not only in strict mode)."""
    pytest.importorskip("cffi")   # a test extra: installed by .ci/run
    marks = tmp_path / "marks"
    marks.mkdir()
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'
    scenario = _scenario(tmp_path, CFFI_CODE.format(marks=str(marks)), config=config)
    plain = results(scenario.plain())
    assert os.listdir(marks) == ["cffi"] and plain["cffi_memory"] == "ok:True", plain
    os.rmdir(marks / "cffi")
    guarded = results(scenario.guarded())
    assert os.listdir(marks) == [], guarded
    assert "loading the cffi backend" in guarded["cffi"] and denied(guarded["cffi_memory"]), guarded


def test_the_cffi_backend_still_works_for_a_distribution_granted_ffi(tmp_path):
    """Route 8, no false denial: with ffi (and fs for its folder) the same code runs."""
    pytest.importorskip("cffi")
    marks = tmp_path / "marks"
    marks.mkdir()
    config = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
              f'evil = {{ ffi = true, fs-readonly = true, fs = ["{marks}"] }}\n')
    scenario = _scenario(tmp_path, CFFI_CODE.format(marks=str(marks)), config=config)
    proc = scenario.guarded()
    assert results(proc) == {"cffi": "ok:0", "cffi_memory": "ok:True"}, proc.stderr[-2000:]
    assert os.listdir(marks) == ["cffi"]


@pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])
def test_shadow_passwords_through_spwd_need_fs_readonly_on_the_shadow_file(tmp_path, decision):
    """Route 3: ``spwd`` reads ``/etc/shadow`` through NSS with no ``open`` event: as root (a
    container), every user's password hash. ``fs-readonly`` on ``/etc/shadow``, as ``open``."""
    spwd = pytest.importorskip("spwd")   # removed in 3.13
    try:
        spwd.getspall()
    except (PermissionError, KeyError, OSError):
        pytest.skip("spwd needs root here")
    code = '''
import spwd
def run():
    attempt("getspall", lambda: len(spwd.getspall()) > 0)
    attempt("getspnam", lambda: spwd.getspnam("root").sp_namp)
    report()
'''
    scenario = _scenario(tmp_path, code, config='[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
                                                'evil = { fs-readonly = ["/etc/passwd"] }\n')
    assert results(scenario.plain()) == {"getspall": "ok:True", "getspnam": "ok:root"}
    after = results(scenario.guarded(extra_env=decision))
    for name in ("getspall", "getspnam"):
        assert denied(after[name]) and "lacks 'fs-readonly'" in after[name] and "spwd." in after[name], after
    granted = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
               'evil = { fs-readonly = ["/etc/shadow"] }\n')
    scenario = _scenario(tmp_path / "granted", code, config=granted)
    assert results(scenario.guarded(extra_env=decision)) == {"getspall": "ok:True", "getspnam": "ok:root"}


TEST_MODULE_CODE = '''
import importlib
def run():
    attempt("testcapi", lambda: importlib.import_module("_testcapi").INT_MAX > 0)
    attempt("testinternalcapi", lambda: callable(importlib.import_module("_testinternalcapi").get_configs))
    report()
'''


@pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])
def test_cpythons_test_c_modules_need_ffi(tmp_path, decision):
    """Route 8: ``_testcapi`` and ``_testinternalcapi`` ship with the interpreter for its own test
    suite; they crash it and reach raw memory on purpose. Loading one needs ffi; the
    application's own import is free."""
    pytest.importorskip("_testcapi")
    pytest.importorskip("_testinternalcapi")
    app = "import _testcapi\nassert _testcapi.INT_MAX > 0\nimport evil\nevil.run()\n"
    scenario = _scenario(tmp_path, TEST_MODULE_CODE, app="import evil\nevil.run()\n")
    assert results(scenario.plain()) == {"testcapi": "ok:True", "testinternalcapi": "ok:True"}
    guarded = scenario.guarded(extra_env=decision)
    after = results(guarded)
    assert denied(after["testcapi"]) and "loading CPython's test C module _testcapi" in after["testcapi"], after
    assert denied(after["testinternalcapi"]) and "lacks 'ffi'" in after["testinternalcapi"], after
    # no false denial: the application loads one for itself
    scenario = _scenario(tmp_path / "app", TEST_MODULE_CODE, app=app)
    guarded = scenario.guarded(extra_env=decision)
    assert guarded.returncode == 0 and "_testcapi" not in guarded.stderr.split("_testinternalcapi")[0], \
        guarded.stderr[-2000:]


@pytest.mark.skipif(sys.version_info[:2] == (3, 12),
                    reason="CPython 3.12 segfaults when an audit hook refuses PyInterpreterState_New")
def test_subinterpreter_creation_needs_ffi_when_the_app_imported_the_module(tmp_path):
    """Route 8: with the module already imported by the application, creation itself is refused."""
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f'''
import os, sys
MARKS = {str(marks)!r}
def run():
    def sub():
        interpreters = sys.modules["_xxsubinterpreters"]
        interp = interpreters.create()
        interpreters.run_string(interp, "import os; os.mkdir(%r)" % os.path.join(MARKS, "subinterp"))
    attempt("subinterpreter", sub)
    report()
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'
    scenario = _scenario(tmp_path, code, config=config, app="import _xxsubinterpreters, evil\nevil.run()\n")
    plain = results(scenario.plain())
    assert os.listdir(marks) == ["subinterp"], plain
    os.rmdir(marks / "subinterp")
    guarded = results(scenario.guarded())
    assert os.listdir(marks) == [], guarded
    # CPython turns the hook's denial into "RuntimeError: interpreter creation failed".
    assert guarded["subinterpreter"] == "denied:RuntimeError:interpreter creation failed", guarded


def test_file_metadata_needs_fs_readonly(tmp_path):
    """Route 2: stat and friends reveal whether files exist; they need fs-readonly on the path."""
    secret = tmp_path / "secret-dir"
    secret.mkdir()
    (secret / "id_rsa").write_text("key")
    os.symlink(secret / "id_rsa", secret / "link")
    code = f'''
import os, pathlib
SECRET = {str(secret)!r}
def run():
    attempt("exists", os.path.exists, SECRET + "/id_rsa")
    attempt("stat", lambda: os.stat(SECRET + "/id_rsa").st_size)
    attempt("lstat", lambda: os.lstat(SECRET).st_mode)
    attempt("access", os.access, SECRET + "/id_rsa", os.R_OK)
    attempt("pathlib", lambda: pathlib.Path(SECRET, "id_rsa").is_file())
    attempt("statvfs", lambda: os.statvfs(SECRET).f_bsize > 0)
    attempt("getcwd", os.getcwd)
    attempt("readlink", os.readlink, SECRET + "/link")
    report()
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\n'
    scenario = _scenario(tmp_path, code, config=config)
    plain = results(scenario.plain())
    assert plain["exists"] == "ok:True" and plain["stat"] == "ok:3" and plain["pathlib"] == "ok:True"
    guarded = results(scenario.guarded())
    assert plain["readlink"] == f"ok:{secret / 'id_rsa'}"
    for name in ("stat", "lstat", "access", "statvfs", "getcwd", "readlink"):
        assert denied(guarded[name]), (name, guarded[name])
    # exists/isfile swallow OSError (PermissionError included): they answer False, revealing nothing.
    assert guarded["exists"] == "ok:False" and guarded["pathlib"] in ("ok:False",) or denied(guarded["pathlib"])


#: A distribution starting a Python child by every route; each child writes a mark named after it.
CHILDREN = '''
import os, sys, subprocess
MARKS = {marks!r}
def write(name):
    open(os.path.join(MARKS, name), "w").close()
    return name
def run():
    child = "import evil; evil.write('subprocess')"
    attempt("subprocess", lambda: subprocess.run([sys.executable, "-c", child], capture_output=True).returncode)
    attempt("subprocess_env", lambda: subprocess.run([sys.executable, "-c", child.replace("subprocess", "subprocess_env")], env={{"PYTHONPATH": os.environ["PYTHONPATH"]}}, capture_output=True).returncode)
    def via_exec(how):
        pid = os.fork()
        if pid == 0:
            try:
                argv = [sys.executable, "-c", child.replace("subprocess", how)]
                if how == "execv":
                    os.execv(sys.executable, argv)
                elif how == "execve_fd":
                    os.execve(os.open(sys.executable, os.O_RDONLY), argv, dict(os.environ))
                else:
                    os.execlp(os.path.basename(sys.executable), *argv)
            finally:
                os._exit(99)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    def via_spawn(how):
        argv = [sys.executable, "-c", child.replace("subprocess", how)]
        if how == "posix_spawn":
            pid = os.posix_spawn(sys.executable, argv, dict(os.environ))
        else:
            env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
            pid = os.posix_spawnp(os.path.basename(sys.executable), argv, env)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    for how in ("execv", "execve_fd", "execlp"):
        attempt(how, lambda: via_exec(how))
    for how in ("posix_spawn", "posix_spawnp"):
        attempt(how, lambda: via_spawn(how))
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    def spawn():
        p = ctx.Process(target=write, args=("mp_spawn",)); p.start(); p.join(); return p.exitcode
    attempt("mp_spawn", spawn)
    report()
'''

CHILD_ROUTES = ("subprocess", "subprocess_env", "execv", "execve_fd", "execlp", "posix_spawn", "posix_spawnp",
                "mp_spawn")


def _children(tmp_path, fs_scope: str):
    """*marks* and a scenario whose evil may start any program, and write only under *fs_scope*
    (opening the pipes multiprocessing hands it is an fs act with no path)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    config = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
              f'evil = {{ fs-readonly = ["/"], env-readonly = ["*"], process = ["*"], fs = ["{fs_scope or marks}"] }}\n')
    return marks, _scenario(tmp_path, CHILDREN.format(marks=str(marks)),
                            app="import evil\nif __name__ == '__main__':\n    evil.run()\n", config=config)


def test_child_interpreters_are_enforced_with_the_same_policy(tmp_path):
    """Route 5: Python children started by subprocess, os.exec*, os.posix_spawn[p] and multiprocessing spawn are enforced."""
    marks, scenario = _children(tmp_path, "/nonexistent-scope")
    plain = results(scenario.plain())
    assert sorted(os.listdir(marks)) == sorted(CHILD_ROUTES), (list(plain.items()), os.listdir(marks))
    for entry in os.listdir(marks):
        os.remove(marks / entry)
    proc = scenario.guarded()
    guarded = results(proc)
    assert os.listdir(marks) == [], (guarded, proc.stderr[-2000:])
    for how in CHILD_ROUTES:
        assert guarded[how] == "ok:1", (how, guarded)   # the child started, and was denied


def test_child_interpreters_still_work_when_granted(tmp_path):
    """Route 5, no false denial: the same children run normally when the grant covers the act."""
    marks, scenario = _children(tmp_path, "")
    proc = scenario.guarded()
    assert results(proc) == {how: "ok:0" for how in CHILD_ROUTES}, proc.stderr[-2000:]
    assert sorted(os.listdir(marks)) == sorted(CHILD_ROUTES)


def test_a_python_of_another_environment_starts_as_it_is(tmp_path):
    """Route 5, no false denial: only this environment's Python is started under capimport. A venv
    being made, the base interpreter or the system's python3 cannot import capimport (virtualenv
    asks each interpreter about itself, with a child); rewritten, it failed to start. This
    environment's interpreter, with the same environment, is still rewritten (and still enforced)."""
    other = tmp_path / "othervenv"
    (other / "bin").mkdir(parents=True)
    (other / "pyvenv.cfg").write_text(f"home = {os.path.dirname(os.path.realpath(sys.executable))}\n")
    (other / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    marker = tmp_path / "written"
    code = f'''
import os, subprocess, sys
BARE = {{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}}   # capimport is not importable
def run():
    attempt("other", lambda: subprocess.run([{str(other / "bin" / "python")!r}, "-c",
            "import sys; print(sys.prefix)"], env=BARE, capture_output=True, text=True).stdout.strip())
    attempt("same", lambda: subprocess.run([sys.executable, "-c",
            "import evil; evil.touch({str(marker)!r})"], capture_output=True, text=True).returncode)
    report()
def touch(path):
    open(path, "w").close()
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["process"]\n'
    scenario = _scenario(tmp_path, code, config=config)
    plain = results(scenario.plain())
    assert plain["other"] == f"ok:{other}" and plain["same"] == "ok:0", plain
    marker.unlink()
    for extra_env in ({}, {"CAPIMPORT_PURE_PYTHON": "1"}):
        guarded = results(scenario.guarded(extra_env=extra_env))
        assert guarded["other"] == f"ok:{other}", (extra_env, guarded)
        assert guarded["same"] == "ok:1" and not marker.exists(), (extra_env, guarded)   # evil lacks fs there


def test_process_memory_through_proc_needs_ffi(tmp_path):
    """Own route: /proc/self/mem rewrites the interpreter (and capimport) in place: ffi, even for fs holders."""
    code = '''
import os
def run():
    attempt("proc_mem", lambda: open("/proc/self/mem", "rb").close())
    attempt("proc_pid_mem", lambda: os.close(os.open("/proc/%d/mem" % os.getpid(), os.O_RDONLY)))
    attempt("link_to_mem", lambda: (os.symlink("/proc/self/mem", "memlink"), open("memlink", "rb").close()))
    # A link whose name says nothing (the Python rule only looked at names with "mem" in them).
    attempt("innocent_link", lambda: (os.symlink("/proc/self/mem", "notes.txt"), open("notes.txt", "r+b").close()))
    attempt("relative", lambda: (os.chdir("/proc/self"), open("mem", "rb").close()))
    report()
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs"]\n'
    scenario = _scenario(tmp_path, code, config=config)
    plain = results(scenario.plain())
    assert all(ok(v) for v in plain.values()), plain
    os.remove(scenario.project / "memlink")
    os.remove(scenario.project / "notes.txt")
    guarded = results(scenario.guarded())
    assert all(denied(v) and "'ffi'" in v for v in guarded.values()), guarded


def test_strict_mode_needs_ffi_to_load_native_extensions(tmp_path):
    """Route 8: a distribution shipping a compiled extension loads it in strict mode only with ffi."""
    import glob
    import shutil
    import sysconfig
    import _json
    source = glob.glob(os.path.join(os.path.dirname(getattr(_json, "__file__", None) or "/nonexistent/x"), "xxlimited.*.so"))
    if not source:
        import pytest
        pytest.skip("this interpreter has no xxlimited test extension")
    code = '''
def run():
    attempt("native", lambda: __import__("xxlimited").__name__)
    report()
'''
    config = '[tool.capimport]\nmode = "enforce"\nstrict = true\n[tool.capimport.packages]\nevil = []\n'
    scenario = _scenario(tmp_path, code, config=config)
    so = os.path.basename(source[0])
    shutil.copy(source[0], scenario.site / so)
    # Claim the extension in evil's RECORD, as an installer would.
    record = next(scenario.site.glob("evil-*.dist-info")) / "RECORD"
    record.write_text(record.read_text() + f"{so},,\n")
    plain = results(scenario.plain())
    assert plain["native"] == "ok:xxlimited", plain
    guarded = results(scenario.guarded())
    assert guarded["native"].startswith("denied:CapabilityImportError") and "'ffi'" in guarded["native"], guarded
    granted = config.replace("evil = []", 'evil = ["ffi"]')
    (scenario.project / "pyproject.toml").write_text(granted)
    assert results(scenario.guarded())["native"] == "ok:xxlimited"


def test_monkeypatching_with_builtins_keeps_the_patchers_grant(tmp_path):
    """Route 4: a builtin, a partial or string-compiled code planted in another module runs as its planter."""
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f'''
import os, sys, functools
MARKS = {str(marks)!r}
def run():
    helpers = sys.modules["helpers"]
    helpers.cleanup = functools.partial(os.mkdir, os.path.join(MARKS, "partial"))
    helpers.hook = os.mkdir
    ns = {{}}
    exec("import os\\ndef f():\\n    os.mkdir(%r)\\n" % os.path.join(MARKS, "dynamic"), ns)
    helpers.dynamic = ns["f"]
    exec("import os\\ndef g(*args):\\n    os.mkdir(%r)\\n" % os.path.join(MARKS, "excepthook"), ns)
    sys.excepthook = ns["g"]
    # A module of its own loaded past the import guard (the interpreter's builtins), planted as a
    # plain Python function: its frames still name evil's file.
    import importlib.util
    spec = importlib.util.spec_from_file_location("evil_side", os.path.join(os.path.dirname(__file__), "side.py"))
    side = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(side)
    helpers.side = side.make
    helpers.peek = side.peek
'''
    app = f'''
import os, sys, json, helpers, evil
evil.run()
out = {{}}
for name, call in (("partial", lambda: helpers.cleanup()), ("builtin", lambda: helpers.hook({str(marks / "builtin")!r})),
                   ("dynamic", lambda: helpers.dynamic()),
                   ("excepthook", lambda: sys.excepthook(ValueError, ValueError(), None)),
                   ("side_module", lambda: helpers.side())):
    try:
        call(); out[name] = "ok"
    except PermissionError as exc:
        out[name] = "denied"
out["peek"] = helpers.peek()   # an environment read: no audit event, only the guard decides
print(json.dumps(out))
'''
    scenario = Scenario(tmp_path, config=CONFIG, app=app, dists={"evil": {"files": {
        "evil/__init__.py": ATTEMPT + code,
        "evil/side.py": f"import os\ndef make():\n    os.mkdir({str(marks / 'side_module')!r})\n"
                        "def peek():\n    return os.environ.get('SECRET')\n"}}})
    (scenario.project / "helpers.py").write_text("def cleanup():\n    pass\n")
    plain = results(scenario.plain(extra_env={"SECRET": "planted-secret"}))
    assert plain == {"partial": "ok", "builtin": "ok", "dynamic": "ok", "excepthook": "ok", "side_module": "ok",
                     "peek": "planted-secret"}, plain
    assert sorted(os.listdir(marks)) == ["builtin", "dynamic", "excepthook", "partial", "side_module"]
    for entry in os.listdir(marks):
        os.rmdir(marks / entry)
    guarded = results(scenario.guarded(extra_env={"SECRET": "planted-secret"}))
    assert guarded == {"partial": "denied", "builtin": "denied", "dynamic": "denied", "excepthook": "denied",
                       "side_module": "denied", "peek": None}, guarded
    assert os.listdir(marks) == []


def test_guards_are_safe_under_concurrent_threads(tmp_path):
    """No false denial from the vaults: 24 threads reading the environment and stat-ing files at once."""
    code = '''
import os, threading
def run():
    errors = []
    def work():
        try:
            for i in range(300):
                assert os.environ.get("HOME") is not None
                os.stat(os.__file__)
                os.path.exists("/nonexistent")
        except BaseException as exc:
            errors.append(repr(exc))
    threads = [threading.Thread(target=work) for _ in range(24)]
    for t in threads: t.start()
    for t in threads: t.join()
    attempt("errors", lambda: errors[:3])
    report()
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly", "env-readonly"]\n'
    scenario = _scenario(tmp_path, code, config=config)
    assert results(scenario.plain()) == {"errors": "ok:[]"}
    proc = scenario.guarded()
    assert results(proc) == {"errors": "ok:[]"}, proc.stderr[-2000:]


def test_import_hooks_planted_as_builtins_or_partials_are_not_the_importers_acts(tmp_path):
    """Route 4: a partial planted on sys.path_hooks, as a meta_path finder's find_spec or in
    sys.path_importer_cache runs when the *application* next imports; it acts with the default grant."""
    marks = tmp_path / "marks"
    marks.mkdir()
    source = tmp_path / "source"
    source.mkdir()
    (source / "payload.txt").write_text("x")
    code = f'''
import functools, os, shutil, sys, types
SOURCE = {str(source)!r}
def plant(where):
    if where == "path_hooks":   # called with each new sys.path entry: copies a file into it
        sys.path_hooks.insert(0, functools.partial(shutil.copy, os.path.join(SOURCE, "payload.txt")))
        sys.path.append(os.path.abspath("hooked"))
        return lambda: (sys.path_hooks.pop(0), sys.path.pop())
    if where == "meta_path":    # find_spec(name, path, target) -> copytree(SOURCE, name, None, None)
        sys.meta_path.insert(1, types.SimpleNamespace(find_spec=functools.partial(shutil.copytree, SOURCE)))
        return lambda: sys.meta_path.pop(1)
    # PathFinder asks the cached finder of sys.path[0]: find_spec(name, target)
    entry = sys.path[0]
    saved = sys.path_importer_cache.get(entry)
    sys.path_importer_cache[entry] = types.SimpleNamespace(find_spec=functools.partial(shutil.copytree, SOURCE))
    return lambda: sys.path_importer_cache.__setitem__(entry, saved)
'''
    app = f'''
import os, sys
os.chdir({str(marks)!r})
os.makedirs("hooked")
import evil
for where in ("path_hooks", "meta_path", "path_importer_cache"):
    undo = evil.plant(where)
    try:
        __import__("missing_after_" + where)
    except BaseException as exc:
        pass
    undo()
print("DONE")
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'
    scenario = Scenario(tmp_path, config=config, app=app,
                        dists={"evil": {"files": {"evil/__init__.py": code}}})
    proc = scenario.plain()
    assert "DONE" in proc.stdout, proc.stderr[-2000:]
    planted = sorted(os.listdir(marks))
    assert os.listdir(marks / "hooked") == ["payload.txt"], (planted, proc.stderr[-2000:])
    assert planted == ["hooked", "missing_after_meta_path", "missing_after_path_importer_cache"], planted
    import shutil
    for entry in os.listdir(marks):
        shutil.rmtree(marks / entry)
    proc = scenario.guarded()
    assert "DONE" in proc.stdout, proc.stderr[-2000:]
    assert sorted(os.listdir(marks)) == ["hooked"] and os.listdir(marks / "hooked") == [], \
        (os.listdir(marks), proc.stdout, proc.stderr[-2000:])
    assert "'fs'" in proc.stderr, proc.stderr[-2000:]


def test_a_loader_planted_by_a_finder_is_not_the_importers_act(tmp_path):
    """Route 4: a Python finder (its own frames) returns a spec whose loader's exec_module is a
    partial; the import system calls it when the application imports, as the application."""
    victim = tmp_path / "victim"
    code = f'''
import functools, importlib.machinery, shutil, sys, types
VICTIM = {str(victim)!r}
class Finder:
    def find_spec(self, name, path=None, target=None):
        if name != "evil_payload":
            return None
        loader = types.SimpleNamespace(create_module=lambda spec: None,
                                       exec_module=functools.partial(shutil.rmtree, VICTIM))
        return importlib.machinery.ModuleSpec(name, loader)
def plant():
    sys.meta_path.append(Finder())
'''
    app = '''
import evil
evil.plant()
try:
    import evil_payload
    print("IMPORTED")
except BaseException as exc:
    print("FAILED", type(exc).__name__)
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'
    scenario = Scenario(tmp_path, config=config, app=app, dists={"evil": {"files": {"evil/__init__.py": code}}})
    victim.mkdir()
    (victim / "data.txt").write_text("keep me")
    proc = scenario.plain()
    assert "IMPORTED" in proc.stdout and not victim.exists(), (proc.stdout, proc.stderr[-2000:])
    victim.mkdir()
    (victim / "data.txt").write_text("keep me")
    proc = scenario.guarded()
    assert (victim / "data.txt").exists(), (proc.stdout, proc.stderr[-2000:])
    assert "'fs'" in proc.stderr, proc.stderr[-2000:]


def test_marshalled_code_cannot_pose_as_the_import_system(tmp_path):
    """Route 6: code objects built offline (a marshal blob shipped in the package, no compile() in
    the process) naming the import system ("<frozen importlib._bootstrap>", whose frames are
    privileged) or the standard library, run through exec, FunctionType, a function's __code__,
    or nested inside innocent-looking "<string>" code: each is refused without ffi."""
    import marshal
    marks = tmp_path / "marks"
    marks.mkdir()

    def blob(name, filename, nested=False):
        source = f"import os; os.system('touch {marks / name}')"
        if nested:   # an innocent outer code object whose inner function names the import system
            module = compile(f"def f():\n    {source}\n", filename, "exec")
            forged = [c for c in module.co_consts if hasattr(c, "co_code")][0]
            outer = compile("def f():\n    pass\nf()\n", "<string>", "exec")
            consts = tuple(forged if hasattr(c, "co_code") else c for c in outer.co_consts)
            return marshal.dumps(outer.replace(co_consts=consts))
        return marshal.dumps(compile(source, filename, "exec"))

    frozen = "<frozen importlib._bootstrap>"
    code = f'''
import marshal, os, types
def run():
    attempt("exec", lambda: exec(marshal.loads({blob("exec", frozen)!r}), {{}}))
    attempt("stdlib_name", lambda: exec(marshal.loads({blob("stdlib_name", "<frozen posixpath>")!r}), {{}}))
    attempt("function_new", lambda: types.FunctionType(marshal.loads({blob("function_new", frozen)!r}),
                                                       {{"__builtins__": __builtins__}})())
    def assign():
        def f():
            pass
        f.__code__ = marshal.loads({blob("code_attr", frozen)!r})
        return f()
    attempt("code_attr", assign)
    attempt("nested", lambda: exec(marshal.loads({blob("nested", frozen, nested=True)!r}), {{}}))
    report()
'''
    scenario = _scenario(tmp_path, code, config='[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\n')
    plain = results(scenario.plain())
    assert all(ok(v) for v in plain.values()), plain
    assert sorted(p.name for p in marks.iterdir()) == ["code_attr", "exec", "function_new", "nested", "stdlib_name"]
    for mark in marks.iterdir():
        mark.unlink()
    guarded = results(scenario.guarded())
    assert all(denied(v) and "'ffi'" in v for v in guarded.values()), guarded
    assert list(marks.iterdir()) == []


def test_calling_a_ctypes_function_pointer_needs_ffi(tmp_path):
    """Route 8: ``import ctypes`` succeeds for a distribution without ``ffi`` (its use is what is
    denied), but calling a ready-made function pointer raises no audit event on 3.11:
    ``ctypes.memmove`` wrote any memory (a review finding; from there a distribution can rewrite
    its own code objects' file names, or anything else). The core gates the call slot of
    ``_ctypes.CFuncPtr`` (and of subclasses, and its ``__call__``), raising
    ``ctypes.call_function`` before each call. Native core only (the fallback cannot reach it)."""
    code = '''
def run():
    import ctypes
    target = bytes(range(65, 69))
    offset = target.__sizeof__() - len(target) - 1
    def write():
        ctypes.memmove(id(target) + offset, b"ZZZZ", 4)
        return target.decode()
    def through_the_slot_wrapper():
        type(ctypes.memset).__mro__[-3].__call__(ctypes.memset, id(target) + offset, 89, 4)
        return target.decode()
    attempt("memmove", write)
    attempt("slot_wrapper", through_the_slot_wrapper)
    report()
'''
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\n'
    scenario = _scenario(tmp_path, code, config=config)
    plain = results(scenario.plain())
    assert plain["memmove"] == "ok:ZZZZ" and plain["slot_wrapper"] == "ok:YYYY", plain
    guarded = results(scenario.guarded())
    assert denied(guarded["memmove"]) and "'ffi'" in guarded["memmove"], guarded
    assert denied(guarded["slot_wrapper"]) and "'ffi'" in guarded["slot_wrapper"], guarded
    granted = config.replace("evil = []", 'evil = ["ffi"]')
    (scenario.project / "pyproject.toml").write_text(granted)
    assert results(scenario.guarded())["memmove"] == "ok:ZZZZ"


CTYPES_DATA_CODE = '''
import sys
def run():
    import ctypes, _ctypes
    secret = b"secret-token"
    def read_through_a_char_pointer():
        return ctypes.c_char_p(id(secret) + bytes.__basicsize__ - 1).value
    def write_through_a_union():
        # no foreign call, no from_address: an integer and a pointer share the same bytes
        class U(ctypes.Union):
            _fields_ = [("address", ctypes.c_ssize_t), ("pointer", ctypes.POINTER(ctypes.c_ssize_t))]
        x = object(); before = sys.getrefcount(x)
        u = U(); u.address = id(x)                    # an object's first word is its reference count
        u.pointer.contents.value += 5
        after = sys.getrefcount(x); u.pointer.contents.value -= 5
        return after - before
    def through_dunder_new():
        p = ctypes.c_char_p.__new__(ctypes.c_char_p); p.__init__(id(secret) + bytes.__basicsize__ - 1)
        return p.value
    def through_object_new():
        return object.__new__(ctypes.c_char_p)
    def reference_count():
        x = object(); before = sys.getrefcount(x)
        _ctypes.Py_INCREF(x); _ctypes.Py_DECREF(x)
        return sys.getrefcount(x) - before
    attempt("char_pointer", read_through_a_char_pointer)
    attempt("union", write_through_a_union)
    attempt("dunder_new", through_dunder_new)
    attempt("object_new", through_object_new)
    attempt("refcount", reference_count)
    attempt("from_ptr", lambda: _ctypes.PyObj_FromPtr(id(secret)) is secret)
    report()
'''


@pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])
def test_ctypes_data_objects_and_raw_helpers_need_ffi(tmp_path, decision):
    """Route 8: ``import ctypes`` stays free, but a ctypes data object is raw memory: with no
    foreign call and no audit event, ``c_char_p(address).value`` reads any memory and a Union of
    an integer and a POINTER writes any. Making one needs ``ffi`` (native core: the instance
    maker of ``_ctypes``'s data bases is gated; the fallback cannot reach it). ``_ctypes``'s
    ``Py_INCREF``/``Py_DECREF`` (a freed object still in use) and ``PyObj_FromPtr`` need ``ffi``
    in both decisions. No false denial: the application's own ctypes objects, and a
    distribution granted ``ffi``."""
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\n'
    scenario = _scenario(tmp_path, CTYPES_DATA_CODE, config=config)
    plain = results(scenario.plain())
    assert plain["char_pointer"] == "ok:b'secret-token'" and plain["union"] == "ok:5", plain
    assert plain["dunder_new"] == "ok:b'secret-token'" and plain["refcount"] == "ok:0", plain
    assert plain["from_ptr"] == "ok:True" and "is not safe" in plain["object_new"], plain
    guarded = results(scenario.guarded(extra_env=decision))
    native = not decision
    for name in ("refcount", "from_ptr") + (("char_pointer", "union", "dunder_new") if native else ()):
        assert denied(guarded[name]) and "lacks 'ffi'" in guarded[name], (name, guarded)
    assert "is not safe" in guarded["object_new"], guarded
    if native:
        assert "a ctypes data object (c_char_p(...))" in guarded["char_pointer"], guarded
    else:   # the fallback cannot reach a type's slots: documented as open there
        assert guarded["char_pointer"] == "ok:b'secret-token'", guarded
    # no false denial: a distribution granted ffi
    (scenario.project / "pyproject.toml").write_text(config.replace("evil = []", 'evil = ["ffi"]'))
    granted = results(scenario.guarded(extra_env=decision))
    assert all(granted[name] == plain[name] for name in ("char_pointer", "union", "dunder_new", "from_ptr")), granted
    assert granted["refcount"].startswith("ok:"), granted   # the fallback's vault holds the arguments a while
    # ... and the application's own ctypes objects, made before and after capimport gated them
    app = ('import ctypes, sys\nbefore = ctypes.c_int(7)\nimport evil\n'
           'class Pair(ctypes.Structure):\n    _fields_ = [("a", ctypes.c_int), ("b", ctypes.c_double)]\n'
           'buf = ctypes.create_string_buffer(b"abc")\np = ctypes.pointer(ctypes.c_long(41)); p.contents.value += 1\n'
           'assert (before.value, Pair(1, 2.5).b, buf.value, p.contents.value) == (7, 2.5, b"abc", 42)\n'
           'print("app-ctypes-ok")\n')
    (scenario.project / "app.py").write_text(app)
    (scenario.project / "pyproject.toml").write_text(config)
    run = scenario.guarded(extra_env=decision)
    assert run.returncode == 0 and "app-ctypes-ok" in run.stdout and "capimport" not in run.stderr, run.stderr


PROCESS_STATE_CODE = '''
import os, signal, socket, syslog, threading, time, pwd, grp
def run():
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)   # registering a handler is free (route 4)
    attempt("pthread_kill", lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR2))
    attempt("raise_signal", lambda: signal.raise_signal(signal.SIGUSR2))
    attempt("clock_settime", lambda: time.clock_settime(time.CLOCK_REALTIME, time.clock_gettime(time.CLOCK_REALTIME)))
    attempt("sethostname", lambda: socket.sethostname(socket.gethostname()))
    attempt("syslog", lambda: syslog.syslog(syslog.LOG_DEBUG, "capimport test"))
    attempt("getpwall", lambda: len(pwd.getpwall()) > 0)
    attempt("getgrall", lambda: len(grp.getgrall()) > 0)
    attempt("getpwuid", lambda: pwd.getpwuid(os.getuid()).pw_uid == os.getuid())
    attempt("getgrgid", lambda: grp.getgrgid(os.getgid()).gr_gid == os.getgid())
    attempt("expanduser", lambda: os.path.expanduser("~") != "~")
    report()
'''


@pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])
def test_signals_to_this_process_the_clock_the_system_log_and_account_lists_need_grants(tmp_path, decision):
    """Routes 3 and 8's kin, found by an audit-hook sweep of the C modules: ``signal.pthread_kill``
    and ``socket.sethostname`` raise events that were decided by nobody; ``signal.raise_signal``
    and ``time.clock_settime`` raise none. A signal to this process needs ``process`` as
    ``os.kill(os.getpid())`` does; so do the system clock and host name (as root). ``syslog``
    sends to the system logger's socket: ``net``, as ``SysLogHandler`` does. ``pwd.getpwall``/
    ``grp.getgrall`` read the whole account files through NSS with no ``open`` event:
    ``fs-readonly`` on ``/etc/passwd``/``/etc/group``; one lookup by id stays free."""
    root = os.geteuid() == 0
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\n'
    scenario = _scenario(tmp_path, PROCESS_STATE_CODE, config=config)
    plain = results(scenario.plain())
    for name in ("pthread_kill", "raise_signal", "syslog"):
        assert plain[name] == "ok:None", plain
    assert all(plain[name] == "ok:True" for name in ("getpwall", "getgrall", "getpwuid", "getgrgid", "expanduser"))
    if root:   # the clock and the host name are set to what they are
        assert plain["clock_settime"] == "ok:None" and plain["sethostname"] == "ok:None", plain
    guarded = results(scenario.guarded(extra_env=decision))
    expect = {"pthread_kill": ("process", "signal.pthread_kill"), "raise_signal": ("process", "signal.raise_signal"),
              "clock_settime": ("process", "time.clock_settime"), "sethostname": ("process", "socket.sethostname"),
              "syslog": ("net", "syslog."), "getpwall": ("fs-readonly", "pwd.getpwall"),
              "getgrall": ("fs-readonly", "grp.getgrall")}
    for name, (capability, api) in expect.items():
        assert denied(guarded[name]) and f"lacks '{capability}'" in guarded[name] and api in guarded[name], \
            (name, guarded)
    for name in ("getpwuid", "getgrgid", "expanduser"):
        assert guarded[name] == "ok:True", guarded
    granted = config.replace("evil = []", 'evil = { process = true, net = true, fs-readonly = ["/etc/passwd", '
                                          '"/etc/group"] }')
    (scenario.project / "pyproject.toml").write_text(granted)
    assert results(scenario.guarded(extra_env=decision)) == plain


UMASK_CODE = '''
import os
def run():
    def tighten_and_restore():
        old = os.umask(0o077)
        try:
            return oct(os.umask(old))
        finally:
            pass
    attempt("tighten_restore", tighten_and_restore)
    attempt("same", lambda: oct(os.umask(os.umask(0o022))))   # setuptools' and distlib's read of it
    attempt("loosen", lambda: oct(os.umask(0)))
    attempt("int_subclass", lambda: oct(os.umask(True)))     # a bool is an int: mask 1
    report()
'''


@pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])
def test_loosening_the_umask_needs_process(tmp_path, decision):
    """Route 3: ``os.umask`` raises no event, and the mask holds for every file the process makes
    afterwards. ``os.umask(0)`` from a distribution granted nothing made the application's next
    secret file world-writable. Loosening the mask needs ``process`` (as the other process-wide
    settings do). A mask that keeps every bit of the one in force (tightening, setting it to
    what it is) or of the one the process started with (restoring after tightening) stays free,
    and so does the application."""
    secret = tmp_path / "secret.txt"
    app = ("import os, evil\nos.umask(0o022)\nevil.run()\n"
           f"open({str(secret)!r}, 'w').close()\nprint('mode', oct(os.stat({str(secret)!r}).st_mode & 0o777))\n")
    config = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = []\n'
    scenario = _scenario(tmp_path, UMASK_CODE, config=config, app=app)
    run = scenario.plain()
    plain = results(run)
    assert plain == {"tighten_restore": "ok:0o77", "same": "ok:0o22", "loosen": "ok:0o22",
                     "int_subclass": "ok:0o0"}, plain
    assert "mode 0o666" in run.stdout, run.stdout
    secret.unlink()
    run = scenario.guarded(extra_env=decision)
    guarded = results(run)
    assert guarded["tighten_restore"] == "ok:0o77" and guarded["same"] == "ok:0o22", guarded
    for name in ("loosen", "int_subclass"):
        assert denied(guarded[name]) and "lacks 'process'" in guarded[name] and "os.umask" in guarded[name], guarded
    assert "mode 0o644" in run.stdout, run.stdout   # the application's file as the application asked
    secret.unlink()
    (scenario.project / "pyproject.toml").write_text(config.replace("evil = []", 'evil = ["process"]'))
    assert results(scenario.guarded(extra_env=decision)) == plain
