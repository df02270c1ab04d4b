/*
 * t_range.c - TRANGE, Trove's ordered range read: what Redis cannot do
 * with its hash-ordered keyspace, and Trove gets for free from its sorted
 * one.
 *
 *   TRANGE start end [REV] [LIMIT count] [NOVALUES]
 *     -> [next, [key1, value1, key2, value2, ...]]
 *
 * Bounds are spelled as ZRANGE ... BYLEX spells them: "[key" includes
 * key, "(key" excludes it, "-" and "+" are the two ends of the SELECTed
 * database.  Forward, start is the low bound; with REV, start is the high
 * bound and keys come in descending order (as ZRANGE ... BYLEX REV).
 * `next` is nil when the range is exhausted, else a bound - "(" and the
 * last key returned - to pass as the next call's start, so that pages
 * never repeat or skip a key.  A page holds at most count keys (default
 * 1000) and stops early once it carries 64 MiB of keys and values.
 *
 * The page is read from one engine cursor, i.e. one snapshot: its keys
 * and values are mutually consistent.  A user whose ACL rules cover only
 * some keys gets only the keys it may read (TRANGE hands out values).  Inside EXEC it reads the
 * transaction's view (kv.h).  This file never writes.
 */
#include <stdlib.h>
#include <string.h>

#include "kv.h"

#define TRANGE_DEFAULT_LIMIT 1000
#define TRANGE_MAX_BYTES (64u << 20)

/* A bound: one end of the database, or a key, included or not. */
typedef enum bound_kind { B_MIN, B_MAX, B_INCL, B_EXCL } bound_kind;

typedef struct bound {
	bound_kind kind;
	const char *key;
	size_t len;
} bound;

static int parse_bound(const char *s, size_t n, bound *b)
{
	if (n == 1 && (s[0] == '-' || s[0] == '+')) {
		b->kind = s[0] == '-' ? B_MIN : B_MAX;
		return 0;
	}
	if (n == 0 || (s[0] != '[' && s[0] != '('))
		return -1;
	b->kind = s[0] == '[' ? B_INCL : B_EXCL;
	b->key = s + 1;
	b->len = n - 1;
	return b->len <= RESP_MAX_KEY ? 0 : -1;
}

/* The Trove key where a bound begins (lower) or ends (upper, exclusive):
 * the database prefix and the key, plus a 0 byte - the key's immediate
 * successor in the engine's order - where the bound says so.  NULL with
 * *len = 0 for an open end.  *empty is set if nothing can match. */
static char *bound_key(const resp_client *c, const bound *b, int upper, size_t *len, int *empty)
{
	*len = 0;
	if (b->kind == (upper ? B_MAX : B_MIN))
		return NULL;
	if (b->kind == (upper ? B_MIN : B_MAX)) {
		*empty = 1;
		return NULL;
	}
	int succ = upper ? b->kind == B_INCL : b->kind == B_EXCL;
	size_t n = RESP_KEY_PREFIX + b->len + (size_t)succ;
	char *k = malloc(n);
	if (!k)
		return NULL;
	k[0] = RESP_KEY_TAG;
	k[1] = (char)c->dbnum;
	if (b->len)
		memcpy(k + RESP_KEY_PREFIX, b->key, b->len);
	if (succ)
		k[n - 1] = 0;
	*len = n;
	return k;
}

typedef struct page {
	char **p; /* keys and values, interleaved unless novalues */
	size_t *n;
	size_t count, cap, bytes;
} page;

static int page_add(page *pg, const char *p, size_t n)
{
	if (pg->count == pg->cap) {
		size_t nc = pg->cap ? pg->cap * 2 : 32;
		char **np = realloc(pg->p, nc * sizeof *np);
		if (np)
			pg->p = np;
		size_t *nn = np ? realloc(pg->n, nc * sizeof *nn) : NULL;
		if (!nn)
			return TROVE_ENOMEM;
		pg->n = nn;
		pg->cap = nc;
	}
	char *copy = malloc(n ? n : 1);
	if (!copy)
		return TROVE_ENOMEM;
	if (n)
		memcpy(copy, p, n);
	pg->p[pg->count] = copy;
	pg->n[pg->count++] = n;
	pg->bytes += n;
	return 0;
}

static void page_free(page *pg)
{
	for (size_t i = 0; i < pg->count; i++)
		free(pg->p[i]);
	free(pg->p);
	free(pg->n);
}

/* Reads up to limit keys of r into pg; *more is set if keys remain.
 * Keys the connection's user may not read are skipped. */
static int range_read(resp_client *c, const kv_range *r, long long limit, int novalues, page *pg,
                      int *more)
{
	srv_user *u = srv_conn_user(c->conn);
	int filter = !u || !srv_user_all_keys(u);
	kv_iter *it;
	int rc = kv_iter_open(c, r, &it);
	if (rc)
		return rc;
	long long got = 0;
	*more = 0;
	while ((rc = kv_iter_next(it)) == 0) {
		if (got == limit || pg->bytes >= TRANGE_MAX_BYTES) {
			*more = 1;
			break;
		}
		size_t kl, vl = 0;
		const char *k = kv_iter_key(it, &kl);
		if (filter && !resp_acl_key_ok(c, k + RESP_KEY_PREFIX, kl - RESP_KEY_PREFIX,
		                               SRV_ACL_READ))
			continue;
		const char *v = novalues ? NULL : kv_iter_value(it, &vl);
		rc = page_add(pg, k + RESP_KEY_PREFIX, kl - RESP_KEY_PREFIX);
		if (!rc && !novalues)
			rc = page_add(pg, v, vl);
		if (rc)
			break;
		got++;
	}
	kv_iter_close(it);
	return rc == TROVE_ENOTFOUND ? 0 : rc;
}

/* TRANGE start end [REV] [LIMIT count] [NOVALUES] */
void cmd_trange(resp_client *c, int argc, char **argv, size_t *lens)
{
	bound start, end;
	if (parse_bound(argv[1], lens[1], &start) || parse_bound(argv[2], lens[2], &end)) {
		add_error(c, "ERR min or max not valid string range item");
		return;
	}
	int rev = 0, novalues = 0;
	long long limit = TRANGE_DEFAULT_LIMIT;
	for (int j = 3; j < argc; j++) {
		if (arg_is(argv[j], lens[j], "rev")) {
			rev = 1;
		} else if (arg_is(argv[j], lens[j], "novalues")) {
			novalues = 1;
		} else if (arg_is(argv[j], lens[j], "limit") && j + 1 < argc) {
			if (arg_ll(c, argv[j + 1], lens[j + 1], &limit, NULL))
				return;
			if (limit < 1) {
				add_error(c, "ERR LIMIT must be at least 1");
				return;
			}
			j++;
		} else {
			add_error(c, ERR_SYNTAX);
			return;
		}
	}
	const bound *lo = rev ? &end : &start, *hi = rev ? &start : &end;
	int empty = 0;
	kv_range r = { .reverse = rev, .record = 1 };
	char pre[RESP_KEY_PREFIX] = { RESP_KEY_TAG, (char)c->dbnum };
	char *lk = bound_key(c, lo, 0, &r.lower_len, &empty);
	char *uk = bound_key(c, hi, 1, &r.upper_len, &empty);
	page pg = { 0 };
	int more = 0, rc = 0;
	if ((lo->kind == B_INCL || lo->kind == B_EXCL) && !lk)
		rc = TROVE_ENOMEM;
	if ((hi->kind == B_INCL || hi->kind == B_EXCL) && !uk)
		rc = TROVE_ENOMEM;
	r.prefix = pre;
	r.prefix_len = sizeof pre;
	r.lower = lk;
	r.upper = uk;
	if (!rc && !empty)
		rc = range_read(c, &r, limit, novalues, &pg, &more);
	free(lk);
	free(uk);
	if (rc) {
		add_engine_error(c, rc);
		page_free(&pg);
		return;
	}
	char *next = NULL; /* "(" and the last key */
	size_t nl = 0;
	if (more) {
		size_t last = novalues ? pg.count - 1 : pg.count - 2;
		nl = pg.n[last] + 1;
		if (!(next = malloc(nl))) {
			add_error(c, "ERR out of memory");
			page_free(&pg);
			return;
		}
		next[0] = '(';
		memcpy(next + 1, pg.p[last], nl - 1);
	}
	add_array(c, 2);
	if (next)
		add_bulk(c, next, nl);
	else
		add_null(c);
	free(next);
	add_array(c, (long long)pg.count);
	for (size_t i = 0; i < pg.count; i++)
		add_bulk(c, pg.p[i], pg.n[i]);
	page_free(&pg);
}
