/*
 * log.c - troved's log: one line per message with the process id, the
 * thread, a millisecond timestamp and a level mark, written to stderr or
 * appended to the configured log file.
 *
 * Any thread may log at any time (workers, the acceptor, the engine's
 * background threads through srv_log_engine): each line is formatted on the
 * caller's stack and written with a single write(2), so lines never
 * interleave and no lock is taken.  It must never block on anything but
 * that write, and never call into the engine (the engine may hold its own
 * locks while it logs).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* Set once at startup (before any thread starts) and at shutdown (after
 * every thread stopped); read freely in between.  The level may also change
 * at run time (CONFIG SET loglevel), so it is read and written atomically. */
static int log_fd = STDERR_FILENO;
static int log_level = SRV_LL_NOTICE;
static _Thread_local char thread_name[8] = "main";

int srv_log_open(const char *file, int level)
{
	if (file && *file) {
		int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return -1;
		if (log_fd != STDERR_FILENO)
			close(log_fd);
		log_fd = fd;
	}
	log_level = level;
	return 0;
}

void srv_log_set_level(int level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

void srv_log_close(void)
{
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
}

void srv_log_thread_name(const char *name)
{
	snprintf(thread_name, sizeof thread_name, "%s", name);
}

/* The marks Redis uses, so that people who read Redis logs read ours:
 * '.' debug, '-' verbose, '*' notice, '#' warning. */
static void log_line(int level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%d:%s ", (int)getpid(), thread_name);
	n += (int)strftime(line + n, sizeof line - (size_t)n, "%d %b %Y %H:%M:%S", &tm);
	n += snprintf(line + n, sizeof line - (size_t)n, ".%03d %c ", (int)(tv.tv_usec / 1000),
	              ".-*#"[level]);
	int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	if (m < 0)
		m = 0;
	n = n + m >= (int)sizeof line - 1 ? (int)sizeof line - 2 : n + m;
	line[n++] = '\n';
	ssize_t w;
	do
		w = write(log_fd, line, (size_t)n);
	while (w < 0 && errno == EINTR);
}

void srv_log(int level, const char *fmt, ...)
{
	if (level < __atomic_load_n(&log_level, __ATOMIC_RELAXED) || level > SRV_LL_WARNING)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_line(level, fmt, ap);
	va_end(ap);
}

void srv_log_engine(void *arg, int level, const char *msg)
{
	(void)arg;
	int l = level == TROVE_LOG_INFO ? SRV_LL_VERBOSE : SRV_LL_WARNING;
	srv_log(l, "engine: %s", msg);
}
