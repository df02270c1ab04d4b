/*
 * test_iter.c - the empty iterator and the merging iterator.
 *
 * Children are small array-backed iterators over sorted internal keys; the
 * merge of them is checked against one sorted reference array forwards,
 * backwards, across direction changes and seeks, with empty children and
 * with children that fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ikey.h"
#include "engine/iter.h"
#include "testutil.h"
#include "trove.h"

/* ---- An array-backed child -------------------------------------------------- */

typedef struct kv {
	char key[24]; /* internal key */
	size_t klen;
	char val[16];
	size_t vlen;
} kv;

typedef struct arr_iter {
	tv_iter base;
	const kv *items; /* sorted, borrowed */
	size_t n;
	long pos;      /* -1 when invalid */
	long fail_at;  /* reaching this index fails with TROVE_EIO; -1: never */
	int fail_seek; /* the next seek fails with TROVE_ECORRUPT */
	int status;
	int *destroyed; /* counts destructions */
} arr_iter;

static void arr_set(arr_iter *a, long pos)
{
	if (a->status || pos < 0 || pos >= (long)a->n) {
		a->pos = -1;
	} else if (pos == a->fail_at) {
		a->pos = -1;
		a->status = TROVE_EIO;
	} else {
		a->pos = pos;
	}
	if (a->pos < 0)
		tv_iter_unpublish(&a->base);
	else
		tv_iter_publish(&a->base, tv_slice_make(a->items[a->pos].key, a->items[a->pos].klen),
		                tv_slice_make(a->items[a->pos].val, a->items[a->pos].vlen));
}

static int arr_cmp_at(const arr_iter *a, size_t i, tv_slice t)
{
	return tv_ikey_cmp(tv_slice_make(a->items[i].key, a->items[i].klen), t);
}

static void arr_seek_first(tv_iter *it)
{
	arr_set((arr_iter *)it, 0);
}
static void arr_seek_last(tv_iter *it)
{
	arr_iter *a = (arr_iter *)it;
	arr_set(a, (long)a->n - 1);
}
static void arr_seek(tv_iter *it, tv_slice t)
{
	arr_iter *a = (arr_iter *)it;
	if (a->fail_seek) {
		a->status = TROVE_ECORRUPT;
		arr_set(a, -1);
		return;
	}
	size_t i = 0;
	while (i < a->n && arr_cmp_at(a, i, t) < 0)
		i++;
	arr_set(a, (long)i);
}
static void arr_next(tv_iter *it)
{
	arr_iter *a = (arr_iter *)it;
	assert_true(a->pos >= 0);
	arr_set(a, a->pos + 1);
}
static void arr_prev(tv_iter *it)
{
	arr_iter *a = (arr_iter *)it;
	assert_true(a->pos >= 0);
	arr_set(a, a->pos - 1);
}
static int arr_status(tv_iter *it)
{
	return ((arr_iter *)it)->status;
}
static void arr_destroy(tv_iter *it)
{
	arr_iter *a = (arr_iter *)it;
	if (a->destroyed)
		(*a->destroyed)++;
	free(a);
}

static const tv_iter_ops arr_ops = {
        .seek_first = arr_seek_first,
        .seek_last = arr_seek_last,
        .seek = arr_seek,
        .next = arr_next,
        .prev = arr_prev,
        .status = arr_status,
        .destroy = arr_destroy,
};

static tv_iter *arr_new(const kv *items, size_t n, int *destroyed)
{
	arr_iter *a = calloc(1, sizeof *a);
	assert_non_null(a);
	a->base.ops = &arr_ops;
	a->items = items;
	a->n = n;
	a->pos = -1;
	a->fail_at = -1;
	a->destroyed = destroyed;
	return &a->base;
}

/* ---- Test data -------------------------------------------------------------- */

static int kv_cmp(const void *x, const void *y)
{
	const kv *a = x, *b = y;
	return tv_ikey_cmp(tv_slice_make(a->key, a->klen), tv_slice_make(b->key, b->klen));
}

/* A user key of 0-6 bytes from a tiny alphabet: many shared keys. */
static size_t rand_user_key(tu_rng *rng, char *buf)
{
	size_t len = tu_below(rng, 7);
	for (size_t i = 0; i < len; i++)
		buf[i] = "ab\0z"[tu_below(rng, 4)];
	return len;
}

/* n entries with unique sequence numbers, sorted into all[]; child c gets
 * the entries with owner c, sorted, in kids[c] (counts in cnt[c]). */
typedef struct dataset {
	kv *all;
	size_t n;
	kv **kids;
	size_t *cnt;
	int nkids;
} dataset;

static dataset make_dataset(tu_rng *rng, size_t n, int nkids)
{
	dataset d = {calloc(n ? n : 1, sizeof(kv)), n, calloc((size_t)nkids, sizeof(kv *)),
	             calloc((size_t)nkids, sizeof(size_t)), nkids};
	assert_non_null(d.all);
	int *owner = malloc((n ? n : 1) * sizeof(int));
	assert_non_null(owner);
	for (size_t i = 0; i < n; i++) {
		kv *e = &d.all[i];
		size_t ulen = rand_user_key(rng, e->key);
		tv_put_fixed64(e->key + ulen, tv_pack_trailer(i + 1, (unsigned)tu_below(rng, 3)));
		e->klen = ulen + TV_TRAILER;
		e->vlen = (size_t)snprintf(e->val, sizeof e->val, "v%zu", i);
		/* Child 0 stays empty; the others get skewed shares. */
		uint64_t k = (uint64_t)nkids - 1, a = tu_below(rng, k), b = tu_below(rng, k);
		owner[i] = nkids == 1 ? 0 : 1 + (int)(a < b ? a : b);
	}
	for (int c = 0; c < nkids; c++) {
		d.kids[c] = calloc(n ? n : 1, sizeof(kv));
		assert_non_null(d.kids[c]);
	}
	for (size_t i = 0; i < n; i++) {
		int c = owner[i];
		d.kids[c][d.cnt[c]++] = d.all[i];
	}
	for (int c = 0; c < nkids; c++)
		qsort(d.kids[c], d.cnt[c], sizeof(kv), kv_cmp);
	qsort(d.all, n, sizeof(kv), kv_cmp);
	free(owner);
	return d;
}

static void free_dataset(dataset *d)
{
	for (int c = 0; c < d->nkids; c++)
		free(d->kids[c]);
	free(d->kids);
	free(d->cnt);
	free(d->all);
}

static tv_iter *merge_of(dataset *d, int *destroyed)
{
	tv_iter **kids = malloc((size_t)d->nkids * sizeof *kids);
	assert_non_null(kids);
	for (int c = 0; c < d->nkids; c++)
		kids[c] = arr_new(d->kids[c], d->cnt[c], destroyed);
	tv_iter *m = tv_iter_merge(kids, d->nkids);
	free(kids);
	assert_non_null(m);
	return m;
}

static void assert_at(tv_iter *it, const kv *e)
{
	assert_true(tv_iter_valid(it));
	tv_slice k = tv_iter_key(it), v = tv_iter_value(it);
	assert_int_equal(k.len, e->klen);
	assert_memory_equal(k.data, e->key, k.len);
	assert_int_equal(v.len, e->vlen);
	assert_memory_equal(v.data, e->val, v.len);
}

static size_t lower_bound(const dataset *d, tv_slice t)
{
	size_t i = 0;
	while (i < d->n && tv_ikey_cmp(tv_slice_make(d->all[i].key, d->all[i].klen), t) < 0)
		i++;
	return i;
}

/* ---- Tests ------------------------------------------------------------------ */

static void test_empty_iter(void **state)
{
	tv_iter *e = tv_iter_empty(0);
	assert_non_null(e);
	tv_iter_seek_first(e);
	assert_false(tv_iter_valid(e));
	tv_iter_seek_last(e);
	assert_false(tv_iter_valid(e));
	tv_iter_seek(e, tv_slice_make("k\0\0\0\0\0\0\0\0", 9));
	assert_false(tv_iter_valid(e));
	assert_int_equal(tv_iter_status(e), 0);
	tv_iter_destroy(e);

	e = tv_iter_empty(TROVE_ECORRUPT);
	assert_int_equal(tv_iter_status(e), TROVE_ECORRUPT);
	tv_iter_destroy(e);
	e = tv_iter_empty(-1000); /* not a shared one */
	assert_non_null(e);
	assert_int_equal(tv_iter_status(e), -1000);
	tv_iter_seek_first(e);
	assert_false(tv_iter_valid(e));
	tv_iter_destroy(e);
	tv_iter_destroy(NULL);

	assert_int_equal(tv_iter_status(tv_iter_merge(NULL, 0)), 0);
}

/* Full scans both ways for several numbers of children. */
static void test_scan_both_ways(void **state)
{
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("iter scan"));
	static const int kid_counts[] = {1, 2, 3, 4, 5, 8, 20, 33};
	for (size_t t = 0; t < sizeof kid_counts / sizeof kid_counts[0]; t++) {
		dataset d = make_dataset(&rng, 1500, kid_counts[t]);
		int destroyed = 0;
		tv_iter *m = merge_of(&d, &destroyed);
		tv_iter_seek_first(m);
		for (size_t i = 0; i < d.n; i++) {
			assert_at(m, &d.all[i]);
			tv_iter_next(m);
		}
		assert_false(tv_iter_valid(m));
		tv_iter_seek_last(m);
		for (size_t i = d.n; i-- > 0;) {
			assert_at(m, &d.all[i]);
			tv_iter_prev(m);
		}
		assert_false(tv_iter_valid(m));
		assert_int_equal(tv_iter_status(m), 0);
		tv_iter_destroy(m);
		assert_int_equal(destroyed, kid_counts[t]);
		free_dataset(&d);
	}
}

/* A random walk of next/prev over m, the merge of d, with frequent
 * direction changes and seeks, checked against d.all at every move. */
static void random_walk(tv_iter *m, const dataset *d, tu_rng *rng, int steps)
{
	long pos = -1; /* reference position, -1 = invalid */
	for (int step = 0; step < steps; step++) {
		uint64_t op = tu_below(rng, 20);
		if (pos < 0 || op == 0) {
			char t8[16];
			size_t ulen = rand_user_key(rng, t8);
			uint64_t seq = tu_below(rng, d->n + 2);
			tv_put_fixed64(t8 + ulen, tv_pack_trailer(seq, TV_SEEK_TYPE));
			tv_slice target = tv_slice_make(t8, ulen + TV_TRAILER);
			tv_iter_seek(m, target);
			size_t lb = lower_bound(d, target);
			pos = lb < d->n ? (long)lb : -1;
		} else if (op == 1) {
			tv_iter_seek_first(m);
			pos = d->n ? 0 : -1;
		} else if (op == 2) {
			tv_iter_seek_last(m);
			pos = (long)d->n - 1;
		} else if (op < 11) {
			tv_iter_next(m);
			pos = pos + 1 < (long)d->n ? pos + 1 : -1;
		} else {
			tv_iter_prev(m);
			pos = pos - 1;
		}
		if (pos < 0)
			assert_false(tv_iter_valid(m));
		else
			assert_at(m, &d->all[pos]);
	}
}

static void test_random_walk(void **state)
{
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("iter walk"));
	static const int kid_counts[] = {2, 3, 6, 20};
	for (size_t t = 0; t < sizeof kid_counts / sizeof kid_counts[0]; t++) {
		dataset d = make_dataset(&rng, 800, kid_counts[t]);
		tv_iter *m = merge_of(&d, NULL);
		random_walk(m, &d, &rng, 30000);
		tv_iter_destroy(m);
		free_dataset(&d);
	}
}

/* Children that each hold runs of neighbouring entries, the shape a scan
 * over a memtable and tables meets: the merge keeps a child on top while
 * its next key stays below the runner-up's, and must give the top up at
 * the right entry in both directions and across direction changes.  User
 * keys of up to 16 bytes exercise the word-at-a-time comparison. */
static void test_runs(void **state)
{
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("iter runs"));
	static const int kid_counts[] = {2, 3, 5, 9};
	for (size_t t = 0; t < sizeof kid_counts / sizeof kid_counts[0]; t++) {
		int nk = kid_counts[t];
		size_t n = 1500;
		dataset d = {calloc(n, sizeof(kv)), n, calloc((size_t)nk, sizeof(kv *)),
		             calloc((size_t)nk, sizeof(size_t)), nk};
		assert_non_null(d.all);
		for (size_t i = 0; i < n; i++) {
			kv *e = &d.all[i];
			size_t ulen = tu_below(&rng, 17);
			for (size_t j = 0; j < ulen; j++)
				e->key[j] = "a\x80\0z"[tu_below(&rng, j < 9 ? 1 : 4)];
			tv_put_fixed64(e->key + ulen, tv_pack_trailer(i + 1, TV_TYPE_PUT));
			e->klen = ulen + TV_TRAILER;
			e->vlen = (size_t)snprintf(e->val, sizeof e->val, "v%zu", i);
		}
		qsort(d.all, n, sizeof(kv), kv_cmp);
		for (int c = 0; c < nk; c++) {
			d.kids[c] = calloc(n, sizeof(kv));
			assert_non_null(d.kids[c]);
		}
		for (size_t i = 0; i < n;) {
			int c = (int)tu_below(&rng, (uint64_t)nk);
			for (size_t run = 1 + tu_below(&rng, 40); run && i < n; run--, i++)
				d.kids[c][d.cnt[c]++] = d.all[i];
		}
		tv_iter *m = merge_of(&d, NULL);
		random_walk(m, &d, &rng, 20000);
		tv_iter_destroy(m);
		free_dataset(&d);
	}
}

/* tv_ukey_cmp orders as tv_slice_cmp: bytes unsigned, a prefix first. */
static void test_ukey_cmp(void **state)
{
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("ukey cmp"));
	for (int i = 0; i < 100000; i++) {
		char a[24], b[24];
		size_t al = tu_below(&rng, 25), bl = tu_below(&rng, 25);
		for (size_t j = 0; j < al; j++)
			a[j] = "\x00\x01\x7f\x80\xff"[tu_below(&rng, j < 12 ? 2 : 5)];
		for (size_t j = 0; j < bl; j++)
			b[j] = j < al && tu_below(&rng, 4) ? a[j] : "\x00\x01\x7f\x80\xff"[tu_below(&rng, 5)];
		tv_slice x = tv_slice_make(a, al), y = tv_slice_make(b, bl);
		int want = tv_slice_cmp(x, y), got = tv_ukey_cmp(x, y);
		assert_int_equal(want < 0 ? -1 : want > 0, got < 0 ? -1 : got > 0);
		assert_int_equal(tv_ukey_cmp(x, x), 0);
	}
}

/* Seeks to keys present and absent, then a step each way. */
static void test_seek(void **state)
{
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("iter seek"));
	dataset d = make_dataset(&rng, 1000, 7);
	tv_iter *m = merge_of(&d, NULL);
	for (int i = 0; i < 3000; i++) {
		char t8[16];
		tv_slice target;
		if (i % 2) {
			const kv *e = &d.all[tu_below(&rng, d.n)];
			target = tv_slice_make(e->key, e->klen);
		} else {
			size_t ulen = rand_user_key(&rng, t8);
			tv_put_fixed64(t8 + ulen,
			               tv_pack_trailer(tu_below(&rng, d.n + 2), TV_SEEK_TYPE));
			target = tv_slice_make(t8, ulen + TV_TRAILER);
		}
		size_t lb = lower_bound(&d, target);
		tv_iter_seek(m, target);
		if (lb == d.n) {
			assert_false(tv_iter_valid(m));
			continue;
		}
		assert_at(m, &d.all[lb]);
		tv_iter_prev(m);
		if (lb == 0) {
			assert_false(tv_iter_valid(m));
			continue;
		}
		assert_at(m, &d.all[lb - 1]);
		tv_iter_next(m);
		assert_at(m, &d.all[lb]);
		if (lb + 1 < d.n) {
			tv_iter_next(m);
			assert_at(m, &d.all[lb + 1]);
		}
	}
	tv_iter_destroy(m);
	free_dataset(&d);
}

/* Children that are all empty, or the merge of merges. */
static void test_empty_children_and_nesting(void **state)
{
	tv_iter *kids[3] = {arr_new(NULL, 0, NULL), tv_iter_empty(0), arr_new(NULL, 0, NULL)};
	tv_iter *m = tv_iter_merge(kids, 3);
	assert_non_null(m);
	tv_iter_seek_first(m);
	assert_false(tv_iter_valid(m));
	tv_iter_seek_last(m);
	assert_false(tv_iter_valid(m));
	assert_int_equal(tv_iter_status(m), 0);
	tv_iter_destroy(m);

	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("iter nesting"));
	dataset d = make_dataset(&rng, 600, 6);
	tv_iter *inner[2];
	tv_iter *a[3], *b[3];
	for (int c = 0; c < 3; c++) {
		a[c] = arr_new(d.kids[c], d.cnt[c], NULL);
		b[c] = arr_new(d.kids[c + 3], d.cnt[c + 3], NULL);
	}
	inner[0] = tv_iter_merge(a, 3);
	inner[1] = tv_iter_merge(b, 3);
	m = tv_iter_merge(inner, 2);
	assert_non_null(m);
	tv_iter_seek_last(m);
	for (size_t i = d.n; i-- > d.n / 2;) {
		assert_at(m, &d.all[i]);
		tv_iter_prev(m);
	}
	for (size_t i = d.n / 2; i < d.n; i++) {
		tv_iter_next(m);
		assert_at(m, &d.all[i]);
	}
	tv_iter_destroy(m);
	free_dataset(&d);
}

/* A child that fails part-way makes the merge invalid there, and status
 * reports its error; so does a child that is an error from the start. */
static void test_child_error(void **state)
{
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("iter error"));
	dataset d = make_dataset(&rng, 400, 4);
	assert_true(d.cnt[2] > 10);
	tv_iter *kids[4];
	for (int c = 0; c < 4; c++)
		kids[c] = arr_new(d.kids[c], d.cnt[c], NULL);
	((arr_iter *)kids[2])->fail_at = 5;
	tv_iter *m = tv_iter_merge(kids, 4);
	assert_non_null(m);
	size_t seen = 0;
	for (tv_iter_seek_first(m); tv_iter_valid(m); tv_iter_next(m))
		assert_at(m, &d.all[seen++]);
	assert_int_equal(tv_iter_status(m), TROVE_EIO);
	/* It stopped right after the failing child's fifth entry, when that
	 * child failed to move on: nothing after it was passed off as data. */
	const kv *fifth = &d.kids[2][4];
	assert_int_equal(seen, lower_bound(&d, tv_slice_make(fifth->key, fifth->klen)) + 1);
	assert_true(seen < d.n);
	tv_iter_destroy(m);

	/* Failing when the direction changes: every child but the current
	 * one is repositioned, and child 3 (not current) fails its seek. */
	for (int c = 0; c < 4; c++)
		kids[c] = arr_new(d.kids[c], d.cnt[c], NULL);
	m = tv_iter_merge(kids, 4);
	tv_iter_seek_last(m);
	tv_iter_prev(m);
	assert_true(tv_iter_valid(m));
	int cur = -1;
	for (int c = 0; c < 4; c++) {
		if (tv_iter_valid(kids[c]) && tv_slice_eq(tv_iter_key(kids[c]), tv_iter_key(m)))
			cur = c;
	}
	assert_true(cur >= 0);
	int other = cur == 3 ? 2 : 3;
	((arr_iter *)kids[other])->fail_seek = 1;
	tv_iter_next(m);
	assert_false(tv_iter_valid(m));
	assert_int_equal(tv_iter_status(m), TROVE_ECORRUPT);
	tv_iter_destroy(m);

	kids[0] = arr_new(d.kids[1], d.cnt[1], NULL);
	kids[1] = tv_iter_empty(TROVE_ECORRUPT);
	m = tv_iter_merge(kids, 2);
	tv_iter_seek_first(m);
	assert_false(tv_iter_valid(m));
	assert_int_equal(tv_iter_status(m), TROVE_ECORRUPT);
	tv_iter_destroy(m);
	free_dataset(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_empty_iter),
	        cmocka_unit_test(test_scan_both_ways),
	        cmocka_unit_test(test_random_walk),
	        cmocka_unit_test(test_runs),
	        cmocka_unit_test(test_ukey_cmp),
	        cmocka_unit_test(test_seek),
	        cmocka_unit_test(test_empty_children_and_nesting),
	        cmocka_unit_test(test_child_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
