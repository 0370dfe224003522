/* parse.h — the line's words and values: one line of input in, its tokens
 * and checked argument values (or an error code) out. Pure: it touches no
 * store, prints nothing and knows no command; cmd.c names the command from
 * the first token, checks its arity and says which kind each argument is.
 *
 * It applies SPEC's input rules (tokens split on spaces and tabs, a trailing
 * CR dropped, `#` at the start of a token comments out the rest, a NUL byte
 * anywhere is invalid_input, a line over PARSE_MAX_LINE is line_too_long)
 * and checks values in SPEC's order: each account id left to right, the
 * amount, then same_account. The domain rules come later, in the handler. */
#ifndef SIMPLECQRS_PARSE_H
#define SIMPLECQRS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "simplecqrs/error.h"

#define PARSE_MAX_LINE 4096	/* bytes, not counting the line ending */
#define PARSE_SLACK 8		/* readable bytes a line must have after its
				   end: tokens are found 8 bytes at a time */
#define PARSE_MAX_ID 64
#define PARSE_MAX_ARGS 3	/* arguments kept after the first token */

typedef struct parse_tokens {
	int count;		/* every token on the line; 0 if none */
	char *tok[1 + PARSE_MAX_ARGS];	/* the first ones, NUL-terminated in
					   the line */
	size_t len[1 + PARSE_MAX_ARGS];	/* and their lengths */
} parse_tokens;

typedef struct parse_result {
	int argc;		/* tokens after the first, all counted */
	const char *argv[PARSE_MAX_ARGS];	/* the first ones, in the line */
	const char *account[2];	/* the checked account ids, in order */
	size_t account_len[2];	/* and their lengths */
	int64_t amount;		/* the checked amount, if one was asked for */
	int bad;		/* on an error: the argument at fault, or -1 */
} parse_result;

/* Splits line[0..len) into tokens in place (each NUL-terminated inside the
 * line, so t points into it). line[len] must be writable, and the
 * PARSE_SLACK bytes after it readable and initialised. Returns
 * ERR_LINE_TOO_LONG or ERR_INVALID_INPUT (t->count then 0), else ERR_OK;
 * t->count is 0 for a blank or comment line. */
error_code parse_split(char *line, size_t len, parse_tokens *t);

/* Fills r with t's arguments (the tokens after the first) and checks them
 * against kinds, a letter per argument: 'a' an account id (at most two),
 * 'n' an amount, any other letter unchecked; arguments past the end of
 * kinds are kept but not checked (the caller has checked the count). With
 * the ids before the amount in kinds, one pass left to right is SPEC's
 * order; same_account (two equal ids) is checked last. */
error_code parse_values(const char *kinds, const parse_tokens *t,
			parse_result *r);

/* Whether parse_split would find line[0..len) blank or a comment (and so
 * run nothing), without touching it: the session asks before echoing a line
 * or keeping it in history. */
bool parse_blank(const char *line, size_t len);

/* 1 to 64 characters from A-Z a-z 0-9 _ - . */
bool parse_account(const char *s);
/* 1 for each byte an account id may hold (A-Z a-z 0-9 _ - .), else 0: the
 * one statement of the id set, for whoever checks or shows ids. */
extern const unsigned char parse_id_bytes[256];
/* [1-9][0-9]* up to INT64_MAX. */
bool parse_amount(const char *s, int64_t *amount);

#endif
