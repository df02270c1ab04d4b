/*
 * t_keys.c - commands on keys whatever their value: DEL UNLINK EXISTS TYPE,
 * the expiry family EXPIRE PEXPIRE EXPIREAT PEXPIREAT (NX XX GT LT), TTL
 * PTTL EXPIRETIME PEXPIRETIME PERSIST, and the keyspace commands DBSIZE
 * KEYS FLUSHDB FLUSHALL.
 *
 * Expiry is the engine's: a key's expiry time is part of its metadata, an
 * expired key is never returned by a read and is counted out at once, so
 * nothing here sweeps keys.  Changing an expiry under NX/XX/GT/LT reads
 * the key's version first and commits on the condition that it did not
 * change (expire_generic), so the check and the change are one atomic
 * step.  The keyspace commands walk the SELECTed database's key range
 * (keys.c); they are O(keys in the database).  Every read and write goes
 * through the storage view (kv.h), so these commands work inside EXEC.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

/* DEL and UNLINK: one batch, so the keys vanish together. */
void cmd_del(resp_client *c, int argc, char **argv, size_t *lens)
{
	kv_batch *b = kv_batch_new(c);
	if (!b) {
		add_error(c, "ERR out of memory");
		return;
	}
	int rc = 0;
	for (int j = 1; j < argc && !rc; j++) {
		rkey k;
		if (rkey_make(c, &k, argv[j], lens[j])) {
			kv_batch_free(b);
			return;
		}
		rc = kv_batch_del(b, k.p, k.n);
		rkey_free(&k);
	}
	trove_write_result res = { 0, 0, 0 };
	if (!rc)
		rc = kv_write(b, &res);
	kv_batch_free(b);
	if (rc)
		add_engine_error(c, rc);
	else
		add_int(c, res.removed);
}

void cmd_exists(resp_client *c, int argc, char **argv, size_t *lens)
{
	long long n = 0;
	for (int j = 1; j < argc; j++) {
		rkey k;
		if (rkey_make(c, &k, argv[j], lens[j]))
			return;
		int rc = kv_exists(c, k.p, k.n);
		rkey_free(&k);
		if (rc && rc != TROVE_ENOTFOUND) {
			add_engine_error(c, rc);
			return;
		}
		n += rc == 0;
	}
	add_int(c, n);
}

void cmd_type(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	rkey k;
	if (rkey_make(c, &k, argv[1], lens[1]))
		return;
	int rc = kv_exists(c, k.p, k.n);
	rkey_free(&k);
	if (rc && rc != TROVE_ENOTFOUND)
		add_engine_error(c, rc);
	else
		add_simple(c, rc == 0 ? "string" : "none");
}

/* ---- Expiry --------------------------------------------------------------------- */

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

/* Parses the NX/XX/GT/LT options from argv[3..].  Replies and returns -1
 * on an error. */
static int expire_flags(resp_client *c, int argc, char **argv, size_t *lens, int *flags)
{
	*flags = 0;
	for (int j = 3; j < argc; j++) {
		if (arg_is(argv[j], lens[j], "nx"))
			*flags |= EXP_NX;
		else if (arg_is(argv[j], lens[j], "xx"))
			*flags |= EXP_XX;
		else if (arg_is(argv[j], lens[j], "gt"))
			*flags |= EXP_GT;
		else if (arg_is(argv[j], lens[j], "lt"))
			*flags |= EXP_LT;
		else {
			add_errorf(c, "ERR Unsupported option %.128s", argv[j]);
			return -1;
		}
	}
	if ((*flags & EXP_NX) && (*flags & (EXP_XX | EXP_GT | EXP_LT))) {
		add_error(c, "ERR NX and XX, GT or LT options at the same time are not compatible");
		return -1;
	}
	if ((*flags & EXP_GT) && (*flags & EXP_LT)) {
		add_error(c, "ERR GT and LT options at the same time are not compatible");
		return -1;
	}
	return 0;
}

/* 1 if the options allow replacing expiry cur (0: none) with when. */
static int expire_allowed(int flags, int64_t cur, int64_t when)
{
	if ((flags & EXP_NX) && cur)
		return 0;
	if ((flags & EXP_XX) && !cur)
		return 0;
	if ((flags & EXP_GT) && (!cur || when <= cur)) /* no expiry = infinite */
		return 0;
	if ((flags & EXP_LT) && cur && when >= cur)
		return 0;
	return 1;
}

/* The generic EXPIRE: argv[2] is a time in seconds or ms (seconds),
 * relative to basetime (0 for the absolute forms).  A time not in the
 * future deletes the key, as in Redis. */
static void expire_generic(resp_client *c, int argc, char **argv, size_t *lens, int64_t basetime,
                           int seconds, const char *cmd)
{
	int flags;
	long long when;
	if (expire_flags(c, argc, argv, lens, &flags) || arg_ll(c, argv[2], lens[2], &when, NULL))
		return;
	if (seconds && (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000))
		goto invalid;
	if (seconds)
		when *= 1000;
	if (basetime > 0 && when > LLONG_MAX - basetime)
		goto invalid;
	when += basetime;
	rkey k;
	if (rkey_make(c, &k, argv[1], lens[1]))
		return;
	kv_batch *b = kv_batch_new(c);
	for (int tries = 0; b; tries++) {
		trove_meta m;
		int rc = kv_get(c, k.p, k.n, NULL, NULL, &m);
		if (rc == TROVE_ENOTFOUND || (rc == 0 && !expire_allowed(flags, m.expire_at_ms, when))) {
			add_int(c, 0);
			break;
		}
		trove_cond cond = { .kind = TROVE_IF_VERSION, .version = m.version };
		kv_batch_clear(b);
		if (!rc)
			rc = kv_batch_require(b, k.p, k.n, &cond);
		if (!rc)
			rc = when <= srv_now_ms() ? kv_batch_del(b, k.p, k.n)
			                         : kv_batch_expire_at(b, k.p, k.n, when);
		if (!rc)
			rc = kv_write(b, NULL);
		if (rc == TROVE_ECONDITION && tries < RESP_MAX_RETRIES)
			continue;
		if (rc == TROVE_ECONDITION)
			add_error(c, ERR_CONTENTION);
		else if (rc)
			add_engine_error(c, rc);
		else
			add_int(c, 1);
		break;
	}
	if (!b)
		add_error(c, "ERR out of memory");
	kv_batch_free(b);
	rkey_free(&k);
	return;
invalid:
	add_errorf(c, "ERR invalid expire time in '%s' command", cmd);
}

void cmd_expire(resp_client *c, int argc, char **argv, size_t *lens)
{
	expire_generic(c, argc, argv, lens, srv_now_ms(), 1, "expire");
}

void cmd_pexpire(resp_client *c, int argc, char **argv, size_t *lens)
{
	expire_generic(c, argc, argv, lens, srv_now_ms(), 0, "pexpire");
}

void cmd_expireat(resp_client *c, int argc, char **argv, size_t *lens)
{
	expire_generic(c, argc, argv, lens, 0, 1, "expireat");
}

void cmd_pexpireat(resp_client *c, int argc, char **argv, size_t *lens)
{
	expire_generic(c, argc, argv, lens, 0, 0, "pexpireat");
}

/* TTL and PTTL: -2 if the key is missing, -1 if it has no expiry. */
static void ttl_generic(resp_client *c, const char *key, size_t klen, int ms)
{
	rkey k;
	if (rkey_make(c, &k, key, klen))
		return;
	trove_meta m = { 0, 0 };
	int rc = kv_get(c, k.p, k.n, NULL, NULL, &m);
	rkey_free(&k);
	int64_t ttl = m.expire_at_ms - srv_now_ms();
	if (rc == TROVE_ENOTFOUND)
		add_int(c, -2);
	else if (rc)
		add_engine_error(c, rc);
	else if (!m.expire_at_ms)
		add_int(c, -1);
	else
		add_int(c, ttl < 0 ? 0 : ms ? ttl : (ttl + 500) / 1000);
}

void cmd_ttl(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	ttl_generic(c, argv[1], lens[1], 0);
}

void cmd_pttl(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	ttl_generic(c, argv[1], lens[1], 1);
}

static void expiretime_generic(resp_client *c, const char *key, size_t klen, int ms)
{
	rkey k;
	if (rkey_make(c, &k, key, klen))
		return;
	trove_meta m;
	int rc = kv_get(c, k.p, k.n, NULL, NULL, &m);
	rkey_free(&k);
	if (rc == TROVE_ENOTFOUND)
		add_int(c, -2);
	else if (rc)
		add_engine_error(c, rc);
	else if (!m.expire_at_ms)
		add_int(c, -1);
	else
		add_int(c, ms ? m.expire_at_ms : m.expire_at_ms / 1000);
}

void cmd_expiretime(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	expiretime_generic(c, argv[1], lens[1], 0);
}

void cmd_pexpiretime(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	expiretime_generic(c, argv[1], lens[1], 1);
}

/* PERSIST: drops the expiry on the condition that the key was not
 * written since we saw it had one. */
void cmd_persist(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	rkey k;
	if (rkey_make(c, &k, argv[1], lens[1]))
		return;
	kv_batch *b = kv_batch_new(c);
	for (int tries = 0; b; tries++) {
		trove_meta m;
		int rc = kv_get(c, k.p, k.n, NULL, NULL, &m);
		if (rc == TROVE_ENOTFOUND || (rc == 0 && !m.expire_at_ms)) {
			add_int(c, 0);
			break;
		}
		trove_cond cond = { .kind = TROVE_IF_VERSION, .version = m.version };
		kv_batch_clear(b);
		if (!rc)
			rc = kv_batch_require(b, k.p, k.n, &cond);
		if (!rc)
			rc = kv_batch_expire_at(b, k.p, k.n, 0);
		if (!rc)
			rc = kv_write(b, NULL);
		if (rc == TROVE_ECONDITION && tries < RESP_MAX_RETRIES)
			continue;
		if (rc == TROVE_ECONDITION)
			add_error(c, ERR_CONTENTION);
		else if (rc)
			add_engine_error(c, rc);
		else
			add_int(c, 1);
		break;
	}
	if (!b)
		add_error(c, "ERR out of memory");
	kv_batch_free(b);
	rkey_free(&k);
}

/* ---- The keyspace ------------------------------------------------------------- */

static int count_one(void *arg, const char *key, size_t klen, const trove_meta *m)
{
	(void)key, (void)klen, (void)m;
	(*(uint64_t *)arg)++;
	return 0;
}

void cmd_dbsize(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	uint64_t n = 0;
	int rc = rkey_scan(c, c->dbnum, NULL, 0, 0, count_one, &n);
	if (rc)
		add_engine_error(c, rc);
	else
		add_int(c, (long long)n);
}

typedef struct keys_acc {
	resp_client *c;
	int filter; /* the user may not see every key: skip those it may not touch */
	const char *pat;
	size_t plen;
	char **keys;
	size_t *lens;
	size_t n, cap;
	int oom;
} keys_acc;

static int keys_visit(void *arg, const char *key, size_t klen, const trove_meta *m)
{
	(void)m;
	keys_acc *a = arg;
	if (!srv_glob_match(a->pat, a->plen, key, klen, 0))
		return 0;
	if (a->filter && !resp_acl_key_ok(a->c, key, klen, 0))
		return 0;
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		char **nk = realloc(a->keys, nc * sizeof *nk);
		if (nk)
			a->keys = nk;
		size_t *nl = nk ? realloc(a->lens, nc * sizeof *nl) : NULL;
		if (!nl) {
			a->oom = 1;
			return 1;
		}
		a->lens = nl;
		a->cap = nc;
	}
	char *copy = malloc(klen ? klen : 1);
	if (!copy) {
		a->oom = 1;
		return 1;
	}
	memcpy(copy, key, klen);
	a->keys[a->n] = copy;
	a->lens[a->n++] = klen;
	return 0;
}

/* KEYS pattern: walks only the part of the database that can match (the
 * pattern's literal prefix narrows the range), in key order.  A user
 * without allkeys sees only the keys its ACL patterns cover (Redis shows
 * every name; Trove does not hand out names a user may not touch). */
void cmd_keys(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	srv_user *u = srv_conn_user(c->conn);
	keys_acc a = { .c = c, .filter = !u || !srv_user_all_keys(u), .pat = argv[1],
		       .plen = lens[1] };
	size_t lit = 0;
	while (lit < a.plen && !strchr("*?[\\", a.pat[lit]))
		lit++;
	int rc = rkey_scan(c, c->dbnum, a.pat, lit, 0, keys_visit, &a);
	if (rc)
		add_engine_error(c, rc);
	else if (a.oom)
		add_error(c, "ERR out of memory");
	else {
		add_array(c, (long long)a.n);
		for (size_t i = 0; i < a.n; i++)
			add_bulk(c, a.keys[i], a.lens[i]);
	}
	for (size_t i = 0; i < a.n; i++)
		free(a.keys[i]);
	free(a.keys);
	free(a.lens);
}

/* FLUSHDB and FLUSHALL take an optional ASYNC or SYNC (both mean the same
 * here: the reply comes when the keys are gone). */
static int flush_args(resp_client *c, int argc, char **argv, size_t *lens)
{
	if (argc > 2 ||
	    (argc == 2 && !arg_is(argv[1], lens[1], "async") && !arg_is(argv[1], lens[1], "sync"))) {
		add_error(c, ERR_SYNTAX);
		return -1;
	}
	return 0;
}

void cmd_flushdb(resp_client *c, int argc, char **argv, size_t *lens)
{
	if (flush_args(c, argc, argv, lens))
		return;
	char pre[RESP_KEY_PREFIX] = { RESP_KEY_TAG, (char)c->dbnum };
	int rc = kv_delete_prefix(c, pre, sizeof pre);
	if (rc)
		add_engine_error(c, rc);
	else
		add_ok(c);
}

void cmd_flushall(resp_client *c, int argc, char **argv, size_t *lens)
{
	if (flush_args(c, argc, argv, lens))
		return;
	char tag = RESP_KEY_TAG; /* the Redis face's keys only: other faces keep theirs */
	int rc = kv_delete_prefix(c, &tag, 1);
	if (rc)
		add_engine_error(c, rc);
	else
		add_ok(c);
}
