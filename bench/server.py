#!/usr/bin/env python3
"""server.py - `make bench-server`: troved against Debian's redis-server.

Starts each server in turn on a loopback port with matched durability,
loads the same 1,000,000 keys into it, runs redis-benchmark against it
(SET, GET, INCR, MSET; unpipelined and pipelined -P 16; 50 clients; a
1,000,000-key space; 100-byte values) and prints throughput, p50 and p99
latency and the ratio Trove/Redis.  It also measures each server's peak
RSS with the keys loaded, and the time from start to serving (the first
PONG) after a restart with them.

troved gets a 256 MiB memory budget, the embedded benchmark's (its default
is 64 MiB); Redis holds every key in memory (~210 MiB for these keys).

Durability pairs (troved --sync  <->  redis):
  none      <->  no persistence (save "", appendonly no)
  periodic  <->  appendonly yes, appendfsync everysec   (troved: 1 s period)
  always    <->  appendonly yes, appendfsync always

Servers bind 127.0.0.1 only; every wait and every benchmark is bounded in
time.  Results go to bench/results/server-<stamp>.csv, server-latest.csv
and server-latest.md (a QUICK run: server-latest-quick.*).
"""
import argparse
import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

MODES = [
    ("none", ["--save", "", "--appendonly", "no"]),
    ("periodic", ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]),
    ("always", ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]),
]
TESTS = "set,get,incr,mset"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ping(port, timeout=0.5):
    """True if the server on port answers PING with PONG (not LOADING)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def command(port, *args, timeout=30):
    """Sends one command, returns the raw first reply line."""
    req = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        req += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        return s.recv(256).split(b"\r\n")[0].decode(errors="replace")


def peak_rss_mib(pid):
    """VmHWM of a live process, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class Server:
    """One server process: troved or redis-server, in its own directory."""

    def __init__(self, kind, exe, mode, redis_args, workdir):
        self.kind, self.exe, self.mode = kind, exe, mode
        self.redis_args = redis_args
        # Absolute: redis-server changes into --dir before opening its log.
        self.dir = os.path.abspath(os.path.join(workdir, f"{kind}-{mode}"))
        self.port = free_port()
        self.proc = None

    def argv(self):
        if self.kind == "trove":
            return [self.exe, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", os.path.join(self.dir, "db"), "--sync", self.mode,
                    "--sync-period-ms", "1000", "--memory-budget", "256mb",
                    "--logfile", os.path.join(self.dir, "troved.log")]
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--daemonize", "no", "--protected-mode", "yes",
                "--logfile", os.path.join(self.dir, "redis.log")] + self.redis_args

    def start(self, limit=300):
        """Starts the process; returns seconds until the first PONG."""
        os.makedirs(self.dir, exist_ok=True)
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "a"))
        while time.monotonic() - t0 < limit:
            if ping(self.port, timeout=0.2):
                return time.monotonic() - t0
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}; "
                                   f"see {self.dir}")
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"{self.kind} did not answer PING within {limit} s")

    def stop(self, limit=120):
        """Stops cleanly (SHUTDOWN for redis, SIGTERM for troved)."""
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            if self.kind == "redis":
                # No save points are configured: SHUTDOWN writes no RDB, and
                # with AOF on it flushes and fsyncs the AOF first.
                command(self.port, *(["SHUTDOWN", "NOSAVE"] if self.mode == "none"
                                     else ["SHUTDOWN"]))
            else:
                self.proc.send_signal(signal.SIGTERM)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def wipe(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def make_load_file(path, keys, vsize):
    """SET key:%012d with vsize-byte values for every key of the space,
    in the key names redis-benchmark -r uses, as RESP for redis-cli --pipe."""
    if os.path.exists(path) and os.path.getsize(path) > 0:
        with open(path + ".keys") as f:
            if f.read().strip() == f"{keys} {vsize}":
                return
    val = b"x" * vsize
    with open(path, "wb") as f:
        buf = io.BytesIO()
        for i in range(keys):
            k = b"key:%012d" % i
            buf.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, vsize, val))
            if i % 10000 == 9999:
                f.write(buf.getvalue())
                buf = io.BytesIO()
        f.write(buf.getvalue())
    with open(path + ".keys", "w") as f:
        f.write(f"{keys} {vsize}\n")


def load(server, path, limit=600):
    """Pipes the load file into the server; returns seconds."""
    t0 = time.monotonic()
    with open(path, "rb") as f:
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(server.port), "--pipe"],
                           stdin=f, capture_output=True, timeout=limit)
    if r.returncode != 0 or b"errors: 0" not in r.stdout:
        raise RuntimeError(f"loading {server.kind}: {r.stdout.decode()[-300:]} "
                           f"{r.stderr.decode()[-300:]}")
    return time.monotonic() - t0


def redis_benchmark(port, requests, pipeline, keys, vsize, clients, limit=600):
    """Runs redis-benchmark; returns {test: (rps, p50_ms, p99_ms)}."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
            "-n", str(requests), "-r", str(keys), "-d", str(vsize), "-P", str(pipeline),
            "-t", TESTS, "--csv"]
    r = subprocess.run(argv, capture_output=True, timeout=limit, text=True)
    out = {}
    for row in csv.DictReader(io.StringIO(r.stdout)):
        name = row["test"].split(" ")[0]
        out[name] = (float(row["rps"]), float(row["p50_latency_ms"]),
                     float(row["p99_latency_ms"]))
    if not out:
        raise RuntimeError(f"redis-benchmark printed nothing usable: {r.stderr[-300:]}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("troved")
    ap.add_argument("--quick", action="store_true", default=os.environ.get("QUICK", "0") not in ("", "0"))
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--requests", type=int)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--modes", default="none,periodic,always")
    ap.add_argument("--work-dir", default="build/bench/server")
    ap.add_argument("--out-dir", default="bench/results")
    a = ap.parse_args()
    if a.requests is None:
        a.requests = 20000 if a.quick else 200000
    if a.quick and a.keys == 1000000:
        a.keys = 100000
    for tool in ("redis-server", "redis-benchmark", "redis-cli"):
        if not shutil.which(tool):
            sys.exit(f"bench-server: {tool} is missing: run scripts/install-deps.sh")
    if not os.access(a.troved, os.X_OK):
        sys.exit(f"bench-server: {a.troved} is not built")

    os.makedirs(a.work_dir, exist_ok=True)
    loadfile = os.path.join(a.work_dir, f"load-{a.keys}.resp")
    make_load_file(loadfile, a.keys, a.value_size)
    with open("/proc/loadavg") as f:
        load_before = " ".join(f.read().split()[:3])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    print(f"bench-server {stamp}: {a.keys} keys loaded, {a.requests} requests per test, "
          f"{a.clients} clients, {a.value_size}-byte values; load {load_before}", flush=True)

    rows = []     # (mode, pipeline, test, server, rps, p50, p99)
    extras = []   # (mode, server, load_s, rss_mib, restart_s, keys_after)
    modes = [m for m in MODES if m[0] in a.modes.split(",")]
    for mode, redis_args in modes:
        for kind in ("trove", "redis"):
            s = Server(kind, a.troved, mode, redis_args, a.work_dir)
            s.wipe()
            try:
                s.start()
                t_load = load(s, loadfile)
                rss = peak_rss_mib(s.proc.pid)
                print(f"  {mode:8} {kind:5} loaded {a.keys} keys in {t_load:.1f} s, "
                      f"peak RSS {rss:.1f} MiB", flush=True)
                for pipeline in (1, 16):
                    res = redis_benchmark(s.port, a.requests * (2 if pipeline > 1 else 1),
                                          pipeline, a.keys, a.value_size, a.clients)
                    for test, (rps, p50, p99) in res.items():
                        rows.append((mode, pipeline, test, kind, rps, p50, p99))
                        print(f"  {mode:8} {kind:5} -P {pipeline:<2} {test:5} {rps:>10.0f} "
                              f"req/s  p50 {p50:.3f} ms  p99 {p99:.3f} ms", flush=True)
                restart, nkeys = float("nan"), ""
                if mode != "none":
                    # Every key written is in the log (troved: sync, redis: AOF).
                    s.stop()
                    restart = s.start()
                    nkeys = command(s.port, "DBSIZE").lstrip(":")
                    print(f"  {mode:8} {kind:5} restart to first PONG {restart:.3f} s "
                          f"({nkeys} keys)", flush=True)
                extras.append((mode, kind, t_load, rss, restart, nkeys))
            finally:
                s.stop()
                s.wipe()

    with open("/proc/loadavg") as f:
        load_after = " ".join(f.read().split()[:3])
    report(a, rows, extras, stamp, load_before, load_after)


def report(a, rows, extras, stamp, load_before, load_after):
    """Prints and writes the comparison tables."""
    by = {(m, p, t, k): (r, p50, p99) for m, p, t, k, r, p50, p99 in rows}
    md = [f"Run {stamp}: {a.keys} keys preloaded, {a.requests} requests per test "
          f"unpipelined (2x that with -P 16), {a.clients} clients, -r {a.keys}, "
          f"{a.value_size}-byte values; load average {load_before} before, "
          f"{load_after} after.", "",
          "| sync | pipeline | command | troved req/s | redis req/s | Trove ÷ Redis "
          "| p50 ms troved / redis | p99 ms troved / redis | p99 no worse? |",
          "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    print(f"\n{'sync':9}{'-P':>3} {'cmd':6}{'troved':>10}{'redis':>10}{'ratio':>7}"
          f"{'p50 t/r ms':>16}{'p99 t/r ms':>16}")
    for mode, _ in MODES:
        for p in (1, 16):
            for t in ("SET", "GET", "INCR", "MSET"):
                tv, rv = by.get((mode, p, t, "trove")), by.get((mode, p, t, "redis"))
                if not tv or not rv:
                    continue
                ratio = tv[0] / rv[0] if rv[0] else float("nan")
                print(f"{mode:9}{p:>3} {t:6}{tv[0]:>10.0f}{rv[0]:>10.0f}{ratio:>7.2f}"
                      f"{tv[1]:>8.3f}/{rv[1]:<7.3f}{tv[2]:>8.3f}/{rv[2]:<7.3f}")
                md.append(f"| {mode} | {p} | {t} | {tv[0]:.0f} | {rv[0]:.0f} | "
                          f"{ratio:.2f}× | {tv[1]:.3f} / {rv[1]:.3f} | "
                          f"{tv[2]:.3f} / {rv[2]:.3f} | {'yes' if tv[2] <= rv[2] else '**no**'} |")
    md += ["", "| sync | server | load time (s) | peak RSS with keys loaded (MiB) "
           "| restart to first PONG (s) | keys after restart |", "|---|---|---:|---:|---:|---:|"]
    print(f"\n{'sync':9}{'server':7}{'load s':>8}{'peak RSS MiB':>14}{'restart s':>11}  keys")
    for mode, kind, t_load, rss, restart, nkeys in extras:
        print(f"{mode:9}{kind:7}{t_load:>8.1f}{rss:>14.1f}{restart:>11.3f}  {nkeys}")
        md.append(f"| {mode} | {kind} | {t_load:.1f} | {rss:.1f} | "
                  f"{'-' if restart != restart else f'{restart:.3f}'} | {nkeys or '-'} |")
    os.makedirs(a.out_dir, exist_ok=True)
    path = os.path.join(a.out_dir, f"server-{stamp}{'-quick' if a.quick else ''}.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "sync", "pipeline", "test", "server", "rps", "p50_ms", "p99_ms"])
        for r in rows:
            w.writerow([stamp, *r])
        w.writerow([])
        w.writerow(["run", "sync", "server", "load_s", "peak_rss_mib", "restart_s", "keys"])
        for e in extras:
            w.writerow([stamp, *e])
    latest = "server-latest-quick" if a.quick else "server-latest"
    shutil.copyfile(path, os.path.join(a.out_dir, latest + ".csv"))
    with open(os.path.join(a.out_dir, latest + ".md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"\nbench-server: wrote {path}, {latest}.csv, {latest}.md")


if __name__ == "__main__":
    main()
