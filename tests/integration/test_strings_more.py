"""More string commands: GETEX (EX PX EXAT PXAT PERSIST), GETRANGE,
SETRANGE and INCRBYFLOAT (Redis's float formatting), with their error
cases worded as Redis words them."""
import threading
import time

import pytest
import redis


def err(fn, *args, **kw):
    with pytest.raises(redis.ResponseError) as e:
        fn(*args, **kw)
    return str(e.value)


def test_getex(r):
    assert r.getex("nope") is None
    assert r.getex("nope", ex=10) is None
    assert r.exists("nope") == 0
    r.set("k", "v")
    assert r.getex("k") == "v" and r.ttl("k") == -1
    assert r.getex("k", ex=100) == "v" and 99 <= r.ttl("k") <= 100
    assert r.getex("k", px=50000) == "v" and 49000 < r.pttl("k") <= 50000
    at = int(time.time()) + 500
    assert r.getex("k", exat=at) == "v" and r.execute_command("EXPIRETIME", "k") == at
    pat = int(time.time() * 1000) + 600000
    assert r.getex("k", pxat=pat) == "v" and r.execute_command("PEXPIRETIME", "k") == pat
    assert r.getex("k", persist=True) == "v" and r.ttl("k") == -1
    assert r.getex("k", persist=True) == "v"  # no expiry to drop: fine
    # An absolute time in the past deletes the key, after returning it.
    assert r.getex("k", exat=int(time.time()) - 10) == "v"
    assert r.exists("k") == 0


def test_getex_errors(r):
    r.set("k", "v")
    assert err(r.execute_command, "GETEX", "k", "EX", "0") == \
        "invalid expire time in 'getex' command"
    assert err(r.execute_command, "GETEX", "k", "PX", "-5") == \
        "invalid expire time in 'getex' command"
    assert err(r.execute_command, "GETEX", "k", "EX", "x") == \
        "value is not an integer or out of range"
    assert err(r.execute_command, "GETEX", "k", "EX", "10", "PX", "10") == "syntax error"
    assert err(r.execute_command, "GETEX", "k", "PERSIST", "EX", "10") == "syntax error"
    assert err(r.execute_command, "GETEX", "k", "EX") == "syntax error"
    assert err(r.execute_command, "GETEX", "k", "BOGUS") == "syntax error"
    assert r.ttl("k") == -1


def test_getrange(r):
    r.set("s", "This is a string")
    assert r.getrange("s", 0, 3) == "This"
    assert r.getrange("s", -3, -1) == "ing"
    assert r.getrange("s", 0, -1) == "This is a string"
    assert r.getrange("s", 10, 100) == "string"
    assert r.getrange("s", 5, 3) == ""
    assert r.getrange("s", -100, 3) == "This"
    assert r.getrange("s", -1, -5) == ""
    assert r.getrange("nope", 0, -1) == ""
    r.set("e", "")
    assert r.getrange("e", 0, -1) == ""
    assert err(r.getrange, "s", "a", 1) == "value is not an integer or out of range"


def test_setrange(r):
    r.set("k", "Hello World")
    assert r.setrange("k", 6, "Redis") == 11
    assert r.get("k") == "Hello Redis"
    assert r.setrange("pad", 5, "x") == 6
    assert r.get("pad") == "\x00" * 5 + "x"
    assert r.setrange("k", 0, "") == 11  # nothing to write: the length
    assert r.setrange("none", 3, "") == 0
    assert r.exists("none") == 0  # an empty write creates nothing
    r.set("t", "abc", ex=100)
    assert r.setrange("t", 1, "ZZZZ") == 5
    assert r.get("t") == "aZZZZ" and r.ttl("t") > 90  # the TTL stays
    assert err(r.setrange, "k", -1, "x") == "offset is out of range"
    assert err(r.setrange, "k", 64 << 20, "x") == \
        "string exceeds maximum allowed size (proto-max-bulk-len)"
    assert err(r.execute_command, "SETRANGE", "k", "x", "y") == \
        "value is not an integer or out of range"


def test_incrbyfloat(r, raw):
    def incr(k, by):  # the exact reply bytes, not redis-py's float
        return raw.command("INCRBYFLOAT", k, by)
    assert incr("f", "10.5") == b"10.5"
    assert incr("f", "0.1") == b"10.6"
    assert incr("f", "-5") == b"5.6"
    assert r.get("f") == "5.6"
    r.set("g", "5.0e3")
    assert incr("g", "2.0e2") == b"5200"
    r.set("h", "3")
    assert incr("h", "1.5") == b"4.5"
    assert incr("h", "-4.5") == b"0"
    assert r.get("h") == "0"
    assert incr("n", "-0.0") == b"0"  # never "-0"
    assert incr("tiny", "0.00000000000000001") == b"0.00000000000000001"
    assert r.incrbyfloat("py", 2.5) == 2.5
    r.set("t", "1", ex=100)
    r.incrbyfloat("t", 1)
    assert r.ttl("t") > 90


def test_incrbyfloat_errors(r):
    r.set("s", "abc")
    assert err(r.incrbyfloat, "s", 1) == "value is not a valid float"
    assert err(r.execute_command, "INCRBYFLOAT", "f", "x") == "value is not a valid float"
    assert err(r.execute_command, "INCRBYFLOAT", "f", " 1") == "value is not a valid float"
    assert err(r.execute_command, "INCRBYFLOAT", "f", "nan") == "value is not a valid float"
    assert err(r.execute_command, "INCRBYFLOAT", "f", "inf") == \
        "increment would produce NaN or Infinity"
    r.set("big", "1.1e4932")
    assert err(r.execute_command, "INCRBYFLOAT", "big", "1.1e4932") == \
        "increment would produce NaN or Infinity"
    assert r.exists("f") == 0


def test_incrbyfloat_concurrent(server, r):
    r.set("f", "0")

    def worker():
        c = server.client()
        for _ in range(100):
            c.incrbyfloat("f", 0.5)
        c.close()
    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert r.get("f") == "200"
