"""Fixtures for the troved integration suites.

Every test talks to a real build/troved (the build directory comes from
$TROVE_BUILD, default "build") started on a free loopback port with a
temporary database directory.  Stopping a server sends SIGTERM and checks
that it exited 0, so every test also checks a clean shutdown.

`RawConn` is a minimal RESP2/RESP3 client over a plain socket, for what
redis-py (Debian's 4.3) cannot show: RESP3 replies, inline commands and
malformed input.
"""
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TROVE_BUILD", "build")
TROVED = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "troved")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One troved process.  extra: more command-line words."""

    def __init__(self, workdir, *extra, password=None, port=None, dirname="data"):
        self.workdir = str(workdir)
        self.dir = os.path.join(self.workdir, dirname)
        self.password = password
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc = None
        self.logpath = os.path.join(self.workdir, "troved-%d.log" % self.port)

    def argv(self):
        a = [TROVED, "--port", str(self.port), "--dir", self.dir, "--workers", "2",
             "--loglevel", "verbose"]
        if self.password:
            a += ["--requirepass", self.password]
        return a + self.extra

    def start(self, timeout=15):
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("troved exited with %d:\n%s" % (self.proc.returncode, self.logtext()))
            c = self.client(socket_timeout=1)
            try:
                if c.ping():
                    return self
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.02)
            finally:
                c.close()
                c.connection_pool.disconnect()
        raise RuntimeError("troved did not answer PING:\n" + self.logtext())

    def logtext(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def client(self, **kw):
        kw.setdefault("password", self.password)
        kw.setdefault("socket_timeout", 20)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def raw(self, **kw):
        return RawConn(self.port, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the server; returns its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("troved did not stop on signal %d:\n%s" % (sig, self.logtext()))
        self.log.close()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class RespError(Exception):
    pass


class RawConn:
    """A bare RESP client: send bytes, read one parsed reply."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def command(self, *args):
        self.send(encode(*args))
        return self.reply()

    def _fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("closed by server")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"=":
            return ("verbatim", self._exact(int(rest)))
        if t in (b"*", b"~"):
            n = int(rest)
            if n < 0:
                return None
            items = [self.reply() for _ in range(n)]
            return set(items) if t == b"~" and all(not isinstance(i, (list, dict)) for i in items) else items
        if t == b"%":
            n = int(rest)
            d = {}
            for _ in range(n):
                k = self.reply()
                d[k] = self.reply()
            return d
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return float(rest)
        raise AssertionError("unexpected reply type %r in %r" % (t, line))

    def closed(self, timeout=5):
        """True if the server closes the connection (after any pending bytes)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def run_threads(n, fn):
    """Runs fn(0) .. fn(n - 1) in n threads; fails if any raised."""
    errors = []

    def wrap(i):
        try:
            fn(i)
        except Exception as e:  # surfaced below: a thread cannot fail the test
            errors.append(e)
    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def kill_under_load(s, spawn, writer, acked, stop, writers=6, secs=1.5, sigterm=False):
    """Runs writer(w) on `writers` threads against server s, SIGKILLs s
    mid-load (with sigterm: stops it with SIGTERM, which must exit 0),
    then sets the event `stop` the writers watch, restarts it on the same
    port and checks that every key in `acked` (what the server
    acknowledged) reads back as recorded.  Returns the restarted server,
    still running."""
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    time.sleep(secs)
    if sigterm:
        assert s.stop() == 0, s.logtext()
    else:
        s.kill()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 100
    s2 = spawn(port=s.port)
    s2.start()
    c = s2.client(decode_responses=True)
    keys = list(acked)
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        assert c.mget(chunk) == [acked[k] for k in chunk]
    return s2


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


@pytest.fixture
def spawn(tmp_path):
    """Creates (not starts) servers in tmp_path; any still running at the
    end of the test is killed, so a failing test never leaks a process."""
    made = []

    def make(*extra, **kw):
        s = Server(tmp_path, *extra, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        if s.proc is not None and s.proc.poll() is None:
            s.kill()


@pytest.fixture
def make_server(tmp_path):
    """Starts servers on demand; each is stopped (and must exit 0) at the end."""
    started = []

    def make(*extra, **kw):
        s = Server(tmp_path, *extra, **kw)
        s.start()
        started.append(s)
        return s

    try:
        yield make
    finally:
        codes = [(s.stop(), s) for s in started]
    for rc, s in codes:
        assert rc == 0, s.logtext()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for a module's command tests (they flush between tests)."""
    s = Server(tmp_path_factory.mktemp("troved"))
    s.start()
    yield s
    assert s.stop() == 0, s.logtext()


@pytest.fixture
def server(shared_server):
    c = shared_server.client()
    c.flushall()
    c.close()
    return shared_server


@pytest.fixture
def r(server):
    """A redis-py client with str replies, on an empty database 0."""
    c = server.client(decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def raw(server):
    c = server.raw()
    yield c
    c.close()
