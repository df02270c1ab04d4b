/*
 * reply.c - writes RESP replies into a connection's output buffer, in the
 * client's protocol version: RESP2 by default, RESP3 after HELLO 3 (where
 * nulls, maps, sets and verbatim strings have their own types).
 *
 * Every command answers only through these functions, so the wire format
 * lives in one place.  They never fail: on out-of-memory the core closes
 * the connection and later writes are dropped.  While EXEC runs, replies
 * are captured instead of sent, so that an attempt EXEC must repeat
 * leaves no trace.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

/* ---- Captured replies (EXEC) ------------------------------------------------------- */

/* While EXEC runs its commands their replies are kept here: an attempt
 * that must run again (a key it read changed) throws them away, and a
 * version the commit has not given yet is a mark, filled in on release. */
struct resp_capture {
	char *p;
	size_t n, cap;
	size_t *marks; /* offsets in p where the commit's version goes */
	size_t nmarks, capmarks;
	int oom;
};

resp_capture *resp_capture_new(void)
{
	return calloc(1, sizeof(resp_capture));
}

void resp_capture_free(resp_capture *cap)
{
	if (!cap)
		return;
	free(cap->p);
	free(cap->marks);
	free(cap);
}

void resp_capture_reset(resp_capture *cap)
{
	cap->n = 0;
	cap->nmarks = 0;
	cap->oom = 0;
}

static void capture_append(resp_capture *cap, const char *p, size_t n)
{
	if (cap->oom)
		return;
	if (cap->cap - cap->n < n) {
		size_t nc = cap->cap ? cap->cap : 4096;
		while (nc - cap->n < n)
			nc *= 2;
		char *np = realloc(cap->p, nc);
		if (!np) {
			cap->oom = 1;
			return;
		}
		cap->p = np;
		cap->cap = nc;
	}
	memcpy(cap->p + cap->n, p, n);
	cap->n += n;
}

static void capture_mark(resp_capture *cap)
{
	if (cap->oom)
		return;
	if (srv_grow(&cap->marks, &cap->capmarks, cap->nmarks + 1, sizeof *cap->marks, 8)) {
		cap->oom = 1;
		return;
	}
	cap->marks[cap->nmarks++] = cap->n;
}

void resp_capture_release(resp_client *c, resp_capture *cap, uint64_t version)
{
	if (cap->oom) {
		add_error(c, "ERR out of memory");
		return;
	}
	char digits[24];
	int dn = snprintf(digits, sizeof digits, "%llu", (unsigned long long)version);
	size_t from = 0;
	for (size_t i = 0; i < cap->nmarks; i++) {
		add_raw(c, cap->p + from, cap->marks[i] - from);
		add_raw(c, digits, (size_t)dn);
		from = cap->marks[i];
	}
	add_raw(c, cap->p + from, cap->n - from);
}

void add_raw(resp_client *c, const char *p, size_t n)
{
	if (c->capture)
		capture_append(c->capture, p, n);
	else
		srv_conn_write(c->conn, p, n);
}

/* "<type><n>\r\n" */
static void add_header(resp_client *c, char type, long long n)
{
	char buf[32];
	buf[0] = type;
	size_t len = 1 + srv_ll2str(buf + 1, n);
	buf[len++] = '\r';
	buf[len++] = '\n';
	add_raw(c, buf, len);
}

void add_ok(resp_client *c)
{
	add_raw(c, "+OK\r\n", 5);
}

void add_simple(resp_client *c, const char *s)
{
	add_raw(c, "+", 1);
	add_raw(c, s, strlen(s));
	add_raw(c, "\r\n", 2);
}

void add_error(resp_client *c, const char *msg)
{
	c->errors++; /* INFO commandstats' failed_calls */
	char buf[1024];
	size_t n = strlen(msg);
	if (n > sizeof buf - 3)
		n = sizeof buf - 3;
	buf[0] = '-';
	for (size_t i = 0; i < n; i++) /* an error is one line, always */
		buf[i + 1] = msg[i] == '\r' || msg[i] == '\n' ? ' ' : msg[i];
	buf[n + 1] = '\r';
	buf[n + 2] = '\n';
	add_raw(c, buf, n + 3);
}

void add_errorf(resp_client *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	add_error(c, msg);
}

void add_int(resp_client *c, long long v)
{
	add_header(c, ':', v);
}

void add_version(resp_client *c, uint64_t v)
{
	if (v != KV_VERSION_PENDING) {
		char buf[32];
		int n = snprintf(buf, sizeof buf, ":%llu\r\n", (unsigned long long)v);
		add_raw(c, buf, (size_t)n);
		return;
	}
	add_raw(c, ":", 1);
	if (c->capture)
		capture_mark(c->capture);
	add_raw(c, "\r\n", 2);
}

void add_bulk(resp_client *c, const void *p, size_t n)
{
	add_header(c, '$', (long long)n);
	add_raw(c, p, n);
	add_raw(c, "\r\n", 2);
}

void add_bulk_cstr(resp_client *c, const char *s)
{
	add_bulk(c, s, strlen(s));
}

void add_bulk_ll(resp_client *c, long long v)
{
	char buf[24];
	size_t n = srv_ll2str(buf, v);
	add_bulk(c, buf, n);
}

void add_null(resp_client *c)
{
	if (c->proto >= 3)
		add_raw(c, "_\r\n", 3);
	else
		add_raw(c, "$-1\r\n", 5);
}

void add_null_array(resp_client *c)
{
	if (c->proto >= 3)
		add_raw(c, "_\r\n", 3);
	else
		add_raw(c, "*-1\r\n", 5);
}

void add_array(resp_client *c, long long n)
{
	add_header(c, '*', n);
}

void add_map(resp_client *c, long long n)
{
	if (c->proto >= 3)
		add_header(c, '%', n);
	else
		add_header(c, '*', 2 * n);
}

void add_set(resp_client *c, long long n)
{
	add_header(c, c->proto >= 3 ? '~' : '*', n);
}

void add_verbatim(resp_client *c, const char *p, size_t n, const char *fmt3)
{
	if (c->proto < 3) {
		add_bulk(c, p, n);
		return;
	}
	add_header(c, '=', (long long)n + 4);
	add_raw(c, fmt3, 3);
	add_raw(c, ":", 1);
	add_raw(c, p, n);
	add_raw(c, "\r\n", 2);
}

void add_engine_error(resp_client *c, int rc)
{
	if (rc == TROVE_ETOOBIG)
		add_error(c, ERR_TOO_BIG);
	else
		add_errorf(c, "ERR %s", trove_strerror(rc));
}
