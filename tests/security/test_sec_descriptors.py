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

import json
import subprocess
import sys

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
client.shutdown(socket.SHUT_RDWR)   # the end of the connection, whatever copies of it are left open
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
    # a socket object made from the descriptor: its methods raise no event (each on a copy of
    # the descriptor, so that closing the object leaves the application's socket open)
    import socket, _socket
    def on_copy(make):
        def call(fd):
            copy = os.dup(fd)
            try:
                sock = make(copy)
            except BaseException:
                os.close(copy)   # a refused socket object leaves its descriptor open
                raise
            try:
                return sock.send(b"SOCKOBJ")
            finally:
                sock.close()
        return call
    attempt("socket_object", lambda: each(on_copy(lambda fd: socket.socket(fileno=fd)), sockets))
    attempt("fromfd", lambda: each(on_copy(lambda fd: socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)),
                                   sockets))
    attempt("raw_socket_object", lambda: each(on_copy(lambda fd: _socket.socket(fileno=fd)), sockets))
    def reinit(fd):
        sock = _socket.socket()
        sock.close()
        _socket.socket.__init__(sock, fileno=fd)
        return sock
    attempt("reinit", lambda: each(on_copy(reinit), sockets))
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
    assert plain.stdout.count("SOCKOBJ") == 4, plain.stdout
    log.write_text("")
    guarded = scenario.guarded(extra_env=decision)
    after = results(guarded)
    for name in ("read", "readv", "write", "send", "sendfile", "socket_object", "fromfd", "raw_socket_object",
                 "reinit"):
        assert denied(after[name]), (name, after, guarded.stderr[-2000:])
    assert log.read_text() == "" and "EXFIL" not in guarded.stdout and "SOCKOBJ" not in guarded.stdout, guarded.stdout
    assert "'evil' 1.0 lacks 'fs-readonly'" in guarded.stderr and "lacks 'net'" in guarded.stderr, guarded.stderr


@DECISIONS
def test_a_socket_object_made_from_a_descriptor_is_decided_by_its_peer(tmp_path, decision):
    """``net`` scoped to other peers does not cover a socket object made from the descriptor of
    the application's connection; ``net`` that covers the peer does (no false denial)."""
    scenario, _ = _scenario(tmp_path, grants='{ net = ["127.0.0.1:1"] }')
    guarded = scenario.guarded(extra_env=decision)
    after = results(guarded)
    for name in ("socket_object", "fromfd", "reinit") + (() if decision else ("raw_socket_object",)):
        assert denied(after[name]), (name, after, guarded.stderr[-2000:])
    if decision:   # the fallback cannot reach the type's slot: test_sec_known_gaps.py
        assert ok(after["raw_socket_object"]) and guarded.stdout.count("SOCKOBJ") == 1, guarded.stdout
    else:
        assert "SOCKOBJ" not in guarded.stdout, guarded.stdout
    assert "lacks 'net'" in guarded.stderr, guarded.stderr
    (tmp_path / "granted").mkdir()
    scenario, _ = _scenario(tmp_path / "granted", grants='{ net = ["127.0.0.1:*"] }')
    guarded = scenario.guarded(extra_env=decision)
    after = results(guarded)
    for name in ("socket_object", "fromfd", "raw_socket_object", "reinit"):
        assert ok(after[name]) and after[name] != "ok:[]", (name, after, guarded.stderr[-2000:])
    assert guarded.stdout.count("SOCKOBJ") == 4 and denied(after["read"]), (after, guarded.stdout)


SERVER_APP = '''
import socket, threading, evil
server = socket.create_server(("127.0.0.1", 0))
def client():
    with socket.create_connection(server.getsockname()) as sock:
        sock.sendall(b"hello")
thread = threading.Thread(target=client)
thread.start()
print(evil.serve(server))
thread.join()
'''

SERVER = '''
def serve(server):
    conn, address = server.accept()   # socket(..., fileno=the accepted descriptor): a client's peer
    with conn:
        return conn.recv(5).decode()
'''


@DECISIONS
def test_a_server_accepts_connections_from_any_peer(tmp_path, decision):
    """No false denial: ``socket.accept`` makes its socket object from the descriptor it just
    accepted, whose peer is whichever client connected; a server distribution's ``net`` is
    scoped to where it listens, not to its clients. That descriptor is free, once."""
    config = ('[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\n'
              'evil = { net = ["127.0.0.1:1"] }\n')
    scenario = Scenario(tmp_path, config=config, app=SERVER_APP, dists={"evil": {"files": {"evil/__init__.py": SERVER}}})
    guarded = scenario.guarded(extra_env=decision)
    assert guarded.returncode == 0 and guarded.stdout.strip() == "hello", guarded.stderr[-2000:]


#: The application listens (a TCP server with one client waiting in its backlog) and owns a
#: bound UDP socket with one datagram queued; the distribution is handed only the numbers.
LISTENING_APP = '''
import socket, evil
server = socket.create_server(("127.0.0.1", 0))
waiting = socket.create_connection(server.getsockname())
waiting.sendall(b"hello")
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.sendto(b"datagram", udp.getsockname())
evil.run(server.fileno(), udp.fileno())
'''

LISTENING = ATTEMPT + '''
import os, socket
def run(listening, bound):
    def accept():
        sock = socket.socket(fileno=os.dup(listening))
        sock.settimeout(5)
        conn, _ = sock.accept()
        with conn:
            return conn.recv(5).decode()
    attempt("accept", accept)
    attempt("fromfd_accept", lambda: socket.fromfd(listening, socket.AF_INET, socket.SOCK_STREAM).getsockname()[0])
    attempt("recv_datagram", lambda: os.read(bound, 100).decode())
    report()
'''


@DECISIONS
def test_a_distribution_serves_on_no_socket_the_application_listens_on(tmp_path, decision):
    """A bound socket with no peer (a listening server, a UDP socket) is decided as ``net`` on the
    address it is bound to, as ``socket.bind`` is: a distribution whose ``net`` is scoped
    elsewhere accepts none of the application's clients and reads none of its datagrams through
    the descriptor; ``net`` that covers the address allows it (no false denial)."""
    def scenario(root, grants):
        root.mkdir()
        config = f'[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = {grants}\n'
        return Scenario(root, config=config, app=LISTENING_APP,
                        dists={"evil": {"files": {"evil/__init__.py": LISTENING}}})
    plain = results(scenario(tmp_path / "plain", "[]").plain())
    assert plain == {"accept": "ok:hello", "fromfd_accept": "ok:127.0.0.1", "recv_datagram": "ok:datagram"}, plain
    guarded = scenario(tmp_path / "elsewhere", '{ net = ["127.0.0.1:1"] }').guarded(extra_env=decision)
    after = results(guarded)
    assert all(denied(value) for value in after.values()) and len(after) == 3, (after, guarded.stderr[-2000:])
    assert "lacks 'net'" in guarded.stderr, guarded.stderr
    granted = results(scenario(tmp_path / "granted", '{ net = ["127.0.0.1:*"] }').guarded(extra_env=decision))
    assert granted == plain, granted


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


#: The application again: a secret open for reading, a data file open for reading and writing,
#: a log open for appending, and a terminal (a pseudo-terminal it reads back from).
APP_THROUGH = '''
import os, sys
secret = open({secret!r})
data = open({data!r}, "r+")
log = open({log!r}, "a")
master, terminal = os.openpty()
os.set_blocking(master, False)
import evil
evil.run()
try:
    typed = os.read(master, 100)
except BlockingIOError:
    typed = b""
print("TYPED", typed)
'''

#: The distribution: descriptors it did not open, reached without os.read/os.write.
ATTACK_THROUGH = ATTEMPT + '''
import faulthandler, fcntl, mmap, os, signal, stat, sys, termios
FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
def run():
    files = {}
    terminals = []
    for fd in range(3, 256):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            files[fcntl.fcntl(fd, fcntl.F_GETFL) & (os.O_ACCMODE | os.O_APPEND)] = fd
        elif os.isatty(fd):
            terminals.append(fd)
    secret, data, log = files[os.O_RDONLY], files[os.O_RDWR], files[os.O_WRONLY | os.O_APPEND]
    attempt("mmap_read", lambda: mmap.mmap(secret, 0, access=mmap.ACCESS_READ)[:6])
    def mmap_write():
        mapped = mmap.mmap(data, 0)
        mapped[:4] = b"EVIL"
        mapped.flush()
    attempt("mmap_write", mmap_write)
    attempt("dup2_stdin", lambda: (os.dup2(secret, 0), sys.stdin.read())[1])
    def wakeup():
        os.set_blocking(log, False)
        signal.set_wakeup_fd(log)
        try:
            signal.signal(signal.SIGUSR1, lambda *args: None)
            signal.raise_signal(signal.SIGUSR1)
        finally:
            signal.set_wakeup_fd(-1)
    attempt("wakeup", wakeup)
    attempt("traceback", lambda: faulthandler.dump_traceback(file=log))
    class Shifty:   # stdout when asked first, the log when asked again
        asked = 0
        def fileno(self):
            Shifty.asked += 1
            return 1 if Shifty.asked == 1 else log
        def flush(self):
            pass
    attempt("traceback_shifty", lambda: faulthandler.dump_traceback(file=Shifty()))
    def type_into_terminal():
        done = []
        for fd in terminals:
            for ch in b"id\\n":
                fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))
            done.append(fd)
        return done
    attempt("tiocsti", type_into_terminal)
    def file_flags():
        flags = bytearray(8)
        fcntl.ioctl(data, FS_IOC_GETFLAGS, flags)
        return fcntl.ioctl(data, FS_IOC_SETFLAGS, flags)
    attempt("ioctl_file", file_flags)
    attempt("fallocate", lambda: os.posix_fallocate(log, 0, 4096))
    attempt("lseek", lambda: os.lseek(data, 0, os.SEEK_SET))
    report()
'''


@DECISIONS
def test_a_distribution_maps_duplicates_or_types_into_no_descriptor_the_application_opened(tmp_path, decision):
    """``mmap.mmap`` reads and writes a file with no read or write call; ``os.dup2(secret, 0)``
    makes ``sys.stdin`` read the secret; ``signal.set_wakeup_fd`` and ``faulthandler`` have the
    interpreter write to the log (a file object may name one descriptor to the gate and another
    to faulthandler); ``TIOCSTI`` types a command into the terminal, which the shell runs once the
    program exits; a file ``ioctl`` changes the file's flags; ``os.posix_fallocate`` grows the
    log and ``os.lseek`` moves where the application writes next."""
    secret, data, log = tmp_path / "secret.txt", tmp_path / "data.txt", tmp_path / "app.log"
    config = '[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\nevil = []\n'
    app = APP_THROUGH.format(secret=str(secret), data=str(data), log=str(log))
    scenario = Scenario(tmp_path, config=config, app=app,
                        dists={"evil": {"files": {"evil/__init__.py": ATTACK_THROUGH}}})

    def reset():
        secret.write_text("s3cret\n")
        data.write_text("original\n")
        log.write_text("")

    reset()
    plain = scenario.plain()
    before = results(plain)
    for name in ("mmap_read", "mmap_write", "dup2_stdin", "wakeup", "traceback", "traceback_shifty", "fallocate",
                 "lseek"):
        assert ok(before[name]), (name, before, plain.stderr[-2000:])
    assert "s3cret" in before["mmap_read"] and "s3cret" in before["dup2_stdin"], before
    written = log.read_bytes()
    assert data.read_text().startswith("EVIL") and written.startswith(b"\n") and b"evil" in written, (data.read_text(), written)
    # Where the kernel still allows TIOCSTI (dev.tty.legacy_tiocsti) the command reaches the
    # terminal; a file system without file flags (tmpfs) refuses the ioctl: either way the
    # guarded run must refuse before the kernel is asked.
    assert ok(before["tiocsti"]) and "TYPED b'id" in plain.stdout or "OSError" in before["tiocsti"], before
    assert ok(before["ioctl_file"]) or "OSError" in before["ioctl_file"], before

    reset()
    guarded = scenario.guarded(extra_env=decision)
    after = results(guarded)
    for name in ("mmap_read", "mmap_write", "dup2_stdin", "wakeup", "tiocsti", "ioctl_file", "traceback",
                 "fallocate", "lseek"):
        assert after[name].startswith("denied:CapabilityError"), (name, after, guarded.stderr[-2000:])
    # the descriptor the gate decided (standard output) is the one faulthandler writes
    assert ok(after["traceback_shifty"]) and "evil/__init__.py" in guarded.stdout, (after, guarded.stdout)
    assert data.read_text() == "original\n" and log.read_bytes() == b"", (data.read_text(), log.read_bytes())
    assert "TYPED b''" in guarded.stdout, guarded.stdout
    assert "'evil' 1.0 lacks 'process'" in guarded.stderr and "fcntl.ioctl" in guarded.stderr, guarded.stderr[-3000:]
    assert "mmap.mmap" in guarded.stderr and "os.dup2" in guarded.stderr, guarded.stderr[-3000:]


#: No false denial: mapping, duplicating and controlling descriptors a distribution made itself,
#: with only the grants that made them.
OWN_THROUGH = ATTEMPT + '''
import asyncio, fcntl, mmap, os, signal, struct, termios
def run(writable, readable):
    def own_mmap():
        path = os.path.join(writable, "own.bin")
        with open(path, "wb") as f:
            f.write(b"mine")
        with open(path, "r+b") as f:
            mapped = mmap.mmap(f.fileno(), 0)
            mapped[:4] = b"MINE"
            mapped.close()
        return open(path, "rb").read()
    def read_only_mmap_and_dup2():
        with open(os.path.join(readable, "ro.txt"), "rb") as f:
            copy = os.dup(f.fileno())
            os.dup2(f.fileno(), copy)
            mapped = mmap.mmap(copy, 0, prot=mmap.PROT_READ)
            data = mapped[:2]
            mapped.close()
            os.close(copy)
        return data
    def anonymous():
        mapped = mmap.mmap(-1, 4096)
        mapped[:3] = b"anon"[:3]
        return mapped[:3]
    def own_terminal():
        master, slave = os.openpty()
        size = fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\\0" * 8)
        os.close(master), os.close(slave)
        return len(size)
    def event_loop_signals():
        async def main():
            loop = asyncio.get_running_loop()
            got = loop.create_future()
            loop.add_signal_handler(signal.SIGALRM, got.set_result, "signalled")
            signal.setitimer(signal.ITIMER_REAL, 0.01)   # a timer signal is free; raise_signal is process
            return await asyncio.wait_for(got, 5)
        return asyncio.run(main())
    def standard_streams():
        os.write(1, b"RAW STDOUT\\n")
        copy = os.dup(1)
        os.dup2(1, copy)
        os.write(copy, b"RAW COPY\\n")
        os.close(copy)
        return "written"
    attempt("own_mmap", own_mmap)
    attempt("read_only", read_only_mmap_and_dup2)
    attempt("anonymous", anonymous)
    attempt("terminal", own_terminal)
    attempt("signals", event_loop_signals)
    attempt("streams", standard_streams)
    report()
'''


@DECISIONS
def test_a_distributions_own_mappings_copies_and_terminals_are_not_denied(tmp_path, decision):
    """Standard output redirected to a file is the standard stream as the process started:
    ``os.write(1, ...)`` and copies of it need no grant for that file."""
    writable, readable = tmp_path / "rw", tmp_path / "ro"
    writable.mkdir()
    readable.mkdir()
    (readable / "ro.txt").write_text("ro")
    config = ('[tool.capimport]\nmode = "enforce"\ndefault = []\n[tool.capimport.packages]\n'
              f'mine = {{ fs = ["{writable}/*"], fs-readonly = ["{readable}/*"] }}\n')
    scenario = Scenario(tmp_path, config=config, app=f"import mine\nmine.run({str(writable)!r}, {str(readable)!r})\n",
                        dists={"mine": {"files": {"mine/__init__.py": OWN_THROUGH}}})
    out = tmp_path / "stdout.txt"
    with open(out, "w") as stdout:
        guarded = subprocess.run([sys.executable, "-m", "capimport", "app.py"], cwd=scenario.project,
                                 env=scenario.env(decision), stdout=stdout, stderr=subprocess.PIPE, text=True,
                                 stdin=subprocess.DEVNULL, timeout=60)
    printed = out.read_text()
    outcome = json.loads([line for line in printed.splitlines() if line.startswith("{")][-1])
    assert outcome == {"own_mmap": "ok:b'MINE'", "read_only": "ok:b'ro'", "anonymous": "ok:b'ano'",
                       "terminal": "ok:8", "signals": "ok:signalled", "streams": "ok:written"}, (outcome, guarded.stderr)
    assert "RAW STDOUT" in printed and "RAW COPY" in printed, printed
    assert "lacks" not in guarded.stderr, guarded.stderr[-2000:]
