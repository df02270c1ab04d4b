/*
 * t_conn.c - connection and server commands: PING ECHO QUIT HELLO AUTH
 * SELECT CLIENT TIME INFO.
 *
 * These change only the connection's own state (protocol version,
 * authentication, database, name) or report on the server; they never
 * write keys.  Users and passwords are the core's (acl.c): this file only
 * speaks their Redis words.
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "resp.h"

void cmd_ping(resp_client *c, int argc, char **argv, size_t *lens)
{
	if (argc > 2) {
		add_error(c, "ERR wrong number of arguments for 'ping' command");
		return;
	}
	if (argc == 2)
		add_bulk(c, argv[1], lens[1]);
	else
		add_simple(c, "PONG");
}

void cmd_echo(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	add_bulk(c, argv[1], lens[1]);
}

void cmd_quit(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	add_ok(c);
	srv_conn_close_after_reply(c->conn);
}

/* Checks a password for user (NULL: the default user) and replies with
 * the error if it is wrong (logging it in ACL LOG).  Returns 0 if the
 * client is now authenticated as that user. */
static int authenticate(resp_client *c, const char *user, size_t ulen, const char *pass,
                        size_t plen)
{
	if (!user) {
		user = "default";
		ulen = 7;
	}
	srv_acl *acl = srv_server_acl(c->srv);
	srv_user *u;
	if (srv_acl_check_password(acl, user, ulen, pass, plen, &u)) {
		char line[1024], name[160];
		srv_log(SRV_LL_VERBOSE, "failed AUTH from %s", srv_conn_peer(c->conn));
		resp_client_line(c, line, sizeof line);
		snprintf(name, sizeof name, "%.*s", (int)(ulen > 128 ? 128 : ulen), user);
		srv_acl_log_add(acl, "auth", "toplevel", "AUTH", 4, name, line);
		add_error(c, ERR_WRONGPASS);
		return -1;
	}
	srv_conn_set_user(c->conn, u, 1);
	return 0;
}

/* 1 if the default user takes no password (AUTH <password> is then an
 * error, as in Redis). */
static int default_nopass(resp_client *c)
{
	srv_user *d = srv_acl_get(srv_server_acl(c->srv), "default", 7);
	int nopass = d && srv_user_nopass(d);
	srv_user_unref(d);
	return nopass;
}

void cmd_auth(resp_client *c, int argc, char **argv, size_t *lens)
{
	if (argc > 3) {
		add_error(c, ERR_SYNTAX);
		return;
	}
	if (argc == 2 && default_nopass(c)) {
		add_error(c, "ERR AUTH <password> called without any password configured for the "
		             "default user. Are you sure your configuration is correct?");
		return;
	}
	const char *user = argc == 3 ? argv[1] : NULL;
	size_t ulen = argc == 3 ? lens[1] : 0;
	if (authenticate(c, user, ulen, argv[argc - 1], lens[argc - 1]) == 0)
		add_ok(c);
}

/* Client names are printable ASCII without spaces, as in Redis.  Replies
 * with the error and returns -1 otherwise. */
static int set_name(resp_client *c, const char *name, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (name[i] < '!' || name[i] > '~') {
			add_error(c, "ERR Client names cannot contain spaces, newlines or special "
			             "characters.");
			return -1;
		}
	}
	char *copy = NULL;
	if (len) {
		copy = malloc(len + 1);
		if (!copy) {
			add_error(c, "ERR out of memory");
			return -1;
		}
		memcpy(copy, name, len);
		copy[len] = 0;
	}
	srv_conn_lock(c->conn); /* CLIENT LIST on another worker reads it */
	char *old = c->name;
	c->name = copy;
	srv_conn_unlock(c->conn);
	free(old);
	return 0;
}

void cmd_hello(resp_client *c, int argc, char **argv, size_t *lens)
{
	long long ver = c->proto;
	if (argc >= 2) {
		if (srv_str2ll(argv[1], lens[1], &ver)) {
			add_error(c, "ERR Protocol version is not an integer or out of range");
			return;
		}
		if (ver < 2 || ver > 3) {
			add_error(c, "NOPROTO unsupported protocol version");
			return;
		}
	}
	const char *user = NULL, *pass = NULL, *name = NULL;
	size_t ulen = 0, plen = 0, nlen = 0;
	for (int j = 2; j < argc; j++) {
		int more = argc - j - 1;
		if (arg_is(argv[j], lens[j], "auth") && more >= 2) {
			user = argv[j + 1];
			ulen = lens[j + 1];
			pass = argv[j + 2];
			plen = lens[j + 2];
			j += 2;
		} else if (arg_is(argv[j], lens[j], "setname") && more >= 1) {
			name = argv[j + 1];
			nlen = lens[j + 1];
			j++;
		} else {
			add_errorf(c, "ERR Syntax error in HELLO option '%.128s'", argv[j]);
			return;
		}
	}
	if (pass && authenticate(c, user, ulen, pass, plen))
		return;
	if (!srv_conn_authenticated(c->conn)) {
		add_error(c, "NOAUTH HELLO must be called with the client already authenticated, "
		             "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
		             "authenticate the client and select the RESP protocol version at the "
		             "same time");
		return;
	}
	if (name && set_name(c, name, nlen))
		return;
	c->proto = (int)ver;
	add_map(c, 7);
	add_bulk_cstr(c, "server");
	add_bulk_cstr(c, "redis");
	add_bulk_cstr(c, "version");
	add_bulk_cstr(c, "7.0.0");
	add_bulk_cstr(c, "proto");
	add_int(c, ver);
	add_bulk_cstr(c, "id");
	add_int(c, (long long)srv_conn_id(c->conn));
	add_bulk_cstr(c, "mode");
	add_bulk_cstr(c, "standalone");
	add_bulk_cstr(c, "role");
	add_bulk_cstr(c, "master");
	add_bulk_cstr(c, "modules");
	add_array(c, 0);
}

void cmd_select(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc;
	long long n;
	if (arg_ll(c, argv[1], lens[1], &n, NULL))
		return;
	if (n < 0 || n >= RESP_DBS) {
		add_error(c, "ERR DB index is out of range");
		return;
	}
	c->dbnum = (int)n;
	add_ok(c);
}

void cmd_time(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	int64_t us = srv_now_us();
	add_array(c, 2);
	add_bulk_ll(c, us / 1000000);
	add_bulk_ll(c, us % 1000000);
}

void cmd_client(resp_client *c, int argc, char **argv, size_t *lens)
{
	const char *sub = argv[1];
	size_t sl = lens[1];
	if (arg_is(sub, sl, "id") && argc == 2) {
		add_int(c, (long long)srv_conn_id(c->conn));
	} else if (arg_is(sub, sl, "getname") && argc == 2) {
		if (c->name)
			add_bulk_cstr(c, c->name);
		else
			add_null(c);
	} else if (arg_is(sub, sl, "setname") && argc == 3) {
		if (set_name(c, argv[2], lens[2]) == 0)
			add_ok(c);
	} else if (client_admin(c, argc, argv, lens) == 0) {
		/* LIST, KILL, INFO, NO-EVICT, NO-TOUCH (t_admin.c) */
	} else if (arg_is(sub, sl, "help") && argc == 2) {
		static const char *help[] = {
			"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GETNAME",
			"    Return the name of the current connection.",
			"ID",
			"    Return the ID of the current connection.",
			"INFO",
			"    Return information about the current client connection.",
			"KILL <ip:port>",
			"    Kill connection made from <ip:port>.",
			"KILL <option> <value> [<option> <value> [...]]",
			"    Kill connections. Options are:",
			"    * ADDR (<ip:port>|<unixsocket>:0)",
			"      Kill connections made from the specified address",
			"    * LADDR (<ip:port>|<unixsocket>:0)",
			"      Kill connections made to specified local address",
			"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
			"      Kill connections by type.",
			"    * USER <username>",
			"      Kill connections authenticated by <username>.",
			"    * SKIPME (YES|NO)",
			"      Skip killing current connection (default: yes).",
			"    * ID <client-id>",
			"      Kill connections by client id.",
			"LIST [options ...]",
			"    Return information about client connections. Options:",
			"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
			"      Return clients of specified type.",
			"    * ID <client-id> [<client-id> ...]",
			"      Return clients of specified IDs only.",
			"NO-EVICT (ON|OFF)",
			"    Accepted and ignored: Trove never evicts clients.",
			"NO-TOUCH (ON|OFF)",
			"    Accepted and ignored: Trove keeps no access times.",
			"SETNAME <name>",
			"    Assign the name <name> to the current connection.",
			"HELP",
			"    Print this help.",
		};
		add_array(c, sizeof help / sizeof help[0]);
		for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
			add_simple(c, help[i]);
	} else if (arg_is(sub, sl, "id") || arg_is(sub, sl, "getname") ||
	           arg_is(sub, sl, "setname") || arg_is(sub, sl, "help")) {
		char low[8];
		size_t i;
		for (i = 0; i < sl && i < sizeof low - 1; i++)
			low[i] = (char)(sub[i] | 0x20);
		low[i] = 0;
		add_errorf(c, "ERR wrong number of arguments for 'client|%s' command", low);
	} else {
		add_errorf(c, "ERR unknown subcommand '%.128s'. Try CLIENT HELP.", sub);
	}
}

/* ---- INFO ------------------------------------------------------------------------ */

typedef struct sbuf {
	char *p;
	size_t n, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->p && b->n + (size_t)n < b->cap) {
			b->n += (size_t)n;
			return;
		}
		size_t nc = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
		char *np = realloc(b->p, nc);
		if (!np)
			return;
		b->p = np;
		b->cap = nc;
	}
}

static void info_server(resp_client *c, sbuf *b)
{
	const srv_config *cfg = srv_server_config(c->srv);
	struct utsname u;
	uname(&u);
	int64_t up = (srv_now_ms() - (int64_t)srv_server_start_ms(c->srv)) / 1000;
	sb_printf(b,
	          "# Server\r\n"
	          "redis_version:7.0.0\r\n"
	          "trove_version:%s\r\n"
	          "redis_mode:standalone\r\n"
	          "os:%s %s %s\r\n"
	          "arch_bits:%d\r\n"
	          "multiplexing_api:libuv %s\r\n"
	          "process_id:%d\r\n"
	          "tcp_port:%d\r\n"
	          "server_time_usec:%lld\r\n"
	          "uptime_in_seconds:%lld\r\n"
	          "uptime_in_days:%lld\r\n"
	          "workers:%d\r\n"
	          "sync:%s\r\n"
	          "dir:%s\r\n"
	          "config_file:%s\r\n",
	          SRV_SERVER_VERSION, u.sysname, u.release, u.machine, (int)(sizeof(void *) * 8),
	          uv_version_string(), (int)getpid(), cfg->port, (long long)srv_now_us(),
	          (long long)up, (long long)up / 86400, srv_server_workers(c->srv),
	          srv_sync_name(cfg->sync), cfg->dir, cfg->config_file ? cfg->config_file : "");
}

static void info_clients(resp_client *c, sbuf *b)
{
	sb_printf(b,
	          "# Clients\r\n"
	          "connected_clients:%d\r\n"
	          "maxclients:%d\r\n"
	          "blocked_clients:0\r\n",
	          srv_server_clients(c->srv), SRV_CFG(srv_server_config(c->srv)->maxclients));
}

/* Bytes as Redis's INFO shows them ("1.50M"). */
static void human(char *buf, size_t len, uint64_t n)
{
	static const char units[] = "BKMGTP";
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lluB", (unsigned long long)n);
	else
		snprintf(buf, len, "%.2f%c", v, units[u]);
}

static void info_memory(resp_client *c, sbuf *b)
{
	struct mallinfo2 mi = mallinfo2();
	uint64_t used = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
	uint64_t rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		unsigned long long size, res;
		if (fscanf(f, "%llu %llu", &size, &res) == 2)
			rss = res * (uint64_t)sysconf(_SC_PAGESIZE);
		fclose(f);
	}
	if (!used) /* an allocator mallinfo2 does not see (sanitizers): say the RSS */
		used = rss;
	struct rusage ru;
	uint64_t peak = getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024 : rss;
	trove_stats es;
	memset(&es, 0, sizeof es);
	trove_get_stats(c->db, &es);
	char h1[32], h2[32], h3[32];
	human(h1, sizeof h1, used);
	human(h2, sizeof h2, rss);
	human(h3, sizeof h3, peak);
	sb_printf(b,
	          "# Memory\r\n"
	          "used_memory:%llu\r\n"
	          "used_memory_human:%s\r\n"
	          "used_memory_rss:%llu\r\n"
	          "used_memory_rss_human:%s\r\n"
	          "used_memory_peak:%llu\r\n"
	          "used_memory_peak_human:%s\r\n"
	          "maxmemory:0\r\n"
	          "maxmemory_human:0B\r\n"
	          "maxmemory_policy:noeviction\r\n"
	          "mem_allocator:libc\r\n"
	          "trove_memory_budget:%llu\r\n"
	          "trove_memtable_bytes:%llu\r\n"
	          "trove_cache_bytes:%llu\r\n",
	          (unsigned long long)used, h1, (unsigned long long)rss, h2,
	          (unsigned long long)peak, h3,
	          (unsigned long long)srv_server_config(c->srv)->memory_budget,
	          (unsigned long long)es.memtable_bytes, (unsigned long long)es.cache_bytes);
}

static void info_persistence(resp_client *c, sbuf *b)
{
	srv_save_info si;
	srv_server_save_info(c->srv, &si);
	trove_stats es;
	memset(&es, 0, sizeof es);
	trove_get_stats(c->db, &es);
	uint64_t disk = 0;
	trove_disk_size(c->db, &disk);
	int64_t now = srv_now_ms();
	sb_printf(b,
	          "# Persistence\r\n"
	          "loading:0\r\n"
	          "async_loading:0\r\n"
	          "rdb_changes_since_last_save:%llu\r\n"
	          "rdb_bgsave_in_progress:%d\r\n"
	          "rdb_last_save_time:%lld\r\n"
	          "rdb_last_bgsave_status:%s\r\n"
	          "rdb_last_bgsave_time_sec:%lld\r\n"
	          "rdb_current_bgsave_time_sec:%lld\r\n"
	          "rdb_saves:%llu\r\n"
	          "aof_enabled:0\r\n"
	          "aof_rewrite_in_progress:0\r\n"
	          "aof_rewrite_scheduled:0\r\n"
	          "aof_last_rewrite_time_sec:-1\r\n"
	          "aof_current_rewrite_time_sec:-1\r\n"
	          "aof_last_bgrewrite_status:ok\r\n"
	          "aof_last_write_status:ok\r\n"
	          "trove_sync:%s\r\n"
	          "trove_disk_bytes:%llu\r\n"
	          "trove_table_files:%llu\r\n"
	          "trove_flushes:%llu\r\n"
	          "trove_compactions:%llu\r\n"
	          "trove_last_backup_dir:%s\r\n",
	          (unsigned long long)(es.writes - si.writes_at_last_save), si.in_progress,
	          (long long)si.last_save_s, si.last_ok ? "ok" : "err",
	          (long long)(si.last_duration_ms < 0 ? -1 : si.last_duration_ms / 1000),
	          (long long)(si.in_progress ? (now - si.current_start_ms) / 1000 : -1),
	          (unsigned long long)si.saves, srv_sync_name(srv_server_config(c->srv)->sync),
	          (unsigned long long)disk, (unsigned long long)es.table_files,
	          (unsigned long long)es.flushes, (unsigned long long)es.compactions, si.last_dir);
}

static void info_commandstats(resp_client *c, sbuf *b)
{
	size_t n;
	const srv_acl_cmd *cat = srv_server_catalog(c->srv, &n);
	srv_cmdstat *st = calloc(n ? n : 1, sizeof *st);
	sb_printf(b, "# Commandstats\r\n");
	if (!st)
		return;
	srv_server_cmdstats(c->srv, st);
	for (size_t i = 0; i < n; i++) {
		if (!st[i].calls && !st[i].rejected)
			continue;
		sb_printf(b,
		          "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,"
		          "failed_calls=%llu\r\n",
		          cat[i].name, (unsigned long long)st[i].calls, (unsigned long long)st[i].usec,
		          st[i].calls ? (double)st[i].usec / (double)st[i].calls : 0.0,
		          (unsigned long long)st[i].rejected, (unsigned long long)st[i].failed);
	}
	free(st);
}

static void info_stats(resp_client *c, sbuf *b)
{
	srv_stats *st = srv_server_stats(c->srv);
	trove_stats es;
	memset(&es, 0, sizeof es);
	trove_get_stats(c->db, &es);
	sb_printf(b,
	          "# Stats\r\n"
	          "total_connections_received:%llu\r\n"
	          "total_commands_processed:%llu\r\n"
	          "total_net_input_bytes:%llu\r\n"
	          "total_net_output_bytes:%llu\r\n"
	          "rejected_connections:%llu\r\n"
	          "expired_keys:%llu\r\n"
	          "keyspace_hits:%llu\r\n"
	          "keyspace_misses:%llu\r\n"
	          "trove_writes:%llu\r\n"
	          "trove_write_groups:%llu\r\n"
	          "trove_syncs:%llu\r\n"
	          "trove_last_version:%llu\r\n"
	          "trove_write_stalls:%llu\r\n"
	          "trove_write_stall_us:%llu\r\n"
	          "trove_turn_batches:%llu\r\n"
	          "trove_turn_batch_retries:%llu\r\n"
	          "trove_turn_batch_replays:%llu\r\n",
	          (unsigned long long)atomic_load(&st->connections_received),
	          (unsigned long long)atomic_load(&st->commands_processed),
	          (unsigned long long)atomic_load(&st->net_input_bytes),
	          (unsigned long long)atomic_load(&st->net_output_bytes),
	          (unsigned long long)atomic_load(&st->rejected_connections),
	          (unsigned long long)es.expired_reaped,
	          (unsigned long long)atomic_load(&st->keyspace_hits),
	          (unsigned long long)atomic_load(&st->keyspace_misses),
	          (unsigned long long)es.writes, (unsigned long long)es.write_groups,
	          (unsigned long long)es.syncs, (unsigned long long)es.last_version,
	          (unsigned long long)es.stalls, (unsigned long long)es.stall_us,
	          (unsigned long long)atomic_load(&st->turn_batches),
	          (unsigned long long)atomic_load(&st->turn_retries),
	          (unsigned long long)atomic_load(&st->turn_replays));
}

static void info_keyspace(resp_client *c, sbuf *b)
{
	uint64_t keys[RESP_DBS], expires[RESP_DBS];
	sb_printf(b, "# Keyspace\r\n");
	if (rkey_count_all(c, keys, expires))
		return;
	for (int i = 0; i < RESP_DBS; i++)
		if (keys[i])
			sb_printf(b, "db%d:keys=%llu,expires=%llu,avg_ttl=0\r\n", i,
			          (unsigned long long)keys[i], (unsigned long long)expires[i]);
}

void cmd_info(resp_client *c, int argc, char **argv, size_t *lens)
{
	/* "default" (and no argument) is every section but commandstats, as
	 * in Redis; "all" and "everything" are all of them. */
	static const struct {
		const char *name;
		void (*fn)(resp_client *, sbuf *);
		int in_default;
	} sections[] = {
		{ "server", info_server, 1 },       { "clients", info_clients, 1 },
		{ "memory", info_memory, 1 },       { "persistence", info_persistence, 1 },
		{ "stats", info_stats, 1 },         { "commandstats", info_commandstats, 0 },
		{ "keyspace", info_keyspace, 1 },
	};
	enum { NSEC = sizeof sections / sizeof sections[0] };
	int want[NSEC] = { 0 };
	int all = 0, deflt = argc == 1;
	for (int i = 1; i < argc; i++) {
		if (arg_is(argv[i], lens[i], "all") || arg_is(argv[i], lens[i], "everything"))
			all = 1;
		if (arg_is(argv[i], lens[i], "default"))
			deflt = 1;
		for (int s = 0; s < NSEC; s++)
			if (arg_is(argv[i], lens[i], sections[s].name))
				want[s] = 1;
	}
	sbuf b = { 0 };
	for (int s = 0; s < NSEC; s++) {
		if (!all && !want[s] && !(deflt && sections[s].in_default))
			continue;
		if (b.n)
			sb_printf(&b, "\r\n");
		sections[s].fn(c, &b);
	}
	add_verbatim(c, b.p ? b.p : "", b.n, "txt");
	free(b.p);
}
