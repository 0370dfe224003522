/* session.c — the gate between the commands and their output, the score,
 * and the line loop (session_run_fd, session_run_line). See session.h. */
#include <errno.h>
#include "simplecqrs/lines.h"
#include "simplecqrs/session.h"
#include "simplecqrs/sheet_store.h"

/* The output's gate: no result leaves before the store has kept it. */
static bool gate(void *vs)
{
	session *s = vs;
	if (store_commit(s->ctx.store) == ERR_OK)
		return true;
	s->lost = true;
	return false;
}

/* After the gate said no: says so, once, and lets output flow again for
 * that error. CMD_FATAL then, else CMD_OK. */
static cmd_status report_lost(session *s)
{
	if (!s->lost)
		return CMD_OK;
	s->lost = false;
	out_release(s->ctx.out);	/* what the command wrote after the loss */
	out_error(s->ctx.out, s->ctx.line, "", ERR_STORAGE,
		  "storage failed: %s; results after the last one shown may not be kept",
		  store_errmsg(s->ctx.store));
	return CMD_FATAL;
}

void session_open(session *s, store *st, const out_opts *oo)
{
	*s = (session){
		.ctx = {
			.store = st,
			.handler = handler_new(st),
			.sheet = sheet_new(sheet_store_of(st)),
			.out = out_new(oo),
		},
	};
	out_set_gate(s->ctx.out, gate, s);
}

int session_close(session *s)
{
	session_flush(s);
	int err = out_write_error(s->ctx.out);
	out_free(s->ctx.out);
	sheet_free(s->ctx.sheet);
	handler_free(s->ctx.handler);
	s->ctx.out = NULL;
	s->ctx.sheet = NULL;
	s->ctx.handler = NULL;
	return err;
}

cmd_status session_run_line(session *s, char *text, size_t len, bool too_long)
{
	if (s->stop)	/* a commit failed while the line was being read */
		return CMD_QUIT;
	s->ctx.line++;
	cmd_status st;
	if (too_long) {
		st = cmd_reject(&s->ctx, ERR_LINE_TOO_LONG);
	} else {
		/* at the prompt the terminal has already shown the line */
		if (s->echo && !s->prompt && !parse_blank(text, len))
			out_echo(s->ctx.out, text,
				 len - (len > 0 && text[len - 1] == '\r'));
		st = cmd_run(&s->ctx, text, len);
	}
	/* The store committed a group on its own (full, or past its time):
	 * the results held so far are kept, so they go out now, before a
	 * later group's failure could hold them back with its own. */
	uint64_t early = store_get_stats(s->ctx.store).early_commits;
	if (early != s->early_seen) {
		s->early_seen = early;
		out_flush(s->ctx.out);
	}
	/* A flush in the middle could not commit. A command that stopped
	 * for it (backup) returns CMD_FATAL itself; the loss is then said by
	 * the session_flush that follows every line and every run. */
	if (st != CMD_FATAL && report_lost(s) == CMD_FATAL)
		st = CMD_FATAL;
	switch (st) {
	case CMD_OK:
		break;
	case CMD_FAILED:
		if (!s->prompt) {
			s->failed = true;
			s->stop = s->bail;
		}
		break;
	case CMD_QUIT:
		s->stop = true;
		break;
	case CMD_FATAL:
		s->failed = s->fatal = s->stop = true;
		break;
	}
	return st;
}

void session_flush(session *s)
{
	out_flush(s->ctx.out);
	if (report_lost(s) == CMD_FATAL) {
		s->failed = s->fatal = s->stop = true;
		out_flush(s->ctx.out);	/* the error; nothing is pending now */
	}
}

static bool flush_output(void *vs)
{
	session *s = vs;
	session_flush(s);
	return !s->ended_by;
}

int session_run_fd(session *s, int fd)
{
	lines *r = lines_new(fd, PARSE_MAX_LINE, PARSE_SLACK, flush_output, s);
	const session_watch *w = s->watch;
	lines_line l;
	int rc = 0;
	s->ctx.line = 0;
	/* output that cannot be delivered ends the run: no more results
	 * would be acknowledged */
	while (!s->stop && !s->ended_by && out_write_error(s->ctx.out) == 0 &&
	       (rc = lines_next(r, &l)) == 1) {
		if (w && w->before)
			w->before(w->ctx, s, l.text, l.len, l.too_long);
		if (s->stop)
			break;
		cmd_status st = session_run_line(s, l.text, l.len, l.too_long);
		if (w && w->after)
			w->after(w->ctx, s, st);
	}
	int saved = errno;
	lines_free(r);
	session_flush(s);
	errno = saved;
	return rc < 0 ? -1 : 0;
}
