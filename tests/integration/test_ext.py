"""What Trove adds to Redis (docs/COMMANDS.md, "Trove extensions"):
ordered range reads (TRANGE), versions (TGETV, TSETV, SET ... IFVER), and
the conditional writes Valkey and Redis 8 spell SET ... IFEQ, SET ...
IFNE, DELIFEQ and DELEX."""
import threading

import pytest
import redis


def err(fn, *args):
    with pytest.raises(redis.ResponseError) as e:
        fn(*args)
    return str(e.value)


def trange(r, *args):
    return r.execute_command("TRANGE", *args)


# ---- TRANGE ------------------------------------------------------------------------------

def test_trange_bounds(r):
    r.mset({"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"})
    assert trange(r, "-", "+") == [None, ["a", "1", "b", "2", "c", "3", "d", "4", "e", "5"]]
    assert trange(r, "[b", "[d") == [None, ["b", "2", "c", "3", "d", "4"]]
    assert trange(r, "(b", "(d") == [None, ["c", "3"]]
    assert trange(r, "[b", "(b") == [None, []]
    assert trange(r, "[bb", "+") == [None, ["c", "3", "d", "4", "e", "5"]]
    assert trange(r, "-", "[") == [None, []]  # "[" is the empty key: nothing sorts below
    assert trange(r, "[d", "[b") == [None, []]  # start after end
    assert trange(r, "+", "-") == [None, []]
    assert trange(r, "[a", "[e", "NOVALUES") == [None, ["a", "b", "c", "d", "e"]]


def test_trange_reverse(r):
    r.mset({"a": "1", "b": "2", "c": "3", "d": "4"})
    assert trange(r, "+", "-", "REV") == [None, ["d", "4", "c", "3", "b", "2", "a", "1"]]
    assert trange(r, "(d", "[b", "REV") == [None, ["c", "3", "b", "2"]]
    assert trange(r, "[b", "[d", "REV") == [None, []]  # REV: start is the high bound
    assert trange(r, "+", "(a", "REV", "NOVALUES") == [None, ["d", "c", "b"]]


def test_trange_pages_forward_and_reverse(r):
    keys = ["k%03d" % i for i in range(103)]
    r.mset({k: k.upper() for k in keys})
    for rev in (False, True):
        start, end = ("+", "-") if rev else ("-", "+")
        got, pages = [], 0
        while True:
            args = [start, end, "LIMIT", 10] + (["REV"] if rev else [])
            nxt, items = trange(r, *args)
            got += items[0::2]
            assert items[1::2] == [k.upper() for k in items[0::2]]
            pages += 1
            if nxt is None:
                break
            assert nxt == "(" + items[-2]  # the continuation is the last key, exclusive
            start = nxt
        assert got == (keys[::-1] if rev else keys)
        assert pages == 11  # the last page says nil: no empty extra call


def test_trange_binary_and_databases(server):
    c = server.client(db=7)
    c.set(b"\x00", b"zero")
    c.set(b"\xff\xff", b"top")
    c.set(b"m\r\n", b"mid")
    assert c.execute_command("TRANGE", "-", "+") == [
        None, [b"\x00", b"zero", b"m\r\n", b"mid", b"\xff\xff", b"top"]]
    assert c.execute_command("TRANGE", b"(\x00", b"(\xff") == [None, [b"m\r\n", b"mid"]]
    c0 = server.client()
    assert c0.execute_command("TRANGE", "-", "+") == [None, []]  # database 0 is separate
    c.close()
    c0.close()


def test_trange_default_limit(r):
    r.mset({"k%04d" % i: "v" for i in range(1005)})
    nxt, items = trange(r, "-", "+", "NOVALUES")
    assert len(items) == 1000 and nxt == "(k0999"
    assert trange(r, nxt, "+", "NOVALUES") == [None, ["k%04d" % i for i in range(1000, 1005)]]


def test_trange_errors(r):
    bad = "min or max not valid string range item"
    assert err(trange, r, "a", "+") == bad
    assert err(trange, r, "-", "") == bad
    assert err(trange, r, "--", "+") == bad
    assert err(trange, r, "-", "+", "LIMIT", "0") == "LIMIT must be at least 1"
    assert err(trange, r, "-", "+", "LIMIT", "x") == "value is not an integer or out of range"
    assert err(trange, r, "-", "+", "LIMIT") == "syntax error"
    assert err(trange, r, "-", "+", "WITHSCORES") == "syntax error"
    assert err(r.execute_command, "TRANGE", "-") == \
        "wrong number of arguments for 'trange' command"


# ---- Versions ------------------------------------------------------------------------------

def test_tgetv_tsetv(r):
    assert r.execute_command("TGETV", "k") is None
    v1 = r.execute_command("TSETV", "k", "a", 0)  # 0: only if absent
    assert v1 > 0
    assert r.execute_command("TGETV", "k") == ["a", v1]
    assert r.execute_command("TSETV", "k", "b", 0) is None
    assert r.execute_command("TSETV", "k", "b", v1 + 1000) is None
    v2 = r.execute_command("TSETV", "k", "b", v1)
    assert v2 > v1
    assert r.execute_command("TSETV", "k", "c", v1) is None  # stale version
    assert r.get("k") == "b"
    r.set("k", "plain")  # any write changes the version
    v3 = r.execute_command("TGETV", "k")[1]
    assert v3 > v2
    r.incr("n")
    assert r.execute_command("TGETV", "n")[1] > v3  # versions grow across keys


def test_tsetv_options_and_errors(r):
    v = r.execute_command("TSETV", "k", "a", 0, "EX", 100)
    assert 99 <= r.ttl("k") <= 100
    v = r.execute_command("TSETV", "k", "b", v, "KEEPTTL")
    assert r.ttl("k") > 90
    r.execute_command("TSETV", "k", "c", v, "PX", 5000)
    assert 4000 < r.pttl("k") <= 5000
    assert err(r.execute_command, "TSETV", "k", "x", "-1") == \
        "version is not an integer or out of range"
    assert err(r.execute_command, "TSETV", "k", "x", "abc") == \
        "version is not an integer or out of range"
    assert err(r.execute_command, "TSETV", "k", "x", "1", "NX") == "syntax error"
    assert err(r.execute_command, "TSETV", "k", "x", "1", "GET") == "syntax error"
    assert err(r.execute_command, "TSETV", "k", "x", "1", "EX", "0") == \
        "invalid expire time in 'tsetv' command"
    assert err(r.execute_command, "TSETV", "k", "x") == \
        "wrong number of arguments for 'tsetv' command"


def test_set_ifver(r, raw):
    r.set("k", "a")
    v = r.execute_command("TGETV", "k")[1]
    assert raw.command("SET", "k", "b", "IFVER", str(v + 1)) is None
    assert raw.command("SET", "k", "b", "IFVER", str(v)) == "OK"
    assert raw.command("SET", "k", "c", "IFVER", str(v)) is None
    assert raw.command("SET", "new", "x", "IFVER", "0") == "OK"  # 0: absent
    v = r.execute_command("TGETV", "k")[1]
    assert raw.command("SET", "k", "d", "IFVER", str(v), "GET") == b"b"
    assert raw.command("SET", "k", "e", "IFVER", str(v), "GET") == b"d"  # not set
    assert r.get("k") == "d"


def test_cas_loop_with_versions(server, r):
    """Compare-and-swap increments from several clients: no update lost."""
    r.set("ctr", "0")

    def worker():
        c = server.client()
        for _ in range(50):
            while True:
                val, ver = c.execute_command("TGETV", "ctr")
                if c.execute_command("TSETV", "ctr", int(val) + 1, ver) is not None:
                    break
        c.close()
    ts = [threading.Thread(target=worker) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert r.get("ctr") == "300"


# ---- IFEQ, IFNE, DELIFEQ, DELEX --------------------------------------------------------------

def test_set_ifeq(r, raw):
    assert raw.command("SET", "k", "v", "IFEQ", "x") is None
    assert r.exists("k") == 0  # IFEQ never creates a key
    r.set("k", "old", ex=100)
    assert raw.command("SET", "k", "new", "IFEQ", "nope") is None
    assert raw.command("SET", "k", "new", "IFEQ", "old") == "OK"
    assert r.get("k") == "new" and r.ttl("k") == -1  # a SET drops the TTL...
    assert raw.command("SET", "k", "n2", "IFEQ", "new", "KEEPTTL") == "OK"
    assert raw.command("SET", "k", "n3", "IFEQ", "n2", "EX", "50") == "OK"
    assert 49 <= r.ttl("k") <= 50
    assert raw.command("SET", "k", "n4", "IFEQ", "n3", "GET") == b"n3"
    assert raw.command("SET", "k", "n5", "IFEQ", "zz", "GET") == b"n4"  # not set
    assert r.get("k") == "n4"
    assert raw.command("SET", "nokey", "v", "IFEQ", "a", "GET") is None


def test_set_ifne(r, raw):
    assert raw.command("SET", "k", "v", "IFNE", "x") == "OK"  # absent differs: set
    assert raw.command("SET", "k", "w", "IFNE", "v") is None
    assert raw.command("SET", "k", "w", "IFNE", "other") == "OK"
    assert raw.command("SET", "k", "z", "IFNE", "w", "GET") == b"w"
    assert r.get("k") == "w"


def test_set_condition_conflicts(r):
    for args in (["NX", "IFEQ", "a"], ["IFEQ", "a", "XX"], ["IFEQ", "a", "IFNE", "b"],
                 ["IFVER", "1", "NX"], ["IFEQ"], ["IFVER"], ["NX", "XX"]):
        assert err(r.execute_command, "SET", "k", "v", *args) == "syntax error", args
    assert err(r.execute_command, "SET", "k", "v", "IFVER", "x") == \
        "version is not an integer or out of range"


def test_delifeq(r):
    assert r.execute_command("DELIFEQ", "lock", "me") == 0
    r.set("lock", "me")
    assert r.execute_command("DELIFEQ", "lock", "you") == 0
    assert r.exists("lock") == 1
    assert r.execute_command("DELIFEQ", "lock", "me") == 1
    assert r.exists("lock") == 0
    assert err(r.execute_command, "DELIFEQ", "lock") == \
        "wrong number of arguments for 'delifeq' command"


def test_delex(r):
    r.mset({"a": "1", "b": "2", "c": "3", "d": "4"})
    assert r.execute_command("DELEX", "a") == 1
    assert r.execute_command("DELEX", "a") == 0
    assert r.execute_command("DELEX", "b", "IFEQ", "x") == 0
    assert r.execute_command("DELEX", "b", "IFEQ", "2") == 1
    assert r.execute_command("DELEX", "c", "IFNE", "3") == 0
    assert r.execute_command("DELEX", "c", "IFNE", "x") == 1
    assert r.execute_command("DELEX", "missing", "IFNE", "x") == 0
    v = r.execute_command("TGETV", "d")[1]
    assert r.execute_command("DELEX", "d", "IFVER", v + 1) == 0
    assert r.execute_command("DELEX", "d", "IFVER", v) == 1
    assert r.keys("*") == []
    assert err(r.execute_command, "DELEX", "d", "IFEQ") == "syntax error"
    assert err(r.execute_command, "DELEX", "d", "IFDEQ", "abc") == "syntax error"
    assert err(r.execute_command, "DELEX", "d", "IFEQ", "a", "b") == "syntax error"


def test_extensions_in_command_table(raw):
    names = ["trange", "tgetv", "tsetv", "delifeq", "delex"]
    info = raw.command("COMMAND", "INFO", *names)
    assert [i[0] for i in info] == [n.encode() for n in names]
    assert info[0][1] == -3 and "readonly" in info[0][2]
    assert info[2][1] == -4 and "write" in info[2][2]


def test_range_reads_respect_key_acls(make_server):
    """A user limited to some keys sees only those in TRANGE, SCAN and
    RANDOMKEY, as in KEYS."""
    s = make_server()
    admin = s.client(decode_responses=True)
    admin.mset({"pub:1": "a", "pub:2": "b", "secret:1": "x", "zzz": "y"})
    admin.execute_command("ACL", "SETUSER", "reader", "on", ">pw", "~pub:*", "+@all")
    u = s.client(decode_responses=True, username="reader", password="pw")
    assert u.execute_command("TRANGE", "-", "+") == [None, ["pub:1", "a", "pub:2", "b"]]
    assert u.scan(0, count=100) == (0, ["pub:1", "pub:2"])
    assert {u.randomkey() for _ in range(20)} <= {"pub:1", "pub:2", None}
    with pytest.raises(redis.ResponseError) as e:
        u.execute_command("TGETV", "secret:1")
    assert str(e.value).startswith("this user has no permissions to access one of the keys")
    u.close()
    admin.close()


def test_resp3_shapes(server, r):
    r.mset({"a": "1", "b": "2"})
    c = server.raw()
    c.command("HELLO", "3")
    assert c.command("TRANGE", "-", "+", "LIMIT", "1") == [b"(a", [b"a", b"1"]]
    assert c.command("TRANGE", "(a", "+") == [None, [b"b", b"2"]]  # RESP3 null
    assert c.command("TGETV", "nope") is None
    assert c.command("TGETV", "a")[0] == b"1"
    assert c.command("SCAN", "0") == [b"0", [b"a", b"b"]]
    assert c.command("INCRBYFLOAT", "f", "1.5") == b"1.5"
    c.close()
