"""The RESP parser on the wire: inline commands, pipelines of thousands of
commands, requests split at every byte, and hostile input (bad lengths,
negative counts, huge declared sizes, binary junk, half requests) - each
gets a clear error or a closed connection while the server keeps serving
everyone else."""
import os
import socket
import time

import pytest

from conftest import BUILD, encode


def test_inline_commands(raw):
    raw.send(b"SET greeting hello\r\n")
    assert raw.reply() == "OK"
    raw.send(b"GET greeting\n")  # a bare LF ends a line too
    assert raw.reply() == b"hello"
    raw.send(b"SET q \"two words\\n\" \r\n")
    assert raw.reply() == "OK"
    assert raw.command("GET", "q") == b"two words\n"
    raw.send(b"SET s 'it\\'s'\r\n")
    assert raw.reply() == "OK"
    assert raw.command("GET", "s") == b"it's"
    raw.send(b"\r\n\r\nPING\r\n")  # empty lines are skipped
    assert raw.reply() == "PONG"
    raw.send(b"ECHO \"\\x41\\x42\"\r\n")
    assert raw.reply() == b"AB"


def test_inline_unbalanced_quotes(raw):
    raw.send(b"SET k \"oops\r\n")
    assert str(raw.reply()) == "ERR Protocol error: unbalanced quotes in request"
    assert raw.closed()


def test_pipeline_of_thousands(server, raw):
    n = 5000
    raw.send(b"".join(encode("SET", "key:%d" % i, "value-%d" % i) for i in range(n)))
    for i in range(n):
        assert raw.reply() == "OK"
    raw.send(b"".join(encode("GET", "key:%d" % i) for i in range(n)))
    for i in range(n):
        assert raw.reply() == b"value-%d" % i
    c = server.client()
    p = c.pipeline(transaction=False)
    for i in range(n):
        p.incr("ctr")
    assert p.execute()[-1] == n
    assert c.dbsize() == n + 1


def test_request_split_at_every_byte(raw):
    data = encode("SET", "split", "x" * 10) + b"PING\r\n" + encode("GET", "split")
    for b in data:
        raw.send(bytes([b]))
        time.sleep(0.0005)
    assert raw.reply() == "OK"
    assert raw.reply() == "PONG"
    assert raw.reply() == b"x" * 10


def test_large_value_in_pieces(raw):
    value = os.urandom(3 << 20)
    data = encode("SET", "big", value)
    for i in range(0, len(data), 100000):
        raw.send(data[i:i + 100000])
    assert raw.reply() == "OK"
    assert raw.command("GET", "big") == value


def test_empty_and_null_multibulk_are_skipped(raw):
    raw.send(b"*0\r\n*-1\r\nPING\r\n")
    assert raw.reply() == "PONG"


def bad(server, data, expect):
    c = server.raw()
    c.send(data)
    reply = c.reply()
    assert str(reply) == "ERR Protocol error: " + expect, reply
    assert c.closed()
    c.close()


def test_protocol_errors(server):
    bad(server, b"*abc\r\n", "invalid multibulk length")
    bad(server, b"*99999999999\r\n", "invalid multibulk length")
    bad(server, b"*2\r\n$-1\r\n", "invalid bulk length")
    bad(server, b"*1\r\n$x\r\n", "invalid bulk length")
    bad(server, b"*1\r\n$99999999999999\r\n", "invalid bulk length")
    bad(server, b"*1\r\n$1073741824\r\n", "invalid bulk length")  # > proto-max-bulk-len
    bad(server, b"*1\r\n+PING\r\n", "expected '$', got '+'")
    bad(server, b"*1\r\n" + b"$" + b"1" * 70000, "too big bulk count string")
    bad(server, b"*" + b"1" * 70000, "too big mbulk count string")
    bad(server, b"x" * 70000, "too big inline request")


def test_binary_junk_then_others_still_served(server):
    """Random bytes parse as inline commands (unknown-command errors) or as
    broken multibulk requests (protocol error, closed): either way the
    server survives and serves a well-behaved client meanwhile."""
    for seed in range(40):
        c = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        junk = os.urandom(500 + seed * 100)
        if seed % 2:
            junk = b"*" + junk
        try:
            c.sendall(junk + b"\r\n")
            c.settimeout(0.05)
            while c.recv(65536):
                pass
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            pass
        c.close()
        assert server.client().ping() is True


def test_half_request_then_silence(server):
    """A client that sends half a request and waits: others are served, and
    the half request completes when the rest arrives."""
    c = server.raw()
    c.send(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$10\r\n01234")
    other = server.client()
    assert other.set("other", "ok") is True
    assert other.get("half") is None
    c.send(b"56789\r\n")
    assert c.reply() == "OK"
    assert other.get("half") == b"0123456789"


def test_many_connections_at_once(server):
    conns = [server.raw() for _ in range(200)]
    for i, c in enumerate(conns):
        c.send(encode("SET", "c%d" % i, str(i)))
    for c in conns:
        assert c.reply() == "OK"
    for c in conns:
        c.close()
    assert server.client().dbsize() == 200


def test_reader_that_never_reads(server):
    """A pipelining client that does not read its replies is paused, not
    buffered without end; it resumes when it reads."""
    c = server.raw()
    value = b"v" * 1000
    assert c.command("SET", "big", value) == "OK"
    n = 20000  # ~20 MB of replies
    req = encode("GET", "big")
    c.sock.sendall(req * 1000)
    sent = 1000
    c.sock.setblocking(False)
    try:
        while sent < n:
            c.sock.send(req * 100)
            sent += 100
    except BlockingIOError:
        pass
    c.sock.setblocking(True)
    c.sock.settimeout(20)
    assert server.client().ping() is True
    for _ in range(sent):
        assert c.reply() == value
    c.close()


def test_eof_after_request_still_answered(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(encode("SET", "eof", "1") + encode("GET", "eof"))
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(1000)
        if not chunk:
            break
        data += chunk
    assert data == b"+OK\r\n$1\r\n1\r\n"
    s.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.skipif("asan" in BUILD, reason="AddressSanitizer's quarantine holds freed memory")
def test_hostile_clients_do_not_grow_memory(make_server):
    """Rounds of hostile clients (huge declared sizes, half requests left
    hanging, junk) leave the server's memory where it was."""
    s = make_server()
    pid = s.proc.pid

    def round_of_abuse():
        conns = []
        for i in range(30):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            kind = i % 3
            if kind == 0:
                c.sendall(b"*2\r\n$3\r\nSET\r\n$60000000\r\n" + b"x" * 200000)  # 60 MB promised
            elif kind == 1:
                c.sendall(b"*1000000\r\n$1\r\na\r\n")  # a million arguments promised
            else:
                c.sendall(os.urandom(5000))
            conns.append(c)
        assert s.client().ping() is True
        for c in conns:
            c.close()

    round_of_abuse()
    time.sleep(0.3)
    before = rss_kb(pid)
    for _ in range(5):
        round_of_abuse()
    time.sleep(0.3)
    after = rss_kb(pid)
    assert after - before < 16 * 1024, (before, after)
