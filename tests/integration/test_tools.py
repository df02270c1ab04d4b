"""Redis's own tools against troved: redis-cli used non-interactively (in
RESP2 and RESP3, with a password, from standard input) and a short
redis-benchmark run that must complete without errors."""
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(not shutil.which("redis-cli"), reason="redis-tools not installed")


def cli(server, *args, stdin=None):
    argv = ["redis-cli", "-p", str(server.port)]
    if server.password:
        argv += ["--no-auth-warning", "-a", server.password]
    p = subprocess.run(argv + list(args), input=stdin, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_redis_cli_commands(server):
    assert cli(server, "set", "k", "hello world") == "OK\n"
    assert cli(server, "get", "k") == "hello world\n"
    assert cli(server, "incr", "n") == "1\n"
    assert cli(server, "get", "missing") == "\n"
    assert cli(server, "--raw", "keys", "*").split() == ["k", "n"]
    assert cli(server, "ttl", "k") == "-1\n"
    assert cli(server, "foo", "bar").startswith(
        "ERR unknown command 'foo', with args beginning with: 'bar'")
    assert "redis_version:" in cli(server, "info", "server")
    assert cli(server, "-n", "3", "set", "in3", "x") == "OK\n"
    assert cli(server, "-n", "3", "dbsize") == "1\n"
    assert cli(server, "dbsize") == "2\n"


def test_redis_cli_resp3(server):
    cli(server, "set", "k", "v")
    out = cli(server, "-3", "hello", "3")
    assert "proto" in out and "3" in out
    assert cli(server, "-3", "get", "nothing") == "\n"
    assert cli(server, "-3", "get", "k") == "v\n"


def test_redis_cli_from_stdin(server):
    out = cli(server, stdin="set a 1\nincrby a 41\nget a\nping\n")
    assert out.split() == ["OK", "42", "42", "PONG"]


def test_redis_cli_with_password(make_server):
    s = make_server(password="pw1")
    assert cli(s, "set", "k", "v") == "OK\n"
    p = subprocess.run(["redis-cli", "-p", str(s.port), "get", "k"], capture_output=True,
                       text=True, timeout=30)
    assert "NOAUTH Authentication required." in p.stdout


def test_redis_benchmark(server):
    p = subprocess.run(["redis-benchmark", "-p", str(server.port), "-t", "set,get", "-n", "2000",
                        "-q"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = [l for l in p.stdout.replace("\r", "\n").split("\n") if "requests per second" in l]
    assert any(l.strip().startswith("SET:") for l in lines), p.stdout
    assert any(l.strip().startswith("GET:") for l in lines), p.stdout
    assert "ERR" not in p.stdout
    c = server.client()
    assert c.dbsize() >= 1  # redis-benchmark's key:__rand_int__ keys
    assert c.get("key:__rand_int__") is not None


def test_redis_benchmark_pipelined(server):
    p = subprocess.run(["redis-benchmark", "-p", str(server.port), "-t", "set,get,incr", "-n",
                        "20000", "-P", "32", "-q"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "ERR" not in p.stdout
    assert server.client().get("counter:__rand_int__") == b"20000"
