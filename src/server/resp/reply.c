/*
 * reply.c - writes RESP replies into a connection's output buffer, in the
 * client's protocol version: RESP2 by default, RESP3 after HELLO 3 (where
 * nulls, maps, sets and verbatim strings have their own types).
 *
 * Every command answers only through these functions, so the wire format
 * lives in one place.  They never fail: on out-of-memory the core closes
 * the connection and later writes are dropped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "resp.h"

void add_raw(resp_client *c, const char *p, size_t n)
{
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
