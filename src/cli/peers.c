/*
 * peers.c - `trove import` and `trove export`: moving data between Trove
 * and the databases it grew from (GDBM, ndbm, Berkeley DB, LMDB), through
 * the peers' own libraries.
 *
 * Why helper programs.  The trove tool links libtrove.a, and libtrove
 * carries compatibility faces for the very APIs the importers need: ndbm
 * (dbm_open, ...) and Berkeley DB (db_create, ...), src/compat/.  Their
 * headers rename the symbols (dbm_open is a macro for trove_dbm_open), so
 * the linker would not complain today; but one binary holding both the
 * real libdb-5.3 and a face whose headers #define db_create and DB is one
 * include away from calling the wrong one, and a mistake there is silent.
 * So each peer library lives in its own small program, trove-peer-gdbm,
 * -ndbm, -bdb and -lmdb (src/cli/peers/), which links that library and not
 * libtrove, and includes only the peer's own header.  The tool runs the
 * helper and the two talk over a pipe in the binary dump format
 * (dumpfmt.c):
 *
 *   trove import:  trove-peer-X read FILE   --dump-->  the loader of `load`
 *   trove export:  the writer of `dump`  --dump-->  trove-peer-X write FILE
 *
 * Nothing new to specify or test twice: the stream is checksummed and the
 * loader treats it as hostile, as it treats any dump.  Two more gains:
 * isolation (a peer library that crashes on a damaged file takes down the
 * helper, and the import fails cleanly with a message) and a trove binary
 * that depends on no peer library at all.  GDBM and LMDB clash with
 * nothing, but go through helpers too: one mechanism for every peer.
 *
 * Helpers are found next to the trove binary (the build directory), then
 * in ../libexec/trove/ beside it (an installed tree); $TROVE_PEER_DIR
 * overrides both.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "dumpfmt.h"

/* The formats --format names: the helper that handles each, and the
 * variant it passes to the helper when writing. */
typedef struct peer_fmt {
	const char *name;
	const char *helper;
	const char *variant;
} peer_fmt;

static const peer_fmt peer_fmts[] = {
        {"gdbm", "gdbm", NULL},      {"ndbm", "ndbm", NULL},
        {"bdb", "bdb", "btree"},     {"bdb-btree", "bdb", "btree"},
        {"bdb-hash", "bdb", "hash"}, {"lmdb", "lmdb", NULL},
        {NULL, NULL, NULL},
};

static const peer_fmt *fmt_named(const char *name)
{
	for (const peer_fmt *f = peer_fmts; f->name; f++)
		if (!strcmp(f->name, name))
			return f;
	return NULL;
}

/* ---- Recognising a file by its magic number ------------------------------------------ */

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* v, or v with its bytes swapped: the peers write their headers in the
 * byte order of the machine that made the file. */
static int is32(const unsigned char *p, uint32_t v)
{
	uint32_t x = le32(p);
	return x == v || x == __builtin_bswap32(v);
}

static int is_gdbm(const unsigned char *h, size_t n)
{
	/* GDBM_OMAGIC, GDBM_MAGIC32, GDBM_MAGIC64, GDBM_NUMSYNC_MAGIC32/64. */
	static const uint32_t m[] = {0x13579ace, 0x13579acd, 0x13579acf, 0x13579ad0, 0x13579ad1};
	for (size_t i = 0; n >= 4 && i < sizeof m / sizeof m[0]; i++)
		if (is32(h, m[i]))
			return 1;
	return 0;
}

static int is_bdb(const unsigned char *h, size_t n)
{
	/* The metadata page's magic at offset 12: btree (and recno), hash,
	 * queue, heap.  The helper refuses all but btree and hash by name. */
	static const uint32_t m[] = {0x00053162, 0x00061561, 0x00042253, 0x00074582};
	for (size_t i = 0; n >= 16 && i < sizeof m / sizeof m[0]; i++)
		if (is32(h + 12, m[i]))
			return 1;
	return 0;
}

static int is_lmdb(const unsigned char *h, size_t n)
{
	/* MDB_meta.mm_magic after the page header of meta page 0: offset 16
	 * on 64-bit machines, 12 on 32-bit ones. */
	return (n >= 20 && is32(h + 16, 0xbeefc0de)) || (n >= 16 && is32(h + 12, 0xbeefc0de));
}

/* Reads up to cap bytes of the start of path; -1 if it cannot be read. */
static ssize_t head_of(const char *path, unsigned char *h, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, h, cap);
	close(fd);
	return n;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && !strcmp(s + n - k, suffix);
}

/* The format of the database at path, by its magic numbers; NULL after
 * saying why not. */
static const peer_fmt *detect(const char *path)
{
	unsigned char h[64];
	char alt[PATH_MAX];
	struct stat st;
	if (stat(path, &st) != 0) {
		int err = errno;
		/* An ndbm database is named without its .pag and .dir files. */
		snprintf(alt, sizeof alt, "%s.pag", path);
		ssize_t n = head_of(alt, h, sizeof h);
		if (n > 0 && is_gdbm(h, (size_t)n))
			return fmt_named("ndbm");
		fprintf(stderr, "trove: import: %s: %s\n", path, strerror(err));
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(alt, sizeof alt, "%s/data.mdb", path);
		ssize_t n = head_of(alt, h, sizeof h);
		if (n > 0 && is_lmdb(h, (size_t)n))
			return fmt_named("lmdb");
		fprintf(stderr,
		        "trove: import: %s: a directory, and not an LMDB environment "
		        "(no data.mdb)\n",
		        path);
		return NULL;
	}
	ssize_t n = head_of(path, h, sizeof h);
	if (n < 0) {
		fprintf(stderr, "trove: import: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (n >= 8 && !memcmp(h, DUMP_MAGIC, 8)) {
		fprintf(stderr, "trove: import: %s: a Trove dump; use trove load\n", path);
		return NULL;
	}
	/* GDBM's ndbm keeps a GDBM file in NAME.pag and a small NAME.dir
	 * starting with "GDBM". */
	if ((ends_with(path, ".pag") && is_gdbm(h, (size_t)n)) ||
	    (ends_with(path, ".dir") && n >= 4 && !memcmp(h, "GDBM", 4)))
		return fmt_named("ndbm");
	if (is_gdbm(h, (size_t)n))
		return fmt_named("gdbm");
	if (is_bdb(h, (size_t)n))
		return fmt_named("bdb");
	if (is_lmdb(h, (size_t)n))
		return fmt_named("lmdb");
	fprintf(stderr,
	        "trove: import: %s: not a GDBM, ndbm, Berkeley DB or LMDB file that trove "
	        "recognises; name the format with --format\n",
	        path);
	return NULL;
}

/* ---- Running a helper -------------------------------------------------------------- */

/* The path of helper trove-peer-NAME into out; 0, or -1 after saying so. */
static int find_helper(const char *name, char *out, size_t cap)
{
	char self[PATH_MAX], dirs[3][PATH_MAX];
	int nd = 0;
	const char *env = getenv("TROVE_PEER_DIR");
	if (env && *env)
		snprintf(dirs[nd++], PATH_MAX, "%s", env);
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash)
			*slash = 0;
		snprintf(dirs[nd++], PATH_MAX, "%s", self);
		snprintf(dirs[nd++], PATH_MAX, "%.*s/../libexec/trove", PATH_MAX - 32, self);
	}
	for (int i = 0; i < nd; i++) {
		snprintf(out, cap, "%.*s/trove-peer-%s", PATH_MAX - 32, dirs[i], name);
		if (access(out, X_OK) == 0)
			return 0;
	}
	fprintf(stderr,
	        "trove: trove-peer-%s not found next to the trove binary or in "
	        "../libexec/trove (set TROVE_PEER_DIR)\n",
	        name);
	return -1;
}

/* Starts helper with argv; its stdout (reading) or stdin (writing) is the
 * other end of the pipe whose end is returned in *fd.  pid or -1. */
static pid_t spawn_helper(const char *helper, char *const argv[], int reading, int *fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "trove: pipe: %s\n", strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "trove: fork: %s\n", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(reading ? p[1] : p[0], reading ? STDOUT_FILENO : STDIN_FILENO) < 0)
			_exit(127);
		execv(helper, argv);
		fprintf(stderr, "trove: %s: %s\n", helper, strerror(errno));
		_exit(127);
	}
	close(reading ? p[1] : p[0]);
	*fd = reading ? p[0] : p[1];
	return pid;
}

/* The helper's exit status: its code, or 2 if it died of a signal (said). */
static int reap(pid_t pid, const char *helper)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 2;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	fprintf(stderr, "trove: %s died of signal %d\n", helper, WTERMSIG(st));
	return 2;
}

/* ---- The commands ------------------------------------------------------------------- */

int cli_cmd_import(cli_ctx *ctx, const cli_args *a)
{
	const char *path = a->pos[0].p;
	const peer_fmt *f = a->format ? fmt_named(a->format) : detect(path);
	if (!f && a->format)
		return cli_usage_error(cli_find("import"), ctx->shell,
		                       "unknown format '%s' (gdbm, ndbm, bdb, lmdb)", a->format);
	if (!f)
		return CLI_ERR;
	char helper[PATH_MAX + 64];
	if (cli_check_empty(ctx, a, "import") || find_helper(f->helper, helper, sizeof helper))
		return CLI_ERR;
	int fd;
	char *argv[] = {helper, "read", (char *)path, NULL};
	pid_t pid = spawn_helper(helper, argv, 1, &fd);
	if (pid < 0)
		return CLI_ERR;
	FILE *in = fdopen(fd, "rb");
	if (!in) {
		close(fd);
		reap(pid, helper);
		cli_error(ctx, "import", TROVE_ENOMEM);
		return CLI_ERR;
	}
	char ioerr[512] = "";
	char name[PATH_MAX + 32];
	snprintf(name, sizeof name, "the stream of trove-peer-%s", f->helper);
	int st = cli_load_from(ctx, a, in, name, 0, 0, "import", ioerr, sizeof ioerr);
	fclose(in); /* a helper still writing gets EPIPE and stops */
	int hs = reap(pid, helper);
	if (hs == 0 && *ioerr) /* the helper thought it did well: its stream is bad */
		fprintf(stderr, "trove: import: %s\n", ioerr);
	if (hs == 1 && st == CLI_OK)
		fprintf(stderr,
		        "trove: import: %s: the records above were skipped; everything "
		        "else was imported\n",
		        path);
	return hs || st ? CLI_ERR : CLI_OK;
}

int cli_cmd_export(cli_ctx *ctx, const cli_args *a)
{
	const char *path = a->pos[0].p;
	const cli_cmd *cmd = cli_find("export");
	if (!a->format)
		return cli_usage_error(cmd, ctx->shell,
		                       "give the format: --format gdbm (or ndbm, "
		                       "bdb-btree, bdb-hash, lmdb)");
	const peer_fmt *f = fmt_named(a->format);
	if (!f)
		return cli_usage_error(cmd, ctx->shell, "unknown format '%s'", a->format);
	char helper[PATH_MAX + 64];
	if (find_helper(f->helper, helper, sizeof helper))
		return CLI_ERR;
	int fd;
	char *argv[] = {helper, "write", (char *)path, (char *)f->variant, NULL};
	/* A helper that fails early closes the pipe: see EPIPE, not SIGPIPE. */
	struct sigaction ign, old;
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old);
	pid_t pid = spawn_helper(helper, argv, 0, &fd);
	FILE *out = pid < 0 ? NULL : fdopen(fd, "wb");
	int st = CLI_ERR, hs = 2;
	char ioerr[512] = "";
	if (out) {
		char name[64];
		snprintf(name, sizeof name, "trove-peer-%s", f->helper);
		st = cli_dump_to(ctx, a, out, name, 0, "export", ioerr, sizeof ioerr);
		if (fclose(out) && st == CLI_OK) {
			snprintf(ioerr, sizeof ioerr, "%s: %s", name, strerror(errno));
			st = CLI_ERR;
		}
	} else if (pid >= 0) {
		close(fd);
	}
	if (pid >= 0)
		hs = reap(pid, helper);
	sigaction(SIGPIPE, &old, NULL);
	if (hs == 0 && *ioerr)
		fprintf(stderr, "trove: export: %s\n", ioerr);
	if (hs == 1 && st == CLI_OK)
		fprintf(stderr,
		        "trove: export: %s: the records above were skipped; everything else was "
		        "exported\n",
		        path);
	return hs || st ? CLI_ERR : CLI_OK;
}
