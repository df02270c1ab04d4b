/*
 * dump.c - `trove dump` and `trove load`: the whole database to a portable
 * file and back, TTLs included.
 *
 * A dump is written from one cursor, so it is the database at one moment.
 * Every pair goes out with its expiry as an absolute Unix time in ms, so a
 * loaded key expires when the original would have.  Two forms (both in
 * docs/FORMAT.md, "Dump files"): the binary form of dumpfmt.c, and a text
 * form of one KEY<TAB>VALUE<TAB>EXPIRY line per pair in the escapes of
 * `scan`, between a "#trove-dump-text 1" line and an "#end N" line.
 *
 * Loading treats its input as hostile and applies it in atomic batches
 * (trove_write) of at most LOAD_BATCH_RECORDS pairs or LOAD_BATCH_BYTES
 * bytes: a batch is written only after every record in it has been
 * checked, so a damaged or cut input leaves the database holding exactly
 * the batches before the damage, which the error message counts.  The
 * same loader reads the streams of the import helpers (peers.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dumpfmt.h"

#define LOAD_BATCH_RECORDS 1000
#define LOAD_BATCH_BYTES (8u << 20)
#define TEXT_MAGIC "#trove-dump-text 1"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Dumping --------------------------------------------------------------------- */

/* One pair in the text form. */
static void put_text_pair(FILE *out, const void *k, size_t kn, const void *v, size_t vn,
                          int64_t exp)
{
	cli_put_escaped(out, k, kn);
	fputc('\t', out);
	cli_put_escaped(out, v, vn);
	fprintf(out, "\t%" PRId64 "\n", exp);
}

int cli_dump_to(cli_ctx *ctx, const cli_args *a, FILE *out, const char *name, int text,
                const char *what, char *ioerr, size_t iocap)
{
	uint64_t total = 0;
	int rc = trove_count(ctx->db, &total);
	trove_cursor *c = NULL;
	if (!rc)
		rc = trove_cursor_open(ctx->db, NULL, &c);
	if (rc) {
		cli_error(ctx, what, rc);
		return CLI_ERR;
	}
	dump_writer w = {0};
	int werr = 0;
	if (text)
		werr = fprintf(out, "%s\n", TEXT_MAGIC) < 0;
	else
		werr = dump_write_header(&w, out, now_ms(), total);
	cli_progress pg;
	cli_progress_begin(&pg, a, what, "records", total);
	uint64_t n = 0;
	for (rc = trove_cursor_first(c); rc == 0 && !werr && !cli_interrupted;
	     rc = trove_cursor_next(c)) {
		size_t kn, vn;
		const void *k = trove_cursor_key(c, &kn), *v = trove_cursor_value(c, &vn);
		trove_meta m;
		rc = trove_cursor_meta(c, &m);
		if (rc)
			break;
		if (text)
			put_text_pair(out, k, kn, v, vn, m.expire_at_ms);
		else
			werr = dump_write_pair(&w, k, kn, v, vn, m.expire_at_ms);
		werr = werr || ferror(out);
		if ((++n & 255) == 0)
			cli_progress_set(&pg, n);
	}
	trove_cursor_close(c);
	cli_progress_set(&pg, n);
	if (rc == TROVE_ENOTFOUND && !werr && !cli_interrupted) {
		if (text)
			werr = fprintf(out, "#end %" PRIu64 "\n", n) < 0 || fflush(out);
		else
			werr = dump_write_end(&w);
	}
	int ok = rc == TROVE_ENOTFOUND && !werr && !cli_interrupted;
	cli_progress_end(&pg, ok);
	if (werr) {
		if (ioerr)
			snprintf(ioerr, iocap, "%s: write error: %s", name, strerror(errno));
		else
			fprintf(stderr, "trove: %s: %s: write error: %s\n", what, name,
			        strerror(errno));
		return CLI_ERR;
	}
	if (rc && rc != TROVE_ENOTFOUND) {
		cli_error(ctx, what, rc);
		return CLI_ERR;
	}
	return ok ? CLI_OK : CLI_ERR;
}

int cli_cmd_dump(cli_ctx *ctx, const cli_args *a)
{
	int text = !!(a->seen & O_TEXT);
	const char *path = a->npos ? a->pos[0].p : "-";
	int to_stdout = !strcmp(path, "-");
	if (to_stdout && !text && isatty(STDOUT_FILENO)) {
		fprintf(stderr, "trove: dump: refusing to write a binary dump to a terminal "
		                "(redirect it, give FILE, or use --text)\n");
		return CLI_ERR;
	}
	FILE *out = to_stdout ? stdout : fopen(path, "wb");
	if (!out) {
		fprintf(stderr, "trove: dump: %s: %s\n", path, strerror(errno));
		return CLI_ERR;
	}
	/* Into a pipe, the reader (`trove load`, say) draws its own progress
	 * line on the same terminal: two would fight over it. */
	struct stat st_out;
	cli_args quiet = *a;
	if (to_stdout && !(a->seen & O_PROGRESS) && fstat(STDOUT_FILENO, &st_out) == 0 &&
	    S_ISFIFO(st_out.st_mode))
		quiet.seen |= O_QUIET;
	int st = cli_dump_to(ctx, &quiet, out, to_stdout ? "stdout" : path, text, "dump", NULL, 0);
	if (!to_stdout && fclose(out) && st == CLI_OK) {
		fprintf(stderr, "trove: dump: %s: %s\n", path, strerror(errno));
		st = CLI_ERR;
	}
	return st;
}

/* ---- Sources: the records of a binary or text dump --------------------------------- */

typedef struct source {
	int text;
	dump_reader bin;
	FILE *f;
	/* text form */
	char *line;
	size_t cap;
	uint64_t lineno, records;
	int started;
	char *key, *val; /* decoded; owned */
	/* the current pair (either form) */
	const char *k, *v;
	size_t kn, vn;
	int64_t exp;
	uint64_t off;  /* bytes consumed */
	char err[320]; /* "offset N: what" */
} source;

/* Reads one line (without its newline) of at most max bytes into s->line.
 * 1, 0 at end of input, -1 on a read error or an overlong line. */
static int text_getline(source *s, size_t max, size_t *len)
{
	size_t n = 0;
	int c;
	while ((c = getc_unlocked(s->f)) != EOF && c != '\n') {
		if (n + 2 > s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 256;
			char *p = realloc(s->line, cap);
			if (!p)
				return -1;
			s->line = p;
			s->cap = cap;
		}
		s->line[n++] = (char)c;
		if (n > max)
			return -1;
	}
	if (c == EOF && (n == 0 || ferror(s->f)))
		return ferror(s->f) ? -1 : 0;
	if (c == EOF) /* a last line without its newline: the input was cut */
		return -2;
	s->line[n] = 0;
	*len = n;
	return 1;
}

__attribute__((format(printf, 3, 4))) static int src_fail(source *s, uint64_t off, const char *fmt,
                                                          ...)
{
	va_list ap;
	int n = snprintf(s->err, sizeof s->err, "offset %" PRIu64 ": ", off);
	if (s->text)
		n += snprintf(s->err + n, sizeof s->err - (size_t)n, "line %" PRIu64 ": ",
		              s->lineno);
	va_start(ap, fmt);
	vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Decodes the escaped field f[0..n) into *out (replacing what it held). */
static int text_field(source *s, uint64_t off, const char *f, size_t n, char **out, size_t *len,
                      const char *what)
{
	long bad;
	free(*out);
	*out = cli_unescape(f, n, len, &bad);
	if (!*out)
		return bad < 0 ? src_fail(s, off, "out of memory")
		               : src_fail(s, off + (uint64_t)bad, "bad escape in the %s", what);
	return 0;
}

/* The next record of a text dump: 1 a pair, 0 the end, -1 an error. */
static int text_next(source *s)
{
	/* A pair line is at most 4 bytes per key or value byte plus two tabs
	 * and an expiry: a bound, so that a hostile line cannot eat memory. */
	const size_t max = 4 * ((size_t)TROVE_MAX_KEY + TROVE_MAX_VALUE) + 64;
	size_t n;
	uint64_t off = s->off;
	s->lineno++;
	int got = text_getline(s, max, &n);
	if (got == -1)
		return ferror(s->f) ? src_fail(s, off, "read error: %s", strerror(errno))
		                    : src_fail(s, off, "line too long (or out of memory)");
	if (got == -2)
		return src_fail(s, off, "truncated: the last line has no newline");
	if (got == 0)
		return src_fail(s, off, "truncated: the input ends before the \"#end\" line");
	s->off += n + 1;
	const char *l = s->line;
	if (!s->started) {
		if (n != strlen(TEXT_MAGIC) || memcmp(l, TEXT_MAGIC, n))
			return src_fail(s, off,
			                "not a Trove text dump (the first line must be \"%s\")",
			                TEXT_MAGIC);
		s->started = 1;
		return text_next(s);
	}
	const char *t1 = memchr(l, '\t', n);
	const char *t2 = t1 ? memchr(t1 + 1, '\t', n - (size_t)(t1 + 1 - l)) : NULL;
	if (!t1 && n > 5 && !memcmp(l, "#end ", 5)) {
		char *end;
		errno = 0;
		unsigned long long cnt = strtoull(l + 5, &end, 10);
		if (errno || end == l + 5 || *end || l[5] == '-' || l[5] == '+')
			return src_fail(s, off, "bad \"#end\" line");
		if (cnt != s->records)
			return src_fail(s, off,
			                "the \"#end\" line counts %llu records but %" PRIu64
			                " came before it",
			                cnt, s->records);
		if (getc_unlocked(s->f) != EOF)
			return src_fail(s, s->off, "data after the \"#end\" line");
		return 0;
	}
	if (!t2 || memchr(t2 + 1, '\t', n - (size_t)(t2 + 1 - l)))
		return src_fail(s, off, "expected KEY<TAB>VALUE<TAB>EXPIRY");
	size_t kn, vn;
	if (text_field(s, off, l, (size_t)(t1 - l), &s->key, &kn, "key") ||
	    text_field(s, off + (uint64_t)(t1 + 1 - l), t1 + 1, (size_t)(t2 - t1 - 1), &s->val, &vn,
	               "value"))
		return -1;
	if (kn == 0 || kn > TROVE_MAX_KEY)
		return src_fail(s, off, "a key of %zu bytes (keys are 1 to %u bytes)", kn,
		                TROVE_MAX_KEY);
	if (vn > TROVE_MAX_VALUE)
		return src_fail(s, off, "a value of %zu bytes (at most %u)", vn, TROVE_MAX_VALUE);
	const char *e = t2 + 1;
	char *end;
	errno = 0;
	long long exp = *e >= '0' && *e <= '9' ? strtoll(e, &end, 10) : -1;
	if (exp < 0 || errno || *end)
		return src_fail(s, off + (uint64_t)(e - l),
		                "bad expiry time (Unix ms, 0 for none)");
	s->k = s->key, s->kn = kn, s->v = s->val, s->vn = vn, s->exp = exp;
	s->records++;
	return 1;
}

static int source_open(source *s, FILE *f, int text)
{
	memset(s, 0, sizeof *s);
	s->text = text;
	s->f = f;
	if (text) {
		s->cap = 256;
		s->line = malloc(s->cap);
		return s->line ? 0 : src_fail(s, 0, "out of memory");
	}
	if (dump_read_header(&s->bin, f)) {
		snprintf(s->err, sizeof s->err, "%s", s->bin.err);
		return -1;
	}
	s->off = s->bin.off;
	return 0;
}

static int source_next(source *s)
{
	if (s->text)
		return text_next(s);
	int rc = dump_read_next(&s->bin);
	s->off = s->bin.off;
	if (rc < 0)
		snprintf(s->err, sizeof s->err, "%s", s->bin.err);
	if (rc == 1) {
		s->k = s->bin.key, s->kn = s->bin.klen, s->v = s->bin.val, s->vn = s->bin.vlen;
		s->exp = s->bin.expire_at_ms;
	}
	return rc;
}

static void source_close(source *s)
{
	dump_reader_free(&s->bin);
	free(s->line);
	free(s->key);
	free(s->val);
}

/* ---- Loading in batches ------------------------------------------------------------- */

typedef struct loader {
	cli_ctx *ctx;
	trove_batch *b;
	size_t bytes;       /* in the open batch */
	uint64_t committed; /* pairs in committed batches */
	uint64_t batches;   /* committed batches */
	uint64_t expired;   /* pairs skipped: expired before the load */
	uint64_t pending;   /* pairs in the open batch */
	uint64_t safe_off;  /* input offset up to which everything is committed */
	int64_t now;
} loader;

static int loader_flush(loader *l, uint64_t off)
{
	if (trove_batch_count(l->b) > 0) {
		int rc = trove_write(l->ctx->db, l->b, NULL);
		if (rc)
			return rc;
		l->batches++;
	}
	l->committed += l->pending;
	l->pending = 0;
	l->bytes = 0;
	l->safe_off = off;
	trove_batch_clear(l->b);
	l->now = now_ms();
	return 0;
}

/* Adds one pair; commits the batch when it is full.  off: the input offset
 * after this pair. */
static int loader_add(loader *l, const source *s, uint64_t off)
{
	l->pending++;
	if (s->exp && s->exp <= l->now) {
		l->expired++;
	} else {
		int rc = s->exp ? trove_batch_put_ttl(l->b, s->k, s->kn, s->v, s->vn, s->exp)
		                : trove_batch_put(l->b, s->k, s->kn, s->v, s->vn);
		if (rc)
			return rc;
		l->bytes += s->kn + s->vn;
	}
	if (l->pending >= LOAD_BATCH_RECORDS || l->bytes >= LOAD_BATCH_BYTES)
		return loader_flush(l, off);
	return 0;
}

/* Says how far a failed load got. */
static void report_partial(const loader *l, const char *what)
{
	if (l->batches == 0)
		fprintf(stderr, "trove: %s: nothing was written\n", what);
	else
		fprintf(stderr,
		        "trove: %s: %" PRIu64 " records in %" PRIu64 " batch%s (the input up to "
		        "offset %" PRIu64 ") were committed before the error; nothing after\n",
		        what, l->committed, l->batches, l->batches == 1 ? "" : "es", l->safe_off);
}

int cli_load_from(cli_ctx *ctx, const cli_args *a, FILE *in, const char *name, int text,
                  uint64_t size, const char *what, char *ioerr, size_t iocap)
{
	loader l = {ctx, trove_batch_new(), 0, 0, 0, 0, 0, 0, now_ms()};
	source s;
	if (!l.b) {
		cli_error(ctx, what, TROVE_ENOMEM);
		return CLI_ERR;
	}
	int rc = 0, got = source_open(&s, in, text);
	cli_progress pg;
	uint64_t hint = text ? 0 : s.bin.hint;
	/* Progress in records when the dump says how many, else in bytes. */
	cli_progress_begin(&pg, a, what,
	                   hint   ? "records"
	                   : size ? NULL
	                          : "records",
	                   hint ? hint : size);
	while (got >= 0 && !cli_interrupted && (got = source_next(&s)) == 1) {
		rc = loader_add(&l, &s, s.off);
		if (rc)
			break;
		if (((l.committed + l.pending) & 255) == 0)
			cli_progress_set(&pg, hint || !size ? l.committed + l.pending : s.off);
	}
	if (got == 0 && !rc && !cli_interrupted)
		rc = loader_flush(&l, s.off);
	cli_progress_set(&pg, hint || !size ? l.committed + l.pending : s.off);
	int ok = got == 0 && !rc && !cli_interrupted;
	cli_progress_end(&pg, ok);
	if (got < 0 && ioerr)
		snprintf(ioerr, iocap, "%s: %s", name, s.err);
	else if (got < 0)
		fprintf(stderr, "trove: %s: %s: %s\n", what, name, s.err);
	else if (rc)
		cli_error(ctx, what, rc);
	else if (cli_interrupted)
		fprintf(stderr, "trove: %s: interrupted\n", what);
	if (!ok)
		report_partial(&l, what);
	if (ok && l.expired && (a->verbose || ctx->shell))
		fprintf(stderr, "trove: %s: %" PRIu64 " expired record%s skipped\n", what,
		        l.expired, l.expired == 1 ? "" : "s");
	source_close(&s);
	trove_batch_free(l.b);
	return ok ? CLI_OK : CLI_ERR;
}

int cli_check_empty(cli_ctx *ctx, const cli_args *a, const char *what)
{
	uint64_t n;
	if (!(a->seen & O_IF_EMPTY))
		return CLI_OK;
	int rc = trove_count(ctx->db, &n);
	if (rc) {
		cli_error(ctx, what, rc);
		return CLI_ERR;
	}
	if (n) {
		fprintf(stderr, "trove: %s: %s holds %" PRIu64 " keys; --if-empty refuses it\n",
		        what, ctx->dir, n);
		return CLI_ERR;
	}
	return CLI_OK;
}

int cli_cmd_load(cli_ctx *ctx, const cli_args *a)
{
	const char *path = a->npos ? a->pos[0].p : "-";
	int from_stdin = !strcmp(path, "-");
	if (from_stdin && ctx->shell)
		return cli_usage_error(cli_find("load"), 1,
		                       "the shell reads its commands from "
		                       "stdin: give FILE");
	if (cli_check_empty(ctx, a, "load"))
		return CLI_ERR;
	FILE *in = from_stdin ? stdin : fopen(path, "rb");
	if (!in) {
		fprintf(stderr, "trove: load: %s: %s\n", path, strerror(errno));
		return CLI_ERR;
	}
	struct stat st;
	uint64_t size =
	        fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	int rc = cli_load_from(ctx, a, in, from_stdin ? "stdin" : path, !!(a->seen & O_TEXT), size,
	                       "load", NULL, 0);
	if (!from_stdin)
		fclose(in);
	return rc;
}
