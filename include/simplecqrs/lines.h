/* lines.h — reading lines from a file descriptor in large blocks.
 *
 * Memory stays bounded whatever the input: a line longer than the limit
 * given to lines_new is skipped to its newline without being kept, and
 * reported as too long. The LF is not part of the line (a CR before it is,
 * for the parser to drop, and does not count toward the limit); the last
 * line may lack its newline. A non-blocking descriptor (one shared with a
 * program that set O_NONBLOCK) is waited on with poll(2), as a blocking one
 * would be. */
#ifndef SIMPLECQRS_LINES_H
#define SIMPLECQRS_LINES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct lines lines;

typedef struct lines_line {
	char *text;		/* inside the reader's buffer; valid until the
				   next call; may be modified, text[len] too */
	size_t len;
	bool too_long;		/* text is empty: the line was skipped */
} lines_line;

/* The fd is borrowed, not closed. Lines of up to max_len bytes (plus a CR)
 * are handed over; after each, text[len] is writable and the slack bytes
 * past it readable and initialised (the session passes PARSE_MAX_LINE
 * and PARSE_SLACK). A max_len too big for the reader's 1 MiB block is cut to
 * fit. before_read, if not NULL, is called just before each read(2) that
 * may block: the moment to flush output, so a program talking to the shell
 * line by line gets each answer at once; and again when a signal cut a
 * read short. If it returns false the input ends there, as at its end
 * (lines not yet handed over are dropped). */
lines *lines_new(int fd, size_t max_len, size_t slack,
		 bool (*before_read)(void *ctx), void *ctx);
void lines_free(lines *r);
/* 1 and *line set, 0 at end of input, -1 on a read error (errno set). */
int lines_next(lines *r, lines_line *line);

#endif
