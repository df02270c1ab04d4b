/*
 * bdb_libdb.c - Berkeley DB 5.3 (libdb) behind bdb_peer.h.
 *
 * The only file of the tests that includes the real <db.h>.  It copies the
 * fields of peer_dbt in and out of real DBTs and keeps one DB, one cursor
 * and one transaction per handle.  Berkeley DB's own messages are silenced
 * unless $PEER_VERBOSE is set.  It must never include a Trove header.
 */
#include <db.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdb_peer.h"

struct peer_bdb {
	DB_ENV *env;
	DB *db;
	DBC *cur;
	DB_TXN *txn;
};

static void to_dbt(DBT *d, const peer_dbt *p)
{
	memset(d, 0, sizeof *d);
	d->data = p->data;
	d->size = p->size;
	d->ulen = p->ulen;
	d->flags = p->flags;
}

static void from_dbt(peer_dbt *p, const DBT *d)
{
	p->data = d->data;
	p->size = d->size;
}

peer_bdb *peer_bdb_open(const char *home, const char *file, uint32_t flags, int *rc)
{
	peer_bdb *p = calloc(1, sizeof *p);
	if (!p) {
		*rc = ENOMEM;
		return NULL;
	}
	if (home) {
		*rc = db_env_create(&p->env, 0);
		if (*rc)
			goto fail;
		p->env->set_errfile(p->env, getenv("PEER_VERBOSE") ? stderr : NULL);
		*rc = p->env->open(p->env, home,
		                   DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
		                           DB_INIT_MPOOL | DB_PRIVATE,
		                   0600);
		if (*rc)
			goto fail;
		flags |= DB_AUTO_COMMIT;
	}
	*rc = db_create(&p->db, p->env, 0);
	if (*rc)
		goto fail;
	p->db->set_errfile(p->db, getenv("PEER_VERBOSE") ? stderr : NULL);
	*rc = p->db->open(p->db, NULL, file, NULL, DB_BTREE, flags, 0600);
	if (*rc)
		goto fail;
	return p;
fail:
	if (p->db)
		p->db->close(p->db, 0);
	if (p->env)
		p->env->close(p->env, 0);
	free(p);
	return NULL;
}

int peer_bdb_close(peer_bdb *p)
{
	if (p->cur)
		p->cur->close(p->cur);
	if (p->txn)
		p->txn->abort(p->txn);
	int rc = p->db->close(p->db, 0);
	if (p->env)
		p->env->close(p->env, 0);
	free(p);
	return rc;
}

int peer_bdb_put(peer_bdb *p, peer_dbt *k, peer_dbt *d, uint32_t flags)
{
	DBT key, data;
	to_dbt(&key, k);
	to_dbt(&data, d);
	return p->db->put(p->db, p->txn, &key, &data, flags);
}

int peer_bdb_get(peer_bdb *p, peer_dbt *k, peer_dbt *d, uint32_t flags)
{
	DBT key, data;
	to_dbt(&key, k);
	to_dbt(&data, d);
	int rc = p->db->get(p->db, p->txn, &key, &data, flags);
	from_dbt(d, &data);
	return rc;
}

int peer_bdb_del(peer_bdb *p, peer_dbt *k, uint32_t flags)
{
	DBT key;
	to_dbt(&key, k);
	return p->db->del(p->db, p->txn, &key, flags);
}

int peer_bdb_exists(peer_bdb *p, peer_dbt *k, uint32_t flags)
{
	DBT key;
	to_dbt(&key, k);
	return p->db->exists(p->db, p->txn, &key, flags);
}

int peer_bdb_cursor(peer_bdb *p)
{
	if (p->cur)
		p->cur->close(p->cur);
	p->cur = NULL;
	return p->db->cursor(p->db, p->txn, &p->cur, 0);
}

int peer_bdb_cursor_close(peer_bdb *p)
{
	int rc = p->cur ? p->cur->close(p->cur) : 0;
	p->cur = NULL;
	return rc;
}

int peer_bdb_c_get(peer_bdb *p, peer_dbt *k, peer_dbt *d, uint32_t flags)
{
	DBT key, data;
	to_dbt(&key, k);
	to_dbt(&data, d);
	int rc = p->cur->get(p->cur, &key, &data, flags);
	from_dbt(k, &key);
	from_dbt(d, &data);
	return rc;
}

int peer_bdb_c_put(peer_bdb *p, peer_dbt *k, peer_dbt *d, uint32_t flags)
{
	DBT key, data;
	to_dbt(&key, k);
	to_dbt(&data, d);
	return p->cur->put(p->cur, &key, &data, flags);
}

int peer_bdb_c_del(peer_bdb *p, uint32_t flags)
{
	return p->cur->del(p->cur, flags);
}

int peer_bdb_txn_begin(peer_bdb *p)
{
	return p->env->txn_begin(p->env, NULL, &p->txn, 0);
}

int peer_bdb_txn_commit(peer_bdb *p)
{
	int rc = p->txn->commit(p->txn, 0);
	p->txn = NULL;
	return rc;
}

int peer_bdb_txn_abort(peer_bdb *p)
{
	int rc = p->txn->abort(p->txn);
	p->txn = NULL;
	return rc;
}
