/*
 * crash_faults.c - I/O errors and a full disk: an error, never damage.
 *
 * The fault-injecting VFS fails chosen calls with EIO or ENOSPC - appends
 * to the log (also short and torn ones), log syncs, and every append,
 * sync, file creation and rename of a flush, a compaction and a recovery,
 * one at a time - or keeps failing them (a full disk, sticky ENOSPC).  In
 * every case the caller gets an error and the process neither crashes nor
 * hangs (a watchdog bounds each case), reads on the same handle still see
 * exactly the acknowledged writes, the database closes, reopens and
 * passes trove_verify with every acknowledged write in it, and a failed
 * write whose record never fully reached the log is not in it.  Once the
 * fault is gone the same handle takes writes again: at once after a failed
 * append, within a bounded time once a failed background flush has been
 * retried; after a failed log sync it refuses them with TROVE_EBADDB, as
 * documented, until it is reopened.
 */
#include "crashutil.h"

#include <dirent.h>
#include <sys/stat.h>

#include "engine/vfs.h"

enum { NK = 512, VLEN = 1000 };
#define NONE (-2) /* fx.alt: no failed write pending on the key */

/* A database on the fault VFS and a model of it. */
typedef struct fx {
	char *dir;
	tv_fault *f;
	trove_db *db;
	int gen[NK]; /* acknowledged: -1 absent, else the value's generation */
	int alt[NK]; /* a failed write that may still show: its gen, or NONE */
	int next;    /* the next generation */
} fx;

/* Totals of one test, for the closing line. */
typedef struct tally {
	int cases, errors, fired;
} tally;

/* ---- The model ------------------------------------------------------------ */

static size_t make_value(char *buf, int k, int g)
{
	int n = snprintf(buf, VLEN, "k%05d:%d:", k, g);
	for (int i = n; i < VLEN; i++)
		buf[i] = (char)('a' + (unsigned)(g * 31 + i * 7) % 26);
	return VLEN;
}

static void key_name(char *buf, int k)
{
	snprintf(buf, 16, "k%05d", k);
}

static void fx_reset_model(fx *x)
{
	for (int k = 0; k < NK; k++) {
		x->gen[k] = -1;
		x->alt[k] = NONE;
	}
	x->next = 1;
}

/* Notes the outcome of a write of generation g (-1: a delete) to key k.  A
 * failed one may still show later only if may_apply (its record reached
 * the log and only its sync failed). */
static void note(fx *x, int k, int g, int rc, int may_apply)
{
	if (rc == 0) {
		x->gen[k] = g;
		x->alt[k] = NONE;
	} else if (may_apply) {
		x->alt[k] = g;
	}
}

static int put(fx *x, int k, int may_apply)
{
	char key[16], val[VLEN];
	key_name(key, k);
	int g = x->next++;
	int rc = trove_put(x->db, key, strlen(key), val, make_value(val, k, g));
	note(x, k, g, rc, may_apply);
	return rc;
}

static int del(fx *x, int k)
{
	char key[16];
	key_name(key, k);
	int rc = trove_del(x->db, key, strlen(key));
	note(x, k, -1, rc, 0);
	return rc;
}

/* Puts keys first..first+n-1 in one batch. */
static int batch(fx *x, int first, int n, int may_apply)
{
	char key[16], val[VLEN];
	int g = x->next++;
	trove_batch *b = trove_batch_new();
	assert_non_null(b);
	for (int k = first; k < first + n; k++) {
		key_name(key, k);
		assert_int_equal(trove_batch_put(b, key, strlen(key), val, make_value(val, k, g)),
		                 0);
	}
	int rc = trove_write(x->db, b, NULL);
	trove_batch_free(b);
	for (int k = first; k < first + n; k++)
		note(x, k, g, rc, may_apply);
	return rc;
}

/* The generation key k holds in db (-1 if absent); fails on a value no
 * write gave it. */
static int held(trove_db *db, int k)
{
	char key[16], expect[VLEN];
	key_name(key, k);
	void *val;
	size_t len;
	int rc = trove_get(db, key, strlen(key), &val, &len);
	if (rc == TROVE_ENOTFOUND)
		return -1;
	if (rc)
		fail_msg("%s: read failed: %s", key, trove_strerror(rc));
	int g = -1, kk = -1;
	if (sscanf(val, "k%d:%d:", &kk, &g) != 2 || kk != k || len != make_value(expect, k, g) ||
	    memcmp(val, expect, len) != 0)
		fail_msg("%s holds a value never written", key);
	trove_free(val);
	return g;
}

/* Checks db against the model: each key holds its acknowledged state (or
 * the failed write that may show), the count agrees, nothing is damaged.
 * A failed write that shows joins the model; one that does not is
 * forgotten if `settled` (db was opened after the failure, so it will
 * never show), else it may still show after a reopen. */
static void fx_check(fx *x, trove_db *db, int settled, const char *what)
{
	uint64_t live = 0;
	for (int k = 0; k < NK; k++) {
		int g = held(db, k);
		if (g != x->gen[k] && (x->alt[k] == NONE || g != x->alt[k]))
			fail_msg("%s: k%05d holds generation %d, acknowledged %d (or %d)", what, k,
			         g, x->gen[k], x->alt[k]);
		if (g != x->gen[k] || settled) {
			x->gen[k] = g;
			x->alt[k] = NONE;
		}
		live += g >= 0;
	}
	assert_int_equal(cu_check_db(db, what), live);
}

/* ---- Opening and closing -------------------------------------------------------- */

static trove_options fx_options(fx *x, int faulty)
{
	trove_options o;
	trove_options_init(&o);
	o.sync = TROVE_SYNC_ALWAYS;
	o.memory_budget = 2 << 20; /* 256 KiB memtables */
	o.vfs = faulty ? tv_fault_vfs(x->f) : NULL;
	return o;
}

/* A fresh directory, fault VFS and empty database, opened through it. */
static void fx_start(fx *x)
{
	tu_rmrf(x->dir);
	assert_int_equal(mkdir(x->dir, 0700), 0);
	tv_fault_free(x->f);
	x->f = tv_fault_new(NULL);
	assert_non_null(x->f);
	fx_reset_model(x);
	trove_options o = fx_options(x, 1);
	assert_int_equal(trove_open(x->dir, &o, &x->db), 0);
}

/* Closes the handle, reopens with POSIX files and checks; leaves it
 * closed. */
static void fx_reopen_check(fx *x, const char *what)
{
	trove_close(x->db); /* an error here only says a final flush failed */
	x->db = NULL;
	trove_options o = fx_options(x, 0);
	char said[CU_SAID_LEN] = "";
	o.log = cu_note_log;
	o.log_arg = said;
	trove_db *db;
	int rc = trove_open(x->dir, &o, &db);
	if (rc)
		fail_msg("%s: the reopen failed: %s (engine: %s)", what, trove_strerror(rc), said);
	fx_check(x, db, 1, what);
	assert_int_equal(trove_close(db), 0);
}

static int setup(void **state)
{
	fx *x = calloc(1, sizeof *x);
	assert_non_null(x);
	char *base = cu_tmpdir("faults");
	assert_non_null(base);
	x->dir = tu_join(base, "db");
	free(base);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	alarm(0);
	if (x->db)
		trove_close(x->db);
	tv_fault_free(x->f);
	char *slash = strrchr(x->dir, '/');
	*slash = 0;
	tu_rmrf(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

/* Retries op on x until it returns 0, for at most 10 s; every failure
 * must be err.  Returns the number of failures. */
static int retry(fx *x, int (*op)(fx *), int err, const char *what)
{
	uint64_t t0 = cu_now_us();
	int fails = 0, rc;
	while ((rc = op(x)) != 0) {
		if (rc != err)
			fail_msg("%s: %s, expected %s", what, trove_strerror(rc),
			         trove_strerror(err));
		if (cu_now_us() - t0 > 10 * 1000000u)
			fail_msg("%s: still failing after 10 s", what);
		fails++;
		usleep(20 * 1000);
	}
	return fails;
}

static int op_flush(fx *x)
{
	return trove_flush(x->db);
}

static int op_put(fx *x)
{
	return put(x, NK - 1, 0);
}

/* ---- The log: failed appends -------------------------------------------------------- */

/* Each way an append to the log can fail: the write gets the error, is
 * not applied, and the next write on the same handle succeeds. */
static void test_log_append_faults(void **state)
{
	fx *x = *state;
	cu_watchdog("log append faults", 60);
	static const tv_fault_kind kinds[] = {TV_FAULT_EIO, TV_FAULT_ENOSPC, TV_FAULT_SHORT,
	                                      TV_FAULT_TORN};
	static const int errs[] = {TROVE_EIO, TROVE_ENOSPC, TROVE_ENOSPC, TROVE_EIO};
	fx_start(x);
	for (int k = 0; k < 100; k++)
		assert_int_equal(put(x, k, 0), 0);
	for (int r = 0; r < 4; r++) {
		tv_fault_arm(x->f, TV_FAULT_WRITE, 1, kinds[r], 0);
		assert_int_equal(put(x, 100 + r, 0), errs[r]);
		assert_int_equal(put(x, 100 + r, 0), 0);
		tv_fault_arm(x->f, TV_FAULT_WRITE, 1, kinds[r], 0);
		assert_int_equal(batch(x, 200 + r * 5, 5, 0), errs[r]);
		assert_int_equal(batch(x, 300 + r * 5, 5, 0), 0);
		assert_int_equal(put(x, r, 0), 0);
		fx_check(x, x->db, 0, "log append faults, same handle");
	}
	fx_reopen_check(x, "log append faults");
}

/* ---- The log: failed syncs -------------------------------------------------------------- */

/* A failed log sync fails the write; the handle then refuses writes with
 * TROVE_EBADDB (the record may or may not be on disk) but still reads; a
 * reopen settles it and takes writes again. */
static void test_log_sync_faults(void **state)
{
	fx *x = *state;
	static const tv_fault_kind kinds[] = {TV_FAULT_EIO, TV_FAULT_ENOSPC};
	static const int errs[] = {TROVE_EIO, TROVE_ENOSPC};
	for (int r = 0; r < 2; r++) {
		cu_watchdog("log sync faults", 60);
		fx_start(x);
		for (int k = 0; k < 50; k++)
			assert_int_equal(put(x, k, 0), 0);
		tv_fault_arm(x->f, TV_FAULT_SYNC, 1, kinds[r], 0);
		assert_int_equal(batch(x, 50, 5, 1), errs[r]);
		assert_int_equal(put(x, 60, 0), TROVE_EBADDB);
		assert_int_equal(batch(x, 61, 3, 0), TROVE_EBADDB);
		assert_int_equal(trove_del(x->db, "k00000", 6), TROVE_EBADDB);
		assert_int_equal(trove_sync(x->db), TROVE_EBADDB);
		assert_int_equal(trove_flush(x->db), TROVE_EBADDB);
		fx_check(x, x->db, 0, "log sync faults, same handle");
		trove_close(x->db);
		/* The failed batch is all there or not at all. */
		trove_options o = fx_options(x, 1);
		assert_int_equal(trove_open(x->dir, &o, &x->db), 0);
		int there = 0;
		for (int k = 50; k < 55; k++)
			there += held(x->db, k) >= 0;
		assert_true(there == 0 || there == 5);
		fx_check(x, x->db, 1, "log sync faults, reopened");
		assert_int_equal(put(x, 60, 0), 0);
		fx_reopen_check(x, "log sync faults");
	}
}

/* ---- A full disk ------------------------------------------------------------------------ */

/* Every append fails with ENOSPC: writes, batches, flushes and
 * compactions get the error, reads go on; when space returns the same
 * handle writes, flushes and compacts again. */
static void test_full_disk(void **state)
{
	fx *x = *state;
	cu_watchdog("full disk", 60);
	fx_start(x);
	for (int k = 0; k < 100; k++)
		assert_int_equal(put(x, k, 0), 0);
	tv_fault_arm(x->f, TV_FAULT_WRITE, 1, TV_FAULT_ENOSPC, 1);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(put(x, 100 + i % 50, 0), TROVE_ENOSPC);
		if (i % 10 == 0)
			assert_int_equal(batch(x, 200, 5, 0), TROVE_ENOSPC);
	}
	assert_int_equal(trove_flush(x->db), TROVE_ENOSPC);
	assert_int_equal(trove_compact_range(x->db, NULL, 0, NULL, 0), TROVE_ENOSPC);
	fx_check(x, x->db, 0, "full disk, same handle");
	tv_fault_clear(x->f);
	assert_int_equal(put(x, 100, 0), 0);
	assert_int_equal(batch(x, 200, 5, 0), 0);
	assert_int_equal(trove_flush(x->db), 0);
	assert_int_equal(trove_compact_range(x->db, NULL, 0, NULL, 0), 0);
	fx_check(x, x->db, 0, "full disk, space back");
	fx_reopen_check(x, "full disk");
}

/* Bytes in the directory's files whose names end in suffix. */
static long long bytes_in(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	long long total = 0;
	size_t sl = strlen(suffix);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < sl || strcmp(e->d_name + n - sl, suffix) != 0)
			continue;
		char *path = tu_join(dir, e->d_name);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		total += st.st_size;
		free(path);
	}
	closedir(d);
	return total;
}

/* Closing writes a memtable that is a quarter full or more to a table, so
 * the log is left (almost) empty; when that flush fails, close says so and
 * the log still holds every acknowledged write. */
static void test_flush_at_close(void **state)
{
	fx *x = *state;
	cu_watchdog("flush at close", 60);
	fx_start(x);
	for (int k = 0; k < 100; k++) /* ~100 KB: over a quarter of 256 KiB */
		assert_int_equal(put(x, k, 0), 0);
	assert_true(bytes_in(x->dir, ".log") > 100 * VLEN);
	assert_int_equal(trove_close(x->db), 0);
	x->db = NULL;
	assert_true(bytes_in(x->dir, ".log") < 4096);
	assert_true(bytes_in(x->dir, ".sst") > 0);
	trove_options o = fx_options(x, 1);
	assert_int_equal(trove_open(x->dir, &o, &x->db), 0);
	fx_check(x, x->db, 1, "flush at close");

	for (int k = 100; k < 200; k++)
		assert_int_equal(put(x, k, 0), 0);
	/* The first file created is the next memtable's log, the second the
	 * table: every table creation fails. */
	tv_fault_arm(x->f, TV_FAULT_OPEN, 2, TV_FAULT_ENOSPC, 1);
	assert_int_equal(trove_close(x->db), TROVE_ENOSPC);
	x->db = NULL;
	tv_fault_clear(x->f);
	o = fx_options(x, 0);
	trove_db *db;
	assert_int_equal(trove_open(x->dir, &o, &db), 0);
	fx_check(x, db, 1, "failed flush at close");
	assert_int_equal(trove_close(db), 0);
}

/* The disk fills while a background flush is due: the flush keeps
 * failing, writers fill the memtable and then get ENOSPC rather than
 * wait forever; when space returns the retried flush succeeds and the
 * same handle writes again within a bounded time. */
static void test_full_disk_during_flush(void **state)
{
	fx *x = *state;
	cu_watchdog("full disk during a flush", 60);
	fx_start(x);
	for (int k = 0; k < 100; k++)
		assert_int_equal(put(x, k, 0), 0);
	/* From the second file creation on (the table; the first is the
	 * memtable's new log), every one fails. */
	tv_fault_arm(x->f, TV_FAULT_OPEN, 2, TV_FAULT_ENOSPC, 1);
	assert_int_equal(trove_flush(x->db), TROVE_ENOSPC);
	int rc = 0, n = 0;
	for (; n < 3000 && rc == 0; n++)
		rc = put(x, 100 + n % 400, 0);
	assert_int_equal(rc, TROVE_ENOSPC);
	fx_check(x, x->db, 0, "full disk during a flush, same handle");
	tv_fault_clear(x->f);
	int fails = retry(x, op_put, TROVE_ENOSPC, "writing once space returned");
	fails += retry(x, op_flush, TROVE_ENOSPC, "flushing once space returned");
	fx_check(x, x->db, 0, "full disk during a flush, space back");
	printf("# faults: full disk during a flush: writes failed after %d puts, %d failures "
	       "while the flush was retried\n",
	       n, fails);
	fx_reopen_check(x, "full disk during a flush");
}

/* ---- Every call of a flush, a compaction and a recovery ---------------------------------- */

/* What a fault-sweep case builds and does. */
typedef struct sweep {
	const char *name;
	void (*build)(fx *x);  /* a database, open, before the operation */
	int (*operate)(fx *x); /* the operation faults are injected into */
} sweep;

/* A memtable well under the 256 KiB that would flush it by itself. */
static void build_memtable(fx *x)
{
	fx_start(x);
	for (int k = 0; k < 120; k++)
		assert_int_equal(put(x, k, 0), 0);
}

/* Three overlapping level-0 tables: fewer than trigger a compaction by
 * themselves, and less data than level 1 holds. */
static void build_level0(fx *x)
{
	fx_start(x);
	for (int r = 0; r < 3; r++) {
		for (int k = r; k < 450; k += 3)
			assert_int_equal(put(x, k, 0), 0);
		for (int k = 10 * r; k < 10 * r + 5; k++)
			assert_int_equal(del(x, k), 0);
		assert_int_equal(trove_flush(x->db), 0);
	}
}

/* Data only in the log, recovered at the next open. */
static void build_log(fx *x)
{
	build_memtable(x);
	assert_int_equal(trove_close(x->db), 0);
	x->db = NULL;
}

static int op_compact(fx *x)
{
	return trove_compact_range(x->db, NULL, 0, NULL, 0);
}

static int op_open(fx *x)
{
	trove_options o = fx_options(x, 1);
	return trove_open(x->dir, &o, &x->db);
}

/* The fault the nth call of kind op gets. */
static tv_fault_kind sweep_kind(tv_fault_op op, uint64_t i)
{
	static const tv_fault_kind w[] = {TV_FAULT_EIO, TV_FAULT_ENOSPC, TV_FAULT_SHORT,
	                                  TV_FAULT_TORN};
	if (op == TV_FAULT_WRITE)
		return w[i % 4];
	return i % 2 ? TV_FAULT_ENOSPC : TV_FAULT_EIO;
}

/* One case: build, fail the nth call of kind op during the operation,
 * check the handle; then either close at once, or clear the fault and
 * redo the operation on the same handle; reopen and check.  A failed
 * open is followed by a clean one. */
static void sweep_case(fx *x, const sweep *s, tv_fault_op op, uint64_t nth, int close_at_once,
                       tally *t)
{
	char what[128];
	snprintf(what, sizeof what, "%s: call %llu of kind %d fails as %d, %s", s->name,
	         (unsigned long long)nth, (int)op, (int)sweep_kind(op, nth),
	         s->operate == op_open ? "then a clean open"
	         : close_at_once       ? "closed at once"
	                               : "redone");
	cu_watchdog(what, 60);
	s->build(x);
	uint64_t before = tv_fault_count(x->f, op);
	tv_fault_arm(x->f, op, nth, sweep_kind(op, nth), 0);
	int rc = s->operate(x);
	int fired = tv_fault_count(x->f, op) >= before + nth;
	if (fired && rc == 0)
		fail_msg("%s: the operation succeeded", what);
	t->cases++;
	t->errors += rc != 0;
	t->fired += fired;
	if (s->operate == op_open) {
		if (rc == 0)
			fx_check(x, x->db, 1, what);
		else
			x->db = NULL;
		fx_reopen_check(x, what);
		return;
	}
	fx_check(x, x->db, 0, what);
	if (!close_at_once) {
		tv_fault_clear(x->f);
		retry(x, s->operate, rc, what);
		assert_int_equal(put(x, NK - 1, 0), 0);
		fx_check(x, x->db, 0, what);
	}
	fx_reopen_check(x, what);
}

/* Counts the calls of each kind the operation makes, then fails each of
 * them in turn. */
static void run_sweep(fx *x, const sweep *s)
{
	static const tv_fault_op ops[] = {TV_FAULT_WRITE, TV_FAULT_SYNC, TV_FAULT_OPEN,
	                                  TV_FAULT_RENAME};
	uint64_t t0 = cu_now_us(), calls[4];
	cu_watchdog(s->name, 60);
	s->build(x);
	for (int o = 0; o < 4; o++)
		calls[o] = tv_fault_count(x->f, ops[o]);
	assert_int_equal(s->operate(x), 0);
	for (int o = 0; o < 4; o++)
		calls[o] = tv_fault_count(x->f, ops[o]) - calls[o];
	assert_true(calls[0] > 0 && calls[1] > 0);
	fx_check(x, x->db, 1, s->name);
	fx_reopen_check(x, s->name);
	tally t = {0};
	for (int o = 0; o < 4; o++)
		for (uint64_t n = 1; n <= calls[o]; n++)
			for (int at_once = 0; at_once < (s->operate == op_open ? 1 : 2); at_once++)
				sweep_case(x, s, ops[o], n, at_once, &t);
	printf("# faults: %s: %d cases (%llu appends, %llu syncs, %llu creations, %llu renames "
	       "failed in turn): the fault fired in %d, %d returned an error; %.1f s\n",
	       s->name, t.cases, (unsigned long long)calls[0], (unsigned long long)calls[1],
	       (unsigned long long)calls[2], (unsigned long long)calls[3], t.fired, t.errors,
	       (double)(cu_now_us() - t0) / 1e6);
}

static void test_flush_faults(void **state)
{
	static const sweep s = {"flush", build_memtable, op_flush};
	run_sweep(*state, &s);
}

static void test_compaction_faults(void **state)
{
	static const sweep s = {"compaction", build_level0, op_compact};
	run_sweep(*state, &s);
}

static void test_recovery_faults(void **state)
{
	static const sweep s = {"recovery", build_log, op_open};
	run_sweep(*state, &s);
}

/* A compaction on a full disk fails with ENOSPC and leaves the tables as
 * they were; with space back it succeeds. */
static void test_full_disk_compaction(void **state)
{
	fx *x = *state;
	cu_watchdog("full disk compaction", 60);
	build_level0(x);
	tv_fault_arm(x->f, TV_FAULT_WRITE, 1, TV_FAULT_ENOSPC, 1);
	assert_int_equal(trove_compact_range(x->db, NULL, 0, NULL, 0), TROVE_ENOSPC);
	fx_check(x, x->db, 0, "full disk compaction, same handle");
	tv_fault_clear(x->f);
	assert_int_equal(trove_compact_range(x->db, NULL, 0, NULL, 0), 0);
	trove_stats st;
	assert_int_equal(trove_get_stats(x->db, &st), 0);
	assert_int_equal(st.level_files[0], 0);
	fx_check(x, x->db, 0, "full disk compaction, space back");
	fx_reopen_check(x, "full disk compaction");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_log_append_faults, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_log_sync_faults, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_full_disk_during_flush, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_flush_at_close, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_full_disk_compaction, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_flush_faults, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_compaction_faults, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_recovery_faults, setup, teardown),
	};
	return cmocka_run_group_tests_name("crash_faults", tests, NULL, NULL);
}
