"""Route 3, SQLite: SQL text that creates files (ATTACH, VACUUM INTO), and database names that
are URIs. Each attack first succeeds under plain Python, then has no effect under capimport."""

from __future__ import annotations

import os
import sqlite3
import sys

from sechelp import ATTEMPT, Scenario, denied, ok, results

ATTACKS = '''
import os, sqlite3
MARKS = {marks!r}
def mark(name):
    return os.path.join(MARKS, name)
def run_sql(connection, sql):
    connection.execute(sql)
    return "ran"
def run():
    memory = sqlite3.connect(":memory:")
    memory.execute("CREATE TABLE t (x)")
    attempt("attach", lambda: run_sql(memory, "ATTACH '%s' AS a" % mark("attach.db")))
    attempt("attach_uri", lambda: run_sql(memory, "ATTACH 'file:%s?mode=rwc' AS b" % mark("attach_uri.db")))
    attempt("vacuum_into", lambda: run_sql(memory, "VACUUM INTO '%s'" % mark("vacuum.db")))
    attempt("script", lambda: memory.executescript("ATTACH '%s' AS c;" % mark("script.db")) and "ran")
    def removed(how):
        connection = sqlite3.connect(":memory:")
        if how == "bound":
            connection.set_authorizer(None)
        elif how == "unbound":
            sqlite3.Connection.set_authorizer(connection, None)
        elif how == "keyword":
            connection.set_authorizer(authorizer_callback=lambda *a: sqlite3.SQLITE_OK)
        return run_sql(connection, "ATTACH '%s' AS d" % mark(how + ".db"))
    for how in ("bound", "unbound", "keyword"):
        attempt("removed_" + how, lambda: removed(how))
    def direct():
        return run_sql(sqlite3.Connection(":memory:"), "ATTACH '%s' AS e" % mark("direct.db"))
    attempt("direct", direct)
    class Quiet(sqlite3.Connection):
        def set_authorizer(self, callback):
            pass
    attempt("subclass", lambda: run_sql(sqlite3.connect(":memory:", factory=Quiet), "ATTACH '%s' AS f" % mark("subclass.db")))
    def reinit():
        connection = sqlite3.connect(":memory:")
        connection.__init__(":memory:")
        return run_sql(connection, "ATTACH '%s' AS g" % mark("reinit.db"))
    attempt("reinit", reinit)
    report()
'''

#: The attacks that leave a file behind when they succeed (removed_keyword sets a permissive callback).
FILES = ["attach.db", "attach_uri.db", "vacuum.db", "script.db", "bound.db", "unbound.db", "keyword.db",
         "direct.db", "subclass.db", "reinit.db"]

#: CPython 3.9's sqlite3.Connection is a static type: capimport cannot reach its init slot.
STATIC_CONNECTION_TYPE = sys.version_info < (3, 10)

CONFIG = '[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\nevil = ["fs-readonly"]\n'


def _scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n"):
    marks = tmp_path / "marks"
    marks.mkdir()
    code = ATTACKS.format(marks=str(marks))
    scenario = Scenario(tmp_path, config=config, app=app,
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    return scenario, marks


def _none_removes_an_authorizer() -> bool:
    """CPython 3.9 stores ``set_authorizer(None)`` as the callback, which then denies everything."""
    connection = sqlite3.connect(":memory:")
    connection.set_authorizer(lambda *args: sqlite3.SQLITE_DENY)
    connection.set_authorizer(None)
    try:
        connection.execute("SELECT 1")
    except sqlite3.DatabaseError:
        return False
    return True


def _clear(marks):
    for entry in os.listdir(marks):
        os.remove(marks / entry)


def test_attach_and_vacuum_into_need_fs_on_the_file(tmp_path):
    """ATTACH and VACUUM INTO on a :memory: connection, and every way to drop the authorizer."""
    scenario, marks = _scenario(tmp_path)
    plain = results(scenario.plain())
    expected = FILES if _none_removes_an_authorizer() else [f for f in FILES if f not in ("bound.db", "unbound.db")]
    assert sorted(os.listdir(marks)) == sorted(expected), plain
    _clear(marks)
    proc = scenario.guarded()
    guarded = results(proc)
    if STATIC_CONNECTION_TYPE:   # CPython 3.9: the pure-Python fallback (next test)
        assert os.listdir(marks) == ["direct.db"] and guarded.pop("direct") == "ok:ran", guarded
    else:
        assert os.listdir(marks) == [], (guarded, proc.stderr[-2000:])
    assert all(value.startswith("denied:") for value in guarded.values()), guarded
    assert "lacks 'fs'" in proc.stderr and "ATTACH or VACUUM INTO" in proc.stderr, proc.stderr[-2000:]


def test_without_the_c_accelerator_only_direct_construction_stays_open(tmp_path):
    """The pure-Python fallback (also CPython 3.9): sqlite3.Connection(...) called directly is open."""
    scenario, marks = _scenario(tmp_path)
    proc = scenario.guarded(extra_env={"CAPIMPORT_PURE_PYTHON": "1"})
    guarded = results(proc)
    assert os.listdir(marks) == ["direct.db"], (guarded, proc.stderr[-2000:])
    assert guarded.pop("direct") == "ok:ran"
    assert all(value.startswith("denied:") for value in guarded.values()), guarded


def test_attach_still_works_where_the_grant_covers_it(tmp_path):
    """No false denial: with fs on the folder every statement runs, and a program's own
    authorizer still sees every action (it runs after capimport's)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f'''
import os, sqlite3
MARKS = {str(marks)!r}
def run():
    connection = sqlite3.connect(os.path.join(MARKS, "main.db"))
    seen = []
    connection.set_authorizer(lambda action, *rest: seen.append(action) or sqlite3.SQLITE_OK)
    connection.execute("CREATE TABLE t (x)")
    connection.execute("INSERT INTO t VALUES (1)")
    connection.commit()
    attempt("attach", lambda: connection.execute("ATTACH '%s' AS a" % os.path.join(MARKS, "a.db")) and "ran")
    attempt("vacuum_into", lambda: connection.execute("VACUUM INTO '%s'" % os.path.join(MARKS, "v.db")) and "ran")
    attempt("memory", lambda: connection.execute("ATTACH ':memory:' AS m") and "ran")
    attempt("seen_attach", lambda: sqlite3.SQLITE_ATTACH in seen)
    connection.set_authorizer(None)
    attempt("after_none", lambda: connection.execute("SELECT x FROM t").fetchall())
    report()
'''
    config = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
              f'evil = {{ fs-readonly = true, fs = ["{marks}"] }}\n')
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    proc = scenario.guarded()
    assert results(proc) == {"attach": "ok:ran", "vacuum_into": "ok:ran", "memory": "ok:ran",
                             "seen_attach": "ok:True", "after_none": "ok:[(1,)]"}, proc.stderr[-2000:]
    assert sorted(os.listdir(marks)) == ["a.db", "main.db", "v.db"]


def test_attach_of_a_file_named_by_a_bound_parameter_needs_unscoped_fs(tmp_path):
    """``ATTACH ? AS x``: SQLite's authorizer sees no file name (the value is bound when the
    statement runs), so the act needs ``fs`` on every file. A scoped grant is denied even for a
    file inside its scope; the application (which holds all of ``fs``) and a literal name inside
    the scope still work. ``VACUUM INTO ?`` is authorized when it runs, with its real name."""
    marks = tmp_path / "marks"
    marks.mkdir()
    outside = tmp_path / "outside.db"
    code = f'''
import os, sqlite3
MARKS = {str(marks)!r}
OUTSIDE = {str(outside)!r}
def run():
    connection = sqlite3.connect(":memory:")
    attempt("bound", lambda: connection.execute("ATTACH ? AS a", (os.path.join(MARKS, "bound.db"),)) and "ran")
    attempt("vacuum_bound", lambda: connection.execute("VACUUM INTO ?", (os.path.join(MARKS, "vacuum.db"),)) and "ran")
    attempt("vacuum_outside", lambda: connection.execute("VACUUM INTO ?", (OUTSIDE,)) and "ran")
    attempt("concatenated", lambda: connection.execute("ATTACH ? || '.db' AS c", (os.path.join(MARKS, "concat"),)) and "ran")
    attempt("literal", lambda: connection.execute("ATTACH '%s' AS d" % os.path.join(MARKS, "literal.db")) and "ran")
    report()
'''
    app = f'''
import os, sqlite3, evil
evil.run()
sqlite3.connect(":memory:").execute("ATTACH ? AS a", (os.path.join({str(marks)!r}, "app.db"),))
print("APP DONE")
'''
    config = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
              f'evil = {{ fs-readonly = true, fs = ["{marks}"] }}\n')
    scenario = Scenario(tmp_path, config=config, app=app,
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    plain = results(scenario.plain())
    assert sorted(os.listdir(marks)) == ["app.db", "bound.db", "concat.db", "literal.db", "vacuum.db"], plain
    assert outside.exists()
    for entry in os.listdir(marks):
        os.remove(marks / entry)
    outside.unlink()
    proc = scenario.guarded()
    guarded = results(proc)
    assert all(guarded[name].startswith("denied:DatabaseError") for name in ("bound", "concatenated", "vacuum_outside")), guarded
    assert guarded["literal"] == guarded["vacuum_bound"] == "ok:ran", (guarded, proc.stderr[-2000:])
    assert "APP DONE" in proc.stdout, proc.stderr[-2000:]
    assert sorted(os.listdir(marks)) == ["app.db", "literal.db", "vacuum.db"] and not outside.exists()
    assert "a file named by an expression" in proc.stderr, proc.stderr[-2000:]


def test_uri_database_names_are_decoded_as_sqlite_decodes_them(tmp_path):
    """``file:`` names are URIs: ``%2f`` is ``/``, so ``allowed/..%2fx.db`` is outside ``allowed``;
    a ``?mode=memory`` inside the ``#fragment`` is no query."""
    marks = tmp_path / "marks"
    allowed = marks / "allowed"
    code = f'''
import os, sqlite3, pathlib
ALLOWED = {str(allowed)!r}
def run():
    attempt("percent", lambda: sqlite3.connect("file:" + ALLOWED + "/..%2fpercent.db?mode=rwc", uri=True).execute("CREATE TABLE t (x)") and "ran")
    attempt("localhost", lambda: sqlite3.connect("file://localhost" + ALLOWED + "/../localhost.db", uri=True).execute("CREATE TABLE t (x)") and "ran")
    attempt("fragment", lambda: sqlite3.connect("file:" + ALLOWED + "/../fragment.db#?mode=memory", uri=True).execute("CREATE TABLE t (x)") and "ran")
    attempt("inside", lambda: sqlite3.connect("file:" + ALLOWED + "/in%20side.db?mode=rwc", uri=True).execute("CREATE TABLE t (x)") and "ran")
    attempt("memory_uri", lambda: sqlite3.connect("file::memory:?cache=shared", uri=True).execute("CREATE TABLE t (x)") and "ran")
    report()
'''
    marks.mkdir()
    allowed.mkdir()
    config = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
              f'evil = {{ fs-readonly = true, fs = ["{allowed}"] }}\n')
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    plain = results(scenario.plain())
    assert sorted(os.listdir(marks)) == ["allowed", "fragment.db", "localhost.db", "percent.db"], plain
    for name in ("fragment.db", "localhost.db", "percent.db"):
        os.remove(marks / name)
    os.remove(allowed / "in side.db")
    guarded = results(scenario.guarded())
    assert sorted(os.listdir(marks)) == ["allowed"], guarded
    assert denied(guarded["percent"]) and denied(guarded["localhost"]) and denied(guarded["fragment"]), guarded
    assert guarded["inside"] == guarded["memory_uri"] == "ok:ran", guarded
    assert os.listdir(allowed) == ["in side.db"]


def test_loading_a_sqlite_extension_needs_ffi(tmp_path):
    """``enable_load_extension`` lets SQL load a shared library into the process: ffi.

    Where this Python's sqlite3 is built without loadable extensions (pyenv's),
    the same audit event is raised the way the C code raises it.
    """
    code = '''
import sqlite3, sys
def run():
    connection = sqlite3.connect(":memory:")
    if hasattr(connection, "enable_load_extension"):
        attempt("enable", lambda: connection.enable_load_extension(True))
        attempt("load", lambda: sys.audit("sqlite3.load_extension", connection, "/nonexistent.so"))
    else:
        attempt("enable", lambda: sys.audit("sqlite3.enable_load_extension", connection, True))
        attempt("load", lambda: sys.audit("sqlite3.load_extension", connection, "/nonexistent.so"))
    report()
'''
    scenario = Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    assert results(scenario.plain()) == {"enable": "ok:None", "load": "ok:None"}
    guarded = results(scenario.guarded())
    assert all(denied(value) and "'ffi'" in value for value in guarded.values()), guarded


def test_the_folder_pragmas_need_fs_on_the_folder(tmp_path):
    """``PRAGMA temp_store_directory`` / ``data_store_directory`` name a folder SQLite creates
    files in: ``fs`` on that folder, whatever the name's case; reading them needs nothing."""
    marks = tmp_path / "marks"
    (marks / "ok").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    code = f'''
import sqlite3
OK, OUTSIDE = {str(marks / "ok")!r}, {str(outside)!r}
def run():
    connection = sqlite3.connect(":memory:")
    def pragma(name, value):
        connection.execute("PRAGMA %s = '%s'" % (name, value))
        return connection.execute("PRAGMA temp_store_directory").fetchall()
    attempt("temp_outside", pragma, "temp_store_directory", OUTSIDE)
    attempt("temp_upper", pragma, "TEMP_STORE_DIRECTORY", OUTSIDE)
    attempt("data_outside", pragma, "data_store_directory", OUTSIDE)
    attempt("temp_inside", pragma, "temp_store_directory", OK)
    attempt("read", lambda: connection.execute("PRAGMA temp_store_directory").fetchall())
    report()
'''
    config = ('[tool.capimport]\nmode = "enforce"\n[tool.capimport.packages]\n'
              f'evil = {{ fs-readonly = true, fs = ["{marks}"] }}\n')
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    plain = results(scenario.plain())
    assert plain["temp_outside"] == f"ok:[({str(outside)!r},)]" and ok(plain["data_outside"]), plain
    for decision in ({}, {"CAPIMPORT_PURE_PYTHON": "1"}):
        proc = scenario.guarded(extra_env=decision)
        guarded = results(proc)
        for attack in ("temp_outside", "temp_upper", "data_outside"):
            assert guarded[attack] == "denied:DatabaseError:not authorized", (decision, attack, guarded)
        assert guarded["temp_inside"] == guarded["read"] == f"ok:[({str(marks / 'ok')!r},)]", (decision, guarded)
        assert f"lacks 'fs' for {outside} in PRAGMA temp_store_directory = " in proc.stderr, proc.stderr[-2000:]


def test_rebinding_the_enforcer_leaves_the_authorizer_deciding(tmp_path):
    """With the native core the authorizer is the core's C object: a distribution that walks from
    the sealed ``Connection.__init__``'s globals to the enforcer and rebinds its ``decide``
    changes nothing. (The pure-Python fallback's decision is Python: route 7 stays open there,
    ``docs/threat-model.md``.)"""
    marks = tmp_path / "marks"
    marks.mkdir()
    code = f'''
import os, sqlite3, types
MARKS = {str(marks)!r}
def enforcers():
    seen, stack, found = set(), [sqlite3.Connection.__init__], []
    while stack and len(seen) < 50000:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if type(item).__name__ == "Enforcer":
            found.append(item)
        elif isinstance(item, types.FunctionType):
            stack.extend(cell.cell_contents for cell in item.__closure__ or ())
            stack.append(item.__globals__)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, types.ModuleType):
            stack.append(vars(item))
        elif isinstance(item, types.MethodType):
            stack.extend((item.__self__, item.__func__))
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.append(vars(item))
    return found
def run():
    def rebind():
        for enforcer in enforcers():
            enforcer.decide = enforcer._decide_in_core = lambda *args, **kwargs: None
        return "rebound"
    attempt("rebind", rebind)
    connection = sqlite3.connect(":memory:")
    attempt("attach", lambda: connection.execute("ATTACH '%s' AS a" % os.path.join(MARKS, "a.db")) and "ran")
    report()
'''
    scenario = Scenario(tmp_path, config=CONFIG, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": ATTEMPT + code}}})
    plain = results(scenario.plain())
    assert plain == {"rebind": "ok:rebound", "attach": "ok:ran"} and os.listdir(marks) == ["a.db"], plain
    _clear(marks)
    proc = scenario.guarded()
    guarded = results(proc)
    assert guarded == {"rebind": "ok:rebound", "attach": "denied:DatabaseError:not authorized"}, proc.stderr[-2000:]
    assert os.listdir(marks) == [] and "lacks 'fs' for ATTACH or VACUUM INTO" in proc.stderr, proc.stderr[-2000:]
