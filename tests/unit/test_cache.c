/*
 * test_cache.c - the block cache: lookups, eviction order (CLOCK), reference
 * counts, capacity, counters, and concurrent use.
 *
 * Caches below 1 MiB have a single shard (see cache.c), so the tests of
 * exact eviction order use small capacities; the capacity and thread tests
 * use large ones to exercise all 16 shards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cache.h"
#include "testutil.h"

/* A cached value that counts its own deletion. */
typedef struct val {
	atomic_int *deleted;
	uint64_t id;
} val;

static void val_delete(void *p)
{
	val *v = p;
	atomic_fetch_add(v->deleted, 1);
	free(v);
}

static val *mkval(atomic_int *deleted, uint64_t id)
{
	val *v = malloc(sizeof *v);
	assert_non_null(v);
	v->deleted = deleted;
	v->id = id;
	return v;
}

/* Inserts (file, off) -> id with the given charge and releases the handle. */
static void put(tv_cache *c, atomic_int *deleted, uint64_t file, uint64_t off, size_t charge)
{
	tv_cache_handle *h = tv_cache_insert(c, file, off, mkval(deleted, off), charge, val_delete);
	assert_non_null(h);
	tv_cache_release(c, h);
}

static int present(tv_cache *c, uint64_t file, uint64_t off)
{
	tv_cache_handle *h = tv_cache_lookup(c, file, off);
	if (!h)
		return 0;
	assert_int_equal(((val *)tv_cache_value(h))->id, off);
	tv_cache_release(c, h);
	return 1;
}

static void test_insert_lookup_counters(void **state)
{
	(void)state;
	atomic_int deleted = 0;
	tv_cache *c = tv_cache_new(1000);
	assert_non_null(c);
	assert_null(tv_cache_lookup(c, 1, 0));
	put(c, &deleted, 1, 0, 10);
	put(c, &deleted, 1, 4096, 10);
	put(c, &deleted, 2, 0, 10); /* same offset, other file: another key */
	assert_int_equal(tv_cache_usage(c), 30);
	assert_true(present(c, 1, 0));
	assert_true(present(c, 1, 4096));
	assert_true(present(c, 2, 0));
	assert_false(present(c, 3, 0));
	assert_false(present(c, 1, 1));
	assert_int_equal(tv_cache_hits(c), 3);
	assert_int_equal(tv_cache_misses(c), 3);
	assert_int_equal(deleted, 0);
	tv_cache_free(c);
	assert_int_equal(deleted, 3); /* free deletes what is cached */
}

static void test_eviction_order(void **state)
{
	(void)state;
	atomic_int deleted = 0;
	tv_cache *c = tv_cache_new(100);
	for (uint64_t i = 1; i <= 10; i++)
		put(c, &deleted, 7, i, 10);
	assert_int_equal(tv_cache_usage(c), 100);
	assert_int_equal(deleted, 0);
	assert_true(present(c, 7, 1)); /* 1 gets a second chance */
	put(c, &deleted, 7, 11, 10);   /* passes 1, evicts 2 */
	assert_int_equal(deleted, 1);
	assert_false(present(c, 7, 2));
	assert_true(present(c, 7, 1));
	assert_true(present(c, 7, 3)); /* order now 4..10, 11, 1, 3 */
	put(c, &deleted, 7, 12, 20);   /* evicts 4 and 5 */
	assert_false(present(c, 7, 4));
	assert_false(present(c, 7, 5));
	for (uint64_t i = 6; i <= 12; i++)
		assert_true(present(c, 7, i));
	assert_true(present(c, 7, 1));
	assert_true(present(c, 7, 3));
	assert_int_equal(deleted, 3);
	assert_int_equal(tv_cache_usage(c), 100);
	tv_cache_free(c);
	assert_int_equal(deleted, 12);
}

/* When every entry was looked up since the hand's last pass, one sweep
 * clears their bits and the next evicts the oldest: the cache never stalls
 * over capacity. */
static void test_all_referenced(void **state)
{
	(void)state;
	atomic_int deleted = 0;
	tv_cache *c = tv_cache_new(100);
	for (uint64_t i = 1; i <= 10; i++)
		put(c, &deleted, 3, i, 10);
	for (uint64_t i = 1; i <= 10; i++)
		assert_true(present(c, 3, i));
	put(c, &deleted, 3, 11, 10); /* a full turn, then 1 goes */
	assert_int_equal(deleted, 1);
	assert_false(present(c, 3, 1));
	assert_true(present(c, 3, 11));
	assert_int_equal(tv_cache_usage(c), 100);
	put(c, &deleted, 3, 12, 10); /* 2 lost its bit in that turn */
	assert_false(present(c, 3, 2));
	for (uint64_t i = 3; i <= 12; i++)
		assert_true(present(c, 3, i));
	tv_cache_free(c);
	assert_int_equal(deleted, 12);
}

/* A lookup through a slot fills it on a hit; the entry's eviction or
 * replacement empties it, and tv_cache_unslot makes the cache forget it. */
static void test_slots(void **state)
{
	(void)state;
	atomic_int deleted = 0;
	tv_cache *c = tv_cache_new(100);
	tv_cache_handle *_Atomic slot = NULL, *_Atomic other = NULL;
	assert_null(tv_cache_lookup_slot(c, 5, 1, &slot, 0)); /* a miss */
	assert_null(atomic_load(&slot));
	put(c, &deleted, 5, 1, 10);
	tv_cache_handle *h = tv_cache_lookup_slot(c, 5, 1, &slot, 0);
	assert_non_null(h);
	assert_ptr_equal(atomic_load(&slot), h);
	tv_cache_release(c, h);
	h = tv_cache_lookup_slot(c, 5, 1, &slot, 64); /* from the slot */
	assert_int_equal(((val *)tv_cache_value(h))->id, 1);
	tv_cache_release(c, h);
	assert_int_equal(tv_cache_hits(c), 2);

	put(c, &deleted, 5, 1, 10); /* replaced: the slot let go of the old */
	assert_null(atomic_load(&slot));
	assert_int_equal(deleted, 1);
	h = tv_cache_lookup_slot(c, 5, 1, &slot, 0);
	tv_cache_release(c, h);
	assert_non_null(atomic_load(&slot));

	for (uint64_t i = 2; i <= 30; i++) /* evicts (5, 1) */
		put(c, &deleted, 5, i, 10);
	assert_null(atomic_load(&slot));
	assert_null(tv_cache_lookup_slot(c, 5, 1, &slot, 0));

	h = tv_cache_lookup_slot(c, 5, 30, &other, 0);
	assert_non_null(h);
	tv_cache_release(c, h);
	assert_non_null(atomic_load(&other));
	tv_cache_unslot(c, 5, 30, &other);
	assert_null(atomic_load(&other));
	tv_cache_unslot(c, 5, 1, &slot); /* empty already */
	assert_true(present(c, 5, 30));
	for (uint64_t i = 31; i <= 60; i++) /* evicts (5, 30), slot forgotten */
		put(c, &deleted, 5, i, 10);
	assert_false(present(c, 5, 30));
	assert_null(atomic_load(&other));
	tv_cache_free(c);
}

static void test_held_handles_survive(void **state)
{
	(void)state;
	atomic_int deleted = 0;
	tv_cache *c = tv_cache_new(100);
	tv_cache_handle *held = tv_cache_insert(c, 1, 1, mkval(&deleted, 1), 50, val_delete);
	assert_non_null(held);
	/* Push far more than the capacity through; the held entry stays. */
	for (uint64_t i = 100; i < 200; i++)
		put(c, &deleted, 1, i, 30);
	assert_int_equal(((val *)tv_cache_value(held))->id, 1);
	assert_true(present(c, 1, 1)); /* held entries are not evicted */
	assert_true(tv_cache_usage(c) <= 100);

	/* Replacing a held entry: the old value lives until released. */
	tv_cache_handle *h2 = tv_cache_insert(c, 1, 1, mkval(&deleted, 1), 10, val_delete);
	int before = deleted;
	val *old = tv_cache_value(held);
	assert_ptr_not_equal(old, tv_cache_value(h2));
	assert_int_equal(old->id, 1); /* still readable (ASan would object) */
	tv_cache_release(c, held);
	assert_int_equal(deleted, before + 1);
	tv_cache_handle *h3 = tv_cache_lookup(c, 1, 1);
	assert_ptr_equal(tv_cache_value(h3), tv_cache_value(h2));
	tv_cache_release(c, h3);
	tv_cache_release(c, h2);
	tv_cache_free(c);
	assert_int_equal(deleted, 102);
}

static void test_oversized_and_waiting(void **state)
{
	(void)state;
	atomic_int deleted = 0;
	tv_cache *c = tv_cache_new(100);
	/* An entry bigger than the whole cache is usable while held ... */
	tv_cache_handle *big = tv_cache_insert(c, 1, 0, mkval(&deleted, 0), 500, val_delete);
	assert_non_null(big);
	assert_int_equal(tv_cache_usage(c), 500);
	/* ... and goes as soon as nobody holds it. */
	tv_cache_release(c, big);
	assert_int_equal(deleted, 1);
	assert_int_equal(tv_cache_usage(c), 0);

	/* Held entries over capacity are trimmed when released. */
	tv_cache_handle *h[5];
	for (int i = 0; i < 5; i++)
		h[i] = tv_cache_insert(c, 2, (uint64_t)i, mkval(&deleted, (uint64_t)i), 40,
		                       val_delete);
	assert_int_equal(tv_cache_usage(c), 200);
	for (int i = 0; i < 5; i++)
		tv_cache_release(c, h[i]);
	assert_true(tv_cache_usage(c) <= 100);
	assert_int_equal(tv_cache_usage(c), 80); /* the two released last */
	assert_true(present(c, 2, 3));
	assert_true(present(c, 2, 4));
	tv_cache_free(c);
	assert_int_equal(deleted, 6);
}

static void test_zero_capacity(void **state)
{
	(void)state;
	atomic_int deleted = 0;
	tv_cache *c = tv_cache_new(0);
	tv_cache_handle *h = tv_cache_insert(c, 1, 1, mkval(&deleted, 1), 10, val_delete);
	assert_non_null(h);
	assert_int_equal(((val *)tv_cache_value(h))->id, 1);
	assert_null(tv_cache_lookup(c, 1, 1));
	assert_int_equal(tv_cache_usage(c), 0);
	tv_cache_release(c, h);
	assert_int_equal(deleted, 1);
	tv_cache_free(c);
}

static void test_capacity_many_shards(void **state)
{
	(void)state;
	atomic_int deleted = 0;
	const size_t cap = 16u << 20;
	tv_cache *c = tv_cache_new(cap);
	tu_rng r;
	tu_rng_seed(&r, tu_seed("cache capacity"));
	int inserted = 0;
	for (int i = 0; i < 20000; i++) {
		size_t charge = 1024 + (size_t)tu_below(&r, 8192);
		put(c, &deleted, tu_below(&r, 4), (uint64_t)i * 4096, charge);
		inserted++;
		assert_true(tv_cache_usage(c) <= cap);
	}
	/* About 16 MiB / 5 KiB entries survive; all of them are findable. */
	int found = 0;
	for (int i = 0; i < 20000; i++)
		for (uint64_t f = 0; f < 4; f++)
			found += present(c, f, (uint64_t)i * 4096);
	assert_int_equal(found, inserted - deleted);
	assert_true(found > 2000 && found < 4000);
	assert_true(tv_cache_usage(c) > cap - cap / 4); /* shards are balanced */
	tv_cache_free(c);
	assert_int_equal(deleted, inserted);
}

/* Values from tv_cache_alloc are recycled for later values, and what the
 * cache accounts for (entries and recycled buffers) stays within the
 * capacity. */
static void test_recycled_values(void **state)
{
	(void)state;
	const size_t cap = 4u << 20;
	tv_cache *c = tv_cache_new(cap);
	tu_rng r;
	tu_rng_seed(&r, tu_seed("cache recycled"));
	for (int i = 0; i < 20000; i++) {
		size_t n = 3000 + (size_t)tu_below(&r, 2000);
		char *v = tv_cache_alloc(c, n);
		assert_non_null(v);
		assert_int_equal((uintptr_t)v % 16, 0);
		memset(v, (int)i, n);
		assert_true(tv_cache_charge(n) > n);
		tv_cache_handle *h = tv_cache_insert(c, 1, (uint64_t)i, v, tv_cache_charge(n), NULL);
		assert_non_null(h);
		tv_cache_release(c, h);
		assert_true(tv_cache_usage(c) <= cap);
	}
	assert_true(tv_cache_usage(c) > cap / 2);
	tv_cache_dealloc(c, NULL);
	tv_cache_free(c);
}

/* Reserved bytes evict entries at once and count in the usage. */
static void test_reserve(void **state)
{
	(void)state;
	atomic_int deleted = 0;
	const size_t cap = 4u << 20;
	tv_cache *c = tv_cache_new(cap);
	for (int i = 0; i < 250; i++) /* 2.4 MiB: every shard has room */
		put(c, &deleted, 1, (uint64_t)i, 10000);
	assert_int_equal(deleted, 0);
	tv_cache_reserve(c, cap - cap / 8);
	assert_true(deleted > 200);
	assert_int_equal(tv_cache_reserved(c), cap - cap / 8);
	assert_true(tv_cache_usage(c) <= cap);
	put(c, &deleted, 2, 0, 10000);
	assert_true(tv_cache_usage(c) <= cap);
	tv_cache_unreserve(c, cap - cap / 8);
	assert_int_equal(tv_cache_reserved(c), 0);
	tv_cache_free(c);
}

typedef struct worker {
	tv_cache *c;
	atomic_int *deleted;
	uint64_t seed;
	uint64_t ops;
	bool alloced; /* values from tv_cache_alloc */
} worker;

/* Value sizes of the alloced workers: 1000 to 4000 bytes. */
static size_t alloced_size(uint64_t off)
{
	return 1000 + (size_t)(off % 7) * 500;
}

/* A value for off: from malloc with a deleter, or (w->alloced) from
 * tv_cache_alloc, filled with off. */
static tv_cache_handle *insert_value(worker *w, uint64_t off)
{
	if (!w->alloced)
		return tv_cache_insert(w->c, 9, off, mkval(w->deleted, off), 4096, val_delete);
	size_t n = alloced_size(off);
	uint64_t *v = tv_cache_alloc(w->c, n);
	if (!v)
		abort();
	for (size_t j = 0; j < n / 8; j++)
		v[j] = off;
	return tv_cache_insert(w->c, 9, off, v, tv_cache_charge(n), NULL);
}

static bool value_is(const worker *w, tv_cache_handle *h, uint64_t off)
{
	if (!w->alloced)
		return ((val *)tv_cache_value(h))->id == off;
	const uint64_t *v = tv_cache_value(h);
	for (size_t j = 0; j < alloced_size(off) / 8; j += 16)
		if (v[j] != off)
			return false;
	return true;
}

static void *hammer(void *arg)
{
	worker *w = arg;
	tu_rng r;
	tu_rng_seed(&r, w->seed);
	for (int i = 0; i < 50000; i++) {
		uint64_t off = tu_below(&r, 2000);
		tv_cache_handle *h = tv_cache_lookup(w->c, 9, off);
		if (!h)
			h = insert_value(w, off);
		if (!value_is(w, h, off))
			abort();
		tv_cache_release(w->c, h);
		w->ops++;
	}
	return NULL;
}

/* Runs hammer on eight threads over c (worker i seeded seed + i); returns
 * the operations they did. */
static uint64_t run_workers(tv_cache *c, atomic_int *deleted, bool alloced, uint64_t seed)
{
	pthread_t th[8];
	worker w[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (worker){c, deleted, seed + (uint64_t)i, 0, alloced};
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
	}
	uint64_t ops = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ops += w[i].ops;
	}
	return ops;
}

static void test_threads(void **state)
{
	(void)state;
	atomic_int deleted = 0;
	tv_cache *c = tv_cache_new(4u << 20); /* holds about half the keys */
	uint64_t ops = run_workers(c, &deleted, false, 1);
	assert_int_equal(tv_cache_hits(c) + tv_cache_misses(c), ops);
	assert_true(tv_cache_hits(c) > 0 && tv_cache_misses(c) >= 2000);
	assert_true(tv_cache_usage(c) <= 4u << 20);
	tv_cache_free(c);
}

/* Values from tv_cache_alloc carry their entry in their header: eight
 * threads look up, insert and release such values in a cache that holds
 * about a fifth of them, so entries are evicted (and their buffers
 * recycled for other values) while other threads hold them; every value
 * must still read as the one its handle was given for. */
static void test_threads_alloced(void **state)
{
	(void)state;
	const size_t cap = 1u << 20;
	tv_cache *c = tv_cache_new(cap);
	uint64_t ops = run_workers(c, NULL, true, tu_seed("cache alloced"));
	assert_int_equal(tv_cache_hits(c) + tv_cache_misses(c), ops);
	assert_true(tv_cache_misses(c) > 2000); /* entries were evicted */
	assert_true(tv_cache_usage(c) <= cap);
	tv_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_insert_lookup_counters),
	        cmocka_unit_test(test_eviction_order),
	        cmocka_unit_test(test_all_referenced),
	        cmocka_unit_test(test_slots),
	        cmocka_unit_test(test_held_handles_survive),
	        cmocka_unit_test(test_oversized_and_waiting),
	        cmocka_unit_test(test_zero_capacity),
	        cmocka_unit_test(test_capacity_many_shards),
	        cmocka_unit_test(test_threads),
	        cmocka_unit_test(test_threads_alloced),
	        cmocka_unit_test(test_recycled_values),
	        cmocka_unit_test(test_reserve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
