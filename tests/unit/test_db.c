/*
 * test_db.c - the public API of libtrove, end to end on real files.
 *
 * One test per promise of trove.h: opening and locking, the core
 * operations and their limits, conditional writes, versions and expiry,
 * batches and conditional transactions, cursors and snapshots, counting,
 * backup, compaction and verification.  Several tests use a 1 MiB memory
 * budget so that flushes and compactions happen within a few thousand
 * writes, and compare the database against a model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "trove.h"

typedef struct fixture {
	char *dir;
	trove_db *db;
	trove_options o;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->dir = tu_tmpdir("db");
	trove_options_init(&f->o);
	f->o.sync = TROVE_SYNC_NONE;
	assert_int_equal(trove_open(f->dir, &f->o, &f->db), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	if (f->db)
		assert_int_equal(trove_close(f->db), 0);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void reopen(fixture *f)
{
	assert_int_equal(trove_close(f->db), 0);
	f->db = NULL;
	assert_int_equal(trove_open(f->dir, &f->o, &f->db), 0);
}

static void reopen_with_budget(fixture *f, size_t budget)
{
	assert_int_equal(trove_close(f->db), 0);
	f->o.memory_budget = budget;
	assert_int_equal(trove_open(f->dir, &f->o, &f->db), 0);
}

static void check_value(trove_db *db, const char *k, const char *v)
{
	void *val;
	size_t len;
	int rc = trove_get(db, k, strlen(k), &val, &len);
	if (!v) {
		assert_int_equal(rc, TROVE_ENOTFOUND);
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(len, strlen(v));
	assert_memory_equal(val, v, len);
	trove_free(val);
}

static int put(trove_db *db, const char *k, const char *v)
{
	return trove_put(db, k, strlen(k), v, strlen(v));
}

/* ---- Opening ------------------------------------------------------------------ */

static void test_open_options(void **state)
{
	fixture *f = *state;
	trove_db *db2;
	/* A second opener of the same directory is refused. */
	assert_int_equal(trove_open(f->dir, &f->o, &db2), TROVE_ELOCKED);
	assert_int_equal(put(f->db, "a", "1"), 0);
	assert_int_equal(trove_close(f->db), 0);
	f->db = NULL;

	trove_options o = f->o;
	o.error_if_exists = 1;
	assert_int_equal(trove_open(f->dir, &o, &db2), TROVE_EEXIST);

	char *missing = tu_join(f->dir, "missing");
	o = f->o;
	o.create_if_missing = 0;
	assert_int_equal(trove_open(missing, &o, &db2), TROVE_ENOTFOUND);
	free(missing);

	o = f->o;
	o.read_only = 1;
	assert_int_equal(trove_open(f->dir, &o, &db2), 0);
	check_value(db2, "a", "1");
	assert_int_equal(put(db2, "b", "2"), TROVE_EREADONLY);
	assert_int_equal(trove_del(db2, "a", 1), TROVE_EREADONLY);
	assert_int_equal(trove_close(db2), 0);

	/* Contradictory or bad options. */
	o = f->o;
	o.in_memory = 1;
	o.read_only = 1;
	assert_int_equal(trove_open(f->dir, &o, &db2), TROVE_EINVAL);
	o = f->o;
	o.sync = 7;
	assert_int_equal(trove_open(f->dir, &o, &db2), TROVE_EINVAL);
	o = f->o;
	o.memory_budget = 1000;
	assert_int_equal(trove_open(f->dir, &o, &db2), TROVE_EINVAL);
	assert_int_equal(trove_open(NULL, &f->o, &db2), TROVE_EINVAL);
	assert_int_equal(trove_open(f->dir, &f->o, NULL), TROVE_EINVAL);

	assert_int_equal(trove_open(f->dir, &f->o, &f->db), 0);
	check_value(f->db, "a", "1");
}

static void test_in_memory(void **state)
{
	(void)state;
	trove_options o;
	trove_options_init(&o);
	o.in_memory = 1;
	o.memory_budget = 1 << 20;
	trove_db *db;
	assert_int_equal(trove_open(NULL, &o, &db), 0);
	char k[32], v[64];
	for (int i = 0; i < 20000; i++) {
		snprintf(k, sizeof k, "key%06d", i);
		snprintf(v, sizeof v, "value-%d-%d", i, i * 7);
		assert_int_equal(put(db, k, v), 0);
	}
	for (int i = 0; i < 20000; i += 97) {
		snprintf(k, sizeof k, "key%06d", i);
		snprintf(v, sizeof v, "value-%d-%d", i, i * 7);
		check_value(db, k, v);
	}
	uint64_t n;
	assert_int_equal(trove_count(db, &n), 0);
	assert_int_equal(n, 20000);
	assert_int_equal(trove_backup(db, "/tmp/nowhere"), TROVE_EINVAL);
	assert_int_equal(trove_close(db), 0);
}

/* ---- Core operations ------------------------------------------------------------ */

static void test_get_put_del(void **state)
{
	fixture *f = *state;
	check_value(f->db, "k", NULL);
	assert_int_equal(put(f->db, "k", "v1"), 0);
	check_value(f->db, "k", "v1");
	assert_int_equal(put(f->db, "k", "v2"), 0);
	check_value(f->db, "k", "v2");
	assert_int_equal(trove_exists(f->db, "k", 1), 0);
	assert_int_equal(trove_del(f->db, "k", 1), 0);
	check_value(f->db, "k", NULL);
	assert_int_equal(trove_exists(f->db, "k", 1), TROVE_ENOTFOUND);
	assert_int_equal(trove_del(f->db, "k", 1), 0); /* deleting nothing is fine */

	/* Empty values and binary keys. */
	assert_int_equal(trove_put(f->db, "e", 1, "", 0), 0);
	void *val;
	size_t len = 99;
	assert_int_equal(trove_get(f->db, "e", 1, &val, &len), 0);
	assert_int_equal(len, 0);
	trove_free(val);
	const char bin[] = { 0, 1, (char)0xff, 0 };
	assert_int_equal(trove_put(f->db, bin, sizeof bin, bin, sizeof bin), 0);
	assert_int_equal(trove_get(f->db, bin, sizeof bin, &val, &len), 0);
	assert_int_equal(len, sizeof bin);
	assert_memory_equal(val, bin, sizeof bin);
	trove_free(val);

	reopen(f);
	check_value(f->db, "k", NULL);
	assert_int_equal(trove_get(f->db, bin, sizeof bin, &val, &len), 0);
	trove_free(val);
}

static void test_limits_and_bad_input(void **state)
{
	fixture *f = *state;
	void *val;
	size_t len;
	assert_int_equal(trove_put(f->db, "", 0, "v", 1), TROVE_EINVAL);
	assert_int_equal(trove_put(f->db, NULL, 1, "v", 1), TROVE_EINVAL);
	assert_int_equal(trove_put(f->db, "k", 1, NULL, 5), TROVE_EINVAL);
	assert_int_equal(trove_put(NULL, "k", 1, "v", 1), TROVE_EINVAL);
	assert_int_equal(trove_get(f->db, "k", 1, NULL, &len), TROVE_EINVAL);

	char *big = calloc(1, TROVE_MAX_VALUE + 1);
	memset(big, 'x', TROVE_MAX_KEY + 1);
	assert_int_equal(trove_put(f->db, big, TROVE_MAX_KEY + 1, "v", 1), TROVE_ETOOBIG);
	assert_int_equal(trove_get(f->db, big, TROVE_MAX_KEY + 1, &val, &len), TROVE_ETOOBIG);
	assert_int_equal(trove_put(f->db, big, TROVE_MAX_KEY, "v", 1), 0);
	assert_int_equal(trove_get(f->db, big, TROVE_MAX_KEY, &val, &len), 0);
	trove_free(val);

	/* The largest value is stored whole; one byte more is refused. */
	big[TROVE_MAX_VALUE - 1] = 'z';
	assert_int_equal(trove_put(f->db, "big", 3, big, TROVE_MAX_VALUE + 1), TROVE_ETOOBIG);
	assert_int_equal(trove_put(f->db, "big", 3, big, TROVE_MAX_VALUE), 0);
	assert_int_equal(trove_get(f->db, "big", 3, &val, &len), 0);
	assert_int_equal(len, TROVE_MAX_VALUE);
	assert_memory_equal(val, big, len);
	trove_free(val);
	reopen(f);
	assert_int_equal(trove_get(f->db, "big", 3, &val, &len), 0);
	assert_int_equal(len, TROVE_MAX_VALUE);
	assert_int_equal(((char *)val)[TROVE_MAX_VALUE - 1], 'z');
	trove_free(val);
	free(big);

	for (int c = 0; c >= -16; c--)
		assert_string_not_equal(trove_strerror(c), "unknown error");
	assert_string_equal(trove_strerror(-1000), "unknown error");
}

/* ---- Conditional writes and versions --------------------------------------------- */

static void test_conditional(void **state)
{
	fixture *f = *state;
	trove_db *db = f->db;
	assert_int_equal(trove_put_if_absent(db, "k", 1, "a", 1), 0);
	assert_int_equal(trove_put_if_absent(db, "k", 1, "b", 1), TROVE_EEXIST);
	check_value(db, "k", "a");
	assert_int_equal(trove_put_if_present(db, "k", 1, "c", 1), 0);
	assert_int_equal(trove_put_if_present(db, "x", 1, "c", 1), TROVE_ENOTFOUND);
	check_value(db, "x", NULL);
	assert_int_equal(trove_cas(db, "k", 1, "zzz", 3, "d", 1), TROVE_ECONDITION);
	assert_int_equal(trove_cas(db, "k", 1, "c", 1, "d", 1), 0);
	check_value(db, "k", "d");
	assert_int_equal(trove_cas(db, "nope", 4, "c", 1, "d", 1), TROVE_ECONDITION);

	trove_meta m;
	assert_int_equal(trove_get_ex(db, NULL, "k", 1, NULL, NULL, &m), 0);
	uint64_t v1 = m.version;
	assert_true(v1 > 0);
	assert_int_equal(trove_cas_version(db, "k", 1, v1 + 1, "e", 1), TROVE_ECONDITION);
	assert_int_equal(trove_cas_version(db, "k", 1, v1, "e", 1), 0);
	assert_int_equal(trove_get_ex(db, NULL, "k", 1, NULL, NULL, &m), 0);
	assert_true(m.version > v1);
	/* Version 0 means "absent". */
	assert_int_equal(trove_cas_version(db, "new", 3, 0, "n", 1), 0);
	assert_int_equal(trove_cas_version(db, "new", 3, 0, "n", 1), TROVE_ECONDITION);

	int deleted = -1;
	assert_int_equal(trove_del_ex(db, "k", 1, NULL, &deleted), 0);
	assert_int_equal(deleted, 1);
	assert_int_equal(trove_del_ex(db, "k", 1, NULL, &deleted), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(trove_del_if_exists(db, "k", 1), TROVE_ENOTFOUND);
	assert_int_equal(trove_del_if_exists(db, "new", 3), 0);
	check_value(db, "new", NULL);
	trove_cond c = { .kind = TROVE_IF_VALUE, .value = "v", .value_len = 1 };
	assert_int_equal(put(db, "dv", "w"), 0);
	assert_int_equal(trove_del_ex(db, "dv", 2, &c, NULL), TROVE_ECONDITION);
	assert_int_equal(put(db, "dv", "v"), 0);
	assert_int_equal(trove_del_ex(db, "dv", 2, &c, &deleted), 0);
	assert_int_equal(deleted, 1);

	/* Versions grow with every write of a key and survive a restart. */
	uint64_t last = 0, ver;
	trove_put_opts po;
	memset(&po, 0, sizeof po);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(trove_put_ex(db, "v", 1, "x", 1, &po, &ver), 0);
		assert_true(ver > last);
		last = ver;
	}
	reopen(f);
	assert_int_equal(trove_get_ex(f->db, NULL, "v", 1, NULL, NULL, &m), 0);
	assert_int_equal(m.version, last);
	assert_int_equal(trove_put_ex(f->db, "v", 1, "x", 1, &po, &ver), 0);
	assert_true(ver > last);
}

/* The version a write's condition read. */
static uint64_t version_of(trove_db *db, const char *k)
{
	trove_meta m;
	int rc = trove_get_ex(db, NULL, k, strlen(k), NULL, NULL, &m);
	assert_true(rc == 0 || rc == TROVE_ENOTFOUND);
	return rc == 0 ? m.version : 0;
}

/* A write of a key that a condition of its batch read uses the state the
 * condition read (INCR's commit): the count, the expiries and the values
 * come out as if the key had been read again, whatever the order of the
 * conditions and the writes, and whether the key is in a table or in the
 * memtable. */
static void test_condition_state_reused(void **state)
{
	fixture *f = *state;
	trove_db *db = f->db;
	int64_t far = 4102444800000LL, ttl;
	assert_int_equal(put(db, "k0", "a"), 0);
	assert_int_equal(trove_put_ttl(db, "k1", 2, "b", 1, 1000000), 0);
	assert_int_equal(put(db, "k2", "c"), 0);
	assert_int_equal(trove_put_ttl(db, "k3", 2, "d", 1, 1000000), 0);
	assert_int_equal(trove_flush(db), 0);
	assert_int_equal(trove_put_ttl(db, "k4", 2, "e", 1, 1000000), 0); /* memtable */
	for (int reversed = 0; reversed < 2; reversed++) {
		const char *keys[] = { "k0", "k1", "k2", "k3", "k4", "k9" };
		trove_batch *b = trove_batch_new();
		for (int i = 0; i < 6; i++) {
			const char *k = keys[reversed ? 5 - i : i];
			trove_cond c = { .kind = TROVE_IF_VERSION, .version = version_of(db, k) };
			assert_int_equal(trove_batch_require(b, k, 2, &c), 0);
		}
		assert_int_equal(trove_batch_put(b, "k0", 2, "A", 1), 0);
		assert_int_equal(trove_batch_put(b, "k1", 2, "B", 1), 0); /* drops its expiry */
		assert_int_equal(trove_batch_del(b, "k2", 2), 0);
		assert_int_equal(trove_batch_put_ttl(b, "k3", 2, "D", 1, far), 0);
		assert_int_equal(trove_batch_put(b, "k35", 3, "x", 1), 0); /* no condition */
		assert_int_equal(trove_batch_del(b, "k4", 2), 0);
		assert_int_equal(trove_batch_put(b, "k9", 2, "Z", 1), 0);
		trove_write_result res;
		assert_int_equal(trove_write(db, b, &res), 0);
		trove_batch_free(b);
		check_value(db, "k0", "A");
		check_value(db, "k1", "B");
		check_value(db, "k2", NULL);
		check_value(db, "k3", "D");
		check_value(db, "k4", NULL);
		check_value(db, "k9", "Z");
		assert_int_equal(trove_ttl(db, "k1", 2, &ttl), 0);
		assert_int_equal(ttl, -1);
		assert_int_equal(trove_ttl(db, "k3", 2, &ttl), 0);
		assert_true(ttl > 1000000);
		uint64_t n;
		assert_int_equal(trove_count(db, &n), 0);
		assert_int_equal(n, 5); /* k0 k1 k3 k35 k9 */
		/* Put the keys back as they were for the second round. */
		assert_int_equal(put(db, "k2", "c"), 0);
		assert_int_equal(trove_put_ttl(db, "k1", 2, "b", 1, 1000000), 0);
		assert_int_equal(trove_put_ttl(db, "k4", 2, "e", 1, 1000000), 0);
		assert_int_equal(trove_del(db, "k9", 2), 0);
		assert_int_equal(trove_del(db, "k35", 3), 0);
		assert_int_equal(trove_flush(db), 0);
	}
	/* One write of one key under its own version condition, keeping the
	 * expiry it read. */
	trove_put_opts o = { .ttl_mode = TROVE_TTL_KEEP,
		             .cond = { .kind = TROVE_IF_VERSION,
		                       .version = version_of(db, "k1") } };
	assert_int_equal(trove_put_ex(db, "k1", 2, "kept", 4, &o, NULL), 0);
	check_value(db, "k1", "kept");
	assert_int_equal(trove_ttl(db, "k1", 2, &ttl), 0);
	assert_true(ttl > 0 && ttl <= 1000000);
	reopen(f);
	uint64_t n;
	assert_int_equal(trove_count(f->db, &n), 0);
	assert_int_equal(n, 5); /* k0 k1 k2 k3 k4 */
}

/* TROVE_IF_UNCHANGED holds while nothing wrote the key since the read,
 * whether the commit skips reading the key again (no memtable holds it,
 * nothing since the read reached the tables) or not, and fails once a
 * write came between, in the memtable or flushed to a table.  The count
 * and what a delete reports come out as if the key had been read. */
static void test_unchanged_condition(void **state)
{
	fixture *f = *state;
	trove_db *db = f->db;
	assert_int_equal(put(db, "k0", "a"), 0);
	assert_int_equal(put(db, "k1", "b"), 0);
	assert_int_equal(trove_flush(db), 0);
	for (int round = 0; round < 2; round++) {
		/* Unchanged: a present key, an absent one, and a delete that
		 * reports what it removed. */
		uint64_t since = trove_last_version(db);
		trove_put_opts o = { .ttl_mode = TROVE_TTL_KEEP,
			             .cond = { .kind = TROVE_IF_UNCHANGED, .since = since } };
		o.cond.version = version_of(db, "k0");
		assert_int_equal(trove_put_ex(db, "k0", 2, "A", 1, &o, NULL), 0);
		o.cond.version = version_of(db, "n0");
		assert_int_equal(o.cond.version, 0);
		assert_int_equal(trove_put_ex(db, "n0", 2, "N", 1, &o, NULL), 0);
		trove_cond c = { .kind = TROVE_IF_UNCHANGED, .since = since,
			         .version = version_of(db, "k1") };
		int deleted = 0;
		assert_int_equal(trove_del_ex(db, "k1", 2, &c, &deleted), 0);
		assert_int_equal(deleted, 1);
		check_value(db, "k0", "A");
		check_value(db, "n0", "N");
		check_value(db, "k1", NULL);
		/* Changed after the read: in the memtable, then in a table. */
		since = trove_last_version(db);
		o.cond.since = since;
		o.cond.version = version_of(db, "k0");
		assert_int_equal(put(db, "k0", "other"), 0);
		assert_int_equal(trove_put_ex(db, "k0", 2, "B", 1, &o, NULL), TROVE_ECONDITION);
		assert_int_equal(trove_flush(db), 0);
		assert_int_equal(trove_put_ex(db, "k0", 2, "B", 1, &o, NULL), TROVE_ECONDITION);
		o.cond.version = version_of(db, "n1");
		assert_int_equal(put(db, "n1", "x"), 0);
		assert_int_equal(trove_flush(db), 0);
		assert_int_equal(trove_put_ex(db, "n1", 2, "B", 1, &o, NULL), TROVE_ECONDITION);
		check_value(db, "k0", "other");
		check_value(db, "n1", "x");
		uint64_t n;
		assert_int_equal(trove_count(db, &n), 0);
		assert_int_equal(n, 3); /* k0 n0 n1 */
		/* Again with an expiry in a table: the commit reads every key. */
		assert_int_equal(put(db, "k0", "a"), 0);
		assert_int_equal(put(db, "k1", "b"), 0);
		assert_int_equal(trove_del(db, "n0", 2), 0);
		assert_int_equal(trove_del(db, "n1", 2), 0);
		assert_int_equal(trove_put_ttl(db, "t", 1, "t", 1, 1000000), 0);
		assert_int_equal(trove_flush(db), 0);
		assert_int_equal(trove_del(db, "t", 1), 0);
	}
	reopen(f);
	uint64_t n;
	assert_int_equal(trove_count(f->db, &n), 0);
	assert_int_equal(n, 2); /* k0 k1 */
}

/* Many threads race put-if-absent on the same keys: exactly one wins each. */
typedef struct race_arg {
	trove_db *db;
	int id;
	int wins;
} race_arg;

static void *race_main(void *p)
{
	race_arg *a = p;
	char k[16], v[16];
	for (int i = 0; i < 500; i++) {
		snprintf(k, sizeof k, "r%d", i);
		snprintf(v, sizeof v, "%d", a->id);
		if (trove_put_if_absent(a->db, k, strlen(k), v, strlen(v)) == 0)
			a->wins++;
	}
	return NULL;
}

static void test_racing_conditions(void **state)
{
	fixture *f = *state;
	pthread_t t[4];
	race_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (race_arg){ f->db, i, 0 };
		pthread_create(&t[i], NULL, race_main, &a[i]);
	}
	int wins = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		wins += a[i].wins;
	}
	assert_int_equal(wins, 500);
	uint64_t n;
	assert_int_equal(trove_count(f->db, &n), 0);
	assert_int_equal(n, 500);
}

/* ---- Expiry ------------------------------------------------------------------------- */

/* trove_get_into: the value copied into the caller's buffer, cut to fit,
 * from the memtable and from a table, with and without an expiry; the
 * buffer untouched when the read fails. */
static void check_into_len(trove_db *db, const trove_snapshot *snap, const char *k,
                           const char *v, size_t vlen)
{
	char buf[8];
	size_t len = 99;
	memset(buf, '#', sizeof buf);
	int rc = trove_get_into(db, snap, k, strlen(k), buf, sizeof buf, &len, NULL);
	if (!v) {
		assert_int_equal(rc, TROVE_ENOTFOUND);
		assert_int_equal(len, 99);
		for (size_t i = 0; i < sizeof buf; i++)
			assert_int_equal(buf[i], '#');
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(len, vlen);
	size_t n = len < sizeof buf ? len : sizeof buf;
	assert_memory_equal(buf, v, n);
	for (size_t i = n; i < sizeof buf; i++)
		assert_int_equal(buf[i], '#'); /* no NUL, nothing past the value */
}

static void check_into(trove_db *db, const trove_snapshot *snap, const char *k, const char *v)
{
	check_into_len(db, snap, k, v, v ? strlen(v) : 0);
}

static void test_get_into(void **state)
{
	fixture *f = *state;
	trove_db *db = f->db;
	char big[1000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(trove_put(db, "big", 3, big, sizeof big), 0);
	assert_int_equal(put(db, "short", "abc"), 0);
	assert_int_equal(put(db, "exact", "12345678"), 0);
	assert_int_equal(trove_put(db, "empty", 5, "", 0), 0);
	assert_int_equal(put(db, "gone", "x"), 0);
	assert_int_equal(trove_del(db, "gone", 4), 0);
	assert_int_equal(trove_put_ttl(db, "ttl", 3, "timed", 5, 100000), 0);
	assert_int_equal(trove_put_ttl(db, "dies", 4, "soon", 4, 1), 0);
	usleep(5000);

	for (int round = 0; round < 2; round++) { /* the memtable, then a table */
		check_into(db, NULL, "short", "abc");
		check_into(db, NULL, "exact", "12345678");
		check_into(db, NULL, "empty", "");
		check_into_len(db, NULL, "big", "abcdefgh", sizeof big); /* cut to 8 */
		check_into(db, NULL, "ttl", "timed");   /* the expiry is not in the value */
		check_into(db, NULL, "gone", NULL);
		check_into(db, NULL, "dies", NULL);
		check_into(db, NULL, "missing", NULL);

		/* The whole length first, then the whole value. */
		size_t len = 0;
		assert_int_equal(trove_get_into(db, NULL, "big", 3, NULL, 0, &len, NULL), 0);
		assert_int_equal(len, sizeof big);
		char *whole = malloc(len);
		assert_int_equal(trove_get_into(db, NULL, "big", 3, whole, len, &len, NULL), 0);
		assert_memory_equal(whole, big, sizeof big);
		free(whole);

		/* Metadata as trove_get_ex gives it. */
		trove_meta m1, m2;
		char buf[16];
		assert_int_equal(trove_get_into(db, NULL, "ttl", 3, buf, sizeof buf, &len, &m1), 0);
		assert_int_equal(trove_get_ex(db, NULL, "ttl", 3, NULL, NULL, &m2), 0);
		assert_int_equal(m1.version, m2.version);
		assert_true(m1.expire_at_ms > 0);
		assert_int_equal(m1.expire_at_ms, m2.expire_at_ms);
		assert_int_equal(trove_flush(db), 0);
	}

	/* A snapshot reads the value it saw. */
	trove_snapshot *snap = trove_snapshot_new(db);
	assert_non_null(snap);
	assert_int_equal(put(db, "short", "new"), 0);
	check_into(db, snap, "short", "abc");
	check_into(db, NULL, "short", "new");
	trove_snapshot_free(db, snap);

	/* Bad arguments. */
	size_t len;
	char buf[4];
	assert_int_equal(trove_get_into(db, NULL, "short", 5, buf, sizeof buf, NULL, NULL),
	                 TROVE_EINVAL);
	assert_int_equal(trove_get_into(db, NULL, "short", 5, NULL, 4, &len, NULL), TROVE_EINVAL);
	assert_int_equal(trove_get_into(db, NULL, "", 0, buf, sizeof buf, &len, NULL), TROVE_EINVAL);
	assert_int_equal(trove_get_into(NULL, NULL, "k", 1, buf, sizeof buf, &len, NULL),
	                 TROVE_EINVAL);
}

static void test_ttl(void **state)
{
	fixture *f = *state;
	trove_db *db = f->db;
	int64_t ttl;
	assert_int_equal(put(db, "plain", "p"), 0);
	assert_int_equal(trove_ttl(db, "plain", 5, &ttl), 0);
	assert_int_equal(ttl, -1);
	assert_int_equal(trove_ttl(db, "none", 4, &ttl), TROVE_ENOTFOUND);

	assert_int_equal(trove_put_ttl(db, "short", 5, "s", 1, 150), 0);
	assert_int_equal(trove_put_ttl(db, "long", 4, "l", 1, 100000), 0);
	assert_int_equal(trove_ttl(db, "long", 4, &ttl), 0);
	assert_true(ttl > 90000 && ttl <= 100000);
	assert_int_equal(trove_put_ttl(db, "x", 1, "l", 1, 0), TROVE_EINVAL);
	check_value(db, "short", "s");
	uint64_t n;
	assert_int_equal(trove_count(db, &n), 0);
	assert_int_equal(n, 3);

	/* Persist removes the expiry; expire_at sets one on an existing key. */
	assert_int_equal(trove_persist(db, "long", 4), 0);
	assert_int_equal(trove_ttl(db, "long", 4, &ttl), 0);
	assert_int_equal(ttl, -1);
	assert_int_equal(trove_persist(db, "long", 4), TROVE_ECONDITION);
	assert_int_equal(trove_persist(db, "none", 4), TROVE_ENOTFOUND);
	trove_meta m;
	assert_int_equal(trove_get_ex(db, NULL, "plain", 5, NULL, NULL, &m), 0);
	int64_t at = m.expire_at_ms;
	assert_int_equal(at, 0);
	assert_int_equal(trove_expire_at(db, "none", 4, 1), TROVE_ENOTFOUND);

	/* KEEP keeps the expiry; a plain put drops it. */
	trove_put_opts po = { .ttl_mode = TROVE_TTL_IN, .ttl_ms = 60000 };
	assert_int_equal(trove_put_ex(db, "keep", 4, "1", 1, &po, NULL), 0);
	po.ttl_mode = TROVE_TTL_KEEP;
	assert_int_equal(trove_put_ex(db, "keep", 4, "2", 1, &po, NULL), 0);
	assert_int_equal(trove_ttl(db, "keep", 4, &ttl), 0);
	assert_true(ttl > 50000);
	check_value(db, "keep", "2");
	assert_int_equal(put(db, "keep", "3"), 0);
	assert_int_equal(trove_ttl(db, "keep", 4, &ttl), 0);
	assert_int_equal(ttl, -1);

	usleep(250 * 1000);
	/* Expired: invisible to every read at once. */
	check_value(db, "short", NULL);
	assert_int_equal(trove_exists(db, "short", 5), TROVE_ENOTFOUND);
	assert_int_equal(trove_ttl(db, "short", 5, &ttl), TROVE_ENOTFOUND);
	assert_int_equal(trove_count(db, &n), 0);
	assert_int_equal(n, 3); /* plain, long, keep */
	assert_int_equal(trove_put_if_absent(db, "short", 5, "again", 5), 0);
	check_value(db, "short", "again");
	assert_int_equal(trove_count(db, &n), 0);
	assert_int_equal(n, 4);

	/* An expiry in the past hides the key immediately. */
	assert_int_equal(trove_expire_at(db, "plain", 5, 1000), 0);
	check_value(db, "plain", NULL);
	assert_int_equal(trove_count(db, &n), 0);
	assert_int_equal(n, 3);

	/* The reaper removes expired keys in the background. */
	assert_int_equal(trove_put_ttl(db, "gone", 4, "g", 1, 10), 0);
	trove_stats st;
	for (int i = 0; i < 100; i++) {
		usleep(20 * 1000);
		assert_int_equal(trove_get_stats(db, &st), 0);
		if (st.expired_reaped >= 2)
			break;
	}
	assert_true(st.expired_reaped >= 2);
	assert_int_equal(trove_count(db, &n), 0);
	assert_int_equal(n, 3);

	/* Expiry survives a restart. */
	assert_int_equal(trove_put_ttl(f->db, "t", 1, "v", 1, 100000), 0);
	reopen(f);
	assert_int_equal(trove_ttl(f->db, "t", 1, &ttl), 0);
	assert_true(ttl > 90000);
	assert_int_equal(trove_count(f->db, &n), 0);
	assert_int_equal(n, 4);
}

/* ---- Batches and transactions -------------------------------------------------------- */

static void test_batch(void **state)
{
	fixture *f = *state;
	trove_db *db = f->db;
	trove_batch *b = trove_batch_new();
	assert_int_equal(trove_batch_put(b, "a", 1, "1", 1), 0);
	assert_int_equal(trove_batch_put(b, "b", 1, "2", 1), 0);
	assert_int_equal(trove_batch_put(b, "a", 1, "3", 1), 0); /* later wins */
	assert_int_equal(trove_batch_put_ttl(b, "t", 1, "x", 1, 4102444800000LL), 0);
	assert_int_equal(trove_batch_del(b, "none", 4), 0);
	assert_int_equal(trove_batch_count(b), 5);
	assert_int_equal(trove_batch_put(b, "", 0, "x", 1), TROVE_EINVAL);
	assert_int_equal(trove_batch_count(b), 5);
	trove_write_result res;
	assert_int_equal(trove_write(db, b, &res), 0);
	check_value(db, "a", "3");
	check_value(db, "b", "2");
	check_value(db, "t", "x");
	trove_meta ma, mb;
	assert_int_equal(trove_get_ex(db, NULL, "a", 1, NULL, NULL, &ma), 0);
	assert_int_equal(trove_get_ex(db, NULL, "b", 1, NULL, NULL, &mb), 0);
	assert_int_equal(ma.version, res.version);
	assert_int_equal(mb.version, res.version);

	/* A conditional transaction: a failing condition changes nothing
	 * and says which condition failed. */
	trove_batch_clear(b);
	trove_cond present = { .kind = TROVE_IF_PRESENT };
	trove_cond absent = { .kind = TROVE_IF_ABSENT };
	trove_cond val = { .kind = TROVE_IF_VALUE, .value = "3", .value_len = 1 };
	trove_cond ver = { .kind = TROVE_IF_VERSION, .version = mb.version };
	assert_int_equal(trove_batch_require(b, "a", 1, &present), 0);
	assert_int_equal(trove_batch_require(b, "a", 1, &val), 0);
	assert_int_equal(trove_batch_require(b, "b", 1, &ver), 0);
	assert_int_equal(trove_batch_require(b, "b", 1, &absent), 0); /* fails */
	assert_int_equal(trove_batch_put(b, "a", 1, "new", 3), 0);
	assert_int_equal(trove_batch_del(b, "b", 1), 0);
	assert_int_equal(trove_batch_conditions(b), 4);
	memset(&res, 0, sizeof res);
	assert_int_equal(trove_write(db, b, &res), TROVE_ECONDITION);
	assert_int_equal(res.failed, 3);
	check_value(db, "a", "3");
	check_value(db, "b", "2");

	trove_batch_clear(b);
	assert_int_equal(trove_batch_require(b, "a", 1, &val), 0);
	assert_int_equal(trove_batch_require(b, "b", 1, &ver), 0);
	assert_int_equal(trove_batch_require(b, "zz", 2, &absent), 0);
	assert_int_equal(trove_batch_put(b, "a", 1, "new", 3), 0);
	assert_int_equal(trove_batch_del(b, "b", 1), 0);
	assert_int_equal(trove_batch_expire_at(b, "t", 1, 0), 0);
	assert_int_equal(trove_write(db, b, &res), 0);
	assert_int_equal(res.removed, 1);
	check_value(db, "a", "new");
	check_value(db, "b", NULL);
	int64_t ttl;
	assert_int_equal(trove_ttl(db, "t", 1, &ttl), 0);
	assert_int_equal(ttl, -1);
	uint64_t n;
	assert_int_equal(trove_count(db, &n), 0);
	assert_int_equal(n, 2);

	/* Bad conditions are refused. */
	trove_cond bad = { .kind = 42 };
	assert_int_equal(trove_batch_require(b, "a", 1, &bad), TROVE_EINVAL);
	trove_batch_free(b);

	/* Multi-get. */
	const void *keys[3] = { "a", "b", "t" };
	size_t klens[3] = { 1, 1, 1 };
	void *vals[3];
	size_t vlens[3];
	int st[3];
	assert_int_equal(trove_mget(db, NULL, 3, keys, klens, vals, vlens, st), 0);
	assert_int_equal(st[0], 0);
	assert_memory_equal(vals[0], "new", 3);
	assert_int_equal(st[1], TROVE_ENOTFOUND);
	assert_null(vals[1]);
	assert_int_equal(st[2], 0);
	trove_free(vals[0]);
	trove_free(vals[2]);
}

/* ---- Cursors and snapshots --------------------------------------------------------------- */

static void fill_keys(trove_db *db, int n)
{
	char k[16], v[16];
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "k%04d", i * 2);
		snprintf(v, sizeof v, "v%d", i * 2);
		assert_int_equal(put(db, k, v), 0);
	}
}

static void expect_at(trove_cursor *c, int rc, int i)
{
	assert_int_equal(rc, 0);
	char k[16];
	snprintf(k, sizeof k, "k%04d", i);
	size_t kl;
	const char *key = trove_cursor_key(c, &kl);
	assert_int_equal(kl, strlen(k));
	assert_memory_equal(key, k, kl);
}

/* Cursor options for the keys in [lo, hi). */
static trove_cursor_opts range_opts(const char *lo, const char *hi)
{
	trove_cursor_opts o;
	memset(&o, 0, sizeof o);
	o.lower = lo;
	o.lower_len = strlen(lo);
	o.upper = hi;
	o.upper_len = strlen(hi);
	return o;
}

static void test_cursor(void **state)
{
	fixture *f = *state;
	fill_keys(f->db, 100); /* k0000, k0002, ... k0198 */
	assert_int_equal(trove_del(f->db, "k0010", 5), 0);
	trove_cursor *c;
	assert_int_equal(trove_cursor_open(f->db, NULL, &c), 0);
	assert_false(trove_cursor_valid(c));
	assert_int_equal(trove_cursor_next(c), TROVE_EINVAL);
	expect_at(c, trove_cursor_first(c), 0);
	expect_at(c, trove_cursor_next(c), 2);
	expect_at(c, trove_cursor_last(c), 198);
	expect_at(c, trove_cursor_prev(c), 196);
	expect_at(c, trove_cursor_next(c), 198);
	assert_int_equal(trove_cursor_next(c), TROVE_ENOTFOUND);
	expect_at(c, trove_cursor_seek(c, "k0005", 5), 6);
	expect_at(c, trove_cursor_seek(c, "k0008", 5), 8);
	expect_at(c, trove_cursor_next(c), 12); /* k0010 was deleted */
	expect_at(c, trove_cursor_prev(c), 8);
	expect_at(c, trove_cursor_seek_for_prev(c, "k0011", 5), 8);
	expect_at(c, trove_cursor_seek_for_prev(c, "k0012", 5), 12);
	expect_at(c, trove_cursor_seek_for_prev(c, "z", 1), 198);
	assert_int_equal(trove_cursor_seek_for_prev(c, "a", 1), TROVE_ENOTFOUND);
	assert_int_equal(trove_cursor_seek(c, "z", 1), TROVE_ENOTFOUND);
	size_t vl;
	expect_at(c, trove_cursor_seek(c, "k0100", 5), 100);
	assert_memory_equal(trove_cursor_value(c, &vl), "v100", 4);
	trove_meta m;
	assert_int_equal(trove_cursor_meta(c, &m), 0);
	assert_true(m.version > 0);
	/* Walk all forward and all backward. */
	int n = 0;
	for (int rc = trove_cursor_first(c); rc == 0; rc = trove_cursor_next(c))
		n++;
	assert_int_equal(n, 99);
	n = 0;
	for (int rc = trove_cursor_last(c); rc == 0; rc = trove_cursor_prev(c))
		n++;
	assert_int_equal(n, 99);
	trove_cursor_close(c);

	/* Bounds: [k0050, k0060) and a prefix. */
	trove_cursor_opts o = range_opts("k0050", "k0060");
	assert_int_equal(trove_cursor_open(f->db, &o, &c), 0);
	expect_at(c, trove_cursor_first(c), 50);
	expect_at(c, trove_cursor_last(c), 58);
	assert_int_equal(trove_cursor_next(c), TROVE_ENOTFOUND);
	expect_at(c, trove_cursor_seek(c, "a", 1), 50);
	expect_at(c, trove_cursor_seek_for_prev(c, "z", 1), 58);
	trove_cursor_close(c);
	memset(&o, 0, sizeof o);
	o.prefix = "k01";
	o.prefix_len = 3;
	assert_int_equal(trove_cursor_open(f->db, &o, &c), 0);
	expect_at(c, trove_cursor_first(c), 100);
	expect_at(c, trove_cursor_last(c), 198);
	trove_cursor_close(c);
}

static void test_snapshot(void **state)
{
	fixture *f = *state;
	assert_int_equal(put(f->db, "a", "1"), 0);
	assert_int_equal(put(f->db, "b", "1"), 0);
	trove_snapshot *s = trove_snapshot_new(f->db);
	assert_non_null(s);
	assert_int_equal(put(f->db, "a", "2"), 0);
	assert_int_equal(trove_del(f->db, "b", 1), 0);
	assert_int_equal(put(f->db, "c", "2"), 0);
	void *v;
	size_t len;
	assert_int_equal(trove_get_ex(f->db, s, "a", 1, &v, &len, NULL), 0);
	assert_memory_equal(v, "1", 1);
	trove_free(v);
	assert_int_equal(trove_get_ex(f->db, s, "b", 1, &v, &len, NULL), 0);
	trove_free(v);
	assert_int_equal(trove_get_ex(f->db, s, "c", 1, &v, &len, NULL), TROVE_ENOTFOUND);
	/* Flushing and compacting keeps what the snapshot needs. */
	assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
	trove_cursor_opts o;
	memset(&o, 0, sizeof o);
	o.snap = s;
	trove_cursor *c;
	assert_int_equal(trove_cursor_open(f->db, &o, &c), 0);
	assert_int_equal(trove_cursor_first(c), 0);
	size_t kl;
	assert_memory_equal(trove_cursor_key(c, &kl), "a", 1);
	assert_memory_equal(trove_cursor_value(c, &kl), "1", 1);
	assert_int_equal(trove_cursor_next(c), 0);
	assert_memory_equal(trove_cursor_key(c, &kl), "b", 1);
	assert_int_equal(trove_cursor_next(c), TROVE_ENOTFOUND);
	trove_cursor_close(c);
	trove_snapshot_free(f->db, s);
	check_value(f->db, "a", "2");
	check_value(f->db, "b", NULL);
}

static void reopen_with_budget(fixture *f, size_t budget);

/* The value of key i at version ver: long enough that a key's versions
 * fill several blocks, and different for every (i, ver). */
static size_t versioned_value(char *v, size_t cap, int i, int ver)
{
	size_t n = (size_t)snprintf(v, cap, "k%03d-v%03d:", i, ver);
	for (; n < cap - 1; n++)
		v[n] = (char)('a' + (i * 7 + ver * 3 + (int)n) % 26);
	return n;
}

/* Scans the whole database backwards (through snap, if any), checking
 * that key i holds version want[i] (or is absent where want[i] < 0). */
static void check_reverse(trove_db *db, const trove_snapshot *snap, const int *want, int keys)
{
	trove_cursor_opts o;
	memset(&o, 0, sizeof o);
	o.snap = snap;
	trove_cursor *c;
	assert_int_equal(trove_cursor_open(db, &o, &c), 0);
	int i = keys - 1, rc;
	char k[16], v[700];
	for (rc = trove_cursor_last(c); rc == 0; rc = trove_cursor_prev(c), i--) {
		while (i >= 0 && want[i] < 0)
			i--;
		assert_true(i >= 0);
		size_t kl, vl;
		const void *key = trove_cursor_key(c, &kl);
		const void *val = trove_cursor_value(c, &vl);
		snprintf(k, sizeof k, "k%03d", i);
		assert_int_equal(kl, strlen(k));
		assert_memory_equal(key, k, kl);
		size_t n = versioned_value(v, sizeof v, i, want[i]);
		assert_int_equal(vl, n);
		assert_memory_equal(val, v, n);
	}
	assert_int_equal(rc, TROVE_ENOTFOUND);
	while (i >= 0 && want[i] < 0)
		i--;
	assert_int_equal(i, -1);
	trove_cursor_close(c);
}

/* A backward scan keeps a key's newest visible value in place, without
 * copying it, while it steps past (tv_iter_value_lasts): here one key's
 * versions span several blocks of a table, snapshots hide the newest of
 * them (so the scan steps over them with the candidate in place), newer
 * versions in the memtable and tombstones cover some keys, and the small
 * cache recycles the blocks the scan leaves. */
static void test_reverse_versions_across_blocks(void **state)
{
	fixture *f = *state;
	reopen_with_budget(f, 1u << 20);
	enum { KEYS = 200, HOT = 77, VERSIONS = 60 };
	int now[KEYS], at1[KEYS], at2[KEYS];
	char k[16], v[700];
	for (int i = 0; i < KEYS; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		size_t n = versioned_value(v, sizeof v, i, 0);
		assert_int_equal(trove_put(f->db, k, strlen(k), v, n), 0);
		now[i] = 0;
	}
	trove_snapshot *s1 = NULL, *s2 = NULL;
	for (int ver = 1; ver <= VERSIONS; ver++) {
		snprintf(k, sizeof k, "k%03d", HOT);
		size_t n = versioned_value(v, sizeof v, HOT, ver);
		assert_int_equal(trove_put(f->db, k, strlen(k), v, n), 0);
		now[HOT] = ver;
		if (ver == 20 || ver == 45) {
			memcpy(ver == 20 ? at1 : at2, now, sizeof now);
			trove_snapshot **s = ver == 20 ? &s1 : &s2;
			assert_non_null(*s = trove_snapshot_new(f->db));
		}
	}
	assert_int_equal(trove_flush(f->db), 0);
	/* Newer versions and tombstones over the table, in the memtable. */
	for (int i = 0; i < KEYS; i += 3) {
		snprintf(k, sizeof k, "k%03d", i);
		if (i % 2) {
			assert_int_equal(trove_del(f->db, k, strlen(k)), 0);
			now[i] = -1;
		} else {
			size_t n = versioned_value(v, sizeof v, i, 1);
			assert_int_equal(trove_put(f->db, k, strlen(k), v, n), 0);
			now[i] = 1;
		}
	}
	check_reverse(f->db, NULL, now, KEYS);
	check_reverse(f->db, s1, at1, KEYS);
	check_reverse(f->db, s2, at2, KEYS);
	assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
	check_reverse(f->db, NULL, now, KEYS);
	check_reverse(f->db, s1, at1, KEYS);
	check_reverse(f->db, s2, at2, KEYS);
	trove_snapshot_free(f->db, s1);
	trove_snapshot_free(f->db, s2);
}

static void test_list_keys(void **state)
{
	fixture *f = *state;
	fill_keys(f->db, 25);
	assert_int_equal(put(f->db, "other", "x"), 0);
	trove_key_list l;
	const void *after = NULL;
	size_t alen = 0;
	char last[32];
	int total = 0, pages = 0;
	for (;;) {
		assert_int_equal(trove_list_keys(f->db, NULL, "k", 1, after, alen, 10, &l), 0);
		pages++;
		for (size_t i = 0; i < l.count; i++) {
			char k[16];
			snprintf(k, sizeof k, "k%04d", total * 2);
			assert_int_equal(l.lens[i], strlen(k));
			assert_memory_equal(l.keys[i], k, l.lens[i]);
			total++;
		}
		int more = l.more;
		if (l.count) {
			memcpy(last, l.keys[l.count - 1], l.lens[l.count - 1]);
			alen = l.lens[l.count - 1];
			after = last;
		}
		trove_key_list_free(&l);
		if (!more)
			break;
	}
	assert_int_equal(total, 25);
	assert_int_equal(pages, 3);
	assert_int_equal(trove_list_keys(f->db, NULL, NULL, 0, NULL, 0, 0, &l), TROVE_EINVAL);
}

/* frequent_syncs under TROVE_SYNC_NONE writes the log over zeros as
 * sync=always does (relaxed records over zeros written ahead): what was
 * written, synced or not, is read back after a reopen. */
static void test_frequent_syncs_log(void **state)
{
	fixture *f = *state;
	assert_int_equal(trove_close(f->db), 0);
	f->o.frequent_syncs = 1;
	assert_int_equal(trove_open(f->dir, &f->o, &f->db), 0);
	char k[16];
	for (int i = 0; i < 2000; i++) {
		int kl = snprintf(k, sizeof k, "k%05d", i);
		assert_int_equal(trove_put(f->db, k, (size_t)kl, k, (size_t)kl), 0);
		if (i % 7 == 0)
			assert_int_equal(trove_sync(f->db), 0);
	}
	reopen(f);
	for (int i = 0; i < 2000; i += 99) {
		snprintf(k, sizeof k, "k%05d", i);
		check_value(f->db, k, k);
	}
	uint64_t n;
	assert_int_equal(trove_count(f->db, &n), 0);
	assert_int_equal(n, 2000);
}

/* ---- Larger than memory: flushes, compactions, a model ------------------------------- */

/* trove_count against a model while writes that skip reading their key's
 * prior state (plain puts and deletes) mix with ones that read it (deletes
 * that report what they removed, conditional puts, batches, keys with an
 * expiry), across flushes, compactions and reopens; the count is checked
 * after nearly every step, so unresolved writes are counted both while
 * their memtable is live and once it reached the tables. */
static void test_count_with_model(void **state)
{
	fixture *f = *state;
	reopen_with_budget(f, 1 << 20); /* 128 KiB memtables */
	enum { N = 1500 };
	static char model[N], ttl[N]; /* live; written with an expiry */
	memset(model, 0, sizeof model);
	memset(ttl, 0, sizeof ttl);
	uint64_t live = 0;
	tu_rng r;
	tu_rng_seed(&r, tu_seed("count_with_model"));
	char k[32], v[200];
	memset(v, 'v', sizeof v);
	int64_t later = 0; /* an expiry far ahead, set once */
	for (int step = 0; step < 30000; step++) {
		if (step == 20000) {
			/* Rewrite the keys with an expiry without one and compact
			 * down, so that no table holds an expiry any more. */
			for (int j = 0; j < N; j++)
				if (ttl[j] && model[j]) {
					int jl = snprintf(k, sizeof k, "key%05d", j);
					assert_int_equal(trove_put(f->db, k, (size_t)jl, v, 5), 0);
				}
			memset(ttl, 0, sizeof ttl);
			assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
		}
		int i = (int)tu_below(&r, N), op = (int)tu_below(&r, 100);
		int kl = snprintf(k, sizeof k, "key%05d", i);
		int was = model[i];
		if (op < 45) {
			assert_int_equal(trove_put(f->db, k, (size_t)kl, v, 20 + (size_t)(step % 150)), 0);
			model[i] = 1;
		} else if (op < 70) {
			assert_int_equal(trove_del(f->db, k, (size_t)kl), 0);
			model[i] = 0;
		} else if (op < 76) {
			int deleted = -1;
			assert_int_equal(trove_del_ex(f->db, k, (size_t)kl, NULL, &deleted), 0);
			assert_int_equal(deleted, was);
			model[i] = 0;
		} else if (op < 80) {
			int rc = trove_put_if_absent(f->db, k, (size_t)kl, v, 10);
			assert_int_equal(rc, was ? TROVE_EEXIST : 0);
			model[i] = 1;
		} else if (op < 88) {
			/* A batch touching a few keys, some twice; half of them
			 * with a condition (that holds) on another key, whose
			 * other writes may still skip reading their keys. */
			trove_batch *b = trove_batch_new();
			if (tu_below(&r, 2) == 0) {
				int c = (int)tu_below(&r, N);
				kl = snprintf(k, sizeof k, "key%05d", c);
				trove_cond cond = { .kind = model[c] ? TROVE_IF_PRESENT : TROVE_IF_ABSENT };
				assert_int_equal(trove_batch_require(b, k, (size_t)kl, &cond), 0);
			}
			for (int n = 0; n < 4; n++) {
				int j = n == 3 ? i : (int)tu_below(&r, N);
				kl = snprintf(k, sizeof k, "key%05d", j);
				if (tu_below(&r, 3) == 0) {
					assert_int_equal(trove_batch_del(b, k, (size_t)kl), 0);
					model[j] = 0;
				} else {
					assert_int_equal(trove_batch_put(b, k, (size_t)kl, v, 30), 0);
					model[j] = 1;
				}
			}
			assert_int_equal(trove_write(f->db, b, NULL), 0);
			trove_batch_free(b);
		} else if (op < 90 && step < 15000) {
			/* An expiry far ahead: tables then hold an expiry, and
			 * writes read their keys again until it is gone. */
			if (!later)
				later = (int64_t)time(NULL) * 1000 + 3600 * 1000;
			trove_put_opts o = { .ttl_mode = TROVE_TTL_AT, .expire_at_ms = later };
			assert_int_equal(trove_put_ex(f->db, k, (size_t)kl, v, 40, &o, NULL), 0);
			model[i] = ttl[i] = 1;
		} else if (op < 91) {
			assert_int_equal(trove_flush(f->db), 0);
		} else if (op < 92 && step % 7 == 0) {
			reopen(f);
		} else if (op < 93) {
			assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
		}
		live = 0;
		for (int j = 0; j < N; j++)
			live += (uint64_t)model[j];
		if (step % 3 == 0 || op >= 88) {
			uint64_t n;
			assert_int_equal(trove_count(f->db, &n), 0);
			if (n != live)
				fail_msg("step %d (op %d): count %llu, model %llu", step, op,
				         (unsigned long long)n, (unsigned long long)live);
		}
	}
	reopen(f);
	uint64_t n;
	assert_int_equal(trove_count(f->db, &n), 0);
	assert_int_equal(n, live);
	/* Read-only, the replayed writes are counted without being flushed. */
	assert_int_equal(trove_put(f->db, "key00000", 8, v, 5), 0);
	live += !model[0];
	assert_int_equal(trove_close(f->db), 0);
	f->o.read_only = 1;
	assert_int_equal(trove_open(f->dir, &f->o, &f->db), 0);
	assert_int_equal(trove_count(f->db, &n), 0);
	assert_int_equal(n, live);
}

/* Unresolved writes in bulk: the count is asked for only now and then, so
 * each flush resolves a memtable full of them against several level-0
 * tables and deeper levels (keys spread over many blocks, some written
 * twice in one memtable, deletes of keys never written or already
 * deleted), and trove_count resolves the live memtable's over the one
 * being flushed.  Any case the resolution gets wrong shows as a count
 * that differs from the model. */
static void test_count_resolved_in_bulk(void **state)
{
	fixture *f = *state;
	reopen_with_budget(f, 1 << 20); /* 128 KiB memtables */
	enum { N = 20000 };
	static char model[N];
	memset(model, 0, sizeof model);
	uint64_t live = 0;
	tu_rng r;
	tu_rng_seed(&r, tu_seed("count_resolved_in_bulk"));
	char k[32], v[100];
	memset(v, 'v', sizeof v);
	for (int step = 0; step < 60000; step++) {
		/* Runs of nearby keys and scattered ones; a key of the last few
		 * is written again within the same memtable. */
		int i = step % 5 == 0 ? (int)tu_below(&r, N)
		                      : (int)((unsigned)(step * 7 + (int)tu_below(&r, 40)) % N);
		int kl = snprintf(k, sizeof k, "key%05d", i);
		if (tu_below(&r, 3) == 0) {
			assert_int_equal(trove_del(f->db, k, (size_t)kl), 0);
			live -= model[i];
			model[i] = 0;
		} else {
			assert_int_equal(trove_put(f->db, k, (size_t)kl, v, 10 + (size_t)(step % 90)), 0);
			live += !model[i];
			model[i] = 1;
		}
		if (step % 9000 == 8999)
			assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
		if (step % 20011 == 20010)
			reopen(f);
		if (step % 1777 == 1776) {
			uint64_t n;
			assert_int_equal(trove_count(f->db, &n), 0);
			if (n != live)
				fail_msg("step %d: count %llu, model %llu", step, (unsigned long long)n,
				         (unsigned long long)live);
		}
	}
	assert_int_equal(trove_flush(f->db), 0);
	reopen(f);
	uint64_t n;
	assert_int_equal(trove_count(f->db, &n), 0);
	assert_int_equal(n, live);
}

/* A bulk load in key order, in batches of plain puts (unresolved): a
 * memtable whose keys lie beside every table's is flushed without reading
 * the tables, and one that reaches a table's first or last key exactly
 * reads them.  Each round also deletes keys never written and writes one
 * key twice, and the count must match after every flush and reopen. */
static void test_count_bulk_in_key_order(void **state)
{
	fixture *f = *state;
	reopen_with_budget(f, 1 << 20); /* 128 KiB memtables */
	char k[32], v[100];
	memset(v, 'v', sizeof v);
	uint64_t live = 0;
	/* Rounds of keys [lo, hi]: above the tables, below them, reaching the
	 * last key of the first round, its first, and inside both. */
	static const int rounds[][2] = {
		{ 10000, 12999 }, { 20000, 22999 }, { 1000, 3999 },
		{ 22999, 23999 }, { 500, 1000 }, { 11000, 11500 },
	};
	static char model[30000];
	memset(model, 0, sizeof model);
	for (size_t r = 0; r < sizeof rounds / sizeof rounds[0]; r++) {
		int lo = rounds[r][0], hi = rounds[r][1];
		for (int i = lo; i <= hi; i += 100) {
			trove_batch *b = trove_batch_new();
			for (int j = i; j < i + 100 && j <= hi; j++) {
				int kl = snprintf(k, sizeof k, "key%05d", j);
				if (j % 50 == 7) {
					/* A delete: of a key never written, but for the
					 * ones written in an earlier round. */
					assert_int_equal(trove_batch_del(b, k, (size_t)kl), 0);
					live -= model[j];
					model[j] = 0;
				} else {
					assert_int_equal(trove_batch_put(b, k, (size_t)kl, v, 20), 0);
					if (j % 100 == 3)
						assert_int_equal(trove_batch_put(b, k, (size_t)kl, v, 30), 0);
					live += !model[j];
					model[j] = 1;
				}
			}
			assert_int_equal(trove_write(f->db, b, NULL), 0);
			trove_batch_free(b);
		}
		assert_int_equal(trove_flush(f->db), 0);
		uint64_t n;
		assert_int_equal(trove_count(f->db, &n), 0);
		assert_int_equal(n, live);
		if (r % 2)
			reopen(f);
		assert_int_equal(trove_count(f->db, &n), 0);
		assert_int_equal(n, live);
	}
}

/* Writes key i of the model (put or delete) with trove_put / trove_del. */
static void model_write(trove_db *db, char *model, int i, int put, uint64_t *live)
{
	char k[32], v[64];
	int kl = snprintf(k, sizeof k, "key%06d", i);
	memset(v, 'a' + i % 26, sizeof v);
	if (put)
		assert_int_equal(trove_put(db, k, (size_t)kl, v, 20 + (size_t)(i % 40)), 0);
	else
		assert_int_equal(trove_del(db, k, (size_t)kl), 0);
	*live += (uint64_t)(put - model[i]);
	model[i] = (char)put;
}

/* The flush resolves its memtable's unresolved writes on its walk in key
 * order, through forward-only table iterators: a memtable of which every
 * entry is unresolved (each key written once, none held by the other
 * memtable), and one that mixes them with resolved ones (keys written
 * twice, batches sharing a sequence number, deletes that ask what they
 * removed), over level-0 tables and deeper levels holding some of the
 * keys, many to a block.  The count is asked for only after each flush,
 * so it is the flush's. */
static void test_count_flush_in_key_order(void **state)
{
	fixture *f = *state;
	reopen_with_budget(f, 8 << 20); /* 1 MiB memtables: each round fits in one */
	enum { N = 12000 };
	static char model[N];
	memset(model, 0, sizeof model);
	uint64_t live = 0, n;
	tu_rng r;
	tu_rng_seed(&r, tu_seed("count_flush_in_key_order"));
	/* Tables: every third key on a deeper level, then level-0 tables. */
	for (int i = 0; i < N; i += 3)
		model_write(f->db, model, i, 1, &live);
	assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
	for (int t = 0; t < 2; t++) {
		for (int i = t + 1; i < N; i += 7)
			model_write(f->db, model, i, (int)tu_below(&r, 4) != 0, &live);
		assert_int_equal(trove_flush(f->db), 0);
	}
	for (int round = 0; round < 6; round++) {
		int mixed = round % 2;
		/* Each key at most once per round, in a scattered order. */
		for (int j = 0; j < N / 2; j++) {
			int i = (int)(((unsigned)j * 7919u + (unsigned)round * 131u) % N);
			model_write(f->db, model, i, (int)tu_below(&r, 3) != 0, &live);
			if (mixed && j % 5 == 0)
				model_write(f->db, model, i, (int)tu_below(&r, 2), &live);
		}
		if (mixed) {
			trove_batch *b = trove_batch_new();
			char k[32];
			for (int j = 0; j < 50; j++) {
				int i = (int)tu_below(&r, N);
				int kl = snprintf(k, sizeof k, "key%06d", i);
				assert_int_equal(trove_batch_put(b, k, (size_t)kl, "b", 1), 0);
				live += !model[i];
				model[i] = 1;
			}
			assert_int_equal(trove_write(f->db, b, NULL), 0);
			trove_batch_free(b);
			int deleted = -1, i = (int)tu_below(&r, N);
			char k2[32];
			int kl = snprintf(k2, sizeof k2, "key%06d", i);
			assert_int_equal(trove_del_ex(f->db, k2, (size_t)kl, NULL, &deleted), 0);
			assert_int_equal(deleted, model[i]);
			live -= (uint64_t)model[i];
			model[i] = 0;
		}
		assert_int_equal(trove_flush(f->db), 0);
		assert_int_equal(trove_count(f->db, &n), 0);
		if (n != live)
			fail_msg("round %d: count %llu, model %llu", round, (unsigned long long)n,
			         (unsigned long long)live);
		if (round == 3)
			assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
	}
	reopen(f);
	assert_int_equal(trove_count(f->db, &n), 0);
	assert_int_equal(n, live);
}

/* The flush's resolution reads of keys of every length, from a few bytes
 * to several KiB (each read's seek key is built in a buffer the resolver
 * grows): the keys' sizes are scattered, some are overwritten in the next
 * memtable and some deleted, and the count after each flush is the
 * model's. */
static void test_count_flush_long_keys(void **state)
{
	fixture *f = *state;
	reopen_with_budget(f, 8 << 20); /* 1 MiB memtables: each round fits in one */
	enum { N = 600, KMAX = 5000 };
	static char model[N];
	static char k[KMAX];
	memset(model, 0, sizeof model);
	tu_rng r;
	tu_rng_seed(&r, tu_seed("count_flush_long_keys"));
	uint64_t live = 0, n;
	for (int round = 0; round < 5; round++) {
		for (int j = 0; j < N / 2; j++) {
			int i = (int)tu_below(&r, N);
			/* Key i: its number, then a length of its own padded with 'x'. */
			size_t kl = 6 + (size_t)(i * 7919 % (KMAX - 6));
			char head[8];
			snprintf(head, sizeof head, "k%03d-", i);
			memset(k, 'x', kl);
			memcpy(k, head, 5);
			int put = (int)tu_below(&r, 4) != 0;
			if (put)
				assert_int_equal(trove_put(f->db, k, kl, "v", 1), 0);
			else
				assert_int_equal(trove_del(f->db, k, kl), 0);
			live += (uint64_t)(put - model[i]);
			model[i] = (char)put;
		}
		assert_int_equal(trove_flush(f->db), 0);
		assert_int_equal(trove_count(f->db, &n), 0);
		if (n != live)
			fail_msg("round %d: count %llu, model %llu", round, (unsigned long long)n,
			         (unsigned long long)live);
	}
	reopen(f);
	assert_int_equal(trove_count(f->db, &n), 0);
	assert_int_equal(n, live);
}

static void test_many_keys_with_model(void **state)
{
	fixture *f = *state;
	assert_int_equal(trove_close(f->db), 0);
	f->o.memory_budget = 2 << 20; /* 256 KiB memtables */
	f->o.compression = TROVE_COMPRESS_ZSTD;
	assert_int_equal(trove_open(f->dir, &f->o, &f->db), 0);
	enum { N = 6000 };
	static int model[N]; /* -1 absent, else the value's generation */
	for (int i = 0; i < N; i++)
		model[i] = -1;
	tu_rng r;
	tu_rng_seed(&r, tu_seed("many_keys"));
	char k[32], v[300];
	for (int step = 0; step < 60000; step++) {
		int i = (int)tu_below(&r, N);
		snprintf(k, sizeof k, "key%05d", i);
		if (tu_below(&r, 10) < 2) {
			assert_int_equal(trove_del(f->db, k, strlen(k)), 0);
			model[i] = -1;
		} else {
			int len = snprintf(v, sizeof v, "%d-%d-", i, step);
			memset(v + len, 'a' + i % 26, 200);
			assert_int_equal(trove_put(f->db, k, strlen(k), v, (size_t)len + 200), 0);
			model[i] = step;
		}
	}
	trove_stats st;
	assert_int_equal(trove_get_stats(f->db, &st), 0);
	assert_true(st.flushes > 5);
	for (int round = 0; round < 2; round++) {
		uint64_t live = 0;
		for (int i = 0; i < N; i++) {
			snprintf(k, sizeof k, "key%05d", i);
			void *val;
			size_t len;
			int rc = trove_get(f->db, k, strlen(k), &val, &len);
			if (model[i] < 0) {
				assert_int_equal(rc, TROVE_ENOTFOUND);
				continue;
			}
			live++;
			assert_int_equal(rc, 0);
			int n = snprintf(v, sizeof v, "%d-%d-", i, model[i]);
			assert_int_equal(len, (size_t)n + 200);
			assert_memory_equal(val, v, (size_t)n);
			trove_free(val);
		}
		uint64_t count;
		assert_int_equal(trove_count(f->db, &count), 0);
		assert_int_equal(count, live);
		/* The cursor agrees with the model, both ways. */
		trove_cursor *c;
		assert_int_equal(trove_cursor_open(f->db, NULL, &c), 0);
		int i = 0;
		uint64_t seen = 0;
		for (int rc = trove_cursor_first(c); rc == 0; rc = trove_cursor_next(c)) {
			size_t kl;
			const char *key = trove_cursor_key(c, &kl);
			while (model[i] < 0)
				i++;
			snprintf(k, sizeof k, "key%05d", i);
			assert_int_equal(kl, strlen(k));
			assert_memory_equal(key, k, kl);
			i++;
			seen++;
		}
		assert_int_equal(seen, live);
		seen = 0;
		for (int rc = trove_cursor_last(c); rc == 0; rc = trove_cursor_prev(c))
			seen++;
		assert_int_equal(seen, live);
		trove_cursor_close(c);
		reopen(f);
	}
	assert_int_equal(trove_verify(f->db, NULL, NULL), 0);
	uint64_t before, after;
	assert_int_equal(trove_disk_size(f->db, &before), 0);
	assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
	assert_int_equal(trove_disk_size(f->db, &after), 0);
	assert_true(after > 0);
	assert_int_equal(trove_get_stats(f->db, &st), 0);
	assert_true(st.compactions > 0);
	/* Everything sits in one level after a full compaction. */
	int levels = 0;
	for (int l = 0; l < 7; l++)
		levels += st.level_files[l] > 0;
	assert_int_equal(levels, 1);
}

/* Key i of the cursor walk: every seventh is longer than the buffers a
 * cursor keeps in line, so they move to the heap and back; every third
 * other one has 15 to 31 bytes, the lengths the cursor copies in line. */
static size_t walk_key(char *k, int i)
{
	int n = snprintf(k, 80, "key%05d", i);
	if (i % 7 == 0) {
		memset(k + n, 'x', 55);
		n += 55;
	} else if (i % 3 == 0) {
		int pad = 7 + i % 17;
		memset(k + n, 'y', (size_t)pad);
		n += pad;
	}
	return (size_t)n;
}

/* Value of key i written at step g: every fifth longer than 256 bytes. */
static size_t walk_value(char *v, int i, int g)
{
	int n = snprintf(v, 40, "%d-%d-", i, g);
	size_t len = (size_t)n + (i % 5 == 0 ? 400 : 10);
	memset(v + n, 'a' + i % 26, len - (size_t)n);
	return len;
}

/* Checks the cursor against model (value generations, -1 absent): at the
 * first live key >= i (dir > 0) or the last <= i (dir < 0); returns the
 * key it should be at, or -1 when it should have run off. */
static int walk_expect(trove_cursor *c, int rc, const int *model, int n, int i, int dir)
{
	while (i >= 0 && i < n && model[i] < 0)
		i += dir;
	if (i < 0 || i >= n) {
		assert_int_equal(rc, TROVE_ENOTFOUND);
		assert_false(trove_cursor_valid(c));
		return -1;
	}
	assert_int_equal(rc, 0);
	char k[80], v[500];
	size_t kl, vl, ekl = walk_key(k, i), evl = walk_value(v, i, model[i]);
	const void *key = trove_cursor_key(c, &kl), *val = trove_cursor_value(c, &vl);
	assert_int_equal(kl, ekl);
	assert_memory_equal(key, k, kl);
	assert_int_equal(vl, evl);
	assert_memory_equal(val, v, vl);
	return i;
}

/* Cursors over a memtable, level-0 tables and deeper levels holding
 * overwrites and tombstones of the same keys, at the latest state and at
 * an older snapshot: a random walk of steps both ways, direction changes
 * and seeks, checked against a model at every move. */
static void test_cursor_walk_with_model(void **state)
{
	fixture *f = *state;
	assert_int_equal(trove_close(f->db), 0);
	f->o.memory_budget = 2 << 20; /* 256 KiB memtables: many flushes */
	assert_int_equal(trove_open(f->dir, &f->o, &f->db), 0);
	enum { N = 3000, STEPS = 30000 };
	static int model[N], snap_model[N];
	for (int i = 0; i < N; i++)
		model[i] = -1;
	tu_rng r;
	tu_rng_seed(&r, tu_seed("cursor walk"));
	char k[80], v[500];
	trove_snapshot *snap = NULL;
	for (int step = 0; step < STEPS; step++) {
		if (step == STEPS * 3 / 4) {
			snap = trove_snapshot_new(f->db);
			assert_non_null(snap);
			memcpy(snap_model, model, sizeof model);
		}
		int i = (int)tu_below(&r, N);
		size_t kl = walk_key(k, i);
		if (tu_below(&r, 10) < 3) {
			assert_int_equal(trove_del(f->db, k, kl), 0);
			model[i] = -1;
		} else {
			size_t vl = walk_value(v, i, step);
			assert_int_equal(trove_put(f->db, k, kl, v, vl), 0);
			model[i] = step;
		}
	}
	trove_stats st;
	assert_int_equal(trove_get_stats(f->db, &st), 0);
	assert_true(st.flushes > 3);
	for (int view = 0; view < 2; view++) {
		const int *m = view ? snap_model : model;
		trove_cursor_opts o;
		memset(&o, 0, sizeof o);
		o.snap = view ? snap : NULL;
		trove_cursor *c;
		assert_int_equal(trove_cursor_open(f->db, &o, &c), 0);
		int pos = -1;
		for (int step = 0; step < 20000; step++) {
			uint64_t op = tu_below(&r, 100);
			int i = (int)tu_below(&r, N);
			size_t kl = walk_key(k, i);
			if (pos < 0 || op < 3) {
				pos = walk_expect(c, trove_cursor_seek(c, k, kl), m, N, i, 1);
			} else if (op < 5) {
				pos = walk_expect(c, trove_cursor_seek_for_prev(c, k, kl), m, N, i, -1);
			} else if (op == 5) {
				pos = walk_expect(c, trove_cursor_first(c), m, N, 0, 1);
			} else if (op == 6) {
				pos = walk_expect(c, trove_cursor_last(c), m, N, N - 1, -1);
			} else if (op < 55) {
				pos = walk_expect(c, trove_cursor_next(c), m, N, pos + 1, 1);
			} else {
				pos = walk_expect(c, trove_cursor_prev(c), m, N, pos - 1, -1);
			}
		}
		trove_cursor_close(c);
	}
	trove_snapshot_free(f->db, snap);
}

/* Walks c over all its keys forwards from first and backwards from last,
 * checking each against want[0 .. n), and steps off both ends. */
static void walk_both_ways(trove_cursor *c, const char *const *want, int n)
{
	for (int dir = 0; dir < 2; dir++) {
		int rc = dir ? trove_cursor_last(c) : trove_cursor_first(c);
		for (int j = 0; j < n; j++) {
			const char *w = want[dir ? n - 1 - j : j];
			assert_int_equal(rc, 0);
			size_t kl;
			const char *k = trove_cursor_key(c, &kl);
			assert_int_equal(kl, strlen(w));
			assert_memory_equal(k, w, kl);
			rc = dir ? trove_cursor_prev(c) : trove_cursor_next(c);
		}
		assert_int_equal(rc, TROVE_ENOTFOUND);
	}
}

/* Bounded scans in both directions over keys with several versions, some
 * deleted, in the memtable and in tables: the bounds' checks (decided by
 * a key's first byte where they can be), a backward step that resumes at
 * the entry the one before stopped at, and turns at the bounds. */
static void test_bounded_scans_both_ways(void **state)
{
	fixture *f = *state;
	static const char *const keys[] = {"a", "k", "k0050", "k0050\xff", "k0051",
	                                   "k0059", "k006", "k0060", "k0060!", "l", "\xff"};
	enum { NK = sizeof keys / sizeof keys[0] };
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < NK; i++) {
			char v[16];
			snprintf(v, sizeof v, "v%d.%d", round, i);
			assert_int_equal(trove_put(f->db, keys[i], strlen(keys[i]), v, strlen(v)), 0);
		}
		if (round == 1)
			assert_int_equal(trove_flush(f->db), 0);
	}
	assert_int_equal(trove_del(f->db, "k0051", 5), 0);
	assert_int_equal(trove_del(f->db, "l", 1), 0);
	trove_snapshot *snap = trove_snapshot_new(f->db);
	assert_non_null(snap);
	assert_int_equal(trove_put(f->db, "k0055", 5, "new", 3), 0); /* after the snapshot */
	assert_int_equal(trove_del(f->db, "k006", 4), 0);

	trove_cursor *c;
	static const char *const all[] = {"a", "k", "k0050", "k0050\xff", "k0055",
	                                  "k0059", "k0060", "k0060!", "\xff"};
	assert_int_equal(trove_cursor_open(f->db, NULL, &c), 0);
	walk_both_ways(c, all, 9);
	trove_cursor_close(c);

	trove_cursor_opts o = range_opts("k0050", "k0060");
	static const char *const mid[] = {"k0050", "k0050\xff", "k0055", "k0059"};
	assert_int_equal(trove_cursor_open(f->db, &o, &c), 0);
	walk_both_ways(c, mid, 4);
	/* Turns at the bounds. */
	assert_int_equal(trove_cursor_first(c), 0);
	assert_int_equal(trove_cursor_prev(c), TROVE_ENOTFOUND);
	assert_int_equal(trove_cursor_last(c), 0);
	assert_int_equal(trove_cursor_prev(c), 0);
	assert_int_equal(trove_cursor_next(c), 0);
	assert_int_equal(trove_cursor_next(c), TROVE_ENOTFOUND);
	trove_cursor_close(c);

	/* The same range in the snapshot: k0055 is not there yet, k006 still is. */
	o = range_opts("k0050", "k0061");
	o.snap = snap;
	static const char *const snapped[] = {"k0050", "k0050\xff", "k0059", "k006", "k0060",
	                                      "k0060!"};
	assert_int_equal(trove_cursor_open(f->db, &o, &c), 0);
	walk_both_ways(c, snapped, 6);
	trove_cursor_close(c);

	memset(&o, 0, sizeof o);
	o.prefix = "k";
	o.prefix_len = 1;
	static const char *const ks[] = {"k", "k0050", "k0050\xff", "k0055", "k0059", "k0060",
	                                 "k0060!"};
	assert_int_equal(trove_cursor_open(f->db, &o, &c), 0);
	walk_both_ways(c, ks, 7);
	trove_cursor_close(c);
	trove_snapshot_free(f->db, snap);
}

/* ---- Backup -------------------------------------------------------------------------------- */

typedef struct writer_arg {
	trove_db *db;
	atomic_int stop;
	int written;
} writer_arg;

static void *writer_main(void *p)
{
	writer_arg *a = p;
	char k[32];
	while (!atomic_load(&a->stop)) {
		snprintf(k, sizeof k, "w%08d", a->written);
		if (trove_put(a->db, k, strlen(k), k, strlen(k)) != 0)
			break;
		a->written++;
	}
	return NULL;
}

static void test_backup(void **state)
{
	fixture *f = *state;
	fill_keys(f->db, 1000);
	writer_arg a = { f->db, 0, 0 };
	pthread_t t;
	pthread_create(&t, NULL, writer_main, &a);
	usleep(20 * 1000);
	char *bdir = tu_join(f->dir, "backup");
	assert_int_equal(trove_backup(f->db, bdir), 0);
	atomic_store(&a.stop, 1);
	pthread_join(t, NULL);
	assert_true(a.written > 0);
	assert_int_equal(trove_backup(f->db, bdir), TROVE_EEXIST);

	trove_db *b;
	assert_int_equal(trove_open(bdir, &f->o, &b), 0);
	assert_int_equal(trove_verify(b, NULL, NULL), 0);
	for (int i = 0; i < 1000; i++) {
		char k[16], v[16];
		snprintf(k, sizeof k, "k%04d", i * 2);
		snprintf(v, sizeof v, "v%d", i * 2);
		check_value(b, k, v);
	}
	/* The writer's keys in the copy are a prefix of what it wrote. */
	int present = 0, gap = 0;
	for (int i = 0; i < a.written; i++) {
		char k[32];
		snprintf(k, sizeof k, "w%08d", i);
		int rc = trove_exists(b, k, strlen(k));
		if (rc == 0) {
			assert_false(gap);
			present++;
		} else {
			assert_int_equal(rc, TROVE_ENOTFOUND);
			gap = 1;
		}
	}
	uint64_t n;
	assert_int_equal(trove_count(b, &n), 0);
	assert_int_equal(n, 1000 + (uint64_t)present);
	assert_int_equal(trove_close(b), 0);
	free(bdir);
}

/* ---- Verify finds damage ------------------------------------------------------------------- */

typedef struct problems {
	int n;
	char file[512];
	uint64_t offset;
} problems;

/* ---- The memory budget ------------------------------------------------ */

typedef struct budget_reader {
	trove_db *db;
	int keys;
	atomic_int stop;
	uint64_t seed;
} budget_reader;

static void *budget_reader_main(void *p)
{
	budget_reader *r = p;
	tu_rng rng;
	tu_rng_seed(&rng, r->seed);
	char k[32];
	while (!atomic_load(&r->stop)) {
		snprintf(k, sizeof k, "key%08d", (int)tu_below(&rng, (uint64_t)r->keys));
		void *v;
		size_t vl;
		if (trove_get(r->db, k, strlen(k), &v, &vl) == 0)
			trove_free(v);
	}
	return NULL;
}

/* What trove_get_stats accounts for stays within memory_budget: each
 * memtable within its eighth (plus one write past the switch point), the
 * cache (index and filter blocks included) within its share: three
 * quarters less the sixteenth left for flush and compaction working
 * memory, plus the blocks readers hold while they search them (in use,
 * not evictable: up to two per reader, a data block and the one being
 * read in).  Returns a description of the first excess, or NULL (the
 * caller asserts once its reader threads are stopped). */
static size_t cache_share(size_t budget)
{
	return budget - budget / 4 - budget / 16;
}

static const char *over_budget(trove_db *db, size_t budget, int readers, char *why, size_t n)
{
	trove_stats st;
	if (trove_get_stats(db, &st) != 0)
		return "trove_get_stats failed";
	size_t slack = 128u << 10;                   /* one arena block and one write */
	size_t held = (size_t)readers * 2 * (8u << 10); /* blocks with their charges */
	int ok = st.memtable_bytes <= budget / 4 + 2 * slack &&
	         st.table_meta_bytes <= st.cache_bytes &&
	         st.cache_bytes <= cache_share(budget) + held &&
	         st.memtable_bytes + st.cache_bytes <= budget - budget / 16 + 2 * slack + held;
	if (ok)
		return NULL;
	snprintf(why, n, "memtables %llu, cache %llu (index and filters %llu) for a budget of %zu",
	         (unsigned long long)st.memtable_bytes, (unsigned long long)st.cache_bytes,
	         (unsigned long long)st.table_meta_bytes, budget);
	return why;
}

/* Writes many times the budget while four threads read, checking the
 * accounting after every write; the cache fills (so its limit is what
 * holds it), and the tables' index and filter blocks are charged to it. */
static void test_memory_budget(void **state)
{
	fixture *f = *state;
	const size_t budget = 2u << 20;
	reopen_with_budget(f, budget);
	enum { KEYS = 20000 };
	budget_reader r[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (budget_reader){f->db, KEYS, 0, tu_seed("budget reader") + (uint64_t)i};
		assert_int_equal(pthread_create(&th[i], NULL, budget_reader_main, &r[i]), 0);
	}
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("budget writer"));
	char k[32], v[200], why[256];
	const char *over = NULL;
	int rc = 0;
	for (int i = 0; i < 3 * KEYS && !rc && !over; i++) {
		snprintf(k, sizeof k, "key%08d", (int)tu_below(&rng, KEYS));
		for (size_t j = 0; j < sizeof v; j++)
			v[j] = (char)('a' + tu_below(&rng, 26)); /* incompressible enough */
		rc = trove_put(f->db, k, strlen(k), v, sizeof v);
		over = over_budget(f->db, budget, 4, why, sizeof why);
	}
	for (int i = 0; i < 4; i++) {
		atomic_store(&r[i].stop, 1);
		pthread_join(th[i], NULL);
	}
	assert_int_equal(rc, 0);
	if (over)
		fail_msg("over the budget: %s", over);
	trove_stats st;
	assert_int_equal(trove_get_stats(f->db, &st), 0);
	assert_true(st.flushes >= 4 && st.table_files > 0);
	assert_true(st.table_meta_bytes > 0);
	assert_true(st.cache_bytes > budget / 2); /* the cache did fill */
	assert_null(over_budget(f->db, budget, 0, why, sizeof why));
}

/* Readers pin super versions without the mutex while flushes and
 * compactions install new ones (and recycle the old structs): each key's
 * value carries a generation that only grows, so a reader that pinned a
 * stale or recycled super version would see one go backwards. */
enum { PIN_KEYS = 256 };

typedef struct pin_reader {
	trove_db *db;
	atomic_int stop;
	uint64_t seed, reads, bad;
} pin_reader;

static void *pin_reader_main(void *arg)
{
	pin_reader *r = arg;
	uint64_t seen[PIN_KEYS] = {0};
	tu_rng rng;
	tu_rng_seed(&rng, r->seed);
	char k[32];
	while (!atomic_load(&r->stop)) {
		int i = (int)tu_below(&rng, PIN_KEYS);
		snprintf(k, sizeof k, "pin%04d", i);
		void *v;
		size_t vlen;
		int rc = trove_get(r->db, k, strlen(k), &v, &vlen);
		if (rc == TROVE_ENOTFOUND && seen[i] == 0)
			continue;
		if (rc) {
			r->bad++;
			continue;
		}
		uint64_t gen = strtoull(v, NULL, 10);
		if (gen < seen[i] || vlen != 100)
			r->bad++;
		seen[i] = gen;
		r->reads++;
		trove_free(v);
	}
	return NULL;
}

static void test_reads_during_installs(void **state)
{
	fixture *f = *state;
	reopen_with_budget(f, 1u << 20);
	pin_reader r[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (pin_reader){f->db, 0, tu_seed("pin reader") + (uint64_t)i, 0, 0};
		assert_int_equal(pthread_create(&th[i], NULL, pin_reader_main, &r[i]), 0);
	}
	char k[32], v[100];
	for (int gen = 1; gen <= 150; gen++) {
		for (int i = 0; i < PIN_KEYS; i++) {
			snprintf(k, sizeof k, "pin%04d", i);
			memset(v, 'x', sizeof v);
			snprintf(v, sizeof v, "%d", gen);
			assert_int_equal(trove_put(f->db, k, strlen(k), v, sizeof v), 0);
		}
		if (gen % 10 == 0)
			assert_int_equal(trove_flush(f->db), 0);
		if (gen % 50 == 0)
			assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
	}
	uint64_t reads = 0;
	for (int i = 0; i < 4; i++) {
		atomic_store(&r[i].stop, 1);
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].bad, 0);
		reads += r[i].reads;
	}
	assert_true(reads > 0);
	trove_stats st;
	assert_int_equal(trove_get_stats(f->db, &st), 0);
	assert_true(st.flushes >= 15);
	assert_true(st.reads >= reads); /* every thread's stripe counted */
}

/* Compactions read their inputs without caching them: with no reader,
 * the cache holds the tables' index and filter blocks and at most the
 * freed buffers it keeps for reuse (a sixteenth of its capacity), not the
 * data blocks the compactions went through. */
static void test_compaction_skips_cache(void **state)
{
	fixture *f = *state;
	const size_t budget = 2u << 20;
	reopen_with_budget(f, budget);
	char k[32], v[100];
	memset(v, 'v', sizeof v);
	for (int i = 0; i < 20000; i++) { /* about 2 MiB: several flushes */
		snprintf(k, sizeof k, "key%08d", i);
		assert_int_equal(trove_put(f->db, k, strlen(k), v, sizeof v), 0);
	}
	assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
	trove_stats st;
	assert_int_equal(trove_get_stats(f->db, &st), 0);
	assert_true(st.compactions > 0 && st.table_files > 0);
	assert_true(st.table_meta_bytes > 0);
	assert_true(st.cache_bytes - st.table_meta_bytes <= cache_share(budget) / 16);
}

static void note_problem(void *arg, const char *file, uint64_t offset, const char *msg)
{
	problems *p = arg;
	if (p->n++ == 0) {
		snprintf(p->file, sizeof p->file, "%s", file);
		p->offset = offset;
	}
	(void)msg;
}

static void test_verify_corruption(void **state)
{
	fixture *f = *state;
	fill_keys(f->db, 2000);
	assert_int_equal(trove_compact_range(f->db, NULL, 0, NULL, 0), 0);
	problems p = { 0 };
	assert_int_equal(trove_verify(f->db, note_problem, &p), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(trove_close(f->db), 0);
	f->db = NULL;

	/* Flip a byte inside the first data block of a table. */
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "ls %s/*.sst | head -1", f->dir);
	FILE *ls = popen(cmd, "r");
	char path[512] = { 0 };
	assert_non_null(fgets(path, sizeof path, ls));
	pclose(ls);
	path[strcspn(path, "\n")] = 0;
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	fseek(fp, 100, SEEK_SET);
	int ch = fgetc(fp);
	fseek(fp, 100, SEEK_SET);
	fputc(ch ^ 0x5a, fp);
	fclose(fp);

	assert_int_equal(trove_open(f->dir, &f->o, &f->db), 0);
	assert_int_equal(trove_verify(f->db, note_problem, &p), TROVE_ECORRUPT);
	assert_true(p.n > 0);
	assert_string_equal(p.file, path);
	assert_true(p.offset <= 100);
	/* Reads of the damaged block fail cleanly rather than return junk. */
	int bad = 0;
	for (int i = 0; i < 2000; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%04d", i * 2);
		void *v;
		size_t len;
		int rc = trove_get(f->db, k, strlen(k), &v, &len);
		if (rc == 0)
			trove_free(v);
		else {
			assert_int_equal(rc, TROVE_ECORRUPT);
			bad++;
		}
	}
	assert_true(bad > 0);
	char msg[512];
	trove_errmsg(f->db, msg, sizeof msg);
	assert_non_null(strstr(msg, ".sst"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_options, setup, teardown),
		cmocka_unit_test(test_in_memory),
		cmocka_unit_test_setup_teardown(test_get_put_del, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_into, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_and_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conditional, setup, teardown),
		cmocka_unit_test_setup_teardown(test_condition_state_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unchanged_condition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_racing_conditions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reverse_versions_across_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_keys_with_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor_walk_with_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded_scans_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_with_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_resolved_in_bulk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_bulk_in_key_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_flush_in_key_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_flush_long_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_during_installs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_skips_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_corruption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frequent_syncs_log, setup, teardown),
	};
	return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
