/* main.c — options, the store, the shell, the exit status. Thin on purpose:
 * everything a command does lives in the library (cmd.c and below). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config.h"
#include "simplecqrs/buf.h"
#include "simplecqrs/xmalloc.h"
#include "shell.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_STORAGE = 3 };

static const char usage_text[] =
	"usage: simplecqrs [OPTIONS] [SCRIPT...]\n"
	"\n"
	"An event-sourced bank ledger shell. With no SCRIPT it reads commands\n"
	"from stdin: a prompt on a terminal, or a script piped in. Each SCRIPT\n"
	"is run in order ('-' is stdin). Type 'help' for the commands.\n"
	"\n"
	"  -s, --store URI   memory (default), sqlite:PATH, postgresql://...\n"
	"                    (default from SIMPLECQRS_STORE)\n"
	"  -b, --bail        stop at the first command that fails\n"
	"      --json        one JSON object per command on stdout\n"
	"      --echo        print each command before its result\n"
	"  -q, --quiet       successful writes print nothing\n"
	"  -h, --help        show this help and exit\n"
	"  -V, --version     show the version and exit\n"
	"\n"
	"Exit status: 0 all commands succeeded, 1 a command failed,\n"
	"2 usage error or store cannot be opened, 3 the store failed.\n"
	"At the prompt a failed command does not count: quit or Ctrl-D exits 0.\n";

/* getopt has already said what was wrong, GNU style. */
static int usage_error(void)
{
	fprintf(stderr, "Try 'simplecqrs --help' for more information.\n");
	return EXIT_USAGE;
}

/* Colour only where it can show and nobody said no (no-color.org). */
static bool color_ok(int fd)
{
	const char *term = getenv("TERM");
	return getenv("NO_COLOR") == NULL && isatty(fd) &&
	       !(term && strcmp(term, "dumb") == 0);
}

/* Descriptors 0-2 found closed are held on /dev/null before anything is
 * opened: a script, the SQLite file or libpq's socket would otherwise take
 * the number, and results meant for stdout would go into the ledger or to
 * the server. Returns a bit per descriptor that was closed (the shell still
 * treats those as closed), or -1 if /dev/null cannot be opened. */
static int hold_std_fds(void)
{
	int closed = 0;
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		/* the lowest free number, so fd itself: those below are open */
		int n = open("/dev/null", O_RDWR);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
		if (n < 0 || fcntl(fd, F_GETFD) == -1)
			return -1;
		closed |= 1 << fd;
	}
	return closed;
}

/* s for a message: control bytes as \xNN, so a crafted file name or URI
 * cannot drive the terminal. Valid until the next call with the same b. */
static const char *escaped(buf *b, const char *s)
{
	b->len = 0;
	out_put_safe(b, s, strlen(s));
	return buf_cstr(b);
}

/* Opens a script for reading ('-' is stdin, checked the same way): a
 * folder, or a descriptor that cannot be read, is refused here, before any
 * script runs, not halfway. */
static int open_script(const char *path, bool stdin_closed)
{
	int fd = STDIN_FILENO;
	if (strcmp(path, "-") != 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	else if (stdin_closed)
		fd = -1, errno = EBADF;
	if (fd < 0)
		return -1;
	struct stat st;
	int flags = fcntl(fd, F_GETFL), err = 0;
	if (fstat(fd, &st) != 0 || flags == -1)
		err = errno;
	else if (S_ISDIR(st.st_mode))
		err = EISDIR;
	else if ((flags & O_ACCMODE) == O_WRONLY)
		err = EBADF;
	if (err != 0) {
		if (fd != STDIN_FILENO)
			close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Runs scripts [from, to) in order; EXIT_FAILED if one could not be read. */
static int run_scripts(shell *sh, char **names, const int *fds, int n,
		       int from, int to)
{
	for (int i = from; i < to && !sh->stop; i++) {
		out_set_input(sh->ctx.out, n > 1 ? names[i] : NULL, false);
		if (shell_run_fd(sh, fds[i]) == 0)
			continue;
		int err = errno;
		buf b = { 0 };
		if (fds[i] == STDIN_FILENO)
			fprintf(stderr, "simplecqrs: reading stdin: %s\n", strerror(err));
		else
			fprintf(stderr, "simplecqrs: reading '%s': %s\n",
				escaped(&b, names[i]), strerror(err));
		buf_free(&b);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int terminal_width(int fd)
{
	struct winsize ws;
	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "bail", no_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "echo", no_argument, NULL, 'e' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int closed = hold_std_fds();	/* first: nothing may take 0-2 */
	if (closed < 0)
		return EXIT_USAGE;	/* no /dev/null: nowhere safe to say so */
	const char *uri = getenv("SIMPLECQRS_STORE");
	const char *uri_from = "SIMPLECQRS_STORE";
	bool bail = false, echo = false;
	out_opts oo = {
		.out_fd = closed & 2 ? -1 : STDOUT_FILENO,
		.err_fd = closed & 4 ? -1 : STDERR_FILENO,
	};
	int c;

	setlocale(LC_CTYPE, "");
	argv[0] = (char *)"simplecqrs";	/* how getopt's messages name us */
	while ((c = getopt_long(argc, argv, "s:bqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': uri = optarg, uri_from = "--store"; break;
		case 'b': bail = true; break;
		case 'j': oo.json = true; break;
		case 'e': echo = true; break;
		case 'q': oo.quiet = true; break;
		case 'h': fputs(usage_text, stdout); return EXIT_OK;
		case 'V': puts("simplecqrs " SIMPLECQRS_VERSION); return EXIT_OK;
		default: return usage_error();
		}
	}
	/* "$LEDGER" with LEDGER unset must not become the memory store, whose
	 * acknowledged writes vanish at exit */
	if (uri != NULL && uri[0] == '\0') {
		fprintf(stderr, "simplecqrs: %s is empty; name a store: memory, "
			"sqlite:PATH or postgresql://...\n", uri_from);
		return EXIT_USAGE;
	}
	if (uri == NULL)
		uri = "memory";

	/* Open every script before running any: a typo in the third file
	 * must not leave the first two half applied. No SCRIPT is "-". */
	static char *just_stdin[] = { (char *)"-" };
	int nscripts = argc - optind;
	char **names = nscripts > 0 ? argv + optind : just_stdin;
	if (nscripts == 0)
		nscripts = 1;
	int *fds = xcalloc((size_t)nscripts, sizeof *fds);
	int prompt_at = nscripts;	/* the "-" that is a terminal, if any */
	buf msg = { 0 };
	for (int i = 0; i < nscripts; i++) {
		const char *path = names[i];
		bool is_stdin = strcmp(path, "-") == 0;
		if ((fds[i] = open_script(path, closed & 1)) < 0) {
			if (is_stdin)
				fprintf(stderr, "simplecqrs: cannot read stdin: %s\n",
					strerror(errno));
			else
				fprintf(stderr, "simplecqrs: cannot open '%s': %s\n",
					escaped(&msg, path), strerror(errno));
		} else if (prompt_at < nscripts) {
			/* the prompt ends with quit or Ctrl-D, for good */
			fprintf(stderr, "simplecqrs: '-' is the terminal, so the "
				"prompt: it must be the last SCRIPT\n");
		} else {
			if (is_stdin && isatty(STDIN_FILENO))
				prompt_at = i;
			continue;
		}
		for (int j = 0; j <= i; j++)
			if (fds[j] > STDIN_FILENO)
				close(fds[j]);
		free(fds);
		buf_free(&msg);
		return EXIT_USAGE;
	}

	store *st;
	char why[512];
	if (store_open(uri, &st, why, sizeof why) != ERR_OK) {
		char safe[512];
		store_safe_uri(uri, safe, sizeof safe);
		fprintf(stderr, "simplecqrs: cannot open store '%s': ",
			escaped(&msg, safe));
		fprintf(stderr, "%s\n", escaped(&msg, why));
		for (int i = 0; i < nscripts; i++)
			if (fds[i] > STDIN_FILENO)
				close(fds[i]);
		free(fds);
		buf_free(&msg);
		return EXIT_USAGE;
	}
	buf_free(&msg);

	bool interactive = prompt_at < nscripts;
	oo.color_out = !oo.json && color_ok(STDOUT_FILENO);
	oo.color_err = color_ok(STDERR_FILENO);
	oo.width = isatty(STDOUT_FILENO) ? terminal_width(STDOUT_FILENO) : 0;
	oo.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;

	shell sh = {
		.ctx = {
			.store = st,
			.handler = handler_new(st),
			.sheet = sheet_new(sheet_store_of(st)),
			.out = out_new(&oo),
		},
		.bail = bail,
		.echo = echo,
		.color = oo.color_out,
	};
	/* no result leaves before the store has kept it */
	out_set_gate(sh.ctx.out, cmd_commit, &sh.ctx);

	/* the scripts, then the prompt if a "-" is the terminal */
	int status = run_scripts(&sh, names, fds, nscripts, 0, prompt_at);
	interactive = interactive && status == EXIT_OK && !sh.stop;
	if (interactive)	/* the prompt's errors carry no line */
		out_set_input(sh.ctx.out, nscripts > 1 ? names[prompt_at] : NULL, true);
	if (interactive) {
		/* the ledger by name, so that a mistyped path shows at once */
		const char *where = store_location(st);
		buf banner = { 0 };
		buf_printf(&banner, "simplecqrs %s on ", SIMPLECQRS_VERSION);
		if (where == NULL) {
			buf_printf(&banner, "the %s store", store_kind(st));
		} else {
			if (strcmp(store_kind(st), "sqlite") == 0)
				buf_puts(&banner, "sqlite:");
			out_put_safe(&banner, where, strlen(where));
			if (store_created(st))
				buf_puts(&banner, " (a new, empty ledger)");
		}
		buf_puts(&banner, "; type 'help' for commands, Ctrl-D to quit\n");
		shell_run_interactive(&sh, buf_cstr(&banner));
		buf_free(&banner);
	}
	for (int i = 0; i < nscripts; i++)
		if (fds[i] != STDIN_FILENO)
			close(fds[i]);
	free(fds);

	shell_flush(&sh);
	int write_error = out_write_error(sh.ctx.out);
	out_free(sh.ctx.out);
	if (getenv("SIMPLECQRS_STATS")) {	/* for benchmarks and operators */
		store_stats ss = store_get_stats(st);
		fprintf(stderr, "simplecqrs: %llu append%s, %llu conflict%s (each one retried)\n",
			(unsigned long long)ss.appends, ss.appends == 1 ? "" : "s",
			(unsigned long long)ss.conflicts, ss.conflicts == 1 ? "" : "s");
	}
	sheet_free(sh.ctx.sheet);
	handler_free(sh.ctx.handler);
	store_free(st);
	if (write_error) {
		/* a reader that went away (| head) needs no message */
		if (write_error != EPIPE)
			fprintf(stderr, "simplecqrs: writing output: %s\n",
				strerror(write_error));
		if (status == EXIT_OK)
			status = EXIT_FAILED;
	}
	if (sh.fatal)
		return EXIT_STORAGE;
	if (status == EXIT_OK && sh.failed)
		status = EXIT_FAILED;
	return status;
}
