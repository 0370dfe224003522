/* cmd.h — the commands: their table, reading a line as one of them, and
 * running it.
 *
 * cmd.c owns the table (an array of pointers to one const cmd_entry per
 * command, each in its own src/cmd_NAME.c; help, which reads the table,
 * lives beside it), finding a command by name (a perfect hash over the
 * names), checking its arity, handing its arguments' kinds to the parser
 * (parse.h: tokens and values only), and reporting a line that does not
 * parse. Each entry's exec reads like the picture: command → handler →
 * store → balance sheet → output. A new command is one file, its entry
 * named in cmd.c's table (its extern and its pointer, as tmux does) and one
 * line in src/meson.build. */
#ifndef SIMPLECQRS_CMD_H
#define SIMPLECQRS_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "simplecqrs/handler.h"
#include "simplecqrs/out.h"
#include "simplecqrs/parse.h"
#include "simplecqrs/sheet.h"
#include "simplecqrs/store.h"

typedef enum cmd_status {
	CMD_OK,		/* done (or nothing to do) */
	CMD_FAILED,	/* the command failed and changed nothing */
	CMD_QUIT,	/* quit or exit: run no more input */
	CMD_FATAL,	/* the store failed: acknowledge nothing more */
} cmd_status;

typedef struct cmd_ctx {
	store *store;
	handler *handler;
	sheet *sheet;
	out *out;
	unsigned long line;	/* the input line being run; 0 for none */
} cmd_ctx;

typedef struct cmd_entry cmd_entry;

/* A line read as a command: what cmd_parse found. */
typedef struct cmd_parsed {
	const cmd_entry *cmd;	/* set once the name is known, even if an
				   argument is then wrong; NULL for a blank
				   line or an unknown command */
	const char *name;	/* the command's name, lower-case; "" if none */
	parse_result arg;	/* its arguments, counted, kept and checked */
} cmd_parsed;

struct cmd_entry {
	const char *name;	/* lower-case, at most 8 bytes */
	int min_args;
	int max_args;
	const char *args;	/* a letter per argument: a account, n amount,
				   c command name, f file name */
	const char *usage;
	const char *summary;
	const char *example;
	/* runs it: self is this entry, arg its checked arguments */
	cmd_status (*exec)(cmd_ctx *ctx, const cmd_entry *self,
			   const parse_result *arg);
};

/* Every command, in the order help lists them. */
extern const cmd_entry *const cmd_table[];
extern const size_t cmd_table_len;

/* The entry named name, in any case, or NULL. */
const cmd_entry *cmd_find(const char *name);
/* The command nearest to an unknown name, or NULL if none is near. */
const cmd_entry *cmd_suggest(const char *name);

/* Reads line[0..len) as a command, in place (parse_split's terms: line[len]
 * writable, PARSE_SLACK readable bytes after it). Checks in SPEC's order:
 * the line itself (too long, NUL), the command's name, its argument count,
 * then the values (parse_values). Returns ERR_OK with res->cmd NULL for a
 * blank or comment line. For an unknown command res->name is the first
 * token, lower-cased in place. */
error_code cmd_parse(char *line, size_t len, cmd_parsed *res);
/* Parses line[0..len) (modifying it), runs it and writes its result. */
cmd_status cmd_run(cmd_ctx *ctx, char *line, size_t len);
/* Reports a line the reader could not hand over whole. */
cmd_status cmd_reject(cmd_ctx *ctx, error_code code);

#endif
