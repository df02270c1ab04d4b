/*
 * test_ndbm.c - the ndbm face (include/trove/ndbm.h) against POSIX and
 * against GDBM's ndbm.
 *
 * A classic ndbm program runs unchanged on Trove and on GDBM and must
 * print the same transcript; one test per promise of the header (memory
 * rules, open flags, errors, walks that survive writes); and a
 * differential test that plays one long random sequence of calls against
 * GDBM's ndbm (peers/ndbm_gdbm.c) and Trove's, comparing every result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <trove/ndbm.h> /* the only line a ported ndbm program changes */

#include "peers/ndbm_classic.h"
#include "peers/ndbm_peer.h"
#include "testutil.h"

typedef struct fixture {
	char *dir;
	char *file; /* dir/db: the name given to dbm_open */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->dir = tu_tmpdir("ndbm");
	f->file = tu_join(f->dir, "db");
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

static datum S(const char *s)
{
	datum d = {(void *)s, strlen(s)};
	return d;
}

static void check_fetch(DBM *db, const char *k, const char *v)
{
	datum d = dbm_fetch(db, S(k));
	if (!v) {
		assert_null(d.dptr);
		return;
	}
	assert_non_null(d.dptr);
	assert_int_equal(d.dsize, strlen(v));
	assert_memory_equal(d.dptr, v, d.dsize);
}

/* Runs f(file, out) and returns what it printed (malloc'd). */
static char *transcript(int (*fn)(char *, FILE *), char *file, int *rc)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	assert_non_null(out);
	*rc = fn(file, out);
	fclose(out);
	return text;
}

/* ---- The classic program ------------------------------------------------ */

static void test_classic_program(void **state)
{
	fixture *f = *state;
	char *gfile = tu_join(f->dir, "gdbm");
	int rc_t, rc_g;
	char *t = transcript(classic, f->file, &rc_t);
	char *g = transcript(peer_ndbm_classic, gfile, &rc_g);
	printf("# classic on Trove:\n%s", t);
	assert_int_equal(rc_t, 0);
	assert_int_equal(rc_g, 0);
	assert_string_equal(t, g);
	/* And what it printed is right, not only the same. */
	assert_non_null(strstr(t, "stored 36 words\n"));
	assert_non_null(strstr(t, "insert abacus again: 1\nabacus: 6\n"));
	assert_non_null(strstr(t, "replace abacus: 0, now six\n"));
	assert_non_null(strstr(t, "found 36 words, unicorn missing\n"));
	assert_non_null(strstr(t, "deleted 12, unicorn: -1\naardvark again: -1\n"));
	assert_non_null(strstr(t, "walked 24 keys"));
	assert_non_null(strstr(t, "reopened: 24 keys, store refused, error set\n"));
	assert_non_null(strstr(t, "after clearerr: 0\n"));
	assert_non_null(strstr(t, "emptied 24 keys, first now none\n"));
	/* dbm_open("db") made the directory db.trove. */
	char *dir = tu_join(f->dir, "db.trove");
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(dir);
	free(t);
	free(g);
	free(gfile);
}

/* ---- Memory rules ------------------------------------------------------------ */

static void test_memory_rules(void **state)
{
	fixture *f = *state;
	DBM *db = dbm_open(f->file, O_RDWR | O_CREAT, 0644);
	assert_non_null(db);
	assert_int_equal(dbm_store(db, S("a"), S("apple"), DBM_REPLACE), 0);
	assert_int_equal(dbm_store(db, S("b"), S("banana"), DBM_REPLACE), 0);
	assert_int_equal(dbm_store(db, S("empty"), S(""), DBM_REPLACE), 0);

	/* A fetched value survives writes and walks, until the next fetch. */
	datum v = dbm_fetch(db, S("a"));
	assert_int_equal(dbm_store(db, S("a"), S("avocado"), DBM_REPLACE), 0);
	assert_int_equal(dbm_delete(db, S("b")), 0);
	datum k = dbm_firstkey(db);
	assert_non_null(k.dptr);
	assert_int_equal(v.dsize, 5);
	assert_memory_equal(v.dptr, "apple", 5);
	assert_int_equal(((char *)v.dptr)[5], '\0'); /* a NUL follows, uncounted */

	/* A fetched value may be used as a key (its storage is replaced only
	 * after the lookup). */
	assert_int_equal(dbm_store(db, S("avocado"), S("green"), DBM_REPLACE), 0);
	v = dbm_fetch(db, S("a"));
	v = dbm_fetch(db, v);
	assert_int_equal(v.dsize, 5);
	assert_memory_equal(v.dptr, "green", 5);

	/* An empty value is found: dptr is not NULL, dsize is 0. */
	v = dbm_fetch(db, S("empty"));
	assert_non_null(v.dptr);
	assert_int_equal(v.dsize, 0);

	/* The walk's key survives fetch, store and delete of that key. */
	k = dbm_firstkey(db);
	assert_int_equal(k.dsize, 1);
	assert_memory_equal(k.dptr, "a", 1);
	v = dbm_fetch(db, k);
	assert_int_equal(dbm_delete(db, k), 0);
	assert_int_equal(dbm_store(db, k, S("again"), DBM_INSERT), 0);
	assert_int_equal(k.dsize, 1);
	assert_memory_equal(k.dptr, "a", 1);
	k = dbm_nextkey(db);
	assert_int_equal(k.dsize, 7);
	assert_memory_equal(k.dptr, "avocado", 7);
	assert_int_equal(dbm_error(db), 0);
	dbm_close(db);
}

/* ---- Opening -------------------------------------------------------------------- */

static void test_open_flags(void **state)
{
	fixture *f = *state;
	errno = 0;
	assert_null(dbm_open(f->file, O_RDWR, 0644));
	assert_int_equal(errno, ENOENT);
	assert_null(dbm_open(NULL, O_RDWR | O_CREAT, 0644));
	assert_int_equal(errno, EINVAL);

	/* The mode goes to the directory, with search bits where read bits
	 * are. */
	mode_t old = umask(022);
	DBM *db = dbm_open(f->file, O_RDWR | O_CREAT, 0640);
	umask(old);
	assert_non_null(db);
	char *dir = tu_join(f->dir, "db.trove");
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	assert_int_equal(dbm_rdonly(db), 0);
	assert_int_equal(dbm_store(db, S("k"), S("v"), DBM_INSERT), 0);

	/* One handle at a time. */
	errno = 0;
	assert_null(dbm_open(f->file, O_RDWR, 0));
	assert_int_equal(errno, EWOULDBLOCK);
	dbm_close(db);

	/* O_EXCL refuses an existing database; O_WRONLY is O_RDWR. */
	assert_null(dbm_open(f->file, O_RDWR | O_CREAT | O_EXCL, 0644));
	assert_int_equal(errno, EEXIST);
	db = dbm_open(f->file, O_WRONLY, 0);
	assert_non_null(db);
	check_fetch(db, "k", "v");
	dbm_close(db);

	/* Read-only: reads work, writes fail with EPERM and raise the flag. */
	db = dbm_open(f->file, O_RDONLY, 0);
	assert_non_null(db);
	assert_int_equal(dbm_rdonly(db), 1);
	check_fetch(db, "k", "v");
	errno = 0;
	assert_int_equal(dbm_store(db, S("k2"), S("v"), DBM_REPLACE), -1);
	assert_int_equal(errno, EPERM);
	assert_int_not_equal(dbm_error(db), 0);
	assert_int_equal(dbm_clearerr(db), 0);
	assert_int_equal(dbm_error(db), 0);
	assert_int_equal(dbm_delete(db, S("k")), -1);
	assert_int_not_equal(dbm_error(db), 0);
	dbm_close(db);

	/* O_TRUNC empties it (and is refused read-only). */
	assert_null(dbm_open(f->file, O_RDONLY | O_TRUNC, 0));
	assert_int_equal(errno, EINVAL);
	db = dbm_open(f->file, O_RDWR | O_TRUNC, 0);
	assert_non_null(db);
	check_fetch(db, "k", NULL);
	assert_null(dbm_firstkey(db).dptr);
	dbm_close(db);

	/* O_RDONLY|O_CREAT creates an empty database; O_SYNC is accepted. */
	char *other = tu_join(f->dir, "ro");
	db = dbm_open(other, O_RDONLY | O_CREAT, 0644);
	assert_non_null(db);
	assert_null(dbm_firstkey(db).dptr);
	dbm_close(db);
	db = dbm_open(other, O_RDWR | O_SYNC, 0);
	assert_non_null(db);
	assert_int_equal(dbm_store(db, S("durable"), S("yes"), DBM_REPLACE), 0);
	dbm_close(db);
	free(other);
	free(dir);
}

static void test_persistence(void **state)
{
	fixture *f = *state;
	DBM *db = dbm_open(f->file, O_RDWR | O_CREAT, 0644);
	assert_non_null(db);
	char k[16], v[16];
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof k, "key%04d", i);
		snprintf(v, sizeof v, "val%d", i * 7);
		assert_int_equal(dbm_store(db, S(k), S(v), DBM_INSERT), 0);
	}
	dbm_close(db);
	db = dbm_open(f->file, O_RDONLY, 0);
	assert_non_null(db);
	int n = 0;
	for (datum d = dbm_firstkey(db); d.dptr; d = dbm_nextkey(db)) {
		/* Trove's order is sorted. */
		snprintf(k, sizeof k, "key%04d", n);
		assert_int_equal(d.dsize, strlen(k));
		assert_memory_equal(d.dptr, k, d.dsize);
		snprintf(v, sizeof v, "val%d", n * 7);
		check_fetch(db, k, v);
		n++;
	}
	assert_int_equal(n, 1000);
	dbm_close(db);
}

/* ---- Errors ------------------------------------------------------------------------ */

static void test_errors(void **state)
{
	fixture *f = *state;
	DBM *db = dbm_open(f->file, O_RDWR | O_CREAT, 0644);
	assert_non_null(db);
	datum empty = {(void *)"", 0}, none = {NULL, 0};

	/* An absent key is a failure, not an error. */
	assert_null(dbm_fetch(db, S("missing")).dptr);
	assert_int_equal(dbm_delete(db, S("missing")), -1);
	assert_int_equal(dbm_error(db), 0);
	assert_int_equal(dbm_store(db, S("k"), S("v"), DBM_INSERT), 0);
	assert_int_equal(dbm_store(db, S("k"), S("w"), DBM_INSERT), 1);
	assert_int_equal(dbm_error(db), 0);
	check_fetch(db, "k", "v");

	/* Bad arguments are errors: -1 or NULL, errno EINVAL, the flag up. */
	struct {
		datum k, v;
		int mode;
	} bad[] = {
	        {empty, S("v"), DBM_REPLACE}, /* Trove keys are 1 byte or more */
	        {none, S("v"), DBM_REPLACE},
	        {S("k"), none, DBM_REPLACE},
	        {S("k"), S("v"), 7},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		assert_int_equal(dbm_store(db, bad[i].k, bad[i].v, bad[i].mode), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_not_equal(dbm_error(db), 0);
		dbm_clearerr(db);
	}
	size_t big = 65535 + 1; /* over Trove's key limit */
	char *huge = calloc(1, big);
	datum hk = {huge, big};
	assert_int_equal(dbm_store(db, hk, S("v"), DBM_REPLACE), -1);
	assert_int_equal(errno, EINVAL);
	assert_null(dbm_fetch(db, hk).dptr);
	assert_int_not_equal(dbm_error(db), 0);
	dbm_clearerr(db);
	assert_null(dbm_fetch(db, empty).dptr);
	assert_int_not_equal(dbm_error(db), 0);
	dbm_clearerr(db);
	assert_int_equal(dbm_delete(db, none), -1);
	assert_int_not_equal(dbm_error(db), 0);
	dbm_clearerr(db);
	/* The largest key works. */
	datum mk = {huge, 65535};
	assert_int_equal(dbm_store(db, mk, S("max"), DBM_REPLACE), 0);
	assert_int_equal(dbm_fetch(db, mk).dsize, 3);
	free(huge);
	check_fetch(db, "k", "v");
	assert_int_equal(dbm_error(db), 0);
	dbm_close(db);
	dbm_close(NULL);
}

/* ---- Walks ---------------------------------------------------------------------------- */

static void test_walks_with_writes(void **state)
{
	fixture *f = *state;
	DBM *db = dbm_open(f->file, O_RDWR | O_CREAT, 0644);
	assert_non_null(db);
	assert_null(dbm_nextkey(db).dptr);  /* before any firstkey */
	assert_null(dbm_firstkey(db).dptr); /* empty */
	char k[16];
	for (int i = 0; i < 100; i += 2) {
		snprintf(k, sizeof k, "k%03d", i);
		assert_int_equal(dbm_store(db, S(k), S("x"), DBM_INSERT), 0);
	}
	/* Delete each key as it comes: every key is still visited once. */
	int n = 0;
	for (datum d = dbm_firstkey(db); d.dptr; d = dbm_nextkey(db)) {
		snprintf(k, sizeof k, "k%03d", 2 * n);
		assert_memory_equal(d.dptr, k, d.dsize);
		assert_int_equal(dbm_delete(db, d), 0);
		n++;
	}
	assert_int_equal(n, 50);
	assert_null(dbm_nextkey(db).dptr); /* after the end, still the end */
	assert_null(dbm_firstkey(db).dptr);

	/* Keys stored ahead of the walk are visited, behind it are not. */
	for (int i = 10; i < 20; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		assert_int_equal(dbm_store(db, S(k), S("x"), DBM_INSERT), 0);
	}
	n = 0;
	int ahead = 0;
	for (datum d = dbm_firstkey(db); d.dptr; d = dbm_nextkey(db)) {
		if (n == 0) {
			assert_int_equal(dbm_store(db, S("k000"), S("behind"), DBM_INSERT), 0);
			assert_int_equal(dbm_store(db, S("k015x"), S("ahead"), DBM_INSERT), 0);
		}
		if (d.dsize == 5 && !memcmp(d.dptr, "k015x", 5))
			ahead = 1;
		assert_false(d.dsize == 4 && !memcmp(d.dptr, "k000", 4));
		n++;
	}
	assert_int_equal(n, 11);
	assert_true(ahead);
	assert_int_equal(dbm_error(db), 0);
	dbm_close(db);
}

/* ---- Differential test against GDBM ------------------------------------------------------ */

#define DIFF_OPS 20000
#define DIFF_KEYS 400

typedef struct blob {
	unsigned char *p;
	size_t n;
} blob;

static int blob_cmp(const void *a, const void *b)
{
	const blob *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;
	int c = n ? memcmp(x->p, y->p, n) : 0;
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

static blob random_blob(tu_rng *r, size_t min, size_t max)
{
	blob b;
	b.n = min + (size_t)tu_below(r, max - min + 1);
	b.p = malloc(b.n + 1); /* never NULL, even for 0 bytes */
	for (size_t i = 0; i < b.n; i++)
		b.p[i] = (unsigned char)tu_below(r, 256);
	return b;
}

static blob random_value(tu_rng *r)
{
	uint64_t c = tu_below(r, 100);
	if (c < 70)
		return random_blob(r, 0, 40);
	if (c < 95)
		return random_blob(r, 40, 1000);
	return random_blob(r, 1000, 20000);
}

/* Every key of both, sorted; they must be the same set. */
static size_t compare_walks(DBM *db, peer_ndbm *g)
{
	size_t nt = 0, ng = 0, cap = 64;
	blob *t = malloc(cap * sizeof *t), *gb = malloc(cap * sizeof *gb);
	for (datum d = dbm_firstkey(db); d.dptr; d = dbm_nextkey(db)) {
		if (nt == cap) {
			cap *= 2;
			t = realloc(t, cap * sizeof *t);
			gb = realloc(gb, cap * sizeof *gb);
		}
		t[nt].p = malloc(d.dsize + 1);
		memcpy(t[nt].p, d.dptr, d.dsize);
		t[nt++].n = d.dsize;
	}
	const void *k;
	size_t klen;
	for (int more = peer_ndbm_firstkey(g, &k, &klen); more;
	     more = peer_ndbm_nextkey(g, &k, &klen)) {
		assert_true(ng < cap);
		gb[ng].p = malloc(klen + 1);
		memcpy(gb[ng].p, k, klen);
		gb[ng++].n = klen;
	}
	assert_int_equal(nt, ng);
	qsort(gb, ng, sizeof *gb, blob_cmp);
	for (size_t i = 0; i < nt; i++) {
		if (i)
			assert_true(blob_cmp(&t[i - 1], &t[i]) < 0); /* sorted, unique */
		assert_int_equal(blob_cmp(&t[i], &gb[i]), 0);
	}
	for (size_t i = 0; i < nt; i++) {
		free(t[i].p);
		free(gb[i].p);
	}
	free(t);
	free(gb);
	return nt;
}

static void compare_fetch(DBM *db, peer_ndbm *g, const blob *k)
{
	datum key = {k->p, k->n};
	datum v = dbm_fetch(db, key);
	const void *gv;
	size_t gn;
	int found = peer_ndbm_fetch(g, k->p, k->n, &gv, &gn);
	assert_int_equal(v.dptr != NULL, found);
	if (found) {
		assert_int_equal(v.dsize, gn);
		assert_memory_equal(v.dptr, gv, gn);
	}
}

static void test_differential_gdbm(void **state)
{
	fixture *f = *state;
	tu_rng r;
	tu_rng_seed(&r, tu_seed("ndbm differential"));
	char *gfile = tu_join(f->dir, "gdbm");
	blob keys[DIFF_KEYS];
	for (int i = 0; i < DIFF_KEYS; i++) {
		int dup;
		do { /* distinct keys */
			keys[i] = random_blob(&r, 1, 24);
			dup = 0;
			for (int j = 0; j < i && !dup; j++)
				dup = blob_cmp(&keys[i], &keys[j]) == 0;
			if (dup)
				free(keys[i].p);
		} while (dup);
	}
	DBM *db = dbm_open(f->file, O_RDWR | O_CREAT | O_TRUNC, 0644);
	peer_ndbm *g = peer_ndbm_open(gfile, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_non_null(db);
	assert_non_null(g);
	size_t counts[8] = {0}, walked = 0;
	for (int op = 0; op < DIFF_OPS; op++) {
		blob *k = &keys[tu_below(&r, DIFF_KEYS)];
		datum key = {k->p, k->n};
		uint64_t c = tu_below(&r, 1000);
		if (c < 550) { /* store: insert or replace */
			int replace = c >= 300;
			blob v = random_value(&r);
			datum val = {v.p, v.n};
			int rt = dbm_store(db, key, val, replace ? DBM_REPLACE : DBM_INSERT);
			int rg = peer_ndbm_store(g, k->p, k->n, v.p, v.n, replace);
			assert_int_equal(rt, rg);
			counts[replace ? 1 : rt == 1 ? 2 : 0]++;
			/* GDBM raises its error flag when DBM_INSERT finds the
			 * key; POSIX (and Trove) do not.  Anything else that
			 * raises it is a difference. */
			assert_int_equal(peer_ndbm_error(g) != 0, rt == 1);
			peer_ndbm_clearerr(g);
			free(v.p);
		} else if (c < 800) {
			compare_fetch(db, g, k);
			counts[3]++;
		} else if (c < 955) {
			int rt = dbm_delete(db, key);
			int rg = peer_ndbm_delete(g, k->p, k->n);
			assert_int_equal(rt, rg);
			counts[rt == 0 ? 4 : 5]++;
		} else if (c < 995) {
			walked += compare_walks(db, g);
			counts[6]++;
		} else { /* close and reopen both; now and then truncate */
			int trunc = tu_below(&r, 10) == 0 ? O_TRUNC : 0;
			dbm_close(db);
			peer_ndbm_close(g);
			db = dbm_open(f->file, O_RDWR | trunc, 0);
			g = peer_ndbm_open(gfile, O_RDWR | trunc, 0);
			assert_non_null(db);
			assert_non_null(g);
			counts[7]++;
		}
		assert_int_equal(dbm_error(db), 0);
		assert_int_equal(peer_ndbm_error(g), 0);
	}
	/* The final states agree key by key. */
	size_t n = compare_walks(db, g);
	for (int i = 0; i < DIFF_KEYS; i++)
		compare_fetch(db, g, &keys[i]);
	assert_int_equal(peer_ndbm_error(g), 0);
	printf("# ndbm differential: %d ops (%zu inserts, %zu replaces, %zu insert "
	       "collisions, %zu fetches, %zu deletes + %zu of absent keys, %zu walks over "
	       "%zu keys, %zu reopens), %zu keys at the end\n",
	       DIFF_OPS, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5],
	       counts[6], walked, counts[7], n);
	dbm_close(db);
	peer_ndbm_close(g);
	for (int i = 0; i < DIFF_KEYS; i++)
		free(keys[i].p);
	free(gfile);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_classic_program, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_memory_rules, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_open_flags, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_walks_with_writes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_differential_gdbm, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
