/* shell.h — the interactive readline prompt. Each line it reads goes
 * through the session (session.h), which runs it and keeps score; the shell
 * owns the terminal: the prompt and its lag, history, completion, pastes,
 * Ctrl-C, Ctrl-Z and resizes. Piped input and scripts do not come here:
 * main.c hands them to session_run_fd. */
#ifndef SIMPLECQRS_SHELL_H
#define SIMPLECQRS_SHELL_H

#include <stdbool.h>
#include "simplecqrs/session.h"

/* The prompt on the terminal, until EOF or quit. color: escape codes
 * are allowed in the prompt. */
void shell_run_interactive(session *s, const char *banner, bool color);

#endif
