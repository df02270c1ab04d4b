"""Keyspace commands: SCAN (cursor, MATCH, COUNT, TYPE), RANDOMKEY, RENAME,
RENAMENX, COPY (DB, REPLACE), MOVE, TOUCH, and SWAPDB's refusal.

Trove's SCAN cursor is the last key examined, in decimal digits ("1" then
three digits per byte), so a full iteration returns every key exactly
once, in key order, and a cursor survives a restart."""
import time

import pytest
import redis


def err(fn, *args, **kw):
    with pytest.raises(redis.ResponseError) as e:
        fn(*args, **kw)
    return str(e.value)


def full_scan(c, **kw):
    cursor, out, calls = 0, [], 0
    while True:
        cursor, keys = c.scan(cursor, **kw)
        out += keys
        calls += 1
        if cursor == 0:
            return out, calls


def test_scan_returns_every_key_once_in_order(r):
    keys = ["k%03d" % i for i in range(250)]
    r.mset({k: "v" for k in keys})
    for count in (1, 7, 10, 100, 1000):
        got, calls = full_scan(r, count=count)
        assert got == keys
        assert calls == -(-250 // count)  # the last page says 0: no empty extra call
    assert list(r.scan_iter(count=33)) == keys
    assert r.scan(0, count=1000) == (0, keys)


def test_scan_cursor_encoding(r):
    r.mset({"a": 1, "b": 2, "c": 3})
    cur, keys = r.scan(0, count=1)
    assert keys == ["a"] and cur == 1097  # "1" + "097": the key "a"
    cur, keys = r.scan(cur, count=1)
    assert keys == ["b"] and cur == 1098
    assert r.scan(cur, count=1) == (0, ["c"])
    # A cursor naming a key that was deleted still resumes after it.
    r.delete("b")
    assert r.scan(1097, count=5) == (0, ["c"])
    # Binary keys round-trip through the digits.
    c = redis.Redis(port=r.connection_pool.connection_kwargs["port"])
    c.flushall()
    bkeys = [b"\x00", b"\x00\xff", b"\xff\xfe\r\n", b"key\x00x"]
    for k in bkeys:
        c.set(k, "v")
    got, _ = full_scan(c, count=1)
    assert got == sorted(bkeys)
    assert c.scan(0, count=1)[0] == 1000
    c.close()


def test_scan_match_and_type(r):
    r.mset({"user:1": 1, "user:2": 2, "user:10": 3, "item:1": 4, "usex": 5})
    got, _ = full_scan(r, match="user:*", count=2)
    assert got == ["user:1", "user:10", "user:2"]
    got, _ = full_scan(r, match="*1", count=3)
    assert got == ["item:1", "user:1"]
    got, _ = full_scan(r, match="u?e?:[12]", count=100)
    assert got == ["user:1", "user:2"]
    got, _ = full_scan(r, _type="string")
    assert len(got) == 5
    assert r.scan(0, _type="list") == (0, [])
    assert r.scan(0, _type="hash", match="user:*") == (0, [])


def test_scan_errors(r):
    assert err(r.execute_command, "SCAN", "abc") == "invalid cursor"
    assert err(r.execute_command, "SCAN", "12") == "invalid cursor"  # not 1 + 3k digits
    assert err(r.execute_command, "SCAN", "1999") == "invalid cursor"  # 999 > 255
    assert err(r.execute_command, "SCAN", "0", "COUNT", "0") == "syntax error"
    assert err(r.execute_command, "SCAN", "0", "COUNT", "x") == \
        "value is not an integer or out of range"
    assert err(r.execute_command, "SCAN", "0", "MATCH") == "syntax error"
    assert err(r.execute_command, "SCAN", "0", "BOGUS", "1") == "syntax error"
    assert err(r.execute_command, "SCAN") == "wrong number of arguments for 'scan' command"


def test_scan_per_database_and_expired(server):
    c = server.client(decode_responses=True, db=4)
    c.set("only-in-4", 1)
    c.set("short", 1, px=50)
    time.sleep(0.1)
    assert c.scan(0) == (0, ["only-in-4"])
    c0 = server.client(decode_responses=True)
    assert c0.scan(0) == (0, [])
    c.close()
    c0.close()


def test_randomkey(r):
    assert r.randomkey() is None
    keys = ["k%02d" % i for i in range(40)] + ["user:%d" % i for i in range(40)]
    r.mset({k: 1 for k in keys})
    seen = {r.randomkey() for _ in range(300)}
    assert seen <= set(keys)
    assert len(seen) >= 20  # not uniform, but every part of the keyspace comes up
    r.flushdb()
    r.set("one", 1)
    assert r.randomkey() == "one"
    r.set("on", 1)  # a key that is a prefix of another
    assert {r.randomkey() for _ in range(60)} == {"one", "on"}


def test_rename(r):
    r.set("a", "1", ex=100)
    assert r.rename("a", "b") is True
    assert r.exists("a") == 0 and r.get("b") == "1"
    assert 98 <= r.ttl("b") <= 100  # the TTL moves with the value
    r.set("c", "3")
    assert r.rename("b", "c") is True  # overwrites, and its TTL with it
    assert r.get("c") == "1" and r.ttl("c") > 0
    assert r.rename("c", "c") is True  # onto itself: nothing happens
    assert r.get("c") == "1"
    assert err(r.rename, "nope", "x") == "no such key"
    assert err(r.rename, "nope", "nope") == "no such key"
    assert err(r.execute_command, "RENAME", "a") == \
        "wrong number of arguments for 'rename' command"


def test_renamenx(r):
    r.mset({"a": "1", "b": "2"})
    assert r.renamenx("a", "b") is False
    assert r.mget("a", "b") == ["1", "2"]
    assert r.renamenx("a", "c") is True
    assert r.mget("a", "c") == [None, "1"]
    assert r.renamenx("c", "c") is False
    assert err(r.renamenx, "nope", "x") == "no such key"


def test_copy(r, server):
    r.set("src", "v", ex=100)
    assert r.copy("src", "dst") is True
    assert r.get("dst") == "v" and r.ttl("dst") > 90 and r.get("src") == "v"
    r.set("src", "w")
    assert r.copy("src", "dst") is False
    assert r.get("dst") == "v"
    assert r.copy("src", "dst", replace=True) is True
    assert r.get("dst") == "w" and r.ttl("dst") == -1
    assert r.copy("nope", "dst2") is False
    assert r.copy("src", "src", destination_db=3) is True
    c3 = server.client(decode_responses=True, db=3)
    assert c3.get("src") == "w"
    c3.close()
    assert err(r.copy, "src", "src") == "source and destination objects are the same"
    assert err(r.execute_command, "COPY", "src", "x", "DB", "16") == "DB index is out of range"
    assert err(r.execute_command, "COPY", "src", "x", "DB", "z") == \
        "value is not an integer or out of range"
    assert err(r.execute_command, "COPY", "src", "x", "BOGUS") == "syntax error"


def test_move(r, server):
    r.set("m", "v", px=100000)
    assert r.move("m", 2) is True
    assert r.exists("m") == 0
    c2 = server.client(decode_responses=True, db=2)
    assert c2.get("m") == "v" and c2.pttl("m") > 90000
    r.set("m", "again")
    assert r.move("m", 2) is False  # the destination has it: nothing moves
    assert r.get("m") == "again" and c2.get("m") == "v"
    assert r.move("nope", 2) is False
    c2.close()
    assert err(r.move, "m", 0) == "source and destination objects are the same"
    assert err(r.move, "m", 16) == "DB index is out of range"
    assert err(r.execute_command, "MOVE", "m", "x") == "value is not an integer or out of range"


def test_touch(r):
    r.mset({"a": 1, "b": 2})
    assert r.touch("a", "b", "nope", "a") == 3
    assert r.touch("nope") == 0


def test_swapdb_refused(r):
    e = err(r.swapdb, 0, 1)
    assert e.startswith("SWAPDB is not supported")
    assert err(r.execute_command, "SWAPDB", "x", "1") == "invalid first DB index"
    assert err(r.execute_command, "SWAPDB", "0", "y") == "invalid second DB index"
    assert err(r.execute_command, "SWAPDB", "0", "99") == "DB index is out of range"


def test_rename_is_atomic_under_contention(server, r):
    """Two clients renaming the same key back and forth: no value is ever
    lost or duplicated."""
    import threading
    r.set("p", "token")

    def flip(a, b):
        c = server.client()
        for _ in range(100):
            try:
                c.rename(a, b)
            except redis.ResponseError:
                pass  # the other side has it now
        c.close()
    ts = [threading.Thread(target=flip, args=("p", "q")),
          threading.Thread(target=flip, args=("q", "p"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(k for k in r.keys("*")) in (["p"], ["q"])
    assert r.get(r.keys("*")[0]) == "token"
