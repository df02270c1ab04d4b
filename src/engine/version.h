/*
 * version.h - which table files make up the database, level by level.
 *
 * A version is an immutable list of table files per level.  Level 0 holds
 * freshly flushed tables whose key ranges may overlap (newest first);
 * levels 1..6 each hold tables with disjoint key ranges sorted by key.
 * Every change (a flush adds a file, a compaction swaps some) is a
 * version edit: appended to the MANIFEST log, synced, then applied to
 * make the next version.  Readers pin the version they started with by
 * reference, so files are deleted only when no version holds them.
 *
 * The version set also carries the counters that must survive a restart
 * with the files: the next file number, the last sequence number in the
 * tables, the oldest write-ahead log still needed, and the live-key count
 * as of that log.
 *
 * Locking: the caller (db.c) holds the database mutex around every call
 * that reads or changes the version set, except tv_vs_log_and_apply,
 * which drops it while it writes the manifest.
 */
#ifndef TV_VERSION_H
#define TV_VERSION_H

#include <pthread.h>
#include <stdint.h>

#include "../util/slice.h"
#include "errlog.h"
#include "iter.h"
#include "logfile.h"
#include "table.h"
#include "vfs.h"

#define TV_LEVELS 7

typedef struct tv_filemeta {
	uint64_t number;
	uint64_t size;
	uint64_t entries;
	char *smallest; /* internal keys, malloc'd */
	size_t smallest_len;
	char *largest;
	size_t largest_len;
	int refs;          /* versions holding it; guarded by the db mutex */
	int compacting;    /* chosen as a compaction input */
	tv_table *table;   /* open reader; NULL until opened */
} tv_filemeta;

static inline tv_slice tv_fm_smallest(const tv_filemeta *f)
{
	return tv_slice_make(f->smallest, f->smallest_len);
}

static inline tv_slice tv_fm_largest(const tv_filemeta *f)
{
	return tv_slice_make(f->largest, f->largest_len);
}

typedef struct tv_version {
	int refs; /* guarded by the db mutex */
	tv_filemeta **files[TV_LEVELS];
	int nfiles[TV_LEVELS];
	uint64_t level_bytes[TV_LEVELS];
} tv_version;

/* A version edit: what changes between two versions. */
typedef struct tv_edit_file {
	int level;
	tv_filemeta *meta; /* new file (owned by the edit until applied) */
	uint64_t number;   /* deleted file */
	int borrowed;      /* meta is a live file moved between levels */
} tv_edit_file;

typedef struct tv_edit {
	int has_log_number, has_next_file, has_last_seq, has_count;
	uint64_t log_number;
	uint64_t next_file;
	uint64_t last_seq;
	uint64_t count;
	tv_edit_file *added;
	int nadded;
	size_t capadded;
	tv_edit_file *deleted;
	int ndeleted;
	size_t capdeleted;
} tv_edit;

void tv_edit_init(tv_edit *e);
/* Frees the edit and any new file metas it still owns. */
void tv_edit_free(tv_edit *e);
/* Adds a new file (the edit takes ownership of meta). */
int tv_edit_add_file(tv_edit *e, int level, tv_filemeta *meta);
/* Moves a live file to another level (the edit borrows meta). */
int tv_edit_move_file(tv_edit *e, int from, int to, tv_filemeta *meta);
int tv_edit_delete_file(tv_edit *e, int level, uint64_t number);
int tv_edit_encode(const tv_edit *e, tv_buf *out);
/* Decodes a manifest record; TROVE_ECORRUPT on malformed input. */
int tv_edit_decode(tv_edit *e, tv_slice rec);

/* A new file meta with copies of the keys; NULL on ENOMEM. */
tv_filemeta *tv_filemeta_new(uint64_t number, uint64_t size, uint64_t entries,
                             tv_slice smallest, tv_slice largest);
void tv_filemeta_free(tv_filemeta *f);

/* Numbers of table files no version holds any more, to be deleted by
 * the caller outside the lock. */
typedef struct tv_deadlist {
	uint64_t *nums;
	int n;
	size_t cap;
} tv_deadlist;

int tv_deadlist_add(tv_deadlist *d, uint64_t number);

typedef struct tv_vset {
	trove_vfs *vfs;
	const char *dir;
	const tv_logger *lg;
	tv_cache *cache;
	tv_version *current;
	uint64_t next_file;
	uint64_t last_seq;   /* sequence covered by the tables */
	uint64_t log_number; /* logs older than this are in the tables */
	uint64_t count;      /* live-key counter as of log_number */
	uint64_t manifest_number;
	tv_log_writer *manifest;
	int manifest_broken; /* last append failed: start a new manifest */
	int busy;            /* a thread is writing the manifest */
	pthread_cond_t busy_cv;
	int read_only;
} tv_vset;

/* Formats dir/NNNNNN.ext into buf. */
void tv_file_path(char *buf, size_t len, const char *dir, uint64_t number,
                  const char *ext);

/* Creates an empty version set for a new database: writes MANIFEST and
 * CURRENT. */
int tv_vs_create(tv_vset *vs);
/* Loads the version set named by CURRENT, opening every table. */
int tv_vs_recover(tv_vset *vs);
void tv_vs_destroy(tv_vset *vs);

/* Writes edit to the manifest (syncs it), then installs the new version
 * and drops the old one (dead files go to dead).  Called with *mu held;
 * drops it during I/O; one edit at a time.  On failure nothing changes
 * (the new file metas in the edit remain owned by it). */
int tv_vs_log_and_apply(tv_vset *vs, tv_edit *e, pthread_mutex_t *mu, tv_deadlist *dead);

/* Writes a complete manifest describing the current state into dir
 * (used by backup with its own next_file/log_number/count) . */
int tv_vs_write_snapshot(trove_vfs *vfs, const char *dir, tv_version *v,
                         uint64_t next_file, uint64_t last_seq,
                         uint64_t log_number, uint64_t count,
                         uint64_t manifest_number);


void tv_version_ref(tv_version *v);
/* Drops a reference; when the last goes, file metas lose theirs, and
 * files no version holds are closed and their numbers added to dead (if
 * not NULL). */
void tv_version_unref(tv_version *v, tv_deadlist *dead);

/* Point lookup of internal key target in the version: calls fn for the
 * first entry at or after target whose stored key matches, searching
 * level 0 newest first, then each level.  hash is tv_bloom_hash of the
 * stored key.  Returns what fn returned (1 = found) or 0, or an error. */
int tv_version_get(tv_version *v, tv_slice target, uint64_t hash,
                   int (*fn)(void *arg, tv_slice ikey, tv_slice value),
                   void *arg);

/* tv_version_get in two halves, so that the caller can do other work
 * (read the memtables) while the filter lines of the tables to ask load:
 * tv_version_get_begin finds the first TV_GET_BATCH tables that may hold
 * the key (level 0 overlapping it and one per deeper level; most of the
 * time all there are) and starts loading their filter lines;
 * tv_version_get_end asks them, and any others, as tv_version_get.
 * target and v must stay put until the end.  A lookup holds nothing to
 * free: a caller that finds its answer elsewhere just drops it. */
#define TV_GET_BATCH 16
typedef struct tv_version_lookup {
	tv_version *v;
	struct tv_version_probe *vp; /* ask through its iterators, or NULL */
	tv_slice target;
	uint64_t hash;
	int (*fn)(void *arg, tv_slice ikey, tv_slice value);
	void *arg;
	int l0, level; /* where gathering goes on */
	tv_filemeta *f[TV_GET_BATCH];
	int slot[TV_GET_BATCH]; /* f[i]'s slot in vp */
	int n;
} tv_version_lookup;
void tv_version_get_begin(tv_version_lookup *lk, tv_version *v, tv_slice target, uint64_t hash);
int tv_version_get_end(tv_version_lookup *lk,
                       int (*fn)(void *arg, tv_slice ikey, tv_slice value), void *arg);

/* tv_version_get for many targets in increasing order (each greater
 * than the one before), cheaper than a tv_version_get each: the tables'
 * iterators it keeps move forward only.  The version must outlive it. */
typedef struct tv_version_probe tv_version_probe;
int tv_version_probe_new(tv_version *v, tv_version_probe **out);
/* tv_version_get_begin through p's iterators: tv_version_get_end asks
 * them.  A lookup begun and dropped moves none of them. */
void tv_version_probe_begin(tv_version_lookup *lk, tv_version_probe *p, tv_slice target,
                            uint64_t hash);
void tv_version_probe_free(tv_version_probe *p);

/* Appends iterators over the whole version to its[] (one per level 0
 * file, one concatenating iterator per deeper level).  Returns how many
 * were added.  They are built in mem, allocating nothing:
 * tv_version_iters_mem(v) bytes aligned for any type, which must outlive
 * them, as must the version. */
int tv_version_iters(tv_version *v, tv_iter **its, int max, void *mem);
size_t tv_version_iters_mem(const tv_version *v);
/* An iterator over the files of one sorted level (level >= 1); fill_cache
 * as for tv_table_iter. */
tv_iter *tv_level_iter(tv_filemeta **files, int n, bool fill_cache);

/* Number of iterators tv_version_iters will produce. */
int tv_version_iter_count(const tv_version *v);

/* Files at level whose stored-key range overlaps [lo, hi] (user parts,
 * NULL = unbounded), in *out (malloc'd). */
int tv_version_overlaps(tv_version *v, int level, const tv_slice *lo,
                        const tv_slice *hi, tv_filemeta ***out, int *n);
/* Whether any file of v, at any level, overlaps [lo, hi] (user parts). */
bool tv_version_overlaps_any(const tv_version *v, tv_slice lo, tv_slice hi);

#endif
