/*
 * db.h - the database handle and what its modules share.
 *
 * db.c opens, recovers and closes, and runs the write path (group commit)
 * and point reads; batch.c encodes batches; compact.c runs flushes and
 * compactions on background threads; cursor.c is the user-facing
 * iterator; maint.c holds backup, verify and statistics.  They all meet
 * in struct trove_db.
 *
 * Stored keys.  The engine keeps two keyspaces in its one ordered map, told
 * apart by a leading namespace byte:
 *   TV_NS_DATA  + user key                         the user's keys
 *   TV_NS_EXPIRY + big-endian u64 expiry + user key an index of every key
 *                                                  that has an expiry
 * The expiry index lets the background reaper find expired keys in time
 * order and lets trove_count subtract the expired-but-not-yet-reaped keys
 * exactly.
 *
 * Locking.  db->mu guards the writer queue, the memtable switch, the
 * version set, snapshots and background state.  The commit leader resolves
 * a group, writes the log and fills the memtable without holding mu; it is
 * the only thread that writes the memtable or the log.  Readers take mu
 * only to pin a "super version" (memtables + version) by reference.
 */
#ifndef TV_DB_H
#define TV_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "trove.h"
#include "../util/slice.h"
#include "cache.h"
#include "errlog.h"
#include "logfile.h"
#include "memtable.h"
#include "version.h"
#include "vfs.h"

#define TV_NS_DATA 0x00
#define TV_NS_EXPIRY 0x01
/* The longest stored key: namespace, expiry and a maximal user key. */
#define TV_MAX_STORED_KEY (1 + 8 + TROVE_MAX_KEY)

/* Level-0 file counts that trigger compaction, slow writers, stop them. */
#define TV_L0_COMPACT 4
#define TV_L0_SLOWDOWN 8
#define TV_L0_STOP 12

/* Batch op types (in trove_batch's buffer; see batch.c). */
enum {
	TV_OP_PUT = 1,       /* key, value */
	TV_OP_PUT_EXP = 2,   /* key, expiry, value */
	TV_OP_DEL = 3,       /* key */
	TV_OP_EXPIRE = 4,    /* key, expiry (0 = none): keep the value */
	TV_OP_PUT_KEEP = 5,  /* key, value: keep the expiry */
	TV_OP_REAP = 6,      /* key, expiry: delete if it expired at expiry */
};

struct trove_batch {
	tv_buf ops;
	size_t nops;
	tv_buf conds;
	size_t nconds;
};

/* A decoded batch op or condition. */
typedef struct tv_op {
	int type;
	tv_slice key;
	tv_slice value;
	int64_t expire_at;
	trove_cond_kind cond;  /* conditions only */
	uint64_t version;      /* conditions only */
	uint64_t since;        /* TROVE_IF_UNCHANGED only */
} tv_op;

/* Iterates over a batch's ops (or conditions): returns 1 and fills op,
 * 0 at the end.  *pos starts at 0. */
int tv_batch_next_op(const trove_batch *b, size_t *pos, tv_op *op);
int tv_batch_next_cond(const trove_batch *b, size_t *pos, tv_op *op);
int tv_batch_add_op(trove_batch *b, int type, const void *key, size_t klen,
                    const void *val, size_t vlen, int64_t expire_at);

struct trove_snapshot {
	uint64_t seq;
	struct trove_snapshot *prev, *next;
};

/* What a reader pins: the memtables and the version, at one moment.
 * Readers pin it without the mutex (tv_super_get), so a super version's
 * memory is never given back to malloc while the database is open: once
 * its last reference goes it waits on db->super_free for the next
 * install.  refs is 0 exactly while it waits there. */
typedef struct tv_super {
	atomic_int refs;
	tv_memtable *mem;
	tv_memtable *imm; /* being flushed, or NULL */
	tv_version *version;
	uint64_t tables_seq; /* no table of version holds a later sequence */
	int tables_hold_expiry;     /* tv_tables_hold_expiry(version) */
	struct tv_super *next_free; /* on db->super_free */
} tv_super;

/* Flags of tv_write_internal. */
enum {
	TV_W_SYNC = 1,  /* sync the log whatever the policy */
	TV_W_FLUSH = 2, /* switch to a new memtable so the current one is flushed */
};

/* A waiting writer (lives on its thread's stack). */
typedef struct tv_writer {
	const trove_batch *batch; /* NULL: only the flags' work */
	int flags;                /* TV_W_* */
	int want_removed;         /* the caller reads res.removed */
	int status;
	trove_write_result res;
	int done;
	int has_cv;               /* cv is initialised */
	pthread_cond_t cv;
	struct tv_writer *next;
	/* Set in a group's leader while the group waits for the log to be
	 * durable past its record (db->sync_head's list; see db.c). */
	struct tv_writer *last;      /* the group's last writer */
	struct tv_writer *sync_next; /* the next group waiting */
	uint64_t end;                /* log offset just past the group's record */
	uint64_t seq;                /* last sequence number of the group */
	int64_t delta;               /* its change to the live-key count */
	int publish;                 /* seq and delta become visible when durable */
	unsigned nwriters;
} tv_writer;

#define TV_READ_STRIPES 16

struct trove_db {
	trove_options opts;
	char *path;
	trove_vfs *vfs;
	trove_vfs *own_vfs; /* in-memory mode's VFS, freed at close */
	tv_logger lg;
	tv_file *lockfile;
	int read_only;
	int use_wal;
	size_t write_buffer; /* memtable size that triggers a flush */
	tv_mem_pool *mem_pool; /* storage of dropped memtables, for new ones */

	pthread_mutex_t mu;
	pthread_cond_t bg_cv; /* background work done / needed */

	/* Writers. */
	tv_writer *queue_head, *queue_tail;
	tv_log_writer *wal;
	uint64_t wal_number;
	uint64_t wal_end;     /* the log's size after the last group appended */
	uint64_t wal_durable; /* the log is durable up to here */
	int wal_broken;       /* an append failed: start a new log */
	_Atomic uint64_t last_sync_ms;
	_Atomic uint64_t last_seq; /* published: readers see <= this */
	uint64_t write_seq;   /* last sequence number written (>= last_seq) */
	/* The sync pipeline (mu): groups whose writers wait for the log to be
	 * durable past their records, in log order, linked through their
	 * leaders; at most one sync runs at a time, outside mu. */
	tv_writer *sync_head, *sync_tail;
	unsigned sync_writers;  /* writers in that list */
	int syncing;            /* a sync is running (or gathering writers) */
	tv_writer *gatherer;    /* the syncer, while it waits for writers */
	unsigned gather_target; /* writers the next sync waits for */
	uint64_t last_sync_us, last_sync_end_us; /* duration, end (monotonic) */
	int draining;           /* threads waiting on drain_cv */
	pthread_cond_t drain_cv; /* the list emptied and no sync runs */
	uint64_t count;       /* live-key counter (expired-unreaped included) */
	atomic_int bad;       /* a log sync failed: writes refused */
	int bg_error;         /* last background failure, cleared on success */
	uint64_t flush_failures; /* failed flush attempts so far */
	int flush_error;      /* the last one's error */
	tv_buf wal_rec;       /* the leader's record buffer */
	struct group *grp;    /* the leader's reusable group state */

	/* What readers pin. */
	tv_memtable *mem;
	tv_memtable *imm;
	uint64_t imm_next_log; /* the first log holding writes after imm */
	uint64_t imm_count;   /* count as of the end of imm */
	uint64_t imm_seq;     /* last sequence in imm */
	_Atomic(tv_super *) super; /* written under mu, read by readers without it */
	tv_super *super_free;      /* unreferenced super versions, for reuse (mu) */
	tv_vset vs;
	tv_cache *cache;

	trove_snapshot snapshots; /* list head (circular) */

	/* Background threads. */
	pthread_t flush_thread, compact_thread, timer_thread;
	int threads_started;
	int shutting_down;
	int compacting;       /* a compaction is running */
	int manual_pending;   /* trove_compact_range waiting */
	pthread_mutex_t compact_mu; /* one compaction at a time */
	int backups;          /* backups running: keep old logs */
	uint64_t logs_removed_below; /* logs below this number are gone */
	char compact_ptr[TV_LEVELS][TV_MAX_STORED_KEY + 8]; /* round robin */
	size_t compact_ptr_len[TV_LEVELS];

	/* Error message for trove_errmsg. */
	pthread_mutex_t err_mu;
	char errmsg[512];

	/* Statistics. */
	/* Reads are counted in stripes chosen by thread, 128 bytes apart: one
	 * counter every reader added to would move its cache line between
	 * cores on every get. */
	struct {
		_Atomic uint64_t n;
		char pad[120];
	} st_reads[TV_READ_STRIPES];
	_Atomic uint64_t st_writes, st_groups, st_syncs, st_conflicts,
		st_wal_bytes, st_table_bytes, st_flushes, st_compactions,
		st_compaction_read, st_stalls, st_stall_us, st_reaped;
};

/* ---- Shared helpers (db.c) ----------------------------------------------- */

int64_t tv_now_ms(void);
uint64_t tv_now_us(void);

/* Pins the current super version, without taking mu: a reader takes a
 * reference only while the count is above zero and keeps it only if the
 * version is still current afterwards. */
tv_super *tv_super_get(trove_db *db);
void tv_super_put(trove_db *db, tv_super *s);
/* True if a table of v may hold an expiry-index entry, and so a key with
 * an expiry. */
int tv_tables_hold_expiry(const tv_version *v);
/* Installs a new super version from db->mem, db->imm and the current
 * version.  Called with mu held. */
int tv_super_install(trove_db *db);

/* Counts n reads by the calling thread; the sum of every thread's. */
void tv_count_reads(trove_db *db, uint64_t n);
uint64_t tv_reads(trove_db *db);

/* Builds a stored key (namespace byte + key) in buf; returns its slice. */
tv_slice tv_stored_key(char *buf, int ns, const void *key, size_t klen);

/* The change to the live-key count made by the unresolved entries (writes
 * that did not read their key's prior state) with sequence <= seq in the
 * memtables of s, in *delta: db->count leaves them out until their
 * memtable is flushed.  Resolves those not resolved before. */
int tv_unresolved_delta(tv_super *s, uint64_t seq, int64_t *delta);

/* Works out the count change of a memtable's unresolved entries while a
 * flush writes it: fed every entry of the memtable in key order, each
 * entry resolved against its key's next entry in the memtable or else
 * the version under the memtable (read in key order).  The memtable must
 * no longer take writes, and stay alive, as the version must. */
typedef struct tv_flush_resolver {
	int all;               /* every entry is unresolved */
	const char **keys;     /* else the unresolved entries' keys, sorted by address */
	size_t nkeys, mapped;
	const char **firsts;   /* keys[0], keys[8], keys[16]...: where to look in keys */
	size_t nfirsts, firsts_mapped;
	tv_version_probe *probe;
	int no_table;          /* no table under the memtable overlaps its key range */
	tv_slice pending;      /* an unresolved entry whose older state is not known yet */
	tv_version_lookup lk;  /* pending's read of the tables, begun when it was taken */
	tv_buf seek;           /* the key lk seeks */
	int64_t delta;
} tv_flush_resolver;
int tv_flush_resolver_init(tv_flush_resolver *r, tv_memtable *m, tv_version *under);
/* Takes the next entry (internal key) of the walk; hash is its user
 * key's tv_bloom_hash. */
int tv_flush_resolver_add(tv_flush_resolver *r, tv_slice ikey, uint64_t hash);
/* The total change, once the walk has ended. */
int tv_flush_resolver_finish(tv_flush_resolver *r, int64_t *delta);
void tv_flush_resolver_fini(tv_flush_resolver *r);

/* Submits a writer and waits until it is committed. */
int tv_write_internal(trove_db *db, const trove_batch *b, int flags,
                      trove_write_result *res);

/* Frees the leader's group state (at close). */
void tv_group_free(trove_db *db);

/* Deletes table files no version needs. */
void tv_delete_dead(trove_db *db, tv_deadlist *dead);

/* Records a message for trove_errmsg and passes it to the user's log. */
void tv_db_log(void *arg, int level, const char *msg);

/* Oldest sequence number a snapshot still needs (mu held). */
uint64_t tv_oldest_snapshot(trove_db *db);

/* ---- compact.c ------------------------------------------------------------ */

void *tv_flush_main(void *arg);
void *tv_compact_main(void *arg);
/* Periodic log syncs and the expiry reaper. */
void *tv_timer_main(void *arg);
/* Writes memtable m, which takes no more writes, to a new level-0 table;
 * returns its meta (NULL when m is empty) in *out and the count change of
 * its unresolved entries, resolved against the tables of `under`, in
 * *unresolved.  Called without mu. */
int tv_write_level0(trove_db *db, tv_memtable *m, tv_version *under, tv_filemeta **out,
                    int64_t *unresolved);
/* Compacts [lo, hi] (NULL: unbounded, user keys with namespace) down every
 * level. */
int tv_compact_range_internal(trove_db *db, const tv_slice *lo, const tv_slice *hi);
/* Flushes db->imm if there is one (mu held; drops it during I/O). */
int tv_flush_imm(trove_db *db);

/* ---- cursor.c (internal cursors are also used for the expiry index) ---- */

typedef struct tv_dbiter tv_dbiter;
/* An iterator over live entries of stored keys in [lo, hi) at seq; with
 * check_expiry set, expired values are hidden too (the clock is read when
 * an entry with an expiry first needs it, once per positioning call).
 * NULL on ENOMEM. */
tv_dbiter *tv_dbiter_new(trove_db *db, tv_super *s, uint64_t seq, tv_slice lo,
                         tv_slice hi, int has_hi, int check_expiry);
void tv_dbiter_free(tv_dbiter *it);
int tv_dbiter_first(tv_dbiter *it);
int tv_dbiter_last(tv_dbiter *it);
int tv_dbiter_seek(tv_dbiter *it, tv_slice skey);
int tv_dbiter_seek_for_prev(tv_dbiter *it, tv_slice skey);
int tv_dbiter_next(tv_dbiter *it);
int tv_dbiter_prev(tv_dbiter *it);
int tv_dbiter_valid(const tv_dbiter *it);
tv_slice tv_dbiter_key(const tv_dbiter *it);   /* stored key */
tv_slice tv_dbiter_value(const tv_dbiter *it); /* without expiry prefix */
uint64_t tv_dbiter_seq(const tv_dbiter *it);
int64_t tv_dbiter_expire(const tv_dbiter *it);

/* Number of expiry-index entries with expiry <= now in s at seq. */
int tv_count_expired_at(trove_db *db, tv_super *s, uint64_t seq, int64_t now, uint64_t *n);
/* Deletes up to max expired keys; *reaped gets how many. */
int tv_reap_expired(trove_db *db, size_t max, size_t *reaped);

#endif
