/*
 * commands.c - the commands of the `trove` tool and the table naming them.
 *
 * Each command is one function taking an open database (ctx->db) and its
 * parsed arguments and returning an exit status (CLI_OK, CLI_NO, CLI_ERR);
 * main.c opens and closes the database around it, the shell keeps one
 * open for many.  Commands print results on stdout and problems on
 * stderr, and never exit the process.  Opening the database, reporting
 * the engine's errors and its log also live here, so that the one-shot
 * tool and the shell say the same things the same way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* ---- Opening, closing and reporting ---------------------------------------------- */

void cli_log(void *arg, int level, const char *msg)
{
	cli_ctx *ctx = arg;
	static const char *const names[] = {"error", "warning", "note"};
	if (level == TROVE_LOG_ERROR) {
		pthread_mutex_lock(&ctx->log_mu);
		snprintf(ctx->last_error, sizeof ctx->last_error, "%s", msg);
		pthread_mutex_unlock(&ctx->log_mu);
	}
	if (ctx->verbose && level <= ctx->verbose && level >= 0 && level <= 2)
		fprintf(stderr, "trove: engine %s: %s\n", names[level], msg);
}

/* Errors whose cause the engine describes in a message (file, offset). */
static int has_detail(int rc)
{
	return rc == TROVE_ECORRUPT || rc == TROVE_EIO || rc == TROVE_EVERSION ||
	       rc == TROVE_EBADDB || rc == TROVE_ENOSPC;
}

void cli_error(cli_ctx *ctx, const char *what, int rc)
{
	char detail[1024] = "";
	if (has_detail(rc)) {
		if (ctx->db)
			trove_errmsg(ctx->db, detail, sizeof detail);
		if (!*detail) {
			pthread_mutex_lock(&ctx->log_mu);
			snprintf(detail, sizeof detail, "%s", ctx->last_error);
			pthread_mutex_unlock(&ctx->log_mu);
		}
	}
	fprintf(stderr, "trove: %s: %s%s%s%s\n", what, trove_strerror(rc), *detail ? " (" : "",
	        detail, *detail ? ")" : "");
}

void cli_key_error(cli_ctx *ctx, const cli_str *key, int rc)
{
	char k[256];
	cli_error(ctx, cli_escape_buf(k, sizeof k, key->p, key->n), rc);
}

/* Reports rc about key; the exit status it means. */
static int key_status(cli_ctx *ctx, const cli_str *key, int rc)
{
	cli_key_error(ctx, key, rc);
	return rc == TROVE_ENOTFOUND || rc == TROVE_EEXIST ? CLI_NO : CLI_ERR;
}

int cli_open_db(cli_ctx *ctx, cli_open mode)
{
	trove_options o;
	trove_options_init(&o);
	o.sync = TROVE_SYNC_ALWAYS;
	o.read_only = mode == OPEN_READ;
	o.create_if_missing = mode == OPEN_CREATE;
	o.log = cli_log;
	o.log_arg = ctx;
	int rc = trove_open(ctx->dir, &o, &ctx->db);
	if (rc == 0)
		return CLI_OK;
	ctx->db = NULL;
	if (rc == TROVE_ENOTFOUND)
		fprintf(stderr, "trove: %s: no database there (not found)\n", ctx->dir);
	else if (rc == TROVE_ELOCKED)
		fprintf(stderr,
		        "trove: %s: database is locked by another process (a trove shell or a "
		        "program has it open; even reading needs the lock)\n",
		        ctx->dir);
	else
		cli_error(ctx, ctx->dir, rc);
	return CLI_ERR;
}

int cli_close_db(cli_ctx *ctx)
{
	if (!ctx->db)
		return CLI_OK;
	int rc = trove_close(ctx->db);
	ctx->db = NULL;
	if (rc) {
		cli_error(ctx, ctx->dir, rc);
		return CLI_ERR;
	}
	return CLI_OK;
}

/* ---- Helpers ---------------------------------------------------------------------- */

/* Keys must be 1..TROVE_MAX_KEY bytes; says so if key is not. */
static int bad_key(const cli_cmd *cmd, const cli_ctx *ctx, const cli_str *key)
{
	if (key->n == 0) {
		cli_usage_error(cmd, ctx->shell, "KEY must not be empty");
		return 1;
	}
	return 0;
}

/* Reads all of f into a malloc'd buffer (*out, *len).  0, TROVE_ETOOBIG
 * past TROVE_MAX_VALUE, TROVE_EIO or TROVE_ENOMEM. */
static int read_all(FILE *f, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return TROVE_ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > TROVE_MAX_VALUE) {
				free(buf);
				return TROVE_ETOOBIG;
			}
			char *p = realloc(buf, cap * 2);
			if (!p) {
				free(buf);
				return TROVE_ENOMEM;
			}
			buf = p;
			cap *= 2;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		return TROVE_EIO;
	}
	if (n > TROVE_MAX_VALUE) {
		free(buf);
		return TROVE_ETOOBIG;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* A value as `get` shows it: raw bytes on the command line (with a newline
 * added only for a terminal), escaped and on its own line in the shell. */
static void print_value(const cli_ctx *ctx, const void *v, size_t n)
{
	if (ctx->shell) {
		cli_put_escaped(stdout, v, n);
		fputc('\n', stdout);
		return;
	}
	fwrite(v, 1, n, stdout);
	if (isatty(STDOUT_FILENO) && (n == 0 || ((const char *)v)[n - 1] != '\n'))
		fputc('\n', stdout);
}

static const cli_str *opt_str(const cli_args *a, unsigned bit, const cli_str *s)
{
	return (a->seen & bit) ? s : NULL;
}

/* ---- Reading commands -------------------------------------------------------------- */

static int cmd_get(cli_ctx *ctx, const cli_args *a)
{
	void *v;
	size_t n;
	if (bad_key(cli_find("get"), ctx, &a->pos[0]))
		return CLI_ERR;
	int rc = trove_get(ctx->db, a->pos[0].p, a->pos[0].n, &v, &n);
	if (rc)
		return key_status(ctx, &a->pos[0], rc);
	print_value(ctx, v, n);
	trove_free(v);
	return CLI_OK;
}

static int cmd_exists(cli_ctx *ctx, const cli_args *a)
{
	if (bad_key(cli_find("exists"), ctx, &a->pos[0]))
		return CLI_ERR;
	int rc = trove_exists(ctx->db, a->pos[0].p, a->pos[0].n);
	if (rc && rc != TROVE_ENOTFOUND)
		return key_status(ctx, &a->pos[0], rc);
	if (a->verbose || ctx->shell)
		puts(rc ? "no" : "yes");
	return rc ? CLI_NO : CLI_OK;
}

static int cmd_ttl(cli_ctx *ctx, const cli_args *a)
{
	int64_t ms;
	if (bad_key(cli_find("ttl"), ctx, &a->pos[0]))
		return CLI_ERR;
	int rc = trove_ttl(ctx->db, a->pos[0].p, a->pos[0].n, &ms);
	if (rc)
		return key_status(ctx, &a->pos[0], rc);
	printf("%" PRId64 "\n", ms);
	return CLI_OK;
}

static int cmd_count(cli_ctx *ctx, const cli_args *a)
{
	uint64_t n;
	int rc = trove_count(ctx->db, &n);
	if (rc) {
		cli_error(ctx, "count", rc);
		return CLI_ERR;
	}
	printf("%" PRIu64 "\n", n);
	return CLI_OK;
}

/* One scanned pair, in the form the options ask for. */
static void print_pair(const cli_args *a, const void *k, size_t kn, const void *v, size_t vn)
{
	int keys_only = a->seen & O_KEYS_ONLY;
	if (a->seen & O_JSON) {
		fputs("{\"key\":", stdout);
		int kl = cli_put_json(stdout, k, kn), vl = 0;
		if (!keys_only) {
			fputs(",\"value\":", stdout);
			vl = cli_put_json(stdout, v, vn);
		}
		if (kl)
			fputs(",\"key_latin1\":true", stdout);
		if (vl)
			fputs(",\"value_latin1\":true", stdout);
		fputs("}\n", stdout);
		return;
	}
	cli_put_escaped(stdout, k, kn);
	if (!keys_only) {
		fputc('\t', stdout);
		cli_put_escaped(stdout, v, vn);
	}
	fputc('\n', stdout);
}

static int cmd_scan(cli_ctx *ctx, const cli_args *a)
{
	trove_cursor_opts co = {0};
	const cli_str *p = opt_str(a, O_PREFIX, &a->prefix), *lo = opt_str(a, O_FROM, &a->from),
	              *hi = opt_str(a, O_TO, &a->to);
	if (p && p->n)
		co.prefix = p->p, co.prefix_len = p->n;
	if (lo && lo->n)
		co.lower = lo->p, co.lower_len = lo->n;
	if (hi)
		co.upper = hi->p, co.upper_len = hi->n;
	if (hi && hi->n == 0)
		return CLI_OK; /* nothing sorts before the empty key */
	trove_cursor *c;
	int rc = trove_cursor_open(ctx->db, &co, &c);
	if (rc) {
		cli_error(ctx, "scan", rc);
		return CLI_ERR;
	}
	int reverse = a->seen & O_REVERSE;
	uint64_t shown = 0;
	rc = reverse ? trove_cursor_last(c) : trove_cursor_first(c);
	while (rc == 0 && !cli_interrupted && (!(a->seen & O_LIMIT) || shown < a->limit)) {
		size_t kn, vn;
		const void *k = trove_cursor_key(c, &kn), *v = trove_cursor_value(c, &vn);
		print_pair(a, k, kn, v, vn);
		shown++;
		rc = reverse ? trove_cursor_prev(c) : trove_cursor_next(c);
	}
	trove_cursor_close(c);
	if (rc && rc != TROVE_ENOTFOUND) {
		cli_error(ctx, "scan", rc);
		return CLI_ERR;
	}
	return CLI_OK;
}

static int cmd_stats(cli_ctx *ctx, const cli_args *a)
{
	trove_stats st;
	uint64_t count, disk;
	int rc = trove_get_stats(ctx->db, &st);
	if (!rc)
		rc = trove_count(ctx->db, &count);
	if (!rc)
		rc = trove_disk_size(ctx->db, &disk);
	if (rc) {
		cli_error(ctx, "stats", rc);
		return CLI_ERR;
	}
	printf("%-22s %" PRIu64 "\n", "keys", count);
	printf("%-22s %" PRIu64 "\n", "disk_bytes", disk);
	printf("%-22s %" PRIu64 "\n", "table_files", st.table_files);
	printf("%-22s %" PRIu64 "\n", "last_version", st.last_version);
	printf("%-22s %" PRIu64 "\n", "memtable_bytes", st.memtable_bytes);
	printf("%-22s %" PRIu64 "\n", "cache_bytes", st.cache_bytes);
	printf("%-6s %10s %16s\n", "level", "files", "bytes");
	for (int l = 0; l < 7; l++)
		printf("L%-5d %10" PRIu64 " %16" PRIu64 "\n", l, st.level_files[l],
		       st.level_bytes[l]);
	printf("counters since %s opened the database:\n",
	       ctx->shell ? "the shell" : "this command");
	const struct {
		const char *name;
		uint64_t v;
	} c[] = {
	        {"reads", st.reads},
	        {"writes", st.writes},
	        {"write_groups", st.write_groups},
	        {"syncs", st.syncs},
	        {"conflicts", st.conflicts},
	        {"wal_bytes", st.wal_bytes},
	        {"table_bytes", st.table_bytes},
	        {"flushes", st.flushes},
	        {"compactions", st.compactions},
	        {"compaction_bytes_read", st.compaction_bytes_read},
	        {"cache_hits", st.cache_hits},
	        {"cache_misses", st.cache_misses},
	        {"stalls", st.stalls},
	        {"stall_us", st.stall_us},
	        {"expired_reaped", st.expired_reaped},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
		printf("%-22s %" PRIu64 "\n", c[i].name, c[i].v);
	(void)a;
	return CLI_OK;
}

/* ---- Progress of the blocking maintenance calls ---------------------------------------
 *
 * trove_verify, trove_compact_range and trove_backup report nothing until
 * they return, so a watcher thread (progress.c) estimates how far they got
 * from what can be seen outside them, against the database's disk size:
 * the bytes this process has read (verify reads every file once), the
 * engine's compaction_bytes_read counter, and the bytes in the backup's
 * directory.  The estimate stops short of the total until the call
 * returns.
 */

typedef struct watch {
	trove_db *db;
	const char *dir;
	uint64_t base, total;
} watch;

static uint64_t below_total(const watch *w, uint64_t done)
{
	return w->total && done >= w->total ? w->total - 1 : done;
}

/* Bytes read by this process so far ("rchar" of /proc/self/io), or 0. */
static uint64_t bytes_read(void)
{
	char buf[512];
	int fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	const char *p = strstr(buf, "rchar:");
	return p ? strtoull(p + 6, NULL, 10) : 0;
}

static uint64_t probe_verify(void *arg)
{
	watch *w = arg;
	return below_total(w, bytes_read() - w->base);
}

static uint64_t probe_compact(void *arg)
{
	watch *w = arg;
	trove_stats st;
	if (trove_get_stats(w->db, &st))
		return 0;
	return below_total(w, st.compaction_bytes_read - w->base);
}

static uint64_t probe_backup(void *arg)
{
	watch *w = arg;
	DIR *d = opendir(w->dir);
	uint64_t sum = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	}
	if (d)
		closedir(d);
	return below_total(w, sum);
}

/* Starts a byte-counted progress line for a blocking call on ctx->db. */
static void watch_begin(cli_ctx *ctx, const cli_args *a, cli_progress *pg, watch *w,
                        const char *label, uint64_t (*probe)(void *))
{
	uint64_t total = 0;
	trove_disk_size(ctx->db, &total);
	w->db = ctx->db;
	w->total = total;
	cli_progress_begin(pg, a, label, NULL, total);
	cli_progress_watch(pg, probe, w);
}

typedef struct check_ctx {
	uint64_t problems;
} check_ctx;

static void report_problem(void *arg, const char *file, uint64_t offset, const char *msg)
{
	((check_ctx *)arg)->problems++;
	fprintf(stderr, "%s: offset %" PRIu64 ": %s\n", file, offset, msg);
}

static int cmd_check(cli_ctx *ctx, const cli_args *a)
{
	check_ctx cc = {0};
	cli_progress pg;
	watch w = {0};
	w.base = bytes_read();
	watch_begin(ctx, a, &pg, &w, "check", probe_verify);
	int rc = trove_verify(ctx->db, report_problem, &cc);
	cli_progress_end(&pg, rc == 0);
	if (rc == TROVE_ECORRUPT) {
		fprintf(stderr, "trove: %s: %" PRIu64 " problem%s found\n", ctx->dir, cc.problems,
		        cc.problems == 1 ? "" : "s");
		return CLI_ERR;
	}
	if (rc) {
		cli_error(ctx, "check", rc);
		return CLI_ERR;
	}
	printf("%s: ok\n", ctx->dir);
	return CLI_OK;
}

/* ---- Writing commands -------------------------------------------------------------- */

/* The value of a put: the argument, --file F, or (command line only) stdin.
 * *owned is set when *val must be freed. */
static int put_value(cli_ctx *ctx, const cli_args *a, cli_str *val, char **owned)
{
	const cli_cmd *cmd = cli_find("put");
	*owned = NULL;
	if (a->npos == 2) {
		if (a->file)
			return cli_usage_error(cmd, ctx->shell, "give VALUE or --file, not both");
		*val = a->pos[1];
		return CLI_OK;
	}
	if (!a->file && ctx->shell)
		return cli_usage_error(cmd, ctx->shell, "missing VALUE (or --file F)");
	FILE *f = a->file ? fopen(a->file, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "trove: %s: %s\n", a->file, strerror(errno));
		return CLI_ERR;
	}
	int rc = read_all(f, &val->p, &val->n);
	if (a->file)
		fclose(f);
	if (rc) {
		cli_error(ctx, a->file ? a->file : "stdin", rc);
		return CLI_ERR;
	}
	*owned = val->p;
	return CLI_OK;
}

static int cmd_put(cli_ctx *ctx, const cli_args *a)
{
	const cli_cmd *cmd = cli_find("put");
	if (bad_key(cmd, ctx, &a->pos[0]))
		return CLI_ERR;
	if ((a->seen & O_IF_ABSENT) && (a->seen & O_IF_PRESENT))
		return cli_usage_error(cmd, ctx->shell,
		                       "--if-absent and --if-present exclude each other");
	cli_str val = {NULL, 0};
	char *owned;
	int st = put_value(ctx, a, &val, &owned);
	if (st)
		return st;
	trove_put_opts po = {0};
	if (a->seen & O_IF_ABSENT)
		po.cond.kind = TROVE_IF_ABSENT;
	if (a->seen & O_IF_PRESENT)
		po.cond.kind = TROVE_IF_PRESENT;
	if (a->seen & O_TTL) {
		po.ttl_mode = TROVE_TTL_IN;
		po.ttl_ms = a->ttl_ms;
	}
	int rc = trove_put_ex(ctx->db, a->pos[0].p, a->pos[0].n, val.p, val.n, &po, NULL);
	free(owned);
	if (rc == TROVE_ECONDITION)
		rc = (a->seen & O_IF_ABSENT) ? TROVE_EEXIST : TROVE_ENOTFOUND;
	return rc ? key_status(ctx, &a->pos[0], rc) : CLI_OK;
}

static int cmd_del(cli_ctx *ctx, const cli_args *a)
{
	if (bad_key(cli_find("del"), ctx, &a->pos[0]))
		return CLI_ERR;
	int rc = (a->seen & O_IF_EXISTS) ? trove_del_if_exists(ctx->db, a->pos[0].p, a->pos[0].n)
	                                 : trove_del(ctx->db, a->pos[0].p, a->pos[0].n);
	return rc ? key_status(ctx, &a->pos[0], rc) : CLI_OK;
}

static int cmd_compact(cli_ctx *ctx, const cli_args *a)
{
	const cli_str *lo = opt_str(a, O_FROM, &a->from), *hi = opt_str(a, O_TO, &a->to);
	cli_progress pg;
	watch w = {0};
	trove_stats st;
	if (trove_get_stats(ctx->db, &st) == 0)
		w.base = st.compaction_bytes_read;
	watch_begin(ctx, a, &pg, &w, "compact", probe_compact);
	int rc = trove_compact_range(ctx->db, lo ? lo->p : NULL, lo ? lo->n : 0, hi ? hi->p : NULL,
	                             hi ? hi->n : 0);
	cli_progress_end(&pg, rc == 0);
	if (rc) {
		cli_error(ctx, "compact", rc);
		return CLI_ERR;
	}
	return CLI_OK;
}

static int cmd_backup(cli_ctx *ctx, const cli_args *a)
{
	cli_progress pg;
	watch w = {0};
	w.dir = a->pos[0].p;
	watch_begin(ctx, a, &pg, &w, "backup", probe_backup);
	int rc = trove_backup(ctx->db, a->pos[0].p);
	cli_progress_end(&pg, rc == 0);
	if (rc == TROVE_EEXIST) {
		fprintf(stderr, "trove: %s: already exists and is not empty\n", a->pos[0].p);
		return CLI_ERR;
	}
	if (rc) {
		cli_error(ctx, a->pos[0].p, rc);
		return CLI_ERR;
	}
	return CLI_OK;
}

/* ---- Commands without a database ----------------------------------------------------- */

static int cmd_help(cli_ctx *ctx, const cli_args *a)
{
	if (a->npos == 0) {
		cli_print_overview(stdout, ctx->shell);
		return CLI_OK;
	}
	const cli_cmd *c = cli_find(a->pos[0].p);
	if (!c || (ctx->shell && !strcmp(c->name, "shell"))) {
		fprintf(stderr, "trove: help: no command '%s'\n", a->pos[0].p);
		return CLI_ERR;
	}
	cli_print_help(stdout, c, ctx->shell);
	return CLI_OK;
}

static int cmd_shell(cli_ctx *ctx, const cli_args *a)
{
	(void)a;
	return cli_shell(ctx);
}

/* ---- The table ---------------------------------------------------------------------- */

#define SCAN_HELP                                                                                  \
	"Keys come in order (bytewise); --prefix, --from and --to combine.\n"                      \
	"Text output is one line per key: KEY<TAB>VALUE, where printable ASCII is\n"               \
	"written as is, backslash as \\\\, tab as \\t, newline as \\n and every other\n"           \
	"byte (controls, DEL, bytes >= 0x80, so UTF-8 too) as \\xHH.\n"                            \
	"--json writes one object per line, {\"key\":\"...\",\"value\":\"...\"}, with JSON\n"      \
	"escapes.  A key or value that is valid UTF-8 is written as is; one that is\n"             \
	"not is written byte by byte as Latin-1 (bytes >= 0x80 as \\u00XX) and the\n"              \
	"object gets \"key_latin1\":true or \"value_latin1\":true, so the exact bytes\n"           \
	"are the code points of the string.\n"

#define PROGRESS_HELP                                                                              \
	"A progress line (rate, ETA) goes to stderr when it is a terminal; --quiet\n"              \
	"drops it, --progress shows it anyway.\n"

#define DUMP_HELP                                                                                  \
	"The dump is the database at one moment: every live key with its value and its\n"          \
	"expiry as an absolute time, so that `trove dump A | trove load B` makes B a\n"            \
	"copy of A, TTLs included.  The binary form (docs/FORMAT.md, \"Dump files\")\n"            \
	"is portable and checksummed; a binary dump is not written to a terminal.\n"               \
	"--text writes \"#trove-dump-text 1\", then KEY<TAB>VALUE<TAB>EXPIRY lines in the\n"       \
	"escapes of scan (EXPIRY: Unix ms, 0 for none), then \"#end N\".\n"

#define LOAD_HELP                                                                                  \
	"Reads a dump made by `trove dump` (--text: its text form) and writes its\n"               \
	"pairs, replacing the values of keys that exist (a merge).  --if-empty\n"                  \
	"refuses a database that holds any key.  Keys whose expiry has passed are\n"               \
	"skipped; the others keep their absolute expiry.  The input is checked as it\n"            \
	"is read, and written in atomic batches of 1000 records (or 8 MiB): on damage\n"           \
	"(bad magic, a checksum mismatch, a cut input) the load stops with the byte\n"             \
	"offset, and the database holds exactly the batches committed before it,\n"                \
	"which the message counts.  In the shell FILE is required.\n"

#define IMPORT_HELP                                                                                \
	"Reads FILE with the peer's own library and writes its pairs like load (a\n"               \
	"merge; --if-empty refuses a database with keys).  --format names the format:\n"           \
	"gdbm, ndbm (FILE is the name without .dir/.pag), bdb (btree or hash), lmdb\n"             \
	"(a directory with data.mdb, or a single file); without it the format is\n"                \
	"recognised by its magic number.  Records Trove cannot hold (an empty key, a\n"            \
	"key over 65535 bytes, a value over 64 MiB, a duplicate key) are skipped with\n"           \
	"a warning, and the command then exits 2 after importing everything else.\n"

#define EXPORT_HELP                                                                                \
	"Writes every live pair into FILE, created if missing and merged into\n"                   \
	"(values replaced) if it exists, with the peer's own library.  --format is\n"              \
	"required: gdbm, ndbm, bdb-btree (or bdb), bdb-hash, lmdb.  Expiry times are\n"            \
	"dropped (the peers have none; a note says how many keys had one).  LMDB\n"                \
	"refuses keys over 511 bytes: they are skipped with a warning (exit 2).\n"

const cli_cmd cli_cmds[] = {
        {"get", "KEY", "print the value of KEY",
         "The command line writes the value raw, byte for byte (adding a newline only\n"
         "when stdout is a terminal); the shell prints it escaped like scan, on one\n"
         "line.  A missing key prints \"trove: KEY: not found\" and exits 1.\n",
         1, 1, 0, OPEN_READ, 1, cmd_get},
        {"put", "KEY [VALUE]", "set KEY to VALUE, to the contents of --file F, or to stdin",
         "Without VALUE or --file the value is read from stdin up to end of file.\n"
         "The write is durable when the command returns.  A failed --if-absent or\n"
         "--if-present writes nothing and exits 1.  A value starting with '-' needs\n"
         "'--' before it.\n",
         1, 2, O_TTL | O_IF_ABSENT | O_IF_PRESENT | O_FILE, OPEN_CREATE, 1, cmd_put},
        {"del", "KEY", "delete KEY",
         "Succeeds whether or not KEY existed, unless --if-exists is given.\n", 1, 1, O_IF_EXISTS,
         OPEN_WRITE, 1, cmd_del},
        {"exists", "KEY", "exit 0 if KEY exists, 1 if not",
         "Prints nothing on the command line unless -v is given; the shell always\n"
         "prints yes or no.\n",
         1, 1, 0, OPEN_READ, 1, cmd_exists},
        {"ttl", "KEY", "print the milliseconds KEY has left to live, or -1",
         "-1 means the key never expires; a missing key exits 1.\n", 1, 1, 0, OPEN_READ, 1,
         cmd_ttl},
        {"count", "", "print the number of live keys", "", 0, 0, 0, OPEN_READ, 0, cmd_count},
        {"scan", "", "print keys and values in order", SCAN_HELP, 0, 0,
         O_PREFIX | O_FROM | O_TO | O_REVERSE | O_LIMIT | O_KEYS_ONLY | O_JSON, OPEN_READ, 0,
         cmd_scan},
        {"stats", "", "print sizes per level, files, counters, key count and disk size",
         "The counters count what this process did since it opened the database.\n", 0, 0, 0,
         OPEN_READ, 0, cmd_stats},
        {"check", "", "verify every checksum and the key order of every file",
         "Each problem is printed on stderr as \"FILE: offset N: MESSAGE\".\n"
         "Exits 0 if the database is intact, 2 if anything is damaged.\n" PROGRESS_HELP,
         0, 0, O_QUIET | O_PROGRESS, OPEN_READ, 0, cmd_check},
        {"compact", "", "compact the tables holding keys in [--from, --to]",
         "Without bounds the whole database is compacted; --to is inclusive here.\n" PROGRESS_HELP,
         0, 0, O_FROM | O_TO | O_QUIET | O_PROGRESS, OPEN_WRITE, 0, cmd_compact},
        {"backup", "DEST", "write a consistent copy of the database to directory DEST",
         "DEST must not exist or must be empty; the copy opens as a normal "
         "database.\n" PROGRESS_HELP,
         1, 1, O_QUIET | O_PROGRESS, OPEN_WRITE, 0, cmd_backup},
        {"dump", "[FILE]", "write every key, value and expiry to FILE (or stdout) as a dump",
         DUMP_HELP PROGRESS_HELP, 0, 1, O_TEXT | O_QUIET | O_PROGRESS, OPEN_READ, 0, cli_cmd_dump},
        {"load", "[FILE]", "add the pairs of a dump in FILE (or stdin) to the database",
         LOAD_HELP PROGRESS_HELP, 0, 1, O_TEXT | O_IF_EMPTY | O_QUIET | O_PROGRESS, OPEN_CREATE, 0,
         cli_cmd_load},
        {"import", "FILE", "add the pairs of a GDBM, ndbm, Berkeley DB or LMDB database",
         IMPORT_HELP PROGRESS_HELP, 1, 1, O_FORMAT | O_IF_EMPTY | O_QUIET | O_PROGRESS, OPEN_CREATE,
         0, cli_cmd_import},
        {"export", "FILE", "write every pair into a GDBM, ndbm, Berkeley DB or LMDB database",
         EXPORT_HELP PROGRESS_HELP, 1, 1, O_FORMAT | O_QUIET | O_PROGRESS, OPEN_READ, 0,
         cli_cmd_export},
        {"shell", "", "run commands interactively (or from stdin, one per line)",
         "The shell takes the commands above without DIR, plus help and quit.  Words\n"
         "are split at spaces; \"double quotes\" and bare words take the escapes\n"
         "\\xHH \\\\ \\t \\n \\r \\0 \\\" (for binary keys), 'single quotes' take none, and a\n"
         "quoted word is never an option.  get prints values escaped like scan.\n"
         "On a terminal it offers line editing, history (~/.trove_history) and tab\n"
         "completion of command names; otherwise it reads stdin without prompts and\n"
         "exits 2 if any command failed with an error (1 answers do not count).\n",
         0, 0, O_READ_ONLY, OPEN_CREATE, 0, cmd_shell},
        {"help", "[COMMAND]", "show the commands, or one command's options", "", 0, 1, 0, OPEN_NONE,
         0, cmd_help},
        {NULL, NULL, NULL, NULL, 0, 0, 0, OPEN_NONE, 0, NULL},
};

const cli_cmd *cli_find(const char *name)
{
	for (const cli_cmd *c = cli_cmds; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}
