"""Transactions: MULTI EXEC DISCARD WATCH UNWATCH.

EXEC runs the queued commands on a transaction overlay and commits their
writes as one conditional batch: reads see the transaction's own writes,
a WATCHed key changed by anyone makes EXEC answer nil with nothing
applied, and a change to a key the transaction only read makes EXEC run
again, so concurrent transactions behave as if they ran one at a time."""
import time

import pytest
import redis

from conftest import run_threads


def err(fn, *args):
    with pytest.raises(redis.ResponseError) as e:
        fn(*args)
    return str(e.value)


def test_queue_and_exec(r, raw):
    assert raw.command("MULTI") == "OK"
    assert raw.command("SET", "a", "1") == "QUEUED"
    assert raw.command("INCR", "a") == "QUEUED"
    assert raw.command("GET", "a") == "QUEUED"
    assert raw.command("PING") == "QUEUED"
    assert raw.command("EXEC") == ["OK", 2, b"2", "PONG"]
    assert r.get("a") == "2"
    # An empty transaction is an empty array.
    assert raw.command("MULTI") == "OK"
    assert raw.command("EXEC") == []


def test_pipeline_transaction(r):
    p = r.pipeline(transaction=True)
    p.set("k", "v").append("k", "w").strlen("k").get("k").exists("k", "nope")
    assert p.execute() == [True, 2, 2, "vw", 1]


def test_reads_see_earlier_writes(r):
    r.set("gone", "x")
    p = r.pipeline(transaction=True)
    p.set("n", 5)
    p.incrby("n", 10)
    p.incrbyfloat("n", 0.5)
    p.get("n")
    p.mset({"m1": "a", "m2": "b"})
    p.mget("m1", "m2", "n", "none")
    p.delete("gone", "m1")
    p.exists("gone", "m1", "m2")
    p.expire("m2", 100)
    p.ttl("m2")
    p.persist("m2")
    p.ttl("m2")
    p.getdel("m2")
    p.get("m2")
    p.set("s", "hello")
    p.setrange("s", 6, "world")
    p.getrange("s", 0, 4)
    p.rename("s", "s2")
    p.get("s2")
    p.copy("s2", "s3")
    p.get("s3")
    res = p.execute()
    assert res == [True, 15, 15.5, "15.5", True, ["a", "b", "15.5", None], 2, 1,
                   True, 100, True, -1, "b", None, True, 11, "hello", True,
                   "hello\x00world", True, "hello\x00world"]
    assert r.mget("n", "m1", "m2", "gone", "s", "s2", "s3") == [
        "15.5", None, None, None, None, "hello\x00world", "hello\x00world"]


def test_keyspace_reads_inside_exec(r):
    r.mset({"a": "1", "c": "3", "d": "4"})
    p = r.pipeline(transaction=True)
    p.set("b", "2").delete("c").keys("*").dbsize().scan(0, count=100)
    p.execute_command("TRANGE", "-", "+")
    p.flushdb().dbsize().set("z", "26").keys("*")
    res = p.execute()
    assert res[2] == ["a", "b", "d"]
    assert res[3] == 3
    assert res[4] == (0, ["a", "b", "d"])
    assert res[5] == [None, ["a", "1", "b", "2", "d", "4"]]
    assert res[6:] == [True, 0, True, ["z"]]
    assert r.keys("*") == ["z"]


def test_ordered_walks_merge_the_transaction(r):
    """Walks inside EXEC merge the transaction's pending writes and deletes
    with the stored keys, forwards and backwards."""
    r.mset({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    p = r.pipeline(transaction=True)
    p.delete("b").set("bb", "x").set("f", "6").delete("e").set("a", "A")
    p.execute_command("TRANGE", "+", "-", "REV")
    p.execute_command("TRANGE", "(a", "[d", "LIMIT", "2")
    p.execute_command("TRANGE", "[d", "-", "REV", "LIMIT", "2", "NOVALUES")
    p.execute_command("TRANGE", "(bb", "[bb")
    p.scan(0, count=2)
    p.scan(1098098, count=10)
    p.scan(0, match="b*")
    p.keys("*").dbsize().randomkey()
    res = p.execute()[5:]
    assert res[0] == [None, ["f", "6", "d", "4", "c", "3", "bb", "x", "a", "A"]]
    assert res[1] == ["(c", ["bb", "x", "c", "3"]]
    assert res[2] == ["(c", ["d", "c"]]
    assert res[3] == [None, []]
    assert res[4] == (1098098, ["a", "bb"])  # the cursor names "bb"
    assert res[5] == (0, ["c", "d", "f"])
    assert res[6] == (0, ["bb"])
    assert res[7] == ["a", "bb", "c", "d", "f"] and res[8] == 5
    assert res[9] in ("a", "bb", "c", "d", "f")
    assert r.execute_command("TRANGE", "-", "+", "NOVALUES") == [None, ["a", "bb", "c", "d", "f"]]


def test_select_inside_multi(server):
    c = server.client(decode_responses=True)
    c.set("k", "db0")
    p = c.pipeline(transaction=True)
    p.execute_command("SELECT", 2).set("k", "db2").get("k")
    assert p.execute() == [True, True, "db2"]
    c.close()
    raw = server.raw()
    raw.command("MULTI")
    raw.command("SELECT", "3")
    raw.command("SET", "k", "db3")
    assert raw.command("EXEC") == ["OK", "OK"]
    assert raw.command("GET", "k") == b"db3"  # the connection stays in db 3
    raw.command("SELECT", "0")
    assert raw.command("GET", "k") == b"db0"
    raw.close()


def test_versions_inside_exec(r, raw):
    r.set("v", "1")
    base = r.execute_command("TGETV", "v")[1]
    raw.command("MULTI")
    raw.command("TGETV", "v")
    raw.command("SET", "v", "2")
    raw.command("TGETV", "v")
    raw.command("TSETV", "v", "3", str(base))  # the transaction changed it
    raw.command("SET", "w", "x")
    res = raw.command("EXEC")
    assert res[0] == [b"1", base]
    commit = res[2][1]
    assert commit > base and res[2][0] == b"2"
    assert res[3] is None
    # Every write of the transaction carries the commit's version.
    assert r.execute_command("TGETV", "v") == ["2", commit]
    assert r.execute_command("TGETV", "w") == ["x", commit]


def test_execabort_on_queuing_errors(r, raw):
    r.set("keep", "1")
    raw.command("MULTI")
    assert raw.command("SET", "keep", "2") == "QUEUED"
    e = raw.command("NOSUCHCMD", "x")
    assert str(e).startswith("ERR unknown command 'NOSUCHCMD'")
    assert raw.command("SET", "other", "3") == "QUEUED"
    assert str(raw.command("EXEC")) == "EXECABORT Transaction discarded because of previous errors."
    assert r.get("keep") == "1" and r.exists("other") == 0
    # Wrong arity aborts too, and the connection leaves MULTI.
    raw.command("MULTI")
    assert str(raw.command("GET")) == "ERR wrong number of arguments for 'get' command"
    assert str(raw.command("EXEC")).startswith("EXECABORT")
    assert raw.command("PING") == "PONG"
    with pytest.raises(redis.ResponseError) as e:
        p = r.pipeline(transaction=True)
        p.set("keep", "9").execute_command("GET")
        p.execute()
    assert "EXECABORT" in str(e.value) or "wrong number" in str(e.value)
    assert r.get("keep") == "1"


def test_runtime_errors_are_per_command(r, raw):
    r.set("text", "abc")
    raw.command("MULTI")
    raw.command("SET", "a", "1")
    raw.command("INCR", "text")
    raw.command("SET", "b", "2", "BADOPTION")
    raw.command("INCR", "a")
    res = raw.command("EXEC")
    assert res[0] == "OK"
    assert str(res[1]) == "ERR value is not an integer or out of range"
    assert str(res[2]) == "ERR syntax error"
    assert res[3] == 2
    assert r.mget("a", "b", "text") == ["2", None, "abc"]


def test_error_texts(r, raw):
    assert str(raw.command("EXEC")) == "ERR EXEC without MULTI"
    assert str(raw.command("DISCARD")) == "ERR DISCARD without MULTI"
    raw.command("MULTI")
    assert str(raw.command("MULTI")) == "ERR MULTI calls can not be nested"
    assert str(raw.command("WATCH", "x")) == "ERR WATCH inside MULTI is not allowed"
    raw.command("SET", "x", "1")
    assert raw.command("EXEC") == ["OK"]  # neither error aborts the transaction
    assert str(raw.command("MULTI", "extra")) == "ERR wrong number of arguments for 'multi' command"
    assert str(raw.command("WATCH")) == "ERR wrong number of arguments for 'watch' command"


def test_discard(r, raw):
    raw.command("MULTI")
    raw.command("SET", "d", "1")
    assert raw.command("DISCARD") == "OK"
    assert r.exists("d") == 0
    assert str(raw.command("EXEC")) == "ERR EXEC without MULTI"


def test_watch_conflict_from_another_client(server, r):
    r.set("w", "1")
    c1 = server.raw()
    assert c1.command("WATCH", "w") == "OK"
    r.set("w", "2")  # a second client changes the watched key
    c1.command("MULTI")
    c1.command("SET", "w", "from-tx")
    c1.command("SET", "side", "effect")
    assert c1.command("EXEC") is None
    assert r.get("w") == "2" and r.exists("side") == 0
    # After a failed EXEC the key is no longer watched.
    c1.command("MULTI")
    c1.command("SET", "w", "3")
    assert c1.command("EXEC") == ["OK"]
    c1.close()


def test_watch_change_between_multi_and_exec(server, r):
    r.set("w", "1")
    c1 = server.raw()
    c1.command("WATCH", "w")
    c1.command("MULTI")
    c1.command("INCR", "w")
    r.set("w", "10")  # after MULTI, before EXEC
    assert c1.command("EXEC") is None
    assert r.get("w") == "10"
    c1.close()


def test_watch_unchanged_and_unwatch(server, r):
    r.set("w", "1")
    c1 = server.raw()
    c1.command("WATCH", "w", "absent", "w")
    r.set("unrelated", "x")
    c1.command("MULTI")
    c1.command("INCR", "w")
    assert c1.command("EXEC") == [2]
    c1.command("WATCH", "w")
    r.set("w", "5")
    assert c1.command("UNWATCH") == "OK"
    c1.command("MULTI")
    c1.command("INCR", "w")
    assert c1.command("EXEC") == [6]
    assert c1.command("UNWATCH") == "OK"  # nothing watched: still OK
    c1.close()


def test_watch_absent_key_created(server, r):
    c1 = server.raw()
    c1.command("WATCH", "lock")
    r.set("lock", "mine")
    c1.command("MULTI")
    c1.command("SET", "lock", "theirs")
    assert c1.command("EXEC") is None
    assert r.get("lock") == "mine"
    c1.close()


def test_watch_own_write_and_discard(server, r):
    c1 = server.raw()
    c1.command("WATCH", "x")
    c1.command("SET", "x", "own")  # the client's own change counts too
    c1.command("MULTI")
    c1.command("SET", "x", "tx")
    assert c1.command("EXEC") is None
    # DISCARD unwatches.
    c1.command("WATCH", "x")
    r.set("x", "other")
    c1.command("MULTI")
    c1.command("DISCARD")
    c1.command("MULTI")
    c1.command("SET", "x", "tx")
    assert c1.command("EXEC") == ["OK"]
    c1.close()


def test_watch_remembers_the_database(server, r):
    c1 = server.raw()
    c1.command("SELECT", "5")
    c1.command("WATCH", "x")
    c1.command("SELECT", "1")
    c1.command("SET", "x", "10")  # another database's x
    c1.command("SELECT", "5")
    c1.command("MULTI")
    c1.command("PING")
    assert c1.command("EXEC") == ["PONG"]
    c1.close()


def test_watched_key_expires(server, r):
    r.set("e", "v", px=150)
    c1 = server.raw()
    c1.command("WATCH", "e")
    time.sleep(0.3)
    c1.command("MULTI")
    c1.command("PING")
    assert c1.command("EXEC") is None  # it was there when watched, and is gone
    c1.close()


def test_watch_with_redis_py(r, server):
    r.set("bal", "100")
    with r.pipeline() as p:
        p.watch("bal")
        cur = int(p.get("bal"))
        server.client().set("bal", "50")
        p.multi()
        p.set("bal", cur - 10)
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("bal") == "50"

    def spend(p):
        cur = int(p.get("bal"))
        p.multi()
        p.set("bal", cur - 10)
    assert r.transaction(spend, "bal") == [True]
    assert r.get("bal") == "40"


def test_resp3_exec_replies(server, r):
    c = server.raw()
    c.command("HELLO", "3")
    r.set("w", "1")
    c.command("WATCH", "w")
    r.set("w", "2")
    c.command("MULTI")
    c.command("GET", "nope")
    assert c.command("EXEC") is None  # RESP3 null
    c.command("MULTI")
    c.command("GET", "nope")
    c.command("SET", "w", "3")
    assert c.command("EXEC") == [None, "OK"]
    c.close()


def test_queued_commands_run_at_exec_not_before(server, r):
    c1 = server.raw()
    c1.command("MULTI")
    c1.command("INCR", "ctr")
    r.set("ctr", "41")  # set while the INCR waits in the queue
    assert c1.command("EXEC") == [42]
    c1.close()


def test_no_multi_commands_and_quit(server, r):
    c1 = server.raw()
    c1.command("MULTI")
    c1.command("SET", "q", "1")
    assert c1.command("QUIT") == "OK"  # QUIT runs at once; the transaction dies
    assert c1.closed()
    assert r.exists("q") == 0


def test_flushall_and_watch(server, r):
    r.set("x", "30")
    c1 = server.raw()
    c1.command("WATCH", "x")
    r.flushall()  # deletes a watched key: EXEC fails
    c1.command("MULTI")
    c1.command("PING")
    assert c1.command("EXEC") is None
    c1.command("WATCH", "absent")
    r.flushall()  # nothing to delete there: EXEC goes on
    c1.command("MULTI")
    c1.command("PING")
    assert c1.command("EXEC") == ["PONG"]
    c1.close()


def test_commands_refused_inside_multi(r, raw):
    raw.command("MULTI")
    raw.command("SET", "foo", "bar")
    assert str(raw.command("SAVE")) == "ERR Command not allowed inside a transaction"
    assert str(raw.command("EXEC")).startswith("EXECABORT")
    assert r.exists("foo") == 0


def test_queue_limit(make_server):
    s = make_server("--proto-max-bulk-len", "32kb", "--client-query-buffer-limit", "64kb")
    c = s.raw()
    c.command("MULTI")
    for i in range(3):
        assert c.command("SET", "k%d" % i, "v" * 20000) == "QUEUED"
    e = c.command("SET", "k3", "v" * 20000)
    assert str(e).startswith("ERR transaction too big")
    assert str(c.command("EXEC")).startswith("EXECABORT")
    assert c.command("EXISTS", "k0") == 0
    c.close()


def test_transaction_survives_restart(make_server):
    s = make_server()
    c = s.client(decode_responses=True)
    p = c.pipeline(transaction=True)
    p.set("a", "1").set("b", "2").incr("a")
    assert p.execute() == [True, True, 2]
    c.close()
    assert s.stop() == 0
    s.start()
    c = s.client(decode_responses=True)
    assert c.mget("a", "b") == ["2", "2"]
    c.close()


def test_concurrent_watch_increments(server, r):
    """Optimistic locking as clients write it: WATCH, GET, MULTI, SET,
    EXEC; retry on nil.  The final value counts the successes exactly."""
    r.set("ctr", "0")
    wins = [0] * 8

    def worker(i):
        c = server.client()
        for _ in range(40):
            with c.pipeline() as p:
                while True:
                    try:
                        p.watch("ctr")
                        v = int(p.get("ctr"))
                        p.multi()
                        p.set("ctr", v + 1)
                        p.execute()
                        wins[i] += 1
                        break
                    except redis.WatchError:
                        continue
        c.close()
    run_threads(8, worker)
    assert int(r.get("ctr")) == sum(wins) == 320


def test_concurrent_unwatched_transactions_are_isolated(server, r):
    """Without WATCH, EXEC itself is isolated: transfers between two
    accounts keep the sum, and transactions reading both never see a
    transfer half done."""
    r.mset({"acct:a": 1000, "acct:b": 1000, "ctr": 0})
    seen_bad = []

    def mover(i):
        c = server.client()
        for j in range(60):
            src, dst = ("acct:a", "acct:b") if (i + j) % 2 else ("acct:b", "acct:a")
            p = c.pipeline(transaction=True)
            p.decrby(src, 7).incrby(dst, 7).incr("ctr")
            p.execute()
        c.close()

    def reader(i):
        c = server.client()
        for _ in range(150):
            p = c.pipeline(transaction=True)
            p.get("acct:a").get("acct:b")
            a, b = p.execute()
            if int(a) + int(b) != 2000:
                seen_bad.append((a, b))
        c.close()

    def both(i):
        (mover if i < 6 else reader)(i)
    run_threads(9, both)
    assert not seen_bad
    assert int(r.get("acct:a")) + int(r.get("acct:b")) == 2000
    assert r.get("ctr") == str(6 * 60)
