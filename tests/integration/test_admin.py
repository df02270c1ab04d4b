"""Administration and introspection: CLIENT LIST/INFO/KILL/NO-EVICT/NO-TOUCH,
CONFIG GET/SET/RESETSTAT, INFO's sections, SAVE/BGSAVE/LASTSAVE (checkpoints
that open as databases), SHUTDOWN, DEBUG SLEEP, RESET, and COMMAND INFO/DOCS
good enough for redis-cli's hints (checked in a real redis-cli on a pty)."""
import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time

import pytest
import redis

from conftest import BUILD, ROOT

TROVE = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "trove")


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split(" "))


def test_client_list_and_info(server, raw):
    r = server.client(decode_responses=True)
    r.client_setname("lister")
    raw.command("CLIENT", "SETNAME", "other")
    raw.command("SELECT", "4")
    lines = r.execute_command("CLIENT", "LIST").strip().split("\n")
    by_name = {fields(l)["name"]: fields(l) for l in lines}
    me, other = by_name["lister"], by_name["other"]
    assert me["cmd"] == "client|list" and me["user"] == "default" and me["flags"] == "N"
    assert other["db"] == "4" and other["cmd"] == "select" and other["resp"] == "2"
    assert other["addr"].startswith("127.0.0.1:") and other["laddr"].endswith(":%d" % server.port)
    assert int(other["id"]) == raw.command("CLIENT", "ID")
    assert set(me) >= {"id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub",
                       "psub", "multi", "qbuf", "qbuf-free", "obl", "oll", "omem", "tot-mem",
                       "events", "cmd", "user", "redir", "resp"}
    only = r.execute_command("CLIENT", "LIST", "ID", other["id"]).strip().split("\n")
    assert len(only) == 1 and fields(only[0])["name"] == "other"
    assert r.execute_command("CLIENT", "LIST", "TYPE", "pubsub") == ""
    info = r.execute_command("CLIENT", "INFO")
    assert info.endswith("\n") and fields(info.strip())["name"] == "lister"
    assert fields(info.strip())["cmd"] == "client|info"
    assert raw.command("CLIENT", "NO-EVICT", "on") == "OK"
    assert raw.command("CLIENT", "NO-TOUCH", "off") == "OK"
    assert str(raw.command("CLIENT", "NO-EVICT", "maybe")) == "ERR syntax error"
    assert str(raw.command("CLIENT", "LIST", "TYPE", "odd")) == "ERR Unknown client type 'odd'"
    assert str(raw.command("CLIENT", "FOO")) == "ERR unknown subcommand 'FOO'. Try CLIENT HELP."
    assert str(raw.command("CLIENT", "KILL")) == \
        "ERR wrong number of arguments for 'client|kill' command"
    r.close()


def test_client_kill_forms(server, raw):
    victims = [server.raw() for _ in range(4)]
    ids = [v.command("CLIENT", "ID") for v in victims]
    assert raw.command("CLIENT", "KILL", "ID", str(ids[0])) == 1
    assert victims[0].closed()  # its next request never runs
    addr = fields(victims[1].command("CLIENT", "INFO").decode().strip())["addr"]
    assert raw.command("CLIENT", "KILL", addr) == "OK"  # the old form
    assert victims[1].closed()
    assert raw.command("CLIENT", "KILL", "ADDR", addr) == 0
    assert str(raw.command("CLIENT", "KILL", "1.2.3.4:5")) == "ERR No such client"
    assert raw.command("ACL", "SETUSER", "kuser", "on", ">pw", "+@all", "~*") == "OK"
    assert victims[2].command("AUTH", "kuser", "pw") == "OK"
    assert raw.command("CLIENT", "KILL", "USER", "kuser") == 1
    assert victims[2].closed()
    assert str(raw.command("CLIENT", "KILL", "USER", "nobody")) == "ERR No such user 'nobody'"
    assert str(raw.command("CLIENT", "KILL", "ID", "x")) == \
        "ERR client-id should be greater than 0"
    assert str(raw.command("CLIENT", "KILL", "SKIPME", "maybe")) == "ERR syntax error"
    # SKIPME (yes by default) spares the caller; the others of that user go.
    n = raw.command("CLIENT", "KILL", "USER", "default")
    assert n >= 1 and victims[3].closed()
    assert raw.command("PING") == "PONG"
    assert raw.command("CLIENT", "KILL", "ID", str(raw.command("CLIENT", "ID")),
                       "SKIPME", "no") == 1
    assert raw.closed()


def test_config_get_set(make_server):
    s = make_server("--timeout", "0", "--maxclients", "100")
    r = s.client(decode_responses=True)
    assert r.config_get("maxclients") == {"maxclients": "100"}
    assert r.execute_command("CONFIG", "GET", "timeout", "port") == \
        ["timeout", "0", "port", str(s.port)]
    got = r.config_get("*max*")
    assert got["maxclients"] == "100" and got["proto-max-bulk-len"] == "67108864"
    assert r.config_get("nosuch") == {}
    assert r.config_get("save") == {"save": ""} and r.config_get("appendonly") == {"appendonly": "no"}
    assert r.config_get("client-output-buffer-limit")["client-output-buffer-limit"].startswith(
        "normal 0 0 0 ")
    assert r.config_set("timeout", "300") is True
    assert r.execute_command("CONFIG", "SET", "maxclients", "50", "loglevel", "warning") == "OK"
    assert r.config_get("maxclients") == {"maxclients": "50"}
    assert r.config_get("loglevel") == {"loglevel": "warning"}
    assert r.config_set("request-timeout", "5") is True
    assert r.config_set("client-output-buffer-limit", "normal 1mb 512kb 10") is True
    assert r.config_get("client-output-buffer-limit")["client-output-buffer-limit"].startswith(
        "normal 1048576 524288 10 ")
    raw = s.raw()
    bad = [(("port", "7000"), "ERR CONFIG SET failed (possibly related to argument 'port') - "
                              "can't set immutable config"),
           (("maxclients", "abc"), "ERR CONFIG SET failed (possibly related to argument "
                                   "'maxclients') - argument couldn't be parsed into an integer"),
           (("maxclients", "0"), "ERR CONFIG SET failed (possibly related to argument "
                                 "'maxclients') - argument must be between 1 and 1000000 "
                                 "inclusive"),
           (("loglevel", "loud"), "ERR CONFIG SET failed (possibly related to argument "
                                  "'loglevel') - argument(s) must be one of the following: "
                                  "debug, verbose, notice, warning"),
           (("nosuch", "1"), "ERR Unknown option or number of arguments for CONFIG SET - "
                             "'nosuch'"),
           (("timeout", "1", "timeout", "2"), "ERR CONFIG SET failed (possibly related to "
                                              "argument 'timeout') - duplicate parameter"),
           (("timeout",), "ERR wrong number of arguments for 'config|set' command")]
    for args, words in bad:
        assert str(raw.command("CONFIG", "SET", *args)) == words
    # All or nothing: a bad pair leaves the good one unapplied.
    assert str(raw.command("CONFIG", "SET", "timeout", "7", "port", "1")).startswith("ERR")
    assert r.config_get("timeout") == {"timeout": "300"}
    assert str(raw.command("CONFIG")) == "ERR wrong number of arguments for 'config' command"
    raw.close()
    r.close()


def test_info_sections_and_resetstat(r):
    r.set("k", "v")
    r.get("k")
    with pytest.raises(redis.ResponseError):
        r.execute_command("INCR", "k")
    mem = r.info("memory")
    assert mem["used_memory"] > 0 and mem["used_memory_rss"] > 0
    assert mem["maxmemory_policy"] == "noeviction" and "used_memory_human" in mem
    per = r.info("persistence")
    assert per["loading"] == 0 and per["rdb_bgsave_in_progress"] == 0
    assert per["rdb_last_bgsave_status"] == "ok" and per["aof_enabled"] == 0
    stats = r.info("commandstats")
    assert stats["cmdstat_get"]["calls"] >= 1
    assert stats["cmdstat_incr"]["failed_calls"] >= 1
    assert "usec_per_call" in stats["cmdstat_set"]
    default = r.info()
    assert "used_memory" in default and "rdb_saves" in default and "redis_version" in default
    assert not any(k.startswith("cmdstat_") for k in default)
    assert any(k.startswith("cmdstat_") for k in r.info("all"))
    assert r.config_resetstat() is True
    assert "cmdstat_get" not in r.info("commandstats")
    assert r.info("stats")["total_commands_processed"] <= 2


def test_bgsave_and_save_make_backups_that_open(make_server):
    s = make_server()
    r = s.client(decode_responses=True)
    before = r.lastsave()
    r.mset({"a%d" % i: "v" for i in range(100)})
    assert r.bgsave() is True
    deadline = time.time() + 10
    while r.info("persistence")["rdb_bgsave_in_progress"] and time.time() < deadline:
        time.sleep(0.02)
    per = r.info("persistence")
    assert per["rdb_saves"] == 1 and per["rdb_last_bgsave_status"] == "ok"
    assert per["rdb_changes_since_last_save"] == 0
    backup = per["trove_last_backup_dir"]
    assert os.path.dirname(backup) == s.dir and os.path.basename(backup).startswith("backup-")
    out = subprocess.run([TROVE, "count", backup], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and out.stdout.strip() == "100", out.stderr
    r.set("later", "1")
    assert r.save() is True  # at once, into another directory
    dirs = sorted(d for d in os.listdir(s.dir) if d.startswith("backup-"))
    assert len(dirs) == 2
    out = subprocess.run([TROVE, "count", os.path.join(s.dir, dirs[-1])], capture_output=True,
                         text=True, timeout=20)
    assert out.stdout.strip() == "101"
    assert r.lastsave() >= before
    raw = s.raw()
    assert raw.command("BGSAVE", "SCHEDULE") in ("Background saving started",
                                                 "Background saving scheduled")
    assert str(raw.command("BGSAVE", "NOW")) == "ERR syntax error"
    raw.close()
    r.close()


def test_shutdown(spawn):
    s = spawn().start()
    c = s.client()
    c.set("k", "v")
    c.shutdown()  # redis-py expects the connection to close, with no reply
    assert s.proc.wait(10) == 0
    assert "User requested shutdown" in s.logtext()
    # SHUTDOWN SAVE writes a checkpoint first; ABORT has nothing to abort.
    s2 = spawn(port=s.port).start()
    raw = s2.raw()
    assert str(raw.command("SHUTDOWN", "ABORT")) == "ERR No shutdown in progress."
    assert str(raw.command("SHUTDOWN", "SAVE", "NOSAVE")) == "ERR syntax error"
    raw.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n")
    assert raw.closed()
    assert s2.proc.wait(10) == 0
    assert any(d.startswith("backup-") for d in os.listdir(s2.dir))
    s2.log.close()


def test_debug_sleep_and_reset(make_server):
    s = make_server("--workers", "1")
    raw = s.raw()
    t = time.time()
    assert raw.command("DEBUG", "SLEEP", "0.2") == "OK"
    assert time.time() - t >= 0.2
    assert str(raw.command("DEBUG", "JMAP")) == \
        "ERR unknown subcommand or wrong number of arguments for 'JMAP'. Try DEBUG HELP."
    assert str(raw.command("DEBUG")) == "ERR wrong number of arguments for 'debug' command"
    raw.command("SELECT", "3")
    raw.command("CLIENT", "SETNAME", "before")
    assert raw.command("HELLO", "3")[b"proto"] == 3
    assert raw.command("RESET") == "RESET"
    assert raw.command("CLIENT", "GETNAME") is None
    assert raw.command("SET", "k", "db0") == "OK"
    assert s.client(decode_responses=True).get("k") == "db0"
    assert raw.command("GET", "nokey") is None  # RESP2 again: $-1 reads as None
    raw.close()


def test_debug_disabled_and_reset_deauthenticates(make_server):
    s = make_server("--enable-debug-command", "no", password="pw")
    raw = s.raw()
    assert raw.command("AUTH", "pw") == "OK"
    assert str(raw.command("DEBUG", "SLEEP", "0")).startswith("ERR DEBUG command not allowed.")
    assert raw.command("RESET") == "RESET"
    assert str(raw.command("GET", "k")) == "NOAUTH Authentication required."
    raw.close()


def test_command_info_and_docs(raw):
    info = raw.command("COMMAND", "INFO", "client", "config")
    subs = {e[0] for e in info[0][9]}
    assert {b"client|kill", b"client|list", b"client|id", b"client|no-evict"} <= subs
    kill = [e for e in info[0][9] if e[0] == b"client|kill"][0]
    assert kill[1] == -3 and "admin" in kill[2] and "@dangerous" in kill[6]
    assert b"config|set" in {e[0] for e in info[1][9]}
    docs = raw.command("COMMAND", "DOCS", "set", "client")
    d = dict(zip(docs[::2], docs[1::2]))
    sd = dict(zip(d[b"set"][::2], d[b"set"][1::2]))
    args = [dict(zip(a[::2], a[1::2])) for a in sd[b"arguments"]]
    assert [a[b"name"] for a in args[:2]] == [b"key", b"value"]
    assert args[0][b"type"] == b"key"
    cond = args[2]
    assert cond[b"type"] == b"oneof" and cond[b"flags"] == ["optional"]
    cd = dict(zip(d[b"client"][::2], d[b"client"][1::2]))
    names = cd[b"subcommands"][::2]
    assert all(n.startswith(b"client|") for n in names)  # redis-cli splits on '|'


def redis_cli_screen(port, keys):
    """Types keys into an interactive redis-cli on a pty; returns what it drew."""
    m, sl = pty.openpty()
    fcntl.ioctl(sl, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    p = subprocess.Popen(["redis-cli", "-p", str(port)], stdin=sl, stdout=sl, stderr=sl,
                         env=dict(os.environ, TERM="xterm", HOME=os.environ.get("TMPDIR", "/tmp")))
    os.close(sl)
    out = b""

    def pump(secs):
        nonlocal out
        end = time.time() + secs
        while time.time() < end:
            if select.select([m], [], [], 0.05)[0]:
                try:
                    out += os.read(m, 65536)
                except OSError:
                    return

    try:
        pump(0.5)
        os.write(m, keys)
        pump(0.5)
        os.write(m, b"\x15quit\r")
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(m)
    return out.decode(errors="replace")


def test_redis_cli_hints_come_from_command_docs(server):
    screen = redis_cli_screen(server.port, b"set k ")
    assert "key value [NX|XX" in screen
    assert "[GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT " \
           "unix-time-milliseconds|KEEPTTL]" in screen
    screen = redis_cli_screen(server.port, b"help client kill\r")
    assert "CLIENT KILL" in screen and "Terminates open connections." in screen
