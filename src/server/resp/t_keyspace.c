/*
 * t_keyspace.c - commands that walk, move or copy keys: SCAN RANDOMKEY
 * RENAME RENAMENX COPY MOVE, and SWAPDB's refusal.
 *
 * Trove keeps every database as one ordered range of keys ('r' db key,
 * keys.c), so these are walks and batches over that range:
 *
 *  - SCAN's cursor is the last key it examined, written in decimal digits
 *    (see cursor_encode): the next call resumes right after that key, so
 *    a full iteration returns every key that existed throughout exactly
 *    once, in key order, with no state kept on the server.
 *  - RANDOMKEY descends the keys' prefix tree at random (keys are ordered,
 *    not hashed into buckets).
 *  - RENAME, RENAMENX, COPY and MOVE read the source with its version and
 *    write the destination (and delete the source) in one batch, on the
 *    condition that the source is unchanged and, unless they may replace
 *    it, that the destination is absent; a race makes them retry.
 *  - SWAPDB is refused: swapping two key prefixes means rewriting both
 *    databases (see cmd_swapdb).
 *
 * A user whose ACL rules cover only some keys sees only those in SCAN and
 * RANDOMKEY (as in KEYS).
 *
 * Every read and write goes through the storage view (kv.h), so these
 * commands work inside EXEC too.  Nothing here holds a lock.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kv.h"

/* ---- SCAN ------------------------------------------------------------------------------- */

/* The cursor after key k: "1" followed by three decimal digits (000-255)
 * per byte of k.  Decimal so that clients which parse cursors as numbers
 * (redis-py) round-trip it exactly, the leading 1 so that leading zero
 * bytes survive, and keys of up to 6 bytes give cursors below 2^64.
 * Returns a malloc'd string of *n bytes, or NULL. */
static char *cursor_encode(const char *k, size_t kl, size_t *n)
{
	char *s = malloc(1 + 3 * kl + 1);
	if (!s)
		return NULL;
	s[0] = '1';
	for (size_t i = 0; i < kl; i++) {
		unsigned b = (unsigned char)k[i];
		s[1 + 3 * i] = (char)('0' + b / 100);
		s[2 + 3 * i] = (char)('0' + b / 10 % 10);
		s[3 + 3 * i] = (char)('0' + b % 10);
	}
	*n = 1 + 3 * kl;
	return s;
}

/* Decodes a cursor into the key it names (*kl = 0 and *k = NULL for "0",
 * the start).  Returns 0, or -1 if s is not a cursor. */
static int cursor_decode(const char *s, size_t n, char **k, size_t *kl)
{
	*k = NULL;
	*kl = 0;
	if (n == 1 && s[0] == '0')
		return 0;
	if (n == 0 || s[0] != '1' || (n - 1) % 3 || (n - 1) / 3 > RESP_MAX_KEY)
		return -1;
	size_t len = (n - 1) / 3;
	char *key = malloc(len ? len : 1);
	if (!key)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *d = s + 1 + 3 * i;
		unsigned v = 0;
		for (int j = 0; j < 3; j++) {
			if (d[j] < '0' || d[j] > '9')
				goto bad;
			v = v * 10 + (unsigned)(d[j] - '0');
		}
		if (v > 255)
			goto bad;
		key[i] = (char)v;
	}
	*k = key;
	*kl = len;
	return 0;
bad:
	free(key);
	return -1;
}

/* A growing list of byte strings (keys, or keys and values). */
typedef struct strlist {
	char **p;
	size_t *n;
	size_t count, cap, bytes;
} strlist;

static int strlist_add(strlist *l, const char *p, size_t n)
{
	if (l->count == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		char **np = realloc(l->p, nc * sizeof *np);
		if (np)
			l->p = np;
		size_t *nn = np ? realloc(l->n, nc * sizeof *nn) : NULL;
		if (!nn)
			return -1;
		l->n = nn;
		l->cap = nc;
	}
	char *copy = malloc(n ? n : 1);
	if (!copy)
		return -1;
	if (n)
		memcpy(copy, p, n);
	l->p[l->count] = copy;
	l->n[l->count++] = n;
	l->bytes += n;
	return 0;
}

static void strlist_free(strlist *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->p[i]);
	free(l->p);
	free(l->n);
}

/* 1 if the connection's user may not touch every key: walks then skip
 * the keys its ACL patterns do not cover, as KEYS does. */
static int acl_filters(resp_client *c)
{
	srv_user *u = srv_conn_user(c->conn);
	return !u || !srv_user_all_keys(u);
}

typedef struct scan_opts {
	const char *pat; /* MATCH, or NULL */
	size_t plen;
	long long count; /* COUNT: keys to examine, default 10 */
	int none;        /* TYPE names a type no Trove key has */
	int filter;      /* acl_filters() */
} scan_opts;

static int scan_parse(resp_client *c, int argc, char **argv, size_t *lens, scan_opts *o)
{
	o->pat = NULL;
	o->plen = 0;
	o->count = 10;
	o->none = 0;
	for (int j = 2; j < argc; j += 2) { /* every option takes one value */
		int has_next = j + 1 < argc;
		if (arg_is(argv[j], lens[j], "count") && has_next) {
			if (arg_ll(c, argv[j + 1], lens[j + 1], &o->count, NULL))
				return -1;
			if (o->count < 1) {
				add_error(c, ERR_SYNTAX);
				return -1;
			}
		} else if (arg_is(argv[j], lens[j], "match") && has_next) {
			o->pat = argv[j + 1];
			o->plen = lens[j + 1];
		} else if (arg_is(argv[j], lens[j], "type") && has_next) {
			o->none = !arg_is(argv[j + 1], lens[j + 1], "string");
		} else {
			add_error(c, ERR_SYNTAX);
			return -1;
		}
	}
	return 0;
}

/* Walks up to o->count keys after `after` (NULL: from the start) in the
 * SELECTed database, collecting those that match into keys.  *last gets
 * a copy of the last key examined if keys remain after it, else NULL. */
static int scan_walk(resp_client *c, const scan_opts *o, const char *after, size_t alen,
                     strlist *keys, char **last, size_t *lastlen)
{
	/* The pattern's literal prefix narrows the walk, as in KEYS. */
	size_t lit = 0;
	while (o->pat && lit < o->plen && !strchr("*?[\\", o->pat[lit]))
		lit++;
	size_t pl = RESP_KEY_PREFIX + lit, sl = RESP_KEY_PREFIX + alen;
	char *pre = malloc(pl + sl);
	if (!pre)
		return TROVE_ENOMEM;
	char *start = pre + pl;
	pre[0] = start[0] = RESP_KEY_TAG;
	pre[1] = start[1] = (char)c->dbnum;
	if (lit)
		memcpy(pre + RESP_KEY_PREFIX, o->pat, lit);
	if (alen)
		memcpy(start + RESP_KEY_PREFIX, after, alen);
	kv_range r = { .prefix = pre, .prefix_len = pl, .record = 1 };
	if (after) {
		r.start = start;
		r.start_len = sl;
	}
	kv_iter *it;
	int rc = kv_iter_open(c, &r, &it);
	free(pre);
	if (rc)
		return rc;
	long long examined = 0;
	int more = 0;
	*last = NULL;
	while ((rc = kv_iter_next(it)) == 0) {
		size_t kl;
		const char *k = kv_iter_key(it, &kl);
		k += RESP_KEY_PREFIX;
		kl -= RESP_KEY_PREFIX;
		if (after && kl == alen && !memcmp(k, after, alen))
			continue; /* the cursor's own key: examined last time */
		if (examined == o->count) {
			more = 1; /* keys remain after *last */
			break;
		}
		examined++;
		free(*last);
		*last = malloc(kl ? kl : 1);
		if (!*last) {
			rc = TROVE_ENOMEM;
			break;
		}
		memcpy(*last, k, kl);
		*lastlen = kl;
		if ((!o->pat || srv_glob_match(o->pat, o->plen, k, kl, 0)) &&
		    (!o->filter || resp_acl_key_ok(c, k, kl, 0)) && strlist_add(keys, k, kl)) {
			rc = TROVE_ENOMEM;
			break;
		}
	}
	kv_iter_close(it);
	if (!more) {
		free(*last);
		*last = NULL;
	}
	return rc == TROVE_ENOTFOUND ? 0 : rc;
}

/* SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] */
void cmd_scan(resp_client *c, int argc, char **argv, size_t *lens)
{
	char *after;
	size_t alen;
	if (cursor_decode(argv[1], lens[1], &after, &alen)) {
		add_error(c, "ERR invalid cursor");
		return;
	}
	scan_opts o;
	strlist keys = { 0 };
	char *last = NULL;
	size_t lastlen = 0;
	int rc = 0;
	if (scan_parse(c, argc, argv, lens, &o))
		goto out;
	o.filter = acl_filters(c);
	if (!o.none) /* every Trove key is a string: TYPE list finds nothing */
		rc = scan_walk(c, &o, after, alen, &keys, &last, &lastlen);
	if (rc) {
		add_engine_error(c, rc);
		goto out;
	}
	size_t cn = 1;
	char *cur = last ? cursor_encode(last, lastlen, &cn) : NULL;
	if (last && !cur) {
		add_error(c, "ERR out of memory");
		goto out;
	}
	add_array(c, 2);
	add_bulk(c, cur ? cur : "0", cn);
	add_array(c, (long long)keys.count);
	for (size_t i = 0; i < keys.count; i++)
		add_bulk(c, keys.p[i], keys.n[i]);
	free(cur);
out:
	free(after);
	free(last);
	strlist_free(&keys);
}

/* ---- RANDOMKEY ----------------------------------------------------------------------------- */

/* A thread's random numbers (xorshift64*): no lock, no shared state. */
static uint64_t rnd(void)
{
	static _Thread_local uint64_t s;
	if (!s)
		s = (uint64_t)srv_now_us() ^ (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15ull;
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return s * 0x2545f4914f6cdd1dull;
}

/* The first (or last) key starting with pre, at or after `from` (NULL:
 * anywhere), copied into *out.  0, TROVE_ENOTFOUND or an error. */
static int edge_key(resp_client *c, const char *pre, size_t pl, const char *from, size_t fl,
                    int last, char **out, size_t *outlen)
{
	kv_range r = { .prefix = pre, .prefix_len = pl, .start = from, .start_len = fl,
		       .reverse = last, .record = 1 };
	kv_iter *it;
	int rc = kv_iter_open(c, &r, &it);
	if (rc)
		return rc;
	if ((rc = kv_iter_next(it)) == 0) {
		size_t kl;
		const char *k = kv_iter_key(it, &kl);
		*out = malloc(kl);
		if (*out) {
			memcpy(*out, k, kl);
			*outlen = kl;
		} else {
			rc = TROVE_ENOMEM;
		}
	}
	kv_iter_close(it);
	return rc;
}

/* Picks a key of the database at random: between the first and the last
 * key under the current prefix, pick a byte at random after their common
 * part and go down to the first key at or after it; stop when one key is
 * left.  Every key can come out; keys after wide gaps come out more often
 * (the engine cannot yet say how many keys lie in a range). */
static int random_key(resp_client *c, char **out, size_t *outlen)
{
	char dbp[RESP_KEY_PREFIX] = { RESP_KEY_TAG, (char)c->dbnum };
	char *pre = NULL, *f = NULL, *l = NULL;
	size_t pl = 0, fl = 0, ll = 0;
	int rc = edge_key(c, dbp, sizeof dbp, NULL, 0, 0, &f, &fl);
	if (!rc)
		rc = edge_key(c, dbp, sizeof dbp, NULL, 0, 1, &l, &ll);
	while (!rc) {
		size_t d = 0; /* the common part of the first and the last */
		while (d < fl && d < ll && f[d] == l[d])
			d++;
		if (d == fl && d == ll)
			break; /* one key left: f */
		/* The children are the bytes f[d]..l[d]; if f ends at d, f itself
		 * counts as one more, and the bytes start at the next key's. */
		int self = d == fl, lo, hi = (unsigned char)l[d];
		if (self) {
			char *g;
			size_t gl;
			char *after = malloc(fl + 1);
			if (!after) {
				rc = TROVE_ENOMEM;
				break;
			}
			memcpy(after, f, fl);
			after[fl] = 0; /* f's immediate successor */
			rc = edge_key(c, f, fl, after, fl + 1, 0, &g, &gl);
			free(after);
			if (rc)
				break;
			lo = (unsigned char)g[d];
			free(g);
		} else {
			lo = (unsigned char)f[d];
		}
		int pick = lo - self + (int)(rnd() % (uint64_t)(hi - lo + 1 + self));
		if (pick < lo)
			break; /* f itself */
		free(pre);
		pre = malloc(d + 1);
		if (!pre) {
			rc = TROVE_ENOMEM;
			break;
		}
		memcpy(pre, f, d);
		pre[d] = (char)pick;
		free(f);
		f = NULL;
		rc = edge_key(c, pre, d, pre, d + 1, 0, &f, &fl); /* first key >= the pick */
		if (rc)
			break;
		/* Go down into the child that key is in. */
		pl = d + 1;
		memcpy(pre, f, pl);
		free(l);
		l = NULL;
		rc = edge_key(c, pre, pl, NULL, 0, 1, &l, &ll);
	}
	free(pre);
	free(l);
	if (rc) {
		free(f);
		return rc;
	}
	*out = f;
	*outlen = fl;
	return 0;
}

/* RANDOMKEY: for a user limited to some keys, a few draws until one
 * falls on a key it may touch, else nil. */
void cmd_randomkey(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	char *k = NULL;
	size_t kl;
	int rc, filter = acl_filters(c);
	for (int tries = 0;; tries++) {
		rc = random_key(c, &k, &kl);
		if (rc || !filter ||
		    resp_acl_key_ok(c, k + RESP_KEY_PREFIX, kl - RESP_KEY_PREFIX, 0))
			break;
		free(k);
		if (tries == 15) {
			rc = TROVE_ENOTFOUND;
			break;
		}
	}
	if (rc == TROVE_ENOTFOUND) {
		add_null(c);
	} else if (rc) {
		add_engine_error(c, rc);
	} else {
		add_bulk(c, k + RESP_KEY_PREFIX, kl - RESP_KEY_PREFIX);
		free(k);
	}
}

/* ---- RENAME RENAMENX COPY MOVE ------------------------------------------------------------ */

enum {
	XF_DELSRC = 1 << 0, /* RENAME, MOVE: the source goes */
	XF_NX = 1 << 1,     /* the destination must be absent */
};

typedef enum xfer_reply { XR_RENAME, XR_RENAMENX, XR_COPY, XR_MOVE } xfer_reply;

#define ERR_SAMEOBJ "ERR source and destination objects are the same"

/* One attempt: 0 done, 1 nothing to do (the reply is 0, or an error for
 * RENAME of a missing key), or an engine error (TROVE_ECONDITION: raced). */
static int xfer_once(resp_client *c, kv_batch *b, const rkey *src, const rkey *dst, int flags,
                     int *missing)
{
	void *v;
	size_t vl;
	trove_meta m;
	int rc = kv_get(c, src->p, src->n, &v, &vl, &m);
	if (rc == TROVE_ENOTFOUND) {
		*missing = 1;
		return 1;
	}
	if (rc)
		return rc;
	int same = src->n == dst->n && !memcmp(src->p, dst->p, src->n);
	if (same || (flags & XF_NX && (rc = kv_exists(c, dst->p, dst->n)) != TROVE_ENOTFOUND)) {
		kv_free(c, v);
		return same || rc == 0 ? 1 : rc;
	}
	trove_cond same_src = { .kind = TROVE_IF_VERSION, .version = m.version };
	trove_cond absent = { .kind = TROVE_IF_ABSENT };
	kv_batch_clear(b);
	rc = kv_batch_require(b, src->p, src->n, &same_src);
	if (!rc && flags & XF_NX)
		rc = kv_batch_require(b, dst->p, dst->n, &absent);
	if (!rc && flags & XF_DELSRC)
		rc = kv_batch_del(b, src->p, src->n);
	if (!rc)
		rc = kv_batch_put(b, dst->p, dst->n, v, vl, m.expire_at_ms); /* with its TTL */
	kv_free(c, v);
	return rc ? rc : kv_write(b, NULL);
}

/* Copies src's value and expiry to dst, deleting src if XF_DELSRC, as one
 * batch conditioned on src being unchanged (and dst absent with XF_NX). */
static void xfer_generic(resp_client *c, const rkey *src, const rkey *dst, int flags,
                         xfer_reply r)
{
	kv_batch *b = kv_batch_new(c);
	if (!b) {
		add_error(c, "ERR out of memory");
		return;
	}
	int rc, missing = 0;
	for (int tries = 0;; tries++) {
		rc = xfer_once(c, b, src, dst, flags, &missing);
		if (rc != TROVE_ECONDITION || tries >= RESP_MAX_RETRIES)
			break;
	}
	kv_batch_free(b);
	if (rc == TROVE_ECONDITION)
		add_error(c, ERR_CONTENTION);
	else if (rc < 0)
		add_engine_error(c, rc);
	else if (missing && (r == XR_RENAME || r == XR_RENAMENX))
		add_error(c, "ERR no such key");
	else if (r == XR_RENAME)
		add_ok(c); /* done, or renamed onto itself */
	else
		add_int(c, rc == 0);
}

static void rename_generic(resp_client *c, char **argv, size_t *lens, int nx)
{
	rkey src, dst;
	if (rkey_make(c, &src, argv[1], lens[1]))
		return;
	if (rkey_make(c, &dst, argv[2], lens[2]) == 0) {
		xfer_generic(c, &src, &dst, XF_DELSRC | (nx ? XF_NX : 0),
		             nx ? XR_RENAMENX : XR_RENAME);
		rkey_free(&dst);
	}
	rkey_free(&src);
}

void cmd_rename(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	rename_generic(c, argv, lens, 0);
}

void cmd_renamenx(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	rename_generic(c, argv, lens, 1);
}

/* Parses a database index; replies and returns -1 if it is not one. */
static int parse_db(resp_client *c, const char *arg, size_t len, const char *notint, int *db)
{
	long long n;
	if (arg_ll(c, arg, len, &n, notint))
		return -1;
	if (n < 0 || n >= RESP_DBS) {
		add_error(c, "ERR DB index is out of range");
		return -1;
	}
	*db = (int)n;
	return 0;
}

/* COPY source destination [DB destination-db] [REPLACE] */
void cmd_copy(resp_client *c, int argc, char **argv, size_t *lens)
{
	int db = c->dbnum, replace = 0;
	for (int j = 3; j < argc; j++) {
		if (arg_is(argv[j], lens[j], "replace")) {
			replace = 1;
		} else if (arg_is(argv[j], lens[j], "db") && j + 1 < argc) {
			if (parse_db(c, argv[j + 1], lens[j + 1], NULL, &db))
				return;
			j++;
		} else {
			add_error(c, ERR_SYNTAX);
			return;
		}
	}
	if (db == c->dbnum && lens[1] == lens[2] && !memcmp(argv[1], argv[2], lens[1])) {
		add_error(c, ERR_SAMEOBJ);
		return;
	}
	rkey src, dst;
	if (rkey_make(c, &src, argv[1], lens[1]))
		return;
	if (rkey_make_db(c, &dst, db, argv[2], lens[2]) == 0) {
		xfer_generic(c, &src, &dst, replace ? 0 : XF_NX, XR_COPY);
		rkey_free(&dst);
	}
	rkey_free(&src);
}

/* MOVE key db */
void cmd_move(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	int db;
	if (parse_db(c, argv[2], lens[2], NULL, &db))
		return;
	if (db == c->dbnum) {
		add_error(c, ERR_SAMEOBJ);
		return;
	}
	rkey src, dst;
	if (rkey_make(c, &src, argv[1], lens[1]))
		return;
	if (rkey_make_db(c, &dst, db, argv[1], lens[1]) == 0) {
		xfer_generic(c, &src, &dst, XF_DELSRC | XF_NX, XR_MOVE);
		rkey_free(&dst);
	}
	rkey_free(&src);
}

/* SWAPDB index1 index2: checked as Redis checks it, then refused.  A
 * database is a key prefix of the one ordered keyspace, and every write
 * names its prefix when it commits; swapping two databases atomically
 * would mean rewriting every key of both, or a prefix remap table that
 * every write would have to condition on (so that none lands in the
 * database it named before the swap).  Neither is worth what SWAPDB buys. */
void cmd_swapdb(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	int a, b;
	if (parse_db(c, argv[1], lens[1], "ERR invalid first DB index", &a) ||
	    parse_db(c, argv[2], lens[2], "ERR invalid second DB index", &b))
		return;
	add_error(c, "ERR SWAPDB is not supported: each Trove database is a key prefix in one "
	             "ordered keyspace, so swapping two would rewrite every key of both");
}
