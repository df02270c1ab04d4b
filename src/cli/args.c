/*
 * args.c - option parsing and help text for the `trove` tool.
 *
 * One parser serves the command line and the shell: it takes the words
 * after the command name, picks out the options the command accepts (from
 * the table below, which also documents them), and leaves the positional
 * words.  Options may come before, between or after positional words;
 * "--" ends them, and in the shell a quoted word is never an option.
 * getopt is avoided because it keeps global state and cannot see quoting.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct opt_def {
	const char *name; /* long name, without "--" */
	unsigned bit;     /* O_*; 0 for the options every command takes */
	const char *arg;  /* the value's name, or NULL for a flag */
	const char *desc;
} opt_def;

static const opt_def opt_defs[] = {
        {"ttl", O_TTL, "MS", "expire the key MS milliseconds from now"},
        {"if-absent", O_IF_ABSENT, NULL, "write only if KEY does not exist (else exit 1)"},
        {"if-present", O_IF_PRESENT, NULL, "write only if KEY exists (else exit 1)"},
        {"if-exists", O_IF_EXISTS, NULL, "exit 1 if KEY did not exist"},
        {"file", O_FILE, "F", "read the value from file F"},
        {"prefix", O_PREFIX, "P", "only keys starting with P"},
        {"from", O_FROM, "K", "start at key K (inclusive)"},
        {"to", O_TO, "K", "stop before key K (exclusive; inclusive for compact)"},
        {"reverse", O_REVERSE, NULL, "walk from the last key to the first"},
        {"limit", O_LIMIT, "N", "print at most N keys"},
        {"keys-only", O_KEYS_ONLY, NULL, "print keys without values"},
        {"json", O_JSON, NULL, "print JSON lines {\"key\":...,\"value\":...}"},
        {"read-only", O_READ_ONLY, NULL, "open the database read-only"},
        {"text", O_TEXT, NULL, "the line-oriented text form of the dump format"},
        {"if-empty", O_IF_EMPTY, NULL, "refuse to write into a database that holds keys"},
        {"format", O_FORMAT, "FMT", "gdbm, ndbm, bdb, bdb-btree, bdb-hash or lmdb"},
        {"quiet", O_QUIET, NULL, "no progress line"},
        {"progress", O_PROGRESS, NULL, "a progress line on stderr even when not a terminal"},
        {NULL, 0, NULL, NULL},
};

static const char *prog(int shell)
{
	return shell ? "" : "trove ";
}

static const char *dir_word(int shell)
{
	return shell ? "" : " DIR";
}

/* ---- Help ------------------------------------------------------------------------- */

void cli_print_overview(FILE *f, int shell)
{
	if (shell)
		fprintf(f, "Commands (keys may be \"quoted\" with \\xHH escapes):\n");
	else
		fprintf(f,
		        "usage: trove [-v] [-e] COMMAND DIR [ARGS...]\n\n"
		        "Trove %s: reads and writes the Trove database in directory DIR.\n\n"
		        "Commands:\n",
		        TROVE_VERSION_STRING);
	for (const cli_cmd *c = cli_cmds; c->name; c++) {
		if (shell && !strcmp(c->name, "shell"))
			continue;
		char line[80];
		snprintf(line, sizeof line, "%s%s%s%s", c->name, dir_word(shell || !c->open),
		         *c->args ? " " : "", c->args);
		fprintf(f, "  %-28s %s\n", line, c->summary);
	}
	if (shell) {
		fprintf(f, "  %-28s %s\n", "quit", "leave the shell (also exit, Ctrl-D)");
		fprintf(f, "Values print escaped (\\xHH, \\\\, \\t, \\n), one per line.  "
		           "Run 'help COMMAND' for its options.\n");
		return;
	}
	fprintf(f, "\nOptions for every command:\n"
	           "  -v, --verbose   show the engine's errors and warnings on stderr "
	           "(-vv: also notes)\n"
	           "  -e, --escapes   KEY, VALUE, --prefix, --from and --to arguments use\n"
	           "                  escapes: \\xHH, \\\\, \\t, \\n, \\r, \\0\n"
	           "  -h, --help      help (also: trove help COMMAND, trove COMMAND --help)\n"
	           "      --version   print the version\n\n"
	           "Exit status: 0 success, 1 not found or condition not met, "
	           "2 usage or database error.\n");
}

void cli_print_help(FILE *f, const cli_cmd *cmd, int shell)
{
	fprintf(f, "usage: %s%s%s%s%s%s\n\n%s.\n", prog(shell), cmd->name,
	        dir_word(shell || !cmd->open), *cmd->args ? " " : "", cmd->args,
	        cmd->opts ? " [OPTIONS]" : "", cmd->summary);
	if (cmd->opts) {
		fprintf(f, "\nOptions:\n");
		for (const opt_def *o = opt_defs; o->name; o++) {
			if (!(cmd->opts & o->bit))
				continue;
			char left[40];
			snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "",
			         o->arg ? o->arg : "");
			fprintf(f, "  %-18s %s\n", left, o->desc);
		}
	}
	if (cmd->help && *cmd->help)
		fprintf(f, "\n%s", cmd->help);
}

int cli_usage_error(const cli_cmd *cmd, int shell, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "trove: %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s%s%s%s%s%s\nTry '%shelp %s'.\n", prog(shell), cmd->name,
	        dir_word(shell || !cmd->open), *cmd->args ? " " : "", cmd->args,
	        cmd->opts ? " [OPTIONS]" : "", prog(shell), cmd->name);
	return CLI_ERR;
}

/* ---- Parsing ---------------------------------------------------------------------- */

static const opt_def *find_opt(const char *name, size_t n)
{
	for (const opt_def *o = opt_defs; o->name; o++)
		if (strlen(o->name) == n && !memcmp(o->name, name, n))
			return o;
	return NULL;
}

/* Replaces *s by its decoded copy (kept in a->own). */
static int decode(const cli_cmd *cmd, cli_args *a, cli_str *s)
{
	long bad;
	size_t n;
	char *d = cli_unescape(s->p, s->n, &n, &bad);
	if (!d) {
		if (bad < 0)
			return cli_usage_error(cmd, 0, "out of memory");
		return cli_usage_error(cmd, 0, "bad escape at offset %ld of '%s'", bad, s->p);
	}
	a->own[a->nown++] = d;
	s->p = d;
	s->n = n;
	return CLI_OK;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

/* Stores option o with value v (NULL for flags). */
static int apply(const cli_cmd *cmd, int shell, cli_args *a, const opt_def *o, const cli_str *v)
{
	int64_t n;
	a->seen |= o->bit;
	switch (o->bit) {
	case O_TTL:
		if (parse_i64(v->p, &n) || n <= 0)
			return cli_usage_error(cmd, shell,
			                       "--ttl needs a number of ms > 0, not '%s'", v->p);
		a->ttl_ms = n;
		break;
	case O_LIMIT:
		if (parse_i64(v->p, &n) || n < 0)
			return cli_usage_error(cmd, shell, "--limit needs a number >= 0, not '%s'",
			                       v->p);
		a->limit = (uint64_t)n;
		break;
	case O_FILE:
		a->file = v->p;
		break;
	case O_FORMAT:
		a->format = v->p;
		break;
	case O_PREFIX:
		a->prefix = *v;
		break;
	case O_FROM:
		a->from = *v;
		break;
	case O_TO:
		a->to = *v;
		break;
	default:
		break;
	}
	return CLI_OK;
}

/* Handles the long option word w ("--name" or "--name=value"); may take
 * the next word as its value (advancing *i). */
static int long_opt(const cli_cmd *cmd, int shell, const cli_str *argv, int argc, int *i,
                    cli_args *a)
{
	const char *name = argv[*i].p + 2;
	const char *eq = memchr(name, '=', argv[*i].n - 2);
	size_t nlen = eq ? (size_t)(eq - name) : argv[*i].n - 2;
	if (nlen == 4 && !memcmp(name, "help", 4) && !eq) {
		a->help = 1;
		return CLI_OK;
	}
	if (nlen == 7 && !memcmp(name, "verbose", 7) && !eq) {
		a->verbose++;
		return CLI_OK;
	}
	if (nlen == 7 && !memcmp(name, "escapes", 7) && !eq) {
		a->escapes = 1;
		return CLI_OK;
	}
	const opt_def *o = find_opt(name, nlen);
	if (!o || !(cmd->opts & o->bit))
		return cli_usage_error(cmd, shell, "unknown option --%.*s", (int)nlen, name);
	if (!o->arg) {
		if (eq)
			return cli_usage_error(cmd, shell, "--%s takes no value", o->name);
		return apply(cmd, shell, a, o, NULL);
	}
	cli_str v;
	if (eq) {
		v.p = (char *)eq + 1;
		v.n = argv[*i].n - (size_t)(v.p - argv[*i].p);
	} else if (*i + 1 < argc) {
		v = argv[++*i];
	} else {
		return cli_usage_error(cmd, shell, "--%s needs a value %s", o->name, o->arg);
	}
	return apply(cmd, shell, a, o, &v);
}

static int short_opts(const cli_cmd *cmd, int shell, const cli_str *w, cli_args *a)
{
	for (size_t k = 1; k < w->n; k++) {
		switch (w->p[k]) {
		case 'v':
			a->verbose++;
			break;
		case 'e':
			a->escapes = 1;
			break;
		case 'h':
			a->help = 1;
			break;
		default:
			return cli_usage_error(cmd, shell,
			                       "unknown option -%c (use -- before "
			                       "arguments that start with -)",
			                       w->p[k]);
		}
	}
	return CLI_OK;
}

/* After the words are sorted out: decode escapes (command line only) and
 * check the number of positional arguments. */
static int finish(const cli_cmd *cmd, int shell, cli_args *a)
{
	if (a->help)
		return CLI_OK;
	if (!shell && cmd->open) {
		if (a->npos == 0)
			return cli_usage_error(cmd, shell, "missing DIR");
		a->dir = a->pos[0].p;
		memmove(a->pos, a->pos + 1, (size_t)(a->npos - 1) * sizeof a->pos[0]);
		a->npos--;
	}
	if (a->npos < cmd->min_args)
		return cli_usage_error(cmd, shell, "missing %s",
		                       a->npos == 0 ? cmd->args : "arguments");
	if (a->npos > cmd->max_args)
		return cli_usage_error(cmd, shell, "too many arguments");
	if (!a->escapes || shell)
		return CLI_OK;
	int rc = CLI_OK;
	for (int i = 0; cmd->data_args && !rc && i < a->npos; i++)
		rc = decode(cmd, a, &a->pos[i]);
	if (!rc && (a->seen & O_PREFIX))
		rc = decode(cmd, a, &a->prefix);
	if (!rc && (a->seen & O_FROM))
		rc = decode(cmd, a, &a->from);
	if (!rc && (a->seen & O_TO))
		rc = decode(cmd, a, &a->to);
	return rc;
}

int cli_parse(const cli_cmd *cmd, int shell, const cli_str *argv, const unsigned char *quoted,
              int argc, cli_args *a)
{
	int escapes = a->escapes, verbose = a->verbose;
	memset(a, 0, sizeof *a);
	a->escapes = escapes;
	a->verbose = verbose;
	int opts_done = 0;
	for (int i = 0; i < argc; i++) {
		const cli_str *w = &argv[i];
		int rc = CLI_OK;
		if (opts_done || (quoted && quoted[i]) || w->n < 2 || w->p[0] != '-') {
			if (a->npos == CLI_MAX_POS)
				return cli_usage_error(cmd, shell, "too many arguments");
			a->pos[a->npos++] = *w;
		} else if (w->n == 2 && w->p[1] == '-') {
			opts_done = 1;
		} else if (w->p[1] == '-') {
			rc = long_opt(cmd, shell, argv, argc, &i, a);
		} else {
			rc = short_opts(cmd, shell, w, a);
		}
		if (rc)
			return rc;
	}
	return finish(cmd, shell, a);
}

void cli_args_free(cli_args *a)
{
	for (int i = 0; i < a->nown; i++)
		free(a->own[i]);
	a->nown = 0;
}
