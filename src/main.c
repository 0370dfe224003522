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
#include <unistd.h>
#include "config.h"
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

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "simplecqrs: %s '%s'\n"
		"Try 'simplecqrs --help' for more information.\n", what, arg);
	return EXIT_USAGE;
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
	bool bail = false;
	out_opts oo = { .out_fd = STDOUT_FILENO, .err_fd = STDERR_FILENO };
	int c;

	setlocale(LC_CTYPE, "");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:bqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': uri = optarg; break;
		case 'b': bail = true; break;
		case 'j': oo.json = true; break;
		case 'e': oo.echo = true; break;
		case 'q': oo.quiet = true; break;
		case 'h': fputs(usage_text, stdout); return EXIT_OK;
		case 'V': puts("simplecqrs " SIMPLECQRS_VERSION); return EXIT_OK;
		case ':': return usage_error("missing argument for option", argv[optind - 1]);
		default:
			return usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (uri == NULL || uri[0] == '\0')
		uri = "memory";

	/* Open every script before running any: a typo in the third file
	 * must not leave the first two half applied. */
	int nscripts = argc - optind;
	int *fds = calloc((size_t)nscripts + 1, sizeof *fds);
	if (fds == NULL)
		return EXIT_STORAGE;
	for (int i = 0; i < nscripts; i++) {
		const char *path = argv[optind + i];
		fds[i] = strcmp(path, "-") == 0 ? STDIN_FILENO
						 : open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
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
	if (store_open(uri, &st, why, sizeof why) != 0) {
		char safe[512];
		store_safe_uri(uri, safe, sizeof safe);
		fprintf(stderr, "simplecqrs: cannot open store '%s': %s\n", safe, why);
		free(fds);
		return EXIT_USAGE;
	}

	bool interactive = nscripts == 0 && isatty(STDIN_FILENO);
	bool color_ok = getenv("NO_COLOR") == NULL;
	oo.interactive = interactive;
	oo.color_out = color_ok && !oo.json && isatty(STDOUT_FILENO);
	oo.color_err = color_ok && isatty(STDERR_FILENO);
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
		.echo = oo.echo,
		.color = oo.color_out,
	};

	int status = EXIT_OK;
	if (interactive) {
		char banner[160];
		snprintf(banner, sizeof banner,
			 "simplecqrs %s on the %s store; type 'help' for commands, Ctrl-D to quit\n",
			 SIMPLECQRS_VERSION, store_kind(st));
		shell_run_interactive(&sh, banner);
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

	bool written = out_flush(sh.ctx.out);
	out_free(sh.ctx.out);
	sheet_free(sh.ctx.sheet);
	handler_free(sh.ctx.handler);
	store_free(st);
	if (!written) {
		fprintf(stderr, "simplecqrs: writing output: %s\n", strerror(errno));
		if (status == EXIT_OK)
			status = EXIT_FAILED;
	}
	if (sh.fatal)
		return EXIT_STORAGE;
	if (status == EXIT_OK && sh.failed)
		status = EXIT_FAILED;
	return status;
}
