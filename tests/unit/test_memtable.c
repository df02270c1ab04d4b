/*
 * test_memtable.c - the skip-list memtable against a sorted reference.
 *
 * Random entries go into a memtable and into an array sorted by
 * tv_ikey_cmp; lookups at several sequence numbers, iteration in both
 * directions and seeks must agree with the array.  A threaded test runs
 * one writer against concurrent readers that check every snapshot they see
 * is sorted and self-consistent, and another overwrites keys while
 * readers check that each point read finds the entry newest at its
 * sequence number (through the hash index).  The list of unresolved entries must give
 * the running sum of its entries' count changes at any sequence number,
 * resolving each entry once.  Memtables with an index defer ordering
 * (entries wait in an unordered tail until a fold): lookups of older
 * versions must be exact whether folded or not, across the writer's
 * folds, and iterators made while the writer adds must see exactly the
 * entries of the snapshot they were made at.
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

#include "engine/bloom.h"
#include "engine/db.h"
#include "engine/ikey.h"
#include "engine/memtable.h"
#include "testutil.h"
#include "trove.h"

/* One reference entry: an internal key and its value, both malloc'd. */
typedef struct ref {
	char *ikey;
	size_t iklen;
	char *val;
	size_t vlen;
} ref;

static int ref_cmp(const void *a, const void *b)
{
	const ref *x = a, *y = b;
	return tv_ikey_cmp(tv_slice_make(x->ikey, x->iklen), tv_slice_make(y->ikey, y->iklen));
}

static void ref_free(ref *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].ikey);
		free(r[i].val);
	}
	free(r);
}

/* A key from a small alphabet so that keys share prefixes, have zero bytes
 * and repeat (several versions of one key). */
static size_t rand_key(tu_rng *rng, char *buf)
{
	static const char alpha[] = {'a', 'b', 'c', 0, 'z', (char)0xff};
	size_t len = tu_below(rng, 4) == 0 ? tu_below(rng, 3) : 1 + tu_below(rng, 20);
	for (size_t i = 0; i < len; i++)
		buf[i] = alpha[tu_below(rng, sizeof alpha)];
	return len;
}

/* Fills m and a sorted reference with n random entries, seq 1..n, added
 * in sequence order or, if shuffled, in random order (as if replayed out
 * of order: a key's older entry may come after its newer one). */
static ref *fill_random(tv_memtable *m, tu_rng *rng, size_t n, int shuffled)
{
	ref *r = calloc(n, sizeof *r);
	uint64_t *seqs = malloc(n * sizeof *seqs);
	assert_non_null(r);
	assert_non_null(seqs);
	for (size_t i = 0; i < n; i++)
		seqs[i] = i + 1;
	for (size_t i = n - 1; shuffled && i > 0; i--) {
		size_t j = tu_below(rng, i + 1);
		uint64_t t = seqs[i];
		seqs[i] = seqs[j];
		seqs[j] = t;
	}
	for (size_t i = 0; i < n; i++) {
		char key[32];
		size_t klen = rand_key(rng, key);
		uint64_t seq = seqs[i];
		unsigned type = (unsigned)tu_below(rng, 3);
		size_t vlen = type == TV_TYPE_DEL ? 0 : tu_below(rng, 40);
		char *val = malloc(vlen + 1);
		assert_non_null(val);
		for (size_t j = 0; j < vlen; j++)
			val[j] = (char)tu_rand(rng);
		assert_int_equal(tv_mem_add(m, seq, type, tv_slice_make(key, klen),
		                            tv_slice_make(val, vlen)),
		                 0);
		r[i].iklen = klen + TV_TRAILER;
		r[i].ikey = malloc(r[i].iklen);
		assert_non_null(r[i].ikey);
		memcpy(r[i].ikey, key, klen);
		tv_put_fixed64(r[i].ikey + klen, tv_pack_trailer(seq, type));
		r[i].val = val;
		r[i].vlen = vlen;
	}
	free(seqs);
	qsort(r, n, sizeof *r, ref_cmp);
	return r;
}

static void assert_at(tv_iter *it, const ref *r)
{
	assert_true(tv_iter_valid(it));
	tv_slice k = tv_iter_key(it), v = tv_iter_value(it);
	assert_int_equal(k.len, r->iklen);
	assert_memory_equal(k.data, r->ikey, k.len);
	assert_int_equal(v.len, r->vlen);
	if (v.len)
		assert_memory_equal(v.data, r->val, v.len);
}

/* A new iterator over m yields exactly r[0..n), in order. */
static void assert_iterates(tv_memtable *m, const ref *r, size_t n)
{
	tv_iter *it = tv_mem_iter(m);
	assert_non_null(it);
	tv_iter_seek_first(it);
	for (size_t i = 0; i < n; i++, tv_iter_next(it))
		assert_at(it, &r[i]);
	assert_false(tv_iter_valid(it));
	tv_iter_destroy(it);
}

/* Index of the first reference entry >= target, or n. */
static size_t ref_lower_bound(const ref *r, size_t n, tv_slice target)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tv_ikey_cmp(tv_slice_make(r[mid].ikey, r[mid].iklen), target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void test_empty(void **state)
{
	tv_memtable *m = tv_mem_new();
	assert_non_null(m);
	unsigned type;
	tv_slice v;
	uint64_t s;
	assert_int_equal(tv_mem_get(m, tv_slice_make("a", 1), TV_MAX_SEQ, &type, &v, &s), 0);
	assert_int_equal(tv_mem_entries(m), 0);
	tv_iter *it = tv_mem_iter(m);
	assert_non_null(it);
	tv_iter_seek_first(it);
	assert_false(tv_iter_valid(it));
	tv_iter_seek_last(it);
	assert_false(tv_iter_valid(it));
	char t[9] = "a";
	tv_put_fixed64(t + 1, tv_pack_trailer(5, TV_SEEK_TYPE));
	tv_iter_seek(it, tv_slice_make(t, 9));
	assert_false(tv_iter_valid(it));
	assert_int_equal(tv_iter_status(it), 0);
	tv_iter_destroy(it);
	tv_mem_unref(m);
}

/* tv_mem_top_byte follows the largest first key byte added, only up. */
static void test_top_byte(void **state)
{
	tv_memtable *m = tv_mem_new_filtered(1 << 16);
	assert_non_null(m);
	assert_int_equal(tv_mem_top_byte(m), 0);
	assert_int_equal(tv_mem_add(m, 1, TV_TYPE_PUT, tv_slice_make("", 0), tv_slice_make("v", 1)), 0);
	assert_int_equal(tv_mem_add(m, 2, TV_TYPE_PUT, tv_slice_make("\0a", 2), tv_slice_make("v", 1)),
	                 0);
	assert_int_equal(tv_mem_top_byte(m), 0);
	assert_int_equal(tv_mem_add(m, 3, TV_TYPE_DEL, tv_slice_make("\x01k", 2), tv_slice_make("", 0)),
	                 0);
	assert_int_equal(tv_mem_top_byte(m), 1);
	assert_int_equal(tv_mem_add(m, 4, TV_TYPE_PUT, tv_slice_make("\xffz", 2), tv_slice_make("", 0)),
	                 0);
	assert_int_equal(tv_mem_add(m, 5, TV_TYPE_PUT, tv_slice_make("\x02z", 2), tv_slice_make("", 0)),
	                 0);
	assert_int_equal(tv_mem_top_byte(m), 0xff);
	tv_mem_unref(m);
}

static void test_iterate_both_ways(void **state)
{
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("memtable iterate"));
	const size_t n = 5000;
	tv_memtable *m = tv_mem_new();
	assert_non_null(m);
	ref *r = fill_random(m, &rng, n, 0);
	assert_int_equal(tv_mem_entries(m), n);
	assert_true(tv_mem_usage(m) > 0);

	tv_iter *it = tv_mem_iter(m);
	assert_non_null(it);
	/* The iterator's reference keeps the memtable alive. */
	tv_mem_ref(m);
	tv_mem_unref(m);

	tv_iter_seek_first(it);
	for (size_t i = 0; i < n; i++) {
		assert_at(it, &r[i]);
		tv_iter_next(it);
	}
	assert_false(tv_iter_valid(it));

	tv_iter_seek_last(it);
	for (size_t i = n; i-- > 0;) {
		assert_at(it, &r[i]);
		tv_iter_prev(it);
	}
	assert_false(tv_iter_valid(it));

	/* A random walk with direction changes. */
	size_t pos = tu_below(&rng, n);
	tv_iter_seek(it, tv_slice_make(r[pos].ikey, r[pos].iklen));
	for (int step = 0; step < 20000; step++) {
		assert_at(it, &r[pos]);
		if (tu_below(&rng, 2)) {
			if (pos + 1 == n)
				continue;
			tv_iter_next(it);
			pos++;
		} else {
			if (pos == 0)
				continue;
			tv_iter_prev(it);
			pos--;
		}
	}
	tv_iter_destroy(it);
	tv_mem_unref(m);
	ref_free(r, n);
}

static void test_seek(void **state)
{
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("memtable seek"));
	const size_t n = 3000;
	tv_memtable *m = tv_mem_new();
	assert_non_null(m);
	ref *r = fill_random(m, &rng, n, 0);
	tv_iter *it = tv_mem_iter(m);
	assert_non_null(it);
	for (int i = 0; i < 5000; i++) {
		char t[40];
		size_t klen = rand_key(&rng, t);
		uint64_t seq = tu_below(&rng, n + 2);
		unsigned type = tu_below(&rng, 4) ? TV_SEEK_TYPE : (unsigned)tu_below(&rng, 3);
		tv_put_fixed64(t + klen, tv_pack_trailer(seq, type));
		tv_slice target = tv_slice_make(t, klen + TV_TRAILER);
		size_t want = ref_lower_bound(r, n, target);
		tv_iter_seek(it, target);
		if (want == n) {
			assert_false(tv_iter_valid(it));
		} else {
			assert_at(it, &r[want]);
			if (want > 0) {
				tv_iter_prev(it);
				assert_at(it, &r[want - 1]);
			}
		}
	}
	tv_iter_destroy(it);
	tv_mem_unref(m);
	ref_free(r, n);
}

/* The newest entry of key with seq <= s, found in the reference. */
static const ref *ref_get(const ref *r, size_t n, const char *key, size_t klen, uint64_t s)
{
	char t[40];
	memcpy(t, key, klen);
	tv_put_fixed64(t + klen, tv_pack_trailer(s, TV_SEEK_TYPE));
	size_t i = ref_lower_bound(r, n, tv_slice_make(t, klen + TV_TRAILER));
	if (i == n || !tv_slice_eq(tv_ikey_user(tv_slice_make(r[i].ikey, r[i].iklen)),
	                           tv_slice_make(key, klen)))
		return NULL;
	return &r[i];
}

/* Random lookups in m (empty) against the reference, at random sequence
 * numbers: present keys, absent keys, versions too new to see. */
/* Random lookups at random sequence numbers, each checked against the
 * reference r of n entries. */
static void check_gets(tv_memtable *m, tu_rng *rng, const ref *r, size_t n)
{
	for (int i = 0; i < 20000; i++) {
		char key[32];
		size_t klen = rand_key(rng, key);
		uint64_t s = tu_below(rng, 8) == 0 ? UINT64_MAX : tu_below(rng, n + 2);
		const ref *want = ref_get(r, n, key, klen, s > TV_MAX_SEQ ? TV_MAX_SEQ : s);
		unsigned type;
		tv_slice v;
		uint64_t es;
		int got = tv_mem_get(m, tv_slice_make(key, klen), s, &type, &v, &es);
		assert_int_equal(got, want != NULL);
		if (!want)
			continue;
		tv_slice wk = tv_slice_make(want->ikey, want->iklen);
		assert_int_equal(type, tv_ikey_type(wk));
		assert_int_equal(es, tv_ikey_seq(wk));
		assert_true(es <= s);
		assert_int_equal(v.len, want->vlen);
		if (v.len)
			assert_memory_equal(v.data, want->val, v.len);
	}
}

/* Fills m with n random entries and checks lookups; then an iterator,
 * which must see every entry in order (in an indexed memtable it folds
 * the entries still outside the skip list), and lookups again. */
static void get_at_sequences_n(tv_memtable *m, size_t n, int shuffled)
{
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("memtable get"));
	assert_non_null(m);
	ref *r = fill_random(m, &rng, n, shuffled);
	check_gets(m, &rng, r, n);
	assert_iterates(m, r, n);
	check_gets(m, &rng, r, n);
	tv_mem_unref(m);
	ref_free(r, n);
}

static void get_at_sequences(tv_memtable *m, int shuffled)
{
	get_at_sequences_n(m, 4000, shuffled);
}

static void test_get_at_sequences(void **state)
{
	get_at_sequences(tv_mem_new(), 0);
}

/* More entries than an indexed memtable's unordered tail holds (16384):
 * the writer folds the tail into the skip list several times, lookups of
 * older versions must be exact before and after, whether a key's
 * versions are folded or not, and in order or not (replay). */
static void test_get_across_folds(void **state)
{
	get_at_sequences_n(tv_mem_new_filtered(1 << 23), 50000, 0);
	get_at_sequences_n(tv_mem_new_filtered(1 << 23), 50000, 1);
	get_at_sequences_n(tv_mem_new_filtered(1 << 10), 40000, 1);
}

/* A filter and an index sized for the entries: absent keys are mostly
 * answered by the filter, present ones must never be, and the index must
 * lead to each key's entry at every sequence number. */
static void test_get_filtered(void **state)
{
	tv_memtable *m = tv_mem_new_filtered(1 << 20);
	assert_non_null(m);
	/* The filter (1/64) and the index (1/16) are counted. */
	assert_true(tv_mem_usage(m) >= (1 << 20) / 64 + (1 << 20) / 16);
	get_at_sequences(m, 0);
}

/* A filter of one 64-byte line and an index of one slot, saturated by
 * 4000 keys: every key passes the filter, every key shares one chain,
 * and lookups must still be exact. */
static void test_get_filtered_tiny(void **state)
{
	get_at_sequences(tv_mem_new_filtered(1), 0);
}

/* Entries added out of sequence order: a key's older entry added after
 * its newer one must not take the newer one's place in the index. */
static void test_get_index_out_of_order(void **state)
{
	get_at_sequences(tv_mem_new_filtered(1 << 16), 1);
	get_at_sequences(tv_mem_new_filtered(1), 1);
	get_at_sequences(tv_mem_new(), 1);
}

/* Memtables from a pool reuse a dropped one's filter, index and arena
 * blocks: none of its keys may show through, lookups in the new one must
 * be exact, and the pool may be dropped before its last memtable. */
static void test_pooled(void **state)
{
	tv_mem_pool *p = tv_mem_pool_new(1 << 18);
	assert_non_null(p);
	tv_memtable *m = tv_mem_new_pooled(p);
	assert_non_null(m);
	char k[16];
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof k, "old%05d", i);
		assert_int_equal(tv_mem_add(m, (uint64_t)i + 1, TV_TYPE_PUT, tv_slice_make(k, 8),
		                            tv_slice_make("value", 5)),
		                 0);
	}
	size_t full = tv_mem_usage(m);
	tv_mem_unref(m);
	m = tv_mem_new_pooled(p);
	assert_non_null(m);
	assert_true(tv_mem_usage(m) < full);
	for (int i = 0; i < 3000; i++) {
		unsigned type;
		tv_slice v;
		uint64_t es;
		snprintf(k, sizeof k, "old%05d", i);
		assert_int_equal(tv_mem_get(m, tv_slice_make(k, 8), TV_MAX_SEQ, &type, &v, &es), 0);
	}
	get_at_sequences(m, 0);
	m = tv_mem_new_pooled(p);
	assert_non_null(m);
	tv_mem_pool_unref(p);
	get_at_sequences(m, 1);
}

/* Fills m with n entries of 100-byte values from key number `from`. */
static void fill_pooled(tv_memtable *m, int from, int n)
{
	char k[16], v[100];
	memset(v, 'v', sizeof v);
	for (int i = from; i < from + n; i++) {
		snprintf(k, sizeof k, "key%07d", i);
		assert_int_equal(tv_mem_add(m, (uint64_t)i + 1, TV_TYPE_PUT, tv_slice_make(k, 10),
		                            tv_slice_make(v, sizeof v)),
		                 0);
	}
}

/* While writes go on, the pool keeps a flushed memtable's blocks beside
 * a growing one up to two memtables' worth; once no block was taken for
 * TV_MEM_POOL_IDLE_MS, it keeps no more than one memtable's worth with
 * the live one. */
static void test_pool_trim_idle(void **state)
{
	enum { E = 1 << 20 };
	tv_mem_pool *p = tv_mem_pool_new(E);
	assert_non_null(p);
	tv_memtable *a = tv_mem_new_pooled(p), *b = tv_mem_new_pooled(p);
	assert_non_null(a);
	assert_non_null(b);
	fill_pooled(a, 0, 7000);
	assert_true(tv_mem_usage(a) >= E);
	fill_pooled(b, 7000, 2000);
	tv_mem_unref(a);
	size_t kept = tv_mem_pool_usage(p);
	assert_true(kept + tv_mem_usage(b) > E);
	assert_true(kept + tv_mem_usage(b) <= 2 * E);
	tv_mem_pool_trim_idle(p, 5000); /* notes the blocks taken so far */
	tv_mem_pool_trim_idle(p, 5000 + TV_MEM_POOL_IDLE_MS - 1);
	assert_int_equal(tv_mem_pool_usage(p), kept);
	fill_pooled(b, 9000, 500); /* takes blocks: not idle */
	kept = tv_mem_pool_usage(p);
	tv_mem_pool_trim_idle(p, 5000 + TV_MEM_POOL_IDLE_MS);
	assert_int_equal(tv_mem_pool_usage(p), kept);
	tv_mem_pool_trim_idle(p, 5000 + 2 * TV_MEM_POOL_IDLE_MS);
	assert_true(tv_mem_pool_usage(p) < kept);
	assert_true(tv_mem_pool_usage(p) + tv_mem_usage(b) <= E);
	tv_mem_unref(b);
	tv_mem_pool_unref(p);
}

/* tv_mem_add_hashed of an unresolved entry. */
static int add_unresolved(tv_memtable *m, uint64_t seq, unsigned type, tv_slice key, tv_slice value)
{
	return tv_mem_add_hashed(m, seq, type, key, value, tv_bloom_hash(key), 1);
}

/* Versions of one key come newest first, and get picks by sequence. */
static void test_versions(void **state)
{
	tv_memtable *m = tv_mem_new();
	assert_non_null(m);
	tv_slice k = tv_slice_make("key", 3);
	assert_int_equal(tv_mem_add(m, 10, TV_TYPE_PUT, k, tv_slice_make("v10", 3)), 0);
	assert_int_equal(tv_mem_add(m, 20, TV_TYPE_DEL, k, tv_slice_make(NULL, 0)), 0);
	assert_int_equal(tv_mem_add(m, 30, TV_TYPE_PUT_EXP, k, tv_slice_make("EXPIRES!v30", 11)),
	                 0);
	assert_int_equal(
	        tv_mem_add(m, 5, TV_TYPE_PUT, tv_slice_make("kex", 3), tv_slice_make("o", 1)), 0);
	assert_int_equal(
	        tv_mem_add(m, 6, TV_TYPE_PUT, tv_slice_make("ke", 2), tv_slice_make("p", 1)), 0);
	unsigned type;
	tv_slice v;
	uint64_t es;
	assert_int_equal(tv_mem_get(m, k, 9, &type, &v, &es), 0);
	assert_int_equal(tv_mem_get(m, k, 10, &type, &v, &es), 1);
	assert_int_equal(type, TV_TYPE_PUT);
	assert_int_equal(es, 10);
	assert_memory_equal(v.data, "v10", 3);
	assert_int_equal(tv_mem_get(m, k, 29, &type, &v, &es), 1);
	assert_int_equal(type, TV_TYPE_DEL);
	assert_int_equal(es, 20);
	assert_int_equal(v.len, 0);
	assert_int_equal(tv_mem_get(m, k, TV_MAX_SEQ, &type, &v, &es), 1);
	assert_int_equal(type, TV_TYPE_PUT_EXP);
	assert_int_equal(es, 30);
	assert_int_equal(v.len, 11);
	assert_int_equal(tv_mem_get(m, tv_slice_make("k", 1), TV_MAX_SEQ, &type, &v, &es), 0);
	assert_int_equal(tv_mem_get(m, tv_slice_make("keyz", 4), TV_MAX_SEQ, &type, &v, &es), 0);

	static const char *const order[] = {"ke", "kex", "key", "key", "key"};
	static const uint64_t seqs[] = {6, 5, 30, 20, 10};
	tv_iter *it = tv_mem_iter(m);
	assert_non_null(it);
	size_t i = 0;
	for (tv_iter_seek_first(it); tv_iter_valid(it); tv_iter_next(it), i++) {
		tv_slice ik = tv_iter_key(it);
		assert_true(
		        tv_slice_eq(tv_ikey_user(ik), tv_slice_make(order[i], strlen(order[i]))));
		assert_int_equal(tv_ikey_seq(ik), seqs[i]);
	}
	assert_int_equal(i, 5);
	tv_iter_destroy(it);
	tv_mem_unref(m);
}

/* Big keys and values, ascending and descending runs (the insertion
 * shortcut), and keys that share long prefixes. */
static void test_runs_and_big_entries(void **state)
{
	tv_memtable *m = tv_mem_new();
	assert_non_null(m);
	char *big = malloc(1 << 20);
	assert_non_null(big);
	memset(big, 'x', 1 << 20);
	const int n = 2000;
	uint64_t seq = 1;
	for (int i = 0; i < n; i++) { /* ascending */
		char key[64];
		int len = snprintf(key, sizeof key, "prefix-shared-by-all/%08d", 2 * i);
		assert_int_equal(tv_mem_add(m, seq++, TV_TYPE_PUT, tv_slice_make(key, (size_t)len),
		                            tv_slice_make(big, (size_t)i)),
		                 0);
	}
	for (int i = n - 1; i >= 0; i--) { /* descending, interleaved */
		char key[64];
		int len = snprintf(key, sizeof key, "prefix-shared-by-all/%08d", 2 * i + 1);
		assert_int_equal(tv_mem_add(m, seq++, TV_TYPE_PUT, tv_slice_make(key, (size_t)len),
		                            tv_slice_make(big, 1)),
		                 0);
	}
	assert_int_equal(tv_mem_add(m, seq++, TV_TYPE_PUT, tv_slice_make(big, 65535),
	                            tv_slice_make(big, 1 << 20)),
	                 0);
	tv_iter *it = tv_mem_iter(m);
	assert_non_null(it);
	int i = 0;
	for (tv_iter_seek_first(it); i < 2 * n; tv_iter_next(it), i++) {
		char key[64];
		int len = snprintf(key, sizeof key, "prefix-shared-by-all/%08d", i);
		assert_true(tv_iter_valid(it));
		assert_true(tv_slice_eq(tv_ikey_user(tv_iter_key(it)),
		                        tv_slice_make(key, (size_t)len)));
	}
	assert_true(tv_iter_valid(it));
	assert_int_equal(tv_iter_key(it).len, 65535 + TV_TRAILER);
	assert_int_equal(tv_iter_value(it).len, 1 << 20);
	tv_iter_next(it);
	assert_false(tv_iter_valid(it));
	tv_iter_destroy(it);

	unsigned type;
	tv_slice v;
	uint64_t es;
	assert_int_equal(tv_mem_get(m, tv_slice_make(big, 65535), TV_MAX_SEQ, &type, &v, &es), 1);
	assert_int_equal(v.len, 1 << 20);
	assert_int_equal(tv_mem_get(m, tv_slice_make(big, 65534), TV_MAX_SEQ, &type, &v, &es), 0);
	assert_true(tv_mem_usage(m) > (1u << 20));
	tv_mem_unref(m);
	free(big);
}

/* ---- One writer, concurrent readers ------------------------------------ */

#define MT_KEYS 200000

typedef struct mt_state {
	tv_memtable *m;
	atomic_size_t published; /* entries the writer has finished adding */
	atomic_int ready;        /* readers started */
	atomic_int scans;        /* full scans made while the writer ran */
	atomic_int done;
	atomic_int failures;
	uint32_t perm[MT_KEYS]; /* key i is written i-th, as number perm[i] */
} mt_state;

/* Entry i: key "k%08u" of perm[i], seq i+1, value derived from both. */
static size_t mt_key(const mt_state *st, size_t i, char *buf)
{
	return (size_t)snprintf(buf, 16, "k%08u", (unsigned)st->perm[i]);
}

static uint64_t mt_value(uint64_t num, uint64_t seq)
{
	return num * 1000003u ^ seq;
}

static void *mt_writer(void *arg)
{
	mt_state *st = arg;
	while (atomic_load(&st->ready) < 2)
		;
	for (size_t i = 0; i < MT_KEYS; i++) {
		char key[16], val[8];
		size_t klen = mt_key(st, i, key);
		tv_put_fixed64(val, mt_value(st->perm[i], i + 1));
		if (tv_mem_add(st->m, i + 1, TV_TYPE_PUT, tv_slice_make(key, klen),
		               tv_slice_make(val, 8)) != 0)
			atomic_fetch_add(&st->failures, 1);
		atomic_store_explicit(&st->published, i + 1, memory_order_release);
	}
	atomic_store(&st->done, 1);
	return NULL;
}


/* The writer's lookups (tv_mem_get_for_write) leave the search position
 * for the next add: lookups followed by adds of the same key, of another
 * key or of none, in ascending runs and at random, must give what plain
 * lookups give and a correctly ordered list. */
static void test_writer_lookups(void **state)
{
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("memtable writer lookups"));
	tv_memtable *m = tv_mem_new();
	assert_non_null(m);
	enum { N = 3000 };
	ref *r = calloc(N, sizeof *r);
	assert_non_null(r);
	size_t n = 0;
	uint64_t seq = 1;
	for (int i = 0; n < N; i++) {
		char key[32];
		size_t klen = i % 500 < 200
		                      ? (size_t)snprintf(key, sizeof key, "run%06d", i)
		                      : rand_key(&rng, key);
		tv_slice k = tv_slice_make(key, klen), v, v2;
		unsigned type, type2;
		uint64_t es, es2;
		int hit = tv_mem_get(m, k, seq, &type2, &v2, &es2);
		assert_int_equal(tv_mem_get_for_write(m, k, tv_bloom_hash(k), seq, &type, &v, &es),
		                 hit);
		if (hit) {
			assert_int_equal(type, type2);
			assert_int_equal(es, es2);
			assert_true(tv_slice_eq(v, v2));
		}
		unsigned what = (unsigned)tu_below(&rng, 8);
		if (what == 0)
			continue; /* a lookup that adds nothing (a failed condition) */
		if (what == 1)
			klen = rand_key(&rng, key); /* an add of another key */
		char val[8];
		tv_put_fixed64(val, seq);
		assert_int_equal(tv_mem_add(m, seq, TV_TYPE_PUT, tv_slice_make(key, klen),
		                            tv_slice_make(val, 8)),
		                 0);
		r[n].iklen = klen + TV_TRAILER;
		r[n].ikey = malloc(r[n].iklen);
		r[n].val = malloc(8);
		assert_non_null(r[n].ikey);
		assert_non_null(r[n].val);
		memcpy(r[n].ikey, key, klen);
		tv_put_fixed64(r[n].ikey + klen, tv_pack_trailer(seq, TV_TYPE_PUT));
		memcpy(r[n].val, val, 8);
		r[n++].vlen = 8;
		seq++;
	}
	qsort(r, n, sizeof *r, ref_cmp);
	assert_iterates(m, r, n);
	ref_free(r, n);
	tv_mem_unref(m);
}

/* Checks one entry for self-consistency: its value matches its key and
 * sequence number. */
static int mt_entry_ok(tv_slice ik, tv_slice v)
{
	if (ik.len != 9 + TV_TRAILER || v.len != 8)
		return 0;
	unsigned num = (unsigned)strtoul(ik.data + 1, NULL, 10);
	return tv_get_fixed64(v.data) == mt_value(num, tv_ikey_seq(ik));
}

static void *mt_reader(void *arg)
{
	mt_state *st = arg;
	tu_rng rng;
	tu_rng_seed(&rng, (uint64_t)(uintptr_t)&rng);
	int bad = 0;
	atomic_fetch_add(&st->ready, 1);
	while (!atomic_load(&st->done) && !bad) {
		size_t before = atomic_load_explicit(&st->published, memory_order_acquire);
		/* A full scan, alternately forwards and backwards, by an iterator
		 * made now (it folds the tail while the writer adds): strictly
		 * ordered, consistent, and holding exactly the published entries
		 * at or below the snapshot `before`. */
		tv_iter *it = tv_mem_iter(st->m);
		if (!it) {
			bad = 1;
			break;
		}
		size_t count = 0, upto = 0; /* entries, and those at or below `before` */
		int back = (int)tu_below(&rng, 2);
		char prev[32];
		size_t plen = 0;
		if (back)
			tv_iter_seek_last(it);
		else
			tv_iter_seek_first(it);
		for (; tv_iter_valid(it); back ? tv_iter_prev(it) : tv_iter_next(it)) {
			tv_slice ik = tv_iter_key(it);
			if (!mt_entry_ok(ik, tv_iter_value(it))) {
				bad = 1;
				break;
			}
			if (count > 0) {
				int c = tv_ikey_cmp(tv_slice_make(prev, plen), ik);
				if (back ? c <= 0 : c >= 0)
					bad = 1;
			}
			memcpy(prev, ik.data, ik.len);
			plen = ik.len;
			count++;
			upto += tv_ikey_seq(ik) <= before;
		}
		tv_iter_destroy(it);
		if (upto != before)
			bad = 1;
		if (!atomic_load(&st->done))
			atomic_fetch_add(&st->scans, 1);
		/* Point reads of published keys. */
		for (int j = 0; j < 200; j++) {
			size_t pub = atomic_load_explicit(&st->published, memory_order_acquire);
			if (pub == 0)
				break;
			size_t i = tu_below(&rng, pub);
			char key[16];
			size_t klen = mt_key(st, i, key);
			unsigned type;
			tv_slice v;
			uint64_t es;
			if (!tv_mem_get(st->m, tv_slice_make(key, klen), TV_MAX_SEQ, &type, &v,
			                &es) ||
			    es != i + 1 || type != TV_TYPE_PUT || v.len != 8 ||
			    tv_get_fixed64(v.data) != mt_value(st->perm[i], i + 1))
				bad = 1;
		}
	}
	if (bad)
		atomic_fetch_add(&st->failures, 1);
	return NULL;
}

/* Runs one writer and two readers over st until they all end. */
static void run_threads(void *(*writer)(void *), void *(*reader)(void *), void *st)
{
	pthread_t w, r[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&r[i], NULL, reader, st), 0);
	assert_int_equal(pthread_create(&w, NULL, writer, st), 0);
	pthread_join(w, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(r[i], NULL);
}

static void test_concurrent_readers(void **state)
{
	mt_state *st = calloc(1, sizeof *st);
	assert_non_null(st);
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("memtable threads"));
	for (uint32_t i = 0; i < MT_KEYS; i++)
		st->perm[i] = i;
	for (uint32_t i = MT_KEYS - 1; i > 0; i--) { /* shuffle, keep a sorted run */
		if (i > MT_KEYS / 2) {
			uint32_t j = (uint32_t)tu_below(&rng, i + 1), t = st->perm[i];
			st->perm[i] = st->perm[j];
			st->perm[j] = t;
		}
	}
	/* Filtered, so that a reader that found a node but not its key's
	 * filter bits would report a published key missing. */
	st->m = tv_mem_new_filtered(64 * MT_KEYS);
	assert_non_null(st->m);
	atomic_init(&st->published, 0);
	atomic_init(&st->ready, 0);
	atomic_init(&st->scans, 0);
	atomic_init(&st->done, 0);
	atomic_init(&st->failures, 0);
	run_threads(mt_writer, mt_reader, st);
	assert_int_equal(atomic_load(&st->failures), 0);
	assert_true(atomic_load(&st->scans) > 0);
	assert_int_equal(tv_mem_entries(st->m), MT_KEYS);
	tv_mem_unref(st->m);
	free(st);
}

/* ---- Overwrites under concurrent point reads --------------------------- */

#define OV_KEYS 1000
#define OV_ROUNDS 100

/* Each round writes every key once, key ov_perm(p) p-th, at sequence
 * round * OV_KEYS + p + 1: a reader can work out which entry of a key
 * is the newest at any sequence number. */
typedef struct ov_state {
	tv_memtable *m;
	atomic_uint_least64_t published; /* the last sequence number added */
	atomic_int ready, done, failures;
	uint32_t pos[OV_KEYS]; /* the position in each round of key k */
} ov_state;

static uint32_t ov_perm(uint32_t p)
{
	return p * 389 % OV_KEYS; /* 389 is prime to OV_KEYS */
}

static void *ov_writer(void *arg)
{
	ov_state *st = arg;
	while (atomic_load(&st->ready) < 2)
		;
	uint64_t seq = 0;
	for (int r = 0; r < OV_ROUNDS; r++) {
		for (uint32_t p = 0; p < OV_KEYS; p++) {
			char key[16], val[8];
			size_t klen = (size_t)snprintf(key, sizeof key, "o%u", ov_perm(p));
			tv_put_fixed64(val, mt_value(ov_perm(p), ++seq));
			if (tv_mem_add(st->m, seq, TV_TYPE_PUT, tv_slice_make(key, klen),
			               tv_slice_make(val, 8)) != 0)
				atomic_fetch_add(&st->failures, 1);
			atomic_store_explicit(&st->published, seq, memory_order_release);
		}
	}
	atomic_store(&st->done, 1);
	return NULL;
}

/* Reads random keys at the last published sequence number or an older
 * one, and checks that each finds exactly the entry that was newest
 * there: the index leads to a key's newest entry while the writer
 * replaces it, and the walk down to an older sequence number stays in
 * the key's entries. */
static void *ov_reader(void *arg)
{
	ov_state *st = arg;
	tu_rng rng;
	tu_rng_seed(&rng, (uint64_t)(uintptr_t)&rng);
	atomic_fetch_add(&st->ready, 1);
	int bad = 0;
	while (!atomic_load(&st->done) && !bad) {
		uint64_t s = atomic_load_explicit(&st->published, memory_order_acquire);
		if (tu_below(&rng, 2))
			s = tu_below(&rng, s + 1);
		uint32_t k = (uint32_t)tu_below(&rng, OV_KEYS);
		char key[16];
		size_t klen = (size_t)snprintf(key, sizeof key, "o%u", k);
		uint64_t first = st->pos[k] + 1; /* the key's entry in round 0 */
		uint64_t want = s < first ? 0 : first + (s - first) / OV_KEYS * OV_KEYS;
		unsigned type;
		tv_slice v;
		uint64_t es = 0;
		int got = tv_mem_get(st->m, tv_slice_make(key, klen), s, &type, &v, &es);
		if (got != (want != 0) ||
		    (got && (es != want || v.len != 8 || tv_get_fixed64(v.data) != mt_value(k, es))))
			bad = 1;
	}
	if (bad)
		atomic_fetch_add(&st->failures, 1);
	return NULL;
}

static void test_concurrent_overwrites(void **state)
{
	ov_state *st = calloc(1, sizeof *st);
	assert_non_null(st);
	for (uint32_t p = 0; p < OV_KEYS; p++)
		st->pos[ov_perm(p)] = p;
	/* A small index: 32 slots, so every chain holds some 30 keys. */
	st->m = tv_mem_new_filtered(32 * 128);
	assert_non_null(st->m);
	atomic_init(&st->published, 0);
	atomic_init(&st->ready, 0);
	atomic_init(&st->done, 0);
	atomic_init(&st->failures, 0);
	run_threads(ov_writer, ov_reader, st);
	assert_int_equal(atomic_load(&st->failures), 0);
	assert_int_equal(tv_mem_entries(st->m), OV_KEYS * OV_ROUNDS);
	tv_mem_unref(st->m);
	free(st);
}

/* ---- Unresolved entries ------------------------------------------------- */

typedef struct resolver {
	int calls;
	uint64_t last_seq;
} resolver;

/* A resolve function whose answer is a function of the entry: +1 for a
 * value whose key ends in an even digit, else -1, but for key "dup",
 * which the memtable also holds as an older value; it checks that entries
 * come in sequence order and that each is resolved once. */
static int fake_resolve(void *arg, tv_slice key, uint64_t seq, unsigned type, int older,
                        int *delta)
{
	resolver *r = arg;
	assert_true(seq >= r->last_seq);
	r->last_seq = seq;
	r->calls++;
	if (key.len == 3 && memcmp(key.data, "dup", 3) == 0) {
		assert_int_equal(older, TV_TYPE_PUT);
		*delta = (type != TV_TYPE_DEL) - 1;
		return 0;
	}
	assert_int_equal(older, -1);
	*delta = type != TV_TYPE_DEL && (key.data[key.len - 1] - '0') % 2 == 0 ? 1 : -1;
	return 0;
}

/* The unresolved list of m: sums at any sequence number, each entry
 * resolved once, an entry's older version of its own key found. */
static void unresolved_in(tv_memtable *m)
{
	assert_non_null(m);
	resolver r = { 0, 0 };
	int64_t d = 99;
	assert_int_equal(tv_mem_unresolved_delta(m, 100, fake_resolve, &r, &d), 0);
	assert_int_equal(d, 0);
	size_t base = tv_mem_usage(m);
	char k[16];
	int64_t want[1001] = { 0 }; /* want[s]: sum of entries with seq <= s */
	for (int i = 1; i <= 1000; i++) {
		snprintf(k, sizeof k, "k%04d", i);
		unsigned type = i % 3 ? TV_TYPE_PUT : TV_TYPE_DEL;
		/* Every other sequence number carries two entries (one batch). */
		uint64_t seq = (uint64_t)(i + 1) / 2;
		tv_slice key = tv_slice_make(k, strlen(k));
		if (i % 5 == 0) {
			assert_int_equal(tv_mem_add(m, seq, type, key, tv_slice_make("v", 1)), 0);
		} else {
			assert_int_equal(add_unresolved(m, seq, type, key, tv_slice_make("v", 1)), 0);
			want[seq] += type != TV_TYPE_DEL && i % 2 == 0 ? 1 : -1;
		}
	}
	for (int s = 1; s <= 1000; s++)
		want[s] += want[s - 1];
	assert_true(tv_mem_usage(m) > base);
	/* A later call asks for less than an earlier one resolved. */
	assert_int_equal(tv_mem_unresolved_delta(m, 300, fake_resolve, &r, &d), 0);
	assert_int_equal(d, want[300]);
	assert_int_equal(tv_mem_unresolved_delta(m, 120, fake_resolve, &r, &d), 0);
	assert_int_equal(d, want[120]);
	int calls = r.calls;
	assert_int_equal(tv_mem_unresolved_delta(m, 250, fake_resolve, &r, &d), 0);
	assert_int_equal(d, want[250]);
	assert_int_equal(r.calls, calls);
	assert_int_equal(tv_mem_unresolved_delta(m, UINT64_MAX, fake_resolve, &r, &d), 0);
	assert_int_equal(d, want[500]);
	assert_int_equal(r.calls, 800);
	/* An unresolved delete over an older value of the same memtable (as
	 * recovery replays two logs into one) and a newer key after it. */
	assert_int_equal(tv_mem_add(m, 501, TV_TYPE_PUT, tv_slice_make("dup", 3),
	                            tv_slice_make("v", 1)), 0);
	assert_int_equal(add_unresolved(m, 502, TV_TYPE_DEL, tv_slice_make("dup", 3),
	                                       tv_slice_make(NULL, 0)), 0);
	assert_int_equal(tv_mem_add(m, 503, TV_TYPE_PUT, tv_slice_make("dup0", 4),
	                            tv_slice_make("v", 1)), 0);
	assert_int_equal(tv_mem_unresolved_delta(m, UINT64_MAX, fake_resolve, &r, &d), 0);
	assert_int_equal(d, want[500] - 1);
	assert_int_equal(r.calls, 801);
	tv_mem_unref(m);
}

static void test_unresolved(void **state)
{
	(void)state;
	unresolved_in(tv_mem_new());
	/* Indexed: the entries are still in the unordered tail. */
	unresolved_in(tv_mem_new_filtered(1 << 16));
}

/* One writer adds unresolved entries while two threads resolve them: the
 * sums must come out the same as resolving after the fact. */
enum { UR_KEYS = 20000 };

typedef struct ur_state {
	tv_memtable *m;
	atomic_int done;
	atomic_int failures;
} ur_state;

static int ur_resolve(void *arg, tv_slice key, uint64_t seq, unsigned type, int older,
                      int *delta)
{
	(void)arg;
	(void)key;
	(void)older;
	*delta = type == TV_TYPE_DEL ? -1 : (int)(seq % 2);
	return 0;
}

static void *ur_reader(void *arg)
{
	ur_state *st = arg;
	int64_t last = 0;
	uint64_t seq = 0;
	while (!atomic_load(&st->done)) {
		int64_t d;
		seq += 7;
		if (tv_mem_unresolved_delta(st->m, seq, ur_resolve, NULL, &d))
			atomic_fetch_add(&st->failures, 1);
		if (d < last - 1) /* at most one delete (-1) per sequence number */
			atomic_fetch_add(&st->failures, 1);
		last = d;
	}
	return NULL;
}

static void test_unresolved_concurrent(void **state)
{
	(void)state;
	ur_state st;
	st.m = tv_mem_new();
	atomic_init(&st.done, 0);
	atomic_init(&st.failures, 0);
	pthread_t r[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&r[i], NULL, ur_reader, &st), 0);
	char k[16];
	int64_t want = 0;
	for (uint64_t seq = 1; seq <= UR_KEYS; seq++) {
		snprintf(k, sizeof k, "u%06llu", (unsigned long long)seq);
		unsigned type = seq % 5 ? TV_TYPE_PUT : TV_TYPE_DEL;
		assert_int_equal(add_unresolved(st.m, seq, type, tv_slice_make(k, strlen(k)),
		                                       tv_slice_make("v", 1)), 0);
		want += type == TV_TYPE_DEL ? -1 : (int64_t)(seq % 2);
	}
	atomic_store(&st.done, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(r[i], NULL);
	assert_int_equal(atomic_load(&st.failures), 0);
	int64_t d;
	assert_int_equal(tv_mem_unresolved_delta(st.m, UINT64_MAX, ur_resolve, NULL, &d), 0);
	assert_int_equal(d, want);
	tv_mem_unref(st.m);
}

/* tv_unresolved_delta over a memtable and the older one under it (no
 * tables): an entry of the newer one whose key the older one holds is
 * resolved against that key's entry there, as of the entry's sequence. */
static void unresolved_over_older(tv_memtable *imm, tv_memtable *mem)
{
	tv_version v;
	memset(&v, 0, sizeof v);
	tv_super s = { .mem = mem, .imm = imm, .version = &v };
	char k[16];
	int64_t want = 0;
	uint64_t seq = 1;
	/* Older memtable: keys 0..299, a value for even i, a delete for odd;
	 * key i % 3 == 0 gets a value and then a delete. */
	for (int i = 0; i < 300; i++) {
		tv_slice key = tv_slice_make(k, (size_t)snprintf(k, sizeof k, "k%04d", i));
		assert_int_equal(add_unresolved(imm, seq++, i % 2 ? TV_TYPE_DEL : TV_TYPE_PUT,
		                                key, tv_slice_make("v", 1)), 0);
		want += i % 2 ? 0 : 1;
		if (i % 3 == 0) {
			assert_int_equal(add_unresolved(imm, seq++, TV_TYPE_DEL, key,
			                                tv_slice_make(NULL, 0)), 0);
			want -= i % 2 ? 0 : 1;
		}
	}
	int64_t d = 0;
	assert_int_equal(tv_unresolved_delta(&s, seq, &d), 0);
	assert_int_equal(d, want);
	/* Newer memtable: a value for every key 0..399, some twice. */
	for (int i = 0; i < 400; i++) {
		tv_slice key = tv_slice_make(k, (size_t)snprintf(k, sizeof k, "k%04d", i));
		int before = i < 300 && i % 2 == 0 && i % 3 != 0;
		assert_int_equal(add_unresolved(mem, seq++, TV_TYPE_PUT, key,
		                                tv_slice_make("w", 1)), 0);
		want += 1 - before;
		if (i % 7 == 0)
			assert_int_equal(add_unresolved(mem, seq++, TV_TYPE_PUT, key,
			                                tv_slice_make("x", 1)), 0);
	}
	assert_int_equal(tv_unresolved_delta(&s, seq, &d), 0);
	assert_int_equal(d, want);
	tv_mem_unref(imm);
	tv_mem_unref(mem);
}

static void test_unresolved_over_older_memtable(void **state)
{
	(void)state;
	unresolved_over_older(tv_mem_new(), tv_mem_new());
	unresolved_over_older(tv_mem_new_filtered(1 << 16), tv_mem_new_filtered(1 << 16));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_empty),
	        cmocka_unit_test(test_top_byte),
	        cmocka_unit_test(test_iterate_both_ways),
	        cmocka_unit_test(test_seek),
	        cmocka_unit_test(test_get_at_sequences),
	        cmocka_unit_test(test_get_filtered),
	        cmocka_unit_test(test_get_filtered_tiny),
	        cmocka_unit_test(test_get_index_out_of_order),
	        cmocka_unit_test(test_get_across_folds),
	        cmocka_unit_test(test_pooled),
	        cmocka_unit_test(test_pool_trim_idle),
	        cmocka_unit_test(test_versions),
	        cmocka_unit_test(test_runs_and_big_entries),
	        cmocka_unit_test(test_writer_lookups),
	        cmocka_unit_test(test_concurrent_readers),
	        cmocka_unit_test(test_concurrent_overwrites),
	        cmocka_unit_test(test_unresolved),
	        cmocka_unit_test(test_unresolved_concurrent),
	        cmocka_unit_test(test_unresolved_over_older_memtable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
