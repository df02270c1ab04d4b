"""Connection and server commands: PING ECHO QUIT HELLO AUTH SELECT CLIENT
TIME INFO COMMAND, unknown commands and arity errors in Redis's exact words,
RESP2 and RESP3 replies, authentication and protected mode."""
import time

import pytest
import redis


def err(fn, *args):
    with pytest.raises(redis.ResponseError) as e:
        fn(*args)
    return str(e.value)


def test_ping_echo(r, raw):
    assert r.ping() is True
    assert raw.command("PING", "hello") == b"hello"
    assert r.echo("abc") == "abc"
    assert raw.command("PING") == "PONG"
    assert raw.command("ECHO", b"a\r\nb\x00") == b"a\r\nb\x00"
    assert str(raw.command("PING", "a", "b")) == "ERR wrong number of arguments for 'ping' command"
    assert str(raw.command("ECHO")) == "ERR wrong number of arguments for 'echo' command"


def test_unknown_command_exact_text(raw):
    assert str(raw.command("foo", "a", "b")) == \
        "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
    assert str(raw.command("FOO")) == "ERR unknown command 'FOO', with args beginning with: "
    # Data types beyond strings are not here yet: Redis's unknown-command error.
    assert str(raw.command("HSET", "h", "f", "v")).startswith(
        "ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v' ")
    # The argument list stops growing at 128 bytes; newlines become spaces.
    long = str(raw.command("nope", "x" * 200, "y"))
    assert long == "ERR unknown command 'nope', with args beginning with: '" + "x" * 128 + "' "
    assert str(raw.command("bad\r\ncmd")) == \
        "ERR unknown command 'bad  cmd', with args beginning with: "
    assert raw.command("PING") == "PONG"


def test_arity_errors(raw):
    for cmd in (["GET"], ["GET", "a", "b"], ["SET", "k"], ["INCRBY", "k"], ["TTL"],
                ["SELECT"], ["DBSIZE", "x"], ["KEYS"], ["TIME", "x"], ["APPEND", "k"]):
        assert str(raw.command(*cmd)) == \
            "ERR wrong number of arguments for '%s' command" % cmd[0].lower()


def test_quit(raw):
    assert raw.command("QUIT") == "OK"
    assert raw.closed()


def test_time(r):
    secs, usecs = r.time()
    assert abs(secs - time.time()) < 5
    assert 0 <= usecs < 1000000


def test_client_id_name(r, raw):
    cid = r.client_id()
    assert isinstance(cid, int) and cid > 0
    assert raw.command("CLIENT", "ID") != cid
    assert r.client_getname() is None
    assert r.client_setname("worker-1") is True
    assert r.client_getname() == "worker-1"
    assert err(r.execute_command, "CLIENT", "SETNAME", "has space") == \
        "Client names cannot contain spaces, newlines or special characters."
    assert r.client_getname() == "worker-1"
    assert r.execute_command("CLIENT", "SETNAME", "") == "OK"
    assert r.client_getname() is None
    assert err(r.execute_command, "CLIENT", "FOO") == "unknown subcommand 'FOO'. Try CLIENT HELP."
    assert err(r.execute_command, "CLIENT", "SETNAME") == \
        "wrong number of arguments for 'client|setname' command"
    assert err(r.execute_command, "CLIENT") == "wrong number of arguments for 'client' command"
    assert len(r.execute_command("CLIENT", "HELP")) > 3


def test_info_sections(r):
    info = r.info()
    for field in ("redis_version", "trove_version", "tcp_port", "uptime_in_seconds",
                  "connected_clients", "total_commands_processed",
                  "total_connections_received"):
        assert field in info
    assert info["connected_clients"] >= 1
    server = r.info("server")
    assert "redis_version" in server and "connected_clients" not in server
    assert "connected_clients" in r.info("clients")
    stats = r.info("stats")
    assert stats["total_commands_processed"] > 0
    r.set("k", "v")
    assert "db0" in r.info("keyspace")


def test_command_count_info_docs(r, raw):
    n = raw.command("COMMAND", "COUNT")
    assert n >= 40
    everything = raw.command("COMMAND")
    assert len(everything) == n
    info = raw.command("COMMAND", "INFO", "get", "nosuchcmd", "SET")
    assert info[0][0] == b"get" and info[0][1] == 2
    assert info[1] is None
    assert info[2][0] == b"set" and info[2][1] == -3
    assert "write" in info[2][2]  # flags are simple strings
    docs = raw.command("COMMAND", "DOCS", "get")
    assert docs[0] == b"get"
    fields = dict(zip(docs[1][::2], docs[1][1::2]))
    assert fields[b"group"] == b"string"
    assert b"get" in raw.command("COMMAND", "LIST")
    assert str(raw.command("COMMAND", "BOGUS")) == \
        "ERR unknown subcommand 'BOGUS'. Try COMMAND HELP."


def test_resp3_hello_and_types(server):
    c = server.raw()
    hello = c.command("HELLO", "3")
    assert isinstance(hello, dict)
    assert hello[b"proto"] == 3
    assert hello[b"server"] == b"redis"
    assert hello[b"mode"] == b"standalone"
    assert isinstance(hello[b"id"], int)
    assert c.command("GET", "nope") is None
    assert c.buf == b""
    c.send(b"*2\r\n$3\r\nGET\r\n$4\r\nnope\r\n")
    assert c.sock.recv(100) == b"_\r\n"  # RESP3 null
    c.command("SET", "k", "v")
    assert c.command("MGET", "k", "nope") == [b"v", None]
    info = c.command("INFO", "server")
    assert info[0] == "verbatim" and info[1].startswith(b"txt:# Server")
    docs = c.command("COMMAND", "DOCS", "get")
    assert isinstance(docs, dict) and docs[b"get"][b"group"] == b"string"
    cmd = c.command("COMMAND", "INFO", "get")
    assert cmd[0][2] == {"readonly", "fast"}  # RESP3 sets
    back = c.command("HELLO", "2")
    assert isinstance(back, list) and back[back.index(b"proto") + 1] == 2
    c.send(b"*2\r\n$3\r\nGET\r\n$4\r\nnope\r\n")
    assert c.sock.recv(100) == b"$-1\r\n"  # RESP2 null again
    c.command("DEL", "k")
    c.close()


def test_hello_errors_and_setname(raw):
    assert str(raw.command("HELLO", "4")) == "NOPROTO unsupported protocol version"
    assert str(raw.command("HELLO", "x")) == \
        "ERR Protocol version is not an integer or out of range"
    assert str(raw.command("HELLO", "3", "BOGUS")) == "ERR Syntax error in HELLO option 'BOGUS'"
    assert str(raw.command("HELLO", "3", "AUTH", "u")) == "ERR Syntax error in HELLO option 'AUTH'"
    reply = raw.command("HELLO", "2", "SETNAME", "conn-a")
    assert isinstance(reply, list)
    assert raw.command("CLIENT", "GETNAME") == b"conn-a"
    assert isinstance(raw.command("HELLO"), list)  # no version: the current one


def test_auth_without_password(raw):
    assert str(raw.command("AUTH", "pw")) == (
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?")
    assert raw.command("AUTH", "default", "anything") == "OK"
    assert str(raw.command("AUTH", "bob", "pw")) == \
        "WRONGPASS invalid username-password pair or user is disabled."
    assert str(raw.command("AUTH", "a", "b", "c")) == "ERR syntax error"


def test_requirepass(make_server):
    s = make_server(password="s3cret")
    c = s.raw()
    assert str(c.command("GET", "k")) == "NOAUTH Authentication required."
    assert str(c.command("SET", "k", "v")) == "NOAUTH Authentication required."
    # Existence and arity are checked before authentication, as in Redis 7.
    assert str(c.command("NOSUCH")).startswith("ERR unknown command 'NOSUCH'")
    assert str(c.command("AUTH", "wrong")) == \
        "WRONGPASS invalid username-password pair or user is disabled."
    assert str(c.command("AUTH", "bob", "s3cret")) == \
        "WRONGPASS invalid username-password pair or user is disabled."
    assert str(c.command("HELLO", "3")).startswith(
        "NOAUTH HELLO must be called with the client already authenticated")
    assert c.command("AUTH", "s3cret") == "OK"
    assert c.command("SET", "k", "v") == "OK"
    c.close()
    d = s.raw()
    assert d.command("AUTH", "default", "s3cret") == "OK"
    assert d.command("GET", "k") == b"v"
    d.close()
    e = s.raw()
    hello = e.command("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "me")
    assert hello[b"proto"] == 3
    assert e.command("CLIENT", "GETNAME") == b"me"
    assert str(e.command("HELLO", "3", "AUTH", "default", "bad")) == \
        "WRONGPASS invalid username-password pair or user is disabled."
    e.close()
    assert s.client().get("k") == b"v"  # redis-py sends AUTH itself
    # (redis-py 4.3 reports WRONGPASS as a ResponseError, NOAUTH as an
    # AuthenticationError)
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
        s.client(password="nope").get("k")
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
        s.client(password=None).get("k")


def test_unauthenticated_request_limits(make_server):
    """Before AUTH, a client may send only small requests (as in Redis 7)."""
    s = make_server(password="pw")
    c = s.raw()
    c.send(b"*20\r\n")
    assert str(c.reply()) == "ERR Protocol error: unauthenticated multibulk length"
    assert c.closed()
    c = s.raw()
    c.send(b"*2\r\n$3\r\nGET\r\n$100000\r\n")
    assert str(c.reply()) == "ERR Protocol error: unauthenticated bulk length"
    assert c.closed()
    c = s.raw()
    assert c.command("AUTH", "pw") == "OK"
    assert c.command("SET", "k", "x" * 100000) == "OK"
    c.close()
