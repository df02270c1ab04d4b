/*
 * crash_sigkill.c - acknowledged writes survive SIGKILL at any moment.
 *
 * A child process writes with TROVE_SYNC_ALWAYS (then, in a second test,
 * with TROVE_SYNC_NONE, whose log is appended through a shared mapping
 * and promises the same against a killed process) and a 1 MiB memory budget
 * (so flushes and compactions run all the time): single puts and deletes,
 * and batches that put (or delete) the five keys b<g>_0..b<g>_4 together
 * with one value.  Through a pipe it tells the parent what it is about to
 * write and, once trove_put/trove_del/trove_write returned 0, that the
 * write was acknowledged.  The parent kills it with SIGKILL after a random
 * delay - most very short, some only once thousands of writes went through
 * and a compaction finished - reopens the database and checks that:
 *   - every acknowledged write is there with its exact value, and an older
 *     value never resurfaces (values name their key, round and write);
 *   - the only write that may also be there is the one in flight;
 *   - a batch is there entirely or not at all;
 *   - no key appears that was never written;
 *   - trove_verify finds nothing and trove_count matches a cursor scan.
 * Then it starts the next child on the same directory, TROVE_CRASH_ITERS
 * times (default 300).
 */
#include "crashutil.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

enum { NSINGLE = 200, NGROUP = 40, GROUP = 5, NSLOT = NSINGLE + NGROUP * GROUP };
enum { VAL_MAX = 2048 };

/* What a write does; idx is a key for the first two, a group for batches. */
enum { OP_PUT, OP_DEL, OP_BPUT, OP_BDEL };
/* Messages from the child. */
enum { M_INTENT, M_ACK, M_STATS, M_FAIL };

/* One message; smaller than PIPE_BUF, so each write(2) of it is atomic. */
typedef struct msg {
	uint32_t kind, op, idx, wno;
	uint64_t a, b; /* M_STATS: flushes, compactions; M_FAIL: the error */
} msg;

/* A key's state: absent, or holding the value of write wno of round iter. */
typedef struct slot {
	int present;
	uint32_t iter, wno;
} slot;

/* The parent's view: the model of acknowledged writes and the write in
 * flight, fed by the child's messages. */
typedef struct model {
	slot acked[NSLOT];
	int has_pending;
	msg pending;
	uint32_t iter;
	uint64_t acks;                 /* this round */
	uint64_t flushes, compactions; /* this round's child, as last reported */
	char buf[sizeof(msg) * 64];
	size_t buffered;
} model;

/* ---- Keys and values ---------------------------------------------------- */

static void slot_key(char *buf, size_t cap, int s)
{
	if (s < NSINGLE)
		snprintf(buf, cap, "k%03d", s);
	else
		snprintf(buf, cap, "b%02d_%d", (s - NSINGLE) / GROUP, (s - NSINGLE) % GROUP);
}

/* The name a value carries: its key, or its batch's group. */
static void slot_owner(char *buf, size_t cap, int s)
{
	if (s < NSINGLE)
		slot_key(buf, cap, s);
	else
		snprintf(buf, cap, "b%02d", (s - NSINGLE) / GROUP);
}

/* The value write wno of round iter gives owner: a header naming all three,
 * then 0 to 1599 letters that depend on them too. */
static size_t make_value(char *buf, const char *owner, uint32_t iter, uint32_t wno)
{
	uint64_t h = ((uint64_t)iter << 32 | wno) * 0x9e3779b97f4a7c15ull;
	int n = snprintf(buf, VAL_MAX, "%s|%u|%u|", owner, iter, wno);
	size_t len = (size_t)n + (size_t)(h >> 40) % 1600;
	for (size_t i = (size_t)n; i < len; i++) {
		h = h * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (char)('a' + (h >> 33) % 26);
	}
	return len;
}

/* The slots write m touches: [*first, *first + *n). */
static void touched(const msg *m, int *first, int *n)
{
	int single = m->op == OP_PUT || m->op == OP_DEL;
	*first = single ? (int)m->idx : NSINGLE + (int)m->idx * GROUP;
	*n = single ? 1 : GROUP;
}

static void apply(slot *slots, const msg *m, uint32_t iter)
{
	int first, n;
	touched(m, &first, &n);
	int put = m->op == OP_PUT || m->op == OP_BPUT;
	for (int s = first; s < first + n; s++)
		slots[s] = (slot){put, put ? iter : 0, put ? m->wno : 0};
}

/* The sync mode of the test being run. */
static trove_sync_mode sync_mode = TROVE_SYNC_ALWAYS;

static void crash_options(trove_options *o)
{
	trove_options_init(o);
	o->sync = sync_mode;
	o->memory_budget = 1 << 20;
}

/* ---- The child ---------------------------------------------------------------- */

static void send_msg(int fd, uint32_t kind, uint32_t op, uint32_t idx, uint32_t wno, uint64_t a,
                     uint64_t b)
{
	msg m = {kind, op, idx, wno, a, b};
	if (write(fd, &m, sizeof m) != (ssize_t)sizeof m)
		_exit(4);
}

/* Announces one random write, then makes it; returns its status. */
static int child_write(trove_db *db, trove_batch *b, tu_rng *r, uint32_t iter, uint32_t wno, int fd)
{
	uint64_t pick = tu_below(r, 100);
	uint32_t op = pick < 65 ? OP_PUT : pick < 75 ? OP_DEL : pick < 97 ? OP_BPUT : OP_BDEL;
	uint32_t idx = (uint32_t)tu_below(r, op == OP_PUT || op == OP_DEL ? NSINGLE : NGROUP);
	send_msg(fd, M_INTENT, op, idx, wno, 0, 0);
	char key[32], owner[32], val[VAL_MAX];
	int first = op == OP_PUT || op == OP_DEL ? (int)idx : NSINGLE + (int)idx * GROUP;
	slot_owner(owner, sizeof owner, first);
	size_t vlen = make_value(val, owner, iter, wno);
	if (op == OP_PUT || op == OP_DEL) {
		slot_key(key, sizeof key, first);
		if (op == OP_DEL)
			return trove_del(db, key, strlen(key));
		return trove_put(db, key, strlen(key), val, vlen);
	}
	trove_batch_clear(b);
	for (int j = 0; j < GROUP; j++) {
		slot_key(key, sizeof key, first + j);
		int rc = op == OP_BPUT ? trove_batch_put(b, key, strlen(key), val, vlen)
		                       : trove_batch_del(b, key, strlen(key));
		if (rc)
			return rc;
	}
	return trove_write(db, b, NULL);
}

/* Writes until killed; never returns. */
static void child_main(const char *dir, uint32_t iter, uint64_t seed, int fd)
{
	/* Die with the parent even if it fails between two kills. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	trove_options o;
	crash_options(&o);
	trove_db *db;
	int rc = trove_open(dir, &o, &db);
	trove_batch *b = rc ? NULL : trove_batch_new();
	if (!rc && !b)
		rc = TROVE_ENOMEM;
	tu_rng r;
	tu_rng_seed(&r, seed);
	for (uint32_t wno = 1; !rc; wno++) {
		rc = child_write(db, b, &r, iter, wno, fd);
		if (rc)
			break;
		send_msg(fd, M_ACK, 0, 0, wno, 0, 0);
		trove_stats st;
		if (wno % 128 == 0 && trove_get_stats(db, &st) == 0)
			send_msg(fd, M_STATS, 0, 0, wno, st.flushes, st.compactions);
	}
	send_msg(fd, M_FAIL, 0, 0, 0, (uint64_t)(int64_t)rc, 0);
	_exit(3);
}

/* ---- The parent: following the child ---------------------------------------------- */

static void on_msg(model *md, const msg *m)
{
	switch (m->kind) {
	case M_INTENT:
		assert_false(md->has_pending);
		md->pending = *m;
		md->has_pending = 1;
		break;
	case M_ACK:
		assert_true(md->has_pending);
		assert_int_equal(m->wno, md->pending.wno);
		apply(md->acked, &md->pending, md->iter);
		md->has_pending = 0;
		md->acks++;
		break;
	case M_STATS:
		md->flushes = m->a;
		md->compactions = m->b;
		break;
	default:
		fail_msg("round %u: the child's write failed: %s", md->iter,
		         trove_strerror((int)(int64_t)m->a));
	}
}

/* Reads what the child sent within timeout_us (-1: wait for data); returns
 * 0 at end of file (the child is gone), 1 otherwise. */
static int pump(int fd, model *md, int64_t timeout_us)
{
	struct pollfd p = {fd, POLLIN, 0};
	struct timespec ts = {timeout_us / 1000000, (timeout_us % 1000000) * 1000};
	int ready = ppoll(&p, 1, timeout_us < 0 ? NULL : &ts, NULL);
	if (ready < 0)
		assert_int_equal(errno, EINTR);
	if (ready <= 0)
		return 1;
	ssize_t n = read(fd, md->buf + md->buffered, sizeof md->buf - md->buffered);
	if (n < 0) {
		assert_int_equal(errno, EINTR);
		return 1;
	}
	if (n == 0)
		return 0;
	md->buffered += (size_t)n;
	size_t used = 0;
	for (; md->buffered - used >= sizeof(msg); used += sizeof(msg)) {
		msg m;
		memcpy(&m, md->buf + used, sizeof m);
		on_msg(md, &m);
	}
	memmove(md->buf, md->buf + used, md->buffered - used);
	md->buffered -= used;
	return 1;
}

/* How long round iter lets its child run.  One round in ten is long: it
 * waits for thousands of acknowledged writes and a finished compaction,
 * so that the kills that follow land in busy flushes and compactions.
 * The others wait up to 2 ms (half), 20 ms or 100 ms. */
static void let_child_run(int fd, model *md, tu_rng *r)
{
	uint64_t start = cu_now_us(), delay;
	if (md->iter % 10 == 0) {
		while ((md->acks < 2000 || md->compactions == 0) &&
		       cu_now_us() - start < 10 * 1000000u && pump(fd, md, 1000))
			;
		start = cu_now_us();
		delay = tu_below(r, 20000);
	} else {
		uint64_t pick = tu_below(r, 100);
		delay = pick < 50   ? tu_below(r, 2000)
		        : pick < 80 ? 2000 + tu_below(r, 18000)
		                    : 20000 + tu_below(r, 80000);
	}
	for (uint64_t now = start; now - start < delay; now = cu_now_us())
		if (!pump(fd, md, (int64_t)(delay - (now - start))))
			break;
}

/* ---- The parent: checking the reopened database ------------------------------------ */

/* Whether key slot s in db holds exactly state want. */
static int holds(trove_db *db, int s, const slot *want)
{
	char key[32], owner[32], expect[VAL_MAX];
	slot_key(key, sizeof key, s);
	void *val;
	size_t len;
	int rc = trove_get(db, key, strlen(key), &val, &len);
	if (rc == TROVE_ENOTFOUND)
		return !want->present;
	assert_int_equal(rc, 0);
	int same = 0;
	if (want->present) {
		slot_owner(owner, sizeof owner, s);
		size_t elen = make_value(expect, owner, want->iter, want->wno);
		same = len == elen && memcmp(val, expect, len) == 0;
	}
	trove_free(val);
	return same;
}

/* Decides whether the write in flight at the kill is in db, all of it or
 * none of it, and folds it into the model if so.  Returns 1 if it is
 * there (a delete of absent keys counts as not there). */
static int settle_pending(trove_db *db, model *md)
{
	if (!md->has_pending)
		return 0;
	slot after[NSLOT];
	memcpy(after, md->acked, sizeof after);
	apply(after, &md->pending, md->iter);
	int first, n, old = 0, new = 0;
	touched(&md->pending, &first, &n);
	for (int s = first; s < first + n; s++) {
		old += holds(db, s, &md->acked[s]);
		new += holds(db, s, &after[s]);
	}
	if (old != n && new != n)
		fail_msg("round %u: write %u (op %u) is partly there: %d of %d keys new, %d old",
		         md->iter, md->pending.wno, md->pending.op, new, n, old);
	md->has_pending = 0;
	if (old == n)
		return 0;
	memcpy(md->acked, after, sizeof after);
	return 1;
}

/* The slot of a stored key, failing on any key never written. */
static int key_slot(const char *key, size_t klen)
{
	char name[32], again[32];
	assert_true(klen > 0 && klen < sizeof name);
	memcpy(name, key, klen);
	name[klen] = 0;
	unsigned a = 0, b = 0;
	int s = -1;
	if (sscanf(name, "k%u", &a) == 1 && a < NSINGLE)
		s = (int)a;
	else if (sscanf(name, "b%u_%u", &a, &b) == 2 && a < NGROUP && b < GROUP)
		s = NSINGLE + (int)(a * GROUP + b);
	if (s >= 0)
		slot_key(again, sizeof again, s);
	if (s < 0 || strcmp(again, name) != 0)
		fail_msg("a key that was never written: \"%s\"", name);
	return s;
}

/* Reopens the database and checks it against the model (see the top). */
static void check_round(const char *dir, model *md, uint64_t *inflight_found)
{
	trove_options o;
	crash_options(&o);
	trove_db *db;
	assert_int_equal(trove_open(dir, &o, &db), 0);
	*inflight_found += (uint64_t)settle_pending(db, md);
	uint64_t live = 0;
	for (int s = 0; s < NSLOT; s++) {
		if (!holds(db, s, &md->acked[s]))
			fail_msg("round %u: key slot %d does not hold its acknowledged state "
			         "(present %d, round %u, write %u)",
			         md->iter, s, md->acked[s].present, md->acked[s].iter,
			         md->acked[s].wno);
		live += (uint64_t)md->acked[s].present;
	}
	/* A scan finds exactly the keys the model has, with their values. */
	trove_cursor *c;
	assert_int_equal(trove_cursor_open(db, NULL, &c), 0);
	uint64_t seen = 0;
	int rc;
	for (rc = trove_cursor_first(c); rc == 0; rc = trove_cursor_next(c), seen++) {
		size_t klen, vlen;
		const char *key = trove_cursor_key(c, &klen);
		const char *val = trove_cursor_value(c, &vlen);
		int s = key_slot(key, klen);
		assert_true(md->acked[s].present);
		char owner[32], expect[VAL_MAX];
		slot_owner(owner, sizeof owner, s);
		size_t elen = make_value(expect, owner, md->acked[s].iter, md->acked[s].wno);
		assert_int_equal(vlen, elen);
		assert_memory_equal(val, expect, vlen);
	}
	assert_int_equal(rc, TROVE_ENOTFOUND);
	trove_cursor_close(c);
	assert_int_equal(seen, live);
	char what[32];
	snprintf(what, sizeof what, "round %u", md->iter);
	assert_int_equal(cu_check_db(db, what), live);
	assert_int_equal(trove_close(db), 0);
}

/* ---- The test ------------------------------------------------------------------------ */

/* TROVE_CRASH_ITERS rounds of write, kill, reopen and check under mode. */
static void sigkill_rounds(trove_sync_mode mode, const char *name)
{
	sync_mode = mode;
	int iters = cu_env_count("TROVE_CRASH_ITERS", 300);
	char *dir = cu_tmpdir(name);
	assert_non_null(dir);
	tu_rng r;
	tu_rng_seed(&r, tu_seed(name));
	model *md = calloc(1, sizeof *md);
	assert_non_null(md);
	uint64_t acks = 0, flushes = 0, compactions = 0, inflight = 0, inflight_found = 0;
	uint64_t t0 = cu_now_us();
	for (int i = 0; i < iters; i++) {
		cu_watchdog("sigkill: a round (run, kill, reopen, check)", 60);
		md->iter = (uint32_t)i;
		md->acks = md->flushes = md->compactions = 0;
		md->buffered = 0;
		int fds[2];
		assert_int_equal(pipe(fds), 0);
		uint64_t seed = tu_rand(&r);
		fflush(stdout);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child_main(dir, md->iter, seed, fds[1]);
		}
		close(fds[1]);
		let_child_run(fds[0], md, &r);
		kill(pid, SIGKILL);
		while (pump(fds[0], md, -1))
			;
		close(fds[0]);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("round %d: the child ended by itself (status %#x)", i, status);
		acks += md->acks;
		flushes += md->flushes;
		compactions += md->compactions;
		inflight += (uint64_t)md->has_pending;
		check_round(dir, md, &inflight_found);
	}
	alarm(0);
	double secs = (double)(cu_now_us() - t0) / 1e6;
	printf("# %s: %d crashes, %llu acknowledged writes verified, %llu writes in flight "
	       "at the kill (%llu of them survived); the children ran %llu flushes and %llu "
	       "compactions; %.1f s\n",
	       name, iters, (unsigned long long)acks, (unsigned long long)inflight,
	       (unsigned long long)inflight_found, (unsigned long long)flushes,
	       (unsigned long long)compactions, secs);
	assert_true(flushes > 0);
	assert_true(compactions > 0);
	free(md);
	tu_rmrf(dir);
	free(dir);
}

static void test_sigkill_rounds(void **state)
{
	(void)state;
	sigkill_rounds(TROVE_SYNC_ALWAYS, "sigkill");
}

static void test_sigkill_rounds_nosync(void **state)
{
	(void)state;
	sigkill_rounds(TROVE_SYNC_NONE, "sigkill-nosync");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sigkill_rounds),
	        cmocka_unit_test(test_sigkill_rounds_nosync),
	};
	return cmocka_run_group_tests_name("crash_sigkill", tests, NULL, NULL);
}
