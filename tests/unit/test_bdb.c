/*
 * test_bdb.c - the Berkeley-DB-style face (include/trove/db.h) against
 * its manual and against Berkeley DB 5.3 itself.
 *
 * The chapter's example; one test per group of promises (opening, the
 * DB methods, DBT memory, cursors, errors, environments and
 * transactions, threads); and two differential tests that play one long
 * random sequence of calls against libdb (peers/bdb_libdb.c) and against
 * Trove, comparing every return code, key, value and size: a btree with a
 * cursor, and an environment with transactions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <trove/db.h>

#include "peers/bdb_peer.h"
#include "testutil.h"

typedef struct fixture {
	char *dir;
	char *file; /* dir/fruit.db */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->dir = tu_tmpdir("bdb");
	f->file = tu_join(f->dir, "fruit.db");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tu_rmrf(f->dir);
	free(f->dir);
	free(f->file);
	free(f);
	return 0;
}

/* A DBT over a string (without its NUL). */
static DBT S(const char *s)
{
	DBT d;
	memset(&d, 0, sizeof d);
	d.data = (void *)s;
	d.size = (uint32_t)strlen(s);
	return d;
}

static DBT out(uint32_t flags)
{
	DBT d;
	memset(&d, 0, sizeof d);
	d.flags = flags;
	return d;
}

static void assert_dbt(const DBT *d, const char *s)
{
	assert_int_equal(d->size, strlen(s));
	assert_memory_equal(d->data, s, d->size);
}

/* Messages reported through errcall, kept for the tests to look at. */
static char last_msg[1024];
static char last_pfx[64];
static int msgs;

static void catch_msg(const DB_ENV *env, const char *pfx, const char *msg)
{
	(void)env;
	snprintf(last_pfx, sizeof last_pfx, "%s", pfx ? pfx : "");
	snprintf(last_msg, sizeof last_msg, "%s", msg);
	msgs++;
}

static DB *open_db(const char *file, DB_ENV *env, uint32_t flags)
{
	DB *db;
	assert_int_equal(db_create(&db, env, 0), 0);
	if (!env)
		db->set_errcall(db, catch_msg);
	int rc = db->open(db, NULL, file, NULL, DB_BTREE, flags, 0644);
	if (rc)
		fail_msg("open %s: %s", file ? file : "(memory)", db_strerror(rc));
	return db;
}

static void put(DB *db, DB_TXN *txn, const char *k, const char *v)
{
	DBT key = S(k), data = S(v);
	assert_int_equal(db->put(db, txn, &key, &data, 0), 0);
}

static void check(DB *db, DB_TXN *txn, const char *k, const char *v)
{
	DBT key = S(k), data = out(0);
	int rc = db->get(db, txn, &key, &data, 0);
	if (!v) {
		assert_int_equal(rc, DB_NOTFOUND);
		return;
	}
	assert_int_equal(rc, 0);
	assert_dbt(&data, v);
}

/* ---- The chapter's example --------------------------------------------------------- */

static void test_chapter_example(void **state)
{
	fixture *f = *state;
	DB *db;
	DBT key, data;
	int ret;

	if ((ret = db_create(&db, NULL, 0)) != 0)
		fail_msg("db_create: %s", db_strerror(ret));
	if ((ret = db->open(db, NULL, f->file, NULL, DB_BTREE, DB_CREATE, 0664)) != 0)
		fail_msg("open: %s", db_strerror(ret));

	memset(&key, 0, sizeof key);
	memset(&data, 0, sizeof data);
	key.data = "fruit";
	key.size = sizeof "fruit";
	data.data = "apple";
	data.size = sizeof "apple";
	assert_int_equal(db->put(db, NULL, &key, &data, 0), 0);

	memset(&data, 0, sizeof data);
	assert_int_equal(db->get(db, NULL, &key, &data, 0), 0);
	assert_int_equal(data.size, sizeof "apple");
	assert_string_equal(data.data, "apple");

	assert_int_equal(db->del(db, NULL, &key, 0), 0);
	assert_int_equal(db->get(db, NULL, &key, &data, 0), DB_NOTFOUND);
	assert_int_equal(db->close(db, 0), 0);

	/* The file is the Trove directory fruit.db.trove. */
	char *dir = tu_join(f->dir, "fruit.db.trove");
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(dir);
}

/* ---- Opening ------------------------------------------------------------------------------ */

static void test_open(void **state)
{
	fixture *f = *state;
	DB *db;
	assert_int_equal(db_create(&db, NULL, 0), 0);
	db->set_errcall(db, catch_msg);
	/* Missing without DB_CREATE. */
	assert_int_equal(db->open(db, NULL, f->file, NULL, DB_BTREE, 0, 0), ENOENT);
	/* Refused: types, subdatabases, flags, contradictions. */
	msgs = 0;
	assert_int_equal(db->open(db, NULL, f->file, NULL, DB_RECNO, DB_CREATE, 0), EINVAL);
	assert_non_null(strstr(last_msg, "DB_BTREE and DB_HASH"));
	assert_int_equal(db->open(db, NULL, f->file, "sub", DB_BTREE, DB_CREATE, 0), EINVAL);
	assert_non_null(strstr(last_msg, "database must be NULL"));
	assert_int_equal(db->open(db, NULL, f->file, NULL, DB_BTREE, DB_CREATE | 0x40000000, 0),
	                 EINVAL);
	assert_non_null(strstr(last_msg, "unsupported flags 0x40000000"));
	assert_int_equal(db->open(db, NULL, f->file, NULL, DB_BTREE, DB_RDONLY | DB_TRUNCATE, 0),
	                 EINVAL);
	assert_int_equal(db->set_flags(db, DB_DUP), EINVAL);
	assert_non_null(strstr(last_msg, "DB_DUP"));
	assert_int_equal(db->set_flags(db, DB_CHKSUM), 0);
	assert_int_equal(db->set_pagesize(db, 1000), EINVAL);
	assert_int_equal(db->set_pagesize(db, 4096), 0);
	assert_int_equal(db->set_cachesize(db, 0, 4 << 20, 1), 0);
	assert_int_equal(msgs, 6);
	/* A hash database: created, typed, ordered anyway. */
	assert_int_equal(db->open(db, NULL, f->file, NULL, DB_HASH, DB_CREATE, 0640), 0);
	DBTYPE t;
	assert_int_equal(db->get_type(db, &t), 0);
	assert_int_equal(t, DB_HASH);
	assert_int_equal(db->open(db, NULL, f->file, NULL, DB_HASH, 0, 0), EINVAL);
	assert_int_equal(db->set_flags(db, 0), EINVAL); /* after open */
	put(db, NULL, "b", "2");
	put(db, NULL, "a", "1");

	/* A second handle on the same file is refused while this one is
	 * open. */
	DB *db2;
	assert_int_equal(db_create(&db2, NULL, 0), 0);
	db2->set_errfile(db2, NULL);
	assert_int_equal(db2->open(db2, NULL, f->file, NULL, DB_UNKNOWN, 0, 0), EBUSY);
	assert_int_equal(db2->close(db2, 0), 0);
	assert_int_equal(db->close(db, 0), 0);

	/* DB_UNKNOWN opens what is there, as a btree; DB_EXCL refuses it. */
	assert_int_equal(db_create(&db, NULL, 0), 0);
	db->set_errfile(db, NULL);
	assert_int_equal(db->open(db, NULL, f->file, NULL, DB_BTREE, DB_CREATE | DB_EXCL, 0),
	                 EEXIST);
	assert_int_equal(db->open(db, NULL, f->file, NULL, DB_UNKNOWN, DB_RDONLY, 0), 0);
	assert_int_equal(db->get_type(db, &t), 0);
	assert_int_equal(t, DB_BTREE);
	check(db, NULL, "a", "1");
	DBT k = S("c"), d = S("3");
	assert_int_equal(db->put(db, NULL, &k, &d, 0), EACCES);
	assert_int_equal(db->del(db, NULL, &k, 0), EACCES);
	uint32_t n;
	assert_int_equal(db->truncate(db, NULL, &n, 0), EACCES);
	assert_int_equal(db->close(db, 0), 0);

	/* DB_TRUNCATE empties it. */
	db = open_db(f->file, NULL, DB_TRUNCATE);
	check(db, NULL, "a", NULL);
	assert_int_equal(db->close(db, 0), 0);

	/* A NULL file is a database in memory. */
	db = open_db(NULL, NULL, DB_CREATE);
	put(db, NULL, "k", "v");
	check(db, NULL, "k", "v");
	assert_int_equal(db->close(db, 0), 0);

	/* Methods on a handle that is not open. */
	assert_int_equal(db_create(&db, NULL, 0), 0);
	db->set_errfile(db, NULL);
	assert_int_equal(db->put(db, NULL, &k, &d, 0), EINVAL);
	assert_int_equal(db->close(db, 0), 0);
	assert_int_equal(db_create(NULL, NULL, 0), EINVAL);
	assert_int_equal(db_create(&db, NULL, 1), EINVAL);
}

/* ---- DB methods ------------------------------------------------------------------------------ */

static void test_methods(void **state)
{
	fixture *f = *state;
	DB *db = open_db(f->file, NULL, DB_CREATE);
	DBT k = S("apple"), d = S("red"), d2 = S("green"), o = out(0);

	assert_int_equal(db->put(db, NULL, &k, &d, DB_NOOVERWRITE), 0);
	assert_int_equal(db->put(db, NULL, &k, &d2, DB_NOOVERWRITE), DB_KEYEXIST);
	check(db, NULL, "apple", "red");
	assert_int_equal(db->put(db, NULL, &k, &d2, DB_OVERWRITE_DUP), 0);
	check(db, NULL, "apple", "green");
	assert_int_equal(db->put(db, NULL, &k, &d, 0), 0);

	assert_int_equal(db->exists(db, NULL, &k, 0), 0);
	DBT missing = S("pear");
	assert_int_equal(db->exists(db, NULL, &missing, 0), DB_NOTFOUND);
	assert_int_equal(db->get(db, NULL, &missing, &o, 0), DB_NOTFOUND);
	assert_int_equal(db->del(db, NULL, &missing, 0), DB_NOTFOUND);

	/* DB_GET_BOTH: the data must match too. */
	DBT both = S("red");
	assert_int_equal(db->get(db, NULL, &k, &both, DB_GET_BOTH), 0);
	both = S("blue");
	assert_int_equal(db->get(db, NULL, &k, &both, DB_GET_BOTH), DB_NOTFOUND);
	/* Accepted modifiers. */
	assert_int_equal(db->get(db, NULL, &k, &o, DB_RMW | DB_READ_COMMITTED), 0);
	assert_dbt(&o, "red");

	/* An empty value is a value. */
	DBT e = out(0);
	e.data = NULL;
	DBT ek = S("empty");
	assert_int_equal(db->put(db, NULL, &ek, &e, 0), 0);
	assert_int_equal(db->get(db, NULL, &ek, &o, 0), 0);
	assert_int_equal(o.size, 0);

	/* Refused flags and keys, each with a message. */
	msgs = 0;
	assert_int_equal(db->put(db, NULL, &k, &d, DB_APPEND), EINVAL);
	assert_non_null(strstr(last_msg, "DB_APPEND"));
	assert_int_equal(db->put(db, NULL, &k, &d, DB_NODUPDATA), EINVAL);
	assert_int_equal(db->put(db, NULL, &k, &d, 0x12345), EINVAL);
	assert_int_equal(db->get(db, NULL, &k, &o, DB_MULTIPLE), EINVAL);
	assert_int_equal(db->get(db, NULL, &k, &o, DB_SET_RANGE), EINVAL);
	assert_int_equal(db->del(db, NULL, &k, 1), EINVAL);
	DBT empty = S("");
	assert_int_equal(db->put(db, NULL, &empty, &d, 0), EINVAL);
	assert_non_null(strstr(last_msg, "keys must be 1 to 65535 bytes"));
	assert_int_equal(msgs, 7);
	assert_int_equal(db->get(db, NULL, &empty, &o, 0), DB_NOTFOUND); /* cannot exist */
	char *big = calloc(1, 65536);
	DBT bk = {.data = big, .size = 65536};
	assert_int_equal(db->put(db, NULL, &bk, &d, 0), EINVAL);
	bk.size = 65535;
	assert_int_equal(db->put(db, NULL, &bk, &d, 0), 0);
	assert_int_equal(db->get(db, NULL, &bk, &o, 0), 0);
	free(big);
	DBT nulldata = {.data = NULL, .size = 3};
	assert_int_equal(db->put(db, NULL, &k, &nulldata, 0), EINVAL);

	/* sync, truncate (with its count), and the data survives a close
	 * only if not truncated. */
	assert_int_equal(db->sync(db, 0), 0);
	uint32_t n = 0;
	assert_int_equal(db->truncate(db, NULL, &n, 0), 0);
	assert_int_equal(n, 3);
	check(db, NULL, "apple", NULL);
	put(db, NULL, "kiwi", "brown");
	assert_int_equal(db->close(db, 0), 0);
	db = open_db(f->file, NULL, 0);
	check(db, NULL, "kiwi", "brown");
	assert_int_equal(db->close(db, DB_NOSYNC), 0);
}

/* ---- DBT memory
 * ---------------------------------------------------------------------------------- */

static void test_dbt_memory(void **state)
{
	fixture *f = *state;
	DB *db = open_db(f->file, NULL, DB_CREATE);
	put(db, NULL, "a", "alpha");
	put(db, NULL, "b", "bravo-bravo");
	DBT ka = S("a"), kb = S("b");

	/* Default: owned by the handle, replaced by the next get. */
	DBT d1 = out(0), d2 = out(0);
	assert_int_equal(db->get(db, NULL, &ka, &d1, 0), 0);
	assert_dbt(&d1, "alpha");
	assert_int_equal(((char *)d1.data)[d1.size], '\0'); /* a NUL follows */
	assert_int_equal(db->get(db, NULL, &kb, &d2, 0), 0);
	assert_dbt(&d2, "bravo-bravo");

	/* DB_DBT_MALLOC: the caller's to free. */
	DBT m = out(DB_DBT_MALLOC);
	assert_int_equal(db->get(db, NULL, &ka, &m, 0), 0);
	assert_dbt(&m, "alpha");
	void *keep = m.data;
	assert_int_equal(db->get(db, NULL, &kb, &m, 0), 0);
	assert_ptr_not_equal(m.data, NULL);
	assert_dbt(&m, "bravo-bravo");
	free(keep);
	free(m.data);

	/* DB_DBT_REALLOC: grown in place as needed. */
	DBT r = out(DB_DBT_REALLOC);
	assert_int_equal(db->get(db, NULL, &ka, &r, 0), 0);
	assert_dbt(&r, "alpha");
	assert_int_equal(db->get(db, NULL, &kb, &r, 0), 0);
	assert_dbt(&r, "bravo-bravo");
	free(r.data);

	/* DB_DBT_USERMEM: copied if it fits, else DB_BUFFER_SMALL and the
	 * size needed. */
	char buf[8];
	DBT u = out(DB_DBT_USERMEM);
	u.data = buf;
	u.ulen = sizeof buf;
	assert_int_equal(db->get(db, NULL, &ka, &u, 0), 0);
	assert_ptr_equal(u.data, buf);
	assert_dbt(&u, "alpha");
	assert_int_equal(db->get(db, NULL, &kb, &u, 0), DB_BUFFER_SMALL);
	assert_int_equal(u.size, 11);
	assert_memory_equal(buf, "alpha", 5); /* untouched */
	char big[16];
	u.data = big;
	u.ulen = sizeof big;
	assert_int_equal(db->get(db, NULL, &kb, &u, 0), 0);
	assert_dbt(&u, "bravo-bravo");

	/* Refused combinations. */
	msgs = 0;
	DBT bad = out(DB_DBT_MALLOC | DB_DBT_USERMEM);
	assert_int_equal(db->get(db, NULL, &ka, &bad, 0), EINVAL);
	bad = out(DB_DBT_PARTIAL);
	assert_int_equal(db->get(db, NULL, &ka, &bad, 0), EINVAL);
	assert_non_null(strstr(last_msg, "DB_DBT_PARTIAL"));
	DBT pk = S("a");
	pk.flags = DB_DBT_PARTIAL;
	assert_int_equal(db->put(db, NULL, &pk, &d1, 0), EINVAL);
	assert_int_equal(msgs, 3);
	/* Input DBTs: memory flags are ignored, DB_DBT_READONLY accepted. */
	DBT ro = S("a");
	ro.flags = DB_DBT_READONLY;
	assert_int_equal(db->get(db, NULL, &ro, &d1, 0), 0);
	assert_int_equal(db->close(db, 0), 0);

	/* A DB_THREAD handle refuses handle-owned memory. */
	DB *tdb = open_db(f->file, NULL, DB_THREAD);
	DBT t0 = out(0);
	assert_int_equal(tdb->get(tdb, NULL, &ka, &t0, 0), EINVAL);
	assert_non_null(strstr(last_msg, "DB_THREAD"));
	DBT tm = out(DB_DBT_MALLOC);
	assert_int_equal(tdb->get(tdb, NULL, &ka, &tm, 0), 0);
	assert_dbt(&tm, "alpha");
	free(tm.data);
	assert_int_equal(tdb->close(tdb, 0), 0);
}

/* ---- Cursors
 * ----------------------------------------------------------------------------------------- */

static void cget_in(DBC *c, uint32_t flags, int want, const char *in, const char *k, const char *v)
{
	DBT key = out(0), data = out(0);
	if (in)
		key = S(in);
	int rc = c->get(c, &key, &data, flags);
	assert_int_equal(rc, want);
	if (rc == 0 && flags != DB_SET)
		assert_dbt(&key, k);
	if (rc == 0)
		assert_dbt(&data, v);
}

/* A cursor get: flags, the return wanted, then for DB_SET and
 * DB_SET_RANGE the key given, and the key and value expected back. */
static void cget(DBC *c, uint32_t flags, int want, const char *k, const char *v)
{
	cget_in(c, flags, want, NULL, k, v);
}

static void test_cursors(void **state)
{
	fixture *f = *state;
	DB *db = open_db(f->file, NULL, DB_CREATE);
	DBC *c;
	const char *keys[] = {"b", "d", "f", "h"};
	for (int i = 0; i < 4; i++)
		put(db, NULL, keys[i], keys[i]);
	assert_int_equal(db->cursor(db, NULL, &c, 0), 0);
	assert_ptr_equal(c->dbp, db);

	/* Unpositioned: NEXT is FIRST, PREV is LAST, CURRENT is an error. */
	cget(c, DB_CURRENT, EINVAL, NULL, NULL);
	cget(c, DB_NEXT, 0, "b", "b");
	cget(c, DB_NEXT, 0, "d", "d");
	cget(c, DB_PREV, 0, "b", "b");
	cget(c, DB_PREV, DB_NOTFOUND, NULL, NULL);
	cget(c, DB_CURRENT, 0, "b", "b"); /* a failed move does not move */
	cget(c, DB_LAST, 0, "h", "h");
	cget(c, DB_NEXT, DB_NOTFOUND, NULL, NULL);
	cget(c, DB_PREV, 0, "f", "f");
	cget(c, DB_FIRST, 0, "b", "b");

	/* SET, SET_RANGE, GET_BOTH. */
	cget_in(c, DB_SET, 0, "f", "f", "f");
	cget_in(c, DB_SET, DB_NOTFOUND, "e", "e", NULL);
	cget(c, DB_CURRENT, 0, "f", "f");
	cget_in(c, DB_SET_RANGE, 0, "e", "f", "f");
	cget_in(c, DB_SET_RANGE, 0, "a", "b", "b");
	cget_in(c, DB_SET_RANGE, 0, "", "b", "b");
	cget_in(c, DB_SET_RANGE, DB_NOTFOUND, "i", NULL, NULL);
	cget(c, DB_CURRENT, 0, "b", "b");
	DBT gk = S("d"), gd = S("d");
	assert_int_equal(c->get(c, &gk, &gd, DB_GET_BOTH), 0);
	cget(c, DB_CURRENT, 0, "d", "d");
	gd = S("x");
	assert_int_equal(c->get(c, &gk, &gd, DB_GET_BOTH), DB_NOTFOUND);
	cget(c, DB_NEXT_NODUP, 0, "f", "f");
	cget(c, DB_PREV_NODUP, 0, "d", "d");
	cget(c, DB_NEXT_DUP, DB_NOTFOUND, NULL, NULL);

	/* Writes between moves: a key inserted ahead is seen; deleting the
	 * current key leaves the cursor on its place. */
	put(db, NULL, "e", "e");
	cget(c, DB_NEXT, 0, "e", "e");
	assert_int_equal(c->del(c, 0), 0);
	assert_int_equal(c->del(c, 0), DB_KEYEMPTY);
	cget(c, DB_CURRENT, DB_KEYEMPTY, NULL, NULL);
	db_recno_t count;
	assert_int_equal(c->count(c, &count, 0), DB_KEYEMPTY);
	cget(c, DB_NEXT, 0, "f", "f");
	assert_int_equal(c->count(c, &count, 0), 0);
	assert_int_equal(count, 1);
	DBT key = S("d");
	assert_int_equal(db->del(db, NULL, &key, 0), 0);
	cget(c, DB_PREV, 0, "b", "b");

	/* DBC->put: DB_CURRENT replaces, DB_KEYFIRST/KEYLAST put and move. */
	DBT nv = S("B"), nk = S("c");
	assert_int_equal(c->put(c, NULL, &nv, DB_CURRENT), 0);
	cget(c, DB_CURRENT, 0, "b", "B");
	assert_int_equal(c->c_put(c, &nk, &nv, DB_KEYLAST), 0);
	cget(c, DB_CURRENT, 0, "c", "B");
	assert_int_equal(c->put(c, &nk, &nv, 1 /* DB_AFTER: duplicates only */), EINVAL);

	/* A DB_BUFFER_SMALL leaves the cursor where it was. */
	char small[1];
	DBT uk = out(DB_DBT_USERMEM), ud = out(0);
	uk.data = small;
	uk.ulen = 0;
	assert_int_equal(c->c_get(c, &uk, &ud, DB_NEXT), DB_BUFFER_SMALL);
	assert_int_equal(uk.size, 1);
	cget(c, DB_CURRENT, 0, "c", "B");

	/* Refused. */
	DBT k0 = out(0), d0 = out(0);
	assert_int_equal(c->get(c, &k0, &d0, 99), EINVAL);
	assert_int_equal(c->get(c, &k0, &d0, DB_NEXT | DB_MULTIPLE), EINVAL);

	/* Emptying while walking: delete every key as it comes. */
	int n = 0;
	DBT wk = out(0), wd = out(0);
	while (c->get(c, &wk, &wd, n ? DB_NEXT : DB_FIRST) == 0) {
		assert_int_equal(c->del(c, 0), 0);
		n++;
	}
	assert_int_equal(n, 4); /* b c f h */
	assert_int_equal(c->c_close(c), 0);

	/* DB->close closes the cursors left open (ASan checks the rest). */
	assert_int_equal(db->cursor(db, NULL, &c, 0), 0);
	assert_int_equal(db->cursor(db, NULL, &c, 0), 0);
	assert_int_equal(db->cursor(db, NULL, &c, 0x10), EINVAL);
	assert_int_equal(db->close(db, 0), 0);
}

/* ---- Errors
 * ---------------------------------------------------------------------------------------- */

static void test_errors(void **state)
{
	fixture *f = *state;
	DB *db = open_db(f->file, NULL, DB_CREATE);
	db->set_errpfx(db, "myprog");
	msgs = 0;
	db->err(db, ENOENT, "opening %s", "x");
	assert_string_equal(last_pfx, "myprog");
	assert_string_equal(last_msg, "opening x: No such file or directory");
	db->errx(db, "plain %d", 7);
	assert_string_equal(last_msg, "plain 7");
	db->err(db, DB_NOTFOUND, "lookup");
	assert_string_equal(last_msg, "lookup: DB_NOTFOUND: No matching key/data pair found");
	assert_int_equal(msgs, 3);

	/* set_errfile: the message, prefixed, on a line. */
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	db->set_errcall(db, NULL);
	db->set_errfile(db, fp);
	DBT k = S("k"), d = S("v");
	assert_int_equal(db->put(db, NULL, &k, &d, DB_APPEND), EINVAL);
	fclose(fp);
	assert_non_null(strstr(text, "myprog: DB->put: DB_APPEND"));
	assert_int_equal(text[strlen(text) - 1], '\n');
	free(text);
	db->set_errfile(db, NULL); /* silence */
	assert_int_equal(db->put(db, NULL, &k, &d, DB_APPEND), EINVAL);
	assert_int_equal(db->close(db, 0), 0);

	assert_string_equal(db_strerror(0), "Successful return: 0");
	assert_non_null(strstr(db_strerror(DB_KEYEXIST), "DB_KEYEXIST"));
	assert_non_null(strstr(db_strerror(DB_BUFFER_SMALL), "DB_BUFFER_SMALL"));
	assert_string_equal(db_strerror(EINVAL), strerror(EINVAL));
	assert_non_null(db_strerror(-12345));
	int ma, mi, pa;
	assert_non_null(strstr(db_version(&ma, &mi, &pa), "Trove"));
	assert_int_equal(ma, DB_VERSION_MAJOR);
	assert_int_equal(mi, DB_VERSION_MINOR);
}

/* ---- Environments and transactions
 * ---------------------------------------------------------------- */

static DB_ENV *open_env(const char *home, uint32_t extra)
{
	DB_ENV *env;
	assert_int_equal(db_env_create(&env, 0), 0);
	env->set_errcall(env, catch_msg);
	int rc = env->open(
	        env, home,
	        DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | extra, 0);
	if (rc)
		fail_msg("env open %s: %s", home, db_strerror(rc));
	return env;
}

static void test_env_and_txn(void **state)
{
	fixture *f = *state;
	DB_ENV *env = open_env(f->dir, 0);
	DB *a = open_db("a.db", env, DB_CREATE | DB_AUTO_COMMIT);
	DB *b = open_db("b.db", env, DB_CREATE);
	DB_TXN *txn, *txn2;

	/* Files in one environment are separate key spaces. */
	put(a, NULL, "k", "in a");
	put(b, NULL, "k", "in b");
	check(a, NULL, "k", "in a");
	check(b, NULL, "k", "in b");
	/* Inside an environment the empty key is allowed. */
	put(a, NULL, "", "empty key");
	check(a, NULL, "", "empty key");

	/* A transaction over both: read your writes; nothing shows outside
	 * until commit, and then all of it. */
	assert_int_equal(env->txn_begin(env, NULL, &txn, 0), 0);
	assert_int_equal(env->txn_begin(env, NULL, &txn2, 0), 0);
	assert_int_not_equal(txn->id(txn), txn2->id(txn2));
	assert_int_equal(txn2->abort(txn2), 0);
	put(a, txn, "x", "1");
	put(b, txn, "y", "2");
	DBT k = S("k");
	assert_int_equal(b->del(b, txn, &k, 0), 0);
	assert_int_equal(b->del(b, txn, &k, 0), DB_NOTFOUND);
	check(a, txn, "x", "1");
	check(b, txn, "k", NULL);
	check(a, NULL, "x", NULL);
	check(b, NULL, "k", "in b");
	DBT kx = S("x"), v = S("other");
	assert_int_equal(a->put(a, txn, &kx, &v, DB_NOOVERWRITE), DB_KEYEXIST);
	assert_int_equal(a->exists(a, txn, &kx, 0), 0);
	assert_int_equal(txn->commit(txn, 0), 0);
	check(a, NULL, "x", "1");
	check(b, NULL, "y", "2");
	check(b, NULL, "k", NULL);

	/* Abort drops everything. */
	assert_int_equal(env->txn_begin(env, NULL, &txn, 0), 0);
	put(a, txn, "x", "changed");
	put(a, txn, "z", "new");
	assert_int_equal(txn->abort(txn), 0);
	check(a, NULL, "x", "1");
	check(a, NULL, "z", NULL);

	/* A key the transaction read changes before commit: nothing is
	 * written and the commit says DB_LOCK_DEADLOCK. */
	assert_int_equal(env->txn_begin(env, NULL, &txn, 0), 0);
	check(a, txn, "x", "1");
	put(a, txn, "w", "from txn");
	put(a, NULL, "x", "meanwhile");
	assert_int_equal(txn->commit(txn, 0), DB_LOCK_DEADLOCK);
	check(a, NULL, "w", NULL);
	/* So does an absent key that appears. */
	assert_int_equal(env->txn_begin(env, NULL, &txn, 0), 0);
	DBT kq = S("q"), vq = S("txn");
	assert_int_equal(a->put(a, txn, &kq, &vq, DB_NOOVERWRITE), 0);
	put(a, NULL, "q", "outside");
	assert_int_equal(txn->commit(txn, DB_TXN_NOSYNC), DB_LOCK_DEADLOCK);
	check(a, NULL, "q", "outside");
	/* Blind writes do not conflict: the later commit wins. */
	assert_int_equal(env->txn_begin(env, NULL, &txn, 0), 0);
	put(a, txn, "q", "txn wins");
	put(a, NULL, "q", "outside again");
	assert_int_equal(txn->commit(txn, DB_TXN_SYNC), 0);
	check(a, NULL, "q", "txn wins");

	/* A cursor in a transaction walks the merge of the database and
	 * the transaction's writes. */
	DB *c_db = open_db("c.db", env, DB_CREATE);
	const char *base[] = {"b", "d", "f", "h"};
	for (int i = 0; i < 4; i++)
		put(c_db, NULL, base[i], "db");
	assert_int_equal(env->txn_begin(env, NULL, &txn, 0), 0);
	put(c_db, txn, "a", "txn");
	put(c_db, txn, "d", "txn");
	put(c_db, txn, "g", "txn");
	DBT kf = S("f"), kh = S("h");
	assert_int_equal(c_db->del(c_db, txn, &kf, 0), 0);
	assert_int_equal(c_db->del(c_db, txn, &kh, 0), 0);
	DBC *c;
	assert_int_equal(c_db->cursor(c_db, txn, &c, 0), 0);
	assert_ptr_equal(c->txn, txn);
	const char *want_k[] = {"a", "b", "d", "g"}, *want_v[] = {"txn", "db", "txn", "txn"};
	for (int i = 0; i < 4; i++)
		cget(c, i ? DB_NEXT : DB_FIRST, 0, want_k[i], want_v[i]);
	cget(c, DB_NEXT, DB_NOTFOUND, NULL, NULL);
	for (int i = 3; i >= 0; i--)
		cget(c, i == 3 ? DB_LAST : DB_PREV, 0, want_k[i], want_v[i]);
	cget_in(c, DB_SET_RANGE, 0, "e", "g", "txn");
	cget(c, DB_CURRENT, 0, "g", "txn");
	cget_in(c, DB_SET, DB_NOTFOUND, "f", "f", NULL);
	assert_int_equal(c->del(c, 0), 0); /* deletes g in the txn */
	cget(c, DB_PREV, 0, "d", "txn");
	cget(c, DB_NEXT, DB_NOTFOUND, NULL, NULL);
	/* A non-transactional cursor sees none of it. */
	DBC *plain;
	assert_int_equal(c_db->cursor(c_db, NULL, &plain, 0), 0);
	cget(plain, DB_FIRST, 0, "b", "db");
	cget(plain, DB_LAST, 0, "h", "db");
	assert_int_equal(plain->close(plain), 0);
	/* Committing with the cursor open aborts. */
	msgs = 0;
	assert_int_equal(txn->commit(txn, 0), EINVAL);
	assert_int_equal(msgs, 1);
	cget(c, DB_FIRST, EINVAL, NULL, NULL); /* dead: only close works */
	assert_int_equal(c->close(c), 0);
	check(c_db, NULL, "a", NULL);
	check(c_db, NULL, "h", "db");

	/* Refusals. */
	assert_int_equal(env->txn_begin(env, NULL, &txn, 0), 0);
	assert_int_equal(env->txn_begin(env, txn, &txn2, 0), EINVAL);
	assert_int_equal(env->txn_begin(env, NULL, &txn2, DB_TXN_SNAPSHOT), EINVAL);
	uint32_t n;
	assert_int_equal(a->truncate(a, txn, &n, 0), EINVAL);
	DB *alone = open_db(NULL, NULL, DB_CREATE);
	DBT ak = S("k"), av = S("v");
	assert_int_equal(alone->put(alone, txn, &ak, &av, 0), EINVAL);
	assert_int_equal(alone->close(alone, 0), 0);
	assert_int_equal(txn->commit(txn, 0x4000), EINVAL); /* and aborted */
	DB *nofile;
	assert_int_equal(db_create(&nofile, env, 0), 0);
	assert_int_equal(nofile->open(nofile, NULL, NULL, NULL, DB_BTREE, DB_CREATE, 0), EINVAL);
	assert_int_equal(nofile->open(nofile, NULL, "missing.db", NULL, DB_BTREE, 0, 0), ENOENT);
	assert_int_equal(nofile->open(nofile, NULL, "a.db", NULL, DB_BTREE, DB_CREATE | DB_EXCL, 0),
	                 EEXIST);
	assert_int_equal(nofile->set_cachesize(nofile, 0, 1 << 20, 1), EINVAL);
	/* The same file twice in one environment: both handles work. */
	assert_int_equal(nofile->open(nofile, NULL, "a.db", NULL, DB_BTREE, 0, 0), 0);
	check(nofile, NULL, "x", "meanwhile");
	assert_int_equal(nofile->close(nofile, 0), 0);
	assert_int_equal(env->txn_checkpoint(env, 0, 0, 0), 0);

	/* Truncate inside an environment empties one file only. */
	assert_int_equal(b->truncate(b, NULL, &n, 0), 0);
	assert_int_equal(n, 1);
	check(b, NULL, "y", NULL);
	check(a, NULL, "x", "meanwhile");

	/* Closing the environment closes what is left (a, b, c_db, an open
	 * transaction); everything committed is there after reopening. */
	assert_int_equal(env->txn_begin(env, NULL, &txn, 0), 0);
	put(a, txn, "lost", "aborted by close");
	assert_int_equal(env->close(env, 0), 0);
	env = open_env(f->dir, 0);
	a = open_db("a.db", env, 0);
	check(a, NULL, "x", "meanwhile");
	check(a, NULL, "q", "txn wins");
	check(a, NULL, "lost", NULL);
	assert_int_equal(a->close(a, 0), 0);
	assert_int_equal(env->close(env, 0), 0);

	/* Without DB_INIT_TXN there are no transactions. */
	assert_int_equal(db_env_create(&env, 0), 0);
	env->set_errfile(env, NULL);
	assert_int_equal(env->open(env, f->dir, DB_INIT_CDB, 0), EINVAL);
	assert_int_equal(env->open(env, f->dir, DB_CREATE | DB_INIT_MPOOL, 0), 0);
	assert_int_equal(env->txn_begin(env, NULL, &txn, 0), EINVAL);
	/* One opener at a time. */
	DB_ENV *env2;
	assert_int_equal(db_env_create(&env2, 0), 0);
	env2->set_errfile(env2, NULL);
	assert_int_equal(env2->open(env2, f->dir, DB_CREATE, 0), EBUSY);
	assert_int_equal(env2->close(env2, 0), 0);
	assert_int_equal(env->close(env, 0), 0);
	char *nohome = tu_join(f->dir, "nohome");
	assert_int_equal(db_env_create(&env, 0), 0);
	assert_int_equal(env->open(env, nohome, DB_CREATE, 0), ENOENT);
	assert_int_equal(env->close(env, 0), 0);
	free(nohome);
}

/* ---- Threads
 * ---------------------------------------------------------------------------------------- */

typedef struct thread_arg {
	DB *db;
	int id;
	int errors;
} thread_arg;

static void *thread_main(void *p)
{
	thread_arg *a = p;
	char k[32], v[32];
	for (int i = 0; i < 500; i++) {
		snprintf(k, sizeof k, "t%d-%d", a->id, i);
		snprintf(v, sizeof v, "v%d", i);
		DBT key = S(k), data = S(v), o = out(DB_DBT_MALLOC);
		if (a->db->put(a->db, NULL, &key, &data, 0))
			a->errors++;
		if (a->db->get(a->db, NULL, &key, &o, 0) || o.size != strlen(v) ||
		    memcmp(o.data, v, o.size))
			a->errors++;
		free(o.data);
	}
	DBC *c;
	DBT key = out(DB_DBT_REALLOC), data = out(DB_DBT_REALLOC);
	if (a->db->cursor(a->db, NULL, &c, 0) == 0) {
		int n = 0;
		while (c->get(c, &key, &data, DB_NEXT) == 0)
			n++;
		if (n < 500)
			a->errors++;
		c->close(c);
	}
	free(key.data);
	free(data.data);
	return NULL;
}

static void test_threads(void **state)
{
	fixture *f = *state;
	DB *db = open_db(f->file, NULL, DB_CREATE | DB_THREAD);
	pthread_t t[4];
	thread_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (thread_arg){db, i, 0};
		pthread_create(&t[i], NULL, thread_main, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].errors, 0);
	}
	assert_int_equal(db->close(db, 0), 0);
}

/* ---- Differential tests against Berkeley DB
 * ---------------------------------------------------------- */

#define DIFF_OPS 20000
#define DIFF_KEYS 300

typedef struct blob {
	unsigned char *p;
	uint32_t n;
} blob;

/* Keys from a small alphabet, so that many share prefixes and NUL and
 * 0xff bytes test the order. */
static blob random_key(tu_rng *r)
{
	static const unsigned char abc[] = {0, 1, 'a', 'b', 'c', 0x7f, 0x80, 0xff};
	blob b;
	b.n = 1 + (uint32_t)tu_below(r, 6);
	b.p = malloc(b.n);
	for (uint32_t i = 0; i < b.n; i++)
		b.p[i] = abc[tu_below(r, sizeof abc)];
	return b;
}

static blob random_value(tu_rng *r)
{
	blob b;
	uint64_t c = tu_below(r, 100);
	b.n = (uint32_t)(c < 80   ? tu_below(r, 40)
	                 : c < 98 ? tu_below(r, 2000)
	                          : tu_below(r, 40000));
	b.p = malloc(b.n + 1);
	for (uint32_t i = 0; i < b.n; i++)
		b.p[i] = (unsigned char)tu_below(r, 256);
	return b;
}

/* One output DBT on both sides, with the same memory flags. */
typedef struct out_pair {
	DBT t;
	peer_dbt p;
	void *t_re, *p_re; /* DB_DBT_REALLOC buffers kept between calls */
	char t_user[64], p_user[64];
} out_pair;

static void out_prep(out_pair *o, tu_rng *r)
{
	static const uint32_t kinds[] = {0, DB_DBT_MALLOC, DB_DBT_REALLOC, DB_DBT_USERMEM};
	uint32_t fl = kinds[tu_below(r, 4)];
	memset(&o->t, 0, sizeof o->t);
	memset(&o->p, 0, sizeof o->p);
	o->t.flags = o->p.flags = fl;
	if (fl == DB_DBT_REALLOC) {
		o->t.data = o->t_re;
		o->p.data = o->p_re;
	} else if (fl == DB_DBT_USERMEM) {
		o->t.data = o->t_user;
		o->p.data = o->p_user;
		o->t.ulen = o->p.ulen = (uint32_t)tu_below(r, sizeof o->t_user + 1);
	}
}

/* Whether Trove found this DBT too small (it sets the size needed). */
static int too_small(const out_pair *o)
{
	return o->t.flags == DB_DBT_USERMEM && o->t.size > o->t.ulen;
}

/* Compares what came back when the call returned rc on both sides, and
 * releases what the call allocated.  p_in is what the peer's data pointer
 * was before the call. */
static void out_check(out_pair *o, int rc, int returned, const void *p_in)
{
	if (rc == 0 && returned) {
		assert_int_equal(o->t.size, o->p.size);
		if (o->t.size)
			assert_memory_equal(o->t.data, o->p.data, o->t.size);
	}
	if (o->t.flags == DB_DBT_MALLOC && rc == 0 && returned)
		free(o->t.data);
	/* On DB_BUFFER_SMALL libdb may have returned the key already (even
	 * malloc'd), before it found the data too small; Trove returns
	 * nothing then (see trove/db.h). */
	if (o->p.flags == DB_DBT_MALLOC && (rc == 0 || rc == DB_BUFFER_SMALL) && returned &&
	    o->p.data != p_in)
		free(o->p.data);
	if (o->t.flags == DB_DBT_REALLOC) {
		o->t_re = o->t.data;
		o->p_re = o->p.data;
	}
}

/* After DB_BUFFER_SMALL: the first DBT that Trove found too small (key,
 * then data) has the size libdb asked for too. */
static void small_check(const out_pair *k, const out_pair *d)
{
	const out_pair *o = k && too_small(k) ? k : d;
	assert_true(too_small(o));
	assert_int_equal(o->t.size, o->p.size);
}

static void in_pair(const blob *b, DBT *t, peer_dbt *p)
{
	memset(t, 0, sizeof *t);
	memset(p, 0, sizeof *p);
	t->data = p->data = b->p;
	t->size = p->size = b->n;
}

typedef struct diff {
	tu_rng r;
	DB *db;
	DBC *c;
	peer_bdb *g;
	DB_TXN *txn; /* the transaction open on the Trove side, or NULL */
	blob keys[DIFF_KEYS];
	out_pair ok, od;
	size_t counts[16];
} diff;

enum {
	N_PUT,
	N_GET,
	N_DEL,
	N_EXISTS,
	N_CGET,
	N_CDEL,
	N_CPUT,
	N_SMALL,
	N_NOTFOUND,
	N_REOPEN,
	N_COMMIT,
	N_ABORT,
	N_SCAN
};

static void diff_put(diff *x)
{
	blob *k = &x->keys[tu_below(&x->r, DIFF_KEYS)];
	blob v = random_value(&x->r);
	uint32_t fl = tu_below(&x->r, 3) == 0 ? DB_NOOVERWRITE : 0;
	DBT tk, tv;
	peer_dbt pk, pv;
	in_pair(k, &tk, &pk);
	in_pair(&v, &tv, &pv);
	int rt = x->db->put(x->db, x->txn, &tk, &tv, fl);
	int rg = peer_bdb_put(x->g, &pk, &pv, fl);
	assert_int_equal(rt, rg);
	x->counts[N_PUT]++;
	free(v.p);
}

/* DB_GET_BOTH on key k with value v (len n), or with v changed. */
static void diff_get_both(diff *x, DBT *tk, peer_dbt *pk, const void *v, uint32_t n)
{
	DBT b = out(0);
	peer_dbt pb = {0};
	unsigned char *copy = malloc(n + 1);
	if (n)
		memcpy(copy, v, n);
	if (n && tu_below(&x->r, 2))
		copy[tu_below(&x->r, n)] ^= 1;
	b.data = pb.data = copy;
	b.size = pb.size = n;
	int rt = x->db->get(x->db, x->txn, tk, &b, DB_GET_BOTH);
	assert_int_equal(rt, peer_bdb_get(x->g, pk, &pb, DB_GET_BOTH));
	free(copy);
	x->counts[N_GET]++;
}

static void diff_get(diff *x)
{
	blob *k = &x->keys[tu_below(&x->r, DIFF_KEYS)];
	DBT tk;
	peer_dbt pk;
	in_pair(k, &tk, &pk);
	out_prep(&x->od, &x->r);
	int rt = x->db->get(x->db, x->txn, &tk, &x->od.t, 0);
	int rg = peer_bdb_get(x->g, &pk, &x->od.p, 0);
	assert_int_equal(rt, rg);
	if (rt == DB_BUFFER_SMALL)
		small_check(NULL, &x->od);
	if (rt == 0 && tu_below(&x->r, 4) == 0) /* before out_check frees it */
		diff_get_both(x, &tk, &pk, x->od.p.data, x->od.p.size);
	out_check(&x->od, rt, 1, NULL);
	x->counts[N_GET]++;
	x->counts[N_SMALL] += rt == DB_BUFFER_SMALL;
	x->counts[N_NOTFOUND] += rt == DB_NOTFOUND;
}

static void diff_del_or_exists(diff *x, int del)
{
	blob *k = &x->keys[tu_below(&x->r, DIFF_KEYS)];
	DBT tk;
	peer_dbt pk;
	in_pair(k, &tk, &pk);
	int rt = del ? x->db->del(x->db, x->txn, &tk, 0) : x->db->exists(x->db, x->txn, &tk, 0);
	int rg = del ? peer_bdb_del(x->g, &pk, 0) : peer_bdb_exists(x->g, &pk, 0);
	assert_int_equal(rt, rg);
	x->counts[del ? N_DEL : N_EXISTS]++;
}

static void diff_cget(diff *x)
{
	static const uint32_t ops[] = {DB_FIRST, DB_LAST, DB_NEXT, DB_NEXT,      DB_NEXT,
	                               DB_PREV,  DB_PREV, DB_SET,  DB_SET_RANGE, DB_CURRENT};
	uint32_t op = ops[tu_below(&x->r, sizeof ops / sizeof ops[0])];
	blob probe = {NULL, 0};
	int key_in = op == DB_SET || op == DB_SET_RANGE;
	if (key_in)
		probe = tu_below(&x->r, 2) ? random_key(&x->r) : (blob){NULL, 0};
	if (key_in && !probe.p) {
		blob *k = &x->keys[tu_below(&x->r, DIFF_KEYS)];
		probe.n = k->n;
		probe.p = malloc(k->n);
		memcpy(probe.p, k->p, k->n);
	}
	out_prep(&x->ok, &x->r);
	out_prep(&x->od, &x->r);
	if (key_in) {
		/* The key goes in (and comes out for SET_RANGE) with the
		 * output flags; USERMEM gets a buffer holding the probe. */
		DBT *t = &x->ok.t;
		peer_dbt *p = &x->ok.p;
		if (t->flags == DB_DBT_USERMEM) {
			memcpy(x->ok.t_user, probe.p, probe.n);
			memcpy(x->ok.p_user, probe.p, probe.n);
			t->ulen = p->ulen = sizeof x->ok.t_user;
		} else if (t->flags == DB_DBT_REALLOC) {
			t->flags = p->flags = DB_DBT_MALLOC; /* keep the probe apart */
			t->data = p->data = probe.p;
		} else {
			t->data = p->data = probe.p;
		}
		t->size = p->size = probe.n;
	}
	const void *pk_in = x->ok.p.data, *pd_in = x->od.p.data;
	int rt = x->c->get(x->c, &x->ok.t, &x->od.t, op);
	int rg = peer_bdb_c_get(x->g, &x->ok.p, &x->od.p, op);
	assert_int_equal(rt, rg);
	if (rt == DB_BUFFER_SMALL)
		small_check(op == DB_SET ? NULL : &x->ok, &x->od);
	out_check(&x->ok, rt, op != DB_SET, pk_in);
	out_check(&x->od, rt, 1, pd_in);
	free(probe.p);
	x->counts[N_CGET]++;
	x->counts[N_SMALL] += rt == DB_BUFFER_SMALL;
	x->counts[N_NOTFOUND] += rt == DB_NOTFOUND;
}

static void diff_cdel_or_cput(diff *x, int del)
{
	int rt, rg;
	if (del) {
		rt = x->c->del(x->c, 0);
		rg = peer_bdb_c_del(x->g, 0);
	} else {
		/* DB_CURRENT, or DB_KEYFIRST/DB_KEYLAST with a key of the
		 * pool (the cursor moves to it). */
		static const uint32_t how[] = {DB_CURRENT, DB_CURRENT, DB_KEYFIRST, DB_KEYLAST};
		uint32_t fl = how[tu_below(&x->r, 4)];
		blob v = random_value(&x->r);
		DBT tk = out(0), tv;
		peer_dbt pk = {0}, pv;
		in_pair(&v, &tv, &pv);
		if (fl != DB_CURRENT)
			in_pair(&x->keys[tu_below(&x->r, DIFF_KEYS)], &tk, &pk);
		rt = x->c->put(x->c, &tk, &tv, fl);
		rg = peer_bdb_c_put(x->g, &pk, &pv, fl);
		free(v.p);
	}
	assert_int_equal(rt, rg);
	x->counts[del ? N_CDEL : N_CPUT]++;
}

/* Every key and value in order, on both: a btree's order is Trove's. */
static void diff_scan(diff *x)
{
	int rt, rg, n = 0;
	do {
		uint32_t op = n++ ? DB_NEXT : DB_FIRST;
		DBT tk = out(0), td = out(0);
		peer_dbt pk = {0}, pd = {0};
		rt = x->c->get(x->c, &tk, &td, op);
		rg = peer_bdb_c_get(x->g, &pk, &pd, op);
		assert_int_equal(rt, rg);
		if (rt == 0) {
			assert_int_equal(tk.size, pk.size);
			assert_memory_equal(tk.data, pk.data, tk.size);
			assert_int_equal(td.size, pd.size);
			if (td.size)
				assert_memory_equal(td.data, pd.data, td.size);
		}
	} while (rt == 0);
	x->counts[N_SCAN]++;
}

static void diff_cursor_reopen(diff *x)
{
	if (x->c)
		assert_int_equal(x->c->close(x->c), 0);
	assert_int_equal(x->db->cursor(x->db, x->txn, &x->c, 0), 0);
	assert_int_equal(peer_bdb_cursor(x->g), 0);
}

static void diff_cursor_close(diff *x)
{
	if (x->c)
		assert_int_equal(x->c->close(x->c), 0);
	x->c = NULL;
	assert_int_equal(peer_bdb_cursor_close(x->g), 0);
}

/* In an environment, cursors live inside transactions only: a cursor of
 * no transaction holds libdb's locks, and the next auto-commit write of
 * the same thread would wait for them forever. */
static void diff_txn_begin(diff *x, DB_ENV *env)
{
	assert_int_equal(env->txn_begin(env, NULL, &x->txn, 0), 0);
	assert_int_equal(peer_bdb_txn_begin(x->g), 0);
	diff_cursor_reopen(x);
}

static void diff_txn_end(diff *x)
{
	int commit = tu_below(&x->r, 3) != 0;
	diff_cursor_close(x);
	int rt = commit ? x->txn->commit(x->txn, 0) : x->txn->abort(x->txn);
	int rg = commit ? peer_bdb_txn_commit(x->g) : peer_bdb_txn_abort(x->g);
	assert_int_equal(rt, rg);
	x->txn = NULL;
	x->counts[commit ? N_COMMIT : N_ABORT]++;
}

static void diff_reopen(diff *x, DB_ENV *env, const char *tfile, const char *phome,
                        const char *pfile)
{
	diff_cursor_close(x);
	assert_int_equal(x->db->close(x->db, 0), 0);
	assert_int_equal(peer_bdb_close(x->g), 0);
	x->db = open_db(tfile, env, 0);
	int rc;
	x->g = peer_bdb_open(phome, pfile, 0, &rc);
	assert_non_null(x->g);
	if (!env)
		diff_cursor_reopen(x);
	x->counts[N_REOPEN]++;
}

/* Plays DIFF_OPS random calls on both; in an environment (env not NULL),
 * transactions come and go, and the cursor with them. */
static void diff_run(diff *x, DB_ENV *env, const char *tfile, const char *phome, const char *pfile)
{
	for (int op = 0; op < DIFF_OPS; op++) {
		uint64_t c = tu_below(&x->r, 1000);
		if (env && !x->txn && c >= 550 && c < 985)
			c = 990; /* a cursor call: begin a transaction first */
		if (c < 250)
			diff_put(x);
		else if (c < 400)
			diff_get(x);
		else if (c < 500)
			diff_del_or_exists(x, 1);
		else if (c < 550)
			diff_del_or_exists(x, 0);
		else if (c < 870)
			diff_cget(x);
		else if (c < 920)
			diff_cdel_or_cput(x, 1);
		else if (c < 960)
			diff_cdel_or_cput(x, 0);
		else if (c < 975)
			diff_cursor_reopen(x);
		else if (c < 985)
			diff_scan(x);
		else if (env && c < 998)
			x->txn ? diff_txn_end(x) : diff_txn_begin(x, env);
		else if (!x->txn)
			diff_reopen(x, env, tfile, phome, pfile);
	}
	if (env && x->txn)
		diff_txn_end(x);
	if (env)
		diff_txn_begin(x, env);
	diff_scan(x);
	if (env)
		diff_txn_end(x);
}

static void diff_init(diff *x, const char *name)
{
	memset(x, 0, sizeof *x);
	tu_rng_seed(&x->r, tu_seed(name));
	for (int i = 0; i < DIFF_KEYS; i++)
		x->keys[i] = random_key(&x->r); /* duplicates are fine */
}

static void diff_report(diff *x, const char *name)
{
	size_t *n = x->counts;
	printf("# %s: %d ops: %zu puts, %zu gets, %zu deletes, %zu exists, %zu cursor gets, "
	       "%zu cursor deletes, %zu cursor puts, %zu scans, %zu reopens, %zu commits, "
	       "%zu aborts; %zu DB_NOTFOUND, %zu DB_BUFFER_SMALL\n",
	       name, DIFF_OPS, n[N_PUT], n[N_GET], n[N_DEL], n[N_EXISTS], n[N_CGET], n[N_CDEL],
	       n[N_CPUT], n[N_SCAN], n[N_REOPEN], n[N_COMMIT], n[N_ABORT], n[N_NOTFOUND],
	       n[N_SMALL]);
	free(x->ok.t_re);
	free(x->ok.p_re);
	free(x->od.t_re);
	free(x->od.p_re);
	for (int i = 0; i < DIFF_KEYS; i++)
		free(x->keys[i].p);
}

static void test_differential_btree(void **state)
{
	fixture *f = *state;
	diff *x = malloc(sizeof *x);
	diff_init(x, "bdb differential btree");
	char *pfile = tu_join(f->dir, "libdb.db");
	x->db = open_db(f->file, NULL, DB_CREATE | DB_TRUNCATE);
	x->db->set_errfile(x->db, NULL);
	x->db->set_errcall(x->db, NULL);
	int rc;
	x->g = peer_bdb_open(NULL, pfile, DB_CREATE | DB_TRUNCATE, &rc);
	assert_non_null(x->g);
	diff_cursor_reopen(x);
	diff_run(x, NULL, f->file, NULL, pfile);
	diff_cursor_close(x);
	assert_int_equal(x->db->close(x->db, 0), 0);
	assert_int_equal(peer_bdb_close(x->g), 0);
	diff_report(x, "bdb differential btree");
	free(pfile);
	free(x);
}

static void test_differential_txn(void **state)
{
	fixture *f = *state;
	diff *x = malloc(sizeof *x);
	diff_init(x, "bdb differential txn");
	char *thome = tu_join(f->dir, "trove-env"), *phome = tu_join(f->dir, "libdb-env");
	assert_int_equal(mkdir(thome, 0700), 0);
	assert_int_equal(mkdir(phome, 0700), 0);
	DB_ENV *env = open_env(thome, 0);
	env->set_errcall(env, NULL);
	env->set_errfile(env, NULL);
	x->db = open_db("t.db", env, DB_CREATE);
	int rc;
	x->g = peer_bdb_open(phome, "t.db", DB_CREATE, &rc);
	assert_non_null(x->g);
	diff_run(x, env, "t.db", phome, "t.db");
	diff_cursor_close(x);
	assert_int_equal(x->db->close(x->db, 0), 0);
	assert_int_equal(env->close(env, 0), 0);
	assert_int_equal(peer_bdb_close(x->g), 0);
	diff_report(x, "bdb differential txn");
	free(thome);
	free(phome);
	free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_chapter_example, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_open, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_methods, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dbt_memory, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cursors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_env_and_txn, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_differential_btree, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_differential_txn, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
