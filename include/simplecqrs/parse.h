/* parse.h — the line parser: one line of input in, a checked command or an
 * error code out. Pure: it touches no store and prints nothing; it reads
 * the command table (cmd.h) for names, arity and argument kinds.
 *
 * It applies SPEC's input rules (tokens split on spaces and tabs, a trailing
 * CR dropped, `#` at the start of a token comments out the rest, keywords
 * case-insensitive) and checks a command in SPEC's order: argument count,
 * each account id left to right, the amount, then same_account. The domain
 * rules come later, in the handler. */
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
#define PARSE_MAX_ARGS 3

struct cmd_entry;

typedef struct parse_result {
	const struct cmd_entry *cmd;	/* set once the name is known, even if an
					   argument is then wrong; NULL for a
					   blank line or an unknown command */
	const char *name;	/* the command's name, lower-case; "" if none */
	int argc;		/* arguments after the name, all counted */
	const char *argv[PARSE_MAX_ARGS];	/* the first ones, in the line */
	const char *account[2];	/* the checked account ids, in order */
	size_t account_len[2];	/* and their lengths */
	int64_t amount;		/* the checked amount, if the command has one */
	int bad;		/* on an error: the argument at fault, or -1 */
} parse_result;

/* Parses line[0..len) in place: tokens are NUL-terminated inside the line,
 * so res points into it. line[len] must be writable, and the PARSE_SLACK
 * bytes after it readable and initialised. res->name is the command's name
 * from the table, or for an unknown one the first token lower-cased in
 * place. Returns ERR_OK with res->cmd NULL for a blank or comment line. */
error_code parse_line(char *line, size_t len, parse_result *res);

/* Whether parse_line would find line[0..len) blank or a comment (and so
 * run nothing), without touching it: the shell asks before echoing a line
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
