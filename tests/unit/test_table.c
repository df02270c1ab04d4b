/*
 * test_table.c - sorted tables and their parts: blocks, bloom filters,
 * building and reading whole tables, and what damage does to them.
 *
 * Every table test compares what comes back against the entries that went
 * in.  The corruption tests damage real files byte by byte and expect
 * TROVE_ECORRUPT (never a crash; run under ASan to mean it) and reports
 * that name the damaged block's offset.  They find block offsets by
 * decoding the footer and index as docs/FORMAT.md describes, which also
 * keeps that document honest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/block.h"
#include "engine/bloom.h"
#include "engine/ikey.h"
#include "engine/table.h"
#include "engine/version.h"
#include "testutil.h"
#include "util/checksum.h"

#define FOOTER_SIZE 76
#define HEADER_SIZE 16

/* ---- Entries ------------------------------------------------------------ */

typedef struct entry {
	char *ikey;
	size_t klen;
	char *val;
	size_t vlen;
} entry;

typedef struct dataset {
	entry *e;
	size_t n;
	size_t nusers; /* user keys are "user%08zu" for even numbers < 2*nusers */
} dataset;

static char *make_ikey(const char *ukey, size_t ulen, uint64_t seq, unsigned type, size_t *klen)
{
	char *k = malloc(ulen + TV_TRAILER);
	assert_non_null(k);
	memcpy(k, ukey, ulen);
	tv_put_fixed64(k + ulen, tv_pack_trailer(seq, type));
	*klen = ulen + TV_TRAILER;
	return k;
}

static size_t user_key(char *buf, size_t u)
{
	return (size_t)sprintf(buf, "user%08zu", u);
}

/* Even user keys 0, 2, 4 ... each with 1 to 3 versions (newest first, as
 * tables store them); some versions are tombstones with empty values.
 * Values are compressible text of 0 to 199 bytes. */
static dataset make_dataset(size_t nentries, uint64_t seed)
{
	dataset d = {calloc(nentries, sizeof(entry)), 0, 0};
	assert_non_null(d.e);
	tu_rng r;
	tu_rng_seed(&r, seed);
	while (d.n < nentries) {
		char ukey[32];
		size_t ulen = user_key(ukey, 2 * d.nusers);
		size_t versions = 1 + (size_t)tu_below(&r, 3);
		for (size_t v = 0; v < versions && d.n < nentries; v++) {
			entry *e = &d.e[d.n++];
			uint64_t seq = 10 * d.nusers + 3 - v; /* descending per key */
			unsigned type = tu_below(&r, 10) == 0 ? TV_TYPE_DEL : TV_TYPE_PUT;
			e->ikey = make_ikey(ukey, ulen, seq, type, &e->klen);
			e->vlen = type == TV_TYPE_DEL ? 0 : (size_t)tu_below(&r, 200);
			e->val = malloc(e->vlen + 1);
			assert_non_null(e->val);
			for (size_t i = 0; i < e->vlen; i++)
				e->val[i] = "the quick brown fox "[(i + d.n) % 20];
		}
		d.nusers++;
	}
	return d;
}

static void free_dataset(dataset *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->e[i].ikey);
		free(d->e[i].val);
	}
	free(d->e);
}

static tv_slice ekey(const entry *e)
{
	return tv_slice_make(e->ikey, e->klen);
}

static tv_slice eval(const entry *e)
{
	return tv_slice_make(e->val, e->vlen);
}

static void assert_slice_eq(tv_slice a, tv_slice b)
{
	assert_int_equal(a.len, b.len);
	if (a.len)
		assert_memory_equal(a.data, b.data, a.len);
}

/* Index of the first entry >= target: what a seek must find. */
static size_t lower_bound(const dataset *d, tv_slice target)
{
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tv_ikey_cmp(ekey(&d->e[mid]), target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Pads the user key of entry i (all its versions) with 'q' to ulen bytes.
 * "user00000002qqq..." still sorts between user00000002 and user00000004,
 * and its versions share a prefix of ulen bytes. */
static void lengthen_user(dataset *d, size_t i, size_t ulen)
{
	tv_slice uk = tv_ikey_user(ekey(&d->e[i]));
	char *u = malloc(ulen), *old = malloc(uk.len);
	memcpy(old, uk.data, uk.len);
	memcpy(u, uk.data, uk.len);
	memset(u + uk.len, 'q', ulen - uk.len);
	size_t a = i;
	while (a > 0 && tv_slice_eq(tv_ikey_user(ekey(&d->e[a - 1])), tv_slice_make(old, uk.len)))
		a--;
	for (; a < d->n && tv_slice_eq(tv_ikey_user(ekey(&d->e[a])), tv_slice_make(old, uk.len));
	     a++) {
		uint64_t tr = tv_ikey_trailer(ekey(&d->e[a]));
		free(d->e[a].ikey);
		d->e[a].ikey = make_ikey(u, ulen, tr >> 8, (unsigned)(tr & 0xff), &d->e[a].klen);
	}
	free(u);
	free(old);
}

static void assert_sorted(const dataset *d)
{
	for (size_t i = 1; i < d->n; i++)
		assert_true(tv_ikey_cmp(ekey(&d->e[i - 1]), ekey(&d->e[i])) < 0);
}

/* ---- Files and logging -------------------------------------------------- */

typedef struct fixture {
	char *dir;
	char *path;
	char lastmsg[512];
	int nmsgs;
	tv_logger lg;
} fixture;

static void capture(void *arg, int level, const char *msg)
{
	fixture *f = arg;
	(void)level;
	snprintf(f->lastmsg, sizeof f->lastmsg, "%s", msg);
	f->nmsgs++;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->dir = tu_tmpdir("table");
	f->path = tu_join(f->dir, "000001.sst");
	f->lg.fn = capture;
	f->lg.arg = f;
	*state = f;
	return f->dir && f->path ? 0 : -1;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tu_rmrf(f->dir);
	free(f->dir);
	free(f->path);
	free(f);
	return 0;
}

/* Writes d's entries as a table at path, each through tv_table_add or, if
 * hashed, tv_table_add_hashed with its user key's hash; returns its size. */
static uint64_t build_table_by(const char *path, const dataset *d, const tv_table_opts *o,
                               bool hashed)
{
	trove_vfs *vfs = tv_vfs_posix();
	tv_file *file;
	assert_int_equal(vfs->open(vfs, path, TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &file), 0);
	tv_table_builder *b;
	assert_int_equal(tv_table_builder_new(file, o, &b), 0);
	for (size_t i = 0; i < d->n; i++) {
		tv_slice k = ekey(&d->e[i]);
		assert_int_equal(hashed ? tv_table_add_hashed(b, k, eval(&d->e[i]),
		                                              tv_bloom_hash(tv_ikey_user(k)))
		                        : tv_table_add(b, k, eval(&d->e[i])),
		                 0);
	}
	assert_int_equal(tv_table_builder_entries(b), d->n);
	uint64_t estimate = tv_table_builder_size(b), size = 0;
	assert_int_equal(tv_table_finish(b, &size), 0);
	uint64_t diff = estimate > size ? estimate - size : size - estimate;
	assert_true(diff <= size / 10 + 256);
	tv_table_builder_free(b);
	assert_int_equal(vfs->sync(file), 0);
	assert_int_equal(vfs->close(file), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, size);
	return size;
}

static uint64_t build_table(const char *path, const dataset *d, const tv_table_opts *o)
{
	return build_table_by(path, d, o, false);
}

static int open_table(fixture *f, tv_cache *cache, tv_table **t)
{
	return tv_table_open(tv_vfs_posix(), f->path, 1, cache, &f->lg, t);
}

static void patch_file(const char *path, uint64_t off, const void *bytes, size_t n)
{
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
	assert_int_equal(fwrite(bytes, 1, n, fp), n);
	fclose(fp);
}

static void flip_byte(const char *path, uint64_t off)
{
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
	int c = fgetc(fp);
	assert_true(c != EOF);
	assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
	fputc(c ^ 0x5a, fp);
	fclose(fp);
}

static char *read_file(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	*n = (size_t)ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *p = malloc(*n + 1);
	assert_int_equal(fread(p, 1, *n, fp), *n);
	fclose(fp);
	return p;
}

static void write_file(const char *path, const char *p, size_t n)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	fclose(fp);
}

/* The file's layout, decoded as docs/FORMAT.md says. */
typedef struct layout {
	uint64_t filter_off, filter_size, props_off, props_size, index_off, index_size;
	uint64_t block_off[4096], block_size[4096];
	size_t nblocks;
} layout;

static void read_layout(const char *path, layout *l)
{
	size_t n;
	char *p = read_file(path, &n);
	const char *ft = p + n - FOOTER_SIZE, *q = ft;
	assert_memory_equal(p + n - 8, TV_TABLE_MAGIC, 8);
	assert_memory_equal(p, TV_TABLE_MAGIC, 8);
	assert_int_equal(tv_get_fixed32(p + 8), TV_TABLE_VERSION);
	assert_int_equal(tv_get_fixed32(p + 12), tv_checksum(p, 12));
	assert_int_equal(tv_get_fixed32(ft + 60), tv_checksum(ft, 60));
	assert_int_equal(tv_get_fixed32(ft + 64), TV_TABLE_VERSION);
	uint64_t *fields[] = {&l->filter_off, &l->filter_size, &l->props_off,
	                      &l->props_size, &l->index_off,   &l->index_size};
	for (int i = 0; i < 6; i++)
		assert_non_null(q = tv_decode_varint64(q, ft + 60, fields[i]));
	/* The index block is stored uncompressed; its trailer is checked. */
	const char *ib = p + l->index_off;
	assert_int_equal(ib[l->index_size], 0);
	assert_int_equal(tv_get_fixed32(ib + l->index_size + 1),
	                 tv_checksum(ib, l->index_size + 1));
	tv_block blk;
	assert_int_equal(tv_block_parse(&blk, ib, l->index_size), 0);
	tv_block_iter it;
	tv_block_iter_init(&it, &blk);
	l->nblocks = 0;
	for (tv_block_iter_seek_first(&it); tv_block_iter_valid(&it); tv_block_iter_next(&it)) {
		assert_true(l->nblocks < 4096);
		const char *v = it.value.data, *end = v + it.value.len;
		assert_non_null(v = tv_decode_varint64(v, end, &l->block_off[l->nblocks]));
		assert_non_null(v = tv_decode_varint64(v, end, &l->block_size[l->nblocks]));
		l->nblocks++;
	}
	assert_int_equal(it.status, 0);
	tv_block_iter_fini(&it);
	free(p);
}

/* ---- Blocks ------------------------------------------------------------- */

static void check_block_forward_backward(const tv_block *blk, const dataset *d)
{
	tv_iter *it = tv_block_iter_new(blk);
	assert_non_null(it);
	size_t i = 0;
	for (tv_iter_seek_first(it); tv_iter_valid(it); tv_iter_next(it), i++) {
		assert_slice_eq(tv_iter_key(it), ekey(&d->e[i]));
		assert_slice_eq(tv_iter_value(it), eval(&d->e[i]));
	}
	assert_int_equal(i, d->n);
	for (tv_iter_seek_last(it); tv_iter_valid(it); tv_iter_prev(it)) {
		i--;
		assert_slice_eq(tv_iter_key(it), ekey(&d->e[i]));
		assert_slice_eq(tv_iter_value(it), eval(&d->e[i]));
	}
	assert_int_equal(i, 0);
	assert_int_equal(tv_iter_status(it), 0);
	tv_iter_destroy(it);
}

/* Builds a block of d's entries with a restart point every `interval`;
 * returns its size. */
static size_t build_block_every(tv_block_builder *bb, const dataset *d, tv_block *blk,
                                int interval)
{
	tv_slice raw;
	tv_block_builder_init(bb, interval);
	for (size_t i = 0; i < d->n; i++)
		assert_int_equal(tv_block_add(bb, ekey(&d->e[i]), eval(&d->e[i])), 0);
	size_t estimate = tv_block_estimate(bb);
	assert_int_equal(tv_block_finish(bb, &raw), 0);
	assert_int_equal(raw.len, estimate);
	assert_int_equal(tv_block_parse(blk, raw.data, raw.len), 0);
	return raw.len;
}

/* The same with the interval data blocks are written with. */
static size_t build_block(tv_block_builder *bb, const dataset *d, tv_block *blk)
{
	return build_block_every(bb, d, blk, TV_BLOCK_RESTART_INTERVAL);
}

/* Seeks it to entry i of d, which must be where it lands. */
static void seek_to_entry(tv_block_iter *it, const dataset *d, size_t i)
{
	tv_block_iter_seek(it, ekey(&d->e[i]));
	assert_true(tv_block_iter_valid(it));
	assert_slice_eq(it->key, ekey(&d->e[i]));
	assert_slice_eq(it->value, eval(&d->e[i]));
}

static void test_block_roundtrip(void **state)
{
	(void)state;
	dataset d = make_dataset(1000, 42);
	/* 64 KiB keys: one user key with several versions (consecutive keys
	 * sharing 64 KiB, rebuilt in the iterator's heap buffer) and one
	 * key just longer than the inline buffer. */
	size_t multi = 500;
	while (!tv_slice_eq(tv_ikey_user(ekey(&d.e[multi])), tv_ikey_user(ekey(&d.e[multi + 1]))))
		multi++;
	lengthen_user(&d, multi, TROVE_MAX_KEY);
	lengthen_user(&d, 700, TV_BLOCK_ITER_INLINE + 1);
	assert_sorted(&d);

	tv_block_builder bb;
	tv_block blk;
	build_block(&bb, &d, &blk);
	check_block_forward_backward(&blk, &d);

	/* Seek to every key, and to just after each key (trailer seq - 1
	 * sorts after it). */
	tv_block_iter it;
	tv_block_iter_init(&it, &blk);
	for (size_t i = 0; i < d.n; i++) {
		seek_to_entry(&it, &d, i);
		size_t klen;
		tv_slice uk = tv_ikey_user(ekey(&d.e[i]));
		uint64_t seq = tv_ikey_seq(ekey(&d.e[i]));
		char *after = make_ikey(uk.data, uk.len, seq - 1, TV_SEEK_TYPE, &klen);
		tv_block_iter_seek(&it, tv_slice_make(after, klen));
		if (i + 1 < d.n) {
			assert_true(tv_block_iter_valid(&it));
			assert_slice_eq(it.key, ekey(&d.e[i + 1]));
		} else {
			assert_false(tv_block_iter_valid(&it));
		}
		free(after);
	}
	/* Before the first key. */
	size_t klen;
	char *first = make_ikey("a", 1, 5, TV_TYPE_PUT, &klen);
	tv_block_iter_seek(&it, tv_slice_make(first, klen));
	assert_true(tv_block_iter_valid(&it));
	assert_slice_eq(it.key, ekey(&d.e[0]));
	free(first);
	assert_int_equal(it.status, 0);
	tv_block_iter_fini(&it);
	tv_block_builder_free(&bb);
	free_dataset(&d);
}

/* Seeks in a block of keys from a tiny alphabet (zero bytes, keys that
 * are prefixes of others, several versions of a key) to random targets,
 * against the sorted keys: the scan after the restart search decides
 * most entries from their shared-prefix lengths alone (block.c). */
static int entry_qcmp(const void *a, const void *b)
{
	return tv_ikey_cmp(ekey(a), ekey(b));
}

/* Sorts d's entries and drops exact duplicates. */
static void sort_unique(dataset *d)
{
	qsort(d->e, d->n, sizeof(entry), entry_qcmp);
	size_t n = 0;
	for (size_t i = 0; i < d->n; i++) {
		if (n > 0 && tv_ikey_cmp(ekey(&d->e[n - 1]), ekey(&d->e[i])) == 0) {
			free(d->e[i].ikey);
			free(d->e[i].val);
			continue;
		}
		d->e[n++] = d->e[i];
	}
	d->n = n;
}

static size_t tiny_key(tu_rng *r, char *buf)
{
	static const char alpha[] = {'a', 'b', 0, (char)0xff};
	size_t len = (size_t)tu_below(r, 7);
	for (size_t i = 0; i < len; i++)
		buf[i] = alpha[tu_below(r, sizeof alpha)];
	return len;
}

/* The block seek test over keys that all begin with plen bytes of 'k':
 * its compares then diverge at plen and a few bytes on, where they are
 * made 8 bytes at a time (block.c's mismatch). */
static void block_seek_case(size_t plen)
{
	tu_rng r;
	tu_rng_seed(&r, tu_seed("block seeks"));
	dataset d = {calloc(2000, sizeof(entry)), 0, 0};
	assert_non_null(d.e);
	while (d.n < 2000) {
		char uk[40];
		memset(uk, 'k', plen);
		size_t ulen = plen + tiny_key(&r, uk + plen);
		for (uint64_t v = 1 + tu_below(&r, 3); v > 0 && d.n < 2000; v--) {
			entry *e = &d.e[d.n++];
			e->ikey = make_ikey(uk, ulen, 1 + tu_below(&r, 50), TV_TYPE_PUT, &e->klen);
			e->val = malloc(1);
			assert_non_null(e->val);
			e->vlen = 0;
		}
	}
	sort_unique(&d);
	tv_block_builder bb;
	tv_block blk;
	build_block(&bb, &d, &blk);
	tv_block_iter it;
	tv_block_iter_init(&it, &blk);
	for (int i = 0; i < 20000; i++) {
		char uk[40];
		memset(uk, 'k', plen);
		size_t ulen = plen + tiny_key(&r, uk + plen), klen;
		if (i % 50 == 0)
			ulen = (size_t)tu_below(&r, plen + 1); /* a prefix of the shared part */
		char *target = make_ikey(uk, ulen, tu_below(&r, 52), TV_SEEK_TYPE, &klen);
		tv_slice tk = tv_slice_make(target, klen);
		size_t want = lower_bound(&d, tk);
		tv_block_iter_seek(&it, tk);
		if (want < d.n) {
			assert_true(tv_block_iter_valid(&it));
			assert_slice_eq(it.key, ekey(&d.e[want]));
			tv_block_iter_next(&it); /* the iterator goes on from there */
			if (want + 1 < d.n)
				assert_slice_eq(it.key, ekey(&d.e[want + 1]));
			else
				assert_false(tv_block_iter_valid(&it));
		} else {
			assert_false(tv_block_iter_valid(&it));
		}
		free(target);
	}
	assert_int_equal(it.status, 0);
	tv_block_iter_fini(&it);
	tv_block_builder_free(&bb);
	free_dataset(&d);
}

static void test_block_seek_random(void **state)
{
	(void)state;
	static const size_t plens[] = {0, 5, 7, 8, 9, 15, 16, 17, 30};
	for (size_t i = 0; i < sizeof plens / sizeof *plens; i++)
		block_seek_case(plens[i]);
}

/* Seeks and steps across every restart boundary of a block with restart
 * points every n entries. */
static void restart_boundaries(size_t n)
{
	dataset d = make_dataset(n * 4 + 1, 7); /* the last restart has one entry */
	tv_block_builder bb;
	tv_block blk;
	build_block_every(&bb, &d, &blk, (int)n);
	assert_int_equal(blk.nrestarts, 5);
	tv_block_iter it;
	tv_block_iter_init(&it, &blk);
	size_t probes[] = {0, 1, n - 1, n, n + 1, 2 * n - 1, 2 * n, 2 * n + 1,
	                   3 * n - 1, 3 * n, 4 * n - 1, 4 * n};
	for (size_t p = 0; p < sizeof probes / sizeof *probes; p++) {
		size_t i = probes[p];
		tv_block_iter_seek(&it, ekey(&d.e[i]));
		assert_slice_eq(it.key, ekey(&d.e[i]));
		tv_block_iter_prev(&it);
		if (i == 0) {
			assert_false(tv_block_iter_valid(&it));
			continue;
		}
		assert_true(tv_block_iter_valid(&it));
		assert_slice_eq(it.key, ekey(&d.e[i - 1]));
		assert_slice_eq(it.value, eval(&d.e[i - 1]));
		tv_block_iter_next(&it);
		assert_slice_eq(it.key, ekey(&d.e[i]));
		tv_block_iter_next(&it);
		if (i + 1 < d.n)
			assert_slice_eq(it.key, ekey(&d.e[i + 1]));
		else
			assert_false(tv_block_iter_valid(&it));
	}
	/* Zig-zag across a boundary: prev, prev, next, next. */
	tv_block_iter_seek(&it, ekey(&d.e[2 * n + 1]));
	tv_block_iter_prev(&it);
	tv_block_iter_prev(&it);
	assert_slice_eq(it.key, ekey(&d.e[2 * n - 1]));
	tv_block_iter_next(&it);
	tv_block_iter_next(&it);
	assert_slice_eq(it.key, ekey(&d.e[2 * n + 1]));
	tv_block_iter_seek_last(&it);
	assert_slice_eq(it.key, ekey(&d.e[4 * n]));
	tv_block_iter_prev(&it);
	assert_slice_eq(it.key, ekey(&d.e[4 * n - 1]));
	assert_int_equal(it.status, 0);
	tv_block_iter_fini(&it);
	tv_block_builder_free(&bb);
	free_dataset(&d);
	/* seek_last fills the reverse cache with the last interval (one to
	 * n entries): steps back through it and forward again. */
	const size_t sizes[] = {1, 2, n, n + 1, n * 3 + 9};
	for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
		size_t len = sizes[t];
		d = make_dataset(len, 11 + t);
		build_block_every(&bb, &d, &blk, (int)n);
		tv_block_iter_init(&it, &blk);
		tv_block_iter_seek_last(&it);
		tv_block_iter_next(&it);
		assert_false(tv_block_iter_valid(&it));
		tv_block_iter_seek_last(&it);
		for (size_t back = 0; back < len && back < 20; back++) {
			assert_slice_eq(it.key, ekey(&d.e[len - 1 - back]));
			assert_slice_eq(it.value, eval(&d.e[len - 1 - back]));
			tv_block_iter_prev(&it);
		}
		if (len <= 20)
			assert_false(tv_block_iter_valid(&it));
		tv_block_iter_seek_last(&it);
		tv_block_iter_prev(&it);
		if (len > 1) {
			tv_block_iter_next(&it);
			assert_slice_eq(it.key, ekey(&d.e[len - 1]));
			tv_block_iter_prev(&it);
			assert_slice_eq(it.key, ekey(&d.e[len - 2]));
		}
		/* Back from the end into the block's first intervals, then
		 * forward across restart points and back again: the steps
		 * back leave the reverse cache and catch up from it. */
		if (len > 2 * n + 1) {
			tv_block_iter_seek_last(&it);
			for (size_t i = len - 1; i > n - 1; i--)
				tv_block_iter_prev(&it);
			assert_slice_eq(it.key, ekey(&d.e[n - 1]));
			for (size_t i = n - 1; i < 2 * n + 1; i++)
				tv_block_iter_next(&it);
			assert_slice_eq(it.key, ekey(&d.e[2 * n + 1]));
			for (size_t i = 2 * n + 1; i > 0; i--) {
				tv_block_iter_prev(&it);
				assert_slice_eq(it.key, ekey(&d.e[i - 1]));
				assert_slice_eq(it.value, eval(&d.e[i - 1]));
			}
			tv_block_iter_prev(&it);
			assert_false(tv_block_iter_valid(&it));
		}
		assert_int_equal(it.status, 0);
		tv_block_iter_fini(&it);
		tv_block_builder_free(&bb);
		free_dataset(&d);
	}
}

/* The interval data blocks are written with, and 16, which tables
 * written before November 2026 have. */
static void test_block_restart_boundaries(void **state)
{
	(void)state;
	restart_boundaries(TV_BLOCK_RESTART_INTERVAL);
	restart_boundaries(16);
}

/* A block whose restart array was copied elsewhere reads only the copy:
 * with the array at the block's end overwritten, every seek and step
 * still lands right. */
static void test_block_moved_restarts(void **state)
{
	(void)state;
	dataset d = make_dataset(8 * TV_BLOCK_RESTART_INTERVAL + 1, 11);
	tv_block_builder bb;
	tv_block blk;
	size_t size = build_block(&bb, &d, &blk);
	char *raw = malloc(size);
	char *copy = malloc((size_t)blk.nrestarts * 4);
	assert_non_null(raw);
	assert_non_null(copy);
	memcpy(raw, blk.data, size);
	assert_int_equal(tv_block_parse(&blk, raw, size), 0);
	tv_block_move_restarts(&blk, copy);
	memset(raw + blk.restarts, 0xff, (size_t)blk.nrestarts * 4);
	check_block_forward_backward(&blk, &d);
	tv_block_iter it;
	tv_block_iter_init(&it, &blk);
	for (size_t i = 0; i < d.n; i++) {
		seek_to_entry(&it, &d, i);
		tv_block_iter_prev(&it);
		if (i > 0)
			assert_slice_eq(it.key, ekey(&d.e[i - 1]));
	}
	assert_int_equal(it.status, 0);
	tv_block_iter_fini(&it);
	free(copy);
	free(raw);
	tv_block_builder_free(&bb);
	free_dataset(&d);
}

/* Keys and values of every shape a scan's step decodes in line or hands
 * to the general decoder (block.c): user keys of 1 to 40 bytes from a
 * two-letter alphabet, so that neighbours share 0 to 47 bytes and add 0
 * to 40, and values of 0 to 19 bytes, so that the last entries of a
 * block leave fewer than 16 bytes to read.  Forward, backward and
 * turning at every entry, with restart points every 4 and every 16. */
static void key_shapes(int interval, uint64_t seed)
{
	tu_rng r;
	tu_rng_seed(&r, seed);
	dataset d = {calloc(600, sizeof(entry)), 0, 0};
	assert_non_null(d.e);
	while (d.n < 600) {
		char uk[40];
		size_t ulen = 1 + (size_t)tu_below(&r, 40);
		for (size_t i = 0; i < ulen; i++)
			uk[i] = tu_below(&r, 2) ? 'a' : 'b';
		entry *e = &d.e[d.n++];
		e->ikey = make_ikey(uk, ulen, 1 + tu_below(&r, 3), TV_TYPE_PUT, &e->klen);
		e->vlen = (size_t)tu_below(&r, 20);
		e->val = malloc(e->vlen + 1);
		assert_non_null(e->val);
		memset(e->val, 'v', e->vlen);
	}
	sort_unique(&d);
	tv_block_builder bb;
	tv_block blk;
	size_t size = build_block_every(&bb, &d, &blk, interval);
	/* An exact-size copy, so that ASan sees a read past the block. */
	char *raw = malloc(size);
	assert_non_null(raw);
	memcpy(raw, blk.data, size);
	assert_int_equal(tv_block_parse(&blk, raw, size), 0);
	check_block_forward_backward(&blk, &d);
	tv_block_iter it;
	tv_block_iter_init(&it, &blk);
	for (size_t i = 0; i < d.n; i++) {
		seek_to_entry(&it, &d, i);
		tv_block_iter_prev(&it); /* back, then forward twice */
		if (i == 0) {
			assert_false(tv_block_iter_valid(&it));
			continue;
		}
		assert_slice_eq(it.key, ekey(&d.e[i - 1]));
		tv_block_iter_next(&it);
		assert_slice_eq(it.key, ekey(&d.e[i]));
		assert_slice_eq(it.value, eval(&d.e[i]));
		tv_block_iter_next(&it);
		if (i + 1 < d.n) {
			assert_slice_eq(it.key, ekey(&d.e[i + 1]));
			assert_slice_eq(it.value, eval(&d.e[i + 1]));
		} else {
			assert_false(tv_block_iter_valid(&it));
		}
	}
	assert_int_equal(it.status, 0);
	tv_block_iter_fini(&it);
	free(raw);
	tv_block_builder_free(&bb);
	free_dataset(&d);
}

static void test_block_key_shapes(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 4; seed++) {
		key_shapes(TV_BLOCK_RESTART_INTERVAL, seed);
		key_shapes(16, seed);
	}
}

/* Entries whose one-byte headers lie (a key or value running past the
 * entries, a prefix longer than the key before it, a key shorter than a
 * trailer) stop a forward and a backward scan with TROVE_ECORRUPT, in
 * an exact-size copy of the block. */
static void test_block_lying_headers(void **state)
{
	(void)state;
	dataset d = make_dataset(40, 5);
	tv_block_builder bb;
	tv_block blk;
	size_t size = build_block(&bb, &d, &blk);
	/* The offset of every entry's header, from a walk of the good block. */
	uint32_t offs[64];
	size_t n = 0;
	tv_block_iter it;
	tv_block_iter_init(&it, &blk);
	for (tv_block_iter_seek_first(&it); tv_block_iter_valid(&it); tv_block_iter_next(&it))
		offs[n++] = it.cur;
	tv_block_iter_fini(&it);
	assert_int_equal(n, d.n);
	for (size_t e = 1; e < n; e++) {
		for (int field = 0; field < 4; field++) {
			char *raw = malloc(size);
			assert_non_null(raw);
			memcpy(raw, blk.data, size);
			unsigned char *h = (unsigned char *)raw + offs[e];
			if ((h[0] | h[1] | h[2]) & 0x80) {
				free(raw);
				continue; /* not a one-byte header */
			}
			if (field == 0)
				h[1] = 0x7f; /* the key runs past the entries... */
			else if (field == 1)
				h[2] = 0x7f; /* ...or the value does */
			else if (field == 2)
				h[0] = 0x7f; /* a prefix longer than the key before */
			else
				h[0] = h[1] = 0; /* no trailer */
			tv_block bad;
			assert_int_equal(tv_block_parse(&bad, raw, size), 0);
			tv_block_iter_init(&it, &bad);
			size_t steps = 0;
			for (tv_block_iter_seek_first(&it); tv_block_iter_valid(&it);
			     tv_block_iter_next(&it))
				steps++;
			/* A longer key or value is caught where the entries after
			 * it cannot hold it; else it is misread, and maybe caught
			 * later. */
			if (field >= 2 || offs[e] + 3 + 0x7f > blk.restarts) {
				assert_int_equal(it.status, TROVE_ECORRUPT);
				assert_int_equal(steps, e);
			} else {
				assert_true(it.status == 0 || it.status == TROVE_ECORRUPT);
			}
			tv_block_iter_reset(&it, &bad);
			for (tv_block_iter_seek_last(&it); tv_block_iter_valid(&it);
			     tv_block_iter_prev(&it))
				steps++;
			assert_true(it.status == 0 || it.status == TROVE_ECORRUPT);
			tv_block_iter_fini(&it);
			free(raw);
		}
	}
	tv_block_builder_free(&bb);
	free_dataset(&d);
}

static void test_block_empty(void **state)
{
	(void)state;
	tv_block_builder bb;
	tv_block_builder_init(&bb, 16);
	tv_slice raw;
	assert_int_equal(tv_block_finish(&bb, &raw), 0);
	tv_block blk;
	assert_int_equal(tv_block_parse(&blk, raw.data, raw.len), 0);
	tv_block_iter it;
	tv_block_iter_init(&it, &blk);
	tv_block_iter_seek_first(&it);
	assert_false(tv_block_iter_valid(&it));
	tv_block_iter_seek_last(&it);
	assert_false(tv_block_iter_valid(&it));
	char k[TV_TRAILER] = {0};
	tv_block_iter_seek(&it, tv_slice_make(k, sizeof k));
	assert_false(tv_block_iter_valid(&it));
	assert_int_equal(it.status, 0);
	tv_block_iter_fini(&it);
	tv_block_builder_free(&bb);
}

/* Walks a (possibly damaged) block every way there is; it must stay in
 * bounds and end valid-with-status-0 or invalid-with-ECORRUPT. */
static void walk_hostile(const char *raw, size_t n, tv_slice probe)
{
	tv_block blk;
	if (tv_block_parse(&blk, raw, n))
		return;
	tv_block_iter it;
	tv_block_iter_init(&it, &blk);
	int steps = 0;
	for (tv_block_iter_seek_first(&it); tv_block_iter_valid(&it) && steps < 10000;
	     tv_block_iter_next(&it))
		steps++;
	assert_true(it.status == 0 || it.status == TROVE_ECORRUPT);
	tv_block_iter_reset(&it, &blk);
	for (tv_block_iter_seek_last(&it); tv_block_iter_valid(&it) && steps < 20000;
	     tv_block_iter_prev(&it))
		steps++;
	assert_true(it.status == 0 || it.status == TROVE_ECORRUPT);
	tv_block_iter_reset(&it, &blk);
	tv_block_iter_seek(&it, probe);
	if (tv_block_iter_valid(&it))
		tv_block_iter_prev(&it);
	assert_true(it.status == 0 || it.status == TROVE_ECORRUPT);
	assert_true(tv_block_iter_valid(&it) == 0 || it.status == 0);
	tv_block_iter_fini(&it);
}

static void test_block_hostile(void **state)
{
	(void)state;
	dataset d = make_dataset(100, 3);
	tv_block_builder bb;
	tv_block blk;
	size_t n = build_block(&bb, &d, &blk);
	tu_rng r;
	tu_rng_seed(&r, tu_seed("block hostile"));
	int corrupt_seen = 0;
	for (int round = 0; round < 3000; round++) {
		/* An exact-size copy so that ASan sees any read past the end. */
		size_t len = round % 5 == 0 ? (size_t)tu_below(&r, n + 1) : n;
		char *copy = malloc(len ? len : 1);
		memcpy(copy, blk.data, len);
		int flips = 1 + (int)tu_below(&r, 4);
		for (int i = 0; i < flips && len; i++)
			copy[tu_below(&r, len)] ^= (char)(1 + tu_below(&r, 255));
		walk_hostile(copy, len, ekey(&d.e[tu_below(&r, d.n)]));
		tv_block parsed;
		if (tv_block_parse(&parsed, copy, len) == 0) {
			tv_block_iter it;
			tv_block_iter_init(&it, &parsed);
			for (tv_block_iter_seek_first(&it); tv_block_iter_valid(&it);)
				tv_block_iter_next(&it);
			corrupt_seen += it.status == TROVE_ECORRUPT;
			tv_block_iter_fini(&it);
		}
		free(copy);
	}
	assert_true(corrupt_seen > 0); /* damage is noticed, not just survived */
	/* Restart offsets pointing anywhere, including past the entries. */
	char evil[64];
	memset(evil, 0x01, sizeof evil);
	tv_put_fixed32(evil + 60, 3);
	tv_put_fixed32(evil + 48, 0xffffffffu);
	walk_hostile(evil, sizeof evil, ekey(&d.e[0]));
	tv_put_fixed32(evil + 60, 0xffffffffu); /* more restarts than bytes */
	assert_int_equal(tv_block_parse(&blk, evil, sizeof evil), TROVE_ECORRUPT);
	tv_put_fixed32(evil + 60, 1); /* a first restart past the first entry */
	tv_put_fixed32(evil + 56, 4);
	assert_int_equal(tv_block_parse(&blk, evil, sizeof evil), TROVE_ECORRUPT);
	tv_put_fixed32(evil + 56, 0);
	assert_int_equal(tv_block_parse(&blk, evil, sizeof evil), 0);
	tv_block_builder_free(&bb);
	free_dataset(&d);
}

/* ---- Bloom filters ------------------------------------------------------ */

static double bloom_fp_rate(int bits_per_key, int nkeys)
{
	tv_bloom_builder b;
	tv_bloom_builder_init(&b, bits_per_key);
	char key[32];
	for (int i = 0; i < nkeys; i++)
		assert_int_equal(
		        tv_bloom_add(&b, tv_slice_make(key, (size_t)sprintf(key, "k%d", i))), 0);
	tv_buf f;
	tv_buf_init(&f);
	size_t size = tv_bloom_size(&b);
	assert_int_equal(tv_bloom_finish(&b, &f), 0);
	assert_int_equal(f.len, size);
	tv_slice fs = tv_buf_slice(&f);
	assert_true(tv_bloom_valid(fs));
	for (int i = 0; i < nkeys; i++) /* no false negatives, ever */
		assert_true(tv_bloom_may_contain(
		        fs, tv_slice_make(key, (size_t)sprintf(key, "k%d", i))));
	int fp = 0, probes = 100000;
	for (int i = 0; i < probes; i++)
		fp += tv_bloom_may_contain(fs, tv_slice_make(key, (size_t)sprintf(key, "x%d", i)));
	tv_buf_free(&f);
	tv_bloom_builder_free(&b);
	return (double)fp / probes;
}

static void test_bloom(void **state)
{
	(void)state;
	double r10 = bloom_fp_rate(10, 20000); /* theory: 0.82% */
	double r5 = bloom_fp_rate(5, 20000);   /* theory: 9.2% */
	double r20 = bloom_fp_rate(20, 20000); /* unblocked theory: 0.0067% */
	printf("# bloom false positives: 5 bits %.2f%%, 10 bits %.2f%%, 20 bits %.3f%%\n", r5 * 100,
	       r10 * 100, r20 * 100);
	assert_true(r10 > 0.002 && r10 < 0.015);
	assert_true(r5 > 0.05 && r5 < 0.14);
	assert_true(r20 < 0.003); /* blocked: one 64-byte line per key costs some accuracy */
	/* An empty filter says no; malformed ones are refused. */
	tv_bloom_builder b;
	tv_bloom_builder_init(&b, 10);
	tv_buf f;
	tv_buf_init(&f);
	assert_int_equal(tv_bloom_finish(&b, &f), 0);
	assert_false(tv_bloom_may_contain(tv_buf_slice(&f), tv_slice_make("k", 1)));
	f.data[f.len - 1] = 0; /* k = 0 */
	assert_false(tv_bloom_valid(tv_buf_slice(&f)));
	assert_false(tv_bloom_valid(tv_slice_make(f.data, 1)));
	tv_buf_free(&f);
	tv_bloom_builder_free(&b);
}

/* ---- Whole tables -------------------------------------------------------- */

/* What tv_table_get handed its callback, copied: the slices are valid
 * only during the call. */
typedef struct got {
	int calls;
	char key[TROVE_MAX_KEY + TV_TRAILER];
	char *value;
	tv_slice k, v;
} got;

static int record(void *arg, tv_slice ikey, tv_slice value)
{
	got *g = arg;
	g->calls++;
	memcpy(g->key, ikey.data, ikey.len);
	free(g->value);
	g->value = malloc(value.len + 1);
	if (value.len)
		memcpy(g->value, value.data, value.len);
	g->k = tv_slice_make(g->key, ikey.len);
	g->v = tv_slice_make(g->value, value.len);
	return 7; /* returned by tv_table_get as is */
}

static got *new_got(void)
{
	got *g = calloc(1, sizeof *g);
	assert_non_null(g);
	return g;
}

static void free_got(got *g)
{
	free(g->value);
	free(g);
}

static void check_iteration(tv_table *t, const dataset *d)
{
	tv_iter *it = tv_table_iter(t, true);
	assert_non_null(it);
	size_t i = 0;
	for (tv_iter_seek_first(it); tv_iter_valid(it); tv_iter_next(it), i++) {
		assert_slice_eq(tv_iter_key(it), ekey(&d->e[i]));
		assert_slice_eq(tv_iter_value(it), eval(&d->e[i]));
	}
	assert_int_equal(tv_iter_status(it), 0);
	assert_int_equal(i, d->n);
	for (tv_iter_seek_last(it); tv_iter_valid(it); tv_iter_prev(it)) {
		i--;
		assert_slice_eq(tv_iter_key(it), ekey(&d->e[i]));
		assert_slice_eq(tv_iter_value(it), eval(&d->e[i]));
	}
	assert_int_equal(i, 0);
	/* Seek to every 97th key exactly, then step both ways. */
	for (i = 0; i < d->n; i += 97) {
		tv_iter_seek(it, ekey(&d->e[i]));
		assert_true(tv_iter_valid(it));
		assert_slice_eq(tv_iter_key(it), ekey(&d->e[i]));
		tv_iter_prev(it);
		if (i == 0) {
			assert_false(tv_iter_valid(it));
			continue;
		}
		assert_slice_eq(tv_iter_key(it), ekey(&d->e[i - 1]));
		tv_iter_next(it);
		tv_iter_next(it);
		if (i + 1 < d->n)
			assert_slice_eq(tv_iter_key(it), ekey(&d->e[i + 1]));
	}
	/* Seek between user keys (odd numbers are absent) and into the
	 * middle of a key's versions. */
	for (size_t u = 0; u < d->nusers + 1; u += 31) {
		char uk[32];
		size_t klen;
		uint64_t seq = u % 2 ? TV_MAX_SEQ : 10 * u + 2;
		size_t ulen = user_key(uk, 2 * u + u % 2);
		char *target = make_ikey(uk, ulen, seq, TV_SEEK_TYPE, &klen);
		size_t want = lower_bound(d, tv_slice_make(target, klen));
		tv_iter_seek(it, tv_slice_make(target, klen));
		if (want < d->n) {
			assert_true(tv_iter_valid(it));
			assert_slice_eq(tv_iter_key(it), ekey(&d->e[want]));
		} else {
			assert_false(tv_iter_valid(it));
		}
		free(target);
	}
	assert_int_equal(tv_iter_status(it), 0);
	tv_iter_destroy(it);
}

/* A random walk over a table iterator: runs of next and prev that change
 * direction inside and across data blocks, run off either end and come
 * back by a seek, checking the published position (valid, key, value)
 * against d at every move, and that a value published as lasting is
 * still intact after the next step (without a cache, a block the step
 * let go is freed: ASan sees a read of it). */
static void walk_randomly(tv_iter *it, const dataset *d, const char *seed)
{
	tu_rng r;
	tu_rng_seed(&r, tu_seed(seed));
	long pos = -1, held_pos = -1;
	tv_slice held = {NULL, 0};
	int forward = 1;
	for (int step = 0; step < 40000; step++) {
		uint64_t op = tu_below(&r, 64);
		if (tu_below(&r, 8) == 0)
			forward = !forward; /* runs of ~8 steps one way */
		held_pos = -1;
		if (pos >= 0 && op > 2 && tv_iter_value_lasts(it)) {
			held = tv_iter_value(it);
			held_pos = pos;
		}
		if (pos < 0 || op == 0) {
			pos = (long)tu_below(&r, d->n);
			tv_iter_seek(it, ekey(&d->e[pos]));
		} else if (op == 1) {
			tv_iter_seek_first(it);
			pos = 0;
		} else if (op == 2) {
			tv_iter_seek_last(it);
			pos = (long)d->n - 1;
		} else if (forward) {
			tv_iter_next(it);
			pos = pos + 1 < (long)d->n ? pos + 1 : -1;
		} else {
			tv_iter_prev(it);
			pos--;
		}
		if (held_pos >= 0) { /* memcmp, which ASan checks, unlike cmocka */
			tv_slice want = eval(&d->e[held_pos]);
			assert_int_equal(held.len, want.len);
			assert_int_equal(memcmp(held.data, want.data, want.len), 0);
		}
		if (pos < 0) {
			assert_false(tv_iter_valid(it));
			continue;
		}
		assert_true(tv_iter_valid(it));
		assert_slice_eq(tv_iter_key(it), ekey(&d->e[pos]));
		assert_slice_eq(tv_iter_value(it), eval(&d->e[pos]));
	}
	assert_int_equal(tv_iter_status(it), 0);
}

static void check_random_walk(tv_table *t, const dataset *d)
{
	tv_iter *it = tv_table_iter(t, true);
	assert_non_null(it);
	walk_randomly(it, d, "table walk");
	tv_iter_destroy(it);
}

/* For each user key (every 13th), looks up at sequences between and
 * around its versions and checks the newest visible one is returned. */
static void check_gets(tv_table *t, const dataset *d)
{
	got *g = new_got();
	size_t i = 0;
	while (i < d->n) {
		size_t j = i; /* versions of one user key: [i, j) */
		tv_slice uk = tv_ikey_user(ekey(&d->e[i]));
		while (j < d->n && tv_slice_eq(tv_ikey_user(ekey(&d->e[j])), uk))
			j++;
		if (i % 13 == 0 || j == d->n) {
			uint64_t newest = tv_ikey_seq(ekey(&d->e[i]));
			for (uint64_t s = newest + 2; s + 4 > newest; s--) {
				size_t klen;
				char *target = make_ikey(uk.data, uk.len, s, TV_SEEK_TYPE, &klen);
				g->calls = 0;
				int rc = tv_table_get(t, tv_slice_make(target, klen), record, g);
				size_t want = i; /* the newest version with seq <= s */
				while (want < j && tv_ikey_seq(ekey(&d->e[want])) > s)
					want++;
				if (want < j) {
					assert_int_equal(rc, 7);
					assert_int_equal(g->calls, 1);
					assert_slice_eq(g->k, ekey(&d->e[want]));
					assert_slice_eq(g->v, eval(&d->e[want]));
				} else {
					assert_int_equal(rc, 0);
					assert_int_equal(g->calls, 0);
				}
				free(target);
				if (s == 0)
					break;
			}
			/* The absent odd key right after it. */
			char ab[32];
			size_t klen;
			unsigned long long num = strtoull(uk.data + 4, NULL, 10);
			size_t alen = user_key(ab, (size_t)num + 1);
			char *target = make_ikey(ab, alen, TV_MAX_SEQ, TV_SEEK_TYPE, &klen);
			g->calls = 0;
			assert_int_equal(tv_table_get(t, tv_slice_make(target, klen), record, g),
			                 0);
			assert_int_equal(g->calls, 0);
			free(target);
		}
		i = j;
	}
	free_got(g);
}

static void roundtrip(fixture *f, int compression)
{
	dataset d = make_dataset(50000, 1000 + (uint64_t)compression);
	tv_table_opts o = {compression, 0, 4096, 10};
	uint64_t size = build_table(f->path, &d, &o);
	tv_cache *cache = tv_cache_new(8u << 20);
	tv_table *t;
	assert_int_equal(open_table(f, cache, &t), 0);
	assert_int_equal(tv_table_entries(t), d.n);
	assert_int_equal(tv_table_file_size(t), size);
	assert_true(tv_table_memory(t) > 0 && tv_table_memory(t) < size);
	check_iteration(t, &d);
	check_random_walk(t, &d);
	check_gets(t, &d);
	tv_table *uncached;
	assert_int_equal(open_table(f, NULL, &uncached), 0);
	check_random_walk(uncached, &d);
	tv_table_close(uncached);
	uint64_t hits = tv_cache_hits(cache);
	check_gets(t, &d); /* everything fits: the second pass only hits */
	assert_true(tv_cache_hits(cache) > hits);
	assert_int_equal(tv_table_verify(t, NULL, NULL), 0);
	assert_int_equal(f->nmsgs, 0);
	tv_table_close(t);

	/* The same table without a cache reads the same. */
	assert_int_equal(open_table(f, NULL, &t), 0);
	check_iteration(t, &d);
	check_gets(t, &d);
	tv_table_close(t);
	tv_cache_free(cache);
	free_dataset(&d);
	printf("# %s: %llu bytes for 50000 entries\n",
	       compression == TROVE_COMPRESS_NONE  ? "none"
	       : compression == TROVE_COMPRESS_LZ4 ? "lz4"
	                                           : "zstd",
	       (unsigned long long)size);
}

/* Keys from a tiny alphabet with zero bytes, of many lengths.  Mode 0:
 * all share a long prefix, and targets fall before, inside and after it.
 * Mode 1: keys vary in their first byte, then share 8 bytes, so nearly
 * all of the index's fences (table.c) tie and whole keys decide.  Gets
 * and seeks must agree with the sorted keys either way. */
static size_t fence_key(tu_rng *r, int mode, char *buf)
{
	static const char alpha[] = {'a', 'b', 0, (char)0xff};
	size_t fixed = 14;
	if (mode == 0) {
		memcpy(buf, "shared-prefix/", fixed);
	} else {
		buf[0] = alpha[tu_below(r, sizeof alpha)];
		memcpy(buf + 1, "12345678/abcd", fixed - 1);
	}
	size_t len = fixed + (size_t)tu_below(r, 16);
	for (size_t i = fixed; i < len; i++)
		buf[i] = alpha[tu_below(r, sizeof alpha)];
	return len;
}

/* Seeks it to tk, which must land on entry want of d (past the end if
 * want == d->n), and steps once: a seek may end on a block's last entry,
 * and the step then crosses into the next block. */
static void seek_and_step(tv_iter *it, const dataset *d, tv_slice tk, size_t want)
{
	tv_iter_seek(it, tk);
	if (want >= d->n) {
		assert_false(tv_iter_valid(it));
		return;
	}
	assert_slice_eq(tv_iter_key(it), ekey(&d->e[want]));
	tv_iter_next(it);
	if (want + 1 < d->n)
		assert_slice_eq(tv_iter_key(it), ekey(&d->e[want + 1]));
	else
		assert_false(tv_iter_valid(it));
}

static void fences_case(fixture *f, int mode, bool cached, size_t nkeys)
{
	tu_rng r;
	tu_rng_seed(&r, tu_seed("table fences"));
	dataset d = {calloc(nkeys, sizeof(entry)), 0, 0};
	assert_non_null(d.e);
	for (size_t i = 0; i < nkeys; i++) {
		char uk[32];
		size_t ulen = fence_key(&r, mode, uk);
		entry *e = &d.e[d.n++];
		e->ikey = make_ikey(uk, ulen, 100 + i, TV_TYPE_PUT, &e->klen);
		e->vlen = 8;
		e->val = malloc(8);
		assert_non_null(e->val);
		memcpy(e->val, e->ikey, 8);
	}
	qsort(d.e, d.n, sizeof(entry), entry_qcmp);
	tv_table_opts o = {TROVE_COMPRESS_NONE, 0, 128, 10}; /* many small blocks */
	build_table(f->path, &d, &o);
	tv_table *t;
	tv_cache *cache = cached ? tv_cache_new(8u << 20) : NULL;
	assert_int_equal(open_table(f, cache, &t), 0);
	/* With a cache, seeks take their blocks through the slots. */
	tv_iter *it = tv_table_iter(t, true);
	assert_non_null(it);
	got *g = new_got();
	for (int i = 0; i < 6000; i++) {
		char uk[32];
		size_t ulen = fence_key(&r, mode, uk);
		if (i % 100 == 0)
			ulen = (size_t)tu_below(&r, 15); /* a prefix of the shared part */
		if (i % 100 == 1)
			uk[0] = (char)(i % 200 < 100 ? 'A' : 'z'); /* before or after all */
		size_t klen;
		char *target = make_ikey(uk, ulen, TV_MAX_SEQ, TV_SEEK_TYPE, &klen);
		tv_slice tk = tv_slice_make(target, klen);
		size_t want = lower_bound(&d, tk);
		g->calls = 0;
		int rc = tv_table_get(t, tk, record, g);
		if (want < d.n && tv_slice_eq(tv_ikey_user(ekey(&d.e[want])), tv_ikey_user(tk))) {
			assert_int_equal(rc, 7);
			assert_slice_eq(g->k, ekey(&d.e[want]));
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(g->calls, 0);
		}
		seek_and_step(it, &d, tk, want);
		free(target);
	}
	for (size_t i = 0; i < d.n; i++) { /* every present key */
		g->calls = 0;
		assert_int_equal(tv_table_get(t, ekey(&d.e[i]), record, g), 7);
		assert_slice_eq(g->k, ekey(&d.e[i]));
		seek_and_step(it, &d, ekey(&d.e[i]), i); /* every block's ends among them */
	}
	assert_int_equal(tv_iter_status(it), 0);
	tv_iter_destroy(it);
	free_got(g);
	assert_int_equal(f->nmsgs, 0);
	tv_table_close(t);
	if (cache)
		tv_cache_free(cache);
	free_dataset(&d);
}

/* The key counts give tables of a few blocks up to ~1000: one to four
 * levels of fences (table.c's fence_lower), most with a partial line. */
static void test_index_fences(void **state)
{
	static const size_t nkeys[] = {5, 40, 300, 3000};
	for (size_t k = 0; k < sizeof nkeys / sizeof nkeys[0]; k++) {
		for (int cached = 0; cached < 2; cached++) {
			fences_case(*state, 0, cached, nkeys[k]);
			fences_case(*state, 1, cached, nkeys[k]);
		}
	}
}

static void test_table_none(void **state)
{
	roundtrip(*state, TROVE_COMPRESS_NONE);
}

static void test_table_lz4(void **state)
{
	roundtrip(*state, TROVE_COMPRESS_LZ4);
}

static void test_table_zstd(void **state)
{
	roundtrip(*state, TROVE_COMPRESS_ZSTD);
}

static void test_compression_saves(void **state)
{
	fixture *f = *state;
	dataset d = make_dataset(5000, 9);
	uint64_t sizes[3];
	for (int c = 0; c < 3; c++) {
		tv_table_opts o = {c, 0, 0, 10};
		sizes[c] = build_table(f->path, &d, &o);
	}
	assert_true(sizes[1] < sizes[0] - sizes[0] / 8);
	assert_true(sizes[2] < sizes[0] - sizes[0] / 8);
	/* Incompressible values stay raw: no bigger than without compression. */
	tu_rng r;
	tu_rng_seed(&r, 5);
	for (size_t i = 0; i < d.n; i++)
		for (size_t k = 0; k < d.e[i].vlen; k++)
			d.e[i].val[k] = (char)tu_rand(&r);
	for (int c = 0; c < 3; c++) {
		tv_table_opts o = {c, 0, 0, 0};
		sizes[c] = build_table(f->path, &d, &o);
	}
	assert_int_equal(sizes[1], sizes[0]);
	assert_int_equal(sizes[2], sizes[0]);
	tv_table *t;
	assert_int_equal(open_table(f, NULL, &t), 0);
	check_iteration(t, &d); /* and without a filter */
	check_gets(t, &d);
	tv_table_close(t);
	free_dataset(&d);
}

/* Reads the whole file at path into a malloc'd buffer of *n bytes. */
static char *read_whole(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	long len = ftell(fp);
	assert_true(len > 0);
	rewind(fp);
	char *buf = malloc((size_t)len);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	*n = (size_t)len;
	return buf;
}

/* tv_table_add_hashed, given each user key's tv_bloom_hash (as the flush
 * passes it), writes the same table as tv_table_add, filter included. */
static void test_add_hashed(void **state)
{
	fixture *f = *state;
	dataset d = make_dataset(3000, 17);
	tv_table_opts o = {TROVE_COMPRESS_LZ4, 0, 0, 10};
	uint64_t size = build_table(f->path, &d, &o);
	size_t n1, n2;
	char *plain = read_whole(f->path, &n1);
	assert_int_equal(build_table_by(f->path, &d, &o, true), size);
	char *hashed = read_whole(f->path, &n2);
	assert_int_equal(n2, n1);
	assert_memory_equal(hashed, plain, n1);
	tv_table *t;
	assert_int_equal(open_table(f, NULL, &t), 0);
	check_gets(t, &d);
	tv_table_close(t);
	free(plain);
	free(hashed);
	free_dataset(&d);
}

static void test_table_empty_and_big(void **state)
{
	fixture *f = *state;
	dataset d = {NULL, 0, 0};
	build_table(f->path, &d, NULL);
	tv_table *t;
	assert_int_equal(open_table(f, NULL, &t), 0);
	assert_int_equal(tv_table_entries(t), 0);
	tv_iter *it = tv_table_iter(t, true);
	tv_iter_seek_first(it);
	assert_false(tv_iter_valid(it));
	tv_iter_seek_last(it);
	assert_false(tv_iter_valid(it));
	assert_int_equal(tv_iter_status(it), 0);
	tv_iter_destroy(it);
	char k[9] = "k";
	tv_put_fixed64(k + 1, tv_pack_trailer(5, TV_SEEK_TYPE));
	got *g = new_got();
	assert_int_equal(tv_table_get(t, tv_slice_make(k, 9), record, g), 0);
	assert_int_equal(g->calls, 0);
	free_got(g);
	assert_int_equal(tv_table_verify(t, NULL, NULL), 0);
	tv_table_close(t);

	/* 64 KiB keys and 1 MiB values: blocks of one entry, some larger
	 * than the whole cache. */
	d = make_dataset(40, 11);
	for (size_t i = 0; i < d.n; i += 3) {
		lengthen_user(&d, i, TROVE_MAX_KEY);
		if (i % 2 == 0 && tv_ikey_type(ekey(&d.e[i])) != TV_TYPE_DEL) {
			d.e[i].val = realloc(d.e[i].val, 1u << 20);
			d.e[i].vlen = 1u << 20;
			memset(d.e[i].val, (int)i, d.e[i].vlen);
		}
	}
	assert_sorted(&d);
	tv_table_opts o = {TROVE_COMPRESS_LZ4, 0, 0, 10};
	build_table(f->path, &d, &o);
	tv_cache *cache = tv_cache_new(1u << 20); /* smaller than some blocks */
	assert_int_equal(open_table(f, cache, &t), 0);
	check_iteration(t, &d);
	check_gets(t, &d);
	assert_int_equal(tv_table_verify(t, NULL, NULL), 0);
	tv_table_close(t);
	tv_cache_free(cache);
	free_dataset(&d);
}

/* A level: tables of consecutive slices of d (some of one entry, some
 * empty) in small blocks, read through one level iterator.  Full scans
 * both ways, seeks at and around every table's ends, and a random walk
 * whose direction changes fall inside blocks and at block and table
 * boundaries. */
static void check_level(fixture *f, tv_cache *cache)
{
	dataset d = make_dataset(3000, 77);
	static const size_t cuts[] = {0, 1, 700, 700, 1400, 2999, 3000, 3000};
	enum { NT = sizeof cuts / sizeof cuts[0] - 1 };
	tv_filemeta fm[NT], *files[NT];
	tv_table_opts o = {TROVE_COMPRESS_NONE, 0, 256, 10};
	for (int i = 0; i < NT; i++) {
		char name[32];
		snprintf(name, sizeof name, "%06d.sst", 10 + i);
		char *path = tu_join(f->dir, name);
		dataset part = {d.e + cuts[i], cuts[i + 1] - cuts[i], 0};
		build_table(path, &part, &o);
		memset(&fm[i], 0, sizeof fm[i]);
		assert_int_equal(tv_table_open(tv_vfs_posix(), path, (uint64_t)(10 + i), cache,
		                               &f->lg, &fm[i].table),
		                 0);
		/* An empty table sorts where it stands: its keys are the last
		 * one before it. */
		size_t lo = part.n ? cuts[i] : cuts[i] - 1, hi = part.n ? cuts[i + 1] - 1 : lo;
		fm[i].smallest = d.e[lo].ikey;
		fm[i].smallest_len = d.e[lo].klen;
		fm[i].largest = d.e[hi].ikey;
		fm[i].largest_len = d.e[hi].klen;
		files[i] = &fm[i];
		free(path);
	}
	tv_iter *it = tv_level_iter(files, NT, true);
	assert_non_null(it);
	size_t n = 0;
	for (tv_iter_seek_first(it); tv_iter_valid(it); tv_iter_next(it), n++) {
		assert_slice_eq(tv_iter_key(it), ekey(&d.e[n]));
		assert_slice_eq(tv_iter_value(it), eval(&d.e[n]));
	}
	assert_int_equal(n, d.n);
	for (tv_iter_seek_last(it); tv_iter_valid(it); tv_iter_prev(it), n--) {
		assert_true(n > 0);
		assert_slice_eq(tv_iter_key(it), ekey(&d.e[n - 1]));
		assert_slice_eq(tv_iter_value(it), eval(&d.e[n - 1]));
	}
	assert_int_equal(n, 0);
	/* Seeks to each table's first and last entries, to just past its
	 * last, and to just before its first; then one step each way. */
	for (int i = 0; i < NT; i++) {
		if (cuts[i] == cuts[i + 1])
			continue;
		size_t at[] = {cuts[i], cuts[i + 1] - 1};
		for (int a = 0; a < 2; a++) {
			tv_slice k = ekey(&d.e[at[a]]);
			uint64_t seq = tv_ikey_seq(k);
			for (int delta = -1; delta <= 1; delta++) {
				size_t klen;
				tv_slice u = tv_ikey_user(k);
				char *t = make_ikey(u.data, u.len, seq + (uint64_t)(int64_t)delta,
				                    TV_TYPE_PUT, &klen);
				size_t want = lower_bound(&d, tv_slice_make(t, klen));
				tv_iter_seek(it, tv_slice_make(t, klen));
				if (want == d.n) {
					assert_false(tv_iter_valid(it));
					free(t);
					continue;
				}
				assert_true(tv_iter_valid(it));
				assert_slice_eq(tv_iter_key(it), ekey(&d.e[want]));
				tv_iter_prev(it);
				if (want == 0) {
					assert_false(tv_iter_valid(it));
				} else {
					assert_true(tv_iter_valid(it));
					assert_slice_eq(tv_iter_key(it), ekey(&d.e[want - 1]));
					tv_iter_next(it);
					assert_slice_eq(tv_iter_key(it), ekey(&d.e[want]));
					tv_iter_next(it);
					if (want + 1 < d.n)
						assert_slice_eq(tv_iter_key(it), ekey(&d.e[want + 1]));
					else
						assert_false(tv_iter_valid(it));
				}
				free(t);
			}
		}
	}
	walk_randomly(it, &d, "level walk");
	tv_iter_destroy(it);
	for (int i = 0; i < NT; i++)
		tv_table_close(fm[i].table);
	free_dataset(&d);
}

static void test_level_iter(void **state)
{
	fixture *f = *state;
	tv_cache *cache = tv_cache_new(1u << 20);
	check_level(f, cache);
	tv_cache_free(cache);
	check_level(f, NULL); /* a block let go is freed at once */
}

static void test_builder_misuse(void **state)
{
	fixture *f = *state;
	trove_vfs *vfs = tv_vfs_posix();
	tv_file *file;
	assert_int_equal(vfs->open(vfs, f->path, TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &file), 0);
	tv_table_builder *b;
	tv_table_opts bad = {7, 0, 0, 10};
	assert_int_equal(tv_table_builder_new(file, &bad, &b), TROVE_EINVAL);
	assert_int_equal(tv_table_builder_new(file, NULL, &b), 0);
	size_t l1, l2;
	char *k1 = make_ikey("b", 1, 5, TV_TYPE_PUT, &l1);
	char *k2 = make_ikey("a", 1, 5, TV_TYPE_PUT, &l2);
	tv_slice v = tv_slice_make("v", 1);
	assert_int_equal(tv_table_add(b, tv_slice_make(k1, l1), v), 0);
	assert_int_equal(tv_table_add(b, tv_slice_make(k1, l1), v), TROVE_EINVAL); /* equal */
	assert_int_equal(tv_table_add(b, tv_slice_make(k2, l2), v), TROVE_EINVAL); /* smaller */
	assert_int_equal(tv_table_add(b, tv_slice_make("short", 5), v), TROVE_EINVAL);
	uint64_t size;
	assert_int_equal(tv_table_finish(b, &size), 0); /* misuse did no harm */
	assert_int_equal(tv_table_add(b, tv_slice_make(k1, l1), v), TROVE_EINVAL);
	tv_table_builder_free(b);
	vfs->close(file);
	tv_table *t;
	assert_int_equal(open_table(f, NULL, &t), 0);
	assert_int_equal(tv_table_entries(t), 1);
	tv_table_close(t);
	free(k1);
	free(k2);
}

/* ---- Damage --------------------------------------------------------------- */

typedef struct reports {
	int n;
	uint64_t off[64];
	char msg[64][128];
} reports;

static void collect(void *arg, uint64_t off, const char *msg)
{
	reports *r = arg;
	if (r->n < 64) {
		r->off[r->n] = off;
		snprintf(r->msg[r->n], sizeof r->msg[0], "%s", msg);
	}
	r->n++;
}

static int has_report_at(const reports *r, uint64_t off)
{
	for (int i = 0; i < r->n && i < 64; i++)
		if (r->off[i] == off)
			return 1;
	return 0;
}

static void build_small(fixture *f, dataset *d, int compression)
{
	*d = make_dataset(3000, 77);
	tv_table_opts o = {compression, 0, 1024, 10};
	build_table(f->path, d, &o);
}

/* Every entry read back, or an error; counts both. */
static int scan_all(tv_table *t)
{
	tv_iter *it = tv_table_iter(t, true);
	int n = 0;
	for (tv_iter_seek_first(it); tv_iter_valid(it); tv_iter_next(it))
		n++;
	int rc = tv_iter_status(it);
	tv_iter_destroy(it);
	return rc ? rc : n;
}

static void test_corrupt_data_block(void **state)
{
	fixture *f = *state;
	dataset d;
	for (int c = 0; c < 3; c++) {
		build_small(f, &d, c);
		layout l;
		read_layout(f->path, &l);
		assert_true(l.nblocks > 10);
		size_t b = l.nblocks / 2;
		flip_byte(f->path, l.block_off[b] + l.block_size[b] / 2);
		tv_cache *cache = tv_cache_new(1u << 20);
		tv_table *t;
		assert_int_equal(open_table(f, cache, &t), 0); /* data is read lazily */
		assert_int_equal(scan_all(t), TROVE_ECORRUPT);
		char want[64];
		snprintf(want, sizeof want, "at offset %llu", (unsigned long long)l.block_off[b]);
		assert_non_null(strstr(f->lastmsg, want));
		assert_non_null(strstr(f->lastmsg, f->path));
		/* A lookup of a key in that block fails; one elsewhere works. */
		got *g = new_got();
		int found_bad = 0;
		for (size_t i = 0; i < d.n; i++) {
			int rc = tv_table_get(t, ekey(&d.e[i]), record, g);
			assert_true(rc == 7 || rc == TROVE_ECORRUPT);
			found_bad += rc == TROVE_ECORRUPT;
			if (rc == 7)
				assert_slice_eq(g->v, eval(&d.e[i]));
		}
		free_got(g);
		assert_true(found_bad > 0 && (size_t)found_bad < d.n / 4);
		reports r = {0};
		assert_int_equal(tv_table_verify(t, collect, &r), TROVE_ECORRUPT);
		assert_true(r.n >= 1);
		assert_true(has_report_at(&r, l.block_off[b]));
		tv_table_close(t);
		tv_cache_free(cache);
		free_dataset(&d);
	}
}

static void test_corrupt_meta(void **state)
{
	fixture *f = *state;
	dataset d;
	build_small(f, &d, TROVE_COMPRESS_NONE);
	size_t n;
	char *good = read_file(f->path, &n);
	layout l;
	read_layout(f->path, &l);
	struct {
		uint64_t off;
		uint64_t logged; /* the offset the message must name */
	} cases[] = {
	        {l.index_off + l.index_size / 2, l.index_off},
	        {l.index_off + l.index_size + 2, l.index_off}, /* its checksum */
	        {l.filter_off + 3, l.filter_off},
	        {l.props_off + 1, l.props_off},
	        {n - FOOTER_SIZE + 1, n - FOOTER_SIZE},  /* a handle */
	        {n - FOOTER_SIZE + 50, n - FOOTER_SIZE}, /* padding */
	        {n - FOOTER_SIZE + 61, n - FOOTER_SIZE}, /* footer checksum */
	        {n - 3, n - 8},                          /* magic */
	        {2, 0},                                  /* header magic */
	        {13, 0},                                 /* header checksum */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		write_file(f->path, good, n);
		flip_byte(f->path, cases[i].off);
		tv_table *t = NULL;
		f->lastmsg[0] = 0;
		assert_int_equal(open_table(f, NULL, &t), TROVE_ECORRUPT);
		char want[64];
		snprintf(want, sizeof want, "at offset %llu", (unsigned long long)cases[i].logged);
		if (!strstr(f->lastmsg, want))
			fail_msg("flip at %llu: message '%s' lacks '%s'",
			         (unsigned long long)cases[i].off, f->lastmsg, want);
	}
	/* A version byte flipped in one place only: the two disagree. */
	write_file(f->path, good, n);
	flip_byte(f->path, n - 12);
	tv_table *t;
	assert_int_equal(open_table(f, NULL, &t), TROVE_ECORRUPT);
	/* A consistent future version is refused as such. */
	write_file(f->path, good, n);
	char hdr[16];
	memcpy(hdr, good, 16);
	tv_put_fixed32(hdr + 8, TV_TABLE_VERSION + 1);
	tv_put_fixed32(hdr + 12, tv_checksum(hdr, 12));
	patch_file(f->path, 0, hdr, 16);
	patch_file(f->path, n - 12, hdr + 8, 4);
	assert_int_equal(open_table(f, NULL, &t), TROVE_EVERSION);
	/* Truncated anywhere. */
	uint64_t cuts[] = {n - 1, n - FOOTER_SIZE, n / 2, 17, 16, 3, 0};
	for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
		write_file(f->path, good, (size_t)cuts[i]);
		assert_int_equal(open_table(f, NULL, &t), TROVE_ECORRUPT);
	}
	/* Missing file: the VFS's error, not corruption. */
	unlink(f->path);
	assert_int_equal(open_table(f, NULL, &t), TROVE_ENOENT);
	free(good);
	free_dataset(&d);
}

/* Flips random bytes anywhere: open or verify must notice every time, and
 * nothing may crash on the way. */
static void test_corrupt_anywhere(void **state)
{
	fixture *f = *state;
	dataset d;
	build_small(f, &d, TROVE_COMPRESS_LZ4);
	size_t n;
	char *good = read_file(f->path, &n);
	tu_rng r;
	tu_rng_seed(&r, tu_seed("table corrupt anywhere"));
	for (int round = 0; round < 300; round++) {
		write_file(f->path, good, n);
		uint64_t off = tu_below(&r, n);
		flip_byte(f->path, off);
		tv_table *t;
		int rc = open_table(f, NULL, &t);
		if (rc) {
			assert_int_equal(rc, TROVE_ECORRUPT);
			continue;
		}
		int scanned = scan_all(t);
		assert_true(scanned == (int)d.n || scanned == TROVE_ECORRUPT);
		got *g = new_got();
		for (size_t i = 0; i < d.n; i += 50) {
			rc = tv_table_get(t, ekey(&d.e[i]), record, g);
			assert_true(rc == 7 || rc == TROVE_ECORRUPT);
		}
		free_got(g);
		reports rep = {0};
		if (tv_table_verify(t, collect, &rep) != TROVE_ECORRUPT)
			fail_msg("flip at %llu went unnoticed", (unsigned long long)off);
		assert_true(rep.n > 0);
		tv_table_close(t);
	}
	free(good);
	free_dataset(&d);
}

/* ---- Threads and speed --------------------------------------------------- */

typedef struct reader {
	tv_table *t;
	const dataset *d;
	uint64_t seed;
	int errors;
} reader;

static void *read_many(void *arg)
{
	reader *rd = arg;
	tu_rng r;
	tu_rng_seed(&r, rd->seed);
	got *g = new_got();
	for (int i = 0; i < 20000; i++) {
		const entry *e = &rd->d->e[tu_below(&r, rd->d->n)];
		if (tv_table_get(rd->t, ekey(e), record, g) != 7 || !tv_slice_eq(g->v, eval(e)))
			rd->errors++;
	}
	free_got(g);
	return NULL;
}

static void test_concurrent_gets(void **state)
{
	fixture *f = *state;
	dataset d = make_dataset(20000, 21);
	tv_table_opts o = {TROVE_COMPRESS_LZ4, 0, 4096, 10};
	build_table(f->path, &d, &o);
	tv_cache *cache = tv_cache_new(256u << 10); /* small: constant eviction */
	/* Two readers of the same file share its cached blocks, each keeping
	 * slots for them; the one closed first leaves none behind. */
	tv_table *t, *t2;
	assert_int_equal(open_table(f, cache, &t), 0);
	assert_int_equal(open_table(f, cache, &t2), 0);
	pthread_t th[4];
	reader rd[4];
	for (int i = 0; i < 4; i++) {
		rd[i] = (reader){i % 2 ? t2 : t, &d, (uint64_t)i + 1, 0};
		assert_int_equal(pthread_create(&th[i], NULL, read_many, &rd[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(rd[i].errors, 0);
	}
	tv_table_close(t2);
	rd[0] = (reader){t, &d, 9, 0};
	read_many(&rd[0]);
	assert_int_equal(rd[0].errors, 0);
	tv_table_close(t);
	tv_cache_free(cache);
	free_dataset(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_block_roundtrip),
	        cmocka_unit_test(test_block_seek_random),
	        cmocka_unit_test(test_block_restart_boundaries),
	        cmocka_unit_test(test_block_moved_restarts),
	        cmocka_unit_test(test_block_key_shapes),
	        cmocka_unit_test(test_block_lying_headers),
	        cmocka_unit_test(test_block_empty),
	        cmocka_unit_test(test_block_hostile),
	        cmocka_unit_test(test_bloom),
	        cmocka_unit_test_setup_teardown(test_table_none, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_table_lz4, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_table_zstd, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_compression_saves, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_add_hashed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_table_empty_and_big, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_index_fences, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_level_iter, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_builder_misuse, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_corrupt_data_block, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_corrupt_meta, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_corrupt_anywhere, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_concurrent_gets, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
