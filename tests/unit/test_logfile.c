/*
 * test_logfile.c - record logs: round trips, torn tails and corruption.
 *
 * Logs are written through the POSIX VFS, then damaged with plain file
 * calls (cut short, extended with garbage or zeros, bytes flipped) and read
 * back: a torn tail (including the zeros a mapped or zeroed log ends in
 * when its writer is killed) must be dropped with every earlier record
 * intact, damage followed by an intact record must be TROVE_ECORRUPT with
 * a message naming the file and offset.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/logfile.h"
#include "testutil.h"
#include "util/checksum.h"
#include "util/coding.h"

/* ---- Helpers ------------------------------------------------------------- */

typedef struct fixture {
	char *dir;
	char *path;
	char msg[512]; /* the last message logged */
	int nmsg;
	tv_logger lg;
} fixture;

static void capture(void *arg, int level, const char *msg)
{
	fixture *fx = arg;
	snprintf(fx->msg, sizeof fx->msg, "%s", msg);
	fx->nmsg++;
}

static int setup(void **state)
{
	fixture *fx = calloc(1, sizeof *fx);
	if (!fx)
		return -1;
	fx->dir = tu_tmpdir("logfile");
	fx->path = fx->dir ? tu_join(fx->dir, "000001.log") : NULL;
	if (!fx->path)
		return -1;
	fx->lg.fn = capture;
	fx->lg.arg = fx;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture *fx = *state;
	tu_rmrf(fx->dir);
	free(fx->dir);
	free(fx->path);
	free(fx);
	return 0;
}

/* Record i of a test log: length from lens[i], bytes derived from i. */
static char *make_record(size_t i, size_t len)
{
	char *p = malloc(len ? len : 1);
	assert_non_null(p);
	for (size_t j = 0; j < len; j++)
		p[j] = (char)(i * 131 + j * 7 + (j >> 8));
	return p;
}

/* Writes records of the given lengths; offs[i] (if not NULL) receives the
 * offset of record i, offs[n] the end of the file. */
static void write_log(const char *path, const char *magic, const size_t *lens, size_t n,
                      uint64_t *offs)
{
	tv_log_writer *w;
	assert_int_equal(tv_log_create(tv_vfs_posix(), path, magic, 0, &w), 0);
	assert_int_equal(tv_log_size(w), TV_LOG_HEADER);
	for (size_t i = 0; i < n; i++) {
		if (offs)
			offs[i] = tv_log_size(w);
		char *rec = make_record(i, lens[i]);
		assert_int_equal(tv_log_append(w, tv_slice_make(rec, lens[i])), 0);
		free(rec);
	}
	if (offs)
		offs[n] = tv_log_size(w);
	assert_int_equal(tv_log_sync(w), 0);
	assert_int_equal(tv_log_close(w), 0);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void spit(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	if (len)
		assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* Reads the whole log.  Returns the status that ended it (0 at a clean or
 * torn end, else the error); *count gets the records read, each checked
 * against make_record(i, lens[i]). */
static int read_log(fixture *fx, const char *magic, const size_t *lens, size_t *count, int *torn,
                    uint64_t *good_end)
{
	tv_log_reader *r;
	int rc = tv_log_reader_open(tv_vfs_posix(), fx->path, magic, &fx->lg, &r);
	if (rc)
		return rc;
	size_t i = 0;
	tv_slice rec;
	while ((rc = tv_log_read(r, &rec)) == 1) {
		assert_int_equal(rec.len, lens[i]);
		char *want = make_record(i, lens[i]);
		if (rec.len)
			assert_memory_equal(rec.data, want, rec.len);
		free(want);
		i++;
	}
	/* The end is sticky. */
	assert_int_equal(tv_log_read(r, &rec), rc);
	*count = i;
	*torn = tv_log_reader_torn(r);
	*good_end = tv_log_reader_good_end(r);
	tv_log_reader_close(r);
	return rc;
}

/* ---- Round trips ----------------------------------------------------------- */

static void test_round_trip(void **state)
{
	fixture *fx = *state;
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("logfile round trip"));
	enum { N = 3000 };
	size_t *lens = malloc(N * sizeof *lens);
	assert_non_null(lens);
	for (size_t i = 0; i < N; i++) {
		uint64_t k = tu_below(&rng, 100);
		lens[i] = k < 5 ? 0 : k < 95 ? tu_below(&rng, 300) : tu_below(&rng, 100000);
	}
	lens[10] = 1u << 20; /* bigger than the read chunk */
	lens[N - 1] = 1u << 20;
	lens[N / 2] = 0;
	uint64_t *offs = malloc((N + 1) * sizeof *offs);
	assert_non_null(offs);
	write_log(fx->path, TV_MAGIC_WAL, lens, N, offs);

	size_t count;
	int torn;
	uint64_t good_end;
	assert_int_equal(read_log(fx, TV_MAGIC_WAL, lens, &count, &torn, &good_end), 0);
	assert_int_equal(count, N);
	assert_false(torn);
	assert_int_equal(good_end, offs[N]);
	size_t flen;
	free(slurp(fx->path, &flen));
	assert_int_equal(flen, offs[N]);
	assert_int_equal(fx->nmsg, 0);
	free(lens);
	free(offs);
}

static void test_empty_log(void **state)
{
	fixture *fx = *state;
	write_log(fx->path, TV_MAGIC_MANIFEST, NULL, 0, NULL);
	size_t count;
	int torn;
	uint64_t good_end;
	assert_int_equal(read_log(fx, TV_MAGIC_MANIFEST, NULL, &count, &torn, &good_end), 0);
	assert_int_equal(count, 0);
	assert_false(torn);
	assert_int_equal(good_end, TV_LOG_HEADER);
}

static void test_writer_limits(void **state)
{
	fixture *fx = *state;
	tv_log_writer *w;
	assert_int_equal(tv_log_create(tv_vfs_posix(), fx->path, TV_MAGIC_WAL, 0, &w), 0);
	char one = 'x';
	/* Refused before a byte is read or written. */
	assert_int_equal(tv_log_append(w, tv_slice_make(&one, (size_t)TV_LOG_MAX_RECORD + 1)),
	                 TROVE_ETOOBIG);
	assert_int_equal(tv_log_size(w), TV_LOG_HEADER);
	assert_int_equal(tv_log_append(w, tv_slice_make(&one, 1)), 0);
	assert_int_equal(tv_log_size(w), TV_LOG_HEADER + TV_LOG_RECORD_HEADER + 1);
	assert_int_equal(tv_log_close(w), 0);
	assert_int_equal(tv_log_close(NULL), 0);
}

/* Zero-filled space must never read as a record: the checksum of an empty
 * record is not zero. */
static void test_zero_record_is_invalid(void **state)
{
	char len[4] = {0};
	assert_int_not_equal(tv_checksum2(len, 4, "", 0), 0);
}

/* ---- Torn tails ------------------------------------------------------------ */

static void test_torn_at_every_offset(void **state)
{
	fixture *fx = *state;
	const size_t lens[] = {10, 0, 300, 77, 1000};
	const size_t n = sizeof lens / sizeof lens[0];
	uint64_t offs[sizeof lens / sizeof lens[0] + 1];
	write_log(fx->path, TV_MAGIC_WAL, lens, n, offs);
	size_t flen;
	char *full = slurp(fx->path, &flen);
	for (uint64_t cut = offs[n - 1]; cut < offs[n]; cut++) {
		spit(fx->path, full, (size_t)cut);
		size_t count;
		int torn;
		uint64_t good_end;
		assert_int_equal(read_log(fx, TV_MAGIC_WAL, lens, &count, &torn, &good_end), 0);
		assert_int_equal(count, n - 1);
		assert_int_equal(torn, cut > offs[n - 1]);
		assert_int_equal(good_end, offs[n - 1]);
	}
	free(full);
}

/* A cut inside the header, an empty file or an all-zero header: an empty
 * log with a torn tail. */
static void test_torn_header(void **state)
{
	fixture *fx = *state;
	write_log(fx->path, TV_MAGIC_WAL, NULL, 0, NULL);
	size_t flen;
	char *full = slurp(fx->path, &flen);
	for (size_t cut = 0; cut < TV_LOG_HEADER; cut++) {
		spit(fx->path, full, cut);
		size_t count;
		int torn;
		uint64_t good_end;
		assert_int_equal(read_log(fx, TV_MAGIC_WAL, NULL, &count, &torn, &good_end), 0);
		assert_int_equal(count, 0);
		assert_true(torn);
		assert_int_equal(good_end, 0);
	}
	char zeros[4096] = {0};
	spit(fx->path, zeros, sizeof zeros);
	size_t count;
	int torn;
	uint64_t good_end;
	assert_int_equal(read_log(fx, TV_MAGIC_WAL, NULL, &count, &torn, &good_end), 0);
	assert_int_equal(count, 0);
	assert_true(torn);
	free(full);
}

/* Appends extra bytes after an intact log and reads it: the records must
 * all come back and the extra bytes be taken as a torn tail. */
static void check_tail(fixture *fx, const char *full, size_t flen, const size_t *lens, size_t n,
                       const char *tail, size_t tlen)
{
	char *p = malloc(flen + tlen);
	assert_non_null(p);
	memcpy(p, full, flen);
	memcpy(p + flen, tail, tlen);
	spit(fx->path, p, flen + tlen);
	free(p);
	size_t count;
	int torn;
	uint64_t good_end;
	fx->nmsg = 0;
	assert_int_equal(read_log(fx, TV_MAGIC_WAL, lens, &count, &torn, &good_end), 0);
	assert_int_equal(count, n);
	assert_true(torn);
	assert_int_equal(good_end, flen);
	assert_int_equal(fx->nmsg, 0); /* a torn tail is the caller's to report */
}

static void test_garbage_tail(void **state)
{
	fixture *fx = *state;
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("logfile garbage"));
	const size_t lens[] = {50, 5000, 0, 123};
	const size_t n = sizeof lens / sizeof lens[0];
	write_log(fx->path, TV_MAGIC_WAL, lens, n, NULL);
	size_t flen;
	char *full = slurp(fx->path, &flen);
	char *tail = malloc(200000);
	assert_non_null(tail);
	for (int round = 0; round < 200; round++) {
		size_t tlen = 1 + tu_below(&rng, round < 190 ? 2000 : 200000);
		for (size_t i = 0; i < tlen; i++)
			tail[i] = (char)tu_rand(&rng);
		check_tail(fx, full, flen, lens, n, tail, tlen);
	}
	/* A header claiming a huge record, then garbage. */
	tv_put_fixed32(tail + 4, 0xfffffff0u);
	check_tail(fx, full, flen, lens, n, tail, 64);
	free(tail);
	free(full);
}

static void test_zero_tail(void **state)
{
	fixture *fx = *state;
	const size_t lens[] = {50, 70000, 1};
	const size_t n = sizeof lens / sizeof lens[0];
	uint64_t offs[sizeof lens / sizeof lens[0] + 1];
	write_log(fx->path, TV_MAGIC_WAL, lens, n, offs);
	size_t flen;
	char *full = slurp(fx->path, &flen);
	char *zeros = calloc(1, 300000);
	assert_non_null(zeros);
	check_tail(fx, full, flen, lens, n, zeros, 1);
	check_tail(fx, full, flen, lens, n, zeros, 4096);
	check_tail(fx, full, flen, lens, n, zeros, 300000);

	/* The file grew but the last records' bytes never arrived: the space
	 * reads as zeros from the start of record 1. */
	memset(full + offs[1], 0, flen - offs[1]);
	spit(fx->path, full, flen);
	size_t count;
	int torn;
	uint64_t good_end;
	assert_int_equal(read_log(fx, TV_MAGIC_WAL, lens, &count, &torn, &good_end), 0);
	assert_int_equal(count, 1);
	assert_true(torn);
	assert_int_equal(good_end, offs[1]);
	free(zeros);
	free(full);
}

/* A log opened `how` (appended through a mapping, or over zeros written
 * ahead) by a process killed before it closed the log: the file runs on
 * in zeros (for a mapped log, to the end of the window being filled),
 * and every record appended before the kill reads back, the zeros taken
 * as a torn tail.  Closed, the same log has no tail.  Some large
 * records, then small ones across many windows. */
static void check_killed(void **state, int how)
{
	fixture *fx = *state;
	const size_t first[] = {50, 70000, 1, 3000, (size_t)(2u << 20) + 17, 10, 0, 400};
	const size_t nfirst = sizeof first / sizeof first[0], n = nfirst + 40000;
	size_t *lens = malloc(n * sizeof *lens);
	assert_non_null(lens);
	memcpy(lens, first, sizeof first);
	for (size_t i = nfirst; i < n; i++)
		lens[i] = (i * 7919) % 200;
	uint64_t end = TV_LOG_HEADER;
	for (size_t i = 0; i < n; i++)
		end += TV_LOG_RECORD_HEADER + lens[i];
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tv_log_writer *w;
		if (tv_log_create(tv_vfs_posix(), fx->path, TV_MAGIC_WAL, how, &w) != 0)
			_exit(2);
		for (size_t i = 0; i < n; i++) {
			char *rec = make_record(i, lens[i]);
			if (tv_log_append(w, tv_slice_make(rec, lens[i])) != 0)
				_exit(3);
			free(rec);
		}
		raise(SIGKILL);
		_exit(4);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	size_t flen;
	free(slurp(fx->path, &flen));
	assert_true(flen > end);

	size_t count;
	int torn;
	uint64_t good_end;
	assert_int_equal(read_log(fx, TV_MAGIC_WAL, lens, &count, &torn, &good_end), 0);
	assert_int_equal(count, n);
	assert_true(torn);
	assert_int_equal(good_end, end);

	tv_log_writer *w;
	assert_int_equal(tv_log_create(tv_vfs_posix(), fx->path, TV_MAGIC_WAL, how, &w), 0);
	for (size_t i = 0; i < n; i++) {
		char *rec = make_record(i, lens[i]);
		assert_int_equal(tv_log_append(w, tv_slice_make(rec, lens[i])), 0);
		free(rec);
	}
	assert_int_equal(tv_log_size(w), end);
	assert_int_equal(tv_log_close(w), 0);
	assert_int_equal(read_log(fx, TV_MAGIC_WAL, lens, &count, &torn, &good_end), 0);
	assert_int_equal(count, n);
	assert_false(torn);
	assert_int_equal(good_end, end);
	free(lens);
}

static void test_mapped_killed(void **state)
{
	check_killed(state, TV_OPEN_MAPPED);
}

static void test_zeroed_killed(void **state)
{
	check_killed(state, TV_OPEN_ZEROED);
}

/* ---- Corruption ------------------------------------------------------------ */

/* Flips byte `at` of the log and expects TROVE_ECORRUPT after `intact`
 * records, with a message naming the file and the damaged record's
 * offset. */
static void check_flip(fixture *fx, const char *full, size_t flen, const size_t *lens, uint64_t at,
                       size_t intact, uint64_t rec_off)
{
	char *p = malloc(flen);
	assert_non_null(p);
	memcpy(p, full, flen);
	p[at] ^= 0x20;
	spit(fx->path, p, flen);
	free(p);
	size_t count;
	int torn;
	uint64_t good_end;
	fx->msg[0] = 0;
	assert_int_equal(read_log(fx, TV_MAGIC_WAL, lens, &count, &torn, &good_end),
	                 TROVE_ECORRUPT);
	assert_int_equal(count, intact);
	assert_false(torn);
	assert_int_equal(good_end, rec_off);
	char off[32];
	snprintf(off, sizeof off, "offset %llu", (unsigned long long)rec_off);
	assert_non_null(strstr(fx->msg, fx->path));
	assert_non_null(strstr(fx->msg, off));
}

static void test_corrupt_middle(void **state)
{
	fixture *fx = *state;
	const size_t lens[] = {40, 100, 200000, 30, 500, 20};
	const size_t n = sizeof lens / sizeof lens[0];
	uint64_t offs[sizeof lens / sizeof lens[0] + 1];
	write_log(fx->path, TV_MAGIC_WAL, lens, n, offs);
	size_t flen;
	char *full = slurp(fx->path, &flen);
	/* Every byte of record 1 (checksum, length, payload). */
	for (uint64_t at = offs[1]; at < offs[2]; at++)
		check_flip(fx, full, flen, lens, at, 1, offs[1]);
	/* A big record's payload: the next record is found at its declared
	 * end, far beyond the scan window. */
	check_flip(fx, full, flen, lens, offs[2] + 8 + 1000, 2, offs[2]);
	check_flip(fx, full, flen, lens, offs[3] - 1, 2, offs[2]);
	/* A length grown past the end of the file: the scan finds the next
	 * record. */
	check_flip(fx, full, flen, lens, offs[4] + 5, 4, offs[4]);
	/* The next-to-last record, with one intact record after it. */
	check_flip(fx, full, flen, lens, offs[5] - 3, 4, offs[4]);
	free(full);
}

/* tv_log_reader_skip_damage: after damage with intact records after it,
 * reading goes on at the first of them (recovery uses it to look at what
 * follows damage); after any other error it refuses. */
static void test_skip_damage(void **state)
{
	fixture *fx = *state;
	const size_t lens[] = {40, 100, 30, 500, 20};
	const size_t n = sizeof lens / sizeof lens[0];
	uint64_t offs[sizeof lens / sizeof lens[0] + 1];
	write_log(fx->path, TV_MAGIC_WAL, lens, n, offs);
	size_t flen;
	char *full = slurp(fx->path, &flen);
	full[offs[1] + 10] ^= 0x40;
	full[offs[3] + 20] ^= 0x40;
	spit(fx->path, full, flen);
	tv_log_reader *r;
	assert_int_equal(tv_log_reader_open(tv_vfs_posix(), fx->path, TV_MAGIC_WAL, &fx->lg, &r), 0);
	tv_slice rec;
	assert_int_equal(tv_log_read(r, &rec), 1);
	assert_int_equal(tv_log_read(r, &rec), TROVE_ECORRUPT);
	assert_int_equal(tv_log_reader_good_end(r), offs[1]);
	assert_int_equal(tv_log_reader_skip_damage(r), 0);
	assert_int_equal(tv_log_read(r, &rec), 1);
	assert_int_equal(rec.len, lens[2]);
	assert_int_equal(tv_log_read(r, &rec), TROVE_ECORRUPT);
	assert_int_equal(tv_log_reader_skip_damage(r), 0);
	assert_int_equal(tv_log_read(r, &rec), 1);
	assert_int_equal(rec.len, lens[4]);
	assert_int_equal(tv_log_read(r, &rec), 0);
	assert_int_equal(tv_log_reader_skip_damage(r), TROVE_ECORRUPT);
	tv_log_reader_close(r);
	free(full);
}

/* Damage followed by a candidate record too big to verify within the scan
 * budget: the reader cannot rule out an intact record, so it reports
 * corruption instead of dropping what may be acknowledged data. */
static void test_scan_budget(void **state)
{
	fixture *fx = *state;
	const size_t lens[] = {40};
	uint64_t offs[2];
	write_log(fx->path, TV_MAGIC_WAL, lens, 1, offs);
	size_t flen;
	char *full = slurp(fx->path, &flen);
	size_t big = 65u << 20, total = flen + 16 + big;
	char *p = calloc(1, total);
	assert_non_null(p);
	memcpy(p, full, flen);
	memset(p + flen, 0xff, 12); /* a damaged header, then a candidate */
	tv_put_fixed32(p + flen + 12, (uint32_t)big);
	spit(fx->path, p, total);
	size_t count;
	int torn;
	uint64_t good_end;
	fx->msg[0] = 0;
	assert_int_equal(read_log(fx, TV_MAGIC_WAL, lens, &count, &torn, &good_end),
	                 TROVE_ECORRUPT);
	assert_int_equal(count, 1);
	assert_non_null(strstr(fx->msg, "rule out"));
	free(p);
	free(full);
}

/* The last record damaged in place (not cut) is a torn tail. */
static void test_damaged_last_record(void **state)
{
	fixture *fx = *state;
	const size_t lens[] = {40, 100, 80};
	const size_t n = sizeof lens / sizeof lens[0];
	uint64_t offs[sizeof lens / sizeof lens[0] + 1];
	write_log(fx->path, TV_MAGIC_WAL, lens, n, offs);
	size_t flen;
	char *full = slurp(fx->path, &flen);
	for (uint64_t at = offs[2]; at < offs[3]; at++) {
		full[at] ^= 0x01;
		spit(fx->path, full, flen);
		full[at] ^= 0x01;
		size_t count;
		int torn;
		uint64_t good_end;
		assert_int_equal(read_log(fx, TV_MAGIC_WAL, lens, &count, &torn, &good_end), 0);
		assert_int_equal(count, 2);
		assert_true(torn);
		assert_int_equal(good_end, offs[2]);
	}
	free(full);
}

static void test_bad_header(void **state)
{
	fixture *fx = *state;
	const size_t lens[] = {5};
	write_log(fx->path, TV_MAGIC_WAL, lens, 1, NULL);
	size_t flen;
	char *full = slurp(fx->path, &flen);
	tv_log_reader *r = NULL;

	/* The wrong kind of log. */
	fx->msg[0] = 0;
	assert_int_equal(
	        tv_log_reader_open(tv_vfs_posix(), fx->path, TV_MAGIC_MANIFEST, &fx->lg, &r),
	        TROVE_ECORRUPT);
	assert_null(r);
	assert_non_null(strstr(fx->msg, fx->path));
	assert_non_null(strstr(fx->msg, "offset 0"));

	/* A damaged magic, version or checksum byte. */
	for (size_t at = 0; at < TV_LOG_HEADER; at++) {
		full[at] ^= 0x40;
		spit(fx->path, full, flen);
		full[at] ^= 0x40;
		assert_int_equal(
		        tv_log_reader_open(tv_vfs_posix(), fx->path, TV_MAGIC_WAL, &fx->lg, &r),
		        TROVE_ECORRUPT);
	}

	/* Write-ahead logs are written at their newest version and read at
	 * the first one too; a manifest only at the first. */
	assert_int_equal(tv_get_fixed32(full + 8), TV_WAL_VERSION);
	tv_put_fixed32(full + 8, TV_LOG_VERSION);
	tv_put_fixed32(full + 12, tv_checksum(full, 12));
	spit(fx->path, full, flen);
	assert_int_equal(tv_log_reader_open(tv_vfs_posix(), fx->path, TV_MAGIC_WAL, &fx->lg, &r), 0);
	tv_log_reader_close(r);
	r = NULL;
	memcpy(full, TV_MAGIC_MANIFEST, 8);
	tv_put_fixed32(full + 8, TV_WAL_VERSION);
	tv_put_fixed32(full + 12, tv_checksum(full, 12));
	spit(fx->path, full, flen);
	assert_int_equal(
	        tv_log_reader_open(tv_vfs_posix(), fx->path, TV_MAGIC_MANIFEST, &fx->lg, &r),
	        TROVE_EVERSION);
	assert_null(r);
	memcpy(full, TV_MAGIC_WAL, 8);

	/* A newer version with a correct checksum. */
	tv_put_fixed32(full + 8, TV_WAL_VERSION + 1);
	tv_put_fixed32(full + 12, tv_checksum(full, 12));
	spit(fx->path, full, flen);
	assert_int_equal(tv_log_reader_open(tv_vfs_posix(), fx->path, TV_MAGIC_WAL, &fx->lg, &r),
	                 TROVE_EVERSION);
	assert_null(r);

	/* A header-sized file of the wrong magic is not a torn tail. */
	spit(fx->path, "NOTALOG!\1\0\0\0\0\0\0\0", TV_LOG_HEADER);
	assert_int_equal(tv_log_reader_open(tv_vfs_posix(), fx->path, TV_MAGIC_WAL, NULL, &r),
	                 TROVE_ECORRUPT);

	unlink(fx->path);
	assert_int_equal(tv_log_reader_open(tv_vfs_posix(), fx->path, TV_MAGIC_WAL, NULL, &r),
	                 TROVE_ENOENT);
	free(full);
}

/* Records cut at random offsets all through a long log: whatever is cut,
 * the reader returns exactly the records wholly before the cut. */
static void test_random_cuts(void **state)
{
	fixture *fx = *state;
	tu_rng rng;
	tu_rng_seed(&rng, tu_seed("logfile cuts"));
	enum { N = 400 };
	size_t lens[N];
	for (size_t i = 0; i < N; i++)
		lens[i] = tu_below(&rng, 8) ? tu_below(&rng, 200) : tu_below(&rng, 300000);
	uint64_t offs[N + 1];
	write_log(fx->path, TV_MAGIC_WAL, lens, N, offs);
	size_t flen;
	char *full = slurp(fx->path, &flen);
	for (int round = 0; round < 60; round++) {
		uint64_t cut = TV_LOG_HEADER + tu_below(&rng, flen - TV_LOG_HEADER + 1);
		spit(fx->path, full, (size_t)cut);
		size_t whole = 0;
		while (whole < N && offs[whole + 1] <= cut)
			whole++;
		size_t count;
		int torn;
		uint64_t good_end;
		assert_int_equal(read_log(fx, TV_MAGIC_WAL, lens, &count, &torn, &good_end), 0);
		assert_int_equal(count, whole);
		assert_int_equal(torn, cut != offs[whole]);
		assert_int_equal(good_end, offs[whole]);
	}
	free(full);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_empty_log, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_writer_limits, setup, teardown),
	        cmocka_unit_test(test_zero_record_is_invalid),
	        cmocka_unit_test_setup_teardown(test_torn_at_every_offset, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_torn_header, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_garbage_tail, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_zero_tail, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mapped_killed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_zeroed_killed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_corrupt_middle, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_skip_damage, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_scan_budget, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_damaged_last_record, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_header, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_random_cuts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
