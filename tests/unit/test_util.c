/*
 * test_util.c - the small shared helpers of src/util: array growth.
 *
 * tv_grow must keep the elements already stored, grow by doubling from
 * its first capacity, never shrink, and refuse sizes that would overflow
 * without touching the array.  tv_grow_mapped must do the same in whole
 * mapped pages, counting every element they hold.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <unistd.h>

#include "trove.h"
#include "util/grow.h"

typedef struct pair {
	uint64_t a, b;
} pair;

static void test_grow_keeps_elements(void **state)
{
	(void)state;
	pair *v = NULL;
	size_t cap = 0;
	for (size_t i = 0; i < 1000; i++) {
		assert_int_equal(tv_grow(&v, &cap, i + 1, sizeof *v, 8), 0);
		assert_true(cap >= i + 1);
		v[i].a = i;
		v[i].b = ~i;
	}
	assert_int_equal(cap, 1024); /* 8, 16, ..., 1024 */
	for (size_t i = 0; i < 1000; i++) {
		assert_int_equal(v[i].a, i);
		assert_int_equal(v[i].b, ~i);
	}
	free(v);
}

static void test_grow_jumps_and_never_shrinks(void **state)
{
	(void)state;
	int *v = NULL;
	size_t cap = 0;
	assert_int_equal(tv_grow(&v, &cap, 100, sizeof *v, 16), 0);
	assert_int_equal(cap, 128);
	int *before = v;
	assert_int_equal(tv_grow(&v, &cap, 5, sizeof *v, 16), 0);
	assert_int_equal(cap, 128);
	assert_ptr_equal(v, before);
	free(v);
}

static void test_grow_refuses_overflow(void **state)
{
	(void)state;
	char *v = NULL;
	size_t cap = 0;
	assert_int_equal(tv_grow(&v, &cap, 4, 1, 4), 0);
	char *before = v;
	assert_int_equal(tv_grow(&v, &cap, SIZE_MAX, 1, 4), TROVE_ENOMEM);
	assert_int_equal(tv_grow(&v, &cap, SIZE_MAX / 8, 16, 4), TROVE_ENOMEM);
	assert_ptr_equal(v, before);
	assert_int_equal(cap, 4);
	free(v);
}

static void test_grow_mapped(void **state)
{
	(void)state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	pair *v = NULL;
	size_t cap = 0;
	assert_int_equal(tv_grow_mapped(&v, &cap, 1, sizeof *v), 0);
	assert_int_equal(cap, page / sizeof *v); /* one whole page */
	for (size_t i = 0; i < 100000; i++) {
		assert_int_equal(tv_grow_mapped(&v, &cap, i + 1, sizeof *v), 0);
		assert_true(cap >= i + 1);
		assert_int_equal(cap * sizeof *v % page, 0);
		v[i].a = i;
		v[i].b = ~i;
	}
	assert_true(cap < 2 * 100000);
	for (size_t i = 0; i < 100000; i++) {
		assert_int_equal(v[i].a, i);
		assert_int_equal(v[i].b, ~i);
	}
	pair *before = v;
	assert_int_equal(tv_grow_mapped(&v, &cap, 5, sizeof *v), 0);
	assert_ptr_equal(v, before);
	size_t had = cap;
	assert_int_equal(tv_grow_mapped(&v, &cap, SIZE_MAX / 8, sizeof *v), TROVE_ENOMEM);
	assert_ptr_equal(v, before);
	assert_int_equal(cap, had);
	tv_unmap_array(v, cap, sizeof *v);
	tv_unmap_array(NULL, 0, sizeof *v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_grow_keeps_elements),
	        cmocka_unit_test(test_grow_jumps_and_never_shrinks),
	        cmocka_unit_test(test_grow_refuses_overflow),
	        cmocka_unit_test(test_grow_mapped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
