/*
 * cursor.c - ordered iteration over a consistent snapshot.
 *
 * tv_dbiter turns the merge of every memtable and table (internal keys,
 * all versions, tombstones) into the sequence a reader expects: one entry
 * per stored key, its newest version at the snapshot's sequence number,
 * with deleted and expired keys left out, within [lo, hi).  Forward, the
 * merged iterator sits on the entry returned; backward, it sits just
 * before the entries of the key returned, whose newest visible value is
 * kept in a copy.  Changing direction re-seeks.
 *
 * The public trove_cursor wraps a tv_dbiter over the data namespace; the
 * same machinery walks the expiry index for trove_count and the reaper.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../util/coding.h"
#include "../util/grow.h"
#include "db.h"
#include "ikey.h"

/* Bytes of key and value a tv_dbiter holds without allocating. */
#define KEY_INLINE 48
#define VALUE_INLINE 256
/* Sources a cursor gathers on the stack before merging them. */
#define SOURCES_INLINE 32

struct tv_dbiter {
	trove_db *db;
	tv_super *s;
	tv_iter *it;
	uint64_t seq;
	int check_expiry; /* 0: expiry not checked (the expiry index) */
	int64_t now;      /* the clock for expiry, read when first needed */
	tv_buf lo, hi;
	int has_hi;
	int valid;
	int reverse;
	int stopped_checked; /* reverse: rev_find stopped on an entry it checked */
	int status;
	tv_slice key, value; /* current stored key and raw stored value */
	uint64_t cur_seq;
	unsigned cur_type;
	tv_buf kbuf, vbuf; /* copies backing key/value in reverse */
	tv_buf skip;       /* scratch */
	tv_buf seekbuf;
	/* Where the buffers start, so that a cursor over short keys and
	 * values (a seek and a few steps) allocates none of them. */
	char lo_st[KEY_INLINE], hi_st[KEY_INLINE], kbuf_st[KEY_INLINE], skip_st[KEY_INLINE];
	char seek_st[KEY_INLINE + TV_TRAILER], vbuf_st[VALUE_INLINE];
};

/* True if user keys a and b are equal.  The merge yields keys in order, so
 * the scans below only ever need to know whether an entry still belongs
 * to the key met before it; keys met one after another usually differ in
 * their last bytes, so those are compared first, as one word.  The rest
 * is compared in line too: equal keys (a key's older versions, one per
 * key in a scan of overwritten data) compare all of it. */
static inline int same_key(tv_slice a, tv_slice b)
{
	if (a.len != b.len)
		return 0;
	if (a.len < 8)
		return tv_cmp_bytes(a.data, b.data, a.len) == 0;
	uint64_t x, y;
	memcpy(&x, a.data + a.len - 8, 8);
	memcpy(&y, b.data + b.len - 8, 8);
	return x == y && tv_cmp_bytes(a.data, b.data, a.len - 8) == 0;
}

/* True if user key k sorts before bound (tv_ukey_cmp(k, bound) < 0), for
 * the range bounds a scan checks at each key.  A bound is usually a
 * namespace's first key or the next namespace's, one byte long, which
 * most keys' first byte decides against alone. */
static inline int below(tv_slice k, tv_slice bound)
{
	if (k.len && bound.len) {
		unsigned char a = (unsigned char)k.data[0], b = (unsigned char)bound.data[0];
		if (a != b)
			return a < b;
		if (bound.len == 1)
			return 0; /* k starts with all of bound */
	}
	return tv_ukey_cmp(k, bound) < 0;
}

/* Makes b a copy of user key k.  Keys of 16 to 32 bytes, the common
 * size, are copied in line as two overlapping 16-byte moves: a step
 * copies the key it leaves (forwards) or finds (backwards), and a call to
 * memcpy cost more than the copy. */
static inline int copy_key(tv_buf *b, tv_slice k)
{
	tv_buf_clear(b);
	if (k.len < 16 || k.len > 32 || b->cap < 32)
		return tv_buf_append(b, k.data, k.len);
	char x[16], y[16];
	memcpy(x, k.data, 16);
	memcpy(y, k.data + k.len - 16, 16);
	memcpy(b->data, x, 16);
	memcpy(b->data + k.len - 16, y, 16);
	b->len = k.len;
	return 0;
}

/* True if an entry hides its key: a tombstone, or a value that has expired.
 * The clock is read only when an entry with an expiry shows up, and then
 * once per positioning call, so data without expiries costs no clock
 * reads. */
static int entry_dead(tv_dbiter *d, unsigned type, tv_slice value)
{
	if (type == TV_TYPE_DEL)
		return 1;
	if (type == TV_TYPE_PUT_EXP && d->check_expiry) {
		if (value.len < 8)
			return 1;
		if (!d->now)
			d->now = tv_now_ms();
		return (int64_t)tv_get_fixed64(value.data) <= d->now;
	}
	return 0;
}

static int set_status(tv_dbiter *d)
{
	int st = tv_iter_status(d->it);
	if (st && !d->status)
		d->status = st;
	return d->status;
}

/* set_status where a scan stopped: a positioned iterator has met no error
 * (an iterator that fails becomes invalid), so the children's statuses
 * are asked only at the end of the sequence, not once per key. */
static int stop_status(tv_dbiter *d)
{
	return tv_iter_valid(d->it) ? d->status : set_status(d);
}

/* Moves forward from the current position to the first visible live
 * entry; with skipping set, entries of key d->skip are hidden (the
 * position is at or past its first entry, so no smaller key follows). */
static int fwd_find(tv_dbiter *d, int skipping)
{
	d->valid = 0;
	d->reverse = 0;
	for (; tv_iter_valid(d->it); tv_iter_next(d->it)) {
		tv_slice k = tv_iter_key(d->it);
		if (!tv_ikey_valid(k)) {
			d->status = TROVE_ECORRUPT;
			return d->status;
		}
		tv_slice uk = tv_ikey_user(k);
		/* The key skipped lies below hi: its entries need no bound check. */
		if (skipping && same_key(uk, tv_buf_slice(&d->skip)))
			continue;
		if (d->has_hi && !below(uk, tv_buf_slice(&d->hi)))
			break;
		if (tv_ikey_seq(k) > d->seq)
			continue;
		tv_slice v = tv_iter_value(d->it);
		unsigned type = tv_ikey_type(k);
		if (entry_dead(d, type, v)) {
			if (copy_key(&d->skip, uk))
				return d->status = TROVE_ENOMEM;
			skipping = 1;
			continue;
		}
		d->key = uk;
		d->value = v;
		d->cur_seq = tv_ikey_seq(k);
		d->cur_type = type;
		d->valid = 1;
		return 0;
	}
	if (stop_status(d))
		return d->status;
	return TROVE_ENOTFOUND;
}

/* Copies the candidate's value, held in place, into vbuf. */
static int keep_value(tv_dbiter *d)
{
	tv_buf_clear(&d->vbuf);
	if (tv_buf_append(&d->vbuf, d->value.data, d->value.len))
		return d->status = TROVE_ENOMEM;
	d->value = tv_buf_slice(&d->vbuf);
	return 0;
}

/* Moves backward from the current position to the previous visible live
 * key, leaving the merged iterator before that key's entries.  checked:
 * the position is where the last call stopped, on the first entry met
 * past its answer, which that call found well formed, within lo and
 * visible (d->stopped_checked), so it is not looked at again.  The
 * candidate's value is copied only when it might not outlive the next
 * step (tv_iter_value_lasts) or a second step follows it: a key's older
 * versions, which a newer one replaces, and the answer itself, which the
 * step past it leaves in place, are usually not copied at all. */
static int rev_find(tv_dbiter *d, int checked)
{
	d->valid = 0;
	d->reverse = 1;
	d->stopped_checked = 0;
	int have = 0; /* kbuf and d->value hold a live candidate */
	int held = 0; /* d->value is in place, and stepped past once at most */
	for (; tv_iter_valid(d->it); tv_iter_prev(d->it), checked = 0) {
		tv_slice k = tv_iter_key(d->it);
		tv_slice uk = tv_ikey_user(k);
		int same = 0;
		if (!checked) { /* else: the entry the last call stopped at */
			if (!tv_ikey_valid(k)) {
				d->status = TROVE_ECORRUPT;
				return d->status;
			}
			/* The candidate's key lies within lo: its entries need no check. */
			same = have && same_key(uk, tv_buf_slice(&d->kbuf));
			if (!same && below(uk, tv_buf_slice(&d->lo)))
				break;
			if (tv_ikey_seq(k) > d->seq) {
				if (held && keep_value(d)) /* the next step may take it away */
					return d->status;
				held = 0;
				continue;
			}
			if (have && !same) {
				/* Passed the candidate's entries: it is the answer, and
				 * the next call starts at this entry, checked. */
				d->stopped_checked = 1;
				break;
			}
		}
		tv_slice v = tv_iter_value(d->it);
		unsigned type = tv_ikey_type(k);
		if (entry_dead(d, type, v)) {
			have = held = 0;
			continue;
		}
		if (!same && copy_key(&d->kbuf, uk)) /* a newer version keeps the key */
			return d->status = TROVE_ENOMEM;
		d->value = v;
		held = tv_iter_value_lasts(d->it);
		if (!held && keep_value(d))
			return d->status;
		d->cur_seq = tv_ikey_seq(k);
		d->cur_type = type;
		have = 1;
	}
	if (stop_status(d))
		return d->status;
	if (!have)
		return TROVE_ENOTFOUND;
	d->key = tv_buf_slice(&d->kbuf);
	d->valid = 1;
	return 0;
}

/* Builds the internal key (k, seq, type) in d->seekbuf. */
static tv_slice make_ikey(tv_dbiter *d, tv_slice k, uint64_t seq, unsigned type)
{
	tv_buf_clear(&d->seekbuf);
	if (tv_buf_append(&d->seekbuf, k.data, k.len) ||
	    tv_buf_put_fixed64(&d->seekbuf, tv_pack_trailer(seq, type)))
		return tv_slice_make(NULL, 0);
	return tv_buf_slice(&d->seekbuf);
}

static int seek_raw(tv_dbiter *d, tv_slice k, uint64_t seq, unsigned type)
{
	tv_slice ik = make_ikey(d, k, seq, type);
	if (!ik.data)
		return d->status = TROVE_ENOMEM;
	tv_iter_seek(d->it, ik);
	return 0;
}

/* rev_find from the last entry before the internal key (k, seq, type). */
static int find_before(tv_dbiter *d, tv_slice k, uint64_t seq, unsigned type)
{
	if (seek_raw(d, k, seq, type))
		return d->status;
	if (tv_iter_valid(d->it))
		tv_iter_prev(d->it);
	else if (!set_status(d))
		tv_iter_seek_last(d->it);
	if (set_status(d))
		return d->status;
	return rev_find(d, 0);
}

tv_dbiter *tv_dbiter_new(trove_db *db, tv_super *s, uint64_t seq, tv_slice lo, tv_slice hi,
                         int has_hi, int check_expiry)
{
	/* One allocation holds the cursor, the memtables' and the version's
	 * iterators and their merge: a short scan's open and close are one
	 * malloc and one free. */
	int n = 1 + (s->imm != NULL) + tv_version_iter_count(s->version);
	size_t head = tv_iter_slot(sizeof(tv_dbiter));
	size_t vmem = tv_iter_slot(tv_version_iters_mem(s->version));
	size_t mslot = tv_iter_slot(tv_mem_iter_size());
	char *p = malloc(head + vmem + 2 * mslot + tv_iter_merge_size(n));
	tv_iter *its_st[SOURCES_INLINE];
	tv_iter **its = n <= SOURCES_INLINE ? its_st : malloc((size_t)n * sizeof *its);
	if (!p || !its) {
		free(p);
		if (its != its_st)
			free(its);
		return NULL;
	}
	tv_dbiter *d = (tv_dbiter *)p;
	d->db = db;
	d->s = s;
	atomic_fetch_add(&s->refs, 1);
	d->seq = seq;
	d->check_expiry = check_expiry;
	d->now = 0;
	d->valid = d->reverse = d->stopped_checked = d->status = 0;
	d->key = d->value = tv_slice_make(NULL, 0);
	d->cur_seq = 0;
	d->cur_type = 0;
	tv_buf_init_fixed(&d->lo, d->lo_st, sizeof d->lo_st);
	tv_buf_init_fixed(&d->hi, d->hi_st, sizeof d->hi_st);
	tv_buf_init_fixed(&d->kbuf, d->kbuf_st, sizeof d->kbuf_st);
	tv_buf_init_fixed(&d->vbuf, d->vbuf_st, sizeof d->vbuf_st);
	tv_buf_init_fixed(&d->skip, d->skip_st, sizeof d->skip_st);
	tv_buf_init_fixed(&d->seekbuf, d->seek_st, sizeof d->seek_st);
	d->has_hi = has_hi;
	int k = 0;
	p += head;
	its[k++] = tv_mem_iter_in(p + vmem, s->mem);
	if (s->imm)
		its[k++] = tv_mem_iter_in(p + vmem + mslot, s->imm);
	k += tv_version_iters(s->version, its + k, n - k, p);
	assert(k == n);
	d->it = tv_iter_merge_in(p + vmem + 2 * mslot, its, n);
	if (its != its_st)
		free(its);
	if (tv_buf_append(&d->lo, lo.data, lo.len) ||
	    (has_hi && tv_buf_append(&d->hi, hi.data, hi.len))) {
		tv_dbiter_free(d);
		return NULL;
	}
	return d;
}

void tv_dbiter_free(tv_dbiter *d)
{
	if (!d)
		return;
	tv_iter_destroy(d->it);
	tv_super_put(d->db, d->s);
	tv_buf_free(&d->lo);
	tv_buf_free(&d->hi);
	tv_buf_free(&d->kbuf);
	tv_buf_free(&d->vbuf);
	tv_buf_free(&d->skip);
	tv_buf_free(&d->seekbuf);
	free(d);
}

int tv_dbiter_first(tv_dbiter *d)
{
	if (seek_raw(d, tv_buf_slice(&d->lo), TV_MAX_SEQ, TV_SEEK_TYPE))
		return d->status;
	return fwd_find(d, 0);
}

int tv_dbiter_last(tv_dbiter *d)
{
	if (d->has_hi)
		return find_before(d, tv_buf_slice(&d->hi), TV_MAX_SEQ, TV_SEEK_TYPE);
	tv_iter_seek_last(d->it);
	if (set_status(d))
		return d->status;
	return rev_find(d, 0);
}

int tv_dbiter_seek(tv_dbiter *d, tv_slice k)
{
	if (tv_slice_cmp(k, tv_buf_slice(&d->lo)) < 0)
		return tv_dbiter_first(d);
	if (seek_raw(d, k, TV_MAX_SEQ, TV_SEEK_TYPE))
		return d->status;
	return fwd_find(d, 0);
}

int tv_dbiter_seek_for_prev(tv_dbiter *d, tv_slice k)
{
	if (d->has_hi && tv_slice_cmp(k, tv_buf_slice(&d->hi)) >= 0)
		return tv_dbiter_last(d);
	/* (k, 0, 0) sorts after every entry of k. */
	return find_before(d, k, 0, 0);
}

int tv_dbiter_next(tv_dbiter *d)
{
	if (!d->valid)
		return TROVE_EINVAL;
	if (copy_key(&d->skip, d->key))
		return d->status = TROVE_ENOMEM;
	if (d->reverse) {
		if (seek_raw(d, tv_buf_slice(&d->skip), TV_MAX_SEQ, TV_SEEK_TYPE))
			return d->status;
	} else {
		tv_iter_next(d->it);
	}
	return fwd_find(d, 1);
}

int tv_dbiter_prev(tv_dbiter *d)
{
	if (!d->valid)
		return TROVE_EINVAL;
	if (d->reverse)
		return rev_find(d, d->stopped_checked);
	if (copy_key(&d->skip, d->key))
		return d->status = TROVE_ENOMEM;
	return find_before(d, tv_buf_slice(&d->skip), TV_MAX_SEQ, TV_SEEK_TYPE);
}

int tv_dbiter_valid(const tv_dbiter *d)
{
	return d->valid;
}

tv_slice tv_dbiter_key(const tv_dbiter *d)
{
	return d->key;
}

tv_slice tv_dbiter_value(const tv_dbiter *d)
{
	tv_slice v = d->value;
	if (d->cur_type == TV_TYPE_PUT_EXP && v.len >= 8) {
		v.data += 8;
		v.len -= 8;
	}
	return v;
}

uint64_t tv_dbiter_seq(const tv_dbiter *d)
{
	return d->cur_seq;
}

int64_t tv_dbiter_expire(const tv_dbiter *d)
{
	if (d->cur_type == TV_TYPE_PUT_EXP && d->value.len >= 8)
		return (int64_t)tv_get_fixed64(d->value.data);
	return 0;
}

/* ---- The expiry index ---------------------------------------------------------------- */

/* The stored-key range [TV_NS_EXPIRY, TV_NS_EXPIRY + be64(now + 1)). */
static void expiry_range(char lo[1], char hi[9], int64_t now)
{
	lo[0] = TV_NS_EXPIRY;
	hi[0] = TV_NS_EXPIRY;
	uint64_t v = (uint64_t)now + 1;
	for (int i = 8; i >= 1; i--) {
		hi[i] = (char)(v & 0xff);
		v >>= 8;
	}
}

int tv_count_expired_at(trove_db *db, tv_super *s, uint64_t seq, int64_t now, uint64_t *n)
{
	char lo[1], hi[9];
	expiry_range(lo, hi, now);
	tv_dbiter *d = tv_dbiter_new(db, s, seq, tv_slice_make(lo, 1), tv_slice_make(hi, 9), 1, 0);
	if (!d)
		return TROVE_ENOMEM;
	uint64_t c = 0;
	int rc;
	for (rc = tv_dbiter_first(d); rc == 0; rc = tv_dbiter_next(d))
		c++;
	tv_dbiter_free(d);
	if (rc != TROVE_ENOTFOUND)
		return rc;
	*n = c;
	return 0;
}

int tv_reap_expired(trove_db *db, size_t max, size_t *reaped)
{
	*reaped = 0;
	int64_t now = tv_now_ms();
	char lo[1], hi[9];
	expiry_range(lo, hi, now);
	tv_super *s = tv_super_get(db);
	uint64_t seq = atomic_load_explicit(&db->last_seq, memory_order_acquire);
	/* Without an expiry-index entry anywhere there is nothing to reap:
	 * skip the cursor, which would fold the memtables' tails and seek in
	 * every table. */
	if (!tv_tables_hold_expiry(s->version) && tv_mem_top_byte(s->mem) < TV_NS_EXPIRY &&
	    (!s->imm || tv_mem_top_byte(s->imm) < TV_NS_EXPIRY)) {
		tv_super_put(db, s);
		return 0;
	}
	tv_dbiter *d = tv_dbiter_new(db, s, seq, tv_slice_make(lo, 1), tv_slice_make(hi, 9), 1, 0);
	tv_super_put(db, s);
	if (!d)
		return TROVE_ENOMEM;
	trove_batch *b = trove_batch_new();
	int rc = b ? 0 : TROVE_ENOMEM;
	size_t n = 0;
	if (!rc)
		for (rc = tv_dbiter_first(d); rc == 0 && n < max; rc = tv_dbiter_next(d)) {
			tv_slice k = tv_dbiter_key(d);
			if (k.len < 10)
				continue; /* cannot be ours; left alone */
			int64_t exp = 0;
			for (int i = 1; i <= 8; i++)
				exp = (int64_t)(((uint64_t)exp << 8) | (unsigned char)k.data[i]);
			rc = tv_batch_add_op(b, TV_OP_REAP, k.data + 9, k.len - 9, NULL, 0, exp);
			if (rc)
				break;
			n++;
		}
	tv_dbiter_free(d);
	if (rc == TROVE_ENOTFOUND || (rc == 0 && n == max))
		rc = 0;
	if (!rc && n)
		rc = tv_write_internal(db, b, 0, NULL);
	trove_batch_free(b);
	if (!rc)
		*reaped = n;
	return rc;
}

/* ---- Public cursors ---------------------------------------------------------------------- */

struct trove_cursor {
	trove_db *db;
	tv_dbiter *d;
	tv_buf seek;
	char seek_st[KEY_INLINE];
};

/* The first stored key after every key starting with prefix p (stored),
 * or 0 if there is none within the namespace. */
static int prefix_end(tv_buf *out, tv_slice p)
{
	size_t n = p.len;
	while (n > 1 && (unsigned char)p.data[n - 1] == 0xff)
		n--;
	if (n <= 1)
		return 0;
	tv_buf_clear(out);
	if (tv_buf_append(out, p.data, n))
		return TROVE_ENOMEM;
	out->data[n - 1] = (char)((unsigned char)out->data[n - 1] + 1);
	return 1;
}

static int stored(tv_buf *b, const void *k, size_t len)
{
	char ns = TV_NS_DATA;
	tv_buf_clear(b);
	if (tv_buf_append(b, &ns, 1) || tv_buf_append(b, k, len))
		return TROVE_ENOMEM;
	return 0;
}

int trove_cursor_open(trove_db *db, const trove_cursor_opts *opts, trove_cursor **out)
{
	trove_cursor_opts none;
	if (!db || !out)
		return TROVE_EINVAL;
	if (!opts) {
		memset(&none, 0, sizeof none);
		opts = &none;
	}
	if ((!opts->lower && opts->lower_len) || (!opts->upper && opts->upper_len) ||
	    (!opts->prefix && opts->prefix_len))
		return TROVE_EINVAL;
	if (opts->lower_len > TROVE_MAX_KEY || opts->upper_len > TROVE_MAX_KEY ||
	    opts->prefix_len > TROVE_MAX_KEY)
		return TROVE_ETOOBIG;
	tv_buf lo, hi, tmp;
	char lo_st[KEY_INLINE], hi_st[KEY_INLINE], tmp_st[KEY_INLINE];
	tv_buf_init_fixed(&lo, lo_st, sizeof lo_st);
	tv_buf_init_fixed(&hi, hi_st, sizeof hi_st);
	tv_buf_init_fixed(&tmp, tmp_st, sizeof tmp_st);
	char end = TV_NS_DATA + 1;
	int rc = stored(&lo, "", 0);
	if (!rc)
		rc = tv_buf_append(&hi, &end, 1);
	if (!rc && opts->lower) {
		rc = stored(&tmp, opts->lower, opts->lower_len);
		if (!rc && tv_slice_cmp(tv_buf_slice(&tmp), tv_buf_slice(&lo)) > 0) {
			tv_buf_clear(&lo);
			rc = tv_buf_append(&lo, tmp.data, tmp.len);
		}
	}
	if (!rc && opts->prefix) {
		rc = stored(&tmp, opts->prefix, opts->prefix_len);
		if (!rc && tv_slice_cmp(tv_buf_slice(&tmp), tv_buf_slice(&lo)) > 0) {
			tv_buf_clear(&lo);
			rc = tv_buf_append(&lo, tmp.data, tmp.len);
		}
		tv_buf pe;
		tv_buf_init(&pe);
		int has = rc ? 0 : prefix_end(&pe, tv_buf_slice(&tmp));
		if (has < 0)
			rc = has;
		if (has > 0 && tv_slice_cmp(tv_buf_slice(&pe), tv_buf_slice(&hi)) < 0) {
			tv_buf_clear(&hi);
			rc = tv_buf_append(&hi, pe.data, pe.len);
		}
		tv_buf_free(&pe);
	}
	if (!rc && opts->upper) {
		rc = stored(&tmp, opts->upper, opts->upper_len);
		if (!rc && tv_slice_cmp(tv_buf_slice(&tmp), tv_buf_slice(&hi)) < 0) {
			tv_buf_clear(&hi);
			rc = tv_buf_append(&hi, tmp.data, tmp.len);
		}
	}
	trove_cursor *c = NULL;
	if (!rc) {
		c = malloc(sizeof *c);
		if (!c)
			rc = TROVE_ENOMEM;
	}
	if (!rc) {
		c->db = db;
		tv_buf_init_fixed(&c->seek, c->seek_st, sizeof c->seek_st);
		tv_super *s = tv_super_get(db);
		uint64_t seq = opts->snap ? opts->snap->seq
		                          : atomic_load_explicit(&db->last_seq, memory_order_acquire);
		c->d = tv_dbiter_new(db, s, seq, tv_buf_slice(&lo), tv_buf_slice(&hi), 1, 1);
		tv_super_put(db, s);
		if (!c->d) {
			free(c);
			c = NULL;
			rc = TROVE_ENOMEM;
		}
	}
	tv_buf_free(&lo);
	tv_buf_free(&hi);
	tv_buf_free(&tmp);
	if (!rc)
		*out = c;
	return rc;
}

void trove_cursor_close(trove_cursor *c)
{
	if (!c)
		return;
	tv_dbiter_free(c->d);
	tv_buf_free(&c->seek);
	free(c);
}

/* The generic move: refreshes the clock used for expiry (so a long-lived
 * cursor does not return keys that expired after it was opened) and moves
 * the iterator.  The thin wrappers below name the moves. */
static int move(trove_cursor *c, int (*fn)(tv_dbiter *d))
{
	if (!c)
		return TROVE_EINVAL;
	c->d->now = 0; /* read again when an entry with an expiry needs it */
	return fn(c->d);
}

/* The generic seek: checks and stores the target, then seeks with fn. */
static int seek(trove_cursor *c, const void *key, size_t klen,
                int (*fn)(tv_dbiter *d, tv_slice skey))
{
	if (!c || (!key && klen))
		return TROVE_EINVAL;
	if (klen > TROVE_MAX_KEY)
		return TROVE_ETOOBIG;
	if (stored(&c->seek, key, klen))
		return TROVE_ENOMEM;
	c->d->now = 0;
	return fn(c->d, tv_buf_slice(&c->seek));
}

int trove_cursor_first(trove_cursor *c)
{
	return move(c, tv_dbiter_first);
}

int trove_cursor_last(trove_cursor *c)
{
	return move(c, tv_dbiter_last);
}

int trove_cursor_next(trove_cursor *c)
{
	return move(c, tv_dbiter_next);
}

int trove_cursor_prev(trove_cursor *c)
{
	return move(c, tv_dbiter_prev);
}

int trove_cursor_seek(trove_cursor *c, const void *key, size_t klen)
{
	return seek(c, key, klen, tv_dbiter_seek);
}

int trove_cursor_seek_for_prev(trove_cursor *c, const void *key, size_t klen)
{
	return seek(c, key, klen, tv_dbiter_seek_for_prev);
}

/* trove_cursor_valid for the calls below: a call to an exported function
 * is not inlined (it could be interposed), and key and value are read
 * once per entry of a scan. */
static inline int positioned(const trove_cursor *c)
{
	return c && c->d->valid;
}

int trove_cursor_valid(const trove_cursor *c)
{
	return positioned(c);
}

const void *trove_cursor_key(const trove_cursor *c, size_t *klen)
{
	if (!positioned(c)) {
		if (klen)
			*klen = 0;
		return NULL;
	}
	tv_slice k = tv_dbiter_key(c->d);
	if (klen)
		*klen = k.len - 1;
	return k.data + 1;
}

const void *trove_cursor_value(const trove_cursor *c, size_t *vlen)
{
	if (!positioned(c)) {
		if (vlen)
			*vlen = 0;
		return NULL;
	}
	tv_slice v = tv_dbiter_value(c->d);
	if (vlen)
		*vlen = v.len;
	return v.len ? v.data : "";
}

int trove_cursor_meta(const trove_cursor *c, trove_meta *meta)
{
	if (!c || !meta)
		return TROVE_EINVAL;
	if (!tv_dbiter_valid(c->d))
		return TROVE_ENOTFOUND;
	meta->version = tv_dbiter_seq(c->d);
	meta->expire_at_ms = tv_dbiter_expire(c->d);
	return 0;
}

/* ---- Key listing ------------------------------------------------------------------------------ */

void trove_key_list_free(trove_key_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->lens);
	memset(l, 0, sizeof *l);
}

int trove_list_keys(trove_db *db, const trove_snapshot *snap, const void *prefix, size_t plen,
                    const void *after, size_t alen, size_t limit, trove_key_list *out)
{
	if (!db || !out || limit == 0 || (!prefix && plen) || (!after && alen))
		return TROVE_EINVAL;
	trove_cursor_opts o;
	memset(&o, 0, sizeof o);
	o.snap = snap;
	o.prefix = prefix;
	o.prefix_len = plen;
	trove_cursor *c;
	int rc = trove_cursor_open(db, &o, &c);
	if (rc)
		return rc;
	trove_key_list l;
	memset(&l, 0, sizeof l);
	size_t kcap = 0, lcap = 0;
	rc = after ? trove_cursor_seek(c, after, alen) : trove_cursor_first(c);
	if (rc == 0 && after) {
		size_t kl;
		const void *k = trove_cursor_key(c, &kl);
		if (kl == alen && memcmp(k, after, alen) == 0)
			rc = trove_cursor_next(c);
	}
	while (rc == 0 && l.count < limit) {
		size_t kl;
		const void *k = trove_cursor_key(c, &kl);
		if (tv_grow(&l.keys, &kcap, l.count + 1, sizeof *l.keys, 64) ||
		    tv_grow(&l.lens, &lcap, l.count + 1, sizeof *l.lens, 64)) {
			rc = TROVE_ENOMEM;
			break;
		}
		void *copy = malloc(kl ? kl : 1);
		if (!copy) {
			rc = TROVE_ENOMEM;
			break;
		}
		memcpy(copy, k, kl);
		l.keys[l.count] = copy;
		l.lens[l.count] = kl;
		l.count++;
		rc = trove_cursor_next(c);
	}
	if (rc == 0)
		l.more = 1;
	else if (rc == TROVE_ENOTFOUND)
		rc = 0;
	trove_cursor_close(c);
	if (rc) {
		trove_key_list_free(&l);
		return rc;
	}
	*out = l;
	return 0;
}
