/*
 * main.c - the `trove` command-line tool: `trove [-v] [-e] COMMAND DIR [ARGS]`.
 *
 * Reads the options that come before the command, finds the command in
 * cli_cmds (commands.c), parses its arguments (args.c), opens the
 * database the way the command needs (read_only for reading commands,
 * sync=always for writing ones), runs it and closes.  The exit status is
 * the command's: 0 ok, 1 not found or condition not met, 2 usage or
 * database error.  Everything the tool does goes through include/trove.h.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Options before the command: -v, -e, -h and --version.  Returns the index
 * of the command word, or -1 with *st set when the tool is done. */
static int global_opts(int argc, char **argv, cli_args *a, int *st)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *w = argv[i];
		if (!strcmp(w, "--version")) {
			printf("trove %s\n", TROVE_VERSION_STRING);
			*st = CLI_OK;
			return -1;
		}
		if (!strcmp(w, "--help"))
			w = "-h";
		else if (!strcmp(w, "--verbose"))
			w = "-v";
		else if (!strcmp(w, "--escapes"))
			w = "-e";
		for (const char *c = w + 1; *c; c++) {
			if (*c == 'v') {
				a->verbose++;
			} else if (*c == 'e') {
				a->escapes = 1;
			} else if (*c == 'h') {
				cli_print_overview(stdout, 0);
				*st = CLI_OK;
				return -1;
			} else {
				fprintf(stderr, "trove: unknown option %s\nTry 'trove --help'.\n",
				        argv[i]);
				*st = CLI_ERR;
				return -1;
			}
		}
	}
	if (i == argc) {
		cli_print_overview(stderr, 0);
		*st = CLI_ERR;
		return -1;
	}
	return i;
}

/* Opens the database the command needs, runs it and closes. */
static int run(const cli_cmd *cmd, cli_args *a)
{
	cli_ctx ctx;
	memset(&ctx, 0, sizeof ctx);
	pthread_mutex_init(&ctx.log_mu, NULL);
	ctx.dir = a->dir;
	ctx.verbose = a->verbose;
	cli_open mode = (a->seen & O_READ_ONLY) ? OPEN_READ : cmd->open;
	int st = mode == OPEN_NONE ? CLI_OK : cli_open_db(&ctx, mode);
	if (st == CLI_OK)
		st = cmd->run(&ctx, a);
	if (cli_close_db(&ctx) && st == CLI_OK)
		st = CLI_ERR;
	pthread_mutex_destroy(&ctx.log_mu);
	return st;
}

int main(int argc, char **argv)
{
	cli_args a;
	memset(&a, 0, sizeof a);
	int st = CLI_OK;
	int i = global_opts(argc, argv, &a, &st);
	if (i < 0)
		return st;
	const cli_cmd *cmd = cli_find(argv[i]);
	if (!cmd) {
		fprintf(stderr, "trove: no command '%s'\nTry 'trove help'.\n", argv[i]);
		return CLI_ERR;
	}
	int n = argc - i - 1;
	cli_str *words = calloc((size_t)n + 1, sizeof *words);
	if (!words) {
		fprintf(stderr, "trove: out of memory\n");
		return CLI_ERR;
	}
	for (int k = 0; k < n; k++)
		words[k] = (cli_str){argv[i + 1 + k], strlen(argv[i + 1 + k])};
	st = cli_parse(cmd, 0, words, NULL, n, &a);
	if (st == CLI_OK && a.help)
		cli_print_help(stdout, cmd, 0);
	else if (st == CLI_OK)
		st = run(cmd, &a);
	cli_args_free(&a);
	free(words);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "trove: stdout: write error\n");
		st = CLI_ERR;
	}
	return st;
}
