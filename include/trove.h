/*
 * trove.h - Trove, an embedded, durable, ordered key-value store.
 *
 * This header is the manual.  Read the overview, then the section you
 * need; every call says what it guarantees, which errors it returns, who
 * owns the memory it hands back, and whether threads may share it.
 *
 * ---- Overview ----------------------------------------------------------
 *
 * A Trove database is an ordered map from keys to values, both arbitrary
 * byte strings, kept in one directory (or only in memory).  Each key also
 * has a version, a number that grows every time the key is written, and
 * may have an expiry time after which it is gone.
 *
 *   trove_db *db;
 *   trove_options o;
 *   trove_options_init(&o);
 *   int rc = trove_open("./data", &o, &db);
 *   if (rc) { fprintf(stderr, "%s\n", trove_strerror(rc)); ... }
 *   trove_put(db, "k", 1, "v", 1);
 *   void *val; size_t len;
 *   if (trove_get(db, "k", 1, &val, &len) == 0) { ...; trove_free(val); }
 *   trove_close(db);
 *
 * Limits: keys are 1 to TROVE_MAX_KEY (65535) bytes; values are 0 to
 * TROVE_MAX_VALUE (64 MiB) bytes.  Anything larger is refused with
 * TROVE_ETOOBIG and nothing is written.
 *
 * ---- Errors ------------------------------------------------------------
 *
 * Every function that can fail returns an int: 0 for success or one of the
 * negative TROVE_E* codes below; trove_strerror() turns a code into words.
 * Out-parameters are written only on success.  When the engine meets a
 * damaged file it also sends a message naming the file and the byte offset
 * to trove_options.log, and keeps the latest one for trove_errmsg().
 *
 * ---- Durability --------------------------------------------------------
 *
 * With TROVE_SYNC_ALWAYS, a write call returns 0 only once the write is on
 * stable storage: a crash or power loss after that cannot lose it.
 * Concurrent writers share fsyncs (group commit), so many threads writing
 * at once pay for far fewer than one fsync each.  TROVE_SYNC_PERIODIC
 * syncs every sync_period_ms in the background: a crash of the process
 * loses nothing, a power loss loses at most about that much time of
 * writes.  TROVE_SYNC_NONE leaves syncing to the operating system: a crash
 * of the process loses nothing, a power loss may lose any write not yet
 * written back.  Under every policy a crash never leaves a partial batch,
 * a torn record or a reordered history: what survives is a prefix of the
 * writes, in order (after a power loss under the relaxed policies, the
 * open keeps the writes before the first damaged log record and says so
 * through trove_options.log; see docs/ENGINE.md, "Recovery").
 *
 * ---- Threads -----------------------------------------------------------
 *
 * A trove_db may be used by any number of threads at once without locking
 * on the caller's side.  Every write (a put, a delete, a batch, a
 * conditional transaction) is atomic and isolated: readers see all of it
 * or none of it, and writes are totally ordered (their versions tell the
 * order).  A read sees every write that returned before it started.
 * Cursors, batches and key lists belong to one thread at a time; a
 * snapshot may be shared by threads.
 */
#ifndef TROVE_H
#define TROVE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the library's exported functions; everything else in libtrove is
 * hidden, so a program never collides with the engine's internal names. */
#if defined(__GNUC__)
#define TROVE_API __attribute__((visibility("default")))
#else
#define TROVE_API
#endif

#define TROVE_VERSION_STRING "0.1.0"
#define TROVE_MAX_KEY 65535u
#define TROVE_MAX_VALUE (64u << 20)

/* ---- Error codes -------------------------------------------------------- */

enum {
	TROVE_OK = 0,
	TROVE_ENOTFOUND = -1,  /* the key (or database) does not exist */
	TROVE_EINVAL = -2,     /* a bad argument: NULL, empty key, bad flags */
	TROVE_ENOMEM = -3,     /* out of memory */
	TROVE_EIO = -4,        /* the operating system reported an I/O error */
	TROVE_ENOSPC = -5,     /* the disk is full */
	TROVE_ECORRUPT = -6,   /* a file is damaged (see trove_errmsg) */
	TROVE_ELOCKED = -7,    /* another process has the database open */
	TROVE_EEXIST = -8,     /* the key (or database) already exists */
	TROVE_ECONDITION = -9, /* a condition of a write did not hold */
	TROVE_ETOOBIG = -10,   /* a key or value is over the limits */
	TROVE_EREADONLY = -11, /* the database was opened read-only */
	TROVE_ENOENT = -12,    /* a file or directory is missing */
	TROVE_EACCES = -13,    /* permission denied by the file system */
	TROVE_EVERSION = -14,  /* a file has a format version we cannot read */
	TROVE_EBADDB = -15,    /* the database failed earlier (I/O error while
	                          writing); reopen it to recover */
	TROVE_EBUSY = -16,     /* still in use (cursors or snapshots open) */
};

/* A static, human-readable description of code; never NULL. */
TROVE_API const char *trove_strerror(int code);

/* ---- Opening and closing ------------------------------------------------ */

typedef struct trove_db trove_db;
typedef struct trove_vfs trove_vfs; /* file-system layer (internal use) */

typedef enum trove_sync_mode {
	TROVE_SYNC_ALWAYS = 0,   /* every write durable before it returns */
	TROVE_SYNC_PERIODIC = 1, /* synced every sync_period_ms */
	TROVE_SYNC_NONE = 2,     /* the operating system decides */
} trove_sync_mode;

typedef enum trove_compression {
	TROVE_COMPRESS_NONE = 0,
	TROVE_COMPRESS_LZ4 = 1,
	TROVE_COMPRESS_ZSTD = 2,
} trove_compression;

enum { TROVE_LOG_ERROR = 0, TROVE_LOG_WARN = 1, TROVE_LOG_INFO = 2 };

/* Receives the engine's messages (errors with file and offset, recovery
 * notes, background failures).  Called from any thread, possibly while
 * the engine holds internal locks: it must return quickly and must not
 * call back into Trove. */
typedef void (*trove_log_fn)(void *arg, int level, const char *msg);

typedef struct trove_options {
	int create_if_missing;    /* default 1 */
	int error_if_exists;      /* default 0: TROVE_EEXIST if the db exists */
	int read_only;            /* default 0: writes get TROVE_EREADONLY */
	int in_memory;            /* default 0: no files at all; path ignored */
	trove_sync_mode sync;         /* default TROVE_SYNC_ALWAYS */
	uint32_t sync_period_ms;  /* for TROVE_SYNC_PERIODIC; default 1000 */
	size_t memory_budget;     /* bytes for memtables (two of 1/8 each at
	                             most) + block cache (3/4, which also
	                             holds the tables' index and filter
	                             blocks); default 64 MiB, minimum 1 MiB.
	                             docs/ENGINE.md, "Memory", says what
	                             lies outside it */
	trove_compression compression; /* default TROVE_COMPRESS_LZ4 */
	trove_log_fn log;         /* default NULL: messages are dropped */
	void *log_arg;
	trove_vfs *vfs;           /* default NULL: POSIX files */
	int frequent_syncs;       /* default 0; 1: the caller calls trove_sync
	                             after each few writes (as troved does under
	                             its sync always): the log is then written
	                             over zeros as under TROVE_SYNC_ALWAYS, so
	                             that a sync need not commit new blocks
	                             or a new file size */
} trove_options;

/* Fills *o with the defaults above.  Always call it before setting fields,
 * so that fields added later get their defaults. */
TROVE_API void trove_options_init(trove_options *o);

/* Opens (or creates) the database in directory `path`.  Only one trove_db
 * may have a directory open at a time, in any process: a second opener gets
 * TROVE_ELOCKED.  Opening replays the write-ahead log; a torn tail left by
 * a crash is cut off silently, damage elsewhere fails with TROVE_ECORRUPT
 * and a message naming the file and offset.
 * Errors: TROVE_EINVAL (NULL arguments, in_memory with read_only, a bad
 * option value), TROVE_ENOTFOUND (missing and not create_if_missing),
 * TROVE_EEXIST (error_if_exists), TROVE_ELOCKED, TROVE_ECORRUPT,
 * TROVE_EVERSION, TROVE_EIO, TROVE_ENOSPC, TROVE_EACCES, TROVE_ENOMEM.
 * On success *db is a handle to close with trove_close. */
TROVE_API int trove_open(const char *path, const trove_options *opts, trove_db **db);

/* Writes a memtable of 1 MiB or more, or a quarter full, to a table (so
 * the next open replays little), syncs the log, stops background work,
 * releases the lock and frees the handle, even when it returns an error
 * (the error says a final flush failed; what was acknowledged stays safe
 * in the log).  Every
 * cursor and snapshot must be closed first; the handle must not be in use
 * by another thread.  NULL is ignored. */
TROVE_API int trove_close(trove_db *db);

/* The latest detailed error message of this handle (damaged files name the
 * file and offset), or "" if none.  The string is copied into buf (always
 * NUL-terminated); returns buf. */
TROVE_API char *trove_errmsg(trove_db *db, char *buf, size_t len);

/* Frees memory returned by Trove (values, key lists' arrays).  NULL is
 * ignored. */
TROVE_API void trove_free(void *p);

/* ---- Reading ---------------------------------------------------------- */

typedef struct trove_snapshot trove_snapshot;

/* What a read can tell about a key besides its value. */
typedef struct trove_meta {
	uint64_t version;      /* grows with every write of the key */
	int64_t expire_at_ms;  /* absolute Unix time in ms, or 0 for none */
} trove_meta;

/* Reads the value of key.  On success *val is a malloc'd copy of the value
 * (NUL-terminated one byte past *vlen, for convenience; free it with
 * trove_free) and *vlen its length.  An expired key is not found.
 * Errors: TROVE_ENOTFOUND, TROVE_EINVAL, TROVE_ETOOBIG (key), TROVE_EIO,
 * TROVE_ECORRUPT, TROVE_ENOMEM. */
TROVE_API int trove_get(trove_db *db, const void *key, size_t klen, void **val,
              size_t *vlen);

/* trove_get with a snapshot (NULL for the latest state) and the key's
 * metadata; val/vlen may be NULL to fetch only the metadata, meta may be
 * NULL. */
TROVE_API int trove_get_ex(trove_db *db, const trove_snapshot *snap, const void *key,
                 size_t klen, void **val, size_t *vlen, trove_meta *meta);

/* trove_get_ex into the caller's memory: allocates nothing, so a reader
 * that reuses one buffer saves trove_get's malloc, copy and free (about
 * a tenth of a cached read).  On success *vlen is the value's whole
 * length and its first min(*vlen, cap) bytes are in buf (no NUL is
 * added); a value longer than cap is cut, so compare *vlen with cap and
 * call again with a buffer of *vlen bytes if it did not fit (a write in
 * between may change the value: read at a snapshot to get the same one).
 * buf may be NULL when cap is 0, to learn the length alone; snap and meta
 * may be NULL.  buf and the out-parameters are written only on success.
 * Errors: as trove_get, and TROVE_EINVAL for a NULL vlen, or buf NULL
 * with cap > 0.  Thread-safe, like every read. */
TROVE_API int trove_get_into(trove_db *db, const trove_snapshot *snap, const void *key,
                   size_t klen, void *buf, size_t cap, size_t *vlen, trove_meta *meta);

/* 0 if key exists (and has not expired), TROVE_ENOTFOUND if not, or an
 * error.  Cheaper than trove_get: the value is not copied. */
TROVE_API int trove_exists(trove_db *db, const void *key, size_t klen);

/* Reads n keys at one snapshot (so the results are mutually consistent).
 * For each i, status[i] is 0 (vals[i], vlens[i] set, free vals[i] with
 * trove_free), TROVE_ENOTFOUND (vals[i] = NULL) or an error.  Returns 0 if
 * every lookup ran (whether or not the keys exist), else the first error
 * that stopped it. */
TROVE_API int trove_mget(trove_db *db, const trove_snapshot *snap, size_t n,
               const void *const *keys, const size_t *klens, void **vals,
               size_t *vlens, int *status);

/* Remaining time to live of key in ms in *ttl_ms, or -1 if it has no
 * expiry.  TROVE_ENOTFOUND if the key does not exist. */
TROVE_API int trove_ttl(trove_db *db, const void *key, size_t klen, int64_t *ttl_ms);

/* ---- Writing -------------------------------------------------------------
 *
 * Every write below is atomic.  A successful write gets the next version
 * of the database; conditions are checked and the write applied as one
 * indivisible step, so two racing put-if-absent calls never both succeed.
 */

/* Sets key to val (replacing any value and dropping any expiry). */
TROVE_API int trove_put(trove_db *db, const void *key, size_t klen, const void *val,
              size_t vlen);

/* Removes key; succeeds whether or not it existed. */
TROVE_API int trove_del(trove_db *db, const void *key, size_t klen);

/* The condition a conditional write checks, evaluated on the key's state
 * at the moment the write commits. */
typedef enum trove_cond_kind {
	TROVE_IF_ANY = 0,     /* no condition */
	TROVE_IF_ABSENT,      /* key does not exist */
	TROVE_IF_PRESENT,     /* key exists */
	TROVE_IF_VALUE,       /* key exists and its value equals value */
	TROVE_IF_VERSION,     /* key's version equals version (0 = absent) */
	TROVE_IF_UNCHANGED,   /* TROVE_IF_VERSION for a version a read returned:
	                         see `since` */
} trove_cond_kind;

typedef struct trove_cond {
	trove_cond_kind kind;
	const void *value;    /* TROVE_IF_VALUE */
	size_t value_len;
	uint64_t version;     /* TROVE_IF_VERSION, TROVE_IF_UNCHANGED */
	uint64_t since;       /* TROVE_IF_UNCHANGED: trove_last_version(),
	                         taken before the read that returned version */
} trove_cond;

/* TROVE_IF_UNCHANGED is the condition of a read-modify-write: it holds
 * if nothing wrote the key since the read that gave `version` (its
 * trove_meta.version, or 0 if it found no key), as TROVE_IF_VERSION
 * would, and lets the commit skip reading the key again when no write
 * since `since` can have reached the tables and no memtable holds the
 * key: the state the read saw is then the key's state (one lookup per
 * INCR instead of two).  `since` must be a trove_last_version() taken
 * before that read.  The engine takes the pair on trust: with a version
 * from another read the condition may hold though the key changed, and
 * the live-key count (trove_count) may go wrong. */

/* How trove_put_ex treats the key's expiry. */
typedef enum trove_ttl_mode {
	TROVE_TTL_NONE = 0,   /* the key has no expiry after the write */
	TROVE_TTL_AT,         /* it expires at expire_at_ms (absolute Unix ms) */
	TROVE_TTL_IN,         /* it expires ttl_ms from now */
	TROVE_TTL_KEEP,       /* it keeps the expiry it had (if any) */
} trove_ttl_mode;

typedef struct trove_put_opts {
	trove_cond cond;
	trove_ttl_mode ttl_mode;
	int64_t expire_at_ms; /* TROVE_TTL_AT: > 0 */
	int64_t ttl_ms;       /* TROVE_TTL_IN: > 0 */
} trove_put_opts;

/* The generic conditional put.  opts may be NULL (a plain put).  If the
 * condition fails nothing is written and TROVE_ECONDITION is returned
 * (TROVE_IF_PRESENT and TROVE_IF_VALUE on a missing key also give
 * TROVE_ECONDITION).  An expiry in the past makes the key expire at once.
 * On success *version (if not NULL) receives the key's new version.
 * Errors: TROVE_EINVAL, TROVE_ETOOBIG, TROVE_ECONDITION, TROVE_EREADONLY,
 * TROVE_EIO, TROVE_ENOSPC, TROVE_EBADDB, TROVE_ENOMEM. */
TROVE_API int trove_put_ex(trove_db *db, const void *key, size_t klen, const void *val,
                 size_t vlen, const trove_put_opts *opts, uint64_t *version);

/* Thin wrappers over trove_put_ex. */
TROVE_API int trove_put_if_absent(trove_db *db, const void *key, size_t klen,
                        const void *val, size_t vlen);  /* else TROVE_EEXIST */
TROVE_API int trove_put_if_present(trove_db *db, const void *key, size_t klen,
                         const void *val, size_t vlen); /* else TROVE_ENOTFOUND */
/* Compare-and-swap on the value: TROVE_ECONDITION if the key is missing or
 * its value differs from expected. */
TROVE_API int trove_cas(trove_db *db, const void *key, size_t klen, const void *expected,
              size_t elen, const void *val, size_t vlen);
/* Compare-and-swap on the version (0 = the key must be absent). */
TROVE_API int trove_cas_version(trove_db *db, const void *key, size_t klen,
                      uint64_t version, const void *val, size_t vlen);
/* Put with a time to live of ttl_ms milliseconds (> 0). */
TROVE_API int trove_put_ttl(trove_db *db, const void *key, size_t klen, const void *val,
                  size_t vlen, int64_t ttl_ms);

/* The generic conditional delete; cond may be NULL.  *deleted (if not
 * NULL) is set to 1 if a live key was removed, 0 if there was none (which
 * is not an error unless the condition demands presence). */
TROVE_API int trove_del_ex(trove_db *db, const void *key, size_t klen,
                 const trove_cond *cond, int *deleted);
/* Deletes key if it exists: 0 if it did, TROVE_ENOTFOUND if not. */
TROVE_API int trove_del_if_exists(trove_db *db, const void *key, size_t klen);

/* Sets an existing key's expiry to expire_at_ms (absolute Unix ms; 0
 * removes it) without changing its value.  The key's version grows.
 * TROVE_ENOTFOUND if the key does not exist. */
TROVE_API int trove_expire_at(trove_db *db, const void *key, size_t klen,
                    int64_t expire_at_ms);
/* Removes key's expiry: 0 if it had one, TROVE_ENOTFOUND if the key is
 * missing, TROVE_ECONDITION if it had none (nothing written). */
TROVE_API int trove_persist(trove_db *db, const void *key, size_t klen);

/* ---- Batches and conditional transactions ---------------------------------
 *
 * A batch collects writes (puts, deletes, expiry changes) over any keys and
 * conditions over any keys.  trove_write applies it as one atomic, durable
 * step: if every condition holds at commit time, every write is applied
 * (later writes of the same key win) and all get one version; otherwise
 * nothing is written.  A batch is reusable after trove_batch_clear and is
 * used by one thread at a time.  The batch copies keys and values.
 */

typedef struct trove_batch trove_batch;

/* NULL on ENOMEM. */
TROVE_API trove_batch *trove_batch_new(void);
TROVE_API void trove_batch_free(trove_batch *b);
TROVE_API void trove_batch_clear(trove_batch *b);
/* Number of writes and of conditions in the batch. */
TROVE_API size_t trove_batch_count(const trove_batch *b);
TROVE_API size_t trove_batch_conditions(const trove_batch *b);

/* Each returns 0, TROVE_EINVAL, TROVE_ETOOBIG or TROVE_ENOMEM; on error the
 * batch is unchanged. */
TROVE_API int trove_batch_put(trove_batch *b, const void *key, size_t klen,
                    const void *val, size_t vlen);
/* expire_at_ms: absolute Unix ms, 0 for none. */
TROVE_API int trove_batch_put_ttl(trove_batch *b, const void *key, size_t klen,
                        const void *val, size_t vlen, int64_t expire_at_ms);
TROVE_API int trove_batch_del(trove_batch *b, const void *key, size_t klen);
/* Changes the expiry of key if it exists at commit (0 removes it); a
 * missing key is left missing and does not fail the batch. */
TROVE_API int trove_batch_expire_at(trove_batch *b, const void *key, size_t klen,
                          int64_t expire_at_ms);
/* Adds a condition (kind != TROVE_IF_ANY) on key. */
TROVE_API int trove_batch_require(trove_batch *b, const void *key, size_t klen,
                        const trove_cond *cond);

typedef struct trove_write_result {
	uint64_t version;      /* the version given to every write */
	size_t failed;         /* TROVE_ECONDITION: index of the failed
	                          condition, in the order they were added */
	int removed;           /* number of deletes that removed a live key */
} trove_write_result;

/* Applies batch b atomically.  res may be NULL.  An empty batch succeeds
 * (its conditions are still checked).  Errors: TROVE_ECONDITION (res->failed
 * says which), TROVE_EINVAL, TROVE_EREADONLY, TROVE_EIO, TROVE_ENOSPC,
 * TROVE_EBADDB, TROVE_ENOMEM. */
TROVE_API int trove_write(trove_db *db, const trove_batch *b, trove_write_result *res);

/* ---- Snapshots ------------------------------------------------------------
 *
 * A snapshot is the database frozen at one moment: reads through it never
 * see later writes.  Writers go on meanwhile; old versions the snapshot
 * needs are kept until it is released, so do not hold snapshots for
 * hours.  Expiry is judged against the clock at read time, so a key that
 * expires after the snapshot was taken disappears from it too.
 */

/* NULL on ENOMEM (or a NULL db). */
TROVE_API trove_snapshot *trove_snapshot_new(trove_db *db);
TROVE_API void trove_snapshot_free(trove_db *db, trove_snapshot *snap);
/* The version of the last write the snapshot sees. */
TROVE_API uint64_t trove_snapshot_version(const trove_snapshot *snap);
/* The version of the newest write a read can see now: what a snapshot
 * taken now would have, without taking one.  Thread-safe, lock-free. */
TROVE_API uint64_t trove_last_version(trove_db *db);

/* ---- Cursors ----------------------------------------------------------------
 *
 * A cursor walks keys in order (bytewise, shorter first on ties) over one
 * snapshot, forwards and backwards.  Bounds limit it to
 * lower <= key < upper; a prefix limits it to keys starting with prefix.
 * Positioning calls return 0 when the cursor lands on a key,
 * TROVE_ENOTFOUND when it runs off the range, or an error.
 */

typedef struct trove_cursor trove_cursor;

typedef struct trove_cursor_opts {
	const trove_snapshot *snap;  /* NULL: a snapshot taken at open */
	const void *lower;           /* inclusive; NULL for none */
	size_t lower_len;
	const void *upper;           /* exclusive; NULL for none */
	size_t upper_len;
	const void *prefix;          /* NULL for none */
	size_t prefix_len;
} trove_cursor_opts;

/* opts may be NULL.  The cursor starts unpositioned.  The bounds are
 * copied. */
TROVE_API int trove_cursor_open(trove_db *db, const trove_cursor_opts *opts,
                      trove_cursor **out);
TROVE_API void trove_cursor_close(trove_cursor *c);
TROVE_API int trove_cursor_first(trove_cursor *c);
TROVE_API int trove_cursor_last(trove_cursor *c);
TROVE_API int trove_cursor_next(trove_cursor *c);  /* TROVE_EINVAL if unpositioned */
TROVE_API int trove_cursor_prev(trove_cursor *c);
/* First key >= key. */
TROVE_API int trove_cursor_seek(trove_cursor *c, const void *key, size_t klen);
/* Last key <= key. */
TROVE_API int trove_cursor_seek_for_prev(trove_cursor *c, const void *key, size_t klen);
TROVE_API int trove_cursor_valid(const trove_cursor *c);
/* The current key and value, valid until the cursor moves or closes; NULL
 * (and 0 length) when not positioned. */
TROVE_API const void *trove_cursor_key(const trove_cursor *c, size_t *klen);
TROVE_API const void *trove_cursor_value(const trove_cursor *c, size_t *vlen);
/* Metadata of the current key. */
TROVE_API int trove_cursor_meta(const trove_cursor *c, trove_meta *meta);

/* ---- Listing keys page by page ----------------------------------------- */

typedef struct trove_key_list {
	size_t count;       /* keys in this page */
	void **keys;        /* keys[i] has lens[i] bytes */
	size_t *lens;
	int more;           /* 1 if keys remain after the last one */
} trove_key_list;

/* Lists up to limit keys (limit > 0) in order, starting after `after`
 * (NULL: from the start), restricted to prefix (NULL: none).  To fetch the
 * next page, pass the last key of this page as `after`.  Free with
 * trove_key_list_free. */
TROVE_API int trove_list_keys(trove_db *db, const trove_snapshot *snap,
                    const void *prefix, size_t plen, const void *after,
                    size_t alen, size_t limit, trove_key_list *out);
TROVE_API void trove_key_list_free(trove_key_list *l);

/* ---- Metadata and statistics --------------------------------------------- */

/* The exact number of live (present, unexpired) keys, in *n.  Cheap: the
 * engine keeps the count as it writes.  Plain puts and deletes of keys not
 * written recently are counted lazily: the first trove_count after many
 * of them settles each with a point read (~1 us apiece), once. */
TROVE_API int trove_count(trove_db *db, uint64_t *n);

/* Bytes the database occupies on disk (tables and logs). */
TROVE_API int trove_disk_size(trove_db *db, uint64_t *bytes);

typedef struct trove_stats {
	uint64_t reads;            /* point reads (get, exists, mget keys) */
	uint64_t writes;           /* committed write operations */
	uint64_t write_groups;     /* group commits */
	uint64_t syncs;            /* fsyncs of the write-ahead log */
	uint64_t conflicts;        /* conditional writes that failed */
	uint64_t wal_bytes;        /* bytes appended to the write-ahead log */
	uint64_t table_bytes;      /* bytes written to table files */
	uint64_t flushes;          /* memtables written to tables */
	uint64_t compactions;
	uint64_t compaction_bytes_read;
	uint64_t cache_hits;
	uint64_t cache_misses;
	uint64_t stalls;           /* writes slowed or paused for compaction */
	uint64_t stall_us;         /* total time spent so */
	uint64_t expired_reaped;   /* expired keys removed in the background */
	uint64_t memtable_bytes;   /* memory held by memtables now, and
	                              kept from flushed ones for the next */
	uint64_t cache_bytes;      /* memory the block cache accounts for now:
	                              cached blocks, table_meta_bytes and
	                              freed blocks kept for reuse */
	uint64_t table_files;      /* live table files */
	uint64_t level_files[7];   /* table files per level */
	uint64_t level_bytes[7];   /* bytes per level */
	uint64_t last_version;     /* the version of the latest write */
	uint64_t table_meta_bytes; /* index and filter blocks of open tables */
} trove_stats;

TROVE_API int trove_get_stats(trove_db *db, trove_stats *st);

/* ---- Maintenance ---------------------------------------------------------- */

/* Writes a consistent copy of the database into directory dir (created; it
 * must not exist or be empty) while reads and writes go on.  The copy is
 * the database as of one moment during the call, and opens as a normal
 * database.  Not available for in-memory databases (TROVE_EINVAL). */
TROVE_API int trove_backup(trove_db *db, const char *dir);

/* Compacts the tables holding keys in [lo, hi] (NULL: unbounded) down the
 * levels, reclaiming the space of deleted, overwritten and expired data.
 * Blocks until done. */
TROVE_API int trove_compact_range(trove_db *db, const void *lo, size_t lolen,
                        const void *hi, size_t hilen);

/* Receives each problem trove_verify finds. */
typedef void (*trove_verify_fn)(void *arg, const char *file, uint64_t offset,
                                const char *msg);

/* Reads every file of the database, checks every checksum and that keys
 * are in order, calling report (may be NULL) for each problem with the
 * file name and byte offset.  Returns 0 if everything is intact,
 * TROVE_ECORRUPT if anything is damaged, or an I/O error. */
TROVE_API int trove_verify(trove_db *db, trove_verify_fn report, void *arg);

/* Makes every acknowledged write durable now (useful with
 * TROVE_SYNC_NONE or TROVE_SYNC_PERIODIC). */
TROVE_API int trove_sync(trove_db *db);

/* Writes the memtable out to a table file now and waits for it.  If an
 * attempt fails (ENOSPC, EIO) while it waits, returns that error; the
 * flush is retried in the background until it succeeds. */
TROVE_API int trove_flush(trove_db *db);

#ifdef __cplusplus
}
#endif

#endif
