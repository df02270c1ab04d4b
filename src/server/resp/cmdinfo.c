/*
 * cmdinfo.c - what the command table does not say: the subcommands of the
 * container commands (CLIENT KILL is "client|kill", with its own arity,
 * flags and ACL categories), and the arguments of every command as
 * Redis's documentation spells them, which COMMAND DOCS turns into the
 * argument trees redis-cli builds its hints from.
 *
 * The argument syntax is written once per command in the notation people
 * read in the docs ("key value [NX|XX] [GET] [EX seconds|PX milliseconds]",
 * "key ..." for a repeated argument) and parsed here on demand, so adding
 * a command's docs is one line.  This file only describes; it never runs
 * a command and never decides a permission (t_acl.c does, from these
 * entries).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

#define F CMD_FAST
#define L (CMD_LOADING | CMD_STALE)
#define A CMD_ADMIN

/* Grouped by container, containers in name order: resp_subs_of relies on
 * it. */
const resp_subcmd resp_subcommands[] = {
	{ "acl|cat", -2, L, "@slow", "6.0.0",
	  "Lists the ACL categories, or the commands inside a category." },
	{ "acl|deluser", -3, A | L, "@admin @slow @dangerous", "6.0.0",
	  "Deletes ACL users, and terminates their connections." },
	{ "acl|dryrun", -4, A | L, "@admin @slow @dangerous", "7.0.0",
	  "Simulates the execution of a command by a user, without executing the command." },
	{ "acl|genpass", -2, L, "@slow", "6.0.0",
	  "Generates a pseudorandom, secure password that can be used to identify ACL users." },
	{ "acl|getuser", 3, A | L, "@admin @slow @dangerous", "6.0.0",
	  "Lists the ACL rules of a user." },
	{ "acl|help", 2, L, "@slow", "6.0.0", "Returns helpful text about the different subcommands." },
	{ "acl|list", 2, A | L, "@admin @slow @dangerous", "6.0.0",
	  "Dumps the effective rules in ACL file format." },
	{ "acl|load", 2, A | L, "@admin @slow @dangerous", "6.0.0",
	  "Reloads the rules from the configured ACL file." },
	{ "acl|log", -2, A | L, "@admin @slow @dangerous", "6.0.0",
	  "Lists recent security events generated due to ACL rules." },
	{ "acl|save", 2, A | L, "@admin @slow @dangerous", "6.0.0",
	  "Saves the effective ACL rules in the configured ACL file." },
	{ "acl|setuser", -3, A | L, "@admin @slow @dangerous", "6.0.0",
	  "Creates and modifies an ACL user and its rules." },
	{ "acl|users", 2, A | L, "@admin @slow @dangerous", "6.0.0", "Lists all ACL users." },
	{ "acl|whoami", 2, L, "@slow", "6.0.0",
	  "Returns the authenticated username of the current connection." },
	{ "client|getname", 2, L, "@slow @connection", "2.6.9", "Returns the name of the connection." },
	{ "client|help", 2, L, "@slow @connection", "5.0.0",
	  "Returns helpful text about the different subcommands." },
	{ "client|id", 2, L, "@slow @connection", "5.0.0",
	  "Returns the unique client ID of the connection." },
	{ "client|info", 2, L, "@slow @connection", "6.2.0",
	  "Returns information about the connection." },
	{ "client|kill", -3, A | L, "@admin @slow @dangerous @connection", "2.4.0",
	  "Terminates open connections." },
	{ "client|list", -2, A | L, "@admin @slow @dangerous @connection", "2.4.0",
	  "Lists open connections." },
	{ "client|no-evict", 3, A | L, "@admin @slow @dangerous @connection", "7.0.0",
	  "Sets the client eviction mode of the connection (a no-op in Trove)." },
	{ "client|no-touch", 3, L, "@slow @connection", "7.2.0",
	  "Controls whether commands sent by the client affect the LRU/LFU of accessed keys (a "
	  "no-op in Trove)." },
	{ "client|setname", 3, L, "@slow @connection", "2.6.9", "Sets the connection name." },
	{ "command|count", 2, L, "@slow @connection", "2.8.13",
	  "Returns a count of commands." },
	{ "command|docs", -2, L, "@slow @connection", "7.0.0",
	  "Returns documentary information about one, multiple or all commands." },
	{ "command|help", 2, L, "@slow @connection", "5.0.0",
	  "Returns helpful text about the different subcommands." },
	{ "command|info", -2, L, "@slow @connection", "2.8.13",
	  "Returns information about one, multiple or all commands." },
	{ "command|list", -2, L, "@slow @connection", "7.0.0", "Returns a list of command names." },
	{ "config|get", -3, A | L, "@admin @slow @dangerous", "2.0.0",
	  "Returns the effective values of configuration parameters." },
	{ "config|help", 2, L, "@slow", "5.0.0",
	  "Returns helpful text about the different subcommands." },
	{ "config|resetstat", 2, A | L, "@admin @slow @dangerous", "2.0.0",
	  "Resets the server's statistics." },
	{ "config|set", -4, A | L, "@admin @slow @dangerous", "2.0.0",
	  "Sets configuration parameters in-flight." },
};

const size_t resp_nsubcommands = sizeof resp_subcommands / sizeof resp_subcommands[0];

size_t resp_subs_of(const resp_cmd *cmd, const resp_subcmd **first)
{
	size_t nl = strlen(cmd->name), n = 0;
	*first = NULL;
	for (size_t i = 0; i < resp_nsubcommands; i++) {
		const char *s = resp_subcommands[i].name;
		if (!strncmp(s, cmd->name, nl) && s[nl] == '|') {
			if (!n)
				*first = &resp_subcommands[i];
			n++;
		}
	}
	return n;
}

const resp_subcmd *resp_lookup_sub(const resp_cmd *cmd, const char *sub, size_t len)
{
	const resp_subcmd *first;
	size_t n = resp_subs_of(cmd, &first);
	size_t nl = strlen(cmd->name);
	for (size_t i = 0; i < n; i++) {
		const char *s = first[i].name + nl + 1;
		if (strlen(s) == len && !strncasecmp(s, sub, len))
			return &first[i];
	}
	return NULL;
}

/* ---- Argument syntax ------------------------------------------------------------------ */

/* Every command's arguments, as Redis's docs write them.  Lowercase words
 * are values (key, pattern and number names get those types), uppercase
 * words are tokens, [..] is optional, a|b is one of, "..." repeats what
 * precedes it. */
static const struct {
	const char *name, *syntax;
} syntaxes[] = {
	{ "acl|cat", "[category]" },
	{ "acl|deluser", "username ..." },
	{ "acl|dryrun", "username command [arg ...]" },
	{ "acl|genpass", "[bits]" },
	{ "acl|getuser", "username" },
	{ "acl|log", "[count|RESET]" },
	{ "acl|setuser", "username [rule ...]" },
	{ "append", "key value" },
	{ "auth", "[username] password" },
	{ "bgsave", "[SCHEDULE]" },
	{ "client|kill",
	  "[ip:port|ID client-id|TYPE NORMAL|USER username|ADDR ip:port|LADDR ip:port|SKIPME "
	  "YES|SKIPME NO ...]" },
	{ "client|list", "[TYPE NORMAL] [ID client-id ...]" },
	{ "client|no-evict", "ON|OFF" },
	{ "client|no-touch", "ON|OFF" },
	{ "client|setname", "connection-name" },
	{ "command|docs", "[command-name ...]" },
	{ "command|info", "[command-name ...]" },
	{ "config|get", "parameter ..." },
	{ "config|set", "(parameter value) ..." },
	{ "copy", "source destination [DB destination-db] [REPLACE]" },
	{ "debug", "SLEEP seconds" },
	{ "decr", "key" },
	{ "decrby", "key decrement" },
	{ "del", "key ..." },
	{ "delex", "key [(IFEQ comparison-value)|(IFNE comparison-value)|(IFVER version)]" },
	{ "delifeq", "key value" },
	{ "echo", "message" },
	{ "exists", "key ..." },
	{ "expire", "key seconds [NX|XX|GT|LT]" },
	{ "expireat", "key unix-time-seconds [NX|XX|GT|LT]" },
	{ "expiretime", "key" },
	{ "flushall", "[ASYNC|SYNC]" },
	{ "flushdb", "[ASYNC|SYNC]" },
	{ "get", "key" },
	{ "getdel", "key" },
	{ "getex",
	  "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|"
	  "PERSIST]" },
	{ "getrange", "key start end" },
	{ "getset", "key value" },
	{ "hello", "[protover [AUTH username password] [SETNAME clientname]]" },
	{ "incr", "key" },
	{ "incrby", "key increment" },
	{ "incrbyfloat", "key increment" },
	{ "info", "[section ...]" },
	{ "keys", "pattern" },
	{ "mget", "key ..." },
	{ "move", "key db" },
	{ "mset", "(key value) ..." },
	{ "msetnx", "(key value) ..." },
	{ "persist", "key" },
	{ "pexpire", "key milliseconds [NX|XX|GT|LT]" },
	{ "pexpireat", "key unix-time-milliseconds [NX|XX|GT|LT]" },
	{ "pexpiretime", "key" },
	{ "ping", "[message]" },
	{ "psetex", "key milliseconds value" },
	{ "pttl", "key" },
	{ "rename", "key newkey" },
	{ "renamenx", "key newkey" },
	{ "scan", "cursor [MATCH pattern] [COUNT count] [TYPE type]" },
	{ "select", "index" },
	{ "set",
	  "key value [NX|XX|(IFEQ comparison-value)|(IFNE comparison-value)|(IFVER version)] "
	  "[GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT "
	  "unix-time-milliseconds|KEEPTTL]" },
	{ "setex", "key seconds value" },
	{ "setnx", "key value" },
	{ "setrange", "key offset value" },
	{ "shutdown", "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]" },
	{ "strlen", "key" },
	{ "swapdb", "index1 index2" },
	{ "touch", "key ..." },
	{ "tgetv", "key" },
	{ "trange", "start end [REV] [LIMIT count] [NOVALUES]" },
	{ "tsetv",
	  "key value version [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT "
	  "unix-time-milliseconds|KEEPTTL]" },
	{ "ttl", "key" },
	{ "type", "key" },
	{ "unlink", "key ..." },
	{ "watch", "key ..." },
};

const char *resp_cmd_syntax(const char *name)
{
	for (size_t i = 0; i < sizeof syntaxes / sizeof syntaxes[0]; i++)
		if (!strcmp(syntaxes[i].name, name))
			return syntaxes[i].syntax;
	return NULL;
}

/* The syntax as a tree: a node is a value, a token, or a group (oneof or
 * block) of nodes. */
typedef struct node {
	char name[48];
	const char *type; /* key string integer pattern unix-time pure-token oneof block */
	char token[48];
	int optional, multiple;
	struct node *kids;
	int nkids;
} node;

static void node_free(node *n)
{
	for (int i = 0; i < n->nkids; i++)
		node_free(&n->kids[i]);
	free(n->kids);
	n->kids = NULL;
	n->nkids = 0;
}

static node *node_push(node *parent)
{
	node *k = realloc(parent->kids, (size_t)(parent->nkids + 1) * sizeof *k);
	if (!k)
		return NULL;
	parent->kids = k;
	memset(&k[parent->nkids], 0, sizeof *k);
	return &k[parent->nkids++];
}

static const char *value_type(const char *w)
{
	static const char *ints[] = { "seconds", "milliseconds", "count", "increment",
		                      "decrement", "start",        "end",   "offset",
		                      "db",        "destination-db", "index", "index1",
		                      "index2",    "bits",         "cursor", "client-id",
		                      "protover",  "limit" };
	if (!strcmp(w, "key") || !strcmp(w, "newkey") || !strcmp(w, "source") ||
	    !strcmp(w, "destination"))
		return "key";
	if (!strcmp(w, "pattern"))
		return "pattern";
	if (!strncmp(w, "unix-time", 9))
		return "unix-time";
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
		if (!strcmp(w, ints[i]))
			return "integer";
	return "string";
}

static int is_token(const char *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (islower((unsigned char)w[i]))
			return 0;
	return 1;
}

static void skip_space(const char **p)
{
	while (**p == ' ')
		(*p)++;
}

static int parse_seq(const char **p, node *into, char stop);

/* Parses the alternatives of a group up to `close` into g (a oneof if
 * there are several, else the one sequence's items).  0 or -1. */
static int parse_group(const char **p, node *g, char close)
{
	node alts = { 0 };
	for (;;) {
		node *alt = node_push(&alts);
		if (!alt || parse_seq(p, alt, close)) {
			node_free(&alts);
			return -1;
		}
		if (**p == '|') {
			(*p)++;
			continue;
		}
		if (**p != close) {
			node_free(&alts);
			return -1;
		}
		(*p)++;
		break;
	}
	if (alts.nkids == 1) {
		node *only = &alts.kids[0];
		if (only->nkids == 1) { /* a single item: it is the group */
			*g = only->kids[0];
			free(only->kids);
			free(alts.kids);
			return 0;
		}
		g->type = "block";
		g->kids = only->kids;
		g->nkids = only->nkids;
		free(alts.kids);
	} else {
		g->type = "oneof";
		g->kids = alts.kids;
		g->nkids = alts.nkids;
		for (int i = 0; i < g->nkids; i++) { /* one-item alternatives are the item */
			node *a = &g->kids[i];
			if (a->nkids == 1) {
				node k = a->kids[0];
				free(a->kids);
				*a = k;
			} else {
				a->type = "block";
				snprintf(a->name, sizeof a->name, "%s", a->nkids ? a->kids[0].name : "block");
			}
		}
	}
	snprintf(g->name, sizeof g->name, "%s", g->nkids ? g->kids[0].name : "arg");
	return 0;
}

/* Parses items into `into` until `stop` or '|' (or the end).  0 or -1. */
static int parse_seq(const char **p, node *into, char stop)
{
	for (;;) {
		skip_space(p);
		char c = **p;
		if (!c || c == stop || c == '|')
			return 0;
		if (c == '.' && !strncmp(*p, "...", 3)) {
			*p += 3;
			if (into->nkids)
				into->kids[into->nkids - 1].multiple = 1;
			continue;
		}
		node *n = node_push(into);
		if (!n)
			return -1;
		if (c == '[' || c == '(') {
			(*p)++;
			if (parse_group(p, n, c == '[' ? ']' : ')'))
				return -1;
			n->optional = c == '[';
			continue;
		}
		size_t len = strcspn(*p, " []()|");
		char w[48];
		snprintf(w, sizeof w, "%.*s", (int)len, *p);
		*p += len;
		if (is_token(w, len)) {
			/* A token names the value that follows it, if one does. */
			const char *q = *p;
			skip_space(&q);
			size_t vl = strcspn(q, " []()|");
			if (vl && !is_token(q, vl) && strncmp(q, "...", 3)) {
				snprintf(n->token, sizeof n->token, "%s", w);
				snprintf(n->name, sizeof n->name, "%.*s", (int)vl, q);
				n->type = value_type(n->name);
				*p = q + vl;
			} else {
				snprintf(n->token, sizeof n->token, "%s", w);
				for (size_t i = 0; w[i]; i++)
					w[i] = (char)tolower((unsigned char)w[i]);
				snprintf(n->name, sizeof n->name, "%s", w);
				n->type = "pure-token";
			}
		} else {
			snprintf(n->name, sizeof n->name, "%s", w);
			n->type = value_type(w);
		}
	}
}

static void add_node(resp_client *c, const node *n)
{
	int fields = 2 + (n->token[0] != 0) + (n->optional || n->multiple) + (n->nkids > 0);
	add_map(c, fields);
	add_bulk_cstr(c, "name");
	add_bulk_cstr(c, n->name);
	add_bulk_cstr(c, "type");
	add_bulk_cstr(c, n->type);
	if (n->token[0]) {
		add_bulk_cstr(c, "token");
		add_bulk_cstr(c, n->token);
	}
	if (n->optional || n->multiple) {
		add_bulk_cstr(c, "flags");
		add_set(c, n->optional + n->multiple);
		if (n->optional)
			add_simple(c, "optional");
		if (n->multiple)
			add_simple(c, "multiple");
	}
	if (n->nkids) {
		add_bulk_cstr(c, "arguments");
		add_array(c, n->nkids);
		for (int i = 0; i < n->nkids; i++)
			add_node(c, &n->kids[i]);
	}
}

void resp_add_doc_args(resp_client *c, const char *syntax)
{
	node root = { 0 };
	const char *p = syntax;
	if (parse_seq(&p, &root, 0) || *p) {
		node_free(&root);
		add_array(c, 0);
		return;
	}
	add_array(c, root.nkids);
	for (int i = 0; i < root.nkids; i++)
		add_node(c, &root.kids[i]);
	node_free(&root);
}
