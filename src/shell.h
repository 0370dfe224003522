/* shell.h — the input loops: piped or script input, and the interactive
 * readline prompt. Each line goes to cmd_run; the shell only keeps score
 * (did anything fail, must we stop) and owns the terminal. */
#ifndef SIMPLECQRS_SHELL_H
#define SIMPLECQRS_SHELL_H

#include <stdbool.h>
#include "simplecqrs/cmd.h"

typedef struct shell {
	cmd_ctx ctx;
	bool bail;		/* stop at the first failed command */
	bool echo;		/* print each command before its result */
	bool color;		/* escape codes allowed in the prompt */
	bool failed;		/* some command failed */
	bool fatal;		/* the store failed: exit 3 */
	bool stop;		/* quit, exit, --bail or a store failure */
	bool prompt;		/* at the interactive prompt: no echo, and a
				   failed command neither stops nor fails
				   the session */
} shell;

/* Commits the store's group and writes what is buffered; if the commit
 * fails, the unkept results are dropped, the storage error is shown, and the
 * shell stops (exit 3). Call it wherever output must reach its reader. */
void shell_flush(shell *sh);
/* Runs every line read from fd. Returns 0, or -1 on a read error (errno). */
int shell_run_fd(shell *sh, int fd);
/* The interactive prompt on the terminal, until EOF or quit. */
void shell_run_interactive(shell *sh, const char *banner);

#endif
