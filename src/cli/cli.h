/*
 * cli.h - the pieces of the `trove` command-line tool and how they meet.
 *
 * The tool is a thin client of include/trove.h and nothing else: it never
 * includes src/engine/.  main.c reads the command line and dispatches,
 * args.c parses options and prints help, commands.c holds the command
 * table and one function per command, shell.c is the interactive shell
 * running the same table, and escape.c turns bytes into text and back.
 * dump.c holds dump and load, peers.c import and export (through the
 * trove-peer-* helpers, see there), dumpfmt.c the binary dump format and
 * progress.c the progress line of long commands.
 *
 * Every command runs against a cli_ctx holding an open database, so the
 * one-shot tool and the shell share every line of command code; they
 * differ only in ctx->shell, which makes output human-readable (values
 * escaped and newline-terminated) and drops the DIR argument.
 */
#ifndef TROVE_CLI_H
#define TROVE_CLI_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trove.h"

/* Exit statuses, POSIX style: 1 is an answer ("no such key", "the
 * condition did not hold"), 2 is a failure (bad usage, database error). */
enum { CLI_OK = 0, CLI_NO = 1, CLI_ERR = 2 };

/* A byte string that may hold NULs (keys decoded from escapes).  Every
 * cli_str made by the tool is NUL-terminated one byte past n. */
typedef struct cli_str {
	char *p;
	size_t n;
} cli_str;

/* ---- Options --------------------------------------------------------- */

/* The options a command accepts, as bits of cli_cmd.opts. */
enum {
	O_TTL = 1u << 0,
	O_IF_ABSENT = 1u << 1,
	O_IF_PRESENT = 1u << 2,
	O_IF_EXISTS = 1u << 3,
	O_FILE = 1u << 4,
	O_PREFIX = 1u << 5,
	O_FROM = 1u << 6,
	O_TO = 1u << 7,
	O_REVERSE = 1u << 8,
	O_LIMIT = 1u << 9,
	O_KEYS_ONLY = 1u << 10,
	O_JSON = 1u << 11,
	O_READ_ONLY = 1u << 12,
	O_TEXT = 1u << 13,
	O_IF_EMPTY = 1u << 14,
	O_FORMAT = 1u << 15,
	O_QUIET = 1u << 16,
	O_PROGRESS = 1u << 17,
};

#define CLI_MAX_POS 8 /* positional arguments a command line may carry */

/* One parsed command line.  Strings point into the caller's argument
 * vector or into copies owned by the cli_args (freed by cli_args_free). */
typedef struct cli_args {
	const char *dir;          /* DIR (command line only) */
	cli_str pos[CLI_MAX_POS]; /* positional arguments after DIR */
	int npos;
	unsigned seen; /* O_* bits given */
	int64_t ttl_ms;
	uint64_t limit;
	const char *file;
	const char *format; /* --format */
	cli_str prefix, from, to;
	int help;
	int verbose;
	int escapes;                /* -e: keys and values given with escapes */
	char *own[CLI_MAX_POS + 3]; /* decoded copies to free */
	int nown;
} cli_args;

/* ---- Commands -------------------------------------------------------- */

typedef enum cli_open {
	OPEN_NONE,   /* no database (help) */
	OPEN_READ,   /* read_only; the database must exist */
	OPEN_WRITE,  /* sync=always; the database must exist */
	OPEN_CREATE, /* sync=always; created if missing */
} cli_open;

typedef struct cli_ctx cli_ctx;

typedef struct cli_cmd {
	const char *name;
	const char *args;       /* positional arguments after DIR, for usage */
	const char *summary;    /* one line for the command list */
	const char *help;       /* options and details, for `help NAME` */
	int min_args, max_args; /* positional arguments after DIR */
	unsigned opts;          /* O_* accepted */
	cli_open open;
	int data_args; /* the arguments after DIR are keys or values */
	int (*run)(cli_ctx *ctx, const cli_args *a);
} cli_cmd;

struct cli_ctx {
	trove_db *db;
	const char *dir;
	int shell;   /* inside the shell: DIR implicit, output for people */
	int verbose; /* 0: engine messages dropped; 1: errors and warnings; 2: all */
	pthread_mutex_t log_mu;
	char last_error[1024]; /* the engine's latest error message */
};

/* The command table, ended by an entry with a NULL name. */
extern const cli_cmd cli_cmds[];

/* The command called name, or NULL. */
const cli_cmd *cli_find(const char *name);

/* Opens ctx->dir as mode says, printing the failure; CLI_OK or CLI_ERR. */
int cli_open_db(cli_ctx *ctx, cli_open mode);
/* Closes ctx->db (if open), printing a failure; CLI_OK or CLI_ERR. */
int cli_close_db(cli_ctx *ctx);
/* The engine's log callback (trove_options.log) with a cli_ctx as arg. */
void cli_log(void *arg, int level, const char *msg);

/* Set by SIGINT while the shell runs a command; long loops stop early. */
extern volatile sig_atomic_t cli_interrupted;

/* ---- Argument parsing and help (args.c) -------------------------------- */

/* Parses argv[0..argc) (the words after the command name) for cmd into
 * *a, which it initialises.  quoted[i] (may be NULL) marks words that were
 * quoted in the shell and so are never options.  With a->escapes set on
 * entry (-e before the command), key and value words are decoded.
 * Returns CLI_OK, or CLI_ERR after printing the problem. */
int cli_parse(const cli_cmd *cmd, int shell, const cli_str *argv, const unsigned char *quoted,
              int argc, cli_args *a);
void cli_args_free(cli_args *a);

/* Prints the tool's (or the shell's) command list to f. */
void cli_print_overview(FILE *f, int shell);
/* Prints cmd's usage, summary and options to f. */
void cli_print_help(FILE *f, const cli_cmd *cmd, int shell);
/* "usage: trove put DIR KEY [VALUE]" and a hint, to stderr; CLI_ERR. */
int cli_usage_error(const cli_cmd *cmd, int shell, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* ---- Reporting (commands.c) ----------------------------------------------- */

/* "trove: WHAT: <trove_strerror(rc)>" plus trove_errmsg detail, on stderr. */
void cli_error(cli_ctx *ctx, const char *what, int rc);
/* The same with an escaped key as WHAT. */
void cli_key_error(cli_ctx *ctx, const cli_str *key, int rc);

/* ---- Escaping (escape.c) --------------------------------------------------- */

/* Writes p[0..n) as text: printable ASCII as is, backslash as \\, tab as
 * \t, newline as \n, every other byte as \xHH (lowercase). */
void cli_put_escaped(FILE *f, const void *p, size_t n);
/* The same into a NUL-terminated buffer of size cap (truncated with
 * "..." when too small); returns buf. */
char *cli_escape_buf(char *buf, size_t cap, const void *p, size_t n);
/* 1 if p[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF). */
int cli_utf8_valid(const void *p, size_t n);
/* Writes p[0..n) as a JSON string with its quotes.  Valid UTF-8 is
 * written as is (controls, " and \ escaped); otherwise every byte is
 * taken as a Latin-1 character, bytes >= 0x80 written as \u00XX, and 1
 * is returned so the caller can flag the field. */
int cli_put_json(FILE *f, const void *p, size_t n);
/* Decodes one escape at s[0..n) (s[0] is the backslash): writes the byte
 * to *out and returns the characters used, or 0 if it is not one of
 * \xHH \\ \t \n \r \0 \" \' \space. */
size_t cli_unescape1(const char *s, size_t n, char *out);
/* Decodes every escape of s into a malloc'd, NUL-terminated copy; NULL
 * with *bad set to the offending offset on a bad escape (or ENOMEM with
 * *bad = -1). */
char *cli_unescape(const char *s, size_t n, size_t *outlen, long *bad);

/* ---- Progress (progress.c) ------------------------------------------------- */

typedef struct cli_progress {
	int on;             /* drawing at all */
	const char *label;  /* the command */
	const char *unit;   /* "records"; "" when counting bytes */
	int bytes;          /* units are bytes, shown in MiB */
	uint64_t total;     /* 0: unknown */
	uint64_t done;
	double start, last; /* monotonic seconds */
	int width;          /* length of the last line drawn */
	int ok;             /* the work succeeded (final line) */
	pthread_mutex_t mu;
	pthread_t thread;
	int watching, stop;
	uint64_t (*probe)(void *);
	void *probe_arg;
} cli_progress;

/* Starts a progress line for label, counting unit ("records"; NULL for
 * bytes) out of total (0: unknown).  It is drawn only if --progress was
 * given, or stderr is a terminal and --quiet was not. */
void cli_progress_begin(cli_progress *p, const cli_args *a, const char *label, const char *unit,
                        uint64_t total);
/* Records progress; redraws at most ten times a second. */
void cli_progress_set(cli_progress *p, uint64_t done);
/* For work done inside one blocking call: polls probe(arg) for the amount
 * done from a thread, ten times a second, until cli_progress_end. */
void cli_progress_watch(cli_progress *p, uint64_t (*probe)(void *), void *arg);
/* Draws the final line (100% if ok) and a newline; stops any watcher. */
void cli_progress_end(cli_progress *p, int ok);

/* ---- Dump, load, import, export (dump.c, peers.c) --------------------------- */

/* Writes the database as a dump (text or binary) to out, named name in
 * messages, with a progress line labelled what.  Reports failures on
 * stderr, except that a write error on out goes to ioerr[0..iocap) when
 * ioerr is not NULL (the caller may know better why the pipe broke).
 * CLI_OK or CLI_ERR. */
int cli_dump_to(cli_ctx *ctx, const cli_args *a, FILE *out, const char *name, int text,
                const char *what, char *ioerr, size_t iocap);
/* Loads a dump (text or binary) from in in atomic batches; size is the
 * input's size in bytes for the progress line (0: unknown).  Reports
 * failures and how far a failed load got on stderr, except that damage in
 * the input goes to ioerr when it is not NULL.  CLI_OK or CLI_ERR. */
int cli_load_from(cli_ctx *ctx, const cli_args *a, FILE *in, const char *name, int text,
                  uint64_t size, const char *what, char *ioerr, size_t iocap);
/* CLI_OK if the database is empty or --if-empty was not given; otherwise
 * reports it and returns CLI_ERR. */
int cli_check_empty(cli_ctx *ctx, const cli_args *a, const char *what);

int cli_cmd_dump(cli_ctx *ctx, const cli_args *a);
int cli_cmd_load(cli_ctx *ctx, const cli_args *a);
int cli_cmd_import(cli_ctx *ctx, const cli_args *a);
int cli_cmd_export(cli_ctx *ctx, const cli_args *a);

/* ---- The shell (shell.c) --------------------------------------------------- */

/* Runs the shell on ctx (database open).  Returns the exit status. */
int cli_shell(cli_ctx *ctx);

#endif
