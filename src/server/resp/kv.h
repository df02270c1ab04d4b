/*
 * kv.h - the storage view every RESP command reads and writes through.
 *
 * Outside a transaction the view is the engine itself: each call below is
 * the trove.h call of the same shape, with the same errors.  While EXEC
 * runs a transaction's queued commands, or a command joins its loop
 * turn's batch (turn.c) (either way c->txn is set), the view is the
 * transaction's overlay of pending writes on top of the engine: reads see
 * the transaction's earlier writes, writes stay in the overlay, and every
 * key read from the engine is remembered with its version, so that EXEC
 * can commit all the writes as one trove_write on the condition that
 * nothing it read has changed (kv_txn_commit).  Commands therefore never
 * know whether they run inside MULTI/EXEC.
 *
 * Keys here are Trove keys (rkey_make's 'r' db key), values and versions
 * are the engine's.
 */
#ifndef SRV_RESP_KV_H
#define SRV_RESP_KV_H

#include "resp.h"

/* The version a read reports for a key the running transaction has
 * written: its real version is the commit's, known only once EXEC commits
 * (add_version() writes it into the reply then).  Never a real version:
 * the engine's versions are far below it, and clients cannot type it
 * (versions in commands are signed 64-bit). */
#define KV_VERSION_PENDING UINT64_MAX

/* ---- Point reads and writes -------------------------------------------------- */

/* trove_get_ex at the latest state: val/vlen may be NULL (metadata only),
 * m may be NULL.  Release *val with kv_free. */
int kv_get(resp_client *c, const char *key, size_t klen, void **val, size_t *vlen,
           trove_meta *m);
void kv_free(resp_client *c, void *val);
/* 0 if key exists, TROVE_ENOTFOUND if not, or an error. */
int kv_exists(resp_client *c, const char *key, size_t klen);
/* trove_mget at the latest state; release vals[i] with kv_free. */
int kv_mget(resp_client *c, size_t n, const void *const *keys, const size_t *klens, void **vals,
            size_t *vlens, int *status);
/* trove_put_ex and trove_del_ex. */
int kv_put(resp_client *c, const char *key, size_t klen, const void *val, size_t vlen,
           const trove_put_opts *o, uint64_t *version);
int kv_del(resp_client *c, const char *key, size_t klen, const trove_cond *cond, int *deleted);

/* ---- Batches: trove_batch's shape ------------------------------------------------ */

typedef struct kv_batch kv_batch;

/* NULL on ENOMEM.  A batch belongs to the command that made it. */
kv_batch *kv_batch_new(resp_client *c);
void kv_batch_free(kv_batch *b);
void kv_batch_clear(kv_batch *b);
/* expire_at: absolute Unix ms, 0 for none. */
int kv_batch_put(kv_batch *b, const char *key, size_t klen, const void *val, size_t vlen,
                 int64_t expire_at);
int kv_batch_del(kv_batch *b, const char *key, size_t klen);
int kv_batch_expire_at(kv_batch *b, const char *key, size_t klen, int64_t expire_at);
int kv_batch_require(kv_batch *b, const char *key, size_t klen, const trove_cond *cond);
/* trove_write: all or nothing; res may be NULL. */
int kv_write(kv_batch *b, trove_write_result *res);

/* ---- Ordered walks ------------------------------------------------------------- */

typedef struct kv_range {
	const char *prefix; /* keys starting with prefix; NULL: any */
	size_t prefix_len;
	const char *lower; /* inclusive; NULL: none */
	size_t lower_len;
	const char *upper; /* exclusive; NULL: none */
	size_t upper_len;
	const char *start; /* forward: the first key >= start; reverse: the last
	                      key <= start; NULL: from the range's edge */
	size_t start_len;
	int reverse;
	/* Inside EXEC: every key the walk returns from the engine becomes a
	 * version condition of the commit (a change to a returned key makes
	 * EXEC run again; a key inserted into the range does not - the
	 * engine has no range condition). */
	int record;
} kv_range;

typedef struct kv_iter kv_iter;

/* Opens a walk over r (its strings are copied).  0 or an error. */
int kv_iter_open(resp_client *c, const kv_range *r, kv_iter **out);
/* Moves to the next key (the first one on the first call): 0 on a key,
 * TROVE_ENOTFOUND at the end, or an error. */
int kv_iter_next(kv_iter *it);
/* The current key, value and metadata, valid until the walk moves. */
const char *kv_iter_key(const kv_iter *it, size_t *klen);
const char *kv_iter_value(const kv_iter *it, size_t *vlen);
int kv_iter_meta(const kv_iter *it, trove_meta *m);
void kv_iter_close(kv_iter *it);

/* Deletes every key starting with prefix, in pages of keys; not one
 * atomic step against concurrent writers (FLUSHDB, FLUSHALL). */
int kv_delete_prefix(resp_client *c, const char *prefix, size_t plen);

/* ---- The transaction overlay (multi.c drives it) ------------------------------- */

typedef struct kv_txn kv_txn;

/* turn: a loop turn's batch (turn.c) rather than an EXEC; its reads
 * become conditions only after its first write (kv.c says why). */
kv_txn *kv_txn_new(int turn);
void kv_txn_free(kv_txn *t);
/* In a turn's batch: the next command begins.  While the batch has
 * written nothing, what earlier commands read is forgotten (their reads
 * took effect when they ran; the next one reads the engine afresh). */
void kv_txn_next_command(kv_txn *t);
/* Roughly the bytes of memory the overlay holds (the values written and
 * read, the entries) once it has a pending write; 0 if none. */
size_t kv_txn_pending(const kv_txn *t);
/* Forgets every pending write and read, for another attempt. */
void kv_txn_reset(kv_txn *t);
/* Adds to b (which may already hold conditions, e.g. WATCH's) a version
 * condition for every key the transaction read from the engine, then its
 * writes, and commits b with trove_write.  Nothing to check and nothing
 * to write: returns 0 without writing (res->version = 0). */
int kv_txn_commit(resp_client *c, kv_txn *t, trove_batch *b, trove_write_result *res);

#endif
