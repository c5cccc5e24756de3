"""Real distributions from PyPI (requests, httpx, click, rich, jinja2) under enforcement: zero denials.

The venv is built once (``benchmarks/realvenv.py``) and reused; the test
skips cleanly when pip cannot reach an index. The manifests are capimport's
bundled, reviewed library: nothing is granted here beyond what they say.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import realvenv  # noqa: E402

WORKLOAD = r'''
import asyncio, http.server, io, json, logging, os, sys, tempfile, threading

import click, httpx, jinja2, requests
from rich.console import Console
from rich.table import Table

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_address[1]}"
logging.basicConfig(filename=sys.argv[1], level=logging.DEBUG)

results = {}
with requests.Session() as session:
    results["requests"] = session.get(base + "/requests", timeout=5).json()["path"]
results["httpx"] = httpx.get(base + "/httpx", timeout=5).json()["path"]
with httpx.Client() as client:
    results["httpx-client"] = client.get(base + "/client").json()["path"]

async def fetch():
    async with httpx.AsyncClient() as client:
        return (await client.get(base + "/async")).json()["path"]
results["httpx-async"] = asyncio.run(fetch())

def worker(out):
    out.append(requests.get(base + "/thread", timeout=5).status_code)
codes = []
threads = [threading.Thread(target=worker, args=(codes,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
results["threads"] = codes

templates = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), autoescape=True)
results["jinja2"] = env.get_template("hello.html").render(name="<world>")

buffer = io.StringIO()
console = Console(file=buffer, width=60, force_terminal=True, color_system="truecolor")
table = Table(title="acts")
table.add_column("package"); table.add_column("result")
for key, value in results.items():
    table.add_row(key, str(value))
console.print(table)
console.print_json(json.dumps(results))
try:
    {}["missing"]
except KeyError:
    console.print_exception()
results["rich"] = len(buffer.getvalue()) > 100

@click.command()
@click.option("--count", type=int, default=1)
@click.argument("name")
@click.pass_context
def cli(ctx, count, name):
    for _ in range(count):
        click.echo(f"hello {name}")
    ctx.obj = "done"
    return requests.get(base + "/click", timeout=5).json()["path"]

results["click"] = cli.main(["--count", "2", "you"], standalone_mode=False)
from click.testing import CliRunner
results["click-runner"] = CliRunner().invoke(cli, ["me"]).output
logging.getLogger("app").info("finished")
server.shutdown()
print("RESULTS " + json.dumps(results))
'''


@pytest.fixture(scope="session")
def real_python():
    try:
        return realvenv.ensure()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:  # no index reachable
        pytest.skip(f"cannot build the real-package venv: {exc}")


def test_real_packages_run_with_zero_denials(real_python, tmp_path):
    project = tmp_path / "proj"
    (project / "templates").mkdir(parents=True)
    (project / "templates" / "hello.html").write_text("<p>Hello {{ name }}!</p>")
    (project / "pyproject.toml").write_text(textwrap.dedent("""
        [project]
        name = "workload"
        version = "0"
        dependencies = ["requests", "httpx", "click", "rich", "jinja2"]

        [tool.capimport]
        mode = "enforce"
        """))
    (project / "app.py").write_text(WORKLOAD)
    log = tmp_path / "app.log"
    proc = subprocess.run([real_python, "-m", "capimport", "--log", str(tmp_path / "denials.jsonl"),
                           "app.py", str(log)], cwd=project, env=realvenv.env_for(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "capimport:" not in proc.stderr, proc.stderr
    assert not (tmp_path / "denials.jsonl").read_text().strip()
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULTS "))
    results = json.loads(line[8:])
    assert results["requests"] == "/requests" and results["httpx-async"] == "/async"
    assert results["threads"] == [200] * 4
    assert results["jinja2"] == "<p>Hello &lt;world&gt;!</p>"
    assert results["rich"] is True and results["click"] == "/click"
    assert "hello me" in results["click-runner"]
    assert "finished" in log.read_text()


def test_real_package_without_grant_is_denied(real_python, tmp_path):
    """The same venv with requests narrowed to nothing: the first socket is denied, with a message."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.capimport]
        mode = "enforce"
        [tool.capimport.packages]
        requests = ["fs-readonly", "env-readonly"]
        """))
    (project / "app.py").write_text("import requests\ntry:\n    requests.get('http://127.0.0.1:9/', timeout=2)\n"
                                    "except Exception as exc:\n    print('ERR', type(exc).__name__, exc)\n")
    proc = subprocess.run([real_python, "-m", "capimport", "app.py"], cwd=project, env=realvenv.env_for(),
                          capture_output=True, text=True, timeout=120)
    # urllib3 is the innermost actor; its own manifest declares net, but requests (its only
    # dependent here) no longer holds it, so unification cut it, and the message says so.
    assert "capimport: 'urllib3'" in proc.stderr and "lacks 'net' for socket.getaddrinfo('127.0.0.1', 9)" \
        in proc.stderr, proc.stderr
    assert "the packages that depend on it do not pass it on; see: capimport why urllib3 net" in proc.stderr
    assert "ERR ConnectionError" in proc.stdout
