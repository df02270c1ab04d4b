/*
 * keys.c - where Redis keys live in Trove's one ordered keyspace.
 *
 * A Redis key k in database n (SELECT n) is stored under the Trove key
 * 'r' n k: the tag byte 'r' reserves a slice of the keyspace for the RESP
 * face (the S3 and DynamoDB faces take other tags), the database index is
 * one byte, and k follows unchanged, so the keys of one database are one
 * contiguous, ordered range.  The value is the Redis string's bytes as
 * they are.  Every command builds engine keys here and nowhere else.
 *
 * Counting the keys of one database (DBSIZE, INFO keyspace) walks its
 * range with a cursor: trove_count counts the whole keyspace, and the
 * engine has no per-prefix count yet, so these are O(keys) - exact, not
 * cached.
 */
#include <stdlib.h>
#include <string.h>

#include "kv.h"

int rkey_make(resp_client *c, rkey *out, const char *k, size_t klen)
{
	return rkey_make_db(c, out, c->dbnum, k, klen);
}

int rkey_make_db(resp_client *c, rkey *out, int dbnum, const char *k, size_t klen)
{
	if (klen > RESP_MAX_KEY) {
		add_errorf(c, "ERR key too long: Trove keys are at most %u bytes", RESP_MAX_KEY);
		return -1;
	}
	out->n = klen + RESP_KEY_PREFIX;
	out->p = out->n <= sizeof out->small ? out->small : malloc(out->n);
	if (!out->p) {
		add_error(c, "ERR out of memory");
		return -1;
	}
	out->p[0] = RESP_KEY_TAG;
	out->p[1] = (char)dbnum;
	if (klen)
		memcpy(out->p + RESP_KEY_PREFIX, k, klen);
	return 0;
}

void rkey_free(rkey *k)
{
	if (k->p && k->p != k->small)
		free(k->p);
	k->p = NULL;
}

int rkey_scan(resp_client *c, int dbnum, const char *prefix, size_t plen, int want_meta,
              rkey_visit_fn *fn, void *arg)
{
	size_t n = plen + RESP_KEY_PREFIX;
	char small[256];
	char *pre = n <= sizeof small ? small : malloc(n);
	if (!pre)
		return TROVE_ENOMEM;
	pre[0] = RESP_KEY_TAG;
	pre[1] = (char)dbnum;
	if (plen)
		memcpy(pre + RESP_KEY_PREFIX, prefix, plen);
	kv_range r = { .prefix = pre, .prefix_len = n };
	kv_iter *it;
	int rc = kv_iter_open(c, &r, &it); /* inside EXEC: the transaction's view */
	if (pre != small)
		free(pre);
	if (rc)
		return rc;
	while ((rc = kv_iter_next(it)) == 0) {
		size_t kl;
		const char *k = kv_iter_key(it, &kl);
		trove_meta m = { 0, 0 };
		if (want_meta && (rc = kv_iter_meta(it, &m)) != 0)
			break;
		if (fn(arg, k + RESP_KEY_PREFIX, kl - RESP_KEY_PREFIX, &m))
			break;
	}
	kv_iter_close(it);
	return rc == TROVE_ENOTFOUND ? 0 : rc;
}

int rkey_count_all(resp_client *c, uint64_t *keys, uint64_t *expires)
{
	memset(keys, 0, sizeof *keys * RESP_DBS);
	memset(expires, 0, sizeof *expires * RESP_DBS);
	char tag = RESP_KEY_TAG;
	trove_cursor_opts o = { .prefix = &tag, .prefix_len = 1 };
	trove_cursor *cur;
	int rc = trove_cursor_open(c->db, &o, &cur);
	if (rc)
		return rc;
	for (rc = trove_cursor_first(cur); rc == 0; rc = trove_cursor_next(cur)) {
		size_t kl;
		const unsigned char *k = trove_cursor_key(cur, &kl);
		if (kl < RESP_KEY_PREFIX || k[1] >= RESP_DBS)
			continue;
		trove_meta m;
		if ((rc = trove_cursor_meta(cur, &m)) != 0)
			break;
		keys[k[1]]++;
		expires[k[1]] += m.expire_at_ms != 0;
	}
	trove_cursor_close(cur);
	return rc == TROVE_ENOTFOUND ? 0 : rc;
}
