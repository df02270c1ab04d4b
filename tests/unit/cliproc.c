/*
 * cliproc.c - running the trove tool as a child process (see cliproc.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cliproc.h"

char cli_bin[4096];

int cli_find(const char *suite)
{
	const char *env = getenv("TROVE_CLI");
	if (env) {
		snprintf(cli_bin, sizeof cli_bin, "%s", env);
	} else {
		/* BUILD/tests/<suite> -> BUILD/trove */
		char self[4000];
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n <= 0)
			return 1;
		self[n] = 0;
		for (int i = 0; i < 2; i++) {
			char *slash = strrchr(self, '/');
			if (slash)
				*slash = 0;
		}
		snprintf(cli_bin, sizeof cli_bin, "%s/trove", self);
	}
	if (access(cli_bin, X_OK) != 0) {
		fprintf(stderr, "%s: %s: not built (make builds it)\n", suite, cli_bin);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

void cli_spawn(cli_proc *p, char *const *args, int errfd)
{
	int pin[2], pout[2], perr[2] = {-1, -1};
	assert_int_equal(pipe(pin), 0);
	assert_int_equal(pipe(pout), 0);
	if (errfd < 0)
		assert_int_equal(pipe(perr), 0);
	char *argv[64];
	int n = 0;
	argv[n++] = cli_bin;
	for (; args[n - 1] && n < 63; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(errfd >= 0 ? errfd : perr[1], 2);
		for (int fd = 3; fd < 64; fd++)
			close(fd);
		execv(cli_bin, argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	if (errfd < 0)
		close(perr[1]);
	p->pid = pid;
	p->in = pin[1];
	p->out = pout[0];
	p->err = perr[0];
}

void cli_append(char **buf, size_t *len, const void *data, size_t n)
{
	*buf = realloc(*buf, *len + n + 1);
	assert_non_null(*buf);
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = 0;
}

void cli_finish(cli_proc *p, const void *input, size_t inlen, cli_result *r)
{
	memset(r, 0, sizeof *r);
	cli_append(&r->out, &r->outlen, "", 0);
	cli_append(&r->err, &r->errlen, "", 0);
	size_t sent = 0;
	if (inlen == 0) {
		close(p->in);
		p->in = -1;
	}
	while (p->out >= 0 || p->err >= 0) {
		struct pollfd fds[3] = {
		        {p->out, POLLIN, 0}, {p->err, POLLIN, 0}, {p->in, POLLOUT, 0}};
		assert_true(poll(fds, 3, 60000) > 0);
		char buf[65536];
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t got = read(fds[i].fd, buf, sizeof buf);
			if (got > 0) {
				if (i == 0)
					cli_append(&r->out, &r->outlen, buf, (size_t)got);
				else
					cli_append(&r->err, &r->errlen, buf, (size_t)got);
			} else {
				close(fds[i].fd);
				*(i == 0 ? &p->out : &p->err) = -1;
			}
		}
		if (p->in >= 0 && (fds[2].revents & (POLLOUT | POLLERR))) {
			ssize_t w = write(p->in, (const char *)input + sent, inlen - sent);
			if (w > 0)
				sent += (size_t)w;
			if (w <= 0 || sent == inlen) {
				close(p->in);
				p->in = -1;
			}
		}
	}
	if (p->in >= 0)
		close(p->in);
	int st;
	assert_int_equal(waitpid(p->pid, &st, 0), p->pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void cli_result_free(cli_result *r)
{
	free(r->out);
	free(r->err);
}

int cli_run(cli_result *r, const void *input, size_t inlen, ...)
{
	char *args[64];
	int n = 0;
	va_list ap;
	va_start(ap, inlen);
	while ((args[n] = va_arg(ap, char *)) != NULL && n < 62)
		n++;
	va_end(ap);
	args[n] = NULL;
	cli_proc p;
	cli_spawn(&p, args, -1);
	cli_finish(&p, input, inlen, r);
	return r->status;
}
