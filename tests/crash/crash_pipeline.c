/*
 * crash_pipeline.c - the sync pipeline under many writers: what a power
 * loss or a failed sync leaves.
 *
 * Under TROVE_SYNC_ALWAYS a group of writers leaves the writer queue once
 * its record is appended and waits for a sync that makes the log durable
 * past it, while the next groups append (docs/ENGINE.md, "The write
 * path").  Here WRITERS threads write on the fault-injecting VFS with a
 * 1 MiB memory budget (so memtable and log switches, which drain the
 * pipeline, happen often): each its own keys w<t>_<n> in order, n = 0, 1,
 * ..., every fourth a put-if-absent, until a write fails; in between, a
 * put-if-absent of one shared key (which fails after the first) and
 * trove_sync calls, which make groups that write nothing.  A reader thread
 * meanwhile reads each writer's key in flight.  Then a fault hits:
 *   - a crash at some sync (that sync and every later call fails), then a
 *     power loss with torn tails;
 *   - or syncs fail with EIO from some point on: the first log sync to
 *     fail must fail the writers waiting on it and every later write (the
 *     handle is failed); then a power loss.
 * After reopening with POSIX files, for every writer:
 *   - every acknowledged write is there, with its value;
 *   - every write the reader saw is there (a reader never sees a write
 *     that is not yet durable);
 *   - nothing past the write in flight is there.
 * TROVE_PIPELINE_ITERS rounds of each (default 20).
 */
#include "crashutil.h"

#include <pthread.h>
#include <stdatomic.h>

#include "engine/vfs.h"

enum { WRITERS = 6, MAXN = 100000 };

typedef struct run {
	trove_db *db;
	atomic_int issued[WRITERS]; /* the write in flight: n */
	int acked[WRITERS];         /* writes acknowledged: 0..acked-1 */
	int first_error[WRITERS];
	int after_error[WRITERS];   /* what the write after the failure returned */
	atomic_int seen[WRITERS];   /* the reader saw 0..seen-1 */
	atomic_int any_acked;       /* some write was acknowledged */
	atomic_int stop;
} run;

typedef struct warg {
	run *r;
	int t;
} warg;

static size_t make_key(char *buf, int t, int n)
{
	return (size_t)snprintf(buf, 32, "w%d_%06d", t, n);
}

static size_t make_value(char *buf, int t, int n)
{
	return (size_t)snprintf(buf, 64, "value of writer %d, write %d", t, n);
}

static void *writer_main(void *arg)
{
	warg *a = arg;
	run *r = a->r;
	int t = a->t;
	char key[32], val[64];
	for (int n = 0; n < MAXN; n++) {
		atomic_store(&r->issued[t], n);
		size_t kl = make_key(key, t, n), vl = make_value(val, t, n);
		int rc = 0;
		/* Groups that write nothing: a condition that fails, a sync. */
		if (n % 8 == 5 && (rc = trove_put_if_absent(r->db, "shared", 6, val, vl)) ==
		                          TROVE_EEXIST)
			rc = 0;
		if (!rc && n % 16 == 7)
			rc = trove_sync(r->db);
		if (!rc)
			rc = n % 4 == 3 ? trove_put_if_absent(r->db, key, kl, val, vl)
			                : trove_put(r->db, key, kl, val, vl);
		if (rc) {
			r->first_error[t] = rc;
			kl = make_key(key, t, n + 1);
			r->after_error[t] = trove_put(r->db, key, kl, val, vl);
			break;
		}
		r->acked[t] = n + 1;
		atomic_store(&r->any_acked, 1);
	}
	return NULL;
}

/* Reads each writer's write in flight; notes what it finds. */
static void *reader_main(void *arg)
{
	run *r = arg;
	char key[32];
	while (!atomic_load(&r->stop)) {
		for (int t = 0; t < WRITERS; t++) {
			int n = atomic_load(&r->issued[t]);
			void *v;
			size_t vl;
			if (trove_get(r->db, key, make_key(key, t, n), &v, &vl) == 0) {
				trove_free(v);
				if (n + 1 > atomic_load(&r->seen[t]))
					atomic_store(&r->seen[t], n + 1);
			}
		}
	}
	return NULL;
}

static void check_reopened(const char *dir, const run *r, const char *what)
{
	trove_options o;
	trove_options_init(&o);
	trove_db *db;
	int rc = trove_open(dir, &o, &db);
	if (rc)
		fail_msg("%s: reopen: %s", what, trove_strerror(rc));
	char key[32], want[64];
	for (int t = 0; t < WRITERS; t++) {
		int must = r->acked[t] > atomic_load(&r->seen[t]) ? r->acked[t] : atomic_load(&r->seen[t]);
		for (int n = 0; n < must; n++) {
			void *v;
			size_t vl, wl = make_value(want, t, n);
			rc = trove_get(db, key, make_key(key, t, n), &v, &vl);
			if (rc)
				fail_msg("%s: writer %d write %d (acknowledged %d, seen %d): %s", what, t,
				         n, r->acked[t], atomic_load(&r->seen[t]), trove_strerror(rc));
			assert_true(vl == wl && memcmp(v, want, wl) == 0);
			trove_free(v);
		}
		/* The write in flight may be there; nothing after it. */
		for (int n = r->acked[t] + 1; n < r->acked[t] + 3; n++)
			assert_int_equal(trove_exists(db, key, make_key(key, t, n)), TROVE_ENOTFOUND);
	}
	cu_check_db(db, what);
	assert_int_equal(trove_close(db), 0);
}

/* One round: the writers and the reader run until the fault armed after
 * `delay_us` stops them; then power loss, reopen, check. */
static void round_once(const char *base, const char *dir, tv_fault_kind kind, uint64_t delay_us,
                       uint64_t seed)
{
	tu_rmrf(dir);
	tv_fault *f = tv_fault_new(NULL);
	assert_non_null(f);
	trove_vfs *v = tv_fault_vfs(f);
	assert_int_equal(v->mkdir(v, dir), 0);
	assert_int_equal(v->sync_dir(v, base), 0);
	trove_options o;
	trove_options_init(&o);
	o.sync = TROVE_SYNC_ALWAYS;
	o.memory_budget = 1 << 20;
	o.vfs = v;
	run *r = calloc(1, sizeof *r);
	assert_non_null(r);
	assert_int_equal(trove_open(dir, &o, &r->db), 0);
	pthread_t th[WRITERS], rd;
	warg args[WRITERS];
	for (int t = 0; t < WRITERS; t++) {
		args[t] = (warg){r, t};
		assert_int_equal(pthread_create(&th[t], NULL, writer_main, &args[t]), 0);
	}
	assert_int_equal(pthread_create(&rd, NULL, reader_main, r), 0);
	/* The fault comes after the delay and after a first acknowledged
	 * write, which a loaded machine may take longer than the delay to
	 * schedule. */
	usleep((useconds_t)delay_us);
	while (!atomic_load(&r->any_acked))
		usleep(1000);
	/* A failed EIO stays failed: the first sync to fail may be a table's,
	 * which the flush retries; the log's next one fails too. */
	tv_fault_arm(f, TV_FAULT_SYNC, 1, kind, kind == TV_FAULT_EIO);
	for (int t = 0; t < WRITERS; t++)
		pthread_join(th[t], NULL);
	atomic_store(&r->stop, 1);
	pthread_join(rd, NULL);
	int acked = 0;
	for (int t = 0; t < WRITERS; t++) {
		acked += r->acked[t];
		assert_int_not_equal(r->first_error[t], 0);
		/* After a failed sync the handle refuses writes (a failed
		 * flush may be what a writer waiting for room hears first). */
		assert_int_not_equal(r->after_error[t], 0);
	}
	assert_true(acked > 0);
	trove_close(r->db); /* may fail: the disk is gone or the handle failed */
	assert_int_equal(tv_fault_power_loss(f, 1, seed), 0);
	tv_fault_free(f);
	check_reopened(dir, r, kind == TV_FAULT_CRASH ? "crash at a sync" : "failed sync");
	free(r);
}

static void rounds(tv_fault_kind kind)
{
	char *base = cu_tmpdir("pipeline");
	assert_non_null(base);
	char *dir = tu_join(base, "db");
	int iters = cu_env_count("TROVE_PIPELINE_ITERS", 20);
	tu_rng rng;
	tu_rng_seed(&rng, 42 + (uint64_t)kind);
	for (int i = 0; i < iters; i++) {
		cu_watchdog("pipeline round", 60);
		round_once(base, dir, kind, 2000 + tu_below(&rng, 60000), (uint64_t)i);
	}
	alarm(0);
	tu_rmrf(base);
	free(dir);
	free(base);
}

static void test_crash_at_a_sync(void **state)
{
	(void)state;
	rounds(TV_FAULT_CRASH);
}

static void test_failed_sync(void **state)
{
	(void)state;
	rounds(TV_FAULT_EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crash_at_a_sync),
	        cmocka_unit_test(test_failed_sync),
	};
	return cmocka_run_group_tests_name("crash_pipeline", tests, NULL, NULL);
}
