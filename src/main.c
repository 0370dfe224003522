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
	"2 usage error or store cannot be opened, 3 the store failed.\n";

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

/* Opens a script for reading; a folder is refused here, not halfway. */
static int open_script(const char *path)
{
	if (strcmp(path, "-") == 0)
		return STDIN_FILENO;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return -1;
	}
	return fd;
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
	const char *uri = getenv("SIMPLECQRS_STORE");
	bool bail = false, echo = false;
	out_opts oo = { .out_fd = STDOUT_FILENO, .err_fd = STDERR_FILENO };
	int c;

	setlocale(LC_CTYPE, "");
	argv[0] = (char *)"simplecqrs";	/* how getopt's messages name us */
	while ((c = getopt_long(argc, argv, "s:bqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': uri = optarg; break;
		case 'b': bail = true; break;
		case 'j': oo.json = true; break;
		case 'e': echo = true; break;
		case 'q': oo.quiet = true; break;
		case 'h': fputs(usage_text, stdout); return EXIT_OK;
		case 'V': puts("simplecqrs " SIMPLECQRS_VERSION); return EXIT_OK;
		default: return usage_error();
		}
	}
	if (uri == NULL || uri[0] == '\0')
		uri = "memory";

	/* Open every script before running any: a typo in the third file
	 * must not leave the first two half applied. */
	int nscripts = argc - optind;
	int *fds = xcalloc((size_t)nscripts + 1, sizeof *fds);
	for (int i = 0; i < nscripts; i++) {
		const char *path = argv[optind + i];
		if ((fds[i] = open_script(path)) < 0) {
			fprintf(stderr, "simplecqrs: cannot open '%s': %s\n", path,
				strerror(errno));
			for (int j = 0; j < i; j++)
				if (fds[j] != STDIN_FILENO)
					close(fds[j]);
			free(fds);
			return EXIT_USAGE;
		}
	}

	store *st;
	char why[512];
	if (store_open(uri, &st, why, sizeof why) != ERR_OK) {
		char safe[512];
		store_safe_uri(uri, safe, sizeof safe);
		fprintf(stderr, "simplecqrs: cannot open store '%s': %s\n", safe, why);
		free(fds);
		return EXIT_USAGE;
	}

	bool interactive = nscripts == 0 && isatty(STDIN_FILENO);
	oo.interactive = interactive;
	oo.color_out = !oo.json && color_ok(STDOUT_FILENO);
	oo.color_err = color_ok(STDERR_FILENO);
	oo.width = isatty(STDOUT_FILENO) ? terminal_width(STDOUT_FILENO) : 0;
	oo.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;

	shell sh = {
		.ctx = {
			.store = st,
			.handler = handler_new(st),
			.sheet = sheet_new(),
			.out = out_new(&oo),
		},
		.bail = bail,
		.echo = echo,
		.color = oo.color_out,
	};
	/* no result leaves before the store has kept it */
	out_set_gate(sh.ctx.out, cmd_commit, &sh.ctx);

	int status = EXIT_OK;
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
	} else if (nscripts == 0) {
		if (shell_run_fd(&sh, STDIN_FILENO) != 0) {
			fprintf(stderr, "simplecqrs: reading stdin: %s\n", strerror(errno));
			status = EXIT_FAILED;
		}
	} else {
		for (int i = 0; i < nscripts && !sh.stop; i++) {
			if (shell_run_fd(&sh, fds[i]) != 0) {
				fprintf(stderr, "simplecqrs: reading '%s': %s\n",
					argv[optind + i], strerror(errno));
				status = EXIT_FAILED;
				break;
			}
		}
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
