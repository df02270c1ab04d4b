/*
 * t_admin.c - administration and introspection: CLIENT LIST KILL INFO
 * NO-EVICT NO-TOUCH, CONFIG GET SET RESETSTAT, SAVE BGSAVE LASTSAVE,
 * SHUTDOWN, DEBUG SLEEP and RESET.
 *
 * These speak Redis's words over the core's facilities: the connections of
 * every worker (srv_server_foreach_conn, srv_server_kill), the options
 * (srv_config_get, srv_config_set_runtime), checkpoints (srv_server_save)
 * and the shutdown path SIGTERM takes.  Nothing here reads or writes keys,
 * and nothing here touches another worker's connection except through
 * those calls, which take the locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "resp.h"

/* ---- CLIENT LIST, INFO, KILL ------------------------------------------------------ */

/* One CLIENT LIST line, as Redis 7.0 prints it.  rc is the connection's
 * front-end state: its name is read under the worker's lock (held by the
 * caller), the rest from the published copies. */
static void format_client(const srv_conn_info *ci, const resp_client *rc, char *buf, size_t len)
{
	const char *cmd = atomic_load_explicit(&rc->pub_cmd, memory_order_relaxed);
	int multi = atomic_load_explicit(&rc->pub_multi, memory_order_relaxed);
	snprintf(buf, len,
	         "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=%d sub=0 "
	         "psub=0 ssub=0 multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 rbs=%zu "
	         "rbp=0 obl=0 oll=0 omem=%zu tot-mem=%zu events=r cmd=%s user=%s redir=-1 resp=%d",
	         (unsigned long long)ci->id, ci->addr, ci->laddr, ci->fd, rc->name ? rc->name : "",
	         (long long)ci->age_s, (long long)ci->idle_s, multi ? "x" : "N",
	         atomic_load_explicit(&rc->pub_db, memory_order_relaxed), multi ? 0 : -1, ci->qbuf,
	         ci->qbuf_free, ci->qbuf + ci->qbuf_free, ci->omem,
	         ci->qbuf + ci->qbuf_free + ci->omem + sizeof(resp_client), cmd ? cmd : "NULL",
	         ci->user, atomic_load_explicit(&rc->pub_proto, memory_order_relaxed));
}

void resp_client_line(resp_client *c, char *buf, size_t len)
{
	srv_conn_info ci;
	srv_conn_get_info(c->conn, &ci);
	format_client(&ci, c, buf, len);
}

typedef struct sbuf {
	char *p;
	size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s)
{
	size_t n = strlen(s);
	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 4096;
		while (nc < b->n + n + 1)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (!np)
			return;
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n + 1);
	b->n += n;
}

typedef struct list_filter {
	sbuf out;
	const uint64_t *ids; /* CLIENT LIST ID ...; NULL: all */
	int nids;
	int none;            /* TYPE other than normal: nobody */
} list_filter;

static void list_one(void *arg, const srv_conn_info *ci)
{
	list_filter *f = arg;
	if (f->none)
		return;
	if (f->ids) {
		int hit = 0;
		for (int i = 0; i < f->nids && !hit; i++)
			hit = f->ids[i] == ci->id;
		if (!hit)
			return;
	}
	char line[1024];
	format_client(ci, ci->fe_state, line, sizeof line);
	sb_add(&f->out, line);
	sb_add(&f->out, "\n");
}

/* Parses a client TYPE; 1 normal, 0 another known type, -1 unknown. */
static int client_type(const char *t, size_t n)
{
	if (arg_is(t, n, "normal"))
		return 1;
	if (arg_is(t, n, "master") || arg_is(t, n, "replica") || arg_is(t, n, "slave") ||
	    arg_is(t, n, "pubsub"))
		return 0;
	return -1;
}

static void client_list(resp_client *c, int argc, char **argv, size_t *lens)
{
	list_filter f = { 0 };
	uint64_t *ids = NULL;
	if (argc == 4 && arg_is(argv[2], lens[2], "type")) {
		int t = client_type(argv[3], lens[3]);
		if (t < 0) {
			add_errorf(c, "ERR Unknown client type '%.128s'", argv[3]);
			return;
		}
		f.none = !t;
	} else if (argc >= 4 && arg_is(argv[2], lens[2], "id")) {
		ids = calloc((size_t)argc, sizeof *ids);
		if (!ids) {
			add_error(c, "ERR out of memory");
			return;
		}
		for (int j = 3; j < argc; j++) {
			long long id;
			if (srv_str2ll(argv[j], lens[j], &id) || id <= 0) {
				free(ids);
				add_error(c, "ERR Invalid client ID");
				return;
			}
			ids[f.nids++] = (uint64_t)id;
		}
		f.ids = ids;
	} else if (argc != 2) {
		add_error(c, ERR_SYNTAX);
		return;
	}
	srv_server_foreach_conn(c->srv, c->conn, list_one, &f);
	free(ids);
	add_verbatim(c, f.out.p ? f.out.p : "", f.out.n, "txt");
	free(f.out.p);
}

/* What CLIENT KILL's filters ask for. */
typedef struct kill_filter {
	long long id;      /* 0: any */
	const char *addr, *laddr, *user;
	int type;          /* 1 normal (everyone), 0 another type (no one), -1 any */
	int skipme;
} kill_filter;

static int kill_match(void *arg, const srv_conn_info *ci)
{
	const kill_filter *f = arg;
	if (f->skipme && ci->self)
		return 0;
	if (f->id && (uint64_t)f->id != ci->id)
		return 0;
	if (f->addr && strcmp(f->addr, ci->addr))
		return 0;
	if (f->laddr && strcmp(f->laddr, ci->laddr))
		return 0;
	if (f->user && strcmp(f->user, ci->user))
		return 0;
	return f->type != 0;
}

static void client_kill(resp_client *c, int argc, char **argv, size_t *lens)
{
	kill_filter f = { 0, NULL, NULL, NULL, -1, 1 };
	if (argc == 3) { /* the old form: CLIENT KILL ip:port */
		f.addr = argv[2];
		f.skipme = 0;
		if (srv_server_kill(c->srv, c->conn, kill_match, &f, "CLIENT KILL") == 0)
			add_error(c, "ERR No such client");
		else
			add_ok(c);
		return;
	}
	if (argc % 2) {
		add_error(c, ERR_SYNTAX);
		return;
	}
	for (int j = 2; j < argc; j += 2) {
		const char *o = argv[j], *v = argv[j + 1];
		size_t ol = lens[j], vl = lens[j + 1];
		if (arg_is(o, ol, "id")) {
			if (srv_str2ll(v, vl, &f.id) || f.id <= 0) {
				add_error(c, "ERR client-id should be greater than 0");
				return;
			}
		} else if (arg_is(o, ol, "type")) {
			f.type = client_type(v, vl);
			if (f.type < 0) {
				add_errorf(c, "ERR Unknown client type '%.128s'", v);
				return;
			}
		} else if (arg_is(o, ol, "addr")) {
			f.addr = v;
		} else if (arg_is(o, ol, "laddr")) {
			f.laddr = v;
		} else if (arg_is(o, ol, "user")) {
			srv_user *u = srv_acl_get(srv_server_acl(c->srv), v, vl);
			if (!u) {
				add_errorf(c, "ERR No such user '%.128s'", v);
				return;
			}
			srv_user_unref(u);
			f.user = v;
		} else if (arg_is(o, ol, "skipme")) {
			if (arg_is(v, vl, "yes"))
				f.skipme = 1;
			else if (arg_is(v, vl, "no"))
				f.skipme = 0;
			else {
				add_error(c, ERR_SYNTAX);
				return;
			}
		} else {
			add_error(c, ERR_SYNTAX);
			return;
		}
	}
	add_int(c, (long long)srv_server_kill(c->srv, c->conn, kill_match, &f, "CLIENT KILL"));
}

int client_admin(resp_client *c, int argc, char **argv, size_t *lens)
{
	const char *s = argv[1];
	size_t n = lens[1];
	if (arg_is(s, n, "list")) {
		client_list(c, argc, argv, lens);
	} else if (arg_is(s, n, "kill")) {
		client_kill(c, argc, argv, lens);
	} else if (arg_is(s, n, "info")) {
		char line[1024];
		resp_client_line(c, line, sizeof line - 1);
		strcat(line, "\n");
		add_verbatim(c, line, strlen(line), "txt");
	} else if (arg_is(s, n, "no-evict") || arg_is(s, n, "no-touch")) {
		/* Trove never evicts keys and keeps no LRU clock: nothing to change. */
		if (arg_is(argv[2], lens[2], "on") || arg_is(argv[2], lens[2], "off"))
			add_ok(c);
		else
			add_error(c, ERR_SYNTAX);
	} else {
		return -1;
	}
	return 0;
}

/* ---- CONFIG ---------------------------------------------------------------------------- */

typedef struct config_pairs {
	const char **names;
	char **values;
	int n, cap;
} config_pairs;

static void collect_pair(void *arg, const char *name, const char *value)
{
	config_pairs *p = arg;
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->names[i], name))
			return; /* matched by an earlier pattern too */
	if (p->n == p->cap) {
		int nc = p->cap ? p->cap * 2 : 16;
		const char **nn = realloc(p->names, (size_t)nc * sizeof *nn);
		if (nn)
			p->names = nn;
		char **nv = nn ? realloc(p->values, (size_t)nc * sizeof *nv) : NULL;
		if (!nv)
			return;
		p->values = nv;
		p->cap = nc;
	}
	char *v = strdup(value);
	if (!v)
		return;
	p->names[p->n] = name;
	p->values[p->n++] = v;
}

static void config_get(resp_client *c, int argc, char **argv, size_t *lens)
{
	config_pairs p = { 0 };
	srv_server_config_lock(c->srv);
	for (int j = 2; j < argc; j++)
		srv_config_get(srv_server_config(c->srv), argv[j], lens[j], collect_pair, &p);
	srv_server_config_unlock(c->srv);
	add_map(c, p.n);
	for (int i = 0; i < p.n; i++) {
		add_bulk_cstr(c, p.names[i]);
		add_bulk_cstr(c, p.values[i]);
		free(p.values[i]);
	}
	free(p.names);
	free(p.values);
}

/* The default user follows requirepass, as Redis's ACLUpdateDefaultUserPassword
 * does. */
static int apply_requirepass(resp_client *c, const char *pw, size_t len)
{
	char *rules[2] = { "resetpass", NULL };
	size_t lens[2] = { 9, 0 };
	char *gt = NULL;
	if (len) {
		gt = malloc(len + 2);
		if (!gt)
			return -1;
		gt[0] = '>';
		memcpy(gt + 1, pw, len);
		gt[len + 1] = 0;
		rules[1] = gt;
		lens[1] = len + 1;
	} else {
		rules[1] = "nopass";
		lens[1] = 6;
	}
	char err[256];
	int rc = srv_acl_setuser(srv_server_acl(c->srv), "default", 7, 2, rules, lens, err,
	                         sizeof err);
	if (gt) {
		memset(gt, 0, len + 2);
		free(gt);
	}
	return rc;
}

static void config_set(resp_client *c, int argc, char **argv, size_t *lens)
{
	if ((argc - 2) % 2) {
		add_error(c, "ERR wrong number of arguments for 'config|set' command");
		return;
	}
	srv_config *cfg = srv_server_config_mut(c->srv);
	char err[256];
	srv_server_config_lock(c->srv);
	/* All or nothing: check every pair first. */
	for (int j = 2; j < argc; j += 2) {
		const char *canon = srv_config_canonical(argv[j]);
		for (int k = 2; canon && k < j; k += 2) {
			if (srv_config_canonical(argv[k]) == canon) {
				srv_server_config_unlock(c->srv);
				add_errorf(c,
				           "ERR CONFIG SET failed (possibly related to argument '%.128s') - "
				           "duplicate parameter",
				           argv[j]);
				return;
			}
		}
		int rc = srv_config_set_runtime(cfg, argv[j], argv[j + 1], 1, err, sizeof err);
		if (rc == -2) {
			srv_server_config_unlock(c->srv);
			add_errorf(c, "ERR Unknown option or number of arguments for CONFIG SET - '%.128s'",
			           argv[j]);
			return;
		}
		if (rc) {
			srv_server_config_unlock(c->srv);
			add_errorf(c, "ERR CONFIG SET failed (possibly related to argument '%.128s') - %s",
			           argv[j], err);
			return;
		}
	}
	int failed = 0;
	for (int j = 2; j < argc; j += 2) {
		if (srv_config_set_runtime(cfg, argv[j], argv[j + 1], 0, err, sizeof err))
			failed = 1;
		else if (!strcmp(srv_config_canonical(argv[j]), "requirepass") &&
		         apply_requirepass(c, argv[j + 1], lens[j + 1]))
			failed = 1;
		else
			srv_log(SRV_LL_NOTICE, "CONFIG SET %s%s%s", srv_config_canonical(argv[j]),
			        strcmp(srv_config_canonical(argv[j]), "requirepass") ? " " : "",
			        strcmp(srv_config_canonical(argv[j]), "requirepass") ? argv[j + 1] : "");
	}
	srv_server_config_unlock(c->srv);
	if (failed)
		add_error(c, "ERR CONFIG SET failed: out of memory");
	else
		add_ok(c);
}

void cmd_config(resp_client *c, int argc, char **argv, size_t *lens)
{
	const char *s = argv[1];
	size_t n = lens[1];
	if (arg_is(s, n, "get")) {
		config_get(c, argc, argv, lens);
	} else if (arg_is(s, n, "set")) {
		config_set(c, argc, argv, lens);
	} else if (arg_is(s, n, "resetstat")) {
		srv_server_reset_stats(c->srv);
		add_ok(c);
	} else {
		static const char *help[] = {
			"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET <pattern>",
			"    Return parameters matching the glob-like <pattern> and their values.",
			"SET <directive> <value>",
			"    Set the configuration <directive> to <value>.",
			"RESETSTAT",
			"    Reset statistics reported by the INFO command.",
			"HELP",
			"    Prints this help.",
		};
		add_array(c, sizeof help / sizeof help[0]);
		for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
			add_simple(c, help[i]);
	}
}

/* ---- SAVE, BGSAVE, LASTSAVE, SHUTDOWN ---------------------------------------------------- */

void cmd_save(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	char path[1024], err[256];
	int rc = srv_server_save(c->srv, 0, 0, path, sizeof path, err, sizeof err);
	if (rc == -2)
		add_error(c, "ERR Background save already in progress");
	else if (rc)
		add_errorf(c, "ERR %s", err);
	else
		add_ok(c);
}

void cmd_bgsave(resp_client *c, int argc, char **argv, size_t *lens)
{
	int schedule = 0;
	if (argc > 2 || (argc == 2 && !(schedule = arg_is(argv[1], lens[1], "schedule")))) {
		add_error(c, ERR_SYNTAX);
		return;
	}
	srv_save_info before;
	srv_server_save_info(c->srv, &before);
	char path[1024], err[256];
	int rc = srv_server_save(c->srv, 1, schedule, path, sizeof path, err, sizeof err);
	if (rc == -2)
		add_error(c, "ERR Background save already in progress");
	else if (rc)
		add_errorf(c, "ERR %s", err);
	else if (before.in_progress)
		add_simple(c, "Background saving scheduled");
	else
		add_simple(c, "Background saving started");
}

void cmd_lastsave(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	srv_save_info si;
	srv_server_save_info(c->srv, &si);
	add_int(c, si.last_save_s);
}

void cmd_shutdown(resp_client *c, int argc, char **argv, size_t *lens)
{
	int save = 0, nosave = 0, abort_ = 0;
	for (int j = 1; j < argc; j++) {
		if (arg_is(argv[j], lens[j], "save"))
			save = 1;
		else if (arg_is(argv[j], lens[j], "nosave"))
			nosave = 1;
		else if (arg_is(argv[j], lens[j], "abort"))
			abort_ = 1;
		else if (!arg_is(argv[j], lens[j], "now") && !arg_is(argv[j], lens[j], "force")) {
			add_error(c, ERR_SYNTAX);
			return;
		}
	}
	if ((save && nosave) || (abort_ && argc > 2)) {
		add_error(c, ERR_SYNTAX);
		return;
	}
	if (abort_) {
		add_error(c, "ERR No shutdown in progress.");
		return;
	}
	if (save) {
		char path[1024], err[256];
		if (srv_server_save(c->srv, 0, 0, path, sizeof path, err, sizeof err)) {
			srv_log(SRV_LL_WARNING, "SHUTDOWN SAVE: the checkpoint failed; not shutting down");
			add_error(c, "ERR Errors trying to SHUTDOWN. Check logs.");
			return;
		}
	}
	/* As in Redis, a successful SHUTDOWN has no reply: the connection
	 * closes with the others while the server stops. */
	srv_conn_close_after_reply(c->conn);
	char why[128];
	snprintf(why, sizeof why, "User requested shutdown (client %llu, %s)",
	         (unsigned long long)srv_conn_id(c->conn), srv_conn_peer(c->conn));
	srv_server_shutdown(c->srv, why);
}

/* ---- DEBUG, RESET --------------------------------------------------------------------------- */

void cmd_debug(resp_client *c, int argc, char **argv, size_t *lens)
{
	int mode = srv_server_config(c->srv)->enable_debug;
	if (mode == SRV_DEBUG_NO || (mode == SRV_DEBUG_LOCAL && !srv_conn_is_local(c->conn))) {
		add_error(c, "ERR DEBUG command not allowed. If the enable-debug-command option is set "
		             "to \"local\", you can run it from a local connection, otherwise you need "
		             "to set this option in the configuration file, and then restart the "
		             "server.");
		return;
	}
	if (arg_is(argv[1], lens[1], "sleep") && argc == 3) {
		/* Like Redis: the whole worker sleeps, with every client it serves. */
		double secs = strtod(argv[2], NULL);
		if (secs > 86400) /* (and inf): a day is plenty, and keeps the cast defined */
			secs = 86400;
		if (secs > 0) {
			struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
			while (nanosleep(&ts, &ts))
				;
		}
		add_ok(c);
	} else if (arg_is(argv[1], lens[1], "help") && argc == 2) {
		static const char *help[] = {
			"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"SLEEP <seconds>",
			"    Stop the worker thread that serves this connection for <seconds>",
			"    (a decimal number may be given).",
			"HELP",
			"    Prints this help.",
		};
		add_array(c, sizeof help / sizeof help[0]);
		for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
			add_simple(c, help[i]);
	} else {
		add_errorf(c,
		           "ERR unknown subcommand or wrong number of arguments for '%.128s'. Try "
		           "DEBUG HELP.",
		           argv[1]);
	}
}

void cmd_reset(resp_client *c, int argc, char **argv, size_t *lens)
{
	(void)argc, (void)argv, (void)lens;
	multi_reset(c);
	c->dbnum = 0;
	c->proto = 2;
	srv_conn_lock(c->conn);
	free(c->name);
	c->name = NULL;
	srv_conn_unlock(c->conn);
	srv_acl *acl = srv_server_acl(c->srv);
	srv_conn_set_user(c->conn, srv_acl_get(acl, "default", 7), srv_acl_default_open(acl));
	add_simple(c, "RESET");
}
