/*
 * util.c - small helpers the server core and its front-ends share: the
 * clock, strict integer and size parsing, glob matching for key patterns,
 * and the quoted-word splitter used by config files and inline commands.
 *
 * Everything here is pure (no I/O, no global state) and bounded by its
 * inputs: the RESP front-end feeds it bytes straight from the network, so
 * nothing may read past a length, recurse without limit or trust a
 * terminating NUL.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

int64_t srv_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t srv_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int srv_str2ll(const char *s, size_t n, long long *v)
{
	if (n == 0 || n > 20)
		return -1;
	size_t i = 0;
	int neg = 0;
	if (s[0] == '-') {
		neg = 1;
		if (++i == n)
			return -1;
	}
	if (s[i] == '0' && n - i > 1)
		return -1; /* "01" and "-0..." are not canonical integers */
	if (s[i] == '0' && neg)
		return -1;
	unsigned long long acc = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (acc > (ULLONG_MAX - d) / 10)
			return -1;
		acc = acc * 10 + d;
	}
	if (neg) {
		if (acc > (unsigned long long)LLONG_MAX + 1)
			return -1;
		*v = acc == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)acc;
	} else {
		if (acc > (unsigned long long)LLONG_MAX)
			return -1;
		*v = (long long)acc;
	}
	return 0;
}

size_t srv_ll2str(char *buf, long long v)
{
	char tmp[24];
	size_t n = 0;
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	size_t len = 0;
	if (v < 0)
		buf[len++] = '-';
	while (n)
		buf[len++] = tmp[--n];
	buf[len] = 0;
	return len;
}

int srv_memtoull(const char *s, uint64_t *v)
{
	static const struct {
		const char *suffix;
		uint64_t mul;
	} units[] = {
		{ "", 1 },
		{ "b", 1 },
		{ "k", 1000 },
		{ "kb", 1024 },
		{ "m", 1000 * 1000 },
		{ "mb", 1024 * 1024 },
		{ "g", 1000ull * 1000 * 1000 },
		{ "gb", 1024ull * 1024 * 1024 },
	};
	size_t digits = 0;
	while (s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (digits == 0 || digits > 19)
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcasecmp(s + digits, units[i].suffix))
			continue;
		uint64_t n = strtoull(s, NULL, 10);
		if (n > UINT64_MAX / units[i].mul)
			return -1;
		*v = n * units[i].mul;
		return 0;
	}
	return -1;
}

static int fold(int c, int nocase)
{
	return nocase ? tolower(c) : c;
}

/* Matches a bracket class starting after '['; *pi advances past it.
 * Returns whether c is in the class. */
static int glob_class(const char *p, size_t plen, size_t *pi, int c, int nocase)
{
	size_t i = *pi;
	int negate = 0, match = 0;
	if (i < plen && p[i] == '^') {
		negate = 1;
		i++;
	}
	for (; i < plen && p[i] != ']'; i++) {
		if (p[i] == '\\' && i + 1 < plen) {
			i++;
			match |= fold((unsigned char)p[i], nocase) == fold(c, nocase);
		} else if (i + 2 < plen && p[i + 1] == '-' && p[i + 2] != ']') {
			int lo = fold((unsigned char)p[i], nocase);
			int hi = fold((unsigned char)p[i + 2], nocase);
			if (lo > hi) {
				int t = lo;
				lo = hi;
				hi = t;
			}
			int x = fold(c, nocase);
			match |= x >= lo && x <= hi;
			i += 2;
		} else {
			match |= fold((unsigned char)p[i], nocase) == fold(c, nocase);
		}
	}
	*pi = i < plen ? i + 1 : i; /* an unclosed class ends the pattern */
	return negate ? !match : match;
}

/* Iterative matcher with one backtracking point per '*': linear in
 * practice and never recursive, so hostile patterns such as "a*a*a*...b"
 * cost O(plen * slen) at worst, not exponential time. */
int srv_glob_match(const char *p, size_t plen, const char *s, size_t slen, int nocase)
{
	size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;
	while (si < slen) {
		if (pi < plen && p[pi] == '*') {
			while (pi < plen && p[pi] == '*')
				pi++;
			if (pi == plen)
				return 1;
			star_p = pi;
			star_s = si;
			continue;
		}
		if (pi < plen) {
			int c = (unsigned char)s[si];
			size_t next = pi + 1;
			int ok;
			if (p[pi] == '?') {
				ok = 1;
			} else if (p[pi] == '[') {
				ok = glob_class(p, plen, &next, c, nocase);
			} else if (p[pi] == '\\' && pi + 1 < plen) {
				ok = fold((unsigned char)p[pi + 1], nocase) == fold(c, nocase);
				next = pi + 2;
			} else {
				ok = fold((unsigned char)p[pi], nocase) == fold(c, nocase);
			}
			if (ok) {
				pi = next;
				si++;
				continue;
			}
		}
		if (star_p == (size_t)-1)
			return 0;
		pi = star_p; /* let the last '*' swallow one more byte */
		si = ++star_s;
	}
	while (pi < plen && p[pi] == '*')
		pi++;
	return pi == plen;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Appends one byte to a growing word; 0 or -1 (ENOMEM). */
static int word_push(char **w, size_t *len, size_t *cap, char c)
{
	if (*len + 2 > *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char *nw = realloc(*w, nc);
		if (!nw)
			return -1;
		*w = nw;
		*cap = nc;
	}
	(*w)[(*len)++] = c;
	(*w)[*len] = 0;
	return 0;
}

/* Reads one word starting at line[*i] (not blank).  Returns 0, -1 for
 * unbalanced quotes, -2 for ENOMEM. */
static int split_word(const char *line, size_t len, size_t *i, char **w, size_t *wl)
{
	size_t cap = 0;
	int inq = 0, insq = 0;
	size_t p = *i;
	*w = NULL;
	*wl = 0;
	if (word_push(w, wl, &cap, 0))
		return -2;
	*wl = 0;
	for (;;) {
		if (p >= len) {
			if (inq || insq)
				return -1;
			break;
		}
		char c = line[p];
		if (inq) {
			if (c == '\\' && p + 3 < len && line[p + 1] == 'x' &&
			    hexval((unsigned char)line[p + 2]) >= 0 &&
			    hexval((unsigned char)line[p + 3]) >= 0) {
				c = (char)(hexval((unsigned char)line[p + 2]) * 16 +
				           hexval((unsigned char)line[p + 3]));
				p += 3;
			} else if (c == '\\' && p + 1 < len) {
				p++;
				switch (line[p]) {
				case 'n': c = '\n'; break;
				case 'r': c = '\r'; break;
				case 't': c = '\t'; break;
				case 'b': c = '\b'; break;
				case 'a': c = '\a'; break;
				default: c = line[p]; break;
				}
			} else if (c == '"') {
				/* a closing quote must be followed by a blank or the end */
				if (p + 1 < len && !isspace((unsigned char)line[p + 1]))
					return -1;
				p++;
				break;
			}
		} else if (insq) {
			if (c == '\\' && p + 1 < len && line[p + 1] == '\'') {
				p++;
				c = '\'';
			} else if (c == '\'') {
				if (p + 1 < len && !isspace((unsigned char)line[p + 1]))
					return -1;
				p++;
				break;
			}
		} else if (isspace((unsigned char)c)) {
			break;
		} else if (c == '"' && *wl == 0) {
			inq = 1;
			p++;
			continue;
		} else if (c == '\'' && *wl == 0) {
			insq = 1;
			p++;
			continue;
		}
		if (word_push(w, wl, &cap, c))
			return -2;
		p++;
	}
	*i = p;
	return 0;
}

char **srv_splitargs(const char *line, size_t len, int *argc, size_t **lens)
{
	char **v = NULL;
	size_t *l = NULL;
	int n = 0, cap = 0, rc = 0;
	size_t i = 0;
	for (;;) {
		while (i < len && isspace((unsigned char)line[i]))
			i++;
		if (i >= len)
			break;
		if (n == cap) {
			int nc = cap ? cap * 2 : 8;
			char **nv = realloc(v, sizeof *v * (size_t)nc);
			size_t *nl = nv ? realloc(l, sizeof *l * (size_t)nc) : NULL;
			if (nv)
				v = nv;
			if (!nv || !nl) {
				rc = -2;
				break;
			}
			l = nl;
			cap = nc;
		}
		char *w;
		size_t wl;
		rc = split_word(line, len, &i, &w, &wl);
		if (rc) {
			free(w);
			break;
		}
		v[n] = w;
		l[n++] = wl;
	}
	if (rc == 0 && !v) {
		v = malloc(sizeof *v);
		l = malloc(sizeof *l);
		if (!v || !l)
			rc = -2;
	}
	if (rc) {
		srv_freeargs(v, l, n);
		*argc = rc;
		return NULL;
	}
	*argc = n;
	if (lens)
		*lens = l;
	else
		free(l);
	return v;
}

void srv_freeargs(char **argv, size_t *lens, int argc)
{
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
	free(lens);
}

int srv_grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : first;
	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return -1;
		nc *= 2;
	}
	if (nc > SIZE_MAX / elem)
		return -1;
	void *old, *p;
	memcpy(&old, arrp, sizeof old);
	if (!(p = realloc(old, nc * elem)))
		return -1;
	memcpy(arrp, &p, sizeof p);
	*cap = nc;
	return 0;
}

int srv_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}
