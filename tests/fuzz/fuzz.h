/* fuzz.h — what the fuzz targets share: the libFuzzer entry point, a failed
 * check that aborts (so libFuzzer and the replay driver both see it), and a
 * strict JSON checker written apart from json.c, so the writer is checked
 * against RFC 8259 and Unicode's own table, not against itself. */
#ifndef SIMPLECQRS_FUZZ_H
#define SIMPLECQRS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: check failed: %s: ",	\
				__FILE__, __LINE__, #cond);		\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			abort();					\
		}							\
	} while (0)

/* ---- UTF-8, from Unicode's table of well-formed byte sequences ---- */

/* Length of the well-formed sequence at s[0..n), 0 if there is none. */
static inline size_t fuzz_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;	/* the second byte's range */
	size_t len;
	if (c <= 0x7f)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* The code point of a well-formed sequence of len bytes. */
static inline uint32_t fuzz_utf8_cp(const unsigned char *s, size_t len)
{
	if (len == 1)
		return s[0];
	uint32_t cp = s[0] & (0xff >> (len + 1));
	for (size_t i = 1; i < len; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

static inline bool fuzz_utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = fuzz_utf8_len(s + i, n - i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

static inline size_t fuzz_utf8_put(unsigned char *dst, uint32_t cp)
{
	if (cp < 0x80) {
		dst[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		dst[0] = (unsigned char)(0xc0 | cp >> 6);
		dst[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		dst[0] = (unsigned char)(0xe0 | cp >> 12);
		dst[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		dst[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	dst[0] = (unsigned char)(0xf0 | cp >> 18);
	dst[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	dst[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	dst[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* What a JSON string of s[0..n) must decode to, per json.h: the bytes as
 * they are, except that each byte not part of a well-formed sequence
 * becomes U+FFFD. dst needs room for 3 * n bytes; returns the length. */
static inline size_t fuzz_json_expect(const unsigned char *s, size_t n,
				      unsigned char *dst)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t l = fuzz_utf8_len(s + i, n - i);
		if (l == 0) {
			memcpy(dst + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(dst + o, s + i, l);
			o += l;
			i += l;
		}
	}
	return o;
}

/* Whether text mode may show cp: not C0 but LF and tab, not DEL, and not
 * C1 (U+0080..U+009F: U+009B is CSI to xterm and VTE). While a known C1
 * leak is being fixed, FUZZ_ALLOW_C1=1 lets fuzzing look for other bugs. */
static inline bool fuzz_text_ok(uint32_t cp)
{
	static int allow_c1 = -1;
	if (allow_c1 < 0)
		allow_c1 = getenv("FUZZ_ALLOW_C1") != NULL;
	if (cp == '\n' || cp == '\t' || (cp >= 0x20 && cp < 0x7f) || cp >= 0xa0)
		return true;
	return allow_c1 && cp >= 0x80;
}

/* ---- a strict JSON checker (RFC 8259) ---- */

#define FUZZ_JSON_DEPTH 32
#define FUZZ_JSON_MEMBERS 16

typedef struct fuzz_member {
	char key[32];		/* the top-level key, decoded ("" if longer) */
	const char *value;	/* its value's text in the line */
	size_t value_len;
} fuzz_member;

typedef struct fuzz_json {
	const unsigned char *p, *end;
	int depth;
	fuzz_member members[FUZZ_JSON_MEMBERS];	/* of the top-level object */
	size_t nmembers;
} fuzz_json;

static inline bool fuzz_json_value(fuzz_json *j);

static inline void fuzz_json_ws(fuzz_json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
				 *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static inline int fuzz_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at p (p has at least 4 bytes), or -1. */
static inline long fuzz_hex4(const unsigned char *p)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int d = fuzz_hex(p[i]);
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* A string at j->p. With dst, its decoded bytes go there (room for as many
 * bytes as the literal has) and *out_len is set. Lone surrogates are
 * refused: RFC 8259 leaves them undefined, and the writer never makes one. */
static inline bool fuzz_json_string(fuzz_json *j, unsigned char *dst,
				    size_t *out_len)
{
	size_t o = 0;
	if (j->p >= j->end || *j->p != '"')
		return false;
	j->p++;
	for (;;) {
		if (j->p >= j->end)
			return false;
		unsigned char c = *j->p;
		if (c == '"') {
			j->p++;
			break;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (j->end - j->p < 2)
				return false;
			unsigned char e = j->p[1], d;
			j->p += 2;
			switch (e) {
			case '"': d = '"'; break;
			case '\\': d = '\\'; break;
			case '/': d = '/'; break;
			case 'b': d = '\b'; break;
			case 'f': d = '\f'; break;
			case 'n': d = '\n'; break;
			case 'r': d = '\r'; break;
			case 't': d = '\t'; break;
			case 'u': {
				if (j->end - j->p < 4)
					return false;
				long cp = fuzz_hex4(j->p);
				if (cp < 0)
					return false;
				j->p += 4;
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return false;
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (j->end - j->p < 6 || j->p[0] != '\\' ||
					    j->p[1] != 'u')
						return false;
					long lo = fuzz_hex4(j->p + 2);
					if (lo < 0xdc00 || lo > 0xdfff)
						return false;
					j->p += 6;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				if (dst)
					o += fuzz_utf8_put(dst + o, (uint32_t)cp);
				continue;
			}
			default:
				return false;
			}
			if (dst)
				dst[o++] = d;
			continue;
		}
		size_t l = fuzz_utf8_len(j->p, (size_t)(j->end - j->p));
		if (l == 0)
			return false;
		if (dst)
			memcpy(dst + o, j->p, l);
		o += l;
		j->p += l;
	}
	if (out_len)
		*out_len = o;
	return true;
}

static inline bool fuzz_json_digits(fuzz_json *j)
{
	const unsigned char *start = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > start;
}

static inline bool fuzz_json_number(fuzz_json *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (j->p >= j->end || *j->p < '1' || *j->p > '9' || !fuzz_json_digits(j))
		return false;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!fuzz_json_digits(j))
			return false;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!fuzz_json_digits(j))
			return false;
	}
	return true;
}

static inline bool fuzz_json_word(fuzz_json *j, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
		return false;
	j->p += n;
	return true;
}

static inline bool fuzz_json_object(fuzz_json *j)
{
	bool top = j->depth == 1;
	j->p++;	/* { */
	fuzz_json_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return true;
	}
	for (;;) {
		fuzz_json_ws(j);
		const unsigned char *key = j->p;
		unsigned char dec[32];
		size_t dec_len = 0;
		if (!fuzz_json_string(j, NULL, NULL))
			return false;
		bool small = j->p - key <= 30;	/* decodes to at most 30 bytes */
		if (small) {
			const unsigned char *after = j->p;
			j->p = key;
			fuzz_json_string(j, dec, &dec_len);
			j->p = after;
		}
		if (top) {
			if (j->nmembers == FUZZ_JSON_MEMBERS)
				return false;	/* no result line has so many */
			fuzz_member *m = &j->members[j->nmembers++];
			if (small && dec_len < sizeof m->key && !memchr(dec, 0, dec_len)) {
				memcpy(m->key, dec, dec_len);
				m->key[dec_len] = '\0';
			} else {
				m->key[0] = '\0';
			}
			for (size_t i = 0; i + 1 < j->nmembers; i++)
				if (m->key[0] && strcmp(j->members[i].key, m->key) == 0)
					return false;	/* a key twice */
		}
		fuzz_json_ws(j);
		if (j->p >= j->end || *j->p != ':')
			return false;
		j->p++;
		fuzz_json_ws(j);
		const unsigned char *v = j->p;
		if (!fuzz_json_value(j))
			return false;
		if (top) {
			j->members[j->nmembers - 1].value = (const char *)v;
			j->members[j->nmembers - 1].value_len = (size_t)(j->p - v);
		}
		fuzz_json_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return true;
		}
		return false;
	}
}

static inline bool fuzz_json_array(fuzz_json *j)
{
	j->p++;	/* [ */
	fuzz_json_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return true;
	}
	for (;;) {
		fuzz_json_ws(j);
		if (!fuzz_json_value(j))
			return false;
		fuzz_json_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return true;
		}
		return false;
	}
}

static inline bool fuzz_json_value(fuzz_json *j)
{
	if (j->p >= j->end)
		return false;
	bool ok;
	switch (*j->p) {
	case '{':
		if (++j->depth > FUZZ_JSON_DEPTH)
			return false;
		ok = fuzz_json_object(j);
		j->depth--;
		return ok;
	case '[':
		if (++j->depth > FUZZ_JSON_DEPTH)
			return false;
		ok = fuzz_json_array(j);
		j->depth--;
		return ok;
	case '"':
		return fuzz_json_string(j, NULL, NULL);
	case 't':
		return fuzz_json_word(j, "true");
	case 'f':
		return fuzz_json_word(j, "false");
	case 'n':
		return fuzz_json_word(j, "null");
	default:
		return fuzz_json_number(j);
	}
}

/* Whether s[0..n) is exactly one JSON object (and nothing after it); its
 * top-level members are kept in j. */
static inline bool fuzz_json_line(fuzz_json *j, const char *s, size_t n)
{
	memset(j, 0, sizeof *j);
	j->p = (const unsigned char *)s;
	j->end = j->p + n;
	fuzz_json_ws(j);
	if (j->p >= j->end || *j->p != '{' || !fuzz_json_value(j))
		return false;
	fuzz_json_ws(j);
	return j->p == j->end;
}

/* The top-level member named key, or NULL. */
static inline const fuzz_member *fuzz_json_get(const fuzz_json *j,
					       const char *key)
{
	for (size_t i = 0; i < j->nmembers; i++)
		if (strcmp(j->members[i].key, key) == 0)
			return &j->members[i];
	return NULL;
}

/* A member's value as a string, decoded into dst (room for value_len
 * bytes); false if it is not a string. */
static inline bool fuzz_json_get_string(const fuzz_member *m, unsigned char *dst,
					size_t *out_len)
{
	fuzz_json j = { .p = (const unsigned char *)m->value,
			.end = (const unsigned char *)m->value + m->value_len };
	return fuzz_json_string(&j, dst, out_len) && j.p == j.end;
}

/* Whether a member's value is the text lit exactly. */
static inline bool fuzz_json_is(const fuzz_member *m, const char *lit)
{
	return m && m->value_len == strlen(lit) &&
	       memcmp(m->value, lit, m->value_len) == 0;
}

/* A member's value as an unsigned integer (digits only), or false. */
static inline bool fuzz_json_get_u64(const fuzz_member *m, uint64_t *v)
{
	if (m == NULL || m->value_len == 0 || m->value_len > 20)
		return false;
	uint64_t x = 0;
	for (size_t i = 0; i < m->value_len; i++) {
		unsigned d = (unsigned char)m->value[i] - (unsigned)'0';
		if (d > 9 || __builtin_mul_overflow(x, 10, &x) ||
		    __builtin_add_overflow(x, d, &x))
			return false;
	}
	*v = x;
	return true;
}

#endif
