/*
 * multi.c - transactions: MULTI EXEC DISCARD WATCH UNWATCH.
 *
 * Redis gets isolation by running a transaction's commands while nobody
 * else runs.  Trove's workers run at the same time and take no locks, so
 * EXEC gets the same effect optimistically, on the engine's conditional
 * batches:
 *
 *  - WATCH remembers each key's version (0 = absent).
 *  - After MULTI the dispatcher's checks still run (a command refused
 *    then makes EXEC answer EXECABORT), and the command is queued: a copy
 *    of its arguments.
 *  - EXEC runs the queued commands against a transaction overlay (kv.c):
 *    reads see the transaction's own earlier writes, writes stay pending,
 *    every key read from the engine is remembered with its version, and
 *    the replies are captured.  Then one trove_write commits all the
 *    writes on the conditions that every WATCHed key, and every key read,
 *    still has the version seen.  If a WATCHed key changed, EXEC answers
 *    a null array and nothing is applied, as in Redis.  If only a key the
 *    transaction read changed, the attempt is thrown away and EXEC runs
 *    again (bounded): to the client the transaction ran alone.
 *
 * Runtime errors are per-command replies inside EXEC's array while the
 * other commands apply, as in Redis.  This file never writes to the
 * engine except through kv_txn_commit, and never lets a reply of an
 * attempt that did not commit reach the client.
 */
#include <stdlib.h>
#include <string.h>

#include "kv.h"

typedef struct mq_cmd {
	const resp_cmd *cmd;
	int argc;
	char **argv; /* argv, lens and the bytes: one allocation */
	size_t *lens;
} mq_cmd;

typedef struct watched {
	char *key; /* the Trove key, so the database is part of it */
	size_t klen;
	uint64_t version;
} watched;

struct resp_multi {
	int active;  /* between MULTI and EXEC/DISCARD */
	int aborted; /* a command was refused while queuing */
	mq_cmd *q;
	size_t nq, capq, qbytes;
	watched *w;
	size_t nw, capw;
};

#define ERR_EXECABORT "EXECABORT Transaction discarded because of previous errors."

/* The connection's state, made on first use; NULL on ENOMEM. */
static struct resp_multi *state(resp_client *c)
{
	if (!c->multi)
		c->multi = calloc(1, sizeof *c->multi);
	return c->multi;
}

int multi_active(const resp_client *c)
{
	return c->multi && c->multi->active;
}

void multi_reject(resp_client *c)
{
	if (multi_active(c))
		c->multi->aborted = 1;
}

static void unwatch_all(struct resp_multi *m)
{
	for (size_t i = 0; i < m->nw; i++)
		free(m->w[i].key);
	m->nw = 0;
}

void multi_reset(resp_client *c)
{
	struct resp_multi *m = c->multi;
	if (!m)
		return;
	for (size_t i = 0; i < m->nq; i++)
		free(m->q[i].argv);
	m->nq = 0;
	m->qbytes = 0;
	m->active = 0;
	m->aborted = 0;
	unwatch_all(m);
}

void multi_free(resp_client *c)
{
	if (!c->multi)
		return;
	multi_reset(c);
	free(c->multi->q);
	free(c->multi->w);
	free(c->multi);
	c->multi = NULL;
}

/* ---- Queuing ------------------------------------------------------------------------ */

/* Commands that run at once even inside MULTI, as in Redis. */
static int runs_now(const resp_cmd *cmd)
{
	static const char *const names[] = { "exec", "discard", "multi", "watch", "quit", "reset" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(cmd->name, names[i]))
			return 1;
	return 0;
}

/* Commands a transaction may not hold (Redis's no-multi flag). */
static int refused_in_multi(const resp_cmd *cmd)
{
	static const char *const names[] = { "save", "shutdown" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(cmd->name, names[i]))
			return 1;
	return 0;
}

/* Appends a copy of the command to the queue: 0, or -1 on ENOMEM. */
static int queue_add(struct resp_multi *m, const resp_cmd *cmd, int argc, char **argv,
                     size_t *lens, size_t bytes)
{
	if (srv_grow(&m->q, &m->capq, m->nq + 1, sizeof *m->q, 8))
		return -1;
	char *blk = malloc(bytes);
	if (!blk)
		return -1;
	mq_cmd *q = &m->q[m->nq++];
	q->cmd = cmd;
	q->argc = argc;
	q->argv = (char **)blk;
	q->lens = (size_t *)(blk + (size_t)argc * sizeof(char *));
	char *d = (char *)(q->lens + argc);
	for (int i = 0; i < argc; i++) {
		q->argv[i] = d;
		q->lens[i] = lens[i];
		memcpy(d, argv[i], lens[i]);
		d[lens[i]] = 0;
		d += lens[i] + 1;
	}
	m->qbytes += bytes;
	return 0;
}

int multi_queue(resp_client *c, const resp_cmd *cmd, int argc, char **argv, size_t *lens)
{
	struct resp_multi *m = c->multi;
	if (!m || !m->active || runs_now(cmd))
		return 0;
	if (refused_in_multi(cmd)) {
		add_error(c, "ERR Command not allowed inside a transaction");
		m->aborted = 1;
		return 1;
	}
	size_t bytes = (size_t)argc * (sizeof(char *) + sizeof(size_t));
	for (int i = 0; i < argc; i++)
		bytes += lens[i] + 1;
	/* The queue counts against the input limit: it is input not yet run. */
	if (m->qbytes + bytes > SRV_CFG(srv_server_config(c->srv)->client_query_buffer_limit)) {
		add_error(c, "ERR transaction too big: the queued commands exceed "
		             "client-query-buffer-limit");
		m->aborted = 1;
		return 1;
	}
	if (queue_add(m, cmd, argc, argv, lens, bytes)) {
		add_error(c, "ERR out of memory");
		m->aborted = 1;
		return 1;
	}
	add_simple(c, "QUEUED");
	return 1;
}

/* ---- MULTI DISCARD WATCH UNWATCH -------------------------------------------------------- */

void cmd_multi(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	struct resp_multi *m = state(c);
	if (!m) {
		add_error(c, "ERR out of memory");
		return;
	}
	if (m->active) {
		add_error(c, "ERR MULTI calls can not be nested");
		return;
	}
	m->active = 1;
	m->aborted = 0;
	add_ok(c);
}

void cmd_discard(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	if (!multi_active(c)) {
		add_error(c, "ERR DISCARD without MULTI");
		return;
	}
	multi_reset(c);
	add_ok(c);
}

/* Remembers one key's current version (first WATCH of a key wins, as a
 * change since then must fail EXEC).  0 or an engine error. */
static int watch_key(resp_client *c, struct resp_multi *m, const rkey *k)
{
	for (size_t i = 0; i < m->nw; i++)
		if (m->w[i].klen == k->n && !memcmp(m->w[i].key, k->p, k->n))
			return 0;
	trove_meta meta = { 0, 0 };
	int rc = trove_get_ex(c->db, NULL, k->p, k->n, NULL, NULL, &meta);
	if (rc == TROVE_ENOTFOUND)
		meta.version = 0;
	else if (rc)
		return rc;
	if (srv_grow(&m->w, &m->capw, m->nw + 1, sizeof *m->w, 8))
		return TROVE_ENOMEM;
	char *copy = malloc(k->n);
	if (!copy)
		return TROVE_ENOMEM;
	memcpy(copy, k->p, k->n);
	m->w[m->nw++] = (watched){ copy, k->n, meta.version };
	return 0;
}

void cmd_watch(resp_client *c, int argc, char **argv, size_t *lens)
{
	if (multi_active(c)) {
		add_error(c, "ERR WATCH inside MULTI is not allowed");
		return;
	}
	struct resp_multi *m = state(c);
	if (!m) {
		add_error(c, "ERR out of memory");
		return;
	}
	for (int j = 1; j < argc; j++) {
		rkey k;
		if (rkey_make(c, &k, argv[j], lens[j]))
			return;
		int rc = watch_key(c, m, &k);
		rkey_free(&k);
		if (rc) {
			add_engine_error(c, rc);
			return;
		}
	}
	add_ok(c);
}

void cmd_unwatch(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	/* Queued inside MULTI, UNWATCH runs within EXEC, which checks the
	 * watched keys when it commits: there it has nothing left to do. */
	if (c->multi && !c->txn)
		unwatch_all(c->multi);
	add_ok(c);
}

/* ---- EXEC ------------------------------------------------------------------------------ */

/* TROVE_ECONDITION if a WATCHed key has changed since WATCH, 0 if none,
 * or an engine error.  (The commit checks again, atomically; this only
 * spares running a transaction that cannot commit.) */
static int watched_unchanged(resp_client *c, const struct resp_multi *m)
{
	for (size_t i = 0; i < m->nw; i++) {
		trove_meta meta = { 0, 0 };
		int rc = trove_get_ex(c->db, NULL, m->w[i].key, m->w[i].klen, NULL, NULL, &meta);
		if (rc && rc != TROVE_ENOTFOUND)
			return rc;
		if ((rc ? 0 : meta.version) != m->w[i].version)
			return TROVE_ECONDITION;
	}
	return 0;
}

/* The WATCHed keys' conditions, first in the batch: a failed condition
 * with an index below m->nw is a WATCHed key. */
static int require_watched(trove_batch *b, const struct resp_multi *m)
{
	for (size_t i = 0; i < m->nw; i++) {
		trove_cond cond = { .kind = TROVE_IF_VERSION, .version = m->w[i].version };
		int rc = trove_batch_require(b, m->w[i].key, m->w[i].klen, &cond);
		if (rc)
			return rc;
	}
	return 0;
}

/* Runs the queue in one attempt: the replies land in cap, the writes in t. */
static void exec_attempt(resp_client *c, const struct resp_multi *m, kv_txn *t,
                         resp_capture *cap)
{
	kv_txn_reset(t);
	resp_capture_reset(cap);
	c->txn = t;
	c->capture = cap;
	for (size_t i = 0; i < m->nq; i++)
		resp_call(c, m->q[i].cmd, m->q[i].argc, m->q[i].argv, m->q[i].lens);
	c->txn = NULL;
	c->capture = NULL;
}

static void exec_run(resp_client *c, const struct resp_multi *m)
{
	int rc = watched_unchanged(c, m);
	if (rc) {
		if (rc == TROVE_ECONDITION)
			add_null_array(c);
		else
			add_engine_error(c, rc);
		return;
	}
	kv_txn *t = kv_txn_new(0);
	resp_capture *cap = resp_capture_new();
	trove_batch *b = trove_batch_new();
	int db0 = c->dbnum, proto0 = c->proto;
	for (int tries = 0; t && cap && b; tries++) {
		c->dbnum = db0; /* a queued SELECT or HELLO acts anew each attempt */
		c->proto = proto0;
		exec_attempt(c, m, t, cap);
		trove_write_result res;
		memset(&res, 0, sizeof res);
		trove_batch_clear(b);
		rc = require_watched(b, m);
		if (!rc)
			rc = kv_txn_commit(c, t, b, &res);
		if (rc == 0) {
			add_array(c, (long long)m->nq);
			resp_capture_release(c, cap, res.version);
			break;
		}
		c->dbnum = db0; /* nothing was applied, so neither was a SELECT */
		c->proto = proto0;
		if (rc == TROVE_ECONDITION && res.failed < m->nw) {
			add_null_array(c); /* a WATCHed key changed */
			break;
		}
		if (rc == TROVE_ECONDITION && tries < RESP_MAX_RETRIES)
			continue; /* a key it read changed: run it again */
		if (rc == TROVE_ECONDITION)
			add_error(c, ERR_CONTENTION);
		else
			add_engine_error(c, rc);
		break;
	}
	if (!t || !cap || !b)
		add_error(c, "ERR out of memory");
	kv_txn_free(t);
	resp_capture_free(cap);
	trove_batch_free(b);
}

void cmd_exec(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	struct resp_multi *m = c->multi;
	if (!multi_active(c)) {
		add_error(c, "ERR EXEC without MULTI");
		return;
	}
	if (m->aborted)
		add_error(c, ERR_EXECABORT);
	else
		exec_run(c, m);
	multi_reset(c); /* leaves MULTI and unwatches, whatever the outcome */
	srv_conn_used_db(c->conn);
}
