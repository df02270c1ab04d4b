/*
 * cliproc.h - running the trove tool as a child process, for the suites
 * that test it from the outside (test_cli, test_cli_io).
 *
 * A test starts the binary named by cli_bin with arguments, feeds it
 * input through a pipe while collecting stdout and stderr (poll-driven, so
 * a large input and a large output cannot deadlock each other), and gets
 * the exit status.  Failures to start or a child that hangs for a minute
 * fail the calling cmocka test.
 */
#ifndef CLIPROC_H
#define CLIPROC_H

#include <stddef.h>
#include <sys/types.h>

/* The tool under test, set by cli_find. */
extern char cli_bin[4096];

typedef struct cli_proc {
	pid_t pid;
	int in, out, err; /* our ends of the child's stdin, stdout, stderr */
} cli_proc;

typedef struct cli_result {
	int status; /* exit status, or 128 + signal */
	char *out, *err; /* NUL-terminated */
	size_t outlen, errlen;
} cli_result;

/* Finds the tool for the suite named `suite`: $TROVE_CLI, else BUILD/trove
 * next to BUILD/tests/<suite>; ignores SIGPIPE (a child may close its
 * stdin early).  0, or 1 with a message on stderr if it is not built. */
int cli_find(const char *suite);
/* Starts cli_bin with args (NULL-terminated, argv[0] excluded); the
 * child's stderr is errfd when >= 0 (a terminal, say), else a pipe. */
void cli_spawn(cli_proc *p, char *const *args, int errfd);
/* Feeds input to p, collects its output until it exits; fills *r. */
void cli_finish(cli_proc *p, const void *input, size_t inlen, cli_result *r);
void cli_result_free(cli_result *r);
/* Appends n bytes to the malloc'd, NUL-terminated *buf of *len bytes. */
void cli_append(char **buf, size_t *len, const void *data, size_t n);
/* Runs cli_bin with input and the arguments that follow (NULL-ended);
 * returns the exit status. */
int cli_run(cli_result *r, const void *input, size_t inlen, ...);

#define RUN(r, ...) cli_run((r), NULL, 0, __VA_ARGS__, (char *)NULL)
#define RUN_IN(r, in, n, ...) cli_run((r), (in), (n), __VA_ARGS__, (char *)NULL)

/* Runs a command expected to succeed with nothing on stderr. */
#define OK(...)                                                                                    \
	do {                                                                                       \
		cli_result r_;                                                                     \
		int st_ = RUN(&r_, __VA_ARGS__);                                                   \
		if (st_ != 0 || r_.errlen)                                                         \
			print_error("stderr: %s\n", r_.err);                                       \
		assert_int_equal(st_, 0);                                                          \
		assert_string_equal(r_.err, "");                                                   \
		cli_result_free(&r_);                                                              \
	} while (0)

#endif
