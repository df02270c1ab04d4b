"""Access control: users with hashed passwords, AUTH (both forms) and HELLO
AUTH against them, command and category rules, key patterns for reading and
for writing checked on every key of every command, disabled and deleted
users, ACL LOG and DRYRUN, the ACL file across a restart, and protected
mode.  Errors are compared with Redis 7.0's exact words."""
import hashlib
import subprocess

from conftest import TROVED, free_port

NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


def noperm_cmd(name):
    return "NOPERM this user has no permissions to run the '%s' command" % name


def sha(pw):
    return hashlib.sha256(pw.encode()).hexdigest()


def login(server, user, pw):
    """A raw connection authenticated as user."""
    c = server.raw()
    assert c.command("AUTH", user, pw) == "OK"
    return c


def test_default_user(raw):
    assert raw.command("ACL", "LIST") == [b"user default on nopass ~* &* +@all"]
    assert raw.command("ACL", "WHOAMI") == b"default"
    assert raw.command("ACL", "USERS") == [b"default"]
    assert str(raw.command("ACL", "DELUSER", "default")) == \
        "ERR The 'default' user cannot be removed"


def test_setuser_list_getuser_as_redis_prints_them(raw):
    assert raw.command("ACL", "SETUSER", "alice", "on", ">p1", "~foo*", "%R~bar*", "+get",
                       "+@string", "-incr") == "OK"
    # The same line Redis 7.0 prints: +get is inside +@string, so it goes.
    assert raw.command("ACL", "LIST") == [
        b"user alice on #" + sha("p1").encode() + b" ~foo* %R~bar* resetchannels -@all "
        b"+@string -incr",
        b"user default on nopass ~* &* +@all"]
    info = raw.command("ACL", "GETUSER", "alice")
    d = dict(zip(info[::2], info[1::2]))
    assert d[b"flags"] == [b"on"]
    assert d[b"passwords"] == [sha("p1").encode()]
    assert d[b"commands"] == b"-@all +@string -incr"
    assert d[b"keys"] == b"~foo* %R~bar*"
    assert d[b"channels"] == b""
    assert raw.command("ACL", "GETUSER", "nobody") is None
    # Rules that cancel out leave no trace, as in Redis.
    assert raw.command("ACL", "SETUSER", "b1", "+get", "+set", "-get") == "OK"
    assert raw.command("ACL", "SETUSER", "b2", "+@all", "-@string", "+get") == "OK"
    assert raw.command("ACL", "SETUSER", "b3", "+client|id", "+client", "-client") == "OK"
    lines = [l.decode() for l in raw.command("ACL", "LIST")]
    assert "user b1 off resetchannels -@all +set" in lines
    assert "user b2 off resetchannels +@all -@string +get" in lines
    assert "user b3 off resetchannels -@all" in lines
    assert raw.command("ACL", "DELUSER", "alice", "b1", "b2", "b3", "nobody") == 4


def test_setuser_errors(raw):
    def e(*rules):
        return str(raw.command("ACL", "SETUSER", "eve", *rules))
    assert e("bogus") == "ERR Error in ACL SETUSER modifier 'bogus': Syntax error"
    assert e("+nosuch") == \
        "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
    assert e("-@nosuch").endswith("Unknown command or category name in ACL")
    assert e("<nope") == ("ERR Error in ACL SETUSER modifier '<nope': The password you are "
                          "trying to remove from the user does not exist")
    assert e("#abc").endswith("The password hash must be exactly 64 characters and contain "
                              "only lowercase hexadecimal characters")
    assert e("~*", "~foo").startswith("ERR Error in ACL SETUSER modifier '~foo': Adding a "
                                      "pattern after the * pattern")
    assert e("%X~foo").endswith("Syntax error")
    # All or nothing: the failed SETUSERs created no user.
    assert raw.command("ACL", "GETUSER", "eve") is None
    assert str(raw.command("ACL", "SETUSER", "a b")) == \
        "ERR Usernames can't contain spaces or null characters"


def test_key_patterns_for_read_and_for_write(server, raw):
    r = server.client(decode_responses=True)
    for k in ("foo1", "bar1", "baz1", "qux1"):
        r.set(k, "v")
    r.set("num", "1")
    assert raw.command("ACL", "SETUSER", "kim", "on", ">pw", "+@all", "~foo*", "~num",
                       "%R~bar*", "%W~baz*") == "OK"
    k = login(server, "kim", "pw")
    # ~foo*: read and write.
    assert k.command("GET", "foo1") == b"v"
    assert k.command("SET", "foo1", "w") == "OK"
    assert k.command("INCR", "num") == 2
    # %R~bar*: reads only.
    assert k.command("GET", "bar1") == b"v"
    assert k.command("MGET", "foo1", "bar1") == [b"w", b"v"]
    assert k.command("TTL", "bar1") == -1
    for cmd in (("SET", "bar1", "x"), ("DEL", "bar1"), ("APPEND", "bar1", "x"),
                ("EXPIRE", "bar1", "100"), ("MSET", "foo1", "a", "bar1", "b"),
                ("INCR", "bar1"), ("GETDEL", "bar1")):
        assert str(k.command(*cmd)) == NOPERM_KEY, cmd
    # %W~baz*: writes only; a write that hands back what it read needs both.
    assert k.command("SET", "baz1", "x") == "OK"
    assert k.command("MSET", "foo1", "a", "baz1", "b") == "OK"
    assert k.command("DEL", "baz1") == 1
    for cmd in (("GET", "baz1"), ("MGET", "foo1", "baz1"), ("SET", "baz1", "x", "GET"),
                ("GETSET", "baz1", "y"), ("INCR", "baz1"), ("TTL", "baz1")):
        assert str(k.command(*cmd)) == NOPERM_KEY, cmd
    # EXISTS only needs some pattern to match; an unmatched key is refused.
    assert k.command("EXISTS", "bar1", "baz1") == 1
    assert str(k.command("EXISTS", "qux1")) == NOPERM_KEY
    assert str(k.command("GET", "qux1")) == NOPERM_KEY
    # Every key of a multi-key command is checked (the last one too).
    assert str(k.command("DEL", "foo1", "qux1")) == NOPERM_KEY
    assert r.get("foo1") == "a"
    # KEYS shows only the keys the user may touch.
    assert sorted(k.command("KEYS", "*")) == [b"bar1", b"foo1", b"num"]
    # Patterns apply in every database.
    assert k.command("SELECT", "3") == "OK"
    assert str(k.command("GET", "qux1")) == NOPERM_KEY
    k.close()
    r.close()


def test_commands_and_categories(server, raw):
    assert raw.command("ACL", "SETUSER", "ro", "on", ">pw", "~*", "+@read", "+@connection",
                       "-@admin", "-keys") == "OK"
    c = login(server, "ro", "pw")
    assert c.command("GET", "x") is None
    assert c.command("PING") == "PONG"
    assert str(c.command("SET", "x", "1")) == noperm_cmd("set")
    assert str(c.command("KEYS", "*")) == noperm_cmd("keys")
    assert str(c.command("FLUSHALL")) == noperm_cmd("flushall")
    assert str(c.command("CONFIG", "GET", "port")) == noperm_cmd("config|get")
    assert c.command("CLIENT", "ID") > 0  # @connection
    assert str(c.command("CLIENT", "KILL", "ID", "1")) == noperm_cmd("client|kill")
    # Rules change at once for connections already authenticated.
    assert raw.command("ACL", "SETUSER", "ro", "+set", "+client|kill") == "OK"
    assert c.command("SET", "x", "1") == "OK"
    assert c.command("CLIENT", "KILL", "ID", "999999") == 0
    assert raw.command("ACL", "SETUSER", "ro", "nocommands", "+@all", "-@dangerous") == "OK"
    assert str(c.command("FLUSHALL")) == noperm_cmd("flushall")
    assert c.command("INCR", "n") == 1
    # ACL CAT and its errors.
    cats = raw.command("ACL", "CAT")
    assert len(cats) == 21 and cats[:3] == [b"keyspace", b"read", b"write"]
    strings = raw.command("ACL", "CAT", "string")
    assert b"get" in strings and b"incr" in strings and b"ping" not in strings
    assert b"client|kill" in raw.command("ACL", "CAT", "dangerous")
    assert str(raw.command("ACL", "CAT", "nosuch")) == "ERR Unknown category 'nosuch'"
    # AUTH, HELLO, QUIT need no permission.
    assert raw.command("ACL", "SETUSER", "none", "on", ">pw") == "OK"
    n = login(server, "none", "pw")
    assert str(n.command("PING")) == noperm_cmd("ping")
    assert n.command("HELLO", "2")[0] == b"server"
    assert n.command("AUTH", "default", "x") == "OK"
    assert n.command("PING") == "PONG"
    for x in (c, n):
        x.close()


def test_auth_forms_and_disabled_users(make_server):
    s = make_server(password="topsecret")
    c = s.raw()
    assert str(c.command("GET", "k")) == "NOAUTH Authentication required."
    assert str(c.command("AUTH", "wrong")) == WRONGPASS
    assert c.command("AUTH", "topsecret") == "OK"
    assert c.command("ACL", "SETUSER", "bob", "on", ">one", ">two", "~*", "+@all") == "OK"
    # Both forms, both passwords; HELLO AUTH too; redis-py sends AUTH user pass.
    for pw in ("one", "two"):
        d = s.raw()
        assert d.command("AUTH", "bob", pw) == "OK"
        assert d.command("ACL", "WHOAMI") == b"bob"
        d.close()
    e = s.raw()
    hello = e.command("HELLO", "3", "AUTH", "bob", "one")
    assert hello[b"proto"] == 3
    assert e.command("ACL", "WHOAMI") == b"bob"
    py = s.client(username="bob", password="two", decode_responses=True)
    assert py.execute_command("ACL", "WHOAMI") == "bob"
    # A removed password stops working; others still do.
    assert c.command("ACL", "SETUSER", "bob", "<one") == "OK"
    assert str(s.raw().command("AUTH", "bob", "one")) == WRONGPASS
    # Off: no new logins (connections already in keep going, as in Redis).
    assert c.command("ACL", "SETUSER", "bob", "off") == "OK"
    assert str(s.raw().command("AUTH", "bob", "two")) == WRONGPASS
    assert py.ping() is True
    assert c.command("ACL", "SETUSER", "bob", "on", "nopass") == "OK"
    assert s.raw().command("AUTH", "bob", "anything") == "OK"
    assert c.command("ACL", "SETUSER", "bob", "resetpass") == "OK"
    assert str(s.raw().command("AUTH", "bob", "anything")) == WRONGPASS
    assert str(s.raw().command("AUTH", "nobody", "x")) == WRONGPASS
    # The stored hash of a password is the SHA-256 of it; #hash logs in too.
    assert c.command("ACL", "SETUSER", "bob", "#" + sha("hashed")) == "OK"
    assert s.raw().command("AUTH", "bob", "hashed") == "OK"
    assert "hashed" not in "".join(l.decode() for l in c.command("ACL", "LIST"))
    # CONFIG SET requirepass changes the default user's password.
    assert c.command("CONFIG", "SET", "requirepass", "newpass") == "OK"
    assert str(s.raw().command("AUTH", "topsecret")) == WRONGPASS
    assert s.raw().command("AUTH", "newpass") == "OK"
    s.password = "newpass"
    py.close()


def test_deleted_user_is_disconnected(server, raw):
    assert raw.command("ACL", "SETUSER", "tmp", "on", ">pw", "+@all", "~*") == "OK"
    t = login(server, "tmp", "pw")
    assert t.command("PING") == "PONG"
    assert raw.command("ACL", "DELUSER", "tmp") == 1
    assert t.closed()
    assert str(server.raw().command("AUTH", "tmp", "pw")) == WRONGPASS


def test_acl_log_and_dryrun(server, raw):
    assert raw.command("ACL", "LOG", "RESET") == "OK"
    assert raw.command("ACL", "SETUSER", "lo", "on", ">pw", "~a*", "+get") == "OK"
    c = login(server, "lo", "pw")
    for _ in range(2):
        assert str(c.command("GET", "b")) == NOPERM_KEY
    assert str(c.command("SET", "a", "1")) == noperm_cmd("set")
    assert str(server.raw().command("AUTH", "lo", "bad")) == WRONGPASS
    log = raw.command("ACL", "LOG")
    entries = [dict(zip(e[::2], e[1::2])) for e in log]
    assert [(e[b"reason"], e[b"object"], e[b"count"]) for e in entries] == [
        (b"auth", b"AUTH", 1), (b"command", b"set", 1), (b"key", b"b", 2)]
    assert entries[1][b"username"] == b"lo" and entries[1][b"context"] == b"toplevel"
    assert b"user=lo" in entries[1][b"client-info"]
    assert len(raw.command("ACL", "LOG", "1")) == 1
    assert raw.command("ACL", "DRYRUN", "lo", "GET", "a1") == "OK"
    assert raw.command("ACL", "DRYRUN", "lo", "GET", "x") == \
        b"This user has no permissions to access the 'x' key"
    assert raw.command("ACL", "DRYRUN", "lo", "SET", "a", "1") == \
        b"This user has no permissions to run the 'set' command"
    assert str(raw.command("ACL", "DRYRUN", "nobody", "GET", "x")) == "ERR User 'nobody' not found"
    assert str(raw.command("ACL", "DRYRUN", "lo", "nosuch")) == "ERR Command 'nosuch' not found"
    pw = raw.command("ACL", "GENPASS")
    assert len(pw) == 64 and int(pw, 16) >= 0
    assert len(raw.command("ACL", "GENPASS", "5")) == 2
    c.close()


def test_denied_inside_multi(server, raw):
    assert raw.command("ACL", "SETUSER", "mu", "on", ">pw", "+@all", "~m*") == "OK"
    c = login(server, "mu", "pw")
    assert c.command("MULTI") == "OK"
    assert c.command("SET", "m1", "1") == "QUEUED"
    assert str(c.command("SET", "x1", "1")) == NOPERM_KEY
    assert str(c.command("EXEC")).startswith("EXECABORT")
    # Rules changed between queueing and EXEC: the command is refused then.
    assert c.command("MULTI") == "OK"
    assert c.command("SET", "m2", "1") == "QUEUED"
    assert c.command("INCR", "m3") == "QUEUED"
    assert raw.command("ACL", "SETUSER", "mu", "-incr") == "OK"
    res = c.command("EXEC")
    assert res[0] == "OK"
    assert str(res[1]).startswith("NOPERM ACLs rules changed between the moment the "
                                  "transaction was accumulated and the EXEC call.")
    c.close()


def test_aclfile_persists_across_restart(tmp_path, spawn):
    acl = tmp_path / "users.acl"
    acl.write_text("user default on #%s ~* &* +@all\n"
                   "# a comment\n"
                   "user reader on >rpw %%R~* resetchannels -@all +@read +@connection\n"
                   % sha("adminpw"))
    s = spawn("--aclfile", str(acl), password="adminpw").start()
    c = s.raw()
    assert c.command("AUTH", "adminpw") == "OK"
    assert c.command("ACL", "SETUSER", "writer", "on", ">wpw", "%W~w*", "+set") == "OK"
    assert c.command("ACL", "SAVE") == "OK"
    text = acl.read_text()
    assert "wpw" not in text and "rpw" not in text and sha("wpw") in text
    assert s.stop() == 0
    s2 = spawn("--aclfile", str(acl), password="adminpw", port=s.port).start()
    w = s2.raw()
    assert w.command("AUTH", "writer", "wpw") == "OK"
    assert w.command("SET", "w1", "x") == "OK"
    assert str(w.command("GET", "w1")) == noperm_cmd("get")
    rd = login(s2, "reader", "rpw")
    assert rd.command("GET", "w1") == b"x"
    assert str(rd.command("SET", "w1", "y")) == noperm_cmd("set")
    # ACL LOAD brings back the file's users; a change not saved is gone.
    a = s2.raw()
    assert a.command("AUTH", "adminpw") == "OK"
    assert a.command("ACL", "SETUSER", "temp", "on") == "OK"
    assert a.command("ACL", "LOAD") == "OK"
    assert a.command("ACL", "GETUSER", "temp") is None
    # A bad file changes nothing and says where it is wrong.
    good = acl.read_text()
    acl.write_text(good + "user broken on +nosuch\nnonsense\n")
    e = str(a.command("ACL", "LOAD"))
    assert "users.acl:4: Error in applying operation '+nosuch': Unknown command or category " \
           "name in ACL" in e
    assert "users.acl:5 should start with user keyword" in e
    assert e.endswith("WARNING: ACL errors detected, no change to the previously active ACL "
                      "rules was performed")
    assert a.command("AUTH", "writer", "wpw") == "OK"
    assert s2.stop() == 0
    # ... and at startup it stops the server.
    p = subprocess.run([TROVED, "--port", str(free_port()), "--dir", str(tmp_path / "d2"),
                        "--aclfile", str(acl)], capture_output=True, text=True, timeout=20)
    assert p.returncode == 1
    assert "Aborting troved startup because of ACL errors" in p.stderr


def test_without_aclfile_save_and_load_fail(raw):
    for sub in ("SAVE", "LOAD"):
        assert str(raw.command("ACL", sub)).startswith(
            "ERR This Redis instance is not configured to use an ACL file.")


def test_protected_mode_follows_the_default_user(tmp_path):
    acl = tmp_path / "open.acl"
    acl.write_text("user default on nopass ~* &* +@all\n")
    p = subprocess.run([TROVED, "--port", str(free_port()), "--dir", str(tmp_path / "d"),
                        "--bind", "0.0.0.0", "--aclfile", str(acl)],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1
    assert "refusing to listen on '0.0.0.0'" in p.stderr


def test_protected_mode_allows_public_bind_with_aclfile_password(tmp_path, spawn):
    acl = tmp_path / "closed.acl"
    acl.write_text("user default on #%s ~* &* +@all\n" % sha("pw"))
    s = spawn("--bind", "0.0.0.0", "--aclfile", str(acl), password="pw").start()
    assert s.client().ping() is True
    assert s.stop() == 0


def test_redis_cli_user_and_noperm(server, raw):
    assert raw.command("ACL", "SETUSER", "cli", "on", ">pw", "+get", "~k*") == "OK"
    base = ["redis-cli", "-p", str(server.port), "--user", "cli", "--pass", "pw",
            "--no-auth-warning"]
    out = subprocess.run(base + ["GET", "other"], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == NOPERM_KEY
    out = subprocess.run(base + ["SET", "k1", "v"], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == noperm_cmd("set")
