/*
 * proto.c - the RESP request parser and the front-end's face to the core
 * (srv_resp_frontend): multibulk requests ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
 * as every client library sends them, and inline requests ("GET k\r\n") as
 * people type them into telnet.
 *
 * The input is hostile until proven otherwise.  Every length is checked
 * before it is trusted: count lines and inline requests are at most 64 KiB,
 * a request has at most 1M arguments, an argument at most
 * proto-max-bulk-len bytes, and before AUTH (when a password is set) at
 * most 10 arguments of 16 KiB, so an unauthenticated stranger cannot make
 * the server allocate.  A malformed request gets "-ERR Protocol error:
 * ..." and the connection is closed once the reply is sent, as Redis does.
 * Parsing is incremental: a request that arrives in pieces is never
 * re-scanned from its start, so a large pipeline or a 64 MiB value costs
 * linear time.  This file must never run a command itself (commands.c
 * does) nor keep a pointer into the core's buffer across calls.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

static void client_init(srv_conn *conn, void *state)
{
	resp_client *c = state;
	c->conn = conn;
	c->srv = srv_conn_server(conn);
	c->db = srv_server_db(c->srv);
	c->proto = 2;
	c->bulk_len = -1;
	atomic_init(&c->pub_proto, 2);
	if (!srv_server_auth_required(c->srv))
		srv_conn_set_authenticated(conn, 1);
}

static void client_free(srv_conn *conn, void *state)
{
	(void)conn;
	resp_client *c = state; /* may be all zeroes: see conn_start */
	assert(!c->conn || !resp_turn_holds(c)); /* batches end with their turn */
	free(c->name);
	multi_free(c);
	free(c->argoff);
	free(c->arglen);
	free(c->argv);
}

static size_t refusal(char *out, size_t cap, const char *msg)
{
	int n = snprintf(out, cap, "-%s\r\n", msg);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static void reset_request(resp_client *c)
{
	c->reqtype = 0;
	c->mb_left = 0;
	c->bulk_len = -1;
	c->pos = 0;
	c->argc = 0;
}

/* Replies with a protocol error and makes the connection close after it.
 * Returns -1 for the parser's convenience. */
static int protocol_error(resp_client *c, const char *what)
{
	add_errorf(c, "ERR Protocol error: %s", what);
	srv_log(SRV_LL_VERBOSE, "protocol error from %s: %s", srv_conn_peer(c->conn), what);
	srv_conn_close_after_reply(c->conn);
	return -1;
}

static int unauthenticated(resp_client *c)
{
	return !srv_conn_authenticated(c->conn);
}

/* Makes room for n argument slots; 0 or -1 (ENOMEM, connection closed). */
static int reserve_args(resp_client *c, long long n)
{
	if (n <= c->argcap)
		return 0;
	int cap = c->argcap ? c->argcap : 8;
	while (cap < n)
		cap *= 2;
	size_t *o = realloc(c->argoff, sizeof *o * (size_t)cap);
	if (o)
		c->argoff = o;
	size_t *l = o ? realloc(c->arglen, sizeof *l * (size_t)cap) : NULL;
	if (l)
		c->arglen = l;
	char **v = l ? realloc(c->argv, sizeof *v * (size_t)cap) : NULL;
	if (!v) {
		srv_log(SRV_LL_WARNING, "out of memory for a request of %lld arguments", n);
		srv_conn_close_after_reply(c->conn);
		return -1;
	}
	c->argv = v;
	c->argcap = cap;
	return 0;
}

/* Finds the line starting at buf[from]: returns the offset of its '\r'
 * (the byte after it must be there too), or -1 if not complete yet. */
static long long find_line(const char *buf, size_t len, size_t from)
{
	const char *r = memchr(buf + from, '\r', len - from);
	if (!r || (size_t)(r - buf) + 1 >= len)
		return -1;
	return r - buf;
}

/* srv_str2ll for a count or length line, without its general checks
 * for the few plain digits these nearly always are. */
static int parse_count(const char *s, size_t n, long long *v)
{
	if (n == 0 || n > 9 || (s[0] == '0' && n > 1))
		return srv_str2ll(s, n, v);
	long long acc = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(unsigned char)s[i] - '0';
		if (d > 9)
			return srv_str2ll(s, n, v); /* a sign, or not a number */
		acc = acc * 10 + d;
	}
	*v = acc;
	return 0;
}

/* Parses more of a multibulk request.  Returns the request's length once it
 * is complete, 0 if more input is needed, -1 on a protocol error. */
static long long parse_multibulk(resp_client *c, char *buf, size_t len)
{
	if (c->pos == 0) {
		long long cr = find_line(buf, len, 0);
		if (cr < 0)
			return len > RESP_INLINE_MAX ? protocol_error(c, "too big mbulk count string")
			                             : 0;
		long long n;
		if (parse_count(buf + 1, (size_t)cr - 1, &n) || n > RESP_MAX_MULTIBULK)
			return protocol_error(c, "invalid multibulk length");
		if (unauthenticated(c) && n > RESP_UNAUTH_MULTIBULK)
			return protocol_error(c, "unauthenticated multibulk length");
		c->pos = (size_t)cr + 2;
		if (n <= 0)
			return (long long)c->pos; /* "*0" and "*-1": nothing to run */
		c->mb_left = n;
		c->argc = 0;
		if (reserve_args(c, n < 1024 ? n : 1024))
			return -1;
	}
	while (c->mb_left > 0) {
		if (c->bulk_len < 0) {
			long long cr = find_line(buf, len, c->pos);
			if (cr < 0)
				return len - c->pos > RESP_INLINE_MAX
				               ? protocol_error(c, "too big bulk count string")
				               : 0;
			if (buf[c->pos] != '$') {
				char what[64];
				snprintf(what, sizeof what, "expected '$', got '%c'", buf[c->pos]);
				return protocol_error(c, what);
			}
			long long n;
			if (parse_count(buf + c->pos + 1, (size_t)cr - c->pos - 1, &n) || n < 0 ||
			    (unsigned long long)n > SRV_CFG(srv_server_config(c->srv)->proto_max_bulk_len))
				return protocol_error(c, "invalid bulk length");
			if (unauthenticated(c) && n > RESP_UNAUTH_BULK)
				return protocol_error(c, "unauthenticated bulk length");
			c->bulk_len = n;
			c->pos = (size_t)cr + 2;
		}
		if (len - c->pos < (size_t)c->bulk_len + 2)
			return 0;
		if (reserve_args(c, c->argc + 1))
			return -1;
		c->argoff[c->argc] = c->pos;
		c->arglen[c->argc] = (size_t)c->bulk_len;
		c->argc++;
		c->pos += (size_t)c->bulk_len + 2; /* the CRLF is skipped, as Redis does */
		c->bulk_len = -1;
		c->mb_left--;
	}
	return (long long)c->pos;
}

/* Runs the completed multibulk request in buf. */
static void run_multibulk(resp_client *c, char *buf)
{
	for (int i = 0; i < c->argc; i++) {
		c->argv[i] = buf + c->argoff[i];
		c->argv[i][c->arglen[i]] = 0; /* over the '\r': already consumed */
	}
	resp_dispatch(c, c->argc, c->argv, c->arglen);
}

/* Parses and runs one inline request.  Returns its length, 0 if the line
 * is not complete, -1 on a protocol error. */
static long long run_inline(resp_client *c, char *buf, size_t len)
{
	char *nl = memchr(buf, '\n', len);
	if (!nl)
		return len > RESP_INLINE_MAX ? protocol_error(c, "too big inline request") : 0;
	size_t linelen = (size_t)(nl - buf);
	if (linelen > RESP_INLINE_MAX)
		return protocol_error(c, "too big inline request");
	if (linelen && buf[linelen - 1] == '\r')
		linelen--;
	int argc;
	size_t *lens;
	char **argv = srv_splitargs(buf, linelen, &argc, &lens);
	if (!argv) {
		if (argc == -1)
			return protocol_error(c, "unbalanced quotes in request");
		srv_conn_close_after_reply(c->conn);
		return -1;
	}
	if (argc > 0)
		resp_dispatch(c, argc, argv, lens);
	srv_freeargs(argv, lens, argc);
	return (long long)(nl - buf) + 1;
}

static size_t on_input(srv_conn *conn, void *state, char *buf, size_t len)
{
	resp_client *c = state;
	size_t used = 0;
	while (used < len && !srv_conn_busy(conn)) {
		char *req = buf + used;
		size_t avail = len - used;
		if (!c->reqtype)
			c->reqtype = req[0] == '*' ? '*' : 'i';
		long long n;
		if (c->reqtype == '*') {
			n = parse_multibulk(c, req, avail);
			if (n > 0 && c->argc > 0)
				run_multibulk(c, req);
		} else {
			n = run_inline(c, req, avail);
		}
		if (n == 0)
			break;
		reset_request(c);
		if (n < 0)
			return len; /* the rest is junk; the connection is closing */
		used += (size_t)n;
	}
	return used;
}

const srv_frontend srv_resp_frontend = {
	.name = "resp",
	.state_size = sizeof(resp_client),
	.conn_init = client_init,
	.conn_free = client_free,
	.on_input = on_input,
	.refusal = refusal,
	.catalog = resp_catalog,
	.worker_new = resp_turn_new,
	.worker_free = resp_turn_free,
	.turn_end = resp_turn_end,
};
