/*
 * compact.c - background work: flushes, compactions, periodic syncs, the
 * expiry reaper and the memtable pool's trim.
 *
 * Three threads serve each writable database:
 *   - the flush thread writes the immutable memtable to a level-0 table
 *     and retires the logs it covered;
 *   - the compaction thread merges tables down the levels (leveled
 *     compaction: level 0 into level 1 when it has TV_L0_COMPACT files,
 *     level n into n+1 when it outgrows its budget, ten times the level
 *     above), dropping versions no snapshot can see and tombstones that
 *     reach the bottom of their key's levels;
 *   - the timer thread syncs the log every sync_period_ms under
 *     TROVE_SYNC_PERIODIC, deletes expired keys and has the memtable
 *     pool give back what it keeps beyond one memtable once writes stop.
 * None of them ever removes a file a version still lists: outputs are
 * recorded in the manifest before inputs are forgotten, and inputs are
 * deleted only when no reader pins them.  A failed flush or compaction
 * deletes its partial outputs, records the error (writers that must wait
 * for it get it) and retries after a pause.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bloom.h"
#include "db.h"
#include "ikey.h"

/* Level 1's budget is this many memtables; each deeper level holds ten
 * times the one above. */
#define L1_MEMTABLES 4
#define LEVEL_RATIO 10

static uint64_t target_file_size(const trove_db *db)
{
	uint64_t t = db->write_buffer / 2;
	return t < (2u << 20) ? (2u << 20) : t;
}

static double level_budget(const trove_db *db, int level)
{
	double b = (double)db->write_buffer * L1_MEMTABLES;
	for (int l = 1; l < level; l++)
		b *= LEVEL_RATIO;
	return b;
}

static void timed_wait(trove_db *db, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&db->bg_cv, &db->mu, &ts);
}

static tv_table_opts table_opts(const trove_db *db)
{
	tv_table_opts o;
	memset(&o, 0, sizeof o);
	o.compression = db->opts.compression;
	o.block_size = 4096;
	o.bloom_bits_per_key = 10;
	return o;
}

/* ---- Writing tables --------------------------------------------------------------
 *
 * An output is one table file being written: created, filled, finished,
 * synced, closed and reopened for reading, so that what enters a version
 * has been read back once.
 */

typedef struct output {
	trove_db *db;
	uint64_t number;
	tv_file *file;
	tv_table_builder *b;
	tv_buf smallest, largest;
	char path[4096];
} output;

static int output_open(output *o, trove_db *db)
{
	memset(o, 0, sizeof *o);
	o->db = db;
	tv_buf_init(&o->smallest);
	tv_buf_init(&o->largest);
	pthread_mutex_lock(&db->mu);
	o->number = db->vs.next_file++;
	pthread_mutex_unlock(&db->mu);
	tv_file_path(o->path, sizeof o->path, db->path, o->number, "sst");
	int rc = db->vfs->open(db->vfs, o->path, TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &o->file);
	if (rc)
		return rc;
	tv_table_opts to = table_opts(db);
	return tv_table_builder_new(o->file, &to, &o->b);
}

/* Adds an entry; hash, if not NULL, points to its user key's
 * tv_bloom_hash. */
static int output_add(output *o, tv_slice ikey, tv_slice value, const uint64_t *hash)
{
	int rc = hash ? tv_table_add_hashed(o->b, ikey, value, *hash)
	              : tv_table_add(o->b, ikey, value);
	if (rc)
		return rc;
	if (o->smallest.len == 0)
		rc = tv_buf_append(&o->smallest, ikey.data, ikey.len);
	tv_buf_clear(&o->largest);
	return rc ? rc : tv_buf_append(&o->largest, ikey.data, ikey.len);
}

/* Frees what the output holds and removes its file. */
static void output_abandon(output *o)
{
	if (o->b)
		tv_table_builder_free(o->b);
	if (o->file)
		o->file->vfs->close(o->file);
	if (o->number)
		o->db->vfs->remove(o->db->vfs, o->path);
	tv_buf_free(&o->smallest);
	tv_buf_free(&o->largest);
	memset(o, 0, sizeof *o);
}

/* Finishes the table and returns its meta (with the reader open). */
static int output_finish(output *o, tv_filemeta **out)
{
	trove_db *db = o->db;
	uint64_t size = 0, entries = tv_table_builder_entries(o->b);
	int rc = tv_table_finish(o->b, &size);
	if (!rc)
		rc = o->file->vfs->sync(o->file);
	int rc2 = o->file->vfs->close(o->file);
	o->file = NULL;
	if (!rc)
		rc = rc2;
	tv_filemeta *m = NULL;
	if (!rc) {
		m = tv_filemeta_new(o->number, size, entries, tv_buf_slice(&o->smallest),
		                    tv_buf_slice(&o->largest));
		if (!m)
			rc = TROVE_ENOMEM;
	}
	if (!rc)
		rc = tv_table_open(db->vfs, o->path, o->number, db->cache, &db->lg, &m->table);
	if (rc) {
		tv_filemeta_free(m);
		output_abandon(o);
		return rc;
	}
	atomic_fetch_add_explicit(&db->st_table_bytes, size, memory_order_relaxed);
	tv_table_builder_free(o->b);
	o->b = NULL;
	tv_buf_free(&o->smallest);
	tv_buf_free(&o->largest);
	*out = m;
	return 0;
}

int tv_write_level0(trove_db *db, tv_memtable *m, tv_version *under, tv_filemeta **out,
                    int64_t *unresolved)
{
	*out = NULL;
	*unresolved = 0;
	tv_iter *it = tv_mem_iter(m);
	if (!it)
		return TROVE_ENOMEM;
	tv_iter_seek_first(it);
	if (!tv_iter_valid(it)) {
		tv_iter_destroy(it);
		return 0;
	}
	tv_flush_resolver r;
	output o;
	int rc = tv_flush_resolver_init(&r, m, under);
	if (!rc)
		rc = output_open(&o, db);
	else
		memset(&o, 0, sizeof o);
	for (; !rc && tv_iter_valid(it); tv_iter_next(it)) {
		/* One hash of the key for its read and the table's filter. */
		uint64_t hash = tv_bloom_hash(tv_ikey_user(tv_iter_key(it)));
		rc = tv_flush_resolver_add(&r, tv_iter_key(it), hash);
		if (!rc)
			rc = output_add(&o, tv_iter_key(it), tv_iter_value(it), &hash);
	}
	if (!rc)
		rc = tv_iter_status(it);
	if (!rc)
		rc = tv_flush_resolver_finish(&r, unresolved);
	tv_flush_resolver_fini(&r);
	tv_iter_destroy(it);
	if (rc) {
		output_abandon(&o);
		return rc;
	}
	/* The new table must be findable by name after a crash. */
	rc = output_finish(&o, out);
	if (!rc && (rc = db->vfs->sync_dir(db->vfs, db->path)) != 0) {
		tv_filemeta_free(*out);
		*out = NULL;
		db->vfs->remove(db->vfs, o.path);
	}
	return rc;
}

/* ---- Flushing ------------------------------------------------------------------------ */

/* Removes logs the tables now cover (mu held). */
static void remove_old_logs(trove_db *db)
{
	if (db->backups > 0 || !db->use_wal)
		return;
	char path[4096];
	for (uint64_t n = db->logs_removed_below; n < db->vs.log_number; n++) {
		tv_file_path(path, sizeof path, db->path, n, "log");
		db->vfs->remove(db->vfs, path);
	}
	db->logs_removed_below = db->vs.log_number;
}

int tv_flush_imm(trove_db *db)
{
	tv_memtable *m = db->imm;
	if (!m)
		return 0;
	tv_super *s = db->super;
	assert(s->imm == m);
	atomic_fetch_add(&s->refs, 1);
	uint64_t next_log = db->imm_next_log, seq = db->imm_seq, count = db->imm_count;
	pthread_mutex_unlock(&db->mu);
	/* Writes that did not read their keys' prior state are resolved
	 * while the memtable is written out, against the tables under it:
	 * the manifest's count is exact. */
	int64_t unresolved = 0;
	tv_filemeta *meta = NULL;
	int rc = tv_write_level0(db, m, s->version, &meta, &unresolved);
	tv_super_put(db, s);
	pthread_mutex_lock(&db->mu);
	if (rc)
		return rc;
	tv_edit e;
	tv_edit_init(&e);
	if (meta && (rc = tv_edit_add_file(&e, 0, meta)) != 0) {
		tv_filemeta_free(meta);
		return rc;
	}
	e.has_log_number = e.has_last_seq = e.has_count = 1;
	e.log_number = db->use_wal ? next_log : 0;
	e.last_seq = seq;
	e.count = (uint64_t)((int64_t)count + unresolved);
	tv_deadlist dead = { 0 };
	/* If this fails the table stays: a failed manifest sync may still
	 * have put the edit naming it on disk.  The next open deletes it if
	 * no manifest names it. */
	rc = tv_vs_log_and_apply(&db->vs, &e, &db->mu, &dead);
	tv_edit_free(&e);
	if (rc)
		return rc;
	tv_mem_unref(db->imm);
	db->imm = NULL;
	db->count = (uint64_t)((int64_t)db->count + unresolved);
	atomic_fetch_add_explicit(&db->st_flushes, 1, memory_order_relaxed);
	rc = tv_super_install(db);
	remove_old_logs(db);
	tv_delete_dead(db, &dead);
	pthread_cond_broadcast(&db->bg_cv);
	return rc;
}

/* Waits with the lock held for a pause that grows with repeated failures. */
static void back_off(trove_db *db, int *failures)
{
	long ms = 50L << (*failures < 5 ? *failures : 5);
	(*failures)++;
	timed_wait(db, ms);
}

void *tv_flush_main(void *arg)
{
	trove_db *db = arg;
	int failures = 0;
	pthread_mutex_lock(&db->mu);
	while (!db->shutting_down) {
		if (!db->imm) {
			pthread_cond_wait(&db->bg_cv, &db->mu);
			continue;
		}
		int rc = tv_flush_imm(db);
		if (rc) {
			db->bg_error = rc;
			db->flush_failures++;
			db->flush_error = rc;
			tv_logf(&db->lg, TROVE_LOG_WARN, "flush failed: %s; will retry",
			        trove_strerror(rc));
			pthread_cond_broadcast(&db->bg_cv);
			back_off(db, &failures);
		} else {
			db->bg_error = 0;
			failures = 0;
		}
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

/* ---- Compaction ------------------------------------------------------------------------- */

typedef struct compaction {
	int level;             /* inputs from level and level + 1 */
	tv_filemeta **in[2];
	int nin[2];
	tv_version *version;   /* pinned while the compaction runs */
	uint64_t smallest_snapshot;
} compaction;

static void compaction_free(trove_db *db, compaction *c)
{
	free(c->in[0]);
	free(c->in[1]);
	if (c->version) {
		tv_deadlist dead = { 0 };
		pthread_mutex_lock(&db->mu);
		tv_version_unref(c->version, &dead);
		pthread_mutex_unlock(&db->mu);
		tv_delete_dead(db, &dead);
	}
	memset(c, 0, sizeof *c);
}

/* The user-key range covered by files. */
static void files_range(tv_filemeta **f, int n, tv_slice *lo, tv_slice *hi)
{
	*lo = tv_ikey_user(tv_fm_smallest(f[0]));
	*hi = tv_ikey_user(tv_fm_largest(f[0]));
	for (int i = 1; i < n; i++) {
		tv_slice a = tv_ikey_user(tv_fm_smallest(f[i])), b = tv_ikey_user(tv_fm_largest(f[i]));
		if (tv_slice_cmp(a, *lo) < 0)
			*lo = a;
		if (tv_slice_cmp(b, *hi) > 0)
			*hi = b;
	}
}

/* Fills the inputs at level + 1 that overlap the level inputs. */
static int add_next_level(compaction *c)
{
	tv_slice lo, hi;
	files_range(c->in[0], c->nin[0], &lo, &hi);
	return tv_version_overlaps(c->version, c->level + 1, &lo, &hi, &c->in[1], &c->nin[1]);
}

/* Chooses the most urgent compaction (mu and compact_mu held); returns 1
 * if one was chosen. */
static int pick_compaction(trove_db *db, compaction *c)
{
	tv_version *v = db->vs.current;
	double best = 1.0;
	int level = -1;
	if ((double)v->nfiles[0] / TV_L0_COMPACT >= best) {
		best = (double)v->nfiles[0] / TV_L0_COMPACT;
		level = 0;
	}
	for (int l = 1; l < TV_LEVELS - 1; l++) {
		double score = (double)v->level_bytes[l] / level_budget(db, l);
		if (score > best) {
			best = score;
			level = l;
		}
	}
	if (level < 0)
		return 0;
	memset(c, 0, sizeof *c);
	c->level = level;
	c->version = v;
	tv_version_ref(v);
	c->smallest_snapshot = tv_oldest_snapshot(db);
	int n = level == 0 ? v->nfiles[0] : 1;
	c->in[0] = malloc((size_t)n * sizeof *c->in[0]);
	if (!c->in[0])
		return 0;
	if (level == 0) {
		memcpy(c->in[0], v->files[0], (size_t)n * sizeof *c->in[0]);
	} else {
		/* Round robin through the level by key. */
		int pick = 0;
		tv_slice ptr = tv_slice_make(db->compact_ptr[level], db->compact_ptr_len[level]);
		for (int i = 0; ptr.len && i < v->nfiles[level]; i++)
			if (tv_ikey_cmp(tv_fm_largest(v->files[level][i]), ptr) > 0) {
				pick = i;
				break;
			}
		c->in[0][0] = v->files[level][pick];
		tv_slice lg = tv_fm_largest(c->in[0][0]);
		memcpy(db->compact_ptr[level], lg.data, lg.len);
		db->compact_ptr_len[level] = lg.len;
	}
	c->nin[0] = n;
	return add_next_level(c) == 0;
}

/* True if no level below out_level may hold user key k. */
static int is_base_level(const compaction *c, int out_level, tv_slice k)
{
	for (int l = out_level + 1; l < TV_LEVELS; l++) {
		tv_version *v = c->version;
		for (int i = 0; i < v->nfiles[l]; i++) {
			tv_filemeta *f = v->files[l][i];
			if (tv_slice_cmp(k, tv_ikey_user(tv_fm_largest(f))) <= 0) {
				if (tv_slice_cmp(k, tv_ikey_user(tv_fm_smallest(f))) >= 0)
					return 0;
				break;
			}
		}
	}
	return 1;
}

static tv_iter *compaction_iter(compaction *c)
{
	int n = (c->level == 0 ? c->nin[0] : 1) + 1;
	tv_iter **its = calloc((size_t)n, sizeof *its);
	if (!its)
		return NULL;
	int k = 0;
	/* Inputs are read once: they do not go through the cache, where they
	 * would evict what readers use. */
	if (c->level == 0) {
		for (int i = 0; i < c->nin[0]; i++)
			its[k++] = tv_table_iter(c->in[0][i]->table, false);
	} else {
		its[k++] = tv_level_iter(c->in[0], c->nin[0], false);
	}
	its[k++] = tv_level_iter(c->in[1], c->nin[1], false);
	for (int i = 0; i < k; i++)
		if (!its[i]) {
			for (int j = 0; j < k; j++)
				tv_iter_destroy(its[j]);
			free(its);
			return NULL;
		}
	tv_iter *m = tv_iter_merge(its, k);
	free(its);
	return m;
}

/* Merges the inputs into new tables at level + 1, recorded in e. */
static int run_merge(trove_db *db, compaction *c, tv_edit *e)
{
	int out_level = c->level + 1;
	tv_iter *it = compaction_iter(c);
	if (!it)
		return TROVE_ENOMEM;
	output o;
	int have_out = 0, rc = 0;
	tv_buf cur;
	tv_buf_init(&cur);
	int have_cur = 0;
	uint64_t last_seq_for_key = 0;
	uint64_t limit = target_file_size(db);
	for (tv_iter_seek_first(it); !rc && tv_iter_valid(it); tv_iter_next(it)) {
		tv_slice k = tv_iter_key(it);
		tv_slice uk = tv_ikey_user(k);
		int new_key = !have_cur || !tv_slice_eq(uk, tv_buf_slice(&cur));
		if (new_key) {
			/* Cut output files only between user keys. */
			if (have_out && tv_table_builder_size(o.b) >= limit) {
				tv_filemeta *m;
				rc = output_finish(&o, &m);
				have_out = 0;
				if (!rc && (rc = tv_edit_add_file(e, out_level, m)) != 0)
					tv_filemeta_free(m);
				if (rc)
					break;
			}
			tv_buf_clear(&cur);
			if ((rc = tv_buf_append(&cur, uk.data, uk.len)) != 0)
				break;
			have_cur = 1;
			last_seq_for_key = UINT64_MAX;
		}
		uint64_t seq = tv_ikey_seq(k);
		int drop = 0;
		if (last_seq_for_key <= c->smallest_snapshot)
			drop = 1; /* a newer entry every reader sees hides it */
		else if (tv_ikey_type(k) == TV_TYPE_DEL && seq <= c->smallest_snapshot &&
		         is_base_level(c, out_level, uk))
			drop = 1; /* nothing below for the tombstone to hide */
		last_seq_for_key = seq;
		if (drop)
			continue;
		if (!have_out) {
			if ((rc = output_open(&o, db)) != 0) {
				output_abandon(&o);
				break;
			}
			have_out = 1;
		}
		rc = output_add(&o, k, tv_iter_value(it), NULL);
	}
	if (!rc)
		rc = tv_iter_status(it);
	tv_iter_destroy(it);
	tv_buf_free(&cur);
	if (have_out) {
		if (rc) {
			output_abandon(&o);
		} else {
			tv_filemeta *m;
			rc = output_finish(&o, &m);
			if (!rc && (rc = tv_edit_add_file(e, out_level, m)) != 0)
				tv_filemeta_free(m);
		}
	}
	if (!rc)
		rc = db->vfs->sync_dir(db->vfs, db->path);
	return rc;
}

/* Removes the files an edit added (after a failure). */
static void remove_outputs(trove_db *db, tv_edit *e)
{
	char path[4096];
	for (int i = 0; i < e->nadded; i++) {
		if (e->added[i].borrowed)
			continue;
		tv_file_path(path, sizeof path, db->path, e->added[i].meta->number, "sst");
		db->vfs->remove(db->vfs, path);
	}
}

/* Runs compaction c and installs its result (compact_mu held). */
static int run_compaction(trove_db *db, compaction *c)
{
	tv_edit e;
	tv_edit_init(&e);
	int rc = 0;
	uint64_t read = 0;
	if (c->nin[0] == 1 && c->nin[1] == 0 &&
	    (c->level > 0 || c->version->nfiles[0] == 1)) {
		/* Nothing to merge with: move the file down as it is. */
		rc = tv_edit_move_file(&e, c->level, c->level + 1, c->in[0][0]);
	} else {
		for (int w = 0; w < 2; w++)
			for (int i = 0; i < c->nin[w]; i++) {
				read += c->in[w][i]->size;
				if (!rc)
					rc = tv_edit_delete_file(&e, c->level + w, c->in[w][i]->number);
			}
		if (!rc)
			rc = run_merge(db, c, &e);
	}
	if (rc) {
		remove_outputs(db, &e); /* no manifest names them */
	} else {
		/* From here on the outputs stay even if this fails: a failed
		 * manifest sync may still have put the edit naming them on disk
		 * (the next open deletes them if no manifest names them). */
		tv_deadlist dead = { 0 };
		pthread_mutex_lock(&db->mu);
		rc = tv_vs_log_and_apply(&db->vs, &e, &db->mu, &dead);
		if (!rc)
			rc = tv_super_install(db);
		pthread_cond_broadcast(&db->bg_cv);
		pthread_mutex_unlock(&db->mu);
		tv_delete_dead(db, &dead);
	}
	if (!rc) {
		atomic_fetch_add_explicit(&db->st_compactions, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&db->st_compaction_read, read, memory_order_relaxed);
	}
	tv_edit_free(&e);
	return rc;
}

void *tv_compact_main(void *arg)
{
	trove_db *db = arg;
	int failures = 0;
	pthread_mutex_lock(&db->mu);
	while (!db->shutting_down) {
		pthread_mutex_unlock(&db->mu);
		pthread_mutex_lock(&db->compact_mu);
		pthread_mutex_lock(&db->mu);
		compaction c;
		int picked = !db->shutting_down && pick_compaction(db, &c);
		pthread_mutex_unlock(&db->mu);
		int rc = 0;
		if (picked) {
			rc = run_compaction(db, &c);
			compaction_free(db, &c);
		}
		pthread_mutex_unlock(&db->compact_mu);
		pthread_mutex_lock(&db->mu);
		if (rc) {
			db->bg_error = rc;
			tv_logf(&db->lg, TROVE_LOG_WARN, "compaction failed: %s; will retry",
			        trove_strerror(rc));
			pthread_cond_broadcast(&db->bg_cv);
			back_off(db, &failures);
		} else if (picked) {
			failures = 0;
			if (db->bg_error && !db->imm)
				db->bg_error = 0;
		} else if (!db->shutting_down) {
			timed_wait(db, 1000);
		}
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

/* Compacts every file of level overlapping [lo, hi] into level + 1. */
static int compact_level_range(trove_db *db, int level, const tv_slice *lo, const tv_slice *hi)
{
	compaction c;
	memset(&c, 0, sizeof c);
	pthread_mutex_lock(&db->mu);
	c.level = level;
	c.version = db->vs.current;
	tv_version_ref(c.version);
	c.smallest_snapshot = tv_oldest_snapshot(db);
	pthread_mutex_unlock(&db->mu);
	int rc = tv_version_overlaps(c.version, level, lo, hi, &c.in[0], &c.nin[0]);
	if (!rc && c.nin[0] > 0) {
		if (level == 0) {
			/* Level-0 files overlap each other: take them all so that
			 * no older entry stays above a newer one. */
			free(c.in[0]);
			rc = tv_version_overlaps(c.version, 0, NULL, NULL, &c.in[0], &c.nin[0]);
		}
		if (!rc)
			rc = add_next_level(&c);
		if (!rc)
			rc = run_compaction(db, &c);
	}
	compaction_free(db, &c);
	return rc;
}

int tv_compact_range_internal(trove_db *db, const tv_slice *lo, const tv_slice *hi)
{
	/* Push the memtable out first so the whole range is in tables. */
	int rc = trove_flush(db);
	if (rc)
		return rc;
	pthread_mutex_lock(&db->compact_mu);
	for (int l = 0; !rc && l < TV_LEVELS - 1; l++)
		rc = compact_level_range(db, l, lo, hi);
	pthread_mutex_unlock(&db->compact_mu);
	return rc;
}

/* ---- The timer: periodic syncs, the reaper, the memtable pool's trim ------------ */

void *tv_timer_main(void *arg)
{
	trove_db *db = arg;
	long tick = 100;
	if (db->opts.sync == TROVE_SYNC_PERIODIC && db->opts.sync_period_ms < (uint32_t)tick)
		tick = (long)db->opts.sync_period_ms;
	pthread_mutex_lock(&db->mu);
	while (!db->shutting_down) {
		timed_wait(db, tick);
		if (db->shutting_down)
			break;
		int need_sync = db->use_wal && db->opts.sync == TROVE_SYNC_PERIODIC &&
		                db->wal_end > db->wal_durable &&
		                (uint64_t)tv_now_ms() - db->last_sync_ms >= db->opts.sync_period_ms;
		int bad = db->bad;
		pthread_mutex_unlock(&db->mu);
		if (need_sync && !bad)
			tv_write_internal(db, NULL, TV_W_SYNC, NULL);
		size_t reaped;
		if (!bad)
			tv_reap_expired(db, 1000, &reaped);
		tv_mem_pool_trim_idle(db->mem_pool, (uint64_t)tv_now_ms());
		pthread_mutex_lock(&db->mu);
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}
