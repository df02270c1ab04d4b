/*
 * bdb_cursor.c - DBC, the Berkeley-DB-style cursor, over Trove.
 *
 * A cursor is a position (the stored key it is on) and a walk
 * (compat.h) over its database's key prefix.  Each move asks for the key
 * just after or before the position in the latest state, so writes made
 * between moves (the cursor's own, other handles', the transaction's) are
 * seen and never derail it.  A cursor opened in a transaction merges the
 * transaction's buffered writes into what the walk finds: a buffered put
 * is a key, a buffered delete hides one.  The file must never include an
 * engine header, and never moves the cursor when a call fails.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdb_int.h"

#define READ_MODS (DB_RMW | DB_READ_COMMITTED | DB_READ_UNCOMMITTED)

static bdb_cursor *C(DBC *d)
{
	return (bdb_cursor *)d;
}

/* A key and value found by a move: stored key, pointing into the walk's
 * cursor or the transaction's writes (valid until the next move). */
typedef struct hit {
	const void *key;
	size_t klen;
	const void *val;
	size_t vlen;
} hit;

/* ---- The merged view ----------------------------------------------------------- */

/* Whether key k (stored) belongs to the cursor's database. */
static int in_prefix(const bdb_db *db, const void *k, size_t klen)
{
	return klen >= db->plen && (!db->plen || !memcmp(k, db->prefix, db->plen));
}

/* The index in the transaction's writes of the entry chosen by pos
 * relative to k, within db's prefix: 1 and *idx, or 0 if there is none. */
static int writes_pos(const bdb_db *db, const bdb_kvset *w, compat_pos pos, const void *k,
                      size_t klen, size_t *idx)
{
	size_t i;
	int eq;
	switch (pos) {
	case COMPAT_FIRST:
		bdb_kvset_find(w, db->prefix, db->plen, &i);
		break;
	case COMPAT_LAST:
		/* The last entry of the prefix: just before the first key
		 * above every key of it.  Our prefixes end in a NUL byte,
		 * so the bound is the prefix with that byte made 1. */
		if (!db->plen) {
			i = w->n;
		} else {
			char *bound = malloc(db->plen);
			if (!bound)
				return 0;
			memcpy(bound, db->prefix, db->plen);
			assert(db->prefix[db->plen - 1] == '\0');
			bound[db->plen - 1] = 1;
			bdb_kvset_find(w, bound, db->plen, &i);
			free(bound);
		}
		if (i == 0)
			return 0;
		i--;
		break;
	case COMPAT_GE:
		bdb_kvset_find(w, k, klen, &i);
		break;
	case COMPAT_GT:
		eq = bdb_kvset_find(w, k, klen, &i);
		i += eq;
		break;
	case COMPAT_LE:
		eq = bdb_kvset_find(w, k, klen, &i);
		if (!eq) {
			if (i == 0)
				return 0;
			i--;
		}
		break;
	case COMPAT_LT:
		bdb_kvset_find(w, k, klen, &i);
		if (i == 0)
			return 0;
		i--;
		break;
	default:
		return 0;
	}
	if (i >= w->n || !in_prefix(db, w->v[i].key, w->v[i].klen))
		return 0;
	*idx = i;
	return 1;
}

/* Moves by pos relative to stored key k in the view of the cursor: the
 * database merged with its transaction's writes.  0 and *h, DB_NOTFOUND,
 * or an error. */
static int view_pos(bdb_cursor *c, compat_pos pos, const void *k, size_t klen, hit *h)
{
	bdb_db *db = c->db;
	bdb_txn *txn = c->txn;
	int fwd = pos == COMPAT_FIRST || pos == COMPAT_GE || pos == COMPAT_GT;
	for (;;) {
		const void *sk = NULL, *sv = NULL;
		size_t sklen = 0, svlen = 0, i = 0;
		int rc = compat_walk_pos(&c->walk, pos, k, klen, &sk, &sklen, &sv, &svlen);
		if (rc && rc != TROVE_ENOTFOUND)
			return bdb_code(rc);
		int have_s = rc == 0;
		int have_w = txn && writes_pos(db, &txn->writes, pos, k, klen, &i);
		if (!have_s && !have_w)
			return DB_NOTFOUND;
		const bdb_kv *w = have_w ? &txn->writes.v[i] : NULL;
		int use_w = have_w;
		if (have_s && have_w) {
			int cmp = compat_keycmp(w->key, w->klen, sk, sklen);
			use_w = fwd ? cmp <= 0 : cmp >= 0; /* on a tie the write wins */
		}
		if (!use_w) {
			*h = (hit){sk, sklen, sv, svlen};
			return 0;
		}
		if (w->val) {
			*h = (hit){w->key, w->klen, w->val, w->vlen};
			return 0;
		}
		/* A delete in the transaction hides this key: look past it. */
		k = w->key;
		klen = w->klen;
		pos = fwd ? COMPAT_GT : COMPAT_LT;
	}
}

/* ---- Delivering and positioning --------------------------------------------------------- */

/* Makes room for a position of klen bytes (the only step of a move that
 * can fail before anything changes). */
static int reserve_position(bdb_cursor *c, size_t klen)
{
	if (klen <= c->cur.cap)
		return 0;
	void *p = realloc(c->cur.p, klen);
	if (!p)
		return ENOMEM;
	c->cur.p = p;
	c->cur.cap = klen;
	return 0;
}

/* Keeps stored key k (which may be the position itself) as the cursor's
 * position; room must have been reserved. */
static void set_position(bdb_cursor *c, const void *k, size_t klen)
{
	assert(klen <= c->cur.cap);
	if (klen)
		memmove(c->cur.p, k, klen);
	c->curlen = klen;
	c->positioned = 1;
}

/* Returns the user key (if key is not NULL) and the value into the DBTs,
 * then moves the cursor to stored key sk.  The cursor moves only if all
 * of it succeeds. */
static int deliver(bdb_cursor *c, DBT *key, DBT *data, const void *sk, size_t sklen, const void *v,
                   size_t vlen)
{
	size_t plen = c->db->plen;
	const char *uk = (const char *)sk + plen;
	size_t uklen = sklen - plen;
	int rk = key ? bdb_dbt_fits(key, uklen) : 0;
	int rd = bdb_dbt_fits(data, vlen);
	if (rk || rd)
		return DB_BUFFER_SMALL;
	/* sk may be the position itself (DB_CURRENT): then no realloc. */
	int rc = reserve_position(c, sklen);
	if (!rc && key)
		rc = bdb_dbt_set(key, &c->kbuf, uk, uklen);
	if (!rc)
		rc = bdb_dbt_set(data, &c->vbuf, v, vlen);
	if (!rc)
		set_position(c, sk, sklen);
	return rc;
}

/* ---- DBC methods ---------------------------------------------------------------------------- */

static int cursor_live(bdb_cursor *c, const char *what)
{
	if (c->dead)
		return bdb_fail(c->db, EINVAL, "%s: the cursor's transaction has ended; close it",
		                what);
	return 0;
}

/* A move that returns key and data: FIRST, LAST, NEXT, PREV, SET_RANGE. */
static int get_move(bdb_cursor *c, DBT *key, DBT *data, compat_pos pos, const void *k, size_t klen)
{
	hit h;
	int rc = view_pos(c, pos, k, klen, &h);
	return rc ? rc : deliver(c, key, data, h.key, h.klen, h.val, h.vlen);
}

/* DB_SET_RANGE: the smallest key >= key. */
static int get_range(bdb_cursor *c, DBT *key, DBT *data)
{
	bdb_db *db = c->db;
	bdb_skey sk;
	compat_pos pos = COMPAT_GE;
	DBT k = *key;
	if (db->plen + k.size == 0) /* the empty key: from the start */
		return get_move(c, key, data, COMPAT_FIRST, NULL, 0);
	if (db->plen + k.size > TROVE_MAX_KEY) {
		/* Longer than any key: what follows is what follows its
		 * longest possible prefix. */
		k.size = (uint32_t)(TROVE_MAX_KEY - db->plen);
		pos = COMPAT_GT;
	}
	int rc = bdb_skey_make(db, &sk, &k);
	if (!rc)
		rc = get_move(c, key, data, pos, sk.p, sk.len);
	bdb_skey_free(&sk);
	return rc;
}

/* A lookup of stored key sk: SET (data returned), GET_BOTH (data
 * compared), CURRENT (key and data returned). */
static int get_exact(bdb_cursor *c, DBT *key, DBT *data, const void *sk, size_t sklen, int both,
                     int missing)
{
	bdb_val v;
	int rc = bdb_view_get(c->db, c->txn, sk, sklen, &v);
	if (rc == DB_NOTFOUND)
		rc = missing;
	if (!rc && both && (v.n != data->size || (v.n && memcmp(v.p, data->data, v.n))))
		rc = DB_NOTFOUND;
	if (!rc && both) {
		rc = reserve_position(c, sklen);
		if (!rc)
			set_position(c, sk, sklen);
	} else if (!rc)
		rc = deliver(c, key, data, sk, sklen, v.p, v.n);
	bdb_val_free(&v);
	return rc;
}

/* Checks the DBTs of a get by what the move does with them. */
static int check_get_dbts(bdb_db *db, uint32_t op, DBT *key, DBT *data)
{
	int key_in = op == DB_SET || op == DB_SET_RANGE || op == DB_GET_BOTH;
	int key_out = op != DB_SET && op != DB_GET_BOTH;
	int rc = 0;
	if (key_in)
		rc = bdb_dbt_in_ok(db, key);
	if (!rc && key_out)
		rc = bdb_dbt_out_ok(db, key);
	if (!rc)
		rc = op == DB_GET_BOTH ? bdb_dbt_in_ok(db, data) : bdb_dbt_out_ok(db, data);
	return rc;
}

static int c_get(DBC *dc, DBT *key, DBT *data, uint32_t flags)
{
	bdb_cursor *c = C(dc);
	bdb_db *db = c->db;
	uint32_t op = flags & ~(uint32_t)READ_MODS;
	int rc = cursor_live(c, "DBC->get");
	if (rc)
		return rc;
	switch (op) {
	case DB_FIRST:
	case DB_LAST:
	case DB_NEXT:
	case DB_PREV:
	case DB_NEXT_NODUP:
	case DB_PREV_NODUP:
	case DB_SET:
	case DB_SET_RANGE:
	case DB_GET_BOTH:
	case DB_CURRENT:
	case DB_NEXT_DUP:
	case DB_PREV_DUP:
		break;
	default:
		return bdb_fail(db, EINVAL, "DBC->get: unsupported flags 0x%x", (unsigned)flags);
	}
	rc = check_get_dbts(db, op, key, data);
	if (rc)
		return rc;
	int needs_pos = op == DB_CURRENT || op == DB_NEXT_DUP || op == DB_PREV_DUP;
	if (needs_pos && !c->positioned)
		return bdb_fail(db, EINVAL, "DBC->get: the cursor is not positioned");
	bdb_skey sk;
	switch (op) {
	case DB_FIRST:
		return get_move(c, key, data, COMPAT_FIRST, NULL, 0);
	case DB_LAST:
		return get_move(c, key, data, COMPAT_LAST, NULL, 0);
	case DB_NEXT:
	case DB_NEXT_NODUP:
		if (!c->positioned)
			return get_move(c, key, data, COMPAT_FIRST, NULL, 0);
		return get_move(c, key, data, COMPAT_GT, c->cur.p, c->curlen);
	case DB_PREV:
	case DB_PREV_NODUP:
		if (!c->positioned)
			return get_move(c, key, data, COMPAT_LAST, NULL, 0);
		return get_move(c, key, data, COMPAT_LT, c->cur.p, c->curlen);
	case DB_NEXT_DUP:
	case DB_PREV_DUP:
		return DB_NOTFOUND; /* no duplicates */
	case DB_CURRENT:
		return get_exact(c, key, data, c->cur.p, c->curlen, 0, DB_KEYEMPTY);
	case DB_SET_RANGE:
		return get_range(c, key, data);
	default: /* DB_SET, DB_GET_BOTH */
		if (bdb_skey_make(db, &sk, key))
			return DB_NOTFOUND;
		rc = get_exact(c, NULL, data, sk.p, sk.len, op == DB_GET_BOTH, DB_NOTFOUND);
		bdb_skey_free(&sk);
		return rc;
	}
}

static int c_put(DBC *dc, DBT *key, DBT *data, uint32_t flags)
{
	bdb_cursor *c = C(dc);
	bdb_db *db = c->db;
	int rc = cursor_live(c, "DBC->put");
	if (!rc && db->rdonly)
		rc = bdb_fail(db, EACCES, "DBC->put: the database was opened DB_RDONLY");
	if (rc)
		return rc;
	if (flags == DB_CURRENT) {
		if (!c->positioned)
			return bdb_fail(db, EINVAL, "DBC->put: the cursor is not positioned");
		rc = bdb_check_value(db, "DBC->put", data);
		if (rc)
			return rc;
		bdb_val v;
		rc = bdb_view_get(db, c->txn, c->cur.p, c->curlen, &v);
		bdb_val_free(&v);
		if (rc) /* the key was deleted under the cursor: as libdb says */
			return rc;
		return bdb_write_put(db, c->txn, c->cur.p, c->curlen, data->data, data->size, 0);
	}
	if (flags != DB_KEYFIRST && flags != DB_KEYLAST)
		return bdb_fail(db, EINVAL, "DBC->put: unsupported flags 0x%x", (unsigned)flags);
	bdb_skey sk;
	rc = bdb_check_write(db, "DBC->put", key, data, &sk);
	if (rc)
		return rc;
	rc = reserve_position(c, sk.len);
	if (!rc)
		rc = bdb_write_put(db, c->txn, sk.p, sk.len, data->data, data->size, 0);
	if (!rc)
		set_position(c, sk.p, sk.len);
	bdb_skey_free(&sk);
	return rc;
}

static int c_del(DBC *dc, uint32_t flags)
{
	bdb_cursor *c = C(dc);
	bdb_db *db = c->db;
	int rc = cursor_live(c, "DBC->del");
	if (!rc && flags)
		rc = bdb_fail(db, EINVAL, "DBC->del: unsupported flags 0x%x", (unsigned)flags);
	if (!rc && db->rdonly)
		rc = bdb_fail(db, EACCES, "DBC->del: the database was opened DB_RDONLY");
	if (!rc && !c->positioned)
		rc = bdb_fail(db, EINVAL, "DBC->del: the cursor is not positioned");
	if (rc)
		return rc;
	rc = bdb_write_del(db, c->txn, c->cur.p, c->curlen);
	return rc == DB_NOTFOUND ? DB_KEYEMPTY : rc;
}

static int c_count(DBC *dc, db_recno_t *countp, uint32_t flags)
{
	bdb_cursor *c = C(dc);
	bdb_db *db = c->db;
	int rc = cursor_live(c, "DBC->count");
	if (!rc && (flags || !countp))
		rc = bdb_fail(db, EINVAL, "DBC->count: bad arguments");
	if (!rc && !c->positioned)
		rc = bdb_fail(db, EINVAL, "DBC->count: the cursor is not positioned");
	if (rc)
		return rc;
	bdb_val v;
	rc = bdb_view_get(db, c->txn, c->cur.p, c->curlen, &v);
	bdb_val_free(&v);
	if (rc)
		return rc == DB_NOTFOUND ? DB_KEYEMPTY : rc;
	*countp = 1;
	return 0;
}

/* ---- Opening and closing ----------------------------------------------------------------- */

static void unlink_from_txn(bdb_cursor *c)
{
	if (!c->txn)
		return;
	for (bdb_cursor **p = &c->txn->cursors; *p; p = &(*p)->next_in_txn) {
		if (*p == c) {
			*p = c->next_in_txn;
			break;
		}
	}
	c->txn = NULL;
}

static void destroy(bdb_cursor *c)
{
	unlink_from_txn(c);
	compat_walk_reset(&c->walk);
	free(c->cur.p);
	free(c->kbuf.p);
	free(c->vbuf.p);
	free(c);
}

static int c_close(DBC *dc)
{
	bdb_cursor *c = C(dc);
	bdb_db *db = c->db;
	pthread_mutex_lock(&db->mu);
	for (bdb_cursor **p = &db->cursors; *p; p = &(*p)->next_in_db) {
		if (*p == c) {
			*p = c->next_in_db;
			break;
		}
	}
	pthread_mutex_unlock(&db->mu);
	destroy(c);
	return 0;
}

int bdb_cursor_open(bdb_db *db, bdb_txn *txn, DBC **out)
{
	bdb_cursor *c = calloc(1, sizeof *c);
	if (!c)
		return ENOMEM;
	c->db = db;
	c->txn = txn;
	compat_walk_init(&c->walk, db->st, db->prefix, db->plen);
	DBC *p = &c->pub;
	p->dbp = &db->pub;
	p->txn = txn ? &txn->pub : NULL;
	p->get = p->c_get = c_get;
	p->put = p->c_put = c_put;
	p->del = p->c_del = c_del;
	p->count = p->c_count = c_count;
	p->close = p->c_close = c_close;
	pthread_mutex_lock(&db->mu);
	c->next_in_db = db->cursors;
	db->cursors = c;
	pthread_mutex_unlock(&db->mu);
	if (txn) {
		c->next_in_txn = txn->cursors;
		txn->cursors = c;
	}
	*out = p;
	return 0;
}

void bdb_cursor_close_all(bdb_db *db)
{
	pthread_mutex_lock(&db->mu);
	bdb_cursor *c = db->cursors;
	db->cursors = NULL;
	pthread_mutex_unlock(&db->mu);
	while (c) {
		bdb_cursor *next = c->next_in_db;
		destroy(c);
		c = next;
	}
}

void bdb_cursor_detach_txn(bdb_txn *txn)
{
	for (bdb_cursor *c = txn->cursors; c; c = c->next_in_txn) {
		c->dead = 1;
		c->txn = NULL;
		c->pub.txn = NULL;
	}
	txn->cursors = NULL;
}
