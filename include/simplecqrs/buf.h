/* buf.h — a growable byte buffer.
 *
 * The output module builds every result line in one of these and writes it
 * with a single write(2). data is not NUL-terminated unless buf_cstr() is
 * called. A zeroed buf is a valid empty buffer. */
#ifndef SIMPLECQRS_BUF_H
#define SIMPLECQRS_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct buf {
	char *data;
	size_t len;
	size_t cap;
} buf;

void buf_free(buf *b);
/* The slow path of buf_reserve: grows the buffer. */
void buf_grow(buf *b, size_t extra);

/* Makes room for extra more bytes (and one more, for buf_cstr). The small
 * appenders below are inline: every result line goes through them. */
static inline void buf_reserve(buf *b, size_t extra)
{
	if (b->cap - b->len <= extra)
		buf_grow(b, extra);
}

static inline void buf_put(buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

static inline void buf_putc(buf *b, char c)
{
	buf_reserve(b, 1);
	b->data[b->len++] = c;
}

static inline void buf_puts(buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

void buf_put_u64(buf *b, uint64_t v);
void buf_put_i64(buf *b, int64_t v);
/* Appends n copies of c. */
void buf_fill(buf *b, char c, size_t n);
void buf_printf(buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* NUL-terminates (without counting the NUL in len) and returns data. */
const char *buf_cstr(buf *b);

/* Decimal digits of v written to out, which must have room for 20 bytes;
 * returns the number of digits (only those are written). */
size_t buf_fmt_u64(char *out, uint64_t v);

#endif
