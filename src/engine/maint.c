/*
 * maint.c - maintenance: statistics, disk size, online backup, manual
 * compaction and verification.
 *
 * Backup copies what a version lists plus the logs written after it,
 * while writers go on: the version is pinned so its tables cannot vanish,
 * log deletion is held off, and a log still being appended to is copied
 * as far as it goes; whatever partial record the copy ends in is a torn
 * tail that the backup's recovery drops.  So the copy holds a prefix of
 * the history: the database as of one moment during the backup.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/grow.h"
#include "db.h"
#include "ikey.h"

/* ---- Statistics ------------------------------------------------------------------ */

int trove_get_stats(trove_db *db, trove_stats *st)
{
	if (!db || !st)
		return TROVE_EINVAL;
	memset(st, 0, sizeof *st);
	st->reads = tv_reads(db);
	st->writes = atomic_load(&db->st_writes);
	st->write_groups = atomic_load(&db->st_groups);
	st->syncs = atomic_load(&db->st_syncs);
	st->conflicts = atomic_load(&db->st_conflicts);
	st->wal_bytes = atomic_load(&db->st_wal_bytes);
	st->table_bytes = atomic_load(&db->st_table_bytes);
	st->flushes = atomic_load(&db->st_flushes);
	st->compactions = atomic_load(&db->st_compactions);
	st->compaction_bytes_read = atomic_load(&db->st_compaction_read);
	st->stalls = atomic_load(&db->st_stalls);
	st->stall_us = atomic_load(&db->st_stall_us);
	st->expired_reaped = atomic_load(&db->st_reaped);
	st->cache_hits = tv_cache_hits(db->cache);
	st->cache_misses = tv_cache_misses(db->cache);
	st->cache_bytes = tv_cache_usage(db->cache);
	st->table_meta_bytes = tv_cache_reserved(db->cache);
	pthread_mutex_lock(&db->mu);
	st->memtable_bytes = tv_mem_usage(db->mem) + (db->imm ? tv_mem_usage(db->imm) : 0) +
	                     tv_mem_pool_usage(db->mem_pool);
	tv_version *v = db->vs.current;
	for (int l = 0; l < TV_LEVELS; l++) {
		st->level_files[l] = (uint64_t)v->nfiles[l];
		st->level_bytes[l] = v->level_bytes[l];
		st->table_files += (uint64_t)v->nfiles[l];
	}
	st->last_version = atomic_load(&db->last_seq);
	pthread_mutex_unlock(&db->mu);
	return 0;
}

typedef struct size_ctx {
	trove_db *db;
	uint64_t total;
} size_ctx;

static int add_size(void *arg, const char *name)
{
	size_ctx *c = arg;
	char path[4096];
	uint64_t n;
	snprintf(path, sizeof path, "%s/%s", c->db->path, name);
	if (c->db->vfs->file_size(c->db->vfs, path, &n) == 0)
		c->total += n;
	return 0;
}

int trove_disk_size(trove_db *db, uint64_t *bytes)
{
	if (!db || !bytes)
		return TROVE_EINVAL;
	size_ctx c = { db, 0 };
	int rc = db->vfs->list_dir(db->vfs, db->path, add_size, &c);
	if (rc)
		return rc;
	*bytes = c.total;
	return 0;
}

/* ---- Manual compaction ------------------------------------------------------------- */

int trove_compact_range(trove_db *db, const void *lo, size_t lolen, const void *hi,
                        size_t hilen)
{
	if (!db || (!lo && lolen) || (!hi && hilen))
		return TROVE_EINVAL;
	if (db->read_only)
		return TROVE_EREADONLY;
	if (lolen > TROVE_MAX_KEY || hilen > TROVE_MAX_KEY)
		return TROVE_ETOOBIG;
	char *lb = malloc(lolen + 1), *hb = malloc(hilen + 1);
	int rc = TROVE_ENOMEM;
	if (lb && hb) {
		tv_slice l = tv_stored_key(lb, TV_NS_DATA, lo ? lo : "", lolen);
		tv_slice h = tv_stored_key(hb, TV_NS_DATA, hi ? hi : "", hilen);
		rc = tv_compact_range_internal(db, lo ? &l : NULL, hi ? &h : NULL);
	}
	free(lb);
	free(hb);
	return rc;
}

/* ---- Backup ---------------------------------------------------------------------------- */

static int copy_file(trove_vfs *vfs, const char *from, const char *to)
{
	tv_file *in, *out;
	int rc = vfs->open(vfs, from, TV_OPEN_READ, &in);
	if (rc)
		return rc;
	rc = vfs->open(vfs, to, TV_OPEN_APPEND | TV_OPEN_EXCL, &out);
	if (rc) {
		vfs->close(in);
		return rc;
	}
	size_t bufsize = 1 << 20;
	char *buf = malloc(bufsize);
	if (!buf)
		rc = TROVE_ENOMEM;
	uint64_t off = 0;
	while (!rc) {
		size_t got = 0;
		rc = vfs->read(in, off, buf, bufsize, &got);
		if (rc || got == 0)
			break;
		rc = vfs->append(out, buf, got);
		off += got;
	}
	if (!rc)
		rc = vfs->sync(out);
	free(buf);
	vfs->close(in);
	int rc2 = vfs->close(out);
	return rc ? rc : rc2;
}

typedef struct backup_ctx {
	int nonempty;
	uint64_t *logs;
	int nlogs;
	size_t cap;
	uint64_t min_log;
} backup_ctx;

static int note_entry(void *arg, const char *name)
{
	((backup_ctx *)arg)->nonempty = 1;
	(void)name;
	return 0;
}

static int note_log(void *arg, const char *name)
{
	backup_ctx *c = arg;
	char *end;
	unsigned long long n = strtoull(name, &end, 10);
	if (end == name || strcmp(end, ".log") != 0 || n < c->min_log)
		return 0;
	if (tv_grow(&c->logs, &c->cap, (size_t)c->nlogs + 1, sizeof *c->logs, 8))
		return TROVE_ENOMEM;
	c->logs[c->nlogs++] = n;
	return 0;
}

int trove_backup(trove_db *db, const char *dir)
{
	if (!db || !dir || !*dir || db->opts.in_memory)
		return TROVE_EINVAL;
	trove_vfs *vfs = db->vfs;
	int rc = vfs->mkdir(vfs, dir);
	if (rc == TROVE_EEXIST) {
		backup_ctx probe = { 0 };
		rc = vfs->list_dir(vfs, dir, note_entry, &probe);
		if (!rc && probe.nonempty)
			rc = TROVE_EEXIST;
	}
	if (rc)
		return rc;
	/* Make what was acknowledged so far part of the log we copy. */
	if (!db->read_only && (rc = trove_sync(db)) != 0)
		return rc;

	pthread_mutex_lock(&db->mu);
	tv_version *v = db->vs.current;
	tv_version_ref(v);
	db->backups++;
	uint64_t next_file = db->vs.next_file, last_seq = db->vs.last_seq;
	uint64_t log_number = db->vs.log_number, count = db->vs.count;
	pthread_mutex_unlock(&db->mu);

	char from[4096], to[4096];
	for (int l = 0; !rc && l < TV_LEVELS; l++)
		for (int i = 0; !rc && i < v->nfiles[l]; i++) {
			tv_file_path(from, sizeof from, db->path, v->files[l][i]->number, "sst");
			tv_file_path(to, sizeof to, dir, v->files[l][i]->number, "sst");
			rc = copy_file(vfs, from, to);
		}
	backup_ctx logs = { 0 };
	logs.min_log = log_number;
	if (!rc)
		rc = vfs->list_dir(vfs, db->path, note_log, &logs);
	for (int i = 0; !rc && i < logs.nlogs; i++) {
		tv_file_path(from, sizeof from, db->path, logs.logs[i], "log");
		tv_file_path(to, sizeof to, dir, logs.logs[i], "log");
		rc = copy_file(vfs, from, to);
	}
	free(logs.logs);
	if (!rc)
		rc = tv_vs_write_snapshot(vfs, dir, v, next_file + 1, last_seq, log_number, count,
		                          next_file);

	tv_deadlist dead = { 0 };
	pthread_mutex_lock(&db->mu);
	db->backups--;
	tv_version_unref(v, &dead);
	pthread_mutex_unlock(&db->mu);
	tv_delete_dead(db, &dead);
	return rc;
}

/* ---- Verify ------------------------------------------------------------------------------- */

typedef struct verify_ctx {
	trove_verify_fn report;
	void *arg;
	const char *file;
	int problems;
} verify_ctx;

static void table_problem(void *arg, uint64_t offset, const char *msg)
{
	verify_ctx *c = arg;
	c->problems++;
	if (c->report)
		c->report(c->arg, c->file, offset, msg);
}

/* Collects the log reader's messages as problems of the file read. */
static void log_problem(void *arg, int level, const char *msg)
{
	if (level == TROVE_LOG_ERROR)
		table_problem(arg, 0, msg);
}

static int verify_log(trove_db *db, const char *path, const char *magic, verify_ctx *c)
{
	tv_logger lg = { log_problem, c };
	tv_log_reader *r;
	c->file = path;
	int rc = tv_log_reader_open(db->vfs, path, magic, &lg, &r);
	if (rc == TROVE_ENOENT)
		return 0; /* removed since it was listed */
	if (rc == TROVE_ECORRUPT || rc == TROVE_EVERSION) {
		if (!c->problems)
			table_problem(c, 0, "bad header");
		return 0;
	}
	if (rc)
		return rc;
	tv_slice rec;
	while ((rc = tv_log_read(r, &rec)) == 1)
		;
	tv_log_reader_close(r);
	return rc == TROVE_ECORRUPT ? 0 : rc;
}

typedef struct list_ctx {
	trove_db *db;
	verify_ctx *vc;
	uint64_t min_log;
	int rc;
} list_ctx;

static int verify_entry(void *arg, const char *name)
{
	list_ctx *l = arg;
	char path[4096];
	char *end;
	snprintf(path, sizeof path, "%s/%s", l->db->path, name);
	unsigned long long n = strtoull(name, &end, 10);
	int rc = 0;
	if (end != name && !strcmp(end, ".log") && n >= l->min_log)
		rc = verify_log(l->db, path, TV_MAGIC_WAL, l->vc);
	else if (!strncmp(name, "MANIFEST-", 9) &&
	         strtoull(name + 9, NULL, 10) == l->db->vs.manifest_number)
		rc = verify_log(l->db, path, TV_MAGIC_MANIFEST, l->vc);
	if (rc && !l->rc)
		l->rc = rc;
	return 0;
}

int trove_verify(trove_db *db, trove_verify_fn report, void *arg)
{
	if (!db)
		return TROVE_EINVAL;
	verify_ctx c = { report, arg, NULL, 0 };
	pthread_mutex_lock(&db->mu);
	tv_version *v = db->vs.current;
	tv_version_ref(v);
	uint64_t min_log = db->vs.log_number;
	db->backups++; /* keeps the logs in place while we read them */
	pthread_mutex_unlock(&db->mu);
	int rc = 0;
	char path[4096];
	for (int l = 0; l < TV_LEVELS && (!rc || rc == TROVE_ECORRUPT); l++)
		for (int i = 0; i < v->nfiles[l]; i++) {
			tv_file_path(path, sizeof path, db->path, v->files[l][i]->number, "sst");
			c.file = path;
			int r = tv_table_verify(v->files[l][i]->table, table_problem, &c);
			if (r && r != TROVE_ECORRUPT && !rc)
				rc = r;
		}
	if (!rc && !db->opts.in_memory) {
		list_ctx lc = { db, &c, min_log, 0 };
		rc = db->vfs->list_dir(db->vfs, db->path, verify_entry, &lc);
		if (!rc)
			rc = lc.rc;
	}
	tv_deadlist dead = { 0 };
	pthread_mutex_lock(&db->mu);
	db->backups--;
	tv_version_unref(v, &dead);
	pthread_mutex_unlock(&db->mu);
	tv_delete_dead(db, &dead);
	if (rc)
		return rc;
	return c.problems ? TROVE_ECORRUPT : 0;
}
