/*
 * test_cli.c - the `trove` command-line tool, run as a user runs it.
 *
 * Every test forks and execs the built binary (BUILD/trove, found next to
 * this test's own directory, or $TROVE_CLI) with pipes on stdin, stdout
 * and stderr, and checks exit statuses and exact output: each command and
 * its options, help, escapes for binary keys, stdin values, JSON escaping,
 * the shell driven through stdin, the lock held by a running shell,
 * `check` finding a damaged table, and backups that open as databases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cliproc.h"
#include "testutil.h"
#include "trove.h"

/* Asserts that the command prints exactly want on stdout and exits 0. */
static void expect_out(const char *want, char *const *args)
{
	cli_proc p;
	cli_result r;
	cli_spawn(&p, args, -1);
	cli_finish(&p, NULL, 0, &r);
	if (r.status != 0)
		print_error("stderr: %s\n", r.err);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, want);
	cli_result_free(&r);
}

#define EXPECT_OUT(want, ...) expect_out((want), (char *const[]){__VA_ARGS__, NULL})

/* ---- Fixture ---------------------------------------------------------------------- */

typedef struct fixture {
	char *tmp; /* scratch directory */
	char *db;  /* tmp/db */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->tmp = tu_tmpdir("cli");
	f->db = tu_join(f->tmp, "db");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tu_rmrf(f->tmp);
	free(f->tmp);
	free(f->db);
	free(f);
	return 0;
}

/* ---- Help, version, usage ------------------------------------------------------------ */

static void test_version_and_help(void **state)
{
	(void)state;
	cli_result r;
	assert_int_equal(RUN(&r, "--version"), 0);
	assert_string_equal(r.out, "trove " TROVE_VERSION_STRING "\n");
	cli_result_free(&r);

	assert_int_equal(RUN(&r, "--help"), 0);
	assert_non_null(strstr(r.out, "usage: trove"));
	for (const char *c = "get\0put\0del\0exists\0ttl\0count\0scan\0stats\0check\0compact\0"
	                     "backup\0shell\0";
	     *c; c += strlen(c) + 1) {
		char want[32];
		snprintf(want, sizeof want, "\n  %s ", c);
		assert_non_null(strstr(r.out, want));
	}
	cli_result_free(&r);

	cli_result a, b;
	assert_int_equal(RUN(&a, "help", "put"), 0);
	assert_int_equal(RUN(&b, "put", "--help"), 0);
	assert_string_equal(a.out, b.out);
	assert_non_null(strstr(a.out, "usage: trove put DIR KEY [VALUE]"));
	assert_non_null(strstr(a.out, "--if-absent"));
	assert_non_null(strstr(a.out, "--ttl MS"));
	cli_result_free(&a);
	cli_result_free(&b);

	assert_int_equal(RUN(&r, "help", "scan"), 0);
	assert_non_null(strstr(r.out, "--json"));
	assert_non_null(strstr(r.out, "\\xHH"));
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "-h"), 0);
	assert_non_null(strstr(r.out, "Exit status"));
	cli_result_free(&r);
}

static void test_usage_errors(void **state)
{
	fixture *f = *state;
	cli_result r;
	assert_int_equal(RUN(&r, "help"), 0); /* the list, on stdout */
	assert_non_null(strstr(r.out, "Commands:"));
	cli_result_free(&r);

	struct {
		const char *args[8];
		const char *msg;
	} cases[] = {
	        {{NULL}, "usage: trove"},
	        {{"frobnicate", f->db}, "no command 'frobnicate'"},
	        {{"help", "frobnicate"}, "no command 'frobnicate'"},
	        {{"get"}, "missing DIR"},
	        {{"get", f->db}, "usage: trove get DIR KEY"},
	        {{"get", f->db, "a", "b"}, "too many arguments"},
	        {{"put", f->db, "k", "v", "--bogus"}, "unknown option --bogus"},
	        {{"put", f->db, "k", "v", "-x"}, "unknown option -x"},
	        {{"put", f->db, "k", "v", "--ttl", "soon"}, "--ttl needs a number"},
	        {{"put", f->db, "k", "v", "--ttl", "0"}, "--ttl needs a number"},
	        {{"put", f->db, "k", "v", "--ttl"}, "--ttl needs a value"},
	        {{"put", f->db, "k", "v", "--if-absent", "--if-present"}, "exclude each other"},
	        {{"put", f->db, "", "v"}, "KEY must not be empty"},
	        {{"scan", f->db, "--limit", "-1"}, "--limit needs a number"},
	        {{"get", f->db, "k", "--ttl", "5"}, "unknown option --ttl"},
	        {{"-e", "get", f->db, "bad\\q"}, "bad escape"},
	        {{"--frob"}, "unknown option --frob"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cli_proc p;
		cli_spawn(&p, (char *const *)cases[i].args, -1);
		cli_finish(&p, NULL, 0, &r);
		if (!strstr(r.err, cases[i].msg))
			print_error("case %zu: stderr: %s\n", i, r.err);
		assert_int_equal(r.status, 2);
		assert_non_null(strstr(r.err, cases[i].msg));
		assert_string_equal(r.out, "");
		cli_result_free(&r);
	}
}

/* Reading commands open read-only: they neither create a database nor
 * succeed on a missing one. */
static void test_missing_database(void **state)
{
	fixture *f = *state;
	cli_result r;
	const char *cmds[] = {"get", "exists", "ttl", "del"};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(RUN(&r, cmds[i], f->db, "k"), 2);
		assert_non_null(strstr(r.err, "no database there"));
		cli_result_free(&r);
	}
	assert_int_equal(RUN(&r, "count", f->db), 2);
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "scan", f->db), 2);
	cli_result_free(&r);
	struct stat st;
	assert_int_not_equal(stat(f->db, &st), 0);
	OK("put", f->db, "k", "v"); /* put creates it */
	assert_int_equal(stat(f->db, &st), 0);
}

/* ---- Core commands ------------------------------------------------------------------ */

static void test_put_get(void **state)
{
	fixture *f = *state;
	OK("put", f->db, "hello", "world");
	EXPECT_OUT("world", "get", f->db, "hello"); /* raw: no newline added for a pipe */
	OK("put", f->db, "hello", "again");
	EXPECT_OUT("again", "get", f->db, "hello");
	OK("put", f->db, "empty", "");
	EXPECT_OUT("", "get", f->db, "empty");
	OK("put", f->db, "--", "dash", "-5"); /* "--" lets a value start with '-' */
	EXPECT_OUT("-5", "get", f->db, "dash");
	OK("put", "--ttl=100000", f->db, "opts-first", "x"); /* options anywhere */
	EXPECT_OUT("x", "get", f->db, "opts-first");

	cli_result r;
	assert_int_equal(RUN(&r, "get", f->db, "nope"), 1);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "trove: nope: not found\n");
	cli_result_free(&r);
}

static void test_put_from_stdin_and_file(void **state)
{
	fixture *f = *state;
	const char bin[] = "line one\nline\0two\xff\n";
	cli_result r;
	assert_int_equal(RUN_IN(&r, bin, sizeof bin - 1, "put", f->db, "k"), 0);
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "get", f->db, "k"), 0);
	assert_int_equal(r.outlen, sizeof bin - 1);
	assert_memory_equal(r.out, bin, sizeof bin - 1);
	cli_result_free(&r);

	/* An empty stdin is an empty value. */
	assert_int_equal(RUN(&r, "put", f->db, "e"), 0);
	cli_result_free(&r);
	EXPECT_OUT("", "get", f->db, "e");

	char *file = tu_join(f->tmp, "value.bin");
	FILE *fp = fopen(file, "wb");
	assert_non_null(fp);
	for (int i = 0; i < 10000; i++)
		fputc(i % 251, fp);
	fclose(fp);
	OK("put", f->db, "big", "--file", file);
	assert_int_equal(RUN(&r, "get", f->db, "big"), 0);
	assert_int_equal(r.outlen, 10000);
	for (int i = 0; i < 10000; i++)
		assert_int_equal((unsigned char)r.out[i], i % 251);
	cli_result_free(&r);

	assert_int_equal(RUN(&r, "put", f->db, "k", "v", "--file", file), 2);
	assert_non_null(strstr(r.err, "not both"));
	cli_result_free(&r);
	char *missing = tu_join(f->tmp, "no-such-file");
	assert_int_equal(RUN(&r, "put", f->db, "k", "--file", missing), 2);
	assert_non_null(strstr(r.err, "No such file"));
	cli_result_free(&r);
	free(missing);
	free(file);
}

static void test_put_conditions(void **state)
{
	fixture *f = *state;
	cli_result r;
	OK("put", f->db, "k", "one");
	assert_int_equal(RUN(&r, "put", f->db, "k", "two", "--if-absent"), 1);
	assert_string_equal(r.err, "trove: k: already exists\n");
	cli_result_free(&r);
	EXPECT_OUT("one", "get", f->db, "k");
	OK("put", "--if-absent", f->db, "new", "n");
	EXPECT_OUT("n", "get", f->db, "new");

	assert_int_equal(RUN(&r, "put", f->db, "ghost", "x", "--if-present"), 1);
	assert_string_equal(r.err, "trove: ghost: not found\n");
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "exists", f->db, "ghost"), 1);
	cli_result_free(&r);
	OK("put", f->db, "k", "three", "--if-present");
	EXPECT_OUT("three", "get", f->db, "k");
}

static void test_ttl(void **state)
{
	fixture *f = *state;
	cli_result r;
	OK("put", f->db, "forever", "x");
	EXPECT_OUT("-1\n", "ttl", f->db, "forever");
	OK("put", f->db, "soon", "x", "--ttl", "100000");
	assert_int_equal(RUN(&r, "ttl", f->db, "soon"), 0);
	long long ms = strtoll(r.out, NULL, 10);
	assert_true(ms > 90000 && ms <= 100000);
	assert_int_equal(r.out[r.outlen - 1], '\n');
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "ttl", f->db, "nope"), 1);
	assert_string_equal(r.err, "trove: nope: not found\n");
	cli_result_free(&r);

	OK("put", f->db, "brief", "x", "--ttl", "1");
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	assert_int_equal(RUN(&r, "get", f->db, "brief"), 1);
	cli_result_free(&r);
}

static void test_del_exists_count(void **state)
{
	fixture *f = *state;
	cli_result r;
	OK("put", f->db, "a", "1");
	OK("put", f->db, "b", "2");
	OK("put", f->db, "c", "3");
	EXPECT_OUT("3\n", "count", f->db);

	assert_int_equal(RUN(&r, "exists", f->db, "a"), 0);
	assert_string_equal(r.out, ""); /* silent without -v */
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "exists", f->db, "zz"), 1);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "");
	cli_result_free(&r);
	EXPECT_OUT("yes\n", "exists", "-v", f->db, "a");
	assert_int_equal(RUN(&r, "-v", "exists", f->db, "zz"), 1);
	assert_string_equal(r.out, "no\n");
	cli_result_free(&r);

	OK("del", f->db, "a");
	assert_int_equal(RUN(&r, "exists", f->db, "a"), 1);
	cli_result_free(&r);
	OK("del", f->db, "a"); /* deleting a missing key is fine... */
	assert_int_equal(RUN(&r, "del", f->db, "a", "--if-exists"), 1); /* ...unless asked */
	assert_string_equal(r.err, "trove: a: not found\n");
	cli_result_free(&r);
	OK("del", "--if-exists", f->db, "b");
	EXPECT_OUT("1\n", "count", f->db);
}

/* ---- Escapes, scan and JSON ----------------------------------------------------------- */

static void test_binary_keys_with_escapes(void **state)
{
	fixture *f = *state;
	cli_result r;
	OK("-e", "put", f->db, "bin\\x00key\\xff", "v\\x01\\x00\\\\");
	assert_int_equal(RUN(&r, "-e", "get", f->db, "bin\\x00key\\xff"), 0);
	assert_int_equal(r.outlen, 4);
	assert_memory_equal(r.out, "v\x01\0\\", 4);
	cli_result_free(&r);
	/* Without -e the backslashes are literal bytes: another key. */
	assert_int_equal(RUN(&r, "get", f->db, "bin\\x00key\\xff"), 1);
	assert_string_equal(r.err, "trove: bin\\\\x00key\\\\xff: not found\n");
	cli_result_free(&r);
	EXPECT_OUT("bin\\x00key\\xff\tv\\x01\\x00\\\\\n", "scan", f->db);
	/* Escaped bounds. */
	OK("put", f->db, "bin", "plain");
	EXPECT_OUT("bin\\x00key\\xff\n", "scan", f->db, "-e", "--from", "bin\\x00", "--keys-only");
	OK("-e", "del", f->db, "bin\\x00key\\xff");
	EXPECT_OUT("bin\tplain\n", "scan", f->db);
}

static void test_scan_options(void **state)
{
	fixture *f = *state;
	const char *keys[] = {"a1", "a2", "a3", "b1", "b2", "c"};
	for (int i = 0; i < 6; i++) {
		char v[16];
		snprintf(v, sizeof v, "v%d", i);
		OK("put", f->db, keys[i], v);
	}
	EXPECT_OUT("a1\tv0\na2\tv1\na3\tv2\nb1\tv3\nb2\tv4\nc\tv5\n", "scan", f->db);
	EXPECT_OUT("a1\tv0\na2\tv1\na3\tv2\n", "scan", f->db, "--prefix", "a");
	EXPECT_OUT("a2\tv1\na3\tv2\nb1\tv3\n", "scan", f->db, "--from", "a2", "--to", "b2");
	EXPECT_OUT("c\tv5\nb2\tv4\nb1\tv3\na3\tv2\na2\tv1\na1\tv0\n", "scan", f->db, "--reverse");
	EXPECT_OUT("a1\tv0\na2\tv1\n", "scan", f->db, "--limit", "2");
	EXPECT_OUT("", "scan", f->db, "--limit", "0");
	EXPECT_OUT("c\nb2\n", "scan", f->db, "--reverse", "--limit", "2", "--keys-only");
	EXPECT_OUT("b2\nb1\n", "scan", f->db, "--prefix", "b", "--reverse", "--keys-only");
	EXPECT_OUT("a3\n", "scan", f->db, "--prefix", "a", "--from", "a3", "--keys-only");
	EXPECT_OUT("", "scan", f->db, "--prefix", "zz");
	EXPECT_OUT("", "scan", f->db, "--from", "b", "--to", "a");
}

static void test_scan_text_escaping(void **state)
{
	fixture *f = *state;
	OK("put", f->db, "tab\there", "new\nline");
	OK("put", f->db, "back\\slash", "cr\r and \x7f del");
	OK("put", f->db, "caf\xc3\xa9", "\x01");
	EXPECT_OUT("back\\\\slash\tcr\\x0d and \\x7f del\n"
	           "caf\\xc3\\xa9\t\\x01\n"
	           "tab\\there\tnew\\nline\n",
	           "scan", f->db);
}

static void test_scan_json(void **state)
{
	fixture *f = *state;
	OK("put", f->db, "a\"q", "back\\slash\nnl\ttab\x01");
	OK("put", f->db, "b-utf8", "caf\xc3\xa9 \xe2\x82\xac");
	OK("-e", "put", f->db, "c-bin\\xff", "ok");
	OK("-e", "put", f->db, "d", "\\xc3\\x28 bad");  /* invalid UTF-8 */
	OK("-e", "put", f->db, "e", "\\xed\\xa0\\x80"); /* a surrogate */
	OK("-e", "put", f->db, "f", "\\xc0\\xaf");      /* overlong */
	EXPECT_OUT("{\"key\":\"a\\\"q\",\"value\":\"back\\\\slash\\nnl\\ttab\\u0001\"}\n"
	           "{\"key\":\"b-utf8\",\"value\":\"caf\xc3\xa9 \xe2\x82\xac\"}\n"
	           "{\"key\":\"c-bin\\u00ff\",\"value\":\"ok\",\"key_latin1\":true}\n"
	           "{\"key\":\"d\",\"value\":\"\\u00c3( bad\",\"value_latin1\":true}\n"
	           "{\"key\":\"e\",\"value\":\"\\u00ed\\u00a0\\u0080\",\"value_latin1\":true}\n"
	           "{\"key\":\"f\",\"value\":\"\\u00c0\\u00af\",\"value_latin1\":true}\n",
	           "scan", f->db, "--json");
	EXPECT_OUT("{\"key\":\"a\\\"q\"}\n{\"key\":\"b-utf8\"}\n", "scan", f->db, "--json",
	           "--keys-only", "--limit", "2");
}

/* ---- The shell ------------------------------------------------------------------------- */

static void test_shell_script(void **state)
{
	fixture *f = *state;
	const char script[] = "# a comment line\n"
	                      "put a 1\n"
	                      "\n"
	                      "   put \"b\\x00c\" \"two words\"\n"
	                      "put 'lit\\x00' raw\n"
	                      "put neg \"-5\"\n"
	                      "put t x --ttl 100000\n"
	                      "get \"b\\x00c\"\n"
	                      "get b\\x00c\n"
	                      "get 'lit\\x00'\n"
	                      "get neg\n"
	                      "exists a\n"
	                      "exists zz\n"
	                      "del a\n"
	                      "count\n"
	                      "scan --keys-only --limit 2\n"
	                      "scan --prefix \"b\\x00\" --json\n"
	                      "get zz\n";
	cli_result r;
	assert_int_equal(RUN_IN(&r, script, sizeof script - 1, "shell", f->db), 0);
	assert_string_equal(r.out, "two words\n"
	                           "two words\n"
	                           "raw\n"
	                           "-5\n"
	                           "yes\n"
	                           "no\n"
	                           "4\n"
	                           "b\\x00c\n"
	                           "lit\\\\x00\n"
	                           "{\"key\":\"b\\u0000c\",\"value\":\"two words\"}\n");
	assert_string_equal(r.err, "trove: zz: not found\n"); /* a 1 answer: status stays 0 */
	assert_null(strstr(r.out, "trove>"));                 /* no prompt without a terminal */
	cli_result_free(&r);
	/* What the shell wrote is in the database. */
	EXPECT_OUT("b\\x00c\nlit\\\\x00\nneg\nt\n", "scan", f->db, "--keys-only");
}

static void test_shell_errors_help_and_quit(void **state)
{
	fixture *f = *state;
	const char script[] = "frob\n"
	                      "put onlykey\n"
	                      "put \"unterminated\n"
	                      "get bad\\q\n"
	                      "help\n"
	                      "help put\n"
	                      "put --help\n"
	                      "put k v\n"
	                      "quit\n"
	                      "put after quit\n";
	cli_result r;
	assert_int_equal(RUN_IN(&r, script, sizeof script - 1, "shell", f->db), 2);
	assert_non_null(strstr(r.err, "no command 'frob'"));
	assert_non_null(strstr(r.err, "missing VALUE"));
	assert_non_null(strstr(r.err, "missing closing \""));
	assert_non_null(strstr(r.err, "bad escape"));
	assert_non_null(strstr(r.out, "Commands"));
	assert_non_null(strstr(r.out, "quit"));
	assert_null(strstr(r.out, "  shell"));                    /* no shell inside the shell */
	assert_non_null(strstr(r.out, "usage: put KEY [VALUE]")); /* no DIR in the shell */
	cli_result_free(&r);
	EXPECT_OUT("k\n", "scan", f->db, "--keys-only"); /* quit stopped the script */

	const char clean[] = "put x y\nget x\n";
	assert_int_equal(RUN_IN(&r, clean, sizeof clean - 1, "shell", f->db), 0);
	assert_string_equal(r.out, "y\n");
	cli_result_free(&r);
	/* A read-only shell refuses writes. */
	assert_int_equal(RUN_IN(&r, clean, sizeof clean - 1, "shell", "--read-only", f->db), 2);
	assert_non_null(strstr(r.err, "read-only"));
	assert_string_equal(r.out, "y\n");
	cli_result_free(&r);
}

/* Reads from fd until the output holds want (the shell answered). */
static void wait_for(int fd, const char *want)
{
	char buf[256];
	size_t n = 0;
	while (n < sizeof buf - 1) {
		struct pollfd pfd = {fd, POLLIN, 0};
		assert_true(poll(&pfd, 1, 30000) > 0);
		ssize_t got = read(fd, buf + n, sizeof buf - 1 - n);
		assert_true(got > 0);
		n += (size_t)got;
		buf[n] = 0;
		if (strstr(buf, want))
			return;
	}
	fail_msg("no '%s' in '%s'", want, buf);
}

static void test_lock_held_by_shell(void **state)
{
	fixture *f = *state;
	OK("put", f->db, "k", "v");
	cli_proc sh;
	cli_spawn(&sh, (char *const[]){"shell", f->db, NULL}, -1);
	assert_int_equal(write(sh.in, "count\n", 6), 6);
	wait_for(sh.out, "1\n"); /* the shell has the database open */

	cli_result r;
	assert_int_equal(RUN(&r, "get", f->db, "k"), 2); /* even reading needs the lock */
	assert_non_null(strstr(r.err, "locked by another process"));
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "put", f->db, "k", "w"), 2);
	assert_non_null(strstr(r.err, "locked"));
	cli_result_free(&r);

	cli_finish(&sh, "put k w\n", 8, &r); /* EOF ends the shell cleanly */
	assert_int_equal(r.status, 0);
	cli_result_free(&r);
	EXPECT_OUT("w", "get", f->db, "k");
}

/* ---- Maintenance ------------------------------------------------------------------------ */

static void test_stats(void **state)
{
	fixture *f = *state;
	OK("put", f->db, "a", "1");
	OK("put", f->db, "b", "2");
	OK("compact", f->db);
	cli_result r;
	assert_int_equal(RUN(&r, "stats", f->db), 0);
	const char *want[] = {"keys                   2\n",
	                      "disk_bytes",
	                      "table_files",
	                      "L0",
	                      "L6",
	                      "reads",
	                      "cache_hits",
	                      "last_version"};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		assert_non_null(strstr(r.out, want[i]));
	/* The compacted table is somewhere in the levels. */
	unsigned long long files = 0;
	const char *t = strstr(r.out, "table_files");
	assert_int_equal(sscanf(t, "table_files %llu", &files), 1);
	assert_true(files >= 1);
	cli_result_free(&r);
}

/* The first *.sst file of dir, malloc'd, or NULL. */
static char *find_table(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char *path = NULL;
	struct dirent *e;
	while (!path && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n > 4 && !strcmp(e->d_name + n - 4, ".sst"))
			path = tu_join(dir, e->d_name);
	}
	closedir(d);
	return path;
}

static void test_check_finds_damage(void **state)
{
	fixture *f = *state;
	char *script = NULL;
	size_t len = 0;
	for (int i = 0; i < 200; i++) {
		char line[64];
		int n = snprintf(line, sizeof line, "put key%04d \"value number %d\"\n", i, i);
		cli_append(&script, &len, line, (size_t)n);
	}
	cli_append(&script, &len, "compact\n", 8);
	cli_result r;
	assert_int_equal(RUN_IN(&r, script, len, "shell", f->db), 0);
	cli_result_free(&r);
	free(script);
	EXPECT_OUT("200\n", "count", f->db);
	assert_int_equal(RUN(&r, "check", f->db), 0);
	assert_non_null(strstr(r.out, ": ok"));
	assert_string_equal(r.err, "");
	cli_result_free(&r);

	char *sst = find_table(f->db);
	assert_non_null(sst);
	int fd = open(sst, O_RDWR);
	assert_true(fd >= 0);
	unsigned char b;
	assert_int_equal(pread(fd, &b, 1, 20), 1); /* inside the first data block */
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, 20), 1);
	close(fd);

	assert_int_equal(RUN(&r, "check", f->db), 2);
	char want[4200];
	snprintf(want, sizeof want, "%s: offset ", sst);
	assert_non_null(strstr(r.err, want)); /* FILE: offset N: MSG */
	assert_non_null(strstr(r.err, "problem"));
	assert_null(strstr(r.out, "ok"));
	cli_result_free(&r);
	free(sst);
}

static void test_backup_and_compact(void **state)
{
	fixture *f = *state;
	char *dest = tu_join(f->tmp, "copy");
	OK("put", f->db, "a", "1");
	OK("put", f->db, "b", "2");
	OK("compact", f->db, "--from", "a", "--to", "b");
	OK("put", f->db, "c", "3");
	OK("backup", f->db, dest);
	OK("put", f->db, "d", "after the backup");
	EXPECT_OUT("2", "get", dest, "b");
	EXPECT_OUT("3", "get", dest, "c");
	EXPECT_OUT("3\n", "count", dest);
	cli_result r;
	assert_int_equal(RUN(&r, "get", dest, "d"), 1);
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "check", dest), 0);
	cli_result_free(&r);
	assert_int_equal(RUN(&r, "backup", f->db, dest), 2); /* not empty any more */
	assert_non_null(strstr(r.err, "already exists"));
	cli_result_free(&r);
	OK("compact", f->db);
	EXPECT_OUT("a\nb\nc\nd\n", "scan", f->db, "--keys-only"); /* still all there */
	free(dest);
}

int main(void)
{
	if (cli_find("test_cli") != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_version_and_help),
	        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_missing_database, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_put_from_stdin_and_file, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_put_conditions, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_del_exists_count, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_binary_keys_with_escapes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_scan_options, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_scan_text_escaping, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_scan_json, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_shell_script, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_shell_errors_help_and_quit, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lock_held_by_shell, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_check_finds_damage, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_backup_and_compact, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
