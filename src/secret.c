/* secret.c — passwords are never shown: a store's URI masked for people,
 * and messages that may quote connection text scrubbed of every form of
 * a password the URI holds. Knows URIs and strings, not stores.
 *
 * A password can reach people through the URI itself (status, the open
 * error) or through libpq's and the server's messages, which quote what
 * they could not parse ("invalid integer value "hunter2" for connection
 * option "port""). So the URI is masked where its passwords sit, and every
 * message that can carry connection text is scrubbed of every string that
 * may be (part of) a password: what libpq takes for one, what the user may
 * have meant by one (a password holding '/' or '@' that libpq splits), raw
 * and %-decoded. Masking too much is a cosmetic fault; too little is not. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "simplecqrs/buf.h"
#include "simplecqrs/xmalloc.h"
#include "secret.h"

/* A postgresql: or postgres: scheme (any case, any number of slashes,
 * as in the one-slash typo postgresql:/u:pw@host/db): the length of the
 * scheme and its slashes, else 0. */
static size_t pg_scheme(const char *uri)
{
	size_t n = strncasecmp(uri, "postgresql:", 11) == 0 ? 11
		 : strncasecmp(uri, "postgres:", 9) == 0 ? 9 : 0;
	while (n && uri[n] == '/')
		n++;
	return n;
}

/* s[0..len) with valid %XX escapes decoded (invalid ones kept, as typed). */
static char *pct_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			char hex[3] = { s[i + 1], s[i + 2], '\0' };
			out[n++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = '\0';
	return out;
}

/* A URI parameter's or conninfo keyword's key, %-decoded and in any case,
 * ends with "password": password, sslpassword, pass%77ord, PASSWORD, … */
static bool secret_key(const char *key, size_t len)
{
	char *plain = pct_decode(key, len);
	size_t n = strlen(plain);
	bool yes = n >= 8 && strncasecmp(plain + n - 8, "password", 8) == 0;
	free(plain);
	return yes;
}

#define SECRETS_MAX 64

typedef struct secrets {
	char *s[SECRETS_MAX];
	size_t n;
} secrets;

static void secret_keep(secrets *z, char *s)
{
	if (s[0] == '\0' || z->n == SECRETS_MAX) {
		free(s);
		return;
	}
	for (size_t i = 0; i < z->n; i++)
		if (strcmp(z->s[i], s) == 0) {
			free(s);
			return;
		}
	z->s[z->n++] = s;
}

/* Adds s[0..len) raw and %-decoded, and each of their pieces between the
 * characters libpq splits a URI at (so the "hunter2" it takes for a port
 * out of "bob:hunter2/x@host" goes too), pieces of 4 bytes or more. */
static void secret_add(secrets *z, const char *s, size_t len)
{
	if (len == 0)
		return;
	char *forms[2] = { xstrndup(s, len), pct_decode(s, len) };
	for (int f = 0; f < 2; f++) {
		const char *p = forms[f];
		while (*p) {
			size_t piece = strcspn(p, "/?@:,&=#%[]'\"\\ ");
			if (piece >= 4 && piece < strlen(forms[f]))
				secret_keep(z, xstrndup(p, piece));
			p += piece;
			if (*p)
				p++;
		}
	}
	secret_keep(z, forms[0]);
	secret_keep(z, forms[1]);
}

/* Where a password's value is in uri, if anywhere: [*start, *end) of the
 * userinfo's ":password" (the colon included), reaching to the last '@'
 * after it, or both NULL. */
static void userinfo_password(const char *uri, const char **start,
			      const char **end)
{
	*start = *end = NULL;
	size_t skip = pg_scheme(uri);
	if (skip == 0)
		return;
	/* the user name runs to the first ':' or '@', as libpq reads it */
	const char *user = uri + skip, *p = user + strcspn(user, ":@/");
	if (*p != ':')
		return;
	const char *at = strrchr(p, '@');
	if (at) {
		*start = p;
		*end = at;
	}
}

/* [key=]value spans of every parameter whose key says password: URI query
 * parameters (to '&') or, in a string that is no URI, conninfo keywords
 * (to white space, or a quoted value). Calls fn for each value span. */
typedef void (*value_fn)(void *ctx, const char *value, size_t len, bool quoted);

static void each_secret_value(const char *s, value_fn fn, void *ctx)
{
	bool uri = pg_scheme(s) != 0;
	for (const char *eq = strchr(s, '='); eq; eq = strchr(eq + 1, '=')) {
		const char *k = eq;
		while (k > s && k[-1] == ' ' && !uri)
			k--;
		const char *key_end = k;
		while (k > s && (isalnum((unsigned char)k[-1]) || k[-1] == '_' ||
				 k[-1] == '%'))
			k--;
		if (k == key_end || (k > s && k[-1] != '?' && k[-1] != '&' &&
				     !isspace((unsigned char)k[-1])) ||
		    !secret_key(k, (size_t)(key_end - k)))
			continue;
		const char *v = eq + 1;
		while (!uri && *v == ' ')
			v++;
		size_t len;
		bool quoted = !uri && *v == '\'';
		if (quoted) {
			const char *q = v + 1;
			while (*q && *q != '\'')
				q += q[0] == '\\' && q[1] ? 2 : 1;
			len = (size_t)(q - v) + (*q == '\'');
		} else {
			len = uri ? strcspn(v, "&") : strcspn(v, " \t\n\r\f\v");
		}
		fn(ctx, v, len, quoted);
	}
}

static void add_value(void *ctx, const char *v, size_t len, bool quoted)
{
	secrets *z = ctx;
	if (quoted && len >= 1) {	/* 'it\'s' is the password it's */
		char *plain = xmalloc(len + 1);
		size_t n = 0;
		for (size_t i = 1; i < len && v[i] != '\'' ; i++) {
			if (v[i] == '\\' && i + 1 < len)
				i++;
			plain[n++] = v[i];
		}
		plain[n] = '\0';
		secret_add(z, plain, n);
		free(plain);
	}
	secret_add(z, v, len);
}

static void find_secrets(const char *uri, const char *extra, secrets *z)
{
	z->n = 0;
	const char *start, *end;
	userinfo_password(uri, &start, &end);
	if (start) {
		/* what the user may mean (to any '@' after the colon) and what
		 * libpq takes (to the first) */
		for (const char *at = start + 1; at && at <= end; at = strchr(at + 1, '@'))
			if (*at == '@')
				secret_add(z, start + 1, (size_t)(at - start - 1));
	}
	each_secret_value(uri, add_value, z);
	if (extra)
		secret_add(z, extra, strlen(extra));
}

static void free_secrets(secrets *z)
{
	for (size_t i = 0; i < z->n; i++)
		free(z->s[i]);
	z->n = 0;
}

static int longer_first(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return la < lb ? 1 : la > lb ? -1 : 0;
}

/* b with every secret of z replaced by ***, longest first (so a piece
 * never leaves the rest of its password behind). */
static void scrub_buf(buf *b, secrets *z)
{
	qsort(z->s, z->n, sizeof *z->s, longer_first);
	for (size_t i = 0; i < z->n; i++) {
		const char *secret = z->s[i];
		size_t len = strlen(secret);
		buf out = { 0 };
		const char *p = b->len ? buf_cstr(b) : "";
		for (const char *hit; (hit = strstr(p, secret)) != NULL; p = hit + len) {
			buf_put(&out, p, (size_t)(hit - p));
			buf_puts(&out, "***");
		}
		buf_puts(&out, p);
		buf_free(b);
		*b = out;
	}
}

typedef struct spans {
	const char *uri;
	buf offsets;	/* pairs of size_t: where a value starts, its length */
} spans;

static void mask_value(void *ctx, const char *v, size_t len, bool quoted)
{
	(void)quoted;
	spans *sp = ctx;
	size_t span[2] = { (size_t)(v - sp->uri), len };
	buf_put(&sp->offsets, span, sizeof span);
}

void secret_scrub(const char *uri, const char *extra, char *text, size_t text_len)
{
	secrets z;
	find_secrets(uri, extra, &z);
	buf b = { 0 };
	buf_puts(&b, text);
	scrub_buf(&b, &z);
	snprintf(text, text_len, "%s", b.len ? buf_cstr(&b) : "");
	buf_free(&b);
	free_secrets(&z);
}

void secret_safe_uri(const char *uri, char *out, size_t out_len)
{
	/* the userinfo's password goes (user:pw@host becomes user@host), each
	 * password parameter's value becomes ***, and then any other trace of
	 * them */
	const char *start, *end;
	userinfo_password(uri, &start, &end);
	spans sp = { .uri = uri };
	buf b = { 0 };
	each_secret_value(uri, mask_value, &sp);
	const size_t *span = (const size_t *)(void *)sp.offsets.data;
	size_t nspans = sp.offsets.len / (2 * sizeof *span);
	const char *p = uri;
	for (size_t i = 0; i <= nspans; i++) {
		const char *v = uri + (i < nspans ? span[2 * i] : strlen(uri));
		if (start && start >= p && start <= v) {	/* the userinfo first */
			buf_put(&b, p, (size_t)(start - p));
			p = end;
		}
		if (v < p)	/* a "parameter" inside the userinfo: gone with it */
			continue;
		buf_put(&b, p, (size_t)(v - p));
		if (i < nspans) {
			buf_puts(&b, "***");
			p = v + span[2 * i + 1];
		}
	}
	buf_free(&sp.offsets);
	secrets z;
	find_secrets(uri, NULL, &z);
	scrub_buf(&b, &z);
	free_secrets(&z);
	snprintf(out, out_len, "%s", b.len ? buf_cstr(&b) : "");
	buf_free(&b);
}
