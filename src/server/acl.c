/*
 * acl.c - users and what they may do, in the spirit of Redis's ACL: each
 * user is on or off, has passwords (kept only as SHA-256 hashes) or none
 * ("nopass"), may run the commands its rules allow (+get, -@write,
 * +client|kill ...) and may touch the keys its patterns allow, for reading
 * (%R~pattern), writing (%W~pattern) or both (~pattern).  The users live
 * in memory and, with the aclfile option, in a file of "user ..." lines
 * that ACL SAVE writes and ACL LOAD (and startup) reads.
 *
 * How it fits.  The core owns authentication: a connection holds a
 * reference to its user (server.c), and a front-end asks, for every
 * request, whether that user may run the catalog entry the request names
 * and touch its keys.  The catalog (the front-end's commands and
 * subcommands with their categories) is handed over once at start, so the
 * rules can name commands without this file knowing any protocol.
 *
 * Users are immutable once published: a change builds a new user object
 * under the lock and swaps it in, and the ACL's version grows, so checking
 * a request costs no lock - the connection compares one number and looks
 * its user up again only after a change.  This file must never read
 * sockets or the database, and never keep a password in clear.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "server.h"

#define HASH_LEN 32
#define LOG_GROUP_MS 60000 /* equal log entries this close are counted as one */

const char *const srv_acl_category_names[SRV_ACL_NCATEGORIES] = {
	"keyspace", "read",   "write",     "set",       "sortedset", "list",       "hash",
	"string",   "bitmap", "hyperloglog", "geo",     "stream",    "pubsub",     "admin",
	"fast",     "slow",   "blocking",  "dangerous", "connection", "transaction", "scripting",
};

typedef struct keypat {
	char *p;
	size_t n;
	int perm; /* SRV_ACL_READ | SRV_ACL_WRITE */
} keypat;

struct srv_user {
	atomic_int refs;
	const srv_acl *acl;
	char *name;
	int on, nopass;
	unsigned char (*pw)[HASH_LEN];
	size_t npw;
	int allkeys;
	keypat *pats;
	size_t npats;
	int allchannels;
	char **chans;
	size_t nchans;
	int base_all;  /* the command rules start from +@all (1) or -@all (0) */
	char **rules;  /* then these, each "+name", "-name", "+@cat" or "-@cat" */
	size_t nrules;
	uint64_t *bits; /* the catalog entries allowed, derived from the rules */
};

struct srv_acl {
	pthread_mutex_t mu; /* guards users and the log */
	const srv_acl_cmd *cmds;
	size_t ncmds, nwords;
	srv_user **users; /* sorted by name */
	size_t nusers;
	atomic_uint_fast64_t version;
	atomic_int default_open;
	srv_acl_log_entry log[SRV_ACL_LOG_MAX]; /* newest first */
	size_t nlog;
};

/* ---- Small helpers ----------------------------------------------------------- */

void srv_sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL))
		mdlen = 0;
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < HASH_LEN; i++) {
		out[2 * i] = i < mdlen ? hex[md[i] >> 4] : '0';
		out[2 * i + 1] = i < mdlen ? hex[md[i] & 15] : '0';
	}
	out[64] = 0;
}

static int sha256(const void *p, size_t n, unsigned char out[HASH_LEN])
{
	unsigned int mdlen = 0;
	unsigned char md[EVP_MAX_MD_SIZE];
	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != HASH_LEN)
		return -1;
	memcpy(out, md, HASH_LEN);
	return 0;
}

int srv_random_bytes(void *p, size_t n)
{
	return RAND_bytes(p, (int)n) == 1 ? 0 : -1;
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

/* A growable string for the descriptions. */
typedef struct str {
	char *p;
	size_t n, cap;
	int oom;
} str;

static void str_add(str *s, const char *p, size_t n)
{
	if (s->oom)
		return;
	if (s->n + n + 1 > s->cap) {
		size_t nc = s->cap ? s->cap : 128;
		while (nc < s->n + n + 1)
			nc *= 2;
		char *np = realloc(s->p, nc);
		if (!np) {
			s->oom = 1;
			return;
		}
		s->p = np;
		s->cap = nc;
	}
	memcpy(s->p + s->n, p, n);
	s->n += n;
	s->p[s->n] = 0;
}

static void str_cat(str *s, const char *p)
{
	str_add(s, p, strlen(p));
}

/* Finishes s: the string (never NULL unless out of memory). */
static char *str_done(str *s)
{
	if (s->oom) {
		free(s->p);
		return NULL;
	}
	if (!s->p)
		return dupn("", 0);
	return s->p;
}

int srv_acl_category(const char *name, size_t len)
{
	for (int i = 0; i < SRV_ACL_NCATEGORIES; i++)
		if (strlen(srv_acl_category_names[i]) == len &&
		    !strncasecmp(srv_acl_category_names[i], name, len))
			return i;
	return -1;
}

/* The catalog entry named name (lowercase), or -1. */
static long cmd_find(const srv_acl *a, const char *name)
{
	for (size_t i = 0; i < a->ncmds; i++)
		if (!strcmp(a->cmds[i].name, name))
			return (long)i;
	return -1;
}

static int is_container(const srv_acl *a, size_t i)
{
	for (size_t j = 0; j < a->ncmds; j++)
		if (a->cmds[j].parent == (int)i)
			return 1;
	return 0;
}

/* ---- Users ------------------------------------------------------------------------ */

static void user_free(srv_user *u)
{
	if (!u)
		return;
	free(u->name);
	free(u->pw);
	for (size_t i = 0; i < u->npats; i++)
		free(u->pats[i].p);
	free(u->pats);
	for (size_t i = 0; i < u->nchans; i++)
		free(u->chans[i]);
	free(u->chans);
	for (size_t i = 0; i < u->nrules; i++)
		free(u->rules[i]);
	free(u->rules);
	free(u->bits);
	free(u);
}

srv_user *srv_user_ref(srv_user *u)
{
	if (u)
		atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
	return u;
}

void srv_user_unref(srv_user *u)
{
	if (u && atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) == 1)
		user_free(u);
}

/* A new user as Redis makes one: off, no passwords, no keys, no channels,
 * no commands. */
static srv_user *user_new(const srv_acl *a, const char *name, size_t nlen)
{
	srv_user *u = calloc(1, sizeof *u);
	if (!u)
		return NULL;
	atomic_init(&u->refs, 1);
	u->acl = a;
	u->name = dupn(name, nlen);
	u->bits = calloc(a->nwords ? a->nwords : 1, sizeof *u->bits);
	if (!u->name || !u->bits) {
		user_free(u);
		return NULL;
	}
	return u;
}

static srv_user *user_clone(const srv_user *o)
{
	const srv_acl *a = o->acl;
	srv_user *u = user_new(a, o->name, strlen(o->name));
	if (!u)
		return NULL;
	u->on = o->on;
	u->nopass = o->nopass;
	u->allkeys = o->allkeys;
	u->allchannels = o->allchannels;
	u->base_all = o->base_all;
	int oom = 0;
	if (o->npw) {
		u->pw = malloc(o->npw * sizeof *u->pw);
		if (u->pw) {
			memcpy(u->pw, o->pw, o->npw * sizeof *u->pw);
			u->npw = o->npw;
		} else {
			oom = 1;
		}
	}
	if (!oom && o->npats) {
		u->pats = calloc(o->npats, sizeof *u->pats);
		oom = !u->pats;
		for (size_t i = 0; !oom && i < o->npats; i++) {
			u->pats[i] = o->pats[i];
			u->pats[i].p = dupn(o->pats[i].p, o->pats[i].n);
			oom = !u->pats[i].p;
			u->npats = i + 1;
		}
	}
	if (!oom && o->nchans) {
		u->chans = calloc(o->nchans, sizeof *u->chans);
		oom = !u->chans;
		for (size_t i = 0; !oom && i < o->nchans; i++) {
			u->chans[i] = strdup(o->chans[i]);
			oom = !u->chans[i];
			u->nchans = i + 1;
		}
	}
	if (!oom && o->nrules) {
		u->rules = calloc(o->nrules, sizeof *u->rules);
		oom = !u->rules;
		for (size_t i = 0; !oom && i < o->nrules; i++) {
			u->rules[i] = strdup(o->rules[i]);
			oom = !u->rules[i];
			u->nrules = i + 1;
		}
	}
	if (oom) {
		user_free(u);
		return NULL;
	}
	memcpy(u->bits, o->bits, a->nwords * sizeof *u->bits);
	return u;
}

const char *srv_user_name(const srv_user *u) { return u->name; }
int srv_user_enabled(const srv_user *u) { return u->on; }
int srv_user_all_keys(const srv_user *u) { return u->allkeys; }
int srv_user_nopass(const srv_user *u) { return u->nopass; }

int srv_user_can_run(const srv_user *u, size_t cmd)
{
	if (cmd >= u->acl->ncmds)
		return 0;
	return (int)((u->bits[cmd / 64] >> (cmd % 64)) & 1);
}

int srv_user_can_key(const srv_user *u, const char *key, size_t klen, int need)
{
	if (u->allkeys)
		return 1;
	for (size_t i = 0; i < u->npats; i++) {
		const keypat *p = &u->pats[i];
		if ((p->perm & need) == need && srv_glob_match(p->p, p->n, key, klen, 0))
			return 1;
	}
	return 0;
}

/* ---- Command rules ------------------------------------------------------------------ */

static void bit_set(uint64_t *bits, size_t i, int on)
{
	if (on)
		bits[i / 64] |= 1ull << (i % 64);
	else
		bits[i / 64] &= ~(1ull << (i % 64));
}

static int bit_get(const uint64_t *bits, size_t i)
{
	return (int)((bits[i / 64] >> (i % 64)) & 1);
}

/* What a rule's target covers: a category, one entry, or an entry with
 * all of its subcommands. */
typedef struct target {
	int cat;   /* category index, or -1 */
	long cmd;  /* catalog entry, or -1 */
	int whole; /* cmd is a container: the rule covers its subcommands too */
} target;

/* 1 if catalog entry i is covered by t. */
static int covers(const srv_acl *a, const target *t, size_t i)
{
	if (t->cat >= 0)
		return (int)((a->cmds[i].categories >> t->cat) & 1);
	if ((long)i == t->cmd)
		return 1;
	return t->whole && a->cmds[i].parent == (int)t->cmd;
}

/* Parses a rule's target ("get", "client|kill", "@string"); 0 or -1. */
static int parse_target(const srv_acl *a, const char *s, target *t)
{
	t->cat = -1;
	t->cmd = -1;
	t->whole = 0;
	if (s[0] == '@') {
		t->cat = srv_acl_category(s + 1, strlen(s + 1));
		return t->cat >= 0 ? 0 : -1;
	}
	t->cmd = cmd_find(a, s);
	if (t->cmd < 0)
		return -1;
	t->whole = a->cmds[t->cmd].parent < 0 && is_container(a, (size_t)t->cmd);
	return 0;
}

/* Recomputes u->bits from the base and the rules. */
static void recompute_bits(srv_user *u)
{
	const srv_acl *a = u->acl;
	memset(u->bits, u->base_all ? 0xff : 0, a->nwords * sizeof *u->bits);
	for (size_t r = 0; r < u->nrules; r++) {
		target t;
		if (parse_target(a, u->rules[r] + 1, &t))
			continue; /* cannot happen: rules are checked when added */
		for (size_t i = 0; i < a->ncmds; i++)
			if (covers(a, &t, i))
				bit_set(u->bits, i, u->rules[r][0] == '+');
	}
}

/* 1 if an earlier rule for target `old` has no effect once a rule for `t`
 * follows it: every entry old covers, t covers too. */
static int overridden(const srv_acl *a, const target *old, const target *t)
{
	for (size_t i = 0; i < a->ncmds; i++)
		if (covers(a, old, i) && !covers(a, t, i))
			return 0;
	return 1;
}

/* Adds rule ("+get", "-@write") to u, keeping the list short: earlier
 * rules that the new one overrides go, and a rule that changes nothing is
 * not added, so ACL LIST shows what matters (as Redis 7 does).  The
 * allowed set is exactly that of applying every rule given, in order.
 * 0, -1 (unknown target) or -2 (ENOMEM). */
static int add_command_rule(srv_user *u, const char *rule)
{
	const srv_acl *a = u->acl;
	target t;
	if (parse_target(a, rule + 1, &t))
		return -1;
	int allow = rule[0] == '+';
	size_t keep = 0;
	for (size_t r = 0; r < u->nrules; r++) {
		target old;
		if (!parse_target(a, u->rules[r] + 1, &old) && overridden(a, &old, &t)) {
			free(u->rules[r]);
			continue;
		}
		u->rules[keep++] = u->rules[r];
	}
	u->nrules = keep;
	recompute_bits(u);
	int needed = 0;
	for (size_t i = 0; i < a->ncmds && !needed; i++)
		needed = covers(a, &t, i) && bit_get(u->bits, i) != allow;
	if (!needed)
		return 0;
	char **nr = realloc(u->rules, (u->nrules + 1) * sizeof *nr);
	if (!nr)
		return -2;
	u->rules = nr;
	if (!(u->rules[u->nrules] = strdup(rule)))
		return -2;
	u->nrules++;
	recompute_bits(u);
	return 0;
}

static void set_all_commands(srv_user *u, int allow)
{
	for (size_t i = 0; i < u->nrules; i++)
		free(u->rules[i]);
	free(u->rules);
	u->rules = NULL;
	u->nrules = 0;
	u->base_all = allow;
	recompute_bits(u);
}

/* ---- Passwords, keys, channels ------------------------------------------------------------ */

static long pw_find(const srv_user *u, const unsigned char h[HASH_LEN])
{
	for (size_t i = 0; i < u->npw; i++)
		if (!memcmp(u->pw[i], h, HASH_LEN))
			return (long)i;
	return -1;
}

static int pw_add(srv_user *u, const unsigned char h[HASH_LEN])
{
	u->nopass = 0;
	if (pw_find(u, h) >= 0)
		return 0;
	void *np = realloc(u->pw, (u->npw + 1) * sizeof *u->pw);
	if (!np)
		return -2;
	u->pw = np;
	memcpy(u->pw[u->npw++], h, HASH_LEN);
	return 0;
}

static int pw_del(srv_user *u, const unsigned char h[HASH_LEN])
{
	long i = pw_find(u, h);
	if (i < 0)
		return -1;
	memmove(u->pw[i], u->pw[i + 1], (u->npw - (size_t)i - 1) * sizeof *u->pw);
	u->npw--;
	return 0;
}

static void pw_reset(srv_user *u)
{
	free(u->pw);
	u->pw = NULL;
	u->npw = 0;
}

/* Parses 64 lowercase hex digits; 0 or -1. */
static int parse_hash(const char *s, size_t n, unsigned char h[HASH_LEN])
{
	if (n != 2 * HASH_LEN)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		if (i % 2 == 0)
			h[i / 2] = (unsigned char)(v << 4);
		else
			h[i / 2] |= (unsigned char)v;
	}
	return 0;
}

static void keys_reset(srv_user *u)
{
	for (size_t i = 0; i < u->npats; i++)
		free(u->pats[i].p);
	free(u->pats);
	u->pats = NULL;
	u->npats = 0;
	u->allkeys = 0;
}

/* A pattern with the same text gains the new permissions, as in Redis. */
static int key_add(srv_user *u, const char *p, size_t n, int perm)
{
	for (size_t i = 0; i < u->npats; i++) {
		if (u->pats[i].n == n && !memcmp(u->pats[i].p, p, n)) {
			u->pats[i].perm |= perm;
			return 0;
		}
	}
	keypat *np = realloc(u->pats, (u->npats + 1) * sizeof *np);
	if (!np)
		return -2;
	u->pats = np;
	if (!(np[u->npats].p = dupn(p, n)))
		return -2;
	np[u->npats].n = n;
	np[u->npats].perm = perm;
	u->npats++;
	return 0;
}

static void chans_reset(srv_user *u)
{
	for (size_t i = 0; i < u->nchans; i++)
		free(u->chans[i]);
	free(u->chans);
	u->chans = NULL;
	u->nchans = 0;
	u->allchannels = 0;
}

static int chan_add(srv_user *u, const char *p, size_t n)
{
	for (size_t i = 0; i < u->nchans; i++)
		if (strlen(u->chans[i]) == n && !memcmp(u->chans[i], p, n))
			return 0;
	char **nc = realloc(u->chans, (u->nchans + 1) * sizeof *nc);
	if (!nc)
		return -2;
	u->chans = nc;
	if (!(nc[u->nchans] = dupn(p, n)))
		return -2;
	u->nchans++;
	return 0;
}

/* ---- One rule ------------------------------------------------------------------------------ */

/* The reasons a rule is refused, worded as Redis words them. */
static const char *const E_SYNTAX = "Syntax error";
static const char *const E_UNKNOWN = "Unknown command or category name in ACL";
static const char *const E_KEYS_AFTER_ALL =
        "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
        "have any effect. Try 'resetkeys' to start with an empty list of patterns";
static const char *const E_CHANS_AFTER_ALL =
        "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does "
        "not have any effect. Try 'resetchannels' to start with an empty list of channels";
static const char *const E_NO_PASSWORD =
        "The password you are trying to remove from the user does not exist";
static const char *const E_BAD_HASH = "The password hash must be exactly 64 characters and "
                                      "contain only lowercase hexadecimal characters";
static const char *const E_SELECTORS = "Selectors are not supported by Trove";
static const char *const E_SPACES = "Patterns cannot contain spaces or control characters";
static const char *const E_NOMEM = "Out of memory";

static int word_is(const char *op, size_t len, const char *w)
{
	return strlen(w) == len && !strncasecmp(op, w, len);
}

static int printable(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= ' ' || p[i] == 127)
			return 0;
	return 1;
}

/* Applies one rule to u.  Returns NULL, or the reason it was refused. */
static const char *apply_rule(srv_user *u, const char *op, size_t len)
{
	int rc = 0;
	if (len == 0)
		return E_SYNTAX;
	if (word_is(op, len, "on")) {
		u->on = 1;
	} else if (word_is(op, len, "off")) {
		u->on = 0;
	} else if (word_is(op, len, "nopass")) {
		pw_reset(u);
		u->nopass = 1;
	} else if (word_is(op, len, "resetpass")) {
		pw_reset(u);
		u->nopass = 0;
	} else if (word_is(op, len, "allkeys")) {
		keys_reset(u);
		u->allkeys = 1;
	} else if (word_is(op, len, "resetkeys")) {
		keys_reset(u);
	} else if (word_is(op, len, "allchannels")) {
		chans_reset(u);
		u->allchannels = 1;
	} else if (word_is(op, len, "resetchannels")) {
		chans_reset(u);
	} else if (word_is(op, len, "allcommands")) {
		set_all_commands(u, 1);
	} else if (word_is(op, len, "nocommands")) {
		set_all_commands(u, 0);
	} else if (word_is(op, len, "reset")) {
		pw_reset(u);
		u->nopass = 0;
		keys_reset(u);
		chans_reset(u);
		u->on = 0;
		set_all_commands(u, 0);
	} else if (word_is(op, len, "sanitize-payload") || word_is(op, len, "skip-sanitize-payload") ||
	           word_is(op, len, "clearselectors")) {
		/* Redis's RESTORE and selector flags: nothing to do in Trove. */
	} else if (op[0] == '(') {
		return E_SELECTORS;
	} else if (op[0] == '>' || op[0] == '<') {
		unsigned char h[HASH_LEN];
		if (sha256(op + 1, len - 1, h))
			return E_NOMEM;
		if (op[0] == '>')
			rc = pw_add(u, h);
		else if (pw_del(u, h))
			return E_NO_PASSWORD;
		OPENSSL_cleanse(h, sizeof h);
	} else if (op[0] == '#' || op[0] == '!') {
		unsigned char h[HASH_LEN];
		if (parse_hash(op + 1, len - 1, h))
			return E_BAD_HASH;
		if (op[0] == '#')
			rc = pw_add(u, h);
		else if (pw_del(u, h))
			return E_NO_PASSWORD;
	} else if (op[0] == '~' || op[0] == '%') {
		if (u->allkeys)
			return E_KEYS_AFTER_ALL;
		int perm = 0;
		size_t off = 1;
		if (op[0] == '%') {
			for (;; off++) {
				if (off >= len)
					return E_SYNTAX;
				char c = (char)toupper((unsigned char)op[off]);
				if (c == 'R' && !(perm & SRV_ACL_READ))
					perm |= SRV_ACL_READ;
				else if (c == 'W' && !(perm & SRV_ACL_WRITE))
					perm |= SRV_ACL_WRITE;
				else if (c == '~' && perm) {
					off++;
					break;
				} else
					return E_SYNTAX;
			}
		} else {
			perm = SRV_ACL_READ | SRV_ACL_WRITE;
		}
		if (!printable(op + off, len - off))
			return E_SPACES;
		if (len - off == 1 && op[off] == '*' && perm == (SRV_ACL_READ | SRV_ACL_WRITE)) {
			keys_reset(u);
			u->allkeys = 1;
		} else {
			rc = key_add(u, op + off, len - off, perm);
		}
	} else if (op[0] == '&') {
		if (u->allchannels)
			return E_CHANS_AFTER_ALL;
		if (!printable(op + 1, len - 1))
			return E_SPACES;
		if (len == 2 && op[1] == '*') {
			chans_reset(u);
			u->allchannels = 1;
		} else {
			rc = chan_add(u, op + 1, len - 1);
		}
	} else if (op[0] == '+' || op[0] == '-') {
		char rule[160];
		if (len >= sizeof rule || len < 2)
			return len < 2 ? E_SYNTAX : E_UNKNOWN;
		for (size_t i = 0; i < len; i++)
			rule[i] = (char)tolower((unsigned char)op[i]);
		rule[len] = 0;
		if (!strcmp(rule + 1, "@all")) {
			set_all_commands(u, op[0] == '+');
		} else {
			rc = add_command_rule(u, rule);
			if (rc == -1)
				return E_UNKNOWN;
		}
	} else {
		return E_SYNTAX;
	}
	return rc ? E_NOMEM : NULL;
}

/* ---- The set of users ----------------------------------------------------------------------- */

static int name_ok(const char *name, size_t n)
{
	return n > 0 && printable(name, n);
}

/* Index of name in users[0, n), or -(insertion point) - 1. */
static long users_find(srv_user *const *users, size_t n, const char *name, size_t nlen)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *m = users[mid]->name;
		size_t ml = strlen(m);
		int cmp = memcmp(name, m, nlen < ml ? nlen : ml);
		if (cmp == 0)
			cmp = nlen < ml ? -1 : nlen > ml;
		if (cmp == 0)
			return (long)mid;
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -(long)lo - 1;
}

/* Puts u into the sorted array, replacing a user of the same name (whose
 * reference is returned for the caller to drop), or NULL. */
static int users_put(srv_user ***users, size_t *n, srv_user *u, srv_user **old)
{
	*old = NULL;
	long i = users_find(*users, *n, u->name, strlen(u->name));
	if (i >= 0) {
		*old = (*users)[i];
		(*users)[i] = u;
		return 0;
	}
	size_t at = (size_t)(-i - 1);
	srv_user **nu = realloc(*users, (*n + 1) * sizeof *nu);
	if (!nu)
		return -1;
	memmove(nu + at + 1, nu + at, (*n - at) * sizeof *nu);
	nu[at] = u;
	*users = nu;
	(*n)++;
	return 0;
}

/* The built-in default user: on, nopass, every key, channel and command;
 * with requirepass, that password instead of nopass. */
static srv_user *default_user(const srv_acl *a, const char *requirepass)
{
	srv_user *u = user_new(a, "default", 7);
	if (!u)
		return NULL;
	u->on = 1;
	u->allkeys = 1;
	u->allchannels = 1;
	set_all_commands(u, 1);
	if (requirepass && *requirepass) {
		unsigned char h[HASH_LEN];
		if (sha256(requirepass, strlen(requirepass), h) || pw_add(u, h)) {
			user_free(u);
			return NULL;
		}
	} else {
		u->nopass = 1;
	}
	return u;
}

/* Publishes a change (mu held). */
static void changed(srv_acl *a)
{
	long i = users_find(a->users, a->nusers, "default", 7);
	int open = i >= 0 && a->users[i]->on && a->users[i]->nopass;
	atomic_store(&a->default_open, open);
	atomic_fetch_add(&a->version, 1);
}

srv_acl *srv_acl_new(const srv_acl_cmd *cmds, size_t ncmds, const char *requirepass)
{
	srv_acl *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	pthread_mutex_init(&a->mu, NULL);
	a->cmds = cmds;
	a->ncmds = ncmds;
	a->nwords = (ncmds + 63) / 64;
	srv_user *d = default_user(a, requirepass);
	srv_user *old;
	if (!d || users_put(&a->users, &a->nusers, d, &old)) {
		user_free(d);
		srv_acl_free(a);
		return NULL;
	}
	changed(a);
	return a;
}

void srv_acl_free(srv_acl *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nusers; i++)
		srv_user_unref(a->users[i]);
	free(a->users);
	srv_acl_log_reset(a);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

uint64_t srv_acl_version(const srv_acl *a) { return atomic_load(&a->version); }
int srv_acl_default_open(const srv_acl *a) { return atomic_load(&a->default_open); }

/* Applies rules to a copy of the user (or a new one); NULL on error with
 * the message in err.  mu held. */
static srv_user *build_user(srv_acl *a, srv_user *const *users, size_t n, const char *name,
                            size_t nlen, int argc, char **argv, size_t *lens, char *err,
                            size_t errlen, const char *fmt)
{
	long i = users_find(users, n, name, nlen);
	srv_user *u = i >= 0 ? user_clone(users[i]) : user_new(a, name, nlen);
	if (!u) {
		snprintf(err, errlen, "Out of memory");
		return NULL;
	}
	for (int j = 0; j < argc; j++) {
		const char *why = apply_rule(u, argv[j], lens[j]);
		if (why) {
			snprintf(err, errlen, fmt, (int)(lens[j] > 128 ? 128 : lens[j]), argv[j], why);
			user_free(u);
			return NULL;
		}
	}
	return u;
}

int srv_acl_setuser(srv_acl *a, const char *name, size_t nlen, int argc, char **argv,
                    size_t *lens, char *err, size_t errlen)
{
	if (!name_ok(name, nlen)) {
		snprintf(err, errlen, "Usernames can't contain spaces or null characters");
		return -1;
	}
	pthread_mutex_lock(&a->mu);
	srv_user *u = build_user(a, a->users, a->nusers, name, nlen, argc, argv, lens, err, errlen,
	                         "Error in ACL SETUSER modifier '%.*s': %s");
	srv_user *old = NULL;
	int rc = -1;
	if (u && users_put(&a->users, &a->nusers, u, &old) == 0) {
		changed(a);
		rc = 0;
	} else if (u) {
		snprintf(err, errlen, "Out of memory");
		user_free(u);
	}
	pthread_mutex_unlock(&a->mu);
	srv_user_unref(old);
	return rc;
}

int srv_acl_deluser(srv_acl *a, const char *name, size_t nlen)
{
	if (nlen == 7 && !memcmp(name, "default", 7))
		return -1;
	pthread_mutex_lock(&a->mu);
	long i = users_find(a->users, a->nusers, name, nlen);
	srv_user *old = NULL;
	if (i >= 0) {
		old = a->users[i];
		memmove(a->users + i, a->users + i + 1, (a->nusers - (size_t)i - 1) * sizeof *a->users);
		a->nusers--;
		changed(a);
	}
	pthread_mutex_unlock(&a->mu);
	srv_user_unref(old);
	return old != NULL;
}

srv_user *srv_acl_get(srv_acl *a, const char *name, size_t nlen)
{
	pthread_mutex_lock(&a->mu);
	long i = users_find(a->users, a->nusers, name, nlen);
	srv_user *u = i >= 0 ? srv_user_ref(a->users[i]) : NULL;
	pthread_mutex_unlock(&a->mu);
	return u;
}

int srv_acl_check_password(srv_acl *a, const char *name, size_t nlen, const char *pass,
                           size_t plen, srv_user **out)
{
	unsigned char h[HASH_LEN];
	if (sha256(pass, plen, h))
		return -1;
	srv_user *u = srv_acl_get(a, name, nlen);
	int ok = 0;
	if (u && u->on) {
		/* Every stored hash is compared, each in constant time. */
		int match = u->nopass;
		for (size_t i = 0; i < u->npw; i++)
			match |= CRYPTO_memcmp(u->pw[i], h, HASH_LEN) == 0;
		ok = match;
	}
	OPENSSL_cleanse(h, sizeof h);
	if (!ok) {
		srv_user_unref(u);
		return -1;
	}
	*out = u;
	return 0;
}

char **srv_acl_names(srv_acl *a, size_t *n)
{
	pthread_mutex_lock(&a->mu);
	char **names = calloc(a->nusers ? a->nusers : 1, sizeof *names);
	size_t k = 0;
	for (size_t i = 0; names && i < a->nusers; i++)
		if ((names[k] = strdup(a->users[i]->name)) != NULL)
			k++;
	pthread_mutex_unlock(&a->mu);
	*n = k;
	return names;
}

void srv_acl_free_names(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

/* ---- Describing users ------------------------------------------------------------------------- */

static void add_pattern(str *s, const keypat *p)
{
	if (p->perm == SRV_ACL_READ)
		str_cat(s, "%R~");
	else if (p->perm == SRV_ACL_WRITE)
		str_cat(s, "%W~");
	else
		str_cat(s, "~");
	str_add(s, p->p, p->n);
}

static char *describe_keys(const srv_user *u)
{
	str s = { 0 };
	if (u->allkeys)
		str_cat(&s, "~*");
	for (size_t i = 0; i < u->npats; i++) {
		if (i)
			str_cat(&s, " ");
		add_pattern(&s, &u->pats[i]);
	}
	return str_done(&s);
}

static char *describe_channels(const srv_user *u)
{
	str s = { 0 };
	if (u->allchannels)
		str_cat(&s, "&*");
	for (size_t i = 0; i < u->nchans; i++) {
		if (i)
			str_cat(&s, " ");
		str_cat(&s, "&");
		str_cat(&s, u->chans[i]);
	}
	return str_done(&s);
}

static char *describe_commands(const srv_user *u)
{
	str s = { 0 };
	str_cat(&s, u->base_all ? "+@all" : "-@all");
	for (size_t i = 0; i < u->nrules; i++) {
		str_cat(&s, " ");
		str_cat(&s, u->rules[i]);
	}
	return str_done(&s);
}

static void add_hex(str *s, const unsigned char h[HASH_LEN])
{
	static const char hex[] = "0123456789abcdef";
	char buf[2 * HASH_LEN];
	for (int i = 0; i < HASH_LEN; i++) {
		buf[2 * i] = hex[h[i] >> 4];
		buf[2 * i + 1] = hex[h[i] & 15];
	}
	str_add(s, buf, sizeof buf);
}

char *srv_user_describe(const srv_user *u)
{
	str s = { 0 };
	str_cat(&s, "user ");
	str_cat(&s, u->name);
	str_cat(&s, u->on ? " on" : " off");
	if (u->nopass)
		str_cat(&s, " nopass");
	for (size_t i = 0; i < u->npw; i++) {
		str_cat(&s, " #");
		add_hex(&s, u->pw[i]);
	}
	if (u->allkeys)
		str_cat(&s, " ~*");
	for (size_t i = 0; i < u->npats; i++) {
		str_cat(&s, " ");
		add_pattern(&s, &u->pats[i]);
	}
	if (u->allchannels) {
		str_cat(&s, " &*");
	} else {
		str_cat(&s, " resetchannels");
		for (size_t i = 0; i < u->nchans; i++) {
			str_cat(&s, " &");
			str_cat(&s, u->chans[i]);
		}
	}
	char *cmds = describe_commands(u);
	str_cat(&s, " ");
	str_cat(&s, cmds ? cmds : "-@all");
	free(cmds);
	return str_done(&s);
}

int srv_user_info_get(const srv_user *u, srv_user_info *out)
{
	str f = { 0 }, p = { 0 };
	str_cat(&f, u->on ? "on" : "off");
	if (u->nopass)
		str_cat(&f, " nopass");
	for (size_t i = 0; i < u->npw; i++) {
		if (i)
			str_cat(&p, " ");
		add_hex(&p, u->pw[i]);
	}
	out->flags = str_done(&f);
	out->passwords = str_done(&p);
	out->commands = describe_commands(u);
	out->keys = describe_keys(u);
	out->channels = describe_channels(u);
	if (!out->flags || !out->passwords || !out->commands || !out->keys || !out->channels) {
		srv_user_info_free(out);
		return -1;
	}
	return 0;
}

void srv_user_info_free(srv_user_info *i)
{
	free(i->flags);
	free(i->passwords);
	free(i->commands);
	free(i->keys);
	free(i->channels);
	memset(i, 0, sizeof *i);
}

/* ---- The ACL file ------------------------------------------------------------------------------ */

static void err_cat(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void err_cat(char *err, size_t errlen, const char *fmt, ...)
{
	size_t n = strlen(err);
	if (n + 1 >= errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

static char *read_file(const char *path, size_t *len, int *eno)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		*eno = errno;
		return NULL;
	}
	str s = { 0 };
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		str_add(&s, buf, n);
	int bad = ferror(f);
	fclose(f);
	char *p = str_done(&s);
	if (bad || !p) {
		free(p);
		*eno = bad ? EIO : ENOMEM;
		return NULL;
	}
	*len = s.n;
	return p;
}

int srv_acl_load_file(srv_acl *a, const char *path, const char *requirepass, char *err,
                      size_t errlen)
{
	err[0] = 0;
	size_t len = 0;
	int eno = 0;
	char *text = read_file(path, &len, &eno);
	if (!text) {
		snprintf(err, errlen, "Error loading ACLs, opening file '%s': %s", path, strerror(eno));
		return -1;
	}
	srv_user **users = NULL;
	size_t n = 0;
	int lineno = 0;
	for (char *line = text, *next; line < text + len; line = next) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		next = nl ? nl + 1 : text + len;
		size_t ll = (size_t)((nl ? nl : text + len) - line);
		lineno++;
		size_t s = 0;
		while (s < ll && isspace((unsigned char)line[s]))
			s++;
		if (s == ll || line[s] == '#')
			continue;
		int argc;
		size_t *lens;
		char **argv = srv_splitargs(line, ll, &argc, &lens);
		if (!argv) {
			err_cat(err, errlen, "%s:%d: unbalanced quotes in acl line. ", path, lineno);
			continue;
		}
		if (argc < 2 || strcmp(argv[0], "user")) {
			err_cat(err, errlen,
			        "%s:%d should start with user keyword followed by the username. ", path,
			        lineno);
		} else if (!name_ok(argv[1], lens[1])) {
			err_cat(err, errlen, "%s:%d: username '%.128s' contains invalid characters. ",
			        path, lineno, argv[1]);
		} else if (users_find(users, n, argv[1], lens[1]) >= 0) {
			err_cat(err, errlen, "WARNING: Duplicate user '%.128s' found on line %d. ",
			        argv[1], lineno);
		} else {
			char why[512], fmt[300];
			snprintf(fmt, sizeof fmt, "%s:%d: Error in applying operation '%%.*s': %%s. ",
			         path, lineno);
			srv_user *u = build_user(a, users, n, argv[1], lens[1], argc - 2, argv + 2,
			                         lens + 2, why, sizeof why, fmt);
			srv_user *old;
			if (!u)
				err_cat(err, errlen, "%s", why);
			else if (users_put(&users, &n, u, &old))
				user_free(u);
		}
		srv_freeargs(argv, lens, argc);
	}
	free(text);
	if (!err[0] && users_find(users, n, "default", 7) < 0) {
		srv_user *d = default_user(a, requirepass), *old;
		if (!d || users_put(&users, &n, d, &old)) {
			user_free(d);
			err_cat(err, errlen, "Out of memory. ");
		}
	}
	if (err[0]) {
		err_cat(err, errlen,
		        "WARNING: ACL errors detected, no change to the previously active ACL rules "
		        "was performed");
		for (size_t i = 0; i < n; i++)
			user_free(users[i]);
		free(users);
		return -1;
	}
	pthread_mutex_lock(&a->mu);
	srv_user **old = a->users;
	size_t nold = a->nusers;
	a->users = users;
	a->nusers = n;
	changed(a);
	pthread_mutex_unlock(&a->mu);
	for (size_t i = 0; i < nold; i++)
		srv_user_unref(old[i]);
	free(old);
	return 0;
}

int srv_acl_save_file(srv_acl *a, const char *path, char *err, size_t errlen)
{
	str s = { 0 };
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->nusers; i++) {
		char *line = srv_user_describe(a->users[i]);
		if (!line) {
			s.oom = 1;
			break;
		}
		str_cat(&s, line);
		str_cat(&s, "\n");
		free(line);
	}
	pthread_mutex_unlock(&a->mu);
	char *text = str_done(&s);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -1 : 0;
	for (size_t off = 0; !rc && off < s.n;) {
		ssize_t w = write(fd, text + off, s.n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = -1;
		else
			off += (size_t)w;
	}
	if (!rc && fsync(fd))
		rc = -1;
	int eno = errno;
	if (fd >= 0)
		close(fd);
	if (!rc && rename(tmp, path)) {
		rc = -1;
		eno = errno;
	}
	if (rc) {
		unlink(tmp);
		snprintf(err, errlen, "cannot write the ACL file '%s': %s", path, strerror(eno));
	} else {
		/* Make the rename durable too. */
		char dir[4096];
		snprintf(dir, sizeof dir, "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = 0;
		else
			snprintf(dir, sizeof dir, ".");
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	OPENSSL_cleanse(text, s.n);
	free(text);
	return rc;
}

/* ---- The ACL log --------------------------------------------------------------------------------- */

static void log_entry_free(srv_acl_log_entry *e)
{
	free(e->reason);
	free(e->context);
	free(e->object);
	free(e->username);
	free(e->client_info);
	memset(e, 0, sizeof *e);
}

static int same_entry(const srv_acl_log_entry *e, const char *reason, const char *context,
                      const char *object, size_t olen, const char *username)
{
	return !strcmp(e->reason, reason) && !strcmp(e->context, context) &&
	       strlen(e->object) == olen && !memcmp(e->object, object, olen) &&
	       !strcmp(e->username, username);
}

void srv_acl_log_add(srv_acl *a, const char *reason, const char *context, const char *object,
                     size_t olen, const char *username, const char *client_info)
{
	int64_t now = srv_now_ms();
	if (olen > 256)
		olen = 256;
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->nlog; i++) {
		srv_acl_log_entry *e = &a->log[i];
		if (now - e->updated_ms < LOG_GROUP_MS &&
		    same_entry(e, reason, context, object, olen, username)) {
			char *ci = strdup(client_info);
			if (ci) {
				free(e->client_info);
				e->client_info = ci;
			}
			e->count++;
			e->updated_ms = now;
			srv_acl_log_entry moved = *e;
			memmove(a->log + 1, a->log, i * sizeof *a->log);
			a->log[0] = moved;
			pthread_mutex_unlock(&a->mu);
			return;
		}
	}
	srv_acl_log_entry e = { 1,         strdup(reason),      strdup(context),
		                dupn(object, olen), strdup(username), strdup(client_info),
		                now,       now };
	if (!e.reason || !e.context || !e.object || !e.username || !e.client_info) {
		log_entry_free(&e);
		pthread_mutex_unlock(&a->mu);
		return;
	}
	if (a->nlog == SRV_ACL_LOG_MAX)
		log_entry_free(&a->log[--a->nlog]);
	memmove(a->log + 1, a->log, a->nlog * sizeof *a->log);
	a->log[0] = e;
	a->nlog++;
	pthread_mutex_unlock(&a->mu);
}

size_t srv_acl_log_get(srv_acl *a, size_t max, srv_acl_log_entry **out)
{
	pthread_mutex_lock(&a->mu);
	size_t n = max < a->nlog ? max : a->nlog;
	srv_acl_log_entry *v = calloc(n ? n : 1, sizeof *v);
	size_t k = 0;
	for (size_t i = 0; v && i < n; i++) {
		const srv_acl_log_entry *e = &a->log[i];
		srv_acl_log_entry c = { e->count,         strdup(e->reason),   strdup(e->context),
			                strdup(e->object), strdup(e->username), strdup(e->client_info),
			                e->created_ms,     e->updated_ms };
		if (!c.reason || !c.context || !c.object || !c.username || !c.client_info) {
			log_entry_free(&c);
			continue;
		}
		v[k++] = c;
	}
	pthread_mutex_unlock(&a->mu);
	*out = v;
	return k;
}

void srv_acl_log_free(srv_acl_log_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++)
		log_entry_free(&e[i]);
	free(e);
}

void srv_acl_log_reset(srv_acl *a)
{
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->nlog; i++)
		log_entry_free(&a->log[i]);
	a->nlog = 0;
	pthread_mutex_unlock(&a->mu);
}
