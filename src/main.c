/* main.c — options, the scripts, the store, the exit status. Thin on
 * purpose: every line runs through the session (session.h), which owns the
 * store, handler, sheet and output; the prompt is shell.c's. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
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

/* What a run was asked for: the options and the scripts. */
typedef struct run_opts {
	const char *uri;	/* the store */
	bool bail, echo;
	out_opts oo;
	int closed;		/* hold_std_fds's bits */
	char **names;		/* the scripts as given ("-": stdin) */
	int *fds;		/* their descriptors, open before any runs */
	int nscripts;
	int prompt_at;		/* the "-" that is a terminal, or nscripts */
} run_opts;

/* Parses the options into o. -1 to go on, or the exit status (--help,
 * --version, a usage error). */
static int parse_options(int argc, char **argv, run_opts *o)
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
	const char *uri_from = "SIMPLECQRS_STORE";
	int c;
	o->uri = getenv("SIMPLECQRS_STORE");
	argv[0] = (char *)"simplecqrs";	/* how getopt's messages name us */
	while ((c = getopt_long(argc, argv, "s:bqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->uri = optarg, uri_from = "--store"; break;
		case 'b': o->bail = true; break;
		case 'j': o->oo.json = true; break;
		case 'e': o->echo = true; break;
		case 'q': o->oo.quiet = true; break;
		case 'h': fputs(usage_text, stdout); return EXIT_OK;
		case 'V': puts("simplecqrs " SIMPLECQRS_VERSION); return EXIT_OK;
		default: return usage_error();
		}
	}
	/* "$LEDGER" with LEDGER unset must not become the memory store, whose
	 * acknowledged writes vanish at exit */
	if (o->uri != NULL && o->uri[0] == '\0') {
		fprintf(stderr, "simplecqrs: %s is empty; name a store: memory, "
			"sqlite:PATH or postgresql://...\n", uri_from);
		return EXIT_USAGE;
	}
	if (o->uri == NULL)
		o->uri = "memory";
	return -1;
}

static void close_scripts(run_opts *o, int upto)
{
	for (int j = 0; j < upto; j++)
		if (o->fds[j] > STDIN_FILENO)
			close(o->fds[j]);
	free(o->fds);
	o->fds = NULL;
}

/* Opens every script before running any: a typo in the third file must
 * not leave the first two half applied. No SCRIPT is "-". EXIT_OK, or
 * EXIT_USAGE with the reason said and nothing left open. */
static int open_scripts(run_opts *o, int n, char **names)
{
	static char *just_stdin[] = { (char *)"-" };
	o->names = n > 0 ? names : just_stdin;
	o->nscripts = n > 0 ? n : 1;
	o->fds = xcalloc((size_t)o->nscripts, sizeof *o->fds);
	o->prompt_at = o->nscripts;
	buf msg = { 0 };
	for (int i = 0; i < o->nscripts; i++) {
		const char *path = o->names[i];
		bool is_stdin = strcmp(path, "-") == 0;
		if ((o->fds[i] = open_script(path, o->closed & 1)) < 0) {
			if (is_stdin)
				fprintf(stderr, "simplecqrs: cannot read stdin: %s\n",
					strerror(errno));
			else
				fprintf(stderr, "simplecqrs: cannot open '%s': %s\n",
					escaped(&msg, path), strerror(errno));
		} else if (o->prompt_at < o->nscripts) {
			/* the prompt ends with quit or Ctrl-D, for good */
			fprintf(stderr, "simplecqrs: '-' is the terminal, so the "
				"prompt: it must be the last SCRIPT\n");
		} else {
			if (is_stdin && isatty(STDIN_FILENO))
				o->prompt_at = i;
			continue;
		}
		close_scripts(o, i + 1);
		buf_free(&msg);
		return EXIT_USAGE;
	}
	buf_free(&msg);
	return EXIT_OK;
}

/* Opens the store the options name; NULL, with the reason said, if not. */
static store *open_store(const char *uri)
{
	store *st;
	char why[512];
	if (store_open(uri, &st, why, sizeof why) == ERR_OK)
		return st;
	char safe[512];
	buf msg = { 0 };
	store_safe_uri(uri, safe, sizeof safe);
	fprintf(stderr, "simplecqrs: cannot open store '%s': ", escaped(&msg, safe));
	fprintf(stderr, "%s\n", escaped(&msg, why));
	buf_free(&msg);
	return NULL;
}

/* ---- ended by a signal ----
 *
 * SIGTERM, SIGHUP (the terminal closed) and, while scripts run, SIGINT end
 * the run as the end of its input would: the command running finishes (a
 * wait for another program's lock ends at once), its group commits and
 * its results are shown, the store is closed (SQLite puts the write-ahead
 * log into the file, so the file alone holds every event), and then the
 * signal is raised again, so the caller sees the program ended by it. The
 * prompt takes SIGINT for itself (Ctrl-C ends a line, not the shell). */

static session *running;	/* what the handler tells */

static void on_end_signal(int sig)
{
	if (running && !running->ended_by)
		running->ended_by = sig;
}

static const int end_signals[] = { SIGTERM, SIGHUP, SIGINT };

static void catch_end_signals(session *s)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_end_signal;	/* no SA_RESTART: a read ends */
	sigemptyset(&sa.sa_mask);
	running = s;
	for (size_t i = 0; i < sizeof end_signals / sizeof *end_signals; i++) {
		struct sigaction old;
		/* one ignored by whoever started us (nohup) stays ignored */
		if (sigaction(end_signals[i], NULL, &old) == 0 &&
		    old.sa_handler != SIG_IGN)
			sigaction(end_signals[i], &sa, NULL);
	}
}

/* The store's wait for a lock, in a script: a signal ends it. */
static bool wait_unless_ended(void *ctx, unsigned waited_ms)
{
	(void)waited_ms;
	return !((session *)ctx)->ended_by;
}

/* After everything is closed: ends the program by the signal that ended
 * the run, if one did. */
static void end_by_signal(int sig)
{
	if (sig == 0)
		return;
	signal(sig, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
}

/* Runs scripts [from, to) in order; EXIT_FAILED if one could not be read. */
static int run_scripts(session *s, const run_opts *o, int from, int to)
{
	for (int i = from; i < to && !s->stop && !s->ended_by; i++) {
		out_set_input(s->ctx.out, o->nscripts > 1 ? o->names[i] : NULL, false);
		if (session_run_fd(s, o->fds[i]) == 0)
			continue;
		int err = errno;
		buf b = { 0 };
		if (o->fds[i] == STDIN_FILENO)
			fprintf(stderr, "simplecqrs: reading stdin: %s\n", strerror(err));
		else
			fprintf(stderr, "simplecqrs: reading '%s': %s\n",
				escaped(&b, o->names[i]), strerror(err));
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


/* The prompt, after the scripts before it: its errors carry no line, and
 * its banner names the ledger, so that a mistyped path shows at once. */
static void run_prompt(session *s, store *st, const run_opts *o)
{
	out_set_input(s->ctx.out, o->nscripts > 1 ? o->names[o->prompt_at] : NULL,
		      true);
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
	shell_run_interactive(s, buf_cstr(&banner), o->oo.color_out);
	buf_free(&banner);
}

/* For benchmarks and operators: what the store was asked. */
static void print_stats(store *st)
{
	store_stats ss = store_get_stats(st);
	fprintf(stderr, "simplecqrs: %llu append%s, %llu conflict%s (each one retried)\n",
		(unsigned long long)ss.appends, ss.appends == 1 ? "" : "s",
		(unsigned long long)ss.conflicts, ss.conflicts == 1 ? "" : "s");
}

/* The exit status: 3 if the store failed, else the first of a script
 * that could not be read (1), output that could not be written (1), a
 * command that failed (1). */
static int exit_status(int status, int write_error, const session *s)
{
	if (write_error) {
		/* a reader that went away (| head) needs no message */
		if (write_error != EPIPE)
			fprintf(stderr, "simplecqrs: writing output: %s\n",
				strerror(write_error));
		if (status == EXIT_OK)
			status = EXIT_FAILED;
	}
	if (s->fatal)
		return EXIT_STORAGE;
	if (status == EXIT_OK && s->failed)
		status = EXIT_FAILED;
	return status;
}

int main(int argc, char **argv)
{
	run_opts o = { 0 };
	o.closed = hold_std_fds();	/* first: nothing may take 0-2 */
	if (o.closed < 0)
		return EXIT_USAGE;	/* no /dev/null: nowhere safe to say so */
	o.oo.out_fd = o.closed & 2 ? -1 : STDOUT_FILENO;
	o.oo.err_fd = o.closed & 4 ? -1 : STDERR_FILENO;
	setlocale(LC_CTYPE, "");
	int status = parse_options(argc, argv, &o);
	if (status >= 0)
		return status;
	if (open_scripts(&o, argc - optind, argv + optind) != EXIT_OK)
		return EXIT_USAGE;
	store *st = open_store(o.uri);
	if (st == NULL) {
		close_scripts(&o, o.nscripts);
		return EXIT_USAGE;
	}
	o.oo.color_out = !o.oo.json && color_ok(STDOUT_FILENO);
	o.oo.color_err = color_ok(STDERR_FILENO);
	o.oo.width = isatty(STDOUT_FILENO) ? terminal_width(STDOUT_FILENO) : 0;
	o.oo.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;

	session s;
	session_open(&s, st, &o.oo);
	s.bail = o.bail;
	s.echo = o.echo;
	catch_end_signals(&s);
	/* the scripts, then the prompt if a "-" is the terminal */
	store_set_wait(st, wait_unless_ended, &s);
	status = run_scripts(&s, &o, 0, o.prompt_at);
	store_set_wait(st, NULL, NULL);
	if (o.prompt_at < o.nscripts && status == EXIT_OK && !s.stop &&
	    !s.ended_by)
		run_prompt(&s, st, &o);
	close_scripts(&o, o.nscripts);
	int write_error = session_close(&s);
	if (getenv("SIMPLECQRS_STATS"))
		print_stats(st);
	store_free(st);
	running = NULL;
	int ended_by = s.ended_by;
	status = exit_status(status, write_error, &s);
	end_by_signal(ended_by);
	return status;
}
