/* shell.c — the interactive prompt: readline on a terminal.
 *
 * Piped input never comes here (session_run_fd reads it in blocks). The
 * prompt uses readline's callback
 * interface under pselect(2), with SIGINT, SIGTSTP and SIGWINCH blocked
 * except while waiting: Ctrl-C is acted on the moment it is pressed (a
 * handler that only sets a flag around plain readline() waits for Enter),
 * and no signal can slip in between a check and the wait. The wait wakes
 * every second to redraw the prompt when another shell moved the ledger.
 * A paste arrives as one accepted text holding newlines (bracketed paste):
 * its lines run one after another, as typed lines would. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <readline/history.h>
#include <readline/readline.h>
#include "simplecqrs/xmalloc.h"
#include "shell.h"

#define HISTORY_MAX 1000	/* entries kept in the history file */

/* ---- interactive ---- */

static session *active;		/* what readline's line handler serves */
static bool color;		/* escape codes allowed in the prompt */
static bool handler_installed;
static volatile sig_atomic_t got_int, got_tstp, got_winch, got_end;
static char prompt[96];		/* the lag as last measured */
static char shown[96];		/* the prompt readline has now */

static void on_signal(int sig)
{
	if (sig == SIGINT)
		got_int = 1;
	else if (sig == SIGTSTP)
		got_tstp = 1;
	else if (sig == SIGWINCH)
		got_winch = 1;
	else
		got_end = sig;	/* SIGTERM, SIGHUP: the session ends */
}

/* "simplecqrs> ", or "simplecqrs [3 behind]> " while the sheet lags; colour
 * codes sit between \001 and \002 so readline does not count them. */
static const char *make_prompt(session *sh)
{
	uint64_t behind = 0;
	if (sheet_behind(sh->ctx.sheet, sh->ctx.store, &behind) != ERR_OK) {
		if (prompt[0] != '\0')
			return prompt;	/* the lag cannot be told now */
		behind = 0;
	}
	if (behind == 0)
		snprintf(prompt, sizeof prompt, "simplecqrs> ");
	else if (color)
		snprintf(prompt, sizeof prompt,
			 "simplecqrs \001\033[33m\002[%llu behind]\001\033[0m\002> ",
			 (unsigned long long)behind);
	else
		snprintf(prompt, sizeof prompt, "simplecqrs [%llu behind]> ",
			 (unsigned long long)behind);
	return prompt;
}

/* While readline is in a mode of its own (a search, a completion list, a
 * key sequence half read), its prompt is not ours to redraw. */
#define RL_BUSY (RL_STATE_ISEARCH | RL_STATE_NSEARCH | RL_STATE_SEARCH | \
		 RL_STATE_NUMERICARG | RL_STATE_MULTIKEY | RL_STATE_METANEXT | \
		 RL_STATE_MOREINPUT | RL_STATE_COMPLETING | RL_STATE_VIMOTION | \
		 RL_STATE_CHARSEARCH)

/* At an idle prompt, about once a second: if the store may have moved
 * (another shell wrote), measure the lag again, and if the prompt's text
 * changed, redraw it with whatever the user has typed so far. */
static void refresh_prompt(session *sh)
{
	bool changed = true;
	if (store_poll(sh->ctx.store, &changed) != ERR_OK)
		changed = true;	/* make_prompt meets the failure, if any */
	if (changed)
		make_prompt(sh);
	if (strcmp(prompt, shown) == 0 || RL_ISSTATE(RL_BUSY))
		return;	/* a busy readline gets the new one next time */
	snprintf(shown, sizeof shown, "%s", prompt);
	rl_set_prompt(shown);
	rl_clear_visible_line();
	rl_forced_update_display();
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
		const char *name = cmd_table[i++]->name;
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

/* Why path cannot hold the history, or NULL when it is a regular file
 * (created 0600 here, before anything writes it). It is opened without
 * following a symlink (readline would cut and chmod the link's target) and
 * without blocking (a FIFO would hang the shell before its banner). */
static const char *history_refused(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
			    O_NONBLOCK | O_CLOEXEC, 0600);
	int err = errno;
	struct stat st;
	if (fd < 0) {
		if (lstat(path, &st) == 0)
			return S_ISLNK(st.st_mode) ? "it is a symbolic link"
			       : !S_ISREG(st.st_mode) ? "not a regular file"
			       : strerror(err);
		return strerror(err);
	}
	bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	close(fd);
	return regular ? NULL : "not a regular file";
}

/* Opens the history file with flags, or -1 if it is no longer a
 * regular file: every later use checks again rather than trust a path. */
static int history_fd(int flags)
{
	struct stat st;
	int fd = open(history_file, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Keeps the file's last HISTORY_MAX lines, in place (another shell's file
 * descriptor stays valid), instead of history_truncate_file, which writes a
 * temporary file over a symlink's target. */
static void history_cap(void)
{
	int fd = history_fd(O_RDWR);
	struct stat st;
	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0 || st.st_size <= 0) {
		close(fd);
		return;
	}
	size_t n = (size_t)st.st_size, got = 0;
	char *data = xmalloc(n);
	while (got < n) {
		ssize_t r = pread(fd, data + got, n - got, (off_t)got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	size_t from = 0, kept = 0;
	for (size_t i = got; i-- > 0;) {
		if (data[i] == '\n' && i + 1 < got && ++kept == HISTORY_MAX) {
			from = i + 1;
			break;
		}
	}
	if (from > 0 && ftruncate(fd, 0) == 0) {
		for (size_t off = 0; off < got - from;) {
			ssize_t w = pwrite(fd, data + from + off, got - from - off,
					   (off_t)off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	free(data);
	close(fd);
}

static void history_open(void)
{
	history_file = history_path();
	if (history_file == NULL)
		return;
	const char *why = history_refused(history_file);
	if (why) {
		buf msg = { 0 };
		out_put_safe(&msg, history_file, strlen(history_file));
		fprintf(stderr, "simplecqrs: history not saved: %s: %s\n",
			buf_cstr(&msg), why);
		buf_free(&msg);
		free(history_file);
		history_file = NULL;
		return;
	}
	history_cap();
	read_history(history_file);
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
	int fd = history_file ? history_fd(O_WRONLY | O_APPEND) : -1;
	if (fd >= 0) {
		struct iovec iov[2] = { { (void *)text, strlen(text) },
					{ (void *)"\n", 1 } };
		if (writev(fd, iov, 2) < 0) {
			/* history is a convenience: a full disk must not
			 * interrupt the session */
		}
		close(fd);
	}
}

static void history_close(void)
{
	if (history_file)
		history_cap();
	free(history_file);
	history_file = NULL;
	clear_history();
}

/* ---- pasting ---- */

/* The bracketed-paste key sequence's function, in place of readline's:
 * that one keeps a whole paste, however long, in memory twice before the
 * line buffer gets it. This one keeps at most PARSE_MAX_LINE + 1 bytes of
 * any one line (a longer line is line_too_long whatever its tail), turns a
 * terminal's CR into a newline, and inserts the text for the user to see
 * and accept with Enter, as readline does. */
typedef struct pasted {
	char *text;
	size_t len, cap;
	size_t line;	/* bytes in the line being pasted so far */
} pasted;

static void paste_put(pasted *p, char c)
{
	if (c == '\0')
		return;	/* a readline line cannot hold one */
	if (c == '\r')
		c = '\n';
	if (c == '\n')
		p->line = 0;
	else if (p->line++ > PARSE_MAX_LINE)
		return;	/* line_too_long already: the rest adds nothing */
	if (p->len + 2 > p->cap)
		p->text = xrealloc(p->text, p->cap *= 2);
	p->text[p->len++] = c;
}

static int paste(int count, int key)
{
	static const char end[] = "\033[201~";
	pasted p = { .text = xmalloc(256), .cap = 256 };
	size_t matched = 0;
	(void)count;
	(void)key;
	for (int i = rl_point; i > 0 && rl_line_buffer[i - 1] != '\n'; i--)
		p.line++;	/* the typed start of the first line counts */
	RL_SETSTATE(RL_STATE_MOREINPUT);
	for (;;) {
		int c = rl_read_key();
		if (c < 0)
			break;
		if (c == end[matched]) {
			if (++matched == sizeof end - 1)
				break;
			continue;
		}
		for (size_t k = 0; k < matched; k++)	/* pasted text after all */
			paste_put(&p, end[k]);
		matched = c == end[0];	/* ESC appears in end only first */
		if (!matched)
			paste_put(&p, (char)c);
	}
	RL_UNSETSTATE(RL_STATE_MOREINPUT);
	p.text[p.len] = '\0';
	rl_mark = rl_point;
	int rc = rl_insert_text(p.text) == (int)p.len ? 0 : 1;
	const char *region = rl_variable_value("enable-active-region");
	if (region && strcmp(region, "on") == 0)
		rl_activate_mark();	/* highlighted, as readline's own */
	free(p.text);
	return rc;
}

/* Ctrl-C pressed while a command ran (SIGINT is blocked then): taken here,
 * so that it stops what comes next instead of reaching the prompt. */
static bool take_interrupt(void)
{
	sigset_t pending, intr;
	if (sigpending(&pending) != 0 || !sigismember(&pending, SIGINT))
		return false;
	sigemptyset(&intr);
	sigaddset(&intr, SIGINT);
	struct timespec zero = { 0, 0 };
	sigtimedwait(&intr, NULL, &zero);
	return true;
}

/* ---- waiting for another program's write lock ---- */

static bool lock_noticed;	/* this command has said it is waiting */
static bool wait_stopped;	/* Ctrl-C ended a wait: stop the paste too */

static bool on_wait(void *ctx, unsigned waited_ms)
{
	(void)ctx;
	if (take_interrupt()) {
		/* the terminal echoed ^C (a command runs in cooked mode) */
		fputs("\n", stdout);
		fflush(stdout);
		wait_stopped = true;
		return false;	/* the command fails with busy */
	}
	if (waited_ms >= 1000 && !lock_noticed) {
		lock_noticed = true;
		fputs("simplecqrs: waiting for the ledger's write lock, held by "
		      "another program (Ctrl-C stops waiting)\n", stderr);
	}
	return true;
}

/* Runs each line of what readline accepted: a paste holds several. */
static void on_line(char *text)
{
	session *sh = active;
	if (text == NULL) {	/* Ctrl-D on an empty line */
		fputs("\n", stdout);
		fflush(stdout);
		sh->stop = true;
	} else {
		size_t total = strlen(text);
		wait_stopped = false;
		text = xrealloc(text, total + 1 + PARSE_SLACK);	/* the parser's */
		memset(text + total + 1, 0, PARSE_SLACK);
		for (char *p = text, *stop = text + total; p <= stop && !sh->stop;) {
			size_t len = strcspn(p, "\n");
			p[len] = '\0';
			bool too_long = len > PARSE_MAX_LINE;
			if (!too_long && !parse_blank(p, len))
				history_add(p);
			lock_noticed = false;
			store_set_wait(sh->ctx.store, on_wait, sh);
			session_run_line(sh, p, len, too_long);
			store_set_wait(sh->ctx.store, NULL, NULL);
			session_flush(sh);
			p += len + 1;
			if (p <= stop && (wait_stopped || take_interrupt())) {
				/* the terminal has shown ^C; on_wait ended its line */
				fputs(wait_stopped ? "(the rest of the paste was not run)\n"
					: "\n(the rest of the paste was not run)\n", stdout);
				fflush(stdout);
				break;
			}
		}
		free(text);
	}
	if (sh->stop) {
		/* removed here, or readline draws one more prompt on return */
		rl_callback_handler_remove();
		handler_installed = false;
	} else {
		rl_set_prompt(make_prompt(sh));
		snprintf(shown, sizeof shown, "%s", prompt);
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
static void resize(session *sh)
{
	int rows, cols;
	rl_resize_terminal();
	rl_get_screen_size(&rows, &cols);
	if (isatty(STDOUT_FILENO) && cols > 0)
		out_set_width(sh->ctx.out, cols);
}

void shell_run_interactive(session *sh, const char *banner, bool colour)
{
	/* SIGTERM and SIGHUP end the session as Ctrl-D does (main raises
	 * them again once the store is closed) */
	static const int sigs[5] = { SIGINT, SIGTSTP, SIGWINCH, SIGTERM, SIGHUP };
	struct sigaction sa, old[5];
	sigset_t blocked, waiting;	/* waiting: the mask while in pselect */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&blocked);
	for (int i = 0; i < 5; i++) {
		sigaction(sigs[i], &sa, &old[i]);
		sigaddset(&blocked, sigs[i]);
	}
	sigprocmask(SIG_BLOCK, &blocked, &waiting);

	active = sh;
	color = colour;
	sh->prompt = true;
	sh->ctx.line = 0;
	rl_readline_name = "simplecqrs";	/* for $if simplecqrs in ~/.inputrc */
	rl_catch_signals = 0;
	rl_attempted_completion_function = complete;
	history_open();
	if (banner) {
		fputs(banner, stdout);
		fflush(stdout);
	}
	rl_initialize();	/* reads ~/.inputrc: our bindings come after */
	rl_bind_keyseq_in_map("\033[200~", paste, emacs_standard_keymap);
	rl_bind_keyseq_in_map("\033[200~", paste, vi_insertion_keymap);
	rl_bind_keyseq_in_map("\033[200~", paste, vi_movement_keymap);
	rl_callback_handler_install(make_prompt(sh), on_line);
	snprintf(shown, sizeof shown, "%s", prompt);
	handler_installed = true;
	struct timespec polled;
	clock_gettime(CLOCK_MONOTONIC, &polled);
	while (!sh->stop) {
		fd_set fds;
		FD_ZERO(&fds);
		FD_SET(STDIN_FILENO, &fds);
		struct timespec tick = { 1, 0 }, now;
		int n = pselect(STDIN_FILENO + 1, &fds, NULL, NULL, &tick, &waiting);
		if (n < 0 && errno != EINTR)
			break;
		if (got_end) {
			sh->ended_by = got_end;
			got_end = 0;
			break;
		}
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
		/* once a second even while keys arrive */
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ms = (now.tv_sec - polled.tv_sec) * 1000L +
			  (now.tv_nsec - polled.tv_nsec) / 1000000L;
		if (!sh->stop && (n == 0 || ms >= 1000)) {
			polled = now;
			refresh_prompt(sh);
		}
	}
	if (handler_installed)
		rl_callback_handler_remove();
	handler_installed = false;
	history_close();
	drop_candidates();
	sigprocmask(SIG_SETMASK, &waiting, NULL);
	for (int i = 0; i < 5; i++)
		sigaction(sigs[i], &old[i], NULL);
	sh->prompt = false;
	active = NULL;
}
