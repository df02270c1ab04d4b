/*
 * shell.c - `trove shell DIR`: the commands of the tool, one per line,
 * against one open database.
 *
 * On a terminal it reads lines through libedit's native API (line
 * editing, history in ~/.trove_history, tab completion of command names,
 * ~/.editrc honoured); otherwise it reads
 * stdin line by line with no prompt or banner, so scripts and tests can
 * drive it.  Each line is split into words (see split() for the quoting
 * rules), the first word names a command of cli_cmds, and the rest goes
 * through the same parser and command functions as the command line.
 * Ctrl-C drops the line being typed and stops a running scan; it never
 * kills the shell, so the database is always closed cleanly.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <histedit.h>

#include "cli.h"

volatile sig_atomic_t cli_interrupted;

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CLI_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(CLI_ASAN)
/* libedit never frees the names given to EL_ADDFN (it wcsdup()s them);
 * keep LeakSanitizer quiet about that in sanitizer builds. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:wcsdup\n";
}
#endif

#define MAX_WORDS 64

typedef struct words {
	cli_str w[MAX_WORDS];
	unsigned char quoted[MAX_WORDS];
	int n;
	char *buf; /* every word, NUL-terminated, back to back */
} words;

/* ---- Splitting a line into words ------------------------------------------------- */

/* Copies the quoted part at line[*i] (an opening quote) to buf[*o],
 * decoding escapes inside double quotes.  NULL or a complaint. */
static const char *quoted_part(const char *line, size_t len, size_t *i, char *buf, size_t *o)
{
	char q = line[(*i)++];
	while (*i < len && line[*i] != q) {
		if (q == '"' && line[*i] == '\\') {
			size_t k = cli_unescape1(line + *i, len - *i, &buf[*o]);
			if (!k)
				return "bad escape (use \\xHH, \\\\, \\t, \\n, \\r, \\0 or \\\")";
			*i += k;
			(*o)++;
		} else {
			buf[(*o)++] = line[(*i)++];
		}
	}
	if (*i == len)
		return q == '"' ? "missing closing \"" : "missing closing '";
	(*i)++;
	return NULL;
}

/* Splits line into words at blanks.  "double quotes" and bare words take
 * the escapes of cli_unescape1; 'single quotes' take none; quotes may join
 * parts of one word (a"b c"d).  A line whose first word starts with '#'
 * is a comment.  Returns NULL, or a complaint (words then freed). */
static const char *split(const char *line, words *out)
{
	size_t len = strlen(line), i = 0, o = 0;
	memset(out, 0, sizeof *out);
	out->buf = malloc(2 * len + 2); /* decoding never grows; +1 NUL per word */
	if (!out->buf)
		return "out of memory";
	const char *err = NULL;
	while (!err) {
		while (i < len && isspace((unsigned char)line[i]))
			i++;
		if (i == len || (out->n == 0 && line[i] == '#'))
			break;
		if (out->n == MAX_WORDS) {
			err = "too many words";
			break;
		}
		size_t start = o;
		int quoted = 0;
		while (!err && i < len && !isspace((unsigned char)line[i])) {
			if (line[i] == '"' || line[i] == '\'') {
				quoted = 1;
				err = quoted_part(line, len, &i, out->buf, &o);
			} else if (line[i] == '\\') {
				size_t k = cli_unescape1(line + i, len - i, &out->buf[o]);
				if (!k)
					err = "bad escape (use \\xHH, \\\\, \\t, \\n, \\r, \\0 or "
					      "\\ )";
				i += k;
				o++;
			} else {
				out->buf[o++] = line[i++];
			}
		}
		out->buf[o++] = 0;
		out->w[out->n] = (cli_str){out->buf + start, o - 1 - start};
		out->quoted[out->n++] = (unsigned char)quoted;
	}
	if (err) {
		free(out->buf);
		out->buf = NULL;
		out->n = 0;
	}
	return err;
}

/* ---- Running a line ---------------------------------------------------------------- */

/* Runs one line.  Returns its exit status, or -1 for an empty line; sets
 * *quit on quit or exit. */
static int run_line(cli_ctx *ctx, const char *line, int *quit)
{
	words ws;
	const char *err = split(line, &ws);
	if (err) {
		fprintf(stderr, "trove: %s\n", err);
		return CLI_ERR;
	}
	int st = -1;
	if (ws.n == 0)
		goto out;
	const char *name = ws.w[0].p;
	if (!strcmp(name, "quit") || !strcmp(name, "exit")) {
		*quit = 1;
		goto out;
	}
	const cli_cmd *cmd = cli_find(name);
	if (!cmd || !strcmp(name, "shell")) {
		char e[64];
		fprintf(stderr, "trove: no command '%s' (try 'help')\n",
		        cli_escape_buf(e, sizeof e, ws.w[0].p, ws.w[0].n));
		st = CLI_ERR;
		goto out;
	}
	cli_args a = {0};
	st = cli_parse(cmd, 1, ws.w + 1, ws.quoted + 1, ws.n - 1, &a);
	if (!st && a.help) {
		cli_print_help(stdout, cmd, 1);
	} else if (!st) {
		cli_interrupted = 0;
		pthread_mutex_lock(&ctx->log_mu);
		ctx->last_error[0] = 0;
		pthread_mutex_unlock(&ctx->log_mu);
		st = cmd->run(ctx, &a);
		if (cli_interrupted)
			fprintf(stderr, "trove: interrupted\n");
	}
	cli_args_free(&a);
out:
	fflush(stdout);
	free(ws.buf);
	return st;
}

/* ---- Reading lines ----------------------------------------------------------------- */

/* Without a terminal: every line of stdin, no prompt.  Exit status 2 if any
 * command failed with an error. */
static int run_script(cli_ctx *ctx)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int worst = CLI_OK, quit = 0;
	while (!quit && (n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = 0;
		if (run_line(ctx, line, &quit) == CLI_ERR)
			worst = CLI_ERR;
	}
	free(line);
	return worst;
}

/* ---- The terminal: libedit --------------------------------------------------------- */

static const char *const extra_names[] = {"quit", "exit", NULL};

/* The i-th completable name (commands but shell, then quit and exit), or
 * NULL past the end. */
static const char *name_at(int i)
{
	for (const cli_cmd *c = cli_cmds; c->name; c++)
		if (strcmp(c->name, "shell") && i-- == 0)
			return c->name;
	for (int k = 0; extra_names[k]; k++)
		if (i-- == 0)
			return extra_names[k];
	return NULL;
}

/* Whether the word at buf[start] is the first, or the one after "help". */
static int completable(const char *buf, size_t start)
{
	size_t i = 0, nwords = 0;
	const char *first = NULL;
	while (i < start) {
		while (i < start && isspace((unsigned char)buf[i]))
			i++;
		if (i == start)
			break;
		if (!first)
			first = buf + i;
		nwords++;
		while (i < start && !isspace((unsigned char)buf[i]))
			i++;
	}
	return nwords == 0 ||
	       (nwords == 1 && !strncmp(first, "help", 4) && isspace((unsigned char)first[4]));
}

/* Tab: completes a command name as far as it is unambiguous, and lists the
 * candidates when it cannot go further. */
static unsigned char on_tab(EditLine *e, int ch)
{
	(void)ch;
	const LineInfo *li = el_line(e);
	const char *start = li->cursor;
	while (start > li->buffer && !isspace((unsigned char)start[-1]))
		start--;
	size_t len = (size_t)(li->cursor - start);
	if (!completable(li->buffer, (size_t)(start - li->buffer)))
		return CC_ERROR;
	const char *match = NULL;
	size_t common = 0;
	int n = 0;
	for (int i = 0; name_at(i); i++) {
		const char *nm = name_at(i);
		if (strncmp(nm, start, len))
			continue;
		if (!n++) {
			match = nm;
			common = strlen(nm);
		}
		while (common > len && strncmp(nm, match, common))
			common--;
	}
	if (n == 0)
		return CC_ERROR;
	if (n == 1) {
		el_insertstr(e, match + len);
		el_insertstr(e, " ");
		return CC_REFRESH;
	}
	if (common > len) {
		char part[32];
		snprintf(part, sizeof part, "%.*s", (int)(common - len), match + len);
		el_insertstr(e, part);
		return CC_REFRESH;
	}
	fputc('\n', stdout);
	for (int i = 0; name_at(i); i++)
		if (!strncmp(name_at(i), start, len))
			printf("%s  ", name_at(i));
	fputc('\n', stdout);
	return CC_REDISPLAY;
}

/* Ctrl-C while typing: the line is dropped and a fresh prompt shown.  The
 * terminal sends no SIGINT while libedit reads (-isig), so `make run` and
 * other parents do not see it either. */
static unsigned char on_ctrl_c(EditLine *e, int ch)
{
	(void)ch;
	int *cancelled;
	if (el_get(e, EL_CLIENTDATA, &cancelled) == 0)
		*cancelled = 1; /* el_gets returns NULL for the empty line: not EOF */
	const LineInfo *li = el_line(e);
	el_cursor(e, (int)(li->lastchar - li->cursor));
	li = el_line(e);
	el_deletestr(e, (int)(li->cursor - li->buffer));
	return CC_NEWLINE;
}

static char *prompt(EditLine *e)
{
	(void)e;
	return "trove> ";
}

static void on_sigint(int sig)
{
	(void)sig;
	cli_interrupted = 1;
}

/* The history file, or NULL without $HOME; malloc'd. */
static char *history_path(void)
{
	const char *home = getenv("HOME");
	if (!home || !*home)
		return NULL;
	size_t n = strlen(home) + sizeof "/.trove_history";
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/.trove_history", home);
	return p;
}

static EditLine *editor_new(History *h, int *cancelled)
{
	EditLine *e = el_init("trove", stdin, stdout, stderr);
	if (!e)
		return NULL;
	el_set(e, EL_PROMPT, prompt);
	el_set(e, EL_EDITOR, "emacs");
	el_set(e, EL_HIST, history, h);
	el_set(e, EL_SIGNAL, 1);
	el_set(e, EL_CLIENTDATA, cancelled);
	el_set(e, EL_SETTY, "-d", "-isig", NULL);
	el_set(e, EL_ADDFN, "trove-complete", "complete a command name", on_tab);
	el_set(e, EL_BIND, "^I", "trove-complete", NULL);
	el_set(e, EL_ADDFN, "trove-cancel", "drop the line", on_ctrl_c);
	el_set(e, EL_BIND, "^C", "trove-cancel", NULL);
	el_source(e, NULL); /* ~/.editrc, e.g. "bind -v" for vi keys */
	return e;
}

static int run_terminal(cli_ctx *ctx)
{
	HistEvent ev;
	History *h = history_init();
	if (!h)
		return run_script(ctx);
	history(h, &ev, H_SETSIZE, 1000);
	history(h, &ev, H_SETUNIQUE, 1);
	char *hist = history_path();
	if (hist)
		history(h, &ev, H_LOAD, hist);
	int cancelled = 0;
	EditLine *e = editor_new(h, &cancelled);
	if (!e) {
		history_end(h);
		free(hist);
		return run_script(ctx);
	}
	/* A running command (a long scan) stops at Ctrl-C instead of dying. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);

	printf("trove %s shell on %s: 'help' lists the commands, 'quit' or Ctrl-D leaves.\n",
	       TROVE_VERSION_STRING, ctx->dir);
	int quit = 0, n;
	const char *got;
	while (!quit) {
		cancelled = 0;
		got = el_gets(e, &n);
		if (!got && cancelled) {
			fputs("^C\n", stdout);
			continue;
		}
		if (!got)
			break;
		char *line = strndup(got, (size_t)n);
		if (!line)
			break;
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = 0;
		if (*line)
			history(h, &ev, H_ENTER, line);
		run_line(ctx, line, &quit);
		free(line);
	}
	if (!quit)
		fputc('\n', stdout); /* Ctrl-D leaves the cursor after the prompt */
	el_end(e);
	if (hist)
		history(h, &ev, H_SAVE, hist);
	history_end(h);
	free(hist);
	signal(SIGINT, SIG_DFL);
	return CLI_OK;
}

int cli_shell(cli_ctx *ctx)
{
	ctx->shell = 1;
	return isatty(STDIN_FILENO) ? run_terminal(ctx) : run_script(ctx);
}
