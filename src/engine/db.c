/*
 * db.c - opening, recovery, point reads and the write path.
 *
 * Writes.  Every write, from a plain put to a conditional transaction, is
 * a batch handed to tv_write_internal.  Writers queue under db->mu; the
 * one at the head becomes the leader, takes a group of queued writers,
 * and without holding mu: checks each batch's conditions and resolves its
 * ops against the database plus the effects of earlier batches of the
 * group (the overlay), encodes the results as one log record, appends it
 * and inserts it into the memtable.  Then, under mu, it publishes the new
 * last sequence number and wakes the group - or, if the group must be
 * durable, leaves the writer queue to the next leader and waits in the
 * sync pipeline, where one fsync at a time covers every group appended
 * before it began (under sync=always the group's writes are published
 * only then).  Because the leader alone decides conditions and applies
 * writes, conditional writes are atomic and the live-key counter is exact.
 *
 * Reads pin a super version (memtables + table version) and look the key
 * up newest first, at the published sequence number or a snapshot's.
 *
 * Recovery replays the logs newer than the manifest's log number into a
 * memtable, flushes it to a level-0 table and starts a fresh log, so a
 * torn tail is never appended to.
 */
#include "db.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "../util/arena.h"
#include "../util/checksum.h"
#include "../util/coding.h"
#include "../util/grow.h"
#include "bloom.h"
#include "ikey.h"

/* ---- Time ------------------------------------------------------------------ */

int64_t tv_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t tv_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- Messages --------------------------------------------------------------- */

void tv_db_log(void *arg, int level, const char *msg)
{
	trove_db *db = arg;
	if (level == TROVE_LOG_ERROR) {
		pthread_mutex_lock(&db->err_mu);
		snprintf(db->errmsg, sizeof db->errmsg, "%s", msg);
		pthread_mutex_unlock(&db->err_mu);
	}
	if (db->opts.log)
		db->opts.log(db->opts.log_arg, level, msg);
}

char *trove_errmsg(trove_db *db, char *buf, size_t len)
{
	if (!buf || len == 0)
		return buf;
	buf[0] = 0;
	if (!db)
		return buf;
	pthread_mutex_lock(&db->err_mu);
	snprintf(buf, len, "%s", db->errmsg);
	pthread_mutex_unlock(&db->err_mu);
	return buf;
}

void trove_free(void *p)
{
	free(p);
}

/* ---- Stored keys ---------------------------------------------------------------- */

tv_slice tv_stored_key(char *buf, int ns, const void *key, size_t klen)
{
	buf[0] = (char)ns;
	memcpy(buf + 1, key, klen);
	return tv_slice_make(buf, klen + 1);
}

static void put_be64(char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (char)(v & 0xff);
		v >>= 8;
	}
}

/* The expiry-index key of user key k (a stored key: namespace byte first)
 * expiring at exp, built in buf (TV_MAX_STORED_KEY bytes). */
static tv_slice expiry_key(char *buf, int64_t exp, tv_slice skey)
{
	buf[0] = TV_NS_EXPIRY;
	put_be64(buf + 1, (uint64_t)exp);
	memcpy(buf + 9, skey.data + 1, skey.len - 1);
	return tv_slice_make(buf, skey.len + 8);
}

/* ---- Super versions ----------------------------------------------------------- */

/* Drops the memtables of a super version whose last reference went (no
 * lock needed: nobody else can pin it any more). */
static void super_drop_mems(tv_super *s)
{
	assert(atomic_load(&s->refs) == 0);
	tv_mem_unref(s->mem);
	if (s->imm)
		tv_mem_unref(s->imm);
}

/* Then drops its version and puts it on the free list; files that died
 * with the version are added to dead.  Called with mu held. */
static void super_retire(trove_db *db, tv_super *s, tv_deadlist *dead)
{
	assert(atomic_load(&s->refs) == 0);
	tv_version_unref(s->version, dead);
	s->next_free = db->super_free;
	db->super_free = s;
}

int tv_super_install(trove_db *db)
{
	tv_super *s = db->super_free;
	if (s)
		db->super_free = s->next_free;
	else if (!(s = malloc(sizeof *s)))
		return TROVE_ENOMEM;
	s->mem = db->mem;
	tv_mem_ref(s->mem);
	s->imm = db->imm;
	if (s->imm)
		tv_mem_ref(s->imm);
	s->version = db->vs.current;
	s->tables_seq = db->vs.last_seq;
	/* Once per version rather than once per write group (a walk of every
	 * level's files: 78 instructions of a single put). */
	s->tables_hold_expiry = tv_tables_hold_expiry(s->version);
	tv_version_ref(s->version);
	/* A reader that loaded this struct in an earlier life may now take a
	 * reference; it keeps it only once the store below makes s current,
	 * and that store publishes the fields above to it. */
	atomic_store(&s->refs, 1);
	tv_super *old = atomic_exchange_explicit(&db->super, s, memory_order_acq_rel);
	if (old && atomic_fetch_sub(&old->refs, 1) == 1) {
		tv_deadlist dead = { 0 };
		super_drop_mems(old);
		super_retire(db, old, &dead);
		/* Deleting under mu is rare (files only die here when no reader
		 * pinned the old super) and keeps this path simple. */
		tv_delete_dead(db, &dead);
	}
	return 0;
}

/* Lock-free: readers never contend on mu with writers or each other.  The
 * struct a reader loads stays a tv_super whatever happens meanwhile (they
 * are recycled, not freed, while the database is open), so taking a
 * reference is safe; it counts only if the count was above zero (not a
 * retired struct) and the struct is still the current one afterwards
 * (not recycled into an older or newer version the reader did not ask
 * for).  Otherwise the reader gives it back and tries again. */
tv_super *tv_super_get(trove_db *db)
{
	for (;;) {
		tv_super *s = atomic_load_explicit(&db->super, memory_order_acquire);
		int r = atomic_load_explicit(&s->refs, memory_order_relaxed);
		while (r > 0 && !atomic_compare_exchange_weak_explicit(&s->refs, &r, r + 1,
		                                                       memory_order_acquire,
		                                                       memory_order_relaxed))
			;
		if (r == 0)
			continue; /* retired: db->super has moved on */
		if (atomic_load_explicit(&db->super, memory_order_acquire) == s)
			return s;
		tv_super_put(db, s);
	}
}

void tv_super_put(trove_db *db, tv_super *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	tv_deadlist dead = { 0 };
	super_drop_mems(s);
	pthread_mutex_lock(&db->mu);
	super_retire(db, s, &dead);
	pthread_mutex_unlock(&db->mu);
	tv_delete_dead(db, &dead);
}

void tv_delete_dead(trove_db *db, tv_deadlist *dead)
{
	char path[4096];
	for (int i = 0; i < dead->n; i++) {
		tv_file_path(path, sizeof path, db->path, dead->nums[i], "sst");
		db->vfs->remove(db->vfs, path);
	}
	free(dead->nums);
	dead->nums = NULL;
	dead->n = dead->cap = 0;
}

/* ---- Point lookups -------------------------------------------------------------- */

/* Where a lookup puts the value it finds: the stored value's first
 * `limit` bytes into a buffer that grows (buf), or else the user's value
 * (the stored one less its expiry) into a caller's buffer of `cap` bytes
 * (out), cut to fit, unless the entry has expired by `now` (0: read the
 * clock if it has an expiry); the sink then says what it found. */
typedef struct vsink {
	tv_buf *buf;
	size_t limit;
	char *out;
	size_t cap;
	int64_t now;
	size_t len;  /* the user's value's whole length */
	int64_t exp; /* its expiry, 0 if none */
	bool expired;
} vsink;

/* Splits a stored value into its expiry and the user's value. */
static int64_t split_value(unsigned type, tv_slice *v)
{
	if (type != TV_TYPE_PUT_EXP || v->len < 8)
		return 0;
	int64_t exp = (int64_t)tv_get_fixed64(v->data);
	v->data += 8;
	v->len -= 8;
	return exp;
}

/* Gives v, the stored value of an entry of `type` (not a tombstone), to
 * the sink: 0 or TROVE_ENOMEM. */
static int sink_value(vsink *k, unsigned type, tv_slice v)
{
	if (k->buf) {
		tv_buf_clear(k->buf);
		return tv_buf_append(k->buf, v.data, v.len < k->limit ? v.len : k->limit);
	}
	k->exp = split_value(type, &v);
	k->expired = k->exp && k->exp <= (k->now ? k->now : tv_now_ms());
	k->len = v.len;
	if (!k->expired && v.len && k->cap)
		memcpy(k->out, v.data, v.len < k->cap ? v.len : k->cap);
	return 0;
}

typedef struct found {
	unsigned type;
	uint64_t seq;
	vsink *val;
	int rc;
} found;

static int found_cb(void *arg, tv_slice ikey, tv_slice value)
{
	found *f = arg;
	f->type = tv_ikey_type(ikey);
	f->seq = tv_ikey_seq(ikey);
	if (f->val && f->type != TV_TYPE_DEL && sink_value(f->val, f->type, value))
		f->rc = TROVE_ENOMEM;
	return 1;
}

/* The internal key that seeks skey's newest entry at or below seq, built
 * in stack (SEEK_STACK bytes) or, for a longer key, in malloc'd memory
 * the caller frees if it is not stack; NULL if that fails. */
#define SEEK_STACK 256
static char *seek_key(char *stack, tv_slice skey, uint64_t seq)
{
	char *kb = skey.len + TV_TRAILER <= SEEK_STACK ? stack : malloc(skey.len + TV_TRAILER);
	if (kb) {
		memcpy(kb, skey.data, skey.len);
		tv_put_fixed64(kb + skey.len, tv_pack_trailer(seq, TV_SEEK_TYPE));
	}
	return kb;
}

/* The newest entry of key (hashed: hash) at or below seq in the pinned
 * memtables (the view under the memtables that resolve_entry reads has
 * none): 1 and *v pointing into the memtable, or 0.  With for_write (the
 * commit leader, for a group of one write) the current memtable is asked
 * through tv_mem_get_for_write. */
static int mem_state(tv_super *s, tv_slice key, uint64_t hash, uint64_t seq, int for_write,
                     unsigned *type, tv_slice *v, uint64_t *entry_seq)
{
	if (s->mem && (for_write ? tv_mem_get_for_write(s->mem, key, hash, seq, type, v, entry_seq)
	                         : tv_mem_get_hashed(s->mem, key, hash, seq, type, v, entry_seq)))
		return 1;
	return s->imm && tv_mem_get_hashed(s->imm, key, hash, seq, type, v, entry_seq);
}

/* The newest entry of stored key skey (hashed: hash, tv_bloom_hash, one
 * for every filter and index) at or below seq, searching memtables and
 * tables: 1 with *type, *entry_seq and, if val is not NULL and the entry
 * is not a tombstone, its value given to val; 0 if none; or an error.
 * for_write as for mem_state. */
static int lookup(tv_super *s, tv_slice skey, uint64_t hash, uint64_t seq, unsigned *type,
                  vsink *val, uint64_t *entry_seq, int for_write)
{
	/* The tables' filter lines load while the memtables are read. */
	char stack[SEEK_STACK];
	char *kb = seek_key(stack, skey, seq);
	if (!kb)
		return TROVE_ENOMEM;
	tv_version_lookup lk;
	tv_version_get_begin(&lk, s->version, tv_slice_make(kb, skey.len + TV_TRAILER), hash);
	tv_slice v;
	int rc = 1;
	found f = { 0, 0, val, 0 };
	bool in_mem = mem_state(s, skey, hash, seq, for_write, type, &v, entry_seq);
	if (!in_mem)
		rc = tv_version_get_end(&lk, found_cb, &f);
	else if (val && *type != TV_TYPE_DEL && sink_value(val, *type, v))
		rc = TROVE_ENOMEM;
	if (kb != stack)
		free(kb);
	if (rc < 0 || in_mem)
		return rc;
	if (f.rc)
		return f.rc;
	if (rc == 1) {
		*type = f.type;
		*entry_seq = f.seq;
	}
	return rc;
}

/* ---- Unresolved writes ----------------------------------------------------------
 *
 * A write that did not read its key's prior state (see get_state) leaves
 * an unresolved entry in the memtable; its change to the live-key count is
 * worked out here when the count is asked for or the memtable is flushed.
 */

/* A tv_mem_resolve_fn: the count change of an unresolved entry of type
 * `type` at seq, against the newest entry before it: the older entry in
 * its own memtable, or else the newest in the sources older than that
 * memtable, the super version arg.  That entry is always the same
 * (memtables reach the tables in order, and compaction keeps every key's
 * newest entry, tombstones aside), whenever it is asked. */
static int resolve_entry(void *arg, tv_slice key, uint64_t seq, unsigned type, int older,
                         int *delta)
{
	int existed = older >= 0 && (unsigned)older != TV_TYPE_DEL;
	if (older < 0) {
		unsigned t = 0;
		uint64_t es;
		int rc = lookup(arg, key, tv_bloom_hash(key), seq - 1, &t, NULL, &es, 0);
		if (rc < 0)
			return rc;
		existed = rc == 1 && t != TV_TYPE_DEL;
	}
	*delta = (type != TV_TYPE_DEL) - existed;
	return 0;
}

int tv_unresolved_delta(tv_super *s, uint64_t seq, int64_t *delta)
{
	int64_t dm = 0, di = 0;
	/* What lies under each memtable. */
	tv_super under_mem = { .mem = s->imm, .imm = NULL, .version = s->version };
	tv_super under_imm = { .mem = NULL, .imm = NULL, .version = s->version };
	int rc = tv_mem_unresolved_delta(s->mem, seq, resolve_entry, &under_mem, &dm);
	if (!rc && s->imm)
		rc = tv_mem_unresolved_delta(s->imm, seq, resolve_entry, &under_imm, &di);
	if (!rc)
		*delta = dm + di;
	return rc;
}

/* ---- Resolving while a memtable is written out ----------------------------------
 *
 * The flush walks its memtable in key order anyway, so it resolves the
 * unresolved entries on that walk instead of one point read each in
 * sequence order: an entry whose key has an older entry next in the walk
 * takes that entry's type; the others read the tables under the memtable
 * through a tv_version_probe, whose iterators move forward only, so the
 * several keys that fall in one block find it in hand instead of
 * searching the index and the block cache again; a memtable whose key
 * range overlaps no table's (a bulk load in key order) reads no table.
 * When every entry of the memtable is unresolved (a bulk load, or writes of keys no other
 * memtable held), the walk resolves each; otherwise it knows an
 * unresolved entry by its key's address, looked up in the list of them
 * sorted by address (8 bytes an entry, mapped, for the flush alone, and
 * as much again while it is sorted).  A lookup searches a summary of
 * that list first, every FIRSTS_EVERY-th address (an eighth of its size,
 * kept from the sort's room, small enough to stay in the CPU's caches),
 * then the one cache line of the list it points to: one miss, where a
 * binary search of the whole list missed at each of its last ~8 steps.
 */

#define FIRSTS_EVERY 8 /* addresses to a cache line */

/* Sorts the n > 0 addresses of a by value, with tmp (n more) to move them
 * through: a radix sort, a byte a pass, skipping the bytes all share.
 * Not qsort, whose glibc version mallocs a copy of the array (a MiB or
 * two): freeing it raised malloc's mmap and trim thresholds, after which
 * the flush thread's heap kept that much free memory for good. */
static void sort_addrs(const char **a, const char **tmp, size_t n)
{
	const char **src = a, **dst = tmp;
	for (unsigned shift = 0; shift < 8 * sizeof(uintptr_t); shift += 8) {
		size_t at[256] = { 0 };
		for (size_t i = 0; i < n; i++)
			at[((uintptr_t)src[i] >> shift) & 255]++;
		if (at[((uintptr_t)src[0] >> shift) & 255] == n)
			continue;
		size_t sum = 0;
		for (int b = 0; b < 256; b++) {
			size_t c = at[b];
			at[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[at[((uintptr_t)src[i] >> shift) & 255]++] = src[i];
		const char **t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof *a);
}

/* Whether no table of v can hold a key of m (an empty m included):
 * then every unresolved entry of m whose key has no older one in m is
 * new, and the flush reads no table (a bulk load in key order). */
static int memtable_misses_tables(tv_memtable *m, const tv_version *v, int *none)
{
	tv_iter *it = tv_mem_iter(m);
	if (!it)
		return TROVE_ENOMEM;
	tv_iter_seek_first(it);
	*none = 1;
	if (tv_iter_valid(it)) {
		tv_slice lo = tv_ikey_user(tv_iter_key(it));
		tv_iter_seek_last(it);
		*none = !tv_version_overlaps_any(v, lo, tv_ikey_user(tv_iter_key(it)));
	}
	tv_iter_destroy(it);
	return 0;
}

int tv_flush_resolver_init(tv_flush_resolver *r, tv_memtable *m, tv_version *under)
{
	memset(r, 0, sizeof *r);
	tv_buf_init(&r->seek);
	size_t n = tv_mem_unresolved_keys(m, NULL, 0);
	if (n == 0)
		return 0;
	r->all = n == tv_mem_entries(m);
	int rc = memtable_misses_tables(m, under, &r->no_table);
	if (rc)
		return rc;
	if (r->all)
		return r->no_table ? 0 : tv_version_probe_new(under, &r->probe);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	r->mapped = (n * sizeof *r->keys + page - 1) / page * page;
	/* The keys, then as much again to sort them, unmapped once sorted
	 * but for the summary at its start. */
	char *p = mmap(NULL, 2 * r->mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		r->mapped = 0;
		return TROVE_ENOMEM;
	}
	r->keys = (const char **)(void *)p;
	/* The list only grows, and only while m is the live memtable. */
	r->nkeys = tv_mem_unresolved_keys(m, r->keys, n);
	assert(r->nkeys == n);
	const char **tmp = (const char **)(void *)(p + r->mapped);
	sort_addrs(r->keys, tmp, n);
	r->firsts = tmp;
	r->nfirsts = (n + FIRSTS_EVERY - 1) / FIRSTS_EVERY;
	for (size_t i = 0; i < r->nfirsts; i++)
		tmp[i] = r->keys[i * FIRSTS_EVERY];
	r->firsts_mapped = (r->nfirsts * sizeof *tmp + page - 1) / page * page;
	if (r->firsts_mapped < r->mapped)
		munmap(p + r->mapped + r->firsts_mapped, r->mapped - r->firsts_mapped);
	rc = r->no_table ? 0 : tv_version_probe_new(under, &r->probe);
	if (rc)
		tv_flush_resolver_fini(r);
	return rc;
}

void tv_flush_resolver_fini(tv_flush_resolver *r)
{
	tv_version_probe_free(r->probe);
	tv_buf_free(&r->seek);
	if (r->mapped)
		munmap(r->keys, r->mapped);
	if (r->firsts_mapped)
		munmap(r->firsts, r->firsts_mapped);
	memset(r, 0, sizeof *r);
}

static int is_unresolved(const tv_flush_resolver *r, const char *key)
{
	/* The first summary entry above key; the line before it holds key
	 * if any does. */
	size_t lo = 0, hi = r->nfirsts;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((uintptr_t)r->firsts[mid] <= (uintptr_t)key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	size_t i = (lo - 1) * FIRSTS_EVERY;
	size_t end = i + FIRSTS_EVERY < r->nkeys ? i + FIRSTS_EVERY : r->nkeys;
	for (; i < end; i++)
		if (r->keys[i] == key)
			return 1;
	return 0;
}

/* Resolves the pending entry against the tables under the memtable. */
static int resolve_pending(tv_flush_resolver *r)
{
	if (r->no_table) {
		r->delta += tv_ikey_type(r->pending) != TV_TYPE_DEL;
		r->pending.len = 0;
		return 0;
	}
	found f = { 0, 0, NULL, 0 };
	int rc = tv_version_get_end(&r->lk, found_cb, &f);
	if (rc < 0)
		return rc;
	r->delta += (tv_ikey_type(r->pending) != TV_TYPE_DEL) - (rc == 1 && f.type != TV_TYPE_DEL);
	r->pending.len = 0;
	return 0;
}

int tv_flush_resolver_add(tv_flush_resolver *r, tv_slice ikey, uint64_t hash)
{
	if (!r->probe && !r->no_table)
		return 0;
	if (r->pending.len) {
		if (tv_ukey_cmp(tv_ikey_user(ikey), tv_ikey_user(r->pending)) == 0) {
			/* The key's next older entry, in the same memtable. */
			unsigned older = tv_ikey_type(ikey);
			r->delta += (tv_ikey_type(r->pending) != TV_TYPE_DEL) - (older != TV_TYPE_DEL);
			r->pending.len = 0;
		} else {
			int rc = resolve_pending(r);
			if (rc)
				return rc;
		}
	}
	if (!r->all && !is_unresolved(r, ikey.data))
		return 0;
	r->pending = ikey;
	if (r->no_table)
		return 0;
	/* The tables' filter lines load while the entry is written out; the
	 * next entry's key shows whether the read is needed. */
	tv_slice key = tv_ikey_user(ikey);
	tv_buf_clear(&r->seek);
	if (tv_buf_append(&r->seek, key.data, key.len) ||
	    tv_buf_put_fixed64(&r->seek, tv_pack_trailer(tv_ikey_seq(ikey) - 1, TV_SEEK_TYPE)))
		return TROVE_ENOMEM;
	tv_version_probe_begin(&r->lk, r->probe, tv_buf_slice(&r->seek), hash);
	return 0;
}

int tv_flush_resolver_finish(tv_flush_resolver *r, int64_t *delta)
{
	int rc = r->pending.len ? resolve_pending(r) : 0;
	if (!rc)
		*delta = r->delta;
	return rc;
}

static int check_key(const void *key, size_t klen)
{
	if (!key || klen == 0)
		return TROVE_EINVAL;
	return klen > TROVE_MAX_KEY ? TROVE_ETOOBIG : 0;
}

void tv_count_reads(trove_db *db, uint64_t n)
{
	uint64_t id = (uint64_t)(uintptr_t)pthread_self() * 0x9e3779b97f4a7c15ull;
	atomic_fetch_add_explicit(&db->st_reads[(id >> 32) % TV_READ_STRIPES].n, n, memory_order_relaxed);
}

uint64_t tv_reads(trove_db *db)
{
	uint64_t n = 0;
	for (int i = 0; i < TV_READ_STRIPES; i++)
		n += atomic_load_explicit(&db->st_reads[i].n, memory_order_relaxed);
	return n;
}

static uint64_t read_seq(trove_db *db, const trove_snapshot *snap)
{
	return snap ? snap->seq : atomic_load_explicit(&db->last_seq, memory_order_acquire);
}

/* Looks key up in s at seq, giving its value to the sink k: a growing
 * buffer (k->limit SIZE_MAX for the user's value, 8 for no more than its
 * expiry prefix) is left holding the user's value, or as much of it as it
 * took.  Fills meta (may be NULL) on success.  TROVE_ENOTFOUND for
 * missing or expired keys, judged against k->now (0: read the clock if
 * the key has an expiry). */
static int get_in(tv_super *s, uint64_t seq, const void *key, size_t klen, vsink *k,
                  trove_meta *meta)
{
	char stack[256];
	char *kb = klen + 1 <= sizeof stack ? stack : malloc(klen + 1);
	if (!kb)
		return TROVE_ENOMEM;
	tv_slice skey = tv_stored_key(kb, TV_NS_DATA, key, klen);
	unsigned type = 0;
	uint64_t eseq = 0;
	int rc = lookup(s, skey, tv_bloom_hash(skey), seq, &type, k, &eseq, 0);
	if (kb != stack)
		free(kb);
	if (rc < 0)
		return rc;
	if (rc == 0 || type == TV_TYPE_DEL)
		return TROVE_ENOTFOUND;
	if (k->buf) { /* the sink kept the stored value: split it here */
		tv_slice v = tv_buf_slice(k->buf);
		k->exp = split_value(type, &v);
		k->expired = k->exp && k->exp <= (k->now ? k->now : tv_now_ms());
		if (v.len && v.data != k->buf->data)
			memmove(k->buf->data, v.data, v.len);
		k->buf->len = k->len = v.len;
	}
	if (k->expired)
		return TROVE_ENOTFOUND;
	if (meta) {
		meta->version = eseq;
		meta->expire_at_ms = k->exp;
	}
	return 0;
}

/* One read of key at snap (NULL: the latest state) into the sink k. */
static int get_one(trove_db *db, const trove_snapshot *snap, const void *key, size_t klen,
                   vsink *k, trove_meta *meta)
{
	int rc = check_key(key, klen);
	if (rc)
		return rc;
	tv_count_reads(db, 1);
	tv_super *s = tv_super_get(db);
	rc = get_in(s, read_seq(db, snap), key, klen, k, meta);
	tv_super_put(db, s);
	return rc;
}

int trove_get_ex(trove_db *db, const trove_snapshot *snap, const void *key, size_t klen,
                 void **val, size_t *vlen, trove_meta *meta)
{
	if (!db || (val && !vlen) || (!val && vlen))
		return TROVE_EINVAL;
	tv_buf buf;
	tv_buf_init(&buf);
	vsink k = { .buf = &buf, .limit = val ? SIZE_MAX : 8 };
	int rc = get_one(db, snap, key, klen, &k, meta);
	if (rc == 0 && val) {
		/* A terminating NUL for convenience (documented). */
		if (tv_buf_reserve(&buf, 1)) {
			tv_buf_free(&buf);
			return TROVE_ENOMEM;
		}
		buf.data[buf.len] = 0;
		*vlen = buf.len;
		*val = buf.data;
		return 0;
	}
	tv_buf_free(&buf);
	return rc;
}

int trove_get_into(trove_db *db, const trove_snapshot *snap, const void *key, size_t klen,
                   void *buf, size_t cap, size_t *vlen, trove_meta *meta)
{
	if (!db || !vlen || (!buf && cap))
		return TROVE_EINVAL;
	vsink k = { .out = buf, .cap = cap };
	int rc = get_one(db, snap, key, klen, &k, meta);
	if (rc == 0)
		*vlen = k.len;
	return rc;
}

int trove_get(trove_db *db, const void *key, size_t klen, void **val, size_t *vlen)
{
	if (!val || !vlen)
		return TROVE_EINVAL;
	return trove_get_ex(db, NULL, key, klen, val, vlen, NULL);
}

int trove_exists(trove_db *db, const void *key, size_t klen)
{
	return trove_get_ex(db, NULL, key, klen, NULL, NULL, NULL);
}

int trove_ttl(trove_db *db, const void *key, size_t klen, int64_t *ttl_ms)
{
	if (!ttl_ms)
		return TROVE_EINVAL;
	trove_meta m;
	int rc = trove_get_ex(db, NULL, key, klen, NULL, NULL, &m);
	if (rc)
		return rc;
	if (m.expire_at_ms == 0) {
		*ttl_ms = -1;
	} else {
		int64_t left = m.expire_at_ms - tv_now_ms();
		*ttl_ms = left > 0 ? left : 0;
	}
	return 0;
}

int trove_mget(trove_db *db, const trove_snapshot *snap, size_t n, const void *const *keys,
               const size_t *klens, void **vals, size_t *vlens, int *status)
{
	if (!db || (n && (!keys || !klens || !vals || !vlens || !status)))
		return TROVE_EINVAL;
	tv_super *s = tv_super_get(db);
	uint64_t seq = read_seq(db, snap);
	int64_t now = tv_now_ms();
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		vals[i] = NULL;
		vlens[i] = 0;
		status[i] = check_key(keys[i], klens[i]);
		if (status[i])
			continue;
		tv_buf buf;
		tv_buf_init(&buf);
		vsink k = { .buf = &buf, .limit = SIZE_MAX, .now = now };
		status[i] = get_in(s, seq, keys[i], klens[i], &k, NULL);
		if (status[i] == 0 && tv_buf_reserve(&buf, 1) == 0) {
			buf.data[buf.len] = 0;
			vals[i] = buf.data;
			vlens[i] = buf.len;
		} else {
			if (status[i] == 0)
				status[i] = TROVE_ENOMEM;
			tv_buf_free(&buf);
		}
		if (status[i] && status[i] != TROVE_ENOTFOUND && status[i] != TROVE_EINVAL &&
		    status[i] != TROVE_ETOOBIG && !rc)
			rc = status[i];
	}
	tv_count_reads(db, n);
	tv_super_put(db, s);
	return rc;
}

/* ---- The write path: resolving a group ---------------------------------------
 *
 * The overlay maps every stored key the group has written so far to its
 * newest state, so that later batches of the same group see earlier ones
 * before anything reaches the memtable.
 */

/* In a log record, the high bit of an entry's type byte marks an
 * unresolved entry: written without reading its key's prior state, so its
 * change to the live-key count is not in its batch's count. */
#define REC_UNRESOLVED 0x80

typedef struct ov_entry {
	tv_slice key;   /* stored key, in the group arena */
	uint64_t hash;  /* of the key (tv_bloom_hash) */
	unsigned type;  /* TV_TYPE_* */
	int64_t exp;
	tv_slice value; /* the user's value */
	uint64_t seq;   /* the sequence its batch gets */
	uint64_t batch; /* id of the last batch that wrote it */
	int unresolved; /* that batch wrote it without knowing its prior state */
} ov_entry;

typedef struct kstate {
	int exists;     /* the newest entry is a value (expired or not) */
	int64_t exp;
	uint64_t seq;
	tv_slice value; /* valid until the next get_state */
	uint64_t hash;  /* of the key (tv_bloom_hash), for set_entry and lookups */
	int unresolved; /* 0: the state is known; UNREAD: it was not read (the
	                   key is in no memtable and has no expiry); SAME_BATCH:
	                   the current batch wrote the key unresolved */
} kstate;

enum { UNREAD = 1, SAME_BATCH = 2 };

/* The state a condition of the current batch read for its key (user key,
 * in the batch; st.value is not kept). */
typedef struct known_state {
	tv_slice key;
	kstate st;
} known_state;

/* One entry of the group's record as the memtable takes it: where its
 * stored key and its value (with the expiry in front, for
 * TV_TYPE_PUT_EXP) lie in the record, and what the record's decoder would
 * work out again. */
typedef struct rec_put {
	size_t key_off, val_off;
	uint32_t klen, vlen;
	uint64_t hash, seq;
	unsigned char type, unresolved;
} rec_put;

typedef struct group {
	trove_db *db;
	tv_super *s;
	uint64_t base_seq; /* sequence everything before the group has */
	int64_t now;       /* the group's clock, read at first need; 0 before */
	tv_arena arena;
	ov_entry *ents;
	size_t nents, capents;
	uint32_t *slots; /* open addressing: entry index + 1, 0 = empty */
	size_t nslots;
	size_t *touched; /* entries written by the current batch */
	size_t ntouched, captouched;
	uint64_t batch_id;
	int64_t delta;   /* live-key change of the current batch, but for
	                    what its unresolved entries changed */
	int removed;
	int blind_ok;    /* no table holds an expiry: a key no memtable holds
	                    has no expiry, so a write may skip reading it */
	int one_op;      /* the group is one write of one key: the leader's
	                    search of the memtable also prepares its insert
	                    (with more keys, the inserts come after every
	                    search, and the filter and index answer faster) */
	tv_buf tmp;
	tv_buf *rec;
	rec_put *puts; /* the record's entries, in its order */
	size_t nputs, capputs;
	uint32_t nbatches;
	int64_t total_delta;
	uint64_t nops;
	/* What the current batch's conditions read, in their order, so that
	 * a write of a key a condition read (INCR's, WATCH's) reuses its
	 * state instead of looking the key up again; known_pos walks it
	 * beside the batch's ops, both in key order when the writer sorted
	 * them (docs/ENGINE.md, write path). */
	known_state *known;
	size_t nknown, capknown, known_pos;
} group;

/* The time the whole group judges expiry by.  Read only when a key with
 * an expiry is met: plain writes never need the clock. */
static int64_t group_now(group *g)
{
	if (!g->now)
		g->now = tv_now_ms();
	return g->now;
}

static int live(group *g, const kstate *st)
{
	return st->exists && (st->exp == 0 || st->exp > group_now(g));
}

static ov_entry *ov_find(group *g, tv_slice key, uint64_t h)
{
	if (!g->nslots)
		return NULL;
	for (size_t i = h & (g->nslots - 1);; i = (i + 1) & (g->nslots - 1)) {
		uint32_t s = g->slots[i];
		if (!s)
			return NULL;
		if (tv_slice_eq(g->ents[s - 1].key, key))
			return &g->ents[s - 1];
	}
}

static int ov_grow(group *g)
{
	size_t n = g->nslots ? g->nslots * 2 : 64;
	uint32_t *slots = calloc(n, sizeof *slots);
	if (!slots)
		return TROVE_ENOMEM;
	for (size_t e = 0; e < g->nents; e++) {
		tv_slice k = g->ents[e].key;
		size_t i = tv_hash64(k.data, k.len) & (n - 1);
		while (slots[i])
			i = (i + 1) & (n - 1);
		slots[i] = (uint32_t)(e + 1);
	}
	free(g->slots);
	g->slots = slots;
	g->nslots = n;
	return 0;
}

/* Records the new state of a stored key, whose tv_hash64 is h, for the
 * current batch. */
static int set_entry(group *g, tv_slice key, uint64_t h, unsigned type, int64_t exp,
                     tv_slice value, int unresolved)
{
	ov_entry *e = ov_find(g, key, h);
	if (!e) {
		if ((g->nents + 1) * 2 > g->nslots && ov_grow(g))
			return TROVE_ENOMEM;
		if (g->nents == g->capents &&
		    tv_grow(&g->ents, &g->capents, g->nents + 1, sizeof *g->ents, 32))
			return TROVE_ENOMEM;
		char *kc = tv_arena_alloc(&g->arena, key.len);
		if (!kc)
			return TROVE_ENOMEM;
		memcpy(kc, key.data, key.len);
		e = &g->ents[g->nents];
		e->key = tv_slice_make(kc, key.len);
		e->hash = h;
		e->batch = 0;
		size_t i = h & (g->nslots - 1);
		while (g->slots[i])
			i = (i + 1) & (g->nslots - 1);
		g->slots[i] = (uint32_t)(++g->nents);
	}
	e->type = type;
	e->exp = exp;
	e->value = value;
	e->unresolved = unresolved;
	e->seq = g->base_seq + g->nbatches + 1;
	if (e->batch != g->batch_id) {
		if (g->ntouched == g->captouched &&
		    tv_grow(&g->touched, &g->captouched, g->ntouched + 1, sizeof *g->touched, 32))
			return TROVE_ENOMEM;
		g->touched[g->ntouched++] = (size_t)(e - g->ents);
		e->batch = g->batch_id;
	}
	return 0;
}

/* The state of a stored key, whose tv_bloom_hash is hash, as the group
 * sees it: its own writes first, then the database.  With need_value,
 * st->value holds the whole value.  With may_skip (and g->blind_ok), a
 * key no memtable holds is not looked for in the tables: st->unresolved
 * says so.  known, if not NULL, is the key's state read earlier in this
 * batch (before its writes): it stands for the database's. */
static int get_state(group *g, tv_slice key, uint64_t hash, int need_value, int may_skip,
                     const kstate *known, kstate *st)
{
	st->hash = hash;
	st->unresolved = 0;
	ov_entry *e = ov_find(g, key, st->hash);
	if (e) {
		st->exists = e->type != TV_TYPE_DEL;
		st->exp = e->exp;
		st->seq = e->seq;
		st->value = e->value;
		if (e->unresolved && e->batch == g->batch_id)
			st->unresolved = SAME_BATCH;
		return 0;
	}
	if (known) {
		*st = *known;
		return 0;
	}
	if (may_skip && g->blind_ok) {
		unsigned type;
		tv_slice v;
		if (!mem_state(g->s, key, st->hash, g->base_seq, g->one_op, &type, &v, &st->seq)) {
			st->exists = 0;
			st->exp = 0;
			st->unresolved = UNREAD;
			return 0;
		}
		st->exists = type != TV_TYPE_DEL;
		st->exp = st->exists ? split_value(type, &v) : 0;
		st->value = v;
		return 0;
	}
	unsigned type = 0;
	vsink k = { .buf = &g->tmp, .limit = need_value ? SIZE_MAX : 8 };
	int rc = lookup(g->s, key, st->hash, g->base_seq, &type, &k, &st->seq, g->one_op);
	if (rc < 0)
		return rc;
	st->exists = rc == 1 && type != TV_TYPE_DEL;
	st->exp = 0;
	st->value = tv_slice_make(NULL, 0);
	if (st->exists) {
		st->value = tv_buf_slice(&g->tmp);
		st->exp = split_value(type, &st->value);
	}
	return 0;
}

/* Adds (TV_TYPE_PUT) or removes (TV_TYPE_DEL) an expiry index entry. */
static int set_index(group *g, tv_slice xkey, unsigned type)
{
	return set_entry(g, xkey, tv_hash64(xkey.data, xkey.len), type, 0, tv_slice_make(NULL, 0),
	                 0);
}

/* Moves a key from state prev to a new state, keeping the live-key count
 * and the expiry index in step.  A key whose prior state is unresolved
 * gets an unresolved entry, whose count change is worked out later
 * (resolve_entry): from the state before it, which had no expiry. */
static int apply_op(group *g, tv_slice skey, const kstate *prev, unsigned type, int64_t exp,
                    tv_slice value)
{
	char xb[TV_MAX_STORED_KEY];
	int rc = 0;
	if (!prev->unresolved)
		g->delta += (type != TV_TYPE_DEL) - prev->exists;
	int keep_index = prev->exists && prev->exp && type == TV_TYPE_PUT_EXP && exp == prev->exp;
	if (prev->exists && prev->exp && !keep_index)
		rc = set_index(g, expiry_key(xb, prev->exp, skey), TV_TYPE_DEL);
	if (!rc && type == TV_TYPE_PUT_EXP && !keep_index)
		rc = set_index(g, expiry_key(xb, exp, skey), TV_TYPE_PUT);
	if (!rc)
		rc = set_entry(g, skey, prev->hash, type, type == TV_TYPE_PUT_EXP ? exp : 0, value,
		               prev->unresolved != 0);
	return rc;
}

/* Checks a batch's conditions; returns 0 if all hold, TROVE_ECONDITION
 * with *failed set, or an error.  Each state read is kept in g->known. */
static int check_conditions(group *g, const trove_batch *b, size_t *failed)
{
	size_t pos = 0, i = 0;
	tv_op c;
	char kb[TV_MAX_STORED_KEY];
	g->nknown = g->known_pos = 0;
	if (b->nconds > g->capknown &&
	    tv_grow(&g->known, &g->capknown, b->nconds, sizeof *g->known, 16))
		return TROVE_ENOMEM;
	for (; tv_batch_next_cond(b, &pos, &c); i++) {
		kstate st;
		tv_slice skey = tv_stored_key(kb, TV_NS_DATA, c.key.data, c.key.len);
		/* No write since `since` reached the tables: if no memtable
		 * holds the key either, nothing wrote it since the read, and
		 * its state is the one the read saw - with no expiry, since no
		 * table holds one (blind_ok, which get_state checks). */
		int unchanged_if_unread =
		    c.cond == TROVE_IF_UNCHANGED && g->s->tables_seq <= c.since;
		int rc = get_state(g, skey, tv_bloom_hash(skey), c.cond == TROVE_IF_VALUE,
		                   unchanged_if_unread, NULL, &st);
		if (rc)
			return rc;
		if (st.unresolved == UNREAD) {
			st.exists = c.version != 0;
			st.exp = 0;
			st.seq = c.version;
			st.unresolved = 0;
		}
		known_state *k = &g->known[g->nknown++];
		k->key = c.key;
		k->st = st;
		k->st.value = tv_slice_make(NULL, 0);
		int ok, alive = live(g, &st);
		switch (c.cond) {
		case TROVE_IF_ABSENT: ok = !alive; break;
		case TROVE_IF_PRESENT: ok = alive; break;
		case TROVE_IF_VALUE: ok = alive && tv_slice_eq(st.value, c.value); break;
		case TROVE_IF_VERSION:
		case TROVE_IF_UNCHANGED: ok = (alive ? st.seq : 0) == c.version; break;
		default: ok = 0; break;
		}
		if (!ok) {
			*failed = i;
			return TROVE_ECONDITION;
		}
	}
	return 0;
}

/* One op of a batch, decoded ahead of its turn. */
typedef struct ahead_op {
	tv_op op;
	int hashed; /* hash holds the tv_bloom_hash of its stored key */
	uint64_t hash;
} ahead_op;

/* The state a condition of the batch read for key, if its walk beside the
 * ops finds one: the conditions and the ops are each in key order when
 * the writer sorted them (else fewer states are found; none is wrong). */
static const kstate *known_state_of(group *g, tv_slice key)
{
	while (g->known_pos < g->nknown) {
		const known_state *k = &g->known[g->known_pos];
		int r = tv_ukey_cmp(k->key, key);
		if (r > 0)
			return NULL;
		g->known_pos++;
		if (r == 0)
			return &k->st;
	}
	return NULL;
}

/* Resolves one op of a batch.  may_skip: the op may skip reading its
 * key's state from the tables if it needs nothing of it but the count
 * (a put, or a delete whose writer does not ask what it removed). */
static int resolve_op(group *g, const ahead_op *a, int may_skip)
{
	const tv_op *op = &a->op;
	char kb[TV_MAX_STORED_KEY];
	tv_slice skey = tv_stored_key(kb, TV_NS_DATA, op->key.data, op->key.len);
	kstate prev;
	may_skip = may_skip && (op->type == TV_OP_PUT || op->type == TV_OP_PUT_EXP ||
	                        op->type == TV_OP_DEL);
	/* EXPIRE copies the value, which a condition's state does not keep. */
	const kstate *known = op->type != TV_OP_EXPIRE ? known_state_of(g, op->key) : NULL;
	int rc = get_state(g, skey, a->hashed ? a->hash : tv_bloom_hash(skey),
	                   op->type == TV_OP_EXPIRE, may_skip, known, &prev);
	if (rc)
		return rc;
	switch (op->type) {
	case TV_OP_PUT:
		return apply_op(g, skey, &prev, TV_TYPE_PUT, 0, op->value);
	case TV_OP_PUT_EXP:
		return apply_op(g, skey, &prev, TV_TYPE_PUT_EXP, op->expire_at, op->value);
	case TV_OP_PUT_KEEP: {
		int64_t exp = live(g, &prev) ? prev.exp : 0;
		return apply_op(g, skey, &prev, exp ? TV_TYPE_PUT_EXP : TV_TYPE_PUT, exp, op->value);
	}
	case TV_OP_DEL:
		if (!prev.exists && prev.unresolved != UNREAD)
			return 0;
		g->removed += live(g, &prev); /* unread: nobody asked */
		return apply_op(g, skey, &prev, TV_TYPE_DEL, 0, tv_slice_make(NULL, 0));
	case TV_OP_EXPIRE: {
		if (!live(g, &prev))
			return 0;
		char *copy = tv_arena_alloc(&g->arena, prev.value.len ? prev.value.len : 1);
		if (!copy)
			return TROVE_ENOMEM;
		memcpy(copy, prev.value.data, prev.value.len);
		tv_slice v = tv_slice_make(copy, prev.value.len);
		int64_t exp = op->expire_at;
		return apply_op(g, skey, &prev, exp ? TV_TYPE_PUT_EXP : TV_TYPE_PUT, exp, v);
	}
	case TV_OP_REAP:
		if (!prev.exists || prev.exp != op->expire_at || prev.exp > group_now(g))
			return 0;
		atomic_fetch_add_explicit(&g->db->st_reaped, 1, memory_order_relaxed);
		return apply_op(g, skey, &prev, TV_TYPE_DEL, 0, tv_slice_make(NULL, 0));
	default:
		return TROVE_EINVAL;
	}
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Appends the current batch's writes to the log record, reserving room
 * for each entry once and encoding it in place, and notes each in
 * g->puts for the memtable. */
static int emit_batch(group *g)
{
	tv_buf *r = g->rec;
	if (tv_buf_reserve(r, TV_MAX_VARINT64 + TV_MAX_VARINT32))
		return TROVE_ENOMEM;
	if (g->nputs + g->ntouched > g->capputs &&
	    tv_grow(&g->puts, &g->capputs, g->nputs + g->ntouched, sizeof *g->puts, 64))
		return TROVE_ENOMEM;
	char *p = tv_encode_varint64(r->data + r->len, zigzag(g->delta));
	p = tv_encode_varint32(p, (uint32_t)g->ntouched);
	r->len = (size_t)(p - r->data);
	uint64_t seq = g->base_seq + g->nbatches + 1;
	for (size_t i = 0; i < g->ntouched; i++) {
		const ov_entry *e = &g->ents[g->touched[i]];
		if (tv_buf_reserve(r, 1 + 2 * TV_MAX_VARINT32 + e->key.len + 8 + e->value.len))
			return TROVE_ENOMEM;
		p = r->data + r->len;
		*p++ = (char)(e->type | (e->unresolved ? REC_UNRESOLVED : 0));
		p = tv_encode_varint32(p, (uint32_t)e->key.len);
		rec_put *u = &g->puts[g->nputs++];
		u->key_off = (size_t)(p - r->data);
		u->klen = (uint32_t)e->key.len;
		memcpy(p, e->key.data, e->key.len);
		p += e->key.len;
		if (e->type == TV_TYPE_PUT_EXP) {
			p = tv_encode_varint32(p, (uint32_t)(e->value.len + 8));
			u->val_off = (size_t)(p - r->data);
			u->vlen = (uint32_t)(e->value.len + 8);
			tv_put_fixed64(p, (uint64_t)e->exp);
			p += 8;
		} else {
			p = tv_encode_varint32(p, (uint32_t)e->value.len);
			u->val_off = (size_t)(p - r->data);
			u->vlen = (uint32_t)e->value.len;
		}
		if (e->value.len)
			memcpy(p, e->value.data, e->value.len);
		p += e->value.len;
		r->len = (size_t)(p - r->data);
		u->hash = e->hash;
		u->seq = seq;
		u->type = (unsigned char)e->type;
		u->unresolved = (unsigned char)e->unresolved;
	}
	g->nops += g->ntouched;
	return 0;
}

/* Ops of a batch decoded ahead of the one being resolved: the filter
 * lines and index slots of their keys are loading meanwhile. */
#define RESOLVE_AHEAD 8

/* Keys up to this long (stored) are prefetched: the stored key is built
 * in a buffer of this size on the stack, which costs nothing to set up,
 * unlike one of TV_MAX_STORED_KEY bytes (whose pages the compiler probes). */
#define AHEAD_KEY 128

/* Decodes the op at *pos of b into *a and, if prefetch, starts loading
 * what resolving it reads first: its key's filter line and index slot in
 * each memtable.  0 at the end of the batch. */
static int read_ahead(group *g, const trove_batch *b, size_t *pos, ahead_op *a, int prefetch)
{
	if (!tv_batch_next_op(b, pos, &a->op))
		return 0;
	if (!(a->hashed = prefetch && a->op.key.len < AHEAD_KEY))
		return 1;
	char kb[AHEAD_KEY];
	a->hash = tv_bloom_hash(tv_stored_key(kb, TV_NS_DATA, a->op.key.data, a->op.key.len));
	tv_mem_prefetch(g->s->mem, a->hash);
	if (g->s->imm)
		tv_mem_prefetch(g->s->imm, a->hash);
	return 1;
}

/* Resolves one writer's batch into the group; sets its status. */
static int resolve_batch(group *g, tv_writer *w)
{
	const trove_batch *b = w->batch;
	g->batch_id++;
	g->ntouched = 0;
	g->delta = 0;
	g->removed = 0;
	size_t failed = 0;
	int rc = check_conditions(g, b, &failed);
	if (rc == TROVE_ECONDITION) {
		w->status = rc;
		w->res.failed = failed;
		atomic_fetch_add_explicit(&g->db->st_conflicts, 1, memory_order_relaxed);
		return 0;
	}
	ahead_op ring[RESOLVE_AHEAD];
	size_t pos = 0, head = 0, tail = 0;
	for (;;) {
		/* The first op is resolved at once: nothing to overlap with. */
		while (tail - head < RESOLVE_AHEAD &&
		       read_ahead(g, b, &pos, &ring[tail % RESOLVE_AHEAD], tail > 0))
			tail++;
		if (rc || head == tail)
			break;
		const ahead_op *a = &ring[head++ % RESOLVE_AHEAD];
		rc = resolve_op(g, a, a->op.type != TV_OP_DEL || !w->want_removed);
	}
	if (rc)
		return rc; /* the whole group fails: the overlay is now unreliable */
	w->status = 0;
	w->res.removed = g->removed;
	w->res.version = g->base_seq + g->nbatches + (g->ntouched ? 1 : 0);
	if (g->ntouched == 0)
		return 0;
	rc = emit_batch(g);
	if (rc)
		return rc;
	g->nbatches++;
	g->total_delta += g->delta;
	return 0;
}

/* A log record: fixed64 first sequence, fixed32 batch count, one flags
 * byte, [fixed64 durable offset,] then the batches (docs/FORMAT.md). */
#define REC_HEADER 13
/* The record was written under a sync policy that does not sync every
 * write, so after a power loss the log may have holes (see recovery). */
#define REC_RELAXED 1
/* The record was appended while earlier ones were not yet durable (the
 * sync pipeline); the header holds how far the log was durable then. */
#define REC_PIPELINED 2

/* If rec is a pipelined record, 1 and how far the log was durable when
 * it was appended in *at; otherwise 0. */
static int record_durable_at(tv_slice rec, uint64_t *at)
{
	if (rec.len < REC_HEADER + 8 || !(rec.data[12] & REC_PIPELINED))
		return 0;
	*at = tv_get_fixed64(rec.data + REC_HEADER);
	return 1;
}

/* One entry of a record's batches, decoded. */
typedef struct rec_entry {
	unsigned type;
	int unresolved;
	uint64_t seq;
	uint64_t hash; /* tv_bloom_hash of key */
	tv_slice key, value;
} rec_entry;

/* A position in a record's batches. */
typedef struct rec_cursor {
	const char *p, *end;
	uint64_t seq;      /* the current batch's */
	uint32_t batches;  /* not yet begun */
	uint32_t ops;      /* left in the current batch */
	int64_t delta;     /* of the batches begun */
} rec_cursor;

/* Decodes the entry at c into *e: 1, 0 after the last one, or
 * TROVE_ECORRUPT. */
static int rec_next(rec_cursor *c, rec_entry *e)
{
	const char *p = c->p, *end = c->end;
	while (c->ops == 0) {
		if (c->batches == 0)
			return p == end ? 0 : TROVE_ECORRUPT;
		uint64_t zz;
		if (!(p = tv_decode_varint64(p, end, &zz)) ||
		    !(p = tv_decode_varint32(p, end, &c->ops)))
			return TROVE_ECORRUPT;
		c->delta += unzigzag(zz);
		c->batches--;
		c->seq++;
	}
	if (p >= end)
		return TROVE_ECORRUPT;
	e->type = (unsigned char)*p & ~REC_UNRESOLVED;
	e->unresolved = (*p++ & REC_UNRESOLVED) != 0;
	uint32_t kl, vl;
	if (e->type > TV_TYPE_PUT_EXP || !(p = tv_decode_varint32(p, end, &kl)) || kl == 0 ||
	    kl > (size_t)(end - p))
		return TROVE_ECORRUPT;
	e->key = tv_slice_make(p, kl);
	p += kl;
	if (!(p = tv_decode_varint32(p, end, &vl)) || vl > (size_t)(end - p) ||
	    (e->type == TV_TYPE_PUT_EXP && vl < 8) ||
	    (e->unresolved && e->key.data[0] != TV_NS_DATA))
		return TROVE_ECORRUPT;
	e->value = tv_slice_make(p, vl);
	c->p = p + vl;
	c->ops--;
	e->seq = c->seq;
	return 1;
}

/* Entries decoded (or, by the leader, looked at) ahead of the one being
 * inserted: their filter lines and index slots are loading meanwhile. */
#define APPLY_AHEAD 8

/* Decodes a log record and inserts it into m.  Returns the last sequence
 * number in *last_seq, the live-key change in *delta and the record's
 * flags in *flags.  Used by recovery (the leader inserts the records it
 * builds with apply_group); a malformed record gives TROVE_ECORRUPT. */
static int apply_record(tv_memtable *m, tv_slice rec, uint64_t *last_seq, int64_t *delta,
                        unsigned *flags)
{
	const char *p = rec.data, *end = rec.data + rec.len;
	if (rec.len < REC_HEADER)
		return TROVE_ECORRUPT;
	uint64_t seq = tv_get_fixed64(p);
	uint32_t nb = tv_get_fixed32(p + 8);
	*flags = (unsigned char)p[12];
	p += REC_HEADER;
	if (*flags & REC_PIPELINED) {
		if (end - p < 8)
			return TROVE_ECORRUPT;
		p += 8;
	}
	if (seq == 0 || seq > TV_MAX_SEQ - nb)
		return TROVE_ECORRUPT;
	rec_cursor c = {p, end, seq - 1, nb, 0, 0};
	rec_entry ring[APPLY_AHEAD];
	size_t head = 0, tail = 0;
	int more = 1;
	for (;;) {
		while (more && tail - head < APPLY_AHEAD) {
			rec_entry *e = &ring[tail % APPLY_AHEAD];
			int rc = rec_next(&c, e);
			if (rc < 0)
				return rc;
			if (!(more = rc))
				break;
			e->hash = tv_bloom_hash(e->key);
			if (tail++ > 0) /* the first entry goes in at once */
				tv_mem_prefetch(m, e->hash);
		}
		if (head == tail)
			break;
		const rec_entry *e = &ring[head++ % APPLY_AHEAD];
		int rc = tv_mem_add_hashed(m, e->seq, e->type, e->key, e->value, e->hash,
		                           e->unresolved);
		if (rc)
			return rc;
	}
	*last_seq = c.seq;
	*delta = c.delta;
	return 0;
}

/* Inserts the group's record into m from g->puts: what apply_record
 * would decode from it, without decoding it or hashing its keys again.
 * Each entry's filter line and index slot start loading APPLY_AHEAD
 * entries before its insert. */
static int apply_group(group *g, tv_memtable *m)
{
	const char *rec = g->rec->data;
	size_t n = g->nputs;
	for (size_t i = 1; i < n && i < APPLY_AHEAD; i++)
		tv_mem_prefetch(m, g->puts[i].hash);
	for (size_t i = 0; i < n; i++) {
		const rec_put *u = &g->puts[i];
		if (i + APPLY_AHEAD < n)
			tv_mem_prefetch(m, g->puts[i + APPLY_AHEAD].hash);
		int rc = tv_mem_add_hashed(
		        m, u->seq, u->type, tv_slice_make(rec + u->key_off, u->klen),
		        tv_slice_make(rec + u->val_off, u->vlen), u->hash, u->unresolved);
		if (rc)
			return rc;
	}
	return 0;
}

static void group_free(group *g)
{
	if (!g)
		return;
	tv_arena_destroy(&g->arena);
	free(g->ents);
	free(g->slots);
	free(g->touched);
	free(g->puts);
	free(g->known);
	tv_buf_free(&g->tmp);
	free(g);
}

void tv_group_free(trove_db *db)
{
	group_free(db->grp);
	db->grp = NULL;
}

/* Every value with an expiry that is its key's newest entry in the
 * tables has its index entry there too (both are written by one batch, so they reach the tables
 * in one flush, and compaction drops an index entry only under a newer
 * entry of it, written by a newer batch that also wrote the key), so
 * without one no key the tables hold has an expiry. */
int tv_tables_hold_expiry(const tv_version *v)
{
	for (int l = 0; l < TV_LEVELS; l++) {
		/* Below level 0 the tables are sorted: the last one has the
		 * largest keys. */
		for (int i = l == 0 ? 0 : v->nfiles[l] - 1; i >= 0 && i < v->nfiles[l]; i++) {
			tv_slice k = tv_ikey_user(tv_fm_largest(v->files[l][i]));
			if (k.len && (unsigned char)k.data[0] != TV_NS_DATA)
				return 1;
		}
	}
	return 0;
}

/* Readies the leader's reusable group state for a new group; memory from
 * a large group is given back rather than kept. */
static group *group_begin(trove_db *db, tv_super *s)
{
	group *g = db->grp;
	if (!g) {
		g = calloc(1, sizeof *g);
		if (!g)
			return NULL;
		tv_arena_init(&g->arena);
		tv_buf_init(&g->tmp);
		db->grp = g;
	}
	tv_arena_reset(&g->arena);
	if (g->nslots > 4096) {
		free(g->slots);
		g->slots = NULL;
		g->nslots = 0;
	} else if (g->nents) {
		memset(g->slots, 0, g->nslots * sizeof *g->slots);
	}
	if (g->tmp.cap > (1u << 20))
		tv_buf_free(&g->tmp);
	if (g->capputs > 4096) {
		free(g->puts);
		g->puts = NULL;
		g->capputs = 0;
	}
	g->nputs = 0;
	g->nents = 0;
	g->ntouched = 0;
	g->nbatches = 0;
	g->total_delta = 0;
	g->nops = 0;
	g->db = db;
	g->s = s;
	g->blind_ok = !s->tables_hold_expiry;
	g->base_seq = db->write_seq;
	g->now = 0;
	g->rec = &db->wal_rec;
	return g;
}

/* Runs a group of writers [first, last] without holding mu; the log is
 * durable up to durable_at (or further).  Returns an error that fails
 * every writer of the group still marked successful; *new_seq and *delta
 * describe what was committed, and *durable says whether the writers must
 * wait for the log to be durable past it. */
static int commit_group(trove_db *db, tv_super *s, tv_writer *first, tv_writer *last,
                        uint64_t durable_at, uint64_t *new_seq, int64_t *delta, int *durable)
{
	group *g = group_begin(db, s);
	if (!g)
		return TROVE_ENOMEM;
	g->one_op = first == last && first->batch && first->batch->nops == 1;
	/* The record starts after room for the log's frame header, so that
	 * it is appended where it was built. */
	tv_buf *r = g->rec;
	tv_buf_clear(r);
	/* Under sync=always a record appended while earlier ones still wait
	 * for their sync says so: after a power loss, damage before it may
	 * be a torn write of the pipeline, not corruption (see recovery). */
	int pipelined = db->opts.sync == TROVE_SYNC_ALWAYS && durable_at < db->wal_end;
	size_t hlen = REC_HEADER + (pipelined ? 8 : 0);
	if (tv_buf_reserve(r, TV_LOG_RECORD_HEADER + hlen))
		return TROVE_ENOMEM;
	char *hdr = r->data + TV_LOG_RECORD_HEADER;
	tv_put_fixed64(hdr, g->base_seq + 1);
	tv_put_fixed32(hdr + 8, 0); /* the batch count, known at the end */
	hdr[12] = db->opts.sync == TROVE_SYNC_ALWAYS ? 0 : REC_RELAXED;
	if (pipelined) {
		hdr[12] |= REC_PIPELINED;
		tv_put_fixed64(hdr + REC_HEADER, durable_at);
	}
	r->len = TV_LOG_RECORD_HEADER + hlen;
	int rc = 0, want_sync = 0;
	for (tv_writer *w = first; !rc; w = w->next) {
		want_sync |= w->flags & TV_W_SYNC;
		if (w->batch)
			rc = resolve_batch(g, w);
		else
			w->status = 0;
		if (w == last)
			break;
	}
	*new_seq = g->base_seq;
	*delta = 0;
	/* Under sync=always even a group that wrote nothing waits: its
	 * failed conditions may have read writes not yet durable. */
	*durable = db->use_wal &&
	           (want_sync || db->opts.sync == TROVE_SYNC_ALWAYS ||
	            (db->opts.sync == TROVE_SYNC_PERIODIC &&
	             (uint64_t)tv_now_ms() - db->last_sync_ms >= db->opts.sync_period_ms));
	if (rc || g->nbatches == 0)
		goto out;
	tv_put_fixed32(r->data + TV_LOG_RECORD_HEADER + 8, g->nbatches);
	if (db->use_wal) {
		rc = tv_log_append_framed(db->wal, r->data, r->len);
		if (rc) {
			db->wal_broken = 1;
			goto out;
		}
		atomic_fetch_add_explicit(&db->st_wal_bytes, r->len, memory_order_relaxed);
	}
	rc = apply_group(g, s->mem);
	if (rc) {
		db->bad = 1;
		goto out;
	}
	*new_seq = g->base_seq + g->nbatches;
	*delta = g->total_delta;
	atomic_fetch_add_explicit(&db->st_writes, g->nops, memory_order_relaxed);
out:
	return rc;
}

/* ---- The sync pipeline ----------------------------------------------------- */

/* A group that must be durable leaves the writer queue once its record is
 * appended and waits in db->sync_head's list, so the next leader appends
 * its group while this one's sync runs: a writer that arrives during a
 * sync joins the next one without waiting for the queue.  One sync runs
 * at a time, outside mu, run by a waiting leader; it makes the log
 * durable up to db->wal_end as it was when it began, and completes every
 * group that ends there.  Under sync=always a group's writes become
 * visible (last_seq, the count) only then, in log order. */

/* Group commit waits at most this long (and half the last sync) for the
 * writers the last sync released to come back. */
#define GATHER_MAX_US 2000

/* Marks the writers of group [first, last] done (failed with rc if it is
 * set) and wakes them. */
static void finish_group(tv_writer *first, tv_writer *last, int rc)
{
	for (tv_writer *x = first, *next;; x = next) {
		next = x->next;
		if (rc)
			x->status = rc;
		x->done = 1;
		if (x->has_cv)
			pthread_cond_signal(&x->cv);
		if (x == last)
			break;
	}
}

/* Completes the groups of the list that end at or before end (all of
 * them, failed with rc, if rc is set); returns how many writers. */
static unsigned complete_syncs(trove_db *db, uint64_t end, int rc)
{
	unsigned n = 0;
	tv_writer *g;
	while ((g = db->sync_head) != NULL && (rc || g->end <= end)) {
		db->sync_head = g->sync_next;
		if (!db->sync_head)
			db->sync_tail = NULL;
		db->sync_writers -= g->nwriters;
		n += g->nwriters;
		if (!rc && g->publish) {
			db->count = (uint64_t)((int64_t)db->count + g->delta);
			atomic_store_explicit(&db->last_seq, g->seq, memory_order_release);
		}
		finish_group(g, g->last, rc);
	}
	return n;
}

/* Before a sync begins while others already wait: group commit.  The
 * writers the last sync released bring their next writes a moment later;
 * begun at once, this sync would cover only the groups that arrived while
 * the last one ran, the returning writers would wait for the one after,
 * and the writers would settle into two cohorts, each waiting for two
 * syncs per write.  So wait until as many writers wait as the last sync
 * released on top of those that waited then, or half the last sync's
 * duration (at most GATHER_MAX_US) has passed since it ended.  A lone
 * writer waits for nothing. */
static void gather(trove_db *db, tv_writer *self)
{
	uint64_t wait = db->last_sync_us / 2 < GATHER_MAX_US ? db->last_sync_us / 2 : GATHER_MAX_US;
	uint64_t deadline = db->last_sync_end_us + wait;
	db->gatherer = self;
	while (db->sync_writers < db->gather_target && !db->bad) {
		uint64_t now = tv_now_us();
		if (now >= deadline)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (deadline - now) * 1000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		pthread_cond_timedwait(&self->cv, &db->mu, &ts);
	}
	db->gatherer = NULL;
	db->gather_target = 0;
}

/* Runs one sync for the list (mu held, no sync running, the list not
 * empty); self, the leader of a group in the list, gathers first.  A
 * failed sync fails every group waiting and the handle: after a failed
 * fsync the kernel may or may not have kept the data, so only a reopen
 * can say what the log holds. */
static void run_sync(trove_db *db, tv_writer *self)
{
	db->syncing = 1;
	if (self && db->gather_target > db->sync_writers)
		gather(db, self);
	int rc = db->bad ? TROVE_EBADDB : 0;
	uint64_t target = db->wal_end;
	if (!rc) {
		tv_log_writer *wal = db->wal;
		pthread_mutex_unlock(&db->mu);
		uint64_t t0 = tv_now_us();
		rc = tv_log_sync(wal);
		uint64_t t1 = tv_now_us();
		pthread_mutex_lock(&db->mu);
		db->last_sync_us = t1 - t0;
		db->last_sync_end_us = t1;
		if (rc) {
			db->bad = 1;
			tv_logf(&db->lg, TROVE_LOG_ERROR, "write-ahead log sync failed: %s",
			        trove_strerror(rc));
		} else {
			db->wal_durable = target;
			db->last_sync_ms = (uint64_t)tv_now_ms();
			atomic_fetch_add_explicit(&db->st_syncs, 1, memory_order_relaxed);
		}
	}
	db->syncing = 0;
	unsigned released = complete_syncs(db, target, rc);
	if (!rc)
		db->gather_target = db->sync_writers + released;
	/* The first group left runs the next sync. */
	if (db->sync_head)
		pthread_cond_signal(&db->sync_head->cv);
	else if (db->draining)
		pthread_cond_broadcast(&db->drain_cv);
}

/* Takes the group ending at last off the head of the writer queue and
 * wakes the next leader (mu held). */
static void leave_queue(trove_db *db, tv_writer *last)
{
	db->queue_head = last->next;
	if (!db->queue_head)
		db->queue_tail = NULL;
	last->next = NULL;
	if (db->queue_head)
		pthread_cond_signal(&db->queue_head->cv);
}

/* Leader w, its group [w, last] committed (appended, applied) and
 * described by w's sync fields, leaves the writer queue so that the next
 * leader can go on, and waits until the log is durable past its record
 * (mu held). */
static void wait_durable(trove_db *db, tv_writer *w, tv_writer *last)
{
	leave_queue(db, last);
	if (w->end <= db->wal_durable && !db->sync_head) {
		finish_group(w, last, 0); /* nothing of it, or before it, waits */
		return;
	}
	if (!w->has_cv) {
		pthread_cond_init(&w->cv, NULL);
		w->has_cv = 1;
	}
	w->sync_next = NULL;
	if (db->sync_tail)
		db->sync_tail->sync_next = w;
	else
		db->sync_head = w;
	db->sync_tail = w;
	db->sync_writers += w->nwriters;
	if (db->gatherer && db->sync_writers >= db->gather_target)
		pthread_cond_signal(&db->gatherer->cv);
	while (!w->done) {
		if (!db->syncing)
			run_sync(db, w);
		else
			pthread_cond_wait(&w->cv, &db->mu);
	}
}

/* Waits until no group waits for a sync and none runs (mu held): before
 * the log is switched. */
static void drain_syncs(trove_db *db)
{
	while (db->syncing || db->sync_head) {
		if (!db->syncing) {
			run_sync(db, NULL);
		} else {
			db->draining++;
			pthread_cond_wait(&db->drain_cv, &db->mu);
			db->draining--;
		}
	}
}

/* ---- The write path: the queue and room in the memtable ------------------- */

/* Creates a new write-ahead log and makes it current (mu held).  The old
 * log, if any, is closed; if it holds unsynced writes it is synced first,
 * under every policy and even after a failed append (the records before
 * the failure are intact), so that a newer log never outlives an older
 * one in a power loss - what survives stays a prefix of the history - and
 * trove_sync, which syncs the current log only, covers every write. */
static int new_wal(trove_db *db)
{
	uint64_t number = db->vs.next_file++;
	char path[4096];
	tv_file_path(path, sizeof path, db->path, number, "log");
	tv_log_writer *w;
	drain_syncs(db);
	if (db->bad)
		return TROVE_EBADDB;
	if (db->wal && db->wal_end > db->wal_durable) {
		int rc = tv_log_sync(db->wal);
		if (rc)
			return rc;
		atomic_fetch_add_explicit(&db->st_syncs, 1, memory_order_relaxed);
	}
	/* The header is synced on its own: a power loss in the first record's
	 * sync must leave a torn tail, not a damaged header.  Without a sync
	 * per write the log is appended through a mapping (a store instead of
	 * a write(2) per group; either is in the page cache on return).  With
	 * one, or when the caller syncs after each few writes itself
	 * (frequent_syncs), the log is written over zeros written ahead of
	 * it, so that a sync commits data blocks only, not the file's new
	 * size or block map (the first run of zeros is made durable with the
	 * header). */
	int how = db->opts.sync == TROVE_SYNC_ALWAYS || db->opts.frequent_syncs ? TV_OPEN_ZEROED
	                                                                        : TV_OPEN_MAPPED;
	int rc = tv_log_create(db->vfs, path, TV_MAGIC_WAL, how, &w);
	if (!rc && (rc = tv_log_sync(w)) != 0)
		tv_log_close(w);
	if (!rc && (rc = db->vfs->sync_dir(db->vfs, db->path)) != 0)
		tv_log_close(w);
	if (rc) {
		if (rc != TROVE_ENOSPC)
			tv_logf(&db->lg, TROVE_LOG_ERROR, "%s: cannot create log: %s", path,
			        trove_strerror(rc));
		return rc;
	}
	if (db->wal)
		tv_log_close(db->wal);
	db->wal = w;
	db->wal_number = number;
	db->wal_broken = 0;
	db->wal_end = db->wal_durable = tv_log_size(w);
	return 0;
}

static void stall_wait(trove_db *db)
{
	uint64_t t0 = tv_now_us();
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 100 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&db->bg_cv, &db->mu, &ts);
	atomic_fetch_add_explicit(&db->st_stall_us, tv_now_us() - t0, memory_order_relaxed);
}

/* Makes sure the memtable has room for a write (mu held, leader only):
 * slows the writer a little when level 0 fills up, waits when the
 * previous memtable is still being flushed or level 0 is full, and
 * switches to a new memtable and log when the current one is full. */
static int make_room(trove_db *db, int force)
{
	int delayed = 0;
	for (;;) {
		if (db->bad)
			return TROVE_EBADDB;
		if (db->use_wal && db->wal_broken) {
			int rc = new_wal(db);
			if (rc)
				return rc;
		}
		int l0 = db->vs.current->nfiles[0];
		if (!delayed && l0 >= TV_L0_SLOWDOWN) {
			/* Spread the delay over many writes instead of stopping
			 * one for a long time. */
			pthread_mutex_unlock(&db->mu);
			struct timespec ts = { 0, 1000000L };
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&db->mu);
			delayed = 1;
			atomic_fetch_add_explicit(&db->st_stalls, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&db->st_stall_us, 1000, memory_order_relaxed);
			continue;
		}
		if (tv_mem_entries(db->mem) == 0 ||
		    (!force && tv_mem_usage(db->mem) < db->write_buffer))
			return 0;
		if (db->imm || l0 >= TV_L0_STOP) {
			if (db->bg_error)
				return db->bg_error;
			atomic_fetch_add_explicit(&db->st_stalls, 1, memory_order_relaxed);
			pthread_cond_broadcast(&db->bg_cv);
			stall_wait(db);
			continue;
		}
		tv_memtable *m = tv_mem_new_pooled(db->mem_pool);
		if (!m)
			return TROVE_ENOMEM;
		if (db->use_wal) {
			int rc = new_wal(db);
			if (rc) {
				tv_mem_unref(m);
				return rc;
			}
		}
		db->imm = db->mem;
		db->imm_next_log = db->wal_number;
		db->imm_count = db->count;
		db->imm_seq = atomic_load_explicit(&db->last_seq, memory_order_relaxed);
		db->mem = m;
		if (tv_super_install(db)) {
			db->mem = db->imm;
			db->imm = NULL;
			tv_mem_unref(m);
			return TROVE_ENOMEM;
		}
		pthread_cond_broadcast(&db->bg_cv);
		force = 0;
	}
}

/* Takes the writers from the head of the queue that fit in one group. */
static tv_writer *build_group(trove_db *db)
{
	tv_writer *first = db->queue_head, *last = first;
	size_t size = first->batch ? first->batch->ops.len : 0;
	size_t max = size <= (128u << 10) ? size + (128u << 10) : (1u << 20);
	for (tv_writer *w = first->next; w; w = w->next) {
		size_t n = w->batch ? w->batch->ops.len : 0;
		if (size + n > max)
			break;
		size += n;
		last = w;
	}
	return last;
}

int tv_write_internal(trove_db *db, const trove_batch *b, int flags, trove_write_result *res)
{
	tv_writer w;
	memset(&w, 0, sizeof w);
	w.batch = b;
	w.flags = flags;
	w.want_removed = res != NULL;
	pthread_mutex_lock(&db->mu);
	if (db->queue_tail)
		db->queue_tail->next = &w;
	else
		db->queue_head = &w;
	db->queue_tail = &w;
	if (db->queue_head != &w) {
		/* Only a writer queued behind another is ever signalled (by a
		 * leader, as one of its group or the next head), so only it
		 * needs a condition variable. */
		pthread_cond_init(&w.cv, NULL);
		w.has_cv = 1;
		while (!w.done && db->queue_head != &w)
			pthread_cond_wait(&w.cv, &db->mu);
	}
	if (!w.done) {
		int rc = make_room(db, flags & TV_W_FLUSH);
		tv_writer *last = rc ? &w : build_group(db);
		uint64_t new_seq = 0;
		int64_t delta = 0;
		int durable = 0;
		if (!rc) {
			tv_super *s = db->super;
			uint64_t durable_at = db->wal_durable;
			atomic_fetch_add(&s->refs, 1);
			pthread_mutex_unlock(&db->mu);
			rc = commit_group(db, s, &w, last, durable_at, &new_seq, &delta, &durable);
			tv_super_put(db, s);
			pthread_mutex_lock(&db->mu);
		}
		if (!rc) {
			db->write_seq = new_seq;
			if (db->use_wal)
				db->wal_end = tv_log_size(db->wal);
			atomic_fetch_add_explicit(&db->st_groups, 1, memory_order_relaxed);
			/* Under sync=always, a write is seen once it is durable. */
			w.publish = durable && db->opts.sync == TROVE_SYNC_ALWAYS;
			if (!w.publish) {
				db->count = (uint64_t)((int64_t)db->count + delta);
				atomic_store_explicit(&db->last_seq, new_seq, memory_order_release);
			}
		}
		if (!rc && durable) {
			w.last = last;
			w.end = db->wal_end;
			w.seq = new_seq;
			w.delta = delta;
			w.nwriters = 1;
			for (tv_writer *x = &w; x != last; x = x->next)
				w.nwriters++;
			wait_durable(db, &w, last);
		} else {
			leave_queue(db, last);
			finish_group(&w, last, rc);
		}
	}
	pthread_mutex_unlock(&db->mu);
	if (w.has_cv)
		pthread_cond_destroy(&w.cv);
	if (res && (w.status == 0 || w.status == TROVE_ECONDITION))
		*res = w.res;
	return w.status;
}

/* ---- Public writes ------------------------------------------------------------ */

static int writable(trove_db *db)
{
	if (!db)
		return TROVE_EINVAL;
	return db->read_only ? TROVE_EREADONLY : 0;
}

int trove_write(trove_db *db, const trove_batch *b, trove_write_result *res)
{
	int rc = writable(db);
	if (rc)
		return rc;
	if (!b)
		return TROVE_EINVAL;
	return tv_write_internal(db, b, 0, res);
}

/* A one-op batch on the stack's behalf: key, optional condition.  Its
 * buffers start on the stack, so a small write allocates nothing. */
static int write_one(trove_db *db, int type, const void *key, size_t klen, const void *val,
                     size_t vlen, int64_t exp, const trove_cond *cond, trove_write_result *res)
{
	int rc = writable(db);
	if (rc)
		return rc;
	char ops[512], conds[128];
	trove_batch b;
	memset(&b, 0, sizeof b);
	tv_buf_init_fixed(&b.ops, ops, sizeof ops);
	tv_buf_init_fixed(&b.conds, conds, sizeof conds);
	rc = tv_batch_add_op(&b, type, key, klen, val, vlen, exp);
	if (!rc && cond && cond->kind != TROVE_IF_ANY)
		rc = trove_batch_require(&b, key, klen, cond);
	if (!rc)
		rc = tv_write_internal(db, &b, 0, res);
	tv_buf_free(&b.ops);
	tv_buf_free(&b.conds);
	return rc;
}

int trove_put(trove_db *db, const void *key, size_t klen, const void *val, size_t vlen)
{
	return write_one(db, TV_OP_PUT, key, klen, val, vlen, 0, NULL, NULL);
}

int trove_del(trove_db *db, const void *key, size_t klen)
{
	return write_one(db, TV_OP_DEL, key, klen, NULL, 0, 0, NULL, NULL);
}

int trove_put_ex(trove_db *db, const void *key, size_t klen, const void *val, size_t vlen,
                 const trove_put_opts *opts, uint64_t *version)
{
	trove_put_opts none;
	if (!opts) {
		memset(&none, 0, sizeof none);
		opts = &none;
	}
	int type = TV_OP_PUT;
	int64_t exp = 0;
	switch (opts->ttl_mode) {
	case TROVE_TTL_NONE:
		break;
	case TROVE_TTL_AT:
		if (opts->expire_at_ms <= 0)
			return TROVE_EINVAL;
		type = TV_OP_PUT_EXP;
		exp = opts->expire_at_ms;
		break;
	case TROVE_TTL_IN:
		if (opts->ttl_ms <= 0 || opts->ttl_ms > INT64_MAX / 2)
			return TROVE_EINVAL;
		type = TV_OP_PUT_EXP;
		exp = tv_now_ms() + opts->ttl_ms;
		break;
	case TROVE_TTL_KEEP:
		type = TV_OP_PUT_KEEP;
		break;
	default:
		return TROVE_EINVAL;
	}
	if (opts->cond.kind < TROVE_IF_ANY || opts->cond.kind > TROVE_IF_UNCHANGED)
		return TROVE_EINVAL;
	trove_write_result res;
	int rc = write_one(db, type, key, klen, val, vlen, exp, &opts->cond, &res);
	if (rc == 0 && version)
		*version = res.version;
	return rc;
}

int trove_put_if_absent(trove_db *db, const void *key, size_t klen, const void *val,
                        size_t vlen)
{
	trove_put_opts o = { .cond = { .kind = TROVE_IF_ABSENT } };
	int rc = trove_put_ex(db, key, klen, val, vlen, &o, NULL);
	return rc == TROVE_ECONDITION ? TROVE_EEXIST : rc;
}

int trove_put_if_present(trove_db *db, const void *key, size_t klen, const void *val,
                         size_t vlen)
{
	trove_put_opts o = { .cond = { .kind = TROVE_IF_PRESENT } };
	int rc = trove_put_ex(db, key, klen, val, vlen, &o, NULL);
	return rc == TROVE_ECONDITION ? TROVE_ENOTFOUND : rc;
}

int trove_cas(trove_db *db, const void *key, size_t klen, const void *expected, size_t elen,
              const void *val, size_t vlen)
{
	trove_put_opts o = { .cond = { .kind = TROVE_IF_VALUE, .value = expected,
	                               .value_len = elen } };
	return trove_put_ex(db, key, klen, val, vlen, &o, NULL);
}

int trove_cas_version(trove_db *db, const void *key, size_t klen, uint64_t version,
                      const void *val, size_t vlen)
{
	trove_put_opts o = { .cond = { .kind = TROVE_IF_VERSION, .version = version } };
	return trove_put_ex(db, key, klen, val, vlen, &o, NULL);
}

int trove_put_ttl(trove_db *db, const void *key, size_t klen, const void *val, size_t vlen,
                  int64_t ttl_ms)
{
	trove_put_opts o = { .ttl_mode = TROVE_TTL_IN, .ttl_ms = ttl_ms };
	return trove_put_ex(db, key, klen, val, vlen, &o, NULL);
}

int trove_del_ex(trove_db *db, const void *key, size_t klen, const trove_cond *cond,
                 int *deleted)
{
	if (cond && (cond->kind < TROVE_IF_ANY || cond->kind > TROVE_IF_UNCHANGED))
		return TROVE_EINVAL;
	trove_write_result res;
	int rc = write_one(db, TV_OP_DEL, key, klen, NULL, 0, 0, cond, deleted ? &res : NULL);
	if (rc == 0 && deleted)
		*deleted = res.removed > 0;
	return rc;
}

int trove_del_if_exists(trove_db *db, const void *key, size_t klen)
{
	trove_cond c = { .kind = TROVE_IF_PRESENT };
	int rc = trove_del_ex(db, key, klen, &c, NULL);
	return rc == TROVE_ECONDITION ? TROVE_ENOTFOUND : rc;
}

int trove_expire_at(trove_db *db, const void *key, size_t klen, int64_t expire_at_ms)
{
	if (expire_at_ms < 0)
		return TROVE_EINVAL;
	trove_cond c = { .kind = TROVE_IF_PRESENT };
	int rc = write_one(db, TV_OP_EXPIRE, key, klen, NULL, 0, expire_at_ms, &c, NULL);
	return rc == TROVE_ECONDITION ? TROVE_ENOTFOUND : rc;
}

int trove_persist(trove_db *db, const void *key, size_t klen)
{
	/* Read, then write conditioned on the version read, so that a racing
	 * write in between makes us retry rather than lose it. */
	for (;;) {
		trove_meta m;
		int rc = trove_get_ex(db, NULL, key, klen, NULL, NULL, &m);
		if (rc)
			return rc;
		if (m.expire_at_ms == 0)
			return TROVE_ECONDITION;
		trove_cond c = { .kind = TROVE_IF_VERSION, .version = m.version };
		rc = write_one(db, TV_OP_EXPIRE, key, klen, NULL, 0, 0, &c, NULL);
		if (rc != TROVE_ECONDITION)
			return rc;
	}
}

int trove_sync(trove_db *db)
{
	int rc = writable(db);
	if (rc)
		return rc == TROVE_EREADONLY ? 0 : rc;
	if (!db->use_wal)
		return 0;
	return tv_write_internal(db, NULL, TV_W_SYNC, NULL);
}

int trove_flush(trove_db *db)
{
	int rc = writable(db);
	if (rc)
		return rc;
	/* A failed attempt from here on is reported even if a retry has
	 * succeeded by the time this thread gets the lock back, so the result
	 * does not depend on how soon it is scheduled. */
	pthread_mutex_lock(&db->mu);
	uint64_t failures = db->flush_failures;
	pthread_mutex_unlock(&db->mu);
	rc = tv_write_internal(db, NULL, TV_W_FLUSH, NULL);
	if (rc)
		return rc;
	pthread_mutex_lock(&db->mu);
	while (db->imm && db->flush_failures == failures && !db->shutting_down)
		pthread_cond_wait(&db->bg_cv, &db->mu);
	if (db->flush_failures != failures)
		rc = db->flush_error;
	else
		rc = db->imm ? TROVE_EIO : 0;
	pthread_mutex_unlock(&db->mu);
	return rc;
}

/* ---- Snapshots and counting ---------------------------------------------------- */

trove_snapshot *trove_snapshot_new(trove_db *db)
{
	if (!db)
		return NULL;
	trove_snapshot *s = malloc(sizeof *s);
	if (!s)
		return NULL;
	pthread_mutex_lock(&db->mu);
	s->seq = atomic_load_explicit(&db->last_seq, memory_order_relaxed);
	s->next = &db->snapshots;
	s->prev = db->snapshots.prev;
	s->prev->next = s;
	db->snapshots.prev = s;
	pthread_mutex_unlock(&db->mu);
	return s;
}

void trove_snapshot_free(trove_db *db, trove_snapshot *s)
{
	if (!db || !s)
		return;
	pthread_mutex_lock(&db->mu);
	s->prev->next = s->next;
	s->next->prev = s->prev;
	pthread_mutex_unlock(&db->mu);
	free(s);
}

uint64_t trove_snapshot_version(const trove_snapshot *s)
{
	return s ? s->seq : 0;
}

uint64_t trove_last_version(trove_db *db)
{
	return db ? atomic_load_explicit(&db->last_seq, memory_order_acquire) : 0;
}

uint64_t tv_oldest_snapshot(trove_db *db)
{
	if (db->snapshots.next != &db->snapshots)
		return db->snapshots.next->seq; /* the list is in creation order */
	return atomic_load_explicit(&db->last_seq, memory_order_relaxed);
}

int trove_count(trove_db *db, uint64_t *n)
{
	if (!db || !n)
		return TROVE_EINVAL;
	/* Read the counter and the expiry index at one sequence number: hold
	 * the writers off for the instant it takes to pin both. */
	pthread_mutex_lock(&db->mu);
	uint64_t c = db->count;
	uint64_t seq = atomic_load_explicit(&db->last_seq, memory_order_relaxed);
	tv_super *s = db->super;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&db->mu);
	uint64_t expired = 0;
	int64_t unresolved = 0;
	int rc = tv_unresolved_delta(s, seq, &unresolved);
	if (!rc)
		rc = tv_count_expired_at(db, s, seq, tv_now_ms(), &expired);
	tv_super_put(db, s);
	if (rc)
		return rc;
	c = (uint64_t)((int64_t)c + unresolved);
	*n = c >= expired ? c - expired : 0;
	return 0;
}

/* ---- Opening --------------------------------------------------------------------- */

typedef struct name_list {
	uint64_t *nums;
	int n;
	size_t cap;
	uint64_t max_number;
	int ext_log;
} name_list;

/* Parses "NNNNNN.ext"; returns 1 and the number if name matches ext. */
static int parse_name(const char *name, const char *ext, uint64_t *num)
{
	char *end;
	if (name[0] < '0' || name[0] > '9')
		return 0;
	errno = 0;
	unsigned long long v = strtoull(name, &end, 10);
	if (errno || *end != '.' || strcmp(end + 1, ext) != 0)
		return 0;
	*num = v;
	return 1;
}

static int collect_logs(void *arg, const char *name)
{
	name_list *l = arg;
	uint64_t num;
	if (parse_name(name, "sst", &num) || parse_name(name, "log", &num)) {
		if (num > l->max_number)
			l->max_number = num;
	}
	if (!parse_name(name, "log", &num))
		return 0;
	if (tv_grow(&l->nums, &l->cap, (size_t)l->n + 1, sizeof *l->nums, 16))
		return TROVE_ENOMEM;
	l->nums[l->n++] = num;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Replays the logs newer than the manifest into db->mem.
 *
 * Damage in a log is an error, except where the log was written without a
 * sync per write (TROVE_SYNC_PERIODIC or NONE, told by the records'
 * flags, or by this open's policy when no record of the file is intact):
 * there a power loss may leave holes in the unsynced part, so recovery
 * stops at the damage, keeps the prefix before it and ignores newer logs
 * (point-in-time recovery), and says so in the log. */
/* After damage at offset `damaged` of the newest log, written under
 * sync=always: true if every intact record after it was appended while the
 * log was durable no further than the damage.  Then no sync had covered
 * the damaged bytes when anything after them was written: what a power
 * loss during the sync pipeline leaves (the writes after the damage were
 * waiting for a sync, not yet acknowledged), and it is dropped like a torn
 * tail.  Damage there to bytes a later sync did cover (the media's, not a
 * crash's) cannot be told from that, as damage to the last record of any
 * log cannot be told from a torn tail. */
static int pipeline_tail(tv_log_reader *r, uint64_t damaged)
{
	tv_slice rec;
	int rc;
	do {
		if (tv_log_reader_skip_damage(r))
			return 0;
		while ((rc = tv_log_read(r, &rec)) == 1) {
			uint64_t at;
			if (!record_durable_at(rec, &at) || at > damaged)
				return 0;
		}
	} while (rc == TROVE_ECORRUPT);
	return rc == 0;
}

static int replay_logs(trove_db *db, name_list *logs)
{
	if (logs->n > 1)
		qsort(logs->nums, (size_t)logs->n, sizeof *logs->nums, cmp_u64);
	uint64_t last = db->vs.last_seq;
	int64_t count = (int64_t)db->vs.count;
	char path[4096];
	int relaxed = db->opts.sync != TROVE_SYNC_ALWAYS, stopped = 0;
	for (int i = 0; i < logs->n && !stopped; i++) {
		if (logs->nums[i] < db->vs.log_number)
			continue;
		tv_file_path(path, sizeof path, db->path, logs->nums[i], "log");
		tv_log_reader *r;
		int rc = tv_log_reader_open(db->vfs, path, TV_MAGIC_WAL, &db->lg, &r);
		if (rc == TROVE_ECORRUPT && relaxed) {
			tv_logf(&db->lg, TROVE_LOG_WARN, "%s: damaged header after a relaxed-sync "
			        "crash; recovery stops before it", path);
			break;
		}
		if (rc)
			return rc;
		tv_slice rec;
		while ((rc = tv_log_read(r, &rec)) == 1) {
			uint64_t seq;
			int64_t d;
			unsigned flags;
			/* Every group continues the sequence where the previous one
			 * (or the tables) ended, across log files too: a gap means
			 * a record or a log is missing. */
			if (rec.len >= REC_HEADER && tv_get_fixed64(rec.data) != last + 1) {
				tv_logf(&db->lg, TROVE_LOG_ERROR,
				        "%s: record after offset %llu starts at sequence %llu, "
				        "expected %llu", path,
				        (unsigned long long)tv_log_reader_good_end(r),
				        (unsigned long long)tv_get_fixed64(rec.data),
				        (unsigned long long)(last + 1));
				rc = TROVE_ECORRUPT;
				break;
			}
			rc = apply_record(db->mem, rec, &seq, &d, &flags);
			if (rc) {
				if (rc == TROVE_ECORRUPT)
					tv_logf(&db->lg, TROVE_LOG_ERROR,
					        "%s: malformed record ending at offset %llu", path,
					        (unsigned long long)tv_log_reader_good_end(r));
				break;
			}
			relaxed = (flags & REC_RELAXED) != 0;
			last = seq;
			count += d;
		}
		if (rc == TROVE_ECORRUPT && relaxed) {
			tv_logf(&db->lg, TROVE_LOG_WARN,
			        "%s: damaged after offset %llu, written without a sync per write: "
			        "recovery keeps what precedes it and ignores newer logs",
			        path, (unsigned long long)tv_log_reader_good_end(r));
			rc = 0;
			stopped = 1;
		}
		uint64_t damaged = tv_log_reader_good_end(r);
		if (rc == TROVE_ECORRUPT && i == logs->n - 1 && pipeline_tail(r, damaged)) {
			tv_logf(&db->lg, TROVE_LOG_WARN,
			        "%s: damaged after offset %llu, before records appended while it "
			        "was not yet durable: a torn write of the sync pipeline; recovery "
			        "keeps what precedes it",
			        path, (unsigned long long)damaged);
			rc = 0;
		}
		if (rc == 0 && tv_log_reader_torn(r))
			tv_logf(&db->lg, TROVE_LOG_INFO, "%s: dropped a torn tail after offset %llu",
			        path, (unsigned long long)tv_log_reader_good_end(r));
		tv_log_reader_close(r);
		if (rc)
			return rc;
	}
	atomic_store(&db->last_seq, last);
	db->write_seq = last;
	db->count = (uint64_t)count;
	return 0;
}

typedef struct gc_ctx {
	trove_db *db;
	tv_version *v;
} gc_ctx;

static int file_live(tv_version *v, uint64_t num)
{
	for (int l = 0; l < TV_LEVELS; l++)
		for (int i = 0; i < v->nfiles[l]; i++)
			if (v->files[l][i]->number == num)
				return 1;
	return 0;
}

static int gc_one(void *arg, const char *name)
{
	gc_ctx *c = arg;
	trove_db *db = c->db;
	uint64_t num;
	int dead = 0;
	if (parse_name(name, "sst", &num))
		dead = !file_live(c->v, num);
	else if (parse_name(name, "log", &num))
		dead = num < db->wal_number;
	else if (!strncmp(name, "MANIFEST-", 9))
		dead = strtoull(name + 9, NULL, 10) != db->vs.manifest_number;
	else if (!strcmp(name, "CURRENT.tmp"))
		dead = 1;
	if (dead) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", db->path, name);
		db->vfs->remove(db->vfs, path);
	}
	return 0;
}

/* Deletes files nothing needs any more: old logs and manifests, tables a
 * crash left half-made or no version lists (mu held, startup only). */
static void remove_garbage(trove_db *db)
{
	gc_ctx c = { db, db->vs.current };
	db->vfs->list_dir(db->vfs, db->path, gc_one, &c);
}

/* After replay: writes the replayed memtable to a table, starts a new log
 * and records both in the manifest. */
static int finish_recovery(trove_db *db)
{
	tv_edit e;
	tv_edit_init(&e);
	tv_filemeta *meta = NULL;
	/* The replayed writes that did not read their keys' prior state are
	 * resolved against the tables before they join them. */
	int64_t unresolved = 0;
	int rc = tv_write_level0(db, db->mem, db->vs.current, &meta, &unresolved);
	if (!rc && meta)
		rc = tv_edit_add_file(&e, 0, meta);
	if (rc) {
		tv_filemeta_free(meta);
		return rc;
	}
	pthread_mutex_lock(&db->mu);
	if (db->use_wal)
		rc = new_wal(db);
	if (!rc) {
		e.has_log_number = e.has_last_seq = e.has_count = 1;
		e.log_number = db->wal_number;
		e.last_seq = atomic_load(&db->last_seq);
		e.count = (uint64_t)((int64_t)db->count + unresolved);
		tv_deadlist dead = { 0 };
		rc = tv_vs_log_and_apply(&db->vs, &e, &db->mu, &dead);
		free(dead.nums);
		if (!rc)
			db->count = e.count;
	}
	if (!rc)
		remove_garbage(db);
	pthread_mutex_unlock(&db->mu);
	tv_edit_free(&e);
	if (rc)
		return rc;
	tv_memtable *m = tv_mem_new_pooled(db->mem_pool);
	if (!m)
		return TROVE_ENOMEM;
	tv_mem_unref(db->mem);
	db->mem = m;
	return 0;
}

static int validate_options(const char *path, const trove_options *o)
{
	if (!o->in_memory && (!path || !*path))
		return TROVE_EINVAL;
	if (o->in_memory && o->read_only)
		return TROVE_EINVAL;
	if (o->sync < TROVE_SYNC_ALWAYS || o->sync > TROVE_SYNC_NONE)
		return TROVE_EINVAL;
	if (o->compression < TROVE_COMPRESS_NONE || o->compression > TROVE_COMPRESS_ZSTD)
		return TROVE_EINVAL;
	if (o->sync == TROVE_SYNC_PERIODIC && o->sync_period_ms == 0)
		return TROVE_EINVAL;
	if (o->memory_budget && o->memory_budget < ((size_t)1 << 20))
		return TROVE_EINVAL;
	if (o->read_only && o->error_if_exists)
		return TROVE_EINVAL;
	return 0;
}

/* Makes a new directory's entry in its parent durable. */
static int sync_parent(trove_vfs *vfs, const char *path)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	while (n > 0 && path[n - 1] != '/')
		n--;
	char parent[4096];
	if (n == 0)
		snprintf(parent, sizeof parent, ".");
	else
		snprintf(parent, sizeof parent, "%.*s", (int)(n > 1 ? n - 1 : 1), path);
	return vfs->sync_dir(vfs, parent);
}

static int open_files(trove_db *db)
{
	trove_vfs *vfs = db->vfs;
	int rc = vfs->exists(vfs, db->path);
	if (rc == TROVE_ENOENT) {
		if (!db->opts.create_if_missing || db->read_only)
			return TROVE_ENOTFOUND;
		rc = vfs->mkdir(vfs, db->path);
		if (rc == 0)
			rc = sync_parent(vfs, db->path);
		else if (rc == TROVE_EEXIST)
			rc = 0;
	}
	if (rc)
		return rc;
	if (!db->opts.in_memory) {
		char lock[4096];
		snprintf(lock, sizeof lock, "%s/LOCK", db->path);
		rc = vfs->lock(vfs, lock, &db->lockfile);
		if (rc)
			return rc;
	}
	char cur[4096];
	snprintf(cur, sizeof cur, "%s/CURRENT", db->path);
	rc = vfs->exists(vfs, cur);
	if (rc == 0) {
		if (db->opts.error_if_exists)
			return TROVE_EEXIST;
		rc = tv_vs_recover(&db->vs);
	} else if (rc == TROVE_ENOENT) {
		if (!db->opts.create_if_missing || db->read_only)
			return TROVE_ENOTFOUND;
		rc = tv_vs_create(&db->vs);
	}
	if (rc)
		return rc;
	name_list logs = { 0 };
	rc = vfs->list_dir(vfs, db->path, collect_logs, &logs);
	if (!rc && logs.max_number >= db->vs.next_file)
		db->vs.next_file = logs.max_number + 1;
	if (!rc)
		rc = replay_logs(db, &logs);
	free(logs.nums);
	if (!rc && !db->read_only)
		rc = finish_recovery(db);
	return rc;
}

static void free_db(trove_db *db)
{
	tv_super *cur = atomic_load(&db->super);
	if (cur) {
		atomic_store(&cur->refs, 0);
		super_drop_mems(cur);
		super_retire(db, cur, NULL);
	}
	while (db->super_free) {
		tv_super *s = db->super_free;
		db->super_free = s->next_free;
		free(s);
	}
	if (db->mem)
		tv_mem_unref(db->mem);
	if (db->imm)
		tv_mem_unref(db->imm);
	tv_mem_pool_unref(db->mem_pool);
	if (db->wal)
		tv_log_close(db->wal);
	tv_vs_destroy(&db->vs);
	if (db->cache)
		tv_cache_free(db->cache);
	if (db->lockfile)
		db->vfs->unlock(db->lockfile);
	if (db->own_vfs)
		tv_vfs_mem_free(db->own_vfs);
	tv_buf_free(&db->wal_rec);
	tv_group_free(db);
	pthread_mutex_destroy(&db->mu);
	pthread_mutex_destroy(&db->compact_mu);
	pthread_mutex_destroy(&db->err_mu);
	pthread_cond_destroy(&db->bg_cv);
	pthread_cond_destroy(&db->drain_cv);
	free(db->path);
	free(db);
}

static int start_threads(trove_db *db)
{
	if (pthread_create(&db->flush_thread, NULL, tv_flush_main, db))
		return TROVE_ENOMEM;
	db->threads_started = 1;
	if (pthread_create(&db->compact_thread, NULL, tv_compact_main, db))
		return TROVE_ENOMEM;
	db->threads_started = 2;
	if (pthread_create(&db->timer_thread, NULL, tv_timer_main, db))
		return TROVE_ENOMEM;
	db->threads_started = 3;
	return 0;
}

static void stop_threads(trove_db *db)
{
	pthread_mutex_lock(&db->mu);
	db->shutting_down = 1;
	pthread_cond_broadcast(&db->bg_cv);
	pthread_mutex_unlock(&db->mu);
	if (db->threads_started >= 1)
		pthread_join(db->flush_thread, NULL);
	if (db->threads_started >= 2)
		pthread_join(db->compact_thread, NULL);
	if (db->threads_started >= 3)
		pthread_join(db->timer_thread, NULL);
	db->threads_started = 0;
}

/* The memory budget is split at open: an eighth for each of at most two
 * memtables, the rest for the block cache less 1/WORK_SHARE of the budget,
 * which is left for what the engine allocates outside both: the working
 * memory of one flush and one compaction (table builders, bloom filter
 * hashes, the blocks a compaction reads without caching them) and the
 * free space malloc keeps around it.  That working memory grows with the
 * size of the tables written, a fixed share of the budget. */
#define WORK_SHARE 16

int trove_open(const char *path, const trove_options *opts, trove_db **out)
{
	trove_options defaults;
	if (!out)
		return TROVE_EINVAL;
	if (!opts) {
		trove_options_init(&defaults);
		opts = &defaults;
	}
	int rc = validate_options(path, opts);
	if (rc)
		return rc;
	trove_db *db = calloc(1, sizeof *db);
	if (!db)
		return TROVE_ENOMEM;
	db->opts = *opts;
	if (!db->opts.memory_budget)
		db->opts.memory_budget = (size_t)64 << 20;
	pthread_mutex_init(&db->mu, NULL);
	pthread_mutex_init(&db->compact_mu, NULL);
	pthread_mutex_init(&db->err_mu, NULL);
	pthread_cond_init(&db->bg_cv, NULL);
	pthread_cond_init(&db->drain_cv, NULL);
	db->snapshots.next = db->snapshots.prev = &db->snapshots;
	db->lg.fn = tv_db_log;
	db->lg.arg = db;
	tv_buf_init(&db->wal_rec);
	db->read_only = opts->read_only;
	db->use_wal = !opts->in_memory;
	db->path = strdup(opts->in_memory ? "/trove-memory" : path);
	if (opts->in_memory)
		db->vfs = db->own_vfs = tv_vfs_mem_new();
	else
		db->vfs = opts->vfs ? opts->vfs : tv_vfs_posix();
	db->write_buffer = db->opts.memory_budget / 8;
	db->cache = tv_cache_new(db->opts.memory_budget - 2 * db->write_buffer -
	                         db->opts.memory_budget / WORK_SHARE);
	db->mem_pool = tv_mem_pool_new(db->write_buffer);
	db->mem = db->mem_pool ? tv_mem_new_pooled(db->mem_pool) : NULL;
	if (!db->path || !db->vfs || !db->cache || !db->mem) {
		free_db(db);
		return TROVE_ENOMEM;
	}
	db->vs.vfs = db->vfs;
	db->vs.dir = db->path;
	db->vs.lg = &db->lg;
	db->vs.cache = db->cache;
	db->vs.read_only = db->read_only;
	db->last_sync_ms = (uint64_t)tv_now_ms();
	rc = open_files(db);
	if (!rc) {
		pthread_mutex_lock(&db->mu);
		rc = tv_super_install(db);
		pthread_mutex_unlock(&db->mu);
	}
	if (!rc && !db->read_only)
		rc = start_threads(db);
	if (rc) {
		stop_threads(db);
		free_db(db);
		return rc;
	}
	*out = db;
	return 0;
}

/* A memtable this large (or a quarter full, if that is less) is written
 * to a table at close rather than left in the log: the next open then
 * replays little, and the data rests on disk compressed. */
#define CLOSE_FLUSH_MIN (1u << 20)

int trove_close(trove_db *db)
{
	if (!db)
		return 0;
	int frc = 0;
	size_t enough = db->write_buffer / 4 < CLOSE_FLUSH_MIN ? db->write_buffer / 4 : CLOSE_FLUSH_MIN;
	if (db->use_wal && !writable(db) && tv_mem_usage(db->mem) >= enough) {
		frc = trove_flush(db);
		if (frc)
			tv_logf(&db->lg, TROVE_LOG_WARN,
			        "flush at close failed (%s); the log keeps the data",
			        trove_strerror(frc));
	}
	stop_threads(db);
	int rc = 0;
	if (db->wal && db->wal_end > db->wal_durable && !db->wal_broken && !db->bad)
		rc = tv_log_sync(db->wal);
	free_db(db);
#ifdef __GLIBC__
	/* The cache's blocks were malloc'd by many threads and freed in no
	 * order: glibc keeps most of that memory, up to half the budget, as
	 * free space in its heaps.  Give the free pages back so that closing a
	 * database lowers the process's memory (this changes no malloc
	 * setting; it only returns free pages). */
	malloc_trim(0);
#endif
	return rc ? rc : frc;
}
