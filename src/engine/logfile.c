/*
 * logfile.c - append-only record logs (the write-ahead log and the manifest).
 *
 * The writer frames each record (checksum, length, payload) in a reusable
 * buffer, or in room the caller left in front of it (the write-ahead log's
 * records, which can be large), and hands it to the VFS in one append, so
 * a record is never split across system calls by us.  The reader walks the file with buffered
 * positional reads (never the whole file in memory) and sorts what it
 * cannot read into a torn tail, which a crash during an append leaves and
 * which is dropped, or corruption, which is an error naming file and
 * offset.  The byte layout is in docs/FORMAT.md, "Log files".
 *
 * Telling the two apart: a damaged record (bad checksum, impossible length,
 * or cut short by the end of the file) is corruption if an intact record
 * can be found after it, and a torn tail otherwise.  "After it" means
 *   1. at the damaged record's declared end, if its length is sane and
 *      that end lies within the file (this finds the next record however
 *      large the damaged one was), and
 *   2. at every byte offset of the SCAN_WINDOW bytes that follow the
 *      damaged record's start (this finds the next record when the length
 *      field itself is what was damaged).
 * Verifying candidates in step 2 costs reading their payloads; when that
 * would exceed SCAN_BUDGET bytes the reader cannot rule out an intact
 * record and reports corruption rather than silently dropping data.
 * A payload that itself contains the bytes of a valid record (a log stored
 * as a value) could make a torn tail of that record look like corruption;
 * we accept that: it fails loudly, never loses acknowledged data.
 *
 * This module must never overwrite or truncate a log (recovery decides what
 * to do with a torn tail), never return a record whose checksum failed, and
 * never read more of the file at once than one record or READ_CHUNK needs.
 */
#include "logfile.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../util/checksum.h"
#include "../util/coding.h"
#include "trove.h"

#define READ_CHUNK (256u << 10)   /* bytes per refill of the read buffer */
#define WRITE_BUF_KEEP (4u << 20) /* a bigger frame buffer is freed after use */
#define SCAN_WINDOW (64u << 10)   /* offsets tried after a damaged record */
#define SCAN_BUDGET (64ull << 20) /* payload bytes verified while scanning */

/* ---- Writer ------------------------------------------------------------- */

struct tv_log_writer {
	trove_vfs *vfs;
	tv_file *f;
	uint64_t size; /* bytes appended, header included */
	tv_buf frame;  /* reused for every record */
	int err;       /* the first failed append; the writer is dead then */
};

/* The format version written with `magic`, and the newest one read. */
static uint32_t newest_version(const char *magic)
{
	return memcmp(magic, TV_MAGIC_WAL, 8) == 0 ? TV_WAL_VERSION : TV_LOG_VERSION;
}

int tv_log_create(trove_vfs *vfs, const char *path, const char *magic, int how,
                  tv_log_writer **out)
{
	assert(strlen(magic) == 8);
	assert(how == 0 || how == TV_OPEN_MAPPED || how == TV_OPEN_ZEROED);
	tv_log_writer *w = malloc(sizeof *w);
	if (!w)
		return TROVE_ENOMEM;
	int flags = TV_OPEN_APPEND | TV_OPEN_TRUNCATE | how;
	int rc = vfs->open(vfs, path, flags, &w->f);
	if (rc) {
		free(w);
		return rc;
	}
	char hdr[TV_LOG_HEADER];
	memcpy(hdr, magic, 8);
	tv_put_fixed32(hdr + 8, newest_version(magic));
	tv_put_fixed32(hdr + 12, tv_checksum(hdr, 12));
	rc = vfs->append(w->f, hdr, sizeof hdr);
	if (rc) {
		vfs->close(w->f);
		free(w);
		return rc;
	}
	w->vfs = vfs;
	w->size = TV_LOG_HEADER;
	w->err = 0;
	tv_buf_init(&w->frame);
	*out = w;
	return 0;
}

/* Frames the record as [checksum][length][payload] in the reusable frame
 * buffer and appends it whole.  Returns TROVE_ETOOBIG for a record over
 * TV_LOG_MAX_RECORD and TROVE_ENOMEM (nothing written, the writer stays
 * usable), or the error of the append (the writer is dead: every later
 * append returns it). */
int tv_log_append(tv_log_writer *w, tv_slice record)
{
	if (w->err)
		return w->err;
	if (record.len > TV_LOG_MAX_RECORD)
		return TROVE_ETOOBIG;
	tv_buf_clear(&w->frame);
	int rc = tv_buf_reserve(&w->frame, TV_LOG_RECORD_HEADER + record.len);
	if (rc)
		return rc;
	if (record.len)
		memcpy(w->frame.data + TV_LOG_RECORD_HEADER, record.data, record.len);
	rc = tv_log_append_framed(w, w->frame.data, TV_LOG_RECORD_HEADER + record.len);
	if (w->frame.cap > WRITE_BUF_KEEP)
		tv_buf_free(&w->frame);
	return rc;
}

int tv_log_append_framed(tv_log_writer *w, char *frame, size_t len)
{
	assert(len >= TV_LOG_RECORD_HEADER);
	if (w->err)
		return w->err;
	size_t n = len - TV_LOG_RECORD_HEADER;
	if (n > TV_LOG_MAX_RECORD)
		return TROVE_ETOOBIG;
	tv_put_fixed32(frame + 4, (uint32_t)n);
	/* Length and payload lie side by side in the frame: one pass over
	 * them gives what tv_checksum2 gives over the two pieces. */
	tv_put_fixed32(frame, tv_checksum(frame + 4, 4 + n));
	int rc = w->vfs->append(w->f, frame, len);
	if (rc) {
		w->err = rc;
		return rc;
	}
	w->size += len;
	return 0;
}

int tv_log_sync(tv_log_writer *w)
{
	return w->vfs->sync(w->f);
}

uint64_t tv_log_size(const tv_log_writer *w)
{
	return w->size;
}

int tv_log_close(tv_log_writer *w)
{
	if (!w)
		return 0;
	int rc = w->vfs->close(w->f);
	tv_buf_free(&w->frame);
	free(w);
	return rc;
}

/* ---- Reader ------------------------------------------------------------- */

enum { READING = 0, AT_END = 1 };

struct tv_log_reader {
	trove_vfs *vfs;
	tv_file *f;
	char *path; /* for messages */
	tv_logger lg;
	uint64_t file_size; /* taken at open */
	uint64_t pos;       /* offset of the next record */
	uint64_t good_end;  /* just past the last intact record returned */
	uint64_t intact_after; /* damage with an intact record here after it */
	int torn;
	int state; /* READING, AT_END, or a sticky negative error */
	/* The read buffer holds file bytes [buf_off, buf_off + buf_len). */
	char *buf;
	size_t cap;
	uint64_t buf_off;
	size_t buf_len;
};

/* Points *out at file bytes [off, off + n), which must lie within the
 * file, refilling the buffer with at least READ_CHUNK bytes if they are not
 * all there.  Pointers from earlier calls become invalid. */
static int fetch(tv_log_reader *r, uint64_t off, size_t n, const char **out)
{
	assert(off <= r->file_size && n <= r->file_size - off);
	if (off >= r->buf_off && off - r->buf_off <= r->buf_len &&
	    n <= r->buf_len - (size_t)(off - r->buf_off)) {
		*out = r->buf + (off - r->buf_off);
		return 0;
	}
	uint64_t left = r->file_size - off;
	size_t want = n > READ_CHUNK ? n : READ_CHUNK;
	if (want > left)
		want = (size_t)left;
	r->buf_len = 0;
	/* Grow for a big record; shrink back once reads are small again. */
	if (want > r->cap || (r->cap > 16 * READ_CHUNK && want <= READ_CHUNK)) {
		size_t cap = want > READ_CHUNK ? want : READ_CHUNK;
		free(r->buf);
		r->buf = malloc(cap);
		r->cap = r->buf ? cap : 0;
		if (!r->buf)
			return TROVE_ENOMEM;
	}
	size_t got = 0;
	int rc = r->vfs->read(r->f, off, r->buf, want, &got);
	if (rc) {
		tv_logf(&r->lg, TROVE_LOG_ERROR, "%s: read error at offset %llu: %s", r->path,
		        (unsigned long long)off, trove_strerror(rc));
		return rc;
	}
	if (got < n) {
		tv_logf(&r->lg, TROVE_LOG_ERROR, "%s: file shrank while reading at offset %llu",
		        r->path, (unsigned long long)off);
		return TROVE_EIO;
	}
	r->buf_off = off;
	r->buf_len = got;
	*out = r->buf;
	return 0;
}

enum { REC_BAD = 0, REC_OK = 1, REC_UNKNOWN = 2 };

/* Checks for an intact record at off.  REC_OK with *payload set (valid
 * until the next fetch), REC_BAD, or a negative error.  With a budget, a
 * record whose payload is larger than *budget is not verified (REC_UNKNOWN)
 * and verified payloads are charged to it. */
static int record_at(tv_log_reader *r, uint64_t off, uint64_t *budget, tv_slice *payload)
{
	if (r->file_size - off < TV_LOG_RECORD_HEADER)
		return REC_BAD;
	const char *p;
	int rc = fetch(r, off, TV_LOG_RECORD_HEADER, &p);
	if (rc)
		return rc;
	uint32_t len = tv_get_fixed32(p + 4);
	if (len > TV_LOG_MAX_RECORD || len > r->file_size - off - TV_LOG_RECORD_HEADER)
		return REC_BAD;
	if (budget) {
		if (len > *budget)
			return REC_UNKNOWN;
		*budget -= len;
	}
	rc = fetch(r, off, TV_LOG_RECORD_HEADER + (size_t)len, &p);
	if (rc)
		return rc;
	if (tv_get_fixed32(p) != tv_checksum(p + 4, 4 + (size_t)len))
		return REC_BAD;
	*payload = tv_slice_make(p + TV_LOG_RECORD_HEADER, len);
	return REC_OK;
}

/* Looks for an intact record after the damaged one at r->pos (see the top
 * of the file).  REC_OK with its offset in *at, REC_BAD if there is none,
 * REC_UNKNOWN if the scan ran out of budget, or a negative error. */
static int find_intact_after(tv_log_reader *r, uint64_t *at)
{
	uint64_t pos = r->pos, size = r->file_size;
	tv_slice rec;
	int rc;
	if (size - pos >= TV_LOG_RECORD_HEADER) {
		const char *p;
		if ((rc = fetch(r, pos, TV_LOG_RECORD_HEADER, &p)) != 0)
			return rc;
		uint32_t len = tv_get_fixed32(p + 4);
		uint64_t end = pos + TV_LOG_RECORD_HEADER + len;
		if (len <= TV_LOG_MAX_RECORD && end < size) {
			rc = record_at(r, end, NULL, &rec);
			if (rc == REC_OK)
				*at = end;
			if (rc != REC_BAD)
				return rc;
		}
	}
	uint64_t budget = SCAN_BUDGET;
	for (uint64_t off = pos + 1; off <= pos + SCAN_WINDOW && off + TV_LOG_RECORD_HEADER <= size;
	     off++) {
		rc = record_at(r, off, &budget, &rec);
		if (rc == REC_OK)
			*at = off;
		if (rc != REC_BAD)
			return rc;
	}
	return REC_BAD;
}

/* Decides what the damaged record at r->pos is: a torn tail (dropped,
 * returns 0) or corruption (returns TROVE_ECORRUPT). */
static int classify_damage(tv_log_reader *r)
{
	uint64_t at = 0;
	int rc = find_intact_after(r, &at);
	unsigned long long pos = r->pos;
	switch (rc) {
	case REC_BAD: /* the caller reports it, through tv_log_reader_torn() */
		r->torn = 1;
		return 0;
	case REC_OK:
		r->intact_after = at;
		tv_logf(&r->lg, TROVE_LOG_ERROR,
		        "%s: damaged record at offset %llu (an intact record follows at offset "
		        "%llu)",
		        r->path, pos, (unsigned long long)at);
		return TROVE_ECORRUPT;
	case REC_UNKNOWN:
		tv_logf(&r->lg, TROVE_LOG_ERROR,
		        "%s: damaged record at offset %llu; too much data follows to rule out "
		        "intact records after it",
		        r->path, pos);
		return TROVE_ECORRUPT;
	default:
		assert(rc < 0);
		return rc;
	}
}

/* Checks the 16-byte header.  0 (r->pos set past it, or r->torn set for a
 * missing or all-zero header), or TROVE_ECORRUPT / TROVE_EVERSION / an I/O
 * error. */
static int check_header(tv_log_reader *r, const char *magic)
{
	static const char zero[TV_LOG_HEADER];
	const char *h = zero;
	if (r->file_size >= TV_LOG_HEADER) {
		int rc = fetch(r, 0, TV_LOG_HEADER, &h);
		if (rc)
			return rc;
	}
	if (memcmp(h, zero, TV_LOG_HEADER) == 0) {
		r->torn = 1;
		return 0;
	}
	if (memcmp(h, magic, 8) != 0) {
		tv_logf(&r->lg, TROVE_LOG_ERROR, "%s: bad magic at offset 0 (not a %.8s file)",
		        r->path, magic);
		return TROVE_ECORRUPT;
	}
	if (tv_get_fixed32(h + 12) != tv_checksum(h, 12)) {
		tv_logf(&r->lg, TROVE_LOG_ERROR, "%s: bad header checksum at offset 12", r->path);
		return TROVE_ECORRUPT;
	}
	uint32_t version = tv_get_fixed32(h + 8);
	if (version < TV_LOG_VERSION || version > newest_version(magic)) {
		tv_logf(&r->lg, TROVE_LOG_ERROR,
		        "%s: format version %u at offset 8, this build reads versions %u to %u",
		        r->path, (unsigned)version, (unsigned)TV_LOG_VERSION,
		        (unsigned)newest_version(magic));
		return TROVE_EVERSION;
	}
	r->pos = r->good_end = TV_LOG_HEADER;
	return 0;
}

void tv_log_reader_close(tv_log_reader *r)
{
	if (!r)
		return;
	if (r->f)
		r->vfs->close(r->f);
	free(r->buf);
	free(r->path);
	free(r);
}

int tv_log_reader_open(trove_vfs *vfs, const char *path, const char *magic, const tv_logger *lg,
                       tv_log_reader **out)
{
	assert(strlen(magic) == 8);
	tv_log_reader *r = calloc(1, sizeof *r);
	if (!r)
		return TROVE_ENOMEM;
	r->vfs = vfs;
	if (lg)
		r->lg = *lg;
	r->path = strdup(path);
	if (!r->path) {
		tv_log_reader_close(r);
		return TROVE_ENOMEM;
	}
	int rc = vfs->open(vfs, path, TV_OPEN_READ, &r->f);
	if (rc) {
		r->f = NULL;
		tv_log_reader_close(r);
		return rc;
	}
	rc = vfs->size(r->f, &r->file_size);
	if (rc == 0)
		rc = check_header(r, magic);
	if (rc) {
		tv_log_reader_close(r);
		return rc;
	}
	r->state = r->torn ? AT_END : READING;
	*out = r;
	return 0;
}

int tv_log_read(tv_log_reader *r, tv_slice *record)
{
	if (r->state != READING)
		return r->state < 0 ? r->state : 0;
	if (r->pos == r->file_size) {
		r->state = AT_END;
		return 0;
	}
	int rc = record_at(r, r->pos, NULL, record);
	if (rc == REC_OK) {
		r->pos += TV_LOG_RECORD_HEADER + record->len;
		r->good_end = r->pos;
		return 1;
	}
	if (rc == REC_BAD)
		rc = classify_damage(r);
	r->state = rc < 0 ? rc : AT_END;
	return rc;
}

int tv_log_reader_skip_damage(tv_log_reader *r)
{
	if (r->state != TROVE_ECORRUPT || r->intact_after <= r->pos)
		return TROVE_ECORRUPT;
	r->pos = r->intact_after;
	r->intact_after = 0;
	r->state = READING;
	return 0;
}

int tv_log_reader_torn(const tv_log_reader *r)
{
	return r->torn;
}

uint64_t tv_log_reader_good_end(const tv_log_reader *r)
{
	return r->good_end;
}
