/* out.h — how results look: text for people, or one JSON object per line.
 *
 * Results are built in a buffer and written to stdout in large blocks and at
 * out_flush(); errors go to stderr (text) or stdout (JSON). When stdout and
 * stderr are one file, errors share stdout's buffer, so the two keep their
 * order; otherwise stderr has its own buffer, flushed at the same moments.
 * Escape codes and bars appear only when the options say the output is a
 * terminal; control characters from the input are never echoed raw. */
#ifndef SIMPLECQRS_OUT_H
#define SIMPLECQRS_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "simplecqrs/buf.h"
#include "simplecqrs/error.h"
#include "simplecqrs/handler.h"
#include "simplecqrs/sheet.h"
#include "simplecqrs/store.h"

typedef struct out_opts {
	bool json;		/* one JSON object per command on stdout */
	bool quiet;		/* text: successful writes print nothing */
	bool interactive;	/* text errors carry no line number (see
				   out_set_input) */
	bool color_out;		/* escape codes allowed on stdout */
	bool color_err;		/* … and on stderr */
	bool utf8;		/* the terminal takes UTF-8 */
	int width;		/* terminal columns; 0 when not a terminal */
	int out_fd;		/* -1 for one that was closed: writing it */
	int err_fd;		/* fails (EBADF), as it would have */
} out_opts;

typedef struct out out;

out *out_new(const out_opts *opts);
/* Flushes, then frees. */
void out_free(out *o);
/* Called before anything buffered is written; when it returns false, what
 * is buffered is dropped instead, and so is everything after it until
 * out_release. The session's gate commits the store's group, so that no
 * result is shown before its events are kept. */
void out_set_gate(out *o, bool (*gate)(void *ctx), void *ctx);
/* After the gate said no: drops what is buffered and lets output flow
 * again (for the error that says what was lost). */
void out_release(out *o);
/* true from the moment the gate said no until out_release: output is
 * being dropped (a command that must not go on past a lost commit asks). */
bool out_held(const out *o);
/* Writes what is buffered; false if stdout failed (errno says why). */
bool out_flush(out *o);
/* Where the lines now run come from. file, when not NULL, is the script's
 * name as given (with more than one script): text errors then read
 * "error: FILE:LINE: ...", JSON errors carry "file" before "line". It is
 * borrowed and must outlive its use. interactive: the prompt, whose text
 * errors carry neither. */
void out_set_input(out *o, const char *file, bool interactive);
/* The errno of the first failed write to stdout or stderr, or 0. Nothing
 * more is written to a descriptor that failed; the other still gets its
 * output. */
int out_write_error(const out *o);
/* The terminal was resized: bars follow the new width. */
void out_set_width(out *o, int width);

void out_echo(out *o, const char *line, size_t len);
/* One failed command at input line `line` (JSON "line"; text mode leaves it
 * out at the prompt). cmd is the command's name lower-cased, "" if none. */
void out_error(out *o, unsigned long line, const char *cmd, error_code code,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same with the message already made: msg[0..len). */
void out_error_msg(out *o, unsigned long line, const char *cmd,
		   error_code code, const char *msg, size_t len);

/* account[0..account_len): the checked id, which needs no escaping. */
void out_deposit(out *o, const char *account, size_t account_len,
		 int64_t amount, const handler_result *res);
void out_withdraw(out *o, const char *account, size_t account_len,
		  int64_t amount, const handler_result *res);
void out_transfer(out *o, const char *from, const char *to, int64_t amount,
		  const handler_result *res);
/* The result of a refresh, or of a rebuild when rebuild is true. */
void out_refresh(out *o, bool rebuild, uint64_t applied, uint64_t position);
void out_balances(out *o, const sheet_row *rows, size_t n, uint64_t checkpoint,
		  uint64_t behind);
void out_balance(out *o, const char *account, int64_t balance,
		 uint64_t checkpoint, uint64_t behind);
/* evs[i].stream is not read. */
void out_history(out *o, const char *account, const store_event *evs, size_t n);
/* location: store_location's answer, NULL for none (the memory store). */
void out_status(out *o, const char *kind, const char *location, uint64_t head,
		uint64_t streams, uint64_t checkpoint, uint64_t behind);
/* A backup written to path (absolute) with that many events. */
void out_backup(out *o, const char *path, uint64_t events);
void out_help(out *o, const char *text);

/* Appends s to b for a terminal: printable text, tabs and valid UTF-8 as
 * they are (but not the C1 controls U+0080..U+009F), a backslash doubled,
 * any other byte as \xNN. */
void out_put_safe(buf *b, const char *s, size_t n);

#endif
