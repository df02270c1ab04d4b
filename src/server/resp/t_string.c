/*
 * t_string.c - the string commands: GET SET (NX XX GET EX PX EXAT PXAT
 * KEEPTTL) SETNX SETEX PSETEX GETSET GETDEL MGET MSET MSETNX APPEND STRLEN
 * INCR DECR INCRBY DECRBY.
 *
 * Each family has one generic worker and thin wrappers (set_generic,
 * incr_generic), as Redis's t_string.c does.  Atomicity comes from the
 * engine, never from locks here: a plain SET maps onto one conditional
 * trove_put_ex (NX = put-if-absent, XX = put-if-present, the TTL options
 * onto its TTL modes); a read-modify-write (INCR, APPEND, SET ... GET,
 * GETDEL) reads the value with its version and writes on the condition
 * that the version is unchanged, retrying if another client got there
 * first; MSET and MSETNX are one batch.  A reply is written only after
 * the engine call returned, i.e. after the write is durable under the
 * configured sync policy.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

static void hit(resp_client *c, int found)
{
	srv_stats *st = srv_server_stats(c->srv);
	atomic_fetch_add_explicit(found ? &st->keyspace_hits : &st->keyspace_misses, 1,
	                          memory_order_relaxed);
}

/* Reads key's value and metadata; a missing key gives *val = NULL and
 * version 0 (the version a put-if-absent condition names).  0 or an
 * engine error. */
static int read_versioned(resp_client *c, const rkey *k, void **val, size_t *vlen, trove_meta *m)
{
	int rc = trove_get_ex(c->db, NULL, k->p, k->n, val, vlen, m);
	if (rc == TROVE_ENOTFOUND) {
		*val = NULL;
		*vlen = 0;
		m->version = 0;
		m->expire_at_ms = 0;
		return 0;
	}
	return rc;
}

void cmd_get(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	rkey k;
	if (rkey_make(c, &k, argv[1], lens[1]))
		return;
	void *v;
	size_t vl;
	int rc = trove_get(c->db, k.p, k.n, &v, &vl);
	rkey_free(&k);
	hit(c, rc == 0);
	if (rc == TROVE_ENOTFOUND) {
		add_null(c);
	} else if (rc) {
		add_engine_error(c, rc);
	} else {
		add_bulk(c, v, vl);
		trove_free(v);
	}
}

/* ---- SET and its relatives --------------------------------------------------- */

enum {
	SET_NX = 1 << 0,
	SET_XX = 1 << 1,
	SET_GET = 1 << 2,
	SET_KEEPTTL = 1 << 3,
	SET_EXPIRE = 1 << 4, /* expire_at is set */
};

/* What a successful or an aborted (NX/XX not met) SET answers. */
typedef enum set_reply { REPLY_SET, REPLY_SETNX, REPLY_GETSET } set_reply;

/* Parses an expiry argument into absolute Unix milliseconds: seconds or
 * milliseconds, relative to now or absolute.  Replies and returns -1 on
 * an error. */
static int parse_expire(resp_client *c, const char *cmd, const char *arg, size_t len, int seconds,
                        int absolute, int64_t *at)
{
	long long v;
	if (arg_ll(c, arg, len, &v, NULL))
		return -1;
	if (v <= 0 || (seconds && v > LLONG_MAX / 1000))
		goto invalid;
	if (seconds)
		v *= 1000;
	if (!absolute) {
		int64_t now = srv_now_ms();
		if (v > LLONG_MAX - now)
			goto invalid;
		v += now;
	}
	*at = v;
	return 0;
invalid:
	add_errorf(c, "ERR invalid expire time in '%s' command", cmd);
	return -1;
}

static void set_abort_reply(resp_client *c, set_reply r)
{
	if (r == REPLY_SETNX)
		add_int(c, 0);
	else
		add_null(c);
}

static void set_done_reply(resp_client *c, set_reply r)
{
	if (r == REPLY_SETNX)
		add_int(c, 1);
	else
		add_ok(c);
}

/* The generic SET: writes val under key with the conditions and expiry in
 * flags/expire_at, and answers as r says (with GET: the old value). */
static void set_generic(resp_client *c, const char *key, size_t klen, const char *val,
                        size_t vlen, int flags, int64_t expire_at, set_reply r)
{
	rkey k;
	if (rkey_make(c, &k, key, klen))
		return;
	trove_put_opts o;
	memset(&o, 0, sizeof o);
	if (flags & SET_EXPIRE) {
		o.ttl_mode = TROVE_TTL_AT;
		o.expire_at_ms = expire_at;
	} else if (flags & SET_KEEPTTL) {
		o.ttl_mode = TROVE_TTL_KEEP;
	}
	if (!(flags & SET_GET)) {
		o.cond.kind = flags & SET_NX ? TROVE_IF_ABSENT : flags & SET_XX ? TROVE_IF_PRESENT
		                                                                : TROVE_IF_ANY;
		int rc = trove_put_ex(c->db, k.p, k.n, val, vlen, &o, NULL);
		if (rc == TROVE_ECONDITION || rc == TROVE_EEXIST || rc == TROVE_ENOTFOUND)
			set_abort_reply(c, r);
		else if (rc)
			add_engine_error(c, rc);
		else
			set_done_reply(c, r);
		rkey_free(&k);
		return;
	}
	/* With GET the old value must be the one replaced: read it with its
	 * version and write only if the version is still the same. */
	for (int tries = 0;; tries++) {
		void *old;
		size_t olen;
		trove_meta m;
		int rc = read_versioned(c, &k, &old, &olen, &m);
		if (rc) {
			add_engine_error(c, rc);
			break;
		}
		int exists = m.version != 0;
		if ((flags & SET_NX && exists) || (flags & SET_XX && !exists)) {
			rc = 0; /* not set: still answer with the old value */
		} else {
			o.cond.kind = TROVE_IF_VERSION;
			o.cond.version = m.version;
			rc = trove_put_ex(c->db, k.p, k.n, val, vlen, &o, NULL);
		}
		if (rc == TROVE_ECONDITION && tries < RESP_MAX_RETRIES) {
			trove_free(old);
			continue;
		}
		if (rc == TROVE_ECONDITION)
			add_error(c, ERR_CONTENTION);
		else if (rc)
			add_engine_error(c, rc);
		else if (exists)
			add_bulk(c, old, olen);
		else
			add_null(c);
		trove_free(old);
		break;
	}
	rkey_free(&k);
}

/* SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL] */
void cmd_set(resp_client *c, int argc, char **argv, size_t *lens)
{
	int flags = 0, unit_s = 0, absolute = 0;
	const char *exp = NULL;
	size_t explen = 0;
	for (int j = 3; j < argc; j++) {
		const char *a = argv[j];
		size_t l = lens[j];
		int has_next = j + 1 < argc;
		if (arg_is(a, l, "nx") && !(flags & SET_XX)) {
			flags |= SET_NX;
		} else if (arg_is(a, l, "xx") && !(flags & SET_NX)) {
			flags |= SET_XX;
		} else if (arg_is(a, l, "get")) {
			flags |= SET_GET;
		} else if (arg_is(a, l, "keepttl") && !exp) {
			flags |= SET_KEEPTTL;
		} else if (!(flags & SET_KEEPTTL) && !exp && has_next &&
		           (arg_is(a, l, "ex") || arg_is(a, l, "px") || arg_is(a, l, "exat") ||
		            arg_is(a, l, "pxat"))) {
			unit_s = a[0] == 'e' || a[0] == 'E';
			absolute = l == 4;
			exp = argv[++j];
			explen = lens[j];
		} else {
			add_error(c, ERR_SYNTAX);
			return;
		}
	}
	int64_t at = 0;
	if (exp) {
		if (parse_expire(c, "set", exp, explen, unit_s, absolute, &at))
			return;
		flags |= SET_EXPIRE;
	}
	set_generic(c, argv[1], lens[1], argv[2], lens[2], flags, at, REPLY_SET);
}

void cmd_setnx(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	set_generic(c, argv[1], lens[1], argv[2], lens[2], SET_NX, 0, REPLY_SETNX);
}

static void setex_generic(resp_client *c, char **argv, size_t *lens, const char *cmd,
                          int seconds)
{
	int64_t at;
	if (parse_expire(c, cmd, argv[2], lens[2], seconds, 0, &at))
		return;
	set_generic(c, argv[1], lens[1], argv[3], lens[3], SET_EXPIRE, at, REPLY_SET);
}

void cmd_setex(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	setex_generic(c, argv, lens, "setex", 1);
}

void cmd_psetex(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	setex_generic(c, argv, lens, "psetex", 0);
}

void cmd_getset(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	set_generic(c, argv[1], lens[1], argv[2], lens[2], SET_GET, 0, REPLY_GETSET);
}

void cmd_getdel(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	rkey k;
	if (rkey_make(c, &k, argv[1], lens[1]))
		return;
	for (int tries = 0;; tries++) {
		void *old;
		size_t olen;
		trove_meta m;
		int rc = read_versioned(c, &k, &old, &olen, &m);
		if (rc) {
			add_engine_error(c, rc);
			break;
		}
		if (m.version == 0) {
			add_null(c);
			break;
		}
		trove_cond cond = { .kind = TROVE_IF_VERSION, .version = m.version };
		rc = trove_del_ex(c->db, k.p, k.n, &cond, NULL);
		if (rc == TROVE_ECONDITION && tries < RESP_MAX_RETRIES) {
			trove_free(old);
			continue;
		}
		if (rc == TROVE_ECONDITION)
			add_error(c, ERR_CONTENTION);
		else if (rc)
			add_engine_error(c, rc);
		else
			add_bulk(c, old, olen);
		trove_free(old);
		break;
	}
	rkey_free(&k);
}

/* ---- Several keys at once ------------------------------------------------------ */

void cmd_mget(resp_client *c, int argc, char **argv, size_t *lens)
{
	size_t n = (size_t)argc - 1;
	rkey *ks = calloc(n, sizeof *ks);
	const void **kp = calloc(n, sizeof *kp);
	size_t *kl = calloc(n, sizeof *kl);
	void **vals = calloc(n, sizeof *vals);
	size_t *vlens = calloc(n, sizeof *vlens);
	int *st = calloc(n, sizeof *st);
	size_t made = 0;
	if (!ks || !kp || !kl || !vals || !vlens || !st) {
		add_error(c, "ERR out of memory");
		goto out;
	}
	for (; made < n; made++) {
		if (rkey_make(c, &ks[made], argv[made + 1], lens[made + 1]))
			goto out;
		kp[made] = ks[made].p;
		kl[made] = ks[made].n;
	}
	int rc = trove_mget(c->db, NULL, n, kp, kl, vals, vlens, st);
	if (rc) {
		add_engine_error(c, rc);
		goto out;
	}
	add_array(c, (long long)n);
	for (size_t i = 0; i < n; i++) {
		hit(c, st[i] == 0);
		if (st[i] == 0)
			add_bulk(c, vals[i], vlens[i]);
		else
			add_null(c);
		trove_free(vals[i]);
	}
out:
	for (size_t i = 0; i < made; i++)
		rkey_free(&ks[i]);
	free(ks);
	free(kp);
	free(kl);
	free(vals);
	free(vlens);
	free(st);
}

/* MSET and MSETNX: one atomic batch; with nx, every key must be absent. */
static void mset_generic(resp_client *c, int argc, char **argv, size_t *lens, int nx)
{
	if (argc % 2 == 0) {
		add_errorf(c, "ERR wrong number of arguments for '%s' command", nx ? "msetnx" : "mset");
		return;
	}
	trove_batch *b = trove_batch_new();
	if (!b) {
		add_error(c, "ERR out of memory");
		return;
	}
	int rc = 0;
	trove_cond absent = { .kind = TROVE_IF_ABSENT };
	for (int j = 1; j < argc && !rc; j += 2) {
		rkey k;
		if (rkey_make(c, &k, argv[j], lens[j])) {
			trove_batch_free(b);
			return;
		}
		if (nx)
			rc = trove_batch_require(b, k.p, k.n, &absent);
		if (!rc)
			rc = trove_batch_put(b, k.p, k.n, argv[j + 1], lens[j + 1]);
		rkey_free(&k);
	}
	if (!rc)
		rc = trove_write(c->db, b, NULL);
	trove_batch_free(b);
	if (nx && rc == TROVE_ECONDITION)
		add_int(c, 0);
	else if (rc)
		add_engine_error(c, rc);
	else if (nx)
		add_int(c, 1);
	else
		add_ok(c);
}

void cmd_mset(resp_client *c, int argc, char **argv, size_t *lens)
{
	mset_generic(c, argc, argv, lens, 0);
}

void cmd_msetnx(resp_client *c, int argc, char **argv, size_t *lens)
{
	mset_generic(c, argc, argv, lens, 1);
}

/* ---- Read-modify-write: APPEND and the counters ---------------------------------- */

/* Computes the new value from the old one (NULL if absent) into *out
 * (malloc'd), or replies with an error and returns -1. */
typedef int rmw_fn(resp_client *c, const char *old, size_t olen, int exists, void *arg,
                   char **out, size_t *outlen, long long *result);

/* Reads key, computes its new value with fn and writes it if nobody wrote
 * the key meanwhile (else starts again), keeping its expiry.  Replies
 * with fn's integer result. */
static void rmw_generic(resp_client *c, const char *key, size_t klen, rmw_fn *fn, void *arg)
{
	rkey k;
	if (rkey_make(c, &k, key, klen))
		return;
	trove_put_opts o;
	memset(&o, 0, sizeof o);
	o.cond.kind = TROVE_IF_VERSION;
	o.ttl_mode = TROVE_TTL_KEEP;
	for (int tries = 0;; tries++) {
		void *old;
		size_t olen;
		trove_meta m;
		int rc = read_versioned(c, &k, &old, &olen, &m);
		if (rc) {
			add_engine_error(c, rc);
			break;
		}
		char *nv;
		size_t nl;
		long long result;
		rc = fn(c, old, olen, m.version != 0, arg, &nv, &nl, &result);
		trove_free(old);
		if (rc)
			break;
		o.cond.version = m.version;
		rc = trove_put_ex(c->db, k.p, k.n, nv, nl, &o, NULL);
		free(nv);
		if (rc == TROVE_ECONDITION && tries < RESP_MAX_RETRIES)
			continue;
		if (rc == TROVE_ECONDITION)
			add_error(c, ERR_CONTENTION);
		else if (rc)
			add_engine_error(c, rc);
		else
			add_int(c, result);
		break;
	}
	rkey_free(&k);
}

static int incr_fn(resp_client *c, const char *old, size_t olen, int exists, void *arg,
                   char **out, size_t *outlen, long long *result)
{
	long long by = *(long long *)arg, cur = 0;
	if (exists && srv_str2ll(old, olen, &cur)) {
		add_error(c, ERR_NOT_INT);
		return -1;
	}
	if ((by < 0 && cur < 0 && by < LLONG_MIN - cur) ||
	    (by > 0 && cur > 0 && by > LLONG_MAX - cur)) {
		add_error(c, ERR_OVERFLOW);
		return -1;
	}
	*result = cur + by;
	*out = malloc(24);
	if (!*out) {
		add_error(c, "ERR out of memory");
		return -1;
	}
	*outlen = srv_ll2str(*out, *result);
	return 0;
}

static void incr_generic(resp_client *c, const char *key, size_t klen, long long by)
{
	rmw_generic(c, key, klen, incr_fn, &by);
}

void cmd_incr(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	incr_generic(c, argv[1], lens[1], 1);
}

void cmd_decr(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	incr_generic(c, argv[1], lens[1], -1);
}

void cmd_incrby(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	long long by;
	if (arg_ll(c, argv[2], lens[2], &by, NULL) == 0)
		incr_generic(c, argv[1], lens[1], by);
}

void cmd_decrby(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	long long by;
	if (arg_ll(c, argv[2], lens[2], &by, NULL))
		return;
	if (by == LLONG_MIN) {
		add_error(c, "ERR decrement would overflow");
		return;
	}
	incr_generic(c, argv[1], lens[1], -by);
}

typedef struct append_arg {
	const char *p;
	size_t n;
} append_arg;

static int append_fn(resp_client *c, const char *old, size_t olen, int exists, void *arg,
                     char **out, size_t *outlen, long long *result)
{
	(void)exists;
	append_arg *a = arg;
	size_t total = olen + a->n;
	if (total > srv_server_config(c->srv)->proto_max_bulk_len || total > TROVE_MAX_VALUE) {
		add_error(c, ERR_TOO_BIG);
		return -1;
	}
	*out = malloc(total ? total : 1);
	if (!*out) {
		add_error(c, "ERR out of memory");
		return -1;
	}
	if (olen)
		memcpy(*out, old, olen);
	memcpy(*out + olen, a->p, a->n);
	*outlen = total;
	*result = (long long)total;
	return 0;
}

void cmd_append(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	append_arg a = { argv[2], lens[2] };
	rmw_generic(c, argv[1], lens[1], append_fn, &a);
}

void cmd_strlen(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	rkey k;
	if (rkey_make(c, &k, argv[1], lens[1]))
		return;
	void *v;
	size_t vl;
	int rc = trove_get(c->db, k.p, k.n, &v, &vl);
	rkey_free(&k);
	if (rc == TROVE_ENOTFOUND) {
		add_int(c, 0);
	} else if (rc) {
		add_engine_error(c, rc);
	} else {
		add_int(c, (long long)vl);
		trove_free(v);
	}
}
