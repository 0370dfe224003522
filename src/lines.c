/* lines.c — a line reader over a file descriptor, in 1 MiB blocks.
 *
 * The buffer never grows: a line that does not fit the limit is dropped as
 * it streams past (only its verdict, too long, is kept), so a 1 GiB line
 * costs no more memory than a short one. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "simplecqrs/lines.h"
#include "simplecqrs/xmalloc.h"

#define BLOCK (1024 * 1024)

struct lines {
	int fd;
	bool (*before_read)(void *ctx);
	void *ctx;
	size_t keep;		/* the longest line kept: the limit, plus a
				   CR the parser drops */
	char *buf;		/* BLOCK bytes, one kept free for a NUL, then
				   the slack: zeroes the parser may read */
	size_t start, end;	/* unread bytes */
	bool eof;
	bool skipping;		/* inside a line already known too long */
};

lines *lines_new(int fd, size_t max_len, size_t slack,
		 bool (*before_read)(void *ctx), void *ctx)
{
	if (max_len > BLOCK - 3)
		max_len = BLOCK - 3;	/* the line, its CR and the NUL fit */
	lines *r = xcalloc(1, sizeof *r);
	r->fd = fd;
	r->keep = max_len + 1;
	r->before_read = before_read;
	r->ctx = ctx;
	r->buf = xcalloc(1, BLOCK + slack);	/* all of it initialised */
	return r;
}

void lines_free(lines *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	free(r);
}

/* After a failed read: true if it only said "not yet" (EAGAIN on a
 * descriptor left non-blocking by whoever shares it) and the wait is over. */
static bool wait_readable(int fd)
{
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return false;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int rc;
	while ((rc = poll(&pfd, 1, -1)) < 0 && errno == EINTR)
		;
	return rc >= 0;	/* ready, or an error the next read reports */
}

static int give(lines_line *line, char *text, size_t len, bool too_long)
{
	line->text = text;
	line->len = len;
	line->too_long = too_long;
	return 1;
}

int lines_next(lines *r, lines_line *line)
{
	for (;;) {
		char *p = r->buf + r->start;
		size_t pending = r->end - r->start;
		char *nl = memchr(p, '\n', pending);
		if (nl) {
			size_t len = (size_t)(nl - p);
			r->start += len + 1;
			if (r->skipping || len > r->keep) {
				r->skipping = false;
				*p = '\0';
				return give(line, p, 0, true);
			}
			return give(line, p, len, false);
		}
		if (r->skipping || pending > r->keep) {
			r->skipping = true;	/* drop what is buffered */
			pending = 0;
		}
		if (r->eof) {
			r->start = r->end = 0;
			if (r->skipping) {
				r->skipping = false;
				r->buf[0] = '\0';
				return give(line, r->buf, 0, true);
			}
			if (pending == 0)
				return 0;
			/* the last line, without its newline: buf has room
			 * for the NUL the parser may write at text[len] */
			return give(line, p, pending, false);
		}
		memmove(r->buf, p, pending);
		r->start = 0;
		r->end = pending;
		ssize_t n;
		do {
			if (r->before_read && !r->before_read(r->ctx)) {
				r->eof = true;	/* ended here: drop the rest */
				r->start = r->end = 0;
				r->skipping = false;
				return 0;
			}
			n = read(r->fd, r->buf + r->end, BLOCK - 1 - r->end);
		} while (n < 0 && (errno == EINTR || wait_readable(r->fd)));
		if (n < 0)
			return -1;
		if (n == 0)
			r->eof = true;
		r->end += (size_t)n;
	}
}
