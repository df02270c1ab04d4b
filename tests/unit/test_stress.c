/*
 * test_stress.c - many threads against one database, checked exactly.
 *
 * Four writers, four readers and a snapshot thread run mixed operations
 * for a bounded time (TROVE_STRESS_SECONDS, default 3) against one
 * database with a 1 MiB memory budget, so that flushes and compactions run
 * underneath all the time.  The check stays exact despite the concurrency:
 *
 *  - Each writer owns its keys ("w<i>-<n>", and groups "w<i>-g<g>.<j>")
 *    and keeps an exact model of them.  A value names its key and carries
 *    a stamp that only grows from one write of a key to the next.
 *  - Around every write the owner publishes, per key, the state before and
 *    after it and whether it is in flight.  A reader that loads that word
 *    before and after a read knows which states the read may return: at
 *    least the last write that had returned ("a read sees every write that
 *    returned before it started"), at most the last one that had started.
 *  - The five keys of a group are only ever written together, with one
 *    stamp, so every consistent view (a snapshot, trove_mget, a cursor)
 *    sees the five alike.
 *  - Shared counters are raised by every writer with trove_cas_version in
 *    a retry loop; a read of one lies between the successes counted before
 *    it and the attempts counted after it, and the end value is the number
 *    of successes (no lost update).
 *
 * Twice a second the writers pause at a checkpoint and the database is
 * compared with the models while readers and background work go on; at the
 * end it is compared again, before and after a reopen, and verified.  The
 * snapshot thread also walks every key of a fresh snapshot forward and
 * backward, seeks, ranges and lists it, shares it with the readers, and
 * walks some snapshots again later to see that compactions kept them whole.
 *
 * A failure prints its first few findings with the seed; TROVE_TEST_SEED
 * repeats the choices (not the thread interleaving).  A second, single-
 * threaded test replays one interleaving the stress test found.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/ikey.h"
#include "engine/iter.h"
#include "engine/memtable.h"
#include "testutil.h"
#include "trove.h"

enum {
	NWRITERS = 4,
	NREADERS = 4,
	NPLAIN = 1200,                    /* plain keys per writer */
	NGROUPS = 60,                     /* groups per writer */
	GSIZE = 5,                        /* keys per group, written together */
	NKEYS = NPLAIN + NGROUPS * GSIZE, /* keys per writer */
	NCOUNTERS = 4,                    /* shared counters "c0".."c3" */
	NALL = NCOUNTERS + NWRITERS * NKEYS,
	MAXPEND = 16, /* keys one write may touch */
	MAXDELTA = 8, /* live keys one write may add or remove */
	VALMAX = 512,
	KEYMAX = 16,
};

#define LONG_TTL_MS (3600 * 1000LL) /* no key expires during the test */
#define BUSY (1ull << 63)
#define STAMP_LIMIT (1u << 30)

/*
 * Keys have global indexes in key order: the counters first ("c" < "w"),
 * then writer 0's plain keys, its groups, writer 1's, and so on.  A
 * published word is BUSY | before << 32 | after, where a state is
 * stamp << 1 | present; a delete keeps the stamp of the value it removed.
 */

typedef struct mkey {
	uint32_t stamp; /* of the value (kept by a delete) */
	int present;
	int64_t exp_lo; /* expiry bounds; 0: none */
	int64_t exp_hi;
	uint64_t version; /* 0: not known */
} mkey;

typedef struct pend {
	int k;
	int changed;
	mkey n;
} pend;

struct stress;

typedef struct wstate {
	struct stress *s;
	pthread_t t;
	int id;
	tu_rng rng;
	uint32_t stamp;
	uint64_t maxver;
	int64_t live;
	mkey m[NKEYS];
	int npend;
	pend p[MAXPEND];
	trove_batch *b;
	uint64_t ops, expected_failures, batches, txns, group_ops, reads, incr, incr_retries;
	uint64_t incr_by[NCOUNTERS];
} wstate;

typedef struct rstate {
	struct stress *s;
	pthread_t t;
	int id;
	tu_rng rng;
	uint64_t last_ctr[NCOUNTERS];
	uint64_t ops;
} rstate;

/* What a view of keys [a, b) saw, and the published words around it. */
typedef struct view {
	int a, b;
	trove_snapshot *snap; /* NULL: a cursor's own snapshot */
	uint64_t snapver;
	uint64_t *p1, *p2; /* published words before and after */
	uint64_t *obs;     /* stamp (counter value) << 1 | found */
	int64_t *exp;      /* expiry seen by a cursor */
	int *order;        /* indexes in the order a forward walk met them */
	int n;
	uint64_t clo[NCOUNTERS], chi[NCOUNTERS];
} view;

typedef struct stress {
	trove_db *db;
	char *dir;
	trove_options o;
	double seconds;
	uint64_t seed;
	atomic_int stop;
	atomic_int failures;
	pthread_mutex_t print_mu;
	char names[NALL][KEYMAX];
	size_t nlen[NALL];
	_Atomic uint64_t pub[NALL];
	_Atomic uint64_t ctr_ok[NCOUNTERS], ctr_tried[NCOUNTERS];
	_Atomic int64_t live[NWRITERS];
	_Atomic uint64_t done_ops[NWRITERS];
	/* Checkpoints: the writers wait while pause_req is set. */
	pthread_mutex_t pause_mu;
	pthread_cond_t pause_cv;
	atomic_int pause_req;
	int paused, running;
	/* The snapshot shared with the readers. */
	pthread_rwlock_t shared_lock;
	view *shared;
	pthread_t snap_thread;
	uint64_t views, checkpoints, aged_checks;
	atomic_int engine_errors;
	wstate w[NWRITERS];
	rstate r[NREADERS];
} stress;

/* ---- Reporting ---------------------------------------------------------------- */

static void failf(stress *s, int line, const char *fmt, ...)
{
	pthread_mutex_lock(&s->print_mu);
	if (atomic_fetch_add(&s->failures, 1) < 20) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(stderr, "stress: FAIL at line %d: ", line);
		vfprintf(stderr, fmt, ap);
		fprintf(stderr, "\n");
		va_end(ap);
	}
	atomic_store(&s->stop, 1);
	pthread_mutex_unlock(&s->print_mu);
}

/* Fails the run and leaves the (void) function; `s` must be in scope. */
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			failf(s, __LINE__, __VA_ARGS__);                                           \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static void engine_log(void *arg, int level, const char *msg)
{
	stress *s = arg;
	if (level == TROVE_LOG_ERROR) {
		atomic_fetch_add(&s->engine_errors, 1);
		fprintf(stderr, "stress: engine error: %s\n", msg);
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int running(stress *s)
{
	return !atomic_load(&s->stop);
}

/* ---- Keys and values ------------------------------------------------------------ */

static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

static void make_names(stress *s)
{
	for (int gi = 0; gi < NALL; gi++) {
		int n;
		if (gi < NCOUNTERS) {
			n = snprintf(s->names[gi], KEYMAX, "c%d", gi);
		} else {
			int w = (gi - NCOUNTERS) / NKEYS, k = (gi - NCOUNTERS) % NKEYS;
			if (k < NPLAIN)
				n = snprintf(s->names[gi], KEYMAX, "w%d-%05d", w, k);
			else
				n = snprintf(s->names[gi], KEYMAX, "w%d-g%03d.%d", w,
				             (k - NPLAIN) / GSIZE, (k - NPLAIN) % GSIZE);
		}
		s->nlen[gi] = (size_t)n;
		if (gi > 0)
			assert_true(key_cmp(s->names[gi - 1], s->nlen[gi - 1], s->names[gi],
			                    s->nlen[gi]) < 0);
	}
}

/* The first index whose key is >= key (NALL if none). */
static int lower_index(const stress *s, const void *key, size_t klen)
{
	int lo = 0, hi = NALL;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (key_cmp(s->names[mid], s->nlen[mid], key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The index of key, or -1 if it is none of ours. */
static int key_index(const stress *s, const void *key, size_t klen)
{
	int i = lower_index(s, key, klen);
	return i < NALL && key_cmp(s->names[i], s->nlen[i], key, klen) == 0 ? i : -1;
}

static int gindex(const wstate *w, int k)
{
	return NCOUNTERS + w->id * NKEYS + k;
}

/* The group a key index belongs to, or -1 for counters and plain keys. */
static int group_of(int gi)
{
	if (gi < NCOUNTERS)
		return -1;
	int w = (gi - NCOUNTERS) / NKEYS, k = (gi - NCOUNTERS) % NKEYS;
	return k < NPLAIN ? -1 : w * NGROUPS + (k - NPLAIN) / GSIZE;
}

/* "<key>#<stamp>#" and a padding derived from both, so that a value read
 * back can be checked byte for byte. */
static size_t value_make(const stress *s, char *buf, int gi, uint32_t stamp)
{
	size_t n = (size_t)snprintf(buf, VALMAX, "%s#%u#", s->names[gi], stamp);
	size_t pad = (stamp * 37u + (unsigned)gi) % 300;
	for (size_t j = 0; j < pad; j++)
		buf[n + j] = (char)('a' + (stamp + j) % 26);
	return n + pad;
}

/* The stamp of a value read for key gi; -1 if it is not a value the owner
 * could have written for that key. */
static int value_stamp(const stress *s, int gi, const void *val, size_t vlen, uint32_t *stamp)
{
	const char *p = val;
	size_t nl = s->nlen[gi], i = nl + 1;
	if (vlen < nl + 3 || memcmp(p, s->names[gi], nl) != 0 || p[nl] != '#')
		return -1;
	uint64_t x = 0;
	while (i < vlen && p[i] >= '0' && p[i] <= '9' && i - nl <= 10)
		x = x * 10 + (uint64_t)(p[i++] - '0');
	if (i == nl + 1 || i >= vlen || p[i] != '#' || x == 0 || x >= STAMP_LIMIT)
		return -1;
	char buf[VALMAX];
	size_t n = value_make(s, buf, gi, (uint32_t)x);
	if (n != vlen || memcmp(buf, val, vlen) != 0)
		return -1;
	*stamp = (uint32_t)x;
	return 0;
}

static int counter_value(const void *val, size_t vlen, uint64_t *out)
{
	const char *p = val;
	uint64_t x = 0;
	if (vlen == 0 || vlen > 19)
		return -1;
	for (size_t i = 0; i < vlen; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(p[i] - '0');
	}
	*out = x;
	return 0;
}

/* ---- Judging what a read saw -------------------------------------------------------
 *
 * p1 and p2 are the key's published words loaded before and after the
 * read (or the snapshot).  Returns NULL if observing (found, stamp) is
 * legal, else why not.  has_stamp is 0 for reads that see only presence.
 */
static const char *judge(uint64_t p1, uint64_t p2, int found, int has_stamp, uint32_t stamp)
{
	uint32_t after1 = (uint32_t)p1, before1 = (uint32_t)(p1 >> 32) & 0x7fffffffu;
	int busy1 = (p1 & BUSY) != 0;
	uint32_t low = busy1 ? before1 : after1; /* the state of a returned write */
	if (p1 == p2) {
		/* Nothing started or finished meanwhile: the state is known. */
		int ok = found == (int)(after1 & 1) &&
		         (!found || !has_stamp || stamp == after1 >> 1);
		if (busy1)
			ok |= found == (int)(before1 & 1) &&
			      (!found || !has_stamp || stamp == before1 >> 1);
		if (ok)
			return NULL;
		return busy1 ? "neither the state before nor after the write in flight"
		             : "not the state the last write left";
	}
	if (!found || !has_stamp)
		return NULL;
	if (stamp > (uint32_t)p2 >> 1)
		return "a value no write had started";
	if ((low & 1) ? stamp < low >> 1 : stamp <= low >> 1)
		return "older than a write that had returned before the read";
	return NULL;
}

static const char *judge_counter(uint64_t lo, uint64_t hi, int found, uint64_t v)
{
	if (!found)
		return lo ? "missing after a successful increment" : NULL;
	if (v < lo)
		return "below the increments that had returned (lost update?)";
	if (v > hi)
		return "above the increments that had started";
	return NULL;
}

/* ---- Views -------------------------------------------------------------------------- */

static view *view_new(int a, int b)
{
	view *v = calloc(1, sizeof *v);
	if (!v)
		abort();
	size_t n = (size_t)(b - a);
	v->a = a;
	v->b = b;
	v->p1 = calloc(n, sizeof *v->p1);
	v->p2 = calloc(n, sizeof *v->p2);
	v->obs = calloc(n, sizeof *v->obs);
	v->exp = calloc(n, sizeof *v->exp);
	v->order = calloc(n, sizeof *v->order);
	if (!v->p1 || !v->p2 || !v->obs || !v->exp || !v->order)
		abort();
	return v;
}

static void view_free(stress *s, view *v)
{
	if (!v)
		return;
	if (v->snap)
		trove_snapshot_free(s->db, v->snap);
	free(v->p1);
	free(v->p2);
	free(v->obs);
	free(v->exp);
	free(v->order);
	free(v);
}

/* Reuses v for [a, b) (within its allocation). */
static void view_reset(view *v, int a, int b)
{
	v->a = a;
	v->b = b;
	v->n = 0;
	memset(v->obs, 0, (size_t)(b - a) * sizeof *v->obs);
	memset(v->exp, 0, (size_t)(b - a) * sizeof *v->exp);
}

static void view_before(stress *s, view *v)
{
	for (int c = 0; c < NCOUNTERS; c++)
		v->clo[c] = atomic_load(&s->ctr_ok[c]);
	for (int gi = v->a; gi < v->b; gi++)
		v->p1[gi - v->a] = atomic_load(&s->pub[gi]);
}

static void view_after(stress *s, view *v)
{
	for (int gi = v->a; gi < v->b; gi++)
		v->p2[gi - v->a] = atomic_load(&s->pub[gi]);
	for (int c = 0; c < NCOUNTERS; c++)
		v->chi[c] = atomic_load(&s->ctr_tried[c]);
}

/* Records that the view holds key gi with value val; -1 (reported) if the
 * value is not one of ours. */
static int view_note(stress *s, view *v, int gi, const void *val, size_t vlen, const char *what)
{
	uint64_t x;
	uint32_t stamp;
	if (gi < NCOUNTERS) {
		if (counter_value(val, vlen, &x)) {
			failf(s, __LINE__, "%s: counter %s holds a malformed value", what,
			      s->names[gi]);
			return -1;
		}
	} else {
		if (value_stamp(s, gi, val, vlen, &stamp)) {
			failf(s, __LINE__, "%s: %s holds a value never written for it: %.*s", what,
			      s->names[gi], (int)(vlen < 60 ? vlen : 60), (const char *)val);
			return -1;
		}
		x = stamp;
	}
	v->obs[gi - v->a] = x << 1 | 1;
	return 0;
}

/* Checks every key of the view against the published words, and that the
 * keys of each group agree. */
static void view_judge(stress *s, const view *v, const char *what)
{
	int gprev = -1, first = 0;
	for (int gi = v->a; gi < v->b; gi++) {
		int i = gi - v->a;
		int found = (int)(v->obs[i] & 1);
		const char *why;
		if (gi < NCOUNTERS)
			why = judge_counter(v->clo[gi], v->chi[gi], found, v->obs[i] >> 1);
		else
			why = judge(v->p1[i], v->p2[i], found, 1, (uint32_t)(v->obs[i] >> 1));
		CHECK(!why, "%s: %s %s (stamp %llu): %s [published %llx -> %llx]", what,
		      s->names[gi], found ? "found" : "missing",
		      (unsigned long long)(v->obs[i] >> 1), why, (unsigned long long)v->p1[i],
		      (unsigned long long)v->p2[i]);
		int g = group_of(gi);
		if (g != gprev) {
			gprev = g;
			first = i;
			continue;
		}
		if (g >= 0)
			CHECK(v->obs[i] == v->obs[first] && v->exp[i] == v->exp[first],
			      "%s: group torn: %s has %llx (expiry %lld) but %s has %llx (expiry "
			      "%lld)",
			      what, s->names[gi], (unsigned long long)v->obs[i],
			      (long long)v->exp[i], s->names[v->a + first],
			      (unsigned long long)v->obs[first], (long long)v->exp[first]);
	}
}

/* Walks cursor c over [a, b) of view v, forward (dir > 0) or backward,
 * recording what it sees.  Keys must be ours, in range and strictly
 * ordered; *ok is cleared on a failure. */
static void walk_cursor(stress *s, view *v, trove_cursor *c, int dir, const char *what, int *ok)
{
	*ok = 0;
	int prev = dir > 0 ? v->a - 1 : v->b, rc;
	v->n = 0;
	for (rc = dir > 0 ? trove_cursor_first(c) : trove_cursor_last(c); rc == 0;
	     rc = dir > 0 ? trove_cursor_next(c) : trove_cursor_prev(c)) {
		size_t kl, vl;
		const void *k = trove_cursor_key(c, &kl);
		const void *val = trove_cursor_value(c, &vl);
		int gi = key_index(s, k, kl);
		CHECK(gi >= 0, "%s: a key that was never written: %.*s", what, (int)kl,
		      (const char *)k);
		CHECK(gi >= v->a && gi < v->b,
		      "%s: %s outside the cursor's bounds [%s, %s) walking %s", what, s->names[gi],
		      s->names[v->a], v->b < NALL ? s->names[v->b] : "end",
		      dir > 0 ? "forward" : "backward");
		CHECK((dir > 0 ? gi > prev : gi < prev), "%s: %s after %s walking %s", what,
		      s->names[gi], s->names[prev], dir > 0 ? "forward" : "backward");
		trove_meta m;
		CHECK(trove_cursor_meta(c, &m) == 0, "%s: cursor_meta failed", what);
		CHECK(m.version > 0 && (!v->snapver || m.version <= v->snapver),
		      "%s: %s has version %llu, snapshot is at %llu", what, s->names[gi],
		      (unsigned long long)m.version, (unsigned long long)v->snapver);
		if (view_note(s, v, gi, val, vl, what))
			return;
		v->exp[gi - v->a] = m.expire_at_ms;
		v->order[v->n++] = gi;
		prev = gi;
	}
	CHECK(rc == TROVE_ENOTFOUND, "%s: cursor stopped with %s", what, trove_strerror(rc));
	if (dir < 0) /* keep order[] ascending */
		for (int i = 0, j = v->n - 1; i < j; i++, j--) {
			int t = v->order[i];
			v->order[i] = v->order[j];
			v->order[j] = t;
		}
	*ok = 1;
}

/* ---- Writers: the pending write and the model ---------------------------------------- */

static void tx_begin(wstate *w)
{
	w->npend = 0;
}

/* The pending state of key k in the write being built. */
static pend *tx_key(wstate *w, int k)
{
	for (int i = 0; i < w->npend; i++)
		if (w->p[i].k == k)
			return &w->p[i];
	if (w->npend >= MAXPEND)
		abort(); /* a write touches more keys than the test allows */
	pend *p = &w->p[w->npend++];
	p->k = k;
	p->changed = 0;
	p->n = w->m[k];
	return p;
}

static uint32_t state_of(const mkey *m)
{
	return m->stamp << 1 | (m->present ? 1u : 0u);
}

/* A new value for the pending key: returns its stamp. */
static uint32_t tx_put(wstate *w, pend *p, int64_t exp_lo, int64_t exp_hi)
{
	p->n.stamp = ++w->stamp;
	p->n.present = 1;
	p->n.exp_lo = exp_lo;
	p->n.exp_hi = exp_hi;
	p->changed = 1;
	return p->n.stamp;
}

/* Deletes the pending key; returns 1 if it was live. */
static int tx_del(pend *p)
{
	if (!p->n.present)
		return 0;
	p->n.present = 0;
	p->n.exp_lo = p->n.exp_hi = 0;
	p->changed = 1;
	return 1;
}

/* Sets the pending key's expiry if it is live (0 removes it). */
static void tx_expire(pend *p, int64_t at)
{
	if (!p->n.present)
		return;
	p->n.exp_lo = p->n.exp_hi = at;
	p->changed = 1;
}

/* Announces the write: its keys are in flight from here on. */
static void tx_publish(wstate *w)
{
	for (int i = 0; i < w->npend; i++) {
		uint64_t before = state_of(&w->m[w->p[i].k]);
		uint64_t word = BUSY | before << 32 | state_of(&w->p[i].n);
		atomic_store(&w->s->pub[gindex(w, w->p[i].k)], word);
	}
}

/* The write returned successfully: the model takes its states.  version
 * is the write's version if known, else 0. */
static void tx_commit(wstate *w, uint64_t version)
{
	stress *s = w->s;
	int changed = 0;
	for (int i = 0; i < w->npend; i++) {
		pend *p = &w->p[i];
		mkey *m = &w->m[p->k];
		changed |= p->changed;
		if (p->changed)
			p->n.version = p->n.present ? version : 0;
		w->live += p->n.present - m->present;
		*m = p->n;
		uint64_t st = state_of(m);
		atomic_store(&s->pub[gindex(w, p->k)], st << 32 | st);
	}
	atomic_store(&s->live[w->id], w->live);
	atomic_fetch_add(&s->done_ops[w->id], 1);
	w->npend = 0;
	if (version && changed) {
		CHECK(version > w->maxver, "writer %d: version %llu after %llu", w->id,
		      (unsigned long long)version, (unsigned long long)w->maxver);
		w->maxver = version;
	}
}

/* Whether a read of key gi (rc, value, meta) agrees exactly with model m.
 * meta may be NULL. */
static void model_match(stress *s, const mkey *m, int gi, int rc, const void *val, size_t vlen,
                        const trove_meta *meta, const char *what)
{
	if (!m->present) {
		CHECK(rc == TROVE_ENOTFOUND, "%s: %s should be missing, got %s", what, s->names[gi],
		      trove_strerror(rc));
		return;
	}
	CHECK(rc == 0, "%s: %s (stamp %u) should be present, got %s", what, s->names[gi], m->stamp,
	      trove_strerror(rc));
	if (val) {
		uint32_t stamp = 0;
		CHECK(value_stamp(s, gi, val, vlen, &stamp) == 0 && stamp == m->stamp,
		      "%s: %s has stamp %u, the model %u", what, s->names[gi], stamp, m->stamp);
	}
	if (!meta)
		return;
	if (m->exp_lo)
		CHECK(meta->expire_at_ms >= m->exp_lo && meta->expire_at_ms <= m->exp_hi,
		      "%s: %s expires at %lld, the model says %lld..%lld", what, s->names[gi],
		      (long long)meta->expire_at_ms, (long long)m->exp_lo, (long long)m->exp_hi);
	else
		CHECK(meta->expire_at_ms == 0, "%s: %s expires at %lld, the model says never", what,
		      s->names[gi], (long long)meta->expire_at_ms);
	if (m->version)
		CHECK(meta->version == m->version, "%s: %s has version %llu, the model %llu", what,
		      s->names[gi], (unsigned long long)meta->version,
		      (unsigned long long)m->version);
}

/* ---- Writers: operations on plain keys ----------------------------------------------- */

#define KEY(w, k) (w)->s->names[gindex(w, k)], (w)->s->nlen[gindex(w, k)]

static int plain_key(wstate *w)
{
	return (int)tu_below(&w->rng, NPLAIN);
}

static int64_t long_expiry(wstate *w)
{
	return now_ms() + LONG_TTL_MS + (int64_t)tu_below(&w->rng, 100000);
}

/* A write of one key whose outcome the model predicts: rc must be want;
 * on success the pending state is committed. */
static void finish_one(wstate *w, int rc, int want, uint64_t version, const char *op)
{
	stress *s = w->s;
	CHECK(rc == want, "writer %d: %s on %s: got %s, the model expects %s", w->id, op,
	      s->names[gindex(w, w->p[0].k)], trove_strerror(rc), trove_strerror(want));
	if (want == 0)
		tx_commit(w, version);
	else
		w->expected_failures++;
	w->npend = 0;
}

static void w_put_plain(wstate *w, int kind)
{
	stress *s = w->s;
	int k = plain_key(w);
	char v[VALMAX];
	tx_begin(w);
	pend *p = tx_key(w, k);
	int present = p->n.present, rc, want = 0;
	const mkey old = p->n;
	uint64_t ver = 0;
	switch (kind) {
	case 0: { /* put */
		size_t vl = value_make(s, v, gindex(w, k), tx_put(w, p, 0, 0));
		tx_publish(w);
		rc = trove_put(s->db, KEY(w, k), v, vl);
		finish_one(w, rc, 0, 0, "put");
		break;
	}
	case 1: { /* put_if_absent */
		size_t vl = value_make(s, v, gindex(w, k), tx_put(w, p, 0, 0));
		if (present)
			want = TROVE_EEXIST;
		else
			tx_publish(w);
		rc = trove_put_if_absent(s->db, KEY(w, k), v, vl);
		finish_one(w, rc, want, 0, "put_if_absent");
		break;
	}
	case 2: { /* put_if_present */
		size_t vl = value_make(s, v, gindex(w, k), tx_put(w, p, 0, 0));
		if (!present)
			want = TROVE_ENOTFOUND;
		else
			tx_publish(w);
		rc = trove_put_if_present(s->db, KEY(w, k), v, vl);
		finish_one(w, rc, want, 0, "put_if_present");
		break;
	}
	case 3: { /* cas on the value, right or wrong */
		char e[VALMAX];
		int wrong = tu_below(&w->rng, 4) == 0;
		size_t el =
		        value_make(s, e, gindex(w, k), old.stamp + (wrong ? 1 : 0) + !old.stamp);
		size_t vl = value_make(s, v, gindex(w, k), tx_put(w, p, 0, 0));
		if (!present || wrong)
			want = TROVE_ECONDITION;
		else
			tx_publish(w);
		rc = trove_cas(s->db, KEY(w, k), e, el, v, vl);
		finish_one(w, rc, want, 0, "cas");
		break;
	}
	case 4: { /* cas_version after reading the version */
		void *val = NULL;
		size_t len = 0;
		trove_meta m;
		rc = trove_get_ex(s->db, NULL, KEY(w, k), &val, &len, &m);
		model_match(s, &old, gindex(w, k), rc, val, len, &m, "owner get_ex");
		trove_free(val);
		if (!running(s))
			return;
		uint64_t at = present ? m.version : 0;
		int wrong = tu_below(&w->rng, 4) == 0;
		size_t vl = value_make(s, v, gindex(w, k), tx_put(w, p, 0, 0));
		if (wrong)
			want = TROVE_ECONDITION;
		else
			tx_publish(w);
		rc = trove_cas_version(s->db, KEY(w, k), wrong ? at + 7 : at, v, vl);
		finish_one(w, rc, want, 0, "cas_version");
		break;
	}
	case 5: { /* put_ex: a TTL, a version condition, the new version */
		trove_put_opts o;
		memset(&o, 0, sizeof o);
		int mode = (int)tu_below(&w->rng, 3);
		int64_t t0 = now_ms();
		if (mode == 0) {
			o.ttl_mode = TROVE_TTL_IN;
			o.ttl_ms = LONG_TTL_MS;
		} else if (mode == 1) {
			o.ttl_mode = TROVE_TTL_AT;
			o.expire_at_ms = long_expiry(w);
		} else {
			o.ttl_mode = TROVE_TTL_KEEP;
		}
		if (old.version || !present) {
			o.cond.kind = TROVE_IF_VERSION;
			o.cond.version = present ? old.version : 0;
		} else {
			o.cond.kind = TROVE_IF_PRESENT;
		}
		int64_t lo = 0, hi = 0;
		if (mode == 0) {
			lo = t0 + LONG_TTL_MS;
			hi = 0; /* set after the call */
		} else if (mode == 1) {
			lo = hi = o.expire_at_ms;
		} else if (present) {
			lo = old.exp_lo;
			hi = old.exp_hi;
		}
		size_t vl = value_make(s, v, gindex(w, k),
		                       tx_put(w, p, lo, mode == 0 ? INT64_MAX : hi));
		tx_publish(w);
		rc = trove_put_ex(s->db, KEY(w, k), v, vl, &o, &ver);
		if (mode == 0)
			p->n.exp_hi = now_ms() + LONG_TTL_MS;
		finish_one(w, rc, 0, rc == 0 ? ver : 0, "put_ex");
		break;
	}
	case 6: { /* put_ttl */
		int64_t t0 = now_ms();
		size_t vl =
		        value_make(s, v, gindex(w, k), tx_put(w, p, t0 + LONG_TTL_MS, INT64_MAX));
		tx_publish(w);
		rc = trove_put_ttl(s->db, KEY(w, k), v, vl, LONG_TTL_MS);
		p->n.exp_hi = now_ms() + LONG_TTL_MS;
		finish_one(w, rc, 0, 0, "put_ttl");
		break;
	}
	case 7: { /* expire_at */
		int64_t at = long_expiry(w);
		tx_expire(p, at);
		if (!present)
			want = TROVE_ENOTFOUND;
		rc = trove_expire_at(s->db, KEY(w, k), at);
		finish_one(w, rc, want, 0, "expire_at");
		break;
	}
	case 8: /* persist */
		tx_expire(p, 0);
		want = !present ? TROVE_ENOTFOUND : !old.exp_lo ? TROVE_ECONDITION : 0;
		rc = trove_persist(s->db, KEY(w, k));
		finish_one(w, rc, want, 0, "persist");
		break;
	case 9: /* del */
		tx_del(p);
		tx_publish(w);
		rc = trove_del(s->db, KEY(w, k));
		finish_one(w, rc, 0, 0, "del");
		break;
	case 10: /* del_if_exists */
		tx_del(p);
		if (present)
			tx_publish(w);
		else
			want = TROVE_ENOTFOUND;
		rc = trove_del_if_exists(s->db, KEY(w, k));
		finish_one(w, rc, want, 0, "del_if_exists");
		break;
	default: { /* del_ex on the value */
		char e[VALMAX];
		trove_cond c = {.kind = TROVE_IF_VALUE, .value = e};
		c.value_len = value_make(s, e, gindex(w, k), old.stamp ? old.stamp : 1);
		int deleted = -1;
		tx_del(p);
		if (present)
			tx_publish(w);
		else
			want = TROVE_ECONDITION;
		rc = trove_del_ex(s->db, KEY(w, k), &c, &deleted);
		CHECK(rc != 0 || deleted == 1, "writer %d: del_ex removed nothing", w->id);
		finish_one(w, rc, want, 0, "del_ex");
		break;
	}
	}
}

/* A batch of puts, deletes and expiry changes over a few nearby keys
 * (so that some repeat: later writes of a key win). */
static void w_batch(wstate *w)
{
	stress *s = w->s;
	trove_batch *b = w->b;
	trove_batch_clear(b);
	tx_begin(w);
	int n = 2 + (int)tu_below(&w->rng, 7), removed = 0;
	int base = (int)tu_below(&w->rng, NPLAIN - 12);
	char v[VALMAX];
	for (int i = 0; i < n; i++) {
		int k = base + (int)tu_below(&w->rng, 12);
		pend *p = tx_key(w, k);
		int rc = 0;
		switch (tu_below(&w->rng, 6)) {
		case 0:
		case 1: {
			size_t vl = value_make(s, v, gindex(w, k), tx_put(w, p, 0, 0));
			rc = trove_batch_put(b, KEY(w, k), v, vl);
			break;
		}
		case 2: {
			int64_t at = long_expiry(w);
			size_t vl = value_make(s, v, gindex(w, k), tx_put(w, p, at, at));
			rc = trove_batch_put_ttl(b, KEY(w, k), v, vl, at);
			break;
		}
		case 3:
		case 4:
			removed += tx_del(p);
			rc = trove_batch_del(b, KEY(w, k));
			break;
		default: {
			int64_t at = tu_below(&w->rng, 2) ? long_expiry(w) : 0;
			tx_expire(p, at);
			rc = trove_batch_expire_at(b, KEY(w, k), at);
			break;
		}
		}
		CHECK(rc == 0, "writer %d: building a batch: %s", w->id, trove_strerror(rc));
	}
	CHECK(trove_batch_count(b) == (size_t)n, "writer %d: batch count", w->id);
	tx_publish(w);
	trove_write_result res;
	int rc = trove_write(s->db, b, &res);
	CHECK(rc == 0, "writer %d: batch: %s", w->id, trove_strerror(rc));
	CHECK(res.removed == removed, "writer %d: batch removed %d keys, the model %d", w->id,
	      res.removed, removed);
	tx_commit(w, res.version);
	w->batches++;
}

/* Adds a condition on key k that holds (or, if make_false, fails) given
 * the model. */
static void add_cond(wstate *w, trove_batch *b, int k, int make_false)
{
	stress *s = w->s;
	const mkey *m = &w->m[k];
	char e[VALMAX];
	trove_cond c;
	memset(&c, 0, sizeof c);
	int choice = (int)tu_below(&w->rng, 3);
	if (m->present) {
		if (choice == 0) {
			c.kind = make_false ? TROVE_IF_ABSENT : TROVE_IF_PRESENT;
		} else if (choice == 1 || !m->version) {
			c.kind = TROVE_IF_VALUE;
			c.value = e;
			c.value_len =
			        value_make(s, e, gindex(w, k), m->stamp + (make_false ? 1 : 0));
		} else {
			c.kind = TROVE_IF_VERSION;
			c.version = m->version + (make_false ? 1 : 0);
		}
	} else {
		if (choice == 0) {
			c.kind = make_false ? TROVE_IF_PRESENT : TROVE_IF_ABSENT;
		} else if (choice == 1) {
			c.kind = make_false ? TROVE_IF_VALUE : TROVE_IF_VERSION;
			c.value = e;
			c.value_len = value_make(s, e, gindex(w, k), m->stamp + 1);
			c.version = 0;
		} else {
			c.kind = TROVE_IF_VERSION;
			c.version = make_false ? w->maxver + 1 : 0;
		}
	}
	int rc = trove_batch_require(b, KEY(w, k), &c);
	CHECK(rc == 0, "writer %d: batch_require: %s", w->id, trove_strerror(rc));
}

/* A conditional transaction over plain keys whose conditions the model
 * decides; sometimes one is made false on purpose. */
static void w_txn(wstate *w)
{
	stress *s = w->s;
	trove_batch *b = w->b;
	trove_batch_clear(b);
	tx_begin(w);
	int nc = 1 + (int)tu_below(&w->rng, 3);
	int bad = tu_below(&w->rng, 10) < 3 ? (int)tu_below(&w->rng, (uint64_t)nc) : -1;
	for (int i = 0; i < nc; i++)
		add_cond(w, b, plain_key(w), i == bad);
	int nw = 1 + (int)tu_below(&w->rng, 4), removed = 0;
	char v[VALMAX];
	for (int i = 0; i < nw; i++) {
		int k = plain_key(w);
		pend *p = tx_key(w, k);
		int rc;
		if (tu_below(&w->rng, 3)) {
			size_t vl = value_make(s, v, gindex(w, k), tx_put(w, p, 0, 0));
			rc = trove_batch_put(b, KEY(w, k), v, vl);
		} else {
			removed += tx_del(p);
			rc = trove_batch_del(b, KEY(w, k));
		}
		CHECK(rc == 0, "writer %d: building a transaction: %s", w->id, trove_strerror(rc));
	}
	if (bad < 0)
		tx_publish(w);
	trove_write_result res;
	memset(&res, 0, sizeof res);
	int rc = trove_write(s->db, b, &res);
	w->txns++;
	if (bad >= 0) {
		CHECK(rc == TROVE_ECONDITION && res.failed == (size_t)bad,
		      "writer %d: transaction with false condition %d: %s (failed %zu)", w->id, bad,
		      trove_strerror(rc), res.failed);
		w->npend = 0;
		w->expected_failures++;
		return;
	}
	CHECK(rc == 0, "writer %d: transaction: %s (failed %zu)", w->id, trove_strerror(rc),
	      res.failed);
	CHECK(res.removed == removed, "writer %d: transaction removed %d, the model %d", w->id,
	      res.removed, removed);
	tx_commit(w, res.version);
}

/* ---- Writers: groups of keys written together ------------------------------------------ */

static void w_group(wstate *w)
{
	stress *s = w->s;
	trove_batch *b = w->b;
	trove_batch_clear(b);
	tx_begin(w);
	int k0 = NPLAIN + (int)tu_below(&w->rng, NGROUPS) * GSIZE;
	const mkey *m0 = &w->m[k0];
	int present = m0->present, kind = (int)tu_below(&w->rng, 8), bad = -1, removed = 0, rc;
	char v[VALMAX];
	if (kind == 3) { /* delete the group */
		for (int j = 0; j < GSIZE; j++) {
			removed += tx_del(tx_key(w, k0 + j));
			rc = trove_batch_del(b, KEY(w, k0 + j));
			CHECK(rc == 0, "writer %d: batch_del: %s", w->id, trove_strerror(rc));
		}
	} else if (kind >= 6) { /* change the group's expiry */
		int64_t at = tu_below(&w->rng, 3) ? long_expiry(w) : 0;
		for (int j = 0; j < GSIZE; j++) {
			tx_expire(tx_key(w, k0 + j), at);
			rc = trove_batch_expire_at(b, KEY(w, k0 + j), at);
			CHECK(rc == 0, "writer %d: batch_expire_at: %s", w->id, trove_strerror(rc));
		}
	} else { /* a new stamp on all five, maybe conditional */
		if (kind >= 4) {
			bad = tu_below(&w->rng, 4) == 0 ? (int)tu_below(&w->rng, 2) : -1;
			add_cond(w, b, k0, bad == 0);
			add_cond(w, b, k0 + GSIZE - 1, bad == 1);
		}
		int64_t at = tu_below(&w->rng, 3) == 0 ? long_expiry(w) : 0;
		uint32_t stamp = ++w->stamp;
		for (int j = 0; j < GSIZE; j++) {
			pend *p = tx_key(w, k0 + j);
			p->n.stamp = stamp;
			p->n.present = 1;
			p->n.exp_lo = p->n.exp_hi = at;
			p->changed = 1;
			size_t vl = value_make(s, v, gindex(w, k0 + j), stamp);
			rc = at ? trove_batch_put_ttl(b, KEY(w, k0 + j), v, vl, at)
			        : trove_batch_put(b, KEY(w, k0 + j), v, vl);
			CHECK(rc == 0, "writer %d: batch_put: %s", w->id, trove_strerror(rc));
		}
		if (tu_below(&w->rng, 4) == 0) { /* and a plain key in the same write */
			int k = plain_key(w);
			size_t vl = value_make(s, v, gindex(w, k), tx_put(w, tx_key(w, k), 0, 0));
			rc = trove_batch_put(b, KEY(w, k), v, vl);
			CHECK(rc == 0, "writer %d: batch_put: %s", w->id, trove_strerror(rc));
		}
	}
	if (bad < 0)
		tx_publish(w);
	trove_write_result res;
	memset(&res, 0, sizeof res);
	rc = trove_write(s->db, b, &res);
	w->group_ops++;
	if (bad >= 0) {
		CHECK(rc == TROVE_ECONDITION && res.failed == (size_t)bad,
		      "writer %d: group write with false condition %d: %s", w->id, bad,
		      trove_strerror(rc));
		w->npend = 0;
		w->expected_failures++;
		return;
	}
	CHECK(rc == 0, "writer %d: group write: %s", w->id, trove_strerror(rc));
	CHECK(res.removed == removed, "writer %d: group delete removed %d of %d (present %d)",
	      w->id, res.removed, removed, present);
	tx_commit(w, res.version);
}

/* ---- Writers: reading back their own keys, and the shared counters --------------------- */

static void w_read_own(wstate *w)
{
	stress *s = w->s;
	w->reads++;
	int k = tu_below(&w->rng, 4) ? plain_key(w) : (int)tu_below(&w->rng, NKEYS);
	int gi = gindex(w, k);
	mkey *m = &w->m[k];
	switch (tu_below(&w->rng, 4)) {
	case 0: {
		void *val = NULL;
		size_t len = 0;
		trove_meta meta;
		int rc = trove_get_ex(s->db, NULL, KEY(w, k), &val, &len, &meta);
		model_match(s, m, gi, rc, val, len, &meta, "owner get_ex");
		trove_free(val);
		if (rc == 0 && !m->version)
			m->version = meta.version; /* learnt: nobody else writes it */
		break;
	}
	case 1: {
		int64_t t0 = now_ms(), ttl = -2;
		int rc = trove_ttl(s->db, KEY(w, k), &ttl);
		int64_t t1 = now_ms();
		model_match(s, m, gi, rc, NULL, 0, NULL, "owner ttl");
		if (rc == 0 && m->exp_lo)
			CHECK(ttl >= m->exp_lo - t1 && ttl <= m->exp_hi - t0,
			      "owner ttl: %s has %lld ms left, the model %lld..%lld", s->names[gi],
			      (long long)ttl, (long long)(m->exp_lo - t1),
			      (long long)(m->exp_hi - t0));
		else if (rc == 0)
			CHECK(ttl == -1, "owner ttl: %s has a ttl of %lld, the model none",
			      s->names[gi], (long long)ttl);
		break;
	}
	case 2:
		model_match(s, m, gi, trove_exists(s->db, KEY(w, k)), NULL, 0, NULL,
		            "owner exists");
		break;
	default: { /* several keys at once */
		enum { N = 6 };
		const void *keys[N];
		size_t klens[N], vlens[N];
		void *vals[N];
		int st[N], ks[N];
		for (int i = 0; i < N; i++) {
			ks[i] = plain_key(w);
			keys[i] = s->names[gindex(w, ks[i])];
			klens[i] = s->nlen[gindex(w, ks[i])];
		}
		int rc = trove_mget(s->db, NULL, N, keys, klens, vals, vlens, st);
		for (int i = 0; i < N && rc == 0; i++)
			model_match(s, &w->m[ks[i]], gindex(w, ks[i]), st[i], vals[i], vlens[i],
			            NULL, "owner mget");
		for (int i = 0; i < N && rc == 0; i++)
			trove_free(vals[i]);
		CHECK(rc == 0, "owner mget: %s", trove_strerror(rc));
		break;
	}
	}
}

/* Raises a shared counter by one: read the value and version, write the
 * value + 1 conditioned on that version, retry on a conflict. */
static void w_increment(wstate *w)
{
	stress *s = w->s;
	int c = (int)tu_below(&w->rng, NCOUNTERS);
	for (;;) {
		void *val = NULL;
		size_t len = 0;
		trove_meta m;
		uint64_t cur = 0, ver = 0;
		int rc = trove_get_ex(s->db, NULL, s->names[c], s->nlen[c], &val, &len, &m);
		CHECK(rc == 0 || rc == TROVE_ENOTFOUND, "counter %d: get_ex: %s", c,
		      trove_strerror(rc));
		if (rc == 0) {
			int bad = counter_value(val, len, &cur);
			trove_free(val);
			CHECK(!bad, "counter %d: a malformed value", c);
			ver = m.version;
		}
		char nv[24];
		int nl = snprintf(nv, sizeof nv, "%llu", (unsigned long long)cur + 1);
		if (tu_below(&w->rng, 8) == 0)
			sched_yield(); /* widen the window for a racing writer */
		atomic_fetch_add(&s->ctr_tried[c], 1);
		rc = trove_cas_version(s->db, s->names[c], s->nlen[c], ver, nv, (size_t)nl);
		if (rc == 0) {
			atomic_fetch_add(&s->ctr_ok[c], 1);
			w->incr_by[c]++;
			w->incr++;
			return;
		}
		CHECK(rc == TROVE_ECONDITION, "counter %d: cas_version: %s", c, trove_strerror(rc));
		w->incr_retries++;
		if (!running(s))
			return;
	}
}

/* Waits out a checkpoint (the checker reads the models meanwhile). */
static void maybe_pause(stress *s)
{
	if (!atomic_load(&s->pause_req))
		return;
	pthread_mutex_lock(&s->pause_mu);
	s->paused++;
	pthread_cond_broadcast(&s->pause_cv);
	while (atomic_load(&s->pause_req))
		pthread_cond_wait(&s->pause_cv, &s->pause_mu);
	s->paused--;
	pthread_mutex_unlock(&s->pause_mu);
}

static void *writer_main(void *arg)
{
	wstate *w = arg;
	stress *s = w->s;
	w->b = trove_batch_new();
	if (!w->b)
		failf(s, __LINE__, "batch_new failed");
	while (running(s)) {
		maybe_pause(s);
		uint64_t r = tu_below(&w->rng, 100);
		if (r < 50)
			w_put_plain(w, (int)tu_below(&w->rng, 12));
		else if (r < 58)
			w_batch(w);
		else if (r < 64)
			w_txn(w);
		else if (r < 76)
			w_group(w);
		else if (r < 92)
			w_read_own(w);
		else
			for (int n = 1 + (int)tu_below(&w->rng, 4); n > 0 && running(s); n--)
				w_increment(w);
		w->ops++;
		if (w->stamp >= STAMP_LIMIT - 100) {
			failf(s, __LINE__, "writer %d ran out of stamps", w->id);
			break;
		}
	}
	trove_batch_free(w->b);
	pthread_mutex_lock(&s->pause_mu);
	s->running--;
	pthread_cond_broadcast(&s->pause_cv);
	pthread_mutex_unlock(&s->pause_mu);
	return NULL;
}

/* ---- Readers ------------------------------------------------------------------------------ */

static int any_writer_key(rstate *r)
{
	return NCOUNTERS + (int)tu_below(&r->rng, NWRITERS * NKEYS);
}

/* One key through get, get_ex, exists or ttl. */
static void r_point(rstate *r)
{
	stress *s = r->s;
	int gi = any_writer_key(r), kind = (int)tu_below(&r->rng, 4), rc;
	uint64_t p1 = atomic_load(&s->pub[gi]);
	void *val = NULL;
	size_t len = 0;
	trove_meta m;
	int64_t ttl = 0;
	switch (kind) {
	case 0:
		rc = trove_get(s->db, s->names[gi], s->nlen[gi], &val, &len);
		break;
	case 1:
		rc = trove_get_ex(s->db, NULL, s->names[gi], s->nlen[gi], &val, &len, &m);
		break;
	case 2:
		rc = trove_exists(s->db, s->names[gi], s->nlen[gi]);
		break;
	default:
		rc = trove_ttl(s->db, s->names[gi], s->nlen[gi], &ttl);
		break;
	}
	uint64_t p2 = atomic_load(&s->pub[gi]);
	uint32_t stamp = 0;
	int bad = rc == 0 && val && value_stamp(s, gi, val, len, &stamp);
	trove_free(val);
	CHECK(rc == 0 || rc == TROVE_ENOTFOUND, "reader: read of %s: %s", s->names[gi],
	      trove_strerror(rc));
	CHECK(!bad, "reader: %s holds a value never written for it", s->names[gi]);
	CHECK(kind != 3 || rc != 0 || ttl == -1 || (ttl > 0 && ttl <= LONG_TTL_MS + 100000),
	      "reader: %s has a ttl of %lld", s->names[gi], (long long)ttl);
	CHECK(kind != 1 || rc != 0 || m.version > 0, "reader: %s has version 0", s->names[gi]);
	const char *why = judge(p1, p2, rc == 0, kind < 2, stamp);
	CHECK(!why, "reader: %s %s (stamp %u): %s [published %llx -> %llx]", s->names[gi],
	      rc == 0 ? "found" : "missing", stamp, why, (unsigned long long)p1,
	      (unsigned long long)p2);
}

/* A group through trove_mget, or through a snapshot of its own. */
static void r_group(rstate *r, view *v)
{
	stress *s = r->s;
	int w = (int)tu_below(&r->rng, NWRITERS);
	int a = NCOUNTERS + w * NKEYS + NPLAIN + (int)tu_below(&r->rng, NGROUPS) * GSIZE;
	view_reset(v, a, a + GSIZE);
	const void *keys[GSIZE];
	size_t klens[GSIZE], vlens[GSIZE];
	void *vals[GSIZE];
	int st[GSIZE], rc = 0;
	for (int j = 0; j < GSIZE; j++) {
		keys[j] = s->names[a + j];
		klens[j] = s->nlen[a + j];
	}
	const char *what = "reader mget";
	view_before(s, v);
	if (tu_below(&r->rng, 2)) {
		rc = trove_mget(s->db, NULL, GSIZE, keys, klens, vals, vlens, st);
		view_after(s, v);
	} else {
		what = "reader snapshot";
		trove_snapshot *snap = trove_snapshot_new(s->db);
		view_after(s, v);
		CHECK(snap, "reader: snapshot_new failed");
		uint64_t sv = trove_snapshot_version(snap);
		for (int j = 0; j < GSIZE; j++) {
			trove_meta m;
			st[j] = trove_get_ex(s->db, snap, keys[j], klens[j], &vals[j], &vlens[j],
			                     &m);
			if (st[j] == 0) {
				v->exp[j] = m.expire_at_ms;
				if (m.version > sv)
					st[j] = TROVE_EINVAL; /* reported below */
			} else {
				vals[j] = NULL;
			}
		}
		/* Reading again after a moment gives the same. */
		for (int j = 0; j < GSIZE; j += GSIZE - 1) {
			void *again = NULL;
			size_t al = 0;
			int rc2 = trove_get_ex(s->db, snap, keys[j], klens[j], &again, &al, NULL);
			if (rc2 != st[j] ||
			    (rc2 == 0 && (al != vlens[j] || memcmp(again, vals[j], al) != 0)))
				st[j] = TROVE_EINVAL;
			trove_free(again);
		}
		trove_snapshot_free(s->db, snap);
	}
	int ok = rc == 0;
	for (int j = 0; j < GSIZE && ok; j++) {
		if (st[j] == 0)
			ok = view_note(s, v, a + j, vals[j], vlens[j], what) == 0;
		else
			ok = st[j] == TROVE_ENOTFOUND;
	}
	for (int j = 0; j < GSIZE && rc == 0; j++)
		trove_free(vals[j]);
	CHECK(ok, "%s of %s: %s / statuses %d %d %d %d %d", what, s->names[a], trove_strerror(rc),
	      st[0], st[1], st[2], st[3], st[4]);
	view_judge(s, v, what);
}

/* Keys through the snapshot the snapshot thread shares: they must read
 * exactly as its full walk saw them, however long ago that was. */
static void r_shared(rstate *r)
{
	stress *s = r->s;
	enum { N = 8 };
	int gi[N], rc[N], same[N];
	uint64_t seen[N];
	pthread_rwlock_rdlock(&s->shared_lock);
	view *v = s->shared;
	if (!v) {
		pthread_rwlock_unlock(&s->shared_lock);
		return;
	}
	for (int i = 0; i < N; i++) {
		gi[i] = (int)tu_below(&r->rng, NALL);
		void *val = NULL;
		size_t len = 0;
		trove_meta m;
		rc[i] = trove_get_ex(s->db, v->snap, s->names[gi[i]], s->nlen[gi[i]], &val, &len,
		                     &m);
		seen[i] = v->obs[gi[i]];
		same[i] = 0;
		if (rc[i] == 0 && (seen[i] & 1)) {
			uint64_t x = 0;
			uint32_t stamp = 0;
			if (gi[i] < NCOUNTERS)
				same[i] = !counter_value(val, len, &x) && x == seen[i] >> 1;
			else
				same[i] = !value_stamp(s, gi[i], val, len, &stamp) &&
				          stamp == seen[i] >> 1;
			same[i] &= m.expire_at_ms == v->exp[gi[i]] && m.version <= v->snapver;
		} else if (rc[i] == TROVE_ENOTFOUND) {
			same[i] = !(seen[i] & 1);
		}
		trove_free(val);
	}
	pthread_rwlock_unlock(&s->shared_lock);
	for (int i = 0; i < N; i++)
		CHECK(same[i], "reader: %s through a shared snapshot: %s, its walk saw %llx",
		      s->names[gi[i]], trove_strerror(rc[i]), (unsigned long long)seen[i]);
}

static void r_counter(rstate *r)
{
	stress *s = r->s;
	int c = (int)tu_below(&r->rng, NCOUNTERS);
	uint64_t lo = atomic_load(&s->ctr_ok[c]), x = 0;
	void *val = NULL;
	size_t len = 0;
	int rc = trove_get(s->db, s->names[c], s->nlen[c], &val, &len);
	uint64_t hi = atomic_load(&s->ctr_tried[c]);
	int bad = rc == 0 && counter_value(val, len, &x);
	trove_free(val);
	CHECK(rc == 0 || rc == TROVE_ENOTFOUND, "reader: counter %d: %s", c, trove_strerror(rc));
	CHECK(!bad, "reader: counter %d holds a malformed value", c);
	const char *why = judge_counter(lo, hi, rc == 0, x);
	CHECK(!why, "reader: counter %d reads %llu (%s), %llu..%llu: %s", c, (unsigned long long)x,
	      trove_strerror(rc), (unsigned long long)lo, (unsigned long long)hi, why);
	CHECK(x >= r->last_ctr[c], "reader: counter %d went back from %llu to %llu", c,
	      (unsigned long long)r->last_ctr[c], (unsigned long long)x);
	r->last_ctr[c] = x;
}

/* trove_count against the writers' published live counts: each write
 * changes its writer's count by at most MAXDELTA. */
static void count_check(stress *s, const char *what)
{
	int64_t live = 0, slack = NCOUNTERS;
	uint64_t o1[NWRITERS];
	for (int w = 0; w < NWRITERS; w++) {
		o1[w] = atomic_load(&s->done_ops[w]);
		live += atomic_load(&s->live[w]);
	}
	uint64_t n = 0;
	int rc = trove_count(s->db, &n);
	for (int w = 0; w < NWRITERS; w++)
		slack += MAXDELTA * (int64_t)(atomic_load(&s->done_ops[w]) - o1[w] + 3);
	CHECK(rc == 0, "%s: trove_count: %s", what, trove_strerror(rc));
	CHECK(n <= (uint64_t)NALL && (int64_t)n >= live - slack && (int64_t)n <= live + slack,
	      "%s: trove_count says %llu, the writers have %lld live keys (+/- %lld)", what,
	      (unsigned long long)n, (long long)live, (long long)slack);
}

/* A short range through a cursor with its own snapshot, either way. */
static void r_cursor(rstate *r, view *v)
{
	stress *s = r->s;
	int a = (int)tu_below(&r->rng, NALL);
	int b = a + 1 + (int)tu_below(&r->rng, 64);
	if (b > NALL)
		b = NALL;
	view_reset(v, a, b);
	v->snapver = 0;
	trove_cursor_opts o;
	memset(&o, 0, sizeof o);
	o.lower = s->names[a];
	o.lower_len = s->nlen[a];
	if (b < NALL) {
		o.upper = s->names[b];
		o.upper_len = s->nlen[b];
	}
	trove_cursor *c;
	view_before(s, v);
	int rc = trove_cursor_open(s->db, &o, &c);
	view_after(s, v);
	CHECK(rc == 0, "reader: cursor_open: %s", trove_strerror(rc));
	int ok;
	walk_cursor(s, v, c, tu_below(&r->rng, 2) ? 1 : -1, "reader cursor", &ok);
	trove_cursor_close(c);
	if (ok)
		view_judge(s, v, "reader cursor");
}

static void *reader_main(void *arg)
{
	rstate *r = arg;
	stress *s = r->s;
	view *v = view_new(0, 64);
	while (running(s)) {
		uint64_t x = tu_below(&r->rng, 100);
		if (x < 45)
			r_point(r);
		else if (x < 65)
			r_group(r, v);
		else if (x < 78)
			r_shared(r);
		else if (x < 88)
			r_counter(r);
		else if (x < 92)
			count_check(s, "reader");
		else
			r_cursor(r, v);
		r->ops++;
	}
	view_free(s, v);
	return NULL;
}

/* ---- The snapshot thread ----------------------------------------------------------------- */

/* Position i in v->order of the first key >= gi (v->n if none). */
static int order_lower(const view *v, int gi)
{
	int lo = 0, hi = v->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (v->order[mid] < gi)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Whether cursor c sits on v->order[pos] (or off the end, pos out of
 * range, with rc TROVE_ENOTFOUND). */
static int cursor_at(stress *s, const view *v, trove_cursor *c, int rc, int pos)
{
	if (pos < 0 || pos >= v->n)
		return rc == TROVE_ENOTFOUND;
	if (rc != 0)
		return 0;
	size_t kl;
	const void *k = trove_cursor_key(c, &kl);
	return key_index(s, k, kl) == v->order[pos];
}

/* Seeks to random places and steps both ways from them; everything must
 * agree with the full walk. */
static void check_seeks(stress *s, view *v, tu_rng *rng)
{
	trove_cursor_opts o;
	memset(&o, 0, sizeof o);
	o.snap = v->snap;
	trove_cursor *c;
	int rc = trove_cursor_open(s->db, &o, &c);
	CHECK(rc == 0, "seeks: cursor_open: %s", trove_strerror(rc));
	int ok = 1;
	for (int i = 0; i < 16 && ok; i++) {
		int t = (int)tu_below(rng, NALL), between = (int)tu_below(rng, 2);
		char key[KEYMAX + 1];
		memcpy(key, s->names[t], s->nlen[t]);
		key[s->nlen[t]] = '!'; /* sorts after names[t], before names[t + 1] */
		size_t kl = s->nlen[t] + (size_t)between;
		int pos;
		if (tu_below(rng, 2)) {
			pos = order_lower(v, t + between);
			rc = trove_cursor_seek(c, key, kl);
		} else {
			pos = order_lower(v, t + 1) - 1;
			rc = trove_cursor_seek_for_prev(c, key, kl);
		}
		ok = cursor_at(s, v, c, rc, pos);
		for (int step = 0; step < 6 && ok && rc == 0; step++) {
			if (tu_below(rng, 2)) {
				rc = trove_cursor_next(c);
				pos++;
			} else {
				rc = trove_cursor_prev(c);
				pos--;
			}
			ok = cursor_at(s, v, c, rc, pos);
		}
		CHECK(ok,
		      "seeks: around %s%s the cursor disagrees with the walk (rc %s, position %d "
		      "of %d)",
		      s->names[t], between ? "!" : "", trove_strerror(rc), pos, v->n);
	}
	trove_cursor_close(c);
}

/* A sub-range of the snapshot through bounds or a prefix must be exactly
 * that part of the full walk, both ways. */
static void check_range(stress *s, view *v, tu_rng *rng, view *sub)
{
	trove_cursor_opts o;
	memset(&o, 0, sizeof o);
	o.snap = v->snap;
	int a, b;
	char prefix[KEYMAX];
	if (tu_below(rng, 2)) {
		a = (int)tu_below(rng, NALL);
		b = a + 1 + (int)tu_below(rng, NALL - a);
		o.lower = s->names[a];
		o.lower_len = s->nlen[a];
		if (b < NALL) {
			o.upper = s->names[b];
			o.upper_len = s->nlen[b];
		}
	} else {
		int w = (int)tu_below(rng, NWRITERS);
		a = NCOUNTERS + w * NKEYS + NPLAIN;
		b = NCOUNTERS + (w + 1) * NKEYS;
		o.prefix = prefix;
		o.prefix_len = (size_t)snprintf(prefix, sizeof prefix, "w%d-g", w);
	}
	view_reset(sub, a, b);
	sub->snapver = v->snapver;
	trove_cursor *c;
	int rc = trove_cursor_open(s->db, &o, &c), ok = 0;
	CHECK(rc == 0, "range: cursor_open: %s", trove_strerror(rc));
	walk_cursor(s, sub, c, tu_below(rng, 2) ? 1 : -1, "snapshot range", &ok);
	trove_cursor_close(c);
	if (!ok)
		return;
	int from = order_lower(v, a), to = order_lower(v, b);
	CHECK(sub->n == to - from, "range %s..%s: %d keys, the full walk has %d", s->names[a],
	      b < NALL ? s->names[b] : "end", sub->n, to - from);
	for (int i = 0; i < sub->n; i++) {
		int gi = sub->order[i];
		CHECK(gi == v->order[from + i] && sub->obs[gi - a] == v->obs[gi] &&
		              sub->exp[gi - a] == v->exp[gi],
		      "range: %s differs from the full walk", s->names[gi]);
	}
}

/* Lists every key through the snapshot page by page. */
static void check_list(stress *s, view *v, tu_rng *rng)
{
	size_t limit = 1 + tu_below(rng, 300);
	char after[KEYMAX];
	size_t alen = 0;
	int pos = 0;
	for (;;) {
		trove_key_list l;
		int rc = trove_list_keys(s->db, v->snap, NULL, 0, alen ? after : NULL, alen, limit,
		                         &l);
		CHECK(rc == 0, "list_keys: %s", trove_strerror(rc));
		int ok = l.count <= limit;
		for (size_t i = 0; i < l.count && ok; i++, pos++)
			ok = pos < v->n && key_index(s, l.keys[i], l.lens[i]) == v->order[pos];
		int more = l.more;
		size_t count = l.count;
		if (ok && l.count) {
			alen = l.lens[l.count - 1];
			ok = alen < KEYMAX;
			if (ok)
				memcpy(after, l.keys[l.count - 1], alen);
		}
		trove_key_list_free(&l);
		CHECK(ok, "list_keys: page ending near position %d disagrees with the walk", pos);
		if (!more || !count)
			break;
	}
	CHECK(pos == v->n, "list_keys: %d keys, the walk %d", pos, v->n);
}

/* A fresh snapshot of everything: walked forward and checked against the
 * published words, walked backward, sought, ranged and listed. */
static view *take_view(stress *s, tu_rng *rng, view *sub)
{
	view *v = view_new(0, NALL);
	view_before(s, v);
	v->snap = trove_snapshot_new(s->db);
	view_after(s, v);
	if (!v->snap) {
		failf(s, __LINE__, "snapshot_new failed");
		return v;
	}
	v->snapver = trove_snapshot_version(v->snap);
	trove_cursor_opts o;
	memset(&o, 0, sizeof o);
	o.snap = v->snap;
	trove_cursor *c;
	int rc = trove_cursor_open(s->db, &o, &c), ok;
	if (rc) {
		failf(s, __LINE__, "cursor_open: %s", trove_strerror(rc));
		return v;
	}
	walk_cursor(s, v, c, 1, "snapshot walk", &ok);
	if (ok) {
		view_judge(s, v, "snapshot walk");
		/* Backward: the same keys and values. */
		view_reset(sub, 0, NALL);
		sub->snapver = v->snapver;
		walk_cursor(s, sub, c, -1, "snapshot walk back", &ok);
		int same = ok && sub->n == v->n &&
		           !memcmp(sub->order, v->order, (size_t)v->n * sizeof *v->order) &&
		           !memcmp(sub->obs, v->obs, NALL * sizeof *v->obs) &&
		           !memcmp(sub->exp, v->exp, NALL * sizeof *v->exp);
		if (ok && !same)
			failf(s, __LINE__, "backward walk (%d keys) differs from forward (%d)",
			      sub->n, v->n);
	}
	trove_cursor_close(c);
	if (running(s))
		check_seeks(s, v, rng);
	if (running(s))
		check_range(s, v, rng, sub);
	if (running(s) && tu_below(rng, 4) == 0)
		check_list(s, v, rng);
	return v;
}

/* Walks an old snapshot again: compactions since must not have changed
 * what it sees. */
static void check_aged(stress *s, view *old, view *sub)
{
	trove_cursor_opts o;
	memset(&o, 0, sizeof o);
	o.snap = old->snap;
	trove_cursor *c;
	int rc = trove_cursor_open(s->db, &o, &c), ok;
	CHECK(rc == 0, "aged: cursor_open: %s", trove_strerror(rc));
	view_reset(sub, 0, NALL);
	sub->snapver = old->snapver;
	walk_cursor(s, sub, c, 1, "aged snapshot walk", &ok);
	trove_cursor_close(c);
	if (!ok)
		return;
	CHECK(sub->n == old->n && !memcmp(sub->order, old->order, (size_t)old->n * sizeof(int)) &&
	              !memcmp(sub->obs, old->obs, NALL * sizeof *old->obs) &&
	              !memcmp(sub->exp, old->exp, NALL * sizeof *old->exp),
	      "an old snapshot (version %llu) now shows %d keys, it showed %d",
	      (unsigned long long)old->snapver, sub->n, old->n);
	s->aged_checks++;
}

/* ---- Comparing the whole database with the models ------------------------------------- */

static const mkey *model_of(const stress *s, int gi)
{
	return &s->w[(gi - NCOUNTERS) / NKEYS].m[(gi - NCOUNTERS) % NKEYS];
}

static int failed(stress *s)
{
	return atomic_load(&s->failures) != 0;
}

/* Every key, value, expiry and known version; the counters; trove_count;
 * a cursor over everything.  The writers must be paused or gone.  Runs to
 * the end even when the time is up, so that the totals it checks cover
 * every key. */
static void compare_model(stress *s, const char *when)
{
	int64_t live = 0;
	for (int w = 0; w < NWRITERS; w++) {
		for (int k = 0; k < NKEYS && !failed(s); k++) {
			int gi = gindex(&s->w[w], k);
			void *val = NULL;
			size_t len = 0;
			trove_meta m;
			int rc = trove_get_ex(s->db, NULL, s->names[gi], s->nlen[gi], &val, &len,
			                      &m);
			model_match(s, &s->w[w].m[k], gi, rc, val, len, &m, when);
			trove_free(val);
			live += s->w[w].m[k].present;
		}
	}
	uint64_t incr[NCOUNTERS] = {0};
	for (int w = 0; w < NWRITERS; w++)
		for (int c = 0; c < NCOUNTERS; c++)
			incr[c] += s->w[w].incr_by[c];
	for (int c = 0; c < NCOUNTERS; c++) {
		void *val = NULL;
		size_t len = 0;
		uint64_t x = 0;
		int rc = trove_get(s->db, s->names[c], s->nlen[c], &val, &len);
		int bad = rc == 0 && counter_value(val, len, &x);
		trove_free(val);
		CHECK(incr[c] ? rc == 0 && !bad && x == incr[c] : rc == TROVE_ENOTFOUND,
		      "%s: counter %d is %llu (%s), the writers raised it %llu times", when, c,
		      (unsigned long long)x, trove_strerror(rc), (unsigned long long)incr[c]);
		live += incr[c] > 0;
	}
	if (failed(s))
		return;
	uint64_t n = 0;
	int rc = trove_count(s->db, &n);
	CHECK(rc == 0 && n == (uint64_t)live, "%s: trove_count says %llu (%s), the model %lld",
	      when, (unsigned long long)n, trove_strerror(rc), (long long)live);
	/* The same through a cursor: exactly the live keys, in order, with
	 * their values. */
	trove_cursor *c;
	rc = trove_cursor_open(s->db, NULL, &c);
	CHECK(rc == 0, "%s: cursor_open: %s", when, trove_strerror(rc));
	int want = -1, at = -1, same = 1;
	int64_t seen = 0;
	for (rc = trove_cursor_first(c); rc == 0 && same; rc = trove_cursor_next(c), seen++) {
		do
			want++;
		while (want < NALL &&
		       !(want < NCOUNTERS ? incr[want] > 0 : model_of(s, want)->present));
		size_t kl, vl;
		const void *k = trove_cursor_key(c, &kl);
		const void *val = trove_cursor_value(c, &vl);
		uint32_t stamp = 0;
		at = key_index(s, k, kl);
		same = at == want && (at < NCOUNTERS || (value_stamp(s, at, val, vl, &stamp) == 0 &&
		                                         stamp == model_of(s, at)->stamp));
	}
	trove_cursor_close(c);
	CHECK(same && rc == TROVE_ENOTFOUND && seen == live,
	      "%s: the cursor saw %lld keys, the model has %lld (at %s, expected %s: %s)", when,
	      (long long)seen, (long long)live, at >= 0 && at < NALL ? s->names[at] : "?",
	      want >= 0 && want < NALL ? s->names[want] : "the end", trove_strerror(rc));
}

static void checkpoint(stress *s)
{
	pthread_mutex_lock(&s->pause_mu);
	atomic_store(&s->pause_req, 1);
	while (s->paused < s->running)
		pthread_cond_wait(&s->pause_cv, &s->pause_mu);
	pthread_mutex_unlock(&s->pause_mu);
	if (!failed(s))
		compare_model(s, "checkpoint");
	s->checkpoints++;
	pthread_mutex_lock(&s->pause_mu);
	atomic_store(&s->pause_req, 0);
	pthread_cond_broadcast(&s->pause_cv);
	pthread_mutex_unlock(&s->pause_mu);
}

static void *snapshot_main(void *arg)
{
	stress *s = arg;
	tu_rng rng;
	tu_rng_seed(&rng, s->seed ^ 0x5eed5eedull);
	view *sub = view_new(0, NALL), *aged = NULL;
	double aged_at = 0, last_checkpoint = mono_s();
	while (running(s)) {
		view *v = take_view(s, &rng, sub);
		s->views++;
		pthread_rwlock_wrlock(&s->shared_lock);
		view *old = s->shared;
		s->shared = v;
		pthread_rwlock_unlock(&s->shared_lock);
		if (old && !aged && tu_below(&rng, 3) == 0) {
			aged = old;
			aged_at = mono_s();
		} else {
			view_free(s, old);
		}
		if (aged && mono_s() - aged_at > 0.7 && running(s)) {
			check_aged(s, aged, sub);
			view_free(s, aged);
			aged = NULL;
		}
		if (running(s))
			count_check(s, "snapshot thread");
		if (running(s) && mono_s() - last_checkpoint > 0.5) {
			checkpoint(s);
			last_checkpoint = mono_s();
		}
	}
	view_free(s, aged);
	pthread_rwlock_wrlock(&s->shared_lock);
	view_free(s, s->shared);
	s->shared = NULL;
	pthread_rwlock_unlock(&s->shared_lock);
	view_free(s, sub);
	return NULL;
}

/* ---- The test ------------------------------------------------------------------------------ */

static void open_db(stress *s)
{
	assert_int_equal(trove_open(s->dir, &s->o, &s->db), 0);
}

static void test_stress(void **state)
{
	(void)state;
	stress *s = calloc(1, sizeof *s);
	assert_non_null(s);
	const char *env = getenv("TROVE_STRESS_SECONDS");
	s->seconds = env && *env ? strtod(env, NULL) : 3.0;
	if (!(s->seconds > 0))
		s->seconds = 3.0;
	s->seed = tu_seed("stress");
	s->dir = tu_tmpdir("stress");
	assert_non_null(s->dir);
	pthread_mutex_init(&s->print_mu, NULL);
	pthread_mutex_init(&s->pause_mu, NULL);
	pthread_cond_init(&s->pause_cv, NULL);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* Readers come and go all the time: let the snapshot thread in. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->shared_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	make_names(s);
	trove_options_init(&s->o);
	s->o.sync = TROVE_SYNC_NONE;
	s->o.memory_budget = 1 << 20;
	s->o.log = engine_log;
	s->o.log_arg = s;
	open_db(s);

	double t0 = mono_s();
	s->running = NWRITERS;
	for (int i = 0; i < NWRITERS; i++) {
		wstate *w = &s->w[i];
		w->s = s;
		w->id = i;
		tu_rng_seed(&w->rng, s->seed + 1000003u * (uint64_t)(i + 1));
		assert_int_equal(pthread_create(&w->t, NULL, writer_main, w), 0);
	}
	for (int i = 0; i < NREADERS; i++) {
		rstate *r = &s->r[i];
		r->s = s;
		r->id = i;
		tu_rng_seed(&r->rng, s->seed + 7000003u * (uint64_t)(i + 1));
		assert_int_equal(pthread_create(&r->t, NULL, reader_main, r), 0);
	}
	assert_int_equal(pthread_create(&s->snap_thread, NULL, snapshot_main, s), 0);
	while (running(s) && mono_s() - t0 < s->seconds) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	atomic_store(&s->stop, 1);
	for (int i = 0; i < NWRITERS; i++)
		pthread_join(s->w[i].t, NULL);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(s->r[i].t, NULL);
	pthread_join(s->snap_thread, NULL);
	double elapsed = mono_s() - t0;
	assert_int_equal(atomic_load(&s->failures), 0);

	/* The end: exactly the models, before and after a reopen. */
	trove_stats st;
	assert_int_equal(trove_get_stats(s->db, &st), 0);
	compare_model(s, "after the run");
	assert_int_equal(atomic_load(&s->failures), 0);
	assert_int_equal(trove_close(s->db), 0);
	s->db = NULL;
	open_db(s);
	compare_model(s, "after reopening");
	assert_int_equal(atomic_load(&s->failures), 0);
	assert_int_equal(trove_verify(s->db, NULL, NULL), 0);
	assert_int_equal(atomic_load(&s->engine_errors), 0);

	uint64_t wops = 0, rops = 0, incr = 0, retries = 0, xfail = 0, batches = 0;
	for (int i = 0; i < NWRITERS; i++) {
		wops += s->w[i].ops;
		incr += s->w[i].incr;
		retries += s->w[i].incr_retries;
		xfail += s->w[i].expected_failures;
		batches += s->w[i].batches + s->w[i].txns + s->w[i].group_ops;
	}
	for (int i = 0; i < NREADERS; i++)
		rops += s->r[i].ops;
	printf("# stress: %.1f s, %llu ops, %llu flushes, %llu compactions\n", elapsed,
	       (unsigned long long)(wops + rops + s->views), (unsigned long long)st.flushes,
	       (unsigned long long)st.compactions);
	printf("# stress: %llu writer ops (%llu batches/transactions, %llu refused as predicted, "
	       "%llu increments, %llu retries), %llu reader ops, %llu snapshot walks (%llu "
	       "re-walked later), %llu checkpoints, %llu stalls, %llu group commits for %llu "
	       "writes\n",
	       (unsigned long long)wops, (unsigned long long)batches, (unsigned long long)xfail,
	       (unsigned long long)incr, (unsigned long long)retries, (unsigned long long)rops,
	       (unsigned long long)s->views, (unsigned long long)s->aged_checks,
	       (unsigned long long)s->checkpoints, (unsigned long long)st.stalls,
	       (unsigned long long)st.write_groups, (unsigned long long)st.writes);
	if (s->seconds >= 1) {
		assert_true(st.flushes > 0);
		assert_true(s->checkpoints > 0);
	}
	assert_int_equal(trove_close(s->db), 0);
	tu_rmrf(s->dir);
	free(s->dir);
	pthread_rwlock_destroy(&s->shared_lock);
	pthread_cond_destroy(&s->pause_cv);
	pthread_mutex_destroy(&s->pause_mu);
	pthread_mutex_destroy(&s->print_mu);
	free(s);
}

/* ---- Turning a merge backward while the memtable grows ---------------------------------
 *
 * A cursor turning backward re-seeks every child of the merging iterator
 * to the entry before the current key.  A memtable child may gain entries
 * (invisible to the cursor, but there) between that seek and the step back;
 * the stress test saw the merge then land on or after the key it had just
 * left, and trove_cursor_last return the upper bound itself.  racy_iter
 * plays the commit leader: it inserts into the memtable right after a seek.
 */

typedef struct racy_iter {
	tv_iter base;
	tv_iter *in;
	tv_memtable *m;
	const char *key; /* inserted after the next seek, if not NULL */
	uint64_t seq;
} racy_iter;

static racy_iter *racy(tv_iter *it)
{
	return (racy_iter *)it;
}

/* Publishes the inner iterator's position as its own. */
static void ri_publish(racy_iter *r)
{
	if (tv_iter_valid(r->in))
		tv_iter_publish(&r->base, tv_iter_key(r->in), tv_iter_value(r->in));
	else
		tv_iter_unpublish(&r->base);
}
static void ri_seek_first(tv_iter *it)
{
	tv_iter_seek_first(racy(it)->in);
	ri_publish(racy(it));
}
static void ri_seek_last(tv_iter *it)
{
	tv_iter_seek_last(racy(it)->in);
	ri_publish(racy(it));
}
static void ri_next(tv_iter *it)
{
	tv_iter_next(racy(it)->in);
	ri_publish(racy(it));
}
static void ri_prev(tv_iter *it)
{
	tv_iter_prev(racy(it)->in);
	ri_publish(racy(it));
}
static int ri_status(tv_iter *it)
{
	return tv_iter_status(racy(it)->in);
}

static void ri_seek(tv_iter *it, tv_slice target)
{
	racy_iter *r = racy(it);
	tv_iter_seek(r->in, target);
	ri_publish(r);
	if (r->key) {
		assert_int_equal(tv_mem_add(r->m, r->seq, TV_TYPE_PUT,
		                            tv_slice_make(r->key, strlen(r->key)),
		                            tv_slice_make("v", 1)),
		                 0);
		r->key = NULL;
	}
}

static void ri_destroy(tv_iter *it)
{
	tv_iter_destroy(racy(it)->in);
	free(it);
}

static const tv_iter_ops racy_ops = {
        ri_seek_first, ri_seek_last, ri_seek, ri_next, ri_prev, ri_status, ri_destroy,
};

static void mem_put(tv_memtable *m, const char *k, uint64_t seq)
{
	assert_int_equal(
	        tv_mem_add(m, seq, TV_TYPE_PUT, tv_slice_make(k, strlen(k)), tv_slice_make("v", 1)),
	        0);
}

static tv_slice ikey(char *buf, const char *k, uint64_t seq)
{
	size_t n = strlen(k);
	memcpy(buf, k, n);
	tv_put_fixed64(buf + n, tv_pack_trailer(seq, TV_TYPE_PUT));
	return tv_slice_make(buf, n + TV_TRAILER);
}

static void expect_key(tv_iter *it, const char *k, uint64_t seq)
{
	assert_true(tv_iter_valid(it));
	tv_slice key = tv_iter_key(it);
	assert_int_equal(tv_ikey_seq(key), seq);
	assert_int_equal(key.len, strlen(k) + TV_TRAILER);
	assert_memory_equal(key.data, k, strlen(k));
}

static void test_merge_reverse_while_memtable_grows(void **state)
{
	(void)state;
	/* Round 0: the growing child has nothing at or after "k2" when
	 * re-sought (so it seeks to its last entry); round 1: it has "k4"
	 * (so it steps back from there).  Either way "k3" arrives in the
	 * window. */
	for (int round = 0; round < 2; round++) {
		tv_memtable *fixed = tv_mem_new(), *growing = tv_mem_new();
		assert_non_null(fixed);
		assert_non_null(growing);
		mem_put(fixed, "k2", 5);
		mem_put(growing, "k1", 3);
		if (round == 1)
			mem_put(growing, "k4", 4);
		racy_iter *r = calloc(1, sizeof *r);
		assert_non_null(r);
		r->base.ops = &racy_ops;
		r->in = tv_mem_iter(growing);
		r->m = growing;
		tv_iter *children[2] = {tv_mem_iter(fixed), &r->base};
		tv_iter *m = tv_iter_merge(children, 2);
		assert_non_null(m);
		char buf[32];
		tv_iter_seek(m, ikey(buf, "k2", 100)); /* the newest entry of k2 */
		expect_key(m, "k2", 5);
		r->key = "k3"; /* a writer inserts k3 after the next seek */
		r->seq = 9;
		tv_iter_prev(m);
		expect_key(m, "k1", 3);
		tv_iter_prev(m);
		assert_false(tv_iter_valid(m));
		tv_iter_destroy(m);
		tv_mem_unref(fixed);
		tv_mem_unref(growing);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_merge_reverse_while_memtable_grows),
	        cmocka_unit_test(test_stress),
	};
	return cmocka_run_group_tests_name("stress", tests, NULL, NULL);
}
