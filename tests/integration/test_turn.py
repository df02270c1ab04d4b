"""The turn batch: the key commands a worker runs in one loop turn are
committed as one engine batch.  Pipelined commands in one turn must still
answer as if each ran alone, in order (Redis's semantics); batches of two
workers racing on the same keys must stay exact (a batch that does not
commit acknowledges nothing, and runs again); and under sync always no
acknowledged write of a batch is lost to a SIGKILL."""
import threading

import redis

from conftest import encode, kill_under_load, run_threads


def pipelined(raw, cmds):
    """Sends every command in one write (so they run in one turn) and reads
    the replies."""
    raw.send(b"".join(encode(*c) for c in cmds))
    return [raw.reply() for _ in cmds]


def info_stats(client):
    return client.info("stats")


def test_pipelined_mixed_commands_answer_in_order(make_server):
    s = make_server()
    raw = s.raw()
    cmds = [
        ("SET", "k", "1"),
        ("INCR", "k"),
        ("GET", "k"),
        ("SET", "k", "5", "NX"),        # exists (written in this turn): nil
        ("SET", "n", "7", "NX"),        # absent: OK
        ("GET", "n"),
        ("SET", "n", "8", "XX"),
        ("GET", "n"),
        ("SET", "n", "9", "IFEQ", "7"),  # the value is 8 now: nil
        ("SET", "n", "9", "IFEQ", "8"),
        ("MSET", "a", "1", "b", "2"),
        ("MGET", "a", "b", "k", "zz"),
        ("DEL", "a"),
        ("EXISTS", "a", "b"),
        ("MSETNX", "a", "x", "b", "y"),  # b exists: 0, nothing set
        ("MSETNX", "a", "x", "c", "z"),
        ("MGET", "a", "c"),
        ("INCRBY", "k", "10"),
        ("APPEND", "s", "x"),
        ("APPEND", "s", "y"),
        ("SET", "k", "40", "GET"),
        ("GETDEL", "b"),
        ("GET", "b"),
        ("INCR", "s"),                   # not an integer: an error, nothing else changes
        # A command that is not batched sees every earlier write...
        ("SELECT", "1"),
        ("GET", "k"),
        ("SET", "k", "db1"),
        ("SELECT", "0"),
        # ...and so does a transaction, which commits on its own.
        ("MULTI",),
        ("INCR", "k"),
        ("GET", "n"),
        ("EXEC",),
        ("GET", "k"),
    ]
    got = pipelined(raw, cmds)
    want = ["OK", 2, b"2", None, "OK", b"7", "OK", b"8", None, "OK", "OK",
            [b"1", b"2", b"2", None], 1, 1, 0, 1, [b"x", b"z"], 12, 1, 2, b"12", b"2",
            None, "ERR value is not an integer or out of range", "OK", None, "OK", "OK",
            "OK", "QUEUED", "QUEUED", [41, b"9"], b"41"]
    assert [str(g) if isinstance(g, Exception) else g for g in got] == want
    c = s.client()
    assert c.get("s") == b"xy"
    assert c.get("n") == b"9"
    assert info_stats(c)["trove_turn_batches"] > 0
    raw.close()


def test_values_a_batch_reads_count_against_its_cap(make_server):
    """The values a turn's batch holds for its commit - the ones its reads
    loaded after its first write - count against its 8 MiB cap, so a
    pipeline of reads of large values between two SETs commits in two
    batches rather than holding every value until the turn ends (STRLEN:
    its small replies do not pause the connection as 4 MiB of unsent
    replies would)."""
    s = make_server()
    c = s.client()
    big = b"x" * (1 << 20)
    for i in range(12):
        c.set("big%d" % i, big)
    before = info_stats(c)["trove_turn_batches"]
    raw = s.raw()
    cmds = [("SET", "a", "1")] + [("STRLEN", "big%d" % i) for i in range(12)] + [("SET", "b", "2")]
    got = pipelined(raw, cmds)
    assert got == ["OK"] + [len(big)] * 12 + ["OK"]
    assert info_stats(c)["trove_turn_batches"] - before == 2
    raw.close()


def test_racing_batches_stay_exact(make_server):
    """Clients on both workers pipeline INCRs of the same few keys and
    SET NX of the same lock keys: every increment is answered with its own
    value (the answers to a key's INCRs are exactly 1..N) and every lock
    has exactly one winner, the one stored - however many batches had to
    run again.  A reply of a batch that did not commit would show here.
    The GETs among them are each counted once in INFO's keyspace hits and
    misses, however often their batch ran.  Whether batches conflict at
    all is up to timing: the race runs again, on fresh keys, until the
    retry path ran (at most five times)."""
    s = make_server()
    rounds, per_round, nthreads = 60, 50, 6
    c = s.client()
    gets = 0
    for attempt in range(5):
        race(s, "p%d:" % attempt, rounds, per_round, nthreads)
        gets += nthreads * rounds * per_round + 3 + rounds * 5  # and the checks
        st = info_stats(c)
        if st["trove_turn_batch_retries"] + st["trove_turn_batch_replays"] > 0:
            break
    assert st["trove_turn_batches"] > 0
    # Racing on three keys, the workers' batches conflict: the retry path ran.
    assert st["trove_turn_batch_retries"] + st["trove_turn_batch_replays"] > 0
    assert st["keyspace_hits"] + st["keyspace_misses"] == gets


def race(s, prefix, rounds, per_round, nthreads):
    """One race of test_racing_batches_stay_exact, on keys under prefix."""
    seen = [[] for _ in range(3)]
    claims = {}
    lock = threading.Lock()

    def worker(w):
        c = s.client()
        for r in range(rounds):
            p = c.pipeline(transaction=False)
            for i in range(per_round):
                p.incr("%shot:%d" % (prefix, i % 3))
                p.set("%slock:%d:%d" % (prefix, r, i % 5), w, nx=True)
                p.get("%slock:%d:%d" % (prefix, r, (i + 1) % 5))
            res = p.execute()
            with lock:
                for i in range(per_round):
                    seen[i % 3].append(res[3 * i])
                    if res[3 * i + 1]:
                        claims.setdefault((r, i % 5), []).append(w)

    run_threads(nthreads, worker)
    c = s.client()
    for k in range(3):
        assert sorted(seen[k]) == list(range(1, len(seen[k]) + 1))
        assert int(c.get("%shot:%d" % (prefix, k))) == len(seen[k])
    assert len(claims) == rounds * 5
    for (r, i), winners in claims.items():
        assert winners == [int(c.get("%slock:%d:%d" % (prefix, r, i)))]


def test_racing_read_modify_writes_stay_exact(make_server):
    """Pipelines that begin with a read-modify-write (so it reads its key
    before its batch has written anything, and its write reuses that
    read), racing on the same keys from both workers: INCR and INCRBY
    answers are each one step of the counter, and GETSET answers form one
    chain - every value written is answered as the old value exactly
    once, except the one left at the end."""
    s = make_server()
    rounds, nthreads = 80, 6
    steps = []
    olds, written = [], []
    lock = threading.Lock()

    def worker(w):
        c = s.client()
        for r in range(rounds):
            p = c.pipeline(transaction=False)
            p.incr("ctr")
            p.getset("chain", "%d:%d:0" % (w, r))
            p.incrby("ctr", 2)
            p.get("ctr")
            p.set("chain", "%d:%d:1" % (w, r), get=True)
            p.set("own:%d" % w, r)
            p.incr("ctr")
            res = p.execute()
            with lock:
                steps.extend([(res[0], 1), (res[2], 2), (res[6], 1)])
                olds.extend([res[1], res[4]])
                written.extend([b"%d:%d:0" % (w, r), b"%d:%d:1" % (w, r)])
            assert res[0] < res[2] <= int(res[3]) < res[6]

    run_threads(nthreads, worker)
    c = s.client()
    # Each answer is the counter after its own step: sorted, every answer
    # minus its step is the answer before it.
    steps.sort()
    prev = 0
    for value, by in steps:
        assert value - by == prev
        prev = value
    assert int(c.get("ctr")) == prev == rounds * nthreads * 4
    final = c.get("chain")
    assert sorted(o for o in olds if o is not None) == sorted(
        v for v in written if v != final)
    assert olds.count(None) == 1
    for w in range(nthreads):
        assert c.get("own:%d" % w) == str(rounds - 1).encode()


def test_sigkill_keeps_acknowledged_batched_writes(spawn):
    """Pipelines of SET, MSET and INCR under sync always; after a SIGKILL
    in the middle, every acknowledged write is there."""
    s = spawn("--sync", "always")
    s.start()
    acked = {}
    counters = {}
    stop = threading.Event()

    def writer(w):
        c = s.client(socket_timeout=5)
        i = 0
        try:
            while not stop.is_set():
                p = c.pipeline(transaction=False)
                p.set("s%d:%d" % (w, i), i)
                p.mset({"m%d:%d" % (w, i): i, "m%d:%d+" % (w, i): i})
                p.incr("ctr%d" % w)
                res = p.execute()
                acked["s%d:%d" % (w, i)] = str(i)
                acked["m%d:%d" % (w, i)] = str(i)
                acked["m%d:%d+" % (w, i)] = str(i)
                counters["ctr%d" % w] = res[2]
                i += 1
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError):
            pass

    s2 = kill_under_load(s, spawn, writer, acked, stop)
    c = s2.client(decode_responses=True)
    for k, v in counters.items():
        assert int(c.get(k)) >= v
    assert s2.stop() == 0
