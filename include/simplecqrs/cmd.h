/* cmd.h — the command table, and running one line through it.
 *
 * One row per command: its name, arity, argument kinds, usage, summary,
 * example and exec function. The parser checks arity and arguments from the
 * row, help prints from it, and the shell completes from it; a new command
 * is one exec function and one row. Each exec reads like the picture:
 * command → handler → store → balance sheet → output. */
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

typedef struct cmd_entry {
	const char *name;
	int min_args;
	int max_args;
	const char *args;	/* a letter per argument: a account, n amount,
				   c command name, f file name */
	const char *usage;
	const char *summary;
	const char *example;
	cmd_status (*exec)(cmd_ctx *ctx, const parse_result *p);
} cmd_entry;

extern const cmd_entry cmd_table[];
extern const size_t cmd_table_len;

/* The row named name, in any case, or NULL. */
const cmd_entry *cmd_find(const char *name);
/* The same for name[0..len). */
const cmd_entry *cmd_find_len(const char *name, size_t len);
/* The same for a name of 1 to 8 bytes given as one little-endian word,
 * every byte or-ed with 0x20 and the unused bytes zero. */
const cmd_entry *cmd_find_word(uint64_t word);
/* The command nearest to an unknown name, or NULL if none is near. */
const cmd_entry *cmd_suggest(const char *name);

/* Parses line[0..len) (modifying it), runs it and writes its result. */
cmd_status cmd_run(cmd_ctx *ctx, char *line, size_t len);
/* Reports a line the reader could not hand over whole. */
cmd_status cmd_reject(cmd_ctx *ctx, error_code code);

#endif
