"""Limits for clients that hold the server's resources: a request begun and
never finished (slowloris) is dropped after request-timeout, a client that
does not read its replies is dropped past client-output-buffer-limit (hard
at once, soft after its seconds), each with a clear log line, while other
clients go on being served."""
import socket
import time

from conftest import encode


def wait_for(pred, secs=6):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_slowloris_partial_request_is_dropped(make_server):
    s = make_server("--request-timeout", "1")
    slow = s.raw()
    slow.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")  # and then nothing more
    idle = s.raw()  # no request begun: request-timeout leaves it alone
    t = time.time()
    assert slow.closed(timeout=5)
    assert 1 <= time.time() - t < 4
    assert wait_for(lambda: "still incomplete" in s.logtext())
    assert "request-timeout 1 s" in s.logtext()
    assert idle.command("PING") == "PONG"
    # Trickling bytes does not reset the deadline: it counts from the start.
    drip = s.raw()
    drip.send(b"*2\r\n$4\r\nECHO\r\n$100\r\n")
    t = time.time()
    closed = False
    while time.time() - t < 4 and not closed:
        try:
            drip.send(b"x")
        except OSError:
            closed = True
        time.sleep(0.2)
    assert closed or drip.closed(timeout=1)
    assert s.client().get("k") is None  # the partial SET never ran


def test_request_timeout_can_change_at_run_time(make_server):
    s = make_server()
    c = s.client(decode_responses=True)
    assert c.config_get("request-timeout") == {"request-timeout": "30"}
    assert c.config_set("request-timeout", "1") is True
    slow = s.raw()
    slow.send(b"*1\r\n$4\r\nPI")
    assert slow.closed(timeout=5)
    assert c.config_set("request-timeout", "0") is True  # 0: never
    patient = s.raw()
    patient.send(b"*1\r\n$4\r\nPI")
    time.sleep(2.2)
    patient.send(b"NG\r\n")
    assert patient.reply() == "PONG"


def unread_gets(s, n, key):
    """A socket that asks for key n times and never reads the answers (its
    receive window is tiny, so the replies pile up in the server)."""
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(encode("GET", key) * n)
    return sock


def connected(c, sock):
    """True while the server still lists sock's connection."""
    addr = "%s:%d" % sock.getsockname()
    return ("addr=%s " % addr) in c.execute_command("CLIENT", "LIST").decode()


def test_output_buffer_hard_limit(make_server):
    s = make_server("--client-output-buffer-limit", "normal", "1mb", "0", "0")
    c = s.client()
    c.set("big", b"x" * (300 << 10))
    sock = unread_gets(s, 40, "big")  # 12 MB of replies nobody reads
    assert wait_for(lambda: "overcoming of output buffer limits" in s.logtext())
    assert wait_for(lambda: not connected(c, sock))
    assert "client-output-buffer-limit normal 1048576 0 0" in s.logtext()
    assert c.ping() is True
    # A client that reads its replies as they come keeps its connection.
    reader = s.client()
    for _ in range(40):
        assert len(reader.get("big")) == 300 << 10
    reader.close()
    sock.close()


def test_output_buffer_soft_limit_and_config_set(make_server):
    s = make_server()
    c = s.client()
    c.set("big", b"y" * (300 << 10))
    assert c.config_set("client-output-buffer-limit", "normal 0 100kb 1") is True
    # 9 MB asked for: more than the kernel's socket buffers take, so some
    # stays pending in the server, over the soft limit, until it is closed
    # a second or two later.
    sock = unread_gets(s, 30, "big")
    t = time.time()
    assert wait_for(lambda: connected(c, sock))
    assert wait_for(lambda: "overcoming of output buffer limits" in s.logtext())
    assert time.time() - t >= 0.9
    assert wait_for(lambda: not connected(c, sock))
    sock.close()
    # Without a limit (Redis's default for normal clients) such a client
    # stays, paused until it reads.
    assert c.config_set("client-output-buffer-limit", "normal 0 0 0") is True
    sock2 = unread_gets(s, 30, "big")
    assert wait_for(lambda: connected(c, sock2))
    time.sleep(2.2)
    assert connected(c, sock2)
    sock2.close()
