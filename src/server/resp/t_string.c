/*
 * t_string.c - the string commands: GET SET (NX XX GET EX PX EXAT PXAT
 * KEEPTTL, and IFEQ IFNE IFVER) SETNX SETEX PSETEX GETSET GETDEL GETEX
 * MGET MSET MSETNX APPEND STRLEN GETRANGE SETRANGE INCR DECR INCRBY DECRBY
 * INCRBYFLOAT, and the versioned and conditional ones Trove adds or takes
 * from Valkey and Redis 8: TGETV TSETV DELIFEQ DELEX.
 *
 * Each family has one generic worker and thin wrappers (set_generic,
 * rmw_generic, delif_generic), as Redis's t_string.c does.  Atomicity
 * comes from the engine, never from locks here: a SET whose condition the
 * engine can check maps onto one conditional put (NX = if absent, XX = if
 * present, IFEQ = if the value equals, IFVER = if the version equals); a
 * read-modify-write (INCR, APPEND, SETRANGE, SET ... GET, IFNE, GETDEL,
 * GETEX) reads the value with its version and writes on the condition
 * that the version is unchanged, retrying if another client got there
 * first; MSET and MSETNX are one batch.  Every read and write goes
 * through the storage view (kv.h), so the same code runs inside EXEC.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

static void hit(resp_client *c, int found)
{
	if (resp_turn_hit(c, found))
		return;
	srv_stats *st = srv_server_stats(c->srv);
	atomic_fetch_add_explicit(found ? &st->keyspace_hits : &st->keyspace_misses, 1,
	                          memory_order_relaxed);
}

/* Reads key's value and metadata; a missing key gives *val = NULL and
 * version 0 (the version a put-if-absent condition names).  0 or an
 * engine error. */
static int read_versioned(resp_client *c, const rkey *k, void **val, size_t *vlen, trove_meta *m)
{
	int rc = kv_get(c, k->p, k->n, val, vlen, m);
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
	int rc = kv_get(c, k.p, k.n, &v, &vl, NULL);
	rkey_free(&k);
	hit(c, rc == 0);
	if (rc == TROVE_ENOTFOUND) {
		add_null(c);
	} else if (rc) {
		add_engine_error(c, rc);
	} else {
		add_bulk(c, v, vl);
		kv_free(c, v);
	}
}

/* ---- SET and its relatives --------------------------------------------------- */

enum {
	SET_GET = 1 << 0,
	SET_KEEPTTL = 1 << 1,
	SET_EXPIRE = 1 << 2, /* expire_at is set */
};

/* The condition of a SET: at most one. */
typedef enum set_cond { COND_NONE, COND_NX, COND_XX, COND_IFEQ, COND_IFNE, COND_IFVER } set_cond;

typedef struct set_args {
	int flags;
	set_cond cond;
	const char *cmp; /* IFEQ / IFNE */
	size_t cmplen;
	uint64_t ver; /* IFVER */
	int64_t expire_at;
} set_args;

/* What a SET answers: OK / nil, 1 / 0 (SETNX), the old value (GET), or
 * the new version / nil (TSETV). */
typedef enum set_reply { REPLY_SET, REPLY_SETNX, REPLY_GETSET, REPLY_VERSION } set_reply;

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

/* Parses a version argument (>= 0).  Replies and returns -1 on an error. */
static int parse_version(resp_client *c, const char *arg, size_t len, uint64_t *ver)
{
	long long v;
	if (srv_str2ll(arg, len, &v) || v < 0) {
		add_error(c, "ERR version is not an integer or out of range");
		return -1;
	}
	*ver = (uint64_t)v;
	return 0;
}

/* An expiry option (EX PX EXAT PXAT) at argv[j] followed by its value. */
typedef struct expire_opt {
	const char *arg;
	size_t len;
	int seconds, absolute;
} expire_opt;

static int is_expire_opt(const char *a, size_t l)
{
	return arg_is(a, l, "ex") || arg_is(a, l, "px") || arg_is(a, l, "exat") ||
	       arg_is(a, l, "pxat");
}

static void take_expire_opt(expire_opt *e, const char *a, size_t l, const char *val, size_t vl)
{
	e->seconds = a[0] == 'e' || a[0] == 'E';
	e->absolute = l == 4;
	e->arg = val;
	e->len = vl;
}

/* Parses SET's options from argv[first..]:
 * [NX | XX | IFEQ v | IFNE v | IFVER n] [GET] [EX s | PX ms | EXAT ts |
 * PXAT ms-ts | KEEPTTL].  Replies and returns -1 on an error. */
static int parse_set_args(resp_client *c, const char *cmd, int argc, char **argv, size_t *lens,
                          int first, set_args *a)
{
	memset(a, 0, sizeof *a);
	expire_opt exp = { NULL, 0, 0, 0 };
	for (int j = first; j < argc; j++) {
		const char *s = argv[j];
		size_t l = lens[j];
		int has_next = j + 1 < argc;
		if (arg_is(s, l, "nx") && (a->cond == COND_NONE || a->cond == COND_NX)) {
			a->cond = COND_NX;
		} else if (arg_is(s, l, "xx") && (a->cond == COND_NONE || a->cond == COND_XX)) {
			a->cond = COND_XX;
		} else if ((arg_is(s, l, "ifeq") || arg_is(s, l, "ifne")) && a->cond == COND_NONE &&
		           has_next) {
			a->cond = s[2] == 'e' || s[2] == 'E' ? COND_IFEQ : COND_IFNE;
			a->cmp = argv[++j];
			a->cmplen = lens[j];
		} else if (arg_is(s, l, "ifver") && a->cond == COND_NONE && has_next) {
			a->cond = COND_IFVER;
			j++;
			if (parse_version(c, argv[j], lens[j], &a->ver))
				return -1;
		} else if (arg_is(s, l, "get")) {
			a->flags |= SET_GET;
		} else if (arg_is(s, l, "keepttl") && !exp.arg) {
			a->flags |= SET_KEEPTTL;
		} else if (!(a->flags & SET_KEEPTTL) && !exp.arg && has_next &&
		           is_expire_opt(s, l)) {
			take_expire_opt(&exp, s, l, argv[j + 1], lens[j + 1]);
			j++;
		} else {
			add_error(c, ERR_SYNTAX);
			return -1;
		}
	}
	if (exp.arg) {
		if (parse_expire(c, cmd, exp.arg, exp.len, exp.seconds, exp.absolute,
		                 &a->expire_at))
			return -1;
		a->flags |= SET_EXPIRE;
	}
	return 0;
}

/* 1 if SET's condition holds for the key's current state. */
static int set_cond_holds(const set_args *a, int exists, const char *old, size_t olen,
                          uint64_t version)
{
	int equal = exists && olen == a->cmplen && (olen == 0 || !memcmp(old, a->cmp, olen));
	switch (a->cond) {
	case COND_NONE:
		return 1;
	case COND_NX:
		return !exists;
	case COND_XX:
		return exists;
	case COND_IFEQ:
		return equal;
	case COND_IFNE:
		return !equal; /* a missing key is not equal: it is set, as in Redis 8 */
	case COND_IFVER:
		return version == a->ver;
	}
	return 0;
}

static void set_abort_reply(resp_client *c, set_reply r)
{
	if (r == REPLY_SETNX)
		add_int(c, 0);
	else
		add_null(c);
}

static void set_done_reply(resp_client *c, set_reply r, uint64_t version)
{
	if (r == REPLY_SETNX)
		add_int(c, 1);
	else if (r == REPLY_VERSION)
		add_version(c, version);
	else
		add_ok(c);
}

/* A SET whose condition the engine checks itself: one conditional put. */
static void set_direct(resp_client *c, const rkey *k, const char *val, size_t vlen,
                       const set_args *a, trove_put_opts *o, set_reply r)
{
	static const trove_cond_kind kinds[] = {
		[COND_NONE] = TROVE_IF_ANY,     [COND_NX] = TROVE_IF_ABSENT,
		[COND_XX] = TROVE_IF_PRESENT,   [COND_IFEQ] = TROVE_IF_VALUE,
		[COND_IFNE] = TROVE_IF_ANY,     [COND_IFVER] = TROVE_IF_VERSION,
	};
	o->cond.kind = kinds[a->cond];
	o->cond.value = a->cmp;
	o->cond.value_len = a->cmplen;
	o->cond.version = a->ver;
	uint64_t version = 0;
	int rc = kv_put(c, k->p, k->n, val, vlen, o, &version);
	if (rc == TROVE_ECONDITION)
		set_abort_reply(c, r);
	else if (rc)
		add_engine_error(c, rc);
	else
		set_done_reply(c, r, version);
}

/* A SET that must see the old value (GET, IFNE): read it with its
 * version, decide, and write only if the version is still the same. */
static void set_checked(resp_client *c, const rkey *k, const char *val, size_t vlen,
                        const set_args *a, trove_put_opts *o, set_reply r)
{
	for (int tries = 0;; tries++) {
		void *old;
		size_t olen;
		trove_meta m;
		int rc = read_versioned(c, k, &old, &olen, &m);
		if (rc) {
			add_engine_error(c, rc);
			return;
		}
		int exists = m.version != 0, done = 0;
		uint64_t version = 0;
		if (set_cond_holds(a, exists, old, olen, m.version)) {
			o->cond.kind = TROVE_IF_VERSION;
			o->cond.version = m.version;
			rc = kv_put(c, k->p, k->n, val, vlen, o, &version);
			done = rc == 0;
		}
		if (rc == TROVE_ECONDITION && tries < RESP_MAX_RETRIES) {
			kv_free(c, old);
			continue;
		}
		if (rc == TROVE_ECONDITION)
			add_error(c, ERR_CONTENTION);
		else if (rc)
			add_engine_error(c, rc);
		else if (!(a->flags & SET_GET))
			done ? set_done_reply(c, r, version) : set_abort_reply(c, r);
		else if (exists)
			add_bulk(c, old, olen); /* with GET: the old value, set or not */
		else
			add_null(c);
		kv_free(c, old);
		return;
	}
}

/* The generic SET: writes val under key if a's condition holds, with a's
 * expiry, and answers as r says (with GET: the old value). */
static void set_generic(resp_client *c, const char *key, size_t klen, const char *val,
                        size_t vlen, const set_args *a, set_reply r)
{
	rkey k;
	if (rkey_make(c, &k, key, klen))
		return;
	trove_put_opts o;
	memset(&o, 0, sizeof o);
	if (a->flags & SET_EXPIRE) {
		o.ttl_mode = TROVE_TTL_AT;
		o.expire_at_ms = a->expire_at;
	} else if (a->flags & SET_KEEPTTL) {
		o.ttl_mode = TROVE_TTL_KEEP;
	}
	if (a->flags & SET_GET || a->cond == COND_IFNE)
		set_checked(c, &k, val, vlen, a, &o, r);
	else
		set_direct(c, &k, val, vlen, a, &o, r);
	rkey_free(&k);
}

/* SET key value [NX | XX | IFEQ v | IFNE v | IFVER n] [GET]
 *     [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL] */
void cmd_set(resp_client *c, int argc, char **argv, size_t *lens)
{
	set_args a;
	if (parse_set_args(c, "set", argc, argv, lens, 3, &a) == 0)
		set_generic(c, argv[1], lens[1], argv[2], lens[2], &a,
		            a.flags & SET_GET ? REPLY_GETSET : REPLY_SET);
}

void cmd_setnx(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	set_args a = { .cond = COND_NX };
	set_generic(c, argv[1], lens[1], argv[2], lens[2], &a, REPLY_SETNX);
}

static void setex_generic(resp_client *c, char **argv, size_t *lens, const char *cmd,
                          int seconds)
{
	set_args a = { .flags = SET_EXPIRE };
	if (parse_expire(c, cmd, argv[2], lens[2], seconds, 0, &a.expire_at))
		return;
	set_generic(c, argv[1], lens[1], argv[3], lens[3], &a, REPLY_SET);
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
	set_args a = { .flags = SET_GET };
	set_generic(c, argv[1], lens[1], argv[2], lens[2], &a, REPLY_GETSET);
}

/* TSETV key value version [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]:
 * compare-and-swap on the version (0: the key must be absent); answers
 * the new version, or nil if the version did not match. */
void cmd_tsetv(resp_client *c, int argc, char **argv, size_t *lens)
{
	uint64_t ver;
	if (parse_version(c, argv[3], lens[3], &ver))
		return;
	set_args a;
	if (parse_set_args(c, "tsetv", argc, argv, lens, 4, &a))
		return;
	if (a.cond != COND_NONE || a.flags & SET_GET) {
		add_error(c, ERR_SYNTAX);
		return;
	}
	a.cond = COND_IFVER;
	a.ver = ver;
	set_generic(c, argv[1], lens[1], argv[2], lens[2], &a, REPLY_VERSION);
}

/* TGETV key: [value, version], or nil if the key does not exist. */
void cmd_tgetv(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	rkey k;
	if (rkey_make(c, &k, argv[1], lens[1]))
		return;
	void *v;
	size_t vl;
	trove_meta m;
	int rc = kv_get(c, k.p, k.n, &v, &vl, &m);
	rkey_free(&k);
	hit(c, rc == 0);
	if (rc == TROVE_ENOTFOUND) {
		add_null_array(c);
	} else if (rc) {
		add_engine_error(c, rc);
	} else {
		add_array(c, 2);
		add_bulk(c, v, vl);
		add_version(c, m.version);
		kv_free(c, v);
	}
}

/* ---- Reading and deleting, or changing the expiry, in one step ----------------- */

/* GETEX's expiry change. */
typedef enum getex_op { GETEX_NONE, GETEX_AT, GETEX_PERSIST } getex_op;

/* Reads key and, if it exists, changes its expiry on the condition that
 * nobody wrote it in between (or deletes it: del, or an expiry in the
 * past); answers the value read. */
static void getchange_generic(resp_client *c, const char *key, size_t klen, int del,
                              getex_op op, int64_t at)
{
	rkey k;
	if (rkey_make(c, &k, key, klen))
		return;
	kv_batch *b = kv_batch_new(c);
	for (int tries = 0; b; tries++) {
		void *old;
		size_t olen;
		trove_meta m;
		int rc = read_versioned(c, &k, &old, &olen, &m);
		if (rc || m.version == 0) {
			hit(c, 0);
			rc ? add_engine_error(c, rc) : add_null(c);
			break;
		}
		trove_cond cond = { .kind = TROVE_IF_VERSION, .version = m.version };
		kv_batch_clear(b);
		rc = kv_batch_require(b, k.p, k.n, &cond);
		if (!rc && (del || (op == GETEX_AT && at <= srv_now_ms())))
			rc = kv_batch_del(b, k.p, k.n);
		else if (!rc && op == GETEX_AT)
			rc = kv_batch_expire_at(b, k.p, k.n, at);
		else if (!rc && op == GETEX_PERSIST && m.expire_at_ms)
			rc = kv_batch_expire_at(b, k.p, k.n, 0);
		if (!rc)
			rc = kv_write(b, NULL);
		if (rc == TROVE_ECONDITION && tries < RESP_MAX_RETRIES) {
			kv_free(c, old);
			continue;
		}
		hit(c, 1);
		if (rc == TROVE_ECONDITION)
			add_error(c, ERR_CONTENTION);
		else if (rc)
			add_engine_error(c, rc);
		else
			add_bulk(c, old, olen);
		kv_free(c, old);
		break;
	}
	if (!b)
		add_error(c, "ERR out of memory");
	kv_batch_free(b);
	rkey_free(&k);
}

void cmd_getdel(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	getchange_generic(c, argv[1], lens[1], 1, GETEX_NONE, 0);
}

/* GETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST] */
void cmd_getex(resp_client *c, int argc, char **argv, size_t *lens)
{
	getex_op op = GETEX_NONE;
	expire_opt exp = { NULL, 0, 0, 0 };
	for (int j = 2; j < argc; j++) {
		if (arg_is(argv[j], lens[j], "persist") && op == GETEX_NONE) {
			op = GETEX_PERSIST;
		} else if (op == GETEX_NONE && j + 1 < argc && is_expire_opt(argv[j], lens[j])) {
			op = GETEX_AT;
			take_expire_opt(&exp, argv[j], lens[j], argv[j + 1], lens[j + 1]);
			j++;
		} else {
			add_error(c, ERR_SYNTAX);
			return;
		}
	}
	int64_t at = 0;
	if (op == GETEX_AT && parse_expire(c, "getex", exp.arg, exp.len, exp.seconds,
	                                   exp.absolute, &at))
		return;
	if (op == GETEX_NONE)
		cmd_get(c, 2, argv, lens);
	else
		getchange_generic(c, argv[1], lens[1], 0, op, at);
}

/* The condition under which DELEX ... IFNE deletes: the key exists, its
 * value differs, and its version is still the one read.  0 with *cond
 * set, TROVE_ECONDITION if there is nothing to delete, or an error. */
static int ifne_cond(resp_client *c, const rkey *k, const set_args *a, trove_cond *cond)
{
	void *old;
	size_t olen;
	trove_meta m;
	int rc = read_versioned(c, k, &old, &olen, &m);
	if (rc)
		return rc;
	if (!m.version || !set_cond_holds(a, 1, old, olen, m.version))
		rc = TROVE_ECONDITION;
	kv_free(c, old);
	*cond = (trove_cond){ .kind = TROVE_IF_VERSION, .version = m.version };
	return rc;
}

/* Deletes key if a's condition holds; answers 1 if it deleted the key, 0
 * if not (missing, or the condition did not hold). */
static void delif_generic(resp_client *c, const char *key, size_t klen, const set_args *a)
{
	rkey k;
	if (rkey_make(c, &k, key, klen))
		return;
	for (int tries = 0;; tries++) {
		trove_cond cond = { .kind = TROVE_IF_ANY };
		int rc = 0, deleted = 0, raced = 0;
		if (a->cond == COND_IFEQ)
			cond = (trove_cond){ .kind = TROVE_IF_VALUE, .value = a->cmp,
				             .value_len = a->cmplen };
		else if (a->cond == COND_IFVER)
			cond = (trove_cond){ .kind = TROVE_IF_VERSION, .version = a->ver };
		else if (a->cond == COND_IFNE)
			rc = ifne_cond(c, &k, a, &cond);
		if (!rc) {
			rc = kv_del(c, k.p, k.n, &cond, &deleted);
			raced = rc == TROVE_ECONDITION && a->cond == COND_IFNE;
		}
		if (raced && tries < RESP_MAX_RETRIES)
			continue; /* written since IFNE read it: look again */
		if (rc == TROVE_ECONDITION && !raced)
			add_int(c, 0);
		else if (rc == TROVE_ECONDITION)
			add_error(c, ERR_CONTENTION);
		else if (rc)
			add_engine_error(c, rc);
		else
			add_int(c, deleted);
		break;
	}
	rkey_free(&k);
}

/* DELIFEQ key value (Valkey 9): delete the key if its value is value. */
void cmd_delifeq(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	set_args a = { .cond = COND_IFEQ, .cmp = argv[2], .cmplen = lens[2] };
	delif_generic(c, argv[1], lens[1], &a);
}

/* DELEX key [IFEQ value | IFNE value | IFVER version] (Redis 8.4's DELEX,
 * with Trove's version condition). */
void cmd_delex(resp_client *c, int argc, char **argv, size_t *lens)
{
	set_args a = { .cond = COND_NONE };
	if (argc == 4 && (arg_is(argv[2], lens[2], "ifeq") || arg_is(argv[2], lens[2], "ifne"))) {
		a.cond = argv[2][2] == 'e' || argv[2][2] == 'E' ? COND_IFEQ : COND_IFNE;
		a.cmp = argv[3];
		a.cmplen = lens[3];
	} else if (argc == 4 && arg_is(argv[2], lens[2], "ifver")) {
		a.cond = COND_IFVER;
		if (parse_version(c, argv[3], lens[3], &a.ver))
			return;
	} else if (argc != 2) {
		add_error(c, ERR_SYNTAX);
		return;
	}
	delif_generic(c, argv[1], lens[1], &a);
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
	int rc = kv_mget(c, n, kp, kl, vals, vlens, st);
	if (rc) {
		add_engine_error(c, rc);
	} else {
		add_array(c, (long long)n);
		for (size_t i = 0; i < n; i++) {
			hit(c, st[i] == 0);
			if (st[i] == 0)
				add_bulk(c, vals[i], vlens[i]);
			else
				add_null(c);
		}
	}
	for (size_t i = 0; i < n; i++)
		if (vals[i])
			kv_free(c, vals[i]);
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
		add_errorf(c, "ERR wrong number of arguments for '%s' command",
		           nx ? "msetnx" : "mset");
		return;
	}
	kv_batch *b = kv_batch_new(c);
	if (!b) {
		add_error(c, "ERR out of memory");
		return;
	}
	int rc = 0;
	trove_cond absent = { .kind = TROVE_IF_ABSENT };
	for (int j = 1; j < argc && !rc; j += 2) {
		rkey k;
		if (rkey_make(c, &k, argv[j], lens[j])) {
			kv_batch_free(b);
			return;
		}
		if (nx)
			rc = kv_batch_require(b, k.p, k.n, &absent);
		if (!rc)
			rc = kv_batch_put(b, k.p, k.n, argv[j + 1], lens[j + 1], 0);
		rkey_free(&k);
	}
	if (!rc)
		rc = kv_write(b, NULL);
	kv_batch_free(b);
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

/* ---- Read-modify-write: APPEND SETRANGE and the counters ------------------------- */

/* What an rmw_fn decided. */
enum { RMW_ERROR = -1, RMW_WRITE = 0, RMW_KEEP = 1 };

/* Computes the new value from the old one (NULL if absent) into *out
 * (malloc'd) and the integer to answer in *result.  Returns RMW_WRITE,
 * RMW_KEEP (nothing to write: answer *result), or RMW_ERROR after
 * replying with the error. */
typedef int rmw_fn(resp_client *c, const char *old, size_t olen, int exists, void *arg,
                   char **out, size_t *outlen, long long *result);

/* Reads key, computes its new value with fn and writes it if nobody wrote
 * the key meanwhile (else starts again), keeping its expiry.  Answers
 * fn's integer result, or with bulk, the new value. */
static void rmw_generic(resp_client *c, const char *key, size_t klen, rmw_fn *fn, void *arg,
                        int bulk)
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
		char *nv = NULL;
		size_t nl = 0;
		long long result = 0;
		int what = fn(c, old, olen, m.version != 0, arg, &nv, &nl, &result);
		kv_free(c, old);
		if (what == RMW_ERROR)
			break;
		if (what == RMW_KEEP) {
			add_int(c, result);
			break;
		}
		o.cond.version = m.version;
		rc = kv_put(c, k.p, k.n, nv, nl, &o, NULL);
		if (rc == TROVE_ECONDITION && tries < RESP_MAX_RETRIES) {
			free(nv);
			continue;
		}
		if (rc == TROVE_ECONDITION)
			add_error(c, ERR_CONTENTION);
		else if (rc)
			add_engine_error(c, rc);
		else if (bulk)
			add_bulk(c, nv, nl);
		else
			add_int(c, result);
		free(nv);
		break;
	}
	rkey_free(&k);
}

static int oom(resp_client *c)
{
	add_error(c, "ERR out of memory");
	return RMW_ERROR;
}

static int incr_fn(resp_client *c, const char *old, size_t olen, int exists, void *arg,
                   char **out, size_t *outlen, long long *result)
{
	long long by = *(long long *)arg, cur = 0;
	if (exists && srv_str2ll(old, olen, &cur)) {
		add_error(c, ERR_NOT_INT);
		return RMW_ERROR;
	}
	if ((by < 0 && cur < 0 && by < LLONG_MIN - cur) ||
	    (by > 0 && cur > 0 && by > LLONG_MAX - cur)) {
		add_error(c, ERR_OVERFLOW);
		return RMW_ERROR;
	}
	*result = cur + by;
	if (!(*out = malloc(24)))
		return oom(c);
	*outlen = srv_ll2str(*out, *result);
	return RMW_WRITE;
}

static void incr_generic(resp_client *c, const char *key, size_t klen, long long by)
{
	rmw_generic(c, key, klen, incr_fn, &by, 0);
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

/* The longest long double "%.17Lf" writes (about 4950 digits), as Redis
 * bounds it. */
#define LD_MAX_CHARS 5120

/* Parses s[0, n) as a long double the way Redis does: no leading space,
 * every byte used, no NaN, and no overflow or underflow to 0 (infinity
 * itself is a number here; the increment's result is checked later). */
static int str2ld(const char *s, size_t n, long double *out)
{
	char buf[LD_MAX_CHARS];
	if (n == 0 || n >= sizeof buf || isspace((unsigned char)s[0]))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	char *end;
	errno = 0;
	long double v = strtold(buf, &end);
	if (end != buf + n || isnan(v) ||
	    (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)))
		return -1;
	*out = v;
	return 0;
}

/* Formats v as INCRBYFLOAT answers: 17 digits after the point, trailing
 * zeros (and a bare point) cut, "-0" as "0".  Returns the length. */
static size_t ld2str_human(char *buf, size_t cap, long double v)
{
	int n = snprintf(buf, cap, "%.17Lf", v);
	if (n <= 0 || (size_t)n >= cap)
		return 0;
	if (memchr(buf, '.', (size_t)n)) {
		while (buf[n - 1] == '0')
			n--;
		if (buf[n - 1] == '.')
			n--;
	}
	if (n == 2 && buf[0] == '-' && buf[1] == '0') {
		buf[0] = '0';
		n = 1;
	}
	return (size_t)n;
}

static int incrbyfloat_fn(resp_client *c, const char *old, size_t olen, int exists, void *arg,
                          char **out, size_t *outlen, long long *result)
{
	(void)result;
	long double cur = 0;
	if (exists && str2ld(old, olen, &cur)) {
		add_error(c, "ERR value is not a valid float");
		return RMW_ERROR;
	}
	cur += *(long double *)arg;
	if (isnan(cur) || isinf(cur)) {
		add_error(c, "ERR increment would produce NaN or Infinity");
		return RMW_ERROR;
	}
	char buf[LD_MAX_CHARS];
	size_t n = ld2str_human(buf, sizeof buf, cur);
	if (!(*out = malloc(n ? n : 1)))
		return oom(c);
	memcpy(*out, buf, n);
	*outlen = n;
	return RMW_WRITE;
}

void cmd_incrbyfloat(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	long double by;
	if (str2ld(argv[2], lens[2], &by)) {
		add_error(c, "ERR value is not a valid float");
		return;
	}
	rmw_generic(c, argv[1], lens[1], incrbyfloat_fn, &by, 1);
}

/* Fails with Redis's error if a string would grow past what one value may
 * hold (proto-max-bulk-len, and Trove's 64 MiB). */
static int check_length(resp_client *c, size_t total)
{
	if (total > SRV_CFG(srv_server_config(c->srv)->proto_max_bulk_len) || total > TROVE_MAX_VALUE) {
		add_error(c, ERR_TOO_BIG);
		return -1;
	}
	return 0;
}

typedef struct patch_arg {
	const char *p;
	size_t n;
	size_t offset; /* SETRANGE; APPEND writes at the end */
	int append;
} patch_arg;

/* APPEND and SETRANGE: writes a->p at an offset, zero-padding a gap. */
static int patch_fn(resp_client *c, const char *old, size_t olen, int exists, void *arg,
                    char **out, size_t *outlen, long long *result)
{
	patch_arg *a = arg;
	size_t off = a->append ? olen : a->offset;
	if (!a->append && a->n == 0) {
		*result = (long long)olen; /* nothing to write; a missing key stays missing */
		return RMW_KEEP;
	}
	(void)exists;
	if (check_length(c, off > SIZE_MAX - a->n ? SIZE_MAX : off + a->n))
		return RMW_ERROR;
	size_t total = off + a->n > olen ? off + a->n : olen;
	if (!(*out = malloc(total ? total : 1)))
		return oom(c);
	if (olen)
		memcpy(*out, old, olen);
	if (off > olen)
		memset(*out + olen, 0, off - olen);
	if (a->n)
		memcpy(*out + off, a->p, a->n);
	*outlen = total;
	*result = (long long)total;
	return RMW_WRITE;
}

void cmd_append(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	patch_arg a = { argv[2], lens[2], 0, 1 };
	rmw_generic(c, argv[1], lens[1], patch_fn, &a, 0);
}

/* SETRANGE key offset value */
void cmd_setrange(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	long long off;
	if (arg_ll(c, argv[2], lens[2], &off, NULL))
		return;
	if (off < 0) {
		add_error(c, "ERR offset is out of range");
		return;
	}
	patch_arg a = { argv[3], lens[3], (size_t)off, 0 };
	rmw_generic(c, argv[1], lens[1], patch_fn, &a, 0);
}

/* ---- Reading parts of a value ------------------------------------------------------ */

void cmd_strlen(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	rkey k;
	if (rkey_make(c, &k, argv[1], lens[1]))
		return;
	void *v;
	size_t vl;
	int rc = kv_get(c, k.p, k.n, &v, &vl, NULL);
	rkey_free(&k);
	if (rc == TROVE_ENOTFOUND) {
		add_int(c, 0);
	} else if (rc) {
		add_engine_error(c, rc);
	} else {
		add_int(c, (long long)vl);
		kv_free(c, v);
	}
}

/* GETRANGE key start end: inclusive offsets, negative ones from the end,
 * clamped as Redis clamps them. */
void cmd_getrange(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	long long start, end;
	if (arg_ll(c, argv[2], lens[2], &start, NULL) || arg_ll(c, argv[3], lens[3], &end, NULL))
		return;
	if (start < 0 && end < 0 && start > end) {
		add_bulk(c, "", 0);
		return;
	}
	rkey k;
	if (rkey_make(c, &k, argv[1], lens[1]))
		return;
	void *v = NULL;
	size_t vl = 0;
	int rc = kv_get(c, k.p, k.n, &v, &vl, NULL);
	rkey_free(&k);
	if (rc && rc != TROVE_ENOTFOUND) {
		add_engine_error(c, rc);
		return;
	}
	long long n = (long long)vl;
	if (start < 0)
		start += n;
	if (end < 0)
		end += n;
	if (start < 0)
		start = 0;
	if (end < 0)
		end = 0;
	if (end >= n)
		end = n - 1;
	if (rc || n == 0 || start > end)
		add_bulk(c, "", 0);
	else
		add_bulk(c, (char *)v + start, (size_t)(end - start + 1));
	if (!rc)
		kv_free(c, v);
}
