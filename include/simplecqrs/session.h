/* session.h — one conversation with a ledger: the store, the account
 * handler, the balance sheet and the output, and the gate between them.
 *
 * The session owns the rule "no result is shown before the group holding
 * its events has committed": every byte of output passes a gate that
 * commits the store's group first. When that commit fails, what was
 * buffered is dropped, the storage error is said once, and the session
 * stops (exit 3). It also keeps score: did a command fail, must the input
 * stop. The piped shell, the prompt (shell.c), main.c and the fuzzers all
 * run their lines through session_run_line. */
#ifndef SIMPLECQRS_SESSION_H
#define SIMPLECQRS_SESSION_H

#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include "simplecqrs/cmd.h"

typedef struct session session;

/* For a test that checks every step of session_run_fd: before hears of
 * each line as read (too_long: it was skipped, text is empty), after of
 * its outcome. Either may be NULL, and either may set s->stop. */
typedef struct session_watch {
	void (*before)(void *ctx, session *s, const char *text, size_t len,
		       bool too_long);
	void (*after)(void *ctx, session *s, cmd_status st);
	void *ctx;
} session_watch;

struct session {
	cmd_ctx ctx;		/* what each command runs with; ctx.line is
				   the input line being run */
	/* set by the caller */
	bool bail;		/* stop at the first failed command */
	bool echo;		/* print each command before its result */
	bool prompt;		/* the interactive prompt: no echo, and a
				   failed command neither stops nor fails
				   the session (psql, sqlite3) */
	const session_watch *watch;	/* NULL, or a test's */
	/* the score */
	bool failed;		/* some command failed */
	bool fatal;		/* the store failed: exit 3 */
	bool stop;		/* quit, exit, --bail or a store failure */
	/* a signal's number (SIGTERM, SIGHUP; SIGINT in a script), set by the
	 * program's handler: the input ends before the next line, and the
	 * session closes as at its end */
	volatile sig_atomic_t ended_by;
	/* private */
	bool lost;		/* the gate's commit failed, not yet said */
	uint64_t early_seen;	/* the store's early_commits when last looked */
};

/* Starts a session on st (borrowed: it must outlive the session), with a
 * new handler, balance sheet and output. */
void session_open(session *s, store *st, const out_opts *oo);
/* Says whatever is pending (session_flush), frees what session_open made
 * and returns the errno of the first failed write to stdout or stderr, or
 * 0 (out_write_error). The store stays open. */
int session_close(session *s);

/* Runs one line: text[0..len), with text[len] writable and PARSE_SLACK
 * readable bytes after it; too_long: the reader skipped a line past
 * PARSE_MAX_LINE (text is not read). Keeps score and returns the status;
 * a session that has stopped runs nothing more (CMD_QUIT). */
cmd_status session_run_line(session *s, char *text, size_t len, bool too_long);
/* Commits the group and writes what is buffered; if the commit fails, the
 * unkept results are dropped, the storage error is shown and the session
 * stops. Call it wherever output must reach its reader. */
void session_flush(session *s);
/* Runs every line read from fd (line numbers from 1), flushing whenever
 * the reader is about to wait. Returns 0, or -1 on a read error (errno). */
int session_run_fd(session *s, int fd);

#endif
