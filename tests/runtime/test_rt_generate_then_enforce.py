"""The whole user path on real packages: `capimport generate`, then run under enforcement, zero denials.

A Flask application rendering templates from disk, PyYAML reading a file,
requests in a thread pool, a multiprocessing spawn pool, an asyncio
subprocess with httpx, and logging to a file the application configured.
Uses the real-package venv (``benchmarks/realvenv.py``) with flask and pyyaml
added; skipped when no package index is reachable.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import realvenv  # noqa: E402
from distbuilder import make_dist, write_config  # noqa: E402

APP = r'''
import asyncio, concurrent.futures, http.server, logging, multiprocessing, threading
import flask, httpx, requests, yaml

logging.basicConfig(filename="app.log", level=logging.INFO)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{srv.server_port}/"
app = flask.Flask(__name__)

@app.route("/hi/<name>")
def hi(name):
    logging.getLogger("app").info("hi %s", name)
    return flask.render_template("hi.html", name=name)

def square(x):
    return x * x

async def sub():
    proc = await asyncio.create_subprocess_exec("echo", "hi", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    async with httpx.AsyncClient() as client:
        return out.strip().decode(), (await client.get(url)).text

if __name__ == "__main__":
    with app.test_client() as client:
        print("flask", client.get("/hi/there").data.decode())
    print("yaml", yaml.safe_load(open("conf.yaml"))["b"])
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        print("threads", [r.text for r in pool.map(lambda _: requests.get(url, timeout=5), range(4))])
    with multiprocessing.get_context("spawn").Pool(2) as mp:
        print("spawn", mp.map(square, [1, 2, 3]))
    print("asyncio", asyncio.run(sub()))
    print("log", len(open("app.log").read().splitlines()))
'''


@pytest.fixture(scope="module")
def python():
    try:
        return realvenv.ensure_with(["flask", "pyyaml"], ["flask", "yaml"])
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"cannot build the real-package venv with flask and pyyaml: {exc}")


def _generate_then_run(python, project) -> subprocess.CompletedProcess:
    """``capimport generate`` in *project*, then ``python -m capimport app.py``: both succeed, no denial."""
    env = realvenv.env_for()
    generate = subprocess.run([python, "-c", "import sys; from capimport.cli import main; sys.exit(main())",
                               "generate"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert generate.returncode == 0, generate.stderr
    run = subprocess.run([python, "-m", "capimport", "app.py"], cwd=project, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not [line for line in run.stderr.splitlines() if line.startswith("capimport:")], run.stderr
    return run


def test_generate_then_enforce_a_real_application(python, tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "hi.html").write_text("<p>{{ name }}</p>")
    (tmp_path / "conf.yaml").write_text("a: 1\nb: [2, 3]\n")
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent('''
        [project]
        name = "webapp"
        version = "0"
        # httpx imports rich (its `cli` extra) whenever rich is installed, as it is in this venv:
        # the project asks for the extra, as capimport's message advises (see the test below).
        dependencies = ["flask", "pyyaml", "requests", "httpx[cli]"]

        [tool.capimport]
        mode = "enforce"
        default = []
        '''))
    run = _generate_then_run(python, tmp_path)
    assert (tmp_path / "manifests" / "flask.toml").exists() and (tmp_path / "manifests" / "requests.toml").exists()
    lines = run.stdout.splitlines()
    assert lines == ["flask <p>there</p>", "yaml [2, 3]", "threads ['ok', 'ok', 'ok', 'ok']", "spawn [1, 4, 9]",
                     "asyncio ('hi', 'ok')", "log 2"], run.stdout


def test_an_unreachable_optional_dependency_is_denied_with_the_way_out(tmp_path):
    """No network: a client importing its optional dependency, which the project does not ask for."""
    site = tmp_path / "site"
    make_dist(site, "client", requires=['fancy; extra == "cli"'], extras=["cli"],
              files={"client/__init__.py": "try:\n    import fancy\nexcept ImportError:\n    fancy = None\n"})
    make_dist(site, "fancy", files={"fancy/__init__.py": "import os\nCWD = os.getcwd()\n"})
    project = tmp_path / "project"
    write_config(project, """
        [project]
        dependencies = ["client"]
        [tool.capimport]
        mode = "enforce"
        [tool.capimport.packages]
        client = ["fs-readonly"]   # a dependency never gets more than the packages that pull it in
        fancy = ["fs-readonly"]
        """)
    (project / "app.py").write_text("import client\nprint('imported')\n")
    env = dict(realvenv.env_for([str(site)]))
    proc = subprocess.run([sys.executable, "-m", "capimport", "app.py"], cwd=project, env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert ("'fancy' 1.0 lacks 'fs-readonly' for os.getcwd() at fancy/__init__.py:2 (called from app.py:1); "
            "it is installed but the application does not depend on it, so it holds nothing; "
            "it is an optional dependency of client[cli]") in proc.stderr, proc.stderr
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text().replace(
        'dependencies = ["client"]', 'dependencies = ["client[cli]"]'))
    proc = subprocess.run([sys.executable, "-m", "capimport", "app.py"], cwd=project, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "imported\n", proc.stderr


SQLITE_APP = r'''
import os
from sqlalchemy import Integer, String, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

class Base(DeclarativeBase):
    pass

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(30))

for url in ("sqlite://", "sqlite:///" + os.path.abspath(os.path.join("data", "app.db"))):
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([User(name=f"u{i}") for i in range(100)])
        session.commit()
        found = len(session.scalars(select(User).where(User.name.like("u1%"))).all())
    with engine.connect() as connection:
        connection.execute(text("ATTACH DATABASE :path AS aux"), {"path": os.path.abspath("data/aux.db")})
        attached = "aux" in connection.execute(text("SELECT name FROM pragma_database_list")).scalars().all()
    print(url.split(":")[0], found, attached)
'''


def test_generate_then_enforce_sqlalchemy_on_sqlite(tmp_path):
    """Every sqlite connection carries capimport's authorizer (route 3): an ORM workload, with
    ATTACH inside the application's data folder, still runs with zero denials."""
    try:
        python = realvenv.ensure_with(["sqlalchemy"], ["sqlalchemy"])
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"cannot build the real-package venv with sqlalchemy: {exc}")
    (tmp_path / "data").mkdir()
    (tmp_path / "app.py").write_text(SQLITE_APP)
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent('''
        [project]
        name = "dbapp"
        version = "0"
        dependencies = ["sqlalchemy"]

        [tool.capimport]
        mode = "enforce"
        default = []
        '''))
    run = _generate_then_run(python, tmp_path)
    assert run.stdout.splitlines() == ["sqlite 11 True", "sqlite 11 True"], run.stdout
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["app.db", "aux.db"]
