/* json.c — JSON string literals that always parse: control characters (C0,
 * DEL and C1) are escaped and invalid UTF-8 becomes U+FFFD (RFC 8259 wants
 * Unicode text). */
#include "simplecqrs/json.h"

size_t json_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and code points past U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

void json_put_string(buf *b, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	buf_reserve(b, n + 2);
	buf_putc(b, '"');
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			size_t j = i + 1;	/* copy plain runs in one go */
			while (j < n && s[j] >= 0x20 && s[j] < 0x7f &&
			       s[j] != '"' && s[j] != '\\')
				j++;
			buf_put(b, s + i, j - i);
			i = j;
			continue;
		}
		switch (c) {
		case '"': buf_puts(b, "\\\""); i++; continue;
		case '\\': buf_puts(b, "\\\\"); i++; continue;
		case '\b': buf_puts(b, "\\b"); i++; continue;
		case '\f': buf_puts(b, "\\f"); i++; continue;
		case '\n': buf_puts(b, "\\n"); i++; continue;
		case '\r': buf_puts(b, "\\r"); i++; continue;
		case '\t': buf_puts(b, "\\t"); i++; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			buf_put(b, esc, sizeof esc);
			i++;
			continue;
		}
		size_t len = json_utf8_len(s + i, n - i);
		if (len == 0) {
			buf_puts(b, "\\ufffd");
			i++;
		} else if (len == 2 && c == 0xc2 && s[i + 1] < 0xa0) {
			/* C1 controls (U+009B is CSI): valid JSON raw, but
			 * a line shown on a terminal must not carry them */
			char esc[6] = { '\\', 'u', '0', '0', hex[s[i + 1] >> 4],
					hex[s[i + 1] & 15] };
			buf_put(b, esc, sizeof esc);
			i += 2;
		} else {
			buf_put(b, s + i, len);
			i += len;
		}
	}
	buf_putc(b, '"');
}

void json_put_cstring(buf *b, const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	json_put_string(b, s, n);
}
