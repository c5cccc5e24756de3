"""Route 3: reads and writes through a descriptor another party opened.

``os.read``, ``os.write`` and their kin raise no audit event, and a descriptor is a small
number anyone can name: a distribution granted nothing walks ``3..255`` with ``os.fstat`` and
finds the application's open files and connected sockets. Each call is decided as the open it
rides on (``capimport/guards/descriptors.py``, the core's ``fd`` gates): a regular file's
descriptor as ``fs``/``fs-readonly`` on that file, a connected socket as ``net`` on its peer.
Pipes, terminals, socket pairs and anonymous memory stay free.

Every attack runs without capimport first (it must work), then under it in both decisions.
"""

from __future__ import annotations

import pytest
from sechelp import ATTEMPT, Scenario, denied, ok, results

DECISIONS = pytest.mark.parametrize("decision", [{}, {"CAPIMPORT_PURE_PYTHON": "1"}], ids=["native", "pure"])

#: The application: a log open for appending, a secret open for reading, a connected TCP
#: socket to a server of its own (which records what arrives), then the distribution runs.
APP = '''
import os, socket, sys, threading
log = open({log!r}, "a")
secret = open({secret!r})
server = socket.create_server(("127.0.0.1", 0))
received = []
def serve():
    peer, _ = server.accept()
    while True:
        data = peer.recv(100)
        if not data:
            break
        received.append(data)
thread = threading.Thread(target=serve)
thread.start()
client = socket.create_connection(server.getsockname())
import evil
evil.run()
client.close()
thread.join()
log.close()
print("RECEIVED", b"".join(received))
'''

#: The distribution: every descriptor it did not open, by kind.
ATTACK = ATTEMPT + '''
import os, stat
def run():
    secrets, logs, sockets = [], [], []
    for fd in range(3, 256):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            (secrets if st.st_size else logs).append(fd)   # the secret has text, the log none yet
        elif stat.S_ISSOCK(st.st_mode):
            sockets.append(fd)
    attempt("read", lambda: [os.pread(fd, 100, 0) for fd in secrets])
    attempt("readv", lambda: [os.readv(fd, [bytearray(100)]) for fd in secrets])
    attempt("write", lambda: [os.write(fd, b"EVIL LINE\\n") for fd in logs])
    attempt("writev", lambda: [os.writev(fd, [b"EVIL", b" LINE\\n"]) for fd in logs])
    def each(call, fds):   # the listening socket refuses a write: the connected ones take it
        done = []
        for fd in fds:
            try:
                done.append(call(fd))
            except PermissionError:
                raise
            except OSError:
                pass
        return done
    attempt("send", lambda: each(lambda fd: os.write(fd, b"EXFIL"), sockets))
    attempt("sendfile", lambda: each(lambda fd: os.sendfile(fd, secrets[0], 0, 6), sockets))
    report()
'''


def _scenario(tmp_path, grants="[]"):
    log, secret = tmp_path / "app.log", tmp_path / "secret.txt"
    log.write_text("")
    secret.write_text("s3cret\n")
    config = f'[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = {grants}\n'
    scenario = Scenario(tmp_path, config=config, app=APP.format(log=str(log), secret=str(secret)),
                        dists={"evil": {"files": {"evil/__init__.py": ATTACK}}})
    return scenario, log


@DECISIONS
def test_a_distribution_reads_and_writes_no_descriptor_the_application_opened(tmp_path, decision):
    scenario, log = _scenario(tmp_path)
    plain = scenario.plain()
    before = results(plain)
    assert all(ok(value) and value != "ok:[]" for value in before.values()), plain.stdout + plain.stderr[-2000:]
    assert "s3cret" in before["read"], before
    assert "EVIL LINE" in log.read_text() and "EXFIL" in plain.stdout, plain.stdout
    log.write_text("")
    guarded = scenario.guarded(extra_env=decision)
    after = results(guarded)
    for name in ("read", "readv", "write", "send", "sendfile"):
        assert denied(after[name]), (name, after, guarded.stderr[-2000:])
    assert log.read_text() == "" and "EXFIL" not in guarded.stdout, guarded.stdout
    assert "'evil' 1.0 lacks 'fs-readonly'" in guarded.stderr and "lacks 'net'" in guarded.stderr, guarded.stderr


#: No false denial: a distribution's own descriptors (a file it was granted, a pipe, a socket
#: pair, anonymous memory) and the application's own reads and writes.
OWN = ATTEMPT + '''
import os, socket, subprocess, sys
def run(folder):
    path = os.path.join(folder, "own.bin")
    def own_file():
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.write(fd, b"mine")
        data = os.pread(fd, 4, 0)
        os.close(fd)
        return data
    def pipe():
        r, w = os.pipe()
        os.write(w, b"ping")
        data = os.read(r, 4)
        os.close(r), os.close(w)
        return data
    def pair():
        a, b = socket.socketpair()
        os.write(a.fileno(), b"pong")
        data = os.read(b.fileno(), 4)
        a.close(), b.close()
        return data
    def memfd():
        fd = os.memfd_create("scratch")
        os.write(fd, b"anon")
        data = os.pread(fd, 4, 0)
        os.close(fd)
        return data
    def child():
        return subprocess.run([sys.executable, "-c", "print(input())"], input=b"child", capture_output=True).stdout
    attempt("own_file", own_file)
    attempt("pipe", pipe)
    attempt("pair", pair)
    attempt("memfd", memfd)
    attempt("child", child)
    report()
'''


@DECISIONS
def test_a_distributions_own_descriptors_and_the_applications_are_not_denied(tmp_path, decision):
    folder = tmp_path / "own"
    folder.mkdir()
    config = ('[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\n'
              f'mine = {{ fs = ["{folder}/*"], process = true }}\n')
    app = (f"import os, mine\nfd = os.open({str(tmp_path / 'app.bin')!r}, os.O_RDWR | os.O_CREAT)\n"
           f"os.write(fd, b'app'); assert os.pread(fd, 3, 0) == b'app'\nmine.run({str(folder)!r})\n")
    scenario = Scenario(tmp_path, config=config, app=app, dists={"mine": {"files": {"mine/__init__.py": OWN}}})
    guarded = scenario.guarded(extra_env=decision)
    outcome = results(guarded)
    assert outcome == {"own_file": "ok:b'mine'", "pipe": "ok:b'ping'", "pair": "ok:b'pong'", "memfd": "ok:b'anon'",
                       "child": "ok:b'child\\n'"}, (outcome, guarded.stderr[-2000:])
    assert "lacks" not in guarded.stderr, guarded.stderr[-2000:]


def test_a_descriptor_that_is_no_int_is_refused_before_the_decision(tmp_path):
    """A call with no descriptor at all fails as the original fails.
    ``os.write`` converts its descriptor with ``__index__``: an object whose ``__index__``
    answers differently the second time would be decided on one descriptor and write another."""
    code = ATTEMPT + '''
import os
class Shifty:
    def __index__(self):
        return 1
def run():
    attempt("write", os.write, Shifty(), b"")
    attempt("no_descriptor", os.write)
    attempt("sendfile_no_descriptor", lambda: os.sendfile(count=1))
    report()
'''
    config = '[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = []\n'
    scenario = Scenario(tmp_path, config=config, app="import evil\nevil.run()\n",
                        dists={"evil": {"files": {"evil/__init__.py": code}}})
    plain = results(scenario.plain())
    assert ok(plain["write"]), plain
    for decision in ({}, {"CAPIMPORT_PURE_PYTHON": "1"}):
        guarded = results(scenario.guarded(extra_env=decision))
        assert guarded["write"].startswith("denied:TypeError") and "file descriptor" in guarded["write"], guarded
        # no descriptor at all: the original's own TypeError, as without capimport
        assert guarded["no_descriptor"] == plain["no_descriptor"], (guarded, plain)
        assert guarded["sendfile_no_descriptor"] == plain["sendfile_no_descriptor"], (guarded, plain)
