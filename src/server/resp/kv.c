/*
 * kv.c - the storage view of the RESP commands (kv.h): the engine, or,
 * while EXEC runs a transaction, the transaction's overlay on top of it.
 *
 * The overlay holds one entry per key the transaction has touched, found
 * through a hash index and sorted by key only when a walk needs the order
 * (so a transaction writing many keys in any order costs O(n), and walks
 * O(n log n) once).  An entry is *loaded* when the transaction read the key
 * from the engine (once: later reads see the entry, so the transaction's
 * reads agree with each other), remembering the version it had, which
 * the commit will require; it is *blind* when the transaction wrote the
 * key without reading it (no condition: a blind write commutes with
 * anyone else's); it is *dirty* once written.  Ordered walks merge the
 * overlay with an engine cursor.  kv_txn_commit turns the overlay into
 * one batch: the conditions first, then the final state of every dirty
 * key, so the engine applies the transaction atomically or not at all.
 *
 * A loop turn's batch (turn.c) is the same overlay with one difference,
 * which keeps a read-only turn free and a write-only turn unconditional:
 * until the batch has written something, reads add no condition (such a
 * read takes effect when it runs, before anything the batch will commit),
 * and what a command loaded is forgotten when the next one begins
 * (kv_txn_next_command), so each command reads the engine afresh while a
 * write finds what its own command's read loaded (INCR, SET ... GET);
 * once the batch has written, an entry read from the engine is
 * *required* - its version becomes a condition of the commit - because
 * that read takes effect at the commit, after the batch's earlier writes.
 * A write that depends on a read (a condition, KEEPTTL, INCR's version)
 * makes the read required too.  In EXEC every read is required.
 *
 * Outside EXEC and turn batches every call is the matching trove.h call,
 * nothing more.  This file never replies to a client and never takes a
 * lock: isolation comes from the commit's conditions, never from
 * blocking anyone.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "kv.h"

/* Memory for overlay entries and batch operations, released all at once:
 * its chunks are kept across resets, so a turn's batch of many keys costs
 * no malloc per key.  Values go there too in a turn's batch, whose bytes
 * written are capped (turn.c); in EXEC they are malloc'd, since a
 * transaction may rewrite a key's value many times, and each old copy
 * must be freed at once. */
#define POOL_CHUNK (64u << 10)

typedef struct pool_chunk {
	struct pool_chunk *next;
	size_t size;
	_Alignas(16) char data[];
} pool_chunk;

typedef struct kv_pool {
	pool_chunk *head;  /* chunks in use, the current one first */
	pool_chunk *spare; /* chunks of POOL_CHUNK bytes kept for reuse */
	size_t used;       /* bytes used in head */
} kv_pool;

static void *pool_alloc(kv_pool *p, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (!p->head || p->head->size - p->used < n) {
		pool_chunk *c = p->spare;
		if (c && n <= POOL_CHUNK) {
			p->spare = c->next;
		} else {
			size_t size = n > POOL_CHUNK ? n : POOL_CHUNK;
			if (!(c = malloc(sizeof *c + size)))
				return NULL;
			c->size = size;
		}
		c->next = p->head;
		p->head = c;
		p->used = 0;
	}
	void *r = p->head->data + p->used;
	p->used += n;
	return r;
}

/* Forgets every allocation; keeps the standard chunks for reuse. */
static void pool_reset(kv_pool *p)
{
	for (pool_chunk *c = p->head, *n; c; c = n) {
		n = c->next;
		if (c->size == POOL_CHUNK) {
			c->next = p->spare;
			p->spare = c;
		} else {
			free(c);
		}
	}
	p->head = NULL;
	p->used = 0;
}

static void pool_free(kv_pool *p)
{
	pool_reset(p);
	for (pool_chunk *c = p->spare, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	p->spare = NULL;
}

typedef struct kv_ent {
	char *key;
	size_t klen;
	char *val; /* malloc'd, or the engine's (engine_val) */
	size_t vlen;
	int64_t expire_at;
	uint64_t base; /* the engine's version when loaded; 0: absent */
	uint64_t since; /* trove_last_version() before it was loaded */
	size_t slot;   /* its place in the hash index */
	unsigned loaded : 1;
	unsigned required : 1; /* base is a condition of the commit */
	unsigned dirty : 1;
	unsigned present : 1;
	unsigned engine_val : 1; /* val is to be released with trove_free */
	unsigned pooled_val : 1; /* val is in the overlay's pool */
} kv_ent;

/* A key an ordered walk returned from the engine, with its version. */
typedef struct kv_seen {
	char *key;
	size_t klen;
	uint64_t version;
} kv_seen;

struct kv_txn {
	kv_ent **ents; /* in the order they came; by key when sorted */
	size_t n, cap;
	int sorted;
	size_t *slots; /* hash index: an index into ents + 1, or 0 for empty */
	size_t nslots; /* 0, or a power of two at least twice n */
	kv_seen *seen;
	size_t nseen, capseen;
	int err; /* a write half-applied to the overlay failed: so does the commit */
	kv_pool pool;   /* the entries */
	int turn;       /* a loop turn's batch (turn.c), not an EXEC */
	size_t nwrites; /* writes applied to the overlay */
	size_t bytes;   /* keys and values written, and values read, roughly */
};

/* Keys compare bytewise, a shorter key first on ties: the engine's order. */
static int keycmp(const char *a, size_t al, const char *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int r = m ? memcmp(a, b, m) : 0;
	if (r)
		return r;
	return al < bl ? -1 : al > bl;
}

static int has_prefix(const char *k, size_t kl, const char *p, size_t pl)
{
	return kl >= pl && (pl == 0 || memcmp(k, p, pl) == 0);
}

/* ---- Overlay entries ------------------------------------------------------------ */

kv_txn *kv_txn_new(int turn)
{
	kv_txn *t = calloc(1, sizeof(kv_txn));
	if (t) {
		t->sorted = 1;
		t->turn = turn;
	}
	return t;
}

size_t kv_txn_pending(const kv_txn *t)
{
	return t->nwrites ? t->bytes + t->n * sizeof(kv_ent) : 0;
}

static void val_release(kv_ent *e)
{
	if (e->engine_val)
		trove_free(e->val);
	else if (!e->pooled_val)
		free(e->val);
	e->val = NULL;
	e->vlen = 0;
	e->engine_val = 0;
	e->pooled_val = 0;
}

void kv_txn_next_command(kv_txn *t)
{
	if (t->turn && !t->nwrites && t->n)
		kv_txn_reset(t);
}

void kv_txn_reset(kv_txn *t)
{
	/* A turn's batch is often a few keys in an index grown by a long
	 * pipeline: empty only their slots. */
	for (size_t i = 0; i < t->n; i++) {
		val_release(t->ents[i]);
		t->slots[t->ents[i]->slot] = 0;
	}
	pool_reset(&t->pool);
	t->n = 0;
	t->sorted = 1;
	for (size_t i = 0; i < t->nseen; i++)
		free(t->seen[i].key);
	t->nseen = 0;
	t->err = 0;
	t->nwrites = 0;
	t->bytes = 0;
}

void kv_txn_free(kv_txn *t)
{
	if (!t)
		return;
	kv_txn_reset(t);
	pool_free(&t->pool);
	free(t->ents);
	free(t->slots);
	free(t->seen);
	free(t);
}

static size_t slot_of(const kv_txn *t, const char *key, size_t klen)
{
	return (size_t)XXH3_64bits(key, klen) & (t->nslots - 1);
}

/* Refills the hash index from ents (after growing it or sorting ents). */
static void index_fill(kv_txn *t)
{
	memset(t->slots, 0, t->nslots * sizeof *t->slots);
	for (size_t i = 0; i < t->n; i++) {
		size_t h = slot_of(t, t->ents[i]->key, t->ents[i]->klen);
		while (t->slots[h])
			h = (h + 1) & (t->nslots - 1);
		t->slots[h] = i + 1;
		t->ents[i]->slot = h;
	}
}

/* The entry of key, or NULL. */
static kv_ent *ent_find(const kv_txn *t, const char *key, size_t klen)
{
	if (!t->nslots)
		return NULL;
	for (size_t h = slot_of(t, key, klen); t->slots[h]; h = (h + 1) & (t->nslots - 1)) {
		kv_ent *e = t->ents[t->slots[h] - 1];
		if (e->klen == klen && !memcmp(e->key, key, klen))
			return e;
	}
	return NULL;
}

/* A new, empty entry for key (which has none yet); NULL on ENOMEM. */
static kv_ent *ent_insert(kv_txn *t, const char *key, size_t klen)
{
	if (srv_grow(&t->ents, &t->cap, t->n + 1, sizeof *t->ents, 16))
		return NULL;
	if ((t->n + 1) * 2 > t->nslots) {
		size_t ns = t->nslots ? t->nslots * 2 : 64;
		size_t *slots = malloc(ns * sizeof *slots);
		if (!slots)
			return NULL;
		free(t->slots);
		t->slots = slots;
		t->nslots = ns;
		index_fill(t);
	}
	kv_ent *e = pool_alloc(&t->pool, sizeof *e + klen);
	if (!e)
		return NULL;
	memset(e, 0, sizeof *e);
	e->key = (char *)(e + 1);
	memcpy(e->key, key, klen);
	e->klen = klen;
	if (t->n && keycmp(t->ents[t->n - 1]->key, t->ents[t->n - 1]->klen, key, klen) > 0)
		t->sorted = 0; /* keys that come in order keep the array sorted */
	size_t h = slot_of(t, key, klen);
	while (t->slots[h])
		h = (h + 1) & (t->nslots - 1);
	t->slots[h] = t->n + 1;
	e->slot = h;
	t->ents[t->n++] = e;
	return e;
}

static int ent_cmp(const void *a, const void *b)
{
	const kv_ent *x = *(kv_ent *const *)a, *y = *(kv_ent *const *)b;
	return keycmp(x->key, x->klen, y->key, y->klen);
}

/* Puts the entries in key order for a walk or the commit.  No entry is
 * added while a walk is open (walks only read; writes that follow a walk,
 * as in FLUSHDB, wait until it is closed). */
static void txn_sort(kv_txn *t)
{
	if (t->sorted)
		return;
	qsort(t->ents, t->n, sizeof *t->ents, ent_cmp);
	index_fill(t);
	t->sorted = 1;
}

/* The position of the first entry >= key in the sorted entries; *exact
 * says whether it is key itself. */
static size_t ent_lower_bound(const kv_txn *t, const char *key, size_t klen, int *exact)
{
	size_t lo = 0, hi = t->n;
	*exact = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = keycmp(key, klen, t->ents[mid]->key, t->ents[mid]->klen);
		if (r == 0) {
			*exact = 1;
			return mid;
		}
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The entry of key as the transaction sees it, read from the engine (and
 * so made a condition of the commit) if the transaction has not touched
 * the key yet. */
static int ent_load(resp_client *c, const char *key, size_t klen, kv_ent **out)
{
	kv_txn *t = c->txn;
	kv_ent *e = ent_find(t, key, klen);
	if (e) {
		if (e->loaded && t->nwrites)
			e->required = 1; /* read again after a write: see above */
		*out = e;
		return 0;
	}
	void *v = NULL;
	size_t vl = 0;
	trove_meta m = { 0, 0 };
	uint64_t since = trove_last_version(c->db);
	int rc = trove_get_ex(c->db, NULL, key, klen, &v, &vl, &m);
	if (rc && rc != TROVE_ENOTFOUND)
		return rc;
	e = ent_insert(t, key, klen);
	if (!e) {
		trove_free(v);
		return TROVE_ENOMEM;
	}
	e->loaded = 1;
	e->since = since;
	e->required = !t->turn || t->nwrites;
	if (rc == 0) {
		e->present = 1;
		e->base = m.version;
		e->expire_at = m.expire_at_ms;
		e->val = v;
		e->vlen = vl;
		e->engine_val = 1;
		t->bytes += vl; /* held until the commit: counted against its cap */
	}
	*out = e;
	return 0;
}

/* The entry of key for a write that does not depend on its state (a blind
 * write): no engine read, no condition. */
static int ent_touch(resp_client *c, const char *key, size_t klen, kv_ent **out)
{
	kv_ent *e = ent_find(c->txn, key, klen);
	if (!e)
		e = ent_insert(c->txn, key, klen);
	if (!e)
		return TROVE_ENOMEM;
	*out = e;
	return 0;
}

static int ent_live(const kv_ent *e, int64_t now)
{
	return e->present && (!e->expire_at || e->expire_at > now);
}

static uint64_t ent_version(const kv_ent *e, int64_t now)
{
	if (!ent_live(e, now))
		return 0;
	return e->dirty ? KV_VERSION_PENDING : e->base;
}

/* Notes a write of e: once written, a loaded entry's version is a
 * condition (the write may depend on what was read). */
static void ent_dirty(kv_txn *t, kv_ent *e)
{
	e->dirty = 1;
	if (e->loaded)
		e->required = 1;
	t->nwrites++;
	t->bytes += e->klen + e->vlen;
}

static int ent_set(kv_txn *t, kv_ent *e, const void *val, size_t vlen, int64_t expire_at)
{
	char *copy = t->turn ? pool_alloc(&t->pool, vlen ? vlen : 1) : malloc(vlen ? vlen : 1);
	if (!copy)
		return TROVE_ENOMEM;
	if (vlen)
		memcpy(copy, val, vlen);
	val_release(e);
	e->val = copy;
	e->pooled_val = t->turn;
	e->vlen = vlen;
	e->expire_at = expire_at;
	e->present = 1;
	ent_dirty(t, e);
	return 0;
}

static void ent_clear(kv_txn *t, kv_ent *e)
{
	val_release(e);
	e->expire_at = 0;
	e->present = 0;
	ent_dirty(t, e);
}

static int cond_holds(const kv_ent *e, const trove_cond *cond, int64_t now)
{
	int live = ent_live(e, now);
	switch (cond->kind) {
	case TROVE_IF_ANY:
		return 1;
	case TROVE_IF_ABSENT:
		return !live;
	case TROVE_IF_PRESENT:
		return live;
	case TROVE_IF_VALUE:
		return live && e->vlen == cond->value_len &&
		       (e->vlen == 0 || memcmp(e->val, cond->value, e->vlen) == 0);
	case TROVE_IF_VERSION:
	case TROVE_IF_UNCHANGED:
		return ent_version(e, now) == cond->version;
	}
	return 0;
}

/* The engine's argument checks, so that a write the commit would refuse
 * fails in the command that made it, not in the whole EXEC. */
static int check_write(size_t klen, const void *val, size_t vlen)
{
	if (klen == 0 || (!val && vlen))
		return TROVE_EINVAL;
	if (klen > TROVE_MAX_KEY || vlen > TROVE_MAX_VALUE)
		return TROVE_ETOOBIG;
	return 0;
}

/* A write refused (its condition failed, or an error) before the batch
 * wrote anything: in a turn's batch, forget what it loaded, so that the
 * batch holds entries only once it writes (see "A loop turn's batch" above). */
static int refused(kv_txn *t, int rc)
{
	if (t->turn && !t->nwrites)
		kv_txn_reset(t);
	return rc;
}

/* ---- Point reads and writes ------------------------------------------------------ */

/* 1 if reads that no write can follow (EXISTS, MGET) go straight to the
 * engine: outside EXEC, and in a turn's batch that has written nothing
 * yet (see "A loop turn's batch" above). */
static int reads_engine(const resp_client *c)
{
	return !c->txn || (c->txn->turn && !c->txn->nwrites);
}

/* Replaces the engine's copy of a value with a malloc'd one, as kv_free
 * releases values inside a batch. */
static int own_value(void **val, size_t vlen)
{
	if (!val || !*val)
		return 0;
	char *copy = malloc(vlen + 1);
	if (!copy) {
		trove_free(*val);
		*val = NULL;
		return TROVE_ENOMEM;
	}
	memcpy(copy, *val, vlen + 1);
	trove_free(*val);
	*val = copy;
	return 0;
}

int kv_get(resp_client *c, const char *key, size_t klen, void **val, size_t *vlen,
           trove_meta *m)
{
	if (!c->txn)
		return trove_get_ex(c->db, NULL, key, klen, val, vlen, m);
	/* Even before a turn's batch writes, the read goes through the
	 * overlay: a write of the same command then finds the key there
	 * instead of reading it again (see "A loop turn's batch" above). */
	kv_ent *e;
	int rc = ent_load(c, key, klen, &e);
	if (rc)
		return rc;
	int64_t now = srv_now_ms();
	if (!ent_live(e, now))
		return TROVE_ENOTFOUND;
	if (val) {
		char *copy = malloc(e->vlen + 1);
		if (!copy)
			return TROVE_ENOMEM;
		if (e->vlen)
			memcpy(copy, e->val, e->vlen);
		copy[e->vlen] = 0; /* as the engine's values are */
		*val = copy;
	}
	if (vlen)
		*vlen = e->vlen;
	if (m) {
		m->version = ent_version(e, now);
		m->expire_at_ms = e->expire_at;
	}
	return 0;
}

void kv_free(resp_client *c, void *val)
{
	if (c->txn)
		free(val);
	else
		trove_free(val);
}

int kv_exists(resp_client *c, const char *key, size_t klen)
{
	if (reads_engine(c))
		return trove_exists(c->db, key, klen);
	return kv_get(c, key, klen, NULL, NULL, NULL);
}

int kv_mget(resp_client *c, size_t n, const void *const *keys, const size_t *klens, void **vals,
            size_t *vlens, int *status)
{
	if (reads_engine(c)) {
		int rc = trove_mget(c->db, NULL, n, keys, klens, vals, vlens, status);
		for (size_t i = 0; i < n && c->txn; i++)
			if (status[i] == 0 && (status[i] = own_value(&vals[i], vlens[i])) != 0)
				rc = rc ? rc : status[i];
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		vals[i] = NULL;
		vlens[i] = 0;
		status[i] = kv_get(c, keys[i], klens[i], &vals[i], &vlens[i], NULL);
		if (status[i] && status[i] != TROVE_ENOTFOUND)
			return status[i];
	}
	return 0;
}

int kv_put(resp_client *c, const char *key, size_t klen, const void *val, size_t vlen,
           const trove_put_opts *o, uint64_t *version)
{
	if (!c->txn)
		return trove_put_ex(c->db, key, klen, val, vlen, o, version);
	trove_put_opts none;
	if (!o) {
		memset(&none, 0, sizeof none);
		o = &none;
	}
	int rc = check_write(klen, val, vlen);
	if (rc)
		return rc;
	if ((o->ttl_mode == TROVE_TTL_AT && o->expire_at_ms <= 0) ||
	    (o->ttl_mode == TROVE_TTL_IN && (o->ttl_ms <= 0 || o->ttl_ms > INT64_MAX / 2)))
		return TROVE_EINVAL;
	kv_ent *e;
	if (o->cond.kind != TROVE_IF_ANY || o->ttl_mode == TROVE_TTL_KEEP)
		rc = ent_load(c, key, klen, &e);
	else
		rc = ent_touch(c, key, klen, &e);
	if (rc)
		return rc;
	int64_t now = srv_now_ms(), exp = 0;
	if (!cond_holds(e, &o->cond, now))
		return refused(c->txn, TROVE_ECONDITION);
	if (o->ttl_mode == TROVE_TTL_AT)
		exp = o->expire_at_ms;
	else if (o->ttl_mode == TROVE_TTL_IN)
		exp = now + o->ttl_ms;
	else if (o->ttl_mode == TROVE_TTL_KEEP)
		exp = ent_live(e, now) ? e->expire_at : 0;
	rc = ent_set(c->txn, e, val, vlen, exp);
	if (!rc && version)
		*version = KV_VERSION_PENDING;
	return rc;
}

int kv_del(resp_client *c, const char *key, size_t klen, const trove_cond *cond, int *deleted)
{
	if (!c->txn)
		return trove_del_ex(c->db, key, klen, cond, deleted);
	int rc = check_write(klen, NULL, 0);
	if (rc)
		return rc;
	kv_ent *e;
	int needs_state = deleted || (cond && cond->kind != TROVE_IF_ANY);
	rc = needs_state ? ent_load(c, key, klen, &e) : ent_touch(c, key, klen, &e);
	if (rc)
		return rc;
	int64_t now = srv_now_ms();
	if (cond && !cond_holds(e, cond, now))
		return refused(c->txn, TROVE_ECONDITION);
	if (deleted)
		*deleted = ent_live(e, now);
	ent_clear(c->txn, e);
	return 0;
}

/* ---- Batches ---------------------------------------------------------------------- */

enum { OP_PUT, OP_DEL, OP_EXPIRE, OP_REQUIRE };

typedef struct kv_op {
	int type;
	char *key; /* key and value share one allocation, in the batch's pool */
	size_t klen;
	char *val;
	size_t vlen;
	int64_t expire_at;
	trove_cond cond; /* OP_REQUIRE; cond.value points at val */
} kv_op;

/* Outside EXEC a batch is a trove_batch; inside, a list of operations that
 * kv_write applies to the overlay. */
struct kv_batch {
	resp_client *c;
	trove_batch *tb;
	kv_op *ops;
	size_t n, cap;
	kv_pool pool;
};

kv_batch *kv_batch_new(resp_client *c)
{
	kv_batch *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->c = c;
	if (!c->txn && !(b->tb = trove_batch_new())) {
		free(b);
		return NULL;
	}
	return b;
}

void kv_batch_clear(kv_batch *b)
{
	if (b->tb)
		trove_batch_clear(b->tb);
	pool_reset(&b->pool);
	b->n = 0;
}

void kv_batch_free(kv_batch *b)
{
	if (!b)
		return;
	kv_batch_clear(b);
	pool_free(&b->pool);
	trove_batch_free(b->tb);
	free(b->ops);
	free(b);
}

static int op_add(kv_batch *b, int type, const char *key, size_t klen, const void *val,
                  size_t vlen, int64_t expire_at, const trove_cond *cond)
{
	int rc = check_write(klen, val, vlen);
	if (rc)
		return rc;
	if (expire_at < 0)
		return TROVE_EINVAL;
	if (srv_grow(&b->ops, &b->cap, b->n + 1, sizeof *b->ops, 8))
		return TROVE_ENOMEM;
	kv_op *op = &b->ops[b->n];
	memset(op, 0, sizeof *op);
	op->key = pool_alloc(&b->pool, klen + vlen + 1);
	if (!op->key)
		return TROVE_ENOMEM;
	memcpy(op->key, key, klen);
	op->klen = klen;
	op->val = op->key + klen;
	if (vlen)
		memcpy(op->val, val, vlen);
	op->vlen = vlen;
	op->type = type;
	op->expire_at = expire_at;
	if (cond) {
		op->cond = *cond;
		op->cond.value = op->val;
	}
	b->n++;
	return 0;
}

int kv_batch_put(kv_batch *b, const char *key, size_t klen, const void *val, size_t vlen,
                 int64_t expire_at)
{
	if (b->tb)
		return trove_batch_put_ttl(b->tb, key, klen, val, vlen, expire_at);
	return op_add(b, OP_PUT, key, klen, val, vlen, expire_at, NULL);
}

int kv_batch_del(kv_batch *b, const char *key, size_t klen)
{
	if (b->tb)
		return trove_batch_del(b->tb, key, klen);
	return op_add(b, OP_DEL, key, klen, NULL, 0, 0, NULL);
}

int kv_batch_expire_at(kv_batch *b, const char *key, size_t klen, int64_t expire_at)
{
	if (b->tb)
		return trove_batch_expire_at(b->tb, key, klen, expire_at);
	return op_add(b, OP_EXPIRE, key, klen, NULL, 0, expire_at, NULL);
}

int kv_batch_require(kv_batch *b, const char *key, size_t klen, const trove_cond *cond)
{
	if (b->tb)
		return trove_batch_require(b->tb, key, klen, cond);
	if (!cond || cond->kind < TROVE_IF_ABSENT || cond->kind > TROVE_IF_UNCHANGED)
		return TROVE_EINVAL;
	int isval = cond->kind == TROVE_IF_VALUE;
	return op_add(b, OP_REQUIRE, key, klen, isval ? cond->value : NULL,
	              isval ? cond->value_len : 0, 0, cond);
}

/* Applies a batch to the overlay as the engine would: every condition
 * first (all hold or nothing changes), then the writes in order. */
static int overlay_write(kv_batch *b, trove_write_result *res)
{
	resp_client *c = b->c;
	int64_t now = srv_now_ms();
	size_t ci = 0;
	int rc = 0;
	for (size_t i = 0; i < b->n; i++) {
		kv_op *op = &b->ops[i];
		if (op->type != OP_REQUIRE)
			continue;
		kv_ent *e;
		if ((rc = ent_load(c, op->key, op->klen, &e)) != 0)
			return refused(c->txn, rc);
		if (!cond_holds(e, &op->cond, now)) {
			res->failed = ci;
			return refused(c->txn, TROVE_ECONDITION);
		}
		ci++;
	}
	/* Load what the writes depend on before changing anything, so an
	 * engine error cannot leave half a batch in the overlay. */
	for (size_t i = 0; i < b->n; i++) {
		kv_op *op = &b->ops[i];
		kv_ent *e;
		if (op->type == OP_DEL || op->type == OP_EXPIRE)
			rc = ent_load(c, op->key, op->klen, &e);
		else if (op->type == OP_PUT)
			rc = ent_touch(c, op->key, op->klen, &e);
		if (rc)
			return refused(c->txn, rc);
	}
	for (size_t i = 0; i < b->n; i++) {
		kv_op *op = &b->ops[i];
		kv_ent *e = ent_find(c->txn, op->key, op->klen);
		if (op->type == OP_PUT) {
			if ((rc = ent_set(c->txn, e, op->val, op->vlen, op->expire_at)) != 0) {
				c->txn->err = rc; /* half applied: the EXEC fails as a whole */
				return rc;
			}
		} else if (op->type == OP_DEL) {
			res->removed += ent_live(e, now);
			ent_clear(c->txn, e);
		} else if (op->type == OP_EXPIRE && ent_live(e, now)) {
			e->expire_at = op->expire_at;
			ent_dirty(c->txn, e);
		}
	}
	res->version = KV_VERSION_PENDING;
	return 0;
}

int kv_write(kv_batch *b, trove_write_result *res)
{
	trove_write_result dummy;
	if (!res)
		res = &dummy;
	if (b->tb)
		return trove_write(b->c->db, b->tb, res);
	memset(res, 0, sizeof *res);
	return overlay_write(b, res);
}

/* ---- The commit ----------------------------------------------------------------- */

int kv_txn_commit(resp_client *c, kv_txn *t, trove_batch *b, trove_write_result *res)
{
	memset(res, 0, sizeof *res);
	int rc = t->err;
	int64_t now = srv_now_ms();
	/* In key order: the engine then inserts the batch into its skip list
	 * as one ascending run, each key's search starting near the last one
	 * over nodes still in the cache (pipelined turns of random keys spent
	 * 15-24% of troved's CPU in searches from the top). */
	txn_sort(t);
	for (size_t i = 0; i < t->n && !rc; i++) {
		kv_ent *e = t->ents[i];
		trove_cond cond = { .kind = TROVE_IF_UNCHANGED, .version = e->base,
			            .since = e->since };
		if (e->loaded && e->required)
			rc = trove_batch_require(b, e->key, e->klen, &cond);
	}
	for (size_t i = 0; i < t->nseen && !rc; i++) {
		trove_cond cond = { .kind = TROVE_IF_VERSION, .version = t->seen[i].version };
		rc = trove_batch_require(b, t->seen[i].key, t->seen[i].klen, &cond);
	}
	for (size_t i = 0; i < t->n && !rc; i++) {
		kv_ent *e = t->ents[i];
		if (!e->dirty)
			continue;
		if (ent_live(e, now))
			rc = trove_batch_put_ttl(b, e->key, e->klen, e->val, e->vlen, e->expire_at);
		else
			rc = trove_batch_del(b, e->key, e->klen);
	}
	if (rc)
		return rc;
	if (trove_batch_count(b) == 0 && trove_batch_conditions(b) == 0)
		return 0;
	return trove_write(c->db, b, res);
}

/* ---- Ordered walks ---------------------------------------------------------------- */

struct kv_iter {
	resp_client *c;
	kv_txn *t; /* NULL outside EXEC */
	trove_cursor *cur;
	int reverse, record, started;
	int cur_ok; /* the cursor is on a key not yet merged */
	char *prefix, *lower, *upper, *start; /* copies, one allocation */
	size_t prefix_len, lower_len, upper_len, start_len;
	size_t oi;  /* the next overlay entry to merge */
	int o_ok;   /* oi is valid */
	kv_ent *ent; /* the current key comes from the overlay, or NULL */
	int64_t now;
};

int kv_iter_open(resp_client *c, const kv_range *r, kv_iter **out)
{
	size_t total = r->prefix_len + r->lower_len + r->upper_len + r->start_len;
	kv_iter *it = calloc(1, sizeof *it + total + 1);
	if (!it)
		return TROVE_ENOMEM;
	char *p = (char *)(it + 1);
#define KEEP(f)                                                                                \
	do {                                                                                   \
		if (r->f) {                                                                    \
			it->f = p;                                                             \
			if (r->f##_len)                                                        \
				memcpy(p, r->f, r->f##_len);                                   \
			it->f##_len = r->f##_len;                                              \
			p += r->f##_len;                                                       \
		}                                                                              \
	} while (0)
	KEEP(prefix);
	KEEP(lower);
	KEEP(upper);
	KEEP(start);
#undef KEEP
	it->c = c;
	it->t = c->txn;
	if (it->t)
		txn_sort(it->t);
	it->reverse = r->reverse;
	it->record = r->record && c->txn;
	it->now = srv_now_ms();
	trove_cursor_opts o = { .prefix = it->prefix,
		                .prefix_len = it->prefix_len,
		                .lower = it->lower,
		                .lower_len = it->lower_len,
		                .upper = it->upper,
		                .upper_len = it->upper_len };
	int rc = trove_cursor_open(c->db, &o, &it->cur);
	if (rc) {
		free(it);
		return rc;
	}
	*out = it;
	return 0;
}

void kv_iter_close(kv_iter *it)
{
	if (!it)
		return;
	trove_cursor_close(it->cur);
	free(it);
}

/* 1 if key is inside the walk's range (bounds, prefix and start). */
static int in_range(const kv_iter *it, const char *k, size_t kl)
{
	if (it->prefix && !has_prefix(k, kl, it->prefix, it->prefix_len))
		return 0;
	if (it->lower && keycmp(k, kl, it->lower, it->lower_len) < 0)
		return 0;
	if (it->upper && keycmp(k, kl, it->upper, it->upper_len) >= 0)
		return 0;
	if (it->start) {
		int r = keycmp(k, kl, it->start, it->start_len);
		if (it->reverse ? r > 0 : r < 0)
			return 0;
	}
	return 1;
}

/* 1 if entry e lies beyond the walk's range in the walk's direction, so
 * that no later entry can be in it. */
static int past_end(const kv_iter *it, const kv_ent *e)
{
	const char *k = e->key;
	size_t kl = e->klen;
	if (it->reverse)
		return (it->lower && keycmp(k, kl, it->lower, it->lower_len) < 0) ||
		       (it->prefix && keycmp(k, kl, it->prefix, it->prefix_len) < 0);
	return (it->upper && keycmp(k, kl, it->upper, it->upper_len) >= 0) ||
	       (it->prefix && keycmp(k, kl, it->prefix, it->prefix_len) > 0 &&
	        !has_prefix(k, kl, it->prefix, it->prefix_len));
}

/* Moves the overlay position to the next entry in range (oi itself on the
 * first call), or clears o_ok. */
static void overlay_settle(kv_iter *it)
{
	kv_txn *t = it->t;
	while (it->o_ok) {
		kv_ent *e = t->ents[it->oi];
		if (in_range(it, e->key, e->klen))
			return;
		if (past_end(it, e) || (it->reverse ? it->oi == 0 : it->oi + 1 >= t->n)) {
			it->o_ok = 0;
			return;
		}
		it->oi += it->reverse ? (size_t)-1 : 1;
	}
}

static void overlay_step(kv_iter *it)
{
	if (it->reverse ? it->oi == 0 : it->oi + 1 >= it->t->n)
		it->o_ok = 0;
	else
		it->oi += it->reverse ? (size_t)-1 : 1;
	overlay_settle(it);
}

static int iter_start(kv_iter *it)
{
	int rc;
	if (it->reverse)
		rc = it->start ? trove_cursor_seek_for_prev(it->cur, it->start, it->start_len)
		               : trove_cursor_last(it->cur);
	else
		rc = it->start ? trove_cursor_seek(it->cur, it->start, it->start_len)
		               : trove_cursor_first(it->cur);
	if (rc && rc != TROVE_ENOTFOUND)
		return rc;
	it->cur_ok = rc == 0;
	it->started = 1;
	if (!it->t || !it->t->n)
		return 0;
	/* Begin the overlay at an entry no further than the walk's first
	 * key; overlay_settle skips what the other bounds exclude. */
	size_t pos = 0;
	int exact;
	if (it->reverse) {
		const char *from = it->start ? it->start : it->upper;
		size_t fl = it->start ? it->start_len : it->upper_len;
		if (!from) {
			pos = it->t->n; /* from the end */
		} else {
			pos = ent_lower_bound(it->t, from, fl, &exact);
			pos += (size_t)exact; /* an exact match is a candidate too */
		}
		it->o_ok = pos > 0;
		it->oi = pos - 1;
	} else {
		const char *from = it->start ? it->start : it->lower ? it->lower : it->prefix;
		size_t fl = it->start ? it->start_len : it->lower ? it->lower_len : it->prefix_len;
		if (from)
			pos = ent_lower_bound(it->t, from, fl, &exact);
		it->o_ok = pos < it->t->n;
		it->oi = pos;
	}
	overlay_settle(it);
	return 0;
}

/* Moves the engine cursor one key in the walk's direction. */
static int cursor_step(kv_iter *it)
{
	int rc = it->reverse ? trove_cursor_prev(it->cur) : trove_cursor_next(it->cur);
	if (rc && rc != TROVE_ENOTFOUND)
		return rc;
	it->cur_ok = rc == 0;
	return 0;
}

/* Remembers the current engine key's version as a commit condition. */
static int iter_record(kv_iter *it)
{
	trove_meta m;
	int rc = trove_cursor_meta(it->cur, &m);
	if (rc)
		return rc;
	kv_txn *t = it->t;
	if (srv_grow(&t->seen, &t->capseen, t->nseen + 1, sizeof *t->seen, 16))
		return TROVE_ENOMEM;
	size_t kl;
	const char *k = trove_cursor_key(it->cur, &kl);
	char *copy = malloc(kl);
	if (!copy)
		return TROVE_ENOMEM;
	memcpy(copy, k, kl);
	t->seen[t->nseen++] = (kv_seen){ copy, kl, m.version };
	return 0;
}

int kv_iter_next(kv_iter *it)
{
	int rc;
	if (!it->started) {
		if ((rc = iter_start(it)) != 0)
			return rc;
	} else {
		/* Step past the key we are on (both sources if both had it). */
		int from_cursor = !it->ent, both = 0;
		if (it->ent && it->cur_ok) {
			size_t kl;
			const char *k = trove_cursor_key(it->cur, &kl);
			both = keycmp(k, kl, it->ent->key, it->ent->klen) == 0;
		}
		if (it->ent)
			overlay_step(it);
		if ((from_cursor || both) && (rc = cursor_step(it)) != 0)
			return rc;
	}
	for (;;) {
		it->ent = NULL;
		if (!it->cur_ok && !it->o_ok)
			return TROVE_ENOTFOUND;
		int take_overlay = it->o_ok;
		if (it->cur_ok && it->o_ok) {
			size_t kl;
			const char *k = trove_cursor_key(it->cur, &kl);
			kv_ent *e = it->t->ents[it->oi];
			int r = keycmp(k, kl, e->key, e->klen);
			take_overlay = r == 0 || (it->reverse ? r < 0 : r > 0);
		}
		if (!take_overlay) {
			if (it->record && (rc = iter_record(it)) != 0)
				return rc;
			return 0;
		}
		kv_ent *e = it->t->ents[it->oi];
		if (ent_live(e, it->now)) {
			it->ent = e;
			return 0;
		}
		/* Deleted or expired in the transaction: skip it, and the
		 * engine's copy of it too. */
		if (it->cur_ok) {
			size_t kl;
			const char *k = trove_cursor_key(it->cur, &kl);
			if (keycmp(k, kl, e->key, e->klen) == 0 && (rc = cursor_step(it)) != 0)
				return rc;
		}
		overlay_step(it);
	}
}

const char *kv_iter_key(const kv_iter *it, size_t *klen)
{
	if (it->ent) {
		*klen = it->ent->klen;
		return it->ent->key;
	}
	return trove_cursor_key(it->cur, klen);
}

const char *kv_iter_value(const kv_iter *it, size_t *vlen)
{
	if (it->ent) {
		*vlen = it->ent->vlen;
		return it->ent->val ? it->ent->val : "";
	}
	return trove_cursor_value(it->cur, vlen);
}

int kv_iter_meta(const kv_iter *it, trove_meta *m)
{
	if (it->ent) {
		m->version = ent_version(it->ent, it->now);
		m->expire_at_ms = it->ent->expire_at;
		return 0;
	}
	return trove_cursor_meta(it->cur, m);
}

/* ---- Deleting a prefix ------------------------------------------------------------ */

/* Outside EXEC: pages of 1024 keys, one batch each.  Inside: the keys the
 * transaction sees, collected first (deleting changes the overlay a walk
 * would be reading). */
int kv_delete_prefix(resp_client *c, const char *prefix, size_t plen)
{
	kv_batch *b = kv_batch_new(c);
	if (!b)
		return TROVE_ENOMEM;
	int rc = 0;
	for (;;) {
		kv_range r = { .prefix = prefix, .prefix_len = plen };
		kv_iter *it;
		if ((rc = kv_iter_open(c, &r, &it)) != 0)
			break;
		size_t n = 0;
		kv_batch_clear(b);
		while (!rc && (c->txn || n < 1024) && (rc = kv_iter_next(it)) == 0) {
			size_t kl;
			const char *k = kv_iter_key(it, &kl);
			rc = kv_batch_del(b, k, kl);
			n++;
		}
		kv_iter_close(it);
		if (rc == TROVE_ENOTFOUND)
			rc = 0;
		if (!rc && n)
			rc = kv_write(b, NULL);
		if (rc || n == 0 || c->txn)
			break;
	}
	kv_batch_free(b);
	return rc;
}
