/* shell.c — reading commands: piped input in blocks, or a readline prompt.
 *
 * Piped input never goes near readline. The prompt uses readline's callback
 * interface under select(2), so Ctrl-C is handled the moment it is pressed:
 * a SIGINT handler that only sets a flag would otherwise wait for Enter. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>
#include <readline/history.h>
#include <readline/readline.h>
#include "simplecqrs/lines.h"
#include "shell.h"

static bool blank(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
		i++;
	return i == n || s[i] == '#';
}

/* Runs one line and keeps score. */
static void run_line(shell *sh, char *text, size_t len, bool too_long)
{
	cmd_status st;
	sh->ctx.line++;
	if (too_long) {
		st = cmd_reject(&sh->ctx, ERR_LINE_TOO_LONG);
	} else {
		if (sh->echo && !blank(text, len))
			out_echo(sh->ctx.out, text, len);
		st = cmd_run(&sh->ctx, text, len);
	}
	switch (st) {
	case CMD_OK:
		break;
	case CMD_FAILED:
		sh->failed = true;
		sh->stop = sh->bail;
		break;
	case CMD_QUIT:
		sh->stop = true;
		break;
	case CMD_FATAL:
		sh->failed = sh->fatal = sh->stop = true;
		break;
	}
}

int shell_run_fd(shell *sh, int fd)
{
	lines *r = lines_new(fd);
	lines_line l;
	int rc;
	sh->ctx.line = 0;
	while (!sh->stop && (rc = lines_next(r, &l)) == 1)
		run_line(sh, l.text, l.len, l.too_long);
	int saved = errno;
	lines_free(r);
	out_flush(sh->ctx.out);
	errno = saved;
	return sh->stop || rc == 0 ? 0 : -1;
}

/* ---- interactive ---- */

static shell *active;		/* the shell readline's line handler serves */
static volatile sig_atomic_t interrupted;
static char prompt[96];

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* "simplecqrs> ", or "simplecqrs [3 behind]> " while the sheet lags; colour
 * codes sit between \001 and \002 so readline does not count them. */
static const char *make_prompt(shell *sh)
{
	uint64_t behind = 0;
	store_count_after(sh->ctx.store, sheet_checkpoint(sh->ctx.sheet), &behind);
	if (behind == 0)
		snprintf(prompt, sizeof prompt, "simplecqrs> ");
	else if (sh->color)
		snprintf(prompt, sizeof prompt,
			 "simplecqrs \001\033[33m\002[%llu behind]\001\033[0m\002> ",
			 (unsigned long long)behind);
	else
		snprintf(prompt, sizeof prompt, "simplecqrs [%llu behind]> ",
			 (unsigned long long)behind);
	return prompt;
}

static void on_line(char *text)
{
	shell *sh = active;
	if (text == NULL) {	/* Ctrl-D on an empty line */
		fputs("\n", stdout);
		fflush(stdout);
		sh->stop = true;
		return;
	}
	size_t len = strlen(text);
	if (!blank(text, len)) {
		HIST_ENTRY *last = history_length > 0
			? history_get(history_base + history_length - 1) : NULL;
		if (last == NULL || strcmp(last->line, text) != 0)
			add_history(text);
	}
	run_line(sh, text, len, false);
	out_flush(sh->ctx.out);
	free(text);
	if (!sh->stop)
		rl_set_prompt(make_prompt(sh));
}

void shell_run_interactive(shell *sh, const char *banner)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;	/* no SA_RESTART: select must wake */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);

	active = sh;
	sh->ctx.line = 0;
	rl_readline_name = "simplecqrs";
	rl_catch_signals = 0;
	if (banner) {
		fputs(banner, stdout);
		fflush(stdout);
	}
	rl_callback_handler_install(make_prompt(sh), on_line);
	while (!sh->stop) {
		fd_set fds;
		FD_ZERO(&fds);
		FD_SET(STDIN_FILENO, &fds);
		int n = select(STDIN_FILENO + 1, &fds, NULL, NULL, NULL);
		if (n < 0 && errno != EINTR)
			break;
		if (interrupted) {
			/* Ctrl-C: drop the line, fresh prompt, keep the shell */
			interrupted = 0;
			rl_free_line_state();
			rl_callback_sigcleanup();
			rl_replace_line("", 0);
			fputs("^C\n", stdout);
			fflush(stdout);
			rl_on_new_line();
			rl_redisplay();
			continue;
		}
		if (n > 0)
			rl_callback_read_char();
	}
	rl_callback_handler_remove();
	sigaction(SIGINT, &old, NULL);
	active = NULL;
}
