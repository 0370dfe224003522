/* shell.c — reading commands: piped input in blocks, or a readline prompt.
 *
 * Piped input never goes near readline; output is flushed whenever the
 * reader is about to wait for more. The prompt uses readline's callback
 * interface under pselect(2), with SIGINT, SIGTSTP and SIGWINCH blocked
 * except while waiting: Ctrl-C is acted on the moment it is pressed (a
 * handler that only sets a flag around plain readline() waits for Enter),
 * and no signal can slip in between a check and the wait. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>
#include <readline/history.h>
#include <readline/readline.h>
#include "simplecqrs/lines.h"
#include "simplecqrs/xmalloc.h"
#include "shell.h"

#define HISTORY_MAX 1000	/* entries kept in the history file */

/* Runs one line and keeps score. */
static void run_line(shell *sh, char *text, size_t len, bool too_long)
{
	cmd_status st;
	if (sh->stop)	/* a commit failed while the line was being read */
		return;
	sh->ctx.line++;
	if (too_long) {
		st = cmd_reject(&sh->ctx, ERR_LINE_TOO_LONG);
	} else {
		if (sh->echo && !parse_blank(text, len))	/* as typed, less a CR */
			out_echo(sh->ctx.out, text,
				 len - (len > 0 && text[len - 1] == '\r'));
		st = cmd_run(&sh->ctx, text, len);
	}
	if (st != CMD_FATAL && cmd_lost(&sh->ctx) == CMD_FATAL)
		st = CMD_FATAL;	/* a flush in the middle could not commit */
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

void shell_flush(shell *sh)
{
	out_flush(sh->ctx.out);
	if (cmd_lost(&sh->ctx) == CMD_FATAL) {
		sh->failed = sh->fatal = sh->stop = true;
		out_flush(sh->ctx.out);	/* the error; nothing is pending now */
	}
}

static void flush_output(void *vsh)
{
	shell_flush(vsh);
}

int shell_run_fd(shell *sh, int fd)
{
	lines *r = lines_new(fd, flush_output, sh);
	lines_line l;
	int rc = 0;
	sh->ctx.line = 0;
	/* output that cannot be delivered ends the run: no more results
	 * would be acknowledged */
	while (!sh->stop && out_write_error(sh->ctx.out) == 0 &&
	       (rc = lines_next(r, &l)) == 1)
		run_line(sh, l.text, l.len, l.too_long);
	int saved = errno;
	lines_free(r);
	shell_flush(sh);
	errno = saved;
	return rc < 0 ? -1 : 0;
}

/* ---- interactive ---- */

static shell *active;		/* the shell readline's line handler serves */
static bool handler_installed;
static volatile sig_atomic_t got_int, got_tstp, got_winch;
static char prompt[96];

static void on_signal(int sig)
{
	if (sig == SIGINT)
		got_int = 1;
	else if (sig == SIGTSTP)
		got_tstp = 1;
	else
		got_winch = 1;
}

/* "simplecqrs> ", or "simplecqrs [3 behind]> " while the sheet lags; colour
 * codes sit between \001 and \002 so readline does not count them. */
static const char *make_prompt(shell *sh)
{
	uint64_t behind = 0;
	if (sheet_sync(sh->ctx.sheet, sh->ctx.store) == ERR_OK)
		store_count_after(sh->ctx.store, sheet_checkpoint(sh->ctx.sheet),
				  &behind);
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

/* ---- tab completion: command names, then what the table says ---- */

static char **candidates;	/* account ids for the current completion */
static size_t ncandidates;

static int add_candidate(void *ctx, const char *stream)
{
	(void)ctx;
	candidates = xreallocarray(candidates, ncandidates + 1, sizeof *candidates);
	candidates[ncandidates++] = xstrdup(stream);
	return 0;
}

static void drop_candidates(void)
{
	for (size_t i = 0; i < ncandidates; i++)
		free(candidates[i]);
	free(candidates);
	candidates = NULL;
	ncandidates = 0;
}

static char *command_generator(const char *text, int state)
{
	static size_t i;
	if (state == 0)
		i = 0;
	while (i < cmd_table_len) {
		const char *name = cmd_table[i++].name;
		if (strncasecmp(name, text, strlen(text)) == 0)
			return xstrdup(name);
	}
	return NULL;
}

static char *account_generator(const char *text, int state)
{
	static size_t i;
	(void)text;	/* the store already filtered by prefix */
	if (state == 0)
		i = 0;
	return i < ncandidates ? xstrdup(candidates[i++]) : NULL;
}

/* What the word being completed is: 'c' a command, 'a' an account, 0 none. */
static char word_kind(int start)
{
	char first[16] = "";
	int words = 0;
	for (int i = 0; i < start;) {
		while (i < start && (rl_line_buffer[i] == ' ' || rl_line_buffer[i] == '\t'))
			i++;
		if (i == start)
			break;
		int from = i;
		while (i < start && rl_line_buffer[i] != ' ' && rl_line_buffer[i] != '\t')
			i++;
		if (words++ == 0 && i - from < (int)sizeof first) {
			memcpy(first, rl_line_buffer + from, (size_t)(i - from));
			first[i - from] = '\0';	/* cmd_find takes any case */
		}
	}
	if (words == 0)
		return 'c';
	const cmd_entry *cmd = cmd_find(first);
	if (cmd == NULL || words > cmd->max_args)
		return 0;
	return cmd->args[words - 1];
}

static char **complete(const char *text, int start, int end)
{
	(void)end;
	rl_attempted_completion_over = 1;	/* never fall back to file names */
	switch (word_kind(start)) {
	case 'c':
		return rl_completion_matches(text, command_generator);
	case 'a':
		drop_candidates();
		store_streams(active->ctx.store, text, add_candidate, NULL);
		return rl_completion_matches(text, account_generator);
	default:
		return NULL;
	}
}

/* ---- history that lasts ---- */

static char *history_file;	/* NULL: history is not saved */

/* mkdir -p, each new folder 0700. */
static int make_dirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc != 0 && errno != EEXIST)
			return -1;
	}
	return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* SIMPLECQRS_HISTORY (empty or /dev/null: none), else the XDG state folder,
 * else ~/.local/state. */
static char *history_path(void)
{
	const char *env = getenv("SIMPLECQRS_HISTORY");
	if (env)
		return env[0] && strcmp(env, "/dev/null") != 0 ? xstrdup(env) : NULL;
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char dir[4096];
	if (xdg && xdg[0] == '/')
		snprintf(dir, sizeof dir, "%s/simplecqrs", xdg);
	else if (home && home[0] == '/')
		snprintf(dir, sizeof dir, "%s/.local/state/simplecqrs", home);
	else
		return NULL;
	if (make_dirs(dir) != 0)
		return NULL;
	size_t len = strlen(dir) + sizeof "/history";
	char *path = xmalloc(len);
	snprintf(path, len, "%s/history", dir);
	return path;
}

static void history_open(void)
{
	history_file = history_path();
	if (history_file == NULL)
		return;
	/* created 0600 here, before readline ever writes it */
	int fd = open(history_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "simplecqrs: history not saved: %s: %s\n",
			history_file, strerror(errno));
		free(history_file);
		history_file = NULL;
		return;
	}
	close(fd);
	read_history(history_file);
	history_truncate_file(history_file, HISTORY_MAX);
	stifle_history(HISTORY_MAX);
}

/* Adds a line unless it repeats the last one, and appends it to the file
 * at once, so two shells open together do not overwrite each other. */
static void history_add(const char *text)
{
	HIST_ENTRY *last = history_length > 0
		? history_get(history_base + history_length - 1) : NULL;
	if (last && strcmp(last->line, text) == 0)
		return;
	add_history(text);
	if (history_file)
		append_history(1, history_file);
}

static void history_close(void)
{
	if (history_file)
		history_truncate_file(history_file, HISTORY_MAX);
	free(history_file);
	history_file = NULL;
	clear_history();
}

static void on_line(char *text)
{
	shell *sh = active;
	if (text == NULL) {	/* Ctrl-D on an empty line */
		fputs("\n", stdout);
		fflush(stdout);
		sh->stop = true;
	} else {
		size_t len = strlen(text);
		if (!parse_blank(text, len))
			history_add(text);
		text = xrealloc(text, len + 1 + PARSE_SLACK);	/* the parser's */
		memset(text + len + 1, 0, PARSE_SLACK);
		run_line(sh, text, len, false);
		shell_flush(sh);
		free(text);
	}
	if (sh->stop) {
		/* removed here, or readline draws one more prompt on return */
		rl_callback_handler_remove();
		handler_installed = false;
	} else {
		rl_set_prompt(make_prompt(sh));
	}
}

/* Ctrl-C: drop the line, give a fresh prompt, keep the shell. */
static void interrupt_line(void)
{
	rl_free_line_state();
	rl_callback_sigcleanup();
	rl_replace_line("", 0);
	fputs("^C\n", stdout);
	fflush(stdout);
	rl_on_new_line();
	rl_redisplay();
}

/* Ctrl-Z: give the terminal back as it was, stop, and take it again on
 * fg. readline would do this itself, but its handlers are off
 * (rl_catch_signals = 0) so that Ctrl-C is ours. */
static void suspend(const struct sigaction *ours)
{
	sigset_t tstp;
	sigemptyset(&tstp);
	sigaddset(&tstp, SIGTSTP);
	rl_deprep_terminal();
	signal(SIGTSTP, SIG_DFL);
	sigprocmask(SIG_UNBLOCK, &tstp, NULL);
	raise(SIGTSTP);		/* stops here until SIGCONT */
	sigprocmask(SIG_BLOCK, &tstp, NULL);
	sigaction(SIGTSTP, ours, NULL);
	rl_prep_terminal(1);
	rl_forced_update_display();
}

/* The window changed size: readline rewraps, the bars follow. */
static void resize(shell *sh)
{
	int rows, cols;
	rl_resize_terminal();
	rl_get_screen_size(&rows, &cols);
	if (isatty(STDOUT_FILENO) && cols > 0)
		out_set_width(sh->ctx.out, cols);
}

void shell_run_interactive(shell *sh, const char *banner)
{
	static const int sigs[3] = { SIGINT, SIGTSTP, SIGWINCH };
	struct sigaction sa, old[3];
	sigset_t blocked, waiting;	/* waiting: the mask while in pselect */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&blocked);
	for (int i = 0; i < 3; i++) {
		sigaction(sigs[i], &sa, &old[i]);
		sigaddset(&blocked, sigs[i]);
	}
	sigprocmask(SIG_BLOCK, &blocked, &waiting);

	active = sh;
	sh->ctx.line = 0;
	rl_readline_name = "simplecqrs";	/* for $if simplecqrs in ~/.inputrc */
	rl_catch_signals = 0;
	rl_attempted_completion_function = complete;
	history_open();
	if (banner) {
		fputs(banner, stdout);
		fflush(stdout);
	}
	rl_callback_handler_install(make_prompt(sh), on_line);
	handler_installed = true;
	while (!sh->stop) {
		fd_set fds;
		FD_ZERO(&fds);
		FD_SET(STDIN_FILENO, &fds);
		int n = pselect(STDIN_FILENO + 1, &fds, NULL, NULL, NULL, &waiting);
		if (n < 0 && errno != EINTR)
			break;
		if (got_int) {
			got_int = 0;
			interrupt_line();
			continue;
		}
		if (got_tstp) {
			got_tstp = 0;
			suspend(&sa);
		}
		if (got_winch) {
			got_winch = 0;
			resize(sh);
		}
		if (n > 0)
			rl_callback_read_char();
	}
	if (handler_installed)
		rl_callback_handler_remove();
	handler_installed = false;
	history_close();
	drop_candidates();
	sigprocmask(SIG_SETMASK, &waiting, NULL);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	active = NULL;
}
