/*
 * commands.c - the RESP command table, the dispatcher that every request
 * goes through (lookup, arity, authentication, in Redis's order and with
 * Redis's exact error words), and the COMMAND command that describes the
 * table to clients such as redis-cli.
 *
 * Adding a command means one line in the table and a procedure in a
 * t_*.c file; the dispatcher checks arity and authentication before the
 * procedure runs, so procedures never repeat those checks.  Nothing here
 * reads or writes keys.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "resp.h"

#define W CMD_WRITE
#define R CMD_READONLY
#define F CMD_FAST
#define N CMD_NOAUTH
#define L (CMD_LOADING | CMD_STALE)
#define M CMD_DENYOOM
#define A CMD_ADMIN
#define C CMD_CONTAINER
#define T CMD_TURN

/* Sorted by name: resp_lookup bisects. */
const resp_cmd resp_commands[] = {
	{ "acl", cmd_acl, -2, C, 0, 0, 0, "@slow", "server", "6.0.0",
	  "A container for Access List Control commands." },
	{ "append", cmd_append, 3, W | M | F | T, 1, 1, 1, "@write @string @fast", "string",
	  "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist." },
	{ "auth", cmd_auth, -2, N | F | L, 0, 0, 0, "@fast @connection", "connection", "1.0.0",
	  "Authenticates the connection." },
	{ "bgsave", cmd_bgsave, -1, A, 0, 0, 0, "@admin @slow @dangerous", "server", "1.0.0",
	  "Writes a checkpoint of the database into a new directory, in the background." },
	{ "client", cmd_client, -2, L | C, 0, 0, 0, "@slow", "connection", "2.4.0",
	  "A container for client connection commands." },
	{ "command", cmd_command, -1, L | C, 0, 0, 0, "@slow @connection", "server", "2.8.13",
	  "Returns detailed information about all commands." },
	{ "config", cmd_config, -2, C, 0, 0, 0, "@slow", "server", "2.0.0",
	  "A container for server configuration commands." },
	{ "copy", cmd_copy, -3, W | M, 1, 2, 1, "@keyspace @write @slow", "generic", "6.2.0",
	  "Copies the value (and expiry) of a key to a new key, in this or another database." },
	{ "dbsize", cmd_dbsize, 1, R, 0, 0, 0, "@keyspace @read", "server", "1.0.0",
	  "Returns the number of keys in the database (counted: O(N))." },
	{ "debug", cmd_debug, -2, A | L, 0, 0, 0, "@admin @slow @dangerous", "server", "1.0.0",
	  "A container for debugging commands (SLEEP)." },
	{ "decr", cmd_decr, 2, W | M | F | T, 1, 1, 1, "@write @string @fast", "string", "1.0.0",
	  "Decrements the integer value of a key by one." },
	{ "decrby", cmd_decrby, 3, W | M | F | T, 1, 1, 1, "@write @string @fast", "string",
	  "1.0.0", "Decrements a number from the integer value of a key." },
	{ "del", cmd_del, -2, W | T, 1, -1, 1, "@keyspace @write @slow", "generic", "1.0.0",
	  "Deletes one or more keys." },
	{ "delex", cmd_delex, -2, W | F, 1, 1, 1, "@write @string @fast", "string", "8.4.0",
	  "Deletes a key if its value equals (IFEQ), differs (IFNE) or its version is (IFVER)." },
	{ "delifeq", cmd_delifeq, 3, W | F, 1, 1, 1, "@write @string @fast", "string", "9.0.0",
	  "Deletes the key if its value equals the given string (Valkey 9)." },
	{ "discard", cmd_discard, 1, F | L, 0, 0, 0, "@fast @transaction", "transactions",
	  "2.0.0", "Discards a transaction." },
	{ "echo", cmd_echo, 2, F | L | T, 0, 0, 0, "@fast @connection", "connection", "1.0.0",
	  "Returns the given string." },
	{ "exec", cmd_exec, 1, L, 0, 0, 0, "@slow @transaction", "transactions", "1.2.0",
	  "Executes all commands in a transaction, atomically, as one durable batch." },
	{ "exists", cmd_exists, -2, R | F | T, 1, -1, 1, "@keyspace @read @fast", "generic",
	  "1.0.0", "Determines whether one or more keys exist." },
	{ "expire", cmd_expire, -3, W | F, 1, 1, 1, "@keyspace @write @fast", "generic", "1.0.0",
	  "Sets the expiration time of a key in seconds." },
	{ "expireat", cmd_expireat, -3, W | F, 1, 1, 1, "@keyspace @write @fast", "generic",
	  "1.2.0", "Sets the expiration time of a key to a Unix timestamp." },
	{ "expiretime", cmd_expiretime, 2, R | F, 1, 1, 1, "@keyspace @read @fast", "generic",
	  "7.0.0", "Returns the expiration time of a key as a Unix timestamp." },
	{ "flushall", cmd_flushall, -1, W, 0, 0, 0, "@keyspace @write @slow @dangerous", "server",
	  "1.0.0", "Removes all keys from all databases (of the Redis face only)." },
	{ "flushdb", cmd_flushdb, -1, W, 0, 0, 0, "@keyspace @write @slow @dangerous", "server",
	  "1.0.0", "Removes all keys from the current database." },
	{ "get", cmd_get, 2, R | F | T, 1, 1, 1, "@read @string @fast", "string", "1.0.0",
	  "Returns the string value of a key." },
	{ "getdel", cmd_getdel, 2, W | F | T, 1, 1, 1, "@write @string @fast", "string", "6.2.0",
	  "Returns the string value of a key after deleting the key." },
	{ "getex", cmd_getex, -2, W | F | T, 1, 1, 1, "@write @string @fast", "string", "6.2.0",
	  "Returns the string value of a key after setting its expiration time." },
	{ "getrange", cmd_getrange, 4, R | T, 1, 1, 1, "@read @string @slow", "string", "2.4.0",
	  "Returns a substring of the string stored at a key." },
	{ "getset", cmd_getset, 3, W | M | F | T, 1, 1, 1, "@write @string @fast", "string",
	  "1.0.0", "Returns the previous string value of a key after setting it to a new value." },
	{ "hello", cmd_hello, -1, N | F | L, 0, 0, 0, "@fast @connection", "connection", "6.0.0",
	  "Handshakes with the server: protocol version, authentication, client name." },
	{ "incr", cmd_incr, 2, W | M | F | T, 1, 1, 1, "@write @string @fast", "string", "1.0.0",
	  "Increments the integer value of a key by one." },
	{ "incrby", cmd_incrby, 3, W | M | F | T, 1, 1, 1, "@write @string @fast", "string",
	  "1.0.0", "Increments the integer value of a key by a number." },
	{ "incrbyfloat", cmd_incrbyfloat, 3, W | M | F | T, 1, 1, 1, "@write @string @fast",
	  "string", "2.6.0", "Increment the floating point value of a key by a number." },
	{ "info", cmd_info, -1, L, 0, 0, 0, "@slow @dangerous", "server", "1.0.0",
	  "Returns information and statistics about the server." },
	{ "keys", cmd_keys, 2, R, 0, 0, 0, "@keyspace @read @slow @dangerous", "generic", "1.0.0",
	  "Returns all key names that match a pattern (in key order)." },
	{ "lastsave", cmd_lastsave, 1, A | F | L, 0, 0, 0, "@admin @fast @dangerous", "server",
	  "1.0.0", "Returns the Unix timestamp of the last successful save." },
	{ "mget", cmd_mget, -2, R | F | T, 1, -1, 1, "@read @string @fast", "string", "1.0.0",
	  "Atomically returns the string values of one or more keys." },
	{ "move", cmd_move, 3, W | F, 1, 1, 1, "@keyspace @write @fast", "generic", "1.0.0",
	  "Moves a key to another database." },
	{ "mset", cmd_mset, -3, W | M | T, 1, -1, 2, "@write @string @slow", "string", "1.0.1",
	  "Atomically creates or modifies the string values of one or more keys." },
	{ "msetnx", cmd_msetnx, -3, W | M | T, 1, -1, 2, "@write @string @slow", "string", "1.0.1",
	  "Atomically sets the values of one or more keys only when no key exists." },
	{ "multi", cmd_multi, 1, F | L, 0, 0, 0, "@fast @transaction", "transactions", "1.2.0",
	  "Starts a transaction." },
	{ "persist", cmd_persist, 2, W | F, 1, 1, 1, "@keyspace @write @fast", "generic", "2.2.0",
	  "Removes the expiration time of a key." },
	{ "pexpire", cmd_pexpire, -3, W | F, 1, 1, 1, "@keyspace @write @fast", "generic",
	  "2.6.0", "Sets the expiration time of a key in milliseconds." },
	{ "pexpireat", cmd_pexpireat, -3, W | F, 1, 1, 1, "@keyspace @write @fast", "generic",
	  "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp." },
	{ "pexpiretime", cmd_pexpiretime, 2, R | F, 1, 1, 1, "@keyspace @read @fast", "generic",
	  "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp." },
	{ "ping", cmd_ping, -1, F | L | T, 0, 0, 0, "@fast @connection", "connection", "1.0.0",
	  "Returns the server's liveliness response." },
	{ "psetex", cmd_psetex, 4, W | M | T, 1, 1, 1, "@write @string @slow", "string", "2.6.0",
	  "Sets both string value and expiration time in milliseconds of a key." },
	{ "pttl", cmd_pttl, 2, R | F, 1, 1, 1, "@keyspace @read @fast", "generic", "2.6.0",
	  "Returns the expiration time in milliseconds of a key." },
	{ "quit", cmd_quit, -1, N | F | L, 0, 0, 0, "@fast @connection", "connection", "1.0.0",
	  "Closes the connection." },
	{ "randomkey", cmd_randomkey, 1, R, 0, 0, 0, "@keyspace @read @slow", "generic", "1.0.0",
	  "Returns a random key name from the database." },
	{ "rename", cmd_rename, 3, W, 1, 2, 1, "@keyspace @write @slow", "generic", "1.0.0",
	  "Renames a key and overwrites the destination." },
	{ "renamenx", cmd_renamenx, 3, W | F, 1, 2, 1, "@keyspace @write @fast", "generic",
	  "1.0.0", "Renames a key only when the target key name doesn't exist." },
	{ "reset", cmd_reset, 1, N | F | L, 0, 0, 0, "@fast @connection", "connection", "6.2.0",
	  "Resets the connection." },
	{ "save", cmd_save, 1, A, 0, 0, 0, "@admin @slow @dangerous", "server", "1.0.0",
	  "Writes a checkpoint of the database into a new directory." },
	{ "scan", cmd_scan, -2, R, 0, 0, 0, "@keyspace @read @slow", "generic", "2.8.0",
	  "Iterates over the key names in the database, in key order (the cursor is the last key)." },
	{ "select", cmd_select, 2, F | L, 0, 0, 0, "@fast @connection", "connection", "1.0.0",
	  "Changes the selected database (0..15)." },
	{ "set", cmd_set, -3, W | M | T, 1, 1, 1, "@write @string @slow", "string", "1.0.0",
	  "Sets the string value of a key, ignoring its type. The key is created if it doesn't "
	  "exist." },
	{ "setex", cmd_setex, 4, W | M | T, 1, 1, 1, "@write @string @slow", "string", "2.0.0",
	  "Sets the string value and expiration time of a key." },
	{ "setnx", cmd_setnx, 3, W | M | F | T, 1, 1, 1, "@write @string @fast", "string", "1.0.0",
	  "Set the string value of a key only when the key doesn't exist." },
	{ "setrange", cmd_setrange, 4, W | M | T, 1, 1, 1, "@write @string @slow", "string",
	  "2.2.0", "Overwrites a part of a string value with another by an offset." },
	{ "shutdown", cmd_shutdown, -1, A | L, 0, 0, 0, "@admin @slow @dangerous", "server",
	  "1.0.0", "Synchronously saves the database(s) to disk and shuts down the server." },
	{ "strlen", cmd_strlen, 2, R | F | T, 1, 1, 1, "@read @string @fast", "string", "2.2.0",
	  "Returns the length of a string value." },
	{ "swapdb", cmd_swapdb, 3, W | F, 0, 0, 0, "@keyspace @write @fast @dangerous", "server",
	  "4.0.0", "Not supported by Trove: databases are key prefixes (explains why)." },
	{ "tgetv", cmd_tgetv, 2, R | F, 1, 1, 1, "@read @string @fast", "trove", "0.1.0",
	  "Returns the value of a key with its version (Trove)." },
	{ "time", cmd_time, 1, F | L, 0, 0, 0, "@fast", "server", "2.6.0",
	  "Returns the server time." },
	{ "touch", cmd_exists, -2, R | F, 1, -1, 1, "@keyspace @read @fast", "generic", "3.2.1",
	  "Returns the number of existing keys among those given (Trove keeps no access times)." },
	{ "trange", cmd_trange, -3, R, 0, 0, 0, "@keyspace @read @slow", "trove", "0.1.0",
	  "Returns keys and values between two keys, in order or reversed, a page at a time (Trove)." },
	{ "tsetv", cmd_tsetv, -4, W | M, 1, 1, 1, "@write @string @slow", "trove", "0.1.0",
	  "Sets a key only if its version is the given one; returns the new version (Trove)." },
	{ "ttl", cmd_ttl, 2, R | F, 1, 1, 1, "@keyspace @read @fast", "generic", "1.0.0",
	  "Returns the expiration time in seconds of a key." },
	{ "type", cmd_type, 2, R | F, 1, 1, 1, "@keyspace @read @fast", "generic", "1.0.0",
	  "Determines the type of value stored at a key." },
	{ "unlink", cmd_del, -2, W | F, 1, -1, 1, "@keyspace @write @fast", "generic", "4.0.0",
	  "Deletes one or more keys (the same as DEL in Trove)." },
	{ "unwatch", cmd_unwatch, 1, F | L, 0, 0, 0, "@fast @transaction", "transactions",
	  "2.2.0", "Forgets about all watched keys." },
	{ "watch", cmd_watch, -2, F | L, 1, -1, 1, "@fast @transaction", "transactions", "2.2.0",
	  "Monitors changes to keys to determine the execution of a transaction." },
};

const size_t resp_ncommands = sizeof resp_commands / sizeof resp_commands[0];

const resp_cmd *resp_lookup(const char *name, size_t len)
{
	char low[32];
	if (len == 0 || len >= sizeof low)
		return NULL;
	for (size_t i = 0; i < len; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[len] = 0;
	size_t lo = 0, hi = resp_ncommands;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = strcmp(low, resp_commands[mid].name);
		if (cmp == 0)
			return &resp_commands[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

int arg_is(const char *arg, size_t len, const char *opt)
{
	return strlen(opt) == len && !strncasecmp(arg, opt, len);
}

int arg_ll(resp_client *c, const char *arg, size_t len, long long *v, const char *msg)
{
	if (srv_str2ll(arg, len, v) == 0)
		return 0;
	add_error(c, msg ? msg : ERR_NOT_INT);
	return -1;
}

/* Appends "'arg' " for each argument while the list is under 128 bytes,
 * each cut to what is left, as Redis 7 spells its unknown-command error. */
static void unknown_command(resp_client *c, int argc, char **argv, size_t *lens)
{
	char args[160];
	size_t n = 0;
	for (int i = 1; i < argc && n < 128; i++) {
		size_t take = lens[i];
		if (take > 128 - n)
			take = 128 - n;
		const char *nul = memchr(argv[i], 0, take); /* %s stops at a NUL */
		if (nul)
			take = (size_t)(nul - argv[i]);
		args[n++] = '\'';
		memcpy(args + n, argv[i], take);
		n += take;
		args[n++] = '\'';
		args[n++] = ' ';
	}
	args[n] = 0;
	add_errorf(c, "ERR unknown command '%.128s', with args beginning with: %s", argv[0], args);
}

/* The subcommand a request of a container names (NULL for none, as in a
 * bare COMMAND). */
static const resp_subcmd *request_sub(const resp_cmd *cmd, int argc, char **argv, size_t *lens)
{
	if (!(cmd->flags & CMD_CONTAINER) || argc < 2)
		return NULL;
	return resp_lookup_sub(cmd, argv[1], lens[1]);
}

/* Keeps the copies CLIENT LIST reads from other workers current. */
static void publish(resp_client *c, const char *name)
{
	atomic_store_explicit(&c->pub_cmd, name, memory_order_relaxed);
	atomic_store_explicit(&c->pub_db, c->dbnum, memory_order_relaxed);
	atomic_store_explicit(&c->pub_proto, c->proto, memory_order_relaxed);
	atomic_store_explicit(&c->pub_multi, multi_active(c), memory_order_relaxed);
}

/* A request refused before it ran: counted, and inside MULTI it makes
 * EXEC fail. */
static void refused(resp_client *c, const resp_cmd *cmd, const resp_subcmd *sub)
{
	srv_conn_count_command(c->conn, resp_cmd_id(cmd, sub), 0, 0, 1);
	multi_reject(c);
	publish(c, sub ? sub->name : cmd->name);
}

/* resp_lookup, trying first the connection's last command: pipelines
 * and benchmarks repeat one. */
static const resp_cmd *lookup_again(resp_client *c, const char *name, size_t len)
{
	const resp_cmd *cmd = c->last_cmd;
	if (cmd && strlen(cmd->name) == len && !strncasecmp(name, cmd->name, len))
		return cmd;
	cmd = resp_lookup(name, len);
	if (cmd)
		c->last_cmd = cmd;
	return cmd;
}

void resp_dispatch(resp_client *c, int argc, char **argv, size_t *lens)
{
	const resp_cmd *cmd = lookup_again(c, argv[0], lens[0]);
	if (!cmd) {
		unknown_command(c, argc, argv, lens);
		multi_reject(c);
		return;
	}
	if ((cmd->arity > 0 && argc != cmd->arity) || argc < -cmd->arity) {
		add_errorf(c, "ERR wrong number of arguments for '%s' command", cmd->name);
		refused(c, cmd, NULL);
		return;
	}
	const resp_subcmd *sub = request_sub(cmd, argc, argv, lens);
	if ((cmd->flags & CMD_CONTAINER) && argc >= 2) {
		if (!sub) {
			char up[32];
			size_t i;
			for (i = 0; cmd->name[i] && i < sizeof up - 1; i++)
				up[i] = (char)(cmd->name[i] & ~0x20);
			up[i] = 0;
			add_errorf(c, "ERR unknown subcommand '%.128s'. Try %s HELP.", argv[1], up);
			refused(c, cmd, NULL);
			return;
		}
		if ((sub->arity > 0 && argc != sub->arity) || argc < -sub->arity) {
			add_errorf(c, "ERR wrong number of arguments for '%s' command", sub->name);
			refused(c, cmd, sub);
			return;
		}
	}
	if (!srv_conn_authenticated(c->conn) && !(cmd->flags & CMD_NOAUTH)) {
		add_error(c, ERR_NOAUTH);
		refused(c, cmd, sub);
		return;
	}
	if (resp_acl_check(c, cmd, sub, argc, argv, lens, 0)) {
		refused(c, cmd, sub);
		return;
	}
	if (multi_queue(c, cmd, argc, argv, lens)) {
		publish(c, sub ? sub->name : cmd->name);
		return;
	}
	resp_call(c, cmd, argc, argv, lens);
}

void resp_call(resp_client *c, const resp_cmd *cmd, int argc, char **argv, size_t *lens)
{
	const resp_subcmd *sub = request_sub(cmd, argc, argv, lens);
	/* Inside EXEC the rules may have changed since the command was
	 * queued: Redis checks again, and so do we. */
	if (c->txn && resp_acl_check(c, cmd, sub, argc, argv, lens, 1))
		return;
	atomic_fetch_add_explicit(&srv_server_stats(c->srv)->commands_processed, 1,
	                          memory_order_relaxed);
	unsigned long long errors = c->errors;
	atomic_store_explicit(&c->pub_cmd, sub ? sub->name : cmd->name, memory_order_relaxed);
	int batched = !c->txn && resp_turn_join(c, cmd, argc, argv, lens);
	int64_t t0 = srv_now_us();
	cmd->proc(c, argc, argv, lens);
	int64_t t1 = srv_now_us();
	if (batched)
		resp_turn_leave(c);
	srv_conn_count_command(c->conn, resp_cmd_id(cmd, sub), (uint64_t)(t1 > t0 ? t1 - t0 : 0),
	                       c->errors != errors, 0);
	if (cmd->flags & (CMD_WRITE | CMD_READONLY))
		srv_conn_used_db(c->conn); /* its reply waits for the turn's sync */
	publish(c, sub ? sub->name : cmd->name);
}

/* ---- COMMAND -------------------------------------------------------------------- */

static void add_words(resp_client *c, const char *words, int as_set)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", words);
	int n = 0;
	for (char *p = strtok(buf, " "); p; p = strtok(NULL, " "))
		n++;
	if (as_set)
		add_set(c, n);
	else
		add_array(c, n);
	snprintf(buf, sizeof buf, "%s", words);
	for (char *p = strtok(buf, " "); p; p = strtok(NULL, " "))
		add_simple(c, p);
}

static void add_flags(resp_client *c, unsigned f)
{
	char flags[128] = "";
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ CMD_WRITE, "write" },     { CMD_READONLY, "readonly" }, { CMD_DENYOOM, "denyoom" },
		{ CMD_ADMIN, "admin" },     { CMD_NOAUTH, "no_auth" },    { CMD_LOADING, "loading" },
		{ CMD_STALE, "stale" },     { CMD_FAST, "fast" },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (f & names[i].bit) {
			strcat(flags, names[i].name);
			strcat(flags, " ");
		}
	}
	add_words(c, flags, 1);
}

static void add_subcommand_info(resp_client *c, const resp_subcmd *sub)
{
	add_array(c, 10);
	add_bulk_cstr(c, sub->name);
	add_int(c, sub->arity);
	add_flags(c, sub->flags);
	add_int(c, 0);
	add_int(c, 0);
	add_int(c, 0);
	add_words(c, sub->acl, 1);
	add_array(c, 0); /* tips */
	add_array(c, 0); /* key specs */
	add_array(c, 0); /* subcommands */
}

/* One entry of COMMAND / COMMAND INFO, as Redis 7 shapes it: name, arity,
 * flags, first key, last key, step, ACL categories, tips, key specs,
 * subcommands. */
static void add_command_info(resp_client *c, const resp_cmd *cmd)
{
	add_array(c, 10);
	add_bulk_cstr(c, cmd->name);
	add_int(c, cmd->arity);
	add_flags(c, cmd->flags);
	add_int(c, cmd->first_key);
	add_int(c, cmd->last_key);
	add_int(c, cmd->step);
	add_words(c, cmd->acl, 1);
	add_array(c, 0); /* tips */
	add_array(c, 0); /* key specs */
	const resp_subcmd *subs;
	size_t n = resp_subs_of(cmd, &subs);
	add_array(c, (long long)n);
	for (size_t i = 0; i < n; i++)
		add_subcommand_info(c, &subs[i]);
}

/* The docs map of a command or subcommand: summary, since, group, and its
 * arguments when known (redis-cli builds its hints from them). */
static void add_docs_map(resp_client *c, const char *name, const char *summary,
                         const char *since, const char *group, const resp_cmd *container)
{
	const char *syntax = resp_cmd_syntax(name);
	const resp_subcmd *subs = NULL;
	size_t nsubs = container ? resp_subs_of(container, &subs) : 0;
	add_map(c, 3 + (syntax != NULL) + (nsubs > 0));
	add_bulk_cstr(c, "summary");
	add_bulk_cstr(c, summary);
	add_bulk_cstr(c, "since");
	add_bulk_cstr(c, since);
	add_bulk_cstr(c, "group");
	add_bulk_cstr(c, group);
	if (syntax) {
		add_bulk_cstr(c, "arguments");
		resp_add_doc_args(c, syntax);
	}
	if (nsubs) {
		add_bulk_cstr(c, "subcommands");
		add_map(c, (long long)nsubs);
		for (size_t i = 0; i < nsubs; i++) {
			add_bulk_cstr(c, subs[i].name);
			add_docs_map(c, subs[i].name, subs[i].summary, subs[i].since, group, NULL);
		}
	}
}

static void add_command_docs(resp_client *c, const resp_cmd *cmd)
{
	add_bulk_cstr(c, cmd->name);
	add_docs_map(c, cmd->name, cmd->summary, cmd->since, cmd->group, cmd);
}

void cmd_command(resp_client *c, int argc, char **argv, size_t *lens)
{
	if (argc == 1) {
		add_array(c, (long long)resp_ncommands);
		for (size_t i = 0; i < resp_ncommands; i++)
			add_command_info(c, &resp_commands[i]);
		return;
	}
	const char *sub = argv[1];
	size_t sl = lens[1];
	if (arg_is(sub, sl, "count") && argc == 2) {
		add_int(c, (long long)resp_ncommands);
	} else if (arg_is(sub, sl, "info")) {
		if (argc == 2) {
			add_array(c, (long long)resp_ncommands);
			for (size_t i = 0; i < resp_ncommands; i++)
				add_command_info(c, &resp_commands[i]);
			return;
		}
		add_array(c, argc - 2);
		for (int i = 2; i < argc; i++) {
			const resp_cmd *cmd = resp_lookup(argv[i], lens[i]);
			if (cmd)
				add_command_info(c, cmd);
			else
				add_null_array(c);
		}
	} else if (arg_is(sub, sl, "docs")) {
		if (argc == 2) {
			add_map(c, (long long)resp_ncommands);
			for (size_t i = 0; i < resp_ncommands; i++)
				add_command_docs(c, &resp_commands[i]);
			return;
		}
		int found = 0;
		for (int i = 2; i < argc; i++)
			found += resp_lookup(argv[i], lens[i]) != NULL;
		add_map(c, found);
		for (int i = 2; i < argc; i++) {
			const resp_cmd *cmd = resp_lookup(argv[i], lens[i]);
			if (cmd)
				add_command_docs(c, cmd);
		}
	} else if (arg_is(sub, sl, "list") && argc == 2) {
		add_array(c, (long long)resp_ncommands);
		for (size_t i = 0; i < resp_ncommands; i++)
			add_bulk_cstr(c, resp_commands[i].name);
	} else if (arg_is(sub, sl, "help") && argc == 2) {
		static const char *help[] = {
			"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"(no subcommand)",
			"    Return details about all commands.",
			"COUNT",
			"    Return the total number of commands in this server.",
			"LIST",
			"    Return a list of all commands in this server.",
			"INFO [<command-name> ...]",
			"    Return details about multiple commands.",
			"DOCS [<command-name> ...]",
			"    Return documentation details about multiple commands.",
			"HELP",
			"    Print this help.",
		};
		add_array(c, sizeof help / sizeof help[0]);
		for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
			add_simple(c, help[i]);
	} else if (arg_is(sub, sl, "count") || arg_is(sub, sl, "list") || arg_is(sub, sl, "help")) {
		char low[16];
		size_t i;
		for (i = 0; i < sl && i < sizeof low - 1; i++)
			low[i] = (char)tolower((unsigned char)sub[i]);
		low[i] = 0;
		add_errorf(c, "ERR wrong number of arguments for 'command|%s' command", low);
	} else {
		add_errorf(c, "ERR unknown subcommand '%.128s'. Try COMMAND HELP.", sub);
	}
}
