/*
 * testutil.h - small helpers shared by the C test suites.
 *
 * Temporary directories under $TMPDIR (removed by the tests that make
 * them), recursive removal, and a deterministic random generator so that
 * a failing run can be repeated from its printed seed.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh empty directory and returns its path (static storage
 * per call slot is avoided: the result is malloc'd; free it). */
char *tu_tmpdir(const char *tag);
/* Removes path and everything below it; ignores a missing path. */
void tu_rmrf(const char *path);
/* path/name in a malloc'd string. */
char *tu_join(const char *dir, const char *name);

/* xorshift64* random numbers. */
typedef struct tu_rng {
	uint64_t s;
} tu_rng;
void tu_rng_seed(tu_rng *r, uint64_t seed);
uint64_t tu_rand(tu_rng *r);
/* Uniform in [0, n). */
uint64_t tu_below(tu_rng *r, uint64_t n);
/* A seed from $TROVE_TEST_SEED, or the clock; printed to stdout. */
uint64_t tu_seed(const char *test);

#endif
