"""String commands against a real troved, through redis-py: GET SET (every
option) SETNX SETEX PSETEX GETSET GETDEL MGET MSET MSETNX APPEND STRLEN INCR
DECR INCRBY DECRBY, with their error cases worded as Redis words them."""
import threading
import time

import pytest
import redis

ERR_INT = "value is not an integer or out of range"


def err(fn, *args):
    with pytest.raises(redis.ResponseError) as e:
        fn(*args)
    return str(e.value)


def test_get_set_basic(r):
    assert r.get("missing") is None
    assert r.set("k", "v") is True
    assert r.get("k") == "v"
    assert r.set("k", "w") is True
    assert r.get("k") == "w"


def test_binary_and_empty_values(server):
    c = server.client()
    blob = bytes(range(256)) * 4 + b"\r\n\x00end"
    c.set(b"bin\x00key\r\n", blob)
    assert c.get(b"bin\x00key\r\n") == blob
    c.set("empty", b"")
    assert c.get("empty") == b""
    assert c.exists("empty") == 1
    assert c.strlen("empty") == 0
    c.set(b"", b"empty key")
    assert c.get(b"") == b"empty key"


def test_set_nx_xx(r):
    assert r.set("k", "1", nx=True) is True
    assert r.set("k", "2", nx=True) is None
    assert r.get("k") == "1"
    assert r.set("k", "3", xx=True) is True
    assert r.get("k") == "3"
    assert r.set("other", "x", xx=True) is None
    assert r.exists("other") == 0


def test_set_get_option(r, raw):
    assert r.set("k", "1", get=True) is None
    assert r.set("k", "2", get=True) == "1"
    assert r.get("k") == "2"
    # NX with GET: not set, but the old value comes back (Redis 7).
    # (raw: redis-py turns any SET reply that is not OK into False)
    assert raw.command("SET", "k", "3", "NX", "GET") == b"2"
    assert r.get("k") == "2"
    assert raw.command("SET", "k", "4", "XX", "GET") == b"2"
    assert r.get("k") == "4"
    assert raw.command("SET", "nope", "3", "XX", "GET") is None
    assert r.exists("nope") == 0


def test_set_expiry_options(r):
    r.set("ex", "v", ex=100)
    assert 99 <= r.ttl("ex") <= 100
    r.set("px", "v", px=100000)
    assert 99000 <= r.pttl("px") <= 100000
    r.set("exat", "v", exat=int(time.time()) + 200)
    assert 198 <= r.ttl("exat") <= 200
    r.set("pxat", "v", pxat=int(time.time() * 1000) + 300000)
    assert 298 <= r.ttl("pxat") <= 300
    r.set("plain", "v")
    assert r.ttl("plain") == -1


def test_set_keepttl_and_plain_set_clears_ttl(r):
    r.set("k", "v", ex=100)
    r.set("k", "w", keepttl=True)
    assert r.get("k") == "w"
    assert 99 <= r.ttl("k") <= 100
    r.set("k", "x")
    assert r.ttl("k") == -1


def test_set_expire_in_past_removes_key(r):
    r.set("k", "v")
    assert r.set("k", "v2", exat=int(time.time()) - 10) is True
    assert r.get("k") is None
    assert r.exists("k") == 0


def test_set_expires_for_real(r):
    r.set("k", "v", px=100)
    assert r.get("k") == "v"
    time.sleep(0.25)
    assert r.get("k") is None
    assert r.ttl("k") == -2


def test_set_syntax_errors(r):
    x = r.execute_command
    assert err(x, "SET", "k", "v", "NX", "XX") == "syntax error"
    assert err(x, "SET", "k", "v", "XX", "NX") == "syntax error"
    assert err(x, "SET", "k", "v", "EX") == "syntax error"
    assert err(x, "SET", "k", "v", "EX", "10", "PX", "100") == "syntax error"
    assert err(x, "SET", "k", "v", "KEEPTTL", "EX", "10") == "syntax error"
    assert err(x, "SET", "k", "v", "EX", "10", "KEEPTTL") == "syntax error"
    assert err(x, "SET", "k", "v", "BOGUS") == "syntax error"
    assert err(x, "SET", "k", "v", "EX", "abc") == ERR_INT
    assert err(x, "SET", "k", "v", "EX", "0") == "invalid expire time in 'set' command"
    assert err(x, "SET", "k", "v", "PX", "-5") == "invalid expire time in 'set' command"
    assert err(x, "SET", "k", "v", "EX", "9223372036854775807") == \
        "invalid expire time in 'set' command"
    assert err(x, "SET", "k") == "wrong number of arguments for 'set' command"
    assert r.exists("k") == 0


def test_set_options_are_case_insensitive(r):
    assert r.execute_command("set", "k", "v", "nx", "ex", "50") is True
    assert 49 <= r.ttl("k") <= 50


def test_setnx(r):
    assert r.setnx("k", "1") is True
    assert r.setnx("k", "2") is False
    assert r.get("k") == "1"


def test_setex_psetex(r):
    assert r.setex("k", 100, "v") is True
    assert 99 <= r.ttl("k") <= 100
    assert r.psetex("p", 100000, "v") is True
    assert 99000 <= r.pttl("p") <= 100000
    assert err(r.execute_command, "SETEX", "k", "0", "v") == \
        "invalid expire time in 'setex' command"
    assert err(r.execute_command, "PSETEX", "k", "-1", "v") == \
        "invalid expire time in 'psetex' command"
    assert err(r.execute_command, "SETEX", "k", "x", "v") == ERR_INT
    assert err(r.execute_command, "SETEX", "k", "10") == \
        "wrong number of arguments for 'setex' command"


def test_getset(r):
    assert r.getset("k", "1") is None
    assert r.getset("k", "2") == "1"
    assert r.get("k") == "2"
    r.expire("k", 100)
    r.getset("k", "3")
    assert r.ttl("k") == -1  # GETSET drops the expiry, as SET does


def test_getdel(r):
    r.set("k", "v")
    assert r.getdel("k") == "v"
    assert r.getdel("k") is None
    assert r.exists("k") == 0


def test_mget_mset(r):
    assert r.mset({"a": "1", "b": "2", "c": "3"}) is True
    assert r.mget("a", "b", "nope", "c") == ["1", "2", None, "3"]
    assert err(r.execute_command, "MSET", "a", "1", "b") == \
        "wrong number of arguments for 'mset' command"
    assert err(r.execute_command, "MSET", "a") == \
        "wrong number of arguments for 'mset' command"
    assert err(r.execute_command, "MGET") == "wrong number of arguments for 'mget' command"


def test_mset_clears_ttl(r):
    r.set("a", "1", ex=100)
    r.mset({"a": "2"})
    assert r.ttl("a") == -1


def test_msetnx(r):
    assert r.msetnx({"a": "1", "b": "2"}) is True
    assert r.msetnx({"b": "x", "c": "3"}) is False
    assert r.get("b") == "2"
    assert r.exists("c") == 0
    assert err(r.execute_command, "MSETNX", "a", "1", "b") == \
        "wrong number of arguments for 'msetnx' command"


def test_append_strlen(r):
    assert r.append("k", "hello") == 5
    assert r.append("k", " world") == 11
    assert r.get("k") == "hello world"
    assert r.strlen("k") == 11
    assert r.strlen("nope") == 0


def test_append_keeps_ttl(r):
    r.set("k", "a", ex=100)
    r.append("k", "b")
    assert 99 <= r.ttl("k") <= 100


def test_incr_decr(r):
    assert r.incr("n") == 1
    assert r.incr("n") == 2
    assert r.decr("n") == 1
    assert r.incrby("n", 10) == 11
    assert r.decrby("n", 20) == -9
    assert r.get("n") == "-9"
    assert r.decr("fresh") == -1


def test_incr_errors(r):
    r.set("s", "abc")
    assert err(r.incr, "s") == ERR_INT
    r.set("sp", " 1")
    assert err(r.incr, "sp") == ERR_INT
    r.set("big", "9223372036854775807")
    assert err(r.incr, "big") == "increment or decrement would overflow"
    r.set("small", "-9223372036854775808")
    assert err(r.decr, "small") == "increment or decrement would overflow"
    assert err(r.execute_command, "INCRBY", "n", "1.5") == ERR_INT
    assert err(r.execute_command, "INCRBY", "n", "99999999999999999999") == ERR_INT
    assert err(r.execute_command, "DECRBY", "n", "-9223372036854775808") == \
        "decrement would overflow"
    assert err(r.execute_command, "INCR") == "wrong number of arguments for 'incr' command"
    assert r.get("big") == "9223372036854775807"


def test_incr_keeps_ttl(r):
    r.set("n", "5", ex=100)
    assert r.incr("n") == 6
    assert 99 <= r.ttl("n") <= 100


def test_incr_is_atomic_across_clients(server):
    """Eight clients on both workers incrementing one key lose no update."""
    def work():
        c = server.client()
        for _ in range(100):
            c.incr("counter")
        c.close()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.client().get("counter") == b"800"


def test_setnx_race_has_one_winner(server):
    winners = []

    def work(i):
        c = server.client()
        if c.setnx("lock", str(i)):
            winners.append(i)
        c.close()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert server.client().get("lock") == str(winners[0]).encode()


def test_large_value(server):
    c = server.client()
    big = b"x" * (8 << 20)
    c.set("big", big)
    assert c.get("big") == big
    assert c.strlen("big") == len(big)


def test_key_too_long(r):
    assert "key too long" in err(r.set, "k" * 70000, "v")
