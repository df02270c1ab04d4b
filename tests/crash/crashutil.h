/*
 * crashutil.h - helpers shared by the crash-safety suites (tests/crash).
 *
 * A scratch directory on a RAM file system when there is one (the suites
 * reopen a database hundreds of times; fsync on tmpfs is nearly free, and
 * the fault VFS simulates the disk's behaviour anyway), the checks every
 * reopened database must pass whatever the test (trove_verify finds no
 * damage, a full cursor scan agrees with trove_count in both directions),
 * a monotonic clock and the iteration count.  Included by each crash_*.c;
 * everything is static inline so that a suite pays only for what it uses.
 */
#ifndef CRASHUTIL_H
#define CRASHUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../unit/testutil.h"
#include "trove.h"

/* A fresh empty directory, under /dev/shm if it is there (malloc'd). */
static inline char *cu_tmpdir(const char *tag)
{
	if (access("/dev/shm", W_OK) == 0) {
		char tmpl[256];
		snprintf(tmpl, sizeof tmpl, "/dev/shm/trove-%s-XXXXXX", tag);
		if (mkdtemp(tmpl))
			return strdup(tmpl);
	}
	return tu_tmpdir(tag);
}

static inline uint64_t cu_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* $name as a positive count, or dflt when unset. */
static inline int cu_env_count(const char *name, int dflt)
{
	const char *s = getenv(name);
	int n = s && *s ? atoi(s) : dflt;
	assert_true(n > 0);
	return n;
}

/* A call that never returns is a failure too: after `seconds`, the
 * watchdog names what was running (cu_phase) and ends the process, which
 * the test runner counts as a failed suite.  0 disarms it. */
static const char *volatile cu_phase = "";

static inline void cu_watchdog_fire(int sig)
{
	(void)sig;
	static const char head[] = "\nwatchdog: no progress within the time limit in: ";
	if (write(2, head, sizeof head - 1) < 0 || write(2, cu_phase, strlen(cu_phase)) < 0 ||
	    write(2, "\n", 1) < 0)
		_exit(2);
	_exit(2);
}

static inline void cu_watchdog(const char *phase, unsigned seconds)
{
	cu_phase = phase;
	signal(SIGALRM, cu_watchdog_fire);
	alarm(seconds);
}

/* A trove_log_fn that keeps the engine's messages, "; "-separated, in the
 * CU_SAID_LEN bytes at arg: recovery notes for failure reports. */
enum { CU_SAID_LEN = 1024 };

static inline void cu_note_log(void *arg, int level, const char *msg)
{
	char *buf = arg;
	size_t n = strlen(buf);
	(void)level;
	snprintf(buf + n, CU_SAID_LEN - n, "%s%s", n ? "; " : "", msg);
}

/* Checks what every database must satisfy after a crash and reopen: no
 * file damaged, and the live keys a cursor walks forwards, the ones it
 * walks backwards and trove_count all agree.  Returns the number of keys;
 * `what` names the case in failure messages. */
static inline uint64_t cu_check_db(trove_db *db, const char *what)
{
	int rc = trove_verify(db, NULL, NULL);
	if (rc)
		fail_msg("%s: trove_verify: %s", what, trove_strerror(rc));
	trove_cursor *c;
	assert_int_equal(trove_cursor_open(db, NULL, &c), 0);
	uint64_t fwd = 0, back = 0, count = 0;
	for (rc = trove_cursor_first(c); rc == 0; rc = trove_cursor_next(c))
		fwd++;
	assert_int_equal(rc, TROVE_ENOTFOUND);
	for (rc = trove_cursor_last(c); rc == 0; rc = trove_cursor_prev(c))
		back++;
	assert_int_equal(rc, TROVE_ENOTFOUND);
	trove_cursor_close(c);
	assert_int_equal(trove_count(db, &count), 0);
	if (fwd != back || fwd != count)
		fail_msg("%s: %llu keys forwards, %llu backwards, trove_count says %llu", what,
		         (unsigned long long)fwd, (unsigned long long)back,
		         (unsigned long long)count);
	return count;
}

#endif
