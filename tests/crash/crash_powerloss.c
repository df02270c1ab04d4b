/*
 * crash_powerloss.c - what survives a power loss at every fsync point.
 *
 * A scripted workload - puts, deletes, TTL puts (relative, absolute, and
 * already expired), batches mixing puts, deletes and TTL puts, and
 * explicit trove_sync calls - with a 1 MiB memory budget, so that it goes
 * through several flushes and compactions, runs on the fault-injecting
 * VFS.  A first run counts its fsyncs (file and directory syncs; which
 * one is the k-th varies a little from run to run, as flushes and
 * compactions run on their own threads).  Then for each k, on a fresh
 * directory, the k-th fsync crashes the "machine": it and every later file
 * system call fail.  The workload stops at its first failed write, the
 * database is closed, the disk is rewound to what was synced (the
 * unsynced tails are cut, or, every other k, partly kept with garbage in
 * them) and the database is reopened with the plain POSIX VFS.  It must
 * open and pass trove_verify, trove_count must match a cursor scan, no
 * key or value may appear that was never written, and the state must be
 * the model's after some prefix of the workload (so batches are all or
 * nothing, and nothing is reordered):
 *   - TROVE_SYNC_ALWAYS: exactly the acknowledged writes, plus possibly
 *     the one that failed;
 *   - TROVE_SYNC_NONE and TROVE_SYNC_PERIODIC: any prefix that keeps
 *     every write acknowledged before the last successful trove_sync (the
 *     crash also lands on every tenth append there, as most of their
 *     writes are never synced).
 * Also: trove_open makes the directory it creates durable; a power loss
 * in the first sync of a new log leaves a torn tail, not a damaged
 * header; under TROVE_SYNC_PERIODIC a power loss keeps the writes older
 * than a few sync periods; under TROVE_SYNC_NONE trove_sync covers the
 * writes of a log left behind after a failed append.  Set TROVE_TEST_SEED
 * to vary the workload.
 */
#include "crashutil.h"

#include "engine/vfs.h"

enum { NKEYS = 64, NOPS = 400, MAXSUB = 5, VAL_MAX = 8192 };
#define HOUR_MS (3600 * 1000)

/* Workload steps. */
enum { W_PUT, W_DEL, W_BATCH, W_TTL_IN, W_TTL_AT, W_EXPIRED, W_SYNC };
/* Batch entries. */
enum { B_PUT, B_DEL, B_TTL };

typedef struct sub {
	int kind, key;
	int64_t exp;
} sub;

typedef struct wop {
	int kind, key, nsub;
	int64_t exp; /* W_TTL_AT, W_EXPIRED: the absolute expiry */
	sub subs[MAXSUB];
} wop;

/* A key's state: absent, or holding the value of step widx with expiry
 * exp (0: none; -1: some time in the future, for W_TTL_IN). */
typedef struct kstate {
	int present;
	int widx;
	int64_t exp;
} kstate;

typedef struct suite {
	char *base;  /* scratch directory, durable */
	char *dbdir; /* base/db, remade for each crash */
	wop ops[NOPS];
} suite;

/* Totals of one crash loop, for the closing line. */
typedef struct tally {
	int runs, crashed, in_open;
	uint64_t acked, lost, inflight, inflight_found;
} tally;

/* ---- The workload ------------------------------------------------------------- */

static void key_name(char *buf, size_t cap, int key)
{
	snprintf(buf, cap, "key%02d", key);
}

/* The value step widx writes to key: a header naming both, then 1000 to
 * 7999 pseudo-random letters that depend on both too. */
static size_t make_value(char *buf, int key, int widx)
{
	uint64_t h = ((uint64_t)(unsigned)widx << 32 | (unsigned)key) * 0x9e3779b97f4a7c15ull;
	int n = snprintf(buf, VAL_MAX, "key%02d|%d|", key, widx);
	size_t len = (size_t)n + 1000 + (size_t)(h >> 40) % 7000;
	for (size_t i = (size_t)n; i < len; i++) {
		h = h * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (char)('a' + (h >> 33) % 26);
	}
	return len;
}

static void make_workload(wop *ops, uint64_t seed)
{
	tu_rng r;
	tu_rng_seed(&r, seed);
	/* Absolute expiries an hour or more away stay in the future for the
	 * whole test; past ones make the key expire at once. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000;
	for (int i = 0; i < NOPS; i++) {
		wop *op = &ops[i];
		memset(op, 0, sizeof *op);
		uint64_t p = tu_below(&r, 100);
		op->key = (int)tu_below(&r, NKEYS);
		op->kind = i % 40 == 39 ? W_SYNC
		           : p < 50     ? W_PUT
		           : p < 60     ? W_DEL
		           : p < 75     ? W_BATCH
		           : p < 83     ? W_TTL_IN
		           : p < 91     ? W_TTL_AT
		                        : W_EXPIRED;
		if (op->kind == W_TTL_AT)
			op->exp = now + HOUR_MS + (int64_t)tu_below(&r, HOUR_MS);
		if (op->kind == W_EXPIRED)
			op->exp = now - 1000 - (int64_t)tu_below(&r, HOUR_MS);
		if (op->kind != W_BATCH)
			continue;
		op->nsub = 2 + (int)tu_below(&r, MAXSUB - 1);
		for (int j = 0; j < op->nsub; j++) {
			uint64_t q = tu_below(&r, 10);
			op->subs[j].kind = q < 6 ? B_PUT : q < 8 ? B_DEL : B_TTL;
			op->subs[j].key = (int)tu_below(&r, NKEYS);
			if (op->subs[j].kind == B_TTL)
				op->subs[j].exp = now + HOUR_MS + (int64_t)tu_below(&r, HOUR_MS);
		}
	}
}

static int add_sub(trove_batch *b, const sub *s, int widx)
{
	char key[16], val[VAL_MAX];
	key_name(key, sizeof key, s->key);
	if (s->kind == B_DEL)
		return trove_batch_del(b, key, strlen(key));
	size_t vlen = make_value(val, s->key, widx);
	return trove_batch_put_ttl(b, key, strlen(key), val, vlen, s->kind == B_TTL ? s->exp : 0);
}

/* Runs step i; returns its status. */
static int run_step(trove_db *db, trove_batch *b, const wop *op, int i)
{
	char key[16], val[VAL_MAX];
	key_name(key, sizeof key, op->key);
	size_t klen = strlen(key), vlen = make_value(val, op->key, i);
	trove_put_opts po = {.ttl_mode = TROVE_TTL_AT, .expire_at_ms = op->exp};
	switch (op->kind) {
	case W_PUT:
		return trove_put(db, key, klen, val, vlen);
	case W_DEL:
		return trove_del(db, key, klen);
	case W_TTL_IN:
		return trove_put_ttl(db, key, klen, val, vlen, HOUR_MS);
	case W_TTL_AT:
	case W_EXPIRED:
		return trove_put_ex(db, key, klen, val, vlen, &po, NULL);
	case W_SYNC:
		return trove_sync(db);
	default:
		trove_batch_clear(b);
		for (int j = 0; j < op->nsub; j++) {
			int rc = add_sub(b, &op->subs[j], i);
			if (rc)
				return rc;
		}
		return trove_write(db, b, NULL);
	}
}

/* Runs the workload until a step fails; returns how many succeeded, and
 * in *synced how many steps came before the last successful W_SYNC. */
static int run_workload(trove_db *db, const wop *ops, int *synced)
{
	trove_batch *b = trove_batch_new();
	assert_non_null(b);
	int i = 0;
	*synced = 0;
	for (; i < NOPS && run_step(db, b, &ops[i], i) == 0; i++)
		if (ops[i].kind == W_SYNC)
			*synced = i;
	trove_batch_free(b);
	return i;
}

/* ---- The model ----------------------------------------------------------------------- */

static void model_step(kstate *m, const wop *op, int i)
{
	switch (op->kind) {
	case W_PUT:
		m[op->key] = (kstate){1, i, 0};
		break;
	case W_DEL:
	case W_EXPIRED:
		m[op->key] = (kstate){0, 0, 0};
		break;
	case W_TTL_IN:
		m[op->key] = (kstate){1, i, -1};
		break;
	case W_TTL_AT:
		m[op->key] = (kstate){1, i, op->exp};
		break;
	case W_SYNC:
		break;
	default:
		for (int j = 0; j < op->nsub; j++) {
			const sub *s = &op->subs[j];
			m[s->key] = s->kind == B_DEL
			                    ? (kstate){0, 0, 0}
			                    : (kstate){1, i, s->kind == B_TTL ? s->exp : 0};
		}
	}
}

static int same_state(const kstate *model, const kstate *db)
{
	for (int k = 0; k < NKEYS; k++) {
		const kstate *m = &model[k], *d = &db[k];
		if (m->present != d->present)
			return 0;
		if (m->present &&
		    (m->widx != d->widx || (m->exp < 0 ? d->exp <= 0 : m->exp != d->exp)))
			return 0;
	}
	return 1;
}

/* The first prefix length in [lo, hi] whose model state db holds, or -1. */
static int matching_prefix(const wop *ops, const kstate *db, int lo, int hi)
{
	kstate m[NKEYS];
	memset(m, 0, sizeof m);
	for (int j = 0; j <= hi; j++) {
		if (j >= lo && same_state(m, db))
			return j;
		if (j < NOPS)
			model_step(m, &ops[j], j);
	}
	return -1;
}

/* Reads every key of db into st, failing on a value no step wrote. */
static void read_state(trove_db *db, kstate *st)
{
	char key[16], expect[VAL_MAX];
	for (int k = 0; k < NKEYS; k++) {
		key_name(key, sizeof key, k);
		void *val;
		size_t len;
		trove_meta meta;
		int rc = trove_get_ex(db, NULL, key, strlen(key), &val, &len, &meta);
		st[k] = (kstate){0, 0, 0};
		if (rc == TROVE_ENOTFOUND)
			continue;
		assert_int_equal(rc, 0);
		int widx = -1, kk = -1;
		if (sscanf(val, "key%d|%d|", &kk, &widx) != 2 || kk != k || widx < 0 ||
		    widx >= NOPS || len != make_value(expect, k, widx) || memcmp(val, expect, len))
			fail_msg("%s holds a value no write gave it (%zu bytes: %.24s)", key, len,
			         (const char *)val);
		trove_free(val);
		st[k] = (kstate){1, widx, meta.expire_at_ms};
	}
}

/* Checks the reopened database: intact, counted right, no stray keys, and
 * in the state of a prefix of the workload of length in [lo, hi], which
 * it returns. */
static int check_db(trove_db *db, const wop *ops, int lo, int hi, const char *what)
{
	kstate st[NKEYS];
	read_state(db, st);
	uint64_t live = 0;
	for (int k = 0; k < NKEYS; k++)
		live += (uint64_t)st[k].present;
	trove_cursor *c;
	assert_int_equal(trove_cursor_open(db, NULL, &c), 0);
	for (int rc = trove_cursor_first(c); rc == 0; rc = trove_cursor_next(c)) {
		size_t klen;
		const char *key = trove_cursor_key(c, &klen);
		char got[16] = {0}, name[16] = {0};
		memcpy(got, key, klen < sizeof got - 1 ? klen : sizeof got - 1);
		int k = -1;
		if (sscanf(got, "key%d", &k) == 1 && k >= 0 && k < NKEYS)
			key_name(name, sizeof name, k);
		if (k < 0 || k >= NKEYS || klen != strlen(name) || strcmp(got, name) != 0 ||
		    !st[k].present)
			fail_msg("%s: a key that should not be there: %.*s", what, (int)klen, key);
	}
	trove_cursor_close(c);
	assert_int_equal(cu_check_db(db, what), live);
	int j = matching_prefix(ops, st, lo, hi);
	if (j < 0) {
		int any = matching_prefix(ops, st, 0, NOPS);
		fail_msg("%s: the state is not that after %d to %d steps (%s %d)", what, lo, hi,
		         any < 0 ? "it matches no prefix at all" : "it matches the prefix of", any);
	}
	return j;
}

/* ---- Crashing ------------------------------------------------------------------------- */

static void suite_options(trove_options *o, trove_sync_mode mode)
{
	trove_options_init(o);
	o->sync = mode;
	o->sync_period_ms = 2;
	o->memory_budget = 1 << 20;
}

/* A fresh database directory, created and made durable through the fault
 * VFS so that its power loss keeps it. */
static tv_fault *fresh_fault(suite *s)
{
	tu_rmrf(s->dbdir);
	tv_fault *f = tv_fault_new(NULL);
	assert_non_null(f);
	trove_vfs *v = tv_fault_vfs(f);
	assert_int_equal(v->mkdir(v, s->dbdir), 0);
	assert_int_equal(v->sync_dir(v, s->base), 0);
	return f;
}

/* Runs the workload once without faults; returns the fsyncs it made. */
static uint64_t count_syncs(suite *s, trove_sync_mode mode, uint64_t *writes)
{
	tv_fault *f = fresh_fault(s);
	uint64_t syncs0 = tv_fault_count(f, TV_FAULT_SYNC);
	uint64_t writes0 = tv_fault_count(f, TV_FAULT_WRITE);
	trove_options o;
	suite_options(&o, mode);
	o.vfs = tv_fault_vfs(f);
	trove_db *db;
	assert_int_equal(trove_open(s->dbdir, &o, &db), 0);
	int synced;
	assert_int_equal(run_workload(db, s->ops, &synced), NOPS);
	trove_stats st;
	assert_int_equal(trove_get_stats(db, &st), 0);
	assert_true(st.flushes > 1);
	assert_true(st.compactions > 0);
	assert_int_equal(trove_close(db), 0);
	uint64_t n = tv_fault_count(f, TV_FAULT_SYNC) - syncs0;
	*writes = tv_fault_count(f, TV_FAULT_WRITE) - writes0;
	tv_fault_free(f);
	return n;
}

/* One crash: the nth call of kind op kills the machine; then power loss
 * (torn tails if tear), reopen with POSIX files and check.  Under
 * TROVE_SYNC_ALWAYS the state must be exactly the acknowledged writes,
 * plus perhaps the failed one; otherwise any prefix from the last
 * successful trove_sync on. */
static void crash_once(suite *s, trove_sync_mode mode, tv_fault_op op, uint64_t nth, int tear,
                       tally *t)
{
	tv_fault *f = fresh_fault(s);
	tv_fault_arm(f, op, nth, TV_FAULT_CRASH, 0);
	trove_options o;
	suite_options(&o, mode);
	o.vfs = tv_fault_vfs(f);
	trove_db *db;
	int acked = 0, synced = 0;
	if (trove_open(s->dbdir, &o, &db) == 0) {
		acked = run_workload(db, s->ops, &synced);
		trove_close(db); /* fails once crashed: nothing more reaches the disk */
	} else {
		assert_true(tv_fault_crashed(f));
		t->in_open++;
	}
	t->runs++;
	t->crashed += tv_fault_crashed(f);
	assert_int_equal(tv_fault_power_loss(f, tear, nth * 2 + (uint64_t)tear), 0);
	tv_fault_free(f);

	suite_options(&o, mode);
	char said[CU_SAID_LEN] = "";
	o.log = cu_note_log;
	o.log_arg = said;
	int rc = trove_open(s->dbdir, &o, &db);
	char what[1400];
	snprintf(what, sizeof what,
	         "sync mode %d, crash at %s %llu, tear %d, %d acknowledged (engine: %s)", (int)mode,
	         op == TV_FAULT_SYNC ? "fsync" : "append", (unsigned long long)nth, tear, acked,
	         said);
	if (rc)
		fail_msg("%s: the reopen failed: %s", what, trove_strerror(rc));
	int inflight = acked < NOPS;
	int lo = mode == TROVE_SYNC_ALWAYS ? acked : synced;
	int j = check_db(db, s->ops, lo, acked + inflight, what);
	/* The recovered database takes writes again. */
	assert_int_equal(trove_put(db, "after", 5, "crash", 5), 0);
	assert_int_equal(trove_close(db), 0);
	t->acked += (uint64_t)acked;
	t->lost += (uint64_t)(acked > j ? acked - j : 0);
	t->inflight += (uint64_t)inflight;
	t->inflight_found += (uint64_t)(j > acked);
}

static void print_tally(const char *name, const tally *t, uint64_t points, uint64_t t0)
{
	printf("# powerloss %s: %d power losses (%llu crash points; %d crashed, %d of them in "
	       "trove_open), %llu acknowledged writes checked, %llu of them not kept, "
	       "%llu failed writes of which %llu kept; %.1f s\n",
	       name, t->runs, (unsigned long long)points, t->crashed, t->in_open,
	       (unsigned long long)t->acked, (unsigned long long)t->lost,
	       (unsigned long long)t->inflight, (unsigned long long)t->inflight_found,
	       (double)(cu_now_us() - t0) / 1e6);
}

/* ---- The tests -------------------------------------------------------------------------- */

/* The scratch directory and the workload, shared by every test. */
static int group_setup(void **state)
{
	suite *s = calloc(1, sizeof *s);
	assert_non_null(s);
	s->base = cu_tmpdir("powerloss");
	assert_non_null(s->base);
	s->dbdir = tu_join(s->base, "db");
	const char *env = getenv("TROVE_TEST_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : 1;
	printf("# powerloss: workload seed %llu (set TROVE_TEST_SEED to change)\n",
	       (unsigned long long)seed);
	make_workload(s->ops, seed);
	*state = s;
	return 0;
}

static int group_teardown(void **state)
{
	suite *s = *state;
	tu_rmrf(s->base);
	free(s->base);
	free(s->dbdir);
	free(s);
	return 0;
}

static int teardown(void **state)
{
	suite *s = *state;
	alarm(0);
	tu_rmrf(s->dbdir);
	return 0;
}

/* TROVE_SYNC_ALWAYS: every acknowledged write survives a power loss at
 * every fsync, flushes' and compactions' included. */
static void test_sync_always_every_fsync(void **state)
{
	suite *s = *state;
	uint64_t t0 = cu_now_us(), writes;
	cu_watchdog("sync always: counting run", 60);
	uint64_t n = count_syncs(s, TROVE_SYNC_ALWAYS, &writes);
	tally t = {0};
	for (uint64_t k = 1; k <= n; k++) {
		cu_watchdog("sync always: one crash", 60);
		crash_once(s, TROVE_SYNC_ALWAYS, TV_FAULT_SYNC, k, (int)(k & 1), &t);
	}
	print_tally("sync=always", &t, n, t0);
}

/* The relaxed policies: after a power loss the database opens and holds
 * a prefix of the writes at least as long as the last trove_sync. */
static void relaxed(suite *s, trove_sync_mode mode, const char *name)
{
	uint64_t t0 = cu_now_us(), writes;
	cu_watchdog(name, 60);
	uint64_t n = count_syncs(s, mode, &writes);
	tally t = {0};
	for (uint64_t k = 1; k <= n; k++) {
		cu_watchdog(name, 60);
		crash_once(s, mode, TV_FAULT_SYNC, k, (int)(k & 1), &t);
	}
	for (uint64_t k = 1; k <= writes; k += 10) {
		cu_watchdog(name, 60);
		crash_once(s, mode, TV_FAULT_WRITE, k, (int)((k / 10) & 1), &t);
	}
	print_tally(name, &t, n + (writes + 9) / 10, t0);
}

static void test_sync_none_prefix(void **state)
{
	relaxed(*state, TROVE_SYNC_NONE, "sync=none");
}

static void test_sync_periodic_prefix(void **state)
{
	relaxed(*state, TROVE_SYNC_PERIODIC, "sync=periodic");
}

/* trove_open creates the directory and makes that durable: an
 * acknowledged write in a database it just created survives power loss. */
static void test_open_creates_durable_directory(void **state)
{
	suite *s = *state;
	cu_watchdog("open creates directory", 60);
	tu_rmrf(s->dbdir);
	tv_fault *f = tv_fault_new(NULL);
	assert_non_null(f);
	trove_options o;
	suite_options(&o, TROVE_SYNC_ALWAYS);
	o.vfs = tv_fault_vfs(f);
	trove_db *db;
	assert_int_equal(trove_open(s->dbdir, &o, &db), 0);
	assert_int_equal(trove_put(db, "k", 1, "v", 1), 0);
	assert_int_equal(trove_close(db), 0);
	assert_int_equal(tv_fault_power_loss(f, 0, 1), 0);
	tv_fault_free(f);
	suite_options(&o, TROVE_SYNC_ALWAYS);
	o.create_if_missing = 0;
	assert_int_equal(trove_open(s->dbdir, &o, &db), 0);
	void *v;
	size_t len;
	assert_int_equal(trove_get(db, "k", 1, &v, &len), 0);
	assert_int_equal(len, 1);
	trove_free(v);
	assert_int_equal(trove_close(db), 0);
}

/* TROVE_SYNC_PERIODIC: a power loss loses at most about sync_period_ms
 * of writes - here none of those acknowledged 50 periods before it. */
static void test_periodic_bounds_the_loss(void **state)
{
	suite *s = *state;
	cu_watchdog("periodic bound", 60);
	tv_fault *f = fresh_fault(s);
	trove_options o;
	suite_options(&o, TROVE_SYNC_PERIODIC);
	o.sync_period_ms = 10;
	o.vfs = tv_fault_vfs(f);
	trove_db *db;
	assert_int_equal(trove_open(s->dbdir, &o, &db), 0);
	char key[16], val[VAL_MAX];
	for (int k = 0; k < NKEYS; k++) {
		key_name(key, sizeof key, k);
		size_t vlen = make_value(val, k, 0);
		assert_int_equal(trove_put(db, key, strlen(key), val, vlen), 0);
	}
	usleep(500 * 1000);
	/* Power goes in the middle of the next append. */
	tv_fault_arm(f, TV_FAULT_WRITE, 1, TV_FAULT_CRASH, 0);
	assert_int_not_equal(trove_put(db, "late", 4, "x", 1), 0);
	trove_close(db);
	assert_int_equal(tv_fault_power_loss(f, 1, 7), 0);
	tv_fault_free(f);
	suite_options(&o, TROVE_SYNC_PERIODIC);
	assert_int_equal(trove_open(s->dbdir, &o, &db), 0);
	kstate st[NKEYS];
	read_state(db, st);
	for (int k = 0; k < NKEYS; k++)
		assert_true(st[k].present && st[k].widx == 0 && st[k].exp == 0);
	assert_int_equal(trove_exists(db, "late", 4), TROVE_ENOTFOUND);
	assert_int_equal(cu_check_db(db, "periodic bound"), NKEYS);
	assert_int_equal(trove_close(db), 0);
}

/* A power loss in the first sync of a new log - its header and first
 * record go to disk together - tears that record, and perhaps the header:
 * either way a torn tail, never corruption.  Small records make the
 * header a large part of what tears; 32 seeds place the damage. */
static void test_torn_first_record_of_a_log(void **state)
{
	suite *s = *state;
	for (uint64_t seed = 1; seed <= 32; seed++) {
		cu_watchdog("torn first record", 60);
		tv_fault *f = fresh_fault(s);
		trove_options o;
		suite_options(&o, TROVE_SYNC_ALWAYS);
		o.vfs = tv_fault_vfs(f);
		trove_db *db;
		assert_int_equal(trove_open(s->dbdir, &o, &db), 0);
		tv_fault_arm(f, TV_FAULT_SYNC, 1, TV_FAULT_CRASH, 0);
		assert_int_equal(trove_put(db, "k", 1, "v", 1), TROVE_EIO);
		trove_close(db);
		assert_int_equal(tv_fault_power_loss(f, 1, seed), 0);
		tv_fault_free(f);
		suite_options(&o, TROVE_SYNC_ALWAYS);
		char said[CU_SAID_LEN] = "";
		o.log = cu_note_log;
		o.log_arg = said;
		int rc = trove_open(s->dbdir, &o, &db);
		if (rc)
			fail_msg("seed %llu: the reopen failed: %s (engine: %s)",
			         (unsigned long long)seed, trove_strerror(rc), said);
		assert_int_equal(cu_check_db(db, "torn first record"), 0);
		assert_int_equal(trove_close(db), 0);
	}
}

/* TROVE_SYNC_NONE: a successful trove_sync makes every write acknowledged
 * before it durable, also those in a log the engine had to leave after a
 * failed append (a short write, as a full disk gives). */
static void test_sync_covers_log_left_after_failed_append(void **state)
{
	suite *s = *state;
	cu_watchdog("sync covers older logs", 60);
	tv_fault *f = fresh_fault(s);
	trove_options o;
	suite_options(&o, TROVE_SYNC_NONE);
	o.vfs = tv_fault_vfs(f);
	trove_db *db;
	assert_int_equal(trove_open(s->dbdir, &o, &db), 0);
	char key[16], val[VAL_MAX];
	for (int k = 0; k < NKEYS / 2; k++) {
		if (k == NKEYS / 4) {
			tv_fault_arm(f, TV_FAULT_WRITE, 1, TV_FAULT_SHORT, 0);
			assert_int_equal(trove_put(db, "short", 5, "x", 1), TROVE_ENOSPC);
		}
		key_name(key, sizeof key, k);
		size_t vlen = make_value(val, k, 0);
		assert_int_equal(trove_put(db, key, strlen(key), val, vlen), 0);
	}
	assert_int_equal(trove_sync(db), 0);
	/* The power goes at the next sync. */
	tv_fault_arm(f, TV_FAULT_SYNC, 1, TV_FAULT_CRASH, 0);
	trove_close(db);
	assert_int_equal(tv_fault_power_loss(f, 0, 3), 0);
	tv_fault_free(f);
	suite_options(&o, TROVE_SYNC_NONE);
	assert_int_equal(trove_open(s->dbdir, &o, &db), 0);
	kstate st[NKEYS];
	read_state(db, st);
	for (int k = 0; k < NKEYS; k++)
		if (st[k].present != (k < NKEYS / 2))
			fail_msg("key%02d is %s after trove_sync and a power loss", k,
			         st[k].present ? "there" : "missing");
	assert_int_equal(trove_exists(db, "short", 5), TROVE_ENOTFOUND);
	assert_int_equal(cu_check_db(db, "sync after a failed append"), NKEYS / 2);
	assert_int_equal(trove_close(db), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_open_creates_durable_directory, teardown),
	        cmocka_unit_test_teardown(test_sync_always_every_fsync, teardown),
	        cmocka_unit_test_teardown(test_torn_first_record_of_a_log, teardown),
	        cmocka_unit_test_teardown(test_periodic_bounds_the_loss, teardown),
	        cmocka_unit_test_teardown(test_sync_covers_log_left_after_failed_append, teardown),
	        cmocka_unit_test_teardown(test_sync_none_prefix, teardown),
	        cmocka_unit_test_teardown(test_sync_periodic_prefix, teardown),
	};
	return cmocka_run_group_tests_name("crash_powerloss", tests, group_setup, group_teardown);
}
