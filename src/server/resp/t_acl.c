/*
 * t_acl.c - access control for the Redis face: the permission check every
 * request goes through, and the ACL command (SETUSER GETUSER DELUSER LIST
 * USERS WHOAMI CAT SAVE LOAD LOG GENPASS DRYRUN HELP).
 *
 * The users and their rules are the core's (acl.c); this file maps a
 * request onto them.  The command table says which arguments are keys
 * (first, last, step) and whether the command reads or writes; a few
 * commands need more than their flags tell (a write that also returns
 * what it read, like INCR or SET ... GET, needs read access too; COPY
 * reads its source and writes its destination) and are listed in
 * key_need().  So a command added to the table is checked with no code
 * here.  This file never reads or writes keys itself and never sees a
 * password in clear beyond handing it to the core.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

/* ---- The catalog --------------------------------------------------------------------- */

static uint32_t parse_categories(const char *acl, unsigned flags)
{
	uint32_t bits = 0;
	for (const char *p = acl; p && *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n > 1 && p[0] == '@') {
			int i = srv_acl_category(p + 1, n - 1);
			if (i >= 0)
				bits |= 1u << i;
		}
		p += n;
	}
	/* What the flags imply, as Redis adds it. */
	if (flags & CMD_WRITE)
		bits |= 1u << srv_acl_category("write", 5);
	if (flags & CMD_READONLY)
		bits |= 1u << srv_acl_category("read", 4);
	if (flags & CMD_ADMIN)
		bits |= 1u << srv_acl_category("admin", 5) | 1u << srv_acl_category("dangerous", 9);
	if (flags & CMD_FAST)
		bits |= 1u << srv_acl_category("fast", 4);
	if (!(bits & 1u << srv_acl_category("fast", 4)))
		bits |= 1u << srv_acl_category("slow", 4);
	return bits;
}

srv_acl_cmd *resp_catalog(size_t *n)
{
	size_t total = resp_ncommands + resp_nsubcommands;
	srv_acl_cmd *cat = calloc(total, sizeof *cat);
	if (!cat)
		return NULL;
	for (size_t i = 0; i < resp_ncommands; i++) {
		const resp_cmd *cmd = &resp_commands[i];
		cat[i].name = cmd->name;
		cat[i].parent = -1;
		cat[i].categories = parse_categories(cmd->acl, cmd->flags & ~CMD_CONTAINER);
	}
	for (size_t j = 0; j < resp_nsubcommands; j++) {
		const resp_subcmd *sub = &resp_subcommands[j];
		size_t pl = strcspn(sub->name, "|");
		const resp_cmd *parent = resp_lookup(sub->name, pl);
		cat[resp_ncommands + j].name = sub->name;
		cat[resp_ncommands + j].parent = parent ? (int)(parent - resp_commands) : -1;
		cat[resp_ncommands + j].categories = parse_categories(sub->acl, sub->flags);
	}
	*n = total;
	return cat;
}

size_t resp_cmd_id(const resp_cmd *cmd, const resp_subcmd *sub)
{
	if (sub)
		return resp_ncommands + (size_t)(sub - resp_subcommands);
	return (size_t)(cmd - resp_commands);
}

/* ---- The check ------------------------------------------------------------------------- */

static int name_in(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(name, *list))
			return 1;
	return 0;
}

/* The access the keyno-th key of a request needs (SRV_ACL_READ |
 * SRV_ACL_WRITE, or 0 for "any pattern that matches the key"). */
static int key_need(const resp_cmd *cmd, int argc, char **argv, size_t *lens, int keyno)
{
	/* Writes that also hand back (or depend on) the value they read. */
	static const char *const read_write[] = { "incr",   "decr",   "incrby", "decrby",
		                                  "incrbyfloat", "getset", "getdel", "getex",
		                                  "move",   "delifeq", "delex",  NULL };
	/* Commands that only tell whether a key exists, or its type/length. */
	static const char *const any[] = { "exists", "type", "strlen", "touch", NULL };
	const char *n = cmd->name;
	if (name_in(n, read_write))
		return SRV_ACL_READ | SRV_ACL_WRITE;
	if (name_in(n, any))
		return 0;
	if (!strcmp(n, "set")) {
		for (int j = 3; j < argc; j++)
			if (arg_is(argv[j], lens[j], "get"))
				return SRV_ACL_READ | SRV_ACL_WRITE;
		return SRV_ACL_WRITE;
	}
	if (!strcmp(n, "copy"))
		return keyno == 0 ? SRV_ACL_READ : SRV_ACL_WRITE;
	if (!strcmp(n, "rename") || !strcmp(n, "renamenx"))
		return keyno == 0 ? SRV_ACL_READ | SRV_ACL_WRITE : SRV_ACL_WRITE;
	if (cmd->flags & CMD_WRITE)
		return SRV_ACL_WRITE;
	if (cmd->flags & CMD_READONLY)
		return SRV_ACL_READ;
	return 0;
}

int resp_acl_key_ok(resp_client *c, const char *key, size_t klen, int need)
{
	srv_user *u = srv_conn_user(c->conn);
	return u && srv_user_can_key(u, key, klen, need);
}

static void deny(resp_client *c, srv_user *u, const char *reason, const char *object, size_t olen,
                 int in_exec)
{
	char line[1024];
	resp_client_line(c, line, sizeof line);
	srv_acl_log_add(srv_server_acl(c->srv), reason, in_exec || c->txn ? "multi" : "toplevel",
	                object, olen, u ? srv_user_name(u) : "", line);
}

int resp_acl_check(resp_client *c, const resp_cmd *cmd, const resp_subcmd *sub, int argc,
                   char **argv, size_t *lens, int in_exec)
{
	if (cmd->flags & CMD_NOAUTH)
		return 0; /* AUTH, HELLO, QUIT, RESET: anyone may */
	srv_user *u = srv_conn_user(c->conn);
	const char *prefix = in_exec ? "NOPERM ACLs rules changed between the moment the "
	                               "transaction was accumulated and the EXEC call. This "
	                               "command is no longer allowed for the following reason: "
	                             : "NOPERM ";
	const char *full = sub ? sub->name : cmd->name;
	if (!u) { /* the user was deleted: the connection is on its way out */
		srv_conn_close_after_reply(c->conn);
		add_errorf(c, "%sthis user has no permissions to run the '%s' command", prefix, full);
		return -1;
	}
	if (!srv_user_can_run(u, resp_cmd_id(cmd, sub))) {
		deny(c, u, "command", full, strlen(full), in_exec);
		add_errorf(c, "%sthis user has no permissions to run the '%s' command", prefix, full);
		return -1;
	}
	if (cmd->first_key <= 0 || sub || srv_user_all_keys(u))
		return 0;
	int last = cmd->last_key < 0 ? argc + cmd->last_key : cmd->last_key;
	int step = cmd->step > 0 ? cmd->step : 1;
	for (int j = cmd->first_key, keyno = 0; j <= last && j < argc; j += step, keyno++) {
		if (srv_user_can_key(u, argv[j], lens[j], key_need(cmd, argc, argv, lens, keyno)))
			continue;
		deny(c, u, "key", argv[j], lens[j], in_exec);
		add_errorf(c, "%sthis user has no permissions to access one of the keys used as "
		              "arguments",
		           prefix);
		return -1;
	}
	return 0;
}

/* ---- ACL ------------------------------------------------------------------------------- */

#define ERR_NO_ACLFILE                                                                      \
	"ERR This Redis instance is not configured to use an ACL file. You may want to specify " \
	"users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a " \
	"Redis configuration file set) in order to store users in the Redis configuration."

/* Kills the connections of user name (after ACL DELUSER or ACL LOAD). */
static int user_match(void *arg, const srv_conn_info *ci)
{
	return !strcmp(ci->user, (const char *)arg);
}

static void acl_setuser(resp_client *c, int argc, char **argv, size_t *lens)
{
	char err[512];
	if (srv_acl_setuser(srv_server_acl(c->srv), argv[2], lens[2], argc - 3, argv + 3, lens + 3,
	                    err, sizeof err))
		add_errorf(c, "ERR %s", err);
	else
		add_ok(c);
}

static void acl_getuser(resp_client *c, char **argv, size_t *lens)
{
	srv_user *u = srv_acl_get(srv_server_acl(c->srv), argv[2], lens[2]);
	srv_user_info in;
	if (!u) {
		add_null(c);
		return;
	}
	if (srv_user_info_get(u, &in)) {
		srv_user_unref(u);
		add_error(c, "ERR out of memory");
		return;
	}
	srv_user_unref(u);
	add_map(c, 6);
	add_bulk_cstr(c, "flags");
	int nf = 1 + (strchr(in.flags, ' ') != NULL);
	add_array(c, nf);
	char *sp = strchr(in.flags, ' ');
	if (sp) {
		add_bulk(c, in.flags, (size_t)(sp - in.flags));
		add_bulk_cstr(c, sp + 1);
	} else {
		add_bulk_cstr(c, in.flags);
	}
	add_bulk_cstr(c, "passwords");
	size_t np = 0;
	for (const char *p = in.passwords; *p; p += strcspn(p, " "), p += *p == ' ')
		np++;
	add_array(c, (long long)np);
	for (const char *p = in.passwords; *p;) {
		size_t n = strcspn(p, " ");
		add_bulk(c, p, n);
		p += n;
		p += *p == ' ';
	}
	add_bulk_cstr(c, "commands");
	add_bulk_cstr(c, in.commands);
	add_bulk_cstr(c, "keys");
	add_bulk_cstr(c, in.keys);
	add_bulk_cstr(c, "channels");
	add_bulk_cstr(c, in.channels);
	add_bulk_cstr(c, "selectors");
	add_array(c, 0);
	srv_user_info_free(&in);
}

static void acl_deluser(resp_client *c, int argc, char **argv, size_t *lens)
{
	srv_acl *acl = srv_server_acl(c->srv);
	for (int j = 2; j < argc; j++) {
		if (lens[j] == 7 && !memcmp(argv[j], "default", 7)) {
			add_error(c, "ERR The 'default' user cannot be removed");
			return;
		}
	}
	long long n = 0;
	for (int j = 2; j < argc; j++) {
		if (srv_acl_deluser(acl, argv[j], lens[j]) == 1) {
			n++;
			srv_server_kill(c->srv, c->conn, user_match, argv[j], "its ACL user was deleted");
		}
	}
	add_int(c, n);
}

static void acl_list(resp_client *c)
{
	srv_acl *acl = srv_server_acl(c->srv);
	size_t n;
	char **names = srv_acl_names(acl, &n);
	char **lines = calloc(n ? n : 1, sizeof *lines);
	size_t k = 0;
	for (size_t i = 0; lines && i < n; i++) {
		srv_user *u = srv_acl_get(acl, names[i], strlen(names[i]));
		if (u && (lines[k] = srv_user_describe(u)) != NULL)
			k++;
		srv_user_unref(u);
	}
	add_array(c, (long long)k);
	for (size_t i = 0; i < k; i++) {
		add_bulk_cstr(c, lines[i]);
		free(lines[i]);
	}
	free(lines);
	srv_acl_free_names(names, n);
}

static void acl_users(resp_client *c)
{
	size_t n;
	char **names = srv_acl_names(srv_server_acl(c->srv), &n);
	add_array(c, (long long)n);
	for (size_t i = 0; i < n; i++)
		add_bulk_cstr(c, names[i]);
	srv_acl_free_names(names, n);
}

static void acl_cat(resp_client *c, int argc, char **argv, size_t *lens)
{
	if (argc == 2) {
		add_array(c, SRV_ACL_NCATEGORIES);
		for (int i = 0; i < SRV_ACL_NCATEGORIES; i++)
			add_bulk_cstr(c, srv_acl_category_names[i]);
		return;
	}
	if (argc > 3) {
		add_error(c, "ERR wrong number of arguments for 'acl|cat' command");
		return;
	}
	int cat = srv_acl_category(argv[2], lens[2]);
	if (cat < 0) {
		add_errorf(c, "ERR Unknown category '%.128s'", argv[2]);
		return;
	}
	size_t n;
	const srv_acl_cmd *cmds = srv_server_catalog(c->srv, &n);
	long long k = 0;
	for (size_t i = 0; i < n; i++)
		k += (cmds[i].categories >> cat) & 1;
	add_array(c, k);
	for (size_t i = 0; i < n; i++)
		if ((cmds[i].categories >> cat) & 1)
			add_bulk_cstr(c, cmds[i].name);
}

static void acl_save(resp_client *c)
{
	const char *file = srv_server_config(c->srv)->aclfile;
	char err[512];
	if (!file) {
		add_error(c, ERR_NO_ACLFILE);
	} else if (srv_acl_save_file(srv_server_acl(c->srv), file, err, sizeof err)) {
		srv_log(SRV_LL_WARNING, "ACL SAVE: %s", err);
		add_error(c, "ERR There was an error trying to save the ACLs. Please check the server "
		             "logs for more information");
	} else {
		srv_log(SRV_LL_NOTICE, "ACL users saved to %s", file);
		add_ok(c);
	}
}

/* After ACL LOAD: connections whose user no longer exists are closed. */
static int user_gone(void *arg, const srv_conn_info *ci)
{
	srv_user *u = srv_acl_get(arg, ci->user, strlen(ci->user));
	srv_user_unref(u);
	return u == NULL;
}

static void acl_load(resp_client *c)
{
	const srv_config *cfg = srv_server_config(c->srv);
	char err[4096];
	if (!cfg->aclfile) {
		add_error(c, ERR_NO_ACLFILE);
		return;
	}
	srv_server_config_lock(c->srv); /* requirepass is read here */
	int rc = srv_acl_load_file(srv_server_acl(c->srv), cfg->aclfile, cfg->requirepass, err,
	                           sizeof err);
	srv_server_config_unlock(c->srv);
	if (rc) {
		add_errorf(c, "ERR %s", err);
		return;
	}
	srv_log(SRV_LL_NOTICE, "ACL users reloaded from %s", cfg->aclfile);
	srv_server_kill(c->srv, c->conn, user_gone, srv_server_acl(c->srv),
	                "its ACL user is gone after ACL LOAD");
	add_ok(c);
}

static void acl_log(resp_client *c, int argc, char **argv, size_t *lens)
{
	long long count = 10;
	if (argc > 3) {
		add_error(c, "ERR wrong number of arguments for 'acl|log' command");
		return;
	}
	if (argc == 3) {
		if (arg_is(argv[2], lens[2], "reset")) {
			srv_acl_log_reset(srv_server_acl(c->srv));
			add_ok(c);
			return;
		}
		if (srv_str2ll(argv[2], lens[2], &count) || count < 0) {
			add_error(c, "ERR value is out of range, must be positive");
			return;
		}
	}
	srv_acl_log_entry *e;
	size_t n = srv_acl_log_get(srv_server_acl(c->srv), (size_t)count, &e);
	int64_t now = srv_now_ms();
	add_array(c, (long long)n);
	for (size_t i = 0; i < n; i++) {
		char age[32];
		snprintf(age, sizeof age, "%.3f", (double)(now - e[i].created_ms) / 1000.0);
		add_map(c, 7);
		add_bulk_cstr(c, "count");
		add_int(c, (long long)e[i].count);
		add_bulk_cstr(c, "reason");
		add_bulk_cstr(c, e[i].reason);
		add_bulk_cstr(c, "context");
		add_bulk_cstr(c, e[i].context);
		add_bulk_cstr(c, "object");
		add_bulk_cstr(c, e[i].object);
		add_bulk_cstr(c, "username");
		add_bulk_cstr(c, e[i].username);
		add_bulk_cstr(c, "age-seconds");
		add_bulk_cstr(c, age);
		add_bulk_cstr(c, "client-info");
		add_bulk_cstr(c, e[i].client_info);
	}
	srv_acl_log_free(e, n);
}

static void acl_genpass(resp_client *c, int argc, char **argv, size_t *lens)
{
	long long bits = 256;
	if (argc > 3) {
		add_error(c, "ERR wrong number of arguments for 'acl|genpass' command");
		return;
	}
	if (argc == 3 && (srv_str2ll(argv[2], lens[2], &bits) || bits <= 0 || bits > 4096)) {
		add_error(c, "ERR ACL GENPASS argument must be the number of bits for the output "
		             "password, a positive number up to 4096");
		return;
	}
	size_t chars = (size_t)(bits + 3) / 4, nbytes = (chars + 1) / 2;
	unsigned char raw[512];
	char hex[1025];
	if (srv_random_bytes(raw, nbytes)) {
		add_error(c, "ERR no random bytes available");
		return;
	}
	for (size_t i = 0; i < nbytes; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	add_bulk(c, hex, chars);
}

static void acl_dryrun(resp_client *c, int argc, char **argv, size_t *lens)
{
	srv_user *u = srv_acl_get(srv_server_acl(c->srv), argv[2], lens[2]);
	if (!u) {
		add_errorf(c, "ERR User '%.128s' not found", argv[2]);
		return;
	}
	const resp_cmd *cmd = resp_lookup(argv[3], lens[3]);
	if (!cmd) {
		srv_user_unref(u);
		add_errorf(c, "ERR Command '%.128s' not found", argv[3]);
		return;
	}
	int cargc = argc - 3;
	char **cargv = argv + 3;
	size_t *clens = lens + 3;
	if ((cmd->arity > 0 && cargc != cmd->arity) || cargc < -cmd->arity) {
		srv_user_unref(u);
		add_errorf(c, "ERR wrong number of arguments for '%s' command", cmd->name);
		return;
	}
	const resp_subcmd *sub =
	        (cmd->flags & CMD_CONTAINER) && cargc >= 2 ? resp_lookup_sub(cmd, cargv[1], clens[1])
	                                                   : NULL;
	const char *full = sub ? sub->name : cmd->name;
	char msg[512] = "";
	if (!(cmd->flags & CMD_NOAUTH) && !srv_user_can_run(u, resp_cmd_id(cmd, sub))) {
		snprintf(msg, sizeof msg, "This user has no permissions to run the '%s' command", full);
	} else if (!(cmd->flags & CMD_NOAUTH) && cmd->first_key > 0 && !sub) {
		int last = cmd->last_key < 0 ? cargc + cmd->last_key : cmd->last_key;
		int step = cmd->step > 0 ? cmd->step : 1;
		for (int j = cmd->first_key, k = 0; j <= last && j < cargc; j += step, k++) {
			if (!srv_user_can_key(u, cargv[j], clens[j], key_need(cmd, cargc, cargv, clens, k))) {
				snprintf(msg, sizeof msg,
				         "This user has no permissions to access the '%.128s' key", cargv[j]);
				break;
			}
		}
	}
	srv_user_unref(u);
	if (msg[0])
		add_bulk_cstr(c, msg);
	else
		add_ok(c);
}

static void acl_help(resp_client *c)
{
	static const char *help[] = {
		"ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"CAT [<category>]",
		"    List all commands that belong to <category>, or all command categories",
		"    when no category is specified.",
		"DELUSER <username> [<username> ...]",
		"    Delete a list of users.",
		"DRYRUN <username> <command> [<arg> ...]",
		"    Returns whether the user can execute the given command without executing",
		"    the command.",
		"GETUSER <username>",
		"    Get the user's details.",
		"GENPASS [<bits>]",
		"    Generate a secure 256-bit user password. The optional `bits` argument can",
		"    be used to specify a different size.",
		"LIST",
		"    Show users details in config file format.",
		"LOAD",
		"    Reload users from the ACL file.",
		"LOG [<count> | RESET]",
		"    Show the ACL log entries.",
		"SAVE",
		"    Save the current config to the ACL file.",
		"SETUSER <username> <attribute> [<attribute> ...]",
		"    Create or modify a user with the specified attributes.",
		"USERS",
		"    List all the registered usernames.",
		"WHOAMI",
		"    Return the current connection username.",
		"HELP",
		"    Prints this help.",
	};
	add_array(c, sizeof help / sizeof help[0]);
	for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
		add_simple(c, help[i]);
}

/* The dispatcher has checked the subcommand exists and its arity. */
void cmd_acl(resp_client *c, int argc, char **argv, size_t *lens)
{
	const char *s = argv[1];
	size_t n = lens[1];
	if (arg_is(s, n, "setuser"))
		acl_setuser(c, argc, argv, lens);
	else if (arg_is(s, n, "getuser"))
		acl_getuser(c, argv, lens);
	else if (arg_is(s, n, "deluser"))
		acl_deluser(c, argc, argv, lens);
	else if (arg_is(s, n, "list"))
		acl_list(c);
	else if (arg_is(s, n, "users"))
		acl_users(c);
	else if (arg_is(s, n, "whoami")) {
		srv_user *u = srv_conn_user(c->conn);
		add_bulk_cstr(c, u ? srv_user_name(u) : "default");
	} else if (arg_is(s, n, "cat"))
		acl_cat(c, argc, argv, lens);
	else if (arg_is(s, n, "save"))
		acl_save(c);
	else if (arg_is(s, n, "load"))
		acl_load(c);
	else if (arg_is(s, n, "log"))
		acl_log(c, argc, argv, lens);
	else if (arg_is(s, n, "genpass"))
		acl_genpass(c, argc, argv, lens);
	else if (arg_is(s, n, "dryrun"))
		acl_dryrun(c, argc, argv, lens);
	else
		acl_help(c);
}
