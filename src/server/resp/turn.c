/*
 * turn.c - a loop turn's batch: the key commands a worker runs in one turn
 * of its event loop, committed to the engine as one trove_write.
 *
 * Every write committed on its own costs an engine commit (a log record,
 * the group-commit queue, a write(2)).  A worker already holds every reply
 * of a turn until the turn's end (server.c syncs, then releases them), so
 * it may as well hold the writes: commands marked CMD_TURN run against the
 * worker's overlay (kv.h, kv_txn in turn mode) instead of the engine, and
 * at the end of the turn - or before a command that is not CMD_TURN, or
 * when the batch grows large - kv_txn_commit writes them all as one
 * atomic batch.  Reads see the batch's earlier writes; reads that take
 * effect after a write of the batch, and writes that depend on what they
 * read (SET NX, INCR...), become version conditions of the commit (kv.c).
 *
 * If the commit fails - a key the batch read was changed meanwhile by
 * another worker, or an engine error - nothing of the batch was applied
 * and no reply of it has left the server.  The batch is then *replayed*:
 * every connection's output goes back to where its part of the batch
 * began, and the recorded commands run again in their order - as a batch
 * again after a conflict (a few times), else each straight against the
 * engine as they would without batching, giving each its own true
 * answer.  That is why a CMD_TURN command may change nothing but keys
 * and its reply.
 *
 * This file never sends a reply itself and never holds a batch across
 * loop turns.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

/* A batch is committed early once it holds this many commands or bytes,
 * so that one turn's pipelines cannot make it (or a replay) unbounded. */
#define TURN_MAX_CMDS 4096
#define TURN_MAX_BYTES (8u << 20)
/* A batch whose reads were overtaken by another worker's writes runs
 * again as a batch this many times before it falls back to one by one. */
#define TURN_RETRIES 3

/* A recorded command: its arguments are in the arena at off - argc
 * lengths, then the bytes of each argument with a NUL after it. */
typedef struct turn_cmd {
	resp_client *c;
	const resp_cmd *cmd;
	int argc;
	size_t off;
} turn_cmd;

struct resp_turn {
	kv_txn *t;
	trove_batch *b;
	turn_cmd *q;
	size_t n, cap;
	char *arena;
	size_t used, acap;
	char **argv; /* for a replayed command */
	size_t argvcap;
	uint64_t gen; /* numbers the batches, so a connection knows its mark's */
	srv_stats *st;
};

void *resp_turn_new(srv_server *s)
{
	resp_turn *tn = calloc(1, sizeof *tn);
	if (!tn)
		return NULL;
	tn->st = srv_server_stats(s);
	tn->t = kv_txn_new(1);
	tn->b = trove_batch_new();
	tn->gen = 1;
	if (!tn->t || !tn->b) {
		resp_turn_free(tn);
		return NULL;
	}
	return tn;
}

void resp_turn_free(void *turn)
{
	resp_turn *tn = turn;
	if (!tn)
		return;
	kv_txn_free(tn->t);
	trove_batch_free(tn->b);
	free(tn->q);
	free(tn->arena);
	free(tn->argv);
	free(tn);
}

/* Copies a command into the batch's record.  0, or -1 on ENOMEM. */
static int record(resp_turn *tn, resp_client *c, const resp_cmd *cmd, int argc, char **argv,
                  size_t *lens)
{
	if (srv_grow(&tn->q, &tn->cap, tn->n + 1, sizeof *tn->q, 64))
		return -1;
	size_t off = (tn->used + alignof(size_t) - 1) & ~(alignof(size_t) - 1);
	size_t need = off + (size_t)argc * sizeof(size_t);
	for (int i = 0; i < argc; i++)
		need += lens[i] + 1;
	if (need > tn->acap) {
		size_t nc = tn->acap ? tn->acap : 16384;
		while (nc < need)
			nc *= 2;
		char *na = realloc(tn->arena, nc);
		if (!na)
			return -1;
		tn->arena = na;
		tn->acap = nc;
	}
	memcpy(tn->arena + off, lens, (size_t)argc * sizeof(size_t));
	char *d = tn->arena + off + (size_t)argc * sizeof(size_t);
	for (int i = 0; i < argc; i++) {
		memcpy(d, argv[i], lens[i]);
		d[lens[i]] = 0;
		d += lens[i] + 1;
	}
	tn->used = need;
	if (c->turn_gen != tn->gen) {
		c->turn_gen = tn->gen;
		c->turn_mark = srv_conn_output_mark(c->conn);
		c->turn_errors = c->errors;
	}
	tn->q[tn->n++] = (turn_cmd){ c, cmd, argc, off };
	return 0;
}

/* Runs recorded command q again: in the batch (c->txn set) or straight
 * against the engine. */
static void rerun(resp_turn *tn, const turn_cmd *q, int in_batch)
{
	if (srv_grow(&tn->argv, &tn->argvcap, (size_t)q->argc, sizeof *tn->argv, 8)) {
		add_error(q->c, "ERR out of memory");
		return;
	}
	size_t *lens = (size_t *)(void *)(tn->arena + q->off);
	char *p = tn->arena + q->off + (size_t)q->argc * sizeof(size_t);
	for (int i = 0; i < q->argc; i++) {
		tn->argv[i] = p;
		p += lens[i] + 1;
	}
	if (in_batch) {
		q->c->txn = tn->t;
		kv_txn_next_command(tn->t);
	}
	q->cmd->proc(q->c, q->argc, tn->argv, lens);
	q->c->txn = NULL;
}

/* Takes back every reply of the batch: each connection's output goes back
 * to its mark. */
static void rewind_replies(resp_turn *tn)
{
	for (size_t i = 0; i < tn->n; i++) {
		resp_client *c = tn->q[i].c;
		if (c->turn_gen == tn->gen) {
			srv_conn_output_rewind(c->conn, c->turn_mark);
			c->errors = c->turn_errors;
			c->turn_hits = c->turn_misses = 0;
			c->turn_gen = 0;
		}
	}
	for (size_t i = 0; i < tn->n; i++)
		tn->q[i].c->turn_gen = tn->gen; /* the marks stay where they were */
}

/* Counts the keyspace hits and misses of the committed batch's commands
 * in the server's stats. */
static void count_hits(resp_turn *tn)
{
	for (size_t i = 0; i < tn->n; i++) {
		resp_client *c = tn->q[i].c;
		if (c->turn_hits)
			atomic_fetch_add_explicit(&tn->st->keyspace_hits, c->turn_hits,
			                          memory_order_relaxed);
		if (c->turn_misses)
			atomic_fetch_add_explicit(&tn->st->keyspace_misses, c->turn_misses,
			                          memory_order_relaxed);
		c->turn_hits = c->turn_misses = 0;
	}
}

/* Commits the pending batch and starts a new one.  If the commit fails,
 * nothing of it was applied and none of its replies has left: they are
 * taken back and the commands run again - in the batch again if a key it
 * read was changed meanwhile (up to TURN_RETRIES times), else one by one
 * straight against the engine, each getting its own answer. */
static void commit(resp_turn *tn)
{
	if (!tn->n)
		return;
	for (int tries = 0;; tries++) {
		int rc = 0, wrote = kv_txn_pending(tn->t) != 0;
		if (wrote) {
			trove_write_result res;
			trove_batch_clear(tn->b);
			rc = kv_txn_commit(tn->q[0].c, tn->t, tn->b, &res);
		}
		kv_txn_reset(tn->t);
		if (!rc) {
			if (wrote)
				atomic_fetch_add_explicit(&tn->st->turn_batches, 1, memory_order_relaxed);
			count_hits(tn);
			break;
		}
		rewind_replies(tn);
		int again = rc == TROVE_ECONDITION && tries < TURN_RETRIES;
		atomic_fetch_add_explicit(again ? &tn->st->turn_retries : &tn->st->turn_replays, 1,
		                          memory_order_relaxed);
		if (!again)
			srv_log(SRV_LL_VERBOSE,
			        "a batch of %zu commands did not commit (%s): running them one "
			        "by one",
			        tn->n, trove_strerror(rc));
		for (size_t i = 0; i < tn->n; i++)
			rerun(tn, &tn->q[i], again);
		if (!again)
			break;
	}
	tn->n = 0;
	tn->used = 0;
	tn->gen++;
}

void resp_turn_end(void *turn)
{
	commit(turn);
}

int resp_turn_join(resp_client *c, const resp_cmd *cmd, int argc, char **argv, size_t *lens)
{
	resp_turn *tn = srv_conn_worker_state(c->conn);
	/* A command that writes nothing, while the batch has written nothing
	 * and holds nothing of c, answers the same in or out of the batch,
	 * and no replay takes its reply back (c's mark comes after it): it
	 * runs straight on the engine, so read-only turns cost nothing. */
	if ((cmd->flags & CMD_TURN) && !(cmd->flags & CMD_WRITE) && !kv_txn_pending(tn->t) &&
	    c->turn_gen != tn->gen)
		return 0;
	if (!(cmd->flags & CMD_TURN) || record(tn, c, cmd, argc, argv, lens)) {
		commit(tn);
		return 0;
	}
	c->txn = tn->t;
	kv_txn_next_command(tn->t);
	return 1;
}

int resp_turn_holds(resp_client *c)
{
	resp_turn *tn = srv_conn_worker_state(c->conn);
	return tn->n > 0 && c->turn_gen == tn->gen;
}

int resp_turn_hit(resp_client *c, int found)
{
	resp_turn *tn = srv_conn_worker_state(c->conn);
	if (!c->txn || c->txn != tn->t)
		return 0;
	if (found)
		c->turn_hits++;
	else
		c->turn_misses++;
	return 1;
}

void resp_turn_leave(resp_client *c)
{
	resp_turn *tn = srv_conn_worker_state(c->conn);
	c->txn = NULL;
	if (tn->n >= TURN_MAX_CMDS || tn->used + kv_txn_pending(tn->t) >= TURN_MAX_BYTES)
		commit(tn);
}
