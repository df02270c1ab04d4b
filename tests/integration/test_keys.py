"""Key and keyspace commands: DEL UNLINK EXISTS TYPE, the expiry family with
NX XX GT LT, TTL PTTL EXPIRETIME PEXPIRETIME PERSIST, DBSIZE KEYS FLUSHDB
FLUSHALL and SELECT's separate databases."""
import time

import pytest
import redis


def err(fn, *args):
    with pytest.raises(redis.ResponseError) as e:
        fn(*args)
    return str(e.value)


def test_del_exists(r):
    r.mset({"a": "1", "b": "2", "c": "3"})
    assert r.exists("a", "b", "nope") == 2
    assert r.exists("a", "a") == 2  # counted per argument, as in Redis
    assert r.delete("a", "b", "nope") == 2
    assert r.exists("a", "b") == 0
    assert r.delete("c", "c") == 1
    assert r.unlink("nothing") == 0
    r.set("u", "1")
    assert r.unlink("u") == 1
    assert err(r.execute_command, "DEL") == "wrong number of arguments for 'del' command"


def test_type(r):
    r.set("s", "v")
    assert r.type("s") == "string"
    assert r.type("nope") == "none"


def test_expire_ttl_persist(r):
    r.set("k", "v")
    assert r.ttl("k") == -1
    assert r.pttl("k") == -1
    assert r.ttl("nope") == -2
    assert r.pttl("nope") == -2
    assert r.expire("k", 100) is True
    assert 99 <= r.ttl("k") <= 100
    assert 99000 < r.pttl("k") <= 100000
    assert r.persist("k") is True
    assert r.ttl("k") == -1
    assert r.persist("k") is False
    assert r.persist("nope") is False
    assert r.expire("nope", 100) is False
    assert r.get("k") == "v"


def test_pexpire_expireat_pexpireat(r):
    r.set("k", "v")
    assert r.pexpire("k", 50000) is True
    assert 49 <= r.ttl("k") <= 50
    at = int(time.time()) + 1000
    assert r.expireat("k", at) is True
    assert r.execute_command("EXPIRETIME", "k") == at
    assert r.execute_command("PEXPIRETIME", "k") == at * 1000
    pat = int(time.time() * 1000) + 500000
    assert r.pexpireat("k", pat) is True
    assert r.execute_command("PEXPIRETIME", "k") == pat
    assert r.execute_command("EXPIRETIME", "nope") == -2
    r.set("p", "v")
    assert r.execute_command("EXPIRETIME", "p") == -1


def test_expire_in_past_deletes(r):
    r.set("k", "v")
    assert r.expire("k", -1) is True
    assert r.exists("k") == 0
    r.set("k", "v")
    assert r.expireat("k", 1) is True
    assert r.exists("k") == 0
    r.set("k", "v")
    assert r.pexpire("k", 0) is True
    assert r.exists("k") == 0


def test_expire_options(r):
    x = r.execute_command
    r.set("k", "v")
    assert x("EXPIRE", "k", "100", "XX") == 0
    assert x("EXPIRE", "k", "100", "GT") == 0  # no expiry counts as infinite
    assert x("EXPIRE", "k", "100", "NX") == 1
    assert x("EXPIRE", "k", "200", "NX") == 0
    assert x("EXPIRE", "k", "50", "GT") == 0
    assert x("EXPIRE", "k", "200", "GT") == 1
    assert 199 <= r.ttl("k") <= 200
    assert x("EXPIRE", "k", "300", "LT") == 0
    assert x("EXPIRE", "k", "150", "LT") == 1
    assert x("EXPIRE", "k", "120", "XX", "LT") == 1
    assert 119 <= r.ttl("k") <= 120
    r.set("p", "v")
    assert x("EXPIRE", "p", "100", "LT") == 1


def test_expire_errors(r):
    x = r.execute_command
    r.set("k", "v")
    assert err(x, "EXPIRE", "k", "10", "NX", "XX") == \
        "NX and XX, GT or LT options at the same time are not compatible"
    assert err(x, "EXPIRE", "k", "10", "GT", "LT") == \
        "GT and LT options at the same time are not compatible"
    assert err(x, "EXPIRE", "k", "10", "FOO") == "Unsupported option FOO"
    assert err(x, "EXPIRE", "k", "ten") == "value is not an integer or out of range"
    assert err(x, "EXPIRE", "k", "9223372036854775807") == \
        "invalid expire time in 'expire' command"
    assert err(x, "PEXPIRE", "k", "9223372036854775807") == \
        "invalid expire time in 'pexpire' command"
    assert err(x, "EXPIRE", "k") == "wrong number of arguments for 'expire' command"
    assert r.ttl("k") == -1


def test_expiry_over_time(r):
    r.set("k", "v")
    r.pexpire("k", 150)
    r.set("stay", "v")
    assert r.dbsize() == 2
    time.sleep(0.3)
    assert r.get("k") is None
    assert r.exists("k") == 0
    assert r.dbsize() == 1
    assert r.keys("*") == ["stay"]


def test_dbsize_and_select(r):
    r.mset({"a": "1", "b": "2"})
    assert r.dbsize() == 2
    r.execute_command("SELECT", 3)
    assert r.dbsize() == 0
    assert r.get("a") is None
    r.set("a", "db3")
    assert r.dbsize() == 1
    r.execute_command("SELECT", 0)
    assert r.get("a") == "1"
    assert err(r.execute_command, "SELECT", 16) == "DB index is out of range"
    assert err(r.execute_command, "SELECT", -1) == "DB index is out of range"
    assert err(r.execute_command, "SELECT", "x") == "value is not an integer or out of range"


def test_select_through_client_option(server):
    c5 = server.client(db=5, decode_responses=True)
    c5.set("k", "five")
    c0 = server.client(decode_responses=True)
    assert c0.get("k") is None
    assert server.client(db=5).get("k") == b"five"


def test_keys_patterns(r):
    r.mset({"user:1": "a", "user:2": "b", "user:10": "c", "order:1": "d", "u": "e",
            "h?llo": "f", "hello": "g", "hallo": "h"})
    assert sorted(r.keys("*")) == sorted(["user:1", "user:2", "user:10", "order:1", "u",
                                          "h?llo", "hello", "hallo"])
    assert r.keys("user:*") == ["user:1", "user:10", "user:2"]  # in key order
    assert r.keys("user:?") == ["user:1", "user:2"]
    assert r.keys("user:[12]") == ["user:1", "user:2"]
    assert r.keys("user:[^1]") == ["user:2"]
    assert r.keys("h[a-e]llo") == ["hallo", "hello"]
    assert r.keys("h\\?llo") == ["h?llo"]
    assert r.keys("*:1") == ["order:1", "user:1"]
    assert r.keys("nothing*") == []
    assert r.keys("u") == ["u"]


def test_keys_stays_in_db(r):
    r.set("k0", "v")
    r.execute_command("SELECT", 1)
    r.set("k1", "v")
    assert r.keys("*") == ["k1"]


def test_flushdb_flushall(r):
    r.mset({"a": "1", "b": "2"})
    r.execute_command("SELECT", 2)
    r.mset({"c": "3"})
    assert r.flushdb() is True
    assert r.dbsize() == 0
    r.execute_command("SELECT", 0)
    assert r.dbsize() == 2
    assert r.execute_command("FLUSHDB", "ASYNC") is True
    assert r.dbsize() == 0
    assert err(r.execute_command, "FLUSHDB", "NOW") == "syntax error"
    r.set("x", "1")
    r.execute_command("SELECT", 9)
    r.set("y", "1")
    assert r.flushall() is True
    assert r.dbsize() == 0
    r.execute_command("SELECT", 0)
    assert r.dbsize() == 0


def test_flushdb_many_keys(r):
    r.mset({"k%d" % i: str(i) for i in range(3000)})
    assert r.dbsize() == 3000
    r.flushdb()
    assert r.dbsize() == 0


def test_info_keyspace(r):
    r.mset({"a": "1", "b": "2"})
    r.expire("a", 100)
    r.execute_command("SELECT", 4)
    r.set("c", "3")
    ks = r.info("keyspace")
    assert ks["db0"]["keys"] == 2
    assert ks["db0"]["expires"] == 1
    assert ks["db4"]["keys"] == 1
    assert "db1" not in ks
