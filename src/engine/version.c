/*
 * version.c - the version set: table files per level, and the manifest.
 *
 * The manifest is a record log (logfile.c) of version edits.  Recovery
 * replays every edit named by CURRENT to rebuild the file lists, then
 * (unless read-only) starts a fresh manifest holding one snapshot edit,
 * so a torn tail in the old one is never appended to.  CURRENT is
 * replaced atomically: written to CURRENT.tmp, synced, renamed, and the
 * directory synced.
 *
 * This module never deletes a file itself: it reports the numbers of
 * files no version holds any more and db.c deletes them outside its lock.
 */
#include "version.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/checksum.h"
#include "../util/coding.h"
#include "../util/grow.h"
#include "bloom.h"
#include "ikey.h"

#define CURRENT_MAGIC "TROVECUR"
#define CURRENT_VERSION 1
#define CURRENT_SIZE 24

enum {
	TAG_LOG_NUMBER = 1,
	TAG_NEXT_FILE = 2,
	TAG_LAST_SEQ = 3,
	TAG_COUNT = 4,
	TAG_ADD_FILE = 5,
	TAG_DELETE_FILE = 6,
};

/* ---- File metas and edits ---------------------------------------------- */

tv_filemeta *tv_filemeta_new(uint64_t number, uint64_t size, uint64_t entries,
                             tv_slice smallest, tv_slice largest)
{
	tv_filemeta *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->smallest = malloc(smallest.len ? smallest.len : 1);
	f->largest = malloc(largest.len ? largest.len : 1);
	if (!f->smallest || !f->largest) {
		tv_filemeta_free(f);
		return NULL;
	}
	memcpy(f->smallest, smallest.data, smallest.len);
	memcpy(f->largest, largest.data, largest.len);
	f->smallest_len = smallest.len;
	f->largest_len = largest.len;
	f->number = number;
	f->size = size;
	f->entries = entries;
	return f;
}

void tv_filemeta_free(tv_filemeta *f)
{
	if (!f)
		return;
	if (f->table)
		tv_table_close(f->table);
	free(f->smallest);
	free(f->largest);
	free(f);
}

void tv_edit_init(tv_edit *e)
{
	memset(e, 0, sizeof *e);
}

void tv_edit_free(tv_edit *e)
{
	for (int i = 0; i < e->nadded; i++)
		if (!e->added[i].borrowed)
			tv_filemeta_free(e->added[i].meta);
	free(e->added);
	free(e->deleted);
	tv_edit_init(e);
}

int tv_edit_add_file(tv_edit *e, int level, tv_filemeta *meta)
{
	assert(level >= 0 && level < TV_LEVELS);
	if (tv_grow(&e->added, &e->capadded, (size_t)e->nadded + 1, sizeof *e->added, 8))
		return TROVE_ENOMEM;
	e->added[e->nadded].level = level;
	e->added[e->nadded].meta = meta;
	e->added[e->nadded].number = meta->number;
	e->added[e->nadded].borrowed = 0;
	e->nadded++;
	return 0;
}

int tv_edit_move_file(tv_edit *e, int from, int to, tv_filemeta *meta)
{
	int rc = tv_edit_delete_file(e, from, meta->number);
	if (!rc)
		rc = tv_edit_add_file(e, to, meta);
	if (!rc)
		e->added[e->nadded - 1].borrowed = 1;
	return rc;
}

int tv_edit_delete_file(tv_edit *e, int level, uint64_t number)
{
	assert(level >= 0 && level < TV_LEVELS);
	if (tv_grow(&e->deleted, &e->capdeleted, (size_t)e->ndeleted + 1, sizeof *e->deleted, 8))
		return TROVE_ENOMEM;
	e->deleted[e->ndeleted].level = level;
	e->deleted[e->ndeleted].meta = NULL;
	e->deleted[e->ndeleted].number = number;
	e->deleted[e->ndeleted].borrowed = 0;
	e->ndeleted++;
	return 0;
}

int tv_edit_encode(const tv_edit *e, tv_buf *out)
{
	int rc = 0;
	if (e->has_log_number) {
		rc |= tv_buf_put_varint32(out, TAG_LOG_NUMBER);
		rc |= tv_buf_put_varint64(out, e->log_number);
	}
	if (e->has_next_file) {
		rc |= tv_buf_put_varint32(out, TAG_NEXT_FILE);
		rc |= tv_buf_put_varint64(out, e->next_file);
	}
	if (e->has_last_seq) {
		rc |= tv_buf_put_varint32(out, TAG_LAST_SEQ);
		rc |= tv_buf_put_varint64(out, e->last_seq);
	}
	if (e->has_count) {
		rc |= tv_buf_put_varint32(out, TAG_COUNT);
		rc |= tv_buf_put_varint64(out, e->count);
	}
	for (int i = 0; i < e->ndeleted; i++) {
		rc |= tv_buf_put_varint32(out, TAG_DELETE_FILE);
		rc |= tv_buf_put_varint32(out, (uint32_t)e->deleted[i].level);
		rc |= tv_buf_put_varint64(out, e->deleted[i].number);
	}
	for (int i = 0; i < e->nadded; i++) {
		const tv_filemeta *f = e->added[i].meta;
		rc |= tv_buf_put_varint32(out, TAG_ADD_FILE);
		rc |= tv_buf_put_varint32(out, (uint32_t)e->added[i].level);
		rc |= tv_buf_put_varint64(out, f->number);
		rc |= tv_buf_put_varint64(out, f->size);
		rc |= tv_buf_put_varint64(out, f->entries);
		rc |= tv_buf_put_lenprefixed(out, f->smallest, f->smallest_len);
		rc |= tv_buf_put_lenprefixed(out, f->largest, f->largest_len);
	}
	return rc ? TROVE_ENOMEM : 0;
}

static const char *get_lenprefixed(const char *p, const char *end, tv_slice *s)
{
	uint32_t n;
	p = tv_decode_varint32(p, end, &n);
	if (!p || n > (size_t)(end - p))
		return NULL;
	*s = tv_slice_make(p, n);
	return p + n;
}

int tv_edit_decode(tv_edit *e, tv_slice rec)
{
	const char *p = rec.data, *end = rec.data + rec.len;
	tv_edit_init(e);
	while (p < end) {
		uint32_t tag, level;
		uint64_t v[3];
		tv_slice lo, hi;
		if (!(p = tv_decode_varint32(p, end, &tag)))
			goto bad;
		switch (tag) {
		case TAG_LOG_NUMBER:
		case TAG_NEXT_FILE:
		case TAG_LAST_SEQ:
		case TAG_COUNT:
			if (!(p = tv_decode_varint64(p, end, &v[0])))
				goto bad;
			if (tag == TAG_LOG_NUMBER)
				e->has_log_number = 1, e->log_number = v[0];
			else if (tag == TAG_NEXT_FILE)
				e->has_next_file = 1, e->next_file = v[0];
			else if (tag == TAG_LAST_SEQ)
				e->has_last_seq = 1, e->last_seq = v[0];
			else
				e->has_count = 1, e->count = v[0];
			break;
		case TAG_DELETE_FILE:
			if (!(p = tv_decode_varint32(p, end, &level)) || level >= TV_LEVELS ||
			    !(p = tv_decode_varint64(p, end, &v[0])))
				goto bad;
			if (tv_edit_delete_file(e, (int)level, v[0]))
				goto nomem;
			break;
		case TAG_ADD_FILE: {
			if (!(p = tv_decode_varint32(p, end, &level)) || level >= TV_LEVELS ||
			    !(p = tv_decode_varint64(p, end, &v[0])) ||
			    !(p = tv_decode_varint64(p, end, &v[1])) ||
			    !(p = tv_decode_varint64(p, end, &v[2])) ||
			    !(p = get_lenprefixed(p, end, &lo)) ||
			    !(p = get_lenprefixed(p, end, &hi)))
				goto bad;
			if (!tv_ikey_valid(lo) || !tv_ikey_valid(hi) || tv_ikey_cmp(lo, hi) > 0)
				goto bad;
			tv_filemeta *f = tv_filemeta_new(v[0], v[1], v[2], lo, hi);
			if (!f)
				goto nomem;
			if (tv_edit_add_file(e, (int)level, f)) {
				tv_filemeta_free(f);
				goto nomem;
			}
			break;
		}
		default:
			goto bad;
		}
	}
	return 0;
bad:
	tv_edit_free(e);
	return TROVE_ECORRUPT;
nomem:
	tv_edit_free(e);
	return TROVE_ENOMEM;
}

/* ---- Versions -------------------------------------------------------------- */

void tv_file_path(char *buf, size_t len, const char *dir, uint64_t number,
                  const char *ext)
{
	snprintf(buf, len, "%s/%06" PRIu64 ".%s", dir, number, ext);
}

static void manifest_path(char *buf, size_t len, const char *dir, uint64_t number)
{
	snprintf(buf, len, "%s/MANIFEST-%06" PRIu64, dir, number);
}

void tv_version_ref(tv_version *v)
{
	v->refs++;
}

int tv_deadlist_add(tv_deadlist *d, uint64_t number)
{
	if (tv_grow(&d->nums, &d->cap, (size_t)d->n + 1, sizeof *d->nums, 8))
		return TROVE_ENOMEM;
	d->nums[d->n++] = number;
	return 0;
}

void tv_version_unref(tv_version *v, tv_deadlist *dead)
{
	assert(v->refs > 0);
	if (--v->refs > 0)
		return;
	for (int l = 0; l < TV_LEVELS; l++) {
		for (int i = 0; i < v->nfiles[l]; i++) {
			tv_filemeta *f = v->files[l][i];
			assert(f->refs > 0);
			if (--f->refs == 0) {
				if (dead)
					tv_deadlist_add(dead, f->number);
				tv_filemeta_free(f);
			}
		}
		free(v->files[l]);
	}
	free(v);
}

static int cmp_by_smallest(const void *a, const void *b)
{
	const tv_filemeta *x = *(tv_filemeta *const *)a, *y = *(tv_filemeta *const *)b;
	return tv_ikey_cmp(tv_fm_smallest(x), tv_fm_smallest(y));
}

static int cmp_newest_first(const void *a, const void *b)
{
	const tv_filemeta *x = *(tv_filemeta *const *)a, *y = *(tv_filemeta *const *)b;
	return x->number < y->number ? 1 : x->number > y->number ? -1 : 0;
}

static int edit_deletes(const tv_edit *e, int level, uint64_t number)
{
	for (int i = 0; i < e->ndeleted; i++)
		if (e->deleted[i].level == level && e->deleted[i].number == number)
			return 1;
	return 0;
}

/* Builds base + edit into a new version with one reference.  Takes
 * references on every file it keeps; the edit's new metas are shared
 * (the caller clears them from the edit once the version is installed). */
static int build_version(const tv_version *base, const tv_edit *e, tv_version **out)
{
	tv_version *v = calloc(1, sizeof *v);
	if (!v)
		return TROVE_ENOMEM;
	v->refs = 1;
	for (int l = 0; l < TV_LEVELS; l++) {
		int cap = (base ? base->nfiles[l] : 0);
		for (int i = 0; i < e->nadded; i++)
			cap += e->added[i].level == l;
		if (cap == 0)
			continue;
		v->files[l] = malloc((size_t)cap * sizeof *v->files[l]);
		if (!v->files[l])
			goto nomem;
		int n = 0;
		for (int i = 0; base && i < base->nfiles[l]; i++)
			if (!edit_deletes(e, l, base->files[l][i]->number))
				v->files[l][n++] = base->files[l][i];
		for (int i = 0; i < e->nadded; i++)
			if (e->added[i].level == l)
				v->files[l][n++] = e->added[i].meta;
		qsort(v->files[l], (size_t)n, sizeof *v->files[l],
		      l == 0 ? cmp_newest_first : cmp_by_smallest);
		v->nfiles[l] = n;
		for (int i = 0; i < n; i++) {
			v->files[l][i]->refs++;
			v->level_bytes[l] += v->files[l][i]->size;
		}
	}
	*out = v;
	return 0;
nomem:
	for (int l = 0; l < TV_LEVELS; l++)
		free(v->files[l]);
	free(v);
	return TROVE_ENOMEM;
}

/* Checks that levels >= 1 hold disjoint, sorted ranges. */
static int version_sane(const tv_version *v)
{
	for (int l = 1; l < TV_LEVELS; l++)
		for (int i = 1; i < v->nfiles[l]; i++)
			if (tv_ikey_cmp(tv_fm_largest(v->files[l][i - 1]),
			                tv_fm_smallest(v->files[l][i])) >= 0)
				return 0;
	return 1;
}

/* ---- CURRENT and manifests ----------------------------------------------- */

static int write_current(trove_vfs *vfs, const char *dir, uint64_t manifest_number)
{
	char tmp[4096], cur[4096], rec[CURRENT_SIZE];
	snprintf(tmp, sizeof tmp, "%s/CURRENT.tmp", dir);
	snprintf(cur, sizeof cur, "%s/CURRENT", dir);
	memcpy(rec, CURRENT_MAGIC, 8);
	tv_put_fixed32(rec + 8, CURRENT_VERSION);
	tv_put_fixed64(rec + 12, manifest_number);
	tv_put_fixed32(rec + 20, tv_checksum(rec, 20));
	tv_file *f;
	int rc = vfs->open(vfs, tmp, TV_OPEN_APPEND | TV_OPEN_TRUNCATE, &f);
	if (rc)
		return rc;
	rc = vfs->append(f, rec, sizeof rec);
	if (!rc)
		rc = vfs->sync(f);
	int rc2 = vfs->close(f);
	if (!rc)
		rc = rc2;
	if (!rc)
		rc = vfs->rename(vfs, tmp, cur);
	if (!rc)
		rc = vfs->sync_dir(vfs, dir);
	if (rc)
		vfs->remove(vfs, tmp);
	return rc;
}

static int read_current(tv_vset *vs, uint64_t *manifest_number)
{
	char cur[4096], rec[CURRENT_SIZE];
	snprintf(cur, sizeof cur, "%s/CURRENT", vs->dir);
	tv_file *f;
	int rc = vs->vfs->open(vs->vfs, cur, TV_OPEN_READ, &f);
	if (rc)
		return rc;
	size_t got = 0;
	rc = vs->vfs->read(f, 0, rec, sizeof rec, &got);
	vs->vfs->close(f);
	if (rc)
		return rc;
	if (got != sizeof rec || memcmp(rec, CURRENT_MAGIC, 8) != 0 ||
	    tv_get_fixed32(rec + 20) != tv_checksum(rec, 20)) {
		tv_logf(vs->lg, TROVE_LOG_ERROR, "%s: damaged (bad size, magic or checksum) at offset 0",
		        cur);
		return TROVE_ECORRUPT;
	}
	if (tv_get_fixed32(rec + 8) != CURRENT_VERSION) {
		tv_logf(vs->lg, TROVE_LOG_ERROR, "%s: format version %u not supported",
		        cur, tv_get_fixed32(rec + 8));
		return TROVE_EVERSION;
	}
	*manifest_number = tv_get_fixed64(rec + 12);
	return 0;
}

static void fill_snapshot_edit(tv_edit *e, uint64_t next_file,
                               uint64_t last_seq, uint64_t log_number, uint64_t count)
{
	e->has_next_file = e->has_last_seq = e->has_log_number = e->has_count = 1;
	e->next_file = next_file;
	e->last_seq = last_seq;
	e->log_number = log_number;
	e->count = count;
}

/* Encodes a snapshot edit of version v (files borrowed, not owned). */
static int encode_snapshot(tv_buf *out, tv_version *v, uint64_t next_file,
                           uint64_t last_seq, uint64_t log_number, uint64_t count)
{
	tv_edit e;
	tv_edit_init(&e);
	fill_snapshot_edit(&e, next_file, last_seq, log_number, count);
	int rc = 0;
	for (int l = 0; v && l < TV_LEVELS && !rc; l++)
		for (int i = 0; i < v->nfiles[l] && !rc; i++)
			rc = tv_edit_add_file(&e, l, v->files[l][i]);
	if (!rc)
		rc = tv_edit_encode(&e, out);
	e.nadded = 0; /* the metas belong to the version */
	tv_edit_free(&e);
	return rc;
}

int tv_vs_write_snapshot(trove_vfs *vfs, const char *dir, tv_version *v,
                         uint64_t next_file, uint64_t last_seq,
                         uint64_t log_number, uint64_t count,
                         uint64_t manifest_number)
{
	char path[4096];
	manifest_path(path, sizeof path, dir, manifest_number);
	tv_buf rec;
	tv_buf_init(&rec);
	int rc = encode_snapshot(&rec, v, next_file, last_seq, log_number, count);
	tv_log_writer *w = NULL;
	if (!rc)
		rc = tv_log_create(vfs, path, TV_MAGIC_MANIFEST, 0, &w);
	if (!rc)
		rc = tv_log_append(w, tv_buf_slice(&rec));
	if (!rc)
		rc = tv_log_sync(w);
	if (w) {
		int rc2 = tv_log_close(w);
		if (!rc)
			rc = rc2;
	}
	tv_buf_free(&rec);
	if (!rc)
		rc = write_current(vfs, dir, manifest_number);
	return rc;
}

/* Starts a new manifest holding a snapshot of version v and points CURRENT
 * at it; on success the writer stays open for later edits. */
static int new_manifest(tv_vset *vs, tv_version *v, uint64_t number, uint64_t next_file,
                        uint64_t last_seq, uint64_t log_number, uint64_t count)
{
	char path[4096];
	manifest_path(path, sizeof path, vs->dir, number);
	tv_buf rec;
	tv_buf_init(&rec);
	int rc = encode_snapshot(&rec, v, next_file, last_seq, log_number, count);
	tv_log_writer *w = NULL;
	if (!rc)
		rc = tv_log_create(vs->vfs, path, TV_MAGIC_MANIFEST, 0, &w);
	if (!rc)
		rc = tv_log_append(w, tv_buf_slice(&rec));
	if (!rc)
		rc = tv_log_sync(w);
	tv_buf_free(&rec);
	int written = rc == 0;
	if (!rc)
		rc = write_current(vs->vfs, vs->dir, number);
	if (rc) {
		if (w)
			tv_log_close(w);
		/* Once written it stays: write_current may have failed after its
		 * rename, leaving CURRENT naming it.  The next open deletes it if
		 * CURRENT does not. */
		if (!written)
			vs->vfs->remove(vs->vfs, path);
		return rc;
	}
	if (vs->manifest) {
		char old[4096];
		tv_log_close(vs->manifest);
		manifest_path(old, sizeof old, vs->dir, vs->manifest_number);
		vs->vfs->remove(vs->vfs, old);
	}
	vs->manifest = w;
	vs->manifest_number = number;
	vs->manifest_broken = 0;
	return 0;
}

int tv_vs_create(tv_vset *vs)
{
	pthread_cond_init(&vs->busy_cv, NULL);
	vs->busy = 0;
	vs->manifest = NULL;
	vs->next_file = 1;
	vs->last_seq = 0;
	vs->log_number = 0;
	vs->count = 0;
	tv_edit empty;
	tv_edit_init(&empty);
	int rc = build_version(NULL, &empty, &vs->current);
	if (rc)
		return rc;
	uint64_t number = vs->next_file++;
	return new_manifest(vs, vs->current, number, vs->next_file, 0, 0, 0);
}

static int open_tables(tv_vset *vs, tv_version *v)
{
	char path[4096];
	for (int l = 0; l < TV_LEVELS; l++)
		for (int i = 0; i < v->nfiles[l]; i++) {
			tv_filemeta *f = v->files[l][i];
			if (f->table)
				continue;
			tv_file_path(path, sizeof path, vs->dir, f->number, "sst");
			int rc = tv_table_open(vs->vfs, path, f->number, vs->cache, vs->lg, &f->table);
			if (rc) {
				if (rc == TROVE_ENOENT || rc == TROVE_ENOTFOUND) {
					tv_logf(vs->lg, TROVE_LOG_ERROR,
					        "%s: listed in the manifest but missing", path);
					rc = TROVE_ECORRUPT;
				}
				return rc;
			}
		}
	return 0;
}

int tv_vs_recover(tv_vset *vs)
{
	pthread_cond_init(&vs->busy_cv, NULL);
	vs->busy = 0;
	vs->manifest = NULL;
	uint64_t number;
	int rc = read_current(vs, &number);
	if (rc)
		return rc;
	char path[4096];
	manifest_path(path, sizeof path, vs->dir, number);
	tv_log_reader *r;
	rc = tv_log_reader_open(vs->vfs, path, TV_MAGIC_MANIFEST, vs->lg, &r);
	if (rc) {
		if (rc == TROVE_ENOENT) {
			tv_logf(vs->lg, TROVE_LOG_ERROR, "%s: named by CURRENT but missing", path);
			rc = TROVE_ECORRUPT;
		}
		return rc;
	}
	tv_edit empty;
	tv_edit_init(&empty);
	tv_version *v;
	rc = build_version(NULL, &empty, &v);
	int have_next = 0, have_seq = 0, have_log = 0, records = 0;
	tv_slice rec;
	int more;
	while (!rc && (more = tv_log_read(r, &rec)) != 0) {
		if (more < 0) {
			rc = more;
			break;
		}
		tv_edit e;
		rc = tv_edit_decode(&e, rec);
		if (rc) {
			tv_logf(vs->lg, TROVE_LOG_ERROR, "%s: malformed edit in record ending at offset %llu",
			        path, (unsigned long long)tv_log_reader_good_end(r));
			break;
		}
		records++;
		tv_version *nv;
		rc = build_version(v, &e, &nv);
		if (!rc) {
			e.nadded = 0; /* metas now belong to nv */
			tv_version_unref(v, NULL);
			v = nv;
			if (e.has_next_file)
				vs->next_file = e.next_file, have_next = 1;
			if (e.has_last_seq)
				vs->last_seq = e.last_seq, have_seq = 1;
			if (e.has_log_number)
				vs->log_number = e.log_number, have_log = 1;
			if (e.has_count)
				vs->count = e.count;
		}
		tv_edit_free(&e);
	}
	tv_log_reader_close(r);
	if (!rc && (!records || !have_next || !have_seq || !have_log)) {
		tv_logf(vs->lg, TROVE_LOG_ERROR, "%s: incomplete manifest (missing counters)", path);
		rc = TROVE_ECORRUPT;
	}
	if (!rc && !version_sane(v)) {
		tv_logf(vs->lg, TROVE_LOG_ERROR, "%s: overlapping files in a sorted level", path);
		rc = TROVE_ECORRUPT;
	}
	if (!rc && vs->next_file <= number)
		vs->next_file = number + 1;
	if (!rc)
		rc = open_tables(vs, v);
	if (rc) {
		if (v)
			tv_version_unref(v, NULL);
		return rc;
	}
	vs->current = v;
	vs->manifest_number = number;
	if (vs->read_only)
		return 0;
	uint64_t mnum = vs->next_file++;
	return new_manifest(vs, v, mnum, vs->next_file, vs->last_seq, vs->log_number, vs->count);
}

void tv_vs_destroy(tv_vset *vs)
{
	if (vs->manifest)
		tv_log_close(vs->manifest);
	vs->manifest = NULL;
	if (vs->current)
		tv_version_unref(vs->current, NULL);
	vs->current = NULL;
	pthread_cond_destroy(&vs->busy_cv);
}

/* Frees a version built for an edit that could not be logged, dropping
 * the references it took; the edit keeps its new metas. */
static void discard_version(tv_version *v, const tv_edit *e)
{
	for (int l = 0; l < TV_LEVELS; l++) {
		for (int i = 0; i < v->nfiles[l]; i++)
			v->files[l][i]->refs--;
		free(v->files[l]);
	}
	free(v);
	for (int i = 0; i < e->nadded; i++)
		assert(e->added[i].borrowed || e->added[i].meta->refs == 0);
}

int tv_vs_log_and_apply(tv_vset *vs, tv_edit *e, pthread_mutex_t *mu, tv_deadlist *dead)
{
	assert(!vs->read_only);
	while (vs->busy)
		pthread_cond_wait(&vs->busy_cv, mu);
	vs->busy = 1;
	if (!e->has_log_number)
		e->log_number = vs->log_number;
	if (!e->has_last_seq)
		e->last_seq = vs->last_seq;
	if (!e->has_count)
		e->count = vs->count;
	e->has_log_number = e->has_last_seq = e->has_count = 1;
	int broken = vs->manifest_broken || !vs->manifest;
	uint64_t mnum = broken ? vs->next_file++ : 0;
	e->has_next_file = 1;
	e->next_file = vs->next_file;

	tv_version *v;
	int rc = build_version(vs->current, e, &v);
	if (rc)
		goto out;
	assert(version_sane(v));
	tv_buf rec;
	tv_buf_init(&rec);
	if (!broken)
		rc = tv_edit_encode(e, &rec);
	pthread_mutex_unlock(mu);
	if (broken) {
		rc = new_manifest(vs, v, mnum, e->next_file, e->last_seq, e->log_number, e->count);
	} else if (!rc) {
		rc = tv_log_append(vs->manifest, tv_buf_slice(&rec));
		if (!rc)
			rc = tv_log_sync(vs->manifest);
		if (rc)
			vs->manifest_broken = 1;
	}
	tv_buf_free(&rec);
	pthread_mutex_lock(mu);
	if (rc) {
		discard_version(v, e);
		goto out;
	}
	e->nadded = 0; /* the metas now belong to v */
	vs->log_number = e->log_number;
	vs->last_seq = e->last_seq;
	vs->count = e->count;
	tv_version_unref(vs->current, dead);
	vs->current = v;
out:
	vs->busy = 0;
	pthread_cond_broadcast(&vs->busy_cv);
	return rc;
}

/* ---- Reading a version ----------------------------------------------------- */

/* Index of the first file in a sorted level whose largest key >= target. */
static int find_file(tv_filemeta **files, int n, tv_slice target)
{
	int lo = 0, hi = n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (tv_ikey_cmp(tv_fm_largest(files[mid]), target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- Point lookups, one by one and in key order ----------------------------
 *
 * tv_version_get asks each table that may hold the key, newest first.
 * A lookup begun by tv_version_probe_begin does the same with one table
 * iterator kept per level-0 file and per deeper level, each left where the
 * last lookup put it: the next, larger key moves it forward only, without a search when
 * it already stands at or past the key, and without fetching the block
 * again when the key is in the block it stands in (tv_table_iter's seek
 * keeps that block).
 */

static size_t titer_slot(void);

typedef struct probe_slot {
	tv_filemeta *f; /* the table `it` is over, or NULL */
	tv_iter *it;
	void *mem; /* where it is built */
} probe_slot;

struct tv_version_probe {
	tv_version *v;
	/* Per deeper level, the first file whose largest key is >= the last
	 * target: the next, larger target's file is there or after it. */
	int at[TV_LEVELS];
	int nslots; /* level 0 files, then one per deeper level */
	probe_slot slots[];
};

int tv_version_probe_new(tv_version *v, tv_version_probe **out)
{
	int n = v->nfiles[0] + TV_LEVELS - 1;
	size_t head = tv_iter_slot(sizeof(tv_version_probe) + (size_t)n * sizeof(probe_slot));
	tv_version_probe *p = malloc(head + (size_t)n * titer_slot());
	if (!p)
		return TROVE_ENOMEM;
	p->v = v;
	memset(p->at, 0, sizeof p->at);
	p->nslots = n;
	for (int i = 0; i < n; i++)
		p->slots[i] = (probe_slot){ NULL, NULL, (char *)p + head + (size_t)i * titer_slot() };
	*out = p;
	return 0;
}

void tv_version_probe_free(tv_version_probe *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nslots; i++)
		tv_iter_destroy(p->slots[i].it);
	free(p);
}

/* tv_table_get_hashed of f's table through the slot's iterator. */
static int probe_table(probe_slot *s, tv_filemeta *f, tv_slice target, uint64_t hash,
                       int (*fn)(void *arg, tv_slice ikey, tv_slice value), void *arg)
{
	if (!tv_table_may_contain(f->table, hash))
		return 0;
	if (s->f != f) {
		tv_iter_destroy(s->it);
		s->it = tv_table_iter_in(s->mem, f->table, true);
		s->f = f;
	}
	/* The iterator stands at the first entry >= an earlier, smaller
	 * target (or nowhere): if that entry is >= target, it is target's. */
	if (!tv_iter_valid(s->it) || tv_ikey_cmp(s->it->key, target) < 0)
		tv_iter_seek(s->it, target);
	if (!tv_iter_valid(s->it))
		return tv_iter_status(s->it);
	if (tv_ukey_cmp(tv_ikey_user(s->it->key), tv_ikey_user(target)) != 0)
		return 0;
	return fn(arg, s->it->key, s->it->value);
}

/* Asks the gathered tables, in order; their filter lines were started
 * loading when they were gathered (a filter line is usually a cache miss;
 * loaded one after another, a key under two level-0 tables and two
 * levels waited for four).  Returns the first nonzero answer, or 0. */
static int ask_tables(tv_version_lookup *lk)
{
	int n = lk->n;
	lk->n = 0;
	for (int i = 0; i < n; i++) {
		int rc = lk->vp ? probe_table(&lk->vp->slots[lk->slot[i]], lk->f[i], lk->target,
		                              lk->hash, lk->fn, lk->arg)
		                : tv_table_get_hashed(lk->f[i]->table, lk->target, lk->hash, lk->fn,
		                                      lk->arg);
		if (rc)
			return rc;
	}
	return 0;
}

/* Adds f (slot `slot` of an ordered lookup) to the tables to ask. */
static void gather(tv_version_lookup *lk, tv_filemeta *f, int slot)
{
	assert(lk->n < TV_GET_BATCH);
	lk->f[lk->n] = f;
	lk->slot[lk->n++] = slot;
}

/* Gathers the next tables that may hold the key, from where the last
 * call stopped, until the batch is full or none is left, and starts
 * loading their filter lines. */
static void gather_more(tv_version_lookup *lk)
{
	const tv_version *v = lk->v;
	tv_slice user = tv_ikey_user(lk->target);
	int i = lk->l0, l = lk->level;
	for (; i < v->nfiles[0] && lk->n < TV_GET_BATCH; i++) {
		tv_filemeta *f = v->files[0][i];
		if (tv_ukey_cmp(user, tv_ikey_user(tv_fm_smallest(f))) >= 0 &&
		    tv_ukey_cmp(user, tv_ikey_user(tv_fm_largest(f))) <= 0)
			gather(lk, f, i);
	}
	for (; l < TV_LEVELS && lk->n < TV_GET_BATCH; l++) {
		int n = v->nfiles[l];
		if (n == 0)
			continue;
		int j;
		if (lk->vp) {
			/* Targets only grow: step forward from the last one's file. */
			j = lk->vp->at[l];
			while (j < n && tv_ikey_cmp(tv_fm_largest(v->files[l][j]), lk->target) < 0)
				j++;
			lk->vp->at[l] = j;
		} else {
			j = find_file(v->files[l], n, lk->target);
		}
		if (j < n && tv_ukey_cmp(user, tv_ikey_user(tv_fm_smallest(v->files[l][j]))) >= 0)
			gather(lk, v->files[l][j], v->nfiles[0] + l - 1);
	}
	lk->l0 = i;
	lk->level = l;
	for (int k = 0; k < lk->n; k++)
		tv_table_prefetch(lk->f[k]->table, lk->hash);
}

static void lookup_begin(tv_version_lookup *lk, tv_version *v, tv_version_probe *vp,
                         tv_slice target, uint64_t hash)
{
	lk->v = v;
	lk->vp = vp;
	lk->target = target;
	lk->hash = hash;
	lk->l0 = 0;
	lk->level = 1;
	lk->n = 0;
	gather_more(lk);
}

void tv_version_get_begin(tv_version_lookup *lk, tv_version *v, tv_slice target, uint64_t hash)
{
	lookup_begin(lk, v, NULL, target, hash);
}

int tv_version_get_end(tv_version_lookup *lk,
                       int (*fn)(void *arg, tv_slice ikey, tv_slice value), void *arg)
{
	lk->fn = fn;
	lk->arg = arg;
	for (;;) {
		int rc = ask_tables(lk);
		if (rc || lk->level == TV_LEVELS)
			return rc; /* nothing left to gather */
		gather_more(lk);
	}
}

int tv_version_get(tv_version *v, tv_slice target, uint64_t hash,
                   int (*fn)(void *arg, tv_slice ikey, tv_slice value), void *arg)
{
	tv_version_lookup lk;
	tv_version_get_begin(&lk, v, target, hash);
	return tv_version_get_end(&lk, fn, arg);
}

void tv_version_probe_begin(tv_version_lookup *lk, tv_version_probe *p, tv_slice target,
                            uint64_t hash)
{
	lookup_begin(lk, p->v, p, target, hash);
}

int tv_version_iter_count(const tv_version *v)
{
	int n = v->nfiles[0];
	for (int l = 1; l < TV_LEVELS; l++)
		n += v->nfiles[l] > 0;
	return n;
}

/* Bytes a table iterator takes in a block of several, keeping each
 * aligned for any type. */
static size_t titer_slot(void)
{
	return tv_iter_slot(tv_table_iter_size());
}

static size_t level_iter_slot(void);
static tv_iter *level_iter_in(void *mem, tv_filemeta **files, int n, bool fill_cache);

size_t tv_version_iters_mem(const tv_version *v)
{
	size_t levels = 0;
	for (int l = 1; l < TV_LEVELS; l++)
		levels += v->nfiles[l] > 0;
	return (size_t)v->nfiles[0] * titer_slot() + levels * level_iter_slot();
}

int tv_version_iters(tv_version *v, tv_iter **its, int max, void *mem)
{
	int n = 0;
	char *p = mem;
	for (int i = 0; i < v->nfiles[0]; i++, p += titer_slot()) {
		assert(n < max);
		its[n++] = tv_table_iter_in(p, v->files[0][i]->table, true);
	}
	for (int l = 1; l < TV_LEVELS; l++) {
		if (v->nfiles[l] == 0)
			continue;
		assert(n < max);
		its[n++] = level_iter_in(p, v->files[l], v->nfiles[l], true);
		p += level_iter_slot();
	}
	return n;
}

/* Whether f's stored-key range overlaps [lo, hi] (user parts, NULL =
 * unbounded). */
static bool file_overlaps(const tv_filemeta *f, const tv_slice *lo, const tv_slice *hi)
{
	return (!lo || tv_slice_cmp(tv_ikey_user(tv_fm_largest(f)), *lo) >= 0) &&
	       (!hi || tv_slice_cmp(tv_ikey_user(tv_fm_smallest(f)), *hi) <= 0);
}

int tv_version_overlaps(tv_version *v, int level, const tv_slice *lo,
                        const tv_slice *hi, tv_filemeta ***out, int *n)
{
	tv_filemeta **r = malloc(((size_t)v->nfiles[level] + 1) * sizeof *r);
	if (!r)
		return TROVE_ENOMEM;
	int k = 0;
	for (int i = 0; i < v->nfiles[level]; i++)
		if (file_overlaps(v->files[level][i], lo, hi))
			r[k++] = v->files[level][i];
	*out = r;
	*n = k;
	return 0;
}

bool tv_version_overlaps_any(const tv_version *v, tv_slice lo, tv_slice hi)
{
	for (int l = 0; l < TV_LEVELS; l++)
		for (int i = 0; i < v->nfiles[l]; i++)
			if (file_overlaps(v->files[l][i], &lo, &hi))
				return true;
	return false;
}

/* ---- The level iterator ------------------------------------------------------
 *
 * Concatenates the tables of one sorted level, walking one table at a time
 * through a table iterator embedded in it and stepped by direct calls: a
 * step inside a block is the block iterator's step and this iterator's
 * publish, and only a step off a block's end goes to the table (and off a
 * table's end, here, to the next table).
 */

typedef struct level_iter {
	tv_iter base;
	tv_filemeta **files;
	int n;
	int idx;         /* file of `cur`, or -1: none open */
	bool fill_cache; /* passed to each table iterator */
	int status;
	tv_table_iterator cur; /* over files[idx] */
} level_iter;

static int li_open(level_iter *li, int idx)
{
	if (li->idx >= 0 && li->idx == idx)
		return 1;
	if (li->idx >= 0) {
		int st = tv_table_iter_status(&li->cur);
		if (st && !li->status)
			li->status = st;
		tv_table_iter_fini(&li->cur);
	}
	li->idx = -1;
	if (idx < 0 || idx >= li->n)
		return 0;
	tv_table_iter_init(&li->cur, li->files[idx]->table, li->fill_cache);
	li->idx = idx;
	return 1;
}

/* Publishes the current table's position as the level's; after a
 * backward move its value lasts as the table's does (forward moves leave
 * that unsaid, as the table's do). */
static void li_publish(level_iter *li, int backward)
{
	if (li->idx >= 0 && tv_table_iter_valid(&li->cur))
		tv_iter_publish_lasting(&li->base, li->cur.data.key, li->cur.data.value,
		                        backward && tv_table_iter_value_lasts(&li->cur));
	else
		tv_iter_unpublish(&li->base);
}

static void li_skip_forward(level_iter *li)
{
	while (li->idx >= 0 && !tv_table_iter_valid(&li->cur) &&
	       !tv_table_iter_status(&li->cur)) {
		if (!li_open(li, li->idx + 1))
			return;
		tv_table_iter_seek_first(&li->cur);
	}
}

static void li_skip_backward(level_iter *li)
{
	while (li->idx >= 0 && !tv_table_iter_valid(&li->cur) &&
	       !tv_table_iter_status(&li->cur)) {
		if (!li_open(li, li->idx - 1))
			return;
		tv_table_iter_seek_last(&li->cur);
	}
}

static void li_seek_first(tv_iter *it)
{
	level_iter *li = (level_iter *)it;
	if (li_open(li, 0)) {
		tv_table_iter_seek_first(&li->cur);
		li_skip_forward(li);
	}
	li_publish(li, 0);
}

static void li_seek_last(tv_iter *it)
{
	level_iter *li = (level_iter *)it;
	if (li_open(li, li->n - 1)) {
		tv_table_iter_seek_last(&li->cur);
		li_skip_backward(li);
	}
	li_publish(li, 1);
}

static void li_seek(tv_iter *it, tv_slice target)
{
	level_iter *li = (level_iter *)it;
	int idx = find_file(li->files, li->n, target);
	if (li_open(li, idx)) {
		tv_table_iter_seek(&li->cur, target);
		li_skip_forward(li);
	}
	li_publish(li, 0);
}

/* A step inside a block publishes the block iterator's entry at once;
 * the walk to the next block, or table, runs once per block. */
static void li_next(tv_iter *it)
{
	level_iter *li = (level_iter *)it;
	tv_block_iter *d = &li->cur.data;
	tv_block_iter_next(d);
	if (tv_block_iter_valid(d)) {
		tv_iter_publish_lasting(&li->base, d->key, d->value, 0);
		return;
	}
	tv_table_iter_leave_forward(&li->cur);
	li_skip_forward(li);
	li_publish(li, 0);
}

static void li_prev(tv_iter *it)
{
	level_iter *li = (level_iter *)it;
	tv_table_iter_prev(&li->cur);
	if (!tv_table_iter_valid(&li->cur))
		li_skip_backward(li);
	li_publish(li, 1);
}

static int li_status(tv_iter *it)
{
	level_iter *li = (level_iter *)it;
	if (li->status)
		return li->status;
	return li->idx >= 0 ? tv_table_iter_status(&li->cur) : 0;
}

/* Releases the current table's iterator; the memory the level iterator
 * lives in stays. */
static void li_destroy_in_place(tv_iter *it)
{
	li_open((level_iter *)it, -1);
}

static void li_destroy(tv_iter *it)
{
	li_destroy_in_place(it);
	free(it);
}

static const tv_iter_ops level_iter_ops = {
	li_seek_first, li_seek_last, li_seek, li_next, li_prev, li_status, li_destroy,
};

static const tv_iter_ops level_iter_in_place_ops = {
	li_seek_first, li_seek_last, li_seek, li_next, li_prev, li_status, li_destroy_in_place,
};

/* Bytes a level iterator takes in a block of several iterators, keeping
 * the next aligned for any type. */
static size_t level_iter_slot(void)
{
	return tv_iter_slot(sizeof(level_iter));
}

tv_iter *tv_level_iter(tv_filemeta **files, int n, bool fill_cache)
{
	void *mem = malloc(level_iter_slot());
	if (!mem)
		return NULL;
	tv_iter *it = level_iter_in(mem, files, n, fill_cache);
	it->ops = &level_iter_ops;
	return it;
}

/* A level iterator built in mem (level_iter_slot() bytes, aligned for any
 * type); destroying it frees nothing. */
static tv_iter *level_iter_in(void *mem, tv_filemeta **files, int n, bool fill_cache)
{
	level_iter *li = mem;
	li->base.ops = &level_iter_in_place_ops;
	tv_iter_unpublish(&li->base);
	li->files = files;
	li->n = n;
	li->idx = -1;
	li->fill_cache = fill_cache;
	li->status = 0;
	return &li->base;
}
