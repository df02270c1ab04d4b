/*
 * backend.h - the one interface every engine of the benchmark sits behind.
 *
 * bench/main.c drives workloads through a bench_engine table; each
 * bench/bench_<engine>.c fills one in with calls to that engine's own
 * public API and nothing else.  A backend never decides what to measure:
 * it opens, reads, writes and scans exactly as asked, the way the engine's
 * documentation says to, and reports what its choices mean in `notes`.
 *
 * Threads: `db` is shared by every thread of a run; each thread first
 * attaches its own context (for engines whose handles are per thread:
 * SQLite connections, LMDB read transactions) and passes that context to
 * every call.  A backend whose engine is not thread-safe serialises calls
 * behind a lock of its own and says so in `notes`.
 */
#ifndef BENCH_BACKEND_H
#define BENCH_BACKEND_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

/* What the driver asks of an engine when it opens one. */
typedef struct bench_opts {
	size_t cache_bytes;     /* the memory budget for the engine's cache */
	int sync;               /* 1: every acknowledged write is on stable
	                           storage; 0: the engine's fastest mode that
	                           still survives a crash of the process */
	uint64_t expected_keys; /* sizing hint (hash buckets, LMDB map size) */
} bench_opts;

/* One key-value pair of a batch. */
typedef struct bench_kv {
	const void *key;
	size_t klen;
	const void *val;
	size_t vlen;
} bench_kv;

enum {
	BENCH_ORDERED = 1,      /* keys are kept in order: scans and seeks */
	BENCH_ATOMIC_BATCH = 2, /* a batch is all-or-nothing across a crash */
	BENCH_HASH = 4,         /* a hash engine (for the targets of issue 3) */
};

/* Every call returns 0 on success and -1 on an error it has already
 * printed to stderr (naming the engine and the call).  get returns 1 when
 * the key is absent. */
typedef struct bench_engine {
	const char *name;  /* short, used as a column name: no spaces */
	const char *notes; /* what sync and the cache cap mean for it, and
	                      every non-default choice the backend makes */
	unsigned caps;     /* BENCH_* flags */

	/* The library's version as it reports it at run time. */
	const char *(*version)(void);

	/* Creates (or opens) the database inside directory dir, which exists
	 * and is empty on first use. */
	int (*open)(const char *dir, const bench_opts *o, void **db);
	/* Closes cleanly: on return every file is complete on disk (as far
	 * as the engine's close promises), so the driver can measure it. */
	void (*close)(void *db);

	/* A context for the calling thread; detach before close. */
	int (*attach)(void *db, void **ctx);
	void (*detach)(void *ctx);

	int (*put)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen);
	/* Copies the value (all of it, or cap bytes if it is longer) into buf
	 * and sets *vlen to its full length. */
	int (*get)(void *ctx, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);
	int (*del)(void *ctx, const void *key, size_t klen);
	/* Writes n pairs as one batch: atomically where caps says so. */
	int (*batch_put)(void *ctx, const bench_kv *kv, size_t n);
	/* Reads up to n entries in key order from the first key >= start
	 * (start NULL: from the first key), or, if reverse, backwards from the
	 * last key (start is then always NULL).  Every key and value read is
	 * touched; *bytes grows by their lengths.  Returns the number of
	 * entries read, or -1.  NULL for engines without BENCH_ORDERED. */
	long (*scan)(void *ctx, int reverse, const void *start, size_t slen, long n,
	             uint64_t *bytes);
	/* Optional (NULL if none): prints the engine's own counters to out,
	 * for `trove-bench --stats`; called just before close. */
	void (*stats)(void *db, FILE *out);
} bench_engine;

/* Touches a key and a value the way every backend's scan does, so that
 * no engine is charged for more or less work than another. */
static inline void bench_touch(uint64_t *bytes, const void *k, size_t kl, const void *v, size_t vl)
{
	*bytes += kl + vl + (kl ? ((const unsigned char *)k)[0] : 0) +
	          (vl ? ((const unsigned char *)v)[vl - 1] : 0);
}

/* Copies a value into the caller's buffer (the common tail of get). */
static inline void bench_copy_out(void *buf, size_t cap, const void *v, size_t vl, size_t *vlen)
{
	memcpy(buf, v, vl < cap ? vl : cap);
	*vlen = vl;
}

/* Prints "engine: what: detail" to stderr; returns -1. */
int bench_fail(const char *engine, const char *what, const char *detail);

/* The engines, defined one per bench/bench_<name>.c. */
extern const bench_engine bench_trove, bench_lmdb, bench_leveldb, bench_rocksdb, bench_bdb,
        bench_gdbm, bench_kyoto_tree, bench_kyoto_hash, bench_tkrzw_hash, bench_tkrzw_tree,
        bench_sqlite;

#endif
