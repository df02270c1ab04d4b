/*
 * escape.c - bytes to text and back, for the `trove` tool.
 *
 * Keys and values are arbitrary bytes; terminals, shells and JSON are not.
 * Two output forms live here, both documented in `trove help scan`:
 *
 *   text  printable ASCII as is; \\ \t \n for backslash, tab, newline;
 *         every other byte (controls, DEL, anything >= 0x80) as \xHH.
 *         So a line never holds a raw tab or newline and the form is
 *         reversible with the decoder below.
 *   JSON  valid UTF-8 kept as is; a string that is not valid UTF-8 is
 *         written byte by byte as Latin-1 (\u00XX for bytes >= 0x80) and
 *         the caller flags it, so the bytes can be recovered exactly.
 *
 * The decoder reads the same escapes (plus \r \0 \" \' and backslash-space)
 * for `-e` arguments and for the shell's words.  Nothing here touches the
 * database.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char hexdig[] = "0123456789abcdef";

/* The text escape of byte c into out (at most 4 chars); returns the length. */
static size_t escape1(unsigned char c, char *out)
{
	if (c == '\\' || c == '\t' || c == '\n') {
		out[0] = '\\';
		out[1] = c == '\\' ? '\\' : c == '\t' ? 't' : 'n';
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = 'x';
	out[2] = hexdig[c >> 4];
	out[3] = hexdig[c & 15];
	return 4;
}

void cli_put_escaped(FILE *f, const void *p, size_t n)
{
	const unsigned char *s = p;
	char e[4];
	for (size_t i = 0; i < n; i++)
		fwrite(e, 1, escape1(s[i], e), f);
}

char *cli_escape_buf(char *buf, size_t cap, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t o = 0;
	char e[4];
	if (cap < 8) {
		if (cap)
			buf[0] = 0;
		return buf;
	}
	for (size_t i = 0; i < n; i++) {
		size_t k = escape1(s[i], e);
		if (o + k + 4 > cap) { /* room left for "..." and the NUL */
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, e, k);
		o += k;
	}
	buf[o] = 0;
	return buf;
}

/* ---- UTF-8 and JSON ----------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp, min;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		len = 2, cp = c & 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		len = 3, cp = c & 0x0f, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		len = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int cli_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;
	while (i < n) {
		size_t k = utf8_seq(s + i, n - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

int cli_put_json(FILE *f, const void *p, size_t n)
{
	const unsigned char *s = p;
	int latin1 = !cli_utf8_valid(p, n);
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20 || (latin1 && c >= 0x80))
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
	return latin1;
}

/* ---- Decoding --------------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t cli_unescape1(const char *s, size_t n, char *out)
{
	if (n < 2 || s[0] != '\\')
		return 0;
	switch (s[1]) {
	case '\\':
		*out = '\\';
		return 2;
	case 't':
		*out = '\t';
		return 2;
	case 'n':
		*out = '\n';
		return 2;
	case 'r':
		*out = '\r';
		return 2;
	case '0':
		*out = '\0';
		return 2;
	case '"':
		*out = '"';
		return 2;
	case '\'':
		*out = '\'';
		return 2;
	case ' ':
		*out = ' ';
		return 2;
	case 'x': {
		int hi = n >= 4 ? hexval(s[2]) : -1, lo = n >= 4 ? hexval(s[3]) : -1;
		if (hi < 0 || lo < 0)
			return 0;
		*out = (char)(hi << 4 | lo);
		return 4;
	}
	default:
		return 0;
	}
}

char *cli_unescape(const char *s, size_t n, size_t *outlen, long *bad)
{
	char *out = malloc(n + 1); /* decoding never grows the string */
	size_t o = 0;
	if (!out) {
		*bad = -1;
		return NULL;
	}
	for (size_t i = 0; i < n;) {
		if (s[i] != '\\') {
			out[o++] = s[i++];
			continue;
		}
		size_t k = cli_unescape1(s + i, n - i, &out[o]);
		if (!k) {
			free(out);
			*bad = (long)i;
			return NULL;
		}
		o++;
		i += k;
	}
	out[o] = 0;
	*outlen = o;
	return out;
}
