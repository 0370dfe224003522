/* buf.c — a growable byte buffer; grows by doubling, never shrinks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "simplecqrs/buf.h"
#include "simplecqrs/xmalloc.h"

void buf_free(buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void buf_grow(buf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len <= extra) {
		if (cap > SIZE_MAX / 2)
			cap = SIZE_MAX;	/* xrealloc will fail cleanly */
		else
			cap *= 2;
	}
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void buf_fill(buf *b, char c, size_t n)
{
	buf_reserve(b, n);
	memset(b->data + b->len, c, n);
	b->len += n;
}

/* The number of decimal digits of v. The bit length gives it to within
 * one (1233 / 4096 is just under log10 2); a table of powers of ten
 * settles it. The table starts at 0, not 1: every number, 0 too, has at
 * least one digit. */
static size_t digits(uint64_t v)
{
	static const uint64_t pow10[20] = {
		0, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
		10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
		100000000000ull, 1000000000000ull, 10000000000000ull,
		100000000000000ull, 1000000000000000ull, 10000000000000000ull,
		100000000000000000ull, 1000000000000000000ull,
		10000000000000000000ull,
	};
	size_t bits = 64 - (size_t)__builtin_clzll(v | 1);
	size_t t = (bits * 1233) >> 12;
	return t + (v >= pow10[t]);
}

size_t buf_fmt_u64(char *out, uint64_t v)
{
	/* the length first, then digits straight into place from the end: no
	 * scratch copy. Below 2^32 (every position and version in practice)
	 * the arithmetic is 32-bit, whose divisions by a constant are a
	 * multiply and a shift, and four digits come from one division. */
	static const char pairs[] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	size_t n = digits(v);
	char *p = out + n;
	while (v > UINT32_MAX) {
		p -= 2;
		memcpy(p, pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	uint32_t x = (uint32_t)v;
	while (x >= 10000) {
		uint32_t q = x / 10000, r = x % 10000;
		uint32_t hi = r / 100, lo = r % 100;
		p -= 4;
		memcpy(p, pairs + 2 * hi, 2);
		memcpy(p + 2, pairs + 2 * lo, 2);
		x = q;
	}
	if (x >= 100) {
		uint32_t q = x / 100;
		p -= 2;
		memcpy(p, pairs + 2 * (x - q * 100), 2);
		x = q;
	}
	if (x >= 10)
		memcpy(p - 2, pairs + 2 * x, 2);
	else
		p[-1] = (char)('0' + x);
	return n;
}

void buf_put_u64(buf *b, uint64_t v)
{
	buf_reserve(b, 20);
	b->len += buf_fmt_u64(b->data + b->len, v);
}

void buf_put_i64(buf *b, int64_t v)
{
	if (v < 0) {
		buf_putc(b, '-');
		buf_put_u64(b, (uint64_t)0 - (uint64_t)v);
	} else {
		buf_put_u64(b, (uint64_t)v);
	}
}

void buf_printf(buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

const char *buf_cstr(buf *b)
{
	buf_reserve(b, 1);
	b->data[b->len] = '\0';
	return b->data;
}
