"""The server process: options and config files, protected mode, limits
(maxclients, idle timeout, request size), pid file, daemonizing, graceful
shutdown, restart with data intact, and no acknowledged write lost to a
SIGKILL under sync=always."""
import os
import signal
import subprocess
import threading
import time

import pytest
import redis

from conftest import TROVED, encode, free_port, kill_under_load


def run(*args, timeout=20):
    return subprocess.run([TROVED, *args], capture_output=True, text=True, timeout=timeout)


def test_help_and_version():
    p = run("--help")
    assert p.returncode == 0
    for opt in ("port", "bind", "dir", "requirepass", "maxclients", "loglevel", "daemonize",
                "pidfile", "sync", "workers", "timeout", "proto-max-bulk-len"):
        assert opt in p.stdout
    v = run("--version")
    assert v.returncode == 0 and v.stdout.startswith("troved ")


@pytest.mark.parametrize("args,words", [
    (["--nosuch", "1"], "unknown option 'nosuch'"),
    (["--port", "abc"], "bad value for 'port': 'abc'"),
    (["--port", "70000"], "bad value for 'port'"),
    (["--sync", "sometimes"], "bad value for 'sync'"),
    (["--loglevel", "loud"], "bad value for 'loglevel'"),
    (["--daemonize", "maybe"], "bad value for 'daemonize'"),
    (["--maxclients", "0"], "bad value for 'maxclients'"),
    (["--proto-max-bulk-len", "12parsecs"], "bad value for 'proto-max-bulk-len'"),
    (["--port"], "'port' takes exactly one value"),
    (["stray", "--port", "1"], "cannot open config file 'stray'"),
    (["--config", "/nonexistent/trove.conf"], "cannot open config file"),
])
def test_bad_options_exit_1(args, words):
    p = run(*args)
    assert p.returncode == 1
    assert words in p.stderr, p.stderr


def test_protected_mode_refuses_public_bind_without_password(tmp_path):
    for addr in ("0.0.0.0", "10.1.2.3", "::"):
        p = run("--bind", addr, "--port", str(free_port()), "--dir", str(tmp_path / "d"))
        assert p.returncode == 1
        assert "refusing to listen on '%s' without a password" % addr in p.stderr
        assert "protected mode" in p.stderr
    p = run("--bind", "127.0.0.1", "0.0.0.0", "--port", "1", "--dir", str(tmp_path / "d"))
    assert p.returncode == 1
    assert not os.path.exists(tmp_path / "d")  # refused before touching anything


def test_config_file_and_overrides(tmp_path, spawn):
    port = free_port()
    conf = tmp_path / "trove.conf"
    conf.write_text(
        "# a comment\n"
        "port %d\n"
        "bind 127.0.0.1\n"
        "dir \"%s\"\n"
        "requirepass \"file pass\"\n"
        "maxclients 100\n"
        "loglevel notice\n"
        "sync periodic\n"
        "\n"
        "workers 3\n" % (free_port(), tmp_path / "data"))
    s = spawn("--config", str(conf), "--sync", "none", port=port)
    s.password = "file pass"
    s.start()
    c = s.client(decode_responses=True)
    info = c.info("server")
    assert info["tcp_port"] == port  # the command line wins over the file
    assert info["sync"] == "none"
    assert info["workers"] == 2  # the fixture passes --workers 2 after the file
    assert info["config_file"] == str(conf)
    c.set("k", "v")
    assert os.path.isdir(tmp_path / "data")
    assert s.stop() == 0


def test_config_file_errors_name_the_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("port 6379\n\nbogus-option yes\n")
    p = run("--config", str(conf))
    assert p.returncode == 1
    assert "bad.conf:3: unknown option 'bogus-option'" in p.stderr
    conf.write_text("port 6379\nrequirepass \"unterminated\n")
    p = run(str(conf))
    assert p.returncode == 1 and "bad.conf:2: unbalanced quotes" in p.stderr
    conf.write_text("maxclients\n")
    p = run(str(conf))
    assert p.returncode == 1 and "bad.conf:1: 'maxclients' needs a value" in p.stderr


def test_sigint_and_logfile_and_pidfile(tmp_path, spawn):
    log = tmp_path / "t.log"
    pid = tmp_path / "t.pid"
    s = spawn("--logfile", str(log), "--pidfile", str(pid))
    s.start()
    assert int(pid.read_text()) == s.proc.pid
    s.client().set("k", "v")
    assert s.stop(signal.SIGINT) == 0
    assert not pid.exists()
    text = log.read_text()
    assert "Ready to accept connections" in text
    assert "Received SIGINT" in text
    assert "bye bye" in text


def test_daemonize(tmp_path):
    port = free_port()
    pid = tmp_path / "d.pid"
    p = run("--daemonize", "yes", "--port", str(port), "--dir", str(tmp_path / "data"),
            "--pidfile", str(pid), "--logfile", str(tmp_path / "d.log"))
    assert p.returncode == 0, p.stderr
    daemon = int(pid.read_text())
    try:
        assert redis.Redis(port=port).ping()
        os.kill(daemon, signal.SIGTERM)
        for _ in range(200):
            if not pid.exists():
                break
            time.sleep(0.05)
        assert not pid.exists()
    finally:
        try:
            os.kill(daemon, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # A daemon that cannot start says so through the parent's exit status.
    p = run("--daemonize", "yes", "--port", str(port), "--dir", "/proc/nope/data")
    assert p.returncode == 1


def test_second_server_on_same_dir_is_refused(make_server, tmp_path):
    s = make_server()
    p = run("--port", str(free_port()), "--dir", s.dir)
    assert p.returncode == 1
    assert "another process" in p.stderr


def test_port_in_use_is_refused(make_server, tmp_path):
    s = make_server()
    p = run("--port", str(s.port), "--dir", str(tmp_path / "other"))
    assert p.returncode == 1
    assert "Could not listen on 127.0.0.1 port %d" % s.port in p.stderr


def test_maxclients(make_server):
    s = make_server("--maxclients", "3")

    def connect():
        """A connection the server accepted (the fixture's own PING
        connection may take a moment to be noticed closed)."""
        for _ in range(100):
            c = s.raw()
            if c.command("PING") == "PONG":
                return c
            c.close()
            time.sleep(0.05)
        raise AssertionError("no connection accepted")

    keep = [connect() for _ in range(3)]
    extra = s.raw()
    assert str(extra.reply()) == "ERR max number of clients reached"
    assert extra.closed()
    keep[0].close()
    again = connect()
    assert again.command("PING") == "PONG"
    assert b"rejected_connections:" in keep[1].command("INFO", "stats")


def test_idle_timeout(make_server):
    s = make_server("--timeout", "1")
    idle = s.raw()
    busy = s.raw()
    assert idle.command("PING") == "PONG"
    deadline = time.time() + 2.5
    while time.time() < deadline:
        assert busy.command("PING") == "PONG"
        time.sleep(0.2)
    assert idle.closed(timeout=5)
    assert busy.command("PING") == "PONG"


def test_request_size_limits(make_server):
    s = make_server("--proto-max-bulk-len", "100kb", "--client-query-buffer-limit", "256kb")
    c = s.raw()
    assert c.command("SET", "ok", "x" * 100000) == "OK"
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$102401\r\n")  # 100kb = 102400
    assert str(c.reply()) == "ERR Protocol error: invalid bulk length"
    assert c.closed()
    # Many arguments, each under the bulk limit, over the buffer limit.
    c = s.raw()
    args = ["MSET"] + ["k", "y" * 90000] * 4
    try:
        c.send(encode(*args))
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert c.closed()
    assert "client-query-buffer-limit" in s.logtext()
    assert s.client().get("ok") == b"x" * 100000


def test_bad_config_check(tmp_path):
    p = run("--proto-max-bulk-len", "200mb", "--client-query-buffer-limit", "100mb")
    assert p.returncode == 1
    assert "client-query-buffer-limit" in p.stderr


def test_restart_keeps_data(spawn):
    s = spawn()
    s.start()
    c = s.client()
    c.mset({"k%d" % i: "v%d" % i for i in range(500)})
    c.set("ttl", "v", ex=1000)
    c.set("short", "v", px=200)
    c.execute_command("SELECT", 7)
    c.set("db7", "seven")
    c.close()
    assert s.stop() == 0
    time.sleep(0.3)
    s2 = spawn(port=s.port)
    s2.start()
    c = s2.client(decode_responses=True)
    assert c.mget(["k0", "k250", "k499"]) == ["v0", "v250", "v499"]
    assert c.dbsize() == 501
    assert 990 < c.ttl("ttl") <= 1000
    assert c.get("short") is None
    c.execute_command("SELECT", 7)
    assert c.get("db7") == "seven"
    assert s2.stop() == 0


def setter(s, acked, stop, size):
    """A writer for kill_under_load: writer w sends pipelines of size(w)
    SETs until stop is set, recording in acked what was acknowledged."""
    def writer(w):
        c = s.client(socket_timeout=10)
        i, n = 0, size(w)
        try:
            while not stop.is_set():
                pipe = c.pipeline(transaction=False)
                batch = [("w%d:%d" % (w, i + j), "%d-%d" % (w, i + j)) for j in range(n)]
                for k, v in batch:
                    pipe.set(k, v)
                pipe.execute()
                for k, v in batch:
                    acked[k] = v
                i += n
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError):
            pass
    return writer


def test_sigkill_loses_no_acknowledged_write(spawn):
    """Writers record every SET the server acknowledged; after a SIGKILL in
    the middle of the load, a restarted server has every one of them."""
    s = spawn("--sync", "always")
    s.start()
    acked = {}
    stop = threading.Event()
    s2 = kill_under_load(s, spawn, setter(s, acked, stop, lambda w: 10), acked, stop)
    assert s2.stop() == 0


def test_sigterm_under_load_keeps_every_acknowledged_write(spawn):
    """Under sync always, replies wait for the sync thread.  A SIGTERM in
    the middle of a load from many clients (on both workers, pipelined
    and not) must still end cleanly: the replies already produced are
    sent once their sync is done, the server exits 0, and every write it
    acknowledged is there after a restart."""
    s = spawn("--sync", "always")
    s.start()
    acked = {}
    stop = threading.Event()
    writer = setter(s, acked, stop, lambda w: 1 if w % 2 else 5)
    s2 = kill_under_load(s, spawn, writer, acked, stop, writers=12, secs=1.0, sigterm=True)
    assert s2.stop() == 0


@pytest.mark.parametrize("mode", ["periodic", "none"])
def test_relaxed_sync_modes(spawn, mode):
    s = spawn("--sync", mode, "--sync-period-ms", "50")
    s.start()
    c = s.client()
    for i in range(200):
        c.set("k%d" % i, i)
    assert s.stop() == 0  # a clean stop flushes everything
    s2 = spawn(port=s.port)
    s2.start()
    assert s2.client().get("k199") == b"199"
    assert s2.stop() == 0


def test_shutdown_with_clients_connected(make_server):
    s = make_server()
    conns = [s.raw() for _ in range(20)]
    for c in conns:
        c.send(encode("SET", "a", "b"))
    for c in conns:
        assert c.reply() == "OK"
    half = s.raw()
    half.send(b"*2\r\n$3\r\nGET\r\n")  # half a request
    assert s.stop() == 0
    for c in conns:
        assert c.closed()
