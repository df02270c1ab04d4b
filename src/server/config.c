/*
 * config.c - troved's options: their defaults, a redis.conf-style file
 * ("name value" per line) and command-line overrides spelled the way
 * redis-server spells them ("--port 6380").
 *
 * One table below names every option once, with its parser, its default
 * and its meaning; the file reader, the command line (main.c), --help and
 * docs/SERVER.md all follow it.  Bad input is never guessed at: an unknown
 * name or a malformed value is an error that names the option, the value
 * and (in a file) the line.  This file only fills a srv_config; it never
 * opens sockets or the database.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "server.h"

typedef enum opt_kind {
	OPT_INT,
	OPT_BOOL,
	OPT_STR,
	OPT_SIZE,
	OPT_LEVEL,
	OPT_SYNC,
	OPT_BIND,
	OPT_OBUF,  /* client-output-buffer-limit <class> <hard> <soft> <seconds>... */
	OPT_DEBUG, /* yes, no or local */
} opt_kind;

typedef struct opt {
	const char *name;
	opt_kind kind;
	size_t off;
	long long min, max; /* OPT_INT, OPT_SIZE */
	const char *deflt;  /* as shown in --help and docs/SERVER.md */
	const char *help;
	int runtime;        /* CONFIG SET may change it while the server runs */
} opt;

#define OFF(f) offsetof(srv_config, f)
#define RT 1 /* changeable at run time */

static const opt opts[] = {
	{ "port", OPT_INT, OFF(port), 1, 65535, "6379", "TCP port to listen on", 0 },
	{ "bind", OPT_BIND, OFF(bind), 0, 0, "127.0.0.1",
	  "addresses to listen on (up to 16); a non-loopback one needs a password", 0 },
	{ "dir", OPT_STR, OFF(dir), 0, 0, "./data", "the database directory (created if missing)", 0 },
	{ "requirepass", OPT_STR, OFF(requirepass), 0, 0, "(none)",
	  "password of the default user; clients must AUTH when it is set", RT },
	{ "protected-mode", OPT_BOOL, OFF(protected_mode), 0, 0, "yes",
	  "with no password, accept loopback clients only and refuse non-loopback binds", 0 },
	{ "maxclients", OPT_INT, OFF(maxclients), 1, 1000000, "10000",
	  "connections accepted at once; more are refused with an error", RT },
	{ "timeout", OPT_INT, OFF(timeout), 0, 100000000, "0",
	  "close a connection idle this many seconds (0: never)", RT },
	{ "loglevel", OPT_LEVEL, OFF(loglevel), 0, 0, "notice", "debug, verbose, notice or warning", RT },
	{ "logfile", OPT_STR, OFF(logfile), 0, 0, "\"\"", "append the log here (\"\": standard error)", 0 },
	{ "daemonize", OPT_BOOL, OFF(daemonize), 0, 0, "no", "run in the background", 0 },
	{ "pidfile", OPT_STR, OFF(pidfile), 0, 0, "(none)", "write the process id here while running", 0 },
	{ "sync", OPT_SYNC, OFF(sync), 0, 0, "always",
	  "always: replies wait for fsync; periodic: fsync every sync-period-ms; none: the OS "
	  "decides", 0 },
	{ "sync-period-ms", OPT_INT, OFF(sync_period_ms), 1, 3600000, "1000",
	  "the period of sync periodic", 0 },
	{ "workers", OPT_INT, OFF(workers), 0, 256, "0",
	  "worker threads, each with its own event loop (0: one per core)", 0 },
	{ "proto-max-bulk-len", OPT_SIZE, OFF(proto_max_bulk_len), 1024, 1ll << 32, "64mb",
	  "largest single argument of a request", RT },
	{ "client-query-buffer-limit", OPT_SIZE, OFF(client_query_buffer_limit), 65536, 1ll << 34,
	  "128mb", "largest unprocessed input of one connection (one request, pipelined or not)", RT },
	{ "memory-budget", OPT_SIZE, OFF(memory_budget), 1 << 20, 1ll << 40, "64mb",
	  "engine memory for memtables and the block cache", 0 },
	{ "aclfile", OPT_STR, OFF(aclfile), 0, 0, "(none)",
	  "file of ACL users (\"user <name> <rules>\" lines) read at start, ACL LOAD and ACL SAVE",
	  0 },
	{ "client-output-buffer-limit", OPT_OBUF, 0, 0, 0, "normal 0 0 0",
	  "close a client whose unread replies pass <hard> bytes, or stay over <soft> for "
	  "<seconds> (0: no limit)",
	  RT },
	{ "request-timeout", OPT_INT, OFF(request_timeout), 0, 86400, "30",
	  "close a client that leaves a started request unfinished this many seconds (0: never)",
	  RT },
	{ "enable-debug-command", OPT_DEBUG, OFF(enable_debug), 0, 0, "local",
	  "DEBUG for every client (yes), none (no) or loopback clients only (local)", 0 },
};

#define NOPTS (sizeof opts / sizeof opts[0])

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d) {
		fprintf(stderr, "troved: out of memory\n");
		exit(1);
	}
	return d;
}

void srv_config_init(srv_config *c)
{
	memset(c, 0, sizeof *c);
	c->port = 6379;
	c->bind[0] = xstrdup("127.0.0.1");
	c->nbind = 1;
	c->dir = xstrdup("./data");
	c->protected_mode = 1;
	c->maxclients = 10000;
	c->loglevel = SRV_LL_NOTICE;
	c->logfile = xstrdup("");
	c->sync = TROVE_SYNC_ALWAYS;
	c->sync_period_ms = 1000;
	c->proto_max_bulk_len = 64u << 20;
	c->client_query_buffer_limit = 128u << 20;
	c->memory_budget = 64u << 20;
	c->request_timeout = 30;
	c->enable_debug = SRV_DEBUG_LOCAL;
}

void srv_config_free(srv_config *c)
{
	for (int i = 0; i < c->nbind; i++)
		free(c->bind[i]);
	free(c->config_file);
	free(c->dir);
	free(c->requirepass);
	free(c->logfile);
	free(c->pidfile);
	free(c->aclfile);
	memset(c, 0, sizeof *c);
}

int srv_parse_loglevel(const char *s)
{
	static const char *names[] = { "debug", "verbose", "notice", "warning" };
	for (int i = 0; i < 4; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	return -1;
}

const char *srv_sync_name(trove_sync_mode m)
{
	return m == TROVE_SYNC_ALWAYS ? "always" : m == TROVE_SYNC_PERIODIC ? "periodic" : "none";
}

static const opt *find_opt(const char *name)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (!strcasecmp(opts[i].name, name))
			return &opts[i];
	return NULL;
}

/* Parses one value of o into c.  0 or -1 with err. */
static int set_value(srv_config *c, const opt *o, const char *v, char *err, size_t errlen)
{
	char *base = (char *)c;
	switch (o->kind) {
	case OPT_INT: {
		long long n;
		if (srv_str2ll(v, strlen(v), &n) || n < o->min || n > o->max) {
			snprintf(err, errlen, "bad value for '%s': '%s' (an integer from %lld to %lld)",
			         o->name, v, o->min, o->max);
			return -1;
		}
		if (o->off == OFF(sync_period_ms))
			*(uint32_t *)(base + o->off) = (uint32_t)n;
		else
			*(int *)(base + o->off) = (int)n;
		return 0;
	}
	case OPT_BOOL:
		if (strcasecmp(v, "yes") && strcasecmp(v, "no")) {
			snprintf(err, errlen, "bad value for '%s': '%s' (yes or no)", o->name, v);
			return -1;
		}
		*(int *)(base + o->off) = !strcasecmp(v, "yes");
		return 0;
	case OPT_STR: {
		char **p = (char **)(base + o->off);
		free(*p);
		*p = xstrdup(v);
		return 0;
	}
	case OPT_SIZE: {
		uint64_t n;
		if (srv_memtoull(v, &n) || n < (uint64_t)o->min || n > (uint64_t)o->max) {
			snprintf(err, errlen,
			         "bad value for '%s': '%s' (a size such as 64mb, from %lld to %lld "
			         "bytes)",
			         o->name, v, o->min, o->max);
			return -1;
		}
		*(uint64_t *)(base + o->off) = n;
		return 0;
	}
	case OPT_LEVEL: {
		int l = srv_parse_loglevel(v);
		if (l < 0) {
			snprintf(err, errlen,
			         "bad value for '%s': '%s' (debug, verbose, notice or warning)",
			         o->name, v);
			return -1;
		}
		c->loglevel = l;
		return 0;
	}
	case OPT_SYNC:
		if (!strcasecmp(v, "always"))
			c->sync = TROVE_SYNC_ALWAYS;
		else if (!strcasecmp(v, "periodic"))
			c->sync = TROVE_SYNC_PERIODIC;
		else if (!strcasecmp(v, "none"))
			c->sync = TROVE_SYNC_NONE;
		else {
			snprintf(err, errlen, "bad value for '%s': '%s' (always, periodic or none)",
			         o->name, v);
			return -1;
		}
		return 0;
	case OPT_DEBUG:
		if (!strcasecmp(v, "yes"))
			c->enable_debug = SRV_DEBUG_YES;
		else if (!strcasecmp(v, "no"))
			c->enable_debug = SRV_DEBUG_NO;
		else if (!strcasecmp(v, "local"))
			c->enable_debug = SRV_DEBUG_LOCAL;
		else {
			snprintf(err, errlen, "bad value for '%s': '%s' (yes, no or local)", o->name, v);
			return -1;
		}
		return 0;
	case OPT_BIND:
	case OPT_OBUF:
		break;
	}
	return -1;
}

/* Parses client-output-buffer-limit's words: one or more "<class> <hard>
 * <soft> <seconds>" groups, as in redis.conf; only the normal class
 * applies to Trove (replica and pubsub are accepted and ignored).  Fills
 * hard/soft/seconds only when the normal class is given.  0 or -1. */
static int parse_obuf(int argc, char **argv, uint64_t *hard, uint64_t *soft, int *secs,
                      char *err, size_t errlen)
{
	if (argc == 0 || argc % 4) {
		snprintf(err, errlen,
		         "'client-output-buffer-limit' takes groups of <class> <hard> <soft> "
		         "<seconds>");
		return -1;
	}
	for (int i = 0; i < argc; i += 4) {
		const char *cls = argv[i];
		uint64_t h, so;
		long long sec;
		if (strcasecmp(cls, "normal") && strcasecmp(cls, "replica") &&
		    strcasecmp(cls, "slave") && strcasecmp(cls, "pubsub")) {
			snprintf(err, errlen, "Invalid client class specified in buffer limit '%s'",
			         cls);
			return -1;
		}
		if (srv_memtoull(argv[i + 1], &h) || srv_memtoull(argv[i + 2], &so) ||
		    srv_str2ll(argv[i + 3], strlen(argv[i + 3]), &sec) || sec < 0 ||
		    sec > 100000000) {
			snprintf(err, errlen, "Error in hard, soft or soft_seconds setting in buffer "
			                      "limit");
			return -1;
		}
		if (!strcasecmp(cls, "normal")) {
			*hard = h;
			*soft = so;
			*secs = (int)sec;
		}
	}
	return 0;
}

int srv_config_set(srv_config *c, const char *name, int argc, char **argv, char *err, size_t errlen)
{
	const opt *o = find_opt(name);
	if (!o) {
		snprintf(err, errlen, "unknown option '%s'", name);
		return -1;
	}
	if (o->kind == OPT_OBUF && argc == 1) {
		/* One quoted word, as in --client-output-buffer-limit "normal 0 0 0". */
		int n;
		size_t *lens;
		char **words = srv_splitargs(argv[0], strlen(argv[0]), &n, &lens);
		if (!words) {
			snprintf(err, errlen, "bad value for '%s': '%s'", o->name, argv[0]);
			return -1;
		}
		int rc = parse_obuf(n, words, &c->obuf_hard, &c->obuf_soft, &c->obuf_soft_seconds,
		                    err, errlen);
		srv_freeargs(words, lens, n);
		return rc;
	}
	if (o->kind == OPT_OBUF)
		return parse_obuf(argc, argv, &c->obuf_hard, &c->obuf_soft, &c->obuf_soft_seconds,
		                  err, errlen);
	if (o->kind == OPT_BIND) {
		if (argc < 1 || argc > SRV_MAX_BIND) {
			snprintf(err, errlen, "'bind' takes 1 to %d addresses", SRV_MAX_BIND);
			return -1;
		}
		for (int i = 0; i < c->nbind; i++)
			free(c->bind[i]);
		for (int i = 0; i < argc; i++)
			c->bind[i] = xstrdup(argv[i]);
		c->nbind = argc;
		return 0;
	}
	if (argc != 1) {
		snprintf(err, errlen, "'%s' takes exactly one value, got %d", o->name, argc);
		return -1;
	}
	if (o->kind == OPT_STR && !strcmp(o->name, "requirepass") && !*argv[0]) {
		free(c->requirepass); /* requirepass "" means no password, as in Redis */
		c->requirepass = NULL;
		return 0;
	}
	return set_value(c, o, argv[0], err, errlen);
}

int srv_config_load(srv_config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open config file '%s': %s", path, strerror(errno));
		return -1;
	}
	char line[8192];
	int lineno = 0, rc = 0;
	while (!rc && fgets(line, sizeof line, f)) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof line - 1 && line[n - 1] != '\n') {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			rc = -1;
			break;
		}
		size_t s = strspn(line, " \t\r\n");
		if (line[s] == '#' || line[s] == 0)
			continue;
		int argc;
		size_t *lens;
		char **argv = srv_splitargs(line, n, &argc, &lens);
		if (!argv) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno,
			         argc == -1 ? "unbalanced quotes" : "out of memory");
			rc = -1;
			break;
		}
		char msg[512];
		if (argc < 2) {
			snprintf(err, errlen, "%s:%d: '%s' needs a value", path, lineno, argv[0]);
			rc = -1;
		} else if (srv_config_set(c, argv[0], argc - 1, argv + 1, msg, sizeof msg)) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
			rc = -1;
		}
		srv_freeargs(argv, lens, argc);
	}
	fclose(f);
	return rc;
}

/* 1 if addr is a loopback address (127.0.0.0/8, ::1, localhost). */
static int is_loopback_name(const char *a)
{
	return !strncmp(a, "127.", 4) || !strcmp(a, "::1") || !strcasecmp(a, "localhost");
}

int srv_config_check(const srv_config *c, char *err, size_t errlen)
{
	if (c->client_query_buffer_limit < c->proto_max_bulk_len) {
		snprintf(err, errlen,
		         "client-query-buffer-limit (%llu) must be at least proto-max-bulk-len (%llu)",
		         (unsigned long long)c->client_query_buffer_limit,
		         (unsigned long long)c->proto_max_bulk_len);
		return -1;
	}
	if (c->protected_mode && !c->requirepass && !c->aclfile) {
		for (int i = 0; i < c->nbind; i++) {
			if (is_loopback_name(c->bind[i]))
				continue;
			snprintf(err, errlen,
			         "refusing to listen on '%s' without a password: protected mode "
			         "allows non-loopback addresses only with requirepass set (set "
			         "requirepass, or bind 127.0.0.1)",
			         c->bind[i]);
			return -1;
		}
	}
	if (!*c->dir) {
		snprintf(err, errlen, "'dir' must not be empty");
		return -1;
	}
	return 0;
}

/* ---- CONFIG GET and CONFIG SET ------------------------------------------------ */

/* What a few Redis options Trove does not have read as, for tools that
 * ask (redis-benchmark asks for save and appendonly). */
static const struct {
	const char *name, *value;
} fixed[] = {
	{ "databases", "16" },   { "save", "" },     { "appendonly", "no" },
	{ "maxmemory", "0" },    { "maxmemory-policy", "noeviction" },
};

#define NFIXED (sizeof fixed / sizeof fixed[0])

const char *srv_config_canonical(const char *name)
{
	const opt *o = find_opt(name);
	return o ? o->name : NULL;
}

/* Formats option o's value as redis.conf holds it. */
static void format_value(const srv_config *c, const opt *o, char *buf, size_t len)
{
	const char *base = (const char *)c;
	switch (o->kind) {
	case OPT_INT:
		snprintf(buf, len, "%lld",
		         o->off == OFF(sync_period_ms) ? (long long)c->sync_period_ms
		                                       : (long long)*(const int *)(base + o->off));
		return;
	case OPT_BOOL:
		snprintf(buf, len, "%s", *(const int *)(base + o->off) ? "yes" : "no");
		return;
	case OPT_STR: {
		const char *v = *(char *const *)(base + o->off);
		snprintf(buf, len, "%s", v ? v : "");
		return;
	}
	case OPT_SIZE:
		snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)(base + o->off));
		return;
	case OPT_LEVEL: {
		static const char *names[] = { "debug", "verbose", "notice", "warning" };
		snprintf(buf, len, "%s", names[c->loglevel & 3]);
		return;
	}
	case OPT_SYNC:
		snprintf(buf, len, "%s", srv_sync_name(c->sync));
		return;
	case OPT_BIND: {
		size_t n = 0;
		buf[0] = 0;
		for (int i = 0; i < c->nbind && n < len; i++)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "", c->bind[i]);
		return;
	}
	case OPT_OBUF:
		snprintf(buf, len,
		         "normal %llu %llu %d slave 268435456 67108864 60 pubsub 33554432 8388608 60",
		         (unsigned long long)c->obuf_hard, (unsigned long long)c->obuf_soft,
		         c->obuf_soft_seconds);
		return;
	case OPT_DEBUG:
		snprintf(buf, len, "%s",
		         c->enable_debug == SRV_DEBUG_YES  ? "yes"
		         : c->enable_debug == SRV_DEBUG_NO ? "no"
		                                           : "local");
		return;
	}
}

int srv_config_get(const srv_config *c, const char *pattern, size_t plen,
                   void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
	int n = 0;
	char buf[4096];
	for (size_t i = 0; i < NOPTS; i++) {
		if (!srv_glob_match(pattern, plen, opts[i].name, strlen(opts[i].name), 1))
			continue;
		format_value(c, &opts[i], buf, sizeof buf);
		fn(arg, opts[i].name, buf);
		n++;
	}
	for (size_t i = 0; i < NFIXED; i++) {
		if (srv_glob_match(pattern, plen, fixed[i].name, strlen(fixed[i].name), 1)) {
			fn(arg, fixed[i].name, fixed[i].value);
			n++;
		}
	}
	return n;
}

/* Raises the open-file limit for n clients if it must; 0 or -1. */
static int fit_files(long long n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -1;
	if (rl.rlim_cur >= want)
		return 0;
	if (want > rl.rlim_max)
		return -1;
	rl.rlim_cur = want;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

/* Parses value for o into the right field of a scratch copy; the words of
 * Redis's CONFIG SET errors. */
static int runtime_parse(const srv_config *c, const opt *o, const char *v, srv_config *tmp,
                         char *err, size_t errlen)
{
	char msg[256];
	switch (o->kind) {
	case OPT_INT: {
		long long n;
		if (srv_str2ll(v, strlen(v), &n)) {
			snprintf(err, errlen, "argument couldn't be parsed into an integer");
			return -1;
		}
		if (n < o->min || n > o->max) {
			snprintf(err, errlen, "argument must be between %lld and %lld inclusive", o->min,
			         o->max);
			return -1;
		}
		if (o->off == OFF(maxclients) && fit_files(n)) {
			snprintf(err, errlen,
			         "The operating system is not able to handle the specified number of "
			         "clients");
			return -1;
		}
		*(int *)((char *)tmp + o->off) = (int)n;
		return 0;
	}
	case OPT_SIZE: {
		uint64_t n;
		if (srv_memtoull(v, &n)) {
			snprintf(err, errlen, "argument must be a memory value");
			return -1;
		}
		if (n < (uint64_t)o->min || n > (uint64_t)o->max) {
			snprintf(err, errlen, "argument must be between %lld and %lld inclusive", o->min,
			         o->max);
			return -1;
		}
		*(uint64_t *)((char *)tmp + o->off) = n;
		if (tmp->proto_max_bulk_len > tmp->client_query_buffer_limit) {
			snprintf(err, errlen,
			         "proto-max-bulk-len must not be larger than client-query-buffer-limit");
			return -1;
		}
		return 0;
	}
	case OPT_LEVEL: {
		int l = srv_parse_loglevel(v);
		if (l < 0) {
			snprintf(err, errlen,
			         "argument(s) must be one of the following: debug, verbose, notice, "
			         "warning");
			return -1;
		}
		tmp->loglevel = l;
		return 0;
	}
	case OPT_STR:
		return 0; /* requirepass: any string */
	case OPT_OBUF: {
		int argc;
		size_t *lens;
		char **argv = srv_splitargs(v, strlen(v), &argc, &lens);
		if (!argv) {
			snprintf(err, errlen, "Wrong number of arguments in buffer limit configuration.");
			return -1;
		}
		int rc = parse_obuf(argc, argv, &tmp->obuf_hard, &tmp->obuf_soft,
		                    &tmp->obuf_soft_seconds, msg, sizeof msg);
		srv_freeargs(argv, lens, argc);
		if (rc)
			snprintf(err, errlen, "%s", msg);
		return rc;
	}
	default:
		break;
	}
	snprintf(err, errlen, "can't set immutable config");
	return -1;
}

int srv_config_set_runtime(srv_config *c, const char *name, const char *value, int dry_run,
                           char *err, size_t errlen)
{
	const opt *o = find_opt(name);
	if (!o) {
		for (size_t i = 0; i < NFIXED; i++) {
			if (!strcasecmp(fixed[i].name, name)) {
				snprintf(err, errlen, "can't set immutable config");
				return -1;
			}
		}
		return -2;
	}
	if (!o->runtime) {
		snprintf(err, errlen, "can't set immutable config");
		return -1;
	}
	srv_config tmp = *c;
	if (runtime_parse(c, o, value, &tmp, err, errlen))
		return -1;
	if (dry_run)
		return 0;
	switch (o->kind) {
	case OPT_INT:
		__atomic_store_n((int *)((char *)c + o->off), *(int *)((char *)&tmp + o->off),
		                 __ATOMIC_RELAXED);
		break;
	case OPT_SIZE:
		__atomic_store_n((uint64_t *)((char *)c + o->off),
		                 *(uint64_t *)((char *)&tmp + o->off), __ATOMIC_RELAXED);
		break;
	case OPT_LEVEL:
		__atomic_store_n(&c->loglevel, tmp.loglevel, __ATOMIC_RELAXED);
		srv_log_set_level(tmp.loglevel);
		break;
	case OPT_STR: {
		char **p = (char **)((char *)c + o->off);
		free(*p);
		*p = *value ? xstrdup(value) : NULL;
		break;
	}
	case OPT_OBUF:
		__atomic_store_n(&c->obuf_hard, tmp.obuf_hard, __ATOMIC_RELAXED);
		__atomic_store_n(&c->obuf_soft, tmp.obuf_soft, __ATOMIC_RELAXED);
		__atomic_store_n(&c->obuf_soft_seconds, tmp.obuf_soft_seconds, __ATOMIC_RELAXED);
		break;
	default:
		break;
	}
	return 0;
}

void srv_config_usage(FILE *f)
{
	fprintf(f, "Options (in a config file: \"name value\"; on the command line: --name value):\n");
	for (size_t i = 0; i < NOPTS; i++)
		fprintf(f, "  %-27s %-10s %s\n", opts[i].name, opts[i].deflt, opts[i].help);
}
