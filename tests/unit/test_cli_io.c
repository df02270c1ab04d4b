/*
 * test_cli_io.c - `trove dump`, `load`, `import`, `export` and the
 * progress line, run as a user runs them.
 *
 * The tool (BUILD/trove, found next to this test's directory, or
 * $TROVE_CLI) is forked with pipes on stdin, stdout and stderr.  This test
 * has its own reader and writer of the dump format, written from
 * docs/FORMAT.md ("Dump files") with a bitwise CRC-32, so the documented
 * format is checked independently of src/cli/dumpfmt.c; it makes hostile
 * dumps with them too.  Peer files are made and read back with the
 * peers' own libraries (libgdbm, libgdbm_compat, libdb-5.3, liblmdb),
 * which is why this binary links no libtrove: libtrove's compatibility
 * faces provide ndbm and Berkeley DB names of their own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <db.h>
#include <gdbm-ndbm.h>
#include <gdbm.h>
#include <lmdb.h>

#include "cliproc.h"
#include "testutil.h"

/* The number `trove count` prints for db. */
static long count_of(const char *db)
{
	cli_result r;
	assert_int_equal(RUN(&r, "count", db), 0);
	long n = strtol(r.out, NULL, 10);
	cli_result_free(&r);
	return n;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The dump format, from docs/FORMAT.md ------------------------------------------ */

static uint32_t crc32_bitwise(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= s[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

typedef struct buf {
	char *p;
	size_t n;
} buf;

static void put_le(buf *b, uint64_t v, int bytes)
{
	unsigned char x[8];
	for (int i = 0; i < bytes; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	cli_append(&b->p, &b->n, x, (size_t)bytes);
}

static uint64_t get_le(const void *p, int bytes)
{
	const unsigned char *s = p;
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | s[i];
	return v;
}

static void w_header(buf *b, uint64_t hint)
{
	size_t at = b->n;
	cli_append(&b->p, &b->n, "TROVEDMP", 8);
	put_le(b, 1, 4);
	put_le(b, 0, 4);
	put_le(b, (uint64_t)now_ms(), 8);
	put_le(b, hint, 8);
	put_le(b, crc32_bitwise(b->p + at, 32), 4);
}

static void w_pair(buf *b, const void *k, size_t kn, const void *v, size_t vn, int64_t exp)
{
	size_t at = b->n;
	cli_append(&b->p, &b->n, "P", 1);
	put_le(b, kn, 4);
	put_le(b, vn, 4);
	put_le(b, (uint64_t)exp, 8);
	cli_append(&b->p, &b->n, k, kn);
	cli_append(&b->p, &b->n, v, vn);
	put_le(b, crc32_bitwise(b->p + at, b->n - at), 4);
}

static void w_end(buf *b, uint64_t n)
{
	size_t at = b->n;
	cli_append(&b->p, &b->n, "E", 1);
	put_le(b, n, 8);
	put_le(b, crc32_bitwise(b->p + at, 9), 4);
}

/* A set of pairs. */
typedef struct pair {
	char *k, *v;
	size_t kn, vn;
	int64_t exp;
} pair;

typedef struct pairs {
	pair *a;
	size_t n;
} pairs;

static void add_pair(pairs *s, const void *k, size_t kn, const void *v, size_t vn, int64_t exp)
{
	s->a = realloc(s->a, (s->n + 1) * sizeof *s->a);
	assert_non_null(s->a);
	pair *p = &s->a[s->n++];
	p->k = malloc(kn + 1);
	p->v = malloc(vn + 1);
	assert_non_null(p->k);
	assert_non_null(p->v);
	memcpy(p->k, k, kn);
	if (vn)
		memcpy(p->v, v, vn);
	p->kn = kn;
	p->vn = vn;
	p->exp = exp;
}

static void pairs_free(pairs *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->a[i].k);
		free(s->a[i].v);
	}
	free(s->a);
	s->a = NULL;
	s->n = 0;
}

/* Trove's order: bytewise, shorter first on ties. */
static int pair_cmp(const void *x, const void *y)
{
	const pair *a = x, *b = y;
	size_t n = a->kn < b->kn ? a->kn : b->kn;
	int c = memcmp(a->k, b->k, n);
	return c ? c : (a->kn > b->kn) - (a->kn < b->kn);
}

/* Parses a binary dump, checking everything FORMAT.md promises; *hint
 * receives the header's hint. */
static void parse_dump(const char *d, size_t n, pairs *out, uint64_t *hint)
{
	assert_true(n >= 36 + 13);
	assert_memory_equal(d, "TROVEDMP", 8);
	assert_int_equal(get_le(d + 8, 4), 1);
	assert_int_equal(get_le(d + 12, 4), 0);
	int64_t created = (int64_t)get_le(d + 16, 8);
	assert_true(created > now_ms() - 600000 && created <= now_ms());
	if (hint)
		*hint = get_le(d + 24, 8);
	assert_int_equal(get_le(d + 32, 4), crc32_bitwise(d, 32));
	size_t off = 36;
	uint64_t count = 0;
	while (d[off] == 'P') {
		assert_true(off + 21 <= n);
		size_t kn = get_le(d + off + 1, 4), vn = get_le(d + off + 5, 4);
		int64_t exp = (int64_t)get_le(d + off + 9, 8);
		assert_true(kn >= 1 && kn <= 65535);
		assert_true(off + 21 + kn + vn <= n);
		assert_int_equal(get_le(d + off + 17 + kn + vn, 4),
		                 crc32_bitwise(d + off, 17 + kn + vn));
		add_pair(out, d + off + 17, kn, d + off + 17 + kn, vn, exp);
		off += 21 + kn + vn;
		count++;
	}
	assert_int_equal(d[off], 'E');
	assert_int_equal(get_le(d + off + 1, 8), count);
	assert_int_equal(get_le(d + off + 9, 4), crc32_bitwise(d + off, 9));
	assert_int_equal(off + 13, n);
	for (size_t i = 1; i < out->n; i++) /* written in key order */
		assert_true(pair_cmp(&out->a[i - 1], &out->a[i]) < 0);
}

/* The pairs of database db, through `trove dump`. */
static void db_pairs(const char *db, pairs *out)
{
	cli_result r;
	assert_int_equal(RUN(&r, "dump", db), 0);
	assert_string_equal(r.err, "");
	parse_dump(r.out, r.outlen, out, NULL);
	cli_result_free(&r);
}

/* Asserts that got and want hold the same pairs (want is sorted here);
 * expiries are compared only when check_exp. */
static void expect_same(pairs *got, pairs *want, int check_exp)
{
	qsort(want->a, want->n, sizeof *want->a, pair_cmp);
	qsort(got->a, got->n, sizeof *got->a, pair_cmp);
	assert_int_equal(got->n, want->n);
	for (size_t i = 0; i < got->n; i++) {
		assert_int_equal(got->a[i].kn, want->a[i].kn);
		assert_memory_equal(got->a[i].k, want->a[i].k, got->a[i].kn);
		assert_int_equal(got->a[i].vn, want->a[i].vn);
		if (got->a[i].vn)
			assert_memory_equal(got->a[i].v, want->a[i].v, got->a[i].vn);
		if (check_exp)
			assert_int_equal(got->a[i].exp, want->a[i].exp);
	}
}

/* n pairs of binary keys (NUL, tab, newline, 0xff, ...: unique by a
 * two-byte prefix), some empty values and one of 200 KiB; keys stay under
 * LMDB's 511-byte limit. */
static void make_pairs(pairs *s, size_t n, uint64_t seed)
{
	tu_rng rng;
	tu_rng_seed(&rng, seed);
	char k[300], *v = malloc(200 * 1024);
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		size_t kn = 2 + tu_below(&rng, i == 3 ? 290 : 24), vn = tu_below(&rng, 90);
		k[0] = (char)(i >> 8);
		k[1] = (char)i;
		for (size_t j = 2; j < kn; j++)
			k[j] = (char)tu_below(&rng, 256);
		if (i % 7 == 0)
			vn = 0;
		if (i == 5)
			vn = 200 * 1024;
		for (size_t j = 0; j < vn; j++)
			v[j] = (char)tu_below(&rng, 256);
		add_pair(s, k, kn, v, vn, 0);
	}
	free(v);
}

/* Writes pairs as a dump file at path (expiries as given). */
static void write_dump_file(const char *path, const pairs *s)
{
	buf b = {0};
	w_header(&b, s->n);
	for (size_t i = 0; i < s->n; i++)
		w_pair(&b, s->a[i].k, s->a[i].kn, s->a[i].v, s->a[i].vn, s->a[i].exp);
	w_end(&b, s->n);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b.p, 1, b.n, f), b.n);
	fclose(f);
	free(b.p);
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* ---- Fixture ---------------------------------------------------------------------- */

typedef struct fixture {
	char *tmp;
	char *db;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->tmp = tu_tmpdir("cli-io");
	f->db = tu_join(f->tmp, "db");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tu_rmrf(f->tmp);
	free(f->tmp);
	free(f->db);
	free(f);
	return 0;
}

/* tmp/name, freed by the caller. */
static char *path_in(const fixture *f, const char *name)
{
	return tu_join(f->tmp, name);
}

/* ---- dump and load ------------------------------------------------------------------ */

/* A database made with put (binary keys through -e, TTLs, an empty value,
 * a big value); its dump read by this test's parser; loaded elsewhere
 * through a pipe; dumped again, byte for byte the same records. */
static void test_dump_load_round_trip(void **state)
{
	fixture *f = *state;
	char script[] = "put plain value\n"
	                "put \"bin\\x00key\\xff\" \"v\\x01\\x00\\\\\"\n"
	                "put empty \"\"\n"
	                "put ttl-soon x --ttl 3600000\n"
	                "put ttl-late \"tab\\there\" --ttl 86400000\n";
	cli_result r;
	int64_t before = now_ms();
	assert_int_equal(RUN_IN(&r, script, strlen(script), "shell", f->db), 0);
	cli_result_free(&r);
	char *big = path_in(f, "big");
	char *bigv = malloc(300000);
	for (int i = 0; i < 300000; i++)
		bigv[i] = (char)(i * 7);
	write_file(big, bigv, 300000);
	OK("put", f->db, "big", "--file", big);

	assert_int_equal(RUN(&r, "dump", f->db), 0);
	assert_string_equal(r.err, ""); /* no progress line: stderr is not a terminal */
	pairs got = {0};
	uint64_t hint;
	parse_dump(r.out, r.outlen, &got, &hint);
	assert_int_equal(hint, 6);
	assert_int_equal(got.n, 6);
	int64_t after = now_ms();
	/* Sorted: big, bin\0key\xff, empty, plain, ttl-late, ttl-soon. */
	assert_int_equal(got.a[0].vn, 300000);
	assert_memory_equal(got.a[0].v, bigv, 300000);
	assert_int_equal(got.a[1].kn, 8);
	assert_memory_equal(got.a[1].k, "bin\0key\xff", 8);
	assert_memory_equal(got.a[1].v, "v\x01\0\\", 4);
	assert_int_equal(got.a[2].vn, 0);
	assert_int_equal(got.a[3].exp, 0);
	assert_true(got.a[4].exp >= before + 86400000 && got.a[4].exp <= after + 86400000);
	assert_memory_equal(got.a[4].v, "tab\there", 8);
	assert_true(got.a[5].exp >= before + 3600000 && got.a[5].exp <= after + 3600000);

	/* dump | load, through stdin. */
	char *copy = path_in(f, "copy");
	cli_result l;
	assert_int_equal(RUN_IN(&l, r.out, r.outlen, "load", copy), 0);
	assert_string_equal(l.err, "");
	cli_result_free(&l);
	cli_result d2;
	assert_int_equal(RUN(&d2, "dump", copy), 0);
	assert_int_equal(d2.outlen, r.outlen);
	assert_memory_equal(d2.out + 36, r.out + 36, r.outlen - 36); /* all but the header */
	cli_result_free(&d2);
	cli_result t;
	assert_int_equal(RUN(&t, "ttl", copy, "ttl-soon"), 0);
	long long ms = strtoll(t.out, NULL, 10);
	assert_true(ms > 3500000 && ms <= 3600000);
	cli_result_free(&t);

	/* From a file too; --if-empty refuses the non-empty copy. */
	char *file = path_in(f, "dump.bin");
	write_file(file, r.out, r.outlen);
	assert_int_equal(RUN(&t, "load", copy, file, "--if-empty"), 2);
	assert_non_null(strstr(t.err, "--if-empty"));
	cli_result_free(&t);
	char *copy2 = path_in(f, "copy2");
	OK("load", copy2, file, "--if-empty");
	pairs again = {0};
	db_pairs(copy2, &again);
	expect_same(&again, &got, 1);

	/* A binary dump is not written to a terminal; FILE is written. */
	char *out = path_in(f, "out.bin");
	OK("dump", f->db, out);
	struct stat st;
	assert_int_equal(stat(out, &st), 0);
	assert_int_equal((size_t)st.st_size, r.outlen);
	pairs_free(&got);
	pairs_free(&again);
	cli_result_free(&r);
	free(bigv);
	free(big);
	free(copy);
	free(copy2);
	free(file);
	free(out);
}

/* The text form: exact output for known expiries; loading it back gives
 * the same database as the binary form. */
static void test_text_round_trip(void **state)
{
	fixture *f = *state;
	pairs s = {0};
	add_pair(&s, "a", 1, "1", 1, 0);
	add_pair(&s, "b\0\xff", 3, "", 0, 4102444800000LL);
	add_pair(&s, "c\t\n\\", 4, "v a\r", 4, 0);
	add_pair(&s, "#end 3", 6, "#", 1, 0); /* looks like a directive, but has tabs */
	char *file = path_in(f, "in.bin");
	write_dump_file(file, &s);
	OK("load", f->db, file);
	cli_result r;
	assert_int_equal(RUN(&r, "dump", "--text", f->db), 0);
	assert_string_equal(r.out, "#trove-dump-text 1\n"
	                           "#end 3\t#\t0\n"
	                           "a\t1\t0\n"
	                           "b\\x00\\xff\t\t4102444800000\n"
	                           "c\\t\\n\\\\\tv a\\x0d\t0\n"
	                           "#end 4\n");
	char *copy = path_in(f, "copy");
	cli_result l;
	assert_int_equal(RUN_IN(&l, r.out, r.outlen, "load", "--text", copy), 0);
	assert_string_equal(l.err, "");
	cli_result_free(&l);
	pairs got = {0};
	db_pairs(copy, &got);
	expect_same(&got, &s, 1);
	/* The text form read from a file, with the other escapes of -e. */
	char *txt = path_in(f, "in.txt");
	const char hand[] = "#trove-dump-text 1\nk\\x41\\0\tsp\\ ace\\\"\t0\n#end 1\n";
	write_file(txt, hand, sizeof hand - 1);
	char *third = path_in(f, "third");
	OK("load", "--text", third, txt);
	pairs h = {0}, want = {0};
	db_pairs(third, &h);
	add_pair(&want, "kA\0", 3, "sp ace\"", 7, 0);
	expect_same(&h, &want, 1);
	pairs_free(&s);
	pairs_free(&got);
	pairs_free(&h);
	pairs_free(&want);
	cli_result_free(&r);
	free(file);
	free(copy);
	free(txt);
	free(third);
}

/* Expired records are skipped; load merges into what is there. */
static void test_load_merges_and_skips_expired(void **state)
{
	fixture *f = *state;
	OK("put", f->db, "plain", "before");
	OK("put", f->db, "other", "kept");
	OK("put", f->db, "old", "kept too"); /* an expired record does not delete it */
	pairs s = {0};
	int64_t in_an_hour = now_ms() + 3600000;
	add_pair(&s, "old", 3, "x", 1, 1000); /* expired in 1970 */
	add_pair(&s, "gone", 4, "x", 1, now_ms() - 1);
	add_pair(&s, "new", 3, "y", 1, in_an_hour);
	add_pair(&s, "plain", 5, "after", 5, 0);
	char *file = path_in(f, "in.bin");
	write_dump_file(file, &s);
	OK("load", f->db, file);
	pairs got = {0}, want = {0};
	db_pairs(f->db, &got);
	add_pair(&want, "new", 3, "y", 1, in_an_hour);
	add_pair(&want, "old", 3, "kept too", 8, 0);
	add_pair(&want, "other", 5, "kept", 4, 0);
	add_pair(&want, "plain", 5, "after", 5, 0);
	expect_same(&got, &want, 1);
	/* -v says how many were skipped. */
	cli_result r;
	assert_int_equal(RUN(&r, "-v", "load", f->db, file), 0);
	assert_non_null(strstr(r.err, "2 expired records skipped"));
	cli_result_free(&r);
	pairs_free(&s);
	pairs_free(&got);
	pairs_free(&want);
	free(file);
}

/* ---- Hostile dumps ---------------------------------------------------------------------- */

static void small_dump(buf *b)
{
	w_header(b, 2);
	w_pair(b, "k1", 2, "v1", 2, 0);
	w_pair(b, "k2", 2, "", 0, 4102444800000LL);
	w_end(b, 2);
}

/* Loads d into db and expects a clean failure naming an offset. */
static void expect_load_fails(const char *db, const char *d, size_t n, const char *msg)
{
	cli_result r;
	int st = RUN_IN(&r, d, n, "load", db);
	if (st != 2 || !strstr(r.err, "offset") || (msg && !strstr(r.err, msg)))
		print_error("input of %zu bytes: status %d, stderr: %s\n", n, st, r.err);
	assert_int_equal(st, 2);
	assert_non_null(strstr(r.err, "offset"));
	if (msg)
		assert_non_null(strstr(r.err, msg));
	assert_non_null(strstr(r.err, "nothing was written"));
	cli_result_free(&r);
}

static void test_truncated_everywhere(void **state)
{
	fixture *f = *state;
	buf b = {0};
	small_dump(&b);
	OK("put", f->db, "seed", "x");
	for (size_t cut = 0; cut < b.n; cut++)
		expect_load_fails(f->db, b.p, cut, "truncated");
	assert_int_equal(count_of(f->db), 1); /* nothing applied */
	free(b.p);
}

static void test_flipped_bytes_everywhere(void **state)
{
	fixture *f = *state;
	buf b = {0};
	small_dump(&b);
	OK("put", f->db, "seed", "x");
	for (size_t at = 0; at < b.n; at++) {
		char *d = malloc(b.n);
		memcpy(d, b.p, b.n);
		d[at] ^= (char)(1u << (at % 8));
		expect_load_fails(f->db, d, b.n, NULL);
		free(d);
	}
	assert_int_equal(count_of(f->db), 1);
	free(b.p);
}

static void test_hostile_specifics(void **state)
{
	fixture *f = *state;
	buf b = {0};
	small_dump(&b);
	/* The exact message and offset of a few. */
	char *d = malloc(b.n + 8);
	memcpy(d, b.p, b.n);
	d[0] = 'X';
	expect_load_fails(f->db, d, b.n, "offset 0: not a Trove dump");
	memcpy(d, b.p, b.n);
	d[36 + 17] ^= 1; /* the first key */
	expect_load_fails(f->db, d, b.n, "offset 36: record checksum mismatch (record 1)");
	memcpy(d, b.p, b.n);
	memcpy(d + b.n, "junk", 4);
	expect_load_fails(f->db, d, b.n + 4, "data after the end record");
	free(d);

	buf v = {0}; /* a version from the future, with a good checksum */
	cli_append(&v.p, &v.n, "TROVEDMP", 8);
	put_le(&v, 2, 4);
	put_le(&v, 0, 4);
	put_le(&v, 0, 8);
	put_le(&v, 0, 8);
	put_le(&v, crc32_bitwise(v.p, 32), 4);
	w_end(&v, 0);
	expect_load_fails(f->db, v.p, v.n, "offset 8: dump format version 2");
	free(v.p);

	/* Lengths past the limits, with good checksums: refused before any
	 * allocation; an empty key; a negative expiry; a short count. */
	struct {
		uint32_t kn, vn;
		int64_t exp;
		const char *msg;
	} bad[] = {
	        {1, 0xfffffff0u, 0, "offset 41: bad value length"},
	        {0, 1, 0, "offset 37: bad key length 0"},
	        {70000, 1, 0, "bad key length 70000"},
	        {1, 1, -5, "offset 45: bad expiry time -5"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		buf h = {0};
		w_header(&h, 1);
		size_t at = h.n;
		cli_append(&h.p, &h.n, "P", 1);
		put_le(&h, bad[i].kn, 4);
		put_le(&h, bad[i].vn, 4);
		put_le(&h, (uint64_t)bad[i].exp, 8);
		cli_append(&h.p, &h.n, "kv", 2);
		put_le(&h, crc32_bitwise(h.p + at, h.n - at), 4);
		w_end(&h, 1);
		expect_load_fails(f->db, h.p, h.n, bad[i].msg);
		free(h.p);
	}
	buf c = {0};
	w_header(&c, 2);
	w_pair(&c, "a", 1, "b", 1, 0);
	w_end(&c, 2);
	expect_load_fails(f->db, c.p, c.n, "counts 2 records but 1 came before it");
	free(c.p);
	free(b.p);
	cli_result r;
	assert_int_equal(RUN(&r, "count", f->db), 0);
	assert_string_equal(r.out, "0\n");
	cli_result_free(&r);
}

static void test_text_hostile(void **state)
{
	fixture *f = *state;
	struct {
		const char *in, *msg;
	} cases[] = {
	        {"", "truncated"},
	        {"a\t1\t0\n#end 1\n", "offset 0: line 1: not a Trove text dump"},
	        {"#trove-dump-text 1\na\t1\t0\n", "before the \"#end\" line"},
	        {"#trove-dump-text 1\na\t1\t0\n#end 1", "no newline"},
	        {"#trove-dump-text 1\na\t1\t0\n#end 2\n", "counts 2 records"},
	        {"#trove-dump-text 1\na\\q\t1\t0\n#end 1\n",
	         "offset 20: line 2: bad escape in the key"},
	        {"#trove-dump-text 1\na\t1\\x4\t0\n#end 1\n",
	         "offset 22: line 2: bad escape in the value"},
	        {"#trove-dump-text 1\na\t1\n#end 1\n", "expected KEY<TAB>VALUE<TAB>EXPIRY"},
	        {"#trove-dump-text 1\na\t1\t0\tx\n#end 1\n", "expected KEY"},
	        {"#trove-dump-text 1\na\t1\t-1\n#end 1\n", "bad expiry"},
	        {"#trove-dump-text 1\na\t1\t12x\n#end 1\n", "bad expiry"},
	        {"#trove-dump-text 1\n\t1\t0\n#end 1\n", "keys are 1 to"},
	        {"#trove-dump-text 1\n\n#end 0\n", "expected KEY"},
	        {"#trove-dump-text 1\n#end 0\ntrailing\n", "data after"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cli_result r;
		int st = RUN_IN(&r, cases[i].in, strlen(cases[i].in), "load", "--text", f->db);
		if (st != 2 || !strstr(r.err, cases[i].msg))
			print_error("case %zu: status %d, stderr: %s\n", i, st, r.err);
		assert_int_equal(st, 2);
		assert_non_null(strstr(r.err, cases[i].msg));
		cli_result_free(&r);
	}
	assert_int_equal(count_of(f->db), 0);
}

/* Damage deep in a long dump: the batches before it stay, nothing after. */
static void test_failure_keeps_whole_batches(void **state)
{
	fixture *f = *state;
	buf b = {0};
	w_header(&b, 2500);
	size_t bad_at = 0;
	for (int i = 0; i < 2500; i++) {
		char k[16];
		int kn = snprintf(k, sizeof k, "key%05d", i);
		if (i == 2200)
			bad_at = b.n;
		w_pair(&b, k, (size_t)kn, "value", 5, 0);
	}
	w_end(&b, 2500);
	b.p[bad_at + 20] ^= 0x20; /* a byte of record 2201's key */
	cli_result r;
	assert_int_equal(RUN_IN(&r, b.p, b.n, "load", f->db), 2);
	char want[128];
	snprintf(want, sizeof want, "offset %zu: record checksum mismatch (record 2201)", bad_at);
	assert_non_null(strstr(r.err, want));
	assert_non_null(strstr(r.err, "2000 records in 2 batches"));
	cli_result_free(&r);
	assert_int_equal(count_of(f->db), 2000);
	cli_result k;
	assert_int_equal(RUN(&k, "exists", f->db, "key01999"), 0);
	cli_result_free(&k);
	assert_int_equal(RUN(&k, "exists", f->db, "key02000"), 1);
	cli_result_free(&k);

	/* A cut text dump: the same rule, counted in lines. */
	char *text = NULL;
	size_t tn = 0;
	cli_append(&text, &tn, "#trove-dump-text 1\n", 19);
	for (int i = 0; i < 1500; i++) {
		char line[32];
		int n = snprintf(line, sizeof line, "t%05d\tv\t0\n", i);
		cli_append(&text, &tn, line, (size_t)n);
	}
	char *db2 = path_in(f, "db2");
	assert_int_equal(RUN_IN(&r, text, tn, "load", "--text", db2), 2);
	assert_non_null(strstr(r.err, "line 1502"));
	assert_non_null(strstr(r.err, "1000 records in 1 batch "));
	cli_result_free(&r);
	assert_int_equal(count_of(db2), 1000);
	free(text);
	free(db2);
	free(b.p);
}

/* ---- Peer files made with the peers' own libraries -------------------------------------- */

static void make_gdbm(const char *path, const pairs *s)
{
	GDBM_FILE db = gdbm_open(path, 0, GDBM_NEWDB, 0644, NULL);
	assert_non_null(db);
	for (size_t i = 0; i < s->n; i++) {
		datum k = {s->a[i].k, (int)s->a[i].kn}, v = {s->a[i].v, (int)s->a[i].vn};
		assert_int_equal(gdbm_store(db, k, v, GDBM_REPLACE), 0);
	}
	assert_int_equal(gdbm_close(db), 0);
}

static void read_gdbm(const char *path, pairs *out)
{
	GDBM_FILE db = gdbm_open(path, 0, GDBM_READER, 0, NULL);
	assert_non_null(db);
	for (datum k = gdbm_firstkey(db); k.dptr;) {
		datum v = gdbm_fetch(db, k);
		assert_non_null(v.dptr);
		add_pair(out, k.dptr, (size_t)k.dsize, v.dptr, (size_t)v.dsize, 0);
		free(v.dptr);
		datum next = gdbm_nextkey(db, k);
		free(k.dptr);
		k = next;
	}
	gdbm_close(db);
}

static void make_ndbm(const char *path, const pairs *s)
{
	DBM *db = dbm_open((char *)path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_non_null(db);
	for (size_t i = 0; i < s->n; i++) {
		datum k = {s->a[i].k, (int)s->a[i].kn}, v = {s->a[i].v, (int)s->a[i].vn};
		assert_int_equal(dbm_store(db, k, v, DBM_REPLACE), 0);
	}
	dbm_close(db);
}

static void read_ndbm(const char *path, pairs *out)
{
	DBM *db = dbm_open((char *)path, O_RDONLY, 0);
	assert_non_null(db);
	for (datum k = dbm_firstkey(db); k.dptr; k = dbm_nextkey(db)) {
		datum v = dbm_fetch(db, k);
		assert_non_null(v.dptr);
		add_pair(out, k.dptr, (size_t)k.dsize, v.dptr, (size_t)v.dsize, 0);
	}
	dbm_close(db);
}

static void make_bdb(const char *path, DBTYPE type, const pairs *s)
{
	DB *db;
	assert_int_equal(db_create(&db, NULL, 0), 0);
	assert_int_equal(db->open(db, NULL, path, NULL, type, DB_CREATE, 0644), 0);
	for (size_t i = 0; i < s->n; i++) {
		DBT k, v;
		memset(&k, 0, sizeof k);
		memset(&v, 0, sizeof v);
		k.data = s->a[i].k;
		k.size = (u_int32_t)s->a[i].kn;
		v.data = s->a[i].v;
		v.size = (u_int32_t)s->a[i].vn;
		assert_int_equal(db->put(db, NULL, &k, &v, 0), 0);
	}
	assert_int_equal(db->close(db, 0), 0);
}

static void read_bdb(const char *path, DBTYPE want_type, pairs *out)
{
	DB *db;
	DBTYPE t;
	assert_int_equal(db_create(&db, NULL, 0), 0);
	assert_int_equal(db->open(db, NULL, path, NULL, DB_UNKNOWN, DB_RDONLY, 0), 0);
	assert_int_equal(db->get_type(db, &t), 0);
	assert_int_equal(t, want_type);
	DBC *c;
	assert_int_equal(db->cursor(db, NULL, &c, 0), 0);
	DBT k, v;
	memset(&k, 0, sizeof k);
	memset(&v, 0, sizeof v);
	int ret;
	while ((ret = c->get(c, &k, &v, DB_NEXT)) == 0)
		add_pair(out, k.data, k.size, v.data, v.size, 0);
	assert_int_equal(ret, DB_NOTFOUND);
	c->close(c);
	db->close(db, 0);
}

static MDB_env *lmdb_env(const char *path, unsigned flags)
{
	MDB_env *env;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 64u << 20), 0);
	assert_int_equal(mdb_env_open(env, path, flags, 0644), 0);
	return env;
}

static void make_lmdb(const char *path, unsigned flags, const pairs *s)
{
	MDB_env *env = lmdb_env(path, flags);
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	for (size_t i = 0; i < s->n; i++) {
		MDB_val k = {s->a[i].kn, s->a[i].k}, v = {s->a[i].vn, s->a[i].v};
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void read_lmdb(const char *path, unsigned flags, pairs *out)
{
	MDB_env *env = lmdb_env(path, flags | MDB_RDONLY);
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *c;
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
	MDB_val k, v;
	while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
		add_pair(out, k.mv_data, k.mv_size, v.mv_data, v.mv_size, 0);
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

/* Imports file into a fresh database (with --format fmt, or detected when
 * fmt is NULL) and compares every pair with want. */
static void import_and_compare(const fixture *f, const char *name, const char *file,
                               const char *fmt, pairs *want)
{
	char *db = path_in(f, name);
	if (fmt)
		OK("import", db, file, "--format", fmt);
	else
		OK("import", db, file);
	pairs got = {0};
	db_pairs(db, &got);
	expect_same(&got, want, 1);
	pairs_free(&got);
	free(db);
}

static void test_import_gdbm_and_ndbm(void **state)
{
	fixture *f = *state;
	pairs s = {0};
	make_pairs(&s, 300, 1);
	char *g = path_in(f, "data.gdbm");
	make_gdbm(g, &s);
	import_and_compare(f, "from-gdbm", g, NULL, &s);
	import_and_compare(f, "from-gdbm2", g, "gdbm", &s);
	char *n = path_in(f, "phones");
	make_ndbm(n, &s);
	import_and_compare(f, "from-ndbm", n, NULL, &s); /* the name without .pag/.dir */
	char *pag = path_in(f, "phones.pag");
	import_and_compare(f, "from-ndbm2", pag, NULL, &s);
	import_and_compare(f, "from-ndbm3", n, "ndbm", &s);

	/* An empty key (GDBM takes one; Trove cannot) is skipped, said, and
	 * makes the exit status 2; every other pair arrives. */
	pairs with_empty = {0};
	add_pair(&with_empty, "", 0, "orphan", 6, 0);
	add_pair(&with_empty, "k", 1, "v", 1, 0);
	char *g2 = path_in(f, "empty-key.gdbm");
	make_gdbm(g2, &with_empty);
	char *db = path_in(f, "from-empty-key");
	cli_result r;
	assert_int_equal(RUN(&r, "import", db, g2), 2);
	assert_non_null(strstr(r.err, "skipped a record with an empty key"));
	assert_non_null(strstr(r.err, "everything else was imported"));
	cli_result_free(&r);
	pairs got = {0}, want = {0};
	db_pairs(db, &got);
	add_pair(&want, "k", 1, "v", 1, 0);
	expect_same(&got, &want, 1);
	/* --if-empty refuses the database now that it has a key. */
	assert_int_equal(RUN(&r, "import", db, g, "--if-empty"), 2);
	assert_non_null(strstr(r.err, "--if-empty"));
	cli_result_free(&r);
	assert_int_equal(count_of(db), 1);
	pairs_free(&s);
	pairs_free(&with_empty);
	pairs_free(&got);
	pairs_free(&want);
	free(g);
	free(g2);
	free(n);
	free(pag);
	free(db);
}

static void test_import_bdb(void **state)
{
	fixture *f = *state;
	pairs s = {0};
	make_pairs(&s, 300, 2);
	char *bt = path_in(f, "data.btree"), *h = path_in(f, "data.hash");
	make_bdb(bt, DB_BTREE, &s);
	make_bdb(h, DB_HASH, &s);
	import_and_compare(f, "from-btree", bt, NULL, &s);
	import_and_compare(f, "from-hash", h, NULL, &s);
	import_and_compare(f, "from-hash2", h, "bdb", &s);

	/* A recno file has record numbers for keys: refused by name. */
	char *rn = path_in(f, "data.recno");
	DB *db;
	assert_int_equal(db_create(&db, NULL, 0), 0);
	assert_int_equal(db->open(db, NULL, rn, NULL, DB_RECNO, DB_CREATE, 0644), 0);
	db_recno_t recno = 1;
	DBT k, v;
	memset(&k, 0, sizeof k);
	memset(&v, 0, sizeof v);
	k.data = &recno;
	k.size = sizeof recno;
	v.data = "x";
	v.size = 1;
	assert_int_equal(db->put(db, NULL, &k, &v, 0), 0);
	db->close(db, 0);
	char *to = path_in(f, "from-recno");
	cli_result r;
	assert_int_equal(RUN(&r, "import", to, rn), 2);
	assert_non_null(strstr(r.err, "recno"));
	cli_result_free(&r);
	pairs_free(&s);
	free(bt);
	free(h);
	free(rn);
	free(to);
}

static void test_import_lmdb(void **state)
{
	fixture *f = *state;
	pairs s = {0};
	make_pairs(&s, 300, 3);
	char *dir = path_in(f, "env");
	assert_int_equal(mkdir(dir, 0755), 0);
	make_lmdb(dir, 0, &s);
	import_and_compare(f, "from-env", dir, NULL, &s);
	char *file = path_in(f, "single.mdb");
	make_lmdb(file, MDB_NOSUBDIR, &s);
	import_and_compare(f, "from-file", file, NULL, &s);
	import_and_compare(f, "from-file2", file, "lmdb", &s);
	pairs_free(&s);
	free(dir);
	free(file);
}

static void test_import_errors(void **state)
{
	fixture *f = *state;
	struct {
		const char *name, *content, *msg;
	} cases[] = {
	        {"junk", "this is no database at all, not even close........", "--format"},
	        {"a-dump", "TROVEDMP\x01\0\0\0", "use trove load"},
	};
	for (size_t i = 0; i < 2; i++) {
		char *p = path_in(f, cases[i].name);
		write_file(p, cases[i].content, strlen(cases[i].content) + 1);
		cli_result r;
		assert_int_equal(RUN(&r, "import", f->db, p), 2);
		assert_non_null(strstr(r.err, cases[i].msg));
		cli_result_free(&r);
		free(p);
	}
	cli_result r;
	char *missing = path_in(f, "missing");
	assert_int_equal(RUN(&r, "import", f->db, missing), 2);
	assert_non_null(strstr(r.err, "No such file"));
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "import", f->db, missing, "--format", "foo"), 2);
	assert_non_null(strstr(r.err, "unknown format 'foo'"));
	cli_result_free(&r);
	/* A GDBM file that is damaged: GDBM refuses it, trove says so. */
	char *bad = path_in(f, "bad.gdbm");
	static const char junk[] = "\xcf\x9a\x57\x13 and then nothing sensible";
	write_file(bad, junk, sizeof junk - 1);
	assert_int_equal(RUN(&r, "import", f->db, bad), 2);
	assert_non_null(strstr(r.err, "gdbm:"));
	assert_true(r.status < 128);
	cli_result_free(&r);
	free(missing);
	free(bad);
}

/* ---- export ----------------------------------------------------------------------------- */

static void test_export(void **state)
{
	fixture *f = *state;
	pairs s = {0};
	make_pairs(&s, 300, 4);
	s.a[7].exp = 4102444800000LL; /* an expiry, which the peers drop */
	char *file = path_in(f, "in.bin");
	write_dump_file(file, &s);
	OK("load", f->db, file);
	s.a[7].exp = 0;

	struct {
		const char *fmt, *name;
	} outs[] = {{"gdbm", "out.gdbm"},
	            {"ndbm", "out-ndbm"},
	            {"bdb", "out.btree"},
	            {"bdb-hash", "out.hash"},
	            {"lmdb", "out.mdb"}};
	for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
		char *p = path_in(f, outs[i].name);
		cli_result r;
		assert_int_equal(RUN(&r, "export", f->db, p, "--format", outs[i].fmt), 0);
		assert_non_null(strstr(r.err, "1 key had an expiry"));
		cli_result_free(&r);
		pairs got = {0};
		if (i == 0)
			read_gdbm(p, &got);
		else if (i == 1)
			read_ndbm(p, &got);
		else if (i == 2)
			read_bdb(p, DB_BTREE, &got);
		else if (i == 3)
			read_bdb(p, DB_HASH, &got);
		else
			read_lmdb(p, MDB_NOSUBDIR, &got);
		expect_same(&got, &s, 0);
		pairs_free(&got);
		free(p);
	}

	/* Export merges into an existing GDBM file, replacing values. */
	pairs pre = {0};
	add_pair(&pre, "only-in-gdbm", 12, "stays", 5, 0);
	add_pair(&pre, s.a[0].k, s.a[0].kn, "replaced", 8, 0);
	char *g = path_in(f, "merge.gdbm");
	make_gdbm(g, &pre);
	cli_result r;
	assert_int_equal(RUN(&r, "export", f->db, g, "--format", "gdbm"), 0);
	cli_result_free(&r);
	pairs got = {0};
	read_gdbm(g, &got);
	add_pair(&s, "only-in-gdbm", 12, "stays", 5, 0);
	expect_same(&got, &s, 0);

	/* And what an export wrote imports back the same. */
	char *back = path_in(f, "back");
	OK("import", back, g);
	pairs again = {0};
	db_pairs(back, &again);
	expect_same(&again, &s, 0);

	/* LMDB takes keys of at most 511 bytes: a longer one is skipped, said,
	 * and the status is 2; the rest is exported. */
	char *longk = malloc(600);
	memset(longk, 'L', 600);
	longk[599] = 0;
	OK("put", f->db, longk, "too long for LMDB");
	char *env = path_in(f, "env");
	assert_int_equal(mkdir(env, 0755), 0);
	assert_int_equal(RUN(&r, "export", f->db, env, "--format", "lmdb"), 2);
	assert_non_null(strstr(r.err, "LMDB keys are at most 511 bytes"));
	assert_non_null(strstr(r.err, "everything else was exported"));
	cli_result_free(&r);
	pairs in_env = {0};
	read_lmdb(env, 0, &in_env);
	pairs_free(&s);
	make_pairs(&s, 300, 4);
	expect_same(&in_env, &s, 0);
	pairs_free(&in_env);
	free(longk);
	free(env);

	assert_int_equal(RUN(&r, "export", f->db, g), 2); /* the format is required */
	assert_non_null(strstr(r.err, "--format"));
	cli_result_free(&r);
	char *nowhere = path_in(f, "no/such/dir.gdbm");
	assert_int_equal(RUN(&r, "export", f->db, nowhere, "--format", "gdbm"), 2);
	assert_non_null(strstr(r.err, "gdbm:"));
	assert_null(strstr(r.err, "Broken pipe")); /* the helper's reason, not the pipe's */
	cli_result_free(&r);
	pairs_free(&s);
	pairs_free(&pre);
	pairs_free(&got);
	pairs_free(&again);
	free(file);
	free(g);
	free(back);
	free(nowhere);
}

/* ---- Progress ------------------------------------------------------------------------------ */

/* The last line of a progress output ("\r...\n"), in a static buffer. */
static const char *last_line(const char *err)
{
	static char line[512];
	const char *cr = strrchr(err, '\r');
	assert_non_null(cr);
	snprintf(line, sizeof line, "%s", cr + 1);
	return line;
}

static void expect_final(const char *err, const char *label, const char *amount)
{
	const char *l = last_line(err);
	char want[64];
	snprintf(want, sizeof want, "%-8s [####################] 100%%  ", label);
	if (strncmp(l, want, strlen(want)) || !strstr(l, amount) || !strstr(l, "/s  in 0:0"))
		print_error("progress line: '%s'\n", l);
	assert_memory_equal(l, want, strlen(want));
	assert_non_null(strstr(l, amount));
	assert_non_null(strstr(l, "/s  in 0:0"));
	assert_int_equal(l[strlen(l) - 1], '\n');
}

static void test_progress_forced(void **state)
{
	fixture *f = *state;
	pairs s = {0};
	for (int i = 0; i < 3000; i++) {
		char k[16];
		int n = snprintf(k, sizeof k, "p%05d", i);
		add_pair(&s, k, (size_t)n, "value", 5, 0);
	}
	char *file = path_in(f, "in.bin");
	write_dump_file(file, &s);
	cli_result r;
	assert_int_equal(RUN(&r, "load", f->db, file, "--progress"), 0);
	/* The first line is drawn at once, 0%; the last says 100%. */
	assert_memory_equal(r.err, "\rload     [....................]   0%  0/3000 records  ", 55);
	expect_final(r.err, "load", "  3000/3000 records  ");
	cli_result_free(&r);

	assert_int_equal(RUN(&r, "dump", f->db, "--progress"), 0);
	expect_final(r.err, "dump", "  3000/3000 records  ");
	pairs got = {0};
	parse_dump(r.out, r.outlen, &got, NULL); /* stdout is still the dump alone */
	assert_int_equal(got.n, 3000);
	cli_result_free(&r);

	assert_int_equal(RUN(&r, "check", f->db, "--progress"), 0);
	expect_final(r.err, "check", " MiB  ");
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "compact", f->db, "--progress"), 0);
	expect_final(r.err, "compact", " MiB  ");
	cli_result_free(&r);
	char *bk = path_in(f, "backup");
	assert_int_equal(RUN(&r, "backup", f->db, bk, "--progress"), 0);
	expect_final(r.err, "backup", " MiB  ");
	cli_result_free(&r);

	/* A text load from a file counts bytes. */
	assert_int_equal(RUN(&r, "dump", "--text", f->db), 0);
	char *txt = path_in(f, "in.txt");
	write_file(txt, r.out, r.outlen);
	cli_result_free(&r);
	char *db2 = path_in(f, "db2");
	assert_int_equal(RUN(&r, "load", "--text", db2, txt, "--progress"), 0);
	expect_final(r.err, "load", " MiB  ");
	cli_result_free(&r);

	/* Without a terminal and without --progress: nothing; --quiet wins. */
	assert_int_equal(RUN(&r, "load", db2, file), 0);
	assert_string_equal(r.err, "");
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "load", db2, file, "--progress", "--quiet"), 0);
	assert_string_equal(r.err, "");
	cli_result_free(&r);
	pairs_free(&s);
	pairs_free(&got);
	free(file);
	free(bk);
	free(txt);
	free(db2);
}

/* Runs the tool with stderr on a pseudo-terminal; returns what it wrote
 * there. */
static char *run_on_tty(char *const *args, int *status)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(m >= 0);
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	int s = open(ptsname(m), O_RDWR | O_NOCTTY);
	assert_true(s >= 0);
	cli_proc p;
	cli_spawn(&p, args, s);
	close(s);
	cli_result r;
	cli_finish(&p, NULL, 0, &r);
	*status = r.status;
	char *tty = NULL;
	size_t n = 0;
	cli_append(&tty, &n, "", 0);
	for (;;) { /* everything the child wrote is buffered in the pty */
		struct pollfd pfd = {m, POLLIN, 0};
		char b[4096];
		if (poll(&pfd, 1, 100) <= 0)
			break;
		ssize_t got = read(m, b, sizeof b);
		if (got <= 0)
			break;
		cli_append(&tty, &n, b, (size_t)got);
	}
	close(m);
	cli_result_free(&r);
	return tty;
}

static void test_progress_on_terminal(void **state)
{
	fixture *f = *state;
	OK("put", f->db, "k", "v");
	int st;
	char *tty = run_on_tty((char *const[]){"check", f->db, NULL}, &st);
	assert_int_equal(st, 0);
	assert_non_null(strstr(tty, "check    ["));
	assert_non_null(strstr(tty, "100%"));
	free(tty);
	tty = run_on_tty((char *const[]){"check", f->db, "--quiet", NULL}, &st);
	assert_int_equal(st, 0);
	assert_string_equal(tty, "");
	free(tty);
	/* dump into a pipe leaves the terminal to the reader's line... */
	tty = run_on_tty((char *const[]){"dump", f->db, NULL}, &st);
	assert_int_equal(st, 0);
	assert_string_equal(tty, "");
	free(tty);
	/* ...unless asked. */
	tty = run_on_tty((char *const[]){"dump", f->db, "--progress", NULL}, &st);
	assert_int_equal(st, 0);
	assert_non_null(strstr(tty, "dump     ["));
	free(tty);
}

/* ---- Help ------------------------------------------------------------------------------- */

static void test_help(void **state)
{
	(void)state;
	cli_result r;
	assert_int_equal(RUN(&r, "--help"), 0);
	for (const char *c = "dump\0load\0import\0export\0"; *c; c += strlen(c) + 1) {
		char want[32];
		snprintf(want, sizeof want, "\n  %s ", c);
		assert_non_null(strstr(r.out, want));
	}
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "help", "load"), 0);
	assert_non_null(strstr(r.out, "usage: trove load DIR [FILE] [OPTIONS]"));
	assert_non_null(strstr(r.out, "--if-empty"));
	assert_non_null(strstr(r.out, "--progress"));
	assert_non_null(strstr(r.out, "batches"));
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "help", "import"), 0);
	assert_non_null(strstr(r.out, "--format FMT"));
	cli_result_free(&r);
	/* In the shell, load needs FILE: stdin holds the commands. */
	fixture *f = calloc(1, sizeof *f);
	f->tmp = tu_tmpdir("cli-io-help");
	f->db = tu_join(f->tmp, "db");
	assert_int_equal(RUN_IN(&r, "load\n", 5, "shell", f->db), 2);
	assert_non_null(strstr(r.err, "give FILE"));
	cli_result_free(&r);
	teardown((void **)&f);
}

int main(void)
{
	if (cli_find("test_cli_io") != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_dump_load_round_trip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_text_round_trip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_load_merges_and_skips_expired, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_truncated_everywhere, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_flipped_bytes_everywhere, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hostile_specifics, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_text_hostile, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_failure_keeps_whole_batches, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_import_gdbm_and_ndbm, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_import_bdb, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_import_lmdb, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_import_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_export, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_progress_forced, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_progress_on_terminal, setup, teardown),
	        cmocka_unit_test(test_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
